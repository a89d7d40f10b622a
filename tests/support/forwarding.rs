//! A control plane that forwards every call to a real backend, except where a test hooks in:
//! the tests that need a backend which loses a claim, or stalls before its start guard,
//! override one [`Hooks`] method instead of forwarding the whole [`ControlPlane`] by hand.
//! Every method is forwarded, the defaulted ones too, so the wrapper behaves as the real
//! backend (its seq_no-guarded writes included) wherever no hook says otherwise. A method
//! added to `ControlPlane` gets one forwarding line here.

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::Arc;
use syncdeck::backend::{
    ClusterId, ClusterSummary, ConfigurationUpdate, ConnectorQuery, ControlPlane, GuardAttempt,
    JobFilter, JobFinish, LastSync, PriorSync, Result, ScheduleMark, SyncJobQuery,
};
use syncdeck::model::{
    Connector, ConnectorStatus, Features, FilteringRule, FilteringValidation, JobType,
    NewConnector, Page, Pipeline, Scheduling, SyncJob, SyncStats, Timestamp, TriggerMethod,
};

/// What a test changes: each hook runs in place of the [`ControlPlane`] method of the same
/// name, with the real backend as `inner`. The defaults forward. Add a hook here when a test
/// needs to intercept another method.
#[async_trait]
pub trait Hooks: Send + Sync {
    async fn get_sync_job(&self, inner: &dyn ControlPlane, id: &str) -> Result<SyncJob> {
        inner.get_sync_job(id).await
    }

    async fn list_sync_jobs(
        &self,
        inner: &dyn ControlPlane,
        query: &SyncJobQuery,
    ) -> Result<Page<SyncJob>> {
        inner.list_sync_jobs(query).await
    }

