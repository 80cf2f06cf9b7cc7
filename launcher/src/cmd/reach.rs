//! Reaching the scheduler of a build from the command line (`dbuild status`,
//! `dbuild logs`, `dbuild verify --state-dir`): a URL as given; for a state
//! directory, the scheduler `dbuild local` runs on it (its URL is in
//! `<state-dir>/scheduler.url` while it runs), else a
//! `dbuild-scheduler --read-only` started on the build directory, which
//! serves the recorded build (only a scheduler may open the state file).

use super::local::processes::{child_command, scheduler_url, Managed};
use anyhow::{bail, Context};
use dbuild_common::settings::SchedulerSettings;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The runtime a command's requests run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Where a running `dbuild local` writes its scheduler's URL.
pub fn url_file(state_dir: &Path) -> PathBuf {
    state_dir.join("scheduler.url")
}

/// Where a build is: a scheduler URL, or a state directory and build id.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// URL of the scheduler serving the build (e.g. the Kubernetes service).
    #[arg(long, value_name = "URL", conflicts_with_all = ["state_dir", "build_id"])]
    pub scheduler: Option<String>,
    /// The state directory of a `dbuild local` build, running or not.
    #[arg(long, value_name = "DIR", default_value = "dbuild-state")]
    pub state_dir: PathBuf,
    /// The build id: the build directory is <state-dir>/<build-id>.
    #[arg(long, default_value = "local")]
    pub build_id: String,
}

/// A scheduler answering for the build; stop it when done.
pub struct Reached {
    pub url: String,
    /// The read-only scheduler started for this, if one was.
    started: Option<Managed>,
}

impl Reached {
    /// Whether this is a read-only view of a stopped build.
    pub fn read_only(&self) -> bool {
        self.started.is_some()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.started.as_mut() {
            s.stop(Duration::from_secs(10)).await;
        }
    }
}

/// Checks a build id names a plain directory.
pub fn check_build_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        bail!("build id {id:?} must be a plain directory name");
    }
    Ok(())
}

async fn answers(url: &str) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    else {
        return false;
    };
    http.get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Reaches the build `t` names (see the module documentation); `purpose`
/// names the read-only scheduler's settings and log files.
pub async fn reach(t: &Target, purpose: &str) -> anyhow::Result<Reached> {
    if let Some(url) = &t.scheduler {
        let url = url.trim_end_matches('/').to_string();
        if !answers(&url).await {
            bail!("no scheduler answers at {url}");
        }
        return Ok(Reached { url, started: None });
    }
    check_build_id(&t.build_id)?;
    if let Ok(url) = std::fs::read_to_string(url_file(&t.state_dir)) {
        let url = url.trim().to_string();
        if answers(&url).await {
            return Ok(Reached { url, started: None });
        }
    }
    let build_dir = t.state_dir.join(&t.build_id);
    let (scheduler, url) = start_read_only(&t.state_dir, &build_dir, purpose).await?;
    Ok(Reached {
        url,
        started: Some(scheduler),
    })
}

/// Starts `dbuild-scheduler --read-only` on `build_dir` (settings and log
/// under `state_dir`, named after `purpose`) and waits for its address.
pub async fn start_read_only(
    state_dir: &Path,
    build_dir: &Path,
    purpose: &str,
) -> anyhow::Result<(Managed, String)> {
    if !build_dir.is_dir() {
        bail!("no build directory {}", build_dir.display());
    }
    let logs = state_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let settings = SchedulerSettings {
        build_dir: Some(build_dir.to_path_buf()),
        read_only: true,
        listen: "127.0.0.1:0".into(),
        ..SchedulerSettings::default()
    };
    let settings_dir = state_dir.join("settings");
    std::fs::create_dir_all(&settings_dir)
        .with_context(|| format!("creating {}", settings_dir.display()))?;
    let cmd = child_command(
        "dbuild-scheduler",
        &settings,
        &settings_dir.join(format!("{purpose}.toml")),
    )?;
    let log = logs.join(format!("{purpose}.log"));
    let mut scheduler = Managed::spawn("scheduler (read-only)", cmd, &log, true)?;
    match scheduler_url(&mut scheduler, Duration::from_secs(60)).await {
        Ok(url) => Ok((scheduler, url)),
        Err(e) => {
            scheduler.stop(Duration::from_secs(10)).await;
            Err(e)
        }
    }
}
