//! The build pipeline for one package, driven by a [`BuildJob`]:
//! chroot → stage spec, sources and macro files → one sandbox running the
//! BuildRequires install and then rpmbuild → publish → cleanup.
//! The chroot is removed on every path (success, failure, cancellation).

use crate::chroot::{Chroot, ChrootError};
use crate::install::{self, InstallError};
use crate::prepared::Prepared;
use crate::publish::{self, PublishError, Published};
use crate::rpmbuild::{self, Limits, Log, RunEnd, RunError};
use crate::sandbox::{Go, Outcome, Step, StepEnd};
use crate::sources::{self, SourceError};
use dbuild_common::spec::ParseOptions;
use dbuild_common::wire::FailureKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::process::Child;
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
    /// Directories where sources are looked up after the spec's own directory
    /// (`--sources`, in order; `<build-dir>/SOURCES` is always last).
    pub sources: Vec<PathBuf>,
    /// Limits of the install step and of rpmbuild.
    pub install_limits: Limits,
    pub build_limits: Limits,
    /// Let the builds' fsync calls reach the disk (by default they are
    /// no-ops: see [`crate::sandbox::nosync`]).
    pub build_fsync: bool,
}

impl WorkerConfig {
    pub fn slots_dir(&self) -> PathBuf {
        self.work_dir.join("slots")
    }
}

/// One package to build (what a lease says).
#[derive(Debug, Clone)]
pub struct BuildJob {
    /// The lease: the RPMs are published into `incoming/<lease_id>/`.
    pub lease_id: String,
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
    /// Run `%check` (else rpmbuild gets `--nocheck`).
    pub check: bool,
    /// Macro files for the parser and rpmbuild, relative to the build directory.
    pub macro_files: Vec<String>,
    /// Capabilities the build root is assumed to provide (see [`crate::provides`]).
    pub assume_provided: Vec<String>,
}

/// Wall-clock durations of the phases. `chroot` is the slot's directories plus
/// the sandbox's start and mounts (everything in the sandbox but its steps).
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
    /// The durations in the order of [`dbuild_common::wire::PHASES`].
    pub fn in_order(&self) -> [Duration; 6] {
        [
            self.chroot,
            self.install,
            self.sources,
            self.rpmbuild,
            self.publish,
            self.cleanup,
        ]
    }

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
    #[error(transparent)]
    Provides(#[from] crate::provides::ProvidesError),
    #[error("package {package}: the build sandbox could not be set up: {detail}")]
    Sandbox { package: String, detail: String },
    #[error("package {package}: macro file {path}: {source}")]
    MacroFile {
        package: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("package {package}: installing BuildRequires: rpm -i {end}")]
    InstallFailed { package: String, end: String },
    #[error(transparent)]
    Sources(#[from] SourceError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("package {package}: rpmbuild {end}{detail}")]
    Rpmbuild {
        package: String,
        end: String,
        exit_status: Option<i32>,
        detail: String,
        kind: FailureKind,
    },
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

    /// Whether the package itself is at fault (another attempt would fail
    /// alike) or something around it (see [`FailureKind`]).
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            BuildError::Rpmbuild { kind, .. } => *kind,
            BuildError::Sources(SourceError::Io { .. }) => FailureKind::Transient,
            BuildError::Sources(_) | BuildError::BadPath { .. } | BuildError::MacroFile { .. } => {
                FailureKind::Package
            }
            _ => FailureKind::Transient,
        }
    }
}

fn describe(end: &RunEnd) -> String {
    match end {
        RunEnd::Exited(Some(c)) => format!("exited with status {c}"),
        RunEnd::Exited(None) => "was killed by a signal".into(),
        RunEnd::WallTimeout(d) => format!("killed: wall-time limit of {}s reached", d.as_secs()),
        RunEnd::SilentTimeout(d) => {
            format!("killed: no output for {}s (silent-time limit)", d.as_secs())
        }
        RunEnd::Cancelled => "cancelled".into(),
    }
}

/// rpmbuild's last `error:` line of the log, with the indented lines that follow
/// it (e.g. the unmet BuildRequires), on one line.
pub fn rpm_error_summary(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().rposition(|l| l.starts_with("error: "))?;
    let mut parts = vec![lines[first]
        .trim_start_matches("error: ")
        .trim()
        .to_string()];
    // rpmbuild repeats its errors under "RPM build errors:"; Debian's rpm adds a hostname warning.
    let extra = lines[first + 1..].iter().take_while(|l| {
        l.starts_with('\t') || l.starts_with("    ") || l.starts_with("RPM build errors:")
    });
    for l in extra.map(|l| l.trim()) {
        if parts.len() < 6
            && !l.starts_with("RPM build errors:")
            && !l.starts_with("Could not canonicalize hostname")
            && !parts.iter().any(|p| p == l)
        {
            parts.push(l.to_string());
        }
    }
    let mut out = parts.join(" ");
    out.truncate(400);
    Some(out)
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
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(BuildError::BadPath {
            package: package.into(),
            path: rel.into(),
        });
    }
    Ok(build_dir.join(p))
}

