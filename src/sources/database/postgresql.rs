//! The `postgresql` source: Elastic's catalog connector of that name, natively. A connector
//! made in Kibana (or by Elastic's tooling) runs unchanged: the same configuration fields,
//! the same documents (`{schema}_{table}_{column}` keys, `database`/`table`/`schema`, ids
//! `{database}_{schema}_{table}_{key values}`), the same advanced rules and messages.
//!
//! Where it differs, on purpose:
//! - each table is read in one REPEATABLE READ, read-only transaction (one snapshot), through
//!   a server-side cursor (a bound portal fetched in slices), never `LIMIT … OFFSET`;
//! - `track_commit_timestamp` is asked once per sync; when it is off, `_timestamp` is the time
//!   the table was read and the job's metadata says so (Python retries a failing query per
//!   table for six seconds, then uses the time of each row);
//! - with `ssl_enabled` the server certificate is verified against `ssl_ca` (rustls), and
//!   without it there is no TLS at all (asyncpg would silently "prefer" unverified TLS);
//! - tables skipped (no primary key) or failed, and the rows read per table, are in the job's
//!   metadata (`tables`, `skipped_tables`, `failed_tables`, `commit_timestamps`).

use super::pg_values::{self, Raw};
use super::{
    AdvancedRule, CursorRead, CursorState, RetryPlan, SyncNotes, configured_tables, fit_id,
    is_wildcard, iso_utc_now, key_id, map_column_names, py_str_repr, tls_client_config,
    unreadable_table,
};
use crate::model::{ConfigField, Configuration, Dependency, DisplayType, FieldType};
use crate::sources::fields::{bool_setting, int_setting, str_setting};
use crate::sources::{
    ColumnKeys, DataSource, Document, Fields, ItemSender, SourceError, SourceItem, SourceNotes,
    SyncMode,
};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, IsolationLevel, NoTls, Socket, Statement};

/// Python's `DEFAULT_FETCH_SIZE` for this connector.
pub const DEFAULT_FETCH_SIZE: i64 = 50;
/// Python's `DEFAULT_RETRY_COUNT`.
pub const DEFAULT_RETRY_COUNT: i64 = 3;
/// Rows asked of the server per round trip at least (Python pages by 1000 rows and hands
/// them out `fetch_size` at a time).
const MIN_ROWS_PER_FETCH: i64 = 1000;

/// A field as the framework's `DEFAULT_CONFIGURATION` fills it, with what the Python class
/// sets on top.
pub(crate) fn catalog_field(label: &str, order: i64, field_type: FieldType) -> ConfigField {
    ConfigField {
        label: label.to_string(),
        order: Some(order),
        field_type,
        display: DisplayType::Text,
        value: Value::String(String::new()),
        default_value: Value::Null,
        ..ConfigField::default()
    }
}

/// `PostgreSQLDataSource.get_default_configuration()`, field for field.
pub fn default_configuration() -> Configuration {
    let mut config = Configuration::default();
    let mut put = |key: &str, field: ConfigField| {
        config.0.insert(key.to_string(), field);
    };
    put("host", catalog_field("Host", 1, FieldType::Str));
    put(
        "port",
        ConfigField {
            display: DisplayType::Numeric,
            ..catalog_field("Port", 2, FieldType::Int)
        },
    );
    put("username", catalog_field("Username", 3, FieldType::Str));
    put(
        "password",
        ConfigField {
            sensitive: true,
            ..catalog_field("Password", 4, FieldType::Str)
        },
    );
    put("database", catalog_field("Database", 5, FieldType::Str));
    put("schema", catalog_field("Schema", 6, FieldType::Str));
    put(
        "tables",
        ConfigField {
            display: DisplayType::Textarea,
            tooltip: Some(
                "This configurable field is ignored when Advanced Sync Rules are used.".into(),
            ),
            value: Value::String("*".into()),
            ..catalog_field("Comma-separated list of tables", 7, FieldType::List)
        },
    );
    put(
        "fetch_size",
        ConfigField {
            default_value: Value::from(DEFAULT_FETCH_SIZE),
            display: DisplayType::Numeric,
            required: false,
            ui_restrictions: vec!["advanced".into()],
            ..catalog_field("Rows fetched per request", 8, FieldType::Int)
        },
    );
    put(
        "retry_count",
        ConfigField {
            default_value: Value::from(DEFAULT_RETRY_COUNT),
            display: DisplayType::Numeric,
            required: false,
            ui_restrictions: vec!["advanced".into()],
            ..catalog_field("Retries per request", 9, FieldType::Int)
        },
    );
    put(
        "ssl_enabled",
        ConfigField {
            display: DisplayType::Toggle,
            value: Value::Bool(false),
            ..catalog_field("Enable SSL verification", 10, FieldType::Bool)
        },
    );
    put(
        "ssl_ca",
        ConfigField {
            depends_on: vec![Dependency {
                field: "ssl_enabled".into(),
                value: Value::Bool(true),
            }],
            ..catalog_field("SSL certificate", 11, FieldType::Str)
        },
    );
    config
}

