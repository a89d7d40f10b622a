//! The `http_api` source: items of a paginated JSON REST API. Its configuration fields (URL,
//! method, headers, where the items and their ids are, pagination, authentication, rate
//! limits, incremental cursor) and the run loop: fetch a page, yield its items, emit the cursor
//! as a checkpoint, follow the next page. Requests, retries and credentials live in `client`
//! and `auth`, the pagination styles in `pagination`. Knows nothing of the engine.
//!
//! Incremental syncs: with `cursor_field` set, the largest value of that field seen so far is
//! the cursor (`{"field": …, "value": …}`); a later run sends it as `cursor_query_param` so the
//! API returns only newer items. Checkpoints after every page let a crashed sync resume after
//! the pages it finished, which assumes the API returns items in ascending cursor order.

mod auth;
mod client;
mod error;
mod pagination;

use self::auth::{Auth, OAuth2};
use self::client::{
    ApiClient, ClientSettings, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ERROR_BODY_BYTES, RetryPolicy,
};
use self::error::HttpApiError;
use self::pagination::{PageView, Pagination, with_param};
use super::fields::{FieldBuilder, configuration, field, int_at_least, str_setting};
use super::{DataSource, Document, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode};
use crate::model::{Configuration, DisplayType, Validation, ValidationType};
use crate::secret::Secret;
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::time::Duration;
use url::Url;

const OAUTH2: &str = "oauth2_client_credentials";

/// Builds `http_api` sources.
pub struct HttpApiFactory;

impl SourceFactory for HttpApiFactory {
    fn service_type(&self) -> &'static str {
        "http_api"
    }

    fn display_name(&self) -> &'static str {
        "HTTP JSON API"
    }

    fn default_configuration(&self) -> Configuration {
        let mut config = configuration(
            [
                request_fields(),
                item_fields(),
                pagination_fields(),
                auth_fields(),
                limit_fields(),
                cursor_fields(),
            ]
            .into_iter()
            .flatten(),
        );
        for key in ["request_body", "headers", "secret_headers"] {
            if let Some(f) = config.0.get_mut(key) {
                f.display = DisplayType::Textarea;
            }
        }
        if let Some(f) = config.0.get_mut("url") {
            f.validations.push(Validation {
                kind: ValidationType::Regex,
                constraint: json!("https?://.+"),
            });
        }
        config
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        Settings::from_config(config).map(|_| ())
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        super::register_sensitive(config);
        let settings = Settings::from_config(config)?;
        let client = ApiClient::new(settings.client)?;
        Ok(Box::new(HttpApiSource {
            client,
            run: settings.run,
        }))
    }
}

fn request_fields() -> Vec<FieldBuilder> {
    vec![
        field("url", "URL")
            .text("")
            .tooltip("The first page, e.g. https://api.example.com/v1/items."),
        field("method", "Method").dropdown(&[("GET", "GET"), ("POST", "POST")], "GET"),
        field("request_body", "Request body")
            .text("")
            .optional()
            .depends_on("method", json!("POST"))
            .tooltip("JSON sent with every POST request."),
        field("headers", "Headers")
            .text("")
            .optional()
            .tooltip("Sent with every request: one 'Name: value' per line."),
        field("secret_headers", "Secret headers")
            .sensitive()
            .optional()
            .tooltip("Like Headers, for values that must stay secret: one 'Name: value' per line."),
    ]
}

fn item_fields() -> Vec<FieldBuilder> {
    vec![
        field("items_path", "Items path").text("").optional().tooltip(
            "A JSON pointer to the array of items in each response, e.g. /data/items (data.items works \
             too); empty when the response itself is the array.",
        ),
        field("id_field", "Id field").text("id")
            .tooltip("The field of each item that holds its id; a JSON pointer (/meta/id) for a nested one."),
        field("timestamp_field", "Timestamp field").text("").optional()
            .tooltip("The field with the item's modification time, stored as _timestamp."),
    ]
}

