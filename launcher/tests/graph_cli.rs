//! Runs the real `dbuild graph` on a small spec tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dbuild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dbuild"))
}

fn write_spec(dir: &Path, name: &str, version: &str, header: &str, body: &str) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let text = format!(
        "Summary: {name}\nName: {name}\nVersion: {version}\nRelease: 1%{{?dist}}\nLicense: MIT\n{header}\n\
         %description\n{name}\n\n{body}\n%files\n\n%changelog\n"
    );
    std::fs::write(d.join(format!("{name}.spec")), text).unwrap();
}

/// alpha BR beta-devel >= 2.0; beta-devel Requires gamma (runtime closure);
/// gamma <-> delta BuildRequires cycle; epsilon BR alpha and a missing package.
fn spec_tree(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dbuild-graph-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_spec(
        &dir,
        "alpha",
        "1.0",
        "BuildRequires: beta-devel >= 2.0\n",
        "",
    );
    write_spec(
        &dir,
        "beta",
        "2.1",
        "",
        "%package devel\nSummary: dev\nRequires: gamma\n\n%description devel\ndev\n\n%files devel\n",
    );
    write_spec(&dir, "gamma", "1", "BuildRequires: delta\n", "");
    write_spec(&dir, "delta", "1", "BuildRequires: gamma\n", "");
    write_spec(
        &dir,
        "epsilon",
        "1",
        "BuildRequires: alpha\nBuildRequires: not-in-tree-xyz\n",
        "",
    );
    dir
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn json_report() {
    let dir = spec_tree("json");
    let out = dbuild()
        .args(["graph", "--json", "--define", "dist .ph5", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "packages",
        "edges",
        "levels",
        "unresolved",
        "cycles",
        "critical_path",
    ] {
        assert!(r.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(r["specs"], 5, "{r}");
    assert_eq!(
        r["parse_errors"].as_array().unwrap().len(),
        0,
        "{}",
        r["parse_errors"]
    );
    assert_eq!(r["packages"], 5);
    // alpha->beta (build), alpha->gamma (runtime), delta<->gamma, epsilon->alpha.
    assert_eq!(r["edges"], 5);
    assert_eq!(r["levels"], 3);
    let unresolved = r["unresolved"].as_array().unwrap();
    assert_eq!(unresolved.len(), 1, "{unresolved:?}");
    assert_eq!(unresolved[0]["dependency"], "not-in-tree-xyz");
    assert_eq!(strings(&unresolved[0]["wanted_by"]), vec!["epsilon"]);
    let cycles = r["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(strings(&cycles[0]["packages"]), vec!["delta", "gamma"]);
    let edges = cycles[0]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert!(edges.iter().any(|e| e["from"] == "gamma"
        && e["to"] == "delta"
        && e["dependency"] == "BuildRequires: delta"));
    assert_eq!(cycles[0]["bootstrap"], true);
    assert_eq!(
        strings(&r["critical_path"]["packages"]),
        vec!["beta", "alpha", "epsilon"]
    );
    assert_eq!(r["critical_path"]["weight"], 3.0);

    let out = dbuild()
        .args(["graph", "--json", "--explain", "alpha", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let x = &r["explain"];
    assert_eq!(x["level"], 1);
    assert_eq!(strings(&x["install"]), vec!["beta-devel", "gamma"]);
    assert_eq!(strings(&x["needed_by"]), vec!["epsilon"]);
    let needs = x["needs"].as_array().unwrap();
    assert_eq!(needs[0]["to"], "beta");
    assert_eq!(needs[0]["dependency"], "BuildRequires: beta-devel >= 2.0");
    assert_eq!(needs[1]["to"], "gamma");
    assert_eq!(needs[1]["kind"], "runtime");
    assert_eq!(needs[1]["dependency"], "Requires: gamma (of beta-devel)");
    let out = dbuild()
        .args(["graph", "--explain", "nope", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weights_text_dot_and_exit_codes() {
    let dir = spec_tree("misc");
    let weights = dir.join("weights.json");
    std::fs::write(&weights, r#"{"gamma": 10, "epsilon": 2}"#).unwrap();

    let out = dbuild()
        .args(["graph", "--specs"])
        .arg(&dir)
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Critical path"), "{text}");

    let out = dbuild()
        .args(["graph", "--dot", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("digraph"));

    let out = dbuild()
        .args(["graph", "--json", "--specs"])
        .arg(&dir)
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        strings(&r["critical_path"]["packages"]),
        vec!["gamma", "alpha", "epsilon"]
    );
    assert_eq!(r["critical_path"]["weight"], 13.0);
    // --strict fails on the unresolved BuildRequires and the bootstrap cycle.
    let out = dbuild()
        .args(["graph", "--strict", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // Assuming the missing package and gamma provided removes both problems.
    let out = dbuild()
        .args([
            "graph",
            "--strict",
            "--json",
            "--assume-provided",
            "not-in-tree-xyz,gamma",
            "--specs",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["unresolved"].as_array().unwrap().len(), 0);
    assert_eq!(r["cycles"].as_array().unwrap().len(), 0);

    // Unreadable inputs: 1; usage errors: 2.
    let out = dbuild()
        .args(["graph", "--specs", "/nonexistent/dbuild-specs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dbuild-specs"));
    let out = dbuild()
        .args(["graph", "--specs"])
        .arg(&dir)
        .args(["--weights", "/nonexistent/w.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/w.json"));
    let out = dbuild()
        .args(["graph", "--json", "--dot", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = dbuild()
        .args(["graph", "--define", "=bad", "--specs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
