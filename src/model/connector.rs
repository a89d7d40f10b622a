//! The connector document (`.elastic-connectors`), its status enum and the small objects it
//! carries (scheduling, pipeline, features).

use super::serde_util::null_default;
use super::{Configuration, FilteringConfig, JobStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    #[serde(default)]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub index_name: Option<String>,
    #[serde(default)]
    pub service_type: Option<String>,
    #[serde(default)]
    pub status: ConnectorStatus,
    #[serde(default)]
    pub is_native: bool,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub api_key_id: Option<String>,
    #[serde(default)]
    pub api_key_secret_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub configuration: Configuration,
    #[serde(default, deserialize_with = "null_default")]
    pub custom_scheduling: Map<String, Value>,
    #[serde(default)]
    pub features: Option<Features>,
    #[serde(default, deserialize_with = "null_default")]
    pub filtering: Vec<FilteringConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub scheduling: Scheduling,
    #[serde(default)]
    pub pipeline: Option<Pipeline>,
    #[serde(default)]
    pub sync_cursor: Option<Value>,
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    #[serde(default)]
    pub last_synced: Option<Timestamp>,
    #[serde(default)]
    pub last_sync_status: Option<JobStatus>,
    #[serde(default)]
    pub last_sync_error: Option<String>,
    #[serde(default)]
    pub last_access_control_sync_status: Option<JobStatus>,
    #[serde(default)]
    pub last_access_control_sync_error: Option<String>,
    #[serde(default)]
    pub last_sync_scheduled_at: Option<Timestamp>,
    #[serde(default)]
    pub last_incremental_sync_scheduled_at: Option<Timestamp>,
    #[serde(default)]
    pub last_access_control_sync_scheduled_at: Option<Timestamp>,
    #[serde(default)]
    pub last_indexed_document_count: Option<u64>,
    #[serde(default)]
    pub last_deleted_document_count: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub sync_now: bool,
    /// Fields this version does not know, kept so a read-modify-write loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Connector {
    /// The active filtering rules of the `DEFAULT` domain, if any.
    pub fn active_filtering(&self) -> Option<&super::FilteringRules> {
        self.filtering.first().map(|f| &f.active)
    }

    /// A copy with sensitive configuration values masked, for output.
    pub fn masked(&self) -> Connector {
        Connector {
            configuration: self.configuration.masked(),
            ..self.clone()
        }
    }

    /// The pipeline settings, with the framework's defaults when absent.
    pub fn pipeline_or_default(&self) -> Pipeline {
        self.pipeline.clone().unwrap_or_default()
    }
}

/// A request to create a connector (`PUT _connector/{id}` or `POST _connector`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewConnector {
    /// `None` lets the backend generate an id.
    #[serde(skip)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_native: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorStatus {
    #[default]
    Created,
    NeedsConfiguration,
    Configured,
    Connected,
    Error,
}

impl ConnectorStatus {
    pub const ALL: [ConnectorStatus; 5] = [
        Self::Created,
        Self::NeedsConfiguration,
        Self::Configured,
        Self::Connected,
        Self::Error,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::NeedsConfiguration => "needs_configuration",
            Self::Configured => "configured",
            Self::Connected => "connected",
            Self::Error => "error",
        }
    }

    /// The transitions Elasticsearch accepts on `_status` (`ConnectorStateMachine`).
    pub fn can_become(&self, next: ConnectorStatus) -> bool {
        use ConnectorStatus::*;
        matches!(
            (self, next),
            (Created, NeedsConfiguration | Error)
                | (NeedsConfiguration, Configured | Error)
                | (
                    Configured,
                    NeedsConfiguration | Configured | Connected | Error
                )
                | (Connected, Connected | Configured | Error)
                | (Error, Connected | Configured | Error)
        )
    }
}

impl fmt::Display for ConnectorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectorStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown connector status '{s}'"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scheduling {
    #[serde(default)]
    pub full: ScheduleConfig,
    #[serde(default)]
    pub incremental: ScheduleConfig,
    #[serde(default)]
    pub access_control: ScheduleConfig,
}

/// One schedule: a Quartz cron expression (with seconds) and a switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_interval")]
    pub interval: String,
}

fn default_interval() -> String {
    "0 0 0 * * ?".to_string()
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_interval(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    #[serde(default = "default_pipeline_name")]
    pub name: String,
    #[serde(default = "yes")]
    pub extract_binary_content: bool,
    #[serde(default = "yes")]
    pub reduce_whitespace: bool,
    #[serde(default = "yes")]
    pub run_ml_inference: bool,
}

fn default_pipeline_name() -> String {
    "search-default-ingestion".to_string()
}

fn yes() -> bool {
    true
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            name: default_pipeline_name(),
            extract_binary_content: true,
            reduce_whitespace: true,
            run_ml_inference: true,
        }
    }
}

/// `features`: which optional protocol features the connector supports. Kept loose because
/// the shape has changed across versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_level_security: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_sync: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_connector_api_keys: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_rules: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Features {
    fn flag(v: &Option<Value>) -> bool {
        v.as_ref()
            .and_then(|v| v.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn incremental_sync_enabled(&self) -> bool {
        Self::flag(&self.incremental_sync)
    }

    pub fn document_level_security_enabled(&self) -> bool {
        Self::flag(&self.document_level_security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine_matches_elasticsearch() {
        use ConnectorStatus::*;
        assert!(Created.can_become(NeedsConfiguration));
        assert!(!Created.can_become(Connected));
        assert!(Error.can_become(Connected));
        assert!(!Connected.can_become(NeedsConfiguration));
        assert_eq!(
            "needs_configuration".parse::<ConnectorStatus>(),
            Ok(NeedsConfiguration)
        );
    }

    #[test]
    fn minimal_document_reads_with_defaults() {
        let c: Connector =
            serde_json::from_str(r#"{"id":"a","index_name":null,"filtering":null}"#).unwrap();
        assert_eq!(c.status, ConnectorStatus::Created);
        assert_eq!(c.scheduling.full.interval, "0 0 0 * * ?");
        assert_eq!(c.pipeline_or_default().name, "search-default-ingestion");
    }
}
