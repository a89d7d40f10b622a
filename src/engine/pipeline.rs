//! One sync's data path: source → extractor (sync rules, unchanged-document skip when asked, lazy
//! content, serialisation into bulk bodies) → a queue bounded in bytes → N sink workers.
//! Checkpoints from the source are released only once every item sent before them is settled.
//!
//! A full sync reads the index's ids once, as they were before indexing (the Python service
//! reads them up front too), into an [`IndexSnapshot`]: per document a 64-bit hash of its `_id`
//! (sorted), a seen bit, and with `skip_unchanged` a 64-bit hash of its `_timestamp`; the
//! `_id`s themselves go to an anonymous temporary file in scan order. Each document the source
//! sends marks its bit (without the unchanged skip, in sorted runs of up to [`UNMARKED_MAX`],
//! which keep the lookups in cache); at the end the documents whose bit is clear are read back
//! from the file and deleted, with no second pass over the index. An index that was missing or
//! empty at the start is not scanned at all, and when every document was seen there is no
//! deletion work. Documents others create in the index during the sync were not in the
//! snapshot, so they are never deleted by it (the next full sync sees them); memory stays flat
//! whatever the size of the source. When the store's scan is a point in time (Elasticsearch's
//! PIT) and no unchanged skip needs the snapshot up front, the scan is opened before the first
//! document is sent and read while indexing runs ([`SnapshotState`]).

use super::batch::{Batch, BatchBuilder, BatchLimits, bulk_id};
use super::dlq::{DeadLetterStore, NewDeadLetter};
use super::filtering::RuleEngine;
use super::id_spill::IdSpill;
use super::progress::{BatchTally, DocOutcome, Outcome, Phase, Progress};
use super::sink::{Delivered, Sink, SinkError};
use crate::backend::{BackendError, DocumentStore};
use crate::config::EngineSettings;
use crate::model::Pipeline;
use crate::sources::{DataSource, Document, ItemSender, SourceError, SourceItem, SyncMode};
use futures_util::FutureExt;
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// How one sync runs.
pub struct PipelineSettings {
    pub engine: EngineSettings,
    pub mode: SyncMode,
    /// Basic sync rules (active ones of the job's snapshot).
    pub rules: Option<RuleEngine>,
    /// The connector's pipeline flags, copied into each document.
    pub pipeline: Option<Pipeline>,
    /// Field blocking and hashing, applied before serialisation (index and DLQ alike).
    pub transform: Option<super::transform::FieldTransform>,
    /// Whether a full listing skips documents whose `_timestamp` the index already has. The
    /// Python service does so only in incremental syncs; a full sync sends every document,
    /// so that mapping and ingest-pipeline changes reach them all.
    pub skip_unchanged: bool,
}

/// The result of a pipeline that ran to the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineOutcome {
    pub delivered: Delivered,
    /// The cursor the source returned (incremental syncs).
    pub cursor: Option<Value>,
    /// Documents the source sent.
    pub seen: u64,
    pub skipped: u64,
    /// Records the source could not read (dead-lettered as `source_invalid`).
    pub unreadable: u64,
    /// Why a full sync deleted nothing, when it did not dare to.
    pub deletions_skipped: Option<String>,
}

impl PipelineOutcome {
    /// What the job's `metadata` in the cluster should say about this sync (the framework's
    /// free-form field), when there is something to say.
    pub fn job_metadata(&self) -> Option<serde_json::Map<String, Value>> {
        let reason = self.deletions_skipped.as_ref()?;
        let mut metadata = serde_json::Map::new();
        metadata.insert("deletions_skipped".into(), Value::String(reason.clone()));
        metadata.insert("unreadable_records".into(), Value::from(self.unreadable));
        Some(metadata)
    }
}

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error("source: {0}")]
    Source(SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading existing documents of '{index}': {source}")]
    Scan { index: String, source: BackendError },
    #[error("keeping the ids of '{index}' in a temporary file: {source}")]
    Spill {
        index: String,
        source: std::io::Error,
    },
    #[error("the sync was canceled")]
    Canceled,
}

/// Everything the pipeline needs from outside.
pub struct PipelineParts {
    pub store: Arc<dyn DocumentStore>,
    pub sink: Arc<Sink>,
    pub dlq: Arc<DeadLetterStore>,
    pub progress: Arc<Progress>,
    /// Receives cursors that are safe to persist while the sync runs.
    pub checkpoints: Option<mpsc::UnboundedSender<Value>>,
}

