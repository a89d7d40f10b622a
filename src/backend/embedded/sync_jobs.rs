//! Sync job documents in the embedded database: create with the connector snapshot, the
//! worker calls (claim, check-in, stats, error), cancel with the protocol's per-status
//! semantics, delete and the paged list. Every function takes a connection the caller has
//! already put in the right transaction; none opens its own.

use super::connectors;
use super::{Where, db_err, from_json, new_id, status_exception, to_json};
use crate::backend::{BackendError, JobFilter, JobFinish, Result, SyncJobQuery};
use crate::model::{
    JobStatus, JobType, Page, SyncJob, SyncJobConnector, SyncStats, Timestamp, TriggerMethod,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

const DEFAULT_PAGE_SIZE: u64 = 100;

fn not_found(id: &str) -> BackendError {
    BackendError::NotFound(format!("connector sync job [{id}] not found"))
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<SyncJob> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM sync_jobs WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db_err)?;
    match doc {
        Some(doc) => from_json(&doc, &format!("sync job '{id}'")),
        None => Err(not_found(id)),
    }
}

fn put(conn: &Connection, job: &SyncJob) -> Result<()> {
    let doc = to_json(job)?;
    let created_at = job.created_at.map_or(0, |t| t.millis());
    conn.execute(
        "INSERT INTO sync_jobs (id, connector_id, status, job_type, created_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET connector_id = excluded.connector_id, status = excluded.status,
           job_type = excluded.job_type, created_at = excluded.created_at, doc = excluded.doc",
        params![job.id, job.connector.id, job.status.as_str(), job.job_type.as_str(), created_at, doc],
    )
    .map_err(db_err)?;
    Ok(())
}

fn modify(
    conn: &Connection,
    id: &str,
    change: impl FnOnce(&mut SyncJob) -> Result<()>,
) -> Result<()> {
    let mut job = get(conn, id)?;
    change(&mut job)?;
    put(conn, &job)
}

/// `POST _connector/_sync_job`: a pending job carrying a snapshot of the connector. ACL jobs
/// write to `.search-acl-filter-<index>`.
pub(super) fn create(
    conn: &Connection,
    connector_id: &str,
    job_type: JobType,
    trigger: TriggerMethod,
) -> Result<String> {
    let connector = connectors::get(conn, connector_id)?;
    let index_name = match job_type {
        JobType::AccessControl => connector
            .index_name
            .as_ref()
            .map(|i| format!(".search-acl-filter-{i}")),
        _ => connector.index_name.clone(),
    };
    let snapshot = SyncJobConnector {
        id: connector.id.clone(),
        index_name,
        language: connector.language.clone(),
        pipeline: connector.pipeline.clone(),
        service_type: connector.service_type.clone(),
        configuration: connector.configuration.clone(),
        filtering: connector.active_filtering().cloned(),
        sync_cursor: connector.sync_cursor.clone(),
    };
    let now = Timestamp::now();
    let job = SyncJob {
        id: new_id(),
        connector: snapshot,
        job_type,
        trigger_method: trigger,
        status: JobStatus::Pending,
        created_at: Some(now),
        worker_hostname: None,
        started_at: None,
        completed_at: None,
        cancelation_requested_at: None,
        canceled_at: None,
        last_seen: Some(now),
        indexed_document_count: 0,
        deleted_document_count: 0,
        total_document_count: Some(0),
        indexed_document_volume: 0,
        metadata: Map::new(),
        error: None,
        extra: Map::new(),
    };
    put(conn, &job)?;
    Ok(job.id)
}

/// `_cancel`: pending or suspended jobs are canceled at once; an in-progress job becomes
/// `canceling` for its worker to finish; anything else is refused.
pub(super) fn cancel(conn: &Connection, id: &str) -> Result<()> {
    modify(conn, id, |job| {
        let now = Some(Timestamp::now());
        match job.status {
            JobStatus::Pending | JobStatus::Suspended => {
                job.status = JobStatus::Canceled;
                job.cancelation_requested_at = now;
                job.canceled_at = now;
                job.completed_at = now;
                Ok(())
            }
            JobStatus::InProgress => {
                job.status = JobStatus::Canceling;
                job.cancelation_requested_at = now;
                Ok(())
            }
            other => Err(status_exception(format!(
                "Invalid transition attempt from [{other}] to [{}]. Such a sync job status transition \
                 is not supported.",
                JobStatus::Canceling
            ))),
        }
    })
}

