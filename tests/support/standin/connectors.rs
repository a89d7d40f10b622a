//! The `_connector` API (PROTOCOL.md §1, §2, §4.1): create with ES's defaults, get, list,
//! soft/hard delete, every `_connector/{id}/_xxx` update, the status state machine, and
//! `_connector/_secret`. Connectors are ordinary documents of the hidden `.elastic-connectors`
//! index (without `id` in `_source`), so the document API and searches see them too.
//! `_connector/_sync_job` is routed on to `sync_jobs`.

use hyper::Method;
use serde_json::{Map, Value, json};

use super::cron;
use super::es::{no_handler, only};
use super::http::{
    EsError, Reply, Req, check_fields, new_id, now_iso, object_body, optional_object_body,
};
use super::state::{CONNECTORS_INDEX, Cluster, SYNC_JOBS_INDEX, validate_index_name};
use super::{Shared, lock, sync_jobs};

pub(crate) const CONNECTOR_STATUSES: &[&str] = &[
    "created",
    "needs_configuration",
    "configured",
    "connected",
    "error",
];
pub(crate) const JOB_STATUSES: &[&str] = &[
    "pending",
    "in_progress",
    "canceling",
    "canceled",
    "suspended",
    "completed",
    "error",
];
/// Elastic-managed (native) connectors must write to indices with this prefix.
const MANAGED_INDEX_PREFIX: &str = "content-";

pub(crate) fn connector_not_found(id: &str) -> EsError {
    EsError::resource_not_found(format!("connector [{id}] not found"))
}

/// The stored connector, unless it is missing or (without `include_deleted`) soft-deleted.
pub(crate) fn load(
    cluster: &Cluster,
    id: &str,
    include_deleted: bool,
) -> Result<Map<String, Value>, EsError> {
    let doc = cluster
        .doc(CONNECTORS_INDEX, id)
        .map(|d| d.object())
        .ok_or_else(|| connector_not_found(id))?;
    if !include_deleted && doc.get("deleted").and_then(Value::as_bool).unwrap_or(false) {
        return Err(connector_not_found(id));
    }
    Ok(doc)
}

fn with_id(id: &str, doc: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_owned()));
    out.extend(doc);
    Value::Object(out)
}

pub(crate) fn updated(result: &str) -> Reply {
    Reply::ok(&json!({"result": result}))
}

pub(crate) fn route(shared: &Shared, req: &Req, rest: &[&str]) -> Result<Reply, EsError> {
    match rest {
        [] => match req.method {
            Method::GET => list(shared, req),
            Method::POST | Method::PUT => put(shared, req, None),
            _ => Ok(only(req, &[Method::GET, Method::POST, Method::PUT])
                .unwrap_or_else(|| no_handler(req))),
        },
        ["_secret"] => match req.method {
            Method::POST => secret_post(shared, req),
            _ => Ok(only(req, &[Method::POST]).unwrap_or_else(|| no_handler(req))),
        },
        ["_secret", id] => secret(shared, req, id),
        ["_sync_job", rest @ ..] => sync_jobs::route(shared, req, rest),
        [id] => match req.method {
            Method::GET => get(shared, req, id),
            Method::PUT => put(shared, req, Some(id)),
            Method::DELETE => delete(shared, req, id),
            _ => Ok(only(req, &[Method::GET, Method::PUT, Method::DELETE])
                .unwrap_or_else(|| no_handler(req))),
        },
        [id, "_filtering", action @ ("_validation" | "_activate")] => {
            if let Some(r) = only(req, &[Method::PUT]) {
                return Ok(r);
            }
            if *action == "_activate" {
                activate_filtering(shared, id)
            } else {
                filtering_validation(shared, req, id)
            }
        }
        [id, action] if action.starts_with('_') => {
            if let Some(r) = only(req, &[Method::PUT]) {
                return Ok(r);
            }
            update(shared, req, id, action)
        }
        _ => Ok(no_handler(req)),
    }
}

// ---------------------------------------------------------------------------------------------
// Create, get, list, delete

fn default_rule(now: &str, order: i64) -> Value {
    json!({
        "created_at": now,
        "field": "_",
        "id": "DEFAULT",
        "order": order,
        "policy": "include",
        "rule": "regex",
        "updated_at": now,
        "value": ".*"
    })
}

fn default_rules(now: &str) -> Value {
    json!({
        "advanced_snippet": {"created_at": now, "updated_at": now, "value": {}},
        "rules": [default_rule(now, 0)],
        "validation": {"errors": [], "state": "valid"}
    })
}

fn default_schedule() -> Value {
    json!({"enabled": false, "interval": "0 0 0 * * ?"})
}

