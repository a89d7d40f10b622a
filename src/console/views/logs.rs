//! The Logs view: the in-app tail of the tracing log, newest at the bottom, following new
//! lines unless scrolled back.

use super::{Hint, View, hint};
use crate::console::app::AppState;
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub struct LogsView;

const HINTS: &[Hint] = &[
    hint(Command::Up, "scroll back"),
    hint(Command::Bottom, "follow"),
    hint(Command::Filter, "filter"),
    hint(Command::Copy, "copy line"),
    hint(Command::Help, "help"),
];

fn line_style(line: &str, theme: &Theme) -> ratatui::style::Style {
    if line.contains(" ERROR ") {
        theme.danger
    } else if line.contains(" WARN ") {
        theme.warn
    } else if line.contains(" DEBUG ") || line.contains(" TRACE ") {
        theme.dim
    } else {
        theme.text
    }
}

/// Drops the date of an ISO timestamp at the start of a line (keeping the time) when space
/// is short: `2024-05-01T09:59:30.000Z  INFO ...` reads `09:59:30.000Z  INFO ...`.
fn trim_date(line: &str, narrow: bool) -> &str {
    let b = line.as_bytes();
    let dated = b.len() > 11 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T';
    if narrow && dated { &line[11..] } else { line }
}

impl View for LogsView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let lines = state.logs.visible();
        let mut title = vec![
            Span::styled(" Logs ", theme.title),
            Span::styled(format!("[{}] ", lines.len()), theme.dim),
        ];
        if !state.logs.filter.is_empty() {
            title.push(Span::styled(
                format!("/{} ", state.logs.filter),
                theme.accent,
            ));
        }
        let status = if state.logs.scroll_back > 0 {
            format!(" scrolled back {} ", state.logs.scroll_back)
        } else {
            " following ".to_string()
        };
        let block = Block::bordered()
            .border_style(theme.border)
            .title(Line::from(title))
            .title_bottom(Line::styled(status, theme.dim).right_aligned());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = inner.height as usize;
        let end = lines.len().saturating_sub(state.logs.scroll_back);
        let start = end.saturating_sub(height);
        let narrow = inner.width < 120;
        let shown: Vec<Line> = lines[start..end]
            .iter()
            .map(|l| Line::styled(trim_date(l, narrow).to_string(), line_style(l, theme)))
            .collect();
        if shown.is_empty() {
            frame.render_widget(
                Paragraph::new(Line::styled("no log lines yet", theme.dim)),
                inner,
            );
            return;
        }
        frame.render_widget(Paragraph::new(shown), inner);
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}
