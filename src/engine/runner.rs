//! The job runner: one sync job from claim to final status, as the connector protocol has a
//! connectors service do it (PROTOCOL §5.4–5.6). Guard and claim, build the source from the
//! job's snapshot, run the pipeline while checking in, reporting stats and watching for
//! cancellation or a lost claim, then write the job's final status and the connector's
//! last-sync fields. [`LiveJobs`] exposes the progress of running jobs to UIs.

use super::breaker::SharedBreaker;
use super::dlq::DeadLetterStore;
use super::filtering::RuleEngine;
use super::monitor::{ErrorMonitor, MonitorSettings};
use super::pipeline::{self, PipelineError, PipelineOutcome, PipelineParts, PipelineSettings};
use super::progress::{Counters, Phase, Progress, ProgressSnapshot};
use super::sink::{Sink, SinkSettings};
use crate::backend::{BackendError, ControlPlane, DocumentStore, JobFinish, LastSync};
use crate::config::{BreakerSettings, EngineSettings};
use crate::model::SyncStats;
use crate::model::validate::validate_field;
use crate::model::{JobStatus, JobType, SyncJob, Timestamp, TriggerMethod};
use crate::sources::{DataSource, Registry, SyncMode};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// What the engine is built from.
#[derive(Clone)]
pub struct EngineDeps {
    pub control: Arc<dyn ControlPlane>,
    pub store: Arc<dyn DocumentStore>,
    pub dlq: Arc<DeadLetterStore>,
    pub registry: Registry,
    pub settings: EngineSettings,
    pub breaker: BreakerSettings,
    /// This worker's name in `worker_hostname`.
    pub worker: String,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum JobEnd {
    Completed,
    Failed {
        error: String,
    },
    Canceled,
    /// Stopped by a shutdown; a worker picks it up again.
    Suspended,
    /// Not run: another worker has it, or it was no longer pending.
    Skipped {
        reason: String,
    },
}

/// The summary of one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReport {
    pub job_id: String,
    pub connector_id: String,
    pub index: String,
    #[serde(flatten)]
    pub end: JobEnd,
    pub counters: Counters,
    pub total_document_count: Option<u64>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Invalid(String),
}

/// The jobs this process is running, for consoles and `/status`.
#[derive(Default)]
pub struct LiveJobs {
    jobs: Mutex<BTreeMap<String, LiveJob>>,
}

#[derive(Clone)]
struct LiveJob {
    progress: Arc<Progress>,
    cancel: CancellationToken,
}

impl LiveJobs {
    pub fn snapshots(&self) -> Vec<ProgressSnapshot> {
        self.lock()
            .values()
            .map(|j| j.progress.snapshot())
            .collect()
    }

    pub fn progress(&self, job_id: &str) -> Option<Arc<Progress>> {
        self.lock().get(job_id).map(|j| j.progress.clone())
    }

