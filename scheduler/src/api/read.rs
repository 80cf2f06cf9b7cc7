//! Read endpoints for people and the launcher (no token needed).

use crate::app::{now_ms, App};
use crate::error::SchedError;
use crate::state::Accepted;
use actix_web::{get, web, HttpResponse};
use dbuild_common::dispatch::PkgState;
use dbuild_common::share::RpmsPage;
use dbuild_common::wire::{ErrorBody, GraphView, PackageDetail, PackageInfo, Summary, WorkerInfo};
use serde::Deserialize;

/// The build at a glance: counts by state, elapsed time, estimate of the time left.
#[utoipa::path(get, path = "/v1/summary", responses((status = 200, body = Summary)))]
#[get("/v1/summary")]
pub async fn summary(app: web::Data<App>) -> HttpResponse {
    let s = app.lock().summary(now_ms());
    HttpResponse::Ok().json(s)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PackagesQuery {
    /// Only packages in this state (`waiting`, `ready`, `building`, `succeeded`, `up-to-date`, `failed`, `dep-failed`).
    state: Option<String>,
}

/// Packages in plan order, optionally filtered by state.
#[utoipa::path(get, path = "/v1/packages", params(PackagesQuery),
    responses((status = 200, body = Vec<PackageInfo>), (status = 400, body = ErrorBody)))]
#[get("/v1/packages")]
pub async fn packages(
    app: web::Data<App>,
    q: web::Query<PackagesQuery>,
) -> Result<HttpResponse, SchedError> {
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(PkgState::parse(s).ok_or_else(|| {
            let all: Vec<&str> = PkgState::ALL.iter().map(|s| s.as_str()).collect();
            SchedError::BadRequest(format!("unknown state {s:?}; one of {}", all.join(", ")))
        })?),
    };
    let list = app.lock().packages(state);
    Ok(HttpResponse::Ok().json(list))
}

/// One package: state, why it is in it, its history (every attempt) and RPMs.
#[utoipa::path(get, path = "/v1/packages/{name}", params(("name" = String, Path, description = "source package name")),
    responses((status = 200, body = PackageDetail), (status = 404, body = ErrorBody)))]
#[get("/v1/packages/{name}")]
pub async fn package(
    app: web::Data<App>,
    name: web::Path<String>,
) -> Result<HttpResponse, SchedError> {
    let d = app.lock().package(&name)?;
    Ok(HttpResponse::Ok().json(d))
}

/// The dependency graph with states and priorities (`from` needs `to`).
#[utoipa::path(get, path = "/v1/graph", responses((status = 200, body = GraphView)))]
#[get("/v1/graph")]
pub async fn graph(app: web::Data<App>) -> HttpResponse {
    let g = app.lock().graph();
    HttpResponse::Ok().json(g)
}

/// Registered workers, their slots, leases, and whether they are gone.
#[utoipa::path(get, path = "/v1/workers", responses((status = 200, body = Vec<WorkerInfo>)))]
#[get("/v1/workers")]
pub async fn workers(app: web::Data<App>) -> HttpResponse {
    let w = app.lock().workers();
    HttpResponse::Ok().json(w)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RpmsQuery {
    /// Start after this path (the previous page's `next_after`).
    after: Option<String>,
    /// At most this many files (default 1000, at most 10000).
    limit: Option<usize>,
}

/// A page of `accepted`'s files for `q`.
pub fn rpms_page(accepted: &Accepted, q: &RpmsQuery) -> RpmsPage {
    accepted.page(q.after.as_deref(), q.limit.unwrap_or(1000).clamp(1, 10_000))
}

/// Every RPM and SRPM the scheduler accepted (what `stage/RPMS` and
/// `stage/SRPMS` hold), in path order, with its sha256, size, package and
/// accepting lease; a page at a time (follow `next_after`).
#[utoipa::path(get, path = "/v1/rpms", params(RpmsQuery),
    responses((status = 200, body = RpmsPage), (status = 400, body = ErrorBody)))]
#[get("/v1/rpms")]
pub async fn rpms(app: web::Data<App>, q: web::Query<RpmsQuery>) -> HttpResponse {
    let page = rpms_page(app.lock().accepted(), &q);
    HttpResponse::Ok().json(page)
}
