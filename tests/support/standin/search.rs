//! Read paths over documents: `_search` (query, sort, `_source`, `from`/`size`, `search_after`,
//! point in time, scroll, `track_total_hits`, `seq_no_primary_term`), `_count`, `_pit` open/close
//! and `_delete_by_query`.
//!
//! There is no relevance: every hit scores 1.0. Storage order (index name, then `_id`) is the
//! `_doc`/`_shard_doc` order, which lets a match-all scan sorted by `_id` or `_shard_doc` page
//! through a point in time by binary search instead of re-sorting the whole index per page. Any
//! other search over a point in time filters and sorts the snapshot once and keeps the result
//! with it (`PitView`), so each further page costs its own size, not the snapshot's.
//!
//! A `slice` of a point-in-time search holds the documents whose position in the snapshot is
//! its `id` modulo `max`. That partition is the stand-in's own: ES splits by shard, then by
//! Lucene document id (`DocIdSliceQuery`, elastic/elasticsearch#75162), so its shares can be
//! uneven. What a client may rely on holds for both: the slices of one PIT are disjoint and
//! cover it, and each pages by its own `search_after`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound as RangeBound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::answer::{Answer, HitList, HitRef, SortRef, TotalOut, write_answer};
use super::filter_path::FilterPath;
use super::http::{EsError, Reply, Req, new_id, optional_object_body, parse_time};
use super::query::{
    Query, SortKey, SourceFilter, cmp_sort, compile, parse_date, parse_sort, sort_value,
};
use super::state::{Cluster, Doc, Index, Pit, Scroll, SnapDoc};
use super::{Shared, lock};

const MAX_RESULT_WINDOW: usize = 10_000;

enum TrackTotal {
    Off,
    Cap(usize),
}

struct SearchReq {
    query: Query,
    post_filter: Option<Query>,
    size: usize,
    from: usize,
    keys: Vec<SortKey>,
    has_sort: bool,
    source: SourceFilter,
    search_after: Option<Vec<Value>>,
    pit: Option<(String, Option<Duration>)>,
    track: TrackTotal,
    seq_no_primary_term: bool,
    version: bool,
    scroll: Option<Duration>,
    slice: Option<Slice>,
}

/// One `slice` of a point-in-time search (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Slice {
    id: usize,
    max: usize,
}

impl Slice {
    fn holds(self, position: usize) -> bool {
        position % self.max == self.id
    }

    /// The first position at or after `position` that this slice holds.
    fn first_from(self, position: usize) -> usize {
        position + (self.id + self.max - position % self.max) % self.max
    }

    /// How many of a snapshot of `len` documents this slice holds.
    fn count(self, len: usize) -> usize {
        len.saturating_sub(self.id).div_ceil(self.max)
    }
}

/// ES's own limit (`index.max_slices_per_scroll`, default 1024).
const MAX_SLICES: usize = 1024;

/// `{"id": n, "max": m}`, checked as ES's `SliceBuilder` checks it.
fn parse_slice(v: &Value) -> Result<Slice, EsError> {
    let Value::Object(o) = v else {
        return Err(EsError::parse("[slice] expected an object"));
    };
    for k in o.keys() {
        match k.as_str() {
            "id" | "max" => {}
            "field" => {
                return Err(EsError::illegal_argument(
                    "the stand-in does not support [field] in [slice]",
                ));
            }
            other => return Err(EsError::unknown_field("slice", other)),
        }
    }
    // ES's parser calls `SliceBuilder`'s setters, whose refusals come back wrapped: a
    // parse failure of that field, caused by the setter's `illegal_argument_exception`.
    let refused = |field: &str, reason: &str| {
        EsError::bad_field("slice", field, EsError::illegal_argument(reason))
    };
    let number = |name: &str| -> Result<i64, EsError> {
        match o.get(name) {
            // ES takes a missing one as unset and fails later; the stand-in says so at once.
            None => Err(EsError::illegal_argument(format!(
                "the stand-in needs [slice.{name}]"
            ))),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    EsError::parse(format!("[1:2] [slice] failed to parse field [{name}]"))
                }),
        }
    };
    let (id, max) = (number("id")?, number("max")?);
    if id < 0 {
        return Err(refused("id", "id must be greater than or equal to 0"));
    }
    if max <= 1 {
        return Err(refused("max", "max must be greater than 1"));
    }
    // Refused by whichever setter comes second: `max` in `{"id": …, "max": …}`.
    if id >= max {
        return Err(refused("max", "max must be greater than id"));
    }
    if max as usize > MAX_SLICES {
        return Err(EsError::illegal_argument(format!(
            "The number of slices [{max}] is too large. It must be less than [{MAX_SLICES}]. This limit can be set by changing the [index.max_slices_per_scroll] index level setting."
        )));
    }
    Ok(Slice {
        id: id as usize,
        max: max as usize,
    })
}

const SEARCH_FIELDS: &[&str] = &[
    "query",
    "post_filter",
    "size",
    "from",
    "sort",
    "_source",
    "search_after",
    "pit",
    "track_total_hits",
    "seq_no_primary_term",
    "version",
    "timeout",
    "track_scores",
    "min_score",
    "stored_fields",
    "docvalue_fields",
    "fields",
    "highlight",
    "explain",
    "terminate_after",
    "profile",
    "slice",
];

const UNSUPPORTED: &[&str] = &[
    "aggs",
    "aggregations",
    "collapse",
    "suggest",
    "rescore",
    "knn",
];

