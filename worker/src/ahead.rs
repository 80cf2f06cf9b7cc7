//! A build prepared ahead. While a slot builds one package, the scheduler
//! may reserve it the next one (`POST /v1/leases/{id}/reserve`); the worker
//! then makes that build's chroot and sandbox, stages its sources and starts
//! its BuildRequires install, all during the current build. When the current
//! build's report claims the reservation and the reply's next lease is it,
//! the prepared sandbox is told to run rpmbuild ([`crate::sandbox::Then`]);
//! otherwise (taken over by an idle worker, worker stopping) it is thrown
//! away unseen.
//!
//! Nothing of a prepared build reaches the share before it is claimed: the
//! log lines and the install's output are held in memory and written to the
//! lease's log when it runs, since an unclaimed reservation's log path is
//! the one the worker that took it over writes.

use crate::job::{self, BuildError, BuildJob, BuildResult, Launch, Phases, WorkerConfig};
use crate::prepared::Prepared;
use crate::rpmbuild::{Log, Output};
use crate::sandbox::{Step, Then};
use std::time::Instant;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The most install output held for a build not yet claimed; more is dropped
/// (with a note in the log).
const HELD_OUTPUT_LIMIT: usize = 8 << 20;

/// What the sandbox printed so far, held by a task until the build is claimed.
struct Held {
    stop: oneshot::Sender<()>,
    task: JoinHandle<(Vec<u8>, usize, Output)>,
}

impl Held {
    fn start(mut output: Output) -> Held {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let (mut held, mut dropped) = (Vec::new(), 0usize);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    chunk = output.next() => match chunk {
                        Some(bytes) if held.len() + bytes.len() <= HELD_OUTPUT_LIMIT => held.extend_from_slice(&bytes),
                        Some(bytes) => dropped += bytes.len(),
                        None => break,
                    },
                }
            }
            (held, dropped, output)
        });
        Held { stop, task }
    }

    /// Stops holding: what was held, how many bytes were dropped, and the rest of the output.
    async fn release(self) -> (Vec<u8>, usize, Output) {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap_or_else(|_| (Vec::new(), 0, Output::closed()))
    }
}

/// See the module documentation. Call [`Ahead::run`] or [`Ahead::discard`].
pub struct Ahead {
    job: BuildJob,
    prepared: Prepared,
    phases: Phases,
    notes: Vec<String>,
    rpmbuild: Step,
    installs: bool,
    held: Held,
}

impl Ahead {
    /// Prepares `job` (a reserved lease's) in slot directory `job.slot`, up
    /// to a started install step.
    pub async fn start(cfg: &WorkerConfig, job: BuildJob) -> Result<Ahead, BuildError> {
        let t = Instant::now();
        let mut prepared = Prepared::start(cfg, &job.slot).await?;
        let mut phases = Phases {
            chroot: t.elapsed(),
            ..Phases::default()
        };
        let mut notes = Vec::new();
        let launched =
            match job::compose(cfg, &job, &prepared.chroot, &mut phases, &mut notes).await {
                Ok(Launch {
                    mut go,
                    rpmbuild,
                    installs,
                }) => {
                    go.then_wait = true;
                    job::send_line(&job.package, &mut prepared.sandbox, &go, false)
                        .await
                        .map(|()| (rpmbuild, installs))
                }
                Err(e) => Err(e),
            };
        let (rpmbuild, installs) = match launched {
            Ok(l) => l,
            Err(e) => {
                prepared.close().await;
                return Err(e);
            }
        };
        notes.push(
            "prepared while the slot's previous build ran (chroot, sources, BuildRequires install)"
                .into(),
        );
        let held = Held::start(Output::take(&mut prepared.sandbox));
        Ok(Ahead {
            job,
            prepared,
            phases,
            notes,
            rpmbuild,
            installs,
            held,
        })
    }

    /// The job it was prepared for.
    pub fn job(&self) -> &BuildJob {
        &self.job
    }

    /// Runs the rest of the build (rpmbuild, after the install if that still
    /// runs), as [`crate::job::run_job`] would have run all of it.
    pub async fn run(self, cfg: &WorkerConfig, mut cancel: watch::Receiver<bool>) -> BuildResult {
        let started = Instant::now();
        let Ahead {
            job,
            mut prepared,
            mut phases,
            notes,
            rpmbuild,
            installs,
            held,
        } = self;
        let (log_path, mut log) = match job::open_log(cfg, &job).await {
            Ok(l) => l,
            Err(e) => {
                held.release().await;
                prepared.close().await;
                return BuildResult {
                    result: Err(e),
                    phases,
                    duration: started.elapsed(),
                    log: None,
                };
            }
        };
        let (so_far, dropped, output) = held.release().await;
        let built = match write_held(&mut log, &notes, &so_far, dropped).await {
            Err(e) => Err(e),
            Ok(()) => {
                let t = Instant::now();
                // A sandbox whose install failed has ended and cannot take the
                // line: `finish` then reports the install's failure.
                if let Err(e) = job::send_line(
                    &job.package,
                    &mut prepared.sandbox,
                    &Then {
                        steps: vec![rpmbuild],
                    },
                    true,
                )
                .await
                {
                    tracing::debug!(package = %job.package, error = %e, "the prepared sandbox did not take the rpmbuild step");
                }
                job::finish(
                    cfg,
                    &job,
                    &prepared.chroot,
                    &mut prepared.sandbox,
                    output,
                    &mut log,
                    &mut phases,
                    &mut cancel,
                    installs,
                    t,
                )
                .await
            }
        };
        let t = Instant::now();
        prepared.close().await;
        phases.cleanup = t.elapsed();
        job::conclude(log, log_path, built, phases, started).await
    }

    /// Throws the prepared build away (it was not claimed).
    pub async fn discard(self) {
        self.held.release().await;
        self.prepared.close().await;
    }
}

/// The log lines and output of the time before the claim.
async fn write_held(
    log: &mut Log,
    notes: &[String],
    output: &[u8],
    dropped: usize,
) -> Result<(), BuildError> {
    for note in notes {
        log.note(note).await?;
    }
    log.write(output).await?;
    if dropped > 0 {
        log.note(&format!(
            "{dropped} bytes of install output dropped while the build waited to be claimed"
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::process::Stdio;

    #[tokio::test]
    async fn held_output_is_capped_and_the_rest_counted() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "echo first; head -c 9000000 /dev/zero; echo last >&2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let held = Held::start(Output::take(&mut child));
        assert!(
            child.wait().await.unwrap().success(),
            "the child never blocks on a full pipe"
        );
        // Let the reader drain what the child wrote before it ended.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (bytes, dropped, mut rest) = held.release().await;
        assert!(bytes.starts_with(b"first\n"));
        assert!(bytes.len() <= HELD_OUTPUT_LIMIT);
        let mut after = 0;
        while let Some(chunk) = rest.next().await {
            after += chunk.len();
        }
        assert_eq!(bytes.len() + dropped + after, 6 + 9_000_000 + 5);
    }
}
