//! The `external` source: a connector written as a separate program and run the way Airbyte
//! runs a source (`spec`, `check --config`, `discover --config`, `read --config --catalog
//! [--state]`), so any published Airbyte source, or a script in any language, syncs like a
//! built-in source. Configuration, catalog and state go to private temporary files; stdout is
//! read as protocol lines with backpressure (no line is read while the engine's channel is
//! full, so the pipe fills and the program blocks); records become documents, `STATE`
//! messages checkpoints and the cursor, bad lines dead letters. The protocol lives in
//! `protocol`, the child process in `process`, the spec-to-fields mapping in `spec`; the
//! merge of a spec's fields into a connector's configuration (for the CLI and the console)
//! is [`ExternalFactory::merge_spec`]. This module must not know about the engine,
//! Elasticsearch or the dead-letter queue.

mod process;

pub use process::INHERITED_ENV;
mod protocol;
mod spec;

use super::fields::{configuration, field, int_at_least, str_setting};
use super::{DataSource, Document, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode};
use crate::model::{Configuration, DisplayType, FieldType};
use crate::secret::Secret;
use async_trait::async_trait;
use process::{Line, Program, ReadError, Redactor, Running, describe_status, stderr_suffix};
use protocol::{Message, Record, StateTracker, Stream, Trace};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The default of the `timeout` field, in seconds.
const DEFAULT_TIMEOUT_SECS: i64 = 600;

/// How long the program may take to exit once its output has ended.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The longest part of a bad line (and of the reason quoting it) kept in its dead letter.
const MAX_RAW_BYTES: usize = 1024;

/// Builds `external` sources.
pub struct ExternalFactory;

impl SourceFactory for ExternalFactory {
    fn service_type(&self) -> &'static str {
        "external"
    }

    fn display_name(&self) -> &'static str {
        "External program (Airbyte protocol)"
    }

    fn default_configuration(&self) -> Configuration {
        generic_configuration()
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        ExternalSettings::from_config(config).map(|_| ())
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        super::register_sensitive(config);
        Ok(Box::new(ExternalSource::from_config(config)?))
    }
}

fn generic_configuration() -> Configuration {
    let mut config = configuration([
        field("command", "Command").text("").tooltip(
            "The connector program, e.g. 'source-faker'. syncdeck runs it with 'spec', 'check', 'discover' and 'read', as Airbyte does.",
        ),
        field("args", "Arguments")
            .text("")
            .optional()
            .tooltip("Arguments placed before the subcommand, comma-separated (e.g. 'main.py' for 'python3')."),
        field("env", "Environment")
            .text("")
            .optional()
            .tooltip("Extra environment variables, one NAME=value per line. PATH, HOME, locale, proxy and CA settings are passed on; nothing else of syncdeck's environment is."),
        field("secret_env", "Secret environment")
            .sensitive()
            .optional()
            .tooltip("Like Environment, for tokens and passwords: masked everywhere and in the program's logs."),
        field("config", "Connector configuration (JSON)")
            .text("{}")
            .optional()
            .tooltip("A JSON object given to the program as its config file. Fields named 'config.<property>' are laid over it."),
        field("stream", "Streams")
            .text("")
            .optional()
            .tooltip("The streams to read, comma-separated; empty reads every stream the program offers."),
        field("id_field", "Id field")
            .text("")
            .optional()
            .tooltip("The record field that identifies a document; empty uses each stream's primary key."),
        field("timeout", "Timeout (seconds)")
            .int(DEFAULT_TIMEOUT_SECS)
            .greater_than(0)
            .tooltip("The longest 'spec', 'check' or 'discover' may take, and the longest 'read' may stay silent."),
    ]);
    for (key, field) in config.0.iter_mut() {
        match key.as_str() {
            "args" => field.field_type = FieldType::List,
            "env" | "secret_env" | "config" => field.display = DisplayType::Textarea,
            _ => {}
        }
    }
    config
}

