//! Helpers shared by the engine's integration tests (`tests/engine*.rs`): engines with short
//! intervals, backends over the stand-in, generator connectors, a generator that marks its
//! poisoned documents (the stand-in rejects by field name, not by mapping), and readers of
//! what ended up in an index or the dead-letter queue. Declared once in `tests/it/main.rs`;
//! each test module uses only part.
#![allow(dead_code)]

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ConfigurationUpdate, ControlPlane, DocumentStore};
use syncdeck::config::{BreakerSettings, EngineSettings, EsSettings};
use syncdeck::engine::dlq::{DeadLetterStore, DlqFilter};
use syncdeck::engine::runner::{Engine, EngineDeps, JobReport};
use syncdeck::model::{Configuration, DeadLetter, JobType, NewConnector, TriggerMethod};
use syncdeck::sources::{
    self, DataSource, GeneratorFactory, GeneratorSettings, GeneratorSource, ItemSender,
    POISON_VALUE, Registry, SourceError, SourceFactory, SourceItem, SyncMode,
};

/// The field the marking generator adds to poisoned documents, for `reject_field`.
pub const POISON_FIELD: &str = "poison";

/// Engine settings with intervals short enough for tests.
pub fn fast_settings() -> EngineSettings {
    EngineSettings {
        batch_max_docs: 100,
        batch_linger: Duration::from_millis(20),
        max_in_flight: 4,
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        stats_interval: Duration::from_millis(200),
        check_interval: Duration::from_millis(200),
        ..EngineSettings::default()
    }
}

/// A breaker that opens after 3 failures in a row, probes after 100 ms and gives up after 5 s.
pub fn fast_breaker() -> BreakerSettings {
    BreakerSettings {
        consecutive_failures: 3,
        open_for: Duration::from_millis(100),
        half_open_probes: 1,
        max_open: Duration::from_secs(5),
        ..BreakerSettings::default()
    }
}

/// Client settings for some nodes of the stand-in: short dead-node backoff, bounded requests.
pub fn es_settings(urls: &[String]) -> EsSettings {
    let mut s = EsSettings::new(
        urls.iter()
            .map(|u| u.parse().expect("stand-in URL"))
            .collect(),
    );
    s.request_timeout = Duration::from_secs(10);
    s.dead_backoff_base = Duration::from_millis(20);
    s.dead_backoff_max = Duration::from_millis(200);
    s
}

pub fn es_backend(urls: &[String]) -> Arc<ElasticsearchBackend> {
    Arc::new(ElasticsearchBackend::new(&es_settings(urls)).expect("client for the stand-in"))
}

pub fn memory_dlq() -> Arc<DeadLetterStore> {
    Arc::new(DeadLetterStore::open_in_memory(1_000_000).expect("in-memory DLQ"))
}

/// The built-in sources, with `generator` replaced by [`MarkingGeneratorFactory`].
pub fn marking_registry() -> Registry {
    let mut registry = sources::builtin();
    registry.register(Arc::new(MarkingGeneratorFactory));
    registry
}

pub fn engine(
    control: Arc<dyn ControlPlane>,
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    registry: Registry,
    worker: &str,
) -> Engine {
    engine_with(
        control,
        store,
        dlq,
        registry,
        worker,
        fast_settings(),
        fast_breaker(),
    )
}

pub fn engine_with(
    control: Arc<dyn ControlPlane>,
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    registry: Registry,
    worker: &str,
    settings: EngineSettings,
    breaker: BreakerSettings,
) -> Engine {
    Engine::new(EngineDeps {
        control,
        store,
        dlq,
        registry,
        settings,
        breaker,
        worker: worker.to_string(),
    })
}

/// An embedded backend in memory, an engine on it (built-in sources) and its DLQ.
pub fn embedded_engine(worker: &str) -> (Engine, EmbeddedBackend, Arc<DeadLetterStore>) {
    let backend = EmbeddedBackend::open_in_memory().expect("in-memory embedded backend");
    let dlq = memory_dlq();
    let engine = engine(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        dlq.clone(),
        sources::builtin(),
        worker,
    );
    (engine, backend, dlq)
}

/// Creates a connector of `service_type` writing to `index`, with the source's default
/// configuration and then `values`.
pub async fn create_connector(
    control: &dyn ControlPlane,
    id: &str,
    index: &str,
    factory: &dyn SourceFactory,
    values: Value,
) -> String {
    let new = NewConnector {
        id: Some(id.to_string()),
        name: Some(format!("test {id}")),
        index_name: Some(index.to_string()),
        service_type: Some(factory.service_type().to_string()),
        is_native: Some(false),
        ..Default::default()
    };
    let id = control
        .create_connector(&new)
        .await
        .expect("create connector");
    control
        .update_configuration(
            &id,
            &ConfigurationUpdate::Replace(factory.default_configuration()),
        )
        .await
        .expect("configuration schema");
    let values: Map<String, Value> = values.as_object().cloned().unwrap_or_default();
    if !values.is_empty() {
        control
            .update_configuration(&id, &ConfigurationUpdate::Values(values))
            .await
            .expect("configuration values");
    }
    id
}

/// A generator connector: `count` documents of `doc_bytes`, every `poison_every`th poisoned.
pub async fn generator_connector(
    control: &dyn ControlPlane,
    id: &str,
    index: &str,
    count: u64,
    poison_every: u64,
    rate: u64,
) -> String {
    let values =
        json!({"count": count, "poison_every": poison_every, "rate": rate, "doc_bytes": 256});
    create_connector(control, id, index, &GeneratorFactory, values).await
}

