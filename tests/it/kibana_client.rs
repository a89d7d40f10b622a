//! The Kibana client against the stand-in's Kibana: status, connector types, the connector
//! life cycle with `.index` execution, spaces, authentication, health flags and `kbn-xsrf`.

use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{StandIn, StandInAuth, StandInOptions};
use syncdeck::config::{Auth, KibanaSettings, TlsSettings};
use syncdeck::kibana::{ExecuteStatus, Kibana, KibanaError, NewActionConnector};
use syncdeck::secret::Secret;

const FIXED_ID: &str = "5b3c2a10-7e4f-4d2a-9c1b-0a1b2c3d4e5f";

fn settings(standin: &StandIn, space: Option<&str>, auth: Auth) -> KibanaSettings {
    KibanaSettings {
        url: standin.kibana_url().parse().unwrap(),
        space: space.map(str::to_string),
        auth,
        request_timeout: Duration::from_secs(10),
        tls: TlsSettings::default(),
    }
}

fn client(standin: &StandIn, space: Option<&str>) -> Kibana {
    Kibana::new(&settings(standin, space, Auth::None)).unwrap()
}

#[tokio::test]
async fn status_reports_name_version_and_level() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let status = client(&standin, None).status().await.unwrap();
    assert_eq!(status.version, StandInOptions::default().version);
    assert!(status.is_available(), "{status:?}");
}

#[tokio::test]
async fn connector_types_include_index() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let types = client(&standin, None).connector_types(None).await.unwrap();
    let index = types
        .iter()
        .find(|t| t.id == ".index")
        .expect(".index type");
    assert!(index.enabled);
    assert!(!index.name.is_empty());
}

