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

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::editor::{ConfigEditor, SpecStatus};
    use crate::console::effect::Effect;
    use crate::console::keymap::Command;
    use crate::console::keymap::{KeyChord, KeyContext};
    use crate::model::Configuration;
    use crossterm::event::{KeyCode, KeyEvent};

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::EditorLoaded { id, result } => match result {
                Ok(connector) => {
                    if connector.configuration.is_empty() {
                        toast(
                            state,
                            ToastLevel::Info,
                            format!("connector '{id}' has no configuration fields yet"),
                        );
                        return Vec::new();
                    }
                    state
                        .screens
                        .push(Screen::Editor(Box::new(ConfigEditor::new(&connector))));
                    state.dirty = true;
                }
                Err(e) => toast(
                    state,
                    ToastLevel::Error,
                    format!("cannot open connector '{id}': {e}"),
                ),
            },
            Action::ConfigSaved {
                connector_id,
                result,
            } => {
                let editor_open = state
                    .editor()
                    .is_some_and(|e| e.connector_id == connector_id);
                match result {
                    Ok(n) => {
                        if editor_open && let Some(e) = state.editor_mut() {
                            e.mark_saved();
                        }
                        toast(
                            state,
                            ToastLevel::Info,
                            format!("saved {n} value(s) of '{connector_id}'"),
                        );
                    }
                    Err(error) => {
                        if editor_open && let Some(e) = state.editor_mut() {
                            e.saving = false;
                            e.server_error = Some(error.clone());
                        }
                        toast(state, ToastLevel::Error, format!("not saved: {error}"));
                    }
                }
            }
            Action::SpecLoaded {
                connector_id,
                result,
            } => on_spec_loaded(state, &connector_id, result),
            _ => {}
        }
        Vec::new()
    }

    pub(crate) fn editor_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
        let chord = KeyChord::from_event(&key);
        let Some(editor) = state.editor() else {
            return Vec::new();
        };
        let mut command = state.keymap.lookup_in(KeyContext::Editor, chord);
        if editor.focus_is_multiline() && matches!(key.code, KeyCode::Up | KeyCode::Down) {
            command = None;
        }
        if command.is_none() && chord.is_chord() {
            command = state
                .keymap
                .lookup_in(KeyContext::Global, chord)
                .filter(|c| matches!(c, Command::Quit | Command::Help));
        }
        state.dirty = true;
        match command {
            Some(Command::Back) => {
                if state.editor().is_some_and(ConfigEditor::is_dirty) {
                    state.modal = Some(Modal::Confirm(ConfirmAction::DiscardEdits { quit: false }));
                } else {
                    state.screens.pop();
                }
                Vec::new()
            }
            Some(Command::Quit) => request_quit(state),
            Some(Command::Help) => {
                state.modal = Some(Modal::Help { scroll: 0 });
                Vec::new()
            }
            Some(Command::NextField) => {
                if let Some(e) = state.editor_mut() {
                    e.move_focus(1);
                }
                Vec::new()
            }
            Some(Command::PrevField) => {
                if let Some(e) = state.editor_mut() {
                    e.move_focus(-1);
                }
                Vec::new()
            }
            Some(Command::Reveal) => {
                if let Some(e) = state.editor_mut()
                    && !e.toggle_reveal()
                {
                    toast(
                        state,
                        ToastLevel::Info,
                        "only sensitive text fields can be revealed",
                    );
                }
                Vec::new()
            }
            Some(Command::Save) => save_editor(state),
            Some(Command::LoadSpec) => load_spec(state),
            _ => {
                // Enter in a one-line field moves on, like Tab.
                if key.code == KeyCode::Enter
                    && let Some(e) = state.editor_mut()
                    && !e.focus_is_multiline()
                    && !matches!(
                        e.fields.get(e.focus).map(|f| &f.input),
                        Some(crate::console::editor::FieldInput::Toggle(_))
                    )
                {
                    e.move_focus(1);
                    return Vec::new();
                }
                if state.profile.read_only {
                    toast(
                        state,
                        ToastLevel::Warn,
                        format!(
                            "profile '{}' is read-only: the configuration cannot be changed",
                            state.profile.name
                        ),
                    );
                    return Vec::new();
                }
                if let Some(e) = state.editor_mut() {
                    e.input(key);
                }
                Vec::new()
            }
        }
    }

    pub(crate) fn save_editor(state: &mut AppState) -> Vec<Effect> {
        if refuse_if_read_only(state) {
            return Vec::new();
        }
        let Some(editor) = state.editor() else {
            return Vec::new();
        };
        if editor.saving {
            return Vec::new();
        }
        if editor.schema_changed {
            return save_editor_schema(state);
        }
        match editor.prepare_save() {
            Err(problems) => not_saved(state, &problems),
            Ok(values) if values.is_empty() => {
                toast(state, ToastLevel::Info, "nothing changed");
                Vec::new()
            }
            Ok(values) => {
                let connector_id = editor.connector_id.clone();
                start_saving(
                    state,
                    Effect::SaveConfig {
                        connector_id,
                        values,
                    },
                )
            }
        }
    }

    /// Says why the form was not saved: how many problems, and the first.
    pub(crate) fn not_saved(state: &mut AppState, problems: &[String]) -> Vec<Effect> {
        let first = problems.first().cloned().unwrap_or_default();
        toast(
            state,
            ToastLevel::Warn,
            format!("not saved: {} problem(s); {first}", problems.len()),
        );
        Vec::new()
    }

    /// Marks the editor as saving (a second save waits for the answer) and sends `save`.
    pub(crate) fn start_saving(state: &mut AppState, save: Effect) -> Vec<Effect> {
        if let Some(e) = state.editor_mut() {
            e.saving = true;
        }
        vec![save]
    }

    /// After a spec load the cluster does not know the new fields yet: the whole configuration
    /// goes, schema and values.
    pub(crate) fn save_editor_schema(state: &mut AppState) -> Vec<Effect> {
        let Some(editor) = state.editor() else {
            return Vec::new();
        };
        match editor.prepare_schema_save() {
            Err(problems) => not_saved(state, &problems),
            Ok((configuration, changes)) => {
                let connector_id = editor.connector_id.clone();
                start_saving(
                    state,
                    Effect::SaveConfigSchema {
                        connector_id,
                        configuration,
                        changes,
                    },
                )
            }
        }
    }

    /// Asks for the spec of the program the form names now (unsaved edits included), so an
    /// operator can change `command` and load its fields before saving anything.
    pub(crate) fn load_spec(state: &mut AppState) -> Vec<Effect> {
        if refuse_if_read_only(state) {
            return Vec::new();
        }
        let Some(editor) = state.editor() else {
            return Vec::new();
        };
        if !editor.is_external() {
            let service = editor.service_type.clone().unwrap_or_default();
            toast(
                state,
                ToastLevel::Info,
                format!(
                    "only 'external' connectors run a program that has a spec (this one is '{service}')"
                ),
            );
            return Vec::new();
        }
        if editor.spec_status == Some(SpecStatus::Running) {
            return Vec::new();
        }
        let connector_id = editor.connector_id.clone();
        let (configuration, _) = editor.working();
        if let Some(e) = state.editor_mut() {
            e.spec_status = Some(SpecStatus::Running);
        }
        vec![Effect::LoadSpec {
            connector_id,
            configuration,
        }]
    }

    /// The spec's fields arrived: merged into the form if its editor is still open.
    pub(crate) fn on_spec_loaded(
        state: &mut AppState,
        connector_id: &str,
        result: Result<Configuration, String>,
    ) {
        state.dirty = true;
        let save_key = state
            .keymap
            .key_for(KeyContext::Editor, Command::Save)
            .map(|k| k.to_string())
            .unwrap_or_else(|| "save".to_string());
        let editor = match state.screens.last_mut() {
            Some(Screen::Editor(e)) if e.connector_id == connector_id => Some(e),
            _ => None,
        };
        match (result, editor) {
            (Ok(spec), Some(e)) => {
                let outcome = e.merge_spec(&spec);
                let text = if outcome.changed {
                    format!(
                        "spec loaded: {}; review, then {save_key} saves",
                        outcome.summary
                    )
                } else {
                    format!("spec loaded: {}", outcome.summary)
                };
                e.spec_status = Some(SpecStatus::Loaded(text.clone()));
                toast(state, ToastLevel::Info, text);
            }
            (Ok(_), None) => {}
            (Err(error), editor) => {
                if let Some(e) = editor {
                    e.spec_status = Some(SpecStatus::Failed(error.clone()));
                }
                toast(
                    state,
                    ToastLevel::Error,
                    format!("spec of '{connector_id}' not loaded: {error}"),
                );
            }
        }
    }
}

pub(crate) use update::*;
