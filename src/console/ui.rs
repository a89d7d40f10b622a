//! Draws the whole console from state: header (profile, cluster, health, Kibana, breaker
//! light, read-only badge, attach state), view tabs (with the sort and drill-down scope),
//! the current view or screen, toasts on their own lines above the footer (never over the
//! table), the footer (hints from the keymap, or the `:`/`/` input), then dialogs on top.
//! Reads state only.

use super::app::{AppState, AttachStatus, Modal, Screen, ViewId, current_filter};
use super::form::Form;
use super::keymap::{Command, KeyContext};
use super::live::worst_breaker;
use super::theme::Theme;
use super::views::config_editor::{self, ConfigEditorView, input_height, render_input};
use super::views::help::HelpView;
use super::views::{Hint, detail, messages, view_for};
use super::widgets::{centered, command_line, confirm, toast};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

/// Draws one frame.
pub fn draw(frame: &mut Frame, state: &AppState, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.text), area);
    // Toasts get lines of their own when there is room, so they never hide rows.
    let toast_rows = if area.height >= 10 {
        state.toasts.len().min(super::app::MAX_TOASTS) as u16
    } else {
        0
    };
    let [header, tabs, body, toasts, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(toast_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    let header_used = render_header(frame, header, state, theme);
    let tabs_used = render_tabs(frame, tabs, state, theme);
    render_facts(
        frame,
        [(header, header_used), (tabs, tabs_used)],
        state,
        theme,
    );
    render_body(frame, body, state, theme);
    toast::render(frame, toasts, &state.toasts, theme);
    render_footer(frame, footer, state, theme);
    render_modal(frame, body, footer, state, theme);
}

fn sep(theme: &Theme) -> Span<'static> {
    Span::styled(" │ ", theme.dim)
}

/// Draws the header line; returns how many columns it used.
fn render_header(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) -> u16 {
    let narrow = area.width < 100;
    // Narrow terminals keep the facts and drop the name.
    let mut spans = if narrow {
        vec![Span::raw(" ")]
    } else {
        vec![Span::styled(" syncdeck", theme.title), sep(theme)]
    };
    spans.push(Span::styled(state.profile.name.clone(), theme.accent));
    if state.profile.read_only {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" READ-ONLY ", theme.badge));
    }
    spans.push(sep(theme));
    match (&state.cluster.value, &state.cluster.error) {
        (_, Some(e)) => {
            let text = if narrow {
                "cluster unreachable".to_string()
            } else {
                format!("cluster: {}", super::format::ellipsize(e, 40))
            };
            spans.push(Span::styled(format!("✖ {text}"), theme.danger));
        }
        (Some(c), None) => {
            let name = if c.backend == "embedded" {
                "embedded store".to_string()
            } else {
                c.cluster_name.clone()
            };
            spans.push(Span::styled(
                super::format::ellipsize(&name, if narrow { 16 } else { 30 }),
                theme.text,
            ));
            if !c.version.is_empty() && c.backend != "embedded" && !narrow {
                spans.push(Span::styled(format!(" {}", c.version), theme.dim));
            }
            if c.health != "n/a" {
                spans.push(Span::styled(
                    format!(" ● {}", c.health),
                    theme.health(&c.health),
                ));
            }
        }
        (None, None) => spans.push(Span::styled("connecting…", theme.dim)),
    }
    if state.profile.has_kibana {
        spans.push(sep(theme));
        spans.push(Span::styled(
            if narrow { "kb " } else { "Kibana " },
            theme.dim,
        ));
        match (&state.kibana.status.value, &state.kibana.status.error) {
            (_, Some(_)) => spans.push(Span::styled("✖ down", theme.danger)),
            (Some(k), None) => spans.push(Span::styled(
                format!("● {}", k.level),
                theme.health(&k.level),
            )),
            (None, None) => spans.push(Span::styled("…", theme.dim)),
        }
    }
    spans.push(sep(theme));
    let attached = state
        .live
        .attached
        .value
        .as_ref()
        .map(|d| d.jobs.as_slice())
        .unwrap_or(&[]);
    let word = if narrow { "brk" } else { "breaker" };
    match worst_breaker(state.live.local.iter().chain(attached)) {
        Some(b) => spans.push(Span::styled(
            format!("{word} {}", super::views::breaker::state_label(&b)),
            theme.breaker(&b),
        )),
        None => spans.push(Span::styled(format!("{word} —"), theme.dim)),
    }
    if let Some(addr) = &state.settings.attach {
        spans.push(sep(theme));
        // Narrow terminals drop the address, never the state.
        let at = if narrow {
            "attach".to_string()
        } else {
            format!("attach {addr}")
        };
        let (text, style) = match state.attach_status() {
            Some(AttachStatus::Attaching) | None => (format!("{at}: connecting…"), theme.dim),
            Some(AttachStatus::Attached) => (format!("attached {addr}"), theme.accent),
            Some(AttachStatus::Reconnecting) => (format!("{at}: reconnecting…"), theme.warn),
            Some(AttachStatus::Unreachable { since }) => (
                format!("{at}: ✖ unreachable since {}", since.0.format("%H:%M:%S")),
                theme.danger,
            ),
        };
        spans.push(Span::styled(text, style));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), area);
    used as u16
}

