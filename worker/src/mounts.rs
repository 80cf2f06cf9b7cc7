//! Private namespaces for every command that touches a chroot.
//!
//! Nothing is ever mounted in the worker's own mount namespace. Each command
//! (the BuildRequires install, rpmbuild) runs as
//! `unshare --mount --propagation private --pid --fork --kill-child=SIGKILL --net --ipc --uts -- /bin/sh -c SETUP`,
//! where SETUP mounts the overlay (or nothing, for a copied root), proc, a
//! minimal /dev, a tmpfs /tmp and the requested bind mounts, then `exec`s the
//! command. When the command ends, or is killed, the namespace and every mount
//! in it disappear with it: a crashed worker cannot leave a mount behind on the
//! host, and killing the `unshare` process kills the whole PID namespace
//! (its child gets SIGKILL through `--kill-child`, and the kernel kills every
//! process of a PID namespace whose init dies).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use thiserror::Error;
use tokio::process::Command;

/// How the chroot's root filesystem is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootLayout {
    /// overlayfs: `lower` (the read-only base) + `upper`/`work` in the slot, mounted at the root path.
    Overlay { lower: PathBuf, upper: PathBuf, work: PathBuf },
    /// The root path is a private copy of the base; nothing to mount.
    Copy,
}

/// A directory of the host made visible inside the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    /// Absolute path inside the chroot.
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Error)]
pub enum MountError {
    #[error("path {path} cannot be used in a mount option (it contains ',' or ':' or is not UTF-8)")]
    BadPath { path: PathBuf },
    #[error("bind target {target} must be an absolute path without '..'")]
    BadTarget { target: String },
    #[error("cleaning leftovers in {dir}: {source}")]
    Leftovers { dir: PathBuf, source: std::io::Error },
}

/// The setup script run as PID 1 of the new namespaces. Paths come in the
/// environment (never spliced into the script), the command in "$@".
const SETUP: &str = r#"set -eu
R="$DBUILD_ROOT"
if [ -n "${DBUILD_LOWER:-}" ]; then
  mount -t overlay overlay -o "lowerdir=$DBUILD_LOWER,upperdir=$DBUILD_UPPER,workdir=$DBUILD_WORK" "$R"
fi
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o mode=755,nosuid,size=16m tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir -m 755 "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
i=0
while [ "$i" -lt "$DBUILD_NBINDS" ]; do
  eval "src=\$DBUILD_BIND_SRC_$i; dst=\$DBUILD_BIND_DST_$i; ro=\$DBUILD_BIND_RO_$i"
  mkdir -p "$R$dst"
  mount --bind "$src" "$R$dst"
  if [ "$ro" = 1 ]; then mount -o remount,bind,ro "$R$dst"; fi
  i=$((i + 1))
done
exec "$@"
"#;

fn option_safe(p: &Path) -> Result<&str, MountError> {
    match p.to_str() {
        Some(s) if !s.contains(',') && !s.contains(':') => Ok(s),
        _ => Err(MountError::BadPath { path: p.to_path_buf() }),
    }
}

/// A command to run inside fresh namespaces with `root` prepared as a chroot.
/// `argv` runs on the host's filesystem view (use `chroot ROOT ...` to enter it).
pub fn sandboxed(root: &Path, layout: &RootLayout, binds: &[Bind], argv: &[String]) -> Result<Command, MountError> {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--net",
        "--ipc",
        "--uts",
        "--",
        "/bin/sh",
        "-c",
        SETUP,
        "dbuild-setup",
    ]);
    cmd.args(argv);
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.env("LANG", "C.UTF-8");
    cmd.env("DBUILD_ROOT", root);
    if let RootLayout::Overlay { lower, upper, work } = layout {
        cmd.env("DBUILD_LOWER", option_safe(lower)?);
        cmd.env("DBUILD_UPPER", option_safe(upper)?);
        cmd.env("DBUILD_WORK", option_safe(work)?);
    }
    cmd.env("DBUILD_NBINDS", binds.len().to_string());
    for (i, b) in binds.iter().enumerate() {
        if !b.target.starts_with('/') || b.target.split('/').any(|c| c == "..") {
            return Err(MountError::BadTarget { target: b.target.clone() });
        }
        cmd.env(format!("DBUILD_BIND_SRC_{i}"), &b.host);
        cmd.env(format!("DBUILD_BIND_DST_{i}"), &b.target);
        cmd.env(format!("DBUILD_BIND_RO_{i}"), if b.read_only { "1" } else { "0" });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    Ok(cmd)
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
    let (Ok(lower), Ok(upper), Ok(work)) = (option_safe(base), option_safe(&dirs[0]), option_safe(&dirs[1])) else {
        return false;
    };
    let opts = format!("lowerdir={lower},upperdir={upper},workdir={work}");
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "mount", "-t", "overlay", "overlay", "-o", &opts])
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
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Processes whose root directory is under `dir` (builds left running by a crashed worker).
pub fn processes_rooted_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/root")).map(|r| r.starts_with(dir)).unwrap_or(false))
        .collect()
}

/// Start-up cleanup after a crash: kill builds still running in chroots under
/// `slots_dir`, lazily unmount anything mounted there in our namespace, and
/// remove every slot directory.
pub async fn clean_leftovers(slots_dir: &Path) -> Result<usize, MountError> {
    let err = |source| MountError::Leftovers { dir: slots_dir.to_path_buf(), source };
    if !slots_dir.exists() {
        std::fs::create_dir_all(slots_dir).map_err(err)?;
        return Ok(0);
    }
    let canonical = std::fs::canonicalize(slots_dir).map_err(err)?;
    for pid in processes_rooted_under(&canonical) {
        tracing::warn!(pid, dir = %canonical.display(), "killing a leftover build process");
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
    }
    let mut mounts = mounts_under(&canonical);
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in &mounts {
        tracing::warn!(mount = %m.display(), "unmounting a leftover mount");
        let _ = Command::new("umount").arg("-l").arg(m).status().await;
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(&canonical).map_err(err)?.flatten() {
        crate::chroot::remove_tree(&entry.path()).await.map_err(err)?;
        removed += 1;
    }
    Ok(removed)
}
