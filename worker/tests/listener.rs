//! The worker's `/metrics` on its `--listen` listener (clean under
//! `promtool check metrics`, a build counted while the next one runs), and
//! a worker that ends its run shown gone by the scheduler at once (it says
//! it leaves). The probes are tested in `scheduler.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};
use support::cluster::{get, listen_url, setup, start_scheduler, wait_exit, worker_at};
use support::dep_spec;
use support::promtool::promtool_check;

async fn fetch(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_listener_and_a_finished_worker_leaves() {
    let base = support::base_root().await;
    // `slow` builds for a few seconds after `dep`: time to scrape dep's count.
    let slow =
        "Name: slow\nVersion: 1\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
                BuildRequires: dep\n%description\nd\n%build\nsleep 4\n%files\n";
    let (share, work) = setup(&[
        ("dep", dep_spec("dep", "/usr/share/dep/file")),
        ("slow", slow.to_string()),
    ]);
    let sched = start_scheduler(share.path(), &[]);
    let mut w = worker_at(
        &sched.url,
        share.path(),
        work.path(),
        &base,
        &["--listen", "127.0.0.1:0"],
    );
    let health = listen_url(&mut w);
    let first = fetch(&format!("{health}/metrics")).await;
    assert_eq!(promtool_check(&first).trim(), "", "{first}");
    // Scraped while `slow` builds: `dep` is counted.
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while !last.contains("dbuild_worker_builds_total{failure_kind=\"none\",result=\"success\"} 1") {
        assert!(
            Instant::now() < deadline,
            "the build was never counted:\n{last}"
        );
        last = fetch(&format!("{health}/metrics")).await;
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
