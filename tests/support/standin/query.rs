//! The slice of the ES query DSL the stand-in understands (`match_all`, `match_none`, `term`,
//! `terms`, `ids`, `range` with date math, `exists`, `prefix`, `wildcard`, `match`,
//! `match_phrase`, `bool`), `_source` filtering, and sort keys/values. Documents are plain JSON
//! here: there are no mappings, so `term` compares values loosely (a number matches its string
//! form), and date strings compare as dates.

use std::cmp::Ordering;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::http::EsError;
use super::state::glob;

// ---------------------------------------------------------------------------------------------
// Queries

pub(crate) enum Query {
    All,
    Nothing,
    Term {
        field: String,
        value: Value,
        ci: bool,
    },
    Terms {
        field: String,
        values: Vec<Value>,
    },
    Ids(Vec<String>),
    Range {
        field: String,
        bounds: Vec<(Bound, Value)>,
    },
    Exists(String),
    Prefix {
        field: String,
        value: String,
    },
    Wildcard {
        field: String,
        pattern: String,
    },
    Match {
        field: String,
        text: String,
        all: bool,
        phrase: bool,
    },
    Bool {
        must: Vec<Query>,
        should: Vec<Query>,
        must_not: Vec<Query>,
        min_should: usize,
    },
}

#[derive(Clone, Copy)]
pub(crate) enum Bound {
    Gt,
    Gte,
    Lt,
    Lte,
}

fn parsing(reason: String) -> EsError {
    EsError::new(400, "parsing_exception", reason)
        .with("line", 1)
        .with("col", 1)
}

/// The single `{field: spec}` entry most leaf queries take.
fn single_field<'a>(name: &str, v: &'a Value) -> Result<(&'a String, &'a Value), EsError> {
    let obj = v.as_object().ok_or_else(|| {
        parsing(format!(
            "[{name}] query malformed, no start_object after query name"
        ))
    })?;
    let mut fields = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "boost" | "_name"));
    let first = fields
        .next()
        .ok_or_else(|| parsing(format!("[{name}] query doesn't support empty field")))?;
    if fields.next().is_some() {
        return Err(parsing(format!(
            "[{name}] query doesn't support multiple fields"
        )));
    }
    Ok(first)
}

fn clauses(v: Option<&Value>) -> Result<Vec<Query>, EsError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(compile).collect(),
        Some(q) => Ok(vec![compile(q)?]),
    }
}

