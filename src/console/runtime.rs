//! The console's event loop: `tokio::select!` over terminal events, a quarter-second tick,
//! effect results and SIGTERM/SIGHUP. Each action goes through `update`; the effects it
//! returns run as tasks (`io`) or here (clipboard, theme, profile, mouse). A frame is drawn
//! only when `update` marked something visible as changed, at most ten times a second, and
//! ratatui sends only the cells that changed: no full-screen clears in steady state. A frame
//! in which no cell changed writes nothing at all ([`QuietBackend`]): idle is 0 bytes.

use super::app::{Action, AppState, Init, ProfileInfo, ServiceType, Settings, ToastLevel, update};
use super::effect::Effect;
use super::io::{Handles, perform};
use super::keymap::Keymap;
use super::terminal::TerminalGuard;
use super::theme::{self, ColorDepth, Theme};
use super::{clipboard, ui};
use crate::config::{Overrides, UiSettings};
use crate::context::Context;
use crate::logging::LogTail;
use crate::model::Timestamp;
use crate::output::Output;
use crate::paths::Paths;
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use std::io::{self, Stdout};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::{Instant, MissedTickBehavior};

/// The shortest time between two frames (ten frames a second at most).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How often the clock ticks into `update`.
pub const TICK: Duration = Duration::from_millis(250);
/// How long quitting waits for syncs run here to suspend cleanly.
const SUSPEND_WAIT: Duration = Duration::from_secs(10);

/// What the console needs besides the context.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub paths: Paths,
    /// The command line's overrides (read-only is kept across `:profile`).
    pub overrides: Overrides,
    pub ui: UiSettings,
    pub profile_names: Vec<String>,
    /// `--attach ADDR`.
    pub attach: Option<String>,
    /// `--theme NAME`.
    pub theme: Option<String>,
    /// The tail of the log, for the Logs view.
    pub log_tail: Option<LogTail>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the terminal: {0}")]
    Terminal(#[from] io::Error),
    #[error("{0}")]
    Setup(String),
}

/// A backend that writes nothing for a frame that changed nothing. ratatui's crossterm
/// backend ends every `draw` with colour and attribute resets and `Terminal::draw` hides the
/// cursor every frame, even when no cell changed: ~26 bytes a second of SGR resets while
/// idle. This wrapper skips an empty draw and a cursor state that is already so.
pub struct QuietBackend<B: Backend> {
    inner: B,
    cursor_hidden: Option<bool>,
    cursor_at: Option<Position>,
}

impl<B: Backend> QuietBackend<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            cursor_hidden: None,
            cursor_at: None,
        }
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: Backend> Backend for QuietBackend<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut content = content.peekable();
        if content.peek().is_none() {
            return Ok(());
        }
        // Drawing moves the terminal's cursor.
        self.cursor_at = None;
        self.inner.draw(content)
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_hidden == Some(true) {
            return Ok(());
        }
        self.cursor_hidden = Some(true);
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_hidden == Some(false) {
            return Ok(());
        }
        self.cursor_hidden = Some(false);
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        let position = position.into();
        if self.cursor_at == Some(position) {
            return Ok(());
        }
        self.cursor_at = Some(position);
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.cursor_at = None;
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

/// The console's terminal: crossterm on stdout, quiet when nothing changed.
type ConsoleTerminal = Terminal<QuietBackend<CrosstermBackend<Stdout>>>;