/// The `postgresql` service type.
pub struct PostgresqlFactory;

impl super::DatabaseType for PostgresqlFactory {
    type Flavor = Settings;
    const SERVICE_TYPE: &'static str = "postgresql";
    const DISPLAY_NAME: &'static str = "PostgreSQL";
    const CURSOR_ORDER: i64 = 12;

    fn default_configuration() -> Configuration {
        default_configuration()
    }
}

impl super::Flavor for Settings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        Settings::from_config(config)
    }

    async fn present_tables(&self) -> Result<Vec<String>, String> {
        self.all_tables().await
    }

    fn missing_message(missing: &[String]) -> String {
        let set: Vec<String> = missing.iter().map(|t| py_str_repr(t)).collect();
        format!("Tables not found or inaccessible: {{{}}}.", set.join(", "))
    }

    fn source(self, rules: Vec<AdvancedRule>) -> Box<dyn DataSource> {
        Box::new(PostgresqlSource {
            settings: self,
            rules,
            client: None,
            notes: Arc::new(SyncNotes::default()),
            cursors: None,
        })
    }
}

/// The connection settings, read once.
#[derive(Clone)]
pub struct Settings {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
    schema: String,
    tables: Vec<String>,
    rows_per_fetch: i32,
    retry: RetryPlan,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// syncdeck's own `cursor_column`, for incremental syncs.
    cursor_column: Option<String>,
}

fn config_error(field: &str, reason: impl Into<String>) -> SourceError {
    SourceError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl Settings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        let port = int_setting(config, "port", 5432)?;
        let port = u16::try_from(port)
            .map_err(|_| config_error("port", format!("'{port}' is not a port number")))?;
        let fetch_size = int_setting(config, "fetch_size", DEFAULT_FETCH_SIZE)?;
        let retry_count = int_setting(config, "retry_count", DEFAULT_RETRY_COUNT)?;
        let ssl_enabled = bool_setting(config, "ssl_enabled", false)?;
        let tls = if ssl_enabled {
            let ca = str_setting(config, "ssl_ca", "");
            Some(Arc::new(
                tls_client_config(&ca).map_err(|reason| config_error("ssl_ca", reason))?,
            ))
        } else {
            None
        };
        // The password is used as typed (no trimming): it is a secret, not a name.
        let password = match config.effective_value("password") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Ok(Self {
            host: str_setting(config, "host", ""),
            port,
            user: str_setting(config, "username", ""),
            password,
            database: str_setting(config, "database", ""),
            schema: str_setting(config, "schema", ""),
            tables: configured_tables(config.effective_value("tables")),
            rows_per_fetch: fetch_size.clamp(MIN_ROWS_PER_FETCH, 100_000) as i32,
            retry: RetryPlan::new(retry_count),
            tls,
            cursor_column: super::cursor_column(config),
        })
    }

    /// One connection, with Python's retries. Its driver task ends when the client drops.
    async fn connect(&self) -> Result<Client, String> {
        self.retry.run(|| self.connect_once(), |_| false).await
    }

    async fn connect_once(&self) -> Result<Client, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(self.password.as_bytes())
            .dbname(&self.database)
            .application_name("syncdeck")
            .connect_timeout(Duration::from_secs(30));
        let client = match &self.tls {
            Some(tls) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
                spawn_connection(&config, tls).await?
            }
            None => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                spawn_connection(&config, NoTls).await?
            }
        };
        // The text of values (a saved `cursor_column` value, cast back next sync) must not
        // depend on settings a role or database may change between syncs: a DMY DateStyle
        // would misread a saved date, extra_float_digits <= 0 would round a float.
        client
            .batch_execute("SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1")
            .await
            .map_err(|e| pg_error(&e))?;
        Ok(client)
    }

    /// Every table of the schema (`all_tables`), by name.
    async fn all_tables(&self) -> Result<Vec<String>, String> {
        let client = self.connect().await?;
        list_tables(&client, &self.database, &self.schema).await
    }
}

