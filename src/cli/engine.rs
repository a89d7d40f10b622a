//! `syncdeck sync`, `serve`, `dlq` and `sources`: the engine's commands. The engine is built
//! here from the context (backend, dead-letter queue in the data dir, built-in sources).

use super::args::{DlqCommand, DlqListArgs, DlqSelectArgs, ServeArgs, SyncTypeArg};
use super::context::Context;
use super::error::{CliError, CliResult, EXIT_DEAD_LETTERS};
use super::output::{Table, details, ellipsize, or_dash};
use crate::engine::dlq::{DeadLetterStore, DlqFilter, bind_cluster};
use crate::engine::events::EventLog;
use crate::engine::progress::ProgressSnapshot;
use crate::engine::retry::retry_dead_letters;
use crate::engine::runner::{Engine, EngineError, JobEnd, JobReport};
use crate::engine::service::{self, ServeOptions};
use crate::engine::status;
use crate::model::{JobType, Origin, TableCounts, TableProgress, TableStatus};
use crate::sources;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// This worker's name in `worker_hostname` (the engine owns it: the lease checks read it).
pub use crate::engine::lease::worker_name;

/// The profile's dead-letter queue (see [`crate::engine::build::open_dlq`]).
pub fn open_dlq(ctx: &Context) -> CliResult<Arc<DeadLetterStore>> {
    crate::engine::build::open_dlq(ctx).map_err(|e| CliError::failed(e.to_string()))
}

