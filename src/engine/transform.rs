//! Field blocking and hashing (Fivetran's column blocking and hashing, for documents): the
//! engine settings' `exclude_fields` are dropped and `hash_fields` replaced by the SHA-256 hex
//! of their value before a document is serialised, so personal data reaches neither the index
//! nor the dead-letter queue (which stores the serialised body). Built once per sync.
//! This module only rewrites field maps; it must not know about batches, sinks or sources.
//!
//! Paths are dotted (`user.email`); a path walks into nested objects and into every object of
//! an array on the way (`contacts.email` covers each contact). A key that itself contains dots
//! (`"user.email": …`) matches too. The document id and `_timestamp` are not fields here and
//! are never changed.

use crate::sources::Fields;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What happens to a matching field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Hash,
}

/// One configured path: the text as written and where its segments start and end in it, so
/// every key tried while walking is a slice of `text` (no allocation).
#[derive(Debug, Clone)]
struct FieldPath {
    text: String,
    /// `(start, end)` of each dot-separated segment in `text`.
    segments: Vec<(usize, usize)>,
    action: Action,
}

impl FieldPath {
    fn parse(text: &str, action: Action) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == '.' {
                segments.push((start, i));
                start = i + 1;
            }
        }
        segments.push((start, text.len()));
        Some(Self {
            text: text.to_string(),
            segments,
            action,
        })
    }

    /// The key made of segments `from..=to` joined by their dots, as written.
    fn key(&self, from: usize, to: usize) -> &str {
        let (start, _) = self.segments[from];
        let (_, end) = self.segments[to];
        self.text.get(start..end).unwrap_or_default()
    }
}

/// The compiled `exclude_fields` and `hash_fields` of one sync.
#[derive(Debug, Clone)]
pub struct FieldTransform {
    /// Drops first: a field both excluded and hashed is dropped.
    paths: Vec<FieldPath>,
}

impl FieldTransform {
    /// `None` when there is nothing to do, so the pipeline pays nothing.
    pub fn new(exclude: &[String], hash: &[String]) -> Option<Self> {
        let drops = exclude
            .iter()
            .filter_map(|p| FieldPath::parse(p, Action::Drop));
        let hashes = hash
            .iter()
            .filter_map(|p| FieldPath::parse(p, Action::Hash));
        let paths: Vec<FieldPath> = drops.chain(hashes).collect();
        (!paths.is_empty()).then_some(Self { paths })
    }

    /// Drops and hashes the configured fields in place. Allocates only for the hashes it
    /// writes.
    pub fn apply(&self, fields: &mut Fields) {
        self.apply_object(fields);
    }

    fn apply_object<M: Object>(&self, fields: &mut M) {
        for path in &self.paths {
            visit(fields, path, 0);
        }
    }

    /// For a raw value headed for the dead-letter queue: an object is transformed like a
    /// document; text holding a JSON object is transformed and written back as text; anything
    /// else cannot be checked for the configured fields, so it is withheld.
    pub fn apply_to_raw(&self, raw: &mut Value) {
        match raw {
            Value::Object(fields) => self.apply_object(fields),
            Value::String(text) => {
                let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text) else {
                    *raw = Value::String(WITHHELD.to_string());
                    return;
                };
                self.apply_object(&mut fields);
                *raw = Value::String(Value::Object(fields).to_string());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
            Value::Array(_) => *raw = Value::String(WITHHELD.to_string()),
        }
    }
}

/// Stored instead of a raw record the transform cannot see into.
pub const WITHHELD: &str =
    "(withheld: exclude_fields/hash_fields are set and this record is not a JSON object)";

/// [`FieldTransform::apply`] when there is a transform.
pub fn apply(transform: Option<&FieldTransform>, fields: &mut Fields) {
    if let Some(t) = transform {
        t.apply(fields);
    }
}

/// What a path walks: a document's top level ([`Fields`]) and the JSON objects inside it.
trait Object {
    fn field_mut(&mut self, key: &str) -> Option<&mut Value>;
    /// Removes `key`, the other fields keeping their order.
    fn remove_field(&mut self, key: &str);
}

impl Object for Fields {
    fn field_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.get_mut(key)
    }
    fn remove_field(&mut self, key: &str) {
        self.remove(key);
    }
}

impl Object for Map<String, Value> {
    fn field_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.get_mut(key)
    }
    fn remove_field(&mut self, key: &str) {
        self.shift_remove(key);
    }
}

// Applies `path` from segment `from` on to `map`: every way of grouping the remaining
// segments into one literal key (`a.b`) plus a rest is tried, so dotted keys match too.
fn visit<M: Object>(map: &mut M, path: &FieldPath, from: usize) {
    let last = path.segments.len() - 1;
    for to in from..=last {
        let key = path.key(from, to);
        if to == last {
            act(map, key, path.action);
            continue;
        }
        match map.field_mut(key) {
            Some(Value::Object(inner)) => visit(inner, path, to + 1),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        visit(inner, path, to + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

fn act<M: Object>(map: &mut M, key: &str, action: Action) {
    match action {
        Action::Drop => map.remove_field(key),
        Action::Hash => {
            if let Some(value) = map.field_mut(key)
                && !value.is_null()
            {
                *value = Value::String(sha256_hex(value));
            }
        }
    }
}

/// The SHA-256 hex of a value: of a string's bytes, of any other value's JSON text.
pub fn sha256_hex(value: &Value) -> String {
    let digest = match value {
        Value::String(s) => Sha256::digest(s.as_bytes()),
        other => Sha256::digest(other.to_string().as_bytes()),
    };
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields::from(m),
            _ => Fields::new(),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_configured_means_no_transform() {
        assert!(FieldTransform::new(&[], &[]).is_none());
        assert!(FieldTransform::new(&strings(&[" "]), &strings(&[""])).is_none());
    }

    #[test]
    fn the_known_digest() {
        assert_eq!(
            sha256_hex(&json!("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(&json!(123)), sha256_hex(&json!("123")));
    }

    #[test]
    fn dotted_keys_and_nested_objects_both_match() {
        let t = FieldTransform::new(&strings(&["a.b.c"]), &[]).unwrap();
        let mut doc =
            fields(json!({"a": {"b.c": 1, "b": {"c": 2, "d": 3}}, "a.b": {"c": 4}, "a.b.c": 5}));
        t.apply(&mut doc);
        assert_eq!(doc, fields(json!({"a": {"b": {"d": 3}}, "a.b": {}})));
    }

    #[test]
    fn drop_wins_over_hash() {
        let t = FieldTransform::new(&strings(&["x"]), &strings(&["x", "y"])).unwrap();
        let mut doc = fields(json!({"x": "1", "y": null, "z": "2"}));
        t.apply(&mut doc);
        assert_eq!(doc, fields(json!({"y": null, "z": "2"})));
    }

    #[test]
    fn raw_records_are_transformed_or_withheld() {
        let t = FieldTransform::new(&strings(&["ssn"]), &strings(&["email"])).unwrap();
        let mut raw = json!(r#"{"email":"a@b.c","ssn":"1"}"#);
        t.apply_to_raw(&mut raw);
        let back: Value = serde_json::from_str(raw.as_str().unwrap()).unwrap();
        assert_eq!(back, json!({"email": sha256_hex(&json!("a@b.c"))}));
        let mut garbage = json!("{\"email\": \"a@b.c\", oops");
        t.apply_to_raw(&mut garbage);
        assert_eq!(garbage, json!(WITHHELD));
    }
}
