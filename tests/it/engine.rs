//! The embedded sync engine end to end, on both backends: the embedded store and the stand-in
//! Elasticsearch. Full syncs with dead letters, the job and connector documents at the end,
//! deletions streamed with PIT pages, unchanged documents skipped without fetching their
//! content, incremental cursors, sync rules, per-item 429s, cancellation, idle-job reaping, two
//! `serve` workers sharing connectors, dead-letter retries and the status endpoint. Every
//! outcome is counted document by document.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::forwarding::{Forwarding, Hooks};
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::{ControlPlane, DocumentStore, GuardAttempt, Result as BResult};
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter};
use syncdeck::engine::retry::retry_dead_letters;
use syncdeck::engine::runner::{Engine, JobEnd, JobReport};
use syncdeck::engine::service::{ServeOptions, serve};
use syncdeck::engine::status;
use syncdeck::model::{
    ConnectorStatus, FilteringRule, FilteringValidation, JobStatus, JobType, RulePolicy, RuleType,
    Timestamp, TriggerMethod,
};
use syncdeck::sources::DirectoryFactory;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(30);

async fn standin(nodes: usize) -> StandIn {
    StandIn::start(StandInOptions {
        nodes,
        kibana: false,
        ..Default::default()
    })
    .await
}

/// An engine on the stand-in (every node), with the marking generator, and its backend.
fn es_engine(
    standin: &StandIn,
    worker: &str,
) -> (Engine, Arc<ElasticsearchBackend>, Arc<DeadLetterStore>) {
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine(
        es.clone(),
        es.clone(),
        dlq.clone(),
        marking_registry(),
        worker,
    );
    (engine, es, dlq)
}

use engine_util::run_sync as run;

fn assert_completed(report: &JobReport) {
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
}

fn rule(
    id: &str,
    order: i64,
    policy: RulePolicy,
    field: &str,
    rule: RuleType,
    value: &str,
) -> FilteringRule {
    FilteringRule {
        id: id.into(),
        policy,
        field: field.into(),
        rule,
        value: value.into(),
        order,
        created_at: None,
        updated_at: None,
    }
}

/// Ids in an index of the stand-in, read from its state (not through the client).
fn standin_ids(standin: &StandIn, index: &str) -> BTreeSet<String> {
    standin
        .index_docs(index)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

// 1. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_full_sync_indexes_good_documents_and_dead_letters_mapping_failures() {
    let (engine, backend, dlq) = embedded_engine("worker-a");
    let mapping = json!({"properties": {"value": {"type": "long"}}});
    backend.ensure_index("gen", Some(&mapping)).await.unwrap();
    let id = generator_connector(&backend, "gen", "gen", 2000, 100, 0).await;

    let (job_id, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    let c = report.counters;
    assert_eq!(
        (c.seen, c.indexed, c.dead_lettered, c.deleted),
        (2000, 1980, 20, 0),
        "{c:?}"
    );
    let poisoned = poisoned_ids(2000, 100);
    assert_eq!(poisoned.len(), 20);
    let expected: BTreeSet<String> = all_ids(2000).difference(&poisoned).cloned().collect();
    assert_ids(&store_ids(&backend, "gen").await, &expected, "index");
    assert_eq!(backend.count("gen").await.unwrap(), 1980);

    let source = generator(2000, 100);
    let letters = dead_letters(&dlq);
    assert_eq!(letters.len(), 20);
    assert_eq!(
        letters
            .iter()
            .map(|l| l.doc_id.clone())
            .collect::<BTreeSet<_>>(),
        poisoned
    );
    for letter in &letters {
        assert_eq!(
            letter.error_type, "document_parsing_exception",
            "{letter:?}"
        );
        assert!(
            letter
                .reason
                .contains("failed to parse field [value] of type [long]"),
            "{}",
            letter.reason
        );
        assert_eq!((letter.status, letter.attempts), (Some(400), 1));
        assert_eq!(
            (
                letter.job_id.as_str(),
                letter.connector_id.as_str(),
                letter.index.as_str()
            ),
            (job_id.as_str(), "gen", "gen")
        );
        // The whole document as it was sent: its id, timestamp and every source field.
        let n: u64 = letter.doc_id.trim_start_matches("doc-").parse().unwrap();
        let original = source.document(n);
        assert_eq!(letter.document["id"], letter.doc_id.as_str());
        assert_eq!(
            letter.document["_timestamp"],
            original.timestamp.clone().unwrap().as_str()
        );
        for (key, value) in &original.fields {
            assert_eq!(
                &letter.document[key], value,
                "field {key} of {}",
                letter.doc_id
            );
        }
    }
    // A good document is stored whole as well.
    let stored = backend.get_document("gen", "doc-5").await.unwrap().unwrap();
    assert_eq!(stored["title"], source.document(5).fields["title"]);

    let job = backend.get_sync_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.completed_at.is_some() && job.error.is_none(), "{job:?}");
    assert_eq!(
        (
            job.indexed_document_count,
            job.deleted_document_count,
            job.total_document_count
        ),
        (1980, 0, Some(1980))
    );
    assert_eq!(job.worker_hostname.as_deref(), Some("worker-a"));

    let connector = backend.get_connector(&id).await.unwrap();
    assert_eq!(connector.last_sync_status, Some(JobStatus::Completed));
    assert_eq!(connector.last_indexed_document_count, Some(1980));
    assert_eq!(connector.last_deleted_document_count, Some(0));
    assert_eq!(connector.status, ConnectorStatus::Connected);
    assert!(
        connector.last_sync_error.is_none()
            && connector.error.is_none()
            && connector.last_synced.is_some()
    );
}

