//! The Kibana face: `GET /api/status`, spaces (`/s/{space}` prefixes and `/api/spaces/space`),
//! and the actions (connectors) API: connector types, list/get/create/update/delete, and
//! `_execute`, which for `.index` connectors really indexes into the shared cluster state.
//! Written from the facts in `kibana-actions-openapi.yaml` and its examples; no Kibana text is
//! copied. Errors use Kibana's `{statusCode, error, message}` shape; writes need `kbn-xsrf`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use super::es::{AuthFailure, auth_reason, check_auth, gunzip_if_needed};
use super::http::{Reply, is_blank, new_uuid, now_iso};
use super::{Shared, bulk, lock};

pub(crate) struct KConnector {
    name: String,
    type_id: String,
    config: Value,
    secrets: Value,
    missing_secrets: bool,
    deprecated: bool,
}

impl KConnector {
    fn to_json(&self, id: &str) -> Value {
        json!({
            "id": id,
            "name": self.name,
            "config": self.config,
            "connector_type_id": self.type_id,
            "is_preconfigured": false,
            "is_deprecated": self.deprecated,
            "is_missing_secrets": self.missing_secrets,
            "is_system_action": false,
        })
    }
}

#[derive(Default)]
pub(crate) struct KibanaState {
    /// space id → connector id → connector.
    connectors: BTreeMap<String, BTreeMap<String, KConnector>>,
    /// Spaces created through the API (`default` always exists).
    spaces: BTreeMap<String, Value>,
}

impl KibanaState {
    pub fn set_flags(&mut self, id: &str, missing_secrets: bool, deprecated: bool) -> bool {
        let mut found = false;
        for c in self.connectors.values_mut().filter_map(|s| s.get_mut(id)) {
            c.missing_secrets = missing_secrets;
            c.deprecated = deprecated;
            found = true;
        }
        found
    }

    pub fn list(&self, space: &str) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .connectors
            .get(space)
            .into_iter()
            .flatten()
            .map(|(id, c)| {
                let mut v = c.to_json(id);
                v["referenced_by_count"] = json!(0);
                v
            })
            .collect();
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        out
    }
}

fn kerr(status: u16, message: impl Into<String>) -> Reply {
    let error = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Internal Server Error",
    };
    Reply::json(
        status,
        &json!({"statusCode": status, "error": error, "message": message.into()}),
    )
}

fn not_found_object(id: &str) -> Reply {
    kerr(404, format!("Saved object [action/{id}] not found"))
}

fn unauthorized(fail: &AuthFailure) -> Reply {
    let message = match fail {
        AuthFailure::Missing => "Unauthorized".to_owned(),
        other => format!(
            "[security_exception]: {}",
            auth_reason(other, "/_security/_authenticate")
        ),
    };
    let mut r = kerr(401, message);
    r.headers
        .push(("WWW-Authenticate", "Basic realm=\"kibana\"".to_owned()));
    r
}

/// The connector types the stand-in knows: `(id, name, minimum license)`.
const TYPES: &[(&str, &str, &str)] = &[
    (".email", "Email", "gold"),
    (".index", "Index", "basic"),
    (".server-log", "Server log", "basic"),
    (".slack", "Slack", "gold"),
    (".webhook", "Webhook", "gold"),
];

fn connector_types(feature: Option<&str>) -> Value {
    let features = ["alerting", "uptime", "siem"];
    let list: Vec<Value> = TYPES
        .iter()
        .filter(|_| feature.is_none_or(|f| features.contains(&f)))
        .map(|(id, name, license)| {
            json!({
                "id": id,
                "name": name,
                "enabled": true,
                "enabled_in_config": true,
                "enabled_in_license": true,
                "minimum_license_required": license,
                "supported_feature_ids": features,
                "is_system_action_type": false,
            })
        })
        .collect();
    Value::Array(list)
}

