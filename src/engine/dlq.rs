//! The durable dead-letter queue: `DeadLetterStore`, one SQLite file in the data dir holding the
//! documents the sink could not index, with their reason and the cluster they were meant for,
//! until an operator retries or drops them, or a later write of the same document resolves
//! them. Local in both backend modes (it is the operator's safety net, not the cluster's), and
//! shared by every profile: each entry records its cluster ([`Origin`]), so a profile sees and
//! retries only its own cluster's entries.
//!
//! An append is committed (WAL, `synchronous=FULL`) before the sink counts its documents as
//! handled, so neither a crash nor a power cut loses a document. The store is bounded: a batch
//! that would exceed the bound of open entries is refused whole, with an error, never silently
//! dropped. Entries that stop being open (resolved, superseded) are kept as history, the
//! oldest pruned past the same bound.
//!
//! Owns only its database file; knows nothing of HTTP, the sink's retry policy or the UIs.
//! Retrying is `engine::retry`: it reads entries here, re-sends them, then calls [`close`] or
//! [`record_failure`]. The sink calls a [`Resolver`] after each answered batch.
//!
//! [`close`]: DeadLetterStore::close
//! [`record_failure`]: DeadLetterStore::record_failure

use crate::backend::{ClusterId, ControlPlane};
use crate::model::{DeadLetter, DeadLetterState, Origin, Timestamp};
use crate::secret::mask::{masked, storable_document};
use crate::sqlite::{self, OpenError, Schema, Synchronous};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thiserror::Error;

/// The schema, one step per version, opened through [`crate::sqlite`]. Add a step (never
/// edit one) when it changes; an older file runs only the steps it lacks.
const SCHEMA: Schema = Schema {
    what: "dead-letter queue",
    steps: &[SCHEMA_V1, SCHEMA_V2],
    // FULL syncs the WAL at every commit: a committed dead letter survives a power cut.
    synchronous: Synchronous::Full,
};

/// The location reported for an in-memory store.
const MEMORY: &str = ":memory:";

/// `entry_count` is kept by triggers so the bound is checked without counting a million rows.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS dead_letters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id    TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    idx             TEXT NOT NULL,
    doc_id          TEXT NOT NULL,
    document        TEXT NOT NULL,
    error_type      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status          INTEGER,
    attempts        INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters(connector_id, idx, doc_id);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters(last_failed_at, id);
CREATE INDEX IF NOT EXISTS dead_letters_by_job ON dead_letters(job_id);
CREATE INDEX IF NOT EXISTS dead_letters_by_error_type ON dead_letters(error_type);
CREATE TABLE IF NOT EXISTS entry_count (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    total INTEGER NOT NULL
);
INSERT OR IGNORE INTO entry_count (one, total) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS dead_letters_count_insert AFTER INSERT ON dead_letters
    BEGIN UPDATE entry_count SET total = total + 1 WHERE one = 1; END;
CREATE TRIGGER IF NOT EXISTS dead_letters_count_delete AFTER DELETE ON dead_letters
    BEGIN UPDATE entry_count SET total = total - 1 WHERE one = 1; END;
";

/// Version 2: provenance and history. Existing entries become cluster `unknown`, `open`.
/// One open entry per (cluster, index, doc id, connector); closed entries are history, so the
/// dedupe key is a partial index over open ones. `total` now counts open entries (the bound),
/// `closed` the history.
const SCHEMA_V2: &str = "
ALTER TABLE dead_letters ADD COLUMN cluster_uuid TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE dead_letters ADD COLUMN cluster_name TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE dead_letters ADD COLUMN profile TEXT;
ALTER TABLE dead_letters ADD COLUMN state TEXT NOT NULL DEFAULT 'open';
ALTER TABLE dead_letters ADD COLUMN resolved_at INTEGER;
ALTER TABLE dead_letters ADD COLUMN resolution TEXT;
DROP INDEX IF EXISTS dead_letters_by_key;
CREATE UNIQUE INDEX dead_letters_open_by_doc
    ON dead_letters(cluster_uuid, idx, doc_id, connector_id) WHERE state = 'open';
CREATE INDEX dead_letters_by_cluster ON dead_letters(cluster_uuid, state);
CREATE INDEX dead_letters_closed_by_time ON dead_letters(resolved_at, id) WHERE state != 'open';
ALTER TABLE entry_count ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER IF EXISTS dead_letters_count_insert;
DROP TRIGGER IF EXISTS dead_letters_count_delete;
CREATE TRIGGER dead_letters_count_insert AFTER INSERT ON dead_letters
    BEGIN UPDATE entry_count SET total = total + (new.state = 'open'),
                                 closed = closed + (new.state != 'open') WHERE one = 1; END;
CREATE TRIGGER dead_letters_count_delete AFTER DELETE ON dead_letters
    BEGIN UPDATE entry_count SET total = total - (old.state = 'open'),
                                 closed = closed - (old.state != 'open') WHERE one = 1; END;
CREATE TRIGGER dead_letters_count_state AFTER UPDATE OF state ON dead_letters
    WHEN old.state != new.state
    BEGIN UPDATE entry_count
          SET total = total - (old.state = 'open') + (new.state = 'open'),
              closed = closed - (old.state != 'open') + (new.state != 'open') WHERE one = 1; END;
UPDATE entry_count SET
    total = (SELECT COUNT(*) FROM dead_letters WHERE state = 'open'),
    closed = (SELECT COUNT(*) FROM dead_letters WHERE state != 'open')
WHERE one = 1;
";

