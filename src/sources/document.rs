//! What a source hands the engine: a [`Document`] (id, source timestamp, [`Fields`], an
//! optional deferred content fetch). [`Fields`] is the document's top level: a short list of
//! `(Key, Value)` pairs in the source's order, not a hash map. A document has a handful to a few
//! dozen fields, read once or twice (sync rules, the field transform) and then serialised in
//! order: a list is cheaper to build, walk and free than `serde_json::Map` (an `IndexMap` with
//! a SipHash table and an owned `String` per key), and [`Key`] lets a source name its fields
//! with `&'static str` or share one `Arc<str>` per column across every row, so a key costs no
//! allocation per document. Nested values stay `serde_json::Value`.
//! This module owns the document's shape only; it knows nothing of bulk bodies or sinks.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use super::SourceError;

/// One document from a source.
pub struct Document {
    pub id: String,
    /// The source's modification time (ISO-8601), written as `_timestamp`; lets a full sync
    /// skip the content fetch of documents that did not change.
    pub timestamp: Option<String>,
    pub fields: Fields,
    /// Fetches the expensive part (file text, attachment) only when the engine decides the
    /// document must be (re)indexed. Its fields are merged into `fields`.
    pub content: Option<LazyContent>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("fields", &self.fields.len())
            .field("lazy_content", &self.content.is_some())
            .finish()
    }
}

impl Document {
    pub fn new(id: impl Into<String>, fields: impl Into<Fields>) -> Self {
        Self {
            id: id.into(),
            timestamp: None,
            fields: fields.into(),
            content: None,
        }
    }
}

/// A deferred content fetch.
pub type LazyContent =
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<Fields, SourceError>> + Send>> + Send>;

/// A field name: a literal, a name shared by every row of a table, or one of its own.
#[derive(Clone)]
pub enum Key {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
}

