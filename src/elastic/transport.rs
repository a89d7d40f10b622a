//! `Transport`: every HTTP request to Elasticsearch goes through here. It owns the node pool
//! (round-robin, dead-node backoff, resurrection; see [`super::pool`]), retries, 429 backoff,
//! sniffing, the vendored media types, authentication, gzip and the `X-Elastic-Product` check.
//! It knows nothing of the APIs above it: those live in the sibling modules.
//!
//! Retry policy (like elastic-transport-python):
//! - connection refused or dropped, and 502/503/504: the node is marked dead and the request
//!   goes to another node, up to `max_retries` more times;
//! - timeouts: the same when `retry_on_timeout`, else [`Error::Timeout`] at once;
//! - 429: retried after an exponential backoff with jitter, the node stays alive;
//! - any other error status (400, 401, 403, 404, 409, 500, ...): returned at once;
//! - a TLS failure (bad certificate, fingerprint mismatch): [`Error::Tls`] at once;
//! - an answer cut short (the connection closed before the whole body arrived): a broken
//!   connection like any other, since a cut can also land before the status line and the two
//!   cannot be told apart reliably; the node is marked dead and the request retried. When
//!   retries run out after a cut body, the error is [`Error::Decode`] ("cut short");
//! - a complete answer that is not what was expected (not JSON, wrong shape): on an
//!   idempotent read (GET, HEAD, `_search`, `_count`, PIT open and close, `_mget`; see
//!   [`is_idempotent_read`]) it is retried after a short backoff like any other transient
//!   fault, since a proxy or a dying node can garble one answer and the next one be fine;
//!   on a write it is [`Error::Decode`] at once: the request has taken effect, and sending
//!   it again is not ours to decide;
//! - an answer larger than `max_response_bytes`: [`Error::TooLarge`] at once, read no further;
//! - with every node dead, a retry waits for the one due soonest (the pool's dead-node
//!   backoff, at most `dead_backoff_max`) instead of hammering it; repeated warnings about
//!   the same node are rate-limited in the log ([`WarnGate`]).
//!
//! Retrying after a broken connection can repeat a request the node already carried out, as
//! the official clients do. Most writes tolerate it (bulk items carry ids, document updates are
//! seq_no-guarded, a second `_claim` gets a 409 from the stand-in); a repeated
//! `POST _connector/_sync_job` can create a second job.
//!
//! Sniffing never runs in the background: it happens before a request when due (on start,
//! on interval) and after a node failure, one sniff at a time. Nothing here logs headers or
//! bodies.

use super::error::{Error, Result};
use super::pool::{NodePool, NodeState, display_url};
use crate::config::{Auth, EsSettings, SniffSettings};
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use url::Url;

pub use reqwest::Method;

/// The product header every Elasticsearch answer carries.
const PRODUCT_HEADER: &str = "x-elastic-product";
const PRODUCT: &str = "Elasticsearch";
const USER_AGENT: &str = concat!("syncdeck/", env!("CARGO_PKG_VERSION"));
/// Default 429 backoff: first delay and cap.
const THROTTLE_MIN: Duration = Duration::from_millis(250);
const THROTTLE_MAX: Duration = Duration::from_secs(10);

/// A request body, cheap to clone so a retry on another node re-sends the same bytes.
#[derive(Clone)]
pub struct Body {
    bytes: Bytes,
    kind: BodyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    NdJson,
}

impl Body {
    /// Serialises a value as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> std::result::Result<Self, serde_json::Error> {
        Ok(Self {
            bytes: Bytes::from(serde_json::to_vec(value)?),
            kind: BodyKind::Json,
        })
    }

    /// NDJSON (for `_bulk`), already serialised.
    pub fn ndjson(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            kind: BodyKind::NdJson,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn kind(&self) -> BodyKind {
        self.kind
    }
}

// Bodies hold documents and configuration values: never print them.
impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The node that answered.
    pub node: String,
    /// The request path, for error messages.
    pub path: String,
}

impl Response {
    /// Parses the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            url_path: self.path.clone(),
            reason: format!("unexpected JSON: {e}"),
        })
    }
}

/// Builds a URL path from raw segments, percent-encoding each one, so ids with `/`, spaces
/// or `?` stay one segment: `path(&["_connector", id, "_check_in"])`.
pub fn path(segments: &[&str]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// What a path segment must escape: everything but unreserved characters and `,`/`*`
/// (index lists and patterns).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b',')
    .remove(b'*');

/// Builds a [`Transport`]; see [`Transport::builder`].
pub struct TransportBuilder<'a> {
    settings: &'a EsSettings,
    client: Option<reqwest::Client>,
    throttle_min: Duration,
    throttle_max: Duration,
}

