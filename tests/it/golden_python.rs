//! Golden documents: syncdeck's `postgresql` and `mysql` sources against what Elastic's own
//! Python connectors wrote for the same rows. `tests/fixtures/golden/` holds the seed SQL, the
//! advanced rules, and the documents Python produced from them (made by hand with
//! `make_golden.py` there; its README says how and when). Here the same seed goes into a
//! throw-away server, syncdeck syncs it, each document is serialised as the engine sends it
//! (`BatchBuilder`, the bulk body's source line) and compared, document for document and
//! field for field, with Python's. Python is never run here.
//!
//! Left out of the comparison, and why:
//! - the *value* of `_timestamp`: it is the table's last commit time (PostgreSQL) or
//!   `UPDATE_TIME` (MariaDB), different on every run; its form is compared instead (Python's,
//!   or its `iso_utc()` fallback's);
//! - the fields Python cannot write (`python_failed` in the golden file: its serialiser raises
//!   on `timedelta` and asyncpg `Range`, and writes NaN/Infinity as invalid JSON); syncdeck
//!   must still write each field (valid JSON: null for NaN/Infinity, an ISO duration, a
//!   range's text), which tests/it/postgresql.rs and mysql.rs check value for value.

use crate::mariadb_server;
use crate::pg_server;

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use syncdeck::engine::batch::{BatchBuilder, BatchLimits};
use syncdeck::model::Configuration;
use syncdeck::sources::{Fields, MysqlFactory, PostgresqlFactory, SourceFactory};

const LIMIT: Duration = Duration::from_secs(120);
/// The third run's `tables`, as make_golden.py's `LISTED`.
const LISTED: &str = " Orders,typedkeys , nokey,";

/// One document as Python's framework sent it.
struct Golden {
    source: Map<String, Value>,
    /// Fields Python could not write, with why.
    failed: Map<String, Value>,
}

/// Reads a golden file: one `{"_id", "python_failed"?, "_source"}` a line.
fn golden(text: &str) -> BTreeMap<String, Golden> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a golden line is JSON");
            let id = v["_id"].as_str().expect("_id").to_string();
            let doc = Golden {
                source: v["_source"].as_object().cloned().expect("_source"),
                failed: v
                    .get("python_failed")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            };
            (id, doc)
        })
        .collect()
}

fn configuration(mut config: Configuration, values: &Value) -> Configuration {
    for (k, v) in values.as_object().expect("values") {
        // A misspelt key (`username` for mysql's `user`) must not quietly test the default.
        let field = config
            .0
            .get_mut(k)
            .unwrap_or_else(|| panic!("the source has no field '{k}'"));
        field.value = v.clone();
    }
    config
}

/// A full sync of the source alone; each document as the engine's bulk body carries it (the
/// action's `_id`, and the source line parsed), and the source's notes for the job.
async fn sync(
    factory: &dyn SourceFactory,
    config: &Configuration,
    advanced: Option<&Value>,
) -> (BTreeMap<String, Map<String, Value>>, Map<String, Value>) {
    let (sent, notes) = crate::db_server::run_source(factory, config, advanced, LIMIT)
        .await
        .unwrap_or_else(|e| panic!("sync: {e}"));
    let mut docs = BTreeMap::new();
    for doc in sent {
        let (id, sent) = as_sent(doc.id, doc.timestamp.as_deref(), doc.fields);
        assert!(
            docs.insert(id.clone(), sent).is_none(),
            "syncdeck wrote {id} twice"
        );
    }
    (docs, notes)
}

/// The `_id` and source of a document in the engine's bulk body.
fn as_sent(
    id: String,
    timestamp: Option<&str>,
    mut fields: Fields,
) -> (String, Map<String, Value>) {
    let mut builder = BatchBuilder::new(
        BatchLimits {
            max_docs: 10,
            max_bytes: 16 << 20,
        },
        None,
    );
    assert!(builder.push_index(id, timestamp, &mut fields).is_none());
    let batch = builder.flush().expect("one document");
    let mut lines = batch.body.split(|b| *b == b'\n');
    let action: Value = serde_json::from_slice(lines.next().expect("action")).expect("action");
    let source: Value = serde_json::from_slice(lines.next().expect("source")).expect("source");
    (
        action["index"]["_id"].as_str().expect("_id").to_string(),
        source.as_object().cloned().expect("an object"),
    )
}

/// The form of the framework's `iso_utc()`.
const ISO_UTC_FORM: &str = "0000-00-00T00:00:00+00:00";