fn short_title(view: ViewId) -> &'static str {
    match view {
        ViewId::Connectors => "Conn",
        ViewId::Jobs => "Jobs",
        ViewId::Live => "Live",
        ViewId::Breaker => "Breaker",
        ViewId::DeadLetters => "DLQ",
        ViewId::Kibana => "Kibana",
        ViewId::Logs => "Logs",
    }
}

/// Draws the view tabs; returns how many columns they used.
fn render_tabs(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) -> u16 {
    let narrow = area.width < 100;
    let mut spans = Vec::new();
    for (i, view) in ViewId::ALL.iter().enumerate() {
        let title = if narrow {
            short_title(*view)
        } else {
            view.title()
        };
        let mut label = format!(" {} {title} ", i + 1);
        if *view == ViewId::DeadLetters && state.dead_letters.total > 0 {
            label = format!(" {} {title} ({}) ", i + 1, state.dead_letters.total);
        }
        if *view == ViewId::Live && state.running_here() > 0 {
            label = format!(" {} {title} ({}) ", i + 1, state.running_here());
        }
        spans.push(Span::styled(
            label,
            if *view == state.view {
                theme.tab_active
            } else {
                theme.tab
            },
        ));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    used as u16
}

/// The drill-down scope and the sort of the view (`job=… · sort STARTED↓`), at the right of
/// the header line, or of the tabs when the header is full; cut to the room there is.
fn render_facts(frame: &mut Frame, lines: [(Rect, u16); 2], state: &AppState, theme: &Theme) {
    let facts: Vec<String> = [state.scope_label(), state.sort_label()]
        .into_iter()
        .flatten()
        .collect();
    if facts.is_empty() || !state.screens.is_empty() {
        return;
    }
    let text = format!(" {} ", facts.join(" · "));
    let want = unicode_width::UnicodeWidthStr::width(text.as_str()) as u16;
    let room = |(area, used): (Rect, u16)| area.width.saturating_sub(used + 1);
    let (area, used) = lines
        .into_iter()
        .find(|l| room(*l) >= want)
        .unwrap_or_else(|| {
            lines
                .into_iter()
                .max_by_key(|l| room(*l))
                .unwrap_or(lines[0])
        });
    let width = want.min(room((area, used)));
    if width < 8 {
        return;
    }
    let text = super::format::ellipsize(&text, width as usize);
    let right = Rect {
        x: area.right() - width,
        width,
        ..area
    };
    frame.render_widget(Paragraph::new(Line::styled(text, theme.accent)), right);
}

fn render_body(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    match state.screen() {
        Some(Screen::ConnectorDetail(d)) => detail::render_connector(frame, area, d, state, theme),
        Some(Screen::JobDetail { id, scroll }) => {
            detail::render_job(frame, area, id, *scroll, state, theme)
        }
        Some(Screen::DeadLetterDetail { id, scroll }) => {
            detail::render_dead_letter(frame, area, *id, *scroll, state, theme)
        }
        Some(Screen::Editor(e)) => {
            ConfigEditorView.render(frame, area, e, state.profile.read_only, theme)
        }
        Some(Screen::Messages { scroll }) => {
            messages::render_messages(frame, area, *scroll, state, theme)
        }
        Some(Screen::LogLine { text, scroll }) => {
            messages::render_log_line(frame, area, text, *scroll, theme)
        }
        None => view_for(state.view).render(frame, area, state, theme),
    }
}

const FORM_HINTS: &[Hint] = &[
    super::views::hint(Command::Save, "submit"),
    super::views::hint(Command::NextField, "next field"),
    super::views::hint(Command::Back, "cancel"),
];
const CONFIRM_HINTS: &[Hint] = &[
    super::views::hint(Command::Confirm, "yes"),
    super::views::hint(Command::Back, "no"),
];
const HELP_HINTS: &[Hint] = &[
    super::views::hint(Command::Down, "scroll"),
    super::views::hint(Command::Back, "close"),
];

/// The hints of what has the keys now, and the context to look their keys up in.
pub fn current_hints(state: &AppState) -> (KeyContext, &'static [Hint]) {
    let context = state.key_context();
    match &state.modal {
        Some(Modal::Form(_)) => return (KeyContext::Editor, FORM_HINTS),
        Some(Modal::Confirm(_)) => return (KeyContext::Confirm, CONFIRM_HINTS),
        Some(Modal::Help { .. }) => return (KeyContext::Detail, HELP_HINTS),
        _ => {}
    }
    let hints = match state.screen() {
        Some(Screen::ConnectorDetail(_)) => detail::CONNECTOR_HINTS,
        Some(Screen::JobDetail { .. }) => detail::JOB_HINTS,
        Some(Screen::DeadLetterDetail { .. }) => detail::DEAD_LETTER_HINTS,
        Some(Screen::Editor(e)) => config_editor::hints(e),
        Some(Screen::Messages { .. }) => messages::MESSAGES_HINTS,
        Some(Screen::LogLine { .. }) => messages::LOG_LINE_HINTS,
        None => view_for(state.view).hints(),
    };
    (context, hints)
}

fn render_footer(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    match &state.modal {
        Some(Modal::CommandLine(line)) => return command_line::render(frame, area, line, theme),
        Some(Modal::Filter) => {
            return command_line::render_input(frame, area, "/", &current_filter(state), theme);
        }
        _ => {}
    }
    let (context, hints) = current_hints(state);
    // Text inputs take plain keys, so the global ones would only mislead there.
    let globals = if state.modal.is_some() || context == KeyContext::Editor {
        &[][..]
    } else {
        GLOBAL_HINTS
    };
    let mut pairs: Vec<(String, &str)> = Vec::new();
    for h in hints.iter().chain(globals.iter()) {
        if state.profile.read_only && h.command.is_mutating() {
            continue;
        }
        if pairs.iter().any(|(_, label)| *label == h.label) {
            continue;
        }
        if let Some(key) = state.keymap.key_for(context, h.command) {
            pairs.push((key.to_string(), h.label));
        }
    }
    // Whole hints only: those that do not fit are left out, help last to go.
    let width =
        |(k, l): &(String, &str)| unicode_width::UnicodeWidthStr::width(k.as_str()) + l.len() + 3;
    let help_width = pairs.iter().find(|(_, l)| *l == "help").map_or(0, width);
    let mut used = help_width;
    let mut spans = Vec::new();
    for pair in &pairs {
        let w = width(pair);
        let is_help = pair.1 == "help";
        if !is_help && used + w > area.width as usize {
            continue;
        }
        if !is_help {
            used += w;
        }
        spans.push(Span::styled(format!(" {}", pair.0), theme.key));
        spans.push(Span::styled(format!(" {} ", pair.1), theme.hint));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), area);
}