/// Runs one sync to the end. Cancelling `cancel` stops the source and the sink promptly.
pub async fn run(
    mut source: Box<dyn DataSource>,
    parts: PipelineParts,
    settings: PipelineSettings,
    cancel: CancellationToken,
) -> Result<PipelineOutcome, PipelineError> {
    let index = parts.sink.settings().index.clone();
    let full = settings.mode == SyncMode::Full;
    // Both talk to the outside (the source, the cluster): a cancel must not wait for them.
    parts.progress.set_step("asking the source for its size");
    let hint = tokio::select! {
        hint = source.total_hint() => hint,
        _ = cancel.cancelled() => return Err(PipelineError::Canceled),
    };
    parts.progress.set_total_hint(hint);
    // A full sync's one pass over the index's ids: for the deletions at the end, and for the
    // unchanged skip when asked. `None` when the index is missing or empty.
    let work = cancel.child_token();
    let mut snapshot = if full {
        parts.progress.set_step("scanning the index's ids");
        // The id scan of a large index takes a while: a cancel must not wait for it.
        let opened = tokio::select! {
            opened = IndexSnapshot::open(
                parts.store.as_ref(),
                &index,
                settings.skip_unchanged,
                super::id_spill::preferred_dir(&parts.dlq),
                Some(parts.progress.clone()),
            ) => opened?,
            _ = cancel.cancelled() => return Err(PipelineError::Canceled),
        };
        match opened {
            None => SnapshotState::None,
            // The scan is frozen at its opening, and only the deletions need it: read it
            // while indexing.
            Some(scan) if !settings.skip_unchanged && scan.scan.is_point_in_time() => {
                SnapshotState::spawn(scan, &work, EARLY_SEEN_MAX)
            }
            // The unchanged skip needs it before the first document.
            Some(scan) => tokio::select! {
                loaded = scan.read(&cancel) => loaded?.map_or(SnapshotState::None, SnapshotState::Ready),
                _ = cancel.cancelled() => return Err(PipelineError::Canceled),
            },
        }
    } else {
        SnapshotState::None
    };

    // A short channel: documents are freed soon after they are made, so the allocator serves
    // them from its per-thread cache (1024 in flight pushed them to its slow path). At most
    // twice its size are in flight: a handful taken by the extractor, and as many sent since.
    let (item_tx, mut item_rx) = ItemSender::channel(SOURCE_CHANNEL_ITEMS);
    let source_cancel = work.clone();
    let mode = settings.mode.clone();
    // The source runs in this task, beside the extractor, not in a task of its own: each
    // document is then allocated and freed on one thread (unless a wake-up moved the task to
    // another worker in between), which keeps the allocator's per-thread caches warm and
    // memory flat. A panicking source fails the sync, as a panicking task did.
    let source_run = std::panic::AssertUnwindSafe(async move {
        tokio::select! {
            result = source.run(mode, item_tx) => result,
            _ = source_cancel.cancelled() => Err(SourceError::Stopped),
        }
    })
    .catch_unwind();

    let workers = Workers::start(&parts, &settings.engine, work.clone());
    parts.progress.set_phase(Phase::Extracting);
    let limits = BatchLimits {
        max_docs: settings.engine.batch_max_docs,
        max_bytes: settings.engine.batch_max_bytes,
    };
    let mut builder = BatchBuilder::new(limits, settings.pipeline.as_ref());
    let mut skipped = 0u64;
    let mut seen_count = 0u64;
    let mut unreadable = 0u64;
    let linger = settings.engine.batch_linger;

    let extract = async {
        let extracted = async {
            // Items are taken from the channel as many as are there (up to its size) at a
            // time: one wake-up, one permit release and one linger timer per handful instead
            // of per document.
            let mut taken = Vec::with_capacity(SOURCE_CHANNEL_ITEMS);
            loop {
                let received = match builder.pending_since() {
                    Some(since) => {
                        let deadline = tokio::time::Instant::from_std(since + linger);
                        let receive = item_rx.recv_many(&mut taken, SOURCE_CHANNEL_ITEMS);
                        match tokio::time::timeout_at(deadline, receive).await {
                            Ok(received) => received,
                            Err(_) => {
                                if let Some(batch) = builder.flush() {
                                    workers.send(batch).await?;
                                }
                                continue;
                            }
                        }
                    }
                    None => item_rx.recv_many(&mut taken, SOURCE_CHANNEL_ITEMS).await,
                };
                // Nothing received: every sender is gone, the source is done.
                if received == 0 {
                    break;
                }
                for item in taken.drain(..) {
                    match item {
                        SourceItem::Upsert(doc) => {
                            seen_count += 1;
                            parts.progress.add_seen(1);
                            if let Some(batch) = upsert(
                                doc,
                                &settings,
                                &mut snapshot,
                                &mut skipped,
                                &mut builder,
                                &parts.progress,
                            )
                            .await?
                            {
                                workers.send(batch).await?;
                            }
                        }
                        SourceItem::Update(mut doc) => {
                            super::transform::apply(settings.transform.as_ref(), &mut doc.fields);
                            seen_count += 1;
                            parts.progress.add_seen(1);
                            snapshot.observe(&doc.id, None).await?;
                            if let Some(batch) = builder.push_update(doc.id, &doc.fields) {
                                workers.send(batch).await?;
                            }
                        }
                        SourceItem::Delete(id) => {
                            if let Some(batch) = builder.push_delete(id) {
                                workers.send(batch).await?;
                            }
                        }
                        SourceItem::Invalid {
                            id,
                            reason,
                            mut raw,
                        } => {
                            if let Some(t) = &settings.transform {
                                t.apply_to_raw(&mut raw);
                            }
                            seen_count += 1;
                            unreadable += 1;
                            parts.progress.add_seen(1);
                            dead_letter_invalid(&parts, &index, id, reason, raw).await?;
                        }
                        SourceItem::Checkpoint(cursor) => {
                            if let Some(batch) = builder.flush() {
                                workers.send(batch).await?;
                            }
                            workers.checkpoint(cursor);
                        }
                    }
                }
            }
            if let Some(batch) = builder.flush() {
                workers.send(batch).await?;
            }
            Ok::<(), PipelineError>(())
        }
        .await;
        if extracted.is_err() {
            // Stop the source; it may be waiting for room in the channel.
            work.cancel();
        }
        // A source still sending learns that nobody listens.
        item_rx.close();
        extracted
    };
    let (extracted, source_result) = tokio::join!(extract, source_run);
    let source_result = source_result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(SourceError::Failed(format!("the source panicked: {what}")))
    });
    // Whatever happened, let queued batches finish (or fail) before deciding.
    let delivered = workers.finish().await;
    if cancel.is_cancelled() {
        return Err(PipelineError::Canceled);
    }
    // The extractor's own failure (a dead-letter write, say) is the cause; its "workers gone"
    // (`Canceled`) only echoes the workers' error, which then names the cause.
    let extracted = match extracted {
        Err(e) if !matches!(e, PipelineError::Canceled) => return Err(e),
        other => other,
    };
    let mut delivered = delivered?;
    extracted?;
    let cursor = match source_result {
        Ok(cursor) => cursor,
        Err(SourceError::Stopped) if cancel.is_cancelled() => return Err(PipelineError::Canceled),
        // A failed extraction deletes nothing (as the framework does).
        Err(e) => return Err(PipelineError::Source(e)),
    };
    // Deleting is deciding that the source no longer has a document: only a read that
    // completed cleanly knows that. A record the source could not read may be any indexed
    // document (its id is lost with it), so then nothing is deleted.
    let deletions_skipped = (full && unreadable > 0).then(|| {
        format!(
            "the source reported {unreadable} unreadable record(s) (dead-lettered as \
             source_invalid); a full sync deletes only after a clean read, so nothing was deleted"
        )
    });
    if let Some(reason) = &deletions_skipped {
        tracing::warn!(index = %index, unreadable, "{reason}");
    }
    // The scan is read by now unless indexing outran it; without deletions it is not needed.
    let snapshot = match &deletions_skipped {
        None => snapshot.finish().await?,
        Some(_) => None,
    };
    if let Some(snapshot) = snapshot {
        parts.progress.set_phase(Phase::Deleting);
        let deleted =
            delete_unseen(&parts, &settings, snapshot, &index, cancel.child_token()).await?;
        delivered.deleted += deleted.deleted;
        delivered.dead_lettered += deleted.dead_lettered;
    }
    Ok(PipelineOutcome {
        delivered,
        cursor,
        seen: seen_count,
        skipped,
        unreadable,
        deletions_skipped,
    })
}

/// Handles one whole document: sync rules, the unchanged skip, lazy content, serialisation.
async fn upsert(
    mut doc: Document,
    settings: &PipelineSettings,
    snapshot: &mut SnapshotState,
    skipped: &mut u64,
    builder: &mut BatchBuilder,
    progress: &Progress,
) -> Result<Option<Batch>, PipelineError> {
    if let Some(rules) = &settings.rules
        && !rules.should_index_stamped(&doc.fields, doc.timestamp.as_deref())
    {
        // Excluded documents are not "seen": a full sync removes them from the index.
        *skipped += 1;
        progress.skip(&doc.id, "excluded by sync rules").await;
        return Ok(None);
    }
    if snapshot.observe(&doc.id, doc.timestamp.as_deref()).await? {
        *skipped += 1;
        progress
            .skip(&doc.id, "unchanged since the last sync")
            .await;
        return Ok(None);
    }
    if let Some(fetch) = doc.content.take() {
        match fetch().await {
            Ok(content) => doc.fields.extend(content),
            Err(e) => {
                // Indexed without its content, the reason on the document: nothing is lost.
                doc.fields
                    .insert("_extraction_error", Value::String(e.to_string()));
            }
        }
    }
    // A binary attachment becomes body text here when the connector's pipeline asks for it
    // (the framework's `extract_binary_content`); a failure is recorded on the document.
    let extract = settings
        .pipeline
        .as_ref()
        .is_none_or(|p| p.extract_binary_content);
    if extract
        && doc
            .fields
            .contains_key(crate::sources::extract::ATTACHMENT_FIELD)
    {
        crate::sources::extract::extract_attachment(
            &mut doc.fields,
            &crate::sources::extract::ExtractLimits::default(),
        )
        .await;
    }
    super::transform::apply(settings.transform.as_ref(), &mut doc.fields);
    Ok(builder.push_index(doc.id, doc.timestamp.as_deref(), &mut doc.fields))
}

async fn dead_letter_invalid(
    parts: &PipelineParts,
    index: &str,
    id: String,
    reason: String,
    raw: Value,
) -> Result<(), PipelineError> {
    let settings = parts.sink.settings();
    let entry = NewDeadLetter {
        connector_id: settings.connector_id.clone(),
        job_id: settings.job_id.clone(),
        index: index.to_string(),
        doc_id: id.clone(),
        document: raw.to_string(),
        error_type: "source_invalid".to_string(),
        reason: reason.clone(),
        status: None,
    };
    let dlq = parts.dlq.clone();
    tokio::task::spawn_blocking(move || dlq.append_batch(&[entry]))
        .await
        .map_err(|e| SinkError::DeadLetterQueue(super::dlq::DlqError::Internal(e.to_string())))?
        .map_err(SinkError::from)?;
    parts.progress.add_batch(&BatchTally {
        dead_lettered: 1,
        ..Default::default()
    });
    parts
        .progress
        .record(vec![DocOutcome {
            id,
            outcome: Outcome::DeadLettered,
            bytes: 0,
            latency_ms: 0,
            reason: Some(reason),
        }])
        .await;
    Ok(())
}

