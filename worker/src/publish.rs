//! Publishing built RPMs and the SRPM to the share, atomically.
//!
//! Each file is copied to a temporary name in the destination directory,
//! fsynced, then linked to its final name (`link(2)` fails if the name exists,
//! so two writers never clobber each other), and the directory is fsynced.
//! An existing file of the same name with the same content is left alone. A
//! different one is replaced (with a warning) only when it was built from the
//! same source RPM (a rebuild of the same package, e.g. a retried attempt);
//! a file of the same name from another source package is a conflict and
//! fails the build, naming both.

use sha2::{Digest, Sha256};
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
}

/// A file of the same name from another source package is already published.
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
    /// Relative to the build directory.
    pub rel_path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// sha256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
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
    Ok((hex::encode(h.finalize()), total))
}

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

/// What is already at a publication's destination.
enum Existing {
    Absent,
    /// Identical content.
    Same,
    /// An earlier build of the same source package (its sha256).
    Rebuild(String),
}

/// Compares `dest` with `src` (sha256 `sha256`); a file of another source package is a conflict.
fn existing_state(
    package: &str,
    src: &Path,
    dest: &Path,
    sha256: &str,
) -> Result<Existing, PublishError> {
    match sha256_file(dest) {
        Ok((existing, _)) if existing == sha256 => Ok(Existing::Same),
        Ok((existing, _)) => {
            let (old_src, new_src) = (source_rpm_of(dest), source_rpm_of(src));
            if old_src != new_src {
                let show = |s: Option<String>| s.unwrap_or_else(|| "itself (a source RPM)".into());
                return Err(PublishError::Conflict(Box::new(Conflict {
                    package: package.into(),
                    path: dest.to_path_buf(),
                    existing,
                    existing_src: show(old_src),
                    new: sha256.to_string(),
                    new_src: show(new_src),
                })));
            }
            Ok(Existing::Rebuild(existing))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Absent),
        Err(e) => Err(PublishError::Io {
            package: package.into(),
            path: dest.to_path_buf(),
            source: e,
        }),
    }
}

/// Publishes one file into `dest_dir` (see the module doc).
pub fn publish_file(
    package: &str,
    src: &Path,
    dest_dir: &Path,
    build_dir: &Path,
) -> Result<Published, PublishError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io {
            package: package.into(),
            path,
            source,
        }
    };
    std::fs::create_dir_all(dest_dir).map_err(io(dest_dir))?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dest = dest_dir.join(&name);
    let (sha256, bytes) = sha256_file(src).map_err(io(src))?;
    let rel_path = dest
        .strip_prefix(build_dir)
        .unwrap_or(&dest)
        .to_string_lossy()
        .into_owned();
    let published = Published {
        rel_path,
        sha256: sha256.clone(),
        bytes,
    };
    let replace = match existing_state(package, src, &dest, &sha256)? {
        Existing::Same => return Ok(published),
        Existing::Rebuild(old) => {
            tracing::warn!(package, file = %dest.display(), old_sha256 = %old, new_sha256 = %sha256, "replacing an earlier build of the same source package");
            true
        }
        Existing::Absent => false,
    };
    let tmp = dest_dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let copy = || -> std::io::Result<()> {
        let mut input = std::fs::File::open(src)?;
        let mut out = std::fs::File::create(&tmp)?;
        std::io::copy(&mut input, &mut out)?;
        out.flush()?;
        out.sync_all()
    };
    let result = copy().and_then(|()| {
        if replace {
            std::fs::rename(&tmp, &dest)
        } else {
            std::fs::hard_link(&tmp, &dest)
        }
    });
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another writer linked the same name in between: compare again.
            return publish_file(package, src, dest_dir, build_dir);
        }
        Err(e) => {
            return Err(PublishError::Io {
                package: package.into(),
                path: dest,
                source: e,
            })
        }
    }
    fsync_dir(dest_dir).map_err(io(dest_dir))?;
    Ok(published)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Publishes everything rpmbuild left in `topdir` (RPMS/<arch>/ and SRPMS/).
pub fn publish_outputs(
    package: &str,
    topdir: &Path,
    build_dir: &Path,
) -> Result<Vec<Published>, PublishError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io {
            package: package.into(),
            path,
            source,
        }
    };
    let mut out = Vec::new();
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    let rpms = topdir.join("RPMS");
    for arch_dir in std::fs::read_dir(&rpms).map_err(io(&rpms))?.flatten() {
        let arch = arch_dir.file_name();
        for f in std::fs::read_dir(arch_dir.path())
            .map_err(io(&arch_dir.path()))?
            .flatten()
        {
            if f.path().extension().is_some_and(|x| x == "rpm") {
                files.push((f.path(), build_dir.join("stage/RPMS").join(&arch)));
            }
        }
    }
    let srpms = topdir.join("SRPMS");
    for f in std::fs::read_dir(&srpms).map_err(io(&srpms))?.flatten() {
        if f.path().extension().is_some_and(|x| x == "rpm") {
            files.push((f.path(), build_dir.join("stage/SRPMS")));
        }
    }
    if files.is_empty() {
        return Err(PublishError::Nothing {
            package: package.into(),
        });
    }
    files.sort();
    // Refuse before publishing anything when one of the files conflicts.
    for (src, dest_dir) in &files {
        let name = src.file_name().unwrap_or_default();
        let (sha256, _) = sha256_file(src).map_err(io(src))?;
        existing_state(package, src, &dest_dir.join(name), &sha256)?;
    }
    for (src, dest_dir) in files {
        out.push(publish_file(package, &src, &dest_dir, build_dir)?);
    }
    Ok(out)
}
