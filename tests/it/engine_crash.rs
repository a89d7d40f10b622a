//! A sync killed with SIGKILL in the middle loses nothing: the real binary syncs a connector
//! against the stand-in and is killed mid-way; a `syncdeck serve` worker then reaps the dead
//! job (`error`, "has not seen any update"), runs a new job, and afterwards every source
//! document is in the index or in the dead-letter queue the killed process shared.
//! The lifecycle around a dead `sync` process, with the real binary: a second `sync` takes over
//! the guard of the killed one at once (its process is provably gone), keeping the dead job's
//! counts; `jobs cancel` of the dead job completes; SIGTERM while the job is still `starting`
//! ends it within seconds; and a connector this engine cannot run is refused with no job made.

use crate::engine_util;
use crate::support;

use engine_util::{create_connector, es_backend};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{StandIn, StandInOptions};
use syncdeck::backend::{ControlPlane, SyncJobQuery};
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter};
use syncdeck::sources::{GeneratorFactory, HttpApiFactory, NdjsonFactory};

const COUNT: u64 = 3000;
const POISON_EVERY: u64 = 50;
const LIMIT: Duration = Duration::from_secs(60);

fn binary() -> PathBuf {
    assert_cmd::Command::cargo_bin("syncdeck")
        .expect("the syncdeck binary")
        .get_program()
        .into()
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(standin: &StandIn) -> Home {
        Home::with_idle_timeout(standin, "3s")
    }

    /// `idle_job_timeout` long enough (say `"10m"`) that only a provably dead process lets
    /// a guard be taken over.
    fn with_idle_timeout(standin: &StandIn, idle: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "default_profile = \"x\"\n\
             [profiles.x.elasticsearch]\nnodes = [\"{}\"]\nrequest_timeout = \"10s\"\ndead_backoff_base = \"50ms\"\n\
             [profiles.x.engine]\nbatch_max_docs = 20\nmax_in_flight = 1\nbatch_linger = \"20ms\"\nretry_base = \"5ms\"\n\
             retry_max = \"50ms\"\nstats_interval = \"200ms\"\ncheck_interval = \"200ms\"\nidle_job_timeout = \"{idle}\"\n\
             job_cleanup_interval = \"500ms\"\n\
             [profiles.x.breaker]\nopen_for = \"100ms\"\nmax_open = \"10s\"\n",
            standin.es_urls()[0]
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Home { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SYNCDECK_CONFIG", self.path("config.toml"))
            .env("SYNCDECK_DATA_DIR", self.path("data"))
            .env("SYNCDECK_STATE_DIR", self.path("state"))
            .env("SYNCDECK_LOG", "info")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts a long-running command with its output in files named after `name`.
    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.path(&format!("{name}.err"))).unwrap();
        self.cmd(args).stdout(out).stderr(err).spawn().unwrap()
    }

    fn output_of(&self, name: &str) -> String {
        let read = |ext: &str| {
            std::fs::read_to_string(self.path(&format!("{name}.{ext}"))).unwrap_or_default()
        };
        format!("stdout:\n{}\nstderr:\n{}", read("out"), read("err"))
    }
}

