//! The Live sync view: the jobs running here, on an attached worker, or elsewhere; for the
//! selected one a progress bar (against the source's total when known), counters, queue
//! depth, requests in flight, elapsed and ETA, sparklines of docs/s and MB/s, and the latest
//! documents with their outcome, size and latency. Jobs run elsewhere show the counts the
//! cluster reports. A source that reads tables (the database sources) adds a Tables panel:
//! per table its status, rows read, rows/s, time and why it failed or was skipped, from the
//! snapshot here or from the job's metadata for a job run elsewhere (the job's detail has
//! every table and every reason whole).

use super::{Hint, View, hint};
use crate::console::app::AppState;
use crate::console::format::{bytes, count, duration_ms, job_duration, rate};
use crate::console::keymap::Command;
use crate::console::live::{LiveRow, LiveSource};
use crate::console::theme::Theme;
use crate::console::widgets::bar::bar;
use crate::console::widgets::table::{CellText, Column, render_rows};
use crate::engine::progress::{Phase, ProgressSnapshot};
use crate::model::{SyncJob, TableCounts, TableProgress, TableStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};

pub struct LiveSyncView;

const HINTS: &[Hint] = &[
    hint(Command::Down, "next job"),
    hint(Command::CancelJob, "cancel"),
    hint(Command::ViewBreaker, "breaker"),
    hint(Command::Copy, "copy id"),
    hint(Command::Help, "help"),
];

pub fn phase_text(p: Phase) -> &'static str {
    match p {
        Phase::Starting => "starting",
        Phase::Extracting => "extracting",
        Phase::Deleting => "deleting",
        Phase::Finishing => "finishing",
        Phase::Completed => "completed",
        Phase::Canceled => "canceled",
        Phase::Failed => "failed",
    }
}

pub fn phase_style(p: Phase, theme: &Theme) -> Style {
    match p {
        Phase::Completed => theme.ok,
        Phase::Failed => theme.danger,
        Phase::Canceled => theme.warn,
        _ => theme.info,
    }
}

fn ratio(s: &ProgressSnapshot) -> Option<f64> {
    let total = s.total_hint.filter(|t| *t > 0)?;
    if s.phase == Phase::Completed {
        return Some(1.0);
    }
    Some(s.counters.handled() as f64 / total as f64)
}

impl View for LiveSyncView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let rows = state.live_rows();
        let list_height = (rows.len().clamp(1, if area.height > 30 { 8 } else { 3 }) as u16) + 3;
        let [list, rest] =
            Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
        render_list(frame, list, state, &rows, theme);
        let selected = rows.get(state.live.cursor.selected.min(rows.len().saturating_sub(1)));
        match selected {
            None => {
                let mut text = vec![
                    Line::styled("No sync is running.", theme.text),
                    Line::styled(
                        "Start one from Connectors (s), or watch a headless worker with --attach ADDR.",
                        theme.dim,
                    ),
                ];
                if let Some(e) = &state.live.attached.error {
                    text.push(Line::styled(format!("attach: {e}"), theme.danger));
                }
                frame.render_widget(
                    Paragraph::new(text).block(Block::bordered().border_style(theme.border)),
                    rest,
                );
            }
            Some(row) => match row.snapshot {
                Some(s) => render_snapshot(frame, rest, row, s, theme),
                None => render_remote(frame, rest, row, row.job, state, theme),
            },
        }
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

fn render_list(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    rows: &[LiveRow<'_>],
    theme: &Theme,
) {
    let mut title = vec![
        Span::styled(" Live sync ", theme.title),
        Span::styled(format!("[{}] ", rows.len()), theme.dim),
    ];
    if let Some(addr) = &state.settings.attach {
        let style = if state.live.attached.error.is_some() {
            theme.danger
        } else {
            theme.accent
        };
        title.push(Span::styled(
            format!("{} {addr} ", attach_word(state)),
            style,
        ));
    }
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no running or recent jobs", theme.dim)),
            inner,
        );
        return;
    }
    let height = inner.height.saturating_sub(1) as usize;
    let (start, end) = state.live.cursor.window(rows.len(), height);
    let body: Vec<(Vec<CellText>, Style)> = rows[start..end]
        .iter()
        .map(|r| (list_cells(r, state, theme), theme.text))
        .collect();
    let selected = state.live.cursor.selected.checked_sub(start);
    render_rows(frame, inner, &LIST_COLUMNS, body, selected, theme);
}

