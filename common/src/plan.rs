//! The build plan: what the scheduler (and `dbuild simulate`) consumes.
//!
//! A [`Plan`] is a pure description of a build: one entry per source package,
//! with the indices of the packages it needs built first, the binary packages
//! it builds, the binary packages a worker installs before building it, a
//! static weight, and the files that go into its input hash. It is produced
//! from the dependency graph (see `Plan::from_graph`) or written by hand in
//! tests, and it carries no I/O beyond [`Plan::input_hashes`], which reads the
//! listed files.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One source package of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPackage {
    /// Source package name (unique in the plan).
    pub name: String,
    /// `[epoch:]version-release` of the source package, as parsed.
    pub evr: String,
    /// The spec file, relative to the SPECS directory.
    pub spec: PathBuf,
    /// Indices (into [`Plan::packages`]) of the packages that must be built first.
    pub needs: Vec<usize>,
    /// Binary package names this source package builds.
    pub builds: Vec<String>,
    /// Binary package names to install before building (BuildRequires closure).
    pub installs: Vec<String>,
    /// Static weight (seconds or relative units) from a weights file, if any.
    pub weight: Option<f64>,
    /// Files hashed into the input hash, relative to the SPECS directory:
    /// the spec, `%include`d files and sources/patches found beside the spec.
    pub inputs: Vec<PathBuf>,
}

impl PlanPackage {
    /// A package with only a name and spec path; the rest empty.
    pub fn new(name: impl Into<String>, spec: impl Into<PathBuf>) -> Self {
        let spec = spec.into();
        PlanPackage {
            name: name.into(),
            evr: String::new(),
            spec: spec.clone(),
            needs: Vec::new(),
            builds: Vec::new(),
            installs: Vec::new(),
            weight: None,
            inputs: vec![spec],
        }
    }
}

/// A whole build: packages plus the target they are built for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub packages: Vec<PlanPackage>,
    /// Target architecture, e.g. `x86_64`.
    pub arch: String,
    /// `--define` macros every build gets, in order.
    pub macros: Vec<(String, String)>,
}

/// Why a plan cannot be scheduled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("package {0:?} appears twice in the plan")]
    DuplicateName(String),
    #[error("package {package:?} needs index {index}, but the plan has {len} packages")]
    BadIndex {
        package: String,
        index: usize,
        len: usize,
    },
    #[error("package {package:?} needs itself")]
    SelfLoop { package: String },
    #[error("dependency cycle through packages {0:?}")]
    Cycle(Vec<String>),
}

/// Could not hash a package's inputs.
#[derive(Debug, thiserror::Error)]
#[error("package {package}: cannot read input {file}: {source}")]
pub struct HashError {
    pub package: String,
    pub file: PathBuf,
    pub source: std::io::Error,
}

