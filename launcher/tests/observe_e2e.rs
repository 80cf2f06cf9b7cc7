//! Observability end to end (issue 14), with real components: `dbuild
//! local` builds the examples plus a slow and a broken package with two
//! workers while a real Prometheus (Debian's package, 1 s scrapes, the
//! targets file `dbuild local` writes) scrapes the scheduler and the
//! workers, and headless Chromium (Debian's package) loads the status page.
//! Then: the series exist and moved; every panel query of the Grafana
//! dashboard answers with data; the page's counts moved and matched
//! `/v1/summary`, its link to the failed package's log leads to the log;
//! `dbuild status` and `dbuild logs --follow` from the state directory
//! while it runs and after. A second test loads the page of a scheduler on
//! the Photon corpus (1077 packages) and checks the graph is drawn.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::copy_tree;
use support::deadline::output_within;
use support::observe::{shown, Browser, Prometheus};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn write_spec(specs: &Path, name: &str, build: &str) {
    let dir = specs.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.spec")),
        format!(
            "Name: {name}\nVersion: 1\nRelease: 1\nSummary: observability test\nLicense: MIT\nBuildArch: noarch\n\
             %description\nTest package.\n%build\n{build}\n%files\n"
        ),
    )
    .unwrap();
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn dbuild(args: &[&str], state: &Path) -> (i32, String, String) {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_dbuild"))
            .args(args)
            .arg("--state-dir")
            .arg(state),
        Duration::from_secs(120),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Where the test leaves its screenshots.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("observe-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_build_seen_by_prometheus_the_dashboard_the_page_and_the_terminal() {
    // It runs a runtime of its own: off this one.
    let root = tokio::task::spawn_blocking(|| support::builder_root(&[]))
        .await
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("dbuild-observe-e2e-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let specs = tmp.path().join("SPECS");
    copy_tree(&repo().join("examples/SPECS"), &specs);
    write_spec(
        &specs,
        "observe-slow",
        "for i in $(seq 1 24); do echo \"slow step $i\"; sleep 1; done",
    );
    write_spec(
        &specs,
        "observe-broken",
        "echo 'observe-broken: deliberate failure'; exit 1",
    );
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let prom = Prometheus::start(tmp.path(), &state.join("prometheus-targets.json")).await;
    let browser = Browser::new(tmp.path());

    let started = unix_now();
    let mut local = support::dbuild_local_command(&specs, &state, &root)
        .args(["--workers", "2"])
        .stdout(Stdio::from(
            std::fs::File::create(tmp.path().join("local.out")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("local.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let local_log = || {
        std::fs::read_to_string(tmp.path().join("local.err")).unwrap_or_default()
            + &std::fs::read_to_string(tmp.path().join("local.out")).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let url = loop {
        if let Ok(u) = std::fs::read_to_string(state.join("scheduler.url")) {
            break u.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no scheduler.url:\n{}",
            local_log()
        );
        assert!(
            local.try_wait().unwrap().is_none(),
            "dbuild local ended early:\n{}",
            local_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // `dbuild logs --follow` on the slow package, from the state directory.
    let mut follow_cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
    follow_cmd
        .args(["logs", "observe-slow", "--follow", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut follow_child = None;

    let mut page_done = Vec::new();
    let mut last_running = started;
    let mut status_running = None;
    let mut log_page = None;
    let mut screenshot = None;
    while local.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "dbuild local did not end:\n{}",
            local_log()
        );
        let dom = browser.dom(&format!("{url}/"));
        let Ok(resp) = reqwest::get(format!("{url}/v1/summary")).await else {
            break; // the build ended and its scheduler stopped
        };
        let Ok(summary) = resp.json::<Value>().await else {
            break;
        };
        if summary["finished"] == true {
            break;
        }
        last_running = unix_now();
        let total = shown(&dom, "count-total");
        let done = shown(&dom, "count-done");
        let summary_done = summary["counts"]["succeeded"].as_u64().unwrap()
            + summary["counts"]["up-to-date"].as_u64().unwrap();
        assert_eq!(
            total,
            summary["packages"].as_u64(),
            "page total against /v1/summary"
        );
        let done = done.expect("the page shows a done count");
        assert!(
            done <= summary_done,
            "the page ({done}) is ahead of /v1/summary ({summary_done})"
        );
        page_done.push(done);
        let building = summary["counts"]["building"].as_u64().unwrap();
        if follow_child.is_none() && dom.contains("observe-slow") && building > 0 {
            let building_list = get_json(&format!("{url}/v1/packages?state=building")).await;
            if building_list.to_string().contains("observe-slow") {
                follow_child = Some(follow_cmd.spawn().unwrap());
            }
        }
        if status_running.is_none() && building > 0 {
            status_running = Some(dbuild(&["status"], &state));
        }
        // Click through: the failed package's log link, followed.
        if log_page.is_none() {
            if let Some(at) = dom.find("href=\"/v1/packages/observe-broken/log?attempt=1\"") {
                let href = &dom[at + 6..];
                let href = &href[..href.find('"').unwrap()];
                log_page = Some(browser.dom(&format!("{url}{href}")));
            }
        }
        if screenshot.is_none() && building > 0 && log_page.is_some() {
            let png = artifacts().join("status-page.png");
            browser.screenshot(&format!("{url}/"), &png, "1400,1500");
            screenshot = Some(png);
        }
    }
    let status = local.wait().unwrap();
    let out = local_log();
    assert_eq!(
        status.code(),
        Some(1),
        "the broken package fails the build:\n{out}"
    );
    assert!(out.contains("observe-broken"), "{out}");
    // Off a terminal nobody writes colour codes: dbuild, the scheduler, the workers.
    for log in ["scheduler.log", "local-1.log", "local-2.log"] {
        let text = std::fs::read_to_string(state.join("logs").join(log)).unwrap();
        assert!(!text.contains('\u{1b}'), "colour codes in {log}:\n{text}");
    }
    assert!(
        !out.contains('\u{1b}'),
        "colour codes in dbuild local's output:\n{out}"
    );

    // The page's counts moved while the build ran.
    page_done.dedup();
    assert!(
        page_done.len() >= 2,
        "the page's done count never moved: {page_done:?}"
    );
    let log_page = log_page.expect("the page linked the failed package's log");
    assert!(
        log_page.contains("observe-broken: deliberate failure"),
        "{log_page}"
    );
    let png = screenshot.expect("a screenshot during the build");
    eprintln!("status page screenshot: {}", png.display());

    // The terminal: while it ran (the running scheduler) and after (the state file).
    let (code, text, err) = status_running.expect("dbuild status while building");
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(&format!("dbuild status: {url}")) && text.contains("building: "),
        "{text}"
    );
    let follow_out = output_of(follow_child.expect("the slow package was seen building"));
    assert!(
        follow_out.contains("slow step 24"),
        "followed to the end:\n{follow_out}"
    );
    let (code, text, err) = dbuild(&["status"], &state);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("no scheduler runs") && text.contains("failed: observe-broken"),
        "{text}"
    );
    let (code, text, _) = dbuild(&["logs", "observe-broken"], &state);
    assert_eq!(code, 0);
    assert!(text.contains("deliberate failure"), "{text}");
    let (code, _, err) = dbuild(&["logs", "no-such-package"], &state);
    assert_eq!(code, 1, "{err}");

    // Prometheus saw the series move, from the scheduler and both workers.
    let at = last_running;
    let succeeded = prom
        .range("sum(dbuild_packages{state=\"succeeded\"})", started, at)
        .await;
    assert!(
        succeeded.len() >= 3 && succeeded.first() < succeeded.last(),
        "dbuild_packages{{state=\"succeeded\"}} over the build: {succeeded:?}"
    );
    let up = prom.query("sum by (component) (up)", at).await.unwrap();
    let up_of = |c: &str| {
        up.iter()
            .find(|s| s["metric"]["component"] == c)
            .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
    };
    assert_eq!(
        (up_of("scheduler"), up_of("worker")),
        (Some(1.0), Some(2.0)),
        "{up:?}"
    );
    for expr in [
        "dbuild_builds_finished_total{result=\"failure\",failure_kind=\"package\"}",
        "sum(dbuild_worker_builds_total{result=\"success\"})",
        "dbuild_queue_wait_seconds_count",
        "dbuild_state_commit_seconds_count",
    ] {
        let r = prom.query(expr, at).await.unwrap();
        let v: f64 = r
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
            .unwrap_or(0.0);
        assert!(v >= 1.0, "{expr} at the end of the build: {r:?}");
    }

    // Every panel of the dashboard, its variables substituted, answers with data.
    let dashboard = dashboard();
    let mut failures = Vec::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "30s")
                .replace("$job", ".+");
            queries += 1;
            match prom.query(&expr, at).await {
                Ok(r) if !r.is_empty() => {}
                Ok(_) => failures.push(format!("{}: no data: {expr}", panel["title"])),
                Err(e) => failures.push(format!("{}: {e}: {expr}", panel["title"])),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {queries} queries:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn output_of(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn dashboard() -> Value {
    let path = repo().join("k8s/grafana-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn the_dashboard_has_the_shape_grafana_imports() {
    let d = dashboard();
    assert!(d["title"].is_string() && d["uid"].is_string());
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let vars = d["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(ds["query"], "prometheus");
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut ids = std::collections::BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("an id")),
            "{title}: duplicate id"
        );
        assert!(p["type"].is_string(), "{title}");
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        let x_end = p["gridPos"]["x"].as_u64().unwrap() + p["gridPos"]["w"].as_u64().unwrap();
        assert!(x_end <= 24, "{title}: wider than the grid");
        assert_eq!(
            p["datasource"]["uid"], ds_ref,
            "{title}: data source by variable"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}"
            );
            assert!(t["refId"].is_string(), "{title}");
        }
    }
    // What the issue asks the dashboard to show.
    let all: String = panels.iter().map(|p| p.to_string()).collect();
    for metric in [
        "dbuild_packages",
        "dbuild_builds_finished_total",
        "dbuild_queue_wait_seconds",
        "dbuild_build_duration_seconds",
        "dbuild_build_phase_seconds",
        "dbuild_worker_heartbeat_age_seconds",
        "dbuild_workers",
        "dbuild_time_left_estimate_seconds",
    ] {
        assert!(all.contains(metric), "no panel shows {metric}");
    }
}

#[test]
fn the_page_draws_the_photon_graph_by_levels() {
    let corpus = dbuild_common::corpus::photon_or_panic();
    let tmp = tempfile::tempdir().unwrap();
    let build_dir = tmp.path().join("b");
    std::fs::create_dir_all(&build_dir).unwrap();
    let mut sched = Command::new(support::scheduler_bin())
        .arg("--build-dir")
        .arg(&build_dir)
        .arg("--specs")
        .arg(corpus.join("SPECS"))
        .args(["--define", "dist .ph5", "--listen", "127.0.0.1:0"])
        .arg("--weights")
        .arg(corpus.join("data/packageWeights.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sched.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let browser = Browser::new(tmp.path());
    let dom = browser.dom(&format!("{url}/"));
    let png = artifacts().join("status-page-photon.png");
    browser.screenshot(&format!("{url}/"), &png, "1400,2200");
    let _ = sched.kill();
    let _ = sched.wait();
    let total = shown(&dom, "count-total").unwrap();
    assert!(total > 1000, "Photon has more than 1000 packages: {total}");
    // One square per package, in rows by level; the critical path listed.
    let squares = dom.matches("data-name=").count() as u64;
    assert_eq!(squares, total, "one square per package");
    assert!(dom.contains(">level 0 ("), "levels are labelled");
    assert!(
        dom.contains("critical path: ") && dom.contains(" → "),
        "the critical path is listed"
    );
    eprintln!("Photon status page screenshot: {}", png.display());
}
