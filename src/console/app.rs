//! Console state and its transitions: `AppState`, `Action`, `update`.
//! No I/O, no terminal, no clock: time comes in `Action::Tick`, results of effects come back
//! as actions. Effects are returned, never performed here. `update` sets `dirty` when
//! something visible changed, so the runtime draws only then.
//!
//! This module owns the shell: view switching and the drill-down path, the command line,
//! the filter prompt, toasts and the `:messages` history, dialogs and forms, the header's
//! data (cluster, attach state) and the poll timers. Each view owns its own state struct
//! and its part of `update` in `views/` (`ConnectorsState`, `JobsState`, `LiveState`,
//! `BreakerState`, `DeadLettersState`, `KibanaState`, `LogsState`); `update` hands them the
//! results and keys that are theirs.

use super::command::{self, ConsoleCommand};
use super::editor::ConfigEditor;
use super::effect::Effect;
use super::form::{Form, FormPurpose};
use super::keymap::{Command, KeyChord, KeyContext, Keymap};
use super::live::{self, NodeRow};
use super::sort::{self, Sort, SortColumn, SortKey};
use super::table::{TableData, TableRow};
use super::views::{config_editor, connectors, dead_letters, jobs};
use crate::backend::ClusterSummary;
use crate::engine::progress::ProgressSnapshot;
use crate::engine::status::StatusDocument;
use crate::kibana::{ActionConnector, KibanaStatus};
use crate::model::{
    Configuration, Connector, DeadLetter, JobType, NewConnector, SyncJob, Timestamp,
};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

/// How often the Live and Breaker views poll this process's engine.
pub const LIVE_POLL_MS: i64 = 500;
/// How often an attached worker's `/status` is read.
pub const ATTACH_POLL_MS: i64 = 1000;
/// Sync jobs fetched per refresh (newest first).
pub const JOBS_PAGE: u64 = 500;
/// Toasts shown at once.
pub const MAX_TOASTS: usize = 3;
/// Messages kept in the `:messages` history (the oldest go first).
pub const MAX_MESSAGES: usize = 500;
/// How long failed reads of an attached worker count as "reconnecting…" before the header
/// says "unreachable since".
pub const ATTACH_GRACE_SECS: i64 = 5;

/// The main views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewId {
    Connectors,
    Jobs,
    Live,
    Breaker,
    DeadLetters,
    Kibana,
    Logs,
}

impl ViewId {
    pub const ALL: [ViewId; 7] = [
        Self::Connectors,
        Self::Jobs,
        Self::Live,
        Self::Breaker,
        Self::DeadLetters,
        Self::Kibana,
        Self::Logs,
    ];

    pub fn index(&self) -> usize {
        Self::ALL.iter().position(|v| v == self).unwrap_or(0)
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::Connectors => "Connectors",
            Self::Jobs => "Sync jobs",
            Self::Live => "Live sync",
            Self::Breaker => "Breaker",
            Self::DeadLetters => "Dead letters",
            Self::Kibana => "Kibana",
            Self::Logs => "Logs",
        }
    }

    pub fn key_context(&self) -> KeyContext {
        match self {
            Self::Connectors => KeyContext::Connectors,
            Self::Jobs => KeyContext::Jobs,
            Self::Live => KeyContext::Live,
            Self::Breaker => KeyContext::Breaker,
            Self::DeadLetters => KeyContext::DeadLetters,
            Self::Kibana => KeyContext::Kibana,
            Self::Logs => KeyContext::Logs,
        }
    }

    fn step(&self, delta: isize) -> ViewId {
        let n = Self::ALL.len() as isize;
        Self::ALL[((self.index() as isize + delta).rem_euclid(n)) as usize]
    }
}

/// The profile the console works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub name: String,
    pub read_only: bool,
    /// `elasticsearch` or `embedded`.
    pub backend: String,
    pub has_kibana: bool,
}

impl ProfileInfo {
    /// Whether a connectors service elsewhere may serve connectors (so "queue only" makes
    /// sense when starting a sync).
    pub fn can_queue(&self) -> bool {
        self.backend == "elasticsearch"
    }
}

/// Console settings, from `[ui]`, flags and the theme directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub refresh_ms: i64,
    pub mouse: bool,
    pub theme: String,
    /// Theme names offered by `:theme`.
    pub themes: Vec<String>,
    /// Profile names offered by `:profile`.
    pub profiles: Vec<String>,
    /// `--attach ADDR`.
    pub attach: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_ms: 2000,
            mouse: false,
            theme: "default".to_string(),
            themes: vec!["default".to_string()],
            profiles: Vec::new(),
            attach: None,
        }
    }
}

/// A service type from the source registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceType {
    pub service_type: String,
    pub name: String,
}

/// A value loaded from somewhere, with when and how the last load went.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    pub value: Option<T>,
    pub at: Option<Timestamp>,
    pub error: Option<String>,
    pub loading: bool,
}

impl<T> Default for Fetched<T> {
    fn default() -> Self {
        Self {
            value: None,
            at: None,
            error: None,
            loading: false,
        }
    }
}

impl<T: PartialEq> Fetched<T> {
    /// Stores a result; returns whether anything visible changed.
    pub fn set(&mut self, result: Result<T, String>, now: Timestamp) -> bool {
        self.loading = false;
        self.at = Some(now);
        match result {
            Ok(v) => {
                let changed = self.value.as_ref() != Some(&v) || self.error.is_some();
                self.value = Some(v);
                self.error = None;
                changed
            }
            Err(e) => {
                let changed = self.error.as_ref() != Some(&e);
                self.error = Some(e);
                changed
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastLevel {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub level: ToastLevel,
    pub text: String,
    pub until: Timestamp,
}

/// One entry of the `:messages` history: every toast, in full, with when it was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub level: ToastLevel,
    pub text: String,
    pub at: Timestamp,
    /// How many times in a row it was shown.
    pub repeats: u32,
}

/// A place along a drill-down path (Connectors › a connector's jobs › a job › its dead
/// letters): what `esc` comes back to.
#[derive(Debug, Clone)]
pub struct Crumb {
    pub view: ViewId,
    pub screens: Vec<Screen>,
    /// The Jobs view's connector filter there.
    pub jobs_connector: Option<String>,
    /// The Dead letters view's job scope there.
    pub dlq_job: Option<String>,
}

/// What the header says about `--attach`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachStatus {
    /// No answer yet.
    Attaching,
    Attached,
    /// The last read failed, after a success, for less than [`ATTACH_GRACE_SECS`].
    Reconnecting,
    /// Reads fail since then.
    Unreachable {
        since: Timestamp,
    },
}

/// The detail of one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorDetail {
    pub id: String,
    pub connector: Option<Connector>,
    pub jobs: Vec<SyncJob>,
    pub error: Option<String>,
    pub scroll: u16,
}

/// Screens pushed over the main view.
#[derive(Debug, Clone)]
pub enum Screen {
    ConnectorDetail(Box<ConnectorDetail>),
    JobDetail {
        id: String,
        scroll: u16,
    },
    DeadLetterDetail {
        id: i64,
        scroll: u16,
    },
    Editor(Box<ConfigEditor>),
    /// The history of toasts and errors (`:messages`).
    Messages {
        scroll: u16,
    },
    /// One log line in full, wrapped.
    LogLine {
        text: String,
        scroll: u16,
    },
}

/// What a yes/no dialog confirms; the dialog words itself from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmAction {
    DeleteConnector {
        id: String,
        name: String,
    },
    CancelJob {
        id: String,
        connector: String,
    },
    DropDeadLetters(Vec<i64>),
    RetryDeadLetters(Vec<i64>),
    DeleteKibana {
        id: String,
        name: String,
    },
    /// Leave the editor with unsaved changes (and then quit, when `quit`).
    DiscardEdits {
        quit: bool,
    },
    /// Quit while syncs run on this process's engine (they are suspended).
    QuitWhileSyncing {
        jobs: usize,
    },
}

