//! One sync's data path: source → extractor (sync rules, unchanged-document skip when asked, lazy
//! content, serialisation into bulk bodies) → a queue bounded in bytes → N sink workers.
//! A full sync then deletes the documents the source no longer has, streaming the index's ids
//! (`_id`s only) page by page. Checkpoints from the source are released only once every item sent before
//! them is settled. Memory stays flat whatever the size of the source: the only per-document
//! state kept for the whole sync is one 64-bit hash of each id seen.

use super::batch::{Batch, BatchBuilder, BatchLimits, bulk_id};
use super::dlq::{DeadLetterStore, NewDeadLetter};
use super::filtering::RuleEngine;
use super::progress::{BatchTally, DocOutcome, Outcome, Phase, Progress};
use super::sink::{Delivered, Sink, SinkError};
use crate::backend::{BackendError, DocMeta, DocumentStore};
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
    let existing = if full && settings.skip_unchanged {
        parts.progress.set_step("scanning the index's ids");
        // The id scan of a large index takes a while: a cancel must not wait for it.
        tokio::select! {
            loaded = ExistingDocs::load(parts.store.as_ref(), &index) => Some(loaded?),
            _ = cancel.cancelled() => return Err(PipelineError::Canceled),
        }
    } else {
        None
    };

    let work = cancel.child_token();
    // A short channel: documents are freed soon after they are made, so the allocator serves
    // them from its per-thread cache (1024 in flight pushed them to its slow path).
    let (item_tx, mut item_rx) = ItemSender::channel(16);
    let source_cancel = work.clone();
    let mode = settings.mode.clone();
    // The source runs in this task, beside the extractor, not in a task of its own: each
    // document is then allocated and freed on one thread, which keeps the allocator's
    // per-thread caches warm and memory flat. A panicking source fails the sync, as a
    // panicking task did.
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
    let mut seen = SeenIds::default();
    let mut skipped = 0u64;
    let mut seen_count = 0u64;
    let mut unreadable = 0u64;
    let linger = settings.engine.batch_linger;

    let extract = async {
        let extracted = async {
            loop {
                let item = match builder.pending_since() {
                    Some(since) => {
                        let deadline = tokio::time::Instant::from_std(since + linger);
                        match tokio::time::timeout_at(deadline, item_rx.recv()).await {
                            Ok(item) => item,
                            Err(_) => {
                                if let Some(batch) = builder.flush() {
                                    workers.send(batch).await?;
                                }
                                continue;
                            }
                        }
                    }
                    None => item_rx.recv().await,
                };
                let Some(item) = item else { break };
                match item {
                    SourceItem::Upsert(doc) => {
                        seen_count += 1;
                        parts.progress.add_seen(1);
                        if let Some(batch) = upsert(
                            doc,
                            &settings,
                            existing.as_ref(),
                            &mut seen,
                            &mut skipped,
                            &mut builder,
                            &parts.progress,
                        )
                        .await
                        {
                            workers.send(batch).await?;
                        }
                    }
                    SourceItem::Update(mut doc) => {
                        super::transform::apply(settings.transform.as_ref(), &mut doc.fields);
                        seen_count += 1;
                        parts.progress.add_seen(1);
                        seen.insert(&bulk_id(&doc.id));
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
    if full && deletions_skipped.is_none() {
        parts.progress.set_phase(Phase::Deleting);
        let deleted = delete_unseen(
            &parts,
            &settings,
            seen.finish(),
            &index,
            cancel.child_token(),
        )
        .await?;
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
    existing: Option<&ExistingDocs>,
    seen: &mut SeenIds,
    skipped: &mut u64,
    builder: &mut BatchBuilder,
    progress: &Progress,
) -> Option<Batch> {
    if let Some(rules) = &settings.rules
        && !rules.should_index(&doc.fields)
    {
        // Excluded documents are not "seen": a full sync removes them from the index.
        *skipped += 1;
        progress.skip(&doc.id, "excluded by sync rules").await;
        return None;
    }
    seen.insert(&bulk_id(&doc.id));
    if let (Some(existing), Some(ts)) = (existing, doc.timestamp.as_deref())
        && existing.unchanged(&doc.id, ts)
    {
        *skipped += 1;
        progress
            .skip(&doc.id, "unchanged since the last sync")
            .await;
        return None;
    }
    if let Some(fetch) = doc.content.take() {
        match fetch().await {
            Ok(content) => doc.fields.extend(content),
            Err(e) => {
                // Indexed without its content, the reason on the document: nothing is lost.
                doc.fields.insert(
                    "_extraction_error".to_string(),
                    Value::String(e.to_string()),
                );
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
    builder.push_index(doc.id, doc.timestamp.as_deref(), &mut doc.fields)
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

/// Full sync, last step: delete every indexed id the source did not send, streaming ids.
async fn delete_unseen(
    parts: &PipelineParts,
    settings: &PipelineSettings,
    seen: SeenIds,
    index: &str,
    cancel: CancellationToken,
) -> Result<Delivered, PipelineError> {
    let scan_error = |source| PipelineError::Scan {
        index: index.to_string(),
        source,
    };
    if !parts.store.index_exists(index).await.map_err(scan_error)? {
        return Ok(Delivered::default());
    }
    let workers = Workers::start(parts, &settings.engine, cancel.clone());
    let limits = BatchLimits {
        max_docs: settings.engine.batch_max_docs,
        max_bytes: settings.engine.batch_max_bytes,
    };
    let mut builder = BatchBuilder::new(limits, None);
    let mut scan = parts
        .store
        .scan_bare_ids(index, 1000)
        .await
        .map_err(scan_error)?;
    let scanned = async {
        loop {
            let page = tokio::select! {
                page = scan.next_page() => page.map_err(scan_error)?,
                _ = cancel.cancelled() => return Err(PipelineError::Canceled),
            };
            let Some(page) = page else { break };
            for meta in seen.unseen(page) {
                if let Some(batch) = builder.push_delete(meta.id) {
                    workers.send(batch).await?;
                }
            }
        }
        if let Some(batch) = builder.flush() {
            workers.send(batch).await?;
        }
        Ok::<(), PipelineError>(())
    }
    .await;
    if let Err(e) = scan.close().await {
        tracing::warn!(error = %e, index, "closing the id scan failed");
    }
    let delivered = workers.finish().await?;
    scanned?;
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

/// Hashes of the ids a sync saw, in their `_id` form ([`bulk_id`]): 8 bytes a document,
/// sorted once at the end. The deletion pass then reads `_id`s alone, so the cluster loads
/// no document source. A collision can only keep a stale document (never delete a live one).
#[derive(Default)]
struct SeenIds {
    hashes: Vec<u64>,
    buckets: Buckets,
    sorted: bool,
}

impl SeenIds {
    fn insert(&mut self, id: &str) {
        self.hashes.push(id_hash(id));
        self.sorted = false;
    }

    fn finish(mut self) -> Self {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        self.buckets = Buckets::new(self.hashes.iter().copied());
        self.sorted = true;
        self
    }

    #[cfg(test)]
    fn contains(&self, id: &str) -> bool {
        self.contains_hash(id_hash(id))
    }

    fn contains_hash(&self, hash: u64) -> bool {
        debug_assert!(self.sorted);
        let range = self.buckets.range(hash, self.hashes.len());
        self.hashes
            .get(range)
            .is_some_and(|near| near.binary_search(&hash).is_ok())
    }

    /// The documents of a scanned page this sync did not see. The whole page is hashed
    /// before any lookup, so the lookups' cache misses overlap instead of queueing.
    fn unseen(&self, page: Vec<DocMeta>) -> Vec<DocMeta> {
        let hashes: Vec<u64> = page.iter().map(|meta| id_hash(&meta.id)).collect();
        let seen: Vec<bool> = hashes
            .iter()
            .map(|hash| self.contains_hash(*hash))
            .collect();
        page.into_iter()
            .zip(seen)
            .filter_map(|(meta, seen)| (!seen).then_some(meta))
            .collect()
    }
}

/// What the index held before a full sync: id hash → `_timestamp` hash, to skip documents
/// that did not change (and their content fetch).
struct ExistingDocs {
    entries: Vec<(u64, u64)>,
    buckets: Buckets,
}

impl ExistingDocs {
    async fn load(store: &dyn DocumentStore, index: &str) -> Result<Self, PipelineError> {
        let scan_error = |source| PipelineError::Scan {
            index: index.to_string(),
            source,
        };
        let mut entries = Vec::new();
        if !store.index_exists(index).await.map_err(scan_error)? {
            return Ok(Self {
                entries,
                buckets: Buckets::default(),
            });
        }
        let mut scan = store.scan_ids(index, 1000).await.map_err(scan_error)?;
        let result = async {
            while let Some(page) = scan.next_page().await.map_err(scan_error)? {
                for meta in page {
                    // Only a document stored under the `_id` this sync would give it can be
                    // skipped as unchanged: the deletion pass compares `_id`s, and would
                    // otherwise delete a document this pass left alone.
                    let ours = meta
                        .stored_id
                        .as_deref()
                        .is_none_or(|stored| stored == bulk_id(&meta.id));
                    if let (true, Some(ts)) = (ours, meta.timestamp) {
                        entries.push((id_hash(&meta.id), id_hash(&ts)));
                    }
                }
            }
            Ok::<(), PipelineError>(())
        }
        .await;
        if let Err(e) = scan.close().await {
            tracing::warn!(error = %e, index, "closing the id scan failed");
        }
        result?;
        entries.sort_unstable();
        let buckets = Buckets::new(entries.iter().map(|(id, _)| *id));
        Ok(Self { entries, buckets })
    }

    fn unchanged(&self, id: &str, timestamp: &str) -> bool {
        let key = id_hash(id);
        let Some(near) = self
            .entries
            .get(self.buckets.range(key, self.entries.len()))
        else {
            return false;
        };
        match near.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => near.get(i).is_some_and(|(_, ts)| *ts == id_hash(timestamp)),
            Err(_) => false,
        }
    }
}

/// N sink workers fed through a queue bounded in bytes.
struct Workers {
    tx: Option<mpsc::Sender<(Batch, tokio::sync::OwnedSemaphorePermit)>>,
    handles: Vec<tokio::task::JoinHandle<Result<Delivered, SinkError>>>,
    bytes: Arc<Semaphore>,
    total_permits: u32,
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

impl Workers {
    fn start(parts: &PipelineParts, engine: &EngineSettings, cancel: CancellationToken) -> Self {
        // More deliveries than request slots: a batch waiting out a backoff holds no slot.
        parts.sink.configure(engine);
        let n = super::sink::deliveries_for(engine.max_in_flight);
        let total_permits =
            (engine.queue_max_bytes / PERMIT_BYTES).clamp(1, u32::MAX as usize >> 4) as u32;
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
            state,
            progress: parts.progress.clone(),
        }
    }

    /// Queues a batch, waiting while the queue holds its byte bound (backpressure).
    async fn send(&self, batch: Batch) -> Result<(), PipelineError> {
        let kib = (batch.body.len() / PERMIT_BYTES + 1).min(self.total_permits as usize) as u32;
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
    fn seen_ids_find_every_id_seen_and_no_other() {
        for n in [0usize, 1, 63, 64, 65, 10_000] {
            let mut seen = SeenIds::default();
            for i in 0..n {
                seen.insert(&format!("doc-{i}"));
                // Duplicates are harmless.
                seen.insert(&format!("doc-{i}"));
            }
            let seen = seen.finish();
            assert!(
                (0..n).all(|i| seen.contains(&format!("doc-{i}"))),
                "{n} ids"
            );
            assert!(
                !(0..1000).any(|i| seen.contains(&format!("other-{i}"))),
                "{n} ids"
            );
            // Page order is kept; only ids not seen come back.
            let scanned = [3usize, 70_000, 5, 80_000];
            let page = scanned
                .map(|i| DocMeta {
                    id: format!("doc-{i}"),
                    timestamp: None,
                    stored_id: None,
                })
                .to_vec();
            let unseen: Vec<String> = seen.unseen(page).into_iter().map(|m| m.id).collect();
            let expected: Vec<String> = scanned
                .iter()
                .filter(|i| **i >= n)
                .map(|i| format!("doc-{i}"))
                .collect();
            assert_eq!(unseen, expected, "{n} ids");
        }
    }

    #[test]
    fn buckets_cover_the_extremes_of_the_hash_space() {
        let mut hashes: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        hashes.extend([0, 1, u64::MAX - 1, u64::MAX]);
        hashes.sort_unstable();
        hashes.dedup();
        let buckets = Buckets::new(hashes.iter().copied());
        assert!(!buckets.starts.is_empty());
        for (i, hash) in hashes.iter().enumerate() {
            assert!(
                buckets.range(*hash, hashes.len()).contains(&i),
                "hash {hash:#x}"
            );
        }
    }

    #[test]
    fn existing_docs_skip_only_unchanged_timestamps() {
        let mut entries: Vec<(u64, u64)> = (0..500)
            .map(|i| (id_hash(&format!("doc-{i}")), id_hash(&format!("t{i}"))))
            .collect();
        entries.sort_unstable();
        let buckets = Buckets::new(entries.iter().map(|(id, _)| *id));
        let existing = ExistingDocs { entries, buckets };
        assert!((0..500).all(|i| existing.unchanged(&format!("doc-{i}"), &format!("t{i}"))));
        assert!(!existing.unchanged("doc-1", "t2"));
        assert!(!existing.unchanged("doc-500", "t500"));
    }
}
