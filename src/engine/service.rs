//! `serve`: the connectors-service loop (PROTOCOL §5), as Elastic's Python service runs it,
//! so both can serve one cluster side by side. Every tick it lists the connectors it can run
//! (one request), checks each in when its `heartbeat` is due, prepares it (configuration
//! merged with the source's fields, features written once per real change), validates it,
//! settles edited draft sync rules, creates scheduled jobs (the `last_*_scheduled_at` write
//! guarded, so one job per due tick among any number of services), and picks up pending jobs
//! it can run (one search for all its connectors), oldest first, up to the concurrency limit.
//! Connectors are tended four at once, as Elastic's service does, so slow sources hold a
//! tick for about one ping budget per four of them, not one each.
//! On its own interval it ends abandoned jobs of the whole cluster ([`clean_up`]). It never
//! claims a job it cannot run nor writes to a connector it does not serve: those are left to
//! the service that can.
//!
//! Idle cost: two requests a tick whatever the number of connectors (the connector list and
//! the pending-job search), plus one check-in per connector per `heartbeat` and one search
//! per `job_cleanup_interval`. A running job watches its own cancellation (the runner).

use super::cleanup::{self, IDLE_JOB_ERROR};
use super::filtering::{sync_rules_enabled, validate_draft};
use super::runner::{Engine, JobEnd, JobReport};
use super::schedule::{Schedule, is_due};
use crate::backend::{
    BackendError, ConfigurationUpdate, ConnectorQuery, ControlPlane, JobFilter, PriorSync,
    ScheduleMark, scheduled_at,
};
use crate::model::{
    Configuration, Connector, ConnectorStatus, Features, FilteringValidationState, JobStatus,
    JobType, SyncJob, Timestamp, TriggerMethod,
};
use crate::sources::{ExternalFactory, Registry, SourceFactory};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Connectors and jobs read per request: an idle service costs one request per list up to
/// this many (Elasticsearch's default result window is 10 000).
const PAGE_SIZE: u64 = 1000;

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve only these connectors (still only those whose service type this engine has a
    /// source for); empty: every such connector.
    pub connector_ids: Vec<String>,
    /// Time between ticks (the framework's `idling`, 30 s).
    pub idle: Duration,
    /// Connector check-in (`_check_in`) period: a connector is checked in when its
    /// `last_seen` is older than this (the Python service's `heartbeat`, 300 s).
    pub heartbeat: Duration,
    /// Time between two cleanups of abandoned jobs (the Python service's
    /// `job_cleanup_interval`, 300 s). The first tick cleans up too.
    pub job_cleanup_interval: Duration,
    pub max_concurrent_syncs: usize,
    /// The instant the scheduler counts from on its first tick (the Python service's first
    /// `last_wake_up_time`); `None`: when `serve` starts. A schedule due between this and the
    /// first tick creates its job on that tick.
    pub scheduled_since: Option<DateTime<Utc>>,
    /// Stop after this many ticks (tests); `None` runs until shutdown.
    pub max_ticks: Option<u64>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connector_ids: Vec::new(),
            idle: Duration::from_secs(30),
            heartbeat: Duration::from_secs(300),
            job_cleanup_interval: Duration::from_secs(300),
            max_concurrent_syncs: 1,
            scheduled_since: None,
            max_ticks: None,
        }
    }
}

/// How many job reports a service keeps for its final report: the latest ones. A service
/// runs for months, and a report each (~300 bytes) would grow with every job it ran.
pub const SUMMARY_JOBS: usize = 100;

/// What a service did, for its final report.
#[derive(Debug, Clone, Default)]
pub struct ServeSummary {
    pub ticks: u64,
    /// Jobs this service ran to an end, all of them.
    pub jobs_run: u64,
    /// Jobs it did not run to an end of its own: read and left alone (claimed by another
    /// worker, no longer pending, refused by their connector's guard, of a type it cannot
    /// run, or shut down before they started), or lost to another worker while running.
    pub skipped: u64,
    /// The latest [`SUMMARY_JOBS`] reports, skipped jobs' included, oldest first.
    pub jobs: VecDeque<JobReport>,
    pub scheduled: u64,
    /// Idle jobs of existing connectors ended as `error`.
    pub reaped: u64,
    /// Idle jobs whose connector is gone, ended as `error`.
    pub orphaned: u64,
}

impl ServeSummary {
    /// Counts a job that ended (or was skipped) and keeps its report among the latest.
    fn record(&mut self, report: JobReport) {
        if matches!(report.end, JobEnd::Skipped { .. }) {
            self.skipped += 1;
        } else {
            self.jobs_run += 1;
        }
        if self.jobs.len() >= SUMMARY_JOBS {
            self.jobs.pop_front();
        }
        self.jobs.push_back(report);
    }
}

