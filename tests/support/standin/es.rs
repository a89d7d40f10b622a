//! The Elasticsearch face of a node: the per-request pipeline (log → faults → content negotiation
//! → auth → gunzip → route → response headers, gzip, truncation), the router, and the
//! cluster-level and index-level endpoints (`/`, `_cluster/health`, `_nodes`, create/get/delete/
//! exists/refresh/mapping of indices). Documents, bulk, search and the connector APIs live in
//! their own modules.

use std::io::{Read as _, Write as _};
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use base64::Engine as _;
use hyper::body::{Body as _, Incoming};
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response};
use serde_json::{Value, json};

use super::filter_path::FilterPath;
use super::http::{EsError, Reply, Req, check_fields, optional_object_body, uri_of};
use super::state::Index;
use super::{
    KIBANA_NODE, RequestRecord, Shared, StandInAuth, bulk, connectors, docs, kibana, lock, search,
};

pub(crate) const CLUSTER_NAME: &str = "syncdeck-standin";
/// `http.max_content_length` default (100mb).
pub(crate) const MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;
/// Responses larger than this are sent uncompressed even when the client accepts gzip.
const GZIP_MAX: usize = 256 * 1024;

/// Entry point for every request on every port (Kibana's included, for the shared logging).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    node: usize,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let hint = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let raw = match read_body(body, hint).await {
        Ok(b) => b,
        Err(()) => {
            let reply = EsError::new(
                413,
                "content_too_long_exception",
                "request body is too large",
            )
            .reply();
            return finish(reply, None, false, false, node != KIBANA_NODE);
        }
    };
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    shared.record(RequestRecord {
        node,
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len: raw.len(),
    });
    let gzip_ok = accepts_gzip(&parts.headers);
    if node == KIBANA_NODE {
        let reply = kibana::serve(&shared, parts.method, &path, &raw_query, parts.headers, raw);
        return finish(reply, None, gzip_ok, false, false);
    }
    if path.trim_end_matches('/').ends_with("/_bulk") {
        // A wedged node: hold the request without an answer while the fault is on.
        let started = std::time::Instant::now();
        while lock(&shared.faults).bulk_hangs()
            && started.elapsed() < std::time::Duration::from_secs(600)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    if path.trim_end_matches('/').ends_with("/_search") {
        // The same, for searches.
        let started = std::time::Instant::now();
        while lock(&shared.faults).search_hangs()
            && started.elapsed() < std::time::Duration::from_secs(600)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let read = is_read(&parts.method, &path);
    let mut plan = lock(&shared.faults).plan(node, read);
    if plan.fail.is_none() && path.trim_end_matches('/') == "/_search" {
        plan.fail = lock(&shared.faults).pit_search_fails();
    }
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let negotiated = negotiate(&shared.opts.version, &parts.headers, !raw.is_empty());
    let compat = negotiated.as_ref().ok().copied().flatten();
    let reply = if let Some(status) = plan.fail {
        fault_reply(status)
    } else if plan.malformed {
        Reply {
            status: 200,
            body: b"<html><body><h1>502 Bad Gateway</h1>upstream sent garbage</body></html>"
                .to_vec(),
            content_type: Some("text/html"),
            headers: Vec::new(),
            filtered: false,
        }
    } else {
        match negotiated {
            Err(r) => r,
            Ok(_) => handle(
                &shared,
                node,
                parts.method,
                &path,
                &raw_query,
                parts.headers,
                raw,
            ),
        }
    };
    let reply = if plan.cut_json && reply.status == 200 && reply.body.len() > 1 {
        let mut reply = reply;
        let half = reply.body.len() / 2;
        reply.body.truncate(half);
        reply
    } else {
        reply
    };
    finish(reply, compat, gzip_ok, plan.truncate, true)
}

/// Whether a request only reads: what the read-fault ratio applies to. HEAD is left out: its
/// answer has no body to garble.
fn is_read(method: &hyper::Method, path: &str) -> bool {
    if method == hyper::Method::GET {
        return true;
    }
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    (method == hyper::Method::POST && matches!(last, "_search" | "_count" | "_pit"))
        || (method == hyper::Method::DELETE && path.trim_end_matches('/') == "/_pit")
}

/// Reads the whole request body into one buffer sized from `Content-Length` (a 5 MB `_bulk`
/// then costs one allocation and one copy). A single-frame body is returned without copying.
async fn read_body(mut body: Incoming, hint: Option<usize>) -> Result<Bytes, ()> {
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| ())?.into_data() else {
            continue; // trailers
        };
        if first.is_none() && buf.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(f) = first.take() {
            buf.reserve(
                hint.unwrap_or(0)
                    .max(f.len() + data.len())
                    .min(MAX_CONTENT_LENGTH),
            );
            buf.extend_from_slice(&f);
        }
        buf.extend_from_slice(&data);
        if buf.len() > MAX_CONTENT_LENGTH {
            return Err(());
        }
    }
    Ok(match first {
        Some(f) => f,
        None => Bytes::from(buf),
    })
}

