//! The scheduler and worker processes `dbuild local` runs, their logs, and
//! stopping them (SIGTERM, then SIGKILL after a grace period).

use anyhow::{bail, Context};
use dbuild_common::settings::{self, Layered};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A sibling binary of `dbuild` (same directory), else one on PATH.
fn locate(binary: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(binary)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(binary))
}

/// `binary --config FILE` with its whole `settings` written to FILE, so
/// that an option added to the child's settings type reaches it without a
/// change here. The child's `DBUILD_<KEY>` variables are taken out of its
/// environment, where they would win over the file.
pub fn child_command<S: Layered>(
    binary: &str,
    settings: &S,
    file: &Path,
) -> anyhow::Result<Command> {
    let text = settings::to_toml(settings).with_context(|| format!("the settings of {binary}"))?;
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    let mut command = Command::new(locate(binary));
    command.arg("--config").arg(file);
    for option in settings::option_keys::<S>() {
        command.env_remove(settings::env_name(&option.key));
    }
    Ok(command)
}

fn log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log {}", path.display()))
}

/// A child process with a name for messages.
pub struct Managed {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Managed {
    /// Starts `command`, its stderr (and stdout unless `capture_stdout`) to `log`.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        capture_stdout: bool,
    ) -> anyhow::Result<Managed> {
        command
            .stdin(Stdio::null())
            .stderr(log_file(log)?)
            .kill_on_drop(true);
        command.stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::from(log_file(log)?)
        });
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.as_std().get_program()))?;
        Ok(Managed {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// Sends SIGTERM; after `grace`, SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(process = %self.name, "did not stop in time; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// The last non-empty line of a log, to quote in an error.
pub fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Reads the scheduler's first stdout line, `dbuild-scheduler listening on URL`.
pub async fn scheduler_url(scheduler: &mut Managed, timeout: Duration) -> anyhow::Result<String> {
    listening_url(scheduler, timeout).await
}

/// Reads a process's first stdout line, `<binary> listening on URL` (the
/// scheduler, or a worker started with `--listen`), and keeps draining
/// its stdout so it never blocks on a full pipe.
pub async fn listening_url(process: &mut Managed, timeout: Duration) -> anyhow::Result<String> {
    let name = process.name.clone();
    let stdout = process
        .child
        .stdout
        .take()
        .with_context(|| format!("{name} stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(timeout, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(_) => bail!(
            "the {name} exited before listening: {} (log: {})",
            last_line(&process.log),
            process.log.display()
        ),
        Err(_) => bail!(
            "the {name} did not start within {:?}; see {}",
            timeout,
            process.log.display()
        ),
    };
    let url = line.rsplit(' ').next().unwrap_or_default().to_string();
    if !url.starts_with("http://") {
        bail!("unexpected {name} output {line:?}");
    }
    let log = process.log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(log = %log.display(), "{line}");
        }
    });
    Ok(url)
}
