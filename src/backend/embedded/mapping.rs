//! Index mappings of the embedded document store, checked like Elasticsearch checks them:
//! a declared mapping (`{"properties": {"price": {"type": "long"}}}`) refuses values that do
//! not fit (a string that is not a number in a `long`, an object where a scalar is mapped),
//! unmapped fields are mapped dynamically from their first value (so a later mismatch is
//! refused), and `dynamic: strict|false` is honoured. Pure: no database, no I/O.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Root mapping parameters Elasticsearch accepts; anything else is refused like ES does.
const ROOT_PARAMS: &[&str] = &[
    "properties",
    "dynamic",
    "_meta",
    "dynamic_templates",
    "date_detection",
    "numeric_detection",
    "dynamic_date_formats",
    "_source",
    "_routing",
    "runtime",
    "enabled",
    "subobjects",
    "_field_names",
    "_data_stream_timestamp",
];

/// Field names Elasticsearch reserves for metadata; a document may not carry them.
const METADATA_FIELDS: &[&str] = &[
    "_id",
    "_index",
    "_source",
    "_routing",
    "_seq_no",
    "_primary_term",
    "_version",
    "_field_names",
    "_ignored",
    "_doc_count",
    "_tier",
    "_data_stream_timestamp",
    "_nested_path",
];

/// Field types accepted but not checked (their values have structures of their own).
const OPAQUE_TYPES: &[&str] = &[
    "flattened",
    "geo_point",
    "geo_shape",
    "shape",
    "point",
    "binary",
    "dense_vector",
    "sparse_vector",
    "rank_feature",
    "rank_features",
    "semantic_text",
    "completion",
    "token_count",
    "version",
    "alias",
    "histogram",
    "percolator",
    "join",
    "integer_range",
    "float_range",
    "long_range",
    "double_range",
    "date_range",
    "ip_range",
    "aggregate_metric_double",
    "counted_keyword",
    "date_nanos",
    "annotated_text",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dynamic {
    True,
    /// `false` and `runtime`: unmapped fields are kept in the source but neither mapped nor
    /// checked.
    False,
    Strict,
}

/// What a scalar field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarKind {
    /// Whole numbers within `[min, max]`; numeric strings and fractions are coerced like ES.
    Integral {
        min: i128,
        max: i128,
    },
    /// Finite floating-point numbers (numeric strings coerced).
    Floating,
    Boolean,
    /// Any scalar (`keyword`, `text` and their kin).
    AnyScalar,
    /// `strict_date_optional_time||epoch_millis`; `lenient` when a custom format is declared
    /// that this store cannot check.
    Date {
        lenient: bool,
    },
    Ip,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Object(ObjectNode),
    Scalar {
        kind: ScalarKind,
        type_name: String,
        raw: Value,
    },
    /// A type whose values are not checked; its raw mapping is kept as declared.
    Opaque(Value),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ObjectNode {
    /// `None` inherits from the parent.
    dynamic: Option<Dynamic>,
    props: BTreeMap<String, Field>,
    /// The other parameters of the object's mapping, kept to write the mapping back.
    params: Map<String, Value>,
}

/// One step from a document's root to a value, to locate an error in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// Why a document was refused, in Elasticsearch's words.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DocError {
    pub kind: &'static str,
    /// Where the offending value is in the document.
    pub steps: Vec<Step>,
    pub message: String,
}

/// The compiled mapping of one index.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IndexMapping {
    root: ObjectNode,
    date_detection: bool,
}

impl IndexMapping {
    /// An empty, fully dynamic mapping (an auto-created index).
    pub fn empty() -> Self {
        Self {
            root: ObjectNode::default(),
            date_detection: true,
        }
    }

