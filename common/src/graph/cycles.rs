//! Cycle detection (strongly connected components) and the policy that
//! turns a cyclic dependency graph into a schedulable DAG.
//!
//! Policy, applied to each non-trivial SCC:
//! 1. drop the edges inside the SCC that come only from the runtime
//!    `Requires` closure (no BuildRequires behind them): the package can be
//!    built without them, its build root just lacks those runtime extras
//!    until they exist (Photon's builder ignores such loops the same way);
//! 2. if BuildRequires edges still form a cycle, drop the back edges of a
//!    depth-first search that visits nodes and successors in name order, so
//!    the choice is deterministic; such a package builds against whatever
//!    the build root or a prebuilt repository provides (a bootstrap).
//!
//! Every SCC is reported with all its edges and the ones dropped.

use super::{DepKind, Edge, NodeId};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// A strongly connected component of the full dependency graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Its packages, ascending.
    pub nodes: Vec<NodeId>,
    /// Indexes into `BuildGraph::edges` of the edges inside the component.
    pub edges: Vec<usize>,
    /// The subset of `edges` dropped for scheduling.
    pub dropped: Vec<usize>,
}

impl Cycle {
    /// Whether BuildRequires alone form a loop here (step 2 was needed).
    pub fn needs_bootstrap(&self, edges: &[Edge]) -> bool {
        self.dropped
            .iter()
            .any(|&e| edges[e].kind == DepKind::Build)
    }
}

fn sccs(node_count: usize, edges: &[Edge], kept: &[bool]) -> Vec<Vec<NodeId>> {
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(node_count, edges.len());
    for _ in 0..node_count {
        g.add_node(());
    }
    for (e, edge) in edges.iter().enumerate() {
        if kept[e] {
            g.add_edge(NodeIndex::new(edge.from), NodeIndex::new(edge.to), ());
        }
    }
    let mut out: Vec<Vec<NodeId>> = tarjan_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut v: Vec<NodeId> = c.into_iter().map(NodeIndex::index).collect();
            v.sort_unstable();
            v
        })
        .collect();
    out.sort();
    out
}

/// Finds the cycles and returns them with, per edge, whether it is kept
/// for scheduling. The kept edges always form a DAG.
pub(crate) fn analyse(node_count: usize, edges: &[Edge]) -> (Vec<Cycle>, Vec<bool>) {
    let mut kept = vec![true; edges.len()];
    let components = sccs(node_count, edges, &kept);
    let mut cycle_of = vec![usize::MAX; node_count];
    let mut cycles: Vec<Cycle> = Vec::with_capacity(components.len());
    for (c, nodes) in components.into_iter().enumerate() {
        for &n in &nodes {
            cycle_of[n] = c;
        }
        cycles.push(Cycle {
            nodes,
            edges: Vec::new(),
            dropped: Vec::new(),
        });
    }
    for (e, edge) in edges.iter().enumerate() {
        let c = cycle_of[edge.from];
        if c != usize::MAX && c == cycle_of[edge.to] {
            cycles[c].edges.push(e);
            if edge.kind == DepKind::Runtime {
                kept[e] = false;
                cycles[c].dropped.push(e);
            }
        }
    }

    // Step 2: what is still cyclic is cut along DFS back edges.
    let mut adjacency: Vec<Vec<(NodeId, usize)>> = vec![Vec::new(); node_count];
    for (e, edge) in edges.iter().enumerate() {
        if kept[e] {
            adjacency[edge.from].push((edge.to, e));
        }
    }
    for list in &mut adjacency {
        list.sort_unstable();
    }
    for component in sccs(node_count, edges, &kept) {
        let inside = |n: NodeId| component.binary_search(&n).is_ok();
        // 0 = unvisited, 1 = on the DFS stack, 2 = done.
        let mut state = vec![0u8; node_count];
        for &root in &component {
            if state[root] != 0 {
                continue;
            }
            let mut stack: Vec<(NodeId, usize)> = vec![(root, 0)];
            state[root] = 1;
            while let Some(top) = stack.last_mut() {
                let (n, next) = *top;
                if let Some(&(to, e)) = adjacency[n].get(next) {
                    top.1 += 1;
                    if !inside(to) {
                        continue;
                    }
                    match state[to] {
                        0 => {
                            state[to] = 1;
                            stack.push((to, 0));
                        }
                        1 => {
                            kept[e] = false;
                            cycles[cycle_of[n]].dropped.push(e);
                        }
                        _ => {}
                    }
                } else {
                    state[n] = 2;
                    stack.pop();
                }
            }
        }
    }
    for c in &mut cycles {
        c.dropped.sort_unstable();
    }
    (cycles, kept)
}
