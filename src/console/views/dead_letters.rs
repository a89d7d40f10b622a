//! The Dead letters view: the open dead letters of the profile's cluster (the header names
//! it), with connector, job, document id, error type, attempts, last failure; space marks
//! rows for a retry or drop of several at once. It owns [`DeadLettersState`] (the page of
//! entries, the queue's size and origin, the marks, the busy flag), how an entry is
//! filtered and sorted, and its update: the results of the loads, retries and drops it
//! asked for, and its keys.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::{ago, count};
use crate::console::keymap::Command;
use crate::console::sort::{SortKey, SortValue};
use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::DeadLetter;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use std::collections::BTreeSet;

pub struct DeadLettersView;

/// The Dead letters view's state.
#[derive(Debug, Clone, Default)]
pub struct DeadLettersState {
    /// A page of the open dead letters, scoped to one job along a drill-down.
    pub table: TableData<DeadLetter>,
    /// Dead letters in the queue (the table holds at most a page of them).
    pub total: u64,
    /// Whose queue it is: the profile's cluster, once known.
    pub cluster: Option<String>,
    /// Open dead letters of unknown origin (not shown: they belong to no known cluster).
    pub unknown: u64,
    pub marked: BTreeSet<i64>,
    /// A retry or drop is in flight.
    pub busy: bool,
}

impl DeadLettersState {
    /// Empty again (another profile may be another cluster: its queue is named once it has
    /// loaded); the sort is the operator's and stays.
    pub fn reset(&mut self) {
        crate::console::table::reset_keeping_sort(self, |s| &mut s.table);
    }

    pub fn is_marked(&self, id: i64) -> bool {
        self.marked.contains(&id)
    }

    /// Records whose queue was loaded; returns whether that changed.
    fn set_origin(&mut self, cluster: String, unknown: u64) -> bool {
        let changed = self.cluster.as_ref() != Some(&cluster) || self.unknown != unknown;
        self.cluster = Some(cluster);
        self.unknown = unknown;
        changed
    }

    /// Records the queue's size after a load; marks of entries no longer listed go.
    fn set_total(&mut self, total: u64) {
        self.total = total;
        let present: BTreeSet<i64> = self.table.all().iter().map(|d| d.id).collect();
        self.marked.retain(|id| present.contains(id));
    }

    /// The pretty JSON document of an entry of the page.
    pub fn document(&self, id: i64) -> Option<String> {
        let entry = self.table.all().iter().find(|d| d.id == id)?;
        serde_json::to_string_pretty(&entry.document).ok()
    }

    /// Marks the selected entry (or unmarks it) and moves down, to mark the next.
    fn toggle_selected(&mut self) {
        if let Some(id) = self.table.selected().map(|d| d.id)
            && !self.marked.remove(&id)
        {
            self.marked.insert(id);
        }
        self.table.move_by(1);
    }

    /// Marks every entry shown; when all of them already are, unmarks them.
    fn toggle_visible(&mut self) {
        let visible: BTreeSet<i64> = self.table.visible().map(|d| d.id).collect();
        if !visible.is_empty() && visible.is_subset(&self.marked) {
            self.marked.retain(|id| !visible.contains(id));
        } else {
            self.marked.extend(visible);
        }
    }

    /// What a retry or drop in the table applies to: the marked entries, else the selected
    /// one.
    fn chosen(&self) -> Vec<i64> {
        if !self.marked.is_empty() {
            return self.marked.iter().copied().collect();
        }
        self.table
            .selected()
            .map(|d| vec![d.id])
            .unwrap_or_default()
    }

    /// Takes the queue for a retry or drop; `false` when one is already running.
    fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.busy, true)
    }
}

