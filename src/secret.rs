//! `Secret`: the one wrapper every secret value (API keys, passwords, tokens, sensitive
//! configuration values) lives in while in memory. Its `Debug`, `Display` and `Serialize`
//! print a mask, so no log line, panic message or snapshot can show it by accident; the only
//! way to the plain text is the explicit [`Secret::expose`].
//!
//! Making a `Secret` also registers it with the [`mask`] module, which scrubs it (and its
//! base64 and URL-encoded forms) from every string that leaves the process.

pub mod mask;

pub use mask::{mask, masked};

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The mask printed in place of every secret.
pub const MASK: &str = "••••••";

/// A secret string. Cloning is cheap enough for configuration values; the text is zeroised on
/// drop by `secrecy`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        mask::register(&value);
        Self(SecretString::from(value))
    }

    /// The plain text. Call only where the value must leave the process (an HTTP header,
    /// a child's environment) or where the operator explicitly asked to reveal it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printing_path_masks() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(format!("{s:#?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