// 2. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_full_sync_writes_documents_dead_letters_and_the_final_job_document() {
    let standin = standin(1).await;
    standin.faults().reject_field(Some(POISON_FIELD.into()));
    let (engine, es, dlq) = es_engine(&standin, "worker-es");
    let id = generator_connector(es.as_ref(), "gen-es", "gen-es", 2000, 100, 0).await;

    let (job_id, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    assert_eq!(
        (report.counters.indexed, report.counters.dead_lettered),
        (1980, 20),
        "{report:#?}"
    );
    let poisoned = poisoned_ids(2000, 100);
    let expected: BTreeSet<String> = all_ids(2000).difference(&poisoned).cloned().collect();
    assert_ids(&standin_ids(&standin, "gen-es"), &expected, "index gen-es");
    let letters = dead_letters(&dlq);
    assert_eq!(
        letters
            .iter()
            .map(|l| l.doc_id.clone())
            .collect::<BTreeSet<_>>(),
        poisoned
    );
    for letter in &letters {
        assert_eq!(letter.error_type, "document_parsing_exception");
        assert!(
            letter.reason.contains("failed to parse field [poison]"),
            "{}",
            letter.reason
        );
        assert_eq!(letter.document["poison"], true);
        assert_eq!(letter.document["id"], letter.doc_id.as_str());
    }
    // Documents carry `id` and `_timestamp` in the body.
    let docs: BTreeMap<String, Value> = standin.index_docs("gen-es").into_iter().collect();
    assert_eq!(docs["doc-7"]["id"], "doc-7");
    assert_eq!(docs["doc-7"]["_timestamp"], "2024-01-01T00:00:07.000Z");

    // The job document as the cluster stores it.
    let job = standin.sync_job(&job_id).expect("job document");
    assert_eq!(job["status"], "completed", "{job:#}");
    assert!(job["completed_at"].is_string(), "{job:#}");
    assert!(job["error"].is_null(), "{job:#}");
    assert_eq!(job["indexed_document_count"], 1980, "{job:#}");
    assert_eq!(job["deleted_document_count"], 0, "{job:#}");
    assert_eq!(job["total_document_count"], 1980, "{job:#}");
    assert_eq!(job["worker_hostname"], "worker-es", "{job:#}");
    assert!(
        job["started_at"].is_string() && job["last_seen"].is_string(),
        "{job:#}"
    );
    let connector = standin.connector(&id).expect("connector document");
    assert_eq!(connector["last_sync_status"], "completed", "{connector:#}");
    assert_eq!(connector["status"], "connected", "{connector:#}");
    assert_eq!(
        connector["last_indexed_document_count"], 1980,
        "{connector:#}"
    );
    assert!(
        connector["last_sync_error"].is_null() && connector["error"].is_null(),
        "{connector:#}"
    );
}

// 3. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_deletes_more_than_ten_thousand_stale_documents_by_pit_pages() {
    let standin = standin(1).await;
    for i in 0..12_000 {
        let id = format!("stale-{i}");
        standin.put_doc(
            "big",
            &id,
            json!({"id": id, "_timestamp": "2020-01-01T00:00:00.000Z", "title": "old"}),
        );
    }
    let (engine, es, dlq) = es_engine(&standin, "worker-del");
    let id = generator_connector(es.as_ref(), "big", "big", 3000, 0, 0).await;
    standin.clear_requests();

    let (job_id, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    assert_eq!(
        (report.counters.indexed, report.counters.deleted),
        (3000, 12_000),
        "{report:#?}"
    );
    assert_ids(&standin_ids(&standin, "big"), &all_ids(3000), "index big");
    assert!(dead_letters(&dlq).is_empty());
    let job = es.get_sync_job(&job_id).await.unwrap();
    assert_eq!(
        (job.deleted_document_count, job.total_document_count),
        (12_000, Some(3000))
    );
    let connector = es.get_connector(&id).await.unwrap();
    assert_eq!(connector.last_deleted_document_count, Some(12_000));

    let requests = standin.requests();
    let pit_opens = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/_pit"))
        .count();
    let pit_closes = requests
        .iter()
        .filter(|r| r.method == "DELETE" && r.path == "/_pit")
        .count();
    let searches = requests.iter().filter(|r| r.path == "/_search").count();
    assert!(
        pit_opens >= 1 && pit_closes == pit_opens,
        "PIT opened {pit_opens} and closed {pit_closes} times"
    );
    // The deletion pass (a full sync does not look for unchanged documents) over more than
    // 12,000 ids, a page of at most 1,000 at a time: the index is never read past 10,000 hits
    // in one search.
    assert!(searches >= 12, "only {searches} search pages");
}

// 4. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_full_sync_skips_unchanged_generator_documents() {
    let standin = standin(1).await;
    let es = es_backend(&standin.es_urls());
    // Full syncs send every document unless the profile opts in to the skip.
    let engine = engine_with(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-skip",
        skipping_settings(),
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "same", "same", 1500, 0, 0).await;

    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_eq!(first.counters.indexed, 1500);
    standin.clear_requests();
    let (job_id, second) = run(&engine, &id, JobType::Full).await;

    assert_completed(&second);
    let c = second.counters;
    assert_eq!(
        (c.seen, c.indexed, c.skipped, c.deleted),
        (1500, 0, 1500, 0),
        "{c:?}"
    );
    let bulks = standin
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/_bulk"))
        .count();
    assert_eq!(bulks, 0, "nothing to write, so no bulk request");
    assert_ids(&standin_ids(&standin, "same"), &all_ids(1500), "index same");
    let job = es.get_sync_job(&job_id).await.unwrap();
    assert_eq!(
        (
            job.status,
            job.indexed_document_count,
            job.total_document_count
        ),
        (JobStatus::Completed, 0, Some(1500))
    );
}

/// The requests of an id scan: PIT opens and `_search` pages.
fn scan_requests(standin: &StandIn) -> (usize, usize) {
    let requests = standin.requests();
    let pit_opens = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/_pit"))
        .count();
    let searches = requests
        .iter()
        .filter(|r| r.path.ends_with("/_search"))
        .count();
    (pit_opens, searches)
}

