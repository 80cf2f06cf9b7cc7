//! The provider index: who provides which capability, looked up by name.

use super::{BinRef, SourceNode};
use crate::evr::{satisfies, Evr};
use crate::spec::{Constraint, Dependency, Op};
use std::cmp::Ordering;
use std::collections::HashMap;

/// One capability offered by one built binary package.
pub(crate) struct Provide {
    pub bin: BinRef,
    /// `None` for an unversioned Provides.
    pub constraint: Option<Constraint>,
    /// The package's own name (implicit self-provide), not a virtual Provides.
    pub real: bool,
    /// The version that ranks this provider: the Provides' own EVR when it has
    /// one, else the package's EVR.
    pub rank: Evr,
}

/// Capabilities by name. Lookups cost one hash probe plus the (few)
/// providers of that name, never a scan over all provides.
pub(crate) struct ProviderIndex {
    by_name: HashMap<String, Vec<Provide>>,
}

impl ProviderIndex {
    /// `isa` is the target's rpm ISA tag (`x86-64`): rpmbuild also gives
    /// every non-noarch package `name(isa) = evr`, which `%{?_isa}` Requires use.
    pub fn new(nodes: &[SourceNode], isa: Option<&str>) -> ProviderIndex {
        let mut by_name: HashMap<String, Vec<Provide>> = HashMap::new();
        for (n, node) in nodes.iter().enumerate() {
            let evr_text = node.spec.evr();
            let evr = Evr::parse(&evr_text);
            for (p, pkg) in node
                .spec
                .packages
                .iter()
                .enumerate()
                .filter(|(_, p)| p.has_files)
            {
                let bin = BinRef {
                    node: n,
                    package: p,
                };
                // rpm's implicit self-provide: `name = [epoch:]version-release`.
                by_name.entry(pkg.name.clone()).or_default().push(Provide {
                    bin,
                    constraint: Some(Constraint {
                        op: Op::Eq,
                        evr: evr_text.clone(),
                    }),
                    real: true,
                    rank: evr.clone(),
                });
                let noarch = pkg
                    .build_arch
                    .as_deref()
                    .or(node.spec.build_arch.as_deref())
                    == Some("noarch");
                if let (Some(isa), false) = (isa, noarch) {
                    by_name
                        .entry(format!("{}({isa})", pkg.name))
                        .or_default()
                        .push(Provide {
                            bin,
                            constraint: Some(Constraint {
                                op: Op::Eq,
                                evr: evr_text.clone(),
                            }),
                            real: true,
                            rank: evr.clone(),
                        });
                }
                for prov in &pkg.provides {
                    let rank = match &prov.constraint {
                        Some(c) if !c.evr.is_empty() => Evr::parse(&c.evr),
                        _ => evr.clone(),
                    };
                    by_name.entry(prov.name.clone()).or_default().push(Provide {
                        bin,
                        constraint: prov.constraint.clone(),
                        real: false,
                        rank,
                    });
                }
            }
        }
        ProviderIndex { by_name }
    }

    /// The providers satisfying `dep`, best first: a package of that very
    /// name before virtual Provides (as dnf/libsolv do: `coreutils` is
    /// coreutils even though coreutils-selinux `Provides: coreutils` with a
    /// higher release), then the highest version, then the lowest node
    /// (nodes are sorted by name), then package order.
    ///
    /// File dependencies (`/usr/bin/python3`) match explicit file Provides;
    /// failing that, as a heuristic (we do not know the `%files` contents
    /// before building), a package named like the file's basename
    /// (`python3`).
    pub fn candidates(&self, dep: &Dependency) -> Vec<&Provide> {
        let mut found: Vec<&Provide> = self
            .by_name
            .get(&dep.name)
            .map(|list| {
                list.iter()
                    .filter(|p| satisfies(p.constraint.as_ref(), dep.constraint.as_ref()))
                    .collect()
            })
            .unwrap_or_default();
        if found.is_empty() && dep.is_file() {
            let base = dep.name.rsplit('/').next().unwrap_or("");
            if !base.is_empty() {
                found = self
                    .by_name
                    .get(base)
                    .map(|l| l.iter().collect())
                    .unwrap_or_default();
            }
        }
        found.sort_by(|a, b| {
            b.real
                .cmp(&a.real)
                .then_with(|| match b.rank.cmp_rpm(&a.rank) {
                    Ordering::Equal => a.bin.cmp(&b.bin),
                    other => other,
                })
        });
        // One binary package may provide the name twice (self-provide and an
        // explicit Provides); keep its best entry only.
        let mut seen: Vec<BinRef> = Vec::with_capacity(found.len());
        found.retain(|p| {
            let new = !seen.contains(&p.bin);
            seen.push(p.bin);
            new
        });
        found
    }
}
