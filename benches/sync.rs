//! The engine benchmark: `cargo bench --bench sync`. Syncs generated documents (1 KB by
//! default) into the stand-in cluster and reports, per size, the engine's documents per second
//! next to what the stand-in accepts from a plain bulk loop in the same run, for a fresh index
//! and for a re-sync of the same documents into it; the engine's peak RSS of each; its CPU
//! time per document (user + system of the engine process ÷ documents); and its allocations
//! per document (this binary's global allocator is syncdeck's, mimalloc tuned by
//! `syncdeck::alloc`, counted; `SYNCDECK_BENCH_ALLOC=system` runs every role on the system
//! allocator instead). Then the cost of item 429s: the first size synced with 10% and 20%
//! of bulk items refused with 429, against the same sync clean.
//!
//! Every part runs in its own process, re-executing this binary with `SYNCDECK_BENCH_ROLE`
//! set, so RSS and CPU are the engine's alone:
//! - `standin`: the stand-in from `tests/support`; prints its URL, serves until stdin closes,
//!   and reads commands from stdin meanwhile (`item_429_ratio 0.2`; `latency_ms 50`: every
//!   answer that much later, as from a cluster across a network, which
//!   `SYNCDECK_BENCH_LATENCY_MS` sets for a whole run);
//! - `bulk`: the baseline, the generator's documents pre-built into the engine's bulk bodies
//!   and sent by a plain reqwest loop with as many requests in flight as the engine keeps
//!   (bodies for at most 100k documents are built; larger sizes replay them into further
//!   indices, so the stand-in does the same work per document); then the same again into
//!   the same indices (the re-sync's shape: every document replaced);
//! - `engine`: `SYNCDECK_BENCH_JOBS` full syncs (`Engine::run_job`) of one `generator`
//!   connector: the first into a fresh index, the next ones re-syncs of the same documents.
//!   Peak RSS (`VmHWM`) is reset between jobs (`/proc/self/clear_refs`), so each job's peak
//!   is its own. With `SYNCDECK_BENCH_SOURCE=ndjson` (by hand) the connector is an `ndjson`
//!   one reading the same documents from a file written first (not timed).
//!
//! The parent (no role) alternates loop and engine runs per size, `SYNCDECK_BENCH_REPEATS`
//! times (default 3) so both see the same machine load, drops every index after its run, and
//! prints the best throughput, the highest peak RSS and the median CPU per document. Sizes
//! come from `SYNCDECK_BENCH_SIZES` (default `100000,1000000`), document size from
//! `SYNCDECK_BENCH_DOC_BYTES` (default 1024; the stand-in keeps every document in memory, so
//! 5M documents want smaller ones: the engine's per-document state does not depend on it).
//! For a quick run: `SYNCDECK_BENCH_SIZES=100000 SYNCDECK_BENCH_REPEATS=1 cargo bench --bench
//! sync`. `SYNCDECK_BENCH_429=0` skips the 429 runs; `SYNCDECK_BENCH_LATENCY_MS=50` has the
//! stand-in answer every request 50 ms late (a cluster across a network).
//!
//! The throughput part runs twice: with every process free to use every core (shared), then,
//! where `taskset` and two cores are there, with the stand-in alone on CPU 1 and the loop or
//! the engine alone on CPU 0 (pinned), which shows which side is the bottleneck without one
//! taking CPU from the other. `SYNCDECK_BENCH_PIN=0` skips the pinned runs.
//!
//! `SYNCDECK_BENCH_SERVE=SECONDS` measures something else instead: the `syncdeck` binary's
//! `serve` over time ([`SERVE_ARGS`], an environment of its own). It tends
//! [`SERVE_CONNECTORS`] `generator` connectors on the stand-in, each synced again as soon as
//! its last sync ended; every [`SERVE_SAMPLE`] (and at the end) the table gives the jobs
//! completed so far, the service's RSS, and the CPU a job of the service and of the stand-in
//! since the row before. Then it stops the service with SIGTERM and counts the jobs that
//! failed. Of the other variables only `SYNCDECK_BENCH_DOC_BYTES` and
//! `SYNCDECK_BENCH_LATENCY_MS` apply to it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::{ConfigurationUpdate, ControlPlane, DocumentStore};
use syncdeck::config::{BreakerSettings, EngineSettings, EsSettings};
use syncdeck::elastic::documents::BULK_FILTER_PATH;
use syncdeck::engine::batch::{BatchBuilder, BatchLimits};
use syncdeck::engine::dlq::DeadLetterStore;
use syncdeck::engine::runner::{Engine, EngineDeps, JobEnd};
use syncdeck::model::{JobStatus, JobType, NewConnector, SyncJobQuery, TriggerMethod};
use syncdeck::sources::{self, GeneratorSettings, GeneratorSource, SourceFactory};
use tokio_util::sync::CancellationToken;

const ROLE: &str = "SYNCDECK_BENCH_ROLE";
const URL: &str = "SYNCDECK_BENCH_URL";
const DOCS: &str = "SYNCDECK_BENCH_DOCS";
const INDEX: &str = "SYNCDECK_BENCH_INDEX";
const SIZES: &str = "SYNCDECK_BENCH_SIZES";
const REPEATS: &str = "SYNCDECK_BENCH_REPEATS";
const PIN: &str = "SYNCDECK_BENCH_PIN";
const JOBS: &str = "SYNCDECK_BENCH_JOBS";
const DOC_BYTES_VAR: &str = "SYNCDECK_BENCH_DOC_BYTES";
const RUN_429: &str = "SYNCDECK_BENCH_429";
const LATENCY: &str = "SYNCDECK_BENCH_LATENCY_MS";
const SOURCE: &str = "SYNCDECK_BENCH_SOURCE";
const SERVE: &str = "SYNCDECK_BENCH_SERVE";
/// Connectors the serve run has `syncdeck serve` tend, and documents in a sync of each.
const SERVE_CONNECTORS: usize = 10;
const SERVE_DOCS: u64 = 2_000;
/// How often the serve run samples the service's RSS and both processes' CPU.
const SERVE_SAMPLE: Duration = Duration::from_secs(30);
/// The service as the serve run starts it (after `--config` and before `--connector`s).
const SERVE_ARGS: [&str; 9] = [
    "serve",
    "--idle",
    "500ms",
    "--max-concurrent",
    "4",
    "--heartbeat",
    "2s",
    "--job-cleanup-interval",
    "5s",
];
const DEFAULT_SIZES: &str = "100000,1000000";
const DEFAULT_REPEATS: usize = 3;
/// The plain loop builds bodies for at most this many documents and replays them.
const LOOP_CHUNK_DOCS: u64 = 100_000;
const DEFAULT_DOC_BYTES: usize = 1024;
const SEED: u64 = 42;

