//! The metrics the build state itself counts as it changes (it alone sees
//! a build end, a lease lost, a package retried, a package wait in the queue).

use super::{histogram, reg, WIDE_BUCKETS};
use prometheus::{Histogram, IntCounter, IntCounterVec, Opts, Registry};

/// Why a lease was taken away other than by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The worker registered again under its name (it restarted).
    WorkerRestarted,
    /// The worker said it is stopping (`POST /v1/workers/{id}/leave`).
    WorkerLeft,
}

impl Revoked {
    fn as_str(self) -> &'static str {
        match self {
            Revoked::WorkerRestarted => "worker_restarted",
            Revoked::WorkerLeft => "worker_left",
        }
    }
}

#[derive(Clone, Debug)]
pub struct BuildMetrics {
    finished: IntCounterVec,
    retries: IntCounterVec,
    leases_expired: IntCounter,
    leases_revoked: IntCounterVec,
    queue_wait: Histogram,
}

impl BuildMetrics {
    pub(super) fn new(r: &Registry) -> Result<BuildMetrics, prometheus::Error> {
        let finished = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_builds_finished_total",
                    "Builds whose report was accepted, by result (success, failure) and failure kind (package: its own build failed; transient: anything else; none for a success)",
                ),
                &["result", "failure_kind"],
            )?,
        )?;
        for (result, kind) in [
            ("success", "none"),
            ("failure", "package"),
            ("failure", "transient"),
        ] {
            finished.with_label_values(&[result, kind]);
        }
        let retries = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_retries_total",
                    "Packages put back in the queue for another attempt, by cause (failure: a failed build; lease_lost: a lease expired or was revoked)",
                ),
                &["cause"],
            )?,
        )?;
        for cause in ["failure", "lease_lost"] {
            retries.with_label_values(&[cause]);
        }
        let leases_expired = reg(
            r,
            IntCounter::new(
                "dbuild_leases_expired_total",
                "Leases taken away because their deadline passed (no heartbeat within the TTL, or --max-build-time)",
            )?,
        )?;
        let leases_revoked = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "dbuild_leases_revoked_total",
                    "Leases taken away before their deadline, by reason (worker_restarted, worker_left)",
                ),
                &["reason"],
            )?,
        )?;
        for reason in [Revoked::WorkerRestarted, Revoked::WorkerLeft] {
            leases_revoked.with_label_values(&[reason.as_str()]);
        }
        let queue_wait = histogram(
            r,
            "dbuild_queue_wait_seconds",
            "Time a package spent ready (every dependency built) before a worker got its lease",
            &WIDE_BUCKETS,
        )?;
        Ok(BuildMetrics {
            finished,
            retries,
            leases_expired,
            leases_revoked,
            queue_wait,
        })
    }

    /// A report was accepted: `failure_kind` is None for a success.
    pub fn finished(&self, failure_kind: Option<dbuild_common::wire::FailureKind>) {
        use dbuild_common::wire::FailureKind;
        let labels = match failure_kind {
            None => ["success", "none"],
            Some(FailureKind::Package) => ["failure", "package"],
            Some(FailureKind::Transient) => ["failure", "transient"],
        };
        self.finished.with_label_values(&labels).inc();
    }

    pub fn retried_after_failure(&self) {
        self.retries.with_label_values(&["failure"]).inc();
    }

    pub fn retried_after_lost_lease(&self) {
        self.retries.with_label_values(&["lease_lost"]).inc();
    }

    pub fn lease_expired(&self) {
        self.leases_expired.inc();
    }

    pub fn lease_revoked(&self, why: Revoked) {
        self.leases_revoked.with_label_values(&[why.as_str()]).inc();
    }

    pub fn queue_wait(&self, secs: f64) {
        self.queue_wait.observe(secs.max(0.0));
    }
}
