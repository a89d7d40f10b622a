//! The Airbyte protocol (v0) as syncdeck reads it: one JSON message per stdout line
//! (`RECORD`, `STATE`, `LOG`, `TRACE`, `CONNECTION_STATUS`, `SPEC`, `CATALOG`, `CONTROL`), the
//! discovered catalog and the configured catalog built from it, the state kept as the sync
//! cursor, and the id of a record. Pure data: no processes, no I/O.

use crate::sources::Fields;
use serde::Deserialize;
use serde_json::{Value, json};

/// One message of the program.
#[derive(Debug)]
pub(crate) enum Message {
    Record(Record),
    /// The `state` object of a `STATE` message, whole.
    State(Value),
    Log {
        level: String,
        message: String,
    },
    Trace(Trace),
    ConnectionStatus {
        succeeded: bool,
        message: Option<String>,
    },
    /// The `spec` object of a `SPEC` message.
    Spec(Value),
    Catalog(Vec<Stream>),
    /// Valid but not used here (`CONTROL`, `DESTINATION_CATALOG`).
    Ignored(String),
}

#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) stream: String,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// Read straight into the document's fields (see `Fields`' deserializer).
    pub(crate) data: Fields,
    #[serde(default)]
    pub(crate) emitted_at: Option<i64>,
}

#[derive(Debug)]
pub(crate) enum Trace {
    Error {
        message: String,
        internal_message: Option<String>,
        failure_type: Option<String>,
    },
    /// `ESTIMATE`, `STREAM_STATUS`, `ANALYTICS`: informational.
    Other(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    record: Option<Record>,
    state: Option<Value>,
    log: Option<LogBody>,
    trace: Option<TraceBody>,
    #[serde(rename = "connectionStatus")]
    connection_status: Option<StatusBody>,
    spec: Option<Value>,
    catalog: Option<CatalogBody>,
}

#[derive(Deserialize)]
struct LogBody {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct TraceBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    internal_message: Option<String>,
    #[serde(default)]
    failure_type: Option<String>,
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct CatalogBody {
    streams: Vec<Value>,
}

/// The message on one line; `Ok(None)` for a blank line, `Err(reason)` for anything that is
/// not a protocol message.
pub(crate) fn parse_message(line: &[u8]) -> Result<Option<Message>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let envelope: Envelope = match serde_json::from_slice(line) {
        Ok(envelope) => envelope,
        Err(e) if e.is_data() => return Err(format!("not an Airbyte message: {e}")),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    let Some(kind) = envelope.kind else {
        return Err("not an Airbyte message: no 'type'".into());
    };
    let missing = |field: &str| format!("{kind} message without '{field}'");
    let message = match kind.as_str() {
        "RECORD" => Message::Record(envelope.record.ok_or_else(|| missing("record"))?),
        "STATE" => Message::State(envelope.state.ok_or_else(|| missing("state"))?),
        "LOG" => {
            let log = envelope.log.ok_or_else(|| missing("log"))?;
            Message::Log {
                level: log.level.unwrap_or_else(|| "INFO".into()),
                message: log.message.unwrap_or_default(),
            }
        }
        "TRACE" => Message::Trace(trace(envelope.trace.ok_or_else(|| missing("trace"))?)),
        "CONNECTION_STATUS" => {
            let status = envelope
                .connection_status
                .ok_or_else(|| missing("connectionStatus"))?;
            Message::ConnectionStatus {
                succeeded: status.status.eq_ignore_ascii_case("SUCCEEDED"),
                message: status.message,
            }
        }
        "SPEC" => Message::Spec(envelope.spec.ok_or_else(|| missing("spec"))?),
        "CATALOG" => {
            let catalog = envelope.catalog.ok_or_else(|| missing("catalog"))?;
            Message::Catalog(
                catalog
                    .streams
                    .into_iter()
                    .filter_map(Stream::from_value)
                    .collect(),
            )
        }
        "CONTROL" | "DESTINATION_CATALOG" => Message::Ignored(kind),
        other => return Err(format!("unknown Airbyte message type '{other}'")),
    };
    Ok(Some(message))
}

fn trace(body: TraceBody) -> Trace {
    let kind = body.kind.unwrap_or_default();
    match (kind.as_str(), body.error) {
        ("ERROR", Some(error)) => Trace::Error {
            message: error.message.unwrap_or_else(|| "no message".into()),
            internal_message: error.internal_message,
            failure_type: error.failure_type,
        },
        ("ERROR", None) => Trace::Error {
            message: "no message".into(),
            internal_message: None,
            failure_type: None,
        },
        _ => Trace::Other(kind),
    }
}

/// A stream of the discovered catalog.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) supports_incremental: bool,
    pub(crate) supports_full_refresh: bool,
    pub(crate) source_defined_cursor: bool,
    pub(crate) default_cursor_field: Vec<String>,
    /// Paths into the record: `[["id"]]`, or `[["a"], ["b", "c"]]` for a composite key.
    pub(crate) primary_key: Vec<Vec<String>>,
    /// The stream object as discovered, passed back in the configured catalog.
    raw: Value,
}

impl Stream {
    fn from_value(raw: Value) -> Option<Self> {
        let name = raw.get("name")?.as_str()?.to_string();
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let modes = strings(raw.get("supported_sync_modes"));
        let primary_key = raw
            .get("source_defined_primary_key")
            .and_then(Value::as_array)
            .map(|paths| {
                paths
                    .iter()
                    .map(|p| strings(Some(p)))
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            namespace: raw
                .get("namespace")
                .and_then(Value::as_str)
                .map(String::from),
            // An empty list means the source said nothing: full refresh is always possible.
            supports_full_refresh: modes.is_empty() || modes.iter().any(|m| m == "full_refresh"),
            supports_incremental: modes.iter().any(|m| m == "incremental"),
            source_defined_cursor: raw
                .get("source_defined_cursor")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            default_cursor_field: strings(raw.get("default_cursor_field")),
            primary_key,
            name,
            raw,
        })
    }

