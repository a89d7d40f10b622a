//! Snapshots of every view, screen and dialog at 80×24 and 160×48, in the default and the
//! monochrome theme, drawn with ratatui's `TestBackend` from fixed data (a fixed `now`, no
//! random ids). Every buffer is checked for the sensitive values (they must never be drawn),
//! and every monochrome buffer for colour (there must be none: emphasis is bold, reverse and
//! underline, which its snapshot shows as a second grid).

use crate::console_fixtures;

use console_fixtures::*;
use crossterm::event::KeyCode;
use ratatui::style::Color;
use syncdeck::console::app::{Action, AppState, ProfileInfo, ToastLevel};

struct Case {
    name: &'static str,
    read_only: bool,
    setup: fn(&mut AppState),
}

fn open_editor(s: &mut AppState) {
    apply(s, [ch('e')]);
    apply(
        s,
        [Action::EditorLoaded {
            id: "pg-orders".into(),
            result: Ok(connectors()[0].clone()),
        }],
    );
    s.toasts.clear();
}

/// An `external` connector's editor after its program's spec was loaded (unsaved).
fn open_spec_editor(s: &mut AppState) {
    apply(
        s,
        [Action::EditorLoaded {
            id: "ext".into(),
            result: Ok(external_connector()),
        }],
    );
    apply(s, [ctrl('l')]);
    apply(
        s,
        [Action::SpecLoaded {
            connector_id: "ext".into(),
            result: Ok(external_spec()),
        }],
    );
    s.toasts.clear();
}

const CASES: &[Case] = &[
    Case {
        name: "connectors",
        read_only: false,
        setup: |_| {},
    },
    Case {
        name: "connectors_read_only",
        read_only: true,
        setup: |_| {},
    },
    Case {
        name: "jobs",
        read_only: false,
        setup: |s| {
            apply(s, [ch('2'), ch('j')]);
        },
    },
    Case {
        name: "live",
        read_only: false,
        setup: |s| {
            apply(s, [ch('3')]);
        },
    },
    Case {
        name: "live_remote_job",
        read_only: false,
        setup: |s| {
            apply(s, [ch('3'), ch('j')]);
        },
    },
    Case {
        name: "breaker",
        read_only: false,
        setup: |s| {
            apply(s, [ch('4')]);
        },
    },
    Case {
        name: "dead_letters",
        read_only: false,
        setup: |s| {
            apply(s, [ch('5'), ch(' ')]);
        },
    },
    Case {
        name: "kibana",
        read_only: false,
        setup: |s| {
            apply(s, [ch('6')]);
        },
    },
    Case {
        name: "logs",
        read_only: false,
        setup: |s| {
            apply(s, [ch('7')]);
        },
    },
    Case {
        name: "connector_detail",
        read_only: false,
        setup: |s| {
            apply(s, [key(KeyCode::Enter)]);
            apply(
                s,
                [Action::ConnectorDetailLoaded {
                    id: "pg-orders".into(),
                    result: Ok((connectors()[0].clone(), jobs())),
                }],
            );
        },
    },
    Case {
        name: "job_detail",
        read_only: false,
        setup: |s| {
            apply(s, [ch('2'), ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)]);
        },
    },
    Case {
        name: "dead_letter_detail",
        read_only: false,
        setup: |s| {
            apply(s, [ch('5'), key(KeyCode::Enter)]);
        },
    },
    Case {
        name: "editor",
        read_only: false,
        setup: |s| {
            open_editor(s);
            // Change the port, then rest on the password (masked).
            apply(
                s,
                [
                    key(KeyCode::Down),
                    ch('1'),
                    key(KeyCode::Tab),
                    key(KeyCode::Tab),
                    key(KeyCode::Tab),
                ],
            );
        },
    },
    Case {
        name: "editor_invalid",
        read_only: false,
        setup: |s| {
            open_editor(s);
            apply(
                s,
                [
                    key(KeyCode::Down),
                    ch('x'),
                    key(KeyCode::Tab),
                    key(KeyCode::Tab),
                    key(KeyCode::Tab),
                    key(KeyCode::Tab),
                    ch(' '),
                ],
            );
            apply(
                s,
                [Action::ConfigSaved {
                    connector_id: "pg-orders".into(),
                    result: Err("validation_exception: [port] is not a number".into()),
                }],
            );
            s.toasts.clear();
        },
    },
    Case {
        name: "editor_spec",
        read_only: false,
        setup: open_spec_editor,
    },
    Case {
        name: "help",
        read_only: false,
        setup: |s| {
            apply(s, [ch('?')]);
        },
    },
    Case {
        name: "confirm_delete",
        read_only: false,
        setup: |s| {
            apply(s, [ch('d')]);
        },
    },
    Case {
        name: "confirm_drop",
        read_only: false,
        setup: |s| {
            apply(s, [ch('5'), ch('a'), ch('d')]);
        },
    },
    Case {
        name: "start_sync",
        read_only: false,
        setup: |s| {
            apply(s, [ch('j'), ch('s')]);
        },
    },
    Case {
        name: "new_connector",
        read_only: false,
        setup: |s| {
            apply(s, [ch('n'), key(KeyCode::Tab), ch('a'), ch('b')]);
        },
    },
    Case {
        name: "kibana_execute",
        read_only: false,
        setup: |s| {
            apply(s, [ch('6'), ch('x')]);
        },
    },
    Case {
        name: "command_line",
        read_only: false,
        setup: |s| {
            apply(s, [ch(':'), ch('l'), key(KeyCode::Tab)]);
        },
    },
    Case {
        name: "filter",
        read_only: false,
        setup: |s| {
            apply(s, [ch('/'), ch('d'), ch('e'), ch('m')]);
        },
    },
    Case {
        name: "toasts",
        read_only: false,
        setup: |s| {
            apply(
                s,
                [Action::Notify(
                    ToastLevel::Info,
                    "sync job job-live-0001 of 'demo-generator' runs on this console's engine"
                        .into(),
                )],
            );
            apply(
                s,
                [Action::ConnectorsLoaded(Err(
                    "cluster unreachable: connection refused (http://127.0.0.1:9200)".into(),
                ))],
            );
        },
    },
    Case {
        name: "embedded_loading",
        read_only: false,
        setup: |s| {
            *s = new_state(false, s.size);
            apply(
                s,
                [Action::ProfileChanged(ProfileInfo {
                    name: "embedded".into(),
                    read_only: false,
                    backend: "embedded".into(),
                    has_kibana: false,
                })],
            );
            s.toasts.clear();
        },
    },
];

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn assert_no_secret(name: &str, text: &str) {
    for secret in [SECRET, TOKEN, "hunter2", "SENSITIVE"] {
        assert!(
            !text.contains(secret),
            "{name}: '{secret}' is on screen:\n{text}"
        );
    }
}

