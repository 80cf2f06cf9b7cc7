//! Running a command with its output streamed to a log file as it comes, a
//! wall-time limit, a silent-time limit (no output for too long = hung) and
//! cancellation; and the `rpmbuild -ba` command line.

use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Time limits of one command.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub wall: Duration,
    pub silent: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Exit code (`None` when killed by a signal).
    Exited(Option<i32>),
    WallTimeout(Duration),
    SilentTimeout(Duration),
    Cancelled,
}

impl RunEnd {
    pub fn success(&self) -> bool {
        matches!(self, RunEnd::Exited(Some(0)))
    }
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("writing log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for {what}: {source}")]
    Wait {
        what: String,
        source: std::io::Error,
    },
}

/// An open build log.
pub struct Log {
    pub path: PathBuf,
    file: tokio::fs::File,
}

impl Log {
    /// Opens the log for appending, creating it and its directory. A lease
    /// granted again for the same attempt (after a lost lease or a hand-back)
    /// continues the same file, so the interrupted run's output survives.
    pub async fn create(path: PathBuf) -> Result<Log, RunError> {
        let err = |source| RunError::Log {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(err)?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(err)?;
        Ok(Log { path, file })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        let r = async {
            self.file.write_all(bytes).await?;
            self.file.flush().await
        }
        .await;
        r.map_err(|source| RunError::Log {
            path: self.path.clone(),
            source,
        })
    }

    /// A `== dbuild: ...` line of the worker's own.
    pub async fn note(&mut self, line: &str) -> Result<(), RunError> {
        self.write(format!("== dbuild: {line}\n").as_bytes()).await
    }

    pub async fn sync(&mut self) -> Result<(), RunError> {
        let r = self.file.sync_all().await;
        r.map_err(|source| RunError::Log {
            path: self.path.clone(),
            source,
        })
    }
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(mut r: R, tx: mpsc::Sender<Vec<u8>>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Resolves once `cancel` is true; never when its sender is gone without cancelling.
pub async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `cmd` (stdout/stderr piped, kill-on-drop set), appending its output to
/// `log` as it arrives. Kills it on a limit or when `cancel` turns true.
pub async fn run_logged(
    what: &str,
    mut cmd: Command,
    log: &mut Log,
    limits: Limits,
    cancel: &mut watch::Receiver<bool>,
) -> Result<RunEnd, RunError> {
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        what: what.to_string(),
        source,
    })?;
    run_child(what, &mut child, log, limits, cancel).await
}

/// A child's stdout and stderr, read as they come (one channel of chunks).
pub struct Output {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Output {
    /// Starts reading `child`'s piped stdout and stderr.
    pub fn take(child: &mut tokio::process::Child) -> Output {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
        if let Some(out) = child.stdout.take() {
            pump(out, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            pump(err, tx);
        }
        Output { rx }
    }

    /// An output with nothing more to come.
    pub fn closed() -> Output {
        Output {
            rx: mpsc::channel(1).1,
        }
    }

    /// The next chunk; `None` once both streams are closed.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

/// [`run_logged`] for a child already started (stdout/stderr piped,
/// kill-on-drop set); the limits count from now.
pub async fn run_child(
    what: &str,
    child: &mut tokio::process::Child,
    log: &mut Log,
    limits: Limits,
    cancel: &mut watch::Receiver<bool>,
) -> Result<RunEnd, RunError> {
    let output = Output::take(child);
    run_output(what, child, output, log, limits, cancel).await
}

/// [`run_child`] for a child whose [`Output`] is already being read.
pub async fn run_output(
    what: &str,
    child: &mut tokio::process::Child,
    output: Output,
    log: &mut Log,
    limits: Limits,
    cancel: &mut watch::Receiver<bool>,
) -> Result<RunEnd, RunError> {
    let mut rx = output.rx;
    let start = Instant::now();
    let wall_deadline = start + limits.wall;
    let mut last_output = start;
    let mut streams_open = true;
    let end = loop {
        let silent_deadline = last_output + limits.silent;
        tokio::select! {
            chunk = rx.recv(), if streams_open => match chunk {
                Some(bytes) => {
                    last_output = Instant::now();
                    log.write(&bytes).await?;
                }
                None => streams_open = false,
            },
            status = child.wait(), if !streams_open => {
                let status = status.map_err(|source| RunError::Wait { what: what.to_string(), source })?;
                return Ok(RunEnd::Exited(status.code()));
            }
            _ = tokio::time::sleep_until(wall_deadline) => break RunEnd::WallTimeout(limits.wall),
            _ = tokio::time::sleep_until(silent_deadline) => break RunEnd::SilentTimeout(limits.silent),
            _ = cancelled(cancel) => break RunEnd::Cancelled,
        }
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    // Whatever was still buffered.
    while let Ok(bytes) = rx.try_recv() {
        log.write(&bytes).await?;
    }
    let msg = match &end {
        RunEnd::WallTimeout(d) => {
            format!("{what} killed: wall-time limit of {}s reached", d.as_secs())
        }
        RunEnd::SilentTimeout(d) => format!(
            "{what} killed: no output for {}s (silent-time limit)",
            d.as_secs()
        ),
        _ => format!("{what} killed: cancelled"),
    };
    log.write(format!("\n== dbuild: {msg}\n").as_bytes())
        .await?;
    Ok(end)
}

/// What rpmbuild makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// Binary RPMs and the source RPM (`-ba`): a package build.
    All,
    /// Binary RPMs only (`-bb`): a package of the worker's own.
    Binary,
}

/// The argv of rpmbuild for `spec_in_chroot` with the given macros;
/// `%check` runs only when `check` (like Photon, which builds `--nocheck`
/// unless asked).
pub fn rpmbuild_argv(
    outputs: Outputs,
    spec_in_chroot: &str,
    macros: &[(String, String)],
    check: bool,
) -> Vec<String> {
    let stage = match outputs {
        Outputs::All => "-ba",
        Outputs::Binary => "-bb",
    };
    let mut argv = vec!["rpmbuild".to_string(), stage.to_string()];
    if !check {
        argv.push("--nocheck".into());
    }
    let mut define = |name: &str, value: &str| {
        argv.push("--define".into());
        argv.push(format!("{name} {value}"));
    };
    define("_topdir", crate::TOPDIR_IN_CHROOT);
    for (n, v) in macros {
        define(n, v);
    }
    argv.push(spec_in_chroot.to_string());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_has_topdir_then_macros_then_spec() {
        let a = rpmbuild_argv(
            Outputs::All,
            "/x/SPECS/a.spec",
            &[("dist".into(), ".ph5".into())],
            true,
        );
        assert_eq!(
            a,
            [
                "rpmbuild",
                "-ba",
                "--define",
                "_topdir /usr/src/dbuild",
                "--define",
                "dist .ph5",
                "/x/SPECS/a.spec"
            ]
        );
        let a = rpmbuild_argv(Outputs::All, "/x/SPECS/a.spec", &[], false);
        assert_eq!(
            a,
            [
                "rpmbuild",
                "-ba",
                "--nocheck",
                "--define",
                "_topdir /usr/src/dbuild",
                "/x/SPECS/a.spec"
            ]
        );
        let a = rpmbuild_argv(Outputs::Binary, "/x/SPECS/a.spec", &[], false);
        assert_eq!(
            a,
            [
                "rpmbuild",
                "-bb",
                "--nocheck",
                "--define",
                "_topdir /usr/src/dbuild",
                "/x/SPECS/a.spec"
            ]
        );
    }
}
