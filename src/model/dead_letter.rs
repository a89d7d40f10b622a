//! `DeadLetter`: a document the sink could not index, kept on disk with its reason until an
//! operator retries or drops it. The store itself is `engine::dlq`.

use super::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: i64,
    pub connector_id: String,
    pub job_id: String,
    pub index: String,
    pub doc_id: String,
    /// The whole document as it was sent (after field blocking/hashing).
    pub document: Value,
    /// The error type (`document_parsing_exception`, `es_rejected_execution_exception`, ...).
    pub error_type: String,
    pub reason: String,
    /// The HTTP status of the item, when there was one.
    pub status: Option<u16>,
    pub attempts: u32,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
}
