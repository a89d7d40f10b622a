//! `_bulk`: NDJSON parsing, per-item validation and faults, execution under one cluster lock, and
//! the per-item response. Built to keep up with a benchmark: each line is parsed once, outside
//! the lock; index/create sources are validated without building a `Value` and stored as slices
//! of the request body; the response is written by hand.
//!
//! Also `index_documents`, the bulk-create Kibana's `.index` connector runs.

use std::borrow::Cow;
use std::time::Instant;

use axum::body::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::docs::{UPDATE_FIELDS, apply_update, doc_exists_conflict, id_problem, rejected};
use super::filter_path::{FilterPath, Sel};
use super::http::{
    EsError, Reply, Req, check_fields, is_blank, new_id, push_num, push_raw, push_str, push_value,
};
use super::state::{Cluster, Written};
use super::{Shared, lock};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Index,
    Create,
    Update,
    Delete,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Index => "index",
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Delete => "delete",
        }
    }
}

enum Payload {
    None,
    Source(Bytes),
    Update(Map<String, Value>),
}

struct Op<'a> {
    kind: Kind,
    index: Cow<'a, str>,
    id: Option<Cow<'a, str>>,
    cond: Option<(u64, u64)>,
    payload: Payload,
    err: Option<EsError>,
}

const META_FIELDS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "if_seq_no",
    "if_primary_term",
    "pipeline",
    "require_alias",
    "require_data_stream",
    "retry_on_conflict",
    "version",
    "version_type",
    "_source",
    "dynamic_templates",
    "list_executed_pipelines",
];

/// Splits the body into lines without copying: yields `(start, end)` with `\r` and spaces trimmed.
struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.pos..];
        let len = find_newline(rest).unwrap_or(rest.len());
        let (mut s, mut e) = (self.pos, self.pos + len);
        self.pos = e + 1;
        while s < e && self.body[s].is_ascii_whitespace() {
            s += 1;
        }
        while e > s && self.body[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
        Some((s, e))
    }
}

/// The position of the first `\n` in `hay`. Sixteen bytes at a time: a `_bulk` body is mostly
/// long source lines, and a byte loop over them cost as much as validating them.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    // A zero byte in `w` is a newline (the classic has-zero-byte test: it may misplace which
    // byte, never miss one; the byte loop below finds the exact one).
    let has_newline = |w: u64| {
        let w = w ^ NEWLINES;
        w.wrapping_sub(ONES) & !w & HIGHS
    };
    let mut skipped = 0;
    // Two words per step: one test of both is cheaper than two.
    for chunk in hay.chunks_exact(16) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&chunk[..8]);
        hi.copy_from_slice(&chunk[8..]);
        if has_newline(u64::from_le_bytes(lo)) | has_newline(u64::from_le_bytes(hi)) != 0 {
            break;
        }
        skipped += 16;
    }
    hay[skipped..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| skipped + p)
}

fn malformed(line: usize, what: &str) -> EsError {
    EsError::illegal_argument(format!("Malformed action/metadata line [{line}], {what}"))
}

/// The action line as most clients write it, parsed without allocating: strings borrow from the
/// request body. Anything unusual falls back to `parse_action_slow`, which also words the errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionLine<'a> {
    #[serde(borrow, default)]
    index: Option<Meta<'a>>,
    #[serde(borrow, default)]
    create: Option<Meta<'a>>,
    #[serde(borrow, default)]
    update: Option<Meta<'a>>,
    #[serde(borrow, default)]
    delete: Option<Meta<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta<'a> {
    #[serde(rename = "_index", borrow, default)]
    index: Option<Cow<'a, str>>,
    #[serde(rename = "_id", borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    if_seq_no: Option<u64>,
    #[serde(default)]
    if_primary_term: Option<u64>,
    #[serde(default)]
    routing: Option<IgnoredAny>,
    #[serde(default)]
    pipeline: Option<IgnoredAny>,
    #[serde(default)]
    require_alias: Option<IgnoredAny>,
    #[serde(default)]
    require_data_stream: Option<IgnoredAny>,
    #[serde(default)]
    retry_on_conflict: Option<IgnoredAny>,
    #[serde(default)]
    version: Option<IgnoredAny>,
    #[serde(default)]
    version_type: Option<IgnoredAny>,
    #[serde(rename = "_source", default)]
    source: Option<IgnoredAny>,
    #[serde(default)]
    dynamic_templates: Option<IgnoredAny>,
    #[serde(default)]
    list_executed_pipelines: Option<IgnoredAny>,
}

