//! Orders, build levels and critical-path priorities over a DAG given as
//! "needs" lists (`needs[n]` = the nodes `n` needs built first).
//!
//! These are pure functions so the scheduler can re-run them whenever it
//! learns real build durations.

use super::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("dependency cycle: {count} nodes cannot be ordered (node {example} is one of them)")]
    Cycle { count: usize, example: NodeId },
    #[error("node {node} needs node {need}, which does not exist ({len} nodes)")]
    UnknownNode {
        node: NodeId,
        need: NodeId,
        len: usize,
    },
}

fn dependents_of<N: AsRef<[NodeId]>>(needs: &[N]) -> Result<Vec<Vec<NodeId>>, GraphError> {
    let len = needs.len();
    let mut dependents = vec![Vec::new(); len];
    for (node, list) in needs.iter().enumerate() {
        for &need in list.as_ref() {
            let slot =
                dependents
                    .get_mut(need)
                    .ok_or(GraphError::UnknownNode { node, need, len })?;
            slot.push(node);
        }
    }
    Ok(dependents)
}

/// A topological order, dependencies first (Kahn; ties by lowest index).
pub fn topo_order<N: AsRef<[NodeId]>>(needs: &[N]) -> Result<Vec<NodeId>, GraphError> {
    let dependents = dependents_of(needs)?;
    let mut missing: Vec<usize> = needs.iter().map(|l| l.as_ref().len()).collect();
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<NodeId>> = (0..needs.len())
        .filter(|&n| missing[n] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(std::cmp::Reverse(n)) = ready.pop() {
        order.push(n);
        for &d in &dependents[n] {
            missing[d] -= 1;
            if missing[d] == 0 {
                ready.push(std::cmp::Reverse(d));
            }
        }
    }
    if order.len() == needs.len() {
        Ok(order)
    } else {
        let example = (0..needs.len()).find(|&n| missing[n] > 0).unwrap_or(0);
        Err(GraphError::Cycle {
            count: needs.len() - order.len(),
            example,
        })
    }
}

/// Build level of each node: 0 for nodes that need nothing, else one more
/// than the highest level among what it needs (longest path from a root).
pub fn levels<N: AsRef<[NodeId]>>(needs: &[N]) -> Result<Vec<usize>, GraphError> {
    let order = topo_order(needs)?;
    let mut level = vec![0usize; needs.len()];
    for n in order {
        level[n] = needs[n]
            .as_ref()
            .iter()
            .map(|&m| level[m] + 1)
            .max()
            .unwrap_or(0);
    }
    Ok(level)
}

/// Critical-path priority of each node: its own weight plus the largest
/// priority among the nodes that need it, i.e. the weight of the longest
/// path from the node to the end of the build. Schedule highest first.
pub fn critical_priorities<N: AsRef<[NodeId]>>(
    needs: &[N],
    weight: impl Fn(NodeId) -> f64,
) -> Result<Vec<f64>, GraphError> {
    let order = topo_order(needs)?;
    let dependents = dependents_of(needs)?;
    let mut priority = vec![0.0f64; needs.len()];
    for &n in order.iter().rev() {
        let tail = dependents[n]
            .iter()
            .map(|&d| priority[d])
            .fold(0.0, f64::max);
        priority[n] = weight(n) + tail;
    }
    Ok(priority)
}

/// The critical path, first package to build first: start at the highest
/// priority and follow the dependent with the highest priority (ties by
/// lowest index). Its weight is `priorities[path[0]]`.
pub fn critical_path<N: AsRef<[NodeId]>>(
    needs: &[N],
    priorities: &[f64],
) -> Result<Vec<NodeId>, GraphError> {
    let dependents = dependents_of(needs)?;
    let best = |candidates: &mut dyn Iterator<Item = NodeId>| {
        candidates.fold(None::<NodeId>, |acc, n| match acc {
            Some(a)
                if priorities.get(a).copied().unwrap_or(0.0)
                    >= priorities.get(n).copied().unwrap_or(0.0) =>
            {
                Some(a)
            }
            _ => Some(n),
        })
    };
    let mut path = Vec::new();
    let mut current = best(&mut (0..needs.len().min(priorities.len())));
    while let Some(n) = current {
        path.push(n);
        if path.len() > needs.len() {
            // Only possible when `priorities` do not come from this DAG.
            break;
        }
        current = best(
            &mut dependents[n]
                .iter()
                .copied()
                .filter(|&d| d < priorities.len()),
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // 0 <- 1 <- 3, 0 <- 2 <- 3, 4 alone
    fn diamond() -> Vec<Vec<NodeId>> {
        vec![vec![], vec![0], vec![0], vec![1, 2], vec![]]
    }

    #[test]
    fn levels_are_longest_paths_from_roots() {
        assert_eq!(levels(&diamond()).unwrap(), vec![0, 1, 1, 2, 0]);
    }

    #[test]
    fn priorities_use_weights() {
        let w = [1.0, 5.0, 1.0, 2.0, 3.0];
        let p = critical_priorities(&diamond(), |n| w[n]).unwrap();
        assert_eq!(p, vec![8.0, 7.0, 3.0, 2.0, 3.0]);
        assert_eq!(critical_path(&diamond(), &p).unwrap(), vec![0, 1, 3]);
        // Re-run with "measured" durations: node 2 became slow.
        let p = critical_priorities(&diamond(), |n| if n == 2 { 10.0 } else { w[n] }).unwrap();
        assert_eq!(critical_path(&diamond(), &p).unwrap(), vec![0, 2, 3]);
        assert_eq!(p[0], 13.0);
    }

    #[test]
    fn cycles_and_bad_indexes_are_errors_not_hangs() {
        let cyclic = vec![vec![1], vec![0], vec![]];
        assert!(matches!(
            topo_order(&cyclic),
            Err(GraphError::Cycle { count: 2, .. })
        ));
        assert!(critical_priorities(&cyclic, |_| 1.0).is_err());
        assert!(matches!(
            levels(&[vec![7]]),
            Err(GraphError::UnknownNode { need: 7, .. })
        ));
    }

    #[test]
    fn empty_graph() {
        let empty: Vec<Vec<NodeId>> = Vec::new();
        assert!(levels(&empty).unwrap().is_empty());
        assert!(critical_path(&empty, &[]).unwrap().is_empty());
    }
}
