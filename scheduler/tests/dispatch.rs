//! Ordering, priorities, long polls, retries and failure propagation through the REST API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{write_plan, Sched};
use serde_json::json;
use std::time::{Duration, Instant};

/// a <- b <- c (c needs b needs a); solo alone, weight 2.5.
fn chain(dir: &std::path::Path) {
    write_plan(
        dir,
        &[
            ("a", &[], None),
            ("b", &["a"], None),
            ("c", &["b"], None),
            ("solo", &[], Some(2.5)),
        ],
    );
}

#[tokio::test]
async fn dependency_order_priorities_and_install_lists() {
    let tmp = tempfile::tempdir().unwrap();
    chain(tmp.path());
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 4).await;
    assert_eq!(s.state_of("c").await, "waiting");
    let (_, d) = s.get("/v1/packages/c").await;
    assert_eq!(d["info"]["waiting_on"], json!(["b"]));
    assert!(
        d["why"].as_str().unwrap().contains("waiting for 1 package"),
        "{d}"
    );
    // a: critical path 3, solo: 2.5.
    let la = s.lease_pkg(&w, "a").await;
    assert_eq!(la["spec"], "SPECS/a/a.spec");
    assert_eq!(la["attempt"], 1);
    assert_eq!(la["log_path"], "stage/LOGS/a/1.log");
    assert_eq!(la["macros"], json!([{"name": "dist", "value": ".ph5"}]));
    let ls = s.lease_pkg(&w, "solo").await;
    // Nothing else is ready: b waits for a.
    assert_eq!(s.lease(&w, 0).await["lease"], json!(null));
    assert_eq!(s.state_of("b").await, "waiting");
    let (st, r) = s.succeed(&w, &la).await;
    assert_eq!((st, r["state"].clone()), (200, json!("succeeded")));
    let lb = s.lease_pkg(&w, "b").await;
    assert_eq!(
        lb["install"],
        json!(["stage/RPMS/x86_64/a-devel-1-1.ph5.x86_64.rpm"])
    );
    let (_, list) = s.get("/v1/packages?state=building").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["b", "solo"]);
    s.succeed(&w, &lb).await;
    s.succeed(&w, &ls).await;
    let lc = s.lease_pkg(&w, "c").await;
    s.succeed(&w, &lc).await;
    let sum = s.summary().await;
    assert_eq!(sum["finished"], true);
    assert_eq!(sum["outcome"], "succeeded");
    assert_eq!(sum["counts"]["succeeded"], 4);
    assert_eq!(s.lease(&w, 5).await["finished"], true);
    let (_, g) = s.get("/v1/graph").await;
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4);
    assert!(g["edges"]
        .as_array()
        .unwrap()
        .contains(&json!({"from": "c", "to": "b"})));
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_package_is_ready() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w1 = s.register("w1", 1).await;
    let w2 = s.register("w2", 1).await;
    let la = s.lease_pkg(&w1, "a").await;
    let t0 = Instant::now();
    let (waited, _) = tokio::join!(s.lease(&w2, 20), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.succeed(&w1, &la).await
    });
    assert_eq!(waited["lease"]["package"], "b");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "long poll took {:?}",
        t0.elapsed()
    );
    // A poll with nothing to give returns empty after its wait.
    let t1 = Instant::now();
    let v = s.lease(&w1, 1).await;
    assert_eq!(v, json!({"lease": null, "finished": false}));
    assert!(t1.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn retries_on_another_worker_then_dep_failed() {
    let tmp = tempfile::tempdir().unwrap();
    chain(tmp.path());
    let s = Sched::start(tmp.path(), &["--max-attempts", "2"]);
    let w1 = s.register("w1", 1).await;
    let w2 = s.register("w2", 1).await;
    let la = s.lease_pkg(&w1, "a").await;
    let (st, r) = s.fail(&w1, &la, "compile error").await;
    assert_eq!((st, r["state"].clone()), (200, json!("ready")));
    // w1 failed a: it gets solo, and a waits for another worker.
    let ls = s.lease_pkg(&w1, "solo").await;
    let la2 = s.lease_pkg(&w2, "a").await;
    assert_eq!(la2["attempt"], 2);
    assert_eq!(la2["log_path"], "stage/LOGS/a/2.log");
    let (st, r) = s.fail(&w2, &la2, "compile error again").await;
    assert_eq!((st, r["state"].clone()), (200, json!("failed")));
    assert_eq!(s.state_of("b").await, "dep-failed");
    let (_, c) = s.get("/v1/packages/c").await;
    assert_eq!(c["info"]["state"], "dep-failed");
    assert_eq!(c["info"]["dep_failed_on"], "b");
    assert!(c["why"].as_str().unwrap().contains("b -> a"), "{c}");
    let (_, a) = s.get("/v1/packages/a").await;
    let kinds: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["ready", "leased", "failed", "leased", "failed"]);
    assert_eq!(a["info"]["failures"], 2);
    assert!(a["info"]["reason"]
        .as_str()
        .unwrap()
        .contains("compile error again"));
    // The rest of the graph goes on.
    assert_eq!(s.summary().await["finished"], false);
    s.succeed(&w1, &ls).await;
    let sum = s.summary().await;
    assert_eq!(sum["finished"], true);
    assert_eq!(sum["outcome"], "failed");
    assert_eq!(sum["failed"], json!(["a"]));
    assert_eq!(sum["counts"]["dep-failed"], 2);
    let (_, m) = s.get("/metrics").await;
    let m = m.as_str().unwrap();
    assert!(
        m.contains("dbuild_reports_total{outcome=\"failure\"} 2"),
        "{m}"
    );
    assert!(m.contains("dbuild_packages{state=\"dep-failed\"} 2"), "{m}");
}

