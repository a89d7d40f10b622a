//! Snapshots of every view, screen and dialog at 80×24 and 160×48, in the default and the
//! monochrome theme, drawn with ratatui's `TestBackend` from fixed data (a fixed `now`, no
//! random ids). Every buffer is checked for the sensitive values (they must never be drawn),
//! and every monochrome buffer for colour (there must be none: emphasis is bold, reverse and
//! underline, which its snapshot shows as a second grid). The default theme's snapshots
//! record colour too (a grid of style letters and their legend), so a colour change is a
//! snapshot change. Every snapshot is compared before the test fails, listing all that
//! differ. Every theme at every colour depth is checked for text drawn in its background's
//! colour, with each row of every table selected in turn.

use crate::console_fixtures;

use console_fixtures::*;
use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use serde_json::json;
use syncdeck::console::app::{Action, AppState, ProfileInfo, ToastLevel};
use syncdeck::console::theme::{self as theme_mod, ColorDepth, Theme};
use syncdeck::model::{Connector, DeadLetter, SyncJob};

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

/// Data shaped like a seeded test cluster: ids that differ only at their end, long names
/// and worker names, every job status, long reasons. Loaded through `update`.
fn seed(s: &mut AppState) {
    let statuses = [
        "connected",
        "configured",
        "error",
        "needs_configuration",
        "created",
    ];
    let services = ["postgresql", "mysql", "mongodb", "directory", "generator"];
    let last = ["completed", "in_progress", "error", "canceled", "suspended"];
    let connectors: Vec<Connector> = (0..5)
        .map(|i| {
            serde_json::from_value(json!({
                "id": format!("seed-connector-{i}"),
                "name": format!("Seed connector {i} ({})", services[i]),
                "service_type": services[i],
                "index_name": format!("search-seed-connector-{i}-documents"),
                "status": statuses[i],
                "last_sync_status": last[i],
                "last_synced": "2024-05-01T09:45:00Z",
                "error": if i == 2 { json!("the source refused the credentials: FATAL: password authentication failed for user \"syncdeck\" (SQLSTATE 28P01) while connecting to db.internal:5432") } else { json!(null) },
            }))
            .unwrap()
        })
        .collect();
    let job_statuses = [
        "in_progress",
        "pending",
        "completed",
        "error",
        "canceled",
        "canceling",
        "suspended",
    ];
    let jobs: Vec<SyncJob> = job_statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let started = (*status != "pending").then_some("2024-05-01T09:30:00Z");
            let completed = matches!(*status, "completed" | "error" | "canceled")
                .then_some("2024-05-01T09:40:00Z");
            serde_json::from_value(json!({
                "id": format!("Mx8tXpMBrC0Wz8pL1x{i:02}"),
                "connector": {"id": format!("seed-connector-{}", i % 5), "index_name": "search-seed", "service_type": "postgresql"},
                "job_type": "full", "trigger_method": "on_demand", "status": status,
                "created_at": "2024-05-01T09:29:00Z", "started_at": started, "completed_at": completed,
                "last_seen": "2024-05-01T09:35:00Z",
                "indexed_document_count": 1000 * i, "deleted_document_count": i,
                "indexed_document_volume": i,
                "worker_hostname": if *status == "pending" { json!(null) } else { json!(format!("seed-worker-7f3a9c2d-{i}/4242")) },
                "error": if *status == "error" { json!("bulk request failed 3 times: no Elasticsearch node could serve the request after 3 attempt(s); last error: 'http://127.0.0.1:9201': HTTP 502 Bad Gateway, from a proxy or load balancer in front of Elasticsearch (not an Elasticsearch error: <html>bad gateway</html>)") } else { json!(null) },
            }))
            .unwrap()
        })
        .collect();
    let dead_letters: Vec<DeadLetter> = (1..=3)
        .map(|i| {
            let mut d = dead_letters()[0].clone();
            d.id = i;
            d.connector_id = format!("seed-connector-{i}");
            d.doc_id = format!("seed-document-{i:04}");
            d.reason = format!(
                "[1:{i}] failed to parse field [price] of type [scaled_float] in document with id 'seed-document-{i:04}'. Preview of field's value: 'twelve euros and {i} cents, tax included, as quoted by the supplier'"
            );
            d
        })
        .collect();
    let mut live = snapshot("job-live-0001", 4200);
    live.breaker = serde_json::from_value(json!({
        "state": "open", "failure_rate": 0.8, "threshold": 0.5, "window_len": 20, "window_size": 50,
        "window_failures": 16, "min_calls": 10, "consecutive_failures": 7, "consecutive_threshold": 5,
        "time_to_next_probe_ms": 2500, "probes_in_flight": 0, "times_opened": 3, "not_closed_for_ms": 42000,
        "max_open_ms": 300000,
        "last_errors": [
            {"reason": "no Elasticsearch node could serve the request after 3 attempt(s); last error: 'http://127.0.0.1:9201': HTTP 502 Bad Gateway, from a proxy or load balancer in front of Elasticsearch (not an Elasticsearch error: <html><body><h1>502 Bad Gateway</h1></body></html>)", "ago_ms": 4000},
            {"reason": "503 cluster_block_exception: blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];", "ago_ms": 9000}
        ]
    }))
    .expect("a breaker snapshot");
    let mut logs = log_lines();
    logs.push("2024-05-01T09:59:59.000Z ERROR syncdeck::engine::sink: bulk request failed; retrying in 2s reason=\"no Elasticsearch node could serve the request after 3 attempt(s); last error: 'http://127.0.0.1:9201': HTTP 502 Bad Gateway\" job=Mx8tXpMBrC0Wz8pL1x03 connector=seed-connector-3".into());
    let active: Vec<SyncJob> = jobs
        .iter()
        .filter(|j| j.status.is_active())
        .cloned()
        .collect();
    apply(
        s,
        [
            Action::ConnectorsLoaded(Ok(connectors)),
            Action::JobsLoaded(Ok(jobs)),
            Action::ActiveJobsLoaded(Ok(active)),
            Action::LiveLoaded(vec![live]),
            Action::DeadLettersLoaded(Ok((dead_letters, 3))),
            Action::LogsLoaded {
                lines: logs,
                total: 5,
            },
        ],
    );
    s.toasts.clear();
}