impl ConfirmAction {
    pub fn question(&self) -> String {
        match self {
            Self::DeleteConnector { id, name } => {
                format!("Delete connector '{name}' ({id})? Its documents stay in the index.")
            }
            Self::CancelJob { id, connector } => format!("Cancel sync job {id} of '{connector}'?"),
            Self::DropDeadLetters(ids) if ids.len() == 1 => format!(
                "Drop dead letter {}? The document leaves the queue for good.",
                ids[0]
            ),
            Self::DropDeadLetters(ids) => format!(
                "Drop {} dead letters? The documents leave the queue for good.",
                ids.len()
            ),
            Self::RetryDeadLetters(ids) => format!("Retry {} dead letters now?", ids.len()),
            Self::DeleteKibana { id, name } => format!("Delete Kibana connector '{name}' ({id})?"),
            // Quitting is about the whole console, closing the editor only about the form.
            Self::DiscardEdits { quit: true } => "Quit syncdeck and discard the edits?".to_string(),
            Self::DiscardEdits { quit: false } => {
                "Discard the unsaved configuration changes?".to_string()
            }
            Self::QuitWhileSyncing { jobs } => {
                format!(
                    "{jobs} sync(s) run on this console's engine; quitting suspends them. Quit?"
                )
            }
        }
    }

    /// Whether the dialog is drawn as a warning.
    pub fn is_destructive(&self) -> bool {
        !matches!(self, Self::RetryDeadLetters(_))
    }
}

/// The `:` line being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLineState {
    pub input: String,
    pub candidates: Vec<String>,
    pub error: Option<String>,
}

/// Dialogs drawn over everything; they take the keys while open.
#[derive(Clone)]
pub enum Modal {
    Help {
        scroll: u16,
    },
    Confirm(ConfirmAction),
    CommandLine(CommandLineState),
    /// `/` typing into the current table's filter.
    Filter,
    Form(Box<Form>),
}

pub use super::views::breaker::BreakerState;
pub use super::views::connectors::ConnectorsState;
pub use super::views::dead_letters::DeadLettersState;
pub use super::views::jobs::{JobsFilter, JobsState};
pub use super::views::kibana::KibanaState;
pub use super::views::live_sync::LiveState;
pub use super::views::logs::LogsState;

/// When each poll last went out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timers {
    pub refresh: Option<Timestamp>,
    pub header: Option<Timestamp>,
    pub live: Option<Timestamp>,
    pub attach: Option<Timestamp>,
    pub logs: Option<Timestamp>,
}

/// What the runtime knows at start.
pub struct Init {
    pub profile: ProfileInfo,
    pub settings: Settings,
    pub keymap: Keymap,
    pub service_types: Vec<ServiceType>,
    pub now: Timestamp,
    pub size: (u16, u16),
}

/// Everything the console shows. No `Debug`: the editor's inputs may hold secrets.
pub struct AppState {
    pub now: Timestamp,
    pub size: (u16, u16),
    pub keymap: Keymap,
    pub profile: ProfileInfo,
    pub settings: Settings,
    pub service_types: Vec<ServiceType>,
    pub view: ViewId,
    /// Screens over the main view, innermost last.
    pub screens: Vec<Screen>,
    pub modal: Option<Modal>,
    pub cluster: Fetched<ClusterSummary>,
    pub connectors: ConnectorsState,
    pub jobs: JobsState,
    pub live: LiveState,
    pub breaker: BreakerState,
    pub dead_letters: DeadLettersState,
    pub kibana: KibanaState,
    pub logs: LogsState,
    pub toasts: Vec<Toast>,
    /// Every toast and error shown, oldest first (`:messages`).
    pub messages: Vec<Message>,
    /// The drill-down path, outermost first: `esc` comes back along it.
    pub path: Vec<Crumb>,
    /// The last answer of an attached worker, and since when its reads fail.
    pub attach_ok_at: Option<Timestamp>,
    pub attach_failing_since: Option<Timestamp>,
    /// A job of another worker whose last check-in is older than this is `stale`, not
    /// live (the profile's `idle_job_timeout`; the runtime sets it).
    pub idle_job_timeout_secs: i64,
    pub timers: Timers,
    /// Something visible changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
}

impl AppState {
    pub fn new(init: Init) -> Self {
        let view = if init.settings.attach.is_some() {
            ViewId::Live
        } else {
            ViewId::Connectors
        };
        Self {
            now: init.now,
            size: init.size,
            keymap: init.keymap,
            profile: init.profile,
            settings: init.settings,
            service_types: init.service_types,
            view,
            screens: Vec::new(),
            modal: None,
            cluster: Fetched::default(),
            connectors: ConnectorsState::default(),
            jobs: JobsState::default(),
            live: LiveState::default(),
            breaker: BreakerState::default(),
            dead_letters: DeadLettersState::default(),
            kibana: KibanaState::default(),
            logs: LogsState::default(),
            toasts: Vec::new(),
            messages: Vec::new(),
            path: Vec::new(),
            attach_ok_at: None,
            attach_failing_since: None,
            idle_job_timeout_secs: 300,
            timers: Timers::default(),
            dirty: true,
            quit: false,
        }
    }

    /// Seconds after which data counts as stale: two refreshes and a second.
    pub fn stale_after_secs(&self) -> i64 {
        (self.settings.refresh_ms * 2) / 1000 + 1
    }

    pub fn is_stale(&self, at: Option<Timestamp>) -> bool {
        at.is_none_or(|t| (self.now.0 - t.0).num_seconds() > self.stale_after_secs())
    }

    /// The innermost screen, if any.
    pub fn screen(&self) -> Option<&Screen> {
        self.screens.last()
    }

    /// The open editor, if it is the innermost screen.
    pub fn editor(&self) -> Option<&ConfigEditor> {
        match self.screens.last() {
            Some(Screen::Editor(e)) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn editor_mut(&mut self) -> Option<&mut ConfigEditor> {
        match self.screens.last_mut() {
            Some(Screen::Editor(e)) => Some(e),
            _ => None,
        }
    }

    /// Rows of the Live view.
    pub fn live_rows(&self) -> Vec<live::LiveRow<'_>> {
        // An unreachable worker's last answer is history, not live.
        let reachable = !matches!(self.attach_status(), Some(AttachStatus::Unreachable { .. }));
        let attached = match (&self.settings.attach, &self.live.attached.value) {
            (Some(addr), Some(doc)) if reachable => Some((addr.as_str(), doc.jobs.as_slice())),
            _ => None,
        };
        let active = self.live.active.value.as_deref().unwrap_or(&[]);
        live::rows(
            &self.live.local,
            attached,
            active,
            self.now,
            self.idle_job_timeout_secs,
        )
    }

    /// The state of `--attach`, for the header (`None` when not attached).
    pub fn attach_status(&self) -> Option<AttachStatus> {
        self.settings.attach.as_ref()?;
        Some(match (self.attach_failing_since, self.attach_ok_at) {
            (None, None) => AttachStatus::Attaching,
            (None, Some(_)) => AttachStatus::Attached,
            (Some(since), Some(ok))
                if ok <= since && (self.now.0 - since.0).num_seconds() < ATTACH_GRACE_SECS =>
            {
                AttachStatus::Reconnecting
            }
            (Some(since), _) => AttachStatus::Unreachable { since },
        })
    }

    /// Whether a job of the cluster is `stale`: active, but its worker has not checked in
    /// for longer than the idle threshold (it is most likely gone).
    pub fn job_is_stale(&self, job: &SyncJob) -> bool {
        live::is_stale(job, self.now, self.idle_job_timeout_secs)
    }

    /// The sortable columns of the current view.
    pub fn sort_columns(&self) -> &'static [SortColumn] {
        sort_columns(self.view)
    }

    /// The current view's sort, as the header shows it (`sort NAME↑`).
    pub fn sort_label(&self) -> Option<String> {
        let sort = self.current_sort()?;
        Some(format!("sort {}", sort.label(self.sort_columns())))
    }

    /// The current view's sort, if it has a table.
    fn current_sort(&self) -> Option<Sort> {
        match self.view {
            ViewId::Connectors => self.connectors.table.sort(),
            ViewId::Jobs => self.jobs.table.sort(),
            ViewId::DeadLetters => self.dead_letters.table.sort(),
            ViewId::Kibana => self.kibana.table.sort(),
            ViewId::Live | ViewId::Breaker | ViewId::Logs => None,
        }
    }

    /// Where the drill-down path stands, for the header: `connector=pg-orders`,
    /// `job=job-1`.
    pub fn scope_label(&self) -> Option<String> {
        match self.view {
            ViewId::Jobs => self
                .jobs
                .filter
                .connector
                .as_ref()
                .map(|c| format!("connector={c}")),
            ViewId::DeadLetters => self.dead_letters.table.scope().map(|j| format!("job={j}")),
            _ => None,
        }
    }

