//! The worker's Prometheus metrics, served at `/metrics` on the `--listen`
//! address with the probes ([`crate::health`]): phase durations, builds by
//! result, slots busy, bytes published, process metrics. One registry per
//! process, filled by the lease loops wherever they are.

use crate::job::BuildResult;
use actix_web::{get, HttpResponse};
use dbuild_common::wire::{FailureKind, PHASES};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;

struct WorkerMetrics {
    registry: Registry,
    phases: HistogramVec,
    builds: IntCounterVec,
    slots: IntGauge,
    slots_busy: IntGauge,
    published_bytes: IntCounter,
    published_files: IntCounter,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl WorkerMetrics {
    fn new() -> Result<WorkerMetrics, prometheus::Error> {
        let r = Registry::new();
        let phases = reg(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "dbuild_worker_phase_seconds",
                    "Time of each part of this worker's builds (chroot, install, sources, rpmbuild, publish, cleanup)",
                )
                .buckets(vec![
                    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0,
                ]),
                &["phase"],
            )?,
        )?;
        let builds = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_worker_builds_total",
                    "Builds this worker finished, by result (success, failure) and failure kind (package, transient; none for a success)",
                ),
                &["result", "failure_kind"],
            )?,
        )?;
        for labels in [
            ["success", "none"],
            ["failure", "package"],
            ["failure", "transient"],
        ] {
            builds.with_label_values(&labels);
        }
        let slots = reg(
            &r,
            IntGauge::new("dbuild_worker_slots", "Build slots of this worker")?,
        )?;
        let slots_busy = reg(
            &r,
            IntGauge::new(
                "dbuild_worker_slots_busy",
                "Slots building a leased package now",
            )?,
        )?;
        let published_bytes = reg(
            &r,
            IntCounter::new(
                "dbuild_worker_published_bytes_total",
                "Bytes of RPMs and SRPMs this worker published to the share",
            )?,
        )?;
        let published_files = reg(
            &r,
            IntCounter::new(
                "dbuild_worker_published_files_total",
                "RPM and SRPM files this worker published to the share",
            )?,
        )?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(WorkerMetrics {
            registry: r,
            phases,
            builds,
            slots,
            slots_busy,
            published_bytes,
            published_files,
        })
    }
}

/// The process's metrics; None only if the registry refused them (a bug:
/// then the worker builds on, unmeasured, and `/metrics` says so).
fn metrics() -> Option<&'static WorkerMetrics> {
    static METRICS: OnceLock<Option<WorkerMetrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| match WorkerMetrics::new() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "worker metrics unavailable");
                None
            }
        })
        .as_ref()
}

/// This worker has `n` slots.
pub fn set_slots(n: u32) {
    if let Some(m) = metrics() {
        m.slots.set(i64::from(n));
    }
}

/// Counts a slot busy until dropped.
pub struct Busy(());

impl Busy {
    pub fn start() -> Busy {
        if let Some(m) = metrics() {
            m.slots_busy.inc();
        }
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(m) = metrics() {
            m.slots_busy.dec();
        }
    }
}

/// A build ended with `r`.
pub fn build_finished(r: &BuildResult) {
    let Some(m) = metrics() else { return };
    for (phase, d) in PHASES.iter().zip(r.phases.in_order()) {
        m.phases
            .with_label_values(&[phase])
            .observe(d.as_secs_f64());
    }
    let labels = match &r.result {
        Ok(files) => {
            m.published_files.inc_by(files.len() as u64);
            m.published_bytes
                .inc_by(files.iter().map(|f| f.bytes).sum::<u64>());
            ["success", "none"]
        }
        Err(e) => match e.failure_kind() {
            FailureKind::Package => ["failure", "package"],
            FailureKind::Transient => ["failure", "transient"],
        },
    };
    m.builds.with_label_values(&labels).inc();
}

/// `GET /metrics`: Prometheus text format.
#[get("/metrics")]
pub async fn serve() -> HttpResponse {
    let Some(m) = metrics() else {
        return HttpResponse::ServiceUnavailable().body("metrics unavailable\n");
    };
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&m.registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => HttpResponse::InternalServerError().body(format!("metrics: {e}\n")),
    }
}
