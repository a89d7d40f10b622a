//! The editor's reveal is only visual: with a sensitive value revealed, edited and saved
//! through the real effect runner (`console::io`) against the embedded backend, and with
//! everything logged at trace level into the log tail the Logs view shows, the value never
//! reaches the log; the save really carried it to the backend.

mod console_fixtures;

use console_fixtures::*;
use crossterm::event::KeyCode;
use std::sync::Arc;
use std::time::Duration;
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ConfigurationUpdate, ControlPlane, DocumentStore};
use syncdeck::console::app::{Action, AppState, update};
use syncdeck::console::effect::Effect;
use syncdeck::console::io::{Handles, perform};
use syncdeck::engine::dlq::DeadLetterStore;
use syncdeck::engine::runner::{Engine, EngineDeps};
use syncdeck::logging::LogTail;
use syncdeck::model::{Configuration, NewConnector};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;

fn secret_config() -> Configuration {
    serde_json::from_value(serde_json::json!({
        "host": {"label": "Host", "order": 1, "value": "db.internal"},
        "password": {"label": "Password", "order": 2, "sensitive": true, "value": SECRET}
    }))
    .unwrap()
}

/// Runs effects until `update` stops asking for more I/O that answers; returns the actions
/// seen, applied.
async fn pump(
    state: &mut AppState,
    handles: &Arc<Handles>,
    rx: &mut UnboundedReceiver<Action>,
    effects: Vec<Effect>,
    tx: &tokio::sync::mpsc::UnboundedSender<Action>,
) {
    for e in effects {
        perform(handles, e, tx);
    }
    while let Ok(Some(action)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        for e in update(state, action) {
            perform(handles, e, tx);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revealed_and_saved_secret_never_reaches_the_log() {
    let tail = LogTail::new(10_000);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(syncdeck::logging::tail_layer(tail.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(EmbeddedBackend::open(&dir.path().join("embedded.sqlite3")).unwrap());
    let control: Arc<dyn ControlPlane> = backend.clone();
    let documents: Arc<dyn DocumentStore> = backend.clone();
    let new = NewConnector {
        id: Some("pg".into()),
        name: Some("Orders".into()),
        index_name: Some("search-orders".into()),
        service_type: Some("postgresql".into()),
        ..Default::default()
    };
    control.create_connector(&new).await.unwrap();
    control
        .update_configuration("pg", &ConfigurationUpdate::Replace(secret_config()))
        .await
        .unwrap();
    let dlq = Arc::new(DeadLetterStore::open_in_memory(100).unwrap());
    let engine = Engine::new(EngineDeps {
        control: control.clone(),
        store: documents.clone(),
        dlq: dlq.clone(),
        registry: syncdeck::sources::builtin(),
        settings: Default::default(),
        breaker: Default::default(),
        worker: "test".into(),
    });
    let handles = Arc::new(Handles {
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
        log_tail: Some(tail.clone()),
        http: reqwest::Client::new(),
        shutdown: CancellationToken::new(),
    });
    let (tx, mut rx) = unbounded_channel();
    let mut state = new_state(false, (100, 30));
    let fx = update(&mut state, Action::Tick(now()));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert_eq!(
        state.connectors.all().len(),
        1,
        "the embedded connector was not loaded: {:?}",
        state.connectors.error
    );

    // Open the editor, go to the password, reveal it, add a character, save.
    let fx = update(&mut state, ch('e'));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert!(state.editor().is_some(), "the editor did not open");
    let _ = update(&mut state, key(KeyCode::Tab));
    let _ = update(&mut state, ctrl('r'));
    let shown = text(&draw(&state, &theme("default")));
    assert!(
        shown.contains(SECRET),
        "the reveal did not show the value:\n{shown}"
    );
    let _ = update(&mut state, ch('!'));
    let fx = update(&mut state, ctrl('s'));
    assert!(
        matches!(fx.as_slice(), [Effect::SaveConfig { .. }]),
        "{fx:?}"
    );
    tracing::debug!(effects = ?fx, "what a careless caller might log");
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert!(
        state.editor().is_some_and(|e| !e.is_dirty()),
        "the save did not go through: {:?}",
        state.toasts
    );

    // The value reached the backend...
    let saved = handles.control.get_connector("pg").await.unwrap();
    let expected = format!("{SECRET}!");
    assert_eq!(
        saved.configuration.get("password").unwrap().value,
        serde_json::json!(expected)
    );
    // ...and a failing save of it is logged without it.
    let mut values = serde_json::Map::new();
    values.insert("password".into(), serde_json::json!(expected));
    let fx = vec![Effect::SaveConfig {
        connector_id: "missing".into(),
        values,
    }];
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    let log = tail.lines().join("\n");
    assert!(
        log.contains("configuration saved") && log.contains("not saved"),
        "the saves were not logged:\n{log}"
    );
    assert!(!log.contains(SECRET), "the secret reached the log:\n{log}");
}
