//! Single-document APIs: index/create (`_doc`, `_create`), get (`_doc`, `_source`), delete,
//! partial update (`_update`, with `if_seq_no`/`if_primary_term`, `doc_as_upsert`, `upsert` and
//! noop detection) and `_mget`. The update and validation rules here are shared with `_bulk`.

use axum::body::Bytes;
use serde_json::{Map, Value, json};

use super::http::{EsError, Reply, Req, check_fields, is_blank, new_id, object_body, parse_json};
use super::query::SourceFilter;
use super::state::{Cluster, Index, Written};
use super::{Shared, lock};

/// ES caps `_id` at 512 bytes.
pub(crate) const MAX_ID_BYTES: usize = 512;

pub(crate) fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("if _id is specified it must not be empty".to_owned());
    }
    (id.len() > MAX_ID_BYTES).then(|| {
        format!(
            "id [{id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
            id.len()
        )
    })
}

pub(crate) fn shards_ok() -> Value {
    json!({"total": 2, "successful": 1, "failed": 0})
}

/// The body of a successful write (index, create, update, delete).
pub(crate) fn write_body(index: &str, id: &str, w: &Written, forced_refresh: bool) -> Value {
    let shards = if w.result == "noop" {
        json!({"total": 0, "successful": 0, "failed": 0})
    } else {
        shards_ok()
    };
    let mut v = json!({
        "_index": index,
        "_id": id,
        "_version": w.version,
        "result": w.result,
        "_shards": shards,
        "_seq_no": w.seq_no,
        "_primary_term": 1,
    });
    if forced_refresh && let Some(o) = v.as_object_mut() {
        o.insert("forced_refresh".into(), json!(true));
    }
    v
}

/// The mapping-rejection fault: a document with the configured top-level field fails to parse.
pub(crate) fn rejected(field: Option<&str>, doc: &Map<String, Value>, id: &str) -> Option<EsError> {
    let field = field?;
    let value = doc.get(field)?;
    let preview: String = value.to_string().chars().take(40).collect();
    Some(EsError::new(
        400,
        "document_parsing_exception",
        format!(
            "[1:2] failed to parse field [{field}] of type [long] in document with id '{id}'. Preview of field's value: '{preview}'"
        ),
    ))
}

/// `if_seq_no` + `if_primary_term` query parameters (both or neither).
pub(crate) fn seq_cond(req: &Req) -> Result<Option<(u64, u64)>, EsError> {
    let seq = req.num_param("if_seq_no")?;
    let term = req.num_param("if_primary_term")?;
    match (seq, term) {
        (None, None) => Ok(None),
        (Some(s), Some(t)) if s >= 0 && t > 0 => Ok(Some((s as u64, t as u64))),
        (Some(s), None) => Err(EsError::validation(&[format!(
            "ifSeqNo is set, but primary term is [0] (ifSeqNo [{s}])"
        )])),
        (None, Some(t)) => Err(EsError::validation(&[format!(
            "ifSeqNo is unassigned, but primary term is [{t}]"
        )])),
        (Some(s), Some(t)) => Err(EsError::validation(&[format!(
            "invalid ifSeqNo [{s}] or ifPrimaryTerm [{t}]"
        )])),
    }
}

fn check_op_type(req: &Req, create: bool) -> Result<bool, EsError> {
    match req.param("op_type") {
        None => Ok(create),
        Some("create") => Ok(true),
        Some("index") if !create => Ok(false),
        Some(other) => Err(EsError::illegal_argument(format!(
            "opType must be 'create' or 'index', found: [{other}]"
        ))),
    }
}

pub(crate) fn doc_exists_conflict(index: &str, id: &str, version: u64) -> EsError {
    EsError::version_conflict(
        index,
        format!("[{id}]: version conflict, document already exists (current version [{version}])"),
    )
}

/// `PUT|POST /{index}/_doc[/{id}]`, `PUT|POST /{index}/_create/{id}`.
pub(crate) fn index_doc(
    shared: &Shared,
    req: &Req,
    index: &str,
    id: Option<&str>,
    create: bool,
) -> Result<Reply, EsError> {
    let create = check_op_type(req, create || id.is_none())?;
    let cond = seq_cond(req)?;
    let id = match id {
        Some(id) => {
            if let Some(p) = id_problem(id) {
                return Err(EsError::validation(&[p]));
            }
            id.to_owned()
        }
        None => new_id(),
    };
    if is_blank(&req.body) {
        return Err(EsError::validation(&["source is missing".to_owned()]));
    }
    let doc = match parse_json(&req.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(EsError::new(
                400,
                "document_parsing_exception",
                "[1:1] failed to parse: the document must be an object",
            ));
        }
        Err(e) => {
            return Err(EsError::new(
                400,
                "document_parsing_exception",
                format!("failed to parse: {}", e.reason),
            ));
        }
    };
    let reject = lock(&shared.faults).reject_field.clone();
    if let Some(e) = rejected(reject.as_deref(), &doc, &id) {
        return Err(e);
    }
    let source = Bytes::copy_from_slice(req.body.trim_ascii());
    let mut cluster = lock(&shared.cluster);
    let idx = cluster.index_for_write(index)?;
    idx.check_seq(index, &id, cond)?;
    if create && let Some(d) = idx.docs.get(id.as_str()) {
        return Err(doc_exists_conflict(index, &id, d.version));
    }
    let w = idx.write(&id, source);
    Ok(Reply::json(
        w.status(),
        &write_body(
            index,
            &id,
            &w,
            req.flag("refresh") && req.param("refresh") != Some("wait_for"),
        ),
    ))
}

