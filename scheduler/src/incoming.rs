//! The scheduler's side of `<build-dir>/incoming/`: the files a worker
//! publishes for its lease wait there, outside `stage/`, until the scheduler
//! accepts the lease's report. Then (after the acceptance is committed) they
//! are renamed into `stage/`: the scheduler is the only writer of
//! `stage/RPMS` and `stage/SRPMS`, so what they show is exactly what it
//! accepted. Directories of leases that were not accepted are removed unseen.
//!
//! Everything here is file I/O (no state); what to do with a directory is
//! decided by [`decide`] from the lease's status.

use dbuild_common::share::{incoming_dir, incoming_path, sha256_file, LayoutError, INCOMING};
use dbuild_common::wire::RpmFile;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to promote for one accepted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub package: String,
    pub lease_id: String,
    /// The accepted files.
    pub files: Vec<AcceptedFile>,
    /// Stage paths of the package's previous build that no record owns any more.
    pub remove: Vec<String>,
}

/// One accepted file of a [`Promotion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedFile {
    /// Stage path, relative to the build directory.
    pub stage: String,
    /// The size the scheduler saw when it accepted the file.
    pub size: Option<u64>,
    /// The sha256 the worker reported and the scheduler recorded.
    pub sha256: String,
}

/// Whose bytes a promotion moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Right after the report's acceptance was committed: the files the
    /// lease's holder published and reported, just checked.
    First,
    /// Again later (after a restart or a failed attempt): the lease's
    /// directory may hold anything a late writer put there since, so only a
    /// file with the accepted sha256 is moved; any other is deleted unseen.
    Redo,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("package {package}: {path}: {source}")]
    Io {
        package: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "package {package}: {path} is neither in {incoming} nor in stage/ with the accepted size"
    )]
    Missing {
        package: String,
        path: String,
        incoming: String,
    },
    #[error("package {package}: {source}")]
    Layout {
        package: String,
        source: LayoutError,
    },
}