/// The context's engine (see [`crate::engine::build()`]).
pub fn build_engine(ctx: &Context) -> CliResult<Engine> {
    crate::engine::build(ctx).map_err(|e| CliError::failed(e.to_string()))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `syncdeck sync CONNECTOR`: create, claim and run one job here. Exit 0 when every document
/// was indexed, 4 when the job completed with dead letters, 1 when it failed or was refused.
/// A connector this engine cannot run is refused before any job exists; a start refused
/// after (a live worker holds the guard) deletes its job. An orphan holding the guard (its
/// process died, or its lease ran out) is ended first, with its counts kept.
///
/// With `events`, every document's final outcome goes to that file as NDJSON (see
/// [`crate::engine::events`]); a file that could not be written completely fails the command
/// after the summary (exit 1), since its reader asked for every document.
pub async fn sync(
    ctx: &mut Context,
    connector: &str,
    job_type: SyncTypeArg,
    events: Option<&Path>,
) -> CliResult {
    ctx.ensure_writable("run a sync")?;
    let engine = build_engine(ctx)?;
    let event_log = events
        .map(EventLog::create)
        .transpose()
        .map_err(|e| CliError::failed(e.to_string()))?;
    let job_type = JobType::from(job_type);
    let job_id = engine
        .create_job_to_run(connector, job_type)
        .await
        .map_err(|e| {
            let what = format!("starting a {job_type} sync of '{connector}'");
            match e {
                EngineError::Backend(b) => CliError::from(b).context(what),
                other => CliError::failed(other.to_string()).context(what),
            }
        })?;
    let live = engine.live();
    if let Some(log) = &event_log {
        live.attach_events(&job_id, log.sink());
    }
    let shutdown = CancellationToken::new();
    let runner = {
        let engine = engine.clone();
        let job_id = job_id.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { engine.run_job(&job_id, &shutdown).await })
    };
    let json = ctx.out.json;
    let bar = !json && std::io::stderr().is_terminal();
    let mut interval = tokio::time::interval(if json {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(200)
    });
    let mut canceling = false;
    let term = termination();
    tokio::pin!(term);
    tokio::pin!(runner);
    let report = loop {
        tokio::select! {
            done = &mut runner => break done,
            _ = interval.tick() => {
                // A signal that came while the job was being guarded and claimed stops it as
                // soon as it runs.
                if canceling {
                    live.stop(&job_id);
                }
                if let Some(p) = live.progress(&job_id) {
                    let s = p.snapshot();
                    if json {
                        ctx.out.json_line(&json!({"progress": s.record()}))?;
                    } else if bar {
                        draw_bar(&s);
                    }
                }
            }
            _ = &mut term, if !canceling => {
                // SIGINT or SIGTERM, in any phase: cancel the job cleanly (it ends `canceled`);
                // the loop goes on until the runner has written the job's end.
                canceling = true;
                eprintln!("\ncanceling sync job '{job_id}'…");
                if let Err(e) = ctx.control.cancel_sync_job(&job_id).await {
                    tracing::warn!(job = %job_id, error = %e, "could not request the cancel");
                }
                live.stop(&job_id);
            }
        }
    };
    if bar {
        eprintln!();
    }
    // The job sends nothing more: its events file can be completed.
    live.detach_events(&job_id);
    let lost = live.progress(&job_id).map_or(0, |p| p.events_lost());
    let events_written = match event_log {
        Some(log) => Some(log.finish().await),
        None => None,
    };
    let report = report
        .map_err(|e| CliError::failed(format!("the sync task failed: {e}")))?
        .map_err(|e| CliError::failed(e.to_string()).context(format!("sync of '{connector}'")))?;
    let discarded = engine.discard_unstarted(&report).await;
    let final_snapshot = live.progress(&job_id).map(|p| p.snapshot());
    let final_record = final_snapshot.as_ref().map(ProgressSnapshot::record);
    let deletions_skipped = deletions_skipped(ctx, &report.job_id).await;
    let events_json = match (events, &events_written) {
        (Some(path), Some(Ok(lines))) => json!({"path": path, "lines": lines}),
        (Some(path), Some(Err(e))) => json!({"path": path, "error": e.to_string()}),
        _ => serde_json::Value::Null,
    };
    ctx.out.either(
        &json!({"report": report, "final": final_record, "job_deleted": discarded, "deletions_skipped": deletions_skipped, "events": events_json}),
        || {
            let mut text = summary_text(&report);
            if let Some(s) = &final_snapshot {
                text.push_str(&tables_text(&s.tables));
            }
            if let Some(why) = &deletions_skipped {
                text.push_str(&format!("nothing deleted: {why}\n"));
            }
            if let (Some(path), Some(Ok(lines))) = (events, &events_written) {
                text.push_str(&format!("events: {lines} line(s) in '{}'\n", path.display()));
            }
            text
        },
    )?;
    match events_written {
        Some(Err(e)) => return Err(CliError::failed(e.to_string())),
        Some(Ok(_)) if lost > 0 => {
            return Err(CliError::failed(format!(
                "{lost} document outcome(s) did not reach the events file (its writer stopped)"
            )));
        }
        _ => {}
    }
    match &report.end {
        JobEnd::Completed if report.counters.dead_lettered > 0 => Err(CliError {
            code: EXIT_DEAD_LETTERS,
            message: format!(
                "sync job '{}' completed with {} dead-lettered document(s); see `syncdeck dlq list --connector {}`",
                report.job_id, report.counters.dead_lettered, report.connector_id
            ),
        }),
        JobEnd::Completed => Ok(()),
        JobEnd::Failed { error } => Err(CliError::failed(format!(
            "sync job '{}' failed: {error}",
            report.job_id
        ))),
        JobEnd::Canceled => Err(CliError::failed(format!(
            "sync job '{}' was canceled",
            report.job_id
        ))),
        JobEnd::Suspended => Err(CliError::failed(format!(
            "sync job '{}' was suspended",
            report.job_id
        ))),
        JobEnd::Skipped { reason } if discarded => Err(CliError::failed(format!(
            "the sync of '{}' did not start: {reason} (its job was deleted)",
            report.connector_id
        ))),
        JobEnd::Skipped { reason } => Err(CliError::failed(format!(
            "sync job '{}' did not run: {reason}",
            report.job_id
        ))),
    }
}

/// Why the job deleted nothing, as the engine wrote it into the job's `metadata`.
async fn deletions_skipped(ctx: &Context, job_id: &str) -> Option<String> {
    let job = ctx.control.get_sync_job(job_id).await.ok()?;
    job.metadata
        .get("deletions_skipped")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Redraws the one-line progress bar on stderr (a terminal): cut to the terminal's width so
/// it never wraps (`\r` returns to the start of the last physical line only), and erased to
/// the end so a shorter line leaves nothing of the previous one.
fn draw_bar(s: &ProgressSnapshot) {
    let width = crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w));
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{}\x1b[K", bar_line(s, width));
    let _ = err.flush();
}

