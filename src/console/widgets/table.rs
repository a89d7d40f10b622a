//! The filterable, windowed table: draws only the rows that fit (it asks the cursor for the
//! window and formats those rows alone, so 100,000 rows cost what 20 do), sizes the columns
//! by priority from what the visible rows hold, cuts every cell to its column with one
//! helper ([`format::ellipsize`], display width, ending in `…`), drops the least important
//! columns when the terminal is narrow, and shows the filter, the position and whether the
//! data is stale in its border. The selected row is drawn in the theme's selection colours
//! alone, so no status colour can vanish into the highlight.

use crate::console::format;
use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

/// One cell as a view gives it: the whole text and its style. The table cuts it.
pub type CellText = Span<'static>;

/// One column: its title, its width range, and how much it matters (0 first) when space is
/// short.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    /// The narrowest it is drawn; narrower than its content, cells end in `…`.
    pub width: u16,
    /// The widest it grows to show its content.
    pub max: u16,
    /// Text meant to be read (names, reasons): drawn at `width` first, and grown with the
    /// room left once every column that fits is in. Other columns (ids, statuses) take
    /// their content's width up front, so they never read ambiguously cut.
    pub grow: bool,
    /// What a growing column takes (when its content needs it) before less important
    /// columns come in; the rest of its growth waits until they are in.
    pub comfort: u16,
    pub priority: u8,
}

impl Column {
    pub const fn new(title: &'static str, width: u16, priority: u8) -> Self {
        Self {
            title,
            width,
            max: 40,
            grow: false,
            comfort: width,
            priority,
        }
    }

    pub const fn grow(title: &'static str, width: u16, priority: u8) -> Self {
        Self {
            title,
            width,
            max: 120,
            grow: true,
            comfort: width,
            priority,
        }
    }

    /// The same column, growing to at most `max` columns.
    pub const fn max(mut self, max: u16) -> Self {
        self.max = max;
        self
    }

    /// The same growing column, taking up to `comfort` columns in the first pass.
    pub const fn comfort(mut self, comfort: u16) -> Self {
        self.comfort = comfort;
        self
    }
}

fn text_width(text: &str) -> u16 {
    unicode_width::UnicodeWidthStr::width(text).min(u16::MAX as usize) as u16
}

