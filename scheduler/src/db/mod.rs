//! The SQLite state file: opening it (exclusively), migrations, loading a
//! snapshot at startup. After startup only the [`writer`] task touches it.

pub mod writer;

use dbuild_common::wire::{HistoryEvent, RpmFile};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong with the state file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "state file {path} is locked by another process (is another dbuild-scheduler running on this build \
         directory?); refusing to start"
    )]
    Locked { path: PathBuf },
    #[error("cannot open state file {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate state file {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("state file query failed ({what}): {source}")]
    Query {
        what: &'static str,
        source: sqlx::Error,
    },
    #[error("state file holds bad data ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

fn is_locked(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            code == "5"
                || code == "6"
                || code
                    .parse::<i32>()
                    .map(|c| c & 0xff == 5 || c & 0xff == 6)
                    .unwrap_or(false)
                || d.message().contains("locked")
        }
        _ => false,
    }
}

/// When a commit of the state file counts as done (`--state-sync`): FULL
/// syncs the WAL once per commit, NORMAL only at checkpoints.
pub use dbuild_common::settings::StateSync;

/// Where the state lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// `<build-dir>/state/dbuild.sqlite`: exclusive, synced as asked.
    File(PathBuf, StateSync),
    /// In memory (benchmark baseline): nothing survives a restart.
    Memory,
}

impl Location {
    fn describe(&self) -> PathBuf {
        match self {
            Location::File(p, _) => p.clone(),
            Location::Memory => PathBuf::from(":memory:"),
        }
    }
}

/// Opens the state file with `locking_mode=EXCLUSIVE` and then
/// `journal_mode=WAL` (in that order, so that SQLite keeps the WAL index in
/// the process's memory: no shared memory file, which NFS could not carry),
/// takes the exclusive lock at once by writing, and runs the migrations.
/// A WAL commit appends to one file and syncs it at most once, where a
/// rollback journal took three syncs.
pub async fn open(loc: &Location) -> Result<SqliteConnection, DbError> {
    let path = loc.describe();
    let opts = match loc {
        Location::File(p, sync) => SqliteConnectOptions::new()
            .filename(p)
            .create_if_missing(true)
            .locking_mode(SqliteLockingMode::Exclusive)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                StateSync::Full => SqliteSynchronous::Full,
                StateSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_millis(200)),
        Location::Memory => SqliteConnectOptions::new().in_memory(true),
    }
    .disable_statement_logging();
    let mut conn = opts.connect().await.map_err(|source| {
        if is_locked(&source) {
            DbError::Locked { path: path.clone() }
        } else {
            DbError::Open {
                path: path.clone(),
                source,
            }
        }
    })?;
    // A write takes the EXCLUSIVE lock, held until this connection closes.
    let pid = i64::from(std::process::id());
    let claim = async {
        sqlx::query("CREATE TABLE IF NOT EXISTS scheduler_lock (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, since_ms INTEGER NOT NULL)")
            .execute(&mut conn)
            .await?;
        sqlx::query("INSERT OR REPLACE INTO scheduler_lock (id, pid, since_ms) VALUES (1, ?, ?)")
            .bind(pid)
            .bind(crate::now_ms() as i64)
            .execute(&mut conn)
            .await
    };
    if let Err(source) = claim.await {
        return Err(if is_locked(&source) {
            DbError::Locked { path }
        } else {
            DbError::Open { path, source }
        });
    }
    sqlx::migrate!("./migrations")
        .run(&mut conn)
        .await
        .map_err(|source| DbError::Migrate {
            path: path.clone(),
            source,
        })?;
    Ok(conn)
}

/// One package row.
#[derive(Debug, Clone)]
pub struct PkgRow {
    pub state: String,
    pub input_hash: String,
    pub attempts: u32,
    pub failed_on: Vec<String>,
    pub reason: Option<String>,
    pub losses: u32,
}

#[derive(Debug, Clone)]
pub struct LeaseRow {
    pub id: String,
    pub package: String,
    pub worker: String,
    pub attempt: u32,
    pub granted_ms: u64,
}

#[derive(Debug, Clone)]
pub struct WorkerRow {
    pub id: String,
    pub name: String,
    pub arch: String,
    pub slots: u32,
    pub registered_ms: u64,
    pub gone: bool,
}

/// A package's last accepted build (table `last_success`): what `stage/`
/// holds for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedRow {
    pub input_hash: String,
    pub rpms: Vec<RpmFile>,
    /// The lease whose report was accepted (None in rows older than the field).
    pub lease_id: Option<String>,
    /// Stage paths of the build before that this one no longer has.
    pub replaced: Vec<String>,
}

/// Everything the scheduler needs from the file at startup.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub meta: HashMap<String, String>,
    pub packages: HashMap<String, PkgRow>,
    /// By package name, also for packages no longer in the plan (their files stay on the share).
    pub last_success: HashMap<String, AcceptedRow>,
    pub live_leases: Vec<LeaseRow>,
    /// Lease id -> (package, status) for leases no longer live.
    pub closed_leases: HashMap<String, (String, String)>,
    pub workers: Vec<WorkerRow>,
    pub events: Vec<(String, HistoryEvent)>,
    pub durations: HashMap<String, f64>,
}

