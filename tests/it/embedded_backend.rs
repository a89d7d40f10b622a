//! The embedded backend through the `ControlPlane` and `DocumentStore` traits: it must answer
//! like Elasticsearch's connector and document APIs (PROTOCOL.md).

use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{
    BackendError, BulkOp, BulkRequest, BulkResponse, ConfigurationUpdate, ConnectorQuery,
    ControlPlane, DocumentStore, JobFinish, LastSync, SyncJobQuery,
};
use syncdeck::model::{
    Configuration, ConnectorStatus, FilteringRule, FilteringValidationState, JobStatus, JobType,
    NewConnector, RulePolicy, RuleType, ScheduleConfig, Scheduling, SyncStats, Timestamp,
    TriggerMethod,
};

fn memory() -> EmbeddedBackend {
    EmbeddedBackend::open_in_memory().unwrap()
}

fn new_connector(id: &str, index: &str) -> NewConnector {
    NewConnector {
        id: Some(id.into()),
        name: Some(format!("Connector {id}")),
        index_name: Some(index.into()),
        service_type: Some("directory".into()),
        ..NewConnector::default()
    }
}

async fn create(backend: &EmbeddedBackend, id: &str, index: &str) -> String {
    backend
        .create_connector(&new_connector(id, index))
        .await
        .unwrap()
}

fn rejected_kind(err: &BackendError) -> (u16, &str, &str) {
    match err {
        BackendError::Rejected {
            status,
            kind,
            reason,
        } => (*status, kind.as_str(), reason.as_str()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn configuration(value: Value) -> Configuration {
    serde_json::from_value(value).unwrap()
}

fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut body, line).unwrap();
        body.push(b'\n');
    }
    body
}

fn bulk_request(index: &str, body: Vec<u8>) -> BulkRequest {
    BulkRequest {
        index: index.into(),
        body: body.into(),
        ..BulkRequest::default()
    }
}

