//! `_bulk` for the embedded store: parses the NDJSON body of a [`BulkRequest`] once, then
//! applies every action in request order inside the caller's transaction, with
//! Elasticsearch's per-item outcomes: `index`/`create`/`update` (`doc`, `doc_as_upsert`,
//! `upsert`)/`delete`, version conflicts, missing documents, mapping refusals with ES's
//! reasons, over-long ids. A malformed action line refuses the whole request before anything
//! is written. Ingest pipelines are not run.

use super::documents::{self, validate_index_name};
use super::mapping::{DocError, IndexMapping};
use super::source_position::position;
use super::{db_err, new_id, to_json};
use crate::backend::{
    BackendError, BulkItem, BulkOp, BulkRequest, BulkResponse, ItemError, Result,
};
use rusqlite::{Connection, OptionalExtension, Statement, params};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Elasticsearch's limit on a document id, in bytes.
const MAX_ID_BYTES: usize = 512;

/// Parameters an action line may carry (Elasticsearch's list); others refuse the request.
const ACTION_PARAMS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "op_type",
    "version",
    "version_type",
    "if_seq_no",
    "if_primary_term",
    "retry_on_conflict",
    "pipeline",
    "_source",
    "require_alias",
    "require_data_stream",
    "dynamic_templates",
    "list_executed_pipelines",
];

/// Keys an update body may carry.
const UPDATE_KEYS: &[&str] = &[
    "doc",
    "upsert",
    "doc_as_upsert",
    "detect_noop",
    "script",
    "scripted_upsert",
    "_source",
    "if_seq_no",
    "if_primary_term",
];

/// One parsed action.
struct Op<'a> {
    kind: BulkOp,
    index: String,
    id: Option<String>,
    /// The source line of an `index` or `create`.
    source: Option<&'a [u8]>,
    update: Option<UpdateBody>,
}

struct UpdateBody {
    doc: Option<Map<String, Value>>,
    upsert: Option<Map<String, Value>>,
    doc_as_upsert: bool,
    detect_noop: bool,
    scripted: bool,
}

/// Runs a bulk request inside the caller's transaction.
pub(super) fn execute(conn: &Connection, request: &BulkRequest) -> Result<BulkResponse> {
    let started = Instant::now();
    let ops = parse(&request.body, &request.index)?;
    let mut writer = Writer::new(conn)?;
    let mut items = Vec::with_capacity(ops.len());
    for op in &ops {
        items.push(writer.apply(op)?);
    }
    writer.finish()?;
    Ok(BulkResponse {
        took: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        errors: items.iter().any(|item| item.error.is_some()),
        items,
    })
}

fn rejected(kind: &str, reason: String) -> BackendError {
    BackendError::Rejected {
        status: 400,
        kind: kind.into(),
        reason,
    }
}

/// Splits the body into actions. Blank lines between actions are skipped.
fn parse<'a>(body: &'a [u8], default_index: &str) -> Result<Vec<Op<'a>>> {
    let mut ops = Vec::new();
    // The newline that ends the last line does not start another one.
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let mut lines = body.split(|&b| b == b'\n').enumerate();
    while let Some((n, line)) = lines.next() {
        let line_no = n + 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let (kind, meta) = parse_action(line, line_no)?;
        let index =
            meta_string(&meta, "_index", line_no)?.unwrap_or_else(|| default_index.to_string());
        if index.is_empty() {
            return Err(rejected(
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;".into(),
            ));
        }
        let id = meta_string(&meta, "_id", line_no)?;
        if id.is_none() && matches!(kind, BulkOp::Update | BulkOp::Delete) {
            return Err(rejected(
                "action_request_validation_exception",
                "Validation Failed: 1: id is missing;".into(),
            ));
        }
        let mut op = Op {
            kind,
            index,
            id,
            source: None,
            update: None,
        };
        if kind != BulkOp::Delete {
            let Some((_, source)) = lines.next() else {
                return Err(rejected(
                    "x_content_parse_exception",
                    format!(
                        "The bulk request ends after the action on line [{line_no}]; a source line must follow it"
                    ),
                ));
            };
            if kind == BulkOp::Update {
                op.update = Some(parse_update(source, line_no + 1)?);
            } else {
                op.source = Some(source);
            }
        }
        ops.push(op);
    }
    Ok(ops)
}

