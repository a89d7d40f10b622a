//! Every typed Elasticsearch API end to end against the stand-in: the `_connector` and
//! `_sync_job` APIs (with the documents they leave behind), the seq_no-guarded document
//! helpers, bulk with per-item results, the PIT id scan, single documents, indices, and the
//! same through the backend's `ControlPlane` and `DocumentStore` traits.

use crate::support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::{
    BackendError, BulkOp, BulkRequest, ConfigurationUpdate, ConnectorQuery, ControlPlane,
    DocumentStore, LastSync, SyncJobQuery,
};
use syncdeck::config::EsSettings;
use syncdeck::elastic::connector_docs::{JobSearch, SeqNo};
use syncdeck::elastic::documents::BULK_FILTER_PATH;
use syncdeck::elastic::{Elasticsearch, Error};
use syncdeck::model::{
    ConfigField, Configuration, ConnectorStatus, Features, FilteringRule, FilteringValidation,
    FilteringValidationState, JobStatus, JobType, NewConnector, Pipeline, RulePolicy, RuleType,
    ScheduleConfig, Scheduling, SyncStats, TriggerMethod,
};

async fn standin() -> StandIn {
    StandIn::start(StandInOptions {
        nodes: 2,
        kibana: false,
        ..Default::default()
    })
    .await
}

fn settings(standin: &StandIn) -> EsSettings {
    let mut s = EsSettings::new(
        standin
            .es_urls()
            .iter()
            .map(|u| u.parse().unwrap())
            .collect(),
    );
    s.request_timeout = Duration::from_secs(10);
    s
}

fn client(standin: &StandIn) -> Elasticsearch {
    Elasticsearch::new(&settings(standin)).unwrap()
}

fn new_connector(id: Option<&str>, name: &str, index: &str, service_type: &str) -> NewConnector {
    NewConnector {
        id: id.map(str::to_string),
        name: Some(name.to_string()),
        index_name: Some(index.to_string()),
        service_type: Some(service_type.to_string()),
        is_native: Some(false),
        ..Default::default()
    }
}

fn rule(id: &str, order: i64, field: &str, value: &str) -> FilteringRule {
    FilteringRule {
        id: id.into(),
        policy: RulePolicy::Exclude,
        field: field.into(),
        rule: RuleType::Equals,
        value: value.into(),
        order,
        created_at: None,
        updated_at: None,
    }
}

/// An NDJSON bulk body of `index` actions for these ids.
fn index_body(ids: impl IntoIterator<Item = String>, extra: &Value) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    let mut n = 0;
    for id in ids {
        body.extend_from_slice(json!({"index": {"_id": id}}).to_string().as_bytes());
        body.push(b'\n');
        let mut doc =
            json!({"id": id, "_timestamp": "2024-05-01T10:00:00Z", "title": format!("doc {id}")});
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            doc.extend(extra.clone());
        }
        body.extend_from_slice(doc.to_string().as_bytes());
        body.push(b'\n');
        n += 1;
    }
    (body, n)
}

#[tokio::test]
async fn connectors_are_created_with_and_without_an_id_and_read_back() {
    let standin = standin().await;
    let es = client(&standin);
    let created = es
        .connectors()
        .create(&new_connector(
            Some("my-conn"),
            "Mine",
            "search-a",
            "ndjson",
        ))
        .await
        .unwrap();
    assert_eq!(
        (created.result.as_str(), created.id.as_str()),
        ("created", "my-conn")
    );
    let generated = es
        .connectors()
        .create(&new_connector(None, "Other", "search-b", "directory"))
        .await
        .unwrap();
    assert!(!generated.id.is_empty());
    let log = standin.requests();
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("PUT", "/_connector/my-conn")
    );
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str()),
        ("POST", "/_connector")
    );

    let c = es.connectors().get("my-conn").await.unwrap();
    assert_eq!(c.id, "my-conn");
    assert_eq!(c.name, "Mine");
    assert_eq!(c.index_name.as_deref(), Some("search-a"));
    assert_eq!(c.status, ConnectorStatus::Created);
    assert_eq!(c.filtering.len(), 1);
    assert!(
        c.filtering[0]
            .active
            .rules
            .iter()
            .any(FilteringRule::is_default)
    );
    assert_eq!(
        es.connectors().get(&generated.id).await.unwrap().name,
        "Other"
    );

    let err = es.connectors().get("nope").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.kind(), Some("resource_not_found_exception"));
    assert!(
        err.to_string().contains("connector [nope] not found"),
        "{err}"
    );
}

