//! Documents in content indices: `_bulk` with per-item results, the id scan of a full sync
//! (its pages; the PIT and its slices are `pit_scan`), count, get, index, delete and a basic
//! delete-by-query. The bulk body arrives serialised; this module never builds documents.

use super::error::{Error, Result};
use super::transport::{Body, Method, Transport, path};
use crate::model::{BulkItem, BulkOp, BulkRequest, BulkResponse, IdPage, ItemError};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::sync::Arc;

pub use super::pit_scan::{PIT_KEEP_ALIVE, PitScan};

/// What syncdeck asks `_bulk` to answer with (`filter_path`): per item only its status,
/// result and error type and reason, not the index, id, version, shards and sequence numbers.
/// It cuts the answer to about a fifth, and the client's parsing with it. Every item keeps
/// its `status`, so items still match actions by position; [`BulkItem::id`] stays empty.
pub const BULK_FILTER_PATH: &str =
    "took,errors,items.*.status,items.*.result,items.*.error.type,items.*.error.reason";

/// Reads a bulk answer straight into a [`BulkResponse`], in one pass: each item becomes a
/// [`BulkItem`] as it is read, into a vector sized up front for `expected` items (no
/// intermediate item list to convert, no regrowth). Only `took`, `errors` and `items` are
/// read; any other key is skipped.
struct AnswerSeed {
    expected: usize,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum AnswerField {
    Took,
    Errors,
    Items,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for AnswerSeed {
    type Value = BulkResponse;

    fn deserialize<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<BulkResponse, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed {
    type Value = BulkResponse;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a bulk answer object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<BulkResponse, A::Error> {
        let (mut took, mut errors, mut items) = (None, None, None);
        while let Some(key) = map.next_key::<AnswerField>()? {
            match key {
                AnswerField::Took if took.is_some() => {
                    return Err(de::Error::duplicate_field("took"));
                }
                AnswerField::Took => took = Some(map.next_value()?),
                AnswerField::Errors if errors.is_some() => {
                    return Err(de::Error::duplicate_field("errors"));
                }
                AnswerField::Errors => errors = Some(map.next_value()?),
                AnswerField::Items if items.is_some() => {
                    return Err(de::Error::duplicate_field("items"));
                }
                AnswerField::Items => {
                    items = Some(map.next_value_seed(ItemsSeed {
                        expected: self.expected,
                    })?);
                }
                AnswerField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(BulkResponse {
            took: took.unwrap_or_default(),
            errors: errors.unwrap_or_default(),
            items: items.unwrap_or_default(),
        })
    }
}

/// The `items` array, read item by item into the final vector.
struct ItemsSeed {
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Vec<BulkItem>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Vec<BulkItem>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Vec<BulkItem>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Vec<BulkItem>, A::Error> {
        let mut items = Vec::with_capacity(self.expected);
        while let Some(RawItem(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }
}

/// One item: `{"<op>": {...}}`, an op Elasticsearch documents and its body.
struct RawItem(BulkItem);

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (op, body) = match OpItem::deserialize(d)? {
            OpItem::Index(body) => (BulkOp::Index, body),
            OpItem::Create(body) => (BulkOp::Create, body),
            OpItem::Update(body) => (BulkOp::Update, body),
            OpItem::Delete(body) => (BulkOp::Delete, body),
        };
        Ok(RawItem(BulkItem {
            op,
            // `None` (no `_id`, as with syncdeck's own `filter_path`) costs no allocation.
            id: body.id.unwrap_or_default(),
            status: body.status,
            result: body.result.map(|result| result.0),
            error: body.error.map(|e| ItemError {
                kind: e.kind,
                reason: e.reason.unwrap_or_default(),
            }),
        }))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpItem {
    Index(RawItemBody),
    Create(RawItemBody),
    Update(RawItemBody),
    Delete(RawItemBody),
}

#[derive(Deserialize)]
struct RawItemBody {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    result: Option<ItemResult>,
    #[serde(default)]
    error: Option<RawItemError>,
}

#[derive(Deserialize)]
struct RawItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

/// An item's `result`: the words Elasticsearch documents for a write are kept as constants
/// (matched on the answer's text, so no item allocates for them, escaped or not); any other
/// word is kept as it came.
struct ItemResult(Cow<'static, str>);

impl<'de> Deserialize<'de> for ItemResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_str(ItemResultVisitor)
    }
}

struct ItemResultVisitor;

impl Visitor<'_> for ItemResultVisitor {
    type Value = ItemResult;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ItemResult, E> {
        Ok(ItemResult(match v {
            "created" => Cow::Borrowed("created"),
            "updated" => Cow::Borrowed("updated"),
            "deleted" => Cow::Borrowed("deleted"),
            "not_found" => Cow::Borrowed("not_found"),
            "noop" => Cow::Borrowed("noop"),
            other => Cow::Owned(other.to_string()),
        }))
    }
}

/// Parses a `_bulk` answer straight into [`BulkResponse`] (one pass, no `Value` tree).
pub fn parse_bulk_response(bytes: &[u8]) -> std::result::Result<BulkResponse, serde_json::Error> {
    parse_bulk_response_sized(bytes, 0)
}

/// [`parse_bulk_response`] for an answer expected to hold `expected` items (the actions
/// sent): the item vector is sized once. A wrong count costs only a regrowth or spare room,
/// bounded by the answer's length.
pub fn parse_bulk_response_sized(
    bytes: &[u8],
    expected: usize,
) -> std::result::Result<BulkResponse, serde_json::Error> {
    // Most answers are all successes in the lean shape: read without a parser.
    if let Some(answer) = super::lean_answer::parse(bytes, expected) {
        return Ok(answer);
    }
    parse_bulk_response_with_serde(bytes, expected)
}

/// [`parse_bulk_response_sized`] through serde alone.
pub(crate) fn parse_bulk_response_with_serde(
    bytes: &[u8],
    expected: usize,
) -> std::result::Result<BulkResponse, serde_json::Error> {
    // No item is shorter than `{"index":{}}` and its comma.
    let seed = AnswerSeed {
        expected: expected.min(bytes.len() / 13),
    };
    // Checked as UTF-8 once, in one fast pass over the whole answer, instead of string by
    // string as `from_slice` does (a fifth of the parse). An answer that is not UTF-8 is
    // read as bytes as before: same outcome, and the same error naming where it breaks.
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let answer = seed.deserialize(&mut de)?;
            de.end()?;
            Ok(answer)
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let answer = seed.deserialize(&mut de)?;
            de.end()?;
            Ok(answer)
        }
    }
}

/// The answer to `_count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountResponse {
    pub count: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to a single-document write (index, delete, update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteResponse {
    #[serde(rename = "_index", default)]
    pub index: String,
    #[serde(rename = "_id", default)]
    pub id: String,
    #[serde(rename = "_version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `created`, `updated`, `deleted`, `not_found`, `noop`.
    #[serde(default)]
    pub result: String,
    #[serde(rename = "_seq_no", default, skip_serializing_if = "Option::is_none")]
    pub seq_no: Option<u64>,
    #[serde(
        rename = "_primary_term",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_term: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to `_search`, with `_source` read as `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct SearchResponse<T> {
    /// The PIT id to use for the next page (it may change between pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pit_id: Option<String>,
    pub hits: SearchHits<T>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct SearchHits<T> {
    #[serde(default = "Vec::new")]
    pub hits: Vec<SearchHit<T>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct SearchHit<T> {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(
        rename = "_source",
        default = "none",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<T>,
    /// The sort values, for `search_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct GetAnswer {
    #[serde(default)]
    found: bool,
    #[serde(rename = "_source", default)]
    source: Option<Value>,
}

#[derive(Deserialize)]
struct DeleteByQueryAnswer {
    #[serde(default)]
    deleted: u64,
}

/// What an id-scan page asks `_search` to answer with (`filter_path`): the PIT id and, per
/// hit, `_id`, `_source` (already limited to `id` and `_timestamp`) and `sort`; not the index
/// name, score and shard totals repeated on every page.
pub const SCAN_FILTER_PATH: &str = "pit_id,hits.hits._id,hits.hits._source,hits.hits.sort";

/// The same for a scan of `_id`s alone (no `_source` is read at all).
pub const BARE_SCAN_FILTER_PATH: &str = "pit_id,hits.hits._id,hits.hits.sort";

/// One page of an id scan, reading only what the scan uses and borrowing from the answer: a
/// full sync reads every id of the index. A page with no hits has no `hits` at all once
/// filtered.
#[derive(Deserialize)]
struct ScanAnswer<'a> {
    #[serde(default, borrow)]
    pit_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    hits: ScanHits<'a>,
}

#[derive(Default, Deserialize)]
struct ScanHits<'a> {
    #[serde(default, borrow)]
    hits: Vec<ScanHit<'a>>,
}

#[derive(Deserialize)]
struct ScanHit<'a> {
    #[serde(rename = "_id", borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "_source", default, borrow)]
    source: Option<ScanSource<'a>>,
    /// Borrowed as it is: only the last hit's values are read (for `search_after`), so the
    /// other hits of a page cost no allocation for them.
    #[serde(default, borrow)]
    sort: Option<&'a serde_json::value::RawValue>,
}

#[derive(Default, Deserialize)]
struct ScanSource<'a> {
    #[serde(default, borrow)]
    id: Option<FieldText<'a>>,
    #[serde(rename = "_timestamp", default, borrow)]
    timestamp: Option<FieldText<'a>>,
}

/// A `_source` field read as text without building a `Value`: strings borrowed when they
/// have no escapes, numbers and booleans as their JSON, anything else skipped.
enum FieldText<'a> {
    Str(Cow<'a, str>),
    Other(String),
    Null,
    Skipped,
}

impl<'de: 'a, 'a> Deserialize<'de> for FieldText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(FieldTextVisitor)
    }
}

