//! The filterable, windowed table: draws only the rows that fit (it asks the cursor for the
//! window and formats those rows alone, so 100,000 rows cost what 20 do), drops the least
//! important columns when the terminal is narrow, and shows the filter, the position and
//! whether the data is stale in its border.

use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

/// One column: its title, its width, and how much it matters (0 first) when space is short.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    pub width: u16,
    /// Takes the space left over.
    pub grow: bool,
    pub priority: u8,
}

impl Column {
    pub const fn new(title: &'static str, width: u16, priority: u8) -> Self {
        Self {
            title,
            width,
            grow: false,
            priority,
        }
    }

    pub const fn grow(title: &'static str, width: u16, priority: u8) -> Self {
        Self {
            title,
            width,
            grow: true,
            priority,
        }
    }
}

/// The indexes of the columns that fit in `width`, in their original order.
pub fn fitting(columns: &[Column], width: u16) -> Vec<usize> {
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| (columns[i].priority, i));
    let mut used = 0u16;
    let mut keep = Vec::new();
    for i in order {
        let need = columns[i].width + u16::from(!keep.is_empty());
        if used + need > width {
            continue;
        }
        used += need;
        keep.push(i);
    }
    keep.sort_unstable();
    keep
}

/// What a table shows around its rows.
pub struct TableSpec<'a> {
    pub title: &'a str,
    pub columns: &'a [Column],
    /// Shown right of the title (counts, filters).
    pub badges: Vec<Span<'a>>,
    pub stale: Option<String>,
    pub empty: &'a str,
}

/// Draws `data` in `area`. `cells` formats one row into one cell per column (only called
/// for visible rows); `row_style` styles a row (selection is added on top).
pub fn render<T: TableRow>(
    frame: &mut Frame,
    area: Rect,
    data: &TableData<T>,
    cells: impl Fn(&T) -> Vec<Cell<'static>>,
    row_style: impl Fn(&T) -> Style,
    framing: TableSpec<'_>,
    theme: &Theme,
) {
    let columns = framing.columns;
    let block = frame_block(data, &framing, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if data.is_empty() {
        let text = if data.all().is_empty() {
            framing.empty.to_string()
        } else {
            "no row matches the filter".to_string()
        };
        let text = match &data.error {
            Some(e) if data.all().is_empty() => format!("could not load: {e}"),
            _ => text,
        };
        frame.render_widget(Paragraph::new(Line::styled(text, theme.dim)), inner);
        return;
    }
    let keep = fitting(columns, inner.width);
    let height = inner.height.saturating_sub(1) as usize;
    let (start, end) = data.cursor.window(data.len(), height);
    let selected = data.cursor.selected;
    let rows: Vec<Row> = (start..end)
        .filter_map(|i| data.get(i).map(|r| (i, r)))
        .map(|(i, r)| {
            let mut all = cells(r);
            let picked: Vec<Cell> = keep
                .iter()
                .map(|&c| {
                    if c < all.len() {
                        std::mem::take(&mut all[c])
                    } else {
                        Cell::from("")
                    }
                })
                .collect();
            let style = if i == selected {
                theme.row_selected
            } else {
                row_style(r)
            };
            Row::new(picked).style(style)
        })
        .collect();
    let header =
        Row::new(keep.iter().map(|&c| Cell::from(columns[c].title))).style(theme.table_header);
    let widths = widths(columns, &keep, inner.width);
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .flex(Flex::SpaceBetween)
            .style(theme.text),
        inner,
    );
}

/// Column widths for `width` columns of space: growing columns take up to half the spare
/// room (at most 40 each); what is left spreads the columns apart.
pub fn widths(columns: &[Column], keep: &[usize], width: u16) -> Vec<Constraint> {
    let used: u16 =
        keep.iter().map(|&c| columns[c].width).sum::<u16>() + keep.len().saturating_sub(1) as u16;
    let growing = keep.iter().filter(|&&c| columns[c].grow).count() as u16;
    let extra = (width.saturating_sub(used) / 2)
        .checked_div(growing)
        .unwrap_or(0)
        .min(40);
    keep.iter()
        .map(|&c| Constraint::Length(columns[c].width + if columns[c].grow { extra } else { 0 }))
        .collect()
}

fn frame_block<'a, T: TableRow>(
    data: &TableData<T>,
    framing: &TableSpec<'a>,
    theme: &Theme,
) -> Block<'a> {
    let mut title = vec![Span::styled(format!(" {} ", framing.title), theme.title)];
    let count = if data.filter().is_empty() {
        format!("[{}] ", data.all().len())
    } else {
        format!("[{}/{}] ", data.len(), data.all().len())
    };
    title.push(Span::styled(count, theme.dim));
    if !data.filter().is_empty() {
        title.push(Span::styled(format!("/{} ", data.filter()), theme.accent));
    }
    title.extend(framing.badges.iter().cloned());
    let mut block = Block::bordered()
        .border_style(theme.border)
        .title(Line::from(title));
    if let Some(stale) = &framing.stale {
        block = block.title_top(Line::styled(format!(" {stale} "), theme.stale).right_aligned());
    }
    if !data.is_empty() {
        let pos = format!(" {}/{} ", data.cursor.selected + 1, data.len());
        block = block.title_bottom(Line::styled(pos, theme.dim).right_aligned());
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_tables_drop_unimportant_columns() {
        let cols = [
            Column::new("A", 10, 0),
            Column::new("B", 10, 2),
            Column::new("C", 10, 1),
        ];
        assert_eq!(fitting(&cols, 40), [0, 1, 2]);
        assert_eq!(fitting(&cols, 25), [0, 2]);
        assert_eq!(fitting(&cols, 10), [0]);
    }
}
