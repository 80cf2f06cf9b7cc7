//! Read endpoints for people and the launcher (no token needed).

use crate::app::{now_ms, App};
use crate::error::SchedError;
use actix_web::{get, web, HttpResponse};
use dbuild_common::dispatch::PkgState;
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
