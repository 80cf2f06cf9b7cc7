//! The base builder root: a directory with rpm/rpmbuild, a shell, coreutils and
//! a C toolchain, which every chroot is made from (read-only lower of an overlay).
//!
//! Made with `debootstrap --variant=minbase --include=...` from Debian, or from a
//! directory of RPMs installed with `rpm --root` (how Photon seeds its toolchain).
//!
//! rpm's database in a Debian root knows nothing of the Debian packages, so
//! rpmbuild's BuildRequires check would fail for `gcc` or `make`. The root is
//! therefore finished by building and installing, inside it, a package
//! `dbuild-base-provides` that Provides (unversioned, so any version constraint
//! is met) the name of every installed Debian package plus the usual RPM names
//! of the toolchain (`glibc-devel`, `rpm-build`, ...). Debian's rpm keeps its
//! database in `~/.rpmdb`; `/etc/rpm/macros.dbuild` moves it to `/var/lib/rpm`
//! so that `rpm -i` and `rpmbuild` in the chroot agree whatever `$HOME` is.
//! `/etc/ld.so.conf.d/dbuild-rpm-libdir.conf` adds rpm's `%_libdir`
//! (`/usr/lib64`) to the loader's path; the install step runs `ldconfig`.

use crate::mounts::RootLayout;
use crate::sandbox::{Plan as SandboxPlan, Step};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Debian packages of the default builder root (plus what `minbase` brings).
pub const BASE_PACKAGES: &[&str] = &[
    "rpm",
    "gcc",
    "libc6-dev",
    "make",
    "patch",
    "xz-utils",
    "bzip2",
    "cpio",
    "file",
    "findutils",
    "diffutils",
    "gawk",
    "binutils",
];

/// RPM names the Debian toolchain stands in for.
const RPM_ALIASES: &[&str] = &[
    "glibc",
    "glibc-devel",
    "binutils",
    "gcc",
    "make",
    "bash",
    "coreutils",
    "sed",
    "grep",
    "gawk",
    "tar",
    "gzip",
    "bzip2",
    "xz",
    "patch",
    "cpio",
    "findutils",
    "diffutils",
    "file",
    "util-linux",
    "rpm",
    "rpm-build",
    "/bin/sh",
    "/bin/bash",
    "/usr/bin/sh",
    "/usr/bin/bash",
    "/usr/bin/env",
];

/// RPM names a Debian package stands in for when it is installed (a name
/// ending in `*` matches any package with that prefix, e.g. the versioned
/// `libpython3.11-stdlib`).
const RPM_ALIASES_OF: &[(&str, &[&str])] = &[
    ("python3", &["python3", "/usr/bin/python3"]),
    ("python3-dev", &["python3-devel"]),
    ("libpython3.*-stdlib", &["python3-libs", "python3-xml"]),
    ("python3-pip", &["python3-pip"]),
    ("libssl-dev", &["openssl-devel"]),
    ("libcurl4-openssl-dev", &["curl-devel"]),
    ("zlib1g-dev", &["zlib-devel"]),
    ("libffi-dev", &["libffi-devel"]),
    ("perl", &["perl", "/usr/bin/perl"]),
];

/// The RPM names the installed Debian packages `installed` stand in for.
pub fn rpm_aliases(installed: &[&str]) -> Vec<&'static str> {
    let matches = |pattern: &str, name: &str| match pattern.split_once('*') {
        Some((prefix, suffix)) => {
            name.starts_with(prefix)
                && name.ends_with(suffix)
                && name.len() >= prefix.len() + suffix.len()
        }
        None => pattern == name,
    };
    let mut out: Vec<&'static str> = RPM_ALIASES.to_vec();
    for (debian, rpm_names) in RPM_ALIASES_OF {
        if installed.iter().any(|name| matches(debian, name)) {
            out.extend_from_slice(rpm_names);
        }
    }
    out
}

