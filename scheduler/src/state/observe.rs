//! What the build state tells observers beyond its views: metrics it counts
//! as it changes, when each worker was last heard from (its heartbeat age;
//! a worker silent too long is marked gone, one that says it leaves is gone
//! at once), and the time left along the remaining critical path.

use super::Build;
use crate::error::SchedError;
use crate::metrics::build::Revoked;
use crate::metrics::BuildMetrics;
use dbuild_common::dispatch::PkgState;
use dbuild_common::eta::{self, Pending, TimeLeft};
use std::collections::HashMap;

/// The observer's part of [`Build`].
#[derive(Debug, Default)]
pub(crate) struct Observe {
    metrics: Option<BuildMetrics>,
    /// When each worker (by id) last called; workers restored from the state
    /// file count from this scheduler's start.
    last_seen: HashMap<String, u64>,
    /// When this scheduler process started (ms): queue waits and this run's
    /// elapsed time count from it at the earliest.
    run_started_ms: u64,
    /// Build durations accepted in this run, by package: better estimates
    /// than the defaults for the packages still to build.
    measured: HashMap<usize, f64>,
}

impl Observe {
    pub(crate) fn new(run_started_ms: u64) -> Observe {
        Observe {
            run_started_ms,
            ..Observe::default()
        }
    }
}

impl Build {
    /// Counts into `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: BuildMetrics) {
        self.observe.metrics = Some(metrics);
    }

    pub(super) fn metrics(&self) -> Option<&BuildMetrics> {
        self.observe.metrics.as_ref()
    }

    /// Worker `worker_id` called at `now`.
    pub(super) fn seen(&mut self, worker_id: &str, now: u64) {
        self.observe.last_seen.insert(worker_id.to_string(), now);
    }

    /// Package `i` is leased at `now`: how long it was ready before.
    pub(super) fn observe_grant(&mut self, i: usize, now: u64) {
        let ready_since = self.pkgs[i]
            .history
            .iter()
            .rev()
            .find(|e| e.kind != "leased")
            .map_or(0, |e| e.at_unix_ms)
            .max(self.observe.run_started_ms);
        if let Some(m) = &self.observe.metrics {
            m.queue_wait(now.saturating_sub(ready_since) as f64 / 1000.0);
        }
    }

    /// A build of package `i` that took `secs` was accepted.
    pub(super) fn observe_accepted(&mut self, i: usize, secs: f64) {
        if secs.is_finite() && secs >= 0.0 {
            self.observe.measured.insert(i, secs);
        }
        if let Some(m) = &self.observe.metrics {
            m.finished(None);
        }
    }

    /// A lease was taken away for `why` (`expired` by the reaper, else revoked).
    pub(super) fn observe_lost(&self, kind: &str, requeued: bool) {
        let Some(m) = &self.observe.metrics else {
            return;
        };
        match kind {
            "expired" => m.lease_expired(),
            "left" => m.lease_revoked(Revoked::WorkerLeft),
            _ => m.lease_revoked(Revoked::WorkerRestarted),
        }
        if requeued {
            m.retried_after_lost_lease();
        }
    }

    /// When worker `id` last called (ms).
    fn last_call(&self, id: &str) -> u64 {
        self.observe
            .last_seen
            .get(id)
            .copied()
            .unwrap_or(self.observe.run_started_ms)
    }

    /// How old each live worker's last call is at `now` (ms), by name.
    pub fn contact_ages(&self, now: u64) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .workers
            .values()
            .filter(|w| !w.gone)
            .map(|w| (w.name.clone(), now.saturating_sub(self.last_call(&w.id))))
            .collect();
        out.sort();
        out
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Marks gone every worker holding no lease that has not called for
    /// `silence_ms` (its leases, if any, expire by their own deadline and
    /// the reaper marks it then). Returns how many.
    pub fn mark_silent_gone(&mut self, now: u64, silence_ms: u64) -> usize {
        let silent: Vec<String> = self
            .workers
            .values()
            .filter(|w| !w.gone && w.leases.is_empty())
            .filter(|w| now.saturating_sub(self.last_call(&w.id)) > silence_ms)
            .map(|w| w.id.clone())
            .collect();
        for id in &silent {
            if let Some(w) = self.workers.get_mut(id) {
                w.gone = true;
                tracing::warn!(worker = %w.name, worker_id = %id, silent_secs = silence_ms / 1000, "worker silent; marked gone");
            }
            self.persist_worker(id);
        }
        silent.len()
    }

    /// Worker `worker_id` stops: its leases go back to the queue (their
    /// builds are not waited for) and it is gone until it calls again.
    pub fn leave(&mut self, worker_id: &str, now: u64) -> Result<usize, SchedError> {
        let w = self
            .workers
            .get(worker_id)
            .ok_or_else(|| SchedError::UnknownWorker(worker_id.to_string()))?;
        let (name, leases): (String, Vec<String>) =
            (w.name.clone(), w.leases.iter().cloned().collect());
        for l in &leases {
            self.lose_lease(l, now, "left", "the worker stopped");
        }
        if let Some(w) = self.workers.get_mut(worker_id) {
            w.gone = true;
        }
        self.observe.last_seen.insert(worker_id.to_string(), now);
        self.persist_worker(worker_id);
        tracing::info!(worker = %name, worker_id = %worker_id, leases = leases.len(), "worker left");
        Ok(leases.len())
    }

    /// Estimated seconds package `i` takes: measured in this run, else its
    /// known weight (measured before or from a weights file), else the mean
    /// of this run's measurements (a plain default of 1 s is no estimate).
    fn estimate_of(&self, i: usize, mean: Option<f64>) -> f64 {
        if let Some(&m) = self.observe.measured.get(&i) {
            return m;
        }
        let w = self.weights[i];
        let defaulted = self.plan.packages[i].weight.is_none() && w == 1.0;
        match (defaulted, mean) {
            (true, Some(mean)) => mean,
            _ => w,
        }
    }

    /// The time left at `now`: the remaining critical path and the
    /// estimate (see [`dbuild_common::eta`]).
    pub fn time_left(&self, now: u64) -> TimeLeft {
        let measured = &self.observe.measured;
        let mean =
            (!measured.is_empty()).then(|| measured.values().sum::<f64>() / measured.len() as f64);
        let pending: Vec<Pending> = (0..self.package_count())
            .filter_map(|i| {
                let running = match self.disp.state(i) {
                    Some(PkgState::Waiting | PkgState::Ready) => None,
                    Some(PkgState::Building) => Some(
                        self.pkgs[i]
                            .since_ms
                            .map_or(0.0, |s| now.saturating_sub(s) as f64 / 1000.0),
                    ),
                    _ => return None,
                };
                Some(Pending {
                    pkg: i,
                    estimate_secs: self.estimate_of(i, mean),
                    running_secs: running,
                })
            })
            .collect();
        eta::time_left(&self.plan, &pending, self.live_slots())
    }

    /// Slots of the workers not gone.
    pub fn live_slots(&self) -> u64 {
        self.workers
            .values()
            .filter(|w| !w.gone)
            .map(|w| u64::from(w.slots))
            .sum()
    }

    /// Milliseconds since the build recorded in the state file started (a
    /// resumed build counts from its first start), until it finished.
    pub fn elapsed_ms(&self, now: u64) -> u64 {
        self.finished_ms
            .unwrap_or(now)
            .saturating_sub(self.started_ms)
    }

    /// Milliseconds since this scheduler process started, until the build finished.
    pub fn run_elapsed_ms(&self, now: u64) -> u64 {
        self.finished_ms
            .unwrap_or(now)
            .max(self.observe.run_started_ms)
            .saturating_sub(self.observe.run_started_ms)
    }
}

