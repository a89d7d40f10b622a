//! The `postgresql` source against a real PostgreSQL server (a throw-away cluster per test
//! binary, a database per test): every column type as Elastic's connector writes it, keys
//! (composite, mixed-case, none, over 512 bytes), wildcard and listed tables, advanced rules
//! (ids, `id_columns`, validation against the database), full syncs through the engine and the
//! stand-in cluster with deletions, ping failures, verified TLS with a generated CA, commit
//! timestamps on and off, and the password kept out of every error. Skips, saying why, when
//! PostgreSQL is not installed.

use crate::db_server::{self, DbServer};
use crate::engine_util;
use crate::pg_server;
use crate::support;

use engine_util::*;
use pg_server::PgServer;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{StandIn, StandInOptions};
use syncdeck::backend::ControlPlane;
use syncdeck::engine::runner::{Engine, JobEnd};
use syncdeck::engine::service::{ServeOptions, serve};
use syncdeck::model::{Configuration, FilteringValidationState, JobType, TriggerMethod};
use syncdeck::sources::{ItemSender, PostgresqlFactory, SourceFactory, SourceItem, SyncMode};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(60);

macro_rules! server_or_skip {
    () => {
        match pg_server::shared() {
            Some(s) => s,
            None => return,
        }
    };
}

/// A fresh database on the shared server, and a superuser connection to it.
async fn database(server: &PgServer, name: &str) -> tokio_postgres::Client {
    server.fresh_database(name, "").expect("fresh database");
    connect(server, name).await
}

async fn connect(server: &PgServer, db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&server.superuser_url(db), tokio_postgres::NoTls)
        .await
        .expect("superuser connection");
    tokio::spawn(conn);
    client
}

/// The connector's values: the server, the superuser, `public`, every table.
fn values(server: &PgServer, db: &str, extra: Value) -> Map<String, Value> {
    db_server::values_with(server, db, extra)
}

fn configuration(values: &Map<String, Value>) -> Configuration {
    db_server::configuration_with(&PostgresqlFactory, values)
}

/// Runs the source alone (ping, then a full sync) and returns its documents by id, and its
/// notes for the job's metadata.
async fn sync_docs(
    values: &Map<String, Value>,
    advanced: Option<Value>,
) -> Result<(BTreeMap<String, Value>, Map<String, Value>), String> {
    db_server::docs_by_id(
        &PostgresqlFactory,
        &configuration(values),
        advanced.as_ref(),
        LIMIT,
    )
    .await
}

fn without_timestamp(mut doc: Value) -> Value {
    if let Some(m) = doc.as_object_mut() {
        m.remove("_timestamp");
    }
    doc
}

// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_becomes_what_the_python_connector_writes() {
    let server = server_or_skip!();
    let db = database(server, "types").await;
    db.batch_execute(include_str!("../fixtures/postgresql/types.sql"))
        .await
        .expect("types table");
    let (docs, _) = sync_docs(&values(server, "types", json!({})), None)
        .await
        .expect("sync");
    let golden: Value =
        serde_json::from_str(include_str!("../fixtures/postgresql/types.json")).expect("golden");
    let expected = golden["documents"].as_object().expect("documents");
    assert_eq!(docs.len(), expected.len(), "{docs:#?}");
    for (id, want) in expected {
        let got = docs
            .get(id)
            .unwrap_or_else(|| panic!("no document {id}: {docs:#?}"));
        let got = without_timestamp(got.clone());
        for (key, value) in want.as_object().expect("document") {
            assert_eq!(&got[key], value, "{id}: field {key}\n{got:#}");
        }
        assert_eq!(
            got.as_object().map(|m| m.len()),
            want.as_object().map(|m| m.len()),
            "{id}: the same fields\n{got:#}"
        );
    }
    // Commit timestamps are on in this cluster: `_timestamp` is the table's last commit, in
    // UTC with `+00:00`, the same for every row.
    let stamps: Vec<&str> = docs
        .values()
        .map(|d| d["_timestamp"].as_str().expect("timestamp"))
        .collect();
    assert!(stamps[0].ends_with("+00:00"), "{stamps:?}");
    assert!(stamps.iter().all(|s| *s == stamps[0]), "{stamps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_composite_mixed_case_missing_and_long() {
    let server = server_or_skip!();
    let db = database(server, "keys").await;
    db.batch_execute(
        r#"
        CREATE TABLE "Orders" ("Region" text, "Id" int, "Total" numeric(10,2), PRIMARY KEY ("Region", "Id"));
        INSERT INTO "Orders" VALUES ('eu', 1, 10.50), ('us', 2, 3);
        CREATE TABLE nokey (a int, b text);
        INSERT INTO nokey VALUES (1, 'x');
        CREATE TABLE longkey (k text PRIMARY KEY, v int);
        INSERT INTO longkey VALUES (repeat('k', 600), 1);
        CREATE VIEW orders_view AS SELECT * FROM "Orders";
        "#,
    )
    .await
    .expect("tables");

    let (docs, notes) = sync_docs(&values(server, "keys", json!({})), None)
        .await
        .expect("sync");
    let eu = &docs["keys_public_Orders_eu_1"];
    assert_eq!(eu["public_orders_region"], "eu");
    assert_eq!(eu["public_orders_id"], 1);
    assert_eq!(eu["public_orders_total"], 10.5);
    assert_eq!(eu["table"], "Orders");
    assert_eq!(eu["schema"], "public");
    assert_eq!(eu["database"], "keys");
    assert!(docs.contains_key("keys_public_Orders_us_2"), "{docs:#?}");
    // An id over 512 bytes is its MD5, as the framework hashes it.
    // Python: hashlib.md5(("keys_public_longkey_" + "k" * 600).encode()).hexdigest()
    let md5 = "7a86f8f28f5d1c295c77e950246f77a4";
    assert!(docs.contains_key(md5), "{md5} in {:?}", docs.keys());
    assert_eq!(docs.len(), 3, "no row of the key-less table or the view");
    let skipped = notes["skipped_tables"].as_object().expect("skipped tables");
    assert_eq!(
        skipped["nokey"],
        "Skipping table 'nokey' from database 'keys' since no primary key is associated with it. Assign primary key to the table to index it in the next sync interval."
    );
    assert!(skipped.contains_key("orders_view"), "{notes:#?}");
    assert_eq!(notes["tables"]["Orders"]["rows"], 2, "{notes:#?}");
    assert_eq!(notes["tables"]["Orders"]["status"], "done", "{notes:#?}");

    // Listed tables: only those, a missing one noted and the rest synced.
    let (docs, notes) = sync_docs(
        &values(server, "keys", json!({"tables": "Orders, missing_one"})),
        None,
    )
    .await
    .expect("sync of listed tables");
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let failed = notes["failed_tables"].as_object().expect("failed tables");
    assert!(
        failed["missing_one"]
            .as_str()
            .is_some_and(|r| r.contains("does not exist")),
        "{notes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_make_distinct_ids_as_pythons_bytes_repr() {
    let server = server_or_skip!();
    let db = database(server, "binkeys").await;
    db.batch_execute(
        "CREATE TABLE blobs (k bytea PRIMARY KEY, n int);
         INSERT INTO blobs VALUES ('\\x8f01', 1), ('\\x8f02', 2), ('\\x61275c0a', 3);",
    )
    .await
    .expect("setup");
    let (docs, notes) = sync_docs(&values(server, "binkeys", json!({})), None)
        .await
        .expect("sync");
    // Python: f"binkeys_public_blobs_{str(b'\x8f\x01')}".
    let ids: Vec<&str> = docs.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            r#"binkeys_public_blobs_b"a'\\\n""#,
            r"binkeys_public_blobs_b'\x8f\x01'",
            r"binkeys_public_blobs_b'\x8f\x02'",
        ],
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_beyond_chrono_and_python_are_written_not_a_panic() {
    let server = server_or_skip!();
    let db = database(server, "fardates").await;
    db.batch_execute(
        "CREATE TABLE far (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz);
         INSERT INTO far VALUES
           (1, '300000-01-01', '294276-12-31 23:59:59.999999', '200000-06-01 12:00:00+00'),
           (2, 'infinity', 'infinity', '-infinity'),
           (3, '5874897-12-31', '2024-01-02 03:04:05', NULL);",
    )
    .await
    .expect("setup");
    // Keyed by the date too, so the id path (str()) meets them as well.
    let rules =
        json!([{"tables": ["far"], "query": "SELECT * FROM far", "id_columns": ["id", "d"]}]);
    let (docs, notes) = sync_docs(&values(server, "fardates", json!({})), Some(rules))
        .await
        .expect("sync");
    let far = |id: &str| without_timestamp(docs[id].clone());
    let one = far("fardates_public_far_1_300000-01-01");
    assert_eq!(one["public_far_d"], "300000-01-01", "{notes:?}");
    assert_eq!(one["public_far_ts"], "294276-12-31T23:59:59.999999");
    assert_eq!(one["public_far_tz"], "200000-06-01T12:00:00+00:00");
    // asyncpg's date.max / datetime.min for the infinities; naive even for timestamptz, so
    // without an offset (as the Python run in tests/fixtures/golden/ wrote them).
    let two = far("fardates_public_far_2_9999-12-31");
    assert_eq!(two["public_far_d"], "9999-12-31");
    assert_eq!(two["public_far_ts"], "9999-12-31T23:59:59.999999");
    assert_eq!(two["public_far_tz"], "0001-01-01T00:00:00");
    assert_eq!(
        far("fardates_public_far_3_5874897-12-31")["public_far_d"],
        "5874897-12-31"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_rules_query_with_ids_from_keys_or_id_columns() {
    let server = server_or_skip!();
    let db = database(server, "rules").await;
    db.batch_execute(
        r#"
        CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, tag text);
        INSERT INTO items VALUES (1, 'cheap', 5, NULL), (2, 'dear', 50, 'x'), (3, 'dearer', 99.5, 'y');
        CREATE TABLE owners (item_id int PRIMARY KEY, owner text);
        INSERT INTO owners VALUES (2, 'ann'), (3, 'bob');
        "#,
    )
    .await
    .expect("tables");
    let v = values(server, "rules", json!({}));

    let rules = json!([{"tables": ["items"], "query": "SELECT * FROM items WHERE price > 10;"}]);
    let (docs, _) = sync_docs(&v, Some(rules)).await.expect("query sync");
    assert_eq!(
        docs.keys().cloned().collect::<Vec<_>>(),
        ["rules_public_items_2", "rules_public_items_3"]
    );
    let doc = &docs["rules_public_items_2"];
    assert_eq!(doc["public_items_name"], "dear");
    assert_eq!(
        doc["table"],
        json!(["items"]),
        "a query's `table` is its list"
    );

    // id_columns (mapped with the same prefix); a NULL value is left out of the id.
    let rules =
        json!([{"tables": ["items"], "query": "SELECT id, tag FROM items", "id_columns": ["tag"]}]);
    let (docs, _) = sync_docs(&v, Some(rules)).await.expect("id_columns sync");
    assert_eq!(
        docs.keys().cloned().collect::<Vec<_>>(),
        [
            "rules_public_items_",
            "rules_public_items_x",
            "rules_public_items_y"
        ]
    );

    // Two tables: sorted in the prefix and the id, both tables' keys.
    let rules = json!([{"tables": ["owners", "items"],
        "query": "SELECT i.id, o.item_id, o.owner FROM items i JOIN owners o ON o.item_id = i.id"}]);
    let (docs, _) = sync_docs(&v, Some(rules)).await.expect("join sync");
    let doc = &docs["rules_public_items_owners_2_2"];
    assert_eq!(doc["public_items_owners_owner"], "ann", "{docs:#?}");
    assert_eq!(doc["table"], json!(["owners", "items"]));

    // A query without the key columns is skipped, and said so.
    let rules = json!([{"tables": ["items"], "query": "SELECT name FROM items"}]);
    let (docs, notes) = sync_docs(&v, Some(rules)).await.expect("keyless query");
    assert!(docs.is_empty());
    assert!(
        notes["skipped_tables"]["items"]
            .as_str()
            .is_some_and(|m| m
                .contains("primary key column or unique ID column name is not present in query")),
        "{notes:#?}"
    );

    // Validation as Python's validators: the schema, then the tables against the database.
    let config = configuration(&v);
    let check = |snippet: Value| {
        let config = config.clone();
        async move {
            PostgresqlFactory
                .check_advanced_rules(&config, &snippet)
                .await
        }
    };
    assert!(
        check(json!([{"tables": ["items"], "query": "SELECT 1"}]))
            .await
            .is_empty()
    );
    assert_eq!(
        check(json!([{"tables": ["items", "nope", "gone"], "query": "SELECT 1"}])).await,
        ["Tables not found or inaccessible: {'gone', 'nope'}."]
    );
    assert_eq!(
        check(json!([{"query": "SELECT 1"}])).await,
        ["data[0] must contain ['tables', 'query'] properties"]
    );
    assert!(check(json!([])).await.is_empty());
}

// Through the engine. -----------------------------------------------------------------------

async fn standin() -> StandIn {
    StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await
}

fn pg_engine(
    standin: &StandIn,
) -> (
    Engine,
    Arc<syncdeck::backend::elasticsearch::ElasticsearchBackend>,
) {
    let es = es_backend(&standin.es_urls());
    let engine = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        syncdeck::sources::builtin(),
        "pg-worker",
    );
    (engine, es)
}

async fn run_full(
    engine: &Engine,
    connector: &str,
) -> (String, syncdeck::engine::runner::JobReport) {
    run_sync_within(engine, connector, JobType::Full, LIMIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_full_sync_deletes_removed_rows_and_the_job_says_what_was_read() {
    let server = server_or_skip!();
    let db = database(server, "engine").await;
    db.batch_execute(
        "CREATE TABLE books (id int PRIMARY KEY, title text);
         INSERT INTO books SELECT g, 'book ' || g FROM generate_series(1, 2500) g;
         CREATE TABLE loose (x int);",
    )
    .await
    .expect("tables");
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let id = create_connector(
        es.as_ref(),
        "pg-books",
        "pg-books",
        &PostgresqlFactory,
        Value::Object(values(server, "engine", json!({}))),
    )
    .await;

    let (job_id, report) = run_full(&engine, &id).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 2500);
    let docs: BTreeMap<String, Value> = standin.index_docs("pg-books").into_iter().collect();
    let doc = &docs["engine_public_books_7"];
    assert_eq!(
        doc["id"], "engine_public_books_7",
        "the framework's `id` field"
    );
    assert_eq!(doc["public_books_title"], "book 7");
    assert!(
        doc["_timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with("+00:00"))
    );
    let job = standin.sync_job(&job_id).expect("job");
    let metadata = &job["metadata"];
    assert_eq!(metadata["tables"]["books"]["rows"], 2500, "{job:#}");
    assert!(metadata["skipped_tables"]["loose"].is_string(), "{job:#}");
    assert!(
        metadata["commit_timestamps"]
            .as_str()
            .is_some_and(|s| s.starts_with("on")),
        "{job:#}"
    );

    db.batch_execute(
        "DELETE FROM books WHERE id > 2000; UPDATE books SET title = 'changed' WHERE id = 1",
    )
    .await
    .expect("changes");
    let (_, report) = run_full(&engine, &id).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.deleted, 500, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs("pg-books").into_iter().collect();
    assert_eq!(docs.len(), 2000);
    assert_eq!(
        docs["engine_public_books_1"]["public_books_title"],
        "changed"
    );
}

/// The job once its status is `status` (serve runs it in a task of its own).
async fn wait_for_status(standin: &StandIn, job: &str, status: &str) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let doc = standin.sync_job(job).expect("job");
        if doc["status"] == status || Instant::now() > deadline {
            assert_eq!(doc["status"], status, "{doc:#}");
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_column_makes_incremental_syncs_of_new_and_updated_rows_only() {
    let server = server_or_skip!();
    let db = database(server, "incr").await;
    db.batch_execute(
        "CREATE TABLE books (id int PRIMARY KEY, title text, updated_at timestamptz NOT NULL);
         INSERT INTO books SELECT g, 'book ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
         FROM generate_series(1, 3) g;
         CREATE TABLE plain (id int PRIMARY KEY);
         INSERT INTO plain VALUES (1);
         ALTER DATABASE incr SET DateStyle = 'SQL, DMY';",
    )
    .await
    .expect("tables");
    // The database's DateStyle (above) would render the saved value as `03/01/2024 …` and
    // misread it: the source pins ISO on its connections, as the cursor checks below show.
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let id = create_connector(
        es.as_ref(),
        "pg-incr",
        "pg-incr",
        &PostgresqlFactory,
        Value::Object(values(server, "incr", json!({"tables": "books"}))),
    )
    .await;
    // Without cursor_column: Elastic's features (no incremental); an incremental job is
    // refused up front, and one that exists is claimed and ends `error` with the reason, as
    // Python's runner ends it, so nothing is left pending for nobody.
    let connector = es.get_connector(&id).await.expect("connector");
    assert!(connector.configuration.get("cursor_column").is_none());
    let features =
        syncdeck::engine::service::source_features(&PostgresqlFactory, &connector.configuration);
    assert_eq!(features.incremental_sync, Some(json!({"enabled": false})));
    let refused = engine
        .create_job_to_run(&id, JobType::Incremental)
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("cursor_column"), "{refused}");
    let (failed, report) = run_sync_within(&engine, &id, JobType::Incremental, LIMIT).await;
    assert!(
        matches!(&report.end, JobEnd::Failed { error }
            if error.contains("does not support incremental sync") && error.contains("cursor_column")),
        "{report:#?}"
    );
    let job = standin.sync_job(&failed).expect("job");
    assert_eq!(job["status"], "error", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("cursor_column")),
        "{job:#}"
    );
    let tick = || async {
        let options = ServeOptions {
            connector_ids: vec![id.clone()],
            idle: Duration::from_millis(10),
            max_ticks: Some(1),
            ..Default::default()
        };
        serve(&engine, &options, CancellationToken::new()).await
    };
    // `serve` writes Elastic's features, and ends a pending incremental job the same way.
    let pending = es
        .create_sync_job(&id, JobType::Incremental, TriggerMethod::OnDemand)
        .await
        .expect("job");
    tick().await;
    let ended = wait_for_status(&standin, &pending, "error").await;
    assert!(
        ended["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not support incremental sync")),
        "{ended:#}"
    );
    let connector = es.get_connector(&id).await.expect("connector");
    assert_eq!(
        connector.features.and_then(|f| f.incremental_sync),
        Some(json!({"enabled": false}))
    );

    // A job created before the operator sets cursor_column runs with it: the source's
    // opt-in fields come from the live connector when the job's snapshot lacks them.
    let early = es
        .create_sync_job(&id, JobType::Incremental, TriggerMethod::OnDemand)
        .await
        .expect("job");
    set_cursor_column(es.as_ref(), &PostgresqlFactory, &id, "updated_at").await;
    let connector = es.get_connector(&id).await.expect("connector");
    let features =
        syncdeck::engine::service::source_features(&PostgresqlFactory, &connector.configuration);
    assert_eq!(features.incremental_sync, Some(json!({"enabled": true})));
    let report = tokio::time::timeout(LIMIT, engine.run_job(&early, &CancellationToken::new()))
        .await
        .expect("the job ends")
        .expect("job runs");
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(
        report.counters.indexed, 3,
        "the first incremental reads the table whole"
    );
    tick().await;
    let connector = es.get_connector(&id).await.expect("connector");
    assert_eq!(
        connector.features.and_then(|f| f.incremental_sync),
        Some(json!({"enabled": true})),
        "serve offers incremental syncs once cursor_column is set"
    );

    // A full sync reads everything and remembers the largest value per table.
    let (_, report) = run_sync_within(&engine, &id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.seen, 3, "{report:#?}");
    let cursor = standin.connector(&id).expect("connector")["sync_cursor"].clone();
    assert_eq!(cursor["cursor_column"], "updated_at", "{cursor:#}");
    assert_eq!(
        cursor["scope"],
        format!("127.0.0.1:{}/incr.public", server.port),
        "{cursor:#}"
    );
    assert!(
        cursor["tables"]["books"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-01-01 00:00:03")),
        "{cursor:#}"
    );

    // New and updated rows only; a deleted row stays until a full sync.
    db.batch_execute(
        "INSERT INTO books VALUES (4, 'book 4', '2024-01-02 00:00:00+00');
         UPDATE books SET title = 'changed', updated_at = '2024-01-03 00:00:00+00' WHERE id = 1;
         DELETE FROM books WHERE id = 2;",
    )
    .await
    .expect("changes");
    let (job_id, report) = run_sync_within(&engine, &id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    // The two changed rows, and again the one at the saved value (`>=`).
    assert_eq!(report.counters.seen, 3, "{report:#?}");
    assert_eq!(report.counters.deleted, 0, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs("pg-incr").into_iter().collect();
    assert_eq!(docs.len(), 4, "{docs:#?}");
    assert_eq!(docs["incr_public_books_1"]["public_books_title"], "changed");
    assert_eq!(docs["incr_public_books_4"]["public_books_title"], "book 4");
    let job = standin.sync_job(&job_id).expect("job");
    assert_eq!(job["metadata"]["tables"]["books"]["rows"], 3, "{job:#}");
    let cursor = standin.connector(&id).expect("connector")["sync_cursor"].clone();
    assert!(
        cursor["tables"]["books"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-01-03 00:00:00")),
        "{cursor:#}"
    );

    // Nothing new: only the row at the saved value is read again, and the cursor stays.
    let (_, report) = run_sync_within(&engine, &id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.seen, 1, "{report:#?}");
    let again = standin.connector(&id).expect("connector")["sync_cursor"].clone();
    assert_eq!(again, cursor);
    // A row committed after that sync with the very value saved (`now()` of a transaction
    // that began before the read) is not lost.
    db.batch_execute("INSERT INTO books VALUES (5, 'book 5', '2024-01-03 00:00:00+00')")
        .await
        .expect("tie");
    let (_, report) = run_sync_within(&engine, &id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.counters.seen, 2, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs("pg-incr").into_iter().collect();
    assert_eq!(docs["incr_public_books_5"]["public_books_title"], "book 5");
    db.batch_execute("DELETE FROM books WHERE id = 5")
        .await
        .expect("untie");

    // A full sync still deletes (rows 2 and 5).
    let (_, report) = run_sync_within(&engine, &id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.deleted, 2, "{report:#?}");
    assert_eq!(standin.index_docs("pg-incr").len(), 3);

    // A table without the column: read whole, with a note, by incremental and full syncs.
    es.update_configuration(
        &id,
        &syncdeck::backend::ConfigurationUpdate::Values(
            json!({"tables": "*"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    )
    .await
    .expect("all tables");
    db.batch_execute("INSERT INTO books VALUES (5, 'book 5', '2024-01-04 00:00:00+00')")
        .await
        .expect("row 5");
    let (job_id, report) = run_sync_within(&engine, &id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.dead_lettered, 0, "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job");
    // plain has no such column: read whole (its one row), noted, not dead-lettered.
    assert_eq!(job["metadata"]["tables"]["plain"]["rows"], 1, "{job:#}");
    assert!(
        job["metadata"]["tables_without_cursor_column"]["plain"]
            .as_str()
            .is_some_and(|s| s.contains("has no column 'updated_at' (cursor_column)")),
        "{job:#}"
    );
    let docs: BTreeMap<String, Value> = standin.index_docs("pg-incr").into_iter().collect();
    assert!(docs.contains_key("incr_public_books_5"), "{docs:#?}");
    let (job_id, report) = run_sync_within(&engine, &id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job");
    assert!(
        job["metadata"]["tables_without_cursor_column"]["plain"].is_string(),
        "{job:#}"
    );
    assert!(
        standin
            .index_docs("pg-incr")
            .iter()
            .any(|(id, _)| id == "incr_public_plain_1")
    );

    // A cursor column of a type with no order (`MAX(jsonb)` is an error): the full sync
    // reads the table whole and completes, with a note, instead of finding it unreadable.
    db.batch_execute(
        "CREATE TABLE odd (id int PRIMARY KEY, updated_at jsonb);
         INSERT INTO odd VALUES (1, '{\"a\": 1}');",
    )
    .await
    .expect("odd");
    let (job_id, report) = run_sync_within(&engine, &id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job");
    assert!(
        job["metadata"]["tables_without_cursor_column"]["odd"]
            .as_str()
            .is_some_and(|s| s.contains("jsonb") && s.contains("no order")),
        "{job:#}"
    );
    assert!(
        job["metadata"].get("deletions_skipped").is_none(),
        "{job:#}"
    );
}

/// The ids of the unreadable records a full sync of the source alone sends.
async fn unreadable_ids(values: &Map<String, Value>) -> Vec<String> {
    let (_, bad) =
        db_server::ids_and_invalid(&PostgresqlFactory, &configuration(values), true, LIMIT).await;
    bad.into_iter().map(|(id, _)| id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_cannot_be_read_keeps_a_full_sync_from_deleting() {
    let server = server_or_skip!();
    let db = database(server, "unread").await;
    db.batch_execute(
        "DROP ROLE IF EXISTS unread_reader;
         CREATE ROLE unread_reader LOGIN PASSWORD 'unread-reader-pw';
         CREATE TABLE open (id int PRIMARY KEY);
         INSERT INTO open SELECT generate_series(1, 10);
         CREATE TABLE locked (id int PRIMARY KEY);
         INSERT INTO locked SELECT generate_series(1, 5);
         GRANT SELECT ON open, locked TO unread_reader;",
    )
    .await
    .expect("setup");
    let reader = values(
        server,
        "unread",
        // Listed: information_schema (the wildcard's list, as Python's) shows a user only
        // the tables it has privileges on.
        json!({"username": "unread_reader", "password": "unread-reader-pw", "tables": "open,locked"}),
    );
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let id = create_connector(
        es.as_ref(),
        "pg-unread",
        "pg-unread",
        &PostgresqlFactory,
        Value::Object(reader.clone()),
    )
    .await;
    let (_, report) = run_full(&engine, &id).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(standin.index_docs("pg-unread").len(), 15);

    // The reader loses `locked`, and a row of `open` goes: nothing may be deleted, since
    // `locked`'s documents cannot be told from removed ones.
    db.batch_execute("REVOKE SELECT ON locked FROM unread_reader; DELETE FROM open WHERE id = 1")
        .await
        .expect("revoke");
    let (job_id, report) = run_full(&engine, &id).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.deleted, 0, "{report:#?}");
    assert_eq!(standin.index_docs("pg-unread").len(), 15);
    let job = standin.sync_job(&job_id).expect("job");
    let metadata = &job["metadata"];
    assert!(
        metadata["deletions_skipped"]
            .as_str()
            .is_some_and(|s| s.contains("nothing was deleted")),
        "{job:#}"
    );
    assert!(
        metadata["failed_tables"]["locked"]
            .as_str()
            .is_some_and(|s| s.contains("permission denied")),
        "{job:#}"
    );

    // A listed table that is not there, and a schema where no table matches, are as
    // unreadable; a real table without a key is only skipped, as in Python.
    db.batch_execute("CREATE TABLE loose (x int)")
        .await
        .expect("loose");
    let v = |extra: Value| values(server, "unread", extra);
    assert_eq!(
        unreadable_ids(&v(json!({"tables": "open,gone"}))).await,
        ["unreadable:table:gone"]
    );
    assert_eq!(
        unreadable_ids(&v(json!({"schema": "pubilc"}))).await,
        ["unreadable:table:*"]
    );
    assert!(
        unreadable_ids(&v(json!({"tables": "open,loose"})))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_validates_advanced_rules_against_the_database_and_syncs_with_them() {
    let server = server_or_skip!();
    let db = database(server, "serve").await;
    db.batch_execute(
        "CREATE TABLE pets (id int PRIMARY KEY, kind text);
         INSERT INTO pets VALUES (1, 'cat'), (2, 'dog'), (3, 'cat');",
    )
    .await
    .expect("tables");
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let control = es.as_ref();
    let id = create_connector(
        control,
        "pg-pets",
        "pg-pets",
        &PostgresqlFactory,
        Value::Object(values(server, "serve", json!({}))),
    )
    .await;
    let tick = || async {
        let options = ServeOptions {
            connector_ids: vec![id.clone()],
            idle: Duration::from_millis(10),
            max_ticks: Some(1),
            ..Default::default()
        };
        serve(&engine, &options, CancellationToken::new()).await
    };
    use syncdeck::backend::ControlPlane;

    // A rule on a table the database does not have: the draft is invalid, with Python's message.
    let bad = json!([{"tables": ["nope"], "query": "SELECT * FROM nope"}]);
    control
        .update_filtering(&id, &[], Some(&bad))
        .await
        .expect("draft");
    tick().await;
    let c = control.get_connector(&id).await.expect("connector");
    let validation = &c.filtering[0].draft.validation;
    assert_eq!(
        validation.state,
        FilteringValidationState::Invalid,
        "{validation:?}"
    );
    assert_eq!(
        validation.errors[0].messages,
        ["Tables not found or inaccessible: {'nope'}."]
    );
    assert_eq!(
        c.features
            .as_ref()
            .and_then(|f| f.sync_rules.clone())
            .map(|r| r["advanced"]["enabled"].clone()),
        Some(json!(true)),
        "the connector's features say advanced rules are on"
    );

    // A good one is activated, and the next sync applies it.
    let good = json!([{"tables": ["pets"], "query": "SELECT * FROM pets WHERE kind = 'cat'"}]);
    control
        .update_filtering(&id, &[], Some(&good))
        .await
        .expect("draft");
    tick().await;
    let c = control.get_connector(&id).await.expect("connector");
    assert_eq!(
        c.filtering[0].draft.validation.state,
        FilteringValidationState::Valid
    );
    assert_eq!(c.filtering[0].active.advanced_snippet.value, good);
    let (_, report) = run_full(&engine, &id).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let ids: Vec<String> = standin
        .index_docs("pg-pets")
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"serve_public_pets_3".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_fails_on_a_refused_port_and_a_bad_password_without_showing_it() {
    let server = server_or_skip!();
    let _db = database(server, "pingfail").await;
    // A port nobody listens on.
    let (_refusing, closed) = crate::ports::refused_port();
    let v = values(server, "pingfail", json!({"port": closed}));
    let started = Instant::now();
    let err = sync_docs(&v, None).await.unwrap_err();
    assert!(
        err.contains("Can't connect to Postgresql on 127.0.0.1."),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "one attempt with retry_count 1"
    );

    let secret = "wrong-secret-password-9321";
    let v = values(server, "pingfail", json!({"password": secret}));
    let err = sync_docs(&v, None).await.unwrap_err();
    assert!(
        err.contains("Can't connect to Postgresql on 127.0.0.1."),
        "{err}"
    );
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(secret), "{err}");

    // Through the engine: the job fails, and neither the job nor the connector shows it.
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let id = create_connector(
        es.as_ref(),
        "pg-bad",
        "pg-bad",
        &PostgresqlFactory,
        Value::Object(v),
    )
    .await;
    let (job_id, report) = run_full(&engine, &id).await;
    assert!(matches!(report.end, JobEnd::Failed { .. }), "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job").to_string();
    assert!(job.contains("Can't connect to Postgresql"), "{job}");
    // (The job's connector snapshot holds the configuration, as the Python service's does;
    // the reasons shown must not.)
    let job = standin.sync_job(&job_id).expect("job");
    assert!(!job["error"].to_string().contains(secret), "{job}");
    let connector = standin.connector(&id).expect("connector");
    assert!(!connector["error"].to_string().contains(secret));
    assert!(!connector["last_sync_error"].to_string().contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_configured_ca() {
    let server = server_or_skip!();
    let db = database(server, "tls").await;
    db.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await
        .expect("table");
    // Kibana's text box may turn the PEM's newlines into spaces: it is reflowed.
    let one_line = server.ca_pem.replace('\n', " ");
    let v = values(
        server,
        "tls",
        json!({"ssl_enabled": true, "ssl_ca": one_line}),
    );
    let (docs, _) = sync_docs(&v, None).await.expect("sync over TLS");
    assert_eq!(docs.len(), 1);
    // The server really spoke TLS to us.
    let rows = db
        .query("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.datname = 'tls'", &[])
        .await
        .expect("pg_stat_ssl");
    let _: i64 = rows[0].get(0);

    // Another CA is refused.
    let (other_ca, _, _) = pg_server::certificates();
    let v = values(
        server,
        "tls",
        json!({"ssl_enabled": true, "ssl_ca": other_ca}),
    );
    let err = sync_docs(&v, None).await.unwrap_err();
    assert!(err.contains("Can't connect to Postgresql"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_commit_timestamps_the_sync_says_so_and_uses_the_read_time() {
    if pg_server::shared().is_none() {
        return;
    }
    let server = PgServer::start(false).expect("a second cluster");
    let db = connect(&server, "postgres").await;
    db.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
        .await
        .expect("table");
    let before = chrono::Utc::now();
    let (docs, notes) = sync_docs(&values(&server, "postgres", json!({})), None)
        .await
        .expect("sync");
    server.stop();
    assert_eq!(docs.len(), 2);
    let stamp = docs["postgres_public_t_1"]["_timestamp"]
        .as_str()
        .expect("timestamp");
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp).expect("ISO time");
    assert!(parsed >= before - chrono::Duration::seconds(1), "{stamp}");
    assert!(stamp.ends_with("+00:00"), "{stamp}");
    assert!(
        notes["commit_timestamps"]
            .as_str()
            .is_some_and(|s| s.starts_with("off")),
        "{notes:#?}"
    );
}

/// Rows per second and memory of the source alone (every size first, so the high-water mark
/// is the source's), then of a whole sync into the stand-in (which keeps every document in
/// this process, so its memory is not the source's):
/// `cargo test --release --test it postgresql::throughput -- --ignored --nocapture`
/// (`PG_BENCH_ROWS=100000,1000000,5000000` to choose the sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, minutes long"]
async fn throughput() {
    let server = server_or_skip!();
    let sizes: Vec<u64> = std::env::var("PG_BENCH_ROWS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    for &rows in &sizes {
        let name = format!("bench{rows}");
        let db = database(server, &name).await;
        db.batch_execute(&format!(
            "CREATE TABLE t (id bigint PRIMARY KEY, name text, price numeric(10,2), created timestamptz, flag boolean);
             INSERT INTO t SELECT g, 'name ' || g, g / 100.0, now() - g * interval '1 second', g % 2 = 0
             FROM generate_series(1, {rows}) g;"
        ))
        .await
        .expect("bench table");
        // The first read of freshly written rows sets their hint bits, writing every page
        // back: a one-off cost of the table, not of the reader, so it is paid here.
        db.batch_execute("VACUUM (ANALYZE) t")
            .await
            .expect("vacuum");
        let config = configuration(&values(server, &name, json!({})));
        let mut source = PostgresqlFactory.create(&config).expect("source");
        source.ping().await.expect("ping");
        let (tx, mut rx) = ItemSender::channel(16);
        let drain = tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(item) = rx.recv().await {
                if let SourceItem::Upsert(doc) = item {
                    n += 1;
                    std::hint::black_box(serde_json::to_vec(&doc.fields).ok());
                }
            }
            n
        });
        let started = Instant::now();
        source.run(SyncMode::Full, tx).await.expect("run");
        drop(source);
        let n = drain.await.expect("drain");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(n, rows);
        println!(
            "postgresql source: {rows} rows in {secs:.2}s = {:.0} rows/s, VmHWM {}",
            rows as f64 / secs,
            vm_hwm()
        );
    }
    let rows = sizes[0];
    let name = format!("bench{rows}");
    let standin = standin().await;
    let (engine, es) = pg_engine(&standin);
    let cid = format!("pg-bench-{rows}");
    let id = create_connector(
        es.as_ref(),
        &cid,
        &cid,
        &PostgresqlFactory,
        Value::Object(values(server, &name, json!({}))),
    )
    .await;
    let started = Instant::now();
    let job = engine
        .deps()
        .control
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .expect("job");
    let report = engine
        .run_job(&job, &CancellationToken::new())
        .await
        .expect("run");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.counters.indexed, rows, "{report:#?}");
    println!(
        "postgresql -> engine -> stand-in: {rows} rows in {secs:.2}s = {:.0} rows/s",
        rows as f64 / secs
    );
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_default()
}
