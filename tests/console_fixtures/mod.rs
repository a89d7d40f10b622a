//! Fixed data for the console tests: a state loaded through `update` with connectors, jobs,
//! a live sync with a half-open breaker, a node pool, dead letters, Kibana connectors and log
//! lines. No clock and no random ids: `now` is fixed and every id is spelled out.

#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use serde_json::json;
use syncdeck::backend::ClusterSummary;
use syncdeck::console::app::{Action, AppState, Init, ProfileInfo, ServiceType, Settings, update};
use syncdeck::console::effect::Effect;
use syncdeck::console::keymap::Keymap;
use syncdeck::console::live::NodeRow;
use syncdeck::console::theme::{ColorDepth, Theme};
use syncdeck::console::ui;
use syncdeck::engine::progress::{
    Counters, DocOutcome, Outcome, Phase, ProgressSnapshot, RateSample,
};
use syncdeck::kibana::{ActionConnector, KibanaStatus};
use syncdeck::model::{Connector, DeadLetter, SyncJob, Timestamp};

/// A sensitive configuration value: it must never be drawn (unless revealed) nor logged.
pub const SECRET: &str = "hunter2-SECRET-value-9000";
/// A second one, on the generator connector.
pub const TOKEN: &str = "tok-7f3a-SENSITIVE-token";

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

pub fn now() -> Timestamp {
    ts("2024-05-01T10:00:00Z")
}

pub fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

pub fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn profile(read_only: bool) -> ProfileInfo {
    ProfileInfo {
        name: "prod".into(),
        read_only,
        backend: "elasticsearch".into(),
        has_kibana: true,
    }
}

pub fn new_state(read_only: bool, size: (u16, u16)) -> AppState {
    // The fixtures' `pg-orders` stands for a connector this console's engine cannot run:
    // the catalog database types are left out of its list.
    let service_types = syncdeck::sources::builtin()
        .factories()
        .filter(|f| !matches!(f.service_type(), "postgresql" | "mysql"))
        .map(|f| ServiceType {
            service_type: f.service_type().to_string(),
            name: f.display_name().to_string(),
        })
        .collect();
    AppState::new(Init {
        profile: profile(read_only),
        settings: Settings {
            refresh_ms: 2000,
            mouse: false,
            theme: "default".into(),
            themes: vec![
                "default".into(),
                "light".into(),
                "high-contrast".into(),
                "monochrome".into(),
            ],
            profiles: vec!["prod".into(), "staging".into(), "embedded".into()],
            attach: None,
        },
        keymap: Keymap::defaults(),
        service_types,
        now: now(),
        size,
    })
}

