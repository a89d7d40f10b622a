//! The bulk sink: sends [`Batch`]es to a [`DocumentStore`] and sees every item through to an
//! end — indexed, or dead-lettered with its reason and committed to disk before it counts as
//! handled. Whole-request failures (unreachable, 5xx, 429, timeouts) go through the circuit
//! breaker and are retried; item failures are retried when transient, and dead-lettered when
//! permanent (mapping errors, invalid ids) or exhausted. Never retries forever.
//!
//! Item 429s are back-pressure, not document errors: the items are sent again in a later,
//! smaller batch, for as long as `item_retry_budget` allows (a time, not a count), and never
//! count toward the error monitor. Other transient item errors (5xx, a missing item) keep a
//! count, `item_max_retries`. A batch's backoff (one iterator per batch, exponential with
//! jitter) is waited out without a request slot: the sink's [`InFlightLimit`] is held only
//! while a request is on the wire, so other batches keep flowing; answers with 429s shrink
//! the number of slots, clean answers grow it back. The pipeline runs more deliveries than
//! slots ([`deliveries_for`]) so that waiting batches do not idle the slots.

use super::batch::{Batch, BatchItem};
use super::breaker::{BreakerError, InFlightLimit, SharedBreaker};
use super::dlq::{DeadLetterStore, DlqError, NewDeadLetter};
use super::monitor::{ErrorMonitor, MonitorTripped};
use super::progress::{BatchTally, DocOutcome, Outcome, Progress};
use crate::backend::{BackendError, BulkItem, BulkOp, BulkRequest, DocumentStore};
use backon::{BackoffBuilder, ExponentialBackoff};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Where a sink writes and how hard it tries.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub connector_id: String,
    pub job_id: String,
    pub index: String,
    pub pipeline: Option<String>,
    /// Retries of one item (429/5xx) before it is dead-lettered.
    pub item_max_retries: u32,
    /// Sends of one batch that failed as a whole (outside breaker probes) before its items
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
}

/// What became of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub indexed: u64,
    pub updated: u64,
    pub deleted: u64,
    pub dead_lettered: u64,
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

pub struct Sink {
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    breaker: SharedBreaker,
    progress: Arc<Progress>,
    monitor: Mutex<ErrorMonitor>,
    settings: SinkSettings,
    seq: AtomicU64,
    /// Why the sync was given up, once it was (see [`Sink::abort`]).
    aborted: Mutex<Option<String>>,
    /// Request slots, shared by every delivery of this sink.
    slots: InFlightLimit,
    /// How long a 429-refused item keeps being retried.
    item_retry_budget: Mutex<Duration>,
    /// Resolves the index's open dead letters as their documents get written.
    resolver: super::dlq::Resolver,
}

/// How many deliveries the pipeline runs for `max_in_flight` request slots: batches waiting
/// out a backoff hold no slot, so many more deliveries than slots keep every slot busy while
/// batches wait (under 20% item 429s a batch waits for several rounds). Memory stays bounded
/// by the queue in front of them, which counts a batch's bytes until it is settled.
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

