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

#[tokio::test]
async fn sensitive_values_of_what_the_runner_loads_are_masked_on_screen() {
    // A worker that does not mask (the Python service) can write a connector's sensitive
    // value into a job's or connector's `error`. This process never saw the value: only the
    // effect runner's loads (jobs, a connector's detail, the editor's connector) teach it to
    // the masker, before the screen shows any of it. Distinct values: the masker is
    // process-wide.
    use syncdeck::console::io::perform;
    use syncdeck::model::{JobType, TriggerMethod};
    let job_secret = "consolefix-job-5e1b7a";
    let detail_secret = "consolefix-detail-c04d2f";
    let editor_secret = "consolefix-editor-91ae3c";
    let known = |secret: &str| !syncdeck::secret::mask(secret).contains(secret);
    for secret in [job_secret, detail_secret, editor_secret] {
        assert!(!known(secret), "{secret} is known already");
    }
    let dir = tempfile::tempdir().unwrap();
    let handles = embedded_handles(&dir.path().join("embedded.sqlite3"), None);
    for (id, secret) in [
        ("leaky", job_secret),
        ("detail", detail_secret),
        ("edited", editor_secret),
    ] {
        let new = NewConnector {
            id: Some(id.into()),
            name: Some(id.into()),
            index_name: Some(format!("search-{id}")),
            service_type: Some("postgresql".into()),
            ..Default::default()
        };
        handles.control.create_connector(&new).await.unwrap();
        let config: Configuration = serde_json::from_value(serde_json::json!({
            "password": {"label": "Password", "sensitive": true, "value": secret}
        }))
        .unwrap();
        handles
            .control
            .update_configuration(id, &ConfigurationUpdate::Replace(config))
            .await
            .unwrap();
    }
    let job = handles
        .control
        .create_sync_job("leaky", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    // Another worker claims it and fails without masking.
    handles
        .control
        .claim_sync_job(&job, "python-worker", None)
        .await
        .unwrap();
    handles
        .control
        .set_sync_job_error(&job, &format!("{job_secret} was refused"))
        .await
        .unwrap();
    handles
        .control
        .update_error("detail", Some(&format!("{detail_secret} was refused")))
        .await
        .unwrap();
    let (tx, mut rx) = unbounded_channel();
    let answer = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Action>| {
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("an answer")
            .expect("the channel is open")
    };

    // A connector's detail, then the editor's connector: each teaches its own value only.
    perform(&handles, Effect::LoadConnectorDetail("detail".into()), &tx);
    let loaded = answer(&mut rx).await;
    assert!(
        matches!(loaded, Action::ConnectorDetailLoaded { result: Ok(_), .. }),
        "the detail did not load"
    );
    assert!(
        known(detail_secret),
        "the detail's connector was not learnt"
    );
    assert!(!known(editor_secret) && !known(job_secret));
    perform(&handles, Effect::LoadConnectorForEdit("edited".into()), &tx);
    let loaded = answer(&mut rx).await;
    assert!(
        matches!(loaded, Action::EditorLoaded { result: Ok(_), .. }),
        "the editor's connector did not load"
    );
    assert!(
        known(editor_secret),
        "the editor's connector was not learnt"
    );
    assert!(!known(job_secret));

    // The Jobs view, loaded through the runner, and the job's detail show the mask.
    let mut state = new_state(false, (140, 40));
    let fx = update(&mut state, ch('2'));
    assert!(
        fx.iter().any(|e| matches!(e, Effect::LoadJobs(_))),
        "{fx:?}"
    );
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    assert_eq!(
        state.jobs.table.all().len(),
        1,
        "{:?}",
        state.jobs.table.error
    );
    let list = text(&draw(&state, &theme("default")));
    let fx = update(&mut state, key(KeyCode::Enter));
    pump(&mut state, &handles, &mut rx, fx, &tx).await;
    let detail = text(&draw(&state, &theme("default")));
    assert!(detail.contains("was refused"), "{detail}");
    for screen in [&list, &detail] {
        assert!(!screen.contains(job_secret), "{screen}");
    }
    assert!(known(job_secret));
}
