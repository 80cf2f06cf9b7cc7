//! The scheduler's in-memory build state. The [`Build`] is the only thing
//! that changes state; every change appends [`DbOp`]s that the caller hands
//! to the writer while still holding the lock, so the file sees changes in
//! the order they were made.

mod accept;
mod accepted;
mod observe;
mod ops;
mod reserve;
mod views;

pub use accepted::Accepted;
pub use observe::LogTarget;
pub use ops::LeaseAttempt;
pub use reserve::ReservationCounts;

use crate::db::writer::DbOp;
use crate::db::Snapshot;
use dbuild_common::dispatch::{
    critical_path, effective_weights, resume_state, Dispatcher, Initial, PkgState, Recorded,
};
use dbuild_common::plan::Plan;
use dbuild_common::wire::{HistoryEvent, RpmFile};
use std::collections::{BTreeSet, HashMap};

/// Tunables of a build.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SPECS directory relative to the build directory, as leases name specs.
    pub specs_rel: String,
    pub lease_ttl_ms: u64,
    pub max_attempts: u32,
    /// A lease is revoked this long after it was granted, heartbeats or not.
    pub max_build_ms: u64,
    /// Lost leases (expired, worker restarted) after which a package fails for good.
    pub max_lease_losses: u32,
    /// Forget recorded final failures (retry them) on start.
    pub retry_failed: bool,
    /// Retry failures of kind `package` too (see `wire::FailureKind`).
    pub retry_package_failures: bool,
    /// When the recorded build ran to its end, start a new one (see `Build::new`).
    pub restart_finished: bool,
    /// Every lease says: run `%check`.
    pub check: bool,
    /// Macro files for rpmbuild, relative to the build directory (`MACROS/NN-name`).
    pub macro_files: Vec<String>,
    /// The user's `--assume-provided` names, sorted and unique.
    pub assume_provided: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PkgRt {
    attempts: u32,
    losses: u32,
    lease: Option<String>,
    reason: Option<String>,
    rpms: Vec<RpmFile>,
    history: Vec<HistoryEvent>,
    since_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct LeaseRt {
    pkg: usize,
    worker_id: String,
    attempt: u32,
    granted_ms: u64,
    deadline_ms: u64,
}

/// A lease no longer live: its package, how it ended, and when (None:
/// before this scheduler started).
#[derive(Debug, Clone)]
pub(crate) struct ClosedLease {
    package: String,
    status: String,
    since_ms: Option<u64>,
}

/// A package whose report was accepted and committed while its files are
/// being moved from `incoming/<lease>/` into `stage/`: the dispatcher still
/// counts it as building, so nothing that needs it is handed out before its
/// files are visible.
#[derive(Debug, Clone)]
pub(crate) struct Promoting {
    pkg: usize,
    /// The last attempt's error (it is retried by the sweeper).
    error: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct WorkerRt {
    id: String,
    name: String,
    arch: String,
    slots: u32,
    registered_ms: u64,
    gone: bool,
    leases: BTreeSet<String>,
}

/// The whole live build.
#[derive(Debug)]
pub struct Build {
    pub cfg: Config,
    plan: Plan,
    hashes: Vec<String>,
    index: HashMap<String, usize>,
    owners: HashMap<String, usize>,
    disp: Dispatcher,
    weights: Vec<f64>,
    pkgs: Vec<PkgRt>,
    leases: HashMap<String, LeaseRt>,
    closed: HashMap<String, ClosedLease>,
    /// What stage/ holds (see [`Accepted`]).
    accepted: Accepted,
    /// Accepted leases whose files are not visible yet, by lease id.
    promoting: HashMap<String, Promoting>,
    workers: HashMap<String, WorkerRt>,
    worker_ids: HashMap<String, String>,
    started_ms: u64,
    finished_ms: Option<u64>,
    ops: Vec<DbOp>,
    /// Reservations by the lease whose slot made them (memory only: after a
    /// restart a claim simply fails and the slot gets the best ready package).
    reservations: HashMap<String, reserve::Reservation>,
    reservation_counts: ReservationCounts,
    /// Metrics, workers' last calls, time left (see [`observe`]).
    observe: observe::Observe,
}

impl Build {
    /// Rebuilds the state from the plan, the current input hashes and what
    /// the file remembers (`accepted`: its accepted builds, made visible by
    /// [`crate::incoming`] before this is called). `rpm_exists` tells whether
    /// a recorded RPM is still on the share.
    pub fn new(
        cfg: Config,
        plan: Plan,
        hashes: Vec<String>,
        snap: Snapshot,
        accepted: Accepted,
        rpm_exists: &dyn Fn(&RpmFile) -> bool,
        now: u64,
    ) -> Build {
        let n = plan.packages.len();
        let weights = effective_weights(&plan, &snap.durations);
        let prio = critical_path(&plan, &weights);
        let live_by_pkg: HashMap<&str, usize> = snap
            .live_leases
            .iter()
            .enumerate()
            .map(|(k, l)| (l.package.as_str(), k))
            .collect();
        // With `restart_finished`, a file whose build ran to its end starts a
        // new build: what it built is up to date (if unchanged), what failed
        // gets fresh attempts. A build that was interrupted is always resumed.
        let previous_finished = cfg.restart_finished
            && !snap.packages.is_empty()
            && snap.live_leases.is_empty()
            && snap.packages.values().all(|r| {
                matches!(
                    PkgState::parse(&r.state),
                    Some(
                        PkgState::Succeeded
                            | PkgState::UpToDate
                            | PkgState::Failed
                            | PkgState::DepFailed
                    )
                )
            });
        let mut initial = Vec::with_capacity(n);
        for (i, p) in plan.packages.iter().enumerate() {
            let row = snap.packages.get(&p.name);
            let last = accepted.get(&p.name);
            let rec = Recorded {
                state: row
                    .filter(|_| !previous_finished)
                    .and_then(|r| PkgState::parse(&r.state)),
                hash: row.map(|r| r.input_hash.clone()),
                last_success_hash: last.map(|l| l.input_hash.clone()),
                rpms_present: last.is_some_and(|l| l.rpms.iter().all(rpm_exists)),
                live_lease: live_by_pkg.contains_key(p.name.as_str()),
            };
            let mut init = resume_state(&hashes[i], &rec);
            if init == Initial::Failed && cfg.retry_failed {
                init = Initial::Pending;
            }
            initial.push(init);
        }
        let mut disp = Dispatcher::with_initial(&plan, prio, cfg.max_attempts, &initial);
        let mut pkgs = vec![PkgRt::default(); n];
        for (i, p) in plan.packages.iter().enumerate() {
            let Some(row) = snap.packages.get(&p.name).filter(|_| !previous_finished) else {
                continue;
            };
            if row.input_hash == hashes[i] && !(cfg.retry_failed && initial[i] == Initial::Failed) {
                pkgs[i].attempts = row.attempts;
                pkgs[i].losses = row.losses;
                pkgs[i].reason = row.reason.clone();
                if disp.state(i) != Some(PkgState::Failed) {
                    disp.restore_failures(i, row.failed_on.clone());
                }
            }
        }
        for (i, p) in plan.packages.iter().enumerate() {
            if matches!(initial[i], Initial::Succeeded | Initial::UpToDate) {
                if let Some(l) = accepted.get(&p.name) {
                    pkgs[i].rpms = l.rpms.clone();
                }
            }
        }
        let index: HashMap<String, usize> = plan
            .packages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        for (name, ev) in snap.events {
            if let Some(&i) = index.get(&name) {
                pkgs[i].history.push(ev);
            }
        }
        let owners = plan
            .binary_owners()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut workers = HashMap::new();
        let mut worker_ids = HashMap::new();
        for w in snap.workers {
            worker_ids.insert(w.name.clone(), w.id.clone());
            workers.insert(
                w.id.clone(),
                WorkerRt {
                    id: w.id,
                    name: w.name,
                    arch: w.arch,
                    slots: w.slots,
                    registered_ms: w.registered_ms,
                    gone: w.gone,
                    leases: BTreeSet::new(),
                },
            );
        }
        let mut ops = Vec::new();
        let mut leases = HashMap::new();
        let mut closed: HashMap<String, ClosedLease> = snap
            .closed_leases
            .into_iter()
            .map(|(id, (package, status))| {
                let since_ms = None; // before this scheduler started
                (
                    id,
                    ClosedLease {
                        package,
                        status,
                        since_ms,
                    },
                )
            })
            .collect();
        for l in snap.live_leases {
            let i = index.get(&l.package).copied();
            let keep =
                i.filter(|&i| initial[i] == Initial::Building && workers.contains_key(&l.worker));
            match keep {
                Some(i) if pkgs[i].lease.is_none() => {
                    // Honour the lease: its worker may still report. Fresh
                    // deadline, since heartbeats were not heard while down.
                    pkgs[i].lease = Some(l.id.clone());
                    pkgs[i].since_ms = Some(l.granted_ms);
                    if let Some(w) = workers.get_mut(&l.worker) {
                        w.leases.insert(l.id.clone());
                    }
                    leases.insert(
                        l.id,
                        LeaseRt {
                            pkg: i,
                            worker_id: l.worker,
                            attempt: l.attempt,
                            granted_ms: l.granted_ms,
                            deadline_ms: now
                                .saturating_add(cfg.lease_ttl_ms)
                                .min(l.granted_ms.saturating_add(cfg.max_build_ms)),
                        },
                    );
                }
                _ => {
                    ops.push(DbOp::LeaseClosed {
                        id: l.id.clone(),
                        status: "expired",
                    });
                    closed.insert(
                        l.id,
                        ClosedLease {
                            package: l.package,
                            status: "expired".into(),
                            since_ms: Some(now),
                        },
                    );
                }
            }
        }
        // A package restored as building whose lease could not be restored goes back to the queue.
        for (i, rt) in pkgs.iter().enumerate() {
            if disp.state(i) == Some(PkgState::Building) && rt.lease.is_none() {
                let _ = disp.requeue(i);
            }
        }
        let started_ms = snap
            .meta
            .get("started_ms")
            .and_then(|v| v.parse().ok())
            .filter(|_| !snap.meta.contains_key("finished_ms") || !disp.is_finished())
            .unwrap_or(now);
        let finished_ms = if disp.is_finished() {
            Some(
                snap.meta
                    .get("finished_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(now),
            )
        } else {
            None
        };
        let mut b = Build {
            cfg,
            plan,
            hashes,
            index,
            owners,
            disp,
            weights,
            pkgs,
            leases,
            closed,
            accepted,
            promoting: HashMap::new(),
            workers,
            worker_ids,
            started_ms,
            finished_ms,
            ops,
            reservations: HashMap::new(),
            reservation_counts: ReservationCounts::default(),
            observe: observe::Observe::new(now),
        };
        b.ops.push(DbOp::Meta {
            key: "started_ms".into(),
            value: started_ms.to_string(),
        });
        match finished_ms {
            Some(f) => b.ops.push(DbOp::Meta {
                key: "finished_ms".into(),
                value: f.to_string(),
            }),
            None => b.ops.push(DbOp::MetaDelete {
                key: "finished_ms".into(),
            }),
        }
        for i in 0..n {
            let st = b.disp.state(i).unwrap_or(PkgState::Waiting);
            let before = snap
                .packages
                .get(&b.plan.packages[i].name)
                .map(|r| r.state.clone());
            if before.as_deref() != Some(st.as_str()) {
                let detail = match st {
                    PkgState::DepFailed => b
                        .disp
                        .dep_failed_on(i)
                        .map(|d| format!("needs {}", b.disp.name(d))),
                    PkgState::UpToDate => Some(format!("input hash {}", &b.hashes[i])),
                    _ => None,
                };
                b.event(i, now, st.as_str(), None, None, None, detail);
            }
            b.persist_pkg(i);
        }
        b
    }

    /// Takes the state-file changes made since the last call.
    pub fn take_ops(&mut self) -> Vec<DbOp> {
        std::mem::take(&mut self.ops)
    }

    fn persist_pkg(&mut self, i: usize) {
        let st = self.disp.state(i).unwrap_or(PkgState::Waiting);
        self.persist_pkg_as(i, st);
    }

    /// Records package `i` in state `st` (which the dispatcher may reach only later).
    fn persist_pkg_as(&mut self, i: usize, st: PkgState) {
        self.ops.push(DbOp::Package {
            name: self.plan.packages[i].name.clone(),
            state: st.as_str().to_string(),
            input_hash: self.hashes[i].clone(),
            attempts: self.pkgs[i].attempts,
            losses: self.pkgs[i].losses,
            failed_on: self.disp.failed_on(i).to_vec(),
            reason: self.pkgs[i].reason.clone(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        i: usize,
        at_ms: u64,
        kind: &str,
        worker: Option<String>,
        lease_id: Option<String>,
        attempt: Option<u32>,
        detail: Option<String>,
    ) {
        let ev = HistoryEvent {
            at_unix_ms: at_ms,
            kind: kind.to_string(),
            worker,
            lease_id,
            attempt,
            detail,
        };
        self.ops.push(DbOp::Event {
            package: self.plan.packages[i].name.clone(),
            at_ms,
            kind: ev.kind.clone(),
            worker: ev.worker.clone(),
            lease_id: ev.lease_id.clone(),
            attempt: ev.attempt,
            detail: ev.detail.clone(),
        });
        self.pkgs[i].history.push(ev);
    }

    /// Counts by state, for metrics.
    pub fn counts(&self) -> std::collections::BTreeMap<PkgState, usize> {
        self.disp.counts()
    }

    pub fn ready_len(&self) -> usize {
        self.disp.ready_len()
    }

    pub fn is_finished(&self) -> bool {
        self.disp.is_finished()
    }

    pub fn package_count(&self) -> usize {
        self.plan.packages.len()
    }

    /// The name of worker `worker_id` (the id itself if it is unknown).
    pub(crate) fn worker_name(&self, worker_id: &str) -> String {
        self.workers
            .get(worker_id)
            .map_or_else(|| worker_id.to_string(), |w| w.name.clone())
    }

    pub fn live_workers(&self) -> usize {
        self.workers.values().filter(|w| !w.gone).count()
    }

    pub fn live_leases(&self) -> usize {
        self.leases.len()
    }
}