/// `ConnectorIndexService.createConnectorWithDefaultValues`, plus the framework's pipeline and
/// feature defaults so every field the protocol names is present.
fn new_connector(body: &Map<String, Value>) -> Map<String, Value> {
    let now = now_iso();
    let is_native = body
        .get("is_native")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let field = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
    let doc = json!({
        "api_key_id": null,
        "api_key_secret_id": null,
        "configuration": {},
        "custom_scheduling": {},
        "description": field("description"),
        "error": null,
        "features": {
            "document_level_security": {"enabled": false},
            "incremental_sync": {"enabled": false},
            "native_connector_api_keys": {"enabled": false},
            "sync_rules": {"advanced": {"enabled": false}, "basic": {"enabled": false}}
        },
        "filtering": [{"active": default_rules(&now), "domain": "DEFAULT", "draft": default_rules(&now)}],
        "index_name": field("index_name"),
        "is_native": is_native,
        "language": field("language"),
        "last_access_control_sync_error": null,
        "last_access_control_sync_scheduled_at": null,
        "last_access_control_sync_status": null,
        "last_deleted_document_count": null,
        "last_incremental_sync_scheduled_at": null,
        "last_indexed_document_count": null,
        "last_seen": null,
        "last_sync_error": null,
        "last_sync_scheduled_at": null,
        "last_sync_status": null,
        "last_synced": null,
        "name": body.get("name").and_then(Value::as_str).unwrap_or(""),
        "pipeline": {
            "extract_binary_content": true,
            "name": "search-default-ingestion",
            "reduce_whitespace": true,
            "run_ml_inference": true
        },
        "scheduling": {
            "access_control": default_schedule(),
            "full": default_schedule(),
            "incremental": default_schedule()
        },
        "service_type": field("service_type"),
        "status": if is_native { "needs_configuration" } else { "created" },
        "sync_cursor": null,
        "sync_now": false,
        "deleted": false
    });
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn expect_string_or_null(
    body: &Map<String, Value>,
    key: &str,
    parser: &str,
) -> Result<(), EsError> {
    match body.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(EsError::bad_field(
            parser,
            key,
            EsError::illegal_argument(format!("[{key}] must be a string or null")),
        )),
    }
}

/// 400 when another (not soft-deleted) connector already writes to `index_name`.
fn check_index_in_use(
    cluster: &Cluster,
    index_name: &str,
    except: Option<&str>,
) -> Result<(), EsError> {
    let Some(idx) = cluster.indices.get(CONNECTORS_INDEX) else {
        return Ok(());
    };
    let taken = idx.docs.iter().any(|(id, d)| {
        if Some(&**id) == except {
            return false;
        }
        let doc = d.object();
        doc.get("index_name").and_then(Value::as_str) == Some(index_name)
            && !doc.get("deleted").and_then(Value::as_bool).unwrap_or(false)
    });
    if taken {
        return Err(EsError::status(
            400,
            format!("Index name [{index_name}] is used by another connector."),
        ));
    }
    Ok(())
}

fn check_managed_prefix(index_name: Option<&str>, is_native: bool) -> Result<(), EsError> {
    match index_name {
        Some(name) if is_native && !name.starts_with(MANAGED_INDEX_PREFIX) => {
            Err(EsError::validation(&[format!(
                "Index [{name}] is invalid. Index attached to an Elastic-managed connector must start with the prefix: [{MANAGED_INDEX_PREFIX}]"
            )]))
        }
        _ => Ok(()),
    }
}

/// `PUT /_connector/{id}` (create or overwrite), `POST|PUT /_connector` (generated id).
fn put(shared: &Shared, req: &Req, id: Option<&str>) -> Result<Reply, EsError> {
    let parser = "connector_put_request";
    let body = optional_object_body(req)?;
    check_fields(
        &body,
        &[
            "name",
            "description",
            "index_name",
            "service_type",
            "is_native",
            "language",
        ],
        parser,
    )?;
    for k in [
        "name",
        "description",
        "index_name",
        "service_type",
        "language",
    ] {
        expect_string_or_null(&body, k, parser)?;
    }
    if body
        .get("is_native")
        .is_some_and(|v| !v.is_boolean() && !v.is_null())
    {
        return Err(EsError::bad_field(
            parser,
            "is_native",
            EsError::illegal_argument("[is_native] must be a boolean"),
        ));
    }
    let index_name = body.get("index_name").and_then(Value::as_str);
    if let Some(name) = index_name {
        validate_index_name(name)?;
    }
    let is_native = body
        .get("is_native")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    check_managed_prefix(index_name, is_native)?;
    let id = match id {
        Some(id) => id.to_owned(),
        None => new_id(),
    };
    let mut cluster = lock(&shared.cluster);
    if let Some(name) = index_name {
        check_index_in_use(&cluster, name, Some(&id))?;
    }
    let doc = new_connector(&body);
    let w = cluster.put_json(CONNECTORS_INDEX, &id, &Value::Object(doc));
    let status = if w.result == "created" { 201 } else { 200 };
    Ok(Reply::json(status, &json!({"result": w.result, "id": id})))
}

fn get(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let include_deleted = req.bool_param("include_deleted", false)?;
    let cluster = lock(&shared.cluster);
    let doc = load(&cluster, id, include_deleted)?;
    Ok(Reply::ok(&with_id(id, doc)))
}

