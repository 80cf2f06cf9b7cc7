//! What the scheduler accepted, file by file: for every source package
//! (also those no longer in the plan: their files stay on the share) its
//! last accepted build, and for every accepted `stage/` path the package
//! that owns it. This is what `stage/RPMS` and `stage/SRPMS` must hold
//! (`GET /v1/rpms`, `dbuild verify`).

use crate::db::AcceptedRow;
use crate::incoming::{AcceptedFile, Promotion};
use dbuild_common::share::{AcceptedRpm, RpmsPage};
use dbuild_common::wire::RpmFile;
use std::collections::{BTreeMap, HashMap, HashSet};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Accepted {
    by_pkg: HashMap<String, AcceptedRow>,
    /// Accepted path -> owning package, in path order (for pages).
    owners: BTreeMap<String, String>,
    /// Accepting lease -> package, for each package's current record.
    by_lease: HashMap<String, String>,
}

/// Another source package already owns an accepted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedElsewhere {
    pub path: String,
    pub owner: String,
}

impl Accepted {
    /// From the state file's rows, by package.
    pub fn new(rows: HashMap<String, AcceptedRow>) -> Accepted {
        let mut a = Accepted::default();
        for (pkg, row) in rows {
            a.insert(pkg, row);
        }
        a
    }

    fn insert(&mut self, pkg: String, row: AcceptedRow) {
        for r in &row.rpms {
            self.owners.insert(r.path.clone(), pkg.clone());
        }
        if let Some(l) = &row.lease_id {
            self.by_lease.insert(l.clone(), pkg.clone());
        }
        self.by_pkg.insert(pkg, row);
    }

    fn remove(&mut self, pkg: &str) -> Option<AcceptedRow> {
        let old = self.by_pkg.remove(pkg)?;
        for r in &old.rpms {
            if self.owners.get(&r.path).is_some_and(|o| o == pkg) {
                self.owners.remove(&r.path);
            }
        }
        if let Some(l) = &old.lease_id {
            self.by_lease.remove(l);
        }
        Some(old)
    }

    /// The last accepted build of `pkg`.
    pub fn get(&self, pkg: &str) -> Option<&AcceptedRow> {
        self.by_pkg.get(pkg)
    }

    /// The package whose current record lease `lease_id`'s report made.
    pub fn package_of_lease(&self, lease_id: &str) -> Option<&str> {
        self.by_lease.get(lease_id).map(String::as_str)
    }

    /// The package owning accepted path `path`.
    pub fn owner(&self, path: &str) -> Option<&str> {
        self.owners.get(path).map(String::as_str)
    }

    /// The first of `rpms` that another package than `pkg` owns.
    pub fn owned_elsewhere(&self, pkg: &str, rpms: &[RpmFile]) -> Option<OwnedElsewhere> {
        rpms.iter().find_map(|r| {
            self.owner(&r.path)
                .filter(|o| *o != pkg)
                .map(|o| OwnedElsewhere {
                    path: r.path.clone(),
                    owner: o.to_string(),
                })
        })
    }

