//! What Elastic's catalog database connectors (`postgresql`, `mysql`) share, as its
//! `generic_database.py` and the framework do it: the `tables` setting and its wildcard, the
//! column prefixes and document ids of `map_column_names` and `hash_id`, the framework's
//! 512-byte id rule (MD5), the advanced sync rules (`[{tables, query, id_columns?}]`) with the
//! messages of Python's JSON-schema validator, Python's retry schedule, and the notes a sync
//! leaves in its job's metadata (tables skipped or failed, rows per table).
//! Drivers live in the submodules; this module opens no connection.

pub mod mysql;
mod pg_values;
pub mod postgresql;

use md5::{Digest, Md5};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `tables` value meaning "every table".
pub const WILDCARD: &str = "*";

/// The framework's limit on an `_id` (`ES_ID_SIZE_LIMIT`); longer ids become their MD5.
pub const MAX_ID_BYTES: usize = 512;

/// The `tables` setting as a list: a comma-separated text or a JSON list, items trimmed,
/// empty ones dropped (`configured_tables`).
pub fn configured_tables(value: Option<&Value>) -> Vec<String> {
    let items: Vec<String> = match value {
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.trim().to_string(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.to_string()],
    };
    items.into_iter().filter(|t| !t.is_empty()).collect()
}

/// Whether the tables are the wildcard alone (`is_wildcard`).
pub fn is_wildcard(tables: &[String]) -> bool {
    tables.len() == 1 && tables[0] == WILDCARD
}

/// The prefix `map_column_names` puts before each column: the trimmed schema and the sorted
/// tables, each followed by `_`.
pub fn column_prefix(schema: Option<&str>, tables: &[String]) -> String {
    let mut prefix = String::new();
    if let Some(schema) = schema.map(str::trim).filter(|s| !s.is_empty()) {
        prefix.push_str(schema);
        prefix.push('_');
    }
    if !tables.is_empty() {
        let mut sorted: Vec<&str> = tables.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        prefix.push_str(&sorted.join("_"));
        prefix.push('_');
    }
    prefix
}

/// `map_column_names`: each column with the prefix, lower-cased (the whole key, prefix
/// included, as Python lower-cases the joined text).
pub fn map_column_names(
    columns: &[String],
    schema: Option<&str>,
    tables: &[String],
) -> Vec<String> {
    let prefix = column_prefix(schema, tables);
    columns
        .iter()
        .map(|c| format!("{prefix}{c}").to_lowercase())
        .collect()
}

/// `hash_id` / `generate_id`: the sorted tables joined by `_`, then `_`, then the key values
/// in key order joined by `_`, a missing or NULL key value left out. `key_text` gives each
/// key's value as Python's `str()` shows it, `None` for NULL.
pub fn key_id(tables: &[String], key_values: impl IntoIterator<Item = Option<String>>) -> String {
    let mut sorted: Vec<&str> = tables.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let values: Vec<String> = key_values.into_iter().flatten().collect();
    format!("{}_{}", sorted.join("_"), values.join("_"))
}

/// The framework's rule for ids over 512 bytes (`sync_job_runner.prepare_docs`): replaced by
/// the hex MD5 of their UTF-8 bytes, in `_id` and `id` alike.
pub fn fit_id(id: String) -> String {
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    Md5::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The framework's `iso_utc()`: now, in UTC, as Python's `isoformat()` writes it.
pub fn iso_utc_now() -> String {
    py_isoformat_utc(chrono::Utc::now().naive_utc())
}

/// A UTC time as Python's `datetime.isoformat()` writes an aware one: microseconds only
/// when not zero, then `+00:00`.
pub fn py_isoformat_utc(t: chrono::NaiveDateTime) -> String {
    format!("{}+00:00", py_isoformat_naive(t))
}

/// A naive time as Python's `datetime.isoformat()` writes it.
pub fn py_isoformat_naive(t: chrono::NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    // Written by hand: chrono's strftime-style `format` was a large share of a row's cost.
    let (date, time) = (t.date(), t.time());
    let micros = time.nanosecond() / 1000;
    let head = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    if micros == 0 {
        head
    } else {
        format!("{head}.{micros:06}")
    }
}

/// A float as Python's `repr()` writes it (for ids: `str(1.0)` is `1.0`).
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python switches to exponent notation here, with at least two exponent digits.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A JSON number from a float; NaN and the infinities, which JSON has no word for (Python
/// writes the invalid tokens `NaN` and `Infinity`, which Elasticsearch refuses), become null.
pub fn json_float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Text from bytes as Python's `bytes.decode(errors="ignore")`: invalid UTF-8 is dropped.
pub fn utf8_dropping_invalid(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
    }
    out
}

/// Bytes as Python's `str()`/`repr()` shows them (`b'\\x8f\\x01'`): what `str(pk_value)`
/// makes of a binary key in an id. Printable ASCII stays, `\\`, the quote, tab, newline and
/// carriage return are escaped, other bytes become `\\xNN`; single quotes unless the bytes
/// hold a `'` and no `"`.
pub fn py_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// A JSON-shaped value as Python's `repr()` writes the object it stands for (`None`, `True`,
/// `1.5`, `'text'`, `[1, 'a']`, `{'k': None}`): what `str()` of a list or dict key value puts
/// in an id.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => py_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => py_full_str_repr(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_full_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `repr()` of a `str`: single quotes unless it holds `'` and no `"`; backslash, the
/// quote, `\t`, `\n`, `\r` and the other control characters escaped.
fn py_full_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A string as Python's `repr()` quotes it (for messages that print a Python set or list).
pub fn py_str_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// One advanced sync rule: a query, the tables it reads (for ids, prefixes and the last
/// update time) and, optionally, the columns that make its ids.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvancedRule {
    pub tables: Vec<String>,
    pub query: String,
    pub id_columns: Option<Vec<String>>,
}

