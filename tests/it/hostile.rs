//! syncdeck against hostile input, end to end: secrets echoed back by a source in derived
//! forms (an `external` program's debug line with its `secret_env` token, an `http_api` 403
//! quoting the basic-auth header) must reach no output, log, job field or dead-letter file;
//! bodies, lines and files from outside are read with a bound; escape sequences from remote
//! text are shown, never obeyed; a closed stdout is told from a broken cluster connection; and
//! a panic reaches the log, masked.

use crate::console_fixtures;
use crate::support;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::{StandIn, StandInAuth, StandInOptions};
use syncdeck::secret::MASK;
use syncdeck::sources::{
    DataSource, HttpApiFactory, ItemSender, NdjsonFactory, SourceError, SourceFactory, SourceItem,
    SyncMode,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API_KEY: &str = "SE9TVElMRS1BUEktS0VZLTgxOTI3Mw";

// ------------------------------------------------------------------------------ helpers

/// An isolated home for one test: config, data and state dirs.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("syncdeck").unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SYNCDECK_DATA_DIR", self.path("data"))
            .env("SYNCDECK_STATE_DIR", self.path("state"))
            .env("SYNCDECK_LOG", "debug")
            .env("TEST_ES_API_KEY", API_KEY)
            .timeout(Duration::from_secs(120));
        if self.path("config.toml").exists() {
            cmd.env("SYNCDECK_CONFIG", self.path("config.toml"));
        }
        cmd
    }

    fn stand_in_config(&self, node: &str) {
        let path = self.path("config.toml");
        std::fs::write(
            &path,
            format!(
                "default_profile = \"test\"\n[profiles.test]\n\
                 [profiles.test.elasticsearch]\nnodes = [\"{node}\"]\n\
                 api_key = \"env:TEST_ES_API_KEY\"\nrequest_timeout = \"5s\"\nmax_retries = 0\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Every byte under a directory of the home (log files, the dead-letter database and
    /// its WAL), as text.
    fn files_text(&self, dir: &str) -> String {
        let mut text = String::new();
        let mut stack = vec![self.path(dir)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        text
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn run(home: &Home, args: &[&str]) -> Run {
    let output = home.cmd().args(args).output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(home: &Home, args: &[&str]) -> String {
    let r = run(home, args);
    assert_eq!(r.code, 0, "syncdeck {args:?}:\n{}", r.all());
    r.stdout
}

fn standin() -> StandIn {
    StandIn::start_blocking(StandInOptions {
        nodes: 1,
        auth: StandInAuth::ApiKey(API_KEY.to_string()),
        ..Default::default()
    })
}

/// Every form a secret may leak in: as is, percent-encoded, base64 (both alphabets), and the
/// part of the base64 of `user:secret` that encodes the secret alone.
fn leak_forms(secret: &str, user: &str) -> Vec<(String, String)> {
    let pair = STANDARD.encode(format!("{user}:{secret}"));
    // Characters 8.. of the pair's encoding hold only the secret's bits when `user:` is
    // 6 bytes long (a multiple of 3); the last 4 may hold padding.
    let inner = pair[8..pair.len() - 4].to_string();
    let percent: String =
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    vec![
        ("plain".into(), secret.to_string()),
        ("percent-encoded".into(), percent),
        ("form-encoded".into(), {
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect()
        }),
        ("base64".into(), STANDARD.encode(secret)),
        ("base64 url-safe".into(), URL_SAFE_NO_PAD.encode(secret)),
        (format!("base64 of {user}:secret"), pair),
        (format!("base64 of {user}:secret, inner part"), inner),
    ]
}

fn assert_no_leak(place: &str, text: &str, forms: &[(String, String)]) {
    for (what, form) in forms {
        assert!(
            !text.contains(form.as_str()),
            "{place} holds the secret ({what}: {form}):\n{}",
            &text[..text.len().min(4000)]
        );
    }
}

/// The `sync --json` summary (the last JSON document of the output).
fn summary(stdout: &str) -> Value {
    let at = stdout
        .rfind("{\n  \"report\"")
        .unwrap_or_else(|| panic!("no summary in: {stdout}"));
    serde_json::from_str(&stdout[at..]).unwrap()
}

fn create_connector(home: &Home, id: &str, service: &str, settings: &[String]) {
    ok(
        home,
        &[
            "connectors",
            "create",
            id,
            "--service-type",
            service,
            "--index-name",
            &format!("{id}-index"),
        ],
    );
    let mut set = vec!["connectors", "set", id];
    set.extend(settings.iter().map(String::as_str));
    ok(home, &set);
}

/// The stand-in's sync jobs of a connector, as the cluster stores them.
fn jobs_of(home: &Home, standin: &StandIn, connector: &str) -> Vec<Value> {
    let out = ok(home, &["jobs", "list", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let mut jobs = Vec::new();
    let rows = listed
        .as_array()
        .cloned()
        .or_else(|| listed["results"].as_array().cloned())
        .unwrap_or_default();
    for row in rows {
        let id = row["id"].as_str().unwrap_or_default().to_string();
        if let Some(job) = standin.sync_job(&id)
            && job["connector"]["id"] == connector
        {
            jobs.push(job);
        }
    }
    jobs
}

// ------------------------------------------------------------------------- leak: external

const EXTERNAL_SCRIPT: &str = r#"
import base64, json, os, sys, urllib.parse
tok = os.environ.get("EXT_TOKEN", "")
cmd = sys.argv[1]
stream = {"name": "s", "json_schema": {}, "supported_sync_modes": ["full_refresh"],
          "source_defined_primary_key": [["id"]]}
if cmd == "spec":
    print(json.dumps({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "properties": {}}}}))
elif cmd == "check":
    print(json.dumps({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}))
elif cmd == "discover":
    print(json.dumps({"type": "CATALOG", "catalog": {"streams": [stream]}}))
elif cmd == "read":
    print("debug: using token " + tok)
    print("debug: header Basic " + base64.b64encode(("svc-a:" + tok).encode()).decode())
    print("debug: url ?token=" + urllib.parse.quote(tok, safe=""))
    print("debug: b64 " + base64.b64encode(tok.encode()).decode())
    print(json.dumps({"type": "RECORD", "record": {"stream": "s", "data": {"id": "r1", "n": 1}, "emitted_at": 0}}))
    sys.stderr.write("stderr has " + tok + "\n")
"#;

#[test]
fn an_external_programs_debug_line_with_its_secret_env_token_leaks_nowhere() {
    let token = "ext-T0ken/with+chars=9f8e7d6c";
    let cluster = standin();
    let home = Home::new();
    home.stand_in_config(&cluster.es_urls()[0]);
    let script = home.path("source.py");
    std::fs::write(&script, EXTERNAL_SCRIPT).unwrap();
    create_connector(
        &home,
        "ext",
        "external",
        &[
            "command=python3".into(),
            format!("args={}", script.display()),
            format!("secret_env=EXT_TOKEN={token}"),
        ],
    );
    let sync = run(&home, &["sync", "ext", "--json"]);
    // Four non-protocol lines are dead-lettered; the record is indexed.
    assert_eq!(sync.code, 4, "{}", sync.all());
    let report = &summary(&sync.stdout)["report"];
    assert_eq!(report["counters"]["dead_lettered"], 4, "{report}");
    assert_eq!(report["counters"]["indexed"], 1, "{report}");
    let listed = ok(&home, &["dlq", "list", "--json"]);
    let shown = ok(&home, &["dlq", "list"]);
    assert!(listed.contains("debug: using token"), "{listed}");
    assert!(listed.contains(MASK), "the line is kept, masked: {listed}");

    let forms = leak_forms(token, "svc-a");
    assert_no_leak("the sync's output", &sync.all(), &forms);
    assert_no_leak("dlq list --json", &listed, &forms);
    assert_no_leak("dlq list", &shown, &forms);
    assert_no_leak("the log", &home.files_text("state"), &forms);
    assert_no_leak(
        "the data dir (dead letters)",
        &home.files_text("data"),
        &forms,
    );
    for job in jobs_of(&home, &cluster, "ext") {
        let error = job["error"].as_str().unwrap_or_default();
        assert_no_leak("the job's error in the cluster", error, &forms);
    }
    for (_, doc) in cluster.index_docs("ext-index") {
        assert_no_leak("the index", &doc.to_string(), &forms);
    }
}

// ------------------------------------------------------------------------- leak: http_api

/// A one-route HTTP server on 127.0.0.1 answering every request with `status` and a body
/// that echoes the request head, like a misconfigured proxy's error page, plus `extra`.
fn echo_server(status: &'static str, extra: String) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Serves until the test process ends; each connection one request.
            loop {
                let Ok(Ok((mut socket, _))) =
                    tokio::time::timeout(Duration::from_secs(120), listener.accept()).await
                else {
                    return;
                };
                let extra = extra.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut socket).await;
                    let body = format!("{extra} | you sent: {head}");
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
    });
    (url, handle)
}

async fn read_head(socket: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn http_api_basic_auth_echoed_in_a_403_leaks_nowhere_and_its_escapes_are_not_obeyed() {
    let password = "B4sic-pa55/word+x=yz";
    let user = "bobby";
    let percent: String =
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    // The page also tries to retitle the terminal and clear the screen, and says "Broken
    // pipe", which must not pass for a closed stdout.
    let extra = format!("\u{1b}]0;pwned\u{7}\u{1b}[2J Broken pipe pw={percent}");
    let (api, _server) = echo_server("403 Forbidden", extra);
    let cluster = standin();
    let home = Home::new();
    home.stand_in_config(&cluster.es_urls()[0]);
    create_connector(
        &home,
        "api",
        "http_api",
        &[
            format!("url={api}/items"),
            "auth=basic".into(),
            format!("username={user}"),
            format!("password={password}"),
        ],
    );
    let sync = run(&home, &["sync", "api"]);
    assert_eq!(sync.code, 1, "the sync fails: {}", sync.all());
    assert!(sync.stderr.contains("403"), "{}", sync.stderr);
    assert!(
        sync.stderr
            .contains(&format!("Authorization: Basic {MASK}"))
            || sync
                .stderr
                .contains(&format!("authorization: Basic {MASK}")),
        "the echoed header is shown masked: {}",
        sync.stderr
    );
    assert!(
        !sync.all().contains('\u{1b}'),
        "raw ESC on the terminal: {:?}",
        sync.all()
    );
    assert!(sync.stderr.contains("\\x1b]0;pwned"), "{}", sync.stderr);

    let forms = leak_forms(password, user);
    assert_no_leak("the sync's output", &sync.all(), &forms);
    assert_no_leak("the log", &home.files_text("state"), &forms);
    assert_no_leak("the data dir", &home.files_text("data"), &forms);
    let jobs = jobs_of(&home, &cluster, "api");
    assert!(!jobs.is_empty(), "the job is in the cluster");
    for job in &jobs {
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains("403"), "the job's error says why: {job}");
        // (The job's connector snapshot holds the configuration, as Elastic's own service
        // writes it; the error is what syncdeck writes.)
        assert_no_leak("the job's error in the cluster", error, &forms);
    }
    let shown = ok(&home, &["jobs", "show", jobs[0]["id"].as_str().unwrap()]);
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("\\x1b[2J"), "{shown}");
    assert_no_leak("jobs show", &shown, &forms);
}

// ------------------------------------------------------------------------ bounded bodies

/// A server that answers every request with `head` and then streams `x`s for as long as
/// the client reads (up to 1 GiB), counting what it sent and whether the client hung up.
struct Flood {
    url: String,
    sent: Arc<AtomicU64>,
    hung_up: Arc<AtomicBool>,
}

async fn flood(status: &'static str) -> Flood {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let hung_up = Arc::new(AtomicBool::new(false));
    let (s, h) = (sent.clone(), hung_up.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (s, h) = (s.clone(), h.clone());
            tokio::spawn(async move {
                read_head(&mut socket).await;
                let total: u64 = 1 << 30;
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {total}\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    h.store(true, Ordering::SeqCst);
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = total;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        h.store(true, Ordering::SeqCst);
                        return;
                    }
                    s.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
            });
        }
    });
    Flood { url, sent, hung_up }
}

