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
//!   several packages qualify, a package of that exact name wins over
//!   virtual Provides, then the highest version, ties by name;
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
//!   (that is how a toolchain bootstrap is cut out of the graph);
//! * names in [`GraphOptions::base_provides`] (the base root's rpm database)
//!   satisfy only what no spec provides.
//!
//! Cycles are reported as strongly connected components and made
//! schedulable by the policy described in `cycles.rs`; [`SourceNode::needs`]
//! is always acyclic. ARCHITECTURE.md ("Dependency graph") gives the reasons.
//!
//! For a scheduler:
//!
//! ```
//! use dbuild_common::graph::{critical_priorities, BuildGraph, GraphOptions};
//! use dbuild_common::weights::Weights;
//! # let specs = Vec::new();
//! let graph = BuildGraph::build(specs, &GraphOptions::default());
//! // Ready when every `needs` entry is built; install `install_names(n)`.
//! let needs = graph.needs();
//! // Re-run whenever measured durations change: measured, else file, else 1.
//! let file = Weights::default();
//! let measured = std::collections::HashMap::<String, f64>::new();
//! let weight = |n: usize| {
//!     let name = &graph.nodes[n].spec.name;
//!     measured.get(name).copied().unwrap_or_else(|| file.get(name))
//! };
//! let prio = critical_priorities(&needs, weight)?;
//! assert_eq!(prio.len(), graph.nodes.len());
//! # Ok::<(), dbuild_common::graph::GraphError>(())
//! ```

mod build;
mod closure;
mod critical;
mod cycles;
mod index;
mod resolve;
pub mod rich;
#[cfg(test)]
mod tests;

pub use critical::{critical_path, critical_priorities, levels, topo_order, GraphError};
pub use cycles::Cycle;

use crate::spec::{BinaryPackage, Spec};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

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
    /// Capabilities of the base builder root's rpm database: they satisfy a
    /// dependency only when no spec of the tree provides it (no edge, never
    /// unresolved); a spec that provides it still wins.
    pub base_provides: BTreeSet<String>,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            arch: "x86_64".into(),
            assume_provided: BTreeSet::new(),
            base_provides: BTreeSet::new(),
        }
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
    pub(crate) by_key: HashMap<String, NodeId>,
}

impl BuildGraph {
    /// Builds the graph. Never fails: problems are reported in `unresolved`,
    /// `cycles`, `excluded` and `warnings`.
    pub fn build(specs: Vec<Spec>, opts: &GraphOptions) -> BuildGraph {
        build::build_graph(specs, opts)
    }

    /// The node with this key (see [`SourceNode::key`]).
    pub fn node_by_key(&self, key: &str) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    /// The binary package a [`BinRef`] names.
    pub fn binary(&self, bin: BinRef) -> Option<&BinaryPackage> {
        self.nodes.get(bin.node)?.spec.packages.get(bin.package)
    }

    /// The file rpmbuild writes for a binary package:
    /// `name-version-release.arch.rpm` (no epoch), where `arch` is the
    /// package's BuildArch (inherited from the main package), else `target_arch`.
    pub fn rpm_file_name(&self, bin: BinRef, target_arch: &str) -> Option<String> {
        let spec = &self.nodes.get(bin.node)?.spec;
        let pkg = spec.packages.get(bin.package)?;
        let arch = pkg
            .build_arch
            .as_deref()
            .or(spec.build_arch.as_deref())
            .unwrap_or(target_arch);
        Some(format!(
            "{}-{}-{}.{arch}.rpm",
            pkg.name, spec.version, spec.release
        ))
    }

    /// Names of the binary packages to install before building `node`.
    pub fn install_names(&self, node: NodeId) -> Vec<&str> {
        let Some(n) = self.nodes.get(node) else {
            return Vec::new();
        };
        n.install
            .iter()
            .filter_map(|&b| self.binary(b))
            .map(|p| p.name.as_str())
            .collect()
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
            Reason::BuildRequires { index } => match self
                .nodes
                .get(edge.from)
                .and_then(|n| n.spec.build_requires.get(index))
            {
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
    pub fn priorities_from(
        &self,
        weights: &crate::weights::Weights,
    ) -> Result<Vec<f64>, GraphError> {
        self.priorities(|n| weights.get(&self.nodes[n].spec.name))
    }

    /// The overall critical path (first to build first) and its total weight.
    pub fn critical_path(
        &self,
        weight: impl Fn(NodeId) -> f64,
    ) -> Result<(Vec<NodeId>, f64), GraphError> {
        let needs = self.needs();
        let priorities = critical_priorities(&needs, weight)?;
        let path = critical_path(&needs, &priorities)?;
        let total = path.first().map_or(0.0, |&n| priorities[n]);
        Ok((path, total))
    }
}
