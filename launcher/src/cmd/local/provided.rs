//! Before anything is built: every BuildRequires must be provided by a spec
//! of the run, the base builder root's rpm database or the user's
//! `--assume-provided` names. Unresolved runtime Requires only warn.

use super::Plan;
use anyhow::Context;
use dbuild_common::graph::{BuildGraph, DepKind};
use dbuild_common::provided::{
    check_build_requires, wanted_line, Provided, UnresolvedBuildRequires,
};
use dbuild_common::spec::Spec;
use std::path::{Path, PathBuf};

/// Name of the file (in the state dir) listing the base root's capabilities
/// for the scheduler's `--base-provides-file`.
const BASE_PROVIDES_FILE: &str = "base-provides";

/// Reads the base root's capabilities, writes them to
/// `<state-dir>/base-provides` and checks `specs` (the staged ones). Returns
/// that file, or the unresolved BuildRequires.
pub(super) async fn check(
    plan: &Plan,
    specs: Vec<Spec>,
    root: &Path,
) -> anyhow::Result<Result<PathBuf, UnresolvedBuildRequires>> {
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
    Ok(check_build_requires(&graph.unresolved).map(|()| file))
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
