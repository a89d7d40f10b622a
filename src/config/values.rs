//! Typed values of the configuration file that check themselves while parsing: HTTP(S) URLs,
//! certificate fingerprints and secret references (`env:NAME`, `file:PATH` or a literal).
//! Resolving a secret reference (reading the environment or a file) is `resolve.rs`'s job.

use crate::secret::Secret;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::path::PathBuf;
use url::Url;

/// Single-quotes a user value for an error message, escaping control characters and cutting
/// long values so a message stays one readable line.
pub fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut shown: String = value.chars().take(MAX_CHARS).collect();
    if value.chars().nth(MAX_CHARS).is_some() {
        shown.push('…');
    }
    format!("'{}'", shown.escape_debug())
}

/// Parses an Elasticsearch or Kibana URL: absolute, `http` or `https`, with a host, and
/// without credentials (they belong in the auth fields, where they stay masked).
pub fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{} is not a URL: {e}", quote(text)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{} is not an http or https URL", quote(text)));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{} has no host", quote(text)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        // Clearing credentials cannot fail on an http(s) URL with a host; ignore the Result.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(format!(
            "'{shown}' contains credentials; put them in api_key, username + password or \
             bearer_token instead"
        ));
    }
    Ok(url)
}

/// An `http`/`https` URL field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl<'de> serde::Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |text: &str| parse_http_url(text).map(HttpUrl);
        d.deserialize_str(StrVisitor {
            expecting: "an http or https URL",
            parse,
        })
    }
}

/// Parses a string inside the deserializer, so `toml` attaches the value's own span to a
/// rejection (a check after deserializing would get the enclosing array's span).
struct StrVisitor<F> {
    expecting: &'static str,
    parse: F,
}

impl<T, F: Fn(&str) -> Result<T, String>> Visitor<'_> for StrVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

/// A SHA-256 certificate fingerprint: 64 hex digits, colons optional, any case. Kept as 64
/// lowercase hex digits without colons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub String);

/// Normalises a fingerprint to 64 lowercase hex digits, or `None` if it is not one.
pub fn parse_fingerprint(text: &str) -> Option<String> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(hex.to_ascii_lowercase())
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |text: &str| {
            parse_fingerprint(text).map(Fingerprint).ok_or_else(|| {
                format!(
                    "{} is not a SHA-256 fingerprint (64 hex digits, colons optional)",
                    quote(text)
                )
            })
        };
        d.deserialize_str(StrVisitor {
            expecting: "a SHA-256 fingerprint",
            parse,
        })
    }
}

/// Where a secret (or a value that may be kept like one) comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretRef {
    /// Written in the file itself; refused when the file is readable by others.
    Literal(Secret),
    /// `env:NAME`: the value of an environment variable.
    Env(String),
    /// `file:PATH`: the contents of a file (trailing newline removed); a relative path is
    /// relative to the configuration file's directory.
    File(PathBuf),
}

impl SecretRef {
    /// Parses `env:NAME`, `file:PATH` or a literal.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        if let Some(name) = text.strip_prefix("env:") {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "{} is not an environment variable name",
                    quote(name)
                ));
            }
            return Ok(SecretRef::Env(name.to_string()));
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err("'file:' needs a path, e.g. file:/run/secrets/es".to_string());
            }
            return Ok(SecretRef::File(PathBuf::from(path)));
        }
        if text.is_empty() {
            return Err("is empty".to_string());
        }
        Ok(SecretRef::Literal(Secret::new(text)))
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, SecretRef::Literal(_))
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretRefVisitor)
    }
}

/// Accepts only strings, and never echoes a rejected value: it may be a secret typed
/// without quotes.
struct SecretRefVisitor;

const SECRET_EXPECTED: &str = "must be a string: a literal, env:NAME or file:PATH";

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string: a literal, env:NAME or file:PATH")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        SecretRef::parse(v).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_EXPECTED))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_EXPECTED))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_EXPECTED))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_EXPECTED))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(SECRET_EXPECTED))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(SECRET_EXPECTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_http_url("https://es1:9200").unwrap().as_str(),
            "https://es1:9200/"
        );
        assert!(parse_http_url("http://localhost:9200/prefix").is_ok());
        assert_eq!(
            parse_http_url("ftp://es1").unwrap_err(),
            "'ftp://es1' is not an http or https URL"
        );
        assert!(parse_http_url("es1:9200").is_err());
        assert!(
            parse_http_url("not a url")
                .unwrap_err()
                .starts_with("'not a url' is not a URL")
        );
        let creds = parse_http_url("https://elastic:hunter2@es1:9200").unwrap_err();
        assert!(!creds.contains("hunter2"), "{creds}");
        assert!(creds.contains("contains credentials"), "{creds}");
    }

    #[test]
    fn fingerprints() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&hex), Some("ab".repeat(32)));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons), Some("ab".repeat(32)));
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"ZZ".repeat(32)), None);
    }

    #[test]
    fn secret_refs() {
        assert_eq!(
            SecretRef::parse("env:ES_KEY"),
            Ok(SecretRef::Env("ES_KEY".into()))
        );
        assert_eq!(
            SecretRef::parse("file:/run/s"),
            Ok(SecretRef::File(PathBuf::from("/run/s")))
        );
        assert!(SecretRef::parse("hunter2").unwrap().is_literal());
        assert!(SecretRef::parse("env:").is_err());
        assert!(SecretRef::parse("env:A B").is_err());
        assert!(SecretRef::parse("file:").is_err());
        assert!(SecretRef::parse("").is_err());
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(quote("a'b"), "'a\\'b'");
        assert_eq!(quote("a\nb"), "'a\\nb'");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("'{}…'", "x".repeat(60)));
    }
}
