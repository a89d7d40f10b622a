//! `Timestamp`: a UTC instant that reads ISO-8601 strings or epoch milliseconds (both occur in
//! connector documents) and always writes ISO-8601.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now())
    }

    pub fn from_millis(ms: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(ms).single().map(Self)
    }

    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// ISO-8601 with milliseconds and a `Z`, as Elasticsearch writes dates.
    pub fn to_iso(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(Self(dt.with_timezone(&Utc)));
        }
        // ES also stores dates without an offset ("2024-01-01T00:00:00.000").
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(Self(naive.and_utc()));
        }
        text.parse::<i64>().ok().and_then(Self::from_millis)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Self::from_millis(ms),
            Raw::Float(ms) => Self::from_millis(ms as i64),
            Raw::Text(t) => Self::parse(&t),
        }
        .ok_or_else(|| serde::de::Error::custom("expected an ISO-8601 date or epoch milliseconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iso_and_millis_writes_iso() {
        let a: Timestamp = serde_json::from_str("\"2024-05-01T10:00:00.000Z\"").unwrap();
        let b: Timestamp = serde_json::from_str("1714557600000").unwrap();
        let c: Timestamp = serde_json::from_str("\"2024-05-01T10:00:00\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"2024-05-01T10:00:00.000Z\""
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
