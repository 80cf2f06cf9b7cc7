//! Where the build plan comes from: a JSON plan file, or the spec tree.

use anyhow::Context;
use dbuild_common::plan::Plan;
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

/// Splits `'NAME VALUE'` into its two parts.
pub fn split_define(d: &str) -> anyhow::Result<(String, String)> {
    let d = d.trim();
    let (name, value) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
    anyhow::ensure!(!name.is_empty(), "--define {d:?}: expected 'NAME VALUE'");
    Ok((name.to_string(), value.trim().to_string()))
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
        None => anyhow::bail!(
            "building a plan from the spec tree {} needs the dependency graph, which is not in this build yet; pass --plan",
            src.specs.display()
        ),
    };
    if plan.arch.is_empty() {
        plan.arch = src.arch.clone();
    }
    for d in &src.defines {
        plan.macros.push(split_define(d)?);
    }
    if let Some(w) = &src.weights {
        let text = std::fs::read_to_string(w).with_context(|| format!("reading weights {}", w.display()))?;
        let map: std::collections::HashMap<String, f64> =
            serde_json::from_str(&text).with_context(|| format!("parsing weights {}", w.display()))?;
        for p in &mut plan.packages {
            if let Some(&v) = map.get(&p.name) {
                p.weight = Some(v);
            }
        }
    }
    Ok((plan, extra))
}
