//! Performs the console's effects: the only part of the console that talks to the backend,
//! Kibana, this process's engine, the dead-letter queue, the log tail and an attached
//! worker. Each effect runs in its own task and answers with an `Action` through a channel,
//! so input never waits. Failures are logged (the Logs view shows them) and answered as
//! actions (toasts), never panics. Configuration values are never logged.

use super::app::{Action, Operation};
use super::effect::Effect;
use super::live::NodeRow;
use crate::backend::elasticsearch::ElasticsearchBackend;
use crate::backend::{
    ConfigurationUpdate, ConnectorQuery, ControlPlane, DocumentStore, SyncJobQuery,
};
use crate::config::{BreakerSettings, EngineSettings};
use crate::context::Context;
use crate::engine::dlq::{DeadLetterStore, DlqFilter, bind_cluster};
use crate::engine::lease;
use crate::engine::retry::retry_dead_letters;
use crate::engine::runner::{Engine, JobEnd};
use crate::engine::status::StatusDocument;
use crate::kibana::Kibana;
use crate::logging::LogTail;
use crate::model::{Configuration, JobStatus, Origin, Page, TriggerMethod};
use crate::sources::{ExternalFactory, Registry};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Dead letters loaded into the table at most (the header shows the queue's total).
pub const DLQ_PAGE: u64 = 10_000;
/// Connectors listed at most.
pub const MAX_CONNECTORS: u64 = 10_000;
/// How long a read of an attached worker's `/status` may take.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(2);

/// What effects are performed against: one profile's backends and engine.
pub struct Handles {
    pub profile_name: String,
    pub control: Arc<dyn ControlPlane>,
    pub documents: Arc<dyn DocumentStore>,
    pub elasticsearch: Option<Arc<ElasticsearchBackend>>,
    pub kibana: Option<Kibana>,
    pub engine: Engine,
    pub dlq: Arc<DeadLetterStore>,
    pub registry: Registry,
    pub engine_settings: EngineSettings,
    pub breaker_settings: BreakerSettings,
    pub log_tail: Option<LogTail>,
    pub http: reqwest::Client,
    /// Suspends syncs run here when the console quits.
    pub shutdown: CancellationToken,
}

impl Handles {
    /// Builds the engine the way `syncdeck sync` does, from a context.
    pub fn from_context(ctx: &Context, log_tail: Option<LogTail>) -> Result<Self, String> {
        let engine = crate::engine::build(ctx).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(ATTACH_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            profile_name: ctx.profile.name.clone(),
            control: ctx.control.clone(),
            documents: ctx.documents.clone(),
            elasticsearch: ctx.elasticsearch.clone(),
            kibana: ctx.kibana.clone(),
            dlq: engine.deps().dlq.clone(),
            registry: engine.deps().registry.clone(),
            engine,
            engine_settings: ctx.profile.engine.clone(),
            breaker_settings: ctx.profile.breaker.clone(),
            log_tail,
            http,
            shutdown: CancellationToken::new(),
        })
    }
}

fn fail(what: &str, error: impl std::fmt::Display) -> String {
    let error = error.to_string();
    tracing::warn!(what, %error, "console: action failed");
    error
}

fn failed(op: Operation, error: impl std::fmt::Display) -> Action {
    let error = fail(&op.to_string(), error);
    Action::Failed { op, error }
}

/// Performs one effect in the background. Effects the runtime owns (copy, quit, theme,
/// profile, mouse) are ignored here.
pub fn perform(handles: &Arc<Handles>, effect: Effect, tx: &UnboundedSender<Action>) {
    // In-process reads are answered at once: no task needed.
    match &effect {
        Effect::PollLive => {
            let _ = tx.send(Action::LiveLoaded(handles.engine.live().snapshots()));
            return;
        }
        Effect::PollLogs { known_total } => {
            if let Some(tail) = &handles.log_tail {
                let total = tail.total();
                if total != *known_total {
                    let _ = tx.send(Action::LogsLoaded {
                        lines: tail.lines(),
                        total,
                    });
                }
            }
            return;
        }
        Effect::LoadPool => {
            let Some(es) = handles.elasticsearch.clone() else {
                let _ = tx.send(Action::PoolLoaded(Ok(None)));
                return;
            };
            // Dead nodes are asked again first: one that came back shows alive now, not
            // after its backoff or the next sniff.
            let tx = tx.clone();
            tokio::spawn(async move {
                let revived = es.client().transport().recheck_dead_nodes().await;
                if revived > 0 {
                    tracing::info!(revived, "console: dead Elasticsearch nodes answer again");
                }
                let _ = tx.send(Action::PoolLoaded(Ok(Some(pool_rows(&es)))));
            });
            return;
        }
        Effect::ProbeNodes(urls) => {
            let urls = urls.clone();
            let Some(es) = handles.elasticsearch.clone() else {
                // Without Elasticsearch there is no pool to have left: nobody answers.
                let answers = urls.into_iter().map(|url| (url, false)).collect();
                let _ = tx.send(Action::NodesProbed(answers));
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                for action in probe_nodes(&es, urls).await {
                    let _ = tx.send(action);
                }
            });
            return;
        }
        Effect::Copy(_)
        | Effect::SwitchProfile(_)
        | Effect::LoadTheme(_)
        | Effect::SetMouse(_)
        | Effect::Quit => return,
        _ => {}
    }
    let h = handles.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let action = run(&h, effect, &tx).await;
        if let Some(action) = action {
            learn_secrets(&action);
            let _ = tx.send(action);
        }
    });
}