    /// The selected row of the Live view.
    pub fn live_selected(&self) -> Option<live::LiveRow<'_>> {
        let rows = self.live_rows();
        let i = self.live.cursor.selected.min(rows.len().saturating_sub(1));
        rows.into_iter().nth(i)
    }

    /// Syncs running on this process's engine.
    pub fn running_here(&self) -> usize {
        self.live
            .local
            .iter()
            .filter(|s| !s.phase.is_done())
            .count()
    }

    /// The key context the keys go to now.
    pub fn key_context(&self) -> KeyContext {
        if let Some(Modal::Confirm(_)) = self.modal {
            return KeyContext::Confirm;
        }
        if matches!(self.modal, Some(Modal::Form(_))) {
            return KeyContext::Editor;
        }
        match self.screens.last() {
            Some(Screen::Editor(_)) => KeyContext::Editor,
            Some(_) => KeyContext::Detail,
            None => self.view.key_context(),
        }
    }

    pub(crate) fn page(&self) -> isize {
        (self.size.1 as isize - 9).max(1)
    }
}

/// A mutation that can fail, named so the console words the failure and undoes what it
/// set while the mutation ran (a busy dead-letter queue, a submitting form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    StartSync {
        connector_id: String,
    },
    CancelJob {
        job_id: String,
    },
    CreateConnector,
    /// The connector was created; giving it its service type's fields failed.
    ConfigureConnector {
        connector_id: String,
    },
    DeleteConnector {
        connector_id: String,
    },
    RetryDeadLetters,
    ReadDeadLetters,
    DropDeadLetters,
    KibanaCreate,
    KibanaDelete {
        id: String,
    },
}

impl Operation {
    /// Whether the dead-letter queue was busy with it.
    pub fn is_dead_letters(&self) -> bool {
        matches!(
            self,
            Self::RetryDeadLetters | Self::ReadDeadLetters | Self::DropDeadLetters
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StartSync { connector_id } => write!(f, "starting a sync of '{connector_id}'"),
            Self::CancelJob { job_id } => write!(f, "canceling job {job_id}"),
            Self::CreateConnector => f.write_str("creating the connector"),
            Self::ConfigureConnector { connector_id } => write!(
                f,
                "connector '{connector_id}' created, but giving it its configuration fields"
            ),
            Self::DeleteConnector { connector_id } => {
                write!(f, "deleting connector '{connector_id}'")
            }
            Self::RetryDeadLetters => f.write_str("retrying dead letters"),
            Self::ReadDeadLetters => f.write_str("reading dead letters"),
            Self::DropDeadLetters => f.write_str("dropping dead letters"),
            Self::KibanaCreate => f.write_str("creating the Kibana connector"),
            Self::KibanaDelete { id } => write!(f, "deleting Kibana connector {id}"),
        }
    }
}

/// Everything that can happen to the console.
pub enum Action {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The clock, about four times a second.
    Tick(Timestamp),
    ClusterLoaded(Result<ClusterSummary, String>),
    KibanaStatusLoaded(Result<KibanaStatus, String>),
    ConnectorsLoaded(Result<Vec<Connector>, String>),
    ConnectorDetailLoaded {
        id: String,
        result: Result<(Connector, Vec<SyncJob>), String>,
    },
    EditorLoaded {
        id: String,
        result: Result<Connector, String>,
    },
    JobsLoaded(Result<Vec<SyncJob>, String>),
    ActiveJobsLoaded(Result<Vec<SyncJob>, String>),
    LiveLoaded(Vec<ProgressSnapshot>),
    AttachedLoaded(Result<StatusDocument, String>),
    /// `None`: the profile has no node pool (embedded store).
    PoolLoaded(Result<Option<Vec<NodeRow>>, String>),
    /// Whether each node asked (`Effect::ProbeNodes`) answered, and so left the pool rather
    /// than died. When the transport sniffs, a node the cluster's `_nodes` names again comes
    /// back through a `PoolLoaded` sent just before, so only one outside the cluster is
    /// still vanished here.
    NodesProbed(Vec<(String, bool)>),
    DeadLettersLoaded(Result<(Vec<DeadLetter>, u64), String>),
    /// Whose queue the loaded dead letters are: the cluster's label, and how many entries of
    /// unknown origin exist besides.
    DeadLetterScope {
        cluster: String,
        unknown: u64,
    },
    KibanaLoaded(Result<Vec<ActionConnector>, String>),
    LogsLoaded {
        lines: Vec<String>,
        total: u64,
    },
    SyncStarted {
        connector_id: String,
        job_id: String,
        run_here: bool,
    },
    /// A sync run here ended.
    SyncFinished {
        job_id: String,
        summary: String,
        ok: bool,
    },
    JobCanceled(String),
    ConfigSaved {
        connector_id: String,
        result: Result<usize, String>,
    },
    /// The fields of an `external` connector's spec (`Effect::LoadSpec`).
    SpecLoaded {
        connector_id: String,
        result: Result<Configuration, String>,
    },
    ConnectorCreated(String),
    ConnectorDeleted(String),
    DeadLettersRetried {
        succeeded: Vec<i64>,
        failed: Vec<(i64, String)>,
        /// Not sent: the index holds a newer version (with what was compared).
        superseded: Vec<(i64, String)>,
    },
    DeadLettersDropped(u64),
    KibanaCreated(String),
    KibanaExecuted {
        id: String,
        result: Result<String, String>,
    },
    KibanaDeleted(String),
    /// A job's open dead letters, for its detail.
    DeadLettersCounted {
        job_id: String,
        result: Result<u64, String>,
    },
    /// A mutation failed; `op` says which.
    Failed {
        op: Operation,
        error: String,
    },
    ProfileChanged(ProfileInfo),
    ThemeChanged(String),
    Notify(ToastLevel, String),
}

/// Applies one action; returns the effects to perform.
#[must_use = "the effects must be performed"]
pub fn update(state: &mut AppState, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(key) => on_key(state, key),
        Action::Paste(text) => on_paste(state, &text),
        Action::Mouse(m) => on_mouse(state, m),
        Action::Resize(w, h) => {
            state.size = (w, h);
            state.dirty = true;
            Vec::new()
        }
        Action::Tick(now) => on_tick(state, now),
        other => on_result(state, other),
    }
}

// ----- time ---------------------------------------------------------------------------------

fn due(last: Option<Timestamp>, now: Timestamp, every_ms: i64) -> bool {
    last.is_none_or(|t| (now.0 - t.0).num_milliseconds() >= every_ms)
}

fn on_tick(state: &mut AppState, now: Timestamp) -> Vec<Effect> {
    if state.now.0.timestamp() != now.0.timestamp() {
        // Relative times ("12s ago") and staleness move with the clock.
        state.dirty = true;
    }
    state.now = now;
    let before = state.toasts.len();
    state.toasts.retain(|t| t.until > now);
    if state.toasts.len() != before {
        state.dirty = true;
    }
    let mut fx = Vec::new();
    let every = state.settings.refresh_ms;
    if due(state.timers.header, now, every * 5) {
        state.timers.header = Some(now);
        fx.extend(header_loads(state));
    }
    if due(state.timers.refresh, now, every) {
        state.timers.refresh = Some(now);
        fx.extend(view_loads(state));
    }
    let watching_live =
        matches!(state.view, ViewId::Live | ViewId::Breaker) && state.screens.is_empty();
    let live_every = if watching_live { LIVE_POLL_MS } else { every };
    if due(state.timers.live, now, live_every) {
        state.timers.live = Some(now);
        fx.push(Effect::PollLive);
    }
    // The header shows the attach state everywhere, so the worker is read everywhere;
    // faster while its jobs are watched.
    let attach_every = if watching_live { ATTACH_POLL_MS } else { every };
    if let Some(addr) = state.settings.attach.clone()
        && !state.live.attached.loading
        && due(state.timers.attach, now, attach_every)
    {
        state.timers.attach = Some(now);
        state.live.attached.loading = true;
        fx.push(Effect::PollAttached(addr));
    }
    if state.view == ViewId::Logs && due(state.timers.logs, now, LIVE_POLL_MS) {
        state.timers.logs = Some(now);
        fx.push(Effect::PollLogs {
            known_total: state.logs.total,
        });
    }
    fx
}

