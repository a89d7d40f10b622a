//! Dead letters that know their cluster and cannot go stale, and full syncs that delete
//! nothing after an incomplete read, end to end on the stand-in and the embedded store:
//! two clusters' queues kept apart (by the library and by the `dlq` commands), a retry into
//! the wrong cluster refused, an old database migrated to `unknown`, an entry resolved by a
//! later sync, a retry that finds a newer version in the index and leaves it alone, and a
//! corrupt ndjson line that no longer deletes the document it hid.

use crate::console_fixtures;
use crate::engine_util;
use crate::support;

use assert_cmd::Command;
use engine_util::*;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use support::{StandIn, StandInOptions};
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ClusterId, ControlPlane, DocumentStore};
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter, NewDeadLetter, bind_cluster};
use syncdeck::engine::retry::{RetryError, retry_dead_letters};
use syncdeck::engine::runner::{Engine, JobEnd, JobReport};
use syncdeck::model::{DeadLetterState, JobType, Origin, TriggerMethod};
use syncdeck::sources::{self, NdjsonFactory};
use tokio_util::sync::CancellationToken;

/// The field the stand-in is told to reject (`document_parsing_exception`).
const BAD: &str = "bad";

async fn standin() -> StandIn {
    StandIn::start(StandInOptions {
        kibana: false,
        ..Default::default()
    })
    .await
}

