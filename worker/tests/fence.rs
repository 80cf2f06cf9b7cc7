//! What `stage/` shows is exactly what the scheduler accepted, whatever a
//! late, slow, duplicated or killed worker does, and across a scheduler
//! killed between its commit and making the files visible (issue 18). Real
//! builds: the worker and scheduler binaries, `dbuild verify` at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{
    get, signal, start_scheduler, wait_exit, wait_for_log, worker, worker_with_env, write_specs,
    Sched, TOKEN,
};

/// A noarch package (with a `-extra` subpackage) whose `%build` says
/// `working` and sleeps `secs`; its build time makes each build's bytes differ.
fn slow_spec(name: &str, secs: u32) -> String {
    format!(
        "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n\
         %package extra\nSummary: e\n%description extra\ne\n\
         %build\necho working\nsleep {secs}\n\
         %install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho {name} > %{{buildroot}}/usr/share/{name}/f\n\
         %files\n/usr/share/{name}\n%files extra\n"
    )
}

/// A build directory `<root>/b1` with `specs`, and a work dir.
struct Site {
    root: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Site {
    fn new(specs: &[(&str, String)]) -> Site {
        let root = tempfile::Builder::new()
            .prefix("dbuild-fence-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let work = tempfile::Builder::new()
            .prefix("dbuild-fence-work-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::create_dir_all(root.path().join("b1")).unwrap();
        write_specs(&root.path().join("b1"), specs);
        Site { root, work }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("b1")
    }

    fn work(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.work(name).with_extension("log")).unwrap_or_default()
    }

    /// Every file in stage/RPMS and stage/SRPMS with its sha256.
    fn stage(&self) -> BTreeMap<String, String> {
        let dir = self.dir();
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.join("stage/RPMS"), dir.join("stage/SRPMS")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&dir).unwrap().display().to_string();
                    out.insert(rel, sha256(&e.path()));
                }
            }
        }
        out
    }

    fn incoming(&self, lease: &str) -> PathBuf {
        self.dir().join("incoming").join(lease)
    }

    /// A scheduler and one worker `w` that builds everything and exits 0.
    fn build_with_one_worker(&self, base: &Path) -> Sched {
        let sched = start_scheduler(&self.dir(), &[]);
        let mut w = worker(&sched, &self.dir(), &self.work("w"), base, &["--name", "w"]);
        let status = wait_exit(&mut w, Duration::from_secs(120));
        assert!(status.success(), "worker: {status}\n{}", self.log("w"));
        sched
    }
}

