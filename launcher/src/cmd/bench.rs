//! `dbuild bench parse`: parse + graph timing, as ratios against baselines
//! run in the same process (a single-threaded parse, and rpmspec if present).

use super::spec_args::SpecArgs;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}