impl TransportBuilder<'_> {
    /// Uses this HTTP client instead of building one (tests, custom TLS). The per-request
    /// timeout and headers are still applied by the transport.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The backoff between retries of a 429: first delay and cap (jitter is added).
    pub fn throttle_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.throttle_min = min;
        self.throttle_max = max.max(min);
        self
    }

    pub fn build(self) -> Result<Transport> {
        let s = self.settings;
        let (nodes, url_auth) = normalise_nodes(&s.nodes)?;
        let auth = match (&s.auth, url_auth) {
            (Auth::None, Some(from_url)) => from_url,
            (auth, _) => auth.clone(),
        };
        let (json_type, ndjson_type) = media_types(s.compatible_with)?;
        let headers = default_headers(&auth, &json_type)?;
        let client = match self.client {
            Some(client) => client,
            None => build_client(s)?,
        };
        Ok(Transport {
            client,
            pool: Mutex::new(NodePool::new(
                nodes,
                s.dead_backoff_base,
                s.dead_backoff_max,
            )),
            headers,
            json_type,
            ndjson_type,
            request_timeout: s.request_timeout,
            max_response_bytes: s.max_response_bytes,
            dead_backoff_max: s.dead_backoff_max,
            warnings: WarnGate::new(WARN_EVERY),
            max_retries: s.max_retries,
            retry_on_timeout: s.retry_on_timeout,
            gzip: s.gzip,
            sniff: s.sniff.clone(),
            throttle: ExponentialBuilder::default()
                .with_min_delay(self.throttle_min)
                .with_max_delay(self.throttle_max)
                .with_jitter()
                .without_max_times(),
            sniff_state: tokio::sync::Mutex::new(SniffState {
                started: false,
                last: Instant::now(),
            }),
        })
    }
}

#[derive(Debug)]
struct SniffState {
    /// Whether the sniff-on-start moment has passed.
    started: bool,
    /// The last sniff, or the transport's creation: the interval counts from there.
    last: Instant,
}

/// The HTTP transport to an Elasticsearch cluster. Share it behind an `Arc`.
pub struct Transport {
    client: reqwest::Client,
    pool: Mutex<NodePool>,
    /// Accept, User-Agent and Authorization (marked sensitive), built once.
    headers: HeaderMap,
    json_type: HeaderValue,
    ndjson_type: HeaderValue,
    request_timeout: Duration,
    /// The largest answer body read (after gzip decoding).
    max_response_bytes: usize,
    /// The longest a retry waits for a dead node.
    dead_backoff_max: Duration,
    /// Keeps a dead cluster from flooding the log with one warning per attempt.
    warnings: WarnGate,
    max_retries: u32,
    retry_on_timeout: bool,
    gzip: bool,
    sniff: SniffSettings,
    throttle: ExponentialBuilder,
    /// Held while sniffing, so concurrent requests never sniff twice at once.
    sniff_state: tokio::sync::Mutex<SniffState>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.pool_snapshot().into_iter().map(|n| n.url).collect();
        f.debug_struct("Transport")
            .field("nodes", &nodes)
            .finish_non_exhaustive()
    }
}

/// How one attempt on one node ended.
enum Attempt {
    /// 2xx with the product header.
    Done(Response),
    /// The node answered; the answer is final (an error status, a decode failure).
    Final(Error),
    /// The node failed (connection, 502/503/504, timeout when retried, a body cut short):
    /// mark it dead. `cut` holds the decode error of a body cut short, returned when no retry
    /// is left.
    NodeFailed { reason: String, cut: Option<Error> },
    /// A timeout that is not retried.
    TimedOut,
    /// 429: back off and retry, the node stays alive.
    Throttled(Error),
}

impl Transport {
    pub fn new(settings: &EsSettings) -> Result<Self> {
        Self::builder(settings).build()
    }

