//! The `_connector/_sync_job` API (PROTOCOL.md §3, §4.2): create with a snapshot of the connector,
//! get, list (newest first), delete, and the worker calls `_cancel`, `_check_in`, `_claim`,
//! `_error`, `_stats` with the job state machine. Jobs are documents of the hidden
//! `.elastic-connectors-sync-jobs` index. `_claim` is stricter than ES: claiming a job that is not
//! `pending`/`suspended` is a 409, so a second worker loses.

use hyper::Method;
use serde_json::{Map, Value, json};

use super::connectors::{self, JOB_STATUSES, enum_value, paging, updated};
use super::es::{no_handler, only};
use super::http::{
    EsError, Reply, Req, check_fields, new_id, now_iso, object_body, optional_object_body,
};
use super::state::{Cluster, SYNC_JOBS_INDEX};
use super::{Shared, lock};

const JOB_TYPES: &[&str] = &["full", "incremental", "access_control"];
const TRIGGER_METHODS: &[&str] = &["on_demand", "scheduled"];
const ACL_INDEX_PREFIX: &str = ".search-acl-filter-";

fn job_not_found(id: &str) -> EsError {
    EsError::resource_not_found(format!("connector sync job [{id}] not found"))
}

fn load(cluster: &Cluster, id: &str) -> Result<Map<String, Value>, EsError> {
    cluster
        .doc(SYNC_JOBS_INDEX, id)
        .map(|d| d.object())
        .ok_or_else(|| job_not_found(id))
}

fn with_id(id: &str, doc: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_owned()));
    out.extend(doc);
    Value::Object(out)
}

pub(crate) fn route(shared: &Shared, req: &Req, rest: &[&str]) -> Result<Reply, EsError> {
    match rest {
        [] => match req.method {
            Method::GET => list(shared, req),
            Method::POST => create(shared, req),
            _ => Ok(only(req, &[Method::GET, Method::POST]).unwrap_or_else(|| no_handler(req))),
        },
        [id] => match req.method {
            Method::GET => {
                let cluster = lock(&shared.cluster);
                Ok(Reply::ok(&with_id(id, load(&cluster, id)?)))
            }
            Method::DELETE => {
                let mut cluster = lock(&shared.cluster);
                load(&cluster, id)?;
                if let Some(idx) = cluster.indices.get_mut(SYNC_JOBS_INDEX) {
                    idx.remove(id);
                }
                Ok(Reply::ok(&json!({"acknowledged": true})))
            }
            _ => Ok(only(req, &[Method::GET, Method::DELETE]).unwrap_or_else(|| no_handler(req))),
        },
        [id, action] => {
            if let Some(r) = only(req, &[Method::PUT]) {
                return Ok(r);
            }
            match *action {
                "_cancel" => cancel(shared, id),
                "_check_in" => modify(shared, id, |doc| {
                    doc.insert("last_seen".into(), json!(now_iso()));
                    Ok(())
                }),
                "_claim" => claim(shared, req, id),
                "_error" => error(shared, req, id),
                "_stats" => stats(shared, req, id),
                _ => Ok(no_handler(req)),
            }
        }
        _ => Ok(no_handler(req)),
    }
}

/// `POST /_connector/_sync_job` with `{id: <connector id>, job_type?, trigger_method?}`.
fn create(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let parser = "connector_sync_job_post_request";
    let body = object_body(req)?;
    check_fields(&body, &["id", "job_type", "trigger_method"], parser)?;
    let connector_id = match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(EsError::validation(&[
                "[id] of the connector cannot be null or empty".to_owned(),
            ]));
        }
    };
    let job_type = match body.get("job_type").filter(|v| !v.is_null()) {
        Some(v) => enum_value(v, JOB_TYPES, "ConnectorSyncJobType", parser, "job_type")?.to_owned(),
        None => "full".to_owned(),
    };
    let trigger = match body.get("trigger_method").filter(|v| !v.is_null()) {
        Some(v) => enum_value(
            v,
            TRIGGER_METHODS,
            "ConnectorSyncJobTriggerMethod",
            parser,
            "trigger_method",
        )?
        .to_owned(),
        None => "on_demand".to_owned(),
    };
    let mut cluster = lock(&shared.cluster);
    let connector = connectors::load(&cluster, &connector_id, false).map_err(|_| {
        EsError::resource_not_found(format!(
            "Connector with id '{connector_id}' does not exist."
        ))
    })?;
    let field = |k: &str| connector.get(k).cloned().unwrap_or(Value::Null);
    if field("index_name").as_str().is_none_or(str::is_empty) {
        return Err(EsError::status(
            400,
            format!(
                "Cannot start a sync for connector [{connector_id}] with no index attached. Set the [index_name] property for the connector to enable syncing data."
            ),
        ));
    }
    if field("service_type").as_str().is_none_or(str::is_empty) {
        return Err(EsError::status(
            400,
            format!(
                "Cannot start a sync for connector [{connector_id}] with [service_type] not defined. Set the service type of your connector before starting the sync."
            ),
        ));
    }
    let mut index_name = field("index_name");
    if job_type == "access_control"
        && let Some(name) = index_name.as_str()
    {
        index_name = json!(format!("{ACL_INDEX_PREFIX}{name}"));
    }
    // The job keeps the connector's *active* rules, as one object, not the list.
    let filtering = connector
        .get("filtering")
        .and_then(|f| f.get(0))
        .and_then(|f| f.get("active"))
        .cloned()
        .unwrap_or(Value::Null);
    let now = now_iso();
    let job = json!({
        "cancelation_requested_at": null,
        "canceled_at": null,
        "completed_at": null,
        "connector": {
            "configuration": field("configuration"),
            "filtering": filtering,
            "id": connector_id,
            "index_name": index_name,
            "language": field("language"),
            "pipeline": field("pipeline"),
            "service_type": field("service_type"),
            // ES does not copy the cursor here; `_claim` brings it.
            "sync_cursor": null,
        },
        "created_at": now,
        "deleted_document_count": 0,
        "error": null,
        "indexed_document_count": 0,
        "indexed_document_volume": 0,
        "job_type": job_type,
        "last_seen": now,
        "metadata": {},
        "started_at": null,
        "status": "pending",
        "total_document_count": 0,
        "trigger_method": trigger,
        "worker_hostname": null,
    });
    let id = new_id();
    cluster.put_json(SYNC_JOBS_INDEX, &id, &job);
    Ok(Reply::ok(&json!({"id": id})))
}

