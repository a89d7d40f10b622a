//! Shared by the `external` source's test modules: the project's fake Airbyte program
//! (tests/fixtures/airbyte/fake_source.py), a configuration for it, and a drained run.
#![allow(dead_code)]

use serde_json::{Value, json};
use syncdeck::model::Configuration;
use syncdeck::sources::{
    DataSource, ExternalFactory, ExternalSource, ItemSender, SourceError, SourceFactory,
    SourceItem, SyncMode,
};

pub const TOKEN: &str = "tok-hunter2-secret";

pub fn script() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/airbyte/fake_source.py"
    )
    .to_string()
}

/// The fake program with this config JSON, the secret token, and extra field values.
pub fn fake(config: Value, extra: &[(&str, Value)]) -> Configuration {
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

pub fn source(config: &Configuration) -> ExternalSource {
    ExternalFactory
        .validate(config)
        .expect("valid configuration");
    ExternalSource::from_config(config).expect("source")
}

pub async fn run(
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
