//! Detail screens: a connector (overview, configuration with sensitive values masked,
//! filtering rules, pipeline, schedules, latest jobs), a sync job (with every table a
//! database source reported in its metadata, each reason whole), and a dead letter (the
//! error and the document as pretty JSON). Scrollable text built from state.

use super::{Hint, hint};
use crate::console::app::{AppState, ConnectorDetail};
use crate::console::format::{ago, count, datetime, duration_ms, job_duration, safe, wrap};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::masked_field;
use crate::model::{
    Connector, DeadLetter, ScheduleConfig, SyncJob, TableCounts, TableProgress, TableStatus,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

pub const CONNECTOR_HINTS: &[Hint] = &[
    hint(Command::Back, "back"),
    hint(Command::StartSync, "sync"),
    hint(Command::EditConfig, "edit"),
    hint(Command::Copy, "copy id"),
    hint(Command::Down, "scroll"),
];

pub const JOB_HINTS: &[Hint] = &[
    hint(Command::Back, "back"),
    hint(Command::JobDeadLetters, "dead letters"),
    hint(Command::CancelJob, "cancel"),
    hint(Command::Copy, "copy id"),
    hint(Command::Down, "scroll"),
];

pub const DEAD_LETTER_HINTS: &[Hint] = &[
    hint(Command::Back, "back"),
    hint(Command::Retry, "retry"),
    hint(Command::Drop, "drop"),
    hint(Command::Copy, "copy document"),
    hint(Command::Down, "scroll"),
];

fn section<'a>(title: &str, theme: &Theme) -> Vec<Line<'a>> {
    vec![Line::from(""), Line::styled(title.to_string(), theme.label)]
}

fn kv<'a>(key: &str, value: impl Into<String>, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("  {key:<21} "), theme.dim),
        Span::styled(crate::console::format::safe(&value.into()), theme.text),
    ])
}

/// A bordered, scrolled box of `lines` with its position (`3-20 of 41`) when they overflow:
/// the detail views and `:messages` share it. Counts in `usize`, so a very long text never
/// wraps a `u16`.
pub(super) fn scrolled(
    frame: &mut Frame,
    area: Rect,
    title: Line<'static>,
    lines: Vec<Line<'static>>,
    scroll: u16,
    theme: &Theme,
) {
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(title);
    let height = area.height.saturating_sub(2) as usize;
    let max = lines.len().saturating_sub(height);
    let start = (scroll as usize).min(max);
    let block = if max > 0 {
        let pos = format!(
            " {}-{} of {} ",
            start + 1,
            (start + height).min(lines.len()),
            lines.len()
        );
        block.title_bottom(Line::styled(pos, theme.dim).right_aligned())
    } else {
        block
    };
    let shown: Vec<Line> = lines.into_iter().skip(start).take(height).collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

fn schedule(name: &str, s: &ScheduleConfig, theme: &Theme) -> Line<'static> {
    let state = if s.enabled {
        Span::styled("on ", theme.ok)
    } else {
        Span::styled("off", theme.dim)
    };
    Line::from(vec![
        Span::styled(format!("  {name:<22}"), theme.dim),
        state,
        Span::styled(format!("  {}", s.interval), theme.text),
    ])
}

pub fn render_connector(
    frame: &mut Frame,
    area: Rect,
    d: &ConnectorDetail,
    state: &AppState,
    theme: &Theme,
) {
    let title = Line::from(vec![Span::styled(
        format!(" Connector {} ", d.id),
        theme.title,
    )]);
    let Some(c) = &d.connector else {
        let text = d
            .error
            .clone()
            .map(|e| format!("could not load: {e}"))
            .unwrap_or_else(|| "loading…".into());
        scrolled(
            frame,
            area,
            title,
            vec![Line::styled(text, theme.dim)],
            0,
            theme,
        );
        return;
    };
    // Wide terminals show the second half beside the first.
    let wide = area.width >= 120;
    let width = if wide {
        (area.width.saturating_sub(2) / 2) as usize
    } else {
        area.width.saturating_sub(2) as usize
    };
    let mut left = overview_lines(c, d, state, width, theme);
    let right = setup_lines(c, d, state, theme);
    if !wide {
        left.extend(right);
        scrolled(frame, area, title, left, d.scroll, theme);
        return;
    }
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let max = |n: usize| (n as u16).saturating_sub(inner.height);
    let (ls, rs) = (
        d.scroll.min(max(left.len())),
        d.scroll.min(max(right.len())),
    );
    frame.render_widget(Paragraph::new(left).scroll((ls, 0)), l);
    frame.render_widget(Paragraph::new(right).scroll((rs, 0)), r);
}

