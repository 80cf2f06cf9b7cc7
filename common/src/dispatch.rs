//! The dispatch policy, as pure logic: readiness, priorities, retries and
//! failure propagation. The scheduler drives a [`Dispatcher`] from REST
//! calls; `dbuild simulate` drives the very same type from a discrete-event
//! simulation (see [`crate::simulate`]).

use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The state of one source package in a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PkgState {
    /// Some package it needs is not built yet.
    Waiting,
    /// Everything it needs is built; queued by priority.
    Ready,
    /// A worker holds a lease on it.
    Building,
    /// Built in this build.
    Succeeded,
    /// Inputs unchanged since its last successful build; not rebuilt.
    UpToDate,
    /// Failed on its last allowed attempt.
    Failed,
    /// A package it needs failed.
    DepFailed,
}

impl PkgState {
    pub const ALL: [PkgState; 7] = [
        PkgState::Waiting,
        PkgState::Ready,
        PkgState::Building,
        PkgState::Succeeded,
        PkgState::UpToDate,
        PkgState::Failed,
        PkgState::DepFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PkgState::Waiting => "waiting",
            PkgState::Ready => "ready",
            PkgState::Building => "building",
            PkgState::Succeeded => "succeeded",
            PkgState::UpToDate => "up-to-date",
            PkgState::Failed => "failed",
            PkgState::DepFailed => "dep-failed",
        }
    }

    pub fn parse(s: &str) -> Option<PkgState> {
        PkgState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Its RPMs are available to dependents.
    pub fn is_built(self) -> bool {
        matches!(self, PkgState::Succeeded | PkgState::UpToDate)
    }

    /// Nothing more will happen to it in this build.
    pub fn is_final(self) -> bool {
        matches!(self, PkgState::Succeeded | PkgState::UpToDate | PkgState::Failed | PkgState::DepFailed)
    }
}

impl std::fmt::Display for PkgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a package starts when a dispatcher is built (fresh or on restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    /// To be built (waiting or ready, depending on its needs).
    Pending,
    /// Already built in this build.
    Succeeded,
    /// Inputs unchanged since its last successful build.
    UpToDate,
    /// Failed for good in this build.
    Failed,
    /// A live lease on it survives (scheduler restart).
    Building,
}

/// Decides how a package starts, from its current input hash and what was
/// recorded: a package whose hash matches its last successful build and whose
/// RPMs are still present is up to date.
pub fn resume_state(current_hash: &str, recorded: &Recorded) -> Initial {
    let same_inputs = recorded.hash.as_deref() == Some(current_hash);
    let rpms_ok = recorded.rpms_present;
    match recorded.state {
        Some(PkgState::Succeeded) if same_inputs && rpms_ok => Initial::Succeeded,
        Some(PkgState::Failed) if same_inputs => Initial::Failed,
        Some(PkgState::Building) if same_inputs && recorded.live_lease => Initial::Building,
        _ if recorded.last_success_hash.as_deref() == Some(current_hash) && rpms_ok => Initial::UpToDate,
        _ => Initial::Pending,
    }
}

/// What the state database remembers about a package (see [`resume_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// State in the current build, if it was recorded.
    pub state: Option<PkgState>,
    /// Input hash that state was reached with.
    pub hash: Option<String>,
    /// Input hash of its last successful build (any build).
    pub last_success_hash: Option<String>,
    /// All RPMs of its last successful build exist on the share.
    pub rpms_present: bool,
    /// A lease on it was live when the state was recorded.
    pub live_lease: bool,
}

/// Per-package weights: measured duration, else the static weight, else 1.
pub fn effective_weights(plan: &Plan, measured: &HashMap<String, f64>) -> Vec<f64> {
    plan.packages
        .iter()
        .map(|p| {
            measured
                .get(&p.name)
                .copied()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .or(p.weight.filter(|w| w.is_finite() && *w >= 0.0))
                .unwrap_or(1.0)
        })
        .collect()
}

/// Critical-path priority of every package: its own weight plus the longest
/// weighted chain of packages that (transitively) need it. Edges that close a
/// cycle are ignored, so this never loops.
pub fn critical_path(plan: &Plan, weights: &[f64]) -> Vec<f64> {
    let n = plan.packages.len();
    let order = plan.topo_order().unwrap_or_else(|_| (0..n).collect());
    let dependents = plan.dependents();
    let mut pos = vec![0usize; n];
    for (k, &i) in order.iter().enumerate() {
        pos[i] = k;
    }
    let mut prio = vec![0.0f64; n];
    for &i in order.iter().rev() {
        let tail = dependents[i].iter().filter(|&&d| pos[d] > pos[i]).map(|&d| prio[d]).fold(0.0, f64::max);
        prio[i] = weights.get(i).copied().unwrap_or(1.0) + tail;
    }
    prio
}