    /// Whether syncdeck reads it incrementally: when it can, so every sync ends with a cursor
    /// (a full sync simply starts without state).
    fn reads_incrementally(&self) -> bool {
        self.supports_incremental
            && (self.source_defined_cursor
                || !self.default_cursor_field.is_empty()
                || !self.supports_full_refresh)
    }

    /// The entry of the configured catalog for this stream.
    pub(crate) fn configured(&self) -> Value {
        let mut entry = json!({
            "stream": self.raw,
            "sync_mode": if self.reads_incrementally() { "incremental" } else { "full_refresh" },
            "destination_sync_mode": if self.reads_incrementally() { "append" } else { "overwrite" },
        });
        if self.reads_incrementally() && !self.default_cursor_field.is_empty() {
            entry["cursor_field"] = json!(self.default_cursor_field);
        }
        if !self.primary_key.is_empty() {
            entry["primary_key"] = json!(self.primary_key);
        }
        entry
    }
}

/// The configured catalog for the chosen streams.
pub(crate) fn configured_catalog(streams: &[Stream]) -> Value {
    json!({ "streams": streams.iter().map(Stream::configured).collect::<Vec<_>>() })
}

/// The key under which the saved state lives in the sync cursor.
const CURSOR_KEY: &str = "airbyte_state";

/// The program's state as the sync cursor: the latest state message per stream (or the
/// latest global or legacy one), kept whole, in an object (`{"airbyte_state": [...]}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StateTracker {
    entries: Vec<(String, Value)>,
}

impl StateTracker {
    /// The state saved by a previous sync; anything else is ignored with a warning.
    pub(crate) fn from_cursor(cursor: Option<&Value>) -> Self {
        let mut tracker = Self::default();
        let Some(cursor) = cursor else {
            return tracker;
        };
        match cursor.get(CURSOR_KEY).and_then(Value::as_array) {
            Some(states) => states.iter().cloned().for_each(|s| tracker.record(s)),
            None => tracing::warn!(
                "external source: the saved cursor is not an Airbyte state; reading from the start"
            ),
        }
        tracker
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a `STATE` message's `state`, replacing the previous one for the same stream.
    pub(crate) fn record(&mut self, state: Value) {
        let key = state_key(&state);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = state,
            None => self.entries.push((key, state)),
        }
    }

    pub(crate) fn cursor(&self) -> Value {
        let states: Vec<Value> = self.entries.iter().map(|(_, s)| s.clone()).collect();
        json!({ CURSOR_KEY: states })
    }