/// Insert, or update the open entry already dead-lettered for the same (cluster, index, doc
/// id, connector). `attempts` tells the two apart afterwards: a fresh row has 1.
const UPSERT: &str = "
INSERT INTO dead_letters (connector_id, job_id, idx, doc_id, document, error_type, reason,
                          status, attempts, first_failed_at, last_failed_at,
                          cluster_uuid, cluster_name, profile)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10, ?11, ?12)
ON CONFLICT (cluster_uuid, idx, doc_id, connector_id) WHERE state = 'open' DO UPDATE SET
    job_id = excluded.job_id,
    document = excluded.document,
    error_type = excluded.error_type,
    reason = excluded.reason,
    status = excluded.status,
    attempts = attempts + 1,
    last_failed_at = excluded.last_failed_at,
    cluster_name = excluded.cluster_name,
    profile = excluded.profile
RETURNING id, attempts";

const COLUMNS: &str = "id, connector_id, job_id, idx, doc_id, document, error_type, reason, \
                       status, attempts, first_failed_at, last_failed_at, cluster_uuid, \
                       cluster_name, profile, state, resolved_at, resolution";

/// The open entries of one connector and index for a list of document ids, given as a JSON
/// array: one statement whatever the count, where an `IN (?, ?, …)` list made a statement per
/// length and churned the connection's 16-statement cache. `CROSS JOIN` keeps the ids as the
/// outer loop, one lookup each in the open-entry index (left to itself the planner scans all
/// of the cluster's open entries).
const OPEN_OF_DOCUMENTS: &str = "SELECT d.id FROM json_each(?4) AS j CROSS JOIN dead_letters AS d
     WHERE d.cluster_uuid = ?1 AND d.idx = ?2 AND d.doc_id = j.value
       AND d.connector_id = ?3 AND d.state = 'open'";

/// What can go wrong with the dead-letter queue; every variant names the database.
#[derive(Debug, Error)]
pub enum DlqError {
    /// The file or its directory could not be created.
    #[error("cannot {action} the dead-letter queue '{}': {source}", path.display())]
    Io {
        /// What was being done ("create", "create the directory of").
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed (including a lock held by another process for longer than the timeout).
    #[error("dead-letter queue '{}': {source}", path.display())]
    Sqlite {
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The batch would take the store past its bound; nothing of it was stored.
    #[error(
        "the dead-letter queue '{}' is full ({stored} of at most {max} entries): {refused} \
         document(s) were not stored; retry or drop dead letters, or raise 'dlq_max_entries' \
         in the profile's [engine] section",
        path.display()
    )]
    Full {
        /// The bound.
        max: u64,
        /// Entries in the store when the batch came.
        stored: u64,
        /// Documents of the batch that were not stored (all of them).
        refused: usize,
        /// The database file.
        path: PathBuf,
    },
    /// The file was written by a newer syncdeck.
    #[error(
        "the dead-letter queue '{}' was written by a newer syncdeck (schema version {found}; \
         this build knows up to {known}): upgrade syncdeck or use another data dir",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The file's schema version.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },
    /// No entry has this id (it may have been retried or dropped meanwhile).
    #[error("dead letter {id} is not in '{}': it may have been retried or dropped already", path.display())]
    NotFound {
        /// The entry id asked for.
        id: i64,
        /// The database file.
        path: PathBuf,
    },
    /// A document handed to `append_batch` is not JSON text; nothing of the batch was stored.
    #[error(
        "dead letter for document '{doc_id}' in '{}': the document is not valid JSON: {reason}",
        path.display()
    )]
    InvalidDocument {
        /// The id of the document that is not JSON.
        doc_id: String,
        /// What the JSON parser said.
        reason: String,
        /// The database file.
        path: PathBuf,
    },
    /// A failure around the store rather than in it (a writer task that panicked or was
    /// cancelled); whether its batch was stored is unknown.
    #[error("dead-letter queue: {0}")]
    Internal(String),
}

/// A document to dead-letter, as the sink has it after a permanent per-item failure. Its
/// cluster is the store's (see [`DeadLetterStore::bind`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The connector whose sync produced the document.
    pub connector_id: String,
    /// The sync job that failed to index it.
    pub job_id: String,
    /// The target index.
    pub index: String,
    /// The document id.
    pub doc_id: String,
    /// The whole document as the JSON text that was sent (stored as is, never re-serialised).
    pub document: String,
    /// The item's error type (`document_parsing_exception`, ...).
    pub error_type: String,
    /// The item's error reason.
    pub reason: String,
    /// The item's HTTP status, when there was one.
    pub status: Option<u16>,
}

/// Which entries to list, count or remove. Empty fields match everything, except that only
/// open entries match unless `include_closed` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqFilter {
    /// Only entries of this cluster (`Origin::cluster_uuid`; `unknown` for entries of
    /// unknown origin). `None`: every cluster.
    pub cluster: Option<String>,
    /// Also resolved and superseded entries (history).
    pub include_closed: bool,
    /// Only entries of this connector.
    pub connector_id: Option<String>,
    /// Only entries whose last failure came from this job.
    pub job_id: Option<String>,
    /// Only entries with this error type.
    pub error_type: Option<String>,
    /// Only entries whose doc id or reason contains this text (ASCII case-insensitive).
    pub text: Option<String>,
    /// At most this many entries from `list` (`None`: all); ignored by `count` and `remove_all`.
    pub limit: Option<u64>,
    /// Entries `list` skips first; ignored by `count` and `remove_all`.
    pub offset: u64,
}

/// Totals of open entries for `/metrics` and the console, largest groups first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DlqStats {
    /// Number of open entries in the store.
    pub total: u64,
    /// Open entries per connector id.
    pub by_connector: Vec<(String, u64)>,
    /// Open entries per error type.
    pub by_error_type: Vec<(String, u64)>,
}

