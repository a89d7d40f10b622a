//! Configuration loading end to end: one fixture per failure mode, each checked against the
//! exact message (file, line, field); a full valid example; overrides from the environment
//! and flags; the embedded default; secrets (`env:`, `file:`, file permissions, never in
//! Debug output); and no panic on any input.

use proptest::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use syncdeck::config::{
    self, Auth, BreakerSettings, ConfigError, EngineSettings, EsSettings, KibanaSettings,
    LoadedConfig, Overrides, ResolvedProfile, SniffSettings, TlsSettings, UiSettings,
};
use syncdeck::paths::Paths;
use syncdeck::secret::Secret;
use url::Url;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// Paths with `config_file` given explicitly and data/state dirs that are never touched.
fn paths_for(config_file: PathBuf, explicit: bool) -> Paths {
    Paths {
        config_dir: config_file.parent().unwrap().to_path_buf(),
        config_file,
        config_file_explicit: explicit,
        data_dir: PathBuf::from("/nonexistent/data"),
        state_dir: PathBuf::from("/nonexistent/state"),
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

const TEST_ENV: &[(&str, &str)] = &[
    ("TEST_ES_API_KEY", "api-key-from-env"),
    ("TEST_KIBANA_TOKEN", "kibana-token-from-env"),
    ("TEST_ES_PASSWORD", "dev-password-from-env"),
    ("ES_API_KEY", "k"),
    ("ES_PASSWORD", "p"),
];

fn load_fixture(name: &str) -> Result<LoadedConfig, ConfigError> {
    let paths = paths_for(fixture(name), true);
    config::load(&paths, &Overrides::default(), &env_of(TEST_ENV))
}

/// Loads a failing fixture and returns its message.
fn error_of(name: &str) -> String {
    match load_fixture(name) {
        Ok(loaded) => panic!("{name} loaded: {loaded:?}"),
        Err(err) => err.to_string(),
    }
}

fn at(name: &str, line: usize, field: &str, reason: &str) -> String {
    format!("{}:{line}: {field}: {reason}", fixture(name).display())
}

#[test]
fn syntax_error() {
    assert_eq!(
        error_of("syntax_error.toml"),
        at(
            "syntax_error.toml",
            4,
            "profiles.prod.elasticsearch.request_timeout",
            "string values must be quoted, expected literal string"
        )
    );
}

#[test]
fn unknown_field() {
    assert_eq!(
        error_of("unknown_field.toml"),
        at(
            "unknown_field.toml",
            6,
            "profiles.prod.elasticsearch.sniff.on_failure",
            "unknown field 'on_failure', expected one of 'on_start', 'on_node_failure', 'interval'"
        )
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        error_of("bad_duration.toml"),
        at(
            "bad_duration.toml",
            12,
            "profiles.prod.elasticsearch.request_timeout",
            "'30 parsecs' is not a duration (use e.g. 500ms, 30s, 5m)"
        )
    );
}

#[test]
fn skip_unchanged_must_be_a_boolean() {
    assert_eq!(
        error_of("skip_unchanged_not_bool.toml"),
        at(
            "skip_unchanged_not_bool.toml",
            6,
            "profiles.local.engine.skip_unchanged",
            "invalid type: string \"yes\", expected a boolean"
        )
    );
}

#[test]
fn bad_url() {
    assert_eq!(
        error_of("bad_url.toml"),
        at(
            "bad_url.toml",
            4,
            "profiles.prod.elasticsearch.nodes[1]",
            "'ftp://es2:9200' is not an http or https URL"
        )
    );
}

#[test]
fn two_auth_methods() {
    assert_eq!(
        error_of("two_auth_methods.toml"),
        at(
            "two_auth_methods.toml",
            4,
            "profiles.prod.elasticsearch.username",
            "conflicts with 'api_key': set only one of api_key, username + password, bearer_token"
        )
    );
}

#[test]
fn unknown_default_profile() {
    assert_eq!(
        error_of("unknown_default_profile.toml"),
        at(
            "unknown_default_profile.toml",
            1,
            "default_profile",
            "no profile named 'production' (known profiles: prod, staging, embedded)"
        )
    );
}

#[test]
fn env_reference_unset() {
    assert_eq!(
        error_of("env_unset.toml"),
        at(
            "env_unset.toml",
            3,
            "profiles.prod.elasticsearch.api_key",
            "environment variable 'SYNCDECK_TEST_UNSET_VARIABLE' is not set"
        )
    );
}

#[test]
fn file_reference_missing() {
    let missing = fixtures().join("secrets/missing-password");
    assert_eq!(
        error_of("file_missing.toml"),
        at(
            "file_missing.toml",
            4,
            "profiles.prod.elasticsearch.password",
            &format!("secret file '{}' does not exist", missing.display())
        )
    );
}

#[test]
fn bad_fingerprint() {
    assert_eq!(
        error_of("bad_fingerprint.toml"),
        at(
            "bad_fingerprint.toml",
            5,
            "profiles.prod.elasticsearch.tls.fingerprint",
            "'AB:CD:EF' is not a SHA-256 fingerprint (64 hex digits, colons optional)"
        )
    );
}

#[test]
fn compatible_with_7() {
    assert_eq!(
        error_of("compatible_with_7.toml"),
        at(
            "compatible_with_7.toml",
            3,
            "profiles.prod.elasticsearch.compatible_with",
            "'7' is not supported (use 8 or 9)"
        )
    );
}

#[test]
fn failure_rate_above_one() {
    assert_eq!(
        error_of("failure_rate_2.toml"),
        at(
            "failure_rate_2.toml",
            6,
            "profiles.prod.breaker.failure_rate",
            "'2.0' is out of range: use a number greater than 0 and at most 1 (e.g. 0.5)"
        )
    );
}

#[test]
fn batch_over_the_bulk_limit() {
    assert_eq!(
        error_of("batch_too_large.toml"),
        at(
            "batch_too_large.toml",
            2,
            "profiles.prod.engine.batch_max_bytes",
            "'200MB' is over the 100MB limit of a bulk request"
        )
    );
}

#[test]
fn retry_settings_that_once_overflowed_are_refused_naming_the_field() {
    assert_eq!(
        error_of("retry_overflow.toml"),
        at(
            "retry_overflow.toml",
            3,
            "profiles.prod.engine.retry_max",
            "'5000000000h' is too long: use at most 30d"
        )
    );
}

#[test]
fn counts_beyond_their_bounds_are_refused_naming_the_field() {
    assert_eq!(
        error_of("item_retries_huge.toml"),
        at(
            "item_retries_huge.toml",
            2,
            "profiles.prod.engine.item_max_retries",
            "'4000000000' is too large: use at most 100"
        )
    );
    assert_eq!(
        error_of("max_in_flight_huge.toml"),
        at(
            "max_in_flight_huge.toml",
            2,
            "profiles.prod.engine.max_in_flight",
            "'100000' is too large: use at most 128"
        )
    );
    assert_eq!(
        error_of("max_retries_huge.toml"),
        at(
            "max_retries_huge.toml",
            3,
            "profiles.prod.elasticsearch.max_retries",
            "'10000000' is too large: use at most 1000"
        )
    );
    assert_eq!(
        error_of("idle_shorter_than_check_ins.toml"),
        at(
            "idle_shorter_than_check_ins.toml",
            7,
            "profiles.prod.engine.idle_job_timeout",
            "'20s' is too short: use at least 3 × check_interval (30s), or the jobs of live \
             workers are taken for dead"
        )
    );
    assert_eq!(
        error_of("response_bytes_tiny.toml"),
        at(
            "response_bytes_tiny.toml",
            3,
            "profiles.prod.elasticsearch.max_response_bytes",
            "'1KB' is too small: use at least 16MB"
        )
    );
}

/// The configuration that panicked `runner::heartbeat` now stops `syncdeck` at load: exit 2,
/// the file, line and field on stderr, no panic.
#[test]
fn the_binary_exits_2_naming_the_field_for_the_overflowing_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::copy(fixture("retry_overflow.toml"), &config).unwrap();
    let output = assert_cmd::Command::cargo_bin("syncdeck")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("SYNCDECK_CONFIG", &config)
        .env("SYNCDECK_DATA_DIR", dir.path().join("data"))
        .env("SYNCDECK_STATE_DIR", dir.path().join("state"))
        .args(["connectors", "list"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config.toml:3") && stderr.contains("profiles.prod.engine.retry_max"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn username_without_password() {
    assert_eq!(
        error_of("username_without_password.toml"),
        at(
            "username_without_password.toml",
            3,
            "profiles.prod.kibana.username",
            "needs a password (or use api_key or bearer_token)"
        )
    );
}

#[test]
fn missing_nodes_points_at_the_section() {
    assert_eq!(
        error_of("missing_nodes.toml"),
        at(
            "missing_nodes.toml",
            1,
            "profiles.prod.elasticsearch.nodes",
            "is missing: list the node URLs, e.g. nodes = [\"https://localhost:9200\"] (or set \
             SYNCDECK_ES_URL)"
        )
    );
}

#[test]
fn explicit_config_must_exist_but_implicit_may_not() {
    let missing = fixture("no-such-file.toml");
    let err = config::load(
        &paths_for(missing.clone(), true),
        &Overrides::default(),
        &env_of(&[]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the configuration file does not exist",
            missing.display()
        )
    );
    let loaded = config::load(
        &paths_for(missing, false),
        &Overrides::default(),
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(loaded.profile.name, "embedded");
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, b"[ui]\ntheme = \"\xff\"\n").unwrap();
    let err = config::load(
        &paths_for(file.clone(), true),
        &Overrides::default(),
        &env_of(&[]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: is not valid UTF-8", file.display())
    );
}

fn expected_prod() -> ResolvedProfile {
    let tls = TlsSettings {
        ca_file: Some(fixtures().join("certs/test-ca.pem")),
        verify: true,
        fingerprint: Some("abcdef01".repeat(8)),
    };
    let es = EsSettings {
        nodes: vec![
            Url::parse("https://es1:9200").unwrap(),
            Url::parse("https://es2:9200/").unwrap(),
        ],
        auth: Auth::ApiKey(Secret::new("api-key-from-env")),
        tls: tls.clone(),
        request_timeout: Duration::from_secs(45),
        max_retries: 5,
        retry_on_timeout: true,
        sniff: SniffSettings {
            on_start: true,
            on_node_failure: true,
            interval: Some(Duration::from_secs(300)),
        },
        gzip: true,
        compatible_with: 9,
        dead_backoff_base: Duration::from_secs(2),
        dead_backoff_max: Duration::from_secs(60),
        max_response_bytes: 128 << 20,
    };
    let kibana = KibanaSettings {
        url: Url::parse("https://kibana:5601").unwrap(),
        space: Some("ops".into()),
        auth: Auth::Bearer(Secret::new("kibana-token-from-env")),
        request_timeout: Duration::from_secs(10),
        tls,
    };
    let engine = EngineSettings {
        batch_max_docs: 500,
        batch_max_bytes: 2 << 20,
        batch_linger: Duration::from_millis(250),
        max_in_flight: 2,
        queue_max_bytes: 8 << 20,
        item_max_retries: 3,
        item_retry_budget: Duration::from_secs(120),
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_secs(5),
        dlq_max_entries: 5000,
        dlq_max_document_bytes: syncdeck::engine::dlq::DEFAULT_MAX_DOCUMENT_BYTES,
        stats_interval: Duration::from_secs(15),
        check_interval: Duration::from_secs(3),
        idle_job_timeout: Duration::from_secs(600),
        heartbeat: Duration::from_secs(300),
        job_cleanup_interval: Duration::from_secs(300),
        exclude_fields: vec!["_attachment".into()],
        hash_fields: vec!["email".into()],
        skip_unchanged: false,
    };
    let breaker = BreakerSettings {
        window: 10,
        failure_rate: 0.25,
        min_calls: 4,
        consecutive_failures: 3,
        open_for: Duration::from_secs(2),
        half_open_probes: 1,
        max_open: Duration::from_secs(60),
    };
    ResolvedProfile {
        name: "prod".into(),
        elasticsearch: Some(es),
        kibana: Some(kibana),
        read_only: true,
        engine,
        breaker,
    }
}

#[test]
fn full_example_parses_into_the_expected_profile() {
    let loaded = load_fixture("full.toml").unwrap();
    assert_eq!(loaded.profile, expected_prod());
    assert_eq!(loaded.profile_names, ["dev", "local", "prod", "embedded"]);
    assert_eq!(loaded.source, Some(fixture("full.toml")));
    assert_eq!(
        loaded.ui,
        UiSettings {
            refresh_interval: Duration::from_millis(500),
            theme: "solarized-dark".into(),
            mouse: true
        }
    );
}

#[test]
fn kibana_defaults_to_the_elasticsearch_credentials() {
    let paths = paths_for(fixture("full.toml"), true);
    let flags = Overrides {
        profile: Some("dev".into()),
        ..Default::default()
    };
    let loaded = config::load(&paths, &flags, &env_of(TEST_ENV)).unwrap();
    let es_auth = Auth::Basic {
        username: "elastic".into(),
        password: Secret::new("dev-password-from-env"),
    };
    let es = loaded.profile.elasticsearch.unwrap();
    assert_eq!(es.auth, es_auth);
    assert_eq!(
        es.request_timeout,
        Duration::from_secs(30),
        "defaults fill the rest"
    );
    let kibana = loaded.profile.kibana.unwrap();
    assert_eq!(kibana.auth, es_auth);
    assert_eq!(kibana.space, None);
    assert!(!loaded.profile.read_only);
}

#[test]
fn a_profile_without_a_cluster_is_embedded() {
    let paths = paths_for(fixture("full.toml"), true);
    let flags = Overrides {
        profile: Some("local".into()),
        ..Default::default()
    };
    let loaded = config::load(&paths, &flags, &env_of(TEST_ENV)).unwrap();
    assert_eq!(loaded.profile.name, "local");
    assert_eq!(loaded.profile.elasticsearch, None);
    assert_eq!(loaded.profile.engine, EngineSettings::default());
}

#[test]
fn environment_overrides_the_file() {
    let paths = paths_for(fixture("full.toml"), true);
    let mut env: Vec<(&str, &str)> = TEST_ENV.to_vec();
    env.extend([
        ("SYNCDECK_PROFILE", "dev"),
        ("SYNCDECK_ES_URL", "http://a:9200, http://b:9200"),
        ("SYNCDECK_ES_API_KEY", "env-api-key"),
        ("SYNCDECK_KIBANA_URL", "http://kb:5601"),
    ]);
    let loaded = config::load(&paths, &Overrides::default(), &env_of(&env)).unwrap();
    assert_eq!(loaded.profile.name, "dev");
    let es = loaded.profile.elasticsearch.unwrap();
    let hosts: Vec<_> = es.nodes.iter().map(|u| u.host_str().unwrap()).collect();
    assert_eq!(hosts, ["a", "b"]);
    assert_eq!(es.auth, Auth::ApiKey(Secret::new("env-api-key")));
    let kibana = loaded.profile.kibana.unwrap();
    assert_eq!(kibana.url.as_str(), "http://kb:5601/");
    assert_eq!(kibana.auth, Auth::ApiKey(Secret::new("env-api-key")));
}

#[test]
fn flags_override_environment_and_file() {
    let paths = paths_for(fixture("full.toml"), true);
    let mut env: Vec<(&str, &str)> = TEST_ENV.to_vec();
    env.extend([
        ("SYNCDECK_PROFILE", "prod"),
        ("SYNCDECK_ES_URL", "http://env:9200"),
    ]);
    let flags = Overrides {
        profile: Some("dev".into()),
        es_urls: vec!["http://flag:9200".into()],
        kibana_url: Some("http://flagkb:5601".into()),
        read_only: true,
    };
    let loaded = config::load(&paths, &flags, &env_of(&env)).unwrap();
    assert_eq!(loaded.profile.name, "dev");
    assert!(loaded.profile.read_only);
    let es = loaded.profile.elasticsearch.unwrap();
    assert_eq!(es.nodes, [Url::parse("http://flag:9200").unwrap()]);
    assert_eq!(
        loaded.profile.kibana.unwrap().url.as_str(),
        "http://flagkb:5601/"
    );
}

#[test]
fn unknown_profile_flag_lists_the_known_ones() {
    let paths = paths_for(fixture("full.toml"), true);
    let flags = Overrides {
        profile: Some("staging".into()),
        ..Default::default()
    };
    let err = config::load(&paths, &flags, &env_of(TEST_ENV)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: --profile: no profile named 'staging' (known profiles: dev, local, prod, embedded)",
            fixture("full.toml").display()
        )
    );
}

#[test]
fn unknown_profile_variable_names_the_variable() {
    let paths = paths_for(fixture("no-such-file.toml"), false);
    let err = config::load(
        &paths,
        &Overrides::default(),
        &env_of(&[("SYNCDECK_PROFILE", "x")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "SYNCDECK_PROFILE: no profile named 'x' (known profiles: embedded); there is no \
             configuration file at '{}'",
            fixture("no-such-file.toml").display()
        )
    );
}

#[test]
fn embedded_default_without_file_env_or_flags() {
    let paths = paths_for(fixture("no-such-file.toml"), false);
    let loaded = config::load(&paths, &Overrides::default(), &env_of(&[])).unwrap();
    let expected = ResolvedProfile {
        name: "embedded".into(),
        elasticsearch: None,
        kibana: None,
        read_only: false,
        engine: EngineSettings::default(),
        breaker: BreakerSettings::default(),
    };
    assert_eq!(loaded.profile, expected);
    assert_eq!(loaded.profile_names, ["embedded"]);
    assert_eq!(loaded.source, None);
    assert_eq!(loaded.ui, UiSettings::default());
}

#[test]
fn environment_alone_makes_an_ad_hoc_profile() {
    let paths = paths_for(fixture("no-such-file.toml"), false);
    let env = env_of(&[
        ("SYNCDECK_ES_URL", "https://es:9200"),
        ("SYNCDECK_ES_USER", "elastic"),
        ("SYNCDECK_ES_PASSWORD", "changeme"),
    ]);
    let loaded = config::load(&paths, &Overrides::default(), &env).unwrap();
    assert_eq!(loaded.profile.name, "env");
    assert_eq!(loaded.profile_names, ["embedded", "env"]);
    let mut expected = EsSettings::new(vec![Url::parse("https://es:9200").unwrap()]);
    expected.auth = Auth::Basic {
        username: "elastic".into(),
        password: Secret::new("changeme"),
    };
    assert_eq!(loaded.profile.elasticsearch, Some(expected));

    // The ad-hoc profile can be asked for by name too, even beside a file with profiles.
    let paths = paths_for(fixture("full.toml"), true);
    let flags = Overrides {
        profile: Some("env".into()),
        ..Default::default()
    };
    let loaded = config::load(&paths, &flags, &env).unwrap();
    assert_eq!(loaded.profile.name, "env");
    assert_eq!(
        loaded.profile_names,
        ["dev", "local", "prod", "embedded", "env"]
    );
}

#[test]
fn credentials_without_a_url_are_an_error() {
    let paths = paths_for(fixture("no-such-file.toml"), false);
    let env = env_of(&[("SYNCDECK_ES_API_KEY", "k")]);
    let err = config::load(&paths, &Overrides::default(), &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SYNCDECK_ES_API_KEY: is set but no Elasticsearch URL is configured (set \
         SYNCDECK_ES_URL or pass --es-url)"
    );
}

#[test]
fn explicit_embedded_profile_ignores_cluster_overrides() {
    let paths = paths_for(fixture("full.toml"), true);
    let flags = Overrides {
        profile: Some("embedded".into()),
        ..Default::default()
    };
    let env = env_of(&[("SYNCDECK_ES_URL", "http://es:9200")]);
    let loaded = config::load(&paths, &flags, &env).unwrap();
    assert_eq!(loaded.profile.name, "embedded");
    assert_eq!(loaded.profile.elasticsearch, None);
}

#[test]
fn several_profiles_need_a_default() {
    let text = "[profiles.a]\n[profiles.b]\n";
    let err = config::load_str(
        text,
        Path::new("/c.toml"),
        &Overrides::default(),
        &env_of(&[]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/c.toml: default_profile: is not set and there are 2 profiles (a, b): set it, or pass \
         --profile"
    );
}

#[test]
fn bad_env_url_names_the_variable() {
    let paths = paths_for(fixture("full.toml"), true);
    let mut env: Vec<(&str, &str)> = TEST_ENV.to_vec();
    env.push(("SYNCDECK_ES_URL", "es1:9200"));
    let err = config::load(&paths, &Overrides::default(), &env_of(&env)).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("SYNCDECK_ES_URL"));
    assert_eq!(err.file, None);
}

#[cfg(unix)]
mod permissions {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    const PLAIN: &str = "[profiles.prod.elasticsearch]\nnodes = [\"https://es1:9200\"]\n\
                         username = \"elastic\"\npassword = \"hunter2-plain\"\n";

    #[test]
    fn world_readable_plain_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        write_with_mode(&file, PLAIN, 0o644);
        let err = config::load(
            &paths_for(file.clone(), true),
            &Overrides::default(),
            &env_of(&[]),
        )
        .unwrap_err();
        let shown = file.display();
        assert_eq!(
            err.to_string(),
            format!(
                "{shown}:4: profiles.prod.elasticsearch.password: is a plain-text secret, but \
                 the file is readable by others (mode 0644); run 'chmod 600 {shown}' or use \
                 env:/file: references"
            )
        );
        assert!(!err.to_string().contains("hunter2"));

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded =
            config::load(&paths_for(file, true), &Overrides::default(), &env_of(&[])).unwrap();
        let auth = loaded.profile.elasticsearch.unwrap().auth;
        assert_eq!(
            auth,
            Auth::Basic {
                username: "elastic".into(),
                password: Secret::new("hunter2-plain")
            }
        );
    }

    #[test]
    fn file_secrets_are_relative_trimmed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        let secret = dir.path().join("secrets/es");
        write_with_mode(&secret, "file-api-key\n", 0o600);
        let file = dir.path().join("config.toml");
        let text = "[profiles.prod.elasticsearch]\nnodes = [\"https://es1:9200\"]\n\
                    api_key = \"file:secrets/es\"\n";
        // The config itself may be world-readable: it holds no plain secret.
        write_with_mode(&file, text, 0o644);
        let paths = paths_for(file.clone(), true);
        let loaded = config::load(&paths, &Overrides::default(), &env_of(&[])).unwrap();
        let auth = loaded.profile.elasticsearch.unwrap().auth;
        assert_eq!(auth, Auth::ApiKey(Secret::new("file-api-key")));

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = config::load(&paths, &Overrides::default(), &env_of(&[])).unwrap_err();
        let shown = secret.display();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3: profiles.prod.elasticsearch.api_key: secret file '{shown}' is readable \
                 by others (mode 0640); run 'chmod 600 {shown}'",
                file.display()
            )
        );
    }
}

