//! Reservations: while a slot builds one package, the scheduler may promise
//! it the next one, so the worker prepares that build (chroot, sources,
//! BuildRequires install) during the current one. A reservation never makes
//! another worker wait: the package stays ready, an idle worker takes it over
//! when nothing unreserved is left, and the slot's report claims it only if
//! it still holds (see [`dbuild_common::dispatch::Dispatcher::reserve_for`]).

use super::{Build, LeaseAttempt};
use crate::error::SchedError;
use dbuild_common::wire::Lease;

/// The package a slot may build after lease `holder` (the map key in
/// [`Build`]), and the id its lease will have.
#[derive(Debug, Clone)]
pub(crate) struct Reservation {
    pkg: usize,
    lease_id: String,
}

/// How reservations ended, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReservationCounts {
    pub granted: u64,
    /// Became the slot's next lease.
    pub claimed: u64,
    /// Given to an idle worker instead.
    pub taken_over: u64,
    /// Not claimed (the slot stopped, lost its lease, or did not ask for it).
    pub dropped: u64,
}

impl Build {
    /// Reserves the best ready package for the slot building lease `holder`
    /// of `worker_id`; the same reservation again while it holds.
    pub fn reserve(&mut self, holder: &str, worker_id: &str) -> Result<Option<Lease>, SchedError> {
        self.live_lease(holder, worker_id)?;
        if let Some(r) = self.reservations.get(holder) {
            return Ok(Some(self.reserved_lease(r.pkg, r.lease_id.clone())));
        }
        let worker = self.worker_name(worker_id);
        let live = self.live_workers();
        let Some(i) = self.disp.reserve_for(&worker, live) else {
            return Ok(None);
        };
        let lease_id = uuid::Uuid::new_v4().to_string();
        self.reservations.insert(
            holder.to_string(),
            Reservation {
                pkg: i,
                lease_id: lease_id.clone(),
            },
        );
        self.reservation_counts.granted += 1;
        tracing::info!(package = %self.plan.packages[i].name, worker = %worker, after_lease = %holder, reservation = %lease_id, "package reserved");
        Ok(Some(self.reserved_lease(i, lease_id)))
    }

    /// The lease a reservation becomes when claimed (no deadline yet).
    fn reserved_lease(&self, i: usize, lease_id: String) -> Lease {
        self.lease_body(i, lease_id, self.pkgs[i].attempts + 1, 0)
    }

    /// The next lease of the slot that reported on `holder`: its reservation
    /// when `claim` names it and it still holds, else the best ready package.
    pub fn next_after_report(
        &mut self,
        holder: &str,
        worker_id: &str,
        claim: Option<&str>,
        now: u64,
    ) -> Result<LeaseAttempt, SchedError> {
        if let Some(r) = self.reservations.remove(holder) {
            let worker = self
                .workers
                .get(worker_id)
                .filter(|w| w.leases.len() < w.slots as usize)
                .map(|w| w.name.clone());
            if let Some(worker) = worker.filter(|_| claim == Some(r.lease_id.as_str())) {
                if self.disp.claim(r.pkg) {
                    self.reservation_counts.claimed += 1;
                    return Ok(LeaseAttempt::Granted(Box::new(
                        self.grant(r.pkg, worker_id, &worker, r.lease_id, now),
                    )));
                }
            }
            self.disp.unreserve(r.pkg);
            self.reservation_counts.dropped += 1;
        }
        self.try_lease(worker_id, now)
    }

    /// Drops the reservation made during lease `holder`, if any.
    pub fn drop_reservation(&mut self, holder: &str) {
        if let Some(r) = self.reservations.remove(holder) {
            self.disp.unreserve(r.pkg);
            self.reservation_counts.dropped += 1;
        }
    }

    /// The lease whose slot reserved package `i`, if any.
    fn holder_of(&self, i: usize) -> Option<&String> {
        self.reservations
            .iter()
            .find(|(_, r)| r.pkg == i)
            .map(|(holder, _)| holder)
    }

    /// Package `i` was just leased: a reservation on it was taken over.
    pub(super) fn taken_over(&mut self, i: usize) {
        if let Some(holder) = self.holder_of(i).cloned() {
            self.reservations.remove(&holder);
            self.reservation_counts.taken_over += 1;
            tracing::info!(package = %self.plan.packages[i].name, after_lease = %holder, "reservation taken over by an idle worker");
        }
    }

    /// For a reserved package: the worker and the package it builds first.
    pub(super) fn reserved_by(&self, i: usize) -> Option<(String, String)> {
        let lease = self.leases.get(self.holder_of(i)?)?;
        Some((
            self.worker_name(&lease.worker_id),
            self.plan.packages[lease.pkg].name.clone(),
        ))
    }

    pub fn reservation_counts(&self) -> ReservationCounts {
        self.reservation_counts
    }
}
