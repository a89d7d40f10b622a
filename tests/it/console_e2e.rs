//! The console end to end: the real binary in a pseudo-terminal (portable-pty), its output
//! parsed by a terminal emulator (vt100), against the stand-in cluster. Starts a sync and
//! watches it progress, opens the breaker view, retries a dead letter, quits, and checks the
//! terminal was restored (alternate screen left, cursor shown). Also the operator's safety
//! and navigation: enter never confirms, ctrl-c in the editor asks to quit, the `:messages`
//! history, `:sort`, the drill-down path and back, and a failed attach. Every wait is bounded.

use crate::support;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::{ConfigurationUpdate, ControlPlane};
use syncdeck::config::EsSettings;
use syncdeck::engine::dlq::{DeadLetterStore, NewDeadLetter};
use syncdeck::model::NewConnector;

const WAIT: Duration = Duration::from_secs(40);

/// The child's screen as an emulator sees it, plus every byte it wrote.
struct Term {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Term {
    fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        // Let the console read each burst as its own keys.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Waits until the screen satisfies `ok`; panics with the screen otherwise.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.contents();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn spawn_console(home: &Path) -> Term {
    spawn_console_with(home, &[])
}

fn spawn_console_with(home: &Path, args: &[&str]) -> Term {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_syncdeck"));
    cmd.args(args);
    cmd.env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("HOME", home);
    cmd.env("TERM", "xterm-256color");
    cmd.env("SYNCDECK_CONFIG", home.join("config.toml"));
    cmd.env("SYNCDECK_DATA_DIR", home.join("data"));
    cmd.env("SYNCDECK_STATE_DIR", home.join("state"));
    cmd.env("SYNCDECK_LOG", "debug");
    let child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let writer = pty.master.take_writer().unwrap();
    let parser = Arc::new(Mutex::new(vt100::Parser::new(24, 80, 0)));
    let raw = Arc::new(Mutex::new(Vec::new()));
    let (p, r) = (parser.clone(), raw.clone());
    // Keep the master alive in the reader thread: the child sees a hang-up when it goes.
    let master = pty.master;
    std::thread::spawn(move || {
        let _master = master;
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            p.lock().unwrap().process(&buf[..n]);
            r.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Term {
        parser,
        raw,
        writer,
        child,
    }
}

fn write_config(home: &Path, standin: &StandIn) {
    let text = format!(
        "default_profile = \"e2e\"\n[ui]\nrefresh_interval = \"1s\"\n[profiles.e2e.elasticsearch]\nnodes = [\"{}\"]\nrequest_timeout = \"5s\"\n",
        standin.es_urls()[0]
    );
    let path = home.join("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A generator connector slow enough to watch: 2,400 documents at 400 a second.
fn seed_connector(standin: &StandIn) {
    let url = url::Url::parse(&standin.es_urls()[0]).unwrap();
    let backend = ElasticsearchBackend::new(&EsSettings::new(vec![url])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let new = NewConnector {
            id: Some("gen".into()),
            name: Some("Generated".into()),
            index_name: Some("search-gen".into()),
            service_type: Some("generator".into()),
            is_native: Some(false),
            ..Default::default()
        };
        backend.create_connector(&new).await.unwrap();
        let mut config = syncdeck::sources::builtin()
            .get("generator")
            .unwrap()
            .default_configuration();
        for (key, value) in [
            ("count", json!(2400)),
            ("rate", json!(400)),
            ("doc_bytes", json!(256)),
        ] {
            config.0.get_mut(key).unwrap().value = value;
        }
        backend
            .update_configuration("gen", &ConfigurationUpdate::Replace(config))
            .await
            .unwrap();
    });
}

/// A dead letter of the stand-in's cluster (the console shows its profile's cluster only).
fn seed_dead_letter(home: &Path, standin: &StandIn) {
    let dir = home.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let dlq = DeadLetterStore::open(&dir.join("dead-letters.sqlite3"), 10_000).unwrap();
    dlq.bind(&syncdeck::backend::ClusterId {
        uuid: standin.cluster_uuid(),
        name: standin.cluster_name(),
    });
    dlq.append_batch(&[NewDeadLetter {
        connector_id: "gen".into(),
        job_id: "job-before".into(),
        index: "e2e-retry".into(),
        doc_id: "dl-retry-me".into(),
        document: json!({"title": "retry me"}).to_string(),
        error_type: "document_parsing_exception".into(),
        reason: "failed to parse field [value]".into(),
        status: Some(400),
    }])
    .unwrap();
}

/// "1,234 / 2,400 docs" on the Live view.
fn docs_done(screen: &str) -> Option<u64> {
    let at = screen.find(" / 2,400 docs")?;
    let head = &screen[..at];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
        .map_or(0, |i| i + 1);
    head[start..].replace(',', "").parse().ok()
}

#[test]
fn start_watch_breaker_retry_quit_and_restore() {
    let standin = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &standin);
    seed_connector(&standin);
    seed_dead_letter(home.path(), &standin);
    let mut term = spawn_console(home.path());

    term.wait_for("the connectors view", |s| {
        s.contains("Connectors [1]") && s.contains("Generated")
    });
    // Start a full sync on this console's engine.
    term.send("s");
    term.wait_for("the start dialog", |s| {
        s.contains("Start a sync of 'Generated'")
    });
    term.send("\r");
    let first = term.wait_for("progress on the Live view", |s| {
        s.contains("Live sync") && docs_done(s).is_some_and(|n| n > 0)
    });
    let n1 = docs_done(&first).unwrap();
    let later = term.wait_for("the count to move", |s| {
        docs_done(s).is_some_and(|n| n > n1)
    });
    assert!(
        later.contains("here"),
        "the job should run on this console's engine:\n{later}"
    );

    // The breaker of the running sync, and the node pool.
    term.send("4");
    term.wait_for("the breaker view", |s| {
        s.contains("CLOSED") && s.contains("Node pool") && s.contains("alive")
    });

    // Retry the dead letter.
    term.send("5");
    term.wait_for("the dead letter", |s| s.contains("dl-retry-me"));
    term.send("r");
    term.wait_for("the retry to finish", |s| {
        s.contains("1 indexed and resolved") || !s.contains("dl-retry-me")
    });
    let deadline = Instant::now() + WAIT;
    while standin.index_docs("e2e-retry").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        standin.index_docs("e2e-retry").len(),
        1,
        "the retried document did not reach the cluster"
    );

    // Quit (confirming when the sync still runs) and check the terminal is back.
    term.send("q");
    std::thread::sleep(Duration::from_millis(300));
    if term.contents().contains("Quit?") {
        term.send("y");
    }
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = term.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the console did not exit; the screen:\n{}",
            term.contents()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    // Give the reader the last bytes.
    std::thread::sleep(Duration::from_millis(200));
    let raw = term.raw.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&raw);
    let entered = text
        .rfind("\x1b[?1049h")
        .expect("the console never entered the alternate screen");
    let tail = &text[entered..];
    assert!(
        tail.contains("\x1b[?1049l"),
        "the alternate screen was not left"
    );
    assert!(
        tail.rfind("\x1b[?25h") > tail.rfind("\x1b[?25l"),
        "the cursor was left hidden"
    );
    let parser = term.parser.lock().unwrap();
    assert!(
        !parser.screen().alternate_screen(),
        "still on the alternate screen"
    );
    assert!(!parser.screen().hide_cursor(), "the cursor is hidden");
    // The job ended cleanly one way or the other.
    let jobs: Vec<_> = standin_jobs(&standin);
    assert!(
        jobs.iter()
            .all(|s| ["completed", "suspended", "in_progress"].contains(&s.as_str())),
        "{jobs:?}"
    );
}

fn standin_jobs(standin: &StandIn) -> Vec<String> {
    let url = url::Url::parse(&standin.es_urls()[0]).unwrap();
    let backend = ElasticsearchBackend::new(&EsSettings::new(vec![url])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let page = backend.list_sync_jobs(&Default::default()).await.unwrap();
        page.results
            .into_iter()
            .map(|j| j.status.to_string())
            .collect()
    })
}