/// Debian's Python installs into `/usr/local` unless told otherwise; RPM
/// specs expect the distribution's layout (`%python3_sitelib` under /usr,
/// scripts in /usr/bin). When the root has python3, every build gets
/// `DEB_PYTHON_INSTALL_LAYOUT=deb` (pip, sysconfig), `/root/.pydistutils.cfg`
/// gets `install_layout = deb` (`setup.py install` ignores the variable), and
/// `/usr/bin/pathfix.py`, which RPM python macros call and Debian ships only
/// as an example, is linked in when `python3.*-examples` is installed.
fn debian_python_layout(root: &Path) -> Result<(), RootfsError> {
    if !root.join("usr/bin/python3").exists() {
        return Ok(());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Io { path, source }
    };
    let env_file = root.join(crate::sandbox::ROOT_ENV_FILE);
    if let Some(dir) = env_file.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(&env_file, "# Debian's Python: install like a distribution package, not into /usr/local\nDEB_PYTHON_INSTALL_LAYOUT=deb\n")
        .map_err(io(&env_file))?;
    let cfg = root.join("root/.pydistutils.cfg");
    std::fs::create_dir_all(root.join("root")).map_err(io(&root.join("root")))?;
    std::fs::write(&cfg, "[install]\ninstall_layout = deb\n").map_err(io(&cfg))?;
    let docs = root.join("usr/share/doc");
    let examples = std::fs::read_dir(&docs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("examples/scripts/pathfix.py"))
        .find(|p| p.is_file());
    let link = root.join("usr/bin/pathfix.py");
    if let (Some(script), false) = (examples, link.exists()) {
        let target = Path::new("/").join(script.strip_prefix(root).unwrap_or(&script));
        std::os::unix::fs::symlink(&target, &link).map_err(io(&link))?;
    }
    Ok(())
}

/// Marker written last: its presence means the root is complete.
pub const MARKER: &str = ".dbuild-rootfs.json";

/// Bumped whenever what [`ensure`] puts into a root changes (part of [`RootfsSpec::key`]).
const LAYOUT_VERSION: &str = "dbuild-rootfs-2";

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
pub const DEFAULT_SUITE: &str = "bookworm";

