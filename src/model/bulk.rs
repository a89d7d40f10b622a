//! Bulk writes and id scans as plain data: the request the engine serialises once
//! (`BulkRequest`), the per-item answer (`BulkResponse`, `BulkItem`, `ItemError`) and one
//! document's metadata from an id scan (`DocMeta`). Shared by the `elastic` client and the
//! backends; no I/O here.

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