fn http_source(values: Value) -> Box<dyn DataSource> {
    let mut config = HttpApiFactory.default_configuration();
    for (key, value) in values.as_object().unwrap() {
        config
            .0
            .get_mut(key)
            .unwrap_or_else(|| panic!("no field '{key}'"))
            .value = value.clone();
    }
    HttpApiFactory.validate(&config).expect("valid");
    HttpApiFactory.create(&config).expect("a source")
}

async fn run_source(source: &mut dyn DataSource) -> (Vec<SourceItem>, Result<(), SourceError>) {
    let (tx, mut rx) = ItemSender::channel(10_000);
    let drain = async move {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    };
    let (result, items) = tokio::join!(source.run(SyncMode::Full, tx), drain);
    (items, result.map(|_| ()))
}

/// Waits (bounded) until the server saw the client go away; returns what it had sent.
async fn hang_up_seen(flood: &Flood) -> u64 {
    for _ in 0..600 {
        if flood.hung_up.load(Ordering::SeqCst) {
            return flood.sent.load(Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the client never hung up; {} bytes sent",
        flood.sent.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_1_gib_error_body_is_read_only_up_to_max_error_body_bytes() {
    let flood = flood("404 Not Found").await;
    let mut source = http_source(json!({"url": format!("{}/items", flood.url), "max_retries": 0}));
    let (_, result) = run_source(source.as_mut()).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("404"), "{error}");
    assert!(error.contains("max_error_body_bytes = 65536"), "{error}");
    drop(source);
    let sent = hang_up_seen(&flood).await;
    // Socket buffers hold a few MiB; the body was 1 GiB.
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
}

#[tokio::test]
async fn a_page_larger_than_max_response_bytes_fails_unread() {
    let flood = flood("200 OK").await;
    let mut source = http_source(json!({
        "url": format!("{}/items", flood.url),
        "max_retries": 0,
        "max_response_bytes": 1 << 20,
    }));
    let (_, result) = run_source(source.as_mut()).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("max_response_bytes = 1048576"), "{error}");
    drop(source);
    let sent = hang_up_seen(&flood).await;
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
}

#[tokio::test]
async fn an_oauth_token_answer_larger_than_max_response_bytes_is_refused() {
    let flood = flood("200 OK").await;
    let mut source = http_source(json!({
        "url": format!("{}/items", flood.url),
        "max_retries": 0,
        "max_response_bytes": 1 << 20,
        "auth": "oauth2_client_credentials",
        "token_url": format!("{}/oauth/token", flood.url),
        "client_id": "id",
        "client_secret": "client-s3cret-value",
    }));
    let (_, result) = run_source(source.as_mut()).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("token endpoint"), "{error}");
    assert!(error.contains("max_response_bytes = 1048576"), "{error}");
    drop(source);
    let sent = hang_up_seen(&flood).await;
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
}

// --------------------------------------------------------------------------- ndjson lines

fn ndjson_source(path: &Path, max_line_bytes: i64) -> Box<dyn DataSource> {
    let mut config = NdjsonFactory.default_configuration();
    config.0.get_mut("path").unwrap().value = json!(path.display().to_string());
    config.0.get_mut("max_line_bytes").unwrap().value = json!(max_line_bytes);
    NdjsonFactory.create(&config).expect("a source")
}

#[tokio::test]
async fn a_line_over_max_line_bytes_is_dead_lettered_with_a_preview_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ndjson");
    let long = format!("{{\"id\":\"big\",\"blob\":\"{}\"}}", "y".repeat(5 << 20));
    std::fs::write(
        &path,
        format!("{{\"id\":\"a\"}}\n{long}\n{{\"id\":\"b\"}}\n"),
    )
    .unwrap();
    let (items, result) = run_source(ndjson_source(&path, 1 << 20).as_mut()).await;
    result.unwrap();
    let mut upserted = Vec::new();
    let mut invalid = Vec::new();
    for item in items {
        match item {
            SourceItem::Upsert(d) => upserted.push(d.id),
            SourceItem::Invalid { id, reason, raw } => invalid.push((id, reason, raw)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(upserted, ["a", "b"], "reading went on after the long line");
    let [(id, reason, raw)] = invalid.as_slice() else {
        panic!("{invalid:?}")
    };
    assert_eq!(id, "line-2");
    assert!(reason.starts_with("line 2: "), "{reason}");
    assert!(
        reason.contains(&format!("{} bytes", long.len())),
        "{reason}"
    );
    assert!(reason.contains("max_line_bytes = 1048576"), "{reason}");
    let preview = raw["preview"].as_str().unwrap();
    assert_eq!(preview.len(), 1024);
    assert!(long.starts_with(preview));
    assert_eq!(raw["size_bytes"], long.len());
}

// ------------------------------------------------------------------- escapes in the console

#[test]
fn the_console_shows_escape_sequences_in_remote_text_instead_of_dropping_them() {
    use console_fixtures::*;
    use crossterm::event::KeyCode;
    use syncdeck::console::app::Action;
    let hostile = "bad\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let mut s = loaded_state(false, (160, 48));
    let mut jobs = jobs();
    for j in &mut jobs {
        j.error = Some(format!("job error {hostile}"));
    }
    let mut letters = dead_letters();
    for d in &mut letters {
        d.doc_id = format!("doc{hostile}");
    }
    apply(
        &mut s,
        [
            Action::JobsLoaded(Ok(jobs)),
            Action::DeadLettersLoaded(Ok((letters, 3))),
        ],
    );
    let theme = theme("default");
    apply(
        &mut s,
        [ch('2'), ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)],
    );
    let job = text(&draw(&s, &theme));
    assert!(
        job.contains("job error bad\\x1b]0;pwned\\x07\\x1b[2J"),
        "{job}"
    );
    let mut s2 = loaded_state(false, (160, 48));
    let mut letters = dead_letters();
    for d in &mut letters {
        d.doc_id = format!("doc{hostile}");
    }
    apply(&mut s2, [Action::DeadLettersLoaded(Ok((letters, 3)))]);
    apply(&mut s2, [ch('5'), key(KeyCode::Enter)]);
    let letter = text(&draw(&s2, &theme));
    assert!(
        letter.contains("docbad\\x1b]0;pwned\\x07\\x1b[2J"),
        "{letter}"
    );
    for screen in [&job, &letter] {
        assert!(!screen.contains('\u{1b}') && !screen.contains('\u{7}'));
    }
}

/// A secret this process knows (here registered as a profile's or a job's would be), echoed by
/// remote text, is masked on the console screen: in a job's error and in a document id, in
/// the list and in the detail.
#[test]
fn the_console_masks_a_known_secret_in_remote_text() {
    use console_fixtures::*;
    use crossterm::event::KeyCode;
    use syncdeck::console::app::Action;
    let secret = "console-echo-secret-41b7e2";
    syncdeck::secret::mask::register(secret);
    let theme = theme("default");
    let mut s = loaded_state(false, (160, 48));
    let mut jobs = jobs();
    for j in &mut jobs {
        j.error = Some(format!("refused token {secret}"));
    }
    apply(&mut s, [Action::JobsLoaded(Ok(jobs))]);
    apply(
        &mut s,
        [ch('2'), ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)],
    );
    let job = text(&draw(&s, &theme));
    assert!(job.contains(&format!("refused token {MASK}")), "{job}");

    let mut s2 = loaded_state(false, (160, 48));
    let mut letters = dead_letters();
    for d in &mut letters {
        d.doc_id = format!("doc-{secret}");
    }
    apply(&mut s2, [Action::DeadLettersLoaded(Ok((letters, 3)))]);
    apply(&mut s2, [ch('5')]);
    let list = text(&draw(&s2, &theme));
    apply(&mut s2, [key(KeyCode::Enter)]);
    let letter = text(&draw(&s2, &theme));
    for screen in [&job, &list, &letter] {
        assert!(!screen.contains(secret), "{screen}");
    }
    assert!(list.contains(&format!("doc-{MASK}")), "{list}");
    assert!(letter.contains(&format!("doc-{MASK}")), "{letter}");
}

// ------------------------------------------------------------------------- closed pipes

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let home = Home::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("syncdeck"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.dir.path())
        .env("SYNCDECK_DATA_DIR", home.path("data"))
        .env("SYNCDECK_STATE_DIR", home.path("state"))
        .args(["sources"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
}

/// A node that answers everything with an error whose text says "Broken pipe".
fn broken_pipe_node() -> String {
    let body = json!({"error": {"type": "io_exception", "reason": "Broken pipe (os error 32)",
                                "root_cause": [{"type": "io_exception", "reason": "Broken pipe (os error 32)"}]},
                      "status": 500})
    .to_string();
    let (url, _handle) = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.read(&mut buf);
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
                     x-elastic-product: Elasticsearch\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (url, handle)
    };
    url
}

#[test]
fn a_broken_pipe_from_the_cluster_is_an_error_not_a_silent_success() {
    let home = Home::new();
    home.stand_in_config(&broken_pipe_node());
    let r = run(&home, &["connectors", "list"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("Broken pipe"),
        "the error is shown: {}",
        r.all()
    );
}

// ------------------------------------------------------------------------------- panics

#[test]
fn a_panic_is_logged_with_its_secrets_masked() {
    if support::own_process::ran_in_child(
        module_path!(),
        "a_panic_is_logged_with_its_secrets_masked",
    ) {
        return;
    }
    let home = Home::new();
    let logs = home.path("logs");
    let guard = syncdeck::logging::init(&logs, Some("info")).unwrap();
    syncdeck::logging::install_panic_hook();
    let secret = syncdeck::secret::Secret::new("panic-s3cret-value-77");
    let encoded = STANDARD.encode(format!("svc-a:{}", secret.expose()));
    let message = format!("boom with {} and Basic {encoded}", secret.expose());
    let joined = std::thread::Builder::new()
        .name("doomed".into())
        .spawn(move || panic!("{message}"))
        .unwrap()
        .join();
    assert!(joined.is_err());
    // Back to the default hook (this test runs in a process of its own anyway).
    let _ = std::panic::take_hook();
    drop(guard);
    let mut text = String::new();
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    assert!(text.contains("syncdeck panicked"), "{text}");
    assert!(text.contains("thread 'doomed'"), "{text}");
    assert!(text.contains(&format!("boom with {MASK}")), "{text}");
    assert_no_leak(
        "the log",
        &text,
        &leak_forms("panic-s3cret-value-77", "svc-a"),
    );
}

// ---------------------------------------------------------------------------------- TLS

/// An HTTPS node with a self-signed certificate no default trust accepts.
fn untrusted_tls_node() -> String {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![generated.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok(Ok((tcp, _))) =
                tokio::time::timeout(Duration::from_secs(120), listener.accept()).await
            {
                let acceptor = acceptor.clone();
                // The handshake is refused by the client: nothing more to do.
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
    });
    url
}

#[test]
fn a_certificate_that_fails_verification_is_not_called_unreachable() {
    let home = Home::new();
    home.stand_in_config(&untrusted_tls_node());
    for args in [&["check"][..], &["connectors", "list"][..]] {
        let r = run(&home, args);
        // Exit 1, not 3: retrying cannot help, the trust settings (tls.ca_file,
        // tls.fingerprint) must change; and the words agree with the code.
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(r.all().contains("certificate"), "{args:?}: {}", r.all());
        assert!(
            !r.all().to_lowercase().contains("unreachable"),
            "{args:?}: {}",
            r.all()
        );
    }
}

// ------------------------------------------------------------------------- measurements

/// Peak resident memory of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The memory the hostile inputs of issue 10 cost, for README (peaks only grow, so the
/// smallest comes first). Run alone:
/// `cargo test --release --test it hostile::rss -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement; run alone, its numbers are in README"]
async fn rss_of_hostile_inputs() {
    println!("start: peak RSS {} MiB", peak_rss_mib());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line.ndjson");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        file.write_all(b"{\"id\":\"big\",\"blob\":\"").unwrap();
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..100 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\"}\n{\"id\":\"after\"}\n").unwrap();
    }
    let (items, result) = run_source(ndjson_source(&path, 16 << 20).as_mut()).await;
    result.unwrap();
    assert_eq!(items.len(), 2);
    println!(
        "ndjson with one 100 MB line: peak RSS {} MiB",
        peak_rss_mib()
    );
    let flood404 = flood("404 Not Found").await;
    let mut source =
        http_source(json!({"url": format!("{}/items", flood404.url), "max_retries": 0}));
    let (_, result) = run_source(source.as_mut()).await;
    assert!(result.is_err());
    println!(
        "http_api 404 with a 1 GiB body: peak RSS {} MiB",
        peak_rss_mib()
    );

    let flood200 = flood("200 OK").await;
    let mut source = http_source(json!({
        "url": format!("{}/items", flood200.url),
        "max_retries": 0,
        "auth": "oauth2_client_credentials",
        "token_url": format!("{}/oauth/token", flood200.url),
        "client_id": "id",
        "client_secret": "client-s3cret-value",
    }));
    let (_, result) = run_source(source.as_mut()).await;
    assert!(result.is_err());
    println!(
        "OAuth token answer of 1 GiB (default max_response_bytes): peak RSS {} MiB",
        peak_rss_mib()
    );
}

