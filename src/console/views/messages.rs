//! Screens that show long text in full: the `:messages` history (every toast and error,
//! wrapped, newest last) and one log line (Enter on the Logs view). Text is wrapped here by
//! display width, so scrolling counts the lines actually drawn.

use super::{Hint, hint};
use crate::console::app::{AppState, Message, ToastLevel};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

pub const MESSAGES_HINTS: &[Hint] = &[
    hint(Command::Down, "scroll"),
    hint(Command::Copy, "copy newest"),
    hint(Command::Back, "back"),
];

pub const LOG_LINE_HINTS: &[Hint] = &[
    hint(Command::Down, "scroll"),
    hint(Command::Copy, "copy line"),
    hint(Command::Back, "back"),
];

/// Splits `text` into lines of at most `width` display columns, at spaces when a word fits
/// and mid-word otherwise; existing line breaks are kept.
pub fn wrap_text(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for raw in text.split('\n') {
        let mut line = String::new();
        let mut used = 0;
        for word in raw.split(' ') {
            let w: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
            let sep = usize::from(used > 0);
            if used + sep + w <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                used += sep + w;
                continue;
            }
            if used > 0 {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if used + cw > width && used > 0 {
                    out.push(std::mem::take(&mut line));
                    used = 0;
                }
                line.push(c);
                used += cw;
            }
        }
        out.push(line);
    }
    out
}

fn level_style(level: ToastLevel, theme: &Theme) -> (Style, &'static str) {
    match level {
        ToastLevel::Info => (theme.info, "•"),
        ToastLevel::Warn => (theme.warn, "!"),
        ToastLevel::Error => (theme.danger, "✖"),
    }
}

/// `12:03:04`: the time of day of a message (the profile's clock is UTC).
fn clock(m: &Message) -> String {
    m.at.0.format("%H:%M:%S").to_string()
}

/// The `:messages` history.
pub fn render_messages(
    frame: &mut Frame,
    area: Rect,
    scroll: u16,
    state: &AppState,
    theme: &Theme,
) {
    let title = Line::from(vec![
        Span::styled(" Messages ", theme.title),
        Span::styled(format!("[{}] ", state.messages.len()), theme.dim),
    ]);
    let inner_width = area.width.saturating_sub(2) as usize;
    // `12:03:04 ✖ ` before the text; continuation lines are indented as far.
    let indent = 11;
    let mut lines = Vec::new();
    for m in &state.messages {
        let (style, mark) = level_style(m.level, theme);
        let text = if m.repeats > 1 {
            format!("{} (×{})", m.text, m.repeats)
        } else {
            m.text.clone()
        };
        for (i, part) in wrap_text(&text, inner_width.saturating_sub(indent))
            .into_iter()
            .enumerate()
        {
            let head = if i == 0 {
                vec![
                    Span::styled(format!("{} ", clock(m)), theme.dim),
                    Span::styled(format!("{mark} "), style),
                ]
            } else {
                vec![Span::raw(" ".repeat(indent))]
            };
            let mut spans = head;
            spans.push(Span::styled(part, style));
            lines.push(Line::from(spans));
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled("no messages yet", theme.dim));
    }
    super::detail::scrolled(frame, area, title, lines, scroll, theme);
}

/// One log line in full.
pub fn render_log_line(frame: &mut Frame, area: Rect, text: &str, scroll: u16, theme: &Theme) {
    let title = Line::styled(" Log line ", theme.title);
    let width = area.width.saturating_sub(2) as usize;
    let lines = wrap_text(text, width)
        .into_iter()
        .map(|l| Line::styled(l, theme.text))
        .collect();
    super::detail::scrolled(frame, area, title, lines, scroll, theme);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap_text("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap_text("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_text("a\nb", 10), ["a", "b"]);
        assert_eq!(wrap_text("", 10), [""]);
        let long = "failed to parse field [value] of type [long] in document with id 'dl-1'";
        let wrapped = wrap_text(long, 20);
        assert!(
            wrapped.iter().all(|l| l.chars().count() <= 20),
            "{wrapped:?}"
        );
        assert_eq!(wrapped.join(" "), long);
    }
}