fn csv(req: &Req, key: &str) -> Option<Vec<String>> {
    req.param(key).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

pub(crate) fn paging(req: &Req) -> Result<(usize, usize), EsError> {
    let from = req.num_param("from")?.unwrap_or(0);
    let size = req.num_param("size")?.unwrap_or(100);
    let mut errors = Vec::new();
    if from < 0 {
        errors.push(format!(
            "[from] parameter cannot be negative, found [{from}]"
        ));
    }
    if size < 0 {
        errors.push(format!(
            "[size] parameter cannot be negative, found [{size}]"
        ));
    }
    if from + size > 10_000 {
        errors.push(format!(
            "Too many results. [from] + [size] must be at most [10000], found [{}]",
            from + size
        ));
    }
    if !errors.is_empty() {
        return Err(EsError::validation(&errors));
    }
    Ok((from as usize, size as usize))
}

/// `GET /_connector`: filters, then sorted by `index_name` (missing last), then id.
fn list(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let (from, size) = paging(req)?;
    let include_deleted = req.bool_param("include_deleted", false)?;
    let index_names = csv(req, "index_name");
    let names = csv(req, "connector_name");
    let types = csv(req, "service_type");
    let query = req.param("query").filter(|q| !q.is_empty());
    let cluster = lock(&shared.cluster);
    let Some(idx) = cluster.indices.get(CONNECTORS_INDEX) else {
        return Ok(Reply::ok(&json!({"count": 0, "results": []})));
    };
    let in_list = |list: &Option<Vec<String>>, v: Option<&Value>| match list {
        None => true,
        Some(l) => v
            .and_then(Value::as_str)
            .is_some_and(|s| l.iter().any(|x| x == s)),
    };
    let mut hits: Vec<(String, Map<String, Value>)> = idx
        .docs
        .iter()
        .map(|(id, d)| (id.to_string(), d.object()))
        .filter(|(_, doc)| {
            (include_deleted || !doc.get("deleted").and_then(Value::as_bool).unwrap_or(false))
                && in_list(&index_names, doc.get("index_name"))
                && in_list(&names, doc.get("name"))
                && in_list(&types, doc.get("service_type"))
                && query.is_none_or(|q| {
                    ["name", "description", "index_name"].iter().any(|k| {
                        doc.get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.contains(q))
                    })
                })
        })
        .collect();
    hits.sort_by(|(ia, a), (ib, b)| {
        let ka = a.get("index_name").and_then(Value::as_str);
        let kb = b.get("index_name").and_then(Value::as_str);
        match (ka, kb) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| ia.cmp(ib))
    });
    let count = hits.len();
    let results: Vec<Value> = hits
        .into_iter()
        .skip(from)
        .take(size)
        .map(|(id, d)| with_id(&id, d))
        .collect();
    Ok(Reply::ok(&json!({"count": count, "results": results})))
}

/// `DELETE /_connector/{id}?hard=&delete_sync_jobs=`.
fn delete(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let hard = req.bool_param("hard", false)?;
    let delete_jobs = req.bool_param("delete_sync_jobs", false)?;
    let mut cluster = lock(&shared.cluster);
    let mut doc = load(&cluster, id, hard)?;
    if hard {
        if let Some(idx) = cluster.indices.get_mut(CONNECTORS_INDEX) {
            idx.remove(id);
        }
    } else {
        doc.insert("deleted".into(), Value::Bool(true));
        cluster.put_json(CONNECTORS_INDEX, id, &Value::Object(doc));
    }
    if delete_jobs && let Some(jobs) = cluster.indices.get_mut(SYNC_JOBS_INDEX) {
        let victims: Vec<String> = jobs
            .docs
            .iter()
            .filter(|(_, d)| d.json().pointer("/connector/id").and_then(Value::as_str) == Some(id))
            .map(|(jid, _)| jid.to_string())
            .collect();
        for jid in victims {
            jobs.remove(&jid);
        }
    }
    Ok(Reply::ok(&json!({"acknowledged": true})))
}

// ---------------------------------------------------------------------------------------------
// Updates

/// Loads a live connector, applies `f`, and stores it unless nothing changed (ES's noop detection
/// answers `{"result":"noop"}` then).
fn modify(
    shared: &Shared,
    id: &str,
    f: impl FnOnce(&Cluster, &mut Map<String, Value>) -> Result<(), EsError>,
) -> Result<Reply, EsError> {
    let mut cluster = lock(&shared.cluster);
    let before = load(&cluster, id, false)?;
    let mut after = before.clone();
    f(&cluster, &mut after)?;
    if after == before {
        return Ok(updated("noop"));
    }
    cluster.put_json(CONNECTORS_INDEX, id, &Value::Object(after));
    Ok(updated("updated"))
}

fn require<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a Value, EsError> {
    body.get(key)
        .ok_or_else(|| EsError::validation(&[format!("[{key}] cannot be null or empty")]))
}

fn require_str<'a>(
    body: &'a Map<String, Value>,
    key: &str,
    parser: &str,
) -> Result<&'a str, EsError> {
    match require(body, key)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::String(_) | Value::Null => Err(EsError::validation(&[format!(
            "[{key}] cannot be null or empty"
        )])),
        _ => Err(EsError::bad_field(
            parser,
            key,
            EsError::illegal_argument(format!("[{key}] must be a string")),
        )),
    }
}

pub(crate) fn enum_value<'a>(
    v: &'a Value,
    allowed: &[&str],
    type_name: &str,
    parser: &str,
    key: &str,
) -> Result<&'a str, EsError> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s),
        _ => {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            Err(EsError::bad_field(
                parser,
                key,
                EsError::illegal_argument(format!("Unknown {type_name} [{shown}].")),
            ))
        }
    }
}