const LIST_COLUMNS: [Column; 10] = [
    Column::new("JOB", 12, 0),
    Column::new("CONNECTOR", 12, 0),
    Column::new("WHERE", 8, 1).max(48),
    Column::new("PHASE", 11, 0),
    Column::new("DONE", 6, 0).max(12),
    Column::new("DOCS/S", 6, 1).max(10),
    Column::new("DLQ", 3, 3).max(10),
    Column::new("RETRIES", 7, 4),
    Column::new("ELAPSED", 7, 2),
    Column::new("ETA", 5, 3).max(8),
];

fn list_cells(r: &LiveRow<'_>, state: &AppState, theme: &Theme) -> Vec<CellText> {
    let (phase, phase_st, progress, speed, dlq, retries, elapsed, eta) = match (r.snapshot, r.job) {
        (Some(s), _) => (
            phase_text(s.phase).to_string(),
            phase_style(s.phase, theme),
            ratio(s)
                .map(|x| format!("{:.0}%", (x * 100.0).floor()))
                .unwrap_or_else(|| count(s.counters.handled())),
            rate(s.docs_per_sec),
            count(s.counters.dead_lettered),
            count(s.counters.retried),
            duration_ms(s.elapsed_ms),
            s.eta_ms.map(duration_ms).unwrap_or_else(|| "—".into()),
        ),
        (None, Some(j)) if r.stale => (
            "stale".to_string(),
            theme.stale,
            count(j.indexed_document_count),
            "—".to_string(),
            "—".to_string(),
            "—".to_string(),
            "—".to_string(),
            "—".to_string(),
        ),
        (None, Some(j)) => (
            j.status.to_string(),
            theme.status(j.status),
            count(j.indexed_document_count),
            "—".to_string(),
            "—".to_string(),
            "—".to_string(),
            job_duration(j, state.now),
            "—".to_string(),
        ),
        (None, None) => Default::default(),
    };
    vec![
        Span::styled(r.job_id.to_string(), theme.dim),
        Span::raw(r.connector_id.to_string()),
        Span::raw(r.source.label()),
        Span::styled(phase, phase_st),
        Span::raw(progress),
        Span::raw(speed),
        Span::raw(dlq),
        Span::raw(retries),
        Span::raw(elapsed),
        Span::raw(eta),
    ]
}

fn stat<'a>(label: &'a str, value: String, theme: &Theme) -> Vec<Span<'a>> {
    vec![
        Span::styled(label, theme.dim),
        Span::styled(value, theme.text),
        Span::raw("  "),
    ]
}

