//! The Elasticsearch backend: [`ControlPlane`] and [`DocumentStore`] over the
//! [`Elasticsearch`] client, one protocol call per trait method, errors mapped through
//! `From<elastic::Error> for BackendError` (here, so the client knows nothing of this layer),
//! and the client's PIT scan as an [`IdScan`]. Kibana-only features are not here.

use super::{
    BackendError, BulkRequest, BulkResponse, ClusterSummary, ConfigurationUpdate, ConnectorQuery,
    ControlPlane, DocumentStore, IdPage, IdScan, JobFilter, JobFinish, LastSync, Result,
    ScheduleMark, SyncJobQuery, schedule_mark, scheduled_at,
};
use crate::config::EsSettings;
use crate::elastic::{self, Elasticsearch};
use crate::model::Features;
use crate::model::{
    Connector, ConnectorStatus, FilteringRule, FilteringValidation, JobStatus, JobType,
    NewConnector, Page, Pipeline, Scheduling, SyncJob, SyncStats, Timestamp, TriggerMethod,
};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct ElasticsearchBackend {
    client: Elasticsearch,
}

impl ElasticsearchBackend {
    pub fn new(settings: &EsSettings) -> std::result::Result<Self, elastic::Error> {
        Ok(Self {
            client: Elasticsearch::new(settings)?,
        })
    }

    pub fn from_client(client: Elasticsearch) -> Self {
        Self { client }
    }

    /// The client, for calls the traits do not cover.
    pub fn client(&self) -> &Elasticsearch {
        &self.client
    }
}

impl std::fmt::Debug for ElasticsearchBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchBackend")
            .field("client", &self.client)
            .finish()
    }
}

#[async_trait]
impl ControlPlane for ElasticsearchBackend {
    async fn cluster(&self) -> Result<ClusterSummary> {
        let cluster = self.client.cluster();
        let info = cluster.info().await?;
        // Serverless has no `_cluster/health`: report what is known instead of failing.
        let (health, number_of_nodes) = match cluster.health().await {
            Ok(health) => (health.status, health.number_of_nodes),
            Err(elastic::Error::Api { .. }) => ("n/a".to_string(), 0),
            Err(e) => return Err(e.into()),
        };
        let mut version = info.version.number.clone();
        if info.is_serverless() {
            version.push_str(" (serverless)");
        }
        Ok(ClusterSummary {
            backend: "elasticsearch".to_string(),
            cluster_name: info.cluster_name,
            version,
            health,
            number_of_nodes,
            location: self.client.transport().node_urls().join(", "),
        })
    }

    /// `cluster_uuid` from `GET /`. A cluster that has not formed yet answers `_na_`: that
    /// is no identity, and writing dead letters under it would mix clusters.
    async fn cluster_id(&self) -> Result<super::ClusterId> {
        let info = self.client.cluster().info().await?;
        match info.cluster_uuid {
            Some(uuid) if !uuid.is_empty() && uuid != "_na_" => Ok(super::ClusterId {
                uuid,
                name: info.cluster_name,
            }),
            _ => Err(BackendError::Other(format!(
                "cluster '{}' did not say its cluster_uuid (GET /): it may not have formed yet",
                info.cluster_name
            ))),
        }
    }

    async fn list_connectors(&self, query: &ConnectorQuery) -> Result<Page<Connector>> {
        Ok(self.client.connectors().list(query).await?)
    }

    async fn get_connector(&self, id: &str) -> Result<Connector> {
        Ok(self.client.connectors().get(id).await?)
    }

    async fn create_connector(&self, new: &NewConnector) -> Result<String> {
        Ok(self.client.connectors().create(new).await?.id)
    }

