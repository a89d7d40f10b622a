//! `serve` as a good citizen of a shared cluster (issue 9, the service loop; issue 12, its
//! idle cost), against the stand-in: it leaves connectors and jobs it cannot run untouched,
//! merges a partial configuration as Elastic's Python service does, writes features once,
//! ends abandoned jobs (idle and orphaned) with the fields that service writes and never a
//! live one, schedules exactly one job per due tick among two services, puts an invalid cron
//! on the connector, and costs the cluster the same number of requests per idle tick
//! whatever the number of connectors.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ControlPlane, SyncJobQuery};
use syncdeck::engine::cleanup::IDLE_JOB_ERROR;
use syncdeck::engine::runner::Engine;
use syncdeck::engine::service::{ServeOptions, ServeSummary, serve};
use syncdeck::model::{
    Features, JobType, NewConnector, ScheduleConfig, Scheduling, SyncStats, TriggerMethod,
};
use tokio_util::sync::CancellationToken;

const CONNECTORS: &str = ".elastic-connectors";
const JOBS: &str = ".elastic-connectors-sync-jobs";

async fn standin() -> StandIn {
    StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await
}

/// An engine over the stand-in whose idle-job timeout is `idle_timeout`.
fn es_engine(es: &Arc<ElasticsearchBackend>, worker: &str, idle_timeout: Duration) -> Engine {
    let mut settings = fast_settings();
    settings.idle_job_timeout = idle_timeout;
    engine_with(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        worker,
        settings,
        fast_breaker(),
    )
}

fn ticks(n: u64) -> ServeOptions {
    ServeOptions {
        idle: Duration::from_millis(20),
        max_ticks: Some(n),
        ..Default::default()
    }
}

async fn run(engine: &Engine, options: &ServeOptions) -> ServeSummary {
    serve(engine, options, CancellationToken::new()).await
}

/// A stored document without the `id` the stand-in's reader adds, to write it back as is.
fn stored(mut doc: Value) -> Value {
    if let Some(m) = doc.as_object_mut() {
        m.remove("id");
    }
    doc
}

/// Claims a job as a worker named `worker` would, and reports `indexed`/`deleted` counts.
async fn claim_with_stats(
    es: &ElasticsearchBackend,
    connector: &str,
    job: &str,
    job_type: JobType,
    indexed: u64,
    deleted: u64,
) {
    assert!(es.mark_sync_started(connector, job_type).await.unwrap());
    es.claim_sync_job(job, "ghost", None).await.unwrap();
    let stats = SyncStats {
        indexed_document_count: indexed,
        deleted_document_count: deleted,
        indexed_document_volume: 1,
        total_document_count: None,
        last_seen: None,
        metadata: None,
    };
    es.update_sync_job_stats(job, &stats).await.unwrap();
}