// 4b. A full sync reads the index's ids once (before indexing) and deletes from that one
// pass; a fresh index is not scanned at all. ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_into_a_fresh_index_never_scans_it() {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, "worker-fresh");
    let id = generator_connector(es.as_ref(), "fresh", "fresh", 2500, 0, 0).await;
    standin.clear_requests();

    let (_, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    assert_eq!(
        (report.counters.indexed, report.counters.deleted),
        (2500, 0),
        "{report:#?}"
    );
    assert_eq!(scan_requests(&standin), (0, 0), "no PIT, no search page");
    assert_ids(
        &standin_ids(&standin, "fresh"),
        &all_ids(2500),
        "index fresh",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_reads_the_ids_once_and_deletes_what_the_source_no_longer_has() {
    let standin = standin(1).await;
    let es = es_backend(&standin.es_urls());
    let engine = engine_with(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-once",
        skipping_settings(),
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "once", "once", 1500, 0, 0).await;
    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_eq!(first.counters.indexed, 1500);
    for i in 0..2500 {
        let id = format!("stale-{i}");
        standin.put_doc(
            "once",
            &id,
            json!({"id": id, "title": "gone from the source"}),
        );
    }
    standin.clear_requests();

    let (_, second) = run(&engine, &id, JobType::Full).await;

    assert_completed(&second);
    let c = second.counters;
    assert_eq!(
        (c.seen, c.indexed, c.skipped, c.deleted),
        (1500, 0, 1500, 2500),
        "{c:?}"
    );
    assert_ids(&standin_ids(&standin, "once"), &all_ids(1500), "index once");
    // One PIT over 4,000 ids in two slices, 1,000 a page: two full pages a slice and the
    // empty one that ends it.
    assert_eq!(scan_requests(&standin), (1, 6), "one pass over the ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_others_write_during_a_full_sync_are_not_deleted_by_it() {
    let standin = standin(1).await;
    standin.put_doc("shared", "stale-0", json!({"id": "stale-0"}));
    let (engine, es, _dlq) = es_engine(&standin, "worker-shared");
    // Slow enough that another writer adds its document mid-sync.
    let id = generator_connector(es.as_ref(), "shared", "shared", 600, 0, 2000).await;
    let job_id = es
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let task = {
        let (engine, job_id) = (engine.clone(), job_id.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &CancellationToken::new()).await })
    };
    let live = engine.live();
    wait_for("documents indexed", LIMIT, || {
        live.progress(&job_id)
            .is_some_and(|p| p.counters().indexed >= 100)
    })
    .await;
    standin.put_doc("shared", "theirs", json!({"id": "theirs"}));
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap()
        .expect("run job");

    assert_completed(&report);
    assert_eq!(report.counters.deleted, 1, "{report:#?}");
    let mut expected = all_ids(600);
    expected.insert("theirs".to_string());
    assert_ids(&standin_ids(&standin, "shared"), &expected, "index shared");
}

/// A re-sync of `docs` generated documents into an index that also holds `stale` documents
/// the source lacks, the id pass's pages held until indexing runs, and one document
/// ("theirs") written after the pass's PIT opened: every document sent is still known as
/// seen, only the stale ones go, and "theirs" (not in the snapshot) stays. The stand-in, for
/// more checks, and the job's report.
async fn overlapped_resync(name: &str, docs: u64, stale: usize) -> (StandIn, JobReport) {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, &format!("worker-{name}"));
    let id = generator_connector(es.as_ref(), name, name, docs, 0, 0).await;
    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_eq!(first.counters.indexed, docs);
    for i in 0..stale {
        let id = format!("stale-{i}");
        standin.put_doc(name, &id, json!({"id": id}));
    }
    // The scan's pages get no answer for now: the sync must index meanwhile.
    let (_, task) = full_sync_with_the_id_scan_held(&standin, &engine, es.as_ref(), &id).await;
    // Written after the scan's PIT opened: not in the snapshot, so never deleted by it.
    standin.put_doc(name, "theirs", json!({"id": "theirs"}));
    standin.faults().hang_search(false);
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap()
        .expect("run job");

    assert_completed(&report);
    let c = &report.counters;
    assert_eq!(
        (c.seen, c.indexed + c.updated, c.deleted),
        (docs, docs, stale as u64),
        "{c:?}"
    );
    let mut expected = all_ids(docs);
    expected.insert("theirs".to_string());
    assert_ids(&standin_ids(&standin, name), &expected, name);
    (standin, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_indexes_while_it_reads_the_ids_of_a_point_in_time() {
    // 2,700 documents: below the sliced pass's threshold.
    let (standin, _) = overlapped_resync("overlap", 1500, 1200).await;
    assert_eq!(scan_requests(&standin), (1, 3), "one PIT, one slice");
}

/// An index of 4,000 documents or more is read in two slices of one PIT while indexing goes
/// on: the deletions are exactly the documents the source no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_id_pass_deletes_exactly_the_stale_documents() {
    let (standin, _) = overlapped_resync("sliced", 3000, 1500).await;
    // 4,500 documents in two slices of 2,250: pages of 1,000, 1,000 and 250 each. One slice
    // would have asked five times.
    assert_eq!(
        scan_requests(&standin),
        (1, 6),
        "one PIT, three pages a slice"
    );
}

/// Starts a full sync of `connector` with the id scan's pages held unanswered
/// (`hang_search`, the caller lets them go); once indexing runs meanwhile, its job and task.
async fn full_sync_with_the_id_scan_held(
    standin: &StandIn,
    engine: &Engine,
    es: &dyn ControlPlane,
    connector: &str,
) -> (
    String,
    tokio::task::JoinHandle<Result<JobReport, syncdeck::engine::runner::EngineError>>,
) {
    standin.clear_requests();
    standin.faults().hang_search(true);
    let job_id = es
        .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let task = {
        let (engine, job_id) = (engine.clone(), job_id.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &CancellationToken::new()).await })
    };
    wait_for("a bulk request while the id scan is held", LIMIT, || {
        standin
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/_bulk"))
    })
    .await;
    (job_id, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_scan_failing_while_indexing_fails_the_job_and_deletes_nothing() {
    // 500 is an answer the client returns at once; 503 it retries on, until retries run out.
    for (status, retried) in [(500, false), (503, true)] {
        scan_failing_sync(status, retried).await;
    }
}

/// A full sync whose id scan (read while indexing) gets `status` for its pages.
async fn scan_failing_sync(status: u16, retried: bool) {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, "worker-scan-fails");
    let mut before = BTreeSet::new();
    for id in (0..100)
        .map(|i| format!("doc-{i}"))
        .chain((0..200).map(|i| format!("stale-{i}")))
    {
        standin.put_doc("scanfail", &id, json!({"id": id}));
        before.insert(id);
    }
    // Paced (at most 5 s), so documents are still coming when the scan fails.
    let id = generator_connector(es.as_ref(), "scanfail", "scanfail", 3000, 0, 600).await;
    let (job_id, task) = full_sync_with_the_id_scan_held(&standin, &engine, es.as_ref(), &id).await;
    // The held page, and every retry of it, gets the error.
    standin.faults().fail_pit_search(Some(status));
    standin.faults().hang_search(false);
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap()
        .expect("run job");

    match &report.end {
        JobEnd::Failed { error } => assert!(
            error.contains("reading existing documents of 'scanfail'"),
            "{status}: {error}"
        ),
        other => panic!("{status}: expected a failed job, got {other:?}"),
    }
    assert_eq!(
        report.counters.deleted, 0,
        "{status}: {:?}",
        report.counters
    );
    let pages = standin
        .requests()
        .iter()
        .filter(|r| r.path.trim_end_matches('/') == "/_search")
        .count();
    assert_eq!(pages > 1, retried, "{status}: {pages} page requests");
    // Every document the index held is still there, stale ones included.
    let after = standin_ids(&standin, "scanfail");
    assert!(
        before.is_subset(&after),
        "{status}: deleted {:?}",
        before.difference(&after)
    );
    let job = es.get_sync_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Error);
    assert_eq!(job.deleted_document_count, 0);
}

/// Fast settings with `skip_unchanged` on, for full syncs that skip unchanged documents.
fn skipping_settings() -> syncdeck::config::EngineSettings {
    syncdeck::config::EngineSettings {
        skip_unchanged: true,
        ..fast_settings()
    }
}

