//! The built-in sources (`generator`, `ndjson`, `directory`, …) as one [`Registry`], plus the
//! small helpers every source uses to declare its configuration fields ([`field`],
//! [`configuration`]) and to read their values ([`int_setting`], [`str_setting`],
//! [`bool_setting`]). This module must not know about the engine.

use super::directory::DirectoryFactory;
use super::external::ExternalFactory;
use super::generator::GeneratorFactory;
use super::http_api::HttpApiFactory;
use super::ndjson::NdjsonFactory;
use super::{Registry, SourceError};
use crate::model::{
    ConfigField, Configuration, Dependency, DisplayType, FieldType, SelectOption, Validation,
    ValidationType, is_empty_value,
};
use serde_json::Value;
use std::sync::Arc;

/// A registry holding every built-in source.
pub fn builtin() -> Registry {
    let mut registry = Registry::empty();
    registry.register(Arc::new(GeneratorFactory));
    registry.register(Arc::new(NdjsonFactory));
    registry.register(Arc::new(DirectoryFactory));
    registry.register(Arc::new(ExternalFactory));
    registry.register(Arc::new(HttpApiFactory));
    registry.register(Arc::new(super::PostgresqlFactory));
    registry.register(Arc::new(super::MysqlFactory));
    registry
}

/// A configuration field under construction; see [`field`].
pub(crate) struct FieldBuilder {
    key: &'static str,
    field: ConfigField,
}

/// Starts a required text field with a label; chain the type, default and rules, then hand a
/// list of builders to [`configuration`], which numbers them in the order given.
pub(crate) fn field(key: &'static str, label: &str) -> FieldBuilder {
    let field = ConfigField {
        label: label.to_string(),
        display: DisplayType::Textbox,
        ..ConfigField::default()
    };
    FieldBuilder { key, field }
}

impl FieldBuilder {
    /// A text box with a default value; an empty default means none.
    pub(crate) fn text(mut self, default: &str) -> Self {
        self.field.field_type = FieldType::Str;
        self.field.display = DisplayType::Textbox;
        if !default.is_empty() {
            self.set_default(Value::String(default.to_string()));
        }
        self
    }

    /// A whole number with a default value.
    pub(crate) fn int(mut self, default: i64) -> Self {
        self.field.field_type = FieldType::Int;
        self.field.display = DisplayType::Numeric;
        self.set_default(Value::from(default));
        self
    }

    /// An on/off toggle with a default value.
    pub(crate) fn toggle(mut self, default: bool) -> Self {
        self.field.field_type = FieldType::Bool;
        self.field.display = DisplayType::Toggle;
        self.set_default(Value::Bool(default));
        self
    }

    /// A dropdown of `(label, value)` choices; the value must be one of them.
    #[allow(dead_code)] // for sources with a fixed set of choices
    pub(crate) fn dropdown(mut self, choices: &[(&str, &str)], default: &str) -> Self {
        self.field.field_type = FieldType::Str;
        self.field.display = DisplayType::Dropdown;
        self.field.options = choices
            .iter()
            .map(|(label, value)| SelectOption {
                label: (*label).to_string(),
                value: Value::from(*value),
            })
            .collect();
        self.set_default(Value::String(default.to_string()));
        self
    }

    /// Not required: an empty value is fine.
    pub(crate) fn optional(mut self) -> Self {
        self.field.required = false;
        self
    }

    /// A secret: masked in every UI and log, and never given a default.
    pub(crate) fn sensitive(mut self) -> Self {
        self.field.sensitive = true;
        self.field.value = Value::String(String::new());
        self.field.default_value = Value::Null;
        self
    }

    pub(crate) fn tooltip(mut self, text: &str) -> Self {
        self.field.tooltip = Some(text.to_string());
        self
    }

    /// The value must be greater than `n`.
    pub(crate) fn greater_than(mut self, n: i64) -> Self {
        self.field.validations.push(Validation {
            kind: ValidationType::GreaterThan,
            constraint: Value::from(n),
        });
        self
    }

    /// The value must be less than `n`.
    #[allow(dead_code)] // for sources with an upper bound
    pub(crate) fn less_than(mut self, n: i64) -> Self {
        self.field.validations.push(Validation {
            kind: ValidationType::LessThan,
            constraint: Value::from(n),
        });
        self
    }

    /// The field applies only while `other` has `value`.
    #[allow(dead_code)] // for sources with conditional fields
    pub(crate) fn depends_on(mut self, other: &str, value: Value) -> Self {
        self.field.depends_on.push(Dependency {
            field: other.to_string(),
            value,
        });
        self
    }

    // The current value starts as the default, as the framework's DEFAULT_CONFIGURATION does,
    // so a new connector is usable without edits.
    fn set_default(&mut self, default: Value) {
        if self.field.sensitive {
            return;
        }
        self.field.value = default.clone();
        self.field.default_value = default;
    }
}