#[test]
fn debug_output_never_shows_a_secret() {
    const SEEDS: [&str; 3] = [
        "SEEDED-api-key-7f3a",
        "SEEDED-token-91bc",
        "SEEDED-pass-4d2e",
    ];
    let paths = paths_for(fixture("full.toml"), true);
    let env = env_of(&[
        ("TEST_ES_API_KEY", SEEDS[0]),
        ("TEST_KIBANA_TOKEN", SEEDS[1]),
        ("TEST_ES_PASSWORD", SEEDS[2]),
    ]);
    for profile in ["prod", "dev"] {
        let flags = Overrides {
            profile: Some(profile.into()),
            ..Default::default()
        };
        let loaded = config::load(&paths, &flags, &env).unwrap();
        let printed = format!("{loaded:?}\n{loaded:#?}");
        for seed in SEEDS {
            assert!(
                !printed.contains(seed),
                "{profile}: {seed} printed in {printed}"
            );
        }
        assert!(printed.contains(syncdeck::secret::MASK), "{printed}");
    }
}

/// A valid configuration to mutate.
fn valid_text() -> String {
    std::fs::read_to_string(fixture("full.toml")).unwrap()
}

/// Resolves `env:` references but never the overrides, so mutations reach deep validation.
fn fuzz_env(name: &str) -> Option<String> {
    (!name.starts_with("SYNCDECK_")).then(|| "x".to_string())
}

