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

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::console::keymap::Command;
    use std::collections::BTreeSet;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::DeadLetterScope { cluster, unknown } => {
                state.dirty |=
                    state.dlq_cluster.as_ref() != Some(&cluster) || state.dlq_unknown != unknown;
                state.dlq_cluster = Some(cluster);
                state.dlq_unknown = unknown;
            }
            Action::DeadLettersLoaded(result) => {
                let total = result.as_ref().map(|(_, t)| *t).ok();
                load_table(
                    state,
                    |s| &mut s.dead_letters,
                    result.map(|(rows, _)| rows),
                    "dead letters",
                );
                if let Some(total) = total {
                    state.dlq_total = total;
                    let present: BTreeSet<i64> =
                        state.dead_letters.all().iter().map(|d| d.id).collect();
                    state.marked.retain(|id| present.contains(id));
                }
            }
            Action::DeadLettersRetried {
                succeeded,
                failed,
                superseded,
            } => {
                state.dlq_busy = false;
                let closed =
                    |id: &i64| succeeded.contains(id) || superseded.iter().any(|(s, _)| s == id);
                state.marked.retain(|id| !closed(id));
                if matches!(state.screens.last(), Some(Screen::DeadLetterDetail { id, .. }) if closed(id))
                {
                    state.screens.pop();
                }
                let level = if failed.is_empty() {
                    ToastLevel::Info
                } else {
                    ToastLevel::Warn
                };
                let mut text = format!(
                    "{} indexed and resolved, {} failed again",
                    succeeded.len(),
                    failed.len()
                );
                if let Some((id, reason)) = failed.first() {
                    text.push_str(&format!(
                        " ({id}: {})",
                        crate::console::format::first_line(reason)
                    ));
                }
                if !superseded.is_empty() {
                    text.push_str(&format!(
                        ", {} superseded: not sent, the index holds a newer version",
                        superseded.len()
                    ));
                }
                toast(state, level, text);
                state.dead_letters.loading = true;
                return vec![Effect::LoadDeadLetters];
            }
            Action::DeadLettersDropped(n) => {
                state.dlq_busy = false;
                if matches!(state.screens.last(), Some(Screen::DeadLetterDetail { .. })) {
                    state.screens.pop();
                }
                state.marked.clear();
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{n} dead letter(s) dropped"),
                );
                state.dead_letters.loading = true;
                return vec![Effect::LoadDeadLetters];
            }
            _ => {}
        }
        Vec::new()
    }

    pub(crate) fn dead_letter_document(state: &AppState, id: i64) -> Option<String> {
        let entry = state.dead_letters.all().iter().find(|d| d.id == id)?;
        serde_json::to_string_pretty(&entry.document).ok()
    }

    /// The dead letters a retry or drop applies to: the detail's, the marked ones, or the
    /// selected one.
    pub(crate) fn dead_letter_selection(state: &AppState) -> Vec<i64> {
        if let Some(Screen::DeadLetterDetail { id, .. }) = state.screens.last() {
            return vec![*id];
        }
        if state.view != ViewId::DeadLetters || !state.screens.is_empty() {
            return Vec::new();
        }
        if !state.marked.is_empty() {
            return state.marked.iter().copied().collect();
        }
        state
            .dead_letters
            .selected()
            .map(|d| vec![d.id])
            .unwrap_or_default()
    }

    pub(crate) fn start_retry(state: &mut AppState, ids: Vec<i64>) -> Vec<Effect> {
        if state.dlq_busy {
            toast(
                state,
                ToastLevel::Info,
                "a retry or drop is already running",
            );
            return Vec::new();
        }
        state.dlq_busy = true;
        toast(
            state,
            ToastLevel::Info,
            format!("retrying {} dead letter(s)…", ids.len()),
        );
        vec![Effect::RetryDeadLetters(ids)]
    }

    /// The dead-letter commands: mark, mark all, retry, retry all, drop.
    pub(crate) fn on_command(state: &mut AppState, command: Command) -> Vec<Effect> {
        match command {
            Command::Mark => {
                if let Some(id) = state.dead_letters.selected().map(|d| d.id)
                    && !state.marked.remove(&id)
                {
                    state.marked.insert(id);
                }
                state.dead_letters.move_by(1);
                Vec::new()
            }
            Command::MarkAll => {
                let visible: BTreeSet<i64> = state.dead_letters.visible().map(|d| d.id).collect();
                if !visible.is_empty() && visible.is_subset(&state.marked) {
                    state.marked.retain(|id| !visible.contains(id));
                } else {
                    state.marked.extend(visible);
                }
                Vec::new()
            }
            Command::Retry => {
                let ids = dead_letter_selection(state);
                if ids.is_empty() {
                    toast(state, ToastLevel::Info, "no dead letter selected");
                    return Vec::new();
                }
                start_retry(state, ids)
            }
            Command::RetryAll => {
                let ids: Vec<i64> = state.dead_letters.visible().map(|d| d.id).collect();
                if ids.is_empty() {
                    toast(state, ToastLevel::Info, "no dead letters to retry");
                    return Vec::new();
                }
                state.modal = Some(Modal::Confirm(ConfirmAction::RetryDeadLetters(ids)));
                Vec::new()
            }
            Command::Drop => {
                let ids = dead_letter_selection(state);
                if ids.is_empty() {
                    toast(state, ToastLevel::Info, "no dead letter selected");
                    return Vec::new();
                }
                state.modal = Some(Modal::Confirm(ConfirmAction::DropDeadLetters(ids)));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

pub(crate) use update::*;