fn header_loads(state: &mut AppState) -> Vec<Effect> {
    let mut fx = Vec::new();
    if !state.cluster.loading {
        state.cluster.loading = true;
        fx.push(Effect::LoadCluster);
    }
    if state.profile.has_kibana && !state.kibana.status.loading {
        state.kibana.status.loading = true;
        fx.push(Effect::LoadKibanaStatus);
    }
    fx
}

/// The loads the current view (and screen) needs, skipping those in flight.
fn view_loads(state: &mut AppState) -> Vec<Effect> {
    let mut fx = Vec::new();
    match state.screens.last() {
        Some(Screen::ConnectorDetail(d)) => fx.push(Effect::LoadConnectorDetail(d.id.clone())),
        Some(Screen::JobDetail { id, .. }) => {
            fx.push(Effect::CountDeadLetters { job_id: id.clone() })
        }
        _ => {}
    }
    if matches!(state.screens.last(), Some(Screen::Editor(_))) {
        // Never reload under someone's edits.
        return fx;
    }
    match state.view {
        ViewId::Connectors if !state.connectors.table.loading => {
            state.connectors.table.loading = true;
            fx.push(Effect::LoadConnectors);
        }
        ViewId::Jobs if !state.jobs.table.loading => fx.push(state.jobs.reload()),
        ViewId::Live if !state.live.active.loading => {
            state.live.active.loading = true;
            fx.push(Effect::LoadActiveJobs);
        }
        // An attached worker's pool comes with its `/status`.
        ViewId::Breaker if !state.breaker.pool.loading && state.settings.attach.is_none() => {
            state.breaker.pool.loading = true;
            fx.push(Effect::LoadPool);
        }
        ViewId::DeadLetters if !state.dead_letters.table.loading && !state.dead_letters.busy => {
            state.dead_letters.table.loading = true;
            fx.push(Effect::LoadDeadLetters);
        }
        ViewId::Kibana if state.profile.has_kibana && !state.kibana.table.loading => {
            state.kibana.table.loading = true;
            fx.push(Effect::LoadKibanaConnectors);
        }
        ViewId::Logs => fx.push(Effect::PollLogs {
            known_total: state.logs.total,
        }),
        _ => {}
    }
    fx
}

// ----- toasts -------------------------------------------------------------------------------

/// Shows a toast (an identical one just lives longer).
pub fn toast(state: &mut AppState, level: ToastLevel, text: impl Into<String>) {
    let text = text.into();
    let secs = match level {
        ToastLevel::Info => 4,
        ToastLevel::Warn => 6,
        ToastLevel::Error => 8,
    };
    let until = Timestamp(state.now.0 + chrono::Duration::seconds(secs));
    state.dirty = true;
    remember(state, level, &text);
    if let Some(t) = state.toasts.iter_mut().find(|t| t.text == text) {
        t.until = until;
        return;
    }
    state.toasts.push(Toast { level, text, until });
    if state.toasts.len() > MAX_TOASTS {
        state.toasts.remove(0);
    }
}

/// Adds a message to the `:messages` history (a repeat of the last one is counted).
fn remember(state: &mut AppState, level: ToastLevel, text: &str) {
    let now = state.now;
    if let Some(last) = state.messages.last_mut()
        && last.text == text
        && last.level == level
    {
        last.repeats += 1;
        last.at = now;
        return;
    }
    state.messages.push(Message {
        level,
        text: text.to_string(),
        at: now,
        repeats: 1,
    });
    if state.messages.len() > MAX_MESSAGES {
        let extra = state.messages.len() - MAX_MESSAGES;
        state.messages.drain(..extra);
    }
}

// ----- keys ---------------------------------------------------------------------------------

fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let chord = KeyChord::from_event(&key);
    match state.modal.take() {
        Some(Modal::Help { scroll }) => return help_key(state, chord, scroll),
        Some(Modal::Confirm(action)) => return confirm_key(state, chord, action),
        Some(Modal::CommandLine(line)) => return command_key(state, key, line),
        Some(Modal::Filter) => return filter_key(state, key),
        Some(Modal::Form(form)) => return form_key(state, key, form),
        None => {}
    }
    if matches!(state.screens.last(), Some(Screen::Editor(_))) {
        return config_editor::editor_key(state, key);
    }
    let context = state.key_context();
    match state.keymap.lookup(context, chord) {
        Some(command) => run_command(state, command),
        None => Vec::new(),
    }
}

fn help_key(state: &mut AppState, chord: KeyChord, scroll: u16) -> Vec<Effect> {
    state.dirty = true;
    let command = state.keymap.lookup(KeyContext::Detail, chord);
    let scroll = match command {
        Some(Command::Down) => scroll.saturating_add(1),
        Some(Command::Up) => scroll.saturating_sub(1),
        Some(Command::PageDown) => scroll.saturating_add(10),
        Some(Command::PageUp) => scroll.saturating_sub(10),
        Some(Command::Top) => 0,
        Some(Command::Quit) => return request_quit(state),
        Some(Command::Back | Command::Help) | None => return Vec::new(),
        Some(_) => return Vec::new(),
    };
    state.modal = Some(Modal::Help { scroll });
    Vec::new()
}

fn confirm_key(state: &mut AppState, chord: KeyChord, action: ConfirmAction) -> Vec<Effect> {
    state.dirty = true;
    // Enter never answers: a habit key must not delete anything, even if a user keymap
    // binds it.
    if chord == KeyChord::plain(KeyCode::Enter) {
        state.modal = Some(Modal::Confirm(action));
        return Vec::new();
    }
    match state.keymap.lookup_in(KeyContext::Confirm, chord) {
        Some(Command::Confirm) => confirmed(state, action),
        Some(Command::Back) => Vec::new(),
        _ => {
            state.modal = Some(Modal::Confirm(action));
            Vec::new()
        }
    }
}

fn confirmed(state: &mut AppState, action: ConfirmAction) -> Vec<Effect> {
    match action {
        ConfirmAction::DeleteConnector { id, .. } => vec![Effect::DeleteConnector(id)],
        ConfirmAction::CancelJob { id, .. } => vec![Effect::CancelJob(id)],
        ConfirmAction::DropDeadLetters(ids) => dead_letters::start_drop(state, ids),
        ConfirmAction::RetryDeadLetters(ids) => dead_letters::start_retry(state, ids),
        ConfirmAction::DeleteKibana { id, .. } => vec![Effect::KibanaDelete(id)],
        ConfirmAction::DiscardEdits { quit } => {
            state.screens.pop();
            if quit {
                request_quit(state)
            } else {
                Vec::new()
            }
        }
        ConfirmAction::QuitWhileSyncing { .. } => {
            state.quit = true;
            vec![Effect::Quit]
        }
    }
}

fn text_edit(input: &mut String, key: &KeyEvent) -> bool {
    match key.code {
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            let changed = !input.is_empty();
            input.clear();
            changed
        }
        KeyCode::Char('w') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            let trimmed = input.trim_end().len();
            let cut = input[..trimmed].rfind(' ').map_or(0, |i| i + 1);
            let changed = cut != input.len();
            input.truncate(cut);
            changed
        }
        KeyCode::Char(c)
            if !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            input.push(c);
            true
        }
        KeyCode::Backspace => input.pop().is_some(),
        _ => false,
    }
}

fn command_key(state: &mut AppState, key: KeyEvent, mut line: CommandLineState) -> Vec<Effect> {
    state.dirty = true;
    match key.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Enter => return run_console_command(state, &line.input),
        KeyCode::Tab => {
            let (text, candidates) = command::complete(
                &line.input,
                &state.settings.profiles,
                &state.settings.themes,
            );
            line.input = text;
            line.candidates = candidates;
        }
        KeyCode::Backspace if line.input.is_empty() => return Vec::new(),
        _ => {
            if text_edit(&mut line.input, &key) {
                line.error = None;
                line.candidates = command::candidates(
                    &line.input,
                    &state.settings.profiles,
                    &state.settings.themes,
                );
            } else if KeyChord::from_event(&key).is_chord()
                && state
                    .keymap
                    .lookup_in(KeyContext::Global, KeyChord::from_event(&key))
                    == Some(Command::Quit)
            {
                return request_quit(state);
            }
        }
    }
    state.modal = Some(Modal::CommandLine(line));
    Vec::new()
}