/// Runs `job` in a slot made for it. `cancel` turning true kills whatever
/// runs and discards the output.
pub async fn run_job(
    cfg: &WorkerConfig,
    job: &BuildJob,
    cancel: watch::Receiver<bool>,
) -> BuildResult {
    run_with(cfg, job, None, cancel).await
}

/// Runs `job` in `prepared` (made for `job.slot` before the lease arrived).
pub async fn run_prepared(
    cfg: &WorkerConfig,
    job: &BuildJob,
    prepared: Prepared,
    cancel: watch::Receiver<bool>,
) -> BuildResult {
    run_with(cfg, job, Some(prepared), cancel).await
}

async fn run_with(
    cfg: &WorkerConfig,
    job: &BuildJob,
    prepared: Option<Prepared>,
    mut cancel: watch::Receiver<bool>,
) -> BuildResult {
    let started = Instant::now();
    let mut phases = Phases::default();
    let (log_path, mut log) = match open_log(cfg, job).await {
        Ok(l) => l,
        Err(e) => {
            if let Some(p) = prepared {
                p.close().await;
            }
            return BuildResult {
                result: Err(e),
                phases,
                duration: started.elapsed(),
                log: None,
            };
        }
    };
    let t = Instant::now();
    let prepared = match prepared {
        Some(p) => Ok(p),
        None => Prepared::start(cfg, &job.slot).await,
    };
    phases.chroot = t.elapsed();
    let result = match prepared {
        Err(e) => Err(e),
        Ok(mut prepared) => {
            let r = build_in(
                cfg,
                job,
                &prepared.chroot,
                &mut prepared.sandbox,
                &mut log,
                &mut phases,
                &mut cancel,
            )
            .await;
            let t = Instant::now();
            // The sandbox ended already, unless the build stopped before it ran.
            prepared.close().await;
            phases.cleanup = t.elapsed();
            r
        }
    };
    conclude(log, log_path, result, phases, started).await
}

/// Ends the log with the outcome and the phases, and makes the result.
pub(crate) async fn conclude(
    mut log: Log,
    log_path: PathBuf,
    result: Result<Vec<Published>, BuildError>,
    phases: Phases,
    started: Instant,
) -> BuildResult {
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
    BuildResult {
        result,
        phases,
        duration: started.elapsed(),
        log: Some(log_path),
    }
}

/// Opens the job's log (its path checked against the build directory).
pub(crate) async fn open_log(
    cfg: &WorkerConfig,
    job: &BuildJob,
) -> Result<(PathBuf, Log), BuildError> {
    let path = relative(&job.package, &cfg.build_dir, &job.log_path)?;
    let log = Log::create(path.clone()).await?;
    Ok((path, log))
}

/// The macro files (on the share): their host paths, for the spec parser,
/// and where they go in the chroot, `/etc/rpm/`, where rpm loads `macros.*`
/// after its own and the platform's files.
fn macro_files(job: &BuildJob, cfg: &WorkerConfig) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let mut out = Vec::new();
    for (i, rel) in job.macro_files.iter().enumerate() {
        let from = relative(&job.package, &cfg.build_dir, rel)?;
        if !from.is_file() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
            return Err(BuildError::MacroFile {
                package: job.package.clone(),
                path: from,
                source,
            });
        }
        let name = from
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((from, format!("/etc/rpm/macros.zz-dbuild-{i:02}-{name}")));
    }
    Ok(out)
}

/// The limits of a sandbox that installs and then builds: one wall-time
/// budget for both, and the longer of the silent-time limits.
fn sandbox_limits(cfg: &WorkerConfig, installs: bool) -> Limits {
    if !installs {
        return cfg.build_limits;
    }
    Limits {
        wall: cfg.install_limits.wall + cfg.build_limits.wall,
        silent: cfg.install_limits.silent.max(cfg.build_limits.silent),
    }
}

fn describe_step(step: &StepEnd) -> String {
    match (&step.spawn_error, step.code, step.signal) {
        (Some(e), _, _) => format!("could not start: {e}"),
        (None, Some(c), _) => format!("exited with status {c}"),
        (None, None, Some(s)) => format!("was killed by signal {s}"),
        (None, None, None) => "was killed by a signal".into(),
    }
}

/// A build's own part, ready for its waiting sandbox: the [`Go`] (binds,
/// files, network and the install step, if any) and the rpmbuild step that
/// follows it.
pub(crate) struct Launch {
    pub go: Go,
    pub rpmbuild: Step,
    /// There is an install step.
    pub installs: bool,
}