#[tokio::test]
async fn lease_expiry_redispatches_and_marks_worker_gone() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &[], None)]);
    let s = Sched::start(tmp.path(), &["--lease-ttl", "600ms"]);
    let w1 = s.register("w1", 1).await;
    let w2 = s.register("w2", 1).await;
    let la = s.lease_pkg(&w1, "a").await;
    let lb = s.lease_pkg(&w2, "b").await;
    // w2 heartbeats, w1 does not.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let id = lb["lease_id"].as_str().unwrap();
        let (st, v) = s
            .post(
                &format!("/v1/leases/{id}/heartbeat"),
                json!({"worker_id": w2}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(s.state_of("a").await, "ready");
    assert_eq!(s.state_of("b").await, "building");
    assert_eq!(s.summary().await["workers_live"], 1);
    let (_, workers) = s.get("/v1/workers").await;
    assert_eq!(workers[0]["name"], "w1");
    assert_eq!(workers[0]["gone"], true);
    assert_eq!(workers[1]["building"], json!(["b"]));
    // The late report of w1 changes nothing.
    let (st, v) = s.succeed(&w1, &la).await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no longer live"),
        "{v}"
    );
    assert_eq!(s.state_of("a").await, "ready");
    let la2 = s.lease_pkg(&w1, "a").await; // w1 is back
    assert_eq!(la2["attempt"], 2);
    assert_eq!(s.succeed(&w1, &la2).await.0, 200);
    assert_eq!(s.succeed(&w2, &lb).await.0, 200);
    let (_, m) = s.get("/metrics").await;
    assert!(
        m.as_str()
            .unwrap()
            .contains("dbuild_leases_expired_total 1"),
        "{m}"
    );
    let (_, a) = s.get("/v1/packages/a").await;
    assert!(a["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "expired"));
}

#[tokio::test]
async fn duplicate_unknown_and_foreign_reports() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w1 = s.register("w1", 2).await;
    let w2 = s.register("w2", 1).await;
    let la = s.lease_pkg(&w1, "a").await;
    let lb = s.lease_pkg(&w1, "b").await;
    // Slots are respected.
    let (st, _) = s
        .post("/v1/lease", json!({"worker_id": w1, "wait_secs": 0}))
        .await;
    assert_eq!(st, 409);
    // w2 cannot report or heartbeat w1's lease.
    let (st, v) = s.succeed(&w2, &la).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("another worker"));
    assert_eq!(s.state_of("a").await, "building");
    assert_eq!(s.succeed(&w1, &la).await.0, 200);
    let (st, v) = s.succeed(&w1, &la).await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = s.fail(&w1, &la, "late").await;
    assert_eq!(st, 409);
    assert_eq!(s.state_of("a").await, "succeeded");
    let id = la["lease_id"].as_str().unwrap();
    let (st, _) = s
        .post(
            &format!("/v1/leases/{id}/heartbeat"),
            json!({"worker_id": w1}),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = s.post("/v1/leases/no-such-lease/report", json!({"worker_id": w1, "duration_secs": 1, "outcome": {"status": "success", "rpms": []}})).await;
    assert_eq!(st, 404);
    let (st, _) = s
        .post("/v1/lease", json!({"worker_id": "nobody", "wait_secs": 0}))
        .await;
    assert_eq!(st, 404);
    assert_eq!(s.succeed(&w1, &lb).await.0, 200);
    let (_, m) = s.get("/metrics").await;
    assert!(
        m.as_str()
            .unwrap()
            .contains("dbuild_reports_total{outcome=\"rejected\"} 4"),
        "{m}"
    );
}

#[tokio::test]
async fn a_package_that_keeps_losing_its_lease_fails_instead_of_looping() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(
        tmp.path(),
        &["--lease-ttl", "300ms", "--max-lease-losses", "2"],
    );
    let w = s.register("w1", 1).await;
    s.lease_pkg(&w, "a").await;
    assert!(common::eventually(5, || async { s.state_of("a").await == "ready" }).await);
    let again = s.lease(&w, 3).await;
    assert_eq!(again["lease"]["attempt"], 2, "{again}");
    assert!(common::eventually(5, || async { s.state_of("a").await == "failed" }).await);
    let (_, a) = s.get("/v1/packages/a").await;
    assert!(
        a["info"]["reason"]
            .as_str()
            .unwrap()
            .contains("lost its lease 2 times"),
        "{a}"
    );
    assert_eq!(s.state_of("b").await, "dep-failed");
    let sum = s.summary().await;
    assert_eq!(
        (sum["finished"].clone(), sum["outcome"].clone()),
        (json!(true), json!("failed"))
    );
    assert_eq!(s.lease(&w, 0).await["finished"], true);
}