/// Polls `check` every 50 ms; panics with `what` after `LIMIT`.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then a bounded wait (SIGKILL if it does not stop).
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_source(path: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut text = String::new();
    let (mut good, mut poisoned) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..COUNT {
        let id = format!("doc-{i}");
        let mut line = json!({"id": id, "n": i, "title": format!("line {i}")});
        if (i + 1) % POISON_EVERY == 0 {
            line["poison"] = Value::Bool(true);
            poisoned.insert(id);
        } else {
            good.insert(id);
        }
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    (good, poisoned)
}

#[test]
fn a_sync_killed_midway_is_reaped_and_the_next_sync_loses_nothing() {
    let standin = StandIn::start_blocking(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    });
    let faults = standin.faults();
    faults.reject_field(Some("poison".into()));
    // Slow every answer a little, so the kill lands in the middle of the sync.
    faults.latency(Duration::from_millis(15));
    let home = Home::new(&standin);
    let source = home.path("source.ndjson");
    let (good, poisoned) = write_source(&source);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let es = es_backend(&standin.es_urls());
    let values = json!({"path": source.to_string_lossy()});
    let connector = rt.block_on(create_connector(
        es.as_ref(),
        "crash",
        "crash",
        &NdjsonFactory,
        values,
    ));

    // 1. A sync, killed once part of the documents are in.
    let mut sync = home.spawn("sync", &["sync", &connector]);
    wait_for("the first documents", || {
        if let Ok(Some(status)) = sync.try_wait() {
            panic!(
                "sync ended before the kill ({status}):\n{}",
                home.output_of("sync")
            );
        }
        standin.doc_count("crash") >= 300
    });
    sync.kill().unwrap();
    sync.wait().unwrap();
    let jobs = |es: &dyn ControlPlane| {
        let query = SyncJobQuery {
            connector_id: Some(connector.clone()),
            ..Default::default()
        };
        rt.block_on(es.list_sync_jobs(&query)).unwrap().results
    };
    let killed = jobs(es.as_ref());
    assert_eq!(killed.len(), 1);
    let killed_id = killed[0].id.clone();
    assert_eq!(
        standin.sync_job(&killed_id).unwrap()["status"],
        "in_progress"
    );
    let partial = standin.doc_count("crash") as u64;
    assert!(
        partial < good.len() as u64,
        "the kill came too late: {partial} documents already in"
    );

    // 2. A worker reaps the dead job and runs a new one.
    let mut serve = home.spawn("serve", &["serve", "--idle", "200ms"]);
    wait_for("the killed job to be reaped", || {
        standin
            .sync_job(&killed_id)
            .is_some_and(|j| j["status"] == "error")
    });
    let reaped = standin.sync_job(&killed_id).unwrap();
    assert_eq!(
        reaped["error"], "The job has not seen any update for some time.",
        "{reaped:#}"
    );
    let started = home
        .cmd(&["jobs", "start", &connector, "--json"])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let new_id = serde_json::from_slice::<Value>(&started.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the new job to complete", || {
        let status = standin
            .sync_job(&new_id)
            .map(|j| j["status"].clone())
            .unwrap_or(Value::Null);
        assert!(
            status != "error" && status != "canceled",
            "the new job ended {status}:\n{}",
            home.output_of("serve")
        );
        status == "completed"
    });
    let status = terminate(&mut serve);
    assert!(
        status.success(),
        "serve exited with {status}:\n{}",
        home.output_of("serve")
    );
    // Its summary, on stdout, counts the one job it ran (the reaped one it only ended) and
    // lists it.
    let summary = std::fs::read_to_string(home.path("serve.out")).unwrap();
    assert!(
        summary.contains(": 1 job(s) run, 0 skipped,") && summary.contains(&new_id),
        "{}",
        home.output_of("serve")
    );

    // 3. Nothing was lost: the good documents are in the index, the poisoned ones in the queue.
    let indexed: BTreeSet<String> = standin
        .index_docs("crash")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(indexed, good);
    let dlq =
        DeadLetterStore::open(&home.path("data").join("dead-letters.sqlite3"), u64::MAX).unwrap();
    let letters = dlq.list(&DlqFilter::default()).unwrap();
    let queued: BTreeSet<String> = letters.iter().map(|l| l.doc_id.clone()).collect();
    assert_eq!(queued.len(), letters.len());
    assert_eq!(queued, poisoned);
    assert!(
        letters
            .iter()
            .all(|l| l.error_type == "document_parsing_exception"),
        "{letters:#?}"
    );
    // Poisoned documents the killed process had already dead-lettered were seen again.
    assert!(
        letters.iter().any(|l| l.attempts == 2),
        "the killed sync dead-lettered nothing before the kill"
    );
    assert!(letters.iter().all(|l| l.job_id == new_id), "{letters:#?}");
    let done = standin.sync_job(&new_id).unwrap();
    assert_eq!(
        done["indexed_document_count"],
        good.len() as u64,
        "{done:#}"
    );
    let doc = standin.connector(&connector).unwrap();
    assert_eq!(doc["last_sync_status"], "completed", "{doc:#}");
}