    /// Compiles a mapping definition; the error is a `mapper_parsing_exception` reason.
    pub fn compile(mappings: &Value) -> Result<Self, String> {
        let Value::Object(map) = mappings else {
            return Err(format!(
                "Root mapping definition must be an object, got '{mappings}'"
            ));
        };
        let unsupported: Vec<String> = map
            .iter()
            .filter(|(k, _)| !ROOT_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} : {v}"))
            .collect();
        if !unsupported.is_empty() {
            return Err(format!(
                "Root mapping definition has unsupported parameters:  [{}]",
                unsupported.join(", ")
            ));
        }
        let date_detection = map
            .get("date_detection")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Self {
            root: ObjectNode::compile("_doc", map)?,
            date_detection,
        })
    }

    /// The mapping definition as Elasticsearch would show it, dynamic additions included.
    pub fn to_value(&self) -> Value {
        self.root.to_value()
    }

    /// Checks a document against the mapping and maps its new fields. On error the mapping is
    /// left exactly as it was. Returns whether the mapping grew.
    pub fn check(&mut self, doc: &Map<String, Value>, id: &str) -> Result<bool, DocError> {
        let mut walker = Walker {
            id,
            date_detection: self.date_detection,
            added: Vec::new(),
            steps: Vec::new(),
        };
        let dynamic = self.root.dynamic.unwrap_or(Dynamic::True);
        let mut path = Vec::new();
        match walker.object(&mut self.root, doc, &mut path, dynamic) {
            Ok(()) => Ok(!walker.added.is_empty()),
            Err(message) => {
                for added in walker.added.iter().rev() {
                    self.root.remove(added);
                }
                Err(DocError {
                    kind: message.0,
                    steps: walker.steps,
                    message: message.1,
                })
            }
        }
    }
}

impl ObjectNode {
    fn compile(name: &str, map: &Map<String, Value>) -> Result<Self, String> {
        let mut node = ObjectNode {
            dynamic: None,
            props: BTreeMap::new(),
            params: Map::new(),
        };
        for (key, value) in map {
            match key.as_str() {
                "properties" => {}
                "dynamic" => {
                    node.dynamic = Some(parse_dynamic(value).ok_or_else(|| {
                        format!(
                            "Could not convert [{name}.dynamic] to boolean or 'strict': '{value}'"
                        )
                    })?);
                    node.params.insert(key.clone(), value.clone());
                }
                _ => {
                    node.params.insert(key.clone(), value.clone());
                }
            }
        }
        let Some(properties) = map.get("properties") else {
            return Ok(node);
        };
        let Value::Object(properties) = properties else {
            return Err(format!(
                "Expected map for property [properties] on field [{name}] but got '{properties}'"
            ));
        };
        for (key, raw) in properties {
            let segments: Vec<&str> = key.split('.').collect();
            if segments.iter().any(|s| s.is_empty()) {
                return Err(format!(
                    "field name [{key}] must not contain empty segments"
                ));
            }
            node.insert_compiled(&segments, compile_field(key, raw)?)?;
        }
        Ok(node)
    }

    /// Inserts a compiled field under a dotted path, creating the intermediate objects.
    fn insert_compiled(&mut self, segments: &[&str], field: Field) -> Result<(), String> {
        let Some((last, parents)) = segments.split_last() else {
            return Ok(());
        };
        let mut node = self;
        for parent in parents {
            let entry = node
                .props
                .entry((*parent).to_string())
                .or_insert_with(|| Field::Object(ObjectNode::default()));
            node = match entry {
                Field::Object(child) => child,
                _ => {
                    return Err(format!(
                        "field [{parent}] is mapped as a scalar and cannot hold [{}]",
                        segments.join(".")
                    ));
                }
            };
        }
        node.props.insert((*last).to_string(), field);
        Ok(())
    }

    fn to_value(&self) -> Value {
        let mut out = self.params.clone();
        if !self.props.is_empty() {
            let props: Map<String, Value> = self
                .props
                .iter()
                .map(|(k, f)| (k.clone(), f.to_value()))
                .collect();
            out.insert("properties".into(), Value::Object(props));
        }
        Value::Object(out)
    }

