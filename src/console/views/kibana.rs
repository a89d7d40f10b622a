//! The Kibana connectors view: the actions connectors with their type, target index and
//! health flags (missing secrets, deprecated). It owns [`KibanaState`] (the actions
//! connectors and Kibana's status, which the header shows), how a row is filtered and
//! sorted, and its update: the results of the loads, creations, executions and deletions it
//! asked for, and its execute key.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::app::Fetched;
use crate::console::keymap::Command;
use crate::console::sort::{SortKey, SortValue};
use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::kibana::{ActionConnector, KibanaStatus};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub struct KibanaView;

/// The Kibana view's state.
#[derive(Debug, Clone, Default)]
pub struct KibanaState {
    /// The actions connectors.
    pub table: TableData<ActionConnector>,
    /// Kibana's own status (the header shows it on every view).
    pub status: Fetched<KibanaStatus>,
}

impl KibanaState {
    /// Empty again, for another profile; the sort is the operator's and stays.
    pub fn reset(&mut self) {
        crate::console::table::reset_keeping_sort(self, |s| &mut s.table);
    }

    /// Asks for the table again (it shows its old rows until the answer).
    fn reload(&mut self) -> crate::console::effect::Effect {
        self.table.loading = true;
        crate::console::effect::Effect::LoadKibanaConnectors
    }
}

const COLUMNS: [Column; 6] = [
    Column::grow("NAME", 12, 0).comfort(20),
    Column::new("ID", 12, 3),
    Column::new("TYPE", 8, 0).max(24),
    Column::new("INDEX", 12, 1),
    Column::new("USED BY", 7, 4),
    Column::new("HEALTH", 8, 0).max(60),
];

const HINTS: &[Hint] = &[
    hint(Command::NewConnector, "new .index"),
    hint(Command::Execute, "execute"),
    hint(Command::Delete, "delete"),
    hint(Command::Copy, "copy id"),
    hint(Command::Filter, "filter"),
    hint(Command::Help, "help"),
];

fn cells(k: &ActionConnector, theme: &Theme) -> Vec<CellText> {
    let flags = k.health_flags();
    let health = if flags.is_empty() {
        Span::styled("ok", theme.ok)
    } else {
        Span::styled(flags.join(", "), theme.danger)
    };
    vec![
        Span::raw(k.name.clone()),
        Span::styled(k.id.clone(), theme.dim),
        Span::raw(k.connector_type_id.clone()),
        Span::raw(k.index_name().unwrap_or("—").to_string()),
        Span::raw(
            k.referenced_by_count
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
        ),
        health,
    ]
}

impl View for KibanaView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        if !state.profile.has_kibana {
            let text = vec![
                Line::styled(
                    format!("Profile '{}' has no Kibana.", state.profile.name),
                    theme.text,
                ),
                Line::styled(
                    format!(
                        "Add [profiles.{}.kibana] url = \"…\" to the config file, or pass --kibana URL.",
                        state.profile.name
                    ),
                    theme.dim,
                ),
            ];
            let block = Block::bordered()
                .border_style(theme.border)
                .title(Span::styled(" Kibana connectors ", theme.title));
            frame.render_widget(Paragraph::new(text).block(block), area);
            return;
        }
        let data = &state.kibana.table;
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "no actions connectors; n creates an .index one"
        };
        let spec = TableSpec {
            title: "Kibana connectors",
            columns: &COLUMNS,
            badges: Vec::new(),
            stale: stale_label(state, data.loaded_at, data.error.as_ref()),
            empty,
        };
        table::render(
            frame,
            area,
            data,
            |k| cells(k, theme),
            |_| theme.text,
            spec,
            theme,
        );
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

/// How a row of this view's table is found, filtered and sorted.
impl TableRow for ActionConnector {
    fn row_id(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {}",
            self.name,
            self.id,
            self.connector_type_id,
            self.index_name().unwrap_or("")
        )
    }
    fn sort_value(&self, key: SortKey) -> SortValue {
        match key {
            SortKey::Name => SortValue::text(&self.name),
            SortKey::Id => SortValue::text(&self.id),
            SortKey::Type => SortValue::text(&self.connector_type_id),
            SortKey::Index => SortValue::opt_text(self.index_name()),
            _ => SortValue::Missing,
        }
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::console::form::Form;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::KibanaLoaded(result) => {
                load_table(state, |s| &mut s.kibana.table, result, "Kibana connectors")
            }
            Action::KibanaCreated(id) => {
                state.modal = None;
                toast(
                    state,
                    ToastLevel::Info,
                    format!("Kibana connector {id} created"),
                );
                return vec![state.kibana.reload()];
            }
            Action::KibanaExecuted { id, result } => match result {
                Ok(message) => {
                    state.modal = None;
                    toast(state, ToastLevel::Info, format!("executed {id}: {message}"));
                }
                Err(error) => {
                    if let Some(Modal::Form(form)) = &mut state.modal {
                        form.submitting = false;
                        form.error = Some(error.clone());
                    }
                    toast(state, ToastLevel::Error, format!("execute {id}: {error}"));
                }
            },
            Action::KibanaDeleted(id) => {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("Kibana connector {id} deleted"),
                );
                return vec![state.kibana.reload()];
            }
            _ => {}
        }
        Vec::new()
    }

    /// `x`: execute the selected `.index` connector with a document typed in a form.
    pub(crate) fn execute(state: &mut AppState) -> Vec<Effect> {
        if state.view != ViewId::Kibana {
            return Vec::new();
        }
        if let Some(k) = state.kibana.table.selected() {
            if k.connector_type_id != crate::kibana::model::INDEX_CONNECTOR_TYPE {
                toast(
                    state,
                    ToastLevel::Info,
                    format!(
                        "only .index connectors can be executed here ('{}' is {})",
                        k.name, k.connector_type_id
                    ),
                );
                return Vec::new();
            }
            let form = Form::kibana_execute(&k.id, &k.name);
            state.modal = Some(Modal::Form(Box::new(form)));
        }
        Vec::new()
    }
}

pub(crate) use update::*;
