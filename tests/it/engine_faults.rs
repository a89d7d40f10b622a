//! The engine under cluster faults, against the stand-in: a circuit breaker that opens and
//! closes again, a cluster that stays down past the breaker's limit, and one long sync through
//! a node outage, per-item 429s, 5xx bursts, cut responses, unreadable answers to reads and
//! mapping rejections. Afterwards every source document is accounted for, id by id: in the
//! index, or in the dead-letter queue with its reason. Also: full syncs through garbled read
//! answers, half the items refused with 429, and a `syncdeck sync` whose bulk requests hang,
//! ended promptly by SIGTERM.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::{NodeDownMode, StandIn, StandInOptions};
use syncdeck::backend::ControlPlane;
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::engine::runner::{Engine, JobEnd, JobReport};
use syncdeck::model::{JobType, TriggerMethod};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(40);

async fn standin(nodes: usize) -> StandIn {
    StandIn::start(StandInOptions {
        nodes,
        kibana: false,
        ..Default::default()
    })
    .await
}

/// The document path on node 0 only, without client-side retries (so every failed request
/// reaches the sink's breaker), and the control plane on node 1 only: faults on node 0 hit
/// bulk requests and nothing else.
fn split_engine(standin: &StandIn, max_open: Duration) -> (Engine, Arc<ElasticsearchBackend>) {
    let urls = standin.es_urls();
    let mut data = es_settings(&urls[0..1]);
    data.max_retries = 0;
    let store = Arc::new(ElasticsearchBackend::new(&data).unwrap());
    let control = es_backend(&urls[1..2]);
    let breaker = syncdeck::config::BreakerSettings {
        max_open,
        ..fast_breaker()
    };
    let mut settings = fast_settings();
    settings.batch_max_docs = 50;
    let engine = engine_with(
        control.clone(),
        store,
        memory_dlq(),
        marking_registry(),
        "worker-faults",
        settings,
        breaker,
    );
    (engine, control)
}

/// Starts a job and returns its id and the task running it.
async fn start(engine: &Engine, connector: &str) -> (String, tokio::task::JoinHandle<JobReport>) {
    let control = engine.deps().control.clone();
    let job_id = control
        .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let task = {
        let (engine, job_id) = (engine.clone(), job_id.clone());
        tokio::spawn(async move {
            engine
                .run_job(&job_id, &CancellationToken::new())
                .await
                .expect("run job")
        })
    };
    (job_id, task)
}

async fn wait_indexed(engine: &Engine, job_id: &str, at_least: u64) {
    let live = engine.live();
    wait_for(&format!("{at_least} documents indexed"), LIMIT, || {
        live.progress(job_id)
            .is_some_and(|p| p.counters().indexed >= at_least)
    })
    .await;
}

fn breaker_json(engine: &Engine, job_id: &str) -> Value {
    engine
        .live()
        .progress(job_id)
        .and_then(|p| p.snapshot().breaker)
        .and_then(|b| serde_json::to_value(b).ok())
        .unwrap_or(Value::Null)
}