pub fn connectors() -> Vec<Connector> {
    let pg: Connector = serde_json::from_value(json!({
        "id": "pg-orders", "name": "Orders DB", "service_type": "postgresql", "index_name": "search-orders",
        "status": "connected", "last_sync_status": "completed", "last_synced": "2024-05-01T09:45:00Z",
        "last_seen": "2024-05-01T09:59:50Z", "last_indexed_document_count": 120345, "last_deleted_document_count": 12,
        "scheduling": {"full": {"enabled": true, "interval": "0 0 * * * ?"}, "incremental": {"enabled": true, "interval": "0 */5 * * * ?"}},
        "filtering": [{"domain": "DEFAULT", "active": {"rules": [
            {"id": "r1", "policy": "exclude", "field": "status", "rule": "equals", "value": "draft", "order": 0},
            {"id": "DEFAULT", "policy": "include", "field": "_", "rule": "regex", "value": ".*", "order": 1}
        ]}, "draft": {"rules": []}}],
        "configuration": {
            "host": {"label": "Host", "order": 1, "value": "db.internal", "display": "textbox", "tooltip": "The database host."},
            "port": {"label": "Port", "order": 2, "type": "int", "display": "numeric", "value": 5432,
                     "validations": [{"type": "greater_than", "constraint": 0}, {"type": "less_than", "constraint": 65536}]},
            "database": {"label": "Database", "order": 3, "value": "orders"},
            "username": {"label": "Username", "order": 4, "value": "syncdeck"},
            "password": {"label": "Password", "order": 5, "sensitive": true, "value": SECRET},
            "ssl_enabled": {"label": "Use SSL", "order": 6, "type": "bool", "display": "toggle", "value": false},
            "ssl_ca": {"label": "SSL CA", "order": 7, "display": "textarea", "value": "",
                       "depends_on": [{"field": "ssl_enabled", "value": true}]},
            "fetch_size": {"label": "Rows per fetch", "order": 8, "type": "int", "display": "numeric", "value": 50, "required": false},
            "mode": {"label": "Mode", "order": 9, "display": "dropdown", "value": "fast",
                     "options": [{"label": "Fast", "value": "fast"}, {"label": "Thorough", "value": "thorough"}]}
        }
    }))
    .unwrap();
    let generator: Connector = serde_json::from_value(json!({
        "id": "demo-generator", "name": "Synthetic documents", "service_type": "generator", "index_name": "search-generated",
        "status": "configured", "last_sync_status": "error", "last_synced": "2024-05-01T07:00:00Z",
        "last_sync_error": "3 dead letters", "configuration": {
            "count": {"label": "Number of documents", "order": 1, "type": "int", "value": 10000},
            "api_token": {"label": "API token", "order": 2, "sensitive": true, "value": TOKEN, "required": false}
        }
    }))
    .unwrap();
    let dir: Connector = serde_json::from_value(json!({
        "id": "demo-directory", "name": "Runbooks", "service_type": "directory", "index_name": "search-runbooks",
        "status": "needs_configuration"
    }))
    .unwrap();
    vec![pg, generator, dir]
}

#[allow(clippy::too_many_arguments)]
fn job(
    id: &str,
    connector: &str,
    status: &str,
    kind: &str,
    indexed: u64,
    started: &str,
    completed: Option<&str>,
    worker: &str,
) -> SyncJob {
    serde_json::from_value(json!({
        "id": id, "connector": {"id": connector, "index_name": format!("search-{connector}"), "service_type": "postgresql"},
        "job_type": kind, "trigger_method": if kind == "full" { "scheduled" } else { "on_demand" }, "status": status,
        "created_at": started, "started_at": started, "completed_at": completed, "last_seen": "2024-05-01T09:59:58Z",
        "indexed_document_count": indexed, "deleted_document_count": 3, "total_document_count": indexed + 100,
        "indexed_document_volume": indexed / 1000, "worker_hostname": worker,
        "error": if status == "error" { json!("bulk request failed: 503 Service Unavailable") } else { json!(null) }
    }))
    .unwrap()
}

