//! An `external` connector's editor loads the fields of its program's spec: the load key
//! runs the project's fake Airbyte program (tests/fixtures/airbyte/fake_source.py) through
//! the console's real effect runner against the embedded backend, with the command as typed
//! in the form (unsaved). A program that cannot run shows why; a good one adds its fields to
//! the form, unsaved and marked new, and the save writes them with their sensitivity. The
//! secret environment and a typed secret never reach the screen or the log.

mod console_fixtures;
#[path = "support/external_util.rs"]
mod external_util;

use console_fixtures::*;
use crossterm::event::KeyCode;
use serde_json::json;
use syncdeck::backend::ConfigurationUpdate;
use syncdeck::console::app::{Action, AppState, update};
use syncdeck::console::editor::SpecStatus;
use syncdeck::console::effect::Effect;
use syncdeck::model::NewConnector;
use syncdeck::sources::{ExternalFactory, SourceFactory};
use tokio::sync::mpsc::unbounded_channel;

/// What the operator types into the program's secret field.
const TYPED_SECRET: &str = "typed-Secret-value-31337";

fn focused_key(s: &AppState) -> String {
    let e = s.editor().unwrap();
    e.fields[e.focus].key.clone()
}

fn screen(s: &AppState) -> String {
    let shown = text(&draw(s, &theme("default")));
    for secret in [external_util::TOKEN, TYPED_SECRET] {
        assert!(!shown.contains(secret), "a secret was drawn:\n{shown}");
    }
    shown
}

/// Waits (bounded, generously: a loaded machine starts python slowly) until the spec's
/// program has answered, applying what arrives meanwhile.
async fn spec_settled(
    state: &mut AppState,
    handles: &std::sync::Arc<syncdeck::console::io::Handles>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    tx: &tokio::sync::mpsc::UnboundedSender<Action>,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while state
        .editor()
        .is_some_and(|e| e.spec_status == Some(SpecStatus::Running))
    {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(action)) => {
                let fx = update(state, action);
                pump(state, handles, rx, fx, tx).await;
            }
            _ => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_key_merges_the_programs_spec_into_the_form_and_the_save_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (tail, handles) = traced_embedded_handles(&dir.path().join("embedded.sqlite3"));
    let new = NewConnector {
        id: Some("ext".into()),
        name: Some("Fake Airbyte".into()),
        index_name: Some("search-ext".into()),
        service_type: Some("external".into()),
        ..Default::default()
    };
    handles.control.create_connector(&new).await.unwrap();
    // Saved with a program that does not exist; the right one is typed in the form below.
    let configuration =
        external_util::fake(json!({}), &[("command", json!("no-such-program-xyz"))]);
    handles
        .control
        .update_configuration("ext", &ConfigurationUpdate::Replace(configuration))
        .await
        .unwrap();

    let (tx, mut rx) = unbounded_channel();
    let mut state = new_state(false, (120, 40));
    let fx = update(&mut state, Action::Tick(now()));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    let fx = update(&mut state, ch('e'));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert!(
        state.editor().is_some_and(|e| e.is_external()),
        "the editor did not open: {:?}",
        state.toasts
    );
    assert_eq!(focused_key(&state), "command");
    assert!(screen(&state).contains("load spec"), "the footer offers it");

    // A program that cannot run: the editor says why, nothing changes.
    let fx = update(&mut state, ctrl('l'));
    assert!(
        matches!(fx.as_slice(), [Effect::LoadSpec { connector_id, .. }] if connector_id == "ext"),
        "{fx:?}"
    );
    assert_eq!(
        state.editor().unwrap().spec_status,
        Some(SpecStatus::Running)
    );
    assert!(
        update(&mut state, ctrl('l')).is_empty(),
        "one load at a time"
    );
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    spec_settled(&mut state, &handles, &mut rx, &tx).await;
    let e = state.editor().unwrap();
    match &e.spec_status {
        Some(SpecStatus::Failed(why)) => {
            assert!(why.contains("cannot run 'no-such-program-xyz'"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.schema_changed && !e.is_dirty());
    assert!(screen(&state).contains("spec not loaded"));

    // The right program, typed and not saved, is the one that runs.
    for _ in 0.."no-such-program-xyz".len() {
        let _ = update(&mut state, key(KeyCode::Backspace));
    }
    for c in "python3".chars() {
        let _ = update(&mut state, ch(c));
    }
    let fx = update(&mut state, ctrl('l'));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    spec_settled(&mut state, &handles, &mut rx, &tx).await;
    let e = state.editor().unwrap();
    assert!(
        matches!(&e.spec_status, Some(SpecStatus::Loaded(text)) if text.contains("added 6 field(s)")),
        "{:?}",
        e.spec_status
    );
    assert!(e.schema_changed && e.is_dirty(), "merged, not saved");
    let keys: Vec<&str> = e.fields.iter().map(|f| f.key.as_str()).collect();
    for key in [
        "config.count",
        "config.token",
        "config.mode",
        "config.verbose",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let token = e.fields.iter().find(|f| f.key == "config.token").unwrap();
    assert!(token.field.sensitive && token.field.required);
    assert_eq!(focused_key(&state), "config.count", "the first new field");
    let shown = screen(&state);
    assert!(
        shown.contains("Records") && shown.contains("(new)"),
        "{shown}"
    );
    assert!(
        handles
            .control
            .get_connector("ext")
            .await
            .unwrap()
            .configuration
            .get("config.count")
            .is_none(),
        "nothing is saved before the operator saves"
    );

    // Fill the required secret, save: the fields reach the backend with their sensitivity.
    let _ = update(&mut state, key(KeyCode::Tab));
    assert_eq!(focused_key(&state), "config.token");
    for c in TYPED_SECRET.chars() {
        let _ = update(&mut state, ch(c));
    }
    screen(&state);
    let fx = update(&mut state, ctrl('s'));
    assert!(
        matches!(fx.as_slice(), [Effect::SaveConfigSchema { .. }]),
        "{fx:?}"
    );
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    let e = state.editor().unwrap();
    assert!(!e.is_dirty() && !e.schema_changed, "{:?}", state.toasts);
    let saved = handles.control.get_connector("ext").await.unwrap();
    let config = &saved.configuration;
    assert_eq!(config.get("command").unwrap().value, "python3");
    assert_eq!(config.get("config.count").unwrap().value, 3);
    let token = config.get("config.token").unwrap();
    assert!(token.sensitive);
    assert_eq!(token.value, TYPED_SECRET);
    assert_eq!(
        config.get("secret_env").unwrap().value,
        format!("FAKE_TOKEN={}", external_util::TOKEN),
        "the secret environment is kept as it was"
    );
    ExternalFactory
        .validate(config)
        .expect("the saved configuration runs");

    let log = tail.lines().join("\n");
    assert!(
        log.contains("spec loaded"),
        "the load was not logged:\n{log}"
    );
    for secret in [external_util::TOKEN, TYPED_SECRET] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}
