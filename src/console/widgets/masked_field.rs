//! How a configuration value shows outside the editor: sensitive values are bullets of a
//! fixed length (so not even the length shows), empty ones a dash.

use crate::model::{ConfigField, is_empty_value, value_text};
use crate::secret::MASK;

/// The text of a field's value for display; never the value of a sensitive field.
pub fn display(field: &ConfigField) -> String {
    if is_empty_value(&field.value) {
        return "—".to_string();
    }
    if field.sensitive {
        return MASK.to_string();
    }
    value_text(&field.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_values_are_bullets() {
        let f: ConfigField =
            serde_json::from_value(json!({"value": "hunter2", "sensitive": true})).unwrap();
        assert_eq!(display(&f), MASK);
        let f: ConfigField = serde_json::from_value(json!({"value": ["a", "b"]})).unwrap();
        assert_eq!(display(&f), "a,b");
        let f: ConfigField = serde_json::from_value(json!({"value": ""})).unwrap();
        assert_eq!(display(&f), "—");
    }
}
