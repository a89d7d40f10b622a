//! Text extraction for file sources: plain text and Markdown as they are, HTML without tags,
//! scripts and styles (entities decoded), JSON as its string values, CSV as its cells, PDF
//! (`pdf`), DOCX/XLSX/PPTX (`office`). New formats are one more arm in [`extract_text`].
//! Inputs are bounded in size (and Office packages in unpacked size); a time limit is checked
//! while extracting, and [`extract_file`]/[`extract_bytes`] also run the work on a blocking
//! thread they stop waiting for at that limit. Binary `_attachment` fields of documents are
//! handled by `attachment` ([`extract_attachment`]). Nothing here knows about the engine.

mod attachment;
mod office;
mod pdf;

pub use attachment::{
    ATTACHMENT_FIELD, BODY_FIELD, ERROR_FIELD, extract_attachment, sniff_content_type,
};
pub use office::{DOCX, PPTX, XLSX};

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The default largest input extracted: the connectors framework's `max_file_download_size`.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The default longest extraction of one document.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How many times its own size a compressed package (DOCX, XLSX, PPTX, PDF streams) may
/// unpack to: far above real documents, far below a zip bomb.
const UNPACK_FACTOR: u64 = 10;

/// What to extract from.
#[derive(Debug, Clone, Copy)]
pub enum ExtractInput<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

/// Bounds on extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Inputs larger than this are refused without being read.
    pub max_bytes: u64,
    /// The longest one extraction may take.
    pub time_limit: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            time_limit: DEFAULT_TIME_LIMIT,
        }
    }
}

impl ExtractLimits {
    /// The most a compressed input may unpack to.
    pub fn unpacked_limit(&self) -> u64 {
        self.max_bytes
            .saturating_mul(UNPACK_FACTOR)
            .max(1024 * 1024)
    }
}

#[derive(Debug, Error)]
pub enum ExtractError {
    #[error("the file is {size} bytes, over the extraction limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("no text extraction for content type '{0}'")]
    Unsupported(String),
    #[error("cannot read '{path}': {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not valid {format}: {reason}")]
    Invalid {
        format: &'static str,
        reason: String,
    },
    #[error("text extraction took longer than the limit of {} ms", .limit.as_millis())]
    TimedOut { limit: Duration },
    #[error("text extraction stopped: {0}")]
    Stopped(String),
}

/// The content types [`extract_text`] handles.
pub fn is_supported(content_type: &str) -> bool {
    matches!(
        content_type,
        "text/plain"
            | "text/markdown"
            | "text/html"
            | "application/json"
            | "text/csv"
            | "application/pdf"
            | DOCX
            | XLSX
            | PPTX
    )
}

/// The content type of a file extension (without the dot, any case).
pub fn content_type_for_extension(extension: &str) -> &'static str {
    match extension.to_ascii_lowercase().as_str() {
        "txt" | "text" | "log" | "rst" | "adoc" | "yaml" | "yml" | "toml" | "ini" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "html" | "htm" | "xhtml" => "text/html",
        "json" => "application/json",
        "csv" => "text/csv",
        "pdf" => "application/pdf",
        "docx" => DOCX,
        "xlsx" => XLSX,
        "pptx" => PPTX,
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

/// The text of a file or a buffer of the given content type.
pub fn extract_text(
    input: ExtractInput<'_>,
    content_type: &str,
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    if !is_supported(content_type) {
        return Err(ExtractError::Unsupported(content_type.to_string()));
    }
    let deadline = Deadline::after(limits.time_limit);
    let bytes: Cow<'_, [u8]> = match input {
        ExtractInput::Bytes(bytes) => {
            check_size(bytes.len() as u64, limits)?;
            Cow::Borrowed(bytes)
        }
        ExtractInput::Path(path) => Cow::Owned(read_limited(path, limits)?),
    };
    match content_type {
        "text/html" => Ok(html_text(&String::from_utf8_lossy(&bytes))),
        "application/json" => json_text(&bytes),
        "text/csv" => csv_text(&bytes),
        "application/pdf" => pdf::pdf_text(&bytes, limits, &deadline),
        DOCX => office::docx_text(&bytes, limits, &deadline),
        XLSX => office::xlsx_text(&bytes, limits, &deadline),
        PPTX => office::pptx_text(&bytes, limits, &deadline),
        _ => Ok(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// The end of an extraction's time, checked between pages, parts and XML events.
pub(crate) struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    fn after(limit: Duration) -> Self {
        Self {
            at: Instant::now() + limit,
            limit,
        }
    }

    fn check(&self) -> Result<(), ExtractError> {
        if Instant::now() >= self.at {
            return Err(ExtractError::TimedOut { limit: self.limit });
        }
        Ok(())
    }
}

/// Runs blocking extraction work on a blocking thread and stops waiting for it after
/// `limit`. The thread itself stops at its next deadline check (or when a library call
/// returns); its result is then dropped.
pub async fn with_time_limit<T, F>(limit: Duration, work: F) -> Result<T, ExtractError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ExtractError> + Send + 'static,
{
    let task = tokio::task::spawn_blocking(work);
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(ExtractError::Stopped(e.to_string())),
        Err(_) => Err(ExtractError::TimedOut { limit }),
    }
}

/// [`extract_text`] of a file, on a blocking thread, within `limits.time_limit`.
pub async fn extract_file(
    path: PathBuf,
    content_type: &str,
    limits: ExtractLimits,
) -> Result<String, ExtractError> {
    let content_type = content_type.to_string();
    with_time_limit(limits.time_limit, move || {
        extract_text(ExtractInput::Path(&path), &content_type, &limits)
    })
    .await
}

/// [`extract_text`] of bytes, on a blocking thread, within `limits.time_limit`.
pub async fn extract_bytes(
    bytes: Vec<u8>,
    content_type: &str,
    limits: ExtractLimits,
) -> Result<String, ExtractError> {
    let content_type = content_type.to_string();
    with_time_limit(limits.time_limit, move || {
        extract_text(ExtractInput::Bytes(&bytes), &content_type, &limits)
    })
    .await
}

fn check_size(size: u64, limits: &ExtractLimits) -> Result<(), ExtractError> {
    if size > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

// Reads at most one byte past the limit, so a file that grew after listing is still refused
// without loading it all.
fn read_limited(path: &Path, limits: &ExtractLimits) -> Result<Vec<u8>, ExtractError> {
    let io = |source| ExtractError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    check_size(size, limits)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(bytes.len() as u64, limits)?;
    Ok(bytes)
}

/// Every string value of a JSON document, in document order, one per line.
fn json_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ExtractError::Invalid {
            format: "JSON",
            reason: e.to_string(),
        })?;
    let mut parts = Vec::new();
    collect_strings(&value, &mut parts);
    Ok(parts.join("\n"))
}

