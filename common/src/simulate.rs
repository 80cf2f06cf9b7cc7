//! Discrete-event simulation of a build, driven by the scheduler's own
//! [`Dispatcher`]: `workers` identical single-slot workers, each package
//! taking its given duration, every build succeeding.

use crate::dispatch::{critical_path, Dispatcher};
use crate::plan::Plan;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a simulated build took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    /// Time when the last package finished.
    pub makespan: f64,
    /// max(critical path, total work / workers): no schedule can beat it.
    pub lower_bound: f64,
    /// Longest weighted dependency chain.
    pub critical_path: f64,
    /// Sum of all durations.
    pub total_work: f64,
    pub workers: usize,
    pub packages: usize,
    /// makespan / lower_bound (1.0 when the bound is 0).
    pub ratio: f64,
}

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error("need at least one worker")]
    NoWorkers,
    #[error("{given} durations given for {packages} packages")]
    DurationCount { given: usize, packages: usize },
    #[error("package {package}: duration {value} is not a finite non-negative number")]
    BadDuration { package: String, value: f64 },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("simulation stalled with {left} packages never ready")]
    Stalled { left: usize },
}

#[derive(Debug, PartialEq)]
struct Time(f64);
impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Simulates `plan` with `durations[i]` seconds per package, priorities
/// from the same durations (as the scheduler does with measured durations).
pub fn simulate(plan: &Plan, durations: &[f64], workers: usize) -> Result<SimResult, SimError> {
    if workers == 0 {
        return Err(SimError::NoWorkers);
    }
    let n = plan.packages.len();
    if durations.len() != n {
        return Err(SimError::DurationCount {
            given: durations.len(),
            packages: n,
        });
    }
    for (p, &d) in plan.packages.iter().zip(durations) {
        if !d.is_finite() || d < 0.0 {
            return Err(SimError::BadDuration {
                package: p.name.clone(),
                value: d,
            });
        }
    }
    plan.validate()?;
    let prio = critical_path(plan, durations);
    let cp = prio.iter().copied().fold(0.0, f64::max);
    let total: f64 = durations.iter().sum();
    let mut d = Dispatcher::new(plan, prio, 1);
    let mut running: BinaryHeap<Reverse<(Time, usize)>> = BinaryHeap::new();
    let mut now = 0.0f64;
    let mut done = 0usize;
    let name = "sim";
    loop {
        while running.len() < workers {
            let Some(i) = d.next_for(name, workers) else {
                break;
            };
            running.push(Reverse((Time(now + durations[i]), i)));
        }
        let Some(Reverse((Time(t), i))) = running.pop() else {
            break;
        };
        now = t;
        // `i` is building by construction; an error here would be a dispatcher bug.
        if d.succeed(i).is_ok() {
            done += 1;
        }
    }
    if done != n {
        return Err(SimError::Stalled { left: n - done });
    }
    let lower_bound = cp.max(total / workers as f64);
    let ratio = if lower_bound > 0.0 {
        now / lower_bound
    } else {
        1.0
    };
    Ok(SimResult {
        makespan: now,
        lower_bound,
        critical_path: cp,
        total_work: total,
        workers,
        packages: n,
        ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanPackage;

    #[test]
    fn chain_and_parallel_work() -> Result<(), SimError> {
        let mut pk: Vec<PlanPackage> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| PlanPackage::new(*n, format!("{n}.spec")))
            .collect();
        pk[1].needs = vec![0];
        let plan = Plan {
            packages: pk,
            arch: "x86_64".into(),
            macros: vec![],
        };
        let r = simulate(&plan, &[2.0, 3.0, 4.0, 1.0], 2)?;
        assert_eq!(r.critical_path, 5.0);
        assert_eq!(r.lower_bound, 5.0);
        assert_eq!(r.makespan, 5.0);
        let r1 = simulate(&plan, &[2.0, 3.0, 4.0, 1.0], 1)?;
        assert_eq!(r1.makespan, 10.0);
        assert_eq!(
            simulate(&plan, &[1.0], 1),
            Err(SimError::DurationCount {
                given: 1,
                packages: 4
            })
        );
        assert_eq!(simulate(&plan, &[1.0; 4], 0), Err(SimError::NoWorkers));
        Ok(())
    }
}
