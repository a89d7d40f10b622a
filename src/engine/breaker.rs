//! The circuit breaker in front of one sink's bulk requests: `Breaker`, a closed / open /
//! half-open state machine over whole-request outcomes, and `SharedBreaker`, its thread-safe
//! wrapper whose `acquire` waits while the breaker is open (the sink's backpressure).
//! Beside it, [`InFlightLimit`]: the request slots of one sink, fewer while the cluster
//! refuses items with 429 (back-pressure that is not failure), as many as allowed again once
//! it stops.
//!
//! `Breaker` takes the time as an argument and never sleeps, so its tests need no clock. It
//! only counts what it is told: the sink decides what a failure is (connection error, 5xx,
//! 429 or timeout on the whole request; never a per-item error). No I/O here.

use crate::config::BreakerSettings;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::Notify;

/// How many recent failure reasons the breaker keeps for the console.
const KEPT_ERRORS: usize = 10;

/// Longest failure reason kept, in characters (bulk error bodies can be long).
const MAX_REASON_CHARS: usize = 300;

/// The shortest wait handed out, so a caller never spins on a zero wait.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// An open period longer than this is cut to it, so `Instant` arithmetic cannot overflow.
const MAX_OPEN_FOR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The reason recorded for a probe whose guard was dropped without an outcome.
const ABANDONED_PROBE: &str = "a probe request was abandoned before it reported an outcome";

/// The breaker's state, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow; outcomes are counted.
    Closed,
    /// Requests wait until the open period ends.
    Open,
    /// A few probe requests test whether the cluster recovered.
    HalfOpen,
}

#[cfg(test)]
impl BreakerSnapshot {
    /// A fresh breaker's view, in `state`: for unit tests that only need a state.
    pub(crate) fn in_state(state: BreakerState) -> Self {
        let mut snapshot = Breaker::new(BreakerSettings::default()).snapshot(Instant::now());
        snapshot.state = state;
        snapshot
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        })
    }
}

/// The answer to [`Breaker::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send the request (the breaker is closed).
    Allowed,
    /// Send the request as a probe; its outcome decides whether the breaker closes.
    Probe,
    /// Do not send; ask again after this long (or sooner, when a probe reports).
    Wait(Duration),
}

/// A recent whole-request failure, for the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentFailure {
    /// What went wrong, as the sink described it (cut to a few hundred characters).
    pub reason: String,
    /// How long ago it happened, relative to the snapshot.
    #[serde(
        rename = "ago_ms",
        serialize_with = "millis",
        deserialize_with = "de_millis"
    )]
    pub ago: Duration,
}

/// A point-in-time view of the breaker for the console and `/metrics`. It travels in
/// progress snapshots as itself (and over `/status` as JSON, read back into this type), so
/// readers never parse it per frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// The state (an open period that has ended already reads as half-open).
    pub state: BreakerState,
    /// Failures over outcomes in the window (0 when the window is empty).
    pub failure_rate: f64,
    /// The failure rate that opens the breaker.
    pub threshold: f64,
    /// Outcomes currently in the window.
    pub window_len: usize,
    /// The most outcomes the window holds.
    pub window_size: usize,
    /// Failures in the window.
    pub window_failures: usize,
    /// Outcomes needed in the window before the rate counts.
    pub min_calls: usize,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// Failures in a row that open the breaker.
    pub consecutive_threshold: u32,
    /// Time until a probe may be sent: `Some(0)` when one may go now, `None` when closed or
    /// every probe slot is taken.
    #[serde(
        rename = "time_to_next_probe_ms",
        serialize_with = "opt_millis",
        deserialize_with = "de_opt_millis"
    )]
    pub time_to_next_probe: Option<Duration>,
    /// Probes sent and not yet reported.
    pub probes_in_flight: u32,
    /// How many times the breaker opened (including reopening after a failed probe).
    pub times_opened: u64,
    /// How long the breaker has been continuously open or half-open (`None` when closed).
    #[serde(
        rename = "not_closed_for_ms",
        serialize_with = "opt_millis",
        deserialize_with = "de_opt_millis"
    )]
    pub not_closed_for: Option<Duration>,
    /// The longest it may stay so before the job fails.
    #[serde(
        rename = "max_open_ms",
        serialize_with = "millis",
        deserialize_with = "de_millis"
    )]
    pub max_open: Duration,
    /// The last failures, newest first.
    pub last_errors: Vec<RecentFailure>,
}

