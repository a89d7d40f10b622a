//! Validation of configuration values against their fields, shared by `connectors set`, the
//! console's editor and the engine: type (`str`/`int`/`list`/`bool`), dropdown `options`,
//! `required` (only for fields whose `depends_on` holds), and `validations` (`less_than`,
//! `greater_than`, `list_type`, `included_in`, `regex`), with the connectors framework's
//! meaning. Every problem names the field and the rule.

use super::config_field::{is_empty_value, loosely_equal, value_text};
use super::{ConfigField, Configuration, DisplayType, FieldType, ValidationType};
use serde_json::{Map, Number, Value};
use std::fmt;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub key: String,
    /// The rule that failed: `type`, `options`, `required`, `less_than`, `unknown`, ...
    pub rule: String,
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.key, self.message, self.rule)
    }
}

fn issue(key: &str, rule: &str, message: impl Into<String>) -> FieldIssue {
    FieldIssue {
        key: key.to_string(),
        rule: rule.to_string(),
        message: message.into(),
    }
}

/// Parses text typed by a person (`key=value` on the command line, a form input) into the
/// JSON value the field's type asks for. Sensitive values never appear in the message.
pub fn parse_input(key: &str, field: &ConfigField, raw: &str) -> Result<Value, FieldIssue> {
    let shown = if field.sensitive {
        "the value".to_string()
    } else {
        format!("'{raw}'")
    };
    match field.field_type {
        FieldType::Int => {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                return Ok(Value::Null);
            }
            trimmed
                .parse::<i64>()
                .map(|n| Value::Number(Number::from(n)))
                .map_err(|_| issue(key, "type", format!("{shown} is not a whole number")))
        }
        FieldType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(issue(
                key,
                "type",
                format!("{shown} is not a boolean (true/false)"),
            )),
        },
        FieldType::List => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
        FieldType::Str | FieldType::Unknown => Ok(Value::String(raw.to_string())),
    }
}

/// Checks a whole set of new values against a configuration: unknown keys, types, options,
/// then the merged configuration's required fields and validations. Nothing is partial: the
/// caller saves only when this returns no issue.
pub fn validate_update(config: &Configuration, values: &Map<String, Value>) -> Vec<FieldIssue> {
    let mut issues: Vec<FieldIssue> = values
        .keys()
        .filter(|k| config.get(k).is_none())
        .map(|k| {
            let known: Vec<_> = config.0.keys().map(String::as_str).collect();
            issue(
                k,
                "unknown",
                format!("no such field; known fields: {}", known.join(", ")),
            )
        })
        .collect();
    if !issues.is_empty() {
        return issues;
    }
    let mut merged = config.clone();
    for (key, value) in values {
        if let Some(field) = merged.0.get_mut(key) {
            field.value = value.clone();
        }
    }
    for key in values.keys() {
        issues.extend(validate_field(&merged, key));
    }
    // A change can make another field apply (depends_on) and so become required.
    for (key, _) in merged.fields_in_order() {
        if !values.contains_key(key) {
            issues.extend(check_required(&merged, key));
        }
    }
    issues
}

/// Every issue of one field of a configuration (nothing when the field does not apply).
pub fn validate_field(config: &Configuration, key: &str) -> Vec<FieldIssue> {
    let Some(field) = config.get(key) else {
        return vec![issue(key, "unknown", "no such field")];
    };
    if !config.is_active(key) {
        return Vec::new();
    }
    if let Some(required) = check_required(config, key) {
        return vec![required];
    }
    let value = match config.effective_value(key) {
        Some(v) if !is_empty_value(v) => v,
        _ => return Vec::new(),
    };
    let label = field.display_label(key);
    let mut issues = Vec::new();
    if let Some(problem) = check_type(key, field, value) {
        issues.push(problem);
        return issues;
    }
    if field.display == DisplayType::Dropdown && !field.options.is_empty() {
        let allowed = field.options.iter().any(|o| loosely_equal(&o.value, value));
        if !allowed {
            let names: Vec<_> = field.options.iter().map(|o| value_text(&o.value)).collect();
            issues.push(issue(
                key,
                "options",
                format!("'{label}' must be one of: {}", names.join(", ")),
            ));
        }
    }
    for rule in &field.validations {
        if let Some(problem) = check_rule(key, &label, field, value, rule.kind, &rule.constraint) {
            issues.push(problem);
        }
    }
    issues
}

