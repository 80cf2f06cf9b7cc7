//! `dbuild-scheduler`'s settings.

use super::{clap_defaults, read, Layered, PolicyOptions, Span, SpecOptions, StateSync};
use config::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every option of `dbuild-scheduler`.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerSettings {
    /// The build directory on the share (holds SPECS/, stage/, state/). Required.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// The spec tree [default: <build-dir>/SPECS].
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
    /// Use this JSON plan (dbuild_common::plan::Plan) instead of parsing the specs.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// File holding the build's bearer token [default: <build-dir>/state/token, created if absent].
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The build's bearer token.
    #[arg(long)]
    pub token: Option<String>,
    /// Longest long poll of a lease request.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub max_wait: Span,
    /// Retry packages recorded as failed for good in an earlier run.
    #[arg(long)]
    pub retry_failed: bool,
    /// If the build recorded in the state file had finished, start a new one:
    /// unchanged packages are up-to-date, failed ones are tried again (an
    /// interrupted build is resumed either way). `dbuild local` uses this.
    #[arg(long)]
    pub restart_finished: bool,
    /// History events kept per package (the oldest are forgotten at start-up).
    #[arg(long, default_value_t = 200)]
    pub keep_history: u32,
    /// When a state commit counts as done, and so when a lease or report is
    /// answered: `full` (on disk) or `normal` (handed to the OS; a host crash
    /// may lose the last ones, which are then built again).
    #[arg(long, value_enum, default_value_t = StateSync::Full)]
    pub state_sync: StateSync,
    /// Keep state in memory only (benchmark baseline; nothing survives a restart, no lock).
    #[arg(long)]
    pub memory_state: bool,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 2)]
    pub http_workers: usize,
    /// Capabilities of the base builder root's rpm database, one per line:
    /// they satisfy what no spec provides (`dbuild local` writes it).
    #[arg(long, value_name = "FILE")]
    pub base_provides_file: Option<PathBuf>,
    /// Refuse to start when a BuildRequires is provided by no spec, the base
    /// root or --assume-provided (without it such dependencies are warnings).
    #[arg(long)]
    pub fail_on_unresolved: bool,
    /// Serve the build recorded in the build directory's state file and
    /// change nothing (no specs, no leases, no promotion): every read
    /// endpoint, the logs and the status page (only `GET /v1/rpms` for a
    /// state file that keeps no plan). `dbuild verify --state-dir` and
    /// `dbuild status --state-dir` use it when no scheduler runs.
    #[arg(long)]
    pub read_only: bool,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub spec: SpecOptions,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub policy: PolicyOptions,
}

impl Layered for SchedulerSettings {
    fn from_layers(layers: &Config) -> Result<Self, ConfigError> {
        Ok(SchedulerSettings {
            spec: read(layers)?,
            policy: read(layers)?,
            ..read(layers)?
        })
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        clap_defaults()
    }
}