fn parse_action(line: &[u8], line_no: usize) -> Result<(BulkOp, Map<String, Value>)> {
    let malformed = |detail: String| {
        rejected(
            "x_content_parse_exception",
            format!("Malformed action/metadata line [{line_no}], {detail}"),
        )
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        malformed(format!(
            "expected a JSON object but the line does not parse: {}",
            without_position(&e)
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(malformed(format!(
            "expected START_OBJECT but found '{value}'"
        )));
    };
    let mut entries = map.into_iter();
    let (Some((action, meta)), None) = (entries.next(), entries.next()) else {
        return Err(malformed(
            "expected an object with exactly one of [create, delete, index, update]".into(),
        ));
    };
    let kind = match action.as_str() {
        "index" => BulkOp::Index,
        "create" => BulkOp::Create,
        "update" => BulkOp::Update,
        "delete" => BulkOp::Delete,
        other => {
            return Err(rejected(
                "illegal_argument_exception",
                format!(
                    "Malformed action/metadata line [{line_no}], expected one of [create, delete, index, update] \
                     but found [{other}]"
                ),
            ));
        }
    };
    let Value::Object(meta) = meta else {
        return Err(malformed(format!(
            "expected START_OBJECT after [{action}] but found '{meta}'"
        )));
    };
    if let Some(unknown) = meta.keys().find(|k| !ACTION_PARAMS.contains(&k.as_str())) {
        return Err(rejected(
            "illegal_argument_exception",
            format!("Action/metadata line [{line_no}] contains an unknown parameter [{unknown}]"),
        ));
    }
    Ok((kind, meta))
}

/// A string parameter of an action line (`_id` may also be a number).
fn meta_string(meta: &Map<String, Value>, key: &str, line_no: usize) -> Result<Option<String>> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key == "_id" => Ok(Some(n.to_string())),
        Some(other) => Err(rejected(
            "x_content_parse_exception",
            format!(
                "Malformed action/metadata line [{line_no}], [{key}] must be a string, found '{other}'"
            ),
        )),
    }
}

fn parse_update(line: &[u8], line_no: usize) -> Result<UpdateBody> {
    let bad = |reason: String| {
        rejected(
            "x_content_parse_exception",
            format!("[{line_no}:1] {reason}"),
        )
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        bad(format!(
            "failed to parse the update body: {}",
            without_position(&e)
        ))
    })?;
    let Value::Object(mut map) = value else {
        return Err(bad(format!(
            "the update body must be an object, found '{value}'"
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !UPDATE_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("[UpdateRequest] unknown field [{unknown}]")));
    }
    let mut object = |key: &str| match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(bad(format!(
            "[UpdateRequest] [{key}] must be an object, found '{other}'"
        ))),
    };
    let (doc, upsert) = (object("doc")?, object("upsert")?);
    let flag = |key: &str, default: bool| map.get(key).and_then(Value::as_bool).unwrap_or(default);
    let body = UpdateBody {
        doc,
        upsert,
        doc_as_upsert: flag("doc_as_upsert", false),
        detect_noop: flag("detect_noop", true),
        scripted: map.contains_key("script"),
    };
    if body.doc.is_none() && !body.scripted {
        return Err(rejected(
            "action_request_validation_exception",
            "Validation Failed: 1: script or doc is missing;".into(),
        ));
    }
    Ok(body)
}

/// A serde_json error without its "at line L column C" tail (positions are given separately).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&tail)
        .map_or(text.clone(), str::to_string)
}

struct IndexState {
    mapping: IndexMapping,
    dirty: bool,
}

/// Applies parsed actions with prepared statements, caching each index's mapping for the
/// whole request.
struct Writer<'c> {
    conn: &'c Connection,
    indices: HashMap<String, Option<IndexState>>,
    exists: Statement<'c>,
    select: Statement<'c>,
    insert: Statement<'c>,
    update: Statement<'c>,
    delete: Statement<'c>,
}

