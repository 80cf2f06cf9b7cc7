//! Unmodified Photon 5.0 python specs, built with their real upstream
//! sources from PyPI by the real `dbuild local`, on a Debian builder root
//! that has python3 and its build tools but none of the chosen packages.
//!
//! Needs root, network access to PyPI (the sources are downloaded by
//! `scripts/fetch-pypi-sources` and checked against each `config.yaml`),
//! and `../shared/corpus` beside the checkout. The builder root (debootstrap)
//! is made once per machine under /var/tmp.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dbuild_common::spec::{parse_spec_file, ParseOptions};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{listed, Run};

/// Photon spec directories, in an order where each comes after what it
/// BuildRequires: flit-core → pyparsing → packaging → hatchling → hatch-*,
/// six → packaging, pathspec → hatchling.
const CHOSEN: &[&str] = &[
    "python-flit-core",
    "python-six",
    "python-pyparsing",
    "python-packaging",
    "python-pathspec",
    "python-hatchling",
    "python-hatch-vcs",
    "python-hatch-fancy-pypi-readme",
    "python-looseversion",
];

/// Debian packages the root adds for them (their external BuildRequires:
/// python3-devel, -pip, -setuptools, -wheel; hatchling imports pluggy;
/// `%pyproject_install` calls pathfix.py, which python3.11-examples has).
const PYTHON_BASE: &[&str] = &[
    "python3",
    "python3-dev",
    "python3-setuptools",
    "python3-pip",
    "python3-wheel",
    "python3-pluggy",
    "python3.11-examples",
    "unzip",
];

fn corpus() -> PathBuf {
    dbuild_common::corpus::photon_specs()
}

/// A spec tree of the chosen directories (all, or without `leave_out`).
fn spec_tree(dir: &Path, leave_out: Option<&str>) -> PathBuf {
    let specs = dir.join("SPECS");
    for d in CHOSEN.iter().filter(|d| Some(**d) != leave_out) {
        support::copy_tree(&corpus().join(d), &specs.join(d));
    }
    specs
}

fn fetch_sources(dest: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-pypi-sources");
    let out = Command::new(script)
        .arg(corpus())
        .arg(dest)
        .args(CHOSEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "downloading the PyPI sources failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dbuild_local(specs: &Path, state: &Path, root: &Path, sources: &Path, extra: &[&str]) -> Run {
    let macros = corpus().join("python3/macros.python");
    let common = [
        "--workers",
        "2",
        "--define",
        "dist .ph5",
        "--macros-file",
        path(&macros),
        "--sources",
        path(sources),
    ];
    support::dbuild_local(specs, state, root, &[&common[..], extra].concat())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `(name, version, release)` of a spec, as the build sees it.
fn nvr(spec_dir: &Path) -> (String, String, String) {
    let spec = std::fs::read_dir(spec_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "spec"))
        .unwrap();
    let opts = ParseOptions {
        defines: vec![("dist".into(), ".ph5".into())],
        ..ParseOptions::default()
    };
    let s = parse_spec_file(&spec, &opts).unwrap();
    (s.name, s.version, s.release)
}

/// The `Version:` of the Python metadata (dist-info METADATA or egg-info
/// PKG-INFO) in the RPM's payload, and the directory it is installed in.
fn payload_metadata(rpm: &Path) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("rpm2cpio \"$1\" | cpio -idm --quiet")
        .arg("sh")
        .arg(rpm)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "unpacking {}", rpm.display());
    let found = Command::new("find")
        .arg(".")
        .args([
            "-path",
            "*.dist-info/METADATA",
            "-o",
            "-path",
            "*.egg-info/PKG-INFO",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    // The package's own metadata is the shallowest (vendored copies sit deeper).
    let file = String::from_utf8_lossy(&found.stdout)
        .lines()
        .min_by_key(|l| l.matches('/').count())
        .unwrap_or_else(|| panic!("no Python metadata in {}", rpm.display()))
        .to_string();
    let text = std::fs::read_to_string(dir.path().join(&file)).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap()
        .trim()
        .to_string();
    (version, file)
}

/// The rpmbuild seconds a package's log reports.
fn rpmbuild_secs(build_dir: &Path, name: &str) -> f64 {
    let log = std::fs::read_to_string(build_dir.join(format!("stage/LOGS/{name}/1.log")))
        .unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split("rpmbuild ").nth(1))
        .filter_map(|rest| rest.split('s').next()?.parse::<f64>().ok())
        .next_back()
        .unwrap_or(0.0)
}