/// The bar's text for a terminal `width` cells wide (unknown: whole). The table segment goes
/// first when the line does not fit, then the line is cut.
fn bar_line(s: &ProgressSnapshot, width: Option<usize>) -> String {
    let c = &s.counters;
    let done = c.handled();
    let (bar, pct) = match s.total_hint {
        Some(total) if total > 0 => {
            let ratio = (done as f64 / total as f64).min(1.0);
            let filled = (ratio * 24.0) as usize;
            (
                format!("[{}{}]", "#".repeat(filled), ".".repeat(24 - filled)),
                format!("{:>3.0}%", ratio * 100.0),
            )
        }
        _ => ("[........................]".to_string(), "  ?%".to_string()),
    };
    let eta = s
        .eta_ms
        .map(|ms| format!(" ETA {}s", ms / 1000))
        .unwrap_or_default();
    let breaker = match s.breaker.as_ref().map(|b| b.state) {
        Some(crate::engine::breaker::BreakerState::Open) => "open",
        Some(crate::engine::breaker::BreakerState::HalfOpen) => "half_open",
        Some(crate::engine::breaker::BreakerState::Closed) | None => "closed",
    };
    // The table being read (the latest started), for sources that read tables.
    let table = s
        .tables
        .iter()
        .rev()
        .find(|t| t.status == TableStatus::Reading)
        .map(|t| {
            let name = crate::text::terminal_safe(
                &crate::secret::mask::masked(&t.name),
                crate::text::Keep::Nothing,
            )
            .into_owned();
            format!(
                "  table {} {} rows {:.0} rows/s",
                ellipsize(&name, 24),
                t.rows,
                t.rows_per_sec
            )
        })
        .unwrap_or_default();
    let line = format!(
        "{bar} {pct} {done}/{} docs  {:.0} docs/s  {:.1} MB/s  dlq {}  retries {}  deleted {}  breaker {breaker}{eta}",
        or_dash(s.total_hint),
        s.docs_per_sec,
        s.bytes_per_sec / 1_048_576.0,
        c.dead_lettered,
        c.retried,
        c.deleted,
    );
    // One cell spare: a line that fills the last column makes some terminals wrap.
    let Some(room) = width.map(|w| w.saturating_sub(1)) else {
        return line + &table;
    };
    let whole = line.clone() + &table;
    if unicode_width::UnicodeWidthStr::width(whole.as_str()) <= room {
        whole
    } else {
        ellipsize(&line, room)
    }
}

/// The tables a database source read, one line each with its whole reason; empty for
/// other sources.
fn tables_text(tables: &[TableProgress]) -> String {
    if tables.is_empty() {
        return String::new();
    }
    let mut table = Table::new(&["TABLE", "STATUS", "ROWS", "ROWS/S", "SECONDS", "NOTE"]);
    for t in tables {
        // The reason whole; the short note only when there is no reason.
        let note = t
            .reason
            .as_ref()
            .or(t.note.as_ref())
            .cloned()
            .unwrap_or_default();
        table.row(vec![
            t.name.clone(),
            t.status.to_string(),
            t.rows.to_string(),
            format!("{:.0}", t.rows_per_sec),
            format!("{:.1}", t.seconds),
            note,
        ]);
    }
    format!(
        "\ntables: {}\n{}",
        TableCounts::of(tables).summary(),
        table.render()
    )
}

fn summary_text(r: &JobReport) -> String {
    let c = &r.counters;
    let end = match &r.end {
        JobEnd::Completed => "completed".to_string(),
        JobEnd::Failed { error } => format!("failed: {error}"),
        JobEnd::Canceled => "canceled".to_string(),
        JobEnd::Suspended => "suspended".to_string(),
        JobEnd::Skipped { reason } => format!("not run: {reason}"),
    };
    let secs = (r.elapsed_ms as f64 / 1000.0).max(0.001);
    details(&[
        ("job", r.job_id.clone()),
        ("connector", r.connector_id.clone()),
        ("index", r.index.clone()),
        ("result", end),
        ("documents seen", c.seen.to_string()),
        ("indexed", (c.indexed + c.updated).to_string()),
        ("deleted", c.deleted.to_string()),
        ("skipped", c.skipped.to_string()),
        ("dead-lettered", c.dead_lettered.to_string()),
        ("item retries", c.retried.to_string()),
        (
            "bulk requests",
            format!("{} ({} failed)", c.bulk_requests, c.bulk_failures),
        ),
        ("in index", or_dash(r.total_document_count)),
        (
            "elapsed",
            format!("{secs:.1}s ({:.0} docs/s)", c.handled() as f64 / secs),
        ),
    ])
}