pub(crate) fn compile(v: &Value) -> Result<Query, EsError> {
    let obj = v
        .as_object()
        .ok_or_else(|| parsing("[_na] query malformed, must start with start_object".to_owned()))?;
    let mut it = obj.iter();
    let Some((kind, body)) = it.next() else {
        return Ok(Query::All);
    };
    if let Some((k, _)) = it.next() {
        return Err(parsing(format!(
            "[{kind}] malformed query, expected [END_OBJECT] but found [FIELD_NAME] ({k})"
        )));
    }
    match kind.as_str() {
        "match_all" => Ok(Query::All),
        "match_none" => Ok(Query::Nothing),
        "term" => {
            let (field, spec) = single_field("term", body)?;
            let (value, ci) = match spec {
                Value::Object(o) => (
                    o.get("value")
                        .cloned()
                        .ok_or_else(|| parsing("[term] query does not have a value".into()))?,
                    o.get("case_insensitive")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
                other => (other.clone(), false),
            };
            Ok(Query::Term {
                field: field.clone(),
                value,
                ci,
            })
        }
        "terms" => {
            let (field, spec) = single_field("terms", body)?;
            let values = spec
                .as_array()
                .ok_or_else(|| parsing(format!("[terms] query does not support [{field}]")))?
                .clone();
            Ok(Query::Terms {
                field: field.clone(),
                values,
            })
        }
        "ids" => {
            let values = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| parsing("[ids] query requires [values]".into()))?;
            Ok(Query::Ids(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ))
        }
        "range" => {
            let (field, spec) = single_field("range", body)?;
            let spec = spec.as_object().ok_or_else(|| {
                parsing("[range] query malformed, no start_object after field".into())
            })?;
            let mut bounds = Vec::new();
            for (k, v) in spec {
                let b = match k.as_str() {
                    "gt" => Bound::Gt,
                    "gte" | "from" => Bound::Gte,
                    "lt" => Bound::Lt,
                    "lte" | "to" => Bound::Lte,
                    "format" | "time_zone" | "boost" | "relation" | "_name" => continue,
                    other => {
                        return Err(parsing(format!("[range] query does not support [{other}]")));
                    }
                };
                if !v.is_null() {
                    bounds.push((b, resolve_date_math(v)));
                }
            }
            Ok(Query::Range {
                field: field.clone(),
                bounds,
            })
        }
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| parsing("[exists] must be provided with a [field]".into()))?;
            Ok(Query::Exists(field.to_owned()))
        }
        "prefix" | "wildcard" => {
            let (field, spec) = single_field(kind, body)?;
            let value = match spec {
                Value::Object(o) => o.get("value").or_else(|| o.get("wildcard")).cloned(),
                other => Some(other.clone()),
            };
            let value = value
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| parsing(format!("[{kind}] query requires a string value")))?;
            Ok(if kind == "prefix" {
                Query::Prefix {
                    field: field.clone(),
                    value,
                }
            } else {
                Query::Wildcard {
                    field: field.clone(),
                    pattern: value,
                }
            })
        }
        "match" | "match_phrase" => {
            let (field, spec) = single_field(kind, body)?;
            let (text, all) = match spec {
                Value::Object(o) => (
                    o.get("query").cloned().unwrap_or(Value::Null),
                    o.get("operator")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("and")),
                ),
                other => (other.clone(), false),
            };
            let text = match text {
                Value::String(s) => s,
                Value::Null => return Err(parsing(format!("[{kind}] requires query value"))),
                other => other.to_string(),
            };
            Ok(Query::Match {
                field: field.clone(),
                text,
                all,
                phrase: kind == "match_phrase",
            })
        }
        "bool" => {
            let b = body
                .as_object()
                .ok_or_else(|| parsing("[bool] query malformed".into()))?;
            let mut must = clauses(b.get("must"))?;
            must.extend(clauses(b.get("filter"))?);
            let should = clauses(b.get("should"))?;
            let must_not = clauses(b.get("must_not"))?;
            for k in b.keys() {
                if !matches!(
                    k.as_str(),
                    "must"
                        | "filter"
                        | "should"
                        | "must_not"
                        | "minimum_should_match"
                        | "boost"
                        | "_name"
                ) {
                    return Err(parsing(format!("[bool] query does not support [{k}]")));
                }
            }
            let min_should = match b.get("minimum_should_match") {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(1) as usize,
                Some(Value::String(s)) => s.trim_end_matches('%').parse::<usize>().map_or(1, |n| {
                    if s.ends_with('%') {
                        (should.len() * n).div_ceil(100)
                    } else {
                        n
                    }
                }),
                _ if must.is_empty() && !should.is_empty() => 1,
                _ => 0,
            };
            Ok(Query::Bool {
                must,
                should,
                must_not,
                min_should,
            })
        }
        other => Err(parsing(format!("unknown query [{other}]"))),
    }
}

impl Query {
    /// Whether evaluating needs the document body (only `match_all`/`ids`-style queries do not).
    pub fn needs_source(&self) -> bool {
        match self {
            Query::All | Query::Nothing | Query::Ids(_) => false,
            Query::Term { field, .. }
            | Query::Terms { field, .. }
            | Query::Range { field, .. }
            | Query::Prefix { field, .. }
            | Query::Wildcard { field, .. }
            | Query::Match { field, .. } => !is_meta(field),
            Query::Exists(field) => !is_meta(field),
            Query::Bool {
                must,
                should,
                must_not,
                ..
            } => must
                .iter()
                .chain(should)
                .chain(must_not)
                .any(Query::needs_source),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Query::All)
    }

