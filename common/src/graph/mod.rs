//! The build dependency graph of a spec tree.
//!
//! **Nodes** are source packages (one per spec that builds on the target
//! arch; the others are listed in [`BuildGraph::excluded`]). **Edges** go
//! from a package to a package it needs built first (`from` needs `to`):
//!
//! * each `BuildRequires` resolves to the binary package providing it: every
//!   built binary provides its own name `= [epoch:]version-release` (rpm's
//!   implicit self-provide) and its explicit `Provides`; version constraints
//!   are honoured with rpm's range semantics ([`crate::evr::satisfies`]); when
//!   several packages qualify, the highest version wins, ties by name;
//! * the runtime closure (transitive `Requires`) of those binaries must be
//!   installed too, so their source packages are needed as well
//!   ([`DepKind::Runtime`] edges); [`SourceNode::install`] lists the closure;
//! * file dependencies match explicit file `Provides`, else (heuristic, as
//!   `%files` are unknown before building) a package named like the file's
//!   basename: `/usr/bin/python3` → `python3`;
//! * rich dependencies: see [`rich`] and the policy in `resolve.rs`: `or`
//!   takes its first resolvable alternative, `and`/`with` need all,
//!   `if`/`unless` branches are optional edges and never unresolved;
//! * a dependency only the package itself satisfies is a bootstrap
//!   self-dependency ([`SourceNode::self_deps`]), not an edge; when another
//!   package also satisfies it, that one is preferred;
//! * names in [`GraphOptions::assume_provided`] come from the build root: no
//!   edge, never unresolved, even if a spec in the tree provides them too
//!   (that is how a toolchain bootstrap is cut out of the graph).
//!
//! Cycles are reported as strongly connected components and made
//! schedulable by the policy described in `cycles.rs`; [`SourceNode::needs`]
//! is always acyclic.

mod critical;
mod cycles;
mod index;
mod resolve;
pub mod rich;
#[cfg(test)]
mod tests;

pub use critical::{critical_path, critical_priorities, levels, topo_order, GraphError};
pub use cycles::Cycle;

use crate::evr::Evr;
use crate::spec::{BinaryPackage, Spec};
use index::ProviderIndex;
use resolve::Resolver;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Index of a node in [`BuildGraph::nodes`].
pub type NodeId = usize;

/// One binary package: `nodes[node].spec.packages[package]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BinRef {
    pub node: NodeId,
    pub package: usize,
}

#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// Target architecture; specs that do not build on it are excluded.
    pub arch: String,
    /// Capabilities the build root provides (package names, Provides, files).
    pub assume_provided: BTreeSet<String>,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions { arch: "x86_64".into(), assume_provided: BTreeSet::new() }
    }
}

/// Where a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    /// A `BuildRequires` of the spec.
    Build,
    /// A `Requires` of a binary package (in the runtime closure).
    Runtime,
}

/// Why an edge exists; render with [`BuildGraph::reason_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `nodes[from].spec.build_requires[index]`.
    BuildRequires { index: usize },
    /// `Requires` number `index` of binary `bin`, met in the runtime closure.
    Requires { bin: BinRef, index: usize },
}

/// `from` needs `to` built first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    /// `Build` when at least one BuildRequires is behind the edge.
    pub kind: DepKind,
    /// Every BuildRequires behind the edge, and the first few Requires.
    pub reasons: Vec<Reason>,
}

/// How many runtime reasons an edge keeps: enough to explain it.
const RUNTIME_REASONS_KEPT: usize = 3;

#[derive(Debug, Clone)]
pub struct SourceNode {
    pub spec: Spec,
    /// Unique label: the source name, or `name-evr` when two specs share a name.
    pub key: String,
    /// Nodes to build first (after the cycle policy: always acyclic), ascending.
    pub needs: Vec<NodeId>,
    /// Nodes it depends on whose edges the cycle policy dropped, ascending.
    pub deferred: Vec<NodeId>,
    /// Binary packages to install in its build root (BuildRequires and
    /// their runtime closure, this package's own binaries excluded), sorted.
    pub install: Vec<BinRef>,
    /// Dependencies only this package's own binaries satisfy (bootstrap).
    pub self_deps: Vec<String>,
    /// Build level: 0 when it needs nothing, else 1 + max level of `needs`.
    pub level: usize,
}

