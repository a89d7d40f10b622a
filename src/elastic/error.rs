//! `elastic::Error`: everything that can go wrong talking to Elasticsearch, with the server's
//! error body (type, reason, root causes) kept intact. Parsing of ES error bodies lives here;
//! nothing here does I/O. Its mapping into the backend's errors is `backend::elasticsearch`'s.
//! Messages never carry headers, credentials or request bodies.

use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

pub type Result<T> = std::result::Result<T, Error>;

/// The longest piece of a non-JSON error body kept in a message.
const MAX_RAW_REASON: usize = 300;

#[derive(Debug, Error)]
pub enum Error {
    /// Elasticsearch answered with an error status and (usually) an error body.
    #[error("Elasticsearch refused the request (HTTP {status}): {kind}: {reason}")]
    Api {
        status: u16,
        kind: String,
        reason: String,
        root_causes: Vec<RootCause>,
    },
    /// Every attempt failed on a node-level problem (connection refused or dropped, 502/503/504,
    /// timeouts with `retry_on_timeout`).
    #[error(
        "no Elasticsearch node could serve the request after {attempts} attempt(s); last error: {last}"
    )]
    Unreachable { attempts: u32, last: String },
    /// A request timed out and timeouts are not retried (`retry_on_timeout` is off).
    #[error("request to '{node}' timed out after {after:?}")]
    Timeout { node: String, after: Duration },
    /// The answer could not be read or did not have the expected shape.
    #[error("could not read the answer to '{url_path}': {reason}")]
    Decode { url_path: String, reason: String },
    /// The answer was larger than `max_response_bytes`; reading stopped there.
    #[error(
        "the answer to '{url_path}' is larger than {limit} bytes ('max_response_bytes' in the \
         profile's [elasticsearch] section); it was not read"
    )]
    TooLarge { url_path: String, limit: usize },
    /// A 2xx answer without `X-Elastic-Product: Elasticsearch`: not Elasticsearch, or a proxy
    /// in the way.
    #[error(
        "'{node}' does not identify as Elasticsearch (X-Elastic-Product is {found}); \
         check the node URL or the proxy in front of it"
    )]
    Product { node: String, found: String },
    /// The profile lists no Elasticsearch node.
    #[error("no Elasticsearch node is configured; add at least one URL to 'nodes'")]
    NoNodes,
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("invalid Elasticsearch URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A request body could not be serialised or compressed.
    #[error("could not encode the request body for '{url_path}': {reason}")]
    Encode { url_path: String, reason: String },
    /// The HTTP client could not be built (credentials with characters a header cannot hold,
    /// or a TLS back-end failure).
    #[error("could not set up the HTTP client: {0}")]
    Client(String),
}

/// One `root_cause` entry of an ES error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RootCause {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The ES error type (`resource_not_found_exception`, ...) of an API error.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Builds an `Api` error from an error status and its body, whatever the body holds:
    /// the standard `{"error":{...},"status":N}`, the old `{"error":"text"}`, or not JSON at all
    /// (a proxy's HTML page).
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => parsed.into_error(status),
            Err(_) => Self::Api {
                status,
                kind: default_kind(status).to_string(),
                reason: raw_reason(body),
                root_causes: Vec::new(),
            },
        }
    }
}

