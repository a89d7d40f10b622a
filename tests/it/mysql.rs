//! The `mysql` source against a real MariaDB server (one per test binary, a database per
//! test): column types as Elastic's connector writes them, keys (composite, mixed-case, none),
//! wildcard and listed tables, advanced rules and their validation against the server, full
//! syncs through the engine and the stand-in cluster with deletions, ping and validation
//! failures, verified TLS with a generated CA, the password kept out of errors. Skips, saying
//! why, when MariaDB is not installed.

use crate::db_server::{self, DbServer};
use crate::engine_util;
use crate::mariadb_server;
use crate::pg_server;
use crate::support;

use engine_util::*;
use mariadb_server::MariaDb;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{StandIn, StandInOptions};
use syncdeck::backend::ControlPlane;
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::engine::runner::{Engine, JobEnd};
use syncdeck::model::{Configuration, JobType, TriggerMethod};
use syncdeck::sources::{ItemSender, MysqlFactory, SourceFactory, SourceItem, SyncMode};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(60);

macro_rules! server_or_skip {
    () => {
        match mariadb_server::shared() {
            Some(s) => s,
            None => return,
        }
    };
}

/// A fresh database on the shared server, with `setup` run in it.
fn database(server: &MariaDb, name: &str, setup: &str) {
    if let Err(e) = server.fresh_database(name, setup) {
        panic!("database {name}: {e}");
    }
}

/// The connector's values: the server, the test user, every table.
fn values(server: &MariaDb, db: &str, extra: Value) -> Map<String, Value> {
    db_server::values_with(server, db, extra)
}

fn configuration(values: &Map<String, Value>) -> Configuration {
    db_server::configuration_with(&MysqlFactory, values)
}

