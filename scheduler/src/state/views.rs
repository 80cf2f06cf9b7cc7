//! Read-only views of the build for people and the launcher.

use super::Build;
use crate::error::SchedError;
use dbuild_common::dispatch::PkgState;
use dbuild_common::wire::{
    GraphEdge, GraphNode, GraphView, PackageDetail, PackageInfo, Summary, WorkerInfo,
};

impl Build {
    pub fn summary(&self, now: u64) -> Summary {
        let counts = self.disp.counts();
        let left = self.time_left(now);
        let failed: Vec<String> = (0..self.package_count())
            .filter(|&i| self.disp.state(i) == Some(PkgState::Failed))
            .map(|i| self.disp.name(i).to_string())
            .collect();
        let finished = self.disp.is_finished();
        let outcome = match (
            finished,
            failed.is_empty() && counts.get(&PkgState::DepFailed).copied().unwrap_or(0) == 0,
        ) {
            (false, _) => "running",
            (true, true) => "succeeded",
            (true, false) => "failed",
        };
        Summary {
            packages: self.package_count(),
            counts: counts
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect(),
            elapsed_secs: self.elapsed_ms(now) as f64 / 1000.0,
            run_elapsed_secs: self.run_elapsed_ms(now) as f64 / 1000.0,
            estimate_left_secs: left.estimate_secs,
            critical_path_left_secs: left.critical_path_secs,
            finished,
            outcome: outcome.to_string(),
            failed,
            workers_live: self.live_workers(),
            slots_live: self.live_slots(),
        }
    }

    fn info(&self, i: usize) -> PackageInfo {
        let p = &self.plan.packages[i];
        let rt = &self.pkgs[i];
        let lease = rt
            .lease
            .as_ref()
            .and_then(|id| self.leases.get(id).map(|l| (id, l)));
        PackageInfo {
            name: p.name.clone(),
            evr: p.evr.clone(),
            spec: format!("{}/{}", self.cfg.specs_rel, p.spec.display()),
            state: self.disp.state(i).unwrap_or(PkgState::Waiting),
            priority: self.disp.priority(i),
            attempts: rt.attempts,
            failures: self.disp.failures(i),
            worker: lease.and_then(|(_, l)| self.workers.get(&l.worker_id).map(|w| w.name.clone())),
            lease_id: lease.map(|(id, _)| id.clone()),
            since_unix_ms: rt.since_ms,
            waiting_on: self
                .disp
                .waiting_on(i)
                .into_iter()
                .map(|d| self.disp.name(d).to_string())
                .collect(),
            dep_failed_on: self
                .disp
                .dep_failed_on(i)
                .map(|d| self.disp.name(d).to_string()),
            reason: rt.reason.clone(),
            input_hash: self.hashes[i].clone(),
        }
    }

    /// Packages, optionally only those in `state`, in plan order.
    pub fn packages(&self, state: Option<PkgState>) -> Vec<PackageInfo> {
        (0..self.package_count())
            .filter(|&i| state.is_none_or(|s| self.disp.state(i) == Some(s)))
            .map(|i| self.info(i))
            .collect()
    }

    /// Why package `i` is in its state, in one sentence.
    fn why(&self, i: usize) -> String {
        let info = self.info(i);
        match info.state {
            PkgState::Waiting => format!("waiting for {} package(s) to be built: {}", info.waiting_on.len(), info.waiting_on.join(", ")),
            PkgState::Ready => {
                let pos = self.disp.ready_queue().position(|x| x == i).map_or(0, |p| p + 1);
                let waits_for = match self.reserved_by(i) {
                    Some((worker, after)) => {
                        format!("reserved for worker {worker}'s next build, after {after}, and prepared there meanwhile (an idle worker would take it)")
                    }
                    None => "waiting for a free worker slot".to_string(),
                };
                format!("ready: number {pos} of {} in the queue (priority {:.1}); {waits_for}", self.disp.ready_len(), info.priority)
            }
            PkgState::Building => match self.promoting_of(i) {
                Some((lease, error)) => format!(
                    "built and accepted (lease {lease}); its RPMs are being moved from incoming/ into stage/{}",
                    error.map(|e| format!(" (last attempt failed: {e}; retrying)")).unwrap_or_default()
                ),
                None => format!(
                    "building on worker {} (attempt {}, lease {})",
                    info.worker.unwrap_or_default(),
                    info.attempts,
                    info.lease_id.unwrap_or_default()
                ),
            },
            PkgState::Succeeded => "built in this build".to_string(),
            PkgState::UpToDate => "inputs unchanged since its last successful build and its RPMs are present; not rebuilt".to_string(),
            PkgState::Failed => format!(
                "failed {} time(s); last: {}",
                info.failures,
                info.reason.unwrap_or_else(|| "recorded as failed".into())
            ),
            PkgState::DepFailed => {
                let mut chain = Vec::new();
                let mut cur = self.disp.dep_failed_on(i);
                while let Some(c) = cur {
                    chain.push(self.disp.name(c).to_string());
                    if chain.len() > self.package_count() {
                        break;
                    }
                    cur = self.disp.dep_failed_on(c);
                }
                format!("not built because a package it needs failed: {}", chain.join(" -> "))
            }
        }
    }

    pub fn package(&self, name: &str) -> Result<PackageDetail, SchedError> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| SchedError::UnknownPackage(name.to_string()))?;
        let p = &self.plan.packages[i];
        let dependents = self.plan.dependents();
        Ok(PackageDetail {
            info: self.info(i),
            why: self.why(i),
            needs: p
                .needs
                .iter()
                .map(|&d| self.disp.name(d).to_string())
                .collect(),
            needed_by: dependents[i]
                .iter()
                .map(|&d| self.disp.name(d).to_string())
                .collect(),
            builds: p.builds.clone(),
            rpms: self.rpms_of(i).to_vec(),
            history: self.pkgs[i].history.clone(),
        })
    }

    pub fn graph(&self) -> GraphView {
        GraphView {
            nodes: (0..self.package_count())
                .map(|i| GraphNode {
                    name: self.disp.name(i).to_string(),
                    state: self.disp.state(i).unwrap_or(PkgState::Waiting),
                    priority: self.disp.priority(i),
                })
                .collect(),
            edges: self
                .plan
                .packages
                .iter()
                .flat_map(|p| p.needs.iter().map(move |&d| (p, d)))
                .map(|(p, d)| GraphEdge {
                    from: p.name.clone(),
                    to: self.disp.name(d).to_string(),
                })
                .collect(),
        }
    }

    /// Registered workers, by name.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let mut out: Vec<WorkerInfo> = self
            .workers
            .values()
            .map(|w| WorkerInfo {
                name: w.name.clone(),
                arch: w.arch.clone(),
                slots: w.slots,
                registered_unix_ms: w.registered_ms,
                gone: w.gone,
                building: w
                    .leases
                    .iter()
                    .filter_map(|l| self.leases.get(l))
                    .map(|l| self.disp.name(l.pkg).to_string())
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