    async fn delete_connector(&self, id: &str, hard: bool, delete_sync_jobs: bool) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .delete(id, hard, delete_sync_jobs)
            .await?)
    }

    async fn check_in_connector(&self, id: &str) -> Result<()> {
        Ok(self.client.connectors().check_in(id).await?)
    }

    async fn update_configuration(&self, id: &str, update: &ConfigurationUpdate) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_configuration(id, update)
            .await?)
    }

    async fn update_status(&self, id: &str, status: ConnectorStatus) -> Result<()> {
        Ok(self.client.connectors().update_status(id, status).await?)
    }

    async fn update_error(&self, id: &str, error: Option<&str>) -> Result<()> {
        Ok(self.client.connectors().update_error(id, error).await?)
    }

    async fn update_filtering(
        &self,
        id: &str,
        rules: &[FilteringRule],
        advanced: Option<&Value>,
    ) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_filtering(id, Some(rules), advanced)
            .await?)
    }

    async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_filtering_validation(id, validation)
            .await?)
    }

    async fn activate_filtering(&self, id: &str) -> Result<()> {
        Ok(self.client.connectors().activate_filtering(id).await?)
    }

    async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_features(id, features)
            .await?)
    }

    async fn update_scheduling(&self, id: &str, scheduling: &Scheduling) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_scheduling(id, scheduling)
            .await?)
    }

    async fn update_name(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_name(id, name, description)
            .await?)
    }

    async fn update_index_name(&self, id: &str, index_name: Option<&str>) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_index_name(id, index_name)
            .await?)
    }

    async fn update_pipeline(&self, id: &str, pipeline: &Pipeline) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_pipeline(id, pipeline)
            .await?)
    }

    async fn update_service_type(&self, id: &str, service_type: &str) -> Result<()> {
        Ok(self
            .client
            .connectors()
            .update_service_type(id, service_type)
            .await?)
    }

    async fn update_last_sync(&self, id: &str, last: &LastSync) -> Result<()> {
        Ok(self.client.connectors().update_last_sync(id, last).await?)
    }

    async fn list_sync_jobs(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
        Ok(self.client.sync_jobs().list(query).await?)
    }

    async fn get_sync_job(&self, id: &str) -> Result<SyncJob> {
        Ok(self.client.sync_jobs().get(id).await?)
    }

    async fn create_sync_job(
        &self,
        connector_id: &str,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String> {
        Ok(self
            .client
            .sync_jobs()
            .create(connector_id, job_type, trigger)
            .await?)
    }

    async fn cancel_sync_job(&self, id: &str) -> Result<()> {
        Ok(self.client.sync_jobs().cancel(id).await?)
    }

    async fn delete_sync_job(&self, id: &str) -> Result<()> {
        Ok(self.client.sync_jobs().delete(id).await?)
    }

    async fn claim_sync_job(
        &self,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()> {
        Ok(self
            .client
            .sync_jobs()
            .claim(id, worker_hostname, sync_cursor)
            .await?)
    }

    async fn check_in_sync_job(&self, id: &str) -> Result<()> {
        Ok(self.client.sync_jobs().check_in(id).await?)
    }

    async fn update_sync_job_stats(&self, id: &str, stats: &SyncStats) -> Result<()> {
        Ok(self.client.sync_jobs().update_stats(id, stats).await?)
    }

    async fn set_sync_job_error(&self, id: &str, error: &str) -> Result<()> {
        Ok(self.client.sync_jobs().set_error(id, error).await?)
    }

    /// The framework ends a job with a direct `_update` of its document (PROTOCOL §5.6): the
    /// API has no endpoint for `completed`, nor for `canceling` → `canceled`.
    async fn finish_sync_job(&self, id: &str, finish: &JobFinish) -> Result<()> {
        self.client
            .connector_docs()
            .update_job(id, &finish_doc(finish), None)
            .await?;
        Ok(())
    }

    /// A real-time read of the job with its `_seq_no`, then the final write guarded by it: a
    /// 409 means another party wrote the job in between.
    async fn finish_sync_job_if_unchanged(
        &self,
        expected: &SyncJob,
        finish: &JobFinish,
    ) -> Result<bool> {
        let docs = self.client.connector_docs();
        let current = docs.get_job(&expected.id).await?;
        if !crate::backend::same_job_state(&current.doc, expected) {
            return Ok(false);
        }
        match docs
            .update_job(&expected.id, &finish_doc(finish), Some(current.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A real-time read of the job with its `_seq_no`, then a delete guarded by it: a 409
    /// means a worker wrote the job (claimed it) in between.
    async fn delete_sync_job_if_unchanged(&self, expected: &SyncJob) -> Result<bool> {
        let docs = self.client.connector_docs();
        let current = match docs.get_job(&expected.id).await {
            Ok(current) => current,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !crate::backend::same_job_state(&current.doc, expected) {
            return Ok(false);
        }
        match docs.delete_job(&expected.id, current.version).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_conflict() || e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn search_sync_jobs(&self, filter: &JobFilter) -> Result<Vec<SyncJob>> {
        self.search_jobs_direct(filter).await
    }

    async fn merge_configuration(
        &self,
        id: &str,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        self.client
            .connector_docs()
            .update_connector(id, &json!({ "configuration": fields }), None)
            .await?;
        Ok(())
    }

    async fn mark_sync_scheduled(
        &self,
        connector_id: &str,
        job_type: JobType,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<ScheduleMark> {
        self.mark_scheduled_guarded(connector_id, job_type, since, at)
            .await
    }

    /// PROTOCOL §5.4: read the connector with its seq_no, refuse when its last sync is in
    /// progress, and write the start marks guarded by that seq_no; a 409 means another worker
    /// won the race ([`super::GuardAttempt::Conflict`]).
    async fn try_start_guard(
        &self,
        connector_id: &str,
        job_type: JobType,
    ) -> Result<super::GuardAttempt> {
        let docs = self.client.connector_docs();
        let current = docs.get_connector(connector_id).await?;
        let prior = super::PriorSync::of(&current.doc, job_type);
        if prior.status == Some(JobStatus::InProgress) {
            return Ok(super::GuardAttempt::Held);
        }
        let marks = if job_type == JobType::AccessControl {
            json!({"status": "connected", "error": null, "last_access_control_sync_status": "in_progress", "last_access_control_sync_error": null})
        } else {
            json!({"status": "connected", "error": null, "last_sync_status": "in_progress", "last_sync_error": null})
        };
        match docs
            .update_connector(connector_id, &marks, Some(current.version))
            .await
        {
            Ok(_) => Ok(super::GuardAttempt::Taken(prior)),
            Err(e) if e.is_conflict() => Ok(super::GuardAttempt::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// A direct update of the connector document, as the Python service writes it, so the
    /// `null`s of a connector that had never synced are written back too.
    async fn restore_last_sync(
        &self,
        connector_id: &str,
        job_type: JobType,
        prior: &super::PriorSync,
    ) -> Result<()> {
        let (status_key, error_key) = if job_type == JobType::AccessControl {
            (
                "last_access_control_sync_status",
                "last_access_control_sync_error",
            )
        } else {
            ("last_sync_status", "last_sync_error")
        };
        let doc = json!({
            status_key: prior.status,
            error_key: prior.error,
            "status": prior.connector_status,
            "error": prior.connector_error,
        });
        self.client
            .connector_docs()
            .update_connector(connector_id, &doc, None)
            .await?;
        Ok(())
    }
}

/// How often a scheduler re-reads a connector after losing a guarded write to another writer
/// before giving up for this tick.
const SCHEDULE_RETRIES: usize = 5;

impl ElasticsearchBackend {
    /// The connector indices searched directly, as the Python service does (the `_sync_job`
    /// list takes one connector id only). Pages of 1000, so an idle service costs one request
    /// for up to 1000 jobs.
    async fn search_jobs_direct(&self, filter: &JobFilter) -> Result<Vec<SyncJob>> {
        let search = elastic::connector_docs::JobSearch {
            statuses: filter.statuses.clone(),
            connector_ids: filter.connector_ids.clone(),
            job_types: filter.job_types.clone(),
            size: filter.size,
        };
        let docs = self.client.connector_docs();
        let jobs = match filter.seen_before {
            Some(before) => {
                docs.search_jobs_seen_before(&search, &before.to_string())
                    .await?
            }
            None => docs.search_jobs(&search).await?,
        };
        Ok(jobs)
    }

    /// [`ControlPlane::mark_sync_scheduled`]: read with seq_no, decide, write guarded; a 409
    /// means another writer changed the connector meanwhile, so read and decide again.
    async fn mark_scheduled_guarded(
        &self,
        connector_id: &str,
        job_type: JobType,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<ScheduleMark> {
        let docs = self.client.connector_docs();
        for _ in 0..SCHEDULE_RETRIES {
            let current = docs.get_connector(connector_id).await?;
            if scheduled_at(&current.doc, job_type).is_some_and(|last| last > since) {
                return Ok(ScheduleMark::Taken);
            }
            let mark = schedule_mark(job_type, at);
            match docs
                .update_connector(connector_id, &mark, Some(current.version))
                .await
            {
                Ok(_) => return Ok(ScheduleMark::Won),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BackendError::Conflict(format!(
            "connector '{connector_id}' kept changing while its scheduled sync was marked \
             ({SCHEDULE_RETRIES} tries); the next tick tries again"
        )))
    }
}

#[async_trait]
impl DocumentStore for ElasticsearchBackend {
    async fn ensure_index(&self, index: &str, mappings: Option<&Value>) -> Result<bool> {
        let indices = self.client.indices();
        if indices.exists(index).await? {
            return Ok(false);
        }
        match indices.create(index, mappings, None).await {
            Ok(()) => Ok(true),
            // Another worker created it between the two calls.
            Err(e) if e.kind() == Some("resource_already_exists_exception") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn index_exists(&self, index: &str) -> Result<bool> {
        Ok(self.client.indices().exists(index).await?)
    }

    async fn bulk(&self, request: &BulkRequest) -> Result<BulkResponse> {
        Ok(self.client.documents().bulk(request).await?)
    }

    async fn scan_ids(
        &self,
        index: &str,
        page_size: usize,
        slices: usize,
    ) -> Result<Box<dyn IdScan>> {
        let scan = self
            .client
            .documents()
            .scan_ids(index, page_size, slices)
            .await?;
        Ok(Box::new(scan))
    }

    async fn scan_bare_ids(
        &self,
        index: &str,
        page_size: usize,
        slices: usize,
    ) -> Result<Box<dyn IdScan>> {
        let scan = self
            .client
            .documents()
            .scan_bare_ids(index, page_size, slices)
            .await?;
        Ok(Box::new(scan))
    }

    async fn count(&self, index: &str) -> Result<u64> {
        Ok(self.client.documents().count(index).await?)
    }

    async fn get_document(&self, index: &str, id: &str) -> Result<Option<Value>> {
        Ok(self.client.documents().get(index, id).await?)
    }

    async fn delete_document(&self, index: &str, id: &str) -> Result<bool> {
        Ok(self.client.documents().delete(index, id).await?)
    }

    async fn refresh(&self, index: &str) -> Result<()> {
        self.client
            .indices()
            .refresh(index)
            .await
            .map_err(BackendError::from)
    }
}

/// The job document's final fields, as the framework writes them (`SyncJob._terminate`).
fn finish_doc(finish: &JobFinish) -> Value {
    let now = Timestamp::now();
    let mut doc = json!({
        "status": finish.status,
        "error": finish.error,
        "indexed_document_count": finish.indexed_document_count,
        "deleted_document_count": finish.deleted_document_count,
        "indexed_document_volume": finish.indexed_document_volume,
        "last_seen": now,
    });
    if let Some(total) = finish.total_document_count {
        doc["total_document_count"] = json!(total);
    }
    match finish.status {
        JobStatus::Completed | JobStatus::Error => doc["completed_at"] = json!(now),
        JobStatus::Canceled => {
            doc["completed_at"] = json!(now);
            doc["canceled_at"] = json!(now);
        }
        _ => {}
    }
    doc
}

/// How the backend's callers see the client's failures: a 404 is `NotFound`, a 409 a
/// `Conflict`, node-level failures `Unreachable`; the server's type and reason are kept.
impl From<elastic::Error> for BackendError {
    fn from(e: elastic::Error) -> Self {
        use elastic::Error;
        match e {
            Error::Api {
                status: 404,
                reason,
                kind,
                ..
            } => BackendError::NotFound(if reason.is_empty() { kind } else { reason }),
            Error::Api {
                status: 409,
                reason,
                kind,
                ..
            } => BackendError::Conflict(if reason.is_empty() { kind } else { reason }),
            Error::Api {
                status: 401 | 403,
                kind,
                reason,
                ..
            } => BackendError::Unauthorized(format!("{kind}: {reason}")),
            Error::Api {
                status,
                kind,
                reason,
                ..
            } => BackendError::Rejected {
                status,
                kind,
                reason,
            },
            e @ (Error::Unreachable { .. } | Error::Timeout { .. }) => {
                BackendError::Unreachable(e.to_string())
            }
            other => BackendError::Other(other.to_string()),
        }
    }
}

#[async_trait]
impl IdScan for elastic::documents::PitScan {
    async fn next_page(&mut self) -> Result<Option<IdPage>> {
        Ok(self.next().await?)
    }

    async fn close(&mut self) -> Result<()> {
        Ok(self.close_pit().await?)
    }

    /// A PIT: the index as it was when the scan opened (a missing index scans as empty).
    fn is_point_in_time(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elastic::Error;
    use std::time::Duration;

    #[test]
    fn a_parsed_not_found_body_keeps_its_reason() {
        let body = br#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"connector [x] not found"}],"type":"resource_not_found_exception","reason":"connector [x] not found"},"status":404}"#;
        let e = Error::from_response(404, body);
        assert!(
            matches!(BackendError::from(e), BackendError::NotFound(r) if r == "connector [x] not found")
        );
    }

    #[test]
    fn maps_into_backend_errors() {
        let api = |status: u16| Error::Api {
            status,
            kind: "k".into(),
            reason: "r".into(),
            root_causes: vec![],
        };
        assert!(matches!(
            BackendError::from(api(409)),
            BackendError::Conflict(_)
        ));
        assert!(matches!(
            BackendError::from(api(401)),
            BackendError::Unauthorized(_)
        ));
        assert!(matches!(
            BackendError::from(api(403)),
            BackendError::Unauthorized(_)
        ));
        assert!(matches!(
            BackendError::from(api(400)),
            BackendError::Rejected { status: 400, .. }
        ));
        let unreachable = Error::Unreachable {
            attempts: 4,
            last: "refused".into(),
        };
        assert!(matches!(
            BackendError::from(unreachable),
            BackendError::Unreachable(_)
        ));
        let timeout = Error::Timeout {
            node: "n".into(),
            after: Duration::from_secs(1),
        };
        assert!(matches!(
            BackendError::from(timeout),
            BackendError::Unreachable(_)
        ));
        let decode = Error::Decode {
            url_path: "/".into(),
            reason: "eof".into(),
        };
        assert!(matches!(BackendError::from(decode), BackendError::Other(_)));
    }
}
