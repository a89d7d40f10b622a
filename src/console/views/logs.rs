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
        if lines.is_empty() {
            let text = if state.logs.lines.is_empty() {
                "no log lines yet".to_string()
            } else {
                format!("no log line matches /{}", state.logs.filter)
            };
            frame.render_widget(Paragraph::new(Line::styled(text, theme.dim)), inner);
            return;
        }
        let end = lines.len().saturating_sub(state.logs.scroll_back);
        let narrow = inner.width < 120;
        let shown = wrapped_tail(&lines[..end], inner, narrow, theme);
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