type BenchResult<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Allocations per document: syncdeck's allocator (mimalloc), counted.

/// mimalloc, as the `syncdeck` binary has it, counting allocations (`alloc` and `realloc`
/// calls); or the system allocator with `SYNCDECK_BENCH_ALLOC=system`, to compare the two in
/// one build. Each thread counts in a thread-local cell and adds to the global total every
/// [`ALLOC_FLUSH`] calls, so counting costs no shared cache line per allocation; the total
/// lags by less than `ALLOC_FLUSH` per thread, noise against millions.
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const ALLOC_FLUSH: u64 = 256;

/// Which allocator serves this process: 0 until the first call decides, then [`MIMALLOC`] or
/// [`SYSTEM`] for good (what one allocator hands out, only it frees).
static ALLOCATOR: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

/// Whether the system allocator serves this process. Decided at the first allocation, from
/// the environment read without allocating (`getenv`).
fn system_allocator() -> bool {
    let mut which = ALLOCATOR.load(Ordering::Relaxed);
    if which == 0 {
        // SAFETY: `getenv` with a NUL-terminated name; the answer is read at once, before
        // anything in this process could change the environment.
        let value = unsafe { libc::getenv(c"SYNCDECK_BENCH_ALLOC".as_ptr()) };
        // SAFETY: a non-null answer of `getenv` is a NUL-terminated string.
        let system = !value.is_null() && unsafe { std::ffi::CStr::from_ptr(value) } == c"system";
        which = if system { SYSTEM } else { MIMALLOC };
        // Every thread that races here decides the same.
        ALLOCATOR.store(which, Ordering::Relaxed);
    }
    which == SYSTEM
}

/// The allocator this process chose (see [`system_allocator`]).
fn allocator() -> &'static dyn std::alloc::GlobalAlloc {
    if system_allocator() {
        &std::alloc::System
    } else {
        &syncdeck::alloc::Mimalloc
    }
}

thread_local! {
    // `const` and without a destructor: usable from inside the allocator.
    static LOCAL_ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    let _ = LOCAL_ALLOCATIONS.try_with(|n| {
        let v = n.get() + 1;
        if v >= ALLOC_FLUSH {
            ALLOCATIONS.fetch_add(v, Ordering::Relaxed);
            n.set(0);
        } else {
            n.set(v);
        }
    });
}

