//! Per-table progress of a database sync, read from what its source reports in the job's
//! `metadata`: `tables` (one line per table or advanced rule: `status`, `rows`, `seconds`,
//! `rows_per_sec`, `note`), `skipped_tables` and `failed_tables` (name → reason). This is the
//! one place that map is parsed: the engine's progress snapshots, `sync --json` and the
//! console all read [`TableProgress`]. Tolerant of what it does not know (another worker's
//! version may write more), never failing on it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Where one table's read stands. Read from any JSON value: a word this version does not
/// know (a newer worker's `/status`) is taken as still going, never a parse failure that
/// would make an attached console see its worker as unreachable.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case", from = "Value")]
pub enum TableStatus {
    #[default]
    Reading,
    Done,
    /// Not read, on purpose (no primary key): Python's warning, as Elastic's service skips it.
    Skipped,
    /// The server refused it (missing, no privilege, a bad query), or the sync failed in it.
    Failed,
    /// The sync ended (canceled, suspended, failed elsewhere) while it was being read: not
    /// a word sources write, but what `reading` means once the job is over.
    Stopped,
}

impl TableStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reading => "reading",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    /// A status word as a source writes it; `None` for a word this version does not know.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "reading" => Some(Self::Reading),
            "done" => Some(Self::Done),
            "skipped" => Some(Self::Skipped),
            "failed" => Some(Self::Failed),
            "stopped" => Some(Self::Stopped),
            _ => None,
        }
    }

    /// Which tables a short list keeps first: those being read, then the ones that need
    /// the operator (failed, stopped, skipped), then the finished.
    fn rank(&self) -> u8 {
        match self {
            Self::Reading => 0,
            Self::Failed => 1,
            Self::Stopped => 2,
            Self::Skipped => 3,
            Self::Done => 4,
        }
    }
}

impl From<Value> for TableStatus {
    fn from(value: Value) -> Self {
        value
            .as_str()
            .and_then(TableStatus::parse)
            .unwrap_or_default()
    }
}

