//! The Sync jobs view: every job of every connectors service, newest first, with status
//! colours, counts, volume, start, duration and worker; filters by status and connector. It
//! owns [`JobsState`] (the page of jobs, the server-side filters, the jobs' dead-letter
//! counts for the job detail), how a job row is filtered and sorted, and its update: the
//! results of the loads, cancels and counts it asked for, and its keys.

use super::{Hint, View, hint, stale_label};
use crate::console::app::AppState;
use crate::console::format::{ago, count, job_duration};
use crate::console::keymap::Command;
use crate::console::sort::{SortKey, SortValue};
use crate::console::table::{TableData, TableRow};
use crate::console::theme::Theme;
use crate::console::widgets::table::{self, CellText, Column, TableSpec};
use crate::model::SyncJob;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use std::collections::BTreeMap;

pub struct JobsView;

/// The Sync jobs view's state.
#[derive(Debug, Clone, Default)]
pub struct JobsState {
    /// A page of jobs, newest first, as the filters ask the server.
    pub table: TableData<SyncJob>,
    pub filter: JobsFilter,
    /// Open dead letters per job, for the job detail.
    pub dead_letter_counts: BTreeMap<String, u64>,
}

impl JobsState {
    /// Empty again, for another profile; the sort is the operator's and stays.
    pub fn reset(&mut self) {
        crate::console::table::reset_keeping_sort(self, |s| &mut s.table);
    }

    /// Asks for the page again, with the filters as they are now.
    pub(crate) fn reload(&mut self) -> crate::console::effect::Effect {
        self.table.loading = true;
        crate::console::effect::Effect::LoadJobs(self.filter.query())
    }

    /// Records a job's open dead letters; returns whether the count changed.
    fn set_dead_letter_count(&mut self, job_id: String, n: u64) -> bool {
        self.dead_letter_counts.insert(job_id, n) != Some(n)
    }

    /// The next status filter: none, then each status in turn, then none again.
    fn cycle_status(&mut self) {
        let all = crate::model::JobStatus::ALL;
        self.filter.status = match self.filter.status {
            None => all.first().copied(),
            Some(s) => all
                .iter()
                .position(|x| *x == s)
                .and_then(|i| all.get(i + 1))
                .copied(),
        };
    }

    /// Filters on the selected job's connector, or stops filtering on a connector.
    fn toggle_connector(&mut self) {
        self.filter.connector = match self.filter.connector {
            Some(_) => None,
            None => self.table.selected().map(|j| j.connector.id.clone()),
        };
    }
}

/// At 80 columns: id and connector whole, type, status, indexed and started; wider, the
/// duration, counts, volume, trigger and worker join, and the worker grows to its length.
const COLUMNS: [Column; 12] = [
    Column::new("ID", 12, 0),
    Column::new("CONNECTOR", 12, 0),
    Column::new("TYPE", 4, 2).max(14),
    Column::new("TRIGGER", 9, 5),
    Column::new("STATUS", 11, 0),
    Column::new("INDEXED", 7, 1).max(12),
    Column::new("DELETED", 7, 3),
    Column::new("TOTAL", 7, 3).max(12),
    Column::new("VOLUME", 7, 4),
    Column::new("STARTED", 8, 1),
    Column::new("DURATION", 8, 2),
    Column::grow("WORKER", 12, 5).max(60),
];

const HINTS: &[Hint] = &[
    hint(Command::Open, "detail"),
    hint(Command::CancelJob, "cancel"),
    hint(Command::StatusFilter, "status"),
    hint(Command::ConnectorFilter, "connector"),
    hint(Command::Filter, "filter"),
    hint(Command::Help, "help"),
];

fn cells(j: &SyncJob, state: &AppState, theme: &Theme) -> Vec<CellText> {
    vec![
        Span::styled(j.id.clone(), theme.dim),
        Span::raw(j.connector.id.clone()),
        Span::raw(j.job_type.to_string()),
        Span::raw(j.trigger_method.to_string()),
        status_span(j, state, theme),
        Span::raw(count(j.indexed_document_count)),
        Span::raw(count(j.deleted_document_count)),
        Span::raw(
            j.total_document_count
                .map(count)
                .unwrap_or_else(|| "—".into()),
        ),
        Span::raw(format!("{} MiB", j.indexed_document_volume)),
        // A pending job has not started: its creation time would read as a start.
        Span::styled(
            j.started_at
                .map(|t| ago(state.now, Some(t)))
                .unwrap_or_else(|| "—".into()),
            theme.dim,
        ),
        Span::raw(job_duration(j, state.now)),
        Span::styled(
            j.worker_hostname
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "—".into()),
            theme.dim,
        ),
    ]
}

