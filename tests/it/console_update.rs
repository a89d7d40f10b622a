//! The console's `update` without a terminal: keys go in as actions, effects and state come
//! out. Covers view switching, navigation, filtering, detail, commands with completion,
//! confirmations, read-only refusal, the editor's save and unsaved-changes guard, dead-letter
//! marking and retry, refresh timing, toasts and errors.

use crate::console_fixtures;

use console_fixtures::*;
use crossterm::event::KeyCode;
use serde_json::json;
use syncdeck::console::app::{
    Action, AttachStatus, ConfirmAction, Modal, Operation, Screen, ToastLevel, ViewId, update,
};
use syncdeck::console::effect::Effect;
use syncdeck::console::keymap::Keymap;
use syncdeck::model::{JobStatus, JobType, Timestamp};

fn selected_connector(s: &syncdeck::console::app::AppState) -> String {
    s.connectors.table.selected().unwrap().id.clone()
}

fn confirm_action(s: &syncdeck::console::app::AppState) -> Option<ConfirmAction> {
    match &s.modal {
        Some(Modal::Confirm(a)) => Some(a.clone()),
        _ => None,
    }
}

fn last_toast(s: &syncdeck::console::app::AppState) -> String {
    s.toasts.last().map(|t| t.text.clone()).unwrap_or_default()
}

#[test]
fn views_switch_by_number_tab_and_command() {
    let mut s = loaded_state(false, (80, 24));
    assert_eq!(s.view, ViewId::Connectors);
    apply(&mut s, [ch('2')]);
    assert_eq!(s.view, ViewId::Jobs);
    apply(&mut s, [key(KeyCode::Tab)]);
    assert_eq!(s.view, ViewId::Live);
    apply(&mut s, [key(KeyCode::BackTab), key(KeyCode::BackTab)]);
    assert_eq!(s.view, ViewId::Connectors);
    apply(&mut s, [key(KeyCode::BackTab)]);
    assert_eq!(s.view, ViewId::Logs, "tab order wraps");
    apply(
        &mut s,
        [ch(':'), ch('d'), ch('l'), ch('q'), key(KeyCode::Enter)],
    );
    assert_eq!(s.view, ViewId::DeadLetters);
    assert!(s.modal.is_none());
    // Completion: `:br` + tab completes to breaker.
    apply(&mut s, [ch(':'), ch('b'), ch('r'), key(KeyCode::Tab)]);
    match &s.modal {
        Some(Modal::CommandLine(line)) => assert_eq!(line.input, "breaker"),
        _ => panic!("the command line closed"),
    }
    apply(&mut s, [key(KeyCode::Enter)]);
    assert_eq!(s.view, ViewId::Breaker);
    // An unknown command stays open with the error.
    apply(&mut s, [ch(':'), ch('x'), key(KeyCode::Enter)]);
    match &s.modal {
        Some(Modal::CommandLine(line)) => {
            assert!(line.error.as_deref().unwrap_or("").contains("'x'"))
        }
        _ => panic!("the command line closed on an error"),
    }
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.modal.is_none());
}

#[test]
fn switching_to_a_stale_view_loads_it_and_a_fresh_one_does_not() {
    let mut s = loaded_state(false, (80, 24));
    let fx = apply(&mut s, [ch('2')]);
    assert!(fx.is_empty(), "jobs were loaded at the fixed now: {fx:?}");
    let _ = update(&mut s, Action::Tick(ts("2024-05-01T10:00:01Z")));
    let later = Timestamp(s.now.0 + chrono::Duration::seconds(10));
    s.now = later;
    let fx = apply(&mut s, [ch('5')]);
    assert_eq!(fx, [Effect::LoadDeadLetters]);
    let fx = apply(&mut s, [ch('5')]);
    assert!(fx.is_empty(), "a load in flight is not sent twice: {fx:?}");
}

#[test]
fn arrows_vim_keys_and_paging_move_the_selection() {
    let mut s = loaded_state(false, (80, 24));
    assert_eq!(selected_connector(&s), "pg-orders");
    apply(&mut s, [ch('j')]);
    assert_eq!(selected_connector(&s), "demo-generator");
    apply(&mut s, [key(KeyCode::Down), key(KeyCode::Down)]);
    assert_eq!(
        selected_connector(&s),
        "demo-directory",
        "stops at the last row"
    );
    apply(&mut s, [ch('g')]);
    assert_eq!(selected_connector(&s), "pg-orders");
    apply(&mut s, [ch('G')]);
    assert_eq!(selected_connector(&s), "demo-directory");
    apply(&mut s, [key(KeyCode::PageUp)]);
    assert_eq!(selected_connector(&s), "pg-orders");
    apply(&mut s, [key(KeyCode::End), ch('k')]);
    assert_eq!(selected_connector(&s), "demo-generator");
    // A refresh in another order keeps the selected connector.
    let mut reordered = connectors();
    reordered.reverse();
    apply(&mut s, [Action::ConnectorsLoaded(Ok(reordered))]);
    assert_eq!(selected_connector(&s), "demo-generator");
}

#[test]
fn slash_filters_fuzzily_as_you_type_and_esc_clears() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('/'), ch('r'), ch('u'), ch('n')]);
    assert!(matches!(s.modal, Some(Modal::Filter)));
    assert_eq!(s.connectors.table.len(), 1, "only Runbooks matches 'run'");
    assert_eq!(selected_connector(&s), "demo-directory");
    apply(
        &mut s,
        [
            key(KeyCode::Backspace),
            key(KeyCode::Backspace),
            key(KeyCode::Backspace),
            ch('p'),
            ch('g'),
        ],
    );
    assert_eq!(
        s.connectors.table.len(),
        1,
        "only pg-orders has a p then a g"
    );
    assert_eq!(selected_connector(&s), "pg-orders");
    apply(&mut s, [key(KeyCode::Enter)]);
    assert!(s.modal.is_none());
    assert_eq!(s.connectors.table.filter(), "pg");
    apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(s.connectors.table.filter(), "");
    assert_eq!(s.connectors.table.len(), 3);
}

#[test]
fn enter_opens_detail_and_esc_goes_back() {
    let mut s = loaded_state(false, (80, 24));
    let fx = apply(&mut s, [key(KeyCode::Enter)]);
    assert_eq!(fx, [Effect::LoadConnectorDetail("pg-orders".into())]);
    assert!(matches!(s.screen(), Some(Screen::ConnectorDetail(d)) if d.id == "pg-orders"));
    apply(
        &mut s,
        [Action::ConnectorDetailLoaded {
            id: "pg-orders".into(),
            result: Ok((connectors()[0].clone(), jobs())),
        }],
    );
    assert!(matches!(s.screen(), Some(Screen::ConnectorDetail(d)) if d.jobs.len() == 5));
    apply(&mut s, [ch('j'), ch('j')]);
    assert!(matches!(s.screen(), Some(Screen::ConnectorDetail(d)) if d.scroll == 2));
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.screen().is_none());
    apply(&mut s, [ch('2'), key(KeyCode::Enter)]);
    assert!(matches!(s.screen(), Some(Screen::JobDetail { id, .. }) if id == "job-live-0001"));
    apply(&mut s, [ch('q')]);
    assert!(s.screen().is_none(), "q goes back from a detail screen");
    assert!(!s.quit);
}

#[test]
fn start_sync_runs_here_or_queues() {
    let mut s = loaded_state(false, (80, 24));
    // 'pg-orders' is a postgresql connector, which this engine cannot run: only queued.
    let fx = apply(&mut s, [ch('s')]);
    assert!(fx.is_empty());
    match &s.modal {
        Some(Modal::Form(form)) => {
            assert!(form.title.starts_with("Queue a sync"), "{}", form.title);
            let help = form.fields[1].help.clone().unwrap_or_default();
            assert!(help.contains("'postgresql'"), "{help}");
        }
        _ => panic!("no start dialog"),
    }
    let fx = apply(&mut s, [key(KeyCode::Right), key(KeyCode::Enter)]);
    assert_eq!(
        fx,
        [Effect::StartSync {
            connector_id: "pg-orders".into(),
            job_type: JobType::Incremental,
            run_here: false
        }]
    );
    assert!(s.modal.is_none());
    // 'demo-generator' runs here by default.
    let fx = apply(&mut s, [ch('j'), ch('s'), key(KeyCode::Enter)]);
    assert_eq!(
        fx,
        [Effect::StartSync {
            connector_id: "demo-generator".into(),
            job_type: JobType::Full,
            run_here: true
        }]
    );
    // Incremental, queue only.
    let fx = apply(
        &mut s,
        [
            ch('s'),
            key(KeyCode::Right),
            key(KeyCode::Tab),
            key(KeyCode::Right),
            key(KeyCode::Enter),
        ],
    );
    assert_eq!(
        fx,
        [Effect::StartSync {
            connector_id: "demo-generator".into(),
            job_type: JobType::Incremental,
            run_here: false
        }]
    );
    // Started here: the Live view opens on the job.
    let fx = apply(
        &mut s,
        [Action::SyncStarted {
            connector_id: "pg-orders".into(),
            job_id: "job-new".into(),
            run_here: true,
        }],
    );
    assert_eq!(s.view, ViewId::Live);
    assert!(fx.contains(&Effect::PollLive));
    assert!(last_toast(&s).contains("job-new"));
}