/// A parsed action line: kind, `_index`, `_id`, `if_seq_no`/`if_primary_term`.
struct Action<'a> {
    kind: Kind,
    index: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    cond: Option<(u64, u64)>,
}

fn parse_action(line: &[u8], n: usize) -> Result<Action<'_>, EsError> {
    if let Ok(a) = serde_json::from_slice::<ActionLine<'_>>(line) {
        let mut found = [
            (Kind::Index, a.index),
            (Kind::Create, a.create),
            (Kind::Update, a.update),
            (Kind::Delete, a.delete),
        ]
        .into_iter()
        .filter_map(|(k, m)| m.map(|m| (k, m)));
        if let (Some((kind, meta)), None) = (found.next(), found.next()) {
            let cond = match (meta.if_seq_no, meta.if_primary_term) {
                (None, None) => None,
                (Some(s), Some(t)) if t > 0 => Some((s, t)),
                _ => {
                    return Err(EsError::validation(&[
                        "ifSeqNo is set, but primary term is [0]".to_owned(),
                    ]));
                }
            };
            return Ok(Action {
                kind,
                index: meta.index,
                id: meta.id,
                cond,
            });
        }
    }
    let (kind, meta) = parse_action_slow(line, n)?;
    let text = |k: &str| match meta.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Cow::Owned(s.clone())),
        Some(other) => Some(Cow::Owned(other.to_string())),
    };
    Ok(Action {
        kind,
        index: text("_index"),
        id: text("_id"),
        cond: meta_cond(&meta, n)?,
    })
}

fn parse_action_slow(line: &[u8], n: usize) -> Result<(Kind, Map<String, Value>), EsError> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        EsError::parse(format!(
            "[{n}:{}] Malformed action/metadata line [{n}]: {e}",
            e.column()
        ))
    })?;
    let Value::Object(obj) = v else {
        return Err(malformed(
            n,
            "expected START_OBJECT or END_OBJECT but found [VALUE_STRING]",
        ));
    };
    let mut it = obj.into_iter();
    let Some((name, meta)) = it.next() else {
        return Err(malformed(n, "expected FIELD_NAME but found [END_OBJECT]"));
    };
    if it.next().is_some() {
        return Err(malformed(n, "expected END_OBJECT but found [FIELD_NAME]"));
    }
    let kind = match name.as_str() {
        "index" => Kind::Index,
        "create" => Kind::Create,
        "update" => Kind::Update,
        "delete" => Kind::Delete,
        other => {
            return Err(malformed(
                n,
                &format!(
                    "expected field [create], [delete], [index] or [update] but found [{other}]"
                ),
            ));
        }
    };
    let Value::Object(meta) = meta else {
        return Err(malformed(
            n,
            "expected START_OBJECT but found [VALUE_STRING]",
        ));
    };
    if let Some(k) = meta.keys().find(|k| !META_FIELDS.contains(&k.as_str())) {
        return Err(EsError::illegal_argument(format!(
            "Action/metadata line [{n}] contains an unknown parameter [{k}]"
        )));
    }
    Ok((kind, meta))
}

fn meta_cond(meta: &Map<String, Value>, n: usize) -> Result<Option<(u64, u64)>, EsError> {
    match (meta.get("if_seq_no"), meta.get("if_primary_term")) {
        (None, None) => Ok(None),
        (Some(s), Some(t)) => match (s.as_u64(), t.as_u64()) {
            (Some(s), Some(t)) if t > 0 => Ok(Some((s, t))),
            _ => Err(malformed(
                n,
                "if_seq_no and if_primary_term must be non-negative numbers",
            )),
        },
        _ => Err(EsError::validation(&[
            "ifSeqNo is set, but primary term is [0]".to_owned(),
        ])),
    }
}

fn doc_parsing(reason: String) -> EsError {
    EsError::new(400, "document_parsing_exception", reason)
}

/// Validates an index/create source without building a `Value` (unless a field fault is set).
fn check_source(src: &[u8], id: &str, reject: Option<&str>) -> Option<EsError> {
    if src.first() != Some(&b'{') {
        return Some(doc_parsing(
            "[1:1] failed to parse: the document must be a JSON object".to_owned(),
        ));
    }
    if reject.is_some() {
        return match serde_json::from_slice::<Map<String, Value>>(src) {
            Ok(m) => rejected(reject, &m, id),
            Err(e) => Some(doc_parsing(format!(
                "[{}:{}] failed to parse: {e}",
                e.line(),
                e.column()
            ))),
        };
    }
    serde_json::from_slice::<IgnoredAny>(src).err().map(|e| {
        doc_parsing(format!(
            "[{}:{}] failed to parse: {e}",
            e.line(),
            e.column()
        ))
    })
}

