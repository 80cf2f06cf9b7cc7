//! Transitive runtime closures of binary packages, as bitsets.
//!
//! Each binary's closure (itself plus everything its `Requires` pull in,
//! transitively) is computed once per strongly connected component of the
//! binary-level graph, so a node's install set is a handful of word-wise ORs
//! instead of a graph walk per node.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

pub(crate) struct Closures {
    words: usize,
    scc_of: Vec<usize>,
    sets: Vec<u64>,
}

impl Closures {
    /// `requires[b]`: the dense ids of the binaries `b` requires.
    pub fn new(requires: &[Vec<usize>]) -> Closures {
        let n = requires.len();
        let words = n.div_ceil(64);
        let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, 0);
        for _ in 0..n {
            g.add_node(());
        }
        for (b, list) in requires.iter().enumerate() {
            for &r in list {
                g.add_edge(NodeIndex::new(b), NodeIndex::new(r), ());
            }
        }
        // tarjan_scc yields components in postorder: every component comes
        // after the components it points to, so their closures are ready.
        let components = tarjan_scc(&g);
        let mut scc_of = vec![0usize; n];
        for (c, members) in components.iter().enumerate() {
            for m in members {
                scc_of[m.index()] = c;
            }
        }
        let mut sets = vec![0u64; components.len() * words];
        let mut set = vec![0u64; words];
        for (c, members) in components.iter().enumerate() {
            set.fill(0);
            for m in members {
                let m = m.index();
                set[m / 64] |= 1 << (m % 64);
                for &r in &requires[m] {
                    let rc = scc_of[r];
                    if rc < c {
                        for (w, x) in set.iter_mut().zip(&sets[rc * words..(rc + 1) * words]) {
                            *w |= x;
                        }
                    }
                }
            }
            sets[c * words..(c + 1) * words].copy_from_slice(&set);
        }
        Closures {
            words,
            scc_of,
            sets,
        }
    }

    /// An empty set sized for these binaries.
    pub fn empty_set(&self) -> Vec<u64> {
        vec![0; self.words]
    }

    /// ORs the closure of binary `bin` into `acc`.
    pub fn add_closure(&self, bin: usize, acc: &mut [u64]) {
        let c = self.scc_of[bin];
        for (w, x) in acc
            .iter_mut()
            .zip(&self.sets[c * self.words..(c + 1) * self.words])
        {
            *w |= x;
        }
    }
}

#[cfg(test)]
pub(crate) fn contains(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// The members of a set, ascending.
pub(crate) fn members(set: &[u64]) -> impl Iterator<Item = usize> + '_ {
    set.iter().enumerate().flat_map(|(w, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let bit = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            Some(w * 64 + bit)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_transitive_through_cycles() {
        // 0 -> 1 -> 2 -> 1, 3 -> 0, 4 alone, 70 -> 3 (second word).
        let mut requires = vec![Vec::new(); 71];
        requires[0] = vec![1];
        requires[1] = vec![2];
        requires[2] = vec![1];
        requires[3] = vec![0];
        requires[70] = vec![3];
        let c = Closures::new(&requires);
        let of = |b: usize| {
            let mut s = c.empty_set();
            c.add_closure(b, &mut s);
            members(&s).collect::<Vec<_>>()
        };
        assert_eq!(of(0), vec![0, 1, 2]);
        assert_eq!(of(2), vec![1, 2]);
        assert_eq!(of(70), vec![0, 1, 2, 3, 70]);
        assert_eq!(of(4), vec![4]);
        let mut s = c.empty_set();
        c.add_closure(3, &mut s);
        assert!(contains(&s, 3) && !contains(&s, 4) && !contains(&s, 999));
    }
}
