//! The publish/accept protocol from the scheduler's side, driven over REST
//! by simulated workers that put their files into `incoming/<lease>/`:
//! what `stage/` shows is exactly what was accepted (`GET /v1/rpms`), across
//! refused reports, rebuilds and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{eventually, publish, write_plan, Sched};
use serde_json::{json, Value};
use std::path::Path;

fn stage_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["stage/RPMS", "stage/SRPMS"] {
        let mut stack = vec![dir.join(sub)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

async fn accepted(s: &Sched) -> Vec<Value> {
    let (st, v) = s.get("/v1/rpms").await;
    assert_eq!(st, 200, "{v}");
    v["rpms"].as_array().unwrap().clone()
}

/// Publishes `stage_paths` into `lease`'s incoming directory, then reports them.
async fn publish_and_report(
    s: &Sched,
    worker: &str,
    lease: &Value,
    stage_paths: &[&str],
) -> (u16, Value) {
    let id = lease["lease_id"].as_str().unwrap();
    let paths: Vec<String> = stage_paths.iter().map(|p| p.to_string()).collect();
    let rpms = publish(&s.dir, id, &paths);
    report(s, worker, lease, rpms).await
}

async fn report(s: &Sched, worker: &str, lease: &Value, rpms: Vec<Value>) -> (u16, Value) {
    let id = lease["lease_id"].as_str().unwrap();
    s.post(
        &format!("/v1/leases/{id}/report"),
        json!({"worker_id": worker, "duration_secs": 1.0, "outcome": {"status": "success", "rpms": rpms}}),
    )
    .await
}

#[tokio::test]
async fn accepted_files_move_into_stage_and_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &["a"], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let (st, v) = s.succeed(&w, &la).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("succeeded")), "{v}");
    // Promoted before the answer: in stage/, gone from incoming/.
    assert_eq!(
        stage_files(tmp.path()),
        [
            "stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm",
            "stage/RPMS/x86_64/a-devel-1-1.ph5.x86_64.rpm"
        ]
    );
    assert!(!tmp.path().join("incoming").join(id).exists());
    let list = accepted(&s).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["package"], "a");
    assert_eq!(list[0]["lease_id"], id);
    assert_eq!(list[0]["size"], "a-1-1.ph5.x86_64.rpm".len());
    // The dependent's lease comes with its install list already on the share.
    let lb = s.lease_pkg(&w, "b").await;
    for f in lb["install"].as_array().unwrap() {
        assert!(tmp.path().join(f.as_str().unwrap()).is_file(), "{f}");
    }
    // Pages.
    let (_, page) = s.get("/v1/rpms?limit=1").await;
    assert_eq!(page["rpms"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_str().unwrap();
    let (_, page2) = s.get(&format!("/v1/rpms?limit=1&after={after}")).await;
    assert_eq!(page2["rpms"][0]["path"], list[1]["path"]);
    assert!(page2["next_after"].is_null(), "{page2}");
}

#[tokio::test]
async fn a_report_whose_files_are_not_in_incoming_is_a_transient_failure() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &["--max-attempts", "3"]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let mut rpms = publish(
        tmp.path(),
        id,
        &["stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm".into()],
    );
    // A file it names but did not publish, and one it did publish (never shown).
    rpms.push(json!({"path": "stage/SRPMS/a-1-1.ph5.src.rpm", "sha256": "0".repeat(64)}));
    let (st, v) = report(&s, &w, &la, rpms).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("ready")), "{v}");
    let (_, d) = s.get("/v1/packages/a").await;
    let reason = d["info"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("stage/SRPMS/a-1-1.ph5.src.rpm")
            && reason.contains(&format!("incoming/{id}/SRPMS/a-1-1.ph5.src.rpm")),
        "{reason}"
    );
    assert!(stage_files(tmp.path()).is_empty());
    assert!(accepted(&s).await.is_empty());
    // A size that differs from the file's is refused alike.
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let mut rpms = publish(
        tmp.path(),
        id,
        &["stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm".into()],
    );
    rpms[0]["size"] = json!(1_000_000);
    let (_, v) = report(&s, &w, &la, rpms).await;
    assert_eq!(v["state"], "ready", "{v}");
    assert!(stage_files(tmp.path()).is_empty());
}

