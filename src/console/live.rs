//! The rows of the Live view: jobs of this process's engine (full progress snapshots), of an
//! attached `serve --listen` (the same snapshots over `/status`), and jobs in progress on
//! other workers (only the counts the cluster reports). Also the node pool rows of the
//! Breaker view. Pure assembly from state.

use crate::engine::breaker::{BreakerSnapshot, BreakerState};
use crate::engine::progress::ProgressSnapshot;
use crate::model::{SyncJob, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a live row comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveSource {
    /// This process's engine.
    Here,
    /// A headless worker's `/status`.
    Attached(String),
    /// Another worker, seen through the cluster.
    Cluster { worker: Option<String> },
}

impl LiveSource {
    pub fn label(&self) -> String {
        match self {
            Self::Here => "here".to_string(),
            Self::Attached(_) => "attached".to_string(),
            Self::Cluster { worker } => worker.clone().unwrap_or_else(|| "elsewhere".to_string()),
        }
    }
}

/// One row of the Live view.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRow<'a> {
    pub job_id: &'a str,
    pub connector_id: &'a str,
    pub source: LiveSource,
    pub snapshot: Option<&'a ProgressSnapshot>,
    pub job: Option<&'a SyncJob>,
    /// A cluster job whose worker stopped checking in longer ago than the idle threshold:
    /// shown as `stale`, not as live.
    pub stale: bool,
}

/// Whether an active job's worker has not checked in for longer than `idle_secs` (its last
/// check-in, else its start or creation). Ended jobs are never stale.
pub fn is_stale(job: &SyncJob, now: Timestamp, idle_secs: i64) -> bool {
    if !job.status.is_active() && job.status != crate::model::JobStatus::Suspended {
        return false;
    }
    let seen = job.last_seen.or(job.started_at).or(job.created_at);
    seen.is_some_and(|t| (now.0 - t.0).num_seconds() > idle_secs)
}

/// The rows, local first, then attached, then cluster jobs not already shown.
pub fn rows<'a>(
    local: &'a [ProgressSnapshot],
    attached: Option<(&str, &'a [ProgressSnapshot])>,
    active: &'a [SyncJob],
    now: Timestamp,
    idle_secs: i64,
) -> Vec<LiveRow<'a>> {
    let mut out: Vec<LiveRow<'a>> = local
        .iter()
        .map(|s| LiveRow {
            job_id: &s.job_id,
            connector_id: &s.connector_id,
            source: LiveSource::Here,
            snapshot: Some(s),
            job: None,
            stale: false,
        })
        .collect();
    if let Some((addr, snapshots)) = attached {
        for s in snapshots {
            if out.iter().any(|r| r.job_id == s.job_id) {
                continue;
            }
            out.push(LiveRow {
                job_id: &s.job_id,
                connector_id: &s.connector_id,
                source: LiveSource::Attached(addr.to_string()),
                snapshot: Some(s),
                job: None,
                stale: false,
            });
        }
    }
    for job in active {
        if let Some(row) = out.iter_mut().find(|r| r.job_id == job.id) {
            row.job = Some(job);
            continue;
        }
        out.push(LiveRow {
            job_id: &job.id,
            connector_id: &job.connector.id,
            source: LiveSource::Cluster {
                worker: job.worker_hostname.clone(),
            },
            snapshot: None,
            job: Some(job),
            stale: is_stale(job, now, idle_secs),
        });
    }
    out
}

/// One node of the Elasticsearch pool, with times made relative by whoever read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRow {
    pub url: String,
    pub alive: bool,
    pub failures: u32,
    /// How long the node stays dead before it is tried again.
    pub dead_for_ms: Option<u64>,
}

impl From<&crate::engine::status::StatusNode> for NodeRow {
    fn from(n: &crate::engine::status::StatusNode) -> Self {
        Self {
            url: n.url.clone(),
            alive: n.alive,
            failures: n.failures,
            dead_for_ms: n.retry_in_ms,
        }
    }
}

/// The breaker snapshot fields the console shows, copied from the engine's
/// [`BreakerSnapshot`] with times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreakerView {
    pub state: String,
    pub failure_rate: f64,
    pub threshold: f64,
    pub window_len: u64,
    pub window_size: u64,
    pub window_failures: u64,
    pub min_calls: u64,
    pub consecutive_failures: u64,
    pub consecutive_threshold: u64,
    pub time_to_next_probe_ms: Option<u64>,
    pub probes_in_flight: u64,
    pub times_opened: u64,
    pub not_closed_for_ms: Option<u64>,
    pub max_open_ms: u64,
    pub last_errors: Vec<RecentError>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentError {
    pub reason: String,
    pub ago_ms: u64,
}

impl BreakerView {
    /// The view of a snapshot's breaker: a field copy of the engine's typed snapshot (no
    /// JSON is parsed while drawing).
    pub fn from_snapshot(s: &ProgressSnapshot) -> Option<Self> {
        s.breaker.as_ref().map(Self::from)
    }
}

/// `closed`, `open`, `half_open`: the state names the theme and the labels use.
pub fn state_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

impl From<&BreakerSnapshot> for BreakerView {
    fn from(b: &BreakerSnapshot) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            state: state_name(b.state).to_string(),
            failure_rate: b.failure_rate,
            threshold: b.threshold,
            window_len: b.window_len as u64,
            window_size: b.window_size as u64,
            window_failures: b.window_failures as u64,
            min_calls: b.min_calls as u64,
            consecutive_failures: u64::from(b.consecutive_failures),
            consecutive_threshold: u64::from(b.consecutive_threshold),
            time_to_next_probe_ms: b.time_to_next_probe.map(ms),
            probes_in_flight: u64::from(b.probes_in_flight),
            times_opened: b.times_opened,
            not_closed_for_ms: b.not_closed_for.map(ms),
            max_open_ms: ms(b.max_open),
            last_errors: b
                .last_errors
                .iter()
                .map(|e| RecentError {
                    reason: e.reason.clone(),
                    ago_ms: ms(e.ago),
                })
                .collect(),
        }
    }
}

/// The worst breaker state among snapshots, for the header light: `open` beats `half_open`
/// beats `closed`; `None` when no running job has a breaker.
pub fn worst_breaker<'a>(
    snapshots: impl IntoIterator<Item = &'a ProgressSnapshot>,
) -> Option<String> {
    let rank = |s: BreakerState| match s {
        BreakerState::Open => 3,
        BreakerState::HalfOpen => 2,
        BreakerState::Closed => 1,
    };
    snapshots
        .into_iter()
        .filter(|s| !s.phase.is_done())
        .filter_map(|s| s.breaker.as_ref().map(|b| b.state))
        .max_by_key(|s| rank(*s))
        .map(|s| state_name(s).to_string())
}