fn standin_ids(standin: &StandIn, index: &str) -> BTreeSet<String> {
    standin
        .index_docs(index)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

// 8. ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_503s_opens_the_breaker_which_closes_again_and_nothing_is_lost() {
    let standin = standin(2).await;
    let (engine, control) = split_engine(&standin, Duration::from_secs(10));
    let id = generator_connector(control.as_ref(), "burst", "burst", 4000, 0, 4000).await;
    let (job_id, task) = start(&engine, &id).await;
    wait_indexed(&engine, &job_id, 200).await;

    standin.faults().fail_requests(Some(0), vec![503; 12]);
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();

    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(
        (report.counters.indexed, report.counters.dead_lettered),
        (4000, 0),
        "{:?}",
        report.counters
    );
    assert!(report.counters.bulk_failures >= 3, "{:?}", report.counters);
    let breaker = breaker_json(&engine, &job_id);
    assert!(breaker["times_opened"].as_u64() >= Some(1), "{breaker:#}");
    assert_eq!(breaker["state"], "closed", "{breaker:#}");
    assert_ids(&standin_ids(&standin, "burst"), &all_ids(4000), "index");
    assert!(dead_letters(&engine.deps().dlq).is_empty());
    assert_eq!(standin.sync_job(&job_id).unwrap()["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_down_longer_than_max_open_fails_the_job_and_dead_letters_the_rest() {
    let standin = standin(2).await;
    let (engine, control) = split_engine(&standin, Duration::from_millis(800));
    let id = generator_connector(control.as_ref(), "down", "down", 20_000, 0, 4000).await;
    let (job_id, task) = start(&engine, &id).await;
    wait_indexed(&engine, &job_id, 300).await;

    standin.faults().node_down(0, NodeDownMode::Refuse);
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();

    let JobEnd::Failed { error } = &report.end else {
        panic!("{report:#?}")
    };
    assert!(
        error.contains("circuit breaker") && error.contains("max_open"),
        "{error}"
    );
    let c = report.counters;
    assert!(c.seen < 20_000 && c.dead_lettered > 0, "{c:?}");
    // Every document the source sent is in the index or in the queue, and never both.
    let indexed = standin_ids(&standin, "down");
    let letters = dead_letters(&engine.deps().dlq);
    let queued: BTreeSet<String> = letters.iter().map(|l| l.doc_id.clone()).collect();
    assert_eq!(
        queued.len(),
        letters.len(),
        "a document was dead-lettered twice"
    );
    assert!(indexed.is_disjoint(&queued));
    let accounted: BTreeSet<String> = indexed.union(&queued).cloned().collect();
    assert_ids(
        &accounted,
        &all_ids(c.seen),
        &format!(
            "indexed {} + dead-lettered {}, seen {}",
            indexed.len(),
            queued.len(),
            c.seen
        ),
    );
    assert_eq!(
        (c.indexed, c.dead_lettered),
        (indexed.len() as u64, queued.len() as u64)
    );
    for letter in &letters {
        assert!(
            !letter.reason.is_empty() && letter.document["id"] == letter.doc_id.as_str(),
            "{letter:?}"
        );
    }
    let job = standin.sync_job(&job_id).unwrap();
    assert_eq!(job["status"], "error", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("circuit breaker")),
        "{job:#}"
    );
    assert_eq!(job["indexed_document_count"], c.indexed);
    let connector = standin.connector(&id).unwrap();
    assert_eq!(connector["last_sync_status"], "error", "{connector:#}");
    assert_eq!(connector["status"], "error", "{connector:#}");
}

// 12. --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_is_accounted_for_through_a_storm_of_faults() {
    const COUNT: u64 = 20_000;
    const POISON_EVERY: u64 = 50;
    let standin = standin(3).await;
    let faults = standin.faults();
    faults.reject_field(Some(POISON_FIELD.into()));
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let mut settings = fast_settings();
    settings.batch_max_docs = 200;
    let engine = engine_with(
        es.clone(),
        es.clone(),
        dlq.clone(),
        marking_registry(),
        "worker-storm",
        settings,
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "storm", "storm", COUNT, POISON_EVERY, 8000).await;
    let (job_id, task) = start(&engine, &id).await;

    // Faults arrive in stages while documents flow; reads are garbled throughout.
    faults.read_fault_ratio(0.02);
    wait_indexed(&engine, &job_id, 1000).await;
    faults.item_429_ratio(0.2);
    faults.fail_requests(None, vec![503, 503, 503]);
    wait_indexed(&engine, &job_id, 4000).await;
    faults.node_down(1, NodeDownMode::Refuse);
    wait_indexed(&engine, &job_id, 7000).await;
    faults.truncate_next(3);
    wait_indexed(&engine, &job_id, 10_000).await;
    faults.fail_requests(None, vec![502, 503, 504, 503]);
    wait_indexed(&engine, &job_id, 13_000).await;
    faults.truncate_next(2);
    faults.node_up(1);
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();
    faults.clear();

    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let poisoned = poisoned_ids(COUNT, POISON_EVERY);
    let c = report.counters;
    assert!(
        c.retried > 0 && c.bulk_requests > 0,
        "the faults did not bite: {c:?}"
    );
    let indexed = standin_ids(&standin, "storm");
    let letters = dead_letters(&dlq);
    let queued: BTreeSet<String> = letters.iter().map(|l| l.doc_id.clone()).collect();
    assert_eq!(
        queued.len(),
        letters.len(),
        "a document was dead-lettered twice"
    );
    // Every id in the index or in the queue. Both only where the outcome was truly unknown:
    // a request whose response was cut short may have been applied, and its retry then met
    // 429s until the item gave up. Such a dead letter is a harmless duplicate (a retry
    // indexes the same document again); it is never a poisoned one.
    let both: BTreeSet<String> = indexed.intersection(&queued).cloned().collect();
    for id in &both {
        let letter = letters.iter().find(|l| &l.doc_id == id).unwrap();
        assert!(
            !poisoned.contains(id) && letter.reason.starts_with("gave up after"),
            "{id} both indexed and dead-lettered: {letter:?}"
        );
    }
    assert_ids(
        &indexed.union(&queued).cloned().collect(),
        &all_ids(COUNT),
        "indexed + dead-lettered",
    );
    // `updated`: sent again after a cut response, so already in the index.
    assert_eq!(
        (c.seen, c.indexed + c.updated, c.dead_lettered),
        (
            COUNT,
            (indexed.len() - both.len()) as u64,
            queued.len() as u64
        ),
        "{c:?}"
    );
    // Each poisoned document for its mapping error; a good one only if it met a 429 on every
    // attempt (0.2^6 a document: about one in 20,000).
    assert!(
        poisoned.is_subset(&queued),
        "poisoned documents were indexed"
    );
    for letter in &letters {
        assert_eq!(letter.attempts, 1, "{letter:?}");
        assert_eq!(letter.document["id"], letter.doc_id.as_str());
        if poisoned.contains(&letter.doc_id) {
            assert_eq!(
                letter.error_type, "document_parsing_exception",
                "{letter:?}"
            );
            assert!(
                letter.reason.contains("failed to parse field [poison]"),
                "{letter:?}"
            );
        } else {
            assert_eq!(
                (letter.error_type.as_str(), letter.status),
                ("es_rejected_execution_exception", Some(429)),
                "{letter:?}"
            );
            assert!(
                letter.reason.starts_with("gave up after 6 attempts"),
                "{letter:?}"
            );
        }
    }
    assert!(
        queued.len() - poisoned.len() <= 10,
        "{} good documents dead-lettered",
        queued.len() - poisoned.len()
    );
    let job = es.get_sync_job(&job_id).await.unwrap();
    let n = indexed.len() as u64;
    assert_eq!(
        (job.indexed_document_count, job.total_document_count),
        (n - both.len() as u64, Some(n))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_document_errors_fail_the_job_and_every_sent_document_is_accounted_for() {
    let (engine, backend, dlq) = embedded_engine("worker-monitor");
    let mapping = serde_json::json!({"properties": {"value": {"type": "long"}}});
    syncdeck::backend::DocumentStore::ensure_index(&backend, "half", Some(&mapping))
        .await
        .unwrap();
    // Every other document is refused by the mapping: far above the 15% error rate allowed.
    let id = generator_connector(&backend, "half", "half", 20_000, 2, 0).await;
    let (job_id, task) = start(&engine, &id).await;
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();

    let JobEnd::Failed { error } = &report.end else {
        panic!("{report:#?}")
    };
    assert!(error.contains("too many document errors"), "{error}");
    let c = report.counters;
    assert!(c.seen < 20_000, "the source was not stopped: {c:?}");
    let indexed = store_ids(&backend, "half").await;
    let letters = dead_letters(&dlq);
    let queued: BTreeSet<String> = letters.iter().map(|l| l.doc_id.clone()).collect();
    assert_eq!(
        queued.len(),
        letters.len(),
        "a document was dead-lettered twice"
    );
    assert!(indexed.is_disjoint(&queued));
    let accounted: BTreeSet<String> = indexed.union(&queued).cloned().collect();
    assert_ids(&accounted, &all_ids(c.seen), "indexed + dead-lettered");
    let poisoned = poisoned_ids(c.seen, 2);
    for letter in &letters {
        if letter.error_type == "document_parsing_exception" {
            assert!(poisoned.contains(&letter.doc_id), "{letter:?}");
        } else {
            assert_eq!(letter.error_type, "sync_stopped", "{letter:?}");
            assert!(
                letter.reason.contains("too many document errors"),
                "{letter:?}"
            );
        }
    }
    let job = syncdeck::backend::ControlPlane::get_sync_job(&backend, &job_id)
        .await
        .unwrap();
    assert_eq!(job.status, syncdeck::model::JobStatus::Error);
}

// Issue 10, items 4 and 5. ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_answers_to_reads_are_retried_and_full_syncs_complete() {
    const COUNT: u64 = 3000;
    let standin = standin(1).await;
    let faults = standin.faults();
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine_with(
        es.clone(),
        es.clone(),
        dlq.clone(),
        marking_registry(),
        "worker-reads",
        fast_settings(),
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "reads", "reads", COUNT, 0, 0).await;
    // A clean sync fills the index; then 2% as reported, 5% (where the job never started),
    // and far more. Each later sync finds a full index, so it scans its ids (PIT, pages of
    // `_search`) where the garbled answers used to end it.
    for ratio in [0.0, 0.02, 0.05, 0.25] {
        faults.read_fault_ratio(ratio);
        let before = faults.read_faults();
        let (job_id, task) = start(&engine, &id).await;
        let report = tokio::time::timeout(LIMIT, task)
            .await
            .expect("the job ends")
            .unwrap();
        faults.read_fault_ratio(0.0);
        assert_eq!(report.end, JobEnd::Completed, "at {ratio}: {report:#?}");
        // A short sync makes a few dozen reads: only the high ratio surely garbles one.
        assert!(
            ratio < 0.2 || faults.read_faults() > before,
            "at {ratio}: no read was garbled"
        );
        assert_eq!(report.counters.dead_lettered, 0, "{:?}", report.counters);
        assert_ids(&standin_ids(&standin, "reads"), &all_ids(COUNT), "index");
        assert_eq!(standin.sync_job(&job_id).unwrap()["status"], "completed");
    }
    assert!(
        faults.read_faults() >= 3,
        "{} reads garbled",
        faults.read_faults()
    );
    assert!(dead_letters(&dlq).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_the_items_refused_with_429_the_sync_completes_and_loses_nothing() {
    const COUNT: u64 = 10_000;
    let standin = standin(1).await;
    let faults = standin.faults();
    faults.item_429_ratio(0.5);
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine_with(
        es.clone(),
        es.clone(),
        dlq.clone(),
        marking_registry(),
        "worker-429",
        fast_settings(),
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "busy", "busy", COUNT, 0, 0).await;
    let (job_id, task) = start(&engine, &id).await;
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();
    faults.clear();

    // Back-pressure is not a document error: no monitor trip, no dead letter, nothing lost.
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let c = report.counters;
    assert_eq!(
        (c.seen, c.indexed, c.dead_lettered),
        (COUNT, COUNT, 0),
        "{c:?}"
    );
    assert!(c.retried >= COUNT / 2, "the 429s did not bite: {c:?}");
    assert_ids(&standin_ids(&standin, "busy"), &all_ids(COUNT), "index");
    assert!(dead_letters(&dlq).is_empty());
    assert_eq!(standin.sync_job(&job_id).unwrap()["status"], "completed");
}

// Issue 10, item 12. ------------------------------------------------------------------------

fn binary() -> std::path::PathBuf {
    assert_cmd::Command::cargo_bin("syncdeck")
        .expect("the syncdeck binary")
        .get_program()
        .into()
}

/// A `syncdeck sync` of `connector` in its own home, to be ended by SIGTERM.
struct HungSync {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    es: Arc<ElasticsearchBackend>,
}

impl HungSync {
    fn new(standin: &StandIn) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A request timeout far above the bound: only cancellation can end a hung request.
        let config = format!(
            "default_profile = \"x\"\n\
             [profiles.x.elasticsearch]\nnodes = [\"{}\"]\nrequest_timeout = \"120s\"\n\
             [profiles.x.engine]\nbatch_max_docs = 50\nmax_in_flight = 2\nbatch_linger = \"20ms\"\n\
             check_interval = \"200ms\"\n",
            standin.es_urls()[0]
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let es = es_backend(&standin.es_urls());
        Self { dir, rt, es }
    }

    fn connector(
        &self,
        id: &str,
        factory: &dyn syncdeck::sources::SourceFactory,
        values: Value,
    ) -> String {
        self.rt
            .block_on(create_connector(self.es.as_ref(), id, id, factory, values))
    }

    /// Runs `syncdeck sync CONNECTOR`, waits until `hung` says a request is held, sends
    /// SIGTERM and returns how long the process took to end, its exit code and its stderr.
    fn run_and_terminate(
        &self,
        connector: &str,
        mut hung: impl FnMut() -> bool,
    ) -> (Duration, Option<i32>, String) {
        use std::process::{Command, Stdio};
        use std::time::Instant;
        let err_path = self.dir.path().join("sync.err");
        let mut child = Command::new(binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SYNCDECK_CONFIG", self.dir.path().join("config.toml"))
            .env("SYNCDECK_DATA_DIR", self.dir.path().join("data"))
            .env("SYNCDECK_STATE_DIR", self.dir.path().join("state"))
            .env("SYNCDECK_LOG", "info")
            .args(["sync", connector])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let output = || std::fs::read_to_string(&err_path).unwrap_or_default();
        let waiting = Instant::now();
        while !hung() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "sync ended before its request hung ({status}):\n{}",
                    output()
                );
            }
            assert!(waiting.elapsed() < LIMIT, "no request hung:\n{}", output());
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the held request settle into its wait.
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let signaled = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if signaled.elapsed() > LIMIT {
                let _ = child.kill();
                panic!("sync still running {LIMIT:?} after SIGTERM:\n{}", output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (signaled.elapsed(), status.code(), output())
    }

    fn job_status(&self, standin: &StandIn, connector: &str) -> Value {
        let jobs = self
            .rt
            .block_on(self.es.list_sync_jobs(&syncdeck::backend::SyncJobQuery {
                connector_id: Some(connector.to_string()),
                ..Default::default()
            }))
            .unwrap()
            .results;
        assert_eq!(jobs.len(), 1);
        standin.sync_job(&jobs[0].id).unwrap()["status"].clone()
    }
}

/// How long a sync may take to end after SIGTERM: generous for a loaded machine, far below
/// the 120 s request timeout that held it before.
const SIGTERM_BOUND: Duration = Duration::from_secs(20);

#[test]
fn sigterm_ends_a_sync_whose_bulk_requests_hang_promptly_and_the_job_is_canceled() {
    let standin = StandIn::start_blocking(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    });
    let sync = HungSync::new(&standin);
    let source = sync.dir.path().join("source.ndjson");
    let lines: String = (0..2000)
        .map(|i| format!("{{\"id\":\"doc-{i}\",\"n\":{i}}}\n"))
        .collect();
    std::fs::write(&source, lines).unwrap();
    let connector = sync.connector(
        "hang",
        &syncdeck::sources::NdjsonFactory,
        serde_json::json!({"path": source.to_string_lossy()}),
    );
    let faults = standin.faults();
    faults.hang_bulk(true);
    let (took, code, output) = sync.run_and_terminate(&connector, || {
        standin
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/_bulk"))
    });
    faults.hang_bulk(false);
    assert!(
        took < SIGTERM_BOUND,
        "sync took {took:?} to end after SIGTERM (bound {SIGTERM_BOUND:?}): a hung bulk request held it:\n{output}"
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("was canceled"), "{output}");
    assert_eq!(sync.job_status(&standin, &connector), "canceled");
}

#[test]
fn sigterm_ends_a_sync_whose_source_server_never_answers_promptly() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let standin = StandIn::start_blocking(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    });
    // An API that accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for socket in listener.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
    }
    let sync = HungSync::new(&standin);
    let connector = sync.connector(
        "silent",
        &syncdeck::sources::HttpApiFactory,
        serde_json::json!({"url": format!("http://{addr}/items"), "items_path": "/items"}),
    );
    let (took, code, output) =
        sync.run_and_terminate(&connector, || accepted.load(Ordering::SeqCst) > 0);
    assert!(
        took < SIGTERM_BOUND,
        "sync took {took:?} to end after SIGTERM (bound {SIGTERM_BOUND:?}): a hung source request held it:\n{output}"
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("was canceled"), "{output}");
    assert_eq!(sync.job_status(&standin, &connector), "canceled");
}