/// Whether this engine can run a job of `job_type` for a connector of `service_type`, by the
/// one rule of [`super::runner::runnable`] (shared with `sync` and the console): the
/// service type has a source here, and the job type is one the source supports. Content
/// syncs (full and incremental: a source without its own incremental mode gets a full
/// listing, as the runner does) run for every source; access-control syncs for none, as no
/// source here implements document-level security. A job that fails this is left `pending`
/// for a service that can run it.
pub fn runnable(registry: &Registry, service_type: Option<&str>, job_type: JobType) -> bool {
    super::runner::runnable(&registry.service_types(), service_type, job_type).is_ok()
}

/// What a service remembers between ticks.
struct Memory {
    /// Per connector, the source features this process last wrote or found in place: they
    /// are written again only when the source's change, never because another writer set
    /// different ones (that would flip-flop with it).
    features: HashMap<String, Features>,
    /// The start of the previous tick (the scheduler's `last_wake_up_time`).
    previous_tick: DateTime<Utc>,
    last_cleanup: Option<Instant>,
}

/// Runs the service until `shutdown` (running jobs are then suspended, their in-flight bulk
/// requests finished) or `max_ticks`.
pub async fn serve(
    engine: &Engine,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> ServeSummary {
    let mut summary = ServeSummary::default();
    // A connector whose job failed to run waits a tick (at least a second) before its next.
    let mut running = RunningJobs::new(options.idle.max(Duration::from_secs(1)));
    let mut memory = Memory {
        features: HashMap::new(),
        previous_tick: options.scheduled_since.unwrap_or_else(Utc::now),
        last_cleanup: None,
    };
    loop {
        let tick_start = Utc::now();
        // Cleanup first: a connector freed from a dead job is served in this same tick.
        if memory
            .last_cleanup
            .is_none_or(|t| t.elapsed() >= options.job_cleanup_interval)
        {
            memory.last_cleanup = Some(Instant::now());
            match clean_up(engine).await {
                Ok(done) => {
                    summary.reaped += done.idle;
                    summary.orphaned += done.orphaned;
                }
                Err(e) => tracing::warn!(error = %e, "cleaning up abandoned jobs failed"),
            }
        }
        match served_connectors(engine, options).await {
            Ok(connectors) => {
                // What this process keeps of connectors it no longer serves (deleted ones)
                // goes, so that it does not grow with the connectors it has ever served.
                let served: HashSet<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
                engine.live().retire_unserved(&served);
                memory.features.retain(|id, _| served.contains(id.as_str()));
                tend_all(engine, options, &connectors, &mut memory, &mut summary).await;
                if let Err(e) = pick_up(engine, options, &connectors, &mut running, &shutdown).await
                {
                    tracing::warn!(error = %e, "picking up jobs failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing served connectors failed"),
        }
        memory.previous_tick = tick_start;
        summary.ticks += 1;
        if options.max_ticks.is_some_and(|max| summary.ticks >= max) {
            break;
        }
        // Sleep until the next tick, the shutdown, or a finished job (a free slot: look for
        // more work now rather than after the sleep).
        tokio::select! {
            _ = tokio::time::sleep(options.idle) => {}
            _ = shutdown.cancelled() => {}
            Some(ended) = running.join_next(), if !running.is_empty() => {
                collect(engine, ended, &mut summary);
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    // Shutdown: running jobs see the token, finish their in-flight requests and suspend.
    while let Some(ended) = running.join_next().await {
        collect(engine, ended, &mut summary);
    }
    summary
}

fn collect(engine: &Engine, ended: Ended, summary: &mut ServeSummary) {
    match ended.result {
        Ok(report) => summary.record(report),
        Err(e) => {
            tracing::error!(job = %ended.job_id, error = %e, "a sync job could not run");
            // A panicked job never reached an end of its own: shown as running for ever
            // otherwise (in the cluster, its check-ins stop and the cleanup ends it).
            if ended.panicked
                && let Some(progress) = engine.live().progress(&ended.job_id)
            {
                progress.set_phase(super::progress::Phase::Failed);
            }
        }
    }
}

/// How a job's task ended.
struct Ended {
    job_id: String,
    result: Result<JobReport, String>,
    panicked: bool,
}

/// The jobs this service runs and the connectors they hold. A connector is busy from its
/// job's start until the job's task ends, however it ends: a report, an error before the
/// job could start (a failed read of it, say) or a panic. (Freed only on a report, a
/// connector whose job failed to start was never served again by this process.) After an
/// error or a panic it waits `retry_after` before its jobs are tried again: a failure that
/// lasts (a key without the right to write the connector's guard) would otherwise be
/// retried in a loop with no pause, each time a tick.
struct RunningJobs {
    tasks: JoinSet<Result<JobReport, String>>,
    /// Per task, its connector and its job.
    held: HashMap<tokio::task::Id, (String, String)>,
    /// Connectors whose last job failed to run, and until when they wait.
    cooldown: HashMap<String, Instant>,
    retry_after: Duration,
}

impl RunningJobs {
    fn new(retry_after: Duration) -> Self {
        Self {
            tasks: JoinSet::new(),
            held: HashMap::new(),
            cooldown: HashMap::new(),
            retry_after,
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether a job of `connector_id` runs, or its last one failed to run too recently.
    fn is_busy(&self, connector_id: &str) -> bool {
        self.held.values().any(|(c, _)| c == connector_id)
            || self
                .cooldown
                .get(connector_id)
                .is_some_and(|until| Instant::now() < *until)
    }

    fn spawn<F>(&mut self, connector_id: String, job_id: String, task: F)
    where
        F: Future<Output = Result<JobReport, String>> + Send + 'static,
    {
        let now = Instant::now();
        self.cooldown.retain(|_, until| now < *until);
        let id = self.tasks.spawn(task).id();
        self.held.insert(id, (connector_id, job_id));
    }

    /// The next job to end, its connector freed; `None` when none runs.
    async fn join_next(&mut self) -> Option<Ended> {
        let (id, result, panicked) = match self.tasks.join_next_with_id().await? {
            Ok((id, result)) => (id, result, false),
            Err(e) => (e.id(), Err(format!("the job's task failed: {e}")), true),
        };
        let (connector_id, job_id) = self.held.remove(&id).unwrap_or_default();
        if result.is_err() {
            self.cooldown
                .insert(connector_id, Instant::now() + self.retry_after);
        }
        Some(Ended {
            job_id,
            result,
            panicked,
        })
    }
}

/// The connectors this service serves: not deleted, of a service type it has a source for
/// (filtered by the cluster, so one request whatever else the cluster holds), and among
/// `connector_ids` when given.
async fn served_connectors(
    engine: &Engine,
    options: &ServeOptions,
) -> Result<Vec<Connector>, BackendError> {
    let control = &engine.deps().control;
    let registry = &engine.deps().registry;
    let service_types: Vec<String> = registry
        .service_types()
        .into_iter()
        .map(str::to_string)
        .collect();
    if service_types.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = ConnectorQuery {
        size: Some(PAGE_SIZE),
        service_types,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = control.list_connectors(&query).await?;
        let got = page.results.len() as u64;
        out.extend(page.results.into_iter().filter(|c| {
            !c.deleted
                && c.service_type
                    .as_deref()
                    .is_some_and(|t| registry.get(t).is_some())
                && (options.connector_ids.is_empty() || options.connector_ids.contains(&c.id))
        }));
        query.from += got;
        if got == 0 || query.from >= page.count {
            return Ok(out);
        }
    }
}

/// Connectors tended at once in a tick, as many as Elastic's service tends (its scheduler's
/// pool of 4). One after another, a tick lasted the sum of its connectors' pings: ten
/// sources whose hosts drop packets held every other connector's schedules and the pick-up
/// of pending jobs for ten ping budgets (200 s); four at a time, for three (60 s). The
/// cluster sees at most this many of the service's connector writes in flight.
const TEND_AT_ONCE: usize = 4;

/// Tends every connector of the tick, [`TEND_AT_ONCE`] at a time; one connector's failure
/// is logged and does not stop the others.
async fn tend_all(
    engine: &Engine,
    options: &ServeOptions,
    connectors: &[Connector],
    memory: &mut Memory,
    summary: &mut ServeSummary,
) {
    use futures_util::StreamExt;
    type Outcome<'a> = (
        &'a Connector,
        Result<(), BackendError>,
        Option<Features>,
        u64,
    );
    let previous_tick = memory.previous_tick;
    // Boxed, each named by its type: a stream of closures' futures borrowing the list does
    // not prove `Send` for every lifetime, which `serve` inside a spawned task needs.
    let tends: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Outcome<'_>> + Send + '_>>> =
        connectors
            .iter()
            .map(|connector| {
                // Each tend sees and updates only its own connector's memory.
                let mut written = memory.features.get(&connector.id).cloned();
                Box::pin(async move {
                    let mut scheduled = 0;
                    let result = tend(
                        engine,
                        options,
                        connector,
                        previous_tick,
                        &mut written,
                        &mut scheduled,
                    )
                    .await;
                    (connector, result, written, scheduled)
                }) as _
            })
            .collect();
    let outcomes: Vec<Outcome<'_>> = futures_util::stream::iter(tends)
        .buffer_unordered(TEND_AT_ONCE)
        .collect()
        .await;
    for (connector, result, written, scheduled) in outcomes {
        if let Some(features) = written {
            memory.features.insert(connector.id.clone(), features);
        }
        summary.scheduled += scheduled;
        if let Err(e) = result {
            tracing::warn!(connector = %connector.id, error = %e, "connector tick failed");
        }
    }
}

/// One connector's part of a tick: check-in, prepare, validate and ping, draft rules,
/// status, due schedules (counted in `scheduled`). `written` is this connector's entry of
/// [`Memory::features`].
async fn tend(
    engine: &Engine,
    options: &ServeOptions,
    connector: &Connector,
    previous_tick: DateTime<Utc>,
    written: &mut Option<Features>,
    scheduled: &mut u64,
) -> Result<(), BackendError> {
    let control = &engine.deps().control;
    let Some(factory) = connector
        .service_type
        .as_deref()
        .and_then(|t| engine.deps().registry.get(t))
    else {
        return Ok(());
    };
    let heartbeat =
        chrono::Duration::from_std(options.heartbeat).unwrap_or(chrono::Duration::seconds(300));
    if connector
        .last_seen
        .is_none_or(|seen| Utc::now() - seen.0 > heartbeat)
    {
        control.check_in_connector(&connector.id).await?;
    }
    // Prepare: the connector's features follow its source, so Kibana offers what it can do.
    // A failed write (a missing privilege, a blip) must not stop the rest of the tick.
    let features = match sync_features(control.as_ref(), factory.as_ref(), connector, written).await
    {
        Ok(features) => features,
        Err(e) => {
            tracing::warn!(connector = %connector.id, error = %e, "setting the connector's features failed");
            connector.features.clone().unwrap_or_default()
        }
    };
    // An empty configuration gets the source's schema and waits for values.
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
    let config = merge_configuration(control.as_ref(), factory.as_ref(), connector).await?;
    if matches!(
        connector.status,
        ConnectorStatus::Created | ConnectorStatus::NeedsConfiguration
    ) {
        return Ok(());
    }
    // Validate and ping; the result is the connector's status.
    let verdict = check_source(factory.as_ref(), &config).await;
    // As in the framework, a failure to validate or activate the draft (not an invalid draft)
    // counts against the connector like a failed ping.
    let verdict = match verdict {
        Ok(()) => settle_draft_rules(control.as_ref(), factory.as_ref(), connector, &features)
            .await
            .map_err(|e| format!("validating the draft sync rules failed: {e}")),
        Err(reason) => Err(reason),
    };
    if let Err(reason) = verdict {
        if connector.status != ConnectorStatus::Error
            || connector.error.as_deref() != Some(reason.as_str())
        {
            control.update_error(&connector.id, Some(&reason)).await?;
        }
        return Ok(());
    }
    // Schedules are read before the status is written: a schedule that cannot run is the
    // connector's error (as the Python service has it), written once rather than cleared
    // and set again every tick.
    let plan = due_schedules(factory.as_ref(), connector, &features, previous_tick);
    match &plan.error {
        Some(reason) => {
            if connector.status != ConnectorStatus::Error
                || connector.error.as_deref() != Some(reason.as_str())
            {
                tracing::warn!(connector = %connector.id, error = %reason, "invalid schedule");
                control.update_error(&connector.id, Some(reason)).await?;
            }
        }
        None => {
            if connector.status != ConnectorStatus::Connected || connector.error.is_some() {
                control.update_error(&connector.id, None).await?;
            }
        }
    }
    for (job_type, at) in plan.due {
        let mark = control
            .mark_sync_scheduled(
                &connector.id,
                job_type,
                Timestamp(previous_tick),
                Timestamp(at),
            )
            .await?;
        if mark == ScheduleMark::Taken {
            tracing::debug!(connector = %connector.id, %job_type, "another service scheduled this sync");
            continue;
        }
        let id = control
            .create_sync_job(&connector.id, job_type, TriggerMethod::Scheduled)
            .await?;
        *scheduled += 1;
        tracing::info!(connector = %connector.id, job = %id, %job_type, "scheduled sync job created");
    }
    Ok(())
}

/// How long one connector's ping may take in a tick. The tick waits for its connectors'
/// pings, a few at a time (see [`TEND_AT_ONCE`]): a source whose host drops packets (a
/// database ping retries its 30 s connect) must not hold up every other connector's pick-up
/// and schedules for minutes.
const TICK_PING_BUDGET: Duration = Duration::from_secs(20);

/// Validates the configuration (per-field rules, then the source's) and pings the source.
async fn check_source(factory: &dyn SourceFactory, config: &Configuration) -> Result<(), String> {
    super::runner::validate_configuration(factory, config)?;
    match factory.create(config) {
        Ok(mut source) => match tokio::time::timeout(TICK_PING_BUDGET, source.ping()).await {
            Ok(pinged) => pinged.map_err(|e| format!("the source is not reachable: {e}")),
            Err(_) => Err(format!(
                "the source is not reachable: no answer to the ping within {} s",
                TICK_PING_BUDGET.as_secs()
            )),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// The configuration merge of the Python service's `prepare` (`validated_doc`): when the
/// connector lacks fields of its source, they are added with their defaults, and the fields
/// there take the source's definition but keep their value, their sensitivity (never
/// lowered) and what this version does not know of them; fields the source does not name
/// stay. One merge for the whole crate: [`ExternalFactory::merge_spec`]. Like the
/// reference, nothing is written when no field is missing (a definition that merely differs
/// is left alone, so two services with different versions of a source never take turns
/// rewriting it), and the write is a direct document update that leaves the status and every
/// other field as they are. Returns the configuration to validate.
async fn merge_configuration(
    control: &dyn ControlPlane,
    factory: &dyn SourceFactory,
    connector: &Connector,
) -> Result<Configuration, BackendError> {
    let merge =
        ExternalFactory::merge_spec(&connector.configuration, &factory.default_configuration());
    if merge.added.is_empty() {
        return Ok(connector.configuration.clone());
    }
    let mut fields = serde_json::Map::new();
    for key in merge.added.iter().chain(&merge.updated) {
        let Some(field) = merge.configuration.get(key) else {
            continue;
        };
        let Ok(mut value) = serde_json::to_value(field) else {
            continue;
        };
        // An existing field's value is never written back: an edit made meanwhile stays.
        if merge.updated.contains(key)
            && let Some(object) = value.as_object_mut()
        {
            object.remove("value");
        }
        fields.insert(key.clone(), value);
    }
    control.merge_configuration(&connector.id, &fields).await?;
    tracing::info!(connector = %connector.id, added = ?merge.added, "configuration fields added from the source");
    Ok(merge.configuration)
}

/// The schedules due at this tick, or the reason one cannot run.
#[derive(Debug, Default)]
struct SchedulePlan {
    due: Vec<(JobType, DateTime<Utc>)>,
    error: Option<String>,
}

/// Which scheduled syncs are due: the kinds the Python service would schedule that this
/// engine can run (incremental when both the connector's feature and the source allow it,
/// then full; access control never here), each by the reference's rule ([`is_due`]).
fn due_schedules(
    factory: &dyn SourceFactory,
    connector: &Connector,
    features: &Features,
    previous_tick: DateTime<Utc>,
) -> SchedulePlan {
    let mut plan = SchedulePlan::default();
    let kinds = [
        (JobType::Incremental, &connector.scheduling.incremental),
        (JobType::Full, &connector.scheduling.full),
    ];
    for (job_type, schedule) in kinds {
        if !schedule.enabled
            || (job_type == JobType::Incremental
                && !(factory.supports_incremental_for(&connector.configuration)
                    && features.incremental_sync_enabled()))
        {
            continue;
        }
        let last = scheduled_at(connector, job_type).map(|t| t.0);
        let due = Schedule::parse(&schedule.interval)
            .and_then(|parsed| is_due(&parsed, last, previous_tick, Utc::now()));
        match due {
            Ok(Some(at)) => plan.due.push((job_type, at)),
            Ok(None) => {}
            Err(e) => {
                plan.error.get_or_insert(e.to_string());
            }
        }
    }
    plan
}

/// The features a source gives its connector: basic sync rules always, advanced rules when the
/// source applies them, incremental sync when the source has its own mode (for the databases,
/// when the connector has `cursor_column`).
pub fn source_features(factory: &dyn SourceFactory, config: &Configuration) -> Features {
    Features {
        incremental_sync: Some(
            serde_json::json!({ "enabled": factory.supports_incremental_for(config) }),
        ),
        sync_rules: Some(serde_json::json!({
            "basic": { "enabled": true },
            "advanced": { "enabled": factory.supports_advanced_rules() },
        })),
        ..Default::default()
    }
}

/// Writes the source's features (only those flags: document-level security and the rest are
/// left as they are) when the connector has none, or differs from them and this process has
/// not yet written or found these features on it: once per connector and per change of the
/// source. A different value set later by another writer (Kibana, another service) is left
/// as it is, so two services never take turns rewriting it. Returns the connector's
/// features after it.
async fn sync_features(
    control: &dyn ControlPlane,
    factory: &dyn SourceFactory,
    connector: &Connector,
    written: &mut Option<Features>,
) -> Result<Features, BackendError> {
    let wanted = source_features(factory, &connector.configuration);
    let current = connector.features.clone();
    let agrees = current.as_ref().is_some_and(|c| {
        c.incremental_sync == wanted.incremental_sync && c.sync_rules == wanted.sync_rules
    });
    let known = written.as_ref() == Some(&wanted);
    if agrees || (known && current.is_some()) {
        *written = Some(wanted);
        return Ok(current.unwrap_or_default());
    }
    control.update_features(&connector.id, &wanted).await?;
    tracing::info!(connector = %connector.id, "features set from the source");
    let mut after = current.unwrap_or_default();
    after.incremental_sync = wanted.incremental_sync.clone();
    after.sync_rules = wanted.sync_rules.clone();
    *written = Some(wanted);
    Ok(after)
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
    // The source may ask its backend (a database checks the tables exist): bounded, so a
    // source that does not answer cannot hold up the serve loop.
    let snippet = &filtering.draft.advanced_snippet.value;
    let advanced = match tokio::time::timeout(
        std::time::Duration::from_secs(60),
        factory.check_advanced_rules(&connector.configuration, snippet),
    )
    .await
    {
        Ok(problems) => problems,
        Err(_) => {
            vec!["the source did not answer within 60s while checking the advanced rules".into()]
        }
    };
    let validation = validate_draft(&filtering.draft, |_| advanced);
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

/// Starts pending (and suspended) jobs of served connectors that this engine can run, oldest
/// first: one search for all of them. Jobs it cannot run are not touched.
async fn pick_up(
    engine: &Engine,
    options: &ServeOptions,
    connectors: &[Connector],
    running: &mut RunningJobs,
    shutdown: &CancellationToken,
) -> Result<(), BackendError> {
    if running.len() >= options.max_concurrent_syncs.max(1) || shutdown.is_cancelled() {
        return Ok(());
    }
    // Connectors whose guard is held stay in: a holder that is provably dead (or past its
    // lease) is taken over at once, as `sync` does, rather than after the cleanup's lease.
    let by_id: HashMap<&str, &Connector> = connectors
        .iter()
        .filter(|c| !running.is_busy(&c.id))
        .map(|c| (c.id.as_str(), c))
        .collect();
    let service_types: HashMap<&str, Option<&str>> = by_id
        .iter()
        .map(|(id, c)| (*id, c.service_type.as_deref()))
        .collect();
    if service_types.is_empty() {
        // An empty list would mean "every connector" to the search.
        return Ok(());
    }
    let registry = &engine.deps().registry;
    let filter = JobFilter {
        connector_ids: service_types.keys().map(|id| id.to_string()).collect(),
        statuses: vec![JobStatus::Pending, JobStatus::Suspended],
        job_types: [JobType::Full, JobType::Incremental, JobType::AccessControl]
            .into_iter()
            .filter(|t| {
                registry
                    .factories()
                    .any(|f| runnable(registry, Some(f.service_type()), *t))
            })
            .collect(),
        size: Some(PAGE_SIZE),
        ..Default::default()
    };
    if filter.job_types.is_empty() {
        return Ok(());
    }
    let jobs = engine.deps().control.search_sync_jobs(&filter).await?;
    // Per connector (and guard kind), whether its held guard may be taken over: asked once
    // a tick, however many jobs wait behind it.
    let mut takeover_due: HashMap<(String, bool), bool> = HashMap::new();
    for job in jobs {
        if running.len() >= options.max_concurrent_syncs.max(1) || shutdown.is_cancelled() {
            break;
        }
        let connector_id = job.connector.id.clone();
        let service_type = service_types.get(connector_id.as_str()).copied().flatten();
        if running.is_busy(&connector_id) || !runnable(registry, service_type, job.job_type) {
            continue;
        }
        // A job its connector's configuration cannot run (an incremental one of a database
        // without `cursor_column`) is taken too: the runner ends it `error` with the reason,
        // as Python's does, rather than leave it pending for nobody.
        let held = by_id
            .get(connector_id.as_str())
            .is_some_and(|c| PriorSync::of(c, job.job_type).status == Some(JobStatus::InProgress));
        // A live holder keeps its guard: leave the job for a later tick, without a start.
        if held {
            let key = (connector_id.clone(), job.job_type == JobType::AccessControl);
            let due = match takeover_due.get(&key) {
                Some(due) => *due,
                None => {
                    // A control-plane error about one connector's holder leaves that job for a
                    // later tick; the other connectors' jobs are still picked up.
                    let due = match engine.guard_takeover_due(&job).await {
                        Ok(due) => due,
                        Err(e) => {
                            tracing::warn!(
                                connector = %connector_id, job = %job.id, error = %e,
                                "could not read the holder of the connector's guard; its job \
                                 waits for a later tick"
                            );
                            false
                        }
                    };
                    takeover_due.insert(key, due);
                    due
                }
            };
            if !due {
                continue;
            }
        }
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        let job_id = job.id;
        running.spawn(connector_id, job_id.clone(), async move {
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

/// What one cleanup ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Idle jobs of existing connectors.
    pub idle: u64,
    /// Idle jobs whose connector is gone (deleted or soft-deleted).
    pub orphaned: u64,
}

/// The Python service's job cleanup (`job_cleanup.py`), over every connector of the cluster:
/// jobs `in_progress` or `canceling` whose `last_seen` is older than `idle_job_timeout` end
/// as `error` ("The job has not seen any update for some time.") with `completed_at` and the
/// counts of their last stats, and their connector gets the `last_*` (or
/// `last_access_control_*`) fields of the job's kind and the error. A job whose connector is
/// gone is ended the same way with no connector write. A job is read again just before it is
/// ended and left alone if it checked in meanwhile: a live job's lease is never taken. (The
/// reference ends orphaned jobs whatever their `last_seen`; here their lease is honoured too,
/// so a job still running when its connector is deleted ends by its own runner.)
pub async fn clean_up(engine: &Engine) -> Result<Cleanup, BackendError> {
    let control = engine.deps().control.as_ref();
    let timeout = chrono::Duration::from_std(engine.deps().settings.idle_job_timeout)
        .unwrap_or(chrono::Duration::seconds(300));
    let filter = JobFilter {
        statuses: vec![JobStatus::InProgress, JobStatus::Canceling],
        seen_before: Some(Timestamp(Utc::now() - timeout)),
        size: Some(PAGE_SIZE),
        ..Default::default()
    };
    let mut done = Cleanup::default();
    for candidate in control.search_sync_jobs(&filter).await? {
        match end_if_abandoned(control, &candidate.id, timeout).await {
            Ok(Some(true)) => done.idle += 1,
            Ok(Some(false)) => done.orphaned += 1,
            Ok(None) => {}
            Err(e) => tracing::warn!(job = %candidate.id, error = %e, "could not end an idle job"),
        }
    }
    Ok(done)
}

/// Ends one job if it is still abandoned: `Some(true)` with its connector's outcome written,
/// `Some(false)` when its connector is gone, `None` when it is live again or already ended.
async fn end_if_abandoned(
    control: &dyn ControlPlane,
    job_id: &str,
    timeout: chrono::Duration,
) -> Result<Option<bool>, BackendError> {
    let job: SyncJob = match control.get_sync_job(job_id).await {
        Ok(job) => job,
        Err(BackendError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let idle = matches!(job.status, JobStatus::InProgress | JobStatus::Canceling)
        && job
            .last_seen
            .is_none_or(|seen| Utc::now() - seen.0 > timeout);
    if !idle {
        return Ok(None);
    }
    let connector_exists = match control.get_connector(&job.connector.id).await {
        Ok(connector) => !connector.deleted,
        Err(BackendError::NotFound(_)) => false,
        Err(e) => return Err(e),
    };
    // A job that changed since the read above (its worker checked in, or another party ended
    // it) is left alone: the end is a compare-and-set on the job.
    if connector_exists {
        if !cleanup::end_abandoned_job(control, &job, JobStatus::Error, Some(IDLE_JOB_ERROR))
            .await?
        {
            return Ok(None);
        }
        tracing::warn!(job = %job.id, connector = %job.connector.id, "idle job marked as error");
    } else {
        if !cleanup::end_orphaned_job(control, &job, JobStatus::Error, Some(IDLE_JOB_ERROR)).await?
        {
            return Ok(None);
        }
        tracing::warn!(job = %job.id, connector = %job.connector.id, "idle job of a deleted connector marked as error");
    }
    Ok(Some(connector_exists))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources;

    /// The report of a job that completed.
    fn completed(job_id: &str, connector_id: &str) -> JobReport {
        JobReport {
            job_id: job_id.to_string(),
            connector_id: connector_id.to_string(),
            index: "i".to_string(),
            end: JobEnd::Completed,
            counters: Default::default(),
            total_document_count: None,
            elapsed_ms: 0,
        }
    }

    /// A connector is freed when its job's task ends, whatever the end: a report, an error
    /// before the job could start, or a panic. After an error or a panic it waits
    /// `retry_after` first; after a report it does not.
    #[tokio::test]
    async fn a_connector_is_freed_however_its_job_ends() {
        for retry_after in [Duration::ZERO, Duration::from_secs(3600)] {
            let mut running = RunningJobs::new(retry_after);
            let done = completed("job-of-a", "a");
            running.spawn("a".into(), "job-of-a".into(), async move { Ok(done) });
            running.spawn("b".into(), "job-of-b".into(), async {
                Err("job 'job-of-b': reading it failed".to_string())
            });
            running.spawn("c".into(), "job-of-c".into(), async {
                panic!("a bug in a job");
            });
            assert_eq!(running.len(), 3);
            assert!(["a", "b", "c"].iter().all(|c| running.is_busy(c)));
            let mut ends = Vec::new();
            while let Some(ended) = running.join_next().await {
                let how = match &ended.result {
                    Ok(r) => format!("report of {}", r.connector_id),
                    Err(e) if ended.panicked => format!("panic: {e}"),
                    Err(e) => format!("error: {e}"),
                };
                ends.push((ended.job_id, how));
            }
            ends.sort();
            assert_eq!(ends.len(), 3, "{ends:?}");
            assert_eq!(ends[0], ("job-of-a".into(), "report of a".into()));
            assert_eq!(ends[1].0, "job-of-b");
            assert!(ends[1].1.starts_with("error: ") && ends[1].1.contains("reading it failed"));
            assert_eq!(ends[2].0, "job-of-c");
            assert!(ends[2].1.starts_with("panic: "), "{ends:?}");
            assert!(running.is_empty());
            assert!(!running.is_busy("a"));
            // The failed ones wait out `retry_after`.
            let waiting = !retry_after.is_zero();
            assert_eq!(running.is_busy("b"), waiting, "{retry_after:?}");
            assert_eq!(running.is_busy("c"), waiting, "{retry_after:?}");
        }
    }

    /// A long-running service counts every job but keeps only the latest reports.
    #[test]
    fn the_summary_counts_every_job_and_keeps_the_latest_reports() {
        let report = |i: usize| completed(&format!("job-{i}"), "c");
        let mut summary = ServeSummary::default();
        for i in 0..3 {
            summary.record(report(i));
        }
        summary.record(JobReport {
            end: JobEnd::Skipped {
                reason: "claimed by another worker".to_string(),
            },
            ..report(99_999)
        });
        assert_eq!((summary.jobs_run, summary.skipped), (3, 1));
        assert_eq!(summary.jobs.len(), 4);
        let runs = 10 * SUMMARY_JOBS + 7;
        for i in 3..runs {
            summary.record(report(i));
        }
        assert_eq!(summary.jobs_run, runs as u64);
        assert_eq!(summary.jobs.len(), SUMMARY_JOBS);
        let ids: Vec<&str> = summary.jobs.iter().map(|r| r.job_id.as_str()).collect();
        let expected: Vec<String> = (runs - SUMMARY_JOBS..runs)
            .map(|i| format!("job-{i}"))
            .collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn runnable_needs_a_source_here_and_a_job_type_it_supports() {
        let registry = sources::builtin();
        for job_type in [JobType::Full, JobType::Incremental] {
            assert!(
                runnable(&registry, Some("generator"), job_type),
                "{job_type}"
            );
            assert!(
                !runnable(&registry, Some("sharepoint_online"), job_type),
                "{job_type}"
            );
            assert!(!runnable(&registry, None, job_type), "{job_type}");
        }
        // No source here implements document-level security.
        for factory in registry.factories() {
            assert!(!runnable(
                &registry,
                Some(factory.service_type()),
                JobType::AccessControl
            ));
        }
        assert!(!runnable(
            &Registry::empty(),
            Some("generator"),
            JobType::Full
        ));
    }

    /// A source whose host never answers: its ping hangs.
    struct Unanswering;

    #[async_trait::async_trait]
    impl crate::sources::DataSource for Unanswering {
        async fn ping(&mut self) -> Result<(), crate::sources::SourceError> {
            std::future::pending().await
        }
        async fn run(
            &mut self,
            _: crate::sources::SyncMode,
            _: crate::sources::ItemSender,
        ) -> Result<Option<serde_json::Value>, crate::sources::SourceError> {
            Ok(None)
        }
    }

    struct UnansweringFactory;

    impl SourceFactory for UnansweringFactory {
        fn service_type(&self) -> &'static str {
            "unanswering"
        }
        fn display_name(&self) -> &'static str {
            "Unanswering"
        }
        fn default_configuration(&self) -> Configuration {
            Configuration::default()
        }
        fn create(
            &self,
            _: &Configuration,
        ) -> Result<Box<dyn crate::sources::DataSource>, crate::sources::SourceError> {
            Ok(Box::new(Unanswering))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ping_that_never_answers_fails_within_the_tick_budget() {
        let started = tokio::time::Instant::now();
        let verdict = check_source(&UnansweringFactory, &Configuration::default()).await;
        let why = verdict.expect_err("a hung ping is a failure");
        assert!(why.contains("no answer to the ping within 20 s"), "{why}");
        assert_eq!(started.elapsed(), TICK_PING_BUDGET);
    }
}
