//! The scheduler protocol (`dbuild_common::wire`, bearer token): register, then
//! one loop per slot: long-poll for a lease, build it while heartbeating,
//! report; until the scheduler says the build is over or the worker is told to stop.
//!
//! A heartbeat answered 404/409 means the lease is gone: the build is killed
//! and its output discarded (nothing is published, nothing reported). On stop
//! (SIGTERM) no new lease is taken; a running build gets `grace` to finish,
//! then it is killed and handed back with a failure report saying so.
//!
//! While a slot builds, it asks for a reservation of its next package and
//! prepares that build ([`prefetch`], [`crate::ahead`]); its report claims the
//! reservation, and the reply's next lease is the prepared build when the
//! reservation held.

mod prefetch;

use crate::ahead::Ahead;
use crate::job::{run_job, run_prepared, BuildJob, BuildResult, WorkerConfig};
use crate::prepared::Prepared;
use dbuild_common::wire::{
    FailureKind, HeartbeatReply, HeartbeatRequest, Lease, LeaseReply, LeaseRequest, LeaveReply,
    Outcome, RegisterReply, RegisterRequest, Report, ReportReply, RpmFile,
};
use prefetch::Prefetch;
use reqwest::StatusCode;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("scheduler {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("scheduler {url} answered {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
}

impl ClientError {
    fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Http { .. } => None,
        }
    }
}

/// How to reach the scheduler and who we are.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub scheduler: String,
    pub token: String,
    pub name: String,
    pub arch: String,
    pub slots: u32,
    /// Long-poll duration asked for.
    pub wait_secs: u64,
    /// How long a running build may go on after a stop request.
    pub grace: Duration,
    /// Prepare each slot's next build during the current one.
    pub prefetch: bool,
    /// Test hook (`DBUILD_TEST_PAUSE_AFTER_PUBLISH`): after a successful
    /// build has published its RPMs, wait forever instead of reporting, so a
    /// test can kill the worker between its publish and its report.
    pub test_pause_after_publish: bool,
    /// What the probes of `--listen` report (updated here).
    pub health: Arc<crate::health::Health>,
}

/// Why the worker loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The scheduler said the build is over.
    Finished,
    /// We were told to stop.
    Stopped,
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn post<B: Serialize + ?Sized, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<R, ClientError> {
        let url = format!("{}{path}", self.base);
        let http = |e: reqwest::Error| ClientError::Http {
            url: url.clone(),
            detail: e.to_string(),
        };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(http)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                url,
                status,
                body: body.trim().to_string(),
            });
        }
        resp.json::<R>().await.map_err(http)
    }
}

pub fn to_job(lease: &Lease, slot: usize) -> BuildJob {
    BuildJob {
        lease_id: lease.lease_id.clone(),
        package: lease.package.clone(),
        spec: lease.spec.clone(),
        attempt: lease.attempt,
        install: lease.install.clone(),
        macros: lease
            .macros
            .iter()
            .map(|d| (d.name.clone(), d.value.clone()))
            .collect(),
        arch: lease.arch.clone(),
        log_path: lease.log_path.clone(),
        slot: slot_name(slot),
        check: lease.check,
        macro_files: lease.macro_files.clone(),
        assume_provided: lease.assume_provided.clone(),
    }
}

/// The directory name of slot `slot`.
fn slot_name(slot: usize) -> String {
    format!("slot-{slot}")
}

/// `job` in the prepared slot, or in one made now.
async fn run_with_slot(
    wc: &WorkerConfig,
    job: &BuildJob,
    prepared: Option<Prepared>,
    cancel: watch::Receiver<bool>,
) -> BuildResult {
    match prepared {
        Some(p) => run_prepared(wc, job, p, cancel).await,
        None => run_job(wc, job, cancel).await,
    }
}