    pub fn matches(&self, index: &str, id: &str, src: &Value) -> bool {
        match self {
            Query::All => true,
            Query::Nothing => false,
            Query::Ids(ids) => ids.iter().any(|i| i == id),
            Query::Term { field, value, ci } => values_of(index, id, src, field).iter().any(|v| {
                if *ci && let (Value::String(a), Value::String(b)) = (v, value) {
                    return a.eq_ignore_ascii_case(b);
                }
                loose_eq(v, value)
            }),
            Query::Terms { field, values } => values_of(index, id, src, field)
                .iter()
                .any(|v| values.iter().any(|q| loose_eq(v, q))),
            Query::Range { field, bounds } => values_of(index, id, src, field).iter().any(|v| {
                bounds.iter().all(|(b, q)| match cmp_values(v, q) {
                    Some(o) => match b {
                        Bound::Gt => o == Ordering::Greater,
                        Bound::Gte => o != Ordering::Less,
                        Bound::Lt => o == Ordering::Less,
                        Bound::Lte => o != Ordering::Greater,
                    },
                    None => false,
                })
            }),
            Query::Exists(field) => values_of(index, id, src, field)
                .iter()
                .any(|v| !v.is_null()),
            Query::Prefix { field, value } => values_of(index, id, src, field)
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.starts_with(value.as_str()))),
            Query::Wildcard { field, pattern } => values_of(index, id, src, field)
                .iter()
                .any(|v| v.as_str().is_some_and(|s| glob(pattern, s))),
            Query::Match {
                field,
                text,
                all,
                phrase,
            } => values_of(index, id, src, field).iter().any(|v| match v {
                Value::String(s) => text_matches(s, text, *all, *phrase),
                other => loose_eq(other, &Value::String(text.clone())),
            }),
            Query::Bool {
                must,
                should,
                must_not,
                min_should,
            } => {
                must.iter().all(|q| q.matches(index, id, src))
                    && !must_not.iter().any(|q| q.matches(index, id, src))
                    && should.iter().filter(|q| q.matches(index, id, src)).count() >= *min_should
            }
        }
    }
}

fn is_meta(field: &str) -> bool {
    matches!(field, "_id" | "_index")
}

fn values_of(index: &str, id: &str, src: &Value, field: &str) -> Vec<Value> {
    match field {
        "_id" => vec![Value::String(id.to_owned())],
        "_index" => vec![Value::String(index.to_owned())],
        _ => {
            let mut out = Vec::new();
            lookup(src, field, &mut out);
            out.into_iter().cloned().collect()
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn text_matches(doc: &str, query: &str, all: bool, phrase: bool) -> bool {
    if phrase {
        return tokens(doc).join(" ").contains(&tokens(query).join(" "));
    }
    let doc_tokens = tokens(doc);
    let mut q = tokens(query).into_iter();
    if all {
        q.all(|t| doc_tokens.contains(&t))
    } else {
        q.any(|t| doc_tokens.contains(&t))
    }
}

/// Every value at a dotted path, flattening arrays; also finds keys that contain dots.
pub(crate) fn lookup<'a>(src: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match src {
        Value::Object(m) => {
            if let Some(v) = m.get(path) {
                push_flat(v, out);
            }
            for (i, _) in path.match_indices('.') {
                if let Some(v) = m.get(&path[..i]) {
                    lookup(v, &path[i + 1..], out);
                }
            }
        }
        Value::Array(a) => {
            for e in a {
                lookup(e, path, out);
            }
        }
        _ => {}
    }
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|e| push_flat(e, out)),
        other => out.push(other),
    }
}

pub(crate) fn loose_eq(doc: &Value, q: &Value) -> bool {
    match (doc, q) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            s == if *b { "true" } else { "false" }
        }
        _ => false,
    }
}

/// Epoch millis of a date string (RFC 3339, `yyyy-MM-ddTHH:mm:ss[.SSS]`, or `yyyy-MM-dd`).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(d.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
}

