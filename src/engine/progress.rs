//! Live progress of one sync: lock-free counters the pipeline bumps per batch, a ring buffer
//! of the last few hundred per-document outcomes, per-second rate samples for sparklines, and
//! [`ProgressSnapshot`]s that UIs (the console, `sync --watch`, `/status`) read at their own
//! frame rate. The engine never waits for a reader.

use crate::model::Timestamp;
use crate::sources::SourceNotes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many per-document outcomes a snapshot keeps.
pub const RECENT_CAPACITY: usize = 300;
/// How many one-second rate samples are kept (two minutes of sparkline).
pub const RATE_SAMPLES: usize = 120;

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Indexed,
    Updated,
    Deleted,
    Retried,
    DeadLettered,
    /// Excluded by sync rules or unchanged since the last sync.
    Skipped,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Indexed => "indexed",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Retried => "retried",
            Self::DeadLettered => "dead-lettered",
            Self::Skipped => "skipped",
        }
    }
}

/// One line of the live document list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocOutcome {
    pub id: String,
    pub outcome: Outcome,
    pub bytes: u64,
    /// Time of the bulk request that carried it.
    pub latency_ms: u64,
    /// Set for retries and dead letters.
    pub reason: Option<String>,
}

/// The phase a job is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Starting,
    Extracting,
    /// Full sync: removing documents the source no longer has.
    Deleting,
    Finishing,
    Completed,
    Canceled,
    Failed,
}

impl Phase {
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Completed | Self::Canceled | Self::Failed)
    }
}

/// Plain counters, as a snapshot carries them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Documents received from the source.
    pub seen: u64,
    pub indexed: u64,
    pub updated: u64,
    pub deleted: u64,
    pub dead_lettered: u64,
    /// Item retries (one document may be retried several times).
    pub retried: u64,
    pub skipped: u64,
    /// Bytes of document bodies sent.
    pub bytes: u64,
    pub bulk_requests: u64,
    pub bulk_failures: u64,
}

impl Counters {
    /// Documents whose fate is settled.
    pub fn handled(&self) -> u64 {
        self.indexed + self.updated + self.dead_lettered + self.skipped
    }
}

#[derive(Default)]
struct AtomicCounters {
    seen: AtomicU64,
    indexed: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
    dead_lettered: AtomicU64,
    retried: AtomicU64,
    skipped: AtomicU64,
    bytes: AtomicU64,
    bulk_requests: AtomicU64,
    bulk_failures: AtomicU64,
    in_flight: AtomicU64,
    queue_bytes: AtomicU64,
    queue_docs: AtomicU64,
    latency_sum_ms: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// Upper bounds (ms) of the bulk latency histogram buckets; one more bucket holds the rest.
pub const LATENCY_BUCKETS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// A per-second sample for sparklines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RateSample {
    pub docs_per_sec: f64,
    pub bytes_per_sec: f64,
}

struct Slow {
    recent: VecDeque<DocOutcome>,
    rates: VecDeque<RateSample>,
    last_sample: Option<(Instant, Counters)>,
    phase: Phase,
    error: Option<String>,
    total_hint: Option<u64>,
    breaker: Option<serde_json::Value>,
    finished_at: Option<Instant>,
}

/// The live progress of one job. Shared (`Arc`) between the pipeline and any readers.
pub struct Progress {
    pub job_id: String,
    pub connector_id: String,
    pub index: String,
    pub started_at: Timestamp,
    started: Instant,
    counters: AtomicCounters,
    slow: Mutex<Slow>,
    /// The source's own report (tables, rows per table), for the job's metadata.
    source_notes: Mutex<Option<Arc<dyn SourceNotes>>>,
}

/// What a reader sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    pub job_id: String,
    pub connector_id: String,
    pub index: String,
    pub started_at: Timestamp,
    pub elapsed_ms: u64,
    pub phase: Phase,
    pub error: Option<String>,
    pub counters: Counters,
    /// Documents the source said it has, when known.
    pub total_hint: Option<u64>,
    pub in_flight: u64,
    pub queue_bytes: u64,
    pub queue_docs: u64,
    /// Over the last sample second.
    pub docs_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Over the whole job.
    pub avg_docs_per_sec: f64,
    pub avg_bulk_latency_ms: f64,
    /// Remaining time at the average rate, when the total is known.
    pub eta_ms: Option<u64>,
    pub rates: Vec<RateSample>,
    /// The sink's circuit breaker, as its own snapshot type serialises it.
    pub breaker: Option<serde_json::Value>,
    pub recent: Vec<DocOutcome>,
}