/// Why [`SharedBreaker::acquire`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BreakerError {
    /// The breaker has not closed for longer than `max_open`: the cluster did not recover.
    #[error(
        "the circuit breaker in front of bulk requests has not closed for {:?}, longer than \
         'max_open' ({:?}) in the profile's [breaker] section; last error: {}",
        round_secs(*not_closed_for),
        round_secs(*max_open),
        last_error.as_deref().unwrap_or("none recorded")
    )]
    OpenTooLong {
        /// How long the breaker has been open or half-open.
        not_closed_for: Duration,
        /// The allowed maximum.
        max_open: Duration,
        /// The last whole-request failure, if any was recorded.
        last_error: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    /// `issued` probes were handed out this period; each is in flight or has succeeded (a
    /// failure reopens the breaker), so `succeeded + in_flight == issued`.
    HalfOpen {
        issued: u32,
        in_flight: u32,
        succeeded: u32,
    },
}

/// The breaker state machine. Not thread-safe by itself; see [`SharedBreaker`].
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    phase: Phase,
    /// The last `window` outcomes, `true` for a failure.
    outcomes: VecDeque<bool>,
    window_failures: usize,
    consecutive_failures: u32,
    times_opened: u64,
    not_closed_since: Option<Instant>,
    last_errors: VecDeque<(Instant, String)>,
}

impl Breaker {
    /// A closed breaker. Settings the config check would refuse are brought into range rather
    /// than trusted (window, min calls and probes at least 1).
    pub fn new(settings: BreakerSettings) -> Self {
        let settings = sanitize(settings);
        Self {
            outcomes: VecDeque::with_capacity(settings.window),
            settings,
            phase: Phase::Closed,
            window_failures: 0,
            consecutive_failures: 0,
            times_opened: 0,
            not_closed_since: None,
            last_errors: VecDeque::with_capacity(KEPT_ERRORS),
        }
    }