#[test]
fn every_view_in_both_themes_and_sizes() {
    for case in CASES {
        for size in SIZES {
            for theme_name in ["default", "monochrome"] {
                let mut s = loaded_state(case.read_only, size);
                (case.setup)(&mut s);
                let theme = theme(theme_name);
                let buffer = draw(&s, &theme);
                let text = text(&buffer);
                let name = format!("{}_{}x{}_{theme_name}", case.name, size.0, size.1);
                assert_no_secret(&name, &text);
                if theme_name == "monochrome" {
                    for cell in buffer.content() {
                        assert!(
                            cell.fg == Color::Reset && cell.bg == Color::Reset,
                            "{name}: a coloured cell in monochrome: {cell:?}"
                        );
                    }
                    insta::assert_snapshot!(
                        name,
                        format!("{text}\n--- emphasis ---\n{}", emphasis(&buffer))
                    );
                } else {
                    insta::assert_snapshot!(name, text);
                }
            }
        }
    }
}

#[test]
fn the_reveal_key_shows_one_value_until_the_cursor_leaves() {
    let mut s = loaded_state(false, (80, 24));
    open_editor(&mut s);
    // host, port, database, username, password
    apply(
        &mut s,
        [
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            key(KeyCode::Tab),
            key(KeyCode::Tab),
        ],
    );
    let masked = text(&draw(&s, &theme("default")));
    assert!(!masked.contains(SECRET), "{masked}");
    assert!(
        masked.contains("•••"),
        "the value shows as bullets:\n{masked}"
    );
    apply(&mut s, [ctrl('r')]);
    let revealed = text(&draw(&s, &theme("default")));
    assert!(
        revealed.contains(SECRET),
        "the reveal key did not reveal:\n{revealed}"
    );
    apply(&mut s, [key(KeyCode::Tab)]);
    let left = text(&draw(&s, &theme("default")));
    assert!(
        !left.contains(SECRET),
        "the value stayed revealed after the cursor left:\n{left}"
    );
}

#[test]
fn selection_is_visible_without_colour() {
    let s = loaded_state(false, (80, 24));
    let buffer = draw(&s, &theme("monochrome"));
    let text = text(&buffer);
    let row = text.lines().position(|l| l.contains("Orders DB")).unwrap();
    let reversed = (0..80)
        .filter(|&x| {
            buffer[(x, row as u16)]
                .modifier
                .contains(ratatui::style::Modifier::REVERSED)
        })
        .count();
    assert!(
        reversed > 40,
        "the selected row is not reversed in monochrome"
    );
}

#[test]
fn other_shipped_themes_draw_every_view() {
    for theme_name in ["light", "high-contrast"] {
        for case in CASES {
            let mut s = loaded_state(case.read_only, (80, 24));
            (case.setup)(&mut s);
            let text = text(&draw(&s, &theme(theme_name)));
            assert_no_secret(case.name, &text);
            assert!(
                text.contains("1 Conn"),
                "{theme_name}/{}: no tabs",
                case.name
            );
        }
    }
}

#[test]
fn degenerate_sizes_do_not_panic() {
    for size in [(1, 1), (20, 5), (40, 10), (300, 100)] {
        for case in CASES {
            let mut s = loaded_state(case.read_only, size);
            (case.setup)(&mut s);
            let text = text(&draw(&s, &theme("default")));
            assert_no_secret(case.name, &text);
        }
    }
}
