//! The worker's start-up: a malformed `--scheduler` is a usage error (exit
//! 2), and a scheduler that does not answer is tried again until
//! `--connect-timeout`, then named in the error (exit 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the worker with `args`, which must end by itself within a minute:
/// (status, stderr).
fn run_worker(args: &[&str], extra: &[PathBuf]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbuild-worker"))
        .args(args)
        .args(extra)
        .env("DBUILD_LOG", "dbuild_worker=debug")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

/// A token file, a build directory and a directory that passes for a builder
/// root (the files the worker checks for), so that only the scheduler is missing.
fn local_setup(dir: &Path) -> Vec<PathBuf> {
    let (base, share, token) = (dir.join("base"), dir.join("share"), dir.join("token"));
    for d in ["bin", "usr/bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    for f in ["bin/sh", "usr/bin/rpm", "usr/bin/rpmbuild"] {
        std::fs::write(base.join(f), "").unwrap();
    }
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(&token, "t").unwrap();
    let flags = ["--base-root", "--share", "--token-file", "--work-dir"];
    let values = [base, share, token, dir.join("work")];
    flags
        .iter()
        .zip(values)
        .flat_map(|(f, v)| [PathBuf::from(f), v])
        .collect()
}

#[test]
fn a_malformed_scheduler_url_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = run_worker(&["--scheduler", "notaurl"], &local_setup(tmp.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("dbuild-worker: error: --scheduler \"notaurl\": not a URL"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_scheduler_that_does_not_answer_is_tried_again_then_named() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = ["--scheduler", &url, "--connect-timeout", "2s"];
    let (code, stderr) = run_worker(&args, &local_setup(tmp.path()));
    assert_eq!(code, 1, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "dbuild-worker: error: the scheduler at {url}/ did not answer within 2s"
        )),
        "{stderr}"
    );
    let tries = stderr.matches("the scheduler does not answer yet").count();
    assert!(tries >= 2, "tried {tries} time(s): {stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    // Nothing was set up before the scheduler answered.
    assert!(!tmp.path().join("work").exists());
}
