//! Per-table progress end to end: the real binary's `sync` of a `postgresql` connector (on
//! the embedded backend) against a real PostgreSQL server, with one readable table, one
//! without a key (skipped) and one its user may not read (failed). `--json` reports each
//! table with its rows and reason, every line within 4 KiB; the human summary lists them;
//! the password shows nowhere. The same for `mysql` against MariaDB, with a readable and
//! a skipped table (a MySQL table the server refuses ends the sync at its ping, as Python's). Each skips, saying why, without its server.

use crate::mariadb_server;
use crate::pg_server;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

const READER_PASSWORD: &str = "tprog-reader-pw-5d2e";

/// An isolated home (config, data and state dirs) for the binary.
fn cmd(home: &TempDir) -> Command {
    let mut cmd = Command::cargo_bin("syncdeck").expect("the binary");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("SYNCDECK_DATA_DIR", home.path().join("data"))
        .env("SYNCDECK_STATE_DIR", home.path().join("state"))
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

fn run(home: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = cmd(home).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(home: &TempDir, args: &[&str]) {
    let (code, stdout, stderr) = run(home, args);
    assert_eq!(code, 0, "syncdeck {args:?}:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_reports_each_table_with_its_rows_and_why_one_was_skipped_or_refused() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let (admin, conn) =
        tokio_postgres::connect(&server.superuser_url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("superuser connection");
    tokio::spawn(conn);
    // One statement each: neither may run inside the transaction a batch makes.
    for statement in ["DROP DATABASE IF EXISTS tprog", "CREATE DATABASE tprog"] {
        admin.batch_execute(statement).await.expect(statement);
    }
    let (db, conn) = tokio_postgres::connect(&server.superuser_url("tprog"), tokio_postgres::NoTls)
        .await
        .expect("connection to tprog");
    tokio::spawn(conn);
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS tprog_reader;
         CREATE ROLE tprog_reader LOGIN PASSWORD '{READER_PASSWORD}';
         CREATE TABLE readable (id int PRIMARY KEY, title text);
         INSERT INTO readable SELECT g, 'row ' || g FROM generate_series(1, 3000) g;
         CREATE TABLE loose (x int);
         INSERT INTO loose VALUES (1);
         CREATE TABLE locked (id int PRIMARY KEY);
         INSERT INTO locked VALUES (1);
         GRANT SELECT ON readable, loose TO tprog_reader;"
    ))
    .await
    .expect("tables");

    let home = tempfile::tempdir().expect("home");
    let port = format!("port={}", server.port);
    let password = format!("password={READER_PASSWORD}");
    create_connector(
        &home,
        "pg-tables",
        "postgresql",
        &[
            "host=127.0.0.1",
            &port,
            "username=tprog_reader",
            &password,
            "database=tprog",
            "schema=public",
            "tables=readable,loose,locked",
            "retry_count=1",
        ],
    );

    check_tables(
        &home,
        "pg-tables",
        READER_PASSWORD,
        Some(("locked", "permission denied for table locked")),
    );
}

/// `connectors create ID --service-type TYPE --index-name ID-index`, then `connectors set ID
/// VALUES…`, as an operator would.
fn create_connector(home: &TempDir, id: &str, service_type: &str, values: &[&str]) {
    let index = format!("{id}-index");
    ok(
        home,
        &[
            "connectors",
            "create",
            id,
            "--service-type",
            service_type,
            "--index-name",
            &index,
        ],
    );
    let mut set = vec!["connectors", "set", id];
    set.extend_from_slice(values);
    ok(home, &set);
}

/// Syncs `connector` with `--json`, then without, and checks each reports `readable` (done,
/// 3000 rows), `loose` (skipped, no key) and, when given, a refused table (failed, its
/// reason containing the text given), with `password` shown nowhere.
fn check_tables(home: &TempDir, connector: &str, password: &str, refused: Option<(&str, &str)>) {
    // A refused table is an unreadable record, dead-lettered: exit 4.
    let exit = if refused.is_some() { 4 } else { 0 };
    let (code, stdout, stderr) = run(home, &["sync", connector, "--json"]);
    assert_eq!(code, exit, "{stdout}\n{stderr}");
    assert!(!stdout.contains(password), "{stdout}");
    assert!(!stderr.contains(password), "{stderr}");
    for line in stdout.lines() {
        assert!(line.len() <= 4096, "a {}-byte line: {line}", line.len());
    }
    // Every progress line that has tables has them whole: a status, rows, a rate.
    let progress: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with("{\"progress\""))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // A sync this small may end before the first line (they come once a second); the
    // summary's `final` record, checked below, is the last one, always there.
    for p in &progress {
        for t in p["progress"]["tables"].as_array().into_iter().flatten() {
            assert!(t["name"].is_string() && t["status"].is_string(), "{t}");
            assert!(t["rows"].is_u64() && t["rows_per_sec"].is_number(), "{t}");
        }
    }
    let at = stdout.rfind("{\n  \"report\"").expect("a summary");
    let summary: Value = serde_json::from_str(&stdout[at..]).expect("the summary");
    assert_eq!(summary["report"]["end"], "completed", "{summary:#}");
    assert_eq!(
        summary["report"]["counters"]["indexed"], 3000,
        "{summary:#}"
    );
    let last = &summary["final"];
    let tables = last["tables"]
        .as_array()
        .expect("the final record's tables");
    let table = |name: &str| {
        tables
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no '{name}' in {last:#}"))
    };
    let readable = table("readable");
    assert_eq!(readable["status"], "done", "{readable}");
    assert_eq!(readable["rows"], 3000, "{readable}");
    assert!(readable["rows_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    let loose = table("loose");
    assert_eq!(loose["status"], "skipped", "{loose}");
    assert!(
        loose["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no primary key")),
        "{loose}"
    );
    if let Some((name, why)) = refused {
        let locked = table(name);
        assert_eq!(locked["status"], "failed", "{locked}");
        assert!(
            locked["reason"].as_str().is_some_and(|r| r.contains(why)),
            "{locked}"
        );
    }
    let failed = usize::from(refused.is_some());
    assert_eq!(
        last["table_counts"],
        serde_json::json!({"reading": 0, "done": 1, "skipped": 1, "failed": failed, "stopped": 0}),
        "{last:#}"
    );

    // The human summary lists every table, the reasons whole.
    let (code, stdout, stderr) = run(home, &["sync", connector]);
    assert_eq!(code, exit, "{stdout}\n{stderr}");
    assert!(!stdout.contains(password), "{stdout}");
    let counts = if refused.is_some() {
        "tables: 1 done · 1 failed · 1 skipped"
    } else {
        "tables: 1 done · 1 skipped"
    };
    assert!(stdout.contains(counts), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for '{name}' in:\n{stdout}"))
            .to_string()
    };
    let readable = line("readable");
    assert!(
        readable.contains("done") && readable.contains("3000"),
        "{readable}"
    );
    let loose = line("loose");
    assert!(
        loose.contains("skipped")
            && loose.contains("no primary key")
            && loose.contains("next sync interval"),
        "{loose}"
    );
    if let Some((name, why)) = refused {
        let locked = line(name);
        assert!(
            locked.contains("failed") && locked.contains(why),
            "{locked}"
        );
    }
}

#[test]
fn mysql_sync_reports_each_table_with_its_rows_and_why_one_was_skipped() {
    let Some(server) = mariadb_server::shared() else {
        return;
    };
    server.sql(&format!(
        "SET SESSION max_recursive_iterations = 100000000; DROP DATABASE IF EXISTS tprog; \
         CREATE DATABASE tprog CHARACTER SET utf8mb4; USE tprog; \
         CREATE TABLE readable (id int PRIMARY KEY, title varchar(40)); \
         INSERT INTO readable WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3000) SELECT n, CONCAT('row ', n) FROM s; \
         CREATE TABLE loose (x int); INSERT INTO loose VALUES (1); \
         DROP USER IF EXISTS 'tprog'@'%'; \
         CREATE USER 'tprog'@'%' IDENTIFIED BY '{READER_PASSWORD}'; \
         GRANT SELECT ON tprog.readable TO 'tprog'@'%'; \
         GRANT SELECT ON tprog.loose TO 'tprog'@'%'; \
         FLUSH PRIVILEGES;"
    ));
    let home = tempfile::tempdir().expect("home");
    let port = format!("port={}", server.port);
    let password = format!("password={READER_PASSWORD}");
    create_connector(
        &home,
        "my-tables",
        "mysql",
        &[
            "host=127.0.0.1",
            &port,
            "user=tprog",
            &password,
            "database=tprog",
            "tables=readable,loose",
            "retry_count=1",
        ],
    );
    check_tables(&home, "my-tables", READER_PASSWORD, None);
}
