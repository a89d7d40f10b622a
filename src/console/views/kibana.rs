//! The Kibana connectors view: the actions connectors with their type, target index and
//! health flags (missing secrets, deprecated).

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::kibana::ActionConnector;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub struct KibanaView;

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
        let data = &state.kibana;
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