    /// The `--state` file: the legacy `data` object when that is all there is, else the
    /// list of state messages (per-stream or global).
    pub(crate) fn state_file(&self) -> Value {
        let legacy_only = self.entries.iter().all(|(k, _)| k == "legacy");
        if legacy_only && let Some((_, state)) = self.entries.last() {
            return state.get("data").cloned().unwrap_or_else(|| json!({}));
        }
        Value::Array(
            self.entries
                .iter()
                .filter(|(k, _)| k != "legacy")
                .map(|(_, s)| s.clone())
                .collect(),
        )
    }
}

fn state_key(state: &Value) -> String {
    match state.get("type").and_then(Value::as_str) {
        Some("STREAM") => {
            let descriptor = &state["stream"]["stream_descriptor"];
            let name = descriptor["name"].as_str().unwrap_or_default();
            let namespace = descriptor["namespace"].as_str().unwrap_or_default();
            format!("stream:{namespace}/{name}")
        }
        Some("GLOBAL") => "global".into(),
        _ => "legacy".into(),
    }
}

/// Separates the parts of a composite key.
pub(crate) const KEY_SEPARATOR: &str = "|";

/// The id of a record: `id_field` when set, else the stream's primary key (composite keys
/// joined with [`KEY_SEPARATOR`]). `Err` names what is missing.
pub(crate) fn record_id(
    data: &Fields,
    id_field: Option<&str>,
    primary_key: &[Vec<String>],
) -> Result<String, String> {
    if let Some(field) = id_field {
        let value = data.get(field).or_else(|| lookup_dotted(data, field));
        return value
            .and_then(id_text)
            .ok_or_else(|| format!("no usable value for the id field '{field}'"));
    }
    let mut parts = Vec::with_capacity(primary_key.len());
    for path in primary_key {
        let value = lookup(data, path).and_then(id_text);
        let Some(value) = value else {
            return Err(format!(
                "no usable value for the primary key '{}'",
                path.join(".")
            ));
        };
        parts.push(value);
    }
    Ok(parts.join(KEY_SEPARATOR))
}

fn lookup<'a>(data: &'a Fields, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = data.get(first)?;
    for key in rest {
        value = value.get(key)?;
    }
    Some(value)
}

