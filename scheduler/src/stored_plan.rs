//! The plan as the state file keeps it (meta key `plan`): what a
//! `--read-only` scheduler needs to serve every read endpoint of a build
//! when no scheduler runs, without the specs (`dbuild status --state-dir`).

use dbuild_common::plan::Plan;
use serde::{Deserialize, Serialize};

/// The meta key.
pub const KEY: &str = "plan";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPlan {
    pub plan: Plan,
    /// Each package's input hash, in plan order.
    pub hashes: Vec<String>,
    /// The SPECS directory relative to the build directory.
    pub specs_rel: String,
}

impl StoredPlan {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(s: &str) -> Result<StoredPlan, serde_json::Error> {
        serde_json::from_str(s)
    }
}
