//! Per-job limits on failure: `ErrorMonitor`, which ends a job after too many document errors
//! (in a row, in total, or as a rate over the last documents, like the connectors framework's
//! `ErrorMonitor`), and `Watchdog`, which ends it when nothing moves for too long.
//!
//! Both are plain counters fed by the sink and the runner; time is passed in, nothing sleeps,
//! nothing does I/O. What counts as a document error is the caller's decision.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How many recent errors a trip keeps for the report.
const KEPT_ERRORS: usize = 10;

/// Longest reason shown in an error message, in characters.
const SHOWN_REASON_CHARS: usize = 200;

/// When a job has failed too many documents. A limit of 0 (or a window of 0) turns that check
/// off.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    /// Errors in a row that end the job (default 10).
    pub max_consecutive: u32,
    /// Errors in all that end the job (default 1000).
    pub max_total: u64,
    /// Share of errors over the last `window` documents above which the job ends (default 0.15).
    pub max_rate: f64,
    /// How many recent documents the rate is taken over (default 100).
    pub window: usize,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            max_consecutive: 10,
            max_total: 1000,
            max_rate: 0.15,
            window: 100,
        }
    }
}

/// One document that failed, as the monitor remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocError {
    /// The document id.
    pub doc_id: String,
    /// Why it failed.
    pub reason: String,
}

/// Which limit was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TripCause {
    /// This many errors in a row.
    Consecutive(u32),
    /// This many errors in all.
    Total(u64),
    /// `errors` of the last `window` documents failed, more than `max_rate` allows.
    Rate {
        /// Errors among the last `window` documents.
        errors: usize,
        /// How many recent documents the rate is taken over.
        window: usize,
        /// The largest share of errors allowed.
        max_rate: f64,
    },
}

impl fmt::Display for TripCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Consecutive(n) => write!(f, "{n} consecutive"),
            Self::Total(n) => write!(f, "{n} in total"),
            Self::Rate {
                errors,
                window,
                max_rate,
            } => {
                write!(
                    f,
                    "{errors} of the last {window} documents (more than {}%)",
                    max_rate * 100.0
                )
            }
        }
    }
}

/// The job failed too many documents; carries the last few errors for the report.
#[derive(Debug, Clone, PartialEq, Error)]
pub struct MonitorTripped {
    /// The limit that was reached.
    pub cause: TripCause,
    /// The most recent document errors, oldest first (at most 10).
    pub last_errors: Vec<DocError>,
}

impl fmt::Display for MonitorTripped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "too many document errors: {}", self.cause)?;
        if let Some(last) = self.last_errors.last() {
            write!(f, " (last: {}: {})", last.doc_id, shorten(&last.reason))?;
        }
        Ok(())
    }
}

/// Counts one job's document outcomes and trips when a limit is reached.
#[derive(Debug, Clone)]
pub struct ErrorMonitor {
    settings: MonitorSettings,
    consecutive: u32,
    total_errors: u64,
    /// The outcomes of the last `window` documents, `true` for an error, as a ring. Documents
    /// not seen yet count as successes, so a job's first few errors do not make a 100% rate.
    ring: Vec<bool>,
    next: usize,
    window_errors: usize,
    last_errors: VecDeque<DocError>,
}

impl Default for ErrorMonitor {
    fn default() -> Self {
        Self::new(MonitorSettings::default())
    }
}

impl ErrorMonitor {
    /// A monitor with no outcomes yet.
    pub fn new(settings: MonitorSettings) -> Self {
        Self {
            ring: vec![false; settings.window],
            settings,
            consecutive: 0,
            total_errors: 0,
            next: 0,
            window_errors: 0,
            last_errors: VecDeque::with_capacity(KEPT_ERRORS),
        }
    }

    /// The limits in use.
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Records a document that was handled.
    pub fn record_success(&mut self) {
        self.record_successes(1);
    }

    /// Records a document that failed; fails once a limit is reached (and on every error after).
    pub fn record_error(&mut self, doc_id: &str, reason: &str) -> Result<(), MonitorTripped> {
        self.consecutive = self.consecutive.saturating_add(1);
        self.total_errors = self.total_errors.saturating_add(1);
        self.push(true);
        self.remember(doc_id, reason);
        match self.tripped() {
            Some(cause) => Err(MonitorTripped {
                cause,
                last_errors: self.last_errors.iter().cloned().collect(),
            }),
            None => Ok(()),
        }
    }