/// Stages the spec, sources and macro files into `chroot` and composes the
/// sandbox's part of the build; `phases.sources` is set and `notes` gets
/// the lines for the log (also when it fails).
pub(crate) async fn compose(
    cfg: &WorkerConfig,
    job: &BuildJob,
    chroot: &Chroot,
    phases: &mut Phases,
    notes: &mut Vec<String>,
) -> Result<Launch, BuildError> {
    let pkg = job.package.as_str();
    notes.push(format!(
        "package {pkg} attempt {} in {}",
        job.attempt,
        chroot.dir.display()
    ));

    // Spec, includes, patches, sources, macro files.
    let t = Instant::now();
    let macro_files = macro_files(job, cfg)?;
    let spec_path = relative(pkg, &cfg.build_dir, &job.spec)?;
    let parser_macro_files = macro_files.iter().map(|(host, _)| host.clone()).collect();
    let opts = ParseOptions {
        defines: job.macros.clone(),
        arch: job.arch.clone(),
        macro_files: parser_macro_files,
        ..ParseOptions::default()
    };
    let mut source_dirs = cfg.sources.clone();
    source_dirs.push(cfg.build_dir.join("SOURCES"));
    let (topdir, p) = (chroot.topdir.clone(), pkg.to_string());
    let staged = tokio::task::spawn_blocking(move || {
        sources::stage(&p, &spec_path, &source_dirs, &topdir, &opts)
    })
    .await
    .map_err(|e| {
        BuildError::Run(RunError::Wait {
            what: "staging sources".into(),
            source: std::io::Error::other(e),
        })
    })??;
    notes.push(format!(
        "staged {} file(s), {} bytes, {} verified against config.yaml",
        staged.files, staged.bytes, staged.verified
    ));
    if !job.macro_files.is_empty() {
        notes.push(format!(
            "macro files in /etc/rpm: {}",
            job.macro_files.join(" ")
        ));
    }
    phases.sources = t.elapsed();

    // The BuildRequires closure (plus the assumed capabilities), then rpmbuild, in one sandbox.
    let mut rpms = install::resolve(pkg, &cfg.build_dir, &job.install, &cfg.prebuilt)?;
    if !job.assume_provided.is_empty() {
        rpms.push(
            crate::provides::assumed_provides_rpm(
                &cfg.base_root,
                &cfg.work_dir,
                cfg.overlay,
                &job.assume_provided,
            )
            .await?,
        );
    }
    let mut binds = Vec::new();
    let mut steps = Vec::new();
    if !rpms.is_empty() {
        notes.push(format!("installing {} RPM(s)", rpms.len()));
        let (rpm_binds, step) = install::install_step(&rpms);
        binds.extend(rpm_binds);
        steps.push(step);
    }
    let argv = rpmbuild::rpmbuild_argv(
        rpmbuild::Outputs::All,
        &staged.spec_in_chroot,
        &job.macros,
        job.check,
    );
    notes.push(format!("then running {}", argv.join(" ")));
    let network = staged.network_required;
    notes.push(
        if network {
            "network: the spec defines network_required, so the build shares the host's network"
        } else {
            "network: none (a private network namespace with only loopback)"
        }
        .into(),
    );
    let go = Go {
        binds,
        files: macro_files,
        host_network: network,
        steps,
        no_sync: !cfg.build_fsync,
        then_wait: false,
    };
    go.check().map_err(crate::chroot::ChrootError::from)?;
    Ok(Launch {
        go,
        rpmbuild: Step {
            name: RPMBUILD_STEP.into(),
            argv,
            unmount_after: vec![],
        },
        installs: !rpms.is_empty(),
    })
}

