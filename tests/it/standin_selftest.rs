//! Tests of the stand-in Elasticsearch + Kibana itself (`tests/support/standin`): every endpoint
//! family, each fault, auth, node down (refuse/drop), sniffing output, bulk per-item results,
//! point-in-time paging over 25k documents, and a replay of every official request example under
//! `tests/fixtures/es-examples/`, checked against the documented response shapes.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use support::{NodeDownMode, StandIn, StandInAuth, StandInOptions};

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// Sends a JSON (or empty) request; returns status and parsed body (`Null` when empty).
async fn call(c: &Client, method: Method, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut rb = c.request(method, url);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, v)
}

struct Es {
    c: Client,
    base: String,
}

impl Es {
    fn new(s: &StandIn) -> Es {
        Es {
            c: client(),
            base: s.es_urls()[0].clone(),
        }
    }
    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        call(&self.c, m, &format!("{}{}", self.base, path), body.as_ref()).await
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.req("GET", path, None).await
    }
    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.req("PUT", path, Some(body)).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.req("POST", path, Some(body)).await
    }
    async fn bulk(&self, path: &str, ndjson: String) -> (u16, Value) {
        let resp = self
            .c
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/x-ndjson")
            .body(ndjson)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn err_type(v: &Value) -> &str {
    v["error"]["type"].as_str().unwrap_or("")
}

fn root_cause_type(v: &Value) -> &str {
    v["error"]["root_cause"][0]["type"].as_str().unwrap_or("")
}

/// A search over a closed or expired PIT or scroll, as ES answers it: its shards all failed,
/// the missing context as root cause and as cause.
fn assert_context_missing(status: u16, v: &Value) {
    assert_eq!(
        (
            status,
            err_type(v),
            root_cause_type(v),
            v["error"]["caused_by"]["type"].as_str().unwrap_or("")
        ),
        (
            404,
            "search_phase_execution_exception",
            "search_context_missing_exception",
            "search_context_missing_exception"
        ),
        "{v}"
    );
}

fn ndjson(lines: &[Value]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.to_string());
        s.push('\n');
    }
    s
}

// -------------------------------------------------------------------------------------------
// Cluster-level endpoints, content negotiation, auth

#[tokio::test]
async fn info_health_and_sniffing() {
    let s = StandIn::start(StandInOptions {
        nodes: 3,
        ..Default::default()
    })
    .await;
    let c = client();
    let urls = s.es_urls();
    assert_eq!(urls.len(), 3);
    let resp = c.get(format!("{}/", urls[1])).send().await.unwrap();
    assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["version"]["number"], "9.1.0");
    assert_eq!(info["name"], "standin-1");
    for k in ["name", "cluster_name", "cluster_uuid", "version", "tagline"] {
        assert!(info.get(k).is_some(), "info lacks {k}");
    }
    let (st, health) = call(
        &c,
        Method::GET,
        &format!("{}/_cluster/health", urls[0]),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(health["status"], "green");
    assert_eq!(health["number_of_nodes"], 3);

    for path in ["/_nodes/_all/http", "/_nodes/http", "/_nodes"] {
        let (st, nodes) = call(&c, Method::GET, &format!("{}{path}", urls[0]), None).await;
        assert_eq!(st, 200);
        let published: BTreeSet<String> = nodes["nodes"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| format!("http://{}", n["http"]["publish_address"].as_str().unwrap()))
            .collect();
        assert_eq!(
            published,
            urls.iter().cloned().collect::<BTreeSet<_>>(),
            "{path}"
        );
    }
    s.faults().node_down(1, NodeDownMode::Refuse);
    let (_, nodes) = call(&c, Method::GET, &format!("{}/_nodes/http", urls[0]), None).await;
    let n = nodes["nodes"].as_object().unwrap();
    assert_eq!(n.len(), 2);
    assert!(
        n.values()
            .all(|n| n["http"]["bound_address"].is_array() && n["roles"].is_array())
    );
    s.faults().node_up(1);
    let (_, nodes) = call(&c, Method::GET, &format!("{}/_nodes/http", urls[0]), None).await;
    assert_eq!(nodes["nodes"].as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn content_negotiation_and_gzip() {
    let s = StandIn::start(StandInOptions::default()).await;
    let base = &s.es_urls()[0];
    let c = client();
    let vnd8 = "application/vnd.elasticsearch+json; compatible-with=8";
    let r = c
        .get(format!("{base}/"))
        .header("accept", vnd8)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.elasticsearch+json;compatible-with=8"
    );
    let r = c
        .put(format!("{base}/idx/_doc/1"))
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=9",
        )
        .header(
            "content-type",
            "application/vnd.elasticsearch+json; compatible-with=9",
        )
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(format!("{base}/"))
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=7",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(err_type(&body), "media_type_header_exception");
    // A body without a content type is refused, like ES does.
    let r = c
        .put(format!("{base}/idx/_doc/2"))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);

    // Gzip request body.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, br#"{"zipped":true}"#).unwrap();
    let r = c
        .put(format!("{base}/idx/_doc/3"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        s.index_docs("idx")
            .iter()
            .find(|(id, _)| id == "3")
            .unwrap()
            .1,
        json!({"zipped": true})
    );

    // Gzip response when asked (large enough bodies only).
    let raw = Client::builder().no_proxy().no_gzip().build().unwrap();
    let (st, _) = Es::new(&s)
        .bulk(
            "/_bulk",
            ndjson(&[
                json!({"index":{"_index":"g"}}),
                json!({"x":"y".repeat(2000)}),
            ]),
        )
        .await;
    assert_eq!(st, 200);
    let r = raw
        .post(format!("{base}/g/_search"))
        .header("accept-encoding", "gzip")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let zipped = r.bytes().await.unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut plain).unwrap();
    let v: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(v["hits"]["total"]["value"], 1);
}