    /// The settings in use (after bringing them into range).
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The current state, as of the last call (an ended open period turns half-open at the
    /// next `try_acquire`).
    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to send one bulk request at `now`.
    pub fn try_acquire(&mut self, now: Instant) -> Permit {
        if let Phase::Open { until } = self.phase {
            if now < until {
                return Permit::Wait(until.saturating_duration_since(now).max(MIN_WAIT));
            }
            self.phase = Phase::HalfOpen {
                issued: 0,
                in_flight: 0,
                succeeded: 0,
            };
        }
        match &mut self.phase {
            Phase::Closed => Permit::Allowed,
            Phase::HalfOpen {
                issued, in_flight, ..
            } if *issued < self.settings.half_open_probes => {
                *issued += 1;
                *in_flight += 1;
                Permit::Probe
            }
            // Every probe slot is taken: at worst a probe fails and the breaker reopens.
            _ => Permit::Wait(self.settings.open_for.max(MIN_WAIT)),
        }
    }

    /// Records a successful bulk request. A success reported while open, or while half-open
    /// with no probe in flight, came from a request sent before the breaker opened: ignored.
    /// (`now` is unused today; it keeps the three calls alike.)
    pub fn on_success(&mut self, _now: Instant) {
        let close = match &mut self.phase {
            Phase::Closed => {
                self.consecutive_failures = 0;
                self.push_outcome(false);
                false
            }
            Phase::Open { .. } | Phase::HalfOpen { in_flight: 0, .. } => false,
            Phase::HalfOpen {
                in_flight,
                succeeded,
                ..
            } => {
                *in_flight -= 1;
                *succeeded += 1;
                *succeeded >= self.settings.half_open_probes
            }
        };
        if close {
            self.close();
        }
    }

    /// Records a failed bulk request with why it failed. Opens the breaker when the rate or
    /// the run of failures reaches its threshold (both are checked on failures only, so a
    /// success never opens it), or when half-open (a probe failed).
    pub fn on_failure(&mut self, now: Instant, reason: &str) {
        self.remember(now, reason);
        match self.phase {
            Phase::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.push_outcome(true);
                if self.should_open() {
                    self.open(now);
                }
            }
            // Late news from a request sent before the breaker opened.
            Phase::Open { .. } => {}
            Phase::HalfOpen { .. } => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now);
            }
        }
    }

    /// Whether the breaker has been continuously open or half-open for longer than `max_open`.
    pub fn open_too_long(&self, now: Instant) -> bool {
        self.not_closed_for(now)
            .is_some_and(|d| d > self.settings.max_open)
    }

    /// How long the breaker has been continuously open or half-open (`None` when closed).
    pub fn not_closed_for(&self, now: Instant) -> Option<Duration> {
        self.not_closed_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// A view of the breaker at `now`.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let (state, time_to_next_probe, probes_in_flight) = self.view(now);
        let window_len = self.outcomes.len();
        BreakerSnapshot {
            state,
            failure_rate: self.failure_rate(),
            threshold: self.settings.failure_rate,
            window_len,
            window_size: self.settings.window,
            window_failures: self.window_failures,
            min_calls: self.settings.min_calls,
            consecutive_failures: self.consecutive_failures,
            consecutive_threshold: self.settings.consecutive_failures,
            time_to_next_probe,
            probes_in_flight,
            times_opened: self.times_opened,
            not_closed_for: self.not_closed_for(now),
            max_open: self.settings.max_open,
            last_errors: self
                .last_errors
                .iter()
                .rev()
                .map(|(at, reason)| RecentFailure {
                    reason: reason.clone(),
                    ago: now.saturating_duration_since(*at),
                })
                .collect(),
        }
    }

    /// The most recent failure reason, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_errors.back().map(|(_, reason)| reason.as_str())
    }

    /// State, time to the next probe and probes in flight, as `try_acquire` would see them.
    fn view(&self, now: Instant) -> (BreakerState, Option<Duration>, u32) {
        match self.phase {
            Phase::Closed => (BreakerState::Closed, None, 0),
            Phase::Open { until } if now < until => (
                BreakerState::Open,
                Some(until.saturating_duration_since(now)),
                0,
            ),
            Phase::Open { .. } => (BreakerState::HalfOpen, Some(Duration::ZERO), 0),
            Phase::HalfOpen {
                issued, in_flight, ..
            } => {
                let next = (issued < self.settings.half_open_probes).then_some(Duration::ZERO);
                (BreakerState::HalfOpen, next, in_flight)
            }
        }
    }

    fn failure_rate(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        self.window_failures as f64 / self.outcomes.len() as f64
    }

    fn should_open(&self) -> bool {
        if self.consecutive_failures >= self.settings.consecutive_failures {
            return true;
        }
        self.outcomes.len() >= self.settings.min_calls
            && self.failure_rate() >= self.settings.failure_rate
    }

    fn push_outcome(&mut self, failed: bool) {
        if self.outcomes.len() == self.settings.window
            && let Some(oldest) = self.outcomes.pop_front()
        {
            self.window_failures -= usize::from(oldest);
        }
        self.outcomes.push_back(failed);
        self.window_failures += usize::from(failed);
    }

    fn open(&mut self, now: Instant) {
        let until = now.checked_add(self.settings.open_for).unwrap_or(now);
        self.phase = Phase::Open { until };
        self.times_opened = self.times_opened.saturating_add(1);
        self.not_closed_since.get_or_insert(now);
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.outcomes.clear();
        self.window_failures = 0;
        self.consecutive_failures = 0;
        self.not_closed_since = None;
    }

    fn remember(&mut self, now: Instant, reason: &str) {
        if self.last_errors.len() == KEPT_ERRORS {
            self.last_errors.pop_front();
        }
        self.last_errors.push_back((now, cut(reason)));
    }
}

fn sanitize(mut s: BreakerSettings) -> BreakerSettings {
    s.window = s.window.max(1);
    s.min_calls = s.min_calls.clamp(1, s.window);
    s.consecutive_failures = s.consecutive_failures.max(1);
    s.half_open_probes = s.half_open_probes.max(1);
    s.open_for = s.open_for.min(MAX_OPEN_FOR);
    s
}

fn cut(reason: &str) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => format!("{}…", &reason[..end]),
        None => reason.to_string(),
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

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

fn de_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

fn de_opt_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
}

/// The breaker shared by a sink's concurrent requests. Cheap to clone (clones share one
/// breaker); uses tokio's clock, so paused-time tests drive it.
#[derive(Clone)]
pub struct SharedBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    breaker: Mutex<Breaker>,
    /// Woken on every reported outcome, so waiters re-check at once rather than at the end of
    /// their wait.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Breaker> {
        // The breaker never panics while locked; a poisoned lock still holds a valid state.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, outcome: Result<(), &str>) {
        let now = clock();
        {
            let mut breaker = self.lock();
            match outcome {
                Ok(()) => breaker.on_success(now),
                Err(reason) => breaker.on_failure(now, reason),
            }
        }
        self.changed.notify_waiters();
    }
}

impl fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBreaker")
            .field("state", &self.shared.lock().state())
            .finish()
    }
}

enum Step {
    Go(BreakerGuard),
    Wait(Duration),
}

