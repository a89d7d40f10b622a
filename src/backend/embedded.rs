//! The embedded backend: connectors, sync jobs and synced documents in one SQLite database in
//! the data dir, the default when no cluster is configured. It answers like Elasticsearch's
//! connector and document APIs (PROTOCOL.md), so the CLI, the console and the engine cannot
//! tell it from a cluster.
//!
//! Owns the database file and its schema; knows nothing of HTTP, the engine or the UIs.
//! Submodules: `schema` (open, pragmas, migrations), `connectors` and `sync_jobs` (the control
//! plane), `mapping`, `bulk` and `documents` (the document store), `demo` (seed data).
//!
//! Concurrency: a `rusqlite::Connection` is not `Sync`, so it sits behind a mutex and every
//! query runs on tokio's blocking pool. Read-modify-write calls run in one `BEGIN IMMEDIATE`
//! transaction, which also makes them atomic across processes sharing the file (WAL mode).

mod bulk;
mod connectors;
mod demo;
mod documents;
mod mapping;
mod schema;
mod source_position;
mod sync_jobs;

pub use demo::demo_corpus_dir;

use super::{
    BackendError, BulkRequest, BulkResponse, ClusterSummary, ConfigurationUpdate, ConnectorQuery,
    ControlPlane, DocumentStore, IdScan, JobFilter, JobFinish, LastSync, Result, ScheduleMark,
    SyncJobQuery,
};
use crate::model::{
    Connector, ConnectorStatus, Features, FilteringRule, FilteringValidation, JobType,
    NewConnector, Page, Pipeline, Scheduling, SyncJob, SyncStats, TriggerMethod,
};
use async_trait::async_trait;
use base64::Engine as _;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The embedded backend. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EmbeddedBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    /// `None` for an in-memory database.
    path: Option<PathBuf>,
    /// This store's [`ClusterId`](super::ClusterId) key: `embedded:` and its path, or a
    /// number of its own for an in-memory store (two of them are two clusters).
    identity: String,
}

impl fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("location", &self.location())
            .finish()
    }
}

impl EmbeddedBackend {
    /// Opens (or creates, with mode 0600) the database at `path` and brings its schema up to
    /// date. The parent directory is created when missing.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = schema::open_file(path)?;
        Ok(Self::wrap(conn, Some(path.to_path_buf())))
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let conn = schema::open_memory()?;
        Ok(Self::wrap(conn, None))
    }

    fn wrap(conn: Connection, path: Option<PathBuf>) -> Self {
        static MEMORY_STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let identity = match &path {
            // The same file reached by another relative path is the same store.
            Some(path) => format!(
                "embedded:{}",
                std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
            ),
            None => format!(
                "embedded::memory:{}",
                MEMORY_STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        };
        Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                identity,
            }),
        }
    }

    /// Where the data lives: the database path, or `:memory:`.
    pub fn location(&self) -> String {
        match &self.inner.path {
            Some(path) => path.display().to_string(),
            None => ":memory:".to_string(),
        }
    }

    /// Creates the demo connectors (and the demo index mappings) described by
    /// `assets/demo/demo.toml`, once per database: the seed is recorded, so a user who deletes
    /// a demo connector does not get it back. `demo_dir` becomes the directory connector's
    /// `path` as given. Returns whether this call seeded.
    pub fn seed_demo(&self, demo_dir: &Path) -> Result<bool> {
        let mut conn = self.inner.lock();
        let tx = begin_immediate(&mut conn)?;
        let seeded = demo::seed(&tx, demo_dir)?;
        tx.commit().map_err(db_err)?;
        Ok(seeded)
    }

    /// Writes the draft filtering validation (`_filtering/_validation`).
    pub async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        let (id, validation) = (id.to_owned(), validation.clone());
        self.write(move |tx| connectors::update_filtering_validation(tx, &id, validation))
            .await
    }

    /// Copies the draft filtering to active (`_filtering/_activate`).
    pub async fn activate_filtering(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| connectors::activate_filtering(tx, &id))
            .await
    }

    /// Merges `features` into the connector's (`_features`): only the flags given change.
    pub async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        let (id, features) = (id.to_owned(), features.clone());
        self.write(move |tx| connectors::update_features(tx, &id, features))
            .await
    }

    /// The mapping an index has now, dynamic additions included (`GET <index>/_mapping`).
    pub async fn index_mapping(&self, index: &str) -> Result<Value> {
        let index = index.to_owned();
        self.read(move |conn| documents::mapping_of(conn, &index))
            .await
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner.lock()))
            .await
            .map_err(|e| BackendError::Other(format!("embedded database task failed: {e}")))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when `f` succeeds, rolled back
    /// (nothing changes) when it fails.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock();
            let tx = begin_immediate(&mut conn)?;
            let value = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(value)
        })
        .await
        .map_err(|e| BackendError::Other(format!("embedded database task failed: {e}")))?
    }
}

