//! The job runner: one sync job from claim to final status, as the connector protocol has a
//! connectors service do it (PROTOCOL §5.4–5.6). Guard and claim, build the source from the
//! job's snapshot, run the pipeline while checking in, reporting stats and watching for
//! cancellation or a lost claim, then write the job's final status and the connector's
//! last-sync fields. [`LiveJobs`] exposes the progress of running jobs to UIs.

use super::breaker::SharedBreaker;
use super::cleanup;
use super::dlq::DeadLetterStore;
use super::filtering::RuleEngine;
use super::lease;
use super::monitor::{ErrorMonitor, MonitorSettings};
use super::pipeline::{self, PipelineError, PipelineOutcome, PipelineParts, PipelineSettings};
use super::progress::{Counters, Phase, Progress, ProgressSnapshot};
use super::sink::{Sink, SinkSettings};
use crate::backend::{
    BackendError, ControlPlane, DocumentStore, GuardAttempt, JobFinish, LastSync, PriorSync,
    SyncJobQuery,
};
use crate::config::{BreakerSettings, EngineSettings};
use crate::model::SyncStats;
use crate::model::validate::validate_field;
use crate::model::{Connector, JobStatus, JobType, SyncJob, Timestamp, TriggerMethod};
use crate::sources::{DataSource, Registry, SyncMode};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
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
    /// This engine cannot run the connector (see [`Engine::can_run`]); nothing was created.
    #[error("{0}")]
    Refused(String),
}

/// The jobs this process is running, for consoles and `/status`.
#[derive(Default)]
pub struct LiveJobs {
    jobs: Mutex<BTreeMap<String, LiveJob>>,
    /// Event sinks attached to jobs not yet running (`sync --events`), taken when they start.
    events: Mutex<BTreeMap<String, super::events::EventSink>>,
}