// SAFETY: every call is forwarded unchanged to the one allocator this process chose at its
// first allocation; counting allocates nothing.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { allocator().alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { allocator().alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded with the caller's guarantees, to the allocator that made `ptr`.
        unsafe { allocator().realloc(ptr, layout, size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's guarantees, to the allocator that made `ptr`.
        unsafe { allocator().dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Tunes the allocator when the process loads, before anything allocates (why it must be
/// that early: `syncdeck::alloc::tune`).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = syncdeck::alloc::tune_at_load;

/// Allocations so far in this process (all threads, up to the per-thread lag).
fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn main() -> ExitCode {
    // Where the loader has no `.init_array`, as early as this binary can.
    #[cfg(not(target_os = "linux"))]
    syncdeck::alloc::tune();
    let role = std::env::var(ROLE).unwrap_or_default();
    let result = match role.as_str() {
        "standin" => standin_role(),
        "bulk" => runtime().and_then(|rt| rt.block_on(bulk_role())),
        "engine" => runtime().and_then(|rt| rt.block_on(engine_role())),
        _ => runtime().and_then(|rt| rt.block_on(parent())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "bench ({}): {e}",
                if role.is_empty() { "parent" } else { &role }
            );
            ExitCode::FAILURE
        }
    }
}

/// The runtime `syncdeck` itself uses: multi-threaded, one worker per core.
fn runtime() -> BenchResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn env_var(name: &str) -> BenchResult<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn env_docs() -> BenchResult<u64> {
    let v = env_var(DOCS)?;
    v.parse()
        .map_err(|_| format!("{DOCS} wants a number, got '{v}'"))
}

/// The generator's document size.
fn doc_bytes() -> BenchResult<usize> {
    match std::env::var(DOC_BYTES_VAR) {
        Err(_) => Ok(DEFAULT_DOC_BYTES),
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{DOC_BYTES_VAR}: bad size '{v}'")),
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements of a process, from /proc.

/// User + system CPU seconds of process `pid` (`self` for this one), all threads, living and
/// gone.
fn cpu_seconds(pid: &str) -> f64 {
    process_cpu_seconds(pid).unwrap_or(0.0)
}

/// [`cpu_seconds`], or `None` when `/proc` does not say.
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in USER_HZ ticks (100 a second on Linux).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Resets this process's peak RSS to its current RSS (Linux 4.0+; ignored elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    memory_mib("self", "VmHWM").unwrap_or(0.0)
}

/// A memory figure of process `pid` (`VmRSS`, `VmHWM`) in MiB, from `/proc/PID/status`.
fn memory_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Role: the stand-in.

/// A delay of `ms` milliseconds before every answer (a cluster across a network), if sane.
fn latency(ms: f64) -> Option<std::time::Duration> {
    if !(0.0..=600_000.0).contains(&ms) {
        return None;
    }
    std::time::Duration::try_from_secs_f64(ms / 1000.0).ok()
}

fn standin_role() -> BenchResult<()> {
    let standin = support::StandIn::start_blocking(support::StandInOptions {
        kibana: false,
        ..Default::default()
    });
    if let Ok(v) = std::env::var(LATENCY) {
        let ms = v.parse::<f64>().ok().and_then(latency);
        standin
            .faults()
            .latency(ms.ok_or_else(|| format!("{LATENCY}: bad latency '{v}'"))?);
    }
    let url = standin
        .es_urls()
        .into_iter()
        .next()
        .ok_or("the stand-in has no node")?;
    println!("{url}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Serve until the parent closes our stdin (or dies); obey its commands meanwhile.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|v| v.parse::<f64>().ok()),
        ) {
            (Some("item_429_ratio"), Some(ratio)) => standin.faults().item_429_ratio(ratio),
            (Some("latency_ms"), Some(ms)) => match latency(ms) {
                Some(d) => standin.faults().latency(d),
                None => eprintln!("bench (standin): bad latency '{line}'"),
            },
            _ => eprintln!("bench (standin): unknown command '{line}'"),
        }
    }
    drop(standin);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Role: the plain bulk loop.

#[derive(Debug, Serialize, Deserialize)]
struct LoopReport {
    docs: u64,
    /// Indices written: `{prefix}-0` … `{prefix}-{indices - 1}`.
    indices: u64,
    requests: usize,
    seconds: f64,
    docs_per_sec: f64,
    cpu_us_per_doc: f64,
    /// The same bodies again into the same indices (every document replaced).
    resync_docs_per_sec: f64,
}

/// The same documents the generator yields, in the same bulk bodies the engine builds, with
/// the number of documents in each.
fn build_bodies(docs: u64, doc_bytes: usize) -> Vec<(Bytes, u64)> {
    let settings = EngineSettings::default();
    let limits = BatchLimits {
        max_docs: settings.batch_max_docs,
        max_bytes: settings.batch_max_bytes,
    };
    let source = GeneratorSource::new(GeneratorSettings {
        count: docs,
        doc_bytes,
        seed: SEED,
        rate: 0,
        poison_every: 0,
    });
    let mut builder = BatchBuilder::new(limits, None);
    let mut bodies = Vec::new();
    let mut keep = |batch: syncdeck::engine::batch::Batch| {
        bodies.push((batch.body.clone(), batch.len() as u64))
    };
    for i in 0..docs {
        let mut doc = source.document(i);
        if let Some(batch) = builder.push_index(doc.id, doc.timestamp.as_deref(), &mut doc.fields) {
            keep(batch);
        }
    }
    if let Some(batch) = builder.flush() {
        keep(batch);
    }
    bodies
}

/// Which body goes to which index: the bodies in order, replayed into one more index each
/// time, until `docs` documents are planned.
fn loop_plan(bodies: &[(Bytes, u64)], docs: u64) -> (Vec<(u64, usize)>, u64) {
    let mut plan = Vec::new();
    let mut planned = 0;
    for pass in 0.. {
        for (i, (_, n)) in bodies.iter().enumerate() {
            if planned >= docs {
                return (plan, planned);
            }
            plan.push((pass, i));
            planned += n;
        }
        if bodies.is_empty() {
            break;
        }
    }
    (plan, planned)
}

async fn bulk_role() -> BenchResult<()> {
    let url = env_var(URL)?;
    let prefix = env_var(INDEX)?;
    let docs = env_docs()?;
    let bodies = Arc::new(build_bodies(docs.min(LOOP_CHUNK_DOCS), doc_bytes()?));
    let (plan, planned) = loop_plan(&bodies, docs);
    let indices = plan.last().map_or(0, |(pass, _)| pass + 1);
    // Like the engine's default transport: answers not gzipped.
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .map_err(|e| e.to_string())?;
    for pass in 0..indices {
        let created = client
            .put(format!("{url}/{prefix}-{pass}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !created.status().is_success() {
            return Err(format!(
                "creating '{prefix}-{pass}' answered {}",
                created.status()
            ));
        }
    }
    let plan = Arc::new(plan);
    let urls: Arc<Vec<String>> = Arc::new(
        (0..indices)
            // The same request line the engine sends, lean answer included.
            .map(|pass| {
                format!(
                    "{url}/{prefix}-{pass}/_bulk?filter_path={}",
                    BULK_FILTER_PATH.replace(',', "%2C")
                )
            })
            .collect(),
    );
    let cpu_before = cpu_seconds("self");
    let seconds = send_plan(&client, &bodies, &plan, &urls).await?;
    let cpu = cpu_seconds("self") - cpu_before;
    let resync_seconds = send_plan(&client, &bodies, &plan, &urls).await?;
    let report = LoopReport {
        docs: planned,
        indices,
        requests: plan.len(),
        seconds,
        docs_per_sec: planned as f64 / seconds,
        cpu_us_per_doc: cpu * 1e6 / planned as f64,
        resync_docs_per_sec: planned as f64 / resync_seconds,
    };
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Sends every body of the plan, as many in flight as the engine keeps; returns the seconds.
async fn send_plan(
    client: &reqwest::Client,
    bodies: &Arc<Vec<(Bytes, u64)>>,
    plan: &Arc<Vec<(u64, usize)>>,
    urls: &Arc<Vec<String>>,
) -> BenchResult<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..EngineSettings::default().max_in_flight)
        .map(|_| {
            let (client, bodies, plan, urls, next) = (
                client.clone(),
                bodies.clone(),
                plan.clone(),
                urls.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                while let Some((pass, body)) = plan.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (Some(url), Some((body, _))) =
                        (urls.get(*pass as usize), bodies.get(*body))
                    else {
                        return Err("bad loop plan".to_string());
                    };
                    send_bulk(&client, url, body.clone()).await?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One `_bulk` request; any error (request or item) fails the loop.
async fn send_bulk(client: &reqwest::Client, url: &str, body: Bytes) -> BenchResult<()> {
    let response = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let answer = response.bytes().await.map_err(|e| e.to_string())?;
    let head = answer.get(..answer.len().min(64)).unwrap_or_default();
    const NO_ERRORS: &[u8] = b"\"errors\":false";
    if status.is_success() && head.windows(NO_ERRORS.len()).any(|w| w == NO_ERRORS) {
        return Ok(());
    }
    Err(format!(
        "bulk answered {status}: {}",
        String::from_utf8_lossy(head)
    ))
}

// ---------------------------------------------------------------------------------------------
// Role: the engine.

#[derive(Debug, Serialize, Deserialize)]
struct EngineReport {
    docs: u64,
    indexed: u64,
    updated: u64,
    deleted: u64,
    dead_lettered: u64,
    retried: u64,
    bulk_requests: u64,
    /// The whole job: claim, the id scan (re-syncs), extraction and indexing, deletions,
    /// final status.
    seconds: f64,
    docs_per_sec: f64,
    /// Until the last document was indexed (before a full sync's deletions).
    index_seconds: f64,
    index_docs_per_sec: f64,
    /// CPU per document until the last one was indexed.
    index_cpu_us_per_doc: f64,
    /// This job's peak RSS (the peak is reset before each job).
    peak_rss_mib: f64,
    cpu_seconds: f64,
    cpu_us_per_doc: f64,
    /// Allocations (and reallocations) of the engine process during the job ÷ documents.
    allocs_per_doc: f64,
}

async fn engine_role() -> BenchResult<()> {
    let url = env_var(URL)?;
    let index = env_var(INDEX)?;
    let docs = env_docs()?;
    let jobs: usize = std::env::var(JOBS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let node = url::Url::parse(&url).map_err(|e| format!("bad URL '{url}': {e}"))?;
    let backend = Arc::new(
        ElasticsearchBackend::new(&EsSettings::new(vec![node])).map_err(|e| e.to_string())?,
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let settings = EngineSettings::default();
    let dlq = DeadLetterStore::open(&dir.path().join("dlq.sqlite"), settings.dlq_max_entries)
        .map_err(|e| e.to_string())?;
    let control: Arc<dyn ControlPlane> = backend.clone();
    let store: Arc<dyn DocumentStore> = backend;
    let engine = Engine::new(EngineDeps {
        control: control.clone(),
        store,
        dlq: Arc::new(dlq),
        registry: sources::builtin(),
        settings,
        breaker: BreakerSettings::default(),
        worker: "bench".to_string(),
    });
    let connector_id = match std::env::var(SOURCE).as_deref() {
        Err(_) | Ok("generator") => create_connector(control.as_ref(), &index, docs).await?,
        Ok("ndjson") => {
            let path = dir.path().join("docs.ndjson");
            write_ndjson(&path, docs)?;
            create_ndjson_connector(control.as_ref(), &index, &path).await?
        }
        Ok(other) => return Err(format!("{SOURCE}: no source '{other}' (generator, ndjson)")),
    };
    let mut reports = Vec::new();
    for _ in 0..jobs.max(1) {
        reports.push(engine_job(&engine, control.as_ref(), &connector_id, docs).await?);
    }
    println!(
        "{}",
        serde_json::to_string(&reports).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// One full sync of the connector, measured.
async fn engine_job(
    engine: &Engine,
    control: &dyn ControlPlane,
    connector_id: &str,
    docs: u64,
) -> BenchResult<EngineReport> {
    let job_id = control
        .create_sync_job(connector_id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .map_err(|e| e.to_string())?;
    reset_peak_rss();
    let cpu_before = cpu_seconds("self");
    let allocs_before = allocations();
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let run = {
        let (engine, job_id, shutdown) = (engine.clone(), job_id.clone(), shutdown.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &shutdown).await })
    };
    // Notes when the last document was indexed, from the job's live counters (atomics, read
    // every 5 ms; a snapshot would clone the recent-documents list each time).
    let live = engine.live();
    let mut index_done = None;
    while !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if index_done.is_some() {
            continue;
        }
        let settled = live.progress(&job_id).map_or(0, |p| {
            let c = p.counters();
            c.indexed + c.updated + c.dead_lettered + c.skipped
        });
        if settled >= docs {
            index_done = Some((started.elapsed(), cpu_seconds("self") - cpu_before));
        }
    }
    let report = run
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu_before;
    let allocs = allocations().saturating_sub(allocs_before);
    if report.end != JobEnd::Completed {
        return Err(format!("the sync did not complete: {:?}", report.end));
    }
    let c = report.counters;
    if c.indexed + c.updated + c.dead_lettered != docs {
        return Err(format!(
            "{docs} documents generated but {} indexed and {} dead-lettered",
            c.indexed + c.updated,
            c.dead_lettered
        ));
    }
    let (index_seconds, index_cpu) =
        index_done.map_or((seconds, cpu), |(d, cpu)| (d.as_secs_f64(), cpu));
    Ok(EngineReport {
        docs,
        indexed: c.indexed,
        updated: c.updated,
        deleted: c.deleted,
        dead_lettered: c.dead_lettered,
        retried: c.retried,
        bulk_requests: c.bulk_requests,
        seconds,
        docs_per_sec: docs as f64 / seconds,
        index_seconds,
        index_docs_per_sec: docs as f64 / index_seconds,
        index_cpu_us_per_doc: index_cpu * 1e6 / docs as f64,
        peak_rss_mib: peak_rss_mib(),
        cpu_seconds: cpu,
        cpu_us_per_doc: cpu * 1e6 / docs as f64,
        allocs_per_doc: allocs as f64 / docs as f64,
    })
}

/// The generator's documents (the same `docs` a generator connector yields) as NDJSON lines,
/// each with its id as `id` and its stamp as `_timestamp`.
fn write_ndjson(path: &std::path::Path, docs: u64) -> BenchResult<()> {
    let source = GeneratorSource::new(GeneratorSettings {
        count: docs,
        doc_bytes: doc_bytes()?,
        seed: SEED,
        rate: 0,
        poison_every: 0,
    });
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for i in 0..docs {
        let doc = source.document(i);
        let mut line = serde_json::Map::new();
        line.insert("id".into(), doc.id.into());
        if let Some(stamp) = doc.timestamp {
            line.insert("_timestamp".into(), stamp.into());
        }
        line.extend(doc.fields.into_map());
        serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// A connector of the `ndjson` source reading `path`.
async fn create_ndjson_connector(
    control: &dyn ControlPlane,
    index: &str,
    path: &std::path::Path,
) -> BenchResult<String> {
    let path = path.to_string_lossy().into_owned();
    create_source_connector(
        control,
        index,
        &sources::NdjsonFactory,
        [("path", path.into())],
    )
    .await
}

/// A `generator` connector of `docs` 1 KB documents, as fast as the cluster takes them.
async fn create_connector(
    control: &dyn ControlPlane,
    index: &str,
    docs: u64,
) -> BenchResult<String> {
    let values = [
        ("count", docs),
        ("doc_bytes", doc_bytes()? as u64),
        ("seed", SEED),
        ("rate", 0),
        ("poison_every", 0),
    ];
    let values = values.map(|(key, value)| (key, serde_json::Value::from(value)));
    create_source_connector(control, index, &sources::GeneratorFactory, values).await
}

/// A connector of `factory`'s source writing to `index`: its default configuration with
/// `values` set.
async fn create_source_connector<const N: usize>(
    control: &dyn ControlPlane,
    index: &str,
    factory: &dyn SourceFactory,
    values: [(&str, serde_json::Value); N],
) -> BenchResult<String> {
    let new = NewConnector {
        name: Some(format!("bench {index}")),
        index_name: Some(index.to_string()),
        service_type: Some(factory.service_type().to_string()),
        is_native: Some(false),
        ..Default::default()
    };
    let id = control
        .create_connector(&new)
        .await
        .map_err(|e| e.to_string())?;
    let mut config = factory.default_configuration();
    for (key, value) in values {
        let field = config
            .0
            .get_mut(key)
            .ok_or_else(|| format!("the {} source has no '{key}' field", factory.service_type()))?;
        field.value = value;
    }
    control
        .update_configuration(&id, &ConfigurationUpdate::Replace(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// The parent: runs the roles and prints the table.

/// A child process of this binary in one role; killed when dropped.
struct RoleChild {
    child: Child,
}

impl RoleChild {
    /// Starts this binary in `role`, on CPU `cpu` alone when given (through `taskset`).
    fn spawn(
        role: &str,
        vars: &[(&str, String)],
        keep_stdin: bool,
        cpu: Option<usize>,
    ) -> BenchResult<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.stdin(if keep_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the {role} process: {e}"))?;
        Ok(Self { child })
    }

    /// The first line the child prints.
    fn first_line(&mut self) -> BenchResult<String> {
        let out = self.child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim().to_string())
    }

    /// Waits for the child and parses the last line it printed.
    fn report<T: for<'de> Deserialize<'de>>(mut self, role: &str) -> BenchResult<T> {
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out).map_err(|e| e.to_string())?;
        }
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("the {role} run failed ({status})"));
        }
        let last = out.lines().last().unwrap_or_default();
        serde_json::from_str(last).map_err(|e| format!("the {role} run printed '{last}': {e}"))
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends one command line to the child's stdin (the stand-in's faults).
    fn command(&mut self, line: &str) -> BenchResult<()> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{line}").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())
    }
}

impl Drop for RoleChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn sizes() -> BenchResult<Vec<u64>> {
    let raw = std::env::var(SIZES).unwrap_or_else(|_| DEFAULT_SIZES.to_string());
    let mut sizes = raw
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{SIZES}: bad size '{s}'"))
        })
        .collect::<BenchResult<Vec<_>>>()?;
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return Err(format!("{SIZES} names no size"));
    }
    Ok(sizes)
}

fn repeats() -> BenchResult<usize> {
    match std::env::var(REPEATS) {
        Err(_) => Ok(DEFAULT_REPEATS),
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{REPEATS}: bad count '{v}'")),
    }
}

async fn drop_index(client: &reqwest::Client, url: &str, index: &str) -> BenchResult<()> {
    let answer = client
        .delete(format!("{url}/{index}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if answer.status().is_success() || answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(format!("deleting '{index}' answered {}", answer.status()))
}

/// Load average over the last minute: other work on the machine skews throughput.
fn load_average() -> String {
    let raw = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    raw.split_whitespace().next().unwrap_or("?").to_string()
}

/// One size's runs.
#[derive(Default)]
struct Runs {
    loops: Vec<LoopReport>,
    /// The stand-in's CPU per document during each loop run.
    loop_standin_cpu: Vec<f64>,
    engines: Vec<EngineReport>,
    /// Each engine run's second job: a re-sync of the same documents.
    resyncs: Vec<EngineReport>,
    /// The stand-in's CPU per document during each engine run, over both jobs.
    standin_cpu: Vec<f64>,
}

fn best(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// How the processes share the machine's CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// Every process on every core, as on a small box running both.
    Shared,
    /// The stand-in alone on CPU 1, the loop or the engine alone on CPU 0: whichever is the
    /// bottleneck shows, without one taking CPU from the other.
    Pinned,
}

impl Placement {
    fn standin_cpu(self) -> Option<usize> {
        (self == Placement::Pinned).then_some(1)
    }

    fn client_cpu(self) -> Option<usize> {
        (self == Placement::Pinned).then_some(0)
    }
}

/// Pinned runs need two cores and `taskset`; `SYNCDECK_BENCH_PIN=0` skips them.
fn placements(cores: usize) -> Vec<Placement> {
    let wanted = std::env::var(PIN).map_or(true, |v| v != "0");
    // Both CPUs must be ours to pin to (a cgroup may allow fewer).
    let taskset = Command::new("taskset")
        .args(["-c", "1", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if wanted && taskset && cores >= 2 {
        vec![Placement::Shared, Placement::Pinned]
    } else {
        vec![Placement::Shared]
    }
}

async fn parent() -> BenchResult<()> {
    if let Some(seconds) = serve_seconds()? {
        return measure_serve(seconds).await;
    }
    let (sizes, repeats) = (sizes()?, repeats()?);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let run_429 = std::env::var(RUN_429).map_or(true, |v| v != "0");
    for placement in placements(cores) {
        let load_before = load_average();
        let mut standin = RoleChild::spawn("standin", &[], true, placement.standin_cpu())?;
        let url = standin.first_line()?;
        if !url.starts_with("http://") {
            return Err(format!("the stand-in printed '{url}' instead of its URL"));
        }
        let all = measure(
            placement,
            &standin,
            &url,
            &sizes,
            repeats,
            cores,
            &load_before,
        )
        .await?;
        print_table(placement, &all, cores, &load_before, &load_average());
        if placement == Placement::Shared && run_429 {
            let docs = sizes.first().copied().unwrap_or(100_000);
            let load_before = load_average();
            let runs = measure_429(&mut standin, &url, docs, repeats).await?;
            print_429(docs, &runs, &load_before, &load_average());
        }
    }
    Ok(())
}

/// How long the serve run lasts (`SYNCDECK_BENCH_SERVE`), if asked for.
fn serve_seconds() -> BenchResult<Option<u64>> {
    match std::env::var(SERVE) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("{SERVE}: bad number of seconds '{v}'")),
    }
}

/// One sample of the serve run: wall time, jobs, RSS, and the CPU seconds so far of the
/// service and of the stand-in.
struct ServeSample {
    elapsed: f64,
    completed: u64,
    rss_mib: f64,
    serve_cpu: Option<f64>,
    standin_cpu: Option<f64>,
}

/// `syncdeck serve` (the binary, as operators run it) for `seconds`, tending
/// [`SERVE_CONNECTORS`] connectors that sync back to back, sampled every [`SERVE_SAMPLE`].
async fn measure_serve(seconds: u64) -> BenchResult<()> {
    let load_before = load_average();
    let mut standin = RoleChild::spawn("standin", &[], true, None)?;
    let url = standin.first_line()?;
    let node = url::Url::parse(&url).map_err(|e| format!("bad URL '{url}': {e}"))?;
    let control =
        ElasticsearchBackend::new(&EsSettings::new(vec![node])).map_err(|e| e.to_string())?;
    let mut connectors = Vec::new();
    for i in 0..SERVE_CONNECTORS {
        let id = create_connector(&control, &format!("bench-serve-{i}"), SERVE_DOCS).await?;
        connectors.push((id, None::<String>));
    }

    // A clean environment and its own configuration and data folders: no `SYNCDECK_*`
    // variable of the user's can point it at another cluster, and nothing of theirs is read
    // or written.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_profile = \"bench\"\n[profiles.bench.elasticsearch]\nnodes = [\"{url}\"]\n"
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_syncdeck"));
    command
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .envs(
            ["HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"].map(|k| (k, dir.path())),
        )
        .arg("--config")
        .arg(&config)
        .args(SERVE_ARGS);
    for (id, _) in &connectors {
        command.args(["--connector", id]);
    }
    let serve = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start syncdeck serve: {e}"))?;
    // Killed and waited for when dropped, if nothing stopped it before, as the roles are.
    let mut serve = RoleChild { child: serve };
    let pids = (serve.pid(), standin.pid());
    let result = serve_load(&control, &mut connectors, &pids, &mut serve, seconds).await;
    let peak = memory_mib(&pids.0, "VmHWM");
    let stopped = stop_serve(&mut serve).await;
    let samples = result?;
    let failed = jobs_with(&control, JobStatus::Error).await;
    drop(standin);
    print_serve(
        seconds,
        &samples,
        peak,
        failed,
        &load_before,
        &load_average(),
    );
    stopped
}

/// Queues a sync of every connector whose last one ended, every second, until `seconds`
/// have passed; samples the processes (`pids`: the service's, the stand-in's) meanwhile and
/// once more at the end.
async fn serve_load(
    control: &ElasticsearchBackend,
    connectors: &mut [(String, Option<String>)],
    (serve_pid, standin_pid): &(String, String),
    serve: &mut RoleChild,
    seconds: u64,
) -> BenchResult<Vec<ServeSample>> {
    let start = Instant::now();
    let sample = async || -> BenchResult<ServeSample> {
        let sample = ServeSample {
            elapsed: start.elapsed().as_secs_f64(),
            completed: jobs_with(control, JobStatus::Completed).await?,
            rss_mib: memory_mib(serve_pid, "VmRSS")
                .ok_or("syncdeck serve has no RSS: it has exited")?,
            serve_cpu: process_cpu_seconds(serve_pid),
            standin_cpu: process_cpu_seconds(standin_pid),
        };
        eprintln!(
            "  serve: {:>5.0} s, {} jobs completed, RSS {:.1} MiB",
            sample.elapsed, sample.completed, sample.rss_mib
        );
        Ok(sample)
    };
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(seconds) {
        if let Ok(Some(status)) = serve.child.try_wait() {
            return Err(format!("syncdeck serve exited early ({status})"));
        }
        for (connector, last) in connectors.iter_mut() {
            let ended = match last {
                None => true,
                Some(job) => control
                    .get_sync_job(job)
                    .await
                    .map_err(|e| e.to_string())?
                    .status
                    .is_terminal(),
            };
            if ended {
                let job = control
                    .create_sync_job(connector, JobType::Full, TriggerMethod::OnDemand)
                    .await
                    .map_err(|e| e.to_string())?;
                *last = Some(job);
            }
        }
        if start.elapsed() >= next_sample {
            samples.push(sample().await?);
            next_sample += SERVE_SAMPLE;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The end, unless a sample was taken just before it (its interval would be noise).
    if samples
        .last()
        .is_none_or(|s| start.elapsed().as_secs_f64() - s.elapsed >= 5.0)
    {
        samples.push(sample().await?);
    }
    Ok(samples)
}

/// How many jobs of the cluster have `status`.
async fn jobs_with(control: &ElasticsearchBackend, status: JobStatus) -> BenchResult<u64> {
    let query = SyncJobQuery {
        status: Some(status),
        size: Some(1),
        ..Default::default()
    };
    let page = control
        .list_sync_jobs(&query)
        .await
        .map_err(|e| e.to_string())?;
    Ok(page.count)
}

/// SIGTERM, as an operator's service manager stops it; killed (by the guard) if it takes
/// over 30 s. A service that already exited is not signalled: its pid may be another's.
async fn stop_serve(serve: &mut RoleChild) -> BenchResult<()> {
    let exited = |status: std::process::ExitStatus| {
        if status.success() {
            Ok(())
        } else {
            Err(format!("syncdeck serve stopped with {status}"))
        }
    };
    if let Some(status) = serve.child.try_wait().map_err(|e| e.to_string())? {
        return exited(status);
    }
    let pid = libc::pid_t::try_from(serve.child.id()).map_err(|e| e.to_string())?;
    // SAFETY: `kill` takes any pid; this one is our child's, running just above and not
    // waited for since, so it cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = serve.child.try_wait().map_err(|e| e.to_string())? {
            return exited(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("syncdeck serve did not stop within 30 s of SIGTERM".to_string())
}

fn print_serve(
    seconds: u64,
    samples: &[ServeSample],
    peak: Option<f64>,
    failed: BenchResult<u64>,
    load_before: &str,
    load_after: &str,
) {
    println!();
    println!(
        "Serve over time: `syncdeck {}` for {seconds} s, tending {SERVE_CONNECTORS} generator connectors of {SERVE_DOCS} documents, each synced again as soon as its last sync ended (load {load_before} → {load_after}). Peak RSS {}; jobs failed: {}.",
        SERVE_ARGS.join(" "),
        peak.map_or("?".to_string(), |p| format!("{p:.1} MiB")),
        failed.map_or_else(|e| format!("? ({e})"), |n| n.to_string())
    );
    println!();
    println!(
        "| time | jobs completed | documents synced | serve RSS | serve CPU a job since the row before | stand-in CPU a job since the row before |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut before: Option<&ServeSample> = None;
    for s in samples {
        let per_job = |cpu: fn(&ServeSample) -> Option<f64>| {
            let b = before.filter(|b| s.completed > b.completed)?;
            let used = cpu(s)? - cpu(b)?;
            (used >= 0.0).then(|| {
                format!(
                    "{:.1} ms",
                    used * 1000.0 / (s.completed - b.completed) as f64
                )
            })
        };
        println!(
            "| {:.0} s | {} | {} | {:.1} MiB | {} | {} |",
            s.elapsed,
            s.completed,
            s.completed * SERVE_DOCS,
            s.rss_mib,
            per_job(|s| s.serve_cpu).unwrap_or_default(),
            per_job(|s| s.standin_cpu).unwrap_or_default()
        );
        before = Some(s);
    }
}

/// The engine alone (one fresh sync each), clean and with 10% and 20% of bulk items refused
/// with 429 by the stand-in, alternating so that all see the same machine load.
async fn measure_429(
    standin: &mut RoleChild,
    url: &str,
    docs: u64,
    repeats: usize,
) -> BenchResult<Vec<(f64, Vec<EngineReport>)>> {
    let client = reqwest::Client::new();
    let mut runs: Vec<(f64, Vec<EngineReport>)> =
        [0.0, 0.1, 0.2].iter().map(|r| (*r, Vec::new())).collect();
    for rep in 0..repeats {
        for (ratio, reports) in runs.iter_mut() {
            standin.command(&format!("item_429_ratio {ratio}"))?;
            let index = format!("bench-429-{docs}-{rep}-{}", (*ratio * 100.0) as u32);
            let vars = [
                (URL, url.to_string()),
                (DOCS, docs.to_string()),
                (INDEX, index.clone()),
            ];
            let mut engine: Vec<EngineReport> =
                RoleChild::spawn("engine", &vars, false, None)?.report("engine")?;
            standin.command("item_429_ratio 0")?;
            drop_index(&client, url, &index).await?;
            let engine = engine.pop().ok_or("the engine reported no job")?;
            eprintln!(
                "  engine, {docs} docs, {:.0}% item 429s: {:.2} s, {} dead letters, {} bulk requests",
                *ratio * 100.0,
                engine.seconds,
                engine.dead_lettered,
                engine.bulk_requests
            );
            reports.push(engine);
        }
    }
    Ok(runs)
}

fn print_429(docs: u64, runs: &[(f64, Vec<EngineReport>)], load_before: &str, load_after: &str) {
    let fastest = |reports: &[EngineReport]| {
        reports
            .iter()
            .map(|r| r.seconds)
            .fold(f64::INFINITY, f64::min)
    };
    let clean = runs.first().map_or(f64::NAN, |(_, r)| fastest(r));
    println!();
    println!(
        "Item 429s: {docs} documents, one fresh full sync each, the stand-in refusing a share of bulk items with 429 (load {load_before} → {load_after}). Fastest run of each; dead letters and requests of that run."
    );
    println!();
    println!(
        "| items refused | whole sync | × clean | dead letters | bulk requests | item retries |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for (ratio, reports) in runs {
        let t = fastest(reports);
        let Some(run) = reports.iter().find(|r| r.seconds == t) else {
            continue;
        };
        println!(
            "| {:.0}% | {t:.2} s | {:.2}× | {} | {} | {} |",
            ratio * 100.0,
            t / clean,
            run.dead_lettered,
            run.bulk_requests,
            run.retried
        );
    }
}

async fn measure(
    placement: Placement,
    standin: &RoleChild,
    url: &str,
    sizes: &[u64],
    repeats: usize,
    cores: usize,
    load_before: &str,
) -> BenchResult<Vec<(u64, Runs)>> {
    let standin_pid = standin.pid();
    let client = reqwest::Client::new();
    eprintln!(
        "{placement:?}: stand-in at {url}; sizes {sizes:?}, {repeats} run(s) each; {cores} cores, load {load_before}"
    );
    let cpu = placement.client_cpu();
    let mut all = Vec::new();
    for &docs in sizes {
        let mut runs = Runs::default();
        for rep in 0..repeats {
            let prefix = format!("bench-loop-{docs}-{rep}");
            let vars = [
                (URL, url.to_string()),
                (DOCS, docs.to_string()),
                (INDEX, prefix.clone()),
            ];
            let standin_cpu = cpu_seconds(&standin_pid);
            let plain: LoopReport =
                RoleChild::spawn("bulk", &vars, false, cpu)?.report("plain bulk loop")?;
            // Both passes of the loop; the first is what the figure compares with.
            let loop_cpu = cpu_seconds(&standin_pid) - standin_cpu;
            runs.loop_standin_cpu
                .push(loop_cpu * 1e6 / (2 * plain.docs) as f64);
            for pass in 0..plain.indices {
                drop_index(&client, url, &format!("{prefix}-{pass}")).await?;
            }
            eprintln!(
                "  plain loop, {docs} docs: {:.0} docs/s fresh, {:.0} docs/s again",
                plain.docs_per_sec, plain.resync_docs_per_sec
            );
            runs.loops.push(plain);

            let index = format!("bench-engine-{docs}-{rep}");
            let standin_cpu = cpu_seconds(&standin_pid);
            let vars = [
                (URL, url.to_string()),
                (DOCS, docs.to_string()),
                (INDEX, index.clone()),
                (JOBS, "2".to_string()),
            ];
            let mut jobs: Vec<EngineReport> =
                RoleChild::spawn("engine", &vars, false, cpu)?.report("engine")?;
            runs.standin_cpu
                .push((cpu_seconds(&standin_pid) - standin_cpu) * 1e6 / (2 * docs) as f64);
            drop_index(&client, url, &index).await?;
            let (Some(resync), Some(engine)) = (jobs.pop(), jobs.pop()) else {
                return Err("the engine reported fewer than two jobs".to_string());
            };
            for (what, run) in [("fresh", &engine), ("re-sync", &resync)] {
                eprintln!(
                    "  engine {what}, {docs} docs: {:.0} docs/s ({:.0} indexing), {:.1} MiB, {:.2} µs/doc ({:.2} indexing), {:.1} allocations/doc",
                    run.docs_per_sec,
                    run.index_docs_per_sec,
                    run.peak_rss_mib,
                    run.cpu_us_per_doc,
                    run.index_cpu_us_per_doc,
                    run.allocs_per_doc
                );
            }
            runs.engines.push(engine);
            runs.resyncs.push(resync);
        }
        all.push((docs, runs));
    }
    Ok(all)
}

fn print_table(
    placement: Placement,
    all: &[(u64, Runs)],
    cores: usize,
    load_before: &str,
    load_after: &str,
) {
    let in_flight = EngineSettings::default().max_in_flight;
    let how = match placement {
        Placement::Shared => format!("{cores} cores shared by the engine and the stand-in"),
        Placement::Pinned => {
            "the stand-in alone on CPU 1, the loop or the engine alone on CPU 0".to_string()
        }
    };
    let doc_bytes = doc_bytes().unwrap_or(DEFAULT_DOC_BYTES);
    println!();
    println!(
        "{placement:?}: {doc_bytes}-byte documents, {in_flight} bulk requests in flight, {how} (load {load_before} → {load_after})."
    );
    println!(
        "Best docs/s of each size's runs, with its share of the best loop run of the same shape; \"paired\" is the median, over the repeats, of each engine run's whole sync over the loop run just before it. Peak RSS is the highest, CPU/doc the median (whole sync; indexing alone in brackets), allocations/doc the median (the engine process, whole sync). The stand-in's CPU/doc is over both jobs."
    );
    println!();
    println!(
        "| documents | sync | plain loop docs/s | engine docs/s, whole sync | whole / loop, paired | engine docs/s, indexing | engine peak RSS | engine CPU/doc | engine allocations/doc | stand-in CPU/doc, loop / engine |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (docs, runs) in all {
        for (what, engines) in [("fresh", &runs.engines), ("re-sync", &runs.resyncs)] {
            let loop_rate = |l: &LoopReport| match what {
                "fresh" => l.docs_per_sec,
                _ => l.resync_docs_per_sec,
            };
            let plain = best(runs.loops.iter().map(loop_rate));
            let whole = best(engines.iter().map(|r| r.docs_per_sec));
            let indexing = best(engines.iter().map(|r| r.index_docs_per_sec));
            let rss = best(engines.iter().map(|r| r.peak_rss_mib));
            let cpu = median(engines.iter().map(|r| r.cpu_us_per_doc).collect());
            let index_cpu = median(engines.iter().map(|r| r.index_cpu_us_per_doc).collect());
            let allocs = median(engines.iter().map(|r| r.allocs_per_doc).collect());
            let loop_standin = median(runs.loop_standin_cpu.clone());
            let engine_standin = median(runs.standin_cpu.clone());
            let pct = |v: f64| if plain > 0.0 { v / plain * 100.0 } else { 0.0 };
            // Each engine run against the loop run just before it: the two saw the same load.
            let paired = median(
                runs.loops
                    .iter()
                    .zip(engines.iter())
                    .filter(|(l, _)| loop_rate(l) > 0.0)
                    .map(|(l, e)| e.docs_per_sec / loop_rate(l) * 100.0)
                    .collect(),
            );
            println!(
                "| {docs} | {what} | {plain:.0} | {whole:.0} ({:.0}%) | {paired:.0}% | {indexing:.0} ({:.0}%) | {rss:.1} MiB | {cpu:.2} µs ({index_cpu:.2} µs) | {allocs:.1} | {loop_standin:.2} µs / {engine_standin:.2} µs |",
                pct(whole),
                pct(indexing)
            );
        }
    }
}
