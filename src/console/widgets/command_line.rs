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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::theme::ColorDepth;
    use ratatui::buffer::Buffer;
    use ratatui::style::{Modifier, Style};

    fn draw(line: &CommandLineState) -> Buffer {
        let theme = Theme::builtin("monochrome", ColorDepth::TrueColor).unwrap();
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(24, 3)).unwrap();
        terminal
            .draw(|f| {
                let footer = Rect::new(0, 2, 24, 1);
                render(f, footer, line, &theme)
            })
            .unwrap();
        terminal.backend().buffer().clone()
    }

    fn text_of(buffer: &Buffer) -> Buffer {
        let mut b = buffer.clone();
        b.set_style(b.area, Style::reset());
        b
    }

    #[test]
    fn the_input_shows_its_cursor_and_candidates_above() {
        let buffer = draw(&CommandLineState {
            input: "log".into(),
            candidates: vec!["logs".into(), "logout".into()],
            error: None,
        });
        let mut expected = Buffer::with_lines([
            "                        ",
            " logs  logout           ",
            ":log                    ",
        ]);
        expected.set_style(expected.area, Style::reset());
        assert_eq!(text_of(&buffer), expected);
        // The cursor is the reversed cell after the text.
        assert!(buffer[(4, 2)].modifier.contains(Modifier::REVERSED));
        assert!(!buffer[(3, 2)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn an_error_replaces_the_candidates() {
        let buffer = draw(&CommandLineState {
            input: "xyz".into(),
            candidates: vec!["logs".into()],
            error: Some("unknown command 'xyz'".into()),
        });
        let mut expected = Buffer::with_lines([
            "                        ",
            " unknown command 'xyz'  ",
            ":xyz                    ",
        ]);
        expected.set_style(expected.area, Style::reset());
        assert_eq!(text_of(&buffer), expected);
    }
}