#[tokio::test]
async fn a_hung_build_is_revoked_after_the_maximum_build_time_despite_heartbeats() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(
        tmp.path(),
        &["--lease-ttl", "10s", "--max-build-time", "700ms"],
    );
    let w = s.register("w1", 1).await;
    let l = s.lease_pkg(&w, "a").await;
    let id = l["lease_id"].as_str().unwrap();
    let revoked = common::eventually(5, || async {
        let (st, _) = s
            .post(
                &format!("/v1/leases/{id}/heartbeat"),
                json!({"worker_id": w}),
            )
            .await;
        st == 409
    })
    .await;
    assert!(revoked);
    let (_, a) = s.get("/v1/packages/a").await;
    assert_eq!(a["info"]["state"], "ready");
    let last = a["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["detail"].as_str().unwrap().contains("max-build-time"),
        "{last}"
    );
}

#[tokio::test]
async fn a_report_can_carry_the_next_lease() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let a = s.lease_pkg(&w, "a").await;
    // Asked for: the reply hands out b, which a's success made ready, and the slot is taken.
    let (st, v) = s.succeed_asking(&w, &a, true).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "succeeded", "{v}");
    let b = v["next"].clone();
    assert_eq!(b["package"], "b", "{v}");
    assert_eq!(
        b["install"],
        json!(["stage/RPMS/x86_64/a-devel-1-1.ph5.x86_64.rpm"]),
        "{v}"
    );
    assert_eq!(s.state_of("b").await, "building");
    let (st, v) = s
        .post("/v1/lease", json!({"worker_id": w, "wait_secs": 0}))
        .await;
    assert_eq!(st, 409, "the only slot holds b: {v}");
    // The last report: nothing is left, and the reply says the build is over.
    let (st, v) = s.succeed_asking(&w, &b, true).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["next"].is_null() && v["finished"] == true, "{v}");
    // Not asked for: no lease in the reply.
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let a = s.lease_pkg(&w, "a").await;
    let (_, v) = s.succeed(&w, &a).await;
    assert!(v["next"].is_null() && v["finished"] == false, "{v}");
    assert_eq!(s.state_of("b").await, "ready");
}