/// Runs the program's `spec` and returns the generic fields (with `command`, `args` and `env`
/// filled in) followed by one field per simple property of its `connectionSpecification`,
/// keyed `config.<property>`, so the connector can be edited like a built-in one.
pub async fn spec_fields(
    command: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<Configuration, SourceError> {
    let program = Program {
        command: command.to_string(),
        args: args.to_vec(),
        env: env
            .iter()
            .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
            .collect(),
        redactor: Redactor::default(),
    };
    let timeout = Duration::from_secs(DEFAULT_TIMEOUT_SECS as u64);
    let mut config = configuration_from_spec(&run_spec(&program, timeout).await?);
    let set = |config: &mut Configuration, key: &str, value: Value| {
        if let Some(field) = config.0.get_mut(key) {
            field.value = value;
        }
    };
    set(&mut config, "command", Value::from(command));
    set(&mut config, "args", Value::from(args.to_vec()));
    let env_text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    set(&mut config, "env", Value::from(env_text.join("\n")));
    Ok(config)
}

impl ExternalFactory {
    /// Runs `spec` with the program a connector's configuration names (its `command`,
    /// `args`, `env` and `secret_env`, within its `timeout`) and returns the fields the spec
    /// describes, with their defaults: the generic fields, then the `config.<property>`
    /// ones. Secrets are masked in whatever the program writes that reaches an error or a
    /// log. Merge the result into the connector's configuration with [`Self::merge_spec`].
    pub async fn load_spec(config: &Configuration) -> Result<Configuration, SourceError> {
        let program = program_from_config(config)?;
        let timeout = int_at_least(config, "timeout", DEFAULT_TIMEOUT_SECS, 1)?;
        let spec = run_spec(&program, Duration::from_secs(timeout as u64)).await?;
        Ok(configuration_from_spec(&spec))
    }

    /// Lays the fields of a spec (from [`Self::load_spec`]) over a connector's
    /// configuration: new fields are added with their defaults; fields already there keep
    /// their values and take the spec's definition (label, type, validations...), but never
    /// stop being sensitive; `config.*` fields the spec no longer names are kept, so no value
    /// is lost. The CLI and the console both merge through here.
    pub fn merge_spec(current: &Configuration, spec: &Configuration) -> SpecMerge {
        let mut merge = SpecMerge {
            configuration: current.clone(),
            ..SpecMerge::default()
        };
        for (key, field) in spec.fields_in_order() {
            let Some(old) = current.get(key) else {
                merge.configuration.0.insert(key.to_string(), field.clone());
                merge.added.push(key.to_string());
                continue;
            };
            let mut new = field.clone();
            new.value = old.value.clone();
            new.sensitive |= old.sensitive;
            // What this version does not know of the stored field is written back as it was.
            new.extra = old.extra.clone();
            if new != *old {
                merge.configuration.0.insert(key.to_string(), new);
                merge.updated.push(key.to_string());
            }
        }
        merge.not_in_spec = current
            .0
            .keys()
            .filter(|k| k.starts_with(spec::SPEC_PREFIX) && !spec.0.contains_key(*k))
            .cloned()
            .collect();
        merge
    }
}

/// What [`ExternalFactory::merge_spec`] did. `Debug` masks sensitive values, as the
/// configuration's own does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecMerge {
    /// The configuration with the spec's fields laid over it.
    pub configuration: Configuration,
    /// Keys of the fields the spec added, in form order.
    pub added: Vec<String>,
    /// Keys of the fields whose definition the spec changed (their values are kept).
    pub updated: Vec<String>,
    /// `config.*` keys the spec no longer names; kept as they were.
    pub not_in_spec: Vec<String>,
}

