//! `dbuild-worker`'s settings.

use super::{clap_defaults, read, Layered, Span, WorkerOptions, DEFAULT_ARCH};
use config::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every option of `dbuild-worker`.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// Scheduler base URL (e.g. http://127.0.0.1:8080). Required.
    #[arg(long, value_name = "URL")]
    pub scheduler: Option<String>,
    /// How long to wait for the scheduler to answer at start-up (it may start
    /// after the workers); tried again with backoff until then.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub connect_timeout: Span,
    /// File holding the build's bearer token. Required.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The shared volume: the build directory (SPECS/, SOURCES/, stage/), or
    /// its parent with --build-id. Required.
    #[arg(long, value_name = "DIR")]
    pub share: Option<PathBuf>,
    /// Build id: the build directory is <share>/<build-id>.
    #[arg(long)]
    pub build_id: Option<String>,
    /// The base builder root (see `dbuild rootfs`).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/dbuild/rootfs")]
    pub base_root: PathBuf,
    /// Local scratch directory for chroots (not on NFS: overlayfs needs a local upper dir).
    #[arg(long, value_name = "DIR", default_value = "/var/tmp/dbuild-worker")]
    pub work_dir: PathBuf,
    /// Worker name [default: hostname-pid].
    #[arg(long = "name")]
    pub worker_name: Option<String>,
    /// The architecture this worker builds for.
    #[arg(long, default_value = DEFAULT_ARCH)]
    pub arch: String,
    /// On SIGTERM, how long a running build may go on before it is handed back.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub grace: Span,
    /// Long-poll duration of a lease request.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub wait: Span,
    /// Serve /healthz, /readyz and /metrics on this address (e.g.
    /// 0.0.0.0:8081; port 0 picks a free port; off unless given).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub build: WorkerOptions,
}

impl Layered for WorkerSettings {
    fn from_layers(layers: &Config) -> Result<Self, ConfigError> {
        Ok(WorkerSettings {
            build: read(layers)?,
            ..read(layers)?
        })
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        clap_defaults()
    }
}
