//! `syncdeck check`: versions, cluster health, the node pool after sniffing, Kibana status.
//! Exit 3 when the cluster does not answer, 1 when Kibana does not.

use super::context::Context;
use super::error::{CliError, CliResult, EXIT_UNREACHABLE};
use super::output::{Table, details};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct CheckReport {
    syncdeck: String,
    profile: String,
    read_only: bool,
    backend: String,
    cluster: Option<crate::backend::ClusterSummary>,
    cluster_error: Option<String>,
    nodes: Vec<NodeLine>,
    kibana: Option<KibanaLine>,
}

#[derive(Debug, Serialize)]
struct NodeLine {
    url: String,
    alive: bool,
    failures: u32,
}

#[derive(Debug, Serialize)]
struct KibanaLine {
    url: String,
    version: Option<String>,
    level: Option<String>,
    error: Option<String>,
}

pub async fn run(ctx: &mut Context) -> CliResult {
    let (cluster, cluster_error, cluster_code) = match ctx.control.cluster().await {
        Ok(summary) => (Some(summary), None, None),
        Err(e) => {
            let e = CliError::from(e);
            (None, Some(e.message.clone()), Some(e.code))
        }
    };
    let mut nodes = Vec::new();
    if let Some(es) = &ctx.elasticsearch {
        if cluster.is_some() {
            // Sniff explicitly so the report shows the nodes the cluster publishes.
            if let Err(e) = es.client().transport().sniff().await {
                tracing::warn!(error = %e, "sniffing during check failed");
            }
        }
        for node in es.client().transport().pool_snapshot() {
            nodes.push(NodeLine {
                url: node.url.to_string(),
                alive: node.alive,
                failures: node.failures,
            });
        }
    }
    let kibana = match &ctx.kibana {
        None => None,
        Some(k) => Some(match k.status().await {
            Ok(status) => KibanaLine {
                url: k.base_url().to_string(),
                version: Some(status.version.clone()),
                level: Some(status.level.clone()),
                error: None,
            },
            Err(e) => KibanaLine {
                url: k.base_url().to_string(),
                version: None,
                level: None,
                error: Some(e.to_string()),
            },
        }),
    };
    let report = CheckReport {
        syncdeck: env!("CARGO_PKG_VERSION").to_string(),
        profile: ctx.profile.name.clone(),
        read_only: ctx.profile.read_only,
        backend: if ctx.elasticsearch.is_some() {
            "elasticsearch"
        } else {
            "embedded"
        }
        .to_string(),
        cluster,
        cluster_error,
        nodes,
        kibana,
    };
    ctx.out.either(&report, || render(&report))?;
    if let Some(code) = cluster_code {
        let message = report.cluster_error.clone().unwrap_or_default();
        return Err(CliError { code, message });
    }
    if let Some(KibanaLine { error: Some(e), .. }) = &report.kibana {
        return Err(CliError::failed(format!("kibana: {e}")));
    }
    Ok(())
}

fn render(r: &CheckReport) -> String {
    let profile = if r.read_only {
        format!("{} (read-only)", r.profile)
    } else {
        r.profile.clone()
    };
    let cluster = match (&r.cluster, &r.cluster_error) {
        (Some(c), _) => format!(
            "{} {} — health {}, {} node(s) — {}",
            c.cluster_name, c.version, c.health, c.number_of_nodes, c.location
        ),
        // The error says what kind it is ("cluster unreachable: …" only when no node
        // answered, a certificate that failed verification as such), matching the exit code.
        (None, Some(e)) => e.clone(),
        (None, None) => "-".to_string(),
    };
    let kibana = match &r.kibana {
        None => "not configured".to_string(),
        Some(KibanaLine {
            url,
            version: Some(v),
            level,
            ..
        }) => {
            format!("{v} {} ({url})", level.as_deref().unwrap_or("unknown"))
        }
        Some(KibanaLine { url, error, .. }) => {
            format!("unreachable ({url}): {}", error.as_deref().unwrap_or("?"))
        }
    };
    let mut text = details(&[
        ("syncdeck", r.syncdeck.clone()),
        ("profile", profile),
        ("backend", r.backend.clone()),
        ("cluster", cluster),
        ("kibana", kibana),
    ]);
    if !r.nodes.is_empty() {
        let mut t = Table::new(&["NODE", "STATE", "FAILURES"]);
        for n in &r.nodes {
            t.row(vec![
                n.url.clone(),
                if n.alive { "alive" } else { "dead" }.to_string(),
                n.failures.to_string(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    text
}

/// Whether an error is the "cluster unreachable" kind (exit 3).
pub fn is_unreachable(e: &CliError) -> bool {
    e.code == EXIT_UNREACHABLE
}