fn pagination_fields() -> Vec<FieldBuilder> {
    let styles = [
        ("None", "none"),
        ("Next link in the body", "next_link_body"),
        ("Link header (rel=\"next\")", "link_header"),
        ("Cursor in the body", "cursor"),
        ("Page number", "page_number"),
        ("Offset and limit", "offset_limit"),
    ];
    let dep = |builder: FieldBuilder, style: &str| builder.depends_on("pagination", json!(style));
    vec![
        field("pagination", "Pagination").dropdown(&styles, "none")
            .tooltip("How the API pages its items. Every style stops on an empty page or when there is no next."),
        dep(field("next_link_path", "Next link path").text("/next"), "next_link_body")
            .tooltip("A JSON pointer to the next page's URL in the body (absolute or relative)."),
        dep(field("cursor_path", "Cursor path").text("/next_cursor"), "cursor")
            .tooltip("A JSON pointer to the next page's cursor in the body."),
        dep(field("cursor_param", "Cursor parameter").text("cursor"), "cursor")
            .tooltip("The query parameter that sends the cursor back."),
        dep(field("page_param", "Page parameter").text("page"), "page_number"),
        dep(field("page_size_param", "Page size parameter").text("").optional(), "page_number")
            .tooltip("The query parameter that sends the page size, e.g. per_page; empty sends none."),
        dep(field("page_size", "Page size").int(100).greater_than(0), "page_number"),
        dep(field("start_page", "First page").int(1).greater_than(-1), "page_number")
            .tooltip("The number of the first page: 1, or 0 for APIs that count from zero."),
        dep(field("offset_param", "Offset parameter").text("offset"), "offset_limit"),
        dep(field("limit_param", "Limit parameter").text("limit"), "offset_limit"),
        dep(field("limit", "Limit").int(100).greater_than(0), "offset_limit"),
        field("max_pages", "Maximum pages").int(10_000).greater_than(0)
            .tooltip("A safety limit: a sync that would read more pages fails instead of looping."),
    ]
}

fn auth_fields() -> Vec<FieldBuilder> {
    let methods = [
        ("None", "none"),
        ("API key in a header", "api_key_header"),
        ("API key in the query", "api_key_query"),
        ("Basic", "basic"),
        ("Bearer token", "bearer"),
        ("OAuth2 client credentials", OAUTH2),
    ];
    let dep = |builder: FieldBuilder, method: &str| builder.depends_on("auth", json!(method));
    vec![
        field("auth", "Authentication").dropdown(&methods, "none"),
        dep(
            field("api_key_header_name", "API key header").text("X-API-Key"),
            "api_key_header",
        ),
        dep(
            field("api_key_param", "API key parameter").text("api_key"),
            "api_key_query",
        ),
        // Shared by both API key methods; `depends_on` can only require all of its entries.
        field("api_key", "API key")
            .sensitive()
            .optional()
            .tooltip("For the two API key methods."),
        dep(field("username", "Username").text(""), "basic"),
        dep(
            field("password", "Password").sensitive().optional(),
            "basic",
        ),
        dep(field("token", "Bearer token").sensitive(), "bearer"),
        dep(field("token_url", "Token URL").text(""), OAUTH2),
        dep(field("client_id", "Client id").text(""), OAUTH2),
        dep(field("client_secret", "Client secret").sensitive(), OAUTH2),
        dep(field("scope", "Scope").text("").optional(), OAUTH2),
    ]
}

