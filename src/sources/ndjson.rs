//! The `ndjson` source: one JSON object per line, from a file or standard input (`-`). Lines
//! are read one at a time, never the whole file. A line that cannot become a document (not
//! JSON, not an object, no id) is yielded as `SourceItem::Invalid` naming its line number, and
//! the sync goes on. So is a line longer than `max_line_bytes`, with a 1 KB preview: its rest
//! is skipped as it streams by, never held whole.

use super::fields::{configuration, field, int_at_least, str_setting};
use super::lines::{FILE_READ_BYTES, LineReader};
use super::{
    DataSource, Document, Fields, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode,
};
use crate::model::Configuration;
use async_trait::async_trait;
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::AsyncRead;

/// The default of `max_line_bytes`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// How much of a line that is too long its dead letter keeps.
pub const LINE_PREVIEW_BYTES: usize = 1024;

/// Builds `ndjson` sources.
pub struct NdjsonFactory;

impl SourceFactory for NdjsonFactory {
    fn service_type(&self) -> &'static str {
        "ndjson"
    }

    fn display_name(&self) -> &'static str {
        "NDJSON file"
    }

    fn default_configuration(&self) -> Configuration {
        configuration([
            field("path", "File path")
                .text("")
                .tooltip("A file with one JSON object per line; '-' reads standard input."),
            field("id_field", "Id field")
                .text("id")
                .tooltip("The field of each object that holds its id."),
            field("max_line_bytes", "Longest line (bytes)")
                .int(DEFAULT_MAX_LINE_BYTES as i64)
                .tooltip(
                    "A longer line is dead-lettered with its line number and a 1 KB preview; \
                     reading goes on.",
                ),
        ])
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        NdjsonSettings::from_config(config).map(|_| ())
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        super::register_sensitive(config);
        Ok(Box::new(NdjsonSource {
            settings: NdjsonSettings::from_config(config)?,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NdjsonSettings {
    /// `None` reads standard input.
    path: Option<PathBuf>,
    id_field: String,
    max_line_bytes: usize,
}

impl NdjsonSettings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        let path = str_setting(config, "path", "");
        if path.is_empty() {
            return Err(SourceError::Config {
                field: "path".into(),
                reason: "a file path or '-' is required".into(),
            });
        }
        let id_field = str_setting(config, "id_field", "id");
        let id_field = if id_field.is_empty() {
            "id".to_string()
        } else {
            id_field
        };
        let path = (path != "-").then(|| PathBuf::from(path));
        let max = int_at_least(config, "max_line_bytes", DEFAULT_MAX_LINE_BYTES as i64, 1)?;
        let max_line_bytes = usize::try_from(max).map_err(|_| SourceError::Config {
            field: "max_line_bytes".into(),
            reason: format!("'{max}' is too large"),
        })?;
        Ok(Self {
            path,
            id_field,
            max_line_bytes,
        })
    }
}

/// A running `ndjson` source.
struct NdjsonSource {
    settings: NdjsonSettings,
}

#[async_trait]
impl DataSource for NdjsonSource {
    async fn ping(&mut self) -> Result<(), SourceError> {
        let Some(path) = &self.settings.path else {
            return Ok(());
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| unavailable(path, &e))?;
        let metadata = file.metadata().await.map_err(|e| unavailable(path, &e))?;
        if metadata.is_dir() {
            return Err(SourceError::Unavailable(format!(
                "'{}' is a directory, not a file",
                path.display()
            )));
        }
        Ok(())
    }

    async fn run(
        &mut self,
        _mode: SyncMode,
        out: ItemSender,
    ) -> Result<Option<Value>, SourceError> {
        let settings = &self.settings;
        match &settings.path {
            None => read_lines(tokio::io::stdin(), "standard input", settings, &out).await,
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| unavailable(path, &e))?;
                let name = format!("'{}'", path.display());
                read_lines(file, &name, settings, &out).await
            }
        }?;
        Ok(None)
    }
}

fn unavailable(path: &std::path::Path, e: &std::io::Error) -> SourceError {
    SourceError::Unavailable(format!("cannot read '{}': {e}", path.display()))
}

async fn read_lines<R: AsyncRead + Unpin>(
    reader: R,
    name: &str,
    settings: &NdjsonSettings,
    out: &ItemSender,
) -> Result<(), SourceError> {
    let mut lines = LineReader::with_read_bytes(reader, settings.max_line_bytes, FILE_READ_BYTES);
    let mut number = 0u64;
    loop {
        let more = lines
            .read_line()
            .await
            .map_err(|e| SourceError::Failed(format!("reading {name} after line {number}: {e}")))?;
        if !more {
            return Ok(());
        }
        number += 1;
        let item = if lines.len > settings.max_line_bytes {
            Some(too_long(
                &lines.buf,
                lines.len,
                number,
                settings.max_line_bytes,
            ))
        } else {
            parse_line(&lines.buf, number, &settings.id_field)
        };
        if let Some(item) = item {
            out.send(item).await?;
        }
    }
}

/// The dead letter of a line longer than `max` bytes: its number, length and first bytes.
fn too_long(start: &[u8], len: usize, number: u64, max: usize) -> SourceItem {
    let kept = &start[..start.len().min(LINE_PREVIEW_BYTES)];
    let preview = String::from_utf8_lossy(kept);
    SourceItem::Invalid {
        id: format!("line-{number}"),
        reason: format!(
            "line {number}: the line is {len} bytes, over max_line_bytes = {max}; only its \
             first {} bytes are kept as a preview",
            kept.len()
        ),
        raw: serde_json::json!({ "preview": preview, "size_bytes": len }),
    }
}

