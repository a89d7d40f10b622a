//! The `_connector` API (PROTOCOL.md §4.1): list, get, create, delete, check-in and every
//! update endpoint, with paths and bodies as the REST spec defines them. Direct document
//! access to `.elastic-connectors` (seq_no-guarded updates) is `connector_docs`, not here.

use super::error::Result;
use super::transport::{Body, Method, Transport, path};
use crate::model::{
    ConfigurationUpdate, Connector, ConnectorQuery, ConnectorStatus, Features, FilteringConfig,
    FilteringRule, FilteringValidation, LastSync, NewConnector, Page, Pipeline, Scheduling,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The server's default page size for lists.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// The answer to a create (`PUT`/`POST _connector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// `created` or `updated` (a `PUT` on an existing id).
    #[serde(default)]
    pub result: String,
    pub id: String,
}

/// The answer to an update endpoint (`{"result":"updated"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated {
    #[serde(default)]
    pub result: String,
}

/// The answer to a delete (`{"acknowledged":true}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    #[serde(default)]
    pub acknowledged: bool,
}

/// The connector API family.
pub struct Connectors<'a> {
    transport: &'a Transport,
}

impl<'a> Connectors<'a> {
    pub(crate) fn new(transport: &'a Transport) -> Self {
        Self { transport }
    }

    /// One page of `GET _connector`.
    pub async fn list(&self, query: &ConnectorQuery) -> Result<Page<Connector>> {
        let params = list_params(query);
        self.transport
            .request(Method::GET, "/_connector", &params, None)
            .await
    }