struct FieldTextVisitor;

impl<'de> serde::de::Visitor<'de> for FieldTextVisitor {
    type Value = FieldText<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Str(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Other(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Other(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Other(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Other(Value::from(v).to_string()))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(FieldText::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(FieldText::Skipped)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(FieldText::Skipped)
    }
}

/// One page of a PIT scan: the new PIT id, the documents, and the last hit's `sort` values
/// as the cluster wrote them (`None` for an empty page), sent back as the next
/// `search_after`.
#[derive(Debug)]
pub(crate) struct ScanPage {
    pub(crate) pit: Option<String>,
    pub(crate) docs: IdPage,
    pub(crate) last_sort: Option<Box<RawValue>>,
}

/// Reads one page of a PIT scan of at most `expected` hits: the lean shape directly (see
/// [`super::lean_scan`]), anything else with serde. Fails with [`Error::Decode`] on an
/// answer that is not a page.
pub(super) fn read_scan_page(body: &[u8], expected: usize) -> Result<ScanPage> {
    match super::lean_scan::parse(body, expected) {
        Some(page) => Ok(page),
        None => read_scan_page_with_serde(body),
    }
}

/// [`read_scan_page`] without the lean reading: the reference the lean one is held to.
pub(crate) fn read_scan_page_with_serde(body: &[u8]) -> Result<ScanPage> {
    let decode = |reason: String| Error::Decode {
        url_path: "/_search".to_string(),
        reason,
    };
    let answer: ScanAnswer<'_> =
        serde_json::from_slice(body).map_err(|e| decode(format!("unexpected JSON: {e}")))?;
    let hits = answer.hits.hits;
    let last_sort = match hits.last() {
        Some(last) => {
            let raw = last
                .sort
                .ok_or_else(|| decode("a PIT search hit came without 'sort' values".into()))?;
            // Checked to be a list; sent back as it came.
            serde_json::from_str::<Vec<IgnoredAny>>(raw.get())
                .map_err(|e| decode(format!("unexpected 'sort' values: {e}")))?;
            Some(raw.to_owned())
        }
        None => None,
    };
    let mut docs = IdPage::with_capacity(hits.len(), 0);
    for hit in &hits {
        push_scan_hit(&mut docs, hit);
    }
    Ok(ScanPage {
        pit: answer.pit_id.map(Cow::into_owned),
        docs,
        last_sort,
    })
}

/// A hit of an id scan into `docs`: the body `id` (the source's id) when it is a string
/// other than `_id`, with `_id` as the stored id, else `_id`, like the framework does.
fn push_scan_hit(docs: &mut IdPage, hit: &ScanHit<'_>) {
    let source = hit.source.as_ref();
    let timestamp = match source.and_then(|s| s.timestamp.as_ref()) {
        Some(FieldText::Str(t)) => Some(t.as_ref()),
        Some(FieldText::Other(t)) => Some(t.as_str()),
        Some(FieldText::Null | FieldText::Skipped) | None => None,
    };
    match source.and_then(|s| s.id.as_ref()) {
        Some(FieldText::Str(body)) if *body != hit.id => {
            docs.push(body, Some(&hit.id), timestamp);
        }
        _ => docs.push(&hit.id, None, timestamp),
    }
}

/// The document API family.
pub struct Documents<'a> {
    transport: &'a Arc<Transport>,
}

impl<'a> Documents<'a> {
    pub(crate) fn new(transport: &'a Arc<Transport>) -> Self {
        Self { transport }
    }

    /// `POST /{index}/_bulk` (or `/_bulk` without a default index) with the request's
    /// `pipeline` and `refresh`. Fails with a decode error when the answer has not one item
    /// per action.
    pub async fn bulk(&self, request: &BulkRequest) -> Result<BulkResponse> {
        let url = if request.index.is_empty() {
            "/_bulk".to_string()
        } else {
            path(&[&request.index, "_bulk"])
        };
        let mut params = vec![("filter_path", BULK_FILTER_PATH.to_string())];
        if let Some(pipeline) = request.pipeline.as_deref().filter(|p| !p.is_empty()) {
            params.push(("pipeline", pipeline.to_string()));
        }
        if request.refresh {
            params.push(("refresh", "true".to_string()));
        }
        let body = Body::ndjson(request.body.clone());
        let response = self
            .transport
            .send(Method::POST, &url, &params, Some(body))
            .await?;
        let parsed = parse_bulk_response_sized(&response.body, request.actions).map_err(|e| {
            Error::Decode {
                url_path: url.clone(),
                reason: format!("unexpected bulk answer: {e}"),
            }
        })?;
        if request.actions != 0 && parsed.items.len() != request.actions {
            return Err(Error::Decode {
                url_path: url,
                reason: format!(
                    "sent {} actions but got {} items back",
                    request.actions,
                    parsed.items.len()
                ),
            });
        }
        Ok(parsed)
    }

    /// Opens a PIT on `index` and returns a scan over its ids, `page_size` per page, read
    /// in `slices` slices at once (see [`PitScan`]). A missing index scans as empty.
    pub async fn scan_ids(&self, index: &str, page_size: usize, slices: usize) -> Result<PitScan> {
        PitScan::open(Arc::clone(self.transport), index, page_size, true, slices).await
    }

    /// Like [`Documents::scan_ids`], reading `_id`s only (`_source: false`): the cluster
    /// loads no document source, and [`crate::model::DocRef::id`] is the `_id`.
    pub async fn scan_bare_ids(
        &self,
        index: &str,
        page_size: usize,
        slices: usize,
    ) -> Result<PitScan> {
        PitScan::open(Arc::clone(self.transport), index, page_size, false, slices).await
    }

    /// `GET /{index}/_count`.
    pub async fn count(&self, index: &str) -> Result<u64> {
        let answer: CountResponse = self
            .transport
            .request(Method::GET, &path(&[index, "_count"]), &[], None)
            .await?;
        Ok(answer.count)
    }

    /// `GET /{index}/_doc/{id}`: the source, or `None` when the document (or the index) does
    /// not exist.
    pub async fn get(&self, index: &str, id: &str) -> Result<Option<Value>> {
        match self
            .transport
            .request::<GetAnswer>(Method::GET, &path(&[index, "_doc", id]), &[], None)
            .await
        {
            Ok(answer) if answer.found => Ok(answer.source),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /{index}/_doc/{id}`: indexes one document.
    pub async fn index(
        &self,
        index: &str,
        id: &str,
        document: &Value,
        refresh: bool,
    ) -> Result<()> {
        let url = path(&[index, "_doc", id]);
        let params = if refresh {
            vec![("refresh", "true".to_string())]
        } else {
            vec![]
        };
        let body = Transport::encode(&url, document)?;
        self.transport
            .send(Method::PUT, &url, &params, Some(body))
            .await?;
        Ok(())
    }

    /// `DELETE /{index}/_doc/{id}`: whether a document was deleted.
    pub async fn delete(&self, index: &str, id: &str) -> Result<bool> {
        match self
            .transport
            .request::<WriteResponse>(Method::DELETE, &path(&[index, "_doc", id]), &[], None)
            .await
        {
            Ok(answer) => Ok(answer.result == "deleted"),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /{index}/_delete_by_query` with a query (`{"match_all":{}}` etc.); returns how
    /// many documents were deleted. Version conflicts are counted, not fatal.
    pub async fn delete_by_query(&self, index: &str, query: &Value, refresh: bool) -> Result<u64> {
        let url = path(&[index, "_delete_by_query"]);
        let mut params = vec![("conflicts", "proceed".to_string())];
        if refresh {
            params.push(("refresh", "true".to_string()));
        }
        let body = Transport::encode(&url, &json!({ "query": query }))?;
        let answer: DeleteByQueryAnswer = self
            .transport
            .request(Method::POST, &url, &params, Some(body))
            .await?;
        Ok(answer.deleted)
    }

    /// `POST /{index}/_search` with any body, answer as JSON.
    pub async fn search(&self, index: &str, body: &Value) -> Result<Value> {
        let url = path(&[index, "_search"]);
        let encoded = Transport::encode(&url, body)?;
        self.transport
            .request(Method::POST, &url, &[], Some(encoded))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DocMeta;
    use proptest::prelude::*;

    /// The JSON of one of Elasticsearch's documented `_bulk` answers (tests/fixtures).
    fn documented_answer(yaml: &str) -> Vec<u8> {
        #[derive(Deserialize)]
        struct Example {
            value: String,
        }
        let example: Example = serde_yaml_ng::from_str(yaml).unwrap();
        example.value.into_bytes()
    }

    #[test]
    fn documented_bulk_answers_keep_every_op_id_status_result_and_error() {
        let ok = documented_answer(include_str!(
            "../../tests/fixtures/es-examples/bulk/response/BulkResponseExample1.yaml"
        ));
        let parsed = parse_bulk_response(&ok).unwrap();
        assert_eq!((parsed.took, parsed.errors), (30, false));
        let seen: Vec<_> = parsed
            .items
            .iter()
            .map(|i| (i.op, i.id.as_str(), i.status, i.result.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (BulkOp::Index, "1", 201, Some("created")),
                (BulkOp::Delete, "2", 404, Some("not_found")),
                (BulkOp::Create, "3", 201, Some("created")),
                (BulkOp::Update, "1", 200, Some("updated")),
            ]
        );
        assert!(parsed.items.iter().all(|i| i.error.is_none()));

        let failed = documented_answer(include_str!(
            "../../tests/fixtures/es-examples/bulk/response/BulkResponseExample2.yaml"
        ));
        let parsed = parse_bulk_response_sized(&failed, 3).unwrap();
        assert_eq!((parsed.took, parsed.errors), (486, true));
        let seen = summary(&parsed);
        let missing = "document_missing_exception";
        assert_eq!(
            seen,
            [
                (
                    BulkOp::Update,
                    "5",
                    404,
                    None,
                    Some((missing, "[5]: document missing"))
                ),
                (
                    BulkOp::Update,
                    "6",
                    404,
                    None,
                    Some((missing, "[6]: document missing"))
                ),
                (BulkOp::Create, "7", 201, Some("created"), None),
            ]
        );

        // `filter_path=items.*.error`: no took, errors, id or status at all.
        let filtered = documented_answer(include_str!(
            "../../tests/fixtures/es-examples/bulk/response/BulkResponseExample3.yaml"
        ));
        let parsed = parse_bulk_response(&filtered).unwrap();
        assert_eq!(
            (parsed.took, parsed.errors, parsed.items.len()),
            (0, false, 2)
        );
        assert!(parsed.items.iter().all(|i| i.op == BulkOp::Update
            && i.id.is_empty()
            && i.status == 0
            && i.result.is_none()
            && i.error.as_ref().map(|e| e.reason.as_str()).is_some()));
    }

    type ItemSummary<'a> = (
        BulkOp,
        &'a str,
        u16,
        Option<&'a str>,
        Option<(&'a str, &'a str)>,
    );

    /// Each item's op, id, status, result and error, for comparing with what is expected.
    fn summary(parsed: &BulkResponse) -> Vec<ItemSummary<'_>> {
        parsed
            .items
            .iter()
            .map(|i| {
                let error = i
                    .error
                    .as_ref()
                    .map(|e| (e.kind.as_str(), e.reason.as_str()));
                (i.op, i.id.as_str(), i.status, i.result.as_deref(), error)
            })
            .collect()
    }

    #[test]
    fn a_lean_answer_of_every_op_with_and_without_ids_keeps_each_item() {
        // What syncdeck's `filter_path` leaves (no `_id`), beside full items, mixed errors,
        // a `null` id and reason, and a result word Elasticsearch does not document.
        let body = br#"{"took":7,"errors":true,"items":[
            {"index":{"result":"created","status":201}},
            {"create":{"_index":"i","_id":"c1","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":4,"_primary_term":1,"status":201}},
            {"update":{"status":200,"result":"noop"}},
            {"delete":{"_id":"d1","status":200,"result":"deleted"}},
            {"delete":{"status":404,"result":"not_found"}},
            {"index":{"status":200,"result":"updated"}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[c2]: version conflict"}}},
            {"index":{"_id":null,"status":429,"error":{"type":"es_rejected_execution_exception","reason":null}}},
            {"update":{"status":200,"result":"merged_somehow"}},
            {"index":{"status":400,"error":{"type":"document_parsing_exception"}}}
        ]}"#;
        let parsed = parse_bulk_response_sized(body, 10).unwrap();
        assert_eq!((parsed.took, parsed.errors), (7, true));
        let seen = summary(&parsed);
        assert_eq!(
            seen,
            [
                (BulkOp::Index, "", 201, Some("created"), None),
                (BulkOp::Create, "c1", 201, Some("created"), None),
                (BulkOp::Update, "", 200, Some("noop"), None),
                (BulkOp::Delete, "d1", 200, Some("deleted"), None),
                (BulkOp::Delete, "", 404, Some("not_found"), None),
                (BulkOp::Index, "", 200, Some("updated"), None),
                (
                    BulkOp::Create,
                    "",
                    409,
                    None,
                    Some((
                        "version_conflict_engine_exception",
                        "[c2]: version conflict"
                    ))
                ),
                (
                    BulkOp::Index,
                    "",
                    429,
                    None,
                    Some(("es_rejected_execution_exception", ""))
                ),
                (BulkOp::Update, "", 200, Some("merged_somehow"), None),
                (
                    BulkOp::Index,
                    "",
                    400,
                    None,
                    Some(("document_parsing_exception", ""))
                ),
            ]
        );
        // The expected count only sizes the vector: too few, too many or none read the same.
        for expected in [0, 3, 11, usize::MAX] {
            assert_eq!(parse_bulk_response_sized(body, expected).unwrap(), parsed);
        }
    }

    #[test]
    fn documented_results_are_constants_even_escaped_and_other_words_are_kept() {
        let answer = br#"{"items":[
            {"index":{"_id":"a\"b","status":201,"result":"created"}},
            {"index":{"status":200,"result":"up\u0064ated"}},
            {"index":{"status":200,"result":"n\u00e9w"}}
        ]}"#;
        let parsed = parse_bulk_response(answer).unwrap();
        assert_eq!(parsed.items[0].id, "a\"b");
        assert!(matches!(
            parsed.items[0].result,
            Some(Cow::Borrowed("created"))
        ));
        assert!(matches!(
            parsed.items[1].result,
            Some(Cow::Borrowed("updated"))
        ));
        assert!(matches!(&parsed.items[2].result, Some(Cow::Owned(word)) if word == "n\u{e9}w"));
    }

