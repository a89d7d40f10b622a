//! The `_search` (and scroll) answer writer. The answer is written by hand straight from the
//! stored documents, and `filter_path` is applied while writing: what the filter keeps of each
//! field of the answer's fixed shape is decided once per request ([`FilterPath::select`]), not
//! once per hit, so a page of an id scan is never parsed back into a `Value`.
//!
//! Filtering while writing must give what filtering the written answer after the fact gives
//! (`FilterPath::apply`, which every other API uses): the same fields in the same order, a
//! container the filter empties dropped (a hit, the hit list, `hits`), and a kept `_source`
//! re-serialized as the parse of the unfiltered answer would (`tests/it/standin_selftest.rs`
//! compares both).

use serde_json::{Value, json};

use super::filter_path::{FilterPath, Sel};
use super::http::{push_num, push_raw, push_str, push_value};
use super::query::{SortKey, SourceFilter, sort_value};
use super::state::Doc;

/// One hit as the writer reads it: borrowed from a snapshot or from an owned hit list.
pub(crate) struct HitRef<'a> {
    pub index: &'a str,
    pub id: &'a str,
    pub doc: &'a Doc,
    pub sort: SortRef<'a>,
}

/// A hit's sort values.
pub(crate) enum SortRef<'a> {
    Values(&'a [Value]),
    /// Keys that need no `_source` (`_id`, `_index`, `_doc`, `_shard_doc`, `_score`), written
    /// from the hit's position in storage order without building a `Value` per hit.
    Natural {
        keys: &'a [SortKey],
        rank: u64,
    },
}

impl SortRef<'_> {
    fn write(&self, out: &mut Vec<u8>, index: &str, id: &str) {
        out.push(b'[');
        match self {
            SortRef::Values(values) => {
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_value(out, v);
                }
            }
            SortRef::Natural { keys, rank } => {
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match k.field.as_str() {
                        "_doc" | "_shard_doc" => push_num(out, *rank),
                        "_id" => push_str(out, id),
                        _ => push_value(out, &sort_value(k, index, id, *rank, None)),
                    }
                }
            }
        }
        out.push(b']');
    }

    fn value(&self, index: &str, id: &str) -> Value {
        match self {
            SortRef::Values(values) => Value::Array(values.to_vec()),
            SortRef::Natural { keys, rank } => Value::Array(
                keys.iter()
                    .map(|k| sort_value(k, index, id, *rank, None))
                    .collect(),
            ),
        }
    }
}

/// The hits of one page, in order.
pub(crate) trait HitList {
    fn len(&self) -> usize;
    fn hit(&self, i: usize) -> HitRef<'_>;
}

/// `hits.total` as the request asked for it.
#[derive(Clone, Copy)]
pub(crate) enum TotalOut {
    /// `track_total_hits: false`: no `total` at all.
    Off,
    /// `rest_total_hits_as_int`.
    Int(u64),
    Object {
        value: u64,
        relation: &'static str,
    },
}

/// Everything of an answer but its hits.
pub(crate) struct Answer<'a> {
    pub took: u64,
    pub pit_id: Option<&'a str>,
    pub scroll_id: Option<&'a str>,
    pub total: TotalOut,
    /// A sort was asked for: `_score` and `max_score` are `null`.
    pub has_sort: bool,
    /// Whether hits carry `sort`.
    pub keys_shown: bool,
    pub version: bool,
    pub seq_no_primary_term: bool,
    pub source: &'a SourceFilter,
}

/// The fields of a hit, in the order they are written.
const HIT_FIELDS: [&str; 8] = [
    "_index",
    "_id",
    "_version",
    "_seq_no",
    "_primary_term",
    "_score",
    "_source",
    "sort",
];

/// What a filter keeps of each field of the answer, decided once.
struct Plan<'f> {
    filter: Option<&'f FilterPath>,
    took: Sel,
    timed_out: Sel,
    pit_id: Sel,
    scroll_id: Sel,
    shards: Sel,
    hits: Sel,
    total: Sel,
    max_score: Sel,
    hit_list: Sel,
    hit: [Sel; 8],
}

