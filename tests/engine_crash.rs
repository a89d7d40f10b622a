//! A sync killed with SIGKILL in the middle loses nothing: the real binary syncs a connector
//! against the stand-in and is killed mid-way; a `syncdeck serve` worker then reaps the dead
//! job (`error`, "has not seen any update"), runs a new job, and afterwards every source
//! document is in the index or in the dead-letter queue the killed process shared.

#[path = "support/engine_util.rs"]
mod engine_util;
mod support;

use engine_util::{create_connector, es_backend};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{StandIn, StandInOptions};
use syncdeck::backend::{ControlPlane, SyncJobQuery};
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter};
use syncdeck::sources::NdjsonFactory;

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
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "default_profile = \"x\"\n\
             [profiles.x.elasticsearch]\nnodes = [\"{}\"]\nrequest_timeout = \"10s\"\ndead_backoff_base = \"50ms\"\n\
             [profiles.x.engine]\nbatch_max_docs = 20\nmax_in_flight = 1\nbatch_linger = \"20ms\"\nretry_base = \"5ms\"\n\
             retry_max = \"50ms\"\nstats_interval = \"200ms\"\ncheck_interval = \"200ms\"\nidle_job_timeout = \"3s\"\n\
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
