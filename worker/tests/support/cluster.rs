//! The real scheduler and worker binaries as processes, for the tests that
//! drive the worker against the scheduler.

use super::workspace_bin::workspace_bin;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "worker-test-token-0123456789";

pub struct Sched {
    pub child: Child,
    pub url: String,
}

impl Sched {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// SIGKILL, no cleanup.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scheduler on `build_dir` (lease TTL 3 s, one attempt per package,
/// plus `extra`), its log appended to `<build_dir>/scheduler.log`.
pub fn start_scheduler(build_dir: &Path, extra: &[&str]) -> Sched {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(build_dir.join("scheduler.log"))
        .unwrap();
    let mut child = Command::new(workspace_bin("dbuild-scheduler", "dbuild-scheduler"))
        .arg("--build-dir")
        .arg(build_dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "--define",
            "dist .ph5",
            "--lease-ttl",
            "3s",
            "--max-attempts",
            "1",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("dbuild-scheduler listening on ")
        .unwrap_or_else(|| {
            panic!(
                "scheduler: {line:?}\n{}",
                std::fs::read_to_string(build_dir.join("scheduler.log")).unwrap_or_default()
            )
        });
    Sched {
        url: url.to_string(),
        child,
    }
}

/// A worker on `build_dir` with its scratch in `work` (its log: `work.log`, appended).
pub fn worker(sched: &Sched, build_dir: &Path, work: &Path, base: &Path, extra: &[&str]) -> Child {
    worker_with_env(sched, build_dir, work, base, extra, &[])
}

/// A worker of the scheduler at `url` whose stdout is piped (the line
/// `--listen` prints); otherwise as [`worker`].
pub fn worker_at(url: &str, build_dir: &Path, work: &Path, base: &Path, extra: &[&str]) -> Child {
    worker_command(url, build_dir, work, base, extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The address a worker started with `--listen` prints first (from [`worker_at`]).
pub fn listen_url(w: &mut Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(w.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    line.trim()
        .strip_prefix("dbuild-worker listening on ")
        .unwrap_or_else(|| panic!("worker printed {line:?}"))
        .to_string()
}

/// [`worker`] with environment variables.
pub fn worker_with_env(
    sched: &Sched,
    build_dir: &Path,
    work: &Path,
    base: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Child {
    worker_command(&sched.url, build_dir, work, base, extra)
        .envs(env.iter().copied())
        .spawn()
        .unwrap()
}

fn worker_command(
    url: &str,
    build_dir: &Path,
    work: &Path,
    base: &Path,
    extra: &[&str],
) -> Command {
    std::fs::write(build_dir.join("token"), TOKEN).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.with_extension("log"))
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbuild-worker"));
    command
        .args(["--scheduler", url, "--wait", "5"])
        .arg("--token-file")
        .arg(build_dir.join("token"))
        .arg("--share")
        .arg(build_dir)
        .arg("--base-root")
        .arg(base)
        .arg("--work-dir")
        .arg(work)
        .args(extra)
        .stderr(log);
    command
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `path` holds `needle`.
pub fn wait_for_log(path: &Path, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` (`-STOP`, `-CONT`, `-KILL`, `-TERM`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal} {pid}");
}

pub async fn get(sched: &Sched, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}{path}", sched.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A share (build directory) with `specs` under SPECS/, and a work dir.
pub fn setup(specs: &[(&str, String)]) -> (tempfile::TempDir, tempfile::TempDir) {
    let share = tempfile::Builder::new()
        .prefix("dbuild-e2e-share-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let work = tempfile::Builder::new()
        .prefix("dbuild-e2e-work-")
        .tempdir_in("/var/tmp")
        .unwrap();
    write_specs(share.path(), specs);
    (share, work)
}

/// Writes `<build_dir>/SPECS/<name>/<name>.spec` for each of `specs`.
pub fn write_specs(build_dir: &Path, specs: &[(&str, String)]) {
    for (name, text) in specs {
        let dir = build_dir.join("SPECS").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.spec")), text).unwrap();
    }
}
