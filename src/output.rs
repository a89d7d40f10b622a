//! How the CLI prints: aligned human tables by default, JSON with `--json`. Everything goes
//! through [`Output`], which turns a closed pipe (`syncdeck ... --json | head`) into a quiet
//! success instead of a panic: a write to stdout that fails with `EPIPE` is remembered
//! ([`stdout_closed`]), so `main` tells it from any other broken pipe. Human text is shown
//! with control characters escaped ([`crate::text::terminal_safe`]): cells, details and
//! messages quote remote text (an API's error, a job's error, a document id). Both human text
//! and JSON go through the masker ([`crate::secret::mask`]) first, so a secret of the running
//! profile or job that a remote text echoes (a job's `error`, a document id) is shown masked,
//! whatever wrote it; only a command that asks for values (`--reveal`) turns that off.

use crate::text::{Keep, terminal_safe};
use serde::Serialize;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to the process's stdout failed because its reader went away (`EPIPE`).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// The process's stdout, noting a closed pipe.
struct Stdout(io::Stdout);

impl Stdout {
    fn note<T>(result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Self::note(self.0.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Self::note(self.0.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Self::note(self.0.flush())
    }
}

/// A table of text cells with a header row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders with two spaces between columns, the last column unpadded. Cells are shown
    /// with every control character escaped, so one cell stays on one line. Columns are
    /// measured in terminal cells, not characters: a CJK character or an emoji takes two.
    pub fn render(&self) -> String {
        let safe = |cells: &[String]| -> Vec<String> {
            cells
                .iter()
                .map(|c| terminal_safe(c, Keep::Nothing).into_owned())
                .collect()
        };
        let headers = safe(&self.headers);
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| safe(r)).collect();
        let columns = headers.len();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
        for row in &rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.width());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    let pad = widths[i].saturating_sub(cell.width());
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&headers);
        for row in &rows {
            line(row);
        }
        out
    }
}

/// A key/value listing for `show` commands.
pub fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let pad = " ".repeat(width.saturating_sub(k.width()));
            format!("{k}{pad}  {}\n", terminal_safe(v, Keep::Layout))
        })
        .collect()
}

/// The CLI's stdout.
pub struct Output {
    pub json: bool,
    /// Secrets are shown as they are (`--reveal`), not masked.
    reveal: bool,
    out: Box<dyn Write + Send>,
}

impl Output {
    pub fn stdout(json: bool) -> Self {
        Self {
            json,
            reveal: false,
            out: Box::new(Stdout(io::stdout())),
        }
    }

    /// An output into a shared buffer, for tests.
    pub fn buffer(json: bool, buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> Self {
        Self {
            json,
            reveal: false,
            out: Box::new(SharedBuffer(buffer)),
        }
    }

    /// From now on, secrets are written as they are: for the one command that asks for
    /// them (`connectors config --reveal`).
    pub fn reveal_secrets(&mut self) {
        self.reveal = true;
    }

    /// Human text: known secrets masked (unless revealing), control characters other than
    /// newline and tab escaped.
    pub fn text(&mut self, text: &str) -> io::Result<()> {
        let text = if self.reveal {
            std::borrow::Cow::Borrowed(text)
        } else {
            crate::secret::mask::mask(text)
        };
        let text = terminal_safe(&text, Keep::Layout);
        self.out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }

    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let value = self.masked_json(value)?;
        serde_json::to_writer_pretty(&mut self.out, &value).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// One compact JSON document on one line (progress streams).
    pub fn json_line<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let value = self.masked_json(value)?;
        serde_json::to_writer(&mut self.out, &value).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// `value` as JSON, every string (and key) in it masked unless revealing. Key order is
    /// kept (serde_json's `preserve_order`).
    fn masked_json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<serde_json::Value> {
        let mut value = serde_json::to_value(value).map_err(io::Error::other)?;
        if !self.reveal {
            crate::secret::mask::mask_json(&mut value);
        }
        Ok(value)
    }

    /// JSON with `--json`, else the human rendering.
    pub fn either<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> io::Result<()> {
        if self.json {
            self.json(value)
        } else {
            self.text(&human())
        }
    }
}

struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| io::Error::other("buffer poisoned"))?;
        guard.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Shortens an id or text for a table cell to at most `max` terminal cells, the cut marked
