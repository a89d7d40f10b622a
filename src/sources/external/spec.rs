//! An Airbyte `connectionSpecification` (JSON schema) as configuration fields, and back:
//! each top-level property of a simple type becomes a field keyed `config.<property>`
//! (string/integer/boolean/array → str/int/bool/list, `airbyte_secret` → sensitive, `title`
//! → label, `description` → tooltip, `enum` → dropdown, `default`, `order`, `required`), and
//! the values of those fields are laid over the `config` JSON when the program runs. Nested
//! objects (`oneOf` choices such as credentials) stay in the `config` JSON.

use crate::model::{
    ConfigField, Configuration, DisplayType, FieldType, SelectOption, Validation, ValidationType,
    is_empty_value,
};
use serde_json::{Map, Number, Value};

/// The prefix of the keys of fields that come from the program's spec.
pub(crate) const SPEC_PREFIX: &str = "config.";

/// A JSON schema `number` is kept as text checked by this pattern, and sent as a number.
const NUMBER_PATTERN: &str = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?";

/// The fields of a spec's `connectionSpecification`, numbered from `first_order`, and the
/// names of the properties that could not become fields.
pub(crate) fn fields_from_spec(
    spec: &Value,
    first_order: i64,
) -> (Vec<(String, ConfigField)>, Vec<String>) {
    let schema = spec.get("connectionSpecification").unwrap_or(spec);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return (Vec::new(), Vec::new());
    };
    let mut fields = Vec::new();
    let mut skipped = Vec::new();
    for (name, property) in properties {
        match field_from_property(name, property, required.contains(&name.as_str())) {
            Some(field) => fields.push((name.clone(), property_order(property), field)),
            None => skipped.push(name.clone()),
        }
    }
    // Spec order first (properties without one after), then the spec's own listing order.
    fields.sort_by_key(|(_, order, _)| order.unwrap_or(i64::MAX));
    let numbered = fields
        .into_iter()
        .enumerate()
        .map(|(i, (name, _, mut field))| {
            field.order = Some(first_order + i as i64);
            (format!("{SPEC_PREFIX}{name}"), field)
        })
        .collect();
    (numbered, skipped)
}

fn property_order(property: &Value) -> Option<i64> {
    property.get("order").and_then(Value::as_i64)
}

/// The schema type of a property: the first non-null of `type` (a string or a list).
fn schema_type(property: &Value) -> Option<&str> {
    match property.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

fn field_from_property(name: &str, property: &Value, required: bool) -> Option<ConfigField> {
    let mut field = ConfigField {
        label: property
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string(),
        tooltip: property
            .get("description")
            .and_then(Value::as_str)
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty()),
        sensitive: property
            .get("airbyte_secret")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..ConfigField::default()
    };
    let items = property.get("items");
    match schema_type(property)? {
        "string" => {
            field.field_type = FieldType::Str;
            field.display = if property.get("multiline").and_then(Value::as_bool) == Some(true) {
                DisplayType::Textarea
            } else {
                DisplayType::Textbox
            };
        }
        "integer" => {
            field.field_type = FieldType::Int;
            field.display = DisplayType::Numeric;
            add_bounds(&mut field, property);
        }
        "number" => {
            field.field_type = FieldType::Str;
            field.display = DisplayType::Textbox;
            field.validations.push(Validation {
                kind: ValidationType::Regex,
                constraint: Value::from(NUMBER_PATTERN),
            });
        }
        "boolean" => {
            field.field_type = FieldType::Bool;
            field.display = DisplayType::Toggle;
        }
        "array" => {
            let item_type = items.and_then(schema_type);
            if !matches!(item_type, None | Some("string" | "integer")) {
                return None;
            }
            field.field_type = FieldType::List;
            field.display = DisplayType::Textbox;
            if item_type == Some("integer") {
                field.validations.push(Validation {
                    kind: ValidationType::ListType,
                    constraint: Value::from("int"),
                });
            }
            if let Some(choices) = items.and_then(|i| i.get("enum")).and_then(Value::as_array) {
                field.validations.push(Validation {
                    kind: ValidationType::IncludedIn,
                    constraint: Value::Array(choices.clone()),
                });
            }
        }
        _ => return None,
    }
    if let Some(choices) = property.get("enum").and_then(Value::as_array) {
        field.display = DisplayType::Dropdown;
        field.options = choices
            .iter()
            .map(|c| SelectOption {
                label: crate::model::value_text(c),
                value: c.clone(),
            })
            .collect();
    }
    let default = property.get("default").filter(|d| !d.is_null()).cloned();
    field.required = required && default.is_none();
    if field.sensitive {
        field.value = Value::String(String::new());
    } else {
        if let Some(default) = default {
            field.value = default.clone();
            field.default_value = default;
        }
        field.placeholder = property
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .map(crate::model::value_text);
    }
    Some(field)
}

// JSON schema bounds are inclusive, the framework's validations strict.
fn add_bounds(field: &mut ConfigField, property: &Value) {
    if let Some(min) = property.get("minimum").and_then(Value::as_i64) {
        field.validations.push(Validation {
            kind: ValidationType::GreaterThan,
            constraint: Value::from(min.saturating_sub(1)),
        });
    }
    if let Some(max) = property.get("maximum").and_then(Value::as_i64) {
        field.validations.push(Validation {
            kind: ValidationType::LessThan,
            constraint: Value::from(max.saturating_add(1)),
        });
    }
}

