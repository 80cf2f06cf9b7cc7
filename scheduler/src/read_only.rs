//! `dbuild-scheduler --read-only`: serves what a build directory's state
//! file records and changes nothing on the share: no specs are read, no
//! lease is handed out, nothing is promoted. With the plan the state file
//! keeps ([`crate::stored_plan`]) it serves every read endpoint, the logs
//! and the status page, as the build stood when its scheduler stopped
//! (`dbuild status --state-dir`); a state file from before that serves
//! `GET /v1/rpms` only. `dbuild verify --state-dir` uses it to check a
//! finished build when no scheduler runs, since only a scheduler may open
//! the state file (it holds the exclusive lock meanwhile, so no other
//! scheduler changes it under the check).

use crate::api::read::{rpms_page, RpmsQuery};
use crate::app::{now_ms, App};
use crate::db;
use crate::metrics::Metrics;
use crate::promoter::Share;
use crate::state::{Accepted, Build, Config};
use crate::stored_plan::{self, StoredPlan};
use actix_web::{get, web, HttpResponse};
use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[get("/v1/rpms")]
async fn rpms(accepted: web::Data<Accepted>, q: web::Query<RpmsQuery>) -> HttpResponse {
    HttpResponse::Ok().json(rpms_page(&accepted, &q))
}

/// Serves `build_dir`'s state file on `listen` until killed.
pub async fn serve(build_dir: &Path, listen: &str) -> anyhow::Result<()> {
    let path = db::state_file(build_dir);
    anyhow::ensure!(
        path.is_file(),
        "no state file {}: nothing was built in {}",
        path.display(),
        build_dir.display()
    );
    // Held (with its lock) for as long as this serves.
    let mut conn = db::open(&db::Location::File(path, db::StateSync::Normal)).await?;
    let mut snap = db::load(&mut conn).await?;
    let accepted = Accepted::new(std::mem::take(&mut snap.last_success));
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let stored = match snap.meta.get(stored_plan::KEY) {
        Some(json) => Some(StoredPlan::from_json(json).context("the plan in the state file")?),
        None => None,
    };
    let server = match stored {
        Some(stored) => {
            let app = recorded_build(build_dir, stored, snap, accepted).await?;
            tracing::info!(build_dir = %build_dir.display(), "serving the recorded build, read-only");
            let http = web::Data::new(app.metrics.http.clone());
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(app.clone())
                    .app_data(http.clone())
                    .wrap(actix_web::middleware::from_fn(crate::metrics::http::track))
                    .configure(crate::api::configure_read)
            })
            .workers(1)
            .listen(listener)?
            .run()
        }
        None => {
            let accepted = web::Data::new(accepted);
            tracing::info!(files = accepted.len(), build_dir = %build_dir.display(), "serving the accepted files, read-only (the state file keeps no plan)");
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(accepted.clone())
                    .service(rpms)
                    .service(crate::api::healthz_route())
            })
            .workers(1)
            .listen(listener)?
            .run()
        }
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "dbuild-scheduler listening on http://{addr}")?;
        out.flush()?;
    }
    server.await?;
    drop(conn);
    Ok(())
}

/// The build as the state file recorded it, in memory only: its changes
/// (restoring it makes some) go to a throw-away in-memory database.
async fn recorded_build(
    build_dir: &Path,
    stored: StoredPlan,
    snap: db::Snapshot,
    accepted: Accepted,
) -> anyhow::Result<web::Data<App>> {
    let cfg = Config {
        specs_rel: stored.specs_rel,
        lease_ttl_ms: 90_000,
        max_attempts: u32::MAX,
        max_build_ms: u64::MAX,
        max_lease_losses: u32::MAX,
        retry_failed: false,
        retry_package_failures: false,
        restart_finished: false,
        check: false,
        macro_files: Vec::new(),
        assume_provided: Vec::new(),
    };
    let meta_ms = |key: &str| snap.meta.get(key).and_then(|v| v.parse::<u64>().ok());
    let (started_ms, finished_ms) = (meta_ms("started_ms"), meta_ms("finished_ms"));
    let bd = build_dir.to_path_buf();
    let exists = move |r: &dbuild_common::wire::RpmFile| bd.join(&r.path).is_file();
    let mut build = Build::new(
        cfg,
        stored.plan,
        stored.hashes,
        snap,
        accepted,
        &exists,
        now_ms(),
    );
    let _ = build.take_ops();
    build.restore_times(started_ms, finished_ms);
    let metrics = Metrics::new()?;
    build.set_metrics(metrics.build.clone());
    let scratch = db::open(&db::Location::Memory).await?;
    let writer = db::writer::Writer::spawn(scratch, metrics.commit_seconds.clone());
    let share = Share::new(build_dir.to_path_buf(), false, 90_000);
    Ok(web::Data::new(App::new(
        build,
        writer,
        metrics,
        // No worker route is served; a token nobody knows all the same.
        uuid::Uuid::new_v4().to_string(),
        Duration::from_secs(0),
        share,
    )))
}