fn handle(
    shared: &Shared,
    node: usize,
    method: Method,
    path: &str,
    raw_query: &str,
    headers: HeaderMap,
    raw: Bytes,
) -> Reply {
    if let Err(fail) = check_auth(&shared.opts.auth, &headers) {
        return es_unauthorized(&fail, &uri_of(path, raw_query));
    }
    let body = match gunzip_if_needed(&headers, raw) {
        Ok(b) => b,
        Err(e) => return e.reply(),
    };
    let req = Req::new(method, path, raw_query, headers, body);
    match route(shared, node, &req) {
        Ok(r) => filter_reply(&req, r),
        Err(e) => e.reply(),
    }
}

/// Applies `filter_path` to a JSON answer, unless it is an error (Elasticsearch builds error
/// bodies unfiltered). `_bulk` filters while it writes.
fn filter_reply(req: &Req, mut reply: Reply) -> Reply {
    let Some(filter) = FilterPath::parse(req.param("filter_path")) else {
        return reply;
    };
    if reply.filtered
        || reply.content_type != Some("application/json")
        || req.segs.last().is_some_and(|s| s == "_bulk")
    {
        return reply;
    }
    let Ok(value) = serde_json::from_slice::<Value>(&reply.body) else {
        return reply;
    };
    if reply.status >= 400 && value.get("error").is_some() {
        return reply;
    }
    reply.body = serde_json::to_vec(&filter.apply(value)).unwrap_or_default();
    reply
}

pub(crate) fn gunzip_if_needed(headers: &HeaderMap, raw: Bytes) -> Result<Bytes, EsError> {
    let gz = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gz || raw.is_empty() {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| {
            EsError::new(
                400,
                "parse_exception",
                format!("failed to decompress the request body: {e}"),
            )
        })?;
    Ok(Bytes::from(out))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|p| p.trim().split(';').next() == Some("gzip"))
        })
}

/// Builds the wire response: product header, (vendored) content type, gzip, and the truncation
/// fault (a `Content-Length` promising the whole body, then half of it and a dropped connection).
pub(crate) fn finish(
    reply: Reply,
    compat: Option<u8>,
    gzip_ok: bool,
    truncate: bool,
    es: bool,
) -> Response<Body> {
    let mut builder = Response::builder().status(reply.status);
    if es {
        builder = builder.header("X-Elastic-Product", "Elasticsearch");
    }
    if let Some(ct) = reply.content_type {
        let ct = match (ct, compat) {
            ("application/json", Some(v)) => {
                format!("application/vnd.elasticsearch+json;compatible-with={v}")
            }
            ("application/json", None) if !es => "application/json; charset=utf-8".to_owned(),
            _ => ct.to_owned(),
        };
        builder = builder.header(CONTENT_TYPE, ct);
    }
    for (k, v) in &reply.headers {
        builder = builder.header(*k, v);
    }
    let mut body = reply.body;
    // Compressing multi-megabyte answers costs more CPU than loopback bandwidth saves, and the
    // stand-in must never be what a benchmark measures.
    if gzip_ok && body.len() > 1024 && body.len() <= GZIP_MAX {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 3),
            flate2::Compression::fast(),
        );
        if enc.write_all(&body).is_ok()
            && let Ok(zipped) = enc.finish()
        {
            body = zipped;
            builder = builder.header(CONTENT_ENCODING, "gzip");
        }
    }
    let body = if truncate && !body.is_empty() {
        let full = body.len();
        builder = builder.header(CONTENT_LENGTH, full);
        let cut = Bytes::from(body).slice(..full / 2);
        // The pause lets hyper flush the head and the first half before the error aborts the
        // connection, so the client sees a valid status and a short body.
        let tail = futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "stand-in truncation fault",
            ))
        });
        let head = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(cut)]);
        Body::from_stream(futures_util::StreamExt::chain(head, tail))
    } else {
        Body::from(body)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The error an injected status answers with, typed like what would really produce it.
fn fault_reply(status: u16) -> Reply {
    let (kind, reason) = match status {
        400 => ("illegal_argument_exception", "injected fault"),
        401 => (
            "security_exception",
            "injected fault: unable to authenticate",
        ),
        403 => (
            "security_exception",
            "injected fault: action is unauthorized",
        ),
        404 => ("resource_not_found_exception", "injected fault"),
        408 | 504 => ("timeout_exception", "injected fault: timed out"),
        409 => (
            "version_conflict_engine_exception",
            "injected fault: version conflict",
        ),
        413 => (
            "content_too_long_exception",
            "injected fault: request too large",
        ),
        429 => (
            "es_rejected_execution_exception",
            "injected fault: rejected execution of coordinating operation",
        ),
        502 => ("bad_gateway_exception", "injected fault: bad gateway"),
        503 => (
            "unavailable_shards_exception",
            "injected fault: primary shard is not active",
        ),
        _ => ("exception", "injected fault"),
    };
    EsError::new(status, kind, reason).reply()
}

// ---------------------------------------------------------------------------------------------
// Content negotiation

/// `Some(v)` when the header names the vendored media type with `compatible-with=v`.
fn vendored(value: &str) -> Option<Result<u8, String>> {
    let mut parts = value.split(';');
    let base = parts.next()?.trim().to_ascii_lowercase();
    if !base.starts_with("application/vnd.elasticsearch+") {
        return None;
    }
    let compat = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("compatible-with")).then(|| v.trim().to_owned())
    });
    Some(match compat {
        Some(v) => v.parse::<u8>().map_err(|_| v),
        None => Err(String::new()),
    })
}

