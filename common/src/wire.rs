//! REST wire types shared by the scheduler and the worker (JSON under `/v1`).
//!
//! Worker calls (bearer token required):
//! - `POST /v1/workers` [`RegisterRequest`] -> [`RegisterReply`]
//! - `POST /v1/lease` [`LeaseRequest`] -> [`LeaseReply`] (long-polls up to `wait_secs`)
//! - `POST /v1/leases/{id}/heartbeat` [`HeartbeatRequest`] -> [`HeartbeatReply`]
//! - `POST /v1/leases/{id}/report` [`Report`] -> [`ReportReply`]
//! - `POST /v1/leases/{id}/reserve` [`ReserveRequest`] -> [`ReserveReply`]
//! - `POST /v1/workers/{id}/leave` -> [`LeaveReply`] (the worker stops)
//!
//! Read calls: `GET /v1/summary` [`Summary`], `GET /v1/packages?state=` ([`PackageInfo`]s),
//! `GET /v1/packages/{name}` [`PackageDetail`], `GET /v1/graph` [`GraphView`], `GET /v1/workers` ([`WorkerInfo`]s),
//! `GET /v1/rpms?after=&limit=` ([`crate::share::RpmsPage`]: every accepted RPM with its sha256 and package).
//! Errors come back as [`ErrorBody`].

use crate::dispatch::PkgState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A worker introduces itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Unique, human-readable name (e.g. the pod name).
    pub name: String,
    /// Architecture it builds for (`x86_64`).
    pub arch: String,
    /// How many builds it runs at once.
    pub slots: u32,
}

/// The scheduler's answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegisterReply {
    /// Id to use in every later call.
    pub worker_id: String,
    /// How long a lease lives without a heartbeat.
    pub lease_ttl_secs: u64,
    /// How often to heartbeat each lease.
    pub heartbeat_secs: u64,
}

/// A worker asks for work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaseRequest {
    pub worker_id: String,
    /// Long-poll at most this long for a package (capped by the scheduler).
    #[serde(default)]
    pub wait_secs: u64,
}

/// A `--define` macro handed to rpmbuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Define {
    pub name: String,
    pub value: String,
}

/// The right and duty to build one package until `deadline_unix_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    pub lease_id: String,
    /// Source package name.
    pub package: String,
    /// `[epoch:]version-release` of the source package.
    pub evr: String,
    /// Spec file, relative to the build directory (`SPECS/...`).
    pub spec: String,
    /// 1 for the first attempt at this package in this build.
    pub attempt: u32,
    /// RPM files to install first, relative to the build directory.
    pub install: Vec<String>,
    /// Macros to define.
    pub macros: Vec<Define>,
    pub arch: String,
    /// Lease deadline (milliseconds since the Unix epoch); renew by heartbeat.
    pub deadline_unix_ms: u64,
    /// Where to write the build log, relative to the build directory.
    pub log_path: String,
    /// Run `%check` (the worker omits rpmbuild's `--nocheck`); `dbuild local --check`.
    #[serde(default)]
    pub check: bool,
    /// rpm macro files for rpmbuild, relative to the build directory
    /// (`MACROS/NN-name`, copies of the scheduler's `--macros-file`s), in order.
    #[serde(default)]
    pub macro_files: Vec<String>,
    /// The user's `--assume-provided` names, sorted and unique (not the base
    /// root's own provides): the worker installs a generated package that
    /// Provides them, so rpmbuild's BuildRequires check passes.
    #[serde(default)]
    pub assume_provided: Vec<String>,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaseReply {
    /// The package to build; `None` when the wait ran out.
    pub lease: Option<Lease>,
    /// The build is over: nothing more will ever be handed out.
    pub finished: bool,
}

/// Keeps a lease alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    pub worker_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatReply {
    pub deadline_unix_ms: u64,
}

/// One published RPM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RpmFile {
    /// Relative to the build directory: `stage/RPMS/<arch>/<file>.rpm` or `stage/SRPMS/<file>.rpm`.
    pub path: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes. The worker puts the file in `incoming/<lease_id>/` (see
    /// [`crate::share::incoming_path`]); the scheduler checks the size there
    /// before it accepts the report (absent from older workers: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl RpmFile {
    /// The binary package name, from `name-version-release.arch.rpm`.
    pub fn binary_name(&self) -> Option<&str> {
        rpm_binary_name(&self.path)
    }
}

