//! Ending jobs that no live worker will end, the way Elastic's connectors service does it
//! (`services/job_cleanup.py`, `SyncJob._terminate`, `Connector.sync_done`): the job gets its
//! final status with `completed_at` and keeps the counts of its last stats report, and the
//! connector gets the `last_*` (or `last_access_control_*`) fields of the job's kind, so
//! Kibana and every connectors service see the same ending. Used by the idle-job reaper, by a
//! start that takes over an orphaned guard, and by a cancel whose worker is gone.
//! It never decides *whether* a job is abandoned: callers do (see `engine::service` and the
//! runner's lease checks).

use crate::backend::{BackendError, ControlPlane, JobFinish, LastSync};
use crate::model::{JobStatus, JobType, SyncJob, Timestamp};

/// The error an idle job ends with, word for word as the Python service writes it.
pub const IDLE_JOB_ERROR: &str = "The job has not seen any update for some time.";
/// What the connector's last sync says when its job vanished, as the Python service writes it.
pub const JOB_NOT_FOUND_ERROR: &str = "Couldn't find the job";
/// The error for an `error` ending that came without a reason (Python's `UNKNOWN_ERROR`).
pub const UNKNOWN_ERROR: &str = "unknown error";

/// Ends `job` as `status` (`error`, `canceled` or `suspended`) with `error`, keeping the counts
/// it last reported, then writes its connector's last-sync fields. A connector that no longer
/// exists is not an error: the job is still ended (Python's orphaned-job cleanup).
pub async fn end_abandoned_job(
    control: &dyn ControlPlane,
    job: &SyncJob,
    status: JobStatus,
    error: Option<&str>,
) -> Result<(), BackendError> {
    end_orphaned_job(control, job, status, error).await?;
    let counts = status
        .is_terminal()
        .then_some((job.indexed_document_count, job.deleted_document_count));
    match write_connector_outcome(
        control,
        &job.connector.id,
        Some(job.job_type),
        status,
        error,
        counts,
    )
    .await
    {
        Ok(()) | Err(BackendError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Ends `job` as [`end_abandoned_job`] does, without writing to its connector: for a job
/// whose connector is gone (Python's orphaned-job cleanup writes only the job).
pub async fn end_orphaned_job(
    control: &dyn ControlPlane,
    job: &SyncJob,
    status: JobStatus,
    error: Option<&str>,
) -> Result<(), BackendError> {
    let finish = JobFinish {
        status,
        error: error.map(str::to_string),
        indexed_document_count: job.indexed_document_count,
        deleted_document_count: job.deleted_document_count,
        indexed_document_volume: job.indexed_document_volume,
        total_document_count: job.total_document_count,
    };
    control.finish_sync_job(&job.id, &finish).await
}

/// The connector side of a job's end (Python's `Connector.sync_done`): the `last_*` fields of
/// the job's kind (both kinds when the job is unknown, so nothing stays `in_progress`),
/// `last_synced`, the counts of a terminated job, and the connector's status: `error` with the
/// reason when the job failed, cleared otherwise.
pub async fn write_connector_outcome(
    control: &dyn ControlPlane,
    connector_id: &str,
    job_type: Option<JobType>,
    status: JobStatus,
    error: Option<&str>,
    counts: Option<(u64, u64)>,
) -> Result<(), BackendError> {
    let error = match (error, status) {
        (None, JobStatus::Error) => Some(UNKNOWN_ERROR),
        (e, _) => e,
    };
    let mut last = LastSync {
        last_synced: Some(Timestamp::now()),
        ..Default::default()
    };
    let content = !matches!(job_type, Some(JobType::AccessControl));
    let access_control = !matches!(job_type, Some(JobType::Full | JobType::Incremental));
    if content {
        last.last_sync_status = Some(status);
        last.last_sync_error = Some(error.map(str::to_string));
    }
    if access_control {
        last.last_access_control_sync_status = Some(status);
        last.last_access_control_sync_error = Some(error.map(str::to_string));
    }
    if let Some((indexed, deleted)) = counts {
        last.last_indexed_document_count = Some(indexed);
        last.last_deleted_document_count = Some(deleted);
    }
    control.update_last_sync(connector_id, &last).await?;
    let connector_error = (status == JobStatus::Error).then_some(error).flatten();
    control.update_error(connector_id, connector_error).await
}