/// Runs the source alone (ping, then a full sync) and returns its documents by id, and its
/// notes for the job's metadata.
async fn sync_docs(
    values: &Map<String, Value>,
    advanced: Option<Value>,
) -> Result<(BTreeMap<String, Value>, Map<String, Value>), String> {
    db_server::docs_by_id(
        &MysqlFactory,
        &configuration(values),
        advanced.as_ref(),
        LIMIT,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_types_become_what_the_python_connector_writes() {
    let server = server_or_skip!();
    database(server, "types", include_str!("../fixtures/mysql/types.sql"));
    let (docs, _) = sync_docs(&values(server, "types", json!({})), None)
        .await
        .expect("sync");
    let golden: Value =
        serde_json::from_str(include_str!("../fixtures/mysql/types.json")).expect("golden");
    let expected = golden["documents"].as_object().expect("documents");
    assert_eq!(docs.len(), expected.len(), "{docs:#?}");
    for (id, want) in expected {
        let mut got = docs
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id}: {docs:#?}"));
        if let Some(m) = got.as_object_mut() {
            m.remove("_timestamp");
        }
        assert_eq!(&got, want, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_tables_and_advanced_rules() {
    let server = server_or_skip!();
    database(
        server,
        "keys",
        "CREATE TABLE `Orders` (`Region` varchar(10), `Id` int, total decimal(10,2), PRIMARY KEY (`Region`, `Id`));
         INSERT INTO `Orders` VALUES ('eu', 1, 10.50), ('us', 2, 3);
         CREATE TABLE nokey (a int);
         INSERT INTO nokey VALUES (1);
         CREATE TABLE big (id int PRIMARY KEY, tag varchar(10));
         INSERT INTO big WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1203) SELECT n, IF(n % 2 = 0, 'even', NULL) FROM s;",
    );
    // Pages of 100 rows: keyset pagination crosses page boundaries without loss.
    let v = values(server, "keys", json!({"fetch_size": 100}));
    let (docs, notes) = sync_docs(&v, None).await.expect("sync");
    let eu = &docs["Orders_eu_1"];
    assert_eq!(eu["Region"], "eu");
    assert_eq!(eu["Id"], 1);
    assert_eq!(eu["total"], 10.5);
    assert_eq!(eu["Table"], "Orders");
    assert_eq!(docs.len(), 2 + 1203, "{:?}", notes);
    assert!(docs.contains_key("big_1203"));
    assert_eq!(
        notes["skipped_tables"]["nokey"],
        "Skipping table nokey from database keys since no primary key is associated with it. Assign primary key to the table to index it in the next sync interval."
    );
    assert_eq!(notes["tables"]["big"]["rows"], 1203);

    // Listed tables.
    let (docs, _) = sync_docs(&values(server, "keys", json!({"tables": "Orders"})), None)
        .await
        .expect("listed");
    assert_eq!(docs.len(), 2);

    // Advanced rules: ids from the table's key, or from id_columns with NULLs left out.
    let rules = json!([{"tables": ["big"], "query": "SELECT * FROM big WHERE id <= 3;"}]);
    let (docs, _) = sync_docs(&v, Some(rules)).await.expect("rules");
    assert_eq!(
        docs.keys().cloned().collect::<Vec<_>>(),
        ["big_1", "big_2", "big_3"]
    );
    assert_eq!(docs["big_2"]["Table"], json!(["big"]));
    let rules = json!([{"tables": ["big"], "query": "SELECT id, tag FROM big WHERE id <= 3", "id_columns": ["tag"]}]);
    let (docs, _) = sync_docs(&v, Some(rules)).await.expect("id_columns");
    assert_eq!(
        docs.keys().cloned().collect::<Vec<_>>(),
        ["big_", "big_even"]
    );

    let config = configuration(&v);
    assert_eq!(
        MysqlFactory
            .check_advanced_rules(
                &config,
                &json!([{"tables": ["big", "zz", "aa"], "query": "SELECT 1"}])
            )
            .await,
        ["Tables not found or inaccessible: aa, zz."]
    );
    assert!(
        MysqlFactory
            .check_advanced_rules(&config, &json!([{"tables": ["big"], "query": "SELECT 1"}]))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_make_distinct_ids_as_pythons_bytes_repr() {
    let server = server_or_skip!();
    database(
        server,
        "binkeys",
        "CREATE TABLE blobs (k varbinary(8) PRIMARY KEY, n int);
         INSERT INTO blobs VALUES (X'8f01', 1), (X'8f02', 2), (X'61275c0a', 3);
         CREATE TABLE texts (k varchar(8) PRIMARY KEY);
         INSERT INTO texts VALUES ('cafe');",
    );
    let (docs, notes) = sync_docs(&values(server, "binkeys", json!({})), None)
        .await
        .expect("sync");
    // Python: f"blobs_{str(b'\x8f\x01')}"; a text key stays its text.
    let ids: Vec<&str> = docs.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            r#"blobs_b"a'\\\n""#,
            r"blobs_b'\x8f\x01'",
            r"blobs_b'\x8f\x02'",
            "texts_cafe",
        ],
        "{notes:?}"
    );
}

/// The documents' ids and the unreadable records' ids a full sync of the source alone sends.
async fn ids_and_unreadables(values: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let (docs, bad) =
        db_server::ids_and_invalid(&MysqlFactory, &configuration(values), true, LIMIT).await;
    (docs, bad.into_iter().map(|(id, _)| id).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_that_matches_no_table_is_unreadable_not_empty() {
    let server = server_or_skip!();
    database(
        server,
        "unread",
        "CREATE TABLE open (id int PRIMARY KEY);
         INSERT INTO open VALUES (1), (2);
         CREATE TABLE cols (id int PRIMARY KEY, n int);
         INSERT INTO cols VALUES (1, 1);
         CREATE TABLE loose (x int);
         INSERT INTO loose VALUES (1);
         DROP USER IF EXISTS 'unread'@'%';
         CREATE USER 'unread'@'%' IDENTIFIED BY 'unread-pw-4321';
         GRANT SELECT ON unread.open TO 'unread'@'%';
         GRANT SELECT ON unread.loose TO 'unread'@'%';
         GRANT SELECT (n) ON unread.cols TO 'unread'@'%';
         DROP DATABASE IF EXISTS unread_empty;
         CREATE DATABASE unread_empty;
         FLUSH PRIVILEGES;",
    );
    // A real table without a key is skipped, as in Python, not unreadable.
    let user = json!({"user": "unread", "password": "unread-pw-4321", "tables": "open,loose"});
    let (docs, bad) = ids_and_unreadables(&values(server, "unread", user)).await;
    assert_eq!(docs, ["open_1", "open_2"]);
    assert!(bad.is_empty(), "{bad:?}");
    // A database with no table the user can see.
    let (docs, bad) = ids_and_unreadables(&values(server, "unread_empty", json!({}))).await;
    assert!(docs.is_empty());
    assert_eq!(bad, ["unreadable:table:*"]);
}

/// The documents' ids and the unreadable records (id, reason) of a full sync of the source
/// alone, without the ping (which would refuse a table the user cannot read at all).
async fn run_unpinged(values: &Map<String, Value>) -> (Vec<String>, Vec<(String, String)>) {
    db_server::ids_and_invalid(&MysqlFactory, &configuration(values), false, LIMIT).await
}

/// Keyset pages compare the last row's key exactly, in pages of one: a DECIMAL key beyond
/// 2^53, one of scale 38 (MariaDB's largest; a cast to scale 30 made 1e-38 zero, and the
/// page came back forever), and a composite key of a scaled DECIMAL and an integer. (MySQL's
/// documentation has a DECIMAL compared with text as doubles, which would take
/// 9007199254740995 and 9007199254740996 for equal and skip the second; the key's value is
/// cast to its type for that. MariaDB, which these tests run, compares them exactly either
/// way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimal_keys_beyond_doubles_are_paged_exactly() {
    let server = server_or_skip!();
    database(
        server,
        "deckeys",
        "CREATE TABLE big (k decimal(30,0) PRIMARY KEY, n int);
         INSERT INTO big VALUES (9007199254740994, 1), (9007199254740995, 2),
           (9007199254740996, 3), (9007199254740997, 4);
         CREATE TABLE fine (k decimal(65,38) PRIMARY KEY);
         INSERT INTO fine VALUES (0.00000000000000000000000000000000000001),
           (0.00000000000000000000000000000000000002), (0.99999999999999999999999999999999999999),
           (1);
         CREATE TABLE pair (p decimal(10,2), n int, PRIMARY KEY (p, n));
         INSERT INTO pair VALUES (1.10, 1), (1.10, 2), (1.20, 1), (1.20, 2);",
    );
    let (docs, bad) = run_unpinged(&values(server, "deckeys", json!({"fetch_size": 1}))).await;
    assert!(bad.is_empty(), "{bad:?}");
    let of = |table: &str| -> Vec<&str> {
        docs.iter()
            .map(String::as_str)
            .filter(|id| id.starts_with(&format!("{table}_")))
            .collect()
    };
    assert_eq!(
        of("big"),
        [
            "big_9007199254740994",
            "big_9007199254740995",
            "big_9007199254740996",
            "big_9007199254740997"
        ]
    );
    assert_eq!(of("fine").len(), 4, "{docs:?}");
    assert_eq!(of("pair").len(), 4, "{docs:?}");
}

/// A key declared in another order than its columns is paged in the key's order, which its
/// index serves (in the columns' order every page sorted the whole table); the ids keep the
/// columns' order, as Python's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_declared_out_of_column_order_is_paged_in_key_order() {
    let server = server_or_skip!();
    database(
        server,
        "swapkeys",
        "CREATE TABLE swapped (a int, b int, title varchar(8), PRIMARY KEY (b, a));
         INSERT INTO swapped VALUES (1, 2, 'p'), (2, 1, 'q'), (1, 1, 'r'), (2, 2, 's'), (3, 1, 't');",
    );
    let log = GeneralLog::on(server);
    let (mut docs, bad) = run_unpinged(&values(server, "swapkeys", json!({"fetch_size": 2}))).await;
    assert!(bad.is_empty(), "{bad:?}");
    docs.sort();
    assert_eq!(
        docs,
        [
            "swapped_1_1",
            "swapped_1_2",
            "swapped_2_1",
            "swapped_2_2",
            "swapped_3_1"
        ]
    );
    // Five rows, pages of two: three pages, all in the key's order.
    let in_key_order = "%`swapkeys`.`swapped`%ORDER BY `b`, `a` LIMIT%";
    assert_eq!(log.executed(in_key_order), 3);
    assert_eq!(
        log.executed("%`swapkeys`.`swapped`%ORDER BY `a`, `b` LIMIT%"),
        0
    );
}

/// An INVISIBLE key column is not in `SELECT *`: the rows cannot be paged nor given their
/// ids (they all got the same one, before), so the table is unreadable, with the reason,
/// and its record keeps a full sync from deleting; the other tables read as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_key_column_is_invisible_is_unreadable_not_one_document() {
    let server = server_or_skip!();
    database(
        server,
        "hiddenkey",
        "CREATE TABLE hidden (id int INVISIBLE NOT NULL DEFAULT 0 PRIMARY KEY, title varchar(8));
         INSERT INTO hidden (id, title) VALUES (1, 'a'), (2, 'b');
         CREATE TABLE shown (id int PRIMARY KEY);
         INSERT INTO shown VALUES (1);",
    );
    let (docs, bad) = run_unpinged(&values(server, "hiddenkey", json!({}))).await;
    assert_eq!(docs, ["shown_1"]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    let (id, reason) = &bad[0];
    assert_eq!(id, "unreadable:table:hidden");
    assert!(
        reason.contains("lack a column of their order (`id`)"),
        "{reason}"
    );
}

/// INFORMATION_SCHEMA shows a user only the columns it has privileges on, so a table whose key
/// columns it may not see looks keyless there. The `SHOW KEYS` fallback tells those from a
/// table that really has no key (skipped, as Python does): it fails on a table the user
/// cannot see at all, and (MariaDB hiding a hidden key from `SHOW KEYS` too) reading the
/// table's columns fails on one whose key column is hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_keys_tells_a_hidden_key_from_a_missing_one() {
    let server = server_or_skip!();
    database(
        server,
        "hidkeys",
        "CREATE TABLE open (id int PRIMARY KEY);
         INSERT INTO open VALUES (1);
         CREATE TABLE cols (id int PRIMARY KEY, n int);
         INSERT INTO cols VALUES (1, 1);
         CREATE TABLE loose (x int);
         INSERT INTO loose VALUES (1);
         CREATE TABLE hidden (id int PRIMARY KEY);
         INSERT INTO hidden VALUES (1);
         CREATE TABLE part (id int PRIMARY KEY, secret int);
         INSERT INTO part VALUES (1, 1);
         DROP USER IF EXISTS 'hidkeys'@'%';
         CREATE USER 'hidkeys'@'%' IDENTIFIED BY 'hidkeys-pw-9753';
         GRANT SELECT ON hidkeys.open TO 'hidkeys'@'%';
         GRANT SELECT ON hidkeys.loose TO 'hidkeys'@'%';
         GRANT SELECT (n) ON hidkeys.cols TO 'hidkeys'@'%';
         GRANT SELECT (id) ON hidkeys.part TO 'hidkeys'@'%';
         FLUSH PRIVILEGES;",
    );
    let user = |tables: &str| {
        values(
            server,
            "hidkeys",
            json!({"user": "hidkeys", "password": "hidkeys-pw-9753", "tables": tables}),
        )
    };
    let (docs, bad) = run_unpinged(&user("open,cols,loose,hidden,part")).await;
    assert_eq!(docs, ["open_1"], "{bad:?}");
    let bad: BTreeMap<String, String> = bad.into_iter().collect();
    assert_eq!(
        bad.keys().collect::<Vec<_>>(),
        [
            "unreadable:table:cols",
            "unreadable:table:hidden",
            "unreadable:table:part"
        ],
        "loose has no key and is only skipped: {bad:#?}"
    );
    // The key is visible but another column is not: that table is unreadable, the sync goes on.
    assert!(
        bad["unreadable:table:part"].contains("SELECT command denied"),
        "{bad:#?}"
    );
    // The key is there but its column is hidden from this user: MariaDB's SHOW KEYS hides it
    // too, and reading the table's columns is refused.
    assert!(
        bad["unreadable:table:cols"].contains("SELECT command denied")
            && bad["unreadable:table:cols"].contains("'id'"),
        "{bad:#?}"
    );
    // No privilege at all: SHOW KEYS itself is refused, and says so.
    assert!(
        bad["unreadable:table:hidden"].contains("hidden"),
        "{bad:#?}"
    );
    assert!(
        !bad["unreadable:table:hidden"].contains("not visible"),
        "{bad:#?}"
    );
    // The wildcard lists what the user sees: a hidden key is still unreadable, not skipped.
    let (docs, bad) = run_unpinged(&user("*")).await;
    assert_eq!(docs, ["open_1"]);
    let ids: Vec<&str> = bad.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["unreadable:table:cols", "unreadable:table:part"],
        "{bad:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_full_sync_deletes_removed_rows() {
    let server = server_or_skip!();
    database(
        server,
        "engine",
        "CREATE TABLE books (id int PRIMARY KEY, title varchar(40));
         INSERT INTO books WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 2500) SELECT n, CONCAT('book ', n) FROM s;",
    );
    let standin = StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await;
    let es = es_backend(&standin.es_urls());
    let engine = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        syncdeck::sources::builtin(),
        "my-worker",
    );
    let id = create_connector(
        es.as_ref(),
        "my-books",
        "my-books",
        &MysqlFactory,
        Value::Object(values(server, "engine", json!({}))),
    )
    .await;
    let run = || async {
        let job = engine
            .deps()
            .control
            .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
            .await
            .expect("job");
        tokio::time::timeout(LIMIT, engine.run_job(&job, &CancellationToken::new()))
            .await
            .expect("ends")
            .expect("runs")
    };
    let report = run().await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 2500);
    let docs: BTreeMap<String, Value> = standin.index_docs("my-books").into_iter().collect();
    assert_eq!(docs["books_7"]["id"], "books_7");
    assert_eq!(docs["books_7"]["title"], "book 7");

    server.sql("DELETE FROM engine.books WHERE id > 2000");
    let report = run().await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.deleted, 500);
    assert_eq!(standin.index_docs("my-books").len(), 2000);
}