#[tokio::test]
async fn a_path_accepted_for_another_package_fails_the_build_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], Some(2.0)), ("b", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    s.succeed(&w, &la).await;
    let before = std::fs::read(tmp.path().join("stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm")).unwrap();
    let lb = s.lease_pkg(&w, "b").await;
    let (st, v) = publish_and_report(
        &s,
        &w,
        &lb,
        &[
            "stage/RPMS/x86_64/b-1-1.ph5.x86_64.rpm",
            "stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm",
        ],
    )
    .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("failed")), "{v}");
    let (_, d) = s.get("/v1/packages/b").await;
    let reason = d["info"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("package b")
            && reason.contains("stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm")
            && reason.contains("package a"),
        "{reason}"
    );
    assert_eq!(
        std::fs::read(tmp.path().join("stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm")).unwrap(),
        before
    );
    assert!(!tmp
        .path()
        .join("stage/RPMS/x86_64/b-1-1.ph5.x86_64.rpm")
        .exists());
    assert_eq!(accepted(&s).await.len(), 2);
}

#[tokio::test]
async fn a_new_version_replaces_the_old_files_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &["--restart-finished"]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    s.succeed(&w, &la).await;
    s.kill();
    // The spec changes: a rebuild with other file names.
    std::fs::write(tmp.path().join("SPECS/a/a.spec"), "Name: a\nVersion: 2\n").unwrap();
    let s = Sched::start(tmp.path(), &["--restart-finished"]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let (st, v) = publish_and_report(
        &s,
        &w,
        &la,
        &[
            "stage/RPMS/x86_64/a-2-1.ph5.x86_64.rpm",
            "stage/SRPMS/a-2-1.ph5.src.rpm",
        ],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        stage_files(tmp.path()),
        [
            "stage/RPMS/x86_64/a-2-1.ph5.x86_64.rpm",
            "stage/SRPMS/a-2-1.ph5.src.rpm"
        ]
    );
    let list: Vec<String> = accepted(&s)
        .await
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(list, stage_files(tmp.path()));
}

#[tokio::test]
async fn a_restart_keeps_live_leases_dirs_and_removes_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    // The worker published; the scheduler dies before the report.
    let rpms = publish(
        tmp.path(),
        id,
        &["stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm".into()],
    );
    // Left by a worker of a lease this build never had, and a stray file.
    publish(
        tmp.path(),
        "0000-stale",
        &["stage/SRPMS/z-1-1.src.rpm".into()],
    );
    std::fs::write(tmp.path().join("incoming/.tmp-stray"), b"x").unwrap();
    s.kill();
    let s = Sched::start(tmp.path(), &[]);
    assert!(
        tmp.path().join("incoming").join(id).is_dir(),
        "a live lease's dir is kept"
    );
    assert!(!tmp.path().join("incoming/0000-stale").exists());
    assert!(!tmp.path().join("incoming/.tmp-stray").exists());
    let (st, v) = report(&s, &w, &la, rpms).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("succeeded")), "{v}");
    assert_eq!(
        stage_files(tmp.path()),
        ["stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm"]
    );
}

#[tokio::test]
async fn the_dir_of_an_expired_lease_is_swept_and_its_late_report_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &["--lease-ttl", "1s"]);
    let w1 = s.register("w1", 1).await;
    let l1 = s.lease_pkg(&w1, "a").await;
    let id1 = l1["lease_id"].as_str().unwrap();
    // w1 stops heartbeating; its lease expires and w2 builds a.
    let w2 = s.register("w2", 1).await;
    let l2 = loop {
        let v = s.lease(&w2, 5).await;
        if v["lease"].is_object() {
            break v["lease"].clone();
        }
    };
    s.succeed(&w2, &l2).await;
    let shown = std::fs::read(tmp.path().join("stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm")).unwrap();
    // w1 wakes up, publishes (other content) and reports: 409, nothing shown changes.
    let path = tmp
        .path()
        .join(format!("incoming/{id1}/RPMS/x86_64/a-1-1.ph5.x86_64.rpm"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"late and different").unwrap();
    let rpms =
        vec![json!({"path": "stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm", "sha256": "1".repeat(64)})];
    let (st, v) = report(&s, &w1, &l1, rpms).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        std::fs::read(tmp.path().join("stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm")).unwrap(),
        shown
    );
    // Its directory goes after a few lease TTLs.
    let dir = tmp.path().join(format!("incoming/{id1}"));
    assert!(
        eventually(30, || async { !dir.exists() }).await,
        "{} was never swept",
        dir.display()
    );
    assert_eq!(accepted(&s).await[0]["lease_id"], l2["lease_id"]);
}
