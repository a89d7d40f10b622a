//! The yes/no dialog; its wording comes from the action it confirms.

use super::centered;
use crate::console::app::ConfirmAction;
use crate::console::format::wrap;
use crate::console::keymap::{Command, KeyContext, Keymap};
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    action: &ConfirmAction,
    keymap: &Keymap,
    theme: &Theme,
) {
    let question = action.question();
    // Sized by display width, the question wrapped whole inside the border.
    let wanted = unicode_width::UnicodeWidthStr::width(question.as_str()) as u16 + 4;
    let width = wanted.clamp(30, 64).min(area.width);
    let lines = wrap(&question, width.saturating_sub(4) as usize);
    let dialog = centered(area, width, lines.len() as u16 + 4);
    frame.render_widget(Clear, dialog);
    let (title, border) = if action.is_destructive() {
        (" Confirm ", theme.danger)
    } else {
        (" Confirm ", theme.border_focus)
    };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .title(Span::styled(title, border))
        .border_style(border);
    let key = |c: Command| {
        keymap
            .key_for(KeyContext::Confirm, c)
            .map(|k| k.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let mut text: Vec<Line> = lines
        .into_iter()
        .map(|l| Line::styled(format!(" {l}"), theme.text))
        .collect();
    text.extend([
        Line::from(""),
        // "no" has the focus (drawn as the selected row is): only the yes key acts, Enter
        // does nothing, so a reflexive Enter never confirms.
        Line::from(vec![
            Span::styled(format!(" {} ", key(Command::Confirm)), theme.key),
            Span::styled("yes   ", theme.hint),
            Span::styled(format!(" {} no ", key(Command::Back)), theme.row_selected),
        ]),
    ]);
    frame.render_widget(Paragraph::new(text).block(block), dialog);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::theme::ColorDepth;
    use ratatui::buffer::Buffer;

    fn draw(action: &ConfirmAction, width: u16, height: u16, theme: &Theme) -> Buffer {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|f| render(f, f.area(), action, &Keymap::defaults(), theme))
            .unwrap();
        terminal.backend().buffer().clone()
    }

    fn plain(buffer: &Buffer) -> Buffer {
        let mut b = buffer.clone();
        b.set_style(b.area, ratatui::style::Style::reset());
        b
    }

    #[test]
    fn the_question_wraps_whole_inside_the_dialog() {
        let theme = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        let action = ConfirmAction::DeleteConnector {
            id: "seed-connector-3".into(),
            name: "Seed connector 3 (postgresql)".into(),
        };
        let buffer = draw(&action, 50, 9, &theme);
        let mut expected = Buffer::with_lines([
            "                                                  ",
            "╔ Confirm ═══════════════════════════════════════╗",
            "║ Delete connector 'Seed connector 3             ║",
            "║ (postgresql)' (seed-connector-3)? Its          ║",
            "║ documents stay in the index.                   ║",
            "║                                                ║",
            "║ y yes    n no                                  ║",
            "╚════════════════════════════════════════════════╝",
            "                                                  ",
        ]);
        expected.set_style(expected.area, ratatui::style::Style::reset());
        assert_eq!(plain(&buffer), expected);
        // A destructive question is framed in the danger colour.
        assert_eq!(buffer[(0, 1)].fg, theme.danger.fg.unwrap());
        assert_eq!(buffer[(2, 2)].fg, theme.text.fg.unwrap());
        // "no" has the focus: drawn in the selection's colours.
        assert_eq!(buffer[(10, 6)].bg, theme.row_selected.bg.unwrap());
        assert_eq!(buffer[(2, 6)].bg, buffer[(1, 6)].bg);
    }
}