/// A `postgresql` job's metadata as its source reports it: tables done, one being read, one
/// skipped without a key and one the server refused, with Python's and the server's words.
pub fn tables_metadata() -> serde_json::Map<String, serde_json::Value> {
    let line = |status: &str, rows: u64, seconds: f64, note: Option<&str>| {
        let mut l = json!({"status": status, "rows": rows, "seconds": seconds,
            "rows_per_sec": if seconds > 0.0 { (rows as f64 / seconds).round() } else { 0.0 }});
        if let Some(n) = note {
            l["note"] = json!(n);
        }
        l
    };
    let refused = "ERROR: permission denied for table invoices (SQLSTATE 42501); grant SELECT on it to the connector's user, or leave it out of the connector's tables";
    json!({
        "commit_timestamps": "on (track_commit_timestamp)",
        "tables": {
            "customers": line("done", 12_000, 0.8, None),
            "orders": line("done", 120_345, 6.2, None),
            "audit_log": line("skipped", 0, 0.01, Some("no primary key")),
            "invoices": line("failed", 0, 0.02, Some(refused)),
            "products": line("done", 830, 0.1, None),
            "shipments": line("done", 5_400, 0.4, None),
            "order_items_with_a_rather_long_table_name_2024": line("reading", 48_210, 3.1, None),
        },
        "skipped_tables": {
            "audit_log": "Skipping table 'audit_log' from database 'shop' since no primary key is associated with it. Assign primary key to the table to index it in the next sync interval."
        },
        "failed_tables": {"invoices": refused},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// A live snapshot of a `postgresql` sync reading its tables.
pub fn db_snapshot(job_id: &str) -> ProgressSnapshot {
    let mut s = snapshot(job_id, 4200);
    s.connector_id = "pg-orders".into();
    s.index = "search-pg-orders".into();
    s.tables = syncdeck::model::TableProgress::from_metadata(&tables_metadata());
    s
}

pub fn jobs() -> Vec<SyncJob> {
    let mut jobs = vec![
        job(
            "job-live-0001",
            "demo-generator",
            "in_progress",
            "full",
            4200,
            "2024-05-01T09:59:30Z",
            None,
            "laptop/4242",
        ),
        job(
            "job-remote-0002",
            "pg-orders",
            "in_progress",
            "incremental",
            800,
            "2024-05-01T09:58:00Z",
            None,
            "worker-b/17",
        ),
        job(
            "job-done-0003",
            "pg-orders",
            "completed",
            "full",
            120345,
            "2024-05-01T09:40:00Z",
            Some("2024-05-01T09:45:00Z"),
            "worker-a/12",
        ),
        job(
            "job-err-0004",
            "demo-generator",
            "error",
            "full",
            9997,
            "2024-05-01T06:55:00Z",
            Some("2024-05-01T07:00:00Z"),
            "laptop/4242",
        ),
        job(
            "job-pend-0005",
            "demo-directory",
            "pending",
            "full",
            0,
            "2024-05-01T09:59:59Z",
            None,
            "",
        ),
    ];
    // The `postgresql` job another worker runs reports its tables at each check-in.
    jobs[1].metadata = tables_metadata();
    jobs
}

pub fn breaker() -> serde_json::Value {
    json!({
        "state": "half_open", "failure_rate": 0.42, "threshold": 0.5, "window_len": 20, "window_size": 50,
        "window_failures": 8, "min_calls": 10, "consecutive_failures": 3, "consecutive_threshold": 5,
        "time_to_next_probe_ms": null, "probes_in_flight": 1, "times_opened": 2, "not_closed_for_ms": 12500,
        "max_open_ms": 300000,
        "last_errors": [
            {"reason": "503 Service Unavailable from http://127.0.0.1:9201/_bulk", "ago_ms": 4000},
            {"reason": "connection refused (http://127.0.0.1:9202)", "ago_ms": 9000}
        ]
    })
}

pub fn snapshot(job_id: &str, handled: u64) -> ProgressSnapshot {
    let outcomes = [
        Outcome::Indexed,
        Outcome::Indexed,
        Outcome::Updated,
        Outcome::Retried,
        Outcome::DeadLettered,
        Outcome::Indexed,
    ];
    let recent = (0..40u64)
        .map(|i| {
            let outcome = outcomes[(i % outcomes.len() as u64) as usize];
            DocOutcome {
                id: format!("doc-{}", handled.saturating_sub(40) + i),
                outcome,
                bytes: 1024 + i * 7,
                latency_ms: 12 + i % 9,
                reason: match outcome {
                    Outcome::DeadLettered => Some(
                        "document_parsing_exception: failed to parse field [value] of type [long]"
                            .into(),
                    ),
                    Outcome::Retried => Some("es_rejected_execution_exception (429)".into()),
                    _ => None,
                },
            }
        })
        .collect();
    let rates = (0..90u64)
        .map(|i| RateSample {
            docs_per_sec: (300 + (i * 37) % 250) as f64,
            bytes_per_sec: ((300 + (i * 37) % 250) * 1100) as f64,
        })
        .collect();
    ProgressSnapshot {
        job_id: job_id.into(),
        connector_id: "demo-generator".into(),
        index: "search-generated".into(),
        started_at: ts("2024-05-01T09:59:30Z"),
        elapsed_ms: 12_300,
        phase: Phase::Extracting,
        step: None,
        error: None,
        counters: Counters {
            seen: handled + 120,
            indexed: handled - 9,
            updated: 6,
            deleted: 0,
            dead_lettered: 3,
            retried: 14,
            skipped: 0,
            bytes: handled * 1100,
            bulk_requests: 42,
            bulk_failures: 1,
        },
        total_hint: Some(10_000),
        in_flight: 2,
        queue_bytes: 131_072,
        queue_docs: 120,
        docs_per_sec: 412.0,
        bytes_per_sec: 453_200.0,
        avg_docs_per_sec: 341.5,
        avg_bulk_latency_ms: 18.4,
        eta_ms: Some(17_000),
        rates,
        breaker: serde_json::from_value(breaker()).ok(),
        recent,
        tables: Vec::new(),
    }
}

pub fn nodes() -> Vec<NodeRow> {
    vec![
        NodeRow {
            url: "http://127.0.0.1:9200".into(),
            alive: true,
            failures: 0,
            dead_for_ms: None,
        },
        NodeRow {
            url: "http://127.0.0.1:9201".into(),
            alive: false,
            failures: 3,
            dead_for_ms: Some(4000),
        },
        NodeRow {
            url: "http://127.0.0.1:9202".into(),
            alive: true,
            failures: 1,
            dead_for_ms: None,
        },
    ]
}

pub fn dead_letters() -> Vec<DeadLetter> {
    (1..=3)
        .map(|i| DeadLetter {
            id: i,
            connector_id: "demo-generator".into(),
            job_id: "job-err-0004".into(),
            index: "search-generated".into(),
            doc_id: format!("doc-{}", i * 1000 - 1),
            document: json!({"title": format!("Document {i}"), "value": "not-a-number", "category": "sync"}),
            error_type: "document_parsing_exception".into(),
            reason: "[1:2] failed to parse field [value] of type [long] in document".into(),
            status: Some(400),
            attempts: i as u32,
            first_failed_at: ts("2024-05-01T06:59:00Z"),
            last_failed_at: ts(&format!("2024-05-01T09:5{i}:00Z")),
            origin: Default::default(),
            state: Default::default(),
            resolved_at: None,
            resolution: None,
        })
        .collect()
}

pub fn kibana_connectors() -> Vec<ActionConnector> {
    serde_json::from_value(json!([
        {"id": "3f0c8a90-1111-4c2e-9a51-000000000001", "name": "audit-log", "connector_type_id": ".index",
         "config": {"index": "audit-log", "refresh": true}, "is_missing_secrets": false, "referenced_by_count": 2},
        {"id": "3f0c8a90-2222-4c2e-9a51-000000000002", "name": "pager", "connector_type_id": ".webhook",
         "config": {}, "is_missing_secrets": true, "is_deprecated": true, "referenced_by_count": 0}
    ]))
    .unwrap()
}

pub fn log_lines() -> Vec<String> {
    vec![
        "2024-05-01T09:59:30.000Z  INFO syncdeck: syncdeck starting version=\"0.1.0\"".into(),
        "2024-05-01T09:59:31.000Z  INFO syncdeck::console::io: console: sync job created connector=demo-generator job=job-live-0001".into(),
        "2024-05-01T09:59:40.000Z  WARN syncdeck::engine::sink: bulk request failed; retrying status=503".into(),
        "2024-05-01T09:59:52.000Z ERROR syncdeck::engine::dlq: document dead-lettered id=doc-999".into(),
    ]
}

/// A state with every view's data loaded through `update`, on the Connectors view.
pub fn loaded_state(read_only: bool, size: (u16, u16)) -> AppState {
    let mut s = new_state(read_only, size);
    let _ = update(&mut s, Action::Tick(now()));
    let results = vec![
        Action::ClusterLoaded(Ok(ClusterSummary {
            backend: "elasticsearch".into(),
            cluster_name: "prod-search".into(),
            version: "8.17.0".into(),
            health: "yellow".into(),
            number_of_nodes: 3,
            location: "http://127.0.0.1:9200".into(),
        })),
        Action::KibanaStatusLoaded(Ok(KibanaStatus {
            name: "kb".into(),
            version: "8.17.0".into(),
            level: "available".into(),
            summary: None,
        })),
        Action::ConnectorsLoaded(Ok(connectors())),
        Action::JobsLoaded(Ok(jobs())),
        Action::ActiveJobsLoaded(Ok(jobs()
            .into_iter()
            .filter(|j| j.status.is_active())
            .collect())),
        Action::LiveLoaded(vec![snapshot("job-live-0001", 4200)]),
        Action::PoolLoaded(Ok(Some(nodes()))),
        Action::DeadLettersLoaded(Ok((dead_letters(), 3))),
        Action::KibanaLoaded(Ok(kibana_connectors())),
        Action::LogsLoaded {
            lines: log_lines(),
            total: 4,
        },
    ];
    for a in results {
        let _ = update(&mut s, a);
    }
    s.toasts.clear();
    s
}

/// Applies actions, collecting every effect.
pub fn apply(state: &mut AppState, actions: impl IntoIterator<Item = Action>) -> Vec<Effect> {
    actions.into_iter().flat_map(|a| update(state, a)).collect()
}

pub fn theme(name: &str) -> Theme {
    Theme::builtin(name, ColorDepth::TrueColor).unwrap()
}

/// Draws the state into a test terminal.
pub fn draw(state: &AppState, theme: &Theme) -> Buffer {
    let (w, h) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| ui::draw(f, state, theme)).unwrap();
    terminal.backend().buffer().clone()
}

/// The buffer as lines of text.
pub fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One character per cell saying how it is emphasised without colour: `r` reversed,
/// `u` underlined, `b` bold, `d` dim, space for plain. Rows with no emphasis are `~`.
pub fn emphasis(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            let m = buffer[(x, y)].modifier;
            line.push(if m.contains(Modifier::REVERSED) {
                'r'
            } else if m.contains(Modifier::UNDERLINED) {
                'u'
            } else if m.contains(Modifier::BOLD) {
                'b'
            } else if m.contains(Modifier::DIM) {
                'd'
            } else {
                ' '
            });
        }
        let line = line.trim_end();
        out.push_str(if line.is_empty() { "~" } else { line });
        out.push('\n');
    }
    out
}