impl std::fmt::Display for TableStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One table (or advanced rule, named by its tables) of a database sync. Every field has a
/// default when read, for the same reason as [`TableStatus`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableProgress {
    pub name: String,
    pub status: TableStatus,
    /// Rows read so far.
    pub rows: u64,
    pub rows_per_sec: f64,
    /// Time spent on it so far.
    pub seconds: f64,
    /// The source's short word on it (`no primary key`, `advanced rule`), when it differs
    /// from `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why it was skipped or failed, whole (masked by the source, as the metadata holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TableProgress {
    /// The tables of a job's `metadata`, in the order the source started them; tables only
    /// named in `skipped_tables` or `failed_tables` (an advanced rule without keys, a table
    /// the sync failed in) follow. Empty when the source reports no tables.
    pub fn from_metadata(metadata: &Map<String, Value>) -> Vec<TableProgress> {
        // Name → reason, looked up once per table: a schema of thousands of tables, half of
        // them skipped, must not cost tables × skipped comparisons per snapshot.
        let reasons = |list: &str| -> Vec<(String, String)> {
            match metadata.get(list) {
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(name, why)| (name.clone(), text_of(why)))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let failed = reasons("failed_tables");
        let skipped = reasons("skipped_tables");
        let index = |list: &[(String, String)]| -> HashMap<String, String> {
            list.iter().cloned().collect()
        };
        let (failed_by_name, skipped_by_name) = (index(&failed), index(&skipped));
        let find = |by_name: &HashMap<String, String>, name: &str| by_name.get(name).cloned();
        let mut out: Vec<TableProgress> = match metadata.get("tables") {
            Some(Value::Object(lines)) => lines
                .iter()
                .map(|(name, line)| {
                    let mut t = TableProgress::from_line(name, line);
                    // The lists have the last word: a sync that failed inside a table
                    // leaves its line at `reading` and names it in `failed_tables`.
                    if let Some(why) = find(&failed_by_name, name) {
                        t.status = TableStatus::Failed;
                        t.reason = Some(why);
                    } else if let Some(why) = find(&skipped_by_name, name) {
                        t.status = TableStatus::Skipped;
                        t.reason = Some(why);
                    } else if matches!(t.status, TableStatus::Failed | TableStatus::Skipped) {
                        t.reason = t.note.take();
                    }
                    if t.note.is_some() && t.note == t.reason {
                        t.note = None;
                    }
                    t
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut listed: HashSet<String> = out.iter().map(|t| t.name.clone()).collect();
        for (list, status) in [
            (failed, TableStatus::Failed),
            (skipped, TableStatus::Skipped),
        ] {
            for (name, why) in list {
                if !listed.insert(name.clone()) {
                    continue;
                }
                out.push(TableProgress {
                    name,
                    status,
                    rows: 0,
                    rows_per_sec: 0.0,
                    seconds: 0.0,
                    note: None,
                    reason: Some(why),
                });
            }
        }
        out
    }

    /// The tables of a job read from the cluster: as [`TableProgress::from_metadata`],
    /// with those still `reading` in a job that no longer runs marked `stopped`.
    pub fn of_job(job: &crate::model::SyncJob) -> Vec<TableProgress> {
        let mut tables = Self::from_metadata(&job.metadata);
        if job.status.is_terminal() || job.status == crate::model::JobStatus::Suspended {
            Self::stop_reading(&mut tables);
        }
        tables
    }

    /// Marks the tables still being read `stopped`: their sync is over.
    pub fn stop_reading(tables: &mut [TableProgress]) {
        for t in tables
            .iter_mut()
            .filter(|t| t.status == TableStatus::Reading)
        {
            t.status = TableStatus::Stopped;
        }
    }

    fn from_line(name: &str, line: &Value) -> TableProgress {
        let number = |key: &str| line.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        TableProgress {
            name: name.to_string(),
            // A word this version does not know is taken as still going: the lists say
            // when a table ended badly, and the job's own status when the sync ended.
            status: line
                .get("status")
                .and_then(Value::as_str)
                .and_then(TableStatus::parse)
                .unwrap_or(TableStatus::Reading),
            rows: line.get("rows").and_then(Value::as_u64).unwrap_or(0),
            rows_per_sec: number("rows_per_sec").max(0.0),
            seconds: number("seconds").max(0.0),
            note: line.get("note").map(text_of).filter(|n| !n.is_empty()),
            reason: None,
        }
    }

    /// What one line of a short list says beside the numbers: the short note, else the
    /// reason.
    pub fn remark(&self) -> Option<&str> {
        self.note.as_deref().or(self.reason.as_deref())
    }

    /// At most `max` of `tables` for a short list (a panel, a progress line): every one
    /// being read, then the failed, the skipped and the finished, the latest of each first;
    /// in their original order. Also how many were left out.
    pub fn pick(tables: &[TableProgress], max: usize) -> (Vec<&TableProgress>, usize) {
        let mut order: Vec<usize> = (0..tables.len()).collect();
        order.sort_by_key(|&i| (tables[i].status.rank(), std::cmp::Reverse(i)));
        order.truncate(max);
        order.sort_unstable();
        let left_out = tables.len() - order.len();
        (order.into_iter().map(|i| &tables[i]).collect(), left_out)
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How many tables are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    pub reading: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub stopped: usize,
}

impl TableCounts {
    pub fn of(tables: &[TableProgress]) -> Self {
        let mut c = Self::default();
        for t in tables {
            match t.status {
                TableStatus::Reading => c.reading += 1,
                TableStatus::Done => c.done += 1,
                TableStatus::Skipped => c.skipped += 1,
                TableStatus::Failed => c.failed += 1,
                TableStatus::Stopped => c.stopped += 1,
            }
        }
        c
    }

    /// `3 done · 1 reading · 1 failed`, leaving out the states no table is in.
    pub fn summary(&self) -> String {
        [
            (self.done, "done"),
            (self.reading, "reading"),
            (self.failed, "failed"),
            (self.stopped, "stopped"),
            (self.skipped, "skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_newer_workers_tables_still_parse() {
        // What an attached console reads from a worker of a later version: a status word
        // this one does not know, fields missing, a field it has never heard of.
        let tables: Vec<TableProgress> = serde_json::from_value(json!([
            {"name": "orders", "status": "paused", "rows": 10, "shard": 3},
            {"name": "items", "status": "done"},
            {"name": "odd", "status": 7, "rows_per_sec": 1.5}
        ]))
        .expect("tolerant");
        assert_eq!(tables.len(), 3);
        assert_eq!(tables[0].status, TableStatus::Reading);
        assert_eq!(tables[0].rows, 10);
        assert_eq!(tables[1].status, TableStatus::Done);
        assert_eq!((tables[1].rows, tables[1].seconds), (0, 0.0));
        assert_eq!(tables[2].status, TableStatus::Reading);
        // And what this version writes reads back the same.
        let again: Vec<TableProgress> =
            serde_json::from_value(serde_json::to_value(&tables).unwrap()).unwrap();
        assert_eq!(again, tables);
    }

    #[test]
    fn lines_keep_their_order_and_the_lists_give_reasons() {
        let m = metadata(json!({
            "commit_timestamps": "on",
            "tables": {
                "orders": {"status": "done", "rows": 2500, "seconds": 0.5, "rows_per_sec": 5000.0},
                "loose": {"status": "skipped", "rows": 0, "seconds": 0.01, "rows_per_sec": 0.0, "note": "no primary key"},
                "locked": {"status": "failed", "rows": 0, "seconds": 0.02, "rows_per_sec": 0.0, "note": "permission denied for table locked"},
                "big": {"status": "reading", "rows": 1200, "seconds": 2.0, "rows_per_sec": 600.0},
            },
            "skipped_tables": {"loose": "Skipping table 'loose' from database 'db' since no primary key is associated with it."},
            "failed_tables": {"locked": "permission denied for table locked"},
        }));
        let t = TableProgress::from_metadata(&m);
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["orders", "loose", "locked", "big"]);
        assert_eq!(t[0].status, TableStatus::Done);
        assert_eq!(
            (t[0].rows, t[0].rows_per_sec, t[0].seconds),
            (2500, 5000.0, 0.5)
        );
        assert_eq!(t[0].remark(), None);
        assert_eq!(t[1].status, TableStatus::Skipped);
        assert_eq!(t[1].note.as_deref(), Some("no primary key"));
        assert!(
            t[1].reason
                .as_deref()
                .unwrap()
                .starts_with("Skipping table 'loose'")
        );
        assert_eq!(
            t[1].remark(),
            Some("no primary key"),
            "the short word in lists"
        );
        assert_eq!(t[2].status, TableStatus::Failed);
        assert_eq!(t[2].note, None, "the same text is not said twice");
        assert_eq!(t[2].remark(), Some("permission denied for table locked"));
        assert_eq!(t[3].status, TableStatus::Reading);
        assert_eq!(
            TableCounts::of(&t).summary(),
            "1 done · 1 reading · 1 failed · 1 skipped"
        );
    }

    #[test]
    fn list_only_tables_and_a_sync_that_failed_inside_a_table_are_shown() {
        let m = metadata(json!({
            "tables": {"a": {"status": "reading", "rows": 7, "seconds": 1, "rows_per_sec": 7}},
            "failed_tables": {"a": "connection reset by peer"},
            "skipped_tables": {"x, y": "Skipping tables x, y from database db since no primary key is associated with them."},
        }));
        let t = TableProgress::from_metadata(&m);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[0].status,
            TableStatus::Failed,
            "the list has the last word"
        );
        assert_eq!(t[0].rows, 7);
        assert_eq!(t[0].reason.as_deref(), Some("connection reset by peer"));
        assert_eq!(
            (t[1].name.as_str(), t[1].status),
            ("x, y", TableStatus::Skipped)
        );
    }

    #[test]
    fn a_job_that_no_longer_runs_has_no_table_reading() {
        let mut job: crate::model::SyncJob = serde_json::from_value(json!({
            "id": "j", "status": "in_progress", "connector": {"id": "c"},
            "metadata": {"tables": {
                "a": {"status": "done", "rows": 3, "seconds": 1, "rows_per_sec": 3},
                "b": {"status": "reading", "rows": 7, "seconds": 1, "rows_per_sec": 7},
            }},
        }))
        .unwrap();
        let statuses = |job: &crate::model::SyncJob| -> Vec<TableStatus> {
            TableProgress::of_job(job)
                .iter()
                .map(|t| t.status)
                .collect()
        };
        assert_eq!(statuses(&job), [TableStatus::Done, TableStatus::Reading]);
        for ended in [
            crate::model::JobStatus::Canceled,
            crate::model::JobStatus::Error,
            crate::model::JobStatus::Suspended,
        ] {
            job.status = ended;
            assert_eq!(statuses(&job), [TableStatus::Done, TableStatus::Stopped]);
        }
        let counts = TableCounts::of(&TableProgress::of_job(&job));
        assert_eq!(counts.summary(), "1 done · 1 stopped");
    }

    #[test]
    fn nothing_known_is_nothing_and_odd_values_do_not_fail() {
        assert!(TableProgress::from_metadata(&Map::new()).is_empty());
        assert!(TableProgress::from_metadata(&metadata(json!({"tables": "x"}))).is_empty());
        let m = metadata(json!({
            "tables": {"t": {"status": "paused-by-a-newer-worker", "rows": -3, "seconds": "x", "note": 5}},
            "failed_tables": ["not", "a", "map"],
        }));
        let t = TableProgress::from_metadata(&m);
        assert_eq!(t[0].status, TableStatus::Reading);
        assert_eq!((t[0].rows, t[0].seconds), (0, 0.0));
        assert_eq!(t[0].note.as_deref(), Some("5"));
    }

    #[test]
    fn a_short_list_keeps_the_reading_and_the_troubled_then_the_latest() {
        let line = |name: &str, status| TableProgress {
            name: name.into(),
            status,
            rows: 1,
            rows_per_sec: 1.0,
            seconds: 1.0,
            note: None,
            reason: None,
        };
        use TableStatus::*;
        let tables = vec![
            line("d1", Done),
            line("f1", Failed),
            line("d2", Done),
            line("s1", Skipped),
            line("d3", Done),
            line("r1", Reading),
        ];
        let (shown, left) = TableProgress::pick(&tables, 4);
        let names: Vec<&str> = shown.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["f1", "s1", "d3", "r1"], "original order kept");
        assert_eq!(left, 2);
        let (all, left) = TableProgress::pick(&tables, 99);
        assert_eq!((all.len(), left), (6, 0));
        assert_eq!(TableProgress::pick(&tables, 0).1, 6);
    }
}
