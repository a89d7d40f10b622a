//! Toasts: short notices stacked at the bottom right of the body, inside its bottom border,
//! newest lowest.

use crate::console::app::{Toast, ToastLevel};
use crate::console::format::ellipsize;
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

pub fn render(frame: &mut Frame, body: Rect, toasts: &[Toast], theme: &Theme) {
    let width = (body.width / 2).max(30).min(body.width);
    // Keep the bottom border (and its position counter) visible.
    let mut y = body.bottom().saturating_sub(1);
    for toast in toasts.iter().rev() {
        if y <= body.y {
            break;
        }
        y -= 1;
        let (style, mark) = match toast.level {
            ToastLevel::Info => (theme.toast_info, "•"),
            ToastLevel::Warn => (theme.toast_warn, "!"),
            ToastLevel::Error => (theme.toast_error, "✖"),
        };
        let text = ellipsize(&format!(" {mark} {} ", toast.text), width as usize);
        let w = (unicode_width::UnicodeWidthStr::width(text.as_str()) as u16).min(width);
        let area = Rect {
            x: body.right().saturating_sub(w),
            y,
            width: w,
            height: 1,
        };
        frame.render_widget(Clear, area);
        frame.render_widget(Paragraph::new(Line::from(text)).style(style), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::theme::ColorDepth;
    use crate::model::Timestamp;
    use ratatui::buffer::Buffer;
    use ratatui::style::Style;

    fn toast(level: ToastLevel, text: &str) -> Toast {
        Toast {
            level,
            text: text.into(),
            until: Timestamp::parse("2024-05-01T10:00:00Z").unwrap(),
        }
    }

    #[test]
    fn toasts_stack_newest_lowest_and_long_ones_end_in_an_ellipsis() {
        let theme = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        let toasts = [
            toast(ToastLevel::Info, "saved"),
            toast(
                ToastLevel::Error,
                "cluster unreachable: connection refused (http://127.0.0.1:9200)",
            ),
        ];
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(40, 4)).unwrap();
        terminal
            .draw(|f| render(f, f.area(), &toasts, &theme))
            .unwrap();
        let mut buffer = terminal.backend().buffer().clone();
        let error_fg = buffer[(12, 2)].fg;
        let info_fg = buffer[(35, 1)].fg;
        buffer.set_style(buffer.area, Style::reset());
        let mut expected = Buffer::with_lines([
            "                                        ",
            "                                • saved ",
            "           ✖ cluster unreachable: conne…",
            "                                        ",
        ]);
        expected.set_style(expected.area, Style::reset());
        assert_eq!(buffer, expected);
        assert_eq!(Some(error_fg), theme.toast_error.fg);
        assert_eq!(Some(info_fg), theme.toast_info.fg);
    }
}