impl SpecMerge {
    /// Whether the configuration changed at all.
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.updated.is_empty()
    }

    /// One line for people: what was added and changed, or that nothing was.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!(
                "added {} field(s): {}",
                self.added.len(),
                self.added.join(", ")
            ));
        }
        if !self.updated.is_empty() {
            parts.push(format!(
                "updated {} field(s): {}",
                self.updated.len(),
                self.updated.join(", ")
            ));
        }
        if parts.is_empty() {
            parts.push("the configuration already has every field of the spec".to_string());
        }
        if !self.not_in_spec.is_empty() {
            parts.push(format!(
                "kept {} field(s) the spec no longer names: {}",
                self.not_in_spec.len(),
                self.not_in_spec.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Runs `spec` to the end and returns the spec object of its `SPEC` message.
async fn run_spec(program: &Program, timeout: Duration) -> Result<Value, SourceError> {
    one_shot(program, "spec", &[], timeout, |m| match m {
        Message::Spec(spec) => Some(spec),
        _ => None,
    })
    .await
    .map_err(SourceError::Unavailable)?
    .ok_or_else(|| {
        SourceError::Unavailable(format!(
            "{} wrote no SPEC message",
            program.describe("spec")
        ))
    })
}

/// The generic fields with their defaults, then one field per simple property of the
/// spec; the properties that cannot be fields are named in the `config` field's tooltip.
fn configuration_from_spec(spec: &Value) -> Configuration {
    let mut config = generic_configuration();
    let first = config.0.len() as i64 + 1;
    let (fields, skipped) = spec::fields_from_spec(spec, first);
    if !skipped.is_empty()
        && let Some(field) = config.0.get_mut("config")
    {
        field.tooltip = Some(format!(
            "A JSON object given to the program as its config file; set these here: {}. Fields named 'config.<property>' are laid over it.",
            skipped.join(", ")
        ));
    }
    config.0.extend(fields);
    config
}

/// The program a configuration names: `command`, `args`, and `env` with `secret_env`; the
/// secret values and those of sensitive fields are masked in what it writes.
fn program_from_config(config: &Configuration) -> Result<Program, SourceError> {
    let command = str_setting(config, "command", "");
    if command.is_empty() {
        return Err(config_error("command", "a program to run is required"));
    }
    let mut env = parse_env(&str_setting(config, "env", ""), "env")?;
    let secret_env = parse_env(&str_setting(config, "secret_env", ""), "secret_env")?;
    let mut secrets: Vec<Secret> = secret_env.iter().map(|(_, v)| v.clone()).collect();
    env.extend(secret_env);
    secrets.extend(sensitive_values(config));
    Ok(Program {
        command,
        args: list_setting(config, "args"),
        env,
        redactor: Redactor::new(secrets),
    })
}

/// Everything needed to run the program, checked once.
struct ExternalSettings {
    program: Program,
    /// The config file's content; may hold secrets, so it is never printed.
    config: Map<String, Value>,
    streams: Vec<String>,
    id_field: Option<String>,
    timeout: Duration,
}

impl ExternalSettings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        let program = program_from_config(config)?;
        let mut json = parse_config_json(&str_setting(config, "config", "{}"))?;
        spec::overlay_spec_values(config, &mut json)
            .map_err(|(key, reason)| config_error(&key, reason))?;
        let id_field = str_setting(config, "id_field", "");
        let timeout = int_at_least(config, "timeout", DEFAULT_TIMEOUT_SECS, 1)?;
        Ok(Self {
            program,
            config: json,
            streams: list_setting(config, "stream"),
            id_field: (!id_field.is_empty()).then_some(id_field),
            timeout: Duration::from_secs(timeout as u64),
        })
    }
}

fn config_error(key: &str, reason: impl Into<String>) -> SourceError {
    SourceError::Config {
        field: key.to_string(),
        reason: reason.into(),
    }
}

/// A list from a JSON array or a comma-separated string.
fn list_setting(config: &Configuration, key: &str) -> Vec<String> {
    let items: Vec<String> = match config.effective_value(key) {
        Some(Value::Array(items)) => items.iter().map(crate::model::value_text).collect(),
        Some(Value::String(s)) => s.split(',').map(String::from).collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `NAME=value` lines; blank lines and `#` comments are skipped. Errors name the field and
/// the line, never the value.
fn parse_env(text: &str, key: &str) -> Result<Vec<(String, Secret)>, SourceError> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(config_error(
                key,
                format!("line {} is not NAME=value", i + 1),
            ));
        };
        let name = name.trim();
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(config_error(
                key,
                format!("line {}: '{name}' is not a valid variable name", i + 1),
            ));
        }
        vars.push((name.to_string(), Secret::new(value)));
    }
    Ok(vars)
}

/// The values of sensitive fields, masked in the program's logs.
fn sensitive_values(config: &Configuration) -> Vec<Secret> {
    config
        .0
        .values()
        .filter(|f| f.sensitive)
        .filter_map(|f| f.value.as_str())
        .flat_map(|text| {
            // A secret environment holds NAME=value lines: mask each value.
            let values: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once('=').map(|(_, v)| v))
                .collect();
            std::iter::once(text).chain(values)
        })
        .map(Secret::new)
        .collect()
}

fn parse_config_json(text: &str) -> Result<Map<String, Value>, SourceError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(config_error("config", "must be a JSON object ({...})")),
        Err(e) => Err(config_error("config", format!("not valid JSON: {e}"))),
    }
}