impl Sink {
    pub fn new(
        store: Arc<dyn DocumentStore>,
        dlq: Arc<DeadLetterStore>,
        breaker: SharedBreaker,
        progress: Arc<Progress>,
        monitor: ErrorMonitor,
        settings: SinkSettings,
    ) -> Self {
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
            seq: AtomicU64::new(1 << 40),
            aborted: Mutex::new(None),
            slots: InFlightLimit::new(crate::config::EngineSettings::default().max_in_flight),
            item_retry_budget: Mutex::new(crate::config::DEFAULT_ITEM_RETRY_BUDGET),
        }
    }

    /// Applies the engine settings that size the sink: `max_in_flight` request slots and the
    /// `item_retry_budget` of 429-refused items. Until called, the defaults apply.
    pub fn configure(&self, engine: &crate::config::EngineSettings) {
        self.slots.set_max(engine.max_in_flight);
        *self
            .item_retry_budget
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = engine.item_retry_budget;
    }

    /// The request slots, for progress and tests.
    pub fn in_flight_limit(&self) -> &InFlightLimit {
        &self.slots
    }

    fn retry_budget(&self) -> Duration {
        *self
            .item_retry_budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// This batch's backoff: exponential from `retry_base` to `retry_max`, with jitter,
    /// endless (the callers bound the attempts).
    fn backoff(&self) -> ExponentialBackoff {
        batch_backoff(self.settings.retry_base, self.settings.retry_max)
    }

    /// Gives up on the sync: from now on, a delivery stopped by the cancellation token
    /// dead-letters its unsettled items (with this reason) instead of dropping them, so
    /// nothing the source sent is lost when one worker's error ends the job. The first
    /// reason wins.
    pub fn abort(&self, reason: String) {
        self.aborted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
    }

    fn abort_reason(&self) -> Option<String> {
        self.aborted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        let mut total = Delivered::default();
        let mut failed_out = Vec::new();
        let mut pending = batch;
        let mut request_attempts = 0u32;
        // One backoff per batch, kept across its rounds, so its delays keep growing.
        let mut backoff = self.backoff();
        let mut wait = Duration::ZERO;
        loop {
            // The wait holds no request slot: other batches use the slots meanwhile.
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return self.abandon(&pending, on_failure, total, failed_out).await,
                }
            }
            if cancel.is_cancelled() {
                return self.abandon(&pending, on_failure, total, failed_out).await;
            }
            let slot = tokio::select! {
                slot = self.slots.acquire() => slot,
                _ = cancel.cancelled() => return self.abandon(&pending, on_failure, total, failed_out).await,
            };
            let permit = tokio::select! {
                permit = self.breaker.acquire() => permit,
                _ = cancel.cancelled() => return self.abandon(&pending, on_failure, total, failed_out).await,
            };
            let guard = match permit {
                Ok(guard) => guard,
                Err(e @ BreakerError::OpenTooLong { .. }) => {
                    let reason = e.to_string();
                    let failed = all_failed(&pending, "circuit_breaker_open", &reason, None);
                    self.settle_failures(
                        &pending,
                        failed,
                        on_failure,
                        &mut total,
                        &mut failed_out,
                        Duration::ZERO,
                    )
                    .await?;
                    return Err(SinkError::BreakerOpenTooLong(reason));
                }
            };
            let probe = guard.is_probe();
            let request = BulkRequest {
                index: self.settings.index.clone(),
                pipeline: self.settings.pipeline.clone(),
                refresh: false,
                body: pending.body.clone(),
                actions: pending.len(),
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
                                let failed =
                                    all_failed(&pending, "bulk_request_failed", &reason, None);
                                self.settle_failures(
                                    &pending,
                                    failed,
                                    on_failure,
                                    &mut total,
                                    &mut failed_out,
                                    latency,
                                )
                                .await?;
                                return Ok((total, failed_out));
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
                            let failed = all_failed(&pending, &error_type, &reason, status);
                            self.settle_failures(
                                &pending,
                                failed,
                                on_failure,
                                &mut total,
                                &mut failed_out,
                                latency,
                            )
                            .await?;
                            return Ok((total, failed_out));
                        }
                        Classified::Fatal(err) => {
                            guard.success();
                            // The job ends here; its documents wait in the queue, not lost.
                            let failed =
                                all_failed(&pending, "bulk_refused", &err.to_string(), None);
                            self.settle_failures(
                                &pending,
                                failed,
                                on_failure,
                                &mut total,
                                &mut failed_out,
                                latency,
                            )
                            .await?;
                            return Err(err);
                        }
                    }
                }
            };
            let settled = self
                .settle_response(
                    &pending,
                    &response.items,
                    latency,
                    on_failure,
                    &mut total,
                    &mut failed_out,
                )
                .await?;
            self.slots.report(settled.throttled > 0);
            if settled.retry.is_empty() {
                return Ok((total, failed_out));
            }
            // The items to retry become a later, smaller batch of their own.
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            pending = pending.subset(seq, &settled.retry);
            wait = backoff.next().unwrap_or(self.settings.retry_max);
        }
    }

    /// The delivery was stopped with `pending` unsettled. A canceled job just stops; a sync
    /// given up by [`Sink::abort`] dead-letters them first and counts them as handled.
    async fn abandon(
        &self,
        pending: &Batch,
        on_failure: OnFailure,
        mut total: Delivered,
        mut failed_out: Vec<FailedItem>,
    ) -> Result<(Delivered, Vec<FailedItem>), SinkError> {
        let Some(reason) = self.abort_reason() else {
            return Err(SinkError::Canceled);
        };
        let reason = format!("not sent: the sync stopped: {reason}");
        let failed = all_failed(pending, "sync_stopped", &reason, None);
        self.settle_failures(
            pending,
            failed,
            on_failure,
            &mut total,
            &mut failed_out,
            Duration::ZERO,
        )
        .await?;
        Ok((total, failed_out))
    }

    /// Settles the items of one answered bulk request; returns the items to send again and
    /// how many met a 429.
    async fn settle_response(
        &self,
        batch: &Batch,
        items: &[BulkItem],
        latency: Duration,
        on_failure: OnFailure,
        total: &mut Delivered,
        failed_out: &mut Vec<FailedItem>,
    ) -> Result<Settled, SinkError> {
        let mut tally = BatchTally::default();
        let mut retry = Vec::new();
        let mut failed = Vec::new();
        let mut throttled = 0usize;
        let limits = RetryLimits {
            max_retries: self.settings.item_max_retries,
            budget: self.retry_budget(),
            now: Instant::now(),
        };
        // Every outcome when an events file wants them all, else the live list's share: the
        // batch's last documents, the newest (the live list is "latest documents").
        let budget = self.progress.outcome_budget(RECENT_PER_BATCH);
        let mut outcomes = Vec::with_capacity(batch.len().min(budget));
        let first_recent = batch.items.len().saturating_sub(budget);
        let in_recent = |position: usize| position >= first_recent;
        let latency_ms = latency.as_millis() as u64;
        for (position, item) in batch.items.iter().enumerate() {
            let bytes = item.source_len() as u64;
            let Some(answer) = items.get(position) else {
                // A short answer: treat the missing items as transient failures.
                retry_or_fail(
                    item,
                    "missing_item",
                    "the bulk response did not mention this item",
                    None,
                    &limits,
                    &mut retry,
                    &mut failed,
                );
                continue;
            };
            let outcome = match (answer.status, item.op) {
                (200..=299, BulkOp::Delete) => {
                    if answer.result.as_deref() == Some("deleted") {
                        tally.deleted += 1;
                    }
                    Some(Outcome::Deleted)
                }
                (200..=299, _) if answer.result.as_deref() == Some("updated") => {
                    tally.updated += 1;
                    tally.bytes += bytes;
                    Some(Outcome::Updated)
                }
                (200..=299, _) => {
                    tally.indexed += 1;
                    tally.bytes += bytes;
                    Some(Outcome::Indexed)
                }
                // Deleting what is already gone is what we wanted.
                (404, BulkOp::Delete) => Some(Outcome::Deleted),
                // `create` of a present document: already there.
                (409, BulkOp::Create) => {
                    tally.indexed += 1;
                    Some(Outcome::Indexed)
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
                                id: item.id.clone(),
                                outcome: Outcome::Retried,
                                bytes,
                                latency_ms,
                                reason: Some(reason.clone()),
                            });
                        }
                    }
                    retry_or_fail(
                        item,
                        &kind,
                        &reason,
                        Some(status),
                        &limits,
                        &mut retry,
                        &mut failed,
                    );
                    None
                }
            };
            if let Some(outcome) = outcome
                && in_recent(position)
            {
                outcomes.push(DocOutcome {
                    id: item.id.clone(),
                    outcome,
                    bytes,
                    latency_ms,
                    reason: None,
                });
            }
        }
        // Every item of `batch` that succeeded is settled at this point (those without an
        // entry in `retry` or `failed`): the place for work that follows a document's
        // successful indexing.
        let successes = (tally.indexed + tally.updated) as usize;
        total.indexed += tally.indexed;
        total.updated += tally.updated;
        total.deleted += tally.deleted;
        self.progress.add_batch(&tally);
        self.progress.record(outcomes).await;
        if self.resolver.is_active().await {
            let (indexed, deleted) = written_ids(batch, items);
            self.resolver.written(indexed, deleted).await;
        }
        let monitor_result = {
            let mut monitor = self.monitor.lock().unwrap_or_else(|p| p.into_inner());
            // A 429 is the cluster's back-pressure, not a fault of the document: even one
            // whose retry budget ran out does not make the job's documents look bad.
            let errors: Vec<(String, String)> = failed
                .iter()
                .filter(|(_, f): &&(BatchItem, FailedItem)| f.status != Some(429))
                .map(|(i, f): &(BatchItem, FailedItem)| (i.id.clone(), f.reason.clone()))
                .collect();
            monitor.record_batch(successes, &errors)
        };
        self.settle_failures_items(batch, failed, on_failure, total, failed_out, latency)
            .await?;
        if let Err(tripped) = monitor_result {
            // The job fails: the items that were to be retried go to the queue, not away.
            let reason = format!("not retried: the sync stopped: {tripped}");
            let unsent = items_failed(&retry, "sync_stopped", &reason, None);
            self.settle_failures_items(batch, unsent, on_failure, total, failed_out, latency)
                .await?;
            return Err(tripped.into());
        }
        Ok(Settled { retry, throttled })
    }

    async fn settle_failures(
        &self,
        batch: &Batch,
        failed: Vec<(BatchItem, FailedItem)>,
        on_failure: OnFailure,
        total: &mut Delivered,
        failed_out: &mut Vec<FailedItem>,
        latency: Duration,
    ) -> Result<(), SinkError> {
        self.settle_failures_items(batch, failed, on_failure, total, failed_out, latency)
            .await
    }

    /// Dead-letters (committed) or reports failed items, then counts them.
    async fn settle_failures_items(
        &self,
        batch: &Batch,
        failed: Vec<(BatchItem, FailedItem)>,
        on_failure: OnFailure,
        total: &mut Delivered,
        failed_out: &mut Vec<FailedItem>,
        latency: Duration,
    ) -> Result<(), SinkError> {
        if failed.is_empty() {
            return Ok(());
        }
        if on_failure == OnFailure::DeadLetter {
            let entries: Vec<NewDeadLetter> = failed
                .iter()
                .map(|(item, f)| NewDeadLetter {
                    connector_id: self.settings.connector_id.clone(),
                    job_id: self.settings.job_id.clone(),
                    index: self.settings.index.clone(),
                    doc_id: item.id.clone(),
                    document: document_text(batch, item),
                    error_type: f.error_type.clone(),
                    reason: f.reason.clone(),
                    status: f.status,
                })
                .collect();
            let dlq = self.dlq.clone();
            // The durability point: committed before the items count as handled.
            tokio::task::spawn_blocking(move || dlq.append_batch(&entries))
                .await
                .map_err(|e| SinkError::DeadLetterQueue(DlqError::Internal(e.to_string())))??;
        }
        let latency_ms = latency.as_millis() as u64;
        let outcomes: Vec<DocOutcome> = failed
            .iter()
            .take(self.progress.outcome_budget(RECENT_PER_BATCH))
            .map(|(item, f)| DocOutcome {
                id: item.id.clone(),
                outcome: Outcome::DeadLettered,
                bytes: item.source_len() as u64,
                latency_ms,
                reason: Some(f.reason.clone()),
            })
            .collect();
        let count = failed.len() as u64;
        total.dead_lettered += count;
        self.progress.add_batch(&BatchTally {
            dead_lettered: count,
            ..Default::default()
        });
        self.progress.record(outcomes).await;
        if on_failure == OnFailure::Report {
            failed_out.extend(failed.into_iter().map(|(_, f)| f));
        }
        Ok(())
    }
}