#[derive(Clone)]
struct LiveJob {
    progress: Arc<Progress>,
    cancel: CancellationToken,
    stop: Arc<Mutex<Option<StopReason>>>,
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
        self.lock()
            .get(job_id)
            .map(|j| {
                // A stop asked for here is a cancel: the job ends `canceled`, not `error`.
                j.stop
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(StopReason::Canceled);
                j.cancel.cancel()
            })
            .is_some()
    }

    /// Sends every final outcome of job `job_id`, once it runs here, to `sink`.
    pub fn attach_events(&self, job_id: &str, sink: super::events::EventSink) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id.to_string(), sink);
    }

    /// Detaches job `job_id`'s event sink, whether the job ran or not, so the events file
    /// can be finished.
    pub fn detach_events(&self, job_id: &str) {
        self.take_events(job_id);
        if let Some(progress) = self.progress(job_id) {
            progress.close_events();
        }
    }

    fn take_events(&self, job_id: &str) -> Option<super::events::EventSink> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(job_id)
    }

    fn insert(&self, id: &str, job: LiveJob) {
        self.lock().insert(id.to_string(), job);
    }

    /// Drops the finished jobs of connectors not in `served`. A finished job stays until a
    /// newer one of its connector replaces it, and a deleted connector gets none: its last
    /// job would stay in `/status` and `/metrics` for the life of a `serve` process.
    pub fn retire_unserved(&self, served: &HashSet<&str>) {
        self.lock().retain(|_, j| {
            served.contains(j.progress.connector_id.as_str())
                || !j.progress.snapshot().phase.is_done()
        });
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

/// A connector's configuration checked as a connectors service checks it before it syncs or
/// pings: each field's own rules (type, required, `validations`), then the source's.
pub fn validate_configuration(
    factory: &dyn crate::sources::SourceFactory,
    config: &crate::model::Configuration,
) -> Result<(), String> {
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
        .map_err(|e| format!("invalid configuration: {e}"))
}

/// The rule behind [`Engine::can_run`], over the service types an engine's registry has (the
/// console holds that list without an engine): the service type is among them, and the job
/// type is one its source supports (no built-in source syncs access control).
pub fn runnable<S: AsRef<str>>(
    available: &[S],
    service_type: Option<&str>,
    job_type: JobType,
) -> Result<(), String> {
    let Some(service_type) = service_type.filter(|s| !s.is_empty()) else {
        return Err("it has no service type, so no source can sync it".into());
    };
    if !available.iter().any(|a| a.as_ref() == service_type) {
        let names: Vec<&str> = available.iter().map(AsRef::as_ref).collect();
        return Err(format!(
            "service type '{service_type}' is not one this engine runs (it has: {}); \
             queue the job for the connectors service that serves it",
            names.join(", ")
        ));
    }
    if job_type == JobType::AccessControl {
        return Err(format!(
            "this engine's '{service_type}' source has no access-control sync; \
             queue the job for the connectors service that serves it"
        ));
    }
    Ok(())
}

/// The per-connector part of [`runnable`] (see [`Engine::can_run_configured`]), over a
/// registry: `Err` with the source's reason when it refuses an incremental job for this
/// configuration.
pub fn refusal_for_configuration(
    registry: &crate::sources::Registry,
    service_type: Option<&str>,
    config: &crate::model::Configuration,
    job_type: JobType,
) -> Result<(), String> {
    if job_type != JobType::Incremental {
        return Ok(());
    }
    let refusal = service_type
        .and_then(|t| registry.get(t))
        .and_then(|f| f.incremental_refusal(config));
    refusal.map_or(Ok(()), Err)
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
    /// The job document was deleted while the job ran.
    JobGone,
    /// The connector was deleted while the job ran.
    ConnectorGone,
}

/// Why a start that a shutdown (SIGTERM, Ctrl-C) overtook did not happen.
const SHUT_DOWN_BEFORE_START: &str = "shutting down: the job was not started";

/// Sleeps for `wait`, or until `shutdown`, whichever comes first.
async fn pause(wait: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// How many times a start tries the guard (409s, takeovers, a holderless re-check) before it
/// gives up, as the Python service's `with_concurrency_control` bounds its retries.
const GUARD_ATTEMPTS: u32 = 6;

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
        let job_id = self.create_job_to_run(connector_id, job_type).await?;
        let report = self.run_job(&job_id, shutdown).await?;
        self.discard_unstarted(&report).await;
        Ok(report)
    }

    /// Creates an on-demand job for a connector this engine can run ([`Self::can_run`]); for
    /// any other, refuses with the reason and creates nothing.
    pub async fn create_job_to_run(
        &self,
        connector_id: &str,
        job_type: JobType,
    ) -> Result<String, EngineError> {
        let control = &self.deps.control;
        let connector = control.get_connector(connector_id).await?;
        self.can_run(&connector, job_type)
            .map_err(EngineError::Refused)?;
        Ok(control
            .create_sync_job(connector_id, job_type, TriggerMethod::OnDemand)
            .await?)
    }

    /// A start refused after its job was created leaves no job behind: a job that did not run
    /// here and is still `pending` is deleted. The delete is guarded by what was read (see
    /// [`ControlPlane::delete_sync_job_if_unchanged`]), so a job another worker claimed
    /// meanwhile is never deleted. Returns whether it was.
    pub async fn discard_unstarted(&self, report: &JobReport) -> bool {
        if !matches!(report.end, JobEnd::Skipped { .. }) {
            return false;
        }
        let control = &self.deps.control;
        match control.get_sync_job(&report.job_id).await {
            Ok(job) if job.status == JobStatus::Pending => {
                match control.delete_sync_job_if_unchanged(&job).await {
                    Ok(deleted) => deleted,
                    Err(e) => {
                        tracing::warn!(job = %report.job_id, error = %e, "could not delete a job that did not run");
                        false
                    }
                }
            }
            _ => false,
        }
    }

    /// Whether this engine can run a `job_type` job of `connector`: its service type is in the
    /// registry, and the job type is one its source supports. `Err` says why, naming the
    /// service type and what this engine has, for the operator: such a job is left `pending`
    /// for the connectors service that can run it. The one rule for `sync`, the console and
    /// `serve`.
    pub fn can_run(&self, connector: &Connector, job_type: JobType) -> Result<(), String> {
        self.can_run_service(connector.service_type.as_deref(), job_type)
            .and_then(|()| {
                self.can_run_configured(
                    connector.service_type.as_deref(),
                    &connector.configuration,
                    job_type,
                )
            })
            .map_err(|why| format!("connector '{}': {why}", connector.id))
    }

    /// The part of [`Self::can_run`] that depends on the connector's configuration: an
    /// incremental job of a source whose incremental mode needs a setting the connector lacks
    /// (a database without `cursor_column`).
    pub fn can_run_configured(
        &self,
        service_type: Option<&str>,
        config: &crate::model::Configuration,
        job_type: JobType,
    ) -> Result<(), String> {
        refusal_for_configuration(&self.deps.registry, service_type, config, job_type)
    }

    /// Copies into the job's configuration the source's optional fields that `live` (the
    /// connector as it is now) has and the job's snapshot lacks.
    fn add_optional_fields(&self, job: &mut SyncJob, live: &crate::model::Configuration) {
        let Some(factory) = job
            .connector
            .service_type
            .as_deref()
            .and_then(|t| self.deps.registry.get(t))
        else {
            return;
        };
        for key in factory.optional_fields().0.keys() {
            if !job.connector.configuration.0.contains_key(key)
                && let Some(field) = live.0.get(key)
            {
                job.connector
                    .configuration
                    .0
                    .insert(key.clone(), field.clone());
            }
        }
    }

    /// [`Self::can_run`] from a service type alone (a job's connector snapshot has one too).
    pub fn can_run_service(
        &self,
        service_type: Option<&str>,
        job_type: JobType,
    ) -> Result<(), String> {
        runnable(&self.deps.registry.service_types(), service_type, job_type)
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
        // A job of a type this engine cannot run is left alone, guard and connector
        // untouched, for the service that can (as the Python service leaves it `pending`).
        // One of a type it runs but whose connector's configuration cannot (an incremental
        // job of a database without `cursor_column`) is claimed and ends `error` with the
        // reason, as Python's runner ends it ("does not support incremental sync"): left
        // pending, nothing would ever end it.
        if let Err(why) = self.can_run_service(job.connector.service_type.as_deref(), job.job_type)
        {
            return Ok(skipped(format!("connector '{connector_id}': {why}")));
        }
        let prior = match self.take_guard(&job, shutdown).await? {
            Ok(prior) => prior,
            Err(refused) => return Ok(skipped(refused)),
        };
        // Another worker may have run the job between the read above and the guard, and
        // Elasticsearch would accept a second claim: look again before claiming.
        match control.get_sync_job(job_id).await {
            Ok(current) if matches!(current.status, JobStatus::Pending | JobStatus::Suspended) => {}
            Ok(current) => {
                self.release_guard(job_id, &connector_id, job.job_type, &prior)
                    .await;
                return Ok(skipped(format!("the job is {}", current.status)));
            }
            Err(e) => {
                self.release_guard(job_id, &connector_id, job.job_type, &prior)
                    .await;
                return Err(e.into());
            }
        }
        // The job's snapshot has no cursor on Elasticsearch (`_claim` is what brings it):
        // an incremental job resumes from the connector's saved cursor.
        // The source's opt-in fields (`cursor_column`) the operator set after the job was
        // created count too: taken from the live connector when the snapshot lacks them.
        let mut job = job;
        if job.job_type == JobType::Incremental {
            match control.get_connector(&connector_id).await {
                Ok(connector) => {
                    if job.connector.sync_cursor.is_none() {
                        job.connector.sync_cursor = connector.sync_cursor;
                    }
                    self.add_optional_fields(&mut job, &connector.configuration);
                }
                Err(e) => {
                    tracing::warn!(connector = %connector_id, error = %e, "could not read the saved cursor")
                }
            }
        }
        // A full sync writes a `null` cursor (Python's `sync_done`): no cursor at all.
        if job
            .connector
            .sync_cursor
            .as_ref()
            .is_some_and(Value::is_null)
        {
            job.connector.sync_cursor = None;
        }
        let cursor = (job.job_type == JobType::Incremental)
            .then(|| job.connector.sync_cursor.clone())
            .flatten();
        // A shutdown while the guard was taken: give it back rather than claim a job that
        // would only be suspended at once.
        if shutdown.is_cancelled() {
            self.release_guard(job_id, &connector_id, job.job_type, &prior)
                .await;
            return Ok(skipped(SHUT_DOWN_BEFORE_START.to_string()));
        }
        match control
            .claim_sync_job(job_id, &self.deps.worker, cursor.as_ref())
            .await
        {
            Ok(()) => {}
            Err(BackendError::Conflict(reason)) => {
                self.release_guard(job_id, &connector_id, job.job_type, &prior)
                    .await;
                return Ok(skipped(format!("claimed by another worker: {reason}")));
            }
            Err(e) => {
                self.release_guard(job_id, &connector_id, job.job_type, &prior)
                    .await;
                return Err(e.into());
            }
        }
        // From here on, any failure ends the job as `error`.
        let started = Instant::now();
        let progress = Arc::new(
            Progress::new(job_id, &connector_id, &index).with_events(self.live.take_events(job_id)),
        );
        let job_cancel = shutdown.child_token();
        let stop = Arc::new(Mutex::new(None::<StopReason>));
        self.live.insert(
            job_id,
            LiveJob {
                progress: progress.clone(),
                cancel: job_cancel.clone(),
                stop: stop.clone(),
            },
        );
        self.live.retire_older(&connector_id, job_id);
        let outcome = self
            .execute(&job, progress.clone(), job_cancel.clone(), stop.clone())
            .await;
        let stop_reason = stop.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A vanished job or connector decides the end even of a pipeline that got to its
        // end meanwhile: the writes that follow are those of a vanished one.
        let end = match (&outcome, &stop_reason) {
            (_, Some(StopReason::JobGone)) => JobEnd::Failed {
                error: cleanup::JOB_NOT_FOUND_ERROR.to_string(),
            },
            (_, Some(StopReason::ConnectorGone)) => JobEnd::Failed {
                error: format!("the connector '{connector_id}' was deleted while the job ran"),
            },
            (Ok(_), _) => JobEnd::Completed,
            (Err(_), _) if shutdown.is_cancelled() => JobEnd::Suspended,
            (Err(_), Some(StopReason::Canceled)) => JobEnd::Canceled,
            (Err(_), Some(StopReason::Lost(reason))) => JobEnd::Skipped {
                reason: reason.clone(),
            },
            (Err(_), Some(StopReason::Stalled(reason))) => JobEnd::Failed {
                error: reason.clone(),
            },
            // Stopped through `LiveJobs::stop` (SIGTERM, Ctrl-C, the console) before the
            // heartbeat saw the job `canceling`: a cancellation all the same.
            (Err(_), None) if job_cancel.is_cancelled() => JobEnd::Canceled,
            (Err(e), None) => JobEnd::Failed { error: e.clone() },
        };
        // The reason goes to the job's and the connector's `error` in the cluster, the log and
        // the screen: whatever its origin, no secret of the job (nor a derived form) goes
        // with it.
        let end = match end {
            JobEnd::Failed { error } => JobEnd::Failed {
                error: crate::secret::masked(&error),
            },
            other => other,
        };
        let total = match &stop_reason {
            Some(StopReason::JobGone | StopReason::ConnectorGone) => {
                self.finish_vanished(&job, &end, &progress, stop_reason.as_ref())
                    .await;
                None
            }
            _ => {
                self.finish(&job, &end, &progress, outcome.as_ref().ok())
                    .await
            }
        };
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

    /// Takes the connector's start guard for `job` (PROTOCOL §5.4). A 409 is retried with a
    /// fresh read. A guard held by a job whose worker is gone (provably dead, or silent past
    /// its lease) is taken over: the orphan is ended through `cleanup` (`error` with the reason,
    /// its last counts kept; a `canceling` orphan ends `canceled`), then the guard is taken as
    /// usual, seq_no-guarded. A guard no job holds, after a short re-check, was set by a
    /// process that died between guard and claim, and is taken over the same way.
    /// `Ok(Err(reason))`: a live worker holds it, it stayed contended, or `shutdown` came
    /// first (its waits end at once, and nothing is taken over after it).
    async fn take_guard(
        &self,
        job: &SyncJob,
        shutdown: &CancellationToken,
    ) -> Result<Result<PriorSync, String>, BackendError> {
        let control = &self.deps.control;
        let connector_id = &job.connector.id;
        let mut holderless_checked = false;
        for attempt in 0..GUARD_ATTEMPTS {
            if shutdown.is_cancelled() {
                return Ok(Err(SHUT_DOWN_BEFORE_START.to_string()));
            }
            match control.try_start_guard(connector_id, job.job_type).await? {
                GuardAttempt::Taken(prior) => return Ok(Ok(prior)),
                GuardAttempt::Conflict => {
                    tracing::debug!(connector = %connector_id, attempt, "start guard conflict; reading again");
                    pause(Duration::from_millis(20 << attempt), shutdown).await;
                    continue;
                }
                GuardAttempt::Held => {}
            }
            let holders = self.guard_holders(job).await?;
            if holders.is_empty() {
                if !holderless_checked {
                    // The holder may be between its guard and its claim: give it that time.
                    holderless_checked = true;
                    pause(self.holderless_recheck(), shutdown).await;
                    continue;
                }
                if shutdown.is_cancelled() {
                    return Ok(Err(SHUT_DOWN_BEFORE_START.to_string()));
                }
                let reason = "the worker that set this guard never claimed a job (it stopped between the guard and the claim)";
                tracing::warn!(connector = %connector_id, "taking over a start guard no job holds");
                cleanup::write_connector_outcome(
                    control.as_ref(),
                    connector_id,
                    Some(job.job_type),
                    JobStatus::Error,
                    Some(reason),
                    None,
                )
                .await?;
                // Another worker may win the guard now and be between its guard and its
                // claim: a guard seen without a holder again gets its own re-check.
                holderless_checked = false;
                continue;
            }
            let now = Timestamp::now();
            let timeout = self.deps.settings.idle_job_timeout;
            let mut orphans = Vec::new();
            for holder in &holders {
                match lease::abandoned(holder, now, timeout) {
                    Some(reason) => orphans.push((holder, reason)),
                    None => {
                        return Ok(Err(format!(
                            "another worker is syncing this connector (job '{}' on '{}', last check-in {})",
                            holder.id,
                            holder
                                .worker_hostname
                                .as_deref()
                                .unwrap_or("an unknown worker"),
                            lease::last_sign_of_life(holder)
                                .map(|t| t.0.format("%H:%M:%S UTC").to_string())
                                .unwrap_or_else(|| "never".into())
                        )));
                    }
                }
            }
            if shutdown.is_cancelled() {
                return Ok(Err(SHUT_DOWN_BEFORE_START.to_string()));
            }
            for (orphan, reason) in orphans {
                let (status, error) = if orphan.status == JobStatus::Canceling {
                    (JobStatus::Canceled, None)
                } else {
                    (JobStatus::Error, Some(reason.as_str()))
                };
                tracing::warn!(job = %orphan.id, connector = %connector_id, %reason, %status, "taking over the start guard of an orphaned job");
                cleanup::end_abandoned_job(control.as_ref(), orphan, status, error).await?;
            }
        }
        Ok(Err(format!(
            "the start guard of connector '{connector_id}' stayed contended after {GUARD_ATTEMPTS} tries; try again"
        )))
    }

    /// Whether a start of `job` would take its connector's held guard over: no job holds it
    /// (its setter died between guard and claim), or every holder is abandoned (provably
    /// dead, or silent past its lease). `serve` asks before starting a job whose guard is
    /// held, so it takes over at once as `sync` does, and leaves a live holder alone.
    pub async fn guard_takeover_due(&self, job: &SyncJob) -> Result<bool, BackendError> {
        let now = Timestamp::now();
        let timeout = self.deps.settings.idle_job_timeout;
        let holders = self.guard_holders(job).await?;
        Ok(holders
            .iter()
            .all(|holder| lease::abandoned(holder, now, timeout).is_some()))
    }

    /// The jobs that may hold the guard of `job`'s kind: running or canceling jobs of its
    /// connector, other than itself.
    async fn guard_holders(&self, job: &SyncJob) -> Result<Vec<SyncJob>, BackendError> {
        let job_types = match job.job_type {
            JobType::AccessControl => vec![JobType::AccessControl],
            _ => vec![JobType::Full, JobType::Incremental],
        };
        let mut holders = Vec::new();
        for status in [JobStatus::InProgress, JobStatus::Canceling] {
            let query = SyncJobQuery {
                connector_id: Some(job.connector.id.clone()),
                status: Some(status),
                job_types: job_types.clone(),
                size: Some(100),
                ..Default::default()
            };
            let page = self.deps.control.list_sync_jobs(&query).await?;
            holders.extend(page.results.into_iter().filter(|j| j.id != job.id));
        }
        Ok(holders)
    }

    /// How long a guard with no holder job is given to show one: a worker claims its job a
    /// request or two after its guard.
    fn holderless_recheck(&self) -> Duration {
        self.deps
            .settings
            .check_interval
            // Longer than Elasticsearch's default refresh (1 s): a claim made meanwhile must be
            // visible to the holder search before the guard is called holderless.
            .clamp(Duration::from_secs(2), Duration::from_secs(5))
    }

    /// Runs the job while the heartbeat task watches it: from the start, so that a cancel, a
    /// deleted job or connector, and check-ins are handled while the source is prepared too.
    async fn execute(
        &self,
        job: &SyncJob,
        progress: Arc<Progress>,
        cancel: CancellationToken,
        stop: Arc<Mutex<Option<StopReason>>>,
    ) -> Result<PipelineOutcome, String> {
        let breaker = SharedBreaker::new(self.deps.breaker.clone());
        let (checkpoint_tx, checkpoint_rx) = tokio::sync::mpsc::unbounded_channel();
        let beat_done = CancellationToken::new();
        // Stops the heartbeat if this future never gets to its end (a panic unwinding it, or
        // a drop): a detached heartbeat would go on checking in a job nobody runs.
        let _stop_beat_if_unwound = beat_done.clone().drop_guard();
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
        let result = self
            .prepare_and_run(job, &progress, &cancel, &breaker, checkpoint_tx)
            .await;
        // Stopped, not aborted: a checkpoint being written must land before the final cursor
        // does (an aborted write to the embedded store still finishes, later, and won).
        beat_done.cancel();
        let _ = heartbeat.await;
        // The heartbeat samples the breaker once a second: keep how it ended, not a
        // snapshot up to a second old.
        progress.set_breaker(breaker.snapshot());
        result
    }

    /// Builds the source and runs the pipeline. Every wait before the pipeline (validation,
    /// ping, index creation) gives way to `cancel`, so a SIGTERM while `starting` ends the job
    /// within seconds.
    async fn prepare_and_run(
        &self,
        job: &SyncJob,
        progress: &Arc<Progress>,
        cancel: &CancellationToken,
        breaker: &SharedBreaker,
        checkpoint_tx: tokio::sync::mpsc::UnboundedSender<Value>,
    ) -> Result<PipelineOutcome, String> {
        const CANCELED: &str = "the sync was canceled";
        progress.set_step("checking the configuration, pinging the source");
        let prepared = tokio::select! {
            prepared = self.prepare(job) => prepared?,
            _ = cancel.cancelled() => return Err(CANCELED.into()),
        };
        let (source, mode, index) = prepared;
        progress.set_source_notes(source.notes());
        progress.set_step("creating the index");
        let ensured = tokio::select! {
            ensured = self.deps.store.ensure_index(&index, None) => ensured,
            _ = cancel.cancelled() => return Err(CANCELED.into()),
        };
        if let Err(e) = ensured {
            return Err(format!("cannot create index '{index}': {e}"));
        }
        super::dlq::bind_cluster(&self.deps.dlq, self.deps.control.as_ref()).await?;
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
            // Python skips unchanged documents only in incremental syncs (a full listing of a
            // source without its own incremental mode); a full sync sends everything, unless
            // the profile opts in.
            skip_unchanged: job.job_type == JobType::Incremental || settings.skip_unchanged,
        };
        pipeline::run(source, parts, pipeline_settings, cancel.clone())
            .await
            .map_err(|e| match e {
                PipelineError::Canceled => CANCELED.to_string(),
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
        if job.job_type == JobType::Incremental
            && let Some(why) = factory.incremental_refusal(config)
        {
            return Err(format!(
                "Connector {} does not support incremental sync: {why}",
                job.connector.id
            ));
        }
        validate_configuration(factory.as_ref(), config)?;
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
        let advanced = job
            .connector
            .filtering
            .as_ref()
            .map(|f| &f.advanced_snippet.value);
        let mut source = factory
            .create_for_sync(config, advanced)
            .map_err(|e| e.to_string())?;
        source
            .ping()
            .await
            .map_err(|e| format!("the source is not reachable: {e}"))?;
        let mode = match job.job_type {
            JobType::Incremental if factory.supports_incremental_for(config) => {
                SyncMode::Incremental {
                    cursor: job.connector.sync_cursor.clone(),
                }
            }
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
        let metadata = match (
            outcome.and_then(|o| o.job_metadata()),
            progress.source_metadata(),
        ) {
            (Some(mut ours), Some(source)) => {
                ours.extend(source);
                Some(ours)
            }
            (ours, source) => ours.or(source),
        };
        if let Some(metadata) = metadata {
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
        // The cursor is saved only after a completed content sync, and then always: a sync
        // whose source gave none resets it to `null`, as the Python service's `sync_done`.
        if status == JobStatus::Completed && !acl {
            last.sync_cursor = Some(
                outcome
                    .and_then(|o| o.cursor.clone())
                    .unwrap_or(Value::Null),
            );
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

    /// Ends a job whose job document or connector vanished while it ran, as the Python
    /// service does: a deleted job leaves its connector `error` with "Couldn't find the job"
    /// (for the job's kind only, so the guard of a running job of the other kind is left
    /// alone); a deleted connector gets nothing, and the job, if still there, fails.
    async fn finish_vanished(
        &self,
        job: &SyncJob,
        end: &JobEnd,
        progress: &Progress,
        reason: Option<&StopReason>,
    ) {
        let control = self.deps.control.as_ref();
        let counters = progress.counters();
        progress.set_phase(Phase::Finishing);
        match reason {
            Some(StopReason::JobGone) => {
                tracing::warn!(job = %job.id, connector = %job.connector.id, "the job was deleted while it ran");
                if let Err(e) = cleanup::write_connector_outcome(
                    control,
                    &job.connector.id,
                    Some(job.job_type),
                    JobStatus::Error,
                    Some(cleanup::JOB_NOT_FOUND_ERROR),
                    None,
                )
                .await
                {
                    tracing::warn!(connector = %job.connector.id, error = %e, "could not write the connector's last sync");
                }
            }
            _ => {
                tracing::warn!(job = %job.id, connector = %job.connector.id, "the connector was deleted while the job ran");
                let error = match end {
                    JobEnd::Failed { error } => Some(error.clone()),
                    _ => None,
                };
                let finish = JobFinish {
                    status: JobStatus::Error,
                    error,
                    indexed_document_count: counters.indexed + counters.updated,
                    deleted_document_count: counters.deleted,
                    indexed_document_volume: (counters.bytes as f64 / 1_048_576.0).round() as u64,
                    total_document_count: None,
                };
                match control.finish_sync_job(&job.id, &finish).await {
                    Ok(()) | Err(BackendError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = %e, "could not write the job's final status")
                    }
                }
            }
        }
    }

    /// Undoes the start guard when the job will not run here, so the connector is not stuck
    /// `in_progress`. When the job has ended (another worker ran it), its outcome is what that
    /// worker wrote on the connector, so that goes back; otherwise what the connector said
    /// before the guard (`prior`), never a `canceled` for a job that did not run.
    async fn release_guard(
        &self,
        job_id: &str,
        connector_id: &str,
        job_type: JobType,
        prior: &PriorSync,
    ) {
        let control = &self.deps.control;
        let result = match control.get_sync_job(job_id).await {
            Ok(job) if job.status.is_terminal() => {
                let mut last = LastSync::default();
                if job_type == JobType::AccessControl {
                    last.last_access_control_sync_status = Some(job.status);
                    last.last_access_control_sync_error = Some(job.error);
                } else {
                    last.last_sync_status = Some(job.status);
                    last.last_sync_error = Some(job.error);
                }
                control.update_last_sync(connector_id, &last).await
            }
            _ => {
                control
                    .restore_last_sync(connector_id, job_type, prior)
                    .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(connector = connector_id, error = %e, "could not release the sync guard");
        }
    }

    /// How long a job may go without progress before the watchdog fails it: its whole
    /// retry budget (breaker open limit plus every item retry at the longest delay).
    pub fn stall_budget(&self) -> Duration {
        let s = &self.deps.settings;
        // Saturating: the durations and counts come from the configuration file, and no
        // value there may crash a running job (a panic here once did).
        let item_retries = crate::config::saturating_budget(
            s.retry_max,
            s.item_max_retries.saturating_add(1),
            Duration::ZERO,
        )
        .max(s.item_retry_budget);
        crate::config::saturating_budget(self.deps.breaker.max_open, 1, item_retries)
            .saturating_add(Duration::from_secs(60))
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
    let mut last_progress = (Instant::now(), progress.activity());
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
        progress.set_breaker(breaker.snapshot());
        let counters = progress.counters();
        let activity = progress.activity();
        if activity != last_progress.1 {
            last_progress = (now, activity);
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
                // What the source says about its sync so far (tables, rows per table).
                metadata: progress.source_metadata(),
            };
            if let Err(e) = control.update_sync_job_stats(&job_id, &stats).await {
                tracing::warn!(job = %job_id, error = %e, "could not report stats");
            }
        }
        if now.duration_since(last_check) >= settings.check_interval {
            last_check = now;
            // Python's `check_job`: the connector first, then the job.
            match control.get_connector(&connector_id).await {
                Err(BackendError::NotFound(_)) => {
                    set_stop(StopReason::ConnectorGone);
                    return;
                }
                Ok(c) if c.deleted => {
                    set_stop(StopReason::ConnectorGone);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(connector = %connector_id, error = %e, "could not check the connector")
                }
            }
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
                    set_stop(StopReason::JobGone);
                    return;
                }
                Err(e) => tracing::warn!(job = %job_id, error = %e, "could not check the job"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finished jobs of connectors no longer served leave; running ones, and those of
    /// served connectors, stay.
    #[test]
    fn finished_jobs_of_connectors_no_longer_served_leave() {
        let live = LiveJobs::default();
        let job = |id: &str, connector: &str, phase: Phase| {
            let progress = Arc::new(Progress::new(id, connector, "index"));
            progress.set_phase(phase);
            live.insert(
                id,
                LiveJob {
                    progress,
                    cancel: CancellationToken::new(),
                    stop: Arc::new(Mutex::new(None)),
                },
            );
        };
        job("j1", "served", Phase::Completed);
        job("j2", "deleted", Phase::Completed);
        job("j3", "deleted-but-running", Phase::Extracting);
        job("j4", "deleted-and-failed", Phase::Failed);
        live.retire_unserved(&HashSet::from(["served"]));
        assert_eq!(live.job_ids(), ["j1", "j3"]);
    }
}
