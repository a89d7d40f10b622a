//! PostgreSQL values, read in the binary wire format, as Elastic's `postgresql` connector
//! turns them into JSON (asyncpg's Python objects through the framework's `serialize`), and
//! as Python's `str()` shows them in document ids. Geometric types are read in binary too and
//! written in the Python connector's own text forms (`(1.0, 2.0)`, not PostgreSQL's `(1,2)`).
//! Types asyncpg hands over as text or as objects its serialiser turns into text (money, bit
//! strings, enums, ranges, …) are selected as `::text` instead (see [`is_native`]). Where Python fails, this does better:
//! `interval` becomes an ISO-8601 duration (Python's bulk serialisation raises on its
//! `timedelta`), NaN and the infinities of floats and numerics become null (Python writes
//! the invalid JSON tokens `NaN` and `Infinity`).

use super::{
    json_float, py_bytes_repr, py_float, py_isoformat_naive, py_repr, utf8_dropping_invalid,
};
use chrono::{Duration as ChronoDuration, NaiveDate, NaiveDateTime};
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};
use tokio_postgres::types::{FromSql, Kind, Type};

/// One column's raw bytes, whatever its type (`None` for NULL).
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A value that is not what its type says (a server bug or a type mix-up): named, never shown.
#[derive(Debug, thiserror::Error)]
#[error("a '{0}' value is not in the expected binary form")]
pub struct BadValue(pub String);

// Type OIDs, fixed by PostgreSQL's catalog.
const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const CHAR: u32 = 18;
const NAME: u32 = 19;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const TEXT: u32 = 25;
const OID: u32 = 26;
const JSON: u32 = 114;
const XML: u32 = 142;
const CIDR: u32 = 650;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const INET: u32 = 869;
const BPCHAR: u32 = 1042;
const VARCHAR: u32 = 1043;
const DATE: u32 = 1082;
const TIME: u32 = 1083;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const INTERVAL: u32 = 1186;
const TIMETZ: u32 = 1266;
const NUMERIC: u32 = 1700;
const UUID: u32 = 2950;
const JSONB: u32 = 3802;
const POINT: u32 = 600;
const LSEG: u32 = 601;
const PATH: u32 = 602;
const BOX: u32 = 603;
const POLYGON: u32 = 604;
const LINE: u32 = 628;
const CIRCLE: u32 = 718;
const PG_LSN: u32 = 3220;

fn native_scalar(oid: u32) -> bool {
    matches!(
        oid,
        BOOL | BYTEA
            | CHAR
            | NAME
            | INT8
            | INT2
            | INT4
            | TEXT
            | OID
            | JSON
            | XML
            | CIDR
            | FLOAT4
            | FLOAT8
            | INET
            | BPCHAR
            | VARCHAR
            | DATE
            | TIME
            | TIMESTAMP
            | TIMESTAMPTZ
            | INTERVAL
            | TIMETZ
            | NUMERIC
            | UUID
            | JSONB
            | POINT
            | LSEG
            | PATH
            | BOX
            | POLYGON
            | LINE
            | CIRCLE
            | PG_LSN
    )
}

/// Whether a column of this type is read in binary here; the others are selected as text
/// (`::text`, or `::text[]` for arrays).
pub fn is_native(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(elem) => matches!(elem.kind(), Kind::Simple) && native_scalar(elem.oid()),
        Kind::Simple => native_scalar(ty.oid()),
        _ => false,
    }
}

/// The cast that makes a non-native column readable: `::text` or `::text[]`.
pub fn text_cast(ty: &Type) -> &'static str {
    match ty.kind() {
        Kind::Array(_) => "::text[]",
        _ => "::text",
    }
}

fn be<const N: usize>(raw: &[u8], at: usize, ty: &str) -> Result<[u8; N], BadValue> {
    raw.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| BadValue(ty.to_string()))
}