#[tokio::test]
async fn connector_lists_filter_and_page() {
    let standin = standin().await;
    let es = client(&standin);
    for i in 0..5 {
        let service = if i % 2 == 0 { "ndjson" } else { "directory" };
        let new = new_connector(
            Some(&format!("c{i}")),
            &format!("name-{i}"),
            &format!("search-{i}"),
            service,
        );
        es.connectors().create(&new).await.unwrap();
    }
    let all = es
        .connectors()
        .list(&ConnectorQuery::default())
        .await
        .unwrap();
    assert_eq!(all.count, 5);
    let ids: Vec<_> = all.results.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4"], "sorted by index name");

    let page = es
        .connectors()
        .list(&ConnectorQuery {
            from: 1,
            size: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.count, 5);
    assert_eq!(
        page.results
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );

    let by_type = ConnectorQuery {
        service_types: vec!["ndjson".into()],
        ..Default::default()
    };
    assert_eq!(es.connectors().list(&by_type).await.unwrap().count, 3);
    let by_index = ConnectorQuery {
        index_names: vec!["search-1".into(), "search-4".into()],
        ..Default::default()
    };
    let found = es.connectors().list(&by_index).await.unwrap();
    assert_eq!(
        found
            .results
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c4"]
    );
    let by_name = ConnectorQuery {
        connector_names: vec!["name-3".into()],
        ..Default::default()
    };
    assert_eq!(
        es.connectors().list(&by_name).await.unwrap().results[0].id,
        "c3"
    );
    let by_text = ConnectorQuery {
        query: Some("search-2".into()),
        ..Default::default()
    };
    assert_eq!(
        es.connectors().list(&by_text).await.unwrap().results[0].id,
        "c2"
    );
    let last = standin.requests().pop().unwrap();
    assert_eq!(last.query, "from=0&query=search-2");

    standin.clear_requests();
    let every = es
        .connectors()
        .list_all(&ConnectorQuery {
            size: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(every.len(), 5);
    assert_eq!(standin.requests().len(), 3, "three pages of two");

    es.connectors().delete("c0", false, false).await.unwrap();
    assert_eq!(
        es.connectors()
            .list(&ConnectorQuery::default())
            .await
            .unwrap()
            .count,
        4
    );
    let with_deleted = ConnectorQuery {
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(es.connectors().list(&with_deleted).await.unwrap().count, 5);
}

#[tokio::test]
async fn every_connector_update_endpoint_changes_the_document() {
    let standin = standin().await;
    let es = client(&standin);
    let api = es.connectors();
    api.create(&new_connector(Some("c"), "Before", "search-c", "ndjson"))
        .await
        .unwrap();

    let field = ConfigField {
        label: "Path".into(),
        value: json!("/data"),
        ..Default::default()
    };
    let configuration = Configuration([("path".to_string(), field)].into_iter().collect());
    api.update_configuration("c", &ConfigurationUpdate::Replace(configuration))
        .await
        .unwrap();
    let doc = standin.connector("c").unwrap();
    assert_eq!(doc["configuration"]["path"]["value"], "/data");
    assert_eq!(doc["status"], "configured");
    let values = json!({"path": "/other"}).as_object().unwrap().clone();
    api.update_configuration("c", &ConfigurationUpdate::Values(values))
        .await
        .unwrap();
    assert_eq!(
        standin.connector("c").unwrap()["configuration"]["path"]["value"],
        "/other"
    );
    let unknown = json!({"nope": 1}).as_object().unwrap().clone();
    let err = api
        .update_configuration("c", &ConfigurationUpdate::Values(unknown))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.kind()),
        (Some(400), Some("status_exception"))
    );

    api.update_status("c", ConnectorStatus::Connected)
        .await
        .unwrap();
    assert_eq!(standin.connector("c").unwrap()["status"], "connected");
    let err = api
        .update_status("c", ConnectorStatus::NeedsConfiguration)
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(400),
        "connected → needs_configuration is illegal"
    );

    api.update_error("c", Some("boom")).await.unwrap();
    let doc = standin.connector("c").unwrap();
    assert_eq!(
        (doc["status"].as_str(), doc["error"].as_str()),
        (Some("error"), Some("boom"))
    );
    api.update_error("c", None).await.unwrap();
    let doc = standin.connector("c").unwrap();
    assert_eq!(
        (doc["status"].as_str(), doc["error"].is_null()),
        (Some("connected"), true)
    );

    let rules = [rule("b", 2, "ext", "txt"), rule("a", 1, "ext", "tmp")];
    api.update_filtering("c", Some(&rules), Some(&json!({"tables": ["users"]})))
        .await
        .unwrap();
    let draft = &standin.connector("c").unwrap()["filtering"][0]["draft"];
    let ids: Vec<_> = draft["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "DEFAULT"], "sorted by order, DEFAULT last");
    assert_eq!(draft["advanced_snippet"]["value"]["tables"][0], "users");
    assert_eq!(draft["validation"]["state"], "edited");
    let err = api.activate_filtering("c").await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(400),
        "an edited draft cannot be activated"
    );
    let valid = FilteringValidation {
        state: FilteringValidationState::Valid,
        errors: vec![],
    };
    api.update_filtering_validation("c", &valid).await.unwrap();
    api.activate_filtering("c").await.unwrap();
    let c = api.get("c").await.unwrap();
    let active: Vec<_> = c.filtering[0]
        .active
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(active, ["a", "b", "DEFAULT"]);

    let scheduling = Scheduling {
        full: ScheduleConfig {
            enabled: true,
            interval: "0 0 * * * ?".into(),
        },
        ..Default::default()
    };
    api.update_scheduling("c", &scheduling).await.unwrap();
    assert_eq!(api.get("c").await.unwrap().scheduling, scheduling);
    let err = api
        .update_scheduling(
            "c",
            &Scheduling {
                full: ScheduleConfig {
                    enabled: true,
                    interval: "* * *".into(),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "a 3-field cron is refused");

    api.update_name("c", Some("After"), Some("described"))
        .await
        .unwrap();
    api.update_native("c", false).await.unwrap();
    api.update_index_name("c", Some("search-new"))
        .await
        .unwrap();
    let pipeline = Pipeline {
        name: "my-pipe".into(),
        extract_binary_content: false,
        ..Default::default()
    };
    api.update_pipeline("c", &pipeline).await.unwrap();
    api.update_service_type("c", "directory").await.unwrap();
    api.update_api_key_id("c", Some("key-id"), Some("secret-id"))
        .await
        .unwrap();
    let features = Features {
        incremental_sync: Some(json!({"enabled": true})),
        ..Default::default()
    };
    api.update_features("c", &features).await.unwrap();
    let last = LastSync {
        last_sync_status: Some(JobStatus::Completed),
        last_indexed_document_count: Some(42),
        sync_cursor: Some(json!({"page": 7})),
        ..Default::default()
    };
    api.update_last_sync("c", &last).await.unwrap();
    api.check_in("c").await.unwrap();

    let c = api.get("c").await.unwrap();
    assert_eq!(c.name, "After");
    assert_eq!(c.description.as_deref(), Some("described"));
    assert_eq!(c.index_name.as_deref(), Some("search-new"));
    assert_eq!(c.pipeline, Some(pipeline));
    assert_eq!(c.service_type.as_deref(), Some("directory"));
    assert_eq!(
        (c.api_key_id.as_deref(), c.api_key_secret_id.as_deref()),
        (Some("key-id"), Some("secret-id"))
    );
    assert!(c.features.unwrap().incremental_sync_enabled());
    assert_eq!(c.last_sync_status, Some(JobStatus::Completed));
    assert_eq!(c.last_indexed_document_count, Some(42));
    assert_eq!(c.sync_cursor, Some(json!({"page": 7})));
    assert!(c.last_seen.is_some(), "check-in set last_seen");

    api.update_index_name("c", None).await.unwrap();
    assert_eq!(api.get("c").await.unwrap().index_name, None);

    for endpoint in ["_check_in", "_name"] {
        let err = match endpoint {
            "_check_in" => api.check_in("missing").await.unwrap_err(),
            _ => api
                .update_name("missing", Some("x"), None)
                .await
                .unwrap_err(),
        };
        assert!(err.is_not_found(), "{endpoint}: {err}");
    }
}

#[tokio::test]
async fn connectors_are_soft_and_hard_deleted() {
    let standin = standin().await;
    let es = client(&standin);
    es.connectors()
        .create(&new_connector(Some("d"), "D", "search-d", "ndjson"))
        .await
        .unwrap();
    let job = es
        .sync_jobs()
        .create("d", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    es.connectors().delete("d", false, false).await.unwrap();
    assert!(es.connectors().get("d").await.unwrap_err().is_not_found());
    assert!(es.connectors().get_with("d", true).await.unwrap().deleted);
    es.connectors().delete("d", true, true).await.unwrap();
    assert!(standin.connector("d").is_none());
    assert!(
        es.sync_jobs().get(&job).await.unwrap_err().is_not_found(),
        "jobs deleted too"
    );
    let last = standin
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert_eq!(last.query, "hard=true&delete_sync_jobs=true");
}

#[tokio::test]
async fn a_sync_job_goes_through_its_life_cycle() {
    let standin = standin().await;
    let es = client(&standin);
    es.connectors()
        .create(&new_connector(Some("c"), "C", "search-c", "ndjson"))
        .await
        .unwrap();
    let jobs = es.sync_jobs();
    let id = jobs
        .create("c", JobType::Incremental, TriggerMethod::Scheduled)
        .await
        .unwrap();
    let job = jobs.get(&id).await.unwrap();
    assert_eq!(
        (job.status, job.job_type, job.trigger_method),
        (
            JobStatus::Pending,
            JobType::Incremental,
            TriggerMethod::Scheduled
        )
    );
    assert_eq!(job.connector.id, "c");
    assert_eq!(job.connector.index_name.as_deref(), Some("search-c"));

    jobs.claim(&id, "worker-1", Some(&json!({"cursor": 3})))
        .await
        .unwrap();
    let job = jobs.get(&id).await.unwrap();
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(job.worker_hostname.as_deref(), Some("worker-1"));
    assert!(job.started_at.is_some());
    assert_eq!(job.connector.sync_cursor, Some(json!({"cursor": 3})));
    let err = jobs.claim(&id, "worker-2", None).await.unwrap_err();
    assert!(
        err.is_conflict(),
        "the stand-in refuses a second claim: {err}"
    );

    jobs.check_in(&id).await.unwrap();
    let stats = SyncStats {
        deleted_document_count: 2,
        indexed_document_count: 20,
        indexed_document_volume: 1,
        total_document_count: Some(18),
        metadata: Some(json!({"k": "v"}).as_object().unwrap().clone()),
        ..Default::default()
    };
    jobs.update_stats(&id, &stats).await.unwrap();
    let job = jobs.get(&id).await.unwrap();
    assert_eq!(
        (
            job.indexed_document_count,
            job.deleted_document_count,
            job.indexed_document_volume
        ),
        (20, 2, 1)
    );
    assert_eq!(job.total_document_count, Some(18));
    assert_eq!(job.metadata["k"], "v");

    jobs.cancel(&id).await.unwrap();
    assert_eq!(jobs.get(&id).await.unwrap().status, JobStatus::Canceling);
    jobs.set_error(&id, "gave up").await.unwrap();
    let job = jobs.get(&id).await.unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Error, Some("gave up"))
    );
    let err = jobs.cancel(&id).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "error is terminal");

    let pending = jobs
        .create("c", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    jobs.cancel(&pending).await.unwrap();
    let job = jobs.get(&pending).await.unwrap();
    assert_eq!(job.status, JobStatus::Canceled);
    assert!(job.canceled_at.is_some() && job.completed_at.is_some());

    jobs.delete(&pending).await.unwrap();
    assert!(jobs.get(&pending).await.unwrap_err().is_not_found());
    assert!(
        jobs.claim("missing", "w", None)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let err = jobs
        .create("no-such-connector", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn sync_job_lists_filter_and_page() {
    let standin = standin().await;
    let es = client(&standin);
    for c in ["a", "b"] {
        es.connectors()
            .create(&new_connector(Some(c), c, &format!("search-{c}"), "ndjson"))
            .await
            .unwrap();
    }
    let jobs = es.sync_jobs();
    let mut ids = Vec::new();
    for (connector, job_type) in [
        ("a", JobType::Full),
        ("a", JobType::Incremental),
        ("a", JobType::AccessControl),
        ("b", JobType::Full),
    ] {
        ids.push(
            jobs.create(connector, job_type, TriggerMethod::OnDemand)
                .await
                .unwrap(),
        );
    }
    jobs.claim(&ids[0], "w", None).await.unwrap();

    let for_a = SyncJobQuery {
        connector_id: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(jobs.list(&for_a).await.unwrap().count, 3);
    let pending_a = SyncJobQuery {
        status: Some(JobStatus::Pending),
        ..for_a.clone()
    };
    assert_eq!(jobs.list(&pending_a).await.unwrap().count, 2);
    let types = SyncJobQuery {
        job_types: vec![JobType::Full, JobType::Incremental],
        ..for_a.clone()
    };
    assert_eq!(jobs.list(&types).await.unwrap().count, 2);
    let last = standin.requests().pop().unwrap();
    assert_eq!(
        last.query,
        "from=0&connector_id=a&job_type=full%2Cincremental"
    );
    let page = jobs
        .list(&SyncJobQuery {
            from: 1,
            size: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.count, page.results.len()), (4, 2));
    let every = jobs
        .list_all(&SyncJobQuery {
            size: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    let unique: HashSet<_> = every.iter().map(|j| j.id.clone()).collect();
    assert_eq!(unique.len(), 4);
}

#[tokio::test]
async fn guarded_document_updates_detect_a_lost_race() {
    let standin = standin().await;
    let es = client(&standin);
    es.connectors()
        .create(&new_connector(Some("c"), "C", "search-c", "ndjson"))
        .await
        .unwrap();
    let docs = es.connector_docs();
    let read = docs.get_connector("c").await.unwrap();
    assert_eq!(read.doc.id, "c");
    assert_eq!(read.doc.name, "C");
    let patch = json!({"status": "connected", "error": null, "last_sync_status": "in_progress", "last_sync_error": null});
    let next = docs
        .update_connector("c", &patch, Some(read.version))
        .await
        .unwrap();
    assert!(next.seq_no > read.version.seq_no);
    assert_eq!(
        standin.connector("c").unwrap()["last_sync_status"],
        "in_progress"
    );
    let err = docs
        .update_connector("c", &json!({"status": "error"}), Some(read.version))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(err.kind(), Some("version_conflict_engine_exception"));
    assert!(matches!(BackendError::from(err), BackendError::Conflict(_)));
    let log = standin.requests().pop().unwrap();
    assert_eq!(log.path, "/.elastic-connectors/_update/c");
    assert_eq!(
        log.query,
        format!(
            "if_seq_no={}&if_primary_term={}",
            read.version.seq_no, read.version.primary_term
        )
    );
    docs.update_connector("c", &json!({"sync_now": false}), None)
        .await
        .unwrap();

    let job_id = es
        .sync_jobs()
        .create("c", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let job = docs.get_job(&job_id).await.unwrap();
    assert_eq!(job.doc.id, job_id);
    docs.update_job(&job_id, &json!({"status": "suspended"}), Some(job.version))
        .await
        .unwrap();
    assert_eq!(
        es.sync_jobs().get(&job_id).await.unwrap().status,
        JobStatus::Suspended
    );
    let stale = SeqNo {
        seq_no: job.version.seq_no,
        primary_term: job.version.primary_term,
    };
    assert!(
        docs.update_job(&job_id, &json!({"status": "error"}), Some(stale))
            .await
            .unwrap_err()
            .is_conflict()
    );

    let err = docs.get_connector("missing").await.unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string().contains("connector [missing] not found"),
        "{err}"
    );
    assert!(docs.get_job("missing").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn jobs_are_searched_by_status_connector_and_type_oldest_first() {
    let standin = standin().await;
    let es = client(&standin);
    let docs = es.connector_docs();
    assert!(
        docs.search_jobs(&JobSearch::default())
            .await
            .unwrap()
            .is_empty(),
        "no jobs index yet"
    );
    for c in ["a", "b"] {
        es.connectors()
            .create(&new_connector(Some(c), c, &format!("search-{c}"), "ndjson"))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for (c, t) in [
        ("a", JobType::Full),
        ("b", JobType::Full),
        ("a", JobType::AccessControl),
        ("a", JobType::Incremental),
    ] {
        ids.push(
            es.sync_jobs()
                .create(c, t, TriggerMethod::OnDemand)
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(3)).await; // distinct created_at
    }
    es.sync_jobs().claim(&ids[3], "w", None).await.unwrap();
    let search = JobSearch {
        statuses: vec![JobStatus::Pending, JobStatus::Suspended],
        connector_ids: vec!["a".into()],
        job_types: vec![JobType::Full, JobType::Incremental],
        size: None,
    };
    let found: Vec<String> = docs
        .search_jobs(&search)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(found, [ids[0].clone()]);
    let any_a = JobSearch {
        connector_ids: vec!["a".into()],
        ..Default::default()
    };
    let found: Vec<String> = docs
        .search_jobs(&any_a)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        found,
        [ids[0].clone(), ids[2].clone(), ids[3].clone()],
        "oldest first"
    );

    es.connectors().delete("b", false, false).await.unwrap();
    let served = docs
        .search_connectors(&["a".into(), "b".into()], &[], 0, 100)
        .await
        .unwrap();
    assert_eq!(
        served.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["a"],
        "deleted connectors are not served"
    );
    let by_type = docs
        .search_connectors(&[], &["ndjson".into()], 0, 100)
        .await
        .unwrap();
    assert_eq!(by_type.len(), 1);
}

#[tokio::test]
async fn bulk_reports_every_item() {
    let standin = standin().await;
    let es = client(&standin);
    let body = concat!(
        "{\"index\":{\"_id\":\"1\"}}\n{\"id\":\"1\",\"title\":\"one\"}\n",
        "{\"create\":{\"_id\":\"2\"}}\n{\"id\":\"2\",\"title\":\"two\"}\n",
        "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"title\":\"uno\"},\"doc_as_upsert\":true}\n",
        "{\"delete\":{\"_id\":\"2\"}}\n",
        "{\"delete\":{\"_id\":\"nope\"}}\n",
    );
    let request = BulkRequest {
        index: "docs".into(),
        pipeline: None,
        refresh: true,
        body: body.as_bytes().to_vec().into(),
        actions: 5,
    };
    let response = es.documents().bulk(&request).await.unwrap();
    let summary: Vec<_> = response
        .items
        .iter()
        .map(|i| (i.op, i.id.as_str(), i.status, i.result.as_deref()))
        .collect();
    // The lean answer (`filter_path`) leaves ids out: items match actions by position.
    assert_eq!(
        summary,
        [
            (BulkOp::Index, "", 201, Some("created")),
            (BulkOp::Create, "", 201, Some("created")),
            (BulkOp::Update, "", 200, Some("updated")),
            (BulkOp::Delete, "", 200, Some("deleted")),
            (BulkOp::Delete, "", 404, Some("not_found")),
        ]
    );
    assert!(!response.errors);
    assert_eq!(
        es.documents().get("docs", "1").await.unwrap().unwrap()["title"],
        "uno"
    );
    let log = standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/docs/_bulk")
        .unwrap();
    assert_eq!(
        log.query,
        format!(
            "filter_path={}&refresh=true",
            BULK_FILTER_PATH.replace(',', "%2C")
        )
    );
}

#[tokio::test]
async fn bulk_items_carry_mapping_rejections_and_429s() {
    let standin = standin().await;
    let es = client(&standin);
    standin.faults().reject_field(Some("bad".into()));
    let mut body = Vec::new();
    for i in 0..4 {
        let doc = if i == 2 {
            json!({"bad": 1})
        } else {
            json!({"ok": i})
        };
        body.extend_from_slice(format!("{{\"index\":{{\"_id\":\"{i}\"}}}}\n{doc}\n").as_bytes());
    }
    let request = BulkRequest {
        index: "docs".into(),
        pipeline: Some("my-pipe".into()),
        refresh: false,
        body: body.into(),
        actions: 4,
    };
    let response = es.documents().bulk(&request).await.unwrap();
    assert!(response.errors);
    let rejected = &response.items[2];
    assert_eq!(rejected.status, 400);
    let error = rejected.error.as_ref().unwrap();
    assert_eq!(error.kind, "document_parsing_exception");
    assert!(!error.reason.is_empty());
    assert!(
        response
            .items
            .iter()
            .enumerate()
            .all(|(i, item)| i == 2 || item.status == 201)
    );
    let log = standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/docs/_bulk")
        .unwrap();
    assert!(log.query.ends_with("&pipeline=my-pipe"), "{}", log.query);

    standin.faults().reject_field(None);
    standin.faults().item_429_ratio(0.5);
    let (body, actions) = index_body((0..10).map(|i| format!("r{i}")), &json!({}));
    let request = BulkRequest {
        index: "docs".into(),
        pipeline: None,
        refresh: false,
        body: body.into(),
        actions,
    };
    let response = es.documents().bulk(&request).await.unwrap();
    let throttled: Vec<_> = response.items.iter().filter(|i| i.status == 429).collect();
    assert_eq!(throttled.len(), 5);
    assert!(
        throttled
            .iter()
            .all(|i| i.error.as_ref().unwrap().kind == "es_rejected_execution_exception")
    );
    assert!(
        response
            .items
            .iter()
            .filter(|i| i.status != 429)
            .all(|i| i.error.is_none())
    );
}

#[tokio::test]
async fn a_bulk_answer_with_the_wrong_item_count_is_refused() {
    let standin = standin().await;
    let es = client(&standin);
    let (body, _) = index_body(["a".to_string()], &json!({}));
    let request = BulkRequest {
        index: "docs".into(),
        pipeline: None,
        refresh: false,
        body: body.into(),
        actions: 2,
    };
    let err = es.documents().bulk(&request).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

/// `doc-0` … `doc-24999` in `index`, refreshed.
async fn index_25k_docs(es: &Elasticsearch, index: &str) {
    for chunk in 0..5 {
        let ids = (chunk * 5000..(chunk + 1) * 5000).map(|i| format!("doc-{i}"));
        let (body, actions) = index_body(ids, &json!({}));
        let request = BulkRequest {
            index: index.into(),
            pipeline: None,
            refresh: false,
            body: body.into(),
            actions,
        };
        assert!(!es.documents().bulk(&request).await.unwrap().errors);
    }
    es.indices().refresh(index).await.unwrap();
}

#[tokio::test]
async fn the_pit_scan_streams_every_id_page_by_page() {
    let standin = standin().await;
    let es = client(&standin);
    let total = 25_000;
    index_25k_docs(&es, "big").await;
    standin.clear_requests();

    let mut scan = es.documents().scan_ids("big", 500, 1).await.unwrap();
    let mut seen = HashSet::new();
    let mut pages = 0;
    while let Some(page) = scan.next().await.unwrap() {
        assert!(page.len() <= 500);
        for meta in page {
            assert_eq!(meta.timestamp.as_deref(), Some("2024-05-01T10:00:00Z"));
            assert!(seen.insert(meta.id), "an id came twice");
        }
        pages += 1;
        assert!(pages <= 60, "the scan does not end");
    }
    assert_eq!(seen.len(), total);
    assert!(seen.contains("doc-0") && seen.contains("doc-24999"));
    assert!(scan.next().await.unwrap().is_none(), "stays done");
    let log = standin.requests();
    assert_eq!(log.iter().filter(|r| r.path == "/big/_pit").count(), 1);
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/_pit" && r.method == "DELETE")
            .count(),
        1,
        "PIT closed once"
    );
    scan.close_pit().await.unwrap();

    let mut empty = es
        .documents()
        .scan_ids("no-such-index", 10, 2)
        .await
        .unwrap();
    assert!(empty.next().await.unwrap().is_none());
}

/// A scan in three slices of one PIT: every slice's request is on the wire before any is
/// answered, every id comes once, a slice's last page is its share's remainder, and the one
/// PIT is closed once, when every slice is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_pit_scan_reads_its_slices_at_once_and_every_id_once() {
    let standin = standin().await;
    let es = client(&standin);
    let total = 25_000;
    index_25k_docs(&es, "big").await;
    standin.clear_requests();

    let mut scan = es.documents().scan_bare_ids("big", 500, 3).await.unwrap();
    // Pages held unanswered: the first `next` puts all three slices' requests on the wire.
    standin.faults().hang_search(true);
    let first = tokio::spawn(async move {
        let page = scan.next().await;
        (scan, page)
    });
    let searches = || {
        standin
            .requests()
            .iter()
            .filter(|r| r.path == "/_search")
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while searches() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of 3 slices asked",
            searches()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    standin.faults().hang_search(false);
    let (mut scan, page) = first.await.unwrap();
    let mut next = page.unwrap();
    let mut sizes = Vec::new();
    let mut seen = HashSet::new();
    while let Some(page) = next {
        sizes.push(page.len());
        for meta in page {
            assert!(seen.insert(meta.id.to_string()), "an id came twice");
        }
        assert!(sizes.len() <= 60, "the scan does not end");
        next = scan.next().await.unwrap();
    }
    assert!(scan.next().await.unwrap().is_none(), "stays done");
    assert_eq!(seen.len(), total);
    sizes.sort_unstable();
    // 8,334 + 8,333 + 8,333 documents in pages of 500.
    assert_eq!(&sizes[..3], [333, 333, 334], "{sizes:?}");
    assert!(sizes[3..].iter().all(|&n| n == 500), "{sizes:?}");
    assert_eq!(sizes.len(), 51);
    let log = standin.requests();
    assert_eq!(log.iter().filter(|r| r.path == "/big/_pit").count(), 1);
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/_pit" && r.method == "DELETE")
            .count(),
        1,
        "PIT closed once"
    );
    // 17 pages a slice, the last one short: no request past it.
    assert_eq!(log.iter().filter(|r| r.path == "/_search").count(), 51);
    scan.close_pit().await.unwrap();
}

/// A cluster that gives its PIT a new id every third answer, while two slices' requests are
/// on the wire: the scan goes on with the newest id and closes the PIT by it. An answer to
/// a request sent before the new id came names the old one, and must not put it back. The
/// client is assumed to see the new ids in the order they were given: with two slices and a
/// new id every third answer, one slice's answer would have to be held up for two of the
/// other's round trips. Four scans: the old code closed by a stale id in most of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_scan_follows_the_newest_pit_id() {
    let standin = standin().await;
    let es = client(&standin);
    index_25k_docs(&es, "rotating").await;
    standin.faults().rotate_pit_ids_every(Some(3));
    for round in 0..4 {
        let before = standin.pit_uses().len();
        let mut scan = es
            .documents()
            .scan_bare_ids("rotating", 500, 2)
            .await
            .unwrap();
        let mut seen = HashSet::new();
        while let Some(page) = scan.next().await.unwrap() {
            for meta in page {
                assert!(seen.insert(meta.id), "an id came twice");
            }
            assert!(seen.len() <= 25_000);
        }
        assert_eq!(seen.len(), 25_000);
        let uses = standin.pit_uses().split_off(before);
        let named = |kind: &str| -> Vec<String> {
            uses.iter()
                .filter(|(what, _)| *what == kind)
                .map(|(_, id)| id.clone())
                .collect()
        };
        let new_ids = named("new");
        assert!(
            new_ids.len() >= 10,
            "round {round}: {} new ids",
            new_ids.len()
        );
        assert_eq!(
            named("close"),
            new_ids[new_ids.len() - 1..],
            "round {round}: closed by the newest id: {uses:?}"
        );
    }
}

/// A slice's failed page ends the whole scan with its error; the PIT is still closed.
#[tokio::test]
async fn a_sliced_scan_fails_as_a_whole_and_still_closes_its_pit() {
    let standin = standin().await;
    let es = client(&standin);
    let (body, actions) = index_body((0..3000).map(|i| format!("d{i}")), &json!({}));
    let request = BulkRequest {
        index: "failing".into(),
        pipeline: None,
        refresh: true,
        body: body.into(),
        actions,
    };
    assert!(!es.documents().bulk(&request).await.unwrap().errors);
    let mut scan = es.documents().scan_ids("failing", 100, 2).await.unwrap();
    assert!(scan.next().await.unwrap().is_some());
    standin.faults().fail_pit_search(Some(500));
    let mut error = None;
    for _ in 0..40 {
        match scan.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the failed page's error");
    assert!(error.to_string().contains("500"), "{error}");
    assert!(scan.next().await.unwrap().is_none(), "done after the error");
    standin.clear_requests();
    scan.close_pit().await.unwrap();
    let log = standin.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/_pit" && r.method == "DELETE")
            .count(),
        1
    );
    // (No count of searches here: the other slice's request, dropped with the error, may
    // still reach the stand-in after the log was cleared.)
    assert!(scan.next().await.unwrap().is_none(), "done after the close");
}

#[tokio::test]
async fn the_scan_prefers_the_body_id_over_the_hashed_doc_id() {
    let standin = standin().await;
    let es = client(&standin);
    standin.put_doc(
        "hashed",
        "md5-of-long-id",
        json!({"id": "the-long-original-id", "_timestamp": "t1"}),
    );
    standin.put_doc("hashed", "plain", json!({"title": "no id field"}));
    es.indices().refresh("hashed").await.unwrap();
    let mut scan = es.documents().scan_ids("hashed", 10, 1).await.unwrap();
    let mut ids: Vec<String> = scan
        .next()
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["plain", "the-long-original-id"]);
    scan.close_pit().await.unwrap();

    // A bare scan reads `_id`s alone: the cluster is asked for no source at all.
    standin.clear_requests();
    let mut bare = es.documents().scan_bare_ids("hashed", 10, 1).await.unwrap();
    let page = bare.next().await.unwrap().unwrap();
    let mut ids: Vec<(String, Option<String>)> =
        page.into_iter().map(|m| (m.id, m.timestamp)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [("md5-of-long-id".into(), None), ("plain".into(), None)]
    );
    let search = standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/_search")
        .unwrap();
    // Lean answer asked for; and no source came back (`md5-of-long-id` has a `_timestamp`).
    assert!(search.query.starts_with("filter_path="), "{}", search.query);
    assert!(
        search
            .query
            .ends_with("&allow_partial_search_results=false"),
        "a partial page must fail the scan, not end it: {}",
        search.query
    );
    assert!(bare.next().await.unwrap().is_none());
}

#[tokio::test]
async fn single_documents_count_and_delete_by_query() {
    let standin = standin().await;
    let es = client(&standin);
    let docs = es.documents();
    docs.index("things", "a", &json!({"kind": "x", "n": 1}), true)
        .await
        .unwrap();
    docs.index("things", "b", &json!({"kind": "y", "n": 2}), true)
        .await
        .unwrap();
    docs.index("things", "c", &json!({"kind": "x", "n": 3}), true)
        .await
        .unwrap();
    assert_eq!(docs.count("things").await.unwrap(), 3);
    assert_eq!(
        docs.get("things", "b").await.unwrap(),
        Some(json!({"kind": "y", "n": 2}))
    );
    assert_eq!(docs.get("things", "zz").await.unwrap(), None);
    assert_eq!(docs.get("no-index", "a").await.unwrap(), None);
    assert!(docs.delete("things", "b").await.unwrap());
    assert!(!docs.delete("things", "b").await.unwrap());
    let deleted = docs
        .delete_by_query("things", &json!({"term": {"kind": "x"}}), true)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(docs.count("things").await.unwrap(), 0);
    let hits = docs
        .search("things", &json!({"query": {"match_all": {}}}))
        .await
        .unwrap();
    assert_eq!(hits["hits"]["hits"].as_array().map(Vec::len), Some(0));
    assert!(docs.count("no-index").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn indices_are_created_checked_refreshed_and_deleted() {
    let standin = standin().await;
    let es = client(&standin);
    let indices = es.indices();
    assert!(!indices.exists("fresh").await.unwrap());
    let mappings = json!({"properties": {"title": {"type": "text"}}});
    indices
        .create(
            "fresh",
            Some(&mappings),
            Some(&json!({"number_of_shards": 1})),
        )
        .await
        .unwrap();
    assert!(indices.exists("fresh").await.unwrap());
    let err = indices.create("fresh", None, None).await.unwrap_err();
    assert_eq!(err.kind(), Some("resource_already_exists_exception"));
    indices.refresh("fresh").await.unwrap();
    indices.delete("fresh").await.unwrap();
    assert!(!indices.exists("fresh").await.unwrap());
    assert!(indices.delete("fresh").await.unwrap_err().is_not_found());
    let head = standin
        .requests()
        .into_iter()
        .find(|r| r.method == "HEAD")
        .unwrap();
    assert_eq!(head.path, "/fresh");
}

#[tokio::test]
async fn cluster_info_health_and_nodes() {
    let standin = standin().await;
    let es = client(&standin);
    let info = es.cluster().info().await.unwrap();
    assert_eq!(info.version.number, "9.1.0");
    assert!(!info.is_serverless());
    let health = es.cluster().health().await.unwrap();
    assert_eq!(
        (health.status.as_str(), health.number_of_nodes),
        ("green", 2)
    );
    let nodes = es.cluster().nodes().await.unwrap();
    assert_eq!(nodes.nodes.len(), 2);
    assert!(nodes.nodes.values().all(|n| {
        n.http
            .as_ref()
            .and_then(|h| h.publish_address.as_ref())
            .is_some()
    }));
}

#[tokio::test]
async fn the_backend_serves_the_control_plane() {
    let standin = standin().await;
    let backend = ElasticsearchBackend::new(&settings(&standin)).unwrap();
    let plane: &dyn ControlPlane = &backend;
    let summary = plane.cluster().await.unwrap();
    assert_eq!(summary.backend, "elasticsearch");
    assert_eq!(
        (
            summary.version.as_str(),
            summary.health.as_str(),
            summary.number_of_nodes
        ),
        ("9.1.0", "green", 2)
    );
    assert_eq!(summary.cluster_name, "syncdeck-standin");
    assert!(summary.location.contains(&standin.es_urls()[0]));

    let id = plane
        .create_connector(&new_connector(Some("p"), "P", "search-p", "ndjson"))
        .await
        .unwrap();
    assert_eq!(id, "p");
    assert_eq!(
        plane
            .list_connectors(&ConnectorQuery::default())
            .await
            .unwrap()
            .count,
        1
    );
    plane
        .update_status("p", ConnectorStatus::NeedsConfiguration)
        .await
        .unwrap();
    plane.update_name("p", Some("P2"), None).await.unwrap();
    plane.update_service_type("p", "directory").await.unwrap();
    plane
        .update_index_name("p", Some("search-p2"))
        .await
        .unwrap();
    plane
        .update_pipeline("p", &Pipeline::default())
        .await
        .unwrap();
    plane
        .update_scheduling("p", &Scheduling::default())
        .await
        .unwrap();
    plane
        .update_filtering("p", &[rule("r", 1, "f", "v")], None)
        .await
        .unwrap();
    plane
        .update_configuration("p", &ConfigurationUpdate::Replace(Configuration::default()))
        .await
        .unwrap();
    plane.update_error("p", Some("x")).await.unwrap();
    plane
        .update_last_sync(
            "p",
            &LastSync {
                last_deleted_document_count: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    plane.check_in_connector("p").await.unwrap();
    let c = plane.get_connector("p").await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.service_type.as_deref(), c.status),
        ("P2", Some("directory"), ConnectorStatus::Error)
    );
    assert_eq!(c.last_deleted_document_count, Some(3));
    assert_eq!(c.filtering[0].draft.rules.len(), 2);

    let job = plane
        .create_sync_job("p", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    plane.claim_sync_job(&job, "w", None).await.unwrap();
    assert!(matches!(
        plane.claim_sync_job(&job, "w2", None).await,
        Err(BackendError::Conflict(_))
    ));
    plane.check_in_sync_job(&job).await.unwrap();
    plane
        .update_sync_job_stats(
            &job,
            &SyncStats {
                indexed_document_count: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    plane.set_sync_job_error(&job, "bad").await.unwrap();
    assert_eq!(
        plane.get_sync_job(&job).await.unwrap().status,
        JobStatus::Error
    );
    assert_eq!(
        plane
            .list_sync_jobs(&SyncJobQuery::default())
            .await
            .unwrap()
            .count,
        1
    );
    let other = plane
        .create_sync_job("p", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    plane.cancel_sync_job(&other).await.unwrap();
    plane.delete_sync_job(&other).await.unwrap();

    assert!(
        matches!(plane.get_connector("nope").await, Err(BackendError::NotFound(r)) if r.contains("nope"))
    );
    let bad = plane
        .update_status("p", ConnectorStatus::Created)
        .await
        .unwrap_err();
    assert!(
        matches!(bad, BackendError::Rejected { status: 400, .. }),
        "{bad:?}"
    );
    plane.delete_connector("p", true, true).await.unwrap();
    assert!(plane.get_sync_job(&job).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn the_backend_serves_the_document_store() {
    let standin = standin().await;
    let backend = ElasticsearchBackend::new(&settings(&standin)).unwrap();
    let store: &dyn DocumentStore = &backend;
    let mappings = json!({"properties": {"id": {"type": "keyword"}}});
    assert!(
        store
            .ensure_index("content", Some(&mappings))
            .await
            .unwrap()
    );
    assert!(
        !store
            .ensure_index("content", Some(&mappings))
            .await
            .unwrap()
    );
    assert!(store.index_exists("content").await.unwrap());
    let (body, actions) = index_body((0..25).map(|i| format!("d{i}")), &json!({}));
    let response = store
        .bulk(&BulkRequest {
            index: "content".into(),
            pipeline: None,
            refresh: true,
            body: body.into(),
            actions,
        })
        .await
        .unwrap();
    assert_eq!(response.items.len(), 25);
    store.refresh("content").await.unwrap();
    assert_eq!(store.count("content").await.unwrap(), 25);
    let mut scan = store.scan_ids("content", 10, 1).await.unwrap();
    let mut n = 0;
    while let Some(page) = scan.next_page().await.unwrap() {
        n += page.len();
    }
    scan.close().await.unwrap();
    scan.close().await.unwrap();
    assert_eq!(n, 25);
    assert_eq!(
        store.get_document("content", "d3").await.unwrap().unwrap()["id"],
        "d3"
    );
    assert!(store.delete_document("content", "d3").await.unwrap());
    assert!(store.get_document("content", "d3").await.unwrap().is_none());
    assert!(matches!(
        store.count("missing").await,
        Err(BackendError::NotFound(_))
    ));
}