/// What one item produced: `Ok((status, result))` or a per-item error.
type Outcome = std::result::Result<(u16, &'static str), (u16, ItemError)>;

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> Result<Self> {
        let prepare = |sql: &str| conn.prepare(sql).map_err(db_err);
        Ok(Self {
            conn,
            indices: HashMap::new(),
            exists: prepare("SELECT 1 FROM documents WHERE idx = ?1 AND id = ?2")?,
            select: prepare("SELECT source FROM documents WHERE idx = ?1 AND id = ?2")?,
            insert: prepare("INSERT INTO documents (idx, id, ts, source) VALUES (?1, ?2, ?3, ?4)")?,
            update: prepare(
                "UPDATE documents SET ts = ?3, source = ?4 WHERE idx = ?1 AND id = ?2",
            )?,
            delete: prepare("DELETE FROM documents WHERE idx = ?1 AND id = ?2")?,
        })
    }

    fn apply(&mut self, op: &Op<'_>) -> Result<BulkItem> {
        let id = op.id.clone().unwrap_or_else(new_id);
        let outcome = match check_target(&op.index, &id) {
            Err(refusal) => Err(refusal),
            Ok(_) => match op.kind {
                BulkOp::Index | BulkOp::Create => self.index(op, &id)?,
                BulkOp::Update => self.update(op, &id)?,
                BulkOp::Delete => self.delete(&op.index, &id)?,
            },
        };
        Ok(match outcome {
            Ok((status, result)) => BulkItem {
                op: op.kind,
                id,
                status,
                result: Some(result.into()),
                error: None,
            },
            Err((status, error)) => BulkItem {
                op: op.kind,
                id,
                status,
                result: None,
                error: Some(error),
            },
        })
    }

    /// Writes dynamic mapping additions back.
    fn finish(self) -> Result<()> {
        for (index, state) in &self.indices {
            if let Some(state) = state.as_ref().filter(|s| s.dirty) {
                documents::store_mapping(self.conn, index, &state.mapping)?;
            }
        }
        Ok(())
    }

    /// The index's state, auto-creating the index (with a dynamic mapping) when `create`.
    fn state(&mut self, index: &str, create: bool) -> Result<Option<&mut IndexState>> {
        if !matches!(self.indices.get(index), Some(Some(_))) {
            let loaded = match documents::load_mapping(self.conn, index)? {
                Some(mapping) => Some(mapping),
                None if create => {
                    let mapping = IndexMapping::empty();
                    documents::create_index(self.conn, index, &mapping)?;
                    Some(mapping)
                }
                None => None,
            };
            self.indices.insert(
                index.to_string(),
                loaded.map(|mapping| IndexState {
                    mapping,
                    dirty: false,
                }),
            );
        }
        Ok(self.indices.get_mut(index).and_then(Option::as_mut))
    }

    fn index(&mut self, op: &Op<'_>, id: &str) -> Result<Outcome> {
        let raw = op.source.unwrap_or_default();
        let text = std::str::from_utf8(raw.trim_ascii()).unwrap_or_default();
        let doc = match parse_source(raw) {
            Ok(doc) => doc,
            Err(error) => return Ok(Err((400, error))),
        };
        if let Err(error) = self.check(&op.index, id, &doc, text)? {
            return Ok(Err((400, error)));
        }
        let exists = self
            .exists
            .query_row(params![op.index, id], |_| Ok(()))
            .optional()
            .map_err(db_err)?
            .is_some();
        let timestamp = timestamp_of(&doc);
        if !exists {
            self.insert
                .execute(params![op.index, id, timestamp, text])
                .map_err(db_err)?;
            return Ok(Ok((201, "created")));
        }
        if op.kind == BulkOp::Create {
            return Ok(Err((
                409,
                ItemError {
                    kind: "version_conflict_engine_exception".into(),
                    reason: format!(
                        "[{id}]: version conflict, document already exists (current version [1])"
                    ),
                },
            )));
        }
        self.update
            .execute(params![op.index, id, timestamp, text])
            .map_err(db_err)?;
        Ok(Ok((200, "updated")))
    }

    fn update(&mut self, op: &Op<'_>, id: &str) -> Result<Outcome> {
        let Some(body) = &op.update else {
            return Ok(Ok((200, "noop")));
        };
        if body.scripted {
            return Ok(Err((
                400,
                item_error(
                    "illegal_argument_exception",
                    "scripted updates are not supported by the embedded store; send a partial document (doc) instead",
                ),
            )));
        }
        let existing: Option<String> = self
            .select
            .query_row(params![op.index, id], |row| row.get(0))
            .optional()
            .map_err(db_err)?;
        let (doc, created) = match existing {
            Some(text) => {
                let Ok(Value::Object(current)) = serde_json::from_str::<Value>(&text) else {
                    return Err(BackendError::Other(format!(
                        "the embedded database holds an unreadable document '{id}' in index '{}'",
                        op.index
                    )));
                };
                let mut merged = current.clone();
                merge(&mut merged, body.doc.clone().unwrap_or_default());
                if body.detect_noop && merged == current {
                    return Ok(Ok((200, "noop")));
                }
                (merged, false)
            }
            None => match (&body.upsert, body.doc_as_upsert) {
                (Some(upsert), _) => (upsert.clone(), true),
                (None, true) => (body.doc.clone().unwrap_or_default(), true),
                (None, false) => {
                    self.state(&op.index, true)?;
                    return Ok(Err((
                        404,
                        item_error(
                            "document_missing_exception",
                            &format!("[{id}]: document missing"),
                        ),
                    )));
                }
            },
        };
        let text = to_json(&doc)?;
        if let Err(error) = self.check(&op.index, id, &doc, &text)? {
            return Ok(Err((400, error)));
        }
        let timestamp = timestamp_of(&doc);
        if created {
            self.insert
                .execute(params![op.index, id, timestamp, text])
                .map_err(db_err)?;
            return Ok(Ok((201, "created")));
        }
        self.update
            .execute(params![op.index, id, timestamp, text])
            .map_err(db_err)?;
        Ok(Ok((200, "updated")))
    }

    fn delete(&mut self, index: &str, id: &str) -> Result<Outcome> {
        if self.state(index, false)?.is_none() {
            return Ok(Err((
                404,
                item_error(
                    "index_not_found_exception",
                    &format!("no such index [{index}]"),
                ),
            )));
        }
        let removed = self.delete.execute(params![index, id]).map_err(db_err)?;
        Ok(Ok(if removed > 0 {
            (200, "deleted")
        } else {
            (404, "not_found")
        }))
    }

    /// Checks a document against its index's mapping (auto-creating the index); the inner
    /// error is the item's refusal, located in `text`.
    fn check(
        &mut self,
        index: &str,
        id: &str,
        doc: &Map<String, Value>,
        text: &str,
    ) -> Result<std::result::Result<(), ItemError>> {
        let Some(state) = self.state(index, true)? else {
            return Ok(Ok(()));
        };
        match state.mapping.check(doc, id) {
            Ok(grew) => {
                state.dirty |= grew;
                Ok(Ok(()))
            }
            Err(DocError {
                kind,
                steps,
                message,
            }) => Ok(Err(ItemError {
                kind: kind.into(),
                reason: format!("{} {message}", position(text, &steps)),
            })),
        }
    }
}