fn usize_field(v: &Value, name: &str) -> Result<usize, EsError> {
    v.as_u64()
        .map(|n| n as usize)
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| EsError::illegal_argument(format!("[{name}] must be a non-negative number")))
}

fn parse_search(req: &Req, body: &Map<String, Value>) -> Result<SearchReq, EsError> {
    for k in body.keys() {
        if UNSUPPORTED.contains(&k.as_str()) {
            return Err(EsError::illegal_argument(format!(
                "the stand-in does not support [{k}] in searches"
            )));
        }
        if !SEARCH_FIELDS.contains(&k.as_str()) {
            return Err(EsError::new(
                400,
                "parsing_exception",
                format!("Unknown key for a START_OBJECT in [{k}]."),
            )
            .with("line", 1)
            .with("col", 1));
        }
    }
    let query = match (body.get("query"), req.param("q")) {
        (Some(q), _) => compile(q)?,
        (None, Some(q)) => q_param(q),
        (None, None) => Query::All,
    };
    let post_filter = body.get("post_filter").map(compile).transpose()?;
    let size = match (body.get("size"), req.num_param("size")?) {
        (Some(v), _) => usize_field(v, "size")?,
        (None, Some(n)) => usize::try_from(n)
            .map_err(|_| EsError::illegal_argument("[size] parameter cannot be negative"))?,
        (None, None) => 10,
    };
    let from = match (body.get("from"), req.num_param("from")?) {
        (Some(v), _) => usize_field(v, "from")?,
        (None, Some(n)) => usize::try_from(n)
            .map_err(|_| EsError::illegal_argument("[from] parameter cannot be negative"))?,
        (None, None) => 0,
    };
    let keys = parse_sort(body.get("sort"), req.param("sort"))?;
    let has_sort = !keys.is_empty();
    let source = match body.get("_source") {
        Some(v) => SourceFilter::from_json(v),
        None => SourceFilter::from_params(
            req.param("_source"),
            req.param("_source_includes"),
            req.param("_source_excludes"),
        ),
    };
    let search_after = match body.get("search_after") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => return Err(EsError::illegal_argument("[search_after] must be an array")),
    };
    let pit = match body.get("pit") {
        None => None,
        Some(p) => {
            let id = p
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| EsError::parse("[1:2] [pit] failed to parse field [id]"))?;
            let keep = p
                .get("keep_alive")
                .and_then(Value::as_str)
                .and_then(parse_time);
            Some((id.to_owned(), keep))
        }
    };
    let track = match body
        .get("track_total_hits")
        .cloned()
        .or_else(|| req.param("track_total_hits").map(|s| json!(s)))
    {
        None => TrackTotal::Cap(MAX_RESULT_WINDOW),
        Some(Value::Bool(true)) => TrackTotal::Cap(usize::MAX),
        Some(Value::Bool(false)) => TrackTotal::Off,
        Some(Value::String(s)) if s == "true" => TrackTotal::Cap(usize::MAX),
        Some(Value::String(s)) if s == "false" => TrackTotal::Off,
        Some(v) => TrackTotal::Cap(usize_field(&v, "track_total_hits")?),
    };
    let flag = |name: &str| {
        body.get(name)
            .and_then(Value::as_bool)
            .unwrap_or_else(|| req.flag(name))
    };
    let scroll = match req.param("scroll") {
        None => None,
        Some(s) => Some(parse_time(s).ok_or_else(|| {
            EsError::illegal_argument(format!("failed to parse [scroll] value [{s}]"))
        })?),
    };
    let slice = match body.get("slice") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_slice(v)?),
    };
    if slice.is_some() && pit.is_none() {
        if scroll.is_none() {
            return Err(EsError::validation(&[
                "[slice] can only be used with [scroll] or [point-in-time] requests".to_owned(),
            ]));
        }
        return Err(EsError::illegal_argument(
            "the stand-in does not support [slice] in scroll searches",
        ));
    }
    if search_after.is_some() && !has_sort && pit.is_none() {
        return Err(EsError::validation(&[
            "[search_after] requires a sort".to_owned()
        ]));
    }
    if scroll.is_none() && search_after.is_none() && from + size > MAX_RESULT_WINDOW {
        return Err(EsError::illegal_argument(format!(
            "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets.",
            from + size
        )));
    }
    Ok(SearchReq {
        query,
        post_filter,
        size,
        from,
        keys,
        has_sort,
        source,
        search_after,
        pit,
        track,
        seq_no_primary_term: flag("seq_no_primary_term"),
        version: flag("version"),
        scroll,
        slice,
    })
}

/// `q=field:value` / `q=*`: enough of the Lucene syntax for quick counts.
fn q_param(q: &str) -> Query {
    match q.split_once(':') {
        Some((f, v)) if v != "*" => Query::Term {
            field: f.to_owned(),
            value: Value::String(v.to_owned()),
            ci: false,
        },
        Some((f, _)) => Query::Exists(f.to_owned()),
        None => Query::All,
    }
}

/// One hit, owned, so the response can be written after the cluster lock is released.
struct Hit {
    index: Arc<str>,
    id: Arc<str>,
    doc: Doc,
    sort: Vec<Value>,
}

/// Where a search reads from: a frozen point in time read in storage order, a point in time read
/// through its filtered and sorted view, or live indices.
enum Target {
    Snap(Arc<Vec<SnapDoc>>),
    View(Arc<PitView>),
    Live(Vec<String>),
}

fn tuple(keys: &[SortKey], index: &str, id: &str, rank: u64, src: Option<&Value>) -> Vec<Value> {
    keys.iter()
        .map(|k| sort_value(k, index, id, rank, src))
        .collect()
}