    pub fn job_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Stops a job of this process at once (the cluster-side cancel goes through
    /// `cancel_sync_job`; this is for the local engine's own stop button).
    pub fn stop(&self, job_id: &str) -> bool {
        self.lock().get(job_id).map(|j| j.cancel.cancel()).is_some()
    }

    fn insert(&self, id: &str, job: LiveJob) {
        self.lock().insert(id.to_string(), job);
    }

    /// Finished jobs stay visible until a newer one of the same connector replaces them.
    fn retire_older(&self, connector_id: &str, keep: &str) {
        self.lock().retain(|id, j| {
            id == keep
                || j.progress.connector_id != connector_id
                || !j.progress.snapshot().phase.is_done()
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LiveJob>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The engine: runs jobs against a backend.
#[derive(Clone)]
pub struct Engine {
    deps: EngineDeps,
    live: Arc<LiveJobs>,
}

/// Why the job stopped early, decided by whoever stopped it.
#[derive(Debug, Clone, PartialEq)]
enum StopReason {
    Canceled,
    Lost(String),
    Stalled(String),
}

impl Engine {
    pub fn new(deps: EngineDeps) -> Self {
        Self {
            deps,
            live: Arc::new(LiveJobs::default()),
        }
    }

    pub fn deps(&self) -> &EngineDeps {
        &self.deps
    }

    pub fn live(&self) -> Arc<LiveJobs> {
        self.live.clone()
    }

    /// `syncdeck sync`: creates an on-demand job for a connector and runs it here.
    pub async fn sync_once(
        &self,
        connector_id: &str,
        job_type: JobType,
        shutdown: &CancellationToken,
    ) -> Result<JobReport, EngineError> {
        let job_id = self
            .deps
            .control
            .create_sync_job(connector_id, job_type, TriggerMethod::OnDemand)
            .await?;
        self.run_job(&job_id, shutdown).await
    }

    /// Claims and runs one job. `shutdown` suspends it (the job can be resumed).
    pub async fn run_job(
        &self,
        job_id: &str,
        shutdown: &CancellationToken,
    ) -> Result<JobReport, EngineError> {
        let control = &self.deps.control;
        let job = control.get_sync_job(job_id).await?;
        let connector_id = job.connector.id.clone();
        let index = job.connector.index_name.clone().unwrap_or_default();
        let skipped = |reason: String| JobReport {
            job_id: job_id.to_string(),
            connector_id: connector_id.clone(),
            index: index.clone(),
            end: JobEnd::Skipped { reason },
            counters: Counters::default(),
            total_document_count: None,
            elapsed_ms: 0,
        };
        if !matches!(job.status, JobStatus::Pending | JobStatus::Suspended) {
            return Ok(skipped(format!("the job is {}", job.status)));
        }
        if !control
            .mark_sync_started(&connector_id, job.job_type)
            .await?
        {
            return Ok(skipped("another worker is syncing this connector".into()));
        }
        // Another worker may have run the job between the read above and the guard, and
        // Elasticsearch would accept a second claim: look again before claiming.
        match control.get_sync_job(job_id).await {
            Ok(current) if matches!(current.status, JobStatus::Pending | JobStatus::Suspended) => {}
            Ok(current) => {
                self.release_guard(job_id, &connector_id, job.job_type)
                    .await;
                return Ok(skipped(format!("the job is {}", current.status)));
            }
            Err(e) => {
                self.release_guard(job_id, &connector_id, job.job_type)
                    .await;
                return Err(e.into());
            }
        }
        // The job's snapshot has no cursor on Elasticsearch (`_claim` is what brings it):
        // an incremental job resumes from the connector's saved cursor.
        let mut job = job;
        if job.job_type == JobType::Incremental && job.connector.sync_cursor.is_none() {
            match control.get_connector(&connector_id).await {
                Ok(connector) => job.connector.sync_cursor = connector.sync_cursor,
                Err(e) => {
                    tracing::warn!(connector = %connector_id, error = %e, "could not read the saved cursor")
                }
            }
        }
        let cursor = (job.job_type == JobType::Incremental)
            .then(|| job.connector.sync_cursor.clone())
            .flatten();
        match control
            .claim_sync_job(job_id, &self.deps.worker, cursor.as_ref())
            .await
        {
            Ok(()) => {}
            Err(BackendError::Conflict(reason)) => {
                self.release_guard(job_id, &connector_id, job.job_type)
                    .await;
                return Ok(skipped(format!("claimed by another worker: {reason}")));
            }
            Err(e) => {
                self.release_guard(job_id, &connector_id, job.job_type)
                    .await;
                return Err(e.into());
            }
        }
        // From here on, any failure ends the job as `error`.
        let started = Instant::now();
        let progress = Arc::new(Progress::new(job_id, &connector_id, &index));
        let job_cancel = shutdown.child_token();
        self.live.insert(
            job_id,
            LiveJob {
                progress: progress.clone(),
                cancel: job_cancel.clone(),
            },
        );
        self.live.retire_older(&connector_id, job_id);
        let stop = Arc::new(Mutex::new(None::<StopReason>));
        let outcome = self
            .execute(&job, progress.clone(), job_cancel.clone(), stop.clone())
            .await;
        let stop_reason = stop.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let end = match (&outcome, stop_reason) {
            (Ok(_), _) => JobEnd::Completed,
            (Err(_), _) if shutdown.is_cancelled() => JobEnd::Suspended,
            (Err(_), Some(StopReason::Canceled)) => JobEnd::Canceled,
            (Err(_), Some(StopReason::Lost(reason))) => JobEnd::Skipped { reason },
            (Err(_), Some(StopReason::Stalled(reason))) => JobEnd::Failed { error: reason },
            (Err(e), None) => JobEnd::Failed { error: e.clone() },
        };
        let total = self
            .finish(&job, &end, &progress, outcome.as_ref().ok())
            .await;
        progress.set_phase(match &end {
            JobEnd::Completed => Phase::Completed,
            JobEnd::Canceled | JobEnd::Suspended | JobEnd::Skipped { .. } => Phase::Canceled,
            JobEnd::Failed { error } => {
                progress.set_error(error.clone());
                Phase::Failed
            }
        });
        Ok(JobReport {
            job_id: job_id.to_string(),
            connector_id,
            index,
            end,
            counters: progress.counters(),
            total_document_count: total,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Builds the source and runs the pipeline while the heartbeat task watches the job.
    async fn execute(
        &self,
        job: &SyncJob,
        progress: Arc<Progress>,
        cancel: CancellationToken,
        stop: Arc<Mutex<Option<StopReason>>>,
    ) -> Result<PipelineOutcome, String> {
        let (source, mode, index) = self.prepare(job).await?;
        if let Err(e) = self.deps.store.ensure_index(&index, None).await {
            return Err(format!("cannot create index '{index}': {e}"));
        }
        super::dlq::bind_cluster(&self.deps.dlq, self.deps.control.as_ref()).await?;
        let breaker = SharedBreaker::new(self.deps.breaker.clone());
        let settings = &self.deps.settings;
        let sink = Arc::new(Sink::new(
            self.deps.store.clone(),
            self.deps.dlq.clone(),
            breaker.clone(),
            progress.clone(),
            ErrorMonitor::new(MonitorSettings::default()),
            SinkSettings {
                connector_id: job.connector.id.clone(),
                job_id: job.id.clone(),
                index: index.clone(),
                pipeline: job.connector.pipeline.as_ref().map(|p| p.name.clone()),
                item_max_retries: settings.item_max_retries,
                request_max_attempts: settings.item_max_retries.max(3) * 2,
                retry_base: settings.retry_base,
                retry_max: settings.retry_max,
            },
        ));
        let rules = match job.connector.filtering.as_ref() {
            Some(f) => {
                Some(RuleEngine::new(&f.rules).map_err(|e| format!("invalid sync rules: {e}"))?)
            }
            None => None,
        };
        let (checkpoint_tx, checkpoint_rx) = tokio::sync::mpsc::unbounded_channel();
        let parts = PipelineParts {
            store: self.deps.store.clone(),
            sink,
            dlq: self.deps.dlq.clone(),
            progress: progress.clone(),
            checkpoints: Some(checkpoint_tx),
        };
        let pipeline_settings = PipelineSettings {
            engine: settings.clone(),
            mode,
            rules,
            pipeline: job.connector.pipeline.clone(),
            transform: super::transform::FieldTransform::new(
                &settings.exclude_fields,
                &settings.hash_fields,
            ),
        };
        let beat_done = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            self.clone(),
            job.id.clone(),
            job.connector.id.clone(),
            progress.clone(),
            breaker.clone(),
            cancel.clone(),
            stop,
            checkpoint_rx,
            beat_done.clone(),
        ));
        let result = pipeline::run(source, parts, pipeline_settings, cancel.clone()).await;
        // Stopped, not aborted: a checkpoint being written must land before the final cursor
        // does (an aborted write to the embedded store still finishes, later, and won).
        beat_done.cancel();
        let _ = heartbeat.await;
        // The heartbeat samples the breaker once a second: keep how it ended, not a
        // snapshot up to a second old.
        if let Ok(snapshot) = serde_json::to_value(breaker.snapshot()) {
            progress.set_breaker(snapshot);
        }
        result.map_err(|e| match e {
            PipelineError::Canceled => "the sync was canceled".to_string(),
            other => other.to_string(),
        })
    }

    /// The source, the sync mode and the index, from the job's snapshot.
    async fn prepare(
        &self,
        job: &SyncJob,
    ) -> Result<(Box<dyn DataSource>, SyncMode, String), String> {
        let index = job
            .connector
            .index_name
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| format!("connector '{}' has no index name", job.connector.id))?;
        let service_type = job
            .connector
            .service_type
            .clone()
            .ok_or_else(|| format!("connector '{}' has no service type", job.connector.id))?;
        let factory = self.deps.registry.get(&service_type).ok_or_else(|| {
            format!(
                "no source for service type '{service_type}' (this engine has: {})",
                self.deps.registry.service_types().join(", ")
            )
        })?;
        let config = &job.connector.configuration;
        let issues: Vec<String> = config
            .fields_in_order()
            .into_iter()
            .flat_map(|(key, _)| validate_field(config, key))
            .map(|i| i.to_string())
            .collect();
        if !issues.is_empty() {
            return Err(format!("invalid configuration: {}", issues.join("; ")));
        }
        factory
            .validate(config)
            .map_err(|e| format!("invalid configuration: {e}"))?;
        // Advanced sync rules go to the source unchanged; it says whether it can apply them.
        if let Some(snippet) = job
            .connector
            .filtering
            .as_ref()
            .map(|f| &f.advanced_snippet.value)
        {
            let problems = factory.validate_advanced_rules(snippet);
            if !problems.is_empty() {
                return Err(format!(
                    "invalid advanced sync rules: {}",
                    problems.join("; ")
                ));
            }
        }
        let mut source = factory.create(config).map_err(|e| e.to_string())?;
        source
            .ping()
            .await
            .map_err(|e| format!("the source is not reachable: {e}"))?;
        let mode = match job.job_type {
            JobType::Incremental if factory.supports_incremental() => SyncMode::Incremental {
                cursor: job.connector.sync_cursor.clone(),
            },
            // Sources without their own incremental mode get a full listing (unchanged
            // documents are skipped by their timestamps).
            _ => SyncMode::Full,
        };
        Ok((source, mode, index))
    }

    /// Writes the final job document and the connector's last-sync fields. Returns the
    /// index's document count when it could be read.
    async fn finish(
        &self,
        job: &SyncJob,
        end: &JobEnd,
        progress: &Progress,
        outcome: Option<&PipelineOutcome>,
    ) -> Option<u64> {
        if let JobEnd::Skipped { reason } = end {
            tracing::warn!(job = %job.id, %reason, "job lost to another worker; leaving it alone");
            return None;
        }
        let control = &self.deps.control;
        let counters = progress.counters();
        progress.set_phase(Phase::Finishing);
        let index = job.connector.index_name.clone().unwrap_or_default();
        let total = if index.is_empty() {
            None
        } else {
            let _ = self.deps.store.refresh(&index).await;
            self.deps.store.count(&index).await.ok()
        };
        let (status, error) = match end {
            JobEnd::Completed => (JobStatus::Completed, None),
            JobEnd::Failed { error } => (JobStatus::Error, Some(error.clone())),
            JobEnd::Canceled => (JobStatus::Canceled, None),
            JobEnd::Suspended => (JobStatus::Suspended, None),
            JobEnd::Skipped { .. } => return None,
        };
        let finish = JobFinish {
            status,
            error: error.clone(),
            indexed_document_count: counters.indexed + counters.updated,
            deleted_document_count: counters.deleted,
            indexed_document_volume: (counters.bytes as f64 / 1_048_576.0).round() as u64,
            total_document_count: total,
        };
        // Written while the job is still running, with the final counts, before its end.
        if let Some(metadata) = outcome.and_then(|o| o.job_metadata()) {
            let stats = SyncStats {
                indexed_document_count: finish.indexed_document_count,
                deleted_document_count: finish.deleted_document_count,
                indexed_document_volume: finish.indexed_document_volume,
                total_document_count: total,
                last_seen: None,
                metadata: Some(metadata),
            };
            if let Err(e) = control.update_sync_job_stats(&job.id, &stats).await {
                tracing::warn!(job = %job.id, error = %e, "could not write the job's metadata");
            }
        }
        if let Err(e) = control.finish_sync_job(&job.id, &finish).await {
            tracing::error!(job = %job.id, error = %e, "could not write the job's final status");
        }
        let acl = job.job_type == JobType::AccessControl;
        let mut last = LastSync {
            last_synced: Some(Timestamp::now()),
            last_indexed_document_count: Some(finish.indexed_document_count),
            last_deleted_document_count: Some(finish.deleted_document_count),
            ..Default::default()
        };
        if acl {
            last.last_access_control_sync_status = Some(status);
            last.last_access_control_sync_error = Some(error.clone());
        } else {
            last.last_sync_status = Some(status);
            last.last_sync_error = Some(error.clone());
        }
        // The cursor is saved only after a completed content sync.
        if status == JobStatus::Completed
            && !acl
            && let Some(cursor) = outcome.and_then(|o| o.cursor.clone())
        {
            last.sync_cursor = Some(cursor);
        }
        if let Err(e) = control.update_last_sync(&job.connector.id, &last).await {
            tracing::error!(connector = %job.connector.id, error = %e, "could not write the connector's last sync");
        }
        let connector_error = match end {
            JobEnd::Failed { error } => Some(error.as_str()),
            _ => None,
        };
        if let Err(e) = control
            .update_error(&job.connector.id, connector_error)
            .await
        {
            tracing::warn!(connector = %job.connector.id, error = %e, "could not update the connector's status");
        }
        tracing::info!(job = %job.id, connector = %job.connector.id, status = %status, indexed = finish.indexed_document_count,
            deleted = finish.deleted_document_count, dead_lettered = counters.dead_lettered, "sync job finished");
        total
    }

    /// Undoes the start guard when the job will not run here, so the connector is not stuck
    /// `in_progress`. The guard overwrote the connector's last sync: when the job has ended
    /// (another worker ran it), its outcome is what that worker wrote there, so put it back.
    async fn release_guard(&self, job_id: &str, connector_id: &str, job_type: JobType) {
        let (status, error) = match self.deps.control.get_sync_job(job_id).await {
            Ok(job) if job.status.is_terminal() => (job.status, job.error),
            _ => (JobStatus::Canceled, None),
        };
        let mut last = LastSync::default();
        if job_type == JobType::AccessControl {
            last.last_access_control_sync_status = Some(status);
            last.last_access_control_sync_error = Some(error);
        } else {
            last.last_sync_status = Some(status);
            last.last_sync_error = Some(error);
        }
        if let Err(e) = self
            .deps
            .control
            .update_last_sync(connector_id, &last)
            .await
        {
            tracing::warn!(connector = connector_id, error = %e, "could not release the sync guard");
        }
    }

    /// How long a job may go without progress before the watchdog fails it: its whole
    /// retry budget (breaker open limit plus every item retry at the longest delay).
    pub fn stall_budget(&self) -> Duration {
        let s = &self.deps.settings;
        self.deps.breaker.max_open
            + s.retry_max * (s.item_max_retries + 1)
            + Duration::from_secs(60)
    }
}

/// While a job runs: samples progress every second, reports stats every `stats_interval`,
/// reloads the job every `check_interval` (cancellation, lost claim), releases checkpoints,
/// and fails the job when it makes no progress for longer than its retry budget.
#[allow(clippy::too_many_arguments)]
async fn heartbeat(
    engine: Engine,
    job_id: String,
    connector_id: String,
    progress: Arc<Progress>,
    breaker: SharedBreaker,
    cancel: CancellationToken,
    stop: Arc<Mutex<Option<StopReason>>>,
    mut checkpoints: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    done: CancellationToken,
) {
    let control = engine.deps.control.clone();
    let settings = engine.deps.settings.clone();
    let budget = engine.stall_budget();
    let worker = engine.deps.worker.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_stats = Instant::now();
    let mut last_check = Instant::now();
    let mut last_progress = (Instant::now(), progress.counters());
    let set_stop = |reason: StopReason| {
        let mut guard = stop.lock().unwrap_or_else(|p| p.into_inner());
        guard.get_or_insert(reason);
        cancel.cancel();
    };
    loop {
        tokio::select! {
            biased;
            _ = done.cancelled() => return,
            _ = tick.tick() => {}
            Some(cursor) = checkpoints.recv() => {
                let last = LastSync { sync_cursor: Some(cursor), ..Default::default() };
                if let Err(e) = control.update_last_sync(&connector_id, &last).await {
                    tracing::warn!(connector = %connector_id, error = %e, "could not save a checkpoint");
                }
                continue;
            }
        }
        let now = Instant::now();
        progress.sample(now);
        if let Ok(snapshot) = serde_json::to_value(breaker.snapshot()) {
            progress.set_breaker(snapshot);
        }
        let counters = progress.counters();
        if counters.handled() + counters.deleted
            != last_progress.1.handled() + last_progress.1.deleted
        {
            last_progress = (now, counters);
        } else if now.duration_since(last_progress.0) > budget {
            set_stop(StopReason::Stalled(format!(
                "no progress for {}s (the whole retry budget)",
                budget.as_secs()
            )));
            return;
        }
        if now.duration_since(last_stats) >= settings.stats_interval {
            last_stats = now;
            let stats = SyncStats {
                indexed_document_count: counters.indexed + counters.updated,
                deleted_document_count: counters.deleted,
                indexed_document_volume: (counters.bytes as f64 / 1_048_576.0).round() as u64,
                total_document_count: None,
                last_seen: None,
                metadata: None,
            };
            if let Err(e) = control.update_sync_job_stats(&job_id, &stats).await {
                tracing::warn!(job = %job_id, error = %e, "could not report stats");
            }
        }
        if now.duration_since(last_check) >= settings.check_interval {
            last_check = now;
            match control.get_sync_job(&job_id).await {
                Ok(job) if job.status == JobStatus::Canceling => {
                    tracing::info!(job = %job_id, "cancellation requested");
                    set_stop(StopReason::Canceled);
                    return;
                }
                Ok(job) if job.status != JobStatus::InProgress => {
                    set_stop(StopReason::Lost(format!(
                        "the job became {} elsewhere",
                        job.status
                    )));
                    return;
                }
                Ok(job) if job.worker_hostname.as_deref().is_some_and(|w| w != worker) => {
                    // Elasticsearch accepts a second claim: notice we lost the race.
                    set_stop(StopReason::Lost(format!(
                        "claimed by '{}'",
                        job.worker_hostname.unwrap_or_default()
                    )));
                    return;
                }
                Ok(_) => {
                    let _ = control.check_in_sync_job(&job_id).await;
                }
                Err(BackendError::NotFound(_)) => {
                    set_stop(StopReason::Lost("the job was deleted".into()));
                    return;
                }
                Err(e) => tracing::warn!(job = %job_id, error = %e, "could not check the job"),
            }
        }
    }
}
