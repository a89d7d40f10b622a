//! The `http_api` source against the mock API of tests/support/mock_api.rs: every pagination
//! style, every authentication method (OAuth2 expiry and the one refresh after a 401
//! included), the rate limit and `Retry-After` on paused tokio time, retries of transient
//! answers, errors that name the URL and the status with secrets masked, incremental resume
//! (also after a crash between pages), and syncs through the engine into the embedded backend
//! and the stand-in.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::mock_api::{Fault, MockApi, MockAuth, MockOptions, Paging, RecordedRequest};
use support::{StandIn, StandInOptions};
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{ControlPlane, DocumentStore};
use syncdeck::engine::runner::{Engine, JobEnd, JobReport};
use syncdeck::model::{Configuration, JobType, TriggerMethod};
use syncdeck::secret::MASK;
use syncdeck::sources::{
    self, DataSource, HttpApiFactory, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode,
};
use tokio_util::sync::CancellationToken;

// ---- helpers ------------------------------------------------------------------------------

fn stamp(i: usize) -> String {
    format!("2024-01-01T{:02}:{:02}:00Z", i / 60, i % 60)
}

fn item(i: usize) -> Value {
    json!({"id": format!("item-{i}"), "title": format!("Item {i}"), "updated_at": stamp(i)})
}

fn items(range: std::ops::Range<usize>) -> Vec<Value> {
    range.map(item).collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("item-{i}")).collect()
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The source's settings for `mock`: its items at `/data/items`, quick retries.
fn base(mock: &MockApi) -> Value {
    json!({"url": mock.items_url(), "items_path": "/data/items", "retry_delay_ms": 1, "max_retries": 3})
}

fn config(values: &Value) -> Configuration {
    let mut config = HttpApiFactory.default_configuration();
    for (key, value) in values.as_object().expect("an object of values") {
        config
            .0
            .get_mut(key)
            .unwrap_or_else(|| panic!("no field '{key}'"))
            .value = value.clone();
    }
    config
}

fn source(values: &Value) -> Box<dyn DataSource> {
    let config = config(values);
    HttpApiFactory
        .validate(&config)
        .expect("a valid configuration");
    HttpApiFactory.create(&config).expect("a source")
}

/// What one run yielded.
struct Run {
    ids: Vec<String>,
    checkpoints: Vec<Value>,
    invalid: Vec<String>,
    result: Result<Option<Value>, SourceError>,
}

impl Run {
    fn error(&self) -> String {
        match &self.result {
            Err(e) => e.to_string(),
            Ok(cursor) => panic!("the run succeeded (cursor {cursor:?})"),
        }
    }

    fn cursor(&self) -> Option<Value> {
        match &self.result {
            Ok(cursor) => cursor.clone(),
            Err(e) => panic!("the run failed: {e}"),
        }
    }
}

