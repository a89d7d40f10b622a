//! Direct document access to the connector indices, for what the `_connector` API cannot do:
//! reads with `_seq_no`/`_primary_term` and updates guarded by them (PROTOCOL.md §5.4: a
//! 409 means another worker won), direct job updates (§5.6), and the searches of the service
//! loops (§5.1, §5.3). Never used for anything the `_connector` API offers.

use super::documents::{SearchResponse, WriteResponse};
use super::error::{Error, Result};
use super::transport::{Method, Transport, path};
use crate::model::{Connector, JobStatus, JobType, SyncJob};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const CONNECTORS_INDEX: &str = ".elastic-connectors";
pub const SYNC_JOBS_INDEX: &str = ".elastic-connectors-sync-jobs";

/// The optimistic-concurrency version of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqNo {
    #[serde(rename = "_seq_no")]
    pub seq_no: u64,
    #[serde(rename = "_primary_term")]
    pub primary_term: u64,
}

/// A document with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: SeqNo,
    pub doc: T,
}

/// Filters of a job search (every non-empty list must match); oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSearch {
    pub statuses: Vec<JobStatus>,
    pub connector_ids: Vec<String>,
    pub job_types: Vec<JobType>,
    /// At most this many jobs (100 when `None`).
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct GetDoc<T> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    found: Option<bool>,
    #[serde(rename = "_seq_no")]
    seq_no: Option<u64>,
    #[serde(rename = "_primary_term")]
    primary_term: Option<u64>,
    #[serde(rename = "_source")]
    source: Option<T>,
}

/// Something with an `id` field the index keeps as `_id` only.
trait HasId {
    fn set_id(&mut self, id: String);
}

impl HasId for Connector {
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
}

impl HasId for SyncJob {
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
}

/// The document API family over the connector indices.
pub struct ConnectorDocs<'a> {
    transport: &'a Transport,
}

impl<'a> ConnectorDocs<'a> {
    pub(crate) fn new(transport: &'a Transport) -> Self {
        Self { transport }
    }

    /// `GET /.elastic-connectors/_doc/{id}` with its seq_no and primary term.
    pub async fn get_connector(&self, id: &str) -> Result<Versioned<Connector>> {
        self.get(CONNECTORS_INDEX, id, "connector").await
    }

    /// `GET /.elastic-connectors-sync-jobs/_doc/{id}` with its seq_no and primary term.
    pub async fn get_job(&self, id: &str) -> Result<Versioned<SyncJob>> {
        self.get(SYNC_JOBS_INDEX, id, "connector sync job").await
    }

    /// A partial update of a connector document; with `guard`, only if the document is still
    /// at that version (else `Error::Api { status: 409, .. }`). Returns the new version.
    pub async fn update_connector<B: Serialize>(
        &self,
        id: &str,
        doc: &B,
        guard: Option<SeqNo>,
    ) -> Result<SeqNo> {
        self.update(CONNECTORS_INDEX, id, doc, guard).await
    }

    /// A partial update of a job document, optionally guarded like [`Self::update_connector`].
    pub async fn update_job<B: Serialize>(
        &self,
        id: &str,
        doc: &B,
        guard: Option<SeqNo>,
    ) -> Result<SeqNo> {
        self.update(SYNC_JOBS_INDEX, id, doc, guard).await
    }

    /// `DELETE /.elastic-connectors-sync-jobs/_doc/{id}` only if the job is still at `guard`
    /// (else `Error::Api { status: 409, .. }`): the `_connector` API's delete has no guard.
    pub async fn delete_job(&self, id: &str, guard: SeqNo) -> Result<()> {
        let url = path(&[SYNC_JOBS_INDEX, "_doc", id]);
        let params = [
            ("if_seq_no", guard.seq_no.to_string()),
            ("if_primary_term", guard.primary_term.to_string()),
        ];
        let _: WriteResponse = self
            .transport
            .request(Method::DELETE, &url, &params, None)
            .await?;
        Ok(())
    }

    /// Jobs matching the filters, oldest `created_at` first (the pick-up query of §5.3).
    /// A missing jobs index is an empty result.
    pub async fn search_jobs(&self, search: &JobSearch) -> Result<Vec<SyncJob>> {
        self.search_jobs_in(search, None).await
    }

    /// Like [`Self::search_jobs`], limited to jobs whose `last_seen` is at or before
    /// `seen_before` (an ISO-8601 instant or date math such as `now-300s`): the idle-job query
    /// of a connectors service's cleanup (§5.7).
    pub async fn search_jobs_seen_before(
        &self,
        search: &JobSearch,
        seen_before: &str,
    ) -> Result<Vec<SyncJob>> {
        self.search_jobs_in(search, Some(seen_before)).await
    }

