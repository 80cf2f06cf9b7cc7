//! The scheduler's `/metrics` against Prometheus's own linter (`promtool
//! check metrics`, Debian's `prometheus` package), the series the issue
//! asks for moving as a build goes, and workers that leave or fall silent
//! shown gone (in `/v1/workers` and the metrics).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../worker/tests/support/promtool.rs"]
mod promtool;

use common::{eventually, write_plan, Sched};
use promtool::promtool_check;
use serde_json::json;

/// The value of the sample `series` (name with labels, exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(s: &Sched) -> String {
    s.get("/metrics").await.1.as_str().unwrap().to_string()
}

#[tokio::test]
async fn metrics_pass_promtool_and_move_with_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_plan(
        dir,
        &[
            ("a", &[], Some(20.0)),
            ("b", &["a"], Some(10.0)),
            ("c", &[], Some(5.0)),
        ],
    );
    let s = Sched::start(dir, &["--max-attempts", "2"]);
    let m0 = metrics(&s).await;
    let said = promtool_check(&m0);
    assert!(
        said.trim().is_empty(),
        "promtool on a fresh scheduler: {said}\n{m0}"
    );
    assert_eq!(
        sample(&m0, "dbuild_critical_path_remaining_seconds"),
        Some(30.0)
    );
    assert_eq!(sample(&m0, "dbuild_packages{state=\"ready\"}"), Some(2.0));
    assert!(m0.contains("process_resident_memory_bytes"), "{m0}");

    let w = s.register("w1", 2).await;
    let la = s.lease_pkg(&w, "a").await;
    let lc = s.lease_pkg(&w, "c").await;
    assert_eq!(s.fail(&w, &lc, "boom").await.0, 200);
    assert_eq!(s.succeed(&w, &la).await.0, 200);
    let lb = s.lease_pkg(&w, "b").await;
    assert_eq!(s.succeed(&w, &lb).await.0, 200);
    for name in ["a", "b", "c"] {
        s.state_of(name).await;
    }
    let m1 = metrics(&s).await;
    let said = promtool_check(&m1);
    assert!(
        said.trim().is_empty(),
        "promtool during a build: {said}\n{m1}"
    );
    for (series, want) in [
        ("dbuild_builds_finished_total{failure_kind=\"none\",result=\"success\"}", 2.0),
        ("dbuild_builds_finished_total{failure_kind=\"transient\",result=\"failure\"}", 1.0),
        ("dbuild_retries_total{cause=\"failure\"}", 1.0),
        ("dbuild_leases_granted_total", 3.0),
        ("dbuild_queue_wait_seconds_count", 3.0),
        ("dbuild_packages{state=\"succeeded\"}", 2.0),
        ("dbuild_packages{state=\"ready\"}", 1.0),
        ("dbuild_workers{state=\"live\"}", 1.0),
        ("dbuild_http_requests_total{method=\"POST\",route=\"/v1/leases/{id}/report\",status=\"200\"}", 3.0),
    ] {
        assert_eq!(sample(&m1, series), Some(want), "{series} in\n{m1}");
    }
    // c is the only package left: 5 s estimated; the slots are 2.
    assert_eq!(
        sample(&m1, "dbuild_critical_path_remaining_seconds"),
        Some(5.0)
    );
    assert!(sample(&m1, "dbuild_worker_heartbeat_age_seconds{worker=\"w1\"}").is_some());
    assert!(sample(&m1, "dbuild_state_commit_seconds_count").unwrap() > 0.0);
    assert!(
        sample(
            &m1,
            "dbuild_http_request_duration_seconds_count{route=\"/v1/packages/{name}\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "routes are counted by pattern, never by package name:\n{m1}"
    );
    assert!(!m1.contains("route=\"/v1/packages/a\""), "{m1}");
}

#[tokio::test]
async fn a_worker_that_leaves_is_gone_and_its_lease_requeued() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_plan(dir, &[("a", &[], None)]);
    let s = Sched::start(dir, &[]);
    let w = s.register("w1", 1).await;
    let _la = s.lease_pkg(&w, "a").await;
    let (st, v) = s.post(&format!("/v1/workers/{w}/leave"), json!({})).await;
    assert_eq!((st, v["leases_returned"].as_u64()), (200, Some(1)), "{v}");
    let (_, workers) = s.get("/v1/workers").await;
    assert_eq!(workers[0]["gone"], true, "{workers}");
    assert_eq!(s.state_of("a").await, "ready");
    let m = metrics(&s).await;
    assert_eq!(
        sample(&m, "dbuild_leases_revoked_total{reason=\"worker_left\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "dbuild_workers{state=\"gone\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        !m.contains("dbuild_worker_heartbeat_age_seconds{"),
        "a gone worker has no age series:\n{m}"
    );
    // Unknown worker, and no token.
    let (st, _) = s.post("/v1/workers/nobody/leave", json!({})).await;
    assert_eq!(st, 404);
    let (st, _) = s
        .post_with(&format!("/v1/workers/{w}/leave"), "{}".into(), None)
        .await;
    assert_eq!(st, 401);
    // Asking for work again brings it back.
    let _ = s.lease_pkg(&w, "a").await;
    let (_, workers) = s.get("/v1/workers").await;
    assert_eq!(workers[0]["gone"], false, "{workers}");
}

#[tokio::test]
async fn a_silent_worker_is_marked_gone_after_the_lease_ttl_and_the_longest_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_plan(dir, &[("a", &[], None)]);
    let s = Sched::start(dir, &["--lease-ttl", "1s", "--max-wait", "1s"]);
    let _w = s.register("quiet", 1).await;
    let (_, workers) = s.get("/v1/workers").await;
    assert_eq!(workers[0]["gone"], false, "{workers}");
    let gone = eventually(20, || async {
        let (_, workers) = s.get("/v1/workers").await;
        workers[0]["gone"] == true
    })
    .await;
    assert!(
        gone,
        "a worker silent for 2 s (TTL 1 s + poll 1 s) was never marked gone"
    );
    let m = metrics(&s).await;
    assert_eq!(
        sample(&m, "dbuild_workers{state=\"live\"}"),
        Some(0.0),
        "{m}"
    );
}