fn source_filter_from_params(req: &Req) -> SourceFilter {
    SourceFilter::from_params(
        req.param("_source"),
        req.param("_source_includes"),
        req.param("_source_excludes"),
    )
}

fn found_body(index: &str, id: &str, idx: &Index, filter: &SourceFilter) -> Option<Value> {
    let d = idx.docs.get(id)?;
    let mut v = json!({
        "_index": index,
        "_id": id,
        "_version": d.version,
        "_seq_no": d.seq_no,
        "_primary_term": d.primary_term,
        "found": true,
    });
    if let (Some(src), Some(o)) = (filter.apply(&d.source), v.as_object_mut()) {
        o.insert("_source".into(), src);
    }
    Some(v)
}

/// `GET|HEAD /{index}/_doc/{id}`.
pub(crate) fn get_doc(shared: &Shared, req: &Req, index: &str, id: &str) -> Result<Reply, EsError> {
    let filter = source_filter_from_params(req);
    let cluster = lock(&shared.cluster);
    let Some(idx) = cluster.indices.get(index) else {
        return Err(EsError::index_not_found(index));
    };
    let (status, body) = match found_body(index, id, idx, &filter) {
        Some(b) => (200, b),
        None => (404, json!({"_index": index, "_id": id, "found": false})),
    };
    if req.method == hyper::Method::HEAD {
        return Ok(Reply::empty(status));
    }
    Ok(Reply::json(status, &body))
}

/// `GET|HEAD /{index}/_source/{id}`.
pub(crate) fn get_source(
    shared: &Shared,
    req: &Req,
    index: &str,
    id: &str,
) -> Result<Reply, EsError> {
    let filter = source_filter_from_params(req);
    let cluster = lock(&shared.cluster);
    let Some(idx) = cluster.indices.get(index) else {
        return Err(EsError::index_not_found(index));
    };
    let Some(d) = idx.docs.get(id) else {
        return Err(EsError::resource_not_found(format!(
            "Document not found [{index}]/[{id}]"
        )));
    };
    if req.method == hyper::Method::HEAD {
        return Ok(Reply::empty(200));
    }
    Ok(Reply::json(
        200,
        &filter.apply(&d.source).unwrap_or(json!({})),
    ))
}

/// `DELETE /{index}/_doc/{id}`.
pub(crate) fn delete_doc(
    shared: &Shared,
    req: &Req,
    index: &str,
    id: &str,
) -> Result<Reply, EsError> {
    let cond = seq_cond(req)?;
    let mut cluster = lock(&shared.cluster);
    let Some(idx) = cluster.indices.get_mut(index) else {
        return Err(EsError::index_not_found(index));
    };
    idx.check_seq(index, id, cond)?;
    let w = idx.remove(id);
    Ok(Reply::json(
        w.status(),
        &write_body(index, id, &w, req.flag("refresh")),
    ))
}

pub(crate) const UPDATE_FIELDS: &[&str] = &[
    "doc",
    "doc_as_upsert",
    "upsert",
    "script",
    "scripted_upsert",
    "detect_noop",
    "_source",
    "lang",
];

pub(crate) fn document_missing(idx: &Index, index: &str, id: &str) -> EsError {
    EsError::new(
        404,
        "document_missing_exception",
        format!("[{id}]: document missing"),
    )
    .with("index_uuid", idx.uuid.clone())
    .with("shard", "0")
    .with("index", index)
}

/// Applies an update body (`doc`/`upsert`/`doc_as_upsert`) to one document, as `_update` and the
/// bulk `update` action do. Scripts are not run: they fail unless the upsert path applies.
pub(crate) fn apply_update(
    idx: &mut Index,
    index: &str,
    id: &str,
    body: &Map<String, Value>,
    cond: Option<(u64, u64)>,
) -> Result<Written, EsError> {
    let doc = body.get("doc");
    let script = body.get("script");
    if doc.is_none() && script.is_none() {
        return Err(EsError::validation(
            &["script or doc is missing".to_owned()],
        ));
    }
    if doc.is_some_and(|d| !d.is_object()) {
        return Err(EsError::parse(
            "[1:8] [UpdateRequest] failed to parse field [doc]",
        ));
    }
    idx.check_seq(index, id, cond)?;
    let Some(existing) = idx.docs.get(id) else {
        let doc_as_upsert = body
            .get("doc_as_upsert")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let init = match (body.get("upsert"), doc) {
            (Some(u), _) => u,
            (None, Some(d)) if doc_as_upsert => d,
            _ => return Err(document_missing(idx, index, id)),
        };
        if !init.is_object() {
            return Err(EsError::parse(
                "[1:2] [UpdateRequest] failed to parse field [upsert]",
            ));
        }
        let bytes = Bytes::from(serde_json::to_vec(init).unwrap_or_default());
        return Ok(idx.write(id, bytes));
    };
    let Some(doc) = doc else {
        return Err(EsError::illegal_argument(
            "the stand-in does not run update scripts; send a partial `doc` instead",
        ));
    };
    let mut merged = existing.json();
    let changed = deep_merge(&mut merged, doc);
    let detect_noop = body
        .get("detect_noop")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !changed && detect_noop {
        return Ok(Written {
            result: "noop",
            version: existing.version,
            seq_no: existing.seq_no,
        });
    }
    let bytes = Bytes::from(serde_json::to_vec(&merged).unwrap_or_default());
    Ok(idx.write(id, bytes))
}