impl Key {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Static(s) => s,
            Key::Shared(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Key {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Key {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Key {
    fn from(s: &'static str) -> Self {
        Key::Static(s)
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key::Owned(s)
    }
}

impl From<Arc<str>> for Key {
    fn from(s: Arc<str>) -> Self {
        Key::Shared(s)
    }
}

impl From<&Arc<str>> for Key {
    fn from(s: &Arc<str>) -> Self {
        Key::Shared(Arc::clone(s))
    }
}

impl From<Key> for String {
    fn from(key: Key) -> Self {
        match key {
            Key::Owned(s) => s,
            other => other.as_str().to_string(),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A document's top-level fields, in order, each key once.
///
/// Lookups walk the list: with the few fields a document has, that beats hashing the key.
/// Equality ignores order, as `serde_json::Map`'s does.
#[derive(Clone, Default)]
pub struct Fields {
    entries: Vec<(Key, Value)>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k.as_str() == key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key`, keeping its place when it is already there (as `Map::insert` does).
    /// Returns the value it replaced.
    pub fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.position(&key) {
            Some(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Appends a field the caller knows is not there yet (a source's own distinct literal
    /// names), without looking. Only debug builds check: a key pushed twice would reach the
    /// bulk body twice, which Elasticsearch may refuse (the document then goes to the
    /// dead-letter queue), so anything not known distinct goes through [`Fields::insert`].
    pub fn push_new(&mut self, key: impl Into<Key>, value: Value) {
        let key = key.into();
        debug_assert!(
            !self.contains_key(&key),
            "field '{}' pushed twice",
            key.as_str()
        );
        self.entries.push((key, value));
    }

    /// Takes `key` out, the other fields keeping their order.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|at| self.entries.remove(at).1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&str, &mut Value)> {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The fields as a JSON object (for the places that keep a document as a `Value`: an
    /// invalid record's raw form, tests).
    pub fn into_map(self) -> Map<String, Value> {
        let mut map = Map::with_capacity(self.entries.len());
        for (k, v) in self.entries {
            map.insert(String::from(k), v);
        }
        map
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.into_map())
    }
}

/// A table's (or a query's) column names as shared keys, made once per result set, so the
/// fields of each row cost no key allocation. It knows which names repeat an earlier one: a
/// query may name two columns alike, and then the later one replaces the earlier in place,
/// as a map would; only those columns look for their name in the row.
#[derive(Debug, Clone, Default)]
pub struct ColumnKeys {
    keys: Vec<Key>,
    /// Per column: its name is an earlier column's too.
    repeats: Vec<bool>,
}

impl ColumnKeys {
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let keys: Vec<Key> = names
            .into_iter()
            .map(|n| Key::Shared(Arc::from(n.as_ref())))
            .collect();
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let repeats = keys.iter().map(|k| !seen.insert(k.as_str())).collect();
        Self { keys, repeats }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Key> {
        self.keys.iter()
    }

    /// Sets column `i` of a row being built in `fields` (nothing for a column that is not
    /// there).
    pub fn set(&self, fields: &mut Fields, i: usize, value: Value) {
        let Some(key) = self.keys.get(i) else { return };
        if self.repeats.get(i).copied().unwrap_or(true) {
            fields.insert(key.clone(), value);
        } else {
            fields.entries.push((key.clone(), value));
        }
    }
}

impl<K: Into<Key>> Extend<(K, Value)> for Fields {
    /// Each pair as [`Fields::insert`]: a key already there is replaced in place. Each
    /// insert walks the fields, so this is for merging a few fields (lazy content), not for
    /// building a wide document: a JSON object converts with `From` in one pass.
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// Through [`Fields::insert`], as `Extend`: for a few fields.
impl<K: Into<Key>> FromIterator<(K, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut fields = Fields::new();
        fields.extend(iter);
        fields
    }
}

impl IntoIterator for Fields {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Key, Value)>,
        fn(&'a (Key, Value)) -> (&'a str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl From<Map<String, Value>> for Fields {
    /// A JSON object's keys are already distinct: moved over as they are, no lookups.
    fn from(map: Map<String, Value>) -> Self {
        Self {
            entries: map.into_iter().map(|(k, v)| (Key::Owned(k), v)).collect(),
        }
    }
}

impl From<Fields> for Map<String, Value> {
    fn from(fields: Fields) -> Self {
        fields.into_map()
    }
}

impl From<Fields> for Value {
    fn from(fields: Fields) -> Self {
        fields.into_value()
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;
    /// `Value::Null` for a missing key, as `serde_json::Map`'s `Value` indexing does.
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl PartialEq<Map<String, Value>> for Fields {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Up to this many fields an object is read straight into the list, each key looked for
/// among those before it; past it, into a hash map, so an object of many thousand fields
/// (hostile or not) stays linear.
const LINEAR_FIELDS: usize = 32;

/// Reads a JSON object as [`Fields`] with `Map`'s meaning (a key given twice keeps its first
/// place and its last value), without `Map`'s hash table for the usual handful of fields:
/// for an ndjson document the table's hashing and inserts were a tenth of the sync's CPU.
struct FieldsVisitor;

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map")
    }

    // As `Map`'s visitor: a unit is an empty map.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Fields, E> {
        Ok(Fields::new())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
        let hint = access.size_hint().unwrap_or(0).min(LINEAR_FIELDS);
        let mut fields = Fields::with_capacity(hint);
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value::<Value>()?;
            if fields.len() < LINEAR_FIELDS {
                fields.insert(key, value);
                continue;
            }
            let mut map = fields.into_map();
            map.insert(key, value);
            while let Some((key, value)) = access.next_entry::<String, Value>()? {
                map.insert(key, value);
            }
            return Ok(Fields::from(map));
        }
        Ok(fields)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// `Fields` read straight from JSON, below and past [`LINEAR_FIELDS`], are what reading
    /// a `Map` gives: keys in first-seen order, the last value of a key given twice.
    #[test]
    fn fields_read_from_json_as_a_map_reads_them() {
        for n in [0usize, 1, 5, 31, 32, 33, 40, 100, 1000] {
            // Every third key comes back later with a new value; one nested object.
            let mut text = String::from("{");
            for i in 0..n {
                text.push_str(&format!("\"k{i}\":{i},"));
                if i % 3 == 0 {
                    text.push_str(&format!("\"k{}\":\"again {i}\",", i / 2));
                }
            }
            text.push_str("\"nested\":{\"b\":1,\"a\":[1,{\"x\":null}]}}");
            let fields: Fields = serde_json::from_str(&text).unwrap();
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            assert_eq!(
                fields.keys().collect::<Vec<_>>(),
                map.keys().map(String::as_str).collect::<Vec<_>>(),
                "{n} fields"
            );
            assert_eq!(fields, map, "{n} fields");
        }
        for bad in ["[1]", "\"a\"", "{\"a\":}", "{\"a\":1", "{1:2}"] {
            assert!(serde_json::from_str::<Fields>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn insert_replaces_in_place_and_remove_keeps_the_order() {
        let mut fields = Fields::new();
        fields.insert("a", json!(1));
        fields.insert(String::from("b"), json!(2));
        fields.insert(Arc::<str>::from("c"), json!(3));
        assert_eq!(fields.insert("a", json!(10)), Some(json!(1)));
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(fields.remove("b"), Some(json!(2)));
        assert_eq!(fields.remove("b"), None);
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(fields["a"], json!(10));
        assert_eq!(fields["missing"], Value::Null);
        assert!(fields.contains_key("c") && !fields.contains_key("b"));
    }

    #[test]
    fn serialises_in_order_as_the_map_would() {
        let map = object(json!({"z": 1, "a": {"nested": [1, "x"]}, "m": null, "é\"": "\u{1}"}));
        let fields = Fields::from(map.clone());
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(fields.clone().into_map(), map);
        assert_eq!(fields, map);
        let back: Fields = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(back, fields);
    }

    #[test]
    fn equality_ignores_order_but_not_values() {
        let a: Fields = [("x", json!(1)), ("y", json!(2))].into_iter().collect();
        let b: Fields = [("y", json!(2)), ("x", json!(1))].into_iter().collect();
        let c: Fields = [("y", json!(2)), ("x", json!(3))].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, Fields::new());
    }

    #[test]
    fn column_keys_share_names_and_keep_the_last_of_a_repeated_one() {
        let distinct = ColumnKeys::new(["id", "name"]);
        let mut row = Fields::new();
        distinct.set(&mut row, 0, json!(1));
        distinct.set(&mut row, 1, json!("a"));
        distinct.set(&mut row, 2, json!("no such column"));
        assert_eq!(row, Fields::from(object(json!({"id": 1, "name": "a"}))));
        let repeated = ColumnKeys::new(["id", "id", "x"]);
        let mut row = Fields::new();
        for (i, v) in [json!(1), json!(2), json!(3)].into_iter().enumerate() {
            repeated.set(&mut row, i, v);
        }
        assert_eq!(row.keys().collect::<Vec<_>>(), ["id", "x"]);
        assert_eq!(row["id"], json!(2));
        // Every row holds the one name of each column, not a copy.
        let (mut a, mut b) = (Fields::new(), Fields::new());
        distinct.set(&mut a, 1, json!("a"));
        distinct.set(&mut b, 1, json!("b"));
        let shared = |f: &Fields| match f.entries.first() {
            Some((Key::Shared(name), _)) => Some(Arc::clone(name)),
            _ => None,
        };
        let (ka, kb) = (shared(&a).unwrap(), shared(&b).unwrap());
        assert!(Arc::ptr_eq(&ka, &kb));
    }

    #[test]
    fn extend_overwrites_known_keys_and_appends_new_ones() {
        let mut fields: Fields = [("title", json!("t")), ("body", json!(""))]
            .into_iter()
            .collect();
        let content = Fields::from(object(json!({"body": "text", "pages": 2})));
        fields.extend(content);
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["title", "body", "pages"]
        );
        assert_eq!(fields["body"], json!("text"));
    }
}
