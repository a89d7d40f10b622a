//! The configuration editor screen, and the inputs it shares with the small forms: labels
//! with required markers, tooltips, the right input per display type, masked sensitive
//! values, validation messages under each field, the server's answer to a failed save, and
//! for `external` connectors where loading the program's spec stands.

use super::{Hint, hint};
use crate::console::editor::{ConfigEditor, FieldInput, SpecStatus};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::console::widgets::masked_field;
use crate::model::{ConfigField, value_text};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub struct ConfigEditorView;

pub const HINTS: &[Hint] = &[
    hint(Command::Save, "save"),
    hint(Command::NextField, "next field"),
    hint(Command::PrevField, "previous"),
    hint(Command::Reveal, "reveal"),
    hint(Command::Back, "close"),
];

/// The hints of an `external` connector's editor: loading the spec comes second.
pub const EXTERNAL_HINTS: &[Hint] = &[
    hint(Command::Save, "save"),
    hint(Command::LoadSpec, "load spec"),
    hint(Command::NextField, "next field"),
    hint(Command::PrevField, "previous"),
    hint(Command::Reveal, "reveal"),
    hint(Command::Back, "close"),
];

/// The footer hints for an editor.
pub fn hints(editor: &ConfigEditor) -> &'static [Hint] {
    if editor.is_external() {
        EXTERNAL_HINTS
    } else {
        HINTS
    }
}

/// Lines an input takes.
pub fn input_height(input: &FieldInput) -> u16 {
    match input {
        FieldInput::Lines(_) => 4,
        _ => 1,
    }
}

/// Draws one input in `area` (one line, or several for a textarea).
pub fn render_input(
    frame: &mut Frame,
    area: Rect,
    input: &FieldInput,
    focused: bool,
    placeholder: Option<&str>,
    theme: &Theme,
) {
    match input {
        FieldInput::Line(t) | FieldInput::Lines(t) if t.mask_char().is_some() => {
            let empty = t.lines().iter().all(|l| l.is_empty());
            masked_field::render_masked(frame, area, empty, focused, placeholder, theme);
        }
        FieldInput::Line(t) | FieldInput::Lines(t) => {
            // The stored input keeps its text; styles are the theme's, set on a copy.
            let mut t = t.clone();
            t.set_style(theme.input);
            t.set_cursor_line_style(Style::default());
            t.set_cursor_style(if focused { theme.cursor } else { theme.input });
            t.set_selection_style(theme.cursor);
            if let Some(p) = placeholder {
                t.set_placeholder_text(p);
            }
            t.set_placeholder_style(theme.dim);
            frame.render_widget(&t, area);
        }
        FieldInput::Toggle(on) => {
            let text = if *on { "[x] on " } else { "[ ] off" };
            let style = if focused { theme.cursor } else { theme.input };
            frame.render_widget(Paragraph::new(Span::styled(text, style)), area);
        }
        FieldInput::Choice { options, index } => {
            let label = index
                .and_then(|i| options.get(i))
                .map(|o| {
                    if o.label.is_empty() {
                        value_text(&o.value)
                    } else {
                        o.label.clone()
                    }
                })
                .unwrap_or_else(|| "(none)".into());
            let position = index
                .map(|i| format!("  {}/{}", i + 1, options.len()))
                .unwrap_or_default();
            let style = if focused { theme.cursor } else { theme.input };
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(format!("◀ {label} ▶"), style),
                    Span::styled(position, theme.dim),
                ])),
                area,
            );
        }
    }
}

fn label_line(
    key: &str,
    field: &ConfigField,
    input: &FieldInput,
    focused: bool,
    changed: bool,
    new: bool,
    theme: &Theme,
) -> Line<'static> {
    let mut spans = vec![
        Span::styled(if focused { "▶ " } else { "  " }, theme.key),
        Span::styled(field.display_label(key), theme.label),
    ];
    // A toggle always has a value: "required" would say nothing.
    if field.required && !matches!(input, FieldInput::Toggle(_)) {
        spans.push(Span::styled(" *", theme.danger));
    }
    if field.sensitive {
        spans.push(Span::styled(" (sensitive)", theme.dim));
    }
    if new {
        spans.push(Span::styled(" (new)", theme.accent));
    } else if changed {
        spans.push(Span::styled(" (changed)", theme.accent));
    }
    Line::from(spans)
}

/// Lines a message above the fields takes: all it needs, wrapped, up to a third of the
/// editor (the fields stay in view), and at least two.
fn message_height(text: &str, area: Rect) -> u16 {
    let needed = crate::console::format::wrap(text, area.width as usize).len() as u16;
    needed.min((area.height / 3).max(2)).min(area.height)
}

fn field_height(editor: &ConfigEditor, i: usize) -> u16 {
    let f = &editor.fields[i];
    let tooltip = u16::from(f.field.tooltip.as_deref().is_some_and(|t| !t.is_empty()));
    let issues = editor.issues.get(&f.key).map_or(0, |v| v.len() as u16);
    1 + input_height(&f.input) + tooltip + issues
}

