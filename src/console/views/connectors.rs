//! The Connectors view: name, id, service type, index, status, last sync status and time,
//! scheduling. It owns [`ConnectorsState`] (the connectors table), how a connector row is
//! filtered and sorted, and its update: the results of the loads, creations and deletions
//! it asked for, and its keys (start a sync, edit the configuration).

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::ago;
use crate::console::keymap::Command;
use crate::console::sort::{SortKey, SortValue};
use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::{Connector, Scheduling};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

pub struct ConnectorsView;

/// The Connectors view's state.
#[derive(Debug, Clone, Default)]
pub struct ConnectorsState {
    /// Every connector of the profile, filtered and sorted as the operator asked.
    pub table: TableData<Connector>,
}

impl ConnectorsState {
    /// Empty again, for another profile; the sort is the operator's and stays.
    pub fn reset(&mut self) {
        crate::console::table::reset_keeping_sort(self, |s| &mut s.table);
    }

    /// Whether a connector of this id is listed.
    pub fn knows(&self, id: &str) -> bool {
        self.table.all().iter().any(|c| c.id == id)
    }

    /// Asks for the table again (it shows its old rows until the answer).
    fn reload(&mut self) -> crate::console::effect::Effect {
        self.table.loading = true;
        crate::console::effect::Effect::LoadConnectors
    }
}

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
        let data = &state.connectors.table;
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

/// How a row of this view's table is found, filtered and sorted.
impl TableRow for Connector {
    fn row_id(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.name,
            self.id,
            self.service_type.as_deref().unwrap_or(""),
            self.index_name.as_deref().unwrap_or(""),
            self.status
        )
    }
    fn sort_value(&self, key: SortKey) -> SortValue {
        match key {
            SortKey::Name => SortValue::text(&self.name),
            SortKey::Id => SortValue::text(&self.id),
            SortKey::Type => SortValue::opt_text(self.service_type.as_deref()),
            SortKey::Index => SortValue::opt_text(self.index_name.as_deref()),
            SortKey::Status => SortValue::text(self.status.to_string()),
            SortKey::Age => SortValue::time(self.last_synced),
            _ => SortValue::Missing,
        }
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::console::form::{Form, FormPurpose};
    use crate::engine::runner::runnable;
    use crate::model::{Connector, JobType};

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::ConnectorsLoaded(result) => {
                load_table(state, |s| &mut s.connectors.table, result, "connectors");
            }
            Action::ConnectorDetailLoaded { id, result } => {
                if let Some(Screen::ConnectorDetail(d)) = state
                    .screens
                    .iter_mut()
                    .rev()
                    .find(|s| matches!(s, Screen::ConnectorDetail(d) if d.id == id))
                {
                    match result {
                        Ok((connector, jobs)) => {
                            d.connector = Some(connector);
                            d.jobs = jobs;
                            d.error = None;
                        }
                        Err(e) => d.error = Some(e),
                    }
                    state.dirty = true;
                }
            }
            Action::ConnectorCreated(id) => {
                if matches!(state.modal, Some(Modal::Form(ref f)) if f.purpose == FormPurpose::NewConnector)
                {
                    state.modal = None;
                }
                toast(state, ToastLevel::Info, format!("connector '{id}' created"));
                let mut fx = refresh_now(state);
                fx.retain(|e| *e != Effect::LoadConnectors);
                fx.push(state.connectors.reload());
                return fx;
            }
            Action::ConnectorDeleted(id) => {
                if matches!(state.screens.last(), Some(Screen::ConnectorDetail(d)) if d.id == id) {
                    state.screens.pop();
                }
                toast(state, ToastLevel::Info, format!("connector '{id}' deleted"));
                return refresh_now(state);
            }
            _ => {}
        }
        Vec::new()
    }

    /// The connector the command applies to: the detail's, or the selected row's.
    pub(crate) fn target_connector(state: &AppState) -> Option<Connector> {
        match state.screens.last() {
            Some(Screen::ConnectorDetail(d)) => d.connector.clone(),
            Some(_) => None,
            None if state.view == ViewId::Connectors => state.connectors.table.selected().cloned(),
            None => None,
        }
    }

    pub(crate) fn start_sync(state: &mut AppState) -> Vec<Effect> {
        let Some(c) = target_connector(state) else {
            return Vec::new();
        };
        if c.index_name.as_deref().is_none_or(str::is_empty) {
            toast(
                state,
                ToastLevel::Warn,
                format!("connector '{}' has no index name", c.id),
            );
            return Vec::new();
        }
        let name = if c.name.is_empty() {
            c.id.clone()
        } else {
            c.name.clone()
        };
        // Claim only what this engine can run: another connector's job is only queued, for the
        // connectors service that serves it (the engine's own rule, over the registry's types).
        let available: Vec<&str> = state
            .service_types
            .iter()
            .map(|t| t.service_type.as_str())
            .collect();
        let form = match runnable(&available, c.service_type.as_deref(), JobType::Full) {
            Ok(()) => Form::start_sync(&c.id, &name, state.profile.can_queue()),
            Err(why) if state.profile.can_queue() => Form::queue_sync(&c.id, &name, &why),
            Err(why) => {
                toast(
                    state,
                    ToastLevel::Warn,
                    format!("cannot sync '{}' here: {why}", c.id),
                );
                return Vec::new();
            }
        };
        state.modal = Some(Modal::Form(Box::new(form)));
        Vec::new()
    }

    pub(crate) fn edit_config(state: &mut AppState) -> Vec<Effect> {
        match target_connector(state) {
            Some(c) => {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("opening the configuration of '{}'…", c.id),
                );
                vec![Effect::LoadConnectorForEdit(c.id)]
            }
            None => Vec::new(),
        }
    }
}

pub(crate) use update::*;