/// A generator connector of 3000 documents at 300 a second, and a `sync` of it killed with
/// SIGKILL once the job has reported stats. Returns the dead job's id.
fn killed_sync(home: &Home, standin: &StandIn, rt: &tokio::runtime::Runtime, id: &str) -> String {
    let es = es_backend(&standin.es_urls());
    let values = json!({"count": 3000, "rate": 300, "doc_bytes": 256, "poison_every": 0});
    let connector = rt.block_on(create_connector(
        es.as_ref(),
        id,
        id,
        &GeneratorFactory,
        values,
    ));
    let mut sync = home.spawn("killed", &["sync", &connector]);
    let job_id = std::cell::RefCell::new(String::new());
    wait_for("the job's first stats", || {
        if let Ok(Some(status)) = sync.try_wait() {
            panic!("sync ended early ({status}):\n{}", home.output_of("killed"));
        }
        let jobs = rt.block_on(jobs_of(es.as_ref(), &connector));
        match jobs.first() {
            Some(j) if j.indexed_document_count > 0 => {
                *job_id.borrow_mut() = j.id.clone();
                true
            }
            _ => false,
        }
    });
    sync.kill().unwrap();
    sync.wait().unwrap();
    let job_id = job_id.into_inner();
    assert_eq!(standin.sync_job(&job_id).unwrap()["status"], "in_progress");
    job_id
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn jobs_of(es: &dyn ControlPlane, connector: &str) -> Vec<syncdeck::model::SyncJob> {
    let query = SyncJobQuery {
        connector_id: Some(connector.to_string()),
        ..Default::default()
    };
    es.list_sync_jobs(&query).await.unwrap().results
}

fn one_node() -> StandIn {
    StandIn::start_blocking(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
}

#[test]
fn a_second_sync_takes_over_from_a_killed_one_and_keeps_its_counts() {
    let standin = one_node();
    let home = Home::with_idle_timeout(&standin, "10m");
    let rt = runtime();
    let dead = killed_sync(&home, &standin, &rt, "killed");
    let kept = standin.sync_job(&dead).unwrap()["indexed_document_count"].clone();

    let second = home.cmd(&["sync", "killed"]).output().unwrap();

    assert!(
        second.status.success(),
        "the second sync failed:\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let orphan = standin.sync_job(&dead).unwrap();
    assert_eq!(orphan["status"], "error", "{orphan:#}");
    assert!(
        orphan["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is gone"),
        "{orphan:#}"
    );
    assert_eq!(
        orphan["indexed_document_count"], kept,
        "its counts are kept"
    );
    assert!(orphan["completed_at"].is_string());
    let es = es_backend(&standin.es_urls());
    let jobs = rt.block_on(jobs_of(es.as_ref(), "killed"));
    assert_eq!(
        jobs.len(),
        2,
        "the dead job and the new one, nothing pending: {jobs:#?}"
    );
    assert!(jobs.iter().all(|j| j.status.to_string() != "pending"));
    assert_eq!(standin.doc_count("killed"), 3000);
    let doc = standin.connector("killed").unwrap();
    assert_eq!(doc["last_sync_status"], "completed", "{doc:#}");
}

#[test]
fn cancelling_a_killed_sync_job_completes() {
    let standin = one_node();
    let home = Home::with_idle_timeout(&standin, "10m");
    let rt = runtime();
    let dead = killed_sync(&home, &standin, &rt, "cancelme");

    let out = home
        .cmd(&["jobs", "cancel", &dead, "--json"])
        .output()
        .unwrap();

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["status"], "canceled", "{said}");
    let job = standin.sync_job(&dead).unwrap();
    assert_eq!(job["status"], "canceled", "{job:#}");
    assert!(
        job["indexed_document_count"].as_u64().unwrap() > 0,
        "{job:#}"
    );
    let doc = standin.connector("cancelme").unwrap();
    assert_eq!(doc["last_sync_status"], "canceled", "{doc:#}");
}

#[test]
fn sigterm_while_starting_ends_the_job_within_seconds() {
    let standin = one_node();
    let home = Home::with_idle_timeout(&standin, "10m");
    let rt = runtime();
    // A source that never answers its ping: the job stays `starting` until stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/items", silent.local_addr().unwrap());
    let es = es_backend(&standin.es_urls());
    let values = json!({"url": url, "timeout_seconds": 600});
    let connector = rt.block_on(create_connector(
        es.as_ref(),
        "silent",
        "silent",
        &HttpApiFactory,
        values,
    ));
    let mut sync = home.spawn("starting", &["sync", &connector]);
    let job = std::cell::RefCell::new(String::new());
    wait_for("the job to be claimed", || {
        let jobs = rt.block_on(jobs_of(es.as_ref(), &connector));
        match jobs.first() {
            Some(j) if j.status.to_string() == "in_progress" => {
                *job.borrow_mut() = j.id.clone();
                true
            }
            _ => false,
        }
    });
    let job = job.into_inner();
    // Let it reach the ping.
    std::thread::sleep(Duration::from_millis(300));

    let status = terminate(&mut sync);

    assert_eq!(status.code(), Some(1), "{}", home.output_of("starting"));
    let stored = standin.sync_job(&job).unwrap();
    let end = stored["status"].as_str().unwrap_or_default().to_string();
    assert!(end == "canceled" || end == "suspended", "{stored:#}");
    let doc = standin.connector(&connector).unwrap();
    assert_eq!(doc["last_sync_status"], end.as_str(), "{doc:#}");
    drop(silent);
}

#[test]
fn sync_refuses_a_connector_this_engine_cannot_run_and_makes_no_job() {
    let standin = one_node();
    let home = Home::new(&standin);
    let rt = runtime();
    let es = es_backend(&standin.es_urls());
    let new = syncdeck::model::NewConnector {
        id: Some("orders".into()),
        index_name: Some("search-orders".into()),
        service_type: Some("sharepoint_online".into()),
        is_native: Some(false),
        ..Default::default()
    };
    rt.block_on(es.create_connector(&new)).unwrap();

    let out = home.cmd(&["sync", "orders"]).output().unwrap();

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'sharepoint_online'") && stderr.contains("generator"),
        "{stderr}"
    );
    assert!(rt.block_on(jobs_of(es.as_ref(), "orders")).is_empty());
    let doc = standin.connector("orders").unwrap();
    assert_eq!(doc["status"], "created", "{doc:#}");
    assert_eq!(doc["last_sync_status"], Value::Null, "{doc:#}");
}
