//! Package states, restart rules and critical-path priorities.

use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The state of one source package in a build.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PkgState {
    /// Some package it needs is not built yet.
    Waiting,
    /// Everything it needs is built; queued by priority.
    Ready,
    /// A worker holds a lease on it.
    Building,
    /// Built in this build.
    Succeeded,
    /// Inputs unchanged since its last successful build; not rebuilt.
    UpToDate,
    /// Failed on its last allowed attempt.
    Failed,
    /// A package it needs failed.
    DepFailed,
}

impl PkgState {
    pub const ALL: [PkgState; 7] = [
        PkgState::Waiting,
        PkgState::Ready,
        PkgState::Building,
        PkgState::Succeeded,
        PkgState::UpToDate,
        PkgState::Failed,
        PkgState::DepFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PkgState::Waiting => "waiting",
            PkgState::Ready => "ready",
            PkgState::Building => "building",
            PkgState::Succeeded => "succeeded",
            PkgState::UpToDate => "up-to-date",
            PkgState::Failed => "failed",
            PkgState::DepFailed => "dep-failed",
        }
    }

    pub fn parse(s: &str) -> Option<PkgState> {
        PkgState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Its RPMs are available to dependents.
    pub fn is_built(self) -> bool {
        matches!(self, PkgState::Succeeded | PkgState::UpToDate)
    }

    /// Nothing more will happen to it in this build.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PkgState::Succeeded | PkgState::UpToDate | PkgState::Failed | PkgState::DepFailed
        )
    }
}

impl std::fmt::Display for PkgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a package starts when a dispatcher is built (fresh or on restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    /// To be built (waiting or ready, depending on its needs).
    Pending,
    /// Already built in this build.
    Succeeded,
    /// Inputs unchanged since its last successful build.
    UpToDate,
    /// Failed for good in this build.
    Failed,
    /// A live lease on it survives (scheduler restart).
    Building,
}

/// Decides how a package starts, from its current input hash and what was
/// recorded: a package whose hash matches its last successful build and whose
/// RPMs are still present is up to date.
pub fn resume_state(current_hash: &str, recorded: &Recorded) -> Initial {
    let same_inputs = recorded.hash.as_deref() == Some(current_hash);
    let rpms_ok = recorded.rpms_present;
    match recorded.state {
        Some(PkgState::Succeeded) if same_inputs && rpms_ok => Initial::Succeeded,
        Some(PkgState::Failed) if same_inputs => Initial::Failed,
        Some(PkgState::Building) if same_inputs && recorded.live_lease => Initial::Building,
        _ if recorded.last_success_hash.as_deref() == Some(current_hash) && rpms_ok => {
            Initial::UpToDate
        }
        _ => Initial::Pending,
    }
}

/// What the state database remembers about a package (see [`resume_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// State in the current build, if it was recorded.
    pub state: Option<PkgState>,
    /// Input hash that state was reached with.
    pub hash: Option<String>,
    /// Input hash of its last successful build (any build).
    pub last_success_hash: Option<String>,
    /// All RPMs of its last successful build exist on the share.
    pub rpms_present: bool,
    /// A lease on it was live when the state was recorded.
    pub live_lease: bool,
}

/// Per-package weights: measured duration, else the static weight, else 1.
pub fn effective_weights(plan: &Plan, measured: &HashMap<String, f64>) -> Vec<f64> {
    plan.packages
        .iter()
        .map(|p| {
            measured
                .get(&p.name)
                .copied()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .or(p.weight.filter(|w| w.is_finite() && *w >= 0.0))
                .unwrap_or(1.0)
        })
        .collect()
}

/// Critical-path priority of every package: its own weight plus the longest
/// weighted chain of packages that (transitively) need it. Edges that close a
/// cycle are ignored, so this never loops.
pub fn critical_path(plan: &Plan, weights: &[f64]) -> Vec<f64> {
    let n = plan.packages.len();
    let order = plan.topo_order().unwrap_or_else(|_| (0..n).collect());
    let dependents = plan.dependents();
    let mut pos = vec![0usize; n];
    for (k, &i) in order.iter().enumerate() {
        pos[i] = k;
    }
    let mut prio = vec![0.0f64; n];
    for &i in order.iter().rev() {
        let tail = dependents[i]
            .iter()
            .filter(|&&d| pos[d] > pos[i])
            .map(|&d| prio[d])
            .fold(0.0, f64::max);
        prio[i] = weights.get(i).copied().unwrap_or(1.0) + tail;
    }
    prio
}