async fn build_in(
    cfg: &WorkerConfig,
    job: &BuildJob,
    chroot: &Chroot,
    sandbox: &mut Child,
    log: &mut Log,
    phases: &mut Phases,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Vec<Published>, BuildError> {
    let mut notes = Vec::new();
    let launch = compose(cfg, job, chroot, phases, &mut notes).await;
    for note in &notes {
        log.note(note).await?;
    }
    let Launch {
        mut go,
        rpmbuild,
        installs,
    } = launch?;
    let t = Instant::now();
    go.steps.push(rpmbuild);
    send_line(&job.package, sandbox, &go, true).await?;
    let output = rpmbuild::Output::take(sandbox);
    finish(
        cfg, job, chroot, sandbox, output, log, phases, cancel, installs, t,
    )
    .await
}

/// Waits for the sandbox running the build's steps (its output going to
/// `log`), judges how they went and publishes the RPMs. `since`: when the
/// worker's part of the wait began (for the chroot phase).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    cfg: &WorkerConfig,
    job: &BuildJob,
    chroot: &Chroot,
    sandbox: &mut Child,
    output: rpmbuild::Output,
    log: &mut Log,
    phases: &mut Phases,
    cancel: &mut watch::Receiver<bool>,
    installs: bool,
    since: Instant,
) -> Result<Vec<Published>, BuildError> {
    let pkg = job.package.as_str();
    let end = rpmbuild::run_output(
        "build",
        sandbox,
        output,
        log,
        sandbox_limits(cfg, installs),
        cancel,
    )
    .await?;
    let outcome = Outcome::read(&chroot.status_file());
    let install_end = outcome.step(install::INSTALL_STEP);
    let build_end = outcome.step(RPMBUILD_STEP);
    phases.install = install_end.map(|s| s.duration).unwrap_or_default();
    phases.rpmbuild = build_end.map(|s| s.duration).unwrap_or_default();
    phases.chroot += since
        .elapsed()
        .saturating_sub(phases.install + phases.rpmbuild);
    if end == RunEnd::Cancelled {
        return Err(BuildError::Cancelled {
            package: pkg.into(),
        });
    }
    if let Some(detail) = outcome.setup_error.clone() {
        return Err(BuildError::Sandbox {
            package: pkg.into(),
            detail,
        });
    }
    match install_end {
        Some(s) if !s.success() => {
            return Err(BuildError::InstallFailed {
                package: pkg.into(),
                end: describe_step(s),
            })
        }
        // Killed (a limit) while installing.
        None if installs && !end.success() => {
            return Err(BuildError::InstallFailed {
                package: pkg.into(),
                end: describe(&end),
            })
        }
        _ => {}
    }
    // rpmbuild's own exit status or a time limit is the package's doing; a
    // signal from outside (the OOM killer) or a sandbox that died is not.
    let failed = match (&end, build_end) {
        (RunEnd::Exited(_), Some(s)) if s.success() => None,
        (RunEnd::Exited(_), Some(s)) => Some((
            describe_step(s),
            s.code,
            if s.code.is_some() {
                FailureKind::Package
            } else {
                FailureKind::Transient
            },
        )),
        (RunEnd::Exited(c), None) => Some((
            format!("did not run (sandbox ended with {c:?})"),
            None,
            FailureKind::Transient,
        )),
        (limit @ (RunEnd::WallTimeout(_) | RunEnd::SilentTimeout(_)), _) => {
            Some((describe(limit), None, FailureKind::Package))
        }
        (other, _) => Some((describe(other), None, FailureKind::Transient)),
    };
    if let Some((end, exit_status, kind)) = failed {
        let detail = rpm_error_summary(&log.path)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(BuildError::Rpmbuild {
            package: pkg.into(),
            end,
            exit_status,
            detail,
            kind,
        });
    }
    if *cancel.borrow() {
        return Err(BuildError::Cancelled {
            package: pkg.into(),
        });
    }

    // Publish.
    let t = Instant::now();
    let (build_dir, topdir, p, lease) = (
        cfg.build_dir.clone(),
        chroot.topdir.clone(),
        pkg.to_string(),
        job.lease_id.clone(),
    );
    let published = tokio::task::spawn_blocking(move || {
        publish::publish_outputs(&p, &topdir, &build_dir, &lease)
    })
    .await
    .map_err(|e| {
        BuildError::Run(RunError::Wait {
            what: "publishing".into(),
            source: std::io::Error::other(e),
        })
    })??;
    phases.publish = t.elapsed();
    for f in &published {
        log.note(&format!(
            "published {} (as {} once accepted) sha256={}",
            f.incoming, f.rel_path, f.sha256
        ))
        .await?;
    }
    Ok(published)
}

/// Writes `value` (the build's [`Go`], or a [`crate::sandbox::Then`]) as one
/// JSON line on the waiting sandbox's stdin, then closes it when `close` (no
/// more lines will come).
pub(crate) async fn send_line(
    package: &str,
    sandbox: &mut Child,
    value: &impl serde::Serialize,
    close: bool,
) -> Result<(), BuildError> {
    use tokio::io::AsyncWriteExt;
    let fail = |detail: String| BuildError::Sandbox {
        package: package.into(),
        detail,
    };
    let mut line = serde_json::to_vec(value).map_err(|e| fail(e.to_string()))?;
    line.push(b'\n');
    let mut stdin = sandbox
        .stdin
        .take()
        .ok_or_else(|| fail("its stdin is gone".into()))?;
    stdin
        .write_all(&line)
        .await
        .map_err(|e| fail(format!("it ended before the build started ({e})")))?;
    if !close {
        sandbox.stdin = Some(stdin);
    }
    Ok(())
}

/// The name of the rpmbuild step in the sandbox's status.
const RPMBUILD_STEP: &str = "rpmbuild";