    /// Removes the field at `path` (undoing a dynamic addition); a missing path is ignored.
    fn remove(&mut self, path: &[String]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for parent in parents {
            node = match node.props.get_mut(parent) {
                Some(Field::Object(child)) => child,
                _ => return,
            };
        }
        node.props.remove(last);
    }
}

impl Field {
    fn to_value(&self) -> Value {
        match self {
            Field::Object(node) => node.to_value(),
            Field::Scalar { raw, .. } | Field::Opaque(raw) => raw.clone(),
        }
    }

    /// The mapping Elasticsearch's dynamic mapping gives a first value; `None` for values that
    /// map nothing (null).
    fn infer(value: &Value, date_detection: bool) -> Option<Field> {
        let scalar = |type_name: &str, raw: Value| compile_field(type_name, &raw).ok();
        match value {
            Value::Null | Value::Array(_) => None,
            Value::Bool(_) => scalar("boolean", serde_json::json!({"type": "boolean"})),
            Value::Number(n) if n.is_i64() => scalar("long", serde_json::json!({"type": "long"})),
            Value::Number(_) => scalar("float", serde_json::json!({"type": "float"})),
            Value::String(s) if date_detection && looks_like_date(s) => {
                scalar("date", serde_json::json!({"type": "date"}))
            }
            Value::String(_) => scalar(
                "text",
                serde_json::json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}),
            ),
            Value::Object(_) => Some(Field::Object(ObjectNode::default())),
        }
    }
}

fn parse_dynamic(value: &Value) -> Option<Dynamic> {
    match value {
        Value::Bool(true) => Some(Dynamic::True),
        Value::Bool(false) => Some(Dynamic::False),
        Value::String(s) => match s.as_str() {
            "true" => Some(Dynamic::True),
            "false" | "runtime" => Some(Dynamic::False),
            "strict" => Some(Dynamic::Strict),
            _ => None,
        },
        _ => None,
    }
}

fn compile_field(name: &str, raw: &Value) -> Result<Field, String> {
    let Value::Object(map) = raw else {
        return Err(format!(
            "Expected map for the mapping of field [{name}] but got '{raw}'"
        ));
    };
    let type_name = match map.get("type") {
        None => "object",
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(format!(
                "The [type] of field [{name}] must be a string, got '{other}'"
            ));
        }
    };
    if matches!(type_name, "object" | "nested") {
        return Ok(Field::Object(ObjectNode::compile(name, map)?));
    }
    if OPAQUE_TYPES.contains(&type_name) {
        return Ok(Field::Opaque(raw.clone()));
    }
    let kind = scalar_kind(type_name, map)
        .ok_or_else(|| format!("No handler for type [{type_name}] declared on field [{name}]"))?;
    Ok(Field::Scalar {
        kind,
        type_name: type_name.to_string(),
        raw: raw.clone(),
    })
}

fn scalar_kind(type_name: &str, map: &Map<String, Value>) -> Option<ScalarKind> {
    let integral = |min: i128, max: i128| Some(ScalarKind::Integral { min, max });
    match type_name {
        "long" => integral(i64::MIN.into(), i64::MAX.into()),
        "integer" => integral(i32::MIN.into(), i32::MAX.into()),
        "short" => integral(i16::MIN.into(), i16::MAX.into()),
        "byte" => integral(i8::MIN.into(), i8::MAX.into()),
        "unsigned_long" => integral(0, u64::MAX.into()),
        "double" | "float" | "half_float" | "scaled_float" => Some(ScalarKind::Floating),
        "boolean" => Some(ScalarKind::Boolean),
        "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text"
        | "search_as_you_type" => Some(ScalarKind::AnyScalar),
        "date" => Some(ScalarKind::Date {
            lenient: !date_format_is_checkable(map.get("format")),
        }),
        "ip" => Some(ScalarKind::Ip),
        _ => None,
    }
}

