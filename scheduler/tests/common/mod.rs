//! Test harness: runs the real dbuild-scheduler binary on a temporary build
//! directory and talks to it over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-0123456789";

pub struct Sched {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

/// Writes a plan file and one spec file per package under `dir/SPECS`.
/// `pkgs`: (name, needs by name, weight).
pub fn write_plan(dir: &Path, pkgs: &[(&str, &[&str], Option<f64>)]) -> PathBuf {
    let names: Vec<&str> = pkgs.iter().map(|p| p.0).collect();
    let mut packages = Vec::new();
    for (name, needs, weight) in pkgs {
        let spec_dir = dir.join("SPECS").join(name);
        std::fs::create_dir_all(&spec_dir).unwrap();
        std::fs::write(
            spec_dir.join(format!("{name}.spec")),
            format!("Name: {name}\nVersion: 1\nRelease: 1\n"),
        )
        .unwrap();
        let need_idx: Vec<usize> = needs
            .iter()
            .map(|n| names.iter().position(|x| x == n).unwrap())
            .collect();
        let installs: Vec<String> = needs.iter().map(|n| format!("{n}-devel")).collect();
        packages.push(json!({
            "name": name, "evr": "1-1", "spec": format!("{name}/{name}.spec"),
            "needs": need_idx, "builds": [name, format!("{name}-devel")], "installs": installs,
            "weight": weight, "inputs": [format!("{name}/{name}.spec")],
        }));
    }
    let plan = json!({"packages": packages, "arch": "x86_64", "macros": [["dist", ".ph5"]]});
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    path
}

impl Sched {
    /// Starts the scheduler on `dir` with `--plan dir/plan.json` (if present) and `extra` args.
    pub fn start(dir: &Path, extra: &[&str]) -> Sched {
        Self::try_start(dir, extra).unwrap_or_else(|e| panic!("scheduler did not start: {e}"))
    }

    pub fn command(dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild-scheduler"));
        cmd.arg("--build-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--token", TOKEN]);
        if dir.join("plan.json").exists() && !extra.contains(&"--specs") {
            cmd.arg("--plan").arg(dir.join("plan.json"));
        }
        cmd.args(extra).env("RUST_LOG", "info");
        cmd
    }

    pub fn try_start(dir: &Path, extra: &[&str]) -> Result<Sched, String> {
        Self::try_spawn(Self::command(dir, extra), dir)
    }