fn media_error(reason: String, accept: &str, ct: &str) -> Reply {
    let headers = match (accept.is_empty(), ct.is_empty()) {
        (false, false) => "Accept, Content-Type",
        (false, true) => "Accept",
        _ => "Content-Type",
    };
    EsError::new(
        400,
        "media_type_header_exception",
        format!("Invalid media-type value on headers [{headers}]"),
    )
    .caused_by(EsError::status(
        400,
        format!("{reason} Accept={accept}, Content-Type={ct}"),
    ))
    .reply()
}

/// Checks `Accept`/`Content-Type` like ES does and returns the compatible-with version to echo.
fn negotiate(version: &str, headers: &HeaderMap, has_body: bool) -> Result<Option<u8>, Reply> {
    let major: u8 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(9);
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Accept may list several types; the first vendored one decides.
    let accept_compat = accept.split(',').find_map(vendored);
    let ct_compat = vendored(ct);
    let mut chosen = None;
    for (name, c) in [("Accept", &accept_compat), ("Content-Type", &ct_compat)] {
        match c {
            Some(Ok(v)) if *v == major || *v + 1 == major => chosen = chosen.or(Some(*v)),
            Some(Ok(v)) => {
                return Err(media_error(
                    format!(
                        "{name} version must be either version {} or {major}, but found {v}.",
                        major.saturating_sub(1)
                    ),
                    accept,
                    ct,
                ));
            }
            Some(Err(v)) => {
                return Err(media_error(
                    format!("{name} has an invalid compatible-with value [{v}]."),
                    accept,
                    ct,
                ));
            }
            None => {}
        }
    }
    if let (Some(Ok(a)), Some(Ok(c))) = (&accept_compat, &ct_compat)
        && a != c
    {
        return Err(media_error(
            "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match.".to_owned(),
            accept,
            ct,
        ));
    }
    if has_body {
        if ct.is_empty() {
            return Err(Reply::json(
                406,
                &json!({"error": "Content-Type header is missing", "status": 406}),
            ));
        }
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let known = matches!(
            base.as_str(),
            "application/json"
                | "application/x-ndjson"
                | "application/vnd.elasticsearch+json"
                | "application/vnd.elasticsearch+x-ndjson"
        );
        if !known {
            return Err(Reply::json(
                406,
                &json!({"error": format!("Content-Type header [{ct}] is not supported"), "status": 406}),
            ));
        }
    }
    Ok(chosen)
}

// ---------------------------------------------------------------------------------------------
// Authentication

pub(crate) enum AuthFailure {
    Missing,
    BadUser(String),
    BadCredentials,
}