fn update(shared: &Shared, req: &Req, id: &str, action: &str) -> Result<Reply, EsError> {
    match action {
        "_check_in" => modify(shared, id, |_, doc| {
            doc.insert("last_seen".into(), json!(now_iso()));
            Ok(())
        }),
        "_configuration" => update_configuration(shared, req, id),
        "_error" => {
            let body = object_body(req)?;
            check_fields(&body, &["error"], "connector_update_error_request")?;
            let error = require(&body, "error")?.clone();
            let error = match error {
                Value::String(_) | Value::Null => error,
                _ => {
                    return Err(EsError::bad_field(
                        "connector_update_error_request",
                        "error",
                        EsError::illegal_argument("[error] must be a string"),
                    ));
                }
            };
            modify(shared, id, |_, doc| {
                // `Strings.isNullOrEmpty(error)` decides; the value itself is stored as sent.
                let empty = error.as_str().is_none_or(str::is_empty);
                let status = if empty { "connected" } else { "error" };
                doc.insert("status".into(), json!(status));
                doc.insert("error".into(), error);
                Ok(())
            })
        }
        "_features" => {
            let body = object_body(req)?;
            check_fields(&body, &["features"], "connector_update_features_request")?;
            let features = require(&body, "features")?.clone();
            validate_features(&features)?;
            modify(shared, id, |_, doc| {
                let slot = doc.entry("features").or_insert_with(|| json!({}));
                if !slot.is_object() {
                    *slot = json!({});
                }
                super::docs::deep_merge(slot, &features);
                Ok(())
            })
        }
        "_filtering" => update_filtering(shared, req, id),
        "_index_name" => {
            let parser = "connector_update_index_name_request";
            let body = object_body(req)?;
            check_fields(&body, &["index_name"], parser)?;
            let name = require(&body, "index_name")?.clone();
            expect_string_or_null(&body, "index_name", parser)?;
            if let Some(n) = name.as_str() {
                validate_index_name(n)?;
            }
            modify(shared, id, |cluster, doc| {
                if let Some(n) = name.as_str() {
                    check_index_in_use(cluster, n, Some(id))?;
                    let native = doc
                        .get("is_native")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if native && !n.starts_with(MANAGED_INDEX_PREFIX) {
                        return Err(EsError::status(
                            400,
                            format!(
                                "Index attached to an Elastic-managed connector must start with the prefix: [{MANAGED_INDEX_PREFIX}]. The index name in the payload [{n}] doesn't comply with this requirement."
                            ),
                        ));
                    }
                }
                doc.insert("index_name".into(), name);
                Ok(())
            })
        }
        "_name" => {
            let parser = "connector_update_name_request";
            let body = object_body(req)?;
            check_fields(&body, &["name", "description"], parser)?;
            expect_string_or_null(&body, "name", parser)?;
            expect_string_or_null(&body, "description", parser)?;
            let name = body.get("name").filter(|v| !v.is_null()).cloned();
            let description = body.get("description").filter(|v| !v.is_null()).cloned();
            if name.is_none() && description.is_none() {
                return Err(EsError::validation(&[
                    "[name] and [description] cannot both be null.".to_owned(),
                ]));
            }
            modify(shared, id, |_, doc| {
                if let Some(n) = name {
                    doc.insert("name".into(), n);
                }
                if let Some(d) = description {
                    doc.insert("description".into(), d);
                }
                Ok(())
            })
        }
        "_native" => {
            let body = object_body(req)?;
            check_fields(&body, &["is_native"], "connector_update_native_request")?;
            let Some(native) = require(&body, "is_native")?.as_bool() else {
                return Err(EsError::bad_field(
                    "connector_update_native_request",
                    "is_native",
                    EsError::illegal_argument("[is_native] must be a boolean"),
                ));
            };
            modify(shared, id, |_, doc| {
                let index_name = doc.get("index_name").and_then(Value::as_str);
                if native
                    && let Some(n) = index_name.filter(|n| !n.starts_with(MANAGED_INDEX_PREFIX))
                {
                    return Err(EsError::status(
                        400,
                        format!(
                            "The index name [{n}] attached to the connector [{id}] must start with the required prefix: [{MANAGED_INDEX_PREFIX}] to be Elastic-managed. Please update the attached index first to comply with this requirement."
                        ),
                    ));
                }
                doc.insert("is_native".into(), Value::Bool(native));
                // A connected connector has to reconnect after the switch.
                if doc.get("status").and_then(Value::as_str) == Some("connected") {
                    doc.insert("status".into(), json!("configured"));
                }
                Ok(())
            })
        }
        "_pipeline" => {
            let body = object_body(req)?;
            check_fields(&body, &["pipeline"], "connector_update_pipeline_request")?;
            let pipeline = require(&body, "pipeline")?.clone();
            let Some(p) = pipeline.as_object() else {
                return Err(EsError::validation(&[
                    "[pipeline] cannot be null.".to_owned()
                ]));
            };
            check_fields(
                p,
                &[
                    "name",
                    "extract_binary_content",
                    "reduce_whitespace",
                    "run_ml_inference",
                ],
                "ingest_pipeline_params",
            )?;
            let mut missing = Vec::new();
            for k in [
                "name",
                "extract_binary_content",
                "reduce_whitespace",
                "run_ml_inference",
            ] {
                if p.get(k).is_none_or(Value::is_null) {
                    missing.push(format!("[{k}] is required"));
                }
            }
            if !missing.is_empty() {
                return Err(EsError::parse(
                    "[1:2] [ingest_pipeline_params] failed to parse: missing required fields",
                )
                .caused_by(EsError::validation(&missing)));
            }
            modify(shared, id, |_, doc| {
                doc.insert("pipeline".into(), pipeline);
                Ok(())
            })
        }
        "_scheduling" => {
            let body = object_body(req)?;
            check_fields(
                &body,
                &["scheduling"],
                "connector_update_scheduling_request",
            )?;
            let scheduling = require(&body, "scheduling")?.clone();
            validate_scheduling(&scheduling)?;
            modify(shared, id, |_, doc| {
                let slot = doc.entry("scheduling").or_insert_with(|| json!({}));
                if !slot.is_object() {
                    *slot = json!({});
                }
                super::docs::deep_merge(slot, &scheduling);
                Ok(())
            })
        }
        "_service_type" => {
            let parser = "connector_update_service_type_request";
            let body = object_body(req)?;
            check_fields(&body, &["service_type"], parser)?;
            let st = require_str(&body, "service_type", parser)?.to_owned();
            modify(shared, id, |_, doc| {
                // A new source type needs a new configuration, unless nothing touched it yet.
                let status = match doc.get("status").and_then(Value::as_str) {
                    Some("created") => "created",
                    _ => "needs_configuration",
                };
                doc.insert("service_type".into(), Value::String(st));
                doc.insert("status".into(), json!(status));
                Ok(())
            })
        }
        "_status" => {
            let parser = "connector_update_status_request";
            let body = object_body(req)?;
            check_fields(&body, &["status"], parser)?;
            let to = enum_value(
                require(&body, "status")?,
                CONNECTOR_STATUSES,
                "ConnectorStatus",
                parser,
                "status",
            )?
            .to_owned();
            modify(shared, id, |_, doc| {
                let from = doc
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("created")
                    .to_owned();
                if !connector_transition_ok(&from, &to) {
                    return Err(EsError::status(
                        400,
                        format!(
                            "Invalid transition attempt from [{from}] to [{to}]. Such a connector status transition is not supported by the Connector Protocol."
                        ),
                    ));
                }
                doc.insert("status".into(), Value::String(to));
                Ok(())
            })
        }
        "_api_key_id" => {
            let parser = "connector_update_api_key_id_request";
            let body = object_body(req)?;
            check_fields(&body, &["api_key_id", "api_key_secret_id"], parser)?;
            expect_string_or_null(&body, "api_key_id", parser)?;
            expect_string_or_null(&body, "api_key_secret_id", parser)?;
            let key = body.get("api_key_id").filter(|v| !v.is_null()).cloned();
            let secret = body
                .get("api_key_secret_id")
                .filter(|v| !v.is_null())
                .cloned();
            if key.is_none() && secret.is_none() {
                return Err(EsError::validation(&[
                    "[api_key_id] and [api_key_secret_id] cannot both be null.".to_owned(),
                ]));
            }
            modify(shared, id, |_, doc| {
                if let Some(k) = key {
                    doc.insert("api_key_id".into(), k);
                }
                if let Some(s) = secret {
                    doc.insert("api_key_secret_id".into(), s);
                }
                Ok(())
            })
        }
        "_last_sync" => update_last_sync(shared, req, id),
        _ => Ok(no_handler(req)),
    }
}