pub(crate) fn serve(
    shared: &Shared,
    method: Method,
    path: &str,
    raw_query: &str,
    headers: HeaderMap,
    raw: Bytes,
) -> Reply {
    if let Err(fail) = check_auth(&shared.opts.auth, &headers) {
        return unauthorized(&fail);
    }
    let (space, rest) = split_space(path);
    let writes = matches!(
        method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    if writes && !headers.contains_key("kbn-xsrf") {
        return kerr(400, "Request must contain a kbn-xsrf header.");
    }
    let body = match gunzip_if_needed(&headers, raw) {
        Ok(b) => b,
        Err(_) => return kerr(400, "Invalid request payload: could not decompress"),
    };
    let json_body = if is_blank(&body) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(&body)
            .map_err(|_| kerr(400, "Invalid request payload JSON format"))
    };
    let body = match json_body {
        Ok(b) => b,
        Err(r) => return r,
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    match (method, segs.as_slice()) {
        (Method::GET, ["api", "status"]) => status(shared),
        (Method::GET, ["api", "spaces", "space"]) => Reply::ok(&spaces(shared)),
        (Method::GET, ["api", "spaces", "space", id]) => {
            let all = spaces(shared);
            match all
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["id"] == *id)
            {
                Some(s) => Reply::ok(s),
                None => kerr(404, "Not Found"),
            }
        }
        (Method::POST, ["api", "spaces", "space"]) => create_space(shared, &body),
        (Method::GET, ["api", "actions", "connector_types"]) => {
            Reply::ok(&connector_types(param("feature_id")))
        }
        (Method::GET, ["api", "actions", "connectors"]) => {
            Reply::ok(&Value::Array(lock(&shared.cluster).kibana.list(&space)))
        }
        (Method::POST, ["api", "actions", "connector"]) => create(shared, &space, None, &body),
        (Method::GET, ["api", "actions", "connector", id]) => {
            let cluster = lock(&shared.cluster);
            match cluster
                .kibana
                .connectors
                .get(&space)
                .and_then(|s| s.get(*id))
            {
                Some(c) => Reply::ok(&c.to_json(id)),
                None => not_found_object(id),
            }
        }
        (Method::POST, ["api", "actions", "connector", id]) => {
            create(shared, &space, Some(id), &body)
        }
        (Method::PUT, ["api", "actions", "connector", id]) => update(shared, &space, id, &body),
        (Method::DELETE, ["api", "actions", "connector", id]) => {
            let mut cluster = lock(&shared.cluster);
            match cluster
                .kibana
                .connectors
                .get_mut(&space)
                .and_then(|s| s.remove(*id))
            {
                Some(_) => Reply::empty(204),
                None => not_found_object(id),
            }
        }
        (Method::POST, ["api", "actions", "connector", id, "_execute"]) => {
            execute(shared, &space, id, &body)
        }
        _ => kerr(404, "Not Found"),
    }
}

/// `/s/{space}/api/...` → (`space`, `/api/...`); unprefixed paths are in `default`.
fn split_space(path: &str) -> (String, &str) {
    if let Some(rest) = path.strip_prefix("/s/") {
        let (space, tail) = rest.split_once('/').unwrap_or((rest, ""));
        return (space.to_owned(), tail);
    }
    ("default".to_owned(), path)
}

fn status(shared: &Shared) -> Reply {
    Reply::ok(&json!({
        "name": "standin-kibana",
        "uuid": shared.kibana_uuid,
        "version": {
            "number": shared.opts.version,
            "build_hash": "0000000000000000000000000000000000000000",
            "build_number": 1,
            "build_snapshot": false,
            "build_flavor": "traditional",
            "build_date": "2025-07-09T22:10:13.578Z"
        },
        "status": {
            "overall": {"level": "available", "summary": "All services and plugins are available"},
            "core": {
                "elasticsearch": {"level": "available", "summary": "Elasticsearch is available"},
                "savedObjects": {"level": "available", "summary": "SavedObjects service has completed migrations and is available"}
            },
            "plugins": {}
        },
        "metrics": {"last_updated": now_iso(), "collection_interval_in_millis": 5000}
    }))
}

fn spaces(shared: &Shared) -> Value {
    let mut list = vec![json!({
        "id": "default",
        "name": "Default",
        "description": "This is your default space!",
        "color": "#00bfb3",
        "disabledFeatures": [],
        "_reserved": true
    })];
    list.extend(lock(&shared.cluster).kibana.spaces.values().cloned());
    Value::Array(list)
}

fn create_space(shared: &Shared, body: &Value) -> Reply {
    let (Some(id), Some(name)) = (
        body.get("id").and_then(Value::as_str),
        body.get("name").and_then(Value::as_str),
    ) else {
        return kerr(
            400,
            "[request body.id]: expected value of type [string] but got [undefined]",
        );
    };
    let mut cluster = lock(&shared.cluster);
    if id == "default" || cluster.kibana.spaces.contains_key(id) {
        return kerr(
            409,
            format!("A space with the identifier {id} already exists."),
        );
    }
    let mut space = body.clone();
    space["name"] = json!(name);
    if let Some(o) = space.as_object_mut() {
        o.entry("disabledFeatures").or_insert(json!([]));
    }
    cluster.kibana.spaces.insert(id.to_owned(), space.clone());
    Reply::ok(&space)
}