#[test]
fn a_read_only_profile_refuses_every_mutation() {
    let mut s = loaded_state(true, (80, 24));
    let attempts: Vec<(Option<char>, Vec<Action>)> = vec![
        (Some('1'), vec![ch('s')]),
        (Some('1'), vec![ch('n')]),
        (Some('1'), vec![ch('d')]),
        (Some('2'), vec![ch('c')]),
        (Some('3'), vec![ch('c')]),
        (Some('5'), vec![ch('r')]),
        (Some('5'), vec![ch('R')]),
        (Some('5'), vec![ch('d')]),
        (Some('6'), vec![ch('n')]),
        (Some('6'), vec![ch('x')]),
        (Some('6'), vec![ch('d')]),
    ];
    for (view, keys) in attempts {
        if let Some(v) = view {
            apply(&mut s, [ch(v)]);
        }
        s.toasts.clear();
        let fx = apply(&mut s, keys);
        assert!(
            fx.iter().all(|e| matches!(
                e,
                Effect::LoadConnectors
                    | Effect::LoadJobs(_)
                    | Effect::LoadActiveJobs
                    | Effect::PollLive
                    | Effect::LoadDeadLetters
                    | Effect::LoadKibanaConnectors
                    | Effect::LoadPool
            )),
            "{:?} in {:?}: {fx:?}",
            s.view,
            s.view
        );
        assert!(
            s.modal.is_none(),
            "a dialog opened on a read-only profile in {:?}",
            s.view
        );
        assert!(
            last_toast(&s).contains("read-only"),
            "no refusal shown in {:?}: {:?}",
            s.view,
            s.toasts
        );
    }
}

#[test]
fn destructive_actions_ask_first() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('d')]);
    assert!(
        matches!(confirm_action(&s), Some(ConfirmAction::DeleteConnector { ref id, .. }) if id == "pg-orders")
    );
    let fx = apply(&mut s, [ch('n')]);
    assert!(fx.is_empty() && s.modal.is_none());
    let fx = apply(&mut s, [ch('d'), ch('y')]);
    assert_eq!(fx, [Effect::DeleteConnector("pg-orders".into())]);
    // Cancel a running job; a finished one is not offered.
    apply(&mut s, [ch('2')]);
    let fx = apply(&mut s, [ch('c'), key(KeyCode::Enter)]);
    assert!(fx.is_empty(), "enter must not confirm: {fx:?}");
    let fx = apply(&mut s, [ch('y')]);
    assert_eq!(fx, [Effect::CancelJob("job-live-0001".into())]);
    apply(&mut s, [ch('j'), ch('j'), ch('c')]);
    assert!(s.modal.is_none());
    assert!(last_toast(&s).contains("already completed"));
    // Kibana delete.
    apply(&mut s, [ch('6'), ch('d')]);
    assert!(matches!(
        confirm_action(&s),
        Some(ConfirmAction::DeleteKibana { .. })
    ));
    let fx = apply(&mut s, [key(KeyCode::Esc)]);
    assert!(fx.is_empty());
}

#[test]
fn jobs_filter_by_status_and_connector_on_the_server() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('2')]);
    let fx = apply(&mut s, [ch('f')]);
    match fx.as_slice() {
        [Effect::LoadJobs(q)] => assert_eq!(q.status, Some(JobStatus::Pending)),
        other => panic!("{other:?}"),
    }
    let fx = apply(&mut s, [ch('f')]);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadJobs(q)] if q.status == Some(JobStatus::InProgress))
    );
    let fx = apply(&mut s, [ch('o')]);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadJobs(q)] if q.connector_id.as_deref() == Some("demo-generator") && q.status == Some(JobStatus::InProgress))
    );
    let fx = apply(&mut s, [ch('o')]);
    assert!(matches!(fx.as_slice(), [Effect::LoadJobs(q)] if q.connector_id.is_none()));
}

#[test]
fn dead_letters_mark_retry_and_drop() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('5')]);
    // Newest failure first: ids 1..3 loaded in that order; marks move down.
    apply(&mut s, [ch(' '), ch(' ')]);
    assert_eq!(
        s.dead_letters.marked.iter().copied().collect::<Vec<_>>(),
        [1, 2]
    );
    let fx = apply(&mut s, [ch('r')]);
    assert_eq!(fx, [Effect::RetryDeadLetters(vec![1, 2])]);
    assert!(s.dead_letters.busy);
    let fx = apply(&mut s, [ch('r')]);
    assert!(fx.is_empty(), "no second retry while one runs");
    let fx = apply(
        &mut s,
        [Action::DeadLettersRetried {
            succeeded: vec![1],
            failed: vec![(2, "mapper_parsing_exception: still bad".into())],
            superseded: vec![],
        }],
    );
    assert_eq!(fx, [Effect::LoadDeadLetters]);
    assert!(!s.dead_letters.busy);
    assert_eq!(
        s.dead_letters.marked.iter().copied().collect::<Vec<_>>(),
        [2]
    );
    assert!(last_toast(&s).contains("1 indexed") && last_toast(&s).contains("still bad"));
    // Drop asks; retry-all asks.
    apply(&mut s, [ch('d')]);
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::DropDeadLetters(vec![2]))
    );
    let fx = apply(&mut s, [ch('y')]);
    assert_eq!(fx, [Effect::DropDeadLetters(vec![2])]);
    apply(&mut s, [Action::DeadLettersDropped(1)]);
    assert!(s.dead_letters.marked.is_empty());
    apply(&mut s, [Action::DeadLettersLoaded(Ok((dead_letters(), 3)))]);
    apply(
        &mut s,
        [
            ch('/'),
            ch('1'),
            ch('9'),
            ch('9'),
            ch('9'),
            key(KeyCode::Enter),
            ch('R'),
        ],
    );
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::RetryDeadLetters(vec![2])),
        "all filtered: only doc-1999"
    );
    // `a` marks all filtered.
    apply(&mut s, [key(KeyCode::Esc), key(KeyCode::Esc), ch('a')]);
    assert_eq!(s.dead_letters.marked.len(), 3);
    apply(&mut s, [ch('a')]);
    assert!(s.dead_letters.marked.is_empty());
    // Detail: retry that entry.
    apply(&mut s, [key(KeyCode::Enter)]);
    assert!(matches!(
        s.screen(),
        Some(Screen::DeadLetterDetail { id: 2, .. })
    ));
    let fx = apply(&mut s, [ch('r')]);
    assert_eq!(fx, [Effect::RetryDeadLetters(vec![2])]);
}

#[test]
fn y_copies_the_id_or_the_dead_letters_document() {
    let mut s = loaded_state(false, (80, 24));
    assert_eq!(apply(&mut s, [ch('y')]), [Effect::Copy("pg-orders".into())]);
    apply(&mut s, [ch('5')]);
    let fx = apply(&mut s, [ch('y')]);
    match fx.as_slice() {
        [Effect::Copy(doc)] => {
            let v: serde_json::Value = serde_json::from_str(doc).unwrap();
            assert_eq!(v["value"], "not-a-number");
        }
        other => panic!("{other:?}"),
    }
}

fn open_editor(s: &mut syncdeck::console::app::AppState) {
    let fx = apply(s, [ch('e')]);
    assert_eq!(fx, [Effect::LoadConnectorForEdit("pg-orders".into())]);
    apply(
        s,
        [Action::EditorLoaded {
            id: "pg-orders".into(),
            result: Ok(connectors()[0].clone()),
        }],
    );
    assert!(s.editor().is_some());
}

