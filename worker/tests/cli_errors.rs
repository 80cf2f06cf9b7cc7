//! `dbuild-worker`'s error exits, run as a process: each names what is wrong
//! and exits non-zero before it contacts any scheduler.
//!
//! The exit-code table is 0 ok, 1 work failed, 2 usage or configuration
//! error, 130 interrupted. clap's usage errors already exit 2; the
//! configuration errors below (token file, build directory, base root) exit
//! 1 today, so those checks assert only "not 0" until the worker follows
//! the table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long one run may take: every case fails at start-up.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the worker with `args`: (exit code, stderr). Fails after [`DEADLINE`].
fn worker(args: &[&str]) -> (Option<i32>, String) {
    let out = support::deadline::output_within(
        Command::new(env!("CARGO_BIN_EXE_dbuild-worker"))
            .args(args)
            .env("DBUILD_LOG", "warn"),
        DEADLINE,
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A valid token file, build directory and work dir in `dir`; the base root is `base`.
fn args_with(dir: &Path, token: &str, share: &str, base: &str) -> Vec<String> {
    let work = dir.join("work");
    vec![
        "--scheduler".into(),
        "http://127.0.0.1:9".into(),
        "--token-file".into(),
        token.into(),
        "--share".into(),
        share.into(),
        "--base-root".into(),
        base.into(),
        "--work-dir".into(),
        work.display().to_string(),
    ]
}

fn run(dir: &Path, token: &str, share: &str, base: &str) -> (Option<i32>, String) {
    let args = args_with(dir, token, share, base);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    worker(&args)
}

#[test]
fn usage_errors_exit_2() {
    // No --scheduler (and no DBUILD_SCHEDULER).
    let (code, stderr) = worker(&["--token-file", "t", "--share", "s"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--scheduler"), "{stderr}");
}

#[test]
fn configuration_errors_name_what_is_wrong_and_start_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let token = dir.join("token");
    std::fs::write(&token, "secret").unwrap();
    let share = dir.join("share");
    std::fs::create_dir(&share).unwrap();
    // A directory that is no builder root (no bin/sh, rpmbuild, ...).
    let not_a_root = dir.join("not-a-root");
    std::fs::create_dir(&not_a_root).unwrap();
    let (token, share, base) = (
        token.to_str().unwrap(),
        share.to_str().unwrap(),
        not_a_root.to_str().unwrap(),
    );
    let missing_token = dir.join("no-such-token");
    let missing_share = dir.join("no-such-share");
    for (what, args, names) in [
        (
            "missing token file",
            (missing_token.to_str().unwrap(), share, base),
            missing_token.display().to_string(),
        ),
        (
            "missing build directory",
            (token, missing_share.to_str().unwrap(), base),
            missing_share.display().to_string(),
        ),
        (
            "bad base root",
            (token, share, base),
            not_a_root.display().to_string(),
        ),
    ] {
        let (code, stderr) = run(dir, args.0, args.1, args.2);
        assert!(
            code.is_some_and(|c| c != 0),
            "{what}: exit {code:?}\n{stderr}"
        );
        assert!(stderr.contains("dbuild-worker: error:"), "{what}: {stderr}");
        assert!(
            stderr.contains(&names),
            "{what}: the message should name {names}: {stderr}"
        );
    }
    // It stopped before making its work dir's slots.
    assert!(!dir.join("work/slots").exists());
}