    pub fn builder(settings: &EsSettings) -> TransportBuilder<'_> {
        TransportBuilder {
            settings,
            client: None,
            throttle_min: THROTTLE_MIN,
            throttle_max: THROTTLE_MAX,
        }
    }

    /// The pool as it is now, for the console.
    pub fn pool_snapshot(&self) -> Vec<NodeState> {
        self.pool().snapshot(Instant::now())
    }

    /// The current node URLs.
    pub fn node_urls(&self) -> Vec<String> {
        self.pool_snapshot().into_iter().map(|n| n.url).collect()
    }

    fn pool(&self) -> MutexGuard<'_, NodePool> {
        // A panic elsewhere while holding the lock leaves the pool usable: every update is a
        // single assignment.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Encodes a JSON body, naming the path on failure.
    pub fn encode<T: Serialize + ?Sized>(path: &str, value: &T) -> Result<Body> {
        Body::json(value).map_err(|e| Error::Encode {
            url_path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Sends a request and parses the JSON answer into `T`. On an idempotent read (see
    /// [`is_idempotent_read`]) an answer that does not parse is retried like a transient fault.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<T> {
        self.send_with(method, path, query, body, |response| response.json())
            .await
    }

    /// Sends a request with the retry policy of the module docs. `path` is already encoded
    /// (see [`path`]); `query` values are encoded here. The body is not looked at: callers
    /// of idempotent reads that parse it themselves use [`Transport::send_with`], so a
    /// garbled answer is retried.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<Response> {
        self.send_with(method, path, query, body, Ok).await
    }

    /// Sends a request and reads its answer with `read`. When the request is an idempotent
    /// read and `read` fails with [`Error::Decode`] (an answer cut short, not JSON, the wrong
    /// shape), the request is sent again after a backoff, within `max_retries`; otherwise
    /// `read`'s error is returned as is.
    pub async fn send_with<T>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
        mut read: impl FnMut(Response) -> Result<T>,
    ) -> Result<T> {
        self.sniff_if_due().await;
        let body = match body {
            Some(body) if self.gzip => Some(gzip_body(path, body)?),
            other => other.map(|b| (b, false)),
        };
        let idempotent = is_idempotent_read(&method, path);
        let query = encode_query(query);
        let mut throttle: Option<ExponentialBackoff> = None;
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            if attempts > 1 {
                self.wait_for_a_live_node().await;
            }
            let node = self.pool().select(Instant::now()).ok_or(Error::NoNodes)?;
            let attempt = self
                .attempt(&node, &method, path, &query, body.as_ref())
                .await;
            let retries_left = attempts <= self.max_retries;
            match attempt {
                Attempt::Done(response) => {
                    self.pool().mark_live(&node);
                    let error = match read(response) {
                        Ok(value) => return Ok(value),
                        Err(e) => e,
                    };
                    if !(idempotent && retries_left && matches!(error, Error::Decode { .. })) {
                        return Err(error);
                    }
                    let delay = throttle
                        .get_or_insert_with(|| self.throttle.build())
                        .next()
                        .unwrap_or(self.request_timeout);
                    let node = display_url(&node);
                    if let Some(suppressed) = self.warnings.pass(&format!("decode {node}")) {
                        tracing::warn!(node = %node, path, error = %error, ?delay, suppressed, "unreadable answer to a read; retrying");
                    }
                    tokio::time::sleep(delay).await;
                }
                Attempt::Final(error) => {
                    self.pool().mark_live(&node);
                    return Err(error);
                }
                Attempt::TimedOut => {
                    return Err(Error::Timeout {
                        node: display_url(&node),
                        after: self.request_timeout,
                    });
                }
                Attempt::Throttled(error) => {
                    if !retries_left {
                        return Err(error);
                    }
                    let delay = throttle
                        .get_or_insert_with(|| self.throttle.build())
                        .next()
                        .unwrap_or(self.request_timeout);
                    tracing::debug!(node = %display_url(&node), path, ?delay, "429 from Elasticsearch; backing off");
                    tokio::time::sleep(delay).await;
                }
                Attempt::NodeFailed { reason, cut } => {
                    let dead_for = self.pool().mark_dead(&node, Instant::now());
                    let shown = display_url(&node);
                    if let Some(suppressed) = self.warnings.pass(&format!("failed {shown}")) {
                        tracing::warn!(node = %shown, path, %reason, ?dead_for, suppressed, "Elasticsearch node failed");
                    }
                    if !retries_left {
                        return Err(cut.unwrap_or(Error::Unreachable {
                            attempts,
                            last: reason,
                        }));
                    }
                    if self.sniff.on_node_failure {
                        self.sniff_once().await;
                    }
                }
            }
        }
    }

    /// Before a retry: when every node is dead, sleeps until the one due soonest may be tried
    /// again (at most `dead_backoff_max`), so a dead cluster is not hammered in a tight loop.
    async fn wait_for_a_live_node(&self) {
        let wait = self.pool().wait_for_live(Instant::now());
        if let Some(wait) = wait {
            tokio::time::sleep(wait.min(self.dead_backoff_max)).await;
        }
    }

    /// One request to one node.
    async fn attempt(
        &self,
        node: &Url,
        method: &Method,
        path: &str,
        query: &str,
        body: Option<&(Body, bool)>,
    ) -> Attempt {
        let url = match join_url(node, path, query) {
            Ok(url) => url,
            Err(e) => return Attempt::Final(e),
        };
        let mut request = self
            .client
            .request(method.clone(), url)
            .headers(self.headers.clone())
            .timeout(self.request_timeout);
        if let Some((body, gzipped)) = body {
            let content_type = match body.kind {
                BodyKind::Json => self.json_type.clone(),
                BodyKind::NdJson => self.ndjson_type.clone(),
            };
            request = request
                .header(header::CONTENT_TYPE, content_type)
                .body(body.bytes.clone());
            if *gzipped {
                request =
                    request.header(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
        }
        let started = Instant::now();
        let node_name = display_url(node);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return self.send_failure(&node_name, path, &e),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match read_limited(response, self.max_response_bytes).await {
            Ok(bytes) => bytes,
            Err(ReadFailure::TooLarge) => {
                return Attempt::Final(Error::TooLarge {
                    url_path: path.to_string(),
                    limit: self.max_response_bytes,
                });
            }
            Err(ReadFailure::Http(e)) if e.is_timeout() => {
                return self.timeout_outcome(&node_name, path);
            }
            Err(ReadFailure::Http(e)) => {
                let reason = format!(
                    "the answer from '{node_name}' was cut short ({})",
                    describe(&e)
                );
                let cut = Error::Decode {
                    url_path: path.to_string(),
                    reason: reason.clone(),
                };
                return Attempt::NodeFailed {
                    reason,
                    cut: Some(cut),
                };
            }
        };
        tracing::debug!(%method, path, status, node = %node_name, latency_ms = started.elapsed().as_millis() as u64, "elasticsearch request");
        classify(status, headers, bytes, node_name, path)
    }

    fn send_failure(&self, node: &str, path: &str, e: &reqwest::Error) -> Attempt {
        if e.is_timeout() {
            return self.timeout_outcome(node, path);
        }
        // A certificate problem is the same on every attempt: say so at once.
        if let Some(reason) = crate::tls::tls_failure(e) {
            return Attempt::Final(Error::Tls(format!("'{node}': {reason}")));
        }
        Attempt::NodeFailed {
            reason: format!("'{node}': {}", describe(e)),
            cut: None,
        }
    }

    fn timeout_outcome(&self, node: &str, path: &str) -> Attempt {
        if let Some(suppressed) = self.warnings.pass(&format!("timeout {node}")) {
            tracing::warn!(node, path, timeout = ?self.request_timeout, suppressed, "Elasticsearch request timed out");
        }
        if self.retry_on_timeout {
            Attempt::NodeFailed {
                reason: format!("'{node}': timed out after {:?}", self.request_timeout),
                cut: None,
            }
        } else {
            Attempt::TimedOut
        }
    }

    /// Sniffs before a request when due: once on start, then every `interval`.
    async fn sniff_if_due(&self) {
        if !self.sniff.on_start && self.sniff.interval.is_none() {
            return;
        }
        let Ok(mut state) = self.sniff_state.try_lock() else {
            return; // another request is sniffing right now
        };
        let now = Instant::now();
        let on_start = self.sniff.on_start && !state.started;
        let on_interval = self
            .sniff
            .interval
            .is_some_and(|every| now.duration_since(state.last) >= every);
        state.started = true;
        if on_start || on_interval {
            self.sniff_locked(&mut state).await;
        }
    }

    /// Sniffs now unless another sniff is running.
    async fn sniff_once(&self) {
        if let Ok(mut state) = self.sniff_state.try_lock() {
            self.sniff_locked(&mut state).await;
        }
    }

    /// Looks again at nodes the pool holds as dead, for whoever shows the pool (the
    /// console's refresh): sniffs first when sniffing is on (a node that left the cluster
    /// and came back re-enters the pool only by a sniff), then asks each dead node `GET /`
    /// and marks those that answer alive. Without it a node that came back stays dead until
    /// its backoff ends or a sniff runs. Returns how many nodes were revived.
    pub async fn recheck_dead_nodes(&self) -> usize {
        if self.sniffs()
            && let Err(e) = self.sniff().await
        {
            tracing::debug!(error = %e, "re-sniff for the pool view failed");
        }
        // Dead nodes, and nodes alive only because their backoff ran out (lazy
        // resurrection: not yet asked).
        let suspects: Vec<(Url, bool)> = self
            .pool()
            .snapshot(Instant::now())
            .into_iter()
            .filter(|n| !n.alive || n.failures > 0)
            .filter_map(|n| Url::parse(&n.url).ok().map(|u| (u, n.alive)))
            .collect();
        let mut revived = 0;
        for (node, counted_alive) in suspects {
            match self.attempt(&node, &Method::GET, "/", "", None).await {
                Attempt::Done(_) => {
                    self.pool().mark_live(&node);
                    revived += 1;
                }
                // Still down: a resurrected node is dead again (a dead one keeps its backoff).
                Attempt::NodeFailed { .. } | Attempt::TimedOut if counted_alive => {
                    self.pool().mark_dead(&node, Instant::now());
                }
                _ => {}
            }
        }
        revived
    }

    /// Whether a node answers `GET /` at all within `timeout` (any HTTP answer, with this
    /// transport's credentials), for whoever shows nodes that left the pool. Touches no node
    /// state and logs nothing: the node is outside the pool, so its silence is no warning
    /// about the cluster (`timeout_outcome` would write one per node into the Logs view).
    ///
    /// A TLS failure is not an answer: the handshake never proved that whatever listens
    /// there is the node the pool knew (a certificate that no longer verifies, or another
    /// service on the port), and the caller drops a node that answers from its view, which
    /// must not happen on the word of a server this transport refuses to talk to.
    pub async fn answers(&self, node: &str, timeout: Duration) -> bool {
        let Ok(node) = Url::parse(node) else {
            return false;
        };
        let Ok(url) = join_url(&node, "/", "") else {
            return false;
        };
        let request = self
            .client
            .get(url)
            .headers(self.headers.clone())
            .timeout(timeout);
        // Any status is an answer; a timeout, a refused or cut connection, or a TLS failure
        // is not.
        request.send().await.is_ok()
    }

    /// Whether this transport sniffs at all: then the cluster's `_nodes`, not a node's own
    /// answer, says which nodes belong to the pool.
    pub fn sniffs(&self) -> bool {
        self.sniff.on_start || self.sniff.on_node_failure || self.sniff.interval.is_some()
    }

    /// Sniffs now, waiting for a running sniff to end first. Returns how many nodes the pool
    /// holds afterwards; on failure the old pool is kept and the error returned.
    pub async fn sniff(&self) -> Result<usize> {
        let mut state = self.sniff_state.lock().await;
        state.started = true;
        state.last = Instant::now();
        let urls = self.discover().await?;
        let count = urls.len();
        self.pool().replace(urls);
        Ok(count)
    }

    async fn sniff_locked(&self, state: &mut SniffState) {
        state.last = Instant::now();
        match self.discover().await {
            Ok(urls) => {
                tracing::debug!(nodes = urls.len(), "sniffed Elasticsearch nodes");
                self.pool().replace(urls);
            }
            Err(e) => tracing::warn!(error = %e, "sniffing failed; keeping the current nodes"),
        }
    }

    /// Asks each node in turn (live first) for the cluster's HTTP addresses.
    async fn discover(&self) -> Result<Vec<Url>> {
        let order = self.pool().sniff_order(Instant::now());
        let mut last = Error::NoNodes;
        let sniff_path = path(&["_nodes", "_all", "http"]);
        for node in order {
            let response = match self
                .attempt(&node, &Method::GET, &sniff_path, "", None)
                .await
            {
                Attempt::Done(response) => response,
                Attempt::Final(e) | Attempt::Throttled(e) => {
                    last = e;
                    continue;
                }
                Attempt::NodeFailed { reason, cut } => {
                    last = cut.unwrap_or(Error::Unreachable {
                        attempts: 1,
                        last: reason,
                    });
                    continue;
                }
                Attempt::TimedOut => {
                    last = Error::Timeout {
                        node: display_url(&node),
                        after: self.request_timeout,
                    };
                    continue;
                }
            };
            let info: super::cluster::NodesInfo = response.json()?;
            let urls = published_urls(&info, node.scheme());
            if urls.is_empty() {
                return Err(Error::Decode {
                    url_path: sniff_path,
                    reason: "no node publishes an HTTP address".to_string(),
                });
            }
            return Ok(urls);
        }
        Err(last)
    }
}

/// Whether a request only reads, so sending it twice does no harm: GET and HEAD, searches,
/// counts, multi-gets, and opening or closing a point in time (an extra PIT expires on its
/// own; closing one twice answers 404, which the caller accepts). Everything else is a write
/// and keeps the stricter rules of the module docs.
pub fn is_idempotent_read(method: &Method, path: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return true;
    }
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if *method == Method::POST {
        return matches!(
            last,
            "_search" | "_count" | "_pit" | "_mget" | "_field_caps"
        );
    }
    *method == Method::DELETE && path.trim_end_matches('/') == "/_pit"
}

