//! `DeadLetter`: a document the sink could not index, kept on disk with its reason and the
//! cluster it came from until an operator retries or drops it, or a later write of the same
//! document resolves it. The store itself is `engine::dlq`.

use super::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

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
    /// The cluster the document was meant for; `unknown` for entries written before
    /// syncdeck recorded it.
    #[serde(default)]
    pub origin: Origin,
    /// Open until retried successfully, resolved by a later write, or superseded.
    #[serde(default)]
    pub state: DeadLetterState,
    /// When the entry stopped being open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Why it stopped being open ("indexed by sync job …", "the index holds a newer …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

/// Where a dead letter came from: the cluster (the key) and, for display, the profile that
/// was used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// `cluster_uuid` of Elasticsearch, `embedded:<path>`, or [`Origin::UNKNOWN`].
    pub cluster_uuid: String,
    /// `cluster_name`, `embedded`, or `unknown`.
    pub cluster_name: String,
    /// The profile that wrote the entry, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl Origin {
    /// The key of entries whose cluster is not known (written before provenance existed).
    pub const UNKNOWN: &'static str = "unknown";

    pub fn unknown() -> Self {
        Self {
            cluster_uuid: Self::UNKNOWN.to_string(),
            cluster_name: Self::UNKNOWN.to_string(),
            profile: None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        self.cluster_uuid == Self::UNKNOWN
    }
}

impl Default for Origin {
    fn default() -> Self {
        Self::unknown()
    }
}

/// `'name' (uuid), profile 'p'`: enough to tell two clusters apart on screen.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unknown() {
            return f.write_str("unknown cluster");
        }
        write!(f, "'{}' ({})", self.cluster_name, self.cluster_uuid)?;
        if let Some(profile) = &self.profile {
            write!(f, ", profile '{profile}'")?;
        }
        Ok(())
    }
}

/// The life of an entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterState {
    /// Waiting for a retry or a drop.
    #[default]
    Open,
    /// The document was indexed (or deleted) later, by a sync or a retry; kept as history.
    Resolved,
    /// A retry found a newer version in the index and left it alone; kept as history.
    Superseded,
}

impl DeadLetterState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Superseded => "superseded",
        }
    }

    /// Parses the stored form; anything unknown reads as open (nothing is hidden by a typo).
    pub fn parse(text: &str) -> Self {
        match text {
            "resolved" => Self::Resolved,
            "superseded" => Self::Superseded,
            _ => Self::Open,
        }
    }
}

impl fmt::Display for DeadLetterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