async fn run(engine: &Engine, connector: &str) -> JobReport {
    let (_, report) = run_sync(engine, connector, JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    report
}

fn file_dlq(dir: &Path) -> Arc<DeadLetterStore> {
    Arc::new(DeadLetterStore::open(&dir.join("dead-letters.sqlite3"), 10_000).expect("open DLQ"))
}

async fn ndjson_connector(control: &dyn ControlPlane, id: &str, index: &str, path: &Path) {
    create_connector(
        control,
        id,
        index,
        &NdjsonFactory,
        json!({"path": path.display().to_string()}),
    )
    .await;
}

fn open_only(cluster: &str) -> DlqFilter {
    DlqFilter {
        cluster: Some(cluster.to_string()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_keep_their_own_dead_letters_and_refuse_each_others_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (standin().await, standin().await);
    assert_ne!(a.cluster_uuid(), b.cluster_uuid());
    a.faults().reject_field(Some(BAD.into()));
    b.faults().reject_field(Some(BAD.into()));
    // A third cluster: the embedded store, sharing the same queue file.
    let embedded = EmbeddedBackend::open(&dir.path().join("embedded.sqlite3")).unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{\"id\":\"ok\"}\n{\"id\":\"d43\",\"bad\":1}\n").unwrap();

    let mut engines = Vec::new();
    for (name, control, store) in [
        (
            "a",
            es_backend(&a.es_urls()) as Arc<dyn ControlPlane>,
            es_backend(&a.es_urls()) as Arc<dyn DocumentStore>,
        ),
        (
            "b",
            es_backend(&b.es_urls()) as Arc<dyn ControlPlane>,
            es_backend(&b.es_urls()) as Arc<dyn DocumentStore>,
        ),
        (
            "embedded",
            Arc::new(embedded.clone()) as Arc<dyn ControlPlane>,
            Arc::new(embedded.clone()) as Arc<dyn DocumentStore>,
        ),
    ] {
        // One queue file, one handle per profile, as the CLI opens it.
        let dlq = Arc::new(
            DeadLetterStore::open(&dir.path().join("dead-letters.sqlite3"), 10_000)
                .unwrap()
                .with_profile(name),
        );
        let engine = engine(control, store, dlq.clone(), sources::builtin(), name);
        ndjson_connector(engine.deps().control.as_ref(), "nd", "orders", &input).await;
        let report = run(&engine, "nd").await;
        // The embedded store rejects nothing: only the clusters dead-letter d43.
        let expected = u64::from(name != "embedded");
        assert_eq!(
            report.counters.dead_lettered, expected,
            "{name}: {report:#?}"
        );
        engines.push((name, engine, dlq));
    }

    let all = file_dlq(dir.path()).list(&DlqFilter::default()).unwrap();
    assert_eq!(all.len(), 2, "{all:#?}");
    let entry_of = |uuid: &str| {
        let mine: Vec<_> = all
            .iter()
            .filter(|e| e.origin.cluster_uuid == uuid)
            .collect();
        assert_eq!(mine.len(), 1, "{uuid}: {all:#?}");
        mine[0].clone()
    };
    let in_a = entry_of(&a.cluster_uuid());
    let in_b = entry_of(&b.cluster_uuid());
    assert_eq!(in_a.origin.cluster_name, a.cluster_name());
    assert_eq!(in_a.origin.profile.as_deref(), Some("a"));
    assert_eq!(in_b.origin.profile.as_deref(), Some("b"));
    assert_ne!(in_a.id, in_b.id, "one document, two clusters: two entries");

    // Listing per cluster shows each its own; the embedded store's queue is empty.
    let (_, _, dlq_a) = &engines[0];
    let (_, engine_b, dlq_b) = &engines[1];
    let (_, engine_e, dlq_e) = &engines[2];
    let listed = |dlq: &DeadLetterStore| -> Vec<i64> {
        dlq.list(&open_only(&dlq.origin().cluster_uuid))
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(listed(dlq_a), [in_a.id]);
    assert_eq!(listed(dlq_b), [in_b.id]);
    assert!(listed(dlq_e).is_empty());
    assert!(dlq_e.origin().cluster_uuid.starts_with("embedded:"));

    // A's entry retried through B (or the embedded store) is refused, naming both
    // clusters, and nothing is written anywhere.
    a.faults().reject_field(None);
    b.faults().reject_field(None);
    let settings = fast_settings();
    let cancel = CancellationToken::new();
    for (engine, dlq) in [(engine_b, dlq_b), (engine_e, dlq_e)] {
        let err = retry_dead_letters(
            engine.deps().store.clone(),
            engine.deps().control.as_ref(),
            dlq.clone(),
            vec![in_a.clone()],
            &settings,
            &fast_breaker(),
            &cancel,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RetryError::WrongCluster { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&a.cluster_uuid()), "{text}");
        assert!(text.contains(&dlq.origin().cluster_uuid), "{text}");
    }
    assert!(!b.index_docs("orders").iter().any(|(id, _)| id == "d43"));
    // The embedded store has its own d43 from its sync, untouched by the refused retry.
    let embedded_doc = embedded.get_document("orders", "d43").await.unwrap();
    assert_eq!(embedded_doc.map(|d| d["id"].clone()), Some(json!("d43")));
    assert_eq!(
        file_dlq(dir.path()).get(in_a.id).unwrap().unwrap().state,
        DeadLetterState::Open
    );

    // Through its own cluster the retry goes, and resolves the entry (kept as history).
    let report = retry_dead_letters(
        es_backend(&a.es_urls()),
        es_backend(&a.es_urls()).as_ref(),
        dlq_a.clone(),
        vec![in_a.clone()],
        &settings,
        &fast_breaker(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(report.succeeded, [in_a.id], "{report:?}");
    assert!(a.index_docs("orders").iter().any(|(id, _)| id == "d43"));
    let history = dlq_a
        .list(&DlqFilter {
            include_closed: true,
            ..open_only(&a.cluster_uuid())
        })
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, DeadLetterState::Resolved);
    assert!(history[0].resolved_at.is_some());
    assert!(listed(dlq_a).is_empty());
    // B's entry is untouched.
    assert_eq!(listed(dlq_b), [in_b.id]);
}

/// The version-1 schema, as syncdeck wrote it before dead letters recorded their cluster.
const OLD_SCHEMA: &str = "
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, connector_id TEXT NOT NULL, job_id TEXT NOT NULL,
    idx TEXT NOT NULL, doc_id TEXT NOT NULL, document TEXT NOT NULL, error_type TEXT NOT NULL,
    reason TEXT NOT NULL, status INTEGER, attempts INTEGER NOT NULL,
    first_failed_at INTEGER NOT NULL, last_failed_at INTEGER NOT NULL);
CREATE UNIQUE INDEX dead_letters_by_key ON dead_letters(connector_id, idx, doc_id);
CREATE INDEX dead_letters_by_time ON dead_letters(last_failed_at, id);
CREATE INDEX dead_letters_by_job ON dead_letters(job_id);
CREATE INDEX dead_letters_by_error_type ON dead_letters(error_type);
CREATE TABLE entry_count (one INTEGER PRIMARY KEY CHECK (one = 1), total INTEGER NOT NULL);
INSERT INTO entry_count (one, total) VALUES (1, 0);
CREATE TRIGGER dead_letters_count_insert AFTER INSERT ON dead_letters
    BEGIN UPDATE entry_count SET total = total + 1 WHERE one = 1; END;
CREATE TRIGGER dead_letters_count_delete AFTER DELETE ON dead_letters
    BEGIN UPDATE entry_count SET total = total - 1 WHERE one = 1; END;
INSERT INTO dead_letters (connector_id, job_id, idx, doc_id, document, error_type, reason,
                          status, attempts, first_failed_at, last_failed_at)
VALUES ('demo-load', 'job-old', 'demo', 'd1', '{\"id\":\"d1\"}', 'mapper_parsing_exception',
        'old failure', 400, 2, 1700000000000, 1700000001000),
       ('demo-load', 'job-old', 'demo', 'd2', '{\"id\":\"d2\"}', 'mapper_parsing_exception',
        'old failure', 400, 1, 1700000000000, 1700000002000);
PRAGMA user_version = 1;
";

fn old_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(OLD_SCHEMA).unwrap();
}

#[test]
fn an_old_database_is_migrated_in_place_with_entries_of_unknown_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead-letters.sqlite3");
    old_database(&path);

    let dlq = DeadLetterStore::open(&path, 3).unwrap();
    let all = dlq.list(&DlqFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    for e in &all {
        assert_eq!(e.origin, Origin::unknown(), "{e:#?}");
        assert_eq!(e.state, DeadLetterState::Open);
        assert_eq!(e.error_type, "mapper_parsing_exception");
    }
    assert_eq!(all[0].doc_id, "d2", "newest failure first, as before");
    assert_eq!(all[1].attempts, 2);
    assert_eq!(dlq.count(&open_only(Origin::UNKNOWN)).unwrap(), 2);
    assert_eq!(dlq.stats().unwrap().total, 2);

    // New entries of a known cluster sit beside them; the same document of another cluster
    // is another entry, and the bound (3) counts them all.
    let dlq = dlq.with_profile("p");
    dlq.bind(&ClusterId {
        uuid: "zk-HjQtYQGyL3NFSSu7InA".into(),
        name: "prod".into(),
    });
    let new = NewDeadLetter {
        connector_id: "demo-load".into(),
        job_id: "job-new".into(),
        index: "demo".into(),
        doc_id: "d1".into(),
        document: json!({"id": "d1"}).to_string(),
        error_type: "x".into(),
        reason: "y".into(),
        status: None,
    };
    let id = dlq.append_batch(std::slice::from_ref(&new)).unwrap()[0];
    assert!(!all.iter().any(|e| e.id == id));
    assert_eq!(dlq.count(&open_only("zk-HjQtYQGyL3NFSSu7InA")).unwrap(), 1);
    assert_eq!(dlq.count(&open_only(Origin::UNKNOWN)).unwrap(), 2);
    let mut other = new.clone();
    other.doc_id = "d9".into();
    assert!(dlq.append_batch(&[other]).is_err(), "the bound holds");
    // Opening again is a no-op.
    drop(dlq);
    let again = DeadLetterStore::open(&path, 3).unwrap();
    assert_eq!(again.count(&DlqFilter::default()).unwrap(), 3);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);

    // Entries of unknown origin are never retried into a cluster.
    let known = again.get(id).unwrap().unwrap();
    assert_eq!(known.origin.profile.as_deref(), Some("p"));
    let unknown = all[0].clone();
    let embedded = Arc::new(EmbeddedBackend::open_in_memory().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bind_cluster(&again, embedded.as_ref()))
        .unwrap();
    let err = rt
        .block_on(retry_dead_letters(
            embedded.clone(),
            embedded.as_ref(),
            Arc::new(again),
            vec![unknown],
            &fast_settings(),
            &fast_breaker(),
            &CancellationToken::new(),
        ))
        .unwrap_err();
    assert!(matches!(err, RetryError::UnknownOrigin { .. }), "{err}");
    assert!(err.to_string().contains("unknown origin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_successful_sync_resolves_the_open_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let standin = standin().await;
    standin.faults().reject_field(Some(BAD.into()));
    let es = es_backend(&standin.es_urls());
    let dlq = file_dlq(dir.path());
    let engine = engine(es.clone(), es.clone(), dlq.clone(), sources::builtin(), "w");
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"id\":\"d42\"}\n{\"id\":\"d43\",\"bad\":1,\"v\":1}\n",
    )
    .unwrap();
    ndjson_connector(es.as_ref(), "nd", "docs", &input).await;
    let first = run(&engine, "nd").await;
    assert_eq!(first.counters.dead_lettered, 1);
    let uuid = standin.cluster_uuid();
    let open = dlq.list(&open_only(&uuid)).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].doc_id, "d43");

    // The same document of the same index in another cluster must stay open.
    let other = DeadLetterStore::open(&dir.path().join("dead-letters.sqlite3"), 10_000).unwrap();
    other.bind(&ClusterId {
        uuid: "another-cluster".into(),
        name: "other".into(),
    });
    other
        .append_batch(&[NewDeadLetter {
            connector_id: "nd".into(),
            job_id: "j".into(),
            index: "docs".into(),
            doc_id: "d43".into(),
            document: "{}".into(),
            error_type: "x".into(),
            reason: "y".into(),
            status: None,
        }])
        .unwrap();

    // The mapping is fixed and the source changed d43: the next sync indexes it.
    standin.faults().reject_field(None);
    std::fs::write(
        &input,
        "{\"id\":\"d42\"}\n{\"id\":\"d43\",\"bad\":1,\"v\":2}\n",
    )
    .unwrap();
    let second = run(&engine, "nd").await;
    assert_eq!(second.counters.dead_lettered, 0);
    assert!(dlq.list(&open_only(&uuid)).unwrap().is_empty());
    let history = dlq
        .list(&DlqFilter {
            include_closed: true,
            ..open_only(&uuid)
        })
        .unwrap();
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0].state, DeadLetterState::Resolved);
    let why = history[0].resolution.clone().unwrap_or_default();
    assert!(why.contains(&second.job_id), "{why}");
    assert_eq!(other.count(&open_only("another-cluster")).unwrap(), 1);

    // Nothing is left to put the old d43 back over the new one.
    let entries = dlq.list(&open_only(&uuid)).unwrap();
    assert!(entries.is_empty());
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d43"]["v"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_leaves_a_newer_indexed_version_alone_and_says_superseded() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    bind_cluster(&dlq, es.as_ref()).await.unwrap();
    es.ensure_index("docs", None).await.unwrap();
    // d43 was dead-lettered at version 1; another worker (its own queue) has since indexed
    // version 3. d44's dead letter is newer than what the index holds.
    let entry = |id: &str, ts: &str, v: u64| NewDeadLetter {
        connector_id: "c".into(),
        job_id: "job-1".into(),
        index: "docs".into(),
        doc_id: id.into(),
        document: json!({"id": id, "_timestamp": ts, "v": v}).to_string(),
        error_type: "document_parsing_exception".into(),
        reason: "failed to parse".into(),
        status: Some(400),
    };
    let ids = dlq
        .append_batch(&[
            entry("d43", "2024-01-01T00:00:01Z", 1),
            entry("d44", "2024-03-01T00:00:00Z", 2),
        ])
        .unwrap();
    standin.put_doc(
        "docs",
        "d43",
        json!({"id": "d43", "_timestamp": "2024-02-01T00:00:00Z", "v": 3}),
    );
    standin.put_doc(
        "docs",
        "d44",
        json!({"id": "d44", "_timestamp": "2024-01-01T00:00:00Z", "v": 1}),
    );
    let entries = dlq.list(&DlqFilter::default()).unwrap();
    let report = retry_dead_letters(
        es.clone(),
        es.as_ref(),
        dlq.clone(),
        entries,
        &fast_settings(),
        &fast_breaker(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.succeeded, [ids[1]], "{report:?}");
    assert_eq!(report.superseded.len(), 1, "{report:?}");
    assert_eq!(report.superseded[0].0, ids[0]);
    assert!(
        report.superseded[0].1.contains("2024-02-01T00:00:00Z"),
        "{report:?}"
    );
    assert!(report.failed.is_empty());
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d43"]["v"], 3, "the newer version survives");
    assert_eq!(docs["d44"]["v"], 2, "an older indexed version is replaced");
    let d43 = dlq.get(ids[0]).unwrap().unwrap();
    assert_eq!(d43.state, DeadLetterState::Superseded);
    assert!(d43.resolution.unwrap_or_default().contains("newer version"));
    assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 0);
    // The JSON report scripts read says so too.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["superseded"][0][0], ids[0]);
}