async fn spawn_connection<T>(config: &tokio_postgres::Config, tls: T) -> Result<Client, String>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await.map_err(|e| pg_error(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %pg_error(&e), "postgresql connection ended");
        }
    });
    Ok(client)
}

/// An error's text: the server's message when it sent one, else the driver's with its cause.
fn pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    crate::text::error_chain(e)
}

/// Errors Python's SQLAlchemy reports as `ProgrammingError` (SQLSTATE class 42: a missing
/// table, a bad query, no privilege) and class 0A (not supported): the table (or query) is
/// skipped with a warning and the sync goes on, as Python does.
fn is_statement_error(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("42") || c.code().starts_with("0A"))
}

/// `"schema"."table"`, quotes doubled.
fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn list_tables(client: &Client, database: &str, schema: &str) -> Result<Vec<String>, String> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_catalog = $1 AND table_schema = $2 ORDER BY table_name",
            &[&database, &schema],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    rows.iter()
        .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_error(&e)))
        .collect()
}

/// A running `postgresql` sync.
pub struct PostgresqlSource {
    settings: Settings,
    rules: Vec<AdvancedRule>,
    /// The connection the ping opened, reused by the sync.
    client: Option<Client>,
    notes: Arc<SyncNotes>,
    /// With `cursor_column`: where this sync starts and the largest values it read.
    cursors: Option<CursorState>,
}

/// The cursor part of one table's read: the rows above `after` (when set), and the SQL of
/// the largest value among the rows read (`$1` is `after`).
struct CursorSql {
    after: Option<String>,
    largest: String,
}

/// How one table or query is read: its statement, its columns (names as the documents
/// carry them) and where its key values are.
struct ReadPlan {
    statement: Statement,
    columns: ColumnKeys,
    key_positions: Vec<usize>,
}

/// What every document of one table or query carries besides its columns.
struct DocFrame<'a> {
    tables: &'a [String],
    /// `table` as Python writes it: the name for a table, the list for a query.
    table_value: Value,
    timestamp: String,
}

