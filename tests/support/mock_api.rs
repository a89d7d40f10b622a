//! A mock paginated JSON REST API for the `http_api` source's tests: axum on 127.0.0.1:0, in
//! the test's own runtime (so a paused tokio clock is its clock too), configured per test
//! with [`MockOptions`], every request recorded with its tokio time.
//!
//! `GET|POST /items` answers `{"data": {"items": [...]}, "next": ..., "meta": {"next_cursor": ...}}`
//! in the chosen [`Paging`] style, after the scripted [`Fault`]s and the [`MockAuth`] check.
//! `POST /oauth/token` issues `tok-1`, `tok-2`, … for the client credentials grant.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How `/items` pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Everything in one answer.
    None,
    /// `?page=N`, the next page's link in the body at `/next` (relative or absolute).
    NextLinkBody { absolute: bool },
    /// `?page=N`, `Link: <…>; rel="next"`.
    LinkHeader,
    /// `?cursor=…`, the next cursor at `/meta/next_cursor`.
    Cursor,
    /// `?page=N&per_page=M` (1-based); past the end an empty page.
    PageNumber,
    /// `?offset=N&limit=M`; past the end an empty page.
    OffsetLimit,
}

/// What `/items` requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockAuth {
    None,
    ApiKeyHeader {
        header: String,
        key: String,
    },
    ApiKeyQuery {
        param: String,
        key: String,
    },
    Basic {
        user: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    /// Tokens from `/oauth/token`, valid for `expires_in` seconds (of tokio time).
    OAuth2 {
        client_id: String,
        client_secret: String,
        expires_in: u64,
    },
}

/// A scripted answer to the next `/items` request.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: format!("{{\"error\":\"scripted {status}\"}}"),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }
}

#[derive(Debug, Clone)]
pub struct MockOptions {
    pub items: Vec<Value>,
    pub paging: Paging,
    /// Items per page for the styles where the server decides (and the default of the others).
    pub page_size: usize,
    pub auth: MockAuth,
    /// `(query parameter, item field)`: only items whose field is greater than the
    /// parameter's value are served (numbers by value, text by order).
    pub since: Option<(String, String)>,
    /// Every answer waits this long (tokio time).
    pub latency: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            paging: Paging::None,
            page_size: 10,
            auth: MockAuth::None,
            since: None,
            latency: Duration::ZERO,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
    /// tokio time of arrival.
    pub at: Instant,
    pub status: u16,
    /// Ids of the items served.
    pub served: Vec<String>,
}

impl RecordedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Token {
    value: String,
    issued: Instant,
    revoked: bool,
}

struct MockState {
    options: MockOptions,
    base: String,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    token_requests: Vec<RecordedRequest>,
    tokens: Vec<Token>,
    /// Issued tokens are refused by `/items` (a server that lost its keys).
    reject_all_tokens: bool,
}

type Shared = Arc<Mutex<MockState>>;

/// A running mock API; stops when dropped.
pub struct MockApi {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockApi {
    pub async fn start(options: MockOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(MockState {
            options,
            base: format!("http://{addr}"),
            faults: VecDeque::new(),
            requests: Vec::new(),
            token_requests: Vec::new(),
            tokens: Vec::new(),
            reject_all_tokens: false,
        }));
        let router = Router::new()
            .route("/items", get(items).post(items))
            .route("/oauth/token", post(token))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, state, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn items_url(&self) -> String {
        self.url("/items")
    }

    pub fn token_url(&self) -> String {
        self.url("/oauth/token")
    }

    /// Requests to `/items`, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.lock().token_requests.clone()
    }

    pub fn clear_requests(&self) {
        let mut s = self.lock();
        s.requests.clear();
        s.token_requests.clear();
    }