/// A transition the dispatcher refused (a caller bug, or a stale request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("package index {0} is not in the plan")]
    Unknown(usize),
    #[error("package {package} is {state}, not building")]
    NotBuilding { package: String, state: PkgState },
}

/// What a failure led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back in the ready queue for another attempt.
    Retry,
    /// Failed for good; these dependents are now dep-failed.
    Failed { dep_failed: Vec<usize> },
}

#[derive(Debug, Clone, Copy)]
struct ReadyKey {
    priority: f64,
    idx: usize,
}

impl PartialEq for ReadyKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ReadyKey {}
impl PartialOrd for ReadyKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ReadyKey {
    /// Highest priority first, then plan order.
    fn cmp(&self, other: &Self) -> Ordering {
        other.priority.total_cmp(&self.priority).then(self.idx.cmp(&other.idx))
    }
}

/// The live dispatch state of a build.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    names: Vec<String>,
    needs: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    priority: Vec<f64>,
    state: Vec<PkgState>,
    missing: Vec<usize>,
    ready: BTreeSet<ReadyKey>,
    failures: Vec<u32>,
    failed_on: Vec<Vec<String>>,
    dep_failed_on: Vec<Option<usize>>,
    max_attempts: u32,
    building: usize,
}

impl Dispatcher {
    /// A dispatcher where every package starts [`Initial::Pending`].
    pub fn new(plan: &Plan, priority: Vec<f64>, max_attempts: u32) -> Self {
        let initial = vec![Initial::Pending; plan.packages.len()];
        Self::with_initial(plan, priority, max_attempts, &initial)
    }

    /// A dispatcher with given starting states (`initial[i]` for package `i`;
    /// missing entries are `Pending`). Dependents of failed packages become
    /// dep-failed; pending packages whose needs are built become ready.
    pub fn with_initial(plan: &Plan, priority: Vec<f64>, max_attempts: u32, initial: &[Initial]) -> Self {
        let n = plan.packages.len();
        let len = n;
        let needs: Vec<Vec<usize>> =
            plan.packages.iter().map(|p| p.needs.iter().copied().filter(|&x| x < len).collect()).collect();
        let mut d = Dispatcher {
            names: plan.packages.iter().map(|p| p.name.clone()).collect(),
            dependents: plan.dependents(),
            needs,
            priority: (0..n).map(|i| priority.get(i).copied().unwrap_or(1.0)).collect(),
            state: vec![PkgState::Waiting; n],
            missing: vec![0; n],
            ready: BTreeSet::new(),
            failures: vec![0; n],
            failed_on: vec![Vec::new(); n],
            dep_failed_on: vec![None; n],
            max_attempts: max_attempts.max(1),
            building: 0,
        };
        for i in 0..n {
            d.state[i] = match initial.get(i).copied().unwrap_or(Initial::Pending) {
                Initial::Pending => PkgState::Waiting,
                Initial::Succeeded => PkgState::Succeeded,
                Initial::UpToDate => PkgState::UpToDate,
                Initial::Failed => PkgState::Failed,
                Initial::Building => {
                    d.building += 1;
                    PkgState::Building
                }
            };
        }
        for i in 0..n {
            d.missing[i] = d.needs[i].iter().filter(|&&x| !d.state[x].is_built()).count();
        }
        for i in 0..n {
            if d.state[i] == PkgState::Failed {
                d.propagate_failure(i);
            }
        }
        for i in 0..n {
            if d.state[i] == PkgState::Waiting && d.missing[i] == 0 {
                d.make_ready(i);
            }
        }
        d
    }

    fn make_ready(&mut self, i: usize) {
        self.state[i] = PkgState::Ready;
        self.ready.insert(ReadyKey { priority: self.priority[i], idx: i });
    }

    fn take_ready(&mut self, i: usize) {
        self.ready.remove(&ReadyKey { priority: self.priority[i], idx: i });
    }