/// A stand-in cluster, an engine on it (`worker`) and a `mysql` connector `id` (also its
/// index) reading database `db` with these settings.
async fn connector_on_standin(
    server: &MariaDb,
    db: &str,
    id: &str,
    worker: &str,
    settings: Value,
) -> (StandIn, Arc<ElasticsearchBackend>, Engine) {
    let standin = StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await;
    let es = es_backend(&standin.es_urls());
    let engine = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        syncdeck::sources::builtin(),
        worker,
    );
    let created = create_connector(
        es.as_ref(),
        id,
        id,
        &MysqlFactory,
        Value::Object(values(server, db, settings)),
    )
    .await;
    assert_eq!(created, id);
    (standin, es, engine)
}

/// Turns the server's general query log on for its life (the log is the server's, global):
/// off again when dropped, also when the test fails. One test at a time holds it: another's
/// `TRUNCATE` would wipe what this one counts. One per test, never nested (the lock would
/// wait for itself).
struct GeneralLog<'a> {
    server: &'a MariaDb,
    _held: std::sync::MutexGuard<'static, ()>,
}

static GENERAL_LOG: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl<'a> GeneralLog<'a> {
    fn on(server: &'a MariaDb) -> Self {
        let held = GENERAL_LOG
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        server.sql(
            "TRUNCATE mysql.general_log;
             SET GLOBAL log_output = 'TABLE';
             SET GLOBAL general_log = 1;",
        );
        Self {
            server,
            _held: held,
        }
    }

    /// How many executed statements match the `LIKE` pattern.
    fn executed(&self, pattern: &str) -> u64 {
        self.server
            .sql_rows(&format!(
                "SELECT COUNT(*) FROM mysql.general_log \
                 WHERE command_type = 'Execute' AND argument LIKE '{pattern}'"
            ))
            .trim()
            .parse()
            .expect("a count")
    }
}

