//! Retrying dead letters by hand: stored documents go back through the same sink (breaker,
//! item retries) as they were sent. Those that succeed are resolved (kept as history), the
//! others stay open with their attempts increased and the new reason.
//!
//! Two guards come first, so a retry can never damage data: every entry must come from the
//! cluster the queue handle is bound to (an entry is never written into another cluster, nor
//! one of unknown origin into any), and an entry whose document the index already holds in a
//! newer version (a later `_timestamp`) is marked `superseded` and not sent.

use super::batch::{BatchBuilder, BatchLimits};
use super::breaker::SharedBreaker;
use super::dlq::{DeadLetterStore, DlqError};
use super::monitor::{ErrorMonitor, MonitorSettings};
use super::progress::Progress;
use super::sink::{OnFailure, Sink, SinkError, SinkSettings};
use crate::backend::DocumentStore;
use crate::config::{BreakerSettings, EngineSettings};
use crate::model::{DeadLetter, DeadLetterState, Origin};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// How many documents are read back from the index at once to look for newer versions.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetryReport {
    /// Entries indexed and resolved (kept as history, no longer open).
    pub succeeded: Vec<i64>,
    /// Entries that failed again (they stay, attempts increased), with the new reason.
    pub failed: Vec<(i64, String)>,
    /// Entries not sent because the index holds a newer version, with what was compared.
    pub superseded: Vec<(i64, String)>,
}

#[derive(Debug, Error)]
pub enum RetryError {
    #[error(transparent)]
    Dlq(#[from] DlqError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The queue handle does not know which cluster it writes into.
    #[error(
        "the dead-letter queue is not bound to a cluster, so no entry can be checked against \
         it; nothing was sent"
    )]
    Unbound,
    /// An entry came from another cluster than the one this retry would write into.
    #[error(
        "dead letter {id} came from cluster {entry}, but this profile writes to cluster \
         {target}: retry it with a profile of its own cluster (nothing was sent)"
    )]
    WrongCluster {
        id: i64,
        entry: Box<Origin>,
        target: Box<Origin>,
    },
    /// An entry's cluster is not known (written before syncdeck recorded clusters).
    #[error(
        "dead letter {id} is of unknown origin (written before syncdeck recorded clusters), so \
         it cannot be retried safely into cluster {target}; `syncdeck dlq show {id} \
         --all-clusters` shows its document, `syncdeck dlq drop {id} --yes` removes it \
         (nothing was sent)"
    )]
    UnknownOrigin { id: i64, target: Box<Origin> },
    /// An entry is no longer open.
    #[error("dead letter {id} is {state} ({why}): there is nothing to retry (nothing was sent)")]
    Closed {
        id: i64,
        state: DeadLetterState,
        why: String,
    },
}

