//! The build pipeline for one package, driven by a [`BuildJob`]:
//! chroot → install BuildRequires → stage sources → rpmbuild → publish → cleanup.
//! The chroot is removed on every path (success, failure, cancellation).

use crate::chroot::{Chroot, ChrootError};
use crate::install::{self, InstallError};
use crate::publish::{self, PublishError, Published};
use crate::rpmbuild::{self, Limits, Log, RunEnd, RunError};
use crate::sources::{self, SourceError};
use dbuild_common::spec::ParseOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::watch;

/// The worker's fixed settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The build directory on the share (`<share>/<build-id>`: SPECS/, SOURCES/, stage/).
    pub build_dir: PathBuf,
    /// The read-only base builder root.
    pub base_root: PathBuf,
    /// Local scratch directory; chroots live in `<work-dir>/slots/`.
    pub work_dir: PathBuf,
    /// overlayfs (true) or copies (false).
    pub overlay: bool,
    /// Extra directories of RPMs (like Photon's PUBLISHRPMS).
    pub prebuilt: Vec<PathBuf>,
    /// Limits of the install step and of rpmbuild.
    pub install_limits: Limits,
    pub build_limits: Limits,
}

impl WorkerConfig {
    pub fn slots_dir(&self) -> PathBuf {
        self.work_dir.join("slots")
    }
}

/// One package to build (what a lease says).
#[derive(Debug, Clone)]
pub struct BuildJob {
    pub package: String,
    /// Spec path relative to the build directory.
    pub spec: String,
    pub attempt: u32,
    /// RPMs to install first, relative to the build directory.
    pub install: Vec<String>,
    pub macros: Vec<(String, String)>,
    pub arch: String,
    /// Log path relative to the build directory.
    pub log_path: String,
    /// Name of the slot directory (unique among concurrent jobs of this worker).
    pub slot: String,
}

/// Wall-clock durations of the phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    pub chroot: Duration,
    pub install: Duration,
    pub sources: Duration,
    pub rpmbuild: Duration,
    pub publish: Duration,
    pub cleanup: Duration,
}

impl Phases {
    /// Everything but rpmbuild: the worker's own overhead.
    pub fn overhead(&self) -> Duration {
        self.chroot + self.install + self.sources + self.publish + self.cleanup
    }
}

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Chroot(#[from] ChrootError),
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error("package {package}: installing BuildRequires: rpm -i {end}")]
    InstallFailed { package: String, end: String },
    #[error(transparent)]
    Sources(#[from] SourceError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("package {package}: rpmbuild {end}")]
    Rpmbuild { package: String, end: String, exit_status: Option<i32> },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("package {package}: build cancelled (lease lost or worker stopping)")]
    Cancelled { package: String },
    #[error("package {package}: bad path {path} in the lease")]
    BadPath { package: String, path: String },
}

impl BuildError {
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            BuildError::Rpmbuild { exit_status, .. } => *exit_status,
            _ => None,
        }
    }
}

fn describe(end: &RunEnd) -> String {
    match end {
        RunEnd::Exited(Some(c)) => format!("exited with status {c}"),
        RunEnd::Exited(None) => "was killed by a signal".into(),
        RunEnd::WallTimeout(d) => format!("killed: wall-time limit of {}s reached", d.as_secs()),
        RunEnd::SilentTimeout(d) => format!("killed: no output for {}s (silent-time limit)", d.as_secs()),
        RunEnd::Cancelled => "cancelled".into(),
    }
}

/// What a job produced.
#[derive(Debug)]
pub struct BuildResult {
    pub result: Result<Vec<Published>, BuildError>,
    pub phases: Phases,
    pub duration: Duration,
    /// Absolute path of the log (None if it could not even be created).
    pub log: Option<PathBuf>,
}

fn relative(package: &str, build_dir: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(BuildError::BadPath { package: package.into(), path: rel.into() });
    }
    Ok(build_dir.join(p))
}