fn i16_at(raw: &[u8], at: usize, ty: &str) -> Result<i16, BadValue> {
    be::<2>(raw, at, ty).map(i16::from_be_bytes)
}
fn i32_at(raw: &[u8], at: usize, ty: &str) -> Result<i32, BadValue> {
    be::<4>(raw, at, ty).map(i32::from_be_bytes)
}
fn i64_at(raw: &[u8], at: usize, ty: &str) -> Result<i64, BadValue> {
    be::<8>(raw, at, ty).map(i64::from_be_bytes)
}

fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
}

/// A column's JSON value from its binary form.
pub fn to_json(ty: &Type, raw: Option<&[u8]>) -> Result<Value, BadValue> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    if let Kind::Array(elem) = ty.kind() {
        return array_to_json(elem, raw);
    }
    scalar_to_json(ty.oid(), ty.name(), raw)
}

fn scalar_to_json(oid: u32, name: &str, raw: &[u8]) -> Result<Value, BadValue> {
    Ok(match oid {
        BOOL => Value::Bool(raw.first().is_some_and(|b| *b != 0)),
        INT2 => Value::from(i16_at(raw, 0, name)?),
        INT4 => Value::from(i32_at(raw, 0, name)?),
        INT8 => Value::from(i64_at(raw, 0, name)?),
        OID => Value::from(be::<4>(raw, 0, name).map(u32::from_be_bytes)?),
        // asyncpg decodes a WAL position as its 64-bit integer, not PostgreSQL's `16/B374D848`.
        PG_LSN => Value::from(be::<8>(raw, 0, name).map(u64::from_be_bytes)?),
        FLOAT4 => json_float(f32::from_be_bytes(be::<4>(raw, 0, name)?) as f64),
        FLOAT8 => json_float(f64::from_be_bytes(be::<8>(raw, 0, name)?)),
        NUMERIC => match numeric(raw)? {
            Numeric::Finite(text) => json_float(text.parse::<f64>().unwrap_or(f64::NAN)),
            _ => Value::Null,
        },
        JSON => serde_json::from_slice(raw).map_err(|_| BadValue(name.into()))?,
        JSONB => {
            // A version byte (1), then the JSON text.
            serde_json::from_slice(raw.get(1..).unwrap_or_default())
                .map_err(|_| BadValue(name.into()))?
        }
        BYTEA => Value::String(utf8_dropping_invalid(raw)),
        UUID => Value::String(uuid(raw, name)?),
        DATE => Value::String(date(raw, name)?),
        TIME => Value::String(time_of_day(i64_at(raw, 0, name)?)),
        TIMETZ => Value::String(timetz(raw, name)?),
        TIMESTAMP => Value::String(timestamp(raw, name, false)?),
        TIMESTAMPTZ => Value::String(timestamp(raw, name, true)?),
        INTERVAL => Value::String(interval(raw, name)?),
        INET | CIDR => Value::String(inet(raw, name)?),
        POINT | LSEG | PATH | BOX | POLYGON | LINE | CIRCLE => {
            Value::String(geometry(oid, raw, name)?)
        }
        // text, varchar, bpchar, name, "char", xml and the text casts.
        _ => Value::String(utf8_dropping_invalid(raw)),
    })
}

