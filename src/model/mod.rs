//! Domain types, defined once and shared by the clients, the backends, the engine, the CLI and
//! the console. They follow the connector protocol documents (see PROTOCOL.md in the design
//! notes): every type tolerates missing and unknown fields, and keeps unknown fields so that a
//! document read and written back loses nothing. No I/O here.

mod bulk;
mod config_field;
mod connector;
mod dead_letter;
mod filtering;
mod query;
mod serde_util;
mod sync_job;
mod table_progress;
mod timestamp;
pub mod validate;

pub use bulk::{
    BulkItem, BulkOp, BulkRequest, BulkResponse, DocMeta, DocRef, Docs, IdPage, ItemError,
};
pub use config_field::{
    ConfigField, Configuration, Dependency, DisplayType, FieldType, SelectOption, Validation,
    ValidationType, is_empty_value, loosely_equal, value_text,
};
pub use connector::{
    Connector, ConnectorStatus, Features, NewConnector, Pipeline, ScheduleConfig, Scheduling,
};
pub use dead_letter::{DeadLetter, DeadLetterState, Origin};
pub use filtering::{
    AdvancedSnippet, FilteringConfig, FilteringRule, FilteringRules, FilteringValidation,
    FilteringValidationError, FilteringValidationState, RulePolicy, RuleType,
};
pub use query::{ConfigurationUpdate, ConnectorQuery, LastSync, SyncJobQuery};
pub use sync_job::{JobStatus, JobType, SyncJob, SyncJobConnector, SyncStats, TriggerMethod};
pub use table_progress::{TableCounts, TableProgress, TableStatus};
pub use timestamp::Timestamp;

/// One page of a paged list (`{count, results}` in the connector APIs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
// `default` on `results` would otherwise make serde require `T: Default`.
#[serde(bound(deserialize = "T: serde::Deserialize<'de>"))]
pub struct Page<T> {
    /// Total number of matching items (not only this page).
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub results: Vec<T>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            count: 0,
            results: Vec::new(),
        }
    }
}
