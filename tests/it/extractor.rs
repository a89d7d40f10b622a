//! The extractor's loop (engine/pipeline.rs): a batch that is not full still goes out after
//! `batch_linger` while the source is quiet, items taken from the source a handful at a
//! time keep their order, a checkpoint in the middle of a handful included, and a sync whose
//! caller gives up stops its source.

use crate::engine_util::*;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ControlPlane, DocumentStore};
use syncdeck::engine::runner::JobEnd;
use syncdeck::model::{Configuration, JobType};
use syncdeck::sources::{
    self, DataSource, Document, Fields, ItemSender, SourceError, SourceFactory, SourceItem,
    SyncMode,
};

const INDEX: &str = "trickle";

/// A source factory of one service type, with no settings, whose sources `make` builds.
struct TestFactory<F> {
    service_type: &'static str,
    make: F,
}

impl<F> SourceFactory for TestFactory<F>
where
    F: Fn() -> Box<dyn DataSource> + Send + Sync,
{
    fn service_type(&self) -> &'static str {
        self.service_type
    }

    fn display_name(&self) -> &'static str {
        self.service_type
    }

    fn default_configuration(&self) -> Configuration {
        Configuration::default()
    }

    fn create(&self, _: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        Ok((self.make)())
    }
}

/// Sends 3 documents, then waits (at most 10 s) until the store holds them, which only a
/// linger flush can bring about (a batch takes 100); then 20 more and a checkpoint in one
/// burst, and waits until the checkpoint is the connector's cursor, noting how many
/// documents the store holds then; then the last 20.
struct Trickle {
    store: EmbeddedBackend,
    at_checkpoint: Arc<AtomicU64>,
}

/// Waits (at most 10 s) until `done` says yes.
async fn within_10s<F, Fut>(what: &str, mut done: F) -> Result<(), SourceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(SourceError::Failed(format!(
                "{what} did not happen in 10 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn doc(i: usize) -> SourceItem {
    let mut fields = Fields::new();
    fields.insert("n", json!(i));
    SourceItem::Upsert(Document::new(format!("t{i}"), fields))
}

#[async_trait]
impl DataSource for Trickle {
    async fn ping(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn run(&mut self, _: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        for i in 0..3 {
            out.send(doc(i)).await?;
        }
        let store = &self.store;
        within_10s("the linger flush of the first 3 documents", || async {
            store.count(INDEX).await.unwrap_or(0) >= 3
        })
        .await?;
        for i in 3..23 {
            out.send(doc(i)).await?;
        }
        out.send(SourceItem::Checkpoint(json!({"after": 22})))
            .await?;
        let at_checkpoint = &self.at_checkpoint;
        within_10s("the checkpoint", || async {
            let saved = store.get_connector("trickle").await.map(|c| c.sync_cursor);
            if !matches!(&saved, Ok(Some(cursor)) if *cursor == json!({"after": 22})) {
                return false;
            }
            let held = store.count(INDEX).await.unwrap_or(0);
            at_checkpoint.store(held, Ordering::SeqCst);
            true
        })
        .await?;
        for i in 23..43 {
            out.send(doc(i)).await?;
        }
        Ok(Some(json!("end")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_source_gets_its_partial_batch_flushed_and_a_checkpoint_keeps_its_place() {
    let backend = EmbeddedBackend::open_in_memory().expect("embedded backend");
    let at_checkpoint = Arc::new(AtomicU64::new(0));
    let factory = Arc::new(TestFactory {
        service_type: "trickle",
        make: {
            let (store, at_checkpoint) = (backend.clone(), at_checkpoint.clone());
            move || -> Box<dyn DataSource> {
                Box::new(Trickle {
                    store: store.clone(),
                    at_checkpoint: at_checkpoint.clone(),
                })
            }
        },
    });
    let mut registry = sources::builtin();
    registry.register(factory.clone());
    let engine = engine_with(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        memory_dlq(),
        registry,
        "w-trickle",
        fast_settings(),
        fast_breaker(),
    );
    let id = create_connector(&backend, "trickle", INDEX, factory.as_ref(), json!({})).await;
    let (_, report) = run_sync(&engine, &id, JobType::Full).await;

    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 43, "{:?}", report.counters);
    let expected = (0..43).map(|i| format!("t{i}")).collect();
    assert_ids(
        &store_ids(&backend, INDEX).await,
        &expected,
        "index trickle",
    );
    // The checkpoint was saved only once the 23 documents sent before it were in the store.
    let held = at_checkpoint.load(Ordering::SeqCst);
    assert!(
        (23..43).contains(&held),
        "{held} documents stored at the checkpoint"
    );
    // The completed sync then saves the source's own final cursor.
    let connector = backend.get_connector(&id).await.expect("connector");
    assert_eq!(connector.sync_cursor, Some(json!("end")));
}

/// Sends documents until nobody listens (or 1M, so a broken test still ends), counting them.
struct Endless {
    sent: Arc<AtomicU64>,
}

#[async_trait]
impl DataSource for Endless {
    async fn ping(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn run(&mut self, _: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        for i in 0..1_000_000 {
            out.send(doc(i)).await?;
            self.sent.fetch_add(1, Ordering::SeqCst);
            // Slow enough that the test's wait is seen, fast enough to be mid-sync at once.
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(None)
    }
}

/// A caller that gives up on a sync (drops its future, as a `select!` or a timeout does)
/// stops its source with it: nothing may go on reading and indexing by itself. (Guards a
/// future design that runs the extraction apart from the caller's task.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_caller_gives_up_stops_its_source() {
    let backend = EmbeddedBackend::open_in_memory().expect("embedded backend");
    let sent = Arc::new(AtomicU64::new(0));
    let factory = Arc::new(TestFactory {
        service_type: "endless",
        make: {
            let sent = sent.clone();
            move || -> Box<dyn DataSource> { Box::new(Endless { sent: sent.clone() }) }
        },
    });
    let mut registry = sources::builtin();
    registry.register(factory.clone());
    let engine = engine_with(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        memory_dlq(),
        registry,
        "w-endless",
        fast_settings(),
        fast_breaker(),
    );
    let id = create_connector(&backend, "endless", "endless", factory.as_ref(), json!({})).await;
    // Gives up once the source is visibly under way (however slow the machine is to
    // create, claim and start the job), within 30 s.
    let started = async {
        while sent.load(Ordering::SeqCst) < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = run_sync(&engine, &id, JobType::Full) => panic!("the endless sync ended by itself"),
        _ = tokio::time::timeout(Duration::from_secs(30), started) => {}
    }
    let at_drop = sent.load(Ordering::SeqCst);
    assert!(at_drop > 0, "the source never started");
    // Give a source that was not stopped time to show it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = sent.load(Ordering::SeqCst);
    assert_eq!(
        settled, later,
        "the source kept sending after its sync was dropped ({at_drop} at the drop)"
    );
}
