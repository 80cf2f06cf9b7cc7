//! State transitions driven by workers: register, lease, heartbeat, report,
//! and the reaper's expiry of leases.

use super::{Build, ClosedLease, LeaseRt, WorkerRt};
use crate::db::writer::DbOp;
use crate::error::SchedError;
use dbuild_common::dispatch::{FailOutcome, PkgState};
use dbuild_common::wire::{Define, FailureKind, Lease, Outcome, RegisterRequest, Report, RpmFile};
use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path};

/// What a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub package: String,
    /// The package's state after the report (`succeeded` once accepted, even
    /// while its files are being made visible).
    pub state: PkgState,
    /// The report was accepted: promote this lease's files
    /// ([`Build::promotion_of`]), then call [`Build::promoted`].
    pub accepted: Option<String>,
}

/// How a report is taken.
enum Verdict {
    Accept(Vec<RpmFile>),
    Fail {
        exit_status: Option<i32>,
        reason: String,
        kind: FailureKind,
    },
}

/// What a lease request got.
#[derive(Debug)]
pub enum LeaseAttempt {
    Granted(Box<Lease>),
    /// Nothing ready now; wait for a change.
    Nothing,
    /// The build is over.
    Finished,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
}

/// A relative path below one of `roots`, without `..` or odd components.
fn valid_rel_path(p: &str, roots: &[&str], suffix: &str) -> bool {
    let path = Path::new(p);
    p.len() <= 4096
        && p.ends_with(suffix)
        && !p.contains('\0')
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && roots.iter().any(|r| path.starts_with(r))
}

fn valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn bad(msg: String) -> SchedError {
    SchedError::BadRequest(msg)
}

