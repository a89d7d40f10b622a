//! The console: `syncdeck` with no subcommand on a terminal. A k9s-like TUI over the backend
//! traits, the Kibana client and this process's engine.
//!
//! The shape (see the design notes' STYLE): [`app`] holds `AppState`, `Action` and the pure
//! `update`, which returns [`effect::Effect`]s; [`io`] performs them and answers with
//! actions; [`runtime`] is the event loop (terminal events, a tick, effect results) that
//! draws with [`ui`] only when something visible changed, at most ten times a second.
//! Views ([`views`]) draw from state; keys are data ([`keymap`]); colours come from TOML
//! themes ([`theme`]); [`terminal`] restores the terminal on exit, panic and SIGTERM.

pub mod app;
pub mod clipboard;
pub mod command;
pub mod editor;
pub mod effect;
pub mod form;
pub mod format;
pub mod io;
pub mod keymap;
pub mod live;
pub mod runtime;
pub mod sort;
pub mod table;
pub mod terminal;
pub mod theme;
pub mod ui;
pub mod views;
pub mod widgets;

pub use runtime::{ConsoleError, ConsoleOptions, run};
