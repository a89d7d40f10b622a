//! The resolved settings of one profile: what the clients, backends and engine are built from.
//! Plain data with defaults; parsing and validation live in the config loader.

use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// One profile, resolved: file values, then environment, then flags; secrets dereferenced.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProfile {
    pub name: String,
    /// `None`: no cluster configured, the embedded backend is used.
    pub elasticsearch: Option<EsSettings>,
    pub kibana: Option<KibanaSettings>,
    pub read_only: bool,
    pub engine: EngineSettings,
    pub breaker: BreakerSettings,
}

/// How to authenticate to Elasticsearch or Kibana.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Auth {
    #[default]
    None,
    /// The encoded API key (base64 of `id:key`), sent as `Authorization: ApiKey <key>`.
    ApiKey(Secret),
    Basic {
        username: String,
        password: Secret,
    },
    Bearer(Secret),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EsSettings {
    pub nodes: Vec<Url>,
    pub auth: Auth,
    pub tls: TlsSettings,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub retry_on_timeout: bool,
    pub sniff: SniffSettings,
    pub gzip: bool,
    /// The `compatible-with` version of the vendored media type (8 or 9).
    pub compatible_with: u8,
    /// Dead-node backoff: a failing node is dead for `min(base × 2^(failures−1), max)`.
    pub dead_backoff_base: Duration,
    pub dead_backoff_max: Duration,
    /// The largest answer read from a node, in bytes (after gzip decoding).
    pub max_response_bytes: usize,
}

/// The default bound on one Elasticsearch answer: 256 MiB. Our requests ask for small
/// answers (bulk answers filtered to errors, pages of 1000 ids), so this only stops a broken
/// or hostile node; it still fits a 1000-hit page of 250 KB documents.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The default time an item refused with 429 keeps being retried before it is dead-lettered.
pub const DEFAULT_ITEM_RETRY_BUDGET: Duration = Duration::from_secs(300);

impl EsSettings {
    /// Defaults for a list of nodes.
    pub fn new(nodes: Vec<Url>) -> Self {
        Self {
            nodes,
            auth: Auth::None,
            tls: TlsSettings::default(),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_on_timeout: false,
            sniff: SniffSettings::default(),
            gzip: false,
            compatible_with: 8,
            dead_backoff_base: Duration::from_secs(1),
            dead_backoff_max: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// A PEM file of CA certificates to trust (in addition to the system roots).
    pub ca_file: Option<PathBuf>,
    /// Verify certificates (on by default; off only for throwaway clusters).
    pub verify: bool,
    /// SHA-256 fingerprint (hex, colons allowed) the server certificate must match.
    pub fingerprint: Option<String>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            verify: true,
            fingerprint: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SniffSettings {
    pub on_start: bool,
    pub on_node_failure: bool,
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KibanaSettings {
    pub url: Url,
    /// `None` is the default space.
    pub space: Option<String>,
    /// Defaults to the Elasticsearch credentials.
    pub auth: Auth,
    pub request_timeout: Duration,
    pub tls: TlsSettings,
}

/// Settings of the embedded sync engine (pipeline and sink).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub batch_max_docs: usize,
    pub batch_max_bytes: usize,
    pub batch_linger: Duration,
    pub max_in_flight: usize,
    /// Bound of the bulk bodies built and not settled yet (queued, in flight or with items
    /// waiting to be retried), in bytes; always room for `max_in_flight + 1` batches.
    pub queue_max_bytes: usize,
    pub item_max_retries: u32,
    /// How long an item refused with 429 (back-pressure) keeps being retried before it is
    /// dead-lettered; `item_max_retries` counts only the other transient item errors.
    pub item_retry_budget: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub dlq_max_entries: u64,
    /// A dead letter's document larger than this is stored as its size and a preview.
    pub dlq_max_document_bytes: usize,
    pub stats_interval: Duration,
    pub check_interval: Duration,
    pub idle_job_timeout: Duration,
    /// `serve`: how often a connector is checked in (its `last_seen`).
    pub heartbeat: Duration,
    /// `serve`: time between two cleanups of abandoned jobs.
    pub job_cleanup_interval: Duration,
    pub exclude_fields: Vec<String>,
    pub hash_fields: Vec<String>,
    /// Full syncs skip documents whose `_timestamp` the index already has (incremental
    /// syncs always do). Off by default, as in the Python service.
    pub skip_unchanged: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            batch_max_docs: 1000,
            batch_max_bytes: 5 * 1024 * 1024,
            batch_linger: Duration::from_secs(1),
            max_in_flight: 4,
            queue_max_bytes: 16 * 1024 * 1024,
            item_max_retries: 5,
            item_retry_budget: DEFAULT_ITEM_RETRY_BUDGET,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            dlq_max_entries: 1_000_000,
            dlq_max_document_bytes: crate::engine::dlq::DEFAULT_MAX_DOCUMENT_BYTES,
            stats_interval: Duration::from_secs(10),
            check_interval: Duration::from_secs(5),
            idle_job_timeout: Duration::from_secs(300),
            heartbeat: Duration::from_secs(300),
            job_cleanup_interval: Duration::from_secs(300),
            exclude_fields: Vec::new(),
            hash_fields: Vec::new(),
            skip_unchanged: false,
        }
    }
}

/// Settings of the sink's circuit breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// How many recent bulk requests the failure rate is computed over.
    pub window: usize,
    /// Failure rate (0..1) at which the breaker opens.
    pub failure_rate: f64,
    /// Calls needed in the window before the rate counts.
    pub min_calls: usize,
    pub consecutive_failures: u32,
    pub open_for: Duration,
    pub half_open_probes: u32,
    /// A job whose breaker stays open longer than this ends in error.
    pub max_open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window: 20,
            failure_rate: 0.5,
            min_calls: 5,
            consecutive_failures: 5,
            open_for: Duration::from_secs(5),
            half_open_probes: 2,
            max_open: Duration::from_secs(300),
        }
    }
}
