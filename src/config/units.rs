//! Human-friendly units of the configuration file: durations (`"500ms"`, `"30s"`, `"1m30s"`)
//! and byte sizes (`"512KB"`, `"5MB"` or a plain number of bytes). Parsing only, no I/O.

use super::values::quote;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// The hint appended to every bad duration.
const DURATION_HINT: &str = "(use e.g. 500ms, 30s, 5m)";
/// The hint appended to every bad size.
const SIZE_HINT: &str = "(use e.g. 512KB, 5MB, or a number of bytes)";

/// Parses a duration: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`,
/// optionally separated by spaces (`"1m 30s"`). `None` for anything else, including overflow.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let (number, after) = split_number(rest)?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        total = total.checked_add(unit_duration(number, unit)?)?;
        rest = after.trim_start();
    }
    Some(total)
}

/// `number` of `unit`, or `None` for an unknown unit or an overflow.
fn unit_duration(number: u64, unit: &str) -> Option<Duration> {
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
}

/// Splits leading ASCII digits off `text` as a number.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let (digits, rest) = text.split_at(end);
    Some((digits.parse().ok()?, rest))
}

/// Parses a byte size: an integer with an optional unit, `B`, `KB`/`KiB` (1024), `MB`/`MiB`
/// (1024²) or `GB`/`GiB` (1024³), case-insensitive, spaces allowed before the unit.
pub fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = split_number(text.trim())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Formats a byte count the way the file accepts it (`5MB`, `512KB`, `1000B`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (factor, unit) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration the way the file accepts it, in its largest whole unit (`30d`, `90s`,
/// `1500ms`). Sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    let millis = d.as_millis();
    for (factor, unit) in UNITS {
        if millis >= factor && millis.is_multiple_of(factor) {
            return format!("{}{unit}", millis / factor);
        }
    }
    format!("{millis}ms")
}

/// `base × factor + extra`, saturating at `Duration::MAX` instead of panicking: the
/// engine's budgets are built from configured durations and counts, and no setting may
/// crash a running job.
pub fn saturating_budget(base: Duration, factor: u32, extra: Duration) -> Duration {
    base.saturating_mul(factor).saturating_add(extra)
}

/// A duration field of the file, e.g. `request_timeout = "30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> serde::Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a duration {DURATION_HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_duration(v)
            .map(DurationValue)
            .ok_or_else(|| E::custom(format!("{} is not a duration {DURATION_HINT}", quote(v))))
    }

    // A bare number has no unit: say so with the same message as any other bad duration.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "'{v}' is not a duration {DURATION_HINT}"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "'{v}' is not a duration {DURATION_HINT}"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!(
            "'{v}' is not a duration {DURATION_HINT}"
        )))
    }
}

/// A byte-size field of the file: `"5MB"` or an integer number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a size {SIZE_HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_size(v)
            .map(ByteSize)
            .ok_or_else(|| E::custom(format!("{} is not a size {SIZE_HINT}", quote(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom(format!("'{v}' is not a size {SIZE_HINT}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!("'{v}' is not a size {SIZE_HINT}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_in_their_largest_unit() {
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
        for text in ["30d", "2h", "90s", "1500ms", "5m"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }

    #[test]
    fn budgets_saturate_instead_of_overflowing() {
        let huge = Duration::from_secs(5_000_000_000 * 3600);
        assert_eq!(
            saturating_budget(huge, 4_000_000_001, Duration::from_secs(60)),
            Duration::MAX
        );
        assert_eq!(
            saturating_budget(Duration::from_secs(2), 3, Duration::from_secs(1)),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 2m "), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 1m"), Some(Duration::from_secs(3660)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "30",
            "30 parsecs",
            "s",
            "1.5s",
            "-1s",
            "99999999999999999999s",
            "30s x",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("18446744073709551615d"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MB"), Some(5 << 20));
        assert_eq!(parse_size("5 mib"), Some(5 << 20));
        assert_eq!(parse_size("512KB"), Some(512 << 10));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        for bad in ["", "MB", "5XB", "1.5MB", "-5MB", "99999999999999999999GB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(format_size(5 << 20), "5MB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(3 << 10), "3KB");
    }
}