/// Refuses the whole retry when any entry may not be written into the handle's cluster.
pub fn check_entries(dlq: &DeadLetterStore, entries: &[DeadLetter]) -> Result<(), RetryError> {
    if !dlq.is_bound() {
        return Err(RetryError::Unbound);
    }
    let target = Box::new(dlq.origin());
    for entry in entries {
        if entry.origin.is_unknown() {
            return Err(RetryError::UnknownOrigin {
                id: entry.id,
                target,
            });
        }
        if entry.origin.cluster_uuid != target.cluster_uuid {
            return Err(RetryError::WrongCluster {
                id: entry.id,
                entry: Box::new(entry.origin.clone()),
                target,
            });
        }
        if entry.state != DeadLetterState::Open {
            return Err(RetryError::Closed {
                id: entry.id,
                state: entry.state,
                why: entry.resolution.clone().unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Sends these dead letters again, index by index, after [`check_entries`] and the
/// newer-version check.
pub async fn retry_dead_letters(
    store: Arc<dyn DocumentStore>,
    dlq: Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    engine: &EngineSettings,
    breaker: &BreakerSettings,
    cancel: &CancellationToken,
) -> Result<RetryReport, RetryError> {
    check_entries(&dlq, &entries)?;
    let mut report = RetryReport::default();
    let entries = skip_superseded(store.as_ref(), &dlq, entries, &mut report).await?;
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
        // The profile's request slots and 429 budget, as a sync's sink has them.
        sink.configure(engine);
        let limits = BatchLimits {
            max_docs: engine.batch_max_docs,
            max_bytes: engine.batch_max_bytes,
        };
        let mut builder = BatchBuilder::new(limits, None);
        let mut batches = Vec::new();
        // Several entries of one document id cannot be told apart in a batch: the queue
        // keeps one open entry per (cluster, index, doc id, connector), and entries of two
        // connectors for one document are the same write.
        let mut ids: HashMap<String, Vec<i64>> = HashMap::new();
        for entry in &entries {
            let same = ids.entry(entry.doc_id.clone()).or_default();
            same.push(entry.id);
            if same.len() > 1 {
                continue;
            }
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
                let Some(entry_ids) = ids.get(doc_id) else {
                    continue;
                };
                match failed_ids.get(doc_id.as_str()) {
                    Some(f) => {
                        for &entry_id in entry_ids {
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
                    }
                    None => ok.extend(entry_ids.iter().copied()),
                }
            }
            // The sink's resolver may have closed them already; closing is idempotent.
            let dlq2 = dlq.clone();
            let closing = ok.clone();
            tokio::task::spawn_blocking(move || {
                dlq2.close(
                    &closing,
                    DeadLetterState::Resolved,
                    "indexed by a retry of its dead letter",
                )
            })
            .await
            .map_err(|e| DlqError::Internal(e.to_string()))??;
            report.succeeded.extend(ok);
        }
    }
    Ok(report)
}

/// Reads back, from the index, the documents whose dead letter carries a `_timestamp`, and
/// marks `superseded` (without sending) every entry the index holds a newer version of.
/// A document that cannot be read back is not sent either: it is reported as failed, its
/// entry left as it was.
async fn skip_superseded(
    store: &dyn DocumentStore,
    dlq: &Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    report: &mut RetryReport,
) -> Result<Vec<DeadLetter>, RetryError> {
    let checks = futures_util::stream::iter(entries.into_iter().map(|entry| async move {
        let verdict = match entry_timestamp(&entry.document) {
            None => Ok(None),
            Some(ours) => store
                .get_document(&entry.index, &entry.doc_id)
                .await
                .map(|current| newer_version(ours, current.as_ref())),
        };
        (entry, verdict)
    }))
    .buffered(LOOKUPS_IN_FLIGHT)
    .collect::<Vec<_>>()
    .await;
    let mut keep = Vec::new();
    let mut superseded: Vec<(i64, String)> = Vec::new();
    for (entry, verdict) in checks {
        match verdict {
            Ok(None) => keep.push(entry),
            Ok(Some(why)) => superseded.push((entry.id, why)),
            Err(e) => report.failed.push((
                entry.id,
                format!("not sent: could not read the indexed version to compare: {e}"),
            )),
        }
    }
    for (id, why) in &superseded {
        let (dlq, id, why) = (dlq.clone(), *id, why.clone());
        tokio::task::spawn_blocking(move || dlq.close(&[id], DeadLetterState::Superseded, &why))
            .await
            .map_err(|e| DlqError::Internal(e.to_string()))??;
    }
    report.superseded.extend(superseded);
    Ok(keep)
}

fn entry_timestamp(document: &Value) -> Option<&str> {
    document.get("_timestamp").and_then(Value::as_str)
}

/// `Some(why)` when `current` (the indexed document) is newer than a dead letter stamped
/// `ours`. Timestamps are compared as instants when both parse as RFC 3339, else as text
/// when neither does (same-format stamps sort as text); otherwise nothing is known newer.
fn newer_version(ours: &str, current: Option<&Value>) -> Option<String> {
    let theirs = current.and_then(entry_timestamp)?;
    let newer = match (
        chrono::DateTime::parse_from_rfc3339(ours),
        chrono::DateTime::parse_from_rfc3339(theirs),
    ) {
        (Ok(a), Ok(b)) => b > a,
        (Err(_), Err(_)) => theirs > ours,
        _ => false,
    };
    newer.then(|| {
        format!("the index holds a newer version (_timestamp {theirs}, this entry's is {ours})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_later_timestamp_supersedes() {
        let doc = |ts: &str| json!({"id": "a", "_timestamp": ts});
        let old = "2024-01-01T00:00:00Z";
        assert!(newer_version(old, Some(&doc("2024-01-02T00:00:00Z"))).is_some());
        // Same instant written with another offset: not newer.
        assert!(newer_version(old, Some(&doc("2024-01-01T01:00:00+01:00"))).is_none());
        assert!(newer_version(old, Some(&doc("2023-12-31T00:00:00Z"))).is_none());
        assert!(newer_version(old, None).is_none());
        assert!(newer_version(old, Some(&json!({"id": "a"}))).is_none());
        // Unparseable on one side only: nothing is known.
        assert!(newer_version(old, Some(&doc("tomorrow"))).is_none());
        assert!(newer_version("v1", Some(&doc("v2"))).is_some());
    }
}