#[test]
fn photon_python_specs_build_with_their_real_sources() {
    let root = support::builder_root(PYTHON_BASE);
    // The root has python3 and its build tools, but none of the modules built here.
    for module in [
        "flit_core",
        "six",
        "pyparsing",
        "packaging",
        "pathspec",
        "hatchling",
        "hatch_vcs",
        "hatch_fancy_pypi_readme",
        "looseversion",
    ] {
        let st = Command::new("chroot")
            .arg(&root)
            .args(["/usr/bin/python3", "-c", &format!("import {module}")])
            .output()
            .unwrap();
        assert!(
            !st.status.success(),
            "the builder root must not have the Python module {module}"
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("dbuild-photon-python-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let sources = tmp.path().join("sources");
    fetch_sources(&sources);

    // The whole chain builds, and every RPM carries the real version.
    let all = tmp.path().join("all");
    let specs = spec_tree(&all, None);
    let state = all.join("state");
    let run = dbuild_local(&specs, &state, &root, &sources, &[]);
    assert_eq!(run.code, 0, "the Photon python specs must build");
    let build_dir = state.join("local");
    let mut table = Vec::new();
    for d in CHOSEN {
        let (name, version, release) = nvr(&specs.join(d));
        let rpm = build_dir.join(format!(
            "stage/RPMS/noarch/{name}-{version}-{release}.noarch.rpm"
        ));
        assert!(rpm.is_file(), "{} missing", rpm.display());
        let (meta_version, meta_file) = payload_metadata(&rpm);
        assert_eq!(
            meta_version, version,
            "{name}: the installed metadata ({meta_file}) must carry the real version"
        );
        assert!(
            meta_file.starts_with("./usr/lib/python3/dist-packages/"),
            "{name}: installed in the distribution's layout, not {meta_file}"
        );
        let log =
            std::fs::read_to_string(build_dir.join(format!("stage/LOGS/{name}/1.log"))).unwrap();
        assert!(
            log.contains("network: none"),
            "{name} must build without the network"
        );
        table.push(format!(
            "{name} {version}-{release}: rpmbuild {:.1} s",
            rpmbuild_secs(&build_dir, &name)
        ));
    }
    eprintln!("built:\n  {}", table.join("\n  "));

    // flit-core left out of the run: the run stops before building anything
    // and names what is missing and who wants it.
    let without = tmp.path().join("without-flit");
    let specs = spec_tree(&without, Some("python-flit-core"));
    let state = without.join("state");
    let run = dbuild_local(&specs, &state, &root, &sources, &[]);
    assert_eq!(run.code, 2, "a missing BuildRequires must stop the run");
    assert!(
        run.stderr
            .contains("python3-flit-core (wanted by python3-pyparsing)"),
        "{}",
        run.stderr
    );
    assert!(
        !state.join("local/stage/RPMS").exists(),
        "nothing may be built"
    );

    // The user wrongly says the root has it: pyparsing fails in its build
    // (flit_core cannot be imported) and everything that needs it is
    // dep-failed. packaging is built: without %check it BuildRequires no
    // package of the run (pyparsing is only its runtime Requires), and
    // hatchling, which installs packaging with its Requires, is dep-failed.
    let run = dbuild_local(
        &specs,
        &state,
        &root,
        &sources,
        &["--assume-provided", "python3-flit-core"],
    );
    assert_eq!(run.code, 1, "a failed package must fail the run");
    let built: BTreeSet<String> = ["python3-packaging", "python3-pathspec", "python3-six"]
        .map(String::from)
        .into();
    assert_eq!(listed(&run.stdout, "built"), built);
    assert!(
        listed(&run.stdout, "failed").contains("python3-pyparsing"),
        "{}",
        run.stdout
    );
    let log =
        std::fs::read_to_string(state.join("local/stage/LOGS/python3-pyparsing/1.log")).unwrap();
    assert!(
        log.contains("No module named 'flit_core'"),
        "pyparsing's log names the missing backend"
    );
    let dep_failed = listed(&run.stdout, "dep-failed");
    for d in [
        "python3-hatchling",
        "python3-hatch-vcs",
        "python3-hatch-fancy-pypi-readme",
        "python3-looseversion",
    ] {
        assert!(
            dep_failed.contains(d),
            "{d} must be dep-failed: {}",
            run.stdout
        );
    }
    let rpms: Vec<String> = std::fs::read_dir(state.join("local/stage/RPMS/noarch"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        rpms.iter()
            .all(|f| built.iter().any(|b| f.starts_with(&format!("{b}-")))),
        "{rpms:?}"
    );
}
