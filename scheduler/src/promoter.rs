//! Making accepted files visible and keeping `incoming/` clean, on top of
//! [`crate::incoming`] (the file operations) and the build state (what was
//! accepted, which leases live): the report handler's promotion after its
//! commit, the start-up reconciliation, and the sweeper that runs meanwhile.

use crate::app::{now_ms, App};
use crate::incoming::{self, decide, Decision, LeaseStatus, Pass, PromoteError};
use crate::state::Accepted;
use dbuild_common::share::valid_lease_id;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where and how files are promoted.
pub struct Share {
    pub build_dir: PathBuf,
    /// fsync the stage directories after renames (`--state-sync full`).
    pub sync: bool,
    /// How long the directory of a closed lease is left alone.
    pub grace_ms: u64,
    /// One lock per package: two promotions of one package never overlap
    /// (a report's and the sweeper's redo of an older record).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Share {
    pub fn new(build_dir: PathBuf, sync: bool, lease_ttl_ms: u64) -> Share {
        Share {
            build_dir,
            sync,
            grace_ms: lease_ttl_ms.saturating_mul(3),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock_of(&self, package: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(package.to_string())
            .or_default()
            .clone()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PromoteError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("promotion task failed: {e}")),
    }
}

impl App {
    /// Moves the files of accepted lease `lease_id` into `stage/` (its
    /// acceptance must be committed). Ok(true): done, call
    /// [`crate::state::Build::promoted`]; Ok(false): the lease is no longer its
    /// package's current record (its directory is removed instead). A failure
    /// is recorded on the package and tried again by the sweeper.
    pub async fn promote(&self, lease_id: &str, pass: Pass) -> Result<bool, String> {
        let Some(package) = self.lock().promotion_of(lease_id).map(|p| p.package) else {
            return Ok(false);
        };
        let lock = self.share.lock_of(&package);
        let _one_at_a_time = lock.lock().await;
        let (dir, sync, lease) = (
            self.share.build_dir.clone(),
            self.share.sync,
            lease_id.to_string(),
        );
        let Some(p) = self.lock().promotion_of(lease_id) else {
            // Superseded while waiting: nothing of it is ever shown.
            let _ =
                tokio::task::spawn_blocking(move || incoming::remove_lease_dir(&dir, &lease)).await;
            return Ok(false);
        };
        let t = std::time::Instant::now();
        match blocking(move || incoming::promote(&dir, &p, sync, pass)).await {
            Ok(()) => {
                self.metrics
                    .promotion_seconds
                    .observe(t.elapsed().as_secs_f64());
                Ok(true)
            }
            Err(e) => {
                tracing::error!(lease = %lease_id, package = %package, error = %e, "making accepted files visible failed; retrying later");
                self.metrics.promotion_failures.inc();
                self.lock().promotion_failed(lease_id, e.clone());
                Err(e)
            }
        }
    }

    /// One pass over `incoming/`: promotes what was accepted (a failed or
    /// unfinished promotion), removes what will never be (leases closed
    /// longer than the grace, unknown names), keeps the rest.
    pub async fn sweep(&self) {
        let dir = self.share.build_dir.clone();
        let names = match tokio::task::spawn_blocking(move || incoming::lease_dirs(&dir)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot list incoming/");
                return;
            }
            Err(_) => return,
        };
        let retry: Vec<String> = self.lock().failed_promotions();
        let seen: HashSet<&String> = names.iter().collect();
        let mut promote: Vec<String> = retry
            .iter()
            .filter(|l| !seen.contains(l))
            .cloned()
            .collect();
        let mut remove = Vec::new();
        let now = now_ms();
        {
            let b = self.lock();
            for name in &names {
                let status = if valid_lease_id(name) {
                    b.incoming_status(name)
                } else {
                    LeaseStatus::Unknown
                };
                match decide(status, now, self.share.grace_ms) {
                    Decision::Promote => promote.push(name.clone()),
                    Decision::Keep => {}
                    Decision::Remove => remove.push(name.clone()),
                }
            }
        }
        for lease in promote {
            if let Ok(true) = self.promote(&lease, Pass::Redo).await {
                let (released, pending) = self.change(|b| b.promoted(&lease, now_ms()));
                if pending.wait().await.is_err() {
                    return;
                }
                if released {
                    tracing::info!(lease = %lease, "accepted files made visible on retry");
                    self.wake();
                }
            }
        }
        if !remove.is_empty() {
            let dir = self.share.build_dir.clone();
            let n = remove.len();
            let _ = tokio::task::spawn_blocking(move || {
                for name in &remove {
                    let r = if valid_lease_id(name) {
                        incoming::remove_lease_dir(&dir, name)
                    } else {
                        incoming::remove_stray(&dir, name)
                    };
                    if let Err(e) = r {
                        tracing::warn!(entry = %name, error = %e, "cannot remove from incoming/");
                    }
                }
            })
            .await;
            tracing::info!(
                removed = n,
                "removed incoming directories of leases that were not accepted"
            );
        }
    }
}

/// Sweeps `incoming/` every lease TTL (between 1 s and 60 s), forever.
pub async fn sweeper(app: actix_web::web::Data<App>) {
    let every = Duration::from_millis(app.lease_ttl_ms.clamp(1000, 60_000));
    loop {
        tokio::time::sleep(every).await;
        if !app.writer.is_alive() {
            return;
        }
        app.sweep().await;
    }
}

/// What start-up did to `incoming/`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub promoted: usize,
    pub kept: usize,
    pub removed: usize,
    pub failed: usize,
}

/// Before anything is served: the directory of an accepted lease is
/// promoted (the scheduler stopped between its commit and the renames), one
/// of a lease live in the state file is kept (its worker may still report),
/// any other is removed.
pub fn reconcile_at_start(
    build_dir: &Path,
    accepted: &Accepted,
    live: &HashSet<String>,
    sync: bool,
) -> anyhow::Result<Reconciled> {
    let mut done = Reconciled::default();
    for name in incoming::lease_dirs(build_dir)? {
        let status = if !valid_lease_id(&name) {
            LeaseStatus::Unknown
        } else if accepted.package_of_lease(&name).is_some() {
            LeaseStatus::Accepted
        } else if live.contains(&name) {
            LeaseStatus::Live
        } else {
            LeaseStatus::Closed { since_ms: None }
        };
        match decide(status, 0, 0) {
            Decision::Promote => {
                let promotion = accepted
                    .package_of_lease(&name)
                    .and_then(|pkg| accepted.promotion(pkg));
                let Some(p) = promotion else { continue };
                match incoming::promote(build_dir, &p, sync, Pass::Redo) {
                    Ok(()) => {
                        tracing::warn!(lease = %name, package = %p.package, files = p.files.len(),
                            "made the files of a build accepted before the restart visible");
                        done.promoted += 1;
                    }
                    // Its files are then not all on the share: the package is built again.
                    Err(e) => {
                        tracing::error!(lease = %name, error = %e, "cannot make the files of a build accepted before the restart visible");
                        done.failed += 1;
                    }
                }
            }
            Decision::Keep => done.kept += 1,
            Decision::Remove => {
                if valid_lease_id(&name) {
                    incoming::remove_lease_dir(build_dir, &name)?;
                } else {
                    incoming::remove_stray(build_dir, &name)?;
                }
                done.removed += 1;
            }
        }
    }
    Ok(done)
}