/// `syncdeck serve`: the connectors service, until SIGINT/SIGTERM.
pub async fn serve(ctx: &mut Context, args: ServeArgs) -> CliResult {
    ctx.ensure_writable("serve connectors")?;
    let engine = build_engine(ctx)?;
    let shutdown = CancellationToken::new();
    if let Some(addr) = args.listen {
        // The worker's own node pool goes into `/status`: an attached console shows it.
        let pool: Option<status::PoolSource> = ctx.elasticsearch.clone().map(|es| {
            Arc::new(move || {
                let now = std::time::Instant::now();
                es.client()
                    .transport()
                    .pool_snapshot()
                    .into_iter()
                    .map(|n| status::StatusNode {
                        retry_in_ms: n.retry_in(now).map(|d| d.as_millis() as u64),
                        url: n.url,
                        alive: n.alive,
                        failures: n.failures,
                    })
                    .collect()
            }) as status::PoolSource
        });
        let (bound, _) = status::start_with_pool(
            addr,
            engine.live(),
            engine.deps().dlq.clone(),
            engine.deps().worker.clone(),
            pool,
            shutdown.clone(),
        )
        .await
        .map_err(|e| CliError::usage(format!("--listen {addr}: {e}")))?;
        eprintln!("status on http://{bound}/status and http://{bound}/metrics");
        tracing::info!(%bound, "status endpoint listening");
    }
    let settings = &engine.deps().settings;
    let options = ServeOptions {
        connector_ids: args.connectors,
        idle: args.idle,
        heartbeat: args.heartbeat.unwrap_or(settings.heartbeat),
        job_cleanup_interval: args
            .job_cleanup_interval
            .unwrap_or(settings.job_cleanup_interval),
        max_concurrent_syncs: args.max_concurrent,
        ..Default::default()
    };
    eprintln!("serving as '{}' (Ctrl-C to stop)", engine.deps().worker);
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        termination().await;
        tracing::info!("shutdown requested");
        stopper.cancel();
    });
    let summary = service::serve(&engine, &options, shutdown).await;
    let jobs: Vec<_> = summary.jobs.iter().map(|r| json!({"job": r.job_id, "connector": r.connector_id, "end": r.end, "indexed": r.counters.indexed + r.counters.updated, "dead_lettered": r.counters.dead_lettered})).collect();
    ctx.out.either(&json!({"ticks": summary.ticks, "scheduled": summary.scheduled, "reaped": summary.reaped, "orphaned": summary.orphaned, "jobs_run": summary.jobs_run, "skipped": summary.skipped, "jobs": jobs}), || {
        let mut text = format!("stopped after {} tick(s): {} job(s) run, {} skipped, {} scheduled, {} idle job(s) failed ({} of deleted connectors)\n", summary.ticks, summary.jobs_run, summary.skipped, summary.scheduled, summary.reaped + summary.orphaned, summary.orphaned);
        if summary.jobs_run + summary.skipped > summary.jobs.len() as u64 {
            text.push_str(&format!("  the latest {} of them:\n", summary.jobs.len()));
        }
        for r in &summary.jobs {
            text.push_str(&format!("  {}  {}  {}\n", r.job_id, r.connector_id, summary_text(r).lines().nth(3).unwrap_or_default().trim()));
        }
        text
    })?;
    Ok(())
}