/// A timestamp's form: digits as 0, fractions of seconds dropped (Python's `isoformat`
/// leaves them out when they are zero).
fn form(ts: &Value) -> String {
    let s = ts.as_str().unwrap_or("(not a string)");
    let cut = match (s.find('.'), s.rfind(['+', '-'])) {
        (Some(dot), Some(tz)) if tz > dot => format!("{}{}", &s[..dot], &s[tz..]),
        (Some(dot), _) => s[..dot].to_string(),
        _ => s.to_string(),
    };
    cut.chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

/// Every difference between syncdeck's documents and Python's.
fn differences(
    got: &BTreeMap<String, Map<String, Value>>,
    want: &BTreeMap<String, Golden>,
) -> Vec<String> {
    let mut out = Vec::new();
    for id in want.keys().filter(|id| !got.contains_key(*id)) {
        out.push(format!("missing: {id}"));
    }
    for id in got.keys().filter(|id| !want.contains_key(*id)) {
        out.push(format!("not in Python's: {id}"));
    }
    for (id, want) in want {
        let Some(got) = got.get(id) else { continue };
        let mut got = got.clone();
        let mut expected = want.source.clone();
        // Python's form, or that of its `iso_utc()`, which it writes as well when the server
        // has no time for the table (MariaDB forgets an InnoDB table's UPDATE_TIME when the
        // table leaves its cache). For PostgreSQL both forms are the same: the values are
        // checked against the server by `pg_timestamps_are_commit_times`.
        match (got.remove("_timestamp"), expected.remove("_timestamp")) {
            (Some(g), Some(w)) if form(&g) == form(&w) || form(&g) == ISO_UTC_FORM => {}
            (g, w) => out.push(format!("{id}: _timestamp {g:?}, Python's {w:?}")),
        }
        for (field, why) in &want.failed {
            match got.remove(field) {
                Some(_) => {}
                None => out.push(format!("{id}: {field} (Python: {why}) is missing")),
            }
        }
        for (field, value) in &expected {
            match got.get(field) {
                Some(g) if g == value => {}
                other => out.push(format!("{id}: {field} is {other:?}, Python's {value}")),
            }
        }
        for field in got.keys().filter(|f| !expected.contains_key(*f)) {
            out.push(format!("{id}: {field} not in Python's"));
        }
    }
    out
}

fn assert_same(
    what: &str,
    got: &BTreeMap<String, Map<String, Value>>,
    want: &BTreeMap<String, Golden>,
) {
    let diffs = differences(got, want);
    assert!(
        diffs.is_empty(),
        "{what}: {} differences from the Python connector:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert_eq!(got.len(), want.len(), "{what}");
}

/// The tables Python warned it skipped (`Skipping table 'x'` / `Skipping table x`).
fn python_skipped(warnings: &str) -> Vec<String> {
    let mut tables: Vec<String> = warnings
        .lines()
        .filter_map(|l| l.strip_prefix("Skipping table "))
        .filter_map(|rest| rest.split(" from database").next())
        .map(|t| t.trim_matches('\'').to_string())
        .collect();
    tables.sort();
    tables
}

fn skipped(notes: &Map<String, Value>) -> Vec<String> {
    let mut tables: Vec<String> = notes
        .get("skipped_tables")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    tables.sort();
    tables
}

// ------------------------------------------------------------------------------------------

async fn pg_seeded() -> Option<&'static pg_server::PgServer> {
    let server = pg_server::shared()?;
    let admin = pg_connect(server, "postgres").await;
    admin
        .batch_execute("DROP DATABASE IF EXISTS golden")
        .await
        .expect("drop database");
    admin
        .batch_execute("CREATE DATABASE golden")
        .await
        .expect("create database");
    pg_connect(server, "golden")
        .await
        .batch_execute(include_str!("../fixtures/golden/postgresql.sql"))
        .await
        .expect("seed");
    Some(server)
}

/// With `track_commit_timestamp` on (the shared server's setting), each document's
/// `_timestamp` is its table's latest commit time, as Python's `MAX(pg_xact_commit_timestamp
/// (xmin))` gives it: checked against the server, value for value, since the golden file can
/// only give the form.
async fn pg_timestamps_are_commit_times(
    server: &pg_server::PgServer,
    docs: &BTreeMap<String, Map<String, Value>>,
    notes: &Map<String, Value>,
) {
    let client = pg_connect(server, "golden").await;
    let on = client
        .query_one("SHOW track_commit_timestamp", &[])
        .await
        .expect("setting")
        .get::<_, String>(0)
        == "on";
    assert!(on, "the shared server keeps commit timestamps");
    let said = notes
        .get("commit_timestamps")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(said.starts_with("on:"), "notes say {said:?}");
    let mut latest: BTreeMap<String, chrono::DateTime<chrono::FixedOffset>> = BTreeMap::new();
    for doc in docs.values() {
        let table = doc["table"].as_str().expect("table").to_string();
        if !latest.contains_key(&table) {
            let row = client
                .query_one(
                    &format!(
                        "SELECT to_json(MAX(pg_xact_commit_timestamp(xmin)))::text FROM \"{}\"",
                        table.replace('"', "\"\"")
                    ),
                    &[],
                )
                .await
                .expect("the table's latest commit");
            let text: String = row.get(0);
            let at = chrono::DateTime::parse_from_rfc3339(text.trim_matches('"'))
                .unwrap_or_else(|e| panic!("{table}: {text}: {e}"));
            latest.insert(table.clone(), at);
        }
        let got = doc["_timestamp"].as_str().expect("_timestamp");
        let got = chrono::DateTime::parse_from_rfc3339(got)
            .unwrap_or_else(|e| panic!("{table}: {got}: {e}"));
        assert_eq!(
            got, latest[&table],
            "{table}: _timestamp is not its latest commit"
        );
    }
}

async fn pg_connect(server: &pg_server::PgServer, db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&server.superuser_url(db), tokio_postgres::NoTls)
        .await
        .expect("superuser connection");
    tokio::spawn(conn);
    client
}