/// At most this many outcomes per batch go to the live list: it shows a few hundred anyway,
/// and this keeps the hot path from cloning every id (unless an events file wants them all).
const RECENT_PER_BATCH: usize = 64;

/// One batch's backoff: exponential from `base` to `max` with jitter, endless (the callers
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

/// What one answered request left to do.
struct Settled {
    /// Items to send again.
    retry: Vec<BatchItem>,
    /// Items that met a 429.
    throttled: usize,
}

/// How far an item's retries may go, as of one answer.
struct RetryLimits {
    /// Transient errors other than 429.
    max_retries: u32,
    /// 429s: the time since the item's first 429.
    budget: Duration,
    now: Instant,
}

fn retry_or_fail(
    item: &BatchItem,
    kind: &str,
    reason: &str,
    status: Option<u16>,
    limits: &RetryLimits,
    retry: &mut Vec<BatchItem>,
    failed: &mut Vec<(BatchItem, FailedItem)>,
) {
    let transient = status.is_none_or(is_transient_status);
    if status == Some(429) {
        let since = item.throttled_since.unwrap_or(limits.now);
        let waited = limits.now.saturating_duration_since(since);
        if waited < limits.budget {
            let mut again = item.clone();
            again.throttled_since = Some(since);
            retry.push(again);
            return;
        }
        let reason = format!(
            "gave up after {} attempts over {}s of 429s ('item_retry_budget' is {}): {reason}",
            item.attempts.saturating_add(1),
            waited.as_secs(),
            crate::config::format_duration(limits.budget)
        );
        failed.push((item.clone(), failed_item(item, kind, reason, status)));
        return;
    }
    if transient && item.attempts < limits.max_retries {
        retry.push(item.clone());
        return;
    }
    let reason = if transient {
        format!(
            "gave up after {} attempts: {reason}",
            item.attempts.saturating_add(1)
        )
    } else {
        reason.to_string()
    };
    failed.push((item.clone(), failed_item(item, kind, reason, status)));
}

