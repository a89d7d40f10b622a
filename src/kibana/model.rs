//! What the Kibana actions and status APIs send and receive: connectors, connector types,
//! execution results, the status summary. Plain serde types, lenient on input (Kibana versions
//! add and drop fields); no HTTP here.

use crate::secret::MASK;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The connector type id of Kibana's index connector.
pub const INDEX_CONNECTOR_TYPE: &str = ".index";

/// An actions connector as Kibana lists it. Secrets are never returned by Kibana.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionConnector {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub connector_type_id: String,
    /// Omitted for preconfigured connectors.
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub is_preconfigured: bool,
    #[serde(default)]
    pub is_deprecated: bool,
    #[serde(default)]
    pub is_missing_secrets: Option<bool>,
    #[serde(default)]
    pub is_system_action: bool,
    /// Only the list API computes it, and not for preconfigured connectors.
    #[serde(default)]
    pub referenced_by_count: Option<u64>,
}

impl ActionConnector {
    /// The problems worth showing next to the connector, most serious first.
    pub fn health_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.is_missing_secrets == Some(true) {
            flags.push("missing secrets");
        }
        if self.is_deprecated {
            flags.push("deprecated");
        }
        flags
    }

    /// The target index of an `.index` connector.
    pub fn index_name(&self) -> Option<&str> {
        if self.connector_type_id != INDEX_CONNECTOR_TYPE {
            return None;
        }
        self.config.as_ref()?.get("index")?.as_str()
    }
}

/// A connector type Kibana offers, with whether this deployment may use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorType {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub enabled_in_config: bool,
    #[serde(default)]
    pub enabled_in_license: bool,
    #[serde(default)]
    pub minimum_license_required: String,
    #[serde(default)]
    pub supported_feature_ids: Vec<String>,
    #[serde(default)]
    pub is_system_action_type: bool,
}

/// A connector to create. Not `Serialize` on purpose: the body is built by the client only, so
/// the secrets cannot end up in some other serialised output; `Debug` masks them.
#[derive(Clone, PartialEq)]
pub struct NewActionConnector {
    pub name: String,
    pub connector_type_id: String,
    pub config: Value,
    /// Sent to Kibana as is; `{}` for types without secrets (such as `.index`).
    pub secrets: Value,
}

impl fmt::Debug for NewActionConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewActionConnector")
            .field("name", &self.name)
            .field("connector_type_id", &self.connector_type_id)
            .field("config", &self.config)
            .field("secrets", &MASK)
            .finish()
    }
}

/// Whether Kibana ran the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecuteStatus {
    Ok,
    Error,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

/// The answer of `_execute`. An action that failed still comes back with HTTP 200 and
/// `status: error`; check [`ExecuteResult::is_ok`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResult {
    // Older Kibana versions answered in camelCase.
    #[serde(alias = "actionId", alias = "connectorId")]
    pub connector_id: String,
    pub status: ExecuteStatus,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, alias = "serviceMessage")]
    pub service_message: Option<String>,
    /// For `.index`: the bulk response.
    #[serde(default)]
    pub data: Option<Value>,
}

impl ExecuteResult {
    pub fn is_ok(&self) -> bool {
        self.status == ExecuteStatus::Ok
    }

    /// The failure, worded for an operator, or `None` when the action ran.
    pub fn failure(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        let message = self.message.as_deref().unwrap_or("the action failed");
        Some(match &self.service_message {
            Some(detail) => format!("{message}: {detail}"),
            None => message.to_string(),
        })
    }
}

/// Kibana's overall health, name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KibanaStatus {
    /// The server name (`server.name`), empty when Kibana hides it from anonymous callers.
    pub name: String,
    /// The version number (`8.17.0`), empty when hidden.
    pub version: String,
    /// `available`, `degraded`, `unavailable` or `critical` (older versions: `green`…).
    pub level: String,
    pub summary: Option<String>,
}

impl KibanaStatus {
    pub fn is_available(&self) -> bool {
        matches!(self.level.as_str(), "available" | "green")
    }
}