impl SharedBreaker {
    /// A closed breaker with these settings.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                breaker: Mutex::new(Breaker::new(settings)),
                changed: Notify::new(),
            }),
        }
    }

    /// Waits until a request may be sent and returns its guard, which must report the
    /// outcome. Fails once the breaker has stayed open longer than `max_open`.
    pub async fn acquire(&self) -> Result<BreakerGuard, BreakerError> {
        loop {
            // Registered before looking at the state, so a report in between is not missed.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait = match self.step()? {
                Step::Go(guard) => return Ok(guard),
                Step::Wait(wait) => wait,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut changed => {}
            }
        }
    }

    /// A view of the breaker now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.shared.lock().snapshot(clock())
    }

    /// Whether the breaker has been open or half-open for longer than `max_open`.
    pub fn open_too_long(&self) -> bool {
        self.shared.lock().open_too_long(clock())
    }

    fn step(&self) -> Result<Step, BreakerError> {
        let now = clock();
        let mut breaker = self.shared.lock();
        let probe = match breaker.try_acquire(now) {
            Permit::Allowed => false,
            Permit::Probe => true,
            Permit::Wait(wait) => {
                if let Some(not_closed_for) = breaker
                    .not_closed_for(now)
                    .filter(|_| breaker.open_too_long(now))
                {
                    return Err(BreakerError::OpenTooLong {
                        not_closed_for,
                        max_open: breaker.settings().max_open,
                        last_error: breaker.last_error().map(str::to_string),
                    });
                }
                return Ok(Step::Wait(wait));
            }
        };
        Ok(Step::Go(BreakerGuard {
            shared: Arc::clone(&self.shared),
            probe,
            reported: false,
        }))
    }
}

/// The right to send one bulk request. Report its outcome with [`success`](Self::success)
/// or [`failure`](Self::failure). Dropped unreported, a probe counts as failed (so its slot
/// is freed and the breaker cannot wedge half-open) and a normal request counts as nothing (a
/// cancelled job says nothing about the cluster).
pub struct BreakerGuard {
    shared: Arc<Shared>,
    probe: bool,
    reported: bool,
}

impl fmt::Debug for BreakerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerGuard")
            .field("probe", &self.probe)
            .finish()
    }
}

impl BreakerGuard {
    /// Whether this request is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The bulk request succeeded as a whole (item errors do not matter here).
    pub fn success(mut self) {
        self.reported = true;
        self.shared.report(Ok(()));
    }

    /// The bulk request failed as a whole, for this reason.
    pub fn failure(mut self, reason: &str) {
        self.reported = true;
        self.shared.report(Err(reason));
    }
}

impl Drop for BreakerGuard {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.shared.report(Err(ABANDONED_PROBE));
        }
    }
}

/// The bulk request slots of one sink, with additive-increase / multiplicative-decrease
/// sizing, as TCP, Logstash and the Python client's `streaming_bulk` back off: every answer
/// whose items met 429s halves the limit (at most once per round of requests in flight),
/// every `limit` clean answers in a row raise it by one, up to `max`. A request holds its
/// slot only while it is on the wire: backoffs are waited out without one. Cheap to clone.
#[derive(Clone)]
pub struct InFlightLimit {
    shared: Arc<LimitShared>,
}

struct LimitShared {
    state: Mutex<LimitState>,
    /// Woken when a slot is freed or the limit grows.
    freed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LimitState {
    max: usize,
    limit: usize,
    in_use: usize,
    /// Clean answers since the last change of the limit.
    clean: usize,
    /// Answers since the last cut; a new cut needs a full round (`limit` answers), so
    /// concurrent answers of one overload halve the limit once, not once each.
    since_cut: usize,
    cuts: u64,
}

/// A view of an [`InFlightLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitSnapshot {
    /// Requests allowed in flight now.
    pub limit: usize,
    /// The configured `max_in_flight`.
    pub max: usize,
    /// Requests in flight.
    pub in_use: usize,
    /// How many times 429s cut the limit.
    pub cuts: u64,
}

impl InFlightLimit {
    /// `max` slots (at least 1), all available.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            shared: Arc::new(LimitShared {
                state: Mutex::new(LimitState {
                    max,
                    limit: max,
                    in_use: 0,
                    clean: 0,
                    since_cut: max,
                    cuts: 0,
                }),
                freed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LimitState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the most slots (the limit follows, keeping any cut in proportion).
    pub fn set_max(&self, max: usize) {
        let max = max.max(1);
        {
            let mut s = self.lock();
            s.limit = if s.limit == s.max {
                max
            } else {
                s.limit.min(max)
            };
            s.max = max;
        }
        self.shared.freed.notify_waiters();
    }