/// The advanced rules of a snippet, checked against the connectors' JSON schema
/// (`{"type": "array", "items": {tables: array minItems 1, query: string minLength 1,
/// id_columns: array minItems 1, required [tables, query], no other keys}}`) with the
/// messages fastjsonschema 2.16 gives, in the order it checks. An empty snippet (null, `{}`,
/// `[]`) has no rules, as Python's `len(advanced_rules) == 0`.
pub fn parse_advanced_rules(snippet: &Value) -> Result<Vec<AdvancedRule>, String> {
    let items = match snippet {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) if m.is_empty() => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err("data must be array".into()),
    };
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = format!("data[{i}]");
        let Value::Object(obj) = item else {
            return Err(format!("{name} must be object"));
        };
        if !(obj.contains_key("tables") && obj.contains_key("query")) {
            return Err(format!(
                "{name} must contain ['tables', 'query'] properties"
            ));
        }
        let tables = non_empty_array(obj, "tables", &name)?
            .cloned()
            .unwrap_or_default();
        let query = match obj.get("query") {
            Some(Value::String(q)) if q.chars().count() >= 1 => q.clone(),
            Some(Value::String(_)) => {
                return Err(format!(
                    "{name}.query must be longer than or equal to 1 characters"
                ));
            }
            _ => return Err(format!("{name}.query must be string")),
        };
        let id_columns = non_empty_array(obj, "id_columns", &name)?;
        let extra: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "tables" | "query" | "id_columns"))
            .collect();
        if !extra.is_empty() {
            let set: Vec<String> = extra.iter().map(|k| py_str_repr(k)).collect();
            return Err(format!(
                "{name} must not contain {{{}}} properties",
                set.join(", ")
            ));
        }
        rules.push(AdvancedRule {
            tables: tables.iter().map(item_text).collect(),
            query,
            id_columns: id_columns.map(|c| c.iter().map(item_text).collect()),
        });
    }
    Ok(rules)
}

fn non_empty_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    name: &str,
) -> Result<Option<&'a Vec<Value>>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => {
            Err(format!("{name}.{key} must contain at least 1 items"))
        }
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(format!("{name}.{key} must be array")),
    }
}