#[test]
fn a_pipe_still_gets_the_overview() {
    // Not a terminal: no console, the overview as before.
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("SYNCDECK_DATA_DIR", home.path().join("data"))
        .env("SYNCDECK_STATE_DIR", home.path().join("state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("demo-generator") && !stdout.contains("\x1b[?1049h"),
        "{stdout}"
    );
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn backend(standin: &StandIn) -> ElasticsearchBackend {
    let url = url::Url::parse(&standin.es_urls()[0]).unwrap();
    ElasticsearchBackend::new(&EsSettings::new(vec![url])).unwrap()
}

/// Waits for the console to exit; returns whether it exited successfully.
fn wait_exit(term: &mut Term) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = term.child.try_wait().unwrap() {
            return status.success();
        }
        assert!(
            Instant::now() < deadline,
            "the console did not exit; the screen:\n{}",
            term.contents()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Types a `:` command and runs it.
fn command(term: &mut Term, text: &str) {
    term.send(":");
    term.send(text);
    term.send("\r");
}

#[test]
fn enter_does_not_confirm_a_delete_and_ctrl_c_in_the_editor_asks_to_quit() {
    let standin = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &standin);
    seed_connector(&standin);
    let mut term = spawn_console(home.path());
    term.wait_for("the connectors view", |s| {
        s.contains("Connectors [1]") && s.contains("Generated")
    });
    term.send("d");
    term.wait_for("the delete question", |s| s.contains("Delete connector"));
    // Enter, twice: nothing happens, the question stays.
    term.send("\r");
    term.send("\r");
    std::thread::sleep(Duration::from_millis(500));
    let screen = term.contents();
    assert!(screen.contains("Delete connector"), "{screen}");
    assert!(
        block_on(backend(&standin).get_connector("gen")).is_ok(),
        "enter deleted the connector"
    );
    term.send("n");
    term.wait_for("the dialog to close", |s| !s.contains("Delete connector"));

    // The editor: an edit, then ctrl-c asks about quitting the console; y quits.
    term.send("e");
    term.wait_for("the editor", |s| s.contains("Configuration of 'Generated'"));
    term.send("9");
    term.wait_for("the edit", |s| s.contains("unsaved change"));
    term.send("\x03");
    term.wait_for("the quit question", |s| {
        s.contains("Quit syncdeck and discard the edits?")
    });
    term.send("y");
    assert!(wait_exit(&mut term), "the console did not exit cleanly");
}

#[test]
fn messages_sort_and_the_drill_down_path() {
    let standin = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &standin);
    seed_connector(&standin);
    let es = backend(&standin);
    let job_id = block_on(async {
        es.create_connector(&NewConnector {
            id: Some("zz-second".into()),
            name: Some("Second".into()),
            index_name: Some("search-second".into()),
            service_type: Some("generator".into()),
            is_native: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
        es.create_sync_job(
            "gen",
            syncdeck::model::JobType::Full,
            syncdeck::model::TriggerMethod::OnDemand,
        )
        .await
        .unwrap()
    });
    let dir = home.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let dlq = DeadLetterStore::open(&dir.join("dead-letters.sqlite3"), 10_000).unwrap();
    dlq.bind(&syncdeck::backend::ClusterId {
        uuid: standin.cluster_uuid(),
        name: standin.cluster_name(),
    });
    for (job, doc) in [
        (job_id.as_str(), "dl-of-this-job"),
        ("other-job", "dl-of-another"),
    ] {
        dlq.append_batch(&[NewDeadLetter {
            connector_id: "gen".into(),
            job_id: job.into(),
            index: "search-gen".into(),
            doc_id: doc.into(),
            document: json!({"title": doc}).to_string(),
            error_type: "document_parsing_exception".into(),
            reason: "failed to parse field [value]".into(),
            status: Some(400),
        }])
        .unwrap();
    }
    drop(dlq);
    let mut term = spawn_console(home.path());
    term.wait_for("the connectors view", |s| s.contains("Connectors [2]"));

    // :messages holds a toast in full after it is gone.
    command(&mut term, "profile nowhere");
    term.wait_for("the toast", |s| s.contains("no profile 'nowhere'"));
    term.send("2");
    term.wait_for("the toast to leave with the view", |s| {
        s.contains("Sync jobs") && !s.contains("no profile 'nowhere'")
    });
    command(&mut term, "messages");
    term.wait_for("the history", |s| {
        s.contains("Messages") && s.contains("no profile 'nowhere' (known: e2e")
    });
    term.send("\x1b");
    term.send("1");

    // :sort id desc: zz-second above gen, and the header says so.
    command(&mut term, "sort id desc");
    let screen = term.wait_for("the sort", |s| s.contains("sort ID↓"));
    let row = |s: &str, what: &str| s.lines().position(|l| l.contains(what));
    assert!(
        row(&screen, "Second") < row(&screen, "Generated"),
        "not sorted:\n{screen}"
    );
    term.send("I");
    let screen = term.wait_for("the other direction", |s| s.contains("sort ID↑"));
    assert!(
        row(&screen, "Generated") < row(&screen, "Second"),
        "{screen}"
    );

    // Drill down: the connector's jobs, the job, its dead letters; esc comes back.
    term.send("o");
    term.wait_for("gen's jobs", |s| {
        s.contains("connector=gen") && s.contains("pending")
    });
    term.send("\r");
    term.wait_for("the job detail with its dead letters", |s| {
        s.contains(&format!("Sync job {job_id}")) && s.contains("1 open")
    });
    term.send("D");
    term.wait_for("the job's dead letters", |s| {
        s.contains(&format!("job={}", &job_id[..8]))
            && s.contains("dl-of-this")
            && !s.contains("dl-of-anoth")
    });
    term.send("\x1b");
    term.wait_for("back to the job detail", |s| {
        s.contains(&format!("Sync job {job_id}"))
    });
    term.send("\x1b");
    term.wait_for("back to gen's jobs", |s| {
        s.contains("connector=gen") && !s.contains(&format!("Sync job {job_id}"))
    });
    term.send("\x1b");
    term.wait_for("back to the connectors", |s| {
        s.contains("Connectors [2]") && !s.contains("connector=gen")
    });
    term.send("q");
    assert!(wait_exit(&mut term));
}

#[test]
fn attaching_to_a_dead_address_says_unreachable() {
    let standin = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &standin);
    // A port nothing listens on.
    let (_refusing, port) = crate::ports::refused_port();
    let addr = format!("127.0.0.1:{port}");
    let mut term = spawn_console_with(home.path(), &["--attach", &addr]);
    let screen = term.wait_for("the attach state", |s| s.contains("unreachable since"));
    assert!(!screen.contains("attached"), "{screen}");
    // It stays after the toast is gone (it expires, and a view change clears it).
    term.send("1");
    term.wait_for("the state to stay without the toast", |s| {
        s.contains("unreachable since") && s.contains("Connectors") && !s.contains("attach: '")
    });
    term.send("q");
    assert!(wait_exit(&mut term));
}
