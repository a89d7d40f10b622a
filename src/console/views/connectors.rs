//! The Connectors view: name, id, service type, index, status, last sync status and time,
//! scheduling.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::ago;
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::{Connector, Scheduling};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

pub struct ConnectorsView;

/// At 80 columns: name, id, status, last sync and index, the name taking what is left;
/// wider, the service, sync time and schedule join and the name grows to its length.
const COLUMNS: [Column; 8] = [
    Column::grow("NAME", 12, 0).comfort(20),
    Column::new("ID", 12, 0),
    Column::new("SERVICE", 8, 4),
    Column::new("INDEX", 12, 2),
    Column::new("STATUS", 10, 0).max(12),
    Column::new("LAST SYNC", 9, 1).max(11),
    Column::new("SYNCED", 8, 4),
    Column::grow("SCHEDULE", 12, 5).max(30),
];

const HINTS: &[Hint] = &[
    hint(Command::Open, "detail"),
    hint(Command::StartSync, "sync"),
    hint(Command::EditConfig, "edit"),
    hint(Command::NewConnector, "new"),
    hint(Command::Delete, "delete"),
    hint(Command::Filter, "filter"),
    hint(Command::Help, "help"),
];

/// `full 0 0 * * * ?` for the first enabled schedule, `+1` when more are on, `—` for none.
pub fn schedule_text(s: &Scheduling) -> String {
    let on: Vec<(&str, &str)> = [
        ("full", &s.full),
        ("incr", &s.incremental),
        ("acl", &s.access_control),
    ]
    .into_iter()
    .filter(|(_, c)| c.enabled)
    .map(|(n, c)| (n, c.interval.as_str()))
    .collect();
    match on.as_slice() {
        [] => "—".to_string(),
        [(n, i)] => format!("{n} {i}"),
        [(n, i), rest @ ..] => format!("{n} {i} +{}", rest.len()),
    }
}

/// A connector status in at most 12 columns.
pub fn status_text(status: crate::model::ConnectorStatus) -> &'static str {
    match status {
        crate::model::ConnectorStatus::NeedsConfiguration => "needs config",
        other => other.as_str(),
    }
}

fn cells(c: &Connector, state: &AppState, theme: &Theme) -> Vec<CellText> {
    let last = c
        .last_sync_status
        .map(|s| Span::styled(s.to_string(), theme.status(s)))
        .unwrap_or_else(|| Span::styled("never", theme.dim));
    vec![
        Span::raw(if c.name.is_empty() {
            c.id.clone()
        } else {
            c.name.clone()
        }),
        Span::styled(c.id.clone(), theme.dim),
        Span::raw(c.service_type.clone().unwrap_or_else(|| "—".into())),
        Span::raw(c.index_name.clone().unwrap_or_else(|| "—".into())),
        Span::styled(status_text(c.status), theme.connector_status(c.status)),
        last,
        Span::styled(ago(state.now, c.last_synced), theme.dim),
        Span::raw(schedule_text(&c.scheduling)),
    ]
}

impl View for ConnectorsView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let data = &state.connectors;
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "no connectors; n creates one"
        };
        let spec = TableSpec {
            title: "Connectors",
            columns: &COLUMNS,
            badges: Vec::new(),
            stale: stale_label(state, data.loaded_at, data.error.as_ref()),
            empty,
        };
        table::render(
            frame,
            area,
            data,
            |c| cells(c, state, theme),
            |_| theme.text,
            spec,
            theme,
        );
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}
