//! Where the build plan comes from: a JSON plan file, or the spec tree.

use anyhow::Context;
use dbuild_common::plan::Plan;
use dbuild_common::spec::ParseOptions;
use dbuild_common::weights::Weights;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Source {
    pub specs: PathBuf,
    pub plan_file: Option<PathBuf>,
    pub defines: Vec<String>,
    pub macro_files: Vec<PathBuf>,
    pub arch: String,
    pub weights: Option<PathBuf>,
}

/// Loads the plan; also returns the extra text hashed into every input hash
/// (contents of the macro files).
pub fn load(src: &Source) -> anyhow::Result<(Plan, String)> {
    let mut extra = String::new();
    for f in &src.macro_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading macro file {}", f.display()))?;
        extra.push_str(&text);
        extra.push('\0');
    }
    let mut plan = match &src.plan_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading plan {}", file.display()))?;
            serde_json::from_str::<Plan>(&text).with_context(|| format!("parsing plan {}", file.display()))?
        }
        None => {
            let defines = src
                .defines
                .iter()
                .map(|d| ParseOptions::parse_define(d))
                .collect::<Result<Vec<_>, _>>()
                .context("reading --define")?;
            let opts = ParseOptions {
                defines,
                arch: src.arch.clone(),
                macro_files: src.macro_files.clone(),
                ..ParseOptions::default()
            };
            let weights = match &src.weights {
                Some(w) => Some(Weights::load(w)?),
                None => None,
            };
            let (plan, notes) = Plan::from_spec_tree(&src.specs, &opts, weights.as_ref())
                .with_context(|| format!("reading the spec tree {}", src.specs.display()))?;
            for (file, err) in &notes.parse_errors {
                tracing::warn!(file = %file.display(), error = %err, "spec not parsed; left out of the build");
            }
            for u in &notes.unresolved {
                tracing::warn!(dependency = %u, "unresolved dependency");
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
        }
    };
    if plan.arch.is_empty() {
        plan.arch = src.arch.clone();
    }
    for d in &src.defines {
        plan.macros.push(ParseOptions::parse_define(d).context("reading --define")?);
    }
    if let Some(w) = &src.weights {
        let weights = Weights::load(w)?;
        for p in &mut plan.packages {
            if weights.contains(&p.name) {
                p.weight = Some(weights.get(&p.name));
            }
        }
    }
    Ok((plan, extra))
}
