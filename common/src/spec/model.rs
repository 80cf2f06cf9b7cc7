//! What a parsed spec file says, in the terms a build scheduler needs.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// A version comparison operator, as written in a dependency (`>=`, `<`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    /// Parses the operator spellings rpm accepts (`==` is rpm's alias for `=`).
    pub fn parse(token: &str) -> Option<Op> {
        Some(match token {
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            "=" | "==" => Op::Eq,
            ">=" | "=>" => Op::Ge,
            ">" => Op::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version constraint: `op evr`, e.g. `>= 1:2.3-4`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Constraint {
    pub op: Op,
    /// `[epoch:]version[-release]` exactly as written (after macro expansion).
    pub evr: String,
}

/// One dependency (BuildRequires, Requires, Provides, ...).
///
/// A rich dependency such as `(a >= 1 or b)` keeps its whole text in `name`
/// (that is how rpm stores and prints it) and has no constraint; use
/// [`Dependency::is_rich`] and `crate::spec::rich::parse_rich` to look inside.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Dependency {
    pub name: String,
    pub constraint: Option<Constraint>,
}

impl Dependency {
    pub fn new(name: impl Into<String>) -> Self {
        Dependency {
            name: name.into(),
            constraint: None,
        }
    }

    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }

    /// A file dependency such as `/bin/sh`.
    pub fn is_file(&self) -> bool {
        self.name.starts_with('/')
    }
}

impl fmt::Display for Dependency {
    /// Formats the way `rpmspec -q --buildrequires` prints a dependency.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.constraint {
            Some(c) => write!(f, "{} {} {}", self.name, c.op, c.evr),
            None => f.write_str(&self.name),
        }
    }
}

/// One `SourceN:` or `PatchN:` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceEntry {
    pub number: u32,
    /// The value after macro expansion: a file name or a URL.
    pub value: String,
}

impl SourceEntry {
    /// The file name rpmbuild looks for in `%_sourcedir` (the URL's last segment).
    pub fn file_name(&self) -> &str {
        let without_fragment = self.value.split('#').next().unwrap_or(&self.value);
        without_fragment
            .rsplit('/')
            .next()
            .unwrap_or(without_fragment)
    }
}

/// A binary package declared by the spec (the main one or a `%package`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BinaryPackage {
    pub name: String,
    /// rpm only builds a binary package that has a `%files` section.
    pub has_files: bool,
    /// `BuildArch:` of this package (`noarch`), inherited from the main package.
    pub build_arch: Option<String>,
    /// All `Requires`, including `Requires(pre,post,...)`.
    pub requires: Vec<Dependency>,
    /// The Requires rpm adds for the package's scriptlets: each interpreter
    /// (`/bin/sh` unless `-p` names another) and the `rpmlib(...)` features
    /// they use (`<lua>`, interpreter arguments, `-e`). Kept apart from
    /// `requires` because the graph does not follow them: every builder root
    /// has a shell and `ldconfig`, and the worker installs with `--nodeps`.
    pub script_requires: Vec<Dependency>,
    /// Explicit `Provides` (rpm's implicit `name = evr` is not listed here).
    pub provides: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
}

impl BinaryPackage {
    pub fn new(name: impl Into<String>) -> Self {
        BinaryPackage {
            name: name.into(),
            has_files: false,
            build_arch: None,
            requires: Vec::new(),
            script_requires: Vec::new(),
            provides: Vec::new(),
            conflicts: Vec::new(),
            obsoletes: Vec::new(),
        }
    }
}

/// The result of parsing one spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub file: PathBuf,
    pub name: String,
    pub epoch: Option<String>,
    pub version: String,
    pub release: String,
    /// Every declared binary package, the main one first; see `has_files`.
    pub packages: Vec<BinaryPackage>,
    pub build_requires: Vec<Dependency>,
    pub build_conflicts: Vec<Dependency>,
    pub build_arch: Option<String>,
    pub exclusive_arch: Vec<String>,
    pub exclude_arch: Vec<String>,
    pub sources: Vec<SourceEntry>,
    pub patches: Vec<SourceEntry>,
    /// Files pulled in with `%include`, in the order they were read.
    pub includes: Vec<PathBuf>,
    /// Non-fatal notes, e.g. a `%(...)` shell expansion that was not run.
    pub warnings: Vec<String>,
    /// The spec defines Photon's `network_required` to a non-zero number: its
    /// build may use the network (every other build runs without one).
    pub network_required: bool,
}

impl Spec {
    /// The binary packages rpm would build (those with a `%files` section).
    pub fn built_packages(&self) -> impl Iterator<Item = &BinaryPackage> {
        self.packages.iter().filter(|p| p.has_files)
    }

    /// `[epoch:]version-release`.
    pub fn evr(&self) -> String {
        match &self.epoch {
            Some(e) => format!("{}:{}-{}", e, self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// Whether the spec can be built for `arch` (BuildArch, ExclusiveArch, ExcludeArch).
    pub fn builds_on(&self, arch: &str) -> bool {
        let noarch_ok = |list: &[String]| list.iter().any(|a| a == arch || a == "noarch");
        let build_arch_ok = self
            .build_arch
            .as_deref()
            .is_none_or(|l| l.split_whitespace().any(|a| a == arch || a == "noarch"));
        build_arch_ok
            && (self.exclusive_arch.is_empty() || noarch_ok(&self.exclusive_arch))
            && !self.exclude_arch.iter().any(|a| a == arch)
    }
}