// 1. Claim only what you can run. ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrunnable_connector_and_its_jobs_are_left_untouched() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let mysql = es
        .create_connector(&NewConnector {
            id: Some("mysql-1".into()),
            name: Some("orders".into()),
            index_name: Some("orders".into()),
            service_type: Some("sharepoint_online".into()),
            is_native: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    // Configured by its own service: a schema syncdeck has never heard of.
    let mut doc = stored(standin.connector(&mysql).unwrap());
    doc["configuration"] = json!({"host": {"label": "Host", "value": "db", "type": "str"}});
    doc["status"] = json!("connected");
    standin.put_doc(CONNECTORS, &mysql, doc);
    let pending = es
        .create_sync_job(&mysql, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    // A runnable connector beside it, with an access-control job no source here can run.
    let generator = generator_connector(es.as_ref(), "gen-1", "gen-1", 5, 0, 0).await;
    let acl = es
        .create_sync_job(&generator, JobType::AccessControl, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let connector_before = standin.connector(&mysql).unwrap();
    let job_before = standin.sync_job(&pending).unwrap();
    let acl_before = standin.sync_job(&acl).unwrap();
    standin.clear_requests();

    // Named explicitly, as `serve --connector mysql-1 --connector gen-1` does.
    let engine = es_engine(&es, "picky", Duration::from_secs(300));
    let options = ServeOptions {
        connector_ids: vec![mysql.clone(), generator.clone()],
        ..ticks(3)
    };
    let summary = run(&engine, &options).await;

    assert!(summary.jobs.is_empty(), "{summary:?}");
    assert_eq!(standin.connector(&mysql).unwrap(), connector_before);
    assert_eq!(standin.sync_job(&pending).unwrap(), job_before);
    assert_eq!(standin.sync_job(&acl).unwrap(), acl_before);
    let touched: Vec<String> = standin
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && (r.path.contains(&mysql) || r.path.contains(&pending)))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

// 2. Configuration merge. --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_configuration_is_merged_with_the_sources_fields() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "partial", "partial", 5, 0, 0).await;
    // Made elsewhere: some of the source's fields, one value set, a field marked sensitive
    // by its author, a field and a property this version does not know.
    let mut doc = stored(standin.connector(&id).unwrap());
    doc["configuration"] = json!({
        "count": {"label": "Documents", "value": 5, "type": "int", "order": 1,
                  "required": true, "sensitive": false, "ui_hint": "compact"},
        "seed": {"label": "Seed", "value": 7, "type": "int", "order": 3,
                 "required": true, "sensitive": true},
        "api_token": {"label": "API token", "value": "s3cret", "type": "str", "order": 6,
                      "required": false, "sensitive": true},
        "legacy_flag": {"label": "Legacy", "value": "keep me", "type": "str", "order": 9},
    });
    doc["status"] = json!("configured");
    standin.put_doc(CONNECTORS, &id, doc);

    let engine = es_engine(&es, "merger", Duration::from_secs(300));
    run(
        &engine,
        &ServeOptions {
            connector_ids: vec![id.clone()],
            ..ticks(2)
        },
    )
    .await;

    let c = standin.connector(&id).unwrap();
    let config = &c["configuration"];
    assert_eq!(c["status"], "connected", "{c:#}");
    // Values, sensitivity and unknown properties stay.
    assert_eq!(config["count"]["value"], 5, "{config:#}");
    assert_eq!(config["count"]["ui_hint"], "compact", "{config:#}");
    assert_eq!(config["seed"]["value"], 7, "{config:#}");
    assert_eq!(config["seed"]["sensitive"], true, "{config:#}");
    assert_eq!(config["api_token"]["value"], "s3cret", "{config:#}");
    assert_eq!(config["api_token"]["sensitive"], true, "{config:#}");
    assert_eq!(config["legacy_flag"]["value"], "keep me", "{config:#}");
    // The missing fields come with their defaults.
    assert_eq!(config["doc_bytes"]["value"], 1024, "{config:#}");
    assert_eq!(config["rate"]["value"], 0, "{config:#}");
    assert_eq!(config["poison_every"]["value"], 0, "{config:#}");
    // Written once: the second tick found nothing missing.
    let writes = standin
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("{id}/_configuration")))
        .count();
    assert_eq!(
        writes, 2,
        "by the set-up only: the service updates the document"
    );
    let merges = standin
        .requests()
        .iter()
        .filter(|r| r.path == format!("/.elastic-connectors/_update/{id}"))
        .count();
    assert_eq!(merges, 1, "one merge, in the first tick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_merges_a_partial_configuration_too() {
    use syncdeck::backend::ConfigurationUpdate;
    use syncdeck::sources::{GeneratorFactory, SourceFactory};
    let backend = EmbeddedBackend::open_in_memory().unwrap();
    let id = generator_connector(&backend, "emb-partial", "emb-partial", 5, 0, 0).await;
    let mut partial = GeneratorFactory.default_configuration();
    partial.0.retain(|key, _| key == "count" || key == "seed");
    partial.0.get_mut("count").unwrap().value = json!(5);
    partial.0.get_mut("seed").unwrap().sensitive = true;
    backend
        .update_configuration(&id, &ConfigurationUpdate::Replace(partial))
        .await
        .unwrap();
    let (engine, _) = {
        let engine = engine(
            Arc::new(backend.clone()),
            Arc::new(backend.clone()),
            memory_dlq(),
            marking_registry(),
            "merger",
        );
        (engine, ())
    };

    run(&engine, &ticks(1)).await;

    let c = backend.get_connector(&id).await.unwrap();
    let config = &c.configuration;
    assert_eq!(config.get("count").unwrap().value, json!(5));
    assert!(config.get("seed").unwrap().sensitive);
    assert_eq!(config.get("doc_bytes").unwrap().value, json!(1024));
    assert!(config.get("api_token").unwrap().sensitive);
    assert_eq!(
        c.status,
        syncdeck::model::ConnectorStatus::Connected,
        "{c:?}"
    );
}

// 3. Features. -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_are_written_once_and_not_again_after_another_writer() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "feat", "feat", 5, 0, 0).await;
    standin.clear_requests();
    let engine = es_engine(&es, "features", Duration::from_secs(300));
    let options = ServeOptions {
        connector_ids: vec![id.clone()],
        ..ticks(40)
    };
    let serving = tokio::spawn(async move { run(&engine, &options).await });
    let path = format!("/_connector/{id}/_features");
    wait_for("the service's features", Duration::from_secs(10), || {
        standin.requests().iter().any(|r| r.path == path)
    })
    .await;
    // Another service (the Python one, Kibana) says otherwise.
    let other: Features =
        serde_json::from_value(json!({"incremental_sync": {"enabled": true}})).unwrap();
    let writer = es_backend(&standin.es_urls());
    writer.update_features(&id, &other).await.unwrap();
    let summary = serving.await.unwrap();

    let requests = standin.requests();
    let writes: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path == path)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        writes.len(),
        2,
        "one by the service, one by the other writer"
    );
    let ticks_after = requests[writes[1]..]
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/_connector")
        .count();
    assert!(
        ticks_after >= 3,
        "only {ticks_after} ticks after the other write ({summary:?})"
    );
    let c = standin.connector(&id).unwrap();
    assert_eq!(c["features"]["incremental_sync"]["enabled"], true, "{c:#}");
    assert_eq!(
        c["features"]["sync_rules"]["basic"]["enabled"], true,
        "{c:#}"
    );
}

