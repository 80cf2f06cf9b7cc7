//! Worker endpoints: register, lease (long poll), heartbeat, report.

use crate::app::{now_ms, App};
use crate::auth::Authed;
use crate::error::SchedError;
use crate::incoming;
use crate::state::LeaseAttempt;
use actix_web::{post, web, HttpResponse};
use dbuild_common::wire::{
    ErrorBody, HeartbeatReply, HeartbeatRequest, LeaseReply, LeaseRequest, LeaveReply, Outcome,
    RegisterReply, RegisterRequest, Report, ReportReply, ReserveReply, ReserveRequest,
};
use std::time::Duration;

/// Register a worker (or re-register after a restart: its old leases are given up).
#[utoipa::path(post, path = "/v1/workers", request_body = RegisterRequest, security(("bearer" = [])),
    responses((status = 200, body = RegisterReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[post("/v1/workers")]
pub async fn register(
    _a: Authed,
    app: web::Data<App>,
    req: web::Json<RegisterRequest>,
) -> Result<HttpResponse, SchedError> {
    let now = now_ms();
    let (res, pending) = app.change(|b| b.register(&req, now));
    pending.wait().await?;
    let worker_id = res?;
    app.wake();
    Ok(HttpResponse::Ok().json(RegisterReply {
        worker_id,
        lease_ttl_secs: app.lease_ttl_ms.div_ceil(1000),
        heartbeat_secs: (app.lease_ttl_ms / 3000).max(1),
    }))
}

/// Ask for a package to build; long-polls up to `wait_secs` (capped) for one to become ready.
#[utoipa::path(post, path = "/v1/lease", request_body = LeaseRequest, security(("bearer" = [])),
    responses((status = 200, body = LeaseReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown worker"),
        (status = 409, body = ErrorBody, description = "all the worker's slots hold leases")))]
#[post("/v1/lease")]
pub async fn lease(
    _a: Authed,
    app: web::Data<App>,
    req: web::Json<LeaseRequest>,
) -> Result<HttpResponse, SchedError> {
    let wait = Duration::from_secs(req.wait_secs).min(app.max_wait);
    let now = tokio::time::Instant::now();
    let until = now.checked_add(wait).unwrap_or(now);
    let mut rx = app.changed.subscribe();
    loop {
        rx.borrow_and_update();
        let (res, pending) = app.change(|b| b.try_lease(&req.worker_id, now_ms()));
        pending.wait().await?;
        match res? {
            LeaseAttempt::Granted(lease) => {
                app.metrics.leases_granted.inc();
                return Ok(HttpResponse::Ok().json(LeaseReply {
                    lease: Some(*lease),
                    finished: false,
                }));
            }
            LeaseAttempt::Finished => {
                return Ok(HttpResponse::Ok().json(LeaseReply {
                    lease: None,
                    finished: true,
                }))
            }
            LeaseAttempt::Nothing => {}
        }
        match tokio::time::timeout_at(until, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => {
                return Ok(HttpResponse::Ok().json(LeaseReply {
                    lease: None,
                    finished: false,
                }))
            }
        }
    }
}

/// Renew a lease's deadline.
#[utoipa::path(post, path = "/v1/leases/{id}/heartbeat", request_body = HeartbeatRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "lease id")),
    responses((status = 200, body = HeartbeatReply), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown lease"),
        (status = 409, body = ErrorBody, description = "lease no longer live, or another worker's")))]
#[post("/v1/leases/{id}/heartbeat")]
pub async fn heartbeat(
    _a: Authed,
    app: web::Data<App>,
    id: web::Path<String>,
    req: web::Json<HeartbeatRequest>,
) -> Result<HttpResponse, SchedError> {
    let deadline = app.lock().heartbeat(&id, &req.worker_id, now_ms())?;
    Ok(HttpResponse::Ok().json(HeartbeatReply {
        deadline_unix_ms: deadline,
    }))
}

/// Reserve the package this lease's slot builds next, so the worker can
/// prepare it during the current build. The package stays ready: an idle
/// worker takes it over when nothing else is; the slot's report claims it.
#[utoipa::path(post, path = "/v1/leases/{id}/reserve", request_body = ReserveRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "lease id of the build in progress")),
    responses((status = 200, body = ReserveReply, description = "a reservation, or none when no ready package is left unreserved"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown lease"),
        (status = 409, body = ErrorBody, description = "lease no longer live, or another worker's")))]
#[post("/v1/leases/{id}/reserve")]
pub async fn reserve(
    _a: Authed,
    app: web::Data<App>,
    id: web::Path<String>,
    req: web::Json<ReserveRequest>,
) -> Result<HttpResponse, SchedError> {
    let reserved = app.lock().reserve(&id, &req.worker_id)?;
    Ok(HttpResponse::Ok().json(ReserveReply { lease: reserved }))
}

/// Report the result of a lease. Accepted once, only for the live lease of the reporting worker.
/// A success is accepted when every file it names is in `incoming/<lease>/` and no other
/// package owns one of their paths; the answer comes once the acceptance is committed and
/// the files are in `stage/`.
#[utoipa::path(post, path = "/v1/leases/{id}/report", request_body = Report, security(("bearer" = [])),
    params(("id" = String, Path, description = "lease id")),
    responses((status = 200, body = ReportReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown lease"),
        (status = 409, body = ErrorBody, description = "lease no longer live (late or duplicate report), or another worker's")))]