/// Every sensitive configuration value the cluster just handed over joins the masker before
/// any of it reaches the screen. A job's `error` or a connector's `error`, written by a worker
/// that did not mask it (the Python service does not), can echo one, and the screen masks
/// only what the masker knows. The CLI does the same for the jobs it prints.
fn learn_secrets(action: &Action) {
    use crate::sources::register_sensitive;
    match action {
        Action::ConnectorsLoaded(Ok(connectors)) => connectors
            .iter()
            .for_each(|c| register_sensitive(&c.configuration)),
        Action::ConnectorDetailLoaded {
            result: Ok((connector, jobs)),
            ..
        } => {
            register_sensitive(&connector.configuration);
            jobs.iter()
                .for_each(|j| register_sensitive(&j.connector.configuration));
        }
        Action::EditorLoaded {
            result: Ok(connector),
            ..
        } => register_sensitive(&connector.configuration),
        Action::JobsLoaded(Ok(jobs)) | Action::ActiveJobsLoaded(Ok(jobs)) => jobs
            .iter()
            .for_each(|j| register_sensitive(&j.connector.configuration)),
        _ => {}
    }
}

/// How long a vanished node may take to answer a probe: it is outside the pool, so the
/// request timeout (meant for real work) would only keep the view waiting on a dead node.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Vanished nodes asked at once, at most.
const PROBE_CONCURRENCY: usize = 8;

/// Asks the vanished nodes, all at once (bounded), whether they answer; the actions to
/// send, in order. An answer proves only that a node is reachable, not that it left the
/// cluster: a node that went down is sniffed out of the pool and answers again when it is
/// back, before the next sniff re-adds it. So when any answers and the transport sniffs,
/// the cluster decides: a sniff refreshes the pool first (`PoolLoaded`, where a node back
/// in `_nodes` is listed alive), and only a node that answers yet is not in `_nodes` drops
/// out. If that sniff fails nobody can tell, and every vanished node stays listed as dead.
async fn probe_nodes(es: &ElasticsearchBackend, urls: Vec<String>) -> Vec<Action> {
    use futures_util::StreamExt;
    let transport = es.client().transport();
    let mut answers: Vec<(String, bool)> = futures_util::stream::iter(urls)
        .map(|url| async move {
            let up = transport.answers(&url, PROBE_TIMEOUT).await;
            (url, up)
        })
        .buffered(PROBE_CONCURRENCY)
        .collect()
        .await;
    let mut actions = Vec::with_capacity(2);
    if answers.iter().any(|(_, up)| *up) && transport.sniffs() {
        match transport.sniff().await {
            Ok(_) => actions.push(Action::PoolLoaded(Ok(Some(pool_rows(es))))),
            Err(e) => {
                tracing::debug!(error = %e, "sniff after a vanished node answered failed");
                answers.iter_mut().for_each(|(_, up)| *up = false);
            }
        }
    }
    actions.push(Action::NodesProbed(answers));
    actions
}

fn pool_rows(es: &ElasticsearchBackend) -> Vec<NodeRow> {
    let now = Instant::now();
    es.client()
        .transport()
        .pool_snapshot()
        .into_iter()
        .map(|n| NodeRow {
            dead_for_ms: n.retry_in(now).map(|d| d.as_millis() as u64),
            url: n.url,
            alive: n.alive,
            failures: n.failures,
        })
        .collect()
}

