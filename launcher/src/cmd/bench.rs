//! `dbuild bench`: parse the whole SPECS tree (and build the graph), timed
//! as ratios against baselines run in the same process: the same work on a
//! single thread, and optionally rpm's own `rpmspec` over the same specs.

use super::spec_args::SpecArgs;
use anyhow::Context;
use dbuild_common::graph::{BuildGraph, GraphOptions};
use dbuild_common::spec::{parse_tree, ParseOptions, TreeEntry};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// How many timed rounds (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Also time `rpmspec -q --srpm` over every spec (one process per spec).
    #[arg(long)]
    pub rpmspec: bool,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_rounds(
    rounds: usize,
    mut work: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        work()?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

/// Parse (all cores) and everything built on top of it that the launcher needs.
fn parse_and_graph(dir: &Path, opts: &ParseOptions) -> anyhow::Result<Vec<TreeEntry>> {
    let entries = parse_tree(dir, opts)?;
    let specs: Vec<_> = entries
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().cloned())
        .collect();
    let graph_opts = GraphOptions {
        arch: opts.arch.clone(),
        ..GraphOptions::default()
    };
    let graph = BuildGraph::build(specs, &graph_opts);
    graph.critical_path(|_| 1.0)?;
    Ok(entries)
}

fn rpmspec_all(dir: &Path, entries: &[TreeEntry], opts: &ParseOptions) -> anyhow::Result<()> {
    for (rel, _) in entries {
        let spec = dir.join(rel);
        let mut cmd = Command::new("rpmspec");
        cmd.args(["-q", "--srpm", "--target", &opts.arch]);
        for (name, value) in &opts.defines {
            cmd.arg("--define").arg(format!("{name} {value}"));
        }
        if let Some(parent) = spec.parent() {
            cmd.arg("--define")
                .arg(format!("_sourcedir {}", parent.display()));
        }
        cmd.arg(&spec)
            .output()
            .context("running rpmspec (install Debian's `rpm`)")?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.spec.parse_options();
    let dir = &args.spec.specs;
    let entries = parse_and_graph(dir, &opts)?;
    let specs = entries.len();
    let parallel = time_rounds(args.rounds, || parse_and_graph(dir, &opts).map(drop))?;
    let single_pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let single = time_rounds(args.rounds, || {
        single_pool.install(|| parse_and_graph(dir, &opts).map(drop))
    })?;
    let threads = rayon::current_num_threads();
    println!("specs: {specs}");
    println!(
        "parse+graph, {threads} threads: {:.1} ms (median of {})",
        parallel.as_secs_f64() * 1e3,
        args.rounds
    );
    println!(
        "parse+graph, 1 thread (baseline): {:.1} ms",
        single.as_secs_f64() * 1e3
    );
    println!(
        "speed-up over 1 thread: {:.2}x",
        single.as_secs_f64() / parallel.as_secs_f64()
    );
    if args.rpmspec {
        let rpm = time_rounds(1, || rpmspec_all(dir, &entries, &opts))?;
        println!(
            "rpmspec -q --srpm over the same specs: {:.1} ms",
            rpm.as_secs_f64() * 1e3
        );
        println!(
            "speed-up over rpmspec: {:.1}x",
            rpm.as_secs_f64() / parallel.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
