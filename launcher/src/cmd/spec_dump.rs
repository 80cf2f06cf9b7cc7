//! `dbuild spec-dump`: what the parser sees in every spec, as JSON lines.

use super::spec_args::SpecArgs;
use dbuild_common::spec::{parse_tree, Spec};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// The JSON object for one spec (keys fixed by the CLI contract).
fn record(file: &str, spec: &Spec) -> serde_json::Value {
    let mut packages: Vec<&str> = spec.built_packages().map(|p| p.name.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    let mut build_requires: Vec<String> = spec
        .build_requires
        .iter()
        .map(|d| normalise(&d.to_string()))
        .collect();
    build_requires.sort();
    build_requires.dedup();
    json!({
        "file": file,
        "name": spec.name,
        "epoch": spec.epoch,
        "version": spec.version,
        "release": spec.release,
        "packages": packages,
        "build_requires": build_requires,
        "error": null,
    })
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.spec.parse_options();
    let results = parse_tree(&args.spec.specs, &opts)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for (rel, result) in &results {
        let file = rel.display().to_string();
        let value = match result {
            Ok(spec) => record(&file, spec),
            Err(e) => {
                failed += 1;
                json!({"file": file, "name": null, "epoch": null, "version": null, "release": null,
                       "packages": [], "build_requires": [], "error": e.to_string()})
            }
        };
        writeln!(out, "{value}")?;
    }
    out.flush()?;
    eprintln!("parsed {} specs, {} with errors", results.len(), failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