/// Lays the values of the `config.*` fields over `base` (the `config` JSON). Empty values are
/// left out so the program applies its own defaults.
pub(crate) fn overlay_spec_values(
    config: &Configuration,
    base: &mut Map<String, Value>,
) -> Result<(), (String, String)> {
    for (key, field) in &config.0 {
        let Some(name) = key.strip_prefix(SPEC_PREFIX) else {
            continue;
        };
        let Some(value) = config.effective_value(key).filter(|v| !is_empty_value(v)) else {
            continue;
        };
        let json = typed_value(field, value).map_err(|reason| (key.clone(), reason))?;
        base.insert(name.to_string(), json);
    }
    Ok(())
}

/// A field's value as the JSON type its schema asked for.
fn typed_value(field: &ConfigField, value: &Value) -> Result<Value, String> {
    let shown = || {
        if field.sensitive {
            "the value".to_string()
        } else {
            format!("'{}'", crate::model::value_text(value))
        }
    };
    match field.field_type {
        FieldType::Int => number(value)
            .filter(|n| n.is_i64() || n.is_u64())
            .map(Value::Number)
            .ok_or_else(|| format!("{} is not a whole number", shown())),
        FieldType::Bool => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
                "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
                _ => Err(format!("{} is not true or false", shown())),
            },
            _ => Err(format!("{} is not true or false", shown())),
        },
        FieldType::List => {
            let ints = field
                .validations
                .iter()
                .any(|v| v.kind == ValidationType::ListType && v.constraint == "int");
            let items: Vec<Value> = match value {
                Value::Array(items) => items.clone(),
                Value::String(s) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Value::from)
                    .collect(),
                other => vec![other.clone()],
            };
            if !ints {
                return Ok(Value::Array(items));
            }
            items
                .iter()
                .map(|item| {
                    number(item)
                        .filter(|n| n.is_i64() || n.is_u64())
                        .map(Value::Number)
                        .ok_or_else(|| {
                            format!(
                                "item '{}' is not a whole number",
                                crate::model::value_text(item)
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        FieldType::Str | FieldType::Unknown => {
            let is_number = field
                .validations
                .iter()
                .any(|v| v.kind == ValidationType::Regex && v.constraint == NUMBER_PATTERN);
            if is_number {
                return number(value)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{} is not a number", shown()));
            }
            Ok(match value {
                Value::String(s) => Value::String(s.clone()),
                other => other.clone(),
            })
        }
    }
}

fn number(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Some(Number::from(i));
            }
            s.parse::<f64>().ok().and_then(Number::from_f64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"connectionSpecification": {
            "type": "object",
            "required": ["api_key", "count"],
            "properties": {
                "count": {"type": "integer", "title": "Count", "description": "How many", "default": 1000, "minimum": 1, "order": 0},
                "api_key": {"type": "string", "title": "API key", "airbyte_secret": true, "order": 1},
                "ratio": {"type": ["null", "number"], "order": 2},
                "flag": {"type": "boolean", "default": false},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast", "examples": ["fast"]},
                "credentials": {"type": "object", "oneOf": []}
            }
        }})
    }

    #[test]
    fn properties_become_fields_in_spec_order() {
        let (fields, skipped) = fields_from_spec(&spec(), 10);
        let keys: Vec<_> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "config.count",
                "config.api_key",
                "config.ratio",
                "config.flag",
                "config.ids",
                "config.mode"
            ]
        );
        assert_eq!(skipped, ["credentials"]);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        let count = get("config.count");
        assert_eq!(
            (count.field_type, count.display, count.order),
            (FieldType::Int, DisplayType::Numeric, Some(10))
        );
        assert_eq!(
            (count.label.as_str(), count.tooltip.as_deref()),
            ("Count", Some("How many"))
        );
        assert_eq!(
            (count.value.clone(), count.required),
            (json!(1000), false),
            "a default makes it optional"
        );
        assert_eq!(count.validations[0].constraint, json!(0));
        let key = get("config.api_key");
        assert!(key.sensitive && key.required && key.default_value.is_null());
        assert_eq!(get("config.flag").field_type, FieldType::Bool);
        assert_eq!(get("config.ids").field_type, FieldType::List);
        let mode = get("config.mode");
        assert_eq!(
            (mode.display, mode.options.len()),
            (DisplayType::Dropdown, 2)
        );
        assert_eq!(mode.placeholder.as_deref(), Some("fast"));
    }

    #[test]
    fn values_go_back_with_their_json_types() {
        let (fields, _) = fields_from_spec(&spec(), 1);
        let mut config = Configuration(fields.into_iter().collect());
        let set = |c: &mut Configuration, k: &str, v: Value| c.0.get_mut(k).unwrap().value = v;
        set(&mut config, "config.count", json!("25"));
        set(&mut config, "config.api_key", json!("s3cret"));
        set(&mut config, "config.ratio", json!("0.5"));
        set(&mut config, "config.ids", json!("1, 2"));
        set(&mut config, "config.flag", json!("yes"));
        let mut base: Map<String, Value> =
            serde_json::from_value(json!({"count": 1, "credentials": {"a": 1}})).unwrap();
        overlay_spec_values(&config, &mut base).unwrap();
        assert_eq!(
            Value::Object(base),
            json!({"count": 25, "credentials": {"a": 1}, "api_key": "s3cret", "ratio": 0.5, "flag": true, "ids": [1, 2], "mode": "fast"})
        );
        set(&mut config, "config.ids", json!("1, x"));
        let err = overlay_spec_values(&config, &mut Map::new()).unwrap_err();
        assert_eq!(
            err,
            (
                "config.ids".to_string(),
                "item 'x' is not a whole number".to_string()
            )
        );
    }
}
