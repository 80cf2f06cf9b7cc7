//! Before anything is built: every BuildRequires must be provided by a spec
//! of the run, the base builder root's rpm database or the user's
//! `--assume-provided` names, and no BuildRequires may loop (a cycle would
//! start and then fail inside rpmbuild, "a is needed by b"). Unresolved
//! runtime Requires only warn; cycles through runtime Requires are broken
//! by the scheduler.

use super::Plan;
use anyhow::Context;
use dbuild_common::graph::{BuildGraph, Cycle, DepKind};
use dbuild_common::provided::{check_build_requires, wanted_line, Provided};
use dbuild_common::spec::Spec;
use std::path::{Path, PathBuf};

/// Name of the file (in the state dir) listing the base root's capabilities
/// for the scheduler's `--base-provides-file`.
const BASE_PROVIDES_FILE: &str = "base-provides";

/// Why the build must not start: unresolved BuildRequires, BuildRequires
/// cycles, or both (each paragraph after the first starts with `dbuild local:`).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\ndbuild local: "))]
pub(super) struct Refusal(Vec<String>);

/// Reads the base root's capabilities, writes them to
/// `<state-dir>/base-provides` and checks `specs` (the staged ones). Returns
/// that file, or why the build must not start.
pub(super) async fn check(
    plan: &Plan,
    specs: Vec<Spec>,
    root: &Path,
) -> anyhow::Result<Result<PathBuf, Refusal>> {
    let base = dbuild_worker::rootfs::rpmdb_provides(root)
        .await
        .with_context(|| format!("reading what the builder root {} provides", root.display()))?;
    let file = plan.local.state_dir.join(BASE_PROVIDES_FILE);
    write_names(&file, &base)?;
    let assume_text = match &plan.local.policy.assume_provided_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the assume-provided file {}", f.display()))?,
        ),
        None => None,
    };
    let provided = Provided::new(
        &plan.local.policy.assume_provided,
        assume_text.as_deref(),
        base,
    );
    tracing::info!(
        base = provided.base.len(),
        assumed = provided.assumed.len(),
        specs = specs.len(),
        "checking BuildRequires"
    );
    let graph = BuildGraph::build(specs, &provided.graph_options(&plan.local.spec.arch));
    let runtime: Vec<String> = graph
        .unresolved
        .iter()
        .filter(|u| u.kind == DepKind::Runtime)
        .map(wanted_line)
        .collect();
    if !runtime.is_empty() {
        eprintln!(
            "dbuild local: warning: {} runtime Requires are not provided by any spec, the base root or --assume-provided:\n  {}",
            runtime.len(),
            runtime.join("\n  ")
        );
    }
    let mut refusal = Vec::new();
    if let Err(unresolved) = check_build_requires(&graph.unresolved) {
        refusal.push(unresolved.to_string());
    }
    let cycles: Vec<&Cycle> = graph
        .cycles
        .iter()
        .filter(|c| c.needs_bootstrap(&graph.edges))
        .collect();
    if !cycles.is_empty() {
        refusal.push(describe_cycles(&graph, &cycles));
    }
    Ok(if refusal.is_empty() {
        Ok(file)
    } else {
        Err(Refusal(refusal))
    })
}

/// The BuildRequires cycles, as `dbuild graph` shows them: the packages, and
/// what each needs of the next (the dependency behind every edge).
fn describe_cycles(graph: &BuildGraph, cycles: &[&Cycle]) -> String {
    let (count, verb) = match cycles.len() {
        1 => ("1 BuildRequires cycle".to_string(), "its packages need"),
        n => (format!("{n} BuildRequires cycles"), "their packages need"),
    };
    let mut out =
        format!("{count} ({verb} each other built first, so rpmbuild would fail on them):");
    for cycle in cycles {
        let names: Vec<&str> = cycle
            .nodes
            .iter()
            .map(|&n| graph.nodes[n].key.as_str())
            .collect();
        out.push_str(&format!("\n  {}", names.join(", ")));
        for &e in &cycle.edges {
            let edge = &graph.edges[e];
            let why = edge
                .reasons
                .first()
                .map(|r| graph.reason_text(edge, r))
                .unwrap_or_default();
            out.push_str(&format!(
                "\n    {} needs {}  [{why}]",
                graph.nodes[edge.from].key, graph.nodes[edge.to].key
            ));
        }
    }
    out.push_str(
        "\n  Break the cycle in the specs, or build one of its packages elsewhere into the \
         builder root and name what it provides with --assume-provided.",
    );
    out
}

/// One name per line, through a temporary file and a rename.
fn write_names(file: &Path, names: &[String]) -> anyhow::Result<()> {
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file)
        .with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;
    Ok(())
}