fn needs_src_for_sort(keys: &[SortKey]) -> bool {
    keys.iter().any(|k| {
        !matches!(
            k.field.as_str(),
            "_id" | "_index" | "_doc" | "_shard_doc" | "_score"
        )
    })
}

fn is_constant_or_natural(k: &SortKey) -> bool {
    k.field == "_score" || k.is_natural()
}

/// Whether a match-all search can walk storage order instead of filtering and sorting. `_id`
/// order is storage order only within one index.
fn takes_natural_path(single_index: bool, sr: &SearchReq, keys: &[SortKey]) -> bool {
    sr.query.is_all()
        && sr.post_filter.is_none()
        && keys.iter().all(is_constant_or_natural)
        && (single_index
            || keys
                .iter()
                .find(|k| k.field != "_score")
                .is_none_or(|k| k.field != "_id"))
}

/// Runs the query; returns all hits after `search_after`, in order, limited to `limit`, and the
/// total number of matches (before `search_after`, as ES reports it).
fn run(
    cluster: &Cluster,
    target: &Target,
    sr: &SearchReq,
    keys: &[SortKey],
    limit: usize,
) -> (Vec<Hit>, usize) {
    match target {
        Target::Snap(docs) => run_snap_natural(docs, sr, keys, limit),
        Target::View(view) => view.page(sr, keys, limit),
        Target::Live(names) if takes_natural_path(names.len() == 1, sr, keys) => {
            run_live_natural(cluster, names, sr, keys, limit)
        }
        Target::Live(names) => run_generic(cluster, names, sr, keys, limit),
    }
}

/// Binary search for the first position whose tuple sorts after `after`.
fn first_after(len: usize, is_after: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if is_after(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The hits a natural-order search over a snapshot answers, skipping `from`: positions
/// `first`, `first + step`, … (`count` of them, at most `limit`). A slice steps over the
/// positions the other slices hold.
#[derive(Clone, Copy)]
struct SnapRun {
    first: usize,
    step: usize,
    count: usize,
}

impl SnapRun {
    fn positions(self) -> impl Iterator<Item = usize> {
        (0..self.count).map(move |i| self.first + i * self.step)
    }
}

fn snap_run(
    docs: &[SnapDoc],
    sr: &SearchReq,
    keys: &[SortKey],
    from: usize,
    limit: usize,
) -> SnapRun {
    let start = match &sr.search_after {
        None => 0,
        Some(after) => first_after(docs.len(), |i| {
            let d = &docs[i];
            let t = tuple(keys, &d.index, &d.id, i as u64, None);
            cmp_sort(&t, after, keys) == Ordering::Greater
        }),
    };
    let (start, step) = match sr.slice {
        Some(slice) => (slice.first_from(start), slice.max),
        None => (start, 1),
    };
    let available = docs.len().saturating_sub(start).div_ceil(step);
    let count = available.min(limit).saturating_sub(from);
    SnapRun {
        first: start.saturating_add(from.saturating_mul(step)),
        step,
        count,
    }
}

/// How many documents of a snapshot a search can see: a slice sees its share.
fn snap_total(docs: &[SnapDoc], sr: &SearchReq) -> usize {
    sr.slice.map_or(docs.len(), |slice| slice.count(docs.len()))
}

fn run_snap_natural(
    docs: &[SnapDoc],
    sr: &SearchReq,
    keys: &[SortKey],
    limit: usize,
) -> (Vec<Hit>, usize) {
    let hits = snap_run(docs, sr, keys, 0, limit)
        .positions()
        .map(|rank| {
            let d = &docs[rank];
            Hit {
                index: d.index.clone(),
                id: d.id.clone(),
                doc: d.doc.clone(),
                sort: tuple(keys, &d.index, &d.id, rank as u64, None),
            }
        })
        .collect();
    (hits, snap_total(docs, sr))
}

fn run_live_natural(
    cluster: &Cluster,
    names: &[String],
    sr: &SearchReq,
    keys: &[SortKey],
    limit: usize,
) -> (Vec<Hit>, usize) {
    let mut hits = Vec::new();
    let mut total = 0;
    let mut rank_base = 0u64;
    for name in names {
        let Some(idx) = cluster.indices.get(name) else {
            continue;
        };
        total += idx.docs.len();
        let index: Arc<str> = Arc::from(name.as_str());
        if hits.len() < limit {
            collect_live_natural(idx, &index, rank_base, sr, keys, limit, &mut hits);
        }
        rank_base += idx.docs.len() as u64;
    }
    (hits, total)
}

fn collect_live_natural(
    idx: &Index,
    index: &Arc<str>,
    rank_base: u64,
    sr: &SearchReq,
    keys: &[SortKey],
    limit: usize,
    hits: &mut Vec<Hit>,
) {
    let first_key = keys
        .iter()
        .find(|k| k.field != "_score")
        .map(|k| k.field.as_str());
    let after_pos = keys.iter().position(|k| k.field != "_score");
    let after = sr
        .search_after
        .as_ref()
        .zip(after_pos)
        .and_then(|(a, p)| a.get(p));
    let push = |id: &Arc<str>, d: &Doc, rank: u64, hits: &mut Vec<Hit>| {
        hits.push(Hit {
            index: index.clone(),
            id: id.clone(),
            doc: d.clone(),
            sort: tuple(keys, index, id, rank, None),
        });
    };
    match (first_key, after) {
        (Some("_id"), Some(Value::String(after_id))) => {
            // Ranks (the `_doc` values) continue from the position of `after_id`.
            let start = rank_base
                + idx
                    .docs
                    .range::<str, _>((
                        RangeBound::Unbounded,
                        RangeBound::Included(after_id.as_str()),
                    ))
                    .count() as u64;
            let range = idx.docs.range::<str, _>((
                RangeBound::Excluded(after_id.as_str()),
                RangeBound::Unbounded,
            ));
            for (rank, (id, d)) in (start..).zip(range) {
                if hits.len() >= limit {
                    break;
                }
                push(id, d, rank, hits);
            }
        }
        (Some("_doc" | "_shard_doc"), Some(after)) => {
            let after_rank = after.as_u64().unwrap_or(0);
            for (pos, (id, d)) in idx.docs.iter().enumerate() {
                let rank = rank_base + pos as u64;
                if rank <= after_rank {
                    continue;
                }
                if hits.len() >= limit {
                    break;
                }
                push(id, d, rank, hits);
            }
        }
        _ => {
            for (pos, (id, d)) in idx.docs.iter().enumerate() {
                if hits.len() >= limit {
                    break;
                }
                push(id, d, rank_base + pos as u64, hits);
            }
        }
    }
}

/// Gathers the hits of a query, visited in storage order, into hit order.
struct Collector<'a> {
    sr: &'a SearchReq,
    keys: &'a [SortKey],
    needs_src: bool,
    hits: Vec<Hit>,
}

impl<'a> Collector<'a> {
    fn new(sr: &'a SearchReq, keys: &'a [SortKey]) -> Collector<'a> {
        let needs_src = sr.query.needs_source()
            || sr.post_filter.as_ref().is_some_and(Query::needs_source)
            || needs_src_for_sort(keys);
        Collector {
            sr,
            keys,
            needs_src,
            hits: Vec::new(),
        }
    }

    fn visit(&mut self, index: &Arc<str>, id: &Arc<str>, d: &Doc, rank: u64) {
        let src = self.needs_src.then(|| d.json());
        let src_ref = src.as_ref().unwrap_or(&Value::Null);
        let ok = self.sr.query.matches(index, id, src_ref)
            && self
                .sr
                .post_filter
                .as_ref()
                .is_none_or(|f| f.matches(index, id, src_ref));
        if ok {
            self.hits.push(Hit {
                index: index.clone(),
                id: id.clone(),
                doc: d.clone(),
                sort: tuple(self.keys, index, id, rank, src.as_ref()),
            });
        }
    }

    /// Every match, sorted (stable: ties keep storage order, like ES's implicit doc-order
    /// tiebreak); natural keys keep storage order as is.
    fn finish(self) -> Vec<Hit> {
        let mut hits = self.hits;
        if !self.keys.iter().all(is_constant_or_natural) {
            hits.sort_by(|a, b| cmp_sort(&a.sort, &b.sort, self.keys));
        }
        hits
    }
}