    /// Waits for a free slot; the slot is freed when the returned guard drops.
    pub async fn acquire(&self) -> SlotGuard {
        loop {
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_use < s.limit {
                    s.in_use += 1;
                    return SlotGuard {
                        shared: Arc::clone(&self.shared),
                    };
                }
            }
            freed.await;
        }
    }

    /// Records one answered bulk request: whether any of its items met a 429.
    pub fn report(&self, throttled: bool) {
        let grew = {
            let mut s = self.lock();
            s.since_cut = s.since_cut.saturating_add(1);
            if throttled {
                s.clean = 0;
                if s.since_cut >= s.limit && s.limit > 1 {
                    s.limit = (s.limit / 2).max(1);
                    s.since_cut = 0;
                    s.cuts += 1;
                }
                false
            } else {
                s.clean += 1;
                if s.clean >= s.limit && s.limit < s.max {
                    s.limit += 1;
                    s.clean = 0;
                    true
                } else {
                    false
                }
            }
        };
        if grew {
            self.shared.freed.notify_waiters();
        }
    }

    pub fn snapshot(&self) -> LimitSnapshot {
        let s = self.lock();
        LimitSnapshot {
            limit: s.limit,
            max: s.max,
            in_use: s.in_use,
            cuts: s.cuts,
        }
    }
}

impl fmt::Debug for InFlightLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlightLimit")
            .field("state", &*self.lock())
            .finish()
    }
}

/// One request slot of an [`InFlightLimit`], freed on drop.
pub struct SlotGuard {
    shared: Arc<LimitShared>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        {
            let mut s = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            s.in_use = s.in_use.saturating_sub(1);
        }
        self.shared.freed.notify_waiters();
    }
}