    #[test]
    fn a_malformed_bulk_answer_is_an_error_naming_what_is_wrong() {
        let error = |bytes: &[u8]| parse_bulk_response(bytes).unwrap_err().to_string();
        assert!(
            error(br#"{"items":[{"upsert":{"status":200}}]}"#).contains("unknown variant `upsert`")
        );
        assert!(
            error(br#"{"items":[{"index":{"status":"ok"}}]}"#)
                .contains("invalid type: string \"ok\"")
        );
        assert!(
            error(br#"{"items":[{"index":{"status":201,"result":5}}]}"#)
                .contains("expected a string")
        );
        assert!(error(br#"{"items":{"index":{}}}"#).contains("expected a sequence"));
        assert!(error(br#"{"took":1,"took":2,"items":[]}"#).contains("duplicate field `took`"));
        assert!(error(br#"[1,false,[]]"#).contains("expected a bulk answer object"));
        assert!(error(br#"{"items":[]} x"#).contains("trailing characters"));
        assert!(error(br#"{"took":1,"errors":false,"items":[{"index""#).contains("EOF"));
        // Not UTF-8 where it is read: the error says where, as before.
        let not_utf8 = error(b"{\"items\":[{\"index\":{\"_id\":\"\xff\",\"status\":201}}]}");
        assert!(
            not_utf8.contains("invalid unicode code point at line 1 column"),
            "{not_utf8}"
        );
        // A stray byte in a string syncdeck skips is no reason to fail a whole answer.
        let skipped = b"{\"took\":1,\"_note\":\"\xff\",\"items\":[{\"index\":{\"status\":201}}]}";
        assert_eq!(parse_bulk_response(skipped).unwrap().items[0].status, 201);
    }

    #[test]
    fn a_scan_page_keeps_every_id_and_the_last_sort_values() {
        let page = br#"{"pit_id":"p2","hits":{"hits":[
            {"_id":"a","sort":[1, 10]},
            {"_id":"b\u00e9","_source":{"id":"b-body","_timestamp":"2024"},"sort":[2, "x"]}]}}"#;
        let read = read_scan_page(page, 10).unwrap();
        assert_eq!(read.pit.as_deref(), Some("p2"));
        assert_eq!(
            read.docs.to_metas(),
            vec![
                DocMeta::of("a", None, None),
                DocMeta::of("b-body", Some("2024"), Some("b\u{e9}")),
            ]
        );
        // Sent back as the cluster wrote them.
        assert_eq!(read.last_sort.unwrap().get(), r#"[2, "x"]"#);
        let err = read_scan_page(br#"{"hits":{"hits":[{"_id":"a"}]}}"#, 10).unwrap_err();
        assert!(err.to_string().contains("without 'sort'"), "{err}");
        let err = read_scan_page(br#"{"hits":{"hits":[{"_id":"a","sort":7}]}}"#, 10).unwrap_err();
        assert!(err.to_string().contains("'sort' values"), "{err}");
        let empty = read_scan_page(br#"{"pit_id":"p"}"#, 10).unwrap();
        assert!(empty.docs.is_empty() && empty.last_sort.is_none());
        assert_eq!(empty.pit.as_deref(), Some("p"));
    }

    /// A bulk answer of `n` items, each with one of the shapes a cluster sends.
    fn bulk_answer(statuses: &[u16]) -> String {
        let items: Vec<String> = statuses
            .iter()
            .enumerate()
            .map(|(i, status)| match status {
                200..=299 => format!(r#"{{"index":{{"_id":"{i}","status":{status},"result":"created"}}}}"#),
                _ => format!(
                    r#"{{"create":{{"_id":"{i}","status":{status},"error":{{"type":"t{i}","reason":"r"}}}}}}"#
                ),
            })
            .collect();
        format!(
            r#"{{"took":1,"errors":true,"items":[{}]}}"#,
            items.join(",")
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever bytes arrive, the bulk-answer parser returns, never panics.
        #[test]
        fn the_bulk_answer_parser_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_bulk_response(&bytes);
        }

        /// A real answer cut anywhere, or with a byte changed anywhere, parses to an error or
        /// to at most as many items as were sent; an intact one keeps every status.
        #[test]
        fn the_bulk_answer_parser_survives_cut_and_flipped_answers(
            statuses in proptest::collection::vec(prop_oneof![Just(200u16), Just(201), Just(400), Just(429), Just(503)], 0..40),
            cut in any::<usize>(),
            flip in proptest::option::of((any::<usize>(), any::<u8>())),
        ) {
            let text = bulk_answer(&statuses);
            let parsed = parse_bulk_response(text.as_bytes()).unwrap();
            let got: Vec<u16> = parsed.items.iter().map(|i| i.status).collect();
            prop_assert_eq!(&got, &statuses);
            let mut bytes = text.into_bytes();
            if let Some((at, byte)) = flip {
                let len = bytes.len();
                bytes[at % len] = byte;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            if let Ok(parsed) = parse_bulk_response(&bytes) {
                prop_assert!(parsed.items.len() <= statuses.len());
            }
        }
    }

    #[test]
    fn bulk_items_keep_op_id_status_result_and_error() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"index":{"_index":"i","_id":"1","_version":1,"result":"created","status":201,"_seq_no":0}},
            {"delete":{"_index":"i","_id":"2","result":"not_found","status":404}},
            {"create":{"_index":"i","_id":"3","status":400,"error":{"type":"document_parsing_exception","reason":"bad field","index":"i"}}},
            {"update":{"_index":"i","_id":null,"status":429,"error":{"type":"es_rejected_execution_exception","reason":null}}}
        ]}"#;
        let parsed = parse_bulk_response(body).unwrap();
        assert_eq!(parsed.took, 3);
        assert!(parsed.errors);
        let ops: Vec<_> = parsed.items.iter().map(|i| i.op).collect();
        assert_eq!(
            ops,
            [
                BulkOp::Index,
                BulkOp::Delete,
                BulkOp::Create,
                BulkOp::Update
            ]
        );
        assert_eq!(parsed.items[0].result.as_deref(), Some("created"));
        assert_eq!(parsed.items[1].status, 404);
        let error = parsed.items[2].error.as_ref().unwrap();
        assert_eq!(
            (error.kind.as_str(), error.reason.as_str()),
            ("document_parsing_exception", "bad field")
        );
        assert_eq!(parsed.items[3].id, "");
        assert_eq!(parsed.items[3].error.as_ref().unwrap().reason, "");
    }

    #[test]
    fn bulk_answer_with_unknown_op_is_an_error() {
        assert!(parse_bulk_response(br#"{"items":[{"upsert":{"status":200}}]}"#).is_err());
        assert!(parse_bulk_response(br#"{"took":1,"errors":false,"items":[{"index""#).is_err());
    }

    #[test]
    fn scan_hit_prefers_the_body_id() {
        let meta_of = |text: &str| {
            let mut page = IdPage::new();
            push_scan_hit(&mut page, &serde_json::from_str::<ScanHit>(text).unwrap());
            page.to_metas().pop().unwrap()
        };
        assert_eq!(
            meta_of(r#"{"_id":"h","_source":{"id":"long-id","_timestamp":"t"},"sort":[1]}"#),
            DocMeta::of("long-id", Some("t"), Some("h"))
        );
        assert_eq!(
            meta_of(r#"{"_id":"h","_source":{}}"#),
            DocMeta::of("h", None, None)
        );
        assert_eq!(
            meta_of(r#"{"_id":"h","_source":{"id":"h"}}"#),
            DocMeta::of("h", None, None)
        );
        // Escapes are decoded; a non-string id falls back to `_id`; a non-string timestamp
        // is kept as its JSON.
        assert_eq!(
            meta_of(r#"{"_id":"h","_source":{"id":"a\"b\u00e9","_timestamp":null}}"#),
            DocMeta::of("a\"bé", None, Some("h"))
        );
        assert_eq!(
            meta_of(r#"{"_id":"h","_source":{"id":7,"_timestamp":1700000000}}"#),
            DocMeta::of("h", Some("1700000000"), None)
        );
    }

    #[test]
    fn an_empty_filtered_page_has_no_hits() {
        let answer: ScanAnswer = serde_json::from_str(r#"{"pit_id":"p"}"#).unwrap();
        assert!(answer.hits.hits.is_empty());
        assert_eq!(answer.pit_id.as_deref(), Some("p"));
        let answer: ScanAnswer = serde_json::from_str("{}").unwrap();
        assert!(answer.hits.hits.is_empty() && answer.pit_id.is_none());
    }
}
