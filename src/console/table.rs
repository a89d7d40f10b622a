//! The data side of a filterable table: rows as loaded, the fuzzy filter and the rows it
//! keeps, the cursor, and when the data was loaded. Drawing lives in `widgets::table`, which
//! formats only the visible window: nothing here is per frame, and filtering runs once per
//! keystroke or load, not per draw.

use super::sort::{Sort, SortKey, SortValue};
use crate::model::Timestamp;
use std::cell::Cell;

/// What a table needs from a row type.
pub trait TableRow {
    /// A stable id, so the selection survives a refresh.
    fn row_id(&self) -> String;
    /// The text the filter searches.
    fn haystack(&self) -> String;
    /// The value a sort by `key` compares (`Missing` when the row has no such column).
    fn sort_value(&self, _key: SortKey) -> SortValue {
        SortValue::Missing
    }
    /// The id of what the row belongs to (a job's connector, a dead letter's job): a
    /// drill-down scope keeps only the rows of one parent.
    fn parent_id(&self) -> Option<&str> {
        None
    }
}

/// The selected row and the first visible one. The offset is scroll memory the table widget
/// adjusts while drawing (like ratatui's `TableState`), so it lives in a `Cell`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    pub selected: usize,
    pub offset: Cell<usize>,
}

impl Cursor {
    /// The rows `[start, end)` to draw in `height` lines for `len` rows, keeping the
    /// selection in view and the previous offset when possible.
    pub fn window(&self, len: usize, height: usize) -> (usize, usize) {
        if len == 0 || height == 0 {
            return (0, 0);
        }
        let selected = self.selected.min(len - 1);
        let mut offset = self.offset.get().min(len.saturating_sub(1));
        if selected < offset {
            offset = selected;
        } else if selected >= offset + height {
            offset = selected + 1 - height;
        }
        // No empty space at the bottom when rows above could fill it.
        offset = offset.min(len.saturating_sub(height));
        self.offset.set(offset);
        (offset, (offset + height).min(len))
    }

    /// Moves by `delta` within `len` rows; returns whether the selection changed.
    pub fn move_by(&mut self, delta: isize, len: usize) -> bool {
        if len == 0 {
            return false;
        }
        let before = self.selected;
        let target = self.selected as isize + delta;
        self.selected = target.clamp(0, len as isize - 1) as usize;
        self.selected != before
    }

    pub fn to_top(&mut self) -> bool {
        let changed = self.selected != 0;
        self.selected = 0;
        changed
    }

    pub fn to_bottom(&mut self, len: usize) -> bool {
        let last = len.saturating_sub(1);
        let changed = self.selected != last;
        self.selected = last;
        changed
    }
}

/// Whether every whitespace-separated term of `needle` (already lower-case) occurs in
/// `haystack` (lower-case) as a subsequence: `dgen` finds `demo-generator`.
pub fn fuzzy_match(needle: &str, haystack: &str) -> bool {
    needle.split_whitespace().all(|term| {
        let mut hay = haystack.chars();
        term.chars().all(|c| hay.any(|h| h == c))
    })
}

/// A view's state as new again (`Default`, for another profile) but for its table's sort,
/// which is the operator's and stays: the one reset every table view shares.
pub fn reset_keeping_sort<S: Default, T: TableRow>(
    state: &mut S,
    table: fn(&mut S) -> &mut TableData<T>,
) {
    let sort = table(state).sort();
    *state = S::default();
    table(state).set_sort(sort);
}

/// Rows, filter and cursor of one table.
#[derive(Debug, Clone)]
pub struct TableData<T> {
    rows: Vec<T>,
    keys: Vec<String>,
    filtered: Vec<usize>,
    filter: String,
    /// The order of the kept rows; `None`: as loaded.
    sort: Option<Sort>,
    /// Only rows whose `parent_id` is this (a drill-down), before the filter.
    scope: Option<String>,
    pub cursor: Cursor,
    /// When the rows were last loaded.
    pub loaded_at: Option<Timestamp>,
    /// The last load's error, cleared by a successful load.
    pub error: Option<String>,
    /// A load is in flight (no second one is sent).
    pub loading: bool,
}

impl<T> Default for TableData<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            keys: Vec::new(),
            filtered: Vec::new(),
            filter: String::new(),
            sort: None,
            scope: None,
            cursor: Cursor::default(),
            loaded_at: None,
            error: None,
            loading: false,
        }
    }
}

