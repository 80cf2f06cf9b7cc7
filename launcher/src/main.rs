//! `dbuild`: the command line of the dbuild distributed RPM build system.
//! Each subcommand lives in `cmd/`; this file only parses and dispatches.

mod cmd;

use clap::{Parser, Subcommand};
use dbuild_common::exit;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dbuild",
    version,
    about = "Build an RPM distribution from a SPECS tree, in dependency order, on one machine or a cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse every spec and print one JSON object per spec (name, EVR, packages, BuildRequires).
    ///
    /// Exit status: 0 when every spec parsed, 1 when some could not be parsed
    /// (their `error` says why) or the tree cannot be read, 2 on usage errors.
    SpecDump(cmd::spec_dump::Args),
    /// Time parsing the whole tree (and compare with a single-threaded run and rpmspec).
    Bench(cmd::bench::Args),
    /// Show the build dependency graph: edges, levels, unresolved deps, cycles, critical path.
    Graph(cmd::graph::GraphArgs),
    /// Simulate a build with N workers using the scheduler's dispatch policy; print makespan and lower bound.
    Simulate(cmd::simulate::Args),
    /// Build the SPECS tree on this machine: the real scheduler and N workers, a local directory as the share.
    ///
    /// Exit status: 0 when every package asked for was built or is up to date,
    /// 1 when some failed (the summary names them and their logs), 2 on usage
    /// errors and when a BuildRequires is provided by no spec, the base root
    /// or --assume-provided (nothing is built), 130 when interrupted (run it
    /// again to resume).
    Local(Box<cmd::local::Args>),
    /// Create (or reuse) the base builder root for the workers' chroots (debootstrap or RPMs).
    Rootfs(cmd::rootfs::Args),
    /// Check a share against what the scheduler accepted: every accepted RPM in
    /// stage/ with its sha256, and nothing else in stage/RPMS or stage/SRPMS.
    ///
    /// One line per problem (missing, sha256 mismatch, not accepted) and a
    /// summary. Exit status: 0 when the share matches, 1 when it does not or
    /// cannot be checked, 2 on usage errors.
    Verify(cmd::verify::Args),
    /// Show a build's progress: counts and time left, what builds where, what
    /// failed, the ready queue, the workers (its status page is the scheduler's /).
    ///
    /// For --scheduler URL, or a `dbuild local` state directory: the running
    /// build's scheduler, or, when none runs, the build as its state file
    /// recorded it. Exit status: 0 when shown, 1 when the build cannot be reached.
    Status(cmd::status::Args),
    /// Print a package's build log (the latest attempt, or --attempt N);
    /// --follow follows a running attempt's log until it ends.
    ///
    /// Exit status: 0 when the log was printed, 1 when there is none.
    Logs(cmd::logs::Args),
}

const BIN: &str = "dbuild";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DBUILD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(exit::color_wanted(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .init();
    exit::run(BIN, |cli: Cli, matches| match cli.command {
        Command::SpecDump(args) => cmd::spec_dump::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Rootfs(args) => cmd::rootfs::run(args),
        Command::Local(args) => match matches.subcommand_matches("local") {
            Some(local) => cmd::local::run(*args, local),
            None => Err(anyhow::anyhow!("no matches for `dbuild local`")),
        },
        Command::Graph(args) => cmd::graph::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Logs(args) => cmd::logs::run(args),
    })
}
