//! Every sync-job lifecycle ends in a state Elastic's connectors service and Kibana understand,
//! against the stand-in cluster: an unrunnable connector is refused with no job made, a full
//! sync sends every document (skipping unchanged ones only when asked) and resets the cursor,
//! a deleted job or connector stops the run and leaves what the Python service leaves, and the
//! start guard is a lease: taken over from an expired or provably dead holder, or from nobody,
//! retried on a 409, and given back as it was when the start does not happen. A cancel of an
//! orphaned job completes.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::forwarding::{Forwarding, Hooks};
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::{
    BackendError, ControlPlane, GuardAttempt, LastSync, Result as BResult, SyncJobQuery,
};
use syncdeck::config::EngineSettings;
use syncdeck::engine::cleanup::JOB_NOT_FOUND_ERROR;
use syncdeck::engine::lease;
use syncdeck::engine::runner::{Engine, EngineError, JobEnd, JobReport};
use syncdeck::model::{JobType, NewConnector, SyncJob, TriggerMethod};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(30);
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

fn es_engine_with(standin: &StandIn, worker: &str, settings: EngineSettings) -> Engine {
    let es = es_backend(&standin.es_urls());
    engine_with(
        es.clone(),
        es,
        memory_dlq(),
        marking_registry(),
        worker,
        settings,
        fast_breaker(),
    )
}

use engine_util::run_sync as run;

/// Rewrites a stored document of the stand-in: `change` edits its JSON (what another process
/// left behind, written straight to the index as the Python service does).
fn edit_doc(standin: &StandIn, index: &str, id: &str, change: impl FnOnce(&mut Value)) {
    let mut doc = match index {
        CONNECTORS => standin.connector(id),
        _ => standin.sync_job(id),
    }
    .expect("stored document");
    doc.as_object_mut().expect("object").remove("id");
    change(&mut doc);
    standin.put_doc(index, id, doc);
}

fn iso_ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A job of `connector` left `in_progress` by `worker`, last seen `seen_secs_ago`, with counts
/// from its last stats report; the connector's guard set as that worker left it.
async fn orphan(
    standin: &StandIn,
    es: &ElasticsearchBackend,
    connector: &str,
    worker: &str,
    seen_secs_ago: i64,
    status: &str,
) -> String {
    let id = es
        .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    edit_doc(standin, JOBS, &id, |d| {
        d["status"] = json!(status);
        d["worker_hostname"] = json!(worker);
        d["started_at"] = json!(iso_ago(seen_secs_ago + 5));
        d["last_seen"] = json!(iso_ago(seen_secs_ago));
        d["indexed_document_count"] = json!(42);
        d["deleted_document_count"] = json!(3);
        d["indexed_document_volume"] = json!(1);
    });
    edit_doc(standin, CONNECTORS, connector, |d| {
        d["last_sync_status"] = json!("in_progress");
    });
    id
}

fn this_host() -> String {
    let name = lease::worker_name();
    lease::parse_worker(&name)
        .expect("host/pid")
        .host
        .to_string()
}

/// The pid of a process of this host that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// `host/pid@space` of a process of this host and process space that has exited.
fn dead_worker() -> String {
    lease::worker_name_for(dead_pid())
}

async fn jobs_of(es: &dyn ControlPlane, connector: &str) -> Vec<SyncJob> {
    let query = SyncJobQuery {
        connector_id: Some(connector.to_string()),
        ..Default::default()
    };
    es.list_sync_jobs(&query).await.unwrap().results
}