    /// Marks everything that transitively needs `failed` dep-failed (unless
    /// already final or building); returns those packages.
    fn propagate_failure(&mut self, failed: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![failed];
        while let Some(i) = stack.pop() {
            for k in 0..self.dependents[i].len() {
                let d = self.dependents[i][k];
                if matches!(self.state[d], PkgState::Waiting | PkgState::Ready) {
                    if self.state[d] == PkgState::Ready {
                        self.take_ready(d);
                    }
                    self.state[d] = PkgState::DepFailed;
                    self.dep_failed_on[d] = Some(i);
                    out.push(d);
                    stack.push(d);
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    pub fn state(&self, i: usize) -> Option<PkgState> {
        self.state.get(i).copied()
    }

    pub fn priority(&self, i: usize) -> f64 {
        self.priority.get(i).copied().unwrap_or(0.0)
    }

    /// Failed attempts so far.
    pub fn failures(&self, i: usize) -> u32 {
        self.failures.get(i).copied().unwrap_or(0)
    }

    /// Workers a package failed on, oldest first.
    pub fn failed_on(&self, i: usize) -> &[String] {
        self.failed_on.get(i).map_or(&[], Vec::as_slice)
    }

    /// The package whose failure made `i` dep-failed (the direct need on that chain).
    pub fn dep_failed_on(&self, i: usize) -> Option<usize> {
        self.dep_failed_on.get(i).copied().flatten()
    }

    /// The packages `i` needs that are not built yet.
    pub fn waiting_on(&self, i: usize) -> Vec<usize> {
        self.needs.get(i).map_or_else(Vec::new, |v| v.iter().copied().filter(|&x| !self.state[x].is_built()).collect())
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn building_len(&self) -> usize {
        self.building
    }

    /// Ready packages, highest priority first.
    pub fn ready_queue(&self) -> impl Iterator<Item = usize> + '_ {
        self.ready.iter().map(|k| k.idx)
    }

    /// Counts of packages per state (every state present, maybe 0).
    pub fn counts(&self) -> BTreeMap<PkgState, usize> {
        let mut out: BTreeMap<PkgState, usize> = PkgState::ALL.iter().map(|&s| (s, 0)).collect();
        for &s in &self.state {
            *out.entry(s).or_insert(0) += 1;
        }
        out
    }

    /// Nothing is building and nothing can become ready: the build is over.
    pub fn is_finished(&self) -> bool {
        self.building == 0 && self.ready.is_empty()
    }

    /// Takes the highest-priority ready package for `worker`, skipping the
    /// ones it already failed as long as fewer than `live_workers` workers
    /// have failed them (so another worker gets the retry).
    pub fn next_for(&mut self, worker: &str, live_workers: usize) -> Option<usize> {
        let pick = self
            .ready
            .iter()
            .find(|k| {
                let failed = &self.failed_on[k.idx];
                !failed.iter().any(|w| w == worker) || failed.len() >= live_workers
            })
            .copied()?;
        self.ready.remove(&pick);
        self.state[pick.idx] = PkgState::Building;
        self.building += 1;
        Some(pick.idx)
    }

    fn check_building(&self, i: usize) -> Result<(), DispatchError> {
        match self.state.get(i) {
            None => Err(DispatchError::Unknown(i)),
            Some(PkgState::Building) => Ok(()),
            Some(&state) => Err(DispatchError::NotBuilding { package: self.names[i].clone(), state }),
        }
    }

    /// A build of `i` succeeded; returns the packages that became ready.
    pub fn succeed(&mut self, i: usize) -> Result<Vec<usize>, DispatchError> {
        self.check_building(i)?;
        self.building -= 1;
        self.state[i] = PkgState::Succeeded;
        let mut now_ready = Vec::new();
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.missing[d] = self.missing[d].saturating_sub(1);
            if self.missing[d] == 0 && self.state[d] == PkgState::Waiting {
                self.make_ready(d);
                now_ready.push(d);
            }
        }
        Ok(now_ready)
    }

    /// A build of `i` on `worker` failed: retried while attempts remain,
    /// else failed for good and its dependents dep-failed.
    pub fn fail(&mut self, i: usize, worker: &str) -> Result<FailOutcome, DispatchError> {
        self.check_building(i)?;
        self.building -= 1;
        self.failures[i] += 1;
        self.failed_on[i].push(worker.to_string());
        if self.failures[i] < self.max_attempts {
            self.make_ready(i);
            Ok(FailOutcome::Retry)
        } else {
            self.state[i] = PkgState::Failed;
            Ok(FailOutcome::Failed { dep_failed: self.propagate_failure(i) })
        }
    }

    /// The lease on `i` was lost (expired, worker gone): back to the queue,
    /// not counted as a failure.
    pub fn requeue(&mut self, i: usize) -> Result<(), DispatchError> {
        self.check_building(i)?;
        self.building -= 1;
        self.make_ready(i);
        Ok(())
    }

    /// Restores the failure history of `i` (on restart).
    pub fn restore_failures(&mut self, i: usize, workers: Vec<String>) {
        if let (Some(f), Some(w)) = (self.failures.get_mut(i), self.failed_on.get_mut(i)) {
            *f = u32::try_from(workers.len()).unwrap_or(u32::MAX);
            *w = workers;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanPackage;

    /// a <- b <- d, a <- c (d needs b, b and c need a); e alone.
    fn plan() -> Plan {
        let mut pk: Vec<PlanPackage> =
            ["a", "b", "c", "d", "e"].iter().map(|n| PlanPackage::new(*n, format!("{n}.spec"))).collect();
        pk[1].needs = vec![0];
        pk[2].needs = vec![0];
        pk[3].needs = vec![1];
        Plan { packages: pk, arch: "x86_64".into(), macros: vec![] }
    }

    #[test]
    fn critical_path_sums_longest_chain() {
        let p = plan();
        let cp = critical_path(&p, &[1.0, 2.0, 5.0, 3.0, 1.0]);
        assert_eq!(cp, vec![6.0, 5.0, 5.0, 3.0, 1.0]);
    }

    #[test]
    fn weights_prefer_measured_then_static() {
        let mut p = plan();
        p.packages[1].weight = Some(7.0);
        p.packages[2].weight = Some(7.0);
        let measured = HashMap::from([("c".to_string(), 3.0)]);
        assert_eq!(effective_weights(&p, &measured), vec![1.0, 7.0, 3.0, 1.0, 1.0]);
    }

    #[test]
    fn dispatches_in_dependency_and_priority_order() -> Result<(), DispatchError> {
        let p = plan();
        let prio = critical_path(&p, &[1.0, 2.0, 5.0, 3.0, 1.0]);
        let mut d = Dispatcher::new(&p, prio, 2);
        assert_eq!(d.next_for("w", 1), Some(0));
        assert_eq!(d.next_for("w", 1), Some(4));
        assert_eq!(d.next_for("w", 1), None);
        assert_eq!(d.succeed(0)?, vec![1, 2]);
        // b (5.0, index 1) before c (5.0, index 2): tie broken by plan order.
        assert_eq!(d.next_for("w", 1), Some(1));
        assert_eq!(d.waiting_on(3), vec![1]);
        assert!(d.succeed(3).is_err());
        Ok(())
    }

    #[test]
    fn retries_elsewhere_then_fails_and_propagates() -> Result<(), DispatchError> {
        let p = plan();
        let mut d = Dispatcher::new(&p, critical_path(&p, &[1.0; 5]), 2);
        assert_eq!(d.next_for("w1", 2), Some(0));
        assert_eq!(d.fail(0, "w1")?, FailOutcome::Retry);
        // w1 failed a, another worker is alive: w1 gets e instead.
        assert_eq!(d.next_for("w1", 2), Some(4));
        assert_eq!(d.next_for("w2", 2), Some(0));
        let out = d.fail(0, "w2")?;
        let FailOutcome::Failed { mut dep_failed } = out else { panic!("expected failure") };
        dep_failed.sort();
        assert_eq!(dep_failed, vec![1, 2, 3]);
        assert_eq!(d.dep_failed_on(3), Some(1));
        assert_eq!(d.dep_failed_on(1), Some(0));
        d.succeed(4)?;
        assert!(d.is_finished());
        let c = d.counts();
        assert_eq!((c[&PkgState::Failed], c[&PkgState::DepFailed], c[&PkgState::Succeeded]), (1, 3, 1));
        Ok(())
    }

    #[test]
    fn requeue_and_restart_states() -> Result<(), DispatchError> {
        let p = plan();
        let mut d = Dispatcher::new(&p, vec![1.0; 5], 3);
        let i = d.next_for("w", 1).ok_or(DispatchError::Unknown(99))?;
        d.requeue(i)?;
        assert_eq!(d.state(i), Some(PkgState::Ready));
        let init = [Initial::UpToDate, Initial::Building, Initial::Failed, Initial::Pending, Initial::Pending];
        let d = Dispatcher::with_initial(&p, vec![1.0; 5], 3, &init);
        assert_eq!(d.state(1), Some(PkgState::Building));
        assert_eq!(d.state(3), Some(PkgState::Waiting));
        assert_eq!(d.state(4), Some(PkgState::Ready));
        assert_eq!(d.building_len(), 1);
        Ok(())
    }

    #[test]
    fn resume_rules() {
        let r = Recorded {
            state: Some(PkgState::Succeeded),
            hash: Some("h".into()),
            last_success_hash: Some("h".into()),
            rpms_present: true,
            live_lease: false,
        };
        assert_eq!(resume_state("h", &r), Initial::Succeeded);
        assert_eq!(resume_state("h2", &r), Initial::Pending);
        let r2 = Recorded { state: None, ..r.clone() };
        assert_eq!(resume_state("h", &r2), Initial::UpToDate);
        let r3 = Recorded { rpms_present: false, ..r2 };
        assert_eq!(resume_state("h", &r3), Initial::Pending);
    }
}
