//! What the build root provides besides the specs of the run, and the check
//! that stops a build whose BuildRequires nothing provides.
//!
//! Two sources: the base builder root's rpm database (`base`: used only for
//! what no spec provides) and the user's `--assume-provided` names
//! (`assumed`: no edge even when a spec provides them, see
//! [`crate::graph::GraphOptions::assume_provided`]). The binaries read the
//! files; this module only parses text.

use crate::graph::{DepKind, GraphOptions, Unresolved};
use std::collections::BTreeSet;

/// Capabilities that need no spec of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provided {
    /// The user's `--assume-provided` names (and `--assume-provided-file`).
    pub assumed: BTreeSet<String>,
    /// Capabilities of the base root's rpm database.
    pub base: BTreeSet<String>,
}

impl Provided {
    /// The user's names, from repeatable `NAME[,NAME...]` arguments and the
    /// text of a names file, with the base root's capabilities.
    pub fn new<S: AsRef<str>>(
        assume_args: &[S],
        assume_file_text: Option<&str>,
        base: impl IntoIterator<Item = String>,
    ) -> Provided {
        let mut assumed: BTreeSet<String> = split_names(assume_args).into_iter().collect();
        assumed.extend(assume_file_text.map(parse_name_list).unwrap_or_default());
        Provided {
            assumed,
            base: base.into_iter().collect(),
        }
    }

    /// Graph options for `arch` with these names.
    pub fn graph_options(&self, arch: &str) -> GraphOptions {
        GraphOptions {
            arch: arch.to_string(),
            assume_provided: self.assumed.clone(),
            base_provides: self.base.clone(),
        }
    }
}

/// Names of a names file: one per line; `#` starts a comment; blank lines
/// and surrounding white space are ignored.
pub fn parse_name_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// Names of repeatable `NAME[,NAME...]` arguments.
pub fn split_names<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter()
        .flat_map(|a| {
            a.as_ref()
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// BuildRequires that no spec, the base root nor `--assume-provided`
/// provides: the build must not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct UnresolvedBuildRequires(pub Vec<Unresolved>);

fn describe(deps: &[Unresolved]) -> String {
    let verb = if deps.len() == 1 { "is" } else { "are" };
    let mut out = format!(
        "{} BuildRequires {verb} not provided by any spec, the base root or --assume-provided:",
        deps.len()
    );
    for u in deps {
        out.push_str(&format!("\n  {}", wanted_line(u)));
    }
    out
}

/// `dependency (wanted by a, b)`.
pub fn wanted_line(u: &Unresolved) -> String {
    format!("{} (wanted by {})", u.dependency, u.wanted_by.join(", "))
}

/// Fails when some of `unresolved` are BuildRequires (runtime Requires only
/// deserve a warning: they matter when the RPMs are installed, not built).
pub fn check_build_requires(unresolved: &[Unresolved]) -> Result<(), UnresolvedBuildRequires> {
    let build: Vec<Unresolved> = unresolved
        .iter()
        .filter(|u| u.kind == DepKind::Build)
        .cloned()
        .collect();
    if build.is_empty() {
        Ok(())
    } else {
        Err(UnresolvedBuildRequires(build))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::BuildGraph;
    use crate::spec::parse_spec_file;
    use crate::spec::ParseOptions;

    #[test]
    fn name_files_and_comma_lists() {
        let text = "# what the root has\ngcc\n\n  make  # GNU make\n/bin/sh\n#python3\n";
        assert_eq!(parse_name_list(text), ["gcc", "make", "/bin/sh"]);
        assert_eq!(split_names(&["a,b", " c ,,", ""]), ["a", "b", "c"]);
    }

    fn tree(dir: &std::path::Path, name: &str, extra: &str) -> crate::spec::Spec {
        let file = dir.join(format!("{name}.spec"));
        let text = format!(
            "Name: {name}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n{extra}%description\nd\n%files\n/x\n"
        );
        std::fs::write(&file, text).unwrap();
        parse_spec_file(&file, &ParseOptions::default()).unwrap()
    }

    #[test]
    fn only_what_nothing_provides_stops_the_build() {
        let dir = std::env::temp_dir().join(format!("dbuild-provided-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let specs = vec![
            tree(&dir, "lib", ""),
            tree(
                &dir,
                "a",
                "BuildRequires: lib gcc python3-foo\nRequires: /usr/sbin/useradd\n",
            ),
            tree(&dir, "b", "BuildRequires: python3-foo local-tool\n"),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        let mut provided = Provided {
            base: ["gcc".to_string()].into(),
            ..Provided::default()
        };
        let g = BuildGraph::build(specs.clone(), &provided.graph_options("x86_64"));
        let err = check_build_requires(&g.unresolved).unwrap_err();
        let deps: Vec<(&str, Vec<String>)> = err
            .0
            .iter()
            .map(|u| (u.dependency.as_str(), u.wanted_by.clone()))
            .collect();
        assert_eq!(
            deps,
            vec![
                ("local-tool", vec!["b".to_string()]),
                ("python3-foo", vec!["a".to_string(), "b".to_string()])
            ]
        );
        assert_eq!(
            err.to_string(),
            "2 BuildRequires are not provided by any spec, the base root or --assume-provided:\n  \
             local-tool (wanted by b)\n  python3-foo (wanted by a, b)"
        );
        // The runtime file dependency is reported but does not stop the build.
        assert!(g
            .unresolved
            .iter()
            .any(|u| u.dependency == "/usr/sbin/useradd" && u.kind == DepKind::Runtime));
        provided.assumed = split_names(&["python3-foo,local-tool"])
            .into_iter()
            .collect();
        let g = BuildGraph::build(specs, &provided.graph_options("x86_64"));
        assert_eq!(check_build_requires(&g.unresolved), Ok(()));
        let a = g.node_by_key("a").unwrap();
        let lib = g.node_by_key("lib").unwrap();
        assert_eq!(g.nodes[a].needs, vec![lib]);
    }
}