async fn run(source: &mut dyn DataSource, mode: SyncMode) -> Run {
    let (tx, mut rx) = ItemSender::channel(10_000);
    let drain = async move {
        let mut out = Run {
            ids: Vec::new(),
            checkpoints: Vec::new(),
            invalid: Vec::new(),
            result: Ok(None),
        };
        while let Some(item) = rx.recv().await {
            match item {
                SourceItem::Upsert(doc) => out.ids.push(doc.id),
                SourceItem::Checkpoint(c) => out.checkpoints.push(c),
                SourceItem::Invalid { reason, .. } => out.invalid.push(reason),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    };
    let (result, mut out) = tokio::join!(source.run(mode, tx), drain);
    out.result = result;
    out
}

fn params(requests: &[RecordedRequest], name: &str) -> Vec<Option<String>> {
    requests
        .iter()
        .map(|r| r.param(name).map(str::to_string))
        .collect()
}

fn statuses(requests: &[RecordedRequest]) -> Vec<u16> {
    requests.iter().map(|r| r.status).collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

async fn mock(items: Vec<Value>, paging: Paging, auth: MockAuth) -> MockApi {
    MockApi::start(MockOptions {
        items,
        paging,
        page_size: 10,
        auth,
        ..Default::default()
    })
    .await
}

// ---- pagination ---------------------------------------------------------------------------

#[tokio::test]
async fn every_pagination_style_reads_every_item_once_and_stops_by_itself() {
    let cases = [
        (Paging::None, json!({"pagination": "none"}), 1),
        (
            Paging::NextLinkBody { absolute: false },
            json!({"pagination": "next_link_body", "next_link_path": "/next"}),
            3,
        ),
        // A dotted path works as well as a pointer.
        (
            Paging::NextLinkBody { absolute: true },
            json!({"pagination": "next_link_body", "next_link_path": "next"}),
            3,
        ),
        (Paging::LinkHeader, json!({"pagination": "link_header"}), 3),
        (
            Paging::Cursor,
            json!({"pagination": "cursor", "cursor_path": "/meta/next_cursor", "cursor_param": "cursor"}),
            3,
        ),
        // The counting styles learn of the end from an empty page.
        (
            Paging::PageNumber,
            json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 10}),
            4,
        ),
        (
            Paging::OffsetLimit,
            json!({"pagination": "offset_limit", "limit": 10}),
            4,
        ),
    ];
    for (paging, values, expected_requests) in cases {
        let mock = mock(items(0..25), paging, MockAuth::None).await;
        let out = run(source(&merge(base(&mock), values)).as_mut(), SyncMode::Full).await;
        assert!(out.result.is_ok(), "{paging:?}: {:?}", out.result.err());
        assert_eq!(out.ids, ids(0..25), "{paging:?}");
        let requests = mock.requests();
        assert_eq!(
            requests.len(),
            expected_requests,
            "{paging:?}: {requests:#?}"
        );
        assert!(requests.iter().all(|r| r.status == 200));
        match paging {
            Paging::NextLinkBody { .. } | Paging::LinkHeader => {
                assert_eq!(
                    params(&requests, "page"),
                    [None, Some("2".into()), Some("3".into())]
                );
            }
            Paging::Cursor => assert_eq!(
                params(&requests, "cursor"),
                [None, Some("c10".into()), Some("c20".into())]
            ),
            Paging::PageNumber => {
                assert_eq!(params(&requests, "page"), some(&["1", "2", "3", "4"]));
                assert_eq!(params(&requests, "per_page"), some(&["10"; 4]));
            }
            Paging::OffsetLimit => {
                assert_eq!(params(&requests, "offset"), some(&["0", "10", "20", "25"]));
                assert_eq!(params(&requests, "limit"), some(&["10"; 4]));
            }
            Paging::None => {}
        }
    }
}

#[tokio::test]
async fn page_numbers_can_start_at_zero_without_a_size_parameter() {
    let mock = mock(items(0..25), Paging::PageNumber, MockAuth::None).await;
    // The mock counts from 1, so page 0 is its page 1 again: the point is what is sent.
    let values = json!({"pagination": "page_number", "start_page": 0, "page_size_param": "", "max_pages": 3});
    let out = run(source(&merge(base(&mock), values)).as_mut(), SyncMode::Full).await;
    assert!(out.error().contains("'max_pages'"), "{}", out.error());
    let requests = mock.requests();
    // The fourth request looks whether the API is done after `max_pages`: it is not.
    assert_eq!(params(&requests, "page"), some(&["0", "1", "2", "3"]));
    assert_eq!(params(&requests, "per_page"), [None, None, None, None]);
}

#[tokio::test]
async fn max_pages_fails_a_sync_that_would_read_more_instead_of_looping() {
    let mock = mock(items(0..25), Paging::Cursor, MockAuth::None).await;
    let values =
        json!({"pagination": "cursor", "cursor_path": "/meta/next_cursor", "max_pages": 2});
    let out = run(source(&merge(base(&mock), values)).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains("after 2 pages") && err.contains("'max_pages'"),
        "{err}"
    );
    // The third request only looks whether the API is done: it is not, so nothing of it is
    // yielded and the sync fails.
    assert_eq!(mock.requests().len(), 3);
    assert_eq!(out.ids, ids(0..20), "the pages read were yielded");
}

#[tokio::test]
async fn exactly_max_pages_pages_and_the_final_empty_page_succeed() {
    for (paging, values) in [
        (
            Paging::PageNumber,
            json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 10}),
        ),
        (
            Paging::OffsetLimit,
            json!({"pagination": "offset_limit", "limit": 10}),
        ),
    ] {
        let mock = mock(items(0..20), paging, MockAuth::None).await;
        let values = merge(merge(base(&mock), values), json!({"max_pages": 2}));
        let out = run(source(&values).as_mut(), SyncMode::Full).await;
        assert!(out.result.is_ok(), "{paging:?}: {:?}", out.result.err());
        assert_eq!(out.ids, ids(0..20), "{paging:?}");
        assert_eq!(
            mock.requests().len(),
            3,
            "{paging:?}: two pages and the empty one"
        );
    }
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let mock = mock(Vec::new(), Paging::None, MockAuth::None).await;
    let page = json!({"data": {"items": [item(1)]}, "next": "http://127.0.0.1:9/items?page=2"});
    mock.push_faults([Fault::status(200).body(&page.to_string())]);
    let values =
        json!({"pagination": "next_link_body", "auth": "bearer", "token": "secret-token-1"});
    let out = run(source(&merge(base(&mock), values)).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains("another host") && err.contains("'http://127.0.0.1:9/items?page=2'"),
        "{err}"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_wrong_items_path_fails_instead_of_looking_like_an_empty_api() {
    let mock = mock(items(0..3), Paging::None, MockAuth::None).await;
    let values = merge(base(&mock), json!({"items_path": "/results"}));
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains("'items_path' '/results'") && err.contains(&mock.items_url()),
        "{err}"
    );
    let ping = source(&values).ping().await.unwrap_err().to_string();
    assert!(ping.contains("'/results'"), "{ping}");
    assert!(source(&base(&mock)).ping().await.is_ok());
}