    /// Scripted answers for the next `/items` requests, in order, before any auth check.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    pub fn add_items(&self, items: impl IntoIterator<Item = Value>) {
        self.lock().options.items.extend(items);
    }

    /// Every token issued so far is refused from now on.
    pub fn revoke_tokens(&self) {
        for t in &mut self.lock().tokens {
            t.revoked = true;
        }
    }

    pub fn reject_all_tokens(&self, on: bool) {
        self.lock().reject_all_tokens = on;
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn greater(a: &Value, b: &str) -> bool {
    match (a, b.parse::<f64>()) {
        (Value::Number(n), Ok(b)) => n.as_f64().is_some_and(|a| a > b),
        (Value::String(s), _) => s.as_str() > b,
        _ => false,
    }
}

fn id_of(item: &Value) -> String {
    match &item["id"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// The query of the current request with `name` set to `value`, for next links.
fn with(query: &[(String, String)], name: &str, value: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(k, _)| k != name) {
        out.append_pair(k, v);
    }
    out.append_pair(name, value);
    out.finish()
}

fn authorized(s: &MockState, headers: &HeaderMap, query: &[(String, String)]) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    match &s.options.auth {
        MockAuth::None => true,
        MockAuth::ApiKeyHeader { header: name, key } => header(name) == *key,
        MockAuth::ApiKeyQuery { param: name, key } => {
            // Exactly once: a key sent twice is a client bug.
            query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                == [key]
        }
        MockAuth::Basic { user, password } => {
            let expected =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            header("authorization") == format!("Basic {expected}")
        }
        MockAuth::Bearer { token } => header("authorization") == format!("Bearer {token}"),
        MockAuth::OAuth2 { expires_in, .. } => {
            let presented = header("authorization");
            let Some(presented) = presented.strip_prefix("Bearer ") else {
                return false;
            };
            let life = Duration::from_secs(*expires_in);
            !s.reject_all_tokens
                && s.tokens
                    .iter()
                    .any(|t| t.value == presented && !t.revoked && Instant::now() < t.issued + life)
        }
    }
}

async fn items(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .options
        .latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let query = query_pairs(&uri);
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut record = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: query.clone(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        status: 200,
        served: Vec::new(),
    };
    if let Some(fault) = s.faults.pop_front() {
        record.status = fault.status;
        s.requests.push(record);
        let mut response = (
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::IM_A_TEAPOT),
            fault.body,
        )
            .into_response();
        for (k, v) in fault.headers {
            if let (Ok(name), Ok(value)) = (
                k.parse::<axum::http::HeaderName>(),
                HeaderValue::from_str(&v),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        return response;
    }
    if !authorized(&s, &headers, &query) {
        record.status = 401;
        s.requests.push(record);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    let filtered: Vec<Value> = match &s.options.since {
        Some((p, field)) => match param(&query, p) {
            Some(since) => s
                .options
                .items
                .iter()
                .filter(|i| greater(&i[field.as_str()], since))
                .cloned()
                .collect(),
            None => s.options.items.clone(),
        },
        None => s.options.items.clone(),
    };
    let size = s.options.page_size.max(1);
    let number = |name: &str, default: usize| {
        param(&query, name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (start, count) = match s.options.paging {
        Paging::None => (0, filtered.len()),
        Paging::NextLinkBody { .. } | Paging::LinkHeader => {
            ((number("page", 1).max(1) - 1) * size, size)
        }
        Paging::Cursor => (
            param(&query, "cursor")
                .and_then(|c| c.strip_prefix('c'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            size,
        ),
        Paging::PageNumber => {
            let per_page = number("per_page", size).max(1);
            ((number("page", 1).max(1) - 1) * per_page, per_page)
        }
        Paging::OffsetLimit => (number("offset", 0), number("limit", size).max(1)),
    };
    let page: Vec<Value> = filtered.iter().skip(start).take(count).cloned().collect();
    let more = start + count < filtered.len();
    let next_page = number("page", 1) + 1;
    let mut body = json!({"data": {"items": page}, "next": null, "meta": {"next_cursor": null}});
    let mut response_headers = HeaderMap::new();
    match s.options.paging {
        Paging::NextLinkBody { absolute } if more => {
            let link = format!("/items?{}", with(&query, "page", &next_page.to_string()));
            body["next"] = json!(if absolute {
                format!("{}{link}", s.base)
            } else {
                link
            });
        }
        Paging::LinkHeader if more => {
            let link = format!(
                "<{}/items?{}>; rel=\"next\"",
                s.base,
                with(&query, "page", &next_page.to_string())
            );
            let first = format!("<{}/items?page=1>; rel=\"first\"", s.base);
            if let Ok(v) = HeaderValue::from_str(&format!("{first}, {link}")) {
                response_headers.insert("link", v);
            }
        }
        Paging::Cursor if more => {
            body["meta"]["next_cursor"] = json!(format!("c{}", start + count))
        }
        _ => {}
    }
    record.served = page.iter().map(id_of).collect();
    s.requests.push(record);
    (StatusCode::OK, response_headers, axum::Json(body)).into_response()
}

async fn token(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.token_requests.push(RecordedRequest {
        method: "POST".into(),
        path: uri.path().to_string(),
        query: form.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        status: 200,
        served: Vec::new(),
    });
    let MockAuth::OAuth2 {
        client_id,
        client_secret,
        expires_in,
    } = s.options.auth.clone()
    else {
        return (StatusCode::NOT_FOUND, "no OAuth2 here").into_response();
    };
    let ok = param(&form, "grant_type") == Some("client_credentials")
        && param(&form, "client_id") == Some(client_id.as_str())
        && param(&form, "client_secret") == Some(client_secret.as_str());
    if !ok {
        if let Some(last) = s.token_requests.last_mut() {
            last.status = 401;
        }
        let body =
            json!({"error": "invalid_client", "error_description": "bad client credentials"});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let value = format!("tok-{}", s.tokens.len() + 1);
    s.tokens.push(Token {
        value: value.clone(),
        issued: Instant::now(),
        revoked: false,
    });
    axum::Json(json!({"access_token": value, "token_type": "Bearer", "expires_in": expires_in}))
        .into_response()
}
