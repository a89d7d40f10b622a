//! Binary attachments of documents (`_attachment`, base64, as the connectors framework sends
//! them): the content type from the bytes themselves (PDF, Office packages), else from the
//! document's declared type or file name, then local extraction into `body`. A document is
//! never dropped for its attachment: a failure is recorded in `_extraction_error`.

use super::office;
use super::{ExtractError, ExtractLimits, content_type_for_extension, extract_bytes};
use crate::sources::Fields;
use base64::Engine;
use serde_json::Value;

/// The field holding a base64 attachment.
pub const ATTACHMENT_FIELD: &str = "_attachment";
/// The field the extracted text goes to.
pub const BODY_FIELD: &str = "body";
/// The field a failed extraction's reason goes to.
pub const ERROR_FIELD: &str = "_extraction_error";

/// Fields that may declare the attachment's content type.
const TYPE_FIELDS: [&str; 4] = ["_content_type", "content_type", "mime_type", "mimeType"];
/// Fields that may hold the attachment's file name (for its extension).
const NAME_FIELDS: [&str; 6] = ["_name", "filename", "file_name", "name", "title", "path"];

/// The content type of bytes from their first bytes: PDF, DOCX, XLSX or PPTX.
pub fn sniff_content_type(bytes: &[u8]) -> Option<&'static str> {
    // The PDF header may follow some junk, within the first 1024 bytes.
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some("application/pdf");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return office::package_type(bytes);
    }
    None
}

/// Replaces `_attachment` (base64) with the extracted text in `body`, or records why it could
/// not be extracted in `_extraction_error`. Leaves the document alone when it has no
/// attachment. Extraction runs on a blocking thread within `limits.time_limit`.
pub async fn extract_attachment(fields: &mut Fields, limits: &ExtractLimits) {
    let Some(attachment) = fields.remove(ATTACHMENT_FIELD) else {
        return;
    };
    let outcome = match decode(&attachment, limits) {
        Ok(bytes) => {
            let content_type = content_type(fields, &bytes);
            extract_bytes(bytes, &content_type, *limits).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(text) => {
            fields.remove(ERROR_FIELD);
            fields.insert(BODY_FIELD, Value::String(text));
        }
        Err(e) => {
            fields.insert(ERROR_FIELD, Value::String(e.to_string()));
        }
    }
}

/// The attachment's bytes; refuses an attachment over the size limit before decoding it.
fn decode(attachment: &Value, limits: &ExtractLimits) -> Result<Vec<u8>, ExtractError> {
    let Value::String(text) = attachment else {
        return Err(ExtractError::Invalid {
            format: "attachment",
            reason: format!("'{ATTACHMENT_FIELD}' is not a base64 string"),
        });
    };
    // The decoded size, from the length alone: no 100 MiB decode to learn it is too big.
    let significant = text.bytes().filter(|b| !b.is_ascii_whitespace()).count() as u64;
    let padding = text
        .trim_end()
        .bytes()
        .rev()
        .take_while(|&b| b == b'=')
        .count() as u64;
    let size = (significant * 3 / 4).saturating_sub(padding);
    if size > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&compact))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
        .map_err(|e| ExtractError::Invalid {
            format: "base64",
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    Ok(bytes)
}

/// Sniffed from the bytes, else declared, else from a file name, else plain text when it
/// is UTF-8.
fn content_type(fields: &Fields, bytes: &[u8]) -> String {
    if let Some(sniffed) = sniff_content_type(bytes) {
        return sniffed.to_string();
    }
    let declared = TYPE_FIELDS
        .iter()
        .filter_map(|key| fields.get(key).and_then(Value::as_str))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .find(|t| !t.is_empty());
    if let Some(declared) = declared {
        return declared;
    }
    let from_name = NAME_FIELDS
        .iter()
        .filter_map(|key| fields.get(key).and_then(Value::as_str))
        .filter_map(|name| {
            name.rsplit_once('.')
                .map(|(_, ext)| content_type_for_extension(ext))
        })
        .find(|t| *t != "application/octet-stream");
    if let Some(from_name) = from_name {
        return from_name.to_string();
    }
    if std::str::from_utf8(bytes).is_ok() {
        return "text/plain".to_string();
    }
    "application/octet-stream".to_string()
}
