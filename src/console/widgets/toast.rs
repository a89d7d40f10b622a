//! Toasts: short notices on their own lines above the footer (never over the table rows or
//! a border), newest lowest, one line each; a cut one says where its full text is
//! (`:messages`, key `m`).

use crate::console::app::{Toast, ToastLevel};
use crate::console::format::ellipsize;
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

/// Draws the newest `area.height` toasts, one a line, the newest lowest.
pub fn render(frame: &mut Frame, area: Rect, toasts: &[Toast], theme: &Theme) {
    let skip = toasts.len().saturating_sub(area.height as usize);
    for (i, toast) in toasts.iter().skip(skip).enumerate() {
        let (style, mark) = match toast.level {
            ToastLevel::Info => (theme.toast_info, "•"),
            ToastLevel::Warn => (theme.toast_warn, "!"),
            ToastLevel::Error => (theme.toast_error, "✖"),
        };
        let width = area.width as usize;
        let full = format!(" {mark} {} ", toast.text);
        let text = if unicode_width::UnicodeWidthStr::width(full.as_str()) > width {
            let more = " (m: full text) ";
            let cut = ellipsize(&full, width.saturating_sub(more.len()));
            format!("{cut}{more}")
        } else {
            full
        };
        let line = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        frame.render_widget(Clear, line);
        frame.render_widget(Paragraph::new(Line::from(text)).style(style), line);
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
    fn toasts_take_their_own_lines_newest_lowest_and_a_cut_one_points_to_messages() {
        let theme = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        let toasts = [
            toast(ToastLevel::Warn, "oldest, not shown: two lines only"),
            toast(ToastLevel::Info, "saved"),
            toast(
                ToastLevel::Error,
                "cluster unreachable: connection refused (http://127.0.0.1:9200)",
            ),
        ];
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(40, 2)).unwrap();
        terminal
            .draw(|f| render(f, f.area(), &toasts, &theme))
            .unwrap();
        let mut buffer = terminal.backend().buffer().clone();
        let info_fg = buffer[(1, 0)].fg;
        let error_fg = buffer[(1, 1)].fg;
        buffer.set_style(buffer.area, Style::reset());
        let mut expected = Buffer::with_lines([
            " • saved                                ",
            " ✖ cluster unreachable:… (m: full text) ",
        ]);
        expected.set_style(expected.area, Style::reset());
        assert_eq!(buffer, expected);
        assert_eq!(Some(error_fg), theme.toast_error.fg);
        assert_eq!(Some(info_fg), theme.toast_info.fg);
    }
}