/// `GET /_connector/_sync_job?connector_id=&status=&job_type=&from=&size=`, newest first.
fn list(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let (from, size) = paging(req)?;
    let connector_id = req.param("connector_id").filter(|s| !s.is_empty());
    let status = match req.param("status").filter(|s| !s.is_empty()) {
        Some(s) if JOB_STATUSES.contains(&s) => Some(s),
        Some(s) => {
            return Err(EsError::illegal_argument(format!(
                "Unknown ConnectorSyncStatus [{s}]."
            )));
        }
        None => None,
    };
    let job_types: Option<Vec<&str>> = req
        .param("job_type")
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::trim).collect());
    if let Some(bad) = job_types.iter().flatten().find(|t| !JOB_TYPES.contains(t)) {
        return Err(EsError::illegal_argument(format!(
            "Unknown ConnectorSyncJobType [{bad}]."
        )));
    }
    let cluster = lock(&shared.cluster);
    let Some(idx) = cluster.indices.get(SYNC_JOBS_INDEX) else {
        return Ok(Reply::ok(&json!({"count": 0, "results": []})));
    };
    let mut jobs: Vec<(String, Map<String, Value>)> = idx
        .docs
        .iter()
        .map(|(id, d)| (id.to_string(), d.object()))
        .filter(|(_, j)| {
            connector_id.is_none_or(|c| {
                j.get("connector")
                    .and_then(|x| x.get("id"))
                    .and_then(Value::as_str)
                    == Some(c)
            }) && status.is_none_or(|s| j.get("status").and_then(Value::as_str) == Some(s))
                && job_types.as_ref().is_none_or(|t| {
                    j.get("job_type")
                        .and_then(Value::as_str)
                        .is_some_and(|jt| t.contains(&jt))
                })
        })
        .collect();
    let created = |j: &Map<String, Value>| {
        j.get("created_at")
            .and_then(Value::as_str)
            .and_then(super::query::parse_date)
            .unwrap_or(0)
    };
    jobs.sort_by(|(ia, a), (ib, b)| created(b).cmp(&created(a)).then_with(|| ib.cmp(ia)));
    let count = jobs.len();
    let results: Vec<Value> = jobs
        .into_iter()
        .skip(from)
        .take(size)
        .map(|(id, j)| with_id(&id, j))
        .collect();
    Ok(Reply::ok(&json!({"count": count, "results": results})))
}

fn modify(
    shared: &Shared,
    id: &str,
    f: impl FnOnce(&mut Map<String, Value>) -> Result<(), EsError>,
) -> Result<Reply, EsError> {
    let mut cluster = lock(&shared.cluster);
    let before = load(&cluster, id)?;
    let mut after = before.clone();
    f(&mut after)?;
    if after == before {
        return Ok(updated("noop"));
    }
    cluster.put_json(SYNC_JOBS_INDEX, id, &Value::Object(after));
    Ok(updated("updated"))
}

/// `ConnectorSyncJobStateMachine`.
pub(crate) fn job_transition_ok(from: &str, to: &str) -> bool {
    match from {
        "pending" => matches!(to, "in_progress" | "canceled"),
        "in_progress" => matches!(to, "canceling" | "completed" | "suspended" | "error"),
        "suspended" => matches!(to, "in_progress" | "canceled"),
        "canceling" => matches!(to, "canceled" | "error"),
        _ => false,
    }
}

