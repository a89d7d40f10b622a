//! How the `http_api` source authenticates: an API key in a header or in the query, HTTP
//! basic, a bearer token, or OAuth2 client credentials (RFC 6749 §4.4) with the token cached
//! and fetched again before it expires or once after a 401. Every credential is a [`Secret`];
//! nothing here logs or formats one. Sending API requests is `client.rs`'s job, not this one.

use super::client::{Bounded, read_bounded};
use super::error::{HttpApiError, masked_url, secret_free};
use crate::secret::Secret;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The configured method.
pub(crate) enum Auth {
    None,
    ApiKeyHeader { name: HeaderName, key: Secret },
    ApiKeyQuery { param: String, key: Secret },
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
    OAuth2(OAuth2),
}

/// OAuth2 client credentials and the token they got.
pub(crate) struct OAuth2 {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: String,
    /// `max_response_bytes`: a token answer larger than this is refused unread.
    pub max_body_bytes: usize,
    cached: Option<CachedToken>,
}

struct CachedToken {
    token: Secret,
    /// When to fetch a new one; `None` when the server gave no lifetime.
    refresh_at: Option<Instant>,
}

/// A token is renewed this long before it expires, or at half its life when that is shorter.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

impl OAuth2 {
    pub fn new(token_url: Url, client_id: String, client_secret: Secret, scope: String) -> Self {
        Self {
            token_url,
            client_id,
            client_secret,
            scope,
            max_body_bytes: super::client::DEFAULT_MAX_BODY_BYTES,
            cached: None,
        }
    }

    async fn token(&mut self, http: &Client) -> Result<Secret, HttpApiError> {
        if let Some(cached) = &self.cached
            && cached.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch(http).await?;
        let token = fresh.token.clone();
        self.cached = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self, http: &Client) -> Result<CachedToken, HttpApiError> {
        let url = masked_url(&self.token_url, &[]);
        let fail = |reason: String| HttpApiError::Token {
            url: url.clone(),
            reason,
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        let requested = Instant::now();
        let response = http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                fail(secret_free(
                    &e.without_url().to_string(),
                    &[&self.client_secret],
                ))
            })?;
        let status = response.status();
        let body = match read_bounded(response, self.max_body_bytes).await {
            Ok(Bounded::Whole(body)) => body,
            Ok(Bounded::Cut(_)) => {
                return Err(fail(format!(
                    "answered {status} with more than max_response_bytes = {} bytes; the rest \
                     was not read",
                    self.max_body_bytes
                )));
            }
            Err(_) => Vec::new(),
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // RFC 6749 §5.2: `error` and `error_description` say why; never echo the rest.
            let why = json
                .as_ref()
                .map(|j| {
                    [j.get("error"), j.get("error_description")]
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|s| !s.is_empty())
                .map(|s| format!(" ({})", secret_free(&s, &[&self.client_secret])))
                .unwrap_or_default();
            return Err(fail(format!("answered {status}{why}")));
        }
        let json = json.ok_or_else(|| fail("answered with something that is not JSON".into()))?;
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("answered without an 'access_token'".into()))?;
        let lifetime = json
            .get("expires_in")
            .and_then(seconds)
            .map(Duration::from_secs);
        Ok(CachedToken {
            token: Secret::new(token),
            // A lifetime too long to add to the clock is as good as none.
            refresh_at: lifetime
                .and_then(|life| requested.checked_add(life - REFRESH_MARGIN.min(life / 2))),
        })
    }
}

/// `expires_in` as a number or as text (some servers quote it).
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Auth {
    /// The query parameter that carries the key, which URLs shown to people must mask.
    pub fn query_param(&self) -> Option<&str> {
        match self {
            Auth::ApiKeyQuery { param, .. } => Some(param),
            _ => None,
        }
    }

    /// Every credential, so that error texts can be scrubbed of them.
    pub fn secrets(&self) -> Vec<Secret> {
        match self {
            Auth::None => Vec::new(),
            Auth::ApiKeyHeader { key, .. } | Auth::ApiKeyQuery { key, .. } => vec![key.clone()],
            Auth::Basic { password, .. } => vec![password.clone()],
            Auth::Bearer { token } => vec![token.clone()],
            Auth::OAuth2(o) => {
                let mut all = vec![o.client_secret.clone()];
                all.extend(o.cached.as_ref().map(|c| c.token.clone()));
                all
            }
        }
    }

    /// Adds the credentials to a request (fetching an OAuth2 token when none is fresh).
    pub async fn apply(
        &mut self,
        http: &Client,
        request: RequestBuilder,
    ) -> Result<RequestBuilder, HttpApiError> {
        Ok(match self {
            Auth::None => request,
            Auth::ApiKeyHeader { name, key } => {
                let mut value =
                    HeaderValue::from_str(key.expose()).map_err(|_| HttpApiError::Config {
                        field: "api_key".into(),
                        reason: "is not a valid header value".into(),
                    })?;
                value.set_sensitive(true);
                request.header(name.clone(), value)
            }
            Auth::ApiKeyQuery { param, key } => request.query(&[(param.as_str(), key.expose())]),
            Auth::Basic { username, password } => {
                let password = (!password.is_empty()).then(|| password.expose());
                request.basic_auth(username, password)
            }
            Auth::Bearer { token } => request.bearer_auth(token.expose()),
            Auth::OAuth2(o) => request.bearer_auth(o.token(http).await?.expose()),
        })
    }

    /// After a 401: forgets the OAuth2 token so the next request fetches a new one. `false`
    /// when a new attempt cannot help (the other methods have nothing to renew).
    pub fn invalidate(&mut self) -> bool {
        match self {
            Auth::OAuth2(o) => {
                o.cached = None;
                true
            }
            _ => false,
        }
    }
}
