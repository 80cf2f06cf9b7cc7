//! Resolving one dependency (plain, file or rich) to the binary packages
//! that satisfy it.

use super::index::ProviderIndex;
use super::rich::{parse_rich, RichDep, RichError};
use super::{BinRef, NodeId};
use crate::spec::Dependency;
use std::collections::BTreeSet;

/// What one dependency resolved to.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    /// The binary packages to install, in resolution order, without repeats.
    pub bins: Vec<BinRef>,
    /// Some required part could not be satisfied.
    pub missing: bool,
}

impl Resolution {
    fn add(&mut self, bin: BinRef) {
        if !self.bins.contains(&bin) {
            self.bins.push(bin);
        }
    }

    fn merge(&mut self, other: Resolution) {
        for b in other.bins {
            self.add(b);
        }
        self.missing |= other.missing;
    }
}

pub(crate) struct Resolver<'a> {
    pub index: &'a ProviderIndex,
    /// Capabilities of the build root: they satisfy a dependency without an edge.
    pub assumed: &'a BTreeSet<String>,
    /// Capabilities of the base root: they satisfy what no spec provides.
    pub base: &'a BTreeSet<String>,
}

impl Resolver<'_> {
    /// Resolves `dep`. `avoid` is the node asking: when another node also
    /// satisfies the dependency it is preferred, because a package cannot
    /// install its own output before it is built (bootstrap).
    pub fn resolve(
        &self,
        dep: &Dependency,
        avoid: Option<NodeId>,
    ) -> Result<Resolution, RichError> {
        let mut out = Resolution::default();
        if dep.is_rich() {
            let rich = parse_rich(&dep.name)?;
            self.rich(&rich, avoid, &mut out);
        } else {
            self.atom(dep, avoid, &mut out);
        }
        Ok(out)
    }

    fn atom(&self, dep: &Dependency, avoid: Option<NodeId>, out: &mut Resolution) {
        if self.assumed.contains(&dep.name) {
            return;
        }
        let candidates = self.index.candidates(dep);
        let chosen = candidates
            .iter()
            .find(|p| Some(p.bin.node) != avoid)
            .or(candidates.first());
        match chosen {
            Some(p) => out.add(p.bin),
            None if self.base.contains(&dep.name) => {}
            None => out.missing = true,
        }
    }

    /// Policy for rich dependencies (documented in `graph` module docs):
    /// `and`/`with` need every operand; `or` takes the first alternative that
    /// resolves completely (deterministic, like a distribution default);
    /// `without` needs its first operand; `if`/`unless` are conditional on
    /// what else gets installed, which is unknown before building, so both
    /// branches are treated as optional: whatever resolves adds ordering
    /// edges, nothing there is reported unresolved, and the condition itself
    /// adds nothing.
    fn rich(&self, dep: &RichDep, avoid: Option<NodeId>, out: &mut Resolution) {
        match dep {
            RichDep::Atom(d) => self.atom(d, avoid, out),
            RichDep::And(items) | RichDep::With(items) => {
                for item in items {
                    self.rich(item, avoid, out);
                }
            }
            RichDep::Or(items) => {
                for item in items {
                    let mut alt = Resolution::default();
                    self.rich(item, avoid, &mut alt);
                    if !alt.missing {
                        out.merge(alt);
                        return;
                    }
                }
                out.missing = true;
            }
            RichDep::Without(first, _) => self.rich(first, avoid, out),
            RichDep::If {
                then, otherwise, ..
            }
            | RichDep::Unless {
                then, otherwise, ..
            } => {
                for branch in std::iter::once(then).chain(otherwise.iter()) {
                    let mut opt = Resolution::default();
                    self.rich(branch, avoid, &mut opt);
                    opt.missing = false;
                    out.merge(opt);
                }
            }
        }
    }
}