/// `ConnectorStateMachine`.
pub(crate) fn connector_transition_ok(from: &str, to: &str) -> bool {
    match from {
        "created" => matches!(to, "needs_configuration" | "error"),
        "needs_configuration" => matches!(to, "configured" | "error"),
        "configured" => matches!(
            to,
            "needs_configuration" | "configured" | "connected" | "error"
        ),
        "connected" => matches!(to, "connected" | "configured" | "error"),
        "error" => matches!(to, "connected" | "configured" | "error"),
        _ => false,
    }
}

fn validate_features(features: &Value) -> Result<(), EsError> {
    let parser = "connector_features";
    let Some(f) = features.as_object() else {
        return Err(EsError::validation(&[
            "[features] cannot be null.".to_owned()
        ]));
    };
    check_fields(
        f,
        &[
            "document_level_security",
            "incremental_sync",
            "native_connector_api_keys",
            "sync_rules",
        ],
        parser,
    )?;
    let enabled_only = |v: &Value, name: &str| -> Result<(), EsError> {
        let o = v.as_object().ok_or_else(|| {
            EsError::bad_field(
                parser,
                name,
                EsError::illegal_argument("expected an object"),
            )
        })?;
        check_fields(o, &["enabled"], "feature_enabled")?;
        if o.get("enabled").is_some_and(|e| !e.is_boolean()) {
            return Err(EsError::bad_field(
                "feature_enabled",
                "enabled",
                EsError::illegal_argument("[enabled] must be a boolean"),
            ));
        }
        Ok(())
    };
    for (k, v) in f {
        if k == "sync_rules" {
            let o = v.as_object().ok_or_else(|| {
                EsError::bad_field(parser, k, EsError::illegal_argument("expected an object"))
            })?;
            check_fields(o, &["basic", "advanced"], "sync_rules_feature")?;
            for (sk, sv) in o {
                enabled_only(sv, sk)?;
            }
        } else {
            enabled_only(v, k)?;
        }
    }
    Ok(())
}