fn lookup_dotted<'a>(data: &'a Fields, field: &str) -> Option<&'a Value> {
    let path: Vec<String> = field.split('.').map(String::from).collect();
    (path.len() > 1).then(|| lookup(data, &path)).flatten()
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Message>, String> {
        parse_message(line.as_bytes())
    }

    #[test]
    fn every_message_type_parses() {
        let record =
            r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1},"emitted_at":5}}"#;
        assert!(
            matches!(parse(record), Ok(Some(Message::Record(r))) if r.stream == "users" && r.emitted_at == Some(5))
        );
        let state = r#"{"type":"STATE","state":{"data":{"n":1}}}"#;
        assert!(matches!(parse(state), Ok(Some(Message::State(s))) if s["data"]["n"] == 1));
        let log = r#"{"type":"LOG","log":{"level":"WARN","message":"careful"}}"#;
        assert!(matches!(parse(log), Ok(Some(Message::Log { level, .. })) if level == "WARN"));
        let trace = r#"{"type":"TRACE","trace":{"type":"ERROR","error":{"message":"bad","failure_type":"config_error"}}}"#;
        assert!(
            matches!(parse(trace), Ok(Some(Message::Trace(Trace::Error { message, failure_type: Some(f), .. }))) if message == "bad" && f == "config_error")
        );
        let status =
            r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"no"}}"#;
        assert!(matches!(
            parse(status),
            Ok(Some(Message::ConnectionStatus {
                succeeded: false,
                ..
            }))
        ));
        let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"a","supported_sync_modes":["full_refresh"],"source_defined_primary_key":[["id"]]}]}}"#;
        assert!(
            matches!(parse(catalog), Ok(Some(Message::Catalog(s))) if s[0].primary_key == vec![vec!["id".to_string()]])
        );
        assert!(matches!(
            parse(r#"{"type":"CONTROL","control":{}}"#),
            Ok(Some(Message::Ignored(_)))
        ));
        assert!(matches!(parse("  "), Ok(None)));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse("hello").unwrap_err().starts_with("not JSON"));
        assert_eq!(
            parse(r#"{"a":1}"#).unwrap_err(),
            "not an Airbyte message: no 'type'"
        );
        assert_eq!(
            parse(r#"{"type":"NOPE"}"#).unwrap_err(),
            "unknown Airbyte message type 'NOPE'"
        );
        assert_eq!(
            parse(r#"{"type":"RECORD"}"#).unwrap_err(),
            "RECORD message without 'record'"
        );
        assert!(
            parse(r#"{"type":"RECORD","record":{"stream":"s","data":[1]}}"#)
                .unwrap_err()
                .starts_with("not an Airbyte message")
        );
    }

    #[test]
    fn ids_come_from_the_key_or_the_id_field() {
        let data: Fields =
            serde_json::from_value(json!({"a": 1, "b": {"c": "x"}, "n": null})).unwrap();
        let key = vec![
            vec!["a".to_string()],
            vec!["b".to_string(), "c".to_string()],
        ];
        assert_eq!(record_id(&data, None, &key).unwrap(), "1|x");
        assert_eq!(record_id(&data, Some("b.c"), &key).unwrap(), "x");
        assert_eq!(
            record_id(&data, Some("n"), &key).unwrap_err(),
            "no usable value for the id field 'n'"
        );
        let missing = vec![vec!["zz".to_string()]];
        assert_eq!(
            record_id(&data, None, &missing).unwrap_err(),
            "no usable value for the primary key 'zz'"
        );
    }

    #[test]
    fn state_keeps_the_latest_per_stream_and_writes_the_right_file() {
        let mut t = StateTracker::default();
        let s = |name: &str, n: i64| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": {"n": n}}});
        t.record(s("a", 1));
        t.record(s("b", 1));
        t.record(s("a", 2));
        assert_eq!(t.state_file(), json!([s("a", 2), s("b", 1)]));
        let again = StateTracker::from_cursor(Some(&t.cursor()));
        assert_eq!(again, t);

        let mut legacy = StateTracker::default();
        legacy.record(json!({"data": {"cursor": 1}}));
        legacy.record(json!({"data": {"cursor": 2}}));
        assert_eq!(legacy.state_file(), json!({"cursor": 2}));
        assert!(StateTracker::from_cursor(Some(&json!({"mtime": "x"}))).is_empty());
    }

    #[test]
    fn streams_read_incrementally_when_they_can() {
        let stream = |modes: Value, cursor: Value| {
            Stream::from_value(
                json!({"name": "s", "supported_sync_modes": modes, "default_cursor_field": cursor}),
            )
            .unwrap()
        };
        let both = stream(json!(["full_refresh", "incremental"]), json!(["updated"]));
        assert_eq!(both.configured()["sync_mode"], "incremental");
        assert_eq!(both.configured()["cursor_field"], json!(["updated"]));
        let no_cursor = stream(json!(["full_refresh", "incremental"]), json!([]));
        assert_eq!(no_cursor.configured()["sync_mode"], "full_refresh");
        let full = stream(json!(["full_refresh"]), json!([]));
        assert_eq!(full.configured()["sync_mode"], "full_refresh");
        assert!(Stream::from_value(json!({"no": "name"})).is_none());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Any JSON value, a few levels deep.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                "\\PC{0,16}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    proptest::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        const KINDS: [&str; 9] = [
            "RECORD",
            "STATE",
            "LOG",
            "TRACE",
            "CONNECTION_STATUS",
            "SPEC",
            "CATALOG",
            "CONTROL",
            "",
        ];
        const KEYS: [&str; 8] = [
            "record",
            "state",
            "log",
            "trace",
            "connectionStatus",
            "spec",
            "catalog",
            "control",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Arbitrary bytes never panic the parser.
            #[test]
            fn any_bytes_are_a_message_or_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = parse_message(&bytes);
            }

            /// Messages of every type with arbitrary bodies: a message or a reason, never a
            /// panic, and a reason stays short whatever the line holds.
            #[test]
            fn envelopes_with_arbitrary_bodies(kind in 0..KINDS.len(), key in 0..KEYS.len(), body in json_value()) {
                let line = serde_json::json!({"type": KINDS[kind], KEYS[key]: body}).to_string();
                if let Err(reason) = parse_message(line.as_bytes()) {
                    prop_assert!(reason.len() < 1024 + line.len());
                }
            }
        }
    }
}
