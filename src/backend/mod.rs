//! What the CLI, the console and the engine need from "a cluster", as two traits:
//! [`ControlPlane`] (connectors and sync jobs) and [`DocumentStore`] (bulk writes, id scans,
//! deletes). Two implementations: `elasticsearch` (over `elastic/` and `kibana/`) and
//! `embedded` (SQLite in the data dir, the default when no cluster is configured).
//! [`ReadOnly`] wraps a control plane and refuses every mutation, for read-only profiles.
//! Nothing above this layer knows which backend it talks to.

pub mod elasticsearch;
pub mod embedded;
mod error;
mod read_only;

pub use error::BackendError;
pub use read_only::ReadOnly;
// The query and bulk types live in `model` (the `elastic` client uses them and must not
// depend on this layer); re-exported so callers keep their `backend::` paths.
pub use crate::model::{
    BulkItem, BulkOp, BulkRequest, BulkResponse, ConfigurationUpdate, ConnectorQuery, DocMeta,
    DocRef, IdPage, ItemError, LastSync, SyncJobQuery,
};

use crate::model::Features;
use crate::model::{
    Connector, ConnectorStatus, FilteringRule, FilteringValidation, JobStatus, JobType,
    NewConnector, Page, Pipeline, Scheduling, SyncJob, SyncStats, TriggerMethod,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub type Result<T> = std::result::Result<T, BackendError>;

/// Filters of a sync-job search across many connectors: the service loop's pick-up and
/// cleanup queries (PROTOCOL §5.3, §5.7), one request whatever the number of connectors
/// (`GET _connector/_sync_job` takes one connector id only). Every non-empty list must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Jobs of these connectors; empty: of any connector.
    pub connector_ids: Vec<String>,
    pub statuses: Vec<JobStatus>,
    pub job_types: Vec<JobType>,
    /// Only jobs whose `last_seen` is at or before this instant (idle jobs).
    pub seen_before: Option<crate::model::Timestamp>,
    /// At most this many jobs (100 when `None`).
    pub size: Option<u64>,
}

/// What [`ControlPlane::mark_sync_scheduled`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleMark {
    /// This worker wrote `last_*_scheduled_at`: it creates the job.
    Won,
    /// Another worker scheduled this kind after `since`: create nothing.
    Taken,
}

/// A short description of the cluster for headers and `check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// `elasticsearch` or `embedded`.
    pub backend: String,
    pub cluster_name: String,
    pub version: String,
    /// `green`, `yellow`, `red`, or `n/a` for the embedded store.
    pub health: String,
    pub number_of_nodes: u64,
    /// Where the data lives: node URLs, or the embedded database path.
    pub location: String,
}

/// Which cluster this is, told apart from every other: what the dead-letter queue records as
/// an entry's provenance, so that an entry is only ever retried into the cluster it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterId {
    /// Stable key: Elasticsearch's `cluster_uuid` (from `GET /`), or `embedded:` and the
    /// embedded store's path.
    pub uuid: String,
    /// For display: the `cluster_name`, or `embedded`.
    pub name: String,
}

