//! `KibanaError`: every way a Kibana call can fail, and the mapping from Kibana's
//! `{statusCode, error, message}` error bodies and from transport failures onto it.
//! Messages never carry credentials: URLs are shown without user info, and request bodies
//! (where secrets travel) are never quoted.

use crate::tls::TlsError;
use reqwest::StatusCode;
use serde::Deserialize;

/// How much of an unparseable error body is quoted.
const RAW_BODY_QUOTE: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum KibanaError {
    #[error("Kibana URL '{url}' is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "Kibana space '{0}' is not valid: use lowercase letters, digits, '_' and '-' (1 to 1024)"
    )]
    InvalidSpace(String),
    #[error("Kibana credentials cannot be sent: {0}")]
    Credentials(&'static str),
    #[error("Kibana TLS settings: {0}")]
    TlsSetup(#[from] TlsError),
    #[error("cannot build the Kibana HTTP client: {0}")]
    Client(String),
    #[error("Kibana rejected the request as invalid: {0}")]
    BadRequest(String),
    #[error("Kibana did not accept the credentials: {0}")]
    Unauthorized(String),
    #[error("Kibana denied access: {0}")]
    Forbidden(String),
    #[error("not found in Kibana: {0}")]
    NotFound(String),
    #[error("conflict in Kibana: {0}")]
    Conflict(String),
    /// Another 4xx answer.
    #[error("Kibana refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("Kibana failed ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("cannot reach Kibana at '{url}': {reason}")]
    Unreachable { url: String, reason: String },
    #[error("unexpected answer from Kibana at '{url}': {reason}")]
    Decode { url: String, reason: String },
    #[error("TLS failure with Kibana at '{url}': {reason}")]
    Tls { url: String, reason: String },
}

impl KibanaError {
    /// True for failures worth retrying later (Kibana down or overloaded).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Server { .. })
            || matches!(self, Self::Rejected { status: 429, .. })
    }

    /// Maps a non-success answer to its variant, taking the message from Kibana's error body.
    pub(crate) fn from_status(status: StatusCode, body: &[u8]) -> Self {
        let message = error_message(status, body);
        match status.as_u16() {
            400 => Self::BadRequest(message),
            401 => Self::Unauthorized(message),
            403 => Self::Forbidden(message),
            404 => Self::NotFound(message),
            409 => Self::Conflict(message),
            code @ 500..=599 => Self::Server {
                status: code,
                message,
            },
            code => Self::Rejected {
                status: code,
                message,
            },
        }
    }

    /// Maps a transport failure; `url` must already be free of credentials.
    pub(crate) fn from_transport(err: reqwest::Error, url: &str) -> Self {
        let url = url.to_string();
        if let Some(reason) = crate::tls::tls_failure(&err) {
            return Self::Tls { url, reason };
        }
        if err.is_decode() {
            return Self::Decode {
                url,
                reason: error_chain(&err.without_url()),
            };
        }
        let reason = if err.is_timeout() {
            "timed out".to_string()
        } else {
            error_chain(&err.without_url())
        };
        Self::Unreachable { url, reason }
    }
}

/// Kibana's error body (Boom's shape).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
        && let Some(text) = parsed.message.or(parsed.error).filter(|m| !m.is_empty())
    {
        return text;
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    if raw.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string();
    }
    match raw.char_indices().nth(RAW_BODY_QUOTE) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_string(),
    }
}

/// An error and its causes, joined by ": ", skipping causes already in the text.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(code: u16, body: &str) -> KibanaError {
        KibanaError::from_status(StatusCode::from_u16(code).unwrap(), body.as_bytes())
    }

    #[test]
    fn boom_bodies_map_to_variants_with_their_message() {
        let body = r#"{"statusCode":404,"error":"Not Found","message":"Saved object [action/x] not found"}"#;
        match map(404, body) {
            KibanaError::NotFound(m) => assert_eq!(m, "Saved object [action/x] not found"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(map(400, r#"{"message":"bad"}"#), KibanaError::BadRequest(m) if m == "bad")
        );
        assert!(
            matches!(map(401, r#"{"error":"Unauthorized"}"#), KibanaError::Unauthorized(m) if m == "Unauthorized")
        );
        assert!(matches!(map(403, "{}"), KibanaError::Forbidden(m) if m == "{}"));
        assert!(matches!(
            map(409, r#"{"message":"exists"}"#),
            KibanaError::Conflict(_)
        ));
        assert!(
            matches!(map(503, ""), KibanaError::Server { status: 503, message } if message == "Service Unavailable")
        );
        assert!(matches!(
            map(429, ""),
            KibanaError::Rejected { status: 429, .. }
        ));
    }

    #[test]
    fn long_raw_bodies_are_cut() {
        let body = "x".repeat(1000);
        let KibanaError::Server { message, .. } = map(502, &body) else {
            panic!("expected Server");
        };
        assert_eq!(message.chars().count(), RAW_BODY_QUOTE + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn transient_errors() {
        assert!(map(503, "").is_transient());
        assert!(map(429, "").is_transient());
        assert!(!map(400, "").is_transient());
    }
}
