//! `ReadOnly`: a control plane wrapper for read-only profiles. Reads pass through; every
//! mutation is refused with [`BackendError::ReadOnly`] before anything is sent, so one wrapper
//! guards the CLI, the console and the engine alike (like k9s' read-only contexts).

use super::{
    BackendError, ClusterSummary, ConfigurationUpdate, ConnectorQuery, ControlPlane, LastSync,
    Result, SyncJobQuery,
};
use crate::model::Features;
use crate::model::{
    Connector, ConnectorStatus, FilteringRule, FilteringValidation, JobType, NewConnector, Page,
    Pipeline, Scheduling, SyncJob, SyncStats, TriggerMethod,
};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

pub struct ReadOnly {
    inner: Arc<dyn ControlPlane>,
    profile: String,
}

impl ReadOnly {
    pub fn new(inner: Arc<dyn ControlPlane>, profile: impl Into<String>) -> Self {
        Self {
            inner,
            profile: profile.into(),
        }
    }

    fn refuse<T>(&self, action: &str) -> Result<T> {
        Err(BackendError::ReadOnly {
            profile: self.profile.clone(),
            action: action.to_string(),
        })
    }
}

#[async_trait]
impl ControlPlane for ReadOnly {
    async fn cluster(&self) -> Result<ClusterSummary> {
        self.inner.cluster().await
    }
    async fn cluster_id(&self) -> Result<super::ClusterId> {
        self.inner.cluster_id().await
    }
    fn read_only(&self) -> bool {
        true
    }
    async fn list_connectors(&self, query: &ConnectorQuery) -> Result<Page<Connector>> {
        self.inner.list_connectors(query).await
    }
    async fn get_connector(&self, id: &str) -> Result<Connector> {
        self.inner.get_connector(id).await
    }
    async fn create_connector(&self, _: &NewConnector) -> Result<String> {
        self.refuse("create connector")
    }
    async fn delete_connector(&self, _: &str, _: bool, _: bool) -> Result<()> {
        self.refuse("delete connector")
    }
    async fn check_in_connector(&self, _: &str) -> Result<()> {
        self.refuse("check in connector")
    }
    async fn update_configuration(&self, _: &str, _: &ConfigurationUpdate) -> Result<()> {
        self.refuse("update configuration")
    }
    async fn update_status(&self, _: &str, _: ConnectorStatus) -> Result<()> {
        self.refuse("update status")
    }
    async fn update_error(&self, _: &str, _: Option<&str>) -> Result<()> {
        self.refuse("update error")
    }
    async fn update_filtering(
        &self,
        _: &str,
        _: &[FilteringRule],
        _: Option<&Value>,
    ) -> Result<()> {
        self.refuse("update filtering")
    }
    async fn update_filtering_validation(&self, _: &str, _: &FilteringValidation) -> Result<()> {
        self.refuse("update filtering validation")
    }
    async fn activate_filtering(&self, _: &str) -> Result<()> {
        self.refuse("activate filtering")
    }
    async fn update_features(&self, _: &str, _: &Features) -> Result<()> {
        self.refuse("update features")
    }
    async fn update_scheduling(&self, _: &str, _: &Scheduling) -> Result<()> {
        self.refuse("update scheduling")
    }
    async fn update_name(&self, _: &str, _: Option<&str>, _: Option<&str>) -> Result<()> {
        self.refuse("update name")
    }
    async fn update_index_name(&self, _: &str, _: Option<&str>) -> Result<()> {
        self.refuse("update index name")
    }
    async fn update_pipeline(&self, _: &str, _: &Pipeline) -> Result<()> {
        self.refuse("update pipeline")
    }
    async fn update_service_type(&self, _: &str, _: &str) -> Result<()> {
        self.refuse("update service type")
    }
    async fn update_last_sync(&self, _: &str, _: &LastSync) -> Result<()> {
        self.refuse("update last sync")
    }
    async fn list_sync_jobs(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
        self.inner.list_sync_jobs(query).await
    }
    async fn get_sync_job(&self, id: &str) -> Result<SyncJob> {
        self.inner.get_sync_job(id).await
    }
    async fn create_sync_job(&self, _: &str, _: JobType, _: TriggerMethod) -> Result<String> {
        self.refuse("start sync job")
    }
    async fn cancel_sync_job(&self, _: &str) -> Result<()> {
        self.refuse("cancel sync job")
    }
    async fn delete_sync_job(&self, _: &str) -> Result<()> {
        self.refuse("delete sync job")
    }
    async fn claim_sync_job(&self, _: &str, _: &str, _: Option<&Value>) -> Result<()> {
        self.refuse("claim sync job")
    }
    async fn check_in_sync_job(&self, _: &str) -> Result<()> {
        self.refuse("check in sync job")
    }
    async fn update_sync_job_stats(&self, _: &str, _: &SyncStats) -> Result<()> {
        self.refuse("update sync job stats")
    }
    async fn set_sync_job_error(&self, _: &str, _: &str) -> Result<()> {
        self.refuse("set sync job error")
    }
    async fn finish_sync_job(&self, _: &str, _: &super::JobFinish) -> Result<()> {
        self.refuse("finish sync job")
    }
    async fn delete_sync_job_if_unchanged(&self, _: &SyncJob) -> Result<bool> {
        self.refuse("delete sync job")
    }
    async fn finish_sync_job_if_unchanged(
        &self,
        _: &SyncJob,
        _: &super::JobFinish,
    ) -> Result<bool> {
        self.refuse("finish sync job")
    }
    async fn try_start_guard(&self, _: &str, _: JobType) -> Result<super::GuardAttempt> {
        self.refuse("start sync")
    }
    async fn merge_configuration(&self, _: &str, _: &serde_json::Map<String, Value>) -> Result<()> {
        self.refuse("update configuration")
    }
    async fn search_sync_jobs(&self, filter: &super::JobFilter) -> Result<Vec<SyncJob>> {
        self.inner.search_sync_jobs(filter).await
    }
    async fn mark_sync_scheduled(
        &self,
        _: &str,
        _: JobType,
        _: crate::model::Timestamp,
        _: crate::model::Timestamp,
    ) -> Result<super::ScheduleMark> {
        self.refuse("schedule sync")
    }
}
