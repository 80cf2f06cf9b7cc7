//! Unit tests of the dispatch policy.

use super::*;
use crate::plan::PlanPackage;
use std::collections::HashMap;

/// a <- b <- d, a <- c (d needs b, b and c need a); e alone.
fn plan() -> Plan {
    let mut pk: Vec<PlanPackage> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| PlanPackage::new(*n, format!("{n}.spec")))
        .collect();
    pk[1].needs = vec![0];
    pk[2].needs = vec![0];
    pk[3].needs = vec![1];
    Plan {
        packages: pk,
        arch: "x86_64".into(),
        macros: vec![],
    }
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
    assert_eq!(
        effective_weights(&p, &measured),
        vec![1.0, 7.0, 3.0, 1.0, 1.0]
    );
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
    assert_eq!(d.fail(0, "w1", false)?, FailOutcome::Retry);
    // w1 failed a, another worker is alive: w1 gets e instead.
    assert_eq!(d.next_for("w1", 2), Some(4));
    assert_eq!(d.next_for("w2", 2), Some(0));
    let out = d.fail(0, "w2", false)?;
    let FailOutcome::Failed { mut dep_failed } = out else {
        panic!("expected failure")
    };
    dep_failed.sort();
    assert_eq!(dep_failed, vec![1, 2, 3]);
    assert_eq!(d.dep_failed_on(3), Some(1));
    assert_eq!(d.dep_failed_on(1), Some(0));
    d.succeed(4)?;
    assert!(d.is_finished());
    let c = d.counts();
    assert_eq!(
        (
            c[&PkgState::Failed],
            c[&PkgState::DepFailed],
            c[&PkgState::Succeeded]
        ),
        (1, 3, 1)
    );
    Ok(())
}

#[test]
fn a_permanent_failure_is_not_retried() -> Result<(), DispatchError> {
    let p = plan();
    let mut d = Dispatcher::new(&p, critical_path(&p, &[1.0; 5]), 3);
    assert_eq!(d.next_for("w1", 2), Some(0));
    let FailOutcome::Failed { dep_failed } = d.fail(0, "w1", true)? else {
        panic!("expected failure")
    };
    assert_eq!(dep_failed.len(), 3);
    assert_eq!(d.failures(0), 1);
    Ok(())
}

#[test]
fn requeue_and_restart_states() -> Result<(), DispatchError> {
    let p = plan();
    let mut d = Dispatcher::new(&p, vec![1.0; 5], 3);
    let i = d.next_for("w", 1).ok_or(DispatchError::Unknown(99))?;
    d.requeue(i)?;
    assert_eq!(d.state(i), Some(PkgState::Ready));
    let i = d.next_for("w", 1).ok_or(DispatchError::Unknown(99))?;
    assert_eq!(i, 0);
    let mut gone = d.give_up(0)?;
    gone.sort();
    assert_eq!(gone, vec![1, 2, 3]);
    assert_eq!(d.state(0), Some(PkgState::Failed));
    assert!(d.give_up(0).is_err());
    let init = [
        Initial::UpToDate,
        Initial::Building,
        Initial::Failed,
        Initial::Pending,
        Initial::Pending,
    ];
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
    let r2 = Recorded {
        state: None,
        ..r.clone()
    };
    assert_eq!(resume_state("h", &r2), Initial::UpToDate);
    let r3 = Recorded {
        rpms_present: false,
        ..r2
    };
    assert_eq!(resume_state("h", &r3), Initial::Pending);
}

#[test]
fn reservations_are_claimed_or_taken_over_by_an_idle_worker() -> Result<(), DispatchError> {
    let p = plan();
    // Priorities: a 3, b 2, c 2, d 1, e 1.
    let mut d = Dispatcher::new(&p, critical_path(&p, &[1.0, 1.0, 2.0, 1.0, 1.0]), 2);
    assert_eq!(d.next_for("w1", 2), Some(0));
    d.succeed(0)?;
    // Ready: b and c (2), e (1). w1 builds b and reserves c for afterwards.
    assert_eq!(d.next_for("w1", 2), Some(1));
    assert_eq!(d.reserve_for("w1", 2), Some(2));
    assert!(d.is_reserved(2));
    assert_eq!(d.state(2), Some(PkgState::Ready));
    // c ranks strictly higher than the unreserved e: an idle worker takes it over.
    assert_eq!(d.next_for("w2", 2), Some(2));
    assert!(!d.is_reserved(2));
    assert!(!d.claim(2), "taken over: the claim fails");
    // w1 reserves e and claims it.
    assert_eq!(d.reserve_for("w1", 2), Some(4));
    assert_eq!(
        d.reserve_for("w1", 2),
        None,
        "nothing unreserved is left to reserve"
    );
    assert!(d.claim(4));
    assert_eq!(d.state(4), Some(PkgState::Building));
    assert!(!d.claim(4), "a reservation is claimed once");
    assert_eq!(d.building_len(), 3);

    // Among packages of equal priority an idle worker leaves the reserved one alone.
    let mut d = Dispatcher::new(&p, vec![1.0; 5], 2);
    assert_eq!(d.reserve_for("w1", 2), Some(0));
    assert_eq!(d.next_for("w2", 2), Some(4));
    assert!(d.claim(0));

    // A dropped reservation is an ordinary ready package again.
    let mut d = Dispatcher::new(&p, critical_path(&p, &[1.0; 5]), 2);
    assert_eq!(d.reserve_for("w1", 2), Some(0));
    d.unreserve(0);
    assert!(!d.claim(0));
    assert_eq!(d.next_for("w1", 2), Some(0));
    Ok(())
}
