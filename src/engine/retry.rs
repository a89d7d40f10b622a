//! Retrying dead letters by hand: stored documents go back through the same sink (breaker,
//! item retries) as they were sent. Those that succeed are resolved (kept as history), the
//! others stay open with their attempts increased and the new reason.
//!
//! Two guards come first, so a retry can never damage data: every entry must come from the
//! cluster the queue handle is bound to (an entry is never written into another cluster, nor
//! one of unknown origin into any), and an entry the index holds newer data for is marked
//! `superseded` and not sent:
//! - a document with a `_timestamp`: the indexed version has a later one;
//! - a document without one, or a delete: a full sync of the entry's connector into its index
//!   started after the job in which the entry last failed (both start times from the control
//!   plane, one clock; that job itself never counts, and when it is unknown nothing is known
//!   newer), completed, and read its source cleanly (no `deletions_skipped`). That sync read the whole source after
//!   the failure, and wrote the document (a newer version), failed it again (which would have
//!   refreshed the entry, so it would not count), or deleted it as gone: either way what the
//!   index holds is newer than the entry. (Incremental syncs do not count: one that did not
//!   touch the document left the version before the failure in place.)
//!
//! Entries of several connectors for one document id in one index are one document, looked
//! up in the whole queue (not only the selection): only the one that failed last (the newest
//! write) is sent, and once it is written the others are `superseded` by it; an entry another
//! connector's resolved entry (a write or delete of that connector) came after is
//! `superseded`; an entry another connector's open entry failed after is not sent unless that
//! one is retried with it. Each entry is resolved only by a write of its own (see
//! `DeadLetterStore::resolve_documents`): a full sync of any connector into the index counts
//! for the comparison above.