/// What the generator yields for these settings (seed 42, 256 bytes, like the connectors above).
pub fn generator(count: u64, poison_every: u64) -> GeneratorSource {
    GeneratorSource::new(GeneratorSettings {
        count,
        doc_bytes: 256,
        seed: 42,
        rate: 0,
        poison_every,
    })
}

/// `doc-0` … `doc-{count-1}`.
pub fn all_ids(count: u64) -> BTreeSet<String> {
    (0..count).map(|i| format!("doc-{i}")).collect()
}

/// The ids the generator poisons.
pub fn poisoned_ids(count: u64, poison_every: u64) -> BTreeSet<String> {
    if poison_every == 0 {
        return BTreeSet::new();
    }
    (0..count)
        .filter(|i| (i + 1) % poison_every == 0)
        .map(|i| format!("doc-{i}"))
        .collect()
}

/// Asserts two id sets are equal, printing only the sizes and a few differences.
#[track_caller]
pub fn assert_ids(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    if actual == expected {
        return;
    }
    let missing: Vec<&String> = expected.difference(actual).take(10).collect();
    let extra: Vec<&String> = actual.difference(expected).take(10).collect();
    panic!(
        "{what}: {} ids, expected {}; missing {} (e.g. {missing:?}), unexpected {} (e.g. {extra:?})",
        actual.len(),
        expected.len(),
        expected.difference(actual).count(),
        actual.difference(expected).count()
    );
}

/// Every dead letter (all connectors).
pub fn dead_letters(dlq: &DeadLetterStore) -> Vec<DeadLetter> {
    dlq.list(&DlqFilter::default()).expect("list dead letters")
}

/// Every id in an index, through the store's own id scan.
pub async fn store_ids(store: &dyn DocumentStore, index: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    if !store.index_exists(index).await.expect("index exists") {
        return ids;
    }
    let mut scan = store.scan_ids(index, 500, 1).await.expect("scan ids");
    while let Some(page) = scan.next_page().await.expect("scan page") {
        ids.extend(page.into_iter().map(|m| m.id));
    }
    scan.close().await.expect("close scan");
    ids
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`wait_for`], with an async check.
pub async fn wait_for_async<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `generator` service type, except that poisoned documents also carry
/// `"poison": true`, so the stand-in's `reject_field` fault rejects exactly them (the
/// stand-in does not type-check mappings). Same configuration, ids, fields and pacing
/// otherwise.
pub struct MarkingGeneratorFactory;

impl SourceFactory for MarkingGeneratorFactory {
    fn service_type(&self) -> &'static str {
        "generator"
    }

    fn display_name(&self) -> &'static str {
        "Synthetic documents (poison marked)"
    }

    fn default_configuration(&self) -> Configuration {
        GeneratorFactory.default_configuration()
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        GeneratorFactory.validate(config)
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        let settings = GeneratorSettings::from_config(config)?;
        Ok(Box::new(MarkingGenerator {
            settings,
            inner: GeneratorSource::new(settings),
        }))
    }
}

struct MarkingGenerator {
    settings: GeneratorSettings,
    inner: GeneratorSource,
}

#[async_trait]
impl DataSource for MarkingGenerator {
    async fn ping(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn total_hint(&mut self) -> Option<u64> {
        Some(self.settings.count)
    }

    async fn run(
        &mut self,
        _mode: SyncMode,
        out: ItemSender,
    ) -> Result<Option<Value>, SourceError> {
        let start = tokio::time::Instant::now();
        let rate = self.settings.rate;
        for i in 0..self.settings.count {
            if rate > 0 && i % (rate / 20).max(1) == 0 {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64))
                    .await;
            }
            let mut doc = self.inner.document(i);
            if doc.fields.get("value").and_then(Value::as_str) == Some(POISON_VALUE) {
                doc.fields
                    .insert(POISON_FIELD.to_string(), Value::Bool(true));
            }
            out.send(SourceItem::Upsert(doc)).await?;
        }
        Ok(None)
    }
}

/// [`run_sync`] that fails the test when the job has not ended within `limit` (a source
/// against a real database server, which could hang).
pub async fn run_sync_within(
    engine: &Engine,
    connector: &str,
    job_type: JobType,
    limit: Duration,
) -> (String, JobReport) {
    tokio::time::timeout(limit, run_sync(engine, connector, job_type))
        .await
        .expect("the job ends")
}

/// Adds syncdeck's `cursor_column` to a connector as `connectors set` does: the whole field
/// from the source's optional fields, with its value.
pub async fn set_cursor_column(
    control: &dyn ControlPlane,
    factory: &dyn SourceFactory,
    id: &str,
    column: &str,
) {
    let mut field = factory
        .optional_fields()
        .0
        .remove("cursor_column")
        .expect("an optional cursor_column");
    field.value = Value::from(column);
    let mut fields = Map::new();
    fields.insert(
        "cursor_column".into(),
        serde_json::to_value(&field).expect("field"),
    );
    control
        .merge_configuration(id, &fields)
        .await
        .expect("merge cursor_column");
}

/// Creates a job of `job_type` for `connector` and runs it to its end: the job's id and its
/// report.
pub async fn run_sync(engine: &Engine, connector: &str, job_type: JobType) -> (String, JobReport) {
    let job = engine
        .deps()
        .control
        .create_sync_job(connector, job_type, TriggerMethod::OnDemand)
        .await
        .expect("create job");
    let report = engine
        .run_job(&job, &tokio_util::sync::CancellationToken::new())
        .await
        .expect("run job");
    (job, report)
}