/// The report for a finished job.
pub fn to_report(worker_id: &str, job: &BuildJob, r: &BuildResult) -> Report {
    let outcome = match &r.result {
        Ok(files) => Outcome::Success {
            rpms: files
                .iter()
                .map(|f| RpmFile {
                    path: f.rel_path.clone(),
                    sha256: f.sha256.clone(),
                    size: Some(f.bytes),
                })
                .collect(),
        },
        Err(e) => Outcome::Failure {
            exit_status: e.exit_status(),
            reason: e.to_string(),
            kind: e.failure_kind(),
        },
    };
    Report {
        worker_id: worker_id.to_string(),
        duration_secs: r.duration.as_secs_f64(),
        log_path: r.log.as_ref().map(|_| job.log_path.clone()),
        outcome,
        next_lease: false,
        claim: None,
        phases_secs: dbuild_common::wire::PHASES
            .iter()
            .zip(r.phases.in_order())
            .map(|(k, d)| (k.to_string(), d.as_secs_f64()))
            .collect(),
    }
}

/// What the scheduler said with the report.
enum AfterReport {
    /// The next package, handed out with the report.
    Next(Box<Lease>),
    Finished,
    /// Ask `/v1/lease` (nothing was ready, or no report was made).
    Ask,
}

/// Registers and runs `slots` lease loops until the build is over or `stop` turns true.
pub async fn run(
    cc: ClientConfig,
    wc: WorkerConfig,
    stop: watch::Receiver<bool>,
) -> Result<Ended, ClientError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::Http {
            url: cc.scheduler.clone(),
            detail: e.to_string(),
        })?;
    let api = Arc::new(Api {
        http,
        base: cc.scheduler.trim_end_matches('/').to_string(),
        token: cc.token.clone(),
    });
    let session = Arc::new(Session {
        reg: tokio::sync::Mutex::new(register(&api, &cc).await?),
    });
    cc.health.set_registered(true);
    crate::metrics::set_slots(cc.slots.max(1));
    let (cc, wc) = (Arc::new(cc), Arc::new(wc));
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..cc.slots.max(1) as usize {
        let (api, cc, wc, session, stop) = (
            api.clone(),
            cc.clone(),
            wc.clone(),
            session.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            Slot {
                n: slot,
                api: &api,
                cc: &cc,
                wc: &wc,
                session: &session,
            }
            .run(stop)
            .await
        });
    }
    let mut ended = Ended::Finished;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(Ended::Stopped)) => ended = Ended::Stopped,
            Ok(Ok(Ended::Finished)) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => tracing::error!(error = %e, "slot task panicked"),
        }
    }
    cc.health.set_ended();
    leave(&api, &session).await;
    crate::chroot::removals_done().await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(ended),
    }
}

/// Tells the scheduler this worker stops (`/v1/workers` shows it gone at
/// once, not after its silence): one try, a failure only logged.
async fn leave(api: &Api, session: &Session) {
    let worker_id = session.current().await.worker_id;
    let path = format!("/v1/workers/{worker_id}/leave");
    match api
        .post::<_, LeaveReply>(&path, &serde_json::json!({}), Duration::from_secs(5))
        .await
    {
        Ok(r) => tracing::info!(leases_returned = r.leases_returned, "left the build"),
        Err(e) => tracing::warn!(error = %e, "could not tell the scheduler this worker stops"),
    }
}

async fn register(api: &Api, cc: &ClientConfig) -> Result<RegisterReply, ClientError> {
    let req = RegisterRequest {
        name: cc.name.clone(),
        arch: cc.arch.clone(),
        slots: cc.slots,
    };
    let reg: RegisterReply = api
        .post("/v1/workers", &req, Duration::from_secs(30))
        .await?;
    tracing::info!(worker_id = %reg.worker_id, name = %cc.name, slots = cc.slots, heartbeat_secs = reg.heartbeat_secs, "registered");
    Ok(reg)
}

/// The current registration, shared by the slots.
struct Session {
    reg: tokio::sync::Mutex<RegisterReply>,
}

impl Session {
    async fn current(&self) -> RegisterReply {
        self.reg.lock().await.clone()
    }