fn validate_scheduling(scheduling: &Value) -> Result<(), EsError> {
    let parser = "connector_scheduling";
    let Some(s) = scheduling.as_object() else {
        return Err(EsError::validation(&[
            "[scheduling] cannot be null.".to_owned()
        ]));
    };
    check_fields(s, &["access_control", "full", "incremental"], parser)?;
    for (kind, sched) in s {
        let o = sched.as_object().ok_or_else(|| {
            EsError::bad_field(
                parser,
                kind,
                EsError::illegal_argument("expected an object"),
            )
        })?;
        check_fields(o, &["enabled", "interval"], "schedule_config")?;
        if !o.get("enabled").is_some_and(Value::is_boolean) {
            return Err(EsError::parse(format!(
                "[1:2] [schedule_config] failed to parse: [enabled] is required for [{kind}]"
            )));
        }
        let Some(interval) = o.get("interval").and_then(Value::as_str) else {
            return Err(EsError::parse(format!(
                "[1:2] [schedule_config] failed to parse: [interval] is required for [{kind}]"
            )));
        };
        if let Err(why) = cron::validate(interval) {
            return Err(EsError::bad_field(
                "schedule_config",
                "interval",
                EsError::illegal_argument(format!("invalid cron expression [{interval}]: {why}")),
            ));
        }
    }
    Ok(())
}

const DISPLAY_TYPES: &[&str] = &[
    "textbox", "textarea", "numeric", "toggle", "dropdown", "text",
];
const FIELD_TYPES: &[&str] = &["str", "int", "list", "bool"];

fn validate_configuration(conf: &Map<String, Value>) -> Result<(), EsError> {
    for (key, field) in conf {
        let Some(f) = field.as_object() else {
            return Err(EsError::bad_field(
                "connector_configuration",
                key,
                EsError::illegal_argument(format!("configuration field [{key}] must be an object")),
            ));
        };
        if let Some(d) = f.get("display").filter(|v| !v.is_null()) {
            enum_value(
                d,
                DISPLAY_TYPES,
                "DisplayType",
                "connector_configuration",
                "display",
            )?;
        }
        if let Some(t) = f.get("type").filter(|v| !v.is_null()) {
            enum_value(
                t,
                FIELD_TYPES,
                "ConnectorFieldType",
                "connector_configuration",
                "type",
            )?;
        }
    }
    Ok(())
}

/// `PUT …/_configuration` with `configuration` (replace the schema) or `values` (set values of
/// existing keys only). Both set `status: configured`.
fn update_configuration(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let body = object_body(req)?;
    check_fields(
        &body,
        &["configuration", "values"],
        "connector_update_configuration_request",
    )?;
    let conf = body.get("configuration").filter(|v| !v.is_null());
    let values = body.get("values").filter(|v| !v.is_null());
    match (conf, values) {
        (Some(_), Some(_)) => Err(EsError::validation(&[
            "[configuration] and [values] cannot both be provided in the same request.".to_owned(),
        ])),
        (None, None) => Err(EsError::status(
            400,
            "[configuration] and [values] cannot both be null.",
        )),
        (Some(conf), None) => {
            let Some(c) = conf.as_object() else {
                return Err(EsError::bad_field(
                    "connector_update_configuration_request",
                    "configuration",
                    EsError::illegal_argument("[configuration] must be an object"),
                ));
            };
            validate_configuration(c)?;
            let conf = conf.clone();
            modify(shared, id, |_, doc| {
                doc.insert("configuration".into(), conf);
                doc.insert("status".into(), json!("configured"));
                Ok(())
            })
        }
        (None, Some(values)) => {
            let Some(values) = values.as_object().cloned() else {
                return Err(EsError::bad_field(
                    "connector_update_configuration_request",
                    "values",
                    EsError::illegal_argument("[values] must be an object"),
                ));
            };
            modify(shared, id, |_, doc| {
                let conf = doc.entry("configuration").or_insert_with(|| json!({}));
                let Some(conf) = conf.as_object_mut() else {
                    return Err(EsError::status(
                        400,
                        "connector configuration is not an object",
                    ));
                };
                let unknown: Vec<&str> = values
                    .keys()
                    .filter(|k| !conf.contains_key(*k))
                    .map(String::as_str)
                    .collect();
                if !unknown.is_empty() {
                    return Err(EsError::status(
                        400,
                        format!(
                            "Unknown [configuration] fields in the request payload: [{}]. Remove them from request or register their schema first.",
                            unknown.join(", ")
                        ),
                    ));
                }
                for (k, v) in &values {
                    if let Some(Value::Object(field)) = conf.get_mut(k) {
                        field.insert("value".into(), v.clone());
                    }
                }
                doc.insert("status".into(), json!("configured"));
                Ok(())
            })
        }
    }
}

const RULE_POLICIES: &[&str] = &["include", "exclude"];
const RULE_KINDS: &[&str] = &[
    "contains",
    "ends_with",
    "equals",
    "regex",
    "starts_with",
    ">",
    "<",
];