/// `syncdeck dlq ...`: every command acts on the profile's cluster's entries only (the
/// queue is shared by every profile); `list --all-clusters` and `show --all-clusters` read
/// everything.
pub async fn dlq(ctx: &mut Context, command: DlqCommand) -> CliResult {
    let store = open_dlq(ctx)?;
    match command {
        DlqCommand::List(args) => {
            if !args.all_clusters {
                bind_dlq(ctx, &store).await?;
            }
            dlq_list(ctx, &store, args)
        }
        DlqCommand::Show { id, all_clusters } => {
            let entry = find_entry(&store, id)?;
            if !all_clusters {
                bind_dlq(ctx, &store).await?;
                let current = store.origin();
                if entry.origin.cluster_uuid != current.cluster_uuid {
                    return Err(CliError::failed(format!(
                        "dead letter {id} came from {}, not from this profile's cluster {current}; \
                         add --all-clusters to show it anyway",
                        origin_text(&entry.origin)
                    )));
                }
            }
            ctx.out.either(&entry, || {
                let mut pairs = vec![
                    ("id", entry.id.to_string()),
                    ("cluster", origin_text(&entry.origin)),
                    ("state", entry.state.to_string()),
                ];
                if let Some(why) = &entry.resolution {
                    pairs.push(("resolution", why.clone()));
                }
                pairs.extend([
                    ("connector", entry.connector_id.clone()),
                    ("job", entry.job_id.clone()),
                    ("index", entry.index.clone()),
                    ("document id", entry.doc_id.clone()),
                    ("error type", entry.error_type.clone()),
                    ("reason", entry.reason.clone()),
                    ("status", or_dash(entry.status)),
                    ("attempts", entry.attempts.to_string()),
                    ("first failed", entry.first_failed_at.to_string()),
                    ("last failed", entry.last_failed_at.to_string()),
                ]);
                let mut text = details(&pairs);
                text.push_str("\ndocument:\n");
                text.push_str(&serde_json::to_string_pretty(&entry.document).unwrap_or_default());
                text
            })?;
            Ok(())
        }
        DlqCommand::Retry(select) => {
            ctx.ensure_writable("retry dead letters")?;
            bind_dlq(ctx, &store).await?;
            let entries = selected(&store, &select)?;
            if entries.is_empty() {
                ctx.out.either(
                    &json!({"succeeded": [], "failed": [], "superseded": []}),
                    || "no dead letters selected".to_string(),
                )?;
                return Ok(());
            }
            let cancel = CancellationToken::new();
            let report = retry_dead_letters(
                ctx.documents.clone(),
                ctx.control.as_ref(),
                store.clone(),
                entries,
                &ctx.profile.engine,
                &ctx.profile.breaker,
                &cancel,
            )
            .await
            .map_err(|e| CliError::failed(e.to_string()))?;
            ctx.out.either(&report, || {
                let mut text = format!(
                    "{} indexed and resolved, {} failed again, {} superseded (not sent: the index holds a newer version)\n",
                    report.succeeded.len(),
                    report.failed.len(),
                    report.superseded.len()
                );
                let mut t = Table::new(&["ID", "RESULT", "WHY"]);
                for (id, reason) in &report.failed {
                    t.row(vec![id.to_string(), "failed".into(), ellipsize(reason, 100)]);
                }
                for (id, why) in &report.superseded {
                    t.row(vec![id.to_string(), "superseded".into(), ellipsize(why, 100)]);
                }
                if !report.failed.is_empty() || !report.superseded.is_empty() {
                    text.push_str(&t.render());
                }
                text
            })?;
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "{} dead letter(s) failed again",
                    report.failed.len()
                )))
            }
        }
        DlqCommand::Drop { select, yes } => {
            ctx.ensure_writable("drop dead letters")?;
            if !yes {
                return Err(CliError::usage(
                    "dropping dead letters loses those documents from the queue; add --yes to confirm",
                ));
            }
            bind_dlq(ctx, &store).await?;
            let current = store.origin();
            let removed = if select.all {
                let filter = DlqFilter {
                    cluster: Some(current.cluster_uuid.clone()),
                    connector_id: select.connector.clone(),
                    ..Default::default()
                };
                store.remove_all(&filter)
            } else {
                // Dropping writes nothing into a cluster, so entries of unknown origin may go
                // too: it is the way to clear them. Another cluster's entries may not.
                for id in &select.ids {
                    let entry = find_entry(&store, *id)?;
                    if !entry.origin.is_unknown()
                        && entry.origin.cluster_uuid != current.cluster_uuid
                    {
                        return Err(CliError::failed(format!(
                            "dead letter {id} came from {}, not from this profile's cluster \
                             {current}: drop it with a profile of its own cluster (nothing was dropped)",
                            origin_text(&entry.origin)
                        )));
                    }
                }
                store.remove(&select.ids)
            }
            .map_err(|e| CliError::failed(e.to_string()))?;
            ctx.out.either(&json!({"dropped": removed}), || {
                format!("{removed} dead letter(s) dropped")
            })?;
            Ok(())
        }
    }
}

