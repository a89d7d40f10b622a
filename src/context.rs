//! `Context`: what a command or the console runs against, built once from the resolved
//! profile: the control plane and document store (Elasticsearch or embedded, wrapped read-only
//! when the profile says so), the Elasticsearch client for cluster-level calls, and the Kibana
//! client. Shared by `cli` and `console` (neither reaches into the other); its failures are
//! [`ContextError`]s, which the CLI maps to exit codes.

use crate::backend::elasticsearch::ElasticsearchBackend;
use crate::backend::embedded::{self, EmbeddedBackend};
use crate::backend::{BackendError, ControlPlane, DocumentStore, ReadOnly};
use crate::config::{LoadedConfig, ResolvedProfile};
use crate::kibana::{Kibana, KibanaError};
use crate::output::Output;
use crate::paths::Paths;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why a context could not be built, or refuses what it was asked.
#[derive(Debug, Error)]
pub enum ContextError {
    /// The profile's Elasticsearch settings do not make a client (a usage error).
    #[error("profile '{profile}': {source}")]
    Elasticsearch {
        profile: String,
        #[source]
        source: crate::elastic::Error,
    },
    /// The profile's Kibana settings do not make a client (a usage error).
    #[error("profile '{profile}': kibana: {source}")]
    Kibana {
        profile: String,
        #[source]
        source: KibanaError,
    },
    /// A Kibana command on a profile without Kibana (a usage error).
    #[error(
        "profile '{profile}' has no Kibana; set [profiles.{profile}.kibana] url in the config \
         file, or pass --kibana URL / SYNCDECK_KIBANA_URL"
    )]
    NoKibana { profile: String },
    /// A mutation on a read-only profile.
    #[error("refused: profile '{profile}' is read-only ({action})")]
    ReadOnly { profile: String, action: String },
    #[error("cannot create data dir '{}': {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("embedded store '{}': {source}", path.display())]
    Embedded {
        path: PathBuf,
        #[source]
        source: BackendError,
    },
    #[error("demo corpus: {0}")]
    DemoCorpus(#[source] BackendError),
    #[error("seeding demo connectors: {0}")]
    SeedDemo(#[source] BackendError),
}

impl ContextError {
    /// A mistake in the configuration or the command line, not a failed operation.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Elasticsearch { .. } | Self::Kibana { .. } | Self::NoKibana { .. }
        )
    }
}

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
    pub fn build(loaded: LoadedConfig, paths: Paths, out: Output) -> Result<Self, ContextError> {
        let profile = loaded.profile;
        let (control, documents, elasticsearch): (
            Arc<dyn ControlPlane>,
            Arc<dyn DocumentStore>,
            _,
        ) = match &profile.elasticsearch {
            Some(settings) => {
                let backend = ElasticsearchBackend::new(settings).map_err(|source| {
                    ContextError::Elasticsearch {
                        profile: profile.name.clone(),
                        source,
                    }
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
            Some(settings) => {
                Some(
                    Kibana::new(settings).map_err(|source| ContextError::Kibana {
                        profile: profile.name.clone(),
                        source,
                    })?,
                )
            }
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
    pub fn kibana(&self) -> Result<&Kibana, ContextError> {
        self.kibana.as_ref().ok_or_else(|| ContextError::NoKibana {
            profile: self.profile.name.clone(),
        })
    }

    /// Refuses a mutation up front on a read-only profile (the backend wrapper refuses too;
    /// this gives Kibana commands, which bypass it, the same guard).
    pub fn ensure_writable(&self, action: &str) -> Result<(), ContextError> {
        if self.profile.read_only {
            return Err(ContextError::ReadOnly {
                profile: self.profile.name.clone(),
                action: action.to_string(),
            });
        }
        Ok(())
    }
}

/// Opens the embedded store in the data dir and seeds the demo connectors on first run.
pub fn open_embedded(paths: &Paths) -> Result<EmbeddedBackend, ContextError> {
    let db = paths.embedded_db();
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ContextError::DataDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let backend = EmbeddedBackend::open(&db).map_err(|source| ContextError::Embedded {
        path: db.clone(),
        source,
    })?;
    let corpus = embedded::demo_corpus_dir(&paths.data_dir).map_err(ContextError::DemoCorpus)?;
    backend.seed_demo(&corpus).map_err(ContextError::SeedDemo)?;
    Ok(backend)
}