    /// Records one bulk response: `successes` documents handled and `errors` as (doc id,
    /// reason). Their order within the batch is unknown, so the errors are taken as spread
    /// evenly among the successes: errors scattered through a large batch are not a run.
    pub fn record_batch(
        &mut self,
        successes: usize,
        errors: &[(String, String)],
    ) -> Result<(), MonitorTripped> {
        let gaps = errors.len() as u128 + 1;
        let mut placed = 0;
        for (i, (doc_id, reason)) in errors.iter().enumerate() {
            // Successes before error i: an even share of the gaps between errors.
            let before =
                usize::try_from(successes as u128 * (i as u128 + 1) / gaps).unwrap_or(successes);
            self.record_successes(before - placed);
            placed = before;
            self.record_error(doc_id, reason)?;
        }
        self.record_successes(successes - placed);
        Ok(())
    }

    /// Errors in a row since the last success.
    pub fn consecutive_errors(&self) -> u32 {
        self.consecutive
    }

    /// Errors in all.
    pub fn total_errors(&self) -> u64 {
        self.total_errors
    }

    /// Errors among the last `window` documents.
    pub fn window_errors(&self) -> usize {
        self.window_errors
    }

    /// The most recent errors, oldest first.
    pub fn last_errors(&self) -> impl Iterator<Item = &DocError> {
        self.last_errors.iter()
    }

    fn record_successes(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.consecutive = 0;
        if n >= self.ring.len() {
            // The whole window is successes now; no need to walk it n times.
            self.ring.fill(false);
            self.window_errors = 0;
            return;
        }
        for _ in 0..n {
            self.push(false);
        }
    }

    fn push(&mut self, error: bool) {
        let Some(slot) = self.ring.get_mut(self.next) else {
            return;
        };
        self.window_errors -= usize::from(*slot);
        *slot = error;
        self.window_errors += usize::from(error);
        self.next = (self.next + 1) % self.ring.len();
    }

    fn tripped(&self) -> Option<TripCause> {
        let s = &self.settings;
        if s.max_consecutive > 0 && self.consecutive >= s.max_consecutive {
            return Some(TripCause::Consecutive(self.consecutive));
        }
        if s.max_total > 0 && self.total_errors >= s.max_total {
            return Some(TripCause::Total(self.total_errors));
        }
        let window = self.ring.len();
        if window > 0 && self.window_errors as f64 / window as f64 > s.max_rate {
            return Some(TripCause::Rate {
                errors: self.window_errors,
                window,
                max_rate: s.max_rate,
            });
        }
        None
    }

    /// Keeps the last errors, reusing the oldest entry's strings once the list is full.
    fn remember(&mut self, doc_id: &str, reason: &str) {
        let mut entry = if self.last_errors.len() >= KEPT_ERRORS {
            self.last_errors.pop_front().unwrap_or_else(|| DocError {
                doc_id: String::new(),
                reason: String::new(),
            })
        } else {
            DocError {
                doc_id: String::new(),
                reason: String::new(),
            }
        };
        entry.doc_id.clear();
        entry.doc_id.push_str(doc_id);
        entry.reason.clear();
        entry.reason.push_str(reason);
        self.last_errors.push_back(entry);
    }
}

fn shorten(reason: &str) -> std::borrow::Cow<'_, str> {
    match reason.char_indices().nth(SHOWN_REASON_CHARS) {
        Some((end, _)) => format!("{}…", &reason[..end]).into(),
        None => reason.into(),
    }
}

/// Nothing moved for longer than the budget.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "no progress for {:?}, longer than the allowed {:?}: the sync looks stuck (nothing was \
     extracted or indexed in that time)",
    round_secs(*idle),
    round_secs(*budget)
)]
pub struct Stalled {
    /// How long nothing moved.
    pub idle: Duration,
    /// How long it was allowed to.
    pub budget: Duration,
}

/// Fails a job that makes no progress for longer than its budget (the runner sets the budget
/// to the whole retry budget, so a job still retrying is never called stuck).
#[derive(Debug, Clone)]
pub struct Watchdog {
    budget: Duration,
    last_progress: Instant,
}

impl Watchdog {
    /// A watchdog whose clock starts at `now`.
    pub fn new(budget: Duration, now: Instant) -> Self {
        Self {
            budget,
            last_progress: now,
        }
    }

    /// The allowed time without progress.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Records progress at `now` (an earlier `now` than the last one is ignored).
    pub fn progress(&mut self, now: Instant) {
        self.last_progress = self.last_progress.max(now);
    }

