//! The Elasticsearch transport against the stand-in cluster: round-robin, failover, dead-node
//! backoff and resurrection, retry limits, 429 backoff, never-retried statuses, auth, media
//! types, the product check, sniffing, gzip, broken and unreadable answers, answer size
//! bounds, waiting on a dead cluster without flooding the log, and timeouts. Assertions count
//! requests (the stand-in's log) and read the pool snapshot; none depends on timing.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;
use support::{NodeDownMode, StandIn, StandInAuth, StandInOptions};
use syncdeck::config::{Auth, EsSettings};
use syncdeck::elastic::{Elasticsearch, Error, Transport};
use syncdeck::model::NewConnector;
use syncdeck::secret::Secret;

async fn standin(nodes: usize) -> StandIn {
    standin_with(nodes, StandInAuth::None).await
}

async fn standin_with(nodes: usize, auth: StandInAuth) -> StandIn {
    StandIn::start(StandInOptions {
        nodes,
        auth,
        kibana: false,
        ..Default::default()
    })
    .await
}

/// Settings for these URLs: dead nodes stay dead for a minute unless a test says otherwise,
/// so "not tried again" does not depend on how fast the test runs.
fn settings(urls: &[String]) -> EsSettings {
    let mut s = EsSettings::new(urls.iter().map(|u| u.parse().unwrap()).collect());
    s.request_timeout = Duration::from_secs(5);
    s.dead_backoff_base = Duration::from_secs(60);
    s.dead_backoff_max = Duration::from_secs(120);
    s
}

fn client(s: &EsSettings) -> Elasticsearch {
    let transport = Transport::builder(s)
        .throttle_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build();
    Elasticsearch::from_transport(transport.unwrap())
}

/// The node index of every logged request, in order.
fn nodes_hit(standin: &StandIn) -> Vec<usize> {
    standin.requests().iter().map(|r| r.node).collect()
}

/// The stand-in node name answering `GET /` ("standin-N") → N.
async fn info_node(es: &Elasticsearch) -> usize {
    let info = es.cluster().info().await.unwrap();
    info.name.trim_start_matches("standin-").parse().unwrap()
}

#[tokio::test]
async fn round_robin_spreads_requests_over_every_node() {
    let standin = standin(3).await;
    let es = client(&settings(&standin.es_urls()));
    for _ in 0..6 {
        es.cluster().info().await.unwrap();
    }
    assert_eq!(nodes_hit(&standin), [0, 1, 2, 0, 1, 2]);
}

#[tokio::test]
async fn a_refusing_node_fails_over_and_is_not_tried_again_before_its_time() {
    let standin = standin(3).await;
    let es = client(&settings(&standin.es_urls()));
    standin.faults().node_down(1, NodeDownMode::Refuse);
    for _ in 0..9 {
        es.cluster().info().await.unwrap();
    }
    assert_eq!(standin.requests().len(), 9, "every request answered once");
    assert!(!nodes_hit(&standin).contains(&1));
    let pool = es.pool_snapshot();
    assert!(pool[0].alive && pool[2].alive);
    assert!(!pool[1].alive, "{pool:?}");
    assert_eq!(pool[1].failures, 1, "the dead node was tried exactly once");
    assert!(pool[1].dead_until.is_some());
}

#[tokio::test]
async fn a_node_dropping_connections_fails_over() {
    let standin = standin(3).await;
    let es = client(&settings(&standin.es_urls()));
    es.cluster().info().await.unwrap(); // warm a pooled connection to node 0
    standin.faults().node_down(0, NodeDownMode::Drop);
    standin.clear_requests();
    for _ in 0..6 {
        es.cluster().info().await.unwrap();
    }
    assert!(!nodes_hit(&standin).contains(&0));
    let pool = es.pool_snapshot();
    assert!(!pool[0].alive);
    assert_eq!(pool[0].failures, 1);
}

