//! `serve`: the connectors-service loop (PROTOCOL §5). Every tick it checks in the served
//! connectors, prepares and validates them, validates and activates edited draft sync rules,
//! creates scheduled jobs from their cron schedules, picks up pending jobs (oldest first) up
//! to the concurrency limit, and fails jobs whose worker stopped checking in. Any number of `serve` processes can share one cluster: claims
//! and the start guard make each job run on exactly one of them.

use super::filtering::{sync_rules_enabled, validate_draft};
use super::runner::{Engine, JobEnd, JobReport};
use super::schedule::{Schedule, is_due};
use crate::backend::{
    BackendError, ConfigurationUpdate, ConnectorQuery, ControlPlane, LastSync, SyncJobQuery,
};
use crate::model::validate::validate_field;
use crate::model::{
    Connector, ConnectorStatus, Features, FilteringValidationState, JobStatus, JobType, Timestamp,
    TriggerMethod,
};
use crate::sources::SourceFactory;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve only these connectors; empty: every connector whose service type this engine
    /// has a source for.
    pub connector_ids: Vec<String>,
    /// Time between ticks (the framework's `idling`, 30 s).
    pub idle: Duration,
    /// Connector heartbeat (`_check_in`) period.
    pub heartbeat: Duration,
    pub max_concurrent_syncs: usize,
    /// Stop after this many ticks (tests); `None` runs until shutdown.
    pub max_ticks: Option<u64>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connector_ids: Vec::new(),
            idle: Duration::from_secs(30),
            heartbeat: Duration::from_secs(300),
            max_concurrent_syncs: 1,
            max_ticks: None,
        }
    }
}

/// What a service did, for its final report.
#[derive(Debug, Clone, Default)]
pub struct ServeSummary {
    pub ticks: u64,
    pub jobs: Vec<JobReport>,
    pub scheduled: u64,
    pub reaped: u64,
}