#[test]
fn the_editor_validates_saves_only_changes_and_keeps_edits_on_failure() {
    let mut s = loaded_state(false, (80, 24));
    open_editor(&mut s);
    // Focus Port; type a digit: 54321 is fine, 543210 is not.
    apply(&mut s, [key(KeyCode::Down), ch('1')]);
    assert!(s.editor().unwrap().issues.is_empty());
    apply(&mut s, [ch('0')]);
    assert!(
        s.editor().unwrap().issues.contains_key("port"),
        "less_than 65536"
    );
    let fx = apply(&mut s, [ctrl('s')]);
    assert!(fx.is_empty(), "an invalid form is not sent");
    assert!(last_toast(&s).contains("not saved"));
    apply(&mut s, [key(KeyCode::Backspace)]);
    let fx = apply(&mut s, [ctrl('s')]);
    match fx.as_slice() {
        [
            Effect::SaveConfig {
                connector_id,
                values,
            },
        ] => {
            assert_eq!(connector_id, "pg-orders");
            assert_eq!(
                serde_json::Value::Object(values.clone()),
                json!({"port": 54321})
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.editor().unwrap().saving);
    apply(
        &mut s,
        [Action::ConfigSaved {
            connector_id: "pg-orders".into(),
            result: Err("validation_exception: port is out of range".into()),
        }],
    );
    let e = s.editor().unwrap();
    assert!(!e.saving);
    assert_eq!(
        e.server_error.as_deref(),
        Some("validation_exception: port is out of range")
    );
    assert_eq!(
        serde_json::Value::Object(e.changes()),
        json!({"port": 54321}),
        "the edit stays on screen"
    );
    apply(&mut s, [ctrl('s')]);
    apply(
        &mut s,
        [Action::ConfigSaved {
            connector_id: "pg-orders".into(),
            result: Ok(1),
        }],
    );
    assert!(!s.editor().unwrap().is_dirty());
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.editor().is_none(), "a saved editor closes without asking");
}

#[test]
fn depends_on_toggle_and_dropdown_in_the_editor() {
    let mut s = loaded_state(false, (80, 24));
    open_editor(&mut s);
    let keys = |e: &syncdeck::console::editor::ConfigEditor| {
        e.shown()
            .iter()
            .map(|&i| e.fields[i].key.clone())
            .collect::<Vec<_>>()
    };
    assert!(!keys(s.editor().unwrap()).contains(&"ssl_ca".to_string()));
    // host, port, database, username, password, ssl_enabled
    apply(
        &mut s,
        [
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            ch(' '),
        ],
    );
    assert!(
        keys(s.editor().unwrap()).contains(&"ssl_ca".to_string()),
        "SSL CA shows once SSL is on"
    );
    assert!(
        s.editor().unwrap().issues.contains_key("ssl_ca"),
        "and is required"
    );
    apply(
        &mut s,
        [
            key(KeyCode::Tab),
            ch('P'),
            key(KeyCode::Enter),
            ch('E'),
            ch('M'),
        ],
    );
    assert_eq!(
        s.editor()
            .unwrap()
            .fields
            .iter()
            .find(|f| f.key == "ssl_ca")
            .unwrap()
            .input
            .text()
            .unwrap(),
        "P\nEM"
    );
    apply(
        &mut s,
        [key(KeyCode::Tab), key(KeyCode::Tab), key(KeyCode::Right)],
    );
    let changes = s.editor().unwrap().changes();
    assert_eq!(changes.get("mode"), Some(&json!("thorough")));
    assert_eq!(changes.get("ssl_enabled"), Some(&json!(true)));
}

#[test]
fn unsaved_changes_are_guarded_on_close_view_switch_and_quit() {
    let mut s = loaded_state(false, (80, 24));
    s.live.local.clear();
    open_editor(&mut s);
    apply(&mut s, [ch('x')]);
    assert!(s.editor().unwrap().is_dirty());
    apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::DiscardEdits { quit: false })
    );
    apply(&mut s, [ch('n')]);
    assert!(s.editor().is_some(), "no keeps the editor");
    apply(&mut s, [ch('q'), ch('3')]);
    assert!(
        s.editor().is_some() && !s.quit,
        "q and 3 are typed into the field"
    );
    let fx = apply(&mut s, [ctrl('c')]);
    assert!(fx.is_empty());
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::DiscardEdits { quit: true })
    );
    let fx = apply(&mut s, [ch('y')]);
    assert_eq!(fx, [Effect::Quit]);
    assert!(s.quit);
}

#[test]
fn quitting_while_syncs_run_here_asks() {
    let mut s = loaded_state(false, (80, 24));
    assert_eq!(s.running_here(), 1);
    let fx = apply(&mut s, [ch('q')]);
    assert!(fx.is_empty());
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::QuitWhileSyncing { jobs: 1 })
    );
    let fx = apply(&mut s, [ch('y')]);
    assert_eq!(fx, [Effect::Quit]);
    let mut s = loaded_state(false, (80, 24));
    s.live.local.clear();
    assert_eq!(
        apply(&mut s, [ch(':'), ch('q'), key(KeyCode::Enter)]),
        [Effect::Quit]
    );
}

#[test]
fn ticks_refresh_on_the_interval_and_expire_toasts() {
    let mut s = new_state(false, (80, 24));
    let fx = update(&mut s, Action::Tick(now()));
    assert!(
        fx.contains(&Effect::LoadCluster)
            && fx.contains(&Effect::LoadKibanaStatus)
            && fx.contains(&Effect::LoadConnectors)
            && fx.contains(&Effect::PollLive),
        "{fx:?}"
    );
    let at = |ms: i64| Action::Tick(Timestamp(now().0 + chrono::Duration::milliseconds(ms)));
    let fx = update(&mut s, at(1000));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::LoadConnectors)),
        "not yet: {fx:?}"
    );
    let fx = update(&mut s, at(2100));
    assert!(
        !fx.contains(&Effect::LoadConnectors),
        "the first load is still in flight: {fx:?}"
    );
    apply(&mut s, [Action::ConnectorsLoaded(Ok(connectors()))]);
    let fx = update(&mut s, at(4200));
    assert!(fx.contains(&Effect::LoadConnectors), "{fx:?}");
    // Toasts expire; identical live data does not redraw.
    apply(&mut s, [Action::Notify(ToastLevel::Info, "hello".into())]);
    assert_eq!(s.toasts.len(), 1);
    let _ = update(&mut s, at(20_000));
    assert!(s.toasts.is_empty());
    apply(&mut s, [Action::LiveLoaded(vec![snapshot("j", 100)])]);
    s.dirty = false;
    apply(&mut s, [Action::LiveLoaded(vec![snapshot("j", 100)])]);
    assert!(!s.dirty, "unchanged snapshots must not cause a frame");
    apply(&mut s, [Action::LiveLoaded(vec![snapshot("j", 101)])]);
    assert!(s.dirty);
}

#[test]
fn the_live_view_polls_faster_than_the_refresh() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('3')]);
    let at = |ms: i64| Action::Tick(Timestamp(now().0 + chrono::Duration::milliseconds(ms)));
    let polls = (1..=8)
        .map(|i| update(&mut s, at(i * 250)))
        .filter(|fx| fx.contains(&Effect::PollLive))
        .count();
    assert_eq!(polls, 4, "every 500 ms on the Live view");
    apply(&mut s, [ch('1')]);
    let polls = (9..=16)
        .map(|i| update(&mut s, at(i * 250)))
        .filter(|fx| fx.contains(&Effect::PollLive))
        .count();
    assert_eq!(
        polls, 1,
        "every refresh interval elsewhere (for the header's breaker light)"
    );
}

#[test]
fn errors_become_toasts_not_crashes() {
    let mut s = loaded_state(false, (80, 24));
    apply(
        &mut s,
        [Action::ConnectorsLoaded(Err(
            "cluster unreachable: connection refused".into(),
        ))],
    );
    assert_eq!(s.connectors.table.len(), 3, "the last good rows stay");
    assert!(s.connectors.table.error.is_some());
    assert!(last_toast(&s).contains("connection refused"));
    let n = s.toasts.len();
    apply(
        &mut s,
        [Action::ConnectorsLoaded(Err(
            "cluster unreachable: connection refused".into(),
        ))],
    );
    assert_eq!(
        s.toasts.len(),
        n,
        "the same error is not repeated every refresh"
    );
    apply(
        &mut s,
        [Action::Failed {
            op: Operation::CreateConnector,
            error: "conflict".into(),
        }],
    );
    assert!(
        s.toasts
            .iter()
            .any(|t| t.level == ToastLevel::Error && t.text.contains("conflict"))
    );
    apply(
        &mut s,
        [Action::ClusterLoaded(Err("cluster unreachable".into()))],
    );
    assert!(s.cluster.error.is_some());
}

#[test]
fn kibana_execute_parses_the_document_first() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('6'), ch('x')]);
    let Some(Modal::Form(_)) = &s.modal else {
        panic!("no form")
    };
    // Break the JSON: delete the closing brace.
    let fx = apply(&mut s, [key(KeyCode::Backspace), ctrl('s')]);
    assert!(fx.is_empty());
    match &s.modal {
        Some(Modal::Form(f)) => assert!(f.error.as_deref().unwrap_or("").contains("not JSON")),
        _ => panic!("the form closed on bad JSON"),
    }
    let fx = apply(&mut s, [ch('}'), ctrl('s')]);
    assert!(
        matches!(fx.as_slice(), [Effect::KibanaExecute { id, documents }] if id.ends_with("0001") && documents["message"] == "hello from syncdeck")
    );
    apply(
        &mut s,
        [Action::KibanaExecuted {
            id: "x".into(),
            result: Ok("1 document(s) written".into()),
        }],
    );
    assert!(s.modal.is_none());
    // Only .index connectors.
    apply(&mut s, [ch('j'), ch('x')]);
    assert!(s.modal.is_none());
}

