//! Sorting of the console's tables, the k9s way: `:sort COLUMN [desc]` or Shift + the column's
//! letter (again: the other direction). Which columns a view sorts by, their letters and
//! names, and how two values compare. Pure data: the table applies it, the state remembers it
//! per view, the header shows it.

use std::cmp::Ordering;

/// A column a table can be sorted by. Each view offers some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Id,
    Name,
    /// The service type (Connectors) or the job/connector type (Jobs, Kibana).
    Type,
    Index,
    Status,
    /// When it last happened: last sync, start, last failure.
    Age,
    Connector,
    Job,
    Error,
    Worker,
}

/// A sort: the column and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub desc: bool,
}

/// One sortable column of a view: its key and the header it sorts. The keys (Shift + the
/// header's letter) are in the keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortColumn {
    pub key: SortKey,
    pub header: &'static str,
}

const fn col(key: SortKey, header: &'static str) -> SortColumn {
    SortColumn { key, header }
}

pub const CONNECTORS: &[SortColumn] = &[
    col(SortKey::Name, "NAME"),
    col(SortKey::Id, "ID"),
    col(SortKey::Type, "SERVICE"),
    col(SortKey::Index, "INDEX"),
    col(SortKey::Status, "STATUS"),
    col(SortKey::Age, "LAST SYNC"),
];

pub const JOBS: &[SortColumn] = &[
    col(SortKey::Id, "ID"),
    col(SortKey::Connector, "CONNECTOR"),
    col(SortKey::Type, "TYPE"),
    col(SortKey::Status, "STATUS"),
    col(SortKey::Age, "STARTED"),
    col(SortKey::Worker, "WORKER"),
];

pub const DEAD_LETTERS: &[SortColumn] = &[
    col(SortKey::Id, "ID"),
    col(SortKey::Connector, "CONNECTOR"),
    col(SortKey::Job, "JOB"),
    col(SortKey::Error, "ERROR"),
    col(SortKey::Age, "LAST FAILURE"),
];

pub const KIBANA: &[SortColumn] = &[
    col(SortKey::Name, "NAME"),
    col(SortKey::Id, "ID"),
    col(SortKey::Type, "TYPE"),
    col(SortKey::Index, "INDEX"),
];

/// The column of `columns` a typed name means: the header (spaces as `_` or `-` too) or the
/// key's own name, case-insensitive; a unique prefix also works (`:sort stat`).
pub fn find(columns: &[SortColumn], typed: &str) -> Result<SortColumn, String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-', ' '], "");
    let typed = norm(typed);
    let names = |c: &SortColumn| [norm(c.header), norm(&format!("{:?}", c.key))];
    if let Some(c) = columns.iter().find(|c| names(c).contains(&typed)) {
        return Ok(*c);
    }
    let prefixed: Vec<&SortColumn> = columns
        .iter()
        .filter(|c| !typed.is_empty() && names(c).iter().any(|n| n.starts_with(&typed)))
        .collect();
    match prefixed.as_slice() {
        [one] => Ok(**one),
        _ => Err(format!(
            "no column '{typed}' to sort by here (columns: {})",
            columns
                .iter()
                .map(|c| c.header.to_ascii_lowercase().replace(' ', "_"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A value to sort by. Missing values sort last in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Num(i64),
    Text(String),
    Missing,
}

impl SortValue {
    pub fn text(s: impl AsRef<str>) -> Self {
        Self::Text(s.as_ref().to_lowercase())
    }

    pub fn opt_text(s: Option<impl AsRef<str>>) -> Self {
        s.map_or(Self::Missing, Self::text)
    }

    /// A point in time, as milliseconds.
    pub fn time(t: Option<crate::model::Timestamp>) -> Self {
        t.map_or(Self::Missing, |t| Self::Num(t.0.timestamp_millis()))
    }

    /// Compares in the sort's direction, missing values last either way.
    pub fn compare(&self, other: &Self, desc: bool) -> Ordering {
        let ordered = match (self, other) {
            (Self::Missing, Self::Missing) => return Ordering::Equal,
            (Self::Missing, _) => return Ordering::Greater,
            (_, Self::Missing) => return Ordering::Less,
            (Self::Num(a), Self::Num(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Num(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Num(_)) => Ordering::Greater,
        };
        if desc { ordered.reverse() } else { ordered }
    }
}

impl Sort {
    /// `NAME↑`: the header of the sorted column among `columns`, and the direction.
    pub fn label(&self, columns: &[SortColumn]) -> String {
        let header = columns.iter().find(|c| c.key == self.key).map_or_else(
            || format!("{:?}", self.key).to_uppercase(),
            |c| c.header.to_string(),
        );
        format!("{header}{}", if self.desc { "↓" } else { "↑" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_header_key_or_prefix() {
        assert_eq!(find(CONNECTORS, "name").unwrap().key, SortKey::Name);
        assert_eq!(find(CONNECTORS, "last_sync").unwrap().key, SortKey::Age);
        assert_eq!(find(CONNECTORS, "AGE").unwrap().key, SortKey::Age);
        assert_eq!(find(JOBS, "stat").unwrap().key, SortKey::Status);
        let err = find(JOBS, "colour").unwrap_err();
        assert!(err.contains("'colour'") && err.contains("status"), "{err}");
    }

    #[test]
    fn missing_values_sort_last_both_ways() {
        let a = SortValue::Num(1);
        let m = SortValue::Missing;
        assert_eq!(a.compare(&m, false), Ordering::Less);
        assert_eq!(a.compare(&m, true), Ordering::Less);
        assert_eq!(
            SortValue::Num(1).compare(&SortValue::Num(2), true),
            Ordering::Greater
        );
    }
}