#[tokio::test]
async fn items_that_are_not_objects_or_lack_an_id_are_yielded_as_invalid() {
    let mock = mock(
        vec![
            item(1),
            json!("text"),
            json!({"title": "no id"}),
            json!({"id": null}),
        ],
        Paging::None,
        MockAuth::None,
    )
    .await;
    let out = run(source(&base(&mock)).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ["item-1"]);
    assert_eq!(
        out.invalid,
        [
            "item 2 of page 1: expected a JSON object, found a string",
            "item 3 of page 1: no 'id' field",
            "item 4 of page 1: field 'id' must be a non-empty string or a number",
        ]
    );
}

#[tokio::test]
async fn post_requests_carry_the_body_and_the_configured_headers() {
    let mock = mock(items(0..3), Paging::None, MockAuth::None).await;
    let values = json!({"method": "POST", "request_body": "{\"query\": {\"all\": true}}",
        "headers": "X-Team: search\n\nX-Trace: abc", "secret_headers": "X-Private: hush-hush-1"});
    let out = run(source(&merge(base(&mock), values)).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..3));
    let request = &mock.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        serde_json::from_str::<Value>(&request.body).unwrap(),
        json!({"query": {"all": true}})
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        (request.header("x-team"), request.header("x-trace")),
        (Some("search"), Some("abc"))
    );
    assert_eq!(request.header("x-private"), Some("hush-hush-1"));
}

// ---- authentication -------------------------------------------------------------------------