fn run_generic(
    cluster: &Cluster,
    names: &[String],
    sr: &SearchReq,
    keys: &[SortKey],
    limit: usize,
) -> (Vec<Hit>, usize) {
    let mut collector = Collector::new(sr, keys);
    let mut rank = 0u64;
    for name in names {
        let Some(idx) = cluster.indices.get(name) else {
            continue;
        };
        let index: Arc<str> = Arc::from(name.as_str());
        for (id, d) in &idx.docs {
            collector.visit(&index, id, d, rank);
            rank += 1;
        }
    }
    let mut hits = collector.finish();
    let total = hits.len();
    if let Some(after) = &sr.search_after {
        hits.retain(|h| cmp_sort(&h.sort, after, keys) == Ordering::Greater);
    }
    hits.truncate(limit);
    (hits, total)
}

/// How one sort key compares its non-null values (see `query::cmp_values`). Within one class the
/// comparison is a total order; across classes it is not (e.g. date strings against other
/// strings), so binary search is only trusted when every value shares one class.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueClass {
    /// No non-null value: every comparison against the key is the same.
    Null,
    Number,
    Date,
    Text,
    Bool,
}

fn value_class(v: &Value) -> Option<ValueClass> {
    match v {
        Value::Null => Some(ValueClass::Null),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|_| ValueClass::Number),
        Value::String(s) if parse_date(s).is_some() => Some(ValueClass::Date),
        Value::String(_) => Some(ValueClass::Text),
        Value::Bool(_) => Some(ValueClass::Bool),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The per-key classes of `hits`, when they are sorted under `keys` and every key's values share
/// one class; `None` otherwise.
fn key_classes(hits: &[Hit], keys: &[SortKey]) -> Option<Vec<ValueClass>> {
    let mut classes = vec![ValueClass::Null; keys.len()];
    for h in hits {
        for (i, class) in classes.iter_mut().enumerate() {
            let c = value_class(h.sort.get(i).unwrap_or(&Value::Null))?;
            match (*class, c) {
                (_, ValueClass::Null) => {}
                (ValueClass::Null, c) => *class = c,
                (have, c) if have == c => {}
                _ => return None,
            }
        }
    }
    let sorted = hits
        .windows(2)
        .all(|w| cmp_sort(&w[0].sort, &w[1].sort, keys) != Ordering::Greater);
    sorted.then_some(classes)
}

/// A point in time's hits for one query and sort, computed once and paged through by
/// `search_after`.
pub(crate) struct PitView {
    /// The query, post filter and sort keys the view was built for.
    signature: String,
    /// Every match, in hit order.
    hits: Vec<Hit>,
    /// Set when `hits` is sorted with one value class per key: the hits after a `search_after`
    /// whose values have the same classes are then a suffix of `hits`, found by binary search.
    classes: Option<Vec<ValueClass>>,
}

impl PitView {
    /// `suffix_search: false` leaves `classes` unset, so every page filters the whole view
    /// (the general path, for a stand-in without shortcuts).
    fn build(
        docs: &[SnapDoc],
        sr: &SearchReq,
        keys: &[SortKey],
        signature: String,
        suffix_search: bool,
    ) -> PitView {
        let mut collector = Collector::new(sr, keys);
        for (rank, d) in docs.iter().enumerate() {
            if sr.slice.is_none_or(|slice| slice.holds(rank)) {
                collector.visit(&d.index, &d.id, &d.doc, rank as u64);
            }
        }
        let hits = collector.finish();
        let classes = if suffix_search {
            key_classes(&hits, keys)
        } else {
            None
        };
        PitView {
            signature,
            hits,
            classes,
        }
    }

    /// Whether the hits after `after` are a suffix of `hits`.
    fn is_suffix_after(&self, after: &[Value]) -> bool {
        let Some(classes) = &self.classes else {
            return false;
        };
        classes.iter().enumerate().all(|(i, class)| {
            let c = value_class(after.get(i).unwrap_or(&Value::Null));
            *class == ValueClass::Null || c == Some(ValueClass::Null) || c == Some(*class)
        })
    }

    /// The positions of the page's hits when they are one run of `hits` (always, but for a
    /// `search_after` whose values do not share the view's classes): at most `limit` of them.
    fn range(&self, sr: &SearchReq, keys: &[SortKey], limit: usize) -> Option<(usize, usize)> {
        let start = match &sr.search_after {
            None => 0,
            Some(after) if self.is_suffix_after(after) => self
                .hits
                .partition_point(|h| cmp_sort(&h.sort, after, keys) != Ordering::Greater),
            Some(_) => return None,
        };
        Some((start, start.saturating_add(limit).min(self.hits.len())))
    }

    /// Same answer as `run_generic` over the snapshot, without filtering and sorting it again.
    fn page(&self, sr: &SearchReq, keys: &[SortKey], limit: usize) -> (Vec<Hit>, usize) {
        let total = self.hits.len();
        let Some(after) = &sr.search_after else {
            return (self.hits.iter().take(limit).map(clone_hit).collect(), total);
        };
        let is_after = |h: &Hit| cmp_sort(&h.sort, after, keys) == Ordering::Greater;
        let hits = if self.is_suffix_after(after) {
            let start = self.hits.partition_point(|h| !is_after(h));
            self.hits[start..]
                .iter()
                .take(limit)
                .map(clone_hit)
                .collect()
        } else {
            self.hits
                .iter()
                .filter(|h| is_after(h))
                .take(limit)
                .map(clone_hit)
                .collect()
        };
        (hits, total)
    }
}

/// What a cached `PitView` is keyed by; `None` when the query must be evaluated on every page
/// because it holds date math (`now…` resolves when the query compiles).
fn view_signature(body: &Map<String, Value>, req: &Req, keys: &[SortKey]) -> Option<String> {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!([k.field, k.desc, k.missing_first]))
        .collect();
    let sig = json!([
        body.get("query"),
        req.param("q"),
        body.get("post_filter"),
        keys,
        body.get("slice")
    ])
    .to_string();
    (!sig.contains("\"now")).then_some(sig)
}