/// Checks the `Authorization` header against the configured credentials.
pub(crate) fn check_auth(auth: &StandInAuth, headers: &HeaderMap) -> Result<(), AuthFailure> {
    if *auth == StandInAuth::None {
        return Ok(());
    }
    let Some(value) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(AuthFailure::Missing);
    };
    let Some((scheme, cred)) = value.trim().split_once(' ') else {
        return Err(AuthFailure::Missing);
    };
    let scheme = scheme.to_ascii_lowercase();
    let cred = cred.trim();
    match scheme.as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(cred)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (u, p) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            match auth {
                StandInAuth::Basic { user, password } if user == u && password == p => Ok(()),
                _ => Err(AuthFailure::BadUser(u.to_owned())),
            }
        }
        "apikey" => match auth {
            StandInAuth::ApiKey(token) if token == cred => Ok(()),
            _ => Err(AuthFailure::BadCredentials),
        },
        "bearer" => match auth {
            StandInAuth::Bearer(token) if token == cred => Ok(()),
            _ => Err(AuthFailure::BadCredentials),
        },
        _ => Err(AuthFailure::Missing),
    }
}

pub(crate) fn auth_reason(fail: &AuthFailure, uri: &str) -> String {
    match fail {
        AuthFailure::Missing => format!("missing authentication credentials for REST request [{uri}]"),
        AuthFailure::BadUser(u) => format!("unable to authenticate user [{u}] for REST request [{uri}]"),
        AuthFailure::BadCredentials => {
            "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
                .to_owned()
        }
    }
}

const WWW_AUTHENTICATE: [&str; 3] = [
    "Basic realm=\"security\" charset=\"UTF-8\"",
    "Bearer realm=\"security\"",
    "ApiKey",
];

fn es_unauthorized(fail: &AuthFailure, uri: &str) -> Reply {
    let mut reply = EsError::new(401, "security_exception", auth_reason(fail, uri))
        .with("header", json!({"WWW-Authenticate": WWW_AUTHENTICATE}))
        .reply();
    for v in WWW_AUTHENTICATE {
        reply.headers.push(("WWW-Authenticate", v.to_owned()));
    }
    reply
}

// ---------------------------------------------------------------------------------------------
// Routing

pub(crate) fn no_handler(req: &Req) -> Reply {
    Reply::json(
        400,
        &json!({
            "error": format!("no handler found for uri [{}] and method [{}]", req.uri(), req.method),
            "status": 400
        }),
    )
}

/// `None` when the method is allowed, else ES's 405 answer.
pub(crate) fn only(req: &Req, methods: &[Method]) -> Option<Reply> {
    if methods.contains(&req.method) {
        return None;
    }
    let allowed: Vec<&str> = methods.iter().map(Method::as_str).collect();
    Some(Reply::json(
        405,
        &json!({
            "error": format!(
                "Incorrect HTTP method for uri [{}] and method [{}], allowed: [{}]",
                req.uri(),
                req.method,
                allowed.join(", ")
            ),
            "status": 405
        }),
    ))
}

macro_rules! allow {
    ($req:expr, [$($m:ident),+]) => {
        if let Some(r) = only($req, &[$(Method::$m),+]) {
            return Ok(r);
        }
    };
}