/// The dead-letter queue. `Send + Sync`; share it in an `Arc` and call it from async code
/// through `spawn_blocking` (every call is a short transaction on one connection).
///
/// A handle is bound to the cluster its backend points at ([`bind`](Self::bind)): appends
/// are stamped with it, and [`Resolver`]s and retries act on its entries only. An unbound
/// handle stamps `unknown`.
pub struct DeadLetterStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    max_entries: u64,
    origin: Mutex<Origin>,
    /// A document larger than this is stored as its size and a preview.
    max_document_bytes: usize,
}

/// The default of the profile's `dlq_max_document_bytes`.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

impl fmt::Debug for DeadLetterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterStore")
            .field("path", &self.path)
            .field("max_entries", &self.max_entries)
            .field("origin", &self.origin())
            .finish()
    }
}

impl DeadLetterStore {
    /// Opens (or creates, with mode 0600, and its directory) the store at `path`, holding at
    /// most `max_entries` open entries (and as many closed ones as history).
    pub fn open(path: &Path, max_entries: u64) -> Result<Self, DlqError> {
        let conn = sqlite::open_file(path, &SCHEMA).map_err(open_error)?;
        Ok(Self::ready(conn, path.to_path_buf(), max_entries))
    }

    /// A private in-memory store, for tests.
    pub fn open_in_memory(max_entries: u64) -> Result<Self, DlqError> {
        let conn = sqlite::open_memory(&SCHEMA).map_err(open_error)?;
        Ok(Self::ready(conn, PathBuf::from(MEMORY), max_entries))
    }