#[test]
fn new_connector_form_offers_the_registry() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('n')]);
    let fx = apply(&mut s, [key(KeyCode::Enter)]);
    assert!(fx.is_empty(), "the index name is required");
    // service type: next option; id; name; index
    let mut keys = vec![key(KeyCode::Right), key(KeyCode::Tab)];
    keys.extend("my-gen".chars().map(ch));
    keys.push(key(KeyCode::Tab));
    keys.extend("Gen".chars().map(ch));
    keys.push(key(KeyCode::Tab));
    keys.extend("search-gen".chars().map(ch));
    keys.push(key(KeyCode::Enter));
    let fx = apply(&mut s, keys);
    match fx.as_slice() {
        [Effect::CreateConnector(new)] => {
            assert_eq!(new.id.as_deref(), Some("my-gen"));
            assert_eq!(new.name.as_deref(), Some("Gen"));
            assert_eq!(new.index_name.as_deref(), Some("search-gen"));
            let types: Vec<_> = s
                .service_types
                .iter()
                .map(|t| t.service_type.clone())
                .collect();
            assert_eq!(new.service_type.as_deref(), Some(types[1].as_str()));
        }
        other => panic!("{other:?}"),
    }
    apply(&mut s, [Action::ConnectorCreated("my-gen".into())]);
    assert!(s.modal.is_none());
}

#[test]
fn profile_and_theme_commands() {
    let mut s = loaded_state(false, (80, 24));
    let fx = apply(
        &mut s,
        [
            ch(':'),
            ch('p'),
            ch('r'),
            ch('o'),
            key(KeyCode::Tab),
            ch(' '),
            ch('s'),
            key(KeyCode::Tab),
            key(KeyCode::Enter),
        ],
    );
    assert_eq!(fx, [Effect::SwitchProfile("staging".into())]);
    let fx = apply(
        &mut s,
        [
            ch(':'),
            ch('p'),
            ch('r'),
            ch('o'),
            ch('f'),
            ch('i'),
            ch('l'),
            ch('e'),
            ch(' '),
            ch('z'),
            key(KeyCode::Enter),
        ],
    );
    assert!(fx.is_empty());
    assert!(last_toast(&s).contains("no profile 'z'"));
    let fx = apply(
        &mut s,
        [
            ch(':'),
            ch('t'),
            ch('h'),
            ch('e'),
            ch('m'),
            ch('e'),
            ch(' '),
            ch('l'),
            key(KeyCode::Tab),
            key(KeyCode::Enter),
        ],
    );
    assert_eq!(fx, [Effect::LoadTheme("light".into())]);
    let fx = apply(
        &mut s,
        [
            ch(':'),
            ch('m'),
            ch('o'),
            key(KeyCode::Tab),
            key(KeyCode::Enter),
        ],
    );
    assert_eq!(
        fx,
        [Effect::SetMouse(true)],
        "mouse capture is off by default; :mouse toggles it"
    );
    apply(&mut s, [Action::ProfileChanged(profile(true))]);
    assert!(
        s.profile.read_only && s.connectors.table.all().is_empty(),
        "a new profile starts from scratch"
    );
}

#[test]
fn help_lists_the_keys_actually_bound() {
    let mut s = loaded_state(false, (80, 24));
    s.keymap = Keymap::with_user(
        "keymap.toml",
        "dead_letters = [ { on = \"t\", run = \"retry\", desc = \"Try again\" } ]",
    )
    .unwrap();
    apply(&mut s, [ch('5'), ch(' ')]);
    let fx = apply(&mut s, [ch('t')]);
    assert_eq!(
        fx,
        [Effect::RetryDeadLetters(vec![1])],
        "a user binding works"
    );
    apply(&mut s, [ch('?')]);
    assert!(matches!(s.modal, Some(Modal::Help { .. })));
    let lines = syncdeck::console::views::help::entries(
        &s.keymap,
        syncdeck::console::keymap::KeyContext::DeadLetters,
    );
    assert!(
        lines
            .iter()
            .any(|(keys, desc, _)| keys == "r, t" && desc.contains("Retry")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|(keys, _, _)| keys == "space"),
        "{lines:?}"
    );
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.modal.is_none());
}

#[test]
fn mouse_wheel_moves_and_resize_redraws() {
    use crossterm::event::{KeyModifiers, MouseEvent, MouseEventKind};
    let mut s = loaded_state(false, (80, 24));
    let wheel = |kind| {
        Action::Mouse(MouseEvent {
            kind,
            column: 1,
            row: 5,
            modifiers: KeyModifiers::NONE,
        })
    };
    apply(&mut s, [wheel(MouseEventKind::ScrollDown)]);
    assert_eq!(selected_connector(&s), "demo-generator");
    s.dirty = false;
    apply(&mut s, [Action::Resize(120, 40)]);
    assert!(s.dirty && s.size == (120, 40));
}

fn open_external_editor(s: &mut syncdeck::console::app::AppState) {
    apply(
        s,
        [Action::EditorLoaded {
            id: "ext".into(),
            result: Ok(external_connector()),
        }],
    );
    assert!(s.editor().is_some_and(|e| e.is_external()));
}