fn parse_rules(rules: &Value, now: &str) -> Result<Vec<Value>, EsError> {
    let parser = "connector_filtering_rule";
    let Some(list) = rules.as_array() else {
        return Err(EsError::bad_field(
            "connector_update_filtering_request",
            "rules",
            EsError::illegal_argument("[rules] must be an array"),
        ));
    };
    let mut out = Vec::new();
    let mut default = None;
    for r in list {
        let Some(o) = r.as_object() else {
            return Err(EsError::bad_field(
                parser,
                "rules",
                EsError::illegal_argument("a rule must be an object"),
            ));
        };
        check_fields(
            o,
            &[
                "id",
                "field",
                "order",
                "policy",
                "rule",
                "value",
                "created_at",
                "updated_at",
            ],
            parser,
        )?;
        let mut missing = Vec::new();
        for k in ["id", "field", "order", "policy", "rule", "value"] {
            if o.get(k).is_none_or(Value::is_null) {
                missing.push(format!("[{k}] is required"));
            }
        }
        if !missing.is_empty() {
            return Err(EsError::parse(format!(
                "[1:2] [{parser}] failed to parse: missing required fields"
            ))
            .caused_by(EsError::validation(&missing)));
        }
        enum_value(
            &o["policy"],
            RULE_POLICIES,
            "FilteringPolicy",
            parser,
            "policy",
        )?;
        enum_value(
            &o["rule"],
            RULE_KINDS,
            "FilteringRuleCondition",
            parser,
            "rule",
        )?;
        if !o["order"].is_i64() && !o["order"].is_u64() {
            return Err(EsError::bad_field(
                parser,
                "order",
                EsError::illegal_argument("[order] must be an integer"),
            ));
        }
        let mut rule = o.clone();
        rule.entry("created_at").or_insert_with(|| json!(now));
        rule.insert("updated_at".into(), json!(now));
        if o.get("id").and_then(Value::as_str) == Some("DEFAULT") {
            default = Some(Value::Object(rule));
        } else {
            out.push(Value::Object(rule));
        }
    }
    // `ConnectorFiltering.sortFilteringRulesByOrder`: the others by order, then a fresh DEFAULT
    // rule ordered after the last one (keeping the sent DEFAULT rule's `created_at`).
    out.sort_by_key(|r| r.get("order").and_then(Value::as_i64).unwrap_or(0));
    let next_order = out
        .last()
        .and_then(|r| r.get("order").and_then(Value::as_i64))
        .map_or(0, |m| m + 1);
    let mut rule = default_rule(now, next_order);
    if let Some(created) = default.as_ref().and_then(|d| d.get("created_at")) {
        rule["created_at"] = created.clone();
    }
    out.push(rule);
    Ok(out)
}

/// `PUT …/_filtering`: edits the draft (`rules` and/or `advanced_snippet`), or with the legacy
/// `filtering` list replaces everything.
fn update_filtering(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let body = object_body(req)?;
    check_fields(
        &body,
        &["filtering", "rules", "advanced_snippet"],
        "connector_update_filtering_request",
    )?;
    let now = now_iso();
    if let Some(list) = body.get("filtering").filter(|v| !v.is_null()) {
        if !list
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object))
        {
            return Err(EsError::bad_field(
                "connector_update_filtering_request",
                "filtering",
                EsError::illegal_argument("[filtering] must be an array of objects"),
            ));
        }
        let list = list.clone();
        return modify(shared, id, |_, doc| {
            doc.insert("filtering".into(), list);
            Ok(())
        });
    }
    let rules = body
        .get("rules")
        .filter(|v| !v.is_null())
        .map(|r| parse_rules(r, &now))
        .transpose()?;
    let snippet = match body.get("advanced_snippet").filter(|v| !v.is_null()) {
        None => None,
        Some(s) => {
            let Some(o) = s.as_object() else {
                return Err(EsError::bad_field(
                    "connector_update_filtering_request",
                    "advanced_snippet",
                    EsError::illegal_argument("[advanced_snippet] must be an object"),
                ));
            };
            check_fields(
                o,
                &["value", "created_at", "updated_at"],
                "connector_filtering_advanced_snippet",
            )?;
            Some(o.get("value").cloned().ok_or_else(|| {
                EsError::validation(&["[advanced_snippet.value] cannot be null".to_owned()])
            })?)
        }
    };
    if rules.is_none() && snippet.is_none() {
        return Err(EsError::validation(&[
            "[advanced_snippet] and [rules] cannot be both null.".to_owned(),
        ]));
    }
    modify(shared, id, |_, doc| {
        let mut draft = draft_of(doc, &now);
        if let Some(rules) = rules {
            draft.insert("rules".into(), Value::Array(rules));
        }
        if let Some(value) = snippet {
            let created = draft
                .get("advanced_snippet")
                .and_then(|s| s.get("created_at"))
                .cloned()
                .unwrap_or_else(|| json!(now));
            draft.insert(
                "advanced_snippet".into(),
                json!({"created_at": created, "updated_at": now, "value": value}),
            );
        }
        draft.insert(
            "validation".into(),
            json!({"errors": [], "state": "edited"}),
        );
        set_filtering(doc, draft, None, &now);
        Ok(())
    })
}