/// The indexes of the columns that fit in `width` at their narrowest, in their original
/// order.
pub fn fitting(columns: &[Column], width: u16) -> Vec<usize> {
    layout(columns, &[], width)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// The columns drawn and their widths, in their original order, for `rows` (one cell text
/// per column) in `width` columns of space:
/// 1. by priority, each column takes its content's width (within its range; a growing
///    column at most its comfort width), or its narrowest if only that fits, or is left
///    out;
/// 2. the room left widens the columns that had to take their narrowest, by priority;
/// 3. what is still left grows the growing columns, evenly, up to their content.
///
/// Whatever remains spreads the columns apart.
pub fn layout(columns: &[Column], rows: &[Vec<CellText>], width: u16) -> Vec<(usize, u16)> {
    let want: Vec<u16> = columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let content = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|s| text_width(&s.content))
                .max()
                .unwrap_or(0)
                .max(text_width(col.title));
            content.clamp(col.width, col.max.max(col.width))
        })
        .collect();
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| (columns[i].priority, i));
    let mut used = 0u16;
    let mut kept: Vec<(usize, u16)> = Vec::new();
    for &i in &order {
        let gap = u16::from(!kept.is_empty());
        let first = if columns[i].grow {
            want[i].min(columns[i].comfort.max(columns[i].width))
        } else {
            want[i]
        };
        let take = if used + gap + first <= width {
            first
        } else if used + gap + columns[i].width <= width {
            columns[i].width
        } else {
            continue;
        };
        used += gap + take;
        kept.push((i, take));
    }
    let mut spare = width.saturating_sub(used);
    for (i, w) in kept.iter_mut().filter(|(i, _)| !columns[*i].grow) {
        let add = want[*i].saturating_sub(*w).min(spare);
        *w += add;
        spare -= add;
    }
    // Growing columns share what is left, a column at a time so none starves.
    while spare > 0 {
        let mut grew = false;
        for (i, w) in kept.iter_mut().filter(|(i, _)| columns[*i].grow) {
            if spare > 0 && *w < want[*i] {
                *w += 1;
                spare -= 1;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    kept.sort_unstable_by_key(|(i, _)| *i);
    kept
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

/// Draws `data` in `area`. `cells` gives one row's cell texts, one per column (only called
/// for visible rows); `row_style` styles a row that is not selected.
pub fn render<T: TableRow>(
    frame: &mut Frame,
    area: Rect,
    data: &TableData<T>,
    cells: impl Fn(&T) -> Vec<CellText>,
    row_style: impl Fn(&T) -> Style,
    framing: TableSpec<'_>,
    theme: &Theme,
) {
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
        frame.render_widget(
            Paragraph::new(Line::styled(
                format::ellipsize(&text, inner.width as usize),
                theme.dim,
            )),
            inner,
        );
        return;
    }
    let height = inner.height.saturating_sub(1) as usize;
    let (start, end) = data.cursor.window(data.len(), height);
    let window: Vec<(Vec<CellText>, Style)> = (start..end)
        .filter_map(|i| data.get(i))
        .map(|r| (cells(r), row_style(r)))
        .collect();
    let selected = data.cursor.selected.checked_sub(start);
    render_rows(frame, inner, framing.columns, window, selected, theme);
}

/// Draws a header and `rows` (cell texts and the row's style) in `area`, sized by
/// [`layout`], every cell cut to its column, and row `selected` (counted in `rows`) in the
/// selection colours.
pub fn render_rows(
    frame: &mut Frame,
    area: Rect,
    columns: &[Column],
    rows: Vec<(Vec<CellText>, Style)>,
    selected: Option<usize>,
    theme: &Theme,
) {
    let texts: Vec<Vec<CellText>> = rows.iter().map(|(r, _)| r.clone()).collect();
    let kept = layout(columns, &texts, area.width);
    let count = rows.len();
    let body: Vec<Row> = rows
        .into_iter()
        .map(|(mut cells, style)| {
            let picked: Vec<Cell> = kept
                .iter()
                .map(|&(c, w)| {
                    let span = cells.get_mut(c).map(std::mem::take).unwrap_or_default();
                    let text = format::ellipsize(&span.content, w as usize);
                    Cell::from(Span::styled(text, span.style))
                })
                .collect();
            Row::new(picked).style(style)
        })
        .collect();
    let header = Row::new(
        kept.iter()
            .map(|&(c, w)| Cell::from(format::ellipsize(columns[c].title, w as usize))),
    )
    .style(theme.table_header);
    let widths: Vec<Constraint> = kept.iter().map(|&(_, w)| Constraint::Length(w)).collect();
    frame.render_widget(
        Table::new(body, widths)
            .header(header)
            .column_spacing(1)
            .flex(Flex::SpaceBetween)
            .style(theme.text),
        area,
    );
    if let Some(sel) = selected.filter(|&s| s < count) {
        let row = Rect {
            y: area.y + 1 + sel as u16,
            height: 1,
            ..area
        };
        highlight(frame.buffer_mut(), row, theme);
    }
}

/// Paints `row` in the selection colours over whatever its cells set: a status drawn in
/// the highlight's own colour would otherwise vanish (`in_progress` on a selected row).
/// Emphasis (bold, underline, dim) stays, so statuses still differ without colour.
pub fn highlight(buf: &mut Buffer, row: Rect, theme: &Theme) {
    // A selection that sets one colour only (or none, as in monochrome, which reverses):
    // the other is the terminal's own, never a cell's, so the pair stays the designed one.
    let mut style = theme.row_selected;
    style.fg = Some(style.fg.unwrap_or(Color::Reset));
    style.bg = Some(style.bg.unwrap_or(Color::Reset));
    buf.set_style(row, style);
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

    fn row(cells: &[&str]) -> Vec<CellText> {
        cells.iter().map(|c| Span::raw(c.to_string())).collect()
    }

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

    #[test]
    fn ids_take_their_width_before_names_grow() {
        let cols = [
            Column::grow("NAME", 8, 0),
            Column::new("ID", 8, 0),
            Column::new("STATUS", 6, 1),
        ];
        let rows = [
            row(&[
                "Seed connector 3 (postgresql)",
                "seed-connector-3",
                "configured",
            ]),
            row(&["Seed connector 4 (mysql)", "seed-connector-4", "error"]),
        ];
        // Narrow: the id whole, the status whole, the name at its narrowest.
        assert_eq!(layout(&cols, &rows, 37), [(0, 9), (1, 16), (2, 10)]);
        assert_eq!(layout(&cols, &rows, 36), [(0, 8), (1, 16), (2, 10)]);
        // Wide: the name grows to its content, and no further.
        assert_eq!(layout(&cols, &rows, 120), [(0, 29), (1, 16), (2, 10)]);
        // Too narrow for the id's content: its narrowest.
        assert_eq!(layout(&cols, &rows, 17), [(0, 8), (1, 8)]);
    }

    #[test]
    fn a_name_takes_its_comfort_before_less_important_columns() {
        let cols = [
            Column::grow("NAME", 8, 0).comfort(12),
            Column::new("ID", 8, 0),
            Column::new("SERVICE", 8, 3),
        ];
        let rows = [row(&[
            "Seed connector 3 (postgresql)",
            "seed-connector-3",
            "postgresql",
        ])];
        // 12 + 16 leaves no room for the service at its narrowest.
        assert_eq!(layout(&cols, &rows, 36), [(0, 19), (1, 16)]);
        assert_eq!(layout(&cols, &rows, 38), [(0, 12), (1, 16), (2, 8)]);
    }

    #[test]
    fn growing_columns_share_the_room() {
        let cols = [Column::grow("A", 4, 0), Column::grow("B", 4, 0)];
        let rows = [row(&["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"])];
        assert_eq!(layout(&cols, &rows, 21), [(0, 10), (1, 10)]);
    }
}
