//! `dbuild local` stops before building anything when a BuildRequires is
//! provided by no spec, the base builder root or `--assume-provided`. Runs
//! the real `dbuild` binary; needs root and the cached builder root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

fn spec(specs: &Path, name: &str, preamble: &str) {
    let dir = specs.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n{preamble}\
         %description\nd\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho {name} > %{{buildroot}}/usr/share/{name}/f\n\
         %files\n/usr/share/{name}/f\n"
    );
    std::fs::write(dir.join(format!("{name}.spec")), text).unwrap();
}

fn dbuild_local(specs: &Path, state: &Path, root: &Path, extra: &[&str]) -> (i32, String) {
    let run = support::dbuild_local(specs, state, root, &[&["--workers", "1"], extra].concat());
    (run.code, run.stderr)
}

/// The cached builder root and a fresh directory under /var/tmp with its `SPECS`.
fn fixture(prefix: &str) -> (std::path::PathBuf, tempfile::TempDir, std::path::PathBuf) {
    let root = support::builder_root(&[]);
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap();
    let specs = tmp.path().join("SPECS");
    (root, tmp, specs)
}

#[test]
fn unresolved_buildrequires_stop_the_run_before_anything_is_built() {
    let (root, tmp, specs) = fixture("dbuild-provided-");
    // gcc and make come from the base root (dbuild-base-provides), lib from the tree.
    spec(&specs, "lib", "");
    spec(
        &specs,
        "needy",
        "BuildRequires: lib gcc make python3-not-packaged\nRequires: /usr/sbin/not-here\n",
    );
    spec(&specs, "other", "BuildRequires: python3-not-packaged\n");
    let state = tmp.path().join("state");

    let (code, stderr) = dbuild_local(&specs, &state, &root, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("dbuild: error: 1 BuildRequires is not provided by any spec, the base root or --assume-provided:\n  python3-not-packaged (wanted by needy, other)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("gcc (wanted") && !stderr.contains("lib (wanted"),
        "{stderr}"
    );
    // The runtime file dependency only warns.
    assert!(
        stderr.contains("warning: 1 runtime Requires")
            && stderr.contains("/usr/sbin/not-here (wanted by needy)"),
        "{stderr}"
    );
    // Nothing was started or built.
    assert!(!state.join("logs/scheduler.log").exists());
    assert!(!state.join("local/stage/RPMS").exists());
    let base = std::fs::read_to_string(state.join("base-provides")).unwrap();
    assert!(
        base.lines().any(|l| l == "gcc") && base.lines().any(|l| l == "dbuild-base-provides"),
        "{base}"
    );

    // Assumed provided (from a flag and from a file): the check passes, and
    // rpmbuild's own BuildRequires check passes too, through the worker's
    // `dbuild-assumed-provides` package. Each variant starts from its own
    // empty state dir, so each builds everything itself.
    let names = tmp.path().join("assumed.txt");
    std::fs::write(&names, "# not packaged\npython3-not-packaged\n").unwrap();
    for (variant, extra) in [
        &["--assume-provided", "python3-not-packaged"][..],
        &["--assume-provided-file", names.to_str().unwrap()][..],
    ]
    .into_iter()
    .enumerate()
    {
        let state = tmp.path().join(format!("state-assumed-{variant}"));
        let run = support::dbuild_local(
            &specs,
            &state,
            &root,
            &[&["--workers", "1"], extra].concat(),
        );
        let (code, stderr) = (run.code, run.stderr);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            !stderr.contains("BuildRequires is not provided"),
            "{stderr}"
        );
        assert!(state.join("logs/scheduler.log").exists());
        assert_eq!(
            support::listed(&run.stdout, "built"),
            ["lib", "needy", "other"].map(String::from).into(),
            "{}",
            run.stdout
        );
        for built in ["lib", "needy", "other"] {
            assert!(
                state
                    .join(format!("local/stage/RPMS/noarch/{built}-1-1.noarch.rpm"))
                    .exists(),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_buildrequires_cycle_stops_the_run_before_anything_is_built() {
    let (root, tmp, specs) = fixture("dbuild-cycle-");
    spec(&specs, "chicken", "BuildRequires: egg\n");
    spec(&specs, "egg", "BuildRequires: chicken >= 1\n");
    spec(&specs, "free", "");
    let state = tmp.path().join("state");

    let (code, stderr) = dbuild_local(&specs, &state, &root, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "dbuild: error: 1 BuildRequires cycle (its packages need each other built first, so rpmbuild would fail on them):\n  chicken, egg\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("    chicken needs egg  [BuildRequires: egg]")
            && stderr.contains("    egg needs chicken  [BuildRequires: chicken >= 1]")
            && stderr.contains("--assume-provided"),
        "{stderr}"
    );
    // Nothing was started or built, not even the package outside the cycle.
    assert!(!state.join("logs/scheduler.log").exists());
    assert!(!state.join("local/stage/RPMS").exists());
}
