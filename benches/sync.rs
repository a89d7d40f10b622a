//! The engine benchmark: `cargo bench --bench sync`. Syncs generated 1 KB documents into the
//! stand-in cluster and reports, per size, the engine's documents per second next to what the
//! stand-in accepts from a plain bulk loop in the same run, its peak RSS, and its CPU time per
//! document (user + system of the engine process ÷ documents).
//!
//! Every part runs in its own process, re-executing this binary with `SYNCDECK_BENCH_ROLE`
//! set, so RSS and CPU are the engine's alone:
//! - `standin`: the stand-in from `tests/support`; prints its URL, serves until stdin closes;
//! - `bulk`: the baseline, pre-built bodies sent by a plain loop with reqwest, as many in
//!   flight as the engine keeps;
//! - `engine`: one full sync through `Engine::run_job` with the `generator` source.
//!
//! The parent (no role) runs them in turn and prints the table. Sizes come from
//! `SYNCDECK_BENCH_SIZES` (default `100000,1000000`), e.g. `SYNCDECK_BENCH_SIZES=100000 cargo
//! bench --bench sync` for a quick run. The plain loop runs at the smallest size.

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
use syncdeck::engine::batch::{BatchBuilder, BatchLimits};
use syncdeck::engine::dlq::DeadLetterStore;
use syncdeck::engine::progress::Phase;
use syncdeck::engine::runner::{Engine, EngineDeps, JobEnd};
use syncdeck::model::{JobType, NewConnector, TriggerMethod};
use syncdeck::sources::{self, GeneratorSettings, GeneratorSource, SourceFactory};
use tokio_util::sync::CancellationToken;

const ROLE: &str = "SYNCDECK_BENCH_ROLE";
const URL: &str = "SYNCDECK_BENCH_URL";
const DOCS: &str = "SYNCDECK_BENCH_DOCS";
const INDEX: &str = "SYNCDECK_BENCH_INDEX";
const SIZES: &str = "SYNCDECK_BENCH_SIZES";
const DEFAULT_SIZES: &str = "100000,1000000";
const DOC_BYTES: usize = 1024;
const SEED: u64 = 42;

type BenchResult<T> = Result<T, String>;

fn main() -> ExitCode {
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
            eprintln!("bench ({}): {e}", if role.is_empty() { "parent" } else { &role });
            ExitCode::FAILURE
        }
    }
}

/// The runtime `syncdeck` itself uses: multi-threaded, one worker per core.
fn runtime() -> BenchResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))
}

fn env_var(name: &str) -> BenchResult<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn env_docs() -> BenchResult<u64> {
    let v = env_var(DOCS)?;
    v.parse().map_err(|_| format!("{DOCS} wants a number, got '{v}'"))
}

// ---------------------------------------------------------------------------------------------
// Measurements of this process, from /proc.

/// User + system CPU seconds of this process (all threads, living and gone).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in USER_HZ ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Role: the stand-in.

