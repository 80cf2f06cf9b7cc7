//! The time a build has left, from what is still to build: the longest
//! chain of remaining packages (the critical path still ahead) and the
//! remaining work spread over the live slots. Each package counts with its
//! estimated duration (measured, from a weights file, or the mean of what
//! this build measured), a running one with what is left of it.

use crate::plan::Plan;

/// A package not built yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pending {
    /// Index in the plan.
    pub pkg: usize,
    /// Its estimated build duration, seconds.
    pub estimate_secs: f64,
    /// Seconds its current build has run, if it is building.
    pub running_secs: Option<f64>,
}

/// What [`time_left`] found.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeLeft {
    /// The longest chain of remaining packages, in estimated seconds.
    pub critical_path_secs: f64,
    /// The sum of the remaining packages' remaining seconds.
    pub work_secs: f64,
    /// max(critical path, work / slots): the estimate of the time to the end.
    pub estimate_secs: f64,
}

/// Seconds left of a package estimated at `estimate` that has run `running`.
/// Past its estimate a build is taken to need half as long again as it has
/// run so far: the estimate was wrong, and the time already spent is the
/// best guide left (never "no time left" for a build still running).
pub fn remaining_of(estimate: f64, running: Option<f64>) -> f64 {
    let estimate = if estimate.is_finite() {
        estimate.max(0.0)
    } else {
        0.0
    };
    match running {
        None => estimate,
        Some(ran) => {
            let ran = if ran.is_finite() { ran.max(0.0) } else { 0.0 };
            (estimate - ran).max(ran / 2.0)
        }
    }
}

/// The time left of `plan` with `pending` still to build on `slots` live slots
/// (at least one is assumed: workers may come).
pub fn time_left(plan: &Plan, pending: &[Pending], slots: u64) -> TimeLeft {
    let n = plan.packages.len();
    let mut left: Vec<Option<f64>> = vec![None; n];
    for p in pending.iter().filter(|p| p.pkg < n) {
        left[p.pkg] = Some(remaining_of(p.estimate_secs, p.running_secs));
    }
    let work_secs: f64 = left.iter().flatten().sum();
    // Longest chain from each remaining package through the remaining ones
    // that need it, in reverse topological order.
    let order = plan.topo_order().unwrap_or_else(|_| (0..n).collect());
    let dependents = plan.dependents();
    let mut chain = vec![0.0f64; n];
    let mut critical_path_secs = 0.0f64;
    for &i in order.iter().rev() {
        let Some(own) = left[i] else { continue };
        let tail = dependents[i]
            .iter()
            .filter(|&&d| left[d].is_some())
            .map(|&d| chain[d])
            .fold(0.0, f64::max);
        chain[i] = own + tail;
        critical_path_secs = critical_path_secs.max(chain[i]);
    }
    let estimate_secs = if pending.is_empty() {
        0.0
    } else {
        critical_path_secs.max(work_secs / slots.max(1) as f64)
    };
    TimeLeft {
        critical_path_secs,
        work_secs,
        estimate_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanPackage;

    fn plan(needs: &[&[usize]]) -> Plan {
        let mut p = Plan::default();
        for (i, n) in needs.iter().enumerate() {
            let mut pkg = PlanPackage::new(format!("p{i}"), format!("p{i}.spec"));
            pkg.needs = n.to_vec();
            p.packages.push(pkg);
        }
        p
    }

    fn pending(pkg: usize, estimate_secs: f64, running_secs: Option<f64>) -> Pending {
        Pending {
            pkg,
            estimate_secs,
            running_secs,
        }
    }

    #[test]
    fn a_chain_counts_end_to_end_and_work_spreads_over_slots() {
        // p1 and p2 need p0; p3 needs p1.
        let p = plan(&[&[], &[0], &[0], &[1]]);
        let all: Vec<Pending> = (0..4).map(|i| pending(i, 10.0, None)).collect();
        let t = time_left(&p, &all, 2);
        assert_eq!(t.critical_path_secs, 30.0);
        assert_eq!(t.work_secs, 40.0);
        assert_eq!(t.estimate_secs, 30.0);
        let t = time_left(&p, &all, 1);
        assert_eq!(t.estimate_secs, 40.0, "one slot: the work bounds it");
    }

    #[test]
    fn built_packages_drop_out_and_running_ones_count_what_is_left() {
        let p = plan(&[&[], &[0], &[1]]);
        // p0 built; p1 has run 4 of its 10 s; p2 waits.
        let t = time_left(&p, &[pending(1, 10.0, Some(4.0)), pending(2, 5.0, None)], 4);
        assert_eq!(t.critical_path_secs, 11.0);
        assert_eq!(time_left(&p, &[], 4), TimeLeft::default());
    }

    #[test]
    fn a_build_past_its_estimate_still_has_time_left() {
        // Three 25 s builds estimated at 1 s each, 10 s in: not "no time left".
        assert_eq!(remaining_of(1.0, Some(10.0)), 5.0);
        assert_eq!(remaining_of(10.0, Some(2.0)), 8.0);
        assert_eq!(remaining_of(f64::NAN, None), 0.0);
        let p = plan(&[&[], &[], &[]]);
        let running: Vec<Pending> = (0..3).map(|i| pending(i, 1.0, Some(10.0))).collect();
        assert!(time_left(&p, &running, 3).estimate_secs >= 5.0);
    }
}