/// Whether every format of a `date` field is one this store can check.
fn date_format_is_checkable(format: Option<&Value>) -> bool {
    const KNOWN: &[&str] = &[
        "strict_date_optional_time",
        "date_optional_time",
        "strict_date_optional_time_nanos",
        "epoch_millis",
        "strict_date_time",
        "date_time",
        "strict_date",
        "date",
    ];
    match format {
        None => true,
        Some(Value::String(f)) => f.split("||").all(|part| KNOWN.contains(&part.trim())),
        Some(_) => false,
    }
}

/// Walks one document; `added` records dynamic additions for undo, `steps` where it is.
struct Walker<'a> {
    id: &'a str,
    date_detection: bool,
    added: Vec<Vec<String>>,
    steps: Vec<Step>,
}

/// An error type and message, before the location is attached.
type Refusal = (&'static str, String);

impl Walker<'_> {
    fn object(
        &mut self,
        node: &mut ObjectNode,
        doc: &Map<String, Value>,
        path: &mut Vec<String>,
        dynamic: Dynamic,
    ) -> Result<(), Refusal> {
        for (key, value) in doc {
            self.steps.push(Step::Key(key.clone()));
            if path.is_empty() && METADATA_FIELDS.contains(&key.as_str()) {
                return Err(parsing(format!(
                    "Field [{key}] is a metadata field and cannot be added inside a document. Use the index API \
                     request parameters."
                )));
            }
            let depth = path.len();
            self.dotted_field(node, key, value, path, dynamic)?;
            path.truncate(depth);
            self.steps.pop();
        }
        Ok(())
    }

    /// A field whose name may hold dots: `a.b` is field `b` of object `a`, as in ES.
    fn dotted_field(
        &mut self,
        node: &mut ObjectNode,
        key: &str,
        value: &Value,
        path: &mut Vec<String>,
        mut dynamic: Dynamic,
    ) -> Result<(), Refusal> {
        if key.trim().is_empty() {
            return Err(parsing("field name cannot be an empty string".to_string()));
        }
        let segments: Vec<&str> = key.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(parsing(format!(
                "field name [{key}] must not contain empty segments"
            )));
        }
        let Some((last, parents)) = segments.split_last() else {
            return Ok(());
        };
        let base = path.len();
        let mut current = node;
        for parent in parents {
            path.push((*parent).to_string());
            if !current.props.contains_key(*parent) {
                match dynamic {
                    Dynamic::Strict => return Err(strict(parent, &path[..path.len() - 1])),
                    Dynamic::False => return Ok(()),
                    Dynamic::True => {
                        current
                            .props
                            .insert((*parent).to_string(), Field::Object(ObjectNode::default()));
                        self.added.push(path.clone());
                    }
                }
            }
            current = match current.props.get_mut(*parent) {
                Some(Field::Object(child)) => {
                    dynamic = child.dynamic.unwrap_or(dynamic);
                    child
                }
                Some(Field::Scalar { type_name, .. }) => {
                    return Err(parsing(format!(
                        "Could not dynamically add mapping for field [{}{key}]. Existing mapping for [{}] must be \
                         of type object but found [{type_name}].",
                        prefix(&path[..base]),
                        path.join(".")
                    )));
                }
                Some(Field::Opaque(_)) | None => return Ok(()),
            };
        }
        path.push((*last).to_string());
        self.value(current, last, value, path, dynamic)
    }

    /// Checks one value of field `name` of `parent`; `path` already ends with `name`.
    fn value(
        &mut self,
        parent: &mut ObjectNode,
        name: &str,
        value: &Value,
        path: &mut Vec<String>,
        dynamic: Dynamic,
    ) -> Result<(), Refusal> {
        match value {
            Value::Null => return Ok(()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.steps.push(Step::Index(i));
                    self.value(parent, name, item, path, dynamic)?;
                    self.steps.pop();
                }
                return Ok(());
            }
            _ => {}
        }
        if !parent.props.contains_key(name) {
            match dynamic {
                Dynamic::Strict => return Err(strict(name, &path[..path.len() - 1])),
                Dynamic::False => return Ok(()),
                Dynamic::True => {
                    let Some(field) = Field::infer(value, self.date_detection) else {
                        return Ok(());
                    };
                    parent.props.insert(name.to_string(), field);
                    self.added.push(path.clone());
                }
            }
        }
        match parent.props.get_mut(name) {
            Some(Field::Object(child)) => match value {
                Value::Object(map) => {
                    let dynamic = child.dynamic.unwrap_or(dynamic);
                    self.object(child, map, path, dynamic)
                }
                _ => Err(parsing(format!(
                    "object mapping for [{}] tried to parse field [{name}] as object, but found a concrete value",
                    path.join(".")
                ))),
            },
            Some(Field::Scalar {
                kind, type_name, ..
            }) if !accepts(*kind, value) => Err(parsing(format!(
                "failed to parse field [{}] of type [{type_name}] in document with id '{}'. Preview of field's \
                 value: '{}'",
                path.join("."),
                self.id,
                preview(value)
            ))),
            _ => Ok(()),
        }
    }
}

