//! The layout of a build directory on the shared volume, as far as the
//! publish/accept protocol is concerned, and the rule `dbuild verify` checks.
//!
//! ```text
//! <build-dir>/stage/RPMS/<arch>/<file>.rpm     accepted binary RPMs (written by the scheduler only)
//! <build-dir>/stage/SRPMS/<file>.src.rpm       accepted source RPMs (written by the scheduler only)
//! <build-dir>/incoming/<lease_id>/RPMS/<arch>/<file>.rpm   what the worker holding lease_id published
//! <build-dir>/incoming/<lease_id>/SRPMS/<file>.src.rpm
//! ```
//!
//! A worker publishes only into its lease's incoming directory; the scheduler
//! moves the files of an accepted report into `stage/`. Reports and the
//! scheduler's records name the final `stage/...` paths; [`incoming_path`]
//! maps one to the other. Pure logic: no I/O here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use utoipa::ToSchema;

/// The directory of the lease directories, relative to the build directory.
pub const INCOMING: &str = "incoming";
/// Accepted binary RPMs, relative to the build directory.
pub const STAGE_RPMS: &str = "stage/RPMS";
/// Accepted source RPMs, relative to the build directory.
pub const STAGE_SRPMS: &str = "stage/SRPMS";

/// A path or lease id that does not fit the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("lease id {0:?} must be 1-64 characters of [A-Za-z0-9_-]")]
    LeaseId(String),
    #[error("{0:?} is not stage/RPMS/<arch>/<file>.rpm or stage/SRPMS/<file>.rpm")]
    StagePath(String),
}

/// A lease id usable as one directory name: no separator, no dot, bounded.
/// (The scheduler makes them as random UUIDs, unique across its lifetimes.)
pub fn valid_lease_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A plain file or directory name: not empty, not `.` or `..`, no `/` or NUL.
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']) && s.len() <= 255
}

/// `incoming/<lease_id>`, relative to the build directory.
pub fn incoming_dir(lease_id: &str) -> Result<String, LayoutError> {
    if !valid_lease_id(lease_id) {
        return Err(LayoutError::LeaseId(lease_id.into()));
    }
    Ok(format!("{INCOMING}/{lease_id}"))
}

/// Where the worker holding `lease_id` puts the file that `stage_path`
/// (`stage/RPMS/<arch>/<file>.rpm` or `stage/SRPMS/<file>.rpm`) names, relative
/// to the build directory: `incoming/<lease_id>/RPMS/<arch>/<file>.rpm` or
/// `incoming/<lease_id>/SRPMS/<file>.rpm`. Anything else (more or fewer
/// levels, `..`, an absolute path) is refused, so the result never leaves
/// the lease's directory.
pub fn incoming_path(lease_id: &str, stage_path: &str) -> Result<String, LayoutError> {
    let dir = incoming_dir(lease_id)?;
    let bad = || LayoutError::StagePath(stage_path.into());
    if !stage_path.ends_with(".rpm") {
        return Err(bad());
    }
    let parts: Vec<&str> = stage_path.split('/').collect();
    if !parts.iter().all(|p| plain_name(p)) {
        return Err(bad());
    }
    match parts.as_slice() {
        ["stage", "RPMS", arch, file] => Ok(format!("{dir}/RPMS/{arch}/{file}")),
        ["stage", "SRPMS", file] => Ok(format!("{dir}/SRPMS/{file}")),
        _ => Err(bad()),
    }
}

/// `stage/RPMS/<arch>/<file>`: where an accepted binary RPM goes.
pub fn stage_rpm_path(arch: &str, file: &str) -> String {
    format!("{STAGE_RPMS}/{arch}/{file}")
}

/// `stage/SRPMS/<file>`: where an accepted source RPM goes.
pub fn stage_srpm_path(file: &str) -> String {
    format!("{STAGE_SRPMS}/{file}")
}