fn untimed(connector: &str, id: &str, document: Value) -> NewDeadLetter {
    untimed_in("job-1", connector, id, document)
}

fn untimed_in(job: &str, connector: &str, id: &str, document: Value) -> NewDeadLetter {
    NewDeadLetter {
        connector_id: connector.into(),
        job_id: job.into(),
        index: "docs".into(),
        doc_id: id.into(),
        document: document.to_string(),
        error_type: "document_parsing_exception".into(),
        reason: "failed to parse".into(),
        status: Some(400),
    }
}

async fn retry_all(
    es: &Arc<syncdeck::backend::elasticsearch::ElasticsearchBackend>,
    dlq: &Arc<DeadLetterStore>,
    entries: Vec<syncdeck::model::DeadLetter>,
) -> syncdeck::engine::retry::RetryReport {
    retry_dead_letters(
        es.clone(),
        es.as_ref(),
        dlq.clone(),
        entries,
        &fast_settings(),
        &fast_breaker(),
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// A document without `_timestamp`, and a delete, have nothing to compare in the index: a
/// full sync of their connector that started after they failed, and completed, is what says
/// the index holds newer data. Then they are superseded and not sent; an entry with no such
/// sync after it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_without_timestamps_leaves_what_a_later_full_sync_wrote_alone() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    bind_cluster(&dlq, es.as_ref()).await.unwrap();
    let connector = generator_connector(es.as_ref(), "c", "docs", 1, 0, 0).await;
    es.ensure_index("docs", None).await.unwrap();
    // The entries of `c` failed in a full sync of it.
    let failed_in = full_sync(&es, &connector, None).await;
    let ids = dlq
        .append_batch(&[
            untimed_in(&failed_in, &connector, "d1", json!({"id": "d1", "v": 1})),
            untimed_in(&failed_in, &connector, "d2", Value::Null),
            untimed("quiet", "d3", json!({"id": "d3", "v": 1})),
        ])
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // A later full sync of `c` wrote d1 and d2 again (the source has them back) and
    // completed; nothing has synced for `quiet` since.
    for id in ["d1", "d2"] {
        standin.put_doc("docs", id, json!({"id": id, "v": 3}));
    }
    let job = full_sync(&es, &connector, None).await;
    standin.put_doc("docs", "d3", json!({"id": "d3", "v": 0}));

    let report = retry_all(&es, &dlq, dlq.list(&DlqFilter::default()).unwrap()).await;

    assert_eq!(report.succeeded, [ids[2]], "{report:?}");
    let superseded: Vec<i64> = report.superseded.iter().map(|(id, _)| *id).collect();
    assert_eq!(superseded.len(), 2, "{report:?}");
    assert!(superseded.contains(&ids[0]) && superseded.contains(&ids[1]));
    assert!(report.superseded[0].1.contains(&job), "{report:?}");
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d1"]["v"], 3, "the newer write survives");
    assert_eq!(
        docs["d2"]["v"], 3,
        "the delete did not remove a newer write"
    );
    assert_eq!(docs["d3"]["v"], 1, "no later sync: the entry is sent");
    for id in &ids[..2] {
        assert_eq!(
            dlq.get(*id).unwrap().unwrap().state,
            DeadLetterState::Superseded
        );
    }
}

/// Claims and completes a full sync job of `connector` (with this job metadata), as a worker
/// would; its id.
async fn full_sync(
    es: &Arc<syncdeck::backend::elasticsearch::ElasticsearchBackend>,
    connector: &str,
    metadata: Option<serde_json::Map<String, Value>>,
) -> String {
    let job = es
        .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    es.claim_sync_job(&job, "w", None).await.unwrap();
    if metadata.is_some() {
        let stats = syncdeck::model::SyncStats {
            metadata,
            ..Default::default()
        };
        es.update_sync_job_stats(&job, &stats).await.unwrap();
    }
    let finish = syncdeck::backend::JobFinish {
        status: syncdeck::model::JobStatus::Completed,
        error: None,
        indexed_document_count: 2,
        deleted_document_count: 0,
        indexed_document_volume: 1,
        total_document_count: Some(2),
    };
    es.finish_sync_job(&job, &finish).await.unwrap();
    job
}

/// The job in which an entry failed is not "later" than its failure, even when the worker's
/// clock (which stamped the failure) is behind the cluster's (which stamped the job's start):
/// here the failure is recorded before the job starts. And a later full sync whose source
/// reported unreadable records (`deletions_skipped`) may not have written the document: it
/// supersedes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_failing_job_nor_a_sync_that_skipped_deletions_supersedes_an_entry() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    bind_cluster(&dlq, es.as_ref()).await.unwrap();
    let connector = generator_connector(es.as_ref(), "c", "docs", 1, 0, 0).await;
    let other = generator_connector(es.as_ref(), "c2", "docs2", 1, 0, 0).await;
    es.ensure_index("docs", None).await.unwrap();
    es.ensure_index("docs2", None).await.unwrap();
    // The worker's clock is behind: the failure is stamped before the job's start.
    let job_id = es
        .create_sync_job(&connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let ids = dlq
        .append_batch(&[untimed_in(
            &job_id,
            &connector,
            "d1",
            json!({"id": "d1", "v": 1}),
        )])
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    es.claim_sync_job(&job_id, "w", None).await.unwrap();
    let finish = syncdeck::backend::JobFinish {
        status: syncdeck::model::JobStatus::Completed,
        error: None,
        indexed_document_count: 0,
        deleted_document_count: 0,
        indexed_document_volume: 0,
        total_document_count: Some(1),
    };
    es.finish_sync_job(&job_id, &finish).await.unwrap();
    // An entry of `c2` that failed in a completed full sync; a later one of `c2` could not
    // read some records, so it neither deleted nor necessarily wrote anything.
    let first = full_sync(&es, &other, None).await;
    let delete = NewDeadLetter {
        index: "docs2".into(),
        ..untimed_in(&first, &other, "d2", Value::Null)
    };
    let more = dlq.append_batch(&[delete]).unwrap();
    standin.put_doc("docs2", "d2", json!({"id": "d2", "v": 0}));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut metadata = serde_json::Map::new();
    metadata.insert("deletions_skipped".into(), json!("1 unreadable record"));
    full_sync(&es, &other, Some(metadata)).await;

    let report = retry_all(&es, &dlq, dlq.list(&DlqFilter::default()).unwrap()).await;

    assert!(report.superseded.is_empty(), "{report:?}");
    let mut succeeded = report.succeeded.clone();
    succeeded.sort();
    assert_eq!(succeeded, [ids[0], more[0]], "{report:?}");
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d1"]["v"], 1, "the entry was sent");
    assert!(
        standin.index_docs("docs2").is_empty(),
        "the delete was sent"
    );
}

/// Two connectors' entries for one id in one index: the one that failed last is the newest
/// write, so a retry of the older one alone does not send it (it stays open); a retry of both
/// sends the one that failed last and supersedes the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_resolves_only_the_entries_it_wrote_for_a_shared_document() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    bind_cluster(&dlq, es.as_ref()).await.unwrap();
    es.ensure_index("docs", None).await.unwrap();
    let first = dlq
        .append_batch(&[untimed(
            "c1",
            "shared",
            json!({"id": "shared", "from": "c1"}),
        )])
        .unwrap()[0];
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = dlq
        .append_batch(&[untimed(
            "c2",
            "shared",
            json!({"id": "shared", "from": "c2"}),
        )])
        .unwrap()[0];

    let report = retry_all(&es, &dlq, vec![dlq.get(first).unwrap().unwrap()]).await;
    assert!(report.succeeded.is_empty(), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, first);
    assert!(report.failed[0].1.contains("c2"), "{report:?}");
    assert!(standin.index_docs("docs").is_empty(), "nothing was sent");
    assert_eq!(
        dlq.get(first).unwrap().unwrap().state,
        DeadLetterState::Open
    );
    let other = dlq.get(second).unwrap().unwrap();
    assert_eq!(other.state, DeadLetterState::Open, "{other:?}");

    // Both again: c1's is reopened by a new failure; c2's failed later, so it is the write.
    let reopened = dlq
        .append_batch(&[untimed(
            "c1",
            "shared",
            json!({"id": "shared", "from": "c1"}),
        )])
        .unwrap()[0];
    let mut entries = vec![dlq.get(reopened).unwrap().unwrap(), other];
    // c2's entry failed later than c1's first failure, but c1 has failed again since: make
    // c2's the newest by failing it again too.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    dlq.record_failure(
        second,
        "document_parsing_exception",
        "failed again",
        Some(400),
    )
    .unwrap();
    entries[1] = dlq.get(second).unwrap().unwrap();
    let report = retry_all(&es, &dlq, entries).await;
    assert_eq!(report.succeeded, [second], "{report:?}");
    assert_eq!(report.superseded.len(), 1, "{report:?}");
    assert_eq!(report.superseded[0].0, reopened);
    assert!(report.superseded[0].1.contains("c2"), "{report:?}");
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["shared"]["from"], "c2");
    assert_eq!(
        dlq.get(reopened).unwrap().unwrap().state,
        DeadLetterState::Superseded
    );
}