// 4. Reaper and cleanup. ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_full_job_ends_with_completed_at_its_counts_and_the_connectors_last_sync() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "idle-full", "idle-full", 5, 0, 0).await;
    let job = es
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    claim_with_stats(&es, &id, &job, JobType::Full, 42, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let engine = es_engine(&es, "reaper", Duration::from_millis(300));
    // Not served here (another service type's worker ran it): the cleanup covers the cluster.
    let summary = run(
        &engine,
        &ServeOptions {
            connector_ids: vec!["someone-else".into()],
            ..ticks(1)
        },
    )
    .await;

    assert_eq!((summary.reaped, summary.orphaned), (1, 0), "{summary:?}");
    let j = standin.sync_job(&job).unwrap();
    assert_eq!(j["status"], "error", "{j:#}");
    assert_eq!(j["error"], IDLE_JOB_ERROR, "{j:#}");
    assert!(j["completed_at"].is_string(), "{j:#}");
    assert_eq!(
        (
            j["indexed_document_count"].clone(),
            j["deleted_document_count"].clone()
        ),
        (json!(42), json!(3)),
        "{j:#}"
    );
    let c = standin.connector(&id).unwrap();
    assert_eq!(c["last_sync_status"], "error", "{c:#}");
    assert_eq!(c["last_sync_error"], IDLE_JOB_ERROR, "{c:#}");
    assert_eq!(c["last_indexed_document_count"], 42, "{c:#}");
    assert_eq!(c["last_deleted_document_count"], 3, "{c:#}");
    assert_eq!(c["status"], "error", "{c:#}");
    assert_eq!(c["error"], IDLE_JOB_ERROR, "{c:#}");
    assert!(c["last_access_control_sync_status"].is_null(), "{c:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_access_control_job_ends_in_the_access_control_fields() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "idle-acl", "idle-acl", 5, 0, 0).await;
    let job = es
        .create_sync_job(&id, JobType::AccessControl, TriggerMethod::OnDemand)
        .await
        .unwrap();
    claim_with_stats(&es, &id, &job, JobType::AccessControl, 7, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let engine = es_engine(&es, "reaper", Duration::from_millis(300));
    let summary = run(&engine, &ticks(1)).await;

    assert_eq!(summary.reaped, 1, "{summary:?}");
    let j = standin.sync_job(&job).unwrap();
    assert_eq!(j["status"], "error", "{j:#}");
    assert!(j["completed_at"].is_string(), "{j:#}");
    assert_eq!(j["indexed_document_count"], 7, "{j:#}");
    let c = standin.connector(&id).unwrap();
    assert_eq!(c["last_access_control_sync_status"], "error", "{c:#}");
    assert_eq!(c["last_access_control_sync_error"], IDLE_JOB_ERROR, "{c:#}");
    assert!(
        c["last_sync_status"].is_null(),
        "the content fields stay: {c:#}"
    );
    assert!(c["last_sync_error"].is_null(), "{c:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_jobs_of_deleted_connectors_are_ended_without_touching_a_connector() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let mut jobs = Vec::new();
    for name in ["soft-gone", "hard-gone"] {
        let id = generator_connector(es.as_ref(), name, name, 5, 0, 0).await;
        let job = es
            .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        claim_with_stats(&es, &id, &job, JobType::Full, 9, 0).await;
        jobs.push((id, job));
    }
    es.delete_connector("soft-gone", false, false)
        .await
        .unwrap();
    assert!(standin.delete_doc(CONNECTORS, "hard-gone"));
    let soft_before = standin.connector("soft-gone").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let engine = es_engine(&es, "reaper", Duration::from_millis(300));
    let summary = run(&engine, &ticks(1)).await;

    assert_eq!((summary.reaped, summary.orphaned), (0, 2), "{summary:?}");
    for (_, job) in &jobs {
        let j = standin.sync_job(job).unwrap();
        assert_eq!(j["status"], "error", "{j:#}");
        assert_eq!(j["error"], IDLE_JOB_ERROR, "{j:#}");
        assert!(j["completed_at"].is_string(), "{j:#}");
        assert_eq!(j["indexed_document_count"], 9, "{j:#}");
    }
    assert_eq!(standin.connector("soft-gone").unwrap(), soft_before);
    assert!(standin.connector("hard-gone").is_none(), "not recreated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_job_is_never_reaped_even_when_its_connector_is_gone() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let mut jobs = Vec::new();
    for name in ["live", "live-gone"] {
        let id = generator_connector(es.as_ref(), name, name, 5, 0, 0).await;
        let job = es
            .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        claim_with_stats(&es, &id, &job, JobType::Full, 1, 0).await;
        jobs.push(job);
    }
    assert!(standin.delete_doc(CONNECTORS, "live-gone"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Its worker is alive: it checked in just now.
    for job in &jobs {
        es.check_in_sync_job(job).await.unwrap();
    }

    // A lease far longer than the test: a loaded machine must not make the check-in stale.
    let engine = es_engine(&es, "reaper", Duration::from_secs(60));
    let summary = run(&engine, &ticks(1)).await;

    assert_eq!((summary.reaped, summary.orphaned), (0, 0), "{summary:?}");
    for job in &jobs {
        let j = standin.sync_job(job).unwrap();
        assert_eq!(j["status"], "in_progress", "{j:#}");
        assert!(j["completed_at"].is_null(), "{j:#}");
    }
    assert_eq!(
        standin.connector("live").unwrap()["last_sync_status"],
        "in_progress"
    );
}

/// A holder whose worker is provably dead (this host and process space, no such process) is
/// taken over by `serve` at once, as `sync` does, long before its lease or the cleanup would
/// end it; a live holder's queued job waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_over_a_provably_dead_holder_at_once_and_leaves_a_live_one() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let dead = syncdeck::engine::lease::worker_name_for(pid);
    let mut queued = Vec::new();
    let mut holders = Vec::new();
    for (name, worker) in [
        ("dead-holder", dead.as_str()),
        ("live-holder", "elsewhere/7"),
    ] {
        let id = generator_connector(es.as_ref(), name, name, 5, 0, 0).await;
        let holder = es
            .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        assert!(es.mark_sync_started(&id, JobType::Full).await.unwrap());
        es.claim_sync_job(&holder, worker, None).await.unwrap();
        es.check_in_sync_job(&holder).await.unwrap();
        holders.push(holder);
        queued.push(
            es.create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
                .await
                .unwrap(),
        );
    }

    // A lease and a cleanup interval far longer than the test: only the dead pid can free it.
    let engine = es_engine(&es, "server", Duration::from_secs(600));
    let options = ServeOptions {
        job_cleanup_interval: Duration::from_secs(3600),
        ..ticks(3)
    };
    let summary = run(&engine, &options).await;

    assert_eq!((summary.reaped, summary.orphaned), (0, 0), "{summary:?}");
    let orphan = standin.sync_job(&holders[0]).unwrap();
    assert_eq!(orphan["status"], "error", "{orphan:#}");
    assert!(
        orphan["error"].as_str().unwrap_or_default().contains(&dead),
        "{orphan:#}"
    );
    let job = standin.sync_job(&queued[0]).unwrap();
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        standin.connector("dead-holder").unwrap()["last_sync_status"],
        "completed"
    );
    // The live holder keeps its guard, and its queued job stays queued.
    assert_eq!(
        standin.sync_job(&holders[1]).unwrap()["status"],
        "in_progress"
    );
    assert_eq!(standin.sync_job(&queued[1]).unwrap()["status"], "pending");
}

/// Fails the listing of one connector's running jobs (what the takeover check reads).
struct HolderUnreadable {
    connector: String,
}

#[async_trait::async_trait]
impl support::forwarding::Hooks for HolderUnreadable {
    async fn list_sync_jobs(
        &self,
        inner: &dyn ControlPlane,
        query: &SyncJobQuery,
    ) -> syncdeck::backend::Result<syncdeck::model::Page<syncdeck::model::SyncJob>> {
        if query.connector_id.as_deref() == Some(self.connector.as_str()) {
            return Err(syncdeck::backend::BackendError::Unreachable(
                "the holder's jobs could not be read".into(),
            ));
        }
        inner.list_sync_jobs(query).await
    }
}

/// A control-plane error while checking one connector's guard holder leaves that job for a
/// later tick; the next connector's job is still picked up in the same tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_be_read_does_not_stop_other_connectors_jobs() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let held = generator_connector(es.as_ref(), "held", "held", 5, 0, 0).await;
    let holder = es
        .create_sync_job(&held, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    assert!(es.mark_sync_started(&held, JobType::Full).await.unwrap());
    es.claim_sync_job(&holder, "elsewhere/7", None)
        .await
        .unwrap();
    let waiting = es
        .create_sync_job(&held, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let free = generator_connector(es.as_ref(), "free", "free", 5, 0, 0).await;
    let queued = es
        .create_sync_job(&free, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let control = Arc::new(support::forwarding::Forwarding::new(
        es.clone(),
        HolderUnreadable {
            connector: held.clone(),
        },
    ));
    let mut settings = fast_settings();
    settings.idle_job_timeout = Duration::from_secs(600);
    let engine = engine_with(
        control,
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "server",
        settings,
        fast_breaker(),
    );
    let options = ServeOptions {
        job_cleanup_interval: Duration::from_secs(3600),
        ..ticks(3)
    };
    run(&engine, &options).await;

    let job = standin.sync_job(&queued).unwrap();
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(standin.sync_job(&waiting).unwrap()["status"], "pending");
    assert_eq!(standin.sync_job(&holder).unwrap()["status"], "in_progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_cleans_up_idle_jobs_too() {
    let backend = EmbeddedBackend::open_in_memory().unwrap();
    let id = generator_connector(&backend, "emb-idle", "emb-idle", 5, 0, 0).await;
    let job = backend
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    assert!(backend.mark_sync_started(&id, JobType::Full).await.unwrap());
    backend.claim_sync_job(&job, "ghost", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut settings = fast_settings();
    settings.idle_job_timeout = Duration::from_millis(300);
    let engine = engine_with(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        memory_dlq(),
        marking_registry(),
        "reaper",
        settings,
        fast_breaker(),
    );

    let summary = run(&engine, &ticks(1)).await;

    assert_eq!(summary.reaped, 1, "{summary:?}");
    let j = backend.get_sync_job(&job).await.unwrap();
    assert_eq!(j.error.as_deref(), Some(IDLE_JOB_ERROR), "{j:?}");
    assert!(j.completed_at.is_some(), "{j:?}");
    let c = backend.get_connector(&id).await.unwrap();
    assert_eq!(c.last_sync_error.as_deref(), Some(IDLE_JOB_ERROR), "{c:?}");
}

// 5. Scheduling. -----------------------------------------------------------------------------

/// Waits, if needed, until the wall clock is at least `margin` seconds before the next
/// minute, so a test does not straddle a schedule's next minute.
/// A daily schedule that fired once, on the whole minute a minute or two ago, and fires next
/// a day later: exactly one due time in a service's first tick with `scheduled_since` of
/// [`since_before_it`], and none after it, whenever the test runs. A schedule of every minute
/// would need the test to wait out a minute boundary to have one due time.
fn fired_a_minute_ago() -> Scheduling {
    use chrono::Timelike;
    let at = chrono::Utc::now() - chrono::Duration::minutes(1);
    Scheduling {
        full: ScheduleConfig {
            enabled: true,
            interval: format!("0 {} {} * * ?", at.minute(), at.hour()),
        },
        ..Default::default()
    }
}

/// A previous tick before the time [`fired_a_minute_ago`] fired (it fired less than two
/// minutes ago; a minute more of margin for a slow set-up).
fn since_before_it() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::minutes(3)
}

fn every_minute() -> Scheduling {
    Scheduling {
        full: ScheduleConfig {
            enabled: true,
            interval: "0 * * * * ?".into(),
        },
        ..Default::default()
    }
}

fn scheduled_jobs(standin: &StandIn, connector: &str) -> usize {
    standin
        .index_docs(JOBS)
        .iter()
        .filter(|(_, j)| j["connector"]["id"] == connector && j["trigger_method"] == "scheduled")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_create_exactly_one_job_per_due_tick() {
    let standin = standin().await;
    let setup = es_backend(&standin.es_urls());
    let mut ids = Vec::new();
    let scheduling = fired_a_minute_ago();
    for i in 0..5 {
        let name = format!("cron-{i}");
        let id = generator_connector(setup.as_ref(), &name, &name, 5, 0, 0).await;
        setup.update_scheduling(&id, &scheduling).await.unwrap();
        ids.push(id);
    }
    // Both started a little while ago: the time it fired is due on their first tick.
    let since = since_before_it();
    let options = ServeOptions {
        scheduled_since: Some(since),
        max_concurrent_syncs: 5,
        ..ticks(6)
    };
    let a = es_engine(
        &es_backend(&standin.es_urls()),
        "sched-a",
        Duration::from_secs(300),
    );
    let b = es_engine(
        &es_backend(&standin.es_urls()),
        "sched-b",
        Duration::from_secs(300),
    );

    let (sa, sb) = tokio::join!(run(&a, &options), run(&b, &options));

    assert_eq!(
        sa.scheduled + sb.scheduled,
        ids.len() as u64,
        "{sa:?} {sb:?}"
    );
    for id in &ids {
        assert_eq!(scheduled_jobs(&standin, id), 1, "connector {id}");
        let c = standin.connector(id).unwrap();
        let marked: chrono::DateTime<chrono::Utc> = c["last_sync_scheduled_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(marked > since, "{c:#}");
    }
    // The marks were guarded by the connector's version.
    let guarded = standin
        .requests()
        .iter()
        .filter(|r| {
            r.path.starts_with("/.elastic-connectors/_update/") && r.query.contains("if_seq_no")
        })
        .count();
    assert!(guarded >= ids.len(), "{guarded} guarded writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_cron_is_the_connectors_error() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "bad-cron", "bad-cron", 5, 0, 0).await;
    // Valid Quartz for Elasticsearch, not understood by the connectors service (no `L`).
    let mut scheduling = every_minute();
    scheduling.full.interval = "0 0 0 L * ?".into();
    es.update_scheduling(&id, &scheduling).await.unwrap();
    let engine = es_engine(&es, "cron", Duration::from_secs(300));
    let options = ServeOptions {
        connector_ids: vec![id.clone()],
        scheduled_since: Some(chrono::Utc::now() - chrono::Duration::days(40)),
        ..ticks(1)
    };

    run(&engine, &options).await;
    let c = standin.connector(&id).unwrap();
    assert_eq!(c["status"], "error", "{c:#}");
    let error = c["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cron expression '0 0 0 L * ?'"),
        "{error}"
    );
    assert_eq!(scheduled_jobs(&standin, &id), 0);

    // It stays so, with no writes back and forth.
    standin.clear_requests();
    run(
        &engine,
        &ServeOptions {
            max_ticks: Some(3),
            ..options
        },
    )
    .await;
    let writes: Vec<String> = standin
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.contains(&id))
        .map(|r| r.path.clone())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(standin.connector(&id).unwrap()["status"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_on_one_embedded_store_create_one_job_per_due_tick() {
    let backend = EmbeddedBackend::open_in_memory().unwrap();
    let mut ids = Vec::new();
    let scheduling = fired_a_minute_ago();
    for i in 0..3 {
        let name = format!("cron-{i}");
        let id = generator_connector(&backend, &name, &name, 5, 0, 0).await;
        backend.update_scheduling(&id, &scheduling).await.unwrap();
        ids.push(id);
    }
    let since = since_before_it();
    let options = ServeOptions {
        scheduled_since: Some(since),
        max_concurrent_syncs: 3,
        ..ticks(6)
    };
    let worker = |name: &str| {
        engine(
            Arc::new(backend.clone()),
            Arc::new(backend.clone()),
            memory_dlq(),
            marking_registry(),
            name,
        )
    };
    let (a, b) = (worker("sched-a"), worker("sched-b"));

    let (sa, sb) = tokio::join!(run(&a, &options), run(&b, &options));

    assert_eq!(
        sa.scheduled + sb.scheduled,
        ids.len() as u64,
        "{sa:?} {sb:?}"
    );
    for id in &ids {
        let query = SyncJobQuery {
            connector_id: Some(id.clone()),
            ..Default::default()
        };
        let jobs = backend.list_sync_jobs(&query).await.unwrap().results;
        let scheduled = jobs
            .iter()
            .filter(|j| j.trigger_method == TriggerMethod::Scheduled)
            .count();
        assert_eq!(scheduled, 1, "connector {id}: {jobs:?}");
    }
}

// 6. Idle cost. ------------------------------------------------------------------------------

/// Requests a service sends in `n` idle ticks over `connectors` connectors, after a first
/// tick that checked them in and set them up.
async fn idle_requests(connectors: usize, n: u64) -> usize {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    for i in 0..connectors {
        let name = format!("idle-{i}");
        generator_connector(es.as_ref(), &name, &name, 5, 0, 0).await;
    }
    let engine = es_engine(&es, "idle", Duration::from_secs(300));
    run(&engine, &ticks(1)).await;
    // Nothing left to do: every connector is connected, has its features and is checked in.
    let c = standin.connector("idle-0").unwrap();
    assert_eq!(c["status"], "connected", "{c:#}");
    standin.clear_requests();
    run(&engine, &ticks(n)).await;
    standin.requests().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_idle_tick_do_not_grow_with_the_connectors() {
    const TICKS: u64 = 5;
    let mut table = Vec::new();
    for connectors in [1, 20, 200] {
        table.push((connectors, idle_requests(connectors, TICKS).await));
    }
    for (connectors, requests) in &table {
        eprintln!("{connectors:>4} connectors: {requests} requests in {TICKS} idle ticks");
    }
    // Per tick: the connector list and the pending-job search; once per run: the cleanup's
    // idle-job search.
    let expected = 2 * TICKS as usize + 1;
    for (connectors, requests) in &table {
        assert_eq!(*requests, expected, "{connectors} connectors: {table:?}");
    }
}

// 7. A slow connector does not hold up the others. -----------------------------------------

/// A generator whose ping waits until `barrier` has seen every connector's ping: it answers
/// only when the service pings its connectors at once.
struct RendezvousFactory {
    barrier: Arc<tokio::sync::Barrier>,
}

struct Rendezvous {
    barrier: Arc<tokio::sync::Barrier>,
}

#[async_trait::async_trait]
impl syncdeck::sources::DataSource for Rendezvous {
    async fn ping(&mut self) -> Result<(), syncdeck::sources::SourceError> {
        self.barrier.wait().await;
        Ok(())
    }

    async fn run(
        &mut self,
        _: syncdeck::sources::SyncMode,
        _: syncdeck::sources::ItemSender,
    ) -> Result<Option<Value>, syncdeck::sources::SourceError> {
        Ok(None)
    }
}

impl syncdeck::sources::SourceFactory for RendezvousFactory {
    fn service_type(&self) -> &'static str {
        "rendezvous"
    }

    fn display_name(&self) -> &'static str {
        "Rendezvous"
    }

    fn default_configuration(&self) -> syncdeck::model::Configuration {
        syncdeck::sources::GeneratorFactory.default_configuration()
    }

    fn create(
        &self,
        _: &syncdeck::model::Configuration,
    ) -> Result<Box<dyn syncdeck::sources::DataSource>, syncdeck::sources::SourceError> {
        Ok(Box::new(Rendezvous {
            barrier: self.barrier.clone(),
        }))
    }
}

/// Three connectors whose pings each wait for the other two: tended one after another, the
/// first would wait out its ping budget (20 s) and end `error`, and so would the others.
/// Tended at once, one tick connects all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_pings_its_connectors_at_once() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let factory = Arc::new(RendezvousFactory {
        barrier: Arc::new(tokio::sync::Barrier::new(3)),
    });
    let mut registry = marking_registry();
    registry.register(factory.clone());
    let ids = ["meet-0", "meet-1", "meet-2"];
    for id in ids {
        create_connector(es.as_ref(), id, id, factory.as_ref(), json!({"count": 1})).await;
    }
    let engine = engine_with(
        es.clone(),
        es.clone(),
        memory_dlq(),
        registry,
        "meeting",
        fast_settings(),
        fast_breaker(),
    );
    run(&engine, &ticks(1)).await;
    for id in ids {
        let c = standin.connector(id).unwrap();
        assert_eq!(c["status"], "connected", "{id}: {c:#}");
        assert_eq!(c["error"], Value::Null, "{id}: {c:#}");
    }
}