/// Full sync, last step: delete the documents of the snapshot this sync did not see, reading
/// their `_id`s back from the snapshot's file. Nothing stale, nothing to do.
async fn delete_unseen(
    parts: &PipelineParts,
    settings: &PipelineSettings,
    snapshot: IndexSnapshot,
    index: &str,
    cancel: CancellationToken,
) -> Result<Delivered, PipelineError> {
    let spill_error = |source| PipelineError::Spill {
        index: index.to_string(),
        source,
    };
    let (stale, spill) = snapshot.into_stale();
    if stale.is_empty() {
        return Ok(Delivered::default());
    }
    let mut ids = spill.into_reader().await.map_err(spill_error)?;
    let workers = Workers::start(parts, &settings.engine, cancel.clone());
    let limits = BatchLimits {
        max_docs: settings.engine.batch_max_docs,
        max_bytes: settings.engine.batch_max_bytes,
    };
    let mut builder = BatchBuilder::new(limits, None);
    let deleting = async {
        loop {
            if cancel.is_cancelled() {
                return Err(PipelineError::Canceled);
            }
            let Some(id) = ids.next_id().await.map_err(spill_error)? else {
                break;
            };
            if !stale.contains_hash(id_hash(&id)) {
                continue;
            }
            if let Some(batch) = builder.push_delete(id) {
                workers.send(batch).await?;
            }
        }
        if let Some(batch) = builder.flush() {
            workers.send(batch).await?;
        }
        Ok::<(), PipelineError>(())
    }
    .await;
    let delivered = workers.finish().await?;
    deleting?;
    Ok(delivered)
}

/// A 64-bit hash of an id (or timestamp). foldhash with a fixed seed: several times cheaper
/// than SipHash on short strings, and as good at keeping a million ids apart.
fn id_hash(id: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x05ee_d1d5).hash_one(id)
}

/// Where each run of sorted 64-bit hashes sharing their top bits starts, about four hashes a
/// bucket: a lookup reads one table entry and searches a few neighbours, instead of a binary
/// search whose ~20 probes each miss the cache once the set outgrows it (a million ids).
#[derive(Default)]
struct Buckets {
    /// `starts[b]..starts[b + 1]` holds the hashes whose top bits are `b`; empty for small
    /// sets, which are searched whole.
    starts: Vec<u32>,
    shift: u32,
}

impl Buckets {
    /// `sorted` must be in ascending order.
    fn new(sorted: impl ExactSizeIterator<Item = u64>) -> Self {
        let len = sorted.len();
        if len < 64 || len > u32::MAX as usize {
            return Self::default();
        }
        let bits = (usize::BITS - 1 - len.leading_zeros())
            .saturating_sub(2)
            .clamp(1, 30);
        let shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        for (i, hash) in sorted.enumerate() {
            let bucket = (hash >> shift) as usize;
            while starts.len() <= bucket {
                starts.push(i as u32);
            }
        }
        starts.resize(buckets + 1, len as u32);
        Self { starts, shift }
    }

    /// The positions that may hold `hash` in a set of `len`.
    fn range(&self, hash: u64, len: usize) -> std::ops::Range<usize> {
        if self.starts.is_empty() {
            return 0..len;
        }
        let bucket = (hash >> self.shift) as usize;
        match (self.starts.get(bucket), self.starts.get(bucket + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..len,
        }
    }
}

/// A sorted set of 64-bit hashes with its [`Buckets`]. A collision can only keep a stale
/// document (two ids that share a hash are both seen, or both stale), never delete a live one.
#[derive(Default)]
struct HashSet64 {
    hashes: Vec<u64>,
    buckets: Buckets,
}

impl HashSet64 {
    /// `hashes` in any order, duplicates allowed.
    fn new(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        let buckets = Buckets::new(hashes.iter().copied());
        Self { hashes, buckets }
    }

    fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn contains_hash(&self, hash: u64) -> bool {
        let range = self.buckets.range(hash, self.hashes.len());
        self.hashes
            .get(range)
            .is_some_and(|near| near.binary_search(&hash).is_ok())
    }
}

/// `_timestamp` hash of a document the unchanged skip must not trust: none, or stored under
/// an `_id` that is not the one this sync would give it.
const NO_STAMP: u64 = 0;

fn stamp_hash(timestamp: &str) -> u64 {
    id_hash(timestamp).max(1)
}

/// The per-document keys of a snapshot, sorted by `_id` hash, without duplicates.
enum SnapshotKeys {
    /// `_id` hashes.
    Bare(Vec<u64>),
    /// `_id` hash and `_timestamp` hash ([`NO_STAMP`] when the skip must not trust it).
    Stamped(Vec<(u64, u64)>),
}

impl SnapshotKeys {
    fn len(&self) -> usize {
        match self {
            Self::Bare(keys) => keys.len(),
            Self::Stamped(keys) => keys.len(),
        }
    }

    fn key(&self, position: usize) -> Option<u64> {
        match self {
            Self::Bare(keys) => keys.get(position).copied(),
            Self::Stamped(keys) => keys.get(position).map(|(key, _)| *key),
        }
    }

