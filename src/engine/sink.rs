//! The bulk sink: sends [`Batch`]es to a [`DocumentStore`] and sees every item through to an
//! end — indexed, or dead-lettered with its reason and committed to disk before it counts as
//! handled. Whole-request failures (unreachable, 5xx, 429, timeouts) go through the circuit
//! breaker and are retried after the request's own backoff (one iterator per request, kept
//! across its attempts); item failures are retried when transient, and dead-lettered when
//! permanent (mapping errors, invalid ids) or exhausted. Never retries forever.
//!
//! Items to retry do not stall their batch. An item refused with 429 (back-pressure) or a
//! transient item error goes into the sink-wide [`RetryQueue`] with a short per-item delay,
//! and from there rides along in a later request: a fresh batch with room to spare, or a
//! retry batch of due items of any batch, sent by whichever delivery wakes first. Nothing
//! waits while holding a request slot: the [`InFlightLimit`] is held only while a request
//! is on the wire, so requests keep flowing while rejected items wait. The effective
//! concurrency adapts: answers with 429s shrink the number of slots, clean answers grow it
//! back. That, not the per-item delay, is what relieves an overloaded cluster: a retry never
//! adds a request beyond the slots.
//!
//! Item 429s are retried for as long as `item_retry_budget` allows (a time, not a count), and
//! never count toward the error monitor; other transient item errors (5xx, a missing item)
//! keep a count, `item_max_retries`. A delivery ([`Sink::deliver`]) returns once every item
//! of its batch is settled, whichever request settled it, with the counts of its own items:
//! the pipeline's checkpoints and per-document accounting stay exact.

use super::batch::{Batch, BatchItem};
use super::breaker::{BreakerError, InFlightLimit, SharedBreaker};
use super::dlq::{DeadLetterStore, DlqError, NewDeadLetter};
use super::monitor::{ErrorMonitor, MonitorTripped};
use super::progress::{BatchTally, DocOutcome, Outcome, Progress};
use crate::backend::{BackendError, BulkItem, BulkOp, BulkRequest, DocumentStore};
use backon::{BackoffBuilder, ExponentialBackoff};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where a sink writes and how hard it tries.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub connector_id: String,
    pub job_id: String,
    pub index: String,
    pub pipeline: Option<String>,
    /// Retries of one item (5xx, a missing item) before it is dead-lettered; 429s have a time
    /// budget instead.
    pub item_max_retries: u32,
    /// Sends of one request that failed as a whole (outside breaker probes) before its items
    /// are dead-lettered.
    pub request_max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
}

/// Why a sink stopped. Every item of the failing batch is in the dead-letter queue by then,
/// except with [`SinkError::DeadLetterQueue`], which names how many could not be stored.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("{0}")]
    BreakerOpenTooLong(String),
    #[error("dead-letter queue: {0}")]
    DeadLetterQueue(#[from] DlqError),
    #[error("{0}")]
    TooManyErrors(#[from] MonitorTripped),
    #[error("the cluster refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the sync was canceled")]
    Canceled,
    /// Items were dropped unsettled without a cancellation: a bug, said rather than hidden.
    #[error("{0} item(s) were neither indexed nor dead-lettered")]
    Lost(usize),
}

/// What became of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub indexed: u64,
    pub updated: u64,
    pub deleted: u64,
    pub dead_lettered: u64,
}

impl Delivered {
    fn add(&mut self, other: &Delivered) {
        self.indexed += other.indexed;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.dead_lettered += other.dead_lettered;
    }
}

/// An item that could not be indexed, for callers that handle failures themselves (retries
/// of existing dead letters).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedItem {
    pub id: String,
    pub error_type: String,
    pub reason: String,
    pub status: Option<u16>,
}

/// What to do with items that finally fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Append them to the dead-letter queue (a sync).
    DeadLetter,
    /// Return them to the caller (retrying dead letters: they are already stored).
    Report,
}

/// How many documents and bytes one request may carry (the engine's batch limits): a fresh
/// batch takes due retries along only as far as these allow.
#[derive(Debug, Clone, Copy)]
struct RequestLimits {
    max_docs: usize,
    max_bytes: usize,
}

pub struct Sink {
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    breaker: SharedBreaker,
    progress: Arc<Progress>,
    monitor: Mutex<ErrorMonitor>,
    settings: SinkSettings,
    /// Why the sync was given up, once it was (see [`Sink::abort`]).
    aborted: Mutex<Option<String>>,
    /// Request slots, shared by every delivery of this sink.
    slots: InFlightLimit,
    /// How long a 429-refused item keeps being retried.
    item_retry_budget: Mutex<Duration>,
    limits: Mutex<RequestLimits>,
    /// Items waiting to be sent again.
    queue: RetryQueue,
    /// Resolves the index's open dead letters as their documents get written.
    resolver: super::dlq::Resolver,
}

/// How many deliveries the pipeline runs for `max_in_flight` request slots: a delivery whose
/// items wait in the retry queue holds no slot, so more deliveries than slots keep every
/// slot busy meanwhile. Memory stays bounded by the queue in front of them, which holds a
/// batch's permits (its bytes, or its share of the queue when bigger) until it is settled.
pub fn deliveries_for(max_in_flight: usize) -> usize {
    max_in_flight.max(1).saturating_mul(16)
}

enum Classified {
    /// Try the same items again (after the breaker allows it).
    Retry(String),
    /// Every item fails for this reason.
    FailAll {
        error_type: String,
        reason: String,
        status: Option<u16>,
    },
    Fatal(SinkError),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One delivery's share of the sink: its items not settled yet, and what became of the
/// others. Any request may settle its items; the delivery waits for the count to reach zero.
struct Owner {
    on_failure: OnFailure,
    state: Mutex<OwnerState>,
    /// Woken whenever one of its items is settled (or lost).
    changed: Notify,
}

#[derive(Default)]
struct OwnerState {
    unsettled: usize,
    delivered: Delivered,
    failed: Vec<FailedItem>,
    /// Items dropped unsettled (a request abandoned by a cancellation).
    lost: usize,
}

impl Owner {
    fn new(on_failure: OnFailure, items: usize) -> Arc<Self> {
        Arc::new(Self {
            on_failure,
            state: Mutex::new(OwnerState {
                unsettled: items,
                ..OwnerState::default()
            }),
            changed: Notify::new(),
        })
    }