    /// Registers again unless another slot already replaced `stale_id`.
    async fn reregister(
        &self,
        api: &Api,
        cc: &ClientConfig,
        stale_id: &str,
    ) -> Result<(), ClientError> {
        let mut reg = self.reg.lock().await;
        if reg.worker_id == stale_id {
            tracing::warn!(worker_id = %stale_id, "the scheduler does not know us (restarted?): registering again");
            cc.health.set_registered(false);
            *reg = register(api, cc).await?;
            cc.health.set_registered(true);
        }
        Ok(())
    }
}

/// The slot's chroot and sandbox, made (again) unless a live one is waiting.
async fn prepare(slot: usize, wc: &WorkerConfig, prepared: &mut Option<Prepared>) {
    if let Some(p) = prepared.as_mut() {
        if p.alive() {
            return;
        }
        tracing::warn!(slot, "the waiting build sandbox ended; making another");
    }
    if let Some(p) = prepared.take() {
        p.close().await;
    }
    match Prepared::start(wc, &slot_name(slot)).await {
        Ok(p) => *prepared = Some(p),
        // The build will make its own and report what fails.
        Err(e) => tracing::warn!(slot, error = %e, "could not prepare the next build's sandbox"),
    }
}

/// One slot's loop and what it works with.
struct Slot<'a> {
    n: usize,
    api: &'a Arc<Api>,
    cc: &'a ClientConfig,
    wc: &'a Arc<WorkerConfig>,
    session: &'a Session,
}

