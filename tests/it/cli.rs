//! The headless CLI end to end: the real binary against the stand-in cluster and against the
//! embedded default, checking output, exit codes, read-only refusal and that no secret ever
//! reaches the output or the log without `--reveal`.

use crate::support;

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::PathBuf;
use support::{StandIn, StandInAuth, StandInOptions};
use tempfile::TempDir;

const API_KEY: &str = "U1lOQ0RFQ0stQVBJLUtFWS1zZWNyZXQtNzc3";
const SENSITIVE_VALUE: &str = "sekr1t-connector-token-4242";

/// An isolated home for one test: config, data and state dirs.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("config.toml");
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("syncdeck").unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SYNCDECK_DATA_DIR", self.path("data"))
            .env("SYNCDECK_STATE_DIR", self.path("state"))
            .env("SYNCDECK_LOG", "debug")
            .timeout(std::time::Duration::from_secs(60));
        // An explicit config path must exist; without one the embedded default is used.
        if self.path("config.toml").exists() {
            cmd.env("SYNCDECK_CONFIG", self.path("config.toml"));
        }
        cmd
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        let dir = self.path("state").join("logs");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command, args: &[&str]) -> Run {
    let output = cmd.args(args).output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(home: &Home, args: &[&str]) -> String {
    let r = run(&mut home.cmd(), args);
    assert_eq!(
        r.code, 0,
        "syncdeck {args:?} failed:\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r.stdout
}

fn json_of(home: &Home, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(home, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn stand_in_config(home: &Home, standin: &StandIn, extra: &str) -> PathBuf {
    let nodes: Vec<String> = standin
        .es_urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect();
    home.write_config(&format!(
        "default_profile = \"test\"\n\
         [profiles.test]\n{extra}\n\
         [profiles.test.elasticsearch]\nnodes = [{}]\napi_key = \"env:TEST_ES_API_KEY\"\nrequest_timeout = \"5s\"\n\
         [profiles.test.kibana]\nurl = \"{}\"\n",
        nodes[0],
        standin.kibana_url()
    ))
}

fn with_key(home: &Home) -> Command {
    let mut cmd = home.cmd();
    cmd.env("TEST_ES_API_KEY", API_KEY);
    cmd
}

/// Puts a configuration with a sensitive field on a connector through the real API.
fn seed_sensitive_config(standin: &StandIn, connector: &str) {
    let url = format!(
        "{}/_connector/{connector}/_configuration",
        standin.es_urls()[0]
    );
    let body = json!({"configuration": {
        "host": {"label": "Host", "value": "db.internal", "type": "str", "display": "textbox", "order": 1,
                 "required": true, "sensitive": false, "default_value": null, "depends_on": [], "options": [],
                 "tooltip": null, "ui_restrictions": [], "validations": []},
        "port": {"label": "Port", "value": 5432, "type": "int", "display": "numeric", "order": 2,
                 "required": true, "sensitive": false, "default_value": 5432, "depends_on": [], "options": [],
                 "tooltip": null, "ui_restrictions": [],
                 "validations": [{"type": "greater_than", "constraint": 0}, {"type": "less_than", "constraint": 65536}]},
        "token": {"label": "Token", "value": SENSITIVE_VALUE, "type": "str", "display": "textbox", "order": 3,
                  "required": true, "sensitive": true, "default_value": null, "depends_on": [], "options": [],
                  "tooltip": null, "ui_restrictions": [], "validations": []}
    }});
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .put(url)
            .header("Authorization", format!("ApiKey {API_KEY}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    });
}

fn authed_standin(nodes: usize) -> StandIn {
    StandIn::start_blocking(StandInOptions {
        nodes,
        auth: StandInAuth::ApiKey(API_KEY.to_string()),
        ..Default::default()
    })
}

fn ok_k(home: &Home, args: &[&str]) -> String {
    let r = run(&mut with_key(home), args);
    assert_eq!(
        r.code, 0,
        "syncdeck {args:?} failed:\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r.stdout
}

#[test]
fn embedded_default_shows_the_demo_connectors() {
    let home = Home::new();
    let out = ok(&home, &["connectors", "list"]);
    assert!(out.contains("demo-directory"), "{out}");
    assert!(out.contains("demo-generator"), "{out}");
    // No subcommand: the overview (check + connectors).
    let overview = ok(&home, &[]);
    assert!(overview.contains("embedded"), "{overview}");
    assert!(overview.contains("demo-directory"), "{overview}");
    let page = json_of(&home, &["connectors", "list"]);
    assert!(page["count"].as_u64().unwrap() >= 2);
}

#[test]
fn embedded_connector_lifecycle_and_jobs() {
    let home = Home::new();
    ok(
        &home,
        &[
            "connectors",
            "create",
            "c1",
            "--service-type",
            "ndjson",
            "--index-name",
            "c1-index",
            "--name",
            "First",
        ],
    );
    let shown = ok(&home, &["connectors", "show", "c1"]);
    assert!(
        shown.contains("c1-index") && shown.contains("First"),
        "{shown}"
    );
    // A service type syncdeck runs gets its fields at once, waiting for values.
    let fields = json_of(&home, &["connectors", "config", "c1"]);
    let keys: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(keys, ["path", "id_field", "max_line_bytes"]);
    assert!(shown.contains("needs_configuration"), "{shown}");
    ok(
        &home,
        &["connectors", "set", "c1", "path=/tmp/orders.ndjson"],
    );
    let job = json_of(&home, &["jobs", "start", "c1", "--type", "incremental"]);
    let job_id = job["id"].as_str().unwrap().to_string();
    let listed = ok(&home, &["jobs", "list", "--connector", "c1"]);
    assert!(
        listed.contains(&job_id) && listed.contains("incremental") && listed.contains("pending"),
        "{listed}"
    );
    let shown = json_of(&home, &["jobs", "show", &job_id]);
    assert_eq!(shown["status"], "pending");
    ok(&home, &["jobs", "cancel", &job_id]);
    assert_eq!(
        json_of(&home, &["jobs", "show", &job_id])["status"],
        "canceled"
    );
    let filtered = json_of(&home, &["jobs", "list", "--status", "canceled"]);
    assert_eq!(filtered["results"].as_array().unwrap().len(), 1);
    ok(&home, &["connectors", "delete", "c1", "--hard"]);
    let r = run(&mut home.cmd(), &["connectors", "show", "c1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

#[test]
fn set_validates_before_sending_and_names_field_and_rule() {
    let home = Home::new();
    let before = json_of(&home, &["connectors", "config", "demo-generator"]);
    let r = run(
        &mut home.cmd(),
        &["connectors", "set", "demo-generator", "count=lots"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("count")
            && r.stderr.contains("type")
            && r.stderr.contains("nothing saved"),
        "{}",
        r.stderr
    );
    let r = run(
        &mut home.cmd(),
        &["connectors", "set", "demo-generator", "no_such_field=1"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no_such_field"), "{}", r.stderr);
    assert_eq!(
        json_of(&home, &["connectors", "config", "demo-generator"]),
        before,
        "a rejected set changed something"
    );
    ok(&home, &["connectors", "set", "demo-generator", "count=123"]);
    let after = json_of(&home, &["connectors", "config", "demo-generator"]);
    let count = after
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "count")
        .unwrap();
    assert_eq!(count["value"], 123);
}

#[test]
fn stand_in_commands_end_to_end() {
    let standin = authed_standin(3);
    let home = Home::new();
    stand_in_config(&home, &standin, "");
    // check: versions, health, and all three nodes found by sniffing from one seed.
    let check = ok_k(&home, &["check"]);
    assert!(check.contains("green"), "{check}");
    for url in standin.es_urls() {
        assert!(
            check.contains(url.trim_start_matches("http://")),
            "{url} missing from:\n{check}"
        );
    }
    ok_k(
        &home,
        &[
            "connectors",
            "create",
            "pg",
            "--service-type",
            "postgresql",
            "--index-name",
            "search-pg",
        ],
    );
    ok_k(
        &home,
        &[
            "connectors",
            "create",
            "fs",
            "--service-type",
            "directory",
            "--index-name",
            "search-fs",
        ],
    );
    let list = ok_k(
        &home,
        &["connectors", "list", "--service-type", "postgresql"],
    );
    assert!(list.contains("pg") && !list.contains("search-fs"), "{list}");
    seed_sensitive_config(&standin, "pg");
    ok_k(&home, &["connectors", "set", "pg", "port=6543", "host=db2"]);
    let doc = standin.connector("pg").unwrap();
    assert_eq!(doc["configuration"]["port"]["value"], 6543);
    assert_eq!(doc["configuration"]["host"]["value"], "db2");
    assert_eq!(doc["status"], "configured");
    let r = run(
        &mut with_key(&home),
        &["connectors", "set", "pg", "port=70000"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("port") && r.stderr.contains("less_than"),
        "{}",
        r.stderr
    );
    assert_eq!(
        standin.connector("pg").unwrap()["configuration"]["port"]["value"],
        6543
    );
    // syncdeck's own `cursor_column` is not among Python's fields, so `create` did not write
    // it; `set` adds it whole (every property Python's `prepare` checks, not required).
    assert!(
        doc["configuration"].get("cursor_column").is_none(),
        "{doc:#}"
    );
    ok_k(
        &home,
        &["connectors", "set", "pg", "cursor_column=updated_at"],
    );
    let doc = standin.connector("pg").unwrap();
    let field = &doc["configuration"]["cursor_column"];
    assert_eq!(field["value"], "updated_at", "{doc:#}");
    assert_eq!(field["required"], false, "{field:#}");
    assert_eq!(field["ui_restrictions"], json!(["advanced"]), "{field:#}");
    for key in [
        "default_value",
        "depends_on",
        "display",
        "label",
        "options",
        "order",
        "required",
        "sensitive",
        "tooltip",
        "type",
        "ui_restrictions",
        "validations",
        "value",
    ] {
        assert!(field.get(key).is_some(), "{key} missing: {field:#}");
    }
    assert_eq!(
        doc["configuration"]["port"]["value"], 6543,
        "the rest is kept"
    );

    let job = json_of_k(&home, &["jobs", "start", "pg"]);
    let job_id = job["id"].as_str().unwrap();
    assert_eq!(standin.sync_job(job_id).unwrap()["status"], "pending");
    ok_k(&home, &["jobs", "cancel", job_id]);
    assert_eq!(standin.sync_job(job_id).unwrap()["status"], "canceled");
    let jobs = ok_k(&home, &["jobs", "list", "--connector", "pg"]);
    assert!(jobs.contains(job_id), "{jobs}");
    ok_k(&home, &["connectors", "delete", "fs"]);
    assert_eq!(standin.connector("fs").unwrap()["deleted"], true);

    // Kibana.
    let types = ok_k(&home, &["kibana", "types"]);
    assert!(types.contains(".index"), "{types}");
    let created = json_of_k(
        &home,
        &[
            "kibana",
            "create-index",
            "audit",
            "--index",
            "audit-log",
            "--refresh",
        ],
    );
    let kid = created["id"].as_str().unwrap().to_string();
    let listed = ok_k(&home, &["kibana", "list"]);
    assert!(
        listed.contains("audit") && listed.contains("audit-log"),
        "{listed}"
    );
    ok_k(
        &home,
        &["kibana", "execute", &kid, "--doc", r#"{"message":"hello"}"#],
    );
    let ndjson = home.path("docs.ndjson");
    std::fs::write(&ndjson, "{\"message\":\"a\"}\n{\"message\":\"b\"}\n").unwrap();
    ok_k(
        &home,
        &[
            "kibana",
            "execute",
            &kid,
            "--file",
            ndjson.to_str().unwrap(),
        ],
    );
    assert_eq!(standin.index_docs("audit-log").len(), 3);
    ok_k(&home, &["kibana", "delete", &kid]);
    let r = run(&mut with_key(&home), &["kibana", "delete", &kid]);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

fn json_of_k(home: &Home, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok_k(home, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

#[test]
fn read_only_refuses_every_mutation() {
    let standin = authed_standin(1);
    let home = Home::new();
    stand_in_config(&home, &standin, "");
    ok_k(
        &home,
        &[
            "connectors",
            "create",
            "ro",
            "--service-type",
            "directory",
            "--index-name",
            "ro-index",
        ],
    );
    seed_sensitive_config(&standin, "ro");
    let job = json_of_k(&home, &["jobs", "start", "ro"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = standin.connector("ro").unwrap();
    let mutations: Vec<Vec<&str>> = vec![
        vec![
            "connectors",
            "create",
            "x",
            "--service-type",
            "directory",
            "--index-name",
            "x",
        ],
        vec!["connectors", "delete", "ro"],
        vec!["connectors", "set", "ro", "port=1"],
        vec!["jobs", "start", "ro"],
        vec!["jobs", "cancel", &job],
        vec!["kibana", "create-index", "k", "--index", "k"],
        vec!["kibana", "execute", "k", "--doc", "{}"],
        vec!["kibana", "delete", "k"],
    ];
    for (how, extra) in [("flag", None), ("profile", Some("read_only = true"))] {
        if let Some(extra) = extra {
            stand_in_config(&home, &standin, extra);
        }
        for args in &mutations {
            let mut all = args.clone();
            if how == "flag" {
                all.push("--read-only");
            }
            let r = run(&mut with_key(&home), &all);
            assert_eq!(
                r.code, 1,
                "{how}: {all:?} was not refused: {}{}",
                r.stdout, r.stderr
            );
            assert!(
                r.stderr.contains("read-only"),
                "{how}: {all:?}: {}",
                r.stderr
            );
        }
    }
    assert_eq!(standin.connector("ro").unwrap(), before);
    assert!(standin.connector("x").is_none());
    assert_eq!(standin.sync_job(&job).unwrap()["status"], "pending");
    // Reads still work.
    ok_k(&home, &["connectors", "list"]);
}

#[test]
fn exit_codes_for_unreachable_and_config_errors() {
    let home = Home::new();
    let (_refusing, port) = crate::ports::refused_port();
    let r = run(
        &mut home.cmd(),
        &[
            "--es",
            &format!("http://127.0.0.1:{port}"),
            "connectors",
            "list",
        ],
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);

    let path = home.write_config("[profiles.p]\nread_only = maybe\n");
    let r = run(&mut home.cmd(), &["connectors", "list"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(path.to_str().unwrap()) && r.stderr.contains(":2"),
        "{}",
        r.stderr
    );

    let r = run(&mut home.cmd(), &["connectors", "frobnicate"]);
    assert_eq!(r.code, 2);
}

#[test]
fn completions_print_a_script() {
    let home = Home::new();
    let out = ok(&home, &["completions", "bash"]);
    assert!(
        out.contains("syncdeck") && out.contains("connectors"),
        "{out}"
    );
}

/// Seeds a recognisable API key and sensitive configuration value, runs every command, and
/// checks neither appears in any output or in the log file, unless `--reveal` is asked for.
#[test]
fn no_secret_reaches_output_or_log_without_reveal() {
    let standin = authed_standin(2);
    let home = Home::new();
    stand_in_config(&home, &standin, "");
    ok_k(
        &home,
        &[
            "connectors",
            "create",
            "sec",
            "--service-type",
            "postgresql",
            "--index-name",
            "sec-index",
        ],
    );
    seed_sensitive_config(&standin, "sec");
    let job = json_of_k(&home, &["jobs", "start", "sec"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kid = json_of_k(
        &home,
        &["kibana", "create-index", "k", "--index", "k-index"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec![],
        vec!["check"],
        vec!["connectors", "list"],
        vec!["connectors", "show", "sec"],
        vec!["connectors", "config", "sec"],
        vec!["connectors", "set", "sec", "port=1234"],
        vec!["connectors", "set", "sec", "port=0"],
        vec!["jobs", "list"],
        vec!["jobs", "show", &job],
        vec!["kibana", "list"],
        vec!["kibana", "types"],
        vec!["kibana", "execute", &kid, "--doc", r#"{"a":1}"#],
        vec!["connectors", "show", "missing"],
    ];
    for args in &commands {
        for json in [false, true] {
            let mut all = args.clone();
            if json {
                all.push("--json");
            }
            let r = run(&mut with_key(&home), &all);
            for secret in [API_KEY, SENSITIVE_VALUE] {
                assert!(
                    !r.stdout.contains(secret) && !r.stderr.contains(secret),
                    "{all:?} leaked a secret:\n{}{}",
                    r.stdout,
                    r.stderr
                );
            }
        }
    }
    let log = home.log_text();
    assert!(log.len() > 100, "the log file was not written: {log}");
    assert!(
        !log.contains(API_KEY) && !log.contains(SENSITIVE_VALUE),
        "the log leaked a secret"
    );
    // And --reveal does reveal (the mask is not a broken value).
    let revealed = ok_k(&home, &["connectors", "config", "sec", "--reveal"]);
    assert!(revealed.contains(SENSITIVE_VALUE), "{revealed}");
    assert!(
        !home.log_text().contains(SENSITIVE_VALUE),
        "reveal wrote the value to the log"
    );
}

/// (service type, connector name, `key=value` settings, indexed, dead-lettered, exit code)
type SourceCase = (&'static str, &'static str, Vec<String>, u64, u64, i32);

/// Every local source syncs through the real `syncdeck sync` command into both backends:
/// the embedded default and the stand-in cluster. (`http_api` needs a live mock API and is
/// synced through the engine into both backends in tests/http_api.rs.)
#[test]
fn sync_command_runs_each_source_into_both_backends() {
    let standin = authed_standin(1);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/airbyte/fake_source.py"
    );
    for cluster in [false, true] {
        let home = Home::new();
        if cluster {
            stand_in_config(&home, &standin, "");
        }
        let data = home.path("input");
        std::fs::create_dir_all(data.join("docs")).unwrap();
        std::fs::write(data.join("docs/a.md"), "# Runbook\nRestart the worker.").unwrap();
        std::fs::write(data.join("docs/b.txt"), "plain notes").unwrap();
        let ndjson = data.join("orders.ndjson");
        std::fs::write(
            &ndjson,
            "{\"id\":\"o1\",\"total\":5}\nnot json\n{\"id\":\"o2\",\"total\":7}\n",
        )
        .unwrap();
        let tag = if cluster { "es" } else { "emb" };
        let cases: Vec<SourceCase> = vec![
            (
                "generator",
                "gen",
                vec!["count=50".into(), "rate=0".into(), "poison_every=0".into()],
                50,
                0,
                0,
            ),
            (
                "ndjson",
                "nd",
                vec![format!("path={}", ndjson.display())],
                2,
                1,
                4,
            ),
            (
                "directory",
                "dir",
                vec![format!("path={}", data.join("docs").display())],
                2,
                0,
                0,
            ),
            (
                "external",
                "ext",
                vec![
                    "command=python3".into(),
                    format!("args={script}"),
                    "stream=users".into(),
                    r#"config={"count": 4, "token": "t", "mode": "normal"}"#.into(),
                ],
                4,
                0,
                0,
            ),
        ];
        for (service, name, values, indexed, dead, code) in cases {
            let id = format!("{name}-{tag}");
            let index = format!("{name}-{tag}-index");
            ok_k(
                &home,
                &[
                    "connectors",
                    "create",
                    &id,
                    "--service-type",
                    service,
                    "--index-name",
                    &index,
                ],
            );
            let mut set = vec!["connectors", "set", id.as_str()];
            set.extend(values.iter().map(String::as_str));
            ok_k(&home, &set);
            let r = run(&mut with_key(&home), &["sync", &id, "--json"]);
            assert_eq!(r.code, code, "{service} on {tag}: {}{}", r.stdout, r.stderr);
            // Progress lines come first, one compact JSON each; the summary is the last document.
            let at = r
                .stdout
                .rfind("{\n  \"report\"")
                .unwrap_or_else(|| panic!("{service} on {tag}: no summary: {}", r.stdout));
            let summary: Value = serde_json::from_str(&r.stdout[at..]).unwrap();
            let report = &summary["report"];
            assert_eq!(report["end"], "completed", "{service} on {tag}: {summary}");
            assert_eq!(
                report["counters"]["indexed"], indexed,
                "{service} on {tag}: {summary}"
            );
            assert_eq!(
                report["counters"]["dead_lettered"], dead,
                "{service} on {tag}: {summary}"
            );
            assert_eq!(
                report["total_document_count"], indexed,
                "{service} on {tag}: {summary}"
            );
            if cluster {
                assert_eq!(
                    standin.index_docs(&index).len() as u64,
                    indexed,
                    "{service}: stand-in index"
                );
            }
        }
    }
}

/// A long `sync --json` of many documents keeps each progress line within 4 KiB (counters,
/// rates and the last few outcomes, not the whole recent list), and `--events` writes every
/// document of the sync exactly once, with its final outcome.
#[test]
fn sync_json_progress_stays_lean_and_events_hold_every_document_once() {
    let home = Home::new();
    // Paced at 2000 docs/s, so the sync runs for seconds and prints several progress lines;
    // every 500th document is refused by the index's mapping (a dead letter with a reason).
    ok(
        &home,
        &[
            "connectors",
            "set",
            "demo-generator",
            "count=6000",
            "rate=2000",
            "poison_every=500",
            "doc_bytes=256",
        ],
    );
    let events = home.path("events.ndjson");
    let r = run(
        &mut home.cmd(),
        &[
            "sync",
            "demo-generator",
            "--json",
            "--events",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 4, "dead letters: {}{}", r.stdout, r.stderr);
    for line in r.stdout.lines() {
        assert!(line.len() <= 4096, "a {}-byte line: {line}", line.len());
    }
    let progress: Vec<Value> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"progress\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(progress.len() >= 2, "{}", r.stdout);
    for p in &progress {
        let p = &p["progress"];
        assert!(p["counters"]["seen"].is_u64(), "{p}");
        assert!(p["docs_per_sec"].is_number(), "{p}");
        assert!(p.get("recent").is_none() && p.get("rates").is_none(), "{p}");
        assert!(p["last"].as_array().unwrap().len() <= 4, "{p}");
    }
    let at = r.stdout.rfind("{\n  \"report\"").expect("a summary");
    let summary: Value = serde_json::from_str(&r.stdout[at..]).unwrap();
    let counters = &summary["report"]["counters"];
    let indexed = counters["indexed"].as_u64().unwrap() + counters["updated"].as_u64().unwrap();
    let dead = counters["dead_lettered"].as_u64().unwrap();
    assert_eq!((indexed, dead), (5988, 12), "{summary}");
    assert_eq!(summary["events"]["lines"], 6000, "{summary}");
    assert!(summary["final"]["last"].as_array().unwrap().len() <= 4);

    let text = std::fs::read_to_string(&events).unwrap();
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut by_outcome: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        *seen
            .entry(e["id"].as_str().unwrap().to_string())
            .or_default() += 1;
        *by_outcome
            .entry(e["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert!(e["bytes"].is_u64() && e["latency_ms"].is_u64(), "{line}");
        if e["outcome"] == "dead_lettered" {
            assert!(
                e["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{line}"
            );
        }
    }
    assert_eq!(seen.len(), 6000, "every document has a line");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "documents with more than one line: {twice:?}"
    );
    assert_eq!(
        by_outcome.get("indexed").copied().unwrap_or(0)
            + by_outcome.get("updated").copied().unwrap_or(0),
        indexed
    );
    assert_eq!(by_outcome.get("dead_lettered").copied(), Some(12));
}