/// ES's partial-document merge: objects merge key by key, recursively; anything else replaces.
/// Returns whether anything changed (for noop detection).
pub(crate) fn deep_merge(target: &mut Value, patch: &Value) -> bool {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        if target != patch {
            *target = patch.clone();
            return true;
        }
        return false;
    };
    let mut changed = false;
    for (k, v) in p {
        match t.get_mut(k) {
            Some(existing) if existing.is_object() && v.is_object() => {
                changed |= deep_merge(existing, v);
            }
            Some(existing) => {
                if existing != v {
                    *existing = v.clone();
                    changed = true;
                }
            }
            None => {
                t.insert(k.clone(), v.clone());
                changed = true;
            }
        }
    }
    changed
}

/// `POST /{index}/_update/{id}`.
pub(crate) fn update_doc(
    shared: &Shared,
    req: &Req,
    index: &str,
    id: &str,
) -> Result<Reply, EsError> {
    let cond = seq_cond(req)?;
    if let Some(p) = id_problem(id) {
        return Err(EsError::validation(&[p]));
    }
    let body = object_body(req)?;
    check_fields(&body, UPDATE_FIELDS, "UpdateRequest")?;
    let reject = lock(&shared.faults).reject_field.clone();
    for key in ["doc", "upsert"] {
        if let Some(Value::Object(m)) = body.get(key)
            && let Some(e) = rejected(reject.as_deref(), m, id)
        {
            return Err(e);
        }
    }
    let raced = cond.is_some() && lock(&shared.faults).race_guarded_update();
    let mut cluster = lock(&shared.cluster);
    if raced && let Some(current) = cluster.doc(index, id).map(|d| d.json()) {
        // The other writer: the same document again, under a new seq_no.
        cluster.put_json(index, id, &current);
    }
    let idx = cluster.index_for_write(index)?;
    let w = apply_update(idx, index, id, &body, cond)?;
    Ok(Reply::json(
        w.status(),
        &write_body(index, id, &w, req.flag("refresh")),
    ))
}

/// `GET|POST [/{index}]/_mget`.
pub(crate) fn mget(shared: &Shared, req: &Req, path_index: Option<&str>) -> Result<Reply, EsError> {
    let body = object_body(req)?;
    check_fields(&body, &["docs", "ids"], "mget")?;
    let default_filter = source_filter_from_params(req);
    let mut wanted: Vec<(String, String, SourceFilter)> = Vec::new();
    if let Some(ids) = body.get("ids") {
        let Some(index) = path_index else {
            return Err(EsError::validation(&[
                "index is missing for doc 0".to_owned()
            ]));
        };
        for id in ids.as_array().into_iter().flatten() {
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            wanted.push((index.to_owned(), id, default_filter.clone()));
        }
    }
    for (i, d) in body
        .get("docs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = d
            .get("_index")
            .and_then(Value::as_str)
            .or(path_index)
            .ok_or_else(|| EsError::validation(&[format!("index is missing for doc {i}")]))?;
        let id = d
            .get("_id")
            .and_then(Value::as_str)
            .ok_or_else(|| EsError::validation(&[format!("id is missing for doc {i}")]))?;
        let filter = match d.get("_source") {
            Some(s) => SourceFilter::from_json(s),
            None => default_filter.clone(),
        };
        wanted.push((index.to_owned(), id.to_owned(), filter));
    }
    if wanted.is_empty() {
        return Err(EsError::validation(&["no documents to get".to_owned()]));
    }
    let cluster = lock(&shared.cluster);
    let docs: Vec<Value> = wanted
        .iter()
        .map(|(index, id, filter)| mget_one(&cluster, index, id, filter))
        .collect();
    Ok(Reply::ok(&json!({"docs": docs})))
}

fn mget_one(cluster: &Cluster, index: &str, id: &str, filter: &SourceFilter) -> Value {
    match cluster.indices.get(index) {
        None => json!({
            "_index": index,
            "_id": id,
            "error": EsError::index_not_found(index).body()["error"].clone(),
        }),
        Some(idx) => found_body(index, id, idx, filter)
            .unwrap_or_else(|| json!({"_index": index, "_id": id, "found": false})),
    }
}