/// The mirror for debootstrap when none is given: the one the host's apt
/// uses for `suite` (see [`crate::apt_sources`]), else [`DEFAULT_MIRROR`].
/// Also says where it came from, for the user.
pub fn default_mirror(suite: &str) -> (String, String) {
    match crate::apt_sources::host_mirror(suite) {
        Some(m) => (m.url, format!("from {}", m.file.display())),
        None => (
            DEFAULT_MIRROR.to_string(),
            format!("no {suite} entry in the host's apt sources"),
        ),
    }
}

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("{step} for root {root}: {detail}")]
    Step {
        step: &'static str,
        root: PathBuf,
        detail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to build.
#[derive(Debug, Clone)]
pub struct RootfsSpec {
    pub suite: String,
    pub mirror: String,
    /// Debian packages to include (debootstrap `--include`).
    pub packages: Vec<String>,
    /// Instead of debootstrap: install every `*.rpm` of this directory with `rpm --root`.
    pub from_rpms: Option<PathBuf>,
}

impl Default for RootfsSpec {
    fn default() -> Self {
        RootfsSpec {
            suite: DEFAULT_SUITE.into(),
            mirror: DEFAULT_MIRROR.into(),
            packages: BASE_PACKAGES.iter().map(|s| s.to_string()).collect(),
            from_rpms: None,
        }
    }
}

impl RootfsSpec {
    /// A short hash of what determines the root's content (not the mirror).
    pub fn key(&self) -> String {
        let mut packages = self.packages.clone();
        packages.sort();
        let mut h = Sha256::new();
        h.update(LAYOUT_VERSION.as_bytes());
        h.update(self.suite.as_bytes());
        for p in &packages {
            h.update(b"\0");
            h.update(p.as_bytes());
        }
        if let Some(dir) = &self.from_rpms {
            h.update(b"\0rpms:");
            h.update(dir.as_os_str().as_encoded_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// The outcome of [`ensure`].
#[derive(Debug, Clone)]
pub struct RootfsReport {
    pub path: PathBuf,
    pub reused: bool,
    pub seconds: f64,
    pub bytes: u64,
}

/// Makes the root at `dest` unless a complete one is there already. Builds in
/// `dest.tmp-<pid>` and renames, so an interrupted run never leaves a root that looks complete.
pub async fn ensure(spec: &RootfsSpec, dest: &Path) -> Result<RootfsReport, RootfsError> {
    // One maker per process: two calls would share `dest.tmp-<pid>`. (Other
    // processes use their own temporary directory; the first rename wins.)
    static MAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _making = MAKING.lock().await;
    let started = Instant::now();
    if dest.join(MARKER).exists() {
        return Ok(RootfsReport {
            path: dest.to_path_buf(),
            reused: true,
            seconds: 0.0,
            bytes: disk_usage(dest).await,
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Io { path, source }
    };
    let tmp = PathBuf::from(format!("{}.tmp-{}", dest.display(), std::process::id()));
    remove_stale_attempts(dest).await;
    crate::chroot::remove_tree(&tmp).await.map_err(io(&tmp))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if let Err(e) = populate(spec, &tmp).await {
        let _ = crate::chroot::remove_tree(&tmp).await;
        return Err(e);
    }
    let marker = serde_json::json!({
        "suite": spec.suite, "mirror": spec.mirror, "packages": spec.packages,
        "from_rpms": spec.from_rpms, "key": spec.key(),
    });
    std::fs::write(tmp.join(MARKER), marker.to_string()).map_err(io(&tmp))?;
    if let Err(e) = std::fs::rename(&tmp, dest) {
        // Someone else finished first: keep theirs.
        if dest.join(MARKER).exists() {
            crate::chroot::remove_tree(&tmp).await.map_err(io(&tmp))?;
        } else {
            return Err(RootfsError::Io {
                path: dest.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(RootfsReport {
        path: dest.to_path_buf(),
        reused: false,
        seconds: started.elapsed().as_secs_f64(),
        bytes: disk_usage(dest).await,
    })
}

/// Fills `tmp`: the packages, the rpm and loader configuration, `dbuild-base-provides`.
async fn populate(spec: &RootfsSpec, tmp: &Path) -> Result<(), RootfsError> {
    match &spec.from_rpms {
        None => debootstrap(spec, tmp).await?,
        Some(dir) => from_rpms(dir, tmp).await?,
    }
    configure(tmp)?;
    if spec.from_rpms.is_none() {
        debian_python_layout(tmp)?;
        install_base_provides(tmp, Within::Chroot).await?;
    }
    Ok(())
}

/// The rpm and loader configuration and the directories every chroot mounts on.
fn configure(root: &Path) -> Result<(), RootfsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Io { path, source }
    };
    let etc_rpm = root.join("etc/rpm");
    std::fs::create_dir_all(&etc_rpm).map_err(io(&etc_rpm))?;
    let macros = etc_rpm.join("macros.dbuild");
    std::fs::write(&macros, "# dbuild: one rpm database for rpm -i and rpmbuild, whatever $HOME is\n%_dbpath /var/lib/rpm\n")
        .map_err(io(&macros))?;
    // RPMs put libraries in rpm's %_libdir (/usr/lib64), which Debian's loader does not search.
    let ld_conf = root.join("etc/ld.so.conf.d");
    std::fs::create_dir_all(&ld_conf).map_err(io(&ld_conf))?;
    std::fs::write(
        ld_conf.join("dbuild-rpm-libdir.conf"),
        "/usr/lib64\n/lib64\n",
    )
    .map_err(io(&ld_conf))?;
    for d in ["proc", "dev", "tmp", "var/lib/rpm"] {
        std::fs::create_dir_all(root.join(d)).map_err(io(&root.join(d)))?;
    }
    Ok(())
}

/// Makes the running system's own root (`/`) a builder root, for an image
/// build whose stage is the root (`docker/worker.Dockerfile`): no
/// debootstrap, no chroot, no sandbox (a build step has no privileges for
/// one). The packages of `spec` that are not installed yet are installed with
/// `apt-get` (none when the base image has them all, so no network is needed),
/// then the root is finished as [`ensure`] finishes a debootstrapped one and
/// the marker is written last. Debian-based roots only (dpkg, apt).
pub async fn finish_in_place(spec: &RootfsSpec) -> Result<RootfsReport, RootfsError> {
    let root = Path::new("/");
    let started = Instant::now();
    let installed = run(
        "dpkg-query",
        root,
        tokio::process::Command::new("dpkg-query").args(["-W", "-f", "${Package} ${Status}\\n"]),
        Duration::from_secs(120),
    )
    .await?;
    let installed: Vec<&str> = installed
        .lines()
        .filter(|l| l.ends_with(" installed"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&str> = spec
        .packages
        .iter()
        .map(String::as_str)
        .filter(|p| !installed.contains(p))
        .collect();
    if !missing.is_empty() {
        tracing::info!(packages = %missing.join(","), "installing what the base lacks");
        let apt = |args: &[&str]| {
            let mut cmd = tokio::process::Command::new("apt-get");
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        };
        run(
            "apt-get update",
            root,
            &mut apt(&["update", "-qq"]),
            Duration::from_secs(600),
        )
        .await?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&missing);
        run(
            "apt-get install",
            root,
            &mut install,
            Duration::from_secs(1800),
        )
        .await?;
        run(
            "apt-get clean",
            root,
            &mut apt(&["clean"]),
            Duration::from_secs(60),
        )
        .await?;
        let lists = root.join("var/lib/apt/lists");
        if let Ok(entries) = std::fs::read_dir(&lists) {
            for e in entries.flatten().filter(|e| e.path().is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    configure(root)?;
    debian_python_layout(root)?;
    install_base_provides(root, Within::InPlace).await?;
    let marker = serde_json::json!({
        "in_place": true, "installed": missing, "packages": spec.packages, "key": spec.key(),
    });
    std::fs::write(root.join(MARKER), marker.to_string()).map_err(|source| RootfsError::Io {
        path: root.join(MARKER),
        source,
    })?;
    Ok(RootfsReport {
        path: root.to_path_buf(),
        reused: false,
        seconds: started.elapsed().as_secs_f64(),
        bytes: 0,
    })
}

/// Removes `DEST.tmp-PID` directories of interrupted runs whose process is gone.
async fn remove_stale_attempts(dest: &Path) {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::warn!(dir = %e.path().display(), "removing an interrupted builder root");
            let _ = crate::chroot::remove_tree(&e.path()).await;
        }
    }
}

async fn run(
    step: &'static str,
    root: &Path,
    cmd: &mut tokio::process::Command,
    timeout: Duration,
) -> Result<String, RootfsError> {
    let fail = |detail: String| RootfsError::Step {
        step,
        root: root.to_path_buf(),
        detail,
    };
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| fail(format!("timed out after {}s", timeout.as_secs())))?
        .map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stdout
            .lines()
            .chain(stderr.lines())
            .rev()
            .take(15)
            .collect();
        return Err(fail(format!(
            "{} failed:\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(stdout)
}

async fn debootstrap(spec: &RootfsSpec, tmp: &Path) -> Result<(), RootfsError> {
    tracing::info!(root = %tmp.display(), suite = %spec.suite, mirror = %spec.mirror, "running debootstrap");
    let mut cmd = tokio::process::Command::new("debootstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", spec.packages.join(",")))
        .arg(&spec.suite)
        .arg(tmp)
        .arg(&spec.mirror);
    run("debootstrap", tmp, &mut cmd, Duration::from_secs(1800)).await?;
    // debootstrap leaves downloaded .debs behind.
    let cache = tmp.join("var/cache/apt/archives");
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

async fn from_rpms(dir: &Path, tmp: &Path) -> Result<(), RootfsError> {
    let mut rpms: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| RootfsError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpm"))
        .collect();
    rpms.sort();
    if rpms.is_empty() {
        return Err(RootfsError::Step {
            step: "rpm --root",
            root: tmp.to_path_buf(),
            detail: format!("no *.rpm in {}", dir.display()),
        });
    }
    std::fs::create_dir_all(tmp.join("var/lib/rpm")).map_err(|source| RootfsError::Io {
        path: tmp.to_path_buf(),
        source,
    })?;
    let mut cmd = tokio::process::Command::new("rpm");
    cmd.arg("--root")
        .arg(tmp)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--nosignature",
        ])
        .args(&rpms);
    run("rpm --root -i", tmp, &mut cmd, Duration::from_secs(1800)).await?;
    Ok(())
}

/// Where the root's own programs run: chrooted into it, or in it already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    Chroot,
    InPlace,
}

/// Builds `dbuild-base-provides` inside the root and installs it there.
async fn install_base_provides(root: &Path, within: Within) -> Result<(), RootfsError> {
    let mut dpkg = match within {
        Within::Chroot => {
            let mut c = tokio::process::Command::new("chroot");
            c.arg(root).arg("dpkg-query");
            c
        }
        Within::InPlace => tokio::process::Command::new("dpkg-query"),
    };
    dpkg.args(["-W", "-f", "${Package}\\n"]);
    let names = run("dpkg-query", root, &mut dpkg, Duration::from_secs(120)).await?;
    let installed: Vec<&str> = names
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let mut provides: Vec<&str> = installed
        .iter()
        .copied()
        .chain(rpm_aliases(&installed))
        .collect();
    provides.sort_unstable();
    provides.dedup();
    let spec = crate::provides::provides_spec(
        "dbuild-base-provides",
        "What the Debian builder root provides",
        &provides,
    );
    let work = root.join("var/tmp/dbuild-base-provides");
    let io = |source| RootfsError::Io {
        path: work.clone(),
        source,
    };
    std::fs::create_dir_all(&work).map_err(io)?;
    std::fs::write(work.join("base.spec"), spec).map_err(io)?;
    let script = "set -e; rpmbuild -bb --define '_topdir /var/tmp/dbuild-base-provides' /var/tmp/dbuild-base-provides/base.spec; \
                  rpm -i --nodeps /var/tmp/dbuild-base-provides/RPMS/noarch/*.rpm; rpm -q dbuild-base-provides";
    let argv = ["/bin/sh", "-c", script].map(String::from).to_vec();
    let mut cmd = match within {
        Within::InPlace => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Within::Chroot => {
            let step = Step {
                name: "base-provides".into(),
                argv,
                unmount_after: vec![],
            };
            let plan = SandboxPlan::new(root.to_path_buf(), RootLayout::Copy, vec![step]);
            // Not under /tmp: the sandbox mounts a tmpfs there.
            plan.command().map_err(|e| RootfsError::Step {
                step: "base provides",
                root: root.to_path_buf(),
                detail: e.to_string(),
            })?
        }
    };
    run(
        "building dbuild-base-provides",
        root,
        &mut cmd,
        Duration::from_secs(300),
    )
    .await?;
    crate::chroot::remove_tree(&work)
        .await
        .map_err(|source| RootfsError::Io {
            path: work.clone(),
            source,
        })?;
    tracing::info!(root = %root.display(), provides = provides.len(), "rpm database knows the base packages");
    Ok(())
}

/// Every capability name the root's rpm database knows: each installed
/// package's name and Provides (for the Debian root that includes
/// `dbuild-base-provides`, so `gcc`, `make`, `/bin/sh`), sorted and unique.
/// Runs the root's own rpm inside it (its database format, its
/// `/etc/rpm/macros.dbuild` `%_dbpath`) with a clean environment.
pub async fn rpmdb_provides(root: &Path) -> Result<Vec<String>, RootfsError> {
    let mut cmd = tokio::process::Command::new("chroot");
    cmd.arg(root)
        .args([
            "/usr/bin/env",
            "-i",
            "HOME=/root",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "rpm",
            "-qa",
            "--qf",
        ])
        .arg("%{NAME}\n[%{PROVIDENAME}\n]");
    let out = run(
        "rpm -qa (provides)",
        root,
        &mut cmd,
        Duration::from_secs(120),
    )
    .await?;
    let mut names: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "(none)")
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    tracing::debug!(root = %root.display(), names = names.len(), "rpm database capabilities");
    Ok(names)
}

/// `du -sb`, 0 when unknown.
pub async fn disk_usage(path: &Path) -> u64 {
    let out = tokio::process::Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .await;
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_names_only_for_installed_debian_packages() {
        let aliases = rpm_aliases(&["bash", "python3-dev", "libpython3.11-stdlib"]);
        for name in [
            "gcc",
            "/bin/sh",
            "python3-devel",
            "python3-libs",
            "python3-xml",
        ] {
            assert!(aliases.contains(&name), "{name}");
        }
        assert!(!aliases.contains(&"openssl-devel") && !aliases.contains(&"python3"));
        assert!(
            !rpm_aliases(&["libpython3.11"]).contains(&"python3-libs"),
            "the pattern needs its suffix"
        );
    }
}
