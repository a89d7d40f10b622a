//! Data sources: where documents come from. A [`SourceFactory`] per service type (the
//! connectors framework's `BaseDataSource` class) describes its configuration fields and
//! builds a [`DataSource`] from a connector's configuration; the [`Registry`] maps service
//! types to factories. A source pushes [`SourceItem`]s into an [`ItemSender`], a bounded
//! channel, so a fast source waits for the engine instead of filling memory.
//! Sources know nothing of Elasticsearch, bulk requests or the dead-letter queue.

mod builtin;
pub mod database;
mod directory;
mod document;
mod external;
pub mod extract;
mod fields;
mod generator;
mod http_api;
mod lines;
mod ndjson;
mod registry;

pub use builtin::builtin;
pub use database::mysql::MysqlFactory;
pub use database::postgresql::PostgresqlFactory;
pub use directory::DirectoryFactory;
pub use document::{ColumnKeys, Document, Fields, Key, LazyContent};
pub use external::{
    ExternalFactory, ExternalSource, INHERITED_ENV as EXTERNAL_INHERITED_ENV, spec_fields,
};
pub use generator::{GeneratorFactory, GeneratorSettings, GeneratorSource, POISON_VALUE};
pub use http_api::HttpApiFactory;
pub use ndjson::NdjsonFactory;
pub use registry::Registry;

use crate::model::Configuration;
use async_trait::async_trait;
use serde_json::{Map, Value};
use thiserror::Error;
use tokio::sync::mpsc;

/// What a source yields.
#[derive(Debug)]
pub enum SourceItem {
    /// Index the whole document.
    Upsert(Document),
    /// Partial update (`doc_as_upsert`), from incremental sources.
    Update(Document),
    /// Delete by id, from incremental sources.
    Delete(String),
    /// Something the source could read but not turn into a document (a line that is not
    /// JSON, a record without an id). It goes to the dead-letter queue with its reason and
    /// the sync goes on.
    Invalid {
        id: String,
        reason: String,
        raw: Value,
    },
    /// A resumable position: persisted as the connector's cursor only once every item sent
    /// before it has been handled (indexed or dead-lettered).
    Checkpoint(Value),
}

/// Full or incremental.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncMode {
    Full,
    /// The cursor the previous successful sync saved.
    Incremental {
        cursor: Option<Value>,
    },
}

#[derive(Debug, Error)]
pub enum SourceError {
    /// The configuration is wrong; names the field.
    #[error("configuration field '{field}': {}", crate::secret::mask(.reason))]
    Config { field: String, reason: String },
    /// The source cannot be reached or read. Shown with every known secret masked, whatever
    /// the text quotes (an API's answer, a program's stderr).
    #[error("{}", crate::secret::mask(.0))]
    Unavailable(String),
    /// Reading failed part-way; masked like `Unavailable`.
    #[error("{}", crate::secret::mask(.0))]
    Failed(String),
    /// The engine stopped listening (the job was canceled or failed).
    #[error("the sync was stopped")]
    Stopped,
}

/// Makes the masker know every sensitive value of a connector's configuration (as text),
/// so that no error, log line or dead letter of its sync can show one. Called by each
/// factory's `create`, before the source can say anything.
pub(crate) fn register_sensitive(config: &Configuration) {
    for field in config.0.values().filter(|f| f.sensitive) {
        for value in [&field.value, &field.default_value] {
            match value {
                Value::String(s) => crate::secret::mask::register(s.trim()),
                Value::Null => {}
                other => crate::secret::mask::register(&other.to_string()),
            }
        }
    }
}

/// The sending half of the source → engine channel.
#[derive(Clone)]
pub struct ItemSender {
    tx: mpsc::Sender<SourceItem>,
}

impl ItemSender {
    /// A channel holding at most `capacity` items.
    pub fn channel(capacity: usize) -> (ItemSender, mpsc::Receiver<SourceItem>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ItemSender { tx }, rx)
    }

    /// Waits for room; `Err(Stopped)` when the engine is gone.
    pub async fn send(&self, item: SourceItem) -> Result<(), SourceError> {
        // With room in the channel (most sends), no permit future is built and polled. A
        // source then yields only when the channel is full: the engine's is small
        // (`SOURCE_CHANNEL_ITEMS`), so it fills every few documents.
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.tx.send(item).await.map_err(|_| SourceError::Stopped)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SourceError::Stopped),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A running source, built from one connector's configuration.
#[async_trait]
pub trait DataSource: Send {
    /// A cheap check that the source is reachable with this configuration.
    async fn ping(&mut self) -> Result<(), SourceError>;