/// The sizes of the files a success report names, found in the lease's
/// incoming directory; the error is the reason to refuse the report (a
/// transient failure: the worker's publication did not make it).
pub fn check_reported(
    build_dir: &Path,
    lease_id: &str,
    rpms: &[RpmFile],
) -> Result<Vec<u64>, String> {
    rpms.iter()
        .map(|r| {
            let rel = incoming_path(lease_id, &r.path).map_err(|e| e.to_string())?;
            let meta = std::fs::symlink_metadata(build_dir.join(&rel)).map_err(|e| {
                format!(
                    "reported {} but {rel} cannot be read ({e}); nothing accepted",
                    r.path
                )
            })?;
            if !meta.is_file() {
                return Err(format!(
                    "reported {} but {rel} is not a regular file; nothing accepted",
                    r.path
                ));
            }
            match r.size {
                Some(size) if size != meta.len() => Err(format!(
                    "reported {} with {size} bytes but {rel} has {}; nothing accepted",
                    r.path,
                    meta.len()
                )),
                _ => Ok(meta.len()),
            }
        })
        .collect()
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Renames the accepted files from `incoming/<lease>/` to their `stage/`
/// paths (replacing a same-named file of the package's earlier build
/// atomically), removes `p.remove` and then the lease's directory; with
/// `sync`, the stage directories are fsynced before the removals. A file
/// already moved counts as done when its stage copy has the accepted size
/// ([`Pass::First`]) or sha256 ([`Pass::Redo`]).
pub fn promote(
    build_dir: &Path,
    p: &Promotion,
    sync: bool,
    pass: Pass,
) -> Result<(), PromoteError> {
    let io = |path: &Path| {
        let (package, path) = (p.package.clone(), path.to_path_buf());
        move |source| PromoteError::Io {
            package,
            path,
            source,
        }
    };
    let mut touched = BTreeSet::new();
    for AcceptedFile {
        stage,
        size,
        sha256,
    } in &p.files
    {
        let rel = incoming_path(&p.lease_id, stage).map_err(|source| PromoteError::Layout {
            package: p.package.clone(),
            source,
        })?;
        let (src, dest) = (build_dir.join(&rel), build_dir.join(stage));
        let Some(dir) = dest.parent() else {
            continue;
        };
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            // The new directory's own entry.
            touched.extend(dir.parent().map(Path::to_path_buf));
        }
        if pass == Pass::Redo && src.exists() && !has_sha256(&src, sha256) {
            tracing::warn!(package = %p.package, file = %rel, "not the accepted content: deleted unseen");
            std::fs::remove_file(&src).map_err(io(&src))?;
        }
        match std::fs::rename(&src, &dest) {
            Ok(()) => {
                touched.insert(dir.to_path_buf());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !src.exists() => {
                let done = match pass {
                    Pass::First => std::fs::symlink_metadata(&dest)
                        .is_ok_and(|m| m.is_file() && size.is_none_or(|s| s == m.len())),
                    Pass::Redo => has_sha256(&dest, sha256),
                };
                if !done {
                    return Err(PromoteError::Missing {
                        package: p.package.clone(),
                        path: stage.clone(),
                        incoming: rel,
                    });
                }
            }
            Err(e) => return Err(io(&dest)(e)),
        }
    }
    if sync {
        for dir in &touched {
            fsync_dir(dir).map_err(io(dir))?;
        }
    }
    let mut emptied = BTreeSet::new();
    for stage in &p.remove {
        let path = build_dir.join(stage);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                emptied.extend(path.parent().map(Path::to_path_buf));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
    }
    if sync {
        for dir in &emptied {
            fsync_dir(dir).map_err(io(dir))?;
        }
    }
    remove_lease_dir(build_dir, &p.lease_id).map_err(io(&build_dir.join(INCOMING)))
}

/// Whether the regular file at `path` has content `sha256`.
fn has_sha256(path: &Path, sha256: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && sha256_file(path).is_ok_and(|(h, _)| h == sha256)
}

/// Removes `incoming/<lease_id>` and everything in it (nothing there is ever
/// visible); absent is fine.
pub fn remove_lease_dir(build_dir: &Path, lease_id: &str) -> std::io::Result<()> {
    let Ok(rel) = incoming_dir(lease_id) else {
        return Ok(());
    };
    match std::fs::remove_dir_all(build_dir.join(rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The entries of `incoming/` (lease ids, or whatever else is there); none
/// when it does not exist.
pub fn lease_dirs(build_dir: &Path) -> std::io::Result<Vec<String>> {
    let dir = build_dir.join(INCOMING);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        out.push(e?.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// Removes an entry of `incoming/` that is not a lease's directory (a stray
/// file, a name that cannot be a lease id).
pub fn remove_stray(build_dir: &Path, name: &str) -> std::io::Result<()> {
    let path = build_dir.join(INCOMING).join(name);
    let result = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
        Ok(_) => std::fs::remove_file(&path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What the scheduler knows of the lease an incoming directory is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Its report was accepted and is its package's current record.
    Accepted,
    /// Accepted just now: the report's handler is committing it and then
    /// moving its files (nobody else may move them before the commit).
    Accepting,
    /// Still live: its worker may be writing there.
    Live,
    /// Closed (expired, revoked, reported and refused, superseded) at this
    /// time; `None`: before this scheduler started.
    Closed { since_ms: Option<u64> },
    /// Not a lease of this build directory (or forgotten long ago).
    Unknown,
}

/// What to do with an incoming directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Move its files into stage/ (redo: idempotent).
    Promote,
    /// Leave it: a worker may still write there.
    Keep,
    /// Delete it: nothing in it will ever be visible.
    Remove,
}

/// The directory of a lease with `status`, at `now_ms`. A lease closed less
/// than `grace_ms` ago keeps its directory for a while (a late worker may
/// still be writing there; removing it under its feet only makes it write
/// again); one closed before this scheduler started has no such grace.
pub fn decide(status: LeaseStatus, now_ms: u64, grace_ms: u64) -> Decision {
    match status {
        LeaseStatus::Accepted => Decision::Promote,
        LeaseStatus::Live | LeaseStatus::Accepting => Decision::Keep,
        LeaseStatus::Closed {
            since_ms: Some(since),
        } if now_ms.saturating_sub(since) < grace_ms => Decision::Keep,
        LeaseStatus::Closed { .. } | LeaseStatus::Unknown => Decision::Remove,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reconcile_decisions() {
        let grace = 9_000;
        assert_eq!(decide(LeaseStatus::Accepted, 100, grace), Decision::Promote);
        assert_eq!(decide(LeaseStatus::Live, 100, grace), Decision::Keep);
        assert_eq!(
            decide(LeaseStatus::Accepting, 100, grace),
            Decision::Keep,
            "not before its acceptance is committed"
        );
        let closed = |since| LeaseStatus::Closed {
            since_ms: Some(since),
        };
        assert_eq!(decide(closed(50_000), 55_000, grace), Decision::Keep);
        assert_eq!(decide(closed(50_000), 59_000, grace), Decision::Remove);
        assert_eq!(
            decide(closed(60_000), 55_000, grace),
            Decision::Keep,
            "clock went back"
        );
        assert_eq!(
            decide(LeaseStatus::Closed { since_ms: None }, 0, grace),
            Decision::Remove,
            "closed in an earlier lifetime: nothing will be accepted from it"
        );
        assert_eq!(decide(LeaseStatus::Unknown, 0, grace), Decision::Remove);
    }

    fn write(path: &Path, content: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    const RPM: &str = "stage/RPMS/x86_64/a-1-1.x86_64.rpm";
    const SRPM: &str = "stage/SRPMS/a-1-1.src.rpm";
    const OLD: &str = "stage/RPMS/x86_64/a-0-1.x86_64.rpm";

    fn sha(content: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(content))
    }

    fn accepted(stage: &str, content: &[u8]) -> AcceptedFile {
        AcceptedFile {
            stage: stage.into(),
            size: Some(content.len() as u64),
            sha256: sha(content),
        }
    }

    fn promotion(lease: &str) -> Promotion {
        Promotion {
            package: "a".into(),
            lease_id: lease.into(),
            files: vec![
                accepted(RPM, b"new"),
                AcceptedFile {
                    size: Some(4),
                    ..accepted(SRPM, b"newS")
                },
            ],
            remove: vec![OLD.into()],
        }
    }

    #[test]
    fn promotion_moves_replaces_removes_and_can_be_redone() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        write(&b.join("incoming/l1/RPMS/x86_64/a-1-1.x86_64.rpm"), b"new");
        write(&b.join("incoming/l1/SRPMS/a-1-1.src.rpm"), b"newS");
        write(&b.join("incoming/l1/RPMS/x86_64/unreported.rpm"), b"x");
        write(&b.join(OLD), b"old");
        write(&b.join(SRPM), b"prev"); // an earlier build of the same package: replaced
        let rpms = [
            RpmFile {
                path: RPM.into(),
                sha256: "0".repeat(64),
                size: Some(3),
            },
            RpmFile {
                path: SRPM.into(),
                sha256: "0".repeat(64),
                size: None,
            },
        ];
        assert_eq!(check_reported(b, "l1", &rpms), Ok(vec![3, 4]));
        let p = promotion("l1");
        promote(b, &p, true, Pass::First).unwrap();
        assert_eq!(std::fs::read(b.join(RPM)).unwrap(), b"new");
        assert_eq!(std::fs::read(b.join(SRPM)).unwrap(), b"newS");
        assert!(!b.join(OLD).exists());
        assert!(
            !b.join("incoming/l1").exists(),
            "the lease dir is gone, unreported file too"
        );
        assert_eq!(lease_dirs(b).unwrap(), Vec::<String>::new());
        // Redo (a crash after the renames): nothing left to move, all there: done.
        promote(b, &p, false, Pass::Redo).unwrap();
        // A late writer's bytes in the lease's directory are never moved on a
        // redo: deleted unseen, the accepted file stays.
        write(&b.join("incoming/l1/RPMS/x86_64/a-1-1.x86_64.rpm"), b"late");
        promote(b, &p, false, Pass::Redo).unwrap();
        assert_eq!(std::fs::read(b.join(RPM)).unwrap(), b"new");
        assert!(!b.join("incoming/l1").exists());
        // A stage file with other content than accepted is not "done" on a redo.
        write(&b.join(RPM), b"bad");
        let err = promote(b, &p, false, Pass::Redo).unwrap_err().to_string();
        assert!(err.contains(RPM), "{err}");
        write(&b.join(RPM), b"new");
        // A file neither moved nor there is missing, named.
        std::fs::remove_file(b.join(SRPM)).unwrap();
        let err = promote(b, &p, false, Pass::First).unwrap_err().to_string();
        assert!(
            err.contains(SRPM) && err.contains("incoming/l1/SRPMS/a-1-1.src.rpm"),
            "{err}"
        );
    }

    #[test]
    fn a_report_naming_absent_or_different_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        write(&b.join("incoming/l2/RPMS/x86_64/a-1-1.x86_64.rpm"), b"abc");
        let mut rpm = RpmFile {
            path: RPM.into(),
            sha256: "0".repeat(64),
            size: Some(5),
        };
        let err = check_reported(b, "l2", std::slice::from_ref(&rpm)).unwrap_err();
        assert!(err.contains("5 bytes") && err.contains("has 3"), "{err}");
        rpm.size = None;
        let err = check_reported(b, "l3", &[rpm]).unwrap_err();
        assert!(
            err.contains("incoming/l3/RPMS/x86_64/a-1-1.x86_64.rpm"),
            "{err}"
        );
    }

    #[test]
    fn strays_and_lease_dirs_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        write(&b.join("incoming/l9/RPMS/x86_64/f.rpm"), b"x");
        write(&b.join("incoming/stray-file"), b"x");
        assert_eq!(lease_dirs(b).unwrap(), ["l9", "stray-file"]);
        remove_lease_dir(b, "l9").unwrap();
        remove_lease_dir(b, "l9").unwrap();
        remove_lease_dir(b, "../../etc").unwrap(); // not a lease id: left alone
        remove_stray(b, "stray-file").unwrap();
        assert!(lease_dirs(b).unwrap().is_empty());
    }
}
