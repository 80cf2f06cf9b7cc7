//! The build sandbox: one set of private namespaces per build, in which the
//! chroot is mounted and the steps of the build (install the BuildRequires,
//! then rpmbuild) run one after the other.
//!
//! A sandbox is started as
//! `nice -n 5 unshare --mount --propagation private --pid --fork --kill-child=SIGKILL --ipc --uts [--net] -- dbuild-sandbox PLAN`,
//! where `dbuild-sandbox` (see [`init`]) is PID 1 of the new PID namespace:
//! it mounts the overlay (or nothing, for a copied root), proc, a minimal
//! /dev, a tmpfs /tmp and the binds with direct system calls, brings up
//! loopback when the network is private, chroots, and runs the steps.
//!
//! Nothing is ever mounted in the worker's own mount namespace: when PID 1
//! ends, or is killed, the namespace and every mount and process in it
//! disappear with it. Killing the `unshare` process kills the whole sandbox
//! (`--kill-child` sends SIGKILL to PID 1, and the kernel kills every process
//! of a PID namespace whose init dies).
//!
//! PID 1 reports how each part went in a status file outside the chroot (so
//! nothing the build runs can forge it): see [`Status`].
//!
//! A sandbox can be started before its build is known ([`Plan::wait_for_go`]):
//! PID 1 then makes the mounts every build needs and waits for a [`Go`] line
//! on its stdin with the build's own binds, files, network and steps. The
//! worker starts one while it waits for a lease, which takes the sandbox's
//! start-up off the time between two builds.
//!
//! A [`Go`] with `then_wait` runs its steps (the BuildRequires install of a
//! build prepared ahead, see [`crate::ahead`]) and then waits for a [`Then`]
//! line with the rest (rpmbuild); end of input instead means the build was
//! not claimed, and the sandbox ends.

pub mod init;
pub mod nosync;

use crate::mounts::{Bind, MountError, RootLayout};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The environment of every step (the build sees nothing of the worker's).
pub const STEP_ENV: &[(&str, &str)] = &[
    ("HOME", "/root"),
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LANG", "C.UTF-8"),
    ("TERM", "dumb"),
    ("SHELL", "/bin/sh"),
];

/// How much lower than the worker's the builds' CPU priority is (`nice -n`).
pub const BUILD_NICENESS: &str = "5";

/// Extra `KEY=VALUE` lines a builder root may declare for its builds (e.g.
/// Debian's `DEB_PYTHON_INSTALL_LAYOUT=deb`); path inside the root.
pub const ROOT_ENV_FILE: &str = "etc/dbuild/build.env";

/// One command run chrooted, with [`STEP_ENV`] plus the root's [`ROOT_ENV_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Short name for the status file and the log (`install`, `rpmbuild`).
    pub name: String,
    pub argv: Vec<String>,
    /// Bind targets (inside the chroot) unmounted once this step succeeded,
    /// so that later steps never see them.
    #[serde(default)]
    pub unmount_after: Vec<String>,
}

/// Everything PID 1 needs; passed to `dbuild-sandbox` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub root: PathBuf,
    pub layout: RootLayout,
    pub binds: Vec<Bind>,
    /// Share the host's network instead of a private namespace with only loopback.
    pub network: bool,
    pub steps: Vec<Step>,
    /// Where PID 1 writes its [`Status`] lines (on the host, outside the chroot).
    pub status_file: Option<PathBuf>,
    /// Mount what every build needs, then wait for a [`Go`] line on stdin.
    #[serde(default)]
    pub wait_for_go: bool,
    /// The network namespace a [`Go`] with `host_network` joins (the worker's).
    #[serde(default)]
    pub host_netns: Option<PathBuf>,
}

/// The rest of a waiting sandbox's plan, sent as one JSON line on its stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Go {
    pub binds: Vec<Bind>,
    /// Files copied into the root before the chroot: (host path, path inside).
    pub files: Vec<(PathBuf, String)>,
    /// Join [`Plan::host_netns`] instead of the private network.
    pub host_network: bool,
    pub steps: Vec<Step>,
    /// Make the steps' fsync and friends no-ops (see [`nosync`]).
    #[serde(default)]
    pub no_sync: bool,
    /// After the steps, wait for a [`Then`] line with more.
    #[serde(default)]
    pub then_wait: bool,
}

/// The steps a `then_wait` sandbox runs after its [`Go`] steps succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Then {
    pub steps: Vec<Step>,
}

impl Go {
    /// Checks the targets, as [`Plan::command`] does for a plan's.
    pub fn check(&self) -> Result<(), MountError> {
        let targets = self
            .binds
            .iter()
            .map(|b| &b.target)
            .chain(self.files.iter().map(|(_, t)| t));
        check_targets(targets.chain(self.steps.iter().flat_map(|s| &s.unmount_after)))
    }
}

fn check_targets<'a>(targets: impl Iterator<Item = &'a String>) -> Result<(), MountError> {
    for target in targets {
        if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
            return Err(MountError::BadTarget {
                target: target.clone(),
            });
        }
    }
    Ok(())
}

/// One line of the status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Status {
    /// Mounts done, about to run the first step; seconds since PID 1 started
    /// (since the [`Go`] line arrived, for a sandbox that waited for one).
    Ready { secs: f64 },
    /// Setup failed; nothing ran.
    SetupFailed { error: String },
    /// A step ended: its exit code, or the signal that killed it, or why it could not start.
    Step {
        name: String,
        code: Option<i32>,
        signal: Option<i32>,
        spawn_error: Option<String>,
        secs: f64,
    },
}