    fn ready(conn: Connection, path: PathBuf, max_entries: u64) -> Self {
        Self {
            conn: Mutex::new(conn),
            path,
            max_entries,
            origin: Mutex::new(Origin::unknown()),
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }

    /// Stores documents larger than `bytes` as their size and a preview.
    pub fn with_max_document_bytes(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes.max(1);
        self
    }

    /// Names the profile this handle serves, recorded with each entry for display.
    pub fn with_profile(self, profile: &str) -> Self {
        self.lock_origin().profile = Some(profile.to_string());
        self
    }

    /// Binds the handle to a cluster: what appends record, and what retries may write into.
    /// Binding again follows the backend (a cluster rebuilt behind the same URL is another).
    pub fn bind(&self, cluster: &ClusterId) {
        let mut origin = self.lock_origin();
        origin.cluster_uuid = cluster.uuid.clone();
        origin.cluster_name = cluster.name.clone();
    }

    /// Whether [`bind`](Self::bind) was called.
    pub fn is_bound(&self) -> bool {
        !self.lock_origin().is_unknown()
    }

    /// The cluster (and profile) this handle serves; `unknown` until bound.
    pub fn origin(&self) -> Origin {
        self.lock_origin().clone()
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bound given at open.
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// Stores a batch in one durable transaction, stamped with this handle's cluster, and
    /// returns the entry id of each document, in order. A document already dead-lettered (and
    /// still open) for the same (cluster, index, doc id, connector) updates that entry
    /// (attempts + 1). Fails whole with [`DlqError::Full`] if the new entries would exceed the
    /// bound.
    pub fn append_batch(&self, entries: &[NewDeadLetter]) -> Result<Vec<i64>, DlqError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // What reaches the disk: no secret, and no document past the size bound.
        let entries: &[NewDeadLetter] = &entries
            .iter()
            .map(|e| NewDeadLetter {
                doc_id: masked(&e.doc_id),
                document: storable_document(&e.document, self.max_document_bytes),
                reason: masked(&e.reason),
                ..e.clone()
            })
            .collect::<Vec<_>>();
        for entry in entries {
            self.check_json(entry)?;
        }
        let origin = self.origin();
        let now = Timestamp::now().millis();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite())?;
        let stored = entry_count(&tx).map_err(self.sqlite())?;
        let mut ids = Vec::with_capacity(entries.len());
        let mut added: u64 = 0;
        {
            let mut upsert = tx.prepare_cached(UPSERT).map_err(self.sqlite())?;
            for e in entries {
                let (id, attempts): (i64, i64) = upsert
                    .query_row(
                        params![
                            e.connector_id,
                            e.job_id,
                            e.index,
                            e.doc_id,
                            e.document,
                            e.error_type,
                            e.reason,
                            e.status,
                            now,
                            origin.cluster_uuid,
                            origin.cluster_name,
                            origin.profile,
                        ],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(self.sqlite())?;
                added += u64::from(attempts == 1);
                ids.push(id);
            }
        }
        if stored.saturating_add(added) > self.max_entries {
            // Dropping the transaction rolls the whole batch back.
            return Err(DlqError::Full {
                max: self.max_entries,
                stored,
                refused: entries.len(),
                path: self.path.clone(),
            });
        }
        tx.commit().map_err(self.sqlite())?;
        Ok(ids)
    }

    /// Entries matching `filter`, most recent failure first, paged by its limit and offset.
    pub fn list(&self, filter: &DlqFilter) -> Result<Vec<DeadLetter>, DlqError> {
        let clause = Where::from(filter);
        let limit = filter.limit.map_or(-1, clamp_i64);
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_letters{} ORDER BY last_failed_at DESC, id DESC LIMIT {limit} OFFSET {}",
            clause.sql,
            clamp_i64(filter.offset)
        );
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql).map_err(self.sqlite())?;
        let rows = stmt
            .query_map(params_from_iter(&clause.params), read_entry)
            .map_err(self.sqlite())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sqlite())
    }

    /// How many entries match `filter` (limit and offset ignored).
    pub fn count(&self, filter: &DlqFilter) -> Result<u64, DlqError> {
        let clause = Where::from(filter);
        let sql = format!("SELECT COUNT(*) FROM dead_letters{}", clause.sql);
        let conn = self.lock();
        let n: i64 = conn
            .query_row(&sql, params_from_iter(&clause.params), |row| row.get(0))
            .map_err(self.sqlite())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One entry by id, whatever its cluster and state.
    pub fn get(&self, id: i64) -> Result<Option<DeadLetter>, DlqError> {
        let sql = format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?1");
        let conn = self.lock();
        conn.query_row(&sql, [id], read_entry)
            .optional()
            .map_err(self.sqlite())
    }

    /// Removes entries by id (unknown ids are skipped) and returns how many were removed.
    pub fn remove(&self, ids: &[i64]) -> Result<u64, DlqError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite())?;
        let mut removed = 0;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")
                .map_err(self.sqlite())?;
            for id in ids {
                removed += delete.execute([id]).map_err(self.sqlite())?;
            }
        }
        tx.commit().map_err(self.sqlite())?;
        Ok(removed as u64)
    }

    /// Removes every entry matching `filter` (limit and offset ignored; an empty filter removes
    /// all open entries) and returns how many were removed.
    pub fn remove_all(&self, filter: &DlqFilter) -> Result<u64, DlqError> {
        let clause = Where::from(filter);
        let sql = format!("DELETE FROM dead_letters{}", clause.sql);
        let conn = self.lock();
        let removed = conn
            .execute(&sql, params_from_iter(&clause.params))
            .map_err(self.sqlite())?;
        Ok(removed as u64)
    }

    /// Records that a retry of entry `id` failed again: new error, attempts + 1, last failure
    /// now. Fails with [`DlqError::NotFound`] if the entry is gone.
    pub fn record_failure(
        &self,
        id: i64,
        error_type: &str,
        reason: &str,
        status: Option<u16>,
    ) -> Result<(), DlqError> {
        let conn = self.lock();
        let changed = conn
            .execute(
                "UPDATE dead_letters SET error_type = ?2, reason = ?3, status = ?4,
                     attempts = attempts + 1, last_failed_at = ?5
                 WHERE id = ?1",
                params![id, error_type, reason, status, Timestamp::now().millis()],
            )
            .map_err(self.sqlite())?;
        if changed == 0 {
            return Err(DlqError::NotFound {
                id,
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Closes open entries by id (`resolved` or `superseded`, with why), keeping them as
    /// history; returns how many were open. Entries already closed are left as they are.
    pub fn close(
        &self,
        ids: &[i64],
        state: DeadLetterState,
        resolution: &str,
    ) -> Result<u64, DlqError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now().millis();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite())?;
        let mut closed = 0;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE dead_letters SET state = ?2, resolved_at = ?3, resolution = ?4
                     WHERE id = ?1 AND state = 'open'",
                )
                .map_err(self.sqlite())?;
            for id in ids {
                closed += update
                    .execute(params![id, state.as_str(), now, resolution])
                    .map_err(self.sqlite())?;
            }
        }
        self.prune_history(&tx).map_err(self.sqlite())?;
        tx.commit().map_err(self.sqlite())?;
        Ok(closed as u64)
    }

    /// Whether this handle's cluster has open entries of `connector_id` for `index`: one
    /// lookup in the open-entry index, so a sink can ask after every batch.
    pub fn has_open(&self, connector_id: &str, index: &str) -> Result<bool, DlqError> {
        let cluster = self.origin().cluster_uuid;
        let conn = self.lock();
        // Cached: preparing the statement cost ~40k instructions, once a batch.
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT 1 FROM dead_letters
                 WHERE cluster_uuid = ?1 AND state = 'open' AND idx = ?2 AND connector_id = ?3
                 LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![cluster, index, connector_id], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sqlite())?;
        Ok(found.is_some())
    }

    /// Every entry (open and history) of this handle's cluster for one document (index and
    /// id), of any connector: what a retry compares an entry with before sending it.
    pub fn of_document(&self, index: &str, doc_id: &str) -> Result<Vec<DeadLetter>, DlqError> {
        let cluster = self.origin().cluster_uuid;
        let conn = self.lock();
        let sql = format!(
            "SELECT {COLUMNS} FROM dead_letters
             WHERE cluster_uuid = ?1 AND idx = ?2 AND doc_id = ?3 ORDER BY id"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(self.sqlite())?;
        let rows = stmt
            .query_map(params![cluster, index, doc_id], read_entry)
            .map_err(self.sqlite())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sqlite())
    }

    /// Resolves this handle's cluster's open entries of `connector_id` for these documents
    /// of `index` (that connector just wrote them), with `resolution` as the why; returns how
    /// many. Another connector's entry for the same id is its own version of the document:
    /// this write does not resolve it (a resolution says "this entry's own version reached
    /// the index", which another connector's write does not). Instead a retry of that entry
    /// reads this one's history (`of_document`) and supersedes it when this write came after
    /// its failure. Reads first and writes only when something matches,
    /// so a batch with nothing to resolve costs no commit.
    pub fn resolve_documents(
        &self,
        connector_id: &str,
        index: &str,
        doc_ids: &[String],
        resolution: &str,
    ) -> Result<u64, DlqError> {
        if doc_ids.is_empty() {
            return Ok(0);
        }
        let cluster = self.origin().cluster_uuid;
        // Strings always serialise; were it ever empty, SQLite's "malformed JSON" would say so.
        let ids = serde_json::to_string(doc_ids).unwrap_or_default();
        let mut matched = {
            let conn = self.lock();
            let mut stmt = conn
                .prepare_cached(OPEN_OF_DOCUMENTS)
                .map_err(self.sqlite())?;
            let rows = stmt
                .query_map(params![cluster, index, connector_id, ids], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(self.sqlite())?;
            rows.collect::<Result<Vec<i64>, _>>()
                .map_err(self.sqlite())?
        };
        // An id given twice matches its entry twice: close it once.
        matched.sort_unstable();
        matched.dedup();
        self.close(&matched, DeadLetterState::Resolved, resolution)
    }

    /// Totals of open entries per connector and per error type.
    pub fn stats(&self) -> Result<DlqStats, DlqError> {
        let conn = self.lock();
        let total = entry_count(&conn).map_err(self.sqlite())?;
        let by_connector = group_counts(&conn, "connector_id").map_err(self.sqlite())?;
        let by_error_type = group_counts(&conn, "error_type").map_err(self.sqlite())?;
        Ok(DlqStats {
            total,
            by_connector,
            by_error_type,
        })
    }

    /// Keeps the history within the bound: past it, the oldest closed entries go.
    fn prune_history(&self, conn: &Connection) -> rusqlite::Result<()> {
        let closed: i64 =
            conn.query_row("SELECT closed FROM entry_count WHERE one = 1", [], |row| {
                row.get(0)
            })?;
        let excess = closed.saturating_sub(clamp_i64(self.max_entries));
        if excess > 0 {
            conn.execute(
                "DELETE FROM dead_letters WHERE id IN (
                     SELECT id FROM dead_letters WHERE state != 'open'
                     ORDER BY resolved_at, id LIMIT ?1)",
                [excess],
            )?;
        }
        Ok(())
    }

    fn lock_origin(&self) -> MutexGuard<'_, Origin> {
        self.origin.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere cannot leave the connection mid-transaction: an open transaction
        // rolls back when dropped during the unwind.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> DlqError + '_ {
        |source| DlqError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// A cheap syntax check, so that reading the entry back can never fail.
    fn check_json(&self, entry: &NewDeadLetter) -> Result<(), DlqError> {
        match serde_json::from_str::<serde::de::IgnoredAny>(&entry.document) {
            Ok(_) => Ok(()),
            Err(e) => Err(DlqError::InvalidDocument {
                doc_id: entry.doc_id.clone(),
                reason: e.to_string(),
                path: self.path.clone(),
            }),
        }
    }
}