impl Slot<'_> {
    async fn run(&self, stop: watch::Receiver<bool>) -> Result<Ended, ClientError> {
        let mut prepared = None;
        let ended = self.lease_loop(stop, &mut prepared).await;
        if let Some(p) = prepared.take() {
            p.close().await;
        }
        ended
    }

    async fn lease_loop(
        &self,
        mut stop: watch::Receiver<bool>,
        prepared: &mut Option<Prepared>,
    ) -> Result<Ended, ClientError> {
        let Slot {
            n: slot,
            api,
            cc,
            wc,
            session,
        } = *self;
        let mut backoff = Duration::from_secs(1);
        // The next lease, and its build if it was prepared ahead.
        let mut next: Option<(Box<Lease>, Option<Ahead>)> = None;
        loop {
            if *stop.borrow() {
                if let Some((lease, ahead)) = next.take() {
                    if let Some(a) = ahead {
                        a.discard().await;
                    }
                    hand_back(api, cc, &session.current().await, &lease).await;
                }
                return Ok(Ended::Stopped);
            }
            let reg = session.current().await;
            if let Some((lease, ahead)) = next.take() {
                match self
                    .build_lease(&reg, &lease, ahead, prepared, stop.clone())
                    .await
                {
                    (AfterReport::Next(l), ahead) => next = Some((l, ahead)),
                    (AfterReport::Finished, _) => return Ok(Ended::Finished),
                    (AfterReport::Ask, _) => {}
                }
                continue;
            }
            let req = LeaseRequest {
                worker_id: reg.worker_id.clone(),
                wait_secs: cc.wait_secs,
            };
            let poll = api.post::<_, LeaseReply>(
                "/v1/lease",
                &req,
                Duration::from_secs(cc.wait_secs + 30),
            );
            // The next build's sandbox gets ready while the scheduler answers.
            let reply = tokio::select! {
                (r, ()) = async { tokio::join!(poll, prepare(slot, wc, prepared)) } => r,
                _ = crate::rpmbuild::cancelled(&mut stop) => return Ok(Ended::Stopped),
            };
            let reply = match reply {
                Ok(r) => {
                    backoff = Duration::from_secs(1);
                    r
                }
                Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => return Err(e),
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
                    session.reregister(api, cc, &reg.worker_id).await?;
                    tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(slot, error = %e, retry_in_secs = backoff.as_secs(), "lease request failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            if reply.finished {
                tracing::info!(slot, "the scheduler says the build is over");
                return Ok(Ended::Finished);
            }
            next = reply.lease.map(|l| (Box::new(l), None));
        }
    }

    /// Builds `lease` (in `ahead` when it was prepared ahead, else in the
    /// prepared slot or a new one) and reports; returns what the report's reply
    /// said, with the next lease's prepared build if there is one.
    async fn build_lease(
        &self,
        reg: &RegisterReply,
        lease: &Lease,
        ahead: Option<Ahead>,
        prepared: &mut Option<Prepared>,
        mut stop: watch::Receiver<bool>,
    ) -> (AfterReport, Option<Ahead>) {
        let _busy = crate::metrics::Busy::start();
        let Slot {
            n: slot,
            api,
            cc,
            wc,
            ..
        } = *self;
        let job = ahead
            .as_ref()
            .map_or_else(|| to_job(lease, slot), |a| a.job().clone());
        tracing::info!(slot, package = %job.package, lease = %lease.lease_id, attempt = job.attempt, prepared_ahead = ahead.is_some(), "building");
        let prefetch = (cc.prefetch && !*stop.borrow())
            .then(|| Prefetch::start(api.clone(), wc.clone(), reg.worker_id.clone(), lease, slot));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_tx = Arc::new(cancel_tx);
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Heartbeats.
        let hb = {
            let (cancel_tx, lost) = (cancel_tx.clone(), lost.clone());
            let path = format!("/v1/leases/{}/heartbeat", lease.lease_id);
            let req = HeartbeatRequest {
                worker_id: reg.worker_id.clone(),
            };
            let every = Duration::from_secs(reg.heartbeat_secs.max(1));
            let package = job.package.clone();
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    match api
                        .post::<_, HeartbeatReply>(&path, &req, every.max(Duration::from_secs(5)))
                        .await
                    {
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.status(),
                                Some(StatusCode::NOT_FOUND | StatusCode::CONFLICT)
                            ) =>
                        {
                            tracing::warn!(package = %package, error = %e, "lease lost: killing the build");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            let _ = cancel_tx.send(true);
                            // run_job sees the cancellation, kills the build and cleans up.
                            std::future::pending::<()>().await
                        }
                        Err(e) => {
                            tracing::warn!(package = %package, error = %e, "heartbeat failed")
                        }
                    }
                }
            }
        };
        let stopping = stop.clone();
        // Grace period after a stop request.
        let grace = {
            let cancel_tx = cancel_tx.clone();
            async move {
                crate::rpmbuild::cancelled(&mut stop).await;
                tracing::info!(
                    grace_secs = cc.grace.as_secs(),
                    "stopping: letting the running build finish"
                );
                tokio::time::sleep(cc.grace).await;
                let _ = cancel_tx.send(true);
                std::future::pending::<()>().await
            }
        };
        let build = async {
            match ahead {
                Some(a) => a.run(wc, cancel_rx).await,
                None => run_with_slot(wc, &job, prepared.take(), cancel_rx).await,
            }
        };
        let result = tokio::select! {
            r = build => Some(r),
            // Neither of these ever completes: they only cancel, and run_job then cleans up and returns.
            _ = hb => None,
            _ = grace => None,
        };
        let lost = lost.load(std::sync::atomic::Ordering::SeqCst);
        let Some(result) = result.filter(|_| !lost) else {
            if lost {
                tracing::warn!(package = %job.package, "lease lost: output discarded, no report");
                // Whatever was published for it will never be accepted.
                remove_incoming(wc, &lease.lease_id).await;
            }
            if let Some(p) = prefetch {
                p.take_for(None).await;
            }
            return (AfterReport::Ask, None);
        };
        if result.result.is_err() {
            // A publication cut short by an error is never accepted either.
            remove_incoming(wc, &lease.lease_id).await;
        } else if cc.test_pause_after_publish {
            tracing::warn!(package = %job.package, lease = %lease.lease_id,
                "test hook DBUILD_TEST_PAUSE_AFTER_PUBLISH: published; waiting forever instead of reporting");
            std::future::pending::<()>().await;
        }
        crate::metrics::build_finished(&result);
        let phases = result.phases;
        let mut report = to_report(&reg.worker_id, &job, &result);
        // Unless stopping, the reply may carry the next package: the reservation, if it holds.
        report.next_lease = !*stopping.borrow();
        report.claim = prefetch
            .as_ref()
            .filter(|_| report.next_lease)
            .and_then(Prefetch::claim);
        if let Outcome::Failure { reason, .. } = &mut report.outcome {
            if matches!(result.result, Err(crate::job::BuildError::Cancelled { .. })) {
                *reason = format!(
                    "handed back: worker {} stopping (SIGTERM); {reason}",
                    cc.name
                );
            }
        }
        match &result.result {
            Ok(files) => {
                tracing::info!(package = %job.package, files = files.len(), secs = result.duration.as_secs_f64(),
                overhead_secs = phases.overhead().as_secs_f64(), "build succeeded")
            }
            Err(e) => tracing::warn!(package = %job.package, error = %e, "build failed"),
        }
        // The next build's sandbox gets ready while the scheduler takes the report
        // (unless that build was prepared ahead, as it will most likely be).
        let make_sandbox = async {
            if report.claim.is_none() {
                prepare(slot, wc, prepared).await;
            }
        };
        let ((after, sent), ()) = tokio::join!(
            send_report(api, &job.package, &lease.lease_id, &report),
            make_sandbox
        );
        if matches!(sent, Sent::Refused { first: true }) {
            // Late or duplicate: nothing of this build will ever be shown. (After
            // an attempt that got no answer the scheduler may have taken the
            // report and be moving the files: then it removes the directory.)
            remove_incoming(wc, &lease.lease_id).await;
        }
        let next_ahead = match prefetch {
            Some(p) => {
                p.take_for(if let AfterReport::Next(l) = &after {
                    Some(l.as_ref())
                } else {
                    None
                })
                .await
            }
            None => None,
        };
        (after, next_ahead)
    }
}