/// Connector A's delete of `d` is dead-lettered; connector B, whose own entry for `d` was
/// open, then writes `d` (its entry is resolved). A retry of A's entry alone must not delete
/// B's newer write: it is superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_does_not_overwrite_another_connectors_later_write() {
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    bind_cluster(&dlq, es.as_ref()).await.unwrap();
    es.ensure_index("docs", None).await.unwrap();
    dlq.append_batch(&[untimed("b", "d", json!({"id": "d", "from": "b"}))])
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let a = dlq.append_batch(&[untimed("a", "d", Value::Null)]).unwrap()[0];
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    standin.put_doc("docs", "d", json!({"id": "d", "from": "b"}));
    let resolved = dlq
        .resolve_documents("b", "docs", &["d".to_string()], "indexed by sync job 'jb'")
        .unwrap();
    assert_eq!(resolved, 1);

    let report = retry_all(&es, &dlq, vec![dlq.get(a).unwrap().unwrap()]).await;

    assert!(report.succeeded.is_empty(), "{report:?}");
    assert_eq!(report.superseded.len(), 1, "{report:?}");
    assert_eq!(report.superseded[0].0, a);
    assert!(report.superseded[0].1.contains("'b'"), "{report:?}");
    let docs: std::collections::BTreeMap<String, Value> =
        standin.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d"]["from"], "b", "B's write survives");
    assert_eq!(
        dlq.get(a).unwrap().unwrap().state,
        DeadLetterState::Superseded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_line_in_a_full_sync_deletes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine(es.clone(), es.clone(), dlq.clone(), sources::builtin(), "w");
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"id\":\"k1\",\"n\":1}\n{\"id\":\"k2\",\"n\":2}\n{\"id\":\"k3\",\"n\":3}\n",
    )
    .unwrap();
    ndjson_connector(es.as_ref(), "nd", "kdocs", &input).await;
    run(&engine, "nd").await;
    assert_eq!(standin.doc_count("kdocs"), 3);

    // Line 2 becomes invalid JSON, and k3 really leaves the source.
    std::fs::write(
        &input,
        "{\"id\":\"k1\",\"n\":1}\n{\"id\":\"k2\",\"n\":2,}\n",
    )
    .unwrap();
    let report = run(&engine, "nd").await;
    assert_eq!(report.counters.deleted, 0, "{report:#?}");
    assert_eq!(report.counters.dead_lettered, 1);
    let ids: Vec<String> = standin
        .index_docs("kdocs")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        ["k1", "k2", "k3"],
        "nothing deleted on an incomplete read"
    );
    let letters = dead_letters(&dlq);
    assert_eq!(letters[0].error_type, "source_invalid");
    let job = standin.sync_job(&report.job_id).expect("job document");
    let why = job["metadata"]["deletions_skipped"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("1 unreadable record"), "{job:#}");
    assert_eq!(job["metadata"]["unreadable_records"], 1);
    assert_eq!(job["deleted_document_count"], 0);
    assert_eq!(job["status"], "completed");

    // A clean read deletes again.
    std::fs::write(&input, "{\"id\":\"k1\",\"n\":1}\n{\"id\":\"k2\",\"n\":2}\n").unwrap();
    let report = run(&engine, "nd").await;
    assert_eq!(report.counters.deleted, 1, "{report:#?}");
    let job = standin.sync_job(&report.job_id).expect("job document");
    assert!(
        job["metadata"].get("deletions_skipped").is_none(),
        "{job:#}"
    );
    assert_eq!(standin.doc_count("kdocs"), 2);
}