/// What the status file says about a sandbox run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Setup time inside the sandbox (`None`: never got ready).
    pub ready: Option<Duration>,
    pub setup_error: Option<String>,
    /// The steps that ended, in order.
    pub steps: Vec<StepEnd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepEnd {
    pub name: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub spawn_error: Option<String>,
    pub duration: Duration,
}

impl StepEnd {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Outcome {
    /// Reads a status file; lines that do not parse are ignored (a killed
    /// sandbox may leave half a line).
    pub fn read(path: &Path) -> Outcome {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = Outcome::default();
        for line in text.lines() {
            match serde_json::from_str::<Status>(line) {
                Ok(Status::Ready { secs }) => {
                    out.ready = Some(Duration::from_secs_f64(secs.max(0.0)))
                }
                Ok(Status::SetupFailed { error }) => out.setup_error = Some(error),
                Ok(Status::Step {
                    name,
                    code,
                    signal,
                    spawn_error,
                    secs,
                }) => out.steps.push(StepEnd {
                    name,
                    code,
                    signal,
                    spawn_error,
                    duration: Duration::from_secs_f64(secs.max(0.0)),
                }),
                Err(_) => {}
            }
        }
        out
    }

    pub fn step(&self, name: &str) -> Option<&StepEnd> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// The `dbuild-sandbox` executable: `$DBUILD_SANDBOX`, else next to the
/// running executable (or one directory up, for test binaries in
/// `target/*/deps`), else `dbuild-sandbox` on `PATH`.
pub fn sandbox_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DBUILD_SANDBOX") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().ok();
    let dirs = exe.iter().flat_map(|e| e.ancestors().skip(1).take(2));
    for dir in dirs {
        let candidate = dir.join("dbuild-sandbox");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("dbuild-sandbox")
}

fn option_safe(p: &Path) -> Result<(), MountError> {
    match p.to_str() {
        Some(s) if !s.contains(',') && !s.contains(':') => Ok(()),
        _ => Err(MountError::BadPath {
            path: p.to_path_buf(),
        }),
    }
}

impl Plan {
    /// A sandbox over `root` that runs `steps` with a private network, no
    /// binds and no status file.
    pub fn new(root: PathBuf, layout: RootLayout, steps: Vec<Step>) -> Plan {
        Plan {
            root,
            layout,
            binds: vec![],
            network: false,
            steps,
            status_file: None,
            wait_for_go: false,
            host_netns: None,
        }
    }

    /// Checks paths and targets; then the command that runs the sandbox
    /// (stdout/stderr piped, kill-on-drop).
    pub fn command(&self) -> Result<Command, MountError> {
        if let RootLayout::Overlay { lower, upper, work } = &self.layout {
            for p in [lower, upper, work] {
                option_safe(p)?;
            }
        }
        check_targets(
            self.binds
                .iter()
                .map(|b| &b.target)
                .chain(self.steps.iter().flat_map(|s| &s.unmount_after)),
        )?;
        let plan = serde_json::to_string(self).map_err(|e| MountError::BadTarget {
            target: e.to_string(),
        })?;
        // Builds run at a lower CPU priority than the worker, the scheduler and the
        // launcher, so that reports and leases are answered promptly on a busy machine.
        let mut cmd = Command::new("nice");
        cmd.args(["-n", BUILD_NICENESS, "unshare"]);
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--ipc",
            "--uts",
        ]);
        if !self.network {
            cmd.arg("--net");
        }
        cmd.arg("--").arg(sandbox_binary()).arg(plan);
        cmd.env_clear();
        cmd.env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
        cmd.env("LANG", "C.UTF-8");
        cmd.stdin(if self.wait_for_go {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn status_lines_round_trip_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("status");
        let lines = [
            serde_json::to_string(&Status::Ready { secs: 0.01 }).unwrap(),
            serde_json::to_string(&Status::Step {
                name: "install".into(),
                code: Some(0),
                signal: None,
                spawn_error: None,
                secs: 0.5,
            })
            .unwrap(),
            "{\"event\":\"step\",\"na".to_string(),
        ];
        std::fs::write(&f, lines.join("\n")).unwrap();
        let o = Outcome::read(&f);
        assert_eq!(o.ready, Some(Duration::from_millis(10)));
        assert_eq!(o.steps.len(), 1);
        assert!(o.step("install").unwrap().success());
        assert!(o.step("rpmbuild").is_none());
    }

    #[test]
    fn rejects_escaping_targets_and_option_breaking_paths() {
        let plan = Plan {
            binds: vec![Bind {
                host: "/h".into(),
                target: "/a/../../etc".into(),
                read_only: true,
            }],
            ..Plan::new("/r".into(), RootLayout::Copy, vec![])
        };
        assert!(matches!(plan.command(), Err(MountError::BadTarget { .. })));
        let plan = Plan {
            layout: RootLayout::Overlay {
                lower: "/a,b".into(),
                upper: "/u".into(),
                work: "/w".into(),
            },
            binds: vec![],
            ..plan
        };
        assert!(matches!(plan.command(), Err(MountError::BadPath { .. })));
    }
}