/// Binds `dlq` to the cluster `control` points at (one `GET /` on Elasticsearch), before a
/// job or a retry writes anything. When the cluster cannot say who it is, a handle already
/// bound keeps its binding (the identity of a cluster does not change between two jobs);
/// an unbound one fails, rather than stamp dead letters `unknown`.
pub async fn bind_cluster(dlq: &DeadLetterStore, control: &dyn ControlPlane) -> Result<(), String> {
    match control.cluster_id().await {
        Ok(cluster) => {
            dlq.bind(&cluster);
            Ok(())
        }
        Err(e) if dlq.is_bound() => {
            tracing::warn!(error = %e, origin = %dlq.origin(), "could not read the cluster's identity; keeping the one known");
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot tell which cluster this is, so dead letters could not record where they \
             belong: {e}"
        )),
    }
}

/// Resolves the open dead letters of one connector's documents in one index as its sink
/// writes them, so an entry never outlives a later successful write of the same document by
/// the same connector (and a retry of it can never put the old version back). Asked after
/// every answered batch whether the index has open entries of the connector (one indexed
/// lookup), so entries that appear while the job runs (a document of this very job
/// dead-lettered, then written or deleted again; another process's) are seen too. A sink
/// with no connector (a hand retry, which closes the entries it sends itself) resolves
/// nothing.
pub struct Resolver {
    dlq: Arc<DeadLetterStore>,
    connector_id: String,
    index: String,
    job_id: String,
}

impl Resolver {
    pub fn new(dlq: Arc<DeadLetterStore>, connector_id: &str, index: &str, job_id: &str) -> Self {
        Self {
            dlq,
            connector_id: connector_id.to_string(),
            index: index.to_string(),
            job_id: job_id.to_string(),
        }
    }

    /// Whether the index has open entries of this connector now.
    pub async fn is_active(&self) -> bool {
        if self.connector_id.is_empty() {
            return false;
        }
        let (dlq, connector, index) = (
            self.dlq.clone(),
            self.connector_id.clone(),
            self.index.clone(),
        );
        match tokio::task::spawn_blocking(move || dlq.has_open(&connector, &index)).await {
            Ok(Ok(open)) => open,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, index = %self.index, "could not look for open dead letters");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, index = %self.index, "could not look for open dead letters");
                false
            }
        }
    }

    /// Resolves the open entries of documents just indexed or deleted. Bookkeeping, never
    /// fatal: a failure is logged, and the entry stays open (a retry then still checks the
    /// index before writing).
    pub async fn written(&self, indexed: Vec<String>, deleted: Vec<String>) {
        if self.connector_id.is_empty() {
            return;
        }
        let by = if self.job_id.is_empty() {
            format!("connector '{}'", self.connector_id)
        } else {
            format!("sync job '{}'", self.job_id)
        };
        for (ids, how) in [(indexed, "indexed"), (deleted, "deleted")] {
            if ids.is_empty() {
                continue;
            }
            let (dlq, connector, index) = (
                self.dlq.clone(),
                self.connector_id.clone(),
                self.index.clone(),
            );
            let resolution = format!("{how} by {by}");
            let result = tokio::task::spawn_blocking(move || {
                dlq.resolve_documents(&connector, &index, &ids, &resolution)
            })
            .await;
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, index = %self.index, "could not resolve dead letters")
                }
                Err(e) => {
                    tracing::warn!(error = %e, index = %self.index, "could not resolve dead letters")
                }
            }
        }
    }
}

