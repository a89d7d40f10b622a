//! Bulk writes and id scans as plain data: the request the engine serialises once
//! (`BulkRequest`), the per-item answer (`BulkResponse`, `BulkItem`, `ItemError`), one
//! document's metadata from an id scan (`DocMeta`) and a page of them (`IdPage`). Shared by
//! the `elastic` client and the backends; no I/O here.

use serde::{Deserialize, Serialize};

/// One bulk request, already serialised as NDJSON by the caller (the engine serialises each
/// document once, straight into this buffer).
#[derive(Debug, Clone, Default)]
pub struct BulkRequest {
    /// The default index for action lines that name none.
    pub index: String,
    pub pipeline: Option<String>,
    pub refresh: bool,
    /// NDJSON: action line, then source line for index/create/update. `Bytes`, so the
    /// sink can keep the body for retries and dead letters without copying it.
    pub body: bytes::Bytes,
    /// How many actions the body holds.
    pub actions: usize,
}

/// The result of one bulk request, item by item in request order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkResponse {
    pub took: u64,
    pub errors: bool,
    pub items: Vec<BulkItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkOp {
    Index,
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkItem {
    pub op: BulkOp,
    /// Empty when the answer leaves it out (syncdeck's `_bulk` requests ask for a lean answer;
    /// items match actions by position).
    pub id: String,
    pub status: u16,
    /// `created`, `updated`, `deleted`, `not_found`, `noop` when the item succeeded; a
    /// borrowed constant for those, so a million items cost no allocation.
    pub result: Option<std::borrow::Cow<'static, str>>,
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemError {
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
}

/// One document's metadata from an id scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocMeta {
    pub id: String,
    /// The `_timestamp` body field, when the document has one.
    pub timestamp: Option<String>,
    /// The document's `_id`, when it is not `id` (a body id that a scan preferred to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_id: Option<String>,
}

#[cfg(test)]
impl DocMeta {
    /// A `DocMeta` from borrowed parts, for tests.
    pub(crate) fn of(id: &str, timestamp: Option<&str>, stored_id: Option<&str>) -> Self {
        DocMeta {
            id: id.to_string(),
            timestamp: timestamp.map(str::to_string),
            stored_id: stored_id.map(str::to_string),
        }
    }
}

impl DocMeta {
    /// This document as one entry of an [`IdPage`].
    pub fn doc_ref(&self) -> DocRef<'_> {
        DocRef {
            id: &self.id,
            timestamp: self.timestamp.as_deref(),
            stored_id: self.stored_id.as_deref(),
        }
    }
}

/// One document of an [`IdPage`], borrowed from it: the fields of a [`DocMeta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocRef<'a> {
    pub id: &'a str,
    pub timestamp: Option<&'a str>,
    pub stored_id: Option<&'a str>,
}

impl<'a> DocRef<'a> {
    /// The document's `_id`: [`DocRef::stored_id`] when there is one, else [`DocRef::id`].
    pub fn stored(&self) -> &'a str {
        self.stored_id.unwrap_or(self.id)
    }

    pub fn to_meta(&self) -> DocMeta {
        DocMeta {
            id: self.id.to_string(),
            timestamp: self.timestamp.map(str::to_string),
            stored_id: self.stored_id.map(str::to_string),
        }
    }
}

/// One page of an id scan. A full sync reads every id of its index once, so a page holds
/// the text of all its documents in one buffer and each document as offsets into it: two
/// allocations a page instead of one to three a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPage {
    /// Per document, in order: its id, its stored id, its timestamp.
    text: String,
    docs: Vec<Spans>,
}

/// Where one document's text is in [`IdPage::text`]: `id` is `start..id_end`, the stored id
/// `id_end..stored_end`, the timestamp `stored_end..end`. The flags tell an absent field
/// from an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spans {
    start: usize,
    id_end: usize,
    stored_end: usize,
    end: usize,
    has_stored: bool,
    has_timestamp: bool,
}