fn expected(path: &str, kind: &str, got: Option<&Value>) -> String {
    let got = match got {
        None => "undefined".to_owned(),
        Some(Value::Null) => "null".to_owned(),
        Some(Value::String(s)) => format!("string [{s}]"),
        Some(Value::Number(n)) => format!("number [{n}]"),
        Some(Value::Bool(b)) => format!("boolean [{b}]"),
        Some(Value::Array(_)) => "Array".to_owned(),
        Some(Value::Object(_)) => "Object".to_owned(),
    };
    format!("[{path}]: expected value of type [{kind}] but got [{got}]")
}

/// Type-specific `config`/`secrets` validation and defaults, Kibana's `validateConfig` style.
fn validate_config(
    type_id: &str,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> Result<Value, String> {
    let mut out = config.clone();
    let allow = |keys: &[&str]| -> Result<(), String> {
        match config.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "error validating action type config: [{k}]: definition for this key is missing"
            )),
            None => Ok(()),
        }
    };
    match type_id {
        ".index" => {
            allow(&["index", "refresh", "executionTimeField"])?;
            if !config.get("index").is_some_and(Value::is_string) {
                return Err(format!(
                    "error validating action type config: {}",
                    expected("index", "string", config.get("index"))
                ));
            }
            if config.get("refresh").is_some_and(|v| !v.is_boolean()) {
                return Err(format!(
                    "error validating action type config: {}",
                    expected("refresh", "boolean", config.get("refresh"))
                ));
            }
            if config
                .get("executionTimeField")
                .is_some_and(|v| !v.is_string() && !v.is_null())
            {
                return Err(format!(
                    "error validating action type config: {}",
                    expected(
                        "executionTimeField",
                        "string",
                        config.get("executionTimeField")
                    )
                ));
            }
            out.entry("refresh").or_insert(json!(false));
            out.entry("executionTimeField").or_insert(Value::Null);
        }
        ".webhook" if !config.get("url").is_some_and(Value::is_string) => {
            return Err(format!(
                "error validating action type config: {}",
                expected("url", "string", config.get("url"))
            ));
        }
        ".slack" if !secrets.get("webhookUrl").is_some_and(Value::is_string) => {
            return Err(format!(
                "error validating action type secrets: {}",
                expected("webhookUrl", "string", secrets.get("webhookUrl"))
            ));
        }
        ".email" if !config.get("from").is_some_and(Value::is_string) => {
            return Err(format!(
                "error validating action type config: {}",
                expected("from", "string", config.get("from"))
            ));
        }
        _ => {}
    }
    Ok(Value::Object(out))
}

fn object_or_empty<'a>(
    body: &'a Value,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        other => Err(expected(&format!("request body.{key}"), "Object", other)),
    }
}

fn create(shared: &Shared, space: &str, id: Option<&str>, body: &Value) -> Reply {
    if !body.is_object() {
        return kerr(400, expected("request body", "Object", Some(body)));
    }
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return kerr(
            400,
            expected("request body.name", "string", body.get("name")),
        );
    };
    let Some(type_id) = body.get("connector_type_id").and_then(Value::as_str) else {
        return kerr(
            400,
            expected(
                "request body.connector_type_id",
                "string",
                body.get("connector_type_id"),
            ),
        );
    };
    if !TYPES.iter().any(|(t, _, _)| *t == type_id) {
        return kerr(400, format!("Action type \"{type_id}\" is not registered."));
    }
    let empty = Map::new();
    let (config, secrets) = match (
        object_or_empty(body, "config"),
        object_or_empty(body, "secrets"),
    ) {
        (Ok(c), Ok(s)) => (c.unwrap_or(&empty), s.unwrap_or(&empty)),
        (Err(e), _) | (_, Err(e)) => return kerr(400, e),
    };
    let config = match validate_config(type_id, config, secrets) {
        Ok(c) => c,
        Err(e) => return kerr(400, e),
    };
    let id = id.map_or_else(new_uuid, str::to_owned);
    let mut cluster = lock(&shared.cluster);
    let space_map = cluster
        .kibana
        .connectors
        .entry(space.to_owned())
        .or_default();
    if space_map.contains_key(&id) {
        return kerr(409, format!("Saved object [action/{id}] conflict"));
    }
    let c = KConnector {
        name: name.to_owned(),
        type_id: type_id.to_owned(),
        config,
        secrets: Value::Object(secrets.clone()),
        missing_secrets: false,
        deprecated: false,
    };
    let out = c.to_json(&id);
    space_map.insert(id, c);
    Reply::ok(&out)
}