/// A `directory` entry that exists but cannot be read is an unreadable record too: its
/// document is not deleted by a full sync, and the job says why. (Tests run as root, which
/// reads any file whatever its mode: the entry's path is made longer than the system's
/// PATH_MAX, a real `ENAMETOOLONG`, by moving the tree under a deep folder.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_entry_that_cannot_be_read_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let standin = standin().await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine(es.clone(), es.clone(), dlq.clone(), sources::builtin(), "w");
    let long_name = "n".repeat(250);
    let short = dir.path().join("x");
    std::fs::create_dir_all(short.join("sub")).unwrap();
    std::fs::write(short.join("sub").join(&long_name), "kept").unwrap();
    std::fs::write(short.join("sub/ok.txt"), "fine").unwrap();
    std::fs::write(short.join("gone.txt"), "leaves").unwrap();
    // The connector's path is a link, so the tree can move under it.
    let link = dir.path().join("root");
    std::os::unix::fs::symlink(&short, &link).unwrap();
    create_connector(
        es.as_ref(),
        "dir",
        "ddocs",
        &sources::DirectoryFactory,
        json!({"path": link.display().to_string()}),
    )
    .await;
    run(&engine, "dir").await;
    assert_eq!(standin.doc_count("ddocs"), 3);

    // `gone.txt` really leaves; the tree moves 3,900 bytes deep, where `sub` still lists but
    // its long entry's path (4,157 bytes) cannot be read.
    let mut deep = dir.path().to_path_buf();
    while deep.as_os_str().len() + 201 < 3900 {
        deep.push("d".repeat(200));
    }
    let last = 3900 - deep.as_os_str().len() - 1;
    deep.push("e".repeat(last));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::remove_file(short.join("gone.txt")).unwrap();
    std::fs::rename(&short, deep.join("x")).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(deep.join("x"), &link).unwrap();

    let report = run(&engine, "dir").await;
    assert_eq!(report.counters.deleted, 0, "{report:#?}");
    assert_eq!(report.counters.dead_lettered, 1, "{report:#?}");
    let ids: std::collections::BTreeSet<String> = standin
        .index_docs("ddocs")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        "gone.txt".to_string(),
        "sub/ok.txt".into(),
        format!("sub/{long_name}"),
    ]
    .into();
    assert_eq!(ids, expected, "nothing deleted on an incomplete read");
    let letters = dead_letters(&dlq);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error_type, "source_invalid");
    assert_eq!(letters[0].doc_id, format!("unreadable:sub/{long_name}"));
    let job = standin.sync_job(&report.job_id).expect("job document");
    let why = job["metadata"]["deletions_skipped"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("1 unreadable record"), "{job:#}");
}

