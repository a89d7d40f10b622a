//! The `external` source against a small Airbyte-protocol program of the project's own
//! (tests/fixtures/airbyte/fake_source.py): every message type, spec → fields, check, a
//! misbehaving child (garbage lines, a crash, a trace error, a hang then cancel), backpressure
//! on a fast child, incremental reads resumed from STATE, secrets kept out of logs, one sync
//! end to end through the engine into the embedded backend, and a published Airbyte source
//! (`source-faker`) when it is installed. The throughput benchmark is an ignored test.

use crate::engine_util;
use crate::external_util;

use external_util::{TOKEN, fake, run, script, source};

use engine_util::{create_connector, dead_letters, embedded_engine, store_ids};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use syncdeck::backend::{ConfigurationUpdate, ControlPlane, DocumentStore};
use syncdeck::engine::runner::JobEnd;
use syncdeck::model::{DisplayType, FieldType, JobType, TriggerMethod};
use syncdeck::secret::MASK;
use syncdeck::sources::{
    DataSource, Document, EXTERNAL_INHERITED_ENV, ExternalFactory, ItemSender, SourceError,
    SourceFactory, SourceItem, SyncMode, spec_fields,
};
use tokio_util::sync::CancellationToken;

fn upserts(items: &[SourceItem]) -> Vec<&Document> {
    items
        .iter()
        .filter_map(|i| match i {
            SourceItem::Upsert(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn ids(items: &[SourceItem]) -> Vec<String> {
    upserts(items).iter().map(|d| d.id.clone()).collect()
}

fn users_state(updated: i64) -> Value {
    json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"updated": updated}}})
}

fn cursor(states: &[Value]) -> Value {
    json!({ "airbyte_state": states })
}

