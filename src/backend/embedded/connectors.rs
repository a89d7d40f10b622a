//! Connector documents in the embedded database: create with Elasticsearch's defaults, the
//! `_connector` update calls with their checks (status machine, configuration keys, index name
//! in use, cron), soft and hard delete, and the filtered, paged list. Every function takes a
//! connection the caller has already put in the right transaction; none opens its own.

use super::documents::validate_index_name;
use super::{Where, db_err, from_json, new_id, status_exception, to_json};
use crate::backend::{BackendError, ConfigurationUpdate, ConnectorQuery, LastSync, Result};
use crate::model::{
    AdvancedSnippet, Connector, ConnectorStatus, Features, FilteringConfig, FilteringRule,
    FilteringRules, FilteringValidation, FilteringValidationState, JobStatus, JobType,
    NewConnector, Page, Pipeline, Scheduling, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

/// The page size Elasticsearch uses when none is given.
const DEFAULT_PAGE_SIZE: u64 = 100;

fn not_found(id: &str) -> BackendError {
    BackendError::NotFound(format!("connector [{id}] not found"))
}

/// Reads a connector, soft-deleted ones included.
pub(super) fn load(conn: &Connection, id: &str) -> Result<Option<Connector>> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM connectors WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db_err)?;
    doc.map(|doc| from_json(&doc, &format!("connector '{id}'")))
        .transpose()
}

/// Reads a live connector: a missing or soft-deleted one is not found.
pub(super) fn get(conn: &Connection, id: &str) -> Result<Connector> {
    match load(conn, id)? {
        Some(connector) if !connector.deleted => Ok(connector),
        _ => Err(not_found(id)),
    }
}

