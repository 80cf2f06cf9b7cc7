//! Loopback benchmark: the real dbuild-scheduler binary serving the Photon
//! 5.0 graph to many concurrent simulated workers (lease, heartbeat, one RPM
//! written to the lease's incoming directory, report; the scheduler moves it
//! into stage/), with state committed durably to SQLite, against the same
//! loop on an in-memory database. Prints both and their ratio.
//!
//! `cargo bench -p dbuild-scheduler --bench loopback` (release), or quicker
//! and slower `cargo bench -p dbuild-scheduler --bench loopback --profile dev`.
//! Environment: DBUILD_BENCH_SPECS (default: the Photon 5.0 corpus, `DBUILD_CORPUS`),
//! DBUILD_BENCH_WORKERS (default 32); the build directories are made under
//! TMPDIR (default /tmp).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn corpus() -> PathBuf {
    if let Ok(p) = std::env::var("DBUILD_BENCH_SPECS") {
        return PathBuf::from(p);
    }
    dbuild_common::corpus::photon_specs()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, specs: &Path, memory: bool) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild-scheduler"));
    cmd.arg("--build-dir").arg(dir).arg("--specs").arg(specs);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--token",
        TOKEN,
        "--define",
        "dist .ph5",
        "--lease-ttl",
        "60s",
    ]);
    if memory {
        cmd.arg("--memory-state");
    }
    cmd.env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("dbuild-scheduler listening on ")
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    Server {
        url: url.to_string(),
        child,
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let resp = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

async fn worker(http: reqwest::Client, base: String, name: String, dir: PathBuf) -> usize {
    let reg = post(
        &http,
        &format!("{base}/v1/workers"),
        json!({"name": name, "arch": "x86_64", "slots": 1}),
    )
    .await;
    let id = reg["worker_id"].as_str().unwrap().to_string();
    let mut done = 0;
    loop {
        let r = post(
            &http,
            &format!("{base}/v1/lease"),
            json!({"worker_id": id, "wait_secs": 10}),
        )
        .await;
        if r["finished"] == true {
            return done;
        }
        let Some(lease) = r["lease"].as_object() else {
            continue;
        };
        let lid = lease["lease_id"].as_str().unwrap().to_string();
        let pkg = lease["package"].as_str().unwrap();
        post(
            &http,
            &format!("{base}/v1/leases/{lid}/heartbeat"),
            json!({"worker_id": id}),
        )
        .await;
        // What a worker does before it reports: the file goes to the lease's incoming directory.
        let file = format!("{pkg}-1.0-1.ph5.x86_64.rpm");
        let incoming = dir.join(format!("incoming/{lid}/RPMS/x86_64"));
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::write(incoming.join(&file), pkg.as_bytes()).unwrap();
        let rpm = format!("stage/RPMS/x86_64/{file}");
        let body = json!({"worker_id": id, "duration_secs": 0.01,
            "outcome": {"status": "success", "rpms": [{"path": rpm, "sha256": "0".repeat(64)}]}});
        post(&http, &format!("{base}/v1/leases/{lid}/report"), body).await;
        done += 1;
    }
}

/// A sample of the scheduler's Prometheus text: (sum, count).
fn histogram(metrics: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_{suffix} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count"))
}

/// One full build: packages built, seconds, and the scheduler's mean time
/// to move an accepted build's file into stage/ (its `dbuild_promotion_seconds`).
struct Run {
    built: usize,
    secs: f64,
    promotion_ms: f64,
}

/// Runs one full build.
async fn run(specs: &Path, memory: bool, workers: usize) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(tmp.path(), specs, memory);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(workers * 2)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            tokio::spawn(worker(
                http.clone(),
                server.url.clone(),
                format!("bench-{i}"),
                tmp.path().to_path_buf(),
            ))
        })
        .collect();
    let mut built = 0;
    for t in tasks {
        built += t.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let summary: Value = http
        .get(format!("{}/v1/summary", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["finished"], true, "{summary}");
    assert_eq!(
        summary["counts"]["succeeded"].as_u64().unwrap() as usize,
        built,
        "{summary}"
    );
    // Every accepted file was made visible.
    let staged = std::fs::read_dir(tmp.path().join("stage/RPMS/x86_64")).map_or(0, |d| d.count());
    assert_eq!(staged, built);
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sum, count) = histogram(&metrics, "dbuild_promotion_seconds");
    assert_eq!(count as usize, built, "one promotion per package");
    Run {
        built,
        secs,
        promotion_ms: sum / count.max(1.0) * 1000.0,
    }
}

fn main() {
    let specs = corpus();
    if !specs.is_dir() {
        eprintln!(
            "loopback bench: no spec tree at {}; set DBUILD_BENCH_SPECS",
            specs.display()
        );
        return;
    }
    let workers: usize = std::env::var("DBUILD_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {}).await;
        let m = run(&specs, true, workers).await;
        let d = run(&specs, false, workers).await;
        let (mem, disk) = (m.secs, d.secs);
        println!("loopback benchmark: {} packages, {workers} concurrent workers (lease + heartbeat + publish + report each)", d.built);
        println!("  in-memory SQLite : {mem:.3} s  ({:.0} cycles/s); promotion {:.3} ms per package", m.built as f64 / mem, m.promotion_ms);
        println!("  durable SQLite   : {disk:.3} s  ({:.0} cycles/s); promotion {:.3} ms per package (directories fsynced)", d.built as f64 / disk, d.promotion_ms);
        println!("  ratio durable / in-memory: {:.2}", disk / mem);
        println!(
            "{}",
            json!({"packages": d.built, "workers": workers, "memory_secs": mem, "durable_secs": disk, "ratio": disk / mem,
                   "memory_promotion_ms": m.promotion_ms, "durable_promotion_ms": d.promotion_ms})
        );
    });
}