fn parsing(message: String) -> Refusal {
    ("document_parsing_exception", message)
}

fn strict(name: &str, parent_path: &[String]) -> Refusal {
    let within = if parent_path.is_empty() {
        "_doc".to_string()
    } else {
        parent_path.join(".")
    };
    (
        "strict_dynamic_mapping_exception",
        format!(
            "mapping set to strict, dynamic introduction of [{name}] within [{within}] is not allowed"
        ),
    )
}

fn prefix(path: &[String]) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{}.", path.join("."))
    }
}

/// Whether a scalar field of `kind` takes `value` (never null or an array: those are handled
/// before).
fn accepts(kind: ScalarKind, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Object(_)) => false,
        (ScalarKind::AnyScalar, _) => true,
        (ScalarKind::Integral { min, max }, v) => {
            integral_value(v).is_some_and(|n| (min..=max).contains(&n))
        }
        (ScalarKind::Floating, v) => floating_value(v).is_some_and(f64::is_finite),
        (ScalarKind::Boolean, Value::Bool(_)) => true,
        (ScalarKind::Boolean, Value::String(s)) => matches!(s.as_str(), "true" | "false" | ""),
        (ScalarKind::Boolean, _) => false,
        (ScalarKind::Date { .. }, Value::Number(_)) => true,
        (ScalarKind::Date { lenient: true }, Value::String(_)) => true,
        (ScalarKind::Date { lenient: false }, Value::String(s)) => parse_date(s),
        (ScalarKind::Date { .. }, _) => false,
        (ScalarKind::Ip, Value::String(s)) => s.parse::<IpAddr>().is_ok(),
        (ScalarKind::Ip, _) => false,
    }
}

/// A whole number as ES coerces it: integers, fractions (truncated) and numeric strings; an
/// empty string counts as null. `None` when it is not a number.
fn integral_value(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(truncate)),
        Value::String(s) if s.is_empty() => Some(0),
        Value::String(s) => s
            .parse::<i128>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().and_then(truncate)),
        _ => None,
    }
}

/// A finite float truncated to a whole number, if it fits an `i128` comfortably.
fn truncate(f: f64) -> Option<i128> {
    // 1.7e38 is the edge of i128; anything larger is out of range for every integral type.
    (f.is_finite() && f.abs() < 1.0e38).then(|| f.trunc() as i128)
}

fn floating_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.is_empty() => Some(0.0),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
}

