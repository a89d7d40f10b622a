//! The Circuit breaker view: the breaker of the selected live sync (state in colour and in
//! words, failure rate against the threshold, window counts, consecutive failures, time to
//! the next probe, last errors) and the Elasticsearch node pool (alive or dead, failures,
//! dead until). It owns [`BreakerState`] (the node pool; the breaker itself is the selected
//! live sync's, in the Live view's state) and its update: the pool's loads, merged so a node
//! that went down stays listed as dead, and the probes that tell a dead node from one that
//! left the pool.

use super::{Hint, View, hint, stale_label};
use crate::console::app::{AppState, Fetched};
use crate::console::format::{duration_ms, short_secs, wrap};
use crate::console::keymap::Command;
use crate::console::live::{BreakerView, NodeRow};
use crate::console::theme::Theme;
use crate::console::widgets::bar::bar;
use crate::console::widgets::table::{CellText, Column, render_rows};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use std::collections::BTreeSet;

pub struct BreakerPanel;

/// The Breaker view's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreakerState {
    /// The Elasticsearch node pool: this console's, or an attached worker's (from its
    /// `/status`). `Some(None)`: the profile has no node pool (embedded store).
    pub pool: Fetched<Option<Vec<NodeRow>>>,
    /// Nodes listed only because they vanished from this console's pool: shown as dead
    /// until the pool holds them again, or until they answer (then they left the pool
    /// rather than died, and drop out).
    pub vanished: BTreeSet<String>,
    /// The vanished nodes are being asked (`Effect::ProbeNodes`).
    pub probing: bool,
}

impl BreakerState {
    /// A load of this console's pool; returns whether anything visible changed and the
    /// vanished nodes to ask, if any (one probe at a time). A node the pool no longer holds
    /// stays listed as dead: a sniff drops a node that is down, and the view must not lose
    /// it exactly when it matters.
    pub fn load_local(
        &mut self,
        result: Result<Option<Vec<NodeRow>>, String>,
        now: crate::model::Timestamp,
    ) -> (bool, Option<Vec<String>>) {
        let result = result.map(|rows| rows.map(|rows| self.keep_vanished(rows)));
        let changed = self.pool.set(result, now);
        if self.vanished.is_empty() || self.probing {
            return (changed, None);
        }
        self.probing = true;
        (changed, Some(self.vanished.iter().cloned().collect()))
    }

    /// The source's rows, then the nodes listed before that it no longer names, as dead.
    fn keep_vanished(&mut self, mut rows: Vec<NodeRow>) -> Vec<NodeRow> {
        let old = match &self.pool.value {
            Some(Some(old)) => old.as_slice(),
            _ => &[],
        };
        let mut vanished = BTreeSet::new();
        for node in old {
            if !rows.iter().any(|n| n.url == node.url) {
                vanished.insert(node.url.clone());
                rows.push(NodeRow {
                    alive: false,
                    dead_for_ms: None,
                    ..node.clone()
                });
            }
        }
        self.vanished = vanished;
        rows
    }

    /// An attached worker's pool, from its `/status`: shown as the worker reports it (its
    /// own pool keeps its dead nodes); a node it no longer names is gone.
    pub fn set_attached(
        &mut self,
        result: Result<Option<Vec<NodeRow>>, String>,
        now: crate::model::Timestamp,
    ) -> bool {
        self.vanished.clear();
        self.pool.set(result, now)
    }

    /// The answers of a probe: a vanished node that answers is up, so it is no longer part
    /// of the pool rather than dead, and drops out; one that does not stays listed as dead.
    /// When the transport sniffs, the effect runner has already let the cluster decide (a
    /// `PoolLoaded` just before this lists a node that is back in `_nodes` alive, and so no
    /// longer vanished), so an answering node still vanished here is outside the cluster.
    /// Returns whether the list changed.
    pub fn probed(&mut self, answers: Vec<(String, bool)>) -> bool {
        self.probing = false;
        let left: BTreeSet<String> = answers
            .into_iter()
            .filter(|(url, up)| *up && self.vanished.contains(url))
            .map(|(url, _)| url)
            .collect();
        if left.is_empty() {
            return false;
        }
        self.vanished.retain(|url| !left.contains(url));
        if let Some(Some(rows)) = &mut self.pool.value {
            rows.retain(|n| !left.contains(&n.url));
        }
        true
    }
}

