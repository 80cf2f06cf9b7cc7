//! The slot's side of reservations: during a build, reserve the next package
//! and prepare it ([`Ahead`]); at the report, claim it; after the reply, run
//! the prepared build if the next lease is the reservation, else throw it away.

use super::{to_job, Api};
use crate::ahead::Ahead;
use crate::job::WorkerConfig;
use dbuild_common::wire::{Lease, ReserveReply, ReserveRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A build prepared ahead, with the reserved lease it was prepared for.
pub(super) struct ReadiedBuild {
    lease: Lease,
    ahead: Ahead,
}

/// A reservation being asked for and its build being prepared, in the background.
pub(super) struct Prefetch {
    /// The reserved lease id, once the scheduler answered.
    reserved: watch::Receiver<Option<String>>,
    /// Turned true: give up unless the reservation already came.
    abandon: watch::Sender<bool>,
    task: JoinHandle<Option<ReadiedBuild>>,
}

impl Prefetch {
    /// Starts asking, during lease `current` of slot `slot`, for the slot's next package.
    pub(super) fn start(
        api: Arc<Api>,
        wc: Arc<WorkerConfig>,
        worker_id: String,
        current: &Lease,
        slot: usize,
    ) -> Prefetch {
        static NEXT_DIR: AtomicU64 = AtomicU64::new(0);
        let (reserved_tx, reserved) = watch::channel(None);
        let (abandon, mut abandoned) = watch::channel(false);
        let path = format!("/v1/leases/{}/reserve", current.lease_id);
        let task = tokio::spawn(async move {
            let req = ReserveRequest { worker_id };
            let ask = api.post::<_, ReserveReply>(&path, &req, Duration::from_secs(30));
            let reply = tokio::select! {
                r = ask => r,
                _ = crate::rpmbuild::cancelled(&mut abandoned) => return None,
            };
            let lease = match reply {
                Ok(r) => r.lease?,
                Err(e) => {
                    tracing::warn!(slot, error = %e, "asking for a reservation failed; the next build is not prepared ahead");
                    return None;
                }
            };
            let _ = reserved_tx.send(Some(lease.lease_id.clone()));
            let mut job = to_job(&lease, slot);
            job.slot = format!(
                "{}-ahead-{}",
                job.slot,
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            );
            tracing::info!(slot, package = %lease.package, reservation = %lease.lease_id, "preparing the reserved next build");
            match Ahead::start(&wc, job).await {
                Ok(ahead) => Some(ReadiedBuild { lease, ahead }),
                Err(e) => {
                    tracing::warn!(slot, package = %lease.package, error = %e, "preparing the reserved build failed; it will be built the usual way if claimed");
                    None
                }
            }
        });
        Prefetch {
            reserved,
            abandon,
            task,
        }
    }

    /// The reservation to claim in the report, if one came already.
    pub(super) fn claim(&self) -> Option<String> {
        self.reserved.borrow().clone()
    }

    /// The prepared build when `next` is the lease it was prepared for
    /// (same id and same content); otherwise it is thrown away.
    pub(super) async fn take_for(self, next: Option<&Lease>) -> Option<Ahead> {
        let _ = self.abandon.send(true);
        let prepared = self.task.await.ok().flatten()?;
        let matches = next.is_some_and(|n| {
            Lease {
                deadline_unix_ms: n.deadline_unix_ms,
                ..prepared.lease.clone()
            } == *n
        });
        if matches {
            return Some(prepared.ahead);
        }
        if let Some(n) = next.filter(|n| n.lease_id == prepared.lease.lease_id) {
            tracing::warn!(package = %n.package, "the claimed lease differs from the reservation; building it afresh");
        }
        prepared.ahead.discard().await;
        None
    }
}
