//! Kibana over HTTP: status, the actions (connectors) API and `_execute` for `.index`
//! connectors. Owns the URL layout (base path, `/s/{space}`), the `kbn-xsrf` and auth headers
//! and the error mapping. It knows nothing of Elasticsearch or of the connector protocol;
//! TLS options come from [`crate::tls`].

mod error;
pub mod model;

pub use error::KibanaError;
pub use model::{
    ActionConnector, ConnectorType, ExecuteResult, ExecuteStatus, INDEX_CONNECTOR_TYPE,
    KibanaStatus, NewActionConnector,
};

use crate::config::{Auth, KibanaSettings};
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;
use url::Url;

/// Kibana refuses mutating requests without this header (CSRF protection); any value works.
const XSRF_HEADER: HeaderName = HeaderName::from_static("kbn-xsrf");
const XSRF_VALUE: HeaderValue = HeaderValue::from_static("syncdeck");
/// Kibana space ids are at most this long.
const MAX_SPACE_LEN: usize = 1024;
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kibana client bound to one URL, space and set of credentials. Cheap to clone.
#[derive(Clone)]
pub struct Kibana {
    http: reqwest::Client,
    /// Without user info: credentials travel only in the `Authorization` header.
    base: Url,
    space: Option<String>,
}

impl fmt::Debug for Kibana {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kibana")
            .field("base", &self.base.as_str())
            .field("space", &self.space)
            .finish_non_exhaustive()
    }
}

/// A Kibana answer, with the (credential-free) URL it came from for error messages.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    url: String,
}

