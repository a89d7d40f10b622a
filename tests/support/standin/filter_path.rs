//! `filter_path`, the response filter every Elasticsearch API accepts (`_common.json`): a
//! comma-separated list of dotted paths whose segments may hold `*` wildcards, `**` for any
//! depth, and a leading `-` for an exclusion. Arrays are transparent (a filter applies to each
//! element); what filtering empties is dropped (an object, an array element, the whole answer
//! becomes `{}`). Error answers are never filtered, as in Elasticsearch. `_bulk` asks
//! [`FilterPath::select`] field by field while it writes, so it never re-parses its answer;
//! every other API is filtered here after the fact.

use globset::{Glob, GlobMatcher};
use serde_json::{Map, Value};

enum Seg {
    /// `**`: any number of levels, none included.
    AnyDepth,
    /// `*`: any one key.
    Any,
    /// A name without wildcards (most are: compared, not compiled).
    Literal(String),
    /// A name with `*` inside (`host*`).
    Glob(GlobMatcher),
    /// A pattern the glob engine refused: matches nothing rather than everything.
    Never,
}

impl Seg {
    fn parse(raw: &str) -> Seg {
        match raw {
            "**" => return Seg::AnyDepth,
            "*" => return Seg::Any,
            _ if !raw.contains('*') => return Seg::Literal(raw.to_string()),
            _ => {}
        }
        // Only `*` is special to Elasticsearch; everything else is literal.
        let escaped = globset::escape(raw).replace("[*]", "*");
        match Glob::new(&escaped) {
            Ok(glob) => Seg::Glob(glob.compile_matcher()),
            Err(_) => Seg::Never,
        }
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Seg::AnyDepth | Seg::Any => true,
            Seg::Literal(name) => name == key,
            Seg::Glob(m) => m.is_match(key),
            Seg::Never => false,
        }
    }
}

/// How much of a field a filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sel {
    /// The field and everything under it.
    All,
    /// Nothing of it.
    None,
    /// Some of what is under it: filter its value with [`FilterPath::apply_at`].
    Partial,
}

pub(crate) struct FilterPath {
    include: Vec<Vec<Seg>>,
    exclude: Vec<Vec<Seg>>,
}

/// Where each filter has got to: (filter, next segment).
type States = Vec<(usize, usize)>;