/// A configuration from builders, numbered 1, 2, … in the order given.
pub(crate) fn configuration(fields: impl IntoIterator<Item = FieldBuilder>) -> Configuration {
    let mut config = Configuration::default();
    for (index, builder) in fields.into_iter().enumerate() {
        let mut field = builder.field;
        field.order = Some(index as i64 + 1);
        config.0.insert(builder.key.to_string(), field);
    }
    config
}

// The effective value (value, else default), or None when both are empty.
fn setting<'a>(config: &'a Configuration, key: &str) -> Option<&'a Value> {
    config.effective_value(key).filter(|v| !is_empty_value(v))
}

fn config_error(key: &str, reason: impl Into<String>) -> SourceError {
    SourceError::Config {
        field: key.to_string(),
        reason: reason.into(),
    }
}

/// A whole-number setting; numbers may arrive as JSON numbers or as text.
pub(crate) fn int_setting(
    config: &Configuration,
    key: &str,
    default: i64,
) -> Result<i64, SourceError> {
    let Some(value) = setting(config, key) else {
        return Ok(default);
    };
    let parsed = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        config_error(
            key,
            format!("'{}' is not a whole number", plain_text(value)),
        )
    })
}

/// A text setting, trimmed of surrounding whitespace.
pub(crate) fn str_setting(config: &Configuration, key: &str, default: &str) -> String {
    match setting(config, key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => plain_text(other),
        None => default.to_string(),
    }
}

/// An on/off setting; accepts JSON booleans and the usual words.
pub(crate) fn bool_setting(
    config: &Configuration,
    key: &str,
    default: bool,
) -> Result<bool, SourceError> {
    let Some(value) = setting(config, key) else {
        return Ok(default);
    };
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(config_error(key, format!("'{s}' is not true or false"))),
        },
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        other => Err(config_error(
            key,
            format!("'{}' is not true or false", plain_text(other)),
        )),
    }
}

/// A whole number that must be at least `min`.
pub(crate) fn int_at_least(
    config: &Configuration,
    key: &str,
    default: i64,
    min: i64,
) -> Result<i64, SourceError> {
    let n = int_setting(config, key, default)?;
    if n < min {
        return Err(config_error(
            key,
            format!("'{n}' is too small; the minimum is {min}"),
        ));
    }
    Ok(n)
}

fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::validate_update;
    use serde_json::{Map, json};

    fn sample() -> Configuration {
        configuration([
            field("count", "Count")
                .int(10)
                .greater_than(0)
                .tooltip("How many"),
            field("name", "Name").text("x"),
            field("token", "Token").sensitive().optional(),
            field("on", "On").toggle(true),
        ])
    }

    #[test]
    fn builder_numbers_fields_and_sets_defaults() {
        let config = sample();
        let keys: Vec<_> = config
            .fields_in_order()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["count", "name", "token", "on"]);
        let count = &config.0["count"];
        assert_eq!(count.value, json!(10));
        assert_eq!(count.default_value, json!(10));
        assert_eq!(count.display, DisplayType::Numeric);
        assert_eq!(count.field_type, FieldType::Int);
        assert_eq!(count.tooltip.as_deref(), Some("How many"));
        let token = &config.0["token"];
        assert!(token.sensitive && !token.required);
        assert_eq!(token.default_value, Value::Null);
        assert_eq!(config.0["on"].display, DisplayType::Toggle);
    }

    #[test]
    fn the_defaults_pass_the_shared_validation() {
        assert!(validate_update(&sample(), &Map::new()).is_empty());
    }

    #[test]
    fn settings_accept_loose_types_and_name_the_field_when_wrong() {
        let mut config = sample();
        config.0.get_mut("count").unwrap().value = json!("25");
        assert_eq!(int_setting(&config, "count", 1).unwrap(), 25);
        config.0.get_mut("count").unwrap().value = json!("");
        assert_eq!(
            int_setting(&config, "count", 1).unwrap(),
            10,
            "empty falls back to the default"
        );
        config.0.get_mut("count").unwrap().value = json!("many");
        let err = int_setting(&config, "count", 1).unwrap_err().to_string();
        assert!(err.contains("'count'") && err.contains("'many'"), "{err}");
        assert_eq!(int_setting(&config, "missing", 7).unwrap(), 7);
        config.0.get_mut("on").unwrap().value = json!("no");
        assert!(!bool_setting(&config, "on", true).unwrap());
        assert_eq!(str_setting(&config, "name", "d"), "x");
        let err = int_at_least(&config, "missing", 3, 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("minimum is 5"), "{err}");
    }

    #[test]
    fn registry_has_the_three_sources() {
        assert_eq!(
            builtin().service_types(),
            [
                "directory",
                "external",
                "generator",
                "http_api",
                "mysql",
                "ndjson",
                "postgresql"
            ]
        );
    }
}