    /// The standard library's sort. An in-place bucketing pass on the hashes' top bits ran a
    /// third of its instructions, yet took 40 ms against 14 at 1M hashes and 1.2 s against
    /// 80 ms at 5M: every move missed the cache.
    fn sort(&mut self) {
        match self {
            Self::Bare(keys) => {
                keys.sort_unstable();
                keys.dedup();
            }
            Self::Stamped(keys) => {
                keys.sort_unstable_by_key(|(key, _)| *key);
                // Two `_id`s sharing a hash: one entry, whose timestamp is trusted for neither.
                keys.dedup_by(|later, kept| {
                    let same = later.0 == kept.0;
                    if same {
                        kept.1 = NO_STAMP;
                    }
                    same
                });
            }
        }
    }
}

/// What the index held when a full sync started (see the module docs): 8 bytes a document
/// (16 with `skip_unchanged`), a bit for "seen", about a byte of bucket table, and the `_id`s
/// on disk; besides, up to [`UNMARKED_MAX`] hashes of documents sent, not marked yet.
struct IndexSnapshot {
    keys: SnapshotKeys,
    buckets: Buckets,
    /// One bit per entry of `keys`: the source sent that document.
    seen: Vec<u64>,
    /// `_id` hashes sent but not marked in `seen` yet (bare snapshots, whose observation
    /// answers nothing): marked [`UNMARKED_MAX`] at a time, in hash order.
    unmarked: Vec<u64>,
    spill: IdSpill,
}

/// An id scan opened on a non-empty index, not read yet.
struct OpenScan {
    scan: Box<dyn crate::backend::IdScan>,
    index: String,
    with_stamps: bool,
    /// The index's document count when the scan opened.
    capacity: usize,
    /// Where the `_id`s go (see `engine::id_spill`).
    spill_dir: Option<std::path::PathBuf>,
    /// Told of each page read, so the stall watchdog sees the pass working.
    progress: Option<Arc<Progress>>,
}

impl OpenScan {
    /// Reads every page into a snapshot (`None` if the index turned out empty), then closes
    /// the scan, also when reading fails or `cancel` stops it.
    async fn read(
        mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<IndexSnapshot>, PipelineError> {
        let index = self.index.as_str();
        let scan_error = |source| PipelineError::Scan {
            index: index.to_string(),
            source,
        };
        let spill_error = |source| PipelineError::Spill {
            index: index.to_string(),
            source,
        };
        let mut keys = if self.with_stamps {
            SnapshotKeys::Stamped(Vec::with_capacity(self.capacity))
        } else {
            SnapshotKeys::Bare(Vec::with_capacity(self.capacity))
        };
        let mut spill = IdSpill::create(self.spill_dir.take())
            .await
            .map_err(spill_error)?;
        let scan = &mut self.scan;
        let progress = self.progress.clone();
        let result = async {
            loop {
                let page = tokio::select! {
                    page = scan.next_page() => page.map_err(scan_error)?,
                    _ = cancel.cancelled() => return Err(PipelineError::Canceled),
                };
                let Some(page) = page else { break };
                if let Some(progress) = &progress {
                    progress.add_scanned(page.len() as u64);
                }
                for doc in &page {
                    // Deletions and the skip both go by `_id`: the one a bulk request names.
                    let stored = doc.stored();
                    spill.push(stored).await.map_err(spill_error)?;
                    let key = id_hash(stored);
                    match &mut keys {
                        SnapshotKeys::Bare(keys) => keys.push(key),
                        SnapshotKeys::Stamped(keys) => {
                            // Only a document stored under the `_id` this sync would give it
                            // can be skipped as unchanged: another one (a body id that is not
                            // its `_id`) is re-indexed under ours, and the old one deleted.
                            let ours = doc.stored_id.is_none_or(|stored| stored == bulk_id(doc.id));
                            let stamp = match (ours, doc.timestamp) {
                                (true, Some(ts)) => stamp_hash(ts),
                                _ => NO_STAMP,
                            };
                            keys.push((key, stamp));
                        }
                    }
                }
            }
            Ok::<(), PipelineError>(())
        }
        .await;
        if let Err(e) = self.scan.close().await {
            tracing::warn!(error = %e, index, "closing the id scan failed");
        }
        result?;
        // Sorting 10M hashes takes about a second of CPU: on the blocking pool, so the
        // runtime's threads keep serving the sync (and the console) meanwhile.
        let (keys, buckets) = tokio::task::spawn_blocking(move || {
            keys.sort();
            let buckets = match &keys {
                SnapshotKeys::Bare(k) => Buckets::new(k.iter().copied()),
                SnapshotKeys::Stamped(k) => Buckets::new(k.iter().map(|(key, _)| *key)),
            };
            (keys, buckets)
        })
        .await
        .map_err(|e| PipelineError::Spill {
            index: index.to_string(),
            source: std::io::Error::other(format!("sorting the id snapshot failed: {e}")),
        })?;
        if keys.len() == 0 {
            return Ok(None);
        }
        Ok(Some(IndexSnapshot::new(keys, buckets, spill)))
    }
}

impl IndexSnapshot {
    fn new(keys: SnapshotKeys, buckets: Buckets, spill: IdSpill) -> Self {
        // Reserved once, so it never grows past its bound; pages not written cost nothing.
        let unmarked = match &keys {
            SnapshotKeys::Bare(_) => Vec::with_capacity(UNMARKED_MAX),
            SnapshotKeys::Stamped(_) => Vec::new(),
        };
        Self {
            seen: vec![0u64; keys.len().div_ceil(64)],
            keys,
            buckets,
            unmarked,
            spill,
        }
    }

    /// Opens the scan of the index's ids; `None` when the index does not exist or holds
    /// nothing (a fresh index: nothing to skip, nothing to delete). `with_stamps` reads each
    /// document's `_timestamp` too, for the unchanged skip; without it the scan reads `_id`s
    /// alone. [`OpenScan::read`] reads it.
    async fn open(
        store: &dyn DocumentStore,
        index: &str,
        with_stamps: bool,
        spill_dir: Option<std::path::PathBuf>,
        progress: Option<Arc<Progress>>,
    ) -> Result<Option<OpenScan>, PipelineError> {
        let scan_error = |source| PipelineError::Scan {
            index: index.to_string(),
            source,
        };
        if !store.index_exists(index).await.map_err(scan_error)? {
            return Ok(None);
        }
        let count = store.count(index).await.map_err(scan_error)?;
        if count == 0 {
            return Ok(None);
        }
        // The count is a good guess of the size (documents may come and go meanwhile).
        let capacity = usize::try_from(count).unwrap_or(0).min(1 << 32);
        let slices = if count >= SLICED_SCAN_MIN {
            SCAN_SLICES
        } else {
            1
        };
        let scan = if with_stamps {
            store.scan_ids(index, SCAN_PAGE_SIZE, slices).await
        } else {
            store.scan_bare_ids(index, SCAN_PAGE_SIZE, slices).await
        }
        .map_err(scan_error)?;
        Ok(Some(OpenScan {
            scan,
            index: index.to_string(),
            with_stamps,
            capacity,
            spill_dir,
            progress,
        }))
    }

    /// The position of an `_id` hash in `keys`.
    fn position(&self, key: u64) -> Option<usize> {
        let range = self.buckets.range(key, self.keys.len());
        let start = range.start;
        let found = match &self.keys {
            SnapshotKeys::Bare(keys) => keys.get(range)?.binary_search(&key),
            SnapshotKeys::Stamped(keys) => keys.get(range)?.binary_search_by_key(&key, |(k, _)| *k),
        };
        found.ok().map(|i| start + i)
    }

    /// The source sent document `id` (its source id) with this `_timestamp`: marks it seen,
    /// and says whether the index already has it unchanged (only with stamps).
    fn observe(&mut self, id: &str, timestamp: Option<&str>) -> bool {
        let key = id_hash(&bulk_id(id));
        if let SnapshotKeys::Bare(_) = &self.keys {
            // Nothing to answer: marked later, with others, in hash order.
            self.unmarked.push(key);
            if self.unmarked.len() >= UNMARKED_MAX {
                self.mark_unmarked();
            }
            return false;
        }
        let Some(position) = self.mark_seen(key) else {
            return false;
        };
        match (&self.keys, timestamp) {
            (SnapshotKeys::Stamped(keys), Some(ts)) => keys
                .get(position)
                .is_some_and(|(_, stamp)| *stamp != NO_STAMP && *stamp == stamp_hash(ts)),
            _ => false,
        }
    }

    /// Marks the documents with these `_id` hashes seen, in hash order: the lookups then walk
    /// the keys, the lookup table and `seen` forwards. In the order documents come, each one
    /// missed the cache (and the TLB) in all three once the snapshot outgrew them: at 5M
    /// documents the single lookups took a fifth of a re-sync's CPU. Returns `keys` emptied,
    /// for reuse.
    fn mark_all(&mut self, mut keys: Vec<u64>) -> Vec<u64> {
        keys.sort_unstable();
        for &key in &keys {
            self.mark_seen(key);
        }
        keys.clear();
        keys
    }

    /// Marks the hashes waiting in `unmarked`, keeping its room for the next ones.
    fn mark_unmarked(&mut self) {
        let unmarked = std::mem::take(&mut self.unmarked);
        self.unmarked = self.mark_all(unmarked);
    }

    /// Marks the document with this `_id` hash seen; its position, if the snapshot has it.
    fn mark_seen(&mut self, key: u64) -> Option<usize> {
        let position = self.position(key)?;
        if let Some(word) = self.seen.get_mut(position / 64) {
            *word |= 1 << (position % 64);
        }
        Some(position)
    }