impl FilterPath {
    /// `None` when the parameter is absent or holds no filter.
    pub fn parse(raw: Option<&str>) -> Option<FilterPath> {
        let mut fp = FilterPath {
            include: Vec::new(),
            exclude: Vec::new(),
        };
        for filter in raw?.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (list, path) = match filter.strip_prefix('-') {
                Some(rest) => (&mut fp.exclude, rest),
                None => (&mut fp.include, filter),
            };
            list.push(path.split('.').map(Seg::parse).collect());
        }
        (!fp.include.is_empty() || !fp.exclude.is_empty()).then_some(fp)
    }

    fn start(filters: &[Vec<Seg>]) -> States {
        (0..filters.len()).map(|i| (i, 0)).collect()
    }

    /// Advances `states` over `key`. Returns the new states and whether a filter ended on it.
    fn step(filters: &[Vec<Seg>], states: &[(usize, usize)], key: &str) -> (States, bool) {
        let mut next = Vec::new();
        let mut done = false;
        let mut push = |state: (usize, usize), next: &mut States| {
            // Ended, or only `**` left (which includes everything below).
            let rest = filters[state.0].get(state.1..).unwrap_or_default();
            if rest.iter().all(|s| matches!(s, Seg::AnyDepth)) {
                done = true;
            } else if !next.contains(&state) {
                next.push(state);
            }
        };
        for &(f, pos) in states {
            let segs = &filters[f];
            match segs.get(pos) {
                Some(Seg::AnyDepth) => {
                    // `**` may swallow this key and stay, or match nothing and let the next
                    // segment take the key.
                    push((f, pos), &mut next);
                    if let Some(seg) = segs.get(pos + 1)
                        && seg.matches(key)
                    {
                        push((f, pos + 2), &mut next);
                    }
                }
                Some(seg) if seg.matches(key) => push((f, pos + 1), &mut next),
                _ => {}
            }
        }
        (next, done)
    }

    /// Follows `path` (object keys; array levels are skipped) from the root: the filters'
    /// states below it and whether an inclusion ended on it; `None` when an exclusion did.
    fn descend(&self, path: &[&str]) -> Option<(States, States, bool)> {
        let mut inc = Self::start(&self.include);
        let mut exc = Self::start(&self.exclude);
        let mut included = self.include.is_empty();
        for key in path {
            if !included {
                let (next, done) = Self::step(&self.include, &inc, key);
                inc = next;
                included = done;
            }
            let (next, done) = Self::step(&self.exclude, &exc, key);
            if done {
                return None;
            }
            exc = next;
        }
        Some((inc, exc, included))
    }

    /// What the filter keeps of the field at `path`.
    pub fn select(&self, path: &[&str]) -> Sel {
        match self.descend(path) {
            None => Sel::None,
            Some((_, exc, true)) if exc.is_empty() => Sel::All,
            Some((inc, _, false)) if inc.is_empty() => Sel::None,
            Some(_) => Sel::Partial,
        }
    }

    /// Filters a whole answer.
    pub fn apply(&self, value: Value) -> Value {
        self.apply_at(&[], value)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// Filters the value found at `path`; `None` when nothing of it is kept.
    pub fn apply_at(&self, path: &[&str], value: Value) -> Option<Value> {
        let (inc, exc, included) = self.descend(path)?;
        self.walk(value, &inc, &exc, included)
    }

    fn walk(
        &self,
        value: Value,
        inc: &[(usize, usize)],
        exc: &[(usize, usize)],
        included: bool,
    ) -> Option<Value> {
        if included && exc.is_empty() {
            return Some(value);
        }
        if !included && inc.is_empty() {
            return None;
        }
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, child) in map {
                    let (child_inc, child_included) = if included {
                        (Vec::new(), true)
                    } else {
                        Self::step(&self.include, inc, &key)
                    };
                    let (child_exc, excluded) = Self::step(&self.exclude, exc, &key);
                    if excluded {
                        continue;
                    }
                    if let Some(kept) = self.walk(child, &child_inc, &child_exc, child_included) {
                        out.insert(key, kept);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Array(items) => {
                let kept: Vec<Value> = items
                    .into_iter()
                    .filter_map(|item| self.walk(item, inc, exc, included))
                    .collect();
                (!kept.is_empty()).then_some(Value::Array(kept))
            }
            // A scalar is kept only when an inclusion ended at it (or above it).
            scalar => included.then_some(scalar),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(f: &str, v: Value) -> Value {
        FilterPath::parse(Some(f)).unwrap().apply(v)
    }

    #[test]
    fn the_documented_examples() {
        let bulk = json!({"took": 3, "errors": true, "items": [
            {"update": {"_index": "index1", "status": 404, "error": {"type": "document_missing_exception", "reason": "[5]: document missing"}}},
            {"create": {"_index": "index1", "_id": "7", "result": "created", "status": 201}}
        ]});
        assert_eq!(
            filter("items.*.error", bulk.clone()),
            json!({"items": [{"update": {"error": {"type": "document_missing_exception", "reason": "[5]: document missing"}}}]})
        );
        assert_eq!(
            filter("items.*.status,items.*.error.type,errors", bulk.clone()),
            json!({"errors": true, "items": [
                {"update": {"status": 404, "error": {"type": "document_missing_exception"}}},
                {"create": {"status": 201}}
            ]})
        );
        assert_eq!(
            filter("-items.*._index,-took", bulk.clone())["items"][1],
            json!({"create": {"_id": "7", "result": "created", "status": 201}})
        );
        assert_eq!(
            filter("**.reason", bulk),
            json!({"items": [{"update": {"error": {"reason": "[5]: document missing"}}}]})
        );
        assert_eq!(filter("nothing", json!({"a": 1})), json!({}));
        assert_eq!(filter("a*", json!({"ab": 1, "b": 2})), json!({"ab": 1}));
        assert_eq!(
            filter("*b", json!({"ab": 1, "b": 2, "ba": 3})),
            json!({"ab": 1, "b": 2})
        );
        assert_eq!(
            filter("a.b?", json!({"a": {"b?": 1, "bc": 2}})),
            json!({"a": {"b?": 1}})
        );
        assert_eq!(
            filter("a.**", json!({"a": {"b": {"c": 1}}, "d": 2})),
            json!({"a": {"b": {"c": 1}}})
        );
    }

    #[test]
    fn select_agrees_with_apply() {
        let f = FilterPath::parse(Some("errors,items.*.status,items.*.error.type")).unwrap();
        assert_eq!(f.select(&["errors"]), Sel::All);
        assert_eq!(f.select(&["took"]), Sel::None);
        assert_eq!(f.select(&["items"]), Sel::Partial);
        assert_eq!(f.select(&["items", "index", "status"]), Sel::All);
        assert_eq!(f.select(&["items", "index", "_id"]), Sel::None);
        assert_eq!(f.select(&["items", "index", "error"]), Sel::Partial);
        assert_eq!(
            f.apply_at(
                &["items", "index", "error"],
                json!({"type": "t", "reason": "r"})
            ),
            Some(json!({"type": "t"}))
        );
        assert!(FilterPath::parse(Some(" , ")).is_none());
        assert!(FilterPath::parse(None).is_none());
    }
}