/// One file the scheduler accepted, as `GET /v1/rpms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AcceptedRpm {
    /// Relative to the build directory (`stage/RPMS/<arch>/<file>.rpm`, `stage/SRPMS/<file>.rpm`).
    pub path: String,
    /// Lower-case hex sha256, as reported by the worker whose build was accepted.
    pub sha256: String,
    /// Size in bytes as the scheduler saw it when it accepted the file (absent in
    /// records made before sizes were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The source package that owns it.
    pub package: String,
    /// The lease whose report was accepted (absent in records made before leases were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
}

/// One page of `GET /v1/rpms`, in path order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RpmsPage {
    pub rpms: Vec<AcceptedRpm>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// How the share differs from what the scheduler accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An accepted file is not there (or cannot be read).
    Missing {
        path: String,
        package: String,
        detail: String,
    },
    /// An accepted file has other content.
    Mismatch {
        path: String,
        package: String,
        expected: String,
        found: String,
    },
    /// A file in stage/RPMS or stage/SRPMS that nobody accepted (temporary files included).
    NotAccepted { path: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing {
                path,
                package,
                detail,
            } => write!(f, "missing: {path} (package {package}): {detail}"),
            Problem::Mismatch {
                path,
                package,
                expected,
                found,
            } => write!(
                f,
                "sha256 mismatch: {path} (package {package}): accepted {expected}, found {found}"
            ),
            Problem::NotAccepted { path } => write!(f, "not accepted: {path}"),
        }
    }
}

/// The share against the accepted files: every accepted file present with its
/// recorded sha256, and nothing else under stage/RPMS and stage/SRPMS.
/// `present` lists the files found there (relative to the build directory);
/// `sha256_of` hashes one of them (the caller's I/O). Problems come in path order.
pub fn compare<E: std::fmt::Display>(
    accepted: &[AcceptedRpm],
    present: &BTreeSet<String>,
    mut sha256_of: impl FnMut(&str) -> Result<String, E>,
) -> Vec<Problem> {
    let mut problems = BTreeMap::new();
    let mut expected = BTreeSet::new();
    for a in accepted {
        expected.insert(a.path.as_str());
        let problem = if !present.contains(&a.path) {
            Some(Problem::Missing {
                path: a.path.clone(),
                package: a.package.clone(),
                detail: "no such file".into(),
            })
        } else {
            match sha256_of(&a.path) {
                Ok(found) if found == a.sha256 => None,
                Ok(found) => Some(Problem::Mismatch {
                    path: a.path.clone(),
                    package: a.package.clone(),
                    expected: a.sha256.clone(),
                    found,
                }),
                Err(e) => Some(Problem::Missing {
                    path: a.path.clone(),
                    package: a.package.clone(),
                    detail: format!("unreadable: {e}"),
                }),
            }
        };
        if let Some(p) = problem {
            problems.insert(a.path.clone(), p);
        }
    }
    for p in present.iter().filter(|p| !expected.contains(p.as_str())) {
        problems.insert(p.clone(), Problem::NotAccepted { path: p.clone() });
    }
    problems.into_values().collect()
}