    /// Counts `settled` items as settled, with these outcomes and failures.
    fn settle(&self, settled: usize, delivered: &Delivered, failed: Vec<FailedItem>) {
        {
            let mut s = lock(&self.state);
            s.unsettled = s.unsettled.saturating_sub(settled);
            s.delivered.add(delivered);
            s.failed.extend(failed);
        }
        self.changed.notify_waiters();
    }

    fn lose(&self) {
        {
            let mut s = lock(&self.state);
            s.unsettled = s.unsettled.saturating_sub(1);
            s.lost += 1;
        }
        self.changed.notify_waiters();
    }

    fn unsettled(&self) -> usize {
        lock(&self.state).unsettled
    }

    fn take(&self) -> (Delivered, Vec<FailedItem>, usize) {
        let mut s = lock(&self.state);
        (s.delivered, std::mem::take(&mut s.failed), s.lost)
    }
}

/// One item on its way: its lines of a bulk body and the delivery it belongs to. Dropped
/// before it was settled (a request abandoned by a cancellation), it tells its owner.
struct Rider {
    owner: Arc<Owner>,
    /// Offsets relative to `lines`.
    item: BatchItem,
    /// The item's action and source lines.
    lines: Bytes,
    settled: bool,
}

impl Rider {
    /// The items of a batch, each with its lines of the batch's body.
    fn of_batch(batch: Batch, owner: &Arc<Owner>) -> Vec<Rider> {
        let body = batch.body;
        batch
            .items
            .into_iter()
            .map(|item| {
                let start = item.start.min(body.len());
                let end = item.end.clamp(start, body.len());
                let lines = body.slice(start..end);
                Rider {
                    owner: Arc::clone(owner),
                    item: BatchItem {
                        start: 0,
                        source_start: item.source_start.saturating_sub(start),
                        end: end - start,
                        ..item
                    },
                    lines,
                    settled: false,
                }
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    /// The JSON source (without its newline), for the dead-letter queue.
    fn source(&self) -> &[u8] {
        let end = self.item.end.saturating_sub(1).max(self.item.source_start);
        self.lines
            .get(self.item.source_start..end)
            .unwrap_or_default()
    }

    fn document_text(&self) -> String {
        let source = self.source();
        if source.is_empty() {
            "null".to_string()
        } else {
            String::from_utf8_lossy(source).into_owned()
        }
    }

    /// Marks the rider settled (its owner is told by the caller) and returns its owner.
    fn finish(mut self) -> Arc<Owner> {
        self.settled = true;
        Arc::clone(&self.owner)
    }
}

impl Drop for Rider {
    fn drop(&mut self) {
        if !self.settled {
            self.owner.lose();
        }
    }
}

/// The items of one request and its body.
struct Outgoing {
    body: Bytes,
    riders: Vec<Rider>,
}

impl Outgoing {
    /// A fresh batch as it was built (no copy), with `extra` riders appended when given.
    fn new(body: Bytes, riders: Vec<Rider>, extra: Vec<Rider>) -> Self {
        if extra.is_empty() {
            return Self { body, riders };
        }
        let size = body.len() + extra.iter().map(Rider::len).sum::<usize>();
        let mut joined = BytesMut::with_capacity(size);
        joined.extend_from_slice(&body);
        for rider in &extra {
            joined.extend_from_slice(&rider.lines);
        }
        let mut riders = riders;
        riders.extend(extra);
        Self {
            body: joined.freeze(),
            riders,
        }
    }

    /// A request of riders alone (a retry batch).
    fn of(riders: Vec<Rider>) -> Self {
        Self::new(Bytes::new(), Vec::new(), riders)
    }
}

/// The items waiting to be sent again, by when they are due. Every delivery with unsettled
/// items wakes when the earliest is due, and the first takes what is due (oldest first, up
/// to the request limits) into a retry batch; fresh batches take due items along when they
/// have room.
struct RetryQueue {
    waiting: Mutex<BTreeMap<(Instant, u64), Rider>>,
    next: std::sync::atomic::AtomicU64,
    /// Woken when an item is queued.
    queued: Notify,
}

impl RetryQueue {
    fn new() -> Self {
        Self {
            waiting: Mutex::new(BTreeMap::new()),
            next: std::sync::atomic::AtomicU64::new(0),
            queued: Notify::new(),
        }
    }

    fn push(&self, due: Instant, rider: Rider) {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.waiting).insert((due, n), rider);
    }

    fn wake(&self) {
        self.queued.notify_waiters();
    }

    /// When the earliest item is due.
    fn next_due(&self) -> Option<Instant> {
        lock(&self.waiting).keys().next().map(|(due, _)| *due)
    }

    /// Due items, oldest first, up to `docs` items and `bytes` bytes (at least one item when
    /// `at_least_one`).
    fn take_due(&self, now: Instant, docs: usize, bytes: usize, at_least_one: bool) -> Vec<Rider> {
        let mut waiting = lock(&self.waiting);
        let mut out = Vec::new();
        let mut size = 0usize;
        while out.len() < docs {
            let Some(entry) = waiting.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let len = entry.get().len();
            if size + len > bytes && !(at_least_one && out.is_empty()) {
                break;
            }
            size += len;
            out.push(entry.remove());
        }
        out
    }

    /// Every waiting item of this owner (its delivery stops).
    fn take_owned(&self, owner: &Arc<Owner>) -> Vec<Rider> {
        let mut waiting = lock(&self.waiting);
        let keys: Vec<(Instant, u64)> = waiting
            .iter()
            .filter(|(_, rider)| Arc::ptr_eq(&rider.owner, owner))
            .map(|(key, _)| *key)
            .collect();
        keys.iter().filter_map(|key| waiting.remove(key)).collect()
    }
}

/// How long an item waits before it is sent again after its `attempts`-th failure: about one
/// round trip of the request that refused it (bounded by `base`), half again as long after
/// each further failure, at most `max`, with jitter so that refused items spread out. Short
/// on purpose: the in-flight limit, not this delay, keeps an overloaded cluster from more
/// requests; the delay only lets a round of requests pass before the item comes back.
fn item_delay(attempts: u32, round_trip: Duration, base: Duration, max: Duration) -> Duration {
    let first = round_trip.clamp(Duration::from_millis(1), base.max(Duration::from_millis(1)));
    let grown = first.as_secs_f64() * 1.5f64.powi(attempts.saturating_sub(1).min(64) as i32);
    let capped = grown.min(max.as_secs_f64().max(first.as_secs_f64()));
    Duration::from_secs_f64(capped * rand::random_range(0.5..=1.0))
}

/// What one answered request left to do, per owner.
#[derive(Default)]
struct Credits {
    owners: Vec<(Arc<Owner>, usize, Delivered)>,
}

impl Credits {
    /// Credits a settled rider's owner. Called per item: the owner is borrowed and cloned
    /// only the first time it appears, and the latest owner is looked at first (a request's
    /// items come in runs of one delivery's).
    fn add(&mut self, rider: &mut Rider, delivered: Delivered) {
        rider.settled = true;
        let owner = &rider.owner;
        match self
            .owners
            .iter_mut()
            .rev()
            .find(|(o, _, _)| Arc::ptr_eq(o, owner))
        {
            Some((_, settled, d)) => {
                *settled += 1;
                d.add(&delivered);
            }
            None => self.owners.push((Arc::clone(owner), 1, delivered)),
        }
    }

    fn apply(self) {
        for (owner, settled, delivered) in self.owners {
            owner.settle(settled, &delivered, Vec::new());
        }
    }
}

impl Sink {
    pub fn new(
        store: Arc<dyn DocumentStore>,
        dlq: Arc<DeadLetterStore>,
        breaker: SharedBreaker,
        progress: Arc<Progress>,
        monitor: ErrorMonitor,
        settings: SinkSettings,
    ) -> Self {
        let engine = crate::config::EngineSettings::default();
        Self {
            resolver: super::dlq::Resolver::new(
                dlq.clone(),
                &settings.connector_id,
                &settings.index,
                &settings.job_id,
            ),
            store,
            dlq,
            breaker,
            progress,
            monitor: Mutex::new(monitor),
            settings,
            aborted: Mutex::new(None),
            slots: InFlightLimit::new(engine.max_in_flight),
            item_retry_budget: Mutex::new(crate::config::DEFAULT_ITEM_RETRY_BUDGET),
            limits: Mutex::new(RequestLimits {
                max_docs: engine.batch_max_docs,
                max_bytes: engine.batch_max_bytes,
            }),
            queue: RetryQueue::new(),
        }
    }

    /// Applies the engine settings that size the sink: `max_in_flight` request slots, the
    /// `item_retry_budget` of 429-refused items, and the batch limits a request keeps to.
    /// Until called, the defaults apply.
    pub fn configure(&self, engine: &crate::config::EngineSettings) {
        self.slots.set_max(engine.max_in_flight);
        *lock(&self.item_retry_budget) = engine.item_retry_budget;
        *lock(&self.limits) = RequestLimits {
            max_docs: engine.batch_max_docs.max(1),
            max_bytes: engine.batch_max_bytes.max(1),
        };
    }

    /// The request slots, for progress and tests.
    pub fn in_flight_limit(&self) -> &InFlightLimit {
        &self.slots
    }

    fn retry_budget(&self) -> Duration {
        *lock(&self.item_retry_budget)
    }

    /// One request's backoff after whole-request failures: exponential from `retry_base` to
    /// `retry_max`, with jitter, endless (the callers bound the attempts).
    fn backoff(&self) -> ExponentialBackoff {
        batch_backoff(self.settings.retry_base, self.settings.retry_max)
    }

    /// Gives up on the sync: from now on, a delivery stopped by the cancellation token
    /// dead-letters its unsettled items (with this reason) instead of dropping them, and items
    /// are no longer queued for retries, so nothing the source sent is lost when one worker's
    /// error ends the job. The first reason wins.
    pub fn abort(&self, reason: String) {
        lock(&self.aborted).get_or_insert(reason);
    }

    fn abort_reason(&self) -> Option<String> {
        lock(&self.aborted).clone()
    }

    pub fn breaker(&self) -> &SharedBreaker {
        &self.breaker
    }

    pub fn settings(&self) -> &SinkSettings {
        &self.settings
    }

    /// Sends a batch until every item is settled. Items that fail end in the dead-letter
    /// queue (committed) before this returns.
    pub async fn deliver(
        &self,
        batch: Batch,
        cancel: &CancellationToken,
    ) -> Result<Delivered, SinkError> {
        let (delivered, _) = self
            .deliver_with(batch, cancel, OnFailure::DeadLetter)
            .await?;
        Ok(delivered)
    }

    /// Like [`Sink::deliver`], with a choice of what happens to failed items.
    pub async fn deliver_with(
        &self,
        batch: Batch,
        cancel: &CancellationToken,
        on_failure: OnFailure,
    ) -> Result<(Delivered, Vec<FailedItem>), SinkError> {
        if batch.is_empty() {
            return Ok((Delivered::default(), Vec::new()));
        }
        let owner = Owner::new(on_failure, batch.len());
        let (body, docs) = (batch.body.clone(), batch.len());
        let riders = Rider::of_batch(batch, &owner);
        // Due retries of any delivery ride along when the batch has room for them.
        let limits = *lock(&self.limits);
        let extra = self.queue.take_due(
            Instant::now(),
            limits.max_docs.saturating_sub(docs),
            limits.max_bytes.saturating_sub(body.len()),
            false,
        );
        let mut failure = None;
        match self.send(Outgoing::new(body, riders, extra), cancel).await {
            Ok(()) => {}
            Err(SinkError::Canceled) => return Err(SinkError::Canceled),
            Err(e) => {
                // The sync ends: what this delivery still has queued is dead-lettered below.
                self.abort(e.to_string());
                failure = Some(e);
            }
        }
        let waited = self.await_settled(&owner, cancel, limits).await;
        let (delivered, failed, lost) = owner.take();
        match (failure, waited) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            // Dropped by a request that was canceled, or that failed with the error that
            // ended the sync: that error, not this one, names the cause.
            (None, Ok(())) if lost > 0 => {
                Err(if cancel.is_cancelled() || self.abort_reason().is_some() {
                    SinkError::Canceled
                } else {
                    SinkError::Lost(lost)
                })
            }
            (None, Ok(())) => Ok((delivered, failed)),
        }
    }

    /// Waits until every item of `owner` is settled, sending retry batches of due items
    /// (its own and others') meanwhile. Once the sync is given up, its queued items are
    /// dead-lettered and those on the wire awaited.
    async fn await_settled(
        &self,
        owner: &Arc<Owner>,
        cancel: &CancellationToken,
        limits: RequestLimits,
    ) -> Result<(), SinkError> {
        let mut first_error = None;
        loop {
            let changed = owner.changed.notified();
            let queued = self.queue.queued.notified();
            tokio::pin!(changed, queued);
            changed.as_mut().enable();
            queued.as_mut().enable();
            if owner.unsettled() == 0 {
                return first_error.map_or(Ok(()), Err);
            }
            if let Some(reason) = self.abort_reason() {
                let mine = self.queue.take_owned(owner);
                if mine.is_empty() {
                    // The rest is in requests on the wire (or about to be abandoned), or is
                    // being queued by one that answered just before the abort.
                    tokio::select! {
                        _ = &mut changed => {}
                        _ = &mut queued => {}
                    }
                } else {
                    let reason = format!("not retried: the sync stopped: {reason}");
                    let failed = fail_all(mine, "sync_stopped", &reason, None);
                    if let Err(e) = self.settle_failures(failed, Duration::ZERO).await {
                        first_error.get_or_insert(e);
                    }
                }
                continue;
            }
            let due = self.queue.next_due();
            let sleep = async {
                match due {
                    Some(due) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut changed => {}
                _ = &mut queued => {}
                _ = cancel.cancelled() => {
                    if self.abort_reason().is_none() {
                        return Err(SinkError::Canceled);
                    }
                }
                _ = sleep => {
                    let riders = self.queue.take_due(Instant::now(), limits.max_docs, limits.max_bytes, true);
                    if riders.is_empty() {
                        continue;
                    }
                    match self.send(Outgoing::of(riders), cancel).await {
                        Ok(()) => {}
                        Err(SinkError::Canceled) => return Err(SinkError::Canceled),
                        Err(e) => {
                            self.abort(e.to_string());
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
    }

    /// Sends one request until it is answered, retrying whole-request failures after its
    /// backoff (waited out without a request slot), then settles its items. Items that fail
    /// are dead-lettered (or reported) before this returns; items to retry are queued.
    async fn send(&self, request: Outgoing, cancel: &CancellationToken) -> Result<(), SinkError> {
        let Outgoing { body, riders } = request;
        let mut request_attempts = 0u32;
        // One backoff per request, kept across its attempts, so its delays keep growing.
        let mut backoff = self.backoff();
        let mut wait = Duration::ZERO;
        loop {
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return self.abandon(riders).await,
                }
            }
            if cancel.is_cancelled() {
                return self.abandon(riders).await;
            }
            let slot = tokio::select! {
                slot = self.slots.acquire() => slot,
                _ = cancel.cancelled() => return self.abandon(riders).await,
            };
            let permit = tokio::select! {
                permit = self.breaker.acquire() => permit,
                _ = cancel.cancelled() => return self.abandon(riders).await,
            };
            let guard = match permit {
                Ok(guard) => guard,
                Err(e @ BreakerError::OpenTooLong { .. }) => {
                    let reason = e.to_string();
                    let failed = fail_all(riders, "circuit_breaker_open", &reason, None);
                    self.settle_failures(failed, Duration::ZERO).await?;
                    return Err(SinkError::BreakerOpenTooLong(reason));
                }
            };
            let probe = guard.is_probe();
            let request = BulkRequest {
                index: self.settings.index.clone(),
                pipeline: self.settings.pipeline.clone(),
                refresh: false,
                body: body.clone(),
                actions: riders.len(),
            };
            self.progress.set_in_flight_delta(1);
            let started = Instant::now();
            let result = {
                let bulk = self.store.bulk(&request);
                tokio::pin!(bulk);
                tokio::select! {
                    result = &mut bulk => result,
                    _ = cancel.cancelled() => {
                        if self.abort_reason().is_none() {
                            // Canceled (SIGTERM, a cancel request): drop the request now
                            // rather than wait for a cluster that may never answer.
                            self.progress.set_in_flight_delta(-1);
                            return Err(SinkError::Canceled);
                        }
                        // A sync given up on still settles what it sent: the answer says
                        // which items were indexed, so none ends both indexed and
                        // dead-lettered.
                        bulk.await
                    }
                }
            };
            let latency = started.elapsed();
            drop(slot);
            self.progress.set_in_flight_delta(-1);
            let response = match result {
                Ok(response) => {
                    guard.success();
                    self.progress.bulk_done(latency, false);
                    response
                }
                Err(e) => {
                    self.progress.bulk_done(latency, true);
                    match classify(&e) {
                        Classified::Retry(reason) => {
                            guard.failure(&reason);
                            if !probe {
                                request_attempts += 1;
                            }
                            if request_attempts >= self.settings.request_max_attempts {
                                let reason = format!(
                                    "bulk request failed {request_attempts} times: {reason}"
                                );
                                let failed = fail_all(riders, "bulk_request_failed", &reason, None);
                                self.settle_failures(failed, latency).await?;
                                return Ok(());
                            }
                            tracing::warn!(job = %self.settings.job_id, attempt = request_attempts, error = %reason, "bulk request failed; retrying");
                            wait = backoff.next().unwrap_or(self.settings.retry_max);
                            continue;
                        }
                        Classified::FailAll {
                            error_type,
                            reason,
                            status,
                        } => {
                            // The cluster answered: it is up, the request was the problem.
                            guard.success();
                            let failed = fail_all(riders, &error_type, &reason, status);
                            self.settle_failures(failed, latency).await?;
                            return Ok(());
                        }
                        Classified::Fatal(err) => {
                            guard.success();
                            // The job ends here; its documents wait in the queue, not lost.
                            let failed = fail_all(riders, "bulk_refused", &err.to_string(), None);
                            self.settle_failures(failed, latency).await?;
                            return Err(err);
                        }
                    }
                }
            };
            let throttled = self
                .settle_response(riders, &response.items, latency)
                .await?;
            self.slots.report(throttled > 0);
            return Ok(());
        }
    }

    /// A request was stopped before it was answered. A canceled job just stops; a sync given
    /// up by [`Sink::abort`] dead-letters its items first and counts them as handled.
    async fn abandon(&self, riders: Vec<Rider>) -> Result<(), SinkError> {
        let Some(reason) = self.abort_reason() else {
            return Err(SinkError::Canceled);
        };
        let reason = format!("not sent: the sync stopped: {reason}");
        let failed = fail_all(riders, "sync_stopped", &reason, None);
        self.settle_failures(failed, Duration::ZERO).await
    }

    /// Settles the items of one answered bulk request: credits their owners, dead-letters
    /// what failed, queues what is to be retried. Returns how many met a 429.
    async fn settle_response(
        &self,
        riders: Vec<Rider>,
        items: &[BulkItem],
        latency: Duration,
    ) -> Result<usize, SinkError> {
        let mut tally = BatchTally::default();
        let mut credits = Credits::default();
        let mut retry = Vec::new();
        let mut failed = Vec::new();
        let mut throttled = 0usize;
        let limits = RetryLimits {
            max_retries: self.settings.item_max_retries,
            budget: self.retry_budget(),
            now: Instant::now(),
        };
        let resolving = self.resolver.is_active().await;
        let (mut indexed_ids, mut deleted_ids) = (Vec::new(), Vec::new());
        // Every outcome when an events file wants them all, else the live list's share: the
        // request's last documents, the newest (the live list is "latest documents").
        let budget = self.progress.outcome_budget(RECENT_PER_BATCH);
        let mut outcomes = Vec::with_capacity(riders.len().min(budget));
        let first_recent = riders.len().saturating_sub(budget);
        let in_recent = |position: usize| position >= first_recent;
        let latency_ms = latency.as_millis() as u64;
        for (position, mut rider) in riders.into_iter().enumerate() {
            let bytes = rider.item.source_len() as u64;
            let Some(answer) = items.get(position) else {
                // A short answer: treat the missing items as transient failures.
                match retry_verdict(
                    &mut rider.item,
                    "missing_item",
                    "the bulk response did not mention this item",
                    None,
                    &limits,
                ) {
                    Ok(()) => retry.push(rider),
                    Err(f) => failed.push((rider, f)),
                }
                continue;
            };
            let mut done = Delivered::default();
            let outcome = match (answer.status, rider.item.op) {
                (200..=299 | 404, BulkOp::Delete) => {
                    if answer.status != 404 && answer.result.as_deref() == Some("deleted") {
                        tally.deleted += 1;
                        done.deleted += 1;
                    }
                    Outcome::Deleted
                }
                (200..=299, _) if answer.result.as_deref() == Some("updated") => {
                    tally.updated += 1;
                    tally.bytes += bytes;
                    done.updated += 1;
                    Outcome::Updated
                }
                (200..=299, _) => {
                    tally.indexed += 1;
                    tally.bytes += bytes;
                    done.indexed += 1;
                    Outcome::Indexed
                }
                // `create` of a present document: already there.
                (409, BulkOp::Create) => {
                    tally.indexed += 1;
                    done.indexed += 1;
                    Outcome::Indexed
                }
                (status, _) => {
                    let (kind, reason) = answer
                        .error
                        .as_ref()
                        .map(|e| (e.kind.clone(), e.reason.clone()))
                        .unwrap_or_else(|| ("unknown".to_string(), format!("status {status}")));
                    if status == 429 {
                        throttled += 1;
                    }
                    if is_transient_status(status) {
                        tally.retried += 1;
                        if in_recent(position) {
                            outcomes.push(DocOutcome {
                                id: rider.item.id.clone(),
                                outcome: Outcome::Retried,
                                bytes,
                                latency_ms,
                                reason: Some(reason.clone()),
                            });
                        }
                    }
                    match retry_verdict(&mut rider.item, &kind, &reason, Some(status), &limits) {
                        Ok(()) => retry.push(rider),
                        Err(f) => failed.push((rider, f)),
                    }
                    continue;
                }
            };
            if in_recent(position) {
                outcomes.push(DocOutcome {
                    id: rider.item.id.clone(),
                    outcome,
                    bytes,
                    latency_ms,
                    reason: None,
                });
            }
            if resolving {
                // The rider is settled here and its id read no more: moved, not copied.
                let id = std::mem::take(&mut rider.item.id);
                if rider.item.op == BulkOp::Delete {
                    deleted_ids.push(id);
                } else {
                    indexed_ids.push(id);
                }
            }
            credits.add(&mut rider, done);
        }
        let successes = (tally.indexed + tally.updated) as usize;
        self.progress.add_batch(&tally);
        self.progress.record(outcomes).await;
        // Written documents make their open dead letters moot.
        if resolving {
            self.resolver.written(indexed_ids, deleted_ids).await;
        }
        credits.apply();
        let monitor_result = {
            let mut monitor = lock(&self.monitor);
            // A 429 is the cluster's back-pressure, not a fault of the document: even one
            // whose retry budget ran out does not make the job's documents look bad.
            let errors: Vec<(String, String)> = failed
                .iter()
                .filter(|(_, f): &&(Rider, FailedItem)| f.status != Some(429))
                .map(|(r, f): &(Rider, FailedItem)| (r.item.id.clone(), f.reason.clone()))
                .collect();
            monitor.record_batch(successes, &errors)
        };
        self.settle_failures(failed, latency).await?;
        if let Err(tripped) = monitor_result {
            // The job fails: the items that were to be retried go to the queue, not away.
            let reason = format!("not retried: the sync stopped: {tripped}");
            let unsent = fail_all(retry, "sync_stopped", &reason, None);
            self.settle_failures(unsent, latency).await?;
            return Err(tripped.into());
        }
        self.requeue(retry, latency).await?;
        Ok(throttled)
    }

    /// Queues items for another attempt after their delay; once the sync is given up they
    /// are dead-lettered instead.
    async fn requeue(&self, retry: Vec<Rider>, round_trip: Duration) -> Result<(), SinkError> {
        if retry.is_empty() {
            return Ok(());
        }
        if let Some(reason) = self.abort_reason() {
            let reason = format!("not retried: the sync stopped: {reason}");
            let failed = fail_all(retry, "sync_stopped", &reason, None);
            return self.settle_failures(failed, Duration::ZERO).await;
        }
        let now = Instant::now();
        for mut rider in retry {
            rider.item.attempts = rider.item.attempts.saturating_add(1);
            let delay = item_delay(
                rider.item.attempts,
                round_trip,
                self.settings.retry_base,
                self.settings.retry_max,
            );
            self.queue.push(now + delay, rider);
        }
        self.queue.wake();
        Ok(())
    }

    /// Dead-letters (committed) or reports failed items, then counts them for their owners.
    async fn settle_failures(
        &self,
        failed: Vec<(Rider, FailedItem)>,
        latency: Duration,
    ) -> Result<(), SinkError> {
        if failed.is_empty() {
            return Ok(());
        }
        let entries: Vec<NewDeadLetter> = failed
            .iter()
            .filter(|(rider, _)| rider.owner.on_failure == OnFailure::DeadLetter)
            .map(|(rider, f)| NewDeadLetter {
                connector_id: self.settings.connector_id.clone(),
                job_id: self.settings.job_id.clone(),
                index: self.settings.index.clone(),
                doc_id: rider.item.id.clone(),
                document: rider.document_text(),
                error_type: f.error_type.clone(),
                reason: f.reason.clone(),
                status: f.status,
            })
            .collect();
        if !entries.is_empty() {
            let dlq = self.dlq.clone();
            // The durability point: committed before the items count as handled.
            let stored = tokio::task::spawn_blocking(move || dlq.append_batch(&entries))
                .await
                .map_err(|e| DlqError::Internal(e.to_string()))
                .and_then(|r| r);
            if let Err(e) = stored {
                // The sync ends with this error. The riders of `failed` (other deliveries'
                // items too, when they rode in this request) are dropped unsettled on return:
                // abort first, so their deliveries see why, instead of reporting them lost.
                let e = SinkError::DeadLetterQueue(e);
                self.abort(e.to_string());
                return Err(e);
            }
        }
        let latency_ms = latency.as_millis() as u64;
        let outcomes: Vec<DocOutcome> = failed
            .iter()
            .take(self.progress.outcome_budget(RECENT_PER_BATCH))
            .map(|(rider, f)| DocOutcome {
                id: rider.item.id.clone(),
                outcome: Outcome::DeadLettered,
                bytes: rider.item.source_len() as u64,
                latency_ms,
                reason: Some(f.reason.clone()),
            })
            .collect();
        let count = failed.len() as u64;
        self.progress.add_batch(&BatchTally {
            dead_lettered: count,
            ..Default::default()
        });
        self.progress.record(outcomes).await;
        let dead = Delivered {
            dead_lettered: 1,
            ..Delivered::default()
        };
        for (rider, f) in failed {
            let owner = rider.finish();
            let reported = match owner.on_failure {
                OnFailure::Report => vec![f],
                OnFailure::DeadLetter => Vec::new(),
            };
            owner.settle(1, &dead, reported);
        }
        Ok(())
    }
}

/// At most this many outcomes per request go to the live list: it shows a few hundred
/// anyway, and this keeps the hot path from cloning every id (unless an events file wants
/// them all).
const RECENT_PER_BATCH: usize = 64;

/// One request's backoff: exponential from `base` to `max` with jitter, endless (the callers
/// bound the attempts).
fn batch_backoff(base: Duration, max: Duration) -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// How far an item's retries may go, as of one answer.
struct RetryLimits {
    /// Transient errors other than 429.
    max_retries: u32,
    /// 429s: the time since the item's first 429.
    budget: Duration,
    now: Instant,
}

/// Whether an item that failed this way is sent again (`Ok`, with its first 429 noted) or
/// has failed for good.
fn retry_verdict(
    item: &mut BatchItem,
    kind: &str,
    reason: &str,
    status: Option<u16>,
    limits: &RetryLimits,
) -> Result<(), FailedItem> {
    let transient = status.is_none_or(is_transient_status);
    if status == Some(429) {
        let since = item.throttled_since.unwrap_or(limits.now);
        let waited = limits.now.saturating_duration_since(since);
        if waited < limits.budget {
            item.throttled_since = Some(since);
            return Ok(());
        }
        let reason = format!(
            "gave up after {} attempts over {}s of 429s ('item_retry_budget' is {}): {reason}",
            item.attempts.saturating_add(1),
            waited.as_secs(),
            crate::config::format_duration(limits.budget)
        );
        return Err(failed_item(item, kind, reason, status));
    }
    if transient && item.attempts < limits.max_retries {
        return Ok(());
    }
    let reason = if transient {
        format!(
            "gave up after {} attempts: {reason}",
            item.attempts.saturating_add(1)
        )
    } else {
        reason.to_string()
    };
    Err(failed_item(item, kind, reason, status))
}

fn failed_item(item: &BatchItem, kind: &str, reason: String, status: Option<u16>) -> FailedItem {
    FailedItem {
        id: item.id.clone(),
        error_type: kind.to_string(),
        reason,
        status,
    }
}

fn fail_all(
    riders: Vec<Rider>,
    kind: &str,
    reason: &str,
    status: Option<u16>,
) -> Vec<(Rider, FailedItem)> {
    riders
        .into_iter()
        .map(|rider| {
            let f = failed_item(&rider.item, kind, reason.to_string(), status);
            (rider, f)
        })
        .collect()
}

fn classify(e: &BackendError) -> Classified {
    match e {
        BackendError::Unreachable(reason) => Classified::Retry(reason.clone()),
        BackendError::Other(reason) => Classified::Retry(reason.clone()),
        BackendError::Rejected {
            status,
            kind,
            reason,
        } if is_transient_status(*status) => {
            Classified::Retry(format!("{status} {kind}: {reason}"))
        }
        BackendError::Rejected {
            status: 413,
            kind,
            reason,
        } => Classified::FailAll {
            error_type: kind.clone(),
            reason: format!("request too large: {reason}"),
            status: Some(413),
        },
        BackendError::Rejected {
            status,
            kind,
            reason,
        } => Classified::FailAll {
            error_type: kind.clone(),
            reason: reason.clone(),
            status: Some(*status),
        },
        BackendError::Unauthorized(reason) => {
            Classified::Fatal(SinkError::Unauthorized(reason.clone()))
        }
        BackendError::NotFound(reason) | BackendError::Conflict(reason) => Classified::FailAll {
            error_type: "bulk_rejected".to_string(),
            reason: reason.clone(),
            status: None,
        },
        BackendError::ReadOnly { .. } => Classified::Fatal(SinkError::Unauthorized(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_backoff_grows_is_capped_and_never_ends() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let delays: Vec<Duration> = batch_backoff(base, max).take(50).collect();
        assert_eq!(delays.len(), 50, "the backoff must not run out");
        for d in &delays {
            // Jitter adds up to one more delay.
            assert!(*d >= base && *d <= max * 2, "{d:?}");
        }
        assert!(delays[10] >= max, "{delays:?}");
    }

    #[test]
    fn an_item_waits_about_a_round_trip_longer_each_time_within_its_bounds() {
        let (base, max) = (Duration::from_millis(200), Duration::from_secs(10));
        let rtt = Duration::from_millis(40);
        for _ in 0..100 {
            let first = item_delay(1, rtt, base, max);
            assert!(first >= rtt / 2 && first <= rtt, "{first:?}");
            // A slow round trip is bounded by `retry_base`.
            let slow = item_delay(1, Duration::from_secs(5), base, max);
            assert!(slow >= base / 2 && slow <= base, "{slow:?}");
            // Half again as long per failure: ×1.5⁴ ≈ 5 by the fifth.
            let fifth = item_delay(5, rtt, base, max);
            assert!(fifth >= rtt * 2 && fifth <= rtt * 6, "{fifth:?}");
            assert!(item_delay(200, rtt, base, max) <= max);
            assert!(item_delay(1, Duration::ZERO, base, max) >= Duration::from_micros(500));
        }
    }

    fn item(attempts: u32, throttled_since: Option<Instant>) -> BatchItem {
        BatchItem {
            id: "d1".into(),
            op: BulkOp::Index,
            start: 0,
            source_start: 0,
            end: 0,
            attempts,
            throttled_since,
        }
    }

    #[test]
    fn a_429_is_retried_until_its_time_budget_not_a_count() {
        let now = Instant::now();
        let limits = RetryLimits {
            max_retries: 2,
            budget: Duration::from_secs(300),
            now,
        };
        // Far past the count, well within the budget: retried, and the clock starts.
        let mut throttled = item(50, None);
        let verdict = retry_verdict(
            &mut throttled,
            "es_rejected_execution_exception",
            "busy",
            Some(429),
            &limits,
        );
        assert!(verdict.is_ok());
        assert_eq!(throttled.throttled_since, Some(now));
        // A 503 item still has its count.
        let failed = retry_verdict(
            &mut item(2, None),
            "unavailable",
            "down",
            Some(503),
            &limits,
        )
        .expect_err("out of retries");
        assert!(
            failed.reason.starts_with("gave up after 3 attempts"),
            "{failed:?}"
        );
        // Past the budget: dead-lettered, saying why.
        let old = now.checked_sub(Duration::from_secs(301)).unwrap_or(now);
        let limits = RetryLimits {
            budget: now
                .saturating_duration_since(old)
                .min(Duration::from_secs(300)),
            ..limits
        };
        let failed = retry_verdict(
            &mut item(7, Some(old)),
            "es_rejected_execution_exception",
            "busy",
            Some(429),
            &limits,
        )
        .expect_err("out of budget");
        assert!(failed.reason.contains("item_retry_budget"), "{failed:?}");
        assert_eq!(failed.status, Some(429));
        // A permanent error is never retried.
        assert!(retry_verdict(&mut item(0, None), "mapper", "bad", Some(400), &limits).is_err());
    }

    fn batch_of(ids: &[&str]) -> Batch {
        let mut builder = super::super::batch::BatchBuilder::new(
            super::super::batch::BatchLimits {
                max_docs: 1000,
                max_bytes: 1 << 20,
            },
            None,
        );
        for id in ids {
            let mut fields = crate::sources::Fields::new();
            fields.insert("n", serde_json::Value::from(id.len()));
            assert!(
                builder
                    .push_index(id.to_string(), None, &mut fields)
                    .is_none()
            );
        }
        builder.flush().expect("a batch")
    }

    #[test]
    fn riders_keep_their_lines_and_join_a_request_in_order() {
        let owner = Owner::new(OnFailure::DeadLetter, 3);
        let batch = batch_of(&["a", "b", "c"]);
        let body = batch.body.clone();
        let mut riders = Rider::of_batch(batch, &owner);
        let joined: Vec<u8> = riders.iter().flat_map(|r| r.lines.to_vec()).collect();
        assert_eq!(joined, body.to_vec());
        assert_eq!(riders[1].source(), br#"{"id":"b","n":1}"#);
        assert_eq!(riders[1].document_text(), r#"{"id":"b","n":1}"#);
        // A retry batch of b then a: their lines, in that order.
        let b = riders.remove(1);
        let a = riders.remove(0);
        let expected = [b.lines.to_vec(), a.lines.to_vec()].concat();
        let out = Outgoing::of(vec![b, a]);
        assert_eq!(out.body.to_vec(), expected);
        assert_eq!(out.riders[0].item.id, "b");
        // Dropped unsettled (a canceled request), they tell their owner.
        drop(out);
        drop(riders);
        let (_, _, lost) = owner.take();
        assert_eq!((owner.unsettled(), lost), (0, 3));
    }

    #[test]
    fn credits_settle_each_owner_once_with_its_own_counts() {
        // One request carrying two deliveries' items, interleaved (fresh items, then retries
        // of another delivery's, then fresh again).
        let mine = Owner::new(OnFailure::DeadLetter, 3);
        let theirs = Owner::new(OnFailure::DeadLetter, 2);
        let mut riders = Rider::of_batch(batch_of(&["a", "b"]), &mine);
        riders.extend(Rider::of_batch(batch_of(&["x", "y"]), &theirs));
        riders.extend(Rider::of_batch(batch_of(&["c"]), &mine));
        let mut credits = Credits::default();
        for (n, mut rider) in riders.into_iter().enumerate() {
            let done = Delivered {
                indexed: u64::from(n != 1),
                updated: u64::from(n == 1),
                ..Delivered::default()
            };
            credits.add(&mut rider, done);
        }
        // Credited riders are settled: dropping them lost none; each owner is held once.
        assert_eq!(credits.owners.len(), 2);
        assert_eq!(
            (Arc::strong_count(&mine), Arc::strong_count(&theirs)),
            (2, 2)
        );
        credits.apply();
        let (delivered, _, lost) = mine.take();
        assert_eq!((mine.unsettled(), lost), (0, 0));
        assert_eq!((delivered.indexed, delivered.updated), (2, 1));
        let (delivered, _, lost) = theirs.take();
        assert_eq!((theirs.unsettled(), lost), (0, 0));
        assert_eq!((delivered.indexed, delivered.updated), (2, 0));
    }

    #[test]
    fn the_retry_queue_hands_out_due_items_oldest_first_within_the_limits() {
        let owner = Owner::new(OnFailure::DeadLetter, 4);
        let other = Owner::new(OnFailure::DeadLetter, 1);
        let now = Instant::now();
        let queue = RetryQueue::new();
        let mut riders = Rider::of_batch(batch_of(&["a", "b", "c", "d"]), &owner);
        let size = riders[0].len();
        let d = riders.pop().unwrap();
        let c = riders.pop().unwrap();
        let b = riders.pop().unwrap();
        let a = riders.pop().unwrap();
        queue.push(now + Duration::from_millis(2), b);
        queue.push(now + Duration::from_millis(1), a);
        queue.push(now + Duration::from_secs(60), c);
        queue.push(now + Duration::from_millis(3), d);
        let mut theirs = Rider::of_batch(batch_of(&["x"]), &other);
        queue.push(now, theirs.pop().unwrap());
        assert_eq!(queue.next_due(), Some(now));
        let later = now + Duration::from_millis(10);
        let ids = |riders: &[Rider]| -> Vec<String> {
            riders.iter().map(|r| r.item.id.clone()).collect()
        };
        // Two by count.
        let first = queue.take_due(later, 2, usize::MAX, false);
        assert_eq!(ids(&first), ["x", "a"]);
        // None by bytes, unless at least one is asked for.
        assert!(queue.take_due(later, 10, size - 1, false).is_empty());
        let one = queue.take_due(later, 10, size - 1, true);
        assert_eq!(ids(&one), ["b"]);
        // `c` is not due yet.
        let rest = queue.take_due(later, 10, usize::MAX, false);
        assert_eq!(ids(&rest), ["d"]);
        assert_eq!(ids(&queue.take_owned(&other)), Vec::<String>::new());
        let mine = queue.take_owned(&owner);
        assert_eq!(ids(&mine), ["c"]);
        assert_eq!(queue.next_due(), None);
        for rider in first.into_iter().chain(one).chain(rest).chain(mine) {
            let owner = rider.finish();
            owner.settle(1, &Delivered::default(), Vec::new());
        }
        assert_eq!((owner.unsettled(), other.unsettled()), (0, 0));
        assert_eq!(owner.take().2, 0, "nothing lost");
    }
}

#[cfg(test)]
mod dlq_failure_tests {
    use super::*;
    use crate::backend::embedded::EmbeddedBackend;
    use crate::config::BreakerSettings;
    use crate::engine::batch::{BatchBuilder, BatchLimits};

    /// A dead letter that cannot be written ends the sync with that error before the riders
    /// are dropped: another delivery whose items rode along sees why (the abort), instead of
    /// reporting them lost ("a bug").
    #[tokio::test]
    async fn a_dead_letter_queue_failure_aborts_the_sink_with_its_error() {
        let store = Arc::new(EmbeddedBackend::open_in_memory().unwrap());
        let dlq = Arc::new(DeadLetterStore::open_in_memory(1).unwrap());
        let sink = Sink::new(
            store,
            dlq,
            SharedBreaker::new(BreakerSettings::default()),
            Arc::new(Progress::new("c", "j", "docs")),
            ErrorMonitor::new(crate::engine::monitor::MonitorSettings::default()),
            SinkSettings {
                connector_id: "c".into(),
                job_id: "j".into(),
                index: "docs".into(),
                pipeline: None,
                item_max_retries: 1,
                request_max_attempts: 1,
                retry_base: Duration::from_millis(1),
                retry_max: Duration::from_millis(1),
            },
        );
        let mut builder = BatchBuilder::new(
            BatchLimits {
                max_docs: 10,
                max_bytes: 1 << 20,
            },
            None,
        );
        for id in ["a", "b", "c"] {
            builder.push_raw_index(id.to_string(), br#"{"x":1}"#);
        }
        let batch = builder.flush().unwrap();
        let owner = Owner::new(OnFailure::DeadLetter, batch.len());
        let failed: Vec<(Rider, FailedItem)> = Rider::of_batch(batch, &owner)
            .into_iter()
            .map(|rider| {
                let f = FailedItem {
                    id: rider.item.id.clone(),
                    error_type: "mapper_parsing_exception".into(),
                    reason: "bad".into(),
                    status: Some(400),
                };
                (rider, f)
            })
            .collect();
        let err = sink
            .settle_failures(failed, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::DeadLetterQueue(_)), "{err}");
        let reason = sink.abort_reason().expect("the sink is aborted");
        assert!(reason.contains("dead-letter queue"), "{reason}");
    }
}
