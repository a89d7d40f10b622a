//! `serve --listen`: a loopback HTTP endpoint with `/status` (the live progress snapshots as
//! JSON, which `syncdeck --attach` reads) and `/metrics` (OpenMetrics text via
//! `prometheus-client`: documents by outcome, bulk latency histogram, breaker state and
//! dead-letter queue size, per connector).
//! It only reads: nothing here can change a job.

use super::dlq::DeadLetterStore;
use super::progress::{LATENCY_BUCKETS_MS, Progress, ProgressSnapshot};
use super::runner::LiveJobs;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
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
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// The content type of [`render_metrics`]'s text: OpenMetrics 1.0, which Prometheus scrapes
/// (a counter family `x` has its sample `x_total`; the text ends with `# EOF`).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// OpenMetrics text of the live jobs and the dead-letter queue: every family with its HELP
/// and TYPE, encoded by `prometheus-client` from one reading of the jobs' progress.
pub fn render_metrics(out: &mut String, live: &LiveJobs, dlq: Option<&super::dlq::DlqStats>) {
    let jobs = live
        .job_ids()
        .into_iter()
        .filter_map(|id| live.progress(&id));
    encode_metrics(out, jobs, dlq);
}

fn encode_metrics(
    out: &mut String,
    jobs: impl IntoIterator<Item = Arc<Progress>>,
    dlq: Option<&super::dlq::DlqStats>,
) {
    let jobs = jobs
        .into_iter()
        .map(|p| JobSample {
            snapshot: p.snapshot(),
            histogram: p.latency_histogram(),
            latency_sum_ms: p.latency_sum_ms(),
        })
        .collect();
    let scrape = Scrape {
        jobs,
        dead_letters: dlq.cloned(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    // Writing into a String cannot fail; a failure would only cut the text short.
    if let Err(e) = prometheus_client::encoding::text::encode(out, &registry) {
        tracing::warn!(error = %e, "could not encode /metrics");
    }
}

/// One job as a scrape reads it: everything taken at once, so its families agree.
#[derive(Debug)]
struct JobSample {
    snapshot: ProgressSnapshot,
    histogram: Vec<u64>,
    latency_sum_ms: u64,
}

impl JobSample {
    /// `connector`, `job`, `index` (the encoder escapes label values).
    fn labels(&self) -> Vec<(&'static str, String)> {
        let s = &self.snapshot;
        vec![
            ("connector", s.connector_id.clone()),
            ("job", s.job_id.clone()),
            ("index", s.index.clone()),
        ]
    }

    /// Non-cumulative `(upper bound in seconds, count)` pairs; infinity is `+Inf`.
    fn buckets(&self) -> Vec<(f64, u64)> {
        let bounds = LATENCY_BUCKETS_MS
            .iter()
            .map(|ms| *ms as f64 / 1000.0)
            .chain([f64::INFINITY]);
        bounds
            .enumerate()
            .map(|(i, bound)| (bound, self.histogram.get(i).copied().unwrap_or(0)))
            .collect()
    }
}

/// What one scrape of `/metrics` encodes.
#[derive(Debug)]
struct Scrape {
    jobs: Vec<JobSample>,
    dead_letters: Option<super::dlq::DlqStats>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_documents(&mut encoder)?;
        self.encode_bytes(&mut encoder)?;
        self.encode_latency(&mut encoder)?;
        self.encode_breaker(&mut encoder)?;
        self.encode_in_flight(&mut encoder)?;
        self.encode_dead_letters(&mut encoder)
    }
}

impl Scrape {
    fn encode_documents(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "syncdeck_documents",
            "Documents by outcome, per connector and job",
            None,
            MetricType::Counter,
        )?;
        for job in &self.jobs {
            let c = &job.snapshot.counters;
            for (outcome, n) in [
                ("seen", c.seen),
                ("indexed", c.indexed),
                ("updated", c.updated),
                ("deleted", c.deleted),
                ("dead_lettered", c.dead_lettered),
                ("retried", c.retried),
                ("skipped", c.skipped),
            ] {
                let mut labels = job.labels();
                labels.push(("outcome", outcome.to_string()));
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn encode_bytes(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "syncdeck_bytes",
            "Bytes of document bodies sent",
            None,
            MetricType::Counter,
        )?;
        for job in &self.jobs {
            let labels = job.labels();
            ConstCounter::new(job.snapshot.counters.bytes)
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn encode_latency(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "syncdeck_bulk_latency_seconds",
            "Bulk request latency",
            None,
            MetricType::Histogram,
        )?;
        for job in &self.jobs {
            let labels = job.labels();
            let buckets = job.buckets();
            let count = buckets.iter().map(|(_, n)| n).sum();
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    job.latency_sum_ms as f64 / 1000.0,
                    count,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }

    fn encode_breaker(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "syncdeck_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            None,
            MetricType::Gauge,
        )?;
        for job in &self.jobs {
            use super::breaker::BreakerState;
            let value: i64 = match job.snapshot.breaker.as_ref().map(|b| b.state) {
                Some(BreakerState::Open) => 2,
                Some(BreakerState::HalfOpen) => 1,
                Some(BreakerState::Closed) | None => 0,
            };
            let labels = job.labels();
            ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn encode_in_flight(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "syncdeck_in_flight_requests",
            "Bulk requests in flight",
            None,
            MetricType::Gauge,
        )?;
        for job in &self.jobs {
            let labels = job.labels();
            let n = i64::try_from(job.snapshot.in_flight).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// Per connector, and all of them: the total was once an untyped
    /// `syncdeck_dead_letters_total` sample; a gauge named `_total` reads as a counter in
    /// OpenMetrics, so it is `syncdeck_dead_letter_queue_entries` now.
    fn encode_dead_letters(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let Some(stats) = &self.dead_letters else {
            return Ok(());
        };
        {
            let mut family = encoder.encode_descriptor(
                "syncdeck_dead_letters",
                "Open entries in the dead-letter queue, per connector",
                None,
                MetricType::Gauge,
            )?;
            for (connector, n) in &stats.by_connector {
                let labels = [("connector", connector.as_str())];
                ConstGauge::new(gauge_value(*n)).encode(family.encode_family(&labels)?)?;
            }
        }
        let total = encoder.encode_descriptor(
            "syncdeck_dead_letter_queue_entries",
            "Open entries in the dead-letter queue, all connectors",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(gauge_value(stats.total)).encode(total)
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dlq::DlqStats;
    use crate::engine::progress::BatchTally;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// One parsed exposition: per family its type and help, and every sample.
    #[derive(Debug, Default)]
    struct Exposition {
        types: BTreeMap<String, String>,
        helps: BTreeMap<String, String>,
        samples: Vec<(String, String, f64)>,
    }

    impl Exposition {
        /// Parses OpenMetrics text strictly enough to catch a sample without its family's
        /// HELP and TYPE, or text that does not end with `# EOF`.
        fn parse(text: &str) -> Self {
            let mut e = Self::default();
            let mut lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.pop(), Some("# EOF"), "{text}");
            for line in lines {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) = rest.split_once(' ').expect("HELP name text");
                    e.helps.insert(name.to_string(), help.to_string());
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').expect("TYPE name type");
                    e.types.insert(name.to_string(), kind.to_string());
                } else {
                    assert!(!line.starts_with('#'), "unknown comment: {line}");
                    let (series, value) = line.rsplit_once(' ').expect("sample value");
                    let (name, labels) = match series.split_once('{') {
                        Some((n, l)) => (n, l.trim_end_matches('}')),
                        None => (series, ""),
                    };
                    let family = e.family_of(name);
                    assert!(
                        e.helps.contains_key(&family) && e.types.contains_key(&family),
                        "sample '{name}' has no HELP/TYPE for family '{family}':\n{text}"
                    );
                    let value = if value == "+Inf" {
                        f64::INFINITY
                    } else {
                        value.parse().expect("numeric sample value")
                    };
                    e.samples
                        .push((name.to_string(), labels.to_string(), value));
                }
            }
            e
        }

        /// The family a sample name belongs to, by its declared type's suffixes.
        fn family_of(&self, name: &str) -> String {
            for (suffix, kind) in [
                ("_total", "counter"),
                ("_bucket", "histogram"),
                ("_sum", "histogram"),
                ("_count", "histogram"),
            ] {
                if let Some(base) = name.strip_suffix(suffix)
                    && self.types.get(base).map(String::as_str) == Some(kind)
                {
                    return base.to_string();
                }
            }
            name.to_string()
        }

        /// The value of the sample `name` whose labels are `labels` (in any order).
        fn value(&self, name: &str, labels: &str) -> Option<f64> {
            let wanted = label_set(labels);
            self.samples
                .iter()
                .find(|(n, l, _)| n == name && label_set(l) == wanted)
                .map(|(_, _, v)| *v)
        }
    }

    /// `a="1",b="x\"y"` as a sorted set of `key="value"` pairs (a comma inside a quoted
    /// value does not split it).
    fn label_set(text: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let (mut current, mut quoted, mut escaped) = (String::new(), false, false);
        for c in text.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    out.insert(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        if !current.is_empty() {
            out.insert(current);
        }
        out
    }

    #[test]
    fn every_family_has_help_and_type_and_the_values_are_the_jobs() {
        let p = Arc::new(Progress::new("job-1", "con\"nector", "idx"));
        p.add_seen(12);
        p.add_batch(&BatchTally {
            indexed: 10,
            dead_lettered: 2,
            bytes: 4096,
            ..Default::default()
        });
        p.bulk_done(Duration::from_millis(3), false);
        p.bulk_done(Duration::from_millis(40), false);
        p.bulk_done(Duration::from_secs(20), true);
        p.set_breaker(crate::engine::breaker::BreakerSnapshot::in_state(
            crate::engine::breaker::BreakerState::Open,
        ));
        let dlq = DlqStats {
            total: 7,
            by_connector: vec![("a".into(), 5), ("b".into(), 2)],
            by_error_type: vec![],
        };
        let mut text = String::new();
        encode_metrics(&mut text, [p], Some(&dlq));
        let e = Exposition::parse(&text);

        for family in [
            "syncdeck_documents",
            "syncdeck_bytes",
            "syncdeck_bulk_latency_seconds",
            "syncdeck_breaker_state",
            "syncdeck_in_flight_requests",
            "syncdeck_dead_letters",
            "syncdeck_dead_letter_queue_entries",
        ] {
            assert!(
                e.helps.get(family).is_some_and(|h| !h.is_empty()),
                "{family}: {text}"
            );
            assert!(e.types.contains_key(family), "{family}: {text}");
        }
        assert_eq!(e.types["syncdeck_documents"], "counter");
        assert_eq!(e.types["syncdeck_bulk_latency_seconds"], "histogram");
        assert_eq!(e.types["syncdeck_dead_letter_queue_entries"], "gauge");

        let job = r#"connector="con\"nector",job="job-1",index="idx""#;
        let outcome = |o: &str| {
            e.value(
                "syncdeck_documents_total",
                &format!("{job},outcome=\"{o}\""),
            )
        };
        assert_eq!(outcome("indexed"), Some(10.0));
        assert_eq!(outcome("seen"), Some(12.0));
        assert_eq!(outcome("dead_lettered"), Some(2.0));
        assert_eq!(e.value("syncdeck_bytes_total", job), Some(4096.0));
        assert_eq!(e.value("syncdeck_breaker_state", job), Some(2.0));
        assert_eq!(e.value("syncdeck_in_flight_requests", job), Some(0.0));
        assert_eq!(
            e.value("syncdeck_bulk_latency_seconds_count", job),
            Some(3.0)
        );
        assert_eq!(
            e.value("syncdeck_bulk_latency_seconds_sum", job),
            Some(20.043)
        );
        let bucket = |le: &str| {
            e.value(
                "syncdeck_bulk_latency_seconds_bucket",
                &format!("{job},le=\"{le}\""),
            )
        };
        assert_eq!(bucket("0.005"), Some(1.0), "{text}");
        assert_eq!(bucket("0.05"), Some(2.0));
        assert_eq!(bucket("10.0"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        // Cumulative buckets never decrease.
        let buckets: Vec<f64> = e
            .samples
            .iter()
            .filter(|(n, _, _)| n == "syncdeck_bulk_latency_seconds_bucket")
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(buckets.len(), LATENCY_BUCKETS_MS.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert_eq!(
            e.value("syncdeck_dead_letters", r#"connector="a""#),
            Some(5.0)
        );
        assert_eq!(
            e.value("syncdeck_dead_letters", r#"connector="b""#),
            Some(2.0)
        );
        assert_eq!(e.value("syncdeck_dead_letter_queue_entries", ""), Some(7.0));
    }

    #[test]
    fn no_jobs_and_no_queue_is_still_a_valid_exposition() {
        let mut text = String::new();
        encode_metrics(&mut text, Vec::new(), None);
        let e = Exposition::parse(&text);
        assert!(e.samples.is_empty(), "{text}");
        assert!(e.types.contains_key("syncdeck_documents"), "{text}");
    }
}
