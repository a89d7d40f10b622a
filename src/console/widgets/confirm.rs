//! The yes/no dialog; its wording comes from the action it confirms.

use super::centered;
use crate::console::app::ConfirmAction;
use crate::console::keymap::{Command, KeyContext, Keymap};
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    action: &ConfirmAction,
    keymap: &Keymap,
    theme: &Theme,
) {
    let question = action.question();
    let width = (question.len() as u16 + 4).clamp(30, 64);
    let lines_needed = (question.len() as u16 / width.saturating_sub(4).max(1)) + 1;
    let dialog = centered(area, width, lines_needed + 4);
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
    let text = vec![
        Line::styled(question, theme.text),
        Line::from(""),
        Line::from(vec![
            Span::styled(format!(" {} ", key(Command::Confirm)), theme.key),
            Span::styled("yes   ", theme.hint),
            Span::styled(format!(" {} ", key(Command::Back)), theme.key),
            Span::styled("no", theme.hint),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
        dialog,
    );
}