    /// The `_id` hashes nobody saw, and the file of `_id`s.
    fn into_stale(mut self) -> (HashSet64, IdSpill) {
        self.mark_unmarked();
        let stale: Vec<u64> = (0..self.keys.len())
            .filter(|&i| {
                self.seen
                    .get(i / 64)
                    .is_none_or(|word| word & (1 << (i % 64)) == 0)
            })
            .filter_map(|i| self.keys.key(i))
            .collect();
        (HashSet64::new(stale), self.spill)
    }
}

/// How many `_id` hashes a bare snapshot collects before marking them (512 KiB): enough that
/// neighbours in hash order are a few hundred bytes apart in the keys even at 5M documents.
const UNMARKED_MAX: usize = 1 << 16;

/// Items the source may send ahead of the extractor (see `run`).
const SOURCE_CHANNEL_ITEMS: usize = 16;

/// `_id`s per page of the id pass. Pages of 5,000 were tried (a 1M re-sync on the bench):
/// fewer round trips, but the larger answers slowed the indexing beside them, CPU per
/// document did not fall and peak RSS rose by 6 MiB.
const SCAN_PAGE_SIZE: usize = 1000;

/// Slices of the id pass read at once (see `elastic::pit_scan`). With one, the cluster and
/// the engine took turns: after the last document was indexed, the pass still read one page
/// at a time, most of a 100k re-sync's gap to plain indexing. Two keep a request on the wire
/// while a page is taken in; more would take more of the cluster's search threads from the
/// indexing beside them.
const SCAN_SLICES: usize = 2;

/// Below this many documents (four pages), one slice: a second would add a request to a pass
/// of a few round trips.
const SLICED_SCAN_MIN: u64 = 4 * SCAN_PAGE_SIZE as u64;

/// How many `_id` hashes the extractor notes while the snapshot is still being read, before
/// it waits for the scan: 8 MiB, so memory stays bounded however far indexing runs ahead.
const EARLY_SEEN_MAX: usize = 1 << 20;

/// A full sync's snapshot as the extractor sees it. With a point-in-time scan and no
/// unchanged skip, the scan is read in a task of its own while the source is read and
/// indexed (the two cost the cluster and the engine different things, so they overlap): the
/// snapshot is the index as it was when the scan opened, before the first document was sent,
/// exactly what a scan completed up front would hold. Until it is in, the extractor notes the
/// `_id` hash of each document it sees and marks them once it arrives.
enum SnapshotState {
    /// Nothing to delete (not a full sync, or a missing or empty index).
    None,
    Ready(IndexSnapshot),
    Loading {
        task: tokio::task::JoinHandle<Result<Option<IndexSnapshot>, PipelineError>>,
        /// Stops the scan (closing its PIT) when the sync ends without waiting for it. The
        /// close is sent by the scan's own task: a process that exits at once (or a scan that
        /// panicked) leaves the PIT to expire on its keep-alive, which bounds its cost.
        _stop: tokio_util::sync::DropGuard,
        early: Vec<u64>,
        /// How many hashes `early` may hold before the extractor waits ([`EARLY_SEEN_MAX`];
        /// tests make it small).
        early_max: usize,
        index: String,
    },
    /// The scan failed: asked again, it says so again (its task cannot be awaited twice).
    Failed {
        index: String,
        reason: String,
    },
}

impl SnapshotState {
    /// Starts reading `scan` in its own task; past `early_max` noted ids the extractor waits
    /// for it.
    fn spawn(scan: OpenScan, cancel: &CancellationToken, early_max: usize) -> Self {
        let stop = cancel.child_token();
        let token = stop.clone();
        let index = scan.index.clone();
        // Room for as many as the index holds, up to the cap, reserved once: grown by
        // doubling, the list copied itself and held its old and new halves at once (12 MiB
        // at the cap instead of 8). Reserved pages of fresh memory cost nothing until written.
        let early = Vec::with_capacity(scan.capacity.min(early_max));
        let task = tokio::spawn(async move { scan.read(&token).await });
        Self::Loading {
            task,
            _stop: stop.drop_guard(),
            early,
            early_max,
            index,
        }
    }

    /// The source sent document `id` with this `_timestamp`: marks it seen, and says whether
    /// the index already has it unchanged (see [`IndexSnapshot::observe`]). While the
    /// snapshot loads, notes the id (a loading snapshot has no stamps, so nothing is
    /// unchanged); when too many are noted, waits for it.
    async fn observe(&mut self, id: &str, timestamp: Option<&str>) -> Result<bool, PipelineError> {
        if matches!(self, Self::Failed { .. }) {
            self.settle().await?;
        }
        if let Self::Loading {
            task,
            early,
            early_max,
            ..
        } = self
        {
            if task.is_finished() || early.len() >= *early_max {
                self.settle().await?;
            } else {
                early.push(id_hash(&bulk_id(id)));
                return Ok(false);
            }
        }
        Ok(match self {
            Self::Ready(snapshot) => snapshot.observe(id, timestamp),
            _ => false,
        })
    }

    /// Waits for a loading snapshot and marks the ids noted meanwhile.
    async fn settle(&mut self) -> Result<(), PipelineError> {
        if let Self::Failed { index, reason } = self {
            return Err(PipelineError::Scan {
                index: index.clone(),
                source: BackendError::Other(reason.clone()),
            });
        }
        let Self::Loading {
            task, early, index, ..
        } = self
        else {
            return Ok(());
        };
        // The task ends by itself (it is never aborted): an error here is its panic.
        let loaded = task
            .await
            .map_err(|e| PipelineError::Scan {
                index: index.clone(),
                source: BackendError::Other(format!("the id scan stopped: {e}")),
            })
            .and_then(|loaded| loaded);
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                *self = Self::Failed {
                    index: index.clone(),
                    reason: e.to_string(),
                };
                return Err(e);
            }
        };
        let early = std::mem::take(early);
        *self = match loaded {
            Some(mut snapshot) => {
                // In hash order the lookups walk the snapshot's keys forwards. A million
                // against 5M keys: 57 ms in the order documents came, 22 sorted (the sort
                // included); against 1M keys the two cost the same.
                snapshot.mark_all(early);
                Self::Ready(snapshot)
            }
            None => Self::None,
        };
        Ok(())
    }

    /// The snapshot, once complete.
    async fn finish(mut self) -> Result<Option<IndexSnapshot>, PipelineError> {
        self.settle().await?;
        Ok(match self {
            Self::Ready(snapshot) => Some(snapshot),
            _ => None,
        })
    }
}

/// N sink workers fed through a queue bounded in bytes.
struct Workers {
    tx: Option<mpsc::Sender<(Batch, tokio::sync::OwnedSemaphorePermit)>>,
    handles: Vec<tokio::task::JoinHandle<Result<Delivered, SinkError>>>,
    bytes: Arc<Semaphore>,
    /// The queue's permits and the slots it feeds (see [`batch_permits`]).
    total_permits: u32,
    max_in_flight: usize,
    state: Arc<Mutex<CheckpointState>>,
    progress: Arc<Progress>,
}

/// Batches in flight and checkpoints waiting for them.
#[derive(Default)]
struct CheckpointState {
    in_flight: BTreeSet<u64>,
    last_sent: u64,
    waiting: VecDeque<(u64, Value)>,
    out: Option<mpsc::UnboundedSender<Value>>,
    queued_bytes: u64,
    queued_docs: u64,
}

impl CheckpointState {
    fn release(&mut self) {
        let floor = self.in_flight.first().copied();
        let mut latest = None;
        while let Some((seq, _)) = self.waiting.front() {
            if floor.is_some_and(|f| f <= *seq) {
                break;
            }
            latest = self.waiting.pop_front().map(|(_, c)| c);
        }
        if let (Some(cursor), Some(out)) = (latest, &self.out) {
            let _ = out.send(cursor);
        }
    }
}

/// Queue permits are counted in KiB so a `u32` covers any sane bound.
const PERMIT_BYTES: usize = 1024;