impl Answer {
    /// Fails with the mapped error unless the status is a success.
    fn ok(self) -> Result<Self, KibanaError> {
        if self.status.is_success() {
            return Ok(self);
        }
        Err(KibanaError::from_status(self.status, &self.body))
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, KibanaError> {
        serde_json::from_slice(&self.body).map_err(|e| KibanaError::Decode {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }
}

impl Kibana {
    /// Builds the client; nothing is sent until the first call.
    pub fn new(settings: &KibanaSettings) -> Result<Self, KibanaError> {
        let (base, url_auth) = split_base(&settings.url)?;
        let space = normalise_space(settings.space.as_deref())?;
        // Credentials in the URL (`https://user:pass@host`) count only when none are configured.
        let auth = match &settings.auth {
            Auth::None => url_auth,
            configured => configured.clone(),
        };
        let builder = reqwest::Client::builder()
            .default_headers(default_headers(&auth)?)
            .user_agent(concat!("syncdeck/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(MAX_CONNECT_TIMEOUT));
        let builder = crate::tls::apply_tls(builder, &settings.tls)?;
        let http = builder
            .build()
            .map_err(|e| KibanaError::Client(e.to_string()))?;
        Ok(Self { http, base, space })
    }

    /// The Kibana URL, without credentials.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The space calls are made in; `None` is the default space.
    pub fn space(&self) -> Option<&str> {
        self.space.as_deref()
    }

    /// `GET /api/status`. A Kibana that is up but unhealthy answers 503 with its status, which
    /// is returned as such rather than as an error.
    pub async fn status(&self) -> Result<KibanaStatus, KibanaError> {
        let answer = self
            .send(Method::GET, self.url(false, &["api", "status"]), None)
            .await?;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE
            && let Ok(body) = answer.json::<model::StatusBody>()
            && body.has_overall()
        {
            return Ok(body.into());
        }
        let body: model::StatusBody = answer.ok()?.json()?;
        Ok(body.into())
    }

    /// `GET /api/actions/connector_types`, optionally only those supporting `feature_id`.
    pub async fn connector_types(
        &self,
        feature_id: Option<&str>,
    ) -> Result<Vec<ConnectorType>, KibanaError> {
        let mut url = self.url(true, &["api", "actions", "connector_types"]);
        if let Some(feature) = feature_id {
            url.query_pairs_mut().append_pair("feature_id", feature);
        }
        self.send(Method::GET, url, None).await?.ok()?.json()
    }

    /// `GET /api/actions/connectors`: every connector of the space, preconfigured ones included.
    pub async fn connectors(&self) -> Result<Vec<ActionConnector>, KibanaError> {
        let url = self.url(true, &["api", "actions", "connectors"]);
        self.send(Method::GET, url, None).await?.ok()?.json()
    }

    /// `GET /api/actions/connector/{id}`.
    pub async fn connector(&self, id: &str) -> Result<ActionConnector, KibanaError> {
        let url = self.url(true, &["api", "actions", "connector", id]);
        self.send(Method::GET, url, None).await?.ok()?.json()
    }

    /// `POST /api/actions/connector[/{id}]`; without an id Kibana generates one.
    pub async fn create_connector(
        &self,
        id: Option<&str>,
        new: &NewActionConnector,
    ) -> Result<ActionConnector, KibanaError> {
        let url = match id {
            Some(id) => self.url(true, &["api", "actions", "connector", id]),
            None => self.url(true, &["api", "actions", "connector"]),
        };
        let body = json!({
            "name": new.name,
            "connector_type_id": new.connector_type_id,
            "config": new.config,
            "secrets": new.secrets,
        });
        self.send(Method::POST, url, Some(&body))
            .await?
            .ok()?
            .json()
    }

    /// Creates an `.index` connector writing to `index`.
    pub async fn create_index_connector(
        &self,
        name: &str,
        index: &str,
        refresh: bool,
        execution_time_field: Option<&str>,
    ) -> Result<ActionConnector, KibanaError> {
        let new = NewActionConnector {
            name: name.to_string(),
            connector_type_id: INDEX_CONNECTOR_TYPE.to_string(),
            config: index_config(index, refresh, execution_time_field),
            secrets: json!({}),
        };
        self.create_connector(None, &new).await
    }

    /// `PUT /api/actions/connector/{id}`. The type cannot change; `secrets` left out keeps
    /// Kibana's default for the type (`{}`).
    pub async fn update_connector(
        &self,
        id: &str,
        name: &str,
        config: &Value,
        secrets: Option<&Value>,
    ) -> Result<ActionConnector, KibanaError> {
        let url = self.url(true, &["api", "actions", "connector", id]);
        let mut body = json!({ "name": name, "config": config });
        if let (Some(secrets), Some(map)) = (secrets, body.as_object_mut()) {
            map.insert("secrets".to_string(), secrets.clone());
        }
        self.send(Method::PUT, url, Some(&body)).await?.ok()?.json()
    }

    /// `DELETE /api/actions/connector/{id}` (Kibana answers 204).
    pub async fn delete_connector(&self, id: &str) -> Result<(), KibanaError> {
        let url = self.url(true, &["api", "actions", "connector", id]);
        self.send(Method::DELETE, url, None).await?.ok()?;
        Ok(())
    }

    /// `POST /api/actions/connector/{id}/_execute` with `{"params": params}`. A failed action is
    /// an `Ok` result with `status: error`.
    pub async fn execute(&self, id: &str, params: Value) -> Result<ExecuteResult, KibanaError> {
        let url = self.url(true, &["api", "actions", "connector", id, "_execute"]);
        let body = json!({ "params": params });
        self.send(Method::POST, url, Some(&body))
            .await?
            .ok()?
            .json()
    }

    /// Runs an `.index` connector with `documents`. Kibana itself accepts an `index_override`
    /// only for alert-history indices (`kibana-alert-history-*`).
    pub async fn execute_index(
        &self,
        id: &str,
        documents: &[Value],
        index_override: Option<&str>,
    ) -> Result<ExecuteResult, KibanaError> {
        let mut params = json!({ "documents": documents });
        if let (Some(index), Some(map)) = (index_override, params.as_object_mut()) {
            map.insert("indexOverride".to_string(), json!(index));
        }
        self.execute(id, params).await
    }

    /// The URL of an API path; `scoped` paths go into the configured space.
    fn url(&self, scoped: bool, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Cannot fail: `split_base` only accepts http(s) URLs, which can be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            if let (true, Some(space)) = (scoped, &self.space) {
                path.push("s").push(space);
            }
            path.extend(segments);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, KibanaError> {
        let shown = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| KibanaError::from_transport(e, &shown))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| KibanaError::from_transport(e, &shown))?;
        Ok(Answer {
            status,
            body: body.to_vec(),
            url: shown,
        })
    }
}

/// The `config` of an `.index` connector.
fn index_config(index: &str, refresh: bool, execution_time_field: Option<&str>) -> Value {
    json!({
        "index": index,
        "refresh": refresh,
        "executionTimeField": execution_time_field,
    })
}

/// The URL without user info, and that user info as credentials.
fn split_base(url: &Url) -> Result<(Url, Auth), KibanaError> {
    let invalid = |reason: &str| KibanaError::InvalidUrl {
        url: redacted(url),
        reason: reason.to_string(),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("use http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let auth = match (url.username(), url.password()) {
        ("", None) => Auth::None,
        (user, password) => Auth::Basic {
            username: percent_decode(user),
            password: crate::secret::Secret::new(percent_decode(password.unwrap_or(""))),
        },
    };
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    // Both succeed for URLs with a host, checked above.
    let _ = base.set_username("");
    let _ = base.set_password(None);
    Ok((base, auth))
}

fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `None`, empty and `default` all mean the default space, which has no path prefix.
fn normalise_space(space: Option<&str>) -> Result<Option<String>, KibanaError> {
    let Some(space) = space
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "default")
    else {
        return Ok(None);
    };
    let valid = space.len() <= MAX_SPACE_LEN
        && space
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(KibanaError::InvalidSpace(space.to_string()));
    }
    Ok(Some(space.to_string()))
}

/// `kbn-xsrf`, JSON, and the `Authorization` header (marked sensitive, so it is never printed).
fn default_headers(auth: &Auth) -> Result<HeaderMap, KibanaError> {
    let mut headers = HeaderMap::new();
    headers.insert(XSRF_HEADER, XSRF_VALUE);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = authorization(auth)? {
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, KibanaError> {
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::ApiKey(key) => format!("ApiKey {}", key.expose()),
        Auth::Basic { username, password } => {
            let pair = format!("{username}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose()),
    };
    // The error names the problem, never the value.
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        KibanaError::Credentials(
            "the API key or token contains characters not allowed in HTTP headers",
        )
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsSettings;
    use crate::secret::Secret;

    fn settings(url: &str, space: Option<&str>) -> KibanaSettings {
        KibanaSettings {
            url: Url::parse(url).unwrap(),
            space: space.map(str::to_string),
            auth: Auth::None,
            request_timeout: Duration::from_secs(5),
            tls: TlsSettings::default(),
        }
    }

    #[test]
    fn paths_keep_the_base_path_and_add_the_space() {
        let kb = Kibana::new(&settings("https://kb.example:5601/kibana/", Some("ops"))).unwrap();
        let url = kb.url(true, &["api", "actions", "connector", "a/b c"]);
        assert_eq!(
            url.as_str(),
            "https://kb.example:5601/kibana/s/ops/api/actions/connector/a%2Fb%20c"
        );
        let status = kb.url(false, &["api", "status"]);
        assert_eq!(status.as_str(), "https://kb.example:5601/kibana/api/status");
    }

    #[test]
    fn the_default_space_has_no_prefix() {
        for space in [None, Some(""), Some("default")] {
            let kb = Kibana::new(&settings("http://127.0.0.1:5601", space)).unwrap();
            assert_eq!(kb.space(), None);
            let url = kb.url(true, &["api", "actions", "connectors"]);
            assert_eq!(url.as_str(), "http://127.0.0.1:5601/api/actions/connectors");
        }
    }

    #[test]
    fn bad_spaces_are_refused_by_name() {
        let err = Kibana::new(&settings("http://127.0.0.1:5601", Some("Ops Team")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Kibana space 'Ops Team' is not valid"),
            "{err}"
        );
    }

    #[test]
    fn non_http_urls_are_refused() {
        let err = Kibana::new(&settings("ftp://kb.example/", None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'ftp://kb.example/'"), "{err}");
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_the_url() {
        let kb = Kibana::new(&settings("https://elastic:s3cr%40t@kb.example/", None)).unwrap();
        assert_eq!(kb.base_url().as_str(), "https://kb.example/");
        assert!(!format!("{kb:?}").contains("s3cr"));
        let (_, auth) =
            split_base(&Url::parse("https://elastic:s3cr%40t@kb.example/").unwrap()).unwrap();
        let Auth::Basic { username, password } = auth else {
            panic!("expected basic auth");
        };
        assert_eq!(
            (username.as_str(), password.expose()),
            ("elastic", "s3cr@t")
        );
    }

    #[test]
    fn authorization_headers_are_sensitive() {
        let basic = Auth::Basic {
            username: "elastic".into(),
            password: Secret::new("changeme"),
        };
        let value = authorization(&basic).unwrap().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value, "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==");
        let key = authorization(&Auth::ApiKey(Secret::new("a2V5")))
            .unwrap()
            .unwrap();
        assert_eq!(key, "ApiKey a2V5");
        let bearer = authorization(&Auth::Bearer(Secret::new("tok")))
            .unwrap()
            .unwrap();
        assert_eq!(bearer, "Bearer tok");
        assert!(format!("{:?}", default_headers(&basic).unwrap()).contains("Sensitive"));
    }

    #[test]
    fn bad_credentials_are_reported_without_the_value() {
        let err = authorization(&Auth::ApiKey(Secret::new("line\nbreak-secret"))).unwrap_err();
        assert!(!err.to_string().contains("break-secret"));
    }

    #[test]
    fn index_config_shape() {
        assert_eq!(
            index_config("logs", true, Some("@timestamp")),
            json!({"index": "logs", "refresh": true, "executionTimeField": "@timestamp"})
        );
        assert_eq!(
            index_config("logs", false, None)["executionTimeField"],
            Value::Null
        );
    }
}