fn write_file(root: &Path, name: &str, text: &str) {
    std::fs::write(root.join(name), text).unwrap();
}

fn set_mtime(path: &Path, t: std::time::SystemTime) {
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(t)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_files_are_skipped_without_reading_their_content() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write_file(
            dir.path(),
            &format!("f{i}.txt"),
            &format!("original text {i}"),
        );
    }
    let (_, backend, _dlq) = embedded_engine("worker-dir");
    let engine = engine_with(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        memory_dlq(),
        syncdeck::sources::builtin(),
        "worker-dir",
        skipping_settings(),
        fast_breaker(),
    );
    let values = json!({"path": dir.path().to_string_lossy()});
    let id = create_connector(&backend, "dir", "files", &DirectoryFactory, values).await;

    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_completed(&first);
    assert_eq!(first.counters.indexed, 5);
    let body = |doc: Option<Value>| {
        doc.unwrap()["body"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        body(backend.get_document("files", "f2.txt").await.unwrap()),
        "original text 2"
    );

    // New text under the old modification time: only a content fetch could see it.
    let path = dir.path().join("f2.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    write_file(dir.path(), "f2.txt", "rewritten text");
    set_mtime(&path, mtime);
    let (_, second) = run(&engine, &id, JobType::Full).await;
    assert_completed(&second);
    let c = second.counters;
    assert_eq!(
        (c.indexed + c.updated, c.skipped, c.bulk_requests),
        (0, 5, 0),
        "{c:?}"
    );
    assert_eq!(
        body(backend.get_document("files", "f2.txt").await.unwrap()),
        "original text 2"
    );

    // The control: once the timestamp moves, the file is read and indexed again.
    set_mtime(&path, mtime + Duration::from_secs(5));
    let (_, third) = run(&engine, &id, JobType::Full).await;
    let c = third.counters;
    assert_eq!((c.indexed + c.updated, c.skipped), (1, 4), "{c:?}");
    assert_eq!(
        body(backend.get_document("files", "f2.txt").await.unwrap()),
        "rewritten text"
    );
}

// 5. ---------------------------------------------------------------------------------------

fn cursor_time(cursor: &Option<Value>) -> Timestamp {
    let text = cursor
        .as_ref()
        .and_then(|c| c["mtime"].as_str())
        .unwrap_or_else(|| panic!("no mtime in cursor {cursor:?}"));
    Timestamp::parse(text).unwrap_or_else(|| panic!("unreadable cursor time '{text}'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_syncs_index_only_changed_files_and_advance_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        write_file(dir.path(), &format!("n{i}.md"), &format!("# note {i}"));
    }
    let (engine, backend, _dlq) = embedded_engine("worker-inc");
    let values = json!({"path": dir.path().to_string_lossy()});
    let id = create_connector(&backend, "inc", "notes", &DirectoryFactory, values).await;

    let (_, full) = run(&engine, &id, JobType::Full).await;
    assert_completed(&full);
    assert_eq!(full.counters.indexed, 6);
    let after_full = cursor_time(&backend.get_connector(&id).await.unwrap().sync_cursor);

    let touched = dir.path().join("n3.md");
    write_file(dir.path(), "n3.md", "# note 3, edited");
    set_mtime(
        &touched,
        std::time::SystemTime::now() + Duration::from_secs(10),
    );
    let (job_id, inc) = run(&engine, &id, JobType::Incremental).await;
    assert_completed(&inc);
    let c = inc.counters;
    // `updated`: the document was in the index already.
    assert_eq!(
        (c.seen, c.indexed + c.updated, c.deleted),
        (1, 1, 0),
        "{c:?}"
    );
    let job = backend.get_sync_job(&job_id).await.unwrap();
    assert_eq!(job.job_type, JobType::Incremental);
    assert_eq!(
        cursor_time(&job.connector.sync_cursor),
        after_full,
        "the job starts from the saved cursor"
    );
    let doc = backend
        .get_document("notes", "n3.md")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc["body"], "# note 3, edited");
    let after_inc = cursor_time(&backend.get_connector(&id).await.unwrap().sync_cursor);
    assert!(
        after_inc > after_full,
        "cursor {after_inc} did not advance past {after_full}"
    );

    let (_, idle) = run(&engine, &id, JobType::Incremental).await;
    assert_completed(&idle);
    assert_eq!(
        (
            idle.counters.seen,
            idle.counters.indexed + idle.counters.updated
        ),
        (0, 0),
        "{:?}",
        idle.counters
    );
    assert_eq!(
        cursor_time(&backend.get_connector(&id).await.unwrap().sync_cursor),
        after_inc
    );
    assert_eq!(backend.count("notes").await.unwrap(), 6);
}

// 6. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_exclude_rules_keep_documents_out_and_delete_them_on_a_full_sync() {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, "worker-rules");
    let id = generator_connector(es.as_ref(), "rules", "rules", 400, 0, 0).await;
    let (_, first) = run(&engine, &id, JobType::Full).await;
    assert_eq!(first.counters.indexed, 400);

    let source = generator(400, 0);
    let alpha: BTreeSet<String> = (0..400)
        .filter(|i| source.document(*i).fields["category"] == "alpha")
        .map(|i| format!("doc-{i}"))
        .collect();
    assert!(!alpha.is_empty() && alpha.len() < 400);
    let rules = [rule(
        "no-alpha",
        0,
        RulePolicy::Exclude,
        "category",
        RuleType::Equals,
        "alpha",
    )];
    es.update_filtering(&id, &rules, None).await.unwrap();
    // A draft alone changes nothing: jobs use the active rules.
    let (_, draft_only) = run(&engine, &id, JobType::Full).await;
    let c = &draft_only.counters;
    // A full sync sends every document again (no unchanged skip), none excluded.
    assert_eq!((c.deleted, c.skipped, c.indexed + c.updated), (0, 0, 400));
    // What a connectors service does with an edited draft (PROTOCOL §5.2): validate, activate.
    let connectors = es.client().connectors();
    connectors
        .update_filtering_validation(&id, &FilteringValidation::default())
        .await
        .unwrap();
    connectors.activate_filtering(&id).await.unwrap();

    let (job_id, ruled) = run(&engine, &id, JobType::Full).await;

    assert_completed(&ruled);
    let snapshot = es
        .get_sync_job(&job_id)
        .await
        .unwrap()
        .connector
        .filtering
        .expect("the job's active rules");
    assert!(
        snapshot.rules.iter().any(|r| r.id == "no-alpha"),
        "{snapshot:?}"
    );
    assert_eq!(
        ruled.counters.deleted,
        alpha.len() as u64,
        "{:?}",
        ruled.counters
    );
    let expected: BTreeSet<String> = all_ids(400).difference(&alpha).cloned().collect();
    assert_ids(&standin_ids(&standin, "rules"), &expected, "index rules");
    assert!(
        standin
            .index_docs("rules")
            .iter()
            .all(|(_, d)| d["category"] != "alpha")
    );
}

