//! Domain errors of the scheduler's REST operations; each names the worker,
//! lease or package concerned and maps to one HTTP status.

use crate::db::writer::WriteFailed;

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown worker {0:?}; register first")]
    UnknownWorker(String),
    #[error("unknown lease {0:?}")]
    UnknownLease(String),
    #[error("unknown package {0:?}")]
    UnknownPackage(String),
    /// A file the request names is not there (a build log).
    #[error("{0}")]
    NotFound(String),
    #[error(
        "lease {id} on package {package} is no longer live ({status}); the report changes nothing"
    )]
    LeaseNotLive {
        id: String,
        package: String,
        status: String,
    },
    #[error("lease {id} on package {package} belongs to another worker")]
    NotYourLease { id: String, package: String },
    #[error("worker {worker} already holds {held} leases for its {slots} slots")]
    SlotsFull {
        worker: String,
        held: usize,
        slots: u32,
    },
    #[error(transparent)]
    Storage(#[from] WriteFailed),
    #[error("internal error: {0}")]
    Internal(String),
}