#[tokio::test]
async fn a_dead_node_comes_back_after_its_backoff_and_a_success_resets_it() {
    let standin = standin(3).await;
    let mut s = settings(&standin.es_urls());
    s.dead_backoff_base = Duration::from_millis(50);
    let es = client(&s);
    standin.faults().node_down(1, NodeDownMode::Refuse);
    for _ in 0..3 {
        es.cluster().info().await.unwrap();
    }
    assert_eq!(es.pool_snapshot()[1].failures, 1);
    standin.faults().node_up(1);
    // Wait (bounded) until the 50 ms are over; the pool then counts the node alive again.
    for _ in 0..100 {
        if es.pool_snapshot()[1].alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(es.pool_snapshot()[1].alive, "lazily resurrected");
    assert_eq!(
        es.pool_snapshot()[1].failures,
        1,
        "failures stay until a success"
    );
    standin.clear_requests();
    let mut answered = Vec::new();
    for _ in 0..3 {
        answered.push(info_node(&es).await);
    }
    assert!(answered.contains(&1), "{answered:?}");
    assert_eq!(
        es.pool_snapshot()[1].failures,
        0,
        "a success resets the failure count"
    );
}

#[tokio::test]
async fn when_every_node_is_dead_the_soonest_is_forced_back() {
    let standin = standin(2).await;
    let mut s = settings(&standin.es_urls());
    s.max_retries = 1;
    let es = client(&s);
    standin.faults().node_down(0, NodeDownMode::Refuse);
    standin.faults().node_down(1, NodeDownMode::Refuse);
    let err = es.cluster().info().await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(es.pool_snapshot().iter().all(|n| !n.alive));
    standin.faults().node_up(0);
    standin.faults().node_up(1);
    // Both are dead for a minute; without forcing one back this would fail.
    es.cluster().info().await.unwrap();
    let pool = es.pool_snapshot();
    assert_eq!(pool.iter().filter(|n| n.alive).count(), 1, "{pool:?}");
    assert_eq!(pool.iter().filter(|n| n.failures == 0).count(), 1);
}

#[tokio::test]
async fn retries_stop_after_max_retries() {
    let standin = standin(3).await;
    let mut s = settings(&standin.es_urls());
    s.max_retries = 2;
    let es = client(&s);
    standin.faults().fail_requests(None, vec![503; 10]);
    let err = es.cluster().info().await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(
        nodes_hit(&standin),
        [0, 1, 2],
        "one request per node, then stop"
    );
}

#[tokio::test]
async fn bad_gateway_unavailable_and_gateway_timeout_go_to_another_node() {
    let standin = standin(3).await;
    // Every node fails once, so the fourth attempt waits for the first to rest its backoff.
    let mut s = settings(&standin.es_urls());
    s.dead_backoff_base = Duration::from_millis(50);
    let es = client(&s);
    standin.faults().fail_requests(None, vec![502, 503, 504]);
    es.cluster().info().await.unwrap();
    let hit = nodes_hit(&standin);
    assert_eq!(hit.len(), 4);
    assert_eq!(hit[..3], [0, 1, 2], "each failure moved on to another node");
    assert!(
        es.pool_snapshot()
            .iter()
            .filter(|n| n.failures == 1)
            .count()
            >= 2
    );
}

#[tokio::test]
async fn too_many_requests_is_retried_without_marking_the_node_dead() {
    let standin = standin(2).await;
    let es = client(&settings(&standin.es_urls()));
    standin.faults().fail_requests(None, vec![429, 429]);
    es.cluster().info().await.unwrap();
    assert_eq!(standin.requests().len(), 3);
    assert!(
        es.pool_snapshot()
            .iter()
            .all(|n| n.alive && n.failures == 0)
    );

    let mut s = settings(&standin.es_urls());
    s.max_retries = 2;
    let es = client(&s);
    standin.clear_requests();
    standin.faults().fail_requests(None, vec![429; 10]);
    let err = es.cluster().info().await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.kind(), Some("es_rejected_execution_exception"));
    assert_eq!(standin.requests().len(), 3);
    assert!(es.pool_snapshot().iter().all(|n| n.alive));
}

#[tokio::test]
async fn client_errors_are_never_retried_and_keep_type_and_reason() {
    let standin = standin(3).await;
    let es = client(&settings(&standin.es_urls()));
    let expected = [
        (400, "illegal_argument_exception"),
        (401, "security_exception"),
        (403, "security_exception"),
        (404, "resource_not_found_exception"),
        (409, "version_conflict_engine_exception"),
    ];
    for (status, kind) in expected {
        standin.clear_requests();
        standin.faults().fail_requests(None, vec![status]);
        let err = es.cluster().info().await.unwrap_err();
        let Error::Api {
            status: got,
            kind: got_kind,
            reason,
            root_causes,
        } = &err
        else {
            panic!("{status}: {err:?}");
        };
        assert_eq!((*got, got_kind.as_str()), (status, kind));
        assert!(reason.contains("injected fault"), "{reason}");
        assert!(!root_causes.is_empty());
        assert_eq!(standin.requests().len(), 1, "{status} was retried");
    }
    assert!(
        es.pool_snapshot()
            .iter()
            .all(|n| n.alive && n.failures == 0)
    );
}