/// At 80 columns: the mark, id, connector and document whole, tries and the last failure,
/// and the error type and reason sharing the rest; wider, the job joins and the error type
/// and reason take the room (the snapshots `dead_letters_80x24` and `_160x48` show both).
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
    let mark = if state.dead_letters.is_marked(d.id) {
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
        let dlq = &state.dead_letters;
        let data = &dlq.table;
        let mut badges = Vec::new();
        if dlq.unknown > 0 {
            badges.push(Span::styled(
                format!(
                    "{} of unknown origin not shown (syncdeck dlq list --all-clusters) ",
                    count(dlq.unknown)
                ),
                theme.warn,
            ));
        }
        if dlq.total > data.all().len() as u64 {
            badges.push(Span::styled(
                format!("of {} in the queue ", count(dlq.total)),
                theme.dim,
            ));
        }
        if !dlq.marked.is_empty() {
            badges.push(Span::styled(
                format!("{} marked ", dlq.marked.len()),
                theme.row_marked,
            ));
        }
        if dlq.busy {
            badges.push(Span::styled("working… ", theme.warn));
        }
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "the dead-letter queue is empty"
        };
        let title = match &dlq.cluster {
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
                if dlq.is_marked(d.id) {
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

/// How a row of this view's table is found, filtered and sorted.
impl TableRow for DeadLetter {
    fn row_id(&self) -> String {
        self.id.to_string()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.connector_id, self.job_id, self.doc_id, self.error_type, self.index, self.reason
        )
    }
    fn sort_value(&self, key: SortKey) -> SortValue {
        match key {
            SortKey::Id => SortValue::Num(self.id),
            SortKey::Connector => SortValue::text(&self.connector_id),
            SortKey::Job => SortValue::text(&self.job_id),
            SortKey::Error => SortValue::text(&self.error_type),
            SortKey::Age => SortValue::time(Some(self.last_failed_at)),
            _ => SortValue::Missing,
        }
    }
    fn parent_id(&self) -> Option<&str> {
        Some(&self.job_id)
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::console::keymap::Command;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::DeadLetterScope { cluster, unknown } => {
                state.dirty |= state.dead_letters.set_origin(cluster, unknown);
            }
            Action::DeadLettersLoaded(result) => {
                let total = result.as_ref().map(|(_, t)| *t).ok();
                load_table(
                    state,
                    |s| &mut s.dead_letters.table,
                    result.map(|(rows, _)| rows),
                    "dead letters",
                );
                if let Some(total) = total {
                    state.dead_letters.set_total(total);
                }
            }
            Action::DeadLettersRetried {
                succeeded,
                failed,
                superseded,
            } => {
                state.dead_letters.busy = false;
                let closed =
                    |id: &i64| succeeded.contains(id) || superseded.iter().any(|(s, _)| s == id);
                state.dead_letters.marked.retain(|id| !closed(id));
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
                state.dead_letters.table.loading = true;
                return vec![Effect::LoadDeadLetters];
            }
            Action::DeadLettersDropped(n) => {
                state.dead_letters.busy = false;
                if matches!(state.screens.last(), Some(Screen::DeadLetterDetail { .. })) {
                    state.screens.pop();
                }
                state.dead_letters.marked.clear();
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{n} dead letter(s) dropped"),
                );
                state.dead_letters.table.loading = true;
                return vec![Effect::LoadDeadLetters];
            }
            _ => {}
        }
        Vec::new()
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
        state.dead_letters.chosen()
    }

    pub(crate) fn start_retry(state: &mut AppState, ids: Vec<i64>) -> Vec<Effect> {
        if !state.dead_letters.begin() {
            toast(
                state,
                ToastLevel::Info,
                "a retry or drop is already running",
            );
            return Vec::new();
        }
        toast(
            state,
            ToastLevel::Info,
            format!("retrying {} dead letter(s)…", ids.len()),
        );
        vec![Effect::RetryDeadLetters(ids)]
    }

    /// A drop confirmed: the queue is busy until it answers.
    pub(crate) fn start_drop(state: &mut AppState, ids: Vec<i64>) -> Vec<Effect> {
        state.dead_letters.busy = true;
        vec![Effect::DropDeadLetters(ids)]
    }

    /// The dead-letter commands: mark, mark all, retry, retry all, drop.
    pub(crate) fn on_command(state: &mut AppState, command: Command) -> Vec<Effect> {
        match command {
            Command::Mark => {
                state.dead_letters.toggle_selected();
                Vec::new()
            }
            Command::MarkAll => {
                state.dead_letters.toggle_visible();
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
                let ids: Vec<i64> = state.dead_letters.table.visible().map(|d| d.id).collect();
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