fn parse_ops<'a>(
    req: &'a Req,
    path_index: Option<&'a str>,
    reject: Option<&str>,
) -> Result<Vec<Op<'a>>, EsError> {
    let body = &req.body;
    let mut lines = Lines { body, pos: 0 };
    let mut ops = Vec::new();
    let mut n = 0usize;
    while let Some((s, e)) = lines.next() {
        n += 1;
        if s == e {
            continue;
        }
        let Action {
            kind,
            index,
            id,
            cond,
        } = parse_action(&body[s..e], n)?;
        let index = match index.or(path_index.map(Cow::Borrowed)) {
            Some(i) => i,
            None => return Err(EsError::validation(&["index is missing".to_owned()])),
        };
        let mut err = id
            .as_deref()
            .and_then(id_problem)
            .map(EsError::illegal_argument);
        let payload = if kind == Kind::Delete {
            if id.is_none() {
                return Err(EsError::validation(&["id is missing".to_owned()]));
            }
            Payload::None
        } else {
            let Some((s2, e2)) = lines.next() else {
                return Err(EsError::illegal_argument(format!(
                    "Malformed action/metadata line [{n}]: the [{}] action needs a source line after it",
                    kind.name()
                )));
            };
            n += 1;
            let src = &body[s2..e2];
            if kind == Kind::Update {
                if id.is_none() {
                    return Err(EsError::validation(&["id is missing".to_owned()]));
                }
                match serde_json::from_slice::<Map<String, Value>>(src) {
                    Ok(m) => {
                        check_fields(&m, UPDATE_FIELDS, "UpdateRequest")?;
                        if err.is_none() {
                            let item_id = id.as_deref().unwrap_or_default();
                            err = ["doc", "upsert"].iter().find_map(|k| match m.get(*k) {
                                Some(Value::Object(d)) => rejected(reject, d, item_id),
                                _ => None,
                            });
                        }
                        Payload::Update(m)
                    }
                    Err(e) => return Err(EsError::parse(format!("[{n}:{}] {e}", e.column()))),
                }
            } else {
                if err.is_none() {
                    err = check_source(src, id.as_deref().unwrap_or("_auto_"), reject);
                }
                Payload::Source(body.slice(s2..e2))
            }
        };
        ops.push(Op {
            kind,
            index,
            id,
            cond,
            payload,
            err,
        });
    }
    if ops.is_empty() {
        return Err(EsError::validation(&["no requests added".to_owned()]));
    }
    Ok(ops)
}

fn rejected_429() -> EsError {
    EsError::new(
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=104857600]",
    )
}

/// Executes one op against the cluster.
fn execute<'a>(cluster: &mut Cluster, op: Op<'a>) -> (Op<'a>, Result<Written, EsError>) {
    let mut op = op;
    if let Some(e) = op.err.take() {
        return (op, Err(e));
    }
    let idx = match cluster.index_for_write(&op.index) {
        Ok(i) => i,
        Err(e) => return (op, Err(e)),
    };
    let payload = std::mem::replace(&mut op.payload, Payload::None);
    let result = match (op.kind, payload) {
        (Kind::Index | Kind::Create, Payload::Source(src)) => {
            let id: &str = op.id.get_or_insert_with(|| Cow::Owned(new_id()));
            // Only `create` cares whether the document exists (one tree lookup less per index).
            let exists = if op.kind == Kind::Create {
                idx.docs.get(id).map(|d| d.version)
            } else {
                None
            };
            match (op.kind, exists) {
                (Kind::Create, Some(v)) => Err(doc_exists_conflict(&op.index, id, v)),
                _ => idx
                    .check_seq(&op.index, id, op.cond)
                    .map(|()| idx.write(id, src)),
            }
        }
        (Kind::Update, Payload::Update(body)) => {
            let id = op.id.as_deref().unwrap_or_default();
            apply_update(idx, &op.index, id, &body, op.cond)
        }
        (Kind::Delete, _) => {
            let id = op.id.as_deref().unwrap_or_default();
            idx.check_seq(&op.index, id, op.cond)
                .map(|()| idx.remove(id))
        }
        _ => Err(EsError::illegal_argument("malformed bulk operation")),
    };
    (op, result)
}