async fn bulk(backend: &EmbeddedBackend, index: &str, lines: &[Value]) -> BulkResponse {
    backend
        .bulk(&bulk_request(index, ndjson(lines)))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Connectors

#[tokio::test]
async fn create_applies_elasticsearch_defaults() {
    let backend = memory();
    let id = backend
        .create_connector(&NewConnector {
            index_name: Some("docs".into()),
            ..NewConnector::default()
        })
        .await
        .unwrap();
    assert_eq!(id.len(), 20, "{id}");
    let c = backend.get_connector(&id).await.unwrap();
    assert_eq!(c.id, id);
    assert_eq!(c.name, "");
    assert_eq!(c.status, ConnectorStatus::Created);
    assert!(!c.is_native && !c.deleted && !c.sync_now);
    assert!(c.configuration.is_empty());
    assert_eq!(
        c.scheduling.full,
        ScheduleConfig {
            enabled: false,
            interval: "0 0 0 * * ?".into()
        }
    );
    assert_eq!(
        c.pipeline.as_ref().unwrap().name,
        "search-default-ingestion"
    );
    assert_eq!(c.filtering.len(), 1);
    let filtering = &c.filtering[0];
    assert_eq!(filtering.domain, "DEFAULT");
    for rules in [&filtering.active, &filtering.draft] {
        assert_eq!(rules.rules.len(), 1);
        assert!(rules.rules[0].is_default());
        assert_eq!(rules.advanced_snippet.value, json!({}));
        assert_eq!(rules.validation.state, FilteringValidationState::Valid);
        assert!(rules.validation.errors.is_empty());
    }
    let native = backend
        .create_connector(&NewConnector {
            is_native: Some(true),
            ..NewConnector::default()
        })
        .await
        .unwrap();
    assert_eq!(
        backend.get_connector(&native).await.unwrap().status,
        ConnectorStatus::NeedsConfiguration
    );
    assert!(
        backend
            .get_connector("nope")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn status_changes_follow_the_state_machine() {
    let backend = memory();
    create(&backend, "c", "i").await;
    let err = backend
        .update_status("c", ConnectorStatus::Connected)
        .await
        .unwrap_err();
    let (status, kind, reason) = rejected_kind(&err);
    assert_eq!((status, kind), (400, "status_exception"));
    assert!(reason.contains("[created] to [connected]"), "{reason}");
    assert_eq!(
        backend.get_connector("c").await.unwrap().status,
        ConnectorStatus::Created
    );
    for next in [
        ConnectorStatus::NeedsConfiguration,
        ConnectorStatus::Configured,
        ConnectorStatus::Connected,
    ] {
        backend.update_status("c", next).await.unwrap();
    }
    assert!(
        backend
            .update_status("c", ConnectorStatus::NeedsConfiguration)
            .await
            .is_err()
    );
    assert_eq!(
        backend.get_connector("c").await.unwrap().status,
        ConnectorStatus::Connected
    );
}

#[tokio::test]
async fn error_sets_and_clears() {
    let backend = memory();
    create(&backend, "c", "i").await;
    backend
        .update_error("c", Some("source unreachable"))
        .await
        .unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(
        (c.status, c.error.as_deref()),
        (ConnectorStatus::Error, Some("source unreachable"))
    );
    backend.update_error("c", None).await.unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!((c.status, c.error), (ConnectorStatus::Connected, None));
}

#[tokio::test]
async fn configuration_replace_values_and_unknown_key() {
    let backend = memory();
    create(&backend, "c", "i").await;
    let schema = configuration(json!({
        "host": {"label": "Host", "value": "localhost", "order": 1},
        "token": {"label": "Token", "value": "", "sensitive": true, "order": 2}
    }));
    backend
        .update_configuration("c", &ConfigurationUpdate::Replace(schema.clone()))
        .await
        .unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(c.configuration, schema);
    assert_eq!(c.status, ConnectorStatus::Configured);

    backend.update_error("c", Some("boom")).await.unwrap();
    let values = json!({"host": "db.internal", "token": "t0k3n"})
        .as_object()
        .cloned()
        .unwrap();
    backend
        .update_configuration("c", &ConfigurationUpdate::Values(values))
        .await
        .unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(c.configuration.get("host").unwrap().value, "db.internal");
    assert_eq!(c.configuration.get("token").unwrap().value, "t0k3n");
    assert_eq!(c.status, ConnectorStatus::Configured);

    backend.update_error("c", Some("boom")).await.unwrap();
    let values = json!({"host": "changed", "nope": 1})
        .as_object()
        .cloned()
        .unwrap();
    let err = backend
        .update_configuration("c", &ConfigurationUpdate::Values(values))
        .await
        .unwrap_err();
    let (status, kind, reason) = rejected_kind(&err);
    assert_eq!((status, kind), (400, "status_exception"));
    assert!(
        reason.starts_with("Unknown [configuration] fields in the request payload: [nope]"),
        "{reason}"
    );
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(
        c.configuration.get("host").unwrap().value,
        "db.internal",
        "nothing changes"
    );
    assert_eq!(c.status, ConnectorStatus::Error, "nothing changes");
}

#[tokio::test]
async fn index_name_in_use_is_refused() {
    let backend = memory();
    create(&backend, "a", "shared").await;
    let err = backend
        .create_connector(&new_connector("b", "shared"))
        .await
        .unwrap_err();
    assert_eq!(rejected_kind(&err).1, "status_exception");
    assert!(backend.get_connector("b").await.unwrap_err().is_not_found());
    create(&backend, "b", "other").await;
    assert!(
        backend
            .update_index_name("b", Some("shared"))
            .await
            .is_err()
    );
    backend
        .update_index_name("a", Some("shared"))
        .await
        .unwrap();
    let err = backend
        .update_index_name("b", Some("Bad Name"))
        .await
        .unwrap_err();
    assert_eq!(rejected_kind(&err).1, "invalid_index_name_exception");
    backend.delete_connector("a", false, false).await.unwrap();
    backend
        .update_index_name("b", Some("shared"))
        .await
        .unwrap();
    assert_eq!(
        backend
            .get_connector("b")
            .await
            .unwrap()
            .index_name
            .as_deref(),
        Some("shared")
    );
    backend.update_index_name("b", None).await.unwrap();
    assert_eq!(backend.get_connector("b").await.unwrap().index_name, None);
}

#[tokio::test]
async fn soft_and_hard_delete() {
    let backend = memory();
    create(&backend, "soft", "i1").await;
    create(&backend, "hard", "i2").await;
    let job = backend
        .create_sync_job("soft", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let kept = backend
        .create_sync_job("hard", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();

    backend.delete_connector("soft", false, true).await.unwrap();
    assert!(
        backend
            .get_connector("soft")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(backend.get_sync_job(&job).await.unwrap_err().is_not_found());
    let live = backend
        .list_connectors(&ConnectorQuery::default())
        .await
        .unwrap();
    assert_eq!(live.count, 1);
    let all = backend
        .list_connectors(&ConnectorQuery {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.count, 2);
    assert!(all.results.iter().any(|c| c.id == "soft" && c.deleted));
    assert!(
        backend
            .delete_connector("soft", false, false)
            .await
            .unwrap_err()
            .is_not_found()
    );

    backend.delete_connector("hard", true, false).await.unwrap();
    let all = backend
        .list_connectors(&ConnectorQuery {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.results
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["soft"]
    );
    assert!(
        backend.get_sync_job(&kept).await.is_ok(),
        "jobs stay without delete_sync_jobs"
    );
    assert!(
        backend
            .delete_connector("hard", true, false)
            .await
            .unwrap_err()
            .is_not_found()
    );
    backend.delete_connector("soft", true, false).await.unwrap();
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let backend = memory();
    for (id, index, service, description) in [
        ("c1", Some("zeta"), "directory", "Runbooks"),
        ("c2", Some("alpha"), "generator", "Load test"),
        ("c3", Some("mid"), "directory", "Wiki PAGES"),
        ("c4", None, "ndjson", "no index yet"),
        ("c5", Some("beta"), "generator", "50%_off"),
    ] {
        let new = NewConnector {
            id: Some(id.into()),
            name: Some(format!("name-{id}")),
            description: Some(description.into()),
            index_name: index.map(Into::into),
            service_type: Some(service.into()),
            ..NewConnector::default()
        };
        backend.create_connector(&new).await.unwrap();
    }
    let ids = |page: &syncdeck::model::Page<syncdeck::model::Connector>| {
        page.results
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    };
    let all = backend
        .list_connectors(&ConnectorQuery::default())
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        ["c2", "c5", "c3", "c1", "c4"],
        "sorted by index name, none last"
    );
    assert_eq!(all.count, 5);

    let page = backend
        .list_connectors(&ConnectorQuery {
            from: 1,
            size: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (ids(&page), page.count),
        (vec!["c5".to_string(), "c3".to_string()], 5)
    );

    let q = |query: ConnectorQuery| {
        let backend = backend.clone();
        async move { ids(&backend.list_connectors(&query).await.unwrap()) }
    };
    assert_eq!(
        q(ConnectorQuery {
            index_names: vec!["mid".into(), "zeta".into()],
            ..Default::default()
        })
        .await,
        ["c3", "c1"]
    );
    assert_eq!(
        q(ConnectorQuery {
            connector_names: vec!["name-c4".into()],
            ..Default::default()
        })
        .await,
        ["c4"]
    );
    assert_eq!(
        q(ConnectorQuery {
            service_types: vec!["generator".into()],
            ..Default::default()
        })
        .await,
        ["c2", "c5"]
    );
    assert_eq!(
        q(ConnectorQuery {
            query: Some("pages".into()),
            ..Default::default()
        })
        .await,
        ["c3"]
    );
    assert_eq!(
        q(ConnectorQuery {
            query: Some("eta".into()),
            ..Default::default()
        })
        .await,
        ["c5", "c1"]
    );
    assert_eq!(
        q(ConnectorQuery {
            query: Some("%_".into()),
            ..Default::default()
        })
        .await,
        ["c5"],
        "LIKE wildcards are literal"
    );
    let none = backend
        .list_connectors(&ConnectorQuery {
            service_types: vec!["x".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((none.count, none.results.len()), (0, 0));
}

#[tokio::test]
async fn other_updates_write_their_fields() {
    let backend = memory();
    create(&backend, "c", "i").await;
    backend
        .update_name("c", Some("New name"), Some("About it"))
        .await
        .unwrap();
    backend.update_service_type("c", "ndjson").await.unwrap();
    let pipeline = syncdeck::model::Pipeline {
        name: "custom".into(),
        ..Default::default()
    };
    backend.update_pipeline("c", &pipeline).await.unwrap();
    backend.check_in_connector("c").await.unwrap();
    let mut scheduling = Scheduling {
        full: ScheduleConfig {
            enabled: true,
            interval: "0 */5 * * * ?".into(),
        },
        ..Scheduling::default()
    };
    backend.update_scheduling("c", &scheduling).await.unwrap();
    scheduling.incremental.interval = "*/5 * * * *".into();
    let err = backend
        .update_scheduling("c", &scheduling)
        .await
        .unwrap_err();
    assert!(
        rejected_kind(&err)
            .2
            .contains("scheduling.incremental.interval")
    );

    let now = Timestamp::now();
    let last = LastSync {
        last_sync_status: Some(JobStatus::Completed),
        last_sync_error: Some(None),
        last_synced: Some(now),
        last_indexed_document_count: Some(42),
        last_deleted_document_count: Some(3),
        sync_cursor: Some(json!({"since": "2024-01-01"})),
        ..LastSync::default()
    };
    backend.update_last_sync("c", &last).await.unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(
        (c.name.as_str(), c.description.as_deref()),
        ("New name", Some("About it"))
    );
    assert_eq!(c.service_type.as_deref(), Some("ndjson"));
    assert_eq!(c.pipeline, Some(pipeline));
    assert!(c.last_seen.is_some());
    assert_eq!(c.scheduling.full.interval, "0 */5 * * * ?");
    assert_eq!(
        c.scheduling.incremental.interval, "0 0 0 * * ?",
        "a refused update changes nothing"
    );
    assert_eq!(c.last_sync_status, Some(JobStatus::Completed));
    assert_eq!(
        (c.last_indexed_document_count, c.last_deleted_document_count),
        (Some(42), Some(3))
    );
    assert_eq!(c.sync_cursor, Some(json!({"since": "2024-01-01"})));
    assert_eq!(c.last_synced.map(|t| t.millis()), Some(now.millis()));
}

#[tokio::test]
async fn filtering_edits_the_draft_then_activates() {
    let backend = memory();
    create(&backend, "c", "i").await;
    let rule = |id: &str, order: i64| FilteringRule {
        id: id.into(),
        policy: RulePolicy::Exclude,
        field: "path".into(),
        rule: RuleType::StartsWith,
        value: "archive/".into(),
        order,
        created_at: None,
        updated_at: None,
    };
    backend
        .update_filtering(
            "c",
            &[rule("b", 5), rule("a", 2)],
            Some(&json!({"query": "x"})),
        )
        .await
        .unwrap();
    let c = backend.get_connector("c").await.unwrap();
    let draft = &c.filtering[0].draft;
    let ids: Vec<_> = draft.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "DEFAULT"]);
    assert!(draft.rules[2].order > 5);
    assert_eq!(draft.validation.state, FilteringValidationState::Edited);
    assert_eq!(draft.advanced_snippet.value, json!({"query": "x"}));
    assert_eq!(
        c.filtering[0].active.rules.len(),
        1,
        "active rules untouched"
    );
    backend.activate_filtering("c").await.unwrap();
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(c.filtering[0].active.rules.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Sync jobs

#[tokio::test]
async fn job_create_snapshots_the_connector() {
    let backend = memory();
    create(&backend, "c", "docs").await;
    let schema = configuration(json!({"path": {"label": "Path", "value": "/data"}}));
    backend
        .update_configuration("c", &ConfigurationUpdate::Replace(schema.clone()))
        .await
        .unwrap();
    backend
        .update_last_sync(
            "c",
            &LastSync {
                sync_cursor: Some(json!(7)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = backend
        .create_sync_job("c", JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    // Later connector changes do not reach the job.
    backend
        .update_configuration("c", &ConfigurationUpdate::Replace(Configuration::default()))
        .await
        .unwrap();

    let job = backend.get_sync_job(&id).await.unwrap();
    assert_eq!(job.id, id);
    assert_eq!(
        (job.status, job.job_type, job.trigger_method),
        (JobStatus::Pending, JobType::Full, TriggerMethod::OnDemand)
    );
    assert!(job.created_at.is_some() && job.last_seen.is_some());
    assert!(
        job.started_at.is_none() && job.completed_at.is_none() && job.worker_hostname.is_none()
    );
    assert_eq!(
        (
            job.indexed_document_count,
            job.deleted_document_count,
            job.indexed_document_volume
        ),
        (0, 0, 0)
    );
    assert!(job.metadata.is_empty());
    let snapshot = &job.connector;
    assert_eq!(snapshot.id, "c");
    assert_eq!(snapshot.index_name.as_deref(), Some("docs"));
    assert_eq!(snapshot.service_type.as_deref(), Some("directory"));
    assert_eq!(snapshot.configuration, schema);
    assert_eq!(
        snapshot.pipeline.as_ref().unwrap().name,
        "search-default-ingestion"
    );
    assert!(snapshot.filtering.as_ref().unwrap().rules[0].is_default());
    assert_eq!(snapshot.sync_cursor, Some(json!(7)));

    let acl = backend
        .create_sync_job("c", JobType::AccessControl, TriggerMethod::Scheduled)
        .await
        .unwrap();
    let acl = backend.get_sync_job(&acl).await.unwrap();
    assert_eq!(
        acl.connector.index_name.as_deref(),
        Some(".search-acl-filter-docs")
    );
    assert_eq!(acl.trigger_method, TriggerMethod::Scheduled);

    assert!(
        backend
            .create_sync_job("missing", JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap_err()
            .is_not_found()
    );
    backend.delete_connector("c", false, false).await.unwrap();
    assert!(
        backend
            .create_sync_job("c", JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn job_list_filters_newest_first_and_pages() {
    let backend = memory();
    create(&backend, "a", "ia").await;
    create(&backend, "b", "ib").await;
    let mut made = Vec::new();
    for (connector, job_type) in [
        ("a", JobType::Full),
        ("b", JobType::Full),
        ("a", JobType::Incremental),
        ("a", JobType::AccessControl),
    ] {
        made.push(
            backend
                .create_sync_job(connector, job_type, TriggerMethod::OnDemand)
                .await
                .unwrap(),
        );
    }
    backend.cancel_sync_job(&made[0]).await.unwrap();
    let list = |query: SyncJobQuery| {
        let backend = backend.clone();
        async move {
            let page = backend.list_sync_jobs(&query).await.unwrap();
            (
                page.count,
                page.results.into_iter().map(|j| j.id).collect::<Vec<_>>(),
            )
        }
    };
    let newest_first: Vec<_> = made.iter().rev().cloned().collect();
    assert_eq!(
        list(SyncJobQuery::default()).await,
        (4, newest_first.clone())
    );
    assert_eq!(
        list(SyncJobQuery {
            from: 1,
            size: Some(2),
            ..Default::default()
        })
        .await,
        (4, newest_first[1..3].to_vec())
    );
    let by_a = list(SyncJobQuery {
        connector_id: Some("a".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_a,
        (3, vec![made[3].clone(), made[2].clone(), made[0].clone()])
    );
    let canceled = list(SyncJobQuery {
        status: Some(JobStatus::Canceled),
        ..Default::default()
    })
    .await;
    assert_eq!(canceled, (1, vec![made[0].clone()]));
    let types = list(SyncJobQuery {
        job_types: vec![JobType::Incremental, JobType::AccessControl],
        ..Default::default()
    })
    .await;
    assert_eq!(types, (2, vec![made[3].clone(), made[2].clone()]));
}

#[tokio::test]
async fn cancel_depends_on_the_status() {
    let backend = memory();
    create(&backend, "c", "i").await;
    let new_job = || backend.create_sync_job("c", JobType::Full, TriggerMethod::OnDemand);

    let pending = new_job().await.unwrap();
    backend.cancel_sync_job(&pending).await.unwrap();
    let job = backend.get_sync_job(&pending).await.unwrap();
    assert_eq!(job.status, JobStatus::Canceled);
    assert!(
        job.cancelation_requested_at.is_some()
            && job.canceled_at.is_some()
            && job.completed_at.is_some()
    );

    let running = new_job().await.unwrap();
    backend
        .claim_sync_job(&running, "worker-1", None)
        .await
        .unwrap();
    backend.cancel_sync_job(&running).await.unwrap();
    let job = backend.get_sync_job(&running).await.unwrap();
    assert_eq!(job.status, JobStatus::Canceling);
    assert!(
        job.cancelation_requested_at.is_some()
            && job.canceled_at.is_none()
            && job.completed_at.is_none()
    );
    let err = backend.cancel_sync_job(&running).await.unwrap_err();
    assert_eq!(rejected_kind(&err).0, 400);
    assert_eq!(rejected_kind(&err).1, "status_exception");

    let suspended = new_job().await.unwrap();
    backend
        .claim_sync_job(&suspended, "worker-1", None)
        .await
        .unwrap();
    let finish = |status| JobFinish {
        status,
        error: None,
        indexed_document_count: 5,
        deleted_document_count: 1,
        indexed_document_volume: 0,
        total_document_count: Some(9),
    };
    backend
        .finish_sync_job(&suspended, &finish(JobStatus::Suspended))
        .await
        .unwrap();
    backend.cancel_sync_job(&suspended).await.unwrap();
    assert_eq!(
        backend.get_sync_job(&suspended).await.unwrap().status,
        JobStatus::Canceled
    );

    let done = new_job().await.unwrap();
    backend
        .claim_sync_job(&done, "worker-1", None)
        .await
        .unwrap();
    backend
        .finish_sync_job(&done, &finish(JobStatus::Completed))
        .await
        .unwrap();
    let job = backend.get_sync_job(&done).await.unwrap();
    assert_eq!(
        (
            job.status,
            job.indexed_document_count,
            job.total_document_count
        ),
        (JobStatus::Completed, 5, Some(9))
    );
    assert!(job.completed_at.is_some());
    assert_eq!(
        rejected_kind(&backend.cancel_sync_job(&done).await.unwrap_err()).0,
        400
    );
    assert!(
        backend
            .cancel_sync_job("missing")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn claim_check_in_stats_error_and_delete() {
    let backend = memory();
    create(&backend, "c", "i").await;
    let id = backend
        .create_sync_job("c", JobType::Incremental, TriggerMethod::OnDemand)
        .await
        .unwrap();
    assert_eq!(
        rejected_kind(
            &backend
                .set_sync_job_error(&id, "too early")
                .await
                .unwrap_err()
        )
        .1,
        "status_exception"
    );

    backend
        .claim_sync_job(&id, "host-a", Some(&json!({"page": 3})))
        .await
        .unwrap();
    let job = backend.get_sync_job(&id).await.unwrap();
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(job.worker_hostname.as_deref(), Some("host-a"));
    assert!(job.started_at.is_some());
    assert_eq!(job.connector.sync_cursor, Some(json!({"page": 3})));
    let err = backend
        .claim_sync_job(&id, "host-b", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    backend.check_in_sync_job(&id).await.unwrap();
    let seen = backend.get_sync_job(&id).await.unwrap().last_seen.unwrap();
    assert!(seen >= job.last_seen.unwrap());
    let given = Timestamp::from_millis(1_700_000_000_000).unwrap();
    let stats = SyncStats {
        deleted_document_count: 2,
        indexed_document_count: 40,
        indexed_document_volume: 1,
        total_document_count: Some(100),
        last_seen: Some(given),
        metadata: Some(json!({"pages": 4}).as_object().cloned().unwrap()),
    };
    backend.update_sync_job_stats(&id, &stats).await.unwrap();
    let job = backend.get_sync_job(&id).await.unwrap();
    assert_eq!(
        (
            job.indexed_document_count,
            job.deleted_document_count,
            job.indexed_document_volume
        ),
        (40, 2, 1)
    );
    assert_eq!(
        (job.total_document_count, job.last_seen),
        (Some(100), Some(given))
    );
    assert_eq!(job.metadata.get("pages"), Some(&json!(4)));
    backend
        .update_sync_job_stats(&id, &SyncStats::default())
        .await
        .unwrap();
    assert!(
        backend.get_sync_job(&id).await.unwrap().last_seen.unwrap() > given,
        "last_seen defaults to now"
    );

    backend
        .set_sync_job_error(&id, "source went away")
        .await
        .unwrap();
    let job = backend.get_sync_job(&id).await.unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Error, Some("source went away"))
    );
    assert!(job.completed_at.is_none());
    assert!(
        backend.set_sync_job_error(&id, "again").await.is_err(),
        "error is terminal"
    );

    backend.delete_sync_job(&id).await.unwrap();
    assert!(backend.get_sync_job(&id).await.unwrap_err().is_not_found());
    assert!(
        backend
            .delete_sync_job(&id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        backend
            .claim_sync_job(&id, "h", None)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn mark_sync_started_is_a_guard() {
    let backend = memory();
    create(&backend, "c", "i").await;
    assert!(backend.mark_sync_started("c", JobType::Full).await.unwrap());
    assert!(
        !backend
            .mark_sync_started("c", JobType::Incremental)
            .await
            .unwrap()
    );
    assert!(
        backend
            .mark_sync_started("c", JobType::AccessControl)
            .await
            .unwrap()
    );
    let c = backend.get_connector("c").await.unwrap();
    assert_eq!(c.last_sync_status, Some(JobStatus::InProgress));
    assert_eq!(c.status, ConnectorStatus::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_race_across_two_opens_of_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncdeck.db");
    let first = EmbeddedBackend::open(&path).unwrap();
    let second = EmbeddedBackend::open(&path).unwrap();
    create(&first, "c", "i").await;
    for round in 0..20 {
        let job = second
            .create_sync_job("c", JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            first.claim_sync_job(&job, "worker-a", None),
            second.claim_sync_job(&job, "worker-b", None)
        );
        let winners = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(winners, 1, "round {round}: {a:?} / {b:?}");
        let loser_is_b = a.is_ok();
        let loser = if loser_is_b { b } else { a };
        assert!(loser.unwrap_err().is_conflict());
        let winner = if loser_is_b { "worker-a" } else { "worker-b" };
        let job = first.get_sync_job(&job).await.unwrap();
        assert_eq!(job.worker_hostname.as_deref(), Some(winner));
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

#[tokio::test]
async fn bulk_reports_each_item_in_request_order() {
    let backend = memory();
    let created = backend
        .ensure_index(
            "shop",
            Some(&json!({"properties": {"price": {"type": "long"}}})),
        )
        .await
        .unwrap();
    assert!(created);
    assert!(!backend.ensure_index("shop", None).await.unwrap());
    let long_id = "x".repeat(513);
    let response = bulk(
        &backend,
        "shop",
        &[
            json!({"index": {"_id": "doc-1"}}),
            json!({"name": "kettle", "price": 30, "_timestamp": "2024-05-01T10:00:00Z"}),
            json!({"index": {"_id": "doc-1"}}),
            json!({"name": "kettle", "price": "31"}),
            json!({"create": {"_id": "doc-1"}}),
            json!({"name": "dup"}),
            json!({"index": {"_id": "doc-7"}}),
            json!({"name": "x","price":"abc"}),
            json!({"delete": {"_id": "doc-404"}}),
            json!({"index": {"_id": long_id}}),
            json!({"name": "long"}),
            json!({"update": {"_id": "doc-2"}}),
            json!({"doc": {"name": "new"}, "doc_as_upsert": true}),
            json!({"update": {"_id": "doc-2"}}),
            json!({"doc": {"price": 5}}),
            json!({"update": {"_id": "doc-2"}}),
            json!({"doc": {"price": 5}}),
            json!({"update": {"_id": "doc-3"}}),
            json!({"doc": {"price": 1}}),
            json!({"delete": {"_id": "doc-1"}}),
            json!({"index": {}}),
            json!({"auto": true}),
            json!({"index": {"_id": "other", "_index": "elsewhere"}}),
            json!({"n": 1}),
        ],
    )
    .await;
    let summary: Vec<_> = response
        .items
        .iter()
        .map(|i| {
            (
                i.op,
                i.status,
                i.result
                    .as_deref()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.error.as_ref().unwrap().kind.clone()),
            )
        })
        .collect();
    let expected = [
        (BulkOp::Index, 201, "created"),
        (BulkOp::Index, 200, "updated"),
        (BulkOp::Create, 409, "version_conflict_engine_exception"),
        (BulkOp::Index, 400, "document_parsing_exception"),
        (BulkOp::Delete, 404, "not_found"),
        (BulkOp::Index, 400, "illegal_argument_exception"),
        (BulkOp::Update, 201, "created"),
        (BulkOp::Update, 200, "updated"),
        (BulkOp::Update, 200, "noop"),
        (BulkOp::Update, 404, "document_missing_exception"),
        (BulkOp::Delete, 200, "deleted"),
        (BulkOp::Index, 201, "created"),
        (BulkOp::Index, 201, "created"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(op, status, r)| (*op, *status, r.to_string()))
        .collect();
    assert_eq!(summary, expected);
    assert!(response.errors);
    assert_eq!(
        response.items[3].error.as_ref().unwrap().reason,
        "[1:21] failed to parse field [price] of type [long] in document with id 'doc-7'. Preview of field's value: 'abc'"
    );
    assert!(
        response.items[5]
            .error
            .as_ref()
            .unwrap()
            .reason
            .contains("must be no longer than 512 bytes but was: 513")
    );
    assert_eq!(response.items[11].id.len(), 20, "generated id");

    assert_eq!(backend.count("shop").await.unwrap(), 2);
    assert_eq!(
        backend.get_document("shop", "doc-2").await.unwrap(),
        Some(json!({"name": "new", "price": 5}))
    );
    assert_eq!(backend.get_document("shop", "doc-1").await.unwrap(), None);
    assert!(
        backend.index_exists("elsewhere").await.unwrap(),
        "writing auto-creates the index"
    );
    assert!(backend.delete_document("shop", "doc-2").await.unwrap());
    assert!(!backend.delete_document("shop", "doc-2").await.unwrap());
    backend.refresh("shop").await.unwrap();
}

#[tokio::test]
async fn mapping_refusals_name_the_field_like_elasticsearch() {
    let backend = memory();
    let mappings = json!({"properties": {
        "flag": {"type": "boolean"}, "at": {"type": "date"}, "meta": {"type": "object"},
        "metrics": {"properties": {"value": {"type": "long"}}}
    }});
    backend.ensure_index("m", Some(&mappings)).await.unwrap();
    let response = bulk(
        &backend,
        "m",
        &[
            json!({"index": {"_id": "1"}}),
            json!({"flag": "yes"}),
            json!({"index": {"_id": "2"}}),
            json!({"at": "last tuesday"}),
            json!({"index": {"_id": "3"}}),
            json!({"meta": "flat"}),
            json!({"index": {"_id": "4"}}),
            json!({"metrics": {"value": "high"}}),
            json!({"index": {"_id": "5"}}),
            json!({"flag": true, "at": "2024-05-01", "meta": {"a": 1}, "metrics": {"value": 3}}),
        ],
    )
    .await;
    let reasons: Vec<_> = response
        .items
        .iter()
        .map(|i| i.error.as_ref().map(|e| e.reason.clone()))
        .collect();
    assert_eq!(
        reasons[0].as_deref(),
        Some(
            "[1:9] failed to parse field [flag] of type [boolean] in document with id '1'. Preview of field's value: 'yes'"
        )
    );
    assert_eq!(
        reasons[1].as_deref(),
        Some(
            "[1:7] failed to parse field [at] of type [date] in document with id '2'. Preview of field's value: 'last tuesday'"
        )
    );
    assert_eq!(
        reasons[2].as_deref(),
        Some(
            "[1:9] object mapping for [meta] tried to parse field [meta] as object, but found a concrete value"
        )
    );
    assert_eq!(
        reasons[3].as_deref(),
        Some(
            "[1:21] failed to parse field [metrics.value] of type [long] in document with id '4'. Preview of field's value: 'high'"
        )
    );
    assert_eq!(reasons[4], None);
    assert!(
        response
            .items
            .iter()
            .take(4)
            .all(|i| i.status == 400
                && i.error.as_ref().unwrap().kind == "document_parsing_exception")
    );
}

#[tokio::test]
async fn dynamic_mapping_then_mismatch() {
    let backend = memory();
    let first = bulk(
        &backend,
        "auto",
        &[
            json!({"index": {"_id": "a"}}),
            json!({"count": 5, "seen": "2024-01-01T00:00:00Z"}),
        ],
    )
    .await;
    assert!(!first.errors);
    let mapping = backend.index_mapping("auto").await.unwrap();
    assert_eq!(mapping["properties"]["count"]["type"], "long");
    assert_eq!(mapping["properties"]["seen"]["type"], "date");
    let second = bulk(
        &backend,
        "auto",
        &[
            json!({"index": {"_id": "b"}}),
            json!({"count": "many"}),
            json!({"index": {"_id": "c"}}),
            json!({"count": 6, "seen": 1714557600000i64}),
        ],
    )
    .await;
    assert_eq!(
        second.items[0].error.as_ref().unwrap().kind,
        "document_parsing_exception"
    );
    assert!(
        second.items[0]
            .error
            .as_ref()
            .unwrap()
            .reason
            .contains("of type [long]")
    );
    assert!(second.items[1].error.is_none());
    // A mapping survives a reopen of the same store: it is stored, not cached.
    assert_eq!(backend.index_mapping("auto").await.unwrap(), mapping);
}

#[tokio::test]
async fn malformed_action_line_refuses_the_whole_request() {
    let backend = memory();
    let mut body = ndjson(&[json!({"index": {"_id": "1"}}), json!({"a": 1})]);
    body.extend_from_slice(b"{\"index\": {\"_id\": \n{\"a\": 2}\n");
    let err = backend
        .bulk(&bulk_request("broken", body))
        .await
        .unwrap_err();
    let (status, kind, reason) = rejected_kind(&err);
    assert_eq!((status, kind), (400, "x_content_parse_exception"));
    assert!(reason.contains("line [3]"), "{reason}");
    assert!(
        !backend.index_exists("broken").await.unwrap(),
        "nothing was written"
    );

    let body = ndjson(&[json!({"index": {"_id": "1"}}), json!({"a": 1})]);
    let mut bad_source = body.clone();
    bad_source.extend_from_slice(b"{\"index\": {\"_id\": \"2\"}}\n{not json}\n");
    let response = backend
        .bulk(&bulk_request("broken", bad_source))
        .await
        .unwrap();
    assert!(response.items[0].error.is_none());
    assert_eq!(
        response.items[1].error.as_ref().unwrap().kind,
        "document_parsing_exception",
        "a bad source is per item"
    );
}

#[tokio::test]
async fn document_store_edges() {
    let backend = memory();
    assert!(backend.count("missing").await.unwrap_err().is_not_found());
    assert!(
        backend
            .scan_ids("missing", 10, 1)
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
    assert_eq!(backend.get_document("missing", "x").await.unwrap(), None);
    let err = backend
        .ensure_index("x", Some(&json!({"mappings": {"properties": {}}})))
        .await
        .unwrap_err();
    assert_eq!(rejected_kind(&err).1, "mapper_parsing_exception");
    assert_eq!(
        rejected_kind(&backend.ensure_index("Upper", None).await.unwrap_err()).1,
        "invalid_index_name_exception"
    );
    let response = bulk(&backend, "x", &[json!({"delete": {"_id": "1"}})]).await;
    assert_eq!(response.items[0].status, 404);
    assert_eq!(
        response.items[0].error.as_ref().unwrap().kind,
        "index_not_found_exception"
    );
}

#[tokio::test]
async fn scan_ids_sees_every_id_once() {
    let backend = memory();
    let total = 25_000;
    for chunk in 0..5 {
        let mut lines = Vec::new();
        for n in chunk * 5_000..(chunk + 1) * 5_000 {
            lines.push(json!({"index": {"_id": format!("doc-{n:05}")}}));
            lines.push(json!({"n": n, "_timestamp": format!("2024-01-01T00:00:{:02}Z", n % 60)}));
        }
        assert!(!bulk(&backend, "big", &lines).await.errors);
    }
    assert_eq!(backend.count("big").await.unwrap(), total);
    let mut scan = backend.scan_ids("big", 1000, 1).await.unwrap();
    let mut seen = HashSet::new();
    let mut pages = 0;
    while let Some(page) = scan.next_page().await.unwrap() {
        assert!(page.len() <= 1000);
        pages += 1;
        for meta in page {
            assert!(meta.timestamp.is_some(), "{}", meta.id);
            assert!(seen.insert(meta.id), "an id came twice");
        }
        assert!(pages <= 26, "the scan does not end");
    }
    assert_eq!(seen.len() as u64, total);
    scan.close().await.unwrap();
    assert!(scan.next_page().await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Files, reopen, seed

#[tokio::test]
async fn data_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("syncdeck.db");
    let job;
    {
        let backend = EmbeddedBackend::open(&path).unwrap();
        create(&backend, "c", "docs").await;
        job = backend
            .create_sync_job("c", JobType::Full, TriggerMethod::OnDemand)
            .await
            .unwrap();
        bulk(
            &backend,
            "docs",
            &[json!({"index": {"_id": "1"}}), json!({"n": 1})],
        )
        .await;
    }
    let backend = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(
        backend
            .get_connector("c")
            .await
            .unwrap()
            .index_name
            .as_deref(),
        Some("docs")
    );
    assert_eq!(
        backend.get_sync_job(&job).await.unwrap().status,
        JobStatus::Pending
    );
    assert_eq!(
        backend.get_document("docs", "1").await.unwrap(),
        Some(json!({"n": 1}))
    );
    let summary = backend.cluster().await.unwrap();
    assert_eq!(
        (
            summary.backend.as_str(),
            summary.health.as_str(),
            summary.number_of_nodes
        ),
        ("embedded", "n/a", 1)
    );
    assert_eq!(summary.location, path.display().to_string());
}

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncdeck.db");
    EmbeddedBackend::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        "this is not SQLite, just a text file that is long enough to have a header",
    )
    .unwrap();
    let err = EmbeddedBackend::open(&path).unwrap_err().to_string();
    assert!(err.contains("notes.db"), "{err}");
}

#[tokio::test]
async fn seed_demo_runs_once_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncdeck.db");
    let corpus = Path::new("/somewhere/demo-corpus");
    let backend = EmbeddedBackend::open(&path).unwrap();
    assert!(backend.seed_demo(corpus).unwrap());
    assert!(!backend.seed_demo(corpus).unwrap());

    let directory = backend.get_connector("demo-directory").await.unwrap();
    assert_eq!(
        (directory.name.as_str(), directory.index_name.as_deref()),
        ("Demo: local documents", Some("demo-docs"))
    );
    assert_eq!(directory.service_type.as_deref(), Some("directory"));
    assert_eq!(directory.status, ConnectorStatus::Configured);
    assert_eq!(
        directory.configuration.get("path").unwrap().value,
        "/somewhere/demo-corpus"
    );
    assert_eq!(
        directory.configuration.get("include").unwrap().value,
        "**/*"
    );
    assert_eq!(
        directory
            .configuration
            .get("extract_content")
            .unwrap()
            .value,
        true
    );

    let generator = backend.get_connector("demo-generator").await.unwrap();
    assert_eq!(generator.index_name.as_deref(), Some("demo-load"));
    assert_eq!(generator.configuration.get("count").unwrap().value, 20000);
    assert_eq!(
        generator.configuration.get("poison_every").unwrap().value,
        997
    );
    assert!(generator.configuration.get("api_token").unwrap().sensitive);
    let poison = bulk(
        &backend,
        "demo-load",
        &[
            json!({"index": {"_id": "997"}}),
            json!({"seq": 997, "value": "not-a-number"}),
            json!({"index": {"_id": "998"}}),
            json!({"seq": 998, "value": 12}),
        ],
    )
    .await;
    assert_eq!(
        poison.items[0].error.as_ref().unwrap().kind,
        "document_parsing_exception"
    );
    assert!(poison.items[1].error.is_none());

    backend
        .delete_connector("demo-directory", true, true)
        .await
        .unwrap();
    drop(backend);
    let reopened = EmbeddedBackend::open(&path).unwrap();
    assert!(!reopened.seed_demo(corpus).unwrap());
    assert!(
        reopened
            .get_connector("demo-directory")
            .await
            .unwrap_err()
            .is_not_found(),
        "a deleted demo stays deleted"
    );
}

#[tokio::test]
async fn seed_demo_leaves_a_users_connectors_alone() {
    let backend = memory();
    create(&backend, "demo-generator", "mine").await;
    create(&backend, "other", "demo-docs").await;
    assert!(backend.seed_demo(Path::new("/c")).unwrap());
    assert_eq!(
        backend
            .get_connector("demo-generator")
            .await
            .unwrap()
            .index_name
            .as_deref(),
        Some("mine")
    );
    assert!(
        backend
            .get_connector("demo-directory")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn a_clone_shares_the_store_and_works_from_many_tasks() {
    let backend = Arc::new(memory());
    create(&backend, "c", "i").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let backend = Arc::clone(&backend);
        tasks.push(tokio::spawn(async move {
            backend
                .create_sync_job("c", JobType::Full, TriggerMethod::OnDemand)
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        backend
            .list_sync_jobs(&SyncJobQuery::default())
            .await
            .unwrap()
            .count,
        8
    );
}

/// Run by hand: `cargo test --test it embedded_backend::bulk_throughput -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a throughput measurement, run by hand"]
async fn bulk_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let backend = EmbeddedBackend::open(&dir.path().join("bench.db")).unwrap();
    let filler = "lorem ipsum dolor sit amet ".repeat(36);
    let started = std::time::Instant::now();
    for chunk in 0..200 {
        let mut body = Vec::new();
        for n in chunk * 500..(chunk + 1) * 500 {
            body.extend_from_slice(format!("{{\"index\":{{\"_id\":\"doc-{n}\"}}}}\n").as_bytes());
            let doc = json!({"id": format!("doc-{n}"), "n": n, "title": format!("Document {n}"), "body": filler,
                             "_timestamp": "2024-05-01T10:00:00Z"});
            serde_json::to_writer(&mut body, &doc).unwrap();
            body.push(b'\n');
        }
        let response = backend.bulk(&bulk_request("bench", body)).await.unwrap();
        assert!(!response.errors);
    }
    let elapsed = started.elapsed();
    assert_eq!(backend.count("bench").await.unwrap(), 100_000);
    println!(
        "100000 docs of ~1 KB in {elapsed:?} ({:.0} docs/s)",
        100_000.0 / elapsed.as_secs_f64()
    );
}