/// The queue's permits: `queue_max_bytes` in KiB, rounded down to a whole number of shares
/// for `max_in_flight + 1` batches (so capped batches fit exactly that many times) and at
/// least one a share (see [`batch_permits`]).
fn queue_permits(queue_max_bytes: usize, max_in_flight: usize) -> u32 {
    let slots = max_in_flight.saturating_add(1).min(u32::MAX as usize >> 4);
    let kib = (queue_max_bytes / PERMIT_BYTES)
        .max(slots)
        .min(u32::MAX as usize >> 4);
    (kib - kib % slots) as u32
}

/// The permits a batch of `body_len` bytes takes from a queue of `total` permits that feeds
/// `max_in_flight` request slots: its size in KiB, but at most an even share of the queue
/// for `max_in_flight + 1` batches. A batch holds its permits until it is settled, in flight
/// included, so charged in full, big batches (a 5 MB batch against the 16 MiB default) left
/// room for fewer batches than slots, and slots stood idle however slow the cluster was.
/// Capped, the queue holds `queue_max_bytes` of batches, or `max_in_flight + 1` of them when
/// they are bigger than that share: room for every slot and one batch ready behind them.
fn batch_permits(body_len: usize, total: u32, max_in_flight: usize) -> u32 {
    debug_assert!(total >= queue_permits(0, max_in_flight));
    let slots = u32::try_from(max_in_flight.saturating_add(1)).unwrap_or(u32::MAX);
    let share = (total / slots).max(1);
    let kib = u32::try_from(body_len / PERMIT_BYTES + 1).unwrap_or(u32::MAX);
    kib.min(share)
}

