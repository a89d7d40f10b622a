//! Cluster-level reads: `GET /` (info), `GET _cluster/health`, `GET _nodes/_all/http` (the
//! addresses sniffing uses). The answer types keep unknown fields so nothing is lost when
//! they are shown or written back.

use super::error::Result;
use super::transport::{Method, Transport, path};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `GET /`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uuid: Option<String>,
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagline: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub number: String,
    /// `default`, `serverless`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_flavor: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Info {
    pub fn is_serverless(&self) -> bool {
        self.version.build_flavor.as_deref() == Some("serverless")
    }
}

/// `GET _cluster/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterHealth {
    #[serde(default)]
    pub cluster_name: String,
    /// `green`, `yellow` or `red`.
    pub status: String,
    #[serde(default)]
    pub timed_out: bool,
    #[serde(default)]
    pub number_of_nodes: u64,
    #[serde(default)]
    pub number_of_data_nodes: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET _nodes/_all/http`: only what sniffing and the console need, the rest kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodesInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeInfo>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<NodeHttp>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHttp {
    /// `host/ip:port` or `ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_address: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The cluster API family.
pub struct Cluster<'a> {
    transport: &'a Transport,
}

impl<'a> Cluster<'a> {
    pub(crate) fn new(transport: &'a Transport) -> Self {
        Self { transport }
    }

    pub async fn info(&self) -> Result<Info> {
        self.transport.request(Method::GET, "/", &[], None).await
    }

    pub async fn health(&self) -> Result<ClusterHealth> {
        self.transport
            .request(Method::GET, &path(&["_cluster", "health"]), &[], None)
            .await
    }

    pub async fn nodes(&self) -> Result<NodesInfo> {
        self.transport
            .request(Method::GET, &path(&["_nodes", "_all", "http"]), &[], None)
            .await
    }
}
