//! `dbuild-scheduler --read-only`: serves what a build directory's state
//! file says was accepted (`GET /v1/rpms`, `/healthz`) and changes nothing
//! on the share: no specs, no leases, no promotion. `dbuild verify
//! --state-dir` runs it to check a finished build when no scheduler runs,
//! since only a scheduler may open the state file (it holds the exclusive
//! lock meanwhile, so no other scheduler changes it under the check).

use crate::api::read::{rpms_page, RpmsQuery};
use crate::db;
use crate::state::Accepted;
use actix_web::{get, web, HttpResponse};
use std::io::Write;
use std::path::Path;

#[get("/v1/rpms")]
async fn rpms(accepted: web::Data<Accepted>, q: web::Query<RpmsQuery>) -> HttpResponse {
    HttpResponse::Ok().json(rpms_page(&accepted, &q))
}

/// Serves the accepted files of `build_dir`'s state file on `listen` until killed.
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
    let snap = db::load(&mut conn).await?;
    let accepted = web::Data::new(Accepted::new(snap.last_success));
    tracing::info!(files = accepted.len(), build_dir = %build_dir.display(), "serving the accepted files, read-only");
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(accepted.clone())
            .service(rpms)
            .service(crate::api::healthz_route())
    })
    .workers(1)
    .listen(listener)?
    .run();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "dbuild-scheduler listening on http://{addr}")?;
        out.flush()?;
    }
    server.await?;
    drop(conn);
    Ok(())
}
