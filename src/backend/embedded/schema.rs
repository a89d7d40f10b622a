//! The embedded database's schema, one step per version (`PRAGMA user_version`), opened
//! through [`crate::sqlite`] (private file, WAL, `synchronous=NORMAL`, busy timeout,
//! migrations by `rusqlite_migration`). Nothing here reads or writes documents.

use crate::backend::{BackendError, Result};
use crate::sqlite::{self, OpenError, Schema, Synchronous};
use rusqlite::Connection;
use std::path::Path;

/// The schema, one step per version. Add a step (never edit one) when the schema changes;
/// a file at an older version runs only the steps it lacks.
pub(super) const SCHEMA: Schema = Schema {
    what: "embedded database",
    steps: &[SCHEMA_V1],
    synchronous: Synchronous::Normal,
};

/// Every table stores the whole document as JSON (so unknown fields survive) next to the
/// columns it is filtered and sorted on.
pub(super) const SCHEMA_V1: &str = "
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
    sqlite::open_file(path, &SCHEMA).map_err(open_error)
}

/// A private in-memory database.
pub(super) fn open_memory() -> Result<Connection> {
    sqlite::open_memory(&SCHEMA).map_err(open_error)
}

fn open_error(e: OpenError) -> BackendError {
    let busy = e.sqlite_error().is_some_and(|inner| {
        matches!(
            inner.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    });
    if busy {
        return BackendError::Other(format!(
            "the embedded database is busy (another syncdeck process holds a write lock): {e}"
        ));
    }
    BackendError::Other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_opens_in_place_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embedded.sqlite3");
        {
            // As the hand-written opener of version 1 left it: schema, rows, user_version 1.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute(
                "INSERT INTO documents (idx, id, ts, source) VALUES ('i', 'd1', NULL, '{}')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let conn = open_file(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM documents WHERE idx = 'i'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA.version());
    }

    #[test]
    fn a_newer_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embedded.sqlite3");
        drop(open_file(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA.version() + 1)
            .unwrap();
        let err = open_file(&path).unwrap_err().to_string();
        assert!(err.contains("written by a newer syncdeck"), "{err}");
        assert!(err.contains("embedded.sqlite3"), "{err}");
    }
}
