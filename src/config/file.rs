//! The configuration file's format: serde structs mirroring the TOML, one per section, every
//! field optional and documented. Unknown fields are errors, so a typo is reported with its
//! name instead of silently ignored. Values are checked for syntax here (durations, sizes,
//! URLs, fingerprints, secret references); ranges, relations between fields and secret
//! resolution happen in `resolve.rs`.
//!
//! ```toml
//! default_profile = "prod"
//!
//! [ui]
//! refresh_interval = "2s"
//!
//! [profiles.prod]
//! read_only = true
//!
//! [profiles.prod.elasticsearch]
//! nodes = ["https://es1:9200", "https://es2:9200"]
//! api_key = "env:ES_API_KEY"
//! request_timeout = "30s"
//!
//! [profiles.prod.elasticsearch.tls]
//! ca_file = "/etc/ssl/es-ca.pem"
//!
//! [profiles.prod.kibana]
//! url = "https://kibana:5601"
//! space = "ops"
//! ```

use super::units::{ByteSize, DurationValue};
use super::values::{Fingerprint, HttpUrl, SecretRef};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when neither `--profile` nor `SYNCDECK_PROFILE` names one. May be
    /// left out when the file has a single profile.
    pub default_profile: Option<String>,
    /// Console settings, shared by all profiles.
    #[serde(default)]
    pub ui: UiFile,
    /// Named profiles (contexts): `[profiles.NAME]`.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
}

/// `[ui]`: the console.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFile {
    /// How often views poll the backend (default `"2s"`).
    pub refresh_interval: Option<DurationValue>,
    /// Colour theme name: a built-in one or `themes/NAME.toml` beside this file (default
    /// `"default"`). Letters, digits, `-` and `_`.
    pub theme: Option<String>,
    /// Capture the mouse (clicks and scrolling) in the console (default `false`).
    pub mouse: Option<bool>,
}

/// `[profiles.NAME]`: one cluster (or the embedded store) and how to work with it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Refuse every write to the cluster (default `false`); `--read-only` forces it on.
    pub read_only: Option<bool>,
    /// The Elasticsearch cluster. Without it the profile uses the embedded store.
    pub elasticsearch: Option<ElasticsearchFile>,
    /// Kibana, for the features only its API offers (optional).
    pub kibana: Option<KibanaFile>,
    /// The embedded sync engine.
    pub engine: Option<EngineFile>,
    /// The circuit breaker in front of bulk requests.
    pub breaker: Option<BreakerFile>,
}

/// `[profiles.NAME.elasticsearch]`.
///
/// Authentication: at most one of `api_key`, `username` + `password`, `bearer_token`. Secret
/// fields take a literal (refused if the file is readable by group or others), `env:NAME` or
/// `file:PATH` (relative to this file's directory; trailing newline removed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchFile {
    /// Node URLs, `http` or `https`, without credentials. Required unless `--es-url` or
    /// `SYNCDECK_ES_URL` gives them.
    pub nodes: Option<Vec<HttpUrl>>,
    /// Encoded API key (the base64 `id:key` Elasticsearch returns as `encoded`).
    pub api_key: Option<SecretRef>,
    /// Basic-auth user; needs `password`. May also be `env:NAME` or `file:PATH`.
    pub username: Option<SecretRef>,
    /// Basic-auth password; needs `username`.
    pub password: Option<SecretRef>,
    /// Bearer token (e.g. from a service account).
    pub bearer_token: Option<SecretRef>,
    /// Timeout of one request (default `"30s"`).
    pub request_timeout: Option<DurationValue>,
    /// Retries of a failed request on another node (default 3; 0 disables).
    pub max_retries: Option<u32>,
    /// Retry requests that timed out too (default `false`: they may have been applied).
    pub retry_on_timeout: Option<bool>,
    /// Gzip request bodies and accept gzipped answers (default `false`).
    pub gzip: Option<bool>,
    /// Major version of the REST API compatibility headers: 8 or 9 (default 8).
    pub compatible_with: Option<u8>,
    /// First backoff of a dead node (default `"1s"`), doubled per failure…
    pub dead_backoff_base: Option<DurationValue>,
    /// …up to this (default `"30s"`).
    pub dead_backoff_max: Option<DurationValue>,
    /// The largest answer read from a node (default `"256MB"`); a larger one fails the
    /// request with a clear error instead of filling memory.
    pub max_response_bytes: Option<ByteSize>,
    /// TLS settings.
    pub tls: Option<TlsFile>,
    /// Node discovery.
    pub sniff: Option<SniffFile>,
}

/// `[…tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM file of CA certificates to trust besides the system roots (relative to this file).
    pub ca_file: Option<PathBuf>,
    /// Verify server certificates (default `true`; turn off only for throwaway clusters).
    pub verify: Option<bool>,
    /// SHA-256 fingerprint the server certificate must match: 64 hex digits, colons optional.
    pub fingerprint: Option<Fingerprint>,
}