impl Inner {
    /// A panic while holding the lock leaves no half-written state (the transaction rolls back
    /// on drop), so a poisoned lock is safe to reuse.
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn begin_immediate(conn: &mut Connection) -> Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)
}

/// Maps a SQLite error into a backend error a user can act on.
fn db_err(e: rusqlite::Error) -> BackendError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e
        && matches!(
            code.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    {
        return BackendError::Other(format!(
            "the embedded database is busy (another syncdeck process holds a write lock): {e}"
        ));
    }
    BackendError::Other(format!("embedded database error: {e}"))
}

/// A new document id like Elasticsearch's: 20 URL-safe base64 characters of random bytes.
fn new_id() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `400 status_exception`, the type Elasticsearch uses for refused transitions and conflicts
/// of connector state.
fn status_exception(reason: String) -> BackendError {
    BackendError::Rejected {
        status: 400,
        kind: "status_exception".into(),
        reason,
    }
}

/// Serialises a stored document.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| BackendError::Other(format!("cannot serialise a document: {e}")))
}

/// Reads a stored document; `what` names it in the error (`connector 'abc'`).
fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        BackendError::Other(format!(
            "the embedded database holds an unreadable {what}: {e}"
        ))
    })
}

/// A `WHERE` clause built from optional filters, with its positional parameters.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<rusqlite::types::Value>,
}

impl Where {
    fn clause(&mut self, sql: &str) {
        self.clauses.push(sql.to_string());
    }

    fn clause_with(&mut self, sql: &str, params: Vec<rusqlite::types::Value>) {
        self.clauses.push(sql.to_string());
        self.params.extend(params);
    }

    fn equals(&mut self, column: &str, value: &str) {
        self.clause_with(&format!("{column} = ?"), vec![value.to_string().into()]);
    }

    /// `column IN (…)`; no clause at all for an empty list.
    fn any_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.clause_with(
            &format!("{column} IN ({marks})"),
            values.iter().map(|v| v.clone().into()).collect(),
        );
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn params(&self) -> &[rusqlite::types::Value] {
        &self.params
    }

    /// One page of JSON documents from `table` matching these clauses, with the total count:
    /// the shared body of the connector and sync-job lists. `order` is the ORDER BY clause;
    /// `what` names a document in errors ("connector", "sync job").
    fn page<T: serde::de::DeserializeOwned>(
        &self,
        conn: &rusqlite::Connection,
        table: &str,
        order: &str,
        size: u64,
        from: u64,
        what: &str,
    ) -> Result<crate::model::Page<T>> {
        use rusqlite::params_from_iter;
        let count: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM {table}{}", self.sql()),
                params_from_iter(self.params()),
                |row| row.get(0),
            )
            .map_err(db_err)?;
        let sql = format!(
            "SELECT id, doc FROM {table}{} ORDER BY {order} LIMIT {} OFFSET {}",
            self.sql(),
            connectors::sql_int(size),
            connectors::sql_int(from),
        );
        let mut statement = conn.prepare(&sql).map_err(db_err)?;
        let rows = statement
            .query_map(params_from_iter(self.params()), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        let mut results = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(db_err)?;
            results.push(from_json(&doc, &format!("{what} '{id}'"))?);
        }
        Ok(crate::model::Page {
            count: u64::try_from(count).unwrap_or(0),
            results,
        })
    }
}

#[async_trait]
impl ControlPlane for EmbeddedBackend {
    async fn cluster(&self) -> Result<ClusterSummary> {
        Ok(ClusterSummary {
            backend: "embedded".into(),
            cluster_name: "embedded".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            health: "n/a".into(),
            number_of_nodes: 1,
            location: self.location(),
        })
    }

    async fn cluster_id(&self) -> Result<super::ClusterId> {
        Ok(super::ClusterId {
            uuid: self.inner.identity.clone(),
            name: "embedded".into(),
        })
    }

    async fn list_connectors(&self, query: &ConnectorQuery) -> Result<Page<Connector>> {
        let query = query.clone();
        self.read(move |conn| connectors::list(conn, &query)).await
    }

    async fn get_connector(&self, id: &str) -> Result<Connector> {
        let id = id.to_owned();
        self.read(move |conn| connectors::get(conn, &id)).await
    }

    async fn create_connector(&self, new: &NewConnector) -> Result<String> {
        let new = new.clone();
        self.write(move |tx| connectors::create(tx, &new)).await
    }

