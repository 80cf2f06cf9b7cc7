//! The scheduler's command line: its settings from a `--config` file and
//! `DBUILD_*` variables, and its errors in dbuild's style (`dbuild-scheduler:
//! error: ...`, no backtrace) with the exit status of the table in README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{write_plan, Sched, TOKEN};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scheduler() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild-scheduler"));
    // Only our own message on stderr; a backtrace would be asked for.
    cmd.env("RUST_LOG", "error").env("RUST_BACKTRACE", "1");
    cmd
}

/// Runs `cmd`, which must end by itself within a minute: (status, stderr).
fn run_to_end(mut cmd: Command) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the scheduler did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// A usage error: status 2 and one line `dbuild-scheduler: error: ...`.
fn assert_usage_error(cmd: Command, expected: &[&str]) {
    let (code, stderr) = run_to_end(cmd);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("dbuild-scheduler: error: "), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

#[test]
fn a_bad_flag_value_is_a_usage_error_in_dbuilds_style() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = scheduler();
    cmd.arg("--build-dir")
        .arg(tmp.path())
        .args(["--lease-ttl", "forever"]);
    assert_usage_error(cmd, &["--lease-ttl", "bad duration \"forever\""]);
    let mut cmd = scheduler();
    cmd.args(["--state-sync", "sometimes"]);
    assert_usage_error(cmd, &["sometimes", "--state-sync"]);
}

#[test]
fn bad_settings_from_any_layer_are_usage_errors_naming_where_they_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let mut cmd = scheduler();
    cmd.arg("--build-dir").arg(&missing);
    assert_usage_error(cmd, &["--build-dir", "missing\": no such directory"]);

    assert_usage_error(scheduler(), &["missing --build-dir", "DBUILD_BUILD_DIR"]);

    let mut cmd = scheduler();
    cmd.arg("--build-dir")
        .arg(tmp.path())
        .env("DBUILD_MAX_ATTEMPTS", "many");
    assert_usage_error(cmd, &["DBUILD_MAX_ATTEMPTS: ", "\"many\""]);

    let file = tmp.path().join("scheduler.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlisten_on = 1\n").unwrap();
    let mut cmd = scheduler();
    cmd.arg("--config").arg(&file);
    assert_usage_error(
        cmd,
        &["unknown key(s) listen_on", &file.display().to_string()],
    );
}

/// Starts the scheduler with `cmd` and waits for its address.
fn start(cmd: Command, dir: &Path) -> Sched {
    Sched::try_spawn(cmd, dir).unwrap_or_else(|e| panic!("the scheduler did not start: {e}"))
}

async fn packages(s: &Sched) -> u64 {
    s.summary().await["packages"].as_u64().unwrap()
}

#[tokio::test]
async fn the_file_then_the_environment_then_flags_set_the_scheduler() {
    let tmp = tempfile::tempdir().unwrap();
    let (two, three) = (tmp.path().join("two"), tmp.path().join("three"));
    for dir in [&two, &three] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let two_plan = write_plan(&two, &[("a", &[], None), ("b", &["a"], None)]);
    let three_plan = write_plan(
        &three,
        &[("a", &[], None), ("b", &[], None), ("c", &[], None)],
    );
    let file = tmp.path().join("scheduler.toml");
    std::fs::write(
        &file,
        format!(
            "build_dir = {:?}\nplan = {:?}\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n",
            two.display().to_string(),
            two_plan.display().to_string()
        ),
    )
    .unwrap();

    let mut cmd = scheduler();
    cmd.arg("--config").arg(&file);
    let s = start(cmd, &two);
    assert_eq!(packages(&s).await, 2);
    drop(s);

    let mut cmd = scheduler();
    cmd.arg("--config")
        .arg(&file)
        .env("DBUILD_BUILD_DIR", &three)
        .env("DBUILD_PLAN", &three_plan);
    let s = start(cmd, &three);
    assert_eq!(packages(&s).await, 3);
    drop(s);

    let mut cmd = scheduler();
    cmd.arg("--config")
        .arg(&file)
        .env("DBUILD_BUILD_DIR", &three)
        .env("DBUILD_PLAN", &three_plan)
        .arg("--build-dir")
        .arg(&two)
        .arg("--plan")
        .arg(&two_plan);
    let s = start(cmd, &two);
    assert_eq!(packages(&s).await, 2);
}