fn run_console_command(state: &mut AppState, input: &str) -> Vec<Effect> {
    match command::parse(input) {
        Ok(ConsoleCommand::View(view)) => switch_view(state, view),
        Ok(ConsoleCommand::Quit) => request_quit(state),
        Ok(ConsoleCommand::Help) => {
            state.modal = Some(Modal::Help { scroll: 0 });
            Vec::new()
        }
        Ok(ConsoleCommand::Refresh) => refresh_now(state),
        Ok(ConsoleCommand::Profile(name)) => {
            if !state.settings.profiles.contains(&name) {
                toast(
                    state,
                    ToastLevel::Warn,
                    format!(
                        "no profile '{name}' (known: {})",
                        state.settings.profiles.join(", ")
                    ),
                );
                return Vec::new();
            }
            if state.editor().is_some_and(ConfigEditor::is_dirty) {
                toast(
                    state,
                    ToastLevel::Warn,
                    "save or discard the configuration changes first",
                );
                return Vec::new();
            }
            toast(
                state,
                ToastLevel::Info,
                format!("switching to profile '{name}'…"),
            );
            vec![Effect::SwitchProfile(name)]
        }
        Ok(ConsoleCommand::Theme(name)) => vec![Effect::LoadTheme(name)],
        Ok(ConsoleCommand::Mouse(on)) => {
            let on = on.unwrap_or(!state.settings.mouse);
            state.settings.mouse = on;
            let text = if on {
                "mouse on: the wheel scrolls (hold shift to select text)"
            } else {
                "mouse off: the terminal selects text"
            };
            toast(state, ToastLevel::Info, text);
            vec![Effect::SetMouse(on)]
        }
        Ok(ConsoleCommand::Messages) => open_messages(state),
        Ok(ConsoleCommand::Sort { column, desc }) => {
            match sort::find(state.sort_columns(), &column) {
                Ok(c) => {
                    set_sort(state, Some(Sort { key: c.key, desc }));
                    Vec::new()
                }
                Err(message) => reopen_command_line(state, message),
            }
        }
        Ok(ConsoleCommand::ViewWith(view, arg)) => open_view_with(state, view, &arg),
        // The prompt starts empty again, the error above it says what was wrong.
        Err(message) => reopen_command_line(state, message),
    }
}

fn reopen_command_line(state: &mut AppState, message: String) -> Vec<Effect> {
    state.modal = Some(Modal::CommandLine(CommandLineState {
        input: String::new(),
        candidates: Vec::new(),
        error: Some(message),
    }));
    Vec::new()
}

fn filter_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    state.dirty = true;
    let mut text = current_filter(state);
    match key.code {
        KeyCode::Esc => {
            set_filter(state, "");
            return Vec::new();
        }
        KeyCode::Enter => return Vec::new(),
        KeyCode::Down => {
            nav(state, Command::Down);
        }
        KeyCode::Up => {
            nav(state, Command::Up);
        }
        _ => {
            if text_edit(&mut text, &key) {
                set_filter(state, &text);
            } else if KeyChord::from_event(&key).is_chord()
                && state
                    .keymap
                    .lookup_in(KeyContext::Global, KeyChord::from_event(&key))
                    == Some(Command::Quit)
            {
                return request_quit(state);
            }
        }
    }
    state.modal = Some(Modal::Filter);
    Vec::new()
}

fn form_key(state: &mut AppState, key: KeyEvent, mut form: Box<Form>) -> Vec<Effect> {
    state.dirty = true;
    let chord = KeyChord::from_event(&key);
    let mut command = state.keymap.lookup_in(KeyContext::Editor, chord);
    // Up/down move inside a multi-line input rather than between fields.
    if form.focus_is_multiline() && matches!(key.code, KeyCode::Up | KeyCode::Down) {
        command = None;
    }
    match command {
        Some(Command::Back) => return Vec::new(),
        Some(Command::NextField) => {
            form.move_focus(1);
        }
        Some(Command::PrevField) => {
            form.move_focus(-1);
        }
        Some(Command::Save) => return submit_form(state, form),
        _ if key.code == KeyCode::Enter && !form.focus_is_multiline() => {
            return submit_form(state, form);
        }
        _ if chord.is_chord()
            && state.keymap.lookup_in(KeyContext::Global, chord) == Some(Command::Quit) =>
        {
            return request_quit(state);
        }
        _ => {
            form.input(key);
        }
    }
    state.modal = Some(Modal::Form(form));
    Vec::new()
}

fn submit_form(state: &mut AppState, mut form: Box<Form>) -> Vec<Effect> {
    if form.submitting {
        state.modal = Some(Modal::Form(form));
        return Vec::new();
    }
    let effect = match &form.purpose {
        FormPurpose::StartSync { connector_id, .. } => {
            let job_type = if form.choice(0).as_deref() == Some("incremental") {
                JobType::Incremental
            } else {
                JobType::Full
            };
            let run_here = form.choice(1).as_deref() != Some("queue");
            // Starting is quick; the dialog closes at once and a toast reports.
            return vec![Effect::StartSync {
                connector_id: connector_id.clone(),
                job_type,
                run_here,
            }];
        }
        FormPurpose::NewConnector => {
            let index = form.text(3);
            if index.is_empty() {
                Err("the index name cannot be empty".to_string())
            } else {
                let id = form.text(1);
                let name = form.text(2);
                Ok(Effect::CreateConnector(NewConnector {
                    id: (!id.is_empty()).then_some(id),
                    name: (!name.is_empty()).then_some(name),
                    index_name: Some(index),
                    service_type: form.choice(0),
                    is_native: Some(false),
                    ..Default::default()
                }))
            }
        }
        FormPurpose::KibanaCreate => {
            let (name, index) = (form.text(0), form.text(1));
            if name.is_empty() || index.is_empty() {
                Err("name and index are both needed".to_string())
            } else {
                Ok(Effect::KibanaCreateIndex {
                    name,
                    index,
                    refresh: form.toggle(2),
                })
            }
        }
        FormPurpose::KibanaExecute { id, .. } => {
            match serde_json::from_str::<serde_json::Value>(&form.text(0)) {
                Ok(doc)
                    if doc.is_object()
                        || doc
                            .as_array()
                            .is_some_and(|a| !a.is_empty() && a.iter().all(|d| d.is_object())) =>
                {
                    Ok(Effect::KibanaExecute {
                        id: id.clone(),
                        documents: doc,
                    })
                }
                Ok(_) => {
                    Err("the document must be a JSON object, or an array of objects".to_string())
                }
                Err(e) => Err(format!("not JSON: {e}")),
            }
        }
    };
    match effect {
        Ok(effect) => {
            form.submitting = true;
            form.error = None;
            state.modal = Some(Modal::Form(form));
            vec![effect]
        }
        Err(message) => {
            form.error = Some(message);
            state.modal = Some(Modal::Form(form));
            Vec::new()
        }
    }
}

/// On a read-only profile, says so and returns `true`: the caller does nothing.
pub(crate) fn refuse_if_read_only(state: &mut AppState) -> bool {
    if !state.profile.read_only {
        return false;
    }
    toast(
        state,
        ToastLevel::Warn,
        format!("refused: profile '{}' is read-only", state.profile.name),
    );
    true
}

fn on_paste(state: &mut AppState, text: &str) -> Vec<Effect> {
    state.dirty = true;
    match &mut state.modal {
        Some(Modal::Form(form)) => {
            form.paste(text);
            return Vec::new();
        }
        Some(Modal::CommandLine(line)) => {
            line.input.push_str(&text.replace(['\r', '\n'], " "));
            return Vec::new();
        }
        Some(Modal::Filter) => {
            let mut filter = current_filter(state);
            filter.push_str(&text.replace(['\r', '\n'], " "));
            set_filter(state, &filter);
            return Vec::new();
        }
        _ => {}
    }
    if !state.profile.read_only
        && let Some(e) = state.editor_mut()
    {
        e.paste(text);
    }
    Vec::new()
}