fn item_error(kind: &str, reason: &str) -> ItemError {
    ItemError {
        kind: kind.into(),
        reason: reason.into(),
    }
}

/// Refusals that depend only on the target: the index name and the id.
fn check_target(index: &str, id: &str) -> Outcome {
    if let Err(reason) = validate_index_name(index) {
        return Err((
            400,
            ItemError {
                kind: "invalid_index_name_exception".into(),
                reason,
            },
        ));
    }
    if id.is_empty() {
        return Err((
            400,
            item_error(
                "illegal_argument_exception",
                "if _id is specified it must not be empty",
            ),
        ));
    }
    if id.len() > MAX_ID_BYTES {
        return Err((
            400,
            item_error(
                "illegal_argument_exception",
                &format!(
                    "id [{id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
                    id.len()
                ),
            ),
        ));
    }
    Ok((200, ""))
}

/// Parses a source line; anything but a JSON object is a per-item parsing error.
fn parse_source(raw: &[u8]) -> std::result::Result<Map<String, Value>, ItemError> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(doc)) => Ok(doc),
        Ok(other) => Err(item_error(
            "document_parsing_exception",
            &format!(
                "[1:1] failed to parse: the document source must be a JSON object, found '{other}'"
            ),
        )),
        Err(e) => Err(item_error(
            "document_parsing_exception",
            &format!(
                "[{}:{}] failed to parse: {}",
                e.line(),
                e.column(),
                without_position(&e)
            ),
        )),
    }
}

/// The `_timestamp` body field the engine writes, used by id scans.
fn timestamp_of(doc: &Map<String, Value>) -> Option<String> {
    match doc.get("_timestamp")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Elasticsearch's partial-document merge: objects merge key by key, anything else replaces.
fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(patch)) => merge(existing, patch),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_for_objects_only() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]})
            .as_object()
            .cloned()
            .unwrap();
        let patch = json!({"a": {"b": 3}, "l": [9]})
            .as_object()
            .cloned()
            .unwrap();
        merge(&mut target, patch);
        assert_eq!(
            Value::Object(target),
            json!({"a": {"b": 3, "c": 2}, "l": [9]})
        );
    }

    #[test]
    fn parse_refuses_bad_action_lines_whole() {
        let err = |body: &str| match parse(body.as_bytes(), "i") {
            Err(BackendError::Rejected { kind, reason, .. }) => (kind, reason),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("accepted {body}"),
        };
        assert_eq!(
            err("{\"index\":{}}\n{}\n{oops\n").0,
            "x_content_parse_exception"
        );
        assert!(err("{\"index\":{}}\n{}\n{oops\n").1.contains("line [3]"));
        assert_eq!(err("{\"upsert\":{}}\n").0, "illegal_argument_exception");
        assert_eq!(
            err("{\"index\":{\"bogus\":1}}\n{}\n").0,
            "illegal_argument_exception"
        );
        assert_eq!(err("{\"index\":{}}\n").0, "x_content_parse_exception");
        assert_eq!(
            err("{\"delete\":{}}\n").0,
            "action_request_validation_exception"
        );
        assert_eq!(
            err("{\"update\":{\"_id\":\"1\"}}\n{\"doc\":1}\n").0,
            "x_content_parse_exception"
        );
        assert!(parse(b"\n{\"delete\":{\"_id\":1}}\n\n", "i").is_ok_and(|ops| ops.len() == 1));
    }

    #[test]
    fn serde_errors_lose_their_position_tail() {
        let e = serde_json::from_str::<Value>("{oops").unwrap_err();
        assert!(
            !without_position(&e).contains("line 1"),
            "{}",
            without_position(&e)
        );
    }
}