fn check_required(config: &Configuration, key: &str) -> Option<FieldIssue> {
    let field = config.get(key)?;
    if !field.required || !config.is_active(key) {
        return None;
    }
    let empty = config.effective_value(key).is_none_or(is_empty_value);
    empty.then(|| {
        issue(
            key,
            "required",
            format!("'{}' cannot be empty", field.display_label(key)),
        )
    })
}

fn check_type(key: &str, field: &ConfigField, value: &Value) -> Option<FieldIssue> {
    let label = field.display_label(key);
    let ok = match field.field_type {
        FieldType::Int => as_number(value).is_some_and(|n| n.fract() == 0.0),
        FieldType::Bool => as_bool(value).is_some(),
        FieldType::List => matches!(value, Value::Array(_) | Value::String(_)),
        FieldType::Str | FieldType::Unknown => true,
    };
    (!ok).then(|| {
        issue(
            key,
            "type",
            format!("'{label}' must be of type {}", field.field_type.as_str()),
        )
    })
}

fn check_rule(
    key: &str,
    label: &str,
    field: &ConfigField,
    value: &Value,
    kind: ValidationType,
    constraint: &Value,
) -> Option<FieldIssue> {
    let shown = if field.sensitive {
        "value".to_string()
    } else {
        format!("value '{}'", value_text(value))
    };
    match kind {
        ValidationType::LessThan | ValidationType::GreaterThan => {
            let limit = as_number(constraint)?;
            // Numbers compare by value, text and lists by length (as the framework's forms do).
            let measured = as_number(value).or_else(|| match value {
                Value::String(s) => Some(s.chars().count() as f64),
                Value::Array(items) => Some(items.len() as f64),
                _ => None,
            })?;
            let (ok, word, rule) = if kind == ValidationType::LessThan {
                (measured < limit, "less", "less_than")
            } else {
                (measured > limit, "greater", "greater_than")
            };
            (!ok).then(|| {
                issue(
                    key,
                    rule,
                    format!("'{label}' {shown} should be {word} than {constraint}"),
                )
            })
        }
        ValidationType::ListType => {
            let expected = constraint.as_str().unwrap_or("str");
            let bad = list_items(value).into_iter().find(|item| match expected {
                "int" => as_number(item).is_none_or(|n| n.fract() != 0.0),
                _ => !item.is_string(),
            });
            bad.map(|item| {
                issue(
                    key,
                    "list_type",
                    format!(
                        "'{label}' item '{}' is not of type {expected}",
                        value_text(&item)
                    ),
                )
            })
        }
        ValidationType::IncludedIn => {
            let allowed = constraint.as_array()?;
            let items = if value.is_array() || field.field_type == FieldType::List {
                list_items(value)
            } else {
                vec![value.clone()]
            };
            let bad = items
                .into_iter()
                .find(|item| !allowed.iter().any(|a| loosely_equal(a, item)));
            bad.map(|item| {
                let names: Vec<_> = allowed.iter().map(value_text).collect();
                let what = if field.sensitive {
                    "value".to_string()
                } else {
                    format!("'{}'", value_text(&item))
                };
                issue(
                    key,
                    "included_in",
                    format!("'{label}' {what} is not one of: {}", names.join(", ")),
                )
            })
        }
        ValidationType::Regex => {
            let pattern = constraint.as_str()?;
            let anchored = format!("^(?:{pattern})$");
            let re = match regex::Regex::new(&anchored) {
                Ok(re) => re,
                Err(_) => {
                    return Some(issue(
                        key,
                        "regex",
                        format!("'{label}' has an invalid regex '{pattern}'"),
                    ));
                }
            };
            let text = value_text(value);
            (!re.is_match(&text)).then(|| {
                issue(
                    key,
                    "regex",
                    format!("'{label}' {shown} does not match '{pattern}'"),
                )
            })
        }
        ValidationType::Unknown => None,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A list value as items: arrays as they are, strings split on commas (the framework accepts
/// both).
fn list_items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(s.to_string()))
            })
            .collect(),
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Configuration {
        serde_json::from_value(json!({
            "host": {"label": "Host", "order": 1, "required": true, "value": "db"},
            "port": {"label": "Port", "type": "int", "display": "numeric", "order": 2, "value": 5432,
                     "validations": [{"type": "greater_than", "constraint": 0}, {"type": "less_than", "constraint": 65536}]},
            "mode": {"label": "Mode", "display": "dropdown", "order": 3, "value": "fast",
                     "options": [{"label": "Fast", "value": "fast"}, {"label": "Safe", "value": "safe"}]},
            "use_ssl": {"label": "SSL", "type": "bool", "display": "toggle", "order": 4, "value": false},
            "ca": {"label": "CA", "order": 5, "value": "", "depends_on": [{"field": "use_ssl", "value": true}]},
            "tables": {"label": "Tables", "type": "list", "order": 6, "value": ["a"],
                       "validations": [{"type": "list_type", "constraint": "str"}, {"type": "included_in", "constraint": ["a", "b"]}]},
            "code": {"label": "Code", "order": 7, "value": "AB12", "validations": [{"type": "regex", "constraint": "[A-Z]{2}[0-9]+"}]},
            "secret": {"label": "Secret", "order": 8, "sensitive": true, "value": "x",
                       "validations": [{"type": "regex", "constraint": "[a-z]+"}]}
        }))
        .unwrap()
    }

    fn update(pairs: &[(&str, Value)]) -> Vec<FieldIssue> {
        let values: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        validate_update(&config(), &values)
    }

    fn rules(issues: &[FieldIssue]) -> Vec<(String, String)> {
        issues
            .iter()
            .map(|i| (i.key.clone(), i.rule.clone()))
            .collect()
    }

    #[test]
    fn valid_update_has_no_issue() {
        assert!(update(&[("port", json!(9200)), ("mode", json!("safe"))]).is_empty());
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(
            rules(&update(&[("port", json!(70000))])),
            [("port".into(), "less_than".into())]
        );
        assert_eq!(
            rules(&update(&[("port", json!(0))])),
            [("port".into(), "greater_than".into())]
        );
        assert_eq!(
            rules(&update(&[("port", json!("x"))])),
            [("port".into(), "type".into())]
        );
        assert_eq!(
            rules(&update(&[("mode", json!("turbo"))])),
            [("mode".into(), "options".into())]
        );
        assert_eq!(
            rules(&update(&[("tables", json!(["a", "c"]))])),
            [("tables".into(), "included_in".into())]
        );
        assert_eq!(
            rules(&update(&[("tables", json!([1]))])),
            [
                ("tables".into(), "list_type".into()),
                ("tables".into(), "included_in".into())
            ]
        );
        assert_eq!(
            rules(&update(&[("code", json!("ab"))])),
            [("code".into(), "regex".into())]
        );
        assert_eq!(
            rules(&update(&[("host", json!(""))])),
            [("host".into(), "required".into())]
        );
        assert_eq!(
            rules(&update(&[("nope", json!(1))])),
            [("nope".into(), "unknown".into())]
        );
    }

    #[test]
    fn depends_on_makes_a_field_required_only_when_it_applies() {
        assert!(update(&[("ca", json!(""))]).is_empty());
        assert_eq!(
            rules(&update(&[("use_ssl", json!(true))])),
            [("ca".into(), "required".into())]
        );
    }

    #[test]
    fn sensitive_values_never_appear_in_messages() {
        let issues = update(&[("secret", json!("NOT-LOWER-9"))]);
        assert_eq!(rules(&issues), [("secret".into(), "regex".into())]);
        assert!(
            !issues[0].message.contains("NOT-LOWER-9"),
            "{}",
            issues[0].message
        );
        let field = config().get("secret").unwrap().clone();
        let mut int_field = field.clone();
        int_field.field_type = FieldType::Int;
        let err = parse_input("secret", &int_field, "hunter2").unwrap_err();
        assert!(!err.message.contains("hunter2"));
    }

    #[test]
    fn parse_input_follows_the_type() {
        let c = config();
        assert_eq!(
            parse_input("port", c.get("port").unwrap(), "9200").unwrap(),
            json!(9200)
        );
        assert_eq!(
            parse_input("use_ssl", c.get("use_ssl").unwrap(), "yes").unwrap(),
            json!(true)
        );
        assert_eq!(
            parse_input("tables", c.get("tables").unwrap(), "a, b,").unwrap(),
            json!(["a", "b"])
        );
        assert!(parse_input("port", c.get("port").unwrap(), "9k").is_err());
    }
}
