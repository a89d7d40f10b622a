//! The `:` command line and the `/` filter input, drawn in the footer row, with completion
//! candidates (or an error) on the row above.

use crate::console::app::CommandLineState;
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// Draws a one-line input: `prefix` then `text` and a cursor block.
pub fn render_input(frame: &mut Frame, area: Rect, prefix: &str, text: &str, theme: &Theme) {
    let line = Line::from(vec![
        Span::styled(prefix.to_string(), theme.key),
        Span::styled(text.to_string(), theme.input),
        Span::styled(" ", theme.cursor),
    ]);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(line).style(theme.input), area);
}

pub fn render(frame: &mut Frame, footer: Rect, line: &CommandLineState, theme: &Theme) {
    render_input(frame, footer, ":", &line.input, theme);
    if footer.y == 0 {
        return;
    }
    let above = Rect {
        y: footer.y - 1,
        height: 1,
        ..footer
    };
    let content = match (&line.error, line.candidates.is_empty()) {
        (Some(e), _) => Line::styled(format!(" {e}"), theme.invalid),
        (None, false) => Line::styled(format!(" {}", line.candidates.join("  ")), theme.dim),
        (None, true) => return,
    };
    frame.render_widget(Clear, above);
    frame.render_widget(Paragraph::new(content).style(theme.input), above);
}