fn status_of(doc: &Map<String, Value>) -> String {
    doc.get("status")
        .and_then(Value::as_str)
        .unwrap_or("pending")
        .to_owned()
}

fn bad_transition(from: &str, to: &str) -> EsError {
    EsError::status(
        400,
        format!(
            "Invalid transition attempt from [{from}] to [{to}]. Such a sync job status transition is not supported by the Connector Protocol."
        ),
    )
}

/// `_cancel`: pending/suspended → canceled at once; in_progress → canceling; else 400.
fn cancel(shared: &Shared, id: &str) -> Result<Reply, EsError> {
    modify(shared, id, |doc| {
        let now = now_iso();
        match status_of(doc).as_str() {
            "pending" | "suspended" => {
                doc.insert("status".into(), json!("canceled"));
                doc.insert("cancelation_requested_at".into(), json!(now));
                doc.insert("canceled_at".into(), json!(now));
                doc.insert("completed_at".into(), json!(now));
                Ok(())
            }
            "in_progress" => {
                doc.insert("status".into(), json!("canceling"));
                doc.insert("cancelation_requested_at".into(), json!(now));
                Ok(())
            }
            other => Err(bad_transition(other, "canceling")),
        }
    })
}

fn claim(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let parser = "connector_sync_job_claim_request";
    let body = object_body(req)?;
    check_fields(&body, &["worker_hostname", "sync_cursor"], parser)?;
    let host = match body.get("worker_hostname") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(EsError::validation(&[
                "[worker_hostname] of the connector sync job cannot be null.".to_owned(),
            ]));
        }
    };
    let cursor = body.get("sync_cursor").cloned();
    modify(shared, id, |doc| {
        let from = status_of(doc);
        if !matches!(from.as_str(), "pending" | "suspended") {
            return Err(EsError::status(
                409,
                format!(
                    "Cannot claim connector sync job [{id}] in status [{from}]: only pending or suspended jobs can be claimed."
                ),
            ));
        }
        let now = now_iso();
        doc.insert("status".into(), json!("in_progress"));
        doc.insert("started_at".into(), json!(now));
        doc.insert("last_seen".into(), json!(now));
        doc.insert("worker_hostname".into(), Value::String(host));
        if let Some(c) = cursor
            && let Some(conn) = doc.get_mut("connector").and_then(Value::as_object_mut)
        {
            conn.insert("sync_cursor".into(), c);
        }
        Ok(())
    })
}

fn error(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let body = object_body(req)?;
    check_fields(&body, &["error"], "connector_sync_job_error_request")?;
    let message = match body.get("error") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(EsError::validation(&[
                "[error] of the connector sync job cannot be null or empty".to_owned(),
            ]));
        }
    };
    modify(shared, id, |doc| {
        let from = status_of(doc);
        if !job_transition_ok(&from, "error") {
            return Err(bad_transition(&from, "error"));
        }
        doc.insert("status".into(), json!("error"));
        doc.insert("error".into(), Value::String(message));
        Ok(())
    })
}

fn stats(shared: &Shared, req: &Req, id: &str) -> Result<Reply, EsError> {
    let parser = "connector_sync_job_update_stats_request";
    let body = optional_object_body(req)?;
    const REQUIRED: [&str; 3] = [
        "deleted_document_count",
        "indexed_document_count",
        "indexed_document_volume",
    ];
    check_fields(
        &body,
        &[
            REQUIRED[0],
            REQUIRED[1],
            REQUIRED[2],
            "total_document_count",
            "last_seen",
            "metadata",
        ],
        parser,
    )?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|k| body.get(**k).is_none_or(Value::is_null))
        .map(|k| format!("[{k}] cannot be null."))
        .collect();
    if !missing.is_empty() {
        return Err(EsError::validation(&missing));
    }
    for k in REQUIRED.iter().chain(&["total_document_count"]) {
        if let Some(v) = body.get(*k).filter(|v| !v.is_null())
            && v.as_i64().is_none_or(|n| n < 0)
        {
            return Err(EsError::bad_field(
                parser,
                k,
                EsError::illegal_argument(format!("[{k}] must be a non-negative integer")),
            ));
        }
    }
    if body
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(EsError::bad_field(
            parser,
            "metadata",
            EsError::illegal_argument("[metadata] must be an object"),
        ));
    }
    modify(shared, id, |doc| {
        for k in REQUIRED.iter().chain(&["total_document_count", "metadata"]) {
            if let Some(v) = body.get(*k).filter(|v| !v.is_null()) {
                doc.insert((*k).to_owned(), v.clone());
            }
        }
        let seen = body
            .get("last_seen")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| json!(now_iso()));
        doc.insert("last_seen".into(), seen);
        Ok(())
    })
}