    /// The number of documents, when the source knows it up front (for progress gauges).
    async fn total_hint(&mut self) -> Option<u64> {
        None
    }

    /// Sends every item into `out`. Returns the cursor to save after a successful sync
    /// (incremental sources), or `None`.
    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError>;

    /// What the source reports about its sync for the job's `metadata` (tables skipped,
    /// rows per table), read while it runs and once it is done. Most sources have nothing.
    fn notes(&self) -> Option<std::sync::Arc<dyn SourceNotes>> {
        None
    }
}

/// A running source's report for its job's `metadata`: shared with the engine, which reads
/// it at each stats write and at the end, whatever became of the source itself.
pub trait SourceNotes: Send + Sync {
    fn metadata(&self) -> Map<String, Value>;
}

/// One service type: its configuration schema and how to build a source from it.
pub trait SourceFactory: Send + Sync {
    fn service_type(&self) -> &'static str;
    fn display_name(&self) -> &'static str;
    /// The default configuration fields (label, order, tooltip, type, display, sensitive,
    /// required, options, depends_on, validations, default values).
    fn default_configuration(&self) -> Configuration;
    /// Whether the source has its own incremental mode.
    fn supports_incremental(&self) -> bool {
        false
    }
    /// Whether a connector with this configuration syncs incrementally (its features'
    /// `incremental_sync`): by default the type's [`Self::supports_incremental`]; a source
    /// whose incremental mode needs a setting (the databases' `cursor_column`) answers per
    /// connector.
    fn supports_incremental_for(&self, config: &Configuration) -> bool {
        let _ = config;
        self.supports_incremental()
    }
    /// Why an incremental job of a connector with this configuration cannot run here, when
    /// it cannot (such a job is not claimed). `None` by default: a source without an
    /// incremental mode of its own gets a full listing.
    fn incremental_refusal(&self, config: &Configuration) -> Option<String> {
        let _ = config;
        None
    }
    /// Fields a connector of this type may have besides [`Self::default_configuration`]'s,
    /// added only when the operator sets one (`connectors set`): syncdeck's own settings on
    /// a catalog type whose default fields must stay the reference's.
    fn optional_fields(&self) -> Configuration {
        Configuration::default()
    }
    /// Checks values beyond the per-field rules (which the engine checks first with
    /// `model::validate`).
    fn validate(&self, _config: &Configuration) -> Result<(), SourceError> {
        Ok(())
    }
    /// Problems with an advanced sync rules snippet, empty when it is valid.
    fn validate_advanced_rules(&self, snippet: &Value) -> Vec<String> {
        match snippet {
            Value::Null => Vec::new(),
            Value::Object(m) if m.is_empty() => Vec::new(),
            _ => vec![format!(
                "{} does not support advanced sync rules",
                self.service_type()
            )],
        }
    }
    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError>;
    /// Whether the source applies advanced sync rules (the connector's
    /// `features.sync_rules.advanced.enabled`).
    fn supports_advanced_rules(&self) -> bool {
        false
    }
    /// Builds the source for a sync whose active advanced sync rules are `advanced` (already
    /// checked by [`SourceFactory::validate_advanced_rules`]). Sources without advanced rules
    /// ignore them.
    fn create_for_sync(
        &self,
        config: &Configuration,
        advanced: Option<&Value>,
    ) -> Result<Box<dyn DataSource>, SourceError> {
        let _ = advanced;
        self.create(config)
    }
    /// Problems with an advanced sync rules snippet found by asking the source itself (a
    /// database checks that the tables exist), as the framework's remote validators do;
    /// by default the offline check.
    fn check_advanced_rules<'a>(
        &'a self,
        config: &'a Configuration,
        snippet: &'a Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + 'a>> {
        let _ = config;
        Box::pin(std::future::ready(self.validate_advanced_rules(snippet)))
    }
}