fn limit_fields() -> Vec<FieldBuilder> {
    vec![
        field("requests_per_second", "Requests per second").int(0).greater_than(-1)
            .tooltip("At most this many requests a second; 0 means no limit."),
        field("max_retries", "Maximum retries").int(5).greater_than(-1)
            .tooltip("Retries of a request answered 429, 5xx or cut off, waiting as Retry-After says or longer each time."),
        field("retry_delay_ms", "First retry delay (ms)").int(500).greater_than(0),
        field("timeout_seconds", "Request timeout (seconds)").int(30).greater_than(-1)
            .tooltip("How long one request may take; 0 waits as long as the server does."),
        field("max_response_bytes", "Largest answer (bytes)")
            .int(DEFAULT_MAX_BODY_BYTES as i64).greater_than(0)
            .tooltip("A page or token answer larger than this ends the sync unread."),
        field("max_error_body_bytes", "Error answer read (bytes)")
            .int(DEFAULT_MAX_ERROR_BODY_BYTES as i64).greater_than(0)
            .tooltip("How much of an error answer is read to say why; the rest is not downloaded."),
    ]
}

fn cursor_fields() -> Vec<FieldBuilder> {
    vec![
        field("cursor_field", "Cursor field").text("").optional().tooltip(
            "For incremental syncs: a field of the items that only grows (a modification time or an \
             increasing id); the API must return items in ascending order of it.",
        ),
        field("cursor_query_param", "Cursor query parameter").text("").optional()
            .tooltip("The query parameter that asks the API for items after the saved cursor, e.g. updated_since."),
    ]
}

/// Where a value sits in an item: a top-level key, or a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRef(String);