/// Polls until `check` holds; panics after `limit`.
async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A process that exists and is not a zombie.
fn alive(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

async fn read_pids(path: &std::path::Path) -> Value {
    wait_until("the pid file", Duration::from_secs(10), || {
        std::fs::read_to_string(path).is_ok_and(|t| serde_json::from_str::<Value>(&t).is_ok())
    })
    .await;
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ------------------------------------------------------------------------------- messages

#[tokio::test]
async fn every_message_type_becomes_the_right_item() {
    let config = fake(json!({"count": 4}), &[("stream", json!("users, events"))]);
    let mut src = source(&config);
    let lines = src.lines_read();
    let (items, result) = run(&mut src, SyncMode::Full).await;

    let expected_cursor = cursor(&[users_state(4)]);
    assert_eq!(result.unwrap(), Some(expected_cursor.clone()));
    // LOG, 4 users with STATE after the 2nd and 4th, a final STATE, 4 events, TRACE, CONTROL.
    assert_eq!(lines.load(Ordering::Relaxed), 14);
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| match i {
            SourceItem::Upsert(_) => "upsert",
            SourceItem::Checkpoint(_) => "checkpoint",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "upsert",
            "upsert",
            "checkpoint",
            "upsert",
            "upsert",
            "checkpoint",
            "checkpoint",
            "upsert",
            "upsert",
            "upsert",
            "upsert"
        ]
    );
    // Two streams share the index: ids carry the stream; composite keys are joined.
    assert_eq!(
        ids(&items),
        [
            "users/1",
            "users/2",
            "users/3",
            "users/4",
            "events/2024-01-01|0",
            "events/2024-01-02|1",
            "events/2024-01-03|2",
            "events/2024-01-04|3"
        ]
    );
    let checkpoints: Vec<&Value> = items
        .iter()
        .filter_map(|i| match i {
            SourceItem::Checkpoint(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(checkpoints[0], &cursor(&[users_state(2)]));
    assert_eq!(checkpoints[2], &expected_cursor);
    let first = upserts(&items)[0];
    assert_eq!(first.fields["name"], "user 1");
    assert_eq!(first.fields["_airbyte_stream"], "users");
    assert_eq!(first.fields["_airbyte_emitted_at"], 1_700_000_000_000i64);
}

#[tokio::test]
async fn a_single_stream_keeps_its_primary_key_as_the_id() {
    let mut src = source(&fake(json!({"count": 2}), &[("stream", json!("users"))]));
    let (items, result) = run(&mut src, SyncMode::Full).await;
    result.unwrap();
    assert_eq!(ids(&items), ["1", "2"]);
}

#[tokio::test]
async fn ping_runs_check_and_a_failed_check_names_the_reason_without_the_secret() {
    let mut good = source(&fake(json!({}), &[]));
    good.ping().await.expect("check succeeds");

    let mut bad = source(&fake(json!({"mode": "fail"}), &[]));
    let err = bad.ping().await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("the connection check failed: token {MASK} was rejected")
    );
}

#[tokio::test]
async fn a_missing_program_is_unavailable() {
    let mut config = fake(json!({}), &[]);
    config.0.get_mut("command").unwrap().value = json!("/no/such/program-xyz");
    let err = source(&config).ping().await.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot run '/no/such/program-xyz'"),
        "{err}"
    );
}

// ----------------------------------------------------------------------------- spec

#[tokio::test]
async fn spec_properties_become_fields_that_drive_the_program() {
    let args = [script()];
    let env = [("FAKE_TOKEN".to_string(), TOKEN.to_string())];
    let mut config = spec_fields("python3", &args, &env).await.expect("spec");

    assert_eq!(config.0["command"].value, "python3");
    assert_eq!(config.0["args"].value, json!(args));
    let count = &config.0["config.count"];
    assert_eq!(
        (count.field_type, count.display),
        (FieldType::Int, DisplayType::Numeric)
    );
    assert_eq!(
        (count.label.as_str(), count.value.clone()),
        ("Records", json!(3))
    );
    let token = &config.0["config.token"];
    assert!(token.sensitive && token.required, "{token:?}");
    let mode = &config.0["config.mode"];
    assert_eq!(
        (mode.display, mode.options.len()),
        (DisplayType::Dropdown, 3)
    );
    assert_eq!(config.0["config.ratio"].field_type, FieldType::Str);
    assert_eq!(config.0["config.tags"].field_type, FieldType::List);
    assert_eq!(config.0["config.verbose"].field_type, FieldType::Bool);
    assert!(!config.0.contains_key("config.credentials"));
    let tooltip = config.0["config"].tooltip.clone().unwrap_or_default();
    assert!(tooltip.contains("credentials"), "{tooltip}");
    let generic = ExternalFactory.default_configuration().0.len() as i64;
    assert_eq!(
        count.order,
        Some(generic + 1),
        "spec fields follow the generic ones"
    );

    // The fields' values reach the program's config file with their JSON types.
    let mut set = |key: &str, value: Value| config.0.get_mut(key).unwrap().value = value;
    set("config.count", json!("2"));
    set("config.token", json!("abc-secret"));
    set("stream", json!("users"));
    set("timeout", json!(20));
    let mut src = source(&config);
    src.ping().await.unwrap();
    let (items, result) = run(&mut src, SyncMode::Full).await;
    result.unwrap();
    assert_eq!(ids(&items), ["1", "2"]);
}

// -------------------------------------------------------------------------- misbehaving

#[tokio::test]
async fn garbage_lines_are_invalid_items_naming_their_line_and_the_sync_goes_on() {
    let mut src = source(&fake(
        json!({"mode": "garbage"}),
        &[("stream", json!("users"))],
    ));
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert_eq!(result.unwrap(), None);
    assert_eq!(ids(&items), ["1", "2"]);
    let invalid: Vec<(String, String, Value)> = items
        .into_iter()
        .filter_map(|i| match i {
            SourceItem::Invalid { id, reason, raw } => Some((id, reason, raw)),
            _ => None,
        })
        .collect();
    let got: Vec<(&str, &str)> = invalid
        .iter()
        .map(|(id, reason, _)| (id.as_str(), reason.as_str()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].0, "line-2");
    assert!(got[0].1.starts_with("line 2: not JSON"), "{}", got[0].1);
    assert_eq!(
        got[1],
        ("line-3", "line 3: not an Airbyte message: no 'type'")
    );
    assert_eq!(
        got[2],
        ("line-4", "line 4: unknown Airbyte message type 'BOGUS'")
    );
    assert_eq!(
        got[3],
        (
            "line-5",
            "line 5: record of stream 'users': no usable value for the primary key 'id'"
        )
    );
    assert_eq!(invalid[0].2, json!("this is not json"));
    assert_eq!(invalid[3].2, json!({"name": "no id"}));
}

#[tokio::test]
async fn an_early_non_zero_exit_fails_with_the_last_stderr_lines_masked() {
    let mut src = source(&fake(
        json!({"mode": "crash"}),
        &[("stream", json!("users"))],
    ));
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert_eq!(ids(&items), ["1"], "what came before the crash is kept");
    let err = result.unwrap_err();
    assert!(matches!(err, SourceError::Failed(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("'python3 read' failed with exit status 3; last stderr lines:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("stderr line 24 token={MASK}")),
        "{text}"
    );
    assert!(text.contains("stderr line 5 token"), "{text}");
    assert!(
        !text.contains("stderr line 4 token"),
        "only the last 20 lines: {text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn a_trace_error_becomes_the_job_error() {
    let mut src = source(&fake(
        json!({"mode": "trace"}),
        &[("stream", json!("users"))],
    ));
    let (_, result) = run(&mut src, SyncMode::Full).await;
    let text = result.unwrap_err().to_string();
    assert_eq!(
        text,
        "the connector reported an error: the API said no (failure type 'config_error') (exit status 1)"
    );
}

#[tokio::test]
async fn a_cancelled_read_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids.json");
    let config = fake(
        json!({"mode": "hang", "pid_file": pid_file.to_string_lossy()}),
        &[("stream", json!("users"))],
    );
    let mut src = source(&config);
    let (tx, mut rx) = ItemSender::channel(16);
    let mut read = Box::pin(src.run(SyncMode::Full, tx));
    let first = tokio::select! {
        item = rx.recv() => item,
        result = &mut read => panic!("the read ended early: {result:?}"),
    };
    assert!(
        matches!(first, Some(SourceItem::Upsert(ref d)) if d.id == "1"),
        "{first:?}"
    );
    let pids = read_pids(&pid_file).await;
    let (child, grandchild) = (
        pids["child"].as_u64().unwrap(),
        pids["grandchild"].as_u64().unwrap(),
    );
    assert!(
        alive(child) && alive(grandchild),
        "both run before the cancel"
    );

    // What the engine does on cancel: drop the source's future.
    drop(read);
    wait_until(
        "the program and its child to die",
        Duration::from_secs(10),
        || !alive(child) && !alive(grandchild),
    )
    .await;
}

#[tokio::test]
async fn reading_waits_for_the_engine_so_a_fast_program_blocks() {
    const CAPACITY: usize = 16;
    const COUNT: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids.json");
    let config = fake(
        json!({"mode": "bulk", "count": COUNT, "pid_file": pid_file.to_string_lossy()}),
        &[("stream", json!("users"))],
    );
    let mut src = source(&config);
    let lines = src.lines_read();
    let (tx, mut rx) = ItemSender::channel(CAPACITY);
    let read = tokio::spawn(async move { src.run(SyncMode::Full, tx).await });

    let child = read_pids(&pid_file).await["child"].as_u64().unwrap();
    // Nothing is consumed: reading must stop once the channel is full.
    let mut last = u64::MAX;
    let mut steady = 0;
    wait_until("reading to stop", Duration::from_secs(10), || {
        let now = lines.load(Ordering::Relaxed);
        steady = if now == last && now > 0 {
            steady + 1
        } else {
            0
        };
        last = now;
        steady >= 5
    })
    .await;
    let read_ahead = lines.load(Ordering::Relaxed);
    assert!(
        read_ahead <= CAPACITY as u64 + 1,
        "read {read_ahead} lines while only {CAPACITY} fit in the channel"
    );
    assert!(
        alive(child),
        "the program is blocked on its full pipe, not finished"
    );

    let mut upserts = 0u64;
    let mut consumed = 0u64;
    while let Some(item) = rx.recv().await {
        consumed += 1;
        if matches!(item, SourceItem::Upsert(_)) {
            upserts += 1;
        }
        // Never more read than consumed plus what the channel and the pending send hold.
        assert!(lines.load(Ordering::Relaxed) <= consumed + CAPACITY as u64 + 1);
    }
    assert_eq!(upserts, COUNT);
    let cursor = read.await.unwrap().unwrap();
    assert_eq!(
        cursor,
        Some(json!({"airbyte_state": [users_state(COUNT as i64)]}))
    );
}

// ------------------------------------------------------------------------- incremental

#[tokio::test]
async fn an_incremental_read_resumes_from_the_saved_state() {
    let config = fake(json!({"count": 5}), &[("stream", json!("users"))]);
    let mut src = source(&config);
    let (items, result) = run(&mut src, SyncMode::Full).await;
    assert_eq!(ids(&items), ["1", "2", "3", "4", "5"]);
    let saved = result.unwrap();
    assert_eq!(saved, Some(cursor(&[users_state(5)])));

    let config = fake(json!({"count": 8}), &[("stream", json!("users"))]);
    let mut src = source(&config);
    let (items, result) = run(
        &mut src,
        SyncMode::Incremental {
            cursor: saved.clone(),
        },
    )
    .await;
    assert_eq!(ids(&items), ["6", "7", "8"]);
    assert_eq!(result.unwrap(), Some(cursor(&[users_state(8)])));

    // Nothing new: the saved state comes back unchanged.
    let (items, result) = run(
        &mut src,
        SyncMode::Incremental {
            cursor: Some(cursor(&[users_state(8)])),
        },
    )
    .await;
    assert!(ids(&items).is_empty());
    assert_eq!(result.unwrap(), Some(cursor(&[users_state(8)])));
    assert!(ExternalFactory.supports_incremental());
}

/// The interpreter itself, not a wrapper (pyenv's shim adds variables of its own).
fn real_python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_program_gets_private_files_the_catalog_the_state_and_only_its_own_environment() {
    let dir = tempfile::tempdir().unwrap();
    let report_file = dir.path().join("report.json");
    let config_json = json!({"count": 3, "report_file": report_file.to_string_lossy()});
    let config = fake(
        config_json.clone(),
        &[
            ("command", json!(real_python())),
            ("stream", json!("users")),
            ("env", json!("GREETING=hello")),
        ],
    );
    let mut src = source(&config);
    let saved = cursor(&[users_state(1)]);
    let (items, result) = run(
        &mut src,
        SyncMode::Incremental {
            cursor: Some(saved),
        },
    )
    .await;
    result.unwrap();
    assert_eq!(ids(&items), ["2", "3"]);

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    let files = &report["files"];
    let path = |name: &str| files[name]["path"].as_str().unwrap().to_string();
    assert_eq!(
        report["argv"],
        json!([
            "read",
            "--config",
            path("config"),
            "--catalog",
            path("catalog"),
            "--state",
            path("state")
        ])
    );
    for name in ["config", "catalog", "state"] {
        assert_eq!(files[name]["mode"], 0o600, "{name} file");
        assert_eq!(files[name]["dir_mode"], 0o700, "{name} folder");
        assert!(
            !std::path::Path::new(&path(name)).exists(),
            "{name} file removed after the read"
        );
    }
    assert_eq!(files["config"]["content"], config_json);
    let entry = &files["catalog"]["content"]["streams"][0];
    assert_eq!(entry["stream"]["name"], "users");
    assert_eq!(
        (
            &entry["sync_mode"],
            &entry["cursor_field"],
            &entry["primary_key"]
        ),
        (&json!("incremental"), &json!(["updated"]), &json!([["id"]]))
    );
    assert_eq!(
        files["catalog"]["content"]["streams"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(files["state"]["content"], json!([users_state(1)]));

    let env: BTreeSet<String> = serde_json::from_value(report["env"].clone()).unwrap();
    for name in ["FAKE_TOKEN", "GREETING", "PATH"] {
        assert!(env.contains(name), "{name} missing from {env:?}");
    }
    let allowed = |name: &str| {
        EXTERNAL_INHERITED_ENV.contains(&name) || name == "FAKE_TOKEN" || name == "GREETING"
    };
    let leaked: Vec<&String> = env.iter().filter(|name| !allowed(name)).collect();
    assert!(leaked.is_empty(), "not passed on by syncdeck: {leaked:?}");
    let ours: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !allowed(k))
        .collect();
    assert!(
        !ours.is_empty(),
        "the test process has variables that must not reach the program"
    );
}

// ------------------------------------------------------------------------ configuration

#[tokio::test]
async fn streams_need_a_key_or_an_id_field_and_unknown_streams_are_named() {
    let mut src = source(&fake(json!({"count": 2}), &[("stream", json!("nokey"))]));
    let err = run(&mut src, SyncMode::Full)
        .await
        .1
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "configuration field 'id_field': stream 'nokey' has no primary key; name the field that identifies its records"
    );
    let mut src = source(&fake(
        json!({"count": 2}),
        &[("stream", json!("nokey")), ("id_field", json!("value"))],
    ));
    let (items, result) = run(&mut src, SyncMode::Full).await;
    result.unwrap();
    assert_eq!(ids(&items), ["0", "1"]);

    let mut src = source(&fake(json!({}), &[("stream", json!("orders"))]));
    let err = run(&mut src, SyncMode::Full)
        .await
        .1
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "configuration field 'stream': no stream 'orders'; the program offers: users, events, nokey"
    );
}

// ------------------------------------------------------------------------------ secrets

// ------------------------------------------------------------------------------ engine

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_connector_syncs_through_the_engine_full_then_incremental() {
    let (engine, backend, dlq) = embedded_engine("worker-ext");
    let values = json!({
        "command": "python3",
        "args": [script()],
        "secret_env": format!("FAKE_TOKEN={TOKEN}"),
        "config": json!({"count": 5}).to_string(),
        "stream": "users",
        "timeout": 20,
    });
    let id = create_connector(&backend, "ext", "people", &ExternalFactory, values).await;
    let run_job = |job_type| {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            let job = engine
                .deps()
                .control
                .create_sync_job(&id, job_type, TriggerMethod::OnDemand)
                .await
                .unwrap();
            engine
                .run_job(&job, &CancellationToken::new())
                .await
                .unwrap()
        }
    };

    let full = run_job(JobType::Full).await;
    assert_eq!(full.end, JobEnd::Completed, "{full:#?}");
    assert_eq!(full.counters.indexed, 5);
    let expected: BTreeSet<String> = (1..=5).map(|i| i.to_string()).collect();
    assert_eq!(store_ids(&backend, "people").await, expected);
    let doc = backend.get_document("people", "3").await.unwrap().unwrap();
    assert_eq!(
        (doc["name"].clone(), doc["_airbyte_stream"].clone()),
        (json!("user 3"), json!("users"))
    );
    let connector = backend.get_connector(&id).await.unwrap();
    assert_eq!(connector.sync_cursor, Some(cursor(&[users_state(5)])));

    let mut values = Map::new();
    values.insert("config".into(), json!(json!({"count": 8}).to_string()));
    backend
        .update_configuration(&id, &ConfigurationUpdate::Values(values))
        .await
        .unwrap();
    let incremental = run_job(JobType::Incremental).await;
    assert_eq!(incremental.end, JobEnd::Completed, "{incremental:#?}");
    assert_eq!(
        (incremental.counters.seen, incremental.counters.indexed),
        (3, 3)
    );
    assert_eq!(backend.count("people").await.unwrap(), 8);
    let connector = backend.get_connector(&id).await.unwrap();
    assert_eq!(connector.sync_cursor, Some(cursor(&[users_state(8)])));

    // Garbage lines become dead letters; the good records are indexed and the job completes.
    let mut values = Map::new();
    values.insert(
        "config".into(),
        json!(json!({"mode": "garbage"}).to_string()),
    );
    backend
        .update_configuration(&id, &ConfigurationUpdate::Values(values))
        .await
        .unwrap();
    let garbage = run_job(JobType::Full).await;
    assert_eq!(garbage.end, JobEnd::Completed, "{garbage:#?}");
    let c = &garbage.counters;
    assert_eq!((c.indexed + c.updated, c.dead_lettered), (2, 4), "{c:?}");
    let letters = dead_letters(&dlq);
    let mut reasons: Vec<String> = letters
        .iter()
        .map(|l| format!("{} {}", l.doc_id, l.error_type))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "line-2 source_invalid",
            "line-3 source_invalid",
            "line-4 source_invalid",
            "line-5 source_invalid"
        ]
    );

    // A crash fails the job with the program's last words.
    let mut values = Map::new();
    values.insert("config".into(), json!(json!({"mode": "crash"}).to_string()));
    backend
        .update_configuration(&id, &ConfigurationUpdate::Values(values))
        .await
        .unwrap();
    let crashed = run_job(JobType::Full).await;
    match &crashed.end {
        JobEnd::Failed { error } => {
            assert!(
                error.contains("exit status 3") && error.contains("stderr line 24"),
                "{error}"
            );
            assert!(!error.contains(TOKEN), "{error}");
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
}

// -------------------------------------------------------------------- a published source

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs Airbyte's own `source-faker` (pip install airbyte-source-faker) when it is installed.
#[tokio::test]
async fn source_faker_from_pypi_when_installed() {
    if !on_path("source-faker") {
        println!(
            "skipped: 'source-faker' is not on PATH (pip install airbyte-source-faker to run this test)"
        );
        return;
    }
    let mut config = spec_fields("source-faker", &[], &[])
        .await
        .expect("source-faker spec");
    assert!(
        config.0.contains_key("config.count"),
        "{:?}",
        config.0.keys().collect::<Vec<_>>()
    );
    config.0.get_mut("config.count").unwrap().value = json!(25);
    config.0.get_mut("stream").unwrap().value = json!("users");
    let mut src = source(&config);
    src.ping().await.expect("source-faker check");
    let (items, result) = run(&mut src, SyncMode::Full).await;
    let cursor = result.expect("source-faker read");
    let got: BTreeSet<String> = ids(&items).into_iter().collect();
    assert_eq!(got.len(), 25, "{got:?}");
    assert!(cursor.is_some(), "faker's users stream is incremental");
}

// --------------------------------------------------------------------------- benchmark

/// `cargo test --release --test it external::bench -- --ignored --nocapture`: 100k records from a
/// fast program through the source into a counting receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_external_throughput() {
    const COUNT: u64 = 100_000;
    let config = fake(
        json!({"mode": "bulk", "count": COUNT}),
        &[("stream", json!("users"))],
    );
    let mut src = source(&config);
    let (tx, mut rx) = ItemSender::channel(1024);
    let started = Instant::now();
    let count = tokio::spawn(async move {
        let mut docs = 0u64;
        while let Some(item) = rx.recv().await {
            if matches!(item, SourceItem::Upsert(_)) {
                docs += 1;
            }
        }
        docs
    });
    src.run(SyncMode::Full, tx).await.unwrap();
    let docs = count.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(docs, COUNT);
    println!(
        "external: {docs} records in {:.2}s = {:.0} docs/s (including discover and python start-up)",
        elapsed.as_secs_f64(),
        docs as f64 / elapsed.as_secs_f64()
    );
}
