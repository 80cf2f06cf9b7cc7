//! Publishing a build's RPMs and SRPM for the scheduler to accept.
//!
//! The files go to the lease's own directory on the share,
//! `incoming/<lease_id>/RPMS/<arch>/` and `incoming/<lease_id>/SRPMS/`
//! ([`dbuild_common::share::incoming_path`]), never into `stage/`: each is
//! copied to a temporary name there, fsynced and renamed to its name, then
//! the directories are fsynced. The scheduler moves them into `stage/` once
//! it has accepted the report, so nothing a late, duplicated or killed
//! worker writes is ever shown. Before writing anything, a read-only look at
//! `stage/`: a same-named file built from another source package there is a
//! conflict, reported at once (the scheduler, which knows which package owns
//! each accepted path, would refuse the report anyway).

use dbuild_common::share;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PublishError {
    #[error("package {package}: {path}: {source}")]
    Io {
        package: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Conflict(Box<Conflict>),
    #[error("package {package}: rpmbuild produced no RPM")]
    Nothing { package: String },
    #[error("package {package}: {source}")]
    Layout {
        package: String,
        source: share::LayoutError,
    },
}

/// A file of the same name from another source package is already in `stage/`.
#[derive(Debug, Error)]
#[error("package {package}: {path} exists with different content (sha256 {existing}, built from {existing_src}) than the new build (sha256 {new}, from {new_src}); not overwriting")]
pub struct Conflict {
    pub package: String,
    pub path: PathBuf,
    pub existing: String,
    pub existing_src: String,
    pub new: String,
    pub new_src: String,
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Where it goes once accepted, relative to the build directory
    /// (`stage/RPMS/<arch>/<file>`, `stage/SRPMS/<file>`): what the report names.
    pub rel_path: String,
    /// Where it is until then, relative to the build directory
    /// (`incoming/<lease_id>/RPMS/<arch>/<file>`, ...).
    pub incoming: String,
    pub sha256: String,
    pub bytes: u64,
}

pub use dbuild_common::share::sha256_file;

fn be32(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The SOURCERPM tag of an RPM file (None for a source RPM or an unreadable header).
pub fn source_rpm_of(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4 << 20)
        .read_to_end(&mut head)
        .ok()?;
    let mut at = 96; // lead
    for header in 0..2 {
        if head.get(at..at + 3)? != [0x8e, 0xad, 0xe8] {
            return None;
        }
        let (il, dl) = (be32(&head, at + 8)?, be32(&head, at + 12)?);
        let index = at + 16;
        let store = index + il * 16;
        if header == 1 {
            for i in 0..il {
                let e = index + i * 16;
                let (tag, ty, off) = (be32(&head, e)?, be32(&head, e + 4)?, be32(&head, e + 8)?);
                if tag == 1044 && ty == 6 {
                    let s = head.get(store + off..store + dl)?;
                    let end = s.iter().position(|&c| c == 0)?;
                    return Some(String::from_utf8_lossy(&s[..end]).into_owned());
                }
            }
            return None;
        }
        at = store + dl;
        at += (8 - at % 8) % 8; // the signature header is padded to 8 bytes
    }
    None
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A file of another source package already shown at `dest` (a read-only
/// check; anything unreadable there is the scheduler's to judge).
fn conflict_at(package: &str, src: &Path, dest: &Path, sha256: &str) -> Option<Conflict> {
    let (existing, _) = sha256_file(dest).ok()?;
    if existing == sha256 {
        return None;
    }
    let (old_src, new_src) = (source_rpm_of(dest), source_rpm_of(src));
    if old_src == new_src {
        return None; // an earlier build of this package: the scheduler replaces it
    }
    let show = |s: Option<String>| s.unwrap_or_else(|| "itself (a source RPM)".into());
    Some(Conflict {
        package: package.into(),
        path: dest.to_path_buf(),
        existing,
        existing_src: show(old_src),
        new: sha256.to_string(),
        new_src: show(new_src),
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Copies `src` to `dest` through a temporary name in its directory, fsynced
/// before the rename.
fn write_file(src: &Path, dest: &Path) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let copy = || -> std::io::Result<()> {
        let mut input = std::fs::File::open(src)?;
        let mut out = std::fs::File::create(&tmp)?;
        std::io::copy(&mut input, &mut out)?;
        out.flush()?;
        out.sync_all()?;
        std::fs::rename(&tmp, dest)
    };
    let result = copy();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Publishes everything rpmbuild left in `topdir` (`RPMS/<arch>/`, `SRPMS/`)
/// into `incoming/<lease_id>/` of `build_dir` (see the module doc). Each
/// [`Published::rel_path`] is the `stage/` path the report names.
pub fn publish_outputs(
    package: &str,
    topdir: &Path,
    build_dir: &Path,
    lease_id: &str,
) -> Result<Vec<Published>, PublishError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io {
            package: package.into(),
            path,
            source,
        }
    };
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // (built file, its stage path)
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let rpms = topdir.join("RPMS");
    for arch_dir in std::fs::read_dir(&rpms).map_err(io(&rpms))?.flatten() {
        let arch = name_of(&arch_dir.path());
        for f in std::fs::read_dir(arch_dir.path())
            .map_err(io(&arch_dir.path()))?
            .flatten()
        {
            if f.path().extension().is_some_and(|x| x == "rpm") {
                files.push((f.path(), share::stage_rpm_path(&arch, &name_of(&f.path()))));
            }
        }
    }
    let srpms = topdir.join("SRPMS");
    for f in std::fs::read_dir(&srpms).map_err(io(&srpms))?.flatten() {
        if f.path().extension().is_some_and(|x| x == "rpm") {
            files.push((f.path(), share::stage_srpm_path(&name_of(&f.path()))));
        }
    }
    if files.is_empty() {
        return Err(PublishError::Nothing {
            package: package.into(),
        });
    }
    files.sort();
    let mut out = Vec::new();
    for (src, stage) in &files {
        let incoming =
            share::incoming_path(lease_id, stage).map_err(|source| PublishError::Layout {
                package: package.into(),
                source,
            })?;
        let (sha256, bytes) = sha256_file(src).map_err(io(src))?;
        // Refuse before publishing anything when one of the files conflicts.
        if let Some(c) = conflict_at(package, src, &build_dir.join(stage), &sha256) {
            return Err(PublishError::Conflict(Box::new(c)));
        }
        out.push(Published {
            rel_path: stage.clone(),
            incoming,
            sha256,
            bytes,
        });
    }
    let mut dirs = std::collections::BTreeSet::new();
    for ((src, _), p) in files.iter().zip(&out) {
        let dest = build_dir.join(&p.incoming);
        let dir = dest.parent().unwrap_or(build_dir).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        write_file(src, &dest).map_err(io(&dest))?;
        // The file's directory and the new directories' entries up to incoming/.
        let mut d = Some(dir.as_path());
        while let Some(x) = d.filter(|x| x.starts_with(build_dir) && *x != build_dir) {
            dirs.insert(x.to_path_buf());
            d = x.parent();
        }
    }
    for dir in dirs.iter().rev() {
        fsync_dir(dir).map_err(io(dir))?;
    }
    Ok(out)
}

/// Removes what this worker published for `lease_id` (best effort: after a
/// refused report or a lost lease; the scheduler sweeps what is left).
pub fn remove_incoming(build_dir: &Path, lease_id: &str) -> std::io::Result<()> {
    let Ok(rel) = share::incoming_dir(lease_id) else {
        return Ok(());
    };
    match std::fs::remove_dir_all(build_dir.join(rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
