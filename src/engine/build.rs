//! Assembling an [`Engine`] from a [`Context`]: the profile's backends, the dead-letter queue
//! in the data dir, the built-in sources and this worker's name. The one place the CLI
//! (`sync`, `serve`, `dlq`) and the console build an engine, so neither reaches into the other.

use super::dlq::{DeadLetterStore, DlqError};
use super::lease::worker_name;
use super::runner::{Engine, EngineDeps};
use crate::context::Context;
use crate::sources;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Why an engine could not be built.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("cannot create data dir '{}': {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    DeadLetters(#[from] DlqError),
}

/// Opens the profile's dead-letter queue (shared by every profile, each entry tagged with its
/// profile), creating the data dir (private) when missing.
pub fn open_dlq(ctx: &Context) -> Result<Arc<DeadLetterStore>, BuildError> {
    let path = ctx.paths.dlq_db();
    if let Some(dir) = path.parent() {
        crate::paths::create_private_dir(dir).map_err(|source| BuildError::DataDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let store = DeadLetterStore::open(&path, ctx.profile.engine.dlq_max_entries)?;
    Ok(Arc::new(
        store
            .with_profile(&ctx.profile.name)
            .with_max_document_bytes(ctx.profile.engine.dlq_max_document_bytes),
    ))
}

/// The engine of a context: its backends, its dead-letter queue, the built-in sources.
pub fn build(ctx: &Context) -> Result<Engine, BuildError> {
    Ok(Engine::new(EngineDeps {
        control: ctx.control.clone(),
        store: ctx.documents.clone(),
        dlq: open_dlq(ctx)?,
        registry: sources::builtin(),
        settings: ctx.profile.engine.clone(),
        breaker: ctx.profile.breaker.clone(),
        worker: worker_name(),
    }))
}
