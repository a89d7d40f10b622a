//! The Sync jobs view: every job of every connectors service, newest first, with status
//! colours, counts, volume, start, duration and worker; filters by status and connector.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::{ago, count, duration_ms};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, Column, TableSpec};
use crate::model::SyncJob;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Cell;

pub struct JobsView;

const COLUMNS: [Column; 12] = [
    Column::new("ID", 20, 0),
    Column::grow("CONNECTOR", 14, 0),
    Column::new("TYPE", 11, 2),
    Column::new("TRIGGER", 9, 5),
    Column::new("STATUS", 11, 0),
    Column::new("INDEXED", 9, 1),
    Column::new("DELETED", 7, 3),
    Column::new("TOTAL", 9, 3),
    Column::new("VOLUME", 7, 4),
    Column::new("STARTED", 8, 1),
    Column::new("DURATION", 8, 2),
    Column::new("WORKER", 16, 5),
];

const HINTS: &[Hint] = &[
    hint(Command::Open, "detail"),
    hint(Command::CancelJob, "cancel"),
    hint(Command::StatusFilter, "status"),
    hint(Command::ConnectorFilter, "connector"),
    hint(Command::Filter, "filter"),
    hint(Command::Help, "help"),
];

fn cells(j: &SyncJob, state: &AppState, theme: &Theme) -> Vec<Cell<'static>> {
    let duration = j
        .duration(state.now)
        .map(|d| duration_ms(d.num_milliseconds().max(0) as u64))
        .unwrap_or_else(|| "—".into());
    vec![
        Cell::from(Span::styled(j.id.clone(), theme.dim)),
        Cell::from(j.connector.id.clone()),
        Cell::from(j.job_type.to_string()),
        Cell::from(j.trigger_method.to_string()),
        Cell::from(Span::styled(j.status.to_string(), theme.status(j.status))),
        Cell::from(count(j.indexed_document_count)),
        Cell::from(count(j.deleted_document_count)),
        Cell::from(
            j.total_document_count
                .map(count)
                .unwrap_or_else(|| "—".into()),
        ),
        Cell::from(format!("{} MiB", j.indexed_document_volume)),
        Cell::from(Span::styled(
            ago(state.now, j.started_at.or(j.created_at)),
            theme.dim,
        )),
        Cell::from(duration),
        Cell::from(Span::styled(
            j.worker_hostname.clone().unwrap_or_else(|| "—".into()),
            theme.dim,
        )),
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