impl Plan {
    /// Index of the package called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.packages.iter().position(|p| p.name == name)
    }

    /// For each package, the packages that need it (reverse edges).
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.packages.len()];
        for (i, p) in self.packages.iter().enumerate() {
            for &n in &p.needs {
                if let Some(v) = out.get_mut(n) {
                    v.push(i);
                }
            }
        }
        out
    }

    /// Checks names are unique, indices valid and the `needs` relation acyclic.
    pub fn validate(&self) -> Result<(), PlanError> {
        let mut seen = HashSet::new();
        let len = self.packages.len();
        for (i, p) in self.packages.iter().enumerate() {
            if !seen.insert(p.name.as_str()) {
                return Err(PlanError::DuplicateName(p.name.clone()));
            }
            for &n in &p.needs {
                if n >= len {
                    return Err(PlanError::BadIndex {
                        package: p.name.clone(),
                        index: n,
                        len,
                    });
                }
                if n == i {
                    return Err(PlanError::SelfLoop {
                        package: p.name.clone(),
                    });
                }
            }
        }
        self.topo_order().map(|_| ())
    }

    /// Packages in an order where every package comes after what it needs.
    pub fn topo_order(&self) -> Result<Vec<usize>, PlanError> {
        let len = self.packages.len();
        let mut missing: Vec<usize> = self
            .packages
            .iter()
            .map(|p| p.needs.iter().filter(|&&n| n < len).count())
            .collect();
        let dependents = self.dependents();
        let mut order: Vec<usize> = (0..len).filter(|&i| missing[i] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let i = order[head];
            head += 1;
            for &d in &dependents[i] {
                missing[d] -= 1;
                if missing[d] == 0 {
                    order.push(d);
                }
            }
        }
        if order.len() == len {
            Ok(order)
        } else {
            let done: HashSet<usize> = order.into_iter().collect();
            let mut stuck: Vec<String> = (0..len)
                .filter(|i| !done.contains(i))
                .map(|i| self.packages[i].name.clone())
                .collect();
            stuck.sort();
            Err(PlanError::Cycle(stuck))
        }
    }

    /// Input hash of every package (hex sha256), reading input files under
    /// `specs_dir`. A package's hash covers its name and EVR, its input files
    /// (path and content; a listed file that does not exist is hashed as
    /// absent), the macros and arch of the plan, `extra` (e.g. macro files'
    /// contents) and the hashes of the packages it needs, so a change
    /// propagates to everything built on top of it.
    pub fn input_hashes(&self, specs_dir: &Path, extra: &str) -> Result<Vec<String>, HashError> {
        let order = self
            .topo_order()
            .unwrap_or_else(|_| (0..self.packages.len()).collect());
        let mut hashes: Vec<Option<String>> = vec![None; self.packages.len()];
        for i in order {
            let p = &self.packages[i];
            let mut h = Sha256::new();
            h.update(b"dbuild-input-v1\0");
            for part in [p.name.as_str(), p.evr.as_str(), self.arch.as_str(), extra] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            for (k, v) in &self.macros {
                h.update(format!("define {k} {v}\0").as_bytes());
            }
            let mut inputs = p.inputs.clone();
            inputs.sort();
            inputs.dedup();
            for rel in &inputs {
                h.update(format!("file {}\0", rel.display()).as_bytes());
                hash_file(&mut h, &specs_dir.join(rel)).map_err(|source| HashError {
                    package: p.name.clone(),
                    file: specs_dir.join(rel),
                    source,
                })?;
            }
            let mut needs: Vec<&str> = p
                .needs
                .iter()
                .filter_map(|&n| hashes.get(n)?.as_deref())
                .collect();
            needs.sort_unstable();
            for n in needs {
                h.update(format!("needs {n}\0").as_bytes());
            }
            hashes[i] = Some(hex(&h.finalize()));
        }
        Ok(hashes.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Which package builds each binary package name.
    pub fn binary_owners(&self) -> HashMap<&str, usize> {
        let mut out = HashMap::new();
        for (i, p) in self.packages.iter().enumerate() {
            for b in &p.builds {
                out.entry(b.as_str()).or_insert(i);
            }
        }
        out
    }
}

fn hash_file(h: &mut Sha256, path: &Path) -> std::io::Result<()> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            h.update(b"absent\0");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.update(b"\0end\0");
    Ok(())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// What was left out while planning from a spec tree (reported, not fatal).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanNotes {
    /// Specs that could not be parsed: file and error.
    pub parse_errors: Vec<(PathBuf, String)>,
    /// Dependencies nothing provides (specs, base root, assumed names), with
    /// their kind and the packages that want them.
    pub unresolved: Vec<crate::graph::Unresolved>,
    /// Cycles found (and cut by the graph's policy), as package lists.
    pub cycles: Vec<Vec<String>>,
    /// Specs that do not build on the target arch.
    pub excluded: Vec<String>,
}

fn rel_to(base: &Path, p: &Path) -> Option<PathBuf> {
    p.strip_prefix(base).ok().map(Path::to_path_buf)
}

