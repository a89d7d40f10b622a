//! Binary attachments (`_attachment`, base64, as the connectors framework sends them) become
//! `body` text in the pipeline when the connector's pipeline asks for binary extraction, and
//! an attachment that cannot be extracted is indexed without text, its error recorded.

use crate::engine_util;

use base64::Engine as _;
use engine_util::{create_connector, embedded_engine};
use serde_json::json;
use syncdeck::backend::DocumentStore;
use syncdeck::model::{JobType, TriggerMethod};
use syncdeck::sources::NdjsonFactory;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn attachments_become_body_text_and_failures_are_recorded() {
    let (engine, backend, dlq) = embedded_engine("attach-worker");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.ndjson");
    let text =
        base64::engine::general_purpose::STANDARD.encode("the quarterly runbook, in plain text");
    let broken_pdf =
        base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 this is not really a pdf");
    let lines = [
        json!({"id": "a", "title": "plain", "_attachment": text}),
        json!({"id": "b", "title": "broken", "_attachment": broken_pdf}),
        json!({"id": "c", "title": "none"}),
    ];
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let id = create_connector(
        &backend,
        "att",
        "att-index",
        &NdjsonFactory,
        json!({"path": path.to_str().unwrap()}),
    )
    .await;
    let job = syncdeck::backend::ControlPlane::create_sync_job(
        &backend,
        &id,
        JobType::Full,
        TriggerMethod::OnDemand,
    )
    .await
    .unwrap();
    let report = engine
        .run_job(&job, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.counters.indexed, 3, "{report:?}");
    assert!(dlq.list(&Default::default()).unwrap().is_empty());

    let a = backend
        .get_document("att-index", "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a["body"], "the quarterly runbook, in plain text");
    assert!(a.get("_attachment").is_none(), "{a}");
    let b = backend
        .get_document("att-index", "b")
        .await
        .unwrap()
        .unwrap();
    assert!(b.get("_attachment").is_none(), "{b}");
    assert!(
        b["_extraction_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{b}"
    );
    assert_eq!(b["title"], "broken");
    let c = backend
        .get_document("att-index", "c")
        .await
        .unwrap()
        .unwrap();
    assert!(
        c.get("body").is_none() && c.get("_extraction_error").is_none(),
        "{c}"
    );
}

/// Advanced sync rules go to the source unchanged; a source that cannot apply them fails the
/// job up front, naming them, instead of silently syncing everything.
#[tokio::test]
async fn unsupported_advanced_rules_fail_the_job_before_any_document() {
    let (engine, backend, _dlq) = embedded_engine("rules-worker");
    let id = engine_util::generator_connector(&backend, "adv", "adv-index", 50, 0, 0).await;
    let control: &dyn syncdeck::backend::ControlPlane = &backend;
    control
        .update_filtering(&id, &[], Some(&json!({"query": {"match": {"title": "x"}}})))
        .await
        .unwrap();
    backend
        .update_filtering_validation(&id, &syncdeck::model::FilteringValidation::default())
        .await
        .unwrap();
    backend.activate_filtering(&id).await.unwrap();
    let job = control
        .create_sync_job(&id, JobType::Full, TriggerMethod::OnDemand)
        .await
        .unwrap();
    let report = engine
        .run_job(&job, &CancellationToken::new())
        .await
        .unwrap();
    match &report.end {
        syncdeck::engine::runner::JobEnd::Failed { error } => {
            assert!(
                error.contains("advanced sync rules") && error.contains("generator"),
                "{error}"
            )
        }
        other => panic!("expected a failed job, got {other:?}"),
    }
    assert_eq!(report.counters.seen, 0);
    assert_eq!(
        control.get_sync_job(&job).await.unwrap().status,
        syncdeck::model::JobStatus::Error
    );
}