/// Answers from tasks the runtime itself must apply (they replace runtime-owned things).
enum Control {
    Handles(Box<Handles>, ProfileInfo),
    Theme(Box<Theme>),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn profile_info(ctx: &Context) -> ProfileInfo {
    ProfileInfo {
        name: ctx.profile.name.clone(),
        read_only: ctx.profile.read_only,
        backend: if ctx.elasticsearch.is_some() {
            "elasticsearch"
        } else {
            "embedded"
        }
        .to_string(),
        has_kibana: ctx.kibana.is_some(),
    }
}

/// Reads `<config dir>/keymap.toml` over the defaults; a broken file is reported and the
/// defaults used.
pub fn load_keymap(config_dir: &std::path::Path) -> (Keymap, Option<String>) {
    let path = config_dir.join("keymap.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return (Keymap::defaults(), None);
    };
    match Keymap::with_user(&path.display().to_string(), &text) {
        Ok(map) => (map, None),
        Err(e) => (
            Keymap::defaults(),
            Some(format!("{e}; using the default keys")),
        ),
    }
}

struct Console {
    state: AppState,
    theme: Theme,
    depth: ColorDepth,
    theme_dir: PathBuf,
    handles: Arc<Handles>,
    options: ConsoleOptions,
    tx: UnboundedSender<Action>,
    control_tx: UnboundedSender<Control>,
    in_tmux: bool,
}

/// Runs the console until the user quits or the process is told to stop.
pub async fn run(ctx: Context, options: ConsoleOptions) -> Result<(), ConsoleError> {
    let depth = ColorDepth::detect(&env);
    let theme_dir = options.paths.config_dir.join("themes");
    let mut notices = Vec::new();
    let requested = options.theme.clone().unwrap_or_else(|| {
        if theme::no_color(&env) {
            theme::MONOCHROME.to_string()
        } else {
            options.ui.theme.clone()
        }
    });
    let theme = theme::load(&requested, Some(&theme_dir), depth).unwrap_or_else(|e| {
        notices.push(format!("{e}; using the default theme"));
        Theme::builtin("default", depth).unwrap_or_else(|_| Theme::fallback())
    });
    let (keymap, keymap_error) = load_keymap(&options.paths.config_dir);
    notices.extend(keymap_error);
    let handles = Arc::new(
        Handles::from_context(&ctx, options.log_tail.clone()).map_err(ConsoleError::Setup)?,
    );
    let service_types = handles
        .registry
        .factories()
        .map(|f| ServiceType {
            service_type: f.service_type().to_string(),
            name: f.display_name().to_string(),
        })
        .collect();
    let size = crossterm::terminal::size().unwrap_or((80, 24));
    let settings = Settings {
        refresh_ms: options
            .ui
            .refresh_interval
            .as_millis()
            .clamp(250, 3_600_000) as i64,
        mouse: options.ui.mouse,
        theme: theme.name.clone(),
        themes: theme::available(Some(&theme_dir)),
        profiles: options.profile_names.clone(),
        attach: options.attach.clone(),
    };
    let mut state = AppState::new(Init {
        profile: profile_info(&ctx),
        settings,
        keymap,
        service_types,
        now: Timestamp::now(),
        size,
    });
    state.idle_job_timeout_secs = ctx.profile.engine.idle_job_timeout.as_secs() as i64;
    let (tx, rx) = unbounded_channel();
    let (control_tx, control_rx) = unbounded_channel();
    let mut console = Console {
        state,
        theme,
        depth,
        theme_dir,
        handles,
        options,
        tx,
        control_tx,
        in_tmux: env("TMUX").is_some(),
    };
    for notice in notices {
        tracing::warn!(%notice, "console set-up");
        super::app::toast(&mut console.state, ToastLevel::Warn, notice);
    }
    tracing::info!(profile = %console.state.profile.name, theme = %console.theme.name, "console starting");
    let mut guard = TerminalGuard::enter(console.state.settings.mouse)?;
    let result = {
        // No `terminal.clear()`: it asks the terminal for the cursor position, which some
        // terminals answer slowly or never; the alternate screen starts blank anyway.
        let mut terminal = Terminal::new(QuietBackend::new(CrosstermBackend::new(io::stdout())))?;
        console
            .event_loop(&mut terminal, &mut guard, rx, control_rx)
            .await
    };
    drop(guard);
    console.suspend_running().await;
    tracing::info!("console stopped");
    result
}

impl Console {
    async fn event_loop(
        &mut self,
        terminal: &mut ConsoleTerminal,
        guard: &mut TerminalGuard,
        mut rx: UnboundedReceiver<Action>,
        mut control_rx: UnboundedReceiver<Control>,
    ) -> Result<(), ConsoleError> {
        let mut events = EventStream::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut stop = Box::pin(stop_signal());
        let mut last_draw = Instant::now()
            .checked_sub(FRAME_INTERVAL)
            .unwrap_or_else(Instant::now);
        loop {
            let mut next_draw = None;
            if self.state.dirty {
                let due = last_draw + FRAME_INTERVAL;
                if Instant::now() >= due {
                    terminal.draw(|f| ui::draw(f, &self.state, &self.theme))?;
                    self.state.dirty = false;
                    last_draw = Instant::now();
                } else {
                    next_draw = Some(due);
                }
            }
            if self.state.quit {
                return Ok(());
            }
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => self.on_event(event, terminal, guard),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                _ = tick.tick() => self.dispatch(Action::Tick(Timestamp::now()), terminal, guard),
                Some(action) = rx.recv() => self.dispatch(action, terminal, guard),
                Some(control) = control_rx.recv() => self.on_control(control),
                _ = tokio::time::sleep_until(next_draw.unwrap_or_else(Instant::now)), if next_draw.is_some() => {}
                _ = &mut stop => {
                    tracing::info!("console: terminated by a signal");
                    return Ok(());
                }
            }
            // Results that arrived meanwhile go into the same frame.
            while let Ok(action) = rx.try_recv() {
                self.dispatch(action, terminal, guard);
            }
        }
    }

