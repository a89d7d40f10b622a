//! The Logs view: the in-app tail of the tracing log, newest at the bottom, following new
//! lines unless scrolled back.

use super::{Hint, View, hint};
use crate::console::app::AppState;
use crate::console::format::wrap;
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

/// The newest of `lines` that fit in `area`, each wrapped whole (continuations indented),
/// oldest at the top.
fn wrapped_tail(lines: &[&str], area: Rect, narrow: bool, theme: &Theme) -> Vec<Line<'static>> {
    let height = area.height as usize;
    let width = area.width as usize;
    let mut out: Vec<Line<'static>> = Vec::new();
    for l in lines.iter().rev() {
        if out.len() >= height {
            break;
        }
        let style = line_style(l, theme);
        let mut parts = wrap(trim_date(l, narrow), width);
        // Continuations sit two columns in, so each log line's start stands out.
        if parts.len() > 1 {
            let rest = parts.split_off(1).join(" ");
            parts.extend(
                wrap(&rest, width.saturating_sub(2).max(1))
                    .into_iter()
                    .map(|p| format!("  {p}")),
            );
        }
        for part in parts.into_iter().rev() {
            out.push(Line::styled(part, style));
        }
    }
    out.truncate(height);
    out.reverse();
    out
}

/// One log line whole, for the line detail (opened from the Logs view): wrapped inside a
/// bordered box, its date kept, in its level's style, scrolled down by `scroll` lines.
pub fn render_line_detail(frame: &mut Frame, area: Rect, line: &str, scroll: u16, theme: &Theme) {
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(Span::styled(" Log line ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let style = line_style(line, theme);
    let lines: Vec<Line> = wrap(line, inner.width as usize)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect();
    let max = (lines.len() as u16).saturating_sub(inner.height);
    frame.render_widget(Paragraph::new(lines).scroll((scroll.min(max), 0)), inner);
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
        let end = lines.len().saturating_sub(state.logs.scroll_back);
        if end == 0 {
            frame.render_widget(
                Paragraph::new(Line::styled(state.logs.empty_text(), theme.dim)),
                inner,
            );
            return;
        }
        let narrow = inner.width < 120;
        let shown = if state.logs.wrap {
            wrapped_tail(&lines[..end], inner, narrow, theme)
        } else {
            // `w` off: one screen line per log line, cut at the edge, as `tail` shows it.
            let start = end.saturating_sub(inner.height as usize);
            lines[start..end]
                .iter()
                .map(|l| Line::styled(trim_date(l, narrow).to_string(), line_style(l, theme)))
                .collect()
        };
        frame.render_widget(Paragraph::new(shown), inner);
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::theme::ColorDepth;
    use ratatui::buffer::Buffer;
    use ratatui::style::Style;

    #[test]
    fn a_log_line_shows_whole_in_its_detail() {
        let theme = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        let line = "2024-05-01T09:59:52.000Z ERROR dlq: document dead-lettered id=doc-999";
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(30, 6)).unwrap();
        terminal
            .draw(|f| render_line_detail(f, f.area(), line, 0, &theme))
            .unwrap();
        let mut buffer = terminal.backend().buffer().clone();
        assert_eq!(buffer[(1, 1)].fg, theme.danger.fg.unwrap());
        buffer.set_style(buffer.area, Style::reset());
        let mut expected = Buffer::with_lines([
            "┌ Log line ──────────────────┐",
            "│2024-05-01T09:59:52.000Z    │",
            "│ERROR dlq: document         │",
            "│dead-lettered id=doc-999    │",
            "│                            │",
            "└────────────────────────────┘",
        ]);
        expected.set_style(expected.area, Style::reset());
        assert_eq!(buffer, expected);
    }
}

/// The Logs view's state: the tail's lines, where the view is scrolled, the filter, and
/// whether long lines wrap.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsState {
    pub lines: Vec<String>,
    /// Lines appended since start (the tail's counter).
    pub total: u64,
    /// Lines scrolled back from the newest; 0 follows new lines.
    pub scroll_back: usize,
    pub filter: String,
    /// Long lines wrap (the default) instead of being cut at the edge (`w` toggles).
    pub wrap: bool,
}

impl Default for LogsState {
    fn default() -> Self {
        Self {
            lines: Vec::new(),
            total: 0,
            scroll_back: 0,
            filter: String::new(),
            wrap: true,
        }
    }
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