fn on_mouse(state: &mut AppState, m: MouseEvent) -> Vec<Effect> {
    if state.modal.is_some() || state.editor().is_some() {
        return Vec::new();
    }
    match m.kind {
        MouseEventKind::ScrollDown => nav(state, Command::Down),
        MouseEventKind::ScrollUp => nav(state, Command::Up),
        _ => {}
    }
    Vec::new()
}

// ----- commands -----------------------------------------------------------------------------

/// Runs one command of the keymap.
pub fn run_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    if command.is_mutating() && refuse_if_read_only(state) {
        return Vec::new();
    }
    state.dirty = true;
    match command {
        Command::Quit => request_quit(state),
        Command::Help => {
            state.modal = Some(Modal::Help { scroll: 0 });
            Vec::new()
        }
        Command::CommandLine => {
            state.modal = Some(Modal::CommandLine(CommandLineState::default()));
            Vec::new()
        }
        Command::Filter => {
            if has_filter(state) {
                state.screens.clear();
                state.modal = Some(Modal::Filter);
            } else {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("the {} view has no table to filter", state.view.title()),
                );
            }
            Vec::new()
        }
        Command::NextView => switch_view(state, state.view.step(1)),
        Command::PrevView => switch_view(state, state.view.step(-1)),
        Command::ViewConnectors => switch_view(state, ViewId::Connectors),
        Command::ViewJobs => switch_view(state, ViewId::Jobs),
        Command::ViewLive => switch_view(state, ViewId::Live),
        Command::ViewBreaker => switch_view(state, ViewId::Breaker),
        Command::ViewDeadLetters => switch_view(state, ViewId::DeadLetters),
        Command::ViewKibana => switch_view(state, ViewId::Kibana),
        Command::ViewLogs => switch_view(state, ViewId::Logs),
        Command::Up
        | Command::Down
        | Command::PageUp
        | Command::PageDown
        | Command::Top
        | Command::Bottom => {
            nav(state, command);
            Vec::new()
        }
        Command::Open => open_detail(state),
        Command::Back => back(state),
        Command::Copy => copy(state),
        Command::Refresh => refresh_now(state),
        Command::StartSync => connectors::start_sync(state),
        Command::EditConfig => connectors::edit_config(state),
        Command::NewConnector => new_item(state),
        Command::Delete => delete_item(state),
        Command::CancelJob => jobs::cancel_job(state),
        Command::StatusFilter => jobs::cycle_status_filter(state),
        Command::ConnectorFilter => jobs::toggle_connector_filter(state),
        Command::Mark | Command::MarkAll | Command::Retry | Command::RetryAll | Command::Drop => {
            super::views::dead_letters::on_command(state, command)
        }
        Command::Execute => super::views::kibana::execute(state),
        Command::Messages => open_messages(state),
        Command::WrapLines => {
            if state.view == ViewId::Logs && state.screens.is_empty() {
                state.logs.wrap = !state.logs.wrap;
            }
            Vec::new()
        }
        Command::ConnectorJobs => connector_jobs(state),
        Command::JobDeadLetters => job_dead_letters(state),
        Command::SortId
        | Command::SortName
        | Command::SortType
        | Command::SortIndex
        | Command::SortStatus
        | Command::SortAge
        | Command::SortConnector
        | Command::SortJob
        | Command::SortError
        | Command::SortWorker => {
            if let Some(key) = command.sort_key() {
                sort_by_key(state, key);
            }
            Vec::new()
        }
        Command::NextField
        | Command::PrevField
        | Command::Save
        | Command::Reveal
        | Command::LoadSpec
        | Command::Confirm
        | Command::Unbind => Vec::new(),
    }
}

fn open_messages(state: &mut AppState) -> Vec<Effect> {
    state.dirty = true;
    if !matches!(state.screens.last(), Some(Screen::Messages { .. })) {
        // Newest at the bottom, shown first: scrolled to the end.
        state.screens.push(Screen::Messages { scroll: u16::MAX });
    }
    Vec::new()
}

/// The sortable columns of a view.
pub fn sort_columns(view: ViewId) -> &'static [SortColumn] {
    match view {
        ViewId::Connectors => sort::CONNECTORS,
        ViewId::Jobs => sort::JOBS,
        ViewId::DeadLetters => sort::DEAD_LETTERS,
        ViewId::Kibana => sort::KIBANA,
        ViewId::Live | ViewId::Breaker | ViewId::Logs => &[],
    }
}

/// Shift + a column's letter: sorts by it, again reverses. Times start newest first.
fn sort_by_key(state: &mut AppState, key: SortKey) {
    if !state.screens.is_empty() {
        return;
    }
    if !state.sort_columns().iter().any(|c| c.key == key) {
        toast(
            state,
            ToastLevel::Info,
            format!(
                "the {} view cannot be sorted by {key:?}",
                state.view.title()
            ),
        );
        return;
    }
    let desc = match state.current_sort() {
        Some(s) if s.key == key => !s.desc,
        _ => key == SortKey::Age,
    };
    set_sort(state, Some(Sort { key, desc }));
}

/// Sorts the current view's table; it stays sorted so across refreshes and view changes.
fn set_sort(state: &mut AppState, sort: Option<Sort>) {
    state.dirty = true;
    match state.view {
        ViewId::Connectors => state.connectors.table.set_sort(sort),
        ViewId::Jobs => state.jobs.table.set_sort(sort),
        ViewId::DeadLetters => state.dead_letters.table.set_sort(sort),
        ViewId::Kibana => state.kibana.table.set_sort(sort),
        ViewId::Live | ViewId::Breaker | ViewId::Logs => {}
    }
}

/// Where the console stands now, to come back to.
fn crumb(state: &AppState) -> Crumb {
    Crumb {
        view: state.view,
        screens: state.screens.clone(),
        jobs_connector: state.jobs.filter.connector.clone(),
        dlq_job: state.dead_letters.table.scope().map(str::to_string),
    }
}

/// Drill-down: the jobs of the selected (or shown) connector; esc comes back.
fn connector_jobs(state: &mut AppState) -> Vec<Effect> {
    let Some(c) = connectors::target_connector(state) else {
        return Vec::new();
    };
    drill_to_jobs(state, c.id)
}

fn drill_to_jobs(state: &mut AppState, connector_id: String) -> Vec<Effect> {
    if state.editor().is_some() {
        return Vec::new();
    }
    let here = crumb(state);
    state.path.push(here);
    go_to(state, ViewId::Jobs);
    if state.jobs.filter.connector.as_deref() != Some(connector_id.as_str()) {
        state.jobs.filter.connector = Some(connector_id);
        return jobs::reload_jobs(state);
    }
    Vec::new()
}

/// The job a command applies to: the job detail's, or the selected job (Jobs or Live).
pub(crate) fn target_job(state: &AppState) -> Option<String> {
    match (state.screens.last(), state.view) {
        (Some(Screen::JobDetail { id, .. }), _) => Some(id.clone()),
        (Some(_), _) => None,
        (None, ViewId::Jobs) => state.jobs.table.selected().map(|j| j.id.clone()),
        (None, ViewId::Live) => state.live_selected().map(|r| r.job_id.to_string()),
        _ => None,
    }
}

/// Drill-down: the dead letters of the selected (or shown) job; esc comes back.
fn job_dead_letters(state: &mut AppState) -> Vec<Effect> {
    let Some(job_id) = target_job(state) else {
        return Vec::new();
    };
    drill_to_dead_letters(state, job_id)
}

fn drill_to_dead_letters(state: &mut AppState, job_id: String) -> Vec<Effect> {
    let here = crumb(state);
    state.path.push(here);
    state.dead_letters.table.set_scope(Some(job_id));
    go_to(state, ViewId::DeadLetters)
}

/// `:connectors ARG`, `:jobs ARG`, `:dlq ARG`: a known connector (jobs) or job (dead
/// letters) drills down to it; anything else filters the view.
fn open_view_with(state: &mut AppState, view: ViewId, arg: &str) -> Vec<Effect> {
    let is_connector = |s: &AppState| s.connectors.knows(arg);
    let is_job = |s: &AppState| {
        s.jobs.table.all().iter().any(|j| j.id == arg)
            || s.dead_letters.table.all().iter().any(|d| d.job_id == arg)
    };
    match view {
        ViewId::Jobs if is_connector(state) => drill_to_jobs(state, arg.to_string()),
        ViewId::DeadLetters if is_job(state) => drill_to_dead_letters(state, arg.to_string()),
        _ => {
            let fx = switch_view(state, view);
            if state.view == view && has_filter(state) {
                set_filter(state, arg);
            }
            fx
        }
    }
}

