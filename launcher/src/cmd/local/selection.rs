//! `--packages`: build only what some binary packages need, like Photon's
//! `make packages-minimal`. The list is a Photon `packages_*.json` file
//! (`{"packages": [...]}`) or a comma-separated list of names.

use dbuild_common::graph::{BuildGraph, GraphOptions, NodeId};
use dbuild_common::spec::Spec;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("no spec builds the package(s): {0}")]
    Unknown(String),
}

/// The names asked for: a JSON file's `packages`, or a comma list.
pub fn requested_names(packages: &str) -> Result<Vec<String>, SelectionError> {
    let path = Path::new(packages);
    if packages.ends_with(".json") || path.is_file() {
        let err = |message: String| SelectionError::File {
            file: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let list = value
            .get("packages")
            .and_then(|p| p.as_array())
            .ok_or_else(|| err("expected {\"packages\": [...]}".into()))?;
        return list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("not a package name: {v}")))
            })
            .collect();
    }
    Ok(packages
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// The spec files (relative to the SPECS tree) of every source package
/// needed to build the requested binary packages and install them: their
/// own specs, what those need to build (BuildRequires and their runtime
/// closure), and the runtime Requires of everything selected.
pub fn select(
    specs: Vec<(PathBuf, Spec)>,
    requested: &[String],
    arch: &str,
) -> Result<BTreeSet<PathBuf>, SelectionError> {
    let rel_by_file: HashMap<PathBuf, PathBuf> = specs
        .iter()
        .map(|(rel, s)| (s.file.clone(), rel.clone()))
        .collect();
    let graph = BuildGraph::build(
        specs.into_iter().map(|(_, s)| s).collect(),
        &GraphOptions {
            arch: arch.to_string(),
            ..GraphOptions::default()
        },
    );
    // Every capability a built binary package offers, by name.
    let mut provider: HashMap<&str, NodeId> = HashMap::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        for bin in node.spec.built_packages() {
            provider.entry(bin.name.as_str()).or_insert(id);
            for p in &bin.provides {
                provider.entry(p.name.as_str()).or_insert(id);
            }
        }
        provider.entry(node.spec.name.as_str()).or_insert(id);
    }
    let unknown: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|n| !provider.contains_key(n))
        .collect();
    if !unknown.is_empty() {
        return Err(SelectionError::Unknown(unknown.join(", ")));
    }
    let mut chosen: BTreeSet<NodeId> = BTreeSet::new();
    let mut todo: Vec<NodeId> = requested
        .iter()
        .filter_map(|n| provider.get(n.as_str()).copied())
        .collect();
    while let Some(id) = todo.pop() {
        if !chosen.insert(id) {
            continue;
        }
        let node = &graph.nodes[id];
        todo.extend(node.needs.iter().copied());
        todo.extend(node.install.iter().map(|b| b.node));
        for bin in node.spec.built_packages() {
            todo.extend(
                bin.requires
                    .iter()
                    .filter_map(|r| provider.get(r.name.as_str()).copied()),
            );
        }
    }
    Ok(chosen
        .into_iter()
        .filter_map(|id| rel_by_file.get(&graph.nodes[id].spec.file).cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbuild_common::spec::{parse_tree, ParseOptions};

    #[test]
    fn closure_of_one_program_in_the_examples() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/SPECS");
        let specs: Vec<(PathBuf, Spec)> = parse_tree(&dir, &ParseOptions::default())
            .unwrap()
            .into_iter()
            .map(|(rel, s)| (rel, s.unwrap()))
            .collect();
        let chosen = select(specs, &["cfgget".to_string()], "x86_64").unwrap();
        let names: Vec<String> = chosen
            .iter()
            .map(|p| p.parent().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["cfgget", "libcfg", "libstrutil"]);
    }

    #[test]
    fn comma_lists_and_photon_files() {
        assert_eq!(requested_names("a, b,,c").unwrap(), ["a", "b", "c"]);
        let minimal = dbuild_common::corpus::photon_data("packages_minimal.json");
        let names = requested_names(minimal.to_str().unwrap()).unwrap();
        assert!(names.contains(&"linux".to_string()) && names.contains(&"minimal".to_string()));
    }
}