/// The fields of a bulk item, in the order Elasticsearch writes them.
const FIELDS: [&str; 10] = [
    "_index",
    "_id",
    "_version",
    "result",
    "_shards",
    "forced_refresh",
    "_seq_no",
    "_primary_term",
    "status",
    "error",
];
const KINDS: [Kind; 4] = [Kind::Index, Kind::Create, Kind::Update, Kind::Delete];

/// What `filter_path` keeps of each item field, worked out once per request (not per item).
struct ItemFilter<'f> {
    filter: &'f FilterPath,
    sel: [[Sel; FIELDS.len()]; KINDS.len()],
}

impl<'f> ItemFilter<'f> {
    fn new(filter: &'f FilterPath) -> Self {
        let sel =
            KINDS.map(|kind| FIELDS.map(|field| filter.select(&["items", kind.name(), field])));
        Self { filter, sel }
    }
}

/// Writes an item's fields, skipping what the filter drops.
struct ItemWriter<'a, 'f> {
    out: &'a mut Vec<u8>,
    filter: Option<&'a ItemFilter<'f>>,
    kind: usize,
    written: usize,
}

impl ItemWriter<'_, '_> {
    fn sel(&self, field: usize) -> Sel {
        self.filter.map_or(Sel::All, |f| f.sel[self.kind][field])
    }

    fn key(&mut self, field: usize) {
        push_raw(self.out, if self.written == 0 { "\"" } else { ",\"" });
        push_raw(self.out, FIELDS[field]);
        push_raw(self.out, "\":");
        self.written += 1;
    }

    /// A field whose value is a scalar: kept or not.
    fn scalar(&mut self, field: usize, write: impl FnOnce(&mut Vec<u8>)) {
        if self.sel(field) != Sel::None {
            self.key(field);
            write(self.out);
        }
    }

    /// A field whose value is an object, filtered inside when the filter reaches into it.
    fn object(&mut self, field: usize, value: impl FnOnce() -> Value) {
        match (self.sel(field), self.filter) {
            (Sel::None, _) => {}
            (Sel::Partial, Some(f)) => {
                let path = ["items", KINDS[self.kind].name(), FIELDS[field]];
                if let Some(kept) = f.filter.apply_at(&path, value()) {
                    self.key(field);
                    push_value(self.out, &kept);
                }
            }
            _ => {
                self.key(field);
                push_value(self.out, &value());
            }
        }
    }
}

/// Writes one item; `false` (and nothing written) when the filter keeps none of it.
fn write_item(
    out: &mut Vec<u8>,
    op: &Op,
    result: &Result<Written, EsError>,
    forced_refresh: bool,
    filter: Option<&ItemFilter>,
) -> bool {
    let start = out.len();
    push_raw(out, "{\"");
    push_raw(out, op.kind.name());
    push_raw(out, "\":{");
    let kind = KINDS
        .iter()
        .position(|k| k.name() == op.kind.name())
        .unwrap_or(0);
    let mut w = ItemWriter {
        out,
        filter,
        kind,
        written: 0,
    };
    w.scalar(0, |o| push_str(o, &op.index));
    w.scalar(1, |o| match &op.id {
        Some(id) => push_str(o, id),
        None => push_raw(o, "null"),
    });
    match result {
        Ok(wr) => {
            w.scalar(2, |o| push_num(o, wr.version));
            w.scalar(3, |o| push_str(o, wr.result));
            let shards = if wr.result == "noop" { 0 } else { 2 };
            w.object(
                4,
                || json!({"total": shards, "successful": shards / 2, "failed": 0}),
            );
            if forced_refresh {
                w.scalar(5, |o| push_raw(o, "true"));
            }
            w.scalar(6, |o| push_num(o, wr.seq_no));
            w.scalar(7, |o| push_raw(o, "1"));
            w.scalar(8, |o| push_num(o, u64::from(wr.status())));
        }
        Err(e) => {
            w.scalar(8, |o| push_num(o, u64::from(e.status)));
            w.object(9, || e.cause_json());
        }
    }
    if w.written == 0 {
        out.truncate(start);
        return false;
    }
    push_raw(out, "}}");
    true
}

