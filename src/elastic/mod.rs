//! Elasticsearch over HTTP: the [`Transport`] (node pool, retries, sniffing, auth, gzip) and
//! typed API families over it, one module each, reached through the [`Elasticsearch`]
//! façade: `es.connectors().list(..)`, `es.sync_jobs().claim(..)`, `es.documents().bulk(..)`.
//! This layer speaks the wire protocol only; the `backend` layer maps it to the traits the
//! rest of syncdeck uses. It does not read configuration files or spawn tasks.

pub mod cluster;
pub mod connector_docs;
pub mod connectors;
pub mod documents;
mod error;
pub mod indices;
mod lean_answer;
mod lean_json;
mod lean_scan;
#[cfg(test)]
mod one_byte_changes;
mod pit_scan;
mod pool;
pub mod sync_jobs;
pub mod transport;

pub use error::{Error, Result, RootCause};
pub use pool::NodeState;
pub use transport::{Body, BodyKind, Method, Response, Transport, TransportBuilder};

use crate::config::EsSettings;
use std::sync::Arc;

/// A client for one Elasticsearch cluster. Cheap to clone (the transport is shared).
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    transport: Arc<Transport>,
}

impl Elasticsearch {
    pub fn new(settings: &EsSettings) -> Result<Self> {
        Ok(Self::from_transport(Transport::new(settings)?))
    }

    pub fn from_transport(transport: Transport) -> Self {
        Self {
            transport: Arc::new(transport),
        }
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// The node pool as it is now (for the console).
    pub fn pool_snapshot(&self) -> Vec<NodeState> {
        self.transport.pool_snapshot()
    }

    pub fn cluster(&self) -> cluster::Cluster<'_> {
        cluster::Cluster::new(&self.transport)
    }

    pub fn connectors(&self) -> connectors::Connectors<'_> {
        connectors::Connectors::new(&self.transport)
    }

    pub fn sync_jobs(&self) -> sync_jobs::SyncJobs<'_> {
        sync_jobs::SyncJobs::new(&self.transport)
    }

    pub fn connector_docs(&self) -> connector_docs::ConnectorDocs<'_> {
        connector_docs::ConnectorDocs::new(&self.transport)
    }

    pub fn documents(&self) -> documents::Documents<'_> {
        documents::Documents::new(&self.transport)
    }

    pub fn indices(&self) -> indices::Indices<'_> {
        indices::Indices::new(&self.transport)
    }
}
