//! What the build root provides: `--fail-on-unresolved` refuses a tree whose
//! BuildRequires nothing provides; `--base-provides-file` and
//! `--assume-provided` resolve them; `--check` and `--macros-file` reach leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Sched;
use serde_json::json;
use std::path::Path;

fn spec(dir: &Path, name: &str, preamble: &str) {
    let d = dir.join("SPECS").join(name);
    std::fs::create_dir_all(&d).unwrap();
    let text = format!("Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n{preamble}%description\nd\n%files\n/usr/bin/{name}\n");
    std::fs::write(d.join(format!("{name}.spec")), text).unwrap();
}

/// Runs the scheduler until it exits (it must refuse to start); returns its stderr.
fn refused(dir: &Path, extra: &[&str]) -> String {
    let out = Sched::command(dir, extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the scheduler started: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "it must not listen: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[tokio::test]
async fn unresolved_buildrequires_stop_the_scheduler_until_provided() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(
        dir,
        "a",
        "BuildRequires: python3-foo gcc\nRequires: /usr/sbin/useradd\n",
    );
    spec(
        dir,
        "b",
        "BuildRequires: python3-foo\n%if 0%{?with_check}\nBuildRequires: check-only-tool\n%endif\n",
    );
    let base = dir.join("base-provides");
    std::fs::write(&base, "# rpm -qa of the root\ngcc\nmake\n").unwrap();
    let base = base.to_str().unwrap();

    // gcc comes from the base root; python3-foo from nowhere.
    let err = refused(dir, &["--fail-on-unresolved", "--base-provides-file", base]);
    assert!(
        err.contains(
            "1 BuildRequires is not provided by any spec, the base root or --assume-provided"
        ),
        "{err}"
    );
    assert!(err.contains("python3-foo (wanted by a, b)"), "{err}");
    assert!(
        !err.contains("gcc (wanted") && !err.contains("useradd (wanted"),
        "{err}"
    );
    // Without the base root's list gcc is unresolved too.
    let err = refused(dir, &["--fail-on-unresolved"]);
    assert!(
        err.contains("2 BuildRequires are not provided") && err.contains("gcc (wanted by a)"),
        "{err}"
    );
    // Check mode defines with_check, so b's %check BuildRequires counts.
    let names = dir.join("assumed.txt");
    std::fs::write(&names, "python3-foo  # not packaged yet\n\n").unwrap();
    let names = names.to_str().unwrap();
    let err = refused(
        dir,
        &[
            "--fail-on-unresolved",
            "--base-provides-file",
            base,
            "--assume-provided-file",
            names,
            "--check",
        ],
    );
    assert!(
        err.contains("check-only-tool (wanted by b)") && !err.contains("python3-foo (wanted"),
        "{err}"
    );

    // Provided: it starts, and leases carry the check flag, the staged macro
    // files and the user's assumed names (not the base root's).
    let macros = dir.join("macros.test");
    std::fs::write(&macros, "%test_macro 42\n").unwrap();
    let s = Sched::start(
        dir,
        &[
            "--fail-on-unresolved",
            "--base-provides-file",
            base,
            "--assume-provided-file",
            names,
            "--assume-provided",
            "check-only-tool,zlib",
            "--assume-provided",
            "aaa",
            "--check",
            "--macros-file",
            macros.to_str().unwrap(),
        ],
    );
    assert_eq!(s.summary().await["packages"], 2);
    let w = s.register("w1", 2).await;
    let lease = s.lease(&w, 0).await["lease"].clone();
    assert_eq!(lease["check"], true);
    assert_eq!(
        lease["assume_provided"],
        json!(["aaa", "check-only-tool", "python3-foo", "zlib"])
    );
    assert_eq!(lease["macro_files"], json!(["MACROS/00-macros.test"]));
    assert_eq!(
        std::fs::read_to_string(dir.join("MACROS/00-macros.test")).unwrap(),
        "%test_macro 42\n"
    );
    assert!(
        lease["macros"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "with_check", "value": "1"})),
        "{lease}"
    );
    s.kill();

    // Without --fail-on-unresolved the scheduler only warns (and leases say no check).
    let s = Sched::start(dir, &[]);
    let w = s.register("w2", 1).await;
    let lease = s.lease(&w, 0).await["lease"].clone();
    assert_eq!(
        (
            lease["check"].clone(),
            lease["assume_provided"].clone(),
            lease["macro_files"].clone()
        ),
        (json!(false), json!([]), json!([]))
    );
    assert!(
        !dir.join("MACROS/00-macros.test").exists(),
        "stale macro copies are removed"
    );
    s.kill();
}
