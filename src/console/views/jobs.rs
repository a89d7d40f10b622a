//! The Sync jobs view: every job of every connectors service, newest first, with status
//! colours, counts, volume, start, duration and worker; filters by status and connector.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::{ago, count, job_duration};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::SyncJob;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

pub struct JobsView;

/// At 80 columns: id and connector whole, type, status, indexed and started; wider, the
/// duration, counts, volume, trigger and worker join, and the worker grows to its length.
const COLUMNS: [Column; 12] = [
    Column::new("ID", 12, 0),
    Column::new("CONNECTOR", 12, 0),
    Column::new("TYPE", 4, 2).max(14),
    Column::new("TRIGGER", 9, 5),
    Column::new("STATUS", 11, 0),
    Column::new("INDEXED", 7, 1).max(12),
    Column::new("DELETED", 7, 3),
    Column::new("TOTAL", 7, 3).max(12),
    Column::new("VOLUME", 7, 4),
    Column::new("STARTED", 8, 1),
    Column::new("DURATION", 8, 2),
    Column::grow("WORKER", 12, 5).max(60),
];

const HINTS: &[Hint] = &[
    hint(Command::Open, "detail"),
    hint(Command::CancelJob, "cancel"),
    hint(Command::StatusFilter, "status"),
    hint(Command::ConnectorFilter, "connector"),
    hint(Command::Filter, "filter"),
    hint(Command::Help, "help"),
];

fn cells(j: &SyncJob, state: &AppState, theme: &Theme) -> Vec<CellText> {
    vec![
        Span::styled(j.id.clone(), theme.dim),
        Span::raw(j.connector.id.clone()),
        Span::raw(j.job_type.to_string()),
        Span::raw(j.trigger_method.to_string()),
        Span::styled(j.status.to_string(), theme.status(j.status)),
        Span::raw(count(j.indexed_document_count)),
        Span::raw(count(j.deleted_document_count)),
        Span::raw(
            j.total_document_count
                .map(count)
                .unwrap_or_else(|| "—".into()),
        ),
        Span::raw(format!("{} MiB", j.indexed_document_volume)),
        // A pending job has not started: its creation time would read as a start.
        Span::styled(
            j.started_at
                .map(|t| ago(state.now, Some(t)))
                .unwrap_or_else(|| "—".into()),
            theme.dim,
        ),
        Span::raw(job_duration(j, state.now)),
        Span::styled(
            j.worker_hostname
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "—".into()),
            theme.dim,
        ),
    ]
}

impl View for JobsView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let data = &state.jobs;
        let mut badges = Vec::new();
        if let Some(s) = state.jobs_filter.status {
            badges.push(Span::styled(format!("status={s} "), theme.accent));
        }
        if let Some(c) = &state.jobs_filter.connector {
            badges.push(Span::styled(format!("connector={c} "), theme.accent));
        }
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "no sync jobs"
        };
        let spec = TableSpec {
            title: "Sync jobs",
            columns: &COLUMNS,
            badges,
            stale: stale_label(state, data.loaded_at, data.error.as_ref()),
            empty,
        };
        table::render(
            frame,
            area,
            data,
            |j| cells(j, state, theme),
            |_| theme.text,
            spec,
            theme,
        );
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}
