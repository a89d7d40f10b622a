//! `Context`: what a command runs against, built once from the resolved profile: the control
//! plane and document store (Elasticsearch or embedded, wrapped read-only when the profile
//! says so), the Elasticsearch client for cluster-level calls, and the Kibana client.

use super::error::{CliError, CliResult, EXIT_UNREACHABLE, EXIT_USAGE};
use super::output::Output;
use crate::backend::elasticsearch::ElasticsearchBackend;
use crate::backend::embedded::{self, EmbeddedBackend};
use crate::backend::{ControlPlane, DocumentStore, ReadOnly};
use crate::config::{LoadedConfig, ResolvedProfile};
use crate::kibana::Kibana;
use crate::paths::Paths;
use std::sync::Arc;

pub struct Context {
    pub profile: ResolvedProfile,
    pub paths: Paths,
    pub control: Arc<dyn ControlPlane>,
    pub documents: Arc<dyn DocumentStore>,
    /// Present when the profile has a cluster.
    pub elasticsearch: Option<Arc<ElasticsearchBackend>>,
    /// Present when the profile names a Kibana.
    pub kibana: Option<Kibana>,
    pub out: Output,
}

impl Context {
    /// Builds the backends of a loaded configuration. The embedded store is opened (and
    /// seeded with the demo connectors on first use) only when no cluster is configured.
    pub fn build(loaded: LoadedConfig, paths: Paths, out: Output) -> CliResult<Self> {
        let profile = loaded.profile;
        let (control, documents, elasticsearch): (
            Arc<dyn ControlPlane>,
            Arc<dyn DocumentStore>,
            _,
        ) = match &profile.elasticsearch {
            Some(settings) => {
                let backend = ElasticsearchBackend::new(settings).map_err(|e| CliError {
                    code: EXIT_USAGE,
                    message: format!("profile '{}': {e}", profile.name),
                })?;
                let backend = Arc::new(backend);
                (backend.clone(), backend.clone(), Some(backend))
            }
            None => {
                let backend = Arc::new(open_embedded(&paths)?);
                (backend.clone(), backend, None)
            }
        };
        let control: Arc<dyn ControlPlane> = if profile.read_only {
            Arc::new(ReadOnly::new(control, profile.name.clone()))
        } else {
            control
        };
        let kibana = match &profile.kibana {
            Some(settings) => Some(Kibana::new(settings).map_err(|e| CliError {
                code: EXIT_USAGE,
                message: format!("profile '{}': kibana: {e}", profile.name),
            })?),
            None => None,
        };
        Ok(Self {
            profile,
            paths,
            control,
            documents,
            elasticsearch,
            kibana,
            out,
        })
    }

    /// The Kibana client, or a usage error saying how to configure one.
    pub fn kibana(&self) -> CliResult<&Kibana> {
        self.kibana.as_ref().ok_or_else(|| {
            CliError::usage(format!(
                "profile '{}' has no Kibana; set [profiles.{}.kibana] url in the config file, \
                 or pass --kibana URL / SYNCDECK_KIBANA_URL",
                self.profile.name, self.profile.name
            ))
        })
    }

    /// Refuses a mutation up front on a read-only profile (the backend wrapper refuses too;
    /// this gives Kibana commands, which bypass it, the same guard).
    pub fn ensure_writable(&self, action: &str) -> CliResult {
        if self.profile.read_only {
            return Err(CliError::failed(format!(
                "refused: profile '{}' is read-only ({action})",
                self.profile.name
            )));
        }
        Ok(())
    }
}

/// Opens the embedded store in the data dir and seeds the demo connectors on first run.
pub fn open_embedded(paths: &Paths) -> CliResult<EmbeddedBackend> {
    let db = paths.embedded_db();
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::failed(format!("cannot create data dir '{}': {e}", dir.display()))
        })?;
    }
    let backend = EmbeddedBackend::open(&db)
        .map_err(|e| CliError::failed(format!("embedded store '{}': {e}", db.display())))?;
    let corpus = embedded::demo_corpus_dir(&paths.data_dir)
        .map_err(|e| CliError::failed(format!("demo corpus: {e}")))?;
    backend
        .seed_demo(&corpus)
        .map_err(|e| CliError::failed(format!("seeding demo connectors: {e}")))?;
    Ok(backend)
}

/// Maps a failure to reach the cluster to exit code 3 with a hint.
pub fn unreachable_hint(e: CliError, profile: &ResolvedProfile) -> CliError {
    if e.code != EXIT_UNREACHABLE {
        return e;
    }
    let nodes = profile
        .elasticsearch
        .as_ref()
        .map(|es| {
            es.nodes
                .iter()
                .map(|u| u.as_str().trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    CliError {
        code: EXIT_UNREACHABLE,
        message: format!("{} (profile '{}', nodes: {nodes})", e.message, profile.name),
    }
}
