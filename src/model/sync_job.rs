//! The sync job document (`.elastic-connectors-sync-jobs`), its enums and the `_stats` body.

use super::serde_util::null_default;
use super::{Configuration, FilteringRules, Pipeline, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncJob {
    #[serde(default)]
    pub id: String,
    pub connector: SyncJobConnector,
    #[serde(default)]
    pub job_type: JobType,
    #[serde(default)]
    pub trigger_method: TriggerMethod,
    #[serde(default)]
    pub status: JobStatus,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub worker_hostname: Option<String>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub cancelation_requested_at: Option<Timestamp>,
    #[serde(default)]
    pub canceled_at: Option<Timestamp>,
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_default")]
    pub indexed_document_count: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub deleted_document_count: u64,
    #[serde(default)]
    pub total_document_count: Option<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub indexed_document_volume: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SyncJob {
    /// A copy with the snapshot's sensitive configuration values masked, for output.
    pub fn masked(&self) -> SyncJob {
        let mut copy = self.clone();
        copy.connector.configuration = self.connector.configuration.masked();
        copy
    }

    /// Wall time from start to completion (or to `now` while running).
    pub fn duration(&self, now: Timestamp) -> Option<chrono::Duration> {
        let start = self.started_at?;
        let end = self.completed_at.or(self.canceled_at).unwrap_or(now);
        Some(end.0 - start.0)
    }
}

/// The connector snapshot a job carries, taken when the job was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncJobConnector {
    pub id: String,
    #[serde(default)]
    pub index_name: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub pipeline: Option<Pipeline>,
    #[serde(default)]
    pub service_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub configuration: Configuration,
    /// One rules object here (the connector's active rules), not the connector's list.
    #[serde(default)]
    pub filtering: Option<FilteringRules>,
    #[serde(default)]
    pub sync_cursor: Option<Value>,
}

macro_rules! string_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? } default $default:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl Default for $name { fn default() -> Self { $name::$default } }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("'{s}' is not one of {}", names.join(", "))
                })
            }
        }
    };
}

string_enum!(JobStatus {
    Pending = "pending",
    InProgress = "in_progress",
    Canceling = "canceling",
    Canceled = "canceled",
    Suspended = "suspended",
    Completed = "completed",
    Error = "error",
} default Pending);

string_enum!(JobType {
    Full = "full",
    Incremental = "incremental",
    AccessControl = "access_control",
} default Full);

string_enum!(TriggerMethod {
    OnDemand = "on_demand",
    Scheduled = "scheduled",
} default OnDemand);

impl JobStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Canceled | Self::Error)
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Self::InProgress | Self::Canceling)
    }

    /// The transitions of `ConnectorSyncJobStateMachine`.
    pub fn can_become(&self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Pending, InProgress | Canceled)
                | (InProgress, Canceling | Completed | Suspended | Error)
                | (Suspended, InProgress | Canceled)
                | (Canceling, Canceled | Error)
        )
    }
}

/// The body of `PUT _connector/_sync_job/{id}/_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStats {
    pub deleted_document_count: u64,
    pub indexed_document_count: u64,
    /// Whole MiB.
    pub indexed_document_volume: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_document_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_use_the_protocol_spelling() {
        assert_eq!(
            serde_json::to_string(&JobStatus::Canceling).unwrap(),
            "\"canceling\""
        );
        assert_eq!(
            "access_control".parse::<JobType>(),
            Ok(JobType::AccessControl)
        );
        assert!("cancelled".parse::<JobStatus>().is_err());
        assert!(JobStatus::Pending.can_become(JobStatus::Canceled));
        assert!(!JobStatus::Completed.can_become(JobStatus::Error));
    }
}
