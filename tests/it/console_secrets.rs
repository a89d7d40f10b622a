//! The editor's reveal is only visual: with a sensitive value revealed, edited and saved
//! through the real effect runner (`console::io`) against the embedded backend, and with
//! everything logged at trace level into the log tail the Logs view shows, the value never
//! reaches the log; the save really carried it to the backend.

use crate::console_fixtures;

use console_fixtures::*;
use crossterm::event::KeyCode;
use syncdeck::backend::ConfigurationUpdate;
use syncdeck::console::app::{Action, update};
use syncdeck::console::effect::Effect;
use syncdeck::model::{Configuration, NewConnector};
use tokio::sync::mpsc::unbounded_channel;

fn secret_config() -> Configuration {
    serde_json::from_value(serde_json::json!({
        "host": {"label": "Host", "order": 1, "value": "db.internal"},
        "password": {"label": "Password", "order": 2, "sensitive": true, "value": SECRET}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revealed_and_saved_secret_never_reaches_the_log() {
    if crate::support::own_process::ran_in_child(
        module_path!(),
        "a_revealed_and_saved_secret_never_reaches_the_log",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tail, handles) = traced_embedded_handles(&dir.path().join("embedded.sqlite3"));
    let new = NewConnector {
        id: Some("pg".into()),
        name: Some("Orders".into()),
        index_name: Some("search-orders".into()),
        service_type: Some("postgresql".into()),
        ..Default::default()
    };
    handles.control.create_connector(&new).await.unwrap();
    handles
        .control
        .update_configuration("pg", &ConfigurationUpdate::Replace(secret_config()))
        .await
        .unwrap();
    let (tx, mut rx) = unbounded_channel();
    let mut state = new_state(false, (100, 30));
    let fx = update(&mut state, Action::Tick(now()));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert_eq!(
        state.connectors.table.all().len(),
        1,
        "the embedded connector was not loaded: {:?}",
        state.connectors.table.error
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
