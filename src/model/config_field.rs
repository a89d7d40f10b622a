//! A connector's configuration: `Configuration` maps a key to a `ConfigField` (the protocol's
//! RichConfigurableField). Validation of values lives in `model::validate`-style methods here,
//! so the CLI, the console editor and the engine apply the same rules.

use super::serde_util::null_default;
use crate::secret::MASK;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The configuration of a connector: key → field. Ordered by key for stable output;
/// use [`Configuration::fields_in_order`] for the form order.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Configuration(pub BTreeMap<String, ConfigField>);

impl Configuration {
    pub fn get(&self, key: &str) -> Option<&ConfigField> {
        self.0.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fields sorted by `order`, then key: the order of the form.
    pub fn fields_in_order(&self) -> Vec<(&str, &ConfigField)> {
        let mut fields: Vec<_> = self.0.iter().map(|(k, f)| (k.as_str(), f)).collect();
        fields.sort_by(|a, b| {
            a.1.order
                .unwrap_or(1)
                .cmp(&b.1.order.unwrap_or(1))
                .then(a.0.cmp(b.0))
        });
        fields
    }

    /// The effective value of a field: `value`, or `default_value` when the value is empty.
    pub fn effective_value(&self, key: &str) -> Option<&Value> {
        let field = self.0.get(key)?;
        if is_empty_value(&field.value) && !field.default_value.is_null() {
            Some(&field.default_value)
        } else {
            Some(&field.value)
        }
    }

    /// Whether a field applies: every `depends_on` entry names a field whose effective value
    /// equals the expected one.
    pub fn is_active(&self, key: &str) -> bool {
        let Some(field) = self.0.get(key) else {
            return false;
        };
        field.depends_on.iter().all(|dep| {
            self.effective_value(&dep.field)
                .is_some_and(|v| loosely_equal(v, &dep.value))
        })
    }
}

impl Configuration {
    /// A copy whose sensitive values are replaced by the mask: what any output shows unless
    /// the operator asked to reveal.
    pub fn masked(&self) -> Configuration {
        let mut copy = self.clone();
        for field in copy.0.values_mut() {
            if field.sensitive && !is_empty_value(&field.value) {
                field.value = Value::String(MASK.to_string());
            }
        }
        copy
    }
}

impl fmt::Debug for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// "Empty" as the framework means it: `""`, null, or an empty or blank list.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.iter().all(is_empty_value),
        _ => false,
    }
}

/// Equality across the loose typing of configuration values: `5` equals `"5"`, `true` equals
/// `"true"`.
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text(a) == text(b)
}

/// One configuration field (`RichConfigurableField`). Defaults are the framework's.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigField {
    #[serde(default, deserialize_with = "null_default")]
    pub label: String,
    #[serde(default = "empty_string_value")]
    pub value: Value,
    #[serde(default)]
    pub default_value: Value,
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub field_type: FieldType,
    #[serde(default, deserialize_with = "null_default")]
    pub display: DisplayType,
    #[serde(default, deserialize_with = "null_default")]
    pub options: Vec<SelectOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    #[serde(default = "yes", deserialize_with = "null_true")]
    pub required: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub sensitive: bool,
    #[serde(default)]
    pub tooltip: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub depends_on: Vec<Dependency>,
    #[serde(default, deserialize_with = "null_default")]
    pub validations: Vec<Validation>,
    #[serde(default, deserialize_with = "null_default")]
    pub ui_restrictions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Fields this version does not know, kept for writing back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_string_value() -> Value {
    Value::String(String::new())
}

fn yes() -> bool {
    true
}

fn null_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

impl Default for ConfigField {
    fn default() -> Self {
        Self {
            label: String::new(),
            value: empty_string_value(),
            default_value: Value::Null,
            field_type: FieldType::Str,
            display: DisplayType::Text,
            options: Vec::new(),
            order: None,
            required: true,
            sensitive: false,
            tooltip: None,
            depends_on: Vec::new(),
            validations: Vec::new(),
            ui_restrictions: Vec::new(),
            category: None,
            placeholder: None,
            extra: Map::new(),
        }
    }
}

impl ConfigField {
    /// The label shown to people: the framework falls back to the key in upper case.
    pub fn display_label(&self, key: &str) -> String {
        if self.label.trim().is_empty() {
            key.to_uppercase()
        } else {
            self.label.clone()
        }
    }

    /// The value as text for display, masked when the field is sensitive and not revealed.
    pub fn display_value(&self, reveal: bool) -> String {
        if self.sensitive && !reveal && !is_empty_value(&self.value) {
            return MASK.to_string();
        }
        value_text(&self.value)
    }
}

/// A configuration value as one line of text: strings bare, lists comma-separated.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

// Debug must never print a sensitive value: configuration structs end up in tracing spans.
impl fmt::Debug for ConfigField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.sensitive { &MASK } else { &self.value };
        f.debug_struct("ConfigField")
            .field("label", &self.label)
            .field("value", value)
            .field("type", &self.field_type)
            .field("display", &self.display)
            .field("required", &self.required)
            .field("sensitive", &self.sensitive)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    #[default]
    Str,
    Int,
    List,
    Bool,
    #[serde(other)]
    Unknown,
}

impl FieldType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Str => "str",
            Self::Int => "int",
            Self::List => "list",
            Self::Bool => "bool",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayType {
    /// The framework's default; written back as `textbox`.
    #[default]
    Text,
    Textbox,
    Textarea,
    Numeric,
    Toggle,
    Dropdown,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectOption {
    #[serde(default, deserialize_with = "null_default")]
    pub label: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub field: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    #[serde(rename = "type")]
    pub kind: ValidationType,
    #[serde(default)]
    pub constraint: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationType {
    LessThan,
    GreaterThan,
    ListType,
    IncludedIn,
    Regex,
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_keys_get_framework_defaults_and_unknown_keys_survive() {
        let f: ConfigField =
            serde_json::from_value(json!({"label": "Host", "future_key": 7})).unwrap();
        assert_eq!(f.value, json!(""));
        assert!(f.required);
        assert!(!f.sensitive);
        assert_eq!(f.display, DisplayType::Text);
        assert_eq!(serde_json::to_value(&f).unwrap()["future_key"], json!(7));
    }

    #[test]
    fn debug_masks_sensitive_values() {
        let f: ConfigField =
            serde_json::from_value(json!({"value": "s3cr3t-value", "sensitive": true})).unwrap();
        let printed = format!("{f:?}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert_eq!(f.display_value(false), MASK);
        assert_eq!(f.display_value(true), "s3cr3t-value");
    }

    #[test]
    fn depends_on_and_order() {
        let c: Configuration = serde_json::from_value(json!({
            "b": {"order": 2, "value": "x"},
            "a": {"order": 1, "value": true, "type": "bool"},
            "c": {"order": 3, "depends_on": [{"field": "a", "value": true}]},
            "d": {"order": 4, "depends_on": [{"field": "a", "value": false}]}
        }))
        .unwrap();
        let keys: Vec<_> = c.fields_in_order().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert!(c.is_active("c"));
        assert!(!c.is_active("d"));
    }
}