/// The control plane: connectors and sync jobs, as the connector protocol defines them.
/// Every method maps one protocol call; errors keep the server's type and reason.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    async fn cluster(&self) -> Result<ClusterSummary>;

    /// This cluster's identity (one `GET /` on Elasticsearch). The default derives one from
    /// [`ControlPlane::cluster`], for wrappers that only forward that.
    async fn cluster_id(&self) -> Result<ClusterId> {
        let summary = self.cluster().await?;
        Ok(ClusterId {
            uuid: format!("{}:{}", summary.backend, summary.location),
            name: summary.cluster_name,
        })
    }

    /// Whether mutations are refused (read-only profile).
    fn read_only(&self) -> bool {
        false
    }

    async fn list_connectors(&self, query: &ConnectorQuery) -> Result<Page<Connector>>;
    async fn get_connector(&self, id: &str) -> Result<Connector>;
    /// Creates (or, with an existing id, updates) a connector; returns its id.
    async fn create_connector(&self, new: &NewConnector) -> Result<String>;
    async fn delete_connector(&self, id: &str, hard: bool, delete_sync_jobs: bool) -> Result<()>;
    async fn check_in_connector(&self, id: &str) -> Result<()>;
    async fn update_configuration(&self, id: &str, update: &ConfigurationUpdate) -> Result<()>;
    async fn update_status(&self, id: &str, status: ConnectorStatus) -> Result<()>;
    /// `Some` sets status `error`; `None` clears the error and sets `connected`.
    async fn update_error(&self, id: &str, error: Option<&str>) -> Result<()>;
    /// Replaces the draft basic rules (the DEFAULT rule is re-appended by the server).
    async fn update_filtering(
        &self,
        id: &str,
        rules: &[FilteringRule],
        advanced: Option<&Value>,
    ) -> Result<()>;
    /// Writes the validation result of the draft rules (`_filtering/_validation`), which a
    /// connectors service does for a draft in state `edited` (PROTOCOL §5.2).
    async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        let _ = (id, validation);
        Err(BackendError::Other(
            "writing the sync rules validation is not supported by this backend".into(),
        ))
    }
    /// Makes the draft rules the active ones (`_filtering/_activate`), once validated.
    async fn activate_filtering(&self, id: &str) -> Result<()> {
        let _ = id;
        Err(BackendError::Other(
            "activating sync rules is not supported by this backend".into(),
        ))
    }
    /// Merges `features` into the connector's (`_features`): only the flags given change. A
    /// connectors service writes what its source supports (PROTOCOL §5.2, prepare).
    async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        let _ = (id, features);
        Err(BackendError::Other(
            "writing connector features is not supported by this backend".into(),
        ))
    }
    async fn update_scheduling(&self, id: &str, scheduling: &Scheduling) -> Result<()>;
    async fn update_name(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()>;
    async fn update_index_name(&self, id: &str, index_name: Option<&str>) -> Result<()>;
    async fn update_pipeline(&self, id: &str, pipeline: &Pipeline) -> Result<()>;
    async fn update_service_type(&self, id: &str, service_type: &str) -> Result<()>;
    async fn update_last_sync(&self, id: &str, last: &LastSync) -> Result<()>;

    async fn list_sync_jobs(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>>;
    async fn get_sync_job(&self, id: &str) -> Result<SyncJob>;
    /// Creates a pending job for a connector; returns the job id.
    async fn create_sync_job(
        &self,
        connector_id: &str,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String>;
    async fn cancel_sync_job(&self, id: &str) -> Result<()>;
    async fn delete_sync_job(&self, id: &str) -> Result<()>;
    async fn claim_sync_job(
        &self,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()>;
    async fn check_in_sync_job(&self, id: &str) -> Result<()>;
    async fn update_sync_job_stats(&self, id: &str, stats: &SyncStats) -> Result<()>;
    async fn set_sync_job_error(&self, id: &str, error: &str) -> Result<()>;

    /// Ends a job the way the connectors framework does: a direct update of the job document
    /// (the API has no endpoint for `completed`, nor for `canceling` → `canceled`).
    async fn finish_sync_job(&self, id: &str, finish: &JobFinish) -> Result<()> {
        let _ = (id, finish);
        Err(BackendError::Other(
            "finishing sync jobs is not supported by this backend".into(),
        ))
    }

    /// Ends the job as [`Self::finish_sync_job`] does, but only when its document is still as
    /// `expected` was read (same status and last check-in): the compare-and-set that makes
    /// ending an orphan safe when two workers, or a worker and a reaper, see it at once.
    /// `Ok(false)`: the job changed (another party ended it, or its worker checked in): leave
    /// it, and its connector, alone. Elasticsearch guards the write with the `_seq_no` of a
    /// real-time read; the embedded store does it in one transaction. This default reads and
    /// writes unguarded, for backends with no such guard.
    async fn finish_sync_job_if_unchanged(
        &self,
        expected: &SyncJob,
        finish: &JobFinish,
    ) -> Result<bool> {
        let current = self.get_sync_job(&expected.id).await?;
        if !same_job_state(&current, expected) {
            return Ok(false);
        }
        self.finish_sync_job(&expected.id, finish).await?;
        Ok(true)
    }

    /// Deletes the job only when its document is still as `expected` was read (same status
    /// and last check-in): a job a worker claimed meanwhile is never deleted. `Ok(false)`:
    /// it changed or is gone; nothing was deleted. Elasticsearch guards the delete with the
    /// `_seq_no` of a real-time read; the embedded store does it in one transaction. This
    /// default reads and deletes unguarded, for backends with no such guard.
    async fn delete_sync_job_if_unchanged(&self, expected: &SyncJob) -> Result<bool> {
        let current = match self.get_sync_job(&expected.id).await {
            Ok(current) => current,
            Err(BackendError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !same_job_state(&current, expected) {
            return Ok(false);
        }
        self.delete_sync_job(&expected.id).await?;
        Ok(true)
    }

    /// The start guard of PROTOCOL §5.4: marks the connector's last sync (of the job type's
    /// kind) as `in_progress` unless it already is. `Ok(false)`: another worker got there
    /// first; leave the job alone. A shorthand for [`Self::try_start_guard`], the one
    /// primitive backends implement.
    async fn mark_sync_started(&self, connector_id: &str, job_type: JobType) -> Result<bool> {
        Ok(matches!(
            self.try_start_guard(connector_id, job_type).await?,
            GuardAttempt::Taken(_)
        ))
    }

    /// One attempt at the start guard that says why it failed and what it replaced:
    /// [`GuardAttempt::Held`] when the connector's last sync of the job type's kind is already
    /// `in_progress`, [`GuardAttempt::Conflict`] when the connector changed between the read and
    /// the guarded write (retry with a fresh read), and [`GuardAttempt::Taken`] with the last
    /// sync it overwrote, so a start that does not happen can put it back. Elasticsearch
    /// guards the write with `if_seq_no` and the embedded store does it in one transaction;
    /// this default reads and writes unguarded, for backends with no such guard.
    async fn try_start_guard(&self, connector_id: &str, job_type: JobType) -> Result<GuardAttempt> {
        let connector = self.get_connector(connector_id).await?;
        let prior = PriorSync::of(&connector, job_type);
        if prior.status == Some(JobStatus::InProgress) {
            return Ok(GuardAttempt::Held);
        }
        let mut last = LastSync::default();
        match job_type {
            JobType::AccessControl => {
                last.last_access_control_sync_status = Some(JobStatus::InProgress);
                last.last_access_control_sync_error = Some(None);
            }
            _ => {
                last.last_sync_status = Some(JobStatus::InProgress);
                last.last_sync_error = Some(None);
            }
        }
        self.update_last_sync(connector_id, &last).await?;
        Ok(GuardAttempt::Taken(prior))
    }

    /// Puts back what a start guard replaced, for a start that did not happen: the last sync
    /// of the job type's kind and the connector's status and error. Backends that cannot
    /// write `null` there fall back to `canceled` when the connector had never synced, so the
    /// guard is released all the same.
    async fn restore_last_sync(
        &self,
        connector_id: &str,
        job_type: JobType,
        prior: &PriorSync,
    ) -> Result<()> {
        let status = prior.status.unwrap_or(JobStatus::Canceled);
        let mut last = LastSync::default();
        match job_type {
            JobType::AccessControl => {
                last.last_access_control_sync_status = Some(status);
                last.last_access_control_sync_error = Some(prior.error.clone());
            }
            _ => {
                last.last_sync_status = Some(status);
                last.last_sync_error = Some(prior.error.clone());
            }
        }
        self.update_last_sync(connector_id, &last).await?;
        match (&prior.connector_error, prior.connector_status) {
            (Some(error), _) => self.update_error(connector_id, Some(error)).await,
            (None, ConnectorStatus::Connected) => Ok(()),
            (None, status) => self.update_status(connector_id, status).await,
        }
    }

    /// Deep-merges `fields` (configuration key → field object, whole or partial) into the
    /// connector's configuration with a direct document update, as the Python service's
    /// `prepare` writes it: the status stays as it is, and whatever the document holds that
    /// `fields` does not name (other fields, properties this version does not know) stays.
    /// The `_configuration` endpoint would set `configured` and re-parse every field.
    async fn merge_configuration(&self, id: &str, fields: &Map<String, Value>) -> Result<()> {
        let _ = (id, fields);
        Err(BackendError::Other(
            "merging configuration fields is not supported by this backend".into(),
        ))
    }

    /// Sync jobs matching `filter` across connectors, oldest `created_at` first: one search
    /// on Elasticsearch and the embedded store, whatever the number of connectors. This
    /// default pages through [`Self::list_sync_jobs`] per connector and status, for backends
    /// with no search of their own.
    async fn search_sync_jobs(&self, filter: &JobFilter) -> Result<Vec<SyncJob>> {
        let connectors: Vec<Option<String>> = if filter.connector_ids.is_empty() {
            vec![None]
        } else {
            filter.connector_ids.iter().cloned().map(Some).collect()
        };
        let statuses: Vec<Option<JobStatus>> = if filter.statuses.is_empty() {
            vec![None]
        } else {
            filter.statuses.iter().copied().map(Some).collect()
        };
        let mut found = Vec::new();
        for connector_id in &connectors {
            for status in &statuses {
                let mut query = SyncJobQuery {
                    connector_id: connector_id.clone(),
                    status: *status,
                    job_types: filter.job_types.clone(),
                    size: Some(100),
                    ..Default::default()
                };
                loop {
                    let page = self.list_sync_jobs(&query).await?;
                    let got = page.results.len() as u64;
                    found.extend(page.results.into_iter().filter(|job| {
                        filter
                            .seen_before
                            .is_none_or(|before| job.last_seen.is_some_and(|seen| seen <= before))
                    }));
                    query.from += got;
                    if got == 0 || query.from >= page.count {
                        break;
                    }
                }
            }
        }
        found.sort_by_key(|job| job.created_at.map(|t| t.millis()).unwrap_or(i64::MAX));
        found.truncate(usize::try_from(filter.size.unwrap_or(100)).unwrap_or(usize::MAX));
        Ok(found)
    }

    /// The scheduler's write (PROTOCOL §5.2, the Python service's `_should_schedule`): sets
    /// the connector's `last_sync_scheduled_at` (or the incremental / access-control one, by
    /// `job_type`) to `at`, unless another worker already scheduled that kind after `since`
    /// (this worker's previous tick). Elasticsearch re-reads the connector with its
    /// `_seq_no`/`_primary_term` and writes guarded by them, retrying a 409 from the re-read;
    /// the embedded store does it in one transaction. Exactly one worker wins a due tick.
    /// This default reads and writes unguarded, for backends with no such guard.
    async fn mark_sync_scheduled(
        &self,
        connector_id: &str,
        job_type: JobType,
        since: crate::model::Timestamp,
        at: crate::model::Timestamp,
    ) -> Result<ScheduleMark> {
        let connector = self.get_connector(connector_id).await?;
        if scheduled_at(&connector, job_type).is_some_and(|last| last > since) {
            return Ok(ScheduleMark::Taken);
        }
        self.update_last_sync(connector_id, &schedule_mark(job_type, at))
            .await?;
        Ok(ScheduleMark::Won)
    }
}

/// What a connector said before a start guard replaced it: its last sync of the guarded kind
/// and its own status and error (the guard clears them, as the Python service's `sync_starts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorSync {
    pub status: Option<JobStatus>,
    pub error: Option<String>,
    pub connector_status: ConnectorStatus,
    pub connector_error: Option<String>,
}

impl PriorSync {
    pub fn of(connector: &Connector, job_type: JobType) -> Self {
        let (status, error) = match job_type {
            JobType::AccessControl => (
                connector.last_access_control_sync_status,
                connector.last_access_control_sync_error.clone(),
            ),
            _ => (
                connector.last_sync_status,
                connector.last_sync_error.clone(),
            ),
        };
        Self {
            status,
            error,
            connector_status: connector.status,
            connector_error: connector.error.clone(),
        }
    }
}

/// The outcome of one start-guard attempt (see [`ControlPlane::try_start_guard`]).
#[derive(Debug, Clone, PartialEq)]
pub enum GuardAttempt {
    Taken(PriorSync),
    Held,
    Conflict,
}

/// The connector's `last_*_scheduled_at` of a job type's kind.
pub fn scheduled_at(connector: &Connector, job_type: JobType) -> Option<crate::model::Timestamp> {
    match job_type {
        JobType::Full => connector.last_sync_scheduled_at,
        JobType::Incremental => connector.last_incremental_sync_scheduled_at,
        JobType::AccessControl => connector.last_access_control_sync_scheduled_at,
    }
}

/// The `last_*_scheduled_at` write of a job type's kind.
pub fn schedule_mark(job_type: JobType, at: crate::model::Timestamp) -> LastSync {
    let mut last = LastSync::default();
    match job_type {
        JobType::Full => last.last_sync_scheduled_at = Some(at),
        JobType::Incremental => last.last_incremental_sync_scheduled_at = Some(at),
        JobType::AccessControl => last.last_access_control_sync_scheduled_at = Some(at),
    }
    last
}

/// Whether a job is still in the state it was read in, for
/// [`ControlPlane::finish_sync_job_if_unchanged`]: its status and its last check-in.
pub fn same_job_state(current: &SyncJob, expected: &SyncJob) -> bool {
    current.status == expected.status && current.last_seen == expected.last_seen
}

/// The final write of a job (see [`ControlPlane::finish_sync_job`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFinish {
    /// `completed`, `error`, `canceled` or `suspended`.
    pub status: JobStatus,
    pub error: Option<String>,
    pub indexed_document_count: u64,
    pub deleted_document_count: u64,
    pub indexed_document_volume: u64,
    pub total_document_count: Option<u64>,
}

/// A cursor over every id of an index, page by page, so a full sync never loads all ids at
/// once (PIT + `search_after` on Elasticsearch).
#[async_trait]
pub trait IdScan: Send {
    /// The next page, or `None` when the scan is done. A page holds its documents' text in
    /// one buffer (see [`IdPage`]): a full sync reads every id of its index.
    async fn next_page(&mut self) -> Result<Option<IdPage>>;
    /// Releases server resources (the PIT). Safe to call more than once.
    async fn close(&mut self) -> Result<()>;
    /// Whether every page shows the index as it was when the scan was opened (a point in
    /// time), whatever is written meanwhile. Only then may a sync index while it reads.
    fn is_point_in_time(&self) -> bool {
        false
    }
}

/// The document side: where synced documents go.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Creates the index with these mappings when it does not exist; returns whether it
    /// created it.
    async fn ensure_index(&self, index: &str, mappings: Option<&Value>) -> Result<bool>;
    async fn index_exists(&self, index: &str) -> Result<bool>;
    async fn bulk(&self, request: &BulkRequest) -> Result<BulkResponse>;
    /// Every id of `index`, `page_size` a page. `slices` asks a store that can for that many
    /// slices of the index read at once (Elasticsearch: sliced PIT searches); others ignore it.
    async fn scan_ids(
        &self,
        index: &str,
        page_size: usize,
        slices: usize,
    ) -> Result<Box<dyn IdScan>>;
    /// A scan of the documents' `_id`s alone, with no timestamps: what a full sync's deletion
    /// pass needs, and cheaper for the cluster (no `_source` is read).
    async fn scan_bare_ids(
        &self,
        index: &str,
        page_size: usize,
        slices: usize,
    ) -> Result<Box<dyn IdScan>> {
        self.scan_ids(index, page_size, slices).await
    }
    async fn count(&self, index: &str) -> Result<u64>;
    async fn get_document(&self, index: &str, id: &str) -> Result<Option<Value>>;
    async fn delete_document(&self, index: &str, id: &str) -> Result<bool>;
    async fn refresh(&self, index: &str) -> Result<()>;
}
