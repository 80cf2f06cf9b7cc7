//! `dbuild`: the command line. Each subcommand lives in `cmd/`.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dbuild", version, about = "Distributed RPM builds from a spec tree")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Graph(cmd::graph::GraphArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // clap exits with status 2 on usage errors.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Graph(args) => cmd::graph::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dbuild: error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, skipping causes whose text the message already
/// shows (many error types print their source themselves).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
