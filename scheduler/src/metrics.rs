//! Prometheus metrics of the scheduler (text format at `/metrics`).

use crate::state::Build;
use dbuild_common::dispatch::PkgState;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    packages: IntGaugeVec,
    pub leases_granted: IntCounter,
    pub leases_expired: IntCounter,
    pub reports: IntCounterVec,
    pub build_duration: Histogram,
    pub build_phases: HistogramVec,
    queue_depth: IntGauge,
    leases_live: IntGauge,
    workers_live: IntGauge,
    finished: IntGauge,
    reservations: IntCounterVec,
    /// Moving an accepted build's files from incoming/ into stage/.
    pub promotion_seconds: Histogram,
    pub promotion_failures: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let packages = IntGaugeVec::new(
            Opts::new("dbuild_packages", "Packages by state"),
            &["state"],
        )?;
        let leases_granted = IntCounter::new("dbuild_leases_granted_total", "Leases handed out")?;
        let leases_expired = IntCounter::new(
            "dbuild_leases_expired_total",
            "Leases revoked: deadline passed or worker restarted",
        )?;
        let reports = IntCounterVec::new(
            Opts::new(
                "dbuild_reports_total",
                "Worker reports by outcome (success, failure, rejected)",
            ),
            &["outcome"],
        )?;
        let build_duration = Histogram::with_opts(
            HistogramOpts::new("dbuild_build_duration_seconds", "Reported build durations")
                .buckets(vec![
                    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
                ]),
        )?;
        let build_phases = HistogramVec::new(
            HistogramOpts::new(
                "dbuild_build_phase_seconds",
                "Time of each part of successful builds, as the workers report it",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0,
            ]),
            &["phase"],
        )?;
        let queue_depth =
            IntGauge::new("dbuild_queue_depth", "Ready packages waiting for a worker")?;
        let leases_live = IntGauge::new("dbuild_leases_live", "Leases currently held")?;
        let workers_live =
            IntGauge::new("dbuild_workers_live", "Registered workers not marked gone")?;
        let finished = IntGauge::new("dbuild_build_finished", "1 once nothing more can run")?;
        let reservations = IntCounterVec::new(
            Opts::new(
                "dbuild_reservations_total",
                "Next packages reserved for busy slots, by how they ended (granted, claimed, taken_over, dropped)",
            ),
            &["outcome"],
        )?;
        let promotion_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "dbuild_promotion_seconds",
                "Time to move an accepted build's RPMs from incoming/ into stage/",
            )
            .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
        )?;
        let promotion_failures = IntCounter::new(
            "dbuild_promotion_failures_total",
            "Attempts to move accepted RPMs into stage/ that failed (retried)",
        )?;
        registry.register(Box::new(promotion_seconds.clone()))?;
        registry.register(Box::new(promotion_failures.clone()))?;
        registry.register(Box::new(packages.clone()))?;
        registry.register(Box::new(leases_granted.clone()))?;
        registry.register(Box::new(leases_expired.clone()))?;
        registry.register(Box::new(reports.clone()))?;
        registry.register(Box::new(build_duration.clone()))?;
        registry.register(Box::new(build_phases.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(leases_live.clone()))?;
        registry.register(Box::new(workers_live.clone()))?;
        registry.register(Box::new(finished.clone()))?;
        registry.register(Box::new(reservations.clone()))?;
        for o in ["success", "failure", "rejected"] {
            reports.with_label_values(&[o]);
        }
        Ok(Metrics {
            registry,
            packages,
            leases_granted,
            leases_expired,
            reports,
            build_duration,
            build_phases,
            queue_depth,
            leases_live,
            workers_live,
            finished,
            reservations,
            promotion_seconds,
            promotion_failures,
        })
    }

    /// Refreshes the gauges from `build` and renders everything.
    pub fn render(&self, build: &Build) -> Result<String, prometheus::Error> {
        for (state, n) in build.counts() {
            self.packages
                .with_label_values(&[state.as_str()])
                .set(gauge(n));
        }
        debug_assert!(PkgState::ALL.len() == 7);
        self.queue_depth.set(gauge(build.ready_len()));
        self.leases_live.set(gauge(build.live_leases()));
        self.workers_live.set(gauge(build.live_workers()));
        self.finished.set(i64::from(build.is_finished()));
        // The build keeps the totals (it sees reservations end); the counters catch up to them.
        let r = build.reservation_counts();
        for (outcome, total) in [
            ("granted", r.granted),
            ("claimed", r.claimed),
            ("taken_over", r.taken_over),
            ("dropped", r.dropped),
        ] {
            let counter = self.reservations.with_label_values(&[outcome]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