/// Where the log of one attempt at a package goes, relative to the build directory.
pub fn log_path(package: &str, attempt: u32) -> String {
    format!("stage/LOGS/{package}/{attempt}.log")
}

/// `foo-devel` from `.../foo-devel-1.2-3.ph5.x86_64.rpm`.
pub fn rpm_binary_name(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    let stem = file.strip_suffix(".rpm")?;
    let (nvr, _arch) = stem.rsplit_once('.')?;
    let (nv, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Success {
        /// Every RPM (and SRPM) it built, by the `stage/` path it gets once
        /// accepted; the files themselves are in `incoming/<lease_id>/`.
        rpms: Vec<RpmFile>,
    },
    Failure {
        /// rpmbuild's exit status, if it ran.
        exit_status: Option<i32>,
        /// What went wrong, in one line.
        reason: String,
        /// Whose fault it was, which decides whether it is retried.
        #[serde(default)]
        kind: FailureKind,
    },
}

/// Why a build failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The package's own build failed (rpmbuild exited non-zero, a source
    /// is missing or does not match its checksum, a time limit was hit):
    /// another attempt would fail the same way, so it is not retried unless
    /// the scheduler runs with `--retry-package-failures`.
    Package,
    /// Anything else (the sandbox, the install, the share, a killed
    /// process, a worker stopping): retried, on another worker if there is one.
    #[default]
    Transient,
}

/// The result of a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub worker_id: String,
    /// Wall-clock seconds the build took.
    pub duration_secs: f64,
    /// Log file, relative to the build directory (`stage/LOGS/...`).
    #[serde(default)]
    pub log_path: Option<String>,
    pub outcome: Outcome,
    /// Also hand this worker its next package in the reply, if one is ready
    /// (saves a lease request; without one, long-poll `/v1/lease` as usual).
    #[serde(default)]
    pub next_lease: bool,
    /// With `next_lease`: the `lease_id` of the reservation this lease got
    /// ([`ReserveReply`]); the reply's `next` is that lease when the
    /// reservation still holds, else whatever is best now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// Seconds spent in each part of the worker's pipeline (`chroot`,
    /// `install`, `sources`, `rpmbuild`, `publish`, `cleanup`), for metrics
    /// and the package's history.
    #[serde(default)]
    pub phases_secs: BTreeMap<String, f64>,
}

/// The phases a worker reports (see [`Report::phases_secs`]); metrics keep
/// only these, whatever else a report names.
pub const PHASES: [&str; 6] = [
    "chroot", "install", "sources", "rpmbuild", "publish", "cleanup",
];

/// Asks, during the build of a lease, for the package the same slot builds
/// next, so the worker can prepare it (chroot, sources, BuildRequires)
/// while the current build runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReserveRequest {
    pub worker_id: String,
}

/// A reservation: the lease the slot's next build will have if its report
/// claims it (same `lease_id`, `attempt` and everything else). Until then the
/// package stays ready and an idle worker may take it over; asking again for
/// the same lease returns the same reservation while it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReserveReply {
    #[serde(default)]
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportReply {
    pub package: String,
    /// The package's state after the report (`ready` again when retried).
    pub state: PkgState,
    /// With `next_lease`: the worker's next package, when one was ready.
    #[serde(default)]
    pub next: Option<Lease>,
    /// With `next_lease`: the build is over (nothing more will be handed out).
    #[serde(default)]
    pub finished: bool,
}