fn collect_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) if !s.trim().is_empty() => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Cells joined by spaces, rows by newlines. Rows may have different lengths.
fn csv_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut lines = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| ExtractError::Invalid {
            format: "CSV",
            reason: e.to_string(),
        })?;
        let cells: Vec<Cow<'_, str>> = record
            .iter()
            .map(|cell| String::from_utf8_lossy(cell).trim().to_string().into())
            .filter(|cell: &Cow<'_, str>| !cell.is_empty())
            .collect();
        if !cells.is_empty() {
            lines.push(cells.join(" "));
        }
    }
    Ok(lines.join("\n"))
}

// Elements whose content is never text a reader sees.
const HIDDEN_ELEMENTS: [&str; 4] = ["script", "style", "noscript", "template"];

// Elements that break a line, so words on both sides do not run together.
const BLOCK_ELEMENTS: [&str; 26] = [
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "dt",
    "dd",
    "title",
    "nav",
    "aside",
];

/// The visible text of an HTML document: tags, comments, scripts and styles removed, entities
/// decoded, whitespace collapsed, block elements on their own lines. Tolerates broken markup.
pub fn html_text(html: &str) -> String {
    let mut raw = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_decoded(&mut raw, &rest[..lt]);
        rest = &rest[lt..];
        rest = skip_markup(rest, &mut raw);
    }
    push_decoded(&mut raw, rest);
    collapse_whitespace(&raw)
}

fn push_decoded(out: &mut String, text: &str) {
    if !text.is_empty() {
        out.push_str(&html_escape::decode_html_entities(text));
    }
}

// `rest` starts with '<'. Returns what follows the markup, writing separators to `out`.
fn skip_markup<'a>(rest: &'a str, out: &mut String) -> &'a str {
    if let Some(comment) = rest.strip_prefix("<!--") {
        return comment.find("-->").map_or("", |end| &comment[end + 3..]);
    }
    let after = &rest[1..];
    let closing = after.starts_with('/');
    let name_start = if closing { &after[1..] } else { after };
    let name_len = name_start
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name_start.len());
    let starts_tag = name_len > 0 && name_start.starts_with(|c: char| c.is_ascii_alphabetic());
    if !starts_tag && !after.starts_with('!') && !after.starts_with('?') {
        // A lone '<' in text, as in "a < b".
        out.push('<');
        return after;
    }
    let name = name_start[..name_len].to_ascii_lowercase();
    let Some(remainder) = skip_tag(after) else {
        // Never closed: text like "x<y", not a tag.
        out.push('<');
        return after;
    };
    if BLOCK_ELEMENTS.contains(&name.as_str()) {
        out.push('\n');
    } else {
        out.push(' ');
    }
    if !closing && HIDDEN_ELEMENTS.contains(&name.as_str()) {
        return skip_hidden_content(remainder, &name);
    }
    remainder
}