/// Waits (a minute at most) until `dir` is gone.
async fn wait_gone(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir.exists() {
        assert!(Instant::now() < deadline, "{} stays", dir.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// `GET /v1/rpms`: accepted path -> sha256.
async fn accepted(sched: &Sched) -> BTreeMap<String, String> {
    let page = get(sched, "/v1/rpms").await;
    assert!(page["next_after"].is_null(), "{page}");
    page["rpms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_until(sched: &Sched, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = get(sched, path).await;
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The lease ids of a package's history events of `kind`.
fn leases_of(detail: &Value, kind: &str) -> Vec<String> {
    detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .filter_map(|e| e["lease_id"].as_str().map(String::from))
        .collect()
}

/// `dbuild verify` with `args`: (exit code, stdout).
fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(support::workspace_bin::workspace_bin(
        "dbuild-launcher",
        "dbuild",
    ))
    .arg("verify")
    .args(args)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "dbuild verify {args:?}: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

fn verify_running(sched: &Sched, site: &Site) -> (i32, String) {
    let dir = site.dir();
    verify(&[
        "--scheduler",
        &sched.url,
        "--build-dir",
        dir.to_str().unwrap(),
    ])
}

fn verify_stopped(site: &Site) -> (i32, String) {
    let state = site.root.path().to_str().unwrap().to_string();
    verify(&["--state-dir", &state, "--build-id", "b1"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_never_changes_what_was_accepted() {
    let base = support::base_root().await;
    let site = Site::new(&[("frozen", slow_spec("frozen", 4))]);
    let sched = start_scheduler(&site.dir(), &[]);
    let mut a = worker(
        &sched,
        &site.dir(),
        &site.work("a"),
        &base,
        &["--name", "a", "--no-prefetch"],
    );
    wait_for_log(
        &site.dir().join("stage/LOGS/frozen/1.log"),
        "working",
        Duration::from_secs(120),
    );
    // A is frozen mid-build, past its lease's TTL (3 s): B gets the package.
    signal(a.id(), "-STOP");
    let mut b = worker(
        &sched,
        &site.dir(),
        &site.work("b"),
        &base,
        &["--name", "b", "--no-prefetch"],
    );
    let detail = wait_until(&sched, "/v1/packages/frozen", "B's build accepted", |d| {
        d["info"]["state"] == "succeeded"
    })
    .await;
    let status = wait_exit(&mut b, Duration::from_secs(120));
    assert!(status.success(), "worker b: {status}\n{}", site.log("b"));
    let shown = site.stage();
    let listed = accepted(&sched).await;
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown, listed, "stage/ is what /v1/rpms says");
    let leased = leases_of(&detail, "leased");
    assert_eq!(leased.len(), 2, "{detail}");
    assert_eq!(
        leases_of(&detail, "succeeded"),
        [leased[1].clone()],
        "B's lease was accepted"
    );

    // A thaws, finishes, publishes into its own lease's directory and gets its 409.
    signal(a.id(), "-CONT");
    let status = wait_exit(&mut a, Duration::from_secs(120));
    let alog = site.log("a");
    assert!(status.success(), "worker a: {status}\n{alog}");
    assert!(alog.contains("409"), "A heard its lease was gone: {alog}");
    eprintln!(
        "worker a: {}",
        if alog.contains("report rejected") {
            "its report got 409"
        } else {
            "its heartbeat got 409 first: build discarded"
        }
    );
    assert_eq!(site.stage(), shown, "nothing in stage/ changed");
    assert_eq!(accepted(&sched).await, listed);
    let a_dir = site.incoming(&leased[0]);
    wait_gone(&a_dir).await;
    let (code, out) = verify_running(&sched, &site);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("stage/ holds exactly what the scheduler accepted (3 files)"),
        "{out}"
    );
    support::assert_clean(&site.work("a"));
    support::assert_clean(&site.work("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_report_changes_nothing() {
    let base = support::base_root().await;
    let site = Site::new(&[("twice", slow_spec("twice", 0))]);
    let sched = site.build_with_one_worker(&base);
    let wlog = site.log("w");
    let shown = site.stage();
    let listed = accepted(&sched).await;
    assert_eq!(shown, listed);
    // The same body again, as a worker retrying its report would send it;
    // and it published again (other bytes) first.
    let worker_id = wlog
        .split("worker_id=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let detail = get(&sched, "/v1/packages/twice").await;
    let lease = leases_of(&detail, "succeeded").pop().unwrap();
    let page = get(&sched, "/v1/rpms").await;
    for r in page["rpms"].as_array().unwrap() {
        let stage = r["path"].as_str().unwrap();
        let again = site
            .dir()
            .join(stage.replacen("stage/", &format!("incoming/{lease}/"), 1));
        std::fs::create_dir_all(again.parent().unwrap()).unwrap();
        std::fs::write(&again, b"a second publication").unwrap();
    }
    let rpms: Vec<Value> = page["rpms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"path": r["path"], "sha256": r["sha256"], "size": r["size"]}))
        .collect();
    let body = json!({"worker_id": worker_id, "duration_secs": 1.0, "outcome": {"status": "success", "rpms": rpms}});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/leases/{lease}/report", sched.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let answer = resp.text().await.unwrap();
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("no longer live"), "{answer}");
    assert_eq!(site.stage(), shown);
    assert_eq!(accepted(&sched).await, listed);
    let (code, out) = verify_running(&sched, &site);
    assert_eq!(code, 0, "{out}");
    support::assert_clean(&site.work("w"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_publish_and_report_shows_nothing() {
    let base = support::base_root().await;
    let site = Site::new(&[("cut", slow_spec("cut", 0))]);
    let sched = start_scheduler(&site.dir(), &[]);
    // The test hook: A publishes, then waits forever instead of reporting.
    let mut a = worker_with_env(
        &sched,
        &site.dir(),
        &site.work("w"),
        &base,
        &["--name", "a", "--no-prefetch"],
        &[("DBUILD_TEST_PAUSE_AFTER_PUBLISH", "1")],
    );
    wait_for_log(
        &site.work("w").with_extension("log"),
        "test hook DBUILD_TEST_PAUSE_AFTER_PUBLISH",
        Duration::from_secs(120),
    );
    let detail = get(&sched, "/v1/packages/cut").await;
    let lease_a = leases_of(&detail, "leased").pop().unwrap();
    let published: Vec<_> = walk(&site.incoming(&lease_a));
    assert_eq!(published.len(), 3, "A published everything: {published:?}");
    assert!(site.stage().is_empty(), "nothing visible before a report");
    a.kill().unwrap();
    a.wait().unwrap();
    // Its lease expires; B (same work dir: it cleans up after A) builds the package again.
    let mut b = worker(
        &sched,
        &site.dir(),
        &site.work("w"),
        &base,
        &["--name", "b"],
    );
    let status = wait_exit(&mut b, Duration::from_secs(120));
    assert!(status.success(), "worker b: {status}\n{}", site.log("w"));
    let detail = get(&sched, "/v1/packages/cut").await;
    assert_eq!(detail["info"]["state"], "succeeded", "{detail}");
    let accepted_lease = leases_of(&detail, "succeeded").pop().unwrap();
    assert_ne!(accepted_lease, lease_a);
    let shown = site.stage();
    assert_eq!(shown, accepted(&sched).await);
    for (path, sha) in &published {
        assert!(
            !shown.values().any(|s| s == sha),
            "A's {} is shown",
            path.display()
        );
    }
    // A's directory is swept a few lease TTLs after its lease expired.
    let a_dir = site.incoming(&lease_a);
    wait_gone(&a_dir).await;
    let (code, out) = verify_running(&sched, &site);
    assert_eq!(code, 0, "{out}");
    support::assert_clean(&site.work("w"));
}

/// Files under `dir`, with their sha256.
fn walk(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), sha256(&e.path())));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_killed_between_commit_and_promotion_shows_the_files_after_restart() {
    let base = support::base_root().await;
    let site = Site::new(&[("kept", slow_spec("kept", 0))]);
    // Something in the way of the promotion (a directory where the RPM goes)
    // stops it after the commit, deterministically; then the scheduler dies.
    let blocker = site.dir().join("stage/RPMS/noarch/kept-1-1.noarch.rpm");
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let sched = start_scheduler(&site.dir(), &[]);
    let mut w = worker(
        &sched,
        &site.dir(),
        &site.work("w"),
        &base,
        &["--name", "w"],
    );
    let detail = wait_until(&sched, "/v1/packages/kept", "the acceptance", |d| {
        d["why"]
            .as_str()
            .unwrap_or_default()
            .contains("last attempt failed")
    })
    .await;
    assert_eq!(
        detail["info"]["state"], "building",
        "not released before its files are visible"
    );
    let lease = leases_of(&detail, "succeeded").pop().unwrap();
    let recorded = accepted(&sched).await;
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    assert!(site.incoming(&lease).is_dir());
    signal(w.id(), "-TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(60)).success());
    sched.kill();
    std::fs::remove_dir_all(&blocker).unwrap();
    assert!(site.stage().is_empty());

    // Restarted on the same state: the files become visible as recorded.
    let sched = start_scheduler(&site.dir(), &[]);
    assert_eq!(site.stage(), recorded);
    assert!(!site.incoming(&lease).exists());
    let summary = get(&sched, "/v1/summary").await;
    assert_eq!(summary["outcome"], "succeeded", "{summary}");
    let (code, out) = verify_running(&sched, &site);
    assert_eq!(code, 0, "{out}");
    // And with no scheduler running, from the state directory.
    sched.kill();
    let (code, out) = verify_stopped(&site);
    assert_eq!(code, 0, "{out}");
    support::assert_clean(&site.work("w"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_tampered_deleted_and_planted_files() {
    let base = support::base_root().await;
    let site = Site::new(&[("checked", slow_spec("checked", 0))]);
    let sched = site.build_with_one_worker(&base);
    assert_eq!(verify_running(&sched, &site).0, 0);
    let dir = site.dir();
    let tampered = "stage/RPMS/noarch/checked-1-1.noarch.rpm";
    let deleted = "stage/RPMS/noarch/checked-extra-1-1.noarch.rpm";
    let planted = "stage/SRPMS/.planted.src.rpm.tmp-1";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(tampered))
        .unwrap();
    std::io::Write::write_all(&mut f, b"x").unwrap();
    std::fs::remove_file(dir.join(deleted)).unwrap();
    std::fs::write(dir.join(planted), b"planted").unwrap();
    for (code, out) in [verify_running(&sched, &site), {
        sched.kill();
        verify_stopped(&site)
    }] {
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("sha256 mismatch: {tampered} (package checked)")),
            "{out}"
        );
        assert!(
            out.contains(&format!("missing: {deleted} (package checked)")),
            "{out}"
        );
        assert!(out.contains(&format!("not accepted: {planted}")), "{out}");
        assert!(out.contains("3 problem(s)"), "{out}");
    }
    support::assert_clean(&site.work("w"));
}