/// A copy of `filtering[0].draft` (the defaults when a seeded document lacks it).
fn draft_of(doc: &Map<String, Value>, now: &str) -> Map<String, Value> {
    doc.get("filtering")
        .and_then(|f| f.get(0))
        .and_then(|f| f.get("draft"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(|| as_map(default_rules(now)))
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Stores `draft` (and `active`, when given) in `filtering[0]`, keeping the rest of the list.
fn set_filtering(
    doc: &mut Map<String, Value>,
    draft: Map<String, Value>,
    active: Option<Map<String, Value>>,
    now: &str,
) {
    let mut list = doc
        .get("filtering")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut entry = list
        .first()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(|| as_map(json!({"active": default_rules(now), "domain": "DEFAULT"})));
    entry.insert("draft".into(), Value::Object(draft));
    if let Some(a) = active {
        entry.insert("active".into(), Value::Object(a));
    }
    match list.first_mut() {
        Some(first) => *first = Value::Object(entry),
        None => list.push(Value::Object(entry)),
    }
    doc.insert("filtering".into(), Value::Array(list));
}

fn filtering_validation(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let parser = "connector_update_filtering_validation_request";
    let body = object_body(req)?;
    check_fields(&body, &["validation"], parser)?;
    let Some(v) = require(&body, "validation")?.as_object() else {
        return Err(EsError::validation(&[
            "[validation] cannot be null.".to_owned()
        ]));
    };
    check_fields(v, &["state", "errors"], "filtering_validation_info")?;
    let state = enum_value(
        require(v, "state")?,
        &["edited", "valid", "invalid"],
        "FilteringValidationState",
        "filtering_validation_info",
        "state",
    )?
    .to_owned();
    let errors = v.get("errors").cloned().unwrap_or_else(|| json!([]));
    if !errors.is_array() {
        return Err(EsError::bad_field(
            "filtering_validation_info",
            "errors",
            EsError::illegal_argument("[errors] must be an array"),
        ));
    }
    let now = now_iso();
    modify(shared, id, |_, doc| {
        let mut draft = draft_of(doc, &now);
        draft.insert(
            "validation".into(),
            json!({"errors": errors, "state": state}),
        );
        set_filtering(doc, draft, None, &now);
        Ok(())
    })
}

/// `PUT …/_filtering/_activate`: the draft becomes active, once the service validated it.
fn activate_filtering(shared: &Shared, id: &str) -> Result<Reply, EsError> {
    let now = now_iso();
    modify(shared, id, |_, doc| {
        let draft = draft_of(doc, &now);
        let state = draft
            .get("validation")
            .and_then(|v| v.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("edited");
        if state != "valid" {
            return Err(EsError::status(
                400,
                format!(
                    "Filtering draft needs to be validated by the connector service before activation. Current filtering draft validation state [{state}] is not equal to [valid]."
                ),
            ));
        }
        set_filtering(doc, draft.clone(), Some(draft), &now);
        Ok(())
    })
}

const LAST_SYNC_FIELDS: &[&str] = &[
    "last_access_control_sync_error",
    "last_access_control_sync_scheduled_at",
    "last_access_control_sync_status",
    "last_deleted_document_count",
    "last_incremental_sync_scheduled_at",
    "last_indexed_document_count",
    "last_seen",
    "last_sync_error",
    "last_sync_scheduled_at",
    "last_sync_status",
    "last_synced",
    "sync_cursor",
];

fn update_last_sync(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let parser = "connector_update_last_sync_stats_request";
    let body = object_body(req)?;
    check_fields(&body, LAST_SYNC_FIELDS, parser)?;
    for k in ["last_access_control_sync_status", "last_sync_status"] {
        if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
            enum_value(v, JOB_STATUSES, "ConnectorSyncStatus", parser, k)?;
        }
    }
    for k in ["last_deleted_document_count", "last_indexed_document_count"] {
        if body.get(k).is_some_and(|v| !v.is_null() && !v.is_number()) {
            return Err(EsError::bad_field(
                parser,
                k,
                EsError::illegal_argument(format!("[{k}] must be a number")),
            ));
        }
    }
    modify(shared, id, |_, doc| {
        for (k, v) in &body {
            doc.insert(k.clone(), v.clone());
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn secret_not_found(id: &str) -> EsError {
    EsError::resource_not_found(format!("No secret with id [{id}]"))
}

fn secret_value(req: &Req) -> Result<String, EsError> {
    let body = object_body(req)?;
    check_fields(&body, &["value"], "connector_secret_request")?;
    match body.get("value") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(EsError::validation(&[
            "[value] of the connector secret cannot be [null]".to_owned(),
        ])),
    }
}

fn secret_post(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let value = secret_value(req)?;
    let id = new_id();
    lock(&shared.cluster).secrets.insert(id.clone(), value);
    Ok(Reply::ok(&json!({"id": id})))
}

fn secret(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    match req.method {
        Method::GET => {
            let cluster = lock(&shared.cluster);
            let value = cluster
                .secrets
                .get(id)
                .ok_or_else(|| secret_not_found(id))?;
            Ok(Reply::ok(&json!({"id": id, "value": value})))
        }
        Method::PUT => {
            let value = secret_value(req)?;
            let existed = lock(&shared.cluster)
                .secrets
                .insert(id.to_owned(), value)
                .is_some();
            Ok(Reply::ok(
                &json!({"result": if existed { "updated" } else { "created" }}),
            ))
        }
        Method::DELETE => {
            let removed = lock(&shared.cluster).secrets.remove(id).is_some();
            if !removed {
                return Err(secret_not_found(id));
            }
            Ok(Reply::ok(&json!({"deleted": true})))
        }
        _ => Ok(only(req, &[Method::GET, Method::PUT, Method::DELETE])
            .unwrap_or_else(|| no_handler(req))),
    }
}
