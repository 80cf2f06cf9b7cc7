//! Operational endpoints: health, readiness, metrics, the OpenAPI document.

use crate::app::{now_ms, App};
use actix_web::{get, web, HttpResponse};
use dbuild_common::wire::ErrorBody;
use utoipa::OpenApi;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "ok")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Readiness: the state is loaded and the state file writer is running.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
#[get("/readyz")]
pub async fn readyz(app: web::Data<App>) -> HttpResponse {
    if app.writer.is_alive() {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable().json(ErrorBody {
            error: "state file writer stopped".into(),
        })
    }
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(app: web::Data<App>) -> HttpResponse {
    let text = {
        let b = app.lock();
        app.metrics.render(&b, now_ms())
    };
    match text {
        Ok(t) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(t),
        Err(e) => HttpResponse::InternalServerError().json(ErrorBody {
            error: format!("metrics: {e}"),
        }),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::ApiDoc::openapi())
}