/// The point in time's view for this search: the cached one when it was built for the same
/// query and sort, else a new one (cached unless it cannot be reused).
fn pit_view(
    pit: &mut Pit,
    sr: &SearchReq,
    keys: &[SortKey],
    sig: Option<String>,
    suffix_search: bool,
) -> Arc<PitView> {
    if let (Some(sig), Some(view)) = (&sig, &pit.view)
        && view.signature == *sig
    {
        return view.clone();
    }
    let cacheable = sig.is_some();
    let view = Arc::new(PitView::build(
        &pit.docs,
        sr,
        keys,
        sig.unwrap_or_default(),
        suffix_search,
    ));
    if cacheable {
        pit.view = Some(view.clone());
    }
    view
}

fn snapshot(cluster: &Cluster, names: &[String]) -> Vec<SnapDoc> {
    let mut out = Vec::with_capacity(
        names
            .iter()
            .filter_map(|n| cluster.indices.get(n))
            .map(|i| i.docs.len())
            .sum(),
    );
    for name in names {
        let Some(idx) = cluster.indices.get(name) else {
            continue;
        };
        let index: Arc<str> = Arc::from(name.as_str());
        out.extend(idx.docs.iter().map(|(id, d)| SnapDoc {
            index: index.clone(),
            id: id.clone(),
            doc: d.clone(),
        }));
    }
    out
}

/// A PIT or scroll that is closed or expired: as ES answers it, a search whose every shard
/// failed with `search_context_missing_exception` (404).
fn search_context_missing(id: &str) -> EsError {
    let missing = json!({
        "type": "search_context_missing_exception",
        "reason": format!("No search context found for id [{id}]"),
    });
    let reason = format!("No search context found for id [{id}]");
    EsError::new(404, "search_phase_execution_exception", "all shards failed")
        .with("phase", "query")
        .with("grouped", true)
        .with(
            "failed_shards",
            json!([{"shard": -1, "index": null, "reason": missing}]),
        )
        .caused_by(EsError::new(
            404,
            "search_context_missing_exception",
            reason,
        ))
}

impl HitList for Vec<Hit> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn hit(&self, i: usize) -> HitRef<'_> {
        hit_ref(&self[i])
    }
}