#[tokio::test]
async fn api_key_basic_and_bearer_are_accepted() {
    let cases = [
        (
            StandInAuth::ApiKey("aWQ6a2V5".into()),
            Auth::ApiKey(Secret::new("aWQ6a2V5")),
            "ApiKey aWQ6a2V5",
        ),
        (
            StandInAuth::Basic {
                user: "elastic".into(),
                password: "changeme".into(),
            },
            Auth::Basic {
                username: "elastic".into(),
                password: Secret::new("changeme"),
            },
            "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==",
        ),
        (
            StandInAuth::Bearer("tok-123".into()),
            Auth::Bearer(Secret::new("tok-123")),
            "Bearer tok-123",
        ),
    ];
    for (required, auth, header) in cases {
        let standin = standin_with(1, required).await;
        let mut s = settings(&standin.es_urls());
        s.auth = auth;
        client(&s).cluster().info().await.unwrap();
        assert_eq!(standin.requests()[0].header("authorization"), Some(header));
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_surface_a_security_exception_once() {
    let standin = standin_with(2, StandInAuth::ApiKey("right".into())).await;
    for auth in [Auth::None, Auth::ApiKey(Secret::new("wrong"))] {
        standin.clear_requests();
        let mut s = settings(&standin.es_urls());
        s.auth = auth;
        let err = client(&s).cluster().info().await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.kind(), Some("security_exception"));
        assert!(
            !err.to_string().contains("wrong"),
            "the credential leaked: {err}"
        );
        assert_eq!(standin.requests().len(), 1);
    }
}

#[tokio::test]
async fn credentials_in_the_node_url_become_basic_auth_and_leave_the_url() {
    let standin = standin_with(
        1,
        StandInAuth::Basic {
            user: "u".into(),
            password: "p@ss".into(),
        },
    )
    .await;
    let url = standin.es_urls()[0].replace("http://", "http://u:p%40ss@");
    let es = client(&settings(&[url]));
    es.cluster().info().await.unwrap();
    assert!(
        es.pool_snapshot()
            .iter()
            .all(|n| !n.url.contains("p%40ss") && !n.url.contains('@'))
    );
}

#[tokio::test]
async fn vendored_media_types_follow_compatible_with() {
    for version in [8u8, 9] {
        let standin = standin(1).await;
        let mut s = settings(&standin.es_urls());
        s.compatible_with = version;
        let es = client(&s);
        es.cluster().info().await.unwrap();
        let new = NewConnector {
            id: Some("c1".into()),
            name: Some("n".into()),
            ..Default::default()
        };
        es.connectors().create(&new).await.unwrap();
        let bulk = syncdeck::backend::BulkRequest {
            index: "docs".into(),
            body: b"{\"index\":{\"_id\":\"1\"}}\n{\"a\":1}\n".to_vec().into(),
            actions: 1,
            ..Default::default()
        };
        es.documents().bulk(&bulk).await.unwrap();
        let log = standin.requests();
        let json = format!("application/vnd.elasticsearch+json; compatible-with={version}");
        let ndjson = format!("application/vnd.elasticsearch+x-ndjson; compatible-with={version}");
        assert!(
            log.iter()
                .all(|r| r.header("accept") == Some(json.as_str()))
        );
        assert_eq!(
            log[0].header("content-type"),
            None,
            "no body, no content type"
        );
        assert_eq!(log[1].header("content-type"), Some(json.as_str()));
        assert_eq!(log[2].header("content-type"), Some(ndjson.as_str()));
        assert!(
            log[0]
                .header("user-agent")
                .unwrap()
                .starts_with("syncdeck/")
        );
    }
}

/// A one-route HTTP server answering `GET /` with `product` as X-Elastic-Product.
async fn fake_node(product: Option<&'static str>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move {
            let mut response =
                axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({
                    "name": "n", "cluster_name": "c", "version": {"number": "9.1.0"}
                })));
            if let Some(product) = product {
                response
                    .headers_mut()
                    .insert("x-elastic-product", product.parse().unwrap());
            }
            response
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

