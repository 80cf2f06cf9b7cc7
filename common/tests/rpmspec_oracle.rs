//! The oracle test: rpm's own `rpmspec -q` against our parser, over every
//! spec of the Photon 5.0 corpus (../shared/corpus/photon-5.0/SPECS).
//!
//! Per spec we compare the source name/epoch/version/release, the set of
//! binary packages built and the set of BuildRequires. The agreement count
//! is printed and may only ratchet up: the test fails below `TARGET`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_common::spec::{parse_tree, ParseOptions, Spec};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Specs rpmspec can parse and on which we agree (1075 of 1077 can be parsed).
const TARGET: usize = 1075;

fn corpus() -> PathBuf {
    dbuild_common::corpus::photon_specs()
}

#[derive(Debug, PartialEq)]
struct Answer {
    name: String,
    epoch: Option<String>,
    version: String,
    release: String,
    packages: BTreeSet<String>,
    build_requires: BTreeSet<String>,
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rpmspec(spec: &Path, query: &[&str]) -> Option<String> {
    let dir = spec.parent().unwrap();
    let out = Command::new("rpmspec")
        .arg("-q")
        .args(query)
        .args(["--target", "x86_64", "--define"])
        .arg(format!("_sourcedir {}", dir.display()))
        .args(["--define", "dist .ph5", "--define", "with_check 0"])
        .arg(spec)
        .output()
        .expect("rpmspec must be installed (Debian package `rpm`)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What rpm says, or None when rpmspec cannot parse the spec.
fn oracle(spec: &Path) -> Option<Answer> {
    let srpm = rpmspec(
        spec,
        &["--srpm", "--qf", "%{name}|%{epoch}|%{version}|%{release}\n"],
    )?;
    let fields: Vec<&str> = srpm.trim().split('|').collect();
    let built = rpmspec(spec, &["--builtrpms", "--qf", "%{name}\n"])?;
    let brs = rpmspec(spec, &["--buildrequires"])?;
    Some(Answer {
        name: fields[0].to_string(),
        epoch: (fields[1] != "(none)").then(|| fields[1].to_string()),
        version: fields[2].to_string(),
        release: fields[3].to_string(),
        packages: built.split_whitespace().map(str::to_string).collect(),
        build_requires: brs
            .lines()
            .map(normalise)
            .filter(|l| !l.is_empty())
            .collect(),
    })
}

fn ours(spec: &Spec) -> Answer {
    Answer {
        name: spec.name.clone(),
        epoch: spec.epoch.clone(),
        version: spec.version.clone(),
        release: spec.release.clone(),
        packages: spec.built_packages().map(|p| p.name.clone()).collect(),
        build_requires: spec
            .build_requires
            .iter()
            .map(|d| normalise(&d.to_string()))
            .collect(),
    }
}

/// Agreement of our parser with rpmspec over one tree.
struct Comparison {
    total: usize,
    /// Specs rpmspec parses, and whether we agree (with the difference).
    parsable: Vec<(PathBuf, Option<String>)>,
    /// Specs rpmspec rejects, and our error (None when we accepted it).
    rejected: Vec<(PathBuf, Option<String>)>,
}

fn compare_tree(dir: &Path) -> Comparison {
    assert!(dir.is_dir(), "spec tree missing: {}", dir.display());
    let opts = ParseOptions {
        defines: vec![
            ("dist".into(), ".ph5".into()),
            ("with_check".into(), "0".into()),
        ],
        ..ParseOptions::default()
    };
    let parsed = parse_tree(dir, &opts).unwrap();
    let outcomes: Vec<(PathBuf, Option<Answer>, Result<Answer, String>)> = parsed
        .par_iter()
        .map(|(rel, result)| {
            (
                rel.clone(),
                oracle(&dir.join(rel)),
                result.as_ref().map(ours).map_err(|e| e.to_string()),
            )
        })
        .collect();
    let mut cmp = Comparison {
        total: parsed.len(),
        parsable: Vec::new(),
        rejected: Vec::new(),
    };
    for (rel, theirs, mine) in outcomes {
        match (theirs, mine) {
            (Some(t), Ok(m)) if t == m => cmp.parsable.push((rel, None)),
            (Some(t), Ok(m)) => cmp
                .parsable
                .push((rel, Some(format!("ours {m:?}\n  rpm  {t:?}")))),
            (Some(_), Err(e)) => cmp
                .parsable
                .push((rel, Some(format!("we fail where rpm parses: {e}")))),
            (None, Ok(_)) => cmp.rejected.push((rel, None)),
            (None, Err(e)) => cmp.rejected.push((rel, Some(e))),
        }
    }
    cmp
}

impl Comparison {
    fn agreements(&self) -> usize {
        self.parsable.iter().filter(|(_, d)| d.is_none()).count()
    }

    fn report(&self, label: &str) {
        println!(
            "rpmspec oracle ({label}): agreement on {} of {} specs rpmspec can parse ({} in the tree)",
            self.agreements(),
            self.parsable.len(),
            self.total
        );
        for (rel, why) in self.parsable.iter().filter(|(_, d)| d.is_some()).take(20) {
            println!(
                "DISAGREE {}: {}",
                rel.display(),
                why.as_deref().unwrap_or("")
            );
        }
    }
}

#[test]
fn parser_agrees_with_rpmspec_on_photon_5() {
    let cmp = compare_tree(&corpus());
    assert_eq!(cmp.total, 1077, "the corpus should hold 1077 specs");
    cmp.report("Photon 5.0");
    assert!(
        cmp.agreements() >= TARGET,
        "agreement fell to {}, below the target {TARGET}",
        cmp.agreements()
    );
}

/// Hand-written specs for what the corpus uses little or not at all
/// (`%elif`, `%ifnarch`, bconds, parametric macros, rich dependencies, ...),
/// and broken specs that rpm rejects: we must reject them too, naming the file.
#[test]
fn parser_agrees_with_rpmspec_on_feature_specs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs");
    let cmp = compare_tree(&dir);
    cmp.report("feature specs");
    assert!(
        cmp.parsable.len() >= 8,
        "rpmspec should parse the feature specs"
    );
    assert_eq!(cmp.agreements(), cmp.parsable.len());
    assert!(
        cmp.rejected.len() >= 14,
        "rpmspec should reject every spec in errors/"
    );
    for (rel, our_error) in &cmp.rejected {
        let e = our_error
            .as_deref()
            .unwrap_or_else(|| panic!("{} is rejected by rpm but we accepted it", rel.display()));
        let name = rel.file_name().unwrap().to_string_lossy();
        assert!(
            e.contains(&*name),
            "error for {} does not name the file: {e}",
            rel.display()
        );
    }
}
