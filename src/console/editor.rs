//! The configuration editor's state: one input per configuration field, in `order`, of the
//! kind the field's display asks for (textbox, textarea, numeric, toggle, dropdown), with
//! `depends_on` deciding which fields show, validation (`model::validate`) on every edit,
//! and the changed values for a save. Sensitive text inputs mask their characters; a reveal
//! shows one field until the cursor leaves it. An `external` connector's form can take the
//! fields of its program's spec (merged by `ExternalFactory::merge_spec`, unsaved until the
//! operator saves). No I/O; no `Debug` that could print a value.

use crate::model::validate::{parse_input, validate_field, validate_update};
use crate::model::{
    ConfigField, Configuration, Connector, DisplayType, FieldType, SelectOption, is_empty_value,
    loosely_equal, value_text,
};
use crate::sources::ExternalFactory;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The character sensitive inputs show instead of what was typed.
pub const MASK_CHAR: char = '•';

/// The input of one field.
#[derive(Clone)]
pub enum FieldInput {
    /// One line of text (textbox, numeric, or a dropdown without options).
    Line(TextArea<'static>),
    /// Several lines (textarea).
    Lines(TextArea<'static>),
    Toggle(bool),
    /// A dropdown: the index of the selected option, if the value is one of them.
    Choice {
        options: Vec<SelectOption>,
        index: Option<usize>,
    },
}

impl FieldInput {
    /// The text of a text input.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Line(t) => Some(t.lines().join("")),
            Self::Lines(t) => Some(t.lines().join("\n")),
            _ => None,
        }
    }
}

/// Where loading the fields of an `external` connector's spec stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecStatus {
    /// The program runs.
    Running,
    /// What the merge did (field keys only, never values).
    Loaded(String),
    /// Why it failed (the program's output in it has secrets masked).
    Failed(String),
}

/// What a spec load did to the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecOutcome {
    /// Fields were added or redefined.
    pub changed: bool,
    /// For people: the keys added, redefined and kept (never values).
    pub summary: String,
}

/// One field of the form.
#[derive(Clone)]
pub struct EditorField {
    pub key: String,
    /// The field as loaded (schema and saved value).
    pub field: ConfigField,
    pub input: FieldInput,
}

/// The editor of one connector's configuration.
#[derive(Clone)]
pub struct ConfigEditor {
    pub connector_id: String,
    pub connector_name: String,
    /// The configuration as last saved (or loaded).
    pub original: Configuration,
    pub fields: Vec<EditorField>,
    /// Index into `fields` of the focused field (always a shown one when any is).
    pub focus: usize,
    /// The key whose sensitive value is shown in clear until the focus moves.
    pub revealed: Option<String>,
    /// Problems per key, from the last edit.
    pub issues: BTreeMap<String, Vec<String>>,
    /// A save is in flight.
    pub saving: bool,
    /// The server's answer to the last failed save.
    pub server_error: Option<String>,
    /// The connector's service type (`external` connectors can load their spec).
    pub service_type: Option<String>,
    /// The last spec load, shown until the next edit.
    pub spec_status: Option<SpecStatus>,
    /// A spec added or redefined fields that are not saved yet: the save sends the whole
    /// configuration, schema included.
    pub schema_changed: bool,
}

impl fmt::Debug for ConfigEditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.fields.iter().map(|e| e.key.as_str()).collect();
        f.debug_struct("ConfigEditor")
            .field("connector_id", &self.connector_id)
            .field("fields", &keys)
            .field("focus", &self.focus)
            .finish_non_exhaustive()
    }
}

fn text_input(text: &str, sensitive: bool, multiline: bool) -> TextArea<'static> {
    let lines: Vec<String> = if multiline {
        text.lines().map(str::to_string).collect()
    } else {
        vec![text.replace('\n', " ")]
    };
    let mut area = TextArea::new(lines);
    if sensitive {
        area.set_mask_char(MASK_CHAR);
    }
    area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area
}

fn as_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

