//! The demo seed: the connectors described by `assets/demo/demo.toml` (compiled in), created
//! once per database, and the demo corpus directory the directory connector reads. Writes only
//! through the connector and document functions of its siblings, and only into the data dir.

use super::{connectors, documents};
use crate::backend::{BackendError, Result};
use crate::model::{Configuration, ConnectorStatus, NewConnector, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The demo description, compiled in so the binary works from any directory.
const DEMO_TOML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/demo/demo.toml"
));

/// A configuration value equal to this is replaced by the corpus directory.
const CORPUS_PLACEHOLDER: &str = "{demo_corpus_dir}";

/// The `meta` key that records that this database was seeded.
const SEEDED_KEY: &str = "demo_seeded_at";

macro_rules! corpus_files {
    ($($path:literal),+ $(,)?) => {
        /// The demo corpus, compiled in: (path relative to the corpus dir, content).
        const CORPUS: &[(&str, &str)] = &[
            $(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/corpus/", $path))),)+
        ];
    };
}

corpus_files!(
    "README.md",
    "faq.md",
    "glossary.txt",
    "notes/2024-03-14-incident-review.md",
    "notes/cron-schedules.txt",
    "notes/sync-rules-cheatsheet.txt",
    "pages/index.html",
    "pages/onboarding.html",
    "reference/connector-statuses.csv",
    "reference/error-types.json",
    "reference/job-statuses.csv",
    "reference/service-types.json",
    "runbooks/circuit-breaker-open.md",
    "runbooks/dead-letter-triage.md",
    "runbooks/restart-a-stuck-sync.md",
    "runbooks/rotate-api-keys.md",
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoFile {
    #[serde(rename = "connector")]
    connectors: Vec<DemoConnector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoConnector {
    id: String,
    name: String,
    description: Option<String>,
    service_type: String,
    index_name: String,
    language: Option<String>,
    status: ConnectorStatus,
    #[serde(default)]
    configuration: Configuration,
    mappings: Option<Value>,
}

fn demo_file() -> Result<DemoFile> {
    toml::from_str(DEMO_TOML).map_err(|e| {
        BackendError::Other(format!(
            "the built-in demo description (assets/demo/demo.toml) is invalid: {e}"
        ))
    })
}

/// Seeds the demo connectors unless this database was seeded before. A demo connector whose
/// id or index is already taken is skipped, never overwritten.
pub(super) fn seed(conn: &Connection, corpus_dir: &Path) -> Result<bool> {
    let seeded: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [SEEDED_KEY],
            |row| row.get(0),
        )
        .optional()
        .map_err(super::db_err)?;
    if seeded.is_some() {
        return Ok(false);
    }
    for demo in demo_file()?.connectors {
        seed_connector(conn, demo, corpus_dir)?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        params![SEEDED_KEY, Timestamp::now().to_iso()],
    )
    .map_err(super::db_err)?;
    Ok(true)
}

fn seed_connector(conn: &Connection, demo: DemoConnector, corpus_dir: &Path) -> Result<()> {
    if connectors::load(conn, &demo.id)?.is_some() {
        tracing::warn!(connector = %demo.id, "a connector with the demo id exists already; not seeding it");
        return Ok(());
    }
    if let Err(e) = connectors::check_index_name(conn, Some(&demo.index_name), &demo.id) {
        tracing::warn!(connector = %demo.id, error = %e, "the demo index name is taken; not seeding it");
        return Ok(());
    }
    let new = NewConnector {
        id: Some(demo.id.clone()),
        name: Some(demo.name),
        description: demo.description,
        index_name: Some(demo.index_name.clone()),
        service_type: Some(demo.service_type),
        is_native: Some(false),
        language: demo.language,
    };
    let mut connector = connectors::new_document(&demo.id, &new)?;
    connector.status = demo.status;
    connector.configuration = demo.configuration;
    let corpus = corpus_dir.to_string_lossy();
    for field in connector.configuration.0.values_mut() {
        if field.value.as_str() == Some(CORPUS_PLACEHOLDER) {
            field.value = Value::String(corpus.to_string());
        }
    }
    connectors::put(conn, &connector)?;
    if let Some(mappings) = demo.mappings {
        documents::ensure_index(conn, &demo.index_name, Some(&mappings))?;
    }
    Ok(())
}

/// The demo corpus directory: `assets/demo/corpus` in the source tree when it is there (a
/// development build), else a copy of the compiled-in files in `data_dir/demo-corpus`,
/// written once and left alone afterwards (a user may edit it).
pub fn demo_corpus_dir(data_dir: &Path) -> Result<PathBuf> {
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/corpus");
    corpus_dir_from(&source_tree, data_dir)
}

fn corpus_dir_from(source_tree: &Path, data_dir: &Path) -> Result<PathBuf> {
    if source_tree.is_dir() {
        return Ok(source_tree.to_path_buf());
    }
    let target = data_dir.join("demo-corpus");
    if target.is_dir() {
        return Ok(target);
    }
    // Write into a private staging dir, then rename: a crash never leaves half a corpus that
    // would be taken as complete next time.
    let staging = data_dir.join(format!("demo-corpus.partial-{}", std::process::id()));
    let io_err = |what: &str, path: &Path, e: std::io::Error| {
        BackendError::Other(format!(
            "cannot {what} '{}' for the demo corpus: {e}",
            path.display()
        ))
    };
    for (relative, content) in CORPUS {
        let path = staging.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("create the directory", dir, e))?;
        }
        std::fs::write(&path, content).map_err(|e| io_err("write", &path, e))?;
    }
    match std::fs::rename(&staging, &target) {
        Ok(()) => Ok(target),
        // Another process extracted it first: use theirs.
        Err(_) if target.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(target)
        }
        Err(e) => Err(io_err("move the extracted files to", &target, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldType;

    #[test]
    fn demo_file_describes_both_connectors() {
        let demo = demo_file().unwrap();
        let ids: Vec<_> = demo.connectors.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["demo-directory", "demo-generator"]);
        let directory = &demo.connectors[0].configuration;
        assert_eq!(directory.get("path").unwrap().value, CORPUS_PLACEHOLDER);
        assert_eq!(
            directory.get("extract_content").unwrap().field_type,
            FieldType::Bool
        );
        let generator = &demo.connectors[1];
        assert_eq!(generator.configuration.get("count").unwrap().value, 20000);
        assert!(generator.configuration.get("api_token").unwrap().sensitive);
        assert_eq!(
            generator.mappings.as_ref().unwrap()["properties"]["value"]["type"],
            "long"
        );
        for c in &demo.connectors {
            for (key, field) in &c.configuration.0 {
                assert!(
                    !field.label.is_empty() && field.order.is_some() && field.tooltip.is_some(),
                    "{key}"
                );
            }
        }
    }

    #[test]
    fn every_corpus_file_is_compiled_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/corpus");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    on_disk.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        on_disk.sort();
        let compiled: Vec<_> = CORPUS.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(on_disk, compiled);
    }

    #[test]
    fn corpus_is_extracted_once_when_the_source_tree_is_gone() {
        let data = tempfile::tempdir().unwrap();
        let missing = data.path().join("no-source-tree");
        let dir = corpus_dir_from(&missing, data.path()).unwrap();
        assert_eq!(dir, data.path().join("demo-corpus"));
        for (relative, content) in CORPUS {
            assert_eq!(
                std::fs::read_to_string(dir.join(relative)).unwrap(),
                *content
            );
        }
        // A user's edit survives the next start.
        std::fs::remove_file(dir.join("faq.md")).unwrap();
        assert_eq!(corpus_dir_from(&missing, data.path()).unwrap(), dir);
        assert!(!dir.join("faq.md").exists());
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/corpus");
        assert_eq!(demo_corpus_dir(data.path()).unwrap(), source);
    }
}
