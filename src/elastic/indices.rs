//! Index management: create (with mappings and settings), exists, refresh, delete.

use super::error::Result;
use super::transport::{Method, Transport, path};
use serde_json::{Map, Value};

/// The index API family.
pub struct Indices<'a> {
    transport: &'a Transport,
}

impl<'a> Indices<'a> {
    pub(crate) fn new(transport: &'a Transport) -> Self {
        Self { transport }
    }

    /// `PUT /{index}` with optional mappings and settings. An index that already exists is
    /// an error (`resource_already_exists_exception`, 400).
    pub async fn create(
        &self,
        index: &str,
        mappings: Option<&Value>,
        settings: Option<&Value>,
    ) -> Result<()> {
        let url = path(&[index]);
        let mut body = Map::new();
        if let Some(mappings) = mappings {
            body.insert("mappings".into(), mappings.clone());
        }
        if let Some(settings) = settings {
            body.insert("settings".into(), settings.clone());
        }
        let body = Transport::encode(&url, &body)?;
        self.transport
            .send(Method::PUT, &url, &[], Some(body))
            .await?;
        Ok(())
    }

    /// `HEAD /{index}`.
    pub async fn exists(&self, index: &str) -> Result<bool> {
        match self
            .transport
            .send(Method::HEAD, &path(&[index]), &[], None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /{index}/_refresh`.
    pub async fn refresh(&self, index: &str) -> Result<()> {
        self.transport
            .send(Method::POST, &path(&[index, "_refresh"]), &[], None)
            .await?;
        Ok(())
    }

    /// `DELETE /{index}`.
    pub async fn delete(&self, index: &str) -> Result<()> {
        self.transport
            .send(Method::DELETE, &path(&[index]), &[], None)
            .await?;
        Ok(())
    }
}