/// `strict_date_optional_time||epoch_millis`, plus the `yyyy/MM/dd` forms of dynamic date
/// detection.
fn parse_date(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return true;
    }
    const WITH_ZONE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y/%m/%d %H:%M:%S %z",
    ];
    const WITHOUT_ZONE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
    ];
    if WITH_ZONE
        .iter()
        .any(|f| DateTime::parse_from_str(text, f).is_ok())
    {
        return true;
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    if WITHOUT_ZONE
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(naive, f).is_ok())
    {
        return true;
    }
    if ["%Y-%m-%d", "%Y/%m/%d"]
        .iter()
        .any(|f| NaiveDate::parse_from_str(naive, f).is_ok())
    {
        return true;
    }
    year_or_year_month(text)
}

/// `yyyy` and `yyyy-MM`, which `strict_date_optional_time` also accepts.
fn year_or_year_month(text: &str) -> bool {
    let bytes = text.as_bytes();
    let year = |b: &[u8]| b.len() == 4 && b.iter().all(u8::is_ascii_digit);
    match bytes.len() {
        4 => year(bytes),
        7 => {
            year(&bytes[..4])
                && bytes[4] == b'-'
                && text[5..]
                    .parse::<u32>()
                    .is_ok_and(|m| (1..=12).contains(&m))
        }
        _ => false,
    }
}

/// Dynamic date detection: only strings that start like a full date, so `"2024"` or `"12"`
/// stay text.
fn looks_like_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && (bytes[4] == b'-' || bytes[4] == b'/')
        && bytes[7] == bytes[4]
        && parse_date(text)
}

