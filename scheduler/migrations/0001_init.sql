-- dbuild scheduler state. One build directory, one database.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- State of each package in the current build, with the input hash it was reached with.
CREATE TABLE IF NOT EXISTS packages (
    name        TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    failed_on   TEXT NOT NULL,      -- JSON array of worker names, one per failed attempt
    reason      TEXT,
    updated_ms  INTEGER NOT NULL
);

-- Last successful build of each package, across builds (for up-to-date checks).
CREATE TABLE IF NOT EXISTS last_success (
    name        TEXT PRIMARY KEY,
    input_hash  TEXT NOT NULL,
    rpms        TEXT NOT NULL,      -- JSON array of {path, sha256}
    finished_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS leases (
    id          TEXT PRIMARY KEY,
    package     TEXT NOT NULL,
    worker      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    granted_ms  INTEGER NOT NULL,
    status      TEXT NOT NULL       -- live, reported, expired
);
CREATE INDEX IF NOT EXISTS leases_status ON leases(status);

CREATE TABLE IF NOT EXISTS workers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    arch          TEXT NOT NULL,
    slots         INTEGER NOT NULL,
    registered_ms INTEGER NOT NULL,
    gone          INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    package   TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    worker    TEXT,
    lease_id  TEXT,
    attempt   INTEGER,
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS events_package ON events(package);

-- Measured build durations (seconds), the weights of later builds.
CREATE TABLE IF NOT EXISTS durations (
    name TEXT PRIMARY KEY,
    secs REAL NOT NULL
);
