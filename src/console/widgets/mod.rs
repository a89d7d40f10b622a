//! Reusable drawing pieces: the windowed filterable table, the confirmation dialog, toasts,
//! masked values, the command line, text bars. They draw what they are given and keep no
//! state of their own.

pub mod bar;
pub mod command_line;
pub mod confirm;
pub mod masked_field;
pub mod table;
pub mod toast;

use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A rectangle of at most `width` × `height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