impl SourceNode {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// A dependency nothing in the tree (nor the build root) satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    pub dependency: String,
    pub kind: DepKind,
    /// Keys of the source packages that want it, sorted.
    pub wanted_by: Vec<String>,
}

/// A spec left out of the graph.
#[derive(Debug, Clone)]
pub struct Excluded {
    pub spec: Spec,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct BuildGraph {
    /// Sorted by source name (then version, then file).
    pub nodes: Vec<SourceNode>,
    /// All dependency edges, including the ones the cycle policy dropped,
    /// sorted by (`from`, `to`).
    pub edges: Vec<Edge>,
    /// Per edge: kept for scheduling.
    pub kept: Vec<bool>,
    pub unresolved: Vec<Unresolved>,
    pub cycles: Vec<Cycle>,
    pub excluded: Vec<Excluded>,
    /// Non-fatal problems (e.g. an unparsable rich dependency), naming the file.
    pub warnings: Vec<String>,
    by_key: HashMap<String, NodeId>,
}

/// One node's outgoing edges while its closure is walked.
struct EdgeAcc {
    to: NodeId,
    build: bool,
    runtime_reasons: usize,
    reasons: Vec<Reason>,
}

impl BuildGraph {
    /// Builds the graph. Never fails: problems are reported in `unresolved`,
    /// `cycles`, `excluded` and `warnings`.
    pub fn build(specs: Vec<Spec>, opts: &GraphOptions) -> BuildGraph {
        let started = Instant::now();
        let (mut included, excluded_specs): (Vec<Spec>, Vec<Spec>) =
            specs.into_iter().partition(|s| s.builds_on(&opts.arch));
        let excluded = excluded_specs
            .into_iter()
            .map(|spec| Excluded { reason: format!("does not build on {} (ExclusiveArch/ExcludeArch)", opts.arch), spec })
            .collect();
        included.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| Evr::parse(&a.evr()).cmp_rpm(&Evr::parse(&b.evr())))
                .then_with(|| a.file.cmp(&b.file))
        });
        let keys = unique_keys(&included);
        let mut nodes: Vec<SourceNode> = included
            .into_iter()
            .zip(keys)
            .map(|(spec, key)| SourceNode {
                spec,
                key,
                needs: Vec::new(),
                deferred: Vec::new(),
                install: Vec::new(),
                self_deps: Vec::new(),
                level: 0,
            })
            .collect();
        let by_key = nodes.iter().enumerate().map(|(i, n)| (n.key.clone(), i)).collect();

        let index = ProviderIndex::new(&nodes);
        let resolver = Resolver { index: &index, assumed: &opts.assume_provided };
        let mut warnings = Vec::new();
        let mut unresolved: BTreeMap<(String, DepKind), BTreeSet<NodeId>> = BTreeMap::new();

        // Binary packages get dense ids so closures can use flat arrays.
        let mut offsets = Vec::with_capacity(nodes.len() + 1);
        let mut total = 0usize;
        for node in &nodes {
            offsets.push(total);
            total += node.spec.packages.len();
        }
        let bin_id = |b: BinRef| offsets[b.node] + b.package;

        // Each built binary's Requires, resolved once.
        let mut requires: Vec<Vec<(BinRef, usize)>> = vec![Vec::new(); total];
        for (n, node) in nodes.iter().enumerate() {
            for (p, pkg) in built(&node.spec) {
                let me = BinRef { node: n, package: p };
                for (i, req) in pkg.requires.iter().enumerate() {
                    match resolver.resolve(req, None) {
                        Ok(res) => {
                            if res.missing {
                                unresolved.entry((req.to_string(), DepKind::Runtime)).or_default().insert(n);
                            }
                            requires[bin_id(me)].extend(res.bins.into_iter().filter(|&b| b != me).map(|b| (b, i)));
                        }
                        Err(e) => {
                            warnings.push(format!("{}: package {}: {e}", node.spec.file.display(), pkg.name));
                            unresolved.entry((req.to_string(), DepKind::Runtime)).or_default().insert(n);
                        }
                    }
                }
            }
        }

        // Per node: its BuildRequires, then their runtime closure (BFS).
        let mut edges: Vec<Edge> = Vec::new();
        let mut seen = vec![usize::MAX; total];
        let mut slot = vec![(usize::MAX, 0usize); nodes.len()];
        let mut queue = std::collections::VecDeque::new();
        for s in 0..nodes.len() {
            let mut acc: Vec<EdgeAcc> = Vec::new();
            let mut add_edge = |to: NodeId, reason: Reason| {
                if slot[to].0 != s {
                    slot[to] = (s, acc.len());
                    acc.push(EdgeAcc { to, build: false, runtime_reasons: 0, reasons: Vec::new() });
                }
                let e = &mut acc[slot[to].1];
                match reason {
                    Reason::BuildRequires { .. } => {
                        e.build = true;
                        e.reasons.push(reason);
                    }
                    Reason::Requires { .. } if e.runtime_reasons < RUNTIME_REASONS_KEPT => {
                        e.runtime_reasons += 1;
                        e.reasons.push(reason);
                    }
                    Reason::Requires { .. } => {}
                }
            };
            let mut self_deps: Vec<String> = Vec::new();
            let spec = &nodes[s].spec;
            for (i, br) in spec.build_requires.iter().enumerate() {
                match resolver.resolve(br, Some(s)) {
                    Ok(res) => {
                        if res.missing {
                            unresolved.entry((br.to_string(), DepKind::Build)).or_default().insert(s);
                        }
                        for b in res.bins {
                            if b.node == s {
                                self_deps.push(br.to_string());
                            } else {
                                add_edge(b.node, Reason::BuildRequires { index: i });
                                queue.push_back((b, None));
                            }
                        }
                    }
                    Err(e) => {
                        warnings.push(format!("{}: BuildRequires: {e}", spec.file.display()));
                        unresolved.entry((br.to_string(), DepKind::Build)).or_default().insert(s);
                    }
                }
            }
            let mut install = Vec::new();
            while let Some((b, reason)) = queue.pop_front() {
                let id = bin_id(b);
                if seen[id] == s {
                    continue;
                }
                seen[id] = s;
                install.push(b);
                if let Some(r) = reason {
                    add_edge(b.node, r);
                }
                for &(t, index) in &requires[id] {
                    if t.node == s {
                        // A dependency of ours requires our own output: it can
                        // only come from an earlier build of this package.
                        let pkg = &nodes[b.node].spec.packages[b.package];
                        if let Some(req) = pkg.requires.get(index) {
                            self_deps.push(format!("{req} (required by {})", pkg.name));
                        }
                    } else if seen[bin_id(t)] != s {
                        queue.push_back((t, Some(Reason::Requires { bin: b, index })));
                    }
                }
            }
            install.sort_unstable();
            self_deps.sort();
            self_deps.dedup();
            nodes[s].install = install;
            nodes[s].self_deps = self_deps;
            acc.sort_by_key(|e| e.to);
            edges.extend(acc.into_iter().map(|e| Edge {
                from: s,
                to: e.to,
                kind: if e.build { DepKind::Build } else { DepKind::Runtime },
                reasons: e.reasons,
            }));
        }

        let (cycles, kept) = cycles::analyse(nodes.len(), &edges);
        for (e, edge) in edges.iter().enumerate() {
            let node = &mut nodes[edge.from];
            if kept[e] {
                node.needs.push(edge.to);
            } else {
                node.deferred.push(edge.to);
            }
        }
        let needs: Vec<&[NodeId]> = nodes.iter().map(|n| n.needs.as_slice()).collect();
        match levels(&needs) {
            Ok(level) => {
                for (node, l) in nodes.iter_mut().zip(level) {
                    node.level = l;
                }
            }
            // The cycle policy guarantees a DAG; say so loudly if it did not.
            Err(e) => tracing::error!("build levels not computed: {e}"),
        }

        let unresolved = unresolved
            .into_iter()
            .map(|((dependency, kind), wanted)| Unresolved {
                dependency,
                kind,
                wanted_by: wanted.into_iter().map(|n| nodes[n].key.clone()).collect(),
            })
            .collect();
        let graph = BuildGraph { nodes, edges, kept, unresolved, cycles, excluded, warnings, by_key };
        tracing::debug!(
            nodes = graph.nodes.len(),
            edges = graph.edges.len(),
            cycles = graph.cycles.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "dependency graph built"
        );
        graph
    }

    /// The node with this key (see [`SourceNode::key`]).
    pub fn node_by_key(&self, key: &str) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    /// The binary package a [`BinRef`] names.
    pub fn binary(&self, bin: BinRef) -> Option<&BinaryPackage> {
        self.nodes.get(bin.node)?.spec.packages.get(bin.package)
    }

    /// Names of the binary packages to install before building `node`.
    pub fn install_names(&self, node: NodeId) -> Vec<&str> {
        let Some(n) = self.nodes.get(node) else { return Vec::new() };
        n.install.iter().filter_map(|&b| self.binary(b)).map(|p| p.name.as_str()).collect()
    }

    /// `needs` of every node, the input of [`critical_priorities`] and friends.
    pub fn needs(&self) -> Vec<&[NodeId]> {
        self.nodes.iter().map(|n| n.needs.as_slice()).collect()
    }

    /// Number of build levels (0 for an empty graph).
    pub fn level_count(&self) -> usize {
        self.nodes.iter().map(|n| n.level + 1).max().unwrap_or(0)
    }

    /// Human-readable reason of an edge, e.g. `BuildRequires: gcc >= 12` or
    /// `Requires: libfoo (of foo-devel)`.
    pub fn reason_text(&self, edge: &Edge, reason: &Reason) -> String {
        match *reason {
            Reason::BuildRequires { index } => match self.nodes.get(edge.from).and_then(|n| n.spec.build_requires.get(index)) {
                Some(d) => format!("BuildRequires: {d}"),
                None => "BuildRequires: ?".into(),
            },
            Reason::Requires { bin, index } => match self.binary(bin) {
                Some(p) => match p.requires.get(index) {
                    Some(d) => format!("Requires: {d} (of {})", p.name),
                    None => format!("Requires: ? (of {})", p.name),
                },
                None => "Requires: ?".into(),
            },
        }
    }

    /// Critical-path priorities with a weight per node (see [`critical_priorities`]).
    pub fn priorities(&self, weight: impl Fn(NodeId) -> f64) -> Result<Vec<f64>, GraphError> {
        critical_priorities(&self.needs(), weight)
    }

    /// Priorities from weights by source name (a [`crate::weights::Weights`] file).
    pub fn priorities_from(&self, weights: &crate::weights::Weights) -> Result<Vec<f64>, GraphError> {
        self.priorities(|n| weights.get(&self.nodes[n].spec.name))
    }

    /// The overall critical path (first to build first) and its total weight.
    pub fn critical_path(&self, weight: impl Fn(NodeId) -> f64) -> Result<(Vec<NodeId>, f64), GraphError> {
        let needs = self.needs();
        let priorities = critical_priorities(&needs, weight)?;
        let path = critical_path(&needs, &priorities)?;
        let total = path.first().map_or(0.0, |&n| priorities[n]);
        Ok((path, total))
    }
}

fn built(spec: &Spec) -> impl Iterator<Item = (usize, &BinaryPackage)> {
    spec.packages.iter().enumerate().filter(|(_, p)| p.has_files)
}

/// Node labels: the source name, made unique with the EVR (and then the
/// file) when several specs share a name.
fn unique_keys(specs: &[Spec]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for s in specs {
        *count.entry(&s.name).or_default() += 1;
    }
    let mut keys: Vec<String> = specs
        .iter()
        .map(|s| if count.get(s.name.as_str()).copied().unwrap_or(0) > 1 { format!("{}-{}", s.name, s.evr()) } else { s.name.clone() })
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for k in &keys {
        *seen.entry(k.clone()).or_default() += 1;
    }
    for (k, s) in keys.iter_mut().zip(specs) {
        if seen.get(k.as_str()).copied().unwrap_or(0) > 1 {
            *k = format!("{k}@{}", s.file.display());
        }
    }
    keys
}