/// A value as Elasticsearch previews it in errors: strings bare, objects as `{k=v, …}`.
fn preview(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", preview(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(preview).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn mapping(v: Value) -> IndexMapping {
        IndexMapping::compile(&v).unwrap()
    }

    #[test]
    fn declared_types_refuse_what_does_not_fit() {
        let mut m = mapping(json!({"properties": {
            "price": {"type": "long"}, "small": {"type": "byte"}, "ok": {"type": "boolean"},
            "at": {"type": "date"}, "ratio": {"type": "double"}, "addr": {"type": "ip"},
            "meta": {"properties": {"n": {"type": "integer"}}}, "tag": {"type": "keyword"}
        }}));
        for good in [
            json!({"price": 5}),
            json!({"price": "12"}),
            json!({"price": 1.5}),
            json!({"price": ""}),
            json!({"price": null}),
            json!({"price": [1, "2"]}),
            json!({"small": 127}),
            json!({"ok": "false"}),
            json!({"at": "2024-05-01"}),
            json!({"at": "2024-05-01T10:00:00Z"}),
            json!({"at": 1714557600000i64}),
            json!({"at": "2024-05-01T10:00:00.123+02:00"}),
            json!({"ratio": "1e3"}),
            json!({"addr": "::1"}),
            json!({"meta": {"n": 7}}),
            json!({"meta.n": 8}),
            json!({"tag": 42}),
        ] {
            assert!(m.check(&doc(good.clone()), "d").is_ok(), "{good}");
        }
        for (bad, field) in [
            (json!({"price": "abc"}), "price"),
            (json!({"price": true}), "price"),
            (json!({"price": {"a": 1}}), "price"),
            (json!({"small": 128}), "small"),
            (json!({"ok": "yes"}), "ok"),
            (json!({"ok": 1}), "ok"),
            (json!({"at": "yesterday"}), "at"),
            (json!({"ratio": "NaN"}), "ratio"),
            (json!({"addr": "not-an-ip"}), "addr"),
            (json!({"meta": {"n": "x"}}), "meta.n"),
            (json!({"tag": {"x": 1}}), "tag"),
        ] {
            let err = m.check(&doc(bad.clone()), "d").unwrap_err();
            assert_eq!(err.kind, "document_parsing_exception", "{bad}");
            assert!(
                err.message
                    .contains(&format!("failed to parse field [{field}]")),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn reason_matches_elasticsearch_wording() {
        let mut m = mapping(json!({"properties": {"price": {"type": "long"}}}));
        let err = m
            .check(&doc(json!({"name": "x", "price": "abc"})), "doc-7")
            .unwrap_err();
        assert_eq!(
            err.message,
            "failed to parse field [price] of type [long] in document with id 'doc-7'. Preview of field's value: 'abc'"
        );
        assert_eq!(err.steps, vec![Step::Key("price".into())]);
    }

    #[test]
    fn object_mapped_field_refuses_a_concrete_value() {
        let mut m = mapping(json!({"properties": {"meta": {"type": "object"}}}));
        let err = m.check(&doc(json!({"meta": "flat"})), "1").unwrap_err();
        assert!(
            err.message.starts_with("object mapping for [meta]"),
            "{}",
            err.message
        );
    }

    #[test]
    fn dynamic_mapping_then_mismatch_and_undo_on_refusal() {
        let mut m = IndexMapping::empty();
        assert!(
            m.check(
                &doc(json!({"count": 5, "when": "2024-01-02T03:04:05Z", "name": "x"})),
                "a"
            )
            .unwrap()
        );
        let mapped = m.to_value();
        assert_eq!(mapped["properties"]["count"]["type"], "long");
        assert_eq!(mapped["properties"]["when"]["type"], "date");
        assert_eq!(mapped["properties"]["name"]["type"], "text");
        assert!(m.check(&doc(json!({"count": "many"})), "b").is_err());
        // A refused document maps nothing, even fields that came before the bad one.
        assert!(
            m.check(&doc(json!({"fresh": 1, "count": "many"})), "c")
                .is_err()
        );
        assert!(m.to_value()["properties"].get("fresh").is_none());
        assert!(!m.check(&doc(json!({"count": 6, "name": 7})), "d").unwrap());
    }

    #[test]
    fn arrays_map_from_their_first_element() {
        let mut m = IndexMapping::empty();
        let err = m.check(&doc(json!({"a": [1, "x"]})), "1").unwrap_err();
        assert_eq!(err.steps, vec![Step::Key("a".into()), Step::Index(1)]);
        assert!(m.to_value().get("properties").is_none());
    }

    #[test]
    fn strict_and_false_dynamic() {
        let mut strict_m =
            mapping(json!({"dynamic": "strict", "properties": {"a": {"type": "long"}}}));
        let err = strict_m.check(&doc(json!({"b": 1})), "1").unwrap_err();
        assert_eq!(err.kind, "strict_dynamic_mapping_exception");
        assert!(
            err.message
                .contains("dynamic introduction of [b] within [_doc]"),
            "{}",
            err.message
        );
        let mut off = mapping(json!({"dynamic": false}));
        assert!(
            !off.check(&doc(json!({"b": {"c": "anything"}})), "1")
                .unwrap()
        );
    }

    #[test]
    fn metadata_fields_and_bad_mappings_are_refused() {
        let mut m = IndexMapping::empty();
        assert!(
            m.check(&doc(json!({"_id": "x"})), "1")
                .unwrap_err()
                .message
                .contains("metadata field")
        );
        assert!(
            m.check(&doc(json!({"_timestamp": "2024-01-01T00:00:00Z"})), "1")
                .is_ok()
        );
        assert!(
            IndexMapping::compile(&json!({"mappings": {}}))
                .unwrap_err()
                .contains("unsupported parameters")
        );
        assert!(
            IndexMapping::compile(&json!({"properties": {"a": {"type": "nope"}}}))
                .unwrap_err()
                .contains("No handler")
        );
    }

    #[test]
    fn dotted_property_names_compile_to_objects() {
        let mut m = mapping(json!({"properties": {"metrics.value": {"type": "long"}}}));
        assert!(
            m.check(&doc(json!({"metrics": {"value": "x"}})), "1")
                .is_err()
        );
        let err = m
            .check(&doc(json!({"metrics.value.deep": 1})), "1")
            .unwrap_err();
        assert!(
            err.message
                .contains("must be of type object but found [long]"),
            "{}",
            err.message
        );
    }
}