const CASES: &[Case] = &[
    Case {
        name: "seed_connectors",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('j')]);
        },
    },
    Case {
        name: "seed_connector_detail",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('j'), ch('j'), key(KeyCode::Enter)]);
            let c = s.connectors.table.selected().unwrap().clone();
            apply(
                s,
                [Action::ConnectorDetailLoaded {
                    id: c.id.clone(),
                    result: Ok((c, Vec::new())),
                }],
            );
        },
    },
    Case {
        name: "seed_jobs",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('2')]);
        },
    },
    Case {
        name: "seed_job_detail",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('2'), ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)]);
        },
    },
    Case {
        name: "seed_live",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('3')]);
        },
    },
    Case {
        name: "seed_breaker",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('4')]);
        },
    },
    Case {
        name: "seed_dead_letters",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('5')]);
        },
    },
    Case {
        name: "seed_dead_letter_detail",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('5'), key(KeyCode::Enter)]);
        },
    },
    Case {
        name: "seed_logs",
        read_only: false,
        setup: |s| {
            seed(s);
            apply(s, [ch('7')]);
        },
    },
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
        name: "live_tables",
        read_only: false,
        setup: |s| {
            apply(
                s,
                [
                    Action::LiveLoaded(vec![db_snapshot("job-live-0001")]),
                    ch('3'),
                ],
            );
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
        name: "job_detail_tables",
        read_only: false,
        setup: |s| {
            apply(s, [ch('2'), ch('/')]);
            for c in "remote".chars() {
                apply(s, [ch(c)]);
            }
            apply(s, [key(KeyCode::Enter), key(KeyCode::Enter)]);
        },
    },
    Case {
        name: "job_detail_tables_scrolled",
        read_only: false,
        setup: |s| {
            apply(s, [ch('2'), ch('/')]);
            for c in "remote".chars() {
                apply(s, [ch(c)]);
            }
            apply(s, [key(KeyCode::Enter), key(KeyCode::Enter)]);
            // Down to the tables, whatever the size (the scroll stops at the end).
            for _ in 0..16 {
                apply(s, [ch('j')]);
            }
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

/// The buffer's styles as a grid, one letter per cell (space for the terminal's defaults,
/// `~` for a row of defaults only), and a legend of what each letter stands for.
fn styles(buffer: &Buffer) -> String {
    let mut legend: Vec<(Color, Color, Modifier)> = Vec::new();
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut grid = String::new();
    let area = buffer.area;
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            let cell = &buffer[(x, y)];
            let key = (cell.fg, cell.bg, cell.modifier);
            if key == (Color::Reset, Color::Reset, Modifier::empty()) {
                line.push(' ');
                continue;
            }
            let i = match legend.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    legend.push(key);
                    legend.len() - 1
                }
            };
            line.push(letters.get(i).copied().unwrap_or('?'));
        }
        let line = line.trim_end();
        grid.push_str(if line.is_empty() { "~" } else { line });
        grid.push('\n');
    }
    let color = |c: Color| match c {
        Color::Reset => "-".to_string(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        other => format!("{other:?}"),
    };
    let mut out = grid;
    for (i, (fg, bg, m)) in legend.iter().enumerate() {
        out.push_str(&format!(
            "{} fg {} bg {} {:?}\n",
            letters.get(i).copied().unwrap_or('?'),
            color(*fg),
            color(*bg),
            m
        ));
    }
    out
}

