//! Secrets of an external program never reach the logs. In a test binary of its own: the
//! captured subscriber is thread-scoped, and tracing's callsite interest cache can skip a
//! scoped subscriber's events while other tests log on other threads at the same time.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use syncdeck::model::Configuration;
use syncdeck::secret::MASK;
use syncdeck::sources::{
    DataSource, ExternalFactory, ExternalSource, ItemSender, SourceError, SourceFactory,
    SourceItem, SyncMode,
};

const TOKEN: &str = "tok-hunter2-secret";

fn script() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/airbyte/fake_source.py"
    )
    .to_string()
}

/// The fake program with this config JSON, the secret token, and extra field values.
fn fake(config: Value, extra: &[(&str, Value)]) -> Configuration {
    let mut c = ExternalFactory.default_configuration();
    let mut set = |key: &str, value: Value| {
        c.0.get_mut(key)
            .unwrap_or_else(|| panic!("no field {key}"))
            .value = value;
    };
    set("command", json!("python3"));
    set("args", json!([script()]));
    set("secret_env", json!(format!("FAKE_TOKEN={TOKEN}")));
    set("config", json!(config.to_string()));
    set("timeout", json!(20));
    for (key, value) in extra {
        set(key, value.clone());
    }
    c
}

fn source(config: &Configuration) -> ExternalSource {
    ExternalFactory
        .validate(config)
        .expect("valid configuration");
    ExternalSource::from_config(config).expect("source")
}

async fn run(
    source: &mut ExternalSource,
    mode: SyncMode,
) -> (Vec<SourceItem>, Result<Option<Value>, SourceError>) {
    let (tx, mut rx) = ItemSender::channel(16);
    let drain = async move {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    };
    let (result, items) = tokio::join!(source.run(mode, tx), drain);
    (items, result)
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_programs_logs_stderr_and_errors_never_show_the_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    for mode in ["normal", "trace", "crash"] {
        let mut src = source(&fake(json!({"mode": mode}), &[("stream", json!("users"))]));
        let _ = run(&mut src, SyncMode::Full).await;
    }
    let _ = source(&fake(json!({"mode": "fail"}), &[])).ping().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(&format!("reading users with token {MASK}")),
        "the LOG message is logged: {logs}"
    );
    assert!(
        logs.contains(&format!("HTTP 401 {MASK}")),
        "the internal message at debug: {logs}"
    );
    assert!(
        logs.contains(&format!("stderr line 3 token={MASK}")),
        "stderr at debug: {logs}"
    );
    assert!(!logs.contains(TOKEN), "the secret leaked into the logs");
}