impl FieldRef {
    fn get<'a>(&self, item: &'a Map<String, Value>) -> Option<&'a Value> {
        if !self.0.starts_with('/') {
            return item.get(&self.0);
        }
        // The first token picks the field; the rest is a pointer into it ("" is the field).
        let rest = &self.0[1..];
        let (head, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        item.get(&unescape(head))?.pointer(tail)
    }

    fn name(&self) -> &str {
        &self.0
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Everything the run loop needs besides the client. No `Debug`: the URL may hold a password.
struct RunSettings {
    url: Url,
    items_path: String,
    id_field: FieldRef,
    timestamp_field: Option<FieldRef>,
    pagination: Pagination,
    max_pages: u64,
    cursor_field: Option<FieldRef>,
    cursor_query_param: Option<String>,
}

struct Settings {
    client: ClientSettings,
    run: RunSettings,
}

fn config_error(field: &str, reason: impl Into<String>) -> SourceError {
    SourceError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn required(config: &Configuration, key: &str, what: &str) -> Result<String, SourceError> {
    let value = str_setting(config, key, "");
    if value.is_empty() {
        return Err(config_error(key, format!("{what} is required")));
    }
    Ok(value)
}

fn secret(config: &Configuration, key: &str) -> Secret {
    Secret::new(str_setting(config, key, ""))
}

fn required_secret(config: &Configuration, key: &str, what: &str) -> Result<Secret, SourceError> {
    let value = secret(config, key);
    if value.is_empty() {
        return Err(config_error(key, format!("{what} is required")));
    }
    Ok(value)
}

fn http_url(config: &Configuration, key: &str) -> Result<Url, SourceError> {
    let text = required(config, key, "a URL")?;
    let url =
        Url::parse(&text).map_err(|e| config_error(key, format!("'{text}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            key,
            format!("'{}' is not an http or https URL", url.scheme()),
        ));
    }
    Ok(url)
}

/// A JSON pointer, or a dotted path turned into one (`data.items` → `/data/items`).
fn pointer(config: &Configuration, key: &str, default: &str) -> String {
    let text = str_setting(config, key, default);
    if text.is_empty() || text.starts_with('/') {
        return text;
    }
    text.split('.')
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn param(config: &Configuration, key: &str, default: &str) -> Result<String, SourceError> {
    let value = str_setting(config, key, default);
    if value.is_empty() {
        return Err(config_error(key, "a query parameter name is required"));
    }
    Ok(value)
}

fn positive(config: &Configuration, key: &str, default: i64, min: i64) -> Result<u64, SourceError> {
    Ok(int_at_least(config, key, default, min)? as u64)
}

/// A byte bound setting: at least 1, at most what this machine can address.
fn byte_limit(config: &Configuration, key: &str, default: usize) -> Result<usize, SourceError> {
    let n = positive(config, key, default as i64, 1)?;
    usize::try_from(n).map_err(|_| config_error(key, format!("'{n}' is too large")))
}

impl Settings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        let url = http_url(config, "url")?;
        let method = match str_setting(config, "method", "GET")
            .to_ascii_uppercase()
            .as_str()
        {
            "GET" => Method::GET,
            "POST" => Method::POST,
            other => {
                return Err(config_error(
                    "method",
                    format!("'{other}' is not GET or POST"),
                ));
            }
        };
        let body = if method == Method::POST {
            request_body(config)?
        } else {
            None
        };
        let mut headers = HeaderMap::new();
        parse_headers(
            &str_setting(config, "headers", ""),
            "headers",
            false,
            &mut headers,
        )?;
        let secret_text = secret(config, "secret_headers");
        let header_secrets =
            parse_headers(secret_text.expose(), "secret_headers", true, &mut headers)?;
        let id_field = FieldRef(str_setting(config, "id_field", "id"));
        let id_field = if id_field.0.is_empty() {
            FieldRef("id".into())
        } else {
            id_field
        };
        let optional_ref = |key| {
            Some(str_setting(config, key, ""))
                .filter(|s| !s.is_empty())
                .map(FieldRef)
        };
        let run = RunSettings {
            url,
            items_path: pointer(config, "items_path", ""),
            id_field,
            timestamp_field: optional_ref("timestamp_field"),
            pagination: pagination(config)?,
            max_pages: positive(config, "max_pages", 10_000, 1)?,
            cursor_field: optional_ref("cursor_field"),
            cursor_query_param: Some(str_setting(config, "cursor_query_param", ""))
                .filter(|s| !s.is_empty()),
        };
        let rate = int_at_least(config, "requests_per_second", 0, 0)?;
        let client = ClientSettings {
            method,
            headers,
            body,
            auth: auth(config)?,
            requests_per_second: u32::try_from(rate).map_err(|_| {
                config_error("requests_per_second", format!("'{rate}' is too large"))
            })?,
            retry: RetryPolicy {
                max_retries: positive(config, "max_retries", 5, 0)?.min(100) as u32,
                // Capped so that no value can overflow a clock: an hour, a day.
                first_delay: Duration::from_millis(
                    positive(config, "retry_delay_ms", 500, 1)?.min(3_600_000),
                ),
            },
            timeout: Some(positive(config, "timeout_seconds", 30, 0)?.min(86_400))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            header_secrets,
            max_body_bytes: byte_limit(config, "max_response_bytes", DEFAULT_MAX_BODY_BYTES)?,
            max_error_body_bytes: byte_limit(
                config,
                "max_error_body_bytes",
                DEFAULT_MAX_ERROR_BODY_BYTES,
            )?,
        };
        let mut client = client;
        if let Auth::OAuth2(o) = &mut client.auth {
            o.max_body_bytes = client.max_body_bytes;
        }
        Ok(Self { client, run })
    }
}

fn request_body(config: &Configuration) -> Result<Option<Bytes>, SourceError> {
    let text = str_setting(config, "request_body", "");
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<Value>(&text)
        .map_err(|e| config_error("request_body", format!("is not JSON: {e}")))?;
    Ok(Some(Bytes::from(text)))
}

/// Adds `Name: value` lines to `headers`; returns the values as secrets when `sensitive`.
/// Errors never quote a value.
fn parse_headers(
    text: &str,
    key: &str,
    sensitive: bool,
    headers: &mut HeaderMap,
) -> Result<Vec<Secret>, SourceError> {
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(config_error(key, format!("line {n} is not 'Name: value'")));
        };
        let name = name.trim();
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            config_error(
                key,
                format!("line {n}: '{name}' is not a valid header name"),
            )
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            config_error(
                key,
                format!("line {n}: the value of '{name}' is not a valid header value"),
            )
        })?;
        if sensitive || carries_credentials(&header) {
            value.set_sensitive(true);
            let text = value.to_str().unwrap_or_default();
            secrets.push(Secret::new(text));
            // `Bearer <token>`, `Basic <base64>`: the credential alone is masked too (an
            // API may echo just the token), and so is what a basic one decodes to.
            if let Some((_, credential)) = text.split_once(' ') {
                secrets.push(Secret::new(credential.trim()));
                let decoded = base64::engine::general_purpose::STANDARD.decode(credential.trim());
                if let Some((user, password)) = decoded
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .and_then(|d| {
                        d.split_once(':')
                            .map(|(u, p)| (u.to_string(), p.to_string()))
                    })
                {
                    crate::secret::mask::register_basic(&user, &password);
                }
            }
        }
        headers.append(header, value);
    }
    Ok(secrets)
}