/// Runs every snapshot assertion, then fails once listing those that differ (insta writes
/// a `.snap.new` for each), so one changed view does not hide the others.
fn check_all(checks: Vec<(String, String)>) {
    let mut failed = Vec::new();
    for (name, content) in checks {
        let result = std::panic::catch_unwind(|| insta::assert_snapshot!(name.clone(), content));
        if result.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "{} snapshot(s) differ: {}",
        failed.len(),
        failed.join(", ")
    );
}

#[test]
fn every_view_in_both_themes_and_sizes() {
    let mut checks = Vec::new();
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
                    checks.push((
                        name,
                        format!("{text}\n--- emphasis ---\n{}", emphasis(&buffer)),
                    ));
                } else {
                    checks.push((name, format!("{text}\n--- styles ---\n{}", styles(&buffer))));
                }
            }
        }
    }
    check_all(checks);
}

/// The colour a cell's text and background show in: `Reset` is the terminal's own, which a
/// theme is designed against (light text on a dark background, or the reverse for the
/// light theme); reverse video swaps them.
fn shown_colors(cell: &ratatui::buffer::Cell, light: bool) -> ((u8, u8, u8), (u8, u8, u8)) {
    let (default_fg, default_bg) = if light {
        ((0, 0, 0), (255, 255, 255))
    } else {
        ((204, 204, 204), (0, 0, 0))
    };
    let fg = theme_mod::rgb(cell.fg).unwrap_or(default_fg);
    let bg = theme_mod::rgb(cell.bg).unwrap_or(default_bg);
    if cell.modifier.contains(Modifier::REVERSED) {
        (bg, fg)
    } else {
        (fg, bg)
    }
}

/// The lowest contrast text may have (WCAG's floor for large text): below it, a status
/// reads as a smudge (the `configured` and `in_progress` rows were 1.0, text in its own
/// background).
const MIN_CONTRAST: f64 = 3.0;

/// Every cell holding text, in `buffer`, whose text is illegible on its background.
fn illegible(buffer: &Buffer, light: bool) -> Vec<String> {
    let area = buffer.area;
    let mut out = Vec::new();
    for y in 0..area.height {
        for x in 0..area.width {
            let cell = &buffer[(x, y)];
            if cell.symbol().trim().is_empty() {
                continue;
            }
            // Lines and blocks (borders, bars, sparklines) are drawn, not read: they only
            // must not vanish.
            let drawing = cell
                .symbol()
                .chars()
                .all(|c| ('\u{2500}'..='\u{259f}').contains(&c));
            let (fg, bg) = shown_colors(cell, light);
            let ratio = theme_mod::contrast(fg, bg);
            if fg == bg || (!drawing && ratio < MIN_CONTRAST) {
                out.push(format!(
                    "'{}' {:?} on {:?} {:?} (contrast {ratio:.2})",
                    cell.symbol(),
                    cell.fg,
                    cell.bg,
                    cell.modifier
                ));
            }
        }
    }
    out
}

