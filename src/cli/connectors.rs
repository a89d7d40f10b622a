//! `syncdeck connectors ...`: list, show, create, delete, config, set, spec.

use super::args::{ConnectorListArgs, ConnectorsCommand, parse_assignment};
use super::context::Context;
use super::error::{CliError, CliResult};
use super::output::{Table, details, ellipsize, or_dash};
use crate::backend::{ConfigurationUpdate, ConnectorQuery, SyncJobQuery};
use crate::model::validate::{parse_input, validate_update};
use crate::model::{ConfigField, Connector, NewConnector, Page, SyncJob, is_empty_value};
use crate::sources::{ExternalFactory, SourceError};
use serde_json::{Map, Value, json};

pub async fn run(ctx: &mut Context, command: ConnectorsCommand) -> CliResult {
    match command {
        ConnectorsCommand::List(args) => list(ctx, args).await,
        ConnectorsCommand::Show { id } => show(ctx, &id).await,
        ConnectorsCommand::Create {
            id,
            service_type,
            index_name,
            name,
            description,
        } => {
            let new = NewConnector {
                id: Some(id.clone()),
                name,
                description,
                index_name: Some(index_name),
                service_type: Some(service_type),
                is_native: Some(false),
                language: None,
            };
            let created = ctx
                .control
                .create_connector(&new)
                .await
                .map_err(|e| CliError::from(e).context(format!("creating connector '{id}'")))?;
            // A service type syncdeck runs gets its configuration fields now, as a connectors
            // service would on its first tick, so `connectors set` works at once.
            let schema = new
                .service_type
                .as_deref()
                .and_then(|t| crate::sources::builtin().get(t));
            if let Some(factory) = schema {
                let update = ConfigurationUpdate::Replace(factory.default_configuration());
                ctx.control
                    .update_configuration(&created, &update)
                    .await
                    .map_err(|e| {
                        CliError::from(e)
                            .context(format!("writing the configuration fields of '{created}'"))
                    })?;
                ctx.control
                    .update_status(&created, crate::model::ConnectorStatus::NeedsConfiguration)
                    .await
                    .map_err(|e| {
                        CliError::from(e).context(format!("setting the status of '{created}'"))
                    })?;
            }
            ctx.out
                .either(&json!({"result": "created", "id": created}), || {
                    format!("connector '{created}' created")
                })?;
            Ok(())
        }
        ConnectorsCommand::Delete {
            id,
            hard,
            delete_sync_jobs,
        } => {
            ctx.control
                .delete_connector(&id, hard, delete_sync_jobs)
                .await
                .map_err(|e| CliError::from(e).context(format!("deleting connector '{id}'")))?;
            let how = if hard {
                "deleted"
            } else {
                "deleted (soft; --hard removes the document)"
            };
            ctx.out
                .either(&json!({"acknowledged": true, "id": id}), || {
                    format!("connector '{id}' {how}")
                })?;
            Ok(())
        }
        ConnectorsCommand::Config { id, reveal } => config(ctx, &id, reveal).await,
        ConnectorsCommand::Set { id, assignments } => set(ctx, &id, &assignments).await,
        ConnectorsCommand::Spec { id, dry_run } => spec(ctx, &id, dry_run).await,
    }
}

async fn list(ctx: &mut Context, args: ConnectorListArgs) -> CliResult {
    let mut query = ConnectorQuery {
        from: args.from,
        size: args.size,
        index_names: args.index_name,
        service_types: args.service_type,
        query: args.query,
        include_deleted: args.include_deleted,
        ..Default::default()
    };
    let page = if args.size.is_some() {
        ctx.control.list_connectors(&query).await?
    } else {
        // Without --size, walk every page so nothing is silently cut at 100.
        let mut all = Page::default();
        query.size = Some(100);
        loop {
            let page = ctx.control.list_connectors(&query).await?;
            all.count = page.count;
            let got = page.results.len() as u64;
            all.results.extend(page.results);
            query.from += got;
            if got == 0 || query.from >= page.count {
                break;
            }
        }
        all
    };
    let page = Page {
        count: page.count,
        results: page.results.iter().map(Connector::masked).collect(),
    };
    ctx.out.either(&page, || connectors_table(&page.results))?;
    Ok(())
}

pub fn connectors_table(connectors: &[Connector]) -> String {
    if connectors.is_empty() {
        return "no connectors".to_string();
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "SERVICE",
        "INDEX",
        "STATUS",
        "LAST SYNC",
        "SYNCED",
        "SCHEDULE",
    ]);
    for c in connectors {
        table.row(vec![
            c.id.clone(),
            ellipsize(&c.name, 32),
            or_dash(c.service_type.as_deref()),
            or_dash(c.index_name.as_deref()),
            c.status.to_string(),
            or_dash(c.last_sync_status),
            c.last_synced
                .map(|t| t.0.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into()),
            schedule_text(c),
        ]);
    }
    table.render()
}