fn hit_ref(h: &Hit) -> HitRef<'_> {
    HitRef {
        index: &h.index,
        id: &h.id,
        doc: &h.doc,
        sort: SortRef::Values(&h.sort),
    }
}

/// Hits borrowed from a point in time's view.
struct HitSlice<'a>(&'a [Hit]);

impl HitList for HitSlice<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn hit(&self, i: usize) -> HitRef<'_> {
        hit_ref(&self.0[i])
    }
}

/// A page read from a point in time in storage order, borrowed from its snapshot: the sort
/// values follow from each document's position.
struct SnapPage<'a> {
    /// The whole snapshot.
    docs: &'a [SnapDoc],
    run: SnapRun,
    keys: &'a [SortKey],
}

impl HitList for SnapPage<'_> {
    fn len(&self) -> usize {
        self.run.count
    }

    fn hit(&self, i: usize) -> HitRef<'_> {
        let rank = self.run.first + i * self.run.step;
        let d = &self.docs[rank];
        HitRef {
            index: &d.index,
            id: &d.id,
            doc: &d.doc,
            sort: SortRef::Natural {
                keys: self.keys,
                rank: rank as u64,
            },
        }
    }
}

fn total_out(track: &TrackTotal, total: usize, rest_total_as_int: bool) -> TotalOut {
    match track {
        TrackTotal::Off => TotalOut::Off,
        TrackTotal::Cap(_) if rest_total_as_int => TotalOut::Int(total as u64),
        TrackTotal::Cap(cap) if total > *cap => TotalOut::Object {
            value: *cap as u64,
            relation: "gte",
        },
        TrackTotal::Cap(_) => TotalOut::Object {
            value: total as u64,
            relation: "eq",
        },
    }
}

/// Everything of a search answer but its hits.
struct Page<'a> {
    took: u64,
    total: usize,
    pit_id: Option<&'a str>,
    scroll_id: Option<&'a str>,
    keys_shown: bool,
}

fn write_response(sr: &SearchReq, page: &Page<'_>, hits: &dyn HitList, req: &Req) -> Reply {
    let filter = FilterPath::parse(req.param("filter_path"));
    let ans = Answer {
        took: page.took,
        pit_id: page.pit_id,
        scroll_id: page.scroll_id,
        total: total_out(&sr.track, page.total, req.flag("rest_total_hits_as_int")),
        has_sort: sr.has_sort,
        keys_shown: page.keys_shown,
        version: sr.version,
        seq_no_primary_term: sr.seq_no_primary_term,
        source: &sr.source,
    };
    let mut reply = Reply::raw_json(200, write_answer(&ans, hits, filter.as_ref()));
    reply.filtered = true;
    reply
}

/// `GET|POST [/{index}]/_search`.
pub(crate) fn search(
    shared: &Shared,
    req: &Req,
    path_index: Option<&str>,
) -> Result<Reply, EsError> {
    let started = Instant::now();
    let body = optional_object_body(req)?;
    let sr = parse_search(req, &body)?;
    let mut keys = sr.keys.clone();
    let mut cluster = lock(&shared.cluster);
    cluster.drop_expired();
    let (target, pit_id) = match &sr.pit {
        Some((id, keep)) => {
            if path_index.is_some() {
                return Err(EsError::validation(&[
                    "[indices] cannot be used with point in time. Do not specify any index with point in time."
                        .to_owned(),
                ]));
            }
            if sr.scroll.is_some() {
                return Err(EsError::validation(&[
                    "using [point in time] is not allowed in a scroll context".to_owned(),
                ]));
            }
            cluster.pit_uses.push(("search", id.clone()));
            let opened = cluster.pit_id(id).to_owned();
            if !cluster.pits.contains_key(&opened) {
                return Err(search_context_missing(id));
            }
            // Locks: `cluster`, then `faults` (nothing takes them the other way round).
            let answer_id = if lock(&shared.faults).rotates_pit_id() {
                let new = format!("{}{}AAAA==", new_id(), new_id());
                cluster.pit_aliases.insert(new.clone(), opened.clone());
                cluster.pit_uses.push(("new", new.clone()));
                new
            } else {
                id.clone()
            };
            let pit = cluster
                .pits
                .get_mut(&opened)
                .ok_or_else(|| search_context_missing(id))?;
            if let Some(k) = keep {
                pit.expires = Instant::now() + *k;
            }
            // With a point in time ES adds `_shard_doc` as an implicit tiebreaker.
            if keys.is_empty() {
                keys.push(SortKey::new("_score", true));
            }
            if !keys.iter().any(|k| k.field == "_shard_doc") {
                keys.push(SortKey::new("_shard_doc", false));
            }
            let target =
                if shared.opts.fast_paths && takes_natural_path(pit.single_index, &sr, &keys) {
                    Target::Snap(pit.docs.clone())
                } else {
                    let sig = view_signature(&body, req, &keys);
                    Target::View(pit_view(pit, &sr, &keys, sig, shared.opts.fast_paths))
                };
            (target, Some(answer_id))
        }
        None => {
            let ignore = req.flag("ignore_unavailable");
            let names = cluster.resolve(path_index.unwrap_or("_all"), ignore)?;
            (Target::Live(names), None)
        }
    };
    let keys_shown = !keys.is_empty();
    if let Some(keep) = sr.scroll {
        let (hits, total) = run(&cluster, &target, &sr, &keys, usize::MAX);
        let scroll_id = format!("{}{}", new_id(), new_id());
        let first: Vec<Hit> = hits
            .iter()
            .skip(sr.from)
            .take(sr.size)
            .map(clone_hit)
            .collect();
        // Moved, not cloned: the scroll keeps every remaining hit.
        let (rest, sorts): (Vec<SnapDoc>, Vec<Vec<Value>>) = hits
            .into_iter()
            .skip(sr.from)
            .map(|h| {
                let doc = SnapDoc {
                    index: h.index,
                    id: h.id,
                    doc: h.doc,
                };
                (doc, h.sort)
            })
            .unzip();
        cluster.scrolls.insert(
            scroll_id.clone(),
            Scroll {
                hits: Arc::new(rest),
                sort_values: Arc::new(sorts),
                pos: first.len(),
                size: sr.size.max(1),
                total,
                expires: Instant::now() + keep,
            },
        );
        drop(cluster);
        let page = Page {
            took: started.elapsed().as_millis() as u64,
            total,
            pit_id: None,
            scroll_id: Some(&scroll_id),
            keys_shown,
        };
        return Ok(write_response(&sr, &page, &first, req));
    }
    if let Target::Snap(docs) = &target {
        // Written straight from the snapshot: no hit is copied.
        let run = snap_run(docs, &sr, &keys, sr.from, sr.from.saturating_add(sr.size));
        drop(cluster);
        let hits = SnapPage {
            docs,
            run,
            keys: &keys,
        };
        let page = Page {
            took: started.elapsed().as_millis() as u64,
            total: snap_total(docs, &sr),
            pit_id: pit_id.as_deref(),
            scroll_id: None,
            keys_shown,
        };
        return Ok(write_response(&sr, &page, &hits, req));
    }
    if let Target::View(view) = &target
        && shared.opts.fast_paths
        && let Some((start, end)) = view.range(&sr, &keys, sr.from.saturating_add(sr.size))
    {
        // Written straight from the view: no hit is copied.
        drop(cluster);
        let first = start.saturating_add(sr.from).min(end);
        let page = Page {
            took: started.elapsed().as_millis() as u64,
            total: view.hits.len(),
            pit_id: pit_id.as_deref(),
            scroll_id: None,
            keys_shown,
        };
        return Ok(write_response(
            &sr,
            &page,
            &HitSlice(&view.hits[first..end]),
            req,
        ));
    }
    let (hits, total) = run(
        &cluster,
        &target,
        &sr,
        &keys,
        sr.from.saturating_add(sr.size),
    );
    drop(cluster);
    let page_hits: Vec<Hit> = hits.into_iter().skip(sr.from).collect();
    let page = Page {
        took: started.elapsed().as_millis() as u64,
        total,
        pit_id: pit_id.as_deref(),
        scroll_id: None,
        keys_shown,
    };
    Ok(write_response(&sr, &page, &page_hits, req))
}