/// sha256 (lower-case hex) and size of a file: what reports record and
/// `dbuild verify` and the scheduler's promotion redo compare.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((format!("{:x}", h.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_paths_map_into_the_lease_directory() {
        let lease = "0b9c-42_x";
        assert_eq!(
            incoming_path(lease, "stage/RPMS/x86_64/a-1-1.x86_64.rpm"),
            Ok("incoming/0b9c-42_x/RPMS/x86_64/a-1-1.x86_64.rpm".into())
        );
        assert_eq!(
            incoming_path(lease, "stage/SRPMS/a-1-1.src.rpm"),
            Ok("incoming/0b9c-42_x/SRPMS/a-1-1.src.rpm".into())
        );
        assert_eq!(
            incoming_path(lease, &stage_rpm_path("noarch", "b-2-1.noarch.rpm")),
            Ok(format!("{INCOMING}/{lease}/RPMS/noarch/b-2-1.noarch.rpm"))
        );
        assert_eq!(
            incoming_path(lease, &stage_srpm_path("b-2-1.src.rpm")),
            Ok(format!("{INCOMING}/{lease}/SRPMS/b-2-1.src.rpm"))
        );
    }

    #[test]
    fn no_path_leaves_its_directory() {
        let lease = "l1";
        for bad in [
            "stage/RPMS/../../etc/passwd.rpm",
            "stage/RPMS/x86_64/../../../x.rpm",
            "stage/RPMS/../x.rpm",
            "stage/SRPMS/../RPMS/x.rpm",
            "stage/SRPMS/..",
            "stage/RPMS/./x.rpm",
            "/stage/RPMS/x86_64/a.rpm",
            "stage//RPMS/x86_64/a.rpm",
            "stage/RPMS/a.rpm",
            "stage/RPMS/x86_64/deeper/a.rpm",
            "stage/SRPMS/x86_64/a.rpm",
            "stage/LOGS/a/1.rpm",
            "stage/RPMS/x86_64/a.txt",
            "stage/RPMS/x86_64/a\0.rpm",
            "incoming/other/RPMS/x86_64/a.rpm",
            "",
        ] {
            assert_eq!(
                incoming_path(lease, bad),
                Err(LayoutError::StagePath(bad.into())),
                "{bad:?}"
            );
        }
        for bad_lease in ["", "..", ".", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert_eq!(
                incoming_path(bad_lease, "stage/SRPMS/a.src.rpm"),
                Err(LayoutError::LeaseId(bad_lease.into())),
                "{bad_lease:?}"
            );
        }
        assert!(valid_lease_id("3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"));
    }

    fn acc(path: &str, sha: &str) -> AcceptedRpm {
        AcceptedRpm {
            path: path.into(),
            sha256: sha.into(),
            size: None,
            package: "p".into(),
            lease_id: None,
        }
    }

    #[test]
    fn compare_names_each_kind_of_problem() {
        let accepted = [
            acc("stage/RPMS/x86_64/ok-1-1.x86_64.rpm", "aa"),
            acc("stage/RPMS/x86_64/changed-1-1.x86_64.rpm", "bb"),
            acc("stage/SRPMS/gone-1-1.src.rpm", "cc"),
            acc("stage/SRPMS/unreadable-1-1.src.rpm", "dd"),
        ];
        let present: BTreeSet<String> = [
            "stage/RPMS/x86_64/ok-1-1.x86_64.rpm",
            "stage/RPMS/x86_64/changed-1-1.x86_64.rpm",
            "stage/SRPMS/unreadable-1-1.src.rpm",
            "stage/RPMS/x86_64/.planted.rpm.tmp-1",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let problems = compare(&accepted, &present, |p| match p {
            "stage/RPMS/x86_64/ok-1-1.x86_64.rpm" => Ok("aa".to_string()),
            "stage/RPMS/x86_64/changed-1-1.x86_64.rpm" => Ok("ee".to_string()),
            _ => Err("permission denied"),
        });
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "not accepted: stage/RPMS/x86_64/.planted.rpm.tmp-1",
                "sha256 mismatch: stage/RPMS/x86_64/changed-1-1.x86_64.rpm (package p): accepted bb, found ee",
                "missing: stage/SRPMS/gone-1-1.src.rpm (package p): no such file",
                "missing: stage/SRPMS/unreadable-1-1.src.rpm (package p): unreadable: permission denied",
            ]
        );
    }

    #[test]
    fn a_matching_share_has_no_problem() {
        let accepted = [acc("stage/SRPMS/a-1-1.src.rpm", "aa")];
        let present: BTreeSet<String> = ["stage/SRPMS/a-1-1.src.rpm".to_string()].into();
        assert!(compare(&accepted, &present, |_| Ok::<_, String>("aa".into())).is_empty());
        assert!(compare(&[], &BTreeSet::new(), |_| Ok::<_, String>(String::new())).is_empty());
    }
}