async fn list_all_connectors(
    control: &dyn ControlPlane,
) -> Result<Vec<crate::model::Connector>, String> {
    let mut query = ConnectorQuery {
        size: Some(100),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let page: Page<_> = control
            .list_connectors(&query)
            .await
            .map_err(|e| fail("listing connectors", e))?;
        let got = page.results.len() as u64;
        all.extend(page.results);
        query.from += got;
        if got == 0 || query.from >= page.count || query.from >= MAX_CONNECTORS {
            return Ok(all);
        }
    }
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| fail(what, e)),
        Err(e) => Err(fail(what, e)),
    }
}

async fn run(h: &Arc<Handles>, effect: Effect, tx: &UnboundedSender<Action>) -> Option<Action> {
    let control = h.control.as_ref();
    Some(match effect {
        Effect::LoadCluster => {
            Action::ClusterLoaded(control.cluster().await.map_err(|e| fail("cluster", e)))
        }
        Effect::LoadKibanaStatus => match &h.kibana {
            Some(k) => {
                Action::KibanaStatusLoaded(k.status().await.map_err(|e| fail("Kibana status", e)))
            }
            None => return None,
        },
        Effect::LoadConnectors => Action::ConnectorsLoaded(list_all_connectors(control).await),
        Effect::LoadConnectorDetail(id) => {
            let result = async {
                let connector = control
                    .get_connector(&id)
                    .await
                    .map_err(|e| fail("connector detail", e))?;
                let query = SyncJobQuery {
                    connector_id: Some(id.clone()),
                    size: Some(10),
                    ..Default::default()
                };
                let jobs = control
                    .list_sync_jobs(&query)
                    .await
                    .map_err(|e| fail("connector jobs", e))?;
                Ok((connector, jobs.results))
            }
            .await;
            Action::ConnectorDetailLoaded { id, result }
        }
        Effect::LoadConnectorForEdit(id) => {
            let result = control
                .get_connector(&id)
                .await
                .map_err(|e| fail("opening the editor", e));
            Action::EditorLoaded { id, result }
        }
        Effect::LoadJobs(query) => Action::JobsLoaded(
            control
                .list_sync_jobs(&query)
                .await
                .map(|p| p.results)
                .map_err(|e| fail("listing sync jobs", e)),
        ),
        Effect::LoadActiveJobs => {
            let query = SyncJobQuery {
                status: Some(JobStatus::InProgress),
                size: Some(100),
                ..Default::default()
            };
            Action::ActiveJobsLoaded(
                control
                    .list_sync_jobs(&query)
                    .await
                    .map(|p| p.results)
                    .map_err(|e| fail("listing running jobs", e)),
            )
        }
        Effect::PollAttached(addr) => Action::AttachedLoaded(attached(&h.http, &addr).await),
        Effect::LoadDeadLetters => load_dead_letters(h, tx).await,
        Effect::CountDeadLetters { job_id } => count_dead_letters(h, job_id).await,
        Effect::LoadKibanaConnectors => match &h.kibana {
            Some(k) => Action::KibanaLoaded(
                k.connectors()
                    .await
                    .map_err(|e| fail("listing Kibana connectors", e)),
            ),
            None => return None,
        },
        Effect::StartSync {
            connector_id,
            job_type,
            run_here,
        } => {
            // Run here only what this engine can run (refused with the reason, no job made).
            let created = if run_here {
                h.engine
                    .create_job_to_run(&connector_id, job_type)
                    .await
                    .map_err(|e| e.to_string())
            } else {
                control
                    .create_sync_job(&connector_id, job_type, TriggerMethod::OnDemand)
                    .await
                    .map_err(|e| e.to_string())
            };
            let job_id = match created {
                Ok(id) => id,
                Err(e) => {
                    return Some(failed(
                        Operation::StartSync {
                            connector_id: connector_id.clone(),
                        },
                        e,
                    ));
                }
            };
            tracing::info!(connector = %connector_id, job = %job_id, %job_type, run_here, "console: sync job created");
            if run_here {
                spawn_job(h, job_id.clone(), tx.clone());
            }
            Action::SyncStarted {
                connector_id,
                job_id,
                run_here,
            }
        }
        Effect::CancelJob(id) => match control.cancel_sync_job(&id).await {
            Ok(()) => {
                if !h.engine.live().stop(&id) {
                    // Not ours: when no worker will end it, end it here (`canceled`).
                    let timeout = h.engine.deps().settings.idle_job_timeout;
                    if let Err(e) = lease::complete_orphaned_cancel(control, &id, timeout).await {
                        return Some(failed(Operation::CancelJob { job_id: id }, e));
                    }
                }
                tracing::info!(job = %id, "console: cancel requested");
                Action::JobCanceled(id)
            }
            Err(e) => failed(Operation::CancelJob { job_id: id }, e),
        },
        Effect::SaveConfig {
            connector_id,
            values,
        } => {
            let keys: Vec<String> = values.keys().cloned().collect();
            let n = values.len();
            let result = control
                .update_configuration(&connector_id, &ConfigurationUpdate::Values(values))
                .await;
            match &result {
                Ok(()) => {
                    tracing::info!(connector = %connector_id, ?keys, "console: configuration saved")
                }
                Err(e) => {
                    tracing::warn!(connector = %connector_id, ?keys, error = %e, "console: configuration not saved")
                }
            }
            Action::ConfigSaved {
                connector_id,
                result: result.map(|()| n).map_err(|e| e.to_string()),
            }
        }
        Effect::SaveConfigSchema {
            connector_id,
            configuration,
            changes,
        } => {
            let keys: Vec<String> = configuration.0.keys().cloned().collect();
            let result = control
                .update_configuration(&connector_id, &ConfigurationUpdate::Replace(configuration))
                .await;
            match &result {
                Ok(()) => {
                    tracing::info!(connector = %connector_id, ?keys, "console: configuration saved with its schema")
                }
                Err(e) => {
                    tracing::warn!(connector = %connector_id, error = %e, "console: configuration not saved")
                }
            }
            Action::ConfigSaved {
                connector_id,
                result: result.map(|()| changes).map_err(|e| e.to_string()),
            }
        }
        Effect::LoadSpec {
            connector_id,
            configuration,
        } => load_spec(connector_id, configuration).await,
        Effect::CreateConnector(new) => {
            let id = match control.create_connector(&new).await {
                Ok(id) => id,
                Err(e) => return Some(failed(Operation::CreateConnector, e)),
            };
            tracing::info!(connector = %id, "console: connector created");
            if let Some(factory) = new.service_type.as_deref().and_then(|t| h.registry.get(t))
                && let Err(e) = control
                    .update_configuration(
                        &id,
                        &ConfigurationUpdate::Replace(factory.default_configuration()),
                    )
                    .await
            {
                return Some(failed(
                    Operation::ConfigureConnector { connector_id: id },
                    e,
                ));
            }
            Action::ConnectorCreated(id)
        }
        Effect::DeleteConnector(id) => match control.delete_connector(&id, false, false).await {
            Ok(()) => {
                tracing::info!(connector = %id, "console: connector deleted");
                Action::ConnectorDeleted(id)
            }
            Err(e) => failed(Operation::DeleteConnector { connector_id: id }, e),
        },
        Effect::RetryDeadLetters(ids) => retry(h, ids).await,
        Effect::DropDeadLetters(ids) => {
            let dlq = h.dlq.clone();
            match blocking("dropping dead letters", move || {
                dlq.remove(&ids).map_err(|e| e.to_string())
            })
            .await
            {
                Ok(n) => {
                    tracing::info!(dropped = n, "console: dead letters dropped");
                    Action::DeadLettersDropped(n)
                }
                Err(e) => Action::Failed {
                    op: Operation::DropDeadLetters,
                    error: e,
                },
            }
        }
        Effect::KibanaCreateIndex {
            name,
            index,
            refresh,
        } => match &h.kibana {
            Some(k) => match k.create_index_connector(&name, &index, refresh, None).await {
                Ok(c) => Action::KibanaCreated(c.id),
                Err(e) => failed(Operation::KibanaCreate, e),
            },
            None => return None,
        },
        Effect::KibanaExecute { id, documents } => match &h.kibana {
            Some(k) => {
                let docs: Vec<Value> = match documents {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                let result = match k.execute_index(&id, &docs, None).await {
                    Ok(r) => match r.failure() {
                        None => Ok(format!("{} document(s) written", docs.len())),
                        Some(f) => Err(fail("executing the Kibana connector", f)),
                    },
                    Err(e) => Err(fail("executing the Kibana connector", e)),
                };
                Action::KibanaExecuted { id, result }
            }
            None => return None,
        },
        Effect::KibanaDelete(id) => match &h.kibana {
            Some(k) => match k.delete_connector(&id).await {
                Ok(()) => Action::KibanaDeleted(id),
                Err(e) => failed(Operation::KibanaDelete { id }, e),
            },
            None => return None,
        },
        Effect::PollLive | Effect::PollLogs { .. } | Effect::LoadPool | Effect::ProbeNodes(_) => {
            return None;
        }
        Effect::Copy(_)
        | Effect::SwitchProfile(_)
        | Effect::LoadTheme(_)
        | Effect::SetMouse(_)
        | Effect::Quit => return None,
    })
}

/// Runs a created job on this process's engine; reports its end.
fn spawn_job(h: &Arc<Handles>, job_id: String, tx: UnboundedSender<Action>) {
    let engine = h.engine.clone();
    let shutdown = h.shutdown.clone();
    tokio::spawn(async move {
        let report = engine.run_job(&job_id, &shutdown).await;
        // A start refused once its job existed (a live worker holds the guard) leaves no job.
        if let Ok(r) = &report
            && engine.discard_unstarted(r).await
        {
            tracing::info!(job = %job_id, "console: the refused start's job was deleted");
        }
        let (summary, ok) = match report {
            Ok(r) => {
                let c = &r.counters;
                let done = format!(
                    "{} indexed, {} deleted, {} dead-lettered",
                    c.indexed + c.updated,
                    c.deleted,
                    c.dead_lettered
                );
                match &r.end {
                    JobEnd::Completed => (
                        format!("sync {job_id} completed: {done}"),
                        c.dead_lettered == 0,
                    ),
                    JobEnd::Failed { error } => (format!("sync {job_id} failed: {error}"), false),
                    JobEnd::Canceled => (format!("sync {job_id} canceled: {done}"), true),
                    JobEnd::Suspended => (format!("sync {job_id} suspended"), true),
                    JobEnd::Skipped { reason } => {
                        (format!("sync {job_id} did not run: {reason}"), false)
                    }
                }
            }
            Err(e) => (
                format!("sync {job_id} failed: {}", fail("running a sync", e)),
                false,
            ),
        };
        tracing::info!(job = %job_id, %summary, "console: sync ended");
        let _ = tx.send(Action::SyncFinished {
            job_id,
            summary,
            ok,
        });
    });
}

/// The profile's cluster's open dead letters: the queue is shared by every profile, so the
/// handle is bound to the cluster first (and the view told whose queue it shows).
async fn load_dead_letters(h: &Arc<Handles>, tx: &UnboundedSender<Action>) -> Action {
    if let Err(e) = bind_cluster(&h.dlq, h.control.as_ref()).await {
        return Action::DeadLettersLoaded(Err(fail("listing dead letters", e)));
    }
    let dlq = h.dlq.clone();
    let loaded = blocking("listing dead letters", move || {
        let origin = dlq.origin();
        let mine = DlqFilter {
            cluster: Some(origin.cluster_uuid.clone()),
            ..Default::default()
        };
        let rows = dlq
            .list(&DlqFilter {
                limit: Some(DLQ_PAGE),
                ..mine.clone()
            })
            .map_err(|e| e.to_string())?;
        let total = dlq.count(&mine).map_err(|e| e.to_string())?;
        let unknown = dlq
            .count(&DlqFilter {
                cluster: Some(Origin::UNKNOWN.to_string()),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
        Ok((rows, total, origin, unknown))
    })
    .await;
    match loaded {
        Ok((rows, total, origin, unknown)) => {
            let _ = tx.send(Action::DeadLetterScope {
                cluster: origin.to_string(),
                unknown,
            });
            Action::DeadLettersLoaded(Ok((rows, total)))
        }
        Err(e) => Action::DeadLettersLoaded(Err(e)),
    }
}

/// A job's open dead letters of the profile's cluster.
async fn count_dead_letters(h: &Arc<Handles>, job_id: String) -> Action {
    if let Err(e) = bind_cluster(&h.dlq, h.control.as_ref()).await {
        return Action::DeadLettersCounted {
            job_id,
            result: Err(fail("counting dead letters", e)),
        };
    }
    let (dlq, id) = (h.dlq.clone(), job_id.clone());
    let result = blocking("counting dead letters", move || {
        let filter = DlqFilter {
            cluster: Some(dlq.origin().cluster_uuid.clone()),
            job_id: Some(id),
            ..Default::default()
        };
        dlq.count(&filter).map_err(|e| e.to_string())
    })
    .await;
    Action::DeadLettersCounted { job_id, result }
}

async fn retry(h: &Arc<Handles>, ids: Vec<i64>) -> Action {
    let dlq = h.dlq.clone();
    let entries = match blocking("reading dead letters", move || {
        let mut out = Vec::new();
        for id in ids {
            if let Some(entry) = dlq.get(id).map_err(|e| e.to_string())? {
                out.push(entry);
            }
        }
        Ok(out)
    })
    .await
    {
        Ok(entries) => entries,
        Err(e) => {
            return Action::Failed {
                op: Operation::ReadDeadLetters,
                error: e,
            };
        }
    };
    if let Err(e) = bind_cluster(&h.dlq, h.control.as_ref()).await {
        return failed(Operation::RetryDeadLetters, e);
    }
    let cancel = h.shutdown.child_token();
    match retry_dead_letters(
        h.documents.clone(),
        h.control.as_ref(),
        h.dlq.clone(),
        entries,
        &h.engine_settings,
        &h.breaker_settings,
        &cancel,
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                succeeded = report.succeeded.len(),
                failed = report.failed.len(),
                superseded = report.superseded.len(),
                "console: dead letters retried"
            );
            Action::DeadLettersRetried {
                succeeded: report.succeeded,
                failed: report.failed,
                superseded: report.superseded,
            }
        }
        Err(e) => failed(Operation::RetryDeadLetters, e),
    }
}

async fn attached(http: &reqwest::Client, addr: &str) -> Result<StatusDocument, String> {
    let url = format!("http://{addr}/status");
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("'{url}': {e}"))?;
    if !response.status().is_success() {
        return Err(format!("'{url}' answered {}", response.status()));
    }
    response
        .json::<StatusDocument>()
        .await
        .map_err(|e| format!("'{url}' did not answer a status document: {e}"))
}