    async fn delete_connector(&self, id: &str, hard: bool, delete_sync_jobs: bool) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| connectors::delete(tx, &id, hard, delete_sync_jobs))
            .await
    }

    async fn check_in_connector(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| connectors::check_in(tx, &id)).await
    }

    async fn update_configuration(&self, id: &str, update: &ConfigurationUpdate) -> Result<()> {
        let (id, update) = (id.to_owned(), update.clone());
        self.write(move |tx| connectors::update_configuration(tx, &id, update))
            .await
    }

    async fn update_status(&self, id: &str, status: ConnectorStatus) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| connectors::update_status(tx, &id, status))
            .await
    }

    async fn update_error(&self, id: &str, error: Option<&str>) -> Result<()> {
        let (id, error) = (id.to_owned(), error.map(str::to_owned));
        self.write(move |tx| connectors::update_error(tx, &id, error))
            .await
    }

    async fn update_filtering(
        &self,
        id: &str,
        rules: &[FilteringRule],
        advanced: Option<&Value>,
    ) -> Result<()> {
        let (id, rules, advanced) = (id.to_owned(), rules.to_vec(), advanced.cloned());
        self.write(move |tx| connectors::update_filtering(tx, &id, rules, advanced))
            .await
    }

    async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        EmbeddedBackend::update_filtering_validation(self, id, validation).await
    }

    async fn activate_filtering(&self, id: &str) -> Result<()> {
        EmbeddedBackend::activate_filtering(self, id).await
    }

    async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        EmbeddedBackend::update_features(self, id, features).await
    }

    async fn update_scheduling(&self, id: &str, scheduling: &Scheduling) -> Result<()> {
        let (id, scheduling) = (id.to_owned(), scheduling.clone());
        self.write(move |tx| connectors::update_scheduling(tx, &id, scheduling))
            .await
    }

    async fn update_name(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        let id = id.to_owned();
        let (name, description) = (name.map(str::to_owned), description.map(str::to_owned));
        self.write(move |tx| connectors::update_name(tx, &id, name, description))
            .await
    }

    async fn update_index_name(&self, id: &str, index_name: Option<&str>) -> Result<()> {
        let (id, index_name) = (id.to_owned(), index_name.map(str::to_owned));
        self.write(move |tx| connectors::update_index_name(tx, &id, index_name))
            .await
    }

    async fn update_pipeline(&self, id: &str, pipeline: &Pipeline) -> Result<()> {
        let (id, pipeline) = (id.to_owned(), pipeline.clone());
        self.write(move |tx| connectors::update_pipeline(tx, &id, pipeline))
            .await
    }

    async fn update_service_type(&self, id: &str, service_type: &str) -> Result<()> {
        let (id, service_type) = (id.to_owned(), service_type.to_owned());
        self.write(move |tx| connectors::update_service_type(tx, &id, service_type))
            .await
    }

    async fn update_last_sync(&self, id: &str, last: &LastSync) -> Result<()> {
        let (id, last) = (id.to_owned(), last.clone());
        self.write(move |tx| connectors::update_last_sync(tx, &id, last))
            .await
    }

    async fn list_sync_jobs(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
        let query = query.clone();
        self.read(move |conn| sync_jobs::list(conn, &query)).await
    }

    async fn get_sync_job(&self, id: &str) -> Result<SyncJob> {
        let id = id.to_owned();
        self.read(move |conn| sync_jobs::get(conn, &id)).await
    }

    async fn create_sync_job(
        &self,
        connector_id: &str,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String> {
        let connector_id = connector_id.to_owned();
        self.write(move |tx| sync_jobs::create(tx, &connector_id, job_type, trigger))
            .await
    }

    async fn cancel_sync_job(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| sync_jobs::cancel(tx, &id)).await
    }

    async fn delete_sync_job(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| sync_jobs::delete(tx, &id)).await
    }

    async fn claim_sync_job(
        &self,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()> {
        let (id, worker, cursor) = (
            id.to_owned(),
            worker_hostname.to_owned(),
            sync_cursor.cloned(),
        );
        self.write(move |tx| sync_jobs::claim(tx, &id, &worker, cursor))
            .await
    }

    async fn check_in_sync_job(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |tx| sync_jobs::check_in(tx, &id)).await
    }

    async fn update_sync_job_stats(&self, id: &str, stats: &SyncStats) -> Result<()> {
        let (id, stats) = (id.to_owned(), stats.clone());
        self.write(move |tx| sync_jobs::update_stats(tx, &id, stats))
            .await
    }

    async fn set_sync_job_error(&self, id: &str, error: &str) -> Result<()> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.write(move |tx| sync_jobs::set_error(tx, &id, &error))
            .await
    }

    async fn finish_sync_job(&self, id: &str, finish: &JobFinish) -> Result<()> {
        let (id, finish) = (id.to_owned(), finish.clone());
        self.write(move |tx| sync_jobs::finish(tx, &id, finish))
            .await
    }

    async fn finish_sync_job_if_unchanged(
        &self,
        expected: &SyncJob,
        finish: &JobFinish,
    ) -> Result<bool> {
        let (expected, finish) = (expected.clone(), finish.clone());
        self.write(move |tx| {
            let current = sync_jobs::get(tx, &expected.id)?;
            if !super::same_job_state(&current, &expected) {
                return Ok(false);
            }
            sync_jobs::finish(tx, &expected.id, finish)?;
            Ok(true)
        })
        .await
    }

    async fn delete_sync_job_if_unchanged(&self, expected: &SyncJob) -> Result<bool> {
        let expected = expected.clone();
        self.write(move |tx| {
            let current = match sync_jobs::get(tx, &expected.id) {
                Ok(current) => current,
                Err(BackendError::NotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if !super::same_job_state(&current, &expected) {
                return Ok(false);
            }
            sync_jobs::delete(tx, &expected.id)?;
            Ok(true)
        })
        .await
    }

    async fn merge_configuration(
        &self,
        id: &str,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        let (id, fields) = (id.to_owned(), fields.clone());
        self.write(move |tx| connectors::merge_configuration(tx, &id, fields))
            .await
    }

    async fn search_sync_jobs(&self, filter: &JobFilter) -> Result<Vec<SyncJob>> {
        let filter = filter.clone();
        self.read(move |conn| sync_jobs::search(conn, &filter))
            .await
    }

    async fn mark_sync_scheduled(
        &self,
        connector_id: &str,
        job_type: JobType,
        since: crate::model::Timestamp,
        at: crate::model::Timestamp,
    ) -> Result<ScheduleMark> {
        let connector_id = connector_id.to_owned();
        self.write(move |tx| {
            connectors::mark_sync_scheduled(tx, &connector_id, job_type, since, at)
        })
        .await
    }

    async fn try_start_guard(
        &self,
        connector_id: &str,
        job_type: JobType,
    ) -> Result<super::GuardAttempt> {
        let connector_id = connector_id.to_owned();
        self.write(move |tx| connectors::try_start_guard(tx, &connector_id, job_type))
            .await
    }

    async fn restore_last_sync(
        &self,
        connector_id: &str,
        job_type: JobType,
        prior: &super::PriorSync,
    ) -> Result<()> {
        let (connector_id, prior) = (connector_id.to_owned(), prior.clone());
        self.write(move |tx| connectors::restore_last_sync(tx, &connector_id, job_type, &prior))
            .await
    }
}

#[async_trait]
impl DocumentStore for EmbeddedBackend {
    async fn ensure_index(&self, index: &str, mappings: Option<&Value>) -> Result<bool> {
        let (index, mappings) = (index.to_owned(), mappings.cloned());
        self.write(move |tx| documents::ensure_index(tx, &index, mappings.as_ref()))
            .await
    }

    async fn index_exists(&self, index: &str) -> Result<bool> {
        let index = index.to_owned();
        self.read(move |conn| documents::index_exists(conn, &index))
            .await
    }

    async fn bulk(&self, request: &BulkRequest) -> Result<BulkResponse> {
        let request = request.clone();
        self.write(move |tx| bulk::execute(tx, &request)).await
    }

    /// One cursor over the table: SQLite reads it faster than slices would.
    async fn scan_ids(
        &self,
        index: &str,
        page_size: usize,
        _slices: usize,
    ) -> Result<Box<dyn IdScan>> {
        let index = index.to_owned();
        let checked = index.clone();
        self.read(move |conn| documents::require_index(conn, &checked))
            .await?;
        Ok(Box::new(documents::EmbeddedIdScan::new(
            self.clone(),
            index,
            page_size,
        )))
    }

    async fn count(&self, index: &str) -> Result<u64> {
        let index = index.to_owned();
        self.read(move |conn| documents::count(conn, &index)).await
    }

    async fn get_document(&self, index: &str, id: &str) -> Result<Option<Value>> {
        let (index, id) = (index.to_owned(), id.to_owned());
        self.read(move |conn| documents::get(conn, &index, &id))
            .await
    }

    async fn delete_document(&self, index: &str, id: &str) -> Result<bool> {
        let (index, id) = (index.to_owned(), id.to_owned());
        self.write(move |tx| documents::delete(tx, &index, &id))
            .await
    }

    async fn refresh(&self, _index: &str) -> Result<()> {
        // Every write is visible once its transaction commits: nothing to refresh.
        Ok(())
    }
}
