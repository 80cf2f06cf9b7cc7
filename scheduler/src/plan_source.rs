//! Where the build plan comes from: a JSON plan file, or the spec tree.

use dbuild_common::graph::DepKind;
use dbuild_common::plan::Plan;
use dbuild_common::provided::{
    check_build_requires, parse_name_list, Provided, UnresolvedBuildRequires,
};
use dbuild_common::spec::{ParseOptions, SpecError};
use dbuild_common::weights::{Weights, WeightsError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Source {
    pub specs: PathBuf,
    pub plan_file: Option<PathBuf>,
    pub defines: Vec<String>,
    pub macro_files: Vec<PathBuf>,
    pub arch: String,
    pub weights: Option<PathBuf>,
    /// What the build root provides (base rpmdb and `--assume-provided`).
    pub provided: Provided,
    /// Unresolved BuildRequires are an error, not a warning.
    pub fail_on_unresolved: bool,
}

/// Why no plan could be made; names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum PlanSourceError {
    #[error("cannot read {what} {file}: {source}")]
    Read {
        what: &'static str,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("plan file {file} is not a valid plan: {source}")]
    BadPlan {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("--define: {0}")]
    Define(SpecError),
    #[error("reading the spec tree {dir}: {source}")]
    Specs { dir: PathBuf, source: SpecError },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("spec tree {dir}: {source}; refusing to start")]
    Unresolved {
        dir: PathBuf,
        source: UnresolvedBuildRequires,
    },
}

/// What the build root provides: `--assume-provided` names (comma lists)
/// and `--assume-provided-file`, and the base root's capabilities from
/// `--base-provides-file` (one name per line, `#` comments).
pub fn read_provided(
    assume: &[String],
    assume_file: Option<&Path>,
    base_file: Option<&Path>,
) -> Result<Provided, PlanSourceError> {
    let assume_text = assume_file
        .map(|f| read("assume-provided file", f))
        .transpose()?;
    let base = match base_file {
        Some(f) => parse_name_list(&read("base provides file", f)?),
        None => Vec::new(),
    };
    Ok(Provided::new(assume, assume_text.as_deref(), base))
}

fn read(what: &'static str, file: &Path) -> Result<String, PlanSourceError> {
    std::fs::read_to_string(file).map_err(|source| PlanSourceError::Read {
        what,
        file: file.to_path_buf(),
        source,
    })
}

/// Loads the plan; also returns the extra text hashed into every input hash
/// (contents of the macro files).
pub fn load(src: &Source) -> Result<(Plan, String), PlanSourceError> {
    let mut extra = String::new();
    for f in &src.macro_files {
        extra.push_str(&read("macro file", f)?);
        extra.push('\0');
    }
    let defines = src
        .defines
        .iter()
        .map(|d| ParseOptions::parse_define(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PlanSourceError::Define)?;
    let weights = src.weights.as_deref().map(Weights::load).transpose()?;
    let Some(file) = &src.plan_file else {
        let opts = ParseOptions {
            defines,
            arch: src.arch.clone(),
            macro_files: src.macro_files.clone(),
            ..ParseOptions::default()
        };
        let (plan, notes) =
            Plan::from_spec_tree(&src.specs, &opts, weights.as_ref(), &src.provided).map_err(
                |source| PlanSourceError::Specs {
                    dir: src.specs.clone(),
                    source,
                },
            )?;
        for (file, err) in &notes.parse_errors {
            tracing::warn!(file = %file.display(), error = %err, "spec not parsed; left out of the build");
        }
        if src.fail_on_unresolved {
            check_build_requires(&notes.unresolved).map_err(|source| {
                PlanSourceError::Unresolved {
                    dir: src.specs.clone(),
                    source,
                }
            })?;
        }
        for u in &notes.unresolved {
            let kind = if u.kind == DepKind::Build {
                "BuildRequires"
            } else {
                "Requires"
            };
            tracing::warn!(dependency = %u.dependency, kind, wanted_by = %u.wanted_by.join(","), "unresolved dependency");
        }
        for c in &notes.cycles {
            tracing::warn!(packages = %c.join(" "), "dependency cycle (cut by the graph's policy)");
        }
        tracing::info!(
            packages = plan.packages.len(),
            parse_errors = notes.parse_errors.len(),
            unresolved = notes.unresolved.len(),
            cycles = notes.cycles.len(),
            excluded = notes.excluded.len(),
            "plan built from the spec tree"
        );
        return Ok((plan, extra));
    };
    let text = read("plan", file)?;
    let mut plan: Plan =
        serde_json::from_str(&text).map_err(|source| PlanSourceError::BadPlan {
            file: file.clone(),
            source,
        })?;
    if plan.arch.is_empty() {
        plan.arch = src.arch.clone();
    }
    plan.macros.extend(defines);
    if let Some(weights) = &weights {
        for p in &mut plan.packages {
            if weights.contains(&p.name) {
                p.weight = Some(weights.get(&p.name));
            }
        }
    }
    Ok((plan, extra))
}