const HINTS: &[Hint] = &[
    hint(Command::Down, "next job"),
    hint(Command::ViewLive, "live"),
    hint(Command::Refresh, "refresh"),
    hint(Command::Help, "help"),
];

/// The state in words, with a symbol so it never depends on colour alone.
pub fn state_label(state: &str) -> &'static str {
    match state {
        "closed" => "● CLOSED",
        "half_open" => "◐ HALF-OPEN",
        "open" => "○ OPEN",
        _ => "? UNKNOWN",
    }
}

impl View for BreakerPanel {
    fn render(&self, frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
        let pool_rows = state
            .breaker
            .pool
            .value
            .as_ref()
            .and_then(|p| p.as_ref())
            .map_or(1, Vec::len) as u16;
        let pool_height = (pool_rows + 3).min(area.height / 2).max(4);
        let [top, pool] =
            Layout::vertical([Constraint::Min(6), Constraint::Length(pool_height)]).areas(area);
        render_breaker(frame, top, state, theme);
        render_pool(frame, pool, state, theme);
    }

    fn hints(&self) -> &'static [Hint] {
        HINTS
    }
}

fn render_breaker(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let selected = state.live_selected();
    let found = selected
        .as_ref()
        .and_then(|r| r.snapshot.map(|s| (r.job_id.to_string(), s)))
        .and_then(|(id, s)| BreakerView::from_snapshot(s).map(|b| (id, b)));
    let Some((job, b)) = found else {
        let block = Block::bordered()
            .border_style(theme.border)
            .title(Span::styled(" Circuit breaker ", theme.title));
        let text = vec![
            Line::styled(
                "No breaker to show: it lives in the sink of a running sync.",
                theme.text,
            ),
            Line::styled(
                "Start a sync here (Connectors, s) or attach to a worker (--attach) and select it in Live sync.",
                theme.dim,
            ),
        ];
        frame.render_widget(
            Paragraph::new(text)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    };
    let style = theme.breaker(&b.state);
    let title = Line::from(vec![
        Span::styled(" Circuit breaker ", theme.title),
        Span::styled(format!("{} ", state_label(&b.state)), style),
        Span::styled(format!("job {job} "), theme.dim),
    ]);
    let block = Block::bordered().border_style(style).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [facts, errors] =
        Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(inner);
    let rate_ratio = if b.threshold > 0.0 {
        Some((b.failure_rate / b.threshold).min(1.0))
    } else {
        None
    };
    let over = b.failure_rate >= b.threshold && b.window_len >= b.min_calls;
    let probe = match (b.state.as_str(), b.time_to_next_probe_ms) {
        ("open", Some(ms)) => duration_ms(ms),
        ("open", None) => "now".to_string(),
        ("half_open", _) => format!("{} probe(s) in flight", b.probes_in_flight),
        _ => "—".to_string(),
    };
    let kv = |k: &'static str, v: String| {
        vec![
            Span::styled(k, theme.dim),
            Span::styled(v, theme.text),
            Span::raw("   "),
        ]
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("state        ", theme.dim),
            Span::styled(state_label(&b.state), style),
        ]),
        Line::from(
            [
                vec![
                    Span::styled("failure rate ", theme.dim),
                    Span::styled(
                        format!("{:.1}%", b.failure_rate * 100.0),
                        if over { theme.danger } else { theme.text },
                    ),
                ],
                vec![Span::styled(
                    format!(" of {:.1}% threshold ", b.threshold * 100.0),
                    theme.dim,
                )],
                bar(
                    rate_ratio,
                    24,
                    if over { theme.danger } else { theme.warn },
                    theme.dim,
                )
                .spans,
            ]
            .concat(),
        ),
        Line::from(
            [kv(
                "window       ",
                format!(
                    "{} calls of {} ({} failed, opens after {})",
                    b.window_len, b.window_size, b.window_failures, b.min_calls
                ),
            )]
            .concat(),
        ),
        Line::from(
            [
                kv(
                    "consecutive  ",
                    format!("{} of {}", b.consecutive_failures, b.consecutive_threshold),
                ),
                kv("opened ", format!("{} time(s)", b.times_opened)),
            ]
            .concat(),
        ),
        Line::from(
            [
                kv("next probe   ", probe),
                kv(
                    "not closed for ",
                    b.not_closed_for_ms
                        .map(duration_ms)
                        .unwrap_or_else(|| "—".into()),
                ),
                kv("max open ", duration_ms(b.max_open_ms)),
            ]
            .concat(),
        ),
    ];
    frame.render_widget(Paragraph::new(lines), facts);
    let mut error_lines = vec![Line::styled("Last errors", theme.label)];
    if b.last_errors.is_empty() {
        error_lines.push(Line::styled("none", theme.dim));
    }
    // Each reason whole, wrapped beside its age, newest first, as many as fit.
    let width = errors.width.saturating_sub(12) as usize;
    for e in &b.last_errors {
        for (i, part) in wrap(&e.reason, width).into_iter().enumerate() {
            let age = if i == 0 {
                format!("{:>6} ago  ", short_secs(e.ago_ms / 1000))
            } else {
                " ".repeat(12)
            };
            error_lines.push(Line::from(vec![
                Span::styled(age, theme.dim),
                Span::styled(part, theme.danger),
            ]));
        }
    }
    if error_lines.len() > errors.height as usize {
        let hidden = error_lines.len() - errors.height as usize + 1;
        error_lines.truncate(errors.height.saturating_sub(1) as usize);
        error_lines.push(Line::styled(
            format!("… {hidden} more line(s); a taller terminal shows them"),
            theme.dim,
        ));
    }
    frame.render_widget(Paragraph::new(error_lines), errors);
}

