//! `syncdeck connectors spec ID` end to end: the real binary, the embedded default backend,
//! and the project's fake Airbyte program (tests/fixtures/airbyte/fake_source.py). The
//! spec's fields join the configuration with their sensitivity, values already set are kept,
//! `--dry-run` saves nothing, a read-only profile is refused, errors name the program and
//! exit as the CLI's error module says, and no secret reaches the output or the log.

use crate::external_util;

use assert_cmd::Command;
use external_util::{TOKEN, script};
use serde_json::Value;
use tempfile::TempDir;

/// What the operator sets as the program's secret field.
const SENSITIVE: &str = "sekr1t-spec-field-value-5150";

/// An isolated home (config, data and state dirs) for the embedded default backend.
struct Home {
    dir: TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = Command::cargo_bin("syncdeck")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SYNCDECK_DATA_DIR", self.dir.path().join("data"))
            .env("SYNCDECK_STATE_DIR", self.dir.path().join("state"))
            .env("SYNCDECK_LOG", "trace")
            .timeout(std::time::Duration::from_secs(60))
            .args(args)
            .output()
            .unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // Only `--reveal` may print a secret.
        let secrets: &[&str] = if args.contains(&"--reveal") {
            &[]
        } else {
            &[TOKEN, SENSITIVE]
        };
        for secret in secrets {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{args:?} printed a secret:\n{}{}",
                run.stdout,
                run.stderr
            );
        }
        run
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "syncdeck {args:?} failed:\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `connectors config ID --json` as key → row.
    fn config(&self, id: &str) -> serde_json::Map<String, Value> {
        let rows = self.json(&["connectors", "config", id]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].as_str().unwrap().to_string(), r.clone()))
            .collect()
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        let dir = self.dir.path().join("state").join("logs");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    }
}

/// An `external` connector running the fake program with its token in the secret
/// environment.
fn fake_connector(home: &Home, id: &str) {
    home.ok(&[
        "connectors",
        "create",
        id,
        "--service-type",
        "external",
        "--index-name",
        "search-ext",
    ]);
    let args = format!("args={}", script());
    let secret_env = format!("secret_env=FAKE_TOKEN={TOKEN}");
    home.ok(&[
        "connectors",
        "set",
        id,
        "command=python3",
        &args,
        &secret_env,
    ]);
}

#[test]
fn spec_fields_join_the_configuration_with_their_sensitivity() {
    let home = Home::new();
    fake_connector(&home, "ext");

    // A dry run shows the fields and saves nothing.
    let dry = home.json(&["connectors", "spec", "ext", "--dry-run"]);
    assert_eq!(dry["result"], "dry_run");
    assert!(!home.config("ext").contains_key("config.count"));

    let out = home.ok(&["connectors", "spec", "ext"]);
    assert!(
        out.contains("added 6 field(s)") && out.contains("(saved)"),
        "{out}"
    );
    assert!(out.contains("required and empty: config.token"), "{out}");
    let config = home.config("ext");
    let count = &config["config.count"];
    assert_eq!(
        (&count["label"], &count["type"], &count["value"]),
        (
            &Value::from("Records"),
            &Value::from("int"),
            &Value::from(3)
        )
    );
    let token = &config["config.token"];
    assert_eq!(
        (&token["sensitive"], &token["required"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(config["config.mode"]["value"], "normal");
    assert_eq!(
        config["command"]["value"], "python3",
        "values already set stay"
    );

    // Values set since are kept by a second load, and never printed.
    home.ok(&[
        "connectors",
        "set",
        "ext",
        &format!("config.token={SENSITIVE}"),
        "config.count=2",
    ]);
    let again = home.json(&["connectors", "spec", "ext"]);
    assert_eq!(again["result"], "unchanged", "{again}");
    assert_eq!(again["added"], Value::Array(vec![]));
    let fields = again["fields"].as_array().unwrap();
    let field = |key: &str| fields.iter().find(|f| f["key"] == key).unwrap().clone();
    assert_eq!(field("config.count")["value"], 2);
    assert_eq!(field("config.count")["state"], "kept");
    assert_eq!(field("config.token")["sensitive"], true);
    let human = home.ok(&["connectors", "spec", "ext"]);
    assert!(
        human.contains("config.token") && human.contains("••"),
        "{human}"
    );
    let revealed = home.ok(&["connectors", "config", "ext", "--reveal"]);
    assert!(
        revealed.contains(SENSITIVE),
        "the value was not kept: {revealed}"
    );

    let log = home.log_text();
    assert!(log.contains("loaded from the spec"), "not logged:\n{log}");
    for secret in [TOKEN, SENSITIVE] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

#[test]
fn read_only_profiles_and_bad_programs_are_refused_with_their_exit_codes() {
    let home = Home::new();
    fake_connector(&home, "ext");
    let before = home.config("ext");

    let r = home.run(&["--read-only", "connectors", "spec", "ext"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
    assert_eq!(home.config("ext"), before, "nothing was saved");
    // A dry run changes nothing, so a read-only profile may still look.
    let dry = home.json(&["--read-only", "connectors", "spec", "ext", "--dry-run"]);
    assert_eq!(dry["result"], "dry_run");

    // Not an external connector: a usage error.
    let r = home.run(&["connectors", "spec", "demo-directory"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("service type 'directory'"),
        "{}",
        r.stderr
    );

    // A program that does not exist: the error names it and why.
    home.ok(&["connectors", "set", "ext", "command=no-such-program-xyz"]);
    let r = home.run(&["connectors", "spec", "ext"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot run 'no-such-program-xyz': No such file or directory"),
        "{}",
        r.stderr
    );

    // A program that fails: its exit status and its stderr (secrets masked).
    home.ok(&[
        "connectors",
        "set",
        "ext",
        "command=python3",
        "args=-c,import sys; sys.exit(3)",
    ]);
    let r = home.run(&["connectors", "spec", "ext"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("'python3 spec' failed with exit status 3"),
        "{}",
        r.stderr
    );

    // No program at all: the operator's to set (exit 2), and the message says how.
    home.ok(&[
        "connectors",
        "create",
        "empty",
        "--service-type",
        "external",
        "--index-name",
        "e",
    ]);
    let r = home.run(&["connectors", "spec", "empty"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("'command'") && r.stderr.contains("connectors set empty command="),
        "{}",
        r.stderr
    );
    assert_eq!(home.config("ext")["command"]["value"], "python3");
}
