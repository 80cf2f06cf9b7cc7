//! HTTP request metrics: count by route pattern, method and status, and
//! latency by route pattern. The route is actix's pattern
//! (`/v1/packages/{name}`), never the path, so label values stay few;
//! requests that match no route count as `unmatched`.

use super::reg;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    pub(super) fn new(r: &Registry) -> Result<HttpMetrics, prometheus::Error> {
        let requests = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_http_requests_total",
                    "HTTP requests answered, by route pattern, method and status code",
                ),
                &["route", "method", "status"],
            )?,
        )?;
        let latency = reg(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "dbuild_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route pattern (long polls included)",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0,
                ]),
                &["route"],
            )?,
        )?;
        Ok(HttpMetrics { requests, latency })
    }

    fn observe(&self, route: &str, method: &str, status: u16, secs: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency.with_label_values(&[route]).observe(secs);
    }
}

/// Middleware (`actix_web::middleware::from_fn`) counting every request.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let res = next.call(req).await;
    if let Some(m) = metrics {
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        m.observe(&route, method, status, started.elapsed().as_secs_f64());
    }
    res
}
