//! The oracle test: rpm's own `rpmspec -q` against our parser, over every
//! spec of the Photon 5.0 corpus (../shared/corpus/photon-5.0/SPECS).
//!
//! Per spec we compare the source name/epoch/version/release, the set of
//! BuildRequires, and per binary package built its arch (BuildArch), its
//! Requires and its Provides (see [`Binary`] for how they are compared). The agreement count
//! is printed and may only ratchet up: the test fails below `TARGET`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_common::spec::{parse_tree, Dependency, ParseOptions, Spec};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
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
    build_requires: BTreeSet<String>,
    /// The binary packages built, by name.
    packages: BTreeMap<String, Binary>,
}

/// What a built binary package needs and offers.
///
/// Requires and Provides are compared as sets of `name [op evr]` (rpm's
/// `REQUIRENEVRS`/`PROVIDENEVRS`, white space folded). A set, because rpm
/// lists a capability once per qualifier (`Requires(post)` and
/// `Requires(postun)` of the same name) and the graph does not use the
/// qualifiers. Provides include the two rpm adds to every package, `name =
/// evr` and, unless noarch, `name(x86-64) = evr`: [`ours`] adds them to
/// what the spec lists (the parser keeps only the explicit ones). Requires
/// are the parser's `requires` and `script_requires` together (the
/// interpreters and `rpmlib(...)` features rpm adds for scriptlets).
#[derive(Debug, PartialEq)]
struct Binary {
    arch: String,
    requires: BTreeSet<String>,
    provides: BTreeSet<String>,
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

/// What rpm says, or None when rpmspec cannot parse the spec: two rpmspec
/// runs, the source package's header and every built package's.
fn oracle(spec: &Path) -> Option<Answer> {
    let srpm = rpmspec(
        spec,
        &[
            "--srpm",
            "--qf",
            "S|%{name}|%{epoch}|%{version}|%{release}\n[B|%{REQUIRENEVRS}\n]",
        ],
    )?;
    let built = rpmspec(
        spec,
        &[
            "--builtrpms",
            "--qf",
            "P|%{name}|%{arch}\n[R|%{REQUIRENEVRS}\n][V|%{PROVIDENEVRS}\n]",
        ],
    )?;
    let mut answer = Answer {
        name: String::new(),
        epoch: None,
        version: String::new(),
        release: String::new(),
        build_requires: BTreeSet::new(),
        packages: BTreeMap::new(),
    };
    let mut current = None;
    for line in srpm.lines().chain(built.lines()) {
        let fields: Vec<&str> = line.split('|').collect();
        match fields[..] {
            ["S", name, epoch, version, release] => {
                answer.name = name.to_string();
                answer.epoch = (epoch != "(none)").then(|| epoch.to_string());
                answer.version = version.to_string();
                answer.release = release.to_string();
            }
            ["B", dep] => {
                answer.build_requires.insert(normalise(dep));
            }
            ["P", name, arch] => {
                let binary = Binary {
                    arch: arch.to_string(),
                    requires: BTreeSet::new(),
                    provides: BTreeSet::new(),
                };
                answer.packages.insert(name.to_string(), binary);
                current = Some(name.to_string());
            }
            ["R", dep] | ["V", dep] => {
                let binary = answer.packages.get_mut(current.as_deref()?)?;
                let set = if fields[0] == "R" {
                    &mut binary.requires
                } else {
                    &mut binary.provides
                };
                set.insert(normalise(dep));
            }
            _ => panic!("{}: unexpected rpmspec line {line:?}", spec.display()),
        }
    }
    Some(answer)
}

fn deps<'a>(list: impl IntoIterator<Item = &'a Dependency>) -> BTreeSet<String> {
    list.into_iter()
        .map(|d| normalise(&d.to_string()))
        .collect()
}

fn ours(spec: &Spec) -> Answer {
    let evr = spec.evr();
    let packages = spec
        .built_packages()
        .map(|p| {
            let arch = p.build_arch.as_deref().unwrap_or("x86_64").to_string();
            let mut provides = deps(&p.provides);
            provides.insert(format!("{} = {evr}", p.name));
            if arch != "noarch" {
                provides.insert(format!("{}(x86-64) = {evr}", p.name));
            }
            let binary = Binary {
                arch,
                requires: deps(p.requires.iter().chain(&p.script_requires)),
                provides,
            };
            (p.name.clone(), binary)
        })
        .collect();
    Answer {
        name: spec.name.clone(),
        epoch: spec.epoch.clone(),
        version: spec.version.clone(),
        release: spec.release.clone(),
        build_requires: deps(&spec.build_requires),
        packages,
    }
}

/// The fields compared, each with its own agreement count.
const FIELDS: [&str; 6] = [
    "name/EVR",
    "packages",
    "BuildRequires",
    "BuildArch",
    "Requires",
    "Provides",
];