fn render_pool(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut title = vec![Span::styled(" Node pool ", theme.title)];
    let pool = &state.breaker.pool;
    if let Some(stale) = stale_label(state, pool.at, pool.error.as_ref()) {
        title.push(Span::styled(format!("{stale} "), theme.stale));
    }
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let nodes = match &pool.value {
        None => {
            let text = if pool.error.is_some() {
                "could not read the node pool"
            } else {
                "loading…"
            };
            frame.render_widget(Paragraph::new(Line::styled(text, theme.dim)), inner);
            return;
        }
        Some(None) => {
            let text = format!(
                "profile '{}' uses the embedded store: no nodes.",
                state.profile.name
            );
            frame.render_widget(Paragraph::new(Line::styled(text, theme.dim)), inner);
            return;
        }
        Some(Some(nodes)) => nodes,
    };
    let rows: Vec<(Vec<CellText>, Style)> = nodes
        .iter()
        .map(|n| {
            let (label, style) = if n.alive {
                ("● alive", theme.ok)
            } else {
                ("○ dead", theme.danger)
            };
            let cells = vec![
                Span::raw(n.url.clone()),
                Span::styled(label, style),
                Span::raw(n.failures.to_string()),
                Span::raw(
                    n.dead_for_ms
                        .map(|ms| format!("retry in {}", duration_ms(ms)))
                        .unwrap_or_else(|| "—".into()),
                ),
            ];
            (cells, theme.text)
        })
        .collect();
    render_rows(frame, inner, &POOL_COLUMNS, rows, None, theme);
}

const POOL_COLUMNS: [Column; 4] = [
    Column::new("NODE", 16, 0).max(80),
    Column::new("STATE", 7, 0),
    Column::new("FAILURES", 8, 1),
    Column::new("DEAD UNTIL", 10, 2).max(24),
];

/// This view's part of `update`: the results of the effects it asked for, and its commands.
/// Pure, like `update`: state in, effects out.
pub(crate) mod update {
    use crate::console::app::*;
    use crate::console::effect::Effect;

    /// The results of effects this view asked for.
    pub(crate) fn on_result(state: &mut AppState, action: Action) -> Vec<Effect> {
        // Attached, the pool shown is the worker's, from its `/status`.
        if state.settings.attach.is_some() {
            return Vec::new();
        }
        match action {
            Action::PoolLoaded(result) => {
                let (changed, probe) = state.breaker.load_local(result, state.now);
                state.dirty |= changed;
                if let Some(urls) = probe {
                    return vec![Effect::ProbeNodes(urls)];
                }
            }
            Action::NodesProbed(answers) => state.dirty |= state.breaker.probed(answers),
            _ => {}
        }
        Vec::new()
    }
}

pub(crate) use update::*;