/// Gives back a lease that came with a report but will not be built (the
/// worker is stopping), so that another worker gets it at once.
async fn hand_back(api: &Api, cc: &ClientConfig, reg: &RegisterReply, lease: &Lease) {
    let report = Report {
        worker_id: reg.worker_id.clone(),
        duration_secs: 0.0,
        log_path: None,
        outcome: Outcome::Failure {
            exit_status: None,
            reason: format!(
                "handed back: worker {} stopping before the build started",
                cc.name
            ),
            kind: FailureKind::Transient,
        },
        next_lease: false,
        claim: None,
        phases_secs: Default::default(),
    };
    send_report(api, &lease.package, &lease.lease_id, &report).await;
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The scheduler took it.
    Taken,
    /// Refused (late, duplicate, bad); `first`: by the first attempt, so no
    /// earlier attempt can have been taken.
    Refused { first: bool },
    /// No answer.
    Lost,
}

async fn send_report(
    api: &Api,
    package: &str,
    lease_id: &str,
    body: &Report,
) -> (AfterReport, Sent) {
    let path = format!("/v1/leases/{lease_id}/report");
    for attempt in 0..5u32 {
        match api
            .post::<_, ReportReply>(&path, body, Duration::from_secs(30))
            .await
        {
            Ok(r) => {
                tracing::info!(package = %r.package, state = ?r.state, "reported");
                let after = match (r.next, r.finished) {
                    (Some(next), _) => AfterReport::Next(Box::new(next)),
                    (None, true) => AfterReport::Finished,
                    (None, false) => AfterReport::Ask,
                };
                return (after, Sent::Taken);
            }
            Err(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                tracing::warn!(package = %package, error = %e, "report rejected");
                return (
                    AfterReport::Ask,
                    Sent::Refused {
                        first: attempt == 0,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(package = %package, error = %e, attempt, "report failed, retrying");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
    }
    (AfterReport::Ask, Sent::Lost)
}

/// Removes this worker's `incoming/<lease_id>/` (best effort).
async fn remove_incoming(wc: &WorkerConfig, lease_id: &str) {
    let (dir, lease) = (wc.build_dir.clone(), lease_id.to_string());
    match tokio::task::spawn_blocking(move || crate::publish::remove_incoming(&dir, &lease)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(lease = %lease_id, error = %e, "cannot remove its incoming directory")
        }
        Err(e) => {
            tracing::warn!(lease = %lease_id, error = %e, "removing its incoming directory failed")
        }
    }
}
