//! SIGKILL the scheduler repeatedly while concurrent workers build a graph:
//! every acknowledged result survives, no package is accepted twice, and the
//! build completes; with either `--state-sync` (a killed process loses
//! nothing the OS was handed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{write_plan, Sched, TOKEN};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long any one wait of this test may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// `fut`, or a failure naming what was awaited when it takes longer than [`DEADLINE`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("stalled: {what} took longer than {DEADLINE:?}"))
}

async fn call(http: &reqwest::Client, url: &str, body: &Value) -> Option<(u16, Value)> {
    let resp = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let st = resp.status().as_u16();
    let v = resp.json().await.ok()?;
    Some((st, v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkill_loses_nothing() {
    sigkills_lose_nothing(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkill_loses_nothing_without_fsync() {
    sigkills_lose_nothing(&["--state-sync", "normal"]).await;
}

async fn sigkills_lose_nothing(state_sync: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    // 60 packages, each needing up to two earlier ones (deterministic).
    let names: Vec<String> = (0..60).map(|i| format!("p{i:02}")).collect();
    let needs: Vec<Vec<&str>> = (0..60usize)
        .map(|i| {
            let mut v = Vec::new();
            if i >= 3 {
                v.push(names[(i * 7) % i].as_str());
            }
            if i >= 10 && (i * 13) % i != (i * 7) % i {
                v.push(names[(i * 13) % i].as_str());
            }
            v
        })
        .collect();
    let pkgs: Vec<(&str, &[&str], Option<f64>)> = names
        .iter()
        .zip(&needs)
        .map(|(n, d)| (n.as_str(), d.as_slice(), None))
        .collect();
    write_plan(tmp.path(), &pkgs);
    let args: Vec<&str> = ["--lease-ttl", "800ms", "--max-lease-losses", "100"]
        .iter()
        .chain(state_sync)
        .copied()
        .collect();
    let sched = Sched::start(tmp.path(), &args);
    let url = Arc::new(RwLock::new(sched.url.clone()));
    let acked: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(within("registering a worker", sched.register(&format!("w{i}"), 1)).await);
    }
    let mut tasks = Vec::new();
    for id in ids {
        let (url, acked) = (url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until {
                let base = url.read().unwrap().clone();
                let Some((st, r)) = call(&http, &format!("{base}/v1/lease"), &json!({"worker_id": id, "wait_secs": 1})).await else {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    continue;
                };
                if st == 409 {
                    // An orphaned lease (granted, answer lost in a crash) holds the slot until it expires.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                assert_eq!(st, 200, "{r}");
                if r["finished"] == true {
                    return;
                }
                let Some(lease) = r["lease"].as_object().cloned() else { continue };
                let lid = lease["lease_id"].as_str().unwrap().to_string();
                let pkg = lease["package"].as_str().unwrap().to_string();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let body = json!({"worker_id": id, "duration_secs": 0.005, "outcome": {"status": "success", "rpms": []}});
                // Retry the report across crashes until it gets an answer.
                for _ in 0..100 {
                    let base = url.read().unwrap().clone();
                    match call(&http, &format!("{base}/v1/leases/{lid}/report"), &body).await {
                        Some((200, _)) => {
                            *acked.lock().unwrap().entry(pkg.clone()).or_default() += 1;
                            break;
                        }
                        Some((409, _)) => break,
                        Some((st, v)) => panic!("report {pkg}: {st} {v}"),
                        None => tokio::time::sleep(Duration::from_millis(30)).await,
                    }
                }
            }
        }));
    }
    // Kill three times as results come in, checking that acknowledged results survived each time.
    let mut sched = Some(sched);
    for target in [12usize, 25, 40] {
        within(&format!("{target} acknowledged results"), async {
            while acked.lock().unwrap().len() < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        sched.take().unwrap().kill();
        let before: Vec<String> = acked.lock().unwrap().keys().cloned().collect();
        let s = Sched::start(tmp.path(), &args);
        let (_, list) = within("the package list", s.get("/v1/packages?state=succeeded")).await;
        let done: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in &before {
            assert!(
                done.contains(&p.as_str()),
                "acknowledged {p} lost after SIGKILL"
            );
        }
        *url.write().unwrap() = s.url.clone();
        sched = Some(s);
    }
    for t in tasks {
        within("a worker's loop", t).await.unwrap();
    }
    let s = sched.unwrap();
    let sum = within("the summary", s.summary()).await;
    assert_eq!(sum["finished"], true, "{sum}");
    assert_eq!(sum["counts"]["succeeded"], 60, "{sum}");
    let acked = acked.lock().unwrap();
    // A report committed just before a SIGKILL is accepted though its
    // worker never heard so; its retry then gets 409 (already reported).
    assert!(acked.len() >= 40 && acked.len() <= 60, "{acked:?}");
    assert!(
        acked.values().all(|&n| n == 1),
        "a package was accepted twice: {acked:?}"
    );
}
