//! The terminal's set-up and restoration: raw mode, the alternate screen, a hidden cursor,
//! bracketed paste and (when asked) mouse capture on entry; everything undone on drop, in a
//! panic hook that restores before the panic message prints, and by the runtime on SIGTERM
//! (which ends the loop, so the drop runs).

use crossterm::cursor::{Hide, Show};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::{self, Write};
use std::sync::{Once, OnceLock};
use std::thread::ThreadId;

/// The thread that draws: a panic there ends the console; elsewhere (a background task) it
/// is logged and the console goes on.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Holds the terminal in console mode; restores it when dropped.
pub struct TerminalGuard {
    mouse: bool,
}

impl TerminalGuard {
    /// Enters console mode. On failure, whatever was set up is undone.
    pub fn enter(mouse: bool) -> io::Result<Self> {
        let _ = UI_THREAD.set(std::thread::current().id());
        install_panic_hook();
        // crossterm reads NO_COLOR itself and then writes empty SGR sequences (`ESC[m`,
        // a full reset) where colours would go, which wipes bold and reverse. The console
        // handles NO_COLOR with its monochrome theme instead.
        crossterm::style::force_color_output(true);
        enable_raw_mode()?;
        let guard = Self { mouse: false };
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            Hide,
            EnableBracketedPaste
        )?;
        let mut guard = guard;
        guard.set_mouse(mouse)?;
        Ok(guard)
    }

    /// Turns mouse capture on or off (off by default: it breaks text selection over SSH).
    pub fn set_mouse(&mut self, on: bool) -> io::Result<()> {
        if on == self.mouse {
            return Ok(());
        }
        if on {
            execute!(io::stdout(), EnableMouseCapture)?;
        } else {
            execute!(io::stdout(), DisableMouseCapture)?;
        }
        self.mouse = on;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(self.mouse);
    }
}

/// Puts the terminal back: main screen, cursor shown, cooked mode. Safe to call twice.
pub fn restore(mouse: bool) {
    let mut out = io::stdout();
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, DisableBracketedPaste, LeaveAlternateScreen, Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// A panic restores the terminal first, so the message is readable and the shell usable.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_ui = UI_THREAD
                .get()
                .is_none_or(|id| *id == std::thread::current().id());
            if !on_ui {
                // Printing would scribble over the screen; the Logs view shows it instead.
                tracing::error!(panic = %info, "a background task panicked");
                return;
            }
            // Mouse capture may be on; turning it off when it is not is harmless.
            restore(true);
            previous(info);
        }));
    });
}