#[tokio::test]
async fn authentication() {
    let token = base64::engine::general_purpose::STANDARD.encode("key-id:key-secret");
    let s = StandIn::start(StandInOptions {
        auth: StandInAuth::ApiKey(token.clone()),
        ..Default::default()
    })
    .await;
    let base = &s.es_urls()[0];
    let c = client();
    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 3);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 401);
    assert_eq!(body["error"]["type"], "security_exception");
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/]"
    );
    assert_eq!(
        body["error"]["root_cause"][0]["header"]["WWW-Authenticate"][2],
        "ApiKey"
    );
    let r = c
        .get(format!("{base}/_cluster/health"))
        .header("authorization", "ApiKey d3Jvbmc=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unable to authenticate with provided credentials")
    );
    let r = c
        .get(format!("{base}/"))
        .basic_auth("elastic", Some("nope"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/]"
    );
    let r = c
        .get(format!("{base}/"))
        .header("authorization", format!("ApiKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Kibana checks the same credentials, with its own error shape.
    let k = s.kibana_url();
    let r = c
        .get(format!("{k}/api/status"))
        .header("authorization", "ApiKey d3Jvbmc=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    assert_eq!(body["error"], "Unauthorized");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("[security_exception]: unable to authenticate")
    );
    let r = c
        .get(format!("{k}/api/status"))
        .header("authorization", format!("ApiKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(s);

    let s = StandIn::start(StandInOptions {
        auth: StandInAuth::Basic {
            user: "elastic".into(),
            password: "changeme".into(),
        },
        ..Default::default()
    })
    .await;
    let r = c
        .get(format!("{}/", s.es_urls()[0]))
        .basic_auth("elastic", Some("changeme"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(s);
    let s = StandIn::start(StandInOptions {
        auth: StandInAuth::Bearer("tok".into()),
        ..Default::default()
    })
    .await;
    let r = c
        .get(format!("{}/", s.es_urls()[0]))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/", s.es_urls()[0]))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn request_log() {
    let s = StandIn::start(StandInOptions {
        nodes: 2,
        ..Default::default()
    })
    .await;
    let c = client();
    c.get(format!("{}/?pretty", s.es_urls()[1]))
        .header("X-Custom", "v")
        .send()
        .await
        .unwrap();
    c.get(format!("{}/api/status", s.kibana_url()))
        .send()
        .await
        .unwrap();
    let log = s.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].node,
            log[0].method.as_str(),
            log[0].path.as_str(),
            log[0].query.as_str()
        ),
        (1, "GET", "/", "pretty")
    );
    assert_eq!(log[0].header("x-custom"), Some("v"));
    assert!(log[0].headers.iter().all(|(k, _)| *k == k.to_lowercase()));
    assert_eq!(log[1].node, usize::MAX);
    s.clear_requests();
    assert!(s.requests().is_empty());
}

#[test]
fn start_blocking_serves_plain_tests() {
    use std::io::{Read, Write};
    let s = StandIn::start_blocking(StandInOptions {
        kibana: false,
        ..Default::default()
    });
    let addr = s.es_urls()[0].trim_start_matches("http://").to_owned();
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.write_all(b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_lowercase()
            .contains("x-elastic-product: elasticsearch")
    );
    drop(s);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "ports are freed on drop"
    );
}

// -------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn faults_fail_latency_truncate_malformed() {
    let s = StandIn::start(StandInOptions {
        nodes: 2,
        ..Default::default()
    })
    .await;
    let urls = s.es_urls();
    let c = client();
    let f = s.faults();
    f.fail_requests(None, vec![503, 502, 429]);
    for want in [503, 502, 429, 200] {
        let (st, body) = call(&c, Method::GET, &format!("{}/", urls[0]), None).await;
        assert_eq!(st, want);
        if want != 200 {
            assert_eq!(body["status"], want);
            assert!(body["error"]["root_cause"].is_array());
        }
    }
    f.fail_requests(Some(1), vec![500]);
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[0]), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[1]), None)
            .await
            .0,
        500
    );
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[1]), None)
            .await
            .0,
        200
    );

    f.latency(Duration::from_millis(150));
    let t = Instant::now();
    call(&c, Method::GET, &format!("{}/", urls[0]), None).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    f.latency(Duration::ZERO);

    f.truncate_next(1);
    let r = c
        .get(format!("{}/_nodes/http", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "truncated body must fail to read");
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[0]), None)
            .await
            .0,
        200
    );

    f.malformed_next(1);
    let r = c
        .put(format!("{}/m/_doc/1", urls[0]))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    assert!(
        s.index_docs("m").is_empty(),
        "a malformed answer is not executed"
    );

    f.fail_requests(None, vec![503; 5]);
    f.latency(Duration::from_secs(5));
    f.clear();
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[0]), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn node_down_refuse_and_drop() {
    let s = StandIn::start(StandInOptions {
        nodes: 2,
        ..Default::default()
    })
    .await;
    let urls = s.es_urls();
    let c = client();
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[0]), None)
            .await
            .0,
        200
    );
    s.faults().node_down(0, NodeDownMode::Refuse);
    let err = client()
        .get(format!("{}/", urls[0]))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(
        c.get(format!("{}/", urls[0])).send().await.is_err(),
        "pooled connections are cut too"
    );
    assert_eq!(
        call(&c, Method::GET, &format!("{}/", urls[1]), None)
            .await
            .0,
        200
    );
    s.faults().node_up(0);
    assert_eq!(
        call(&client(), Method::GET, &format!("{}/", urls[0]), None)
            .await
            .0,
        200
    );

    s.faults().node_down(1, NodeDownMode::Drop);
    let err = client()
        .get(format!("{}/", urls[1]))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect(), "drop accepts the connection: {err:?}");
    s.faults().clear();
    assert_eq!(
        call(&client(), Method::GET, &format!("{}/", urls[1]), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn bulk_item_faults() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let mut lines = Vec::new();
    for i in 0..100 {
        lines.push(json!({"index": {"_index": "f", "_id": i.to_string()}}));
        lines.push(if i % 10 == 0 {
            json!({"bad": 1, "n": i})
        } else {
            json!({"n": i})
        });
    }
    s.faults().item_429_ratio(0.25);
    let (st, r) = es.bulk("/_bulk", ndjson(&lines)).await;
    assert_eq!(st, 200);
    assert_eq!(r["errors"], true);
    let items = r["items"].as_array().unwrap();
    let rejected: Vec<&Value> = items
        .iter()
        .filter(|i| i["index"]["status"] == 429)
        .collect();
    assert_eq!(rejected.len(), 25);
    assert_eq!(
        rejected[0]["index"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(s.doc_count("f"), 75);
    s.faults().item_429_ratio(0.0);
    s.faults().reject_field(Some("bad".into()));
    let (_, r) = es.bulk("/f/_bulk", ndjson(&lines)).await;
    let items = r["items"].as_array().unwrap();
    let bad: Vec<&Value> = items
        .iter()
        .filter(|i| i["index"]["status"] == 400)
        .collect();
    assert_eq!(bad.len(), 10);
    assert_eq!(
        bad[0]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    let (st, body) = es.put("/f/_doc/x", json!({"bad": true})).await;
    assert_eq!((st, err_type(&body)), (400, "document_parsing_exception"));
}

// -------------------------------------------------------------------------------------------
// Documents, indices, search

#[tokio::test]
async fn bulk_per_item_results() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let long_id = "x".repeat(600);
    let body = ndjson(&[
        json!({"index": {"_index": "b", "_id": "1"}}),
        json!({"field1": "value1"}),
        json!({"delete": {"_index": "b", "_id": "2"}}),
        json!({"create": {"_index": "b", "_id": "3"}}),
        json!({"field1": "value3"}),
        json!({"update": {"_id": "1", "_index": "b"}}),
        json!({"doc": {"field2": "value2"}}),
        json!({"create": {"_index": "b", "_id": "3"}}),
        json!({"field1": "again"}),
        json!({"index": {"_index": "b", "_id": long_id}}),
        json!({"a": 1}),
        json!({"update": {"_index": "b", "_id": "9"}}),
        json!({"doc": {"a": 1}}),
        json!({"update": {"_index": "b", "_id": "10"}}),
        json!({"doc": {"a": 1}, "doc_as_upsert": true}),
        json!({"update": {"_index": "b", "_id": "1"}}),
        json!({"doc": {"field2": "value2"}}),
        json!({"index": {"_index": "b"}}),
        json!({"auto": true}),
    ]);
    let (st, r) = es
        .bulk(
            "/_bulk?refresh=true&pipeline=search-default-ingestion",
            body,
        )
        .await;
    assert_eq!(st, 200);
    assert!(r["took"].is_number());
    assert_eq!(r["errors"], true);
    let items = r["items"].as_array().unwrap();
    let item = |i: usize, op: &str| items[i][op].clone();
    assert_eq!(item(0, "index")["result"], "created");
    assert_eq!(item(0, "index")["status"], 201);
    for k in [
        "_index",
        "_id",
        "_version",
        "result",
        "_shards",
        "_seq_no",
        "_primary_term",
        "status",
    ] {
        assert!(item(0, "index").get(k).is_some(), "{k}");
    }
    assert_eq!(
        (
            item(1, "delete")["result"].clone(),
            item(1, "delete")["status"].clone()
        ),
        (json!("not_found"), json!(404))
    );
    assert_eq!(item(2, "create")["status"], 201);
    assert_eq!(
        (
            item(3, "update")["result"].clone(),
            item(3, "update")["_version"].clone()
        ),
        (json!("updated"), json!(2))
    );
    assert_eq!(item(4, "create")["status"], 409);
    assert_eq!(
        item(4, "create")["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(item(5, "index")["status"], 400);
    assert_eq!(
        item(5, "index")["error"]["type"],
        "illegal_argument_exception"
    );
    assert_eq!(
        item(5, "index")["error"]["reason"].as_str().unwrap(),
        format!("id [{long_id}] is too long, must be no longer than 512 bytes but was: 600")
    );
    assert_eq!(item(6, "update")["status"], 404);
    assert_eq!(
        item(6, "update")["error"]["type"],
        "document_missing_exception"
    );
    assert_eq!(item(7, "update")["result"], "created");
    assert_eq!(item(8, "update")["result"], "noop");
    assert_eq!(item(9, "index")["status"], 201);
    assert_eq!(item(9, "index")["_id"].as_str().unwrap().len(), 20);
    assert_eq!(item(0, "index")["forced_refresh"], true);
    // A noop reports the document's current seq_no; every write gets a fresh, higher one.
    let seqs: Vec<u64> = items
        .iter()
        .map(|i| i.as_object().unwrap().values().next().unwrap())
        .filter(|i| i["result"] != "noop")
        .filter_map(|i| i["_seq_no"].as_u64())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "seq_no grows: {seqs:?}"
    );
    let docs = s.index_docs("b");
    assert_eq!(
        docs.iter().find(|(id, _)| id == "1").unwrap().1,
        json!({"field1": "value1", "field2": "value2"})
    );

    // Whole-request failures.
    let (st, r) = es
        .bulk(
            "/_bulk",
            "{\"index\":{\"_index\":\"b\"}}\n{\"a\":1}".to_owned(),
        )
        .await;
    assert_eq!((st, err_type(&r)), (400, "illegal_argument_exception"));
    let (st, r) = es
        .bulk("/_bulk", "{\"frob\":{\"_index\":\"b\"}}\n".to_owned())
        .await;
    assert_eq!((st, err_type(&r)), (400, "illegal_argument_exception"));
    let (st, r) = es.bulk("/_bulk", "not json\n".to_owned()).await;
    assert_eq!(st, 400);
    assert!(matches!(
        err_type(&r),
        "x_content_parse_exception" | "illegal_argument_exception"
    ));
    let (st, r) = es
        .bulk("/_bulk", "{\"index\":{}}\n{\"a\":1}\n".to_owned())
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "action_request_validation_exception")
    );
    // PUT works too, and a bad source line is a per-item failure.
    let resp =
        es.c.put(format!("{}/b/_bulk", es.base))
            .header("content-type", "application/x-ndjson")
            .body("{\"index\":{\"_id\":\"p\"}}\n[1,2]\n")
            .send()
            .await
            .unwrap();
    let r: Value = resp.json().await.unwrap();
    assert_eq!(
        r["items"][0]["index"]["error"]["type"],
        "document_parsing_exception"
    );
}

#[tokio::test]
async fn documents_and_indices() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let (st, r) = es.put("/docs", json!({"settings": {"number_of_shards": 1}, "mappings": {"properties": {"f": {"type": "keyword"}}}})).await;
    assert_eq!(
        (st, r["acknowledged"].clone(), r["index"].clone()),
        (200, json!(true), json!("docs"))
    );
    let (st, r) = es.put("/docs", json!({})).await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "resource_already_exists_exception")
    );
    let (st, r) = es.put("/Bad", json!({})).await;
    assert_eq!((st, err_type(&r)), (400, "invalid_index_name_exception"));
    assert_eq!(es.req("HEAD", "/docs", None).await.0, 200);
    assert_eq!(es.req("HEAD", "/nope", None).await.0, 404);
    let (_, r) = es.get("/docs").await;
    assert_eq!(r["docs"]["mappings"]["properties"]["f"]["type"], "keyword");

    let (st, r) = es.put("/docs/_doc/1", json!({"f": "a", "n": 1})).await;
    assert_eq!(
        (st, r["result"].clone(), r["_seq_no"].clone()),
        (201, json!("created"), json!(0))
    );
    let (st, r) = es.put("/docs/_doc/1", json!({"f": "b", "n": 2})).await;
    assert_eq!(
        (st, r["result"].clone(), r["_version"].clone()),
        (200, json!("updated"), json!(2))
    );
    let (st, _) = es.put("/docs/_create/1", json!({"f": "c"})).await;
    assert_eq!(st, 409);
    let (st, r) = es.post("/docs/_doc", json!({"f": "auto"})).await;
    assert_eq!((st, r["result"].clone()), (201, json!("created")));
    let (st, r) = es.get("/docs/_doc/1").await;
    assert_eq!(
        (
            st,
            r["found"].clone(),
            r["_source"]["f"].clone(),
            r["_seq_no"].clone()
        ),
        (200, json!(true), json!("b"), json!(1))
    );
    let (st, r) = es.get("/docs/_doc/1?_source_includes=n").await;
    assert_eq!((st, r["_source"].clone()), (200, json!({"n": 2})));
    let (st, r) = es.get("/docs/_doc/404").await;
    assert_eq!((st, r["found"].clone()), (404, json!(false)));
    let (st, r) = es.get("/missing/_doc/1").await;
    assert_eq!((st, err_type(&r)), (404, "index_not_found_exception"));
    let (st, r) = es.get("/docs/_source/1").await;
    assert_eq!((st, r), (200, json!({"f": "b", "n": 2})));

    // Optimistic concurrency through the document API.
    let (st, r) = es
        .post(
            "/docs/_update/1?if_seq_no=0&if_primary_term=1",
            json!({"doc": {"n": 3}}),
        )
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (409, "version_conflict_engine_exception")
    );
    let (st, r) = es
        .post(
            "/docs/_update/1?if_seq_no=1&if_primary_term=1",
            json!({"doc": {"n": 3}}),
        )
        .await;
    assert_eq!((st, r["result"].clone()), (200, json!("updated")));
    let (_, r) = es.post("/docs/_update/1", json!({"doc": {"n": 3}})).await;
    assert_eq!(r["result"], "noop");
    let (st, r) = es
        .post("/docs/_update/none", json!({"doc": {"n": 3}}))
        .await;
    assert_eq!((st, err_type(&r)), (404, "document_missing_exception"));
    let (st, r) = es
        .post(
            "/docs/_update/up",
            json!({"doc": {"n": 3}, "doc_as_upsert": true}),
        )
        .await;
    assert_eq!((st, r["result"].clone()), (201, json!("created")));

    let (_, r) = es.get("/docs/_count").await;
    assert_eq!(r["count"], 3);
    let (_, r) = es
        .post(
            "/_mget",
            json!({"docs": [{"_index": "docs", "_id": "1"}, {"_index": "docs", "_id": "zz"}]}),
        )
        .await;
    assert_eq!(
        (r["docs"][0]["found"].clone(), r["docs"][1]["found"].clone()),
        (json!(true), json!(false))
    );
    let (st, r) = es.req("DELETE", "/docs/_doc/1", None).await;
    assert_eq!((st, r["result"].clone()), (200, json!("deleted")));
    let (st, r) = es.req("DELETE", "/docs/_doc/1", None).await;
    assert_eq!((st, r["result"].clone()), (404, json!("not_found")));
    let (st, r) = es.post("/docs/_refresh", json!({})).await;
    assert_eq!((st, r["_shards"]["failed"].clone()), (200, json!(0)));
    let (st, r) = es.post("/missing/_search", json!({})).await;
    assert_eq!((st, err_type(&r)), (404, "index_not_found_exception"));
    let (st, r) = es.get("/missing/_count").await;
    assert_eq!((st, err_type(&r)), (404, "index_not_found_exception"));
    let (st, r) = es
        .post(
            "/docs/_delete_by_query",
            json!({"query": {"match_all": {}}}),
        )
        .await;
    assert_eq!((st, r["deleted"].clone()), (200, json!(2)));
    let (st, _) = es.req("DELETE", "/docs", None).await;
    assert_eq!(st, 200);
    assert_eq!(es.req("HEAD", "/docs", None).await.0, 404);
    let (st, r) = es.get("/_frobnicate").await;
    assert_eq!(st, 400);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("no handler found for uri")
    );
    let (st, _) = es.get("/_bulk").await;
    assert_eq!(st, 405);
}

