//! Plumbing shared by the Elasticsearch and Kibana faces of the stand-in: the parsed request
//! (`Req`), the reply (`Reply`), Elasticsearch error bodies (`EsError`), JSON body helpers, a small
//! hand-written JSON writer for hot paths, and id/clock helpers. No cluster state lives here.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine as _;
use hyper::{HeaderMap, Method};
use serde_json::{Map, Value, json};

/// One request, decoded once: path segments are percent-decoded, the query is split, and the body
/// is already gunzipped.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub raw_query: String,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn new(
        method: Method,
        path: &str,
        raw_query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Req {
        let segs = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let query = url::form_urlencoded::parse(raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Req {
            method,
            path: path.to_owned(),
            raw_query: raw_query.to_owned(),
            segs,
            query,
            headers,
            body,
        }
    }

    /// The last value of a query parameter (ES, like most servers, lets the last one win).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query flag: `?refresh` and `?refresh=true` are true, absent or `false` is false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some(v) if v != "false")
    }

    pub fn bool_param(&self, key: &str, default: bool) -> Result<bool, EsError> {
        match self.param(key) {
            None => Ok(default),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }

    pub fn num_param(&self, key: &str) -> Result<Option<i64>, EsError> {
        match self.param(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                EsError::illegal_argument(format!(
                    "Failed to parse int parameter [{key}] with value [{v}]"
                ))
            }),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URI as ES quotes it in messages (`/path?query`).
    pub fn uri(&self) -> String {
        uri_of(&self.path, &self.raw_query)
    }

    pub fn seg(&self, i: usize) -> Option<&str> {
        self.segs.get(i).map(String::as_str)
    }
}

pub(crate) fn uri_of(path: &str, raw_query: &str) -> String {
    if raw_query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{raw_query}")
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers. The ES face adds `X-Elastic-Product`, the negotiated content type,
/// compression and faults on top.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `None` for an empty body (HEAD answers, 204s).
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    /// Whether `filter_path` was already applied while the body was written.
    pub filtered: bool,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::raw_json(status, serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn raw_json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body,
            content_type: Some("application/json"),
            headers: Vec::new(),
            filtered: false,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            content_type: None,
            headers: Vec::new(),
            filtered: false,
        }
    }

    pub fn ok(value: &Value) -> Reply {
        Reply::json(200, value)
    }
}

/// An Elasticsearch error: rendered as the whole-request body
/// `{"error":{"root_cause":[..],"type","reason",..},"status":N}` or, inside `_bulk`, as an item's
/// `error` object.
#[derive(Clone, Debug)]
pub(crate) struct EsError {
    pub status: u16,
    pub kind: String,
    pub reason: String,
    pub extra: Vec<(String, Value)>,
    pub caused_by: Option<Box<EsError>>,
}

impl EsError {
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_owned(),
            reason: reason.into(),
            extra: Vec::new(),
            caused_by: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> EsError {
        self.extra.push((key.to_owned(), value.into()));
        self
    }

    pub fn caused_by(mut self, cause: EsError) -> EsError {
        self.caused_by = Some(Box::new(cause));
        self
    }

    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// `action_request_validation_exception` with ES's numbered message format.
    pub fn validation(errors: &[String]) -> EsError {
        let mut reason = String::from("Validation Failed: ");
        for (i, e) in errors.iter().enumerate() {
            let _ = write!(reason, "{}: {};", i + 1, e);
        }
        EsError::new(400, "action_request_validation_exception", reason)
    }

    pub fn parse(reason: impl Into<String>) -> EsError {
        EsError::new(400, "x_content_parse_exception", reason)
    }

    pub fn unknown_field(parser: &str, field: &str) -> EsError {
        EsError::parse(format!("[1:2] [{parser}] unknown field [{field}]"))
    }

    /// A bad value inside a body: ES's object parsers wrap the cause in `x_content_parse_exception`.
    pub fn bad_field(parser: &str, field: &str, cause: EsError) -> EsError {
        EsError::parse(format!("[1:2] [{parser}] failed to parse field [{field}]")).caused_by(cause)
    }

    pub fn status(status: u16, reason: impl Into<String>) -> EsError {
        EsError::new(status, "status_exception", reason)
    }

    pub fn resource_not_found(reason: impl Into<String>) -> EsError {
        EsError::new(404, "resource_not_found_exception", reason)
    }