impl Workers {
    fn start(parts: &PipelineParts, engine: &EngineSettings, cancel: CancellationToken) -> Self {
        // More deliveries than request slots: a batch waiting out a backoff holds no slot.
        parts.sink.configure(engine);
        let n = super::sink::deliveries_for(engine.max_in_flight);
        let total_permits = queue_permits(engine.queue_max_bytes, engine.max_in_flight);
        let bytes = Arc::new(Semaphore::new(total_permits as usize));
        let (tx, rx) = mpsc::channel::<(Batch, tokio::sync::OwnedSemaphorePermit)>(n * 2);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let state = Arc::new(Mutex::new(CheckpointState {
            out: parts.checkpoints.clone(),
            ..Default::default()
        }));
        let handles = (0..n)
            .map(|_| {
                let rx = rx.clone();
                let sink = parts.sink.clone();
                let cancel = cancel.clone();
                let state = state.clone();
                let progress = parts.progress.clone();
                tokio::spawn(async move {
                    let mut total = Delivered::default();
                    let mut failure = None;
                    loop {
                        let next = { rx.lock().await.recv().await };
                        let Some((batch, permit)) = next else {
                            return failure.map_or(Ok(total), Err);
                        };
                        let seq = batch.seq;
                        let (bytes, docs) = (batch.body.len() as u64, batch.len() as u64);
                        let result = sink.deliver(batch, &cancel).await;
                        drop(permit);
                        {
                            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                            s.queued_bytes = s.queued_bytes.saturating_sub(bytes);
                            s.queued_docs = s.queued_docs.saturating_sub(docs);
                            progress.set_queue(s.queued_bytes, s.queued_docs);
                            // An unsettled batch keeps holding back the checkpoints after it.
                            if result.is_ok() {
                                s.in_flight.remove(&seq);
                                s.release();
                            }
                        }
                        match result {
                            Ok(d) => {
                                total.indexed += d.indexed;
                                total.updated += d.updated;
                                total.deleted += d.deleted;
                                total.dead_lettered += d.dead_lettered;
                            }
                            // The job was canceled: stop at once.
                            Err(SinkError::Canceled) => return Err(SinkError::Canceled),
                            Err(e) => {
                                // One worker's fatal error ends the sync: the source stops, and
                                // every worker dead-letters what it holds and what is still
                                // queued, so nothing the source sent is lost.
                                if failure.is_none() {
                                    sink.abort(e.to_string());
                                    cancel.cancel();
                                    failure = Some(e);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            handles,
            bytes,
            total_permits,
            max_in_flight: engine.max_in_flight,
            state,
            progress: parts.progress.clone(),
        }
    }

    /// Queues a batch, waiting while the queue holds its byte bound (backpressure).
    async fn send(&self, batch: Batch) -> Result<(), PipelineError> {
        let kib = batch_permits(batch.body.len(), self.total_permits, self.max_in_flight);
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| PipelineError::Canceled)?;
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.in_flight.insert(batch.seq);
            s.last_sent = s.last_sent.max(batch.seq);
            s.queued_bytes += batch.body.len() as u64;
            s.queued_docs += batch.len() as u64;
            self.progress.set_queue(s.queued_bytes, s.queued_docs);
        }
        let Some(tx) = &self.tx else {
            return Err(PipelineError::Canceled);
        };
        tx.send((batch, permit))
            .await
            .map_err(|_| PipelineError::Canceled)
    }

    /// Registers a cursor that becomes safe once every batch sent so far is settled.
    fn checkpoint(&self, cursor: Value) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let after = s.last_sent;
        s.waiting.push_back((after, cursor));
        s.release();
    }

    /// Closes the queue and waits for every worker; the first error wins.
    async fn finish(mut self) -> Result<Delivered, SinkError> {
        self.tx = None;
        let mut total = Delivered::default();
        let mut first_error = None;
        for handle in self.handles.drain(..) {
            match handle.await {
                Ok(Ok(d)) => {
                    total.indexed += d.indexed;
                    total.updated += d.updated;
                    total.deleted += d.deleted;
                    total.dead_lettered += d.dead_lettered;
                }
                Ok(Err(e)) => {
                    if first_error.is_none() || matches!(first_error, Some(SinkError::Canceled)) {
                        first_error = Some(e);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(SinkError::DeadLetterQueue(
                        super::dlq::DlqError::Internal(format!("a sink worker failed: {e}")),
                    ));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_always_has_room_for_every_slot_and_one_batch_more() {
        let total = queue_permits(16 << 20, 4);
        assert_eq!(total, 16_380);
        // Small batches are charged their size in KiB: the byte bound holds.
        assert_eq!(batch_permits(1_100_000, total, 4), 1_075);
        assert_eq!(batch_permits(0, total, 4), 1);
        // A 5 MB batch takes a fifth of the queue at most: five fit, four in flight.
        let big = batch_permits(5_000_000, total, 4);
        assert_eq!(big, total / 5);
        for slots in [1usize, 2, 3, 7, 16, 128] {
            for queue_bytes in [
                0usize,
                1,
                1024,
                5 << 10,
                9 << 10,
                64 << 10,
                1 << 20,
                16 << 20,
            ] {
                let total = queue_permits(queue_bytes, slots);
                let kib = queue_bytes / PERMIT_BYTES;
                // The byte bound loses less than one KiB a batch to the rounding.
                assert!(
                    total as usize + slots >= kib,
                    "{slots} slots, {kib} KiB: {total}"
                );
                assert!(total as usize <= kib.max(slots + 1));
                // Capped batches fit exactly once for every slot and once more: the memory
                // bound (max_in_flight + 1) × batch_max_bytes holds.
                let charge = batch_permits(usize::MAX, total, slots);
                assert!(charge >= 1);
                assert_eq!(
                    (total / charge) as usize,
                    slots + 1,
                    "{slots} slots, {queue_bytes} bytes"
                );
            }
        }
        // A directly built setting past any sane bound does not panic.
        assert!(queue_permits(usize::MAX, usize::MAX) > 0);
    }

    /// A snapshot of these `(_id, stamp)` entries, as [`OpenScan::read`] builds it.
    async fn snapshot(entries: &[(String, Option<&str>)], stamped: bool) -> IndexSnapshot {
        let mut spill = IdSpill::create(None).await.unwrap();
        let mut keys = if stamped {
            SnapshotKeys::Stamped(Vec::new())
        } else {
            SnapshotKeys::Bare(Vec::new())
        };
        for (id, ts) in entries {
            spill.push(id).await.unwrap();
            match &mut keys {
                SnapshotKeys::Bare(k) => k.push(id_hash(id)),
                SnapshotKeys::Stamped(k) => {
                    k.push((id_hash(id), ts.map_or(NO_STAMP, stamp_hash)));
                }
            }
        }
        keys.sort();
        let buckets = match &keys {
            SnapshotKeys::Bare(k) => Buckets::new(k.iter().copied()),
            SnapshotKeys::Stamped(k) => Buckets::new(k.iter().map(|(key, _)| *key)),
        };
        IndexSnapshot::new(keys, buckets, spill)
    }

    /// The `_id`s the deletion pass would delete, in file order.
    async fn stale_ids(snapshot: IndexSnapshot) -> Vec<String> {
        let (stale, spill) = snapshot.into_stale();
        let mut reader = spill.into_reader().await.unwrap();
        let mut out = Vec::new();
        while let Some(id) = reader.next_id().await.unwrap() {
            if stale.contains_hash(id_hash(&id)) {
                out.push(id);
            }
        }
        out
    }

    #[tokio::test]
    async fn a_snapshot_deletes_exactly_the_documents_not_seen() {
        // The largest sees more than `UNMARKED_MAX` ids: marked in runs, not all at the end.
        for n in [1usize, 63, 64, 65, 10_000, 2 * UNMARKED_MAX] {
            let entries: Vec<(String, Option<&str>)> =
                (0..n).map(|i| (format!("doc-{i}"), None)).collect();
            let mut snapshot = snapshot(&entries, false).await;
            // Every third document is seen (some twice), plus ids the index never had.
            for i in (0..n).step_by(3) {
                assert!(!snapshot.observe(&format!("doc-{i}"), Some("t")));
                snapshot.observe(&format!("doc-{i}"), None);
            }
            for i in 0..100 {
                snapshot.observe(&format!("new-{i}"), None);
            }
            let observed = 2 * n.div_ceil(3) + 100;
            assert_eq!(snapshot.unmarked.len(), observed % UNMARKED_MAX, "{n} ids");
            let expected: Vec<String> = (0..n)
                .filter(|i| i % 3 != 0)
                .map(|i| format!("doc-{i}"))
                .collect();
            assert_eq!(stale_ids(snapshot).await, expected, "{n} ids");
        }
    }

    #[tokio::test]
    async fn a_snapshot_where_everything_was_seen_has_nothing_stale() {
        let entries: Vec<(String, Option<&str>)> =
            (0..5000).map(|i| (format!("doc-{i}"), None)).collect();
        let mut snapshot = snapshot(&entries, false).await;
        for i in 0..5000 {
            snapshot.observe(&format!("doc-{i}"), None);
        }
        let (stale, _) = snapshot.into_stale();
        assert!(stale.is_empty());
    }

    #[tokio::test]
    async fn long_ids_are_matched_by_their_bulk_id() {
        let long = "l".repeat(600);
        let entries = vec![
            (crate::engine::batch::hash_id(&long), Some("t1")),
            ("short".to_string(), Some("t2")),
        ];
        let mut snapshot = snapshot(&entries, true).await;
        assert!(
            snapshot.observe(&long, Some("t1")),
            "unchanged under its hash"
        );
        assert!(stale_ids(snapshot).await == vec!["short".to_string()]);
    }

    #[tokio::test]
    async fn a_snapshot_skips_only_unchanged_timestamps() {
        let stamps: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
        let mut entries: Vec<(String, Option<&str>)> = (0..500)
            .map(|i| (format!("doc-{i}"), Some(stamps[i].as_str())))
            .collect();
        entries.push(("no-stamp".to_string(), None));
        let mut snapshot = snapshot(&entries, true).await;
        assert!((0..500).all(|i| snapshot.observe(&format!("doc-{i}"), Some(&format!("t{i}")))));
        assert!(!snapshot.observe("doc-1", Some("t2")));
        assert!(!snapshot.observe("doc-500", Some("t500")));
        assert!(!snapshot.observe("no-stamp", Some("t1")));
        assert!(!snapshot.observe("doc-1", None));
        // Each answer came from its own lookup: nothing waits to be marked.
        assert!(snapshot.unmarked.is_empty());
        assert!(stale_ids(snapshot).await.is_empty());
        // Without stamps nothing is ever unchanged.
        let mut bare = self::snapshot(&entries, false).await;
        assert!(!bare.observe("doc-1", Some("t1")));
    }

    #[test]
    fn two_ids_sharing_a_hash_trust_neither_timestamp() {
        let mut keys = SnapshotKeys::Stamped(vec![(7, 100), (3, 5), (7, 200)]);
        keys.sort();
        let SnapshotKeys::Stamped(keys) = keys else {
            unreachable!()
        };
        assert_eq!(keys, vec![(3, 5), (7, NO_STAMP)]);
    }

    #[test]
    fn buckets_cover_the_extremes_of_the_hash_space() {
        let mut hashes: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        hashes.extend([0, 1, u64::MAX - 1, u64::MAX]);
        let set = HashSet64::new(hashes.clone());
        assert!(!set.buckets.starts.is_empty());
        for hash in &hashes {
            assert!(set.contains_hash(*hash), "hash {hash:#x}");
        }
        assert!(!set.contains_hash(2));
    }

    // A snapshot read while indexing (`SnapshotState::Loading`), from a fake scan the tests
    // hold back, fail or break on demand.

    use crate::model::{DocMeta, IdPage};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    /// How a [`FakeScan`] ends once its pages are served.
    #[derive(Clone, Copy)]
    enum ScanEnd {
        Done,
        Fail,
        Panic,
    }

    /// What a [`FakeScan`] did, for the test to check.
    #[derive(Default)]
    struct ScanLog {
        pages: AtomicUsize,
        closed: AtomicUsize,
        on_close: tokio::sync::Notify,
    }

    /// A point-in-time id scan of `pages`. Each answer (a page or the end) waits for a permit
    /// of `gate`, so the test decides how far the scan gets; one never given hangs it.
    struct FakeScan {
        pages: VecDeque<IdPage>,
        end: ScanEnd,
        gate: Arc<Semaphore>,
        log: Arc<ScanLog>,
    }

    #[async_trait::async_trait]
    impl crate::backend::IdScan for FakeScan {
        async fn next_page(&mut self) -> Result<Option<IdPage>, BackendError> {
            self.gate
                .acquire()
                .await
                .expect("the gate stays open")
                .forget();
            if let Some(page) = self.pages.pop_front() {
                self.log.pages.fetch_add(1, Ordering::SeqCst);
                return Ok(Some(page));
            }
            match self.end {
                ScanEnd::Done => Ok(None),
                ScanEnd::Fail => Err(BackendError::Rejected {
                    status: 500,
                    kind: "search_phase_execution_exception".to_string(),
                    reason: "all shards failed".to_string(),
                }),
                ScanEnd::Panic => panic!("the fake id scan breaks"),
            }
        }

        async fn close(&mut self) -> Result<(), BackendError> {
            self.log.closed.fetch_add(1, Ordering::SeqCst);
            self.log.on_close.notify_one();
            Ok(())
        }

        fn is_point_in_time(&self) -> bool {
            true
        }
    }

    /// Enough permits for every answer of a scan.
    const OPEN: usize = 1 << 16;

    /// A snapshot loading in its own task from a fake scan of `doc-0` … `doc-{n-1}` (pages
    /// of 10, index `idx`), noting at most `early_max` ids before it waits; the gate starts
    /// closed.
    struct Loading {
        state: SnapshotState,
        gate: Arc<Semaphore>,
        log: Arc<ScanLog>,
        cancel: CancellationToken,
        progress: Arc<Progress>,
    }

    fn loading(n: usize, end: ScanEnd, early_max: usize) -> Loading {
        let metas: Vec<DocMeta> = (0..n)
            .map(|i| DocMeta {
                id: format!("doc-{i}"),
                timestamp: None,
                stored_id: None,
            })
            .collect();
        let gate = Arc::new(Semaphore::new(0));
        let log = Arc::new(ScanLog::default());
        let scan = FakeScan {
            pages: metas
                .chunks(10)
                .map(|chunk| chunk.iter().cloned().collect())
                .collect(),
            end,
            gate: gate.clone(),
            log: log.clone(),
        };
        let progress = Arc::new(Progress::new("j", "c", "idx"));
        let open = OpenScan {
            scan: Box::new(scan),
            index: "idx".to_string(),
            with_stamps: false,
            capacity: n,
            spill_dir: None,
            progress: Some(progress.clone()),
        };
        let cancel = CancellationToken::new();
        let state = SnapshotState::spawn(open, &cancel, early_max);
        Loading {
            state,
            gate,
            log,
            cancel,
            progress,
        }
    }

    /// Polls `fut` once, with a waker nobody uses: whether it ends without waiting.
    fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// `fut`, which must end well within a generous bound: a hang fails the test.
    async fn within<F: Future>(what: &str, fut: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(60), fut)
            .await
            .unwrap_or_else(|_| panic!("{what} never ended"))
    }

    /// The scan's failure, as the pipeline reports it.
    fn assert_scan_error(result: Result<impl std::fmt::Debug, PipelineError>, expected: &str) {
        match result {
            Err(PipelineError::Scan { index, source }) => {
                assert_eq!(index, "idx");
                assert!(source.to_string().contains(expected), "{source}");
            }
            other => panic!("expected the scan's error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn past_the_cap_the_extractor_waits_for_the_scan_then_marks_every_noted_id() {
        let Loading {
            mut state,
            gate,
            log,
            progress,
            ..
        } = loading(30, ScanEnd::Done, 10);
        // While the scan is held, ids up to the cap are noted at once (two the index never
        // had among them).
        let noted = (0..8)
            .map(|i| format!("doc-{i}"))
            .chain(["new-1".to_string(), "new-2".to_string()]);
        for id in noted {
            let observe = std::pin::pin!(state.observe(&id, None));
            assert!(
                matches!(poll_once(observe), Poll::Ready(Ok(false))),
                "{id} is noted without waiting"
            );
        }
        // The eleventh waits for the scan, however long it takes.
        {
            let mut observe = std::pin::pin!(state.observe("doc-8", None));
            assert!(
                poll_once(observe.as_mut()).is_pending(),
                "past the cap, a document waits for the scan"
            );
            assert_eq!(log.pages.load(Ordering::SeqCst), 0);
            gate.add_permits(OPEN);
            assert!(!within("the wait for the scan", observe).await.unwrap());
        }
        assert!(matches!(state, SnapshotState::Ready(_)));
        assert_eq!(log.pages.load(Ordering::SeqCst), 3);
        // Every id read is activity for the stall watchdog.
        assert_eq!(progress.activity(), 30);
        assert_eq!(log.closed.load(Ordering::SeqCst), 1, "the scan is closed");
        for i in 9..15 {
            assert!(!state.observe(&format!("doc-{i}"), None).await.unwrap());
        }
        let snapshot = state.finish().await.unwrap().expect("a snapshot");
        // Every id noted while the scan was held counts as seen: only the unsent ones go.
        let expected: Vec<String> = (15..30).map(|i| format!("doc-{i}")).collect();
        assert_eq!(stale_ids(snapshot).await, expected);
    }

    #[tokio::test]
    async fn a_scan_failing_while_documents_are_still_sent_fails_the_sync() {
        // No cap in reach: only the scan's end makes a document look at it.
        let Loading {
            mut state,
            gate,
            log,
            ..
        } = loading(30, ScanEnd::Fail, usize::MAX);
        for i in 0..5 {
            assert!(!state.observe(&format!("doc-{i}"), None).await.unwrap());
        }
        // Two pages come, then the failure.
        gate.add_permits(OPEN);
        within("closing the failed scan", log.on_close.notified()).await;
        let failed = within("the failure reaching the extractor", async {
            let mut i = 5u64;
            loop {
                match state.observe(&format!("doc-{i}"), None).await {
                    Ok(false) => tokio::task::yield_now().await,
                    other => break other,
                }
                i += 1;
            }
        })
        .await;
        // An error, not a snapshot: the pipeline stops on it, before any deletion.
        assert_scan_error(failed, "all shards failed");
        assert_eq!(log.closed.load(Ordering::SeqCst), 1);
        // Asked again (its task cannot be awaited twice), it says the same, never "nothing
        // to delete" and never a panic.
        assert_scan_error(state.observe("doc-late", None).await, "all shards failed");
        assert_scan_error(state.finish().await.map(|_| false), "all shards failed");
    }

    #[tokio::test]
    async fn a_scan_failing_after_the_last_document_fails_the_sync() {
        let Loading {
            mut state,
            gate,
            log,
            ..
        } = loading(30, ScanEnd::Fail, 10);
        for i in 0..5 {
            assert!(!state.observe(&format!("doc-{i}"), None).await.unwrap());
        }
        gate.add_permits(OPEN);
        let finished = within("the end of the scan", state.finish()).await;
        assert_scan_error(finished.map(|s| s.is_some()), "all shards failed");
        assert_eq!(log.pages.load(Ordering::SeqCst), 3);
        assert_eq!(log.closed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_scan_fails_the_sync_instead_of_hanging_it() {
        // Seen by the last step…
        let Loading {
            mut state, gate, ..
        } = loading(30, ScanEnd::Panic, 10);
        assert!(!state.observe("doc-0", None).await.unwrap());
        gate.add_permits(OPEN);
        let finished = within("the end of a broken scan", state.finish()).await;
        assert_scan_error(finished.map(|s| s.is_some()), "panic");
        // …and by a document past the cap.
        let Loading {
            mut state, gate, ..
        } = loading(30, ScanEnd::Panic, 2);
        for id in ["doc-0", "doc-1"] {
            assert!(!state.observe(id, None).await.unwrap());
        }
        gate.add_permits(OPEN);
        let observed = within(
            "a document waiting for a broken scan",
            state.observe("doc-2", None),
        )
        .await;
        assert_scan_error(observed, "panic");
    }

    #[tokio::test]
    async fn a_cancel_stops_a_loading_scan_and_closes_it() {
        let Loading {
            mut state,
            gate,
            log,
            cancel,
            ..
        } = loading(30, ScanEnd::Done, 10);
        // One page comes, the next never does.
        gate.add_permits(1);
        assert!(!state.observe("doc-0", None).await.unwrap());
        cancel.cancel();
        within("closing the canceled scan", log.on_close.notified()).await;
        let finished = within("the end of a canceled scan", state.finish()).await;
        assert!(
            matches!(finished, Err(PipelineError::Canceled)),
            "{:?}",
            finished.map(|s| s.is_some())
        );
        assert_eq!(log.closed.load(Ordering::SeqCst), 1);

        // A sync that ends without waiting for the scan (another failure) stops it too.
        let Loading { state, log, .. } = loading(30, ScanEnd::Done, 10);
        drop(state);
        within("closing the abandoned scan", log.on_close.notified()).await;
        assert_eq!(log.closed.load(Ordering::SeqCst), 1);
        assert_eq!(log.pages.load(Ordering::SeqCst), 0);
    }
}
