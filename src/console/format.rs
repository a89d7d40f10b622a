//! How numbers, sizes and times read in the console: relative times against a given `now`
//! (never the clock, so snapshots are stable), durations, byte sizes, counts, truncation.
//! Pure functions of their arguments. Text from outside is made terminal-safe here
//! ([`safe`]), with the same function the CLI uses.

use crate::model::{JobStatus, SyncJob, Timestamp};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
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

/// How long a job has run: to its completion, to `now` while it runs, to its last check-in
/// once suspended (it stopped there and is not running); `—` before it started.
pub fn job_duration(job: &SyncJob, now: Timestamp) -> String {
    let Some(start) = job.started_at else {
        return "—".to_string();
    };
    let end = match (job.completed_at.or(job.canceled_at), job.status) {
        (Some(end), _) => end,
        (None, JobStatus::Suspended) => job.last_seen.unwrap_or(start),
        (None, _) => now,
    };
    duration_ms((end.0 - start.0).num_milliseconds().max(0) as u64)
}

/// Remote text as lines of at most `width` display columns, for detail views that show it
/// whole: its own line breaks kept, words moved to the next line, a word longer than a line
/// cut across lines; control characters escaped ([`safe`]). At least one line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = safe(raw);
        let mut current = String::new();
        let mut used = 0;
        for word in line.split(' ') {
            let w = word.width();
            let gap = usize::from(!current.is_empty());
            if used + gap + w <= width {
                if gap == 1 {
                    current.push(' ');
                }
                current.push_str(word);
                used += gap + w;
                continue;
            }
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                used = 0;
            }
            // A word longer than the line goes across lines.
            for c in word.chars() {
                let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                if used + cw > width && !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                    used = 0;
                }
                current.push(c);
                used += cw;
            }
        }
        out.push(current);
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// [`wrap`] for a styled line: the same greedy word wrap (a space run between words kept,
/// dropped where the line breaks; a word longer than the line goes across lines), each
/// character keeping its span's style. A view that sizes a box by the wrapped height
/// renders these lines unwrapped, so the height and what is drawn cannot disagree (ratatui's
/// own wrap breaks differently, at trailing spaces for one).
pub fn wrap_line(line: &Line<'_>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    // Words as styled pieces, each with the run of spaces before it (styled as written:
    // a label's trailing space keeps the label's style).
    type Pieces = Vec<Span<'static>>;
    let mut words: Vec<(Pieces, Pieces)> = Vec::new();
    let (mut word, mut gap): (Pieces, Pieces) = (Vec::new(), Vec::new());
    for span in &line.spans {
        for c in safe(&span.content).chars() {
            if c == ' ' {
                if !word.is_empty() {
                    words.push((std::mem::take(&mut gap), std::mem::take(&mut word)));
                }
                push_char(&mut gap, c, span.style);
                continue;
            }
            push_char(&mut word, c, span.style);
        }
    }
    if !word.is_empty() {
        words.push((gap, word));
    }
    let mut out: Vec<Vec<Span<'static>>> = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for (gap, word) in words {
        let w: usize = word.iter().map(|s| s.content.width()).sum();
        let (gap, gap_width) = if current.is_empty() {
            (Vec::new(), 0)
        } else {
            let gap_width = gap.iter().map(|s| s.content.width()).sum();
            (gap, gap_width)
        };
        if used + gap_width + w <= width {
            for piece in gap.into_iter().chain(word) {
                match current.last_mut() {
                    Some(last) if last.style == piece.style => {
                        last.content.to_mut().push_str(&piece.content);
                    }
                    _ => current.push(piece),
                }
            }
            used += gap_width + w;
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        for piece in word {
            for c in piece.content.chars() {
                let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                if used + cw > width && !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                    used = 0;
                }
                push_char(&mut current, c, piece.style);
                used += cw;
            }
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out.into_iter()
        .map(|spans| Line::from(spans).style(line.style))
        .collect()
}

/// Appends a character to the last span when it has this style, else as a new span.
fn push_char(spans: &mut Vec<Span<'static>>, c: char, style: Style) {
    match spans.last_mut() {
        Some(last) if last.style == style => last.content.to_mut().push(c),
        _ => spans.push(Span::styled(c.to_string(), style)),
    }
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

    #[test]
    fn a_styled_line_wraps_like_wrap_and_keeps_its_styles() {
        use ratatui::style::{Color, Style};
        let (dim, text) = (Style::new().fg(Color::Gray), Style::new().fg(Color::White));
        let line = Line::from(vec![
            Span::styled("status ", dim),
            Span::styled("in_progress", text),
            Span::raw("  "),
            Span::styled("worker ", dim),
            Span::styled("worker-b/17", text),
            Span::raw("  "),
        ]);
        let flat = line.to_string();
        for width in 1..40 {
            let wrapped = wrap_line(&line, width);
            let texts: Vec<String> = wrapped.iter().map(|l| l.to_string()).collect();
            // The same breaks; `wrap` may keep a space where a line ends, unseen.
            let plain: Vec<String> = wrap(flat.trim_end(), width)
                .into_iter()
                .map(|l| l.trim_end().to_string())
                .collect();
            assert_eq!(texts, plain, "width {width}");
            assert!(wrapped.iter().all(|l| l.width() <= width), "width {width}");
        }
        let wrapped = wrap_line(&line, 18);
        assert_eq!(wrapped.len(), 2, "{wrapped:?}");
        assert_eq!(wrapped[0].spans[0].style, dim);
        assert_eq!(wrapped[0].spans[1].content, "in_progress");
        assert_eq!(wrapped[0].spans[1].style, text);
        assert_eq!(wrapped[1].spans[1].style, text);
        assert_eq!(wrap_line(&Line::from(""), 10).len(), 1);
    }

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
    fn cells_are_cut_by_display_width_with_an_ellipsis() {
        assert_eq!(ellipsize("seed-connector-0", 14), "seed-connecto…");
        assert_eq!(ellipsize("seed-connector-0", 16), "seed-connector-0");
        // Wide characters count two columns and are never split.
        assert_eq!(ellipsize("日本語のテキスト", 7), "日本語…");
        assert_eq!(ellipsize("日本語", 6), "日本語");
        assert_eq!(ellipsize("abc", 1), "…");
        assert_eq!(ellipsize("abc", 0), "");
    }

    #[test]
    fn long_text_wraps_at_words_and_keeps_every_character() {
        let reason =
            "[1:2] failed to parse field [value] of type [long] in document with id 'doc-999'";
        let lines = wrap(reason, 20);
        assert!(lines.iter().all(|l| l.width() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), reason);
        assert_eq!(lines[0], "[1:2] failed to");
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10), ["one", "two"]);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("a\u{1b}[2J", 80), ["a\\x1b[2J"]);
    }

    #[test]
    fn a_job_runs_from_its_start_and_a_suspended_one_stops_at_its_last_check_in() {
        let job = |status: &str, started: Option<&str>, last_seen: &str| -> SyncJob {
            serde_json::from_value(serde_json::json!({
                "id": "j", "connector": {"id": "c"}, "status": status,
                "created_at": "2024-05-01T09:00:00Z", "started_at": started,
                "last_seen": last_seen,
            }))
            .unwrap()
        };
        let now = ts("2024-05-01T10:00:00Z");
        let running = job(
            "in_progress",
            Some("2024-05-01T09:59:00Z"),
            "2024-05-01T09:59:58Z",
        );
        assert_eq!(job_duration(&running, now), "1m00s");
        let suspended = job(
            "suspended",
            Some("2024-05-01T09:30:00Z"),
            "2024-05-01T09:40:00Z",
        );
        assert_eq!(job_duration(&suspended, now), "10m00s");
        let later = ts("2024-05-02T10:00:00Z");
        assert_eq!(job_duration(&suspended, later), "10m00s", "frozen");
        let pending = job("pending", None, "2024-05-01T09:00:00Z");
        assert_eq!(job_duration(&pending, now), "—");
    }

    #[test]
    fn remote_text_is_escaped() {
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(safe("two\nlines\tand\r"), "two lines and\\x0d");
        assert_eq!(first_line("x\u{1b}]0;t\u{7}\nrest"), "x\\x1b]0;t\\x07");
        assert_eq!(ellipsize("\u{1b}[2Jabcdef", 6), "\\x1b[…");
    }
}
