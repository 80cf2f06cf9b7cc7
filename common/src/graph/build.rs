//! Constructing a [`BuildGraph`] from parsed specs.

use super::closure::{members, Closures};
use super::index::ProviderIndex;
use super::resolve::Resolver;
use super::{
    levels, BinRef, BuildGraph, DepKind, Edge, Excluded, GraphOptions, NodeId, Reason, SourceNode,
    Unresolved,
};
use crate::evr::Evr;
use crate::spec::{BinaryPackage, Spec};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// How many runtime reasons an edge keeps: enough to explain it.
const RUNTIME_REASONS_KEPT: usize = 3;

/// One node's outgoing edges while they are collected.
struct EdgeAcc {
    to: NodeId,
    build: bool,
    runtime_reasons: usize,
    reasons: Vec<Reason>,
}

/// The outgoing edges of the node being processed, with O(1) lookup by target.
struct NodeEdges {
    slot: Vec<(NodeId, usize)>,
    acc: Vec<EdgeAcc>,
    from: NodeId,
}

impl NodeEdges {
    fn new(node_count: usize) -> NodeEdges {
        NodeEdges {
            slot: vec![(usize::MAX, 0); node_count],
            acc: Vec::new(),
            from: usize::MAX,
        }
    }

    fn start(&mut self, from: NodeId) {
        self.from = from;
        self.acc.clear();
    }

    fn entry(&mut self, to: NodeId) -> &mut EdgeAcc {
        if self.slot[to].0 != self.from {
            self.slot[to] = (self.from, self.acc.len());
            self.acc.push(EdgeAcc {
                to,
                build: false,
                runtime_reasons: 0,
                reasons: Vec::new(),
            });
        }
        &mut self.acc[self.slot[to].1]
    }

    fn finish(&mut self, edges: &mut Vec<Edge>) {
        self.acc.sort_by_key(|e| e.to);
        let from = self.from;
        edges.extend(self.acc.drain(..).map(|e| Edge {
            from,
            to: e.to,
            kind: if e.build {
                DepKind::Build
            } else {
                DepKind::Runtime
            },
            reasons: e.reasons,
        }));
    }
}

fn built(spec: &Spec) -> impl Iterator<Item = (usize, &BinaryPackage)> {
    spec.packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.has_files)
}

