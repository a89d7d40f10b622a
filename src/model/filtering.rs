//! Sync rules: the `filtering` list of a connector (`[{domain, active, draft}]`), basic rules
//! and the advanced snippet. Applying rules to documents is the engine's job
//! (`engine::filtering`); this module only holds the shapes.

use super::Timestamp;
use super::serde_util::null_default;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilteringConfig {
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default)]
    pub active: FilteringRules,
    #[serde(default)]
    pub draft: FilteringRules,
}

fn default_domain() -> String {
    "DEFAULT".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilteringRules {
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<FilteringRule>,
    #[serde(default)]
    pub advanced_snippet: AdvancedSnippet,
    #[serde(default)]
    pub validation: FilteringValidation,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdvancedSnippet {
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilteringRule {
    #[serde(default)]
    pub id: String,
    pub policy: RulePolicy,
    #[serde(default)]
    pub field: String,
    pub rule: RuleType,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub order: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl FilteringRule {
    /// The catch-all rule every rule list ends with.
    pub fn default_rule() -> Self {
        Self {
            id: "DEFAULT".into(),
            policy: RulePolicy::Include,
            field: "_".into(),
            rule: RuleType::Regex,
            value: ".*".into(),
            order: 0,
            created_at: None,
            updated_at: None,
        }
    }

    pub fn is_default(&self) -> bool {
        self.id == "DEFAULT"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulePolicy {
    Include,
    Exclude,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleType {
    #[serde(rename = "equals")]
    Equals,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "starts_with")]
    StartsWith,
    #[serde(rename = "ends_with")]
    EndsWith,
    #[serde(rename = "regex")]
    Regex,
    #[serde(rename = "<")]
    LessThan,
    #[serde(rename = ">")]
    GreaterThan,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilteringValidation {
    #[serde(default)]
    pub state: FilteringValidationState,
    #[serde(default, deserialize_with = "null_default")]
    pub errors: Vec<FilteringValidationError>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilteringValidationState {
    Edited,
    #[default]
    Valid,
    Invalid,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilteringValidationError {
    #[serde(default, deserialize_with = "null_default")]
    pub ids: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub messages: Vec<String>,
}