// The `dlq` commands, through the real binary -------------------------------------------------

fn cli(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("syncdeck").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("SYNCDECK_DATA_DIR", home.join("data"))
        .env("SYNCDECK_STATE_DIR", home.join("state"))
        .env("TEST_ES_API_KEY", "a2V5OnNlY3JldA==")
        .timeout(std::time::Duration::from_secs(60));
    if home.join("config.toml").exists() {
        cmd.env("SYNCDECK_CONFIG", home.join("config.toml"));
    }
    cmd
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn syncdeck(home: &Path, args: &[&str]) -> Ran {
    let out = cli(home).args(args).output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_json(home: &Home, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let r = syncdeck(home.path(), &all);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
}

type Home = tempfile::TempDir;

fn write_config(home: &Path, a: &StandIn, b: &StandIn) {
    let profile = |name: &str, s: &StandIn| {
        format!(
            "[profiles.{name}.elasticsearch]\nnodes = [\"{}\"]\napi_key = \"env:TEST_ES_API_KEY\"\nrequest_timeout = \"5s\"\n",
            s.es_urls()[0]
        )
    };
    let path = home.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "default_profile = \"alpha\"\n{}{}",
            profile("alpha", a),
            profile("beta", b)
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn dlq_commands_act_on_the_profiles_cluster_and_refuse_the_others() {
    let (a, b) = (
        StandIn::start_blocking(StandInOptions {
            kibana: false,
            ..Default::default()
        }),
        StandIn::start_blocking(StandInOptions {
            kibana: false,
            ..Default::default()
        }),
    );
    a.faults().reject_field(Some(BAD.into()));
    b.faults().reject_field(Some(BAD.into()));
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &a, &b);
    for (profile, doc) in [("alpha", "a-bad"), ("beta", "b-bad")] {
        let input = home.path().join(format!("{profile}.ndjson"));
        std::fs::write(&input, format!("{{\"id\":\"{doc}\",\"bad\":1}}\n")).unwrap();
        let path = format!("path={}", input.display());
        for args in [
            vec![
                "connectors",
                "create",
                "nd",
                "--service-type",
                "ndjson",
                "--index-name",
                "orders",
            ],
            vec!["connectors", "set", "nd", &path],
        ] {
            let mut all = vec!["--profile", profile];
            all.extend(args);
            let r = syncdeck(home.path(), &all);
            assert_eq!(r.code, 0, "{all:?}: {}{}", r.stdout, r.stderr);
        }
        let r = syncdeck(home.path(), &["--profile", profile, "sync", "nd"]);
        assert_eq!(r.code, 4, "dead letters: {}{}", r.stdout, r.stderr);
    }

    let listed = |profile: &str| ok_json(&home, &["--profile", profile, "dlq", "list"]);
    let alpha = listed("alpha");
    assert_eq!(alpha["count"], 1, "{alpha:#}");
    assert_eq!(alpha["results"][0]["doc_id"], "a-bad");
    assert_eq!(
        alpha["results"][0]["origin"]["cluster_uuid"],
        a.cluster_uuid()
    );
    assert_eq!(alpha["results"][0]["origin"]["profile"], "alpha");
    assert_eq!(alpha["cluster"]["cluster_uuid"], a.cluster_uuid());
    let beta = listed("beta");
    assert_eq!(beta["count"], 1, "{beta:#}");
    assert_eq!(beta["results"][0]["doc_id"], "b-bad");
    let everything = ok_json(&home, &["dlq", "list", "--all-clusters"]);
    assert_eq!(everything["count"], 2, "{everything:#}");
    let text = syncdeck(home.path(), &["--profile", "beta", "dlq", "list"]).stdout;
    assert!(
        text.contains(&b.cluster_uuid()) && text.contains("b-bad"),
        "{text}"
    );
    assert!(!text.contains("a-bad"), "{text}");

    // alpha's entry, from beta: show, retry and drop are refused, naming both clusters.
    let id = alpha["results"][0]["id"].as_i64().unwrap().to_string();
    a.faults().reject_field(None);
    b.faults().reject_field(None);
    for args in [
        vec!["--profile", "beta", "dlq", "retry", id.as_str()],
        vec!["--profile", "beta", "dlq", "drop", id.as_str(), "--yes"],
        vec!["--profile", "beta", "dlq", "show", id.as_str()],
    ] {
        let r = syncdeck(home.path(), &args);
        assert_ne!(r.code, 0, "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.contains(&a.cluster_uuid()) && r.stderr.contains(&b.cluster_uuid()),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert!(
        b.index_docs("orders").is_empty(),
        "nothing written into beta"
    );
    assert_eq!(listed("alpha")["count"], 1, "nothing dropped");
    let shown = ok_json(
        &home,
        &["--profile", "beta", "dlq", "show", &id, "--all-clusters"],
    );
    assert_eq!(shown["doc_id"], "a-bad");

    // `retry --all` from beta retries beta's own entry only.
    let retried = ok_json(&home, &["--profile", "beta", "dlq", "retry", "--all"]);
    assert_eq!(
        retried["succeeded"].as_array().map(Vec::len),
        Some(1),
        "{retried:#}"
    );
    assert_eq!(b.index_docs("orders").len(), 1);
    assert!(a.index_docs("orders").is_empty());
    assert_eq!(listed("beta")["count"], 0);
    let history = ok_json(&home, &["--profile", "beta", "dlq", "list", "--resolved"]);
    assert_eq!(history["results"][0]["state"], "resolved", "{history:#}");
    assert_eq!(listed("alpha")["count"], 1);
}

#[test]
fn entries_of_unknown_origin_are_hinted_at_and_listed_with_all_clusters() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("data")).unwrap();
    old_database(&home.path().join("data").join("dead-letters.sqlite3"));
    // The embedded default: its own (empty) queue, and a hint at the two old entries.
    let r = syncdeck(home.path(), &["dlq", "list"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no dead letters"), "{}", r.stdout);
    assert!(
        r.stdout.contains("2 dead letter(s) of unknown origin")
            && r.stdout.contains("--all-clusters"),
        "{}",
        r.stdout
    );
    let all = ok_json(&home, &["dlq", "list", "--all-clusters"]);
    assert_eq!(all["count"], 2, "{all:#}");
    assert_eq!(all["results"][0]["origin"]["cluster_uuid"], "unknown");
    let text = syncdeck(home.path(), &["dlq", "list", "--all-clusters"]).stdout;
    assert!(text.contains("unknown") && text.contains("d1"), "{text}");
    // They cannot be retried anywhere, but they can be dropped.
    let id = all["results"][0]["id"].as_i64().unwrap().to_string();
    let r = syncdeck(home.path(), &["dlq", "retry", &id]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("unknown origin"), "{}", r.stderr);
    let dropped = ok_json(&home, &["dlq", "drop", &id, "--yes"]);
    assert_eq!(dropped["dropped"], 1);
}

#[test]
fn the_sync_summary_says_why_nothing_was_deleted() {
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("k.ndjson");
    std::fs::write(&input, "{\"id\":\"k1\",\"n\":1}\n{\"id\":\"k2\",\"n\":2}\n").unwrap();
    let path = format!("path={}", input.display());
    for args in [
        vec![
            "connectors",
            "create",
            "k",
            "--service-type",
            "ndjson",
            "--index-name",
            "k",
        ],
        vec!["connectors", "set", "k", &path],
        vec!["sync", "k"],
    ] {
        let r = syncdeck(home.path(), &args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }
    std::fs::write(
        &input,
        "{\"id\":\"k1\",\"n\":1}\n{\"id\":\"k2\",\"n\":2,}\n",
    )
    .unwrap();
    let r = syncdeck(home.path(), &["sync", "k"]);
    assert_eq!(
        r.code, 4,
        "the bad line is a dead letter: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout
            .contains("nothing deleted: the source reported 1 unreadable record"),
        "{}",
        r.stdout
    );
    let deleted = r
        .stdout
        .lines()
        .find(|l| l.starts_with("deleted"))
        .unwrap_or_default();
    assert!(deleted.trim_end().ends_with(" 0"), "{deleted}");
    let jobs = ok_json(&home, &["jobs", "list", "--connector", "k"]);
    let latest = &jobs["results"][0];
    assert_eq!(latest["deleted_document_count"], 0, "{latest:#}");
    assert!(
        latest["metadata"]["deletions_skipped"]
            .as_str()
            .is_some_and(|why| why.contains("unreadable")),
        "{latest:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_its_clusters_queue_and_names_it() {
    use console_fixtures::{ch, draw, embedded_handles, new_state, pump, text, theme};
    use syncdeck::console::effect::Effect;
    let dir = tempfile::tempdir().unwrap();
    let handles = embedded_handles(&dir.path().join("embedded.sqlite3"), None);
    let letter = |doc: &str| NewDeadLetter {
        connector_id: "c".into(),
        job_id: "j".into(),
        index: "i".into(),
        doc_id: doc.into(),
        document: "{}".into(),
        error_type: "x".into(),
        reason: "y".into(),
        status: None,
    };
    // One of unknown origin (an unbound handle), one of another cluster, one of this one.
    handles.dlq.append_batch(&[letter("from-before")]).unwrap();
    handles.dlq.bind(&ClusterId {
        uuid: "zk-HjQtYQGyL3NFSSu7InA".into(),
        name: "prod".into(),
    });
    handles.dlq.append_batch(&[letter("from-prod")]).unwrap();
    bind_cluster(&handles.dlq, handles.control.as_ref())
        .await
        .unwrap();
    handles.dlq.append_batch(&[letter("from-here")]).unwrap();

    let mut state = new_state(false, (160, 48));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let effects = console_fixtures::apply(&mut state, [ch('5')]);
    assert!(effects.contains(&Effect::LoadDeadLetters), "{effects:?}");
    pump(&mut state, &handles, &mut rx, effects, &tx).await;
    let docs: Vec<&str> = state
        .dead_letters
        .table
        .all()
        .iter()
        .map(|d| d.doc_id.as_str())
        .collect();
    assert_eq!(docs, ["from-here"]);
    assert_eq!(state.dead_letters.total, 1);
    assert_eq!(state.dead_letters.unknown, 1);
    let screen = text(&draw(&state, &theme("default")));
    assert!(
        screen.contains("Dead letters of 'embedded' (embedded:"),
        "{screen}"
    );
    assert!(screen.contains("1 of unknown origin"), "{screen}");
    assert!(
        !screen.contains("from-prod") && !screen.contains("from-before"),
        "{screen}"
    );
    // Another profile may be another cluster: the name goes until its queue has loaded.
    console_fixtures::apply(
        &mut state,
        [syncdeck::console::app::Action::ProfileChanged(
            console_fixtures::profile(false),
        )],
    );
    assert_eq!(
        (
            state.dead_letters.cluster.clone(),
            state.dead_letters.unknown
        ),
        (None, 0)
    );
}

#[test]
fn dlq_retry_reports_superseded_entries_in_its_table() {
    let a = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &a, &a);
    let dlq = DeadLetterStore::open(&home.path().join("data").join("dead-letters.sqlite3"), 100)
        .unwrap()
        .with_profile("alpha");
    dlq.bind(&ClusterId {
        uuid: a.cluster_uuid(),
        name: a.cluster_name(),
    });
    let id = dlq
        .append_batch(&[NewDeadLetter {
            connector_id: "c".into(),
            job_id: "job-1".into(),
            index: "docs".into(),
            doc_id: "d43".into(),
            document: json!({"id": "d43", "_timestamp": "2024-01-01T00:00:00Z", "v": 1})
                .to_string(),
            error_type: "document_parsing_exception".into(),
            reason: "failed to parse".into(),
            status: Some(400),
        }])
        .unwrap()[0];
    drop(dlq);
    a.put_doc(
        "docs",
        "d43",
        json!({"id": "d43", "_timestamp": "2024-05-01T00:00:00Z", "v": 2}),
    );
    let r = syncdeck(home.path(), &["dlq", "retry", "--all"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("0 indexed and resolved, 0 failed again, 1 superseded"),
        "{}",
        r.stdout
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&id.to_string()))
        .unwrap_or_default();
    assert!(
        row.contains("superseded") && row.contains("2024-05-01T00:00:00Z"),
        "{}",
        r.stdout
    );
    let docs: std::collections::BTreeMap<String, Value> =
        a.index_docs("docs").into_iter().collect();
    assert_eq!(docs["d43"]["v"], 2);
    let history = ok_json(&home, &["dlq", "list", "--resolved"]);
    assert_eq!(history["results"][0]["state"], "superseded", "{history:#}");
}