fn input_for(field: &ConfigField) -> FieldInput {
    let value = if is_empty_value(&field.value)
        && !field.default_value.is_null()
        && field.display == DisplayType::Toggle
    {
        &field.default_value
    } else {
        &field.value
    };
    match field.display {
        DisplayType::Toggle => FieldInput::Toggle(as_bool(value)),
        DisplayType::Dropdown if !field.options.is_empty() => FieldInput::Choice {
            options: field.options.clone(),
            index: field
                .options
                .iter()
                .position(|o| loosely_equal(&o.value, value)),
        },
        DisplayType::Textarea => {
            FieldInput::Lines(text_input(&value_text(value), field.sensitive, true))
        }
        _ if field.field_type == FieldType::Bool => FieldInput::Toggle(as_bool(value)),
        _ => FieldInput::Line(text_input(&value_text(value), field.sensitive, false)),
    }
}

/// Equal for saving purposes: loosely equal, or both empty.
fn same(a: &Value, b: &Value) -> bool {
    loosely_equal(a, b) || (is_empty_value(a) && is_empty_value(b))
}

impl ConfigEditor {
    pub fn new(connector: &Connector) -> Self {
        let original = connector.configuration.clone();
        let fields = original
            .fields_in_order()
            .into_iter()
            .map(|(key, field)| EditorField {
                key: key.to_string(),
                field: field.clone(),
                input: input_for(field),
            })
            .collect();
        let mut editor = Self {
            connector_id: connector.id.clone(),
            connector_name: connector.name.clone(),
            original,
            fields,
            focus: 0,
            revealed: None,
            issues: BTreeMap::new(),
            saving: false,
            server_error: None,
            service_type: connector.service_type.clone(),
            spec_status: None,
            schema_changed: false,
        };
        editor.revalidate();
        editor.focus = editor.shown().first().copied().unwrap_or(0);
        editor
    }

    /// The value a field's input holds now.
    pub fn current_value(&self, i: usize) -> Result<Value, String> {
        let Some(f) = self.fields.get(i) else {
            return Err("no such field".to_string());
        };
        match &f.input {
            FieldInput::Toggle(b) => Ok(if f.field.field_type == FieldType::Str {
                Value::String(b.to_string())
            } else {
                Value::Bool(*b)
            }),
            FieldInput::Choice { options, index } => Ok(index
                .and_then(|i| options.get(i))
                .map(|o| o.value.clone())
                .unwrap_or_else(|| f.field.value.clone())),
            FieldInput::Line(_) | FieldInput::Lines(_) => {
                let raw = f.input.text().unwrap_or_default();
                let raw = if f.field.field_type == FieldType::List {
                    raw.replace('\n', ",")
                } else {
                    raw
                };
                parse_input(&f.key, &f.field, &raw).map_err(|issue| issue.message)
            }
        }
    }

    /// Whether the connector runs a program that has a spec.
    pub fn is_external(&self) -> bool {
        self.service_type.as_deref() == Some("external")
    }

    /// The fields as the form defines them now (a loaded spec included), with their saved
    /// values.
    fn base(&self) -> Configuration {
        Configuration(
            self.fields
                .iter()
                .map(|f| (f.key.clone(), f.field.clone()))
                .collect(),
        )
    }

    /// Whether a field came with a spec load and is not saved yet.
    pub fn is_new(&self, key: &str) -> bool {
        !self.original.0.contains_key(key)
    }

    /// The configuration with every input applied (inputs that do not parse keep the saved
    /// value), and the parse problems by key.
    pub fn working(&self) -> (Configuration, BTreeMap<String, String>) {
        let mut config = self.base();
        let mut problems = BTreeMap::new();
        for (i, f) in self.fields.iter().enumerate() {
            match self.current_value(i) {
                Ok(value) => {
                    if let Some(field) = config.0.get_mut(&f.key) {
                        field.value = value;
                    }
                }
                Err(message) => {
                    problems.insert(f.key.clone(), message);
                }
            }
        }
        (config, problems)
    }

