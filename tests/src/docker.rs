//! The Docker CLI, and [`Made`]: every container, volume and image tag a test
//! creates, removed when it is dropped, so also when the test fails.

use crate::cmd::{check, run};
use std::process::Command;
use std::time::Duration;

/// `docker ARGS...`; fails unless it exits 0 within `timeout`; returns stdout.
pub fn docker(args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    check(Command::new("docker").args(args), timeout)
}

/// The engine's version, or why no engine answers.
pub fn engine() -> Result<String, String> {
    match run(
        Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]),
        Duration::from_secs(30),
    ) {
        Ok(out) if out.ok() => Ok(out.stdout.trim().to_string()),
        Ok(out) => Err(format!("docker version: {}", out.stderr.trim())),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// A container's main process as the host sees it (0 when it is not running).
pub fn pid(container: &str) -> anyhow::Result<u32> {
    let out = docker(
        &["inspect", "-f", "{{.State.Pid}}", container],
        Duration::from_secs(30),
    )?;
    Ok(out.trim().parse()?)
}

/// Whether the container runs, and its exit code once it stopped.
pub fn state(container: &str) -> anyhow::Result<(bool, i64)> {
    let out = docker(
        &[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            container,
        ],
        Duration::from_secs(30),
    )?;
    let mut words = out.split_whitespace();
    let running = words.next() == Some("true");
    let code = words.next().unwrap_or("-1").parse().unwrap_or(-1);
    Ok((running, code))
}

/// The last `lines` lines of a container's output (stdout and stderr).
pub fn logs(container: &str, lines: usize) -> String {
    let tail = lines.to_string();
    match run(
        Command::new("docker").args(["logs", "--tail", &tail, container]),
        Duration::from_secs(30),
    ) {
        Ok(out) => format!("{}{}", out.stdout, out.stderr),
        Err(e) => format!("(no logs: {e:#})"),
    }
}

/// Names of what a test made, with one random suffix; all of it is removed on drop.
#[derive(Debug)]
pub struct Made {
    /// `dbuild-e2e-<random>`: the prefix of every container and volume name.
    pub prefix: String,
    /// The random part, also used as the image tag.
    pub suffix: String,
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Default for Made {
    fn default() -> Self {
        Self::new()
    }
}

impl Made {
    pub fn new() -> Made {
        let suffix = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        Made {
            prefix: format!("dbuild-{suffix}"),
            suffix,
            containers: Vec::new(),
            volumes: Vec::new(),
            images: Vec::new(),
        }
    }

    /// A container name to use, removed (with its anonymous volumes) on drop.
    pub fn container(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        self.containers.push(name.clone());
        name
    }

    /// Creates a volume, removed on drop.
    pub fn volume(&mut self, role: &str) -> anyhow::Result<String> {
        let name = format!("{}-{role}", self.prefix);
        self.volumes.push(name.clone());
        docker(&["volume", "create", &name], Duration::from_secs(60))?;
        Ok(name)
    }

    /// An image reference the test is about to make, removed on drop.
    pub fn image(&mut self, reference: &str) {
        self.images.push(reference.to_string());
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let timeout = Duration::from_secs(120);
        for c in self.containers.iter().rev() {
            if failing {
                eprintln!("---- last output of container {c} ----\n{}", logs(c, 40));
            }
        }
        let mut removals: Vec<Vec<&str>> = Vec::new();
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(self.containers.iter().map(String::as_str));
            removals.push(args);
        }
        if !self.volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(self.volumes.iter().map(String::as_str));
            removals.push(args);
        }
        for image in &self.images {
            removals.push(vec!["rmi", "-f", image]);
        }
        for args in removals {
            match run(Command::new("docker").args(&args), timeout) {
                // `rm -f` of a container that was never created says so; that is fine.
                Ok(out) if out.ok() || out.stderr.contains("No such") => {}
                Ok(out) => eprintln!("cleanup: docker {}: {}", args.join(" "), out.stderr.trim()),
                Err(e) => eprintln!("cleanup: docker {}: {e:#}", args.join(" ")),
            }
        }
    }
}