/// Runs an `external` connector's program with `spec` as `configuration` names it and
/// answers with the fields it describes (`Effect::LoadSpec`). Public so tests can drive it
/// without a backend: it needs none.
pub async fn load_spec(connector_id: String, configuration: Configuration) -> Action {
    let result = ExternalFactory::load_spec(&configuration)
        .await
        .map_err(|e| fail(&format!("loading the spec of '{connector_id}'"), e));
    if let Ok(spec) = &result {
        tracing::info!(connector = %connector_id, fields = spec.0.len(), "console: spec loaded");
    }
    Action::SpecLoaded {
        connector_id,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConfigField, JobStatus, JobType, SyncJob, SyncJobConnector};

    fn configuration(secret: &str) -> Configuration {
        let mut config = Configuration::default();
        config.0.insert(
            "password".into(),
            ConfigField {
                sensitive: true,
                value: Value::from(secret),
                ..Default::default()
            },
        );
        config
    }

    fn job(secret: &str) -> SyncJob {
        SyncJob {
            id: "j".into(),
            connector: SyncJobConnector {
                configuration: configuration(secret),
                ..Default::default()
            },
            job_type: JobType::Full,
            trigger_method: Default::default(),
            status: JobStatus::Error,
            created_at: None,
            worker_hostname: None,
            started_at: None,
            completed_at: None,
            cancelation_requested_at: None,
            canceled_at: None,
            last_seen: None,
            indexed_document_count: 0,
            deleted_document_count: 0,
            total_document_count: None,
            indexed_document_volume: 0,
            metadata: Default::default(),
            error: Some(format!("auth failed for {secret}")),
            extra: Default::default(),
        }
    }

    #[test]
    fn a_loaded_job_or_connector_teaches_the_masker_its_secrets() {
        // Distinct per case: the masker is process-wide.
        let in_jobs = "io-test-jobs-secret-8f2c";
        let in_active = "io-test-active-secret-3a91";
        let in_connectors = "io-test-connector-secret-77d0";
        for secret in [in_jobs, in_active, in_connectors] {
            assert!(
                crate::secret::mask(secret).contains(secret),
                "not yet known"
            );
        }
        learn_secrets(&Action::JobsLoaded(Ok(vec![job(in_jobs)])));
        learn_secrets(&Action::ActiveJobsLoaded(Ok(vec![job(in_active)])));
        let connector: crate::model::Connector = serde_json::from_value(serde_json::json!({
            "id": "c1",
            "configuration": {"password": {"label": "Password", "sensitive": true, "value": in_connectors}}
        }))
        .unwrap();
        learn_secrets(&Action::ConnectorsLoaded(Ok(vec![connector])));
        for secret in [in_jobs, in_active, in_connectors] {
            let text = format!("auth failed for {secret}");
            let shown = crate::secret::mask(&text);
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