/// A running `external` source.
pub struct ExternalSource {
    settings: ExternalSettings,
    lines_read: Arc<AtomicU64>,
}

impl ExternalSource {
    /// A source from a connector's configuration (what the factory's `create` returns).
    pub fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        Ok(Self {
            settings: ExternalSettings::from_config(config)?,
            lines_read: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Counts the stdout lines `run` has read so far (for progress, and to show that
    /// reading waits for the engine).
    pub fn lines_read(&self) -> Arc<AtomicU64> {
        self.lines_read.clone()
    }

    /// The streams to read, from `discover`, with the selection applied and their ids
    /// checked.
    async fn discover(&self, config_path: &Path) -> Result<Vec<Stream>, SourceError> {
        let settings = &self.settings;
        let args = [path_arg("--config"), path_arg(config_path)];
        let discovered = one_shot(
            &settings.program,
            "discover",
            &args,
            settings.timeout,
            |m| match m {
                Message::Catalog(streams) => Some(streams),
                _ => None,
            },
        )
        .await
        .map_err(SourceError::Failed)?
        .ok_or_else(|| {
            SourceError::Failed(format!(
                "{} wrote no CATALOG message",
                settings.program.describe("discover")
            ))
        })?;
        let chosen = choose_streams(discovered, &settings.streams)?;
        if settings.id_field.is_none()
            && let Some(stream) = chosen.iter().find(|s| s.primary_key.is_empty())
        {
            return Err(config_error(
                "id_field",
                format!(
                    "stream '{}' has no primary key; name the field that identifies its records",
                    stream.name
                ),
            ));
        }
        Ok(chosen)
    }
}

fn path_arg(path: impl AsRef<std::ffi::OsStr>) -> String {
    path.as_ref().to_string_lossy().into_owned()
}

fn choose_streams(discovered: Vec<Stream>, wanted: &[String]) -> Result<Vec<Stream>, SourceError> {
    if discovered.is_empty() {
        return Err(SourceError::Failed(
            "the program's catalog has no streams".into(),
        ));
    }
    if wanted.is_empty() {
        return Ok(discovered);
    }
    let mut chosen = Vec::with_capacity(wanted.len());
    for name in wanted {
        match discovered.iter().find(|s| &s.name == name) {
            Some(stream) => chosen.push(stream.clone()),
            None => {
                let offered: Vec<&str> = discovered.iter().map(|s| s.name.as_str()).collect();
                return Err(config_error(
                    "stream",
                    format!(
                        "no stream '{name}'; the program offers: {}",
                        offered.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(chosen)
}

#[async_trait]
impl DataSource for ExternalSource {
    async fn ping(&mut self) -> Result<(), SourceError> {
        let settings = &self.settings;
        let files = PrivateFiles::new()?;
        let config_path = files.write("config.json", &Value::Object(settings.config.clone()))?;
        let args = [path_arg("--config"), path_arg(&config_path)];
        let status = one_shot(
            &settings.program,
            "check",
            &args,
            settings.timeout,
            |m| match m {
                Message::ConnectionStatus { succeeded, message } => Some((succeeded, message)),
                _ => None,
            },
        )
        .await
        .map_err(SourceError::Unavailable)?;
        match status {
            Some((true, _)) => Ok(()),
            Some((false, message)) => {
                let message = message.unwrap_or_else(|| "no reason given".into());
                Err(SourceError::Unavailable(format!(
                    "the connection check failed: {}",
                    settings.program.redactor.redact(&message)
                )))
            }
            None => Err(SourceError::Unavailable(format!(
                "{} wrote no CONNECTION_STATUS message",
                settings.program.describe("check")
            ))),
        }
    }

    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        let files = PrivateFiles::new()?;
        let config_path =
            files.write("config.json", &Value::Object(self.settings.config.clone()))?;
        let streams = self.discover(&config_path).await?;
        let catalog_path = files.write("catalog.json", &protocol::configured_catalog(&streams))?;
        let state = match &mode {
            SyncMode::Incremental { cursor } => StateTracker::from_cursor(cursor.as_ref()),
            SyncMode::Full => StateTracker::default(),
        };
        let mut args = vec![
            path_arg("--config"),
            path_arg(&config_path),
            path_arg("--catalog"),
            path_arg(&catalog_path),
        ];
        if !state.is_empty() {
            let state_path = files.write("state.json", &state.state_file())?;
            args.extend([path_arg("--state"), path_arg(&state_path)]);
        }
        let program = &self.settings.program;
        let mut full_args = vec!["read".to_string()];
        full_args.extend(args);
        let running = program
            .spawn(&full_args)
            .map_err(SourceError::Unavailable)?;
        let mut reader = ReadLoop {
            settings: &self.settings,
            multi: streams.len() > 1,
            streams,
            state,
            trace_error: None,
            lines_read: &self.lines_read,
        };
        reader.read(running, &out).await
    }
}

/// One `read`: lines in, items out.
struct ReadLoop<'a> {
    settings: &'a ExternalSettings,
    streams: Vec<Stream>,
    /// Several streams share the index: ids are prefixed with the stream name.
    multi: bool,
    state: StateTracker,
    trace_error: Option<String>,
    lines_read: &'a AtomicU64,
}

impl ReadLoop<'_> {
    async fn read(
        &mut self,
        mut running: Running,
        out: &ItemSender,
    ) -> Result<Option<Value>, SourceError> {
        let program = &self.settings.program;
        loop {
            let line = match running.next_line(self.settings.timeout).await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(ReadError::Silent(limit)) => {
                    return Err(SourceError::Failed(format!(
                        "{} wrote nothing for {}s and was stopped{}",
                        program.describe("read"),
                        limit.as_secs(),
                        stderr_suffix(&running.stderr_tail())
                    )));
                }
                Err(ReadError::Io(e)) => {
                    return Err(SourceError::Failed(format!(
                        "reading the output of {}: {e}",
                        program.describe("read")
                    )));
                }
            };
            self.lines_read.fetch_add(1, Ordering::Relaxed);
            if let Some(item) = self.item(line) {
                // Waits while the engine's channel is full: no further line is read.
                out.send(item).await?;
            }
        }
        let status = running.wait(EXIT_WAIT).await;
        let tail = stderr_suffix(&running.stderr_tail());
        let status = status
            .map_err(|e| SourceError::Failed(format!("{}: {e}{tail}", program.describe("read"))))?;
        if let Some(error) = self.trace_error.take() {
            return Err(SourceError::Failed(format!(
                "the connector reported an error: {error} ({})",
                describe_status(&status)
            )));
        }
        if !status.success() {
            return Err(SourceError::Failed(format!(
                "{} failed with {}{tail}",
                program.describe("read"),
                describe_status(&status)
            )));
        }
        Ok((!self.state.is_empty()).then(|| self.state.cursor()))
    }

    /// The item for one line, `None` for lines that only inform (logs, traces, blanks).
    fn item(&mut self, line: Line<'_>) -> Option<SourceItem> {
        let number = line.number;
        if let Some(len) = line.overflow {
            let reason = format!(
                "the line is {len} bytes, over the limit of {} bytes",
                process::MAX_LINE_BYTES
            );
            return Some(invalid(number, reason, line.bytes));
        }
        let message = match protocol::parse_message(line.bytes) {
            Ok(Some(message)) => message,
            Ok(None) => return None,
            Err(reason) => return Some(invalid(number, reason, line.bytes)),
        };
        let program = &self.settings.program;
        match message {
            Message::Record(record) => self.record(number, record),
            Message::State(state) => {
                self.state.record(state);
                Some(SourceItem::Checkpoint(self.state.cursor()))
            }
            Message::Log { level, message } => {
                log_message(program, &level, &message);
                None
            }
            Message::Trace(Trace::Error {
                message,
                internal_message,
                failure_type,
            }) => {
                let message = program.redactor.redact(&message).into_owned();
                let kind = failure_type.unwrap_or_else(|| "system_error".into());
                tracing::error!(program = %program.command, failure_type = %kind, "{message}");
                if let Some(internal) = internal_message {
                    tracing::debug!(program = %program.command, "internal message: {}", program.redactor.redact(&internal));
                }
                // The first error is the cause; later ones are usually its consequences.
                self.trace_error
                    .get_or_insert(format!("{message} (failure type '{kind}')"));
                None
            }
            Message::Trace(Trace::Other(kind)) => {
                tracing::trace!(program = %program.command, kind = %kind, "external source trace");
                None
            }
            other => {
                tracing::debug!(program = %program.command, line = number, "ignored during read: {}", message_kind(&other));
                None
            }
        }
    }

    fn record(&self, number: u64, record: Record) -> Option<SourceItem> {
        let same_namespace =
            |s: &Stream| record.namespace.is_none() || s.namespace == record.namespace;
        let Some(stream) = self
            .streams
            .iter()
            .find(|s| s.name == record.stream && same_namespace(s))
        else {
            tracing::debug!(stream = %record.stream, line = number, "external source: record of a stream that was not selected; ignored");
            return None;
        };
        match protocol::record_id(
            &record.data,
            self.settings.id_field.as_deref(),
            &stream.primary_key,
        ) {
            Ok(key) => {
                let id = if self.multi {
                    format!("{}/{key}", stream.name)
                } else {
                    key
                };
                let mut fields = record.data;
                fields.insert("_airbyte_stream", Value::String(record.stream));
                if let Some(at) = record.emitted_at {
                    fields.insert("_airbyte_emitted_at", Value::from(at));
                }
                Some(SourceItem::Upsert(Document::new(id, fields)))
            }
            Err(reason) => Some(SourceItem::Invalid {
                id: format!("line-{number}"),
                reason: format!(
                    "line {number}: record of stream '{}': {reason}",
                    record.stream
                ),
                raw: record.data.into_value(),
            }),
        }
    }
}

/// The dead letter of a stdout line that is no usable message. The program may print
/// anything there (a debug line with its token), so only a masked preview of the line is
/// kept, with its size, never the line itself.
fn invalid(number: u64, reason: String, bytes: &[u8]) -> SourceItem {
    use crate::secret::mask::masked;
    // Masked before it is cut, so that a cut cannot split a secret the masker would know.
    let scanned = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * MAX_RAW_BYTES)]);
    let shown = preview_of(&masked(&scanned), MAX_RAW_BYTES);
    let reason = preview_of(
        &masked(preview_of(&reason, 64 * MAX_RAW_BYTES)),
        MAX_RAW_BYTES,
    );
    let raw = if bytes.len() > MAX_RAW_BYTES {
        serde_json::json!({ "preview": shown, "size_bytes": bytes.len() })
    } else {
        Value::String(shown)
    };
    SourceItem::Invalid {
        id: format!("line-{number}"),
        reason: format!("line {number}: {reason}"),
        raw,
    }
}

fn preview_of(text: &str, max: usize) -> String {
    crate::secret::mask::preview(text, max).to_string()
}

fn message_kind(message: &Message) -> &str {
    match message {
        Message::Record(_) => "RECORD",
        Message::State(_) => "STATE",
        Message::Log { .. } => "LOG",
        Message::Trace(_) => "TRACE",
        Message::ConnectionStatus { .. } => "CONNECTION_STATUS",
        Message::Spec(_) => "SPEC",
        Message::Catalog(_) => "CATALOG",
        Message::Ignored(kind) => kind,
    }
}

/// A `LOG` message as a tracing event at its level, secrets masked.
fn log_message(program: &Program, level: &str, message: &str) {
    let message = program.redactor.redact(message);
    let program = program.command.as_str();
    match level.to_ascii_uppercase().as_str() {
        "FATAL" | "ERROR" => tracing::error!(program, "{message}"),
        "WARN" | "WARNING" => tracing::warn!(program, "{message}"),
        "DEBUG" => tracing::debug!(program, "{message}"),
        "TRACE" => tracing::trace!(program, "{message}"),
        _ => tracing::info!(program, "{message}"),
    }
}

/// Runs `spec`, `check` or `discover` to the end within `timeout`, returning the last message
/// `pick` accepts. Logs are logged; other lines are ignored.
async fn one_shot<T>(
    program: &Program,
    subcommand: &str,
    args: &[String],
    timeout: Duration,
    mut pick: impl FnMut(Message) -> Option<T>,
) -> Result<Option<T>, String> {
    let name = program.describe(subcommand);
    let mut full = vec![subcommand.to_string()];
    full.extend_from_slice(args);
    let exchange = async {
        let mut running = program.spawn(&full)?;
        let mut picked = None;
        let mut trace_error = None;
        loop {
            let line = match running.next_line(timeout).await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(ReadError::Silent(_)) => {
                    return Err(format!(
                        "{name} did not finish within {}s",
                        timeout.as_secs()
                    ));
                }
                Err(ReadError::Io(e)) => return Err(format!("reading the output of {name}: {e}")),
            };
            match protocol::parse_message(line.bytes) {
                Ok(Some(Message::Log { level, message })) => log_message(program, &level, &message),
                Ok(Some(Message::Trace(Trace::Error {
                    message,
                    failure_type,
                    ..
                }))) => {
                    let kind = failure_type.unwrap_or_else(|| "system_error".into());
                    trace_error.get_or_insert(format!(
                        "{} (failure type '{kind}')",
                        program.redactor.redact(&message)
                    ));
                }
                Ok(Some(message)) => picked = pick(message).or(picked),
                Ok(None) => {}
                Err(reason) => {
                    tracing::debug!(program = %program.command, line = line.number, "{name}: ignored a line: {reason}")
                }
            }
        }
        let status = running
            .wait(EXIT_WAIT)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        // What the program answered matters more than how it exited (a failed check may
        // exit non-zero after its CONNECTION_STATUS).
        if picked.is_some() {
            return Ok(picked);
        }
        if let Some(error) = trace_error {
            return Err(format!("{name} reported an error: {error}"));
        }
        if !status.success() {
            return Err(format!(
                "{name} failed with {}{}",
                describe_status(&status),
                stderr_suffix(&running.stderr_tail())
            ));
        }
        Ok(None)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{name} did not finish within {}s",
            timeout.as_secs()
        )),
    }
}

