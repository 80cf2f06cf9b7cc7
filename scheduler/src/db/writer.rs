//! The single writer of the state file. State changes are made in memory
//! under the state lock, turned into [`DbOp`]s in the same order, and sent
//! here; the writer commits everything queued in one transaction (group
//! commit) and only then are the HTTP answers sent. A failed commit stops
//! the scheduler: memory and file would disagree, and a restart reloads the
//! file, which is the truth.

use super::DbError;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

/// One change to the state file.
#[derive(Debug, Clone)]
pub enum DbOp {
    Meta {
        key: String,
        value: String,
    },
    MetaDelete {
        key: String,
    },
    Package {
        name: String,
        state: String,
        input_hash: String,
        attempts: u32,
        losses: u32,
        failed_on: Vec<String>,
        reason: Option<String>,
    },
    /// A package's build was accepted (see [`super::AcceptedRow`]).
    LastSuccess {
        name: String,
        row: super::AcceptedRow,
    },
    LeaseGranted {
        id: String,
        package: String,
        worker: String,
        attempt: u32,
        granted_ms: u64,
    },
    LeaseClosed {
        id: String,
        status: &'static str,
    },
    Worker {
        id: String,
        name: String,
        arch: String,
        slots: u32,
        registered_ms: u64,
        gone: bool,
    },
    Event {
        package: String,
        at_ms: u64,
        kind: String,
        worker: Option<String>,
        lease_id: Option<String>,
        attempt: Option<u32>,
        detail: Option<String>,
    },
    Duration {
        name: String,
        secs: f64,
    },
}

struct Batch {
    ops: Vec<DbOp>,
    done: oneshot::Sender<bool>,
}

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Batch>,
}

/// The writer stopped or its commit failed.
#[derive(Debug, thiserror::Error)]
#[error("state file write failed; the scheduler is stopping")]
pub struct WriteFailed;

/// A commit to wait for (after releasing the state lock).
pub struct Pending(Option<oneshot::Receiver<bool>>);

impl Pending {
    pub async fn wait(self) -> Result<(), WriteFailed> {
        match self.0 {
            None => Ok(()),
            Some(rx) => match rx.await {
                Ok(true) => Ok(()),
                _ => Err(WriteFailed),
            },
        }
    }
}

impl Writer {
    /// Starts the writer task on `conn`.
    /// Each transaction's time goes into `commit_seconds`.
    pub fn spawn(conn: SqliteConnection, commit_seconds: prometheus::Histogram) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx, commit_seconds));
        Writer { tx }
    }

    /// The writer task still runs.
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Queues `ops` (call with the state lock held, so the order is the
    /// order of the changes); await the result after releasing the lock.
    pub fn submit(&self, ops: Vec<DbOp>) -> Pending {
        if ops.is_empty() {
            return Pending(None);
        }
        let (done, rx) = oneshot::channel();
        if self.tx.send(Batch { ops, done }).is_err() {
            let (fail_tx, fail_rx) = oneshot::channel();
            let _ = fail_tx.send(false);
            return Pending(Some(fail_rx));
        }
        Pending(Some(rx))
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    commit_seconds: prometheus::Histogram,
) {
    let mut batches = Vec::new();
    while rx.recv_many(&mut batches, 4096).await > 0 {
        let timer = commit_seconds.start_timer();
        let result = commit(&mut conn, &batches).await;
        timer.observe_duration();
        let ok = result.is_ok();
        if let Err(e) = result {
            tracing::error!(error = %e, "state file commit failed; stopping so a restart reloads the file");
        }
        for b in batches.drain(..) {
            let _ = b.done.send(ok);
        }
        if !ok {
            std::process::exit(70);
        }
    }
}

async fn commit(conn: &mut SqliteConnection, batches: &[Batch]) -> Result<(), DbError> {
    let mut tx = conn.begin().await.map_err(|source| DbError::Query {
        what: "begin",
        source,
    })?;
    for op in batches.iter().flat_map(|b| &b.ops) {
        apply(&mut tx, op).await?;
    }
    tx.commit().await.map_err(|source| DbError::Query {
        what: "commit",
        source,
    })
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn apply(conn: &mut SqliteConnection, op: &DbOp) -> Result<(), DbError> {
    let now = i(crate::now_ms());
    let (what, res) = match op {
        DbOp::Meta { key, value } => (
            "meta",
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").bind(key).bind(value).execute(conn).await,
        ),
        DbOp::MetaDelete { key } => {
            ("meta delete", sqlx::query("DELETE FROM meta WHERE key = ?").bind(key).execute(conn).await)
        }
        DbOp::Package { name, state, input_hash, attempts, losses, failed_on, reason } => {
            let failed = serde_json::to_string(failed_on).unwrap_or_else(|_| "[]".into());
            (
                "package",
                sqlx::query(
                    "INSERT OR REPLACE INTO packages (name, state, input_hash, attempts, failed_on, reason, updated_ms, losses) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(name)
                .bind(state)
                .bind(input_hash)
                .bind(i64::from(*attempts))
                .bind(failed)
                .bind(reason)
                .bind(now)
                .bind(i64::from(*losses))
                .execute(conn)
                .await,
            )
        }
        DbOp::LastSuccess { name, row } => {
            let rpms = serde_json::to_string(&row.rpms).unwrap_or_else(|_| "[]".into());
            let replaced = serde_json::to_string(&row.replaced).unwrap_or_else(|_| "[]".into());
            (
                "last_success",
                sqlx::query(
                    "INSERT OR REPLACE INTO last_success (name, input_hash, rpms, finished_ms, lease_id, replaced) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(name)
                .bind(&row.input_hash)
                .bind(rpms)
                .bind(now)
                .bind(&row.lease_id)
                .bind(replaced)
                .execute(conn)
                .await,
            )
        }
        DbOp::LeaseGranted { id, package, worker, attempt, granted_ms } => (
            "lease",
            sqlx::query(
                "INSERT INTO leases (id, package, worker, attempt, granted_ms, status) VALUES (?, ?, ?, ?, ?, 'live')",
            )
            .bind(id)
            .bind(package)
            .bind(worker)
            .bind(i64::from(*attempt))
            .bind(i(*granted_ms))
            .execute(conn)
            .await,
        ),
        DbOp::LeaseClosed { id, status } => (
            "lease close",
            sqlx::query("UPDATE leases SET status = ? WHERE id = ?").bind(*status).bind(id).execute(conn).await,
        ),
        DbOp::Worker { id, name, arch, slots, registered_ms, gone } => (
            "worker",
            sqlx::query(
                "INSERT OR REPLACE INTO workers (id, name, arch, slots, registered_ms, gone) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(name)
            .bind(arch)
            .bind(i64::from(*slots))
            .bind(i(*registered_ms))
            .bind(i64::from(*gone))
            .execute(conn)
            .await,
        ),
        DbOp::Event { package, at_ms, kind, worker, lease_id, attempt, detail } => (
            "event",
            sqlx::query(
                "INSERT INTO events (package, at_ms, kind, worker, lease_id, attempt, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(package)
            .bind(i(*at_ms))
            .bind(kind)
            .bind(worker)
            .bind(lease_id)
            .bind(attempt.map(i64::from))
            .bind(detail)
            .execute(conn)
            .await,
        ),
        DbOp::Duration { name, secs } => (
            "duration",
            sqlx::query("INSERT OR REPLACE INTO durations (name, secs) VALUES (?, ?)").bind(name).bind(secs).execute(conn).await,
        ),
    };
    res.map(|_| ())
        .map_err(|source| DbError::Query { what, source })
}