#[async_trait]
impl DataSource for PostgresqlSource {
    async fn ping(&mut self) -> Result<(), SourceError> {
        let settings = &self.settings;
        let attempt = || async {
            let client = settings.connect_once().await?;
            client
                .simple_query("SELECT 1+1")
                .await
                .map_err(|e| pg_error(&e))?;
            Ok::<_, String>(client)
        };
        match settings.retry.run(attempt, |_| false).await {
            Ok(client) => {
                self.client = Some(client);
                Ok(())
            }
            Err(cause) => Err(SourceError::Unavailable(format!(
                "Can't connect to Postgresql on {}. {cause}",
                settings.host
            ))),
        }
    }

    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        // The server too: a connector pointed at another server with the same database
        // name must not resume from this one's values.
        let scope = format!(
            "{}:{}/{}.{}",
            self.settings.host, self.settings.port, self.settings.database, self.settings.schema
        );
        self.cursors = CursorState::start(
            self.settings.cursor_column.as_deref(),
            &scope,
            &mode,
            &self.notes,
        );
        let mut client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.settings.connect().await.map_err(|e| {
                SourceError::Unavailable(format!(
                    "Can't connect to Postgresql on {}. {e}",
                    self.settings.host
                ))
            })?,
        };
        let commit_timestamps = self.commit_timestamps(&client).await;
        tracing::info!("Successfully connected to Postgresql.");
        if !self.rules.is_empty() {
            if self.cursors.as_ref().is_some_and(|c| c.incremental) {
                // A rule's query has no one table to keep a cursor for.
                self.notes.set(
                    "incremental",
                    Value::from("advanced rules: every query is read whole (no deletions)"),
                );
            }
            let rules = self.rules.clone();
            for rule in &rules {
                self.sync_query(&mut client, rule, commit_timestamps, &out)
                    .await?;
            }
            return Ok(self.cursors.as_ref().map(CursorState::finish));
        }
        let tables = if is_wildcard(&self.settings.tables) {
            tracing::info!("Fetching all tables");
            list_tables(&client, &self.settings.database, &self.settings.schema)
                .await
                .map_err(SourceError::Failed)?
        } else {
            self.settings.tables.clone()
        };
        if tables.is_empty() {
            let message = format!(
                "Fetched 0 tables for schema: {} and database: {}",
                self.settings.schema, self.settings.database
            );
            tracing::warn!("{message}");
            self.notes.set("warning", Value::from(message.clone()));
            // A misspelt schema or a user who sees no table is not an empty source: a full
            // sync that deleted every document on it would empty the index.
            out.send(unreadable_table("*", &message, "no table matched"))
                .await?;
        }
        for table in &tables {
            self.sync_table(&mut client, table, commit_timestamps, &out)
                .await?;
        }
        Ok(self.cursors.as_ref().map(CursorState::finish))
    }

    fn notes(&self) -> Option<Arc<dyn SourceNotes>> {
        Some(self.notes.clone())
    }
}