// Claim only what you can run. ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrunnable_connector_is_refused_with_no_job_and_its_pending_jobs_left_alone() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-mysql", fast_settings());
    let es = es_backend(&standin.es_urls());
    let id = es
        .create_connector(&NewConnector {
            id: Some("orders".into()),
            index_name: Some("search-orders".into()),
            service_type: Some("sharepoint_online".into()),
            is_native: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = standin.connector(&id).unwrap();

    let refused = engine
        .sync_once(&id, JobType::Full, &CancellationToken::new())
        .await;
    match refused {
        Err(EngineError::Refused(why)) => {
            assert!(why.contains("'sharepoint_online'"), "{why}");
            assert!(why.contains("generator"), "names what it has: {why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(jobs_of(es.as_ref(), &id).await.is_empty(), "no job made");

    // A job queued elsewhere for it is not claimed, and the connector is not touched.
    let (job, report) = run(&engine, &id, JobType::Full).await;
    assert!(
        matches!(&report.end, JobEnd::Skipped { reason } if reason.contains("sharepoint_online")),
        "{report:#?}"
    );
    assert_eq!(standin.sync_job(&job).unwrap()["status"], "pending");
    let after = standin.connector(&id).unwrap();
    for key in ["status", "error", "last_sync_status", "last_sync_error"] {
        assert_eq!(after[key], before[key], "{key}: {after:#}");
    }

    // An access-control sync is refused too: no source of this engine has one.
    let gen_id = generator_connector(es.as_ref(), "gen-acl", "gen-acl", 5, 0, 0).await;
    let refused = engine
        .sync_once(&gen_id, JobType::AccessControl, &CancellationToken::new())
        .await;
    assert!(
        matches!(&refused, Err(EngineError::Refused(why)) if why.contains("access-control")),
        "{refused:?}"
    );
    assert!(jobs_of(es.as_ref(), &gen_id).await.is_empty());
}

// Full and incremental, as the Python service means them. -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_sends_every_document_unless_skip_unchanged_is_on() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-full", fast_settings());
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "same", "same", 300, 0, 0).await;

    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_eq!(first.end, JobEnd::Completed);
    assert_eq!(first.counters.indexed, 300);
    let (job, second) = run(&engine, &id, JobType::Full).await;
    assert_eq!(second.end, JobEnd::Completed);
    let c = &second.counters;
    assert_eq!((c.indexed + c.updated, c.skipped), (300, 0), "{c:?}");
    assert_eq!(
        standin.sync_job(&job).unwrap()["indexed_document_count"],
        300
    );

    let skipping = es_engine_with(
        &standin,
        "worker-skip",
        EngineSettings {
            skip_unchanged: true,
            ..fast_settings()
        },
    );
    let (_, third) = run(&skipping, &id, JobType::Full).await;
    let c = &third.counters;
    assert_eq!((c.indexed + c.updated, c.skipped), (0, 300), "{c:?}");
    // An incremental sync of a source without its own incremental mode skips them too.
    let (_, fourth) = run(&engine, &id, JobType::Incremental).await;
    let c = &fourth.counters;
    assert_eq!((c.indexed + c.updated, c.skipped), (0, 300), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_resets_the_cursor_when_the_source_gives_none() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-cursor", fast_settings());
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "cur", "cur", 10, 0, 0).await;
    es.update_last_sync(
        &id,
        &LastSync {
            sync_cursor: Some(json!({"left_by": "an older sync"})),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_, report) = run(&engine, &id, JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed);
    let doc = standin.connector(&id).unwrap();
    assert_eq!(doc["sync_cursor"], Value::Null, "{doc:#}");
    assert_eq!(doc["last_sync_status"], "completed");
}

// A vanishing job or connector. ------------------------------------------------------------

/// A slow generator connector (20 documents a second) and its job running on `engine`, once
/// the first documents are in.
async fn running_job(
    standin: &StandIn,
    engine: &Engine,
    id: &str,
) -> (
    String,
    tokio::task::JoinHandle<Result<JobReport, EngineError>>,
) {
    let es = es_backend(&standin.es_urls());
    generator_connector(es.as_ref(), id, id, 2000, 0, 20).await;
    let job = es
        .create_sync_job(id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let handle = {
        let (engine, job) = (engine.clone(), job.clone());
        tokio::spawn(async move { engine.run_job(&job, &CancellationToken::new()).await })
    };
    wait_for("the first documents", LIMIT, || standin.doc_count(id) >= 5).await;
    (job, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_mid_run_stops_and_leaves_its_connector_in_error() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-del-job", fast_settings());
    let es = es_backend(&standin.es_urls());
    let (job, handle) = running_job(&standin, &engine, "deljob").await;

    es.delete_sync_job(&job).await.unwrap();
    let report = tokio::time::timeout(LIMIT, handle)
        .await
        .expect("the job noticed within one check-in")
        .unwrap()
        .unwrap();

    assert_eq!(
        report.end,
        JobEnd::Failed {
            error: JOB_NOT_FOUND_ERROR.into()
        }
    );
    assert!(standin.doc_count("deljob") < 2000, "the source was stopped");
    let doc = standin.connector("deljob").unwrap();
    assert_eq!(doc["last_sync_status"], "error", "{doc:#}");
    assert_eq!(doc["last_sync_error"], JOB_NOT_FOUND_ERROR);
    assert_eq!(doc["status"], "error");
    assert!(
        standin.sync_job(&job).is_none(),
        "nothing wrote the job back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_deleted_mid_run_stops_the_job_and_writes_nothing_on_it() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-del-conn", fast_settings());
    let es = es_backend(&standin.es_urls());
    let (job, handle) = running_job(&standin, &engine, "delconn").await;

    es.delete_connector("delconn", false, false).await.unwrap();
    let before = standin.connector("delconn").unwrap();
    let report = tokio::time::timeout(LIMIT, handle)
        .await
        .expect("the job noticed within one check-in")
        .unwrap()
        .unwrap();

    assert!(
        matches!(&report.end, JobEnd::Failed { error } if error.contains("deleted")),
        "{report:#?}"
    );
    assert!(
        standin.doc_count("delconn") < 2000,
        "the source was stopped"
    );
    let stored = standin.sync_job(&job).unwrap();
    assert_eq!(stored["status"], "error", "{stored:#}");
    assert!(stored["indexed_document_count"].as_u64().unwrap() > 0);
    let after = standin.connector("delconn").unwrap();
    assert_eq!(after, before, "the deleted connector was left as it was");
}

// The start guard is a lease. ----------------------------------------------------------------

async fn guarded_connector(standin: &StandIn, id: &str) -> Arc<ElasticsearchBackend> {
    let es = es_backend(&standin.es_urls());
    generator_connector(es.as_ref(), id, id, 20, 0, 0).await;
    es
}

fn assert_orphan_ended(standin: &StandIn, orphan: &str, status: &str, reason_has: Option<&str>) {
    let doc = standin.sync_job(orphan).unwrap();
    assert_eq!(doc["status"], status, "{doc:#}");
    assert!(doc["completed_at"].is_string(), "{doc:#}");
    assert_eq!(
        (
            &doc["indexed_document_count"],
            &doc["deleted_document_count"]
        ),
        (&json!(42), &json!(3)),
        "its last counts are kept"
    );
    if let Some(needle) = reason_has {
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_orphan_keeps_its_counts() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "expired").await;
    let stale = orphan(
        &standin,
        &es,
        "expired",
        "elsewhere/77",
        3600,
        "in_progress",
    )
    .await;
    let engine = es_engine_with(&standin, "worker-next", fast_settings());

    let (_, report) = run(&engine, "expired", JobType::Full).await;

    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_orphan_ended(&standin, &stale, "error", Some("elsewhere/77"));
    assert_eq!(
        standin.connector("expired").unwrap()["last_sync_status"],
        "completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provably_dead_holder_is_taken_over_at_once_and_a_live_one_is_not() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "dead").await;
    let dead = dead_worker();
    // Seen a second ago: only its missing process gives it away.
    let stale = orphan(&standin, &es, "dead", &dead, 1, "in_progress").await;
    let engine = es_engine_with(&standin, "worker-next", fast_settings());

    let (_, report) = run(&engine, "dead", JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_orphan_ended(&standin, &stale, "error", Some(&dead));

    // A holder on another host that checked in a second ago keeps its guard; the refused start
    // leaves no job behind.
    let es2 = guarded_connector(&standin, "alive").await;
    let live = orphan(&standin, &es2, "alive", "elsewhere/77", 1, "in_progress").await;
    let refused = engine
        .sync_once("alive", JobType::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(
        matches!(&refused.end, JobEnd::Skipped { reason } if reason.contains("another worker")),
        "{refused:#?}"
    );
    let jobs = jobs_of(es2.as_ref(), "alive").await;
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [live.as_str()]
    );
    assert_eq!(standin.sync_job(&live).unwrap()["status"], "in_progress");
}

/// A hostname is not unique: a container sharing it, in another pid namespace, may run the
/// pid. A dead pid named without this process space (an older name, or another namespace's)
/// is left to its lease: refused while it checks in, taken over once the lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pid_of_another_process_space_waits_for_its_lease() {
    let standin = standin().await;
    let engine = es_engine_with(&standin, "worker-next", fast_settings());
    let pid = dead_pid();
    let foreign = [
        format!("{}/{pid}", this_host()),
        format!("{}/{pid}@1.00000000", this_host()),
    ];
    for (n, worker) in foreign.iter().enumerate() {
        let connector = format!("space{n}");
        let es = guarded_connector(&standin, &connector).await;
        let holder = orphan(&standin, &es, &connector, worker, 1, "in_progress").await;
        let refused = engine
            .sync_once(&connector, JobType::Full, &CancellationToken::new())
            .await
            .unwrap();
        assert!(
            matches!(&refused.end, JobEnd::Skipped { reason } if reason.contains("another worker")),
            "{worker}: {refused:#?}"
        );
        assert_eq!(standin.sync_job(&holder).unwrap()["status"], "in_progress");
        // The lease runs out: now it is taken over.
        edit_doc(&standin, JOBS, &holder, |d| {
            d["last_seen"] = json!(iso_ago(3600));
            d["started_at"] = json!(iso_ago(3605));
        });
        let (_, report) = run(&engine, &connector, JobType::Full).await;
        assert_eq!(report.end, JobEnd::Completed, "{worker}: {report:#?}");
        assert_orphan_ended(&standin, &holder, "error", Some("has not checked in"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceling_orphan_ends_canceled_and_a_guard_nobody_holds_is_taken_over() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "canc").await;
    let stale = orphan(&standin, &es, "canc", &dead_worker(), 1, "canceling").await;
    let engine = es_engine_with(&standin, "worker-next", fast_settings());
    let (_, report) = run(&engine, "canc", JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_orphan_ended(&standin, &stale, "canceled", None);

    // A guard set by a process that died between its guard and its claim: no job holds it.
    let _ = guarded_connector(&standin, "nobody").await;
    edit_doc(&standin, CONNECTORS, "nobody", |d| {
        d["last_sync_status"] = json!("in_progress");
    });
    let (_, report) = run(&engine, "nobody", JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
}

/// SIGTERM (the shutdown token) while a start waits out a guard's re-check ends the wait: the
/// start gives up without taking the guard over, and `sync` leaves no job behind. Before the
/// wait, or during it, the outcome is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_the_guard_wait_ends_the_start_without_a_takeover() {
    let standin = standin().await;
    // The longest re-check there is (5 s), so the shutdown lands inside it.
    let settings = EngineSettings {
        check_interval: Duration::from_secs(5),
        ..fast_settings()
    };
    let engine = es_engine_with(&standin, "worker-term", settings);
    for (n, early) in [true, false].into_iter().enumerate() {
        let connector = format!("term{n}");
        let es = guarded_connector(&standin, &connector).await;
        edit_doc(&standin, CONNECTORS, &connector, |d| {
            d["last_sync_status"] = json!("in_progress");
        });
        let shutdown = CancellationToken::new();
        if early {
            shutdown.cancel();
        } else {
            let later = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                later.cancel();
            });
        }
        let report = tokio::time::timeout(
            LIMIT,
            engine.sync_once(&connector, JobType::Full, &shutdown),
        )
        .await
        .expect("the start ends")
        .unwrap();
        assert!(
            matches!(&report.end, JobEnd::Skipped { reason } if reason.contains("shutting down")),
            "{report:#?}"
        );
        let doc = standin.connector(&connector).unwrap();
        assert_eq!(
            doc["last_sync_status"], "in_progress",
            "not taken over: {doc:#}"
        );
        assert!(jobs_of(es.as_ref(), &connector).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_on_the_start_guard_is_retried() {
    let standin = standin().await;
    let _ = guarded_connector(&standin, "race").await;
    let engine = es_engine_with(&standin, "worker-race", fast_settings());
    // Another writer changes the connector just before each of the first two guard writes.
    standin.faults().race_guarded_updates(2);
    let (_, report) = run(&engine, "race", JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 20);
}

/// A control plane whose every claim is lost to another worker. With `claimed_after_read`,
/// a pending job read through it is claimed by another worker just after the read (the
/// answer is the read from before): the race a refused start's clean-up must not lose.
struct ClaimLost {
    claimed_after_read: bool,
}

#[async_trait::async_trait]
impl Hooks for ClaimLost {
    async fn claim_sync_job(
        &self,
        _: &dyn ControlPlane,
        _: &str,
        _: &str,
        _: Option<&Value>,
    ) -> BResult<()> {
        Err(BackendError::Conflict("claimed by worker-elsewhere".into()))
    }
    async fn get_sync_job(&self, inner: &dyn ControlPlane, id: &str) -> BResult<SyncJob> {
        let job = inner.get_sync_job(id).await?;
        if self.claimed_after_read && job.status == syncdeck::model::JobStatus::Pending {
            inner.claim_sync_job(id, "worker-elsewhere", None).await?;
        }
        Ok(job)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_does_not_happen_gives_the_guard_back_as_it_was() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "giveback").await;
    let losing = engine(
        Arc::new(Forwarding::new(
            es.clone(),
            ClaimLost {
                claimed_after_read: false,
            },
        )),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-losing",
    );

    // Never synced: the guard's `in_progress` goes back to nothing, not to `canceled`.
    let (_, report) = run(&losing, "giveback", JobType::Full).await;
    assert!(matches!(report.end, JobEnd::Skipped { .. }), "{report:#?}");
    let doc = standin.connector("giveback").unwrap();
    assert_eq!(doc["last_sync_status"], Value::Null, "{doc:#}");

    // After a completed sync, that is what it says again.
    let winning = es_engine_with(&standin, "worker-winning", fast_settings());
    let (_, done) = run(&winning, "giveback", JobType::Full).await;
    assert_eq!(done.end, JobEnd::Completed);
    let (_, report) = run(&losing, "giveback", JobType::Full).await;
    assert!(matches!(report.end, JobEnd::Skipped { .. }));
    let doc = standin.connector("giveback").unwrap();
    assert_eq!(doc["last_sync_status"], "completed", "{doc:#}");
    assert_eq!(doc["status"], "connected", "{doc:#}");
}

/// A refused start deletes its job only if nobody claimed it meanwhile: the delete is
/// guarded by the read, so a job another worker claimed between the read and the delete
/// stays, and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_never_deletes_a_job_claimed_meanwhile() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "claimed").await;
    let racing = engine(
        Arc::new(Forwarding::new(
            es.clone(),
            ClaimLost {
                claimed_after_read: true,
            },
        )),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-refused",
    );
    let job = es
        .create_sync_job("claimed", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let refused = JobReport {
        job_id: job.clone(),
        connector_id: "claimed".into(),
        index: "claimed".into(),
        end: JobEnd::Skipped {
            reason: "refused".into(),
        },
        counters: Default::default(),
        total_document_count: None,
        elapsed_ms: 0,
    };
    assert!(!racing.discard_unstarted(&refused).await);
    let doc = standin
        .sync_job(&job)
        .expect("the claimed job is still there");
    assert_eq!(doc["status"], "in_progress", "{doc:#}");
    assert_eq!(doc["worker_hostname"], "worker-elsewhere", "{doc:#}");

    // Unclaimed, it is deleted as before.
    let plain = es_engine_with(&standin, "worker-refused", fast_settings());
    let job = es
        .create_sync_job("claimed", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let refused = JobReport {
        job_id: job.clone(),
        ..refused
    };
    assert!(plain.discard_unstarted(&refused).await);
    assert!(standin.sync_job(&job).is_none());
}

// Cancelling an orphan completes. -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_orphaned_job_ends_it_canceled() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "cancel").await;
    let stale = orphan(&standin, &es, "cancel", &dead_worker(), 1, "in_progress").await;
    es.cancel_sync_job(&stale).await.unwrap();
    assert_eq!(standin.sync_job(&stale).unwrap()["status"], "canceling");

    let job = lease::complete_orphaned_cancel(es.as_ref(), &stale, Duration::from_secs(300))
        .await
        .unwrap();

    assert_eq!(job.status.to_string(), "canceled");
    assert_orphan_ended(&standin, &stale, "canceled", None);
    let doc = standin.connector("cancel").unwrap();
    assert_eq!(doc["last_sync_status"], "canceled", "{doc:#}");

    // A live worker's job is left to that worker.
    let es2 = guarded_connector(&standin, "cancel-live").await;
    let live = orphan(
        &standin,
        &es2,
        "cancel-live",
        "elsewhere/77",
        1,
        "in_progress",
    )
    .await;
    es2.cancel_sync_job(&live).await.unwrap();
    let job = lease::complete_orphaned_cancel(es2.as_ref(), &live, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(job.status.to_string(), "canceling");
}

// The embedded store keeps the same lease. ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_gives_the_guard_back_with_its_nulls_and_lets_it_be_taken_over() {
    let (engine, backend, _dlq) = embedded_engine("worker-embedded");
    let id = generator_connector(&backend, "emb", "emb", 10, 0, 0).await;

    let prior = match backend.try_start_guard(&id, JobType::Full).await.unwrap() {
        GuardAttempt::Taken(prior) => prior,
        other => panic!("{other:?}"),
    };
    assert_eq!(prior.status, None);
    assert_eq!(
        backend.try_start_guard(&id, JobType::Full).await.unwrap(),
        GuardAttempt::Held
    );
    backend
        .restore_last_sync(&id, JobType::Full, &prior)
        .await
        .unwrap();
    let c = backend.get_connector(&id).await.unwrap();
    assert_eq!(
        (c.last_sync_status, c.status),
        (None, prior.connector_status)
    );

    // A guard left by a process that died before claiming: taken over after a re-check.
    backend
        .update_last_sync(
            &id,
            &LastSync {
                last_sync_status: Some(syncdeck::model::JobStatus::InProgress),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, report) = run(&engine, &id, JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 10);
}

/// Two parties that see one orphan at once (two starts, or a start and a reaper): only the one
/// whose end lands writes the connector, so the other never clears a guard taken since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_seen_by_two_parties_is_ended_once_and_a_newer_guard_survives() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "raced").await;
    let stale = orphan(&standin, &es, "raced", "elsewhere/78", 3600, "in_progress").await;
    // Both parties read the orphan before either ends it.
    let seen_by_first = es.get_sync_job(&stale).await.unwrap();
    let seen_by_second = seen_by_first.clone();

    let first = syncdeck::engine::cleanup::end_abandoned_job(
        es.as_ref(),
        &seen_by_first,
        syncdeck::model::JobStatus::Error,
        Some("gone"),
    )
    .await
    .unwrap();
    assert!(first, "the first end lands");
    // The first party takes the guard for its own job.
    edit_doc(&standin, CONNECTORS, "raced", |d| {
        d["last_sync_status"] = json!("in_progress");
    });

    let second = syncdeck::engine::cleanup::end_abandoned_job(
        es.as_ref(),
        &seen_by_second,
        syncdeck::model::JobStatus::Error,
        Some("gone"),
    )
    .await
    .unwrap();

    assert!(
        !second,
        "the second end sees the job changed and writes nothing"
    );
    assert_eq!(
        standin.connector("raced").unwrap()["last_sync_status"],
        "in_progress",
        "the newer guard is kept"
    );
    assert_orphan_ended(&standin, &stale, "error", Some("gone"));
}

/// An orphan that checks in again between the read and the end (its worker was only slow) is
/// left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_that_checks_in_after_the_read_is_not_ended() {
    let standin = standin().await;
    let es = guarded_connector(&standin, "revived").await;
    let job = orphan(
        &standin,
        &es,
        "revived",
        "elsewhere/79",
        3600,
        "in_progress",
    )
    .await;
    let read = es.get_sync_job(&job).await.unwrap();
    es.check_in_sync_job(&job).await.unwrap();

    let ended = syncdeck::engine::cleanup::end_abandoned_job(
        es.as_ref(),
        &read,
        syncdeck::model::JobStatus::Error,
        Some("gone"),
    )
    .await
    .unwrap();

    assert!(!ended);
    assert_eq!(standin.sync_job(&job).unwrap()["status"], "in_progress");
    assert_eq!(
        standin.connector("revived").unwrap()["last_sync_status"],
        "in_progress"
    );
}