enum ReadFailure {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a body chunk by chunk and stops as soon as it passes `limit` bytes (decoded), so
/// a hostile or broken node cannot make us buffer gigabytes. A `Content-Length` over the
/// limit is refused before reading anything.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Bytes, ReadFailure> {
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |n| n > limit) {
        return Err(ReadFailure::TooLarge);
    }
    let declared = declared as usize;
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadFailure::Http)? {
        let held = first.as_ref().map_or(buf.len(), Bytes::len);
        if held.saturating_add(chunk.len()) > limit {
            return Err(ReadFailure::TooLarge);
        }
        // The common single-chunk answer is kept without a copy.
        if let Some(only) = first.take() {
            buf.reserve(declared.max(only.len() + chunk.len()));
            buf.extend_from_slice(&only);
            buf.extend_from_slice(&chunk);
        } else if buf.is_empty() {
            first = Some(chunk);
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// How often a repeated warning (same kind, same node) is written: once, then at most once
/// per this period, with the number suppressed in between.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate-limits repeated warnings by key: a cluster that is down produces one warning per
/// attempt, and with a large `max_retries` that flooded the log with hundreds of megabytes.
/// The first warning of a key passes; later ones pass at most once per `every`, carrying how
/// many were suppressed since.
pub struct WarnGate {
    every: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

/// More distinct keys than this and the gate forgets them all (nodes come and go by sniffing).
const WARN_KEYS: usize = 256;

impl WarnGate {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(suppressed)` when a warning for `key` should be written now, with the number of
    /// warnings for it held back since the last one; `None` to hold this one back.
    pub fn pass(&self, key: &str) -> Option<u64> {
        self.pass_at(key, Instant::now())
    }

    fn pass_at(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > WARN_KEYS && !seen.contains_key(key) {
            seen.clear();
        }
        match seen.get_mut(key) {
            None => {
                seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
            Some((last, held)) if now.saturating_duration_since(*last) >= self.every => {
                let suppressed = *held;
                *last = now;
                *held = 0;
                Some(suppressed)
            }
            Some((_, held)) => {
                *held = held.saturating_add(1);
                None
            }
        }
    }
}

/// Turns a status and body into the outcome of an attempt.
fn classify(status: u16, headers: HeaderMap, body: Bytes, node: String, path: &str) -> Attempt {
    match status {
        200..=299 => match check_product(&headers, &node) {
            Ok(()) => Attempt::Done(Response {
                status,
                headers,
                body,
                node,
                path: path.to_string(),
            }),
            Err(e) => Attempt::Final(e),
        },
        429 => Attempt::Throttled(Error::from_response(status, &body)),
        502..=504 => Attempt::NodeFailed {
            reason: format!("'{node}': {}", super::error::describe_answer(status, &body)),
            cut: None,
        },
        _ => Attempt::Final(Error::from_response(status, &body)),
    }
}

fn check_product(headers: &HeaderMap, node: &str) -> Result<()> {
    match headers
        .get(PRODUCT_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)"))
    {
        Some(PRODUCT) => Ok(()),
        Some(other) => Err(Error::Product {
            node: node.to_string(),
            found: format!("'{other}'"),
        }),
        None => Err(Error::Product {
            node: node.to_string(),
            found: "missing".to_string(),
        }),
    }
}

/// The HTTP addresses of the sniffed nodes, skipping dedicated masters (they do not serve
/// requests), with the scheme of the seed URLs.
fn published_urls(info: &super::cluster::NodesInfo, scheme: &str) -> Vec<Url> {
    let mut urls = Vec::new();
    for node in info.nodes.values() {
        if node.roles.as_deref() == Some(&["master".to_string()][..]) {
            continue;
        }
        let Some(address) = node
            .http
            .as_ref()
            .and_then(|h| h.publish_address.as_deref())
        else {
            continue;
        };
        match publish_url(address, scheme) {
            Some(url) => urls.push(url),
            None => tracing::warn!(address, "ignoring an unreadable publish address"),
        }
    }
    urls
}

/// `host/ip:port` (a node with a host name) or `ip:port` → `scheme://host:port`.
pub fn publish_url(address: &str, scheme: &str) -> Option<Url> {
    let (host, port) = match address.split_once('/') {
        Some((fqdn, ip_port)) => {
            let (ip, port) = ip_port.rsplit_once(':')?;
            (if fqdn.is_empty() { ip } else { fqdn }, port)
        }
        None => address.rsplit_once(':')?,
    };
    let port: u16 = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Url::parse(&format!("{scheme}://{host}:{port}")).ok()
}

/// Checks the node URLs and takes credentials out of them (they would end up in logs and
/// errors); returns the credentials of the first URL that carried any.
fn normalise_nodes(nodes: &[Url]) -> Result<(Vec<Url>, Option<Auth>)> {
    if nodes.is_empty() {
        return Err(Error::NoNodes);
    }
    let mut out = Vec::with_capacity(nodes.len());
    let mut auth = None;
    for node in nodes {
        let mut url = node.clone();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            let mut shown = url.clone();
            let _ = shown.set_password(None);
            return Err(Error::InvalidUrl {
                url: shown.to_string(),
                reason: "expected http:// or https:// with a host".to_string(),
            });
        }
        if !url.username().is_empty() && auth.is_none() {
            let username = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or(""));
            auth = Some(Auth::Basic {
                username,
                password: crate::secret::Secret::new(password),
            });
        }
        // Only fails for URLs that cannot have credentials, which were rejected above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        out.push(url);
    }
    Ok((out, auth))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn default_headers(auth: &Auth, accept: &HeaderValue) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, accept.clone());
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    if let Some(value) = auth_header(auth)? {
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(headers)
}

fn auth_header(auth: &Auth) -> Result<Option<HeaderValue>> {
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::ApiKey(key) => format!("ApiKey {}", key.expose()),
        Auth::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose()),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        Error::Client(
            "the Elasticsearch credentials hold characters an HTTP header cannot carry".to_string(),
        )
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `Accept` (set on every request) and the two `Content-Type`s.
fn media_types(compatible_with: u8) -> Result<(HeaderValue, HeaderValue)> {
    if !(7..=9).contains(&compatible_with) {
        return Err(Error::Client(format!(
            "compatible_with '{compatible_with}' is not supported: use 8 or 9"
        )));
    }
    let json = HeaderValue::from_str(&format!(
        "application/vnd.elasticsearch+json; compatible-with={compatible_with}"
    ))
    .map_err(|e| Error::Client(e.to_string()))?;
    let ndjson = HeaderValue::from_str(&format!(
        "application/vnd.elasticsearch+x-ndjson; compatible-with={compatible_with}"
    ))
    .map_err(|e| Error::Client(e.to_string()))?;
    Ok((json, ndjson))
}

fn build_client(settings: &EsSettings) -> Result<reqwest::Client> {
    // `gzip` works both ways, like the official clients' `http_compress`: compressed bodies
    // out and `Accept-Encoding: gzip` in. Off by default: on a LAN, decompressing answers
    // costs more CPU than the bytes it saves (it was ~5% of a sync's CPU).
    let builder = reqwest::Client::builder()
        .gzip(settings.gzip)
        .connect_timeout(settings.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60));
    let builder =
        crate::tls::apply_tls(builder, &settings.tls).map_err(|e| Error::Tls(e.to_string()))?;
    builder.build().map_err(|e| Error::Client(describe(&e)))
}

/// Compresses a body once, before the first attempt.
fn gzip_body(path: &str, body: Body) -> Result<(Body, bool)> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    let compressed = encoder
        .write_all(&body.bytes)
        .and_then(|()| encoder.finish());
    match compressed {
        Ok(bytes) => Ok((
            Body {
                bytes: Bytes::from(bytes),
                kind: body.kind,
            },
            true,
        )),
        Err(e) => Err(Error::Encode {
            url_path: path.to_string(),
            reason: format!("gzip: {e}"),
        }),
    }
}

