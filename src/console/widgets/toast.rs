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
