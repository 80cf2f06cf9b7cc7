//! `dbuild local` end to end, as a user runs it: the real `dbuild` binary
//! starting the real scheduler and two real workers, which build the
//! example distribution with rpmbuild in chroots. Needs root, debootstrap
//! and rpm (the builder root is made once per machine, cached in /var/tmp).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use support::{copy_tree, listed, Run};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/SPECS")
}

/// The builder root the worker's tests use too (same cache key), made once.
fn base_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| support::builder_root(&[])).clone()
}

/// `dbuild local` with 2 workers and `--check`, so the examples' `%check` sections run too.
fn dbuild_local(specs: &Path, state: &Path, root: &Path) -> Run {
    support::dbuild_local(
        specs,
        state,
        root,
        &["--workers", "2", "--check", "--define", "dist .ex"],
    )
}

fn rpms(state: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for arch in ["x86_64", "noarch"] {
        if let Ok(dir) = std::fs::read_dir(state.join("local/stage/RPMS").join(arch)) {
            names.extend(dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()));
        }
    }
    names
}

#[test]
fn builds_the_examples_installs_them_and_rebuilds_only_what_changed() {
    let root = base_root();
    let tmp = tempfile::Builder::new()
        .prefix("dbuild-local-e2e-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let specs = tmp.path().join("SPECS");
    copy_tree(&examples(), &specs);
    let state = tmp.path().join("state");

    let first = dbuild_local(&specs, &state, &root);
    assert_eq!(first.code, 0, "first build failed");
    assert_eq!(listed(&first.stdout, "built").len(), 19);
    let verified = "verify: stage/ holds exactly what the scheduler accepted (44 files)";
    assert!(first.stdout.contains(verified), "{}", first.stdout);
    let built = rpms(&state);
    for expected in [
        "libgreet-1.2.0-1.ex.x86_64.rpm",
        "libgreet-devel-1.2.0-1.ex.x86_64.rpm",
        "libhash-3.1.0-1.ex.x86_64.rpm",
        "greet-data-1.0-1.ex.noarch.rpm",
        "libvec-devel-1.1.0-1.ex.noarch.rpm",
        "polyglot-0.5.0-1.ex.x86_64.rpm",
        "mathx-tests-0.9.3-1.ex.x86_64.rpm",
        "dbuild-examples-1.0-1.ex.noarch.rpm",
        "dbuild-examples-doc-1.0-1.ex.noarch.rpm",
    ] {
        assert!(
            built.contains(expected),
            "{expected} missing from {built:?}"
        );
    }
    assert_eq!(built.len(), 25, "{built:?}");
    assert!(
        !built.iter().any(|r| r.starts_with("libvec-1.1.0")),
        "libvec has no %files: not built"
    );

    // Everything installs into an empty root, with no missing dependency.
    let empty = tmp.path().join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    let files: Vec<PathBuf> = ["x86_64", "noarch"]
        .iter()
        .flat_map(|a| {
            std::fs::read_dir(state.join("local/stage/RPMS").join(a))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    let install = Command::new("rpm")
        .arg("--root")
        .arg(&empty)
        .args(["-i", "--nosignature"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "rpm -i: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(empty.join("usr/bin/polyglot").exists());

    // Unchanged tree: nothing is rebuilt.
    let second = dbuild_local(&specs, &state, &root);
    assert_eq!(second.code, 0);
    assert_eq!(
        listed(&second.stdout, "up-to-date").len(),
        19,
        "{}",
        second.stdout
    );
    assert!(listed(&second.stdout, "built").is_empty());

    // One spec changed: it and exactly what builds against it are rebuilt.
    let spec = specs.join("libstrutil/libstrutil.spec");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("Release:        1%{?dist}", "Release:        2%{?dist}");
    std::fs::write(&spec, text).unwrap();
    let third = dbuild_local(&specs, &state, &root);
    assert_eq!(third.code, 0);
    let rebuilt = listed(&third.stdout, "built");
    let expected: BTreeSet<String> = ["libstrutil", "libcfg", "wordcount", "shout", "cfgget"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(rebuilt, expected);
    // The new release replaced the old one's files; the share is what was accepted.
    let now = rpms(&state);
    assert!(now.contains("libstrutil-2.0.1-2.ex.x86_64.rpm"), "{now:?}");
    assert!(!now.contains("libstrutil-2.0.1-1.ex.x86_64.rpm"), "{now:?}");
    assert!(third.stdout.contains(verified), "{}", third.stdout);
    let verify = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["verify", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && out.contains("holds exactly what the scheduler accepted"),
        "{out}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_broken_package_fails_with_its_log_and_its_dependents_are_dep_failed() {
    let root = base_root();
    let tmp = tempfile::Builder::new()
        .prefix("dbuild-local-fail-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let specs = tmp.path().join("SPECS");
    for p in ["libmathx", "primes", "mathx-tests", "banner"] {
        copy_tree(&examples().join(p), &specs.join(p));
    }
    let spec = specs.join("libmathx/libmathx.spec");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "%build\n",
        "%build\necho 'deliberately broken' >&2\nexit 3\n",
    );
    std::fs::write(&spec, text).unwrap();
    let state = tmp.path().join("state");
    let run = dbuild_local(&specs, &state, &root);
    assert_eq!(run.code, 1, "a failed package must make dbuild local fail");
    assert_eq!(
        listed(&run.stdout, "built"),
        BTreeSet::from(["banner".to_string()])
    );
    let failed_line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("libmathx:"))
        .expect("libmathx in the failed list");
    let log = failed_line
        .rsplit("log: ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("deliberately broken"),
        "the log {log} has the build output"
    );
    for dependent in ["primes", "mathx-tests"] {
        assert!(
            run.stdout
                .contains(&format!("    {dependent}: needs libmathx, which failed")),
            "{}",
            run.stdout
        );
    }
}

/// Processes whose command line mentions `needle` (our children, by their state dir).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn ctrl_c_stops_everything_and_the_next_run_resumes() {
    let root = base_root();
    let tmp = tempfile::Builder::new()
        .prefix("dbuild-local-int-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let specs = tmp.path().join("SPECS");
    for p in ["libgreet", "greet", "banner"] {
        copy_tree(&examples().join(p), &specs.join(p));
    }
    let spec = specs.join("greet/greet.spec");
    let original = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, original.replace("%build\n", "%build\nsleep 300\n")).unwrap();
    let state = tmp.path().join("state");
    let mut child = support::dbuild_local_command(&specs, &state, &root)
        .args(["--workers", "2", "--define", "dist .ex"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until greet is building (its log has started).
    let log = state.join("local/stage/LOGS/greet/1.log");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("running rpmbuild")) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "greet never started building"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let stopped = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < std::time::Duration::from_secs(60),
            "dbuild local did not stop after Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(130));
    let needle = state.display().to_string();
    assert!(
        processes_mentioning(&needle).is_empty(),
        "left running: {:?}",
        processes_mentioning(&needle)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&needle),
        "a mount under the state dir was left behind"
    );

    // Fixed and run again: the build resumes; what was built before Ctrl-C
    // is not built again (one log each), greet is.
    std::fs::write(&spec, original).unwrap();
    let again = dbuild_local(&specs, &state, &root);
    assert_eq!(again.code, 0);
    assert_eq!(listed(&again.stdout, "built").len(), 3);
    for done_before in ["libgreet", "banner"] {
        let logs = std::fs::read_dir(state.join("local/stage/LOGS").join(done_before))
            .unwrap()
            .count();
        assert_eq!(logs, 1, "{done_before} was built again");
    }
    let greet_logs: String = std::fs::read_dir(state.join("local/stage/LOGS/greet"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        greet_logs.contains("cancelled") || greet_logs.contains("stopping"),
        "the interrupted attempt is not in the log:\n{greet_logs}"
    );
    assert!(
        greet_logs.contains("succeeded"),
        "greet was built after the resume"
    );
}