    fn on_event(
        &mut self,
        event: Event,
        terminal: &mut ConsoleTerminal,
        guard: &mut TerminalGuard,
    ) {
        let action = match event {
            Event::Key(k) => Action::Key(k),
            Event::Paste(text) => Action::Paste(text),
            Event::Mouse(m) => Action::Mouse(m),
            Event::Resize(w, h) => Action::Resize(w, h),
            Event::FocusGained | Event::FocusLost => return,
        };
        self.dispatch(action, terminal, guard);
    }

    fn dispatch(
        &mut self,
        action: Action,
        terminal: &mut ConsoleTerminal,
        guard: &mut TerminalGuard,
    ) {
        for effect in update(&mut self.state, action) {
            self.run_effect(effect, terminal, guard);
        }
    }

    fn run_effect(
        &mut self,
        effect: Effect,
        terminal: &mut ConsoleTerminal,
        guard: &mut TerminalGuard,
    ) {
        match effect {
            Effect::Quit => self.state.quit = true,
            // Said only once written: a failed write copied nothing.
            Effect::Copy(text) => {
                match clipboard::send(terminal.backend_mut().inner_mut(), &text, self.in_tmux) {
                    Ok(sent) => {
                        super::app::toast(&mut self.state, ToastLevel::Info, sent.message())
                    }
                    Err(e) => super::app::toast(&mut self.state, ToastLevel::Error, e.to_string()),
                }
            }
            Effect::SetMouse(on) => {
                if let Err(e) = guard.set_mouse(on) {
                    super::app::toast(&mut self.state, ToastLevel::Error, format!("mouse: {e}"));
                }
            }
            Effect::LoadTheme(name) => self.load_theme(name),
            Effect::SwitchProfile(name) => self.switch_profile(name),
            other => perform(&self.handles, other, &self.tx),
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Theme(theme) => {
                let name = theme.name.clone();
                self.theme = *theme;
                let _ = update(&mut self.state, Action::ThemeChanged(name));
            }
            Control::Handles(handles, info) => {
                self.handles.shutdown.cancel();
                self.handles = Arc::from(handles);
                let fx = update(&mut self.state, Action::ProfileChanged(info));
                for effect in fx {
                    perform(&self.handles, effect, &self.tx);
                }
            }
        }
    }

