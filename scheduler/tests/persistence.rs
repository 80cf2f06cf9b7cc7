//! Restart after SIGKILL, incremental rebuilds, and the exclusive state file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{write_plan, Sched};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn sigkill_mid_build_then_restart_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(
        tmp.path(),
        &[
            ("a", &[], None),
            ("b", &["a"], None),
            ("c", &["b"], None),
            ("solo", &[], None),
        ],
    );
    let s = Sched::start(tmp.path(), &[]);
    let w1 = s.register("w1", 2).await;
    let la = s.lease_pkg(&w1, "a").await;
    assert_eq!(s.succeed(&w1, &la).await.0, 200);
    let lb = s.lease_pkg(&w1, "b").await;
    let ls = s.lease_pkg(&w1, "solo").await;
    let ls_fail = s.fail(&w1, &ls, "flaky").await;
    assert_eq!(ls_fail.0, 200);
    s.kill();

    let s = Sched::start(tmp.path(), &[]);
    assert_eq!(s.state_of("a").await, "succeeded");
    // The live lease survived: b is still building and its report is honoured.
    assert_eq!(s.state_of("b").await, "building");
    let (_, solo) = s.get("/v1/packages/solo").await;
    assert_eq!(solo["info"]["state"], "ready");
    assert_eq!(solo["info"]["failures"], 1);
    assert_eq!(solo["info"]["attempts"], 1);
    let (st, v) = s.succeed(&w1, &lb).await;
    assert_eq!(st, 200, "{v}");
    // The worker id survived too; a is not handed out again.
    let l1 = s.lease(&w1, 0).await["lease"].clone();
    let l2 = s.lease(&w1, 0).await["lease"].clone();
    let mut got = vec![
        l1["package"].as_str().unwrap().to_string(),
        l2["package"].as_str().unwrap().to_string(),
    ];
    got.sort();
    assert_eq!(got, vec!["c", "solo"]);
    let retry = if l1["package"] == "solo" { &l1 } else { &l2 };
    assert_eq!(retry["attempt"], 2);
    s.succeed(&w1, &l1).await;
    s.succeed(&w1, &l2).await;
    let sum = s.summary().await;
    assert_eq!(sum["counts"]["succeeded"], 4, "{sum}");
    assert_eq!(sum["outcome"], "succeeded");
    let (_, a) = s.get("/v1/packages/a").await;
    let kinds: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["ready", "leased", "succeeded"]);
    s.kill();

    // Restart of a finished build: nothing to do.
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    assert_eq!(s.lease(&w, 0).await["finished"], true);
    assert_eq!(s.summary().await["counts"]["succeeded"], 4);
    s.kill();

    // Change b's spec: b and c are rebuilt, a and solo are not.
    std::fs::write(
        tmp.path().join("SPECS/b/b.spec"),
        "Name: b\nVersion: 1\nRelease: 2\n",
    )
    .unwrap();
    let s = Sched::start(tmp.path(), &[]);
    let sum = s.summary().await;
    assert_eq!(sum["counts"]["succeeded"], 2, "{sum}");
    assert_eq!(sum["counts"]["ready"], 1, "{sum}");
    assert_eq!(sum["counts"]["waiting"], 1, "{sum}");
    let w = s.register("w1", 1).await;
    let lb = s.lease_pkg(&w, "b").await;
    assert_eq!(
        lb["install"],
        json!(["stage/RPMS/x86_64/a-devel-1-1.ph5.x86_64.rpm"])
    );
    s.succeed(&w, &lb).await;
    let lc = s.lease_pkg(&w, "c").await;
    s.succeed(&w, &lc).await;
    s.kill();

    // A new build directory state with RPMs present and the same inputs: up-to-date.
    // (Deleting an RPM makes its package rebuild.)
    std::fs::remove_file(tmp.path().join("stage/RPMS/x86_64/solo-1-1.ph5.x86_64.rpm")).unwrap();
    let s = Sched::start(tmp.path(), &[]);
    assert_eq!(s.state_of("solo").await, "ready");
    assert_eq!(s.state_of("a").await, "succeeded");
}

