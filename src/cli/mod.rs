//! The headless CLI: thin commands over the backends, the Kibana client and (later) the
//! engine. Human tables by default, `--json` for scripts; exit codes in [`error`].
//! Nothing here holds domain logic: it parses, calls, and prints.

pub mod args;
mod check;
mod connectors;
pub mod context;
pub mod engine;
pub mod error;
mod jobs;
mod kibana;
/// How the CLI prints (shared with the console, so it lives outside `cli`).
pub use crate::output;

pub use args::{Cli, Command};
pub use context::Context;
pub use error::{CliError, CliResult};

use args::ConnectorListArgs;
use clap::CommandFactory;

/// Prints a completion script; needs no configuration.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "syncdeck", out);
}

/// Runs one command against a built context.
pub async fn run(ctx: &mut Context, command: Option<Command>) -> CliResult {
    let profile = ctx.profile.clone();
    let result = match command {
        None => overview(ctx).await,
        Some(Command::Check) => check::run(ctx).await,
        Some(Command::Connectors(c)) => connectors::run(ctx, c).await,
        Some(Command::Jobs(c)) => jobs::run(ctx, c).await,
        Some(Command::Kibana(c)) => kibana::run(ctx, c).await,
        Some(Command::Sync {
            connector,
            job_type,
            events,
        }) => engine::sync(ctx, &connector, job_type, events.as_deref()).await,
        Some(Command::Serve(args)) => engine::serve(ctx, args).await,
        Some(Command::Dlq(c)) => engine::dlq(ctx, c).await,
        Some(Command::Sources) => engine::sources(ctx),
        Some(Command::Completions { shell }) => {
            let mut buffer = Vec::new();
            completions(shell, &mut buffer);
            ctx.out.text(&String::from_utf8_lossy(&buffer))?;
            Ok(())
        }
    };
    result.map_err(|e| context::unreachable_hint(e, &profile))
}

/// `syncdeck` with no subcommand, until the console exists: `check`, then `connectors list`.
async fn overview(ctx: &mut Context) -> CliResult {
    let checked = check::run(ctx).await;
    if let Err(e) = &checked
        && check::is_unreachable(e)
    {
        return checked;
    }
    if !ctx.out.json {
        ctx.out.text("")?;
    }
    connectors::run(
        ctx,
        args::ConnectorsCommand::List(ConnectorListArgs::default()),
    )
    .await?;
    checked
}
