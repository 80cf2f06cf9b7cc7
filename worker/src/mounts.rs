//! Mount-related types shared by the sandbox and the chroot, the overlayfs
//! probe, and the clean-up of what a crashed worker left behind.
//!
//! Nothing is ever mounted in the worker's own mount namespace: see
//! [`crate::sandbox`], where every mount of a build is made.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use thiserror::Error;
use tokio::process::Command;

/// How the chroot's root filesystem is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootLayout {
    /// overlayfs: `lower` (the read-only base) + `upper`/`work` in the slot, mounted at the root path.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
    },
    /// The root path is a private copy of the base; nothing to mount.
    Copy,
}

/// A directory of the host made visible inside the chroot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub host: PathBuf,
    /// Absolute path inside the chroot.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Error)]
pub enum MountError {
    #[error(
        "path {path} cannot be used in a mount option (it contains ',' or ':' or is not UTF-8)"
    )]
    BadPath { path: PathBuf },
    #[error("bind target {target} must be an absolute path without '..'")]
    BadTarget { target: String },
    #[error("cleaning leftovers in {dir}: {source}")]
    Leftovers {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Whether overlayfs can be mounted with lower `base` and upper/work under `work_dir`
/// (tried in a throw-away mount namespace).
pub async fn overlay_works(base: &Path, work_dir: &Path) -> bool {
    let probe = work_dir.join(".overlay-probe");
    let _ = std::fs::remove_dir_all(&probe);
    let dirs = ["upper", "work", "merged"].map(|d| probe.join(d));
    if dirs.iter().any(|d| std::fs::create_dir_all(d).is_err()) {
        return false;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.display(),
        dirs[0].display(),
        dirs[1].display()
    );
    let status = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            &opts,
        ])
        .arg(&dirs[2])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    let _ = std::fs::remove_dir_all(&probe);
    matches!(status, Ok(s) if s.success())
}

/// Mount points under `dir` in this process's mount namespace (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Processes whose root directory is under `dir` (builds left running by a crashed worker).
pub fn processes_rooted_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/root"))
                .map(|r| r.starts_with(dir))
                .unwrap_or(false)
        })
        .collect()
}

/// Start-up cleanup after a crash: kill builds still running in chroots under
/// `slots_dir`, lazily unmount anything mounted there in our namespace, and
/// remove every slot directory.
pub async fn clean_leftovers(slots_dir: &Path) -> Result<usize, MountError> {
    let err = |source| MountError::Leftovers {
        dir: slots_dir.to_path_buf(),
        source,
    };
    if !slots_dir.exists() {
        std::fs::create_dir_all(slots_dir).map_err(err)?;
        return Ok(0);
    }
    let canonical = std::fs::canonicalize(slots_dir).map_err(err)?;
    for pid in processes_rooted_under(&canonical) {
        tracing::warn!(pid, dir = %canonical.display(), "killing a leftover build process");
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .await;
    }
    let mut mounts = mounts_under(&canonical);
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in &mounts {
        tracing::warn!(mount = %m.display(), "unmounting a leftover mount");
        let _ = Command::new("umount").arg("-l").arg(m).status().await;
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(&canonical).map_err(err)?.flatten() {
        crate::chroot::remove_tree(&entry.path())
            .await
            .map_err(err)?;
        removed += 1;
    }
    Ok(removed)
}