// Skips to the '>' that ends a tag, ignoring '>' inside quoted attribute values; `None`
// when no '>' ends it.
fn skip_tag(s: &str) -> Option<&str> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(&s[i + 1..]),
            (None, _) => {}
        }
    }
    None
}

// Skips past `</name ...>`, case-insensitively; to the end when it never closes.
fn skip_hidden_content<'a>(s: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(pos) = s[from..].find("</") {
        let name_at = from + pos + 2;
        let end = name_at + name.len();
        let matches_name = s
            .get(name_at..end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        let at_boundary = || {
            s[end..]
                .chars()
                .next()
                .is_none_or(|c| c == '>' || c == '/' || c.is_whitespace())
        };
        if matches_name && at_boundary() {
            return skip_tag(&s[end..]).unwrap_or("");
        }
        from = name_at;
    }
    ""
}

// Runs of spaces become one; lines are trimmed; blank lines are dropped.
fn collapse_whitespace(raw: &str) -> String {
    raw.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &str, content_type: &str) -> Result<String, ExtractError> {
        extract_text(
            ExtractInput::Bytes(bytes.as_bytes()),
            content_type,
            &ExtractLimits::default(),
        )
    }

    #[test]
    fn html_drops_tags_scripts_styles_comments_and_decodes_entities() {
        let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style></head>
<body><h1>Hello&nbsp;&amp; welcome</h1><!-- hidden --><p class="a>b">Caf&eacute; &lt;3 &#x263A;</p>
<SCRIPT type="x">if (a < b) { alert("no") }</SCRIPT><div>one<br>two</div> a < b</body></html>"#;
        let out = html_text(html);
        assert_eq!(out, "T\nHello & welcome\nCafé <3 ☺\none\ntwo\na < b");
    }

    #[test]
    fn html_survives_broken_markup() {
        assert_eq!(html_text("<p>open <b>bold"), "open bold");
        assert_eq!(html_text("<script>never closed"), "");
        assert_eq!(html_text("text <!-- unterminated"), "text");
        assert_eq!(html_text("<"), "<");
        assert_eq!(html_text("x<y"), "x<y");
        assert_eq!(
            html_text("if a<b and b>c"),
            "if a c",
            "a tag-like run is still a tag"
        );
        assert_eq!(html_text("<scriptx>kept</scriptx>"), "kept");
    }

    #[test]
    fn json_joins_string_values_in_order() {
        let out = text(
            r#"{"title": "A", "n": 3, "tags": ["b", "c"], "nested": {"d": "e", "f": null}}"#,
            "application/json",
        );
        assert_eq!(out.unwrap(), "A\nb\nc\ne");
        let err = text("{not json", "application/json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not valid JSON"), "{err}");
    }

    #[test]
    fn csv_joins_cells_by_spaces_and_rows_by_newlines() {
        let out = text("name,city\n\"Smith, J\",Paris\nshort\n", "text/csv").unwrap();
        assert_eq!(out, "name city\nSmith, J Paris\nshort");
    }

    #[test]
    fn plain_text_and_markdown_pass_through() {
        assert_eq!(
            text("# Title\n\nbody", "text/markdown").unwrap(),
            "# Title\n\nbody"
        );
        assert_eq!(text("hi", "text/plain").unwrap(), "hi");
    }

    #[test]
    fn limits_and_unsupported_types_are_errors() {
        let limits = ExtractLimits {
            max_bytes: 3,
            ..ExtractLimits::default()
        };
        let err = extract_text(ExtractInput::Bytes(b"abcd"), "text/plain", &limits).unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { size: 4, limit: 3 }));
        let err = text("x", "image/png").unwrap_err().to_string();
        assert_eq!(err, "no text extraction for content type 'image/png'");
    }

    #[test]
    fn reads_files_and_names_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "file text").unwrap();
        let limits = ExtractLimits::default();
        assert_eq!(
            extract_text(ExtractInput::Path(&path), "text/plain", &limits).unwrap(),
            "file text"
        );
        let missing = dir.path().join("gone.txt");
        let err = extract_text(ExtractInput::Path(&missing), "text/plain", &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone.txt"), "{err}");
        let small = ExtractLimits {
            max_bytes: 4,
            ..ExtractLimits::default()
        };
        assert!(matches!(
            extract_text(ExtractInput::Path(&path), "text/plain", &small),
            Err(ExtractError::TooLarge { .. })
        ));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type_for_extension("MD"), "text/markdown");
        assert_eq!(content_type_for_extension("htm"), "text/html");
        assert_eq!(content_type_for_extension("csv"), "text/csv");
        assert_eq!(content_type_for_extension("pdf"), "application/pdf");
        assert_eq!(content_type_for_extension(""), "application/octet-stream");
    }
}