/// The value as Python's `str()` shows it in an id (`hash_id` runs before `serialize`):
/// `True`, `1.50`, `2024-01-02 03:04:05+00:00`, … `None` for NULL.
pub fn to_id_text(ty: &Type, raw: Option<&[u8]>) -> Result<Option<String>, BadValue> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let name = ty.name();
    let text = match (ty.kind(), ty.oid()) {
        (Kind::Simple, BOOL) => if raw.first().is_some_and(|b| *b != 0) {
            "True"
        } else {
            "False"
        }
        .to_string(),
        (Kind::Simple, NUMERIC) => match numeric(raw)? {
            Numeric::Finite(text) => text,
            Numeric::NaN => "NaN".into(),
            Numeric::PosInf => "Infinity".into(),
            Numeric::NegInf => "-Infinity".into(),
        },
        (Kind::Simple, FLOAT4) => py_float(f32::from_be_bytes(be::<4>(raw, 0, name)?) as f64),
        (Kind::Simple, FLOAT8) => py_float(f64::from_be_bytes(be::<8>(raw, 0, name)?)),
        (Kind::Simple, TIMESTAMP) => timestamp(raw, name, false)?.replacen('T', " ", 1),
        (Kind::Simple, TIMESTAMPTZ) => timestamp(raw, name, true)?.replacen('T', " ", 1),
        // asyncpg gives `bytes`, whose `str()` is its repr: `b'\x8f\x01'`.
        (Kind::Simple, BYTEA) => py_bytes_repr(raw),
        // json(b) is Python's dict, list, str, number or None (a None key is left out of the
        // id, as NULL is); `str()` of a dict or list is its repr: `{'a': [1, None]}`.
        (Kind::Simple, JSON | JSONB) => match to_json(ty, Some(raw))? {
            Value::Null => return Ok(None),
            Value::String(s) => s,
            other => py_repr(&other),
        },
        // A list's `str()` is its repr, `[1, 'a b', None]`, for the element types whose
        // Python objects this writes as JSON values.
        (Kind::Array(elem), _)
            if matches!(
                elem.oid(),
                BOOL | INT2
                    | INT4
                    | INT8
                    | OID
                    | FLOAT4
                    | FLOAT8
                    | TEXT
                    | VARCHAR
                    | BPCHAR
                    | NAME
                    | CHAR
                    | JSON
                    | JSONB
            ) =>
        {
            py_repr(&to_json(ty, Some(raw))?)
        }
        _ => match to_json(ty, Some(raw))? {
            Value::String(s) => s,
            other => other.to_string(),
        },
    };
    Ok(Some(text))
}

/// A numeric, as its exact decimal text, or one of its special values.
#[derive(Debug, PartialEq)]
pub enum Numeric {
    Finite(String),
    NaN,
    PosInf,
    NegInf,
}