    /// The indexes of the fields that apply (their `depends_on` holds), in form order.
    pub fn shown(&self) -> Vec<usize> {
        let (config, _) = self.working();
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| config.is_active(&f.key))
            .map(|(i, _)| i)
            .collect()
    }

    /// The values that differ from the saved configuration.
    pub fn changes(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (i, f) in self.fields.iter().enumerate() {
            if let Ok(value) = self.current_value(i)
                && !same(&value, &f.field.value)
            {
                out.insert(f.key.clone(), value);
            }
        }
        out
    }

    pub fn is_dirty(&self) -> bool {
        self.schema_changed
            || !self.changes().is_empty()
            || self
                .fields
                .iter()
                .enumerate()
                .any(|(i, _)| self.current_value(i).is_err())
    }

    /// Re-runs validation over the shown fields.
    pub fn revalidate(&mut self) {
        let (config, problems) = self.working();
        let mut issues: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in &self.fields {
            if !config.is_active(&f.key) {
                continue;
            }
            if let Some(p) = problems.get(&f.key) {
                issues.entry(f.key.clone()).or_default().push(p.clone());
                continue;
            }
            for issue in validate_field(&config, &f.key) {
                issues.entry(f.key.clone()).or_default().push(issue.message);
            }
        }
        self.issues = issues;
        // A field hidden by the edit cannot keep the focus.
        let shown = self.shown();
        if !shown.contains(&self.focus)
            && let Some(next) = shown
                .iter()
                .copied()
                .find(|&i| i > self.focus)
                .or_else(|| shown.last().copied())
        {
            self.focus = next;
        }
    }

    /// What to send, or the problems that prevent the save (nothing is partial).
    pub fn prepare_save(&self) -> Result<Map<String, Value>, Vec<String>> {
        let (_, problems) = self.working();
        if !problems.is_empty() {
            return Err(problems
                .into_iter()
                .map(|(k, m)| format!("{k}: {m}"))
                .collect());
        }
        let changes = self.changes();
        let issues = validate_update(&self.base(), &changes);
        if !issues.is_empty() {
            return Err(issues.iter().map(ToString::to_string).collect());
        }
        Ok(changes)
    }

    /// After a spec load: the whole configuration to save (schema and values) and how many
    /// values and fields it changes, or the problems that prevent the save.
    pub fn prepare_schema_save(&self) -> Result<(Configuration, usize), Vec<String>> {
        let changes = self.prepare_save()?;
        let (config, _) = self.working();
        let redefined = config
            .0
            .iter()
            .filter(|(key, field)| {
                self.original.get(key).is_none_or(|saved| {
                    ConfigField {
                        value: saved.value.clone(),
                        ..(*field).clone()
                    } != *saved
                })
            })
            .filter(|(key, _)| !changes.contains_key(*key))
            .count();
        Ok((config, changes.len() + redefined))
    }

    /// Lays the fields of a spec over the form (see `ExternalFactory::merge_spec`): what is
    /// typed stays, new fields come with their defaults and take the focus. Nothing is saved.
    pub fn merge_spec(&mut self, spec: &Configuration) -> SpecOutcome {
        let (working, _) = self.working();
        let merge = ExternalFactory::merge_spec(&working, spec);
        let outcome = SpecOutcome {
            changed: merge.changed(),
            summary: merge.summary(),
        };
        if !merge.changed() {
            return outcome;
        }
        let focused = self.fields.get(self.focus).map(|f| f.key.clone());
        let mut old: BTreeMap<String, EditorField> =
            self.fields.drain(..).map(|f| (f.key.clone(), f)).collect();
        self.fields = merge
            .configuration
            .fields_in_order()
            .into_iter()
            .map(|(key, field)| match old.remove(key) {
                // An unchanged definition keeps its input as it is (cursor, unparsed text).
                Some(kept) if !merge.updated.iter().any(|k| k == key) => kept,
                // A redefined one keeps its saved value, so the change still shows.
                Some(kept) => EditorField {
                    key: key.to_string(),
                    field: ConfigField {
                        value: kept.field.value,
                        ..field.clone()
                    },
                    input: input_for(field),
                },
                None => EditorField {
                    key: key.to_string(),
                    field: field.clone(),
                    input: input_for(field),
                },
            })
            .collect();
        self.revealed = None;
        self.schema_changed = true;
        self.server_error = None;
        let target = merge.added.first().cloned().or(focused);
        self.focus = target
            .and_then(|key| self.fields.iter().position(|f| f.key == key))
            .unwrap_or(0);
        self.revalidate();
        outcome
    }

    /// The save went through: what is on screen is now the saved configuration.
    pub fn mark_saved(&mut self) {
        let (config, _) = self.working();
        for f in &mut self.fields {
            if let Some(saved) = config.get(&f.key) {
                f.field.value = saved.value.clone();
            }
        }
        self.original = config;
        self.saving = false;
        self.server_error = None;
        self.schema_changed = false;
    }

    /// Moves the focus among shown fields; hides a revealed value.
    pub fn move_focus(&mut self, delta: isize) -> bool {
        let shown = self.shown();
        let Some(pos) = shown.iter().position(|&i| i == self.focus) else {
            self.focus = shown.first().copied().unwrap_or(0);
            return true;
        };
        let target = (pos as isize + delta).clamp(0, shown.len() as isize - 1) as usize;
        if shown[target] == self.focus {
            return false;
        }
        self.focus = shown[target];
        self.hide_revealed();
        true
    }

    fn hide_revealed(&mut self) {
        let Some(key) = self.revealed.take() else {
            return;
        };
        if let Some(f) = self.fields.iter_mut().find(|f| f.key == key)
            && let FieldInput::Line(t) | FieldInput::Lines(t) = &mut f.input
        {
            t.set_mask_char(MASK_CHAR);
        }
    }

    /// Shows (or hides again) the focused sensitive value.
    pub fn toggle_reveal(&mut self) -> bool {
        let focus = self.focus;
        let Some(f) = self.fields.get_mut(focus) else {
            return false;
        };
        if !f.field.sensitive {
            return false;
        }
        let (FieldInput::Line(t) | FieldInput::Lines(t)) = &mut f.input else {
            return false;
        };
        if self.revealed.as_deref() == Some(f.key.as_str()) {
            t.set_mask_char(MASK_CHAR);
            self.revealed = None;
        } else {
            t.clear_mask_char();
            self.revealed = Some(f.key.clone());
        }
        true
    }

    /// Whether the focused field is a multi-line input (Enter inserts a line there).
    pub fn focus_is_multiline(&self) -> bool {
        matches!(
            self.fields.get(self.focus).map(|f| &f.input),
            Some(FieldInput::Lines(_))
        )
    }

    /// Edits the focused field with a key; returns whether anything changed.
    pub fn input(&mut self, key: KeyEvent) -> bool {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return false;
        };
        let changed = edit_input(&mut f.input, key);
        if changed {
            self.server_error = None;
            if self.spec_status != Some(SpecStatus::Running) {
                self.spec_status = None;
            }
            self.revalidate();
        }
        changed
    }

    /// Pastes text into the focused text field.
    pub fn paste(&mut self, text: &str) -> bool {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return false;
        };
        let changed = match &mut f.input {
            FieldInput::Line(t) => t.insert_str(text.replace(['\r', '\n'], " ")),
            FieldInput::Lines(t) => t.insert_str(text.replace('\r', "")),
            _ => false,
        };
        if changed {
            self.revalidate();
        }
        changed
    }
}