#[tokio::test]
async fn every_static_credential_method_is_sent_and_a_wrong_one_fails_with_401() {
    let cases = [
        (
            MockAuth::ApiKeyHeader {
                header: "x-api-key".into(),
                key: "hdr-key-123".into(),
            },
            Paging::LinkHeader,
            json!({"pagination": "link_header", "auth": "api_key_header", "api_key_header_name": "X-API-Key", "api_key": "hdr-key-123"}),
            json!({"api_key": "wrong-key-987"}),
        ),
        (
            // The mock's next links repeat the key: it must still be sent exactly once.
            MockAuth::ApiKeyQuery {
                param: "api_key".into(),
                key: "qry-key-123".into(),
            },
            Paging::NextLinkBody { absolute: true },
            json!({"pagination": "next_link_body", "auth": "api_key_query", "api_key_param": "api_key", "api_key": "qry-key-123"}),
            json!({"api_key": "wrong-key-987"}),
        ),
        (
            MockAuth::Basic {
                user: "ann".into(),
                password: "pw-123456".into(),
            },
            Paging::OffsetLimit,
            json!({"pagination": "offset_limit", "limit": 10, "auth": "basic", "username": "ann", "password": "pw-123456"}),
            json!({"password": "wrong-pw-987"}),
        ),
        (
            MockAuth::Bearer {
                token: "bearer-tok-123".into(),
            },
            Paging::Cursor,
            json!({"pagination": "cursor", "cursor_path": "/meta/next_cursor", "auth": "bearer", "token": "bearer-tok-123"}),
            json!({"token": "wrong-tok-987"}),
        ),
    ];
    for (auth, paging, good, wrong) in cases {
        let mock = mock(items(0..15), paging, auth.clone()).await;
        let values = merge(base(&mock), good);
        let out = run(source(&values).as_mut(), SyncMode::Full).await;
        assert!(out.result.is_ok(), "{auth:?}: {:?}", out.result.err());
        assert_eq!(out.ids, ids(0..15), "{auth:?}");
        assert!(
            mock.requests().iter().all(|r| r.status == 200),
            "{auth:?}: {:#?}",
            mock.requests()
        );

        let wrong_value = wrong
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let out = run(source(&merge(values, wrong)).as_mut(), SyncMode::Full).await;
        let err = out.error();
        assert!(
            err.contains("401") && err.contains(&mock.items_url()),
            "{auth:?}: {err}"
        );
        assert!(!err.contains(&wrong_value), "{err}");
        // No renewal for static credentials: one refused request, no retry.
        assert_eq!(
            statuses(&mock.requests())
                .iter()
                .filter(|s| **s == 401)
                .count(),
            1,
            "{auth:?}"
        );
    }
}

#[tokio::test]
async fn a_404_names_the_url_and_the_status_with_the_api_key_masked() {
    let mock = mock(
        items(0..3),
        Paging::None,
        MockAuth::ApiKeyQuery {
            param: "key".into(),
            key: "sekrit-key-123".into(),
        },
    )
    .await;
    mock.push_faults([
        Fault::status(404).body("{\"error\": \"no such thing for key sekrit-key-123\"}")
    ]);
    let values = merge(
        base(&mock),
        json!({"url": format!("{}?q=books", mock.items_url()), "auth": "api_key_query", "api_key_param": "key", "api_key": "sekrit-key-123"}),
    );
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains(&format!(
            "GET {}?q=books&key={MASK} answered 404 Not Found",
            mock.items_url()
        )),
        "{err}"
    );
    assert!(
        err.contains("no such thing for key"),
        "the body says why: {err}"
    );
    assert!(!err.contains("sekrit"), "{err}");
    assert_eq!(mock.requests().len(), 1, "a 404 is not retried");
    assert_eq!(mock.requests()[0].param("key"), Some("sekrit-key-123"));
}

fn oauth(expires_in: u64) -> MockAuth {
    MockAuth::OAuth2 {
        client_id: "app-1".into(),
        client_secret: "client-secret-1".into(),
        expires_in,
    }
}