#[test]
fn the_load_spec_key_asks_for_the_typed_program_and_merges_its_answer() {
    use syncdeck::console::editor::SpecStatus;
    // Another service type has no spec: nothing runs.
    let mut s = loaded_state(false, (80, 24));
    open_editor(&mut s);
    assert!(apply(&mut s, [ctrl('l')]).is_empty());
    assert!(
        last_toast(&s).contains("only 'external' connectors"),
        "{}",
        last_toast(&s)
    );

    let mut s = loaded_state(false, (80, 24));
    open_external_editor(&mut s);
    // The command as typed, unsaved, is the one that runs.
    let fx = apply(&mut s, [ch('3'), ctrl('l')]);
    match fx.as_slice() {
        [
            Effect::LoadSpec {
                connector_id,
                configuration,
            },
        ] => {
            assert_eq!(connector_id, "ext");
            assert_eq!(configuration.get("command").unwrap().value, "python33");
            assert_eq!(
                configuration.get("secret_env").unwrap().value,
                format!("API_TOKEN={SECRET}")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.editor().unwrap().spec_status, Some(SpecStatus::Running));
    // A failure is shown and changes nothing; the next keystroke clears it.
    apply(
        &mut s,
        [Action::SpecLoaded {
            connector_id: "ext".into(),
            result: Err("cannot run 'python33': No such file or directory".into()),
        }],
    );
    let e = s.editor().unwrap();
    assert!(matches!(&e.spec_status, Some(SpecStatus::Failed(why)) if why.contains("python33")));
    assert!(!e.schema_changed);
    assert!(last_toast(&s).contains("spec of 'ext' not loaded"));
    apply(&mut s, [key(KeyCode::Backspace)]);
    assert_eq!(s.editor().unwrap().spec_status, None);
    // An answer for another connector's editor is not merged here.
    apply(
        &mut s,
        [Action::SpecLoaded {
            connector_id: "other".into(),
            result: Ok(external_spec()),
        }],
    );
    assert!(!s.editor().unwrap().schema_changed);
    // The answer is merged, unsaved; closing asks first.
    apply(&mut s, [ctrl('l')]);
    apply(
        &mut s,
        [Action::SpecLoaded {
            connector_id: "ext".into(),
            result: Ok(external_spec()),
        }],
    );
    let e = s.editor().unwrap();
    assert!(e.schema_changed && e.fields.iter().any(|f| f.key == "config.token"));
    assert!(
        last_toast(&s).contains("added 3 field(s)"),
        "{}",
        last_toast(&s)
    );
    apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(
        confirm_action(&s),
        Some(ConfirmAction::DiscardEdits { quit: false })
    );
}

#[test]
fn a_read_only_profile_loads_no_spec_and_help_lists_the_key() {
    let mut s = loaded_state(true, (80, 24));
    open_external_editor(&mut s);
    assert!(apply(&mut s, [ctrl('l')]).is_empty());
    assert!(last_toast(&s).contains("read-only"), "{}", last_toast(&s));
    assert_eq!(s.editor().unwrap().spec_status, None);
    let help = syncdeck::console::views::help::entries(
        &Keymap::defaults(),
        syncdeck::console::keymap::KeyContext::Editor,
    );
    assert!(
        help.iter()
            .any(|(keys, desc, _)| keys == "ctrl-l" && desc.contains("spec")),
        "{help:?}"
    );
}

// ----- issue 11: safety, messages, navigation, truth on screen -------------------------------

#[test]
fn enter_never_confirms_and_only_y_does() {
    // Bug 4: Enter deleted a connector though the dialog offered only y and n.
    let mut s = loaded_state(false, (80, 24));
    let fx = apply(&mut s, [ch('d'), key(KeyCode::Enter), key(KeyCode::Enter)]);
    assert!(fx.is_empty(), "enter answered the dialog: {fx:?}");
    assert!(
        matches!(
            confirm_action(&s),
            Some(ConfirmAction::DeleteConnector { .. })
        ),
        "the question stays open"
    );
    // Even a user keymap binding enter to confirm cannot make it answer.
    s.keymap = Keymap::with_user(
        "user.toml",
        "confirm = [ { on = \"enter\", run = \"confirm\" } ]",
    )
    .unwrap();
    assert!(apply(&mut s, [key(KeyCode::Enter)]).is_empty());
    assert_eq!(
        apply(&mut s, [ch('y')]),
        [Effect::DeleteConnector("pg-orders".into())]
    );
    // Dead letters: drop asks, enter does nothing, n says no.
    let mut s = loaded_state(false, (80, 24));
    let fx = apply(&mut s, [ch('5'), ch('d'), key(KeyCode::Enter), ch('n')]);
    assert!(fx.is_empty() && s.modal.is_none(), "{fx:?}");
}

#[test]
fn ctrl_c_in_the_editor_asks_to_quit_not_to_close_the_form() {
    // Bug 6: the question was the editor's "Discard the unsaved configuration changes?" and
    // y then quit the whole console.
    let mut s = loaded_state(false, (80, 24));
    s.live.local.clear();
    open_editor(&mut s);
    apply(&mut s, [ch('x')]);
    apply(&mut s, [ctrl('c')]);
    let action = confirm_action(&s).unwrap();
    assert_eq!(action.question(), "Quit syncdeck and discard the edits?");
    // Esc keeps its editor-only meaning: it asks about the form, not about quitting.
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.modal.is_none() && s.editor().is_some());
    apply(&mut s, [key(KeyCode::Esc)]);
    let action = confirm_action(&s).unwrap();
    assert_eq!(
        action.question(),
        "Discard the unsaved configuration changes?"
    );
    let fx = apply(&mut s, [ch('y')]);
    assert!(fx.is_empty() && !s.quit && s.editor().is_none());
    // Ctrl-c again, y quits.
    open_editor(&mut s);
    apply(&mut s, [ch('x'), ctrl('c')]);
    assert_eq!(apply(&mut s, [ch('y')]), [Effect::Quit]);
    assert!(s.quit);
}

#[test]
fn a_read_only_profile_opens_the_editor_to_view() {
    // Smaller bug: read-only refused `e` instead of opening the editor.
    let mut s = loaded_state(true, (80, 24));
    let fx = apply(&mut s, [ch('e')]);
    assert_eq!(fx, [Effect::LoadConnectorForEdit("pg-orders".into())]);
    apply(
        &mut s,
        [Action::EditorLoaded {
            id: "pg-orders".into(),
            result: Ok(connectors()[0].clone()),
        }],
    );
    assert!(s.editor().is_some(), "the editor opens");
    // Typing and saving stay refused.
    s.toasts.clear();
    apply(&mut s, [ch('x')]);
    assert!(!s.editor().unwrap().is_dirty());
    assert!(last_toast(&s).contains("read-only"), "{}", last_toast(&s));
    assert!(apply(&mut s, [ctrl('s')]).is_empty());
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.editor().is_none() && s.modal.is_none());
}

#[test]
fn messages_keep_every_toast_in_full() {
    // Bug 3: toasts were cut mid-word with no history.
    let mut s = loaded_state(false, (80, 24));
    let long = format!(
        "deleting connector 'pg-orders': {}",
        "the cluster said no. ".repeat(12)
    );
    apply(
        &mut s,
        [
            Action::Notify(ToastLevel::Info, "first".into()),
            Action::Failed {
                op: Operation::DeleteConnector {
                    connector_id: "pg-orders".into(),
                },
                error: "the cluster said no. ".repeat(12),
            },
            Action::Notify(ToastLevel::Info, "first".into()),
            Action::Notify(ToastLevel::Info, "first".into()),
        ],
    );
    let texts: Vec<&str> = s.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", long.as_str(), "first"]);
    assert_eq!(
        s.messages[2].repeats, 2,
        "a repeat is counted, not stored twice"
    );
    // Toasts expire; the history stays.
    let _ = update(
        &mut s,
        Action::Tick(Timestamp(now().0 + chrono::Duration::seconds(60))),
    );
    assert!(s.toasts.is_empty());
    assert_eq!(s.messages.len(), 3);
    // `m` and `:messages` open it; esc comes back.
    apply(&mut s, [ch('m')]);
    assert!(matches!(s.screen(), Some(Screen::Messages { .. })));
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.screen().is_none());
    apply(&mut s, [ch(':')]);
    for c in "messages".chars() {
        apply(&mut s, [ch(c)]);
    }
    apply(&mut s, [key(KeyCode::Enter)]);
    assert!(matches!(s.screen(), Some(Screen::Messages { .. })));
    // The screen draws the long message whole, wrapped.
    let screen = text(&draw(&s, &theme("default")));
    let flat: String = screen
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(&long.split_whitespace().collect::<Vec<_>>().join(" ")),
        "{screen}"
    );
}

#[test]
fn toasts_leave_with_the_view_and_never_cover_rows() {
    // Smaller bug: toasts drew over the border and table rows, and stayed across views.
    let mut s = loaded_state(false, (80, 24));
    let before = text(&draw(&s, &theme("default")));
    apply(
        &mut s,
        [Action::Notify(
            ToastLevel::Warn,
            "a warning about the cluster".into(),
        )],
    );
    let with = text(&draw(&s, &theme("default")));
    for row in ["Orders DB", "demo-generator"] {
        let line = |t: &str| t.lines().find(|l| l.contains(row)).map(str::to_string);
        assert_eq!(
            line(&before),
            line(&with),
            "the toast covered the row {row}"
        );
    }
    assert!(with.contains("a warning about the cluster"), "{with}");
    apply(&mut s, [ch('2')]);
    assert!(s.toasts.is_empty(), "a view change clears the toasts");
    assert_eq!(
        s.messages.last().unwrap().text,
        "a warning about the cluster"
    );
}

#[test]
fn after_an_unknown_command_the_prompt_starts_empty() {
    let mut s = loaded_state(false, (80, 24));
    apply(
        &mut s,
        [ch(':'), ch('x'), ch('y'), ch('z'), key(KeyCode::Enter)],
    );
    match &s.modal {
        Some(Modal::CommandLine(line)) => {
            assert_eq!(line.input, "", "the old text stays in the prompt");
            assert!(line.error.as_deref().unwrap_or("").contains("'xyz'"));
        }
        _ => panic!("the command line closed on an error"),
    }
    for c in "mouse".chars() {
        apply(&mut s, [ch(c)]);
    }
    let fx = apply(&mut s, [key(KeyCode::Enter)]);
    assert_eq!(fx, [Effect::SetMouse(true)]);
}

#[test]
fn logs_say_when_the_filter_matches_nothing_and_open_a_line_in_full() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('7'), ch('/'), ch('z'), ch('q'), ch('x')]);
    let screen = text(&draw(&s, &theme("default")));
    assert!(!screen.contains("no log lines yet"), "{screen}");
    assert!(screen.contains("matches 'zqx'"), "{screen}");
    apply(&mut s, [key(KeyCode::Esc)]);
    // Enter opens the selected (newest) line in full, wrapped; w toggles wrapping.
    apply(&mut s, [ch('k'), key(KeyCode::Enter)]);
    match s.screen() {
        Some(Screen::LogLine { text, .. }) => assert!(text.contains("bulk request failed")),
        _ => panic!("no line detail"),
    }
    apply(&mut s, [key(KeyCode::Esc)]);
    // Long lines wrap by default; w cuts them at the edge, as `tail` would.
    assert!(s.logs.wrap);
    let long = format!(
        "2024-05-01T09:59:59.000Z  WARN syncdeck: {} END",
        "word ".repeat(30)
    );
    let mut lines = log_lines();
    lines.push(long);
    apply(&mut s, [Action::LogsLoaded { lines, total: 5 }, ch('G')]);
    let wrapped = text(&draw(&s, &theme("default")));
    assert!(
        wrapped.contains("END"),
        "the wrapped line is whole:\n{wrapped}"
    );
    apply(&mut s, [ch('w')]);
    assert!(!s.logs.wrap);
    let cut = text(&draw(&s, &theme("default")));
    assert!(!cut.contains("END"), "{cut}");
}

