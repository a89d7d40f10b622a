//! Live progress of one sync: lock-free counters the pipeline bumps per batch, a ring buffer
//! of the last few hundred per-document outcomes, per-second rate samples for sparklines, and
//! [`ProgressSnapshot`]s that UIs (the console, `sync --watch`, `/status`) read at their own
//! frame rate. The engine never waits for a reader. A [`ProgressRecord`] is the lean form of a
//! snapshot that `sync --json` streams (at most [`RECORD_MAX_BYTES`]); the full per-document
//! stream goes to an [`EventSink`] when one is attached (`sync --events FILE`). Sources that
//! read tables (the database sources) report per-table progress through their notes; a
//! snapshot carries it as [`TableProgress`] lines, a record the few that matter.

use super::breaker::BreakerSnapshot;
use super::events::EventSink;
use crate::model::{TableCounts, TableProgress, Timestamp};
use crate::sources::SourceNotes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many per-document outcomes a snapshot keeps.
pub const RECENT_CAPACITY: usize = 300;
/// How many one-second rate samples are kept (two minutes of sparkline).
pub const RATE_SAMPLES: usize = 120;
/// The most a serialised [`ProgressRecord`] takes, so a `--json` progress line (the record
/// under a `"progress"` key) stays within 4 KiB whatever the ids and errors.
pub const RECORD_MAX_BYTES: usize = 4096 - 64;
/// How many of the latest outcomes a [`ProgressRecord`] carries.
pub const RECORD_OUTCOMES: usize = 4;
/// How many tables a [`ProgressRecord`] carries at most (those being read first, then the
/// failed, the skipped and the latest finished); the rest are counted.
pub const RECORD_TABLES: usize = 6;

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
    /// What `starting` is doing now.
    step: Option<&'static str>,
    error: Option<String>,
    total_hint: Option<u64>,
    breaker: Option<BreakerSnapshot>,
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
    /// Set while an event sink is attached: the sink's hot path reads it per batch.
    has_events: AtomicBool,
    events: Mutex<Option<EventSink>>,
    /// Outcomes the event sink could not take (its writer was gone).
    events_lost: AtomicU64,
    /// `_id`s read by the full sync's pass over the index: work that moves no document, but
    /// is progress for the stall watchdog (a long pass must not look like a stuck job).
    scanned_ids: AtomicU64,
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
    /// What the job is doing while `starting` (checking and pinging the source, creating
    /// the index, reading the source's size, scanning the index's ids): seconds can pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
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
    /// The sink's circuit breaker.
    pub breaker: Option<BreakerSnapshot>,
    pub recent: Vec<DocOutcome>,
    /// Per table, when the source reads tables (absent from older workers' `/status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableProgress>,
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
                step: None,
                breaker: None,
                finished_at: None,
            }),
            has_events: AtomicBool::new(false),
            events: Mutex::new(None),
            events_lost: AtomicU64::new(0),
            scanned_ids: AtomicU64::new(0),
            source_notes: Mutex::new(None),
        }
    }

    /// Sends every final per-document outcome of this job to `sink` as well.
    pub fn with_events(self, sink: Option<EventSink>) -> Self {
        self.has_events.store(sink.is_some(), Ordering::Relaxed);
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = sink;
        self
    }

    /// Whether every outcome is wanted (an event sink is attached), not only recent ones.
    pub fn wants_every_outcome(&self) -> bool {
        self.has_events.load(Ordering::Relaxed)
    }

    /// How many outcomes of one batch to collect: `recent` for the live list, or all of them
    /// when an event sink wants every document.
    pub fn outcome_budget(&self, recent: usize) -> usize {
        if self.wants_every_outcome() {
            usize::MAX
        } else {
            recent
        }
    }

    /// Detaches the event sink (its file can then be finished). Later outcomes only reach
    /// the live list.
    pub fn close_events(&self) {
        self.has_events.store(false, Ordering::Relaxed);
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Outcomes that could not reach the event sink.
    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    fn event_sink(&self) -> Option<EventSink> {
        if !self.wants_every_outcome() {
            return None;
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a batch's outcomes: the live list keeps the latest, the event sink (when
    /// attached) gets every final one. Waits while the event writer is behind.
    pub async fn record(&self, outcomes: Vec<DocOutcome>) {
        if let Some(sink) = self.event_sink() {
            let lost = sink.send(&outcomes).await;
            self.events_lost.fetch_add(lost, Ordering::Relaxed);
        }
        let keep = outcomes.len().saturating_sub(RECENT_CAPACITY);
        self.push_outcomes(outcomes.into_iter().skip(keep));
    }

    /// A document skipped (excluded by sync rules, or unchanged): counted, and an event when a
    /// sink is attached.
    pub async fn skip(&self, id: &str, reason: &str) {
        self.add_skipped(1);
        if let Some(sink) = self.event_sink() {
            let outcome = DocOutcome {
                id: id.to_string(),
                outcome: Outcome::Skipped,
                bytes: 0,
                latency_ms: 0,
                reason: Some(reason.to_string()),
            };
            let lost = sink.send(std::slice::from_ref(&outcome)).await;
            self.events_lost.fetch_add(lost, Ordering::Relaxed);
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

    /// Says what `starting` is doing now (cleared when the phase moves on).
    pub fn set_step(&self, step: &'static str) {
        self.lock().step = Some(step);
    }

    pub fn set_phase(&self, phase: Phase) {
        {
            let mut slow = self.lock();
            slow.phase = phase;
            if phase != Phase::Starting {
                slow.step = None;
            }
            if phase.is_done() && slow.finished_at.is_none() {
                slow.finished_at = Some(Instant::now());
            }
        }
        if phase.is_done() {
            // A finished job sends nothing more: let its events file be finished.
            self.close_events();
        }
    }

    pub fn set_error(&self, error: impl Into<String>) {
        self.lock().error = Some(error.into());
    }

    pub fn set_total_hint(&self, total: Option<u64>) {
        self.lock().total_hint = total;
    }

    pub fn set_breaker(&self, breaker: BreakerSnapshot) {
        self.lock().breaker = Some(breaker);
    }

    /// Counts `n` more `_id`s read by the pass over the index.
    pub fn add_scanned(&self, n: u64) {
        self.scanned_ids.fetch_add(n, Ordering::Relaxed);
    }

    /// Everything the job has got done so far, as one number that grows while it works:
    /// documents settled or deleted, and `_id`s read by the pass over the index. The stall
    /// watchdog fails a job when it stops growing.
    pub fn activity(&self) -> u64 {
        let c = self.counters();
        c.handled() + c.deleted + self.scanned_ids.load(Ordering::Relaxed)
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

    /// The source's per-table progress, parsed from its notes.
    pub fn tables(&self) -> Vec<TableProgress> {
        self.source_metadata()
            .map(|m| TableProgress::from_metadata(&m))
            .unwrap_or_default()
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        // Read before the lock below: the notes have a lock of their own.
        let mut tables = self.tables();
        let counters = self.counters();
        let slow = self.lock();
        if slow.phase.is_done() {
            TableProgress::stop_reading(&mut tables);
        }
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
            step: slow.step.map(str::to_string),
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
            tables,
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

/// The lean form of a [`ProgressSnapshot`] that `sync --json` streams once a second:
/// counters, rates, the breaker's state and the last [`RECORD_OUTCOMES`] outcomes, with ids,
/// reasons and the error clipped (and masked), so that a record stays within
/// [`RECORD_MAX_BYTES`]. The full per-document stream is `sync --events FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub job_id: String,
    pub connector_id: String,
    pub index: String,
    pub started_at: Timestamp,
    pub elapsed_ms: u64,
    pub phase: Phase,
    pub error: Option<String>,
    pub counters: Counters,
    pub total_hint: Option<u64>,
    pub in_flight: u64,
    pub queue_bytes: u64,
    pub queue_docs: u64,
    pub docs_per_sec: f64,
    pub bytes_per_sec: f64,
    pub avg_docs_per_sec: f64,
    pub avg_bulk_latency_ms: f64,
    pub eta_ms: Option<u64>,
    /// `closed`, `open` or `half_open`, when the sink has a breaker.
    pub breaker: Option<String>,
    /// The latest outcomes, oldest first.
    pub last: Vec<DocOutcome>,
    /// At most [`RECORD_TABLES`] tables (see [`TableProgress::pick`]), names and reasons
    /// clipped and masked; absent when the source reads no tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableProgress>,
    /// How many tables are in each state, all of them counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_counts: Option<TableCounts>,
    /// How many tables `tables` leaves out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tables_more: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Longest id, reason and error (in characters) a record keeps.
const RECORD_ID_CHARS: usize = 160;
const RECORD_REASON_CHARS: usize = 240;
const RECORD_ERROR_CHARS: usize = 1000;
const RECORD_TABLE_CHARS: usize = 120;
const RECORD_NOTE_CHARS: usize = 80;

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(max.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

impl ProgressSnapshot {
    /// The lean record of this snapshot; its JSON never exceeds [`RECORD_MAX_BYTES`].
    pub fn record(&self) -> ProgressRecord {
        use crate::secret::mask::masked;
        let skip = self.recent.len().saturating_sub(RECORD_OUTCOMES);
        let last = self.recent[skip..]
            .iter()
            .map(|o| DocOutcome {
                id: clip(&o.id, RECORD_ID_CHARS),
                reason: o
                    .reason
                    .as_deref()
                    .map(|r| clip(&masked(r), RECORD_REASON_CHARS)),
                ..o.clone()
            })
            .collect();
        // The state as it reads in JSON (`half_open`), as `/status` writes it.
        let breaker = self
            .breaker
            .as_ref()
            .and_then(|b| serde_json::to_value(b.state).ok())
            .and_then(|v| v.as_str().map(str::to_string));
        let (tables, tables_more) = TableProgress::pick(&self.tables, RECORD_TABLES);
        let tables = tables
            .into_iter()
            .map(|t| TableProgress {
                name: clip(&masked(&t.name), RECORD_TABLE_CHARS),
                note: t
                    .note
                    .as_deref()
                    .map(|n| clip(&masked(n), RECORD_NOTE_CHARS)),
                reason: t
                    .reason
                    .as_deref()
                    .map(|r| clip(&masked(r), RECORD_REASON_CHARS)),
                ..t.clone()
            })
            .collect();
        let record = ProgressRecord {
            job_id: self.job_id.clone(),
            connector_id: self.connector_id.clone(),
            index: self.index.clone(),
            started_at: self.started_at,
            elapsed_ms: self.elapsed_ms,
            phase: self.phase,
            error: self
                .error
                .as_deref()
                .map(|e| clip(&masked(e), RECORD_ERROR_CHARS)),
            counters: self.counters,
            total_hint: self.total_hint,
            in_flight: self.in_flight,
            queue_bytes: self.queue_bytes,
            queue_docs: self.queue_docs,
            docs_per_sec: self.docs_per_sec,
            bytes_per_sec: self.bytes_per_sec,
            avg_docs_per_sec: self.avg_docs_per_sec,
            avg_bulk_latency_ms: self.avg_bulk_latency_ms,
            eta_ms: self.eta_ms,
            breaker,
            last,
            tables,
            table_counts: (!self.tables.is_empty()).then(|| TableCounts::of(&self.tables)),
            tables_more,
        };
        record.fit(RECORD_MAX_BYTES)
    }
}

impl ProgressRecord {
    /// JSON length of the record.
    pub fn json_len(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// Sheds what is least needed until the JSON fits in `max` bytes: the oldest outcomes,
    /// then the error's detail, then the tables that matter least (counted in
    /// `tables_more`), then the tails of the connector id and index (ids that long,
    /// escaped, are the only way left to exceed it).
    fn fit(mut self, max: usize) -> Self {
        while self.json_len() > max && !self.last.is_empty() {
            self.last.remove(0);
        }
        if self.json_len() > max {
            self.error = self.error.map(|e| clip(&e, 120));
        }
        while self.json_len() > max && !self.tables.is_empty() {
            let (keep, _) = TableProgress::pick(&self.tables, self.tables.len() - 1);
            self.tables = keep.into_iter().cloned().collect();
            self.tables_more += 1;
        }
        if self.json_len() > max {
            self.connector_id = clip(&self.connector_id, 64);
            self.index = clip(&self.index, 64);
            self.job_id = clip(&self.job_id, 64);
            self.error = self.error.map(|e| clip(&e, 32));
        }
        self
    }
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

    fn snapshot_with(recent: Vec<DocOutcome>, error: Option<String>) -> ProgressSnapshot {
        let p = Progress::new("job-1", "connector", "index");
        p.push_outcomes(recent);
        if let Some(e) = error {
            p.set_error(e);
        }
        p.set_breaker(crate::engine::breaker::BreakerSnapshot::in_state(
            crate::engine::breaker::BreakerState::HalfOpen,
        ));
        p.snapshot()
    }

    #[test]
    fn a_record_carries_counters_rates_and_the_last_few_outcomes() {
        let recent: Vec<DocOutcome> = (0..RECENT_CAPACITY)
            .map(|i| DocOutcome {
                id: format!("doc-{i}"),
                outcome: Outcome::Indexed,
                bytes: 100,
                latency_ms: 5,
                reason: None,
            })
            .collect();
        let s = snapshot_with(recent, None);
        // The full snapshot is what the record must not be: the whole recent list.
        assert!(serde_json::to_vec(&s).unwrap().len() > 4096);
        let r = s.record();
        assert_eq!(r.last.len(), RECORD_OUTCOMES);
        assert_eq!(
            r.last[0].id,
            format!("doc-{}", RECENT_CAPACITY - RECORD_OUTCOMES)
        );
        assert_eq!(r.breaker.as_deref(), Some("half_open"));
        assert_eq!(r.counters, s.counters);
        assert!(r.json_len() <= RECORD_MAX_BYTES);
    }

    #[test]
    fn a_record_fits_whatever_the_ids_reasons_and_error() {
        // Control characters escape to six bytes each in JSON: the worst case per character.
        let huge = "\u{1}".repeat(5000);
        let recent: Vec<DocOutcome> = (0..10)
            .map(|i| DocOutcome {
                id: format!("{i}{huge}"),
                outcome: Outcome::DeadLettered,
                bytes: 1,
                latency_ms: 1,
                reason: Some(huge.clone()),
            })
            .collect();
        let p = Progress::new(huge.clone(), huge.clone(), huge.clone());
        p.push_outcomes(recent);
        p.set_error(huge.clone());
        let r = p.snapshot().record();
        assert!(r.json_len() <= RECORD_MAX_BYTES, "{}", r.json_len());
        let line = serde_json::to_string(&serde_json::json!({ "progress": r })).unwrap();
        assert!(line.len() <= 4096, "{}", line.len());
    }

    /// A source's notes, as a database source leaves them in the job's metadata.
    struct FixedNotes(serde_json::Map<String, serde_json::Value>);

    impl SourceNotes for FixedNotes {
        fn metadata(&self) -> serde_json::Map<String, serde_json::Value> {
            self.0.clone()
        }
    }

    fn with_tables(p: &Progress, tables: serde_json::Value, failed: serde_json::Value) {
        let mut m = serde_json::Map::new();
        m.insert("tables".into(), tables);
        m.insert("failed_tables".into(), failed);
        p.set_source_notes(Some(Arc::new(FixedNotes(m))));
    }

    #[test]
    fn snapshots_and_records_carry_the_tables_that_matter_and_count_the_rest() {
        use crate::model::TableStatus;
        let p = Progress::new("j", "c", "i");
        assert!(p.snapshot().tables.is_empty());
        assert!(
            !serde_json::to_string(&p.snapshot().record())
                .unwrap()
                .contains("table")
        );
        let mut lines = serde_json::Map::new();
        for i in 0..50 {
            lines.insert(
                format!("done_{i:02}"),
                serde_json::json!({"status": "done", "rows": 100, "seconds": 1.0, "rows_per_sec": 100.0}),
            );
        }
        lines.insert(
            "locked".into(),
            serde_json::json!({"status": "failed", "rows": 0, "seconds": 0.1, "rows_per_sec": 0.0}),
        );
        lines.insert(
            "big".into(),
            serde_json::json!({"status": "reading", "rows": 4000, "seconds": 2.0, "rows_per_sec": 2000.0}),
        );
        with_tables(
            &p,
            serde_json::Value::Object(lines),
            serde_json::json!({"locked": "permission denied for table locked"}),
        );
        let s = p.snapshot();
        assert_eq!(s.tables.len(), 52);
        let r = s.record();
        assert_eq!(r.tables.len(), RECORD_TABLES);
        assert_eq!(r.tables_more, 52 - RECORD_TABLES);
        let names: Vec<&str> = r.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["done_46", "done_47", "done_48", "done_49", "locked", "big"],
            "the one being read, the failed, then the latest done"
        );
        assert_eq!(r.tables[4].status, TableStatus::Failed);
        assert_eq!(
            r.tables[4].reason.as_deref(),
            Some("permission denied for table locked")
        );
        let counts = r.table_counts.expect("counts");
        assert_eq!((counts.done, counts.reading, counts.failed), (50, 1, 1));
        assert!(r.json_len() <= RECORD_MAX_BYTES);
    }

    #[test]
    fn tables_reach_an_attached_console_through_status_json_and_older_workers_still_read() {
        let p = Progress::new("j", "c", "i");
        with_tables(
            &p,
            serde_json::json!({"t": {"status": "reading", "rows": 5, "seconds": 1.0, "rows_per_sec": 5.0}}),
            serde_json::json!({}),
        );
        let s = p.snapshot();
        let back: ProgressSnapshot =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.tables, s.tables);
        assert_eq!(back.tables.len(), 1);
        // A worker of an older version writes no `tables`.
        let mut old = serde_json::to_value(&s).unwrap();
        old.as_object_mut().unwrap().remove("tables");
        let read: ProgressSnapshot = serde_json::from_value(old).unwrap();
        assert!(read.tables.is_empty());
    }

    #[test]
    fn a_table_being_read_when_the_job_ends_is_stopped_not_reading() {
        use crate::model::TableStatus;
        let p = Progress::new("j", "c", "i");
        with_tables(
            &p,
            serde_json::json!({"t": {"status": "reading", "rows": 5, "seconds": 1.0, "rows_per_sec": 5.0}}),
            serde_json::json!({}),
        );
        assert_eq!(p.snapshot().tables[0].status, TableStatus::Reading);
        p.set_phase(Phase::Canceled);
        assert_eq!(p.snapshot().tables[0].status, TableStatus::Stopped);
    }

    #[test]
    fn a_record_with_many_long_tables_stays_within_its_bound() {
        // Control characters escape to six bytes each in JSON: the worst case per character.
        let huge = "\u{1}".repeat(3000);
        let p = Progress::new("job", "connector", "index");
        let mut lines = serde_json::Map::new();
        let mut failed = serde_json::Map::new();
        for i in 0..400 {
            let name = format!("{i}{huge}");
            lines.insert(
                name.clone(),
                serde_json::json!({"status": if i % 2 == 0 { "reading" } else { "failed" }, "rows": i, "seconds": 1.0, "rows_per_sec": 1.0, "note": huge}),
            );
            if i % 2 == 1 {
                failed.insert(name, serde_json::Value::from(huge.clone()));
            }
        }
        with_tables(
            &p,
            serde_json::Value::Object(lines),
            serde_json::Value::Object(failed),
        );
        p.push_outcomes((0..10).map(|i| DocOutcome {
            id: format!("{i}{huge}"),
            outcome: Outcome::DeadLettered,
            bytes: 1,
            latency_ms: 1,
            reason: Some(huge.clone()),
        }));
        p.set_error(huge.clone());
        let r = p.snapshot().record();
        assert!(r.json_len() <= RECORD_MAX_BYTES, "{}", r.json_len());
        let line = serde_json::to_string(&serde_json::json!({ "progress": r })).unwrap();
        assert!(line.len() <= 4096, "{}", line.len());
        assert_eq!(r.tables.len() + r.tables_more, 400, "every table counted");
        assert!(!r.tables.is_empty(), "some tables still fit");
        assert_eq!(r.table_counts.map(|c| c.reading + c.failed), Some(400));
    }

    #[tokio::test]
    async fn every_outcome_reaches_an_attached_sink_once_and_none_after_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let log = crate::engine::events::EventLog::create(&path).unwrap();
        let p = Progress::new("j", "c", "i").with_events(Some(log.sink()));
        assert_eq!(p.outcome_budget(64), usize::MAX);
        let batch: Vec<DocOutcome> = (0..1000)
            .map(|i| DocOutcome {
                id: format!("d{i}"),
                outcome: Outcome::Indexed,
                bytes: 1,
                latency_ms: 1,
                reason: None,
            })
            .collect();
        p.record(batch).await;
        p.skip("unchanged-1", "unchanged since the last sync").await;
        assert_eq!(p.snapshot().recent.len(), RECENT_CAPACITY);
        assert_eq!(p.counters().skipped, 1);
        p.set_phase(Phase::Completed);
        assert_eq!(p.outcome_budget(64), 64, "closed with the job");
        p.skip("late", "after the end").await;
        assert_eq!(log.finish().await.unwrap(), 1001);
        assert_eq!(p.events_lost(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1001);
        assert!(
            text.contains(r#""id":"unchanged-1","outcome":"skipped""#),
            "{text}"
        );
        assert!(!text.contains(r#""id":"late""#), "{text}");
    }

    #[test]
    fn reading_the_index_ids_is_activity_for_the_watchdog() {
        let p = Progress::new("j", "c", "i");
        assert_eq!(p.activity(), 0);
        // A long pass over a big index moves no document, yet the job is working.
        p.add_scanned(1000);
        assert_eq!(p.activity(), 1000);
        assert_eq!(p.counters().handled(), 0, "no document counter moves");
    }
}