/// Tokio's clock (paused in tests), as a std `Instant` for the breaker.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test]
    async fn throttled_answers_halve_the_slots_and_clean_ones_grow_them_back() {
        let limit = InFlightLimit::new(8);
        assert_eq!(limit.snapshot().limit, 8);
        limit.report(true);
        assert_eq!(limit.snapshot().limit, 4);
        // Answers of the same round (requests sent before the cut) do not cut again.
        for _ in 0..3 {
            limit.report(true);
        }
        assert_eq!(limit.snapshot().limit, 4);
        limit.report(true);
        assert_eq!(limit.snapshot().limit, 2);
        for _ in 0..2 {
            limit.report(true);
        }
        limit.report(true);
        assert_eq!(limit.snapshot().limit, 1, "never below one");
        for _ in 0..10 {
            limit.report(true);
        }
        assert_eq!(limit.snapshot().limit, 1);
        // Grow by one per `limit` clean answers: 1 → 2 after 1, → 3 after 2 more, ...
        let mut answers = 0;
        while limit.snapshot().limit < 8 {
            limit.report(false);
            answers += 1;
            assert!(answers < 100, "{:?}", limit.snapshot());
        }
        assert_eq!(answers, 1 + 2 + 3 + 4 + 5 + 6 + 7);
        limit.report(false);
        assert_eq!(limit.snapshot().limit, 8, "never above max");
        assert_eq!(limit.snapshot().cuts, 3);
    }

    #[tokio::test]
    async fn a_slot_is_held_until_its_guard_drops() {
        let limit = InFlightLimit::new(2);
        let a = limit.acquire().await;
        let _b = limit.acquire().await;
        assert_eq!(limit.snapshot().in_use, 2);
        let waiting = {
            let limit = limit.clone();
            tokio::spawn(async move {
                let _c = limit.acquire().await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a freed slot wakes a waiter")
            .unwrap();
        limit.set_max(1);
        assert_eq!(limit.snapshot().limit, 1);
    }

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window: 10,
            failure_rate: 0.5,
            min_calls: 4,
            consecutive_failures: 5,
            open_for: Duration::from_secs(5),
            half_open_probes: 2,
            max_open: Duration::from_secs(60),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A breaker opened by consecutive failures at `t0`.
    fn opened(t0: Instant) -> Breaker {
        let mut b = Breaker::new(settings());
        for i in 0..5 {
            b.on_failure(t0, &format!("boom {i}"));
        }
        assert_eq!(b.state(), BreakerState::Open);
        b
    }

    #[test]
    fn closed_allows_and_successes_keep_it_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..50 {
            assert_eq!(b.try_acquire(t0), Permit::Allowed);
            b.on_success(t0);
        }
        let s = b.snapshot(t0);
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!((s.window_len, s.window_failures), (10, 0));
        assert_eq!(s.not_closed_for, None);
    }

    #[test]
    fn opens_on_rate_but_not_before_min_calls() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        // 1 success + 2 failures = 3 calls < min_calls 4, though the rate is 67%.
        b.on_success(t0);
        b.on_failure(t0, "503");
        b.on_success(t0);
        b.on_failure(t0, "503");
        // 4 calls, 50%: opens at the threshold.
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.snapshot(t0).times_opened, 1);

        let mut b = Breaker::new(settings());
        b.on_failure(t0, "503");
        b.on_failure(t0, "503");
        b.on_success(t0);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "3 calls are fewer than min_calls"
        );
    }

    #[test]
    fn the_rate_uses_a_sliding_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        // 2 failures in 8 calls (25%), then they slide out of the 10-call window.
        for _ in 0..2 {
            b.on_failure(t0, "old");
            for _ in 0..3 {
                b.on_success(t0);
            }
        }
        for _ in 0..10 {
            b.on_success(t0);
        }
        let s = b.snapshot(t0);
        assert_eq!(
            (s.window_len, s.window_failures, s.failure_rate),
            (10, 0, 0.0)
        );
        for _ in 0..4 {
            b.on_failure(t0, "new");
            b.on_success(t0);
        }
        assert_eq!(b.snapshot(t0).window_failures, 4);
        assert_eq!(b.state(), BreakerState::Closed, "4 of 10 is below 50%");
        b.on_failure(t0, "new");
        assert_eq!(b.state(), BreakerState::Open, "5 of 10 reaches 50%");
    }

    #[test]
    fn opens_on_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            min_calls: 10,
            ..settings()
        });
        for _ in 0..4 {
            b.on_failure(t0, "refused");
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(t0, "refused");
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_success_resets_the_run() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            window: 100,
            min_calls: 100,
            ..settings()
        });
        for _ in 0..10 {
            for _ in 0..4 {
                b.on_failure(t0, "refused");
            }
            b.on_success(t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn open_makes_callers_wait_until_the_probe_time() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        assert_eq!(b.try_acquire(t0), Permit::Wait(secs(5)));
        assert_eq!(b.try_acquire(t0 + secs(2)), Permit::Wait(secs(3)));
        assert_eq!(b.snapshot(t0 + secs(2)).time_to_next_probe, Some(secs(3)));
        assert_eq!(b.snapshot(t0 + secs(2)).state, BreakerState::Open);
    }

    #[test]
    fn half_open_hands_out_only_the_allowed_probes() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        let t1 = t0 + secs(5);
        assert_eq!(b.snapshot(t1).state, BreakerState::HalfOpen);
        assert_eq!(b.snapshot(t1).time_to_next_probe, Some(Duration::ZERO));
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        assert!(matches!(b.try_acquire(t1), Permit::Wait(_)));
        let s = b.snapshot(t1);
        assert_eq!(
            (s.state, s.probes_in_flight, s.time_to_next_probe),
            (BreakerState::HalfOpen, 2, None)
        );
        // One probe back: still no third probe.
        b.on_success(t1);
        assert!(matches!(b.try_acquire(t1), Permit::Wait(_)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn probes_that_succeed_close_it_with_a_fresh_window() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        let t1 = t0 + secs(6);
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        b.on_success(t1);
        b.on_success(t1);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.try_acquire(t1), Permit::Allowed);
        let s = b.snapshot(t1);
        assert_eq!(
            (s.window_len, s.window_failures, s.consecutive_failures),
            (0, 0, 0)
        );
        assert_eq!(s.not_closed_for, None);
        assert_eq!(s.times_opened, 1);
        assert!(!b.open_too_long(t1 + secs(3600)));
    }

    #[test]
    fn a_failed_probe_reopens_it() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        let t1 = t0 + secs(5);
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        assert_eq!(b.try_acquire(t1), Permit::Probe);
        b.on_success(t1);
        b.on_failure(t1, "still down");
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire(t1 + secs(1)), Permit::Wait(secs(4)));
        let s = b.snapshot(t1);
        assert_eq!(s.times_opened, 2);
        assert_eq!(
            s.not_closed_for,
            Some(secs(5)),
            "counted from the first opening"
        );
        // The late report of the other probe changes nothing.
        b.on_success(t1);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn stale_reports_while_open_are_ignored() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        b.on_success(t0);
        b.on_failure(t0 + secs(1), "late timeout");
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(t0 + secs(1)),
            Permit::Wait(secs(4)),
            "the open period is not extended"
        );
        assert_eq!(b.last_error(), Some("late timeout"));
    }

    #[test]
    fn open_too_long_counts_from_the_first_opening() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        assert!(!b.open_too_long(t0 + secs(60)));
        // Probe and fail every period.
        let mut t = t0;
        while t < t0 + secs(61) {
            t += secs(5);
            if b.try_acquire(t) == Permit::Probe {
                b.on_failure(t, "down");
            }
        }
        assert!(b.open_too_long(t0 + secs(61)));
        assert_eq!(
            b.snapshot(t).times_opened,
            14,
            "the first opening and 13 failed probes"
        );
    }

    #[test]
    fn snapshot_reports_every_field() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        b.on_success(t0);
        b.on_failure(t0, "first");
        b.on_failure(t0 + secs(1), "second");
        let s = b.snapshot(t0 + secs(3));
        assert_eq!(
            s,
            BreakerSnapshot {
                state: BreakerState::Closed,
                failure_rate: 2.0 / 3.0,
                threshold: 0.5,
                window_len: 3,
                window_size: 10,
                window_failures: 2,
                min_calls: 4,
                consecutive_failures: 2,
                consecutive_threshold: 5,
                time_to_next_probe: None,
                probes_in_flight: 0,
                times_opened: 0,
                not_closed_for: None,
                max_open: secs(60),
                last_errors: vec![
                    RecentFailure {
                        reason: "second".into(),
                        ago: secs(2)
                    },
                    RecentFailure {
                        reason: "first".into(),
                        ago: secs(3)
                    },
                ],
            }
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "closed");
        assert_eq!(json["time_to_next_probe_ms"], serde_json::Value::Null);
        assert_eq!(json["max_open_ms"], 60_000);
        assert_eq!(json["last_errors"][0]["ago_ms"], 2000);
    }

    #[test]
    fn keeps_the_last_ten_errors_cut_short() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            consecutive_failures: 100,
            window: 100,
            min_calls: 100,
            ..settings()
        });
        for i in 0..15 {
            b.on_failure(t0, &format!("error {i}"));
        }
        b.on_failure(t0, &"é".repeat(1000));
        let s = b.snapshot(t0);
        assert_eq!(s.last_errors.len(), 10);
        assert_eq!(s.last_errors[1].reason, "error 14");
        assert_eq!(s.last_errors[9].reason, "error 6");
        assert_eq!(
            s.last_errors[0].reason.chars().count(),
            MAX_REASON_CHARS + 1
        );
    }

    #[test]
    fn out_of_range_settings_do_not_wedge_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerSettings {
            window: 0,
            min_calls: 0,
            consecutive_failures: 0,
            half_open_probes: 0,
            open_for: Duration::MAX,
            ..settings()
        });
        b.on_failure(t0, "x");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.try_acquire(t0), Permit::Wait(_)));
    }

    #[test]
    fn open_too_long_error_names_the_setting() {
        let err = BreakerError::OpenTooLong {
            not_closed_for: Duration::from_millis(301_250),
            max_open: secs(300),
            last_error: Some("connection refused".into()),
        };
        assert_eq!(
            err.to_string(),
            "the circuit breaker in front of bulk requests has not closed for 301s, longer than \
             'max_open' (300s) in the profile's [breaker] section; last error: connection refused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shared_breaker_waits_while_open_then_probes() {
        let shared = SharedBreaker::new(settings());
        for _ in 0..4 {
            shared
                .acquire()
                .await
                .unwrap()
                .failure("503 Service Unavailable");
        }
        assert_eq!(shared.snapshot().state, BreakerState::Open);
        let started = tokio::time::Instant::now();
        let probe = shared.acquire().await.unwrap();
        assert!(probe.is_probe());
        assert!(
            started.elapsed() >= secs(5),
            "acquire returned before the open period ended"
        );
        // The second probe slot is free; a third caller waits for the probes to report.
        let second = shared.acquire().await.unwrap();
        assert!(second.is_probe());
        let waiter = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.acquire().await.map(|g| g.is_probe()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        probe.success();
        second.success();
        assert_eq!(waiter.await.unwrap(), Ok(false), "closed: a normal permit");
        assert_eq!(shared.snapshot().state, BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_its_slot() {
        let shared = SharedBreaker::new(BreakerSettings {
            half_open_probes: 1,
            ..settings()
        });
        for _ in 0..4 {
            shared.acquire().await.unwrap().failure("timeout");
        }
        let probe = shared.acquire().await.unwrap();
        assert!(probe.is_probe());
        drop(probe);
        let s = shared.snapshot();
        assert_eq!(
            (s.state, s.probes_in_flight, s.times_opened),
            (BreakerState::Open, 0, 2)
        );
        assert_eq!(s.last_errors[0].reason, ABANDONED_PROBE);
        // And a later probe can still close it.
        shared.acquire().await.unwrap().success();
        assert_eq!(shared.snapshot().state, BreakerState::Closed);
        // A dropped normal permit records nothing.
        drop(shared.acquire().await.unwrap());
        assert_eq!(shared.snapshot().window_len, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_fails_once_open_too_long() {
        let shared = SharedBreaker::new(settings());
        for _ in 0..4 {
            shared
                .acquire()
                .await
                .unwrap()
                .failure("connection refused");
        }
        let err = loop {
            match shared.acquire().await {
                Ok(guard) => guard.failure("connection refused"),
                Err(e) => break e,
            }
        };
        let BreakerError::OpenTooLong {
            not_closed_for,
            max_open,
            last_error,
        } = err;
        assert!(not_closed_for > max_open);
        assert_eq!(last_error.as_deref(), Some("connection refused"));
        assert!(shared.open_too_long());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Acquire,
        Succeed(usize),
        Fail(usize),
        Drop(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Acquire),
            2 => any::<usize>().prop_map(Op::Succeed),
            2 => any::<usize>().prop_map(Op::Fail),
            1 => any::<usize>().prop_map(Op::Drop),
            2 => (0u64..8_000).prop_map(Op::Advance),
        ]
    }

    fn small_settings() -> impl Strategy<Value = BreakerSettings> {
        (
            1usize..8,
            0.1f64..=1.0,
            1usize..8,
            1u32..6,
            1u64..4_000,
            1u32..4,
        )
            .prop_map(
                |(
                    window,
                    failure_rate,
                    min_calls,
                    consecutive_failures,
                    open_ms,
                    half_open_probes,
                )| BreakerSettings {
                    window,
                    failure_rate,
                    min_calls,
                    consecutive_failures,
                    open_for: Duration::from_millis(open_ms),
                    half_open_probes,
                    max_open: Duration::from_secs(20),
                },
            )
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_outcome_sequence(settings in small_settings(), ops in prop::collection::vec(op(), 0..200)) {
            let probes = settings.half_open_probes;
            let mut b = Breaker::new(settings);
            let mut now = Instant::now();
            let mut outstanding: Vec<Permit> = Vec::new();
            let mut probes_this_period = 0u32;
            let mut last_opened = 0u64;
            for op in ops {
                let before = b.snapshot(now);
                match op {
                    Op::Acquire => match b.try_acquire(now) {
                        Permit::Wait(d) => {
                            prop_assert!(d > Duration::ZERO);
                            prop_assert_ne!(before.state, BreakerState::Closed);
                        }
                        Permit::Probe => {
                            probes_this_period += 1;
                            outstanding.push(Permit::Probe);
                        }
                        Permit::Allowed => {
                            prop_assert_eq!(before.state, BreakerState::Closed);
                            outstanding.push(Permit::Allowed);
                        }
                    },
                    Op::Succeed(i) if !outstanding.is_empty() => {
                        outstanding.swap_remove(i % outstanding.len());
                        b.on_success(now);
                    }
                    Op::Fail(i) if !outstanding.is_empty() => {
                        outstanding.swap_remove(i % outstanding.len());
                        b.on_failure(now, "boom");
                    }
                    // What `BreakerGuard` does when dropped unreported.
                    Op::Drop(i) if !outstanding.is_empty() => {
                        let dropped = outstanding.swap_remove(i % outstanding.len());
                        if dropped == Permit::Probe {
                            b.on_failure(now, ABANDONED_PROBE);
                        }
                    }
                    Op::Advance(ms) => now += Duration::from_millis(ms),
                    _ => {}
                }
                let s = b.snapshot(now);
                if s.times_opened != last_opened || s.state == BreakerState::Closed {
                    probes_this_period = 0;
                    last_opened = s.times_opened;
                }
                prop_assert!(probes_this_period <= probes, "{} probes in one period", probes_this_period);
                prop_assert!(s.probes_in_flight <= probes);
                prop_assert!(s.window_len <= s.window_size);
                prop_assert!(s.window_failures <= s.window_len);
                prop_assert!((0.0..=1.0).contains(&s.failure_rate));
                prop_assert!(s.times_opened >= before.times_opened);
                prop_assert!(s.last_errors.len() <= KEPT_ERRORS);
                prop_assert_eq!(s.state == BreakerState::Closed, s.not_closed_for.is_none());
                if s.state == BreakerState::Closed {
                    prop_assert!(s.consecutive_failures < s.consecutive_threshold);
                }
                if s.state == BreakerState::Open {
                    prop_assert!(s.time_to_next_probe.is_some_and(|d| d > Duration::ZERO));
                }
            }
        }
    }
}