/// Headers that carry credentials even when written among the plain `headers`: their values
/// are masked like `secret_headers`.
fn carries_credentials(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "x-api-key"
            | "api-key"
            | "x-auth-token"
    )
}

fn pagination(config: &Configuration) -> Result<Pagination, SourceError> {
    Ok(match str_setting(config, "pagination", "none").as_str() {
        "none" => Pagination::None,
        "next_link_body" => Pagination::NextLinkBody {
            path: pointer(config, "next_link_path", "/next"),
        },
        "link_header" => Pagination::LinkHeader,
        "cursor" => Pagination::Cursor {
            path: pointer(config, "cursor_path", "/next_cursor"),
            param: param(config, "cursor_param", "cursor")?,
        },
        "page_number" => Pagination::PageNumber {
            param: param(config, "page_param", "page")?,
            size_param: Some(str_setting(config, "page_size_param", "")).filter(|s| !s.is_empty()),
            size: positive(config, "page_size", 100, 1)?,
            start: positive(config, "start_page", 1, 0)?,
        },
        "offset_limit" => Pagination::OffsetLimit {
            offset_param: param(config, "offset_param", "offset")?,
            limit_param: param(config, "limit_param", "limit")?,
            limit: positive(config, "limit", 100, 1)?,
        },
        other => {
            return Err(config_error(
                "pagination",
                format!("'{other}' is not a pagination style"),
            ));
        }
    })
}

fn auth(config: &Configuration) -> Result<Auth, SourceError> {
    Ok(match str_setting(config, "auth", "none").as_str() {
        "none" => Auth::None,
        "api_key_header" => {
            let name = str_setting(config, "api_key_header_name", "X-API-Key");
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                config_error(
                    "api_key_header_name",
                    format!("'{name}' is not a valid header name"),
                )
            })?;
            Auth::ApiKeyHeader {
                name,
                key: required_secret(config, "api_key", "an API key")?,
            }
        }
        "api_key_query" => Auth::ApiKeyQuery {
            param: param(config, "api_key_param", "api_key")?,
            key: required_secret(config, "api_key", "an API key")?,
        },
        "basic" => {
            let username = required(config, "username", "a user name")?;
            let password = secret(config, "password");
            // The header carries base64 of `user:password`: mask that form whole.
            crate::secret::mask::register_basic(&username, password.expose());
            Auth::Basic { username, password }
        }
        "bearer" => Auth::Bearer {
            token: required_secret(config, "token", "a token")?,
        },
        OAUTH2 => Auth::OAuth2(OAuth2::new(
            http_url(config, "token_url")?,
            required(config, "client_id", "a client id")?,
            required_secret(config, "client_secret", "a client secret")?,
            str_setting(config, "scope", ""),
        )),
        other => {
            return Err(config_error(
                "auth",
                format!("'{other}' is not an authentication method"),
            ));
        }
    })
}

/// A running `http_api` source.
struct HttpApiSource {
    client: ApiClient,
    run: RunSettings,
}