/// Name, status, last sync and the configuration (sensitive values masked).
fn overview_lines(
    c: &Connector,
    d: &ConnectorDetail,
    state: &AppState,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![
        kv("name", c.name.clone(), theme),
        kv(
            "service type",
            c.service_type.clone().unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv(
            "index",
            c.index_name.clone().unwrap_or_else(|| "—".into()),
            theme,
        ),
        Line::from(vec![
            Span::styled(format!("  {:<22}", "status"), theme.dim),
            Span::styled(c.status.to_string(), theme.connector_status(c.status)),
        ]),
        kv(
            "last sync",
            format!(
                "{} {}",
                c.last_sync_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "never".into()),
                ago(state.now, c.last_synced)
            ),
            theme,
        ),
        kv("last seen", ago(state.now, c.last_seen), theme),
        kv(
            "indexed / deleted",
            format!(
                "{} / {}",
                c.last_indexed_document_count
                    .map(count)
                    .unwrap_or_else(|| "—".into()),
                c.last_deleted_document_count
                    .map(count)
                    .unwrap_or_else(|| "—".into())
            ),
            theme,
        ),
    ];
    if let Some(e) = c.error.as_ref().or(c.last_sync_error.as_ref()) {
        // Wrapped beside its label: the continuation lines keep the value column.
        for (i, part) in wrap(e, width.saturating_sub(22)).into_iter().enumerate() {
            let label = if i == 0 { "error" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("  {label:<22}"), theme.dim),
                Span::styled(part, theme.danger),
            ]));
        }
    }
    if let Some(e) = &d.error {
        lines.push(Line::styled(
            format!("  (refresh failed: {e})"),
            theme.stale,
        ));
    }
    lines.extend(section("Configuration", theme));
    if c.configuration.is_empty() {
        lines.push(Line::styled("  no fields yet", theme.dim));
    }
    for (key, field) in c.configuration.fields_in_order() {
        let active = c.configuration.is_active(key);
        let style = if active { theme.text } else { theme.dim };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "  {:<22}",
                    crate::console::format::ellipsize(&field.display_label(key), 21)
                ),
                theme.dim,
            ),
            Span::styled(masked_field::display(field), style),
            Span::styled(
                if active {
                    ""
                } else {
                    "  (not used: depends on another field)"
                },
                theme.dim,
            ),
        ]));
    }
    lines
}

/// Filtering rules, pipeline, schedules and the latest jobs.
fn setup_lines(
    c: &Connector,
    d: &ConnectorDetail,
    state: &AppState,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    lines.extend(section("Filtering rules (active)", theme));
    match c.active_filtering() {
        Some(rules) if !rules.rules.is_empty() => {
            for r in &rules.rules {
                let value = serde_json::to_value(r).unwrap_or_default();
                let text = ["order", "policy", "field", "rule", "value"]
                    .iter()
                    .map(|k| {
                        value
                            .get(*k)
                            .map(crate::model::value_text)
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join("  ");
                lines.push(Line::styled(format!("  {text}"), theme.text));
            }
        }
        _ => lines.push(Line::styled("  none (everything is synced)", theme.dim)),
    }
    let p = c.pipeline_or_default();
    lines.extend(section("Pipeline", theme));
    lines.push(kv("name", p.name, theme));
    lines.push(kv(
        "extract binary content",
        p.extract_binary_content.to_string(),
        theme,
    ));
    lines.push(kv(
        "reduce whitespace",
        p.reduce_whitespace.to_string(),
        theme,
    ));
    lines.push(kv(
        "run ML inference",
        p.run_ml_inference.to_string(),
        theme,
    ));
    lines.extend(section("Schedules", theme));
    lines.push(schedule("full", &c.scheduling.full, theme));
    lines.push(schedule("incremental", &c.scheduling.incremental, theme));
    lines.push(schedule(
        "access control",
        &c.scheduling.access_control,
        theme,
    ));
    lines.extend(section("Latest jobs", theme));
    if d.jobs.is_empty() {
        lines.push(Line::styled("  none", theme.dim));
    }
    for j in d.jobs.iter().take(10) {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<22}", j.id), theme.dim),
            Span::styled(
                format!("{:<12}", j.status.to_string()),
                theme.status(j.status),
            ),
            Span::styled(
                format!(
                    "{:<12} {:>10} docs  {}",
                    j.job_type.to_string(),
                    count(j.indexed_document_count),
                    ago(state.now, j.started_at)
                ),
                theme.text,
            ),
        ]));
    }
    lines
}