impl Drop for GeneralLog<'_> {
    fn drop(&mut self) {
        let _ = self.server.try_sql("SET GLOBAL general_log = 0;");
    }
}

/// With an index of the cursor column alone, an incremental read pages in cursor order
/// (then the key) instead of walking the whole primary key: only the rows at or after the
/// saved value are touched. Pages of two split runs of equal cursor values, which the
/// keyset must neither skip nor repeat. Tables whose cursor column has only a composite
/// index, or an index the optimizer ignores, or is INVISIBLE (which `SELECT *` does not
/// show), or is a TIMESTAMP (local times repeat when clocks go back), keep the key's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_cursor_column_pages_an_incremental_read_in_cursor_order() {
    let server = server_or_skip!();
    database(
        server,
        "incr_idx",
        "CREATE TABLE events (id int PRIMARY KEY, title varchar(20),
           updated decimal(10,2) NOT NULL, KEY by_updated (updated));
         INSERT INTO events VALUES (1, 'a', 5.00), (2, 'b', 1.00), (3, 'c', 5.00), (4, 'd', 3.00),
           (5, 'e', 5.00), (6, 'f', 2.00), (7, 'g', 5.00), (8, 'h', 4.00);
         CREATE TABLE events_composite (id int PRIMARY KEY, title varchar(20),
           updated decimal(10,2) NOT NULL, KEY by_both (updated, title));
         INSERT INTO events_composite VALUES (1, 'x', 5.00), (2, 'y', 1.00);
         CREATE TABLE events_hidden (id int PRIMARY KEY, title varchar(20),
           updated datetime(6) INVISIBLE NOT NULL DEFAULT '2024-01-01 00:00:00', KEY (updated));
         INSERT INTO events_hidden (id, title, updated) VALUES
           (1, 'p', '2024-01-01 00:00:00.5'), (2, 'q', '2024-01-02 00:00:00.25');
         CREATE TABLE events_ignored (id int PRIMARY KEY, title varchar(20),
           updated decimal(10,2) NOT NULL, KEY ki (updated) IGNORED);
         INSERT INTO events_ignored VALUES (1, 'm', 5.00), (2, 'n', 1.00);
         CREATE TABLE events_ts (id int PRIMARY KEY, title varchar(20),
           updated timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (updated));
         INSERT INTO events_ts VALUES (1, 's', '2024-01-01 00:00:00'), (2, 't', '2024-01-02 00:00:00');
         CREATE TABLE events_swapped (a int, b int, updated decimal(10,2) NOT NULL,
           title varchar(20), PRIMARY KEY (b, a), KEY (updated));
         INSERT INTO events_swapped VALUES (1, 2, 5.00, 'w'), (2, 1, 1.00, 'x');
         CREATE TABLE events_keyed (id int PRIMARY KEY, title varchar(20),
           updated decimal(10,2) NOT NULL, KEY by_updated_id (updated, id));
         INSERT INTO events_keyed VALUES (1, 'k', 5.00), (2, 'l', 1.00);
         CREATE TABLE events_pair (a int, b int, updated decimal(10,2) NOT NULL,
           title varchar(20), PRIMARY KEY (a, b), KEY (updated, a));
         INSERT INTO events_pair VALUES (1, 1, 5.00, 'p'), (1, 2, 1.00, 'q');
         CREATE TABLE events_wrong (a int, b int, updated decimal(10,2) NOT NULL,
           title varchar(20), PRIMARY KEY (a, b), KEY (updated, b));
         INSERT INTO events_wrong VALUES (1, 1, 5.00, 'v'), (1, 2, 1.00, 'w');",
    );
    let (standin, es, engine) = connector_on_standin(
        server,
        "incr_idx",
        "my-idx",
        "my-idx-worker",
        json!({
            "tables": "events,events_composite,events_hidden,events_ignored,events_ts,events_swapped,events_keyed,events_pair,events_wrong",
            "fetch_size": 2
        }),
    )
    .await;
    let id = "my-idx";
    // Not the column's own case: MySQL's column names are not case-sensitive.
    set_cursor_column(es.as_ref(), &MysqlFactory, id, "Updated").await;
    let (_, report) = run_sync_within(&engine, id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 24);
    let cursor = standin.connector(id).expect("connector")["sync_cursor"].clone();
    assert_eq!(cursor["tables"]["events"], "5.00", "{cursor:#}");
    assert_eq!(cursor["tables"]["events_composite"], "5.00", "{cursor:#}");

    // Every row the incremental read must send again gets a new title first, so a row it
    // skipped would keep its old one.
    server.sql(
        "UPDATE incr_idx.events SET title = CONCAT(title, '+') WHERE updated = 5.00;
         UPDATE incr_idx.events SET title = 'changed', updated = 6.00 WHERE id IN (2, 4);
         INSERT INTO incr_idx.events VALUES (9, 'i', 5.00);
         INSERT INTO incr_idx.events_composite VALUES (3, 'z', 7.00);
         UPDATE incr_idx.events_hidden SET title = 'q+' WHERE id = 2;
         INSERT INTO incr_idx.events_hidden (id, title, updated)
           VALUES (3, 'r', '2024-01-03 00:00:00');
         INSERT INTO incr_idx.events_ignored VALUES (3, 'o', 8.00);
         INSERT INTO incr_idx.events_ts VALUES (3, 'u', '2024-01-03 00:00:00');
         INSERT INTO incr_idx.events_swapped VALUES (3, 1, 9.00, 'y');
         INSERT INTO incr_idx.events_keyed VALUES (3, 'k3', 7.00);
         INSERT INTO incr_idx.events_pair VALUES (2, 1, 9.00, 'pp');
         INSERT INTO incr_idx.events_wrong VALUES (2, 1, 9.00, 'vv');",
    );
    let log = GeneralLog::on(server);
    let (_, report) = run_sync_within(&engine, id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    // events: the five rows at 5.00 (the saved value, `>=`) and the two moved to 6.00, each
    // once; each other table: the row at its saved value and the new one.
    assert_eq!(report.counters.seen, 23, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs("my-idx").into_iter().collect();
    assert_eq!(docs.len(), 33);
    for (id, title) in [
        ("events_1", "a+"),
        ("events_3", "c+"),
        ("events_5", "e+"),
        ("events_7", "g+"),
        ("events_9", "i"),
        ("events_2", "changed"),
        ("events_4", "changed"),
        ("events_composite_3", "z"),
        ("events_hidden_2", "q+"),
        ("events_hidden_3", "r"),
        ("events_ignored_3", "o"),
        ("events_ts_3", "u"),
        ("events_swapped_3_1", "y"),
        ("events_keyed_3", "k3"),
        ("events_pair_2_1", "pp"),
        ("events_wrong_2_1", "vv"),
    ] {
        assert_eq!(docs[id]["title"], title, "{id}");
    }
    let cursor = standin.connector(id).expect("connector")["sync_cursor"].clone();
    assert_eq!(cursor["tables"]["events"], "6.00", "{cursor:#}");
    // events went in the cursor's order, seven rows in four pages of two; the others in
    // the key's.
    let in_cursor_order = "ORDER BY `updated`, `id` LIMIT%";
    assert_eq!(
        log.executed(&format!("%`incr\\_idx`.`events` %{in_cursor_order}")),
        4
    );
    // A key declared out of column order follows the cursor in the key's order, which the
    // cursor's index holds after it.
    assert!(
        log.executed("%`incr\\_idx`.`events\\_swapped` %ORDER BY `updated`, `b`, `a` LIMIT%") > 0,
        "events_swapped was not paged by cursor, then key"
    );
    // An index of the cursor and then the key, or the key's first column: the same order.
    assert!(
        log.executed(&format!(
            "%`incr\\_idx`.`events\\_keyed` %{in_cursor_order}"
        )) > 0,
        "events_keyed was not paged by cursor, then key"
    );
    assert!(
        log.executed("%`incr\\_idx`.`events\\_pair` %ORDER BY `updated`, `a`, `b` LIMIT%") > 0,
        "events_pair was not paged by cursor, then key"
    );
    // An index of the cursor and the key's second column is not in that order.
    assert_eq!(
        log.executed("%`incr\\_idx`.`events\\_wrong` %ORDER BY `updated`%"),
        0,
        "events_wrong was paged in cursor order"
    );
    assert!(
        log.executed("%`incr\\_idx`.`events\\_wrong` %ORDER BY `a`, `b` LIMIT%") > 0,
        "no page of events_wrong in key order was logged"
    );
    for table in [
        "events\\_composite",
        "events\\_hidden",
        "events\\_ignored",
        "events\\_ts",
    ] {
        assert_eq!(
            log.executed(&format!("%`incr\\_idx`.`{table}`%{in_cursor_order}")),
            0,
            "{table} was paged in cursor order"
        );
        assert!(
            log.executed(&format!("%`incr\\_idx`.`{table}`%ORDER BY `id` LIMIT%")) > 0,
            "no page of {table} in key order was logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_column_makes_incremental_syncs_of_new_and_updated_rows_only() {
    let server = server_or_skip!();
    // Versions above 2^53: a text compared with a number is compared as a double in MySQL,
    // which would take 2^53 + 5 and 2^53 + 6 for equal; the cursor must compare exactly.
    database(
        server,
        "incr",
        "CREATE TABLE books (id int PRIMARY KEY, title varchar(40), version bigint NOT NULL);
         INSERT INTO books VALUES (1, 'book 1', 9007199254740993), (2, 'book 2', 9007199254740994),
           (3, 'book 3', 9007199254740995), (4, 'book 4', 9007199254740996), (5, 'book 5', 9007199254740997);
         CREATE TABLE plain (id int PRIMARY KEY);
         INSERT INTO plain VALUES (1);",
    );
    // Two rows a page: the incremental read goes through the keyset pages too.
    let (standin, es, engine) = connector_on_standin(
        server,
        "incr",
        "my-incr",
        "my-worker",
        json!({"tables": "books", "fetch_size": 2}),
    )
    .await;
    let id = "my-incr".to_string();
    let run = |job_type: JobType| run_sync_within(&engine, &id, job_type, LIMIT);
    let refused = engine
        .create_job_to_run(&id, JobType::Incremental)
        .await
        .expect_err("refused without cursor_column");
    assert!(refused.to_string().contains("cursor_column"), "{refused}");

    set_cursor_column(es.as_ref(), &MysqlFactory, &id, "version").await;

    let (_, report) = run(JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.indexed, 5);
    let cursor = standin.connector(&id).expect("connector")["sync_cursor"].clone();
    assert_eq!(
        cursor,
        json!({"cursor_column": "version", "scope": format!("127.0.0.1:{}/incr time_zone=SYSTEM", server.port),
            "tables": {"books": "9007199254740997"}})
    );

    server.sql(
        "UPDATE incr.books SET title = 'changed', version = 9007199254740999 WHERE id = 1;
         INSERT INTO incr.books VALUES (6, 'book 6', 9007199254740998), (7, 'book 7', 9007199254741000);
         DELETE FROM incr.books WHERE id = 2;",
    );
    let (job_id, report) = run(JobType::Incremental).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    // The three changed rows, and again the one at the saved value (`>=`).
    assert_eq!(report.counters.seen, 4, "{report:#?}");
    assert_eq!(report.counters.deleted, 0, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs("my-incr").into_iter().collect();
    assert_eq!(docs.len(), 7, "the deleted row stays until a full sync");
    assert_eq!(docs["books_1"]["title"], "changed");
    assert_eq!(docs["books_6"]["title"], "book 6");
    let job = standin.sync_job(&job_id).expect("job");
    assert_eq!(job["metadata"]["tables"]["books"]["rows"], 4, "{job:#}");
    let cursor = standin.connector(&id).expect("connector")["sync_cursor"].clone();
    assert_eq!(cursor["tables"]["books"], "9007199254741000", "{cursor:#}");

    // Nothing new: only the row at the saved value is read again.
    let (_, report) = run(JobType::Incremental).await;
    assert_eq!(report.counters.seen, 1, "{report:#?}");
    // A row written after that sync with the very value saved (a busy table's timestamp of
    // one-second precision) is not lost.
    server.sql("INSERT INTO incr.books VALUES (8, 'book 8', 9007199254741000);");
    let (_, report) = run(JobType::Incremental).await;
    assert_eq!(report.counters.seen, 2, "{report:#?}");
    assert_eq!(
        standin
            .index_docs("my-incr")
            .into_iter()
            .collect::<BTreeMap<_, _>>()["books_8"]["title"],
        "book 8"
    );
    server.sql("DELETE FROM incr.books WHERE id = 8;");
    // A full sync still deletes (rows 2 and 8).
    let (_, report) = run(JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.deleted, 2, "{report:#?}");

    // A table without the column: read whole by an incremental sync too, with a note.
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
    let (job_id, report) = run(JobType::Incremental).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.dead_lettered, 0, "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job");
    assert_eq!(job["metadata"]["tables"]["plain"]["rows"], 1, "{job:#}");
    assert!(
        job["metadata"]["tables_without_cursor_column"]["plain"]
            .as_str()
            .is_some_and(|s| s.contains("has no column 'version' (cursor_column)")),
        "{job:#}"
    );

    // A cursor column of a type with no order to resume from (binary): the full sync reads
    // the table whole and completes, no cursor is kept for it, and it says so.
    server.sql(
        "CREATE TABLE incr.raw (id int PRIMARY KEY, version varbinary(8) NOT NULL);
         INSERT INTO incr.raw VALUES (1, 0x01), (2, 0xFFFE);",
    );
    let (job_id, report) = run(JobType::Full).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let job = standin.sync_job(&job_id).expect("job");
    assert!(
        job["metadata"]["tables_without_cursor_column"]["raw"]
            .as_str()
            .is_some_and(|s| s.contains("varbinary(8)") && s.contains("no order")),
        "{job:#}"
    );
    assert!(
        standin
            .index_docs("my-incr")
            .iter()
            .any(|(id, _)| id == "raw_2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_validation_failures_say_what_is_wrong_without_the_password() {
    let server = server_or_skip!();
    database(server, "val", "CREATE TABLE t (id int PRIMARY KEY);");
    let (_refusing, closed) = crate::ports::refused_port();
    let started = Instant::now();
    let err = sync_docs(&values(server, "val", json!({"port": closed})), None)
        .await
        .unwrap_err();
    assert!(
        err.contains("Can't connect to MySQL on 127.0.0.1."),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let secret = "not-the-password-5555";
    let err = sync_docs(&values(server, "val", json!({"password": secret})), None)
        .await
        .unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    assert!(!err.contains(secret), "{err}");

    let err = sync_docs(&values(server, "missing_db", json!({})), None)
        .await
        .unwrap_err();
    assert!(
        err.contains("The database 'missing_db' is either not present or not accessible for the user 'syncdeck'."),
        "{err}"
    );
    let err = sync_docs(
        &values(server, "val", json!({"tables": "t, nope, gone"})),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.contains(
            "The tables 'nope, gone' are either not present or not accessible for user 'syncdeck'."
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_configured_ca() {
    let server = server_or_skip!();
    database(
        server,
        "tls",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let one_line = server.ca_pem.replace('\n', " ");
    let (docs, _) = sync_docs(
        &values(
            server,
            "tls",
            json!({"ssl_enabled": true, "ssl_ca": one_line}),
        ),
        None,
    )
    .await
    .expect("sync over TLS");
    assert_eq!(docs.len(), 1);
    let (other, _, _) = pg_server::certificates();
    let err = sync_docs(
        &values(server, "tls", json!({"ssl_enabled": true, "ssl_ca": other})),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("Can't connect"),
        "{err}"
    );
}

/// `cargo test --release --test it mysql::throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, minutes long"]
async fn throughput() {
    let server = server_or_skip!();
    let sizes: Vec<u64> = std::env::var("MY_BENCH_ROWS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    for rows in sizes {
        let name = format!("bench{rows}");
        database(server, &name, &format!(
            "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(40), price decimal(10,2), created datetime, flag tinyint);
             INSERT INTO t WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows})
             SELECT n, CONCAT('name ', n), n / 100, NOW() - INTERVAL n SECOND, n % 2 FROM s;"
        ));
        let config = configuration(&values(server, &name, json!({})));
        let mut source = MysqlFactory.create(&config).expect("source");
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
        let hwm = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM"))
                    .map(str::to_string)
            })
            .unwrap_or_default();
        println!(
            "mysql source: {rows} rows in {secs:.2}s = {:.0} rows/s, {hwm}",
            rows as f64 / secs
        );
    }
}

/// A TIMESTAMP primary key on a server whose time zone goes back an hour: the key's values
/// are read in local time, where 01:00–01:59 happens twice, and a keyset page after the
/// first 01:00 (`ts > '01:00'`) compared as the second and skipped the rows between. The
/// table is paged by position instead: every row is read, in pages of one, by a full sync
/// and by an incremental one (its cursor condition's value, then the position). (Two rows
/// whose local times read the same, 01:30 EDT and 01:30 EST, would get one `_id`, as in
/// Python: the rows here do not.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_key_where_clocks_go_back_pages_by_position() {
    let Some(server) = new_york() else { return };
    // 05:00–07:10 UTC on the day clocks went back: 01:00, 01:30, 01:50 EDT, then 01:10,
    // 01:40 EST and 02:10.
    database(
        server,
        "dst",
        "CREATE TABLE events (ts timestamp(0) NOT NULL PRIMARY KEY, v int);
         SET time_zone = '+00:00';
         INSERT INTO events VALUES ('2024-11-03 05:00:00', 1), ('2024-11-03 05:30:00', 2),
           ('2024-11-03 05:50:00', 3), ('2024-11-03 06:10:00', 4), ('2024-11-03 06:40:00', 5),
           ('2024-11-03 07:10:00', 6);",
    );
    let (standin, es, engine) = connector_on_standin(
        server,
        "dst",
        "my-dst",
        "my-dst-worker",
        json!({"tables": "events", "fetch_size": 1}),
    )
    .await;
    set_cursor_column(es.as_ref(), &MysqlFactory, "my-dst", "v").await;
    let (_, report) = run_sync_within(&engine, "my-dst", JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    let values = sorted_values(&standin, "my-dst");
    assert_eq!(values, [1, 2, 3, 4, 5, 6], "{report:#?}");
    assert_eq!(report.counters.indexed, 6);

    // Incremental: `v >= 6` keeps the last row, one moved up and a new one between two
    // rows of the repeated hour.
    server.sql(
        "SET time_zone = '+00:00';
         UPDATE dst.events SET v = 7 WHERE ts = '2024-11-03 05:30:00';
         INSERT INTO dst.events VALUES ('2024-11-03 06:20:00', 8);",
    );
    let (_, report) = run_sync_within(&engine, "my-dst", JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.seen, 3, "{report:#?}");
    let values = sorted_values(&standin, "my-dst");
    assert_eq!(values, [1, 3, 4, 5, 6, 7, 8], "{report:#?}");
}

/// The `v` field of every document of `index`, sorted.
fn sorted_values(standin: &StandIn, index: &str) -> Vec<i64> {
    let mut values: Vec<i64> = standin
        .index_docs(index)
        .iter()
        .filter_map(|(_, doc)| doc["v"].as_i64())
        .collect();
    values.sort_unstable();
    values
}

/// A MariaDB server of this test binary's own whose time zone is America/New_York, where
/// clocks went back at 06:00 UTC on 2024-11-03 (01:00–01:59 local happened twice); `None`
/// (with the reason printed) without MariaDB or the zone's data.
fn new_york() -> Option<&'static MariaDb> {
    static SERVER: std::sync::OnceLock<Option<MariaDb>> = std::sync::OnceLock::new();
    mariadb_server::shared()?;
    SERVER
        .get_or_init(|| {
            let zone = "America/New_York";
            if !std::path::Path::new("/usr/share/zoneinfo")
                .join(zone)
                .exists()
            {
                eprintln!("SKIPPED: no time zone data for {zone}");
                return None;
            }
            Some(MariaDb::start_in_zone(zone).expect("a MariaDB server in New York time"))
        })
        .as_ref()
}

/// A TIMESTAMP `cursor_column` is kept in UTC: saved as local text, a 01:50 of the hour
/// that repeats was compared in local time, so a row written 30 minutes later, at 01:20 of
/// the second such hour, compared below it and the next incremental sync skipped it. A value
/// saved in local time by an earlier version is still read once, with four hours of slack,
/// and replaced by UTC text; UTC text on a column altered to DATETIME reads the table whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_cursor_is_kept_in_utc_where_clocks_go_back() {
    let Some(server) = new_york() else { return };
    database(
        server,
        "dst_cursor",
        "CREATE TABLE events (id int PRIMARY KEY, ts timestamp(6) NOT NULL, v int, KEY (ts));
         SET time_zone = '+00:00';
         INSERT INTO events VALUES (1, '2024-11-03 04:00:00', 1),
           (2, '2024-11-03 05:50:00.25', 2);",
    );
    let (standin, es, engine) = connector_on_standin(
        server,
        "dst_cursor",
        "my-dst-cursor",
        "my-dst-cursor-worker",
        json!({"tables": "events", "fetch_size": 1}),
    )
    .await;
    let id = "my-dst-cursor";
    let saved =
        || standin.connector(id).expect("connector")["sync_cursor"]["tables"]["events"].clone();
    set_cursor_column(es.as_ref(), &MysqlFactory, id, "ts").await;
    let (_, report) = run_sync_within(&engine, id, JobType::Full, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    // 01:50:00.25 EDT, the first 01:50 of the day.
    assert_eq!(saved(), "2024-11-03T05:50:00.250000Z");

    // Written 30 minutes later: 01:20 EST, below 01:50 in local time.
    server.sql(
        "SET time_zone = '+00:00';
         INSERT INTO dst_cursor.events VALUES (3, '2024-11-03 06:20:00.000001', 3);",
    );
    let (_, report) = run_sync_within(&engine, id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    // The row at the saved value (`>=`) and the new one.
    assert_eq!(report.counters.seen, 2, "{report:#?}");
    let docs: BTreeMap<String, Value> = standin.index_docs(id).into_iter().collect();
    assert_eq!(docs["events_3"]["v"], 3, "{docs:#?}");
    assert_eq!(saved(), "2024-11-03T06:20:00.000001Z");

    // A local value an earlier version saved, 01:55 (EDT), above both rows of the repeated
    // hour in local time: four hours of slack read them again.
    let set_saved = |value: &str| {
        let mut doc = standin.connector(id).expect("connector");
        if let Some(fields) = doc.as_object_mut() {
            fields.remove("id");
        }
        doc["sync_cursor"]["tables"]["events"] = json!(value);
        standin.put_doc(".elastic-connectors", id, doc);
    };
    set_saved("2024-11-03 01:55:00");
    let (_, report) = run_sync_within(&engine, id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.seen, 3, "{report:#?}");
    assert_eq!(saved(), "2024-11-03T06:20:00.000001Z");

    // The column becomes DATETIME: its UTC text would compare hours off, so the table is
    // read whole and the column's own value saved.
    server.sql("ALTER TABLE dst_cursor.events MODIFY ts datetime(6) NOT NULL;");
    let (_, report) = run_sync_within(&engine, id, JobType::Incremental, LIMIT).await;
    assert_eq!(report.end, JobEnd::Completed, "{report:#?}");
    assert_eq!(report.counters.seen, 3, "{report:#?}");
    assert_eq!(saved(), "2024-11-03 01:50:00.250000");
}