    /// Records `rpms` as `pkg`'s accepted build (made by lease `lease_id`)
    /// and returns the new record: its `replaced` lists the paths of the
    /// previous record (and of what that one had still to remove) that the
    /// new build does not have. Call [`Accepted::owned_elsewhere`] first.
    pub fn accept(
        &mut self,
        pkg: &str,
        lease_id: &str,
        input_hash: &str,
        rpms: Vec<RpmFile>,
    ) -> AcceptedRow {
        let new_paths: HashSet<&str> = rpms.iter().map(|r| r.path.as_str()).collect();
        let mut replaced: Vec<String> = self
            .remove(pkg)
            .map(|old| {
                old.rpms
                    .into_iter()
                    .map(|r| r.path)
                    .chain(old.replaced)
                    .filter(|p| !new_paths.contains(p.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        replaced.sort();
        replaced.dedup();
        let row = AcceptedRow {
            input_hash: input_hash.to_string(),
            rpms,
            lease_id: Some(lease_id.to_string()),
            replaced,
        };
        self.insert(pkg.to_string(), row.clone());
        row
    }

    /// Up to `limit` accepted files after path `after`, in path order.
    pub fn page(&self, after: Option<&str>, limit: usize) -> RpmsPage {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_string()));
        let mut rpms = Vec::new();
        let mut next_after = None;
        for (path, pkg) in self.owners.range((start, Bound::Unbounded)) {
            if rpms.len() == limit {
                next_after = rpms.last().map(|r: &AcceptedRpm| r.path.clone());
                break;
            }
            let Some(row) = self.by_pkg.get(pkg) else {
                continue;
            };
            let Some(file) = row.rpms.iter().find(|r| &r.path == path) else {
                continue;
            };
            rpms.push(AcceptedRpm {
                path: path.clone(),
                sha256: file.sha256.clone(),
                size: file.size,
                package: pkg.clone(),
                lease_id: row.lease_id.clone(),
            });
        }
        RpmsPage { rpms, next_after }
    }

    /// What making `pkg`'s current record visible takes: its files, from
    /// its lease's incoming directory, and the replaced paths nobody owns now.
    pub fn promotion(&self, pkg: &str) -> Option<Promotion> {
        let row = self.by_pkg.get(pkg)?;
        Some(Promotion {
            package: pkg.to_string(),
            lease_id: row.lease_id.clone()?,
            files: row
                .rpms
                .iter()
                .map(|r| AcceptedFile {
                    stage: r.path.clone(),
                    size: r.size,
                    sha256: r.sha256.clone(),
                })
                .collect(),
            remove: row
                .replaced
                .iter()
                .filter(|p| self.owner(p).is_none())
                .cloned()
                .collect(),
        })
    }

    /// How many files are accepted.
    pub fn len(&self) -> usize {
        self.owners.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rpm(path: &str, sha: char) -> RpmFile {
        RpmFile {
            path: path.into(),
            sha256: sha.to_string().repeat(64),
            size: Some(3),
        }
    }

    const A1: &str = "stage/RPMS/x86_64/a-1-1.x86_64.rpm";
    const A2: &str = "stage/RPMS/x86_64/a-2-1.x86_64.rpm";
    const SA1: &str = "stage/SRPMS/a-1-1.src.rpm";
    const SA2: &str = "stage/SRPMS/a-2-1.src.rpm";

    #[test]
    fn a_rebuild_replaces_what_it_no_longer_builds() {
        let mut acc = Accepted::default();
        let first = acc.accept("a", "l1", "h1", vec![rpm(A1, '1'), rpm(SA1, '2')]);
        assert!(first.replaced.is_empty());
        assert_eq!(acc.package_of_lease("l1"), Some("a"));
        // Same version again (same names, new content): nothing to remove.
        let again = acc.accept("a", "l2", "h1", vec![rpm(A1, '3'), rpm(SA1, '4')]);
        assert!(again.replaced.is_empty());
        assert_eq!(acc.package_of_lease("l1"), None, "l1 is superseded");
        // A new version: the old files go.
        let newer = acc.accept("a", "l3", "h2", vec![rpm(A2, '5'), rpm(SA2, '6')]);
        assert_eq!(newer.replaced, vec![A1.to_string(), SA1.to_string()]);
        assert_eq!(acc.owner(A1), None);
        assert_eq!(acc.owner(A2), Some("a"));
        assert_eq!(acc.len(), 2);
        // What a record still had to remove is carried over (its promotion may not have run).
        let back = acc.accept("a", "l4", "h1", vec![rpm(A1, '7')]);
        let expect = [A2, SA1, SA2].map(String::from).to_vec();
        assert_eq!(back.replaced, expect);
        let p = acc.promotion("a").unwrap();
        assert_eq!((p.lease_id.as_str(), p.files.len()), ("l4", 1));
        assert_eq!(p.remove, expect);
        // A replaced path someone else owns now is not removed.
        acc.accept("b", "l5", "h", vec![rpm(SA2, '8')]);
        assert_eq!(
            acc.promotion("a").unwrap().remove,
            [A2, SA1].map(String::from).to_vec()
        );
    }

    #[test]
    fn another_packages_path_is_found() {
        let mut acc = Accepted::default();
        acc.accept("a", "l1", "h", vec![rpm(A1, '1')]);
        assert_eq!(acc.owned_elsewhere("a", &[rpm(A1, '2')]), None);
        assert_eq!(
            acc.owned_elsewhere("b", &[rpm(SA1, '2'), rpm(A1, '2')]),
            Some(OwnedElsewhere {
                path: A1.into(),
                owner: "a".into()
            })
        );
    }

    #[test]
    fn pages_walk_every_file_in_path_order() {
        let mut rows = HashMap::new();
        for (pkg, n) in [("a", 1), ("b", 2), ("c", 3)] {
            rows.insert(
                pkg.to_string(),
                AcceptedRow {
                    input_hash: "h".into(),
                    rpms: (0..n)
                        .map(|k| rpm(&format!("stage/RPMS/noarch/{pkg}{k}-1-1.noarch.rpm"), 'a'))
                        .collect(),
                    lease_id: Some(format!("lease-{pkg}")),
                    replaced: vec![],
                },
            );
        }
        let acc = Accepted::new(rows);
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = acc.page(after.as_deref(), 4);
            assert!(page.rpms.len() <= 4);
            seen.extend(
                page.rpms
                    .iter()
                    .map(|r| (r.path.clone(), r.package.clone())),
            );
            match page.next_after {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 6);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            seen[0],
            ("stage/RPMS/noarch/a0-1-1.noarch.rpm".into(), "a".into())
        );
        assert_eq!(
            acc.page(None, 100).rpms[5].lease_id.as_deref(),
            Some("lease-c")
        );
    }
}
