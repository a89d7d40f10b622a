//! Retrying dead letters by hand: stored documents go back through the same sink (breaker,
//! item retries) as they were sent; those that succeed leave the queue, the others stay with
//! their attempts increased and the new reason.

use super::batch::{BatchBuilder, BatchLimits};
use super::breaker::SharedBreaker;
use super::dlq::{DeadLetterStore, DlqError};
use super::monitor::{ErrorMonitor, MonitorSettings};
use super::progress::Progress;
use super::sink::{OnFailure, Sink, SinkError, SinkSettings};
use crate::backend::DocumentStore;
use crate::config::{BreakerSettings, EngineSettings};
use crate::model::DeadLetter;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetryReport {
    /// Entries indexed and removed from the queue.
    pub succeeded: Vec<i64>,
    /// Entries that failed again (they stay, attempts increased), with the new reason.
    pub failed: Vec<(i64, String)>,
}

#[derive(Debug, Error)]
pub enum RetryError {
    #[error(transparent)]
    Dlq(#[from] DlqError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Sends these dead letters again, index by index.
pub async fn retry_dead_letters(
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    engine: &EngineSettings,
    breaker: &BreakerSettings,
    cancel: &CancellationToken,
) -> Result<RetryReport, RetryError> {
    let mut report = RetryReport::default();
    let mut by_index: BTreeMap<String, Vec<DeadLetter>> = BTreeMap::new();
    for entry in entries {
        by_index.entry(entry.index.clone()).or_default().push(entry);
    }
    let shared_breaker = SharedBreaker::new(breaker.clone());
    for (index, entries) in by_index {
        let progress = Arc::new(Progress::new("dlq-retry", "dlq", &index));
        let sink = Sink::new(
            store.clone(),
            dlq.clone(),
            shared_breaker.clone(),
            progress,
            // A hand retry of known-bad documents must not trip on their error rate.
            ErrorMonitor::new(MonitorSettings {
                max_consecutive: u32::MAX,
                max_total: u64::MAX,
                max_rate: 1.1,
                ..MonitorSettings::default()
            }),
            SinkSettings {
                connector_id: String::new(),
                job_id: String::new(),
                index: index.clone(),
                pipeline: None,
                item_max_retries: engine.item_max_retries,
                request_max_attempts: engine.item_max_retries.max(3) * 2,
                retry_base: engine.retry_base,
                retry_max: engine.retry_max,
            },
        );
        let limits = BatchLimits {
            max_docs: engine.batch_max_docs,
            max_bytes: engine.batch_max_bytes,
        };
        let mut builder = BatchBuilder::new(limits, None);
        let mut batches = Vec::new();
        // Several entries of one document id cannot be told apart in a batch: the queue
        // dedupes by (connector, index, doc id), so ids within one index are unique enough.
        let mut ids: HashMap<String, i64> = HashMap::new();
        for entry in &entries {
            ids.insert(entry.doc_id.clone(), entry.id);
            let cut = if entry.document.is_null() {
                builder.push_delete(entry.doc_id.clone())
            } else {
                let source = serde_json::to_vec(&entry.document).unwrap_or_default();
                builder.push_raw_index(entry.doc_id.clone(), &source)
            };
            batches.extend(cut);
        }
        batches.extend(builder.flush());
        for batch in batches {
            let sent: Vec<String> = batch.items.iter().map(|i| i.id.clone()).collect();
            let (_, failed) = sink.deliver_with(batch, cancel, OnFailure::Report).await?;
            let failed_ids: HashMap<&str, &super::sink::FailedItem> =
                failed.iter().map(|f| (f.id.as_str(), f)).collect();
            let mut ok = Vec::new();
            for doc_id in &sent {
                let Some(&entry_id) = ids.get(doc_id) else {
                    continue;
                };
                match failed_ids.get(doc_id.as_str()) {
                    Some(f) => {
                        let (dlq, kind, reason, status) = (
                            dlq.clone(),
                            f.error_type.clone(),
                            f.reason.clone(),
                            f.status,
                        );
                        tokio::task::spawn_blocking(move || {
                            dlq.record_failure(entry_id, &kind, &reason, status)
                        })
                        .await
                        .map_err(|e| DlqError::Internal(e.to_string()))??;
                        report.failed.push((entry_id, f.reason.clone()));
                    }
                    None => ok.push(entry_id),
                }
            }
            let dlq2 = dlq.clone();
            let removing = ok.clone();
            tokio::task::spawn_blocking(move || dlq2.remove(&removing))
                .await
                .map_err(|e| DlqError::Internal(e.to_string()))??;
            report.succeeded.extend(ok);
        }
    }
    Ok(report)
}