impl Plan {
    /// The plan of a dependency graph: packages in graph order, needs as in
    /// the graph (acyclic), installs = BuildRequires closure, static weights
    /// from `weights` when it lists the package, inputs = the spec, its
    /// `%include`s under `specs_dir`, and the sources/patches that exist in
    /// the spec's directory.
    pub fn from_graph(
        graph: &crate::graph::BuildGraph,
        specs_dir: &Path,
        arch: &str,
        macros: Vec<(String, String)>,
        weights: Option<&crate::weights::Weights>,
    ) -> Plan {
        let packages = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let spec = &node.spec;
                let spec_rel = rel_to(specs_dir, &spec.file).unwrap_or_else(|| {
                    spec.file.file_name().map(PathBuf::from).unwrap_or_default()
                });
                let spec_dir = specs_dir
                    .join(&spec_rel)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let mut inputs = vec![spec_rel.clone()];
                inputs.extend(
                    spec.includes
                        .iter()
                        .filter_map(|inc| rel_to(specs_dir, inc)),
                );
                for src in spec.sources.iter().chain(&spec.patches) {
                    let f = spec_dir.join(src.file_name());
                    if !src.file_name().is_empty() && f.is_file() {
                        inputs.extend(rel_to(specs_dir, &f));
                    }
                }
                PlanPackage {
                    name: node.key.clone(),
                    evr: spec.evr(),
                    spec: spec_rel,
                    needs: node.needs.clone(),
                    builds: spec.built_packages().map(|b| b.name.clone()).collect(),
                    installs: graph
                        .install_names(i)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    weight: weights
                        .filter(|w| w.contains(&spec.name))
                        .map(|w| w.get(&spec.name)),
                    inputs,
                }
            })
            .collect();
        Plan {
            packages,
            arch: arch.to_string(),
            macros,
        }
    }

    /// Parses `specs_dir`, builds the graph (with what the build root
    /// `provided`) and its plan. Unparsable specs, unresolved dependencies
    /// and cycles are returned as notes; deciding whether unresolved
    /// BuildRequires stop the build is the caller's business
    /// ([`crate::provided::check_build_requires`]).
    pub fn from_spec_tree(
        specs_dir: &Path,
        opts: &crate::spec::ParseOptions,
        weights: Option<&crate::weights::Weights>,
        provided: &crate::provided::Provided,
    ) -> Result<(Plan, PlanNotes), crate::spec::SpecError> {
        let mut notes = PlanNotes::default();
        let mut specs = Vec::new();
        for (file, res) in crate::spec::parse_tree(specs_dir, opts)? {
            match res {
                Ok(spec) => specs.push(spec),
                Err(e) => notes.parse_errors.push((file, e.to_string())),
            }
        }
        let graph = crate::graph::BuildGraph::build(specs, &provided.graph_options(&opts.arch));
        notes.unresolved = graph.unresolved.clone();
        notes.cycles = graph
            .cycles
            .iter()
            .map(|c| {
                c.nodes
                    .iter()
                    .map(|&m| graph.nodes[m].key.clone())
                    .collect()
            })
            .collect();
        notes.excluded = graph
            .excluded
            .iter()
            .map(|e| format!("{}: {}", e.spec.file.display(), e.reason))
            .collect();
        let plan = Plan::from_graph(&graph, specs_dir, &opts.arch, opts.defines.clone(), weights);
        Ok((plan, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Plan {
        let mut a = PlanPackage::new("a", "a/a.spec");
        a.builds = vec!["a".into(), "a-devel".into()];
        let mut b = PlanPackage::new("b", "b/b.spec");
        b.needs = vec![0];
        let mut c = PlanPackage::new("c", "c/c.spec");
        c.needs = vec![1];
        Plan {
            packages: vec![a, b, c],
            arch: "x86_64".into(),
            macros: vec![],
        }
    }

    #[test]
    fn validates_and_orders() {
        let p = chain();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.topo_order(), Ok(vec![0, 1, 2]));
        assert_eq!(p.dependents(), vec![vec![1], vec![2], vec![]]);
        assert_eq!(p.binary_owners().get("a-devel"), Some(&0));
    }

    #[test]
    fn reports_cycles_and_bad_indices() {
        let mut p = chain();
        p.packages[0].needs = vec![2];
        assert_eq!(
            p.validate(),
            Err(PlanError::Cycle(vec!["a".into(), "b".into(), "c".into()]))
        );
        p.packages[0].needs = vec![7];
        assert!(matches!(p.validate(), Err(PlanError::BadIndex { .. })));
        p.packages[0].needs = vec![0];
        assert!(matches!(p.validate(), Err(PlanError::SelfLoop { .. })));
    }

    #[test]
    fn hash_changes_propagate_to_dependents_only() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("dbuild-plan-{}", std::process::id()));
        for n in ["a", "b", "c"] {
            std::fs::create_dir_all(dir.join(n))?;
            std::fs::write(
                dir.join(n).join(format!("{n}.spec")),
                format!("Name: {n}\n"),
            )?;
        }
        let p = chain();
        let h1 = p.input_hashes(&dir, "")?;
        std::fs::write(dir.join("b/b.spec"), "Name: b\n# changed\n")?;
        let h2 = p.input_hashes(&dir, "")?;
        assert_eq!(h1[0], h2[0]);
        assert_ne!(h1[1], h2[1]);
        assert_ne!(h1[2], h2[2]);
        let h3 = p.input_hashes(&dir, "macros changed")?;
        assert_ne!(h2[0], h3[0]);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn plan_from_a_spec_tree() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("dbuild-plan-tree-{}", std::process::id()));
        let write = |rel: &str, text: &str| -> std::io::Result<()> {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap_or(&dir))?;
            std::fs::write(p, text)
        };
        write(
            "lib/lib.spec",
            "Name: lib\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nPatch0: fix.patch\nSource0: https://x/lib-1.tar.gz\n\
             %description\nd\n%package devel\nSummary: d\nRequires: lib\n%description devel\nd\n%files\n/a\n%files devel\n/b\n",
        )?;
        write("lib/fix.patch", "--- a\n")?;
        write(
            "app/app.spec",
            "Name: app\nVersion: 2\nRelease: 1\nSummary: s\nLicense: MIT\nBuildRequires: lib-devel\n%description\nd\n%files\n/c\n",
        )?;
        let weights =
            crate::weights::Weights::from_map(HashMap::from([("app".to_string(), 7.0)]), 1.0);
        let (plan, notes) = Plan::from_spec_tree(
            &dir,
            &crate::spec::ParseOptions::default(),
            Some(&weights),
            &Default::default(),
        )?;
        assert!(notes.parse_errors.is_empty(), "{notes:?}");
        assert_eq!(plan.validate(), Ok(()));
        let app = plan.index_of("app").ok_or("no app")?;
        let lib = plan.index_of("lib").ok_or("no lib")?;
        let (a, l) = (&plan.packages[app], &plan.packages[lib]);
        assert_eq!(a.needs, vec![lib]);
        assert_eq!(a.spec, PathBuf::from("app/app.spec"));
        assert_eq!(a.weight, Some(7.0));
        assert_eq!(l.weight, None);
        assert_eq!(l.builds, vec!["lib".to_string(), "lib-devel".to_string()]);
        let mut installs = a.installs.clone();
        installs.sort();
        assert_eq!(installs, vec!["lib".to_string(), "lib-devel".to_string()]);
        assert_eq!(
            l.inputs,
            vec![
                PathBuf::from("lib/lib.spec"),
                PathBuf::from("lib/fix.patch")
            ]
        );
        assert_eq!(l.evr, "1-1");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
