//! Accepting a build and making its files visible, in two steps: the
//! acceptance (package succeeded, its files with sha256 and size, the
//! accepting lease) is committed first, with the package still counted as
//! building; once its files are renamed from `incoming/<lease>/` into
//! `stage/` ([`crate::incoming::promote`]), [`Build::promoted`] lets what
//! needs it go ahead. A crash in between is redone at start-up from the
//! committed record, so the promotion is an idempotent redo step.

use super::{Build, Promoting};
use crate::db::writer::DbOp;
use crate::incoming::{LeaseStatus, Promotion};
use dbuild_common::dispatch::PkgState;
use dbuild_common::wire::{Report, RpmFile};

impl Build {
    /// Records the accepted build of package `i` by lease `id` (closed
    /// already): the files, the duration, the event; the package goes on
    /// counting as building until [`Build::promoted`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept(
        &mut self,
        i: usize,
        id: &str,
        attempt: u32,
        worker: &str,
        rpms: Vec<RpmFile>,
        r: &Report,
        now: u64,
    ) {
        let name = self.plan.packages[i].name.clone();
        let count = rpms.len();
        let row = self.accepted.accept(&name, id, &self.hashes[i], rpms);
        self.ops.push(DbOp::LastSuccess {
            name: name.clone(),
            row,
        });
        self.ops.push(DbOp::Duration {
            name: name.clone(),
            secs: r.duration_secs,
        });
        self.pkgs[i].reason = None;
        self.observe_accepted(i, r.duration_secs);
        // On disk it succeeded: after a crash the start-up promotes its files first.
        self.persist_pkg_as(i, PkgState::Succeeded);
        let mut detail = format!("{count} RPMs in {:.1}s", r.duration_secs);
        if !r.phases_secs.is_empty() {
            let phases: Vec<String> = r
                .phases_secs
                .iter()
                .map(|(k, v)| format!("{k} {v:.2}s"))
                .collect();
            detail.push_str(&format!(" ({})", phases.join(", ")));
        }
        self.event(
            i,
            now,
            "succeeded",
            Some(worker.to_string()),
            Some(id.into()),
            Some(attempt),
            Some(detail),
        );
        self.promoting.insert(
            id.to_string(),
            Promoting {
                pkg: i,
                error: None,
            },
        );
        tracing::info!(package = %name, worker = %worker, lease = %id, secs = r.duration_secs, "build accepted");
    }

    /// What making the files of accepted lease `lease_id` visible takes, while
    /// it is its package's current record.
    pub fn promotion_of(&self, lease_id: &str) -> Option<Promotion> {
        let pkg = self.accepted.package_of_lease(lease_id)?;
        self.accepted.promotion(pkg)
    }

    /// The files of accepted lease `lease_id` are in `stage/` now: its package
    /// succeeds in the dispatcher and what needs it may become ready.
    /// Returns whether that happened now (false: done before, or nothing pending).
    pub fn promoted(&mut self, lease_id: &str, now: u64) -> bool {
        let Some(p) = self.promoting.remove(lease_id) else {
            return false;
        };
        let i = p.pkg;
        let name = self.plan.packages[i].name.clone();
        let now_ready = match self.disp.succeed(i) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(package = %name, lease = %lease_id, error = %e, "accepted package was not building");
                return false;
            }
        };
        self.pkgs[i].rpms = self
            .accepted
            .get(&name)
            .map(|a| a.rpms.clone())
            .unwrap_or_default();
        self.persist_pkg(i);
        for d in now_ready {
            self.persist_pkg(d);
            self.event(
                d,
                now,
                "ready",
                None,
                None,
                None,
                Some(format!("{name} built")),
            );
        }
        self.check_finished(now);
        true
    }

    /// Making the files of `lease_id` visible failed (it is tried again).
    pub fn promotion_failed(&mut self, lease_id: &str, error: String) {
        if let Some(p) = self.promoting.get_mut(lease_id) {
            p.error = Some(error);
        }
    }

    /// Accepted leases whose promotion failed (to be tried again).
    pub fn failed_promotions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .promoting
            .iter()
            .filter(|(_, p)| p.error.is_some())
            .map(|(l, _)| l.clone())
            .collect();
        v.sort();
        v
    }

    /// For a package being promoted: its lease and the last error.
    pub(super) fn promoting_of(&self, i: usize) -> Option<(&str, Option<&str>)> {
        self.promoting
            .iter()
            .find(|(_, p)| p.pkg == i)
            .map(|(l, p)| (l.as_str(), p.error.as_deref()))
    }

    /// What the scheduler knows of lease `lease_id`, for its incoming directory.
    pub fn incoming_status(&self, lease_id: &str) -> LeaseStatus {
        if self.accepted.package_of_lease(lease_id).is_some() {
            match self.promoting.get(lease_id) {
                // The report's handler has it (a failed attempt is anyone's to retry).
                Some(p) if p.error.is_none() => LeaseStatus::Accepting,
                Some(_) => LeaseStatus::Accepted,
                // Promoted already: whatever is there now was written after
                // the acceptance (a late or duplicated writer) and is removed.
                None => LeaseStatus::Closed { since_ms: None },
            }
        } else if self.leases.contains_key(lease_id) {
            LeaseStatus::Live
        } else if let Some(c) = self.closed.get(lease_id) {
            LeaseStatus::Closed {
                since_ms: c.since_ms,
            }
        } else {
            LeaseStatus::Unknown
        }
    }

    /// Every accepted file, a page at a time (`GET /v1/rpms`).
    pub fn accepted(&self) -> &super::Accepted {
        &self.accepted
    }
}
