//! The worker binary against the real scheduler binary: leases, heartbeats,
//! reports, exit 0 when the build is over; SIGTERM hands a running build back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{
    get, listen_url, setup, wait_exit, wait_for_log, worker, worker_at, Sched, TOKEN,
};
use support::dep_spec;

fn start_scheduler(build_dir: &Path) -> Sched {
    support::cluster::start_scheduler(build_dir, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_builds_a_graph_with_two_slots_and_exits_zero() {
    let base = support::base_root().await;
    let consumer = |name: &str| {
        format!(
            "Name: {name}\nVersion: 1\nRelease: 1%{{?dist}}\nSummary: s\nLicense: MIT\nBuildArch: noarch\nBuildRequires: e2edep\n\
             %description\nd\n%build\ngrep -q from-e2edep /usr/share/e2edep/file\nsleep 2\n%files\n"
        )
    };
    let (share, work) = setup(&[
        ("e2edep", dep_spec("e2edep", "/usr/share/e2edep/file")),
        ("e2e-one", consumer("e2e-one")),
        ("e2e-two", consumer("e2e-two")),
    ]);
    let sched = start_scheduler(share.path());
    let mut w = worker(&sched, share.path(), work.path(), &base, &["--slots", "2"]);
    let status = wait_exit(&mut w, Duration::from_secs(240));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    let summary = get(&sched, "/v1/summary").await;
    assert_eq!(summary["outcome"], "succeeded", "{summary}\n{wlog}");
    assert_eq!(summary["packages"], 3);
    let detail = get(&sched, "/v1/packages/e2edep").await;
    let rpms = detail["rpms"].as_array().unwrap();
    assert_eq!(rpms.len(), 2, "{detail}");
    for r in rpms {
        let path = share.path().join(r["path"].as_str().unwrap());
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(&path).unwrap(),
        ));
        assert_eq!(r["sha256"], sha);
    }
    assert!(share.path().join("stage/LOGS/e2e-two/1.log").exists());
    assert!(wlog.contains("overhead_secs"), "{wlog}");
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_running_build_back_and_cleans_up() {
    let base = support::base_root().await;
    let slow = "Name: slow\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\nwhile true; do echo working; sleep 0.5; done\n%files\n";
    let (share, work) = setup(&[("slow", slow.to_string())]);
    let sched = start_scheduler(share.path());
    let mut w = worker(&sched, share.path(), work.path(), &base, &["--grace", "2"]);
    let log = share.path().join("stage/LOGS/slow/1.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("working")
    {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut w, Duration::from_secs(60));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stopping took {:?}",
        t.elapsed()
    );
    let detail = get(&sched, "/v1/packages/slow").await;
    let history = detail["history"].to_string();
    assert!(
        history.contains("handed back")
            || detail["info"]["reason"].to_string().contains("handed back"),
        "{detail}"
    );
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_short_build_finish_within_the_grace_period() {
    let base = support::base_root().await;
    let spec = "Name: brief\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\nfor i in 1 2 3 4 5 6; do echo working; sleep 0.5; done\n%files\n";
    let (share, work) = setup(&[("brief", spec.to_string())]);
    let sched = start_scheduler(share.path());
    let mut w = worker(
        &sched,
        share.path(),
        work.path(),
        &base,
        &["--grace", "120"],
    );
    wait_for_log(
        &share.path().join("stage/LOGS/brief/1.log"),
        "working",
        Duration::from_secs(60),
    );
    let kill = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut w, Duration::from_secs(60));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    let detail = get(&sched, "/v1/packages/brief").await;
    assert_eq!(detail["info"]["state"], "succeeded", "{detail}\n{wlog}");
    assert!(share
        .path()
        .join("stage/RPMS/noarch/brief-1-1.noarch.rpm")
        .exists());
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_kills_the_build_and_discards_it() {
    let base = support::base_root().await;
    let spec = "Name: orphan\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\nfor i in $(seq 1 12); do echo working; sleep 0.5; done\n%files\n";
    let (share, work) = setup(&[("orphan", spec.to_string())]);
    let sched = start_scheduler(share.path());
    let mut w = worker(
        &sched,
        share.path(),
        work.path(),
        &base,
        &["--grace", "0", "--name", "orphan-worker"],
    );
    wait_for_log(
        &share.path().join("stage/LOGS/orphan/1.log"),
        "working",
        Duration::from_secs(60),
    );
    // Someone registers under our name: the scheduler gives our lease up.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/workers", sched.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "orphan-worker", "arch": "x86_64", "slots": 1}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    wait_for_log(
        &work.path().with_extension("log"),
        "output discarded",
        Duration::from_secs(30),
    );
    let kill = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut w, Duration::from_secs(60));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    assert!(wlog.contains("lease lost: killing the build"), "{wlog}");
    assert!(
        !share
            .path()
            .join("stage/RPMS/noarch/orphan-1-1.noarch.rpm")
            .exists(),
        "a lost build must not publish"
    );
    let log1 = std::fs::read_to_string(share.path().join("stage/LOGS/orphan/1.log")).unwrap();
    assert!(log1.contains("cancelled"), "{log1}");
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The repository's example distribution (examples/SPECS, 19 packages: C
/// libraries with -devel, programs linking them, noarch data read at build
/// time, epochs, virtual provides) built by one worker with two slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_distribution_builds() {
    let base = support::base_root().await;
    let (share, work) = setup(&[]);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/SPECS"),
        &share.path().join("SPECS"),
    );
    let sched = start_scheduler(share.path());
    let t = Instant::now();
    let mut w = worker(&sched, share.path(), work.path(), &base, &["--slots", "2"]);
    let status = wait_exit(&mut w, Duration::from_secs(600));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    let summary = get(&sched, "/v1/summary").await;
    eprintln!(
        "example distribution: {:.1}s, {summary}",
        t.elapsed().as_secs_f64()
    );
    assert!(status.success(), "worker: {status}\n{wlog}");
    if summary["outcome"] != "succeeded" {
        let mut logs = String::new();
        for name in summary["failed"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            let log =
                std::fs::read_to_string(share.path().join(format!("stage/LOGS/{name}/1.log")))
                    .unwrap_or_default();
            logs.push_str(&format!(
                "--- {name}\n{}\n",
                log.lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        panic!("{summary}\n{logs}");
    }
    assert_eq!(summary["packages"], 19);
    let srpms = std::fs::read_dir(share.path().join("stage/SRPMS"))
        .unwrap()
        .count();
    assert_eq!(srpms, 19);
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_cleans_up_after_a_sigkill_and_finishes() {
    let base = support::base_root().await;
    let spec = "Name: phoenix\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\nfor i in $(seq 1 8); do echo working; sleep 0.5; done\n%files\n";
    let (share, work) = setup(&[("phoenix", spec.to_string())]);
    let sched = start_scheduler(share.path());
    let mut w = worker(
        &sched,
        share.path(),
        work.path(),
        &base,
        &["--name", "phoenix-worker"],
    );
    wait_for_log(
        &share.path().join("stage/LOGS/phoenix/1.log"),
        "working",
        Duration::from_secs(60),
    );
    w.kill().unwrap(); // SIGKILL: no cleanup at all
    w.wait().unwrap();
    assert!(
        !dbuild_worker::mounts::processes_rooted_under(work.path()).is_empty(),
        "the orphaned build should still run"
    );
    let mut again = worker(
        &sched,
        share.path(),
        work.path(),
        &base,
        &["--name", "phoenix-worker"],
    );
    let status = wait_exit(&mut again, Duration::from_secs(120));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    assert!(
        wlog.contains("removed chroots left by an earlier run"),
        "{wlog}"
    );
    let detail = get(&sched, "/v1/packages/phoenix").await;
    assert_eq!(detail["info"]["state"], "succeeded", "{detail}\n{wlog}");
    assert!(share
        .path()
        .join("stage/RPMS/noarch/phoenix-1-1.noarch.rpm")
        .exists());
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

async fn metrics(sched: &Sched) -> String {
    reqwest::Client::new()
        .get(format!("{}/metrics", sched.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `prep` goes first (`user` needs it); meanwhile the slot prepares `first`,
/// the only ready package, reserved for it; during `first` it prepares
/// `user`, including the BuildRequires install, whose output reaches
/// `user`'s log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_build_is_prepared_during_the_current_one() {
    let base = support::base_root().await;
    let noarch = |name: &str, extra: &str, build: &str| {
        format!("Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n{extra}%description\nd\n%build\n{build}\n%files\n")
    };
    let (share, work) = setup(&[
        ("prep", dep_spec("prep", "/usr/share/prep/file")),
        ("first", noarch("first", "", "sleep 1")),
        (
            "user",
            noarch(
                "user",
                "BuildRequires: prep\n",
                "grep -q from-prep /usr/share/prep/file && sleep 1",
            ),
        ),
    ]);
    let sched = start_scheduler(share.path());
    let mut w = worker(&sched, share.path(), work.path(), &base, &[]);
    let status = wait_exit(&mut w, Duration::from_secs(240));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    let summary = get(&sched, "/v1/summary").await;
    assert_eq!(summary["outcome"], "succeeded", "{summary}\n{wlog}");
    let log = |name: &str| {
        std::fs::read_to_string(share.path().join(format!("stage/LOGS/{name}/1.log"))).unwrap()
    };
    let ahead = "prepared while the slot's previous build ran";
    let (first, user) = (log("first"), log("user"));
    assert!(!log("prep").contains(ahead));
    assert!(first.contains(ahead), "{first}");
    // The install ran before the claim; its output was held and written here.
    assert!(
        user.contains(ahead) && user.contains("installing 1 RPM(s)") && user.contains("prep-1-1"),
        "{user}"
    );
    let m = metrics(&sched).await;
    assert!(
        m.contains("dbuild_reservations_total{outcome=\"claimed\"} 2"),
        "{m}\n{wlog}"
    );
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

/// A reservation another worker takes over is thrown away: the prepared
/// build never writes the share (its log path belongs to the other worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_taken_over_leaves_no_trace() {
    let base = support::base_root().await;
    let spec = |name: &str, build: &str| {
        format!("Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\n{build}\n%files\n")
    };
    let (share, work) = setup(&[
        ("aa-slow", spec("aa-slow", "sleep 8")),
        ("zz-next", spec("zz-next", "true")),
    ]);
    let sched = start_scheduler(share.path());
    let mut w = worker(&sched, share.path(), work.path(), &base, &[]);
    // The real worker builds one and reserves the other.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !metrics(&sched)
        .await
        .contains("dbuild_reservations_total{outcome=\"granted\"} 1")
    {
        assert!(Instant::now() < deadline, "no reservation was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another worker asks: the reserved package is all there is, so it takes it over.
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", sched.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let reg: serde_json::Value = post(
        "/v1/workers",
        serde_json::json!({"name": "thief", "arch": "x86_64", "slots": 1}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let thief = reg["worker_id"].as_str().unwrap().to_string();
    let got: serde_json::Value = post(
        "/v1/lease",
        serde_json::json!({"worker_id": thief, "wait_secs": 0}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let taken = got["lease"]["package"].as_str().unwrap().to_string();
    let other_log = share.path().join(format!("stage/LOGS/{taken}/1.log"));
    // It fails it at once, without a log; the real worker must not have written one either.
    let id = got["lease"]["lease_id"].as_str().unwrap();
    let report = serde_json::json!({"worker_id": thief, "duration_secs": 0.1, "outcome": {"status": "failure", "reason": "thief gives up"}});
    assert!(post(&format!("/v1/leases/{id}/report"), report)
        .await
        .unwrap()
        .status()
        .is_success());
    let status = wait_exit(&mut w, Duration::from_secs(120));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    assert!(
        !other_log.exists(),
        "the discarded prepared build wrote {}",
        other_log.display()
    );
    let m = metrics(&sched).await;
    assert!(
        m.contains("dbuild_reservations_total{outcome=\"taken_over\"} 1"),
        "{m}\n{wlog}"
    );
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_listener_reports_liveness_and_registration() {
    let base = support::base_root().await;
    let (share, work) = setup(&[("dep", dep_spec("dep", "/usr/share/dep/file"))]);

    // A "scheduler" that accepts and never answers: registration hangs, so the
    // worker is alive but not ready; when the connection closes it gives up (exit 1).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let mut w = worker_at(
        &silent_url,
        share.path(),
        work.path(),
        &base,
        &["--listen", "127.0.0.1:0", "--connect-timeout", "2s"],
    );
    let health = listen_url(&mut w);
    let (held, _) = silent.accept().unwrap();
    assert_eq!(status_of(&format!("{health}/healthz")).await, 200);
    assert_eq!(status_of(&format!("{health}/readyz")).await, 503);
    // /metrics is served from the start (see listener.rs for its content).
    assert_eq!(status_of(&format!("{health}/metrics")).await, 200);
    drop((held, silent));
    let status = wait_exit(&mut w, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "registration failed: exit 1");

    // The real scheduler: ready once registered, and the build goes on.
    let sched = start_scheduler(share.path());
    // Its stdout piped: the line `--listen` prints.
    let mut w = worker_at(
        &sched.url,
        share.path(),
        work.path(),
        &base,
        &["--listen", "127.0.0.1:0"],
    );
    let health = listen_url(&mut w);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&format!("{health}/readyz")).await != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = wait_exit(&mut w, Duration::from_secs(240));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    assert_eq!(get(&sched, "/v1/summary").await["outcome"], "succeeded");
    support::assert_clean(work.path());
    let _ = std::fs::remove_file(work.path().with_extension("log"));
}
