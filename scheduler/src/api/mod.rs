//! The REST API: worker endpoints (token), read endpoints, operations.

mod logs;
pub mod openapi;
mod ops;
mod page;
pub mod read;
mod worker;

use crate::error::SchedError;
use actix_web::http::StatusCode;
use actix_web::{error, web, HttpRequest, HttpResponse, ResponseError};
use dbuild_common::wire::ErrorBody;

impl ResponseError for SchedError {
    fn status_code(&self) -> StatusCode {
        match self {
            SchedError::Unauthorized => StatusCode::UNAUTHORIZED,
            SchedError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SchedError::UnknownWorker(_)
            | SchedError::UnknownLease(_)
            | SchedError::UnknownPackage(_)
            | SchedError::NotFound(_) => StatusCode::NOT_FOUND,
            SchedError::LeaseNotLive { .. }
            | SchedError::NotYourLease { .. }
            | SchedError::SlotsFull { .. } => StatusCode::CONFLICT,
            SchedError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            SchedError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, SchedError::Unauthorized) {
            resp.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.json(ErrorBody {
            error: self.to_string(),
        })
    }
}

fn bad_request(msg: String) -> error::Error {
    SchedError::BadRequest(msg).into()
}

/// `GET /healthz`, for a server that serves little else.
pub fn healthz_route() -> impl actix_web::dev::HttpServiceFactory {
    ops::healthz
}

/// Registers every route, with JSON errors for malformed input.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(worker::register)
        .service(worker::lease)
        .service(worker::heartbeat)
        .service(worker::reserve)
        .service(worker::report)
        .service(worker::leave)
        .service(ops::readyz);
    configure_read(cfg);
}

/// Registers the routes that only read (what `--read-only` serves too):
/// the read endpoints, logs, the status page, health, metrics, the API document.
pub fn configure_read(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(8 * 1024 * 1024)
            .error_handler(|e, _req: &HttpRequest| {
                bad_request(format!("malformed JSON body: {e}"))
            }),
    )
    .app_data(
        web::PathConfig::default().error_handler(|e, _| bad_request(format!("bad path: {e}"))),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|e, _| bad_request(format!("bad query: {e}"))),
    )
    .service(read::summary)
    .service(read::packages)
    .service(logs::log)
    .service(read::package)
    .service(page::index)
    .service(read::graph)
    .service(read::workers)
    .service(read::rpms)
    .service(ops::healthz)
    .service(ops::metrics)
    .service(ops::openapi_json)
    .default_service(web::to(|req: HttpRequest| async move {
        HttpResponse::NotFound().json(ErrorBody {
            error: format!("no route {} {}", req.method(), req.path()),
        })
    }));
}
