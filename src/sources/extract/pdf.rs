//! PDF text, page by page, with `lopdf`: decompression bounded by the unpacked-size limit,
//! the time limit checked between pages, and a page that cannot be read skipped as long as
//! another page gave text. Nothing here knows about documents or files.

use super::{Deadline, ExtractError, ExtractLimits};
use lopdf::{Document, LoadOptions};

fn invalid(reason: impl std::fmt::Display) -> ExtractError {
    ExtractError::Invalid {
        format: "PDF",
        reason: reason.to_string(),
    }
}

/// The text of every page, pages separated by blank lines.
pub(super) fn pdf_text(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let unpacked = usize::try_from(limits.unpacked_limit()).unwrap_or(usize::MAX);
    let mut doc =
        Document::load_mem_with_options(bytes, LoadOptions::with_max_decompressed_size(unpacked))
            .map_err(invalid)?;
    deadline.check()?;
    // Many PDFs are "encrypted" with an empty user password: they open for anyone.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(invalid("the PDF is protected by a password"));
    }
    let page_ids = doc.get_pages();
    // A page tree that leads nowhere is damage, not an empty document.
    if page_ids.is_empty() {
        return Err(invalid("the PDF has no readable pages"));
    }
    let mut pages = Vec::new();
    let mut first_error = None;
    for (number, id) in page_ids {
        deadline.check()?;
        match doc.extract_text_with_limit(&[number], unpacked) {
            Ok(text) if text.trim().is_empty() => {
                // lopdf reads an undecodable content stream as no text at all: tell a blank
                // (or scanned) page from a broken one.
                if let Some(reason) = broken_content(&doc, id, unpacked) {
                    first_error.get_or_insert_with(|| format!("page {number}: {reason}"));
                }
                pages.push(String::new());
            }
            Ok(text) => pages.push(tidy(&text)),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("page {number}: {e}"));
            }
        }
    }
    let text: Vec<String> = pages.into_iter().filter(|p| !p.is_empty()).collect();
    match (text.is_empty(), first_error) {
        (true, Some(error)) => Err(invalid(error)),
        _ => Ok(text.join("\n\n")),
    }
}

/// Why a page's content streams cannot be read, if they cannot.
fn broken_content(doc: &Document, page: lopdf::ObjectId, limit: usize) -> Option<String> {
    if let Err(e) = doc.get_dictionary(page) {
        return Some(format!("the page object cannot be read ({e})"));
    }
    let bytes = match doc.get_page_content_with_limit(page, limit) {
        Ok(bytes) => bytes,
        Err(e) => return Some(e.to_string()),
    };
    // Strict: the lenient decoder turns garbage into no operations, that is, a blank page.
    lopdf::content::Content::decode_strict(&bytes)
        .err()
        .map(|e| format!("its content stream is damaged ({e})"))
}

// lopdf ends text lines with '\n' and keeps trailing spaces; trim each line, drop blank ones.
fn tidy(page: &str) -> String {
    page.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