fn schedule_text(c: &Connector) -> String {
    let s = &c.scheduling;
    let mut parts = Vec::new();
    if s.full.enabled {
        parts.push(format!("full {}", s.full.interval));
    }
    if s.incremental.enabled {
        parts.push(format!("incr {}", s.incremental.interval));
    }
    if s.access_control.enabled {
        parts.push(format!("acl {}", s.access_control.interval));
    }
    if parts.is_empty() {
        "off".to_string()
    } else {
        parts.join("; ")
    }
}

async fn show(ctx: &mut Context, id: &str) -> CliResult {
    let connector = ctx
        .control
        .get_connector(id)
        .await
        .map_err(|e| CliError::from(e).context(format!("connector '{id}'")))?;
    let jobs = ctx
        .control
        .list_sync_jobs(&SyncJobQuery {
            connector_id: Some(id.to_string()),
            size: Some(5),
            ..Default::default()
        })
        .await?;
    if ctx.out.json {
        // The JSON form masks sensitive values too: --reveal exists only on `config`.
        let jobs: Vec<SyncJob> = jobs.results.iter().map(SyncJob::masked).collect();
        ctx.out
            .json(&json!({"connector": connector.masked(), "latest_jobs": jobs}))?;
        return Ok(());
    }
    ctx.out.text(&show_text(&connector, &jobs.results))?;
    Ok(())
}

fn show_text(c: &Connector, jobs: &[SyncJob]) -> String {
    let pipeline = c.pipeline_or_default();
    let mut text = details(&[
        ("ID", c.id.clone()),
        ("Name", c.name.clone()),
        ("Description", or_dash(c.description.as_deref())),
        ("Service type", or_dash(c.service_type.as_deref())),
        ("Index", or_dash(c.index_name.as_deref())),
        ("Status", c.status.to_string()),
        ("Error", or_dash(c.error.as_deref())),
        ("Native", c.is_native.to_string()),
        ("Last seen", or_dash(c.last_seen)),
        (
            "Last sync",
            format!(
                "{} at {}",
                or_dash(c.last_sync_status),
                or_dash(c.last_synced)
            ),
        ),
        ("Last sync error", or_dash(c.last_sync_error.as_deref())),
        (
            "Indexed / deleted",
            format!(
                "{} / {}",
                or_dash(c.last_indexed_document_count),
                or_dash(c.last_deleted_document_count)
            ),
        ),
        (
            "Pipeline",
            format!(
                "{} (extract binary: {}, reduce whitespace: {}, ML inference: {})",
                pipeline.name,
                pipeline.extract_binary_content,
                pipeline.reduce_whitespace,
                pipeline.run_ml_inference
            ),
        ),
        ("Schedule full", schedule_line(&c.scheduling.full)),
        (
            "Schedule incremental",
            schedule_line(&c.scheduling.incremental),
        ),
        (
            "Schedule access control",
            schedule_line(&c.scheduling.access_control),
        ),
        (
            "Configuration",
            format!(
                "{} fields (see `connectors config {}`)",
                c.configuration.0.len(),
                c.id
            ),
        ),
    ]);
    text.push_str("\nFiltering rules (active):\n");
    match c.active_filtering() {
        Some(rules) if !rules.rules.is_empty() => {
            let mut table = Table::new(&["ORDER", "ID", "POLICY", "FIELD", "RULE", "VALUE"]);
            for r in &rules.rules {
                table.row(vec![
                    r.order.to_string(),
                    r.id.clone(),
                    format!("{:?}", r.policy).to_lowercase(),
                    r.field.clone(),
                    serde_json::to_value(r.rule)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    r.value.clone(),
                ]);
            }
            text.push_str(&indent(&table.render()));
            if !rules.advanced_snippet.value.is_null() && rules.advanced_snippet.value != json!({})
            {
                text.push_str(&format!(
                    "  advanced snippet: {}\n",
                    rules.advanced_snippet.value
                ));
            }
        }
        _ => text.push_str("  none\n"),
    }
    text.push_str("\nLatest jobs:\n");
    if jobs.is_empty() {
        text.push_str("  none\n");
    } else {
        text.push_str(&indent(&super::jobs::jobs_table(jobs)));
    }
    text
}