#[tokio::test]
async fn a_missing_or_wrong_product_header_is_an_error() {
    for (product, found) in [(None, "missing"), (Some("OpenSearch"), "'OpenSearch'")] {
        let (addr, server) = fake_node(product).await;
        let es = client(&settings(&[format!("http://{addr}")]));
        let err = es.cluster().info().await.unwrap_err();
        let Error::Product { found: got, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(got, found);
        server.abort();
    }
    let (addr, server) = fake_node(Some("Elasticsearch")).await;
    client(&settings(&[format!("http://{addr}")]))
        .cluster()
        .info()
        .await
        .unwrap();
    server.abort();
}

#[tokio::test]
async fn sniffing_on_start_finds_every_node_from_one_seed() {
    let standin = standin(3).await;
    let mut s = settings(&standin.es_urls()[..1]);
    s.sniff.on_start = true;
    let es = client(&s);
    assert_eq!(es.pool_snapshot().len(), 1);
    es.cluster().info().await.unwrap();
    assert_eq!(standin.requests()[0].path, "/_nodes/_all/http");
    let mut urls: Vec<String> = es.pool_snapshot().into_iter().map(|n| n.url).collect();
    urls.sort();
    let mut expected = standin.es_urls();
    expected.sort();
    assert_eq!(urls, expected);
    standin.clear_requests();
    for _ in 0..3 {
        es.cluster().info().await.unwrap();
    }
    let mut hit = nodes_hit(&standin);
    hit.sort();
    assert_eq!(hit, [0, 1, 2], "no second sniff, and all nodes in use");
}

#[tokio::test]
async fn sniffing_on_node_failure_replaces_the_dead_node() {
    let standin = standin(3).await;
    let mut s = settings(&standin.es_urls()[..2]);
    s.sniff.on_node_failure = true;
    let es = client(&s);
    standin.faults().node_down(1, NodeDownMode::Refuse);
    for _ in 0..4 {
        es.cluster().info().await.unwrap();
    }
    let log = standin.requests();
    assert!(
        log.iter().any(|r| r.path == "/_nodes/_all/http"),
        "sniffed after the failure"
    );
    assert!(
        nodes_hit(&standin).contains(&2),
        "the sniffed node 2 took over"
    );
    let urls: Vec<String> = es.pool_snapshot().into_iter().map(|n| n.url).collect();
    assert!(
        !urls.contains(&standin.es_urls()[1]),
        "node 1 is not published while down: {urls:?}"
    );
}

#[tokio::test]
async fn sniffing_on_interval_happens_before_a_request_once_due() {
    let standin = standin(3).await;
    let mut s = settings(&standin.es_urls()[..1]);
    s.sniff.interval = Some(Duration::from_millis(30));
    let es = client(&s);
    es.cluster().info().await.unwrap();
    let sniffs = |standin: &StandIn| {
        standin
            .requests()
            .iter()
            .filter(|r| r.path == "/_nodes/_all/http")
            .count()
    };
    assert_eq!(sniffs(&standin), 0, "not due yet");
    tokio::time::sleep(Duration::from_millis(60)).await;
    es.cluster().info().await.unwrap();
    assert_eq!(sniffs(&standin), 1);
    assert_eq!(es.pool_snapshot().len(), 3);
}

#[tokio::test]
async fn a_failed_sniff_keeps_the_pool() {
    let standin = standin(2).await;
    let mut s = settings(&standin.es_urls());
    s.sniff.on_start = true;
    let es = client(&s);
    standin.faults().fail_requests(None, vec![500, 500]);
    // Both nodes answer the sniff with 500; the request itself then succeeds.
    es.cluster().info().await.unwrap();
    assert_eq!(es.pool_snapshot().len(), 2);
    let err = es.transport().sniff().await;
    assert!(
        err.is_ok(),
        "an explicit sniff works once the faults are used up: {err:?}"
    );
}

#[tokio::test]
async fn gzip_request_bodies_are_accepted() {
    let standin = standin(1).await;
    let mut s = settings(&standin.es_urls());
    s.gzip = true;
    let es = client(&s);
    let new = NewConnector {
        id: Some("gz".into()),
        name: Some("Zipped".into()),
        ..Default::default()
    };
    es.connectors().create(&new).await.unwrap();
    let log = standin.requests();
    assert_eq!(log[0].header("content-encoding"), Some("gzip"));
    assert_eq!(standin.connector("gz").unwrap()["name"], "Zipped");
    // Large answers come back gzipped (the stand-in compresses over 1 KiB) and are read.
    let big = "x".repeat(4096);
    es.connectors()
        .update_name("gz", Some(&big), None)
        .await
        .unwrap();
    assert_eq!(es.connectors().get("gz").await.unwrap().name, big);
    let asked = |log: &[support::RequestRecord]| {
        log.last()
            .and_then(|r| r.header("accept-encoding").map(str::to_string))
    };
    assert!(asked(&standin.requests()).is_some_and(|v| v.contains("gzip")));

    // Off (the default), answers are not asked to be compressed.
    s.gzip = false;
    let plain = client(&s);
    plain.connectors().get("gz").await.unwrap();
    assert_eq!(asked(&standin.requests()), None);
}

#[tokio::test]
async fn a_truncated_answer_counts_as_a_broken_connection_and_is_retried() {
    let standin = standin(2).await;
    let es = client(&settings(&standin.es_urls()));
    standin.faults().truncate_next(1);
    assert_eq!(info_node(&es).await, 1, "answered by the other node");
    assert_eq!(nodes_hit(&standin), [0, 1]);
    assert!(!es.pool_snapshot()[0].alive);

    // With no retry left the error says what happened. (Where the cut lands, in the body or
    // before the status line, is up to the network, hence the two possible variants.)
    let mut s = settings(&standin.es_urls()[..1]);
    s.max_retries = 0;
    let es = client(&s);
    standin.clear_requests();
    standin.faults().truncate_next(1);
    let err = es.cluster().info().await.unwrap_err();
    match &err {
        Error::Decode { url_path, reason } => {
            assert_eq!(url_path, "/");
            assert!(reason.contains("cut short"), "{reason}");
        }
        Error::Unreachable { attempts: 1, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn an_unreadable_answer_to_a_read_is_retried_and_to_a_write_is_a_decode_error() {
    let standin = standin(2).await;
    let es = client(&settings(&standin.es_urls()));
    // A read: asked again (here of the other node), and answered.
    standin.faults().malformed_next(1);
    es.cluster().health().await.unwrap();
    assert_eq!(standin.requests().len(), 2);

    // Every read garbled: retried up to max_retries, then the error names the path.
    standin.clear_requests();
    standin.faults().read_fault_ratio(1.0);
    let err = es.cluster().health().await.unwrap_err();
    standin.faults().read_fault_ratio(0.0);
    let Error::Decode { url_path, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(url_path, "/_cluster/health");
    assert!(reason.contains("unexpected JSON"), "{reason}");
    assert_eq!(standin.requests().len(), 4, "1 + max_retries (3)");

    // A write is never sent twice for an unreadable answer: it may have taken effect.
    standin.clear_requests();
    standin.faults().malformed_next(1);
    let new = NewConnector {
        id: Some("w1".into()),
        name: Some("n".into()),
        ..Default::default()
    };
    let err = es.connectors().create(&new).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn an_answer_over_max_response_bytes_is_refused_unread_and_not_retried() {
    let standin = standin(2).await;
    let es = client(&settings(&standin.es_urls()));
    let new = NewConnector {
        id: Some("big".into()),
        name: Some("x".repeat(100_000)),
        ..Default::default()
    };
    es.connectors().create(&new).await.unwrap();
    let mut s = settings(&standin.es_urls());
    s.max_response_bytes = 64 * 1024;
    let small = client(&s);
    standin.clear_requests();
    let err = small.connectors().get("big").await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    assert_eq!(
        standin.requests().len(),
        1,
        "refused at once, never retried"
    );
    // Below the bound, the same answer is read.
    assert_eq!(es.connectors().get("big").await.unwrap().id, "big");
}

/// A log sink for one test: everything written, shared with the test.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn with_every_node_dead_retries_wait_and_warnings_do_not_flood_the_log() {
    if crate::support::own_process::ran_in_child(
        module_path!(),
        "with_every_node_dead_retries_wait_and_warnings_do_not_flood_the_log",
    ) {
        return;
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A dead node that can be counted: it accepts each connection and hangs up at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        })
    };
    let log = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut s = settings(&[format!("http://{addr}")]);
    s.max_retries = 10_000_000;
    s.dead_backoff_base = Duration::from_millis(20);
    s.dead_backoff_max = Duration::from_millis(200);
    let es = client(&s);
    let run = tokio::time::timeout(Duration::from_secs(2), es.cluster().info()).await;
    assert!(run.is_err(), "a dead node answered: {run:?}");
    server.abort();
    let attempts = accepted.load(Ordering::SeqCst);
    // Waiting out the dead-node backoff (20, 40, 80, 160, then 200 ms): about 14 attempts in
    // the 2 s; without the wait it was thousands.
    assert!((3..=40).contains(&attempts), "{attempts} attempts");
    let text = log.text();
    let warnings = text.lines().filter(|l| l.contains("node failed")).count();
    // The first warning, then at most one per 10 s with a count of the ones held back.
    assert!((1..=2).contains(&warnings), "{warnings} warnings:\n{text}");
    assert!(text.lines().count() <= 5, "{text}");
}

#[tokio::test]
async fn timeouts_fail_at_once_unless_retry_on_timeout() {
    let standin = standin(2).await;
    standin.faults().latency(Duration::from_millis(400));
    let mut s = settings(&standin.es_urls());
    s.request_timeout = Duration::from_millis(100);
    s.max_retries = 1;
    let err = client(&s).cluster().info().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    s.retry_on_timeout = true;
    let es = client(&s);
    let err = es.cluster().info().await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(es.pool_snapshot().iter().all(|n| !n.alive));
    standin.faults().latency(Duration::ZERO);
}

#[tokio::test]
async fn a_recheck_revives_a_node_that_came_back_before_its_backoff_ends() {
    // Issue 11, bug 9: a node that came back stayed dead in the console's pool view until its
    // backoff (here a minute) ran out, even after ctrl-r.
    let standin = standin(3).await;
    let es = client(&settings(&standin.es_urls()));
    standin.faults().node_down(1, NodeDownMode::Refuse);
    for _ in 0..3 {
        es.cluster().info().await.unwrap();
    }
    assert!(!es.pool_snapshot()[1].alive);
    // Still down: a recheck leaves it dead, its backoff untouched.
    let until = es.pool_snapshot()[1].dead_until;
    assert_eq!(es.transport().recheck_dead_nodes().await, 0);
    assert!(!es.pool_snapshot()[1].alive);
    assert_eq!(es.pool_snapshot()[1].dead_until, until);
    assert_eq!(es.pool_snapshot()[1].failures, 1);
    // Back: the next recheck (the console's refresh) shows it alive at once.
    standin.faults().node_up(1);
    assert_eq!(es.transport().recheck_dead_nodes().await, 1);
    let pool = es.pool_snapshot();
    assert!(pool[1].alive && pool[1].failures == 0, "{pool:?}");
}

#[tokio::test]
async fn a_probe_tells_a_node_that_answers_from_a_dead_one_and_marks_nothing() {
    // Issue 11: the console's pool view drops a node that left the pool only when it answers
    // (it is up, so not dead); a node that is down stays listed as dead.
    let standin = standin(2).await;
    let urls = standin.es_urls();
    // A transport whose pool holds only the first node: the second "left" it.
    let es = client(&settings(&urls[..1]));
    let left = urls[1].trim_end_matches('/').to_string();
    let probe = Duration::from_secs(5);
    assert!(es.transport().answers(&left, probe).await);
    standin.faults().node_down(1, NodeDownMode::Refuse);
    assert!(!es.transport().answers(&left, probe).await);
    assert!(!es.transport().answers("not a url", probe).await);
    // A probe is no request of the pool's: its node state stays as it was.
    let pool = es.pool_snapshot();
    assert_eq!(pool.len(), 1);
    assert!(pool[0].alive && pool[0].failures == 0, "{pool:?}");
}

#[tokio::test]
async fn a_probe_times_out_quietly_and_a_tls_failure_is_no_answer() {
    // Review of issue 11: a probe waited the full request timeout per node, one after the
    // other, and a node outside the pool that timed out wrote a warning into the Logs view;
    // a TLS failure counted as "up", so the view dropped a node on the word of a server the
    // transport refuses to talk to.
    let standin = standin(1).await;
    // A node that accepts and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let log = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut s = settings(&standin.es_urls());
    // Real work may wait a minute; the probe is told how long it may take.
    s.request_timeout = Duration::from_secs(60);
    let es = client(&s);
    let probed = tokio::time::timeout(
        Duration::from_secs(30),
        es.transport().answers(&silent, Duration::from_millis(200)),
    )
    .await;
    assert_eq!(
        probed,
        Ok(false),
        "the probe's own timeout, not the request's"
    );
    // The stand-in speaks plain HTTP: over https the handshake fails.
    let plain = standin.es_urls()[0].trim_end_matches('/').to_string();
    assert!(es.transport().answers(&plain, Duration::from_secs(5)).await);
    let tls = plain.replacen("http://", "https://", 1);
    assert!(
        !es.transport().answers(&tls, Duration::from_secs(5)).await,
        "a failed handshake is no answer"
    );
    server.abort();
    let text = log.text();
    assert!(text.trim().is_empty(), "a probe wrote to the log:\n{text}");
}