pub(crate) fn request_quit(state: &mut AppState) -> Vec<Effect> {
    state.dirty = true;
    if state
        .screens
        .iter()
        .any(|s| matches!(s, Screen::Editor(e) if e.is_dirty()))
    {
        // Bring the dirty editor to the top so the question is about what is on screen.
        while !matches!(state.screens.last(), Some(Screen::Editor(e)) if e.is_dirty()) {
            state.screens.pop();
        }
        state.modal = Some(Modal::Confirm(ConfirmAction::DiscardEdits { quit: true }));
        return Vec::new();
    }
    let jobs = state.running_here();
    if jobs > 0 {
        state.modal = Some(Modal::Confirm(ConfirmAction::QuitWhileSyncing { jobs }));
        return Vec::new();
    }
    state.quit = true;
    vec![Effect::Quit]
}

/// Switches the main view (a new place: the drill-down path and its scopes end, toasts of
/// the old view go); loads its data when it is older than a refresh.
pub fn switch_view(state: &mut AppState, view: ViewId) -> Vec<Effect> {
    if state.editor().is_some_and(ConfigEditor::is_dirty) {
        toast(
            state,
            ToastLevel::Warn,
            "save (ctrl-s) or discard (esc) the configuration changes first",
        );
        return Vec::new();
    }
    state.path.clear();
    state.dead_letters.table.set_scope(None);
    go_to(state, view)
}

/// Shows a main view, keeping the drill-down path.
pub(crate) fn go_to(state: &mut AppState, view: ViewId) -> Vec<Effect> {
    state.dirty = true;
    state.toasts.clear();
    state.screens.clear();
    state.view = view;
    let fresh = match view {
        ViewId::Connectors => !state
            .connectors
            .table
            .is_stale(state.now, state.settings.refresh_ms / 1000),
        ViewId::Jobs => !state
            .jobs
            .table
            .is_stale(state.now, state.settings.refresh_ms / 1000),
        ViewId::DeadLetters => !state
            .dead_letters
            .table
            .is_stale(state.now, state.settings.refresh_ms / 1000),
        ViewId::Kibana => !state
            .kibana
            .table
            .is_stale(state.now, state.settings.refresh_ms / 1000),
        _ => false,
    };
    let mut fx = if fresh { Vec::new() } else { view_loads(state) };
    if matches!(view, ViewId::Live | ViewId::Breaker) {
        state.timers.live = Some(state.now);
        fx.push(Effect::PollLive);
    }
    fx
}

pub(crate) fn refresh_now(state: &mut AppState) -> Vec<Effect> {
    state.timers.refresh = Some(state.now);
    let mut fx = view_loads(state);
    fx.extend(header_loads(state));
    fx.push(Effect::PollLive);
    fx
}

pub(crate) fn has_filter(state: &AppState) -> bool {
    matches!(
        state.view,
        ViewId::Connectors | ViewId::Jobs | ViewId::DeadLetters | ViewId::Kibana | ViewId::Logs
    )
}

/// The filter text of the current view.
pub fn current_filter(state: &AppState) -> String {
    match state.view {
        ViewId::Connectors => state.connectors.table.filter().to_string(),
        ViewId::Jobs => state.jobs.table.filter().to_string(),
        ViewId::DeadLetters => state.dead_letters.table.filter().to_string(),
        ViewId::Kibana => state.kibana.table.filter().to_string(),
        ViewId::Logs => state.logs.filter.clone(),
        ViewId::Live | ViewId::Breaker => String::new(),
    }
}

pub(crate) fn set_filter(state: &mut AppState, text: &str) {
    state.dirty = true;
    match state.view {
        ViewId::Connectors => state.connectors.table.set_filter(text),
        ViewId::Jobs => state.jobs.table.set_filter(text),
        ViewId::DeadLetters => state.dead_letters.table.set_filter(text),
        ViewId::Kibana => state.kibana.table.set_filter(text),
        ViewId::Logs => {
            state.logs.filter = text.to_string();
            state.logs.scroll_back = 0;
        }
        ViewId::Live | ViewId::Breaker => {}
    }
}

fn move_table<T: TableRow>(t: &mut TableData<T>, command: Command, page: isize) {
    match command {
        Command::Up => t.move_by(-1),
        Command::Down => t.move_by(1),
        Command::PageUp => t.move_by(-page),
        Command::PageDown => t.move_by(page),
        Command::Top => t.to_top(),
        Command::Bottom => t.to_bottom(),
        _ => false,
    };
}

fn scroll(value: u16, command: Command, page: isize) -> u16 {
    let page = page.clamp(1, u16::MAX as isize) as u16;
    match command {
        Command::Up => value.saturating_sub(1),
        Command::Down => value.saturating_add(1),
        Command::PageUp => value.saturating_sub(page),
        Command::PageDown => value.saturating_add(page),
        Command::Top => 0,
        Command::Bottom => u16::MAX,
        _ => value,
    }
}

/// Moves the selection (or scrolls a detail screen).
pub(crate) fn nav(state: &mut AppState, command: Command) {
    state.dirty = true;
    let page = state.page();
    match state.screens.last_mut() {
        Some(Screen::ConnectorDetail(d)) => {
            d.scroll = scroll(d.scroll, command, page);
            return;
        }
        Some(Screen::JobDetail { scroll: s, .. })
        | Some(Screen::DeadLetterDetail { scroll: s, .. })
        | Some(Screen::Messages { scroll: s })
        | Some(Screen::LogLine { scroll: s, .. }) => {
            *s = scroll(*s, command, page);
            return;
        }
        Some(Screen::Editor(_)) => return,
        None => {}
    }
    match state.view {
        ViewId::Connectors => move_table(&mut state.connectors.table, command, page),
        ViewId::Jobs => move_table(&mut state.jobs.table, command, page),
        ViewId::DeadLetters => move_table(&mut state.dead_letters.table, command, page),
        ViewId::Kibana => move_table(&mut state.kibana.table, command, page),
        ViewId::Live | ViewId::Breaker => {
            let len = state.live_rows().len();
            let c = &mut state.live.cursor;
            match command {
                Command::Up => c.move_by(-1, len),
                Command::Down => c.move_by(1, len),
                Command::PageUp => c.move_by(-page, len),
                Command::PageDown => c.move_by(page, len),
                Command::Top => c.to_top(),
                Command::Bottom => c.to_bottom(len),
                _ => false,
            };
            state.live.selected_job = state.live_selected().map(|r| r.job_id.to_string());
        }
        ViewId::Logs => {
            let len = state.logs.visible().len();
            let back = state.logs.scroll_back as isize;
            let target = match command {
                Command::Up => back + 1,
                Command::Down => back - 1,
                Command::PageUp => back + page,
                Command::PageDown => back - page,
                Command::Top => len as isize,
                Command::Bottom => 0,
                _ => back,
            };
            state.logs.scroll_back = target.clamp(0, len.saturating_sub(1) as isize) as usize;
        }
    }
}