fn render_snapshot(
    frame: &mut Frame,
    area: Rect,
    row: &LiveRow<'_>,
    s: &ProgressSnapshot,
    theme: &Theme,
) {
    let stats_height = 6 + u16::from(s.error.is_some());
    let small = area.height < 24;
    // On a small screen the tables take the sparklines' place: the rate is in the list
    // and the stats.
    let sparks_height = match (small, s.tables.is_empty()) {
        (true, false) => 0,
        (true, true) => 4,
        (false, _) => 6,
    };
    let tables_height = tables_height(
        s.tables.len(),
        area.height
            .saturating_sub(stats_height + sparks_height + DOCS_MIN),
        if small { 4 } else { 10 },
    );
    let [stats, sparks, tables, docs] = Layout::vertical([
        Constraint::Length(stats_height),
        Constraint::Length(sparks_height),
        Constraint::Length(tables_height),
        Constraint::Min(DOCS_MIN),
    ])
    .areas(area);
    let c = &s.counters;
    let title = Line::from(vec![
        Span::styled(format!(" {} ", s.job_id), theme.title),
        Span::styled(format!("{} → {} ", s.connector_id, s.index), theme.dim),
        Span::styled(
            match &row.source {
                LiveSource::Attached(addr) => format!("(attached {addr}) "),
                other => format!("({}) ", other.label()),
            },
            theme.dim,
        ),
    ]);
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(title);
    let inner = block.inner(stats);
    frame.render_widget(block, stats);
    let total = s.total_hint.map(count).unwrap_or_else(|| "?".into());
    let gauge = bar(
        ratio(s),
        inner.width.saturating_sub(28).max(10),
        theme.ok,
        theme.dim,
    );
    let mut first = gauge.spans;
    first.push(Span::styled(
        format!("  {} / {total} docs", count(c.handled())),
        theme.text,
    ));
    let mut lines = vec![
        Line::from(first),
        Line::from(
            [
                stat("indexed ", count(c.indexed), theme),
                stat("updated ", count(c.updated), theme),
                stat("deleted ", count(c.deleted), theme),
                stat("skipped ", count(c.skipped), theme),
            ]
            .concat(),
        ),
        Line::from(
            [
                stat("retries ", count(c.retried), theme),
                vec![
                    Span::styled("dead letters ", theme.dim),
                    Span::styled(
                        count(c.dead_lettered),
                        if c.dead_lettered > 0 {
                            theme.danger
                        } else {
                            theme.text
                        },
                    ),
                    Span::raw("  "),
                ],
                stat(
                    "queue ",
                    format!("{} docs / {}", count(s.queue_docs), bytes(s.queue_bytes)),
                    theme,
                ),
                stat("in flight ", s.in_flight.to_string(), theme),
            ]
            .concat(),
        ),
        Line::from(
            [
                vec![
                    Span::styled(phase_label(s), phase_style(s.phase, theme)),
                    Span::raw("  "),
                ],
                stat("elapsed ", duration_ms(s.elapsed_ms), theme),
                stat(
                    "ETA ",
                    s.eta_ms.map(duration_ms).unwrap_or_else(|| "—".into()),
                    theme,
                ),
                stat("avg ", rate(s.avg_docs_per_sec), theme),
                stat("bulk ", format!("{:.0}ms", s.avg_bulk_latency_ms), theme),
                stat("sent ", bytes(c.bytes), theme),
            ]
            .concat(),
        ),
    ];
    if let Some(e) = &s.error {
        // The whole error is in the job's detail and the log; here one line of it.
        lines.push(Line::styled(
            crate::console::format::ellipsize(
                &format!("error: {}", crate::console::format::first_line(e)),
                inner.width as usize,
            ),
            theme.danger,
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    if sparks_height > 0 {
        render_sparklines(frame, sparks, s, theme);
    }
    if tables_height > 0 {
        render_tables(frame, tables, &s.tables, theme);
    }
    render_docs(frame, docs, s, theme);
}

/// The Latest documents panel's least height (its border, header and one row).
const DOCS_MIN: u16 = 3;

/// The Tables panel's height: its border and header and a row per table, at most `rows`
/// rows, within `room`; none without tables or when not even one row fits.
fn tables_height(tables: usize, room: u16, rows: u16) -> u16 {
    if tables == 0 {
        return 0;
    }
    let want = (tables.min(rows as usize) as u16) + 3;
    match want.min(room) {
        h if h < 4 => 0,
        h => h,
    }
}

const TABLE_COLUMNS: [Column; 6] = [
    Column::grow("TABLE", 10, 0).max(64),
    Column::new("STATUS", 7, 0),
    Column::new("ROWS", 6, 1).max(14),
    Column::new("ROWS/S", 6, 2).max(12),
    Column::new("ELAPSED", 7, 3),
    Column::grow("NOTE", 12, 1).max(400),
];

/// A table's rows/s, or `—` for one that ended without reading a row (skipped, refused).
pub fn table_rate(t: &TableProgress) -> String {
    if t.rows == 0 && t.status != TableStatus::Reading {
        return "—".to_string();
    }
    rate(t.rows_per_sec)
}

pub fn table_status_style(status: TableStatus, theme: &Theme) -> Style {
    match status {
        TableStatus::Reading => theme.info,
        TableStatus::Done => theme.ok,
        TableStatus::Skipped | TableStatus::Stopped => theme.warn,
        TableStatus::Failed => theme.danger,
    }
}

/// The Tables panel: the tables worth a row ([`TableProgress::pick`]: those being read,
/// the failed and skipped, then the latest done), their counts in the title, and how many
/// are left out. Notes are cut to their column; the job's detail has them whole.
fn render_tables(frame: &mut Frame, area: Rect, tables: &[TableProgress], theme: &Theme) {
    let block = Block::bordered().border_style(theme.border);
    let inner = block.inner(area);
    let (shown, left_out) = TableProgress::pick(tables, inner.height.saturating_sub(1) as usize);
    let mut title = vec![
        Span::styled(" Tables ", theme.title),
        Span::styled(format!("{} ", TableCounts::of(tables).summary()), theme.dim),
    ];
    if left_out > 0 {
        title.push(Span::styled(format!("· +{left_out} more "), theme.dim));
    }
    frame.render_widget(block.title(Line::from(title)), area);
    let rows: Vec<(Vec<CellText>, Style)> = shown
        .into_iter()
        .map(|t| {
            let cells = vec![
                Span::raw(t.name.clone()),
                Span::styled(t.status.as_str(), table_status_style(t.status, theme)),
                Span::raw(count(t.rows)),
                Span::raw(table_rate(t)),
                Span::raw(duration_ms((t.seconds * 1000.0) as u64)),
                Span::styled(
                    t.remark().unwrap_or_default().to_string(),
                    match t.status {
                        TableStatus::Failed => theme.danger,
                        _ => theme.dim,
                    },
                ),
            ];
            (cells, theme.text)
        })
        .collect();
    render_rows(frame, inner, &TABLE_COLUMNS, rows, None, theme);
}

fn render_sparklines(frame: &mut Frame, area: Rect, s: &ProgressSnapshot, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let width = left.width.saturating_sub(2) as usize;
    let tail = |v: Vec<u64>| -> Vec<u64> { v[v.len().saturating_sub(width)..].to_vec() };
    let docs = tail(
        s.rates
            .iter()
            .map(|r| r.docs_per_sec.round() as u64)
            .collect(),
    );
    let kib = tail(
        s.rates
            .iter()
            .map(|r| (r.bytes_per_sec / 1024.0).round() as u64)
            .collect(),
    );
    let docs_block = Block::bordered()
        .border_style(theme.border)
        .title(Line::from(vec![
            Span::styled(" docs/s ", theme.title),
            Span::styled(format!("{} ", rate(s.docs_per_sec)), theme.text),
        ]));
    let mb = s.bytes_per_sec / 1_048_576.0;
    let bytes_block = Block::bordered()
        .border_style(theme.border)
        .title(Line::from(vec![
            Span::styled(" MB/s ", theme.title),
            Span::styled(format!("{mb:.2} "), theme.text),
        ]));
    frame.render_widget(
        Sparkline::default()
            .data(&docs)
            .style(theme.sparkline)
            .block(docs_block),
        left,
    );
    frame.render_widget(
        Sparkline::default()
            .data(&kib)
            .style(theme.sparkline)
            .block(bytes_block),
        right,
    );
}

const DOC_COLUMNS: [Column; 5] = [
    Column::new("OUTCOME", 7, 0).max(14),
    Column::grow("ID", 12, 0).max(60),
    Column::new("SIZE", 7, 2).max(10),
    Column::new("LATENCY", 7, 1).max(10),
    Column::grow("REASON", 12, 1).max(400),
];

/// The newest documents first (the snapshot lists them oldest first).
fn render_docs(frame: &mut Frame, area: Rect, s: &ProgressSnapshot, theme: &Theme) {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Span::styled(" Latest documents ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height.saturating_sub(1) as usize;
    if height == 0 {
        // Room for one line only (the tables took the rest): the newest, without a header.
        let text = match s.recent.last() {
            Some(d) => format!("newest: {} {}", d.outcome.as_str(), d.id),
            None => "no documents yet".to_string(),
        };
        frame.render_widget(
            Paragraph::new(Line::styled(
                crate::console::format::ellipsize(&text, inner.width as usize),
                theme.dim,
            )),
            inner,
        );
        return;
    }
    let rows: Vec<(Vec<CellText>, Style)> = s
        .recent
        .iter()
        .rev()
        .take(height)
        .map(|d| {
            let cells = vec![
                Span::styled(d.outcome.as_str(), theme.outcome(d.outcome)),
                Span::raw(d.id.clone()),
                Span::raw(bytes(d.bytes)),
                Span::raw(format!("{}ms", d.latency_ms)),
                Span::styled(d.reason.clone().unwrap_or_default(), theme.dim),
            ];
            (cells, theme.text)
        })
        .collect();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no documents yet", theme.dim)),
            inner,
        );
        return;
    }
    render_rows(frame, inner, &DOC_COLUMNS, rows, None, theme);
}

fn render_remote(
    frame: &mut Frame,
    area: Rect,
    row: &LiveRow<'_>,
    job: Option<&SyncJob>,
    state: &AppState,
    theme: &Theme,
) {
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(Span::styled(format!(" {} ", row.job_id), theme.title));
    let Some(j) = job else {
        frame.render_widget(Paragraph::new("no data").block(block), area);
        return;
    };
    // A database job run elsewhere reports its tables in its metadata, at each check-in.
    let tables = TableProgress::of_job(j);
    let where_ = match &row.source {
        LiveSource::Cluster { worker } => {
            worker.clone().unwrap_or_else(|| "an unknown worker".into())
        }
        other => other.label(),
    };
    let ratio = j
        .total_document_count
        .filter(|t| *t > 0)
        .map(|t| j.indexed_document_count as f64 / t as f64);
    let mut lines = vec![
        bar(
            ratio,
            area.width.saturating_sub(4).min(60),
            theme.ok,
            theme.dim,
        ),
        Line::from(
            [
                stat("status ", j.status.to_string(), theme),
                stat("type ", j.job_type.to_string(), theme),
                stat("worker ", where_, theme),
            ]
            .concat(),
        ),
        Line::from(
            [
                stat("indexed ", count(j.indexed_document_count), theme),
                stat("deleted ", count(j.deleted_document_count), theme),
                stat(
                    "total ",
                    j.total_document_count
                        .map(count)
                        .unwrap_or_else(|| "—".into()),
                    theme,
                ),
                stat(
                    "volume ",
                    format!("{} MiB", j.indexed_document_volume),
                    theme,
                ),
            ]
            .concat(),
        ),
        Line::from(
            [
                stat(
                    "started ",
                    crate::console::format::ago(state.now, j.started_at),
                    theme,
                ),
                stat(
                    "last seen ",
                    crate::console::format::ago(state.now, j.last_seen),
                    theme,
                ),
            ]
            .concat(),
        ),
    ];
    if tables.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            "This job runs on another worker: the cluster reports its counts only.",
            theme.dim,
        ));
    } else {
        lines.push(Line::styled(
            "This job runs on another worker: the cluster reports its counts and tables at each check-in.",
            theme.dim,
        ));
    }
    lines.push(Line::styled(
        "Run `syncdeck serve --listen 127.0.0.1:PORT` there and `syncdeck --attach 127.0.0.1:PORT` to watch it live.",
        theme.dim,
    ));
    // Wrapped here and drawn as is, so the box's height is exactly the text's and the tables
    // start right under it.
    let inner_width = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = lines
        .iter()
        .flat_map(|l| crate::console::format::wrap_line(l, inner_width))
        .collect();
    let text_height = if tables.is_empty() {
        area.height
    } else {
        (lines.len() as u16 + 2).min(area.height.saturating_sub(4))
    };
    let [text_area, tables_area] =
        Layout::vertical([Constraint::Length(text_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).block(block), text_area);
    if tables_area.height >= 4 {
        render_tables(frame, tables_area, &tables, theme);
    }
}