/// Decodes `numeric`: digit count, weight (of the first base-10000 digit), sign, display
/// scale, then the base-10000 digits.
pub fn numeric(raw: &[u8]) -> Result<Numeric, BadValue> {
    let bad = || BadValue("numeric".into());
    let ndigits = i16_at(raw, 0, "numeric")?.max(0) as usize;
    let weight = i16_at(raw, 2, "numeric")? as i64;
    let sign = be::<2>(raw, 4, "numeric").map(u16::from_be_bytes)?;
    let dscale = be::<2>(raw, 6, "numeric").map(u16::from_be_bytes)? as usize;
    match sign {
        0xC000 => return Ok(Numeric::NaN),
        0xD000 => return Ok(Numeric::PosInf),
        0xF000 => return Ok(Numeric::NegInf),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(i16_at(raw, 8 + 2 * i, "numeric")?);
    }
    let digit = |i: i64| -> i16 {
        if i < 0 {
            0
        } else {
            digits.get(i as usize).copied().unwrap_or(0)
        }
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                text.push_str(&digit(i).to_string());
            } else {
                text.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    Ok(Numeric::Finite(text))
}

fn uuid(raw: &[u8], name: &str) -> Result<String, BadValue> {
    let b: [u8; 16] = be::<16>(raw, 0, name)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn date(raw: &[u8], name: &str) -> Result<String, BadValue> {
    // asyncpg maps ±infinity to Python's date.max / date.min.
    let days = i32_at(raw, 0, name)?;
    if days == i32::MAX {
        return Ok("9999-12-31".into());
    }
    if days == i32::MIN {
        return Ok("0001-01-01".into());
    }
    Ok(civil_date(days as i64))
}

/// The proleptic Gregorian date `days` after 2000-01-01, as `YYYY-MM-DD`, for any count
/// (PostgreSQL's dates reach 5874897 AD, beyond chrono's range and Python's 9999; asyncpg
/// fails the read there with "year … is out of range"; here the date is written with as many
/// year digits as it needs, and years before 1 AD astronomically: 0000 is 1 BC, -0001 2 BC).
fn civil_date(days: i64) -> String {
    // Howard Hinnant's days_from_civil inverse, from 0000-03-01.
    let z = days + 10957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", -y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// `HH:MM:SS[.ffffff]`, as Python's `time.isoformat()`.
fn time_of_day(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if frac == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{frac:06}")
    }
}

fn timetz(raw: &[u8], name: &str) -> Result<String, BadValue> {
    let micros = i64_at(raw, 0, name)?;
    // The zone is stored in seconds west of UTC.
    let east = -(i32_at(raw, 8, name)? as i64);
    let sign = if east < 0 { '-' } else { '+' };
    let abs = east.abs();
    let (h, m, s) = (abs / 3600, (abs / 60) % 60, abs % 60);
    let zone = if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    };
    Ok(format!("{}{zone}", time_of_day(micros)))
}

/// A timestamp as Python's `isoformat()`; `aware` adds `+00:00` (asyncpg hands timestamptz
/// over in UTC). ±infinity become Python's datetime.max / min, as asyncpg maps them.
pub fn timestamp(raw: &[u8], name: &str, aware: bool) -> Result<String, BadValue> {
    let micros = i64_at(raw, 0, name)?;
    let text = if micros == i64::MAX {
        "9999-12-31T23:59:59.999999".to_string()
    } else if micros == i64::MIN {
        "0001-01-01T00:00:00".to_string()
    } else {
        match pg_epoch().checked_add_signed(ChronoDuration::microseconds(micros)) {
            Some(t) => py_isoformat_naive(t),
            // Beyond chrono's years (PostgreSQL's timestamps reach 294276 AD).
            None => format!(
                "{}T{}",
                civil_date(micros.div_euclid(86_400_000_000)),
                time_of_day(micros.rem_euclid(86_400_000_000))
            ),
        }
    };
    // asyncpg gives ±infinity as the naive `datetime.max`/`min` even for `timestamptz`, so
    // the Python connector writes them without an offset.
    let finite = micros != i64::MAX && micros != i64::MIN;
    Ok(if aware && finite {
        format!("{text}+00:00")
    } else {
        text
    })
}

/// An interval as an ISO-8601 duration, each part with its own sign as PostgreSQL's
/// `iso_8601` style writes it: `P1Y2M3DT4H5M6.5S`, `PT0S` when empty.
fn interval(raw: &[u8], name: &str) -> Result<String, BadValue> {
    let micros = i64_at(raw, 0, name)?;
    let days = i32_at(raw, 8, name)?;
    let months = i32_at(raw, 12, name)?;
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [
        (years as i64, 'Y'),
        (months as i64, 'M'),
        (days as i64, 'D'),
    ] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if micros != 0 {
        out.push('T');
        let sign = if micros < 0 { "-" } else { "" };
        let abs = micros.unsigned_abs();
        let (h, m) = (abs / 3_600_000_000, (abs / 60_000_000) % 60);
        let (s, frac) = ((abs / 1_000_000) % 60, abs % 1_000_000);
        if h != 0 {
            out.push_str(&format!("{sign}{h}H"));
        }
        if m != 0 {
            out.push_str(&format!("{sign}{m}M"));
        }
        if s != 0 || frac != 0 {
            if frac == 0 {
                out.push_str(&format!("{sign}{s}S"));
            } else {
                let f = format!("{frac:06}");
                out.push_str(&format!("{sign}{s}.{}S", f.trim_end_matches('0')));
            }
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    Ok(out)
}

/// `inet` / `cidr` as Python's ipaddress objects print: an address alone when it is a
/// whole host (`inet` with a full mask), else with its prefix; `cidr` always with it.
fn inet(raw: &[u8], name: &str) -> Result<String, BadValue> {
    let bad = || BadValue(name.into());
    let family = *raw.first().ok_or_else(bad)?;
    let bits = *raw.get(1).ok_or_else(bad)?;
    let is_cidr = *raw.get(2).ok_or_else(bad)? != 0;
    let addr = match family {
        2 => Ipv4Addr::from(be::<4>(raw, 4, name)?).to_string(),
        3 => Ipv6Addr::from(be::<16>(raw, 4, name)?).to_string(),
        _ => return Err(bad()),
    };
    let full = if family == 2 { 32 } else { 128 };
    Ok(if !is_cidr && bits == full {
        addr
    } else {
        format!("{addr}/{bits}")
    })
}

/// A geometric value as the Python connector's `serialize` writes asyncpg's objects: points
/// as `(x, y)` with Python's float repr (`(1.0, 2.0)`), segments and boxes as `[(..), (..)]`
/// (a box high corner first, as PostgreSQL stores it), polygons as Python's `str()` of their
/// list of points, paths as that list after `open `/`closed `, lines and circles as `str()`
/// of their tuples (`(A, B, C)`, `((x, y), r)`).
fn geometry(oid: u32, raw: &[u8], name: &str) -> Result<String, BadValue> {
    let f = |i: usize| -> Result<String, BadValue> {
        be::<8>(raw, i * 8, name).map(|b| py_float(f64::from_be_bytes(b)))
    };
    let pt = |i: usize| -> Result<String, BadValue> { Ok(format!("({}, {})", f(i)?, f(i + 1)?)) };
    // `npts` points from byte `at`: Python's `str()` of a list of `(x, y)` tuples.
    let points = |at: usize| -> Result<String, BadValue> {
        let n = i32_at(raw, at, name)?;
        let n = usize::try_from(n).map_err(|_| BadValue(name.into()))?;
        let body = raw.get(at + 4..).ok_or_else(|| BadValue(name.into()))?;
        if body.len() != n.saturating_mul(16) {
            return Err(BadValue(name.into()));
        }
        let list = body
            .chunks_exact(16)
            .map(|p| {
                let x = f64::from_be_bytes(p[..8].try_into().unwrap_or_default());
                let y = f64::from_be_bytes(p[8..].try_into().unwrap_or_default());
                format!("({}, {})", py_float(x), py_float(y))
            })
            .collect::<Vec<_>>();
        Ok(format!("[{}]", list.join(", ")))
    };
    Ok(match oid {
        POINT => pt(0)?,
        LSEG | BOX => format!("[{}, {}]", pt(0)?, pt(2)?),
        LINE => format!("({}, {}, {})", f(0)?, f(1)?, f(2)?),
        CIRCLE => format!("({}, {})", pt(0)?, f(2)?),
        POLYGON => points(0)?,
        PATH => {
            let closed = *raw.first().ok_or_else(|| BadValue(name.into()))? != 0;
            let status = if closed { "closed" } else { "open" };
            format!("{status} {}", points(1)?)
        }
        _ => return Err(BadValue(name.into())),
    })
}

/// PostgreSQL's `MAXDIM`.
const MAX_ARRAY_DIMS: usize = 6;

/// A (possibly multi-dimensional) array as nested JSON lists, as asyncpg gives lists.
fn array_to_json(elem: &Type, raw: &[u8]) -> Result<Value, BadValue> {
    let name = elem.name();
    let ndim = i32_at(raw, 0, name)?.max(0) as usize;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    // PostgreSQL's arrays have at most 6 dimensions (MAXDIM); a header claiming more, or
    // more than the value's bytes hold, is not one of its arrays.
    let header = 12 + 8 * ndim;
    if ndim > MAX_ARRAY_DIMS || raw.len() < header {
        return Err(BadValue(name.into()));
    }
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        dims.push(i32_at(raw, 12 + 8 * d, name)?.max(0) as usize);
    }
    let mut at = header;
    // Each element takes at least its 4-byte length, so more than the bytes left cannot be.
    let total = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= (raw.len() - header) / 4)
        .ok_or_else(|| BadValue(name.into()))?;
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = i32_at(raw, at, name)?;
        at += 4;
        if len < 0 {
            flat.push(Value::Null);
            continue;
        }
        let len = len as usize;
        let bytes = raw.get(at..at + len).ok_or_else(|| BadValue(name.into()))?;
        at += len;
        flat.push(scalar_to_json(elem.oid(), name, bytes)?);
    }
    Ok(nest(&mut flat.into_iter(), &dims))
}