/// with `…` (one cell). A wide character that would straddle the limit is left out whole.
pub fn ellipsize(text: &str, max: usize) -> String {
    if text.width() <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut kept = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        kept.push(c);
    }
    format!("{kept}…")
}

/// `-` for a missing value.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["a".into(), "first".into()]);
        t.row(vec!["long-id".into(), "x".into()]);
        assert_eq!(t.render(), "ID       NAME\na        first\nlong-id  x\n");
    }

    #[test]
    fn cells_details_and_text_escape_control_characters() {
        let hostile = "d1\u{1b}]0;owned\u{7}\u{1b}[2J";
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec![hostile.into(), "x\ny".into()]);
        let out = t.render();
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert_eq!(out.lines().count(), 2, "{out:?}");
        assert!(out.contains("d1\\x1b]0;owned\\x07\\x1b[2J"), "{out:?}");
        let d = details(&[("error", format!("bad\n{hostile}"))]);
        assert!(!d.contains('\u{1b}') && d.contains("bad\n"), "{d:?}");
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut o = Output::buffer(false, buffer.clone());
        o.text(hostile).unwrap();
        let written = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(!written.contains('\u{1b}'), "{written:?}");
    }

    #[test]
    fn known_secrets_are_masked_in_text_and_json_unless_revealed() {
        let secret = "output-test-secret-7f3a9c";
        crate::secret::mask::register(secret);
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let written = |buffer: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
            String::from_utf8(std::mem::take(&mut *buffer.lock().unwrap())).unwrap()
        };
        let mut o = Output::buffer(false, buffer.clone());
        o.text(&format!("job error: token {secret} refused"))
            .unwrap();
        let text = written(&buffer);
        assert!(
            !text.contains(secret) && text.contains(crate::secret::MASK),
            "{text}"
        );
        let mut j = Output::buffer(true, buffer.clone());
        j.json(&serde_json::json!({"b": secret, "a": [secret]}))
            .unwrap();
        let json = written(&buffer);
        assert!(!json.contains(secret), "{json}");
        assert!(
            json.find("\"b\"") < json.find("\"a\""),
            "order kept: {json}"
        );
        j.json_line(&serde_json::json!({"id": secret})).unwrap();
        assert!(!written(&buffer).contains(secret));
        o.reveal_secrets();
        o.text(secret).unwrap();
        assert!(written(&buffer).contains(secret));
    }

    #[test]
    fn ellipsize_counts_terminal_cells() {
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("ab", 4), "ab");
        // Each of these takes two cells: three cells of budget keep one, not three.
        assert_eq!(ellipsize("日本語テキスト", 4), "日…");
        assert_eq!(ellipsize("日本語テキスト", 5), "日本…");
        assert_eq!(ellipsize("🚀🚀🚀", 6), "🚀🚀🚀");
        assert_eq!(ellipsize("🚀🚀🚀", 5), "🚀🚀…");
    }

    #[test]
    fn wide_characters_keep_columns_aligned() {
        let mut t = Table::new(&["NAME", "STATUS"]);
        t.row(vec!["日本語".into(), "ok".into()]);
        t.row(vec!["rocket 🚀".into(), "ok".into()]);
        t.row(vec!["plain".into(), "ok".into()]);
        let out = t.render();
        // Every STATUS cell starts in the same terminal column (two cells per wide char).
        let starts: Vec<usize> = out
            .lines()
            .map(|l| {
                let name_end = l.rfind("  ").expect("two spaces before the last column");
                l[..name_end + 2].width()
            })
            .collect();
        assert_eq!(starts, vec![11, 11, 11, 11], "{out}");
        assert_eq!(
            out,
            "NAME       STATUS\n日本語     ok\nrocket 🚀  ok\nplain      ok\n"
        );
        let d = details(&[("名前", "x".into()), ("id", "y".into())]);
        assert_eq!(d, "名前  x\nid    y\n");
    }
}