/// A private temporary folder (mode 0700) for the config, catalog and state files (each
/// 0600); removed with everything in it when dropped.
struct PrivateFiles {
    dir: tempfile::TempDir,
}

impl PrivateFiles {
    fn new() -> Result<Self, SourceError> {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix("syncdeck-external-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map(|dir| Self { dir })
            .map_err(|e| {
                SourceError::Failed(format!("cannot create a private temporary folder: {e}"))
            })
    }

    fn write(&self, name: &str, value: &Value) -> Result<PathBuf, SourceError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.path().join(name);
        let failed = |e: std::io::Error| {
            SourceError::Failed(format!("cannot write '{}': {e}", path.display()))
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        file.write_all(value.to_string().as_bytes())
            .map_err(failed)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConfigField;
    use serde_json::json;

    fn config(values: &[(&str, Value)]) -> Configuration {
        let mut config = generic_configuration();
        for (key, value) in values {
            config.0.get_mut(*key).unwrap().value = value.clone();
        }
        config
    }

    #[test]
    fn the_defaults_pass_the_shared_validation_once_a_command_is_set() {
        let config = config(&[("command", json!("prog"))]);
        let values = Map::from_iter([("command".to_string(), json!("prog"))]);
        assert!(crate::model::validate::validate_update(&config, &values).is_empty());
        assert!(ExternalFactory.validate(&config).is_ok());
        let err = ExternalFactory
            .validate(&generic_configuration())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "configuration field 'command': a program to run is required"
        );
    }

    #[test]
    fn settings_parse_lists_env_and_json() {
        let c = config(&[
            ("command", json!("python3")),
            ("args", json!("main.py, --verbose")),
            ("env", json!("# comment\nA=1\n\nB = x=y")),
            ("secret_env", json!("TOKEN=hunter22")),
            ("config", json!(r#"{"count": 3}"#)),
            ("stream", json!("users, orders")),
        ]);
        let s = ExternalSettings::from_config(&c).unwrap();
        assert_eq!(s.program.args, ["main.py", "--verbose"]);
        let env: Vec<(&str, &str)> = s
            .program
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(env, [("A", "1"), ("B", " x=y"), ("TOKEN", "hunter22")]);
        assert_eq!(s.config["count"], 3);
        assert_eq!(s.streams, ["users", "orders"]);
        assert_eq!(
            s.program.redactor.redact("token hunter22"),
            format!("token {}", crate::secret::MASK)
        );
    }

    #[test]
    fn bad_settings_name_the_field_and_never_the_secret() {
        let err = |values: &[(&str, Value)]| {
            let mut all = vec![("command", json!("p"))];
            all.extend_from_slice(values);
            ExternalSettings::from_config(&config(&all))
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            err(&[("env", json!("1BAD=x"))]),
            "configuration field 'env': line 1: '1BAD' is not a valid variable name"
        );
        let secret = err(&[("secret_env", json!("OK=1\nhunter22"))]);
        assert_eq!(
            secret,
            "configuration field 'secret_env': line 2 is not NAME=value"
        );
        assert_eq!(
            err(&[("config", json!("[1]"))]),
            "configuration field 'config': must be a JSON object ({...})"
        );
        assert!(
            err(&[("config", json!("{oops"))])
                .starts_with("configuration field 'config': not valid JSON")
        );
        assert!(err(&[("timeout", json!(0))]).contains("'timeout'"));
    }

    fn spec_config() -> Configuration {
        configuration_from_spec(&json!({"connectionSpecification": {
            "required": ["token"],
            "properties": {
                "count": {"type": "integer", "title": "Records", "default": 3, "order": 0},
                "token": {"type": "string", "airbyte_secret": true, "order": 1},
                "nested": {"type": "object"}
            }
        }}))
    }

    #[test]
    fn a_merge_adds_new_fields_with_their_defaults_and_keeps_every_value() {
        let mut current = config(&[("command", json!("prog")), ("timeout", json!(30))]);
        current.0.insert(
            "config.count".into(),
            ConfigField {
                label: "Old label".into(),
                value: json!(7),
                field_type: FieldType::Int,
                ..ConfigField::default()
            },
        );
        current.0.insert(
            "config.gone".into(),
            ConfigField {
                value: json!("keep me"),
                ..ConfigField::default()
            },
        );
        let merge = ExternalFactory::merge_spec(&current, &spec_config());
        let merged = &merge.configuration;
        assert_eq!(merge.added, ["config.token"]);
        assert_eq!(merge.updated, ["config", "config.count"]);
        assert_eq!(merge.not_in_spec, ["config.gone"]);
        assert!(merge.changed());
        // Values stay; definitions come from the spec.
        assert_eq!(merged.0["command"].value, "prog");
        assert_eq!(merged.0["timeout"].value, 30);
        let count = &merged.0["config.count"];
        assert_eq!((count.label.as_str(), &count.value), ("Records", &json!(7)));
        assert_eq!(merged.0["config.gone"].value, "keep me");
        assert!(
            merged.0["config"]
                .tooltip
                .as_deref()
                .is_some_and(|t| t.contains("nested"))
        );
        // A new field comes with its default; a secret one is sensitive and empty.
        let token = &merged.0["config.token"];
        assert!(token.sensitive && token.required && token.value == "");
        let summary = merge.summary();
        assert!(
            summary.starts_with("added 1 field(s): config.token; updated 2 field(s)"),
            "{summary}"
        );
        assert!(summary.contains("config.gone"), "{summary}");
    }

    #[test]
    fn a_second_merge_changes_nothing_and_sensitivity_is_never_lost() {
        let spec = spec_config();
        let first = ExternalFactory::merge_spec(&generic_configuration(), &spec);
        assert!(first.added.contains(&"config.count".to_string()));
        let mut current = first.configuration;
        current.0.get_mut("config.token").unwrap().value = json!("s3cret-value");
        // A field the operator made sensitive stays so, whatever a later spec says.
        current.0.get_mut("config.count").unwrap().sensitive = true;
        let again = ExternalFactory::merge_spec(&current, &spec);
        assert!(!again.changed(), "{:?}", again.updated);
        assert_eq!(again.configuration, current);
        assert_eq!(
            again.summary(),
            "the configuration already has every field of the spec"
        );
        assert!(!format!("{again:?}").contains("s3cret-value"));
    }

    #[test]
    fn the_program_comes_from_command_args_and_both_environments() {
        let c = config(&[
            ("command", json!("python3")),
            ("args", json!(["main.py"])),
            ("env", json!("A=1")),
            ("secret_env", json!("TOKEN=hunter22")),
            // A broken config JSON does not stop a spec: only the program matters there.
            ("config", json!("{oops")),
        ]);
        let program = program_from_config(&c).unwrap();
        assert_eq!(
            (program.command.as_str(), program.args.as_slice()),
            ("python3", &["main.py".to_string()][..])
        );
        assert_eq!(program.env.len(), 2);
        assert_eq!(
            program.redactor.redact("hunter22"),
            crate::secret::MASK.to_string()
        );
        let err = program_from_config(&generic_configuration()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "configuration field 'command': a program to run is required"
        );
    }
}