// Items of `tables` and `id_columns` are not typed by the schema; Python uses them as given.
fn item_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The tables the rules name that the database does not have, sorted.
pub fn missing_tables(rules: &[AdvancedRule], present: &[String]) -> Vec<String> {
    let mut missing: Vec<String> = rules
        .iter()
        .flat_map(|r| r.tables.iter())
        .filter(|t| !present.contains(t))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// Python's `retryable(retries=n, interval=2, EXPONENTIAL_BACKOFF)`: `n` attempts (at least
/// one: Python with 0 retries would not even try), waiting 2^k seconds after attempt k.
#[derive(Debug, Clone, Copy)]
pub struct RetryPlan {
    pub attempts: u32,
    pub base: Duration,
}

impl RetryPlan {
    pub fn new(retry_count: i64) -> Self {
        Self {
            attempts: retry_count.clamp(1, 10) as u32,
            base: Duration::from_secs(2),
        }
    }

    /// The wait after failed attempt `k` (1-based): `base^k` seconds, as `interval ** retry`.
    pub fn wait(&self, attempt: u32) -> Duration {
        let secs = self.base.as_secs_f64().powi(attempt as i32);
        Duration::from_secs_f64(secs.min(300.0))
    }

    /// Runs `op` until it succeeds, a permanent error, or the attempts are spent.
    pub async fn run<T, E, F, Fut>(&self, mut op: F, permanent: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt >= self.attempts || permanent(&e) => return Err(e),
                Err(_) => {
                    tokio::time::sleep(self.wait(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// A table (or `*`, or an advanced rule's tables) that could not be read, as an unreadable
/// record (dead-lettered; a full sync that meets one deletes nothing).
pub fn unreadable_table(name: &str, message: &str, error: &str) -> crate::sources::SourceItem {
    crate::sources::SourceItem::Invalid {
        id: format!("unreadable:table:{name}"),
        reason: crate::secret::mask::masked(message),
        raw: serde_json::json!({
            "table": name,
            "error": crate::secret::mask::masked(error),
        }),
    }
}

/// What the `postgresql` and `mysql` factories differ in; [`validate`], [`create_for_sync`]
/// and [`check_advanced_rules`] are the rest, the same for both.
pub trait Flavor: Sized + Send + Sync {
    /// The connection settings from a configuration, or the field that is wrong.
    fn from_config(
        config: &crate::model::Configuration,
    ) -> Result<Self, crate::sources::SourceError>;
    /// The tables the configured user sees, for the advanced rules' check.
    fn present_tables(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<String>, String>> + Send;
    /// Python's message naming the rules' tables that are not there.
    fn missing_message(missing: &[String]) -> String;
    /// The source that syncs with these settings and rules.
    fn source(self, rules: Vec<AdvancedRule>) -> Box<dyn crate::sources::DataSource>;
}

/// A database service type: its settings ([`Flavor`]) and what names it. Every such type is
/// a [`crate::sources::SourceFactory`] through the one implementation below, so the two
/// databases cannot drift apart in how they validate, create sources or offer
/// `cursor_column`.
pub trait DatabaseType: Send + Sync {
    type Flavor: Flavor;
    const SERVICE_TYPE: &'static str;
    const DISPLAY_NAME: &'static str;
    /// Where the opt-in `cursor_column` field goes, after the type's own fields.
    const CURSOR_ORDER: i64;
    /// The fields, as Python's `get_default_configuration()`.
    fn default_configuration() -> crate::model::Configuration;
}

impl<T: DatabaseType> crate::sources::SourceFactory for T {
    fn service_type(&self) -> &'static str {
        T::SERVICE_TYPE
    }

    fn display_name(&self) -> &'static str {
        T::DISPLAY_NAME
    }

    fn default_configuration(&self) -> crate::model::Configuration {
        T::default_configuration()
    }

    fn validate(
        &self,
        config: &crate::model::Configuration,
    ) -> Result<(), crate::sources::SourceError> {
        validate::<T::Flavor>(config)
    }

    fn supports_advanced_rules(&self) -> bool {
        true
    }

    fn validate_advanced_rules(&self, snippet: &Value) -> Vec<String> {
        parse_advanced_rules(snippet).err().into_iter().collect()
    }

    fn check_advanced_rules<'a>(
        &'a self,
        config: &'a crate::model::Configuration,
        snippet: &'a Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + 'a>> {
        Box::pin(check_advanced_rules::<T::Flavor>(config, snippet))
    }

    fn create(
        &self,
        config: &crate::model::Configuration,
    ) -> Result<Box<dyn crate::sources::DataSource>, crate::sources::SourceError> {
        self.create_for_sync(config, None)
    }

    fn optional_fields(&self) -> crate::model::Configuration {
        let mut config = crate::model::Configuration::default();
        config
            .0
            .insert(CURSOR_COLUMN.into(), cursor_column_field(T::CURSOR_ORDER));
        config
    }

    fn supports_incremental_for(&self, config: &crate::model::Configuration) -> bool {
        cursor_column(config).is_some()
    }

    fn incremental_refusal(&self, config: &crate::model::Configuration) -> Option<String> {
        incremental_refusal(T::SERVICE_TYPE, config)
    }

    fn create_for_sync(
        &self,
        config: &crate::model::Configuration,
        advanced: Option<&Value>,
    ) -> Result<Box<dyn crate::sources::DataSource>, crate::sources::SourceError> {
        create_for_sync::<T::Flavor>(config, advanced)
    }
}

/// `SourceFactory::validate`: the settings parse.
pub fn validate<F: Flavor>(
    config: &crate::model::Configuration,
) -> Result<(), crate::sources::SourceError> {
    F::from_config(config).map(|_| ())
}

/// `SourceFactory::create_for_sync`: the secrets masked from then on, the settings, the
/// advanced rules.
pub fn create_for_sync<F: Flavor>(
    config: &crate::model::Configuration,
    advanced: Option<&Value>,
) -> Result<Box<dyn crate::sources::DataSource>, crate::sources::SourceError> {
    crate::sources::register_sensitive(config);
    let settings = F::from_config(config)?;
    let rules = match advanced {
        Some(snippet) => {
            parse_advanced_rules(snippet).map_err(|reason| crate::sources::SourceError::Config {
                field: "advanced_snippet".into(),
                reason,
            })?
        }
        None => Vec::new(),
    };
    Ok(settings.source(rules))
}

/// `SourceFactory::check_advanced_rules`: the rules parse, and their tables are there.
pub async fn check_advanced_rules<F: Flavor>(
    config: &crate::model::Configuration,
    snippet: &Value,
) -> Vec<String> {
    let rules = match parse_advanced_rules(snippet) {
        Ok(rules) if rules.is_empty() => return Vec::new(),
        Ok(rules) => rules,
        Err(message) => return vec![message],
    };
    crate::sources::register_sensitive(config);
    let settings = match F::from_config(config) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    match settings.present_tables().await {
        Ok(present) => {
            let missing = missing_tables(&rules, &present);
            if missing.is_empty() {
                Vec::new()
            } else {
                vec![F::missing_message(&missing)]
            }
        }
        Err(e) => vec![format!("cannot check the tables: {e}")],
    }
}

/// The configuration key of syncdeck's own incremental mode for the catalog databases.
pub const CURSOR_COLUMN: &str = "cursor_column";

/// The `cursor_column` field: syncdeck's own, so it is not in the reference's default
/// configuration (`connectors create` and `serve` write exactly Python's fields); an operator
/// adds it to a connector with `connectors set ID cursor_column=…`. It carries every property
/// of the framework's `DEFAULT_CONFIGURATION` (Python's `prepare` rewrites a field that lacks
/// one) and is not required (Python's `check_valid` refuses an empty required field), so the
/// Python service and Kibana take it as one more optional, advanced field.
pub fn cursor_column_field(order: i64) -> crate::model::ConfigField {
    crate::model::ConfigField {
        label: "Cursor column for incremental syncs (syncdeck only)".into(),
        order: Some(order),
        field_type: crate::model::FieldType::Str,
        display: crate::model::DisplayType::Text,
        value: Value::String(String::new()),
        default_value: Value::Null,
        required: false,
        ui_restrictions: vec!["advanced".into()],
        tooltip: Some(
            "Read by syncdeck, ignored by Elastic's connectors service: a column that grows \
             with every insert and update (an update time, a sequence). When set, incremental \
             syncs read only the rows whose value is above the largest one the last sync saw; \
             deletions still need a full sync."
                .into(),
        ),
        ..crate::model::ConfigField::default()
    }
}

/// The configuration with `cursor_column`, trimmed; `None` when unset or empty.
pub fn cursor_column(config: &crate::model::Configuration) -> Option<String> {
    let column = crate::sources::fields::str_setting(config, CURSOR_COLUMN, "");
    (!column.is_empty()).then_some(column)
}

/// Why a database connector without `cursor_column` cannot run an incremental job.
pub fn incremental_refusal(
    service_type: &str,
    config: &crate::model::Configuration,
) -> Option<String> {
    cursor_column(config).is_none().then(|| {
        format!(
            "its '{service_type}' source syncs incrementally only with 'cursor_column' set \
             (as Elastic's, it has no incremental mode of its own); set it with \
             `syncdeck connectors set ID cursor_column=COLUMN`, or run a full sync"
        )
    })
}

/// The largest `cursor_column` value seen per table, kept in the connector's `sync_cursor`
/// as `{"cursor_column": …, "scope": …, "tables": {table: text}}`. Values are the server's
/// text of the value (cast back to the column's type to compare), so any ordered type works.
/// A cursor written for another column or scope (database, schema) is not used: the tables
/// are read whole, once, as on the first incremental sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableCursors {
    pub column: String,
    pub scope: String,
    pub tables: std::collections::BTreeMap<String, String>,
}

impl TableCursors {
    /// An empty cursor for `column` in `scope`.
    pub fn new(column: &str, scope: &str) -> Self {
        Self {
            column: column.to_string(),
            scope: scope.to_string(),
            tables: Default::default(),
        }
    }

    /// The saved cursor when it is one of ours for this column and scope, else an empty one
    /// and why the saved one is not used.
    pub fn resume(saved: Option<&Value>, column: &str, scope: &str) -> (Self, Option<String>) {
        let fresh = Self::new(column, scope);
        let Some(saved) = saved.filter(|v| !v.is_null()) else {
            return (fresh, None);
        };
        let same = saved.get("cursor_column").and_then(Value::as_str) == Some(column)
            && saved.get("scope").and_then(Value::as_str) == Some(scope);
        let tables = saved.get("tables").and_then(Value::as_object);
        match tables {
            Some(tables) if same => {
                let tables = tables
                    .iter()
                    .filter_map(|(t, v)| v.as_str().map(|v| (t.clone(), v.to_string())))
                    .collect();
                (Self { tables, ..fresh }, None)
            }
            _ => (
                fresh,
                Some(format!(
                    "the saved cursor is not one for cursor_column '{column}' in {scope}: \
                     every table is read whole once"
                )),
            ),
        }
    }

    /// As saved in `sync_cursor`.
    pub fn to_value(&self) -> Value {
        let tables: Map<String, Value> = self
            .tables
            .iter()
            .map(|(t, v)| (t.clone(), Value::from(v.clone())))
            .collect();
        serde_json::json!({
            "cursor_column": self.column,
            "scope": self.scope,
            "tables": tables,
        })
    }
}

/// How a sync with `cursor_column` reads one table: everything (a full sync, or a table with
/// no saved value), or only the rows above the saved value.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorRead {
    /// No `cursor_column`: read whole, nothing to remember.
    Off,
    /// Read whole and remember the largest value (a full sync, or nothing saved yet).
    All { column: String },
    /// Read the rows whose value is above `after`, and remember the largest.
    After { column: String, after: String },
}

impl CursorRead {
    pub fn column(&self) -> Option<&str> {
        match self {
            CursorRead::Off => None,
            CursorRead::All { column } | CursorRead::After { column, .. } => Some(column),
        }
    }
}

/// The cursor state of one sync: what it started from, whether it is incremental, and the
/// values read so far (a table's new value replaces its old one only once it was read).
pub struct CursorState {
    pub incremental: bool,
    cursors: Mutex<TableCursors>,
}

impl CursorState {
    /// For a sync in `mode`, with `cursor_column` possibly set; notes what the sync does.
    pub fn start(
        column: Option<&str>,
        scope: &str,
        mode: &crate::sources::SyncMode,
        notes: &SyncNotes,
    ) -> Option<Self> {
        let column = column?;
        let (incremental, cursors) = match mode {
            crate::sources::SyncMode::Incremental { cursor } => {
                let (cursors, why) = TableCursors::resume(cursor.as_ref(), column, scope);
                if let Some(why) = why {
                    tracing::warn!("{why}");
                    notes.set("cursor_reset", Value::from(why));
                }
                (true, cursors)
            }
            crate::sources::SyncMode::Full => (false, TableCursors::new(column, scope)),
        };
        notes.set(
            "incremental",
            Value::from(if incremental {
                format!(
                    "incremental on cursor_column '{column}': only rows whose value is above \
                     the last sync's largest, per table; no deletions"
                )
            } else {
                format!("full: every row, and the largest '{column}' per table remembered")
            }),
        );
        Some(Self {
            incremental,
            cursors: Mutex::new(cursors),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableCursors> {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How to read `table`.
    pub fn read_for(&self, table: &str) -> CursorRead {
        let cursors = self.lock();
        match cursors.tables.get(table) {
            Some(after) if self.incremental => CursorRead::After {
                column: cursors.column.clone(),
                after: after.clone(),
            },
            _ => CursorRead::All {
                column: cursors.column.clone(),
            },
        }
    }

    /// Remembers the largest value read from `table` (`None`: nothing read, the old one
    /// stays).
    pub fn read(&self, table: &str, largest: Option<String>) {
        if let Some(largest) = largest {
            self.lock().tables.insert(table.to_string(), largest);
        }
    }

    /// The cursor to save once the sync has succeeded.
    pub fn finish(&self) -> Value {
        self.lock().to_value()
    }
}

/// The message of a table whose cursor column's type has no order to resume from.
pub fn unordered_cursor_column(table: &str, column: &str, type_name: &str) -> String {
    format!(
        "table '{table}': its column '{column}' (cursor_column) is of type {type_name}, which \
         has no order an incremental sync can resume from; choose a number, date/time or \
         text column"
    )
}

/// The message of a table that lacks the cursor column.
pub fn no_cursor_column(table: &str, column: &str) -> String {
    format!(
        "table '{table}' has no column '{column}' (cursor_column): every sync reads it whole; \
         add the column, or list only tables that have it"
    )
}

/// What a database sync has to say in its job's metadata, shared between the running source
/// and whoever reports it (the runner's heartbeat and its final write): per table the rows
/// read and how it ended, the tables skipped and why, and source-wide facts.
#[derive(Clone, Default)]
pub struct SyncNotes {
    inner: Arc<Mutex<Map<String, Value>>>,
}

impl SyncNotes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map<String, Value>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a source-wide fact.
    pub fn set(&self, key: &str, value: Value) {
        self.lock().insert(key.to_string(), value);
    }

    /// Records (or updates) one table's line under `tables`.
    pub fn table(
        &self,
        name: &str,
        status: &str,
        rows: u64,
        elapsed: Duration,
        note: Option<&str>,
    ) {
        let secs = elapsed.as_secs_f64();
        let mut line = Map::new();
        line.insert("status".into(), Value::from(status));
        line.insert("rows".into(), Value::from(rows));
        line.insert(
            "seconds".into(),
            json_float((secs * 1000.0).round() / 1000.0),
        );
        let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
        line.insert("rows_per_sec".into(), json_float(rate.round()));
        if let Some(note) = note {
            line.insert("note".into(), Value::from(note));
        }
        let mut map = self.lock();
        let tables = map
            .entry("tables")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = tables {
            t.insert(name.to_string(), Value::Object(line));
        }
    }

    /// Adds a table to a list (`skipped_tables`, `failed_tables`) with its reason.
    pub fn push(&self, list: &str, table: &str, reason: &str) {
        let mut map = self.lock();
        let entry = map.entry(list).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            // A server's error text can echo values (a password in a connection string, a
            // key's value); the job's metadata is stored and shown, so it is masked.
            m.insert(
                crate::secret::mask::masked(table),
                Value::from(crate::secret::mask::masked(reason)),
            );
        }
    }

    /// A copy of everything noted so far.
    pub fn snapshot(&self) -> Map<String, Value> {
        self.lock().clone()
    }
}

impl crate::sources::SourceNotes for SyncNotes {
    fn metadata(&self) -> Map<String, Value> {
        // Masked again as handed over: a secret registered after a note was taken.
        let mut all = Value::Object(self.snapshot());
        crate::secret::mask::mask_json(&mut all);
        match all {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// A PEM text as users paste it in Kibana, where newlines may have become spaces: reflowed
/// into lines (Python's `get_pem_format`), every certificate in it.
pub fn pem_format(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = String::new();
    let mut rest = text.trim();
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(end) = after.find(END) else { break };
        let body: String = after[..end].split_whitespace().collect();
        out.push_str(BEGIN);
        out.push('\n');
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        rest = &after[end + END.len()..];
    }
    out
}

/// The certificates of a PEM text (reflowed first), as DER.
pub fn pem_certificates(
    text: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = pem_format(text);
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_bytes()).collect();
    let certs = certs.map_err(|e| format!("the SSL certificate is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the SSL certificate holds no certificate".into());
    }
    Ok(certs)
}

/// A rustls client configuration that trusts exactly the certificates of `ca_pem`, over the
/// project's crypto provider (ring), with host name checks.
pub fn tls_client_config(ca_pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certificates(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("the SSL certificate cannot be trusted: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_split_trim_and_drop_empties() {
        assert_eq!(
            configured_tables(Some(&json!(" a, b ,,c "))),
            ["a", "b", "c"]
        );
        assert_eq!(configured_tables(Some(&json!(["x", "", " y"]))), ["x", "y"]);
        assert!(is_wildcard(&configured_tables(Some(&json!("*")))));
        assert!(!is_wildcard(&configured_tables(Some(&json!("*, a")))));
        assert!(configured_tables(None).is_empty());
    }

    #[test]
    fn column_names_take_schema_and_sorted_tables_and_are_lower_cased() {
        let cols = vec!["Id".to_string(), "Name".to_string()];
        assert_eq!(
            map_column_names(&cols, Some(" Public "), &["T2".into(), "A1".into()]),
            ["public_a1_t2_id", "public_a1_t2_name"]
        );
        assert_eq!(map_column_names(&cols, None, &[]), ["id", "name"]);
    }

    #[test]
    fn ids_skip_null_keys_and_long_ones_become_md5() {
        let id = key_id(
            &["b".into(), "a".into()],
            [Some("1".to_string()), None, Some("x".to_string())],
        );
        assert_eq!(id, "a_b_1_x");
        assert_eq!(key_id(&["t".into()], [None]), "t_");
        // 600 bytes of "é": over the limit, so its MD5 (hashlib.md5("é" * 300).hexdigest()).
        let long = "é".repeat(300);
        assert_eq!(fit_id(long), "4bf78d5bfde016534964234b60ced94a");
        assert_eq!(fit_id("short".into()), "short");
        let exactly = "x".repeat(512);
        assert_eq!(
            fit_id(exactly.clone()),
            exactly,
            "512 bytes is still allowed"
        );
    }

    #[test]
    fn notes_mask_known_secrets_in_reasons() {
        use crate::sources::SourceNotes;
        crate::secret::mask::register("dbfix-notes-secret-9f3a");
        let notes = SyncNotes::default();
        notes.push(
            "failed_tables",
            "t",
            "ERROR: password \"dbfix-notes-secret-9f3a\" in a query",
        );
        let reason = notes.snapshot()["failed_tables"]["t"].to_string();
        assert!(!reason.contains("dbfix-notes-secret-9f3a"), "{reason}");
        assert!(reason.contains(crate::secret::MASK), "{reason}");
        notes.set("later", Value::from("x dbfix-notes-later-secret-77 y"));
        crate::secret::mask::register("dbfix-notes-later-secret-77");
        let all = Value::Object(notes.metadata()).to_string();
        assert!(!all.contains("dbfix-notes-later-secret-77"), "{all}");
    }

    #[test]
    fn bytes_show_as_pythons_repr() {
        assert_eq!(py_bytes_repr(b"\x8f\x01"), r"b'\x8f\x01'");
        assert_eq!(py_bytes_repr(b"\x8f\x02"), r"b'\x8f\x02'");
        assert_eq!(py_bytes_repr(b"a\\b\t\n\r\x7f "), r"b'a\\b\t\n\r\x7f '");
        assert_eq!(py_bytes_repr(b"it's"), r#"b"it's""#);
        assert_eq!(py_bytes_repr(b"it's \"x\""), r#"b'it\'s "x"'"#);
        assert_eq!(py_bytes_repr(b""), "b''");
    }

    #[test]
    fn schema_messages_are_fastjsonschemas() {
        let err = |v: Value| parse_advanced_rules(&v).unwrap_err();
        assert_eq!(err(json!({"a": 1})), "data must be array");
        assert_eq!(err(json!(["x"])), "data[0] must be object");
        assert_eq!(
            err(json!([{"tables": ["t"]}])),
            "data[0] must contain ['tables', 'query'] properties"
        );
        assert_eq!(
            err(json!([{"tables": [], "query": "q"}])),
            "data[0].tables must contain at least 1 items"
        );
        assert_eq!(
            err(json!([{"tables": "t", "query": "q"}])),
            "data[0].tables must be array"
        );
        assert_eq!(
            err(json!([{"tables": ["t"], "query": ""}])),
            "data[0].query must be longer than or equal to 1 characters"
        );
        assert_eq!(
            err(json!([{"tables": ["t"], "query": "q", "id_columns": []}])),
            "data[0].id_columns must contain at least 1 items"
        );
        assert_eq!(
            err(json!([{"tables": ["t"], "query": "q"}, {"tables": ["t"], "query": "q", "x": 1}])),
            "data[1] must not contain {'x'} properties"
        );
        assert!(parse_advanced_rules(&json!({})).unwrap().is_empty());
        assert!(parse_advanced_rules(&json!([])).unwrap().is_empty());
        let rules = parse_advanced_rules(
            &json!([{"tables": ["a"], "query": "SELECT 1", "id_columns": ["id"]}]),
        )
        .unwrap();
        assert_eq!(
            rules[0].id_columns.as_deref(),
            Some(&["id".to_string()][..])
        );
    }

    #[test]
    fn reprs_as_python_writes_them() {
        let v = json!({"a": 1.5, "b": [true, null, "x'y"], "c": "tab\t\\ \u{1}é", "d": 12});
        assert_eq!(
            py_repr(&v),
            r#"{'a': 1.5, 'b': [True, None, "x'y"], 'c': 'tab\t\\ \x01é', 'd': 12}"#
        );
        assert_eq!(
            py_repr(&json!([[], 1e20, -0.0, "a\"b'c"])),
            r#"[[], 1e+20, -0.0, 'a"b\'c']"#
        );
    }

    #[test]
    fn python_text_forms() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(json_float(f64::NAN), Value::Null);
        assert_eq!(utf8_dropping_invalid(b"a\xffb\xc3\xa9"), "abé");
        assert_eq!(py_str_repr("t"), "'t'");
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 60)
            .unwrap();
        assert_eq!(py_isoformat_utc(t), "2024-01-02T03:04:05.000060+00:00");
        let whole = chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(py_isoformat_naive(whole), "2024-01-02T03:04:05");
    }

    #[test]
    fn pem_pasted_on_one_line_is_reflowed() {
        let pem = pem_format("-----BEGIN CERTIFICATE----- QUJD REVG -----END CERTIFICATE-----");
        assert_eq!(
            pem,
            "-----BEGIN CERTIFICATE-----\nQUJDREVG\n-----END CERTIFICATE-----\n"
        );
    }

    #[test]
    fn cursors_resume_only_for_the_same_column_and_scope() {
        let saved = json!({"cursor_column": "u", "scope": "db.public", "tables": {"a": "5"}});
        let (c, why) = TableCursors::resume(Some(&saved), "u", "db.public");
        assert!(why.is_none());
        assert_eq!(c.tables.get("a").map(String::as_str), Some("5"));
        assert_eq!(c.to_value(), saved, "written back as read");
        let (c, why) = TableCursors::resume(Some(&saved), "v", "db.public");
        assert!(c.tables.is_empty() && why.is_some_and(|w| w.contains("'v'")));
        let (c, why) = TableCursors::resume(Some(&saved), "u", "other.public");
        assert!(c.tables.is_empty() && why.is_some());
        let (c, why) = TableCursors::resume(Some(&json!({"mtime": "x"})), "u", "db.public");
        assert!(c.tables.is_empty() && why.is_some());
        let (c, why) = TableCursors::resume(Some(&Value::Null), "u", "db.public");
        assert!(
            c.tables.is_empty() && why.is_none(),
            "a full sync's null cursor"
        );
    }

    #[test]
    fn an_incremental_sync_reads_after_the_saved_value_and_keeps_it_when_nothing_is_new() {
        use crate::sources::SyncMode;
        let notes = SyncNotes::default();
        assert!(CursorState::start(None, "s", &SyncMode::Full, &notes).is_none());
        let saved = json!({"cursor_column": "u", "scope": "s", "tables": {"a": "5"}});
        let mode = SyncMode::Incremental {
            cursor: Some(saved),
        };
        let state = CursorState::start(Some("u"), "s", &mode, &notes).expect("state");
        assert_eq!(
            state.read_for("a"),
            CursorRead::After {
                column: "u".into(),
                after: "5".into()
            }
        );
        assert_eq!(
            state.read_for("new"),
            CursorRead::All { column: "u".into() },
            "a table with no saved value is read whole"
        );
        state.read("a", None);
        state.read("new", Some("3".into()));
        assert_eq!(state.finish()["tables"], json!({"a": "5", "new": "3"}));
        // A full sync reads everything and starts the cursor over.
        let full = CursorState::start(Some("u"), "s", &SyncMode::Full, &notes).expect("state");
        assert_eq!(full.read_for("a"), CursorRead::All { column: "u".into() });
        assert_eq!(full.finish()["tables"], json!({}));
        assert!(notes.snapshot()["incremental"].is_string());
    }

    #[test]
    fn the_cursor_column_field_is_optional_for_python_and_kibana() {
        let field = cursor_column_field(12);
        assert!(
            !field.required,
            "Python's check_valid refuses an empty required field"
        );
        assert_eq!(field.ui_restrictions, ["advanced"]);
        let mut config = crate::model::Configuration::default();
        assert!(cursor_column(&config).is_none());
        assert!(incremental_refusal("postgresql", &config).is_some());
        let mut set = field.clone();
        set.value = json!(" updated_at ");
        config.0.insert(CURSOR_COLUMN.into(), set);
        assert_eq!(cursor_column(&config).as_deref(), Some("updated_at"));
        assert!(incremental_refusal("postgresql", &config).is_none());
    }

    #[test]
    fn retry_waits_grow_as_pythons() {
        let plan = RetryPlan::new(3);
        assert_eq!(plan.attempts, 3);
        assert_eq!(plan.wait(1), Duration::from_secs(2));
        assert_eq!(plan.wait(2), Duration::from_secs(4));
        assert_eq!(RetryPlan::new(0).attempts, 1);
    }
}