impl Build {
    /// Registers (or re-registers) a worker. A worker that registers again
    /// under the same name restarted: its old leases are given up.
    pub fn register(&mut self, req: &RegisterRequest, now: u64) -> Result<String, SchedError> {
        if !valid_name(&req.name) {
            return Err(bad(format!(
                "worker name {:?} must be 1-253 characters of [A-Za-z0-9._:-]",
                req.name
            )));
        }
        if req.arch != self.plan.arch && req.arch != "noarch" {
            return Err(bad(format!(
                "worker {} builds for {}, but this build is for {}",
                req.name, req.arch, self.plan.arch
            )));
        }
        if req.slots == 0 || req.slots > 1024 {
            return Err(bad(format!(
                "worker {}: slots must be 1..=1024, got {}",
                req.name, req.slots
            )));
        }
        let id = match self.worker_ids.get(&req.name) {
            Some(id) => {
                let id = id.clone();
                let old: Vec<String> = self
                    .workers
                    .get(&id)
                    .map(|w| w.leases.iter().cloned().collect())
                    .unwrap_or_default();
                for l in old {
                    self.lose_lease(&l, now, "lost", "worker registered again (restarted)");
                }
                id
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let registered_ms = self.workers.get(&id).map_or(now, |w| w.registered_ms);
        self.worker_ids.insert(req.name.clone(), id.clone());
        self.workers.insert(
            id.clone(),
            WorkerRt {
                id: id.clone(),
                name: req.name.clone(),
                arch: req.arch.clone(),
                slots: req.slots,
                registered_ms,
                gone: false,
                leases: BTreeSet::new(),
            },
        );
        self.persist_worker(&id);
        self.seen(&id, now);
        tracing::info!(worker = %req.name, worker_id = %id, arch = %req.arch, slots = req.slots, "worker registered");
        Ok(id)
    }

    pub(super) fn persist_worker(&mut self, id: &str) {
        if let Some(w) = self.workers.get(id) {
            self.ops.push(DbOp::Worker {
                id: w.id.clone(),
                name: w.name.clone(),
                arch: w.arch.clone(),
                slots: w.slots,
                registered_ms: w.registered_ms,
                gone: w.gone,
            });
        }
    }

    /// Hands the best ready package to `worker_id`, if any.
    pub fn try_lease(&mut self, worker_id: &str, now: u64) -> Result<LeaseAttempt, SchedError> {
        let w = self
            .workers
            .get(worker_id)
            .ok_or_else(|| SchedError::UnknownWorker(worker_id.to_string()))?;
        if w.leases.len() >= w.slots as usize {
            return Err(SchedError::SlotsFull {
                worker: w.name.clone(),
                held: w.leases.len(),
                slots: w.slots,
            });
        }
        let (name, gone) = (w.name.clone(), w.gone);
        self.seen(worker_id, now);
        if gone {
            if let Some(w) = self.workers.get_mut(worker_id) {
                w.gone = false;
            }
            self.persist_worker(worker_id);
            tracing::info!(worker = %name, "worker is back");
        }
        let live = self.live_workers();
        let Some(i) = self.disp.next_for(&name, live) else {
            return Ok(if self.disp.is_finished() {
                LeaseAttempt::Finished
            } else {
                LeaseAttempt::Nothing
            });
        };
        self.taken_over(i);
        let id = uuid::Uuid::new_v4().to_string();
        Ok(LeaseAttempt::Granted(Box::new(
            self.grant(i, worker_id, &name, id, now),
        )))
    }

    /// Records the lease `id` on package `i` (already building in the
    /// dispatcher) for `worker_id`.
    pub(super) fn grant(
        &mut self,
        i: usize,
        worker_id: &str,
        worker_name: &str,
        id: String,
        now: u64,
    ) -> Lease {
        self.observe_grant(i, now);
        self.pkgs[i].attempts += 1;
        let attempt = self.pkgs[i].attempts;
        let deadline_ms = now
            .saturating_add(self.cfg.lease_ttl_ms)
            .min(now.saturating_add(self.cfg.max_build_ms));
        self.pkgs[i].lease = Some(id.clone());
        self.pkgs[i].since_ms = Some(now);
        self.leases.insert(
            id.clone(),
            LeaseRt {
                pkg: i,
                worker_id: worker_id.to_string(),
                attempt,
                granted_ms: now,
                deadline_ms,
            },
        );
        if let Some(w) = self.workers.get_mut(worker_id) {
            w.leases.insert(id.clone());
        }
        let lease = self.lease_body(i, id.clone(), attempt, deadline_ms);
        self.ops.push(DbOp::LeaseGranted {
            id: id.clone(),
            package: lease.package.clone(),
            worker: worker_id.to_string(),
            attempt,
            granted_ms: now,
        });
        self.persist_pkg(i);
        self.event(
            i,
            now,
            "leased",
            Some(worker_name.to_string()),
            Some(id.clone()),
            Some(attempt),
            None,
        );
        tracing::info!(package = %lease.package, worker = %worker_name, lease = %id, attempt, "lease granted");
        lease
    }

    /// What a worker needs to build package `i` as lease `id`.
    pub(super) fn lease_body(&self, i: usize, id: String, attempt: u32, deadline_ms: u64) -> Lease {
        let p = &self.plan.packages[i];
        Lease {
            lease_id: id,
            package: p.name.clone(),
            evr: p.evr.clone(),
            spec: format!("{}/{}", self.cfg.specs_rel, p.spec.display()),
            attempt,
            install: self.install_list(i),
            macros: self
                .plan
                .macros
                .iter()
                .map(|(n, v)| Define {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
            arch: self.plan.arch.clone(),
            deadline_unix_ms: deadline_ms,
            log_path: dbuild_common::wire::log_path(&p.name, attempt),
            check: self.cfg.check,
            macro_files: self.cfg.macro_files.clone(),
            assume_provided: self.cfg.assume_provided.clone(),
        }
    }

    /// The exact RPM files of the binary packages `i` installs.
    fn install_list(&self, i: usize) -> Vec<String> {
        let want: HashSet<&str> = self.plan.packages[i]
            .installs
            .iter()
            .map(String::as_str)
            .collect();
        let mut owners: Vec<usize> = want
            .iter()
            .filter_map(|b| self.owners.get(*b).copied())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let mut out: Vec<String> = owners
            .into_iter()
            .flat_map(|o| self.pkgs[o].rpms.iter())
            .filter(|r| {
                r.binary_name().is_some_and(|b| want.contains(b))
                    && !r.path.starts_with("stage/SRPMS")
            })
            .map(|r| r.path.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Finds the live lease `id` held by `worker_id`.
    pub(super) fn live_lease(&self, id: &str, worker_id: &str) -> Result<&LeaseRt, SchedError> {
        match self.leases.get(id) {
            Some(l) if l.worker_id == worker_id => Ok(l),
            Some(l) => Err(SchedError::NotYourLease {
                id: id.into(),
                package: self.plan.packages[l.pkg].name.clone(),
            }),
            None => match self.closed.get(id) {
                Some(c) => Err(SchedError::LeaseNotLive {
                    id: id.into(),
                    package: c.package.clone(),
                    status: c.status.clone(),
                }),
                None => Err(SchedError::UnknownLease(id.into())),
            },
        }
    }

    /// Renews lease `id`; returns the new deadline.
    pub fn heartbeat(&mut self, id: &str, worker_id: &str, now: u64) -> Result<u64, SchedError> {
        let granted = self.live_lease(id, worker_id)?.granted_ms;
        self.seen(worker_id, now);
        let deadline = now
            .saturating_add(self.cfg.lease_ttl_ms)
            .min(granted.saturating_add(self.cfg.max_build_ms));
        if let Some(l) = self.leases.get_mut(id) {
            l.deadline_ms = deadline;
        }
        Ok(deadline)
    }

    fn validate_report(&self, pkg: usize, r: &Report) -> Result<(), SchedError> {
        let name = &self.plan.packages[pkg].name;
        if !r.duration_secs.is_finite() || r.duration_secs < 0.0 || r.duration_secs > 1e7 {
            return Err(bad(format!(
                "package {name}: duration_secs must be a non-negative number, got {}",
                r.duration_secs
            )));
        }
        if let Some(log) = &r.log_path {
            if !valid_rel_path(log, &["stage/LOGS"], "") {
                return Err(bad(format!(
                    "package {name}: log_path {log:?} must be a relative path under stage/LOGS"
                )));
            }
        }
        if r.phases_secs.len() > 32 {
            return Err(bad(format!(
                "package {name}: too many phases ({})",
                r.phases_secs.len()
            )));
        }
        for (phase, secs) in &r.phases_secs {
            if phase.is_empty()
                || phase.len() > 32
                || !phase.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                return Err(bad(format!(
                    "package {name}: phase name {phase:?} must be 1-32 characters of [a-z_]"
                )));
            }
            if !secs.is_finite() || *secs < 0.0 || *secs > 1e7 {
                return Err(bad(format!("package {name}: phase {phase} must last a non-negative number of seconds, got {secs}")));
            }
        }
        match &r.outcome {
            Outcome::Success { rpms } => {
                if rpms.len() > 10_000 {
                    return Err(bad(format!(
                        "package {name}: too many RPMs ({})",
                        rpms.len()
                    )));
                }
                let mut seen = HashSet::new();
                for f in rpms {
                    if !valid_rel_path(&f.path, &["stage/RPMS", "stage/SRPMS"], ".rpm")
                        || f.binary_name().is_none()
                    {
                        return Err(bad(format!(
                            "package {name}: RPM path {:?} must be stage/RPMS/<arch>/<name>-<version>-<release>.<arch>.rpm or under stage/SRPMS",
                            f.path
                        )));
                    }
                    if !valid_sha256(&f.sha256) {
                        return Err(bad(format!(
                            "package {name}: sha256 of {} must be 64 lower-case hex digits",
                            f.path
                        )));
                    }
                    if !seen.insert(f.path.as_str()) {
                        return Err(bad(format!("package {name}: RPM {} listed twice", f.path)));
                    }
                }
            }
            Outcome::Failure { reason, .. } => {
                if reason.len() > 64 * 1024 {
                    return Err(bad(format!(
                        "package {name}: failure reason longer than 64 KiB"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether the files of a success report can be accepted: `found` is
    /// what [`crate::incoming::check_reported`] found in the lease's incoming
    /// directory (their sizes), and no path may belong to another package.
    fn verdict(&self, pkg: usize, r: &Report, found: Result<Vec<u64>, String>) -> Verdict {
        let name = &self.plan.packages[pkg].name;
        match &r.outcome {
            Outcome::Failure {
                exit_status,
                reason,
                kind,
            } => Verdict::Fail {
                exit_status: *exit_status,
                reason: reason.clone(),
                kind: *kind,
            },
            Outcome::Success { rpms } => {
                let sizes = match found {
                    Ok(sizes) if sizes.len() == rpms.len() => sizes,
                    Ok(_) => {
                        return Verdict::Fail {
                            exit_status: None,
                            reason: format!("package {name}: its files were not checked"),
                            kind: FailureKind::Transient,
                        }
                    }
                    Err(reason) => {
                        return Verdict::Fail {
                            exit_status: None,
                            reason: format!("package {name}: {reason}"),
                            kind: FailureKind::Transient,
                        }
                    }
                };
                if let Some(o) = self.accepted.owned_elsewhere(name, rpms) {
                    return Verdict::Fail {
                        exit_status: None,
                        reason: format!(
                            "package {name}: {} is already accepted for package {}; not accepting it again for {name}",
                            o.path, o.owner
                        ),
                        kind: FailureKind::Package,
                    };
                }
                Verdict::Accept(
                    rpms.iter()
                        .zip(sizes)
                        .map(|(f, size)| RpmFile {
                            size: Some(size),
                            ..f.clone()
                        })
                        .collect(),
                )
            }
        }
    }

    /// Applies a worker's report on lease `id`. `found`: for a success, what
    /// its lease's incoming directory holds ([`crate::incoming::check_reported`]).
    pub fn report(
        &mut self,
        id: &str,
        r: &Report,
        found: Result<Vec<u64>, String>,
        now: u64,
    ) -> Result<Reported, SchedError> {
        let l = self.live_lease(id, &r.worker_id)?.clone();
        self.validate_report(l.pkg, r)?;
        self.seen(&r.worker_id, now);
        let i = l.pkg;
        let name = self.plan.packages[i].name.clone();
        let worker = self.worker_name(&l.worker_id);
        let verdict = self.verdict(i, r, found);
        self.close_lease(id, i, &l.worker_id, "reported", now);
        let (exit_status, reason, kind) = match verdict {
            Verdict::Accept(rpms) => {
                self.accept(i, id, l.attempt, &worker, rpms, r, now);
                return Ok(Reported {
                    package: name,
                    state: PkgState::Succeeded,
                    accepted: Some(id.to_string()),
                });
            }
            Verdict::Fail {
                exit_status,
                reason,
                kind,
            } => (exit_status, reason, kind),
        };
        let reason_line = match exit_status {
            Some(code) => format!("exit status {code}: {reason}"),
            None => reason.clone(),
        };
        let permanent = kind == FailureKind::Package && !self.cfg.retry_package_failures;
        let mut detail = match &r.log_path {
            Some(log) => format!("{reason_line} (log {log})"),
            None => reason_line.clone(),
        };
        if permanent && self.cfg.max_attempts > 1 {
            detail.push_str("; not retried: the package's own build failed");
        }
        self.pkgs[i].reason = Some(reason_line);
        if let Some(m) = self.metrics() {
            m.finished(Some(kind));
        }
        let outcome = self
            .disp
            .fail(i, &worker, permanent)
            .map_err(|e| bad(e.to_string()))?;
        self.persist_pkg(i);
        self.event(
            i,
            now,
            "failed",
            Some(worker.clone()),
            Some(id.into()),
            Some(l.attempt),
            Some(detail),
        );
        match outcome {
            FailOutcome::Retry => {
                if let Some(m) = self.metrics() {
                    m.retried_after_failure();
                }
                tracing::warn!(package = %name, worker = %worker, lease = %id, attempt = l.attempt, "build failed; will retry");
            }
            FailOutcome::Failed { dep_failed } => {
                tracing::warn!(package = %name, worker = %worker, lease = %id, kind = ?kind, dependents = dep_failed.len(), "build failed for good");
                self.mark_dep_failed(&name, dep_failed, now);
            }
        }
        self.check_finished(now);
        let state = self.disp.state(i).unwrap_or(PkgState::Waiting);
        Ok(Reported {
            package: name,
            state,
            accepted: None,
        })
    }

    /// Records `dependents` as dep-failed because of failed package `failed`.
    fn mark_dep_failed(&mut self, failed: &str, dependents: Vec<usize>, now: u64) {
        for d in dependents {
            let on = self
                .disp
                .dep_failed_on(d)
                .map_or_else(|| failed.to_string(), |x| self.disp.name(x).to_string());
            self.persist_pkg(d);
            self.event(
                d,
                now,
                "dep-failed",
                None,
                None,
                None,
                Some(format!("needs {on}, which failed")),
            );
        }
    }

    fn close_lease(
        &mut self,
        id: &str,
        pkg: usize,
        worker_id: &str,
        status: &'static str,
        now: u64,
    ) {
        self.leases.remove(id);
        self.closed.insert(
            id.to_string(),
            ClosedLease {
                package: self.plan.packages[pkg].name.clone(),
                status: status.to_string(),
                since_ms: Some(now),
            },
        );
        if let Some(w) = self.workers.get_mut(worker_id) {
            w.leases.remove(id);
        }
        self.pkgs[pkg].lease = None;
        self.pkgs[pkg].since_ms = None;
        self.ops.push(DbOp::LeaseClosed {
            id: id.to_string(),
            status,
        });
    }

    /// Takes lease `id` away and puts its package back in the queue.
    pub(super) fn lose_lease(&mut self, id: &str, now: u64, kind: &str, why: &str) {
        let Some(l) = self.leases.get(id).cloned() else {
            return;
        };
        let worker = self.worker_name(&l.worker_id);
        self.close_lease(id, l.pkg, &l.worker_id, "expired", now);
        self.drop_reservation(id);
        let i = l.pkg;
        self.pkgs[i].losses += 1;
        let losses = self.pkgs[i].losses;
        let name = self.plan.packages[i].name.clone();
        let requeue = losses < self.cfg.max_lease_losses;
        self.observe_lost(kind, requeue);
        if requeue {
            let _ = self.disp.requeue(i);
            self.persist_pkg(i);
            self.event(
                i,
                now,
                kind,
                Some(worker.clone()),
                Some(id.into()),
                Some(l.attempt),
                Some(why.into()),
            );
            tracing::warn!(package = %name, worker = %worker, lease = %id, reason = why, losses, "lease revoked; package requeued");
            return;
        }
        // A package whose builds keep killing or hanging their workers must not loop forever.
        let dep_failed = self.disp.give_up(i).unwrap_or_default();
        let reason = format!("lost its lease {losses} times (last: {why}); giving up");
        self.pkgs[i].reason = Some(reason.clone());
        self.persist_pkg(i);
        self.event(
            i,
            now,
            kind,
            Some(worker.clone()),
            Some(id.into()),
            Some(l.attempt),
            Some(why.into()),
        );
        self.event(i, now, "failed", None, None, None, Some(reason));
        tracing::warn!(package = %name, worker = %worker, lease = %id, losses, dependents = dep_failed.len(), "lease lost too often; package failed");
        self.mark_dep_failed(&name, dep_failed, now);
        self.check_finished(now);
    }

    /// Expires every lease past its deadline; a worker whose leases all
    /// expired is marked gone. Returns how many leases expired.
    pub fn reap(&mut self, now: u64) -> usize {
        let expired: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline_ms <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut touched = HashSet::new();
        for id in &expired {
            let mut why = "no heartbeat before the lease deadline";
            if let Some(l) = self.leases.get(id) {
                touched.insert(l.worker_id.clone());
                if l.granted_ms.saturating_add(self.cfg.max_build_ms) <= now {
                    why = "the build ran longer than --max-build-time";
                }
            }
            self.lose_lease(id, now, "expired", why);
        }
        for wid in touched {
            let gone = self
                .workers
                .get(&wid)
                .is_some_and(|w| w.leases.is_empty() && !w.gone);
            if gone {
                if let Some(w) = self.workers.get_mut(&wid) {
                    w.gone = true;
                    tracing::warn!(worker = %w.name, worker_id = %wid, "worker missed all its heartbeats; marked gone");
                }
                self.persist_worker(&wid);
            }
        }
        expired.len()
    }

    /// Earliest lease deadline, for the reaper.
    pub fn next_deadline(&self) -> Option<u64> {
        self.leases.values().map(|l| l.deadline_ms).min()
    }

    pub(super) fn check_finished(&mut self, now: u64) {
        if self.disp.is_finished() && self.finished_ms.is_none() {
            self.finished_ms = Some(now);
            self.ops.push(DbOp::Meta {
                key: "finished_ms".into(),
                value: now.to_string(),
            });
            let c = self.disp.counts();
            tracing::info!(
                succeeded = c.get(&PkgState::Succeeded).copied().unwrap_or(0),
                up_to_date = c.get(&PkgState::UpToDate).copied().unwrap_or(0),
                failed = c.get(&PkgState::Failed).copied().unwrap_or(0),
                dep_failed = c.get(&PkgState::DepFailed).copied().unwrap_or(0),
                "build finished"
            );
        }
    }

    /// RPM files of package `i` (for views).
    pub(crate) fn rpms_of(&self, i: usize) -> &[RpmFile] {
        &self.pkgs[i].rpms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_hash_validation() {
        assert!(valid_rel_path(
            "stage/RPMS/x86_64/a-1-1.x86_64.rpm",
            &["stage/RPMS"],
            ".rpm"
        ));
        assert!(!valid_rel_path(
            "stage/RPMS/../../etc/passwd.rpm",
            &["stage/RPMS"],
            ".rpm"
        ));
        assert!(!valid_rel_path(
            "/stage/RPMS/a-1-1.x86_64.rpm",
            &["stage/RPMS"],
            ".rpm"
        ));
        assert!(!valid_rel_path(
            "stage/RPMSX/a-1-1.x86_64.rpm",
            &["stage/RPMS"],
            ".rpm"
        ));
        assert!(valid_sha256(&"ab".repeat(32)));
        assert!(!valid_sha256(&"AB".repeat(32)));
        assert!(valid_name("worker-1.pod"));
        assert!(!valid_name("a b"));
    }
}