/// Issue 12's figure: a 20k-document sync with 20% and 10% of items refused with 429, against
/// the same sync clean, with the engine's default retry settings. A measurement, not a test:
/// `cargo test --release --test it engine_faults::measure_429_cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_429_cost() {
    const COUNT: u64 = 20_000;
    let mut rows = Vec::new();
    for ratio in [0.0, 0.1, 0.2] {
        let standin = standin(1).await;
        standin.faults().item_429_ratio(ratio);
        let es = es_backend(&standin.es_urls());
        let dlq = memory_dlq();
        let settings = syncdeck::config::EngineSettings {
            stats_interval: Duration::from_millis(500),
            check_interval: Duration::from_millis(500),
            ..syncdeck::config::EngineSettings::default()
        };
        let engine = engine_with(
            es.clone(),
            es.clone(),
            dlq.clone(),
            marking_registry(),
            "worker-measure",
            settings,
            syncdeck::config::BreakerSettings::default(),
        );
        let id = generator_connector(es.as_ref(), "m", "m", COUNT, 0, 0).await;
        let started = std::time::Instant::now();
        let (_, task) = start(&engine, &id).await;
        let report = task.await.unwrap();
        let took = started.elapsed();
        assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
        assert_eq!(report.counters.dead_lettered, 0);
        rows.push((ratio, took));
    }
    let clean = rows[0].1.as_secs_f64();
    for (ratio, took) in rows {
        println!(
            "429 ratio {ratio:.2}: {:.2} s, {:.1}x clean",
            took.as_secs_f64(),
            took.as_secs_f64() / clean
        );
    }
}