fn pg_config(server: &pg_server::PgServer) -> Configuration {
    // As make_golden.py configured Python's connector.
    configuration(
        PostgresqlFactory.default_configuration(),
        &json!({
            "host": "127.0.0.1", "port": server.port, "username": "postgres",
            "password": pg_server::SUPER_PASSWORD, "database": "golden", "schema": "public",
            "tables": "*", "retry_count": 1,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_writes_what_the_python_connector_wrote() {
    let Some(server) = pg_seeded().await else {
        return;
    };
    let config = pg_config(server);
    let (docs, notes) = sync(&PostgresqlFactory, &config, None).await;
    assert_same(
        "postgresql, all tables",
        &docs,
        &golden(include_str!("../fixtures/golden/postgresql.ndjson")),
    );
    pg_timestamps_are_commit_times(server, &docs, &notes).await;
    assert_eq!(
        skipped(&notes),
        python_skipped(include_str!("../fixtures/golden/postgresql.warnings.txt")),
        "the same tables skipped: {notes:#?}"
    );

    let rules: Value =
        serde_json::from_str(include_str!("../fixtures/golden/postgresql-advanced.json"))
            .expect("rules");
    let (docs, _) = sync(&PostgresqlFactory, &config, Some(&rules)).await;
    assert_same(
        "postgresql, advanced rules",
        &docs,
        &golden(include_str!(
            "../fixtures/golden/postgresql-advanced.ndjson"
        )),
    );

    let config = configuration(config, &json!({ "tables": LISTED }));
    let (docs, notes) = sync(&PostgresqlFactory, &config, None).await;
    assert_same(
        "postgresql, listed tables",
        &docs,
        &golden(include_str!("../fixtures/golden/postgresql-listed.ndjson")),
    );
    assert_eq!(
        skipped(&notes),
        python_skipped(include_str!(
            "../fixtures/golden/postgresql-listed.warnings.txt"
        )),
        "{notes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_writes_what_the_python_connector_wrote() {
    let Some(server) = mariadb_server::shared() else {
        return;
    };
    server.sql(&format!(
        "DROP DATABASE IF EXISTS golden; CREATE DATABASE golden CHARACTER SET utf8mb4; \
         USE golden; {}",
        include_str!("../fixtures/golden/mysql.sql")
    ));
    // As make_golden.py configured Python's connector.
    let config = configuration(
        MysqlFactory.default_configuration(),
        &json!({
            "host": "127.0.0.1", "port": server.port, "user": mariadb_server::USER,
            "password": mariadb_server::PASSWORD, "database": "golden", "tables": "*",
            "fetch_size": 500, "retry_count": 1,
        }),
    );
    let (docs, notes) = sync(&MysqlFactory, &config, None).await;
    let want = golden(include_str!("../fixtures/golden/mysql.ndjson"));
    assert_same("mysql, all tables", &docs, &want);
    // The fallback form is accepted per document, but the tables just written have an
    // UPDATE_TIME: a syncdeck that stopped reading it (iso_utc() everywhere) fails here.
    let python_form = want
        .values()
        .find_map(|g| g.source.get("_timestamp").map(form))
        .expect("Python's documents carry _timestamp");
    assert_ne!(python_form, ISO_UTC_FORM, "Python wrote UPDATE_TIME's form");
    assert!(
        docs.values()
            .any(|d| d.get("_timestamp").map(form).as_deref() == Some(python_form.as_str())),
        "no document has a table's UPDATE_TIME as _timestamp"
    );
    assert_eq!(
        skipped(&notes),
        python_skipped(include_str!("../fixtures/golden/mysql.warnings.txt")),
        "the same tables skipped: {notes:#?}"
    );

    let rules: Value = serde_json::from_str(include_str!("../fixtures/golden/mysql-advanced.json"))
        .expect("rules");
    let (docs, _) = sync(&MysqlFactory, &config, Some(&rules)).await;
    assert_same(
        "mysql, advanced rules",
        &docs,
        &golden(include_str!("../fixtures/golden/mysql-advanced.ndjson")),
    );

    let config = configuration(config, &json!({ "tables": LISTED }));
    let (docs, notes) = sync(&MysqlFactory, &config, None).await;
    assert_same(
        "mysql, listed tables",
        &docs,
        &golden(include_str!("../fixtures/golden/mysql-listed.ndjson")),
    );
    assert_eq!(
        skipped(&notes),
        python_skipped(include_str!("../fixtures/golden/mysql-listed.warnings.txt")),
        "{notes:#?}"
    );
}