fn load_fuzzed(text: &str) {
    let source = fixtures().join("fuzzed.toml");
    let result = config::load_str(text, &source, &Overrides::default(), &fuzz_env);
    if let Err(err) = result {
        // Every file error names the file.
        assert!(
            err.to_string().starts_with(&source.display().to_string()),
            "{err}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any numbers in the engine and client limits either load or are refused by name, and
    /// what loads never overflows the engine's budget arithmetic.
    #[test]
    fn any_limits_load_or_are_refused_and_never_overflow(
        in_flight in any::<u64>(),
        item_retries in any::<u32>(),
        max_retries in any::<u32>(),
        retry_max_h in any::<u64>(),
        budget_ms in any::<u64>(),
        backoff_ms in any::<u64>(),
    ) {
        let text = format!(
            "[profiles.p.elasticsearch]\nnodes = [\"http://127.0.0.1:9200\"]\n\
             max_retries = {max_retries}\ndead_backoff_max = \"{backoff_ms}ms\"\n\
             [profiles.p.engine]\nmax_in_flight = {}\nitem_max_retries = {item_retries}\n\
             retry_max = \"{retry_max_h}h\"\nitem_retry_budget = \"{budget_ms}ms\"\n",
            in_flight % (i64::MAX as u64)
        );
        let source = fixtures().join("fuzzed.toml");
        match config::load_str(&text, &source, &Overrides::default(), &fuzz_env) {
            Ok(loaded) => {
                let engine = &loaded.profile.engine;
                let es = loaded.profile.elasticsearch.as_ref().unwrap();
                prop_assert!(engine.max_in_flight <= 128 && es.max_retries <= 1000);
                let budget = config::saturating_budget(
                    engine.retry_max,
                    engine.item_max_retries.saturating_add(1),
                    engine.item_retry_budget,
                );
                prop_assert!(budget < std::time::Duration::from_secs(4000 * 24 * 3600));
            }
            Err(err) => {
                let text = err.to_string();
                prop_assert!(text.starts_with(&source.display().to_string()), "{}", text);
                prop_assert!(text.contains("profiles.p."), "{}", text);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load_fuzzed(&text);
    }

    #[test]
    fn mutated_valid_config_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let mut bytes = valid_text().into_bytes();
        for (index, byte) in flips {
            let len = bytes.len();
            bytes[index % len] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        load_fuzzed(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_shaped_text_never_panics(
        lines in proptest::collection::vec(
            "(\\[profiles\\.[a-z]{1,3}(\\.(elasticsearch|kibana|engine|breaker|tls|sniff))?\\]|[a-z_]{1,16} = (\"[^\"\\n]{0,20}\"|-?[0-9]{1,12}|true|0\\.[0-9]|\\[\"[a-z:/0-9]{0,20}\"\\]))",
            0..12,
        )
    ) {
        load_fuzzed(&lines.join("\n"));
    }
}