fn q(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// How much of the past the state file keeps (see [`prune`]).
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// History events per package, newest first.
    pub events_per_package: u32,
    /// Leases no longer live (kept so that a late report gets 409, not 404).
    pub closed_leases: u32,
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub leases: u64,
}

/// Forgets the oldest history events of each package and the oldest closed
/// leases beyond `keep`, so that a state file serving build after build
/// (`--restart-finished`) and the memory loaded from it stay bounded.
pub async fn prune(conn: &mut SqliteConnection, keep: Keep) -> Result<Pruned, DbError> {
    let events = sqlx::query(
        "DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
         (PARTITION BY package ORDER BY id DESC) AS newer FROM events) WHERE newer > ?)",
    )
    .bind(i64::from(keep.events_per_package))
    .execute(&mut *conn)
    .await
    .map_err(q("pruning events"))?
    .rows_affected();
    let leases = sqlx::query(
        "DELETE FROM leases WHERE status != 'live' AND id NOT IN \
         (SELECT id FROM leases WHERE status != 'live' ORDER BY granted_ms DESC LIMIT ?)",
    )
    .bind(i64::from(keep.closed_leases))
    .execute(&mut *conn)
    .await
    .map_err(q("pruning leases"))?
    .rows_affected();
    Ok(Pruned { events, leases })
}

/// Reads the whole state.
pub async fn load(conn: &mut SqliteConnection) -> Result<Snapshot, DbError> {
    let mut s = Snapshot::default();
    for r in sqlx::query("SELECT key, value FROM meta")
        .fetch_all(&mut *conn)
        .await
        .map_err(q("meta"))?
    {
        s.meta.insert(r.get(0), r.get(1));
    }
    let rows = sqlx::query(
        "SELECT name, state, input_hash, attempts, failed_on, reason, losses FROM packages",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("packages"))?;
    for r in rows {
        let failed_on: String = r.get(4);
        let failed_on = serde_json::from_str(&failed_on).map_err(|e| DbError::Corrupt {
            what: "packages.failed_on",
            detail: e.to_string(),
        })?;
        s.packages.insert(
            r.get(0),
            PkgRow {
                state: r.get(1),
                input_hash: r.get(2),
                attempts: u32_of(r.get(3)),
                failed_on,
                reason: r.get(5),
                losses: u32_of(r.get(6)),
            },
        );
    }
    for r in sqlx::query("SELECT name, input_hash, rpms, lease_id, replaced FROM last_success")
        .fetch_all(&mut *conn)
        .await
        .map_err(q("last_success"))?
    {
        let rpms: String = r.get(2);
        let rpms: Vec<RpmFile> = serde_json::from_str(&rpms).map_err(|e| DbError::Corrupt {
            what: "last_success.rpms",
            detail: e.to_string(),
        })?;
        let replaced: String = r.get(4);
        let replaced: Vec<String> =
            serde_json::from_str(&replaced).map_err(|e| DbError::Corrupt {
                what: "last_success.replaced",
                detail: e.to_string(),
            })?;
        s.last_success.insert(
            r.get(0),
            AcceptedRow {
                input_hash: r.get(1),
                rpms,
                lease_id: r.get(3),
                replaced,
            },
        );
    }
    for r in sqlx::query("SELECT id, package, worker, attempt, granted_ms, status FROM leases")
        .fetch_all(&mut *conn)
        .await
        .map_err(q("leases"))?
    {
        let status: String = r.get(5);
        if status == "live" {
            s.live_leases.push(LeaseRow {
                id: r.get(0),
                package: r.get(1),
                worker: r.get(2),
                attempt: u32_of(r.get(3)),
                granted_ms: u64_of(r.get(4)),
            });
        } else {
            s.closed_leases.insert(r.get(0), (r.get(1), status));
        }
    }
    for r in sqlx::query("SELECT id, name, arch, slots, registered_ms, gone FROM workers")
        .fetch_all(&mut *conn)
        .await
        .map_err(q("workers"))?
    {
        s.workers.push(WorkerRow {
            id: r.get(0),
            name: r.get(1),
            arch: r.get(2),
            slots: u32_of(r.get(3)),
            registered_ms: u64_of(r.get(4)),
            gone: r.get::<i64, _>(5) != 0,
        });
    }
    for r in sqlx::query(
        "SELECT package, at_ms, kind, worker, lease_id, attempt, detail FROM events ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("events"))?
    {
        let attempt: Option<i64> = r.get(5);
        s.events.push((
            r.get(0),
            HistoryEvent {
                at_unix_ms: u64_of(r.get(1)),
                kind: r.get(2),
                worker: r.get(3),
                lease_id: r.get(4),
                attempt: attempt.map(u32_of),
                detail: r.get(6),
            },
        ));
    }
    for r in sqlx::query("SELECT name, secs FROM durations")
        .fetch_all(&mut *conn)
        .await
        .map_err(q("durations"))?
    {
        s.durations.insert(r.get(0), r.get(1));
    }
    Ok(s)
}

/// The state file of a build directory.
pub fn state_file(build_dir: &Path) -> PathBuf {
    build_dir.join("state").join("dbuild.sqlite")
}