impl<'f> Plan<'f> {
    fn new(filter: Option<&'f FilterPath>) -> Plan<'f> {
        let sel = |path: &[&str]| filter.map_or(Sel::All, |f| f.select(path));
        let mut hit = [Sel::All; 8];
        for (s, field) in hit.iter_mut().zip(HIT_FIELDS) {
            *s = sel(&["hits", "hits", field]);
        }
        Plan {
            filter,
            took: sel(&["took"]),
            timed_out: sel(&["timed_out"]),
            pit_id: sel(&["pit_id"]),
            scroll_id: sel(&["_scroll_id"]),
            shards: sel(&["_shards"]),
            hits: sel(&["hits"]),
            total: sel(&["hits", "total"]),
            max_score: sel(&["hits", "max_score"]),
            hit_list: sel(&["hits", "hits"]),
            hit,
        }
    }

    /// The selection of a field under a container that was itself selected as `parent`.
    fn under(parent: Sel, own: Sel) -> Sel {
        match parent {
            Sel::Partial => own,
            whole => whole,
        }
    }
}

/// An object being written: whether a field was written yet, for commas.
struct Obj {
    empty: bool,
}

impl Obj {
    fn open(out: &mut Vec<u8>) -> Obj {
        out.push(b'{');
        Obj { empty: true }
    }

    /// `name` is one of the answer's own keys, which need no escaping.
    fn key(&mut self, out: &mut Vec<u8>, name: &str) {
        if !self.empty {
            out.push(b',');
        }
        self.empty = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }

    /// Writes one field as `sel` keeps it: whole with `write`, or (partly kept) its `value`
    /// filtered at `path`.
    fn field(
        &mut self,
        out: &mut Vec<u8>,
        plan: &Plan<'_>,
        sel: Sel,
        path: &[&str],
        write: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce() -> Value,
    ) {
        match sel {
            Sel::All => {
                self.key(out, path.last().copied().unwrap_or_default());
                write(out);
            }
            Sel::None => {}
            Sel::Partial => {
                let kept = plan.filter.and_then(|f| f.apply_at(path, value()));
                if let Some(v) = kept {
                    self.key(out, path.last().copied().unwrap_or_default());
                    push_value(out, &v);
                }
            }
        }
    }
}

/// Writes the answer, filtered by `filter` when there is one.
pub(crate) fn write_answer(
    ans: &Answer<'_>,
    hits: &dyn HitList,
    filter: Option<&FilterPath>,
) -> Vec<u8> {
    let plan = Plan::new(filter);
    let mut out = Vec::with_capacity(256 + 96 * hits.len());
    let mut root = Obj::open(&mut out);
    root.field(
        &mut out,
        &plan,
        plan.took,
        &["took"],
        |o| push_num(o, ans.took),
        || json!(ans.took),
    );
    root.field(
        &mut out,
        &plan,
        plan.timed_out,
        &["timed_out"],
        |o| push_raw(o, "false"),
        || json!(false),
    );
    if let Some(id) = ans.pit_id {
        root.field(
            &mut out,
            &plan,
            plan.pit_id,
            &["pit_id"],
            |o| push_str(o, id),
            || json!(id),
        );
    }
    if let Some(id) = ans.scroll_id {
        root.field(
            &mut out,
            &plan,
            plan.scroll_id,
            &["_scroll_id"],
            |o| push_str(o, id),
            || json!(id),
        );
    }
    root.field(
        &mut out,
        &plan,
        plan.shards,
        &["_shards"],
        |o| {
            push_raw(
                o,
                "{\"total\":1,\"successful\":1,\"skipped\":0,\"failed\":0}",
            )
        },
        || json!({"total": 1, "successful": 1, "skipped": 0, "failed": 0}),
    );
    if plan.hits != Sel::None {
        let mark = out.len();
        root.key(&mut out, "hits");
        if !write_hits_object(&mut out, ans, hits, &plan) {
            out.truncate(mark);
        }
    }
    out.push(b'}');
    out
}

/// Writes the `hits` object; false when the filter kept nothing of it.
fn write_hits_object(
    out: &mut Vec<u8>,
    ans: &Answer<'_>,
    hits: &dyn HitList,
    plan: &Plan<'_>,
) -> bool {
    let mut obj = Obj::open(out);
    let total = Plan::under(plan.hits, plan.total);
    match ans.total {
        TotalOut::Off => {}
        TotalOut::Int(n) => obj.field(
            out,
            plan,
            total,
            &["hits", "total"],
            |o| push_num(o, n),
            || json!(n),
        ),
        TotalOut::Object { value, relation } => obj.field(
            out,
            plan,
            total,
            &["hits", "total"],
            |o| {
                push_raw(o, "{\"value\":");
                push_num(o, value);
                push_raw(o, ",\"relation\":");
                push_str(o, relation);
                o.push(b'}');
            },
            || json!({"value": value, "relation": relation}),
        ),
    }
    let max_score = if ans.has_sort || hits.len() == 0 {
        Value::Null
    } else {
        json!(1.0)
    };
    obj.field(
        out,
        plan,
        Plan::under(plan.hits, plan.max_score),
        &["hits", "max_score"],
        |o| push_value(o, &max_score),
        || max_score.clone(),
    );
    let list = Plan::under(plan.hits, plan.hit_list);
    if list != Sel::None {
        let mark = (out.len(), obj.empty);
        obj.key(out, "hits");
        out.push(b'[');
        let mut kept = 0usize;
        for i in 0..hits.len() {
            let at = out.len();
            if kept > 0 {
                out.push(b',');
            }
            if write_hit(out, ans, &hits.hit(i), plan, list) {
                kept += 1;
            } else {
                out.truncate(at);
            }
        }
        // A partly kept list that ends up empty is dropped, as filtering drops an emptied
        // array; a wholly kept one stays, even empty.
        if kept == 0 && list == Sel::Partial {
            out.truncate(mark.0);
            obj.empty = mark.1;
        } else {
            out.push(b']');
        }
    }
    out.push(b'}');
    !obj.empty || plan.hits == Sel::All
}

/// Writes one hit; false when the filter kept nothing of it.
fn write_hit(
    out: &mut Vec<u8>,
    ans: &Answer<'_>,
    h: &HitRef<'_>,
    plan: &Plan<'_>,
    list: Sel,
) -> bool {
    let sel = |i: usize| Plan::under(list, plan.hit[i]);
    let path = |i: usize| ["hits", "hits", HIT_FIELDS[i]];
    // A filtered answer is parsed and written again, which re-serializes `_source`.
    let normalize = plan.filter.is_some();
    let mut obj = Obj::open(out);
    obj.field(
        out,
        plan,
        sel(0),
        &path(0),
        |o| push_str(o, h.index),
        || json!(h.index),
    );
    obj.field(
        out,
        plan,
        sel(1),
        &path(1),
        |o| push_str(o, h.id),
        || json!(h.id),
    );
    if ans.version {
        obj.field(
            out,
            plan,
            sel(2),
            &path(2),
            |o| push_num(o, h.doc.version),
            || json!(h.doc.version),
        );
    }
    if ans.seq_no_primary_term {
        obj.field(
            out,
            plan,
            sel(3),
            &path(3),
            |o| push_num(o, h.doc.seq_no),
            || json!(h.doc.seq_no),
        );
        obj.field(
            out,
            plan,
            sel(4),
            &path(4),
            |o| push_num(o, h.doc.primary_term),
            || json!(h.doc.primary_term),
        );
    }
    let (score, score_value) = if ans.has_sort {
        ("null", Value::Null)
    } else {
        ("1.0", json!(1.0))
    };
    obj.field(
        out,
        plan,
        sel(5),
        &path(5),
        |o| push_raw(o, score),
        || score_value,
    );
    if sel(6) != Sel::None {
        if ans.source.is_all() && !normalize {
            obj.key(out, "_source");
            out.extend_from_slice(&h.doc.source);
        } else if let Some(src) = source_value(ans.source, &h.doc.source) {
            obj.field(
                out,
                plan,
                sel(6),
                &path(6),
                |o| push_value(o, &src),
                || src.clone(),
            );
        }
    }
    if ans.keys_shown {
        obj.field(
            out,
            plan,
            sel(7),
            &path(7),
            |o| h.sort.write(o, h.index, h.id),
            || h.sort.value(h.index, h.id),
        );
    }
    out.push(b'}');
    !obj.empty
}

/// The `_source` a hit shows, parsed; `None` when it shows none.
fn source_value(filter: &SourceFilter, raw: &[u8]) -> Option<Value> {
    if filter.is_all() {
        return Some(serde_json::from_slice(raw).unwrap_or(Value::Null));
    }
    filter.apply(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    struct Owned(Vec<(String, String, Doc, Vec<Value>)>);

    impl HitList for Owned {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn hit(&self, i: usize) -> HitRef<'_> {
            let (index, id, doc, sort) = &self.0[i];
            HitRef {
                index,
                id,
                doc,
                sort: SortRef::Values(sort),
            }
        }
    }

    fn doc(source: &str, seq_no: u64) -> Doc {
        Doc {
            source: Bytes::from(source.to_owned()),
            seq_no,
            primary_term: 1,
            version: seq_no + 1,
        }
    }

    fn hits() -> Owned {
        Owned(vec![
            (
                "idx".into(),
                "a\"1".into(),
                // Not how serde_json writes it: a filtered answer re-serializes it.
                doc(
                    r#"{ "id" : "a", "n": 1.50, "o": {"p": [1, {"q": 2}]}, "_timestamp": "t"}"#,
                    0,
                ),
                vec![json!(0)],
            ),
            (
                "idx".into(),
                "b".into(),
                doc(r#"{"id":"b","o":{}}"#, 1),
                vec![json!(1)],
            ),
            ("other".into(), "c".into(), doc(r#"{}"#, 2), vec![json!(2)]),
        ])
    }

    const FILTERS: &[&str] = &[
        "pit_id,hits.hits._id,hits.hits.sort",
        "pit_id,hits.hits._id,hits.hits._source,hits.hits.sort",
        "hits.hits._source.o",
        "hits.hits._source.o.p.q",
        "hits.hits._source.nothing",
        "hits.hits.nothing",
        "hits",
        "hits.hits",
        "hits.total",
        "hits.total.value",
        "hits.*",
        "**.sort",
        "**._id",
        "*",
        "-hits.hits._source",
        "-hits.hits",
        "-hits",
        "-took,-_shards.total",
        "hits.hits._s*,-hits.hits._source.o",
        "hits,-hits.total.relation",
        "hits,-hits.hits.*",
        "_shards.failed,took,timed_out",
        "_scroll_id,pit_id",
        "nothing",
        "hits.max_score,hits.hits._score",
        "hits.hits._version,hits.hits._seq_no,hits.hits._primary_term",
        "hits.hits.sort.x",
    ];

    /// Filtering while writing gives, byte for byte, what filtering the written answer gives.
    #[test]
    fn filtering_while_writing_equals_filtering_the_answer() {
        let all = hits();
        let none = Owned(Vec::new());
        let sources = [
            SourceFilter::All,
            SourceFilter::Nothing,
            SourceFilter::Fields {
                includes: vec!["id".into(), "_timestamp".into()],
                excludes: Vec::new(),
            },
        ];
        let totals = [
            TotalOut::Off,
            TotalOut::Int(3),
            TotalOut::Object {
                value: 3,
                relation: "eq",
            },
        ];
        let mut checked = 0;
        for list in [&all as &dyn HitList, &none] {
            for source in &sources {
                for total in totals {
                    for flags in 0..4u8 {
                        let ans = Answer {
                            took: 7,
                            pit_id: (flags & 1 == 0).then_some("pit\"id"),
                            scroll_id: (flags & 1 == 1).then_some("scroll"),
                            total,
                            has_sort: flags & 2 == 0,
                            keys_shown: flags & 2 == 0,
                            version: flags & 1 == 0,
                            seq_no_primary_term: flags & 2 == 2,
                            source,
                        };
                        let plain = write_answer(&ans, list, None);
                        let parsed: Value = serde_json::from_slice(&plain).unwrap();
                        for raw in FILTERS {
                            let fp = FilterPath::parse(Some(raw)).unwrap();
                            let want = serde_json::to_vec(&fp.apply(parsed.clone())).unwrap();
                            let got = write_answer(&ans, list, Some(&fp));
                            assert_eq!(
                                String::from_utf8_lossy(&got),
                                String::from_utf8_lossy(&want),
                                "filter_path={raw}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 3 * 3 * 4 * FILTERS.len());
    }

    /// Natural sort values written from a position equal the values `sort_value` gives.
    #[test]
    fn natural_sort_values_match_sort_value() {
        let keys = vec![
            SortKey::new("_score", true),
            SortKey::new("_id", false),
            SortKey::new("_index", false),
            SortKey::new("_shard_doc", false),
            SortKey::new("_doc", false),
        ];
        let sort = SortRef::Natural {
            keys: &keys,
            rank: 41,
        };
        let mut out = Vec::new();
        sort.write(&mut out, "ix", "i\"d");
        let want = serde_json::to_vec(&sort.value("ix", "i\"d")).unwrap();
        assert_eq!(out, want);
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!([1.0, "i\"d", "ix", 41, 41])
        );
    }
}
