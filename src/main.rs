//! The `syncdeck` binary: parse arguments, resolve paths, start file logging, load the
//! profile, and hand over to the CLI. Everything else lives in the library.

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use syncdeck::cli::error::EXIT_FAILED;
use syncdeck::cli::output::Output;
use syncdeck::cli::{self, Cli, CliError, Command, Context};
use syncdeck::config::{self, Overrides};
use syncdeck::console::ConsoleOptions;
use syncdeck::paths::Paths;

/// mimalloc, asked and tuned as `syncdeck::alloc` says (why: see there).
#[global_allocator]
static GLOBAL: syncdeck::alloc::Mimalloc = syncdeck::alloc::Mimalloc;

/// Tunes the allocator when the process loads, before anything allocates (why it must be
/// that early: `syncdeck::alloc::tune`).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = syncdeck::alloc::tune_at_load;

fn main() -> ExitCode {
    // Where the loader has no `.init_array`, as early as this binary can.
    #[cfg(not(target_os = "linux"))]
    syncdeck::alloc::tune();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`syncdeck ... | head`) is not a failure. Only a write to stdout
            // that failed with EPIPE counts: a broken connection to a cluster is an error.
            if syncdeck::cli::output::stdout_closed() {
                return ExitCode::SUCCESS;
            }
            // The message may quote a server or a program: no secret, no escape sequence.
            let message = syncdeck::secret::mask(&e.message);
            eprintln!(
                "syncdeck: {}",
                syncdeck::text::terminal_safe(&message, syncdeck::text::Keep::Layout)
            );
            ExitCode::from(e.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    if let Some(Command::Completions { shell }) = &cli.command {
        cli::completions(*shell, &mut std::io::stdout());
        return Ok(());
    }
    let env = |name: &str| std::env::var(name).ok();
    let paths = Paths::resolve(cli.global.config.clone(), &env)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let _log = syncdeck::logging::init(&paths.log_dir(), cli.global.log_level.as_deref())
        .map_err(|e| CliError::usage(format!("logging: {e}")))?;
    syncdeck::logging::install_panic_hook();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), command = ?cli.command.as_ref().map(command_name), "syncdeck starting");
    let overrides = Overrides {
        profile: cli.global.profile.clone(),
        es_urls: cli.global.es.clone(),
        kibana_url: cli.global.kibana.clone(),
        read_only: cli.global.read_only,
    };
    let loaded =
        config::load(&paths, &overrides, &env).map_err(|e| CliError::usage(e.to_string()))?;
    // No subcommand on a terminal opens the console; elsewhere (pipes, scripts) the overview.
    let console = (cli.command.is_none() && !cli.global.json && std::io::stdout().is_terminal())
        .then(|| ConsoleOptions {
            paths: paths.clone(),
            overrides: overrides.clone(),
            ui: loaded.ui.clone(),
            profile_names: loaded.profile_names.clone(),
            attach: cli.global.attach.clone(),
            theme: cli.global.theme.clone(),
            log_tail: Some(_log.tail()),
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError {
            code: EXIT_FAILED,
            message: format!("cannot start the runtime: {e}"),
        })?;
    runtime.block_on(async move {
        let mut ctx = Context::build(loaded, paths, Output::stdout(cli.global.json))?;
        if let Some(options) = console {
            return syncdeck::console::run(ctx, options)
                .await
                .map_err(|e| CliError {
                    code: EXIT_FAILED,
                    message: format!("console: {e}"),
                });
        }
        let result = cli::run(&mut ctx, cli.command).await;
        if let Err(e) = &result {
            tracing::warn!(code = e.code, error = %e.message, "command failed");
        }
        result
    })
}

/// The subcommand's name for the log (never its arguments: they may hold values).
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Check => "check",
        Command::Connectors(_) => "connectors",
        Command::Jobs(_) => "jobs",
        Command::Kibana(_) => "kibana",
        Command::Sync { .. } => "sync",
        Command::Serve(_) => "serve",
        Command::Dlq(_) => "dlq",
        Command::Sources => "sources",
        Command::Completions { .. } => "completions",
    }
}

#[cfg(test)]
mod tests {
    /// This test binary is built from this file, with its global allocator and its
    /// `.init_array` entry: the allocator's settings are in force before any test runs (a
    /// linker that dropped the entry would leave mimalloc's defaults, 1000 and 2).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_allocator_is_tuned_when_the_process_loads() {
        let mimalloc_variable = |(name, _): (std::ffi::OsString, _)| {
            name.to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("MIMALLOC_")
        };
        if std::env::vars_os().any(mimalloc_variable) {
            return; // the operator's settings win; nothing of ours to check
        }
        assert_eq!(
            syncdeck::alloc::settings(),
            [("purge_delay", 0), ("arena_eager_commit", 0)]
        );
    }
}
