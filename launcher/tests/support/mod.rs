//! What the `dbuild local` tests share: the cached builder roots, running the
//! real binary, reading its summary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../worker/tests/support/deadline.rs"]
pub mod deadline;
pub mod observe;
#[path = "../../../worker/tests/support/workspace_bin.rs"]
mod workspace_bin;

use dbuild_worker::rootfs::{self, RootfsSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The default builder root plus `extra` Debian packages, made once per
/// machine under /var/tmp (the worker's tests use the same key for the default).
pub fn builder_root(extra: &[&str]) -> PathBuf {
    let mut spec = RootfsSpec::default();
    spec.packages.extend(extra.iter().map(|p| p.to_string()));
    let dest = PathBuf::from(format!("/var/tmp/dbuild-test-rootfs-{}", spec.key()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(rootfs::ensure(&spec, &dest))
        .expect("making the builder root");
    dest
}

/// `dbuild local --plain` on `specs` with this state dir and builder root;
/// the scheduler and worker it starts (from beside `dbuild`) are built first.
pub fn dbuild_local_command(specs: &Path, state: &Path, root: &Path) -> Command {
    workspace_bin::workspace_bin("dbuild-scheduler", "dbuild-scheduler");
    workspace_bin::workspace_bin("dbuild-worker", "dbuild-worker");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
    cmd.args(["local", "--plain"])
        .arg("--specs")
        .arg(specs)
        .arg("--state-dir")
        .arg(state)
        .arg("--base-root")
        .arg(root);
    cmd
}

/// The workspace's `dbuild-scheduler`, freshly built.
pub fn scheduler_bin() -> PathBuf {
    workspace_bin::workspace_bin("dbuild-scheduler", "dbuild-scheduler")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `dbuild local` with `extra` options; its output goes to the test's log.
pub fn dbuild_local(specs: &Path, state: &Path, root: &Path, extra: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = dbuild_local_command(specs, state, root)
        .args(extra)
        .output()
        .unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into(),
        stderr: String::from_utf8_lossy(&stderr).into(),
    };
    let tail: Vec<&str> = run
        .stderr
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    eprintln!(
        "--- dbuild local exited {}\n{}\n{}",
        run.code,
        run.stdout,
        tail.join("\n")
    );
    run
}

/// Names in the summary: `  built (N): a, b` on one line, or the
/// `    name: ...` lines under `  failed (N):` and `  dep-failed (N):`.
pub fn listed(stdout: &str, heading: &str) -> BTreeSet<String> {
    let prefix = format!("  {heading} (");
    let Some(at) = stdout.lines().position(|l| l.starts_with(&prefix)) else {
        return BTreeSet::new();
    };
    let line = stdout.lines().nth(at).unwrap_or_default();
    if let Some((_, names)) = line.split_once("): ") {
        return names
            .split(", ")
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
    }
    stdout
        .lines()
        .skip(at + 1)
        .map_while(|l| l.strip_prefix("    "))
        .filter_map(|l| l.split(':').next())
        .map(str::to_string)
        .collect()
}

/// Copies a directory tree (files and directories).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