fn route(shared: &Shared, node: usize, req: &Req) -> Result<Reply, EsError> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [] => {
            allow!(req, [GET, HEAD]);
            Ok(info(shared, node))
        }
        ["_cluster", "health"] => {
            allow!(req, [GET]);
            Ok(health(shared, None))
        }
        ["_cluster", "health", index] => {
            allow!(req, [GET]);
            Ok(health(shared, Some(index)))
        }
        ["_nodes", rest @ ..] if rest.len() <= 2 => {
            allow!(req, [GET]);
            Ok(nodes_info(shared))
        }
        ["_connector", rest @ ..] => connectors::route(shared, req, rest),
        ["_bulk"] => {
            allow!(req, [POST, PUT]);
            bulk::bulk(shared, req, None)
        }
        ["_search"] => {
            allow!(req, [GET, POST]);
            search::search(shared, req, None)
        }
        ["_search", "scroll"] | ["_search", "scroll", _] => {
            allow!(req, [GET, POST, DELETE]);
            search::scroll(shared, req)
        }
        ["_count"] => {
            allow!(req, [GET, POST]);
            search::count(shared, req, None)
        }
        ["_pit"] => {
            allow!(req, [DELETE]);
            search::close_pit(shared, req)
        }
        ["_refresh"] => {
            allow!(req, [GET, POST]);
            refresh(shared, "_all")
        }
        ["_mget"] => {
            allow!(req, [GET, POST]);
            docs::mget(shared, req, None)
        }
        [first, ..] if first.starts_with('_') => Ok(no_handler(req)),
        [index] => match req.method {
            Method::PUT => create_index(shared, req, index),
            Method::HEAD => index_exists(shared, index),
            Method::GET => get_index(shared, index),
            Method::DELETE => delete_index(shared, index),
            _ => Ok(only(
                req,
                &[Method::PUT, Method::HEAD, Method::GET, Method::DELETE],
            )
            .unwrap_or_else(|| no_handler(req))),
        },
        [index, "_bulk"] => {
            allow!(req, [POST, PUT]);
            bulk::bulk(shared, req, Some(index))
        }
        [index, "_doc"] => {
            allow!(req, [POST]);
            docs::index_doc(shared, req, index, None, true)
        }
        [index, "_doc", id] => match req.method {
            Method::GET | Method::HEAD => docs::get_doc(shared, req, index, id),
            Method::PUT | Method::POST => docs::index_doc(shared, req, index, Some(id), false),
            Method::DELETE => docs::delete_doc(shared, req, index, id),
            _ => Ok(no_handler(req)),
        },
        [index, "_create", id] => {
            allow!(req, [PUT, POST]);
            docs::index_doc(shared, req, index, Some(id), true)
        }
        [index, "_update", id] => {
            allow!(req, [POST]);
            docs::update_doc(shared, req, index, id)
        }
        [index, "_source", id] => {
            allow!(req, [GET, HEAD]);
            docs::get_source(shared, req, index, id)
        }
        [index, "_search"] => {
            allow!(req, [GET, POST]);
            search::search(shared, req, Some(index))
        }
        [index, "_count"] => {
            allow!(req, [GET, POST]);
            search::count(shared, req, Some(index))
        }
        [index, "_refresh"] => {
            allow!(req, [GET, POST]);
            refresh(shared, index)
        }
        [index, "_delete_by_query"] => {
            allow!(req, [POST]);
            search::delete_by_query(shared, req, index)
        }
        [index, "_pit"] => {
            allow!(req, [POST]);
            search::open_pit(shared, req, index)
        }
        [index, "_mget"] => {
            allow!(req, [GET, POST]);
            docs::mget(shared, req, Some(index))
        }
        [index, "_mapping"] => match req.method {
            Method::GET => get_mapping(shared, index),
            Method::PUT | Method::POST => put_mapping(shared, req, index),
            _ => Ok(no_handler(req)),
        },
        _ => Ok(no_handler(req)),
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster-level endpoints

pub(crate) fn version_block(version: &str) -> Value {
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(9);
    let (lucene, wire) = match major {
        9 => ("10.2.2", "8.19.0".to_owned()),
        8 => ("9.12.0", "7.17.0".to_owned()),
        _ => ("10.2.2", format!("{}.0.0", major.saturating_sub(1))),
    };
    json!({
        "number": version,
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "0000000000000000000000000000000000000000",
        "build_date": "2025-07-09T22:10:13.578182715Z",
        "build_snapshot": false,
        "lucene_version": lucene,
        "minimum_wire_compatibility_version": wire,
        "minimum_index_compatibility_version": format!("{}.0.0", major.saturating_sub(1)),
    })
}

fn info(shared: &Shared, node: usize) -> Reply {
    Reply::ok(&json!({
        "name": shared.nodes[node].name,
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": shared.cluster_uuid,
        "version": version_block(&shared.opts.version),
        "tagline": "You Know, for Search",
    }))
}

fn health(shared: &Shared, index: Option<&str>) -> Reply {
    let up = (0..shared.nodes.len()).filter(|i| shared.is_up(*i)).count();
    let cluster = lock(&shared.cluster);
    let (status, shards, code) = match index {
        Some(expr) => match cluster.resolve(expr, false) {
            Ok(names) => ("green", names.len(), 200),
            Err(_) => ("red", 0, 408),
        },
        None => ("green", cluster.indices.len(), 200),
    };
    Reply::json(
        code,
        &json!({
            "cluster_name": CLUSTER_NAME,
            "status": status,
            "timed_out": code != 200,
            "number_of_nodes": up,
            "number_of_data_nodes": up,
            "active_primary_shards": shards,
            "active_shards": shards,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }),
    )
}