impl PostgresqlSource {
    /// Whether commit timestamps are kept (`track_commit_timestamp`), asked once per sync.
    async fn commit_timestamps(&self, client: &Client) -> bool {
        let on = match client.simple_query("SHOW track_commit_timestamp").await {
            Ok(messages) => messages.iter().any(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("on"),
                _ => false,
            }),
            Err(_) => false,
        };
        let note = if on {
            "on: _timestamp is each table's latest commit time".to_string()
        } else {
            "off: track_commit_timestamp is off on the server, so _timestamp is the time each \
             table was read"
                .to_string()
        };
        self.notes.set("commit_timestamps", Value::from(note));
        on
    }

    fn no_key_warning(&self, table: &str) -> String {
        format!(
            "Skipping table '{table}' from database '{}' since no primary key is associated with it. Assign primary key to the table to index it in the next sync interval.",
            self.settings.database
        )
    }

    /// One table: its key, then its rows in one snapshot.
    async fn sync_table(
        &self,
        client: &mut Client,
        table: &str,
        commit_timestamps: bool,
        out: &ItemSender,
    ) -> Result<(), SourceError> {
        tracing::info!("Fetching records for table '{table}'");
        let started = Instant::now();
        self.notes.table(table, "reading", 0, Duration::ZERO, None);
        let tables = vec![table.to_string()];
        let result = async {
            let keys = self.primary_key(client, table).await?;
            if keys.is_empty() {
                return Ok(None);
            }
            let from = qualified(&self.settings.schema, table);
            let (query, cursor) = self.cursor_query(client, table, &from).await?;
            let keys = map_column_names(&keys, Some(self.settings.schema.as_str()), &tables);
            let progress = |rows| {
                self.notes
                    .table(table, "reading", rows, started.elapsed(), None)
            };
            let (read, largest) = self
                .read_mapped_keys(
                    client,
                    &tables,
                    &query,
                    cursor.as_ref(),
                    &keys,
                    commit_timestamps,
                    Value::from(table),
                    progress,
                    out,
                )
                .await?;
            if let Some(cursors) = &self.cursors {
                cursors.read(table, largest);
            }
            Ok(Some(read))
        }
        .await;
        self.settle(table, started, result, out).await
    }

    /// One advanced rule: its query, with ids from the tables' keys or its `id_columns`.
    async fn sync_query(
        &self,
        client: &mut Client,
        rule: &AdvancedRule,
        commit_timestamps: bool,
        out: &ItemSender,
    ) -> Result<(), SourceError> {
        let label = rule.tables.join(", ");
        tracing::info!(
            "Fetching records for {:?} tables using custom query: {}",
            rule.tables,
            rule.query
        );
        let started = Instant::now();
        let schema = Some(self.settings.schema.as_str());
        let result = async {
            let keys = match &rule.id_columns {
                Some(columns) => map_column_names(columns, schema, &rule.tables),
                None => {
                    let mut raw = Vec::new();
                    for table in &rule.tables {
                        raw.extend(self.primary_key(client, table).await?);
                    }
                    map_column_names(&raw, schema, &rule.tables)
                }
            };
            if keys.is_empty() {
                let message = format!(
                    "Skipping tables {label} from database {} since no primary key is associated with them. Assign primary key to the tables to index it in the next sync interval.",
                    self.settings.database
                );
                tracing::warn!("{message}");
                self.notes.push("skipped_tables", &label, &message);
                return Ok(Some(0));
            }
            let table_value = Value::from(rule.tables.clone());
            let (read, _) = self
                .read_mapped_keys(client, &rule.tables, &rule.query, None, &keys, commit_timestamps, table_value, |rows| {
                    self.notes.table(&label, "reading", rows, started.elapsed(), Some("advanced rule"))
                }, out)
                .await?;
            Ok(Some(read))
        }
        .await;
        self.settle(&label, started, result, out).await
    }

    /// Notes how a table (or query) ended; only a lost connection or a stopped engine fails
    /// the sync, as in Python. A table (or query) the server refused (missing, no privilege,
    /// a bad statement) goes on with a warning as in Python, but is also sent as an
    /// unreadable record: its documents may be any of those indexed, so a full sync deletes
    /// nothing (Python's would delete all of that table's documents).
    async fn settle(
        &self,
        name: &str,
        started: Instant,
        result: Result<Option<u64>, ReadError>,
        out: &ItemSender,
    ) -> Result<(), SourceError> {
        match result {
            Ok(Some(rows)) => {
                tracing::info!("Found {rows} records from table '{name}'");
                self.notes
                    .table(name, "done", rows, started.elapsed(), None);
                Ok(())
            }
            Ok(None) => {
                let message = self.no_key_warning(name);
                tracing::warn!("{message}");
                self.notes.push("skipped_tables", name, &message);
                self.notes.table(
                    name,
                    "skipped",
                    0,
                    started.elapsed(),
                    Some("no primary key"),
                );
                Ok(())
            }
            Err(ReadError::Statement(reason)) => {
                let message = format!(
                    "Something went wrong while fetching document for table '{name}'. Error: {reason}"
                );
                tracing::warn!("{message}");
                self.notes.push("failed_tables", name, &reason);
                self.notes
                    .table(name, "failed", 0, started.elapsed(), Some(&reason));
                out.send(unreadable_table(name, &message, &reason)).await
            }
            Err(ReadError::Fatal(e)) => {
                if let SourceError::Failed(reason) | SourceError::Unavailable(reason) = &e {
                    self.notes.push("failed_tables", name, reason);
                }
                Err(e)
            }
        }
    }

    /// The primary key's columns, in key order (`table_primary_key`).
    async fn primary_key(&self, client: &Client, table: &str) -> Result<Vec<String>, ReadError> {
        let rows = client
            .query(
                "SELECT a.attname::text AS c FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 JOIN pg_class t ON t.oid = i.indrelid \
                 JOIN pg_constraint c ON c.conindid = i.indexrelid \
                 WHERE i.indrelid = $1::text::regclass AND t.relkind = 'r' AND c.contype = 'p' \
                 ORDER BY array_position(i.indkey, a.attnum)",
                &[&qualified(&self.settings.schema, table)],
            )
            .await
            .map_err(ReadError::from)?;
        let keys: Result<Vec<String>, _> = rows.iter().map(|r| r.try_get::<_, String>(0)).collect();
        let keys = keys.map_err(ReadError::from)?;
        tracing::debug!("Found primary keys for table '{table}': {keys:?}");
        Ok(keys)
    }

    /// The query of one table: every row, or with `cursor_column` in an incremental sync the
    /// rows above the saved value, and the SQL of the largest value read. A table without
    /// the column, or whose column has no order to resume from, is read whole by every
    /// sync, with a note.
    async fn cursor_query(
        &self,
        client: &Client,
        table: &str,
        from: &str,
    ) -> Result<(String, Option<CursorSql>), ReadError> {
        let whole = format!("SELECT * FROM {from}");
        let Some(cursors) = &self.cursors else {
            return Ok((whole, None));
        };
        let read = cursors.read_for(table);
        let Some(column) = read.column() else {
            return Ok((whole, None));
        };
        let row = client
            .query_opt(
                "SELECT format_type(a.atttypid, a.atttypmod), t.typcategory::text \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1::text::regclass AND a.attname = $2 \
                 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&from, &column],
            )
            .await?;
        // Only a type with an order to resume from (numbers, dates and times, text): `MAX`
        // of a json, uuid, bool or geometric column is an error, which would make every
        // table unreadable, full syncs included.
        let problem = match &row {
            None => Some(super::no_cursor_column(table, column)),
            Some(row) => {
                let category: String = row.try_get(1)?;
                (!matches!(category.as_str(), "N" | "D" | "S")).then(|| {
                    let type_name: String = row.try_get(0).unwrap_or_default();
                    super::unordered_cursor_column(table, column, &type_name)
                })
            }
        };
        let (Some(row), None) = (row, problem.as_ref()) else {
            let message = problem.unwrap_or_default();
            // Read whole, in an incremental sync too: its rows cannot be told new from old,
            // and an incremental sync deletes nothing, so upserting them all is right.
            self.notes
                .push("tables_without_cursor_column", table, &message);
            return Ok((whole, None));
        };
        let column_type: String = row.try_get(0)?;
        let quoted = quote_ident(column);
        Ok(match read {
            CursorRead::After { after, .. } => {
                // The saved text cast back to the column's own type: compared as the server
                // orders that type, not as text. `>=`, not `>`: a row committed after the
                // last read with a value equal to the saved one (a second-precision
                // timestamp, `now()` of a transaction that began earlier) is read; the rows
                // at the boundary are sent again, which an upsert makes harmless.
                let above = format!("{quoted} >= CAST($1::text AS {column_type})");
                (
                    format!("{whole} WHERE {above}"),
                    Some(CursorSql {
                        after: Some(after),
                        largest: format!("SELECT MAX({quoted})::text FROM {from} WHERE {above}"),
                    }),
                )
            }
            _ => (
                whole,
                Some(CursorSql {
                    after: None,
                    largest: format!("SELECT MAX({quoted})::text FROM {from}"),
                }),
            ),
        })
    }

    /// Streams a query's rows as documents in one REPEATABLE READ, read-only transaction,
    /// through a portal fetched `rows_per_fetch` rows at a time. With a cursor, also the
    /// largest cursor value of the rows read, in the same snapshot.
    #[allow(clippy::too_many_arguments)]
    async fn read_mapped_keys(
        &self,
        client: &mut Client,
        tables: &[String],
        query: &str,
        cursor: Option<&CursorSql>,
        keys: &[String],
        commit_timestamps: bool,
        table_value: Value,
        progress: impl Fn(u64),
        out: &ItemSender,
    ) -> Result<(u64, Option<String>), ReadError> {
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let after = cursor.and_then(|c| c.after.as_ref());
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = after
            .iter()
            .map(|a| *a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        // First in the transaction, so it sees the snapshot the rows are read from.
        let largest = match cursor {
            Some(c) => tx
                .query_one(&c.largest, &params)
                .await?
                .try_get::<_, Option<String>>(0)?,
            None => None,
        };
        let timestamp = if commit_timestamps {
            let mut latest: Option<String> = None;
            for table in tables {
                let sql = format!(
                    "SELECT MAX(pg_xact_commit_timestamp(xmin)) FROM {}",
                    qualified(&self.settings.schema, table)
                );
                let row = tx.query_one(&sql, &[]).await?;
                let raw: Raw = row.try_get(0)?;
                let ts = pg_values::commit_timestamp(raw.0)
                    .map_err(|e| ReadError::Fatal(SourceError::Failed(e.to_string())))?;
                // Same text form and UTC throughout, so the text order is the time order.
                latest = latest.max(ts);
            }
            latest.unwrap_or_else(iso_utc_now)
        } else {
            iso_utc_now()
        };
        let Some(plan) = self.plan(&tx, tables, query, keys).await? else {
            let message = format!(
                "Skipping query {query} for tables {} as primary key column or unique ID column name is not present in query.",
                tables.join(", ")
            );
            tracing::warn!("{message}");
            self.notes
                .push("skipped_tables", &tables.join(", "), &message);
            return Ok((0, None));
        };
        let frame = DocFrame {
            tables,
            table_value,
            timestamp,
        };
        let portal = tx.bind(&plan.statement, &params).await?;
        let mut rows_read = 0u64;
        loop {
            let rows = tx
                .query_portal(&portal, self.settings.rows_per_fetch)
                .await?;
            let got = rows.len();
            for row in rows {
                let doc = self.document(&plan, &frame, &row)?;
                out.send(SourceItem::Upsert(doc))
                    .await
                    .map_err(ReadError::Fatal)?;
                rows_read += 1;
            }
            progress(rows_read);
            if got < self.settings.rows_per_fetch as usize {
                break;
            }
        }
        drop(portal);
        // Read-only: nothing to keep; ending it frees the snapshot.
        tx.rollback().await?;
        Ok((rows_read, largest))
    }

    /// Prepares the query, selecting as text the columns asyncpg gives as text (money, bit
    /// strings, enums, ranges, …). `None` when a key column is not among its columns.
    async fn plan(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        tables: &[String],
        query: &str,
        keys: &[String],
    ) -> Result<Option<ReadPlan>, ReadError> {
        let query = query.trim().trim_end_matches(';').trim_end();
        let probe = tx.prepare(query).await?;
        let raw_names: Vec<String> = probe
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let schema = Some(self.settings.schema.as_str());
        let columns = map_column_names(&raw_names, schema, tables);
        // A key's value is the last column of that name, as Python's dict keeps the last.
        let mut key_positions = Vec::with_capacity(keys.len());
        for key in keys {
            match columns.iter().rposition(|c| c == key) {
                Some(p) => key_positions.push(p),
                None => return Ok(None),
            }
        }
        let statement = if probe
            .columns()
            .iter()
            .all(|c| pg_values::is_native(c.type_()))
        {
            probe
        } else {
            let select: Vec<String> = probe
                .columns()
                .iter()
                .map(|c| {
                    let name = quote_ident(c.name());
                    if pg_values::is_native(c.type_()) {
                        format!("q.{name}")
                    } else {
                        format!("q.{name}{} AS {name}", pg_values::text_cast(c.type_()))
                    }
                })
                .collect();
            tx.prepare(&format!("SELECT {} FROM ({query}) AS q", select.join(", ")))
                .await?
        };
        Ok(Some(ReadPlan {
            statement,
            columns: ColumnKeys::new(&columns),
            key_positions,
        }))
    }

    /// `row2doc`: the columns under their prefixed names, the id, and the metadata fields.
    fn document(
        &self,
        plan: &ReadPlan,
        frame: &DocFrame<'_>,
        row: &tokio_postgres::Row,
    ) -> Result<Document, ReadError> {
        let columns = row.columns();
        let mut fields = Fields::with_capacity(plan.columns.len() + 3);
        for (i, column) in columns.iter().enumerate().take(plan.columns.len()) {
            let raw: Raw = row.try_get(i)?;
            let value = pg_values::to_json(column.type_(), raw.0)
                .map_err(|e| ReadError::Fatal(SourceError::Failed(e.to_string())))?;
            plan.columns.set(&mut fields, i, value);
        }
        let mut key_values = Vec::with_capacity(plan.key_positions.len());
        for &p in &plan.key_positions {
            let raw: Raw = row.try_get(p)?;
            key_values.push(
                pg_values::to_id_text(columns[p].type_(), raw.0)
                    .map_err(|e| ReadError::Fatal(SourceError::Failed(e.to_string())))?,
            );
        }
        let id = fit_id(format!(
            "{}_{}_{}",
            self.settings.database,
            self.settings.schema,
            key_id(frame.tables, key_values)
        ));
        fields.insert("database", Value::from(self.settings.database.clone()));
        fields.insert("table", frame.table_value.clone());
        fields.insert("schema", Value::from(self.settings.schema.clone()));
        Ok(Document {
            id,
            timestamp: Some(frame.timestamp.clone()),
            fields,
            content: None,
        })
    }
}