    fn load_theme(&mut self, name: String) {
        let (dir, depth, tx, control) = (
            self.theme_dir.clone(),
            self.depth,
            self.tx.clone(),
            self.control_tx.clone(),
        );
        tokio::task::spawn_blocking(move || match theme::load(&name, Some(&dir), depth) {
            Ok(theme) => {
                let _ = control.send(Control::Theme(Box::new(theme)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "console: theme not loaded");
                let _ = tx.send(Action::Notify(ToastLevel::Error, e.to_string()));
            }
        });
    }

    fn switch_profile(&mut self, name: String) {
        if self.state.running_here() > 0 {
            super::app::toast(
                &mut self.state,
                ToastLevel::Warn,
                "syncs run on this console's engine: wait for them (or cancel them) before switching profiles",
            );
            return;
        }
        let overrides = Overrides {
            profile: Some(name.clone()),
            read_only: self.options.overrides.read_only,
            ..Default::default()
        };
        let (paths, tail, tx, control) = (
            self.options.paths.clone(),
            self.options.log_tail.clone(),
            self.tx.clone(),
            self.control_tx.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let built = crate::config::load(&paths, &overrides, &env)
                .map_err(|e| e.to_string())
                .and_then(|loaded| {
                    Context::build(loaded, paths, Output::stdout(false)).map_err(|e| e.to_string())
                })
                .and_then(|ctx| Handles::from_context(&ctx, tail).map(|h| (h, profile_info(&ctx))));
            match built {
                Ok((handles, info)) => {
                    tracing::info!(profile = %info.name, "console: profile switched");
                    let _ = control.send(Control::Handles(Box::new(handles), info));
                }
                Err(e) => {
                    tracing::warn!(profile = %name, error = %e, "console: profile not switched");
                    let _ = tx.send(Action::Notify(
                        ToastLevel::Error,
                        format!("profile '{name}': {e}"),
                    ));
                }
            }
        });
    }

    /// Syncs run here are suspended (their jobs can resume) rather than cut off.
    async fn suspend_running(&self) {
        let live = self.handles.engine.live();
        let running = || {
            live.snapshots()
                .iter()
                .filter(|s| !s.phase.is_done())
                .count()
        };
        self.handles.shutdown.cancel();
        if running() == 0 {
            return;
        }
        eprintln!(
            "syncdeck: suspending {} sync(s) run by the console…",
            running()
        );
        let deadline = Instant::now() + SUSPEND_WAIT;
        while running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Resolves on SIGTERM or SIGHUP (SIGINT arrives as ctrl-c, a key, in raw mode).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::widgets::Paragraph;
    use std::io::Write;
    use std::sync::Mutex;

    /// A writer that counts what reaches the terminal.
    #[derive(Clone, Default)]
    struct Counter(Arc<Mutex<usize>>);

    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn written(counter: &Counter) -> usize {
        *counter.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn a_frame_that_changes_nothing_writes_nothing() {
        let counter = Counter::default();
        let backend = QuietBackend::new(CrosstermBackend::new(counter.clone()));
        let mut terminal = Terminal::with_options(
            backend,
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 20, 2)),
            },
        )
        .unwrap();
        let mut text = "12s ago";
        let frame = |terminal: &mut Terminal<_>, text: &str| {
            terminal
                .draw(|f| f.render_widget(Paragraph::new(text.to_string()), f.area()))
                .unwrap();
        };
        frame(&mut terminal, text);
        let first = written(&counter);
        assert!(first > 0, "the first frame draws");
        // The same frame ten times (a tick that changed nothing visible): 0 bytes.
        for _ in 0..10 {
            frame(&mut terminal, text);
        }
        assert_eq!(
            written(&counter),
            first,
            "idle frames wrote to the terminal"
        );
        text = "13s ago";
        frame(&mut terminal, text);
        assert!(written(&counter) > first, "a changed cell is sent");
    }
}
