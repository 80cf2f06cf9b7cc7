//! `dbuild simulate`: run the scheduler's dispatch policy (the very same
//! `dbuild_common::dispatch::Dispatcher`) in a discrete-event simulation.

use super::spec_args::SpecArgs;
use anyhow::Context;
use dbuild_common::plan::Plan;
use dbuild_common::simulate::simulate;
use dbuild_common::weights::Weights;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Simulate a build of the spec tree with N workers and print the makespan
/// next to the lower bound max(critical path, total work / N).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Number of single-slot workers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Per-package durations: a JSON object {"name": seconds}. Packages not
    /// listed take their static weight, else 1.
    #[arg(long, value_name = "FILE")]
    pub durations: Option<PathBuf>,
    /// Static weights (Photon's packageWeights.json format).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn durations_of(plan: &Plan, file: Option<&PathBuf>) -> anyhow::Result<Vec<f64>> {
    let given: HashMap<String, f64> = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading durations {}", f.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "parsing durations {} (want {{\"name\": seconds}})",
                    f.display()
                )
            })?
        }
        None => HashMap::new(),
    };
    Ok(plan
        .packages
        .iter()
        .map(|p| given.get(&p.name).copied().or(p.weight).unwrap_or(1.0))
        .collect())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.spec.parse_options();
    let weights = args.weights.as_deref().map(Weights::load).transpose()?;
    let (plan, notes) = Plan::from_spec_tree(
        &args.spec.specs,
        &opts,
        weights.as_ref(),
        &Default::default(),
    )
    .with_context(|| format!("reading the spec tree {}", args.spec.specs.display()))?;
    if !notes.parse_errors.is_empty() {
        eprintln!(
            "dbuild simulate: {} spec(s) could not be parsed and are left out",
            notes.parse_errors.len()
        );
    }
    let durations = durations_of(&plan, args.durations.as_ref())?;
    let r = simulate(&plan, &durations, args.workers)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("packages:     {}", r.packages);
        println!("workers:      {}", r.workers);
        println!("makespan:     {:.1}", r.makespan);
        println!(
            "lower bound:  {:.1}  (critical path {:.1}, total work {:.1} / {} workers = {:.1})",
            r.lower_bound,
            r.critical_path,
            r.total_work,
            r.workers,
            r.total_work / r.workers as f64
        );
        println!("ratio:        {:.4}", r.ratio);
    }
    Ok(ExitCode::SUCCESS)
}
