//! The `serve` loop and draft sync rules (PROTOCOL §5.2 step 4), on both backends: one tick
//! validates an `edited` draft, writes `_filtering/_validation`, and activates it when valid.
//! An invalid draft is reported on the draft only. A served connector's features follow its
//! source. The read-only wrapper refuses the writes.

use crate::engine_util;
use crate::support;

use engine_util::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{StandIn, StandInOptions};
use syncdeck::backend::elasticsearch::ElasticsearchBackend;
use syncdeck::backend::embedded::EmbeddedBackend;
use syncdeck::backend::{BackendError, ControlPlane, ReadOnly};
use syncdeck::engine::runner::Engine;
use syncdeck::engine::service::{ServeOptions, serve};
use syncdeck::model::{
    Connector, ConnectorStatus, Features, FilteringRule, FilteringRules, FilteringValidation,
    FilteringValidationState, JobType, RulePolicy, RuleType, TriggerMethod,
};
use tokio_util::sync::CancellationToken;

/// One of the two backends, with the engine serving it.
enum Backend {
    Embedded(EmbeddedBackend),
    // The stand-in is kept alive for as long as the backend is used.
    Es(Arc<ElasticsearchBackend>, StandIn),
}

impl Backend {
    fn control(&self) -> &dyn ControlPlane {
        match self {
            Backend::Embedded(b) => b,
            Backend::Es(b, _) => b.as_ref(),
        }
    }

    /// Turns basic sync rules on or off (Elasticsearch creates connectors with them off; the
    /// embedded backend writes no features, which counts as on).
    async fn set_sync_rules(&self, id: &str, on: bool) {
        let features: Features = serde_json::from_value(
            json!({"sync_rules": {"basic": {"enabled": on}, "advanced": {"enabled": false}}}),
        )
        .unwrap();
        match self {
            Backend::Embedded(b) => b.update_features(id, &features).await.unwrap(),
            Backend::Es(b, _) => b
                .client()
                .connectors()
                .update_features(id, &features)
                .await
                .unwrap(),
        }
    }
}

fn embedded(worker: &str) -> (Engine, Backend) {
    let (engine, backend, _dlq) = embedded_engine(worker);
    (engine, Backend::Embedded(backend))
}

async fn elasticsearch(worker: &str) -> (Engine, Backend) {
    let standin = StandIn::start(StandInOptions {
        nodes: 1,
        kibana: false,
        ..Default::default()
    })
    .await;
    let es = es_backend(&standin.es_urls());
    let engine = engine(
        es.clone(),
        es.clone(),
        memory_dlq(),
        marking_registry(),
        worker,
    );
    (engine, Backend::Es(es, standin))
}

fn rule(id: &str, field: &str, kind: RuleType, value: &str, order: i64) -> FilteringRule {
    FilteringRule {
        id: id.into(),
        policy: RulePolicy::Exclude,
        field: field.into(),
        rule: kind,
        value: value.into(),
        order,
        created_at: None,
        updated_at: None,
    }
}

/// A generator connector (status `configured`) with sync rules as asked.
async fn connector(backend: &Backend, id: &str, sync_rules: bool) -> String {
    let id = generator_connector(backend.control(), id, id, 10, 0, 0).await;
    backend.set_sync_rules(&id, sync_rules).await;
    id
}

/// Exactly one service tick over this one connector.
async fn one_tick(engine: &Engine, id: &str) {
    let options = ServeOptions {
        connector_ids: vec![id.to_string()],
        idle: Duration::from_millis(10),
        max_ticks: Some(1),
        ..Default::default()
    };
    let summary = serve(engine, &options, CancellationToken::new()).await;
    assert_eq!(summary.ticks, 1, "{summary:?}");
}

async fn get(backend: &Backend, id: &str) -> Connector {
    backend.control().get_connector(id).await.unwrap()
}

fn draft(c: &Connector) -> &FilteringRules {
    &c.filtering[0].draft
}