fn failed_item(item: &BatchItem, kind: &str, reason: String, status: Option<u16>) -> FailedItem {
    FailedItem {
        id: item.id.clone(),
        error_type: kind.to_string(),
        reason,
        status,
    }
}

fn all_failed(
    batch: &Batch,
    kind: &str,
    reason: &str,
    status: Option<u16>,
) -> Vec<(BatchItem, FailedItem)> {
    items_failed(&batch.items, kind, reason, status)
}

fn items_failed(
    items: &[BatchItem],
    kind: &str,
    reason: &str,
    status: Option<u16>,
) -> Vec<(BatchItem, FailedItem)> {
    items
        .iter()
        .map(|item| {
            (
                item.clone(),
                FailedItem {
                    id: item.id.clone(),
                    error_type: kind.to_string(),
                    reason: reason.to_string(),
                    status,
                },
            )
        })
        .collect()
}

/// The ids of the items an answer says were indexed, and those it says were deleted (the
/// dead letters of both are moot).
fn written_ids(batch: &Batch, items: &[BulkItem]) -> (Vec<String>, Vec<String>) {
    let (mut indexed, mut deleted) = (Vec::new(), Vec::new());
    for (item, answer) in batch.items.iter().zip(items) {
        match (answer.status, item.op) {
            (200..=299 | 404, BulkOp::Delete) => deleted.push(item.id.clone()),
            (200..=299, _) | (409, BulkOp::Create) => indexed.push(item.id.clone()),
            _ => {}
        }
    }
    (indexed, deleted)
}