    /// Every connector matching the filters, page after page (`size` per page, 100 by
    /// default), starting at `query.from`.
    pub async fn list_all(&self, query: &ConnectorQuery) -> Result<Vec<Connector>> {
        let size = query.size.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let mut page_query = ConnectorQuery {
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

    pub async fn get(&self, id: &str) -> Result<Connector> {
        self.get_with(id, false).await
    }

    /// `GET _connector/{id}`, optionally returning a soft-deleted connector.
    pub async fn get_with(&self, id: &str, include_deleted: bool) -> Result<Connector> {
        let params = if include_deleted {
            vec![("include_deleted", "true".to_string())]
        } else {
            vec![]
        };
        self.transport
            .request(Method::GET, &path(&["_connector", id]), &params, None)
            .await
    }

    /// `PUT _connector/{id}` when the id is given, else `POST _connector`.
    pub async fn create(&self, new: &NewConnector) -> Result<Created> {
        let (method, url) = match &new.id {
            Some(id) => (Method::PUT, path(&["_connector", id])),
            None => (Method::POST, "/_connector".to_string()),
        };
        let body = Transport::encode(&url, new)?;
        self.transport.request(method, &url, &[], Some(body)).await
    }

    /// `DELETE _connector/{id}`: soft unless `hard`.
    pub async fn delete(&self, id: &str, hard: bool, delete_sync_jobs: bool) -> Result<()> {
        let mut params = Vec::new();
        if hard {
            params.push(("hard", "true".to_string()));
        }
        if delete_sync_jobs {
            params.push(("delete_sync_jobs", "true".to_string()));
        }
        let _: Acknowledged = self
            .transport
            .request(Method::DELETE, &path(&["_connector", id]), &params, None)
            .await?;
        Ok(())
    }

    /// `PUT _connector/{id}/_check_in`: the worker's heartbeat.
    pub async fn check_in(&self, id: &str) -> Result<()> {
        self.transport
            .send(
                Method::PUT,
                &path(&["_connector", id, "_check_in"]),
                &[],
                None,
            )
            .await?;
        Ok(())
    }

    /// `PUT _connector/{id}/_configuration` with `{configuration}` (whole schema) or
    /// `{values}` (values of existing keys).
    pub async fn update_configuration(&self, id: &str, update: &ConfigurationUpdate) -> Result<()> {
        let body = match update {
            ConfigurationUpdate::Replace(configuration) => {
                json!({ "configuration": configuration })
            }
            ConfigurationUpdate::Values(values) => json!({ "values": values }),
        };
        self.put(id, "_configuration", &body).await
    }

    /// `PUT _connector/{id}/_status`; the server checks the transition.
    pub async fn update_status(&self, id: &str, status: ConnectorStatus) -> Result<()> {
        self.put(id, "_status", &json!({ "status": status })).await
    }

    /// `PUT _connector/{id}/_error`: `Some` sets status `error`, `None` clears it.
    pub async fn update_error(&self, id: &str, error: Option<&str>) -> Result<()> {
        self.put(id, "_error", &json!({ "error": error })).await
    }

    /// `PUT _connector/{id}/_filtering` on the draft: new basic rules and/or a new advanced
    /// snippet value (what is `None` is left alone).
    pub async fn update_filtering(
        &self,
        id: &str,
        rules: Option<&[FilteringRule]>,
        advanced_snippet: Option<&Value>,
    ) -> Result<()> {
        let mut body = serde_json::Map::new();
        if let Some(rules) = rules {
            body.insert("rules".into(), json!(rules));
        }
        if let Some(value) = advanced_snippet {
            body.insert("advanced_snippet".into(), json!({ "value": value }));
        }
        self.put(id, "_filtering", &body).await
    }

    /// The legacy form of `_filtering`: replaces the whole `filtering` list.
    pub async fn replace_filtering(&self, id: &str, filtering: &[FilteringConfig]) -> Result<()> {
        self.put(id, "_filtering", &json!({ "filtering": filtering }))
            .await
    }

    /// `PUT _connector/{id}/_filtering/_validation`: the draft's validation result.
    pub async fn update_filtering_validation(
        &self,
        id: &str,
        validation: &FilteringValidation,
    ) -> Result<()> {
        let url = path(&["_connector", id, "_filtering", "_validation"]);
        let body = Transport::encode(&url, &json!({ "validation": validation }))?;
        self.transport
            .send(Method::PUT, &url, &[], Some(body))
            .await?;
        Ok(())
    }

    /// `PUT _connector/{id}/_filtering/_activate`: the draft becomes the active rules.
    pub async fn activate_filtering(&self, id: &str) -> Result<()> {
        let url = path(&["_connector", id, "_filtering", "_activate"]);
        self.transport.send(Method::PUT, &url, &[], None).await?;
        Ok(())
    }

    pub async fn update_scheduling(&self, id: &str, scheduling: &Scheduling) -> Result<()> {
        self.put(id, "_scheduling", &json!({ "scheduling": scheduling }))
            .await
    }

    /// `PUT _connector/{id}/_name`: what is `None` is not sent.
    pub async fn update_name(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        let mut body = serde_json::Map::new();
        if let Some(name) = name {
            body.insert("name".into(), json!(name));
        }
        if let Some(description) = description {
            body.insert("description".into(), json!(description));
        }
        self.put(id, "_name", &body).await
    }

    pub async fn update_native(&self, id: &str, is_native: bool) -> Result<()> {
        self.put(id, "_native", &json!({ "is_native": is_native }))
            .await
    }

    /// `PUT _connector/{id}/_index_name`; `None` detaches the index.
    pub async fn update_index_name(&self, id: &str, index_name: Option<&str>) -> Result<()> {
        self.put(id, "_index_name", &json!({ "index_name": index_name }))
            .await
    }

    pub async fn update_pipeline(&self, id: &str, pipeline: &Pipeline) -> Result<()> {
        self.put(id, "_pipeline", &json!({ "pipeline": pipeline }))
            .await
    }

    pub async fn update_service_type(&self, id: &str, service_type: &str) -> Result<()> {
        self.put(
            id,
            "_service_type",
            &json!({ "service_type": service_type }),
        )
        .await
    }

    /// `PUT _connector/{id}/_api_key_id`: what is `None` is not sent.
    pub async fn update_api_key_id(
        &self,
        id: &str,
        api_key_id: Option<&str>,
        api_key_secret_id: Option<&str>,
    ) -> Result<()> {
        let mut body = serde_json::Map::new();
        if let Some(key_id) = api_key_id {
            body.insert("api_key_id".into(), json!(key_id));
        }
        if let Some(secret_id) = api_key_secret_id {
            body.insert("api_key_secret_id".into(), json!(secret_id));
        }
        self.put(id, "_api_key_id", &body).await
    }

    pub async fn update_features(&self, id: &str, features: &Features) -> Result<()> {
        self.put(id, "_features", &json!({ "features": features }))
            .await
    }

    /// `PUT _connector/{id}/_last_sync`: the `last_*` fields a worker writes at a job's end.
    pub async fn update_last_sync(&self, id: &str, last: &LastSync) -> Result<()> {
        self.put(id, "_last_sync", last).await
    }

    /// `PUT _connector/{id}/{endpoint}` with a JSON body, answered by `{result:"updated"}`.
    async fn put<B: Serialize + ?Sized>(&self, id: &str, endpoint: &str, body: &B) -> Result<()> {
        let url = path(&["_connector", id, endpoint]);
        let body: Body = Transport::encode(&url, body)?;
        let _: Updated = self
            .transport
            .request(Method::PUT, &url, &[], Some(body))
            .await?;
        Ok(())
    }
}

/// Query parameters of `GET _connector`; empty filters are left out.
fn list_params(query: &ConnectorQuery) -> Vec<(&'static str, String)> {
    let mut params = vec![("from", query.from.to_string())];
    if let Some(size) = query.size {
        params.push(("size", size.to_string()));
    }
    let lists = [
        ("index_name", &query.index_names),
        ("connector_name", &query.connector_names),
        ("service_type", &query.service_types),
    ];
    for (key, values) in lists {
        if !values.is_empty() {
            params.push((key, values.join(",")));
        }
    }
    if let Some(text) = query.query.as_deref().filter(|q| !q.is_empty()) {
        params.push(("query", text.to_string()));
    }
    if query.include_deleted {
        params.push(("include_deleted", "true".to_string()));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_join_lists_and_skip_empty_filters() {
        let q = ConnectorQuery {
            from: 20,
            size: Some(10),
            index_names: vec!["a".into(), "b".into()],
            service_types: vec!["ndjson".into()],
            query: Some(String::new()),
            include_deleted: true,
            ..Default::default()
        };
        let params = list_params(&q);
        assert_eq!(
            params,
            vec![
                ("from", "20".to_string()),
                ("size", "10".to_string()),
                ("index_name", "a,b".to_string()),
                ("service_type", "ndjson".to_string()),
                ("include_deleted", "true".to_string()),
            ]
        );
    }
}