fn clone_hit(h: &Hit) -> Hit {
    Hit {
        index: h.index.clone(),
        id: h.id.clone(),
        doc: h.doc.clone(),
        sort: h.sort.clone(),
    }
}

/// `GET|POST /_search/scroll[/{id}]` and `DELETE /_search/scroll[/{id}]`.
pub(crate) fn scroll(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let body = optional_object_body(req)?;
    let ids: Vec<String> = match (body.get("scroll_id"), req.seg(2), req.param("scroll_id")) {
        (Some(Value::String(s)), _, _) => vec![s.clone()],
        (Some(Value::Array(a)), _, _) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        (_, Some(s), _) | (_, None, Some(s)) => s.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut cluster = lock(&shared.cluster);
    cluster.drop_expired();
    if req.method == hyper::Method::DELETE {
        let freed = ids
            .iter()
            .filter(|id| cluster.scrolls.remove(*id).is_some())
            .count();
        let status = if freed > 0 || ids.is_empty() {
            200
        } else {
            404
        };
        return Ok(Reply::json(
            status,
            &json!({"succeeded": true, "num_freed": freed}),
        ));
    }
    let Some(id) = ids.first() else {
        return Err(EsError::validation(&["scrollId is missing".to_owned()]));
    };
    let keep = body
        .get("scroll")
        .and_then(Value::as_str)
        .or(req.param("scroll"))
        .and_then(parse_time);
    let sc = cluster
        .scrolls
        .get_mut(id)
        .ok_or_else(|| search_context_missing(id))?;
    if let Some(k) = keep {
        sc.expires = Instant::now() + k;
    }
    let end = (sc.pos + sc.size).min(sc.hits.len());
    let hits: Vec<Hit> = (sc.pos..end)
        .map(|i| {
            let d = &sc.hits[i];
            Hit {
                index: d.index.clone(),
                id: d.id.clone(),
                doc: d.doc.clone(),
                sort: sc.sort_values.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect();
    sc.pos = end;
    let total = sc.total;
    let keys_shown = hits.first().is_some_and(|h| !h.sort.is_empty());
    drop(cluster);
    let sr = SearchReq {
        query: Query::All,
        post_filter: None,
        size: hits.len(),
        from: 0,
        keys: Vec::new(),
        has_sort: keys_shown,
        source: SourceFilter::All,
        search_after: None,
        pit: None,
        track: TrackTotal::Cap(MAX_RESULT_WINDOW),
        seq_no_primary_term: false,
        version: false,
        scroll: None,
        slice: None,
    };
    let page = Page {
        took: 0,
        total,
        pit_id: None,
        scroll_id: Some(id),
        keys_shown,
    };
    Ok(write_response(&sr, &page, &hits, req))
}

/// `GET|POST [/{index}]/_count`.
pub(crate) fn count(
    shared: &Shared,
    req: &Req,
    path_index: Option<&str>,
) -> Result<Reply, EsError> {
    let body = optional_object_body(req)?;
    for k in body.keys() {
        if k != "query" {
            return Err(EsError::new(
                400,
                "parsing_exception",
                format!("request does not support [{k}]"),
            )
            .with("line", 1)
            .with("col", 1));
        }
    }
    let query = match (body.get("query"), req.param("q")) {
        (Some(q), _) => compile(q)?,
        (None, Some(q)) => q_param(q),
        (None, None) => Query::All,
    };
    let cluster = lock(&shared.cluster);
    let names = cluster.resolve(path_index.unwrap_or("_all"), req.flag("ignore_unavailable"))?;
    let n = count_matches(&cluster, &names, &query);
    Ok(Reply::ok(&json!({
        "count": n,
        "_shards": {"total": names.len().max(1), "successful": names.len().max(1), "skipped": 0, "failed": 0}
    })))
}

fn count_matches(cluster: &Cluster, names: &[String], query: &Query) -> usize {
    let mut n = 0;
    for name in names {
        let Some(idx) = cluster.indices.get(name) else {
            continue;
        };
        if query.is_all() {
            n += idx.docs.len();
            continue;
        }
        let needs = query.needs_source();
        n += idx
            .docs
            .iter()
            .filter(|(id, d)| {
                let src = if needs { d.json() } else { Value::Null };
                query.matches(name, id, &src)
            })
            .count();
    }
    n
}

/// `POST /{index}/_pit?keep_alive=…`.
pub(crate) fn open_pit(shared: &Shared, req: &Req, expr: &str) -> Result<Reply, EsError> {
    let keep_raw = req
        .param("keep_alive")
        .ok_or_else(|| EsError::validation(&["[keep_alive] is not specified".to_owned()]))?;
    let keep = parse_time(keep_raw).ok_or_else(|| {
        EsError::illegal_argument(format!(
            "failed to parse setting [keep_alive] with value [{keep_raw}] as a time value"
        ))
    })?;
    let mut cluster = lock(&shared.cluster);
    cluster.drop_expired();
    let names = cluster.resolve(expr, req.flag("ignore_unavailable"))?;
    let docs = snapshot(&cluster, &names);
    // Once here rather than on every page: a scan reads many pages of a large snapshot.
    let single_index = docs
        .first()
        .is_none_or(|f| docs.iter().all(|d| d.index == f.index));
    let id = format!("{}{}AAAA==", new_id(), new_id());
    cluster.pits.insert(
        id.clone(),
        Pit {
            docs: Arc::new(docs),
            single_index,
            view: None,
            expires: Instant::now() + keep,
        },
    );
    let n = names.len().max(1);
    Ok(Reply::ok(&json!({
        "id": id,
        "_shards": {"total": n, "successful": n, "skipped": 0, "failed": 0}
    })))
}

/// `DELETE /_pit` with `{"id": …}`.
pub(crate) fn close_pit(shared: &Shared, req: &Req) -> Result<Reply, EsError> {
    let body = super::http::object_body(req)?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| EsError::validation(&["[id] is missing".to_owned()]))?;
    let mut cluster = lock(&shared.cluster);
    cluster.pit_uses.push(("close", id.to_owned()));
    let opened = cluster.pit_id(id).to_owned();
    let freed = usize::from(cluster.pits.remove(&opened).is_some());
    cluster.pit_aliases.retain(|_, to| *to != opened);
    drop(cluster);
    let status = if freed > 0 { 200 } else { 404 };
    Ok(Reply::json(
        status,
        &json!({"succeeded": true, "num_freed": freed}),
    ))
}

/// `POST /{index}/_delete_by_query`.
pub(crate) fn delete_by_query(shared: &Shared, req: &Req, expr: &str) -> Result<Reply, EsError> {
    let started = Instant::now();
    let body = super::http::object_body(req)?;
    for k in body.keys() {
        if !matches!(k.as_str(), "query" | "max_docs" | "slice" | "sort") {
            return Err(EsError::new(
                400,
                "parsing_exception",
                format!("Unknown key for a START_OBJECT in [{k}]."),
            )
            .with("line", 1)
            .with("col", 1));
        }
    }
    let query = compile(
        body.get("query")
            .ok_or_else(|| EsError::validation(&["query is missing".to_owned()]))?,
    )?;
    let max_docs = match (body.get("max_docs"), req.num_param("max_docs")?) {
        (Some(v), _) => usize_field(v, "max_docs")?,
        (None, Some(n)) => usize::try_from(n).unwrap_or(0),
        (None, None) => usize::MAX,
    };
    let mut cluster = lock(&shared.cluster);
    let names = cluster.resolve(expr, req.flag("ignore_unavailable"))?;
    let mut victims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut total = 0usize;
    let needs = query.needs_source();
    'outer: for name in &names {
        let Some(idx) = cluster.indices.get(name) else {
            continue;
        };
        for (id, d) in &idx.docs {
            if total >= max_docs {
                break 'outer;
            }
            let src = if needs { d.json() } else { Value::Null };
            if query.matches(name, id, &src) {
                victims
                    .entry(name.clone())
                    .or_default()
                    .push(id.to_string());
                total += 1;
            }
        }
    }
    for (name, ids) in &victims {
        if let Some(idx) = cluster.indices.get_mut(name) {
            for id in ids {
                idx.remove(id);
            }
        }
    }
    Ok(Reply::ok(&json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "total": total,
        "deleted": total,
        "batches": usize::from(total > 0).max(total.div_ceil(1000)),
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": []
    })))
}