/// Binds the queue to the profile's cluster (a `GET /` on Elasticsearch).
async fn bind_dlq(ctx: &Context, store: &DeadLetterStore) -> CliResult {
    bind_cluster(store, ctx.control.as_ref())
        .await
        .map_err(|e| {
            CliError::failed(format!(
                "{e}; `syncdeck dlq list --all-clusters` lists every entry without asking the cluster"
            ))
        })
}

/// `cluster 'name' (uuid), profile 'p'`, or `an unknown cluster`.
fn origin_text(origin: &Origin) -> String {
    if origin.is_unknown() {
        "an unknown cluster (written before syncdeck recorded clusters)".to_string()
    } else {
        format!("cluster {origin}")
    }
}

fn find_entry(store: &DeadLetterStore, id: i64) -> CliResult<crate::model::DeadLetter> {
    store
        .get(id)
        .map_err(|e| CliError::failed(e.to_string()))?
        .ok_or_else(|| {
            CliError::failed(format!(
                "dead letter {id} not found (it may have been dropped)"
            ))
        })
}

fn selected(
    store: &DeadLetterStore,
    select: &DlqSelectArgs,
) -> CliResult<Vec<crate::model::DeadLetter>> {
    if select.all {
        let filter = DlqFilter {
            cluster: Some(store.origin().cluster_uuid),
            connector_id: select.connector.clone(),
            ..Default::default()
        };
        return store
            .list(&filter)
            .map_err(|e| CliError::failed(e.to_string()));
    }
    select.ids.iter().map(|id| find_entry(store, *id)).collect()
}

fn dlq_list(ctx: &mut Context, store: &DeadLetterStore, args: DlqListArgs) -> CliResult {
    let current = (!args.all_clusters).then(|| store.origin());
    let filter = DlqFilter {
        cluster: current.as_ref().map(|o| o.cluster_uuid.clone()),
        include_closed: args.resolved,
        connector_id: args.connector,
        job_id: args.job,
        error_type: args.error_type,
        limit: Some(args.limit),
        ..Default::default()
    };
    let failed = |e: crate::engine::dlq::DlqError| CliError::failed(e.to_string());
    let entries = store.list(&filter).map_err(failed)?;
    let total = store.count(&filter).map_err(failed)?;
    // Entries from before provenance belong to no cluster: say they exist and how to see them.
    let unknown = match &current {
        Some(_) => store
            .count(&DlqFilter {
                cluster: Some(Origin::UNKNOWN.to_string()),
                ..Default::default()
            })
            .map_err(failed)?,
        None => 0,
    };
    let json =
        json!({"cluster": current, "count": total, "unknown_origin": unknown, "results": entries});
    ctx.out.either(&json, || {
        let mut text = match &current {
            Some(origin) => format!("dead letters of cluster {origin}\n"),
            None => "dead letters of every cluster (read-only)\n".to_string(),
        };
        if entries.is_empty() {
            text.push_str("no dead letters\n");
        } else {
            let mut headers = vec!["ID"];
            if current.is_none() {
                headers.push("CLUSTER");
            }
            if args.resolved {
                headers.push("STATE");
            }
            headers.extend([
                "CONNECTOR",
                "JOB",
                "DOCUMENT",
                "ERROR",
                "ATTEMPTS",
                "LAST FAILURE",
                "REASON",
            ]);
            let mut t = Table::new(&headers);
            for e in &entries {
                let mut row = vec![e.id.to_string()];
                if current.is_none() {
                    row.push(cluster_cell(&e.origin));
                }
                if args.resolved {
                    row.push(e.state.to_string());
                }
                row.extend([
                    e.connector_id.clone(),
                    ellipsize(&e.job_id, 12),
                    ellipsize(&e.doc_id, 32),
                    e.error_type.clone(),
                    e.attempts.to_string(),
                    e.last_failed_at.0.format("%Y-%m-%d %H:%M:%S").to_string(),
                    ellipsize(e.resolution.as_deref().unwrap_or(&e.reason), 60),
                ]);
                t.row(row);
            }
            text.push_str(&t.render());
            if total > entries.len() as u64 {
                text.push_str(&format!(
                    "({} of {total}; --limit for more)\n",
                    entries.len()
                ));
            }
        }
        if unknown > 0 {
            text.push_str(&format!(
                "{unknown} dead letter(s) of unknown origin (written before syncdeck recorded \
                 clusters) are not shown: `syncdeck dlq list --all-clusters` lists them\n"
            ));
        }
        text
    })?;
    Ok(())
}

