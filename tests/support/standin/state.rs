//! The cluster state every node (and Kibana's `.index` connector) shares: indices of raw JSON
//! documents with per-index sequence numbers, point-in-time and scroll snapshots, connector secrets
//! and Kibana's saved connectors. Plain data under one lock; no I/O here.
//!
//! Documents are kept as the raw `_source` bytes the client sent (a slice of the request body),
//! so `_bulk` never builds a `serde_json::Value` for a plain index operation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use serde_json::{Map, Value, json};

use super::http::{EsError, new_id, now_millis};
use super::kibana::KibanaState;

pub(crate) const CONNECTORS_INDEX: &str = ".elastic-connectors";
pub(crate) const SYNC_JOBS_INDEX: &str = ".elastic-connectors-sync-jobs";

#[derive(Clone, Debug)]
pub(crate) struct Doc {
    pub source: Bytes,
    pub seq_no: u64,
    pub primary_term: u64,
    pub version: u64,
}

impl Doc {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.source).unwrap_or(Value::Null)
    }

    pub fn object(&self) -> Map<String, Value> {
        match self.json() {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

pub(crate) struct Index {
    pub uuid: String,
    /// Keyed by `_id`; shared (`Arc`) so a point in time copies no id.
    pub docs: BTreeMap<Arc<str>, Doc>,
    pub next_seq_no: u64,
    pub settings: Value,
    pub mappings: Value,
    pub aliases: Value,
    pub creation_ms: i64,
}

/// The outcome of one write, as ES reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    pub result: &'static str,
    pub version: u64,
    pub seq_no: u64,
}

impl Written {
    pub fn status(&self) -> u16 {
        match self.result {
            "created" => 201,
            "not_found" => 404,
            _ => 200,
        }
    }
}

impl Index {
    pub fn new(settings: Value, mappings: Value, aliases: Value) -> Index {
        Index {
            uuid: new_id(),
            docs: BTreeMap::new(),
            next_seq_no: 0,
            settings,
            mappings,
            aliases,
            creation_ms: now_millis(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.next_seq_no;
        self.next_seq_no += 1;
        s
    }

    /// Index (create or overwrite) a document; the id is copied only for a new key.
    pub fn write(&mut self, id: &str, source: Bytes) -> Written {
        let seq_no = self.next_seq();
        if let Some(d) = self.docs.get_mut(id) {
            d.source = source;
            d.version += 1;
            d.seq_no = seq_no;
            return Written {
                result: "updated",
                version: d.version,
                seq_no,
            };
        }
        self.docs.insert(
            Arc::from(id),
            Doc {
                source,
                seq_no,
                primary_term: 1,
                version: 1,
            },
        );
        Written {
            result: "created",
            version: 1,
            seq_no,
        }
    }

    /// Delete a document; a miss still consumes a sequence number, as in ES.
    pub fn remove(&mut self, id: &str) -> Written {
        let seq_no = self.next_seq();
        match self.docs.remove(id) {
            Some(d) => Written {
                result: "deleted",
                version: d.version + 1,
                seq_no,
            },
            None => Written {
                result: "not_found",
                version: 1,
                seq_no,
            },
        }
    }

    /// Checks `if_seq_no`/`if_primary_term` against the current document.
    pub fn check_seq(
        &self,
        index: &str,
        id: &str,
        cond: Option<(u64, u64)>,
    ) -> Result<(), EsError> {
        let Some((seq, term)) = cond else {
            return Ok(());
        };
        match self.docs.get(id) {
            Some(d) if d.seq_no == seq && d.primary_term == term => Ok(()),
            Some(d) => Err(EsError::version_conflict(
                index,
                format!(
                    "[{id}]: version conflict, required seqNo [{seq}], primary term [{term}]. current document has seqNo [{}] and primary term [{}]",
                    d.seq_no, d.primary_term
                ),
            )),
            None => Err(EsError::version_conflict(
                index,
                format!(
                    "[{id}]: version conflict, required seqNo [{seq}], primary term [{term}]. but no document was found"
                ),
            )),
        }
    }

    pub fn info(&self, name: &str) -> Value {
        let mut settings = self.settings.get("index").cloned().unwrap_or_else(|| {
            // `settings` may be given flat (`{"number_of_shards":1}`) or nested under `index`.
            self.settings.clone()
        });
        if !settings.is_object() {
            settings = json!({});
        }
        if let Some(o) = settings.as_object_mut() {
            o.entry("number_of_shards").or_insert(json!("1"));
            o.entry("number_of_replicas").or_insert(json!("1"));
            o.insert("uuid".into(), json!(self.uuid));
            o.insert("provided_name".into(), json!(name));
            o.insert("creation_date".into(), json!(self.creation_ms.to_string()));
            o.insert("version".into(), json!({"created": "9009000"}));
        }
        json!({
            "aliases": self.aliases,
            "mappings": self.mappings,
            "settings": {"index": settings},
        })
    }
}

/// One document frozen in a point-in-time or scroll snapshot.
#[derive(Clone)]
pub(crate) struct SnapDoc {
    pub index: Arc<str>,
    pub id: Arc<str>,
    pub doc: Doc,
}

pub(crate) struct Pit {
    pub docs: Arc<Vec<SnapDoc>>,
    /// Whether every document of `docs` belongs to one index; computed once, at open.
    pub single_index: bool,
    /// The filtered, sorted hits of the last search that could not read `docs` in storage
    /// order, kept so its next pages do not filter and sort the whole snapshot again.
    pub view: Option<Arc<super::search::PitView>>,
    pub expires: Instant,
}

/// A scroll: the already sorted and filtered hits, served page by page.
pub(crate) struct Scroll {
    pub hits: Arc<Vec<SnapDoc>>,
    pub sort_values: Arc<Vec<Vec<Value>>>,
    pub pos: usize,
    pub size: usize,
    pub total: usize,
    pub expires: Instant,
}

#[derive(Default)]
pub(crate) struct Cluster {
    pub indices: BTreeMap<String, Index>,
    pub pits: HashMap<String, Pit>,
    /// Ids a PIT was also given in an answer (see `Faults::rotate_pit_ids_every`), to the
    /// id it was opened with: ES may answer a PIT search with a new id for the same PIT.
    pub pit_aliases: HashMap<String, String>,
    /// Every PIT id a search or a close named, in arrival order, and every new id an answer
    /// gave: `("search" | "close" | "new", id)`.
    pub pit_uses: Vec<(&'static str, String)>,
    pub scrolls: HashMap<String, Scroll>,
    pub secrets: BTreeMap<String, String>,
    pub kibana: KibanaState,
}

impl Cluster {
    /// The id a PIT was opened with, for any id it was given since.
    pub fn pit_id<'a>(&'a self, id: &'a str) -> &'a str {
        self.pit_aliases.get(id).map_or(id, String::as_str)
    }

    /// `PUT /{index}`.
    pub fn create_index(
        &mut self,
        name: &str,
        settings: Value,
        mappings: Value,
        aliases: Value,
    ) -> Result<&mut Index, EsError> {
        validate_index_name(name)?;
        if let Some(existing) = self.indices.get(name) {
            return Err(EsError::new(
                400,
                "resource_already_exists_exception",
                format!("index [{name}/{}] already exists", existing.uuid),
            )
            .with("index_uuid", existing.uuid.clone())
            .with("index", name));
        }
        Ok(self
            .indices
            .entry(name.to_owned())
            .or_insert_with(|| Index::new(settings, mappings, aliases)))
    }

    /// The index a write goes to, created with defaults when missing (ES auto-create).
    pub fn index_for_write(&mut self, name: &str) -> Result<&mut Index, EsError> {
        if !self.indices.contains_key(name) {
            validate_index_name(name)?;
            self.indices
                .insert(name.to_owned(), Index::new(json!({}), json!({}), json!({})));
        }
        self.indices
            .get_mut(name)
            .ok_or_else(|| EsError::index_not_found(name))
    }

    /// Resolves an index expression (`a,b`, `logs-*`, `_all`, `*`) to existing index names.
    /// Wildcards skip hidden (`.`-prefixed) indices unless the pattern itself starts with `.`.
    pub fn resolve(&self, expr: &str, ignore_unavailable: bool) -> Result<Vec<String>, EsError> {
        let mut out: Vec<String> = Vec::new();
        for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "_all" || part.contains('*') {
                let pattern = if part == "_all" { "*" } else { part };
                for name in self.indices.keys() {
                    let hidden_ok = !name.starts_with('.') || pattern.starts_with('.');
                    if hidden_ok && glob(pattern, name) && !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            } else if self.indices.contains_key(part) {
                if !out.iter().any(|n| n == part) {
                    out.push(part.to_owned());
                }
            } else if !ignore_unavailable {
                return Err(EsError::index_not_found(part));
            }
        }
        Ok(out)
    }

    pub fn doc(&self, index: &str, id: &str) -> Option<&Doc> {
        self.indices.get(index).and_then(|i| i.docs.get(id))
    }

    /// Stores a JSON object as a document (used by the connector APIs and test hooks).
    pub fn put_json(&mut self, index: &str, id: &str, source: &Value) -> Written {
        let bytes = Bytes::from(serde_json::to_vec(source).unwrap_or_default());
        match self.index_for_write(index) {
            Ok(idx) => idx.write(id, bytes),
            // Only reachable with an invalid name, which the callers never pass.
            Err(_) => Written {
                result: "noop",
                version: 0,
                seq_no: 0,
            },
        }
    }

    pub fn drop_expired(&mut self) {
        let now = Instant::now();
        self.pits.retain(|_, p| p.expires > now);
        let pits = &self.pits;
        self.pit_aliases
            .retain(|_, opened| pits.contains_key(opened));
        self.scrolls.retain(|_, s| s.expires > now);
    }
}

/// ES's index-name rules (`MetadataCreateIndexService.validateIndexOrAliasName`).
pub(crate) fn validate_index_name(name: &str) -> Result<(), EsError> {
    let invalid = |why: &str| {
        Err(EsError::new(
            400,
            "invalid_index_name_exception",
            format!("Invalid index name [{name}], {why}"),
        )
        .with("index_uuid", "_na_")
        .with("index", name))
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name != name.to_lowercase() {
        return invalid("must be lowercase");
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return invalid(
            "must not contain the following characters [' ','\"','*',',','/','<','>','?','\\','|']",
        );
    }
    if name.len() > 255 {
        return invalid("index name is too long, (256 > 255)");
    }
    Ok(())
}

/// `*` wildcard matching (the only wildcard ES index patterns and source filters use).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}
