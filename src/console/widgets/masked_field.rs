//! How a sensitive value shows: always the same `••••••` ([`MASK`], as the CLI prints it),
//! so not even its length shows; in the detail views ([`display`]) and in the editor's
//! inputs while hidden ([`render_masked`]). Empty values show a dash, or the input's
//! placeholder.

use crate::console::theme::Theme;
use crate::model::{ConfigField, is_empty_value, value_text};
use crate::secret::MASK;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The text of a field's value for display; never the value of a sensitive field.
pub fn display(field: &ConfigField) -> String {
    if is_empty_value(&field.value) {
        return "—".to_string();
    }
    if field.sensitive {
        return MASK.to_string();
    }
    value_text(&field.value)
}

/// Draws a hidden sensitive input: [`MASK`] when it holds anything (typing changes what it
/// holds, never what shows), else the placeholder; the cursor after it when focused.
pub fn render_masked(
    frame: &mut Frame,
    area: Rect,
    empty: bool,
    focused: bool,
    placeholder: Option<&str>,
    theme: &Theme,
) {
    let mut spans = Vec::new();
    match (empty, placeholder) {
        (false, _) => spans.push(Span::styled(MASK, theme.input)),
        (true, Some(p)) if !focused => spans.push(Span::styled(p.to_string(), theme.dim)),
        (true, _) => {}
    }
    if focused {
        spans.push(Span::styled(" ", theme.cursor));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.input), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::buffer::Buffer;
    use ratatui::style::{Modifier, Style};
    use serde_json::json;

    fn draw(empty: bool, focused: bool, placeholder: Option<&str>, theme: &Theme) -> Buffer {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(10, 1)).unwrap();
        terminal
            .draw(|f| render_masked(f, f.area(), empty, focused, placeholder, theme))
            .unwrap();
        terminal.backend().buffer().clone()
    }

    #[test]
    fn a_hidden_input_shows_the_fixed_mask_whatever_it_holds() {
        let theme =
            Theme::builtin("monochrome", crate::console::theme::ColorDepth::TrueColor).unwrap();
        let mut expected = Buffer::with_lines(["••••••    "]);
        expected.set_style(expected.area, theme.input);
        assert_eq!(draw(false, false, None, &theme), expected);
        // Focused: the cursor follows the mask.
        let mut expected = Buffer::with_lines(["••••••    "]);
        expected.set_style(expected.area, theme.input);
        expected[(6, 0)].set_style(Style::default().add_modifier(Modifier::REVERSED));
        assert_eq!(draw(false, true, None, &theme), expected);
        // Empty and not focused: the placeholder.
        let mut expected = Buffer::with_lines(["secret    "]);
        expected.set_style(expected.area, theme.input);
        expected.set_style(ratatui::layout::Rect::new(0, 0, 6, 1), theme.dim);
        assert_eq!(draw(true, false, Some("secret"), &theme), expected);
    }

    #[test]
    fn sensitive_values_are_bullets() {
        let f: ConfigField =
            serde_json::from_value(json!({"value": "hunter2", "sensitive": true})).unwrap();
        assert_eq!(display(&f), MASK);
        let f: ConfigField = serde_json::from_value(json!({"value": ["a", "b"]})).unwrap();
        assert_eq!(display(&f), "a,b");
        let f: ConfigField = serde_json::from_value(json!({"value": ""})).unwrap();
        assert_eq!(display(&f), "—");
    }
}
