//! The worker's HTTP listener for probes and metrics (`--listen ADDR`, off
//! unless given): `/metrics` ([`crate::metrics`]); `/healthz` answers 200 while the worker runs its lease loops (from start-up
//! until the loops have ended), `/readyz` 200 while it is registered with the
//! scheduler. Both read a [`Health`] that the client updates.
//!
//! The listener is actix-web with one HTTP worker thread and without its own
//! signal handling (the worker's SIGTERM handling stays in charge); more routes
//! (e.g. `/metrics`) go into [`routes`].

use actix_web::{get, web, HttpResponse};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HealthError {
    #[error("health listener on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
}

/// What the probes report; shared by the client loops and the listener.
#[derive(Debug, Default)]
pub struct Health {
    registered: AtomicBool,
    ended: AtomicBool,
}

impl Health {
    /// Whether the scheduler knows this worker (set after registering; unset
    /// while registering again after the scheduler forgot it).
    pub fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::SeqCst);
    }

    pub fn registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }

    /// The lease loops have ended: the process is about to exit.
    pub fn set_ended(&self) {
        self.registered.store(false, Ordering::SeqCst);
        self.ended.store(true, Ordering::SeqCst);
    }

    pub fn live(&self) -> bool {
        !self.ended.load(Ordering::SeqCst)
    }
}

fn plain(ok: bool, yes: &'static str, no: &'static str) -> HttpResponse {
    let mut resp = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.content_type("text/plain")
        .body(if ok { yes } else { no })
}

/// Liveness: the worker runs its lease loops.
#[get("/healthz")]
async fn healthz(health: web::Data<Health>) -> HttpResponse {
    plain(health.live(), "ok\n", "ended\n")
}

/// Readiness: registered with the scheduler.
#[get("/readyz")]
async fn readyz(health: web::Data<Health>) -> HttpResponse {
    plain(health.registered(), "ready\n", "not registered\n")
}

/// The listener's routes; a route added here is served with the probes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(crate::metrics::serve);
}

/// Binds `addr` (port 0 picks a free port) and serves [`routes`] on the
/// current tokio runtime until the process exits; returns the bound address.
pub fn start(addr: &str, health: Arc<Health>) -> Result<SocketAddr, HealthError> {
    let err = |error| HealthError::Listen {
        addr: addr.to_string(),
        error,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    let data = web::Data::from(health);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .configure(routes)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)
    .map_err(err)?
    .run();
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "health listener stopped");
        }
    });
    Ok(bound)
}