#[async_trait]
impl DataSource for HttpApiSource {
    /// One request for the first page, without retries: reports the status and whether
    /// `items_path` finds the items.
    async fn ping(&mut self) -> Result<(), SourceError> {
        let (url, _) = self.run.pagination.first(&self.run.url);
        let fetched = self
            .client
            .fetch(&url, false)
            .await
            .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        let mut body = fetched.body;
        items(
            &mut body,
            &self.run.items_path,
            self.client.method(),
            &self.client.shown(&url),
        )
        .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        tracing::debug!(url = %self.client.shown(&url), status = %fetched.status, "http_api source reachable");
        Ok(())
    }

    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        let resume = match &mode {
            SyncMode::Incremental {
                cursor: Some(cursor),
            } => self.resume_value(cursor),
            _ => None,
        };
        let base = match (&resume, &self.run.cursor_query_param) {
            (Some(value), Some(param)) => with_param(&self.run.url, param, &plain(value)),
            _ => self.run.url.clone(),
        };
        if matches!(mode, SyncMode::Incremental { .. }) && self.run.cursor_query_param.is_none() {
            tracing::warn!(
                "http_api: no 'cursor_query_param', so an incremental sync reads every item"
            );
        }
        let mut cursor = CursorTracker { best: resume };
        let (mut url, mut state) = self.run.pagination.first(&base);
        let mut pages = 0u64;
        loop {
            pages += 1;
            let fetched = self.client.fetch(&url, true).await?;
            let shown = self.client.shown(&url);
            let mut body = fetched.body;
            let page_items = items(
                &mut body,
                &self.run.items_path,
                self.client.method(),
                &shown,
            )?;
            let view = PageView {
                url: &url,
                headers: &fetched.headers,
                body: &body,
                items: page_items.len(),
            };
            let next = self
                .run
                .pagination
                .next(&base, &mut state, &view)
                .map_err(|bad| HttpApiError::BadLink {
                    link: bad.link,
                    url: shown.clone(),
                    reason: bad.reason,
                })?;
            let had_items = view.items > 0;
            // One page past `max_pages` is read only to see that the API is done: many APIs
            // end with an empty page. One with items means there really are more.
            if pages > self.run.max_pages {
                if had_items {
                    return Err(HttpApiError::TooManyPages {
                        max_pages: self.run.max_pages,
                        url: shown,
                    }
                    .into());
                }
                break;
            }
            for (index, item) in page_items.into_iter().enumerate() {
                out.send(self.item(item, pages, index, &mut cursor)).await?;
            }
            if let Some(checkpoint) = self.cursor_json(&cursor).filter(|_| had_items) {
                out.send(SourceItem::Checkpoint(checkpoint)).await?;
            }
            let Some(next) = next else { break };
            self.check_next(&url, &next, &shown)?;
            url = next;
        }
        Ok(self.cursor_json(&cursor))
    }
}

impl HttpApiSource {
    /// The saved cursor's value, unless it was saved for another cursor field.
    fn resume_value(&self, cursor: &Value) -> Option<Value> {
        let field = self.run.cursor_field.as_ref()?;
        let value = match cursor {
            Value::Object(saved) => {
                let saved_field = saved.get("field").and_then(Value::as_str);
                if saved_field.is_some_and(|f| f != field.name()) {
                    tracing::warn!(
                        saved = saved_field.unwrap_or_default(),
                        configured = field.name(),
                        "http_api: the saved cursor is for another cursor field; reading every item"
                    );
                    return None;
                }
                saved.get("value")?.clone()
            }
            other => other.clone(),
        };
        matches!(value, Value::String(_) | Value::Number(_)).then_some(value)
    }

    fn cursor_json(&self, cursor: &CursorTracker) -> Option<Value> {
        let field = self.run.cursor_field.as_ref()?;
        let value = cursor.best.clone()?;
        Some(json!({"field": field.name(), "value": value}))
    }

    // Credentials go only to the API's own origin, and a page that links to itself would loop.
    fn check_next(&self, current: &Url, next: &Url, shown: &str) -> Result<(), HttpApiError> {
        let bad = |reason: &str| HttpApiError::BadLink {
            link: self.client.shown(next),
            url: shown.to_string(),
            reason: reason.to_string(),
        };
        if next.origin() != self.run.url.origin() {
            return Err(bad(
                "points to another host; credentials are sent only to the API's own",
            ));
        }
        if next == current {
            return Err(bad("is the page itself; the API would be read forever"));
        }
        Ok(())
    }