impl Progress {
    pub fn new(
        job_id: impl Into<String>,
        connector_id: impl Into<String>,
        index: impl Into<String>,
    ) -> Self {
        Self {
            job_id: job_id.into(),
            connector_id: connector_id.into(),
            index: index.into(),
            started_at: Timestamp::now(),
            started: Instant::now(),
            counters: AtomicCounters::default(),
            slow: Mutex::new(Slow {
                recent: VecDeque::with_capacity(RECENT_CAPACITY),
                rates: VecDeque::with_capacity(RATE_SAMPLES),
                last_sample: None,
                phase: Phase::Starting,
                error: None,
                total_hint: None,
                breaker: None,
                finished_at: None,
            }),
            source_notes: Mutex::new(None),
        }
    }

    /// Keeps the source's report, to be read by [`Progress::source_metadata`].
    pub fn set_source_notes(&self, notes: Option<Arc<dyn SourceNotes>>) {
        *self.source_notes.lock().unwrap_or_else(|p| p.into_inner()) = notes;
    }

    /// What the source reports about its sync so far, when it reports anything.
    pub fn source_metadata(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let notes = self
            .source_notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let metadata = notes.metadata();
        (!metadata.is_empty()).then_some(metadata)
    }

    pub fn add_seen(&self, n: u64) {
        self.counters.seen.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_skipped(&self, n: u64) {
        self.counters.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts the items of one bulk response.
    pub fn add_batch(&self, b: &BatchTally) {
        let c = &self.counters;
        c.indexed.fetch_add(b.indexed, Ordering::Relaxed);
        c.updated.fetch_add(b.updated, Ordering::Relaxed);
        c.deleted.fetch_add(b.deleted, Ordering::Relaxed);
        c.dead_lettered
            .fetch_add(b.dead_lettered, Ordering::Relaxed);
        c.retried.fetch_add(b.retried, Ordering::Relaxed);
        c.bytes.fetch_add(b.bytes, Ordering::Relaxed);
    }

    pub fn bulk_done(&self, latency: Duration, failed: bool) {
        self.counters.bulk_requests.fetch_add(1, Ordering::Relaxed);
        let ms = latency.as_millis() as u64;
        self.counters
            .latency_sum_ms
            .fetch_add(ms, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.counters.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        if failed {
            self.counters.bulk_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One more (`1`) or one fewer (`-1`) bulk request in flight.
    pub fn set_in_flight_delta(&self, delta: i64) {
        if delta >= 0 {
            self.counters
                .in_flight
                .fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            let _ =
                self.counters
                    .in_flight
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                        Some(v.saturating_sub(delta.unsigned_abs()))
                    });
        }
    }

    pub fn set_queue(&self, bytes: u64, docs: u64) {
        self.counters.queue_bytes.store(bytes, Ordering::Relaxed);
        self.counters.queue_docs.store(docs, Ordering::Relaxed);
    }

    /// Appends outcomes to the ring buffer (one lock per batch, not per document).
    pub fn push_outcomes(&self, outcomes: impl IntoIterator<Item = DocOutcome>) {
        let mut slow = self.lock();
        for o in outcomes {
            if slow.recent.len() == RECENT_CAPACITY {
                slow.recent.pop_front();
            }
            slow.recent.push_back(o);
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        let mut slow = self.lock();
        slow.phase = phase;
        if phase.is_done() && slow.finished_at.is_none() {
            slow.finished_at = Some(Instant::now());
        }
    }

    pub fn set_error(&self, error: impl Into<String>) {
        self.lock().error = Some(error.into());
    }

    pub fn set_total_hint(&self, total: Option<u64>) {
        self.lock().total_hint = total;
    }

    pub fn set_breaker(&self, breaker: serde_json::Value) {
        self.lock().breaker = Some(breaker);
    }

    pub fn counters(&self) -> Counters {
        let c = &self.counters;
        Counters {
            seen: c.seen.load(Ordering::Relaxed),
            indexed: c.indexed.load(Ordering::Relaxed),
            updated: c.updated.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            bulk_requests: c.bulk_requests.load(Ordering::Relaxed),
            bulk_failures: c.bulk_failures.load(Ordering::Relaxed),
        }
    }

    /// Bulk requests per latency bucket (not cumulative), `LATENCY_BUCKETS_MS` then the rest.
    pub fn latency_histogram(&self) -> Vec<u64> {
        self.counters
            .latency_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// Sum of bulk request latencies in milliseconds.
    pub fn latency_sum_ms(&self) -> u64 {
        self.counters.latency_sum_ms.load(Ordering::Relaxed)
    }

    /// Records a rate sample; the runner calls it about once a second.
    pub fn sample(&self, now: Instant) {
        let counters = self.counters();
        let mut slow = self.lock();
        if let Some((at, before)) = slow.last_sample {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if secs > 0.0 {
                let docs =
                    (counters.handled() + counters.deleted) - (before.handled() + before.deleted);
                let sample = RateSample {
                    docs_per_sec: docs as f64 / secs,
                    bytes_per_sec: counters.bytes.saturating_sub(before.bytes) as f64 / secs,
                };
                if slow.rates.len() == RATE_SAMPLES {
                    slow.rates.pop_front();
                }
                slow.rates.push_back(sample);
            }
        }
        slow.last_sample = Some((now, counters));
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let counters = self.counters();
        let slow = self.lock();
        let end = slow.finished_at.unwrap_or_else(Instant::now);
        let elapsed = end.saturating_duration_since(self.started);
        let secs = elapsed.as_secs_f64().max(0.001);
        let done = counters.handled() as f64;
        let avg = done / secs;
        let eta_ms = slow.total_hint.and_then(|total| {
            let left = total.saturating_sub(counters.handled());
            (avg > 0.0 && !slow.phase.is_done()).then(|| (left as f64 / avg * 1000.0) as u64)
        });
        let last = slow.rates.back().copied().unwrap_or_default();
        let requests = counters.bulk_requests.max(1);
        ProgressSnapshot {
            job_id: self.job_id.clone(),
            connector_id: self.connector_id.clone(),
            index: self.index.clone(),
            started_at: self.started_at,
            elapsed_ms: elapsed.as_millis() as u64,
            phase: slow.phase,
            error: slow.error.clone(),
            counters,
            total_hint: slow.total_hint,
            in_flight: self.counters.in_flight.load(Ordering::Relaxed),
            queue_bytes: self.counters.queue_bytes.load(Ordering::Relaxed),
            queue_docs: self.counters.queue_docs.load(Ordering::Relaxed),
            docs_per_sec: last.docs_per_sec,
            bytes_per_sec: last.bytes_per_sec,
            avg_docs_per_sec: avg,
            avg_bulk_latency_ms: self.counters.latency_sum_ms.load(Ordering::Relaxed) as f64
                / requests as f64,
            eta_ms,
            rates: slow.rates.iter().copied().collect(),
            breaker: slow.breaker.clone(),
            recent: slow.recent.iter().cloned().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slow> {
        // A reader that panicked while holding the lock must not stop the sync.
        self.slow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The tally of one bulk response, added to the counters at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTally {
    pub indexed: u64,
    pub updated: u64,
    pub deleted: u64,
    pub dead_lettered: u64,
    pub retried: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_rates_and_ring_buffer() {
        let p = Progress::new("j", "c", "i");
        p.set_total_hint(Some(100));
        p.add_seen(10);
        let t0 = Instant::now();
        p.sample(t0);
        p.add_batch(&BatchTally {
            indexed: 8,
            dead_lettered: 2,
            bytes: 1000,
            ..Default::default()
        });
        p.sample(t0 + Duration::from_secs(2));
        for i in 0..(RECENT_CAPACITY + 5) {
            p.push_outcomes([DocOutcome {
                id: format!("d{i}"),
                outcome: Outcome::Indexed,
                bytes: 1,
                latency_ms: 1,
                reason: None,
            }]);
        }
        let s = p.snapshot();
        assert_eq!(s.counters.handled(), 10);
        assert_eq!(s.rates.len(), 1);
        assert!((s.docs_per_sec - 5.0).abs() < 1e-9);
        assert!((s.bytes_per_sec - 500.0).abs() < 1e-9);
        assert_eq!(s.recent.len(), RECENT_CAPACITY);
        assert_eq!(s.recent[0].id, "d5");
        assert!(s.eta_ms.is_some());
        p.set_phase(Phase::Completed);
        assert_eq!(p.snapshot().eta_ms, None);
    }
}