impl<T: TableRow> TableData<T> {
    /// Replaces the rows, keeping the selected row (by id) when it is still there.
    pub fn set_rows(&mut self, rows: Vec<T>, at: Timestamp) {
        let keep = self.selected().map(TableRow::row_id);
        self.keys = rows.iter().map(|r| r.haystack().to_lowercase()).collect();
        self.rows = rows;
        self.loaded_at = Some(at);
        self.error = None;
        self.loading = false;
        self.refilter();
        if let Some(id) = keep
            && let Some(pos) = self
                .filtered
                .iter()
                .position(|&i| self.rows[i].row_id() == id)
        {
            self.cursor.selected = pos;
        }
        self.clamp();
    }

    /// Sets the filter text and recomputes the kept rows (once per keystroke).
    pub fn set_filter(&mut self, filter: &str) {
        if self.filter == filter {
            return;
        }
        // The same rows: follow the selected one by its index, no ids needed.
        let keep = self.filtered.get(self.cursor.selected).copied();
        self.filter = filter.to_string();
        self.refilter();
        self.cursor.selected = keep
            .and_then(|raw| self.filtered.iter().position(|&i| i == raw))
            .unwrap_or(0);
        self.clamp();
    }

    fn refilter(&mut self) {
        let needle = self.filter.to_lowercase();
        let scope = self.scope.as_deref();
        self.filtered = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| scope.is_none() || self.rows[*i].parent_id() == scope)
            .filter(|(_, k)| needle.trim().is_empty() || fuzzy_match(&needle, k))
            .map(|(i, _)| i)
            .collect();
        if let Some(sort) = self.sort {
            let mut keyed: Vec<(SortValue, usize)> = self
                .filtered
                .iter()
                .map(|&i| (self.rows[i].sort_value(sort.key), i))
                .collect();
            // Stable: equal values keep the loaded order.
            keyed.sort_by(|a, b| a.0.compare(&b.0, sort.desc));
            self.filtered = keyed.into_iter().map(|(_, i)| i).collect();
        }
    }

    /// Re-applies scope, filter and sort, keeping the selected row (by id) when it stays.
    fn reorder(&mut self) {
        let keep = self.selected().map(TableRow::row_id);
        self.refilter();
        self.cursor.selected = keep
            .and_then(|id| {
                self.filtered
                    .iter()
                    .position(|&i| self.rows[i].row_id() == id)
            })
            .unwrap_or(0);
        self.clamp();
    }

    /// Sorts the kept rows (`None`: as loaded); the selected row stays selected.
    pub fn set_sort(&mut self, sort: Option<Sort>) {
        if self.sort != sort {
            self.sort = sort;
            self.reorder();
        }
    }

    pub fn sort(&self) -> Option<Sort> {
        self.sort
    }

    /// Keeps only the rows of one parent (`None`: all rows).
    pub fn set_scope(&mut self, scope: Option<String>) {
        if self.scope != scope {
            self.scope = scope;
            self.reorder();
        }
    }

    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    fn clamp(&mut self) {
        let len = self.filtered.len();
        self.cursor.selected = self.cursor.selected.min(len.saturating_sub(1));
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// All rows, unfiltered.
    pub fn all(&self) -> &[T] {
        &self.rows
    }

    /// How many rows the filter keeps.
    pub fn len(&self) -> usize {
        self.filtered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filtered.is_empty()
    }

    /// The `i`-th kept row.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.filtered.get(i).and_then(|&r| self.rows.get(r))
    }

    /// The kept rows, in order.
    pub fn visible(&self) -> impl Iterator<Item = &T> {
        self.filtered.iter().filter_map(|&i| self.rows.get(i))
    }

    pub fn selected(&self) -> Option<&T> {
        self.get(self.cursor.selected)
    }

    pub fn move_by(&mut self, delta: isize) -> bool {
        let len = self.len();
        self.cursor.move_by(delta, len)
    }

    pub fn to_top(&mut self) -> bool {
        self.cursor.to_top()
    }

    pub fn to_bottom(&mut self) -> bool {
        let len = self.len();
        self.cursor.to_bottom(len)
    }

    /// Selects the row with this id, if kept.
    pub fn select_id(&mut self, id: &str) -> bool {
        match self
            .filtered
            .iter()
            .position(|&i| self.rows[i].row_id() == id)
        {
            Some(pos) => {
                self.cursor.selected = pos;
                true
            }
            None => false,
        }
    }

    /// Whether the data is older than `max_age_secs` (or never loaded, or failed).
    pub fn is_stale(&self, now: Timestamp, max_age_secs: i64) -> bool {
        self.error.is_some()
            || self
                .loaded_at
                .is_none_or(|t| (now.0 - t.0).num_seconds() > max_age_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct R(&'static str);
    impl TableRow for R {
        fn row_id(&self) -> String {
            self.0.to_string()
        }
        fn haystack(&self) -> String {
            self.0.to_string()
        }
        fn sort_value(&self, _key: SortKey) -> SortValue {
            SortValue::text(self.0)
        }
        fn parent_id(&self) -> Option<&str> {
            self.0.get(..1)
        }
    }

    #[test]
    fn a_reset_empties_the_state_and_keeps_the_sort() {
        #[derive(Default)]
        struct State {
            table: TableData<R>,
            marked: bool,
        }
        let sort = Some(Sort {
            key: SortKey::Name,
            desc: true,
        });
        let mut state = State::default();
        state.table.set_rows(vec![R("beta"), R("alpha")], now());
        state.table.set_sort(sort);
        state.marked = true;
        reset_keeping_sort(&mut state, |s| &mut s.table);
        assert_eq!(state.table.sort(), sort);
        assert!(state.table.all().is_empty() && state.table.loaded_at.is_none());
        assert!(!state.marked);
    }

    #[test]
    fn sort_and_scope_reorder_and_keep_the_selection() {
        let mut t = TableData::default();
        t.set_rows(vec![R("beta"), R("alpha"), R("gamma"), R("alps")], now());
        t.move_by(1);
        assert_eq!(t.selected().unwrap().0, "alpha");
        t.set_sort(Some(Sort {
            key: SortKey::Name,
            desc: false,
        }));
        let order: Vec<_> = t.visible().map(|r| r.0).collect();
        assert_eq!(order, ["alpha", "alps", "beta", "gamma"]);
        assert_eq!(t.selected().unwrap().0, "alpha", "the selection follows");
        t.set_sort(Some(Sort {
            key: SortKey::Name,
            desc: true,
        }));
        assert_eq!(t.get(0).unwrap().0, "gamma");
        // A reload keeps the order; a scope keeps one parent's rows, then the filter applies.
        t.set_rows(vec![R("alps"), R("delta"), R("alpha")], now());
        assert_eq!(t.get(0).unwrap().0, "delta");
        t.set_scope(Some("a".into()));
        assert_eq!(
            t.visible().map(|r| r.0).collect::<Vec<_>>(),
            ["alps", "alpha"]
        );
        t.set_filter("ha");
        assert_eq!(t.visible().map(|r| r.0).collect::<Vec<_>>(), ["alpha"]);
        t.set_scope(None);
        t.set_filter("");
        assert_eq!(t.len(), 3);
    }

    fn now() -> Timestamp {
        Timestamp::parse("2024-05-01T10:00:00Z").unwrap()
    }

    #[test]
    fn fuzzy_terms_are_subsequences() {
        assert!(fuzzy_match("dgen", "demo-generator"));
        assert!(fuzzy_match("gen demo", "demo-generator"));
        assert!(!fuzzy_match("xyz", "demo-generator"));
        assert!(!fuzzy_match("zd", "demo-generator d"));
        assert!(fuzzy_match("", "anything"));
    }

    #[test]
    fn selection_follows_the_row_across_reload_and_filter() {
        let mut t = TableData::default();
        t.set_rows(vec![R("alpha"), R("beta"), R("gamma")], now());
        t.move_by(2);
        assert_eq!(t.selected().unwrap().0, "gamma");
        t.set_rows(vec![R("gamma"), R("alpha")], now());
        assert_eq!(t.selected().unwrap().0, "gamma");
        t.set_filter("lph");
        assert_eq!(t.len(), 1);
        assert_eq!(t.selected().unwrap().0, "alpha");
        t.set_filter("");
        assert_eq!(t.selected().unwrap().0, "alpha");
        t.set_filter("zzz");
        assert!(t.selected().is_none());
        assert!(!t.move_by(1));
    }

    #[test]
    fn window_keeps_the_selection_visible() {
        let mut c = Cursor::default();
        assert_eq!(c.window(100, 10), (0, 10));
        c.selected = 15;
        assert_eq!(c.window(100, 10), (6, 16));
        c.selected = 10;
        assert_eq!(c.window(100, 10), (6, 16));
        c.selected = 2;
        assert_eq!(c.window(100, 10), (2, 12));
        c.selected = 99;
        assert_eq!(c.window(100, 10), (90, 100));
        assert_eq!(c.window(5, 10), (0, 5));
        assert_eq!(c.window(0, 10), (0, 0));
    }
}