    /// Starts `cmd` (a scheduler serving `dir`; its log in `dir/scheduler.log`)
    /// and waits for the address it prints.
    pub fn try_spawn(mut cmd: Command, dir: &Path) -> Result<Sched, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("scheduler.log"))
            .unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("dbuild-scheduler listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("scheduler.log")).unwrap_or_default();
            return Err(format!("unexpected first line {line:?}; log:\n{log}"));
        };
        Ok(Sched {
            child,
            url: url.to_string(),
            dir: dir.to_path_buf(),
            http: reqwest::Client::new(),
        })
    }

    /// SIGKILL, no cleanup.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_with(path, body.to_string(), Some(TOKEN)).await
    }

    pub async fn post_with(&self, path: &str, body: String, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{}", self.url, path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{}", self.url, path))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn register(&self, name: &str, slots: u32) -> String {
        let (s, v) = self
            .post(
                "/v1/workers",
                json!({"name": name, "arch": "x86_64", "slots": slots}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["worker_id"].as_str().unwrap().to_string()
    }

    /// Asks for a lease; returns the reply.
    pub async fn lease(&self, worker: &str, wait_secs: u64) -> Value {
        let (s, v) = self
            .post(
                "/v1/lease",
                json!({"worker_id": worker, "wait_secs": wait_secs}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Leases and expects package `name`; returns the lease.
    pub async fn lease_pkg(&self, worker: &str, name: &str) -> Value {
        let v = self.lease(worker, 0).await;
        assert_eq!(v["lease"]["package"], name, "{v}");
        v["lease"].clone()
    }

    /// Reports success with one RPM per binary package (files created on disk).
    pub async fn succeed(&self, worker: &str, lease: &Value) -> (u16, Value) {
        self.succeed_asking(worker, lease, false).await
    }

    /// [`Sched::succeed`], asking for the next lease in the reply when `next_lease`.
    pub async fn succeed_asking(
        &self,
        worker: &str,
        lease: &Value,
        next_lease: bool,
    ) -> (u16, Value) {
        self.succeed_claiming(worker, lease, next_lease, None).await
    }

    /// [`Sched::succeed_asking`], claiming the reservation `claim` (a reserved lease id).
    pub async fn succeed_claiming(
        &self,
        worker: &str,
        lease: &Value,
        next_lease: bool,
        claim: Option<&str>,
    ) -> (u16, Value) {
        let pkg = lease["package"].as_str().unwrap();
        let id = lease["lease_id"].as_str().unwrap();
        let paths: Vec<String> = [pkg.to_string(), format!("{pkg}-devel")]
            .iter()
            .map(|b| format!("stage/RPMS/x86_64/{b}-1-1.ph5.x86_64.rpm"))
            .collect();
        let rpms = publish(&self.dir, id, &paths);
        self.post(
            &format!("/v1/leases/{id}/report"),
            json!({"worker_id": worker, "duration_secs": 1.0, "outcome": {"status": "success", "rpms": rpms}, "next_lease": next_lease,
                   "claim": claim}),
        )
        .await
    }

    /// Asks for a reservation during lease `lease`; returns the status and reply.
    pub async fn reserve(&self, worker: &str, lease: &Value) -> (u16, Value) {
        let id = lease["lease_id"].as_str().unwrap();
        self.post(
            &format!("/v1/leases/{id}/reserve"),
            json!({"worker_id": worker}),
        )
        .await
    }

    pub async fn fail(&self, worker: &str, lease: &Value, reason: &str) -> (u16, Value) {
        let id = lease["lease_id"].as_str().unwrap();
        self.post(
            &format!("/v1/leases/{id}/report"),
            json!({"worker_id": worker, "duration_secs": 2.0, "log_path": lease["log_path"],
                   "outcome": {"status": "failure", "exit_status": 1, "reason": reason}}),
        )
        .await
    }

    pub async fn state_of(&self, name: &str) -> String {
        let (s, v) = self.get(&format!("/v1/packages/{name}")).await;
        assert_eq!(s, 200, "{v}");
        v["info"]["state"].as_str().unwrap().to_string()
    }

    pub async fn summary(&self) -> Value {
        self.get("/v1/summary").await.1
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scheduler on `dir` with packages a (first) and b, worker w1 building a
/// with b reserved for afterwards: (scheduler, w1's id, a's lease, b's reservation).
pub async fn building_a_with_b_reserved(dir: &Path) -> (Sched, String, Value, Value) {
    write_plan(dir, &[("a", &[], Some(2.0)), ("b", &[], Some(1.0))]);
    let s = Sched::start(dir, &[]);
    let w1 = s.register("w1", 1).await;
    let la = s.lease_pkg(&w1, "a").await;
    let rb = s.reserve(&w1, &la).await.1["lease"].clone();
    assert_eq!(rb["package"], "b");
    (s, w1, la, rb)
}

/// Does what a worker does before it reports: puts a file for each of
/// `stage_paths` into `incoming/<lease_id>/` (content: the file name);
/// returns the report's `rpms`.
pub fn publish(dir: &Path, lease_id: &str, stage_paths: &[String]) -> Vec<Value> {
    stage_paths
        .iter()
        .map(|stage| {
            let rel = stage.replacen("stage/", &format!("incoming/{lease_id}/"), 1);
            let path = dir.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let name = stage.rsplit('/').next().unwrap();
            std::fs::write(&path, name.as_bytes()).unwrap();
            json!({"path": stage, "sha256": "0".repeat(64), "size": name.len()})
        })
        .collect()
}

/// Waits until `f` holds, up to `secs`.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