    fn item(&self, item: Value, page: u64, index: usize, cursor: &mut CursorTracker) -> SourceItem {
        let where_ = format!("item {} of page {page}", index + 1);
        let invalid = |reason: String, raw: Value| SourceItem::Invalid {
            id: format!("page-{page}-item-{}", index + 1),
            reason: format!("{where_}: {reason}"),
            raw,
        };
        let fields = match item {
            Value::Object(fields) => fields,
            other => {
                return invalid(
                    format!("expected a JSON object, found {}", kind(&other)),
                    other,
                );
            }
        };
        if let Some(field) = &self.run.cursor_field {
            cursor.see(field.get(&fields));
        }
        let id_field = &self.run.id_field;
        let Some(id) = id_field.get(&fields).and_then(id_text) else {
            let reason = if id_field.get(&fields).is_some() {
                format!(
                    "field '{}' must be a non-empty string or a number",
                    id_field.name()
                )
            } else {
                format!("no '{}' field", id_field.name())
            };
            return invalid(reason, Value::Object(fields));
        };
        let timestamp = self
            .run
            .timestamp_field
            .as_ref()
            .and_then(|f| f.get(&fields))
            .and_then(id_text);
        SourceItem::Upsert(Document {
            id,
            timestamp,
            fields: fields.into(),
            content: None,
        })
    }
}

/// The array of items at `path`, taken out of `body` (the rest stays for the pager). `null`
/// is an empty page; nothing at all is an error, since a wrong path would otherwise look like
/// an empty API and a full sync would delete every document.
fn items(
    body: &mut Value,
    path: &str,
    method: &Method,
    shown: &str,
) -> Result<Vec<Value>, HttpApiError> {
    let Some(found) = body.pointer_mut(path) else {
        return Err(HttpApiError::ItemsMissing {
            method: method.clone(),
            url: shown.to_string(),
            path: path.to_string(),
        });
    };
    match found.take() {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(HttpApiError::ItemsNotArray {
            method: method.clone(),
            url: shown.to_string(),
            path: path.to_string(),
            found: kind(&other),
        }),
    }
}

/// The largest cursor value seen: numbers by value, text by its order (ISO-8601 times sort).
struct CursorTracker {
    best: Option<Value>,
}