/// One field on which we differ from rpm: (field, what differs).
type Difference = (&'static str, String);

/// `a` against `b` as sets: what only ours has, what only rpm has.
fn set_difference(ours: &BTreeSet<String>, rpm: &BTreeSet<String>) -> String {
    let only_ours: Vec<_> = ours.difference(rpm).collect();
    let only_rpm: Vec<_> = rpm.difference(ours).collect();
    format!("only ours {only_ours:?}, only rpm {only_rpm:?}")
}

fn differences(ours: &Answer, rpm: &Answer) -> Vec<Difference> {
    let mut diffs = Vec::new();
    let evr = |a: &Answer| {
        (
            a.name.clone(),
            a.epoch.clone(),
            a.version.clone(),
            a.release.clone(),
        )
    };
    if evr(ours) != evr(rpm) {
        diffs.push((
            "name/EVR",
            format!("ours {:?}, rpm {:?}", evr(ours), evr(rpm)),
        ));
    }
    if ours.build_requires != rpm.build_requires {
        diffs.push((
            "BuildRequires",
            set_difference(&ours.build_requires, &rpm.build_requires),
        ));
    }
    let names = |a: &Answer| a.packages.keys().cloned().collect::<BTreeSet<_>>();
    if names(ours) != names(rpm) {
        diffs.push(("packages", set_difference(&names(ours), &names(rpm))));
    }
    for (name, mine) in &ours.packages {
        let Some(theirs) = rpm.packages.get(name) else {
            continue;
        };
        if mine.arch != theirs.arch {
            diffs.push((
                "BuildArch",
                format!("{name}: ours {}, rpm {}", mine.arch, theirs.arch),
            ));
        }
        for (field, ours, rpm) in [
            ("Requires", &mine.requires, &theirs.requires),
            ("Provides", &mine.provides, &theirs.provides),
        ] {
            if ours != rpm {
                diffs.push((field, format!("{name}: {}", set_difference(ours, rpm))));
            }
        }
    }
    diffs
}

/// Agreement of our parser with rpmspec over one tree.
struct Comparison {
    total: usize,
    /// Specs rpmspec parses: how we differ, or our error.
    parsable: Vec<(PathBuf, Result<Vec<Difference>, String>)>,
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
            (Some(t), Ok(m)) => cmp.parsable.push((rel, Ok(differences(&m, &t)))),
            (Some(_), Err(e)) => cmp.parsable.push((rel, Err(e))),
            (None, Ok(_)) => cmp.rejected.push((rel, None)),
            (None, Err(e)) => cmp.rejected.push((rel, Some(e))),
        }
    }
    cmp
}

impl Comparison {
    /// Specs on which we agree in every field.
    fn agreements(&self) -> usize {
        self.parsable
            .iter()
            .filter(|(_, d)| d.as_ref().is_ok_and(Vec::is_empty))
            .count()
    }

    /// Specs on which we agree in `field` (parsing them at all).
    fn field_agreements(&self, field: &str) -> usize {
        self.parsable
            .iter()
            .filter(|(_, d)| d.as_ref().is_ok_and(|d| d.iter().all(|(f, _)| *f != field)))
            .count()
    }

    fn report(&self, label: &str) {
        println!(
            "rpmspec oracle ({label}): agreement on {} of {} specs rpmspec can parse ({} in the tree)",
            self.agreements(),
            self.parsable.len(),
            self.total
        );
        for field in FIELDS {
            println!("  {field}: {}", self.field_agreements(field));
        }
        let disagreements = self.parsable.iter().filter_map(|(rel, d)| match d {
            Ok(d) if d.is_empty() => None,
            Ok(d) => Some(
                d.iter()
                    .map(|(f, why)| format!("DISAGREE {} {f}: {why}", rel.display()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Err(e) => Some(format!(
                "DISAGREE {}: we fail where rpm parses: {e}",
                rel.display()
            )),
        });
        for line in disagreements.take(40) {
            println!("{line}");
        }
    }

    /// Fails unless every field agrees on at least `target` specs.
    fn assert_at_least(&self, target: usize) {
        for field in FIELDS {
            assert!(
                self.field_agreements(field) >= target,
                "{field}: agreement fell to {}, below the target {target}",
                self.field_agreements(field)
            );
        }
        assert!(
            self.agreements() >= target,
            "agreement fell to {}, below the target {target}",
            self.agreements()
        );
    }
}

#[test]
fn parser_agrees_with_rpmspec_on_photon_5() {
    let cmp = compare_tree(&corpus());
    assert_eq!(cmp.total, 1077, "the corpus should hold 1077 specs");
    cmp.report("Photon 5.0");
    cmp.assert_at_least(TARGET);
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
        cmp.parsable.len() >= 10,
        "rpmspec should parse the feature specs"
    );
    cmp.assert_at_least(cmp.parsable.len());
    assert!(
        cmp.rejected.len() >= 15,
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
