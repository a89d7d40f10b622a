//! How numbers, sizes and times read in the console: relative times against a given `now`
//! (never the clock, so snapshots are stable), durations, byte sizes, counts, truncation.
//! Pure functions of their arguments. Text from outside is made terminal-safe here
//! ([`safe`]), with the same function the CLI uses.

use crate::model::Timestamp;
use unicode_width::UnicodeWidthStr;

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`; `in 5s` for the future; `—` for none.
pub fn ago(now: Timestamp, then: Option<Timestamp>) -> String {
    let Some(then) = then else {
        return "—".to_string();
    };
    let secs = (now.0 - then.0).num_seconds();
    if secs < 0 {
        return format!("in {}", short_secs(secs.unsigned_abs()));
    }
    if secs < 2 {
        return "now".to_string();
    }
    format!("{} ago", short_secs(secs as u64))
}

/// The largest unit only: `45s`, `12m`, `3h`, `4d`.
pub fn short_secs(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A duration from milliseconds: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    if secs < 60 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    if secs < 3600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: `1,234/s`, `12.5/s`.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{}/s", count(per_sec.round() as u64))
    } else {
        format!("{per_sec:.1}/s")
    }
}

/// Remote text (a job's error, a document id, an API's answer) for one line of the screen:
/// every secret the masker knows is masked (whatever wrote the text), line breaks and tabs
/// become spaces, other control characters are shown escaped (`\x1b[2J`), never obeyed nor
/// silently dropped.
pub fn safe(text: &str) -> String {
    let flat = crate::secret::mask::mask(text).replace(['\n', '\t'], " ");
    crate::text::terminal_safe(&flat, crate::text::Keep::Nothing).into_owned()
}

/// Cuts `text` to `width` display columns, ending with `…` when cut; control characters
/// are escaped first ([`safe`]).
pub fn ellipsize(text: &str, width: usize) -> String {
    let text = &safe(text);
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// A timestamp as `2024-05-01 10:00:00`.
pub fn datetime(t: Option<Timestamp>) -> String {
    t.map(|t| t.0.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".to_string())
}

/// The first line of a message, for table cells, control characters escaped.
pub fn first_line(text: &str) -> String {
    safe(text.lines().next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn relative_times_use_the_given_now() {
        let now = ts("2024-05-01T10:00:00Z");
        assert_eq!(ago(now, Some(ts("2024-05-01T09:59:48Z"))), "12s ago");
        assert_eq!(ago(now, Some(ts("2024-05-01T07:00:00Z"))), "3h ago");
        assert_eq!(ago(now, Some(ts("2024-04-28T10:00:00Z"))), "3d ago");
        assert_eq!(ago(now, Some(ts("2024-05-01T10:00:30Z"))), "in 30s");
        assert_eq!(ago(now, None), "—");
    }

    #[test]
    fn units() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_300), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(7_380_000), "2h03m");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(rate(1234.4), "1,234/s");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
    }

    #[test]
    fn remote_text_is_escaped() {
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(safe("two\nlines\tand\r"), "two lines and\\x0d");
        assert_eq!(first_line("x\u{1b}]0;t\u{7}\nrest"), "x\\x1b]0;t\\x07");
        assert_eq!(ellipsize("\u{1b}[2Jabcdef", 6), "\\x1b[…");
    }
}
