//! The dispatch policy, as pure logic: readiness, priorities, retries and
//! failure propagation. The scheduler drives a [`Dispatcher`] from REST
//! calls; `dbuild simulate` drives the very same type from a discrete-event
//! simulation (see [`crate::simulate`]).

mod policy;

pub use policy::{critical_path, effective_weights, resume_state, Initial, PkgState, Recorded};

use crate::plan::Plan;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

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
        other
            .priority
            .total_cmp(&self.priority)
            .then(self.idx.cmp(&other.idx))
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
    /// Ready packages promised to a busy worker's next build (see [`Dispatcher::reserve_for`]).
    reserved: BTreeSet<usize>,
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
    pub fn with_initial(
        plan: &Plan,
        priority: Vec<f64>,
        max_attempts: u32,
        initial: &[Initial],
    ) -> Self {
        let n = plan.packages.len();
        let len = n;
        let needs: Vec<Vec<usize>> = plan
            .packages
            .iter()
            .map(|p| p.needs.iter().copied().filter(|&x| x < len).collect())
            .collect();
        let mut d = Dispatcher {
            names: plan.packages.iter().map(|p| p.name.clone()).collect(),
            dependents: plan.dependents(),
            needs,
            priority: (0..n)
                .map(|i| priority.get(i).copied().unwrap_or(1.0))
                .collect(),
            state: vec![PkgState::Waiting; n],
            missing: vec![0; n],
            ready: BTreeSet::new(),
            failures: vec![0; n],
            failed_on: vec![Vec::new(); n],
            dep_failed_on: vec![None; n],
            max_attempts: max_attempts.max(1),
            building: 0,
            reserved: BTreeSet::new(),
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
            d.missing[i] = d.needs[i]
                .iter()
                .filter(|&&x| !d.state[x].is_built())
                .count();
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
        self.ready.insert(ReadyKey {
            priority: self.priority[i],
            idx: i,
        });
    }

    fn take_ready(&mut self, i: usize) {
        self.ready.remove(&ReadyKey {
            priority: self.priority[i],
            idx: i,
        });
    }

    /// Ready package `i` leaves the queue (and any reservation) and builds.
    fn start_building(&mut self, i: usize) {
        self.take_ready(i);
        self.reserved.remove(&i);
        self.state[i] = PkgState::Building;
        self.building += 1;
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
        self.needs.get(i).map_or_else(Vec::new, |v| {
            v.iter()
                .copied()
                .filter(|&x| !self.state[x].is_built())
                .collect()
        })
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

    /// `worker` may take ready package `k` (it has not failed it, or every
    /// live worker has).
    fn may_take(&self, k: &ReadyKey, worker: &str, live_workers: usize) -> bool {
        let failed = &self.failed_on[k.idx];
        !failed.iter().any(|w| w == worker) || failed.len() >= live_workers
    }

    /// Takes the highest-priority ready package for `worker`, skipping the
    /// ones it already failed as long as fewer than `live_workers` workers
    /// have failed them (so another worker gets the retry). Among packages
    /// of that priority an unreserved one goes first; a reserved one is taken
    /// over when it ranks strictly higher than everything unreserved, so a
    /// reservation never holds back the critical path.
    pub fn next_for(&mut self, worker: &str, live_workers: usize) -> Option<usize> {
        let mut takeable = self
            .ready
            .iter()
            .filter(|k| self.may_take(k, worker, live_workers));
        let best = *takeable.next()?;
        let pick = if self.reserved.contains(&best.idx) {
            takeable
                .take_while(|k| k.priority == best.priority)
                .find(|k| !self.reserved.contains(&k.idx))
                .copied()
                .unwrap_or(best)
        } else {
            best
        };
        self.start_building(pick.idx);
        Some(pick.idx)
    }

    /// Reserves the highest-priority unreserved ready package `worker` may
    /// take, for the build it will start after its current one. The package
    /// stays ready: [`Dispatcher::claim`] turns the reservation into a
    /// build, and [`Dispatcher::next_for`] takes it over for an idle worker.
    pub fn reserve_for(&mut self, worker: &str, live_workers: usize) -> Option<usize> {
        let pick = self
            .ready
            .iter()
            .find(|k| !self.reserved.contains(&k.idx) && self.may_take(k, worker, live_workers))?
            .idx;
        self.reserved.insert(pick);
        Some(pick)
    }

    /// Starts the build of reserved package `i`; false when it is no longer
    /// reserved and ready (taken over, or not reserved at all).
    pub fn claim(&mut self, i: usize) -> bool {
        if self.state.get(i) != Some(&PkgState::Ready) || !self.reserved.contains(&i) {
            return false;
        }
        self.start_building(i);
        true
    }

    /// Drops the reservation of `i`, if any.
    pub fn unreserve(&mut self, i: usize) {
        self.reserved.remove(&i);
    }

    pub fn is_reserved(&self, i: usize) -> bool {
        self.reserved.contains(&i)
    }

    fn check_building(&self, i: usize) -> Result<(), DispatchError> {
        match self.state.get(i) {
            None => Err(DispatchError::Unknown(i)),
            Some(PkgState::Building) => Ok(()),
            Some(&state) => Err(DispatchError::NotBuilding {
                package: self.names[i].clone(),
                state,
            }),
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

    /// A build of `i` on `worker` failed: retried while attempts remain
    /// (never when `permanent`), else failed for good and its dependents
    /// dep-failed.
    pub fn fail(
        &mut self,
        i: usize,
        worker: &str,
        permanent: bool,
    ) -> Result<FailOutcome, DispatchError> {
        self.check_building(i)?;
        self.building -= 1;
        self.failures[i] += 1;
        self.failed_on[i].push(worker.to_string());
        if !permanent && self.failures[i] < self.max_attempts {
            self.make_ready(i);
            Ok(FailOutcome::Retry)
        } else {
            self.state[i] = PkgState::Failed;
            Ok(FailOutcome::Failed {
                dep_failed: self.propagate_failure(i),
            })
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

    /// Gives up on a building package without another attempt (e.g. it lost
    /// its lease too often): failed for good; returns its now dep-failed dependents.
    pub fn give_up(&mut self, i: usize) -> Result<Vec<usize>, DispatchError> {
        self.check_building(i)?;
        self.building -= 1;
        self.state[i] = PkgState::Failed;
        Ok(self.propagate_failure(i))
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
mod tests;
