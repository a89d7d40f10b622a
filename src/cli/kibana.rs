//! `syncdeck kibana ...`: the actions connectors of Kibana (types, list, create an `.index`
//! connector, execute it with documents, delete).

use super::args::KibanaCommand;
use super::context::Context;
use super::error::{CliError, CliResult, EXIT_FAILED, EXIT_UNREACHABLE};
use super::output::{Table, or_dash};
use crate::kibana::KibanaError;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;

impl From<KibanaError> for CliError {
    fn from(e: KibanaError) -> Self {
        let code = match e {
            KibanaError::Unreachable { .. } => EXIT_UNREACHABLE,
            _ => EXIT_FAILED,
        };
        CliError {
            code,
            message: format!("kibana: {e}"),
        }
    }
}

pub async fn run(ctx: &mut Context, command: KibanaCommand) -> CliResult {
    match command {
        KibanaCommand::Types => {
            let types = ctx.kibana()?.connector_types(None).await?;
            ctx.out.either(&types, || {
                let mut t = Table::new(&["ID", "NAME", "ENABLED", "LICENSE", "FEATURES"]);
                for ty in &types {
                    t.row(vec![
                        ty.id.clone(),
                        ty.name.clone(),
                        (ty.enabled && ty.enabled_in_config && ty.enabled_in_license).to_string(),
                        ty.minimum_license_required.clone(),
                        ty.supported_feature_ids.join(","),
                    ]);
                }
                t.render()
            })?;
            Ok(())
        }
        KibanaCommand::List => {
            let connectors = ctx.kibana()?.connectors().await?;
            ctx.out.either(&connectors, || {
                if connectors.is_empty() {
                    return "no actions connectors".to_string();
                }
                let mut t = Table::new(&["ID", "NAME", "TYPE", "INDEX", "HEALTH"]);
                for c in &connectors {
                    let flags = c.health_flags();
                    t.row(vec![
                        c.id.clone(),
                        c.name.clone(),
                        c.connector_type_id.clone(),
                        or_dash(
                            c.config
                                .as_ref()
                                .and_then(|cfg| cfg.get("index"))
                                .and_then(Value::as_str),
                        ),
                        if flags.is_empty() {
                            "ok".to_string()
                        } else {
                            flags.join(", ")
                        },
                    ]);
                }
                t.render()
            })?;
            Ok(())
        }
        KibanaCommand::CreateIndex {
            name,
            index,
            refresh,
            execution_time_field,
        } => {
            ctx.ensure_writable("create Kibana connector")?;
            let created = ctx
                .kibana()?
                .create_index_connector(&name, &index, refresh, execution_time_field.as_deref())
                .await?;
            ctx.out.either(&created, || {
                format!(
                    "index connector '{}' created (id {})",
                    created.name, created.id
                )
            })?;
            Ok(())
        }
        KibanaCommand::Execute {
            id,
            doc,
            file,
            max_file_bytes,
            index_override,
        } => {
            ctx.ensure_writable("execute Kibana connector")?;
            let documents = match (doc, file) {
                (Some(doc), _) => documents_from_json(&doc)?,
                (None, Some(path)) => documents_from_ndjson(&path, max_file_bytes)?,
                (None, None) => return Err(CliError::usage("give --doc JSON or --file NDJSON")),
            };
            let result = ctx
                .kibana()?
                .execute_index(&id, &documents, index_override.as_deref())
                .await?;
            if let Some(failure) = result.failure() {
                return Err(CliError::failed(format!(
                    "kibana connector '{id}': {failure}"
                )));
            }
            ctx.out.either(&result, || {
                format!("{} document(s) sent through '{id}'", documents.len())
            })?;
            Ok(())
        }
        KibanaCommand::Delete { id } => {
            ctx.ensure_writable("delete Kibana connector")?;
            ctx.kibana()?.delete_connector(&id).await?;
            ctx.out.either(&json!({"deleted": id}), || {
                format!("kibana connector '{id}' deleted")
            })?;
            Ok(())
        }
    }
}

/// `--doc`: one object, or an array of objects.
fn documents_from_json(text: &str) -> CliResult<Vec<Value>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CliError::usage(format!("--doc is not JSON: {e}")))?;
    match value {
        Value::Object(_) => Ok(vec![value]),
        Value::Array(items) if items.iter().all(Value::is_object) => Ok(items),
        _ => Err(CliError::usage(
            "--doc must be a JSON object or an array of objects",
        )),
    }
}

/// The default of `kibana execute --max-file-bytes`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// `--file`: NDJSON, one object per line; blank lines skipped; `-` reads stdin. At most
/// `max_bytes` are read: a larger file is refused before it fills memory.
fn documents_from_ndjson(path: &Path, max_bytes: u64) -> CliResult<Vec<Value>> {
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::failed(format!("reading stdin: {e}")))
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes))
            .map_err(|e| CliError::usage(format!("'{}': {e}", path.display())))
    };
    read?;
    if bytes.len() as u64 > max_bytes {
        return Err(CliError::usage(format!(
            "'{}' is larger than --max-file-bytes = {max_bytes} bytes; split it or raise the limit",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("'{}' is not UTF-8 text", path.display())))?;
    let mut documents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            CliError::usage(format!(
                "'{}' line {}: not JSON: {e}",
                path.display(),
                n + 1
            ))
        })?;
        if !value.is_object() {
            return Err(CliError::usage(format!(
                "'{}' line {}: not a JSON object",
                path.display(),
                n + 1
            )));
        }
        documents.push(value);
    }
    if documents.is_empty() {
        return Err(CliError::usage(format!(
            "'{}' holds no documents",
            path.display()
        )));
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_accepts_object_or_array_of_objects() {
        assert_eq!(documents_from_json(r#"{"a":1}"#).unwrap().len(), 1);
        assert_eq!(
            documents_from_json(r#"[{"a":1},{"b":2}]"#).unwrap().len(),
            2
        );
        assert!(documents_from_json("[1]").is_err());
        assert!(documents_from_json("nope").is_err());
    }

    #[test]
    fn ndjson_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.ndjson");
        std::fs::write(&path, "{\"a\":1}\n\n{oops}\n").unwrap();
        let err = documents_from_ndjson(&path, DEFAULT_MAX_FILE_BYTES).unwrap_err();
        assert!(err.message.contains("line 3"), "{}", err.message);
    }

    #[test]
    fn a_file_over_the_bound_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ndjson");
        std::fs::write(&path, "{\"a\":1}\n".repeat(100)).unwrap();
        let err = documents_from_ndjson(&path, 64).unwrap_err();
        assert!(
            err.message.contains("--max-file-bytes = 64"),
            "{}",
            err.message
        );
        assert_eq!(err.code, crate::cli::error::EXIT_USAGE);
        assert_eq!(documents_from_ndjson(&path, 800).unwrap().len(), 100);
    }
}
