//! Small dialogs with a few inputs: start a sync (type, where), new connector (service type
//! from the registry, id, name, index), new Kibana `.index` connector, execute a Kibana
//! connector with a document typed in a textarea. State and input handling only; what a
//! submitted form does is decided by `update`.

use super::editor::{FieldInput, edit_input};
use crate::model::SelectOption;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;
use serde_json::Value;

/// What the form is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FormPurpose {
    StartSync {
        connector_id: String,
        connector_name: String,
    },
    NewConnector,
    KibanaCreate,
    KibanaExecute {
        id: String,
        name: String,
    },
}

/// One input with its label.
#[derive(Clone)]
pub struct FormField {
    pub label: String,
    pub help: Option<String>,
    pub input: FieldInput,
}

#[derive(Clone)]
pub struct Form {
    pub purpose: FormPurpose,
    pub title: String,
    pub fields: Vec<FormField>,
    pub focus: usize,
    /// Why the last submit was refused (or the server's answer).
    pub error: Option<String>,
    pub submitting: bool,
}

fn line(text: &str) -> FieldInput {
    let mut t = TextArea::new(vec![text.to_string()]);
    t.move_cursor(ratatui_textarea::CursorMove::End);
    FieldInput::Line(t)
}

fn choice(options: &[(&str, &str)], index: usize) -> FieldInput {
    FieldInput::Choice {
        options: options
            .iter()
            .map(|(l, v)| SelectOption {
                label: l.to_string(),
                value: Value::from(*v),
            })
            .collect(),
        index: Some(index),
    }
}

fn field(label: &str, help: Option<&str>, input: FieldInput) -> FormField {
    FormField {
        label: label.to_string(),
        help: help.map(str::to_string),
        input,
    }
}

impl Form {
    fn new(purpose: FormPurpose, title: String, fields: Vec<FormField>) -> Self {
        Self {
            purpose,
            title,
            fields,
            focus: 0,
            error: None,
            submitting: false,
        }
    }

    /// Full or incremental; on this process's engine, or only queued (offered when a
    /// connectors service elsewhere may serve the connector).
    pub fn start_sync(connector_id: &str, connector_name: &str, offer_queue_only: bool) -> Self {
        let mut fields = vec![field(
            "Sync type",
            None,
            choice(&[("Full", "full"), ("Incremental", "incremental")], 0),
        )];
        if offer_queue_only {
            fields.push(field(
                "Run",
                Some("Queue only: the connectors service serving it picks the job up"),
                choice(
                    &[
                        ("On this console's engine", "here"),
                        ("Queue only", "queue"),
                    ],
                    0,
                ),
            ));
        }
        let title = format!("Start a sync of '{connector_name}'");
        Self::new(
            FormPurpose::StartSync {
                connector_id: connector_id.into(),
                connector_name: connector_name.into(),
            },
            title,
            fields,
        )
    }

    /// For a connector this console's engine cannot run (`why`): full or incremental, and
    /// only queued, for the connectors service that serves it.
    pub fn queue_sync(connector_id: &str, connector_name: &str, why: &str) -> Self {
        let help = format!("Not here: {why}");
        let fields = vec![
            field(
                "Sync type",
                None,
                choice(&[("Full", "full"), ("Incremental", "incremental")], 0),
            ),
            field(
                "Run",
                Some(&help),
                choice(&[("Queue for another service", "queue")], 0),
            ),
        ];
        Self::new(
            FormPurpose::StartSync {
                connector_id: connector_id.into(),
                connector_name: connector_name.into(),
            },
            format!("Queue a sync of '{connector_name}'"),
            fields,
        )
    }

    /// `service_types`: (service type, display name) from the registry.
    pub fn new_connector(service_types: &[(String, String)]) -> Self {
        let options: Vec<(&str, &str)> = service_types
            .iter()
            .map(|(t, n)| (n.as_str(), t.as_str()))
            .collect();
        let fields = vec![
            field("Service type", Some("←/→ to choose"), choice(&options, 0)),
            field(
                "Id",
                Some("Leave empty to let the cluster choose"),
                line(""),
            ),
            field("Name", None, line("")),
            field(
                "Index name",
                Some("Where synced documents go, e.g. search-docs"),
                line(""),
            ),
        ];
        Self::new(
            FormPurpose::NewConnector,
            "New connector".to_string(),
            fields,
        )
    }

    pub fn kibana_create() -> Self {
        let fields = vec![
            field("Name", None, line("")),
            field("Index", Some("The index the connector writes to"), line("")),
            field(
                "Refresh",
                Some("Refresh the index after each write"),
                FieldInput::Toggle(false),
            ),
        ];
        Self::new(
            FormPurpose::KibanaCreate,
            "New Kibana .index connector".to_string(),
            fields,
        )
    }

    pub fn kibana_execute(id: &str, name: &str) -> Self {
        let mut doc = TextArea::new(vec![
            "{".to_string(),
            "  \"message\": \"hello from syncdeck\"".to_string(),
            "}".to_string(),
        ]);
        doc.move_cursor(ratatui_textarea::CursorMove::Bottom);
        doc.move_cursor(ratatui_textarea::CursorMove::End);
        let fields = vec![field(
            "Document (JSON object or array)",
            Some("ctrl-s runs the connector"),
            FieldInput::Lines(doc),
        )];
        Self::new(
            FormPurpose::KibanaExecute {
                id: id.into(),
                name: name.into(),
            },
            format!("Execute '{name}'"),
            fields,
        )
    }

    /// The text of field `i` (trimmed), for text inputs.
    pub fn text(&self, i: usize) -> String {
        self.fields
            .get(i)
            .and_then(|f| f.input.text())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    }

    /// The selected option's value of field `i`, for choices.
    pub fn choice(&self, i: usize) -> Option<String> {
        match self.fields.get(i).map(|f| &f.input) {
            Some(FieldInput::Choice { options, index }) => index
                .and_then(|x| options.get(x))
                .map(|o| o.value.as_str().unwrap_or_default().to_string()),
            _ => None,
        }
    }

    pub fn toggle(&self, i: usize) -> bool {
        matches!(
            self.fields.get(i).map(|f| &f.input),
            Some(FieldInput::Toggle(true))
        )
    }

    pub fn move_focus(&mut self, delta: isize) -> bool {
        let len = self.fields.len();
        if len == 0 {
            return false;
        }
        let target = (self.focus as isize + delta).clamp(0, len as isize - 1) as usize;
        let changed = target != self.focus;
        self.focus = target;
        changed
    }

    pub fn focus_is_multiline(&self) -> bool {
        matches!(
            self.fields.get(self.focus).map(|f| &f.input),
            Some(FieldInput::Lines(_))
        )
    }

    pub fn input(&mut self, key: KeyEvent) -> bool {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return false;
        };
        // Enter on a one-line field submits; the caller handles it.
        if key.code == KeyCode::Enter && !matches!(f.input, FieldInput::Lines(_)) {
            return false;
        }
        let changed = edit_input(&mut f.input, key);
        if changed {
            self.error = None;
        }
        changed
    }

    pub fn paste(&mut self, text: &str) -> bool {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return false;
        };
        match &mut f.input {
            FieldInput::Line(t) => t.insert_str(text.replace(['\r', '\n'], " ")),
            FieldInput::Lines(t) => t.insert_str(text.replace('\r', "")),
            _ => false,
        }
    }
}