/// When a dead letter cannot be written (the queue is full), the job ends with that error,
/// not "item(s) were neither indexed nor dead-lettered" (end to end, with 429 retries riding
/// in other deliveries' requests; the race itself is pinned by the sink's unit test
/// `a_dead_letter_queue_failure_aborts_the_sink_with_its_error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_written_is_the_jobs_error() {
    let standin = standin(1).await;
    let faults = standin.faults();
    faults.reject_field(Some(POISON_FIELD.into()));
    faults.item_429_ratio(0.5);
    let es = es_backend(&standin.es_urls());
    let dlq = Arc::new(syncdeck::engine::dlq::DeadLetterStore::open_in_memory(40).unwrap());
    let mut settings = fast_settings();
    settings.batch_max_docs = 50;
    let engine = engine_with(
        es.clone(),
        es.clone(),
        dlq,
        marking_registry(),
        "worker-dlq-full",
        settings,
        fast_breaker(),
    );
    let id = generator_connector(es.as_ref(), "dlqfull", "dlqfull", 4000, 40, 0).await;
    let (_job_id, task) = start(&engine, &id).await;
    let report = tokio::time::timeout(LIMIT, task)
        .await
        .expect("the job ends")
        .unwrap();
    let error = format!("{:?}", report.end);
    assert!(error.contains("dead-letter queue"), "{error}");
    assert!(!error.contains("neither indexed"), "{error}");
}
