//! What people read: a running attempt's log followed live, earlier
//! attempts by number, names that are no log refused; the status page;
//! and `--read-only` serving the read endpoints of a stopped build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{write_plan, Sched, TOKEN};
use std::io::Write;
use std::time::Duration;

async fn text(s: &Sched, path: &str) -> (u16, String) {
    let resp = s
        .http
        .get(format!("{}{}", s.url, path))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn append(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Reads `resp`'s chunks into `got` until it holds `want` (20 s at most).
async fn read_until(resp: &mut reqwest::Response, got: &mut String, want: &str) {
    while !got.contains(want) {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("no chunk within 20 s")
            .unwrap()
            .expect("the answer ended early");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_running_attempt_log_is_followed_until_its_lease_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_plan(dir, &[("a", &[], None)]);
    let s = Sched::start(dir, &["--max-attempts", "3"]);
    let w = s.register("w1", 1).await;
    let l1 = s.lease_pkg(&w, "a").await;
    let log1 = dir.join("stage/LOGS/a/1.log");
    append(&log1, "first try\n");
    assert_eq!(s.fail(&w, &l1, "boom").await.0, 200);
    let l2 = s.lease_pkg(&w, "a").await;
    let log2 = dir.join("stage/LOGS/a/2.log");
    append(&log2, "line 1\n");

    let mut resp = s
        .http
        .get(format!("{}/v1/packages/a/log", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = Duration::from_secs(20);
    let mut got = String::new();
    read_until(&mut resp, &mut got, "line 1\n").await;
    // Appended while the client reads: it arrives on the open answer.
    append(&log2, "line 2\n");
    read_until(&mut resp, &mut got, "line 2\n").await;
    // The attempt ends: the answer ends, with what was written last.
    append(&log2, "line 3\n");
    assert_eq!(s.succeed(&w, &l2).await.0, 200);
    while let Some(c) = tokio::time::timeout(deadline, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        got.push_str(&String::from_utf8_lossy(&c));
    }
    assert_eq!(got, "line 1\nline 2\nline 3\n");

    assert_eq!(
        text(&s, "/v1/packages/a/log?attempt=1").await,
        (200, "first try\n".into())
    );
    assert_eq!(text(&s, "/v1/packages/a/log?follow=false").await.1, got);
    for bad in [
        "/v1/packages/a/log?attempt=7",
        "/v1/packages/nope/log",
        "/v1/packages/..%2F..%2Fstate/log",
        "/v1/packages/a/log?attempt=-1",
        "/v1/packages/a/log?attempt=..",
    ] {
        let (st, body) = text(&s, bad).await;
        assert!((400..500).contains(&st), "{bad}: {st} {body}");
        assert!(!body.contains(TOKEN), "{bad}");
    }
}

#[tokio::test]
async fn the_status_page_is_one_self_contained_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let (st, html) = text(&s, "/").await;
    assert_eq!(st, 200);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    for api in ["/v1/summary", "/v1/packages", "/v1/workers", "/v1/graph"] {
        assert!(html.contains(api), "the page reads {api}");
    }
    // Works offline: nothing is loaded from elsewhere.
    for external in ["http://", "https://", "src=\"//"] {
        let outside = html
            .match_indices(external)
            .any(|(k, _)| !html[k..].starts_with("http://www.w3.org/2000/svg"));
        assert!(!outside, "the page loads {external}...");
    }
}

#[tokio::test]
async fn read_only_serves_the_recorded_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_plan(
        dir,
        &[("a", &[], None), ("b", &["a"], None), ("c", &[], None)],
    );
    let s = Sched::start(dir, &["--max-attempts", "1"]);
    let w = s.register("w1", 2).await;
    let la = s.lease_pkg(&w, "a").await;
    let lc = s.lease_pkg(&w, "c").await;
    append(&dir.join("stage/LOGS/a/1.log"), "built a\n");
    assert_eq!(s.succeed(&w, &la).await.0, 200);
    assert_eq!(s.fail(&w, &lc, "broken").await.0, 200);
    let before = s.summary().await;
    let packages = s.get("/v1/packages").await.1;
    s.kill();

    let ro = Sched::start(dir, &["--read-only"]);
    let after = ro.summary().await;
    assert_eq!(after["counts"], before["counts"], "{after}");
    assert_eq!(after["failed"], serde_json::json!(["c"]));
    let listed = ro.get("/v1/packages").await.1;
    let states = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}={}", p["name"], p["state"]))
            .collect()
    };
    assert_eq!(states(&listed), states(&packages));
    assert_eq!(
        ro.get("/v1/packages/c").await.1["info"]["reason"],
        "exit status 1: broken"
    );
    assert_eq!(
        text(&ro, "/v1/packages/a/log").await,
        (200, "built a\n".into())
    );
    assert_eq!(
        ro.get("/v1/graph").await.1["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(text(&ro, "/").await.0, 200);
    assert!(ro.get("/v1/rpms").await.1["rpms"]
        .as_array()
        .is_some_and(|f| f.len() == 2));
    // Nothing that changes the build is served.
    let (st, _) = ro
        .post(
            "/v1/workers",
            serde_json::json!({"name": "w2", "arch": "x86_64", "slots": 1}),
        )
        .await;
    assert_eq!(st, 404);
}