    /// How long nothing has moved as of `now`.
    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_progress)
    }

    /// Fails when nothing has moved for longer than the budget.
    pub fn check(&self, now: Instant) -> Result<(), Stalled> {
        let idle = self.idle_for(now);
        if idle > self.budget {
            return Err(Stalled {
                idle,
                budget: self.budget,
            });
        }
        Ok(())
    }
}

/// Whole seconds when at least a second (error messages need no nanoseconds).
fn round_secs(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(i: usize) -> (String, String) {
        (format!("doc-{i}"), "mapping error".to_string())
    }

    /// Only the rate check on.
    fn rate_only() -> ErrorMonitor {
        ErrorMonitor::new(MonitorSettings {
            max_consecutive: 0,
            max_total: 0,
            ..MonitorSettings::default()
        })
    }

    #[test]
    fn defaults_follow_the_connectors_framework() {
        assert_eq!(
            MonitorSettings::default(),
            MonitorSettings {
                max_consecutive: 10,
                max_total: 1000,
                max_rate: 0.15,
                window: 100
            }
        );
    }

    #[test]
    fn trips_on_consecutive_errors() {
        let mut m = ErrorMonitor::default();
        for i in 0..9 {
            m.record_error(&format!("doc-{i}"), "mapping error")
                .unwrap();
        }
        let tripped = m.record_error("doc-9", "mapping error").unwrap_err();
        assert_eq!(tripped.cause, TripCause::Consecutive(10));
        assert_eq!(
            tripped.to_string(),
            "too many document errors: 10 consecutive (last: doc-9: mapping error)"
        );
        assert_eq!(tripped.last_errors.len(), 10);
        assert_eq!(tripped.last_errors[0].doc_id, "doc-0");
        // It stays tripped.
        assert!(m.record_error("doc-10", "x").is_err());
    }

    #[test]
    fn a_success_breaks_the_run() {
        let mut m = ErrorMonitor::default();
        for round in 0..5 {
            for i in 0..9 {
                m.record_error(&format!("doc-{round}-{i}"), "x").unwrap();
            }
            // 9 errors then enough successes to keep the rate down.
            for _ in 0..100 {
                m.record_success();
            }
        }
        assert_eq!(m.total_errors(), 45);
        assert_eq!(m.consecutive_errors(), 0);
    }

    #[test]
    fn trips_on_total_errors() {
        let mut m = ErrorMonitor::new(MonitorSettings {
            max_total: 20,
            ..MonitorSettings::default()
        });
        for i in 0..19 {
            m.record_error(&format!("doc-{i}"), "x").unwrap();
            // Enough successes that neither the run nor the rate trips.
            for _ in 0..100 {
                m.record_success();
            }
        }
        let tripped = m.record_error("doc-19", "x").unwrap_err();
        assert_eq!(tripped.cause, TripCause::Total(20));
        assert!(
            tripped
                .to_string()
                .starts_with("too many document errors: 20 in total"),
            "{tripped}"
        );
    }

    #[test]
    fn trips_when_the_rate_goes_above_the_limit() {
        let mut m = rate_only();
        // 15 errors in the last 100 is 15%: not above the limit.
        for i in 0..15 {
            m.record_error(&format!("doc-{i}"), "x").unwrap();
        }
        assert_eq!(m.window_errors(), 15);
        let tripped = m.record_error("doc-15", "x").unwrap_err();
        assert_eq!(
            tripped.cause,
            TripCause::Rate {
                errors: 16,
                window: 100,
                max_rate: 0.15
            }
        );
        assert_eq!(
            tripped.to_string(),
            "too many document errors: 16 of the last 100 documents (more than 15%) (last: doc-15: x)"
        );
    }

    #[test]
    fn the_rate_window_slides() {
        let mut m = rate_only();
        for i in 0..15 {
            m.record_error(&format!("old-{i}"), "x").unwrap();
        }
        for _ in 0..85 {
            m.record_success();
        }
        assert_eq!(m.window_errors(), 15);
        // A 16th error pushes the oldest out: still 15 in the last 100.
        m.record_error("new-0", "x").unwrap();
        assert_eq!(m.window_errors(), 15);
        // 14 successes push out the rest of the old errors.
        for _ in 0..14 {
            m.record_success();
        }
        assert_eq!(m.window_errors(), 1);
        for i in 1..15 {
            m.record_error(&format!("new-{i}"), "x").unwrap();
        }
        assert_eq!(m.window_errors(), 15);
        let tripped = m.record_error("new-15", "x").unwrap_err();
        assert_eq!(
            tripped.cause,
            TripCause::Rate {
                errors: 16,
                window: 100,
                max_rate: 0.15
            }
        );
    }

    #[test]
    fn a_large_run_of_successes_clears_the_window() {
        let mut m = rate_only();
        for i in 0..15 {
            m.record_error(&format!("doc-{i}"), "x").unwrap();
        }
        m.record_batch(1000, &[]).unwrap();
        assert_eq!(m.window_errors(), 0);
        for i in 0..15 {
            m.record_error(&format!("again-{i}"), "x").unwrap();
        }
        assert_eq!(m.window_errors(), 15);
    }

    #[test]
    fn scattered_errors_in_a_batch_are_not_a_run() {
        let mut m = ErrorMonitor::default();
        let errors: Vec<_> = (0..10).map(err).collect();
        // 10 errors among 990 successes: 1%, no run.
        m.record_batch(990, &errors).unwrap();
        assert_eq!(m.total_errors(), 10);
        assert_eq!(m.consecutive_errors(), 0);
        assert!(m.window_errors() <= 2, "{}", m.window_errors());
    }

    #[test]
    fn a_batch_of_errors_only_continues_the_run() {
        let mut m = ErrorMonitor::default();
        m.record_batch(0, &(0..6).map(err).collect::<Vec<_>>())
            .unwrap();
        let tripped = m
            .record_batch(0, &(6..12).map(err).collect::<Vec<_>>())
            .unwrap_err();
        assert_eq!(tripped.cause, TripCause::Consecutive(10));
        assert_eq!(tripped.last_errors.last().unwrap().doc_id, "doc-9");
    }

    #[test]
    fn a_batch_with_mostly_errors_trips_the_rate() {
        let mut m = rate_only();
        let errors: Vec<_> = (0..40).map(err).collect();
        let tripped = m.record_batch(60, &errors).unwrap_err();
        assert!(
            matches!(tripped.cause, TripCause::Rate { errors: 16, .. }),
            "{:?}",
            tripped.cause
        );
    }

    #[test]
    fn zero_limits_turn_checks_off() {
        let mut m = ErrorMonitor::new(MonitorSettings {
            max_consecutive: 0,
            max_total: 0,
            max_rate: 0.0,
            window: 0,
        });
        for i in 0..5000 {
            m.record_error(&format!("doc-{i}"), "x").unwrap();
        }
        m.record_batch(3, &[err(1)]).unwrap();
        assert_eq!(m.total_errors(), 5001);
    }

    #[test]
    fn keeps_only_the_last_ten_errors_and_shortens_long_reasons() {
        let mut m = ErrorMonitor::new(MonitorSettings {
            max_consecutive: 0,
            max_total: 0,
            window: 0,
            ..MonitorSettings::default()
        });
        for i in 0..25 {
            m.record_error(&format!("doc-{i}"), "x").unwrap();
        }
        let ids: Vec<&str> = m.last_errors().map(|e| e.doc_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "doc-15", "doc-16", "doc-17", "doc-18", "doc-19", "doc-20", "doc-21", "doc-22",
                "doc-23", "doc-24"
            ]
        );

        let tripped = MonitorTripped {
            cause: TripCause::Total(1),
            last_errors: vec![DocError {
                doc_id: "d".into(),
                reason: "ü".repeat(500),
            }],
        };
        let text = tripped.to_string();
        assert!(text.ends_with("…)"), "{text}");
        assert_eq!(text.matches('ü').count(), SHOWN_REASON_CHARS);
    }

    #[test]
    fn watchdog_trips_only_after_the_budget() {
        let t0 = Instant::now();
        let budget = Duration::from_secs(60);
        let mut w = Watchdog::new(budget, t0);
        assert!(
            w.check(t0 + budget).is_ok(),
            "exactly the budget is allowed"
        );
        let stalled = w.check(t0 + Duration::from_millis(60_500)).unwrap_err();
        assert_eq!(
            stalled,
            Stalled {
                idle: Duration::from_millis(60_500),
                budget
            }
        );
        assert_eq!(
            stalled.to_string(),
            "no progress for 60s, longer than the allowed 60s: the sync looks stuck (nothing was \
             extracted or indexed in that time)"
        );
        // Progress resets the clock.
        w.progress(t0 + Duration::from_secs(50));
        assert!(w.check(t0 + Duration::from_secs(100)).is_ok());
        assert_eq!(
            w.idle_for(t0 + Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert!(w.check(t0 + Duration::from_secs(111)).is_err());
        // An out-of-order earlier report does not turn the clock back.
        w.progress(t0);
        assert_eq!(
            w.idle_for(t0 + Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert_eq!(w.budget(), budget);
    }
}
