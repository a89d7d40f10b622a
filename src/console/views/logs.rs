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
                Paragraph::new(Line::styled(state.logs.empty_text(), theme.dim)),
                inner,
            );
            return;
        }
        if state.logs.wrap {
            let wrapped = wrap_tail(&lines[..end], inner.width as usize, height, narrow, theme);
            frame.render_widget(Paragraph::new(wrapped), inner);
            return;
        }
        frame.render_widget(Paragraph::new(shown), inner);
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

/// The Logs view's state: the tail's lines, where the view is scrolled, the filter, and
/// whether long lines wrap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogsState {
    pub lines: Vec<String>,
    /// Lines appended since start (the tail's counter).
    pub total: u64,
    /// Lines scrolled back from the newest; 0 follows new lines.
    pub scroll_back: usize,
    pub filter: String,
    /// Long lines wrap instead of being cut at the edge (`w`).
    pub wrap: bool,
}

impl LogsState {
    /// The lines the filter keeps.
    pub fn visible(&self) -> Vec<&str> {
        let needle = self.filter.to_lowercase();
        self.lines
            .iter()
            .filter(|l| {
                needle.is_empty() || crate::console::table::fuzzy_match(&needle, &l.to_lowercase())
            })
            .map(String::as_str)
            .collect()
    }

    /// The selected line: the newest one shown, `scroll_back` lines up.
    pub fn selected(&self) -> Option<String> {
        let lines = self.visible();
        lines
            .len()
            .checked_sub(1 + self.scroll_back)
            .and_then(|i| lines.get(i))
            .map(|l| l.to_string())
    }

    /// What to show when no line is: nothing logged yet, or nothing the filter keeps.
    pub fn empty_text(&self) -> String {
        if self.lines.is_empty() {
            "no log lines yet".to_string()
        } else {
            format!(
                "no line of {} matches '{}' (esc clears the filter)",
                self.lines.len(),
                self.filter
            )
        }
    }

    /// Stores newly read lines; returns whether anything changed. Keeps the view still when
    /// scrolled back.
    pub fn load(&mut self, lines: Vec<String>, total: u64) -> bool {
        if total == self.total {
            return false;
        }
        if self.scroll_back > 0 {
            let added = total.saturating_sub(self.total) as usize;
            self.scroll_back += added;
        }
        self.lines = lines;
        self.total = total;
        true
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        if let Action::LogsLoaded { lines, total } = action {
            state.dirty |= state.logs.load(lines, total);
        }
        Vec::new()
    }
}

pub(crate) use update::*;

/// The last `height` screen lines of `lines` wrapped to `width` (`w` on the Logs view): the
/// newest line stays at the bottom, whole.
fn wrap_tail(
    lines: &[&str],
    width: usize,
    height: usize,
    narrow: bool,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    for l in lines.iter().rev() {
        let style = line_style(l, theme);
        let parts = super::messages::wrap_text(trim_date(l, narrow), width);
        for part in parts.into_iter().rev() {
            out.push(Line::styled(part, style));
        }
        if out.len() >= height {
            break;
        }
    }
    out.truncate(height);
    out.reverse();
    out
}