#[post("/v1/leases/{id}/report")]
pub async fn report(
    _a: Authed,
    app: web::Data<App>,
    id: web::Path<String>,
    req: web::Json<Report>,
) -> Result<HttpResponse, SchedError> {
    let (id, req) = (id.into_inner(), req.into_inner());
    let found = files_found(&app, &id, &req).await;
    // The report and, when asked for, the next lease: one change, one commit.
    let (res, pending) = app.change(|b| {
        let now = now_ms();
        let reported = b.report(&id, &req, found, now)?;
        let next = if req.next_lease {
            Some(b.next_after_report(&id, &req.worker_id, req.claim.as_deref(), now))
        } else {
            b.drop_reservation(&id);
            None
        };
        Ok::<_, SchedError>((reported, next))
    });
    // The rest in a task of its own: a client hanging up must not stop a promotion half way.
    let task = {
        let (app, worker_id, next_lease) = (app.clone(), req.worker_id.clone(), req.next_lease);
        actix_web::rt::spawn(async move {
            pending.wait().await?;
            let Ok((reported, next)) = res else {
                return Ok(res.map(|(r, _)| (r, None)));
            };
            let next = match &reported.accepted {
                Some(accepted) => {
                    after_acceptance(&app, accepted, &worker_id, next_lease, next).await?
                }
                None => next,
            };
            Ok::<_, SchedError>(Ok((reported, next)))
        })
    };
    let outcome = task
        .await
        .map_err(|e| SchedError::Internal(format!("report task: {e}")))??;
    let (reported, next) = match outcome {
        Ok(r) => r,
        Err(e) => {
            app.metrics.reports.with_label_values(&["rejected"]).inc();
            tracing::info!(lease = %id, error = %e, "report rejected");
            return Err(e);
        }
    };
    let accepted = reported.accepted.is_some();
    app.metrics
        .reports
        .with_label_values(&[if accepted { "success" } else { "failure" }])
        .inc();
    if accepted {
        app.metrics.build_duration.observe(req.duration_secs);
        for (phase, secs) in req
            .phases_secs
            .iter()
            .filter(|(p, _)| dbuild_common::wire::PHASES.contains(&p.as_str()))
        {
            app.metrics
                .build_phases
                .with_label_values(&[phase.as_str()])
                .observe(*secs);
        }
    }
    app.wake();
    let (next, finished) = match next {
        Some(Ok(LeaseAttempt::Granted(granted))) => {
            app.metrics.leases_granted.inc();
            (Some(*granted), false)
        }
        Some(Ok(LeaseAttempt::Finished)) => (None, true),
        // Nothing ready, or the worker cannot take one now: it asks /v1/lease as usual.
        Some(Ok(LeaseAttempt::Nothing)) | Some(Err(_)) | None => (None, false),
    };
    Ok(HttpResponse::Ok().json(ReportReply {
        package: reported.package,
        state: reported.state,
        next,
        finished,
    }))
}

/// For a success report: what the lease's incoming directory holds of the
/// files it names (file I/O, outside the state lock). Nothing to check for a
/// failure, nor for a report the validation refuses anyway.
async fn files_found(app: &App, id: &str, req: &Report) -> Result<Vec<u64>, String> {
    let Outcome::Success { rpms } = &req.outcome else {
        return Ok(Vec::new());
    };
    if rpms.len() > 10_000 {
        return Err("too many RPMs".into());
    }
    let (dir, lease_id, rpms) = (app.share.build_dir.clone(), id.to_string(), rpms.clone());
    web::block(move || incoming::check_reported(&dir, &lease_id, &rpms))
        .await
        .unwrap_or_else(|e| Err(format!("checking the reported files: {e}")))
}

/// After an acceptance is committed: its files go into stage/, then the
/// package succeeds (what needs it may become ready) and, when the worker
/// asked for its next lease and got none with the report, it may get one of
/// those now.
async fn after_acceptance(
    app: &App,
    lease_id: &str,
    worker_id: &str,
    next_lease: bool,
    next: Option<Result<LeaseAttempt, SchedError>>,
) -> Result<Option<Result<LeaseAttempt, SchedError>>, SchedError> {
    if !matches!(
        app.promote(lease_id, crate::incoming::Pass::First).await,
        Ok(true)
    ) {
        // Recorded on the package; the sweeper tries again. The build itself is accepted.
        return Ok(next);
    }
    let got_none = matches!(next, None | Some(Ok(LeaseAttempt::Nothing)) | Some(Err(_)));
    let (granted, pending) = app.change(|b| {
        let now = now_ms();
        b.promoted(lease_id, now);
        (next_lease && got_none).then(|| b.try_lease(worker_id, now))
    });
    match granted {
        Some(g) => {
            // A lease is answered only once committed.
            pending.wait().await?;
            Ok(Some(g))
        }
        // Only the dependents' new states: nothing the answer depends on.
        None => Ok(next),
    }
}

/// The worker stops: its leases go back to the queue at once (their builds
/// are not waited for) and `/v1/workers` shows it gone until it calls again.
#[utoipa::path(post, path = "/v1/workers/{id}/leave", security(("bearer" = [])),
    params(("id" = String, Path, description = "worker id")),
    responses((status = 200, body = LeaveReply), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown worker")))]
#[post("/v1/workers/{id}/leave")]
pub async fn leave(
    _a: Authed,
    app: web::Data<App>,
    id: web::Path<String>,
) -> Result<HttpResponse, SchedError> {
    let (res, pending) = app.change(|b| b.leave(&id, now_ms()));
    pending.wait().await?;
    let leases_returned = res?;
    app.wake();
    Ok(HttpResponse::Ok().json(LeaveReply { leases_returned }))
}