#[tokio::test]
async fn search_queries_sort_and_source() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let statuses = [
        "pending",
        "in_progress",
        "suspended",
        "completed",
        "pending",
    ];
    for (i, st) in statuses.iter().enumerate() {
        s.put_doc(
            "jobs",
            &format!("j{i}"),
            json!({"status": st, "connector": {"id": if i % 2 == 0 { "c1" } else { "c2" }}, "created_at": format!("2024-01-0{}T00:00:00Z", 5 - i), "n": i, "tags": ["a", format!("t{i}")]}),
        );
    }
    let q = json!({
        "query": {"bool": {"filter": [
            {"terms": {"status": ["pending", "suspended"]}},
            {"terms": {"connector.id": ["c1"]}}
        ]}},
        "sort": [{"created_at": {"order": "asc"}}],
        "size": 10
    });
    let (st, r) = es.post("/jobs/_search", q).await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = r["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["j4", "j2", "j0"]);
    assert_eq!(r["hits"]["total"], json!({"value": 3, "relation": "eq"}));
    assert!(r["hits"]["hits"][0]["sort"].is_array());

    let cases = [
        (json!({"term": {"status": "pending"}}), 2),
        (json!({"term": {"n": "3"}}), 1),
        (json!({"range": {"n": {"gte": 1, "lt": 3}}}), 2),
        (json!({"range": {"created_at": {"lte": "now"}}}), 5),
        (json!({"exists": {"field": "connector.id"}}), 5),
        (json!({"ids": {"values": ["j1", "j9"]}}), 1),
        (
            json!({"bool": {"must_not": [{"term": {"status": "pending"}}]}}),
            3,
        ),
        (
            json!({"bool": {"should": [{"term": {"_id": "j1"}}, {"term": {"status": "completed"}}]}}),
            2,
        ),
        (json!({"term": {"tags": "t2"}}), 1),
        (json!({"prefix": {"status": "in_"}}), 1),
        (json!({"match": {"status": "completed"}}), 1),
        (json!({"match_none": {}}), 0),
    ];
    for (query, want) in cases {
        let (st, r) = es
            .post("/jobs/_count", json!({"query": query.clone()}))
            .await;
        assert_eq!((st, r["count"].clone()), (200, json!(want)), "{query}");
    }
    let (st, r) = es
        .post("/jobs/_search", json!({"query": {"frob": {}}}))
        .await;
    assert_eq!((st, err_type(&r)), (400, "parsing_exception"));

    let (_, r) = es.post("/jobs/_search", json!({"_source": ["connector.id"], "sort": [{"n": "desc"}], "size": 2, "seq_no_primary_term": true})).await;
    let hits = r["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits[0]["_id"], "j4");
    assert_eq!(hits[0]["_source"], json!({"connector": {"id": "c1"}}));
    assert!(hits[0]["_seq_no"].is_number());
    let (_, r) = es
        .get("/jobs/_search?_source=false&sort=_id:asc&size=1&from=1")
        .await;
    assert_eq!(r["hits"]["hits"][0]["_id"], "j1");
    assert!(r["hits"]["hits"][0].get("_source").is_none());
    let (_, r) = es
        .post(
            "/jobs/_search",
            json!({"sort": ["_id"], "search_after": ["j2"], "size": 10}),
        )
        .await;
    let ids: Vec<&str> = r["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["j3", "j4"]);
    let (st, r) = es.get("/jobs/_search?scroll=1m&size=2").await;
    assert_eq!(st, 200);
    let mut seen = r["hits"]["hits"].as_array().unwrap().len();
    let sid = r["_scroll_id"].as_str().unwrap().to_owned();
    loop {
        let (_, r) = es
            .post("/_search/scroll", json!({"scroll": "1m", "scroll_id": sid}))
            .await;
        let n = r["hits"]["hits"].as_array().unwrap().len();
        if n == 0 {
            break;
        }
        seen += n;
    }
    assert_eq!(seen, 5);
    let (st, _) = es
        .req("DELETE", "/_search/scroll", Some(json!({"scroll_id": sid})))
        .await;
    assert_eq!(st, 200);
    // A cleared scroll: ES's error for a missing search context.
    let (st, v) = es
        .post("/_search/scroll", json!({"scroll": "1m", "scroll_id": sid}))
        .await;
    assert_context_missing(st, &v);
}

#[tokio::test]
async fn pit_and_search_after_over_25k_docs() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    const N: usize = 25_000;
    for chunk in 0..5 {
        let mut body = String::new();
        for i in chunk * 5000..(chunk + 1) * 5000 {
            body.push_str(&format!("{{\"index\":{{\"_id\":\"doc-{i:06}\"}}}}\n{{\"id\":\"doc-{i:06}\",\"_timestamp\":\"2024-01-01T00:00:00Z\",\"n\":{i}}}\n"));
        }
        let (st, r) = es.bulk("/content/_bulk", body).await;
        assert_eq!((st, r["errors"].clone()), (200, json!(false)));
    }
    assert_eq!(s.doc_count("content"), N);
    let (st, r) = es.post("/content/_pit?keep_alive=1m", json!({})).await;
    assert_eq!(st, 200);
    let pit = r["id"].as_str().unwrap().to_owned();
    // Writes after the PIT opened are invisible to it.
    es.put("/content/_doc/zzz-late", json!({"n": -1})).await;

    for sort in [
        json!([{"_shard_doc": "asc"}]),
        json!([{"_id": "asc"}]),
        json!(null),
    ] {
        let mut after: Option<Value> = None;
        let mut ids = Vec::new();
        let mut pages = 0;
        loop {
            let mut q = json!({"size": 1000, "pit": {"id": pit, "keep_alive": "1m"}, "_source": ["id", "_timestamp"], "track_total_hits": false});
            if !sort.is_null() {
                q["sort"] = sort.clone();
            }
            if let Some(a) = &after {
                q["search_after"] = a.clone();
            }
            let resp =
                es.c.post(format!("{}/_search", es.base))
                    .json(&q)
                    .send()
                    .await
                    .unwrap();
            assert_eq!(resp.status(), 200);
            let r: Value = resp.json().await.unwrap();
            assert_eq!(r["pit_id"], pit.as_str());
            let hits = r["hits"]["hits"].as_array().unwrap();
            if hits.is_empty() {
                break;
            }
            for h in hits {
                ids.push(h["_id"].as_str().unwrap().to_owned());
                assert!(h["_source"]["_timestamp"].is_string());
            }
            after = Some(hits.last().unwrap()["sort"].clone());
            pages += 1;
            assert!(pages <= 30, "paging does not end");
        }
        assert_eq!(ids.len(), N, "{sort}");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), N);
        assert!(!ids.iter().any(|i| i == "zzz-late"));
    }
    let (st, r) = es
        .post("/content/_search", json!({"pit": {"id": pit}}))
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "action_request_validation_exception")
    );
    let (st, r) = es.req("DELETE", "/_pit", Some(json!({"id": pit}))).await;
    assert_eq!(
        (st, r["succeeded"].clone(), r["num_freed"].clone()),
        (200, json!(true), json!(1))
    );
    let (st, _) = es
        .post("/_search", json!({"pit": {"id": pit, "keep_alive": "1m"}}))
        .await;
    assert_eq!(st, 404);
    let (st, r) = es.post("/content/_pit", json!({})).await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "action_request_validation_exception")
    );
}

// -------------------------------------------------------------------------------------------
// Connector and sync job APIs