    async fn claim_sync_job(
        &self,
        inner: &dyn ControlPlane,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()> {
        inner.claim_sync_job(id, worker_hostname, sync_cursor).await
    }

    async fn mark_sync_started(
        &self,
        inner: &dyn ControlPlane,
        connector_id: &str,
        job_type: JobType,
    ) -> Result<bool> {
        inner.mark_sync_started(connector_id, job_type).await
    }

    async fn try_start_guard(
        &self,
        inner: &dyn ControlPlane,
        connector_id: &str,
        job_type: JobType,
    ) -> Result<GuardAttempt> {
        inner.try_start_guard(connector_id, job_type).await
    }
}

/// `inner` with `hooks` in front of it.
pub struct Forwarding<H> {
    pub inner: Arc<dyn ControlPlane>,
    pub hooks: H,
}

impl<H: Hooks> Forwarding<H> {
    pub fn new(inner: Arc<dyn ControlPlane>, hooks: H) -> Self {
        Forwarding { inner, hooks }
    }
}

#[async_trait]
impl<H: Hooks> ControlPlane for Forwarding<H> {
    async fn cluster(&self) -> Result<ClusterSummary> {
        self.inner.cluster().await
    }
    async fn cluster_id(&self) -> Result<ClusterId> {
        self.inner.cluster_id().await
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    async fn list_connectors(&self, query: &ConnectorQuery) -> Result<Page<Connector>> {
        self.inner.list_connectors(query).await
    }
    async fn get_connector(&self, id: &str) -> Result<Connector> {
        self.inner.get_connector(id).await
    }
    async fn create_connector(&self, new: &NewConnector) -> Result<String> {
        self.inner.create_connector(new).await
    }
    async fn delete_connector(&self, id: &str, hard: bool, jobs: bool) -> Result<()> {
        self.inner.delete_connector(id, hard, jobs).await
    }
    async fn check_in_connector(&self, id: &str) -> Result<()> {
        self.inner.check_in_connector(id).await
    }
    async fn update_configuration(&self, id: &str, update: &ConfigurationUpdate) -> Result<()> {
        self.inner.update_configuration(id, update).await
    }
    async fn update_status(&self, id: &str, status: ConnectorStatus) -> Result<()> {
        self.inner.update_status(id, status).await
    }
    async fn update_error(&self, id: &str, error: Option<&str>) -> Result<()> {
        self.inner.update_error(id, error).await
    }
    async fn update_filtering(
        &self,
        id: &str,
        rules: &[FilteringRule],
        advanced: Option<&Value>,
    ) -> Result<()> {
        self.inner.update_filtering(id, rules, advanced).await
    }
    async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        self.inner.update_filtering_validation(id, validation).await
    }
    async fn activate_filtering(&self, id: &str) -> Result<()> {
        self.inner.activate_filtering(id).await
    }
    async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        self.inner.update_features(id, features).await
    }
    async fn update_scheduling(&self, id: &str, scheduling: &Scheduling) -> Result<()> {
        self.inner.update_scheduling(id, scheduling).await
    }
    async fn update_name(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        self.inner.update_name(id, name, description).await
    }
    async fn update_index_name(&self, id: &str, index_name: Option<&str>) -> Result<()> {
        self.inner.update_index_name(id, index_name).await
    }
    async fn update_pipeline(&self, id: &str, pipeline: &Pipeline) -> Result<()> {
        self.inner.update_pipeline(id, pipeline).await
    }
    async fn update_service_type(&self, id: &str, service_type: &str) -> Result<()> {
        self.inner.update_service_type(id, service_type).await
    }
    async fn update_last_sync(&self, id: &str, last: &LastSync) -> Result<()> {
        self.inner.update_last_sync(id, last).await
    }
    async fn list_sync_jobs(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
        self.hooks.list_sync_jobs(self.inner.as_ref(), query).await
    }
    async fn get_sync_job(&self, id: &str) -> Result<SyncJob> {
        self.hooks.get_sync_job(self.inner.as_ref(), id).await
    }
    async fn create_sync_job(
        &self,
        connector_id: &str,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String> {
        self.inner
            .create_sync_job(connector_id, job_type, trigger)
            .await
    }
    async fn cancel_sync_job(&self, id: &str) -> Result<()> {
        self.inner.cancel_sync_job(id).await
    }
    async fn delete_sync_job(&self, id: &str) -> Result<()> {
        self.inner.delete_sync_job(id).await
    }
    async fn delete_sync_job_if_unchanged(&self, expected: &SyncJob) -> Result<bool> {
        self.inner.delete_sync_job_if_unchanged(expected).await
    }
    async fn claim_sync_job(
        &self,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()> {
        self.hooks
            .claim_sync_job(self.inner.as_ref(), id, worker_hostname, sync_cursor)
            .await
    }
    async fn check_in_sync_job(&self, id: &str) -> Result<()> {
        self.inner.check_in_sync_job(id).await
    }
    async fn update_sync_job_stats(&self, id: &str, stats: &SyncStats) -> Result<()> {
        self.inner.update_sync_job_stats(id, stats).await
    }
    async fn set_sync_job_error(&self, id: &str, error: &str) -> Result<()> {
        self.inner.set_sync_job_error(id, error).await
    }
    async fn finish_sync_job(&self, id: &str, finish: &JobFinish) -> Result<()> {
        self.inner.finish_sync_job(id, finish).await
    }
    async fn finish_sync_job_if_unchanged(
        &self,
        expected: &SyncJob,
        finish: &JobFinish,
    ) -> Result<bool> {
        self.inner
            .finish_sync_job_if_unchanged(expected, finish)
            .await
    }
    async fn mark_sync_started(&self, connector_id: &str, job_type: JobType) -> Result<bool> {
        self.hooks
            .mark_sync_started(self.inner.as_ref(), connector_id, job_type)
            .await
    }
    async fn try_start_guard(&self, connector_id: &str, job_type: JobType) -> Result<GuardAttempt> {
        self.hooks
            .try_start_guard(self.inner.as_ref(), connector_id, job_type)
            .await
    }
    async fn restore_last_sync(
        &self,
        connector_id: &str,
        job_type: JobType,
        prior: &PriorSync,
    ) -> Result<()> {
        self.inner
            .restore_last_sync(connector_id, job_type, prior)
            .await
    }
    async fn merge_configuration(&self, id: &str, fields: &Map<String, Value>) -> Result<()> {
        self.inner.merge_configuration(id, fields).await
    }
    async fn search_sync_jobs(&self, filter: &JobFilter) -> Result<Vec<SyncJob>> {
        self.inner.search_sync_jobs(filter).await
    }
    async fn mark_sync_scheduled(
        &self,
        connector_id: &str,
        job_type: JobType,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<ScheduleMark> {
        self.inner
            .mark_sync_scheduled(connector_id, job_type, since, at)
            .await
    }
}