/// The store's errors for a failed open, with the messages they always had.
fn open_error(e: OpenError) -> DlqError {
    match e {
        OpenError::Io {
            action,
            path,
            source,
            ..
        } => DlqError::Io {
            action,
            path,
            source,
        },
        OpenError::Sqlite { path, source, .. } => DlqError::Sqlite { path, source },
        OpenError::NewerSchema {
            path, found, known, ..
        } => DlqError::NewerSchema { path, found, known },
        OpenError::Migration { path, source, .. } => match *source {
            rusqlite_migration::Error::RusqliteError { err, .. } => {
                DlqError::Sqlite { path, source: err }
            }
            other => DlqError::Internal(format!(
                "dead-letter queue '{}': migrating the schema failed: {other}",
                path.display()
            )),
        },
    }
}

/// Open entries (the bound counts only those).
fn entry_count(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row("SELECT total FROM entry_count WHERE one = 1", [], |row| {
        row.get(0)
    })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// `column` is one of our own column names, never user input.
fn group_counts(conn: &Connection, column: &str) -> rusqlite::Result<Vec<(String, u64)>> {
    let sql = format!(
        "SELECT {column}, COUNT(*) AS n FROM dead_letters WHERE state = 'open' \
         GROUP BY {column} ORDER BY n DESC, {column}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |row| {
        let n: i64 = row.get(1)?;
        Ok((row.get(0)?, u64::try_from(n).unwrap_or(0)))
    })?;
    rows.collect()
}

fn read_entry(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    let document: String = row.get(5)?;
    let attempts: i64 = row.get(9)?;
    let state: String = row.get(15)?;
    let resolved_at: Option<i64> = row.get(16)?;
    Ok(DeadLetter {
        id: row.get(0)?,
        connector_id: row.get(1)?,
        job_id: row.get(2)?,
        index: row.get(3)?,
        doc_id: row.get(4)?,
        // Checked at append; a file edited by hand still reads, as a string.
        document: serde_json::from_str(&document).unwrap_or(Value::String(document)),
        error_type: row.get(6)?,
        reason: row.get(7)?,
        status: row.get(8)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        first_failed_at: millis(row.get(10)?),
        last_failed_at: millis(row.get(11)?),
        origin: Origin {
            cluster_uuid: row.get(12)?,
            cluster_name: row.get(13)?,
            profile: row.get(14)?,
        },
        state: DeadLetterState::parse(&state),
        resolved_at: resolved_at.map(millis),
        resolution: row.get(17)?,
    })
}

fn millis(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).unwrap_or(Timestamp(chrono::DateTime::UNIX_EPOCH))
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `WHERE` clause built from a filter, with its parameters.
struct Where {
    sql: String,
    params: Vec<String>,
}

impl From<&DlqFilter> for Where {
    fn from(filter: &DlqFilter) -> Self {
        let mut clauses: Vec<String> = Vec::new();
        let mut params = Vec::new();
        if !filter.include_closed {
            clauses.push("state = 'open'".to_string());
        }
        let exact = [
            ("cluster_uuid", &filter.cluster),
            ("connector_id", &filter.connector_id),
            ("job_id", &filter.job_id),
            ("error_type", &filter.error_type),
        ];
        for (column, value) in exact {
            if let Some(value) = value {
                params.push(value.clone());
                clauses.push(format!("{column} = ?{}", params.len()));
            }
        }
        if let Some(text) = &filter.text {
            params.push(format!("%{}%", escape_like(text)));
            let n = params.len();
            clauses.push(format!(
                "(doc_id LIKE ?{n} ESCAPE '\\' OR reason LIKE ?{n} ESCAPE '\\')"
            ));
        }
        let sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        Self { sql, params }
    }
}