/// A full sync of a `count`-document generator connector `name` on the embedded backend,
/// with one active exclude rule.
async fn sync_excluding(
    name: &str,
    count: u64,
    field: &str,
    kind: RuleType,
    value: &str,
) -> (syncdeck::backend::embedded::EmbeddedBackend, JobReport) {
    let (engine, backend, _dlq) = embedded_engine(&format!("worker-{name}"));
    let id = generator_connector(&backend, name, name, count, 0, 0).await;
    let rules = [rule("r", 0, RulePolicy::Exclude, field, kind, value)];
    backend.update_filtering(&id, &rules, None).await.unwrap();
    backend.activate_filtering(&id).await.unwrap();
    let (_, report) = run(&engine, &id, JobType::Full).await;
    assert_completed(&report);
    (backend, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_rules_compare_as_numbers_on_the_embedded_backend() {
    let (backend, report) =
        sync_excluding("num", 500, "value", RuleType::GreaterThan, "500000").await;
    let source = generator(500, 0);
    let kept: BTreeSet<String> = (0..500)
        .filter(|i| source.document(*i).fields["value"].as_i64().unwrap() <= 500_000)
        .map(|i| format!("doc-{i}"))
        .collect();
    assert!(kept.len() > 100 && kept.len() < 400, "{} kept", kept.len());
    assert_ids(&store_ids(&backend, "num").await, &kept, "index num");
    assert_eq!(
        (report.counters.indexed, report.counters.skipped),
        (kept.len() as u64, 500 - kept.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_on_timestamp_reads_the_stamp_the_source_keeps_beside_the_fields() {
    // The generator stamps document i at 2024-01-01T00:00:00Z + i seconds, in
    // `Document::timestamp`, not in its fields: the rule must see it all the same.
    let (backend, report) = sync_excluding(
        "stamp",
        300,
        "_timestamp",
        RuleType::LessThan,
        "2024-01-01T00:01:40Z",
    )
    .await;
    let kept: BTreeSet<String> = (100..300).map(|i| format!("doc-{i}")).collect();
    assert_ids(&store_ids(&backend, "stamp").await, &kept, "index stamp");
    assert_eq!(
        (report.counters.indexed, report.counters.skipped),
        (200, 100)
    );
}

// 7. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_item_429s_are_retried_until_every_document_is_indexed() {
    let standin = standin(1).await;
    standin.faults().item_429_ratio(0.2);
    let (engine, es, dlq) = es_engine(&standin, "worker-429");
    let id = generator_connector(es.as_ref(), "busy", "busy", 2000, 0, 0).await;

    let (_, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    assert_eq!(report.counters.indexed, 2000, "{:?}", report.counters);
    assert!(report.counters.retried >= 400, "{:?}", report.counters);
    assert_eq!(report.counters.dead_lettered, 0);
    assert!(dead_letters(&dlq).is_empty());
    assert_ids(&standin_ids(&standin, "busy"), &all_ids(2000), "index busy");
}

/// Batches bigger than the queue's share still fill every request slot: a wedged cluster
/// holds `max_in_flight` bulk requests at once, not fewer (each batch here is most of the
/// queue's bytes; charged in full, one batch at a time went out, and this test timed out
/// waiting for the four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_bigger_than_the_queue_still_fill_every_request_slot() {
    let standin = standin(1).await;
    // Held bulks must not time out (and go out again, as further requests) while counted.
    let mut es_settings = es_settings(&standin.es_urls());
    es_settings.request_timeout = Duration::from_secs(120);
    let es = Arc::new(ElasticsearchBackend::new(&es_settings).expect("client for the stand-in"));
    let dlq = memory_dlq();
    let settings = syncdeck::config::EngineSettings {
        batch_max_docs: 20,
        queue_max_bytes: 8 << 10,
        max_in_flight: 4,
        ..fast_settings()
    };
    let engine = engine_with(
        es.clone(),
        es.clone(),
        dlq.clone(),
        marking_registry(),
        "worker-slots",
        settings,
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "slots", "slots", 400, 0, 0).await;
    let bulks = || {
        standin
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/_bulk"))
            .count()
    };
    standin.faults().hang_bulk(true);
    let job = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { run(&engine, &id, JobType::Full).await })
    };
    wait_for("four bulk requests held at once", LIMIT, || bulks() >= 4).await;
    // Time for a fifth to go out, were the slots not the bound.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = bulks();
    standin.faults().hang_bulk(false);
    let (_, report) = tokio::time::timeout(LIMIT, job)
        .await
        .expect("the job ends")
        .expect("the job task");
    assert_eq!(held, 4, "bulk requests held by a wedged cluster");
    assert_completed(&report);
    assert_eq!(report.counters.indexed, 400, "{:?}", report.counters);
    assert!(dead_letters(&dlq).is_empty());
    assert_ids(
        &standin_ids(&standin, "slots"),
        &all_ids(400),
        "index slots",
    );
}

// 9. ---------------------------------------------------------------------------------------

async fn cancel_midway(
    engine: &Engine,
    control: &dyn ControlPlane,
    connector: &str,
) -> (String, JobReport) {
    let job_id = control
        .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let task = {
        let (engine, job_id) = (engine.clone(), job_id.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &CancellationToken::new()).await })
    };
    let live = engine.live();
    wait_for("documents to flow", LIMIT, || {
        live.progress(&job_id)
            .is_some_and(|p| p.counters().indexed > 0)
    })
    .await;
    control.cancel_sync_job(&job_id).await.unwrap();
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job stops")
        .unwrap()
        .unwrap();
    (job_id, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_running_job_ends_it_canceled_on_the_embedded_backend() {
    let (engine, backend, _dlq) = embedded_engine("worker-cancel");
    let id = generator_connector(&backend, "slow", "slow", 20_000, 0, 1000).await;

    let (job_id, report) = cancel_midway(&engine, &backend, &id).await;

    assert_eq!(report.end, JobEnd::Canceled, "{report:#?}");
    assert!(report.counters.seen < 20_000, "{:?}", report.counters);
    let job = backend.get_sync_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Canceled);
    assert!(
        job.canceled_at.is_some()
            && job.completed_at.is_some()
            && job.cancelation_requested_at.is_some(),
        "{job:?}"
    );
    assert_eq!(job.indexed_document_count, report.counters.indexed);
    let connector = backend.get_connector(&id).await.unwrap();
    assert_eq!(connector.last_sync_status, Some(JobStatus::Canceled));
    assert_eq!(connector.status, ConnectorStatus::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_running_job_ends_it_canceled_on_elasticsearch() {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, "worker-cancel-es");
    let id = generator_connector(es.as_ref(), "slow-es", "slow-es", 20_000, 0, 1000).await;

    let (job_id, report) = cancel_midway(&engine, es.as_ref(), &id).await;

    assert_eq!(report.end, JobEnd::Canceled, "{report:#?}");
    let job = standin.sync_job(&job_id).unwrap();
    assert_eq!(job["status"], "canceled", "{job:#}");
    assert!(
        job["canceled_at"].is_string() && job["completed_at"].is_string(),
        "{job:#}"
    );
    assert_eq!(
        job["indexed_document_count"], report.counters.indexed,
        "{job:#}"
    );
    let connector = standin.connector(&id).unwrap();
    assert_eq!(connector["last_sync_status"], "canceled", "{connector:#}");
    assert_eq!(connector["status"], "connected", "{connector:#}");
}

// 10. --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_tick_fails_a_job_whose_worker_stopped_checking_in() {
    let standin = standin(1).await;
    let es = es_backend(&standin.es_urls());
    let mut settings = fast_settings();
    settings.idle_job_timeout = Duration::from_millis(300);
    let engine = engine_with(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "reaper",
        settings,
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "ghosted", "ghosted", 10, 0, 0).await;
    let job_id = es
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    assert!(es.mark_sync_started(&id, JobType::Full).await.unwrap());
    es.claim_sync_job(&job_id, "ghost", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let options = ServeOptions {
        idle: Duration::from_millis(50),
        max_ticks: Some(1),
        ..Default::default()
    };
    let summary = serve(&engine, &options, CancellationToken::new()).await;

    assert_eq!(summary.reaped, 1, "{summary:?}");
    let job = standin.sync_job(&job_id).unwrap();
    assert_eq!(job["status"], "error", "{job:#}");
    assert_eq!(
        job["error"], "The job has not seen any update for some time.",
        "{job:#}"
    );
    assert_eq!(job["worker_hostname"], "ghost");
    let connector = standin.connector(&id).unwrap();
    assert_eq!(connector["last_sync_status"], "error", "{connector:#}");
    assert_eq!(
        connector["last_sync_error"], "The job has not seen any update for some time.",
        "{connector:#}"
    );
    // The reaped job is not run again, and a new job can start.
    assert!(summary.jobs.is_empty(), "{summary:?}");
}

// 11. --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_workers_run_every_job_exactly_once() {
    let standin = standin(2).await;
    let urls = standin.es_urls();
    let mut connectors = Vec::new();
    let setup = es_backend(&urls);
    for i in 0..6 {
        let name = format!("shared-{i}");
        let id = generator_connector(setup.as_ref(), &name, &name, 300 + 50 * i, 0, 0).await;
        let job = setup
            .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        connectors.push((id, job, 300 + 50 * i));
    }
    standin.clear_requests();
    // Each worker has its own client (one on each node) and its own dead-letter queue.
    let worker = |node: usize, name: &str| {
        let es = es_backend(&urls[node..=node]);
        engine(es.clone(), es, memory_dlq(), marking_registry(), name)
    };
    let (a, b) = (worker(0, "worker-a"), worker(1, "worker-b"));
    let options = ServeOptions {
        idle: Duration::from_millis(100),
        max_ticks: Some(25),
        max_concurrent_syncs: 2,
        ..Default::default()
    };

    let (sa, sb) = tokio::join!(
        serve(&a, &options, CancellationToken::new()),
        serve(&b, &options, CancellationToken::new())
    );

    let reports: Vec<&JobReport> = sa.jobs.iter().chain(&sb.jobs).collect();
    let requests = standin.requests();
    for (connector, job_id, count) in &connectors {
        let job = standin.sync_job(job_id).unwrap();
        assert_eq!(job["status"], "completed", "{job:#}");
        let ran: Vec<&&JobReport> = reports
            .iter()
            .filter(|r| &r.job_id == job_id && r.end == JobEnd::Completed)
            .collect();
        assert_eq!(ran.len(), 1, "job {job_id} completed {} times", ran.len());
        let expected_worker = if sa
            .jobs
            .iter()
            .any(|r| &r.job_id == job_id && r.end == JobEnd::Completed)
        {
            "worker-a"
        } else {
            "worker-b"
        };
        assert_eq!(job["worker_hostname"], expected_worker, "{job:#}");
        // One claim won; every other claim of it was refused and reported as such.
        let claims = requests
            .iter()
            .filter(|r| r.path.ends_with(&format!("/{job_id}/_claim")))
            .count();
        let lost = reports
            .iter()
            .filter(|r| &r.job_id == job_id && matches!(&r.end, JobEnd::Skipped { reason } if reason.starts_with("claimed by another worker")))
            .count();
        assert_eq!(
            claims,
            1 + lost,
            "job {job_id}: {claims} claims, {lost} refused"
        );
        assert_ids(
            &standin_ids(&standin, connector),
            &all_ids(*count),
            connector,
        );
        let doc = standin.connector(connector).unwrap();
        assert_eq!(doc["last_sync_status"], "completed", "{doc:#}");
    }
    let others: Vec<_> = reports
        .iter()
        .filter(|r| !matches!(r.end, JobEnd::Completed | JobEnd::Skipped { .. }))
        .collect();
    assert!(others.is_empty(), "{others:#?}");
}

/// Hooks that hold the start guard (`try_start_guard`) until told to go on: a worker that
/// read a pending job, then stalled while another worker ran it to the end.
struct StalledGuard {
    reached: tokio::sync::Notify,
    proceed: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Hooks for StalledGuard {
    async fn try_start_guard(
        &self,
        inner: &dyn ControlPlane,
        connector_id: &str,
        job_type: JobType,
    ) -> BResult<GuardAttempt> {
        self.reached.notify_one();
        self.proceed.notified().await;
        inner.try_start_guard(connector_id, job_type).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stalled_before_the_guard_leaves_a_finished_job_alone() {
    let standin = standin(1).await;
    let es = es_backend(&standin.es_urls());
    let id = generator_connector(es.as_ref(), "stalled", "stalled", 200, 0, 0).await;
    let job_id = es
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let gate = Arc::new(Forwarding::new(
        es.clone(),
        StalledGuard {
            reached: Default::default(),
            proceed: Default::default(),
        },
    ));
    let late = engine(
        gate.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-late",
    );
    let quick = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        "worker-quick",
    );

    // The late worker has read the job (pending) and stalls before its start guard.
    let late_run = {
        let job_id = job_id.clone();
        tokio::spawn(async move { late.run_job(&job_id, &CancellationToken::new()).await })
    };
    tokio::time::timeout(LIMIT, gate.hooks.reached.notified())
        .await
        .expect("the late worker reached its guard");
    let report = quick
        .run_job(&job_id, &CancellationToken::new())
        .await
        .unwrap();
    assert_completed(&report);
    standin.clear_requests();
    gate.hooks.proceed.notify_one();
    let late_report = tokio::time::timeout(LIMIT, late_run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert!(
        matches!(late_report.end, JobEnd::Skipped { .. }),
        "{late_report:#?}"
    );
    // Elasticsearch would accept a second claim: the late worker must not send one.
    let claims = standin
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/_claim"))
        .count();
    assert_eq!(claims, 0, "the late worker claimed a finished job");
    let job = standin.sync_job(&job_id).unwrap();
    assert_eq!(
        (job["status"].as_str(), job["worker_hostname"].as_str()),
        (Some("completed"), Some("worker-quick"))
    );
    let connector = standin.connector(&id).unwrap();
    assert_eq!(connector["last_sync_status"], "completed", "{connector:#}");
    assert!(connector["last_sync_error"].is_null(), "{connector:#}");
    assert_eq!(standin.doc_count("stalled"), 200);
}

// 13. --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_dead_letters_keeps_failures_and_removes_successes() {
    let standin = standin(1).await;
    standin.faults().reject_field(Some(POISON_FIELD.into()));
    let (engine, es, dlq) = es_engine(&standin, "worker-retry");
    let id = generator_connector(es.as_ref(), "retry", "retry", 1000, 50, 0).await;
    let (_, report) = run(&engine, &id, JobType::Full).await;
    assert_eq!(
        (report.counters.indexed, report.counters.dead_lettered),
        (980, 20)
    );
    let settings = fast_settings();
    let cancel = CancellationToken::new();

    // Still rejected: every entry stays, one attempt more, with the new reason.
    let entries = dlq.list(&DlqFilter::default()).unwrap();
    let again = retry_dead_letters(
        es.clone(),
        es.as_ref(),
        dlq.clone(),
        entries,
        &settings,
        &fast_breaker(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        (again.succeeded.len(), again.failed.len()),
        (0, 20),
        "{again:?}"
    );
    let entries = dlq.list(&DlqFilter::default()).unwrap();
    assert_eq!(entries.len(), 20);
    assert!(
        entries
            .iter()
            .all(|e| e.attempts == 2 && e.reason.contains("failed to parse field [poison]")),
        "{entries:#?}"
    );
    assert_eq!(standin.doc_count("retry"), 980);

    // Fixed: every entry is indexed and leaves the queue.
    standin.faults().reject_field(None);
    let fixed = retry_dead_letters(
        es.clone(),
        es.as_ref(),
        dlq.clone(),
        entries,
        &settings,
        &fast_breaker(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        (fixed.succeeded.len(), fixed.failed.len()),
        (20, 0),
        "{fixed:?}"
    );
    assert_eq!(dlq.count(&DlqFilter::default()).unwrap(), 0);
    assert_ids(
        &standin_ids(&standin, "retry"),
        &all_ids(1000),
        "index retry",
    );
    let docs: BTreeMap<String, Value> = standin.index_docs("retry").into_iter().collect();
    let source = generator(1000, 50);
    assert_eq!(docs["doc-49"]["title"], source.document(49).fields["title"]);
    assert_eq!(docs["doc-49"]["id"], "doc-49");
}

// 14. --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_endpoint_shows_live_jobs_and_metrics() {
    let (engine, backend, dlq) = embedded_engine("worker-status");
    let id = generator_connector(&backend, "watched", "watched", 3000, 100, 2000).await;
    let mapping = json!({"properties": {"value": {"type": "long"}}});
    backend
        .ensure_index("watched", Some(&mapping))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let addr = "127.0.0.1:0".parse().unwrap();
    let (bound, server) = status::start(
        addr,
        engine.live(),
        dlq.clone(),
        "worker-status".into(),
        stop.clone(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("http://{bound}{path}"));
        async move {
            let response = http.get(url).send().await.unwrap();
            assert!(response.status().is_success());
            response.text().await.unwrap()
        }
    };
    let job_id = backend
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let task = {
        let (engine, job_id) = (engine.clone(), job_id.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &CancellationToken::new()).await })
    };

    // While it runs.
    let started = std::time::Instant::now();
    let live_doc = loop {
        let doc: Value = serde_json::from_str(&get("/status").await).unwrap();
        let running = doc["jobs"].as_array().is_some_and(|jobs| {
            jobs.iter().any(|j| {
                j["job_id"] == job_id.as_str()
                    && j["phase"] == "extracting"
                    && j["counters"]["indexed"].as_u64() > Some(0)
            })
        });
        if running {
            break doc;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the job never showed as running on /status: {doc:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(live_doc["worker"], "worker-status");
    let metrics = get("/metrics").await;
    assert!(metrics.contains(&format!("syncdeck_documents_total{{connector=\"watched\",job=\"{job_id}\",index=\"watched\",outcome=\"indexed\"}}")), "{metrics}");
    assert!(
        metrics.contains("syncdeck_bulk_latency_seconds_bucket{"),
        "{metrics}"
    );

    // After it ends, the last snapshot stays, with the final counts.
    let report = task.await.unwrap().unwrap();
    assert_completed(&report);
    let doc: Value = serde_json::from_str(&get("/status").await).unwrap();
    let job = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == job_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(job["phase"], "completed");
    assert_eq!(
        (
            job["counters"]["indexed"].as_u64(),
            job["counters"]["dead_lettered"].as_u64()
        ),
        (Some(2970), Some(30))
    );
    let metrics = get("/metrics").await;
    assert!(metrics.contains(&format!("syncdeck_documents_total{{connector=\"watched\",job=\"{job_id}\",index=\"watched\",outcome=\"indexed\"}} 2970")), "{metrics}");
    assert!(
        metrics.contains("syncdeck_dead_letters{connector=\"watched\"} 30"),
        "{metrics}"
    );
    let count_line = metrics
        .lines()
        .find(|l| l.starts_with("syncdeck_bulk_latency_seconds_count{"))
        .unwrap();
    let bulks: u64 = count_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(bulks, report.counters.bulk_requests);
    stop.cancel();
    server.await.unwrap();
}

// Ids over 512 bytes are indexed under their hash; the deletion pass reads `_id`s, so a
// re-sync keeps such a document instead of deleting it as unseen. ----------------------

async fn long_ids_survive_a_resync(engine: &Engine, store: &dyn DocumentStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.ndjson");
    let long = "l".repeat(600);
    std::fs::write(
        &path,
        format!("{{\"id\":\"{long}\",\"n\":1}}\n{{\"id\":\"short\",\"n\":2}}\n"),
    )
    .unwrap();
    let control = engine.deps().control.clone();
    let id = create_connector(
        control.as_ref(),
        "long-ids",
        "long-ids",
        &syncdeck::sources::NdjsonFactory,
        json!({"path": path.to_str().unwrap()}),
    )
    .await;
    for round in 0..2 {
        let (_, report) = run(engine, &id, JobType::Full).await;
        assert_completed(&report);
        assert_eq!(
            (
                report.counters.indexed + report.counters.updated,
                report.counters.deleted
            ),
            (2, 0),
            "round {round}: {report:#?}"
        );
    }
    store.refresh("long-ids").await.unwrap();
    let hashed = syncdeck::engine::batch::hash_id(&long);
    let expected: BTreeSet<String> = [hashed, "short".to_string()].into();
    let mut scan = store.scan_bare_ids("long-ids", 10, 1).await.unwrap();
    let mut ids = BTreeSet::new();
    while let Some(page) = scan.next_page().await.unwrap() {
        ids.extend(page.into_iter().map(|m| m.id));
    }
    assert_ids(&ids, &expected, "_ids of index long-ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_long_ids_survive_a_resync() {
    let standin = standin(1).await;
    let (engine, es, _dlq) = es_engine(&standin, "worker-long");
    long_ids_survive_a_resync(&engine, es.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_long_ids_survive_a_resync() {
    let (engine, backend, _dlq) = embedded_engine("worker-long");
    long_ids_survive_a_resync(&engine, &backend).await;
}

// A document stored under an `_id` that is not the one this sync would give it (another
// tool's index) is re-indexed under ours, never skipped and then deleted. ---------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_stored_under_another_id_is_reindexed_not_lost() {
    let standin = standin(1).await;
    // `doc-0` exactly as the generator makes it (same timestamp), under a foreign `_id`.
    standin.put_doc(
        "foreign",
        "not-doc-0",
        json!({"id": "doc-0", "_timestamp": "2024-01-01T00:00:00.000Z", "title": "old"}),
    );
    let (engine, es, _dlq) = es_engine(&standin, "worker-foreign");
    let id = generator_connector(es.as_ref(), "foreign", "foreign", 2, 0, 0).await;

    let (_, report) = run(&engine, &id, JobType::Full).await;

    assert_completed(&report);
    assert_eq!(
        (report.counters.indexed, report.counters.deleted),
        (2, 1),
        "{report:#?}"
    );
    assert_ids(
        &standin_ids(&standin, "foreign"),
        &all_ids(2),
        "index foreign",
    );
}

// The source runs in the extractor's task: a source that fails or panics part-way fails the
// job with its reason, and a failed extraction deletes nothing. ------------------------

/// Sends `count` generator documents, then fails (`seed` 1) or panics (`seed` 2).
struct BreakingFactory;

struct BreakingSource {
    count: u64,
    panic: bool,
}

impl syncdeck::sources::SourceFactory for BreakingFactory {
    fn service_type(&self) -> &'static str {
        "breaking"
    }
    fn display_name(&self) -> &'static str {
        "Fails part-way"
    }
    fn default_configuration(&self) -> syncdeck::model::Configuration {
        syncdeck::sources::GeneratorFactory.default_configuration()
    }
    fn create(
        &self,
        config: &syncdeck::model::Configuration,
    ) -> Result<Box<dyn syncdeck::sources::DataSource>, syncdeck::sources::SourceError> {
        let settings = syncdeck::sources::GeneratorSettings::from_config(config)?;
        Ok(Box::new(BreakingSource {
            count: settings.count,
            panic: settings.seed == 2,
        }))
    }
}

#[async_trait::async_trait]
impl syncdeck::sources::DataSource for BreakingSource {
    async fn ping(&mut self) -> Result<(), syncdeck::sources::SourceError> {
        Ok(())
    }
    async fn run(
        &mut self,
        _mode: syncdeck::sources::SyncMode,
        out: syncdeck::sources::ItemSender,
    ) -> Result<Option<Value>, syncdeck::sources::SourceError> {
        let docs = generator(self.count, 0);
        for i in 0..self.count {
            out.send(syncdeck::sources::SourceItem::Upsert(docs.document(i)))
                .await?;
        }
        if self.panic {
            panic!("the breaking source gave up");
        }
        Err(syncdeck::sources::SourceError::Failed(
            "the breaking source gave up".into(),
        ))
    }
}

async fn breaking_sync(seed: u64) -> (JobReport, BTreeSet<String>) {
    let standin = standin(1).await;
    standin.put_doc("breaking", "stale", json!({"id": "stale", "title": "old"}));
    let es = es_backend(&standin.es_urls());
    let mut registry = syncdeck::sources::builtin();
    registry.register(Arc::new(BreakingFactory));
    let engine = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        registry,
        "worker-breaking",
    );
    let id = create_connector(
        es.as_ref(),
        "breaking",
        "breaking",
        &BreakingFactory,
        json!({"count": 40, "seed": seed, "doc_bytes": 256}),
    )
    .await;
    let (_, report) = run(&engine, &id, JobType::Full).await;
    (report, standin_ids(&standin, "breaking"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_part_way_fails_the_job_and_deletes_nothing() {
    let (report, ids) = breaking_sync(1).await;
    match &report.end {
        JobEnd::Failed { error } => assert!(error.contains("gave up"), "{error}"),
        other => panic!("expected a failed job, got {other:?}"),
    }
    assert!(
        ids.contains("stale"),
        "a failed extraction deleted: {ids:?}"
    );
    assert_eq!(report.counters.deleted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_source_fails_the_job_with_its_message() {
    let (report, ids) = breaking_sync(2).await;
    match &report.end {
        JobEnd::Failed { error } => {
            assert!(
                error.contains("panicked") && error.contains("gave up"),
                "{error}"
            )
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
    assert!(
        ids.contains("stale"),
        "a failed extraction deleted: {ids:?}"
    );
}

/// The live view's "latest documents" are the newest: a batch larger than what the list
/// takes from it gives its last documents, not its first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_list_of_documents_holds_the_newest() {
    let (engine, backend, _dlq) = embedded_engine("worker-recent");
    let id = generator_connector(&backend, "recent", "recent", 300, 0, 0).await;
    let (job_id, report) = run(&engine, &id, JobType::Full).await;
    assert_completed(&report);
    let snapshot = engine
        .live()
        .progress(&job_id)
        .expect("the finished job's progress stays")
        .snapshot();
    // Batches may settle out of order (several in flight), so the newest document is in
    // the list, not necessarily at its end; the sink used to keep each batch's first 64.
    let ids: Vec<&str> = snapshot.recent.iter().map(|d| d.id.as_str()).collect();
    assert!(ids.contains(&"doc-299"), "{ids:?}");
}