/// `POST|PUT [/{index}]/_bulk`.
pub(crate) fn bulk(shared: &Shared, req: &Req, path_index: Option<&str>) -> Result<Reply, EsError> {
    let started = Instant::now();
    if is_blank(&req.body) {
        return Err(EsError::validation(&["no requests added".to_owned()]));
    }
    if req.body.last() != Some(&b'\n') {
        return Err(EsError::illegal_argument(
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    if let Some(r) = req.param("refresh")
        && !matches!(r, "" | "true" | "false" | "wait_for")
    {
        return Err(EsError::illegal_argument(format!(
            "Unknown value for refresh: [{r}]."
        )));
    }
    let forced_refresh = matches!(req.param("refresh"), Some("" | "true"));
    let reject = lock(&shared.faults).reject_field.clone();
    let mut ops = parse_ops(req, path_index, reject.as_deref())?;
    {
        let mut faults = lock(&shared.faults);
        for op in ops.iter_mut().filter(|o| o.err.is_none()) {
            if faults.reject_429() {
                op.err = Some(rejected_429());
            }
        }
    }
    let filter = FilterPath::parse(req.param("filter_path"));
    let item_filter = filter.as_ref().map(ItemFilter::new);
    let mut items = Vec::with_capacity(ops.len() * 180);
    let mut errors = false;
    let mut any_item = false;
    {
        let mut cluster = lock(&shared.cluster);
        for op in ops {
            let (op, result) = execute(&mut cluster, op);
            errors |= result.is_err();
            let mark = items.len();
            if any_item {
                items.push(b',');
            }
            if write_item(
                &mut items,
                &op,
                &result,
                forced_refresh,
                item_filter.as_ref(),
            ) {
                any_item = true;
            } else {
                items.truncate(mark);
            }
        }
    }
    // The top level, filtered like the items: what the filter empties is left out.
    let keep = |field: &str| {
        filter
            .as_ref()
            .is_none_or(|f| f.select(&[field]) != Sel::None)
    };
    let mut out = Vec::with_capacity(items.len() + 64);
    let mut sep = "{";
    if keep("took") {
        push_raw(&mut out, sep);
        push_raw(&mut out, "\"took\":");
        push_num(&mut out, started.elapsed().as_millis() as u64);
        sep = ",";
    }
    if keep("errors") {
        push_raw(&mut out, sep);
        push_raw(&mut out, "\"errors\":");
        push_raw(&mut out, if errors { "true" } else { "false" });
        sep = ",";
    }
    if keep("items") && (any_item || filter.is_none()) {
        push_raw(&mut out, sep);
        push_raw(&mut out, "\"items\":[");
        out.extend_from_slice(&items);
        push_raw(&mut out, "]");
        sep = ",";
    }
    if sep == "{" {
        push_raw(&mut out, "{");
    }
    push_raw(&mut out, "}");
    Ok(Reply::raw_json(200, out))
}

/// Bulk-creates documents with generated ids (Kibana's `.index` connector), returning the bulk
/// response as a value.
pub(crate) fn index_documents(
    cluster: &mut Cluster,
    index: &str,
    docs: &[Value],
) -> Result<Value, EsError> {
    let started = Instant::now();
    let mut items = Vec::with_capacity(docs.len());
    let mut errors = false;
    for doc in docs {
        let op = Op {
            kind: Kind::Create,
            index: Cow::Borrowed(index),
            id: Some(Cow::Owned(new_id())),
            cond: None,
            payload: Payload::Source(Bytes::from(serde_json::to_vec(doc).unwrap_or_default())),
            err: (!doc.is_object()).then(|| {
                doc_parsing("[1:1] failed to parse: the document must be a JSON object".to_owned())
            }),
        };
        let (op, result) = execute(cluster, op);
        errors |= result.is_err();
        let mut buf = Vec::new();
        write_item(&mut buf, &op, &result, false, None);
        items.push(serde_json::from_slice::<Value>(&buf).unwrap_or(Value::Null));
    }
    Ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": items,
    }))
}

#[cfg(test)]
mod tests {
    use super::find_newline;

    /// The word-at-a-time search finds what a byte loop finds, wherever the newline falls.
    #[test]
    fn find_newline_matches_a_byte_loop() {
        let mut checked = 0;
        for len in 0..40 {
            for at in 0..=len {
                for fill in [b'a', 0x0b, 0x09, 0x8a, 0xff, 0x00] {
                    let mut hay = vec![fill; len];
                    if at < len {
                        hay[at] = b'\n';
                    }
                    if len > 3 && at + 2 < len {
                        hay[at + 2] = b'\n';
                    }
                    let want = hay.iter().position(|b| *b == b'\n');
                    assert_eq!(find_newline(&hay), want, "{hay:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 4000);
    }
}
