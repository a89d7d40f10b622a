//! `serve --listen`: a loopback HTTP endpoint with `/status` (the live progress snapshots as
//! JSON, which `syncdeck --attach` reads) and `/metrics` (Prometheus text format: documents by
//! outcome, bulk latency histogram, breaker state and dead-letter queue size, per connector).
//! It only reads: nothing here can change a job.

use super::dlq::DeadLetterStore;
use super::progress::{LATENCY_BUCKETS_MS, ProgressSnapshot};
use super::runner::LiveJobs;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The `/status` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub worker: String,
    pub version: String,
    pub jobs: Vec<ProgressSnapshot>,
    /// The worker's Elasticsearch node pool (absent from older workers and without one), so
    /// an attached console shows the worker's pool, not its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Vec<StatusNode>>,
}

/// One node of a worker's pool, as `/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusNode {
    pub url: String,
    pub alive: bool,
    pub failures: u32,
    /// How long a dead node stays dead before it is tried again.
    pub retry_in_ms: Option<u64>,
}

/// Reads the worker's node pool when `/status` is asked.
pub type PoolSource = Arc<dyn Fn() -> Vec<StatusNode> + Send + Sync>;

#[derive(Clone)]
struct AppState {
    live: Arc<LiveJobs>,
    dlq: Arc<DeadLetterStore>,
    worker: String,
    pool: Option<PoolSource>,
}

/// Binds `addr` (loopback only) and serves until `shutdown`. Returns the bound address
/// (useful with port 0) once listening.
pub async fn start(
    addr: SocketAddr,
    live: Arc<LiveJobs>,
    dlq: Arc<DeadLetterStore>,
    worker: String,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    start_with_pool(addr, live, dlq, worker, None, shutdown).await
}

/// [`start`], with the worker's node pool in `/status`.
pub async fn start_with_pool(
    addr: SocketAddr,
    live: Arc<LiveJobs>,
    dlq: Arc<DeadLetterStore>,
    worker: String,
    pool: Option<PoolSource>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "--listen must be a loopback address (127.0.0.1 or [::1]), not '{addr}': the status endpoint has no authentication"
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            live,
            dlq,
            worker,
            pool,
        });
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "status endpoint stopped");
        }
    });
    Ok((bound, handle))
}

async fn status(State(state): State<AppState>) -> Response {
    let doc = StatusDocument {
        worker: state.worker.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        jobs: state.live.snapshots(),
        pool: state.pool.as_ref().map(|read| read()),
    };
    axum::Json(doc).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let dlq = state.dlq.clone();
    let dlq_stats = tokio::task::spawn_blocking(move || dlq.stats())
        .await
        .ok()
        .and_then(Result::ok);
    let mut text = String::new();
    render_metrics(&mut text, &state.live, dlq_stats.as_ref());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Prometheus text exposition of the live jobs and the dead-letter queue.
pub fn render_metrics(out: &mut String, live: &LiveJobs, dlq: Option<&super::dlq::DlqStats>) {
    let snapshots = live.snapshots();
    let _ = writeln!(
        out,
        "# HELP syncdeck_documents_total Documents by outcome, per connector and job."
    );
    let _ = writeln!(out, "# TYPE syncdeck_documents_total counter");
    for s in &snapshots {
        let c = &s.counters;
        for (outcome, n) in [
            ("seen", c.seen),
            ("indexed", c.indexed),
            ("updated", c.updated),
            ("deleted", c.deleted),
            ("dead_lettered", c.dead_lettered),
            ("retried", c.retried),
            ("skipped", c.skipped),
        ] {
            let _ = writeln!(
                out,
                "syncdeck_documents_total{{{},outcome=\"{outcome}\"}} {n}",
                labels(s)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP syncdeck_bytes_total Bytes of document bodies sent."
    );
    let _ = writeln!(out, "# TYPE syncdeck_bytes_total counter");
    for s in &snapshots {
        let _ = writeln!(
            out,
            "syncdeck_bytes_total{{{}}} {}",
            labels(s),
            s.counters.bytes
        );
    }
    let _ = writeln!(
        out,
        "# HELP syncdeck_bulk_latency_seconds Bulk request latency."
    );
    let _ = writeln!(out, "# TYPE syncdeck_bulk_latency_seconds histogram");
    for job_id in live.job_ids() {
        let Some(p) = live.progress(&job_id) else {
            continue;
        };
        let s = p.snapshot();
        let histogram = p.latency_histogram();
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
            cumulative += histogram.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "syncdeck_bulk_latency_seconds_bucket{{{},le=\"{}\"}} {cumulative}",
                labels(&s),
                *bound as f64 / 1000.0
            );
        }
        cumulative += histogram.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "syncdeck_bulk_latency_seconds_bucket{{{},le=\"+Inf\"}} {cumulative}",
            labels(&s)
        );
        let _ = writeln!(
            out,
            "syncdeck_bulk_latency_seconds_sum{{{}}} {}",
            labels(&s),
            p.latency_sum_ms() as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "syncdeck_bulk_latency_seconds_count{{{}}} {cumulative}",
            labels(&s)
        );
    }
    let _ = writeln!(
        out,
        "# HELP syncdeck_breaker_state Circuit breaker state (0 closed, 1 half-open, 2 open)."
    );
    let _ = writeln!(out, "# TYPE syncdeck_breaker_state gauge");
    for s in &snapshots {
        use super::breaker::BreakerState;
        let value = match s.breaker.as_ref().map(|b| b.state) {
            Some(BreakerState::Open) => 2,
            Some(BreakerState::HalfOpen) => 1,
            Some(BreakerState::Closed) | None => 0,
        };
        let _ = writeln!(out, "syncdeck_breaker_state{{{}}} {value}", labels(s));
    }
    let _ = writeln!(
        out,
        "# HELP syncdeck_in_flight_requests Bulk requests in flight."
    );
    let _ = writeln!(out, "# TYPE syncdeck_in_flight_requests gauge");
    for s in &snapshots {
        let _ = writeln!(
            out,
            "syncdeck_in_flight_requests{{{}}} {}",
            labels(s),
            s.in_flight
        );
    }
    let _ = writeln!(
        out,
        "# HELP syncdeck_dead_letters Entries in the dead-letter queue, per connector."
    );
    let _ = writeln!(out, "# TYPE syncdeck_dead_letters gauge");
    if let Some(stats) = dlq {
        for (connector, n) in &stats.by_connector {
            let _ = writeln!(
                out,
                "syncdeck_dead_letters{{connector=\"{}\"}} {n}",
                escape(connector)
            );
        }
        let _ = writeln!(out, "syncdeck_dead_letters_total {}", stats.total);
    }
}

fn labels(s: &ProgressSnapshot) -> String {
    format!(
        "connector=\"{}\",job=\"{}\",index=\"{}\"",
        escape(&s.connector_id),
        escape(&s.job_id),
        escape(&s.index)
    )
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