#[tokio::test]
async fn up_to_date_across_builds_and_failed_kept_unless_retried() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(tmp.path(), &["--max-attempts", "1"]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    s.succeed(&w, &la).await;
    let lb = s.lease_pkg(&w, "b").await;
    s.fail(&w, &lb, "broken").await;
    assert_eq!(s.summary().await["outcome"], "failed");
    s.kill();
    // Same inputs: b stays failed; with --retry-failed it is built again.
    let s = Sched::start(tmp.path(), &["--max-attempts", "1"]);
    assert_eq!(s.state_of("b").await, "failed");
    s.kill();
    let s = Sched::start(tmp.path(), &["--max-attempts", "1", "--retry-failed"]);
    assert_eq!(s.state_of("b").await, "ready");
    assert_eq!(s.state_of("a").await, "succeeded");
    s.kill();
    // Forget this build's states (as a new build on the same share would):
    // a's last success still matches, so it is up to date.
    let db = tmp.path().join("state/dbuild.sqlite");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    sqlx::query("DELETE FROM packages")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let s = Sched::start(tmp.path(), &["--max-attempts", "1"]);
    assert_eq!(s.state_of("a").await, "up-to-date");
    assert_eq!(s.state_of("b").await, "ready");
}

#[tokio::test]
async fn restart_finished_starts_a_new_build_but_resumes_an_interrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(
        tmp.path(),
        &[("a", &[], None), ("b", &["a"], None), ("c", &[], None)],
    );
    let flags = ["--max-attempts", "1", "--restart-finished"];
    let s = Sched::start(tmp.path(), &flags);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    s.succeed(&w, &la).await;
    s.kill();
    // Interrupted (b and c never built): resumed, a stays succeeded.
    let s = Sched::start(tmp.path(), &flags);
    assert_eq!(s.state_of("a").await, "succeeded");
    let w = s.register("w1", 1).await;
    let lb = s.lease_pkg(&w, "b").await;
    s.fail(&w, &lb, "broken").await;
    let lc = s.lease_pkg(&w, "c").await;
    s.succeed(&w, &lc).await;
    assert_eq!(s.summary().await["outcome"], "failed");
    s.kill();
    // Finished: a new build; unchanged successes are up to date, b is tried again.
    let s = Sched::start(tmp.path(), &flags);
    assert_eq!(s.state_of("a").await, "up-to-date");
    assert_eq!(s.state_of("c").await, "up-to-date");
    assert_eq!(s.state_of("b").await, "ready");
    s.kill();
}

