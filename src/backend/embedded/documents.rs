//! Indices and documents of the embedded store, outside of bulk: create with a mapping,
//! existence, count, get, delete, and the keyset-paged id scan a full sync uses to find
//! stale documents. Index names follow Elasticsearch's rules.

use super::mapping::IndexMapping;
use super::{EmbeddedBackend, db_err, from_json, to_json};
use crate::backend::{BackendError, IdPage, IdScan, Result};
use crate::model::Timestamp;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// Elasticsearch's limit on an index name, in bytes.
const MAX_INDEX_NAME_BYTES: usize = 255;

/// Checks an index name the way Elasticsearch does; the error is its reason text.
pub(crate) fn validate_index_name(name: &str) -> std::result::Result<(), String> {
    const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];
    let invalid = |why: &str| Err(format!("Invalid index name [{name}], {why}"));
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name != name.to_lowercase() {
        return invalid("must be lowercase");
    }
    if name.contains(FORBIDDEN) {
        return invalid(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]",
        );
    }
    if name.contains('#') {
        return invalid("must not contain '#'");
    }
    if name.contains(':') {
        return invalid("must not contain ':'");
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.len() > MAX_INDEX_NAME_BYTES {
        return invalid(&format!(
            "index name is too long, ({} > {MAX_INDEX_NAME_BYTES})",
            name.len()
        ));
    }
    Ok(())
}

fn index_not_found(index: &str) -> BackendError {
    BackendError::NotFound(format!("no such index [{index}]"))
}

pub(super) fn index_exists(conn: &Connection, index: &str) -> Result<bool> {
    conn.query_row("SELECT 1 FROM indices WHERE name = ?1", [index], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(db_err)
}

/// 404 `no such index` when the index does not exist.
pub(super) fn require_index(conn: &Connection, index: &str) -> Result<()> {
    if index_exists(conn, index)? {
        Ok(())
    } else {
        Err(index_not_found(index))
    }
}

/// The stored mapping of an index, or `None` when the index does not exist.
pub(super) fn load_mapping(conn: &Connection, index: &str) -> Result<Option<IndexMapping>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT mappings FROM indices WHERE name = ?1",
            [index],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_err)?;
    let Some(text) = text else {
        return Ok(None);
    };
    let raw: Value = from_json(&text, &format!("mapping of index '{index}'"))?;
    IndexMapping::compile(&raw).map(Some).map_err(|e| {
        BackendError::Other(format!(
            "the stored mapping of index '{index}' is not usable: {e}"
        ))
    })
}