#[test]
fn sort_by_command_or_shift_letter_is_remembered_per_view() {
    let mut s = loaded_state(false, (80, 24));
    let names = |s: &syncdeck::console::app::AppState| -> Vec<String> {
        s.connectors.table.visible().map(|c| c.id.clone()).collect()
    };
    apply(&mut s, [ch(':')]);
    for c in "sort id desc".chars() {
        apply(&mut s, [ch(c)]);
    }
    apply(&mut s, [key(KeyCode::Enter)]);
    assert!(s.modal.is_none());
    assert_eq!(names(&s), ["pg-orders", "demo-generator", "demo-directory"]);
    assert_eq!(s.sort_label().as_deref(), Some("sort ID↓"));
    // Shift + I again: the other direction.
    apply(&mut s, [ch('I')]);
    assert_eq!(names(&s), ["demo-directory", "demo-generator", "pg-orders"]);
    assert_eq!(s.sort_label().as_deref(), Some("sort ID↑"));
    // Another view has its own; coming back finds this one, also after a reload.
    apply(&mut s, [ch('2'), ch('S')]);
    assert_eq!(s.sort_label().as_deref(), Some("sort STATUS↑"));
    assert_eq!(s.jobs.table.get(0).unwrap().status, JobStatus::Completed);
    apply(
        &mut s,
        [ch('1'), Action::ConnectorsLoaded(Ok(connectors()))],
    );
    assert_eq!(s.sort_label().as_deref(), Some("sort ID↑"));
    assert_eq!(names(&s), ["demo-directory", "demo-generator", "pg-orders"]);
    // The header shows it.
    let screen = text(&draw(&s, &theme("default")));
    assert!(screen.contains("sort ID↑"), "{screen}");
    // A column the view does not have is refused with the columns it has.
    apply(&mut s, [ch(':')]);
    for c in "sort worker".chars() {
        apply(&mut s, [ch(c)]);
    }
    apply(&mut s, [key(KeyCode::Enter)]);
    match &s.modal {
        Some(Modal::CommandLine(line)) => {
            let e = line.error.clone().unwrap_or_default();
            assert!(e.contains("'worker'") && e.contains("last_sync"), "{e}");
        }
        _ => panic!("no error for an unknown column"),
    }
}

#[test]
fn drill_down_from_connector_to_jobs_to_job_to_dead_letters_and_back() {
    let mut s = loaded_state(false, (80, 24));
    apply(&mut s, [ch('j')]);
    assert_eq!(selected_connector(&s), "demo-generator");
    // o: the connector's jobs (the server filters them).
    let fx = apply(&mut s, [ch('o')]);
    assert_eq!(s.view, ViewId::Jobs);
    assert_eq!(s.jobs.filter.connector.as_deref(), Some("demo-generator"));
    assert!(
        matches!(fx.as_slice(), [Effect::LoadJobs(q)] if q.connector_id.as_deref() == Some("demo-generator"))
    );
    assert_eq!(s.scope_label().as_deref(), Some("connector=demo-generator"));
    let only: Vec<_> = jobs()
        .into_iter()
        .filter(|j| j.connector.id == "demo-generator")
        .collect();
    apply(&mut s, [Action::JobsLoaded(Ok(only))]);
    // Enter on the error job: its detail, with its dead letters counted.
    apply(&mut s, [ch('j')]);
    let fx = apply(&mut s, [key(KeyCode::Enter)]);
    assert_eq!(
        fx,
        [Effect::CountDeadLetters {
            job_id: "job-err-0004".into()
        }]
    );
    apply(
        &mut s,
        [Action::DeadLettersCounted {
            job_id: "job-err-0004".into(),
            result: Ok(3),
        }],
    );
    let screen = text(&draw(&s, &theme("default")));
    assert!(screen.contains("3 open"), "{screen}");
    // D: that job's dead letters only.
    apply(&mut s, [ch('D')]);
    assert_eq!(s.view, ViewId::DeadLetters);
    assert_eq!(s.dead_letters.table.scope(), Some("job-err-0004"));
    assert_eq!(s.dead_letters.table.len(), 3);
    // Back along the path: the job detail, the connector's jobs, the connectors.
    apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(s.view, ViewId::Jobs);
    assert!(matches!(s.screen(), Some(Screen::JobDetail { id, .. }) if id == "job-err-0004"));
    assert_eq!(s.dead_letters.table.scope(), None);
    apply(&mut s, [key(KeyCode::Esc)]);
    assert!(s.screen().is_none() && s.view == ViewId::Jobs);
    let fx = apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(s.view, ViewId::Connectors);
    assert_eq!(
        s.jobs.filter.connector, None,
        "the drill-down's filter goes"
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadJobs(q) if q.connector_id.is_none()))
    );
    assert_eq!(selected_connector(&s), "demo-generator");
}

#[test]
fn view_commands_take_a_drill_down_or_a_filter() {
    let mut s = loaded_state(false, (80, 24));
    let run = |s: &mut syncdeck::console::app::AppState, text: &str| {
        apply(s, [ch(':')]);
        for c in text.chars() {
            apply(s, [ch(c)]);
        }
        apply(s, [key(KeyCode::Enter)])
    };
    let fx = run(&mut s, "jobs pg-orders");
    assert_eq!(s.view, ViewId::Jobs);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadJobs(q)] if q.connector_id.as_deref() == Some("pg-orders"))
    );
    run(&mut s, "dlq job-err-0004");
    assert_eq!(s.view, ViewId::DeadLetters);
    assert_eq!(s.dead_letters.table.scope(), Some("job-err-0004"));
    apply(&mut s, [key(KeyCode::Esc)]);
    assert_eq!(s.view, ViewId::Jobs, "esc comes back along the path");
    // Not a known id: a filter.
    run(&mut s, "connectors orders");
    assert_eq!(s.view, ViewId::Connectors);
    assert_eq!(s.connectors.table.filter(), "orders");
    assert_eq!(selected_connector(&s), "pg-orders");
    // A plain view switch ends the path.
    assert!(s.path.is_empty());
}

#[test]
fn attach_shows_attached_reconnecting_and_unreachable_since() {
    // Bug 8: attaching to a dead address looked connected once the toast faded.
    let mut s = loaded_state(false, (160, 30));
    s.settings.attach = Some("127.0.0.1:9".into());
    assert_eq!(s.attach_status(), Some(AttachStatus::Attaching));
    let fail = |s: &mut syncdeck::console::app::AppState| {
        apply(
            s,
            [Action::AttachedLoaded(Err(
                "'http://127.0.0.1:9/status': connection refused".into(),
            ))],
        )
    };
    fail(&mut s);
    let since = s.now;
    assert_eq!(s.attach_status(), Some(AttachStatus::Unreachable { since }));
    // Long after the toast expired, the header still says so.
    let later = Timestamp(now().0 + chrono::Duration::seconds(90));
    let _ = update(&mut s, Action::Tick(later));
    fail(&mut s);
    assert!(s.toasts.is_empty());
    assert_eq!(s.attach_status(), Some(AttachStatus::Unreachable { since }));
    let screen = text(&draw(&s, &theme("default")));
    assert!(screen.contains("unreachable since 10:00:00"), "{screen}");
    assert!(!screen.contains("attached"), "{screen}");
    // It answers: attached. It stops: reconnecting, then unreachable.
    apply(
        &mut s,
        [Action::AttachedLoaded(Ok(
            syncdeck::engine::status::StatusDocument {
                worker: "w".into(),
                version: "0".into(),
                jobs: vec![snapshot("job-attached", 10)],
                pool: None,
            },
        ))],
    );
    assert_eq!(s.attach_status(), Some(AttachStatus::Attached));
    assert!(s.live_rows().iter().any(|r| r.job_id == "job-attached"));
    let t = |secs| Action::Tick(Timestamp(later.0 + chrono::Duration::seconds(secs)));
    let _ = update(&mut s, t(1));
    fail(&mut s);
    assert_eq!(s.attach_status(), Some(AttachStatus::Reconnecting));
    let _ = update(&mut s, t(30));
    assert!(matches!(
        s.attach_status(),
        Some(AttachStatus::Unreachable { .. })
    ));
    assert!(
        !s.live_rows().iter().any(|r| r.job_id == "job-attached"),
        "an unreachable worker's jobs are not shown as live"
    );
    // The worker is read on every view, not only on Live.
    apply(&mut s, [ch('1')]);
    s.live.attached.loading = false;
    let fx = update(&mut s, t(60));
    assert!(
        fx.iter().any(|e| matches!(e, Effect::PollAttached(_))),
        "{fx:?}"
    );
}

