//! `Effect`: what `update` asks the outside world to do (load, start, cancel, save, retry,
//! copy, switch). Plain data; `console::io` and the runtime perform them and answer with
//! `Action`s. `Debug` never prints configuration values: they may be secrets.

use crate::backend::SyncJobQuery;
use crate::model::{Configuration, JobType, NewConnector};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Clone, PartialEq)]
pub enum Effect {
    /// Cluster name, version and health for the header.
    LoadCluster,
    /// Kibana's status for the header (only when the profile has a Kibana).
    LoadKibanaStatus,
    LoadConnectors,
    /// A connector with its latest jobs, for the detail screen.
    LoadConnectorDetail(String),
    /// A fresh copy of a connector for the configuration editor.
    LoadConnectorForEdit(String),
    LoadJobs(SyncJobQuery),
    /// Jobs in progress anywhere, for the Live view's "run elsewhere" rows.
    LoadActiveJobs,
    /// Progress snapshots of this process's engine (in-process, cheap).
    PollLive,
    /// `/status` of a headless `serve --listen` (`--attach ADDR`).
    PollAttached(String),
    /// The Elasticsearch node pool.
    LoadPool,
    /// Asks nodes the pool no longer holds whether they answer `GET /` (one that does not is
    /// dead; when one does and the transport sniffs, the cluster's `_nodes` decides whether
    /// it is back in the pool or left it).
    ProbeNodes(Vec<String>),
    LoadDeadLetters,
    /// How many open dead letters a job left (its detail shows it).
    CountDeadLetters {
        job_id: String,
    },
    LoadKibanaConnectors,
    /// New log lines when the tail's total moved past `known_total`.
    PollLogs {
        known_total: u64,
    },
    /// Creates a job; `run_here` runs it on this process's engine, else it is only queued
    /// for whichever connectors service serves the connector.
    StartSync {
        connector_id: String,
        job_type: JobType,
        run_here: bool,
    },
    CancelJob(String),
    /// Saves only the changed values (`ConfigurationUpdate::Values`).
    SaveConfig {
        connector_id: String,
        values: Map<String, Value>,
    },
    /// Saves a whole configuration, schema and values (`ConfigurationUpdate::Replace`):
    /// after a spec added fields the cluster does not know yet. `changes` is what the
    /// answer reports as saved.
    SaveConfigSchema {
        connector_id: String,
        configuration: Configuration,
        changes: usize,
    },
    /// Runs an `external` connector's program with `spec`, as `configuration` (the editor's
    /// form, unsaved edits included) names it; answers with the spec's fields.
    LoadSpec {
        connector_id: String,
        configuration: Configuration,
    },
    /// Creates a connector and gives it its service type's configuration schema.
    CreateConnector(NewConnector),
    DeleteConnector(String),
    RetryDeadLetters(Vec<i64>),
    DropDeadLetters(Vec<i64>),
    KibanaCreateIndex {
        name: String,
        index: String,
        refresh: bool,
    },
    KibanaExecute {
        id: String,
        documents: Value,
    },
    KibanaDelete(String),
    /// Puts text on the clipboard (OSC 52).
    Copy(String),
    SwitchProfile(String),
    LoadTheme(String),
    /// Turns mouse capture on or off.
    SetMouse(bool),
    Quit,
}