/// Writes a connector document and its indexed columns.
pub(super) fn put(conn: &Connection, connector: &Connector) -> Result<()> {
    let doc = to_json(connector)?;
    conn.execute(
        "INSERT INTO connectors (id, name, description, index_name, service_type, deleted, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, description = excluded.description,
           index_name = excluded.index_name, service_type = excluded.service_type,
           deleted = excluded.deleted, doc = excluded.doc",
        params![
            connector.id,
            connector.name,
            connector.description,
            connector.index_name,
            connector.service_type,
            connector.deleted,
            doc
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Loads a live connector, lets `change` edit it, and writes it back. An error from `change`
/// writes nothing.
fn modify<T>(
    conn: &Connection,
    id: &str,
    change: impl FnOnce(&mut Connector) -> Result<T>,
) -> Result<T> {
    let mut connector = get(conn, id)?;
    let out = change(&mut connector)?;
    put(conn, &connector)?;
    Ok(out)
}

/// The filtering list a new connector gets: the DEFAULT domain with only the catch-all rule,
/// active and draft alike.
pub(super) fn default_filtering(now: Timestamp) -> Vec<FilteringConfig> {
    let rules = FilteringRules {
        rules: vec![FilteringRule {
            created_at: Some(now),
            updated_at: Some(now),
            ..FilteringRule::default_rule()
        }],
        advanced_snippet: AdvancedSnippet {
            value: Value::Object(Map::new()),
            created_at: Some(now),
            updated_at: Some(now),
            extra: Map::new(),
        },
        validation: FilteringValidation {
            state: FilteringValidationState::Valid,
            errors: Vec::new(),
        },
    };
    vec![FilteringConfig {
        domain: "DEFAULT".into(),
        active: rules.clone(),
        draft: rules,
    }]
}

/// A connector document with Elasticsearch's create defaults.
pub(super) fn new_document(id: &str, new: &NewConnector) -> Result<Connector> {
    let mut connector: Connector = serde_json::from_value(serde_json::json!({ "id": id }))
        .map_err(|e| BackendError::Other(format!("cannot build connector '{id}': {e}")))?;
    let is_native = new.is_native.unwrap_or(false);
    connector.name = new.name.clone().unwrap_or_default();
    connector.description = new.description.clone();
    connector.index_name = new.index_name.clone();
    connector.service_type = new.service_type.clone();
    connector.is_native = is_native;
    connector.language = new.language.clone();
    connector.status = if is_native {
        ConnectorStatus::NeedsConfiguration
    } else {
        ConnectorStatus::Created
    };
    connector.pipeline = Some(Pipeline::default());
    connector.filtering = default_filtering(Timestamp::now());
    connector.scheduling = Scheduling::default();
    Ok(connector)
}

/// 400 when `index_name` is not a valid index name or another live connector uses it.
pub(super) fn check_index_name(
    conn: &Connection,
    index_name: Option<&str>,
    own_id: &str,
) -> Result<()> {
    let Some(index_name) = index_name else {
        return Ok(());
    };
    validate_index_name(index_name).map_err(|reason| BackendError::Rejected {
        status: 400,
        kind: "invalid_index_name_exception".into(),
        reason,
    })?;
    let other: Option<String> = conn
        .query_row(
            "SELECT id FROM connectors WHERE index_name = ?1 AND deleted = 0 AND id <> ?2 LIMIT 1",
            params![index_name, own_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_err)?;
    match other {
        Some(_) => Err(status_exception(format!(
            "Index name [{index_name}] is used by another connector."
        ))),
        None => Ok(()),
    }
}

/// `PUT _connector/{id}` / `POST _connector`. Like Elasticsearch, an existing id is overwritten
/// with a fresh document (defaults included), not merged.
pub(super) fn create(conn: &Connection, new: &NewConnector) -> Result<String> {
    let id = new
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(new_id);
    check_index_name(conn, new.index_name.as_deref(), &id)?;
    put(conn, &new_document(&id, new)?)?;
    Ok(id)
}

/// Soft delete (`deleted: true`) or hard delete, optionally with the connector's sync jobs.
pub(super) fn delete(
    conn: &Connection,
    id: &str,
    hard: bool,
    delete_sync_jobs: bool,
) -> Result<()> {
    if hard {
        let removed = conn
            .execute("DELETE FROM connectors WHERE id = ?1", [id])
            .map_err(db_err)?;
        if removed == 0 {
            return Err(not_found(id));
        }
    } else {
        modify(conn, id, |c| {
            c.deleted = true;
            Ok(())
        })?;
    }
    if delete_sync_jobs {
        conn.execute("DELETE FROM sync_jobs WHERE connector_id = ?1", [id])
            .map_err(db_err)?;
    }
    Ok(())
}

pub(super) fn check_in(conn: &Connection, id: &str) -> Result<()> {
    modify(conn, id, |c| {
        c.last_seen = Some(Timestamp::now());
        Ok(())
    })
}

/// `_configuration`: a whole new schema, or values for keys that already exist. One unknown key
/// refuses the whole call. Both set status `configured`.
pub(super) fn update_configuration(
    conn: &Connection,
    id: &str,
    update: ConfigurationUpdate,
) -> Result<()> {
    modify(conn, id, |c| {
        match update {
            ConfigurationUpdate::Replace(configuration) => c.configuration = configuration,
            ConfigurationUpdate::Values(values) => set_values(c, values)?,
        }
        c.status = ConnectorStatus::Configured;
        Ok(())
    })
}

fn set_values(connector: &mut Connector, values: Map<String, Value>) -> Result<()> {
    let unknown: Vec<&str> = values
        .keys()
        .filter(|k| !connector.configuration.0.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(status_exception(format!(
            "Unknown [configuration] fields in the request payload: [{}]. Remove them from the request \
             or update the connector's configuration schema first.",
            unknown.join(", ")
        )));
    }
    for (key, value) in values {
        if let Some(field) = connector.configuration.0.get_mut(&key) {
            field.value = value;
        }
    }
    Ok(())
}

/// `_status`, checked against Elasticsearch's connector state machine.
pub(super) fn update_status(conn: &Connection, id: &str, status: ConnectorStatus) -> Result<()> {
    modify(conn, id, |c| {
        if !c.status.can_become(status) {
            return Err(status_exception(format!(
                "Invalid transition attempt from [{}] to [{status}]. Such a connector status transition \
                 is not supported.",
                c.status
            )));
        }
        c.status = status;
        Ok(())
    })
}

/// `_error`: a message sets status `error`; none (or an empty one) clears it and sets
/// `connected`. Elasticsearch does not check the state machine here.
pub(super) fn update_error(conn: &Connection, id: &str, error: Option<String>) -> Result<()> {
    modify(conn, id, |c| {
        match error.filter(|e| !e.is_empty()) {
            Some(error) => {
                c.status = ConnectorStatus::Error;
                c.error = Some(error);
            }
            None => {
                c.status = ConnectorStatus::Connected;
                c.error = None;
            }
        }
        Ok(())
    })
}

/// `_filtering` with `rules`: replaces the draft rules (sorted by order, the DEFAULT rule last
/// with the highest order) and marks the draft `edited`.
pub(super) fn update_filtering(
    conn: &Connection,
    id: &str,
    rules: Vec<FilteringRule>,
    advanced: Option<Value>,
) -> Result<()> {
    modify(conn, id, |c| {
        let now = Timestamp::now();
        if c.filtering.is_empty() {
            c.filtering = default_filtering(now);
        }
        let draft = &mut c.filtering[0].draft;
        let default = draft.rules.iter().find(|r| r.is_default()).cloned();
        let mut rules: Vec<FilteringRule> = rules.into_iter().filter(|r| !r.is_default()).collect();
        rules.sort_by_key(|r| r.order);
        let mut default = default.unwrap_or_else(FilteringRule::default_rule);
        default.order = rules.last().map_or(0, |r| r.order + 1);
        default.updated_at = Some(now);
        rules.push(default);
        draft.rules = rules;
        if let Some(advanced) = advanced {
            draft.advanced_snippet.value = advanced;
            draft.advanced_snippet.updated_at = Some(now);
        }
        draft.validation = FilteringValidation {
            state: FilteringValidationState::Edited,
            errors: Vec::new(),
        };
        Ok(())
    })
}

/// `_filtering/_validation`: the validation result of the draft.
pub(super) fn update_filtering_validation(
    conn: &Connection,
    id: &str,
    validation: FilteringValidation,
) -> Result<()> {
    modify(conn, id, |c| {
        if c.filtering.is_empty() {
            c.filtering = default_filtering(Timestamp::now());
        }
        c.filtering[0].draft.validation = validation;
        Ok(())
    })
}

/// `_filtering/_activate`: the draft becomes the active rules.
pub(super) fn activate_filtering(conn: &Connection, id: &str) -> Result<()> {
    modify(conn, id, |c| {
        if let Some(filtering) = c.filtering.first_mut() {
            filtering.active = filtering.draft.clone();
        }
        Ok(())
    })
}

/// `_features`: merged into the current features the way an Elasticsearch partial update
/// merges objects, so `{sync_rules: {basic: {enabled: true}}}` leaves the other flags alone.
pub(super) fn update_features(conn: &Connection, id: &str, features: Features) -> Result<()> {
    modify(conn, id, |c| {
        let mut merged = serde_json::to_value(c.features.take().unwrap_or_default())
            .map_err(|e| BackendError::Other(format!("connector '{id}': features: {e}")))?;
        let update = serde_json::to_value(features)
            .map_err(|e| BackendError::Other(format!("connector '{id}': features: {e}")))?;
        merge_objects(&mut merged, update);
        c.features =
            Some(serde_json::from_value(merged).map_err(|e| {
                BackendError::Other(format!("connector '{id}': merged features: {e}"))
            })?);
        Ok(())
    })
}

/// Objects merge key by key, recursively; anything else replaces.
fn merge_objects(target: &mut Value, update: Value) {
    match (target, update) {
        (Value::Object(target), Value::Object(update)) => {
            for (key, value) in update {
                match target.get_mut(&key) {
                    Some(slot) => merge_objects(slot, value),
                    None => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (target, update) => *target = update,
    }
}

/// `_scheduling`, with the cron check Elasticsearch does (Quartz: 6 or 7 fields).
pub(super) fn update_scheduling(conn: &Connection, id: &str, scheduling: Scheduling) -> Result<()> {
    for (kind, schedule) in [
        ("full", &scheduling.full),
        ("incremental", &scheduling.incremental),
        ("access_control", &scheduling.access_control),
    ] {
        check_cron(kind, &schedule.interval)?;
    }
    modify(conn, id, |c| {
        c.scheduling = scheduling;
        Ok(())
    })
}

fn check_cron(kind: &str, interval: &str) -> Result<()> {
    let fields = interval.split_whitespace().count();
    if (6..=7).contains(&fields) {
        return Ok(());
    }
    Err(BackendError::Rejected {
        status: 400,
        kind: "x_content_parse_exception".into(),
        reason: format!(
            "invalid cron expression '{interval}' in [scheduling.{kind}.interval]: expected 6 or 7 fields \
             (Quartz syntax with seconds, e.g. '0 0 0 * * ?'), found {fields}"
        ),
    })
}

pub(super) fn update_name(
    conn: &Connection,
    id: &str,
    name: Option<String>,
    description: Option<String>,
) -> Result<()> {
    modify(conn, id, |c| {
        if let Some(name) = name {
            c.name = name;
        }
        if description.is_some() {
            c.description = description;
        }
        Ok(())
    })
}

pub(super) fn update_index_name(
    conn: &Connection,
    id: &str,
    index_name: Option<String>,
) -> Result<()> {
    check_index_name(conn, index_name.as_deref(), id)?;
    modify(conn, id, |c| {
        c.index_name = index_name;
        Ok(())
    })
}

pub(super) fn update_pipeline(conn: &Connection, id: &str, pipeline: Pipeline) -> Result<()> {
    modify(conn, id, |c| {
        c.pipeline = Some(pipeline);
        Ok(())
    })
}

pub(super) fn update_service_type(conn: &Connection, id: &str, service_type: String) -> Result<()> {
    modify(conn, id, |c| {
        c.service_type = Some(service_type);
        Ok(())
    })
}

/// `_last_sync`: writes only the fields that are given.
pub(super) fn update_last_sync(conn: &Connection, id: &str, last: LastSync) -> Result<()> {
    modify(conn, id, |c| {
        let LastSync {
            last_sync_status,
            last_sync_error,
            last_access_control_sync_status,
            last_access_control_sync_error,
            last_synced,
            last_indexed_document_count,
            last_deleted_document_count,
            last_seen,
            sync_cursor,
            last_sync_scheduled_at,
            last_incremental_sync_scheduled_at,
            last_access_control_sync_scheduled_at,
        } = last;
        set_some(&mut c.last_sync_status, last_sync_status);
        if let Some(error) = last_sync_error {
            c.last_sync_error = error;
        }
        set_some(
            &mut c.last_access_control_sync_status,
            last_access_control_sync_status,
        );
        if let Some(error) = last_access_control_sync_error {
            c.last_access_control_sync_error = error;
        }
        set_some(&mut c.last_synced, last_synced);
        set_some(
            &mut c.last_indexed_document_count,
            last_indexed_document_count,
        );
        set_some(
            &mut c.last_deleted_document_count,
            last_deleted_document_count,
        );
        set_some(&mut c.last_seen, last_seen);
        set_some(&mut c.sync_cursor, sync_cursor);
        set_some(&mut c.last_sync_scheduled_at, last_sync_scheduled_at);
        set_some(
            &mut c.last_incremental_sync_scheduled_at,
            last_incremental_sync_scheduled_at,
        );
        set_some(
            &mut c.last_access_control_sync_scheduled_at,
            last_access_control_sync_scheduled_at,
        );
        Ok(())
    })
}

/// The start guard of PROTOCOL §5.4, atomic in the caller's immediate transaction: unless the
/// last sync of this kind is already `in_progress`, mark it so and set the connector
/// `connected` without error. `false`: another worker got there first.
pub(super) fn mark_sync_started(conn: &Connection, id: &str, job_type: JobType) -> Result<bool> {
    modify(conn, id, |c| {
        let (status, error) = match job_type {
            JobType::AccessControl => (
                &mut c.last_access_control_sync_status,
                &mut c.last_access_control_sync_error,
            ),
            _ => (&mut c.last_sync_status, &mut c.last_sync_error),
        };
        if *status == Some(JobStatus::InProgress) {
            return Ok(false);
        }
        *status = Some(JobStatus::InProgress);
        *error = None;
        c.status = ConnectorStatus::Connected;
        c.error = None;
        Ok(true)
    })
}

/// [`mark_sync_started`], saying what it replaced (one transaction: no conflict can happen).
pub(super) fn try_start_guard(
    conn: &Connection,
    id: &str,
    job_type: JobType,
) -> Result<crate::backend::GuardAttempt> {
    let prior = crate::backend::PriorSync::of(&get(conn, id)?, job_type);
    Ok(if mark_sync_started(conn, id, job_type)? {
        crate::backend::GuardAttempt::Taken(prior)
    } else {
        crate::backend::GuardAttempt::Held
    })
}

/// Puts back what a start guard replaced, `null`s included.
pub(super) fn restore_last_sync(
    conn: &Connection,
    id: &str,
    job_type: JobType,
    prior: &crate::backend::PriorSync,
) -> Result<()> {
    modify(conn, id, |c| {
        match job_type {
            JobType::AccessControl => {
                c.last_access_control_sync_status = prior.status;
                c.last_access_control_sync_error = prior.error.clone();
            }
            _ => {
                c.last_sync_status = prior.status;
                c.last_sync_error = prior.error.clone();
            }
        }
        c.status = prior.connector_status;
        c.error = prior.connector_error.clone();
        Ok(())
    })
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// `GET _connector`: filters, sorted by index name (connectors without one last), paged, with
/// the total count. The free-text query matches name, description and index name,
/// case-insensitively.
pub(super) fn list(conn: &Connection, query: &ConnectorQuery) -> Result<Page<Connector>> {
    let mut filter = Where::default();
    if !query.include_deleted {
        filter.clause("deleted = 0");
    }
    filter.any_of("index_name", &query.index_names);
    filter.any_of("name", &query.connector_names);
    filter.any_of("service_type", &query.service_types);
    if let Some(text) = query.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let pattern = format!("%{}%", escape_like(text.trim()));
        filter.clause_with(
            "(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\' OR index_name LIKE ? ESCAPE '\\')",
            vec![pattern.clone().into(), pattern.clone().into(), pattern.into()],
        );
    }
    filter.page(
        conn,
        "connectors",
        "index_name IS NULL, index_name, id",
        query.size.unwrap_or(DEFAULT_PAGE_SIZE),
        query.from,
        "connector",
    )
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// A page bound as SQL text: clamped to SQLite's integer range.
pub(super) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The scheduler's mark (`ControlPlane::mark_sync_scheduled`), in the caller's transaction:
/// `Taken` when another worker scheduled this kind after `since`, else `at` is written.
pub(super) fn mark_sync_scheduled(
    conn: &Connection,
    id: &str,
    job_type: JobType,
    since: Timestamp,
    at: Timestamp,
) -> Result<crate::backend::ScheduleMark> {
    use crate::backend::{ScheduleMark, scheduled_at};
    modify(conn, id, |c| {
        if scheduled_at(c, job_type).is_some_and(|last| last > since) {
            return Ok(ScheduleMark::Taken);
        }
        match job_type {
            JobType::Full => c.last_sync_scheduled_at = Some(at),
            JobType::Incremental => c.last_incremental_sync_scheduled_at = Some(at),
            JobType::AccessControl => c.last_access_control_sync_scheduled_at = Some(at),
        }
        Ok(ScheduleMark::Won)
    })
}

/// `ControlPlane::merge_configuration`: the fields deep-merged into the stored configuration,
/// status untouched.
pub(super) fn merge_configuration(
    conn: &Connection,
    id: &str,
    fields: Map<String, Value>,
) -> Result<()> {
    modify(conn, id, |c| {
        let mut configuration = serde_json::to_value(&c.configuration)
            .map_err(|e| BackendError::Other(format!("cannot serialise a configuration: {e}")))?;
        merge_objects(&mut configuration, Value::Object(fields));
        c.configuration =
            serde_json::from_value(configuration).map_err(|e| BackendError::Rejected {
                status: 400,
                kind: "x_content_parse_exception".into(),
                reason: format!("[connector_configuration] failed to parse the merged fields: {e}"),
            })?;
        Ok(())
    })
}