/// Applies one key to an input: text editing, space/left/right for toggles and choices.
pub fn edit_input(input: &mut FieldInput, key: KeyEvent) -> bool {
    match input {
        FieldInput::Toggle(b) => match key.code {
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right | KeyCode::Enter => {
                *b = !*b;
                true
            }
            _ => false,
        },
        FieldInput::Choice { options, index } => {
            let len = options.len();
            if len == 0 {
                return false;
            }
            let current = index.unwrap_or(0);
            let next = match key.code {
                KeyCode::Right | KeyCode::Char(' ') | KeyCode::Char('l') => (current + 1) % len,
                KeyCode::Left | KeyCode::Char('h') => (current + len - 1) % len,
                _ => return false,
            };
            let changed = *index != Some(next);
            *index = Some(next);
            changed
        }
        FieldInput::Line(t) => {
            // One line: Enter does not split it.
            if key.code == KeyCode::Enter {
                return false;
            }
            let before = t.lines().to_vec();
            t.input(key);
            t.lines() != before.as_slice()
        }
        FieldInput::Lines(t) => {
            let before = t.lines().to_vec();
            t.input(key);
            t.lines() != before.as_slice()
        }
    }
}

/// A key event without modifiers, for tests and scripted input.
pub fn plain_key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connector() -> Connector {
        serde_json::from_value(json!({
            "id": "c1", "name": "Postgres",
            "configuration": {
                "host": {"label": "Host", "order": 1, "value": "db", "display": "textbox"},
                "port": {"label": "Port", "order": 2, "type": "int", "display": "numeric", "value": 5432,
                          "validations": [{"type": "less_than", "constraint": 65536}]},
                "ssl": {"label": "SSL", "order": 3, "type": "bool", "display": "toggle", "value": false},
                "ca": {"label": "CA", "order": 4, "display": "textarea", "value": "",
                       "depends_on": [{"field": "ssl", "value": true}]},
                "mode": {"label": "Mode", "order": 5, "display": "dropdown", "value": "fast",
                         "options": [{"label": "Fast", "value": "fast"}, {"label": "Safe", "value": "safe"}]},
                "token": {"label": "Token", "order": 6, "sensitive": true, "value": "s3cr3t"}
            }
        }))
        .unwrap()
    }

    fn type_text(e: &mut ConfigEditor, text: &str) {
        for c in text.chars() {
            e.input(plain_key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn inputs_follow_the_display_and_order() {
        let e = ConfigEditor::new(&connector());
        let keys: Vec<_> = e.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["host", "port", "ssl", "ca", "mode", "token"]);
        assert!(matches!(e.fields[2].input, FieldInput::Toggle(false)));
        assert!(matches!(e.fields[3].input, FieldInput::Lines(_)));
        assert!(matches!(
            e.fields[4].input,
            FieldInput::Choice { index: Some(0), .. }
        ));
        assert_eq!(e.shown(), [0, 1, 2, 4, 5], "ca depends on ssl");
        assert!(!e.is_dirty());
    }

    #[test]
    fn edits_validate_as_you_type_and_save_only_changes() {
        let mut e = ConfigEditor::new(&connector());
        e.move_focus(1);
        assert_eq!(e.fields[e.focus].key, "port");
        type_text(&mut e, "00");
        assert_eq!(e.current_value(1).unwrap(), json!(543200));
        assert!(
            e.issues.get("port").is_some_and(|m| m[0].contains("less")),
            "{:?}",
            e.issues
        );
        assert!(e.prepare_save().is_err());
        e.input(plain_key(KeyCode::Backspace));
        e.input(plain_key(KeyCode::Backspace));
        assert!(e.issues.is_empty());
        e.move_focus(1);
        e.input(plain_key(KeyCode::Char(' ')));
        assert_eq!(e.shown(), [0, 1, 2, 3, 4, 5], "ca shows once ssl is on");
        assert!(e.issues.contains_key("ca"), "ca became required");
        e.move_focus(1);
        type_text(&mut e, "PEM");
        let changes = e.prepare_save().unwrap();
        assert_eq!(
            changes,
            json!({"ssl": true, "ca": "PEM"})
                .as_object()
                .unwrap()
                .clone()
        );
        e.mark_saved();
        assert!(!e.is_dirty());
    }

    #[test]
    fn reveal_lasts_until_the_focus_moves() {
        let mut e = ConfigEditor::new(&connector());
        assert!(!e.toggle_reveal(), "host is not sensitive");
        e.move_focus(10);
        assert_eq!(e.fields[e.focus].key, "token");
        let masked = |e: &ConfigEditor| matches!(&e.fields[5].input, FieldInput::Line(t) if t.mask_char() == Some(MASK_CHAR));
        assert!(masked(&e));
        assert!(e.toggle_reveal());
        assert!(!masked(&e));
        e.move_focus(-1);
        assert!(masked(&e) && e.revealed.is_none());
        let printed = format!("{e:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    fn external() -> Connector {
        use crate::sources::SourceFactory;
        let mut configuration = crate::sources::ExternalFactory.default_configuration();
        if let Some(f) = configuration.0.get_mut("command") {
            f.value = json!("prog");
        }
        Connector {
            id: "ext".into(),
            service_type: Some("external".into()),
            configuration,
            ..serde_json::from_value(json!({"id": "ext"})).unwrap()
        }
    }

    /// Fields as `ExternalFactory::load_spec` gives them: the generic ones and `config.*`.
    fn spec() -> Configuration {
        use crate::sources::SourceFactory;
        let mut spec = crate::sources::ExternalFactory.default_configuration();
        let extra: Configuration = serde_json::from_value(json!({
            "config.count": {"label": "Records", "order": 20, "type": "int", "display": "numeric",
                             "value": 3, "default_value": 3, "required": false},
            "config.token": {"label": "API token", "order": 21, "sensitive": true, "value": ""}
        }))
        .unwrap();
        spec.0.extend(extra.0);
        spec
    }

    #[test]
    fn a_spec_adds_its_fields_to_the_form_and_keeps_what_was_typed() {
        let mut e = ConfigEditor::new(&external());
        assert!(e.is_external() && !e.is_dirty());
        assert_eq!(e.fields[e.focus].key, "command");
        type_text(&mut e, "2");
        let outcome = e.merge_spec(&spec());
        assert!(outcome.changed, "{outcome:?}");
        assert!(
            outcome
                .summary
                .starts_with("added 2 field(s): config.count, config.token"),
            "{}",
            outcome.summary
        );
        let keys: Vec<&str> = e.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(&keys[keys.len() - 2..], ["config.count", "config.token"]);
        assert_eq!(e.fields[e.focus].key, "config.count", "the first new field");
        assert!(e.is_new("config.token") && !e.is_new("command"));
        assert_eq!(
            e.current_value(0).unwrap(),
            json!("prog2"),
            "the typed command stays"
        );
        assert!(e.schema_changed && e.is_dirty());
        assert!(
            e.issues.contains_key("config.token"),
            "a required secret starts empty"
        );
        assert!(e.prepare_schema_save().is_err(), "required, as any save");
        e.move_focus(1);
        type_text(&mut e, "t0ken-value");
        let (saved, changes) = e.prepare_schema_save().unwrap();
        assert_eq!(changes, 3, "command, the token, and the new count");
        assert_eq!(saved.0["config.token"].value, "t0ken-value");
        assert_eq!(saved.0["command"].value, "prog2");
        assert_eq!(saved.0["config.count"].value, 3);
        assert!(saved.0["config.token"].sensitive);
        e.mark_saved();
        assert!(!e.is_dirty() && !e.is_new("config.token"));
        // The same spec again changes nothing.
        let again = e.merge_spec(&spec());
        assert!(!again.changed && !e.schema_changed, "{again:?}");
    }

    #[test]
    fn a_bad_number_is_a_problem_not_a_change() {
        let mut e = ConfigEditor::new(&connector());
        e.move_focus(1);
        type_text(&mut e, "x");
        assert!(
            e.issues
                .get("port")
                .is_some_and(|m| m[0].contains("whole number"))
        );
        assert!(e.is_dirty());
        assert!(e.prepare_save().is_err());
    }
}