const GLOBAL_HINTS: &[Hint] = &[
    super::views::hint(Command::CommandLine, "cmd"),
    super::views::hint(Command::Help, "help"),
    super::views::hint(Command::Quit, "quit"),
];

fn render_modal(frame: &mut Frame, body: Rect, _footer: Rect, state: &AppState, theme: &Theme) {
    match &state.modal {
        Some(Modal::Help { scroll }) => {
            let context = match state.screen() {
                Some(Screen::Editor(_)) => KeyContext::Editor,
                Some(_) => KeyContext::Detail,
                None => state.view.key_context(),
            };
            HelpView.render(frame, body, state, context, *scroll, theme);
        }
        Some(Modal::Confirm(action)) => confirm::render(frame, body, action, &state.keymap, theme),
        Some(Modal::Form(form)) => render_form(frame, body, form, theme),
        Some(Modal::CommandLine(_)) | Some(Modal::Filter) | None => {}
    }
}

fn render_form(frame: &mut Frame, area: Rect, form: &Form, theme: &Theme) {
    let fields_height: u16 = form
        .fields
        .iter()
        .map(|f| 1 + input_height(&f.input) + u16::from(f.help.is_some()))
        .sum();
    let height = fields_height + 4 + u16::from(form.error.is_some());
    let dialog = centered(area, 70, height);
    frame.render_widget(Clear, dialog);
    let submit = if form
        .fields
        .iter()
        .any(|f| matches!(f.input, super::editor::FieldInput::Lines(_)))
    {
        "ctrl-s"
    } else {
        "enter"
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focus)
        .title(Span::styled(format!(" {} ", form.title), theme.title))
        .title_bottom(
            Line::styled(
                format!(" {submit} submits · tab next field · esc cancels "),
                theme.dim,
            )
            .right_aligned(),
        );
    let inner = block.inner(dialog);
    frame.render_widget(block, dialog);
    let mut y = inner.y;
    for (i, f) in form.fields.iter().enumerate() {
        if y >= inner.bottom() {
            break;
        }
        let focused = i == form.focus;
        let label = Line::from(vec![
            Span::styled(if focused { "▶ " } else { "  " }, theme.key),
            Span::styled(f.label.clone(), theme.label),
        ]);
        frame.render_widget(
            Paragraph::new(label),
            Rect {
                y,
                height: 1,
                ..inner
            },
        );
        y += 1;
        let h = input_height(&f.input).min(inner.bottom().saturating_sub(y));
        render_input(
            frame,
            Rect {
                x: inner.x + 2,
                y,
                width: inner.width.saturating_sub(4),
                height: h,
            },
            &f.input,
            focused,
            None,
            theme,
        );
        y += h;
        if let Some(help) = &f.help
            && y < inner.bottom()
        {
            frame.render_widget(
                Paragraph::new(Line::styled(format!("  {help}"), theme.dim)),
                Rect {
                    y,
                    height: 1,
                    ..inner
                },
            );
            y += 1;
        }
    }
    if y < inner.bottom() {
        let status = match (&form.error, form.submitting) {
            (Some(e), _) => Line::styled(format!("✖ {e}"), theme.invalid),
            (None, true) => Line::styled("working…", theme.info),
            (None, false) => Line::from(""),
        };
        frame.render_widget(
            Paragraph::new(status),
            Rect {
                y: inner.bottom() - 1,
                height: 1,
                ..inner
            },
        );
    }
}