#[tokio::test]
async fn connector_life_cycle_with_index_execution() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let kb = client(&standin, None);

    let created = kb
        .create_index_connector("audit", "audit-log", true, Some("@timestamp"))
        .await
        .unwrap();
    assert!(!created.id.is_empty());
    assert_eq!(created.connector_type_id, ".index");
    assert_eq!(created.index_name(), Some("audit-log"));

    let with_id = NewActionConnector {
        name: "fixed".into(),
        connector_type_id: ".index".into(),
        config: json!({"index": "fixed-index", "refresh": false}),
        secrets: json!({}),
    };
    let fixed = kb.create_connector(Some(FIXED_ID), &with_id).await.unwrap();
    assert_eq!(fixed.id, FIXED_ID);

    let listed = kb.connectors().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids.contains(&created.id.as_str()) && ids.contains(&FIXED_ID),
        "{ids:?}"
    );

    let got = kb.connector(FIXED_ID).await.unwrap();
    assert_eq!(
        (got.name.as_str(), got.index_name()),
        ("fixed", Some("fixed-index"))
    );

    let updated = kb
        .update_connector(
            FIXED_ID,
            "renamed",
            &json!({"index": "renamed-index"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(
        kb.connector(FIXED_ID).await.unwrap().index_name(),
        Some("renamed-index")
    );

    let documents = [
        json!({"n": 1, "msg": "first"}),
        json!({"n": 2, "msg": "second"}),
    ];
    let result = kb
        .execute_index(&created.id, &documents, None)
        .await
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(result.status, ExecuteStatus::Ok);
    assert_eq!(result.connector_id, created.id);
    assert_eq!(sorted_n(&standin.index_docs("audit-log")), vec![1, 2]);

    let override_index = "kibana-alert-history-syncdeck";
    let result = kb
        .execute_index(&created.id, &[json!({"n": 3})], Some(override_index))
        .await
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(sorted_n(&standin.index_docs(override_index)), vec![3]);
    assert_eq!(standin.index_docs("audit-log").len(), 2);

    kb.delete_connector(FIXED_ID).await.unwrap();
    match kb.connector(FIXED_ID).await {
        Err(KibanaError::NotFound(message)) => assert!(!message.is_empty()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        kb.delete_connector(FIXED_ID).await,
        Err(KibanaError::NotFound(_))
    ));
}

fn sorted_n(docs: &[(String, Value)]) -> Vec<i64> {
    let mut n: Vec<i64> = docs.iter().filter_map(|(_, d)| d["n"].as_i64()).collect();
    n.sort_unstable();
    n
}

#[tokio::test]
async fn a_bad_request_carries_kibanas_message() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let missing_index = NewActionConnector {
        name: "broken".into(),
        connector_type_id: ".index".into(),
        config: json!({}),
        secrets: json!({}),
    };
    match client(&standin, None)
        .create_connector(None, &missing_index)
        .await
    {
        Err(KibanaError::BadRequest(message)) => assert!(message.contains("index"), "{message}"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn connectors_live_in_their_space() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let ops = client(&standin, Some("ops"));
    let default = client(&standin, None);
    let created = ops
        .create_index_connector("ops-only", "ops-index", false, None)
        .await
        .unwrap();

    let in_ops = ops.connectors().await.unwrap();
    assert!(in_ops.iter().any(|c| c.id == created.id));
    let in_default = default.connectors().await.unwrap();
    assert!(
        in_default.iter().all(|c| c.id != created.id),
        "{in_default:?}"
    );
    assert!(matches!(
        default.connector(&created.id).await,
        Err(KibanaError::NotFound(_))
    ));
    let paths: Vec<String> = standin.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/s/ops/api/actions/connector"),
        "{paths:?}"
    );
}

#[tokio::test]
async fn authentication_is_required_and_accepted() {
    let opts = StandInOptions {
        auth: StandInAuth::Basic {
            user: "elastic".into(),
            password: "changeme-kb".into(),
        },
        ..StandInOptions::default()
    };
    let standin = StandIn::start(opts).await;

    match client(&standin, None).connectors().await {
        Err(err @ KibanaError::Unauthorized(_)) => {
            assert!(
                err.to_string()
                    .starts_with("Kibana did not accept the credentials")
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    let wrong = Auth::Basic {
        username: "elastic".into(),
        password: Secret::new("wrong-password-xyz"),
    };
    let err = Kibana::new(&settings(&standin, None, wrong))
        .unwrap()
        .connectors()
        .await
        .unwrap_err();
    assert!(matches!(err, KibanaError::Unauthorized(_)));
    assert!(!format!("{err} {err:?}").contains("wrong-password-xyz"));

    let right = Auth::Basic {
        username: "elastic".into(),
        password: Secret::new("changeme-kb"),
    };
    let kb = Kibana::new(&settings(&standin, None, right)).unwrap();
    assert!(!format!("{kb:?}").contains("changeme-kb"));
    kb.connectors().await.unwrap();
    kb.create_index_connector("authed", "authed-index", false, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn health_flags_follow_kibana() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let kb = client(&standin, None);
    let created = kb
        .create_index_connector("flags", "flags-index", false, None)
        .await
        .unwrap();
    assert!(created.health_flags().is_empty());

    assert!(standin.kibana_set_flags(&created.id, true, true));
    let flagged = kb.connector(&created.id).await.unwrap();
    assert_eq!(
        flagged.health_flags(),
        vec!["missing secrets", "deprecated"]
    );

    assert!(standin.kibana_set_flags(&created.id, false, true));
    let listed = kb.connectors().await.unwrap();
    let deprecated = listed.iter().find(|c| c.id == created.id).unwrap();
    assert_eq!(deprecated.health_flags(), vec!["deprecated"]);
}

#[tokio::test]
async fn every_mutating_request_sends_kbn_xsrf() {
    let standin = StandIn::start(StandInOptions::default()).await;
    let kb = client(&standin, Some("ops"));
    standin.clear_requests();

    let created = kb
        .create_index_connector("x", "xsrf-index", false, None)
        .await
        .unwrap();
    kb.update_connector(&created.id, "y", &json!({"index": "xsrf-index"}), None)
        .await
        .unwrap();
    kb.execute_index(&created.id, &[json!({"a": 1})], None)
        .await
        .unwrap();
    kb.delete_connector(&created.id).await.unwrap();

    let mutating: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "DELETE"))
        .collect();
    let methods: Vec<&str> = mutating.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, vec!["POST", "PUT", "POST", "DELETE"]);
    for request in &mutating {
        assert_eq!(request.header("kbn-xsrf"), Some("syncdeck"), "{request:?}");
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn an_unreachable_kibana_is_reported_with_its_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let settings = KibanaSettings {
        url: format!("http://127.0.0.1:{port}/").parse().unwrap(),
        space: None,
        auth: Auth::None,
        request_timeout: Duration::from_secs(5),
        tls: TlsSettings::default(),
    };
    let err = Kibana::new(&settings).unwrap().status().await.unwrap_err();
    assert!(matches!(err, KibanaError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot reach Kibana at 'http://127.0.0.1:{port}/api/status'"
        )),
        "{err}"
    );
}