pub(super) fn delete(conn: &Connection, id: &str) -> Result<()> {
    let removed = conn
        .execute("DELETE FROM sync_jobs WHERE id = ?1", [id])
        .map_err(db_err)?;
    if removed == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// `_claim`: only a pending or suspended job can be claimed; the check and the write happen in
/// the caller's immediate transaction, so exactly one of several racing workers wins. The
/// losers get a conflict, like the project's stand-in server's 409.
pub(super) fn claim(
    conn: &Connection,
    id: &str,
    worker_hostname: &str,
    sync_cursor: Option<Value>,
) -> Result<()> {
    modify(conn, id, |job| {
        if !matches!(job.status, JobStatus::Pending | JobStatus::Suspended) {
            return Err(BackendError::Conflict(format!(
                "sync job [{id}] cannot be claimed: its status is [{}], not [pending] or [suspended]",
                job.status
            )));
        }
        let now = Some(Timestamp::now());
        job.status = JobStatus::InProgress;
        job.started_at = now;
        job.last_seen = now;
        job.worker_hostname = Some(worker_hostname.to_string());
        if sync_cursor.is_some() {
            job.connector.sync_cursor = sync_cursor;
        }
        Ok(())
    })
}

pub(super) fn check_in(conn: &Connection, id: &str) -> Result<()> {
    modify(conn, id, |job| {
        job.last_seen = Some(Timestamp::now());
        Ok(())
    })
}

/// `_stats`: the counts, the optional total and metadata; `last_seen` defaults to now.
pub(super) fn update_stats(conn: &Connection, id: &str, stats: SyncStats) -> Result<()> {
    modify(conn, id, |job| {
        job.indexed_document_count = stats.indexed_document_count;
        job.deleted_document_count = stats.deleted_document_count;
        job.indexed_document_volume = stats.indexed_document_volume;
        if stats.total_document_count.is_some() {
            job.total_document_count = stats.total_document_count;
        }
        job.last_seen = Some(stats.last_seen.unwrap_or_else(Timestamp::now));
        if let Some(metadata) = stats.metadata {
            job.metadata = metadata;
        }
        Ok(())
    })
}

/// `_error`: status `error` when the job's state machine allows it; `completed_at` is left
/// alone, as Elasticsearch does.
pub(super) fn set_error(conn: &Connection, id: &str, error: &str) -> Result<()> {
    modify(conn, id, |job| {
        if !job.status.can_become(JobStatus::Error) {
            return Err(status_exception(format!(
                "Invalid transition attempt from [{}] to [{}]. Such a sync job status transition is not \
                 supported.",
                job.status,
                JobStatus::Error
            )));
        }
        job.status = JobStatus::Error;
        job.error = Some(error.to_string());
        Ok(())
    })
}

/// The final write of a job, as the framework does it: a direct update of the document, with
/// no state-machine check. `completed_at` is set for the terminal statuses, `canceled_at` for
/// `canceled`.
pub(super) fn finish(conn: &Connection, id: &str, finish: JobFinish) -> Result<()> {
    modify(conn, id, |job| {
        let now = Some(Timestamp::now());
        job.status = finish.status;
        job.error = finish.error;
        job.indexed_document_count = finish.indexed_document_count;
        job.deleted_document_count = finish.deleted_document_count;
        job.indexed_document_volume = finish.indexed_document_volume;
        if finish.total_document_count.is_some() {
            job.total_document_count = finish.total_document_count;
        }
        job.last_seen = now;
        if finish.status.is_terminal() {
            job.completed_at = now;
        }
        if finish.status == JobStatus::Canceled {
            job.canceled_at = now;
        }
        Ok(())
    })
}

/// `GET _connector/_sync_job`: filters, newest first, paged, with the total count.
pub(super) fn list(conn: &Connection, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
    let mut filter = Where::default();
    if let Some(connector_id) = &query.connector_id {
        filter.equals("connector_id", connector_id);
    }
    if let Some(status) = query.status {
        filter.equals("status", status.as_str());
    }
    let job_types: Vec<String> = query
        .job_types
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    filter.any_of("job_type", &job_types);
    filter.page(
        conn,
        "sync_jobs",
        "created_at DESC, seq DESC",
        query.size.unwrap_or(DEFAULT_PAGE_SIZE),
        query.from,
        "sync job",
    )
}

/// Jobs matching a cross-connector filter, oldest `created_at` first (the service loop's
/// pick-up and cleanup queries). `last_seen` lives in the document only, so the idle bound is
/// applied to the rows the indexed columns selected.
pub(super) fn search(conn: &Connection, filter: &JobFilter) -> Result<Vec<SyncJob>> {
    let mut clauses = Where::default();
    clauses.any_of("connector_id", &filter.connector_ids);
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    clauses.any_of("status", &statuses);
    let job_types: Vec<String> = filter
        .job_types
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    clauses.any_of("job_type", &job_types);
    let sql = format!(
        "SELECT id, doc FROM sync_jobs{} ORDER BY created_at ASC, seq ASC",
        clauses.sql()
    );
    let mut statement = conn.prepare(&sql).map_err(db_err)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(clauses.params()), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(db_err)?;
    let limit = usize::try_from(filter.size.unwrap_or(DEFAULT_PAGE_SIZE)).unwrap_or(usize::MAX);
    let mut found = Vec::new();
    for row in rows {
        let (id, doc) = row.map_err(db_err)?;
        let job: SyncJob = from_json(&doc, &format!("sync job '{id}'"))?;
        let idle = filter
            .seen_before
            .is_none_or(|before| job.last_seen.is_some_and(|seen| seen <= before));
        if idle {
            found.push(job);
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}
