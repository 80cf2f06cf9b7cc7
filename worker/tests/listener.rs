//! The worker's `--listen` listener: probes (alive but not ready while its
//! registration hangs, ready once registered) and `/metrics` (clean under
//! `promtool check metrics`, the build counted), and a worker that ends
//! its run shown gone by the scheduler at once (it says it leaves).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{get, setup, wait_exit, TOKEN};
use support::dep_spec;
use support::promtool::promtool_check;

/// A worker of scheduler `url` listening on a free port; stderr goes to `<work>.log`.
fn worker_at(url: &str, build_dir: &Path, work: &Path, base: &Path) -> Child {
    std::fs::write(build_dir.join("token"), TOKEN).unwrap();
    let log = std::fs::File::create(work.with_extension("log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dbuild-worker"))
        .args(["--scheduler", url, "--wait", "5", "--connect-timeout", "0s"])
        .arg("--token-file")
        .arg(build_dir.join("token"))
        .arg("--share")
        .arg(build_dir)
        .arg("--base-root")
        .arg(base)
        .arg("--work-dir")
        .arg(work)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The address a worker started with `--listen` prints first.
fn listen_url(w: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(w.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("dbuild-worker listening on ")
        .unwrap_or_else(|| panic!("worker printed {line:?}"))
        .to_string()
}

async fn fetch(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_on_the_listener_and_a_finished_worker_leaves() {
    let base = support::base_root().await;
    // `slow` builds for a few seconds after `dep`: time to scrape dep's count.
    let slow =
        "Name: slow\nVersion: 1\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
                BuildRequires: dep\n%description\nd\n%build\nsleep 4\n%files\n";
    let (share, work) = setup(&[
        ("dep", dep_spec("dep", "/usr/share/dep/file")),
        ("slow", slow.to_string()),
    ]);

    // A "scheduler" that accepts and never answers: the worker is alive but
    // not ready; when the connection closes it gives up (exit 1).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let mut w = worker_at(&silent_url, share.path(), work.path(), &base);
    let health = listen_url(&mut w);
    let (held, _) = silent.accept().unwrap();
    assert_eq!(fetch(&format!("{health}/healthz")).await.0, 200);
    assert_eq!(fetch(&format!("{health}/readyz")).await.0, 503);
    let (st, m) = fetch(&format!("{health}/metrics")).await;
    assert_eq!(st, 200);
    assert_eq!(promtool_check(&m).trim(), "", "{m}");
    drop((held, silent));
    let status = wait_exit(&mut w, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "registration failed: exit 1");

    // The real scheduler: ready once registered, the build counted in the
    // metrics, and gone from the scheduler's view once it ends.
    let sched = support::cluster::start_scheduler(share.path(), &[]);
    let mut w = worker_at(&sched.url, share.path(), work.path(), &base);
    let health = listen_url(&mut w);
    let deadline = Instant::now() + Duration::from_secs(60);
    while fetch(&format!("{health}/readyz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Scraped while `slow` builds: `dep` is counted, and a slot is busy.
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while !last.contains("dbuild_worker_builds_total{failure_kind=\"none\",result=\"success\"} 1") {
        assert!(
            Instant::now() < deadline,
            "the build was never counted:\n{last}"
        );
        last = fetch(&format!("{health}/metrics")).await.1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = wait_exit(&mut w, Duration::from_secs(240));
    let wlog = std::fs::read_to_string(work.path().with_extension("log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{wlog}");
    let summary = get(&sched, "/v1/summary").await;
    assert_eq!(summary["outcome"], "succeeded", "{summary}");
    assert_eq!(promtool_check(&last).trim(), "", "{last}");
    for series in [
        "dbuild_worker_phase_seconds_count{phase=\"rpmbuild\"} 1",
        "dbuild_worker_slots 1",
        "dbuild_worker_published_files_total 2",
    ] {
        assert!(last.contains(series), "{series} missing in\n{last}");
    }
    let workers = get(&sched, "/v1/workers").await;
    assert_eq!(
        workers[0]["gone"], true,
        "a worker that ended says so: {workers}"
    );
    assert!(wlog.contains("left the build"), "{wlog}");
    support::assert_clean(work.path());
}