#[tokio::test]
async fn second_scheduler_on_the_same_state_file_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let first = Sched::start(tmp.path(), &[]);
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking({
            let dir = tmp.path().to_path_buf();
            move || Sched::command(&dir, &[]).output().unwrap()
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another process"), "{err}");
    assert!(err.contains("dbuild.sqlite"), "{err}");
    // WAL mode (file format bytes 18-19 = 2), yet no shared-memory index beside
    // the file: exclusive locking keeps it in the process, as NFS needs.
    let state = tmp.path().join("state");
    let header = std::fs::read(state.join("dbuild.sqlite")).unwrap();
    assert_eq!(header[18..20], [2, 2], "WAL mode");
    assert!(state.join("dbuild.sqlite-wal").exists());
    assert!(
        !state.join("dbuild.sqlite-shm").exists(),
        "no shared memory file"
    );
    // The first one is unaffected.
    assert_eq!(first.summary().await["packages"], 1);
    first.kill();
    // Once it is gone, a new scheduler starts.
    let again = Sched::start(tmp.path(), &[]);
    assert_eq!(again.summary().await["packages"], 1);
}

#[tokio::test]
async fn measured_durations_become_priorities_of_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("x", &[], None), ("y", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    for (pkg, secs) in [("x", 1.0), ("y", 100.0)] {
        let l = s.lease_pkg(&w, pkg).await;
        let id = l["lease_id"].as_str().unwrap();
        let (st, v) = s
            .post(&format!("/v1/leases/{id}/report"), json!({"worker_id": w, "duration_secs": secs, "outcome": {"status": "success", "rpms": []}}))
            .await;
        assert_eq!(st, 200, "{v}");
    }
    s.kill();
    for n in ["x", "y"] {
        std::fs::write(
            tmp.path().join(format!("SPECS/{n}/{n}.spec")),
            format!("Name: {n}\nVersion: 2\n"),
        )
        .unwrap();
    }
    let s = Sched::start(tmp.path(), &[]);
    let (_, y) = s.get("/v1/packages/y").await;
    assert_eq!(y["info"]["priority"], 100.0);
    let sum = s.summary().await;
    assert_eq!(sum["estimate_left_secs"], 101.0, "{sum}");
    let w = s.register("w1", 1).await;
    s.lease_pkg(&w, "y").await;
}

#[tokio::test]
async fn a_worker_registering_again_gives_up_its_old_leases() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let old = s.lease_pkg(&w, "a").await;
    let w_again = s.register("w1", 1).await;
    assert_eq!(w, w_again);
    assert_eq!(s.state_of("a").await, "ready");
    assert_eq!(s.succeed(&w, &old).await.0, 409);
    let new = s.lease_pkg(&w, "a").await;
    assert_eq!(new["attempt"], 2);
    assert_eq!(s.succeed(&w, &new).await.0, 200);
}

#[test]
fn startup_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Sched::command(tmp.path(), extra).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    std::fs::write(tmp.path().join("plan.json"), "{\"packages\": 3}").unwrap();
    let err = run(&[]);
    assert!(err.contains("plan.json is not a valid plan"), "{err}");
    write_plan(tmp.path(), &[("a", &["b"], None), ("b", &["a"], None)]);
    let err = run(&[]);
    assert!(err.contains("cycle") && err.contains("\"a\""), "{err}");
    write_plan(tmp.path(), &[("a", &[], None)]);
    let err = run(&["--weights", "/nonexistent/weights.json"]);
    assert!(err.contains("/nonexistent/weights.json"), "{err}");
    let err = run(&["--lease-ttl", "forever"]);
    assert!(err.contains("bad duration"), "{err}");
}

#[tokio::test]
async fn a_reservation_does_not_survive_a_restart_and_its_claim_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, w1, la, rb) = common::building_a_with_b_reserved(tmp.path()).await;
    s.kill();

    // Reservations live in memory: after the restart the claim names nothing,
    // and the reply hands out the best ready package under a new lease id.
    let s = Sched::start(tmp.path(), &[]);
    let (st, r) = s
        .succeed_claiming(&w1, &la, true, rb["lease_id"].as_str())
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["next"]["package"], "b", "{r}");
    assert_ne!(r["next"]["lease_id"], rb["lease_id"]);
    assert_eq!(r["next"]["attempt"], rb["attempt"]);
    s.succeed(&w1, &r["next"]).await;
    assert_eq!(s.summary().await["outcome"], "succeeded");
}

#[tokio::test]
async fn old_history_is_forgotten_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let flags = ["--restart-finished", "--keep-history", "2"];
    let s = Sched::start(tmp.path(), &flags);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    s.succeed(&w, &la).await;
    s.kill();
    // The first restart starts a new build (a is up to date: one more event);
    // every start forgets all but the newest two events of each package.
    for _ in 0..3 {
        Sched::start(tmp.path(), &flags).kill();
    }
    let s = Sched::start(tmp.path(), &flags);
    let (_, a) = s.get("/v1/packages/a").await;
    let kinds: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Without pruning: ready, leased, succeeded, up-to-date.
    assert_eq!(kinds, vec!["succeeded", "up-to-date"], "{a}");
    s.kill();
}