/// Where one attempt's log is and whether it may still grow.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTarget {
    /// Relative to the build directory (`stage/LOGS/<package>/<attempt>.log`).
    pub rel_path: String,
    pub attempt: u32,
    /// The live lease writing it, if the attempt runs now.
    pub live_lease: Option<String>,
}

impl Build {
    /// The log of `name`'s attempt `attempt` (default: its latest).
    pub fn log_target(&self, name: &str, attempt: Option<u32>) -> Result<LogTarget, SchedError> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| SchedError::UnknownPackage(name.to_string()))?;
        // Plan names are spec names; refuse anything a path could misread.
        let plain = !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if !plain {
            return Err(SchedError::BadRequest(format!(
                "package name {name:?} cannot name a log file"
            )));
        }
        let latest = self.pkgs[i].attempts;
        let attempt = attempt.unwrap_or(latest);
        if attempt == 0 {
            // Earlier builds' logs stay on the share: name one with ?attempt=N.
            return Err(SchedError::BadRequest(format!(
                "{name} has not been attempted in this build; give ?attempt=N for an earlier one"
            )));
        }
        let live_lease = self.pkgs[i]
            .lease
            .as_ref()
            .filter(|id| self.leases.get(*id).is_some_and(|l| l.attempt == attempt))
            .cloned();
        Ok(LogTarget {
            rel_path: dbuild_common::wire::log_path(name, attempt),
            attempt,
            live_lease,
        })
    }

    /// Lease `id` is still live (its build runs).
    pub fn lease_is_live(&self, id: &str) -> bool {
        self.leases.contains_key(id)
    }
}

impl Build {
    /// For a read-only view of a recorded build: its start and end as the
    /// state file recorded them (a finished build restored for a new run
    /// would start now).
    pub fn restore_times(&mut self, started_ms: Option<u64>, finished_ms: Option<u64>) {
        if let Some(s) = started_ms {
            self.started_ms = s;
            self.observe.run_started_ms = s;
        }
        if finished_ms.is_some() {
            self.finished_ms = finished_ms;
        }
    }
}