#[test]
fn jobs_of_workers_gone_quiet_are_stale_not_live() {
    // Smaller bug: jobs of workers last seen 335 days ago were shown as live.
    let mut s = loaded_state(false, (120, 30));
    let mut old = jobs()[1].clone();
    old.id = "job-ghost-0009".into();
    old.last_seen = Some(ts("2023-06-01T10:00:00Z"));
    old.started_at = Some(ts("2023-06-01T09:00:00Z"));
    let mut active: Vec<_> = jobs()
        .into_iter()
        .filter(|j| j.status.is_active())
        .collect();
    active.push(old.clone());
    apply(&mut s, [Action::ActiveJobsLoaded(Ok(active))]);
    assert!(s.job_is_stale(&old));
    assert!(
        !s.job_is_stale(&jobs()[1]),
        "a job seen two minutes ago is live"
    );
    let rows = s.live_rows();
    let ghost = rows.iter().find(|r| r.job_id == "job-ghost-0009").unwrap();
    assert!(ghost.stale);
    apply(&mut s, [ch('3')]);
    let screen = text(&draw(&s, &theme("default")));
    let line = screen
        .lines()
        .find(|l| l.contains("job-ghost"))
        .unwrap_or("");
    assert!(line.contains("stale"), "{screen}");
}

#[test]
fn the_pool_keeps_dead_nodes_and_shows_the_attached_workers() {
    // Bug 9: a node taken down disappeared; attached, the pool shown was the console's own.
    let mut s = loaded_state(false, (120, 40));
    let all = nodes();
    let gone = all[0].url.clone();
    let rest: Vec<_> = all.iter().skip(1).cloned().collect();
    apply(&mut s, [Action::PoolLoaded(Ok(Some(rest)))]);
    let pool = s.breaker.pool.value.clone().flatten().unwrap();
    let kept = pool
        .iter()
        .find(|n| n.url == gone)
        .expect("the node vanished");
    assert!(!kept.alive, "a node that left the pool is listed as dead");
    // Attached: the worker's pool, from its /status; the console's own is ignored.
    s.settings.attach = Some("127.0.0.1:7777".into());
    let worker_node = syncdeck::engine::status::StatusNode {
        url: "http://worker-es:9200".into(),
        alive: false,
        failures: 3,
        retry_in_ms: Some(4000),
    };
    apply(
        &mut s,
        [Action::AttachedLoaded(Ok(
            syncdeck::engine::status::StatusDocument {
                worker: "w".into(),
                version: "0".into(),
                jobs: Vec::new(),
                pool: Some(vec![worker_node]),
            },
        ))],
    );
    apply(&mut s, [Action::PoolLoaded(Ok(Some(nodes())))]);
    let pool = s.breaker.pool.value.clone().flatten().unwrap();
    assert_eq!(pool.len(), 1, "{pool:?}");
    assert_eq!(pool[0].url, "http://worker-es:9200");
    assert_eq!(pool[0].dead_for_ms, Some(4000));
    apply(&mut s, [ch('4')]);
    let screen = text(&draw(&s, &theme("default")));
    assert!(
        screen.contains("worker-es") && screen.contains("dead"),
        "{screen}"
    );
    // An older worker without a pool: said so, not the console's pool.
    apply(
        &mut s,
        [Action::AttachedLoaded(Ok(
            syncdeck::engine::status::StatusDocument {
                worker: "w".into(),
                version: "0.0.9".into(),
                jobs: Vec::new(),
                pool: None,
            },
        ))],
    );
    assert!(
        s.breaker
            .pool
            .error
            .as_deref()
            .is_some_and(|e| e.contains("does not report its node pool"))
    );
}

#[test]
fn starting_says_what_it_is_doing() {
    // Smaller bug: `starting` showed no progress for seconds.
    let progress = syncdeck::engine::progress::Progress::new("job-s", "demo-generator", "idx");
    progress.set_step("checking the configuration, pinging the source");
    let snap = progress.snapshot();
    assert_eq!(
        snap.step.as_deref(),
        Some("checking the configuration, pinging the source")
    );
    let mut s = loaded_state(false, (120, 40));
    apply(&mut s, [Action::LiveLoaded(vec![snap]), ch('3')]);
    while s.live_selected().map(|r| r.job_id) != Some("job-s") {
        let before = s.live.cursor.selected;
        apply(&mut s, [ch('j')]);
        assert_ne!(before, s.live.cursor.selected, "job-s not in the Live view");
    }
    let screen = text(&draw(&s, &theme("default")));
    assert!(
        screen.contains("starting: checking the configuration"),
        "{screen}"
    );
    // The step ends with the phase.
    progress.set_phase(syncdeck::engine::progress::Phase::Extracting);
    assert_eq!(progress.snapshot().step, None);
}

#[test]
fn a_node_that_left_the_pool_drops_out_while_a_dead_one_stays() {
    // A node the pool no longer names stays listed as dead (a sniff drops a node that is
    // down) until a probe finds it answering: then it left the pool rather than died, and
    // drops out on that refresh. One that does not answer stays listed as dead.
    let mut s = loaded_state(false, (120, 40));
    apply(&mut s, [ch('4')]);
    let all = nodes();
    let (left, down) = (all[0].url.clone(), all[2].url.clone());
    let only_middle = || Action::PoolLoaded(Ok(Some(vec![nodes()[1].clone()])));
    let fx = apply(&mut s, [only_middle()]);
    assert!(
        fx.contains(&Effect::ProbeNodes(vec![left.clone(), down.clone()])),
        "{fx:?}"
    );
    let listed = |s: &syncdeck::console::app::AppState| -> Vec<(String, bool)> {
        s.breaker
            .pool
            .value
            .clone()
            .flatten()
            .unwrap()
            .into_iter()
            .map(|n| (n.url, n.alive))
            .collect()
    };
    assert_eq!(
        listed(&s).len(),
        3,
        "both vanished nodes are listed as dead"
    );
    assert!(
        listed(&s)
            .iter()
            .all(|(u, alive)| u == &all[1].url || !alive)
    );
    // A refresh while the probe runs asks nothing more.
    let fx = apply(&mut s, [only_middle()]);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::ProbeNodes(_))),
        "{fx:?}"
    );
    s.dirty = false;
    apply(
        &mut s,
        [Action::NodesProbed(vec![
            (left.clone(), true),
            (down.clone(), false),
        ])],
    );
    assert!(s.dirty);
    assert_eq!(
        listed(&s),
        [(all[1].url.clone(), false), (down.clone(), false)],
        "the node that answers left the pool; the silent one is dead"
    );
    let screen = text(&draw(&s, &theme("default")));
    // The node pool's box (the breaker's last errors above name nodes too).
    let pool_box = screen
        .split_once("Node pool")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default();
    let line = |url: &str| {
        pool_box
            .lines()
            .find(|l| l.contains(url.trim_start_matches("http://")))
            .map(str::to_string)
    };
    assert_eq!(line(&left), None, "{screen}");
    assert!(line(&down).is_some_and(|l| l.contains("dead")), "{screen}");
    // The next refresh asks the dead one again; once the pool holds it again it shows as
    // the pool says, and nothing is left to ask.
    let fx = apply(&mut s, [only_middle()]);
    assert!(
        fx.contains(&Effect::ProbeNodes(vec![down.clone()])),
        "{fx:?}"
    );
    let back = vec![nodes()[1].clone(), nodes()[2].clone()];
    apply(
        &mut s,
        [
            Action::NodesProbed(vec![(down.clone(), false)]),
            Action::PoolLoaded(Ok(Some(back))),
        ],
    );
    assert_eq!(
        listed(&s),
        [(all[1].url.clone(), false), (down.clone(), true)]
    );
    assert!(s.breaker.vanished.is_empty());
    let fx = apply(
        &mut s,
        [Action::PoolLoaded(Ok(Some(vec![
            nodes()[1].clone(),
            nodes()[2].clone(),
        ])))],
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::ProbeNodes(_))),
        "{fx:?}"
    );
}