impl fmt::Debug for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SaveConfig {
                connector_id,
                values,
            } => {
                let keys: Vec<&String> = values.keys().collect();
                f.debug_struct("SaveConfig")
                    .field("connector_id", connector_id)
                    .field("keys", &keys)
                    .finish_non_exhaustive()
            }
            Self::SaveConfigSchema {
                connector_id,
                configuration,
                changes,
            } => {
                let keys: Vec<&String> = configuration.0.keys().collect();
                f.debug_struct("SaveConfigSchema")
                    .field("connector_id", connector_id)
                    .field("keys", &keys)
                    .field("changes", changes)
                    .finish_non_exhaustive()
            }
            Self::LoadSpec { connector_id, .. } => f
                .debug_struct("LoadSpec")
                .field("connector_id", connector_id)
                .finish_non_exhaustive(),
            Self::Copy(text) => f
                .debug_tuple("Copy")
                .field(&format_args!("{} bytes", text.len()))
                .finish(),
            Self::KibanaExecute { id, .. } => f
                .debug_struct("KibanaExecute")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::LoadCluster => f.write_str("LoadCluster"),
            Self::LoadKibanaStatus => f.write_str("LoadKibanaStatus"),
            Self::LoadConnectors => f.write_str("LoadConnectors"),
            Self::LoadConnectorDetail(id) => {
                f.debug_tuple("LoadConnectorDetail").field(id).finish()
            }
            Self::LoadConnectorForEdit(id) => {
                f.debug_tuple("LoadConnectorForEdit").field(id).finish()
            }
            Self::LoadJobs(q) => f.debug_tuple("LoadJobs").field(q).finish(),
            Self::LoadActiveJobs => f.write_str("LoadActiveJobs"),
            Self::PollLive => f.write_str("PollLive"),
            Self::PollAttached(a) => f.debug_tuple("PollAttached").field(a).finish(),
            Self::LoadPool => f.write_str("LoadPool"),
            Self::ProbeNodes(urls) => f.debug_tuple("ProbeNodes").field(urls).finish(),
            Self::LoadDeadLetters => f.write_str("LoadDeadLetters"),
            Self::CountDeadLetters { job_id } => f
                .debug_struct("CountDeadLetters")
                .field("job_id", job_id)
                .finish(),
            Self::LoadKibanaConnectors => f.write_str("LoadKibanaConnectors"),
            Self::PollLogs { known_total } => f
                .debug_struct("PollLogs")
                .field("known_total", known_total)
                .finish(),
            Self::StartSync {
                connector_id,
                job_type,
                run_here,
            } => f
                .debug_struct("StartSync")
                .field("connector_id", connector_id)
                .field("job_type", job_type)
                .field("run_here", run_here)
                .finish(),
            Self::CancelJob(id) => f.debug_tuple("CancelJob").field(id).finish(),
            Self::CreateConnector(new) => f.debug_tuple("CreateConnector").field(new).finish(),
            Self::DeleteConnector(id) => f.debug_tuple("DeleteConnector").field(id).finish(),
            Self::RetryDeadLetters(ids) => f.debug_tuple("RetryDeadLetters").field(ids).finish(),
            Self::DropDeadLetters(ids) => f.debug_tuple("DropDeadLetters").field(ids).finish(),
            Self::KibanaCreateIndex {
                name,
                index,
                refresh,
            } => f
                .debug_struct("KibanaCreateIndex")
                .field("name", name)
                .field("index", index)
                .field("refresh", refresh)
                .finish(),
            Self::KibanaDelete(id) => f.debug_tuple("KibanaDelete").field(id).finish(),
            Self::SwitchProfile(p) => f.debug_tuple("SwitchProfile").field(p).finish(),
            Self::LoadTheme(t) => f.debug_tuple("LoadTheme").field(t).finish(),
            Self::SetMouse(on) => f.debug_tuple("SetMouse").field(on).finish(),
            Self::Quit => f.write_str("Quit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_values() {
        let mut values = Map::new();
        values.insert("api_token".into(), Value::from("hunter2-secret"));
        let e = Effect::SaveConfig {
            connector_id: "c".into(),
            values,
        };
        let printed = format!("{e:?}");
        assert!(
            printed.contains("api_token") && !printed.contains("hunter2"),
            "{printed}"
        );
        let configuration: Configuration = serde_json::from_value(serde_json::json!({
            "secret_env": {"sensitive": true, "value": "TOKEN=hunter2-secret"},
            "command": {"value": "hunter2-in-a-command"}
        }))
        .unwrap();
        for e in [
            Effect::SaveConfigSchema {
                connector_id: "c".into(),
                configuration: configuration.clone(),
                changes: 1,
            },
            Effect::LoadSpec {
                connector_id: "c".into(),
                configuration,
            },
        ] {
            let printed = format!("{e:?}");
            assert!(
                printed.contains("\"c\"") && !printed.contains("hunter2"),
                "{printed}"
            );
        }
    }
}