use super::batch::{BatchBuilder, BatchLimits};
use super::breaker::SharedBreaker;
use super::dlq::{DeadLetterStore, DlqError};
use super::monitor::{ErrorMonitor, MonitorSettings};
use super::progress::Progress;
use super::sink::{OnFailure, Sink, SinkError, SinkSettings};
use crate::backend::{ControlPlane, DocumentStore, SyncJobQuery};
use crate::config::{BreakerSettings, EngineSettings};
use crate::model::{DeadLetter, DeadLetterState, JobStatus, JobType, Origin, SyncJob};
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
/// newer-version checks (the index through `store`, the connectors' sync jobs through
/// `control`).
pub async fn retry_dead_letters(
    store: Arc<dyn DocumentStore>,
    control: &dyn ControlPlane,
    dlq: Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    engine: &EngineSettings,
    breaker: &BreakerSettings,
    cancel: &CancellationToken,
) -> Result<RetryReport, RetryError> {
    check_entries(&dlq, &entries)?;
    let mut report = RetryReport::default();
    let entries = skip_superseded(store.as_ref(), control, &dlq, entries, &mut report).await?;
    let entries = skip_overwritten_by_others(&dlq, entries, &mut report).await?;
    let (entries, shadowed) = newest_per_document(entries);
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
        // One entry per document id here (see `newest_per_document`).
        let mut ids: HashMap<String, Vec<i64>> = HashMap::new();
        for entry in &entries {
            ids.entry(entry.doc_id.clone()).or_default().push(entry.id);
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
    close_shadowed(&dlq, shadowed, &mut report).await?;
    Ok(report)
}

/// Looks, for every entry, at the other connectors' entries for the same document in the
/// store (outside the selection too):
/// - one resolved (written or deleted by that connector, by a sync or a retry) after this
///   entry last failed: the index holds a newer write, this entry is `superseded`;
/// - one still open that failed later and is not part of this retry: it is the newest write
///   of the document, so this one is not sent (left open, reported as failed) until that
///   one is written.
///
/// Entries of the selection that shadow each other are left to `newest_per_document`.
async fn skip_overwritten_by_others(
    dlq: &Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    report: &mut RetryReport,
) -> Result<Vec<DeadLetter>, RetryError> {
    let selected: std::collections::HashSet<i64> = entries.iter().map(|e| e.id).collect();
    let mut keep = Vec::new();
    for entry in entries {
        let (store, index, doc_id) = (dlq.clone(), entry.index.clone(), entry.doc_id.clone());
        let others = tokio::task::spawn_blocking(move || store.of_document(&index, &doc_id))
            .await
            .map_err(|e| DlqError::Internal(e.to_string()))??;
        let others: Vec<&DeadLetter> = others
            .iter()
            .filter(|o| o.connector_id != entry.connector_id && o.id != entry.id)
            .collect();
        let written_later = others.iter().find(|o| {
            o.state == DeadLetterState::Resolved
                && o.resolved_at.is_some_and(|t| t > entry.last_failed_at)
        });
        if let Some(o) = written_later {
            let why = format!(
                "the index holds a newer write of this document: connector '{}' wrote it after                  this entry last failed ({})",
                o.connector_id,
                o.resolution.clone().unwrap_or_default()
            );
            let (store, id, reason) = (dlq.clone(), entry.id, why.clone());
            tokio::task::spawn_blocking(move || {
                store.close(&[id], DeadLetterState::Superseded, &reason)
            })
            .await
            .map_err(|e| DlqError::Internal(e.to_string()))??;
            report.superseded.push((entry.id, why));
            continue;
        }
        let open_later = others.iter().find(|o| {
            o.state == DeadLetterState::Open
                && !selected.contains(&o.id)
                && (o.last_failed_at, o.id) > (entry.last_failed_at, entry.id)
        });
        if let Some(o) = open_later {
            report.failed.push((
                entry.id,
                format!(
                    "not sent: dead letter {} of the same document (connector '{}') failed                      later and is open; it is the newest write: retry it",
                    o.id, o.connector_id
                ),
            ));
            continue;
        }
        keep.push(entry);
    }
    Ok(keep)
}

/// An entry left out because another entry of the same document (index and id) failed
/// later: the one sent.
struct Shadowed {
    entry: DeadLetter,
    by: DeadLetter,
}

/// Keeps, per (index, document id), the entry that failed last (then the highest id); the
/// others are returned with the entry that shadows them.
fn newest_per_document(entries: Vec<DeadLetter>) -> (Vec<DeadLetter>, Vec<Shadowed>) {
    let mut newest: BTreeMap<(String, String), DeadLetter> = BTreeMap::new();
    let mut older = Vec::new();
    for entry in entries {
        let key = (entry.index.clone(), entry.doc_id.clone());
        match newest.remove(&key) {
            None => {
                newest.insert(key, entry);
            }
            Some(kept) => {
                let (keep, drop) =
                    if (entry.last_failed_at, entry.id) > (kept.last_failed_at, kept.id) {
                        (entry, kept)
                    } else {
                        (kept, entry)
                    };
                older.push(drop);
                newest.insert(key, keep);
            }
        }
    }
    let shadowed = older
        .into_iter()
        .filter_map(|entry| {
            let by = newest
                .get(&(entry.index.clone(), entry.doc_id.clone()))?
                .clone();
            Some(Shadowed { entry, by })
        })
        .collect();
    (newest.into_values().collect(), shadowed)
}

/// An entry shadowed by a newer one of the same document is superseded once that one was
/// written; while it was not, the entry stays open, not sent.
async fn close_shadowed(
    dlq: &Arc<DeadLetterStore>,
    shadowed: Vec<Shadowed>,
    report: &mut RetryReport,
) -> Result<(), RetryError> {
    for Shadowed { entry, by } in shadowed {
        if !report.succeeded.contains(&by.id) {
            report.failed.push((
                entry.id,
                format!(
                    "not sent: dead letter {} of the same document (connector '{}'), which failed \
                     later, was not written",
                    by.id, by.connector_id
                ),
            ));
            continue;
        }
        let why = format!(
            "the index holds a newer write of this document: dead letter {} of connector '{}', \
             which failed later, was retried",
            by.id, by.connector_id
        );
        let (dlq, id, reason) = (dlq.clone(), entry.id, why.clone());
        tokio::task::spawn_blocking(move || dlq.close(&[id], DeadLetterState::Superseded, &reason))
            .await
            .map_err(|e| DlqError::Internal(e.to_string()))??;
        report.superseded.push((entry.id, why));
    }
    Ok(())
}

/// Marks `superseded` (without sending) every entry the index holds newer data for (see
/// the module doc): documents with a `_timestamp` are read back from the index; the others,
/// and deletes, are compared with the completed full syncs of their connector. An entry
/// that cannot be compared is not sent either: it is reported as failed, left as it was.
async fn skip_superseded(
    store: &dyn DocumentStore,
    control: &dyn ControlPlane,
    dlq: &Arc<DeadLetterStore>,
    entries: Vec<DeadLetter>,
    report: &mut RetryReport,
) -> Result<Vec<DeadLetter>, RetryError> {
    let mut full_syncs: HashMap<String, Result<Vec<SyncJob>, String>> = HashMap::new();
    let mut failing_jobs: HashMap<String, Result<Option<SyncJob>, String>> = HashMap::new();
    for entry in &entries {
        if entry_timestamp(&entry.document).is_some() {
            continue;
        }
        if !full_syncs.contains_key(&entry.connector_id) {
            let jobs = completed_full_syncs(control, &entry.connector_id).await;
            full_syncs.insert(entry.connector_id.clone(), jobs);
        }
        if !failing_jobs.contains_key(&entry.job_id) {
            let job = failing_job(control, &entry.job_id).await;
            failing_jobs.insert(entry.job_id.clone(), job);
        }
    }
    // Another connector's full sync into the same index wrote (or deleted) the document too.
    let any_full_syncs = if failing_jobs.is_empty() {
        Ok(Vec::new())
    } else {
        completed_full_syncs_of(control, None).await
    };
    let (full_syncs, failing_jobs, any_full_syncs) = (&full_syncs, &failing_jobs, &any_full_syncs);
    let checks = futures_util::stream::iter(entries.into_iter().map(|entry| async move {
        let verdict = match entry_timestamp(&entry.document) {
            None => match (
                full_syncs.get(&entry.connector_id),
                failing_jobs.get(&entry.job_id),
            ) {
                (Some(Ok(jobs)), Some(Ok(failed_in))) => match any_full_syncs {
                    Ok(others) => {
                        let jobs: Vec<SyncJob> = jobs.iter().chain(others).cloned().collect();
                        Ok(later_full_sync(&entry, failed_in.as_ref(), &jobs))
                    }
                    Err(e) => Err(format!(
                        "not sent: could not read the sync jobs of index '{}' to compare: {e}",
                        entry.index
                    )),
                },
                (Some(Err(e)), _) => Err(format!(
                    "not sent: could not read the sync jobs of connector '{}' to compare: {e}",
                    entry.connector_id
                )),
                (_, Some(Err(e))) => Err(format!(
                    "not sent: could not read sync job '{}', in which it failed, to compare: {e}",
                    entry.job_id
                )),
                _ => Ok(None),
            },
            Some(ours) => store
                .get_document(&entry.index, &entry.doc_id)
                .await
                .map(|current| newer_version(ours, current.as_ref()))
                .map_err(|e| {
                    format!("not sent: could not read the indexed version to compare: {e}")
                }),
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
            Err(why) => report.failed.push((entry.id, why)),
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

/// How many of a connector's latest completed full syncs are looked at.
const FULL_SYNCS_LOOKED_AT: u64 = 20;

/// How many of the latest completed full syncs of any connector are looked at (another
/// connector may write the entry's index).
const ANY_FULL_SYNCS_LOOKED_AT: u64 = 100;

/// The connector's latest completed full syncs (the list is newest first).
async fn completed_full_syncs(
    control: &dyn ControlPlane,
    connector_id: &str,
) -> Result<Vec<SyncJob>, String> {
    if connector_id.is_empty() {
        return Ok(Vec::new());
    }
    completed_full_syncs_of(control, Some(connector_id)).await
}

/// The latest completed full syncs of one connector, or of all (`None`), newest first.
async fn completed_full_syncs_of(
    control: &dyn ControlPlane,
    connector_id: Option<&str>,
) -> Result<Vec<SyncJob>, String> {
    let query = SyncJobQuery {
        connector_id: connector_id.map(str::to_string),
        status: Some(JobStatus::Completed),
        job_types: vec![JobType::Full],
        size: Some(if connector_id.is_some() {
            FULL_SYNCS_LOOKED_AT
        } else {
            ANY_FULL_SYNCS_LOOKED_AT
        }),
        ..Default::default()
    };
    match control.list_sync_jobs(&query).await {
        Ok(page) => Ok(page.results),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// The sync job in which an entry last failed, read from the control plane: its timestamps
/// are on the same clock (the cluster's) as those of the full syncs it is compared with.
/// `None` when it is not known (no job id, or the job was deleted).
async fn failing_job(control: &dyn ControlPlane, job_id: &str) -> Result<Option<SyncJob>, String> {
    if job_id.is_empty() {
        return Ok(None);
    }
    match control.get_sync_job(job_id).await {
        Ok(job) => Ok(Some(job)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `Some(why)` when one of `jobs` (completed full syncs of the entry's connector, or of any
/// connector that wrote the entry's index) wrote the entry's index and started after `failed_in`, the job in which the entry last failed.
///
/// Both start times are the control plane's (never the worker's clock, which may be behind:
/// then the very job the document failed in would look later than the failure). A job whose
/// source reported unreadable records (`deletions_skipped` in its metadata) does not count:
/// it may neither have written the document nor deleted it. When the failing job is not known,
/// nothing is known newer (the entry is not superseded).
fn later_full_sync(
    entry: &DeadLetter,
    failed_in: Option<&SyncJob>,
    jobs: &[SyncJob],
) -> Option<String> {
    let failed_in = failed_in?;
    let failed_at = failed_in.started_at.or(failed_in.created_at)?;
    let job = jobs.iter().find(|job| {
        job.status == JobStatus::Completed
            && job.job_type == JobType::Full
            && job.id != entry.job_id
            && job.id != failed_in.id
            && !job.metadata.contains_key("deletions_skipped")
            && job.connector.index_name.as_deref() == Some(entry.index.as_str())
            && job.started_at.is_some_and(|t| t > failed_at)
    })?;
    let when = |t: Option<crate::model::Timestamp>| {
        t.map(|t| t.0.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default()
    };
    let what = if entry.document.is_null() {
        "delete"
    } else {
        "document (it has no _timestamp to compare)"
    };
    Some(format!(
        "the index holds newer data: full sync job '{}' started at {}, after job '{}' in which \
         this {what} last failed (started at {}), and completed; it wrote or deleted the \
         document as the source then had it",
        job.id,
        when(job.started_at),
        failed_in.id,
        when(Some(failed_at)),
    ))
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