/// The wire shape of `GET /api/status`, reduced to what [`KibanaStatus`] keeps.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatusBody {
    name: String,
    version: StatusVersion,
    status: StatusSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusVersion {
    number: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusSection {
    overall: StatusOverall,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusOverall {
    /// 8.x and later.
    level: Option<String>,
    /// 7.x.
    state: Option<String>,
    summary: Option<String>,
    title: Option<String>,
}

impl StatusBody {
    /// Whether this is a status document rather than some other JSON (an error body).
    pub(crate) fn has_overall(&self) -> bool {
        let overall = &self.status.overall;
        overall.level.is_some() || overall.state.is_some()
    }
}

impl From<StatusBody> for KibanaStatus {
    fn from(body: StatusBody) -> Self {
        let overall = body.status.overall;
        Self {
            name: body.name,
            version: body.version.number,
            level: overall
                .level
                .or(overall.state)
                .unwrap_or_else(|| "unknown".to_string()),
            summary: overall.summary.or(overall.title),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connector(extra: Value) -> ActionConnector {
        let mut body = json!({"id": "c1", "name": "n", "connector_type_id": ".index"});
        if let (Some(map), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_preconfigured_connector_without_config_parses() {
        let c: ActionConnector = serde_json::from_value(json!({
            "id": "pre-1", "name": "mail", "connector_type_id": ".email",
            "is_preconfigured": true, "is_deprecated": false, "referenced_by_count": 0,
            "some_future_field": {"x": 1}
        }))
        .unwrap();
        assert!(c.is_preconfigured);
        assert_eq!(c.config, None);
        assert_eq!(c.is_missing_secrets, None);
        assert_eq!(c.referenced_by_count, Some(0));
    }

    #[test]
    fn health_flags_list_missing_secrets_then_deprecated() {
        assert!(connector(json!({})).health_flags().is_empty());
        let both = connector(json!({"is_missing_secrets": true, "is_deprecated": true}));
        assert_eq!(both.health_flags(), vec!["missing secrets", "deprecated"]);
        let dep = connector(json!({"is_missing_secrets": false, "is_deprecated": true}));
        assert_eq!(dep.health_flags(), vec!["deprecated"]);
    }

    #[test]
    fn index_name_only_for_index_connectors() {
        let c = connector(json!({"config": {"index": "logs-a", "refresh": false}}));
        assert_eq!(c.index_name(), Some("logs-a"));
        let other = connector(json!({"connector_type_id": ".email", "config": {"index": "x"}}));
        assert_eq!(other.index_name(), None);
    }

    #[test]
    fn new_connector_debug_masks_secrets() {
        let new = NewActionConnector {
            name: "hook".into(),
            connector_type_id: ".webhook".into(),
            config: json!({"url": "https://example.test"}),
            secrets: json!({"password": "hunter2-very-secret"}),
        };
        let shown = format!("{new:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(MASK));
        assert!(shown.contains("example.test"));
    }

    #[test]
    fn execute_result_in_both_spellings() {
        let snake: ExecuteResult = serde_json::from_value(json!({
            "connector_id": "c1", "status": "error", "message": "an error occurred",
            "service_message": "index_not_found"
        }))
        .unwrap();
        assert!(!snake.is_ok());
        assert_eq!(
            snake.failure().as_deref(),
            Some("an error occurred: index_not_found")
        );
        let camel: ExecuteResult =
            serde_json::from_value(json!({"actionId": "c1", "status": "ok", "data": {}})).unwrap();
        assert!(camel.is_ok());
        assert_eq!(camel.failure(), None);
        let odd: ExecuteResult =
            serde_json::from_value(json!({"connector_id": "c1", "status": "queued"})).unwrap();
        assert_eq!(odd.status, ExecuteStatus::Unknown);
    }

    #[test]
    fn status_from_current_and_old_shapes() {
        let now: StatusBody = serde_json::from_value(json!({
            "name": "kb-1", "version": {"number": "8.17.0", "build_snapshot": false},
            "status": {"overall": {"level": "degraded", "summary": "1 service degraded"}}
        }))
        .unwrap();
        let now = KibanaStatus::from(now);
        assert_eq!(
            (now.name.as_str(), now.version.as_str()),
            ("kb-1", "8.17.0")
        );
        assert_eq!(now.level, "degraded");
        assert!(!now.is_available());
        let old: StatusBody =
            serde_json::from_value(json!({"status": {"overall": {"state": "green"}}})).unwrap();
        let old = KibanaStatus::from(old);
        assert!(old.is_available());
        assert_eq!(old.version, "");
        let boom: StatusBody =
            serde_json::from_value(json!({"statusCode": 503, "error": "Service Unavailable"}))
                .unwrap();
        assert!(!boom.has_overall());
        let bare = KibanaStatus::from(StatusBody::default());
        assert_eq!(bare.level, "unknown");
    }
}