    async fn search_jobs_in(
        &self,
        search: &JobSearch,
        seen_before: Option<&str>,
    ) -> Result<Vec<SyncJob>> {
        let mut filters = Vec::new();
        if let Some(seen_before) = seen_before {
            filters.push(json!({ "range": { "last_seen": { "lte": seen_before } } }));
        }
        if !search.statuses.is_empty() {
            filters.push(json!({ "terms": { "status": search.statuses } }));
        }
        if !search.connector_ids.is_empty() {
            filters.push(json!({ "terms": { "connector.id": search.connector_ids } }));
        }
        if !search.job_types.is_empty() {
            filters.push(json!({ "terms": { "job_type": search.job_types } }));
        }
        let body = json!({
            "size": search.size.unwrap_or(100),
            "query": { "bool": { "filter": filters } },
            "sort": [{ "created_at": { "order": "asc" } }],
        });
        self.search(SYNC_JOBS_INDEX, &body).await
    }

    /// Connectors not deleted whose id is in `ids` or whose service type is in
    /// `service_types` (the served-connectors query of §5.1). A missing index is empty.
    pub async fn search_connectors(
        &self,
        ids: &[String],
        service_types: &[String],
        from: u64,
        size: u64,
    ) -> Result<Vec<Connector>> {
        let body = json!({
            "from": from,
            "size": size,
            "query": { "bool": {
                "should": [
                    { "ids": { "values": ids } },
                    { "terms": { "service_type": service_types } },
                ],
                "minimum_should_match": 1,
                "must_not": [{ "term": { "deleted": true } }],
            }},
            "sort": [{ "_id": { "order": "asc" } }],
        });
        self.search(CONNECTORS_INDEX, &body).await
    }

    async fn get<T: DeserializeOwned + HasId>(
        &self,
        index: &str,
        id: &str,
        what: &str,
    ) -> Result<Versioned<T>> {
        let url = path(&[index, "_doc", id]);
        let answer: GetDoc<T> = match self.transport.request(Method::GET, &url, &[], None).await {
            Ok(answer) => answer,
            Err(e) if e.is_not_found() && e.kind() == Some("not_found") => {
                return Err(not_found(what, id));
            }
            Err(e) => return Err(e),
        };
        let (Some(seq_no), Some(primary_term), Some(mut doc)) =
            (answer.seq_no, answer.primary_term, answer.source)
        else {
            if answer.found == Some(false) {
                return Err(not_found(what, id));
            }
            return Err(Error::Decode {
                url_path: url,
                reason: "the document came without _source, _seq_no or _primary_term".to_string(),
            });
        };
        doc.set_id(answer.id);
        Ok(Versioned {
            version: SeqNo {
                seq_no,
                primary_term,
            },
            doc,
        })
    }

    async fn update<B: Serialize>(
        &self,
        index: &str,
        id: &str,
        doc: &B,
        guard: Option<SeqNo>,
    ) -> Result<SeqNo> {
        let url = path(&[index, "_update", id]);
        let mut params = Vec::new();
        if let Some(guard) = guard {
            params.push(("if_seq_no", guard.seq_no.to_string()));
            params.push(("if_primary_term", guard.primary_term.to_string()));
        }
        let body = Transport::encode(&url, &json!({ "doc": doc }))?;
        let answer: WriteResponse = self
            .transport
            .request(Method::POST, &url, &params, Some(body))
            .await?;
        match (answer.seq_no, answer.primary_term) {
            (Some(seq_no), Some(primary_term)) => Ok(SeqNo {
                seq_no,
                primary_term,
            }),
            _ => Err(Error::Decode {
                url_path: url,
                reason: "the update answer has no _seq_no or _primary_term".to_string(),
            }),
        }
    }

    async fn search<T: DeserializeOwned + HasId>(
        &self,
        index: &str,
        body: &Value,
    ) -> Result<Vec<T>> {
        let url = path(&[index, "_search"]);
        let encoded = Transport::encode(&url, body)?;
        let answer: SearchResponse<T> = match self
            .transport
            .request(Method::POST, &url, &[], Some(encoded))
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.kind() == Some("index_not_found_exception") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(answer
            .hits
            .hits
            .into_iter()
            .filter_map(|hit| {
                let mut doc = hit.source?;
                doc.set_id(hit.id);
                Some(doc)
            })
            .collect())
    }
}

/// The 404 the `_connector` API would give, for a bare document 404 that has no error body.
fn not_found(what: &str, id: &str) -> Error {
    Error::Api {
        status: 404,
        kind: "resource_not_found_exception".to_string(),
        reason: format!("{what} [{id}] not found"),
        root_causes: Vec::new(),
    }
}
