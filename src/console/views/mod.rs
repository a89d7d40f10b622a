//! The views: each draws one part of the console from `AppState` (never changing it) and
//! names the hints its footer and help show. The keys come from the keymap, so the footer
//! shows what is actually bound. A main view's module also owns that view's state struct
//! (held in `AppState`) and its part of `update` (an `update` submodule: the results of the
//! effects it asked for, and its keys); `app` keeps the shell.

pub mod breaker;
pub mod config_editor;
pub mod connectors;
pub mod dead_letters;
pub mod detail;
pub mod help;
pub mod jobs;
pub mod kibana;
pub mod live_sync;
pub mod logs;
pub mod messages;

use super::app::{AppState, ViewId};
use super::keymap::Command;
use super::theme::Theme;
use crate::model::Timestamp;
use ratatui::Frame;
use ratatui::layout::Rect;

/// A footer hint: a command and a short label; the key is looked up in the keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub command: Command,
    pub label: &'static str,
}

pub const fn hint(command: Command, label: &'static str) -> Hint {
    Hint { command, label }
}

/// A view draws itself from state.
pub trait View {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme);
    fn hints(&self) -> &'static [Hint];
}

/// The view object of a main view.
pub fn view_for(id: ViewId) -> &'static dyn View {
    match id {
        ViewId::Connectors => &connectors::ConnectorsView,
        ViewId::Jobs => &jobs::JobsView,
        ViewId::Live => &live_sync::LiveSyncView,
        ViewId::Breaker => &breaker::BreakerPanel,
        ViewId::DeadLetters => &dead_letters::DeadLettersView,
        ViewId::Kibana => &kibana::KibanaView,
        ViewId::Logs => &logs::LogsView,
    }
}

/// `stale 12s` when data is older than two refreshes (or failed to load), else `None`.
pub fn stale_label(
    state: &AppState,
    at: Option<Timestamp>,
    error: Option<&String>,
) -> Option<String> {
    if error.is_some() {
        return Some(match at {
            Some(t) if state.is_stale(Some(t)) => {
                format!(
                    "stale {}, last load failed",
                    super::format::short_secs((state.now.0 - t.0).num_seconds().max(0) as u64)
                )
            }
            _ => "last load failed".to_string(),
        });
    }
    let t = at?;
    state.is_stale(Some(t)).then(|| {
        format!(
            "stale {}",
            super::format::short_secs((state.now.0 - t.0).num_seconds().max(0) as u64)
        )
    })
}
