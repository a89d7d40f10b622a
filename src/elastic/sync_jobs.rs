//! The `_connector/_sync_job` API (PROTOCOL.md §4.2): create, list, get, cancel, delete and
//! the worker-side calls (claim, check-in, stats, error). Seq_no-guarded document access to
//! `.elastic-connectors-sync-jobs` is `connector_docs`, not here.

use super::connectors::DEFAULT_PAGE_SIZE;
use super::error::Result;
use super::transport::{Method, Transport, path};
use crate::model::SyncJobQuery;
use crate::model::{JobType, Page, SyncJob, SyncStats, TriggerMethod};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The answer to `POST _connector/_sync_job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedJob {
    pub id: String,
}

/// The sync job API family.
pub struct SyncJobs<'a> {
    transport: &'a Transport,
}

impl<'a> SyncJobs<'a> {
    pub(crate) fn new(transport: &'a Transport) -> Self {
        Self { transport }
    }

    /// `POST _connector/_sync_job` with the **connector** id; returns the new job's id.
    pub async fn create(
        &self,
        connector_id: &str,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String> {
        let url = "/_connector/_sync_job";
        let body = json!({ "id": connector_id, "job_type": job_type, "trigger_method": trigger });
        let body = Transport::encode(url, &body)?;
        let created: CreatedJob = self
            .transport
            .request(Method::POST, url, &[], Some(body))
            .await?;
        Ok(created.id)
    }

    /// One page of `GET _connector/_sync_job` (newest first).
    pub async fn list(&self, query: &SyncJobQuery) -> Result<Page<SyncJob>> {
        let params = list_params(query);
        self.transport
            .request(Method::GET, "/_connector/_sync_job", &params, None)
            .await
    }

    /// Every job matching the filters, page after page.
    pub async fn list_all(&self, query: &SyncJobQuery) -> Result<Vec<SyncJob>> {
        let size = query.size.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let mut page_query = SyncJobQuery {
            size: Some(size),
            ..query.clone()
        };
        let mut all = Vec::new();
        loop {
            let page = self.list(&page_query).await?;
            let got = page.results.len() as u64;
            all.extend(page.results);
            if got < size || all.len() as u64 >= page.count {
                return Ok(all);
            }
            page_query.from += got;
        }
    }

    pub async fn get(&self, id: &str) -> Result<SyncJob> {
        self.transport
            .request(
                Method::GET,
                &path(&["_connector", "_sync_job", id]),
                &[],
                None,
            )
            .await
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        self.transport
            .send(
                Method::DELETE,
                &path(&["_connector", "_sync_job", id]),
                &[],
                None,
            )
            .await?;
        Ok(())
    }

    /// `PUT …/_cancel`: pending/suspended jobs end `canceled`, running ones go `canceling`.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.put(id, "_cancel", None::<&Value>).await
    }

    /// `PUT …/_check_in`: the worker's heartbeat.
    pub async fn check_in(&self, id: &str) -> Result<()> {
        self.put(id, "_check_in", None::<&Value>).await
    }

    /// `PUT …/_claim`: the job becomes `in_progress` on this worker; `sync_cursor` is stored
    /// in the job's connector snapshot when given.
    pub async fn claim(
        &self,
        id: &str,
        worker_hostname: &str,
        sync_cursor: Option<&Value>,
    ) -> Result<()> {
        let mut body = json!({ "worker_hostname": worker_hostname });
        if let Some(cursor) = sync_cursor {
            body["sync_cursor"] = cursor.clone();
        }
        self.put(id, "_claim", Some(&body)).await
    }

    /// `PUT …/_stats`: counts, volume (whole MiB) and, optionally, total and metadata.
    pub async fn update_stats(&self, id: &str, stats: &SyncStats) -> Result<()> {
        self.put(id, "_stats", Some(stats)).await
    }

    /// `PUT …/_error`: the job becomes `error` with this message.
    pub async fn set_error(&self, id: &str, error: &str) -> Result<()> {
        self.put(id, "_error", Some(&json!({ "error": error })))
            .await
    }

    async fn put<B: Serialize>(&self, id: &str, endpoint: &str, body: Option<&B>) -> Result<()> {
        let url = path(&["_connector", "_sync_job", id, endpoint]);
        let body = body.map(|b| Transport::encode(&url, b)).transpose()?;
        self.transport.send(Method::PUT, &url, &[], body).await?;
        Ok(())
    }
}

fn list_params(query: &SyncJobQuery) -> Vec<(&'static str, String)> {
    let mut params = vec![("from", query.from.to_string())];
    if let Some(size) = query.size {
        params.push(("size", size.to_string()));
    }
    if let Some(connector_id) = &query.connector_id {
        params.push(("connector_id", connector_id.clone()));
    }
    if let Some(status) = query.status {
        params.push(("status", status.as_str().to_string()));
    }
    if !query.job_types.is_empty() {
        let types: Vec<&str> = query.job_types.iter().map(JobType::as_str).collect();
        params.push(("job_type", types.join(",")));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobStatus;

    #[test]
    fn list_params_use_protocol_spellings() {
        let q = SyncJobQuery {
            from: 0,
            size: None,
            connector_id: Some("c1".into()),
            status: Some(JobStatus::InProgress),
            job_types: vec![JobType::Full, JobType::AccessControl],
        };
        assert_eq!(
            list_params(&q),
            vec![
                ("from", "0".to_string()),
                ("connector_id", "c1".to_string()),
                ("status", "in_progress".to_string()),
                ("job_type", "full,access_control".to_string()),
            ]
        );
    }
}
