//! The share's spec tree for this run: the specs asked for (all, or the
//! closure of `--packages`), copied into `<build-dir>/SPECS`.

use super::{selection, Plan};
use anyhow::{bail, Context};
use dbuild_common::spec::{parse_tree, ParseOptions, Spec};
use std::path::{Path, PathBuf};

/// Copies the spec directories to build into `<build-dir>/SPECS` (the share's
/// read-only spec tree), replacing what an earlier run left there. Returns
/// the parsed specs staged (as parsed from the original tree).
pub(super) fn stage_specs(plan: &Plan) -> anyhow::Result<Vec<Spec>> {
    let opts = ParseOptions {
        defines: plan.defines.clone(),
        arch: plan.local.spec.arch.clone(),
        macro_files: plan.local.spec.macro_files.clone(),
        ..ParseOptions::default()
    };
    let parsed = parse_tree(&plan.specs, &opts)?;
    let mut errors = Vec::new();
    let mut specs = Vec::new();
    for (rel, result) in parsed {
        match result {
            Ok(spec) => specs.push((rel, spec)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} spec(s) cannot be parsed:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    let chosen: Vec<(PathBuf, Spec)> = match &plan.local.packages {
        Some(list) => {
            // The selection builds a graph of its own, so it gets a copy.
            let keep = selection::select(
                specs.clone(),
                &selection::requested_names(list)?,
                &plan.local.spec.arch,
            )?;
            specs
                .into_iter()
                .filter(|(rel, _)| keep.contains(rel))
                .collect()
        }
        None => specs,
    };
    let target = plan.build_dir.join("SPECS");
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("clearing {}", target.display()))?;
    }
    for (rel, _) in &chosen {
        let from_dir = plan
            .specs
            .join(rel)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| plan.specs.clone());
        let rel_dir = rel.parent().unwrap_or(Path::new(""));
        copy_dir(&from_dir, &target.join(rel_dir))?;
    }
    Ok(chosen.into_iter().map(|(_, spec)| spec).collect())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
