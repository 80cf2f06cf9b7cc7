//! Provides-only packages: how rpm's database in a builder root learns of
//! capabilities it has without rpm knowing (the Debian packages of the base,
//! see [`crate::rootfs`]) or that the user declares present
//! (`--assume-provided`).
//!
//! rpmbuild checks a spec's BuildRequires against the rpm database of the
//! chroot. For an assumed name, the worker installs `dbuild-assumed-provides`
//! with the BuildRequires: it Provides each name, unversioned, so any version
//! constraint is met. That is safe because the names reach the worker only
//! after the launcher and the scheduler found no spec of the run providing
//! them and the user said the build root has them; every other BuildRequires
//! is still checked by rpmbuild against what was really installed.

use crate::chroot::{Chroot, ChrootError};
use crate::rpmbuild::{self, Limits, Log, RunError};
use crate::sandbox::Step;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{watch, Mutex};

/// Name of the package made for `--assume-provided`.
pub const ASSUMED_PACKAGE: &str = "dbuild-assumed-provides";

#[derive(Debug, Error)]
pub enum ProvidesError {
    #[error(transparent)]
    Chroot(#[from] ChrootError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("building {package} failed ({detail}); see {log}")]
    Build {
        package: &'static str,
        detail: String,
        log: PathBuf,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The spec of a noarch package `name` with no files that Provides each of `provides`.
pub fn provides_spec(name: &str, summary: &str, provides: &[&str]) -> String {
    let mut spec = format!("Name: {name}\nVersion: 1\nRelease: 1\nSummary: {summary}\nLicense: Apache-2.0\nBuildArch: noarch\n");
    for p in provides {
        spec.push_str(&format!("Provides: {p}\n"));
    }
    spec.push_str(&format!("%description\n{summary}.\n%files\n"));
    spec
}

/// Serialises the making of provides packages within this process.
static MAKING: Mutex<()> = Mutex::const_new(());

/// The `dbuild-assumed-provides` RPM for `names`, made once per set of names
/// (cached under `<work-dir>/provides/<hash>/`) with rpmbuild in a chroot of `base`.
pub async fn assumed_provides_rpm(
    base: &Path,
    work_dir: &Path,
    overlay: bool,
    names: &[String],
) -> Result<PathBuf, ProvidesError> {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let key = hex::encode(&Sha256::digest(sorted.join("\n").as_bytes())[..8]);
    let dir = work_dir.join("provides").join(&key);
    let rpm = dir.join(format!("{ASSUMED_PACKAGE}-1-1.noarch.rpm"));
    let _guard = MAKING.lock().await;
    if rpm.is_file() {
        return Ok(rpm);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProvidesError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let slots = work_dir.join("slots");
    let chroot = Chroot::create(&slots, &format!("provides-{key}"), base, overlay).await?;
    let made = build(&chroot, &dir, &sorted).await;
    let removed = chroot.remove().await;
    let built = made?;
    removed.map_err(io(&slots))?;
    std::fs::rename(&built, &rpm).map_err(io(&built))?;
    tracing::info!(rpm = %rpm.display(), names = sorted.len(), "made the package for --assume-provided");
    Ok(rpm)
}

async fn build(chroot: &Chroot, dir: &Path, names: &[&str]) -> Result<PathBuf, ProvidesError> {
    let spec = provides_spec(
        ASSUMED_PACKAGE,
        "Capabilities the build root is assumed to provide",
        names,
    );
    let spec_path = chroot
        .topdir
        .join("SPECS")
        .join(format!("{ASSUMED_PACKAGE}.spec"));
    std::fs::write(&spec_path, spec).map_err(|source| ProvidesError::Io {
        path: spec_path.clone(),
        source,
    })?;
    let spec_in_chroot = format!("{}/SPECS/{ASSUMED_PACKAGE}.spec", crate::TOPDIR_IN_CHROOT);
    let argv = rpmbuild::rpmbuild_argv(rpmbuild::Outputs::Binary, &spec_in_chroot, &[], false);
    let step = Step {
        name: "rpmbuild".into(),
        argv,
        unmount_after: vec![],
    };
    let cmd = chroot
        .sandbox(vec![chroot.topdir_bind()], vec![step], false)
        .command()
        .map_err(ChrootError::from)?;
    let log_path = dir.join("build.log");
    let mut log = Log::create(log_path.clone()).await?;
    let limits = Limits {
        wall: Duration::from_secs(300),
        silent: Duration::from_secs(120),
    };
    let (_tx, mut never) = watch::channel(false);
    let end = rpmbuild::run_logged("rpmbuild", cmd, &mut log, limits, &mut never).await?;
    let out = chroot
        .topdir
        .join("RPMS/noarch")
        .join(format!("{ASSUMED_PACKAGE}-1-1.noarch.rpm"));
    if !end.success() || !out.is_file() {
        return Err(ProvidesError::Build {
            package: ASSUMED_PACKAGE,
            detail: format!("{end:?}"),
            log: log_path,
        });
    }
    let kept = dir.join("made.rpm");
    std::fs::copy(&out, &kept).map_err(|source| ProvidesError::Io {
        path: out.clone(),
        source,
    })?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_provides_each_name_and_has_no_files() {
        let s = provides_spec("x", "What is there", &["python3-devel", "/usr/bin/python3"]);
        assert!(s.contains("Provides: python3-devel\nProvides: /usr/bin/python3\n"));
        assert!(s.ends_with("%files\n"));
    }
}