fn encode_query(query: &[(&str, String)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in query {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

fn join_url(node: &Url, path: &str, query: &str) -> Result<Url> {
    let mut text = node.as_str().trim_end_matches('/').to_string();
    if !path.starts_with('/') {
        text.push('/');
    }
    text.push_str(path);
    if !query.is_empty() {
        text.push('?');
        text.push_str(query);
    }
    Url::parse(&text).map_err(|e| Error::InvalidUrl {
        url: text.clone(),
        reason: e.to_string(),
    })
}

/// A reqwest error with its causes ("error sending request: connection refused"), which
/// the top-level message alone hides.
fn describe(e: &reqwest::Error) -> String {
    crate::text::error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_from_writes() {
        assert!(is_idempotent_read(&Method::GET, "/_connector/abc"));
        assert!(is_idempotent_read(&Method::HEAD, "/idx"));
        assert!(is_idempotent_read(&Method::POST, "/_search"));
        assert!(is_idempotent_read(&Method::POST, "/idx/_search"));
        assert!(is_idempotent_read(&Method::POST, "/idx/_count"));
        assert!(is_idempotent_read(&Method::POST, "/idx/_pit"));
        assert!(is_idempotent_read(&Method::DELETE, "/_pit"));
        assert!(!is_idempotent_read(&Method::POST, "/idx/_bulk"));
        assert!(!is_idempotent_read(&Method::POST, "/_connector/_sync_job"));
        assert!(!is_idempotent_read(&Method::PUT, "/_connector/x/_check_in"));
        assert!(!is_idempotent_read(&Method::DELETE, "/idx"));
        assert!(!is_idempotent_read(&Method::POST, "/idx/_delete_by_query"));
    }

    #[test]
    fn repeated_warnings_are_held_back_and_counted() {
        let gate = WarnGate::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(gate.pass_at("a", t0), Some(0));
        for i in 1..=1000u64 {
            assert_eq!(gate.pass_at("a", t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(gate.pass_at("b", t0), Some(0), "other keys are independent");
        assert_eq!(gate.pass_at("a", t0 + Duration::from_secs(11)), Some(1000));
        assert_eq!(gate.pass_at("a", t0 + Duration::from_secs(12)), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            path(&["_connector", "a b/c?d", "_check_in"]),
            "/_connector/a%20b%2Fc%3Fd/_check_in"
        );
        assert_eq!(path(&["idx-1,idx_2", "_count"]), "/idx-1,idx_2/_count");
        assert_eq!(path(&[]), "/");
    }

    #[test]
    fn publish_addresses_in_both_forms() {
        assert_eq!(
            publish_url("127.0.0.1:9201", "http").unwrap().as_str(),
            "http://127.0.0.1:9201/"
        );
        assert_eq!(
            publish_url("es-1.local/10.0.0.7:9200", "https")
                .unwrap()
                .as_str(),
            "https://es-1.local:9200/"
        );
        assert_eq!(
            publish_url("/10.0.0.7:9200", "http").unwrap().as_str(),
            "http://10.0.0.7:9200/"
        );
        assert_eq!(
            publish_url("[::1]:9200", "http").unwrap().as_str(),
            "http://[::1]:9200/"
        );
        assert!(publish_url("nonsense", "http").is_none());
        assert!(publish_url("host:notaport", "http").is_none());
    }

    #[test]
    fn credentials_leave_the_urls() {
        let url = Url::parse("http://elastic:s%40cret@127.0.0.1:9200/prefix").unwrap();
        let (nodes, auth) = normalise_nodes(&[url]).unwrap();
        assert_eq!(nodes[0].as_str(), "http://127.0.0.1:9200/prefix");
        let Some(Auth::Basic { username, password }) = auth else {
            panic!("no auth")
        };
        assert_eq!(username, "elastic");
        assert_eq!(password.expose(), "s@cret");
        assert!(matches!(normalise_nodes(&[]), Err(Error::NoNodes)));
        let bad = Url::parse("ftp://127.0.0.1").unwrap();
        assert!(matches!(
            normalise_nodes(&[bad]),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn auth_header_is_sensitive_and_well_formed() {
        let basic = Auth::Basic {
            username: "u".into(),
            password: crate::secret::Secret::new("p"),
        };
        let value = auth_header(&basic).unwrap().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic dTpw");
        let key = auth_header(&Auth::ApiKey(crate::secret::Secret::new("abc")))
            .unwrap()
            .unwrap();
        assert_eq!(key.to_str().unwrap(), "ApiKey abc");
        assert!(!format!("{value:?}").contains("dTpw"));
        let bad = Auth::Bearer(crate::secret::Secret::new("line\nbreak"));
        let err = auth_header(&bad).unwrap_err();
        assert!(!err.to_string().contains("line"));
    }

    #[test]
    fn media_types_follow_compatible_with() {
        let (json, ndjson) = media_types(9).unwrap();
        assert_eq!(
            json,
            "application/vnd.elasticsearch+json; compatible-with=9"
        );
        assert_eq!(
            ndjson,
            "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
        );
        assert!(media_types(3).is_err());
    }

    #[test]
    fn urls_join_with_prefix_and_query() {
        let node = Url::parse("http://127.0.0.1:9200/es/").unwrap();
        let url = join_url(
            &node,
            "/_bulk",
            &encode_query(&[("pipeline", "a b&c".into())]),
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9200/es/_bulk?pipeline=a+b%26c"
        );
    }
}
