//! Bearer-token check for worker endpoints.

use crate::app::App;
use crate::error::SchedError;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use std::future::{ready, Ready};

/// Extractor: present in a handler's arguments, the request carried
/// `Authorization: Bearer <the build's token>`.
#[derive(Debug)]
pub struct Authed;

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn check(req: &HttpRequest, token: &str) -> Result<(), SchedError> {
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same(t.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(SchedError::Unauthorized),
    }
}

impl FromRequest for Authed {
    type Error = SchedError;
    type Future = Ready<Result<Authed, SchedError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let res = match req.app_data::<web::Data<App>>() {
            Some(app) => check(req, &app.token).map(|()| Authed),
            None => Err(SchedError::Unauthorized),
        };
        ready(res)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_compare() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
    }
}
