//! Opening the embedded database: the file (created with mode 0600, since connector
//! configurations hold secrets), the pragmas (WAL, `synchronous=NORMAL`, busy timeout) and the
//! schema, versioned with `PRAGMA user_version`. Nothing here reads or writes documents.

use super::db_err;
use crate::backend::{BackendError, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The schema version this build writes. Bump it and add a step to [`migrate`] when the
/// schema changes.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// How long a write waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every table stores the whole document as JSON (so unknown fields survive) next to the
/// columns it is filtered and sorted on.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connectors (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT,
    index_name   TEXT,
    service_type TEXT,
    deleted      INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS connectors_by_index_name ON connectors(index_name);
CREATE TABLE IF NOT EXISTS sync_jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    connector_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    job_type     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_jobs_by_connector ON sync_jobs(connector_id, created_at);
CREATE INDEX IF NOT EXISTS sync_jobs_by_status ON sync_jobs(status, created_at);
CREATE TABLE IF NOT EXISTS indices (
    name       TEXT PRIMARY KEY,
    mappings   TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    idx    TEXT NOT NULL,
    id     TEXT NOT NULL,
    ts     TEXT,
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_by_key ON documents(idx, id);
";

/// Opens the database file, creating it (and its directory) when missing.
pub(super) fn open_file(path: &Path) -> Result<Connection> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        BackendError::Other(format!(
            "cannot {what} the embedded database '{}': {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", &e))?;
    }
    create_private_file(path).map_err(|e| fail("create", &e))?;
    let conn = Connection::open(path).map_err(|e| fail("open", &e))?;
    configure(&conn, true).map_err(|e| fail("configure", &e))?;
    migrate(conn, path)
}

/// A private in-memory database.
pub(super) fn open_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(db_err)?;
    configure(&conn, false).map_err(db_err)?;
    migrate(conn, Path::new(":memory:"))
}

/// Creates an empty file readable by its owner only. SQLite creates its `-wal` and `-shm`
/// files with the same permissions as the database file.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        // journal_mode answers with the new mode, so it must be read back.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`]. The version is checked again inside an immediate
/// transaction, so two processes opening a new file at once do not both create it.
fn migrate(mut conn: Connection, path: &Path) -> Result<Connection> {
    let db_err = |e: rusqlite::Error| match db_err(e) {
        BackendError::Other(reason) => {
            BackendError::Other(format!("{reason} (in '{}')", path.display()))
        }
        other => other,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_err)?;
    if version > SCHEMA_VERSION {
        return Err(BackendError::Other(format!(
            "the embedded database '{}' was written by a newer syncdeck (schema version {version}; \
             this build knows up to {SCHEMA_VERSION}): upgrade syncdeck or use another data dir",
            path.display()
        )));
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(db_err)?;
    }
    if version != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(conn)
}