/// The cluster column of `--all-clusters`: its name, and enough of its key to tell two apart.
fn cluster_cell(origin: &Origin) -> String {
    if origin.is_unknown() {
        return Origin::UNKNOWN.to_string();
    }
    format!(
        "{} ({})",
        origin.cluster_name,
        ellipsize(&origin.cluster_uuid, 24)
    )
}

/// `syncdeck sources`: the built-in service types and their fields.
pub fn sources(ctx: &mut Context) -> CliResult {
    let registry = sources::builtin();
    let listing: Vec<_> = registry
        .factories()
        .map(|f| {
            let config = f.default_configuration();
            let fields: Vec<_> = config
                .fields_in_order()
                .into_iter()
                .map(|(key, field)| {
                    json!({"key": key, "label": field.display_label(key), "type": field.field_type.as_str(),
                           "required": field.required, "sensitive": field.sensitive,
                           "default": field.default_value, "tooltip": field.tooltip})
                })
                .collect();
            // Fields a connector gets only when the operator sets one (`connectors set`).
            let optional: Vec<_> = f
                .optional_fields()
                .fields_in_order()
                .into_iter()
                .map(|(key, field)| {
                    json!({"key": key, "label": field.display_label(key), "type": field.field_type.as_str(),
                           "required": false, "sensitive": field.sensitive,
                           "default": field.default_value, "tooltip": field.tooltip})
                })
                .collect();
            json!({"service_type": f.service_type(), "name": f.display_name(), "incremental": f.supports_incremental(), "fields": fields, "optional_fields": optional})
        })
        .collect();
    ctx.out.either(&listing, || {
        let mut text = String::new();
        for f in registry.factories() {
            text.push_str(&format!(
                "{} — {}{}\n",
                f.service_type(),
                f.display_name(),
                if f.supports_incremental() {
                    " (incremental)"
                } else {
                    ""
                }
            ));
            let mut t = Table::new(&[
                "KEY",
                "LABEL",
                "TYPE",
                "DEFAULT",
                "REQUIRED",
                "SENSITIVE",
                "HELP",
            ]);
            for (key, field) in f.default_configuration().fields_in_order() {
                t.row(vec![
                    key.to_string(),
                    field.display_label(key),
                    field.field_type.as_str().to_string(),
                    crate::model::value_text(&field.default_value),
                    if field.required { "yes" } else { "no" }.to_string(),
                    if field.sensitive { "yes" } else { "no" }.to_string(),
                    ellipsize(field.tooltip.as_deref().unwrap_or(""), 60),
                ]);
            }
            for (key, field) in f.optional_fields().fields_in_order() {
                t.row(vec![
                    key.to_string(),
                    field.display_label(key),
                    field.field_type.as_str().to_string(),
                    crate::model::value_text(&field.default_value),
                    "opt-in".to_string(),
                    if field.sensitive { "yes" } else { "no" }.to_string(),
                    ellipsize(field.tooltip.as_deref().unwrap_or(""), 60),
                ]);
            }
            for line in t.render().lines() {
                text.push_str(&format!("  {line}\n"));
            }
            text.push('\n');
        }
        text
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::progress::Progress;
    use unicode_width::UnicodeWidthStr;

    fn reading(name: &str) -> TableProgress {
        TableProgress {
            name: name.into(),
            status: TableStatus::Reading,
            rows: 1200,
            rows_per_sec: 600.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_bar_fits_its_terminal_and_drops_the_table_first() {
        let mut s = Progress::new("job", "connector", "index").snapshot();
        let bare = bar_line(&s, None);
        s.tables = vec![reading("public.orders_with_a_rather_long_name")];
        let whole = bar_line(&s, None);
        assert!(whole.starts_with(&bare) && whole.contains("table public.orders"));
        // Wide enough: all of it.
        assert_eq!(bar_line(&s, Some(whole.width() + 1)), whole);
        // Not wide enough for the table: the counters stay whole, the table goes.
        assert_eq!(bar_line(&s, Some(bare.width() + 1)), bare);
        // Narrower than the counters: cut to the width, marked.
        for width in [1usize, 20, 80] {
            let line = bar_line(&s, Some(width));
            assert!(line.width() < width.max(2), "{width}: {line:?}");
            assert!(line.ends_with('…'), "{line:?}");
        }
    }
}