/// Runs the service until `shutdown` (running jobs are then suspended, their in-flight bulk
/// requests finished) or `max_ticks`.
pub async fn serve(
    engine: &Engine,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> ServeSummary {
    let mut summary = ServeSummary::default();
    let mut running: JoinSet<Result<JobReport, String>> = JoinSet::new();
    let mut running_connectors: HashMap<String, String> = HashMap::new();
    let mut last_check_in: HashMap<String, Instant> = HashMap::new();
    let mut previous_tick = Timestamp::now().0;
    loop {
        let now = Timestamp::now().0;
        match served_connectors(engine, options).await {
            Ok(connectors) => {
                for connector in &connectors {
                    if let Err(e) = tend(
                        engine,
                        options,
                        connector,
                        &mut last_check_in,
                        previous_tick,
                        now,
                        &mut summary,
                    )
                    .await
                    {
                        tracing::warn!(connector = %connector.id, error = %e, "connector tick failed");
                    }
                }
                match reap_idle(engine, &connectors).await {
                    Ok(n) => summary.reaped += n,
                    Err(e) => tracing::warn!(error = %e, "cleaning up idle jobs failed"),
                }
                if let Err(e) = pick_up(
                    engine,
                    options,
                    &connectors,
                    &mut running,
                    &mut running_connectors,
                    &shutdown,
                )
                .await
                {
                    tracing::warn!(error = %e, "picking up jobs failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing served connectors failed"),
        }
        previous_tick = now;
        summary.ticks += 1;
        if options.max_ticks.is_some_and(|max| summary.ticks >= max) {
            break;
        }
        // Sleep until the next tick, the shutdown, or a finished job (a free slot: look for
        // more work now rather than after the sleep).
        tokio::select! {
            _ = tokio::time::sleep(options.idle) => {}
            _ = shutdown.cancelled() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                collect(done, &mut summary, &mut running_connectors);
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    // Shutdown: running jobs see the token, finish their in-flight requests and suspend.
    while let Some(done) = running.join_next().await {
        collect(done, &mut summary, &mut running_connectors);
    }
    summary
}

fn collect(
    done: Result<Result<JobReport, String>, tokio::task::JoinError>,
    summary: &mut ServeSummary,
    running: &mut HashMap<String, String>,
) {
    match done {
        Ok(Ok(report)) => {
            running.retain(|_, job| *job != report.job_id);
            summary.jobs.push(report);
        }
        Ok(Err(e)) => tracing::error!(error = %e, "a sync job could not run"),
        Err(e) => tracing::error!(error = %e, "a sync job task failed"),
    }
}

/// Every page of the connectors this service serves.
async fn served_connectors(
    engine: &Engine,
    options: &ServeOptions,
) -> Result<Vec<Connector>, BackendError> {
    let control = &engine.deps().control;
    let registry = &engine.deps().registry;
    let mut query = ConnectorQuery {
        size: Some(100),
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = control.list_connectors(&query).await?;
        let got = page.results.len() as u64;
        for c in page.results {
            let wanted = if options.connector_ids.is_empty() {
                c.service_type
                    .as_deref()
                    .is_some_and(|t| registry.get(t).is_some())
            } else {
                options.connector_ids.contains(&c.id)
            };
            if wanted && !c.deleted {
                out.push(c);
            }
        }
        query.from += got;
        if got == 0 || query.from >= page.count {
            return Ok(out);
        }
    }
}

/// One connector's tick: heartbeat, prepare, validate, schedule.
async fn tend(
    engine: &Engine,
    options: &ServeOptions,
    connector: &Connector,
    last_check_in: &mut HashMap<String, Instant>,
    previous_tick: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    summary: &mut ServeSummary,
) -> Result<(), BackendError> {
    let control = &engine.deps().control;
    let due_heartbeat = last_check_in
        .get(&connector.id)
        .is_none_or(|t| t.elapsed() >= options.heartbeat);
    if due_heartbeat {
        control.check_in_connector(&connector.id).await?;
        last_check_in.insert(connector.id.clone(), Instant::now());
    }
    let Some(factory) = connector
        .service_type
        .as_deref()
        .and_then(|t| engine.deps().registry.get(t))
    else {
        return Ok(());
    };
    // Prepare: the connector's features follow its source, so Kibana offers what it can do.
    // A failed write (a missing privilege, a blip) must not stop the rest of the tick.
    let features = match sync_features(control.as_ref(), factory.as_ref(), connector).await {
        Ok(features) => features,
        Err(e) => {
            tracing::warn!(connector = %connector.id, error = %e, "setting the connector's features failed");
            connector.features.clone().unwrap_or_default()
        }
    };
    // An empty configuration gets the source's schema.
    if connector.configuration.is_empty() {
        control
            .update_configuration(
                &connector.id,
                &ConfigurationUpdate::Replace(factory.default_configuration()),
            )
            .await?;
        if connector
            .status
            .can_become(ConnectorStatus::NeedsConfiguration)
        {
            control
                .update_status(&connector.id, ConnectorStatus::NeedsConfiguration)
                .await?;
        }
        return Ok(());
    }
    if matches!(
        connector.status,
        ConnectorStatus::Created | ConnectorStatus::NeedsConfiguration
    ) {
        return Ok(());
    }
    // Validate and ping; the result is the connector's status.
    let config = &connector.configuration;
    let issues: Vec<String> = config
        .fields_in_order()
        .into_iter()
        .flat_map(|(key, _)| validate_field(config, key))
        .map(|i| i.to_string())
        .collect();
    let verdict = if !issues.is_empty() {
        Err(format!("invalid configuration: {}", issues.join("; ")))
    } else if let Err(e) = factory.validate(config) {
        Err(format!("invalid configuration: {e}"))
    } else {
        match factory.create(config) {
            Ok(mut source) => source
                .ping()
                .await
                .map_err(|e| format!("the source is not reachable: {e}")),
            Err(e) => Err(e.to_string()),
        }
    };
    // As in the framework, a failure to validate or activate the draft (not an invalid draft)
    // counts against the connector like a failed ping.
    let verdict = match verdict {
        Ok(()) => settle_draft_rules(control.as_ref(), factory.as_ref(), connector, &features)
            .await
            .map_err(|e| format!("validating the draft sync rules failed: {e}")),
        Err(reason) => Err(reason),
    };
    match verdict {
        Ok(()) => {
            if connector.status != ConnectorStatus::Connected || connector.error.is_some() {
                control.update_error(&connector.id, None).await?;
            }
        }
        Err(reason) => {
            if connector.error.as_deref() != Some(reason.as_str()) {
                control.update_error(&connector.id, Some(&reason)).await?;
            }
            return Ok(());
        }
    }
    // Schedule: incremental (when the source supports it), then full.
    let kinds = [
        (
            JobType::Incremental,
            &connector.scheduling.incremental,
            connector.last_incremental_sync_scheduled_at,
        ),
        (
            JobType::Full,
            &connector.scheduling.full,
            connector.last_sync_scheduled_at,
        ),
    ];
    for (job_type, schedule, last) in kinds {
        if !schedule.enabled
            || (job_type == JobType::Incremental && !factory.supports_incremental())
        {
            continue;
        }
        let parsed = match Schedule::parse(&schedule.interval) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(connector = %connector.id, error = %e, "invalid schedule");
                continue;
            }
        };
        let Some(next) = is_due(&parsed, last.map(|t| t.0), previous_tick, now) else {
            continue;
        };
        let mut mark = LastSync::default();
        match job_type {
            JobType::Incremental => mark.last_incremental_sync_scheduled_at = Some(Timestamp(next)),
            _ => mark.last_sync_scheduled_at = Some(Timestamp(next)),
        }
        control.update_last_sync(&connector.id, &mark).await?;
        let id = control
            .create_sync_job(&connector.id, job_type, TriggerMethod::Scheduled)
            .await?;
        summary.scheduled += 1;
        tracing::info!(connector = %connector.id, job = %id, %job_type, "scheduled sync job created");
    }
    Ok(())
}

/// The features a source gives its connector: basic sync rules always, advanced rules never
/// (no built-in source has them), incremental sync when the source has its own mode.
pub fn source_features(factory: &dyn SourceFactory) -> Features {
    Features {
        incremental_sync: Some(serde_json::json!({ "enabled": factory.supports_incremental() })),
        sync_rules: Some(serde_json::json!({
            "basic": { "enabled": true },
            "advanced": { "enabled": false },
        })),
        ..Default::default()
    }
}

/// Writes the source's features when the connector's differ (only those flags: document-level
/// security and the rest are left as they are). Returns the connector's features after it.
async fn sync_features(
    control: &dyn ControlPlane,
    factory: &dyn SourceFactory,
    connector: &Connector,
) -> Result<Features, BackendError> {
    let wanted = source_features(factory);
    let mut current = connector.features.clone().unwrap_or_default();
    if current.incremental_sync == wanted.incremental_sync
        && current.sync_rules == wanted.sync_rules
    {
        return Ok(current);
    }
    control.update_features(&connector.id, &wanted).await?;
    tracing::info!(connector = %connector.id, "features set from the source");
    current.incremental_sync = wanted.incremental_sync;
    current.sync_rules = wanted.sync_rules;
    Ok(current)
}

/// PROTOCOL §5.2 step 4: with sync rules on and the draft `edited`, validate the draft (basic
/// rules here, the advanced snippet by the source), write the result, and activate the draft
/// when it is valid. An invalid draft is only reported on the draft: the connector stays as
/// it is and jobs keep the active rules.
async fn settle_draft_rules(
    control: &dyn ControlPlane,
    factory: &dyn SourceFactory,
    connector: &Connector,
    features: &Features,
) -> Result<(), BackendError> {
    if !sync_rules_enabled(Some(features)) {
        return Ok(());
    }
    let Some(filtering) = connector.filtering.first() else {
        return Ok(());
    };
    if filtering.draft.validation.state != FilteringValidationState::Edited {
        return Ok(());
    }
    let validation = validate_draft(&filtering.draft, |snippet| {
        factory.validate_advanced_rules(snippet)
    });
    control
        .update_filtering_validation(&connector.id, &validation)
        .await?;
    if validation.state != FilteringValidationState::Valid {
        tracing::warn!(connector = %connector.id, errors = ?validation.errors, "draft sync rules are invalid");
        return Ok(());
    }
    control.activate_filtering(&connector.id).await?;
    tracing::info!(connector = %connector.id, "draft sync rules validated and activated");
    Ok(())
}

/// Starts pending (and suspended) jobs of served connectors, oldest first.
async fn pick_up(
    engine: &Engine,
    options: &ServeOptions,
    connectors: &[Connector],
    running: &mut JoinSet<Result<JobReport, String>>,
    running_connectors: &mut HashMap<String, String>,
    shutdown: &CancellationToken,
) -> Result<(), BackendError> {
    let control = &engine.deps().control;
    let mut candidates = BTreeMap::new();
    for connector in connectors {
        if running_connectors.contains_key(&connector.id)
            || connector.last_sync_status == Some(JobStatus::InProgress)
        {
            continue;
        }
        for status in [JobStatus::Pending, JobStatus::Suspended] {
            let query = SyncJobQuery {
                connector_id: Some(connector.id.clone()),
                status: Some(status),
                job_types: vec![JobType::Full, JobType::Incremental],
                size: Some(100),
                ..Default::default()
            };
            for job in control.list_sync_jobs(&query).await?.results {
                let created = job.created_at.map(|t| t.millis()).unwrap_or(i64::MAX);
                candidates.insert((created, job.id.clone()), job.connector.id.clone());
            }
        }
    }
    for ((_, job_id), connector_id) in candidates {
        if running.len() >= options.max_concurrent_syncs.max(1) || shutdown.is_cancelled() {
            break;
        }
        if running_connectors.contains_key(&connector_id) {
            continue;
        }
        running_connectors.insert(connector_id, job_id.clone());
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        running.spawn(async move {
            let report = engine
                .run_job(&job_id, &shutdown)
                .await
                .map_err(|e| format!("job '{job_id}': {e}"))?;
            if let JobEnd::Skipped { reason } = &report.end {
                tracing::info!(job = %job_id, %reason, "job skipped");
            }
            Ok(report)
        });
    }
    Ok(())
}

/// Fails jobs whose worker stopped checking in (PROTOCOL §5.7).
async fn reap_idle(engine: &Engine, connectors: &[Connector]) -> Result<u64, BackendError> {
    let control = &engine.deps().control;
    let limit = chrono::Duration::from_std(engine.deps().settings.idle_job_timeout)
        .unwrap_or(chrono::Duration::seconds(300));
    let now = Timestamp::now().0;
    let mut reaped = 0;
    for connector in connectors {
        for status in [JobStatus::InProgress, JobStatus::Canceling] {
            let query = SyncJobQuery {
                connector_id: Some(connector.id.clone()),
                status: Some(status),
                size: Some(100),
                ..Default::default()
            };
            for job in control.list_sync_jobs(&query).await?.results {
                let seen = job.last_seen.or(job.started_at).map(|t| t.0);
                if seen.is_some_and(|t| now - t <= limit) {
                    continue;
                }
                let message = "The job has not seen any update for some time.";
                if let Err(e) = control.set_sync_job_error(&job.id, message).await {
                    tracing::warn!(job = %job.id, error = %e, "could not fail an idle job");
                    continue;
                }
                let mut last = LastSync {
                    last_synced: Some(Timestamp::now()),
                    ..Default::default()
                };
                last.last_sync_status = Some(JobStatus::Error);
                last.last_sync_error = Some(Some(message.to_string()));
                control.update_last_sync(&connector.id, &last).await?;
                control.update_error(&connector.id, Some(message)).await?;
                reaped += 1;
                tracing::warn!(job = %job.id, connector = %connector.id, "idle job marked as error");
            }
        }
    }
    Ok(reaped)
}