impl IdPage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `docs` documents holding `text` bytes in all (only a hint).
    pub fn with_capacity(docs: usize, text: usize) -> Self {
        Self {
            text: String::with_capacity(text),
            docs: Vec::with_capacity(docs),
        }
    }

    /// Appends one document.
    pub fn push(&mut self, id: &str, stored_id: Option<&str>, timestamp: Option<&str>) {
        let start = self.text.len();
        self.text.push_str(id);
        let id_end = self.text.len();
        if let Some(stored_id) = stored_id {
            self.text.push_str(stored_id);
        }
        let stored_end = self.text.len();
        if let Some(timestamp) = timestamp {
            self.text.push_str(timestamp);
        }
        self.docs.push(Spans {
            start,
            id_end,
            stored_end,
            end: self.text.len(),
            has_stored: stored_id.is_some(),
            has_timestamp: timestamp.is_some(),
        });
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn get(&self, position: usize) -> Option<DocRef<'_>> {
        self.docs.get(position).map(|spans| self.doc(spans))
    }

    pub fn last(&self) -> Option<DocRef<'_>> {
        self.docs.last().map(|spans| self.doc(spans))
    }

    pub fn iter(&self) -> Docs<'_> {
        Docs {
            page: self,
            spans: self.docs.iter(),
        }
    }

    /// Every document as an owned [`DocMeta`].
    pub fn to_metas(&self) -> Vec<DocMeta> {
        self.iter().map(|doc| doc.to_meta()).collect()
    }

    fn doc(&self, spans: &Spans) -> DocRef<'_> {
        // The spans were taken from `text` as it grew at char boundaries, so they are in range.
        let field = |from: usize, to: usize| self.text.get(from..to).unwrap_or_default();
        DocRef {
            id: field(spans.start, spans.id_end),
            stored_id: spans
                .has_stored
                .then(|| field(spans.id_end, spans.stored_end)),
            timestamp: spans
                .has_timestamp
                .then(|| field(spans.stored_end, spans.end)),
        }
    }
}

/// The documents of an [`IdPage`], borrowed, in order.
pub struct Docs<'a> {
    page: &'a IdPage,
    spans: std::slice::Iter<'a, Spans>,
}

impl<'a> Iterator for Docs<'a> {
    type Item = DocRef<'a>;

    fn next(&mut self) -> Option<DocRef<'a>> {
        self.spans.next().map(|spans| self.page.doc(spans))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Docs<'_> {}

impl<'a> IntoIterator for &'a IdPage {
    type Item = DocRef<'a>;
    type IntoIter = Docs<'a>;

    fn into_iter(self) -> Docs<'a> {
        self.iter()
    }
}

/// A page's documents as owned [`DocMeta`]s, for callers that keep them.
impl IntoIterator for IdPage {
    type Item = DocMeta;
    type IntoIter = std::vec::IntoIter<DocMeta>;

    fn into_iter(self) -> Self::IntoIter {
        self.to_metas().into_iter()
    }
}

impl<'a> FromIterator<DocRef<'a>> for IdPage {
    fn from_iter<I: IntoIterator<Item = DocRef<'a>>>(docs: I) -> Self {
        let mut page = Self::new();
        for doc in docs {
            page.push(doc.id, doc.stored_id, doc.timestamp);
        }
        page
    }
}

impl FromIterator<DocMeta> for IdPage {
    fn from_iter<I: IntoIterator<Item = DocMeta>>(docs: I) -> Self {
        let mut page = Self::new();
        for doc in docs {
            page.push(&doc.id, doc.stored_id.as_deref(), doc.timestamp.as_deref());
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_gives_back_each_document_as_it_was_pushed() {
        let metas = vec![
            DocMeta::of("a", None, None),
            DocMeta::of("body-id", Some("2024-01-01T00:00:00Z"), Some("stored")),
            // Empty is not absent.
            DocMeta::of("", Some(""), Some("")),
            DocMeta::of("é\"/", Some("t"), None),
            DocMeta::of("b", None, Some("c")),
        ];
        let page: IdPage = metas.iter().cloned().collect();
        assert_eq!(page.len(), 5);
        assert!(!page.is_empty());
        assert_eq!(page.to_metas(), metas);
        assert_eq!(page.iter().map(|d| d.to_meta()).collect::<Vec<_>>(), metas);
        assert_eq!(page.get(1), Some(metas[1].doc_ref()));
        assert_eq!(page.get(1).map(|d| d.stored()), Some("stored"));
        assert_eq!(page.get(0).map(|d| d.stored()), Some("a"));
        assert_eq!(page.get(5), None);
        assert_eq!(page.last(), Some(metas[4].doc_ref()));
        assert_eq!(page.clone().into_iter().collect::<Vec<_>>(), metas);
        let again: IdPage = page.iter().collect();
        assert_eq!(again, page);
    }

    #[test]
    fn an_empty_page_has_no_documents() {
        let page = IdPage::with_capacity(10, 100);
        assert!(page.is_empty());
        assert_eq!(page.len(), 0);
        assert_eq!(page.last(), None);
        assert_eq!(page.iter().count(), 0);
        assert!(page.into_iter().next().is_none());
    }
}