fn standin_role() -> BenchResult<()> {
    let standin = support::StandIn::start_blocking(support::StandInOptions { kibana: false, ..Default::default() });
    let url = standin.es_urls().into_iter().next().ok_or("the stand-in has no node")?;
    println!("{url}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Serve until the parent closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(standin);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Role: the plain bulk loop.

#[derive(Debug, Serialize, Deserialize)]
struct LoopReport {
    docs: u64,
    bodies: usize,
    seconds: f64,
    docs_per_sec: f64,
    cpu_us_per_doc: f64,
}

/// The same documents the generator yields, in the same bulk bodies the engine builds.
fn build_bodies(docs: u64) -> Vec<Bytes> {
    let settings = EngineSettings::default();
    let limits = BatchLimits { max_docs: settings.batch_max_docs, max_bytes: settings.batch_max_bytes };
    let source =
        GeneratorSource::new(GeneratorSettings { count: docs, doc_bytes: DOC_BYTES, seed: SEED, rate: 0, poison_every: 0 });
    let mut builder = BatchBuilder::new(limits, None);
    let mut bodies = Vec::new();
    for i in 0..docs {
        let mut doc = source.document(i);
        bodies.extend(builder.push_index(doc.id, doc.timestamp.as_deref(), &mut doc.fields).map(|b| b.body));
    }
    bodies.extend(builder.flush().map(|b| b.body));
    bodies
}

async fn bulk_role() -> BenchResult<()> {
    let url = env_var(URL)?;
    let index = env_var(INDEX)?;
    let docs = env_docs()?;
    let bodies = Arc::new(build_bodies(docs));
    let client = reqwest::Client::new();
    let created = client.put(format!("{url}/{index}")).send().await.map_err(|e| e.to_string())?;
    if !created.status().is_success() {
        return Err(format!("creating '{index}' answered {}", created.status()));
    }
    let bulk_url = Arc::new(format!("{url}/{index}/_bulk"));
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_seconds("self");
    let started = Instant::now();
    let workers: Vec<_> = (0..EngineSettings::default().max_in_flight)
        .map(|_| {
            let (client, bodies, next, bulk_url) = (client.clone(), bodies.clone(), next.clone(), bulk_url.clone());
            tokio::spawn(async move {
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let response = client
                        .post(bulk_url.as_str())
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    let answer = response.bytes().await.map_err(|e| e.to_string())?;
                    let head = answer.get(..answer.len().min(64)).unwrap_or_default();
                    const NO_ERRORS: &[u8] = b"\"errors\":false";
                    if !status.is_success() || !head.windows(NO_ERRORS.len()).any(|w| w == NO_ERRORS) {
                        return Err(format!("bulk answered {status}: {}", String::from_utf8_lossy(head)));
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu_before;
    let report = LoopReport {
        docs,
        bodies: bodies.len(),
        seconds,
        docs_per_sec: docs as f64 / seconds,
        cpu_us_per_doc: cpu * 1e6 / docs as f64,
    };
    println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Role: the engine.

#[derive(Debug, Serialize, Deserialize)]
struct EngineReport {
    docs: u64,
    indexed: u64,
    dead_lettered: u64,
    /// The whole job: claim, extraction and indexing, the deletion scan, final status.
    seconds: f64,
    docs_per_sec: f64,
    /// Until the last document was indexed (before the full sync's deletion scan).
    index_seconds: f64,
    index_docs_per_sec: f64,
    peak_rss_mib: f64,
    cpu_seconds: f64,
    cpu_us_per_doc: f64,
}

async fn engine_role() -> BenchResult<()> {
    let url = env_var(URL)?;
    let index = env_var(INDEX)?;
    let docs = env_docs()?;
    let node = url::Url::parse(&url).map_err(|e| format!("bad URL '{url}': {e}"))?;
    let backend = Arc::new(ElasticsearchBackend::new(&EsSettings::new(vec![node])).map_err(|e| e.to_string())?);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let settings = EngineSettings::default();
    let dlq = DeadLetterStore::open(&dir.path().join("dlq.sqlite"), settings.dlq_max_entries).map_err(|e| e.to_string())?;
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
    let connector_id = create_connector(control.as_ref(), &index, docs).await?;
    let job_id =
        control.create_sync_job(&connector_id, JobType::Full, TriggerMethod::OnDemand).await.map_err(|e| e.to_string())?;

    let cpu_before = cpu_seconds("self");
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let run = {
        let (engine, job_id, shutdown) = (engine.clone(), job_id.clone(), shutdown.clone());
        tokio::spawn(async move { engine.run_job(&job_id, &shutdown).await })
    };
    // Notes when indexing ended, from the job's live progress (a cheap read every 10 ms).
    let live = engine.live();
    let mut index_done = None;
    while !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let phase = live.progress(&job_id).map(|p| p.snapshot().phase);
        if index_done.is_none() && phase.is_some_and(|p| !matches!(p, Phase::Starting | Phase::Extracting)) {
            index_done = Some(started.elapsed());
        }
    }
    let report = run.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu_before;
    if report.end != JobEnd::Completed {
        return Err(format!("the sync did not complete: {:?}", report.end));
    }
    let c = report.counters;
    if c.indexed + c.updated != docs {
        return Err(format!("{docs} documents generated but {} indexed", c.indexed + c.updated));
    }
    let index_seconds = index_done.map_or(seconds, |d| d.as_secs_f64());
    let out = EngineReport {
        docs,
        indexed: c.indexed + c.updated,
        dead_lettered: c.dead_lettered,
        seconds,
        docs_per_sec: docs as f64 / seconds,
        index_seconds,
        index_docs_per_sec: docs as f64 / index_seconds,
        peak_rss_mib: peak_rss_mib(),
        cpu_seconds: cpu,
        cpu_us_per_doc: cpu * 1e6 / docs as f64,
    };
    println!("{}", serde_json::to_string(&out).map_err(|e| e.to_string())?);
    Ok(())
}

/// A `generator` connector of `docs` 1 KB documents, as fast as the cluster takes them.
async fn create_connector(control: &dyn ControlPlane, index: &str, docs: u64) -> BenchResult<String> {
    let new = NewConnector {
        name: Some(format!("bench {index}")),
        index_name: Some(index.to_string()),
        service_type: Some("generator".to_string()),
        is_native: Some(false),
        ..Default::default()
    };
    let id = control.create_connector(&new).await.map_err(|e| e.to_string())?;
    let mut config = sources::GeneratorFactory.default_configuration();
    let values = [("count", docs), ("doc_bytes", DOC_BYTES as u64), ("seed", SEED), ("rate", 0), ("poison_every", 0)];
    for (key, value) in values {
        let field = config.0.get_mut(key).ok_or_else(|| format!("the generator has no '{key}' field"))?;
        field.value = value.into();
    }
    control.update_configuration(&id, &ConfigurationUpdate::Replace(config)).await.map_err(|e| e.to_string())?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// The parent: runs the roles and prints the table.

/// A child process of this binary in one role; killed when dropped.
struct RoleChild {
    child: Child,
}

impl RoleChild {
    fn spawn(role: &str, vars: &[(&str, String)], keep_stdin: bool) -> BenchResult<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.env(ROLE, role).stdout(Stdio::piped()).stderr(Stdio::inherit());
        cmd.stdin(if keep_stdin { Stdio::piped() } else { Stdio::null() });
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start the {role} process: {e}"))?;
        Ok(Self { child })
    }

    /// The first line the child prints.
    fn first_line(&mut self) -> BenchResult<String> {
        let out = self.child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).map_err(|e| e.to_string())?;
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
        .map(|s| s.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{SIZES}: bad size '{s}'")))
        .collect::<BenchResult<Vec<_>>>()?;
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return Err(format!("{SIZES} names no size"));
    }
    Ok(sizes)
}

async fn drop_index(client: &reqwest::Client, url: &str, index: &str) -> BenchResult<()> {
    let answer = client.delete(format!("{url}/{index}")).send().await.map_err(|e| e.to_string())?;
    if answer.status().is_success() || answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(format!("deleting '{index}' answered {}", answer.status()))
}

struct Row {
    docs: u64,
    engine: EngineReport,
    standin_cpu_us_per_doc: f64,
}

async fn parent() -> BenchResult<()> {
    let sizes = sizes()?;
    let mut standin = RoleChild::spawn("standin", &[], true)?;
    let url = standin.first_line()?;
    if !url.starts_with("http://") {
        return Err(format!("the stand-in printed '{url}' instead of its URL"));
    }
    let standin_pid = standin.pid();
    let client = reqwest::Client::new();
    eprintln!("stand-in at {url}; sizes {sizes:?}");

    let loop_docs = sizes[0];
    let standin_cpu = cpu_seconds(&standin_pid);
    let vars = [(URL, url.clone()), (DOCS, loop_docs.to_string()), (INDEX, "bench-loop".to_string())];
    let baseline: LoopReport = RoleChild::spawn("bulk", &vars, false)?.report("plain bulk loop")?;
    let loop_standin_cpu = (cpu_seconds(&standin_pid) - standin_cpu) * 1e6 / loop_docs as f64;
    drop_index(&client, &url, "bench-loop").await?;
    eprintln!("plain bulk loop, {loop_docs} docs: {:.0} docs/s", baseline.docs_per_sec);

    let mut rows = Vec::new();
    for docs in sizes {
        let index = format!("bench-engine-{docs}");
        let standin_cpu = cpu_seconds(&standin_pid);
        let vars = [(URL, url.clone()), (DOCS, docs.to_string()), (INDEX, index.clone())];
        let engine: EngineReport = RoleChild::spawn("engine", &vars, false)?.report("engine")?;
        let standin_cpu_us_per_doc = (cpu_seconds(&standin_pid) - standin_cpu) * 1e6 / docs as f64;
        drop_index(&client, &url, &index).await?;
        eprintln!("engine, {docs} docs: {:.0} docs/s", engine.docs_per_sec);
        rows.push(Row { docs, engine, standin_cpu_us_per_doc });
    }
    print_table(&baseline, loop_standin_cpu, &rows);
    Ok(())
}

fn print_table(baseline: &LoopReport, loop_standin_cpu: f64, rows: &[Row]) {
    println!();
    println!(
        "plain bulk loop ({} docs in {} bodies, {} in flight): {:.0} docs/s; client CPU {:.2} µs/doc, stand-in CPU {:.2} µs/doc",
        baseline.docs,
        baseline.bodies,
        EngineSettings::default().max_in_flight,
        baseline.docs_per_sec,
        baseline.cpu_us_per_doc,
        loop_standin_cpu
    );
    println!();
    println!("| documents | docs/s (whole sync) | % of plain loop | docs/s (indexing) | peak RSS (MiB) | engine CPU µs/doc | stand-in CPU µs/doc |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let e = &row.engine;
        println!(
            "| {} | {:.0} | {:.0}% | {:.0} | {:.1} | {:.2} | {:.2} |",
            row.docs,
            e.docs_per_sec,
            e.docs_per_sec / baseline.docs_per_sec * 100.0,
            e.index_docs_per_sec,
            e.peak_rss_mib,
            e.cpu_us_per_doc,
            row.standin_cpu_us_per_doc
        );
    }
}