pub fn render_job(
    frame: &mut Frame,
    area: Rect,
    id: &str,
    scroll: u16,
    state: &AppState,
    theme: &Theme,
) {
    let title = Line::styled(format!(" Sync job {id} "), theme.title);
    let Some(j) = state.jobs.table.all().iter().find(|j| j.id == id) else {
        scrolled(
            frame,
            area,
            title,
            vec![Line::styled("the job is no longer listed", theme.dim)],
            0,
            theme,
        );
        return;
    };
    scrolled(
        frame,
        area,
        title,
        job_lines(j, state, text_width(area), theme),
        scroll,
        theme,
    );
}

fn job_lines(j: &SyncJob, state: &AppState, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let duration = job_duration(j, state.now);
    let mut lines = vec![
        kv("dead letters", job_dead_letters_text(j, state), theme),
        kv("connector", j.connector.id.clone(), theme),
        kv(
            "index",
            j.connector.index_name.clone().unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv(
            "service type",
            j.connector
                .service_type
                .clone()
                .unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv(
            "type / trigger",
            format!("{} / {}", j.job_type, j.trigger_method),
            theme,
        ),
        Line::from(vec![
            Span::styled(format!("  {:<22}", "status"), theme.dim),
            Span::styled(j.status.to_string(), theme.status(j.status)),
        ]),
        kv(
            "worker",
            j.worker_hostname.clone().unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv("created", datetime(j.created_at), theme),
        kv("started", datetime(j.started_at), theme),
        kv(
            "completed",
            datetime(j.completed_at.or(j.canceled_at)),
            theme,
        ),
        kv("duration", duration, theme),
        kv("last seen", ago(state.now, j.last_seen), theme),
        kv("indexed", count(j.indexed_document_count), theme),
        kv("deleted", count(j.deleted_document_count), theme),
        kv(
            "total in index",
            j.total_document_count
                .map(count)
                .unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv(
            "volume",
            format!("{} MiB", j.indexed_document_volume),
            theme,
        ),
    ];
    if let Some(e) = &j.error {
        lines.extend(section("Error", theme));
        lines.extend(indented(e, width, theme.danger));
    }
    lines.extend(table_lines(&TableProgress::of_job(j), width, theme));
    lines
}

/// Every table of the job: its status, rows, rows/s and time on one line (the name on a
/// line of its own when both do not fit), then its reason, wrapped and whole.
fn table_lines(tables: &[TableProgress], width: usize, theme: &Theme) -> Vec<Line<'static>> {
    if tables.is_empty() {
        return Vec::new();
    }
    let mut lines = section(
        &format!("Tables ({})", TableCounts::of(tables).summary()),
        theme,
    );
    // Two of indent, a space, the status, and the numbers' columns.
    const NUMBERS: usize = 2 + 1 + 8 + 37;
    let name_width = tables
        .iter()
        .map(|t| unicode_width::UnicodeWidthStr::width(safe(&t.name).as_str()))
        .max()
        .unwrap_or(0)
        .min(width.saturating_sub(NUMBERS));
    for t in tables {
        let status = Span::styled(
            format!("{:<8}", t.status.as_str()),
            crate::console::views::live_sync::table_status_style(t.status, theme),
        );
        let numbers = Span::styled(
            format!(
                " {:>12} rows  {:>9}  {:>7}",
                count(t.rows),
                crate::console::views::live_sync::table_rate(t),
                duration_ms((t.seconds * 1000.0) as u64)
            ),
            theme.text,
        );
        let name = safe(&t.name);
        if unicode_width::UnicodeWidthStr::width(name.as_str()) <= name_width {
            let pad = name_width - unicode_width::UnicodeWidthStr::width(name.as_str());
            lines.push(Line::from(vec![
                Span::styled(format!("  {name}{} ", " ".repeat(pad)), theme.text),
                status,
                numbers,
            ]));
        } else {
            lines.extend(indented(&t.name, width, theme.text));
            lines.push(Line::from(vec![
                Span::raw(format!("  {} ", " ".repeat(name_width))),
                status,
                numbers,
            ]));
        }
        let style = match t.status {
            TableStatus::Failed => theme.danger,
            _ => theme.dim,
        };
        // The reason whole; the short note only when there is no reason.
        if let Some(text) = t.reason.as_ref().or(t.note.as_ref()) {
            lines.extend(
                indented(text, width.saturating_sub(2), style)
                    .into_iter()
                    .map(|mut l| {
                        l.spans.insert(0, Span::raw("  "));
                        l
                    }),
            );
        }
    }
    lines
}

/// The width detail text wraps at inside `area`: its border and a two-column indent off.
fn text_width(area: Rect) -> usize {
    area.width.saturating_sub(4) as usize
}

/// Long remote text (an error, a reason, a document) wrapped to `width` and indented, so
/// all of it reads, however long.
fn indented(text: &str, width: usize, style: Style) -> Vec<Line<'static>> {
    wrap(text, width)
        .into_iter()
        .map(|l| Line::styled(format!("  {l}"), style))
        .collect()
}

pub fn render_dead_letter(
    frame: &mut Frame,
    area: Rect,
    id: i64,
    scroll: u16,
    state: &AppState,
    theme: &Theme,
) {
    let title = Line::styled(format!(" Dead letter {id} "), theme.title);
    let Some(d) = state.dead_letters.table.all().iter().find(|d| d.id == id) else {
        scrolled(
            frame,
            area,
            title,
            vec![Line::styled(
                "this dead letter is no longer in the queue (retried or dropped)",
                theme.dim,
            )],
            0,
            theme,
        );
        return;
    };
    scrolled(
        frame,
        area,
        title,
        dead_letter_lines(d, state, text_width(area), theme),
        scroll,
        theme,
    );
}

fn dead_letter_lines(
    d: &DeadLetter,
    state: &AppState,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![
        kv("connector", d.connector_id.clone(), theme),
        kv("job", d.job_id.clone(), theme),
        kv("index", d.index.clone(), theme),
        kv("document id", d.doc_id.clone(), theme),
        Line::from(vec![
            Span::styled(format!("  {:<22}", "error type"), theme.dim),
            Span::styled(d.error_type.clone(), theme.danger),
        ]),
        kv(
            "HTTP status",
            d.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "—".into()),
            theme,
        ),
        kv("attempts", d.attempts.to_string(), theme),
        kv(
            "first failed",
            format!(
                "{} ({})",
                datetime(Some(d.first_failed_at)),
                ago(state.now, Some(d.first_failed_at))
            ),
            theme,
        ),
        kv(
            "last failed",
            format!(
                "{} ({})",
                datetime(Some(d.last_failed_at)),
                ago(state.now, Some(d.last_failed_at))
            ),
            theme,
        ),
    ];
    lines.extend(section("Error", theme));
    lines.extend(indented(&d.reason, width, theme.danger));
    lines.extend(section("Document", theme));
    let pretty = serde_json::to_string_pretty(&d.document).unwrap_or_default();
    lines.extend(indented(&pretty, width, theme.text));
    lines
}

/// Wraps long error text in narrow terminals (used by the editor's server error).
pub fn wrapped(text: String, theme: &Theme) -> Paragraph<'static> {
    Paragraph::new(Line::styled(text, theme.danger)).wrap(Wrap { trim: true })
}

/// `3 open (D lists them)` for the job detail; `counting…` until the count is in.
fn job_dead_letters_text(j: &SyncJob, state: &AppState) -> String {
    let key = state
        .keymap
        .key_for(
            crate::console::keymap::KeyContext::Detail,
            Command::JobDeadLetters,
        )
        .map(|k| k.to_string());
    match (state.jobs.dead_letter_counts.get(&j.id), key) {
        (None, _) => "counting…".to_string(),
        (Some(0), _) => "none".to_string(),
        (Some(n), Some(k)) => format!("{n} open ({k} lists them)"),
        (Some(n), None) => format!("{n} open"),
    }
}
