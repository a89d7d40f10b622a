//! A progress bar drawn with characters (`█` and `░`), so it reads in monochrome too, where
//! ratatui's `Gauge` (which colours its filled part) would show nothing.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// `[█████░░░░░]  45%` in `width` columns (the bar takes what the label leaves).
pub fn bar(ratio: Option<f64>, width: u16, filled: Style, empty: Style) -> Line<'static> {
    let label = match ratio {
        Some(r) => format!(" {:>3.0}%", (r.clamp(0.0, 1.0) * 100.0).floor()),
        None => "    ?".to_string(),
    };
    let inner = (width as usize).saturating_sub(label.len() + 2);
    let full = ratio
        .map_or(0, |r| ((r.clamp(0.0, 1.0) * inner as f64).floor()) as usize)
        .min(inner);
    Line::from(vec![
        Span::raw("["),
        Span::styled("█".repeat(full), filled),
        Span::styled("░".repeat(inner - full), empty),
        Span::raw("]"),
        Span::raw(label),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_proportion() {
        let line = bar(Some(0.5), 16, Style::default(), Style::default());
        assert_eq!(line.to_string(), "[████░░░░░]  50%");
        assert_eq!(
            bar(None, 10, Style::default(), Style::default()).to_string(),
            "[░░░]    ?"
        );
        assert_eq!(
            bar(Some(2.0), 10, Style::default(), Style::default()).to_string(),
            "[███] 100%"
        );
    }
}