#[test]
fn a_document_id_with_escape_sequences_is_shown_escaped_by_the_cli() {
    use syncdeck::engine::dlq::{DeadLetterStore, NewDeadLetter};
    let home = Home::new();
    let store = DeadLetterStore::open(&home.path("data").join("dead-letters.sqlite3"), 100)
        .expect("the dead-letter store");
    store
        .append_batch(&[NewDeadLetter {
            connector_id: "c1".into(),
            job_id: "j1".into(),
            index: "i1".into(),
            doc_id: "d\u{1b}]0;pwned\u{7}\u{1b}[2J".into(),
            document: "{\"a\":1}".into(),
            error_type: "mapper_parsing_exception".into(),
            reason: "bad \u{1b}[31mred".into(),
            status: Some(400),
        }])
        .unwrap();
    drop(store);
    // Written without a cluster: listed with the entries of every cluster.
    let listed = ok(&home, &["dlq", "list", "--all-clusters"]);
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\u{7}'),
        "{listed:?}"
    );
    assert!(listed.contains("d\\x1b]0;pwned\\x07"), "{listed}");
}

/// A secret of the running profile that remote text echoes (a job's `error` written by another
/// service, a dead letter's document id written before masking reached it) is shown masked on
/// stdout, in human and JSON output alike.
#[test]
fn a_secret_echoed_in_a_job_error_or_a_document_id_is_masked_on_stdout() {
    use syncdeck::engine::dlq::{DeadLetterStore, NewDeadLetter};
    let standin = standin();
    let home = Home::new();
    home.stand_in_config(&standin.es_urls()[0]);
    ok(
        &home,
        &[
            "connectors",
            "create",
            "echo",
            "--service-type",
            "ndjson",
            "--index-name",
            "echo-index",
        ],
    );
    let started: Value =
        serde_json::from_str(&ok(&home, &["jobs", "start", "echo", "--json"])).unwrap();
    let job = started["id"].as_str().unwrap().to_string();
    let mut doc = standin.sync_job(&job).unwrap();
    doc.as_object_mut().unwrap().remove("id");
    // The job's own connector secret too (its snapshot's sensitive value), echoed in the error.
    let token = "job-snapshot-token-5d1c";
    doc["connector"]["configuration"] = json!({
        "token": {"label": "Token", "sensitive": true, "value": token, "type": "str"}
    });
    doc["error"] = json!(format!(
        "401 from the cluster: ApiKey {API_KEY} was refused; source said {token}"
    ));
    standin.put_doc(".elastic-connectors-sync-jobs", &job, doc);

    let store = DeadLetterStore::open(&home.path("data").join("dead-letters.sqlite3"), 100)
        .expect("the dead-letter store");
    store
        .append_batch(&[NewDeadLetter {
            connector_id: "echo".into(),
            job_id: job.clone(),
            index: "echo-index".into(),
            doc_id: format!("doc-{API_KEY}"),
            document: "{\"a\":1}".into(),
            error_type: "mapper_parsing_exception".into(),
            reason: format!("rejected {API_KEY}"),
            status: Some(400),
        }])
        .unwrap();
    drop(store);

    let forms = leak_forms(API_KEY, "elastic");
    for args in [
        vec!["jobs", "show", job.as_str()],
        vec!["jobs", "show", job.as_str(), "--json"],
        vec!["dlq", "list", "--all-clusters"],
        vec!["dlq", "list", "--all-clusters", "--json"],
    ] {
        let out = ok(&home, &args);
        assert_no_leak(&format!("{args:?}"), &out, &forms[..1]);
        assert!(!out.contains(token), "{args:?}: {out}");
        assert!(out.contains(MASK), "{args:?}: {out}");
    }
}
