//! The Dead letters view: the open dead letters of the profile's cluster (the header names
//! it), with connector, job, document id, error type, attempts, last failure; space marks
//! rows for a retry or drop of several at once.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::{ago, count};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::DeadLetter;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

pub struct DeadLettersView;

/// At 80 columns: the mark, connector, document, error type, last failure and as much of
/// the reason as fits; wider, ids and tries join and the reason takes the room.
/// At 80 columns: the mark, connector and document whole, the last failure, and the error
/// type and reason sharing the rest; wider, tries, ids and the job join and the reason
/// takes the room.
const COLUMNS: [Column; 9] = [
    Column::new(" ", 1, 0),
    Column::new("ID", 4, 4).max(8),
    Column::new("CONNECTOR", 12, 0),
    Column::new("JOB", 12, 4),
    Column::new("DOCUMENT", 10, 0).max(60),
    Column::grow("ERROR", 12, 2).max(36),
    Column::grow("REASON", 12, 1).max(400),
    Column::new("TRIES", 5, 3),
    Column::new("FAILED", 7, 1),
];

const HINTS: &[Hint] = &[
    hint(Command::Open, "detail"),
    hint(Command::Mark, "mark"),
    hint(Command::Retry, "retry"),
    hint(Command::RetryAll, "retry all"),
    hint(Command::Drop, "drop"),
    hint(Command::Copy, "copy doc"),
    hint(Command::Filter, "filter"),
];

fn cells(d: &DeadLetter, state: &AppState, theme: &Theme) -> Vec<CellText> {
    let mark = if state.marked.contains(&d.id) {
        "✔"
    } else {
        " "
    };
    vec![
        Span::styled(mark, theme.row_marked),
        Span::styled(d.id.to_string(), theme.dim),
        Span::raw(d.connector_id.clone()),
        Span::styled(d.job_id.clone(), theme.dim),
        Span::raw(crate::console::format::safe(&d.doc_id)),
        Span::styled(d.error_type.clone(), theme.danger),
        Span::raw(crate::console::format::safe(&d.reason)),
        Span::raw(d.attempts.to_string()),
        Span::styled(ago(state.now, Some(d.last_failed_at)), theme.dim),
    ]
}

impl View for DeadLettersView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let data = &state.dead_letters;
        let mut badges = Vec::new();
        if state.dlq_unknown > 0 {
            badges.push(Span::styled(
                format!(
                    "{} of unknown origin not shown (syncdeck dlq list --all-clusters) ",
                    count(state.dlq_unknown)
                ),
                theme.warn,
            ));
        }
        if state.dlq_total > data.all().len() as u64 {
            badges.push(Span::styled(
                format!("of {} in the queue ", count(state.dlq_total)),
                theme.dim,
            ));
        }
        if !state.marked.is_empty() {
            badges.push(Span::styled(
                format!("{} marked ", state.marked.len()),
                theme.row_marked,
            ));
        }
        if state.dlq_busy {
            badges.push(Span::styled("working… ", theme.warn));
        }
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "the dead-letter queue is empty"
        };
        let title = match &state.dlq_cluster {
            Some(cluster) => format!("Dead letters of {cluster}"),
            None => "Dead letters".to_string(),
        };
        let spec = TableSpec {
            title: &title,
            columns: &COLUMNS,
            badges,
            stale: stale_label(state, data.loaded_at, data.error.as_ref()),
            empty,
        };
        table::render(
            frame,
            area,
            data,
            |d| cells(d, state, theme),
            |d| {
                if state.marked.contains(&d.id) {
                    theme.row_marked
                } else {
                    theme.text
                }
            },
            spec,
            theme,
        );
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}