/// `now`, `now-300s`, `now+1d/d`: resolved to epoch millis. Anything else is returned unchanged.
fn resolve_date_math(v: &Value) -> Value {
    let Some(s) = v.as_str() else {
        return v.clone();
    };
    let Some(mut rest) = s.strip_prefix("now") else {
        return v.clone();
    };
    let mut t = chrono::Utc::now().timestamp_millis();
    while !rest.is_empty() {
        let op = rest.as_bytes()[0];
        rest = &rest[1..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = if digits == 0 {
            1
        } else {
            rest[..digits].parse().unwrap_or(0)
        };
        rest = &rest[digits..];
        let Some(unit) = rest.chars().next() else {
            return v.clone();
        };
        rest = &rest[unit.len_utf8()..];
        let ms = match unit {
            's' => 1000,
            'm' => 60_000,
            'h' | 'H' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            'M' => 30 * 86_400_000,
            'y' => 365 * 86_400_000,
            _ => return v.clone(),
        };
        match op {
            b'+' => t += n * ms,
            b'-' => t -= n * ms,
            b'/' => t -= t.rem_euclid(ms),
            _ => return v.clone(),
        }
    }
    Value::from(t)
}

/// Orders two JSON values the way a mapped field would: numbers numerically, dates as dates,
/// other strings lexically; a date string against a number compares as epoch millis.
pub(crate) fn cmp_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => match (parse_date(x), parse_date(y)) {
            (Some(dx), Some(dy)) => Some(dx.cmp(&dy)),
            _ => Some(x.cmp(y)),
        },
        (Value::String(s), Value::Number(n)) => {
            let x = s
                .parse::<f64>()
                .ok()
                .or_else(|| parse_date(s).map(|d| d as f64))?;
            x.partial_cmp(&n.as_f64()?)
        }
        (Value::Number(_), Value::String(_)) => cmp_values(b, a).map(Ordering::reverse),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Sorting

#[derive(Clone, Debug)]
pub(crate) struct SortKey {
    pub field: String,
    pub desc: bool,
    pub missing_first: bool,
}

impl SortKey {
    pub fn new(field: &str, desc: bool) -> SortKey {
        SortKey {
            field: field.to_owned(),
            desc,
            missing_first: false,
        }
    }

    /// Sorts that follow the stand-in's storage order (id order within an index).
    pub fn is_natural(&self) -> bool {
        !self.desc && matches!(self.field.as_str(), "_id" | "_doc" | "_shard_doc")
    }
}

fn sort_entry(field: &str, spec: Option<&Value>) -> Result<SortKey, EsError> {
    let default_desc = field == "_score";
    let mut key = SortKey::new(field, default_desc);
    match spec {
        None => {}
        Some(Value::String(order)) => key.desc = parse_order(order)?,
        Some(Value::Object(o)) => {
            if let Some(order) = o.get("order").and_then(Value::as_str) {
                key.desc = parse_order(order)?;
            }
            key.missing_first = o.get("missing").and_then(Value::as_str) == Some("_first");
        }
        Some(other) => {
            return Err(parsing(format!(
                "[sort] malformed value for [{field}]: {other}"
            )));
        }
    }
    Ok(key)
}

fn parse_order(s: &str) -> Result<bool, EsError> {
    match s.to_ascii_lowercase().as_str() {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(EsError::illegal_argument(format!(
            "Unknown SortOrder [{s}]"
        ))),
    }
}

/// Parses `sort` from the body (string, object or array of those) or the `sort` parameter
/// (`field:asc,other:desc`).
pub(crate) fn parse_sort(
    body: Option<&Value>,
    param: Option<&str>,
) -> Result<Vec<SortKey>, EsError> {
    let mut keys = Vec::new();
    if let Some(p) = param {
        for part in p.split(',').filter(|s| !s.is_empty()) {
            let (f, o) = part.split_once(':').unwrap_or((part, ""));
            let mut k = sort_entry(f, None)?;
            if !o.is_empty() {
                k.desc = parse_order(o)?;
            }
            keys.push(k);
        }
    }
    let items: Vec<&Value> = match body {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    };
    for item in items {
        match item {
            Value::String(f) => keys.push(sort_entry(f, None)?),
            Value::Object(o) => {
                for (f, spec) in o {
                    keys.push(sort_entry(f, Some(spec))?);
                }
            }
            other => return Err(parsing(format!("[sort] malformed: {other}"))),
        }
    }
    Ok(keys)
}

/// The sort value of one hit for one key (min of an array when ascending, max when descending).
pub(crate) fn sort_value(
    key: &SortKey,
    index: &str,
    id: &str,
    rank: u64,
    src: Option<&Value>,
) -> Value {
    match key.field.as_str() {
        "_id" => Value::String(id.to_owned()),
        "_index" => Value::String(index.to_owned()),
        "_doc" | "_shard_doc" => Value::from(rank),
        "_score" => Value::from(1.0),
        field => {
            let mut found = Vec::new();
            if let Some(s) = src {
                lookup(s, field, &mut found);
            }
            let pick = found.into_iter().filter(|v| !v.is_null()).reduce(|a, b| {
                let ord = cmp_values(b, a).unwrap_or(Ordering::Equal);
                let better = if key.desc {
                    ord == Ordering::Greater
                } else {
                    ord == Ordering::Less
                };
                if better { b } else { a }
            });
            pick.cloned().unwrap_or(Value::Null)
        }
    }
}

/// Compares two hits' sort tuples under `keys`.
pub(crate) fn cmp_sort(a: &[Value], b: &[Value], keys: &[SortKey]) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (
            a.get(i).unwrap_or(&Value::Null),
            b.get(i).unwrap_or(&Value::Null),
        );
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.missing_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.missing_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = cmp_values(x, y).unwrap_or(Ordering::Equal);
                if k.desc { o.reverse() } else { o }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

// ---------------------------------------------------------------------------------------------
// _source filtering

#[derive(Clone, Debug)]
pub(crate) enum SourceFilter {
    All,
    Nothing,
    Fields {
        includes: Vec<String>,
        excludes: Vec<String>,
    },
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn csv(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl SourceFilter {
    pub fn from_json(v: &Value) -> SourceFilter {
        match v {
            Value::Bool(false) => SourceFilter::Nothing,
            Value::Bool(true) | Value::Null => SourceFilter::All,
            Value::String(_) | Value::Array(_) => SourceFilter::Fields {
                includes: str_list(Some(v)),
                excludes: Vec::new(),
            },
            Value::Object(o) => SourceFilter::Fields {
                includes: str_list(o.get("includes").or_else(|| o.get("include"))),
                excludes: str_list(o.get("excludes").or_else(|| o.get("exclude"))),
            },
            Value::Number(_) => SourceFilter::All,
        }
    }

    pub fn from_params(
        source: Option<&str>,
        includes: Option<&str>,
        excludes: Option<&str>,
    ) -> SourceFilter {
        let base = match source {
            Some("false") => return SourceFilter::Nothing,
            None | Some("" | "true") => Vec::new(),
            Some(list) => csv(Some(list)),
        };
        let mut inc = base;
        inc.extend(csv(includes));
        let exc = csv(excludes);
        if inc.is_empty() && exc.is_empty() {
            SourceFilter::All
        } else {
            SourceFilter::Fields {
                includes: inc,
                excludes: exc,
            }
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, SourceFilter::All)
            || matches!(self, SourceFilter::Fields { includes, excludes } if includes.is_empty() && excludes.is_empty())
    }

    /// The filtered `_source`, or `None` when the source is not wanted.
    pub fn apply(&self, raw: &[u8]) -> Option<Value> {
        match self {
            SourceFilter::Nothing => None,
            SourceFilter::Fields { includes, excludes }
                // No includes at all means the whole source, which the general path gives.
                if excludes.is_empty()
                    && !includes.is_empty()
                    && includes.iter().all(|p| is_top_level_name(p)) =>
            {
                let top = top_level_fields(raw, includes);
                top.or_else(|| {
                    self.apply_value(&serde_json::from_slice(raw).unwrap_or(Value::Null))
                })
            }
            _ => {
                let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
                self.apply_value(&v)
            }
        }
    }

    pub fn apply_value(&self, v: &Value) -> Option<Value> {
        match self {
            SourceFilter::Nothing => None,
            SourceFilter::All => Some(v.clone()),
            SourceFilter::Fields { includes, excludes } => {
                let Value::Object(m) = v else {
                    return Some(v.clone());
                };
                Some(Value::Object(filter_object(
                    m,
                    "",
                    includes,
                    excludes,
                    includes.is_empty(),
                )))
            }
        }
    }
}

/// An include that can only match a top-level field by its whole name.
fn is_top_level_name(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.contains(['*', '.'])
}

/// The top-level fields of an object `_source` named in `includes`, each whole and in document
/// order: what `filter_object` keeps for plain top-level names and no excludes, without
/// building the rest of the document (an id scan reads two small fields of every document).
/// `None` when the source is not an object of distinct keys, or is not JSON: the general path
/// answers those.
fn top_level_fields(raw: &[u8], includes: &[String]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let kept = KeepFields(includes).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(Value::Object(kept))
}

/// Reads an object, parsing the values of the fields named in `.0` and skipping the others
/// unparsed. Fails on a repeated kept field (the general path keeps the first place and the
/// last value) and on keys holding escapes (they cannot be borrowed).
struct KeepFields<'i>(&'i [String]);

impl<'de> DeserializeSeed<'de> for KeepFields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeepFields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<&'de str>()? {
            if self.0.iter().any(|p| p == key) {
                let value = map.next_value::<Value>()?;
                if out.insert(key.to_owned(), value).is_some() {
                    return Err(A::Error::custom("a repeated field"));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

fn filter_object(
    m: &Map<String, Value>,
    prefix: &str,
    includes: &[String],
    excludes: &[String],
    included: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if excludes.iter().any(|p| glob(p, &path)) {
            continue;
        }
        let inc = included || includes.iter().any(|p| glob(p, &path));
        match v {
            Value::Object(child) => {
                let sub = filter_object(child, &path, includes, excludes, inc);
                if inc || !sub.is_empty() {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                let kept: Vec<Value> = items
                    .iter()
                    .filter_map(|e| match e {
                        Value::Object(child) => {
                            let sub = filter_object(child, &path, includes, excludes, inc);
                            (inc || !sub.is_empty()).then_some(Value::Object(sub))
                        }
                        other => inc.then(|| other.clone()),
                    })
                    .collect();
                if inc || !kept.is_empty() {
                    out.insert(k.clone(), Value::Array(kept));
                }
            }
            other => {
                if inc {
                    out.insert(k.clone(), other.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The top-level fast path answers what the whole-document filter answers.
    #[test]
    fn top_level_includes_match_the_general_filter() {
        let docs = [
            r#"{"id":"a","_timestamp":"t","body":{"id":"nested"},"n":[{"id":1}]}"#,
            r#"{ "_timestamp" : "t" , "id" : {"x": [1, 2.50, {"y": null}]}, "z": 1 }"#,
            r#"{"other":1}"#,
            r#"{}"#,
            r#"{"id":"a","id":"b","_timestamp":"t"}"#,
            r#"{"i\u0064":"escaped","id":"plain"}"#,
            r#"["id"]"#,
            r#""id""#,
            r#"not json"#,
            r#"{"id":"a"} trailing"#,
            r#"{"id.x":"dotted","id":{"x":1}}"#,
        ];
        let filters = [
            vec!["id", "_timestamp"],
            vec!["id"],
            vec!["missing"],
            vec!["id.x"],
            vec!["i*"],
            vec![],
        ];
        let mut fast = 0;
        for raw in docs {
            for inc in &filters {
                let filter = SourceFilter::Fields {
                    includes: inc.iter().map(|s| s.to_string()).collect(),
                    excludes: Vec::new(),
                };
                let general = filter
                    .apply_value(&serde_json::from_slice(raw.as_bytes()).unwrap_or(Value::Null));
                let got = filter.apply(raw.as_bytes());
                // Same value, and the same field order once written.
                assert_eq!(
                    got.as_ref().map(Value::to_string),
                    general.as_ref().map(Value::to_string),
                    "{raw} with {inc:?}"
                );
                if !inc.is_empty()
                    && inc.iter().all(|p| is_top_level_name(p))
                    && top_level_fields(raw.as_bytes(), &filter_includes(&filter)).is_some()
                {
                    fast += 1;
                }
            }
        }
        // The fast path did answer most of them.
        assert!(fast >= 15, "{fast}");
        assert_eq!(
            SourceFilter::from_json(&json!(["id"])).apply(br#"{"id":{"a":[1]},"b":2}"#),
            Some(json!({"id": {"a": [1]}}))
        );
    }

    fn filter_includes(f: &SourceFilter) -> Vec<String> {
        match f {
            SourceFilter::Fields { includes, .. } => includes.clone(),
            _ => Vec::new(),
        }
    }
}