fn oauth_values(mock: &MockApi) -> Value {
    merge(
        base(mock),
        json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 10, "auth": "oauth2_client_credentials",
            "token_url": mock.token_url(), "client_id": "app-1", "client_secret": "client-secret-1", "scope": "read"}),
    )
}

fn bearer(r: &RecordedRequest) -> String {
    r.header("authorization").unwrap_or_default().to_string()
}

#[tokio::test]
async fn an_oauth2_token_is_fetched_once_and_reused_while_fresh() {
    let mock = mock(items(0..25), Paging::PageNumber, oauth(3600)).await;
    let out = run(source(&oauth_values(&mock)).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..25));
    let tokens = mock.token_requests();
    assert_eq!(tokens.len(), 1);
    let form = &tokens[0];
    assert_eq!(
        (
            form.param("grant_type"),
            form.param("client_id"),
            form.param("client_secret"),
            form.param("scope")
        ),
        (
            Some("client_credentials"),
            Some("app-1"),
            Some("client-secret-1"),
            Some("read")
        )
    );
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.status == 200 && bearer(r) == "Bearer tok-1")
    );
}

// Paused time: each page takes 4 s, a token lives 10 s. Whatever the clock does, no request
// may reach the API with an expired token: the source renews before expiry, not after a 401.
#[tokio::test(start_paused = true)]
async fn an_oauth2_token_is_renewed_before_it_expires() {
    let mock = MockApi::start(MockOptions {
        items: items(0..50),
        paging: Paging::PageNumber,
        page_size: 10,
        auth: oauth(10),
        latency: Duration::from_secs(4),
        ..Default::default()
    })
    .await;
    let values = merge(oauth_values(&mock), json!({"timeout_seconds": 0}));
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..50));
    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "{:?}",
        statuses(&requests)
    );
    let tokens = mock.token_requests();
    assert!(tokens.len() >= 2, "{} token requests", tokens.len());
    let span = requests.last().unwrap().at - tokens[0].at;
    assert!(
        span > Duration::from_secs(10),
        "the sync outlived the first token ({span:?})"
    );
    let used: BTreeSet<String> = requests.iter().map(bearer).collect();
    assert!(used.len() >= 2, "{used:?}");
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once_and_goes_on() {
    let mock = mock(items(0..15), Paging::PageNumber, oauth(3600)).await;
    let mut src = source(&oauth_values(&mock));
    assert_eq!(run(src.as_mut(), SyncMode::Full).await.ids, ids(0..15));
    mock.revoke_tokens();
    mock.clear_requests();
    // The same source still holds tok-1, which the server now refuses.
    let out = run(src.as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..15));
    let requests = mock.requests();
    assert_eq!(statuses(&requests), [401, 200, 200, 200]);
    assert_eq!(bearer(&requests[0]), "Bearer tok-1");
    assert!(requests[1..].iter().all(|r| bearer(r) == "Bearer tok-2"));
    assert_eq!(mock.token_requests().len(), 1);
}

#[tokio::test]
async fn a_second_401_fails_the_sync_after_exactly_one_renewal() {
    let mock = mock(items(0..15), Paging::PageNumber, oauth(3600)).await;
    mock.reject_all_tokens(true);
    let out = run(source(&oauth_values(&mock)).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(err.contains("401"), "{err}");
    assert_eq!(statuses(&mock.requests()), [401, 401]);
    assert_eq!(mock.token_requests().len(), 2);
}

#[tokio::test]
async fn a_refused_client_secret_names_the_token_endpoint_not_the_secret() {
    let mock = mock(items(0..3), Paging::None, oauth(3600)).await;
    let values = merge(
        oauth_values(&mock),
        json!({"client_secret": "wrong-secret-987"}),
    );
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains(&mock.token_url()) && err.contains("401") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("wrong-secret"), "{err}");
    assert!(mock.requests().is_empty(), "no API request without a token");
}