#[tokio::test]
async fn reservations_are_claimed_by_their_slot_or_taken_over_by_an_idle_worker() {
    let tmp = tempfile::tempdir().unwrap();
    // Independent packages; a first, then b and c (equal), then d.
    write_plan(
        tmp.path(),
        &[
            ("a", &[], Some(4.0)),
            ("b", &[], Some(3.0)),
            ("c", &[], Some(3.0)),
            ("d", &[], Some(1.0)),
        ],
    );
    let s = Sched::start(tmp.path(), &[]);
    let (w1, w2) = (s.register("w1", 1).await, s.register("w2", 1).await);
    let la = s.lease_pkg(&w1, "a").await;

    // During a, w1's slot reserves the best ready package; asking again gives the same reservation.
    let (st, r) = s.reserve(&w1, &la).await;
    assert_eq!(st, 200, "{r}");
    let rb = r["lease"].clone();
    assert_eq!(
        (
            rb["package"].as_str(),
            rb["attempt"].as_u64(),
            rb["log_path"].as_str()
        ),
        (Some("b"), Some(1), Some("stage/LOGS/b/1.log"))
    );
    assert_eq!(
        s.reserve(&w1, &la).await.1["lease"]["lease_id"],
        rb["lease_id"]
    );
    assert_eq!(s.state_of("b").await, "ready");
    let (_, b) = s.get("/v1/packages/b").await;
    assert!(
        b["why"]
            .as_str()
            .unwrap()
            .contains("reserved for worker w1's next build, after a"),
        "{b}"
    );
    // Another worker's lease, or an unknown one, cannot reserve.
    assert_eq!(s.reserve(&w2, &la).await.0, 409);
    assert_eq!(
        s.reserve(&w1, &json!({"lease_id": "no-such-lease"}))
            .await
            .0,
        404
    );

    // An idle worker gets the unreserved c, of the same priority as the reserved b.
    let lc = s.lease_pkg(&w2, "c").await;
    // w1's report claims b: the next lease is the reservation, same id.
    let (st, r) = s
        .succeed_claiming(&w1, &la, true, rb["lease_id"].as_str())
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["next"]["lease_id"], rb["lease_id"], "{r}");
    assert_eq!(r["next"]["package"], "b");
    let lb = r["next"].clone();
    assert_eq!(s.state_of("b").await, "building");

    // During b, w1 reserves d; w2 finishes c first and takes d over (it ranks
    // above everything unreserved: nothing is); w1's claim then fails.
    let rd = s.reserve(&w1, &lb).await.1["lease"].clone();
    assert_eq!(rd["package"], "d");
    let (_, r) = s.succeed_asking(&w2, &lc, true).await;
    assert_eq!(r["next"]["package"], "d", "{r}");
    assert_ne!(r["next"]["lease_id"], rd["lease_id"]);
    let ld = r["next"].clone();
    let (_, r) = s
        .succeed_claiming(&w1, &lb, true, rd["lease_id"].as_str())
        .await;
    assert_eq!(
        (r["next"].clone(), r["finished"].clone()),
        (json!(null), json!(false)),
        "{r}"
    );
    s.succeed(&w2, &ld).await;
    assert_eq!(s.summary().await["counts"]["succeeded"], 4);

    let (_, metrics) = s.get("/metrics").await;
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        "dbuild_reservations_total{outcome=\"granted\"} 2",
        "dbuild_reservations_total{outcome=\"claimed\"} 1",
        "dbuild_reservations_total{outcome=\"taken_over\"} 1",
        "dbuild_reservations_total{outcome=\"dropped\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
}

#[tokio::test]
async fn a_reservation_not_claimed_is_dropped_and_ready_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, w1, la, rb) = common::building_a_with_b_reserved(tmp.path()).await;
    let w2 = s.register("w2", 1).await;
    // The report does not ask for a next lease (the worker is stopping): the reservation goes.
    s.succeed(&w1, &la).await;
    let lb = s.lease_pkg(&w2, "b").await;
    assert_ne!(lb["lease_id"], rb["lease_id"]);
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("dbuild_reservations_total{outcome=\"dropped\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_package_failure_is_final_unless_retries_are_asked_for() {
    let report = |worker: &str, kind: &str| {
        json!({"worker_id": worker, "duration_secs": 1.0, "log_path": "stage/LOGS/a/1.log",
               "outcome": {"status": "failure", "exit_status": 1, "reason": "%build failed", "kind": kind}})
    };
    for (flags, state) in [
        (&[][..], "failed"),
        (&["--retry-package-failures"][..], "ready"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        chain(tmp.path());
        let s = Sched::start(tmp.path(), flags);
        let w = s.register("w1", 1).await;
        let la = s.lease_pkg(&w, "a").await;
        let id = la["lease_id"].as_str().unwrap();
        let (st, r) = s
            .post(&format!("/v1/leases/{id}/report"), report(&w, "package"))
            .await;
        assert_eq!(
            (st, r["state"].as_str()),
            (200, Some(state)),
            "{flags:?}: {r}"
        );
        if state == "failed" {
            assert_eq!(s.state_of("b").await, "dep-failed");
            let (_, a) = s.get("/v1/packages/a").await;
            assert!(
                a["history"]
                    .to_string()
                    .contains("not retried: the package's own build failed"),
                "{a}"
            );
        }
    }
    // A transient failure (the default kind) is retried.
    let tmp = tempfile::tempdir().unwrap();
    chain(tmp.path());
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let (_, r) = s
        .post(&format!("/v1/leases/{id}/report"), report(&w, "transient"))
        .await;
    assert_eq!(r["state"], "ready", "{r}");
}