/// The item for one line (numbered from 1), or `None` for a blank line.
fn parse_line(bytes: &[u8], number: u64, id_field: &str) -> Option<SourceItem> {
    let invalid = |reason: String, text: &str| SourceItem::Invalid {
        id: format!("line-{number}"),
        reason: format!("line {number}: {reason}"),
        raw: Value::String(text.to_string()),
    };
    // Checked once: the lossy text is only made for a line that is not UTF-8.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim(),
        Err(_) => {
            let line = String::from_utf8_lossy(bytes);
            let text = line.trim();
            return (!text.is_empty()).then(|| invalid("not valid UTF-8".into(), text));
        }
    };
    if text.is_empty() {
        return None;
    }
    let invalid = |reason: String| invalid(reason, text);
    // An object (nearly every line) is read straight into `Fields`; anything else as a
    // `Value`, to name what it is.
    let parsed = if text.starts_with('{') {
        serde_json::from_str::<Fields>(text).map(Ok)
    } else {
        serde_json::from_str::<Value>(text).map(Err)
    };
    let fields: Fields = match parsed {
        Ok(Ok(fields)) => fields,
        Ok(Err(other)) => {
            return Some(invalid(format!(
                "expected a JSON object, found {}",
                kind(&other)
            )));
        }
        Err(e) => return Some(invalid(format!("not JSON: {e}"))),
    };
    match fields.get(id_field).and_then(id_text) {
        Some(id) => Some(SourceItem::Upsert(Document::new(id, fields))),
        None if fields.contains_key(id_field) => Some(invalid(format!(
            "field '{id_field}' must be a non-empty string or a number"
        ))),
        None => Some(invalid(format!("no '{id_field}' field"))),
    }
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(item: Option<SourceItem>) -> String {
        match item {
            Some(SourceItem::Invalid { reason, .. }) => reason,
            other => format!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn lines_become_documents_or_invalid_items() {
        match parse_line(br#"{"id": 12, "a": 1}"#, 1, "id") {
            Some(SourceItem::Upsert(doc)) => assert_eq!(doc.id, "12"),
            other => panic!("{other:?}"),
        }
        assert!(parse_line(b"   \r\n", 2, "id").is_none());
        assert_eq!(
            reason(parse_line(b"[1]", 3, "id")),
            "line 3: expected a JSON object, found an array"
        );
        assert!(reason(parse_line(b"{oops", 4, "id")).starts_with("line 4: not JSON"));
        assert_eq!(
            reason(parse_line(br#"{"x": 1}"#, 5, "id")),
            "line 5: no 'id' field"
        );
        assert_eq!(
            reason(parse_line(br#"{"id": null}"#, 6, "id")),
            "line 6: field 'id' must be a non-empty string or a number"
        );
        assert_eq!(
            reason(parse_line(b"{\"id\": \"\xff\"}", 7, "id")),
            "line 7: not valid UTF-8"
        );
    }

    #[test]
    fn a_path_is_required() {
        let mut config = NdjsonFactory.default_configuration();
        let err = NdjsonFactory.validate(&config).unwrap_err().to_string();
        assert!(err.contains("'path'"), "{err}");
        config.0.get_mut("path").unwrap().value = Value::from("-");
        assert!(NdjsonFactory.validate(&config).is_ok());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any file: every non-blank line becomes exactly one item, a line over the
            /// bound is dead-lettered with a preview no longer than 1 KB, and nothing panics.
            #[test]
            fn every_line_is_one_item_and_long_ones_are_previews(
                lines in proptest::collection::vec(
                    prop_oneof![
                        "\\PC{0,40}",
                        "[a-z]{0,8}".prop_map(|id| format!("{{\"id\":\"{id}\"}}")),
                        Just(String::new()),
                        (1usize..3000).prop_map(|n| format!("{{\"id\":\"x\",\"b\":\"{}\"}}", "z".repeat(n))),
                    ],
                    0..40,
                ),
                max in 16usize..2048,
            ) {
                let text = lines.join("\n");
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let settings = NdjsonSettings { path: None, id_field: "id".into(), max_line_bytes: max };
                let items = rt.block_on(async {
                    let (tx, mut rx) = ItemSender::channel(100_000);
                    read_lines(text.as_bytes(), "fuzz", &settings, &tx).await.unwrap();
                    drop(tx);
                    let mut items = Vec::new();
                    while let Some(item) = rx.recv().await {
                        items.push(item);
                    }
                    items
                });
                // A line over the bound is dead-lettered unread, even if it is only spaces.
                let expected = text
                    .split('\n')
                    .filter(|l| !l.trim().is_empty() || l.len() > max)
                    .count();
                prop_assert_eq!(items.len(), expected);
                for item in &items {
                    if let SourceItem::Invalid { raw, .. } = item {
                        prop_assert!(raw.to_string().len() <= 2 * LINE_PREVIEW_BYTES + 64 || raw.is_string());
                        if let Some(p) = raw.get("preview") {
                            prop_assert!(p.as_str().is_some_and(|p| p.len() <= LINE_PREVIEW_BYTES + 3));
                        }
                    }
                }
            }
        }
    }
}