#[test]
fn text_is_legible_in_every_theme_depth_and_selection() {
    let mut failures = Vec::new();
    // Each table view, with each of its rows selected in turn.
    let selections: &[(char, usize)] = &[('1', 5), ('2', 7), ('3', 4), ('5', 3), ('6', 2)];
    for theme_name in ["default", "light", "high-contrast", "monochrome"] {
        for depth in [
            ColorDepth::TrueColor,
            ColorDepth::Ansi256,
            ColorDepth::Ansi16,
        ] {
            let theme = Theme::builtin(theme_name, depth).unwrap();
            let light = theme_name == "light";
            let mut check = |what: String, s: &AppState| {
                let bad = illegible(&draw(s, &theme), light);
                if !bad.is_empty() {
                    failures.push(format!(
                        "{theme_name}/{depth:?}/{what}: {} cell(s), first {}",
                        bad.len(),
                        bad[..bad.len().min(3)].join("; ")
                    ));
                }
            };
            for case in CASES {
                let mut s = loaded_state(case.read_only, (80, 24));
                (case.setup)(&mut s);
                check(case.name.to_string(), &s);
            }
            for &(view, rows) in selections {
                for seeded in [false, true] {
                    for row in 0..rows {
                        let mut s = loaded_state(false, (100, 30));
                        if seeded {
                            seed(&mut s);
                        }
                        apply(&mut s, [ch(view)]);
                        apply(&mut s, (0..row).map(|_| ch('j')));
                        check(format!("view {view} row {row} (seeded {seeded})"), &s);
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "illegible text:\n{}",
        failures.join("\n")
    );
}

/// The seeded cluster's ids and names: every job's connector whole at 80 columns, ids
/// visible, names and reasons using the room at 160, and every cut cell ending in `…`.
#[test]
fn ids_stay_whole_and_text_grows_with_the_width() {
    let screen = |view: char, size: (u16, u16)| {
        let mut s = loaded_state(false, size);
        seed(&mut s);
        apply(&mut s, [ch(view)]);
        text(&draw(&s, &theme("default")))
    };
    let narrow = screen('1', (80, 24));
    for i in 0..5 {
        assert!(
            narrow.contains(&format!("seed-connector-{i} ")),
            "connector id {i} at 80:\n{narrow}"
        );
    }
    assert!(narrow.contains("Seed conn"), "{narrow}");
    let wide = screen('1', (160, 48));
    assert!(wide.contains("Seed connector 3 (directory)"), "{wide}");
    let jobs = screen('2', (80, 24));
    for i in 0..5 {
        assert!(
            jobs.contains(&format!("seed-connector-{i}")),
            "job connector {i} at 80:\n{jobs}"
        );
    }
    assert!(
        jobs.contains("Mx8tXpMBrC0Wz8pL1x00"),
        "job ids at 80:\n{jobs}"
    );
    let live = screen('3', (160, 48));
    assert!(
        live.contains("seed-worker-7f3a9c2d-0/4242"),
        "WHERE at 160:\n{live}"
    );
    let dlq = screen('5', (160, 48));
    assert!(
        dlq.contains("REASON") && dlq.contains("of type [scaled_float] i…"),
        "{dlq}"
    );
    let dlq = screen('5', (80, 24));
    assert!(dlq.contains("REASON") && dlq.contains('…'), "{dlq}");
}

/// Detail views show long text whole, wrapped: nothing of it is cut at the edge.
#[test]
fn long_text_wraps_in_detail_views() {
    let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let strip = |screen: &str| {
        screen
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Narrow and tall enough that the wrapped text needs no scrolling.
    for size in [(80, 60), (160, 48)] {
        let mut s = loaded_state(false, size);
        seed(&mut s);
        apply(&mut s, [ch('5'), key(KeyCode::Enter)]);
        let shown = flat(&strip(&text(&draw(&s, &theme("default")))));
        let reason = flat(&s.dead_letters.table.all()[0].reason);
        assert!(
            shown.contains(&reason),
            "{size:?}: the reason is not whole:\n{shown}"
        );

        let mut s = loaded_state(false, size);
        seed(&mut s);
        apply(
            &mut s,
            [ch('2'), ch('j'), ch('j'), ch('j'), key(KeyCode::Enter)],
        );
        let shown = flat(&strip(&text(&draw(&s, &theme("default")))));
        assert!(
            shown.contains("<html>bad gateway</html>)"),
            "{size:?}: the job error is not whole:\n{shown}"
        );

        let mut s = loaded_state(false, size);
        seed(&mut s);
        apply(&mut s, [ch('4')]);
        let shown = flat(&strip(&text(&draw(&s, &theme("default")))));
        assert!(
            shown.contains("<h1>502 Bad Gateway</h1></body></html>)"),
            "{size:?}: the breaker's last error is not whole:\n{shown}"
        );

        let mut s = loaded_state(false, size);
        seed(&mut s);
        apply(&mut s, [ch('7')]);
        let shown = flat(&strip(&text(&draw(&s, &theme("default")))));
        assert!(
            shown.contains("connector=seed-connector-3"),
            "{size:?}: the log line is not whole:\n{shown}"
        );
    }
}

/// A pending job has no start and no duration; a suspended one's duration stops at its
/// last check-in.
#[test]
fn pending_and_suspended_jobs_read_true() {
    let mut s = loaded_state(false, (160, 48));
    seed(&mut s);
    apply(&mut s, [ch('2')]);
    let shown = text(&draw(&s, &theme("default")));
    let row = |id: &str| {
        shown
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not shown:\n{shown}"))
            .to_string()
    };
    let pending = row("Mx8tXpMBrC0Wz8pL1x01");
    assert!(
        !pending.contains("ago"),
        "a pending job shows a start: {pending}"
    );
    let suspended = row("Mx8tXpMBrC0Wz8pL1x06");
    assert!(
        suspended.contains("5m00s"),
        "suspended at its last check-in: {suspended}"
    );
}

/// "Latest documents" lists the newest first.
#[test]
fn latest_documents_are_the_newest() {
    let mut s = loaded_state(false, (160, 48));
    apply(&mut s, [ch('3')]);
    let shown = text(&draw(&s, &theme("default")));
    let first = shown
        .lines()
        .skip_while(|l| !l.contains("Latest documents"))
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("doc-4199"),
        "the newest document is not first: {first}"
    );
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
        masked.contains("••••••") && !masked.contains("•••••••"),
        "the value shows as the fixed mask:\n{masked}"
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