/// The document as stored in the dead-letter queue: its JSON source, or `null` for deletes.
fn document_text(batch: &Batch, item: &BatchItem) -> String {
    let source = batch.source_of(item);
    if source.is_empty() {
        "null".to_string()
    } else {
        String::from_utf8_lossy(source).into_owned()
    }
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
    fn a_batch_backoff_grows_is_capped_and_never_ends() {
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
        let (mut retry, mut failed) = (Vec::new(), Vec::new());
        // Far past the count, well within the budget: retried, and the clock starts.
        retry_or_fail(
            &item(50, None),
            "es_rejected_execution_exception",
            "busy",
            Some(429),
            &limits,
            &mut retry,
            &mut failed,
        );
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].throttled_since, Some(now));
        // A 503 item still has its count.
        retry_or_fail(
            &item(2, None),
            "unavailable",
            "down",
            Some(503),
            &limits,
            &mut retry,
            &mut failed,
        );
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].1.reason.starts_with("gave up after 3 attempts"),
            "{:?}",
            failed[0].1
        );
        // Past the budget: dead-lettered, saying why.
        let old = now.checked_sub(Duration::from_secs(301)).unwrap_or(now);
        let limits = RetryLimits {
            budget: now
                .saturating_duration_since(old)
                .min(Duration::from_secs(300)),
            ..limits
        };
        retry_or_fail(
            &item(7, Some(old)),
            "es_rejected_execution_exception",
            "busy",
            Some(429),
            &limits,
            &mut retry,
            &mut failed,
        );
        assert_eq!(retry.len(), 1);
        assert_eq!(failed.len(), 2);
        assert!(
            failed[1].1.reason.contains("item_retry_budget"),
            "{:?}",
            failed[1].1
        );
        assert_eq!(failed[1].1.status, Some(429));
    }
}