fn open_detail(state: &mut AppState) -> Vec<Effect> {
    if !state.screens.is_empty() {
        return Vec::new();
    }
    match state.view {
        ViewId::Connectors => {
            let Some(id) = state.connectors.table.selected().map(|c| c.id.clone()) else {
                return Vec::new();
            };
            let connector = state.connectors.table.selected().cloned();
            state
                .screens
                .push(Screen::ConnectorDetail(Box::new(ConnectorDetail {
                    id: id.clone(),
                    connector,
                    jobs: Vec::new(),
                    error: None,
                    scroll: 0,
                })));
            vec![Effect::LoadConnectorDetail(id)]
        }
        ViewId::Jobs => {
            let Some(id) = state.jobs.table.selected().map(|j| j.id.clone()) else {
                return Vec::new();
            };
            state.screens.push(Screen::JobDetail {
                id: id.clone(),
                scroll: 0,
            });
            vec![Effect::CountDeadLetters { job_id: id }]
        }
        ViewId::Logs => {
            if let Some(text) = state.logs.selected() {
                state.screens.push(Screen::LogLine { text, scroll: 0 });
            }
            Vec::new()
        }
        ViewId::DeadLetters => {
            if let Some(id) = state.dead_letters.table.selected().map(|d| d.id) {
                state
                    .screens
                    .push(Screen::DeadLetterDetail { id, scroll: 0 });
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn back(state: &mut AppState) -> Vec<Effect> {
    if state.screens.pop().is_some() {
        return Vec::new();
    }
    if let Some(crumb) = state.path.pop() {
        return restore(state, crumb);
    }
    if !current_filter(state).is_empty() {
        set_filter(state, "");
    } else if state.view == ViewId::DeadLetters && !state.dead_letters.marked.is_empty() {
        state.dead_letters.marked.clear();
    }
    Vec::new()
}

/// Comes back to a place of the drill-down path.
fn restore(state: &mut AppState, crumb: Crumb) -> Vec<Effect> {
    let mut fx = go_to(state, crumb.view);
    state.screens = crumb.screens;
    state.dead_letters.table.set_scope(crumb.dlq_job);
    if state.jobs.filter.connector != crumb.jobs_connector {
        state.jobs.filter.connector = crumb.jobs_connector;
        fx.retain(|e| !matches!(e, Effect::LoadJobs(_)));
        fx.extend(jobs::reload_jobs(state));
    }
    fx
}

fn copy(state: &mut AppState) -> Vec<Effect> {
    let text = match (state.screens.last(), state.view) {
        (Some(Screen::DeadLetterDetail { id, .. }), _) => state.dead_letters.document(*id),
        (Some(Screen::ConnectorDetail(d)), _) => Some(d.id.clone()),
        (Some(Screen::JobDetail { id, .. }), _) => Some(id.clone()),
        (Some(Screen::Editor(e)), _) => Some(e.connector_id.clone()),
        (Some(Screen::LogLine { text, .. }), _) => Some(text.clone()),
        (Some(Screen::Messages { .. }), _) => state.messages.last().map(|m| m.text.clone()),
        (None, ViewId::Connectors) => state.connectors.table.selected().map(|c| c.id.clone()),
        (None, ViewId::Jobs) => state.jobs.table.selected().map(|j| j.id.clone()),
        (None, ViewId::Live | ViewId::Breaker) => {
            state.live_selected().map(|r| r.job_id.to_string())
        }
        (None, ViewId::DeadLetters) => state
            .dead_letters
            .table
            .selected()
            .and_then(|d| state.dead_letters.document(d.id)),
        (None, ViewId::Kibana) => state.kibana.table.selected().map(|k| k.id.clone()),
        (None, ViewId::Logs) => state.logs.selected(),
    };
    match text {
        // The runtime says "copied" once the terminal took the sequence.
        Some(text) => vec![Effect::Copy(text)],
        None => {
            toast(state, ToastLevel::Info, "nothing selected to copy");
            Vec::new()
        }
    }
}

fn new_item(state: &mut AppState) -> Vec<Effect> {
    if !state.screens.is_empty() {
        return Vec::new();
    }
    let form = match state.view {
        ViewId::Connectors => {
            let types: Vec<(String, String)> = state
                .service_types
                .iter()
                .map(|t| (t.service_type.clone(), t.name.clone()))
                .collect();
            Form::new_connector(&types)
        }
        ViewId::Kibana if state.profile.has_kibana => Form::kibana_create(),
        ViewId::Kibana => {
            toast(
                state,
                ToastLevel::Info,
                format!("profile '{}' has no Kibana", state.profile.name),
            );
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    state.modal = Some(Modal::Form(Box::new(form)));
    Vec::new()
}

fn delete_item(state: &mut AppState) -> Vec<Effect> {
    let action = match state.view {
        ViewId::Connectors => {
            connectors::target_connector(state).map(|c| ConfirmAction::DeleteConnector {
                name: c.name.clone(),
                id: c.id,
            })
        }
        ViewId::Kibana if state.screens.is_empty() => {
            state
                .kibana
                .table
                .selected()
                .map(|k| ConfirmAction::DeleteKibana {
                    id: k.id.clone(),
                    name: k.name.clone(),
                })
        }
        _ => None,
    };
    if let Some(action) = action {
        state.modal = Some(Modal::Confirm(action));
    }
    Vec::new()
}

// ----- results ------------------------------------------------------------------------------

fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
    let now = state.now;
    match action {
        action @ (Action::ConnectorsLoaded(..)
        | Action::ConnectorDetailLoaded { .. }
        | Action::ConnectorCreated(..)
        | Action::ConnectorDeleted(..)) => {
            return super::views::connectors::on_result(state, action);
        }
        action @ (Action::JobsLoaded(..)
        | Action::JobCanceled(..)
        | Action::DeadLettersCounted { .. }) => {
            return super::views::jobs::on_result(state, action);
        }
        action @ (Action::KibanaLoaded(..)
        | Action::KibanaCreated(..)
        | Action::KibanaExecuted { .. }
        | Action::KibanaDeleted(..)) => {
            return super::views::kibana::on_result(state, action);
        }
        action @ (Action::DeadLetterScope { .. }
        | Action::DeadLettersLoaded(..)
        | Action::DeadLettersRetried { .. }
        | Action::DeadLettersDropped(..)) => {
            return super::views::dead_letters::on_result(state, action);
        }
        action @ (Action::ActiveJobsLoaded(..)
        | Action::LiveLoaded(..)
        | Action::AttachedLoaded(..)
        | Action::SyncStarted { .. }
        | Action::SyncFinished { .. }) => {
            return super::views::live_sync::on_result(state, action);
        }
        action @ (Action::PoolLoaded(..) | Action::NodesProbed(..)) => {
            return super::views::breaker::on_result(state, action);
        }
        action @ Action::LogsLoaded { .. } => {
            return super::views::logs::on_result(state, action);
        }
        action @ (Action::EditorLoaded { .. }
        | Action::ConfigSaved { .. }
        | Action::SpecLoaded { .. }) => {
            return super::views::config_editor::on_result(state, action);
        }
        Action::ClusterLoaded(result) => {
            state.dirty |= state.cluster.set(result, now);
        }
        Action::KibanaStatusLoaded(result) => {
            state.dirty |= state.kibana.status.set(result, now);
        }
        Action::Failed { op, error } => {
            if let Some(Modal::Form(form)) = &mut state.modal {
                form.submitting = false;
                form.error = Some(error.clone());
            }
            if op.is_dead_letters() {
                state.dead_letters.busy = false;
            }
            toast(state, ToastLevel::Error, format!("{op}: {error}"));
        }
        Action::ProfileChanged(profile) => {
            let name = profile.name.clone();
            reset_for_profile(state, profile);
            toast(state, ToastLevel::Info, format!("profile '{name}'"));
            return on_tick(state, now);
        }
        Action::ThemeChanged(name) => {
            toast(state, ToastLevel::Info, format!("theme '{name}'"));
            state.settings.theme = name;
        }
        Action::Notify(level, text) => toast(state, level, text),
        Action::Key(_)
        | Action::Paste(_)
        | Action::Mouse(_)
        | Action::Resize(..)
        | Action::Tick(_) => {}
    }
    Vec::new()
}

pub(crate) fn load_table<T: TableRow + PartialEq>(
    state: &mut AppState,
    table: fn(&mut AppState) -> &mut TableData<T>,
    result: Result<Vec<T>, String>,
    what: &str,
) {
    let now = state.now;
    match result {
        Ok(rows) => {
            let t = table(state);
            let changed = t.all() != rows.as_slice() || t.error.is_some();
            t.set_rows(rows, now);
            state.dirty |= changed;
        }
        Err(e) => {
            let t = table(state);
            t.loading = false;
            let new = t.error.as_ref() != Some(&e);
            t.error = Some(e.clone());
            if new {
                toast(state, ToastLevel::Error, format!("{what}: {e}"));
            }
        }
    }
}

fn reset_for_profile(state: &mut AppState, profile: ProfileInfo) {
    state.profile = profile;
    state.screens.clear();
    state.path.clear();
    state.modal = None;
    state.cluster = Fetched::default();
    // Each view starts empty; sorts are the operator's, not the profile's: they stay.
    state.connectors.reset();
    state.jobs.reset();
    state.live = LiveState::default();
    state.breaker = BreakerState::default();
    state.dead_letters.reset();
    state.kibana.reset();
    state.timers = Timers::default();
    state.dirty = true;
}