/// Makes `%`, `_` and `\` match themselves in a `LIKE ... ESCAPE '\'` pattern.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn entry(connector: &str, doc_id: &str) -> NewDeadLetter {
        NewDeadLetter {
            connector_id: connector.to_string(),
            job_id: "job-1".to_string(),
            index: "search-docs".to_string(),
            doc_id: doc_id.to_string(),
            document: json!({"id": doc_id, "title": "hello"}).to_string(),
            error_type: "document_parsing_exception".to_string(),
            reason: format!("failed to parse field [date] of {doc_id}"),
            status: Some(400),
        }
    }

    fn store(max: u64) -> DeadLetterStore {
        DeadLetterStore::open_in_memory(max).unwrap()
    }

    /// The lookup behind `resolve_documents` goes id by id through the open-entry index,
    /// never through all of a cluster's open entries.
    #[test]
    fn documents_are_looked_up_in_the_open_entry_index() {
        let dlq = store(100);
        let conn = dlq.lock();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OPEN_OF_DOCUMENTS}"))
            .unwrap()
            .query_map(params!["cluster", "index", "connector", "[\"a\"]"], |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(plan[0].starts_with("SCAN j"), "{plan:?}");
        assert!(
            plan[1].contains("INDEX dead_letters_open_by_doc (") && plan[1].contains("doc_id=?"),
            "{plan:?}"
        );
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DeadLetterStore>();
    }

    #[test]
    fn append_then_get_list_count_remove() {
        let dlq = store(100);
        let ids = dlq
            .append_batch(&[entry("c1", "a"), entry("c1", "b")])
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1]);

        let a = dlq.get(ids[0]).unwrap().unwrap();
        assert_eq!(a.connector_id, "c1");
        assert_eq!(a.job_id, "job-1");
        assert_eq!(a.index, "search-docs");
        assert_eq!(a.doc_id, "a");
        assert_eq!(a.document, json!({"id": "a", "title": "hello"}));
        assert_eq!(a.error_type, "document_parsing_exception");
        assert_eq!(a.status, Some(400));
        assert_eq!(a.attempts, 1);
        assert_eq!(a.first_failed_at, a.last_failed_at);

        assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 2);
        assert_eq!(dlq.list(&DlqFilter::default()).unwrap().len(), 2);

        assert_eq!(dlq.remove(&[ids[0], 9999]).unwrap(), 1);
        assert!(dlq.get(ids[0]).unwrap().is_none());
        assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 1);
        assert_eq!(dlq.stats().unwrap().total, 1);
        assert_eq!(dlq.remove(&[]).unwrap(), 0);
    }

    #[test]
    fn empty_batch_is_a_no_op() {
        let dlq = store(0);
        assert!(dlq.append_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn same_document_updates_its_entry() {
        let dlq = store(100);
        let first = dlq.append_batch(&[entry("c1", "a")]).unwrap();
        let mut again = entry("c1", "a");
        again.job_id = "job-2".to_string();
        again.document = r#"{"id":"a","title":"changed"}"#.to_string();
        again.reason = "still broken".to_string();
        again.error_type = "mapper_parsing_exception".to_string();
        again.status = None;
        let second = dlq.append_batch(&[again]).unwrap();
        assert_eq!(first, second);

        let e = dlq.get(first[0]).unwrap().unwrap();
        assert_eq!(e.attempts, 2);
        assert_eq!(e.job_id, "job-2");
        assert_eq!(e.document, json!({"id": "a", "title": "changed"}));
        assert_eq!(e.reason, "still broken");
        assert_eq!(e.error_type, "mapper_parsing_exception");
        assert_eq!(e.status, None);
        assert!(e.last_failed_at >= e.first_failed_at);
        assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 1);
    }

    #[test]
    fn same_doc_id_in_another_connector_or_index_is_another_entry() {
        let dlq = store(100);
        let mut other_index = entry("c1", "a");
        other_index.index = "search-other".to_string();
        let ids = dlq
            .append_batch(&[entry("c1", "a"), entry("c2", "a"), other_index])
            .unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(dlq.stats().unwrap().total, 3);
    }

    #[test]
    fn duplicates_within_one_batch_collapse() {
        let dlq = store(100);
        let ids = dlq
            .append_batch(&[entry("c1", "a"), entry("c1", "a")])
            .unwrap();
        assert_eq!(ids[0], ids[1]);
        assert_eq!(dlq.get(ids[0]).unwrap().unwrap().attempts, 2);
        assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 1);
    }

    #[test]
    fn filters_select_entries() {
        let dlq = store(100);
        let mut b = entry("c1", "doc_b");
        b.job_id = "job-2".to_string();
        b.error_type = "illegal_argument_exception".to_string();
        b.reason = "Document contains at least one immense term".to_string();
        dlq.append_batch(&[entry("c1", "doc-a"), b, entry("c2", "doc-c")])
            .unwrap();

        let ids_of = |filter: DlqFilter| -> Vec<String> {
            let mut ids: Vec<String> = dlq
                .list(&filter)
                .unwrap()
                .into_iter()
                .map(|e| e.doc_id)
                .collect();
            ids.sort();
            assert_eq!(dlq.count(&filter).unwrap(), ids.len() as u64);
            ids
        };
        let f = |f: fn(&mut DlqFilter)| {
            let mut filter = DlqFilter::default();
            f(&mut filter);
            filter
        };
        assert_eq!(
            ids_of(f(|f| f.connector_id = Some("c1".into()))),
            ["doc-a", "doc_b"]
        );
        assert_eq!(ids_of(f(|f| f.job_id = Some("job-2".into()))), ["doc_b"]);
        assert_eq!(
            ids_of(f(
                |f| f.error_type = Some("document_parsing_exception".into())
            )),
            ["doc-a", "doc-c"]
        );
        // Text matches the doc id or the reason, case-insensitively.
        assert_eq!(ids_of(f(|f| f.text = Some("IMMENSE".into()))), ["doc_b"]);
        assert_eq!(ids_of(f(|f| f.text = Some("doc-c".into()))), ["doc-c"]);
        // `_` and `%` are literal, not LIKE wildcards.
        assert_eq!(ids_of(f(|f| f.text = Some("c_b".into()))), ["doc_b"]);
        assert!(ids_of(f(|f| f.text = Some("%".into()))).is_empty());
        // Filters combine with AND.
        let both = f(|f| {
            f.connector_id = Some("c2".into());
            f.job_id = Some("job-2".into());
        });
        assert!(ids_of(both).is_empty());
    }

    #[test]
    fn list_is_newest_first_and_paged() {
        let dlq = store(100);
        let mut ids = Vec::new();
        for doc in ["a", "b", "c", "d"] {
            ids.extend(dlq.append_batch(&[entry("c1", doc)]).unwrap());
        }
        // Failing again makes "a" the newest failure.
        std::thread::sleep(Duration::from_millis(3));
        dlq.record_failure(
            ids[0],
            "version_conflict_engine_exception",
            "conflict",
            Some(409),
        )
        .unwrap();

        let order: Vec<String> = dlq
            .list(&DlqFilter::default())
            .unwrap()
            .into_iter()
            .map(|e| e.doc_id)
            .collect();
        assert_eq!(order, ["a", "d", "c", "b"]);
        let page = DlqFilter {
            limit: Some(2),
            offset: 1,
            ..Default::default()
        };
        let paged: Vec<String> = dlq
            .list(&page)
            .unwrap()
            .into_iter()
            .map(|e| e.doc_id)
            .collect();
        assert_eq!(paged, ["d", "c"]);
        assert_eq!(dlq.count(&page).unwrap(), 4);
    }

    #[test]
    fn record_failure_updates_the_entry() {
        let dlq = store(100);
        let id = dlq.append_batch(&[entry("c1", "a")]).unwrap()[0];
        dlq.record_failure(
            id,
            "es_rejected_execution_exception",
            "queue full",
            Some(429),
        )
        .unwrap();
        let e = dlq.get(id).unwrap().unwrap();
        assert_eq!(e.attempts, 2);
        assert_eq!(e.error_type, "es_rejected_execution_exception");
        assert_eq!(e.reason, "queue full");
        assert_eq!(e.status, Some(429));
        assert_eq!(e.document, json!({"id": "a", "title": "hello"}));

        let err = dlq.record_failure(id + 100, "x", "y", None).unwrap_err();
        assert!(matches!(err, DlqError::NotFound { .. }), "{err}");
    }

    #[test]
    fn remove_all_honours_the_filter() {
        let dlq = store(100);
        dlq.append_batch(&[entry("c1", "a"), entry("c1", "b"), entry("c2", "c")])
            .unwrap();
        let c1 = DlqFilter {
            connector_id: Some("c1".into()),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(dlq.remove_all(&c1).unwrap(), 2);
        assert_eq!(dlq.stats().unwrap().total, 1);
        assert_eq!(dlq.remove_all(&DlqFilter::default()).unwrap(), 1);
        assert_eq!(dlq.stats().unwrap().total, 0);
    }

    #[test]
    fn stats_group_by_connector_and_error_type() {
        let dlq = store(100);
        let mut c = entry("c2", "c");
        c.error_type = "mapper_parsing_exception".to_string();
        dlq.append_batch(&[entry("c1", "a"), entry("c1", "b"), c])
            .unwrap();
        let stats = dlq.stats().unwrap();
        assert_eq!(stats.total, 3);
        assert_eq!(
            stats.by_connector,
            [("c1".to_string(), 2), ("c2".to_string(), 1)]
        );
        assert_eq!(
            stats.by_error_type,
            [
                ("document_parsing_exception".to_string(), 2),
                ("mapper_parsing_exception".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_batch_past_the_bound_is_refused_whole() {
        let dlq = store(3);
        dlq.append_batch(&[entry("c1", "a"), entry("c1", "b")])
            .unwrap();
        let err = dlq
            .append_batch(&[entry("c1", "c"), entry("c1", "a"), entry("c1", "d")])
            .unwrap_err();
        match &err {
            DlqError::Full {
                max,
                stored,
                refused,
                ..
            } => {
                assert_eq!((*max, *stored, *refused), (3, 2, 3));
            }
            other => panic!("expected Full, got {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("3 document(s) were not stored"), "{text}");
        assert!(text.contains(":memory:"), "{text}");
        // Nothing of the refused batch was written, not even the update of "a".
        assert_eq!(dlq.stats().unwrap().total, 2);
        assert!(
            dlq.list(&DlqFilter {
                text: Some("of c".into()),
                ..Default::default()
            })
            .unwrap()
            .is_empty()
        );
        let a = dlq
            .list(&DlqFilter {
                text: Some("of a".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(a[0].attempts, 1);
        // What fits still goes in, and updates of existing entries never count against the bound.
        dlq.append_batch(&[entry("c1", "c")]).unwrap();
        assert!(matches!(
            dlq.append_batch(&[entry("c1", "d")]),
            Err(DlqError::Full { .. })
        ));
        dlq.append_batch(&[entry("c1", "a"), entry("c1", "b")])
            .unwrap();
        assert_eq!(dlq.stats().unwrap().total, 3);
        // Removing frees room.
        let ids: Vec<i64> = dlq
            .list(&DlqFilter::default())
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        dlq.remove(&ids[..1]).unwrap();
        dlq.append_batch(&[entry("c1", "d")]).unwrap();
    }

    #[test]
    fn invalid_json_is_refused() {
        let dlq = store(10);
        let mut bad = entry("c1", "bad");
        bad.document = "{not json".to_string();
        let err = dlq.append_batch(&[entry("c1", "ok"), bad]).unwrap_err();
        assert!(
            matches!(err, DlqError::InvalidDocument { ref doc_id, .. } if doc_id == "bad"),
            "{err}"
        );
        assert_eq!(dlq.stats().unwrap().total, 0);
    }

    #[test]
    fn document_text_is_stored_as_sent() {
        let dlq = store(10);
        let mut e = entry("c1", "a");
        e.document = r#"{"z":1,"a":[true,null],"nested":{"k":"v"}}"#.to_string();
        let id = dlq.append_batch(&[e.clone()]).unwrap()[0];
        let back = dlq.get(id).unwrap().unwrap();
        // preserve_order keeps the key order, so the text round-trips exactly.
        assert_eq!(back.document.to_string(), e.document);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dlq.sqlite");
        drop(DeadLetterStore::open(&path, 10).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA.version() + 1)
            .unwrap();
        drop(conn);
        let err = DeadLetterStore::open(&path, 10).unwrap_err();
        assert!(
            matches!(err, DlqError::NewerSchema { found, .. } if found == SCHEMA.version() + 1),
            "{err}"
        );
        assert!(err.to_string().contains("dlq.sqlite"), "{err}");
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"a%b_c\d"), r"a\%b\_c\\d");
    }
}