/// How an error answer reads when it is known where it came from: Elasticsearch's error
/// object names its type and reason; anything else (a proxy's HTML page, an empty body)
/// says only its status, and that Elasticsearch did not write it: a 502, 503 or 504 so
/// answered comes from a proxy or load balancer in front of the node.
pub fn describe_answer(status: u16, body: &[u8]) -> String {
    let phrase = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|b| b.error.is_some());
    match parsed {
        Some(parsed) => match parsed.into_error(status) {
            Error::Api { kind, reason, .. } => {
                format!("Elasticsearch answered HTTP {status}{phrase}: {kind}: {reason}")
            }
            other => other.to_string(),
        },
        None => {
            let from = if matches!(status, 502..=504) {
                ", from a proxy or load balancer in front of Elasticsearch"
            } else {
                ""
            };
            format!(
                "HTTP {status}{phrase}{from} (not an Elasticsearch error: {})",
                raw_reason(body)
            )
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorField>,
    /// Some APIs (a HEAD, a `GET` of a missing doc) answer without an `error` key.
    #[serde(default)]
    result: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Object {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        root_cause: Vec<RootCause>,
    },
    Text(String),
}

impl ErrorBody {
    fn into_error(self, status: u16) -> Error {
        let fallback_kind = || default_kind(status).to_string();
        match self.error {
            Some(ErrorField::Object {
                kind,
                reason,
                root_cause,
            }) => Error::Api {
                status,
                kind: kind.unwrap_or_else(fallback_kind),
                reason: reason.unwrap_or_default(),
                root_causes: root_cause,
            },
            Some(ErrorField::Text(text)) => Error::Api {
                status,
                kind: fallback_kind(),
                reason: text,
                root_causes: Vec::new(),
            },
            None => Error::Api {
                status,
                kind: fallback_kind(),
                reason: self.result.unwrap_or_default(),
                root_causes: Vec::new(),
            },
        }
    }
}

fn default_kind(status: u16) -> &'static str {
    match status {
        401 | 403 => "security_exception",
        404 => "not_found",
        409 => "conflict",
        429 => "too_many_requests",
        _ => "http_error",
    }
}

/// A readable, bounded excerpt of a body that is not an ES error document.
fn raw_reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_string();
    }
    let cut: String = text.chars().take(MAX_RAW_REASON).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_standard_error_body() {
        let body = br#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"connector [x] not found"}],"type":"resource_not_found_exception","reason":"connector [x] not found"},"status":404}"#;
        let e = Error::from_response(404, body);
        let Error::Api {
            status,
            kind,
            reason,
            root_causes,
        } = &e
        else {
            panic!("expected Api, got {e:?}");
        };
        assert_eq!(*status, 404);
        assert_eq!(kind, "resource_not_found_exception");
        assert_eq!(reason, "connector [x] not found");
        assert_eq!(root_causes.len(), 1);
    }

    #[test]
    fn answers_are_worded_by_who_wrote_them() {
        let proxy = describe_answer(502, b"<html><body>502 Bad Gateway</body></html>");
        assert!(!proxy.contains("Elasticsearch refused"), "{proxy}");
        assert!(
            proxy.starts_with("HTTP 502 Bad Gateway, from a proxy or load balancer"),
            "{proxy}"
        );
        assert!(
            proxy.contains("not an Elasticsearch error: <html>"),
            "{proxy}"
        );
        let empty = describe_answer(504, b"");
        assert!(
            empty.contains("HTTP 504 Gateway Timeout, from a proxy")
                && empty.contains("empty body"),
            "{empty}"
        );
        let es = describe_answer(
            503,
            br#"{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]"},"status":503}"#,
        );
        assert_eq!(
            es,
            "Elasticsearch answered HTTP 503 Service Unavailable: cluster_block_exception: blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]"
        );
        // A JSON body that is not an error object is not Elasticsearch's error either.
        let other = describe_answer(503, br#"{"message":"upstream down"}"#);
        assert!(other.contains("not an Elasticsearch error"), "{other}");
    }

    #[test]
    fn tolerates_text_errors_and_non_json_bodies() {
        let e = Error::from_response(400, br#"{"error":"bad thing","status":400}"#);
        assert_eq!(e.kind(), Some("http_error"));
        assert!(e.to_string().contains("bad thing"));
        let html = format!("<html>{}</html>", "x".repeat(1000));
        let e = Error::from_response(502, html.as_bytes());
        let Error::Api { reason, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(reason.chars().count() <= MAX_RAW_REASON + 1);
        let e = Error::from_response(404, b"");
        assert!(e.is_not_found());
    }
}
