//! Prometheus metrics of the scheduler (text format at `/metrics`).
//!
//! Conventions: every name starts with `dbuild_`, counters end in `_total`,
//! times are `_seconds`, every metric has a HELP text, and no label takes a
//! package name (label values come from small fixed sets: states, results,
//! failure kinds, phases, route patterns). The one label with values from
//! outside is the worker name on `dbuild_worker_heartbeat_age_seconds`:
//! it is set afresh on every scrape for the workers not marked gone, so
//! the series are at most the live workers (a worker that leaves or
//! vanishes drops out; `..._max_seconds` gives the worst without a label).

pub mod build;
pub mod http;

pub use build::BuildMetrics;

use crate::state::Build;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets for times from milliseconds to hours.
pub(crate) const WIDE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0,
];

#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    packages: IntGaugeVec,
    pub leases_granted: IntCounter,
    pub reports: IntCounterVec,
    pub build_duration: Histogram,
    pub build_phases: HistogramVec,
    queue_depth: IntGauge,
    leases_live: IntGauge,
    workers: IntGaugeVec,
    heartbeat_age: GaugeVec,
    heartbeat_age_max: Gauge,
    critical_path_left: Gauge,
    time_left: Gauge,
    elapsed: Gauge,
    finished: IntGauge,
    reservations: IntCounterVec,
    /// Moving an accepted build's files from incoming/ into stage/.
    pub promotion_seconds: Histogram,
    pub promotion_failures: IntCounter,
    /// Counted by the build state as it changes (see [`BuildMetrics`]).
    pub build: BuildMetrics,
    /// Requests by route pattern (see [`http`]).
    pub http: http::HttpMetrics,
    /// One state-file transaction, from begin to commit (fsync included with `--state-sync full`).
    pub commit_seconds: Histogram,
}

/// Registers `c` in `r` and hands it back.
pub(crate) fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

pub(crate) fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, prometheus::Error> {
    reg(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?,
    )
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let r = Registry::new();
        let packages = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "dbuild_packages",
                    "Packages of the build by state (waiting, ready, building, succeeded, up-to-date, failed, dep-failed)",
                ),
                &["state"],
            )?,
        )?;
        let leases_granted = reg(
            &r,
            IntCounter::new("dbuild_leases_granted_total", "Leases handed out")?,
        )?;
        let reports = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_reports_total",
                    "Worker reports by outcome (success, failure, rejected)",
                ),
                &["outcome"],
            )?,
        )?;
        for o in ["success", "failure", "rejected"] {
            reports.with_label_values(&[o]);
        }
        let build_duration = histogram(
            &r,
            "dbuild_build_duration_seconds",
            "Wall time of accepted builds as the workers report it",
            &WIDE_BUCKETS,
        )?;
        let build_phases = reg(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "dbuild_build_phase_seconds",
                    "Time of each part of successful builds (chroot, install, sources, rpmbuild, publish, cleanup), as the workers report it",
                )
                .buckets(WIDE_BUCKETS.to_vec()),
                &["phase"],
            )?,
        )?;
        let queue_depth = reg(
            &r,
            IntGauge::new("dbuild_queue_depth", "Ready packages waiting for a worker")?,
        )?;
        let leases_live = reg(
            &r,
            IntGauge::new("dbuild_leases_live", "Leases currently held")?,
        )?;
        let workers = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "dbuild_workers",
                    "Registered workers: live, or gone (left, or silent past the lease TTL)",
                ),
                &["state"],
            )?,
        )?;
        let heartbeat_age = reg(
            &r,
            GaugeVec::new(
                Opts::new(
                    "dbuild_worker_heartbeat_age_seconds",
                    "Seconds since each live worker's last call (heartbeat, lease request or report); only workers not gone",
                ),
                &["worker"],
            )?,
        )?;
        let heartbeat_age_max = reg(
            &r,
            Gauge::new(
                "dbuild_worker_heartbeat_age_max_seconds",
                "The largest dbuild_worker_heartbeat_age_seconds (0 without live workers)",
            )?,
        )?;
        let critical_path_left = reg(
            &r,
            Gauge::new(
                "dbuild_critical_path_remaining_seconds",
                "Longest chain of packages still to build, by measured or estimated durations (a running build counts what is left of it)",
            )?,
        )?;
        let time_left = reg(
            &r,
            Gauge::new(
                "dbuild_time_left_estimate_seconds",
                "Estimated time to the end: max(remaining critical path, remaining work / live slots)",
            )?,
        )?;
        let elapsed = reg(
            &r,
            Gauge::new(
                "dbuild_build_elapsed_seconds",
                "Time since this build started (until it finished)",
            )?,
        )?;
        let finished = reg(
            &r,
            IntGauge::new("dbuild_build_finished", "1 once nothing more can run")?,
        )?;
        let reservations = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_reservations_total",
                    "Next packages reserved for busy slots, by how they ended (granted, claimed, taken_over, dropped)",
                ),
                &["outcome"],
            )?,
        )?;
        let promotion_seconds = histogram(
            &r,
            "dbuild_promotion_seconds",
            "Time to move an accepted build's RPMs from incoming/ into stage/",
            &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        )?;
        let promotion_failures = reg(
            &r,
            IntCounter::new(
                "dbuild_promotion_failures_total",
                "Attempts to move accepted RPMs into stage/ that failed (retried)",
            )?,
        )?;
        let commit_seconds = histogram(
            &r,
            "dbuild_state_commit_seconds",
            "One SQLite transaction of the state file, begin to commit (a group of changes)",
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ],
        )?;
        let build = BuildMetrics::new(&r)?;
        let http = http::HttpMetrics::new(&r)?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry: r,
            packages,
            leases_granted,
            reports,
            build_duration,
            build_phases,
            queue_depth,
            leases_live,
            workers,
            heartbeat_age,
            heartbeat_age_max,
            critical_path_left,
            time_left,
            elapsed,
            finished,
            reservations,
            promotion_seconds,
            promotion_failures,
            build,
            http,
            commit_seconds,
        })
    }

    /// Refreshes the gauges from `build` at `now` (ms) and renders everything.
    pub fn render(&self, build: &Build, now: u64) -> Result<String, prometheus::Error> {
        for (state, n) in build.counts() {
            self.packages
                .with_label_values(&[state.as_str()])
                .set(gauge(n));
        }
        self.queue_depth.set(gauge(build.ready_len()));
        self.leases_live.set(gauge(build.live_leases()));
        let live = build.live_workers();
        self.workers.with_label_values(&["live"]).set(gauge(live));
        self.workers
            .with_label_values(&["gone"])
            .set(gauge(build.worker_count().saturating_sub(live)));
        self.heartbeat_age.reset();
        let mut max_age = 0.0f64;
        for (name, age_ms) in build.contact_ages(now) {
            let age = age_ms as f64 / 1000.0;
            max_age = max_age.max(age);
            self.heartbeat_age.with_label_values(&[&name]).set(age);
        }
        self.heartbeat_age_max.set(max_age);
        let left = build.time_left(now);
        self.critical_path_left.set(left.critical_path_secs);
        self.time_left.set(left.estimate_secs);
        self.elapsed.set(build.elapsed_ms(now) as f64 / 1000.0);
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