/// `_nodes[/…]`: every node that is up, with the `http` section sniffers read.
fn nodes_info(shared: &Shared) -> Reply {
    let mut nodes = serde_json::Map::new();
    for (i, n) in shared.nodes.iter().enumerate() {
        if !shared.is_up(i) {
            continue;
        }
        let addr = format!("127.0.0.1:{}", n.port);
        nodes.insert(
            n.id.clone(),
            json!({
                "name": n.name,
                "transport_address": format!("127.0.0.1:{}", 9300 + i),
                "host": "127.0.0.1",
                "ip": "127.0.0.1",
                "version": shared.opts.version,
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "0000000000000000000000000000000000000000",
                "roles": ["data", "ingest", "master"],
                "attributes": {},
                "http": {
                    "bound_address": [addr],
                    "publish_address": addr,
                    "max_content_length_in_bytes": MAX_CONTENT_LENGTH,
                },
            }),
        );
    }
    let n = nodes.len();
    Reply::ok(&json!({
        "_nodes": {"total": n, "successful": n, "failed": 0},
        "cluster_name": CLUSTER_NAME,
        "nodes": nodes,
    }))
}

// ---------------------------------------------------------------------------------------------
// Index-level endpoints

fn create_index(shared: &Shared, req: &Req, name: &str) -> Result<Reply, EsError> {
    let body = optional_object_body(req)?;
    check_fields(
        &body,
        &["settings", "mappings", "aliases"],
        "create_index_request",
    )?;
    let get = |k: &str| body.get(k).cloned().unwrap_or_else(|| json!({}));
    let mut cluster = lock(&shared.cluster);
    cluster.create_index(name, get("settings"), get("mappings"), get("aliases"))?;
    Ok(Reply::ok(
        &json!({"acknowledged": true, "shards_acknowledged": true, "index": name}),
    ))
}

fn index_exists(shared: &Shared, expr: &str) -> Result<Reply, EsError> {
    let cluster = lock(&shared.cluster);
    let found = cluster.resolve(expr, false).is_ok_and(|v| !v.is_empty());
    Ok(Reply::empty(if found { 200 } else { 404 }))
}

fn get_index(shared: &Shared, expr: &str) -> Result<Reply, EsError> {
    let cluster = lock(&shared.cluster);
    let mut out = serde_json::Map::new();
    for name in cluster.resolve(expr, false)? {
        if let Some(i) = cluster.indices.get(&name) {
            out.insert(name.clone(), i.info(&name));
        }
    }
    Ok(Reply::ok(&Value::Object(out)))
}

fn delete_index(shared: &Shared, expr: &str) -> Result<Reply, EsError> {
    if expr.contains('*') || expr == "_all" {
        // `action.destructive_requires_name` is true by default.
        return Err(EsError::illegal_argument(
            "Wildcard expressions or all indices are not allowed",
        ));
    }
    let mut cluster = lock(&shared.cluster);
    for name in cluster.resolve(expr, false)? {
        cluster.indices.remove(&name);
    }
    Ok(Reply::ok(&json!({"acknowledged": true})))
}

fn refresh(shared: &Shared, expr: &str) -> Result<Reply, EsError> {
    let cluster = lock(&shared.cluster);
    let n = cluster.resolve(expr, false)?.len();
    Ok(Reply::ok(
        &json!({"_shards": {"total": n * 2, "successful": n, "failed": 0}}),
    ))
}

fn get_mapping(shared: &Shared, expr: &str) -> Result<Reply, EsError> {
    let cluster = lock(&shared.cluster);
    let mut out = serde_json::Map::new();
    for name in cluster.resolve(expr, false)? {
        if let Some(i) = cluster.indices.get(&name) {
            out.insert(name.clone(), json!({"mappings": i.mappings}));
        }
    }
    Ok(Reply::ok(&Value::Object(out)))
}

fn put_mapping(shared: &Shared, req: &Req, expr: &str) -> Result<Reply, EsError> {
    let body = super::http::object_body(req)?;
    let mut cluster = lock(&shared.cluster);
    for name in cluster.resolve(expr, false)? {
        if let Some(i) = cluster.indices.get_mut(&name) {
            merge_mapping(i, &body);
        }
    }
    Ok(Reply::ok(&json!({"acknowledged": true})))
}

fn merge_mapping(index: &mut Index, body: &serde_json::Map<String, Value>) {
    if !index.mappings.is_object() {
        index.mappings = json!({});
    }
    docs::deep_merge(&mut index.mappings, &Value::Object(body.clone()));
}