/// Creates an index with `mapping`; the caller checked it does not exist.
pub(super) fn create_index(conn: &Connection, index: &str, mapping: &IndexMapping) -> Result<()> {
    conn.execute(
        "INSERT INTO indices (name, mappings, created_at) VALUES (?1, ?2, ?3)",
        params![
            index,
            to_json(&mapping.to_value())?,
            Timestamp::now().to_iso()
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn store_mapping(conn: &Connection, index: &str, mapping: &IndexMapping) -> Result<()> {
    conn.execute(
        "UPDATE indices SET mappings = ?2 WHERE name = ?1",
        params![index, to_json(&mapping.to_value())?],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Creates the index with these mappings when it does not exist; an existing index keeps its
/// mapping. Returns whether it created the index.
pub(super) fn ensure_index(
    conn: &Connection,
    index: &str,
    mappings: Option<&Value>,
) -> Result<bool> {
    validate_index_name(index).map_err(|reason| BackendError::Rejected {
        status: 400,
        kind: "invalid_index_name_exception".into(),
        reason,
    })?;
    if index_exists(conn, index)? {
        return Ok(false);
    }
    let mapping = match mappings {
        Some(raw) => IndexMapping::compile(raw).map_err(|reason| BackendError::Rejected {
            status: 400,
            kind: "mapper_parsing_exception".into(),
            reason: format!("Failed to parse mapping of index [{index}]: {reason}"),
        })?,
        None => IndexMapping::empty(),
    };
    create_index(conn, index, &mapping)?;
    Ok(true)
}

/// The mapping an index has now, dynamic additions included.
pub(super) fn mapping_of(conn: &Connection, index: &str) -> Result<Value> {
    load_mapping(conn, index)?
        .map(|m| m.to_value())
        .ok_or_else(|| index_not_found(index))
}

pub(super) fn count(conn: &Connection, index: &str) -> Result<u64> {
    require_index(conn, index)?;
    let count: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM documents WHERE idx = ?1",
            [index],
            |row| row.get(0),
        )
        .map_err(db_err)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The `_source` of a document; `None` when it (or its index) does not exist.
pub(super) fn get(conn: &Connection, index: &str, id: &str) -> Result<Option<Value>> {
    let source: Option<String> = conn
        .query_row(
            "SELECT source FROM documents WHERE idx = ?1 AND id = ?2",
            params![index, id],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_err)?;
    source
        .map(|s| from_json(&s, &format!("document '{id}' of index '{index}'")))
        .transpose()
}

/// Deletes a document; returns whether it existed.
pub(super) fn delete(conn: &Connection, index: &str, id: &str) -> Result<bool> {
    let removed = conn
        .execute(
            "DELETE FROM documents WHERE idx = ?1 AND id = ?2",
            params![index, id],
        )
        .map_err(db_err)?;
    Ok(removed > 0)
}

/// One page of ids after `after`, in id order.
fn page_after(conn: &Connection, index: &str, after: Option<&str>, size: usize) -> Result<IdPage> {
    let limit = i64::try_from(size).unwrap_or(i64::MAX);
    let mut statement = conn
        .prepare_cached(
            "SELECT id, ts FROM documents WHERE idx = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(db_err)?;
    // Every id sorts after the empty string, so "" starts the scan.
    let mut rows = statement
        .query(params![index, after.unwrap_or(""), limit])
        .map_err(db_err)?;
    let mut page = IdPage::with_capacity(size.min(4096), 0);
    // Read in place: each row's text is copied once, into the page.
    while let Some(row) = rows.next().map_err(db_err)? {
        let id = text_column(row, 0, || format!("an id in index '{index}'"))?.ok_or_else(|| {
            BackendError::Other(format!("a document in index '{index}' has no id"))
        })?;
        let timestamp = text_column(row, 1, || {
            format!("the _timestamp of document '{id}' in index '{index}'")
        })?;
        page.push(id, None, timestamp);
    }
    Ok(page)
}

/// A text (or NULL) column of `row`, borrowed from it; an error names `what` it holds.
fn text_column<'r>(
    row: &'r rusqlite::Row<'_>,
    column: usize,
    what: impl FnOnce() -> String,
) -> Result<Option<&'r str>> {
    match row.get_ref(column).map_err(db_err)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        rusqlite::types::ValueRef::Text(text) => std::str::from_utf8(text).map(Some).map_err(|e| {
            BackendError::Other(format!(
                "{} is not UTF-8 (at byte {})",
                what(),
                e.valid_up_to()
            ))
        }),
        other => Err(BackendError::Other(format!(
            "{} is stored as {}, not text",
            what(),
            other.data_type().to_string().to_lowercase()
        ))),
    }
}

/// Keyset pagination over an index's ids (`id > last`): stable while documents are written,
/// and it never holds more than one page.
pub(super) struct EmbeddedIdScan {
    backend: EmbeddedBackend,
    index: String,
    page_size: usize,
    last: Option<String>,
    done: bool,
}

impl EmbeddedIdScan {
    pub(super) fn new(backend: EmbeddedBackend, index: String, page_size: usize) -> Self {
        Self {
            backend,
            index,
            page_size: page_size.max(1),
            last: None,
            done: false,
        }
    }
}

#[async_trait]
impl IdScan for EmbeddedIdScan {
    async fn next_page(&mut self) -> Result<Option<IdPage>> {
        if self.done {
            return Ok(None);
        }
        let (index, last, size) = (self.index.clone(), self.last.clone(), self.page_size);
        let page = self
            .backend
            .read(move |conn| page_after(conn, &index, last.as_deref(), size))
            .await?;
        if page.len() < self.page_size {
            self.done = true;
        }
        match page.last() {
            Some(doc) => self.last = Some(doc.id.to_string()),
            None => return Ok(None),
        }
        Ok(Some(page))
    }

    async fn close(&mut self) -> Result<()> {
        self.done = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{page_after, validate_index_name};
    use rusqlite::Connection;

    /// A `documents` table as the schema makes it, holding what a hand-edited or damaged
    /// file could: rows given as SQL values.
    fn table_with(rows: &[&str]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(super::super::schema::SCHEMA_V1).unwrap();
        for row in rows {
            conn.execute(
                &format!("INSERT INTO documents (idx, id, ts, source) VALUES ('i', {row}, '{{}}')"),
                [],
            )
            .unwrap();
        }
        conn
    }

    fn page_error(rows: &[&str]) -> String {
        match page_after(&table_with(rows), "i", None, 10) {
            Ok(page) => panic!("expected an error, read {} ids", page.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_id_page_reads_text_ids_and_timestamps_and_a_null_timestamp() {
        let page = page_after(
            &table_with(&["'a', '2024-01-01T00:00:00Z'", "'b', NULL"]),
            "i",
            None,
            10,
        )
        .unwrap();
        let metas = page.to_metas();
        assert_eq!(metas.len(), 2);
        assert_eq!(metas[0].id, "a");
        assert_eq!(metas[0].timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(metas[1].id, "b");
        assert_eq!(metas[1].timestamp, None);
    }

    #[test]
    fn a_stored_id_or_timestamp_that_is_not_text_is_an_error_not_a_panic() {
        // SQLite keeps a blob as a blob even in a TEXT column.
        let blob_id = page_error(&["x'6964', NULL"]);
        assert_eq!(blob_id, "an id in index 'i' is stored as blob, not text");
        let blob_ts = page_error(&["'a', x'7473'"]);
        assert_eq!(
            blob_ts,
            "the _timestamp of document 'a' in index 'i' is stored as blob, not text"
        );
        // Text that is not UTF-8 (a cast keeps the bytes as they are).
        let bad_text = page_error(&["CAST(x'ff' AS TEXT), NULL"]);
        assert_eq!(bad_text, "an id in index 'i' is not UTF-8 (at byte 0)");
    }

    #[test]
    fn index_names_follow_elasticsearch_rules() {
        for good in ["demo-docs", "search-x.y", ".search-acl-filter-a", "a_b"] {
            assert!(validate_index_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("Demo", "lowercase"),
            ("a b", "characters"),
            ("a#b", "'#'"),
            ("_x", "must not start"),
            ("..", "'.' or '..'"),
            ("", "empty"),
        ] {
            let err = validate_index_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(
            validate_index_name(&"a".repeat(256))
                .unwrap_err()
                .contains("too long")
        );
    }
}
