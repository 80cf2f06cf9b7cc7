//! Option groups more than one binary takes, each defined once: the
//! scheduler and `dbuild local` share [`SpecOptions`] and [`PolicyOptions`],
//! the worker and `dbuild local` [`WorkerOptions`]. `dbuild local` hands its
//! groups to the processes it starts as they are, so an option added here
//! reaches them without a change to the launcher.

use super::{clap_defaults, Span};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The architecture built for when none is given.
pub const DEFAULT_ARCH: &str = "x86_64";

/// How the specs are read and built: the same for the launcher's parser, the
/// scheduler's parser and input hashes, and rpmbuild.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecOptions {
    /// Target architecture.
    #[arg(long, default_value = DEFAULT_ARCH)]
    pub arch: String,
    /// Macro definition for parsing and rpmbuild, e.g. --define 'dist .ph5' (repeatable).
    #[arg(long = "define", short = 'D', value_name = "'NAME VALUE'")]
    pub defines: Vec<String>,
    /// rpm macro file loaded by the parsers and by rpmbuild (repeatable).
    #[arg(long = "macros-file", alias = "macro-file", value_name = "FILE")]
    pub macro_files: Vec<PathBuf>,
    /// Run `%check`: defines `with_check 1` (part of every input hash, so
    /// switching rebuilds everything) and rpmbuild runs without --nocheck.
    #[arg(long)]
    pub check: bool,
}

impl SpecOptions {
    /// The `--define`s every parser and input hash sees: as given, then
    /// `with_check 1` in check mode, last so that it wins over a
    /// `--define 'with_check 0'`.
    pub fn effective_defines(&self) -> Vec<String> {
        let mut defines = self.defines.clone();
        if self.check {
            defines.push("with_check 1".into());
        }
        defines
    }
}

/// What the scheduler decides for the whole build.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyOptions {
    /// Package weights (Photon's packageWeights.json: {"name": weight}) for
    /// priorities before durations are known.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Capabilities the build root provides besides its rpm database (comma
    /// separated, repeatable): never unresolved; workers install a package
    /// providing them.
    #[arg(long = "assume-provided", value_name = "NAME,...")]
    pub assume_provided: Vec<String>,
    /// File of names as for --assume-provided: one per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub assume_provided_file: Option<PathBuf>,
    /// Retry a package whose own build failed (rpmbuild exited non-zero, a
    /// bad source, a time limit), as transient failures are, up to
    /// --max-attempts: for flaky test suites. By default such a failure is final.
    #[arg(long)]
    pub retry_package_failures: bool,
    /// Attempts per package before it fails for good.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Lost leases (expired, or the worker restarted) after which a package fails for good.
    #[arg(long, default_value_t = 5)]
    pub max_lease_losses: u32,
    /// A lease expires this long after its last heartbeat.
    #[arg(long, default_value = "90s", value_name = "DURATION")]
    pub lease_ttl: Span,
    /// A lease is revoked this long after it was granted, even with heartbeats (a hung build).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub max_build_time: Span,
}

/// How workers build.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerOptions {
    /// Builds each worker runs at once.
    #[arg(long, default_value_t = 1)]
    pub slots: u32,
    /// Directory to look sources up in, after the spec's own directory
    /// (repeatable or comma separated, in order; <build-dir>/SOURCES is searched last).
    #[arg(long = "sources", value_name = "DIR", value_delimiter = ',')]
    pub sources: Vec<PathBuf>,
    /// Directory of prebuilt RPMs to install from when a lease's RPM is not
    /// on the share (repeatable).
    #[arg(long = "prebuilt-repo", value_name = "DIR")]
    pub prebuilt_repo: Vec<PathBuf>,
    /// How chroots are made.
    #[arg(long, value_enum, default_value_t = ChrootMode::Auto)]
    pub chroot_mode: ChrootMode,
    /// Wall-time limit of one rpmbuild.
    #[arg(long, default_value = "4h", value_name = "DURATION")]
    pub build_timeout: Span,
    /// Kill rpmbuild after this long without output.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub silent_timeout: Span,
    /// Let fsync and its relatives inside builds reach the disk. By default
    /// they return at once: the chroot is thrown away, and the published RPMs
    /// are synced by the worker itself.
    #[arg(long)]
    pub build_fsync: bool,
    /// Do not prepare a slot's next build (reserved by the scheduler) while
    /// the current one runs: every build then starts with its chroot, sources
    /// and BuildRequires install after the previous one ended.
    #[arg(long)]
    pub no_prefetch: bool,
}

/// When a commit of the scheduler's state file counts as done, and so when a
/// lease or report is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateSync {
    /// On disk (SQLite `synchronous=FULL`): an acknowledged lease or report
    /// survives a crash of the host.
    Full,
    /// Handed to the operating system (`synchronous=NORMAL`): it survives a
    /// crash of the scheduler; a crash of the host may lose the last commits
    /// (never consistency), and what was lost is built again.
    Normal,
}

/// How a worker makes its chroots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChrootMode {
    /// overlayfs over the read-only base (fast); falls back to `copy` when overlay cannot be mounted.
    Auto,
    Overlay,
    /// `cp -a` of the base (slow, works on any filesystem).
    Copy,
}

impl Default for SpecOptions {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Default for PolicyOptions {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        clap_defaults()
    }
}
