//! The `ndjson` source: one JSON object per line, from a file or standard input (`-`). Lines
//! are read one at a time, never the whole file. A line that cannot become a document (not
//! JSON, not an object, no id) is yielded as `SourceItem::Invalid` naming its line number, and
//! the sync goes on.

use super::builtin::{configuration, field, str_setting};
use super::{DataSource, Document, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode};
use crate::model::Configuration;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::path::PathBuf;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

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
        ])
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        NdjsonSettings::from_config(config).map(|_| ())
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
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
        Ok(Self { path, id_field })
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
        match &self.settings.path {
            None => {
                read_lines(
                    BufReader::new(tokio::io::stdin()),
                    "standard input",
                    &self.settings.id_field,
                    &out,
                )
                .await
            }
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| unavailable(path, &e))?;
                let name = format!("'{}'", path.display());
                read_lines(BufReader::new(file), &name, &self.settings.id_field, &out).await
            }
        }?;
        Ok(None)
    }
}

fn unavailable(path: &std::path::Path, e: &std::io::Error) -> SourceError {
    SourceError::Unavailable(format!("cannot read '{}': {e}", path.display()))
}

async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    name: &str,
    id_field: &str,
    out: &ItemSender,
) -> Result<(), SourceError> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| SourceError::Failed(format!("reading {name} after line {number}: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if let Some(item) = parse_line(&buf, number, id_field) {
            out.send(item).await?;
        }
    }
}

/// The item for one line (numbered from 1), or `None` for a blank line.
fn parse_line(bytes: &[u8], number: u64, id_field: &str) -> Option<SourceItem> {
    let line = String::from_utf8_lossy(bytes);
    let text = line.trim();
    if text.is_empty() {
        return None;
    }
    let invalid = |reason: String| SourceItem::Invalid {
        id: format!("line-{number}"),
        reason: format!("line {number}: {reason}"),
        raw: Value::String(text.to_string()),
    };
    if std::str::from_utf8(bytes).is_err() {
        return Some(invalid("not valid UTF-8".into()));
    }
    let fields: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => {
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
}