/// How the Live view's title names the attached worker: only `attached` when it answers.
fn attach_word(state: &AppState) -> &'static str {
    use crate::console::app::AttachStatus;
    match state.attach_status() {
        Some(AttachStatus::Attached) => "attached",
        Some(AttachStatus::Reconnecting) => "reconnecting to",
        Some(AttachStatus::Unreachable { .. }) => "unreachable:",
        Some(AttachStatus::Attaching) | None => "attaching",
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::console::live::NodeRow;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        let now = state.now;
        match action {
            Action::ActiveJobsLoaded(result) => {
                let changed = state.live.active.set(result, now);
                state.dirty |= changed;
                keep_live_selection(state);
            }
            Action::LiveLoaded(snapshots) => {
                state.live.local_at = Some(now);
                if state.live.local != snapshots {
                    state.live.local = snapshots;
                    state.dirty = true;
                    keep_live_selection(state);
                }
            }
            Action::AttachedLoaded(result) => {
                let before = state.attach_status();
                match &result {
                    Ok(_) => {
                        state.attach_ok_at = Some(now);
                        state.attach_failing_since = None;
                    }
                    Err(e) => {
                        if state.live.attached.error.as_ref() != Some(e) {
                            toast(state, ToastLevel::Error, format!("attach: {e}"));
                        }
                        state.attach_failing_since.get_or_insert(now);
                    }
                }
                if let Ok(doc) = &result {
                    let pool = match &doc.pool {
                        Some(nodes) => Ok(Some(nodes.iter().map(NodeRow::from).collect())),
                        None => Err(format!(
                            "worker '{}' (syncdeck {}) does not report its node pool",
                            doc.worker, doc.version
                        )),
                    };
                    state.dirty |= state.breaker.set_attached(pool, now);
                }
                state.dirty |=
                    state.live.attached.set(result, now) || state.attach_status() != before;
                keep_live_selection(state);
            }
            Action::SyncStarted {
                connector_id,
                job_id,
                run_here,
            } => {
                if run_here {
                    // The view changes first: a view change clears the old view's toasts.
                    let fx = switch_view(state, ViewId::Live);
                    toast(
                        state,
                        ToastLevel::Info,
                        format!(
                            "sync job {job_id} of '{connector_id}' runs on this console's engine"
                        ),
                    );
                    state.live.selected_job = Some(job_id);
                    return fx;
                }
                toast(
                    state,
                    ToastLevel::Info,
                    format!(
                        "sync job {job_id} of '{connector_id}' queued for a connectors service"
                    ),
                );
                return refresh_now(state);
            }
            Action::SyncFinished { summary, ok, .. } => {
                toast(
                    state,
                    if ok {
                        ToastLevel::Info
                    } else {
                        ToastLevel::Warn
                    },
                    summary,
                );
                let mut fx = vec![Effect::PollLive];
                fx.extend(refresh_now(state));
                return fx;
            }
            _ => {}
        }
        Vec::new()
    }

    pub(crate) fn keep_live_selection(state: &mut AppState) {
        let Some(id) = state.live.selected_job.clone() else {
            return;
        };
        if let Some(pos) = state.live_rows().iter().position(|r| r.job_id == id) {
            state.live.cursor.selected = pos;
        }
    }
}

pub(crate) use update::*;

/// The phase, with what `starting` is doing (`starting: pinging the source`).
pub fn phase_label(s: &ProgressSnapshot) -> String {
    match (&s.step, s.phase) {
        (Some(step), Phase::Starting) => format!("{}: {step}", phase_text(s.phase)),
        _ => phase_text(s.phase).to_string(),
    }
}

/// The Live view's state: this engine's snapshots, the attached worker's `/status`, the
/// cluster's running jobs, and the selection (kept by job id across refreshes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    /// This process's engine.
    pub local: Vec<ProgressSnapshot>,
    pub local_at: Option<crate::model::Timestamp>,
    /// `--attach`.
    pub attached: crate::console::app::Fetched<crate::engine::status::StatusDocument>,
    /// Jobs in progress anywhere, from the cluster.
    pub active: crate::console::app::Fetched<Vec<SyncJob>>,
    pub cursor: crate::console::table::Cursor,
    /// The selected job, kept across refreshes.
    pub selected_job: Option<String>,
}