fn active(c: &Connector) -> &FilteringRules {
    &c.filtering[0].active
}

fn rule_ids(rules: &FilteringRules) -> Vec<&str> {
    rules.rules.iter().map(|r| r.id.as_str()).collect()
}

// 1. An edited, valid draft is validated and activated; the next job uses it. -------------

async fn valid_draft_is_activated(engine: Engine, backend: Backend) {
    let id = connector(&backend, "valid-draft", true).await;
    let rules = [
        rule("no-alpha", "category", RuleType::Equals, "alpha", 1),
        rule("no-drafts", "title", RuleType::Regex, "draft-[0-9]+", 2),
    ];
    backend
        .control()
        .update_filtering(&id, &rules, None)
        .await
        .unwrap();
    assert_eq!(
        draft(&get(&backend, &id).await).validation.state,
        FilteringValidationState::Edited
    );

    one_tick(&engine, &id).await;

    let c = get(&backend, &id).await;
    assert_eq!(
        draft(&c).validation,
        FilteringValidation {
            state: FilteringValidationState::Valid,
            errors: vec![]
        },
        "{:#?}",
        c.filtering
    );
    assert_eq!(active(&c), draft(&c), "the draft became the active rules");
    assert_eq!(rule_ids(active(&c)), ["no-alpha", "no-drafts", "DEFAULT"]);
    assert_eq!(c.status, ConnectorStatus::Connected, "{c:#?}");
    // Jobs snapshot the active rules.
    let control = backend.control();
    let job = control
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let snapshot = control
        .get_sync_job(&job)
        .await
        .unwrap()
        .connector
        .filtering;
    let snapshot = snapshot.expect("the job's active rules");
    assert_eq!(rule_ids(&snapshot), ["no-alpha", "no-drafts", "DEFAULT"]);
}

