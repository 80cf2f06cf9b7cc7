//! `dbuild spec-dump` run as a user would: the real binary, real spec files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn feature_specs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../common/tests/specs")
}

fn dump(args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .arg("spec-dump")
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap(), lines)
}

#[test]
fn prints_one_object_per_spec_sorted_with_the_agreed_keys() {
    let dir = feature_specs();
    let (code, records) = dump(&[
        "--specs",
        dir.to_str().unwrap(),
        "--define",
        "dist .ph5",
        "--arch",
        "x86_64",
    ]);
    assert_eq!(code, 1, "errors/ holds specs that cannot be parsed");
    let files: Vec<&str> = records
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    let mut sorted = files.clone();
    sorted.sort_unstable();
    assert_eq!(files, sorted);
    for r in &records {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "build_requires",
                "epoch",
                "error",
                "file",
                "name",
                "packages",
                "release",
                "version"
            ]
        );
    }
    let deps = records
        .iter()
        .find(|r| r["file"] == "deps/deps.spec")
        .unwrap();
    assert_eq!(deps["error"], serde_json::Value::Null);
    assert_eq!(deps["packages"], serde_json::json!(["deps", "deps-libs"]));
    let brs: Vec<&str> = deps["build_requires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        brs.contains(&"c = 2:3.4-5")
            && brs.contains(&"(coreutils or coreutils-selinux)")
            && brs.contains(&"j <= 7")
    );
    let macros = records
        .iter()
        .find(|r| r["file"] == "macros/macros.spec")
        .unwrap();
    assert_eq!(macros["epoch"], "2");
    assert_eq!(macros["release"], "1.ph5.x");
    let broken = records
        .iter()
        .find(|r| r["file"] == "errors/unterminated-if.spec")
        .unwrap();
    assert!(broken["error"]
        .as_str()
        .unwrap()
        .contains("unterminated-if.spec:6: Unclosed %if"));
}

#[test]
fn exit_status_is_zero_only_when_every_spec_parsed_and_two_on_usage_errors() {
    let good = feature_specs().join("deps");
    assert_eq!(dump(&["--specs", good.to_str().unwrap()]).0, 0);
    assert_eq!(
        dump(&["--specs", good.to_str().unwrap(), "--define", "no-value"]).0,
        2
    );
    assert_eq!(dump(&["--specs", "/nonexistent/specs"]).0, 1);
}
