//! The bulk sink: sends [`Batch`]es to a [`DocumentStore`] and sees every item through to an
//! end — indexed, or dead-lettered with its reason and committed to disk before it counts as
//! handled. Whole-request failures (unreachable, 5xx, 429, timeouts) go through the circuit
//! breaker and are retried; item failures are retried when transient (429, 5xx) with
//! exponential backoff and jitter, a capped number of times, and dead-lettered when permanent
//! (mapping errors, invalid ids) or exhausted. Never retries forever.

use super::batch::{Batch, BatchItem};
use super::breaker::{BreakerError, SharedBreaker};
use super::dlq::{DeadLetterStore, DlqError, NewDeadLetter};
use super::monitor::{ErrorMonitor, MonitorTripped};
use super::progress::{BatchTally, DocOutcome, Outcome, Progress};
use crate::backend::{BackendError, BulkItem, BulkOp, BulkRequest, DocumentStore};
use backon::BackoffBuilder;
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
    /// Resolves the index's open dead letters as their documents get written.
    resolver: super::dlq::Resolver,
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
            resolver: super::dlq::Resolver::new(dlq.clone(), &settings.index, &settings.job_id),
            store,
            dlq,
            breaker,
            progress,
            monitor: Mutex::new(monitor),
            settings,
            seq: AtomicU64::new(1 << 40),
            aborted: Mutex::new(None),
        }
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
        let mut item_round = 0u32;
        loop {
            if cancel.is_cancelled() {
                return self.abandon(&pending, on_failure, total, failed_out).await;
            }
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
            let result = self.store.bulk(&request).await;
            let latency = started.elapsed();
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
                            if self.pause(request_attempts, cancel).await.is_err() {
                                return self.abandon(&pending, on_failure, total, failed_out).await;
                            }
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
            let retry = self
                .settle_response(
                    &pending,
                    &response.items,
                    latency,
                    on_failure,
                    &mut total,
                    &mut failed_out,
                )
                .await?;
            if retry.is_empty() {
                return Ok((total, failed_out));
            }
            item_round += 1;
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            pending = pending.subset(seq, &retry);
            if self.pause(item_round, cancel).await.is_err() {
                return self.abandon(&pending, on_failure, total, failed_out).await;
            }
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

    /// Settles the items of one answered bulk request; returns the items to send again.
    async fn settle_response(
        &self,
        batch: &Batch,
        items: &[BulkItem],
        latency: Duration,
        on_failure: OnFailure,
        total: &mut Delivered,
        failed_out: &mut Vec<FailedItem>,
    ) -> Result<Vec<BatchItem>, SinkError> {
        let mut tally = BatchTally::default();
        let mut retry = Vec::new();
        let mut failed = Vec::new();
        let mut outcomes = Vec::with_capacity(recent_budget(batch.len()));
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
                    self.settings.item_max_retries,
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
                    if is_transient_status(status) {
                        tally.retried += 1;
                        if outcomes.len() < RECENT_PER_BATCH {
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
                        self.settings.item_max_retries,
                        &mut retry,
                        &mut failed,
                    );
                    None
                }
            };
            if let Some(outcome) = outcome
                && outcomes.len() < RECENT_PER_BATCH
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
        let successes = (tally.indexed + tally.updated) as usize;
        total.indexed += tally.indexed;
        total.updated += tally.updated;
        total.deleted += tally.deleted;
        self.progress.add_batch(&tally);
        self.progress.push_outcomes(outcomes);
        if self.resolver.is_active().await {
            let (indexed, deleted) = written_ids(batch, items);
            self.resolver.written(indexed, deleted).await;
        }
        let monitor_result = {
            let mut monitor = self.monitor.lock().unwrap_or_else(|p| p.into_inner());
            let errors: Vec<(String, String)> = failed
                .iter()
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
        Ok(retry)
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
            .take(RECENT_PER_BATCH)
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
        self.progress.push_outcomes(outcomes);
        if on_failure == OnFailure::Report {
            failed_out.extend(failed.into_iter().map(|(_, f)| f));
        }
        Ok(())
    }

    /// Exponential backoff with jitter before attempt `n` (1-based), cancellable.
    async fn pause(&self, n: u32, cancel: &CancellationToken) -> Result<(), SinkError> {
        let delay = backoff_delay(self.settings.retry_base, self.settings.retry_max, n);
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = cancel.cancelled() => Err(SinkError::Canceled),
        }
    }
}

/// At most this many outcomes per batch go to the live list: it shows a few hundred anyway,
/// and this keeps the hot path from cloning every id.
const RECENT_PER_BATCH: usize = 64;

fn recent_budget(n: usize) -> usize {
    n.min(RECENT_PER_BATCH)
}

/// The `n`th delay (1-based) of an exponential backoff with jitter, from `backon`.
pub fn backoff_delay(base: Duration, max: Duration, n: u32) -> Duration {
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(n as usize + 1)
        .build();
    let mut last = base;
    for _ in 0..n.max(1) {
        match delays.next() {
            Some(d) => last = d,
            None => break,
        }
    }
    last.min(max.saturating_mul(2))
}

fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

fn retry_or_fail(
    item: &BatchItem,
    kind: &str,
    reason: &str,
    status: Option<u16>,
    max_retries: u32,
    retry: &mut Vec<BatchItem>,
    failed: &mut Vec<(BatchItem, FailedItem)>,
) {
    let transient = status.is_none_or(is_transient_status);
    if transient && item.attempts < max_retries {
        retry.push(item.clone());
        return;
    }
    let reason = if transient {
        format!("gave up after {} attempts: {reason}", item.attempts + 1)
    } else {
        reason.to_string()
    };
    failed.push((
        item.clone(),
        FailedItem {
            id: item.id.clone(),
            error_type: kind.to_string(),
            reason,
            status,
        },
    ));
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
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for n in 1..12 {
            let d = backoff_delay(base, max, n);
            assert!(d <= max * 2, "attempt {n}: {d:?}");
        }
        assert!(backoff_delay(base, max, 1) >= base);
    }
}