#[test]
fn attached_a_node_the_worker_no_longer_reports_drops_out() {
    let mut s = loaded_state(false, (120, 40));
    s.settings.attach = Some("127.0.0.1:7777".into());
    let status = |urls: &[&str]| {
        Action::AttachedLoaded(Ok(syncdeck::engine::status::StatusDocument {
            worker: "w".into(),
            version: "0".into(),
            jobs: Vec::new(),
            pool: Some(
                urls.iter()
                    .map(|u| syncdeck::engine::status::StatusNode {
                        url: u.to_string(),
                        alive: false,
                        failures: 2,
                        retry_in_ms: Some(1000),
                    })
                    .collect(),
            ),
        }))
    };
    let fx = apply(&mut s, [status(&["http://es-a:9200", "http://es-b:9200"])]);
    assert!(!fx.iter().any(|e| matches!(e, Effect::ProbeNodes(_))));
    apply(&mut s, [status(&["http://es-b:9200"]), ch('4')]);
    let pool = s.breaker.pool.value.clone().flatten().unwrap();
    assert_eq!(pool.len(), 1, "{pool:?}");
    assert_eq!(pool[0].url, "http://es-b:9200");
    assert!(!pool[0].alive, "the worker's dead node is listed as dead");
    let screen = text(&draw(&s, &theme("default")));
    assert!(!screen.contains("es-a"), "{screen}");
    assert!(screen.contains("es-b"), "{screen}");
}

#[tokio::test]
async fn the_pool_view_asks_a_vanished_node_through_the_real_runner() {
    // End to end through `console::io`: this console's transport holds one node of the
    // stand-in's two; the other was listed before. Down, it stays listed as dead; up (it
    // answers, yet the pool does not hold it), it drops out on the next refresh.
    use crate::support::{NodeDownMode, StandIn, StandInOptions};
    use std::sync::Arc;
    let standin = StandIn::start(StandInOptions {
        nodes: 2,
        kibana: false,
        ..Default::default()
    })
    .await;
    let urls = standin.es_urls();
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::try_unwrap(embedded_handles(&dir.path().join("e.sqlite3"), None))
        .ok()
        .expect("one owner");
    let mut es = syncdeck::config::EsSettings::new(vec![urls[0].parse().unwrap()]);
    es.request_timeout = std::time::Duration::from_secs(5);
    let backend = syncdeck::backend::elasticsearch::ElasticsearchBackend::new(&es).unwrap();
    let handles = Arc::new(syncdeck::console::io::Handles {
        elasticsearch: Some(Arc::new(backend)),
        ..embedded
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut s = new_state(false, (120, 40));
    let row = |url: &String| syncdeck::console::live::NodeRow {
        url: url.clone(),
        alive: true,
        failures: 0,
        dead_for_ms: None,
    };
    let _ = update(
        &mut s,
        Action::PoolLoaded(Ok(Some(vec![row(&urls[0]), row(&urls[1])]))),
    );
    let listed = |s: &syncdeck::console::app::AppState| -> Vec<(String, bool)> {
        let rows = s.breaker.pool.value.clone().flatten().unwrap();
        rows.into_iter().map(|n| (n.url, n.alive)).collect()
    };
    standin.faults().node_down(1, NodeDownMode::Refuse);
    // Until the load answered (a node vanished) and so did the probe it asked for.
    pump_until(
        &mut s,
        &handles,
        &mut rx,
        vec![Effect::LoadPool],
        &tx,
        |s| !s.breaker.vanished.is_empty() && !s.breaker.probing,
    )
    .await;
    assert_eq!(
        listed(&s),
        [(urls[0].clone(), true), (urls[1].clone(), false)],
        "a node that is down stays listed as dead"
    );
    standin.faults().node_up(1);
    pump_until(
        &mut s,
        &handles,
        &mut rx,
        vec![Effect::LoadPool],
        &tx,
        |s| s.breaker.vanished.is_empty() && !s.breaker.probing,
    )
    .await;
    assert_eq!(
        listed(&s),
        [(urls[0].clone(), true)],
        "a node that answers but is not in the pool left it"
    );
}

#[tokio::test]
async fn a_node_back_in_the_cluster_is_listed_alive_when_it_answers_a_probe() {
    // Review of issue 11, bug 9 again: with sniffing on, a node that went down is sniffed
    // out of the pool; when it came back it answered the probe and so dropped out of the view
    // until the next sniff. Answering proves only reachability: the cluster's `_nodes`
    // decides, so a node back in the cluster is listed alive at once, and only one that
    // answers but is not in the cluster (here: a node of another cluster) drops out.
    use crate::support::{NodeDownMode, StandIn, StandInOptions};
    use std::sync::Arc;
    let options = || StandInOptions {
        nodes: 2,
        kibana: false,
        ..Default::default()
    };
    let standin = StandIn::start(options()).await;
    let elsewhere = StandIn::start(StandInOptions {
        nodes: 1,
        ..options()
    })
    .await;
    let urls = standin.es_urls();
    let other = elsewhere.es_urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::try_unwrap(embedded_handles(&dir.path().join("e.sqlite3"), None))
        .ok()
        .expect("one owner");
    let mut es =
        syncdeck::config::EsSettings::new(urls.iter().map(|u| u.parse().unwrap()).collect());
    es.request_timeout = std::time::Duration::from_secs(5);
    es.sniff.on_node_failure = true;
    let backend = syncdeck::backend::elasticsearch::ElasticsearchBackend::new(&es).unwrap();
    let handles = Arc::new(syncdeck::console::io::Handles {
        elasticsearch: Some(Arc::new(backend)),
        ..embedded
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut s = new_state(false, (120, 40));
    // Nodes and whether they are listed alive, in URL order (a sniff lists them as the
    // cluster does).
    let listed = |s: &syncdeck::console::app::AppState| -> Vec<(String, bool)> {
        let rows = s.breaker.pool.value.clone().flatten().unwrap_or_default();
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|n| (n.url.trim_end_matches('/').to_string(), n.alive))
            .collect();
        rows.sort();
        rows
    };
    let sorted = |mut rows: Vec<(String, bool)>| {
        rows.sort();
        rows
    };
    pump_until(
        &mut s,
        &handles,
        &mut rx,
        vec![Effect::LoadPool],
        &tx,
        |s| listed(s).len() == 2,
    )
    .await;
    assert_eq!(
        listed(&s),
        sorted(vec![(urls[0].clone(), true), (urls[1].clone(), true)])
    );
    // The view also lists a node that left this cluster for another one.
    let mut rows = s.breaker.pool.value.clone().flatten().unwrap();
    rows.push(syncdeck::console::live::NodeRow {
        url: other.clone(),
        alive: true,
        failures: 0,
        dead_for_ms: None,
    });
    let _ = update(&mut s, Action::PoolLoaded(Ok(Some(rows))));
    // Node 1 goes down: the refresh's sniff drops it from the pool; the probe finds it
    // silent (listed as dead) and the other cluster's node answering yet not in `_nodes`.
    standin.faults().node_down(1, NodeDownMode::Refuse);
    pump_until(
        &mut s,
        &handles,
        &mut rx,
        vec![Effect::LoadPool],
        &tx,
        |s| s.breaker.vanished.len() == 1 && !s.breaker.probing,
    )
    .await;
    assert_eq!(
        listed(&s),
        sorted(vec![(urls[0].clone(), true), (urls[1].clone(), false)]),
        "the silent node stays dead; the one outside the cluster left"
    );
    // Node 1 comes back after that refresh's sniff, before the probe it asked for: it
    // answers, and the cluster names it again, so it is listed alive, not dropped.
    standin.faults().node_up(1);
    s.breaker.probing = true;
    pump_until(
        &mut s,
        &handles,
        &mut rx,
        vec![Effect::ProbeNodes(vec![urls[1].clone()])],
        &tx,
        |s| !s.breaker.probing,
    )
    .await;
    assert_eq!(
        listed(&s),
        sorted(vec![(urls[0].clone(), true), (urls[1].clone(), true)]),
        "a node back in the cluster is listed alive at once"
    );
    assert!(s.breaker.vanished.is_empty());
}

#[test]
fn the_remote_jobs_text_fits_its_box_at_every_width() {
    // Review: the box's height was counted with `format::wrap` while ratatui's paragraph
    // wrapped the text its own way; where the two disagree, the last line is cut off or a
    // blank line opens above the tables. Tall enough that the text always fits.
    for width in 20..=200u16 {
        let mut s = loaded_state(false, (width, 120));
        apply(&mut s, [ch('3'), ch('j')]);
        let screen = text(&draw(&s, &theme("default")));
        let rows: Vec<&str> = screen
            .lines()
            .skip_while(|l| !l.contains("┌ job-remote-0002"))
            .skip(1)
            .take_while(|l| !l.starts_with('└'))
            .map(|l| {
                l.trim_start_matches('│')
                    .trim_end()
                    .trim_end_matches('│')
                    .trim()
            })
            .collect();
        assert!(!rows.is_empty(), "width {width}: no remote box\n{screen}");
        assert!(
            rows.iter().all(|r| !r.is_empty()),
            "width {width}: a gap in the box\n{screen}"
        );
        let words = rows.join(" ");
        assert!(
            words.ends_with("to watch it live."),
            "width {width}: the last line is not drawn\n{screen}"
        );
    }
}