// ---- rate limits and retries ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn requests_per_second_spaces_requests_on_tokio_time() {
    let mock = mock(items(0..25), Paging::PageNumber, MockAuth::None).await;
    let values = merge(
        base(&mock),
        json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 5, "requests_per_second": 2, "timeout_seconds": 0}),
    );
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..25));
    let requests = mock.requests();
    assert_eq!(requests.len(), 6);
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(500),
            "{gap:?} between two requests at 2 per second"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_as_long_as_retry_after_says_in_seconds_or_as_a_date() {
    let in_20s = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
    for (retry_after, at_least) in [("7", 7), (in_20s.as_str(), 15)] {
        let mock = mock(items(0..5), Paging::None, MockAuth::None).await;
        mock.push_faults([Fault::status(429).header("Retry-After", retry_after)]);
        let values = merge(base(&mock), json!({"timeout_seconds": 0}));
        let out = run(source(&values).as_mut(), SyncMode::Full).await;
        assert_eq!(out.ids, ids(0..5));
        let requests = mock.requests();
        assert_eq!(statuses(&requests), [429, 200]);
        let gap = requests[1].at - requests[0].at;
        // The backoff alone would wait milliseconds.
        assert!(
            gap >= Duration::from_secs(at_least),
            "waited {gap:?} for Retry-After '{retry_after}'"
        );
    }
}

#[tokio::test]
async fn transient_503s_are_retried_until_the_api_recovers() {
    let mock = mock(items(0..15), Paging::PageNumber, MockAuth::None).await;
    mock.push_faults([Fault::status(503), Fault::status(503)]);
    let values = merge(
        base(&mock),
        json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 10}),
    );
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    assert_eq!(out.ids, ids(0..15));
    let requests = mock.requests();
    assert_eq!(statuses(&requests), [503, 503, 200, 200, 200]);
    assert_eq!(
        params(&requests[..3], "page"),
        some(&["1", "1", "1"]),
        "the same page again"
    );
}

#[tokio::test]
async fn a_503_that_lasts_fails_after_max_retries() {
    let mock = mock(items(0..15), Paging::None, MockAuth::None).await;
    mock.push_faults((0..10).map(|_| Fault::status(503)));
    let values = merge(base(&mock), json!({"max_retries": 2}));
    let out = run(source(&values).as_mut(), SyncMode::Full).await;
    let err = out.error();
    assert!(
        err.contains("503")
            && err.contains("gave up after 2 retries")
            && err.contains(&mock.items_url()),
        "{err}"
    );
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn ping_makes_one_authenticated_request_and_reports_the_status() {
    let mock = mock(
        items(0..3),
        Paging::None,
        MockAuth::Bearer {
            token: "ping-token-1".into(),
        },
    )
    .await;
    let values = merge(
        base(&mock),
        json!({"auth": "bearer", "token": "ping-token-1"}),
    );
    source(&values).ping().await.expect("reachable");
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(bearer(&mock.requests()[0]), "Bearer ping-token-1");
    mock.clear_requests();
    mock.push_faults([Fault::status(503)]);
    let err = source(&values).ping().await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(mock.requests().len(), 1, "ping does not retry");
}

// ---- incremental ----------------------------------------------------------------------------

fn incremental_mock_options(items: Vec<Value>) -> MockOptions {
    MockOptions {
        items,
        paging: Paging::PageNumber,
        page_size: 10,
        since: Some(("updated_since".into(), "updated_at".into())),
        ..Default::default()
    }
}

fn incremental_values(mock: &MockApi) -> Value {
    merge(
        base(mock),
        json!({"pagination": "page_number", "page_size_param": "per_page", "page_size": 10, "cursor_field": "updated_at", "cursor_query_param": "updated_since"}),
    )
}

fn cursor_at(i: usize) -> Value {
    json!({"field": "updated_at", "value": stamp(i)})
}

#[tokio::test]
async fn an_incremental_sync_asks_only_for_items_after_the_saved_cursor() {
    let mock = MockApi::start(incremental_mock_options(items(0..25))).await;
    let values = incremental_values(&mock);
    let full = run(source(&values).as_mut(), SyncMode::Full).await;
    assert_eq!(full.ids, ids(0..25));
    assert_eq!(
        full.checkpoints,
        [cursor_at(9), cursor_at(19), cursor_at(24)],
        "one per page with items"
    );
    assert_eq!(full.cursor(), Some(cursor_at(24)));
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.param("updated_since").is_none()),
        "a full sync reads everything"
    );

    mock.add_items(items(25..30));
    mock.clear_requests();
    let next = run(
        source(&values).as_mut(),
        SyncMode::Incremental {
            cursor: Some(cursor_at(24)),
        },
    )
    .await;
    assert_eq!(next.ids, ids(25..30));
    assert_eq!(next.cursor(), Some(cursor_at(29)));
    let requests = mock.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.param("updated_since") == Some(stamp(24).as_str())),
        "{requests:#?}"
    );

    // Nothing new: the cursor stays where it was.
    let idle = run(
        source(&values).as_mut(),
        SyncMode::Incremental {
            cursor: Some(cursor_at(29)),
        },
    )
    .await;
    assert!(idle.ids.is_empty());
    assert_eq!(idle.cursor(), Some(cursor_at(29)));

    // A bare value is accepted; a cursor saved for another field is not used.
    let bare = run(
        source(&values).as_mut(),
        SyncMode::Incremental {
            cursor: Some(json!(stamp(27))),
        },
    )
    .await;
    assert_eq!(bare.ids, ids(28..30));
    let other = json!({"field": "created_at", "value": stamp(27)});
    let all = run(
        source(&values).as_mut(),
        SyncMode::Incremental {
            cursor: Some(other),
        },
    )
    .await;
    assert_eq!(all.ids, ids(0..30));
}