fn update(shared: &Shared, space: &str, id: &str, body: &Value) -> Reply {
    if !body.is_object() {
        return kerr(400, expected("request body", "Object", Some(body)));
    }
    if let Some(k) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| !matches!(k.as_str(), "name" | "config" | "secrets"))
    }) {
        return kerr(
            400,
            format!("[request body.{k}]: definition for this key is missing"),
        );
    }
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return kerr(
            400,
            expected("request body.name", "string", body.get("name")),
        );
    };
    let mut cluster = lock(&shared.cluster);
    let Some(c) = cluster
        .kibana
        .connectors
        .get_mut(space)
        .and_then(|s| s.get_mut(id))
    else {
        return not_found_object(id);
    };
    let empty = Map::new();
    let (config, secrets) = match (
        object_or_empty(body, "config"),
        object_or_empty(body, "secrets"),
    ) {
        (Ok(cfg), Ok(sec)) => (cfg.unwrap_or(&empty), sec),
        (Err(e), _) | (_, Err(e)) => return kerr(400, e),
    };
    let secrets_for_check = secrets
        .cloned()
        .unwrap_or_else(|| c.secrets.as_object().cloned().unwrap_or_default());
    let config = match validate_config(&c.type_id, config, &secrets_for_check) {
        Ok(v) => v,
        Err(e) => return kerr(400, e),
    };
    c.name = name.to_owned();
    c.config = config;
    if let Some(s) = secrets {
        c.secrets = Value::Object(s.clone());
        c.missing_secrets = false;
    }
    Reply::ok(&c.to_json(id))
}

fn exec_error(id: &str, message: String, service_message: Option<String>) -> Reply {
    let mut v = json!({"connector_id": id, "status": "error", "message": message, "retry": false});
    if let Some(s) = service_message {
        v["service_message"] = json!(s);
    }
    Reply::ok(&v)
}

fn execute(shared: &Shared, space: &str, id: &str, body: &Value) -> Reply {
    let Some(params) = body.get("params").filter(|p| p.is_object()) else {
        return kerr(
            400,
            expected("request body.params", "Object", body.get("params")),
        );
    };
    let mut cluster = lock(&shared.cluster);
    let Some(c) = cluster.kibana.connectors.get(space).and_then(|s| s.get(id)) else {
        return not_found_object(id);
    };
    if c.missing_secrets {
        return exec_error(
            id,
            format!(
                "Unable to execute action because no secrets are defined for the \"{}\" connector.",
                c.name
            ),
            None,
        );
    }
    match c.type_id.as_str() {
        ".index" => {
            let Some(docs) = params.get("documents").and_then(Value::as_array).cloned() else {
                return kerr(
                    400,
                    format!(
                        "error validating action params: {}",
                        expected("documents", "array", params.get("documents"))
                    ),
                );
            };
            let target = match params.get("indexOverride") {
                Some(Value::String(s)) => s.clone(),
                _ => c.config["index"].as_str().unwrap_or_default().to_owned(),
            };
            let time_field = c
                .config
                .get("executionTimeField")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let docs: Vec<Value> = docs
                .into_iter()
                .map(|mut d| {
                    if let (Some(f), Some(o)) = (&time_field, d.as_object_mut()) {
                        o.insert(f.clone(), json!(now_iso()));
                    }
                    d
                })
                .collect();
            match bulk::index_documents(&mut cluster, &target, &docs) {
                Ok(data) if data["errors"] == json!(true) => {
                    let reason = data["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find_map(|i| i["create"]["error"]["reason"].as_str().map(str::to_owned));
                    exec_error(id, "error indexing documents".to_owned(), reason)
                }
                Ok(data) => Reply::ok(&json!({"connector_id": id, "status": "ok", "data": data})),
                Err(e) => exec_error(id, "error indexing documents".to_owned(), Some(e.reason)),
            }
        }
        ".server-log" => Reply::ok(&json!({"connector_id": id, "status": "ok"})),
        other => exec_error(
            id,
            format!(
                "error executing {other} connector: the stand-in does not reach external services"
            ),
            None,
        ),
    }
}