    pub fn index_not_found(index: &str) -> EsError {
        EsError::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with("resource.type", "index_or_alias")
        .with("resource.id", index)
        .with("index_uuid", "_na_")
        .with("index", index)
    }

    pub fn version_conflict(index: &str, reason: String) -> EsError {
        EsError::new(409, "version_conflict_engine_exception", reason)
            .with("index_uuid", "standin")
            .with("shard", "0")
            .with("index", index)
    }

    /// The cause object: `type`, `reason`, extra metadata and `caused_by`.
    pub fn cause_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        m.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        if let Some(c) = &self.caused_by {
            m.insert("caused_by".into(), c.cause_json());
        }
        Value::Object(m)
    }

    /// The whole-request error body.
    pub fn body(&self) -> Value {
        let mut root = self.cause_json();
        if let Some(o) = root.as_object_mut() {
            o.remove("caused_by");
        }
        // A search whose shards all failed names the shards' failures as its root causes.
        let shard_reasons: Vec<Value> = self
            .extra
            .iter()
            .find(|(k, _)| k == "failed_shards")
            .and_then(|(_, v)| v.as_array())
            .map(|shards| {
                shards
                    .iter()
                    .filter_map(|f| f.get("reason").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let mut error = self.cause_json();
        if let Some(o) = error.as_object_mut() {
            // ES puts root_cause first.
            let mut with_root = Map::new();
            let roots = if shard_reasons.is_empty() {
                vec![root]
            } else {
                shard_reasons
            };
            with_root.insert("root_cause".into(), Value::Array(roots));
            for (k, v) in std::mem::take(o) {
                with_root.insert(k, v);
            }
            *o = with_root;
        }
        json!({"error": error, "status": self.status})
    }

    pub fn reply(&self) -> Reply {
        Reply::json(self.status, &self.body())
    }
}

/// A body that must be a JSON object. An empty body is ES's `request body is required`.
pub(crate) fn object_body(req: &Req) -> Result<Map<String, Value>, EsError> {
    if is_blank(&req.body) {
        return Err(EsError::new(
            400,
            "parse_exception",
            "request body is required",
        ));
    }
    match parse_json(&req.body)? {
        Value::Object(m) => Ok(m),
        _ => Err(EsError::parse(
            "[1:1] Expected START_OBJECT but found a different token",
        )),
    }
}

/// An optional JSON object body: empty means `{}`.
pub(crate) fn optional_object_body(req: &Req) -> Result<Map<String, Value>, EsError> {
    if is_blank(&req.body) {
        Ok(Map::new())
    } else {
        object_body(req)
    }
}

pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, EsError> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

pub(crate) fn json_error(e: &serde_json::Error) -> EsError {
    EsError::parse(format!("[{}:{}] {}", e.line(), e.column(), e))
}

pub(crate) fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

/// Rejects keys outside `allowed`, the way ES's strict object parsers do.
pub(crate) fn check_fields(
    obj: &Map<String, Value>,
    allowed: &[&str],
    parser: &str,
) -> Result<(), EsError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(EsError::unknown_field(parser, k)),
        None => Ok(()),
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json escapes it.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    // Most strings (ids, names) need no escape: serde_json escapes only `"`, `\` and control
    // characters, so those are copied as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // serde_json's string escaping cannot fail on a Vec.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub(crate) fn push_value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

pub(crate) fn push_raw(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Appends `n` in decimal (without going through `fmt`, which costs more than the digits).
pub(crate) fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A 20-character URL-safe id, the shape of ES's auto-generated document ids.
pub(crate) fn new_id() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A cluster's `cluster_uuid` as Elasticsearch makes it: 16 random bytes in URL-safe base64,
/// 22 characters (`zk-HjQtYQGyL3NFSSu7InA` in the `GET /` examples).
pub(crate) fn new_cluster_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random UUID v4 string, the shape of Kibana's saved-object ids.
pub(crate) fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses ES time values (`1m`, `30s`, `500ms`, `2h`, `1d`, bare millis).
pub(crate) fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "nanos" => return Some(Duration::from_nanos(n)),
        "micros" => return Some(Duration::from_micros(n)),
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written writers give serde_json's bytes.
    #[test]
    fn push_str_and_push_num_write_what_serde_json_writes() {
        let mut strings: Vec<String> = (0u8..128).map(|b| format!("a{}z", b as char)).collect();
        strings
            .extend(["", "plain-id_01", "é ü 中 \u{7f}", "\u{2028}", "q\"b\\s/"].map(String::from));
        for s in &strings {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_num(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