#[tokio::test]
async fn embedded_a_valid_edited_draft_is_validated_and_activated() {
    let (engine, backend) = embedded("rules-valid");
    valid_draft_is_activated(engine, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_a_valid_edited_draft_is_validated_and_activated() {
    let (engine, backend) = elasticsearch("rules-valid").await;
    valid_draft_is_activated(engine, backend).await;
}

// 2. An invalid draft is marked invalid, naming the rule; nothing else changes. ---------

async fn invalid_draft_is_reported(engine: Engine, backend: Backend) {
    let id = connector(&backend, "invalid-draft", true).await;
    let before = get(&backend, &id).await;
    let rules = [
        rule("fine", "category", RuleType::Equals, "alpha", 1),
        rule("broken", "title", RuleType::Regex, "draft-(", 2),
    ];
    backend
        .control()
        .update_filtering(&id, &rules, None)
        .await
        .unwrap();

    one_tick(&engine, &id).await;

    let c = get(&backend, &id).await;
    let validation = &draft(&c).validation;
    assert_eq!(
        validation.state,
        FilteringValidationState::Invalid,
        "{validation:?}"
    );
    assert_eq!(validation.errors.len(), 1, "{validation:?}");
    assert_eq!(validation.errors[0].ids, ["broken"]);
    let message = &validation.errors[0].messages[0];
    assert!(
        message.starts_with("Rule 'broken': 'draft-(' is not a valid regular expression"),
        "{message}"
    );
    assert_eq!(
        rule_ids(draft(&c)),
        ["fine", "broken", "DEFAULT"],
        "draft rules kept"
    );
    assert_eq!(active(&c), active(&before), "active rules unchanged");
    // The framework only reports an invalid draft; the connector itself is fine.
    assert_eq!(c.status, ConnectorStatus::Connected, "{c:#?}");
    assert_eq!(c.error, None);

    // A later tick leaves the invalid draft as it is until it is edited again.
    one_tick(&engine, &id).await;
    assert_eq!(get(&backend, &id).await.filtering, c.filtering);
}

#[tokio::test]
async fn embedded_an_invalid_draft_is_reported_and_not_activated() {
    let (engine, backend) = embedded("rules-invalid");
    invalid_draft_is_reported(engine, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_an_invalid_draft_is_reported_and_not_activated() {
    let (engine, backend) = elasticsearch("rules-invalid").await;
    invalid_draft_is_reported(engine, backend).await;
}

// 3. Features follow the source (PROTOCOL §5.2, prepare): a connector with sync rules off
// gets them on in its first tick, and a draft edited meanwhile is settled in that tick. ----

async fn features_follow_the_source(engine: Engine, backend: Backend) {
    let id = connector(&backend, "rules-off", false).await;
    let rules = [rule("no-alpha", "category", RuleType::Equals, "alpha", 1)];
    backend
        .control()
        .update_filtering(&id, &rules, None)
        .await
        .unwrap();

    one_tick(&engine, &id).await;

    let c = get(&backend, &id).await;
    let features = serde_json::to_value(c.features.clone().unwrap()).unwrap();
    assert_eq!(
        (
            features["sync_rules"]["basic"]["enabled"].clone(),
            features["sync_rules"]["advanced"]["enabled"].clone(),
            features["incremental_sync"]["enabled"].clone(),
        ),
        (json!(true), json!(false), json!(false)),
        "the generator's features: {features}"
    );
    assert_eq!(draft(&c).validation.state, FilteringValidationState::Valid);
    assert_eq!(rule_ids(active(&c)), ["no-alpha", "DEFAULT"]);
    assert_eq!(c.status, ConnectorStatus::Connected, "{c:#?}");

    // Features already right are not written again.
    one_tick(&engine, &id).await;
    if let Backend::Es(_, standin) = &backend {
        let writes = standin
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/_features"))
            .count();
        // One by the test's set-up, one by the first tick.
        assert_eq!(writes, 2);
    }
    assert_eq!(get(&backend, &id).await.features, c.features);
}

#[tokio::test]
async fn embedded_features_follow_the_source() {
    let (engine, backend) = embedded("rules-off");
    features_follow_the_source(engine, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_features_follow_the_source() {
    let (engine, backend) = elasticsearch("rules-off").await;
    features_follow_the_source(engine, backend).await;
}

// More cases on one backend each. --------------------------------------------------------

#[tokio::test]
async fn an_advanced_snippet_the_source_cannot_apply_makes_the_draft_invalid() {
    let (engine, backend) = embedded("rules-advanced");
    let id = connector(&backend, "advanced", true).await;
    let snippet = json!({"query": {"match": {"title": "x"}}});
    backend
        .control()
        .update_filtering(&id, &[], Some(&snippet))
        .await
        .unwrap();

    one_tick(&engine, &id).await;

    let c = get(&backend, &id).await;
    let validation = &draft(&c).validation;
    assert_eq!(validation.state, FilteringValidationState::Invalid);
    assert_eq!(
        validation.errors[0].ids,
        ["advanced_snippet"],
        "{validation:?}"
    );
    assert!(
        validation.errors[0].messages[0].contains("generator does not support advanced sync rules"),
        "{validation:?}"
    );
    assert_eq!(active(&c).advanced_snippet.value, json!({}));
}

#[tokio::test]
async fn embedded_connectors_without_features_count_as_sync_rules_on() {
    let (engine, backend) = embedded("rules-default");
    let id = generator_connector(backend.control(), "no-features", "no-features", 10, 0, 0).await;
    assert_eq!(get(&backend, &id).await.features, None);
    let rules = [rule("no-alpha", "category", RuleType::Equals, "alpha", 1)];
    backend
        .control()
        .update_filtering(&id, &rules, None)
        .await
        .unwrap();

    one_tick(&engine, &id).await;

    let c = get(&backend, &id).await;
    assert_eq!(draft(&c).validation.state, FilteringValidationState::Valid);
    assert_eq!(rule_ids(active(&c)), ["no-alpha", "DEFAULT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_the_tick_uses_the_filtering_endpoints() {
    let (engine, backend) = elasticsearch("rules-endpoints").await;
    let Backend::Es(_, standin) = &backend else {
        unreachable!()
    };
    let id = connector(&backend, "endpoints", true).await;
    let rules = [rule("no-alpha", "category", RuleType::Equals, "alpha", 1)];
    backend
        .control()
        .update_filtering(&id, &rules, None)
        .await
        .unwrap();
    standin.clear_requests();

    one_tick(&engine, &id).await;

    let paths: Vec<String> = standin
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("_filtering"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/_connector/{id}/_filtering/_validation"),
            format!("/_connector/{id}/_filtering/_activate"),
        ]
    );
    let doc = standin.connector(&id).unwrap();
    let filtering: &Value = &doc["filtering"][0];
    assert_eq!(
        filtering["draft"]["validation"]["state"], "valid",
        "{doc:#}"
    );
    assert_eq!(filtering["active"], filtering["draft"], "{doc:#}");
}

// 4. Read-only profiles refuse both writes. ----------------------------------------------

#[tokio::test]
async fn read_only_refuses_validation_and_activation() {
    let inner = EmbeddedBackend::open_in_memory().unwrap();
    let id = generator_connector(&inner, "ro", "ro", 10, 0, 0).await;
    let rules = [rule("no-alpha", "category", RuleType::Equals, "alpha", 1)];
    inner.update_filtering(&id, &rules, None).await.unwrap();
    let before = inner.get_connector(&id).await.unwrap();
    let read_only = ReadOnly::new(Arc::new(inner.clone()), "prod");

    let validation = FilteringValidation {
        state: FilteringValidationState::Valid,
        errors: vec![],
    };
    let refused = [
        read_only
            .update_filtering_validation(&id, &validation)
            .await
            .unwrap_err(),
        read_only.activate_filtering(&id).await.unwrap_err(),
        read_only
            .update_features(&id, &Features::default())
            .await
            .unwrap_err(),
    ];

    for (err, action) in refused.iter().zip([
        "update filtering validation",
        "activate filtering",
        "update features",
    ]) {
        match err {
            BackendError::ReadOnly { profile, action: a } => {
                assert_eq!((profile.as_str(), a.as_str()), ("prod", action));
            }
            other => panic!("expected a read-only refusal, got {other:?}"),
        }
    }
    let after = inner.get_connector(&id).await.unwrap();
    assert_eq!(
        after.filtering, before.filtering,
        "nothing reached the backend"
    );
}

#[tokio::test]
async fn read_only_refuses_the_schedule_mark_and_the_configuration_merge_but_searches() {
    use syncdeck::backend::JobFilter;
    use syncdeck::model::{JobStatus, Timestamp};
    let inner = EmbeddedBackend::open_in_memory().unwrap();
    let id = generator_connector(&inner, "ro-serve", "ro-serve", 10, 0, 0).await;
    let job = inner
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let before = inner.get_connector(&id).await.unwrap();
    let read_only = ReadOnly::new(Arc::new(inner.clone()), "prod");

    let mark = read_only
        .mark_sync_scheduled(&id, JobType::Full, Timestamp::now(), Timestamp::now())
        .await
        .unwrap_err();
    let merge = read_only
        .merge_configuration(&id, &serde_json::Map::new())
        .await
        .unwrap_err();
    for (err, action) in [(mark, "schedule sync"), (merge, "update configuration")] {
        match err {
            BackendError::ReadOnly { action: a, .. } => assert_eq!(a, action),
            other => panic!("expected a read-only refusal, got {other:?}"),
        }
    }
    assert_eq!(inner.get_connector(&id).await.unwrap(), before);
    let found = read_only
        .search_sync_jobs(&JobFilter {
            connector_ids: vec![id.clone()],
            statuses: vec![JobStatus::Pending],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        [job]
    );
}