impl CursorTracker {
    fn see(&mut self, value: Option<&Value>) {
        let Some(value) = value else { return };
        let later = match (value, &self.best) {
            (Value::String(_) | Value::Number(_), None) => true,
            (Value::String(a), Some(Value::String(b))) => a > b,
            (Value::Number(a), Some(Value::Number(b))) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => a > b,
                _ => a.as_f64().unwrap_or(f64::MIN) > b.as_f64().unwrap_or(f64::MIN),
            },
            _ => false,
        };
        if later {
            self.best = Some(value.clone());
        }
    }
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::validate_field;

    fn config(values: &[(&str, Value)]) -> Configuration {
        let mut config = HttpApiFactory.default_configuration();
        for (key, value) in values {
            config.0.get_mut(*key).unwrap().value = value.clone();
        }
        config
    }

    fn issues(config: &Configuration) -> Vec<String> {
        config
            .fields_in_order()
            .into_iter()
            .flat_map(|(k, _)| validate_field(config, k))
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn only_the_chosen_styles_fields_apply() {
        let c = config(&[
            ("url", json!("https://api.example.com/items")),
            ("pagination", json!("cursor")),
            ("auth", json!("basic")),
        ]);
        assert!(c.is_active("cursor_path") && c.is_active("cursor_param"));
        assert!(!c.is_active("page_param") && !c.is_active("next_link_path"));
        assert!(c.is_active("username") && !c.is_active("token") && !c.is_active("client_secret"));
        assert!(
            c.0["password"].sensitive
                && c.0["client_secret"].sensitive
                && c.0["secret_headers"].sensitive
        );
        assert_eq!(c.0["headers"].display, DisplayType::Textarea);
        // The username is required while basic is chosen.
        let problems = issues(&c);
        assert!(
            problems.iter().any(|p| p.contains("Username")),
            "{problems:?}"
        );
        assert!(
            HttpApiFactory
                .validate(&c)
                .unwrap_err()
                .to_string()
                .contains("'username'")
        );
    }

    #[test]
    fn the_defaults_with_a_url_are_valid() {
        let c = config(&[("url", json!("https://api.example.com/items"))]);
        assert!(issues(&c).is_empty(), "{:?}", issues(&c));
        assert!(HttpApiFactory.validate(&c).is_ok());
        let bad = config(&[("url", json!("ftp://x"))]);
        assert!(
            HttpApiFactory
                .validate(&bad)
                .unwrap_err()
                .to_string()
                .contains("'url'")
        );
    }

    #[test]
    fn credentials_in_plain_headers_are_masked_with_their_derived_forms() {
        use base64::engine::general_purpose::STANDARD;
        let basic = STANDARD.encode("hdr-user:hdr-pa55word-1");
        let text = format!(
            "Authorization: Basic {basic}\nX-Api-Key: plain-hdr-key-99\nAccept-Language: en"
        );
        let mut headers = HeaderMap::new();
        parse_headers(&text, "headers", false, &mut headers).unwrap();
        let echoed = format!(
            "saw {basic} and plain-hdr-key-99 and hdr-pa55word-1 and {}, lang en",
            STANDARD.encode("hdr-pa55word-1")
        );
        let shown = crate::secret::masked(&echoed);
        assert_eq!(
            shown,
            format!(
                "saw {m} and {m} and {m} and {m}, lang en",
                m = crate::secret::MASK
            )
        );
        assert!(headers["authorization"].is_sensitive());
    }

    #[test]
    fn header_errors_name_the_line_but_never_a_secret_value() {
        let c = config(&[
            ("url", json!("https://a.example/")),
            (
                "secret_headers",
                json!("X-Ok: fine\nX-Bad: va\u{7f}lue-hunter2"),
            ),
        ]);
        let err = HttpApiFactory.validate(&c).unwrap_err().to_string();
        assert!(
            err.contains("'secret_headers'") && err.contains("line 2") && err.contains("'X-Bad'"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let c = config(&[
            ("url", json!("https://a.example/")),
            ("headers", json!("no colon here")),
        ]);
        assert!(
            HttpApiFactory
                .validate(&c)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }

    #[test]
    fn dotted_paths_become_pointers_and_field_refs_reach_nested_values() {
        let c = config(&[("items_path", json!("data.items"))]);
        assert_eq!(pointer(&c, "items_path", ""), "/data/items");
        let item = json!({"id": 1, "meta": {"a/b": {"id": "x"}}});
        let item = item.as_object().unwrap();
        assert_eq!(
            FieldRef("/meta/a~1b/id".into()).get(item),
            Some(&json!("x"))
        );
        assert_eq!(FieldRef("id".into()).get(item), Some(&json!(1)));
        assert_eq!(FieldRef("/id".into()).get(item), Some(&json!(1)));
    }

    #[test]
    fn the_cursor_keeps_the_largest_value() {
        let mut t = CursorTracker { best: None };
        for v in [json!(3), json!(10), json!(7), json!("x"), Value::Null] {
            t.see(Some(&v));
        }
        assert_eq!(t.best, Some(json!(10)));
        let mut t = CursorTracker {
            best: Some(json!("2024-01-02T00:00:00Z")),
        };
        t.see(Some(&json!("2024-01-01T00:00:00Z")));
        t.see(Some(&json!("2024-01-03T00:00:00Z")));
        assert_eq!(t.best, Some(json!("2024-01-03T00:00:00Z")));
    }
}
