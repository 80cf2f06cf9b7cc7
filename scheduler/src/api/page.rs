//! `GET /`: the live status page, one HTML file with its script and style
//! inside (no build step, no external assets; it reads the read endpoints).

use actix_web::{get, HttpResponse};

const STATUS_PAGE: &str = include_str!("status.html");

/// The live status page (HTML).
#[utoipa::path(get, path = "/", responses((status = 200, description = "the status page", content_type = "text/html")))]
#[get("/")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(STATUS_PAGE)
}