/// Runs `job`. `cancel` turning true kills whatever runs and discards the output.
pub async fn run_job(cfg: &WorkerConfig, job: &BuildJob, mut cancel: watch::Receiver<bool>) -> BuildResult {
    let started = Instant::now();
    let mut phases = Phases::default();
    let log_path = match relative(&job.package, &cfg.build_dir, &job.log_path) {
        Ok(p) => p,
        Err(e) => return BuildResult { result: Err(e), phases, duration: started.elapsed(), log: None },
    };
    let mut log = match Log::create(log_path.clone()).await {
        Ok(l) => l,
        Err(e) => return BuildResult { result: Err(e.into()), phases, duration: started.elapsed(), log: None },
    };
    let t = Instant::now();
    let chroot = Chroot::create(&cfg.slots_dir(), &job.slot, &cfg.base_root, cfg.overlay).await;
    phases.chroot = t.elapsed();
    let result = match chroot {
        Err(e) => Err(e.into()),
        Ok(chroot) => {
            let r = build_in(cfg, job, &chroot, &mut log, &mut phases, &mut cancel).await;
            let t = Instant::now();
            let dir = chroot.dir.clone();
            if let Err(e) = chroot.remove().await {
                tracing::error!(package = %job.package, dir = %dir.display(), error = %e, "could not remove the chroot");
            }
            phases.cleanup = t.elapsed();
            r
        }
    };
    let summary = match &result {
        Ok(files) => format!("succeeded: {} file(s) published", files.len()),
        Err(e) => format!("failed: {e}"),
    };
    let _ = log
        .note(&format!(
            "{summary}; phases: chroot {:.3}s install {:.3}s sources {:.3}s rpmbuild {:.3}s publish {:.3}s cleanup {:.3}s",
            phases.chroot.as_secs_f64(),
            phases.install.as_secs_f64(),
            phases.sources.as_secs_f64(),
            phases.rpmbuild.as_secs_f64(),
            phases.publish.as_secs_f64(),
            phases.cleanup.as_secs_f64()
        ))
        .await;
    let _ = log.sync().await;
    BuildResult { result, phases, duration: started.elapsed(), log: Some(log_path) }
}

async fn build_in(
    cfg: &WorkerConfig,
    job: &BuildJob,
    chroot: &Chroot,
    log: &mut Log,
    phases: &mut Phases,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Vec<Published>, BuildError> {
    let pkg = job.package.as_str();
    log.note(&format!("package {pkg} attempt {} in {}", job.attempt, chroot.dir.display())).await?;

    // BuildRequires closure.
    let t = Instant::now();
    if !job.install.is_empty() {
        let rpms = install::resolve(pkg, &cfg.build_dir, &job.install, &cfg.prebuilt)?;
        log.note(&format!("installing {} RPM(s)", rpms.len())).await?;
        let cmd = install::install_command(chroot, &rpms)?;
        let end = rpmbuild::run_logged("rpm -i", cmd, log, cfg.install_limits, cancel).await?;
        if end == RunEnd::Cancelled {
            return Err(BuildError::Cancelled { package: pkg.into() });
        }
        if !end.success() {
            return Err(BuildError::InstallFailed { package: pkg.into(), end: describe(&end) });
        }
    }
    phases.install = t.elapsed();

    // Spec, includes, patches, sources.
    let t = Instant::now();
    let spec_path = relative(pkg, &cfg.build_dir, &job.spec)?;
    let opts = ParseOptions { defines: job.macros.clone(), arch: job.arch.clone(), ..ParseOptions::default() };
    let (build_dir, topdir, p) = (cfg.build_dir.clone(), chroot.topdir.clone(), pkg.to_string());
    let staged = tokio::task::spawn_blocking(move || sources::stage(&p, &spec_path, &build_dir, &topdir, &opts))
        .await
        .map_err(|e| BuildError::Run(RunError::Wait { what: "staging sources".into(), source: std::io::Error::other(e) }))??;
    log.note(&format!("staged {} file(s), {} bytes, {} verified against config.yaml", staged.files, staged.bytes, staged.verified))
        .await?;
    phases.sources = t.elapsed();

    // rpmbuild.
    let t = Instant::now();
    let argv = rpmbuild::rpmbuild_argv(&staged.spec_in_chroot, &job.macros);
    log.note(&format!("running {}", argv.join(" "))).await?;
    let cmd = chroot.chrooted(&[chroot.topdir_bind()], &argv)?;
    let end = rpmbuild::run_logged("rpmbuild", cmd, log, cfg.build_limits, cancel).await?;
    phases.rpmbuild = t.elapsed();
    match end {
        RunEnd::Cancelled => return Err(BuildError::Cancelled { package: pkg.into() }),
        RunEnd::Exited(Some(0)) => {}
        other => {
            let exit_status = match other {
                RunEnd::Exited(c) => c,
                _ => None,
            };
            return Err(BuildError::Rpmbuild { package: pkg.into(), end: describe(&other), exit_status });
        }
    }
    if *cancel.borrow() {
        return Err(BuildError::Cancelled { package: pkg.into() });
    }

    // Publish.
    let t = Instant::now();
    let (build_dir, topdir, p) = (cfg.build_dir.clone(), chroot.topdir.clone(), pkg.to_string());
    let published = tokio::task::spawn_blocking(move || publish::publish_outputs(&p, &topdir, &build_dir))
        .await
        .map_err(|e| BuildError::Run(RunError::Wait { what: "publishing".into(), source: std::io::Error::other(e) }))??;
    phases.publish = t.elapsed();
    for f in &published {
        log.note(&format!("published {} sha256={}", f.rel_path, f.sha256)).await?;
    }
    Ok(published)
}