/// `[profiles.NAME.elasticsearch.sniff]`: discover nodes from the cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniffFile {
    /// Sniff once at start-up (default `false`).
    pub on_start: Option<bool>,
    /// Sniff when a node fails (default `false`).
    pub on_node_failure: Option<bool>,
    /// Sniff periodically at this interval (default: never).
    pub interval: Option<DurationValue>,
}

/// `[profiles.NAME.kibana]`. Credentials default to the Elasticsearch ones, TLS settings
/// too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KibanaFile {
    /// Kibana's base URL. Required unless `--kibana-url` or `SYNCDECK_KIBANA_URL` gives it.
    pub url: Option<HttpUrl>,
    /// Space id (default: the default space). Lowercase letters, digits, `-` and `_`.
    pub space: Option<String>,
    /// Encoded API key.
    pub api_key: Option<SecretRef>,
    /// Basic-auth user; needs `password`.
    pub username: Option<SecretRef>,
    /// Basic-auth password; needs `username`.
    pub password: Option<SecretRef>,
    /// Bearer token.
    pub bearer_token: Option<SecretRef>,
    /// Timeout of one request (default `"30s"`).
    pub request_timeout: Option<DurationValue>,
    /// TLS settings (default: those of Elasticsearch).
    pub tls: Option<TlsFile>,
}

/// `[profiles.NAME.engine]`: the embedded sync engine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFile {
    /// Most documents per bulk request (default 1000).
    pub batch_max_docs: Option<usize>,
    /// Most bytes per bulk request, `"5MB"` or a number of bytes (default 5MB, at most 100MB).
    pub batch_max_bytes: Option<ByteSize>,
    /// How long a partial batch waits for more documents (default `"1s"`; `"0s"` sends at once).
    pub batch_linger: Option<DurationValue>,
    /// Bulk requests in flight at once (default 4).
    pub max_in_flight: Option<usize>,
    /// Bound of the queue between extractor and sink, in bytes (default 16MB).
    pub queue_max_bytes: Option<ByteSize>,
    /// Retries of a document that failed with a retryable error (default 5; 0 disables).
    pub item_max_retries: Option<u32>,
    /// How long a document refused with 429 (the cluster is overloaded) keeps being retried
    /// before it is dead-lettered (default `"5m"`).
    pub item_retry_budget: Option<DurationValue>,
    /// First retry backoff (default `"200ms"`), doubled per attempt…
    pub retry_base: Option<DurationValue>,
    /// …up to this (default `"10s"`).
    pub retry_max: Option<DurationValue>,
    /// Most entries kept in the dead-letter queue (default 1000000).
    pub dlq_max_entries: Option<u64>,
    /// Largest document a dead letter stores whole (default `"1MiB"`); a larger one is stored
    /// as its size and a 1 KB preview.
    pub dlq_max_document_bytes: Option<ByteSize>,
    /// How often a running job reports its stats (default `"10s"`).
    pub stats_interval: Option<DurationValue>,
    /// How often the runner checks in and looks for cancellation (default `"5s"`).
    pub check_interval: Option<DurationValue>,
    /// A job with no progress for this long is failed (default `"5m"`).
    pub idle_job_timeout: Option<DurationValue>,
    /// How often `serve` checks in each connector it serves (default `"5m"`, as Elastic's
    /// connectors service).
    pub heartbeat: Option<DurationValue>,
    /// Time between two cleanups of abandoned jobs by `serve` (default `"5m"`).
    pub job_cleanup_interval: Option<DurationValue>,
    /// Document fields never sent to the index.
    pub exclude_fields: Option<Vec<String>>,
    /// Document fields replaced by their SHA-256 before indexing.
    pub hash_fields: Option<Vec<String>>,
    /// Full syncs skip documents whose `_timestamp` is unchanged (default false). Faster, but a
    /// mapping or ingest-pipeline change then never reaches the skipped documents.
    pub skip_unchanged: Option<bool>,
}

/// `[profiles.NAME.breaker]`: the circuit breaker in front of bulk requests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerFile {
    /// Recent bulk requests the failure rate is computed over (default 20).
    pub window: Option<usize>,
    /// Failure rate, greater than 0 and at most 1, that opens the breaker (default 0.5).
    pub failure_rate: Option<f64>,
    /// Requests needed in the window before the rate counts (default 5, at most `window`).
    pub min_calls: Option<usize>,
    /// Consecutive failures that open the breaker whatever the rate (default 5).
    pub consecutive_failures: Option<u32>,
    /// How long the breaker stays open before probing (default `"5s"`).
    pub open_for: Option<DurationValue>,
    /// Probe requests allowed while half-open (default 2).
    pub half_open_probes: Option<u32>,
    /// A job whose breaker stays open longer than this fails (default `"5m"`).
    pub max_open: Option<DurationValue>,
}
