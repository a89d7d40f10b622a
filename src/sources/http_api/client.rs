//! Sending the `http_api` source's requests: the rate limit (`requests_per_second`, governor
//! on tokio's clock), credentials, retries of transient answers (408, 429, 5xx but 501) and
//! broken connections with bounded exponential backoff (backon) or the server's `Retry-After`
//! (seconds or an HTTP date), one credential renewal after a 401, and reading a bounded JSON
//! body. Other answers end the sync with the status and the URL, secrets masked. What the
//! pages mean is not this module's business.

use super::auth::Auth;
use super::error::{HttpApiError, masked_url, secret_free, snippet, transport_reason};
use super::pagination::{with_param, without_param};
use crate::secret::Secret;
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};
use url::Url;

/// A server may ask to wait this long at most; longer waits are cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The default of `max_response_bytes`: one page's body (or a token answer) may not be
/// larger than this.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The default of `max_error_body_bytes`: how much of an error answer is read to say why;
/// the rest is never downloaded.
pub(crate) const DEFAULT_MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Redirects are followed this many times, within the API's origin only.
const MAX_REDIRECTS: usize = 5;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub max_retries: u32,
    pub first_delay: Duration,
}

/// What the client is built from.
pub(crate) struct ClientSettings {
    pub method: Method,
    pub headers: HeaderMap,
    /// JSON sent with every request (POST).
    pub body: Option<Bytes>,
    pub auth: Auth,
    /// 0 = unlimited.
    pub requests_per_second: u32,
    pub retry: RetryPolicy,
    /// `None` waits as long as the server does.
    pub timeout: Option<Duration>,
    /// Values of `secret_headers`, scrubbed from error texts like the credentials.
    pub header_secrets: Vec<Secret>,
    /// `max_response_bytes`: the largest successful answer read.
    pub max_body_bytes: usize,
    /// `max_error_body_bytes`: how much of an error answer is read.
    pub max_error_body_bytes: usize,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// tokio's clock for governor, so a paused test clock paces requests too.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// The outcome of one attempt.
enum Attempt {
    Done(Fetched),
    /// Worth another try; the server's `Retry-After` when it sent one.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// 401 with credentials that can be renewed.
    Renew {
        reason: String,
    },
    Fail(HttpApiError),
}

pub(crate) struct ApiClient {
    http: Client,
    method: Method,
    headers: HeaderMap,
    body: Option<Bytes>,
    auth: Auth,
    limiter: Option<Limiter>,
    retry: RetryPolicy,
    header_secrets: Vec<Secret>,
    max_body_bytes: usize,
    max_error_body_bytes: usize,
}

impl ApiClient {
    pub fn new(settings: ClientSettings) -> Result<Self, HttpApiError> {
        let mut builder = Client::builder()
            .user_agent(concat!("syncdeck/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            // The client lives for one sync against one host: idle connections need no reaper
            // task (whose timer would also jump a paused test clock).
            .pool_idle_timeout(None);
        if let Some(timeout) = settings.timeout {
            builder = builder
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)));
        }
        let http = builder.build().map_err(|e| HttpApiError::Config {
            field: "url".into(),
            reason: format!("cannot build an HTTP client: {e}"),
        })?;
        // One request per 1/rate seconds, no bursts: APIs count requests in short windows.
        let limiter = NonZeroU32::new(settings.requests_per_second).map(|rate| {
            RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(NonZeroU32::MIN),
                TokioClock,
            )
        });
        Ok(Self {
            http,
            method: settings.method,
            headers: settings.headers,
            body: settings.body,
            auth: settings.auth,
            limiter,
            retry: settings.retry,
            header_secrets: settings.header_secrets,
            max_body_bytes: settings.max_body_bytes,
            max_error_body_bytes: settings.max_error_body_bytes,
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// `url` as error messages and logs show it: the API key parameter (which requests
    /// carry) and any password masked.
    pub fn shown(&self, url: &Url) -> String {
        match self.auth.query_param() {
            Some(param) => masked_url(&with_param(url, param, "x"), &[param]),
            None => masked_url(url, &[]),
        }
    }

    /// GETs or POSTs `url` and parses its JSON, retrying transient failures when `retries`.
    pub async fn fetch(&mut self, url: &Url, retries: bool) -> Result<Fetched, HttpApiError> {
        let shown = self.shown(url);
        let max_times = if retries {
            self.retry.max_retries as usize
        } else {
            0
        };
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.first_delay)
            .with_max_delay(MAX_BACKOFF.max(self.retry.first_delay))
            .with_max_times(max_times)
            .with_jitter()
            .build();
        let mut renewed = false;
        loop {
            self.wait_for_rate_limit().await;
            let (reason, after) = match self.attempt(url, &shown).await {
                Attempt::Done(fetched) => return Ok(fetched),
                Attempt::Fail(e) => return Err(e),
                Attempt::Renew { reason } => {
                    if !renewed && self.auth.invalidate() {
                        renewed = true;
                        tracing::info!(url = %shown, "the API answered 401; fetching a new token");
                        continue;
                    }
                    return Err(self.status_error(&shown, StatusCode::UNAUTHORIZED, reason));
                }
                Attempt::Retry { reason, after } => (reason, after),
            };
            let Some(backoff) = delays.next() else {
                let tries = if max_times > 0 {
                    format!(" (gave up after {max_times} retries)")
                } else {
                    String::new()
                };
                return Err(HttpApiError::Transport {
                    method: self.method.clone(),
                    url: shown,
                    reason: format!("{reason}{tries}"),
                });
            };
            let wait = after.map_or(backoff, |a| a.min(MAX_RETRY_AFTER));
            tracing::warn!(url = %shown, %reason, wait_ms = wait.as_millis() as u64, "request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn wait_for_rate_limit(&self) {
        let Some(limiter) = &self.limiter else { return };
        while let Err(not_until) = limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
        }
    }

    async fn attempt(&mut self, url: &Url, shown: &str) -> Attempt {
        // The key is added by `Auth::apply`; a next link that repeats it must not send it twice.
        let target = match self.auth.query_param() {
            Some(param) => without_param(url, param),
            None => url.clone(),
        };
        let mut request = self
            .http
            .request(self.method.clone(), target)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone());
        }
        let request = match self.auth.apply(&self.http, request).await {
            Ok(r) => r,
            Err(e) => return Attempt::Fail(e),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() || e.is_redirect() => {
                return Attempt::Fail(HttpApiError::Transport {
                    method: self.method.clone(),
                    url: shown.to_string(),
                    reason: self.scrub(&transport_reason(e)),
                });
            }
            Err(e) => {
                return Attempt::Retry {
                    reason: self.scrub(&transport_reason(e)),
                    after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return self.read_json(response, shown).await;
        }
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        let detail = self.error_detail(response).await;
        if status == StatusCode::UNAUTHORIZED {
            return Attempt::Renew { reason: detail };
        }
        if is_transient(status) {
            return Attempt::Retry {
                reason: format!("answered {status}{detail}"),
                after,
            };
        }
        let hint = if status.is_redirection() {
            " (redirects to another host are not followed)"
        } else {
            ""
        };
        Attempt::Fail(self.status_error(shown, status, format!("{detail}{hint}")))
    }

    async fn read_json(&self, mut response: Response, shown: &str) -> Attempt {
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = match read_bounded(response, self.max_body_bytes).await {
            Ok(Bounded::Whole(body)) => body,
            Ok(Bounded::Cut(_)) => {
                return Attempt::Fail(HttpApiError::TooLarge {
                    method: self.method.clone(),
                    url: shown.to_string(),
                    limit: self.max_body_bytes,
                });
            }
            Err(e) => {
                return Attempt::Retry {
                    reason: self.scrub(&transport_reason(e)),
                    after: None,
                };
            }
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => Attempt::Done(Fetched {
                status,
                headers,
                body,
            }),
            Err(e) => Attempt::Fail(HttpApiError::NotJson {
                method: self.method.clone(),
                url: shown.to_string(),
                reason: format!("{e}; it starts with '{}'", self.scrub(&snippet(&body))),
            }),
        }
    }

    // ": <what the body says>", scrubbed, or nothing. Reads at most `max_error_body_bytes`:
    // an error page can be as large as a server cares to make it.
    async fn error_detail(&self, response: Response) -> String {
        let (body, cut) = match read_bounded(response, self.max_error_body_bytes).await {
            Ok(Bounded::Whole(body)) => (body, false),
            Ok(Bounded::Cut(start)) => (start, true),
            Err(_) => (Vec::new(), false),
        };
        let text = self.scrub(&snippet(&body));
        let rest = if cut {
            format!(
                " (the answer is longer than max_error_body_bytes = {}; the rest was not read)",
                self.max_error_body_bytes
            )
        } else {
            String::new()
        };
        if text.is_empty() && rest.is_empty() {
            String::new()
        } else {
            format!(": {text}{rest}")
        }
    }

    fn status_error(&self, shown: &str, status: StatusCode, detail: String) -> HttpApiError {
        HttpApiError::Status {
            method: self.method.clone(),
            url: shown.to_string(),
            status,
            detail,
        }
    }

    fn scrub(&self, text: &str) -> String {
        let secrets = self.auth.secrets();
        let all: Vec<&Secret> = secrets.iter().chain(&self.header_secrets).collect();
        // The process-wide masker also knows the derived forms (the basic-auth header's
        // base64, the bearer token URL-encoded) and every other secret of the job.
        crate::secret::masked(secret_free(text, &all))
    }
}

/// A body read up to a limit.
pub(crate) enum Bounded {
    Whole(Vec<u8>),
    /// The body was longer than the limit: its first `limit` bytes. The rest was not read;
    /// dropping the response closes the connection instead of downloading it.
    Cut(Vec<u8>),
}

/// Reads `response`'s body chunk by chunk, stopping at `limit` bytes.
pub(crate) async fn read_bounded(
    mut response: Response,
    limit: usize,
) -> Result<Bounded, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Bounded::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bounded::Whole(body))
}

fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        // Credentials (an API key header above all) must not follow a redirect elsewhere.
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Answers worth another try.
fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` value: delay-seconds, or an HTTP date (a date in the past means now).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_the_three_http_date_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:30 GMT").unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sun Nov  6 08:49:37 1994", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn transient_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 501] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