#[tokio::test]
async fn an_incremental_sync_resumes_after_the_last_checkpoint_of_a_crashed_run() {
    let mock = MockApi::start(incremental_mock_options(items(0..50))).await;
    let values = incremental_values(&mock);
    let mut first = source(&values);
    let (tx, mut rx) = ItemSender::channel(1);
    let task =
        tokio::spawn(async move { first.run(SyncMode::Incremental { cursor: None }, tx).await });
    let mut seen = Vec::new();
    let mut checkpoints = Vec::new();
    while let Some(item) = rx.recv().await {
        match item {
            SourceItem::Upsert(doc) => seen.push(doc.id),
            SourceItem::Checkpoint(c) => {
                checkpoints.push(c);
                if checkpoints.len() == 2 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The crash: the engine is gone after page 2.
    drop(rx);
    assert!(matches!(task.await.unwrap(), Err(SourceError::Stopped)));
    assert_eq!(seen, ids(0..20));
    let last = checkpoints.pop().unwrap();
    assert_eq!(last, cursor_at(19));
    let first_run = mock.requests();
    assert!(
        first_run.len() <= 3,
        "the source stopped promptly: {} requests",
        first_run.len()
    );

    mock.clear_requests();
    let resumed = run(
        source(&values).as_mut(),
        SyncMode::Incremental { cursor: Some(last) },
    )
    .await;
    assert_eq!(resumed.ids, ids(20..50));
    assert_eq!(resumed.cursor(), Some(cursor_at(49)));
    let requests = mock.requests();
    let served: BTreeSet<String> = requests.iter().flat_map(|r| r.served.clone()).collect();
    let done: BTreeSet<String> = ids(0..20).into_iter().collect();
    assert!(
        served.is_disjoint(&done),
        "pages 1 and 2 were read again: {served:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.param("updated_since") == Some(stamp(19).as_str()))
    );
}

// ---- through the engine -----------------------------------------------------------------------

async fn run_job(engine: &Engine, connector: &str, job_type: JobType) -> JobReport {
    let control = &engine.deps().control;
    let job = control
        .create_sync_job(connector, job_type, TriggerMethod::OnDemand)
        .await
        .expect("create job");
    engine
        .run_job(&job, &CancellationToken::new())
        .await
        .expect("run job")
}

fn api_items() -> Vec<Value> {
    let mut all = items(0..30);
    // Dead-lettered as `source_invalid`, the sync goes on.
    all.insert(
        7,
        json!({"title": "an item without an id", "updated_at": stamp(7)}),
    );
    all
}

/// A full sync, then (when `incremental`) an incremental one that asks only for new items.
async fn engine_sync(
    control: &dyn ControlPlane,
    store: &dyn DocumentStore,
    engine: &Engine,
    mock: &MockApi,
    incremental: bool,
) {
    let values = merge(
        incremental_values(mock),
        json!({"timestamp_field": "updated_at"}),
    );
    let id = create_connector(control, "api", "api-items", &HttpApiFactory, values).await;

    let report = run_job(engine, &id, JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let c = report.counters;
    assert_eq!((c.seen, c.indexed, c.dead_lettered), (31, 30, 1), "{c:?}");
    let expected: BTreeSet<String> = ids(0..30).into_iter().collect();
    assert_eq!(store_ids(store, "api-items").await, expected);
    let connector = control.get_connector(&id).await.unwrap();
    assert_eq!(connector.sync_cursor, Some(cursor_at(29)));
    if !incremental {
        return;
    }

    mock.add_items(items(30..35));
    mock.clear_requests();
    let report = run_job(engine, &id, JobType::Incremental).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 5);
    // The first request is the engine's ping, which knows no cursor.
    let requests = mock.requests();
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.param("updated_since") == Some(stamp(29).as_str())),
        "{requests:#?}"
    );
    let expected: BTreeSet<String> = ids(0..35).into_iter().collect();
    assert_eq!(store_ids(store, "api-items").await, expected);
    let connector = control.get_connector(&id).await.unwrap();
    assert_eq!(connector.sync_cursor, Some(cursor_at(34)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_syncs_the_api_into_the_embedded_backend() {
    let mock = MockApi::start(MockOptions {
        items: api_items(),
        ..incremental_mock_options(Vec::new())
    })
    .await;
    let backend = EmbeddedBackend::open_in_memory().expect("embedded backend");
    let dlq = memory_dlq();
    let engine = engine(
        Arc::new(backend.clone()),
        Arc::new(backend.clone()),
        dlq.clone(),
        sources::builtin(),
        "w1",
    );
    engine_sync(&backend, &backend, &engine, &mock, true).await;
    let stored = backend
        .get_document("api-items", "item-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored["title"].as_str(), stored["_timestamp"].as_str()),
        (Some("Item 3"), Some(stamp(3).as_str()))
    );
    let letters = dead_letters(&dlq);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error_type, "source_invalid");
    assert!(
        letters[0].reason.contains("no 'id' field"),
        "{}",
        letters[0].reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_syncs_the_api_into_the_stand_in() {
    let standin = StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await;
    let mock = MockApi::start(MockOptions {
        items: api_items(),
        ..incremental_mock_options(Vec::new())
    })
    .await;
    let es = es_backend(&standin.es_urls());
    let dlq = memory_dlq();
    let engine = engine(
        es.clone(),
        es.clone(),
        dlq.clone(),
        sources::builtin(),
        "w1",
    );
    // Not the incremental part: Elasticsearch leaves the job's `connector.sync_cursor` empty
    // (`_claim` brings it) and the runner reads the cursor from the job, so an incremental job
    // on Elasticsearch starts without it (see the report of this change).
    engine_sync(es.as_ref(), es.as_ref(), &engine, &mock, false).await;
    let docs = standin.index_docs("api-items");
    let (_, doc) = docs
        .iter()
        .find(|(id, _)| id == "item-3")
        .expect("item-3 in the stand-in");
    assert_eq!(doc["title"], "Item 3");
    assert_eq!(dead_letters(&dlq).len(), 1);
}
