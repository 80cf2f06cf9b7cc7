//! `dbuild local`'s settings errors, from the binary: usage and
//! configuration errors exit 2 with `dbuild: error: ...` naming what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `dbuild local ARGS` in `dir`, which must end within a minute: (status, stderr).
fn dbuild_local(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .arg("local")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("DBUILD_SPECS")
        .env("RUST_BACKTRACE", "1")
        .current_dir(dir)
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
            panic!("dbuild local did not end within a minute");
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

#[test]
fn without_specs_it_is_a_usage_error_saying_how_to_give_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stderr) = dbuild_local(tmp.path(), &["--workers", "1"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "dbuild: error: missing --specs: give it as a flag, as `specs` in the --config file or as DBUILD_SPECS"
    );
    // Nothing was made.
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn a_bad_settings_file_or_variable_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dbuild.toml");
    std::fs::write(&file, "specs = \"SPECS\"\nworkerz = 3\n").unwrap();
    let file_arg = file.display().to_string();
    let (code, stderr) = dbuild_local(tmp.path(), &["--config", &file_arg], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "dbuild: error: settings file {file_arg}: unknown key(s) workerz"
        )),
        "{stderr}"
    );
    std::fs::write(&file, "specs = \"SPECS\"\n").unwrap();
    let (code, stderr) = dbuild_local(
        tmp.path(),
        &["--config", &file_arg],
        &[("DBUILD_WORKERS", "several")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("dbuild: error: DBUILD_WORKERS: "),
        "{stderr}"
    );
    assert!(stderr.contains("\"several\""), "{stderr}");
}