impl View for JobsView {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let data = &state.jobs.table;
        let mut badges = Vec::new();
        if let Some(s) = state.jobs.filter.status {
            badges.push(Span::styled(format!("status={s} "), theme.accent));
        }
        if let Some(c) = &state.jobs.filter.connector {
            badges.push(Span::styled(format!("connector={c} "), theme.accent));
        }
        let empty = if data.loaded_at.is_none() {
            "loading…"
        } else {
            "no sync jobs"
        };
        let spec = TableSpec {
            title: "Sync jobs",
            columns: &COLUMNS,
            badges,
            stale: stale_label(state, data.loaded_at, data.error.as_ref()),
            empty,
        };
        table::render(
            frame,
            area,
            data,
            |j| cells(j, state, theme),
            |_| theme.text,
            spec,
            theme,
        );
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

/// A job's status, or `stale` when its worker stopped checking in long ago (it is most
/// likely gone, whatever the job document still says).
pub fn status_span(j: &SyncJob, state: &AppState, theme: &Theme) -> Span<'static> {
    if state.job_is_stale(j) {
        Span::styled(format!("stale ({})", j.status), theme.stale)
    } else {
        Span::styled(j.status.to_string(), theme.status(j.status))
    }
}

/// How a row of this view's table is found, filtered and sorted.
impl TableRow for SyncJob {
    fn row_id(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.id,
            self.connector.id,
            self.job_type,
            self.trigger_method,
            self.status,
            self.worker_hostname.as_deref().unwrap_or("")
        )
    }
    fn sort_value(&self, key: SortKey) -> SortValue {
        match key {
            SortKey::Id => SortValue::text(&self.id),
            SortKey::Connector => SortValue::text(&self.connector.id),
            SortKey::Type => SortValue::text(self.job_type.to_string()),
            SortKey::Status => SortValue::text(self.status.to_string()),
            SortKey::Age => SortValue::time(self.started_at.or(self.created_at)),
            SortKey::Worker => SortValue::opt_text(self.worker_hostname.as_deref()),
            _ => SortValue::Missing,
        }
    }
    fn parent_id(&self) -> Option<&str> {
        Some(&self.connector.id)
    }
}

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;
    use crate::model::JobStatus;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        match action {
            Action::JobsLoaded(result) => {
                load_table(state, |s| &mut s.jobs.table, result, "sync jobs")
            }
            Action::JobCanceled(id) => {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("cancel requested for sync job {id}"),
                );
                return refresh_now(state);
            }
            Action::DeadLettersCounted { job_id, result } => match result {
                Ok(n) => {
                    state.dirty |= state.jobs.set_dead_letter_count(job_id, n);
                }
                Err(e) => toast(
                    state,
                    ToastLevel::Warn,
                    format!("dead letters of job {job_id} not counted: {e}"),
                ),
            },
            _ => {}
        }
        Vec::new()
    }

    pub(crate) fn cancel_job(state: &mut AppState) -> Vec<Effect> {
        let target = match (state.screens.last(), state.view) {
            (Some(Screen::JobDetail { id, .. }), _) => state
                .jobs
                .table
                .all()
                .iter()
                .find(|j| j.id == *id)
                .map(|j| (j.id.clone(), j.connector.id.clone(), Some(j.status))),
            (None, ViewId::Jobs) => state
                .jobs
                .table
                .selected()
                .map(|j| (j.id.clone(), j.connector.id.clone(), Some(j.status))),
            (None, ViewId::Live) => state.live_selected().map(|r| {
                (
                    r.job_id.to_string(),
                    r.connector_id.to_string(),
                    r.job.map(|j| j.status),
                )
            }),
            _ => None,
        };
        let Some((id, connector, status)) = target else {
            return Vec::new();
        };
        if status.is_some_and(|s| s.is_terminal() || s == JobStatus::Canceling) {
            toast(
                state,
                ToastLevel::Info,
                format!(
                    "job {id} is already {}",
                    status.map(|s| s.as_str()).unwrap_or_default()
                ),
            );
            return Vec::new();
        }
        state.modal = Some(Modal::Confirm(ConfirmAction::CancelJob { id, connector }));
        Vec::new()
    }

    pub(crate) fn cycle_status_filter(state: &mut AppState) -> Vec<Effect> {
        state.jobs.cycle_status();
        reload_jobs(state)
    }

    pub(crate) fn toggle_connector_filter(state: &mut AppState) -> Vec<Effect> {
        state.jobs.toggle_connector();
        reload_jobs(state)
    }

    pub(crate) fn reload_jobs(state: &mut AppState) -> Vec<Effect> {
        vec![state.jobs.reload()]
    }
}

pub(crate) use update::*;

/// The Jobs view's filters (sent to the server: the table holds one page of jobs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsFilter {
    pub status: Option<crate::model::JobStatus>,
    pub connector: Option<String>,
}

impl JobsFilter {
    pub fn query(&self) -> crate::backend::SyncJobQuery {
        crate::backend::SyncJobQuery {
            size: Some(crate::console::app::JOBS_PAGE),
            status: self.status,
            connector_id: self.connector.clone(),
            ..Default::default()
        }
    }
}