/// The answer to `POST /v1/workers/{id}/leave`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaveReply {
    /// Leases the worker still held, now back in the queue.
    pub leases_returned: usize,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// The whole build at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub packages: usize,
    /// Number of packages per state (all states listed).
    pub counts: BTreeMap<String, usize>,
    /// Seconds since the build recorded in the state file started (a resumed
    /// build counts from its first start), until it finished.
    pub elapsed_secs: f64,
    /// Seconds since this scheduler process started, until the build finished.
    #[serde(default)]
    pub run_elapsed_secs: f64,
    /// Estimate of the time left: max(remaining critical path, remaining
    /// work / live slots), each package by its measured or estimated
    /// duration, a running one by what is left of it (see `dbuild_common::eta`).
    pub estimate_left_secs: f64,
    /// The longest chain of packages still to build, in estimated seconds.
    #[serde(default)]
    pub critical_path_left_secs: f64,
    pub finished: bool,
    /// `running`, `succeeded`, or `failed` once finished with failures.
    pub outcome: String,
    /// Packages that failed for good.
    pub failed: Vec<String>,
    pub workers_live: usize,
    pub slots_live: u64,
}

/// One package in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PackageInfo {
    pub name: String,
    pub evr: String,
    pub spec: String,
    pub state: PkgState,
    /// Critical-path priority (higher goes first).
    pub priority: f64,
    /// Leases granted so far in this build.
    pub attempts: u32,
    pub failures: u32,
    /// While building: the worker and lease.
    pub worker: Option<String>,
    pub lease_id: Option<String>,
    pub since_unix_ms: Option<u64>,
    /// While waiting: the packages it still needs.
    pub waiting_on: Vec<String>,
    /// When dep-failed: the needed package that failed (or was dep-failed).
    pub dep_failed_on: Option<String>,
    /// Last failure reason.
    pub reason: Option<String>,
    pub input_hash: String,
}

/// Something that happened to a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEvent {
    pub at_unix_ms: u64,
    /// `leased`, `succeeded`, `failed`, `expired`, `dep-failed`, ...
    pub kind: String,
    pub worker: Option<String>,
    pub lease_id: Option<String>,
    pub attempt: Option<u32>,
    pub detail: Option<String>,
}

/// One package with its history and why it waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PackageDetail {
    pub info: PackageInfo,
    /// A sentence: why it is in its state.
    pub why: String,
    pub needs: Vec<String>,
    pub needed_by: Vec<String>,
    pub builds: Vec<String>,
    pub rpms: Vec<RpmFile>,
    pub history: Vec<HistoryEvent>,
}

/// A registered worker, for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerInfo {
    pub name: String,
    pub arch: String,
    pub slots: u32,
    pub registered_unix_ms: u64,
    /// Missed the heartbeats of all its leases (until it asks for work again).
    pub gone: bool,
    /// Packages it holds leases on.
    pub building: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphNode {
    pub name: String,
    pub state: PkgState,
    pub priority: f64,
}

/// `from` needs `to` built first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphView {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_names_from_rpm_paths() {
        assert_eq!(
            rpm_binary_name("stage/RPMS/x86_64/foo-devel-1.2-3.ph5.x86_64.rpm"),
            Some("foo-devel")
        );
        assert_eq!(
            rpm_binary_name("glibc-2.38-1.ph5.noarch.rpm"),
            Some("glibc")
        );
        assert_eq!(rpm_binary_name("nonsense.rpm"), None);
        assert_eq!(rpm_binary_name("a-1-2.x86_64.txt"), None);
    }

    #[test]
    fn report_json_shape() -> Result<(), serde_json::Error> {
        let r: Report = serde_json::from_str(
            r#"{"worker_id":"w","duration_secs":1.5,"outcome":{"status":"failure","exit_status":1,"reason":"boom"}}"#,
        )?;
        // A report without a kind (an older worker) is a transient failure: retried, as before.
        assert_eq!(
            r.outcome,
            Outcome::Failure {
                exit_status: Some(1),
                reason: "boom".into(),
                kind: FailureKind::Transient
            }
        );
        let r: Report = serde_json::from_str(
            r#"{"worker_id":"w","duration_secs":1.5,"outcome":{"status":"failure","exit_status":1,"reason":"boom","kind":"package"}}"#,
        )?;
        assert!(matches!(
            r.outcome,
            Outcome::Failure {
                kind: FailureKind::Package,
                ..
            }
        ));
        assert!(r.phases_secs.is_empty() && r.claim.is_none() && !r.next_lease);
        Ok(())
    }
}