fn schedule_line(s: &crate::model::ScheduleConfig) -> String {
    format!("{} ({})", if s.enabled { "on" } else { "off" }, s.interval)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

async fn config(ctx: &mut Context, id: &str, reveal: bool) -> CliResult {
    let connector = ctx
        .control
        .get_connector(id)
        .await
        .map_err(|e| CliError::from(e).context(format!("connector '{id}'")))?;
    if reveal {
        tracing::info!(connector = id, "configuration revealed on the command line");
        ctx.out.reveal_secrets();
    }
    let fields = connector.configuration.fields_in_order();
    if ctx.out.json {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(key, f)| {
                let value = if f.sensitive && !reveal {
                    Value::String(f.display_value(false))
                } else {
                    f.value.clone()
                };
                json!({
                    "key": key, "label": f.display_label(key), "type": f.field_type.as_str(),
                    "value": value, "required": f.required, "sensitive": f.sensitive,
                    "active": connector.configuration.is_active(key),
                })
            })
            .collect();
        ctx.out.json(&rows)?;
        return Ok(());
    }
    if fields.is_empty() {
        ctx.out
            .text(&format!("connector '{id}' has no configuration fields yet"))?;
        return Ok(());
    }
    let mut table = Table::new(&["LABEL", "KEY", "TYPE", "VALUE", "REQUIRED", "SENSITIVE"]);
    for (key, f) in fields {
        let mut value = ellipsize(&f.display_value(reveal), 60);
        if !connector.configuration.is_active(key) {
            value = format!("{value} (inactive)");
        }
        table.row(vec![
            f.display_label(key),
            key.to_string(),
            f.field_type.as_str().to_string(),
            value,
            yes_no(f.required),
            yes_no(f.sensitive),
        ]);
    }
    ctx.out.text(&table.render())?;
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

async fn set(ctx: &mut Context, id: &str, assignments: &[String]) -> CliResult {
    let connector = ctx
        .control
        .get_connector(id)
        .await
        .map_err(|e| CliError::from(e).context(format!("connector '{id}'")))?;
    let mut values = Map::new();
    let mut problems = Vec::new();
    // A field the source offers but does not write by default (the databases'
    // `cursor_column`) is added when set: whole, as the Python service wants every field.
    let optional = connector
        .service_type
        .as_deref()
        .and_then(|t| crate::sources::builtin().get(t))
        .map(|f| f.optional_fields())
        .unwrap_or_default();
    let mut configuration = connector.configuration.clone();
    let mut added: Vec<String> = Vec::new();
    for text in assignments {
        let (key, raw) = parse_assignment(text).map_err(CliError::usage)?;
        if configuration.get(&key).is_none()
            && let Some(field) = optional.get(&key)
        {
            configuration.0.insert(key.clone(), field.clone());
            added.push(key.clone());
        }
        match configuration.get(&key) {
            None => problems.push(format!(
                "{key}: no such field (known: {}{})",
                known_keys(&connector),
                optional
                    .fields_in_order()
                    .into_iter()
                    .map(|(k, _)| format!(", and {k} to add"))
                    .collect::<String>()
            )),
            Some(field) => match parse_input(&key, field, &raw) {
                Ok(v) => {
                    values.insert(key, v);
                }
                Err(issue) => problems.push(issue.to_string()),
            },
        }
    }
    if problems.is_empty() {
        problems = validate_update(&configuration, &values)
            .iter()
            .map(ToString::to_string)
            .collect();
    }
    if !problems.is_empty() {
        return Err(CliError::failed(format!(
            "nothing saved; connector '{id}' configuration is invalid:\n  {}",
            problems.join("\n  ")
        )));
    }
    let keys: Vec<_> = values.keys().cloned().collect();
    // New fields go in whole (definition and value) by a merge, the others by value.
    let mut merged = Map::new();
    for key in &added {
        let (Some(field), Some(value)) = (configuration.0.get_mut(key), values.remove(key)) else {
            continue;
        };
        field.value = value;
        let whole = serde_json::to_value(&*field)
            .map_err(|e| CliError::failed(format!("cannot write field '{key}': {e}")))?;
        merged.insert(key.clone(), whole);
    }
    if !merged.is_empty() {
        ctx.control
            .merge_configuration(id, &merged)
            .await
            .map_err(|e| CliError::from(e).context(format!("adding fields to '{id}'")))?;
    }
    if !values.is_empty() {
        ctx.control
            .update_configuration(id, &ConfigurationUpdate::Values(values.clone()))
            .await
            .map_err(|e| CliError::from(e).context(format!("saving configuration of '{id}'")))?;
    }
    ctx.out.either(
        &json!({"result": "updated", "id": id, "keys": keys}),
        || format!("connector '{id}': updated {}", keys.join(", ")),
    )?;
    Ok(())
}

fn known_keys(c: &Connector) -> String {
    let keys: Vec<_> = c
        .configuration
        .fields_in_order()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() {
        "none".to_string()
    } else {
        keys.join(", ")
    }
}

/// `connectors spec ID`: runs the `external` connector's program with `spec` (its own
/// command, arguments and environments) and saves the spec's fields merged into the
/// configuration; with `--dry-run` only shows them.
async fn spec(ctx: &mut Context, id: &str, dry_run: bool) -> CliResult {
    if !dry_run {
        // Refused before the program runs: its answer could not be saved anyway.
        ctx.ensure_writable("load a connector's fields from its spec")?;
    }
    let connector = ctx
        .control
        .get_connector(id)
        .await
        .map_err(|e| CliError::from(e).context(format!("connector '{id}'")))?;
    let service_type = connector.service_type.as_deref().unwrap_or("");
    if service_type != "external" {
        return Err(CliError::usage(format!(
            "connector '{id}' has service type '{service_type}'; only 'external' connectors \
             run a program that has a spec"
        )));
    }
    let loaded = ExternalFactory::load_spec(&connector.configuration)
        .await
        .map_err(|e| spec_error(id, e))?;
    let merge = ExternalFactory::merge_spec(&connector.configuration, &loaded);
    let save = !dry_run && merge.changed();
    if save {
        ctx.control
            .update_configuration(
                id,
                &ConfigurationUpdate::Replace(merge.configuration.clone()),
            )
            .await
            .map_err(|e| CliError::from(e).context(format!("saving configuration of '{id}'")))?;
        tracing::info!(connector = id, added = ?merge.added, updated = ?merge.updated, "configuration fields loaded from the spec");
    }
    let result = match (dry_run, save) {
        (true, _) => "dry_run",
        (false, true) => "updated",
        (false, false) => "unchanged",
    };
    let fields: Vec<(&str, &ConfigField)> = merge
        .configuration
        .fields_in_order()
        .into_iter()
        .filter(|(key, _)| key.starts_with("config."))
        .collect();
    let state = |key: &str| {
        let has = |keys: &[String]| keys.iter().any(|k| k == key);
        if has(&merge.added) {
            "added"
        } else if has(&merge.updated) {
            "updated"
        } else if has(&merge.not_in_spec) {
            "not in spec"
        } else {
            "kept"
        }
    };
    let rows: Vec<Value> = fields
        .iter()
        .map(|(key, f)| {
            json!({
                "key": key, "label": f.display_label(key), "type": f.field_type.as_str(),
                "value": shown_value(f), "default": if f.sensitive { Value::Null } else { f.default_value.clone() },
                "required": f.required, "sensitive": f.sensitive, "state": state(key),
            })
        })
        .collect();
    let document = json!({
        "result": result, "id": id, "added": merge.added, "updated": merge.updated,
        "not_in_spec": merge.not_in_spec, "fields": rows,
    });
    ctx.out.either(&document, || {
        let outcome = match result {
            "dry_run" => "dry run, nothing saved",
            "updated" => "saved",
            _ => "nothing to save",
        };
        let mut text = format!("connector '{id}': {} ({outcome})\n", merge.summary());
        if fields.is_empty() {
            text.push_str("the spec describes no field of a simple type; set the program's configuration in 'config' (JSON)\n");
            return text;
        }
        let mut table = Table::new(&["KEY", "LABEL", "TYPE", "VALUE", "REQUIRED", "SENSITIVE", "STATE"]);
        for (key, f) in &fields {
            table.row(vec![
                key.to_string(),
                ellipsize(&f.display_label(key), 32),
                f.field_type.as_str().to_string(),
                ellipsize(&f.display_value(false), 40),
                yes_no(f.required),
                yes_no(f.sensitive),
                state(key).to_string(),
            ]);
        }
        text.push_str(&table.render());
        let missing: Vec<&str> = fields
            .iter()
            .filter(|(_, f)| f.required && is_empty_value(&f.value))
            .map(|(key, _)| *key)
            .collect();
        if !missing.is_empty() {
            text.push_str(&format!(
                "required and empty: {}; set them with `syncdeck connectors set {id} KEY=VALUE`\n",
                missing.join(", ")
            ));
        }
        text
    })?;
    Ok(())
}

/// A field's value for output: sensitive values masked.
fn shown_value(f: &ConfigField) -> Value {
    if f.sensitive {
        Value::String(f.display_value(false))
    } else {
        f.value.clone()
    }
}

/// A configuration problem (no command, a bad environment line) is the operator's to fix
/// (exit 2); a program that cannot run or answers badly is a failure (exit 1).
fn spec_error(id: &str, e: SourceError) -> CliError {
    let what = format!("loading the spec of connector '{id}'");
    match e {
        SourceError::Config { ref field, .. } => CliError::usage(format!(
            "{what}: {e} (set it with `syncdeck connectors set {id} {field}=VALUE`)"
        )),
        other => CliError::failed(format!("{what}: {other}")),
    }
}