/// How reading one table (or query) failed.
#[derive(Debug)]
enum ReadError {
    /// The statement was refused (missing table, bad query, no privilege): skip it.
    Statement(String),
    /// Anything else (the connection, the engine): the sync fails.
    Fatal(SourceError),
}

impl From<tokio_postgres::Error> for ReadError {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_statement_error(&e) {
            ReadError::Statement(pg_error(&e))
        } else {
            ReadError::Fatal(SourceError::Failed(pg_error(&e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::validate_update;
    use crate::sources::database::parse_advanced_rules;
    use serde_json::json;

    #[test]
    fn fields_are_pythons() {
        let config = default_configuration();
        let keys: Vec<_> = config
            .fields_in_order()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "host",
                "port",
                "username",
                "password",
                "database",
                "schema",
                "tables",
                "fetch_size",
                "retry_count",
                "ssl_enabled",
                "ssl_ca"
            ]
        );
        let f = &config.0;
        assert_eq!(f["tables"].value, json!("*"));
        assert_eq!(f["tables"].field_type, FieldType::List);
        assert_eq!(f["tables"].display, DisplayType::Textarea);
        assert_eq!(f["fetch_size"].default_value, json!(50));
        assert!(!f["fetch_size"].required);
        assert_eq!(f["fetch_size"].ui_restrictions, ["advanced"]);
        assert_eq!(f["retry_count"].default_value, json!(3));
        assert_eq!(f["ssl_enabled"].value, json!(false));
        assert_eq!(f["ssl_enabled"].label, "Enable SSL verification");
        assert_eq!(f["ssl_ca"].depends_on[0].field, "ssl_enabled");
        assert!(f["password"].sensitive);
        assert!(f["host"].required && f["ssl_ca"].required);
        // A new connector needs host, port, … before it can run; the SSL certificate only
        // once SSL is on, the advanced fields never.
        let problems: Vec<String> = validate_update(&config, &serde_json::Map::new())
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(
            problems,
            ["host", "port", "username", "password", "database", "schema"]
        );
    }

    #[test]
    fn the_missing_tables_message_is_pythons() {
        let rules =
            parse_advanced_rules(&json!([{"tables": ["b", "a", "x"], "query": "q"}])).unwrap();
        let missing = super::super::missing_tables(&rules, &["x".into()]);
        assert_eq!(
            <Settings as super::super::Flavor>::missing_message(&missing),
            "Tables not found or inaccessible: {'a', 'b'}."
        );
        assert!(
            super::super::missing_tables(&rules, &["a".into(), "b".into(), "x".into()]).is_empty()
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(
            qualified("public", "Mixed\"Case"),
            "\"public\".\"Mixed\"\"Case\""
        );
    }
}