fn nest(items: &mut impl Iterator<Item = Value>, dims: &[usize]) -> Value {
    match dims {
        [] => items.next().unwrap_or(Value::Null),
        [n] => Value::Array(items.take(*n).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(items, rest)).collect()),
    }
}

/// A `timestamptz` value's text for `_timestamp` (`MAX(pg_xact_commit_timestamp(xmin))`).
pub fn commit_timestamp(raw: Option<&[u8]>) -> Result<Option<String>, BadValue> {
    raw.map(|r| timestamp(r, "timestamptz", true)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_array_headers_are_bad_values_not_panics_or_huge_allocations() {
        let int4 = Type::INT4;
        let header = |ndim: i32, dims: &[i32]| {
            let mut v = Vec::new();
            v.extend(ndim.to_be_bytes());
            v.extend(0i32.to_be_bytes());
            v.extend(23u32.to_be_bytes());
            for d in dims {
                v.extend(d.to_be_bytes());
                v.extend(1i32.to_be_bytes());
            }
            v
        };
        // A claimed 2^31-1 dimensions in a 12-byte value.
        assert!(array_to_json(&int4, &header(i32::MAX, &[])).is_err());
        // Seven dimensions: more than PostgreSQL's six.
        assert!(array_to_json(&int4, &header(7, &[1; 7])).is_err());
        // Dimensions whose product overflows usize.
        assert!(array_to_json(&int4, &header(6, &[i32::MAX; 6])).is_err());
        // More elements than the bytes left could hold.
        assert!(array_to_json(&int4, &header(1, &[1 << 20])).is_err());
        // A real one still decodes.
        let mut ok = header(2, &[2, 1]);
        for n in [5i32, 6] {
            ok.extend(4i32.to_be_bytes());
            ok.extend(n.to_be_bytes());
        }
        assert_eq!(
            array_to_json(&int4, &ok).unwrap(),
            serde_json::json!([[5], [6]])
        );
    }

    #[test]
    fn dates_beyond_chrono_and_python_do_not_panic() {
        let days = |d: i32| date(&d.to_be_bytes(), "date").unwrap();
        assert_eq!(days(0), "2000-01-01");
        assert_eq!(days(-730_119), "0001-01-01");
        assert_eq!(days(-730_120), "0000-12-31");
        assert_eq!(days(2_921_939), "9999-12-31");
        assert_eq!(days(2_921_940), "10000-01-01");
        // '300000-01-01'::date and PostgreSQL's last date, 5874897-12-31.
        assert_eq!(days(108_842_265), "300000-01-01");
        assert_eq!(days(2_145_031_948), "5874897-12-31");
        assert_eq!(days(i32::MAX), "9999-12-31");
        assert_eq!(days(i32::MIN), "0001-01-01");
        // '294276-12-31 23:59:59.999999'::timestamp, PostgreSQL's last.
        let last: i64 = 9_223_371_331_199_999_999;
        let ts = timestamp(&last.to_be_bytes(), "timestamp", false).unwrap();
        assert_eq!(ts, "294276-12-31T23:59:59.999999");
    }

    fn numeric_bytes(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(ndigits.to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_keep_their_scale() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let raw = numeric_bytes(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric(&raw).unwrap(), Numeric::Finite("12345.678".into()));
        // -0.0042 = [42], weight -1, dscale 4
        let raw = numeric_bytes(1, -1, 0x4000, 4, &[42]);
        assert_eq!(numeric(&raw).unwrap(), Numeric::Finite("-0.0042".into()));
        // 1.50
        let raw = numeric_bytes(2, 0, 0, 2, &[1, 5000]);
        assert_eq!(numeric(&raw).unwrap(), Numeric::Finite("1.50".into()));
        // 20000 = [2], weight 1
        let raw = numeric_bytes(1, 1, 0, 0, &[2]);
        assert_eq!(numeric(&raw).unwrap(), Numeric::Finite("20000".into()));
        let raw = numeric_bytes(0, 0, 0xC000, 0, &[]);
        assert_eq!(numeric(&raw).unwrap(), Numeric::NaN);
    }

    #[test]
    fn intervals_are_iso_durations() {
        let bytes = |micros: i64, days: i32, months: i32| {
            let mut v = micros.to_be_bytes().to_vec();
            v.extend(days.to_be_bytes());
            v.extend(months.to_be_bytes());
            v
        };
        assert_eq!(
            interval(
                &bytes(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, 3, 14),
                "interval"
            )
            .unwrap(),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval(&bytes(0, 0, 0), "interval").unwrap(), "PT0S");
        assert_eq!(
            interval(&bytes(-60_000_000, 0, 0), "interval").unwrap(),
            "PT-1M"
        );
    }

    #[test]
    fn times_are_pythons_isoformat() {
        assert_eq!(time_of_day(3_723_000_000), "01:02:03");
        assert_eq!(time_of_day(3_723_000_001), "01:02:03.000001");
        let mut raw = 0i64.to_be_bytes().to_vec();
        raw.extend((-7200i32).to_be_bytes());
        assert_eq!(timetz(&raw, "timetz").unwrap(), "00:00:00+02:00");
    }

    #[test]
    fn a_wal_position_is_its_integer_as_asyncpg_gives_it() {
        let raw = 0x16_B374_D848u64.to_be_bytes();
        assert_eq!(
            scalar_to_json(PG_LSN, "pg_lsn", &raw).unwrap(),
            Value::from(97_500_059_720u64)
        );
        assert!(scalar_to_json(PG_LSN, "pg_lsn", &raw[..4]).is_err());
    }

    fn floats(fs: &[f64]) -> Vec<u8> {
        fs.iter().flat_map(|f| f.to_be_bytes()).collect()
    }

    #[test]
    fn geometry_in_pythons_forms_and_hostile_bytes_are_bad_values() {
        let g = |oid, raw: &[u8]| geometry(oid, raw, "geo");
        assert_eq!(g(POINT, &floats(&[1.0, -0.5])).unwrap(), "(1.0, -0.5)");
        assert_eq!(
            g(CIRCLE, &floats(&[1.0, 2.0, 3.0])).unwrap(),
            "((1.0, 2.0), 3.0)"
        );
        assert_eq!(
            g(LINE, &floats(&[1.0, -1.0, 0.0])).unwrap(),
            "(1.0, -1.0, 0.0)"
        );
        assert_eq!(
            g(BOX, &floats(&[2.0, 2.0, 0.0, 1e20])).unwrap(),
            "[(2.0, 2.0), (0.0, 1e+20)]"
        );
        let mut path = vec![1u8];
        path.extend(2i32.to_be_bytes());
        path.extend(floats(&[0.0, 0.0, f64::NAN, 1.5]));
        assert_eq!(g(PATH, &path).unwrap(), "closed [(0.0, 0.0), (nan, 1.5)]");
        let mut poly = 0i32.to_be_bytes().to_vec();
        assert_eq!(g(POLYGON, &poly).unwrap(), "[]");
        // A count the bytes do not hold, a negative count, short values: errors, no panic.
        poly = 3i32.to_be_bytes().to_vec();
        poly.extend(floats(&[0.0, 0.0]));
        assert!(g(POLYGON, &poly).is_err());
        assert!(g(POLYGON, &(-1i32).to_be_bytes()).is_err());
        assert!(g(POLYGON, &i32::MAX.to_be_bytes()).is_err());
        assert!(g(POINT, &[0u8; 17]).is_ok(), "extra bytes are not read");
        assert!(g(POINT, &[0u8; 9]).is_err());
        assert!(g(LSEG, &floats(&[1.0, 2.0, 3.0])).is_err());
        assert!(g(PATH, &[]).is_err());
    }
}