impl ConfigEditorView {
    pub fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        editor: &ConfigEditor,
        read_only: bool,
        theme: &Theme,
    ) {
        let changes = editor.changes();
        let mut title = vec![
            Span::styled(
                format!(" Configuration of '{}' ", editor.connector_name),
                theme.title,
            ),
            Span::styled(format!("({}) ", editor.connector_id), theme.dim),
        ];
        if !changes.is_empty() {
            title.push(Span::styled(
                format!("{} unsaved change(s) ", changes.len()),
                theme.warn,
            ));
        }
        if editor.schema_changed {
            title.push(Span::styled("fields from the spec unsaved ", theme.warn));
        }
        if editor.spec_status == Some(SpecStatus::Running) {
            title.push(Span::styled("running spec… ", theme.info));
        }
        if editor.saving {
            title.push(Span::styled("saving… ", theme.info));
        }
        if read_only {
            title.push(Span::styled(" READ-ONLY ", theme.badge));
        }
        let block = Block::bordered()
            .border_style(theme.border_focus)
            .title(Line::from(title));
        let mut inner = block.inner(area);
        frame.render_widget(block, area);
        if let Some(error) = &editor.server_error {
            let text = format!("not saved: {error}");
            let top = Rect {
                height: message_height(&text, inner),
                ..inner
            };
            frame.render_widget(super::detail::wrapped(text, theme), top);
            inner.y += top.height;
            inner.height -= top.height;
        }
        let spec_line = match &editor.spec_status {
            Some(SpecStatus::Loaded(text)) => Some((text.clone(), theme.info)),
            Some(SpecStatus::Failed(error)) => {
                Some((format!("spec not loaded: {error}"), theme.danger))
            }
            _ => None,
        };
        if let Some((text, style)) = spec_line {
            let top = Rect {
                height: message_height(&text, inner),
                ..inner
            };
            frame.render_widget(
                Paragraph::new(Line::styled(text, style))
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                top,
            );
            inner.y += top.height;
            inner.height -= top.height;
        }
        let shown = editor.shown();
        let Some(focus_pos) = shown.iter().position(|&i| i == editor.focus) else {
            frame.render_widget(
                Paragraph::new(Line::styled("no field applies", theme.dim)),
                inner,
            );
            return;
        };
        // The first field drawn: as far up as still keeps the focused field in view.
        let mut first = focus_pos;
        let mut used = field_height(editor, shown[focus_pos]);
        while first > 0 && used + field_height(editor, shown[first - 1]) <= inner.height {
            first -= 1;
            used += field_height(editor, shown[first]);
        }
        let mut y = inner.y;
        for &i in &shown[first..] {
            let h = field_height(editor, i);
            if y + h > inner.bottom() {
                break;
            }
            self.render_field(
                frame,
                Rect {
                    x: inner.x,
                    y,
                    width: inner.width,
                    height: h,
                },
                editor,
                i,
                changes.contains_key(&editor.fields[i].key),
                theme,
            );
            y += h;
        }
    }

    fn render_field(
        &self,
        frame: &mut Frame,
        area: Rect,
        editor: &ConfigEditor,
        i: usize,
        changed: bool,
        theme: &Theme,
    ) {
        let f = &editor.fields[i];
        let focused = i == editor.focus;
        let mut y = area.y;
        frame.render_widget(
            Paragraph::new(label_line(
                &f.key,
                &f.field,
                &f.input,
                focused,
                changed,
                editor.is_new(&f.key),
                theme,
            )),
            Rect {
                y,
                height: 1,
                ..area
            },
        );
        y += 1;
        let ih = input_height(&f.input);
        let input_area = Rect {
            x: area.x + 4,
            y,
            width: area.width.saturating_sub(6).min(72),
            height: ih,
        };
        let default = (!f.field.default_value.is_null() && !f.field.sensitive)
            .then(|| format!("default: {}", value_text(&f.field.default_value)));
        let placeholder = f.field.placeholder.clone().or(default);
        render_input(
            frame,
            input_area,
            &f.input,
            focused,
            placeholder.as_deref(),
            theme,
        );
        y += ih;
        if let Some(tip) = f.field.tooltip.as_deref().filter(|t| !t.is_empty()) {
            frame.render_widget(
                Paragraph::new(Line::styled(format!("    {tip}"), theme.dim)),
                Rect {
                    y,
                    height: 1,
                    ..area
                },
            );
            y += 1;
        }
        for issue in editor.issues.get(&f.key).into_iter().flatten() {
            frame.render_widget(
                Paragraph::new(Line::styled(format!("    ✖ {issue}"), theme.invalid)),
                Rect {
                    y,
                    height: 1,
                    ..area
                },
            );
            y += 1;
        }
    }
}
