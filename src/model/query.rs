//! What a caller asks the connector APIs for: list filters and paging (`ConnectorQuery`,
//! `SyncJobQuery`) and the bodies of two updates (`ConfigurationUpdate`, `LastSync`). Shared by
//! the `elastic` client, which sends them, and the backends, which answer them.

use super::{Configuration, JobStatus, JobType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Filters and paging of a connector list (`GET _connector`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectorQuery {
    pub from: u64,
    /// `None` means the server's default (100).
    pub size: Option<u64>,
    pub index_names: Vec<String>,
    pub connector_names: Vec<String>,
    pub service_types: Vec<String>,
    /// Free-text query on name, description and index name.
    pub query: Option<String>,
    pub include_deleted: bool,
}

/// Filters and paging of a sync-job list (`GET _connector/_sync_job`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncJobQuery {
    pub from: u64,
    pub size: Option<u64>,
    pub connector_id: Option<String>,
    pub status: Option<JobStatus>,
    pub job_types: Vec<JobType>,
}

/// A configuration update: a whole new schema, or new values for existing keys.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigurationUpdate {
    Replace(Configuration),
    Values(Map<String, Value>),
}

/// The `last_*` fields of a connector a worker writes when a job ends (`_last_sync`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastSync {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_status: Option<JobStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_status: Option<JobStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_synced: Option<super::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_indexed_document_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deleted_document_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<super::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_cursor: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_scheduled_at: Option<super::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_incremental_sync_scheduled_at: Option<super::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_control_sync_scheduled_at: Option<super::Timestamp>,
}
