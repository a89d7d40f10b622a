//! `syncdeck jobs ...`: list, show, start, cancel.

use super::args::{JobListArgs, JobsCommand};
use super::context::Context;
use super::error::{CliError, CliResult};
use super::output::{Table, details, ellipsize, or_dash};
use crate::backend::SyncJobQuery;
use crate::engine::lease;
use crate::model::{JobType, SyncJob, Timestamp, TriggerMethod};
use serde_json::json;

pub async fn run(ctx: &mut Context, command: JobsCommand) -> CliResult {
    match command {
        JobsCommand::List(args) => list(ctx, args).await,
        JobsCommand::Show { id } => {
            let job = ctx
                .control
                .get_sync_job(&id)
                .await
                .map_err(|e| CliError::from(e).context(format!("sync job '{id}'")))?;
            // The job's own secrets join the masker, so its `error` (written by whichever
            // service ran it) cannot show one on stdout.
            crate::sources::register_sensitive(&job.connector.configuration);
            let job = job.masked();
            ctx.out.either(&job, || show_text(&job))?;
            Ok(())
        }
        JobsCommand::Start {
            connector,
            job_type,
        } => {
            let job_type = JobType::from(job_type);
            let id = ctx
                .control
                .create_sync_job(&connector, job_type, TriggerMethod::OnDemand)
                .await
                .map_err(|e| {
                    CliError::from(e)
                        .context(format!("starting a {job_type} sync of '{connector}'"))
                })?;
            ctx.out.either(&json!({"id": id, "connector_id": connector, "job_type": job_type}), || {
                format!("{job_type} sync job '{id}' created for connector '{connector}' (pending until a connectors service claims it)")
            })?;
            Ok(())
        }
        JobsCommand::Cancel { id } => {
            ctx.control
                .cancel_sync_job(&id)
                .await
                .map_err(|e| CliError::from(e).context(format!("canceling sync job '{id}'")))?;
            // A job whose worker is gone (or that no worker claimed) would stay `canceling`
            // for good: end it here.
            let job = lease::complete_orphaned_cancel(
                ctx.control.as_ref(),
                &id,
                ctx.profile.engine.idle_job_timeout,
            )
            .await
            .map_err(|e| CliError::from(e).context(format!("canceling sync job '{id}'")))?;
            ctx.out
                .either(&json!({"id": id, "status": job.status}), || {
                    format!("sync job '{id}' is now {}", job.status)
                })?;
            Ok(())
        }
    }
}

async fn list(ctx: &mut Context, args: JobListArgs) -> CliResult {
    let query = SyncJobQuery {
        from: args.from,
        size: Some(args.size),
        connector_id: args.connector,
        status: args.status.map(Into::into),
        job_types: args.job_type.into_iter().map(Into::into).collect(),
    };
    let page = ctx.control.list_sync_jobs(&query).await?;
    for job in &page.results {
        crate::sources::register_sensitive(&job.connector.configuration);
    }
    let page = crate::model::Page {
        count: page.count,
        results: page.results.iter().map(SyncJob::masked).collect(),
    };
    ctx.out.either(&page, || {
        let mut text = jobs_table(&page.results);
        if page.count > page.results.len() as u64 + query.from {
            text.push_str(&format!(
                "({} of {} jobs; --from {} for more)\n",
                page.results.len(),
                page.count,
                query.from + page.results.len() as u64
            ));
        }
        text
    })?;
    Ok(())
}

pub fn jobs_table(jobs: &[SyncJob]) -> String {
    if jobs.is_empty() {
        return "no sync jobs".to_string();
    }
    let now = Timestamp::now();
    let mut table = Table::new(&[
        "ID",
        "CONNECTOR",
        "TYPE",
        "TRIGGER",
        "STATUS",
        "INDEXED",
        "DELETED",
        "TOTAL",
        "VOLUME",
        "STARTED",
        "DURATION",
        "WORKER",
    ]);
    for j in jobs {
        table.row(vec![
            j.id.clone(),
            ellipsize(&j.connector.id, 24),
            j.job_type.to_string(),
            j.trigger_method.to_string(),
            j.status.to_string(),
            j.indexed_document_count.to_string(),
            j.deleted_document_count.to_string(),
            or_dash(j.total_document_count),
            format!("{} MiB", j.indexed_document_volume),
            j.started_at
                .map(|t| t.0.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            j.duration(now)
                .map(format_duration)
                .unwrap_or_else(|| "-".into()),
            or_dash(j.worker_hostname.as_deref()),
        ]);
    }
    table.render()
}

/// `1h02m`, `3m05s`, `12s`.
pub fn format_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn show_text(j: &SyncJob) -> String {
    details(&[
        ("ID", j.id.clone()),
        ("Connector", j.connector.id.clone()),
        ("Index", or_dash(j.connector.index_name.as_deref())),
        ("Service type", or_dash(j.connector.service_type.as_deref())),
        ("Type", j.job_type.to_string()),
        ("Trigger", j.trigger_method.to_string()),
        ("Status", j.status.to_string()),
        ("Error", or_dash(j.error.as_deref())),
        ("Worker", or_dash(j.worker_hostname.as_deref())),
        ("Created", or_dash(j.created_at)),
        ("Started", or_dash(j.started_at)),
        ("Completed", or_dash(j.completed_at)),
        ("Cancel requested", or_dash(j.cancelation_requested_at)),
        ("Canceled", or_dash(j.canceled_at)),
        ("Last seen", or_dash(j.last_seen)),
        (
            "Duration",
            j.duration(Timestamp::now())
                .map(format_duration)
                .unwrap_or_else(|| "-".into()),
        ),
        ("Indexed", j.indexed_document_count.to_string()),
        ("Deleted", j.deleted_document_count.to_string()),
        ("Total in index", or_dash(j.total_document_count)),
        ("Volume", format!("{} MiB", j.indexed_document_volume)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(format_duration(chrono::Duration::seconds(12)), "12s");
        assert_eq!(format_duration(chrono::Duration::seconds(185)), "3m05s");
        assert_eq!(format_duration(chrono::Duration::seconds(3720)), "1h02m");
        assert_eq!(format_duration(chrono::Duration::seconds(-5)), "0s");
    }
}