#[tokio::test]
async fn connector_lifecycle() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let (st, r) = es
        .put(
            "/_connector/c1",
            json!({"index_name": "search-b", "name": "B", "service_type": "directory"}),
        )
        .await;
    assert_eq!((st, r), (201, json!({"result": "created", "id": "c1"})));
    let (_, r) = es
        .put(
            "/_connector/c1",
            json!({"index_name": "search-b", "name": "B", "service_type": "directory"}),
        )
        .await;
    assert_eq!(r["result"], "updated");
    let (st, r) = es
        .post(
            "/_connector",
            json!({"index_name": "search-a", "name": "A"}),
        )
        .await;
    assert_eq!((st, r["result"].clone()), (201, json!("created")));
    let generated = r["id"].as_str().unwrap().to_owned();
    let (st, r) = es
        .put("/_connector/c3", json!({"index_name": "search-b"}))
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    assert_eq!(
        r["error"]["reason"],
        "Index name [search-b] is used by another connector."
    );
    let (st, r) = es
        .put(
            "/_connector/c3",
            json!({"index_name": "search-c", "bogus": 1}),
        )
        .await;
    assert_eq!((st, err_type(&r)), (400, "x_content_parse_exception"));

    let (st, c) = es.get("/_connector/c1").await;
    assert_eq!(st, 200);
    assert_eq!(c["id"], "c1");
    assert_eq!(c["status"], "created");
    assert_eq!(c["is_native"], false);
    assert_eq!(c["configuration"], json!({}));
    assert_eq!(
        c["scheduling"]["full"],
        json!({"enabled": false, "interval": "0 0 0 * * ?"})
    );
    assert_eq!(c["pipeline"]["name"], "search-default-ingestion");
    assert_eq!(c["filtering"].as_array().unwrap().len(), 1);
    assert_eq!(c["filtering"][0]["active"]["rules"][0]["id"], "DEFAULT");
    assert_eq!(c["filtering"][0]["draft"]["validation"]["state"], "valid");
    for k in [
        "configuration",
        "custom_scheduling",
        "deleted",
        "filtering",
        "is_native",
        "scheduling",
        "status",
        "sync_now",
        "features",
    ] {
        assert!(c.get(k).is_some(), "connector lacks {k}");
    }
    let (st, r) = es.get("/_connector/nope").await;
    assert_eq!((st, err_type(&r)), (404, "resource_not_found_exception"));
    assert_eq!(r["error"]["reason"], "connector [nope] not found");

    // Status machine.
    let (st, r) = es
        .put("/_connector/c1/_status", json!({"status": "connected"}))
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    let (st, r) = es
        .put("/_connector/c1/_status", json!({"status": "bogus"}))
        .await;
    assert_eq!(st, 400, "{r}");
    let (st, r) = es
        .put(
            "/_connector/c1/_status",
            json!({"status": "needs_configuration"}),
        )
        .await;
    assert_eq!((st, r), (200, json!({"result": "updated"})));

    // Configuration: schema, then values; unknown keys refused.
    let schema = json!({"path": {"label": "Path", "value": "", "type": "str", "display": "textbox", "required": true, "sensitive": false, "options": [], "depends_on": [], "default_value": null, "order": 1}});
    assert_eq!(
        es.put(
            "/_connector/c1/_configuration",
            json!({"configuration": schema})
        )
        .await
        .0,
        200
    );
    let (st, r) = es
        .put(
            "/_connector/c1/_configuration",
            json!({"values": {"path": "/data", "nope": 1}}),
        )
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    assert_eq!(
        es.put(
            "/_connector/c1/_configuration",
            json!({"values": {"path": "/data"}})
        )
        .await
        .0,
        200
    );
    let c = s.connector("c1").unwrap();
    assert_eq!(
        (
            c["configuration"]["path"]["value"].clone(),
            c["status"].clone()
        ),
        (json!("/data"), json!("configured"))
    );
    assert_eq!(
        es.put("/_connector/c1/_configuration", json!({})).await.0,
        400
    );
    assert_eq!(
        es.put("/_connector/c1/_status", json!({"status": "connected"}))
            .await
            .0,
        200
    );
    let (_, r) = es
        .put("/_connector/c1/_status", json!({"status": "connected"}))
        .await;
    assert_eq!(r["result"], "noop");

    // Scheduling: Quartz crons only.
    let (st, r) = es
        .put(
            "/_connector/c1/_scheduling",
            json!({"scheduling": {"full": {"enabled": true, "interval": "0 * * * *"}}}),
        )
        .await;
    assert_eq!(st, 400, "{r}");
    assert_eq!(
        es.put(
            "/_connector/c1/_scheduling",
            json!({"scheduling": {"full": {"enabled": true, "interval": "0 0/5 * * * ?"}}})
        )
        .await
        .0,
        200
    );
    let c = s.connector("c1").unwrap();
    assert_eq!(c["scheduling"]["full"]["interval"], "0 0/5 * * * ?");
    assert_eq!(c["scheduling"]["incremental"]["interval"], "0 0 0 * * ?");

    // Filtering: rules sorted, DEFAULT last; validate then activate.
    let rules = json!({"rules": [
        {"id": "DEFAULT", "field": "_", "order": 0, "policy": "include", "rule": "regex", "value": ".*"},
        {"id": "r2", "field": "b", "order": 5, "policy": "exclude", "rule": "equals", "value": "x"},
        {"id": "r1", "field": "a", "order": 1, "policy": "include", "rule": "contains", "value": "y"}
    ]});
    assert_eq!(es.put("/_connector/c1/_filtering", rules).await.0, 200);
    let c = s.connector("c1").unwrap();
    let ids: Vec<&str> = c["filtering"][0]["draft"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r1", "r2", "DEFAULT"]);
    assert_eq!(c["filtering"][0]["draft"]["validation"]["state"], "edited");
    let (st, r) = es
        .put("/_connector/c1/_filtering/_activate", json!({}))
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    assert_eq!(
        es.put(
            "/_connector/c1/_filtering/_validation",
            json!({"validation": {"state": "valid", "errors": []}})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        es.req("PUT", "/_connector/c1/_filtering/_activate", None)
            .await
            .0,
        200
    );
    let c = s.connector("c1").unwrap();
    assert_eq!(
        c["filtering"][0]["active"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The remaining update endpoints.
    let updates = [
        ("_name", json!({"name": "Renamed", "description": "d"})),
        ("_service_type", json!({"service_type": "ndjson"})),
        ("_index_name", json!({"index_name": "search-renamed"})),
        (
            "_pipeline",
            json!({"pipeline": {"name": "p", "extract_binary_content": false, "reduce_whitespace": true, "run_ml_inference": false}}),
        ),
        (
            "_api_key_id",
            json!({"api_key_id": "k", "api_key_secret_id": "s"}),
        ),
        (
            "_features",
            json!({"features": {"document_level_security": {"enabled": true}}}),
        ),
        (
            "_last_sync",
            json!({"last_sync_status": "completed", "last_indexed_document_count": 7, "last_synced": "2024-11-09T15:13:08.231Z"}),
        ),
        ("_error", json!({"error": "boom"})),
    ];
    for (action, body) in updates {
        let (st, r) = es.put(&format!("/_connector/c1/{action}"), body).await;
        assert_eq!(
            (st, r["result"].clone()),
            (200, json!("updated")),
            "{action}: {r}"
        );
    }
    assert_eq!(es.req("PUT", "/_connector/c1/_check_in", None).await.0, 200);
    let c = s.connector("c1").unwrap();
    assert_eq!(c["name"], "Renamed");
    assert_eq!(c["index_name"], "search-renamed");
    assert_eq!(c["features"]["document_level_security"]["enabled"], true);
    assert_eq!(
        c["features"]["incremental_sync"]["enabled"], false,
        "features merge"
    );
    assert_eq!(
        (c["status"].clone(), c["error"].clone()),
        (json!("error"), json!("boom"))
    );
    assert_eq!(c["last_indexed_document_count"], 7);
    assert!(c["last_seen"].is_string());
    es.put("/_connector/c1/_error", json!({"error": null}))
        .await;
    assert_eq!(s.connector("c1").unwrap()["status"], "connected");
    let (st, r) = es
        .put(
            "/_connector/c1/_index_name",
            json!({"index_name": "search-a"}),
        )
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    let (st, r) = es
        .put("/_connector/c1/_native", json!({"is_native": false}))
        .await;
    assert_eq!((st, r["result"].clone()), (200, json!("updated")));
    assert_eq!(
        s.connector("c1").unwrap()["status"],
        "configured",
        "a connected connector must reconnect after `_native`"
    );
    let (_, r) = es
        .put("/_connector/c1/_native", json!({"is_native": false}))
        .await;
    assert_eq!(r["result"], "noop", "unchanged documents are noops");
    let (st, r) = es
        .put("/_connector/c1/_native", json!({"is_native": true}))
        .await;
    assert_eq!(st, 400, "native connectors need a content- index: {r}");

    // Lists: paging, filters, order by index_name.
    es.put(
        "/_connector/c4",
        json!({"index_name": "search-0", "service_type": "directory"}),
    )
    .await;
    let (_, r) = es.get("/_connector").await;
    assert_eq!(r["count"], 3);
    let names: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search-0", "search-a", "search-renamed"]);
    let (_, r) = es.get("/_connector?from=1&size=1").await;
    assert_eq!(
        (r["count"].clone(), r["results"][0]["id"].clone()),
        (json!(3), json!(generated))
    );
    let (_, r) = es.get("/_connector?service_type=directory").await;
    assert_eq!(r["count"], 1);
    let (_, r) = es.get("/_connector?index_name=search-a,search-0").await;
    assert_eq!(r["count"], 2);
    let (_, r) = es.get("/_connector?query=renamed").await;
    assert_eq!(r["count"], 1);
    let (st, _) = es.get("/_connector?from=-1").await;
    assert_eq!(st, 400);

    // Soft and hard delete.
    let (st, r) = es.req("DELETE", "/_connector/c4", None).await;
    assert_eq!((st, r), (200, json!({"acknowledged": true})));
    assert_eq!(es.get("/_connector/c4").await.0, 404);
    assert_eq!(
        es.get("/_connector/c4?include_deleted=true").await.1["deleted"],
        true
    );
    assert_eq!(es.get("/_connector").await.1["count"], 2);
    assert_eq!(
        es.get("/_connector?include_deleted=true").await.1["count"],
        3
    );
    assert_eq!(
        es.req("DELETE", "/_connector/c4?hard=true", None).await.0,
        200
    );
    assert!(s.connector("c4").is_none());

    // Secrets.
    let (st, r) = es
        .post("/_connector/_secret", json!({"value": "s3cret"}))
        .await;
    assert_eq!(st, 200);
    let sid = r["id"].as_str().unwrap().to_owned();
    assert_eq!(
        es.get(&format!("/_connector/_secret/{sid}")).await.1,
        json!({"id": sid, "value": "s3cret"})
    );
    assert_eq!(
        es.put(
            &format!("/_connector/_secret/{sid}"),
            json!({"value": "v2"})
        )
        .await
        .1["result"],
        "updated"
    );
    assert_eq!(
        es.req("DELETE", &format!("/_connector/_secret/{sid}"), None)
            .await
            .1,
        json!({"deleted": true})
    );
    assert_eq!(es.get(&format!("/_connector/_secret/{sid}")).await.0, 404);

    // The hidden index is reachable through the document API, with seq_no guarding.
    let (st, r) = es.get("/.elastic-connectors/_doc/c1").await;
    assert_eq!(st, 200);
    let (seq, term) = (
        r["_seq_no"].as_u64().unwrap(),
        r["_primary_term"].as_u64().unwrap(),
    );
    assert!(r["_source"].get("id").is_none());
    let guarded = format!("/.elastic-connectors/_update/c1?if_seq_no={seq}&if_primary_term={term}");
    let (st, _) = es
        .post(
            &guarded,
            json!({"doc": {"last_sync_status": "in_progress"}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, r) = es
        .post(
            &guarded,
            json!({"doc": {"last_sync_status": "in_progress", "x": 1}}),
        )
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (409, "version_conflict_engine_exception")
    );
}

#[tokio::test]
async fn sync_job_lifecycle() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    es.put(
        "/_connector/c1",
        json!({"index_name": "search-c1", "service_type": "directory", "language": "en"}),
    )
    .await;
    es.put("/_connector/c1/_filtering", json!({"rules": [{"id": "r", "field": "a", "order": 0, "policy": "exclude", "rule": "equals", "value": "b"}]})).await;
    let (st, r) = es.post("/_connector/_sync_job", json!({"id": "c1"})).await;
    assert_eq!(st, 200);
    let j1 = r["id"].as_str().unwrap().to_owned();
    let (_, job) = es.get(&format!("/_connector/_sync_job/{j1}")).await;
    assert_eq!(
        (
            job["status"].clone(),
            job["job_type"].clone(),
            job["trigger_method"].clone()
        ),
        (json!("pending"), json!("full"), json!("on_demand"))
    );
    assert_eq!(job["connector"]["id"], "c1");
    assert_eq!(job["connector"]["index_name"], "search-c1");
    assert!(
        job["connector"]["filtering"].is_object(),
        "the snapshot holds the active rules object"
    );
    assert_eq!(
        job["connector"]["filtering"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "active, not draft"
    );
    for k in [
        "connector",
        "created_at",
        "deleted_document_count",
        "id",
        "indexed_document_count",
        "indexed_document_volume",
        "job_type",
        "metadata",
        "status",
        "total_document_count",
        "trigger_method",
    ] {
        assert!(job.get(k).is_some(), "job lacks {k}");
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, r) = es
        .post(
            "/_connector/_sync_job",
            json!({"id": "c1", "job_type": "access_control", "trigger_method": "scheduled"}),
        )
        .await;
    let j2 = r["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.sync_job(&j2).unwrap()["connector"]["index_name"],
        ".search-acl-filter-search-c1"
    );
    let (st, r) = es
        .post(
            "/_connector/_sync_job",
            json!({"id": "c1", "job_type": "weekly"}),
        )
        .await;
    assert_eq!(st, 400, "{r}");
    let (st, r) = es
        .post("/_connector/_sync_job", json!({"id": "ghost"}))
        .await;
    assert_eq!(
        (st, r["error"]["reason"].clone()),
        (404, json!("Connector with id 'ghost' does not exist."))
    );
    es.put("/_connector/bare", json!({})).await;
    let (st, r) = es
        .post("/_connector/_sync_job", json!({"id": "bare"}))
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "status_exception"),
        "a job needs an index and a service type"
    );

    let (_, r) = es.get("/_connector/_sync_job?connector_id=c1").await;
    assert_eq!(r["count"], 2);
    assert_eq!(r["results"][0]["id"], j2.as_str(), "newest first");
    assert_eq!(
        es.get("/_connector/_sync_job?job_type=full,incremental")
            .await
            .1["count"],
        1
    );
    assert_eq!(
        es.get("/_connector/_sync_job?status=in_progress").await.1["count"],
        0
    );
    assert_eq!(
        es.get("/_connector/_sync_job?size=1").await.1["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Claim once; a second claim loses.
    let (st, _) = es
        .put(
            &format!("/_connector/_sync_job/{j1}/_claim"),
            json!({"worker_hostname": "w1", "sync_cursor": {"c": 1}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, r) = es
        .put(
            &format!("/_connector/_sync_job/{j1}/_claim"),
            json!({"worker_hostname": "w2"}),
        )
        .await;
    assert_eq!((st, err_type(&r)), (409, "status_exception"));
    let job = s.sync_job(&j1).unwrap();
    assert_eq!(
        (
            job["status"].clone(),
            job["worker_hostname"].clone(),
            job["connector"]["sync_cursor"].clone()
        ),
        (json!("in_progress"), json!("w1"), json!({"c": 1}))
    );
    assert!(job["started_at"].is_string());
    let (st, r) = es.put(&format!("/_connector/_sync_job/{j1}/_stats"), json!({"deleted_document_count": 1, "indexed_document_count": 20, "indexed_document_volume": 3, "total_document_count": 40})).await;
    assert_eq!((st, r["result"].clone()), (200, json!("updated")));
    let (st, r) = es
        .put(
            &format!("/_connector/_sync_job/{j1}/_stats"),
            json!({"indexed_document_count": 20}),
        )
        .await;
    assert_eq!(
        (st, err_type(&r)),
        (400, "action_request_validation_exception")
    );
    assert_eq!(
        es.req(
            "PUT",
            &format!("/_connector/_sync_job/{j1}/_check_in"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(s.sync_job(&j1).unwrap()["indexed_document_count"], 20);

    // Cancel: in_progress → canceling; pending → canceled; terminal → 400.
    assert_eq!(
        es.req("PUT", &format!("/_connector/_sync_job/{j1}/_cancel"), None)
            .await
            .0,
        200
    );
    let job = s.sync_job(&j1).unwrap();
    assert_eq!(job["status"], "canceling");
    assert!(job["cancelation_requested_at"].is_string() && job["canceled_at"].is_null());
    assert_eq!(
        es.req("PUT", &format!("/_connector/_sync_job/{j2}/_cancel"), None)
            .await
            .0,
        200
    );
    let job = s.sync_job(&j2).unwrap();
    assert_eq!(job["status"], "canceled");
    assert!(job["canceled_at"].is_string() && job["completed_at"].is_string());
    let (st, r) = es
        .req("PUT", &format!("/_connector/_sync_job/{j2}/_cancel"), None)
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    let (st, r) = es
        .put(
            &format!("/_connector/_sync_job/{j2}/_error"),
            json!({"error": "x"}),
        )
        .await;
    assert_eq!((st, err_type(&r)), (400, "status_exception"));
    let (st, _) = es
        .put(
            &format!("/_connector/_sync_job/{j1}/_error"),
            json!({"error": "worker died"}),
        )
        .await;
    assert_eq!(st, 200);
    let job = s.sync_job(&j1).unwrap();
    assert_eq!(
        (
            job["status"].clone(),
            job["error"].clone(),
            job["completed_at"].clone()
        ),
        (json!("error"), json!("worker died"), Value::Null)
    );

    // The engine's pick-up query over the hidden jobs index.
    let (_, r) = es
        .post(
            "/_connector/_sync_job",
            json!({"id": "c1", "job_type": "incremental"}),
        )
        .await;
    let j3 = r["id"].as_str().unwrap().to_owned();
    let q = json!({"query": {"bool": {"filter": [
        {"terms": {"status": ["pending", "suspended"]}},
        {"terms": {"connector.id": ["c1"]}},
        {"terms": {"job_type": ["full", "incremental"]}}
    ]}}, "sort": [{"created_at": "asc"}]});
    let (_, r) = es.post("/.elastic-connectors-sync-jobs/_search", q).await;
    assert_eq!(r["hits"]["hits"].as_array().unwrap().len(), 1);
    assert_eq!(r["hits"]["hits"][0]["_id"], j3.as_str());

    let (st, r) = es
        .req("DELETE", &format!("/_connector/_sync_job/{j3}"), None)
        .await;
    assert_eq!((st, r), (200, json!({"acknowledged": true})));
    let (st, r) = es.get(&format!("/_connector/_sync_job/{j3}")).await;
    assert_eq!(
        (st, r["error"]["reason"].clone()),
        (404, json!(format!("connector sync job [{j3}] not found")))
    );
    // Deleting the connector with its jobs.
    assert_eq!(
        es.req("DELETE", "/_connector/c1?delete_sync_jobs=true", None)
            .await
            .0,
        200
    );
    assert_eq!(es.get("/_connector/_sync_job").await.1["count"], 0);
    // Lists on a cluster without the hidden indices.
    let fresh = StandIn::start(StandInOptions {
        kibana: false,
        ..Default::default()
    })
    .await;
    let es2 = Es::new(&fresh);
    assert_eq!(
        es2.get("/_connector").await.1,
        json!({"count": 0, "results": []})
    );
    assert_eq!(
        es2.get("/_connector/_sync_job").await.1,
        json!({"count": 0, "results": []})
    );
}

// -------------------------------------------------------------------------------------------
// Kibana

#[tokio::test]
async fn kibana_actions() {
    let s = StandIn::start(StandInOptions::default()).await;
    let k = s.kibana_url();
    let c = client();
    let kb = |m: Method, path: &str| {
        c.request(m, format!("{k}{path}"))
            .header("kbn-xsrf", "true")
    };
    let (st, r) = call(&c, Method::GET, &format!("{k}/api/status"), None).await;
    assert_eq!(
        (
            st,
            r["version"]["number"].clone(),
            r["status"]["overall"]["level"].clone()
        ),
        (200, json!("9.1.0"), json!("available"))
    );
    let (_, types) = call(
        &c,
        Method::GET,
        &format!("{k}/api/actions/connector_types"),
        None,
    )
    .await;
    let ids: BTreeSet<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for want in [".index", ".webhook", ".slack", ".email"] {
        assert!(ids.contains(want));
    }
    for key in [
        "id",
        "name",
        "enabled",
        "enabled_in_config",
        "enabled_in_license",
        "minimum_license_required",
        "supported_feature_ids",
        "is_system_action_type",
    ] {
        assert!(types[0].get(key).is_some(), "{key}");
    }

    let create = json!({"name": "my-connector", "connector_type_id": ".index", "config": {"index": "test-index", "executionTimeField": "@ts"}});
    let r = c
        .post(format!("{k}/api/actions/connector"))
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."})
    );
    let r = kb(Method::POST, "/api/actions/connector")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let made: Value = r.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(
        made["config"],
        json!({"index": "test-index", "executionTimeField": "@ts", "refresh": false})
    );
    for key in [
        "is_preconfigured",
        "is_deprecated",
        "is_missing_secrets",
        "is_system_action",
    ] {
        assert_eq!(made[key], false, "{key}");
    }
    let r = kb(Method::POST, "/api/actions/connector/fixed-id")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = kb(Method::POST, "/api/actions/connector/fixed-id")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = kb(Method::POST, "/api/actions/connector")
        .json(&json!({"name": "x", "connector_type_id": ".index", "config": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("[index]"));

    let (st, list) = call(
        &c,
        Method::GET,
        &format!("{k}/api/actions/connectors"),
        None,
    )
    .await;
    assert_eq!((st, list.as_array().unwrap().len()), (200, 2));
    let (st, one) = call(
        &c,
        Method::GET,
        &format!("{k}/api/actions/connector/{id}"),
        None,
    )
    .await;
    assert_eq!((st, one["name"].clone()), (200, json!("my-connector")));
    let (st, r) = call(
        &c,
        Method::GET,
        &format!("{k}/api/actions/connector/ghost"),
        None,
    )
    .await;
    assert_eq!(
        (st, r),
        (
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": "Saved object [action/ghost] not found"})
        )
    );
    let r = kb(Method::PUT, &format!("/api/actions/connector/{id}")).json(&json!({"name": "updated-connector", "config": {"index": "updated-index", "executionTimeField": "@ts"}})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let upd: Value = r.json().await.unwrap();
    assert_eq!(
        (upd["name"].clone(), upd["config"]["index"].clone()),
        (json!("updated-connector"), json!("updated-index"))
    );

    // _execute indexes into the shared ES state.
    let run = json!({"params": {"documents": [{"id": "my_doc_id", "name": "my_doc_name", "message": "hello, world"}]}});
    let r = kb(
        Method::POST,
        &format!("/api/actions/connector/{id}/_execute"),
    )
    .json(&run)
    .send()
    .await
    .unwrap();
    let out: Value = r.json().await.unwrap();
    assert_eq!(
        (out["status"].clone(), out["connector_id"].clone()),
        (json!("ok"), json!(id))
    );
    assert_eq!(out["data"]["items"][0]["create"]["status"], 201);
    let docs = s.index_docs("updated-index");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].1["message"], "hello, world");
    assert!(docs[0].1["@ts"].is_string());
    let (_, count) = call(
        &c,
        Method::GET,
        &format!("{}/updated-index/_count", s.es_urls()[0]),
        None,
    )
    .await;
    assert_eq!(count["count"], 1);

    // Spaces isolate connectors.
    let r = kb(Method::POST, "/s/marketing/api/actions/connector")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = call(
        &c,
        Method::GET,
        &format!("{k}/s/marketing/api/actions/connectors"),
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(s.kibana_connectors("default").len(), 2);

    // Test hook flags.
    assert!(s.kibana_set_flags(&id, true, true));
    let (_, one) = call(
        &c,
        Method::GET,
        &format!("{k}/api/actions/connector/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (
            one["is_missing_secrets"].clone(),
            one["is_deprecated"].clone()
        ),
        (json!(true), json!(true))
    );
    let r = kb(
        Method::POST,
        &format!("/api/actions/connector/{id}/_execute"),
    )
    .json(&run)
    .send()
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "error");

    let r = kb(Method::DELETE, &format!("/api/actions/connector/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = kb(Method::DELETE, &format!("/api/actions/connector/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

// -------------------------------------------------------------------------------------------
// Replay of the official examples

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es-examples"
    ))
}

/// An example's `value` as JSON: a YAML mapping, or a string holding JSON.
fn example_value(doc: &serde_yaml_ng::Value) -> Option<Result<Value, String>> {
    let v = doc.get("value")?;
    Some(match v {
        serde_yaml_ng::Value::String(s) => Err(s.clone()),
        other => Ok(serde_json::to_value(other).unwrap()),
    })
}

fn load_yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every response example of an API that parses as JSON.
fn response_examples(api: &Path) -> Vec<Value> {
    files(&api.join("response"))
        .iter()
        .filter_map(|p| match example_value(&load_yaml(p))? {
            Ok(v) => Some(v),
            Err(s) => serde_json::from_str(&s).ok(),
        })
        .collect()
}

/// The state the examples assume: the connectors, jobs and indices they name.
async fn seed(s: &StandIn, api: &str) {
    let es = Es::new(s);
    for (id, index) in [
        ("my-connector", "search-my-connector"),
        ("my-connector-id", "search-my-connector-id"),
        ("my-spo-connector", "search-spo"),
        ("my-g-drive-connector", "search-g-drive"),
        ("my-sql-connector", "search-sql"),
        ("connector-id", "search-connector-id"),
    ] {
        es.put(
            &format!("/_connector/{id}"),
            json!({"index_name": index, "service_type": "custom"}),
        )
        .await;
    }
    let field = |v: &str| json!({"label": v, "value": "", "type": "str", "display": "textbox", "required": true, "sensitive": false, "options": [], "depends_on": [], "default_value": null});
    let conf: serde_json::Map<String, Value> = [
        "tenant_id",
        "tenant_name",
        "client_id",
        "secret_value",
        "site_collections",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), field(k)))
    .collect();
    es.put(
        "/_connector/my-spo-connector/_configuration",
        json!({"configuration": conf}),
    )
    .await;
    let job = |status: &str| {
        json!({"connector": {"id": "my-connector-id", "index_name": "search-my-connector-id", "filtering": {}, "configuration": {}, "service_type": "custom"},
               "status": status, "job_type": "full", "trigger_method": "on_demand", "created_at": "2024-01-01T00:00:00Z",
               "last_seen": "2024-01-01T00:00:00Z", "metadata": {}, "deleted_document_count": 0, "indexed_document_count": 0,
               "indexed_document_volume": 0, "total_document_count": 0})
    };
    s.put_doc(
        ".elastic-connectors-sync-jobs",
        "my-connector-sync-job-id",
        job("pending"),
    );
    s.put_doc(
        ".elastic-connectors-sync-jobs",
        "my-connector-sync-job",
        job("in_progress"),
    );
    if api != "indices.create" {
        s.put_doc("my-index-000001", "1", json!({"user": {"id": "kimchy"}, "http": {"response": {"bytes": 10}}, "message": "foo"}));
        s.put_doc("my-index-000002", "1", json!({"user": {"id": "other"}}));
        s.put_doc("test", "1", json!({"field1": "v"}));
    }
}

#[tokio::test]
async fn replays_every_es_request_example() {
    // Requests whose examples carry made-up point-in-time ids: a 4xx is the right answer.
    let expected_4xx = ["SearchRequestExample2.yaml", "SearchRequestExample3.yaml"];
    let mut replayed = 0;
    for api_dir in files(fixtures()) {
        let api = api_dir.file_name().unwrap().to_str().unwrap().to_owned();
        if api.starts_with('_') || !api_dir.is_dir() {
            continue;
        }
        let shapes = response_examples(&api_dir);
        for req_file in files(&api_dir.join("request")) {
            let doc = load_yaml(&req_file);
            let name = req_file.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(line) = doc.get("method_request").and_then(|m| m.as_str()) else {
                continue;
            };
            let (method, path) = line.split_once(' ').unwrap();
            let mut path = path.trim().to_owned();
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            // Upstream defect: `&delete_sync_jobs=true` where `?` is meant.
            if !path.contains('?') && path.contains('&') {
                path = path.replacen('&', "?", 1);
            }
            let s = StandIn::start(StandInOptions {
                kibana: false,
                ..Default::default()
            })
            .await;
            seed(&s, &api).await;
            let c = client();
            let mut rb = c.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{}", s.es_urls()[0], path),
            );
            match example_value(&doc) {
                None => {}
                Some(Ok(v)) => {
                    rb = rb
                        .header("content-type", "application/json")
                        .body(v.to_string())
                }
                Some(Err(text)) if api == "bulk" => {
                    let mut nd = String::new();
                    for l in text.lines().filter(|l| !l.trim().is_empty()) {
                        let v: Value =
                            serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"));
                        nd.push_str(&v.to_string());
                        nd.push('\n');
                    }
                    rb = rb.header("content-type", "application/x-ndjson").body(nd);
                }
                Some(Err(text)) => {
                    let v: Value =
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                    rb = rb
                        .header("content-type", "application/json")
                        .body(v.to_string());
                }
            }
            let resp = rb.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(status < 500, "{api}/{name}: {status} {body}");
            if expected_4xx.contains(&name.as_str()) {
                assert!(
                    (400..500).contains(&status),
                    "{api}/{name}: {status} {body}"
                );
                continue;
            }
            assert!(
                (200..300).contains(&status),
                "{api}/{name}: {status} {body}"
            );
            if !shapes.is_empty() {
                let fits = shapes.iter().any(|shape| {
                    shape
                        .as_object()
                        .is_some_and(|o| o.keys().all(|k| body.get(k).is_some()))
                });
                assert!(
                    fits,
                    "{api}/{name}: {body} has none of the documented shapes"
                );
            }
            if api == "bulk" {
                for item in body["items"].as_array().unwrap() {
                    let (_, inner) = item.as_object().unwrap().iter().next().unwrap();
                    assert!(
                        inner.get("_index").is_some() && inner.get("status").is_some(),
                        "{name}: {item}"
                    );
                }
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 50, "only {replayed} examples replayed");
}

#[test]
fn fixtures_are_complete() {
    let spec = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es-rest-api-spec"
    ));
    let n = files(spec)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .count();
    assert_eq!(n, 47);
    assert!(fixtures().join("SOURCE.md").exists());
    let examples = walk(fixtures())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .count();
    assert_eq!(examples, 90);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for p in files(dir) {
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `(index, id, sort)` of each hit: what paging must reproduce exactly.
fn hit_keys(r: &Value) -> Vec<(String, String, Value)> {
    r["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["_index"].as_str().unwrap().to_owned(),
                h["_id"].as_str().unwrap().to_owned(),
                h["sort"].clone(),
            )
        })
        .collect()
}

/// Two indices holding the same ids, with a numeric, a text, a mixed-type and a date field.
fn seed_two_indices(s: &StandIn) {
    for index in ["pa", "pb"] {
        for i in 0..8 {
            let m = if i % 2 == 0 {
                json!(i)
            } else {
                json!(format!("s{i}"))
            };
            s.put_doc(
                index,
                &format!("x{i}"),
                json!({"g": i % 3, "n": i, "t": format!("v{}", 7 - i), "m": m, "d": format!("2024-01-0{}", i + 1)}),
            );
        }
    }
}

/// Sends the search `q` over PIT `pit` to `es`, and the same over `general_pit` to
/// `general` (a stand-in without shortcuts); asserts both answer 200 with the same bytes but
/// for the PIT id, and returns the answer.
async fn answered_alike(
    (es, pit): (&Es, &str),
    (general, general_pit): (&Es, &str),
    filter: &str,
    q: &Value,
    context: &str,
) -> Value {
    let mut general_q = q.clone();
    general_q["pit"]["id"] = json!(general_pit);
    let (st, fast) = raw_search(es, filter, q).await;
    assert_eq!(st, 200, "{context}: {}", String::from_utf8_lossy(&fast));
    let (st, slow) = raw_search(general, filter, &general_q).await;
    assert_eq!(st, 200, "{context}: {}", String::from_utf8_lossy(&slow));
    // The two stand-ins' PIT ids differ; nothing else may.
    let slow = String::from_utf8_lossy(&slow).replace(general_pit, pit);
    assert_eq!(String::from_utf8_lossy(&fast), slow, "{context}");
    serde_json::from_slice(&fast).unwrap()
}

/// Sends a search and returns its status and raw answer bytes.
async fn raw_search(es: &Es, params: &str, body: &Value) -> (u16, Vec<u8>) {
    let resp =
        es.c.post(format!("{}/_search{params}", es.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// A stand-in, and one without its shortcuts (`fast_paths: false`) to hold its answers to.
async fn with_and_without_shortcuts() -> (StandIn, StandIn) {
    let general = StandIn::start(StandInOptions {
        fast_paths: false,
        ..StandInOptions::default()
    })
    .await;
    (StandIn::start(StandInOptions::default()).await, general)
}

/// An id scan over a point in time (match-all, `_shard_doc`: the natural path, written straight
/// from the snapshot), and pages of a view written straight from it, answer byte for byte what
/// a stand-in without those shortcuts answers (the general path: the snapshot filtered and
/// sorted, hits copied), for every page size, `_source` choice, `filter_path` and starting
/// point; writes after the PIT opened never show; a closed PIT is an unfiltered error.
#[tokio::test]
async fn pit_scan_fast_path_answers_like_the_general_path() {
    let (s, general_standin) = with_and_without_shortcuts().await;
    let es = Es::new(&s);
    let general_es = Es::new(&general_standin);
    const N: usize = 2_500;
    let mut body = String::new();
    // Written out of order: storage order is `_id` order.
    for i in (0..N).rev() {
        body.push_str(&format!("{{\"index\":{{\"_id\":\"d-{i:05}\"}}}}\n{{\"n\":{i}, \"id\":\"d-{i:05}\",\"_timestamp\":\"2024-01-0{}T00:00:00Z\",\"body\":{{\"x\":[1,2.50]}}}}\n", i % 9 + 1));
    }
    // After the PIT opened: a new document, a deleted one, a replaced one.
    let mut late = String::new();
    late.push_str("{\"index\":{\"_id\":\"d-00000-late\"}}\n{\"n\":1}\n");
    late.push_str("{\"delete\":{\"_id\":\"d-00007\"}}\n");
    late.push_str("{\"index\":{\"_id\":\"d-00008\"}}\n{\"n\":-8,\"id\":\"changed\"}\n");
    let mut pits = Vec::new();
    for es in [&es, &general_es] {
        let (st, r) = es.bulk("/scan/_bulk", body.clone()).await;
        assert_eq!((st, r["errors"].clone()), (200, json!(false)));
        let (st, r) = es.post("/scan/_pit?keep_alive=1m", json!({})).await;
        assert_eq!(st, 200);
        pits.push(r["id"].as_str().unwrap().to_owned());
        let (st, r) = es.bulk("/scan/_bulk", late.clone()).await;
        assert_eq!((st, r["errors"].clone()), (200, json!(false)));
    }
    let (pit, general_pit) = (pits[0].clone(), pits[1].clone());

    let filters = [
        "?filter_path=pit_id,hits.hits._id,hits.hits.sort&allow_partial_search_results=false",
        "?filter_path=pit_id,hits.hits._id,hits.hits._source,hits.hits.sort",
        "?filter_path=hits.hits._source.body,-hits.hits._source.body.x",
        "?filter_path=-took",
        "?filter_path=hits.total,hits.max_score",
    ];
    let sources = [json!(false), json!(["id", "_timestamp"]), json!(true)];
    // The natural path (match-all) and a view (a query that matches every document).
    let queries = [None, Some(json!({"range": {"n": {"gte": 0}}}))];
    let mut pages = 0;
    for size in [1000, 7, 1] {
        for (fi, filter) in filters.iter().enumerate() {
            for source in &sources {
                for query in &queries {
                    // A size-1 scan of 2.5k pages is long: it starts near the end instead.
                    let mut after = if size == 1 {
                        Some(json!([N - 3]))
                    } else {
                        None
                    };
                    let mut ids = Vec::new();
                    loop {
                        let mut q = json!({"size": size, "_source": source, "sort": [{"_shard_doc": "asc"}],
                            "pit": {"id": pit, "keep_alive": "1m"}, "track_total_hits": fi % 2 == 0});
                        if let Some(a) = &after {
                            q["search_after"] = a.clone();
                        }
                        if let Some(query) = query {
                            q["query"] = query.clone();
                        }
                        pages += 1;
                        let context =
                            format!("size {size}, {filter}, {source}, {query:?}, after {after:?}");
                        // Every filter leaves `took` out (`-took` by name, the others by
                        // listing what they keep), so the answers compare byte for byte.
                        let v = answered_alike(
                            (&es, &pit),
                            (&general_es, &general_pit),
                            filter,
                            &q,
                            &context,
                        )
                        .await;
                        // Only the first two filters keep `sort`, to page on with.
                        if fi > 1 {
                            break;
                        }
                        assert_eq!(v["pit_id"], pit.as_str());
                        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
                        if fi == 0 {
                            // The scan's own filter: nothing but `pit_id` and each hit's `_id`
                            // and `sort`.
                            assert_eq!(
                                v.as_object().unwrap().len(),
                                if hits.is_empty() { 1 } else { 2 },
                                "{v}"
                            );
                            for h in &hits {
                                let keys: Vec<&String> = h.as_object().unwrap().keys().collect();
                                assert_eq!(keys, ["_id", "sort"], "{h}");
                            }
                        }
                        ids.extend(hits.iter().map(|h| h["_id"].as_str().unwrap().to_owned()));
                        if hits.len() < size {
                            break;
                        }
                        after = Some(hits.last().unwrap()["sort"].clone());
                    }
                    if fi <= 1 {
                        let want: Vec<String> = (0..N)
                            .filter(|i| size != 1 || *i > N - 3)
                            .map(|i| format!("d-{i:05}"))
                            .collect();
                        assert_eq!(ids, want, "size {size}, {filter}, {query:?}");
                    }
                }
            }
        }
    }
    assert!(pages > 100, "{pages}");
    // The replaced document shows its source as of the PIT's opening.
    let (st, r) = es
        .post(
            "/_search",
            json!({"size": 1, "_source": ["id"], "sort": ["_shard_doc"], "search_after": [7],
            "pit": {"id": pit}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["hits"]["hits"][0]["_source"], json!({"id": "d-00008"}));
    assert_eq!(r["hits"]["hits"][0]["sort"], json!([8]));
    let (st, _) = es.req("DELETE", "/_pit", Some(json!({"id": pit}))).await;
    assert_eq!(st, 200);
    // A closed PIT: the error is not filtered away.
    assert_pit_missing(&es, json!({"id": pit, "keep_alive": "1m"})).await;
    // An expired one answers the same.
    let (st, r) = es.post("/scan/_pit?keep_alive=1ms", json!({})).await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_pit_missing(&es, json!({"id": r["id"]})).await;
}

/// The slices of a point in time split it into disjoint shares that cover it, each paged by its
/// own `search_after`, on the natural path and through a view alike, byte for byte as a
/// stand-in without shortcuts answers; a slice's total is its share. A slice is refused without
/// a PIT, and out of range as ES's `SliceBuilder` refuses it.
#[tokio::test]
async fn sliced_pit_searches_split_the_snapshot_into_disjoint_shares() {
    let (s, general_standin) = with_and_without_shortcuts().await;
    let es = Es::new(&s);
    let general_es = Es::new(&general_standin);
    const N: usize = 257;
    let mut body = String::new();
    for i in 0..N {
        body.push_str(&format!(
            "{{\"index\":{{\"_id\":\"d-{i:04}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    let mut pits = Vec::new();
    for es in [&es, &general_es] {
        let (st, r) = es.bulk("/sliced/_bulk", body.clone()).await;
        assert_eq!((st, r["errors"].clone()), (200, json!(false)));
        let (st, r) = es.post("/sliced/_pit?keep_alive=1m", json!({})).await;
        assert_eq!(st, 200);
        pits.push(r["id"].as_str().unwrap().to_owned());
    }
    let (pit, general_pit) = (pits[0].clone(), pits[1].clone());
    let all: Vec<String> = (0..N).map(|i| format!("d-{i:04}")).collect();
    // Match-all (the natural path) and two queries (views): one document, all but ten.
    let queries = [
        None,
        Some(json!({"term": {"n": 4}})),
        Some(json!({"range": {"n": {"gte": 10}}})),
    ];
    for max in [2usize, 3] {
        for size in [7usize, 100] {
            for query in &queries {
                let mut union = Vec::new();
                for id in 0..max {
                    let mut after: Option<Value> = None;
                    let mut share = Vec::new();
                    loop {
                        let mut q = json!({"size": size, "_source": false,
                            "sort": [{"_shard_doc": "asc"}], "track_total_hits": true,
                            "pit": {"id": pit, "keep_alive": "1m"},
                            "slice": {"id": id, "max": max}});
                        if let Some(a) = &after {
                            q["search_after"] = a.clone();
                        }
                        if let Some(query) = query {
                            q["query"] = query.clone();
                        }
                        let context = format!("slice {id}/{max}, size {size}, {query:?}");
                        let v = answered_alike(
                            (&es, &pit),
                            (&general_es, &general_pit),
                            "?filter_path=-took",
                            &q,
                            &context,
                        )
                        .await;
                        let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
                        for h in &hits {
                            let rank = h["sort"][0].as_u64().unwrap() as usize;
                            assert_eq!(rank % max, id, "{context}: {h}");
                            share.push(h["_id"].as_str().unwrap().to_owned());
                        }
                        if hits.len() < size {
                            let total = v["hits"]["total"]["value"].as_u64().unwrap() as usize;
                            assert_eq!(total, share.len(), "{context}: a slice's total");
                            break;
                        }
                        after = Some(hits.last().unwrap()["sort"].clone());
                    }
                    union.extend(share);
                }
                union.sort();
                let want: Vec<String> = match query {
                    None => all.clone(),
                    Some(q) if q.get("term").is_some() => vec!["d-0004".to_owned()],
                    Some(_) => all[10..].to_vec(),
                };
                assert_eq!(union, want, "{max} slices of {size}, {query:?}");
            }
        }
    }
    // Refusals, as ES words them: a setter's refusal wrapped in a parse failure of its field.
    let pit_slice = |slice: Value| json!({"slice": slice, "pit": {"id": pit}});
    let refused = [
        (
            json!({"slice": {"id": 0, "max": 2}, "query": {"match_all": {}}}),
            "action_request_validation_exception",
            "[slice] can only be used with [scroll] or [point-in-time] requests",
            None,
        ),
        (
            pit_slice(json!({"id": -1, "max": 2})),
            "x_content_parse_exception",
            "[slice] failed to parse field [id]",
            Some("id must be greater than or equal to 0"),
        ),
        (
            pit_slice(json!({"id": 0, "max": 1})),
            "x_content_parse_exception",
            "[slice] failed to parse field [max]",
            Some("max must be greater than 1"),
        ),
        (
            pit_slice(json!({"id": 2, "max": 2})),
            "x_content_parse_exception",
            "[slice] failed to parse field [max]",
            Some("max must be greater than id"),
        ),
        (
            pit_slice(json!({"id": 0, "max": 2, "shard": 1})),
            "x_content_parse_exception",
            "[slice] unknown field [shard]",
            None,
        ),
        // The stand-in's own: ES fails later, elsewhere.
        (
            pit_slice(json!({"id": 0})),
            "illegal_argument_exception",
            "the stand-in needs [slice.max]",
            None,
        ),
    ];
    for (query, kind, reason, cause) in refused {
        let (st, r) = es.post("/_search", query.clone()).await;
        assert_eq!(st, 400, "{query}: {r}");
        assert_eq!(err_type(&r), kind, "{query}: {r}");
        assert!(
            r["error"]["reason"].as_str().unwrap().contains(reason),
            "{query}: {r}"
        );
        if let Some(cause) = cause {
            let caused_by = &r["error"]["caused_by"];
            assert_eq!(caused_by["type"], "illegal_argument_exception", "{r}");
            assert_eq!(caused_by["reason"], cause, "{r}");
        }
    }
}

/// A scan page over a closed or expired PIT answers as ES does (a search whose shards all
/// failed, the missing context as root cause), unfiltered by the scan's `filter_path`.
async fn assert_pit_missing(es: &Es, pit: Value) {
    let q = json!({"size": 10, "sort": [{"_shard_doc": "asc"}], "pit": pit});
    let (st, body) = raw_search(es, "?filter_path=pit_id,hits.hits._id", &q).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_context_missing(st, &v);
}

#[tokio::test]
async fn pit_over_two_indices_pages_like_a_live_search() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    seed_two_indices(&s);
    let (st, r) = es.post("/pa,pb/_pit?keep_alive=1m", json!({})).await;
    assert_eq!(st, 200);
    let pit = r["id"].as_str().unwrap().to_owned();
    // (query, sort as sent with the PIT, `sort` of the equivalent live search: the PIT adds the
    // `_shard_doc` tiebreaker, and `_shard_doc` ranks match while nothing is written).
    let all = json!({"match_all": {}});
    let cases = [
        (
            json!({"range": {"n": {"gte": 1}}}),
            json!([{"g": "asc"}]),
            json!([{"g": "asc"}, "_shard_doc"]),
        ),
        (
            all.clone(),
            json!([{"g": "desc"}, {"t": "asc"}]),
            json!([{"g": "desc"}, {"t": "asc"}, "_shard_doc"]),
        ),
        (
            all.clone(),
            json!([{"m": "asc"}]),
            json!([{"m": "asc"}, "_shard_doc"]),
        ),
        (
            all.clone(),
            json!([{"_id": "asc"}]),
            json!([{"_id": "asc"}, "_shard_doc"]),
        ),
        (
            json!({"range": {"d": {"lte": "now"}}}),
            json!([{"n": "desc"}]),
            json!([{"n": "desc"}, "_shard_doc"]),
        ),
        (
            json!({"term": {"g": 1}}),
            Value::Null,
            json!([{"_score": "desc"}, "_shard_doc"]),
        ),
        (all.clone(), json!(["_shard_doc"]), json!(["_shard_doc"])),
    ];
    let mut after: Vec<Option<Value>> = vec![None; cases.len()];
    let mut seen = vec![0usize; cases.len()];
    let mut done = vec![false; cases.len()];
    // Cases take turns page by page, so a view cached for one is never reused by another.
    for _round in 0..10 {
        for (c, (query, pit_sort, live_sort)) in cases.iter().enumerate() {
            if done[c] {
                continue;
            }
            let mut q = json!({"size": 3, "query": query, "pit": {"id": pit, "keep_alive": "1m"}});
            let mut live = json!({"size": 3, "query": query, "sort": live_sort});
            if !pit_sort.is_null() {
                q["sort"] = pit_sort.clone();
            }
            if let Some(a) = &after[c] {
                q["search_after"] = a.clone();
                live["search_after"] = a.clone();
            }
            let (st, got) = es.post("/_search", q).await;
            assert_eq!(st, 200, "{got}");
            let (st, want) = es.post("/pa,pb/_search", live).await;
            assert_eq!(st, 200, "{want}");
            let hits = hit_keys(&got);
            assert_eq!(hits, hit_keys(&want), "case {c}, after {:?}", after[c]);
            assert_eq!(got["hits"]["total"], want["hits"]["total"], "case {c}");
            match hits.last() {
                None => done[c] = true,
                Some((_, _, sort)) => after[c] = Some(sort.clone()),
            }
            seen[c] += hits.len();
        }
    }
    assert!(done.iter().all(|d| *d), "paging does not end: {done:?}");
    // Where the sort is a total order, each match is read exactly once. The mixed-type field
    // (2) and `_id` across indices (3) revisit hits, exactly as the live search does.
    for (c, want) in [(0, 14), (1, 16), (4, 16), (5, 6), (6, 16)] {
        assert_eq!(seen[c], want, "case {c}");
    }
}

#[tokio::test]
async fn scroll_across_indices_keeps_the_sorted_order() {
    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    seed_two_indices(&s);
    let sort = json!([{"g": "desc"}, {"_id": "asc"}]);
    let (st, once) = es
        .post(
            "/pa,pb/_search",
            json!({"sort": sort, "size": 100, "from": 2}),
        )
        .await;
    assert_eq!(st, 200);
    let want = hit_keys(&once);
    assert_eq!(want.len(), 14);
    let (st, r) = es
        .post(
            "/pa,pb/_search?scroll=1m",
            json!({"sort": sort, "size": 5, "from": 2}),
        )
        .await;
    assert_eq!(st, 200);
    let sid = r["_scroll_id"].as_str().unwrap().to_owned();
    let mut got = hit_keys(&r);
    for _ in 0..10 {
        let (st, r) = es
            .post("/_search/scroll", json!({"scroll": "1m", "scroll_id": sid}))
            .await;
        assert_eq!(st, 200);
        let page = hit_keys(&r);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        got.extend(page);
    }
    assert_eq!(got, want);
    let (st, _) = es
        .req("DELETE", "/_search/scroll", Some(json!({"scroll_id": sid})))
        .await;
    assert_eq!(st, 200);
}

/// `filter_path`, replayed from the documented bulk example: `POST /_bulk?filter_path=items.*.error`
/// answers with the two failed updates only, shaped like BulkResponseExample3.
#[tokio::test]
async fn filter_path_follows_the_documented_bulk_example() {
    let dir = fixtures().join("bulk");
    let request = load_yaml(&dir.join("request/BulkRequestExample3.yaml"));
    let Some(Err(text)) = example_value(&request) else {
        panic!("the example request is NDJSON text")
    };
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nd = ndjson(&lines);
    let response = load_yaml(&dir.join("response/BulkResponseExample3.yaml"));
    let Some(Err(text)) = example_value(&response) else {
        panic!("the example response is JSON text")
    };
    let documented: Value = serde_json::from_str(&text).unwrap();

    let s = StandIn::start(StandInOptions::default()).await;
    let es = Es::new(&s);
    let (status, body) = es
        .bulk("/_bulk?filter_path=items.*.error", nd.clone())
        .await;
    assert_eq!(status, 200);
    let shape = |v: &Value| -> Vec<(String, Vec<String>)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let (op, inner) = item.as_object().unwrap().iter().next().unwrap();
                let mut keys: Vec<String> = inner["error"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                keys.sort();
                assert_eq!(
                    inner.as_object().unwrap().len(),
                    1,
                    "only 'error' is kept: {item}"
                );
                (op.clone(), keys)
            })
            .collect()
    };
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert_eq!(shape(&body), shape(&documented), "{body}");
    for (got, want) in body["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(documented["items"].as_array().unwrap())
    {
        assert_eq!(
            got["update"]["error"]["type"],
            want["update"]["error"]["type"]
        );
        assert_eq!(
            got["update"]["error"]["reason"],
            want["update"]["error"]["reason"]
        );
    }

    // What a bulk client keeps: every item answers with its status, so positions hold.
    let (status, body) = es
        .bulk(
            "/_bulk?filter_path=errors,took,items.*.status,items.*.result,items.*.error.type,items.*.error.reason",
            nd,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"], true);
    assert!(body["took"].is_u64());
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    assert_eq!(
        items[0],
        json!({"update": {"status": 404, "error": {"type": "document_missing_exception", "reason": "[5]: document missing"}}})
    );
    // `7` was created by the first request; a second `create` conflicts.
    assert_eq!(items[2]["create"]["status"], 409, "{body}");
    assert_eq!(items[2]["create"].as_object().unwrap().len(), 2, "{body}");

    // Other APIs are filtered after the fact; errors never are.
    let (status, body) = es.get("/?filter_path=version.number,tagline").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert!(
        body["version"]["number"].is_string() && body["version"].as_object().unwrap().len() == 1,
        "{body}"
    );
    let (status, body) = es.get("/index1/_doc/nope?filter_path=found").await;
    assert_eq!(
        (status, body["found"].clone()),
        (404, json!(false)),
        "{body}"
    );
    let (status, body) = es.get("/missing/_search?filter_path=hits").await;
    assert_eq!(
        (status, err_type(&body)),
        (404, "index_not_found_exception"),
        "{body}"
    );
}