pub(super) fn build_graph(specs: Vec<Spec>, opts: &GraphOptions) -> BuildGraph {
    let started = Instant::now();
    let (mut included, excluded_specs): (Vec<Spec>, Vec<Spec>) =
        specs.into_iter().partition(|s| s.builds_on(&opts.arch));
    let excluded = excluded_specs
        .into_iter()
        .map(|spec| Excluded {
            reason: format!(
                "does not build on {} (ExclusiveArch/ExcludeArch)",
                opts.arch
            ),
            spec,
        })
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
    let by_key = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.key.clone(), i))
        .collect();

    let index = ProviderIndex::new(&nodes, isa(&opts.arch).as_deref());
    let resolver = Resolver {
        index: &index,
        assumed: &opts.assume_provided,
        base: &opts.base_provides,
    };
    let mut warnings = Vec::new();
    let mut unresolved: BTreeMap<(String, DepKind), BTreeSet<NodeId>> = BTreeMap::new();

    // Binary packages get dense ids so closures can be bitsets.
    let mut offsets = Vec::with_capacity(nodes.len() + 1);
    let mut bins: Vec<BinRef> = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        offsets.push(bins.len());
        bins.extend((0..node.spec.packages.len()).map(|package| BinRef { node: n, package }));
    }
    offsets.push(bins.len());
    let bin_id = |b: BinRef| offsets[b.node] + b.package;

    // Each built binary's Requires, resolved once: (required bin, Requires index).
    let mut requires: Vec<Vec<(usize, usize)>> = vec![Vec::new(); bins.len()];
    for (n, node) in nodes.iter().enumerate() {
        for (p, pkg) in built(&node.spec) {
            let me = bin_id(BinRef {
                node: n,
                package: p,
            });
            for (i, req) in pkg.requires.iter().enumerate() {
                match resolver.resolve(req, None) {
                    Ok(res) => {
                        if res.missing {
                            unresolved
                                .entry((req.to_string(), DepKind::Runtime))
                                .or_default()
                                .insert(n);
                        }
                        requires[me].extend(
                            res.bins
                                .into_iter()
                                .map(bin_id)
                                .filter(|&b| b != me)
                                .map(|b| (b, i)),
                        );
                    }
                    Err(e) => {
                        warnings.push(format!(
                            "{}: package {}: {e}",
                            node.spec.file.display(),
                            pkg.name
                        ));
                        unresolved
                            .entry((req.to_string(), DepKind::Runtime))
                            .or_default()
                            .insert(n);
                    }
                }
            }
        }
    }
    let closures = Closures::new(
        &requires
            .iter()
            .map(|l| l.iter().map(|&(b, _)| b).collect())
            .collect::<Vec<Vec<usize>>>(),
    );
    // Per node: its BuildRequires, then their runtime closure. The closure
    // is followed through the node's own binaries too (they come from an
    // earlier build or a bootstrap); that can only add ordering constraints.
    let mut edges: Vec<Edge> = Vec::new();
    let mut out_edges = NodeEdges::new(nodes.len());
    let mut results: Vec<(Vec<BinRef>, Vec<String>)> = Vec::with_capacity(nodes.len());
    for (s, node) in nodes.iter().enumerate() {
        out_edges.start(s);
        let own = offsets[s]..offsets[s + 1];
        let mut set = closures.empty_set();
        let mut direct: Vec<usize> = Vec::new();
        let mut self_deps: Vec<String> = Vec::new();
        for (i, br) in node.spec.build_requires.iter().enumerate() {
            match resolver.resolve(br, Some(s)) {
                Ok(res) => {
                    if res.missing {
                        unresolved
                            .entry((br.to_string(), DepKind::Build))
                            .or_default()
                            .insert(s);
                    }
                    for b in res.bins {
                        if b.node == s {
                            self_deps.push(br.to_string());
                            continue;
                        }
                        let e = out_edges.entry(b.node);
                        e.build = true;
                        e.reasons.push(Reason::BuildRequires { index: i });
                        direct.push(bin_id(b));
                        closures.add_closure(bin_id(b), &mut set);
                    }
                }
                Err(e) => {
                    warnings.push(format!("{}: BuildRequires: {e}", node.spec.file.display()));
                    unresolved
                        .entry((br.to_string(), DepKind::Build))
                        .or_default()
                        .insert(s);
                }
            }
        }
        let mut install = Vec::new();
        for id in members(&set) {
            if !own.contains(&id) {
                install.push(bins[id]);
                out_edges.entry(bins[id].node);
            }
        }
        // Explanations: walk the (short) Requires lists of the closure's
        // members rather than the (long) reverse lists of popular packages.
        for y in members(&set) {
            for &(t, index) in &requires[y] {
                if own.contains(&t) {
                    if !own.contains(&y) {
                        let pkg = &nodes[bins[y].node].spec.packages[bins[y].package];
                        if let Some(req) = pkg.requires.get(index) {
                            self_deps.push(format!("{req} (required by {})", pkg.name));
                        }
                    }
                } else if !direct.contains(&t) {
                    let e = out_edges.entry(bins[t].node);
                    if e.runtime_reasons < RUNTIME_REASONS_KEPT {
                        e.runtime_reasons += 1;
                        e.reasons.push(Reason::Requires {
                            bin: bins[y],
                            index,
                        });
                    }
                }
            }
        }
        self_deps.sort();
        self_deps.dedup();
        results.push((install, self_deps));
        out_edges.finish(&mut edges);
    }
    for (node, (install, self_deps)) in nodes.iter_mut().zip(results) {
        node.install = install;
        node.self_deps = self_deps;
    }

    let (cycles, kept) = super::cycles::analyse(nodes.len(), &edges);
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
    let graph = BuildGraph {
        nodes,
        edges,
        kept,
        unresolved,
        cycles,
        excluded,
        warnings,
        by_key,
    };
    tracing::debug!(
        nodes = graph.nodes.len(),
        edges = graph.edges.len(),
        cycles = graph.cycles.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "dependency graph built"
    );
    graph
}

/// rpm's ISA tag for an architecture (`%{__isa_name}-%{__isa_bits}`), as in
/// rpm's platform macros; `None` for noarch or unknown targets.
fn isa(arch: &str) -> Option<String> {
    let (name, bits) = match arch {
        "x86_64" | "amd64" => ("x86", 64),
        "i386" | "i486" | "i586" | "i686" | "athlon" => ("x86", 32),
        "aarch64" => ("aarch", 64),
        "armv7hl" | "armv7l" | "armv7hnl" => ("armv7hl", 32),
        "ppc64le" => ("ppc", 64),
        "s390x" => ("s390", 64),
        "riscv64" => ("riscv", 64),
        _ => return None,
    };
    Some(format!("{name}-{bits}"))
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
        .map(|s| {
            if count.get(s.name.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}-{}", s.name, s.evr())
            } else {
                s.name.clone()
            }
        })
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