/// The console's real effect runner over an embedded backend in `db`: this process's engine
/// with the built-in sources, an in-memory dead-letter queue, and `log_tail` for the Logs
/// view.
/// Sends every log event of the process (all levels) into a tail the test can read, and
/// opens embedded handles that log there too. Once per process: the subscriber is global, so
/// the calling test runs in a process of its own (`support::own_process`).
pub fn traced_embedded_handles(
    db: &std::path::Path,
) -> (
    syncdeck::logging::LogTail,
    std::sync::Arc<syncdeck::console::io::Handles>,
) {
    use tracing_subscriber::layer::SubscriberExt;
    let tail = syncdeck::logging::LogTail::new(10_000);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(syncdeck::logging::tail_layer(tail.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    let handles = embedded_handles(db, Some(tail.clone()));
    (tail, handles)
}

pub fn embedded_handles(
    db: &std::path::Path,
    log_tail: Option<syncdeck::logging::LogTail>,
) -> std::sync::Arc<syncdeck::console::io::Handles> {
    use std::sync::Arc;
    use syncdeck::backend::{ControlPlane, DocumentStore};
    let backend = Arc::new(syncdeck::backend::embedded::EmbeddedBackend::open(db).unwrap());
    let control: Arc<dyn ControlPlane> = backend.clone();
    let documents: Arc<dyn DocumentStore> = backend;
    let dlq = Arc::new(syncdeck::engine::dlq::DeadLetterStore::open_in_memory(100).unwrap());
    let engine = syncdeck::engine::runner::Engine::new(syncdeck::engine::runner::EngineDeps {
        control: control.clone(),
        store: documents.clone(),
        dlq: dlq.clone(),
        registry: syncdeck::sources::builtin(),
        settings: Default::default(),
        breaker: Default::default(),
        worker: "test".into(),
    });
    Arc::new(syncdeck::console::io::Handles {
        profile_name: "embedded".into(),
        control,
        documents,
        elasticsearch: None,
        kibana: None,
        dlq,
        registry: syncdeck::sources::builtin(),
        engine,
        engine_settings: Default::default(),
        breaker_settings: Default::default(),
        log_tail,
        http: reqwest::Client::new(),
        shutdown: tokio_util::sync::CancellationToken::new(),
    })
}

/// Performs `effects` through the real runner and applies their answers (performing what
/// those ask for in turn) until none arrives for half a second.
pub async fn pump(
    state: &mut AppState,
    handles: &std::sync::Arc<syncdeck::console::io::Handles>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    effects: Vec<Effect>,
    tx: &tokio::sync::mpsc::UnboundedSender<Action>,
) {
    use syncdeck::console::io::perform;
    for e in effects {
        perform(handles, e, tx);
    }
    let quiet = std::time::Duration::from_millis(500);
    while let Ok(Some(action)) = tokio::time::timeout(quiet, rx.recv()).await {
        for e in update(state, action) {
            perform(handles, e, tx);
        }
    }
}

/// Like [`pump`], but keeps pumping (up to a minute) until `done` holds: a quiet half
/// second is not proof of an answer when the effect spawns a program on a loaded machine.
pub async fn pump_until(
    state: &mut AppState,
    handles: &std::sync::Arc<syncdeck::console::io::Handles>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    effects: Vec<Effect>,
    tx: &tokio::sync::mpsc::UnboundedSender<Action>,
    done: impl Fn(&AppState) -> bool,
) {
    pump(state, handles, rx, effects, tx).await;
    for _ in 0..120 {
        if done(state) {
            return;
        }
        pump(state, handles, rx, Vec::new(), tx).await;
    }
}

/// An `external` connector (not in the loaded table): the generic fields, a program, and a
/// secret environment holding [`SECRET`].
pub fn external_connector() -> Connector {
    use syncdeck::sources::{ExternalFactory, SourceFactory};
    let mut configuration = ExternalFactory.default_configuration();
    for (key, value) in [
        ("command", json!("python3")),
        ("args", json!(["main.py"])),
        ("secret_env", json!(format!("API_TOKEN={SECRET}"))),
    ] {
        configuration.0.get_mut(key).unwrap().value = value;
    }
    let mut connector: Connector = serde_json::from_value(json!({
        "id": "ext", "name": "Fake Airbyte", "service_type": "external", "index_name": "search-ext"
    }))
    .unwrap();
    connector.configuration = configuration;
    connector
}

/// What loading the spec of [`external_connector`]'s program gives: the generic fields and
/// three `config.*` ones, a secret among them.
pub fn external_spec() -> syncdeck::model::Configuration {
    use syncdeck::sources::{ExternalFactory, SourceFactory};
    let mut spec = ExternalFactory.default_configuration();
    let fields: syncdeck::model::Configuration = serde_json::from_value(json!({
        "config.count": {"label": "Records", "order": 9, "type": "int", "display": "numeric",
                         "value": 3, "default_value": 3, "required": false, "tooltip": "Records per stream"},
        "config.token": {"label": "API token", "order": 10, "sensitive": true, "value": ""},
        "config.mode": {"label": "Mode", "order": 11, "display": "dropdown", "value": "normal",
                        "default_value": "normal", "required": false,
                        "options": [{"label": "normal", "value": "normal"}, {"label": "garbage", "value": "garbage"}]}
    }))
    .unwrap();
    spec.0.extend(fields.0);
    spec
}
