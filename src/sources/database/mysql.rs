//! The `mysql` source (MySQL and MariaDB): Elastic's catalog connector of that name,
//! natively. The same configuration fields (`user`, not `username`), the same documents (raw
//! column names plus `Table`, ids `{sorted tables}_{key values}`), the same advanced rules.
//!
//! Where it differs, on purpose:
//! - each table is read in one consistent-snapshot, read-only transaction, by keyset pages on
//!   the primary key (as Python's table reads, but in one snapshot), or, in an incremental
//!   read (`cursor_column`, syncdeck's own) of a table with an index of the cursor column
//!   alone or followed by the key (see `pages_in_cursor_order`), on the cursor column and
//!   then the key;
//!   advanced-rule queries are streamed once in such a transaction instead of Python's
//!   `LIMIT … OFFSET` pages;
//! - `TIME` columns become `HH:MM:SS` (Python's bulk serialisation raises on the `timedelta`
//!   its driver gives), NaN and infinities become null;
//! - `validate_config`'s database check connects without a database and then `USE`s it, so
//!   its message ("The database '…' is either not present or not accessible …") is the one
//!   shown (Python's pool, opened with the database, fails before reaching it);
//! - with `ssl_enabled` the server certificate is verified against `ssl_ca` (rustls), and
//!   without it there is no TLS.

use super::{
    AdvancedRule, CursorRead, CursorState, RetryPlan, SyncNotes, configured_tables, fit_id,
    is_wildcard, iso_utc_now, json_float, key_id, pem_format, py_bytes_repr, py_float,
    unreadable_table, utf8_dropping_invalid,
};
use crate::model::ConfigField;
use crate::model::{Configuration, Dependency, DisplayType, FieldType};
use crate::sources::database::postgresql::catalog_field;
use crate::sources::fields::{bool_setting, int_setting, str_setting};
use crate::sources::{
    ColumnKeys, DataSource, Document, Fields, ItemSender, SourceError, SourceItem, SourceNotes,
    SyncMode,
};
use async_trait::async_trait;
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, OptsBuilder, Row, SslOpts, Value as My};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Python's `DEFAULT_FETCH_SIZE` for this connector.
pub const DEFAULT_FETCH_SIZE: i64 = 5000;
/// Python's `RETRIES`.
pub const RETRIES: i64 = 3;

/// `MySqlDataSource.get_default_configuration()`, field for field.
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
    put("user", catalog_field("Username", 3, FieldType::Str));
    put(
        "password",
        ConfigField {
            sensitive: true,
            ..catalog_field("Password", 4, FieldType::Str)
        },
    );
    put("database", catalog_field("Database", 5, FieldType::Str));
    put(
        "tables",
        ConfigField {
            display: DisplayType::Textarea,
            value: Value::String("*".into()),
            ..catalog_field("Comma-separated list of tables", 6, FieldType::List)
        },
    );
    put(
        "ssl_enabled",
        ConfigField {
            display: DisplayType::Toggle,
            value: Value::Bool(false),
            ..catalog_field("Enable SSL", 7, FieldType::Bool)
        },
    );
    put(
        "ssl_ca",
        ConfigField {
            depends_on: vec![Dependency {
                field: "ssl_enabled".into(),
                value: Value::Bool(true),
            }],
            ..catalog_field("SSL certificate", 8, FieldType::Str)
        },
    );
    put(
        "fetch_size",
        ConfigField {
            default_value: Value::from(DEFAULT_FETCH_SIZE),
            display: DisplayType::Numeric,
            required: false,
            ui_restrictions: vec!["advanced".into()],
            ..catalog_field("Rows fetched per request", 9, FieldType::Int)
        },
    );
    put(
        "retry_count",
        ConfigField {
            default_value: Value::from(RETRIES),
            display: DisplayType::Numeric,
            required: false,
            ui_restrictions: vec!["advanced".into()],
            ..catalog_field("Retries per request", 10, FieldType::Int)
        },
    );
    config
}

/// The `mysql` service type.
pub struct MysqlFactory;

impl super::DatabaseType for MysqlFactory {
    type Flavor = Settings;
    const SERVICE_TYPE: &'static str = "mysql";
    const DISPLAY_NAME: &'static str = "MySQL";
    const CURSOR_ORDER: i64 = 11;

    fn default_configuration() -> Configuration {
        default_configuration()
    }
}

impl super::Flavor for Settings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        Settings::from_config(config)
    }

    async fn present_tables(&self) -> Result<Vec<String>, String> {
        let mut conn = self.connect().await?;
        let tables = all_tables(&mut conn, &self.database).await;
        let _ = conn.disconnect().await;
        tables
    }

    fn missing_message(missing: &[String]) -> String {
        format!("Tables not found or inaccessible: {}.", missing.join(", "))
    }

    fn source(self, rules: Vec<AdvancedRule>) -> Box<dyn DataSource> {
        Box::new(MysqlSource {
            settings: self,
            rules,
            conn: None,
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
    tables: Vec<String>,
    fetch_size: u64,
    retry: RetryPlan,
    ssl_ca: Option<String>,
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
        let port = int_setting(config, "port", 3306)?;
        let port = u16::try_from(port)
            .map_err(|_| config_error("port", format!("'{port}' is not a port number")))?;
        let fetch_size = int_setting(config, "fetch_size", DEFAULT_FETCH_SIZE)?;
        let retry_count = int_setting(config, "retry_count", RETRIES)?;
        let ssl_ca = if bool_setting(config, "ssl_enabled", false)? {
            let pem = pem_format(&str_setting(config, "ssl_ca", ""));
            if pem.is_empty() {
                return Err(config_error("ssl_ca", "holds no PEM certificate"));
            }
            // Checked here, so a bad certificate is a configuration error, not a sync's.
            super::tls_client_config(&pem).map_err(|reason| config_error("ssl_ca", reason))?;
            Some(pem)
        } else {
            None
        };
        let password = match config.effective_value("password") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Ok(Self {
            host: str_setting(config, "host", ""),
            port,
            user: str_setting(config, "user", ""),
            password,
            database: str_setting(config, "database", ""),
            tables: configured_tables(config.effective_value("tables")),
            fetch_size: fetch_size.clamp(1, 1_000_000) as u64,
            retry: RetryPlan::new(retry_count),
            ssl_ca,
            cursor_column: super::cursor_column(config),
        })
    }

    fn opts(&self) -> OptsBuilder {
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .prefer_socket(false)
            .stmt_cache_size(Some(16));
        if let Some(pem) = &self.ssl_ca {
            // Only the configured CA: not the built-in roots too.
            let ssl = SslOpts::default()
                .with_root_certs(vec![pem.clone().into_bytes().into()])
                .with_disable_built_in_roots(true);
            opts = opts.ssl_opts(Some(ssl));
        }
        opts
    }

    /// A connection (no database selected yet), with retries, then the database `USE`d.
    async fn connect(&self) -> Result<Conn, String> {
        let mut conn = self
            .retry
            .run(
                || async { Conn::new(self.opts()).await.map_err(|e| my_error(&e)) },
                |_| false,
            )
            .await
            .map_err(|e| format!("Can't connect to MySQL on {}. {e}", self.host))?;
        if conn
            .query_drop(format!("USE {}", quote_ident(&self.database)))
            .await
            .is_err()
        {
            return Err(format!(
                "The database '{}' is either not present or not accessible for the user '{}'.",
                self.database, self.user
            ));
        }
        Ok(conn)
    }
}

fn my_error(e: &mysql_async::Error) -> String {
    e.to_string()
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

async fn all_tables(conn: &mut Conn, database: &str) -> Result<Vec<String>, String> {
    let rows: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (database,),
        )
        .await
        .map_err(|e| my_error(&e))?;
    Ok(rows)
}

/// A running `mysql` sync.
pub struct MysqlSource {
    settings: Settings,
    rules: Vec<AdvancedRule>,
    conn: Option<Conn>,
    notes: Arc<SyncNotes>,
    /// With `cursor_column`: where this sync starts and the largest values it read.
    cursors: Option<CursorState>,
}

/// One column of a secondary index, as `INFORMATION_SCHEMA.STATISTICS` shows it.
#[derive(Debug, Clone, PartialEq)]
struct IndexColumn {
    name: String,
    /// Not a prefix of the column (`SUB_PART` is null).
    whole: bool,
    /// `COLLATION` is `A`.
    ascending: bool,
}

/// Whether an InnoDB secondary index of these columns (in order) yields rows in the order
/// (`cursor`, then `keys`, the primary key's columns in its index order): every column whole
/// and ascending, the cursor first, then none or the key's first columns in the key's order.
/// InnoDB appends the key's remaining columns to every secondary index entry, so the index
/// `(updated, a)` of a table keyed by `(a, b)` is in (updated, a, b) order; `(updated, b)`
/// is not, nor is `(updated, title)`. Names compare without case, as MySQL's do.
fn serves_cursor_order(index: &[IndexColumn], cursor: &str, keys: &[&str]) -> bool {
    let Some((first, rest)) = index.split_first() else {
        return false;
    };
    index.iter().all(|c| c.whole && c.ascending)
        && first.name.eq_ignore_ascii_case(cursor)
        && rest.len() <= keys.len()
        && rest
            .iter()
            .zip(keys)
            .all(|(c, key)| c.name.eq_ignore_ascii_case(key))
}

/// The cursor part of one table's read: the condition on the cursor column (its one `?`
/// is `after`), and the SQL of the largest value among the rows read.
struct CursorSql {
    condition: Option<(String, String)>,
    largest: String,
    /// A TIMESTAMP column: `largest` answers seconds since the epoch, saved as UTC text
    /// (see [`timestamp_cursor`]).
    in_utc: bool,
    /// With a condition, when an index serves it (`MysqlSource::pages_in_cursor_order`): the
    /// cursor column, first in the pages' order, so an incremental read touches only the
    /// rows at or after the saved value instead of walking the whole primary key.
    leading: Option<KeysetKey>,
}

/// One column of a keyset page's order: its name and the SQL that stands for a value of it
/// (`?`, or a cast to the column's type).
#[derive(Debug, Clone, PartialEq)]
struct KeysetKey {
    name: String,
    placeholder: String,
    /// A TIMESTAMP column: stored and ordered in UTC, read and compared in the session's
    /// time zone. Where clocks go back, an hour of local times repeats, and a value read
    /// there compares as its other instant: `ts > '01:00'` after the first 01:00 skipped
    /// every row up to the second one (seen on MariaDB 10.11 in America/New_York). A table
    /// whose pages order by such a column is paged by position instead (see `read_table`).
    local_time: bool,
}

#[cfg(test)]
impl KeysetKey {
    fn plain(name: &str) -> Self {
        Self {
            name: name.to_string(),
            placeholder: "?".into(),
            local_time: false,
        }
    }
}

#[async_trait]
impl DataSource for MysqlSource {
    /// Python's `ping` and `validate_config` remote checks: the server answers, the database
    /// is there for this user, and so is every configured table.
    async fn ping(&mut self) -> Result<(), SourceError> {
        let mut conn = self
            .settings
            .connect()
            .await
            .map_err(SourceError::Unavailable)?;
        conn.ping()
            .await
            .map_err(|e| SourceError::Unavailable(my_error(&e)))?;
        let tables = self.tables(&mut conn).await?;
        let mut inaccessible = Vec::new();
        for table in &tables {
            let probe = format!("SELECT 1 FROM {} LIMIT 1", quote_ident(table));
            if conn.query_drop(probe).await.is_err() {
                inaccessible.push(table.clone());
            }
        }
        if !inaccessible.is_empty() {
            return Err(SourceError::Unavailable(format!(
                "The tables '{}' are either not present or not accessible for user '{}'.",
                inaccessible.join(", "),
                self.settings.user
            )));
        }
        self.conn = Some(conn);
        Ok(())
    }

    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self
                .settings
                .connect()
                .await
                .map_err(SourceError::Unavailable)?,
        };
        // The server too: a connector pointed at another server with the same database
        // name must not resume from this one's values. And the session's time zone, in which
        // TIMESTAMP values are written and compared: a saved value read back in another
        // zone would skip (or repeat) hours of rows, so a change reads the tables whole once.
        let time_zone: Option<Vec<u8>> = conn
            .query_first("SELECT @@session.time_zone")
            .await
            .ok()
            .flatten();
        let scope = format!(
            "{}:{}/{} time_zone={}",
            self.settings.host,
            self.settings.port,
            self.settings.database,
            String::from_utf8_lossy(&time_zone.unwrap_or_default())
        );
        self.cursors = CursorState::start(
            self.settings.cursor_column.as_deref(),
            &scope,
            &mode,
            &self.notes,
        );
        // A streamed query waits for the engine; the server must not give up on it meanwhile.
        let _ = conn
            .query_drop("SET SESSION net_write_timeout = 3600")
            .await;
        self.notes.set(
            "timestamps",
            Value::from("_timestamp is each table's UPDATE_TIME, or the time it was read when the server has none"),
        );
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
                self.sync_query(&mut conn, rule, &out).await?;
            }
        } else {
            let tables = self.tables(&mut conn).await?;
            if tables.is_empty() {
                // A database this user sees no table in is not an empty source: a full sync
                // that deleted every document on it would empty the index.
                let message = format!("Fetched 0 tables for database: {}", self.settings.database);
                tracing::warn!("{message}");
                self.notes.set("warning", Value::from(message.clone()));
                out.send(unreadable_table("*", &message, "no table matched"))
                    .await?;
            }
            for table in &tables {
                self.sync_table(&mut conn, table, &out).await?;
            }
        }
        let _ = conn.disconnect().await;
        Ok(self.cursors.as_ref().map(CursorState::finish))
    }

    fn notes(&self) -> Option<Arc<dyn SourceNotes>> {
        Some(self.notes.clone())
    }
}

/// The column types whose text is a decimal number (Python's `Decimal`, sent as a float).
fn is_decimal(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL
    )
}

/// A column pymysql reads as `bytes`: a string, blob or bit column in the binary character
/// set (63), which BINARY, VARBINARY, the BLOBs and BIT have (decimals and dates have it too,
/// hence the type check).
fn is_binary(column: &Column) -> bool {
    column.character_set() == 63
        && matches!(
            column.column_type(),
            ColumnType::MYSQL_TYPE_STRING
                | ColumnType::MYSQL_TYPE_VAR_STRING
                | ColumnType::MYSQL_TYPE_VARCHAR
                | ColumnType::MYSQL_TYPE_TINY_BLOB
                | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
                | ColumnType::MYSQL_TYPE_LONG_BLOB
                | ColumnType::MYSQL_TYPE_BLOB
                | ColumnType::MYSQL_TYPE_BIT
        )
}

fn is_date_only(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
    )
}

/// A value as the Python connector writes it: its driver's Python object, through the
/// framework's `serialize`.
pub fn to_json(column: &Column, value: &My) -> Value {
    match value {
        My::NULL => Value::Null,
        My::Int(i) => Value::from(*i),
        My::UInt(u) => Value::from(*u),
        // The text protocol Python uses sends a float's shortest text ("1.1"), not its f32
        // widened (1.100000023841858).
        My::Float(f) => json_float(format!("{f}").parse::<f64>().unwrap_or(f64::NAN)),
        My::Double(d) => json_float(*d),
        My::Bytes(b) if is_decimal(column.column_type()) => json_float(
            String::from_utf8_lossy(b)
                .parse::<f64>()
                .unwrap_or(f64::NAN),
        ),
        My::Bytes(b) => Value::String(utf8_dropping_invalid(b)),
        My::Date(..) => Value::String(date_text(column, value, 'T')),
        My::Time(neg, days, h, m, s, us) => {
            let hours = *days as u64 * 24 + *h as u64;
            let sign = if *neg { "-" } else { "" };
            Value::String(if *us == 0 {
                format!("{sign}{hours:02}:{m:02}:{s:02}")
            } else {
                format!("{sign}{hours:02}:{m:02}:{s:02}.{us:06}")
            })
        }
    }
}

/// A date or date-time as Python's `isoformat()` (`sep` 'T') or `str()` (`sep` ' '). A date
/// Python's `date` cannot hold (the zero date, a zero month or day, year 0) pymysql leaves as
/// the text the server sent: `0000-00-00 00:00:00`, `2024-02-00 01:02:03.500000` (as many
/// fraction digits as the column has).
fn date_text(column: &Column, value: &My, sep: char) -> String {
    let My::Date(y, mo, d, h, mi, s, us) = value else {
        return String::new();
    };
    if is_date_only(column.column_type()) {
        return format!("{y:04}-{mo:02}-{d:02}");
    }
    let valid = *y >= 1
        && chrono::NaiveDate::from_ymd_opt(i32::from(*y), u32::from(*mo), u32::from(*d)).is_some();
    if !valid {
        let digits = u32::from(column.decimals().min(6));
        let fraction = if digits == 0 {
            String::new()
        } else {
            let scaled = *us / 10u32.pow(6 - digits);
            format!(".{scaled:0width$}", width = digits as usize)
        };
        return format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{fraction}");
    }
    if *us == 0 {
        format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}.{us:06}")
    }
}

/// A key value as Python's `str()` shows the driver's object (for ids).
pub fn to_id_text(column: &Column, value: &My) -> Option<String> {
    Some(match value {
        My::NULL => return None,
        My::Int(i) => i.to_string(),
        My::UInt(u) => u.to_string(),
        My::Float(f) => py_float(format!("{f}").parse::<f64>().unwrap_or(f64::NAN)),
        My::Double(d) => py_float(*d),
        // pymysql gives `bytes` for a binary column (its `str()` is the repr,
        // `b'\x8f\x01'`) and `str` for a text one; both arrive here as bytes.
        My::Bytes(b) if is_binary(column) => py_bytes_repr(b),
        My::Bytes(b) => utf8_dropping_invalid(b),
        My::Date(..) => date_text(column, value, ' '),
        My::Time(neg, days, h, m, s, us) => {
            // timedelta's str: "1 day, 2:03:04[.ffffff]". A negative one is normalised to
            // negative days and a positive rest: -01:02:03 is "-1 day, 22:57:57".
            let magnitude = ((i64::from(*days) * 24 + i64::from(*h)) * 3600
                + i64::from(*m) * 60
                + i64::from(*s))
                * 1_000_000
                + i64::from(*us);
            let total = if *neg { -magnitude } else { magnitude };
            const DAY: i64 = 86_400_000_000;
            let (days, rest) = (total.div_euclid(DAY), total.rem_euclid(DAY));
            let (secs, us) = (rest / 1_000_000, rest % 1_000_000);
            let mut text = String::new();
            if days != 0 {
                let plural = if days.abs() == 1 { "" } else { "s" };
                text.push_str(&format!("{days} day{plural}, "));
            }
            text.push_str(&format!(
                "{}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ));
            if us != 0 {
                text.push_str(&format!(".{us:06}"));
            }
            text
        }
    })
}

/// How a table or query read ended, when not by a lost connection.
enum Read {
    Rows(u64),
    NoKey,
    /// Missing, or not readable by this user: why.
    Unreadable(String),
}

impl MysqlSource {
    /// `get_tables_to_fetch`: every table for the wildcard, else the configured ones.
    async fn tables(&self, conn: &mut Conn) -> Result<Vec<String>, SourceError> {
        if is_wildcard(&self.settings.tables) {
            all_tables(conn, &self.settings.database)
                .await
                .map_err(SourceError::Failed)
        } else {
            Ok(self.settings.tables.clone())
        }
    }

    /// The primary key's columns as keyset pages compare them: a DECIMAL one's value cast to
    /// its type (MySQL compares a DECIMAL with the text the driver sends as doubles, which
    /// tell 9007199254740995 from 9007199254740996 no more), the others as they are (the
    /// driver sends integers and times as such).
    async fn key_columns(
        &self,
        conn: &mut Conn,
        table: &str,
    ) -> Result<Vec<KeysetKey>, SourceError> {
        let rows: Vec<(String, String, String, Option<u64>)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_SCALE \
                 FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND COLUMN_KEY = 'PRI' ORDER BY ORDINAL_POSITION",
                (&self.settings.database, table),
            )
            .await
            .map_err(|e| SourceError::Failed(my_error(&e)))?;
        Ok(rows
            .into_iter()
            .map(|(name, data_type, column_type, scale)| {
                let placeholder = if matches!(
                    data_type.to_ascii_lowercase().as_str(),
                    "decimal" | "numeric"
                ) {
                    cursor_bound(&data_type, &column_type, scale)
                } else {
                    "?".into()
                };
                let local_time = data_type.eq_ignore_ascii_case("timestamp");
                KeysetKey {
                    name,
                    placeholder,
                    local_time,
                }
            })
            .collect())
    }

    /// The key's columns (from [`Self::key_columns`]) in the order of the primary key's index,
    /// which pages must follow for the index to serve them: a key declared in another order
    /// than its columns (`PRIMARY KEY (b, a)`) made every page sort the whole table. The
    /// table's order when the catalogue does not tell.
    async fn in_key_index_order(
        &self,
        conn: &mut Conn,
        table: &str,
        columns: &[KeysetKey],
    ) -> Result<Vec<KeysetKey>, SourceError> {
        let order: Vec<String> = match conn
            .exec(
                "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' \
                 ORDER BY SEQ_IN_INDEX",
                (&self.settings.database, table),
            )
            .await
        {
            Ok(order) => order,
            // Only the pages' speed depends on it.
            Err(e @ mysql_async::Error::Server(_)) => {
                tracing::warn!(
                    table,
                    error = %my_error(&e),
                    "cannot read the primary key's index order: paging in the columns' order"
                );
                return Ok(columns.to_vec());
            }
            Err(e) => return Err(SourceError::Failed(my_error(&e))),
        };
        let ordered: Vec<KeysetKey> = order
            .iter()
            .filter_map(|name| columns.iter().find(|k| k.name == *name).cloned())
            .collect();
        // Exactly a reordering of the key, or the table's order: pages in an order that is
        // not the whole key would skip rows.
        let whole = ordered.len() == columns.len()
            && columns
                .iter()
                .all(|c| ordered.iter().filter(|o| o.name == c.name).count() == 1);
        Ok(if whole { ordered } else { columns.to_vec() })
    }

    /// The primary key's column names, in the table's column order (Python's id order).
    async fn primary_key(&self, conn: &mut Conn, table: &str) -> Result<Vec<String>, SourceError> {
        Ok(self
            .key_columns(conn, table)
            .await?
            .into_iter()
            .map(|k| k.name)
            .collect())
    }

    /// `UPDATE_TIME` of a table, as Python's `isoformat()` of the naive time pymysql gives.
    async fn last_update_time(
        &self,
        conn: &mut Conn,
        table: &str,
    ) -> Result<Option<String>, SourceError> {
        let row: Option<Row> = conn
            .exec_first(
                "SELECT UPDATE_TIME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.settings.database, table),
            )
            .await
            .map_err(|e| SourceError::Failed(my_error(&e)))?;
        Ok(row.and_then(|r| {
            let column = r.columns_ref().first()?.clone();
            match r.as_ref(0)? {
                My::NULL => None,
                v @ My::Date(..) => Some(date_text(&column, v, 'T')),
                My::Bytes(b) => Some(String::from_utf8_lossy(b).replacen(' ', "T", 1)),
                _ => None,
            }
        }))
    }

    async fn begin_snapshot(conn: &mut Conn) -> Result<(), SourceError> {
        conn.query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(|e| SourceError::Failed(my_error(&e)))?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(|e| SourceError::Failed(my_error(&e)))
    }

    async fn sync_table(
        &self,
        conn: &mut Conn,
        table: &str,
        out: &ItemSender,
    ) -> Result<(), SourceError> {
        let started = Instant::now();
        self.notes.table(table, "reading", 0, Duration::ZERO, None);
        let read = self.read_table(conn, table, started, out).await;
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                if let SourceError::Failed(reason) | SourceError::Unavailable(reason) = &e {
                    self.notes.push("failed_tables", table, reason);
                }
                return Err(e);
            }
        };
        match read {
            Read::Rows(rows) => self
                .notes
                .table(table, "done", rows, started.elapsed(), None),
            Read::Unreadable(reason) => {
                // Not Python's skip: the table's documents cannot be told from removed ones,
                // so the unreadable record keeps a full sync from deleting.
                let message = format!(
                    "Something went wrong while fetching document for table '{table}'. Error: {reason}"
                );
                tracing::warn!("{message}");
                self.notes.push("failed_tables", table, &reason);
                self.notes
                    .table(table, "failed", 0, started.elapsed(), Some(&reason));
                out.send(unreadable_table(table, &message, &reason)).await?;
            }
            Read::NoKey => {
                let message = format!(
                    "Skipping table {table} from database {} since no primary key is associated with it. Assign primary key to the table to index it in the next sync interval.",
                    self.settings.database
                );
                tracing::warn!("{message}");
                self.notes.push("skipped_tables", table, &message);
                self.notes.table(
                    table,
                    "skipped",
                    0,
                    started.elapsed(),
                    Some("no primary key"),
                );
            }
        }
        Ok(())
    }

    /// INFORMATION_SCHEMA shows only what the user has privileges on: a table that is
    /// missing, or whose key columns the user may not see, looks keyless there. `SHOW KEYS`
    /// tells those from a table that really has no primary key: it fails on a table the user
    /// has no privilege on (or that is missing), and on MySQL it lists a key whose columns
    /// are hidden. MariaDB hides those from `SHOW KEYS` too, so an empty answer is checked by
    /// reading the table's columns: a user who may not read every column (the key among
    /// them) cannot read the table, which is not a table without a key (skipped, and its
    /// documents deleted by a full sync).
    async fn why_no_key(&self, conn: &mut Conn, table: &str) -> Read {
        let from = format!(
            "{}.{}",
            quote_ident(&self.settings.database),
            quote_ident(table)
        );
        let show = format!("SHOW KEYS FROM {from} WHERE Key_name = 'PRIMARY'");
        match conn.query::<Row, _>(show).await {
            Err(e) => Read::Unreadable(my_error(&e)),
            Ok(rows) if rows.is_empty() => {
                match conn
                    .query_drop(format!("SELECT * FROM {from} LIMIT 0"))
                    .await
                {
                    Ok(()) => Read::NoKey,
                    Err(e) => Read::Unreadable(my_error(&e)),
                }
            }
            Ok(_) => Read::Unreadable(format!(
                "the primary key's columns of table {table} are not visible to user '{}'",
                self.settings.user
            )),
        }
    }

    /// Keyset pages on the primary key, in one snapshot; in an incremental read whose cursor
    /// column has an index that serves it, on the cursor column and then the key (see
    /// [`CursorSql`]).
    async fn read_table(
        &self,
        conn: &mut Conn,
        table: &str,
        started: Instant,
        out: &ItemSender,
    ) -> Result<Read, SourceError> {
        let key_columns = self.key_columns(conn, table).await?;
        let keys: Vec<&str> = key_columns.iter().map(|k| k.name.as_str()).collect();
        if keys.is_empty() {
            return Ok(self.why_no_key(conn, table).await);
        }
        // Asked before the snapshot's transaction, which then holds only the rows' reads.
        let key_order = self.in_key_index_order(conn, table, &key_columns).await?;
        // A user who sees the key but may not read every column (column privileges) cannot
        // read the table: the server's refusal is that table's, not the sync's.
        let probe = format!(
            "SELECT * FROM {}.{} LIMIT 0",
            quote_ident(&self.settings.database),
            quote_ident(table)
        );
        match conn.query_drop(probe).await {
            Ok(()) => {}
            Err(e @ mysql_async::Error::Server(_)) => return Ok(Read::Unreadable(my_error(&e))),
            Err(e) => return Err(SourceError::Failed(my_error(&e))),
        }
        let timestamp = self
            .last_update_time(conn, table)
            .await?
            .unwrap_or_else(iso_utc_now);
        let failed = |e: mysql_async::Error| SourceError::Failed(my_error(&e));
        let from = format!(
            "{}.{}",
            quote_ident(&self.settings.database),
            quote_ident(table)
        );
        let cursor = match self.cursor_sql(conn, table, &from, &key_order).await? {
            Ok(cursor) => cursor,
            Err(unreadable) => return Ok(unreadable),
        };
        Self::begin_snapshot(conn).await?;
        // First in the transaction, so it sees the snapshot the rows are read from.
        let largest = match &cursor {
            Some(c) => {
                // A TIMESTAMP cursor's largest-value query takes no parameter (see
                // `timestamp_cursor`).
                let params: Vec<My> = c
                    .condition
                    .iter()
                    .filter(|_| !c.in_utc)
                    .map(|(_, after)| My::from(after.as_str()))
                    .collect();
                // Bytes, not `String`: the driver's conversion panics on a value that is not
                // UTF-8 (a BINARY or BIT column's). Such a value cannot be saved as the
                // cursor's text: the table keeps its previous value, with a note.
                let row: Option<Option<Vec<u8>>> = conn
                    .exec_first(c.largest.as_str(), params)
                    .await
                    .map_err(failed)?;
                match row.flatten().map(String::from_utf8) {
                    Some(Ok(text)) if c.in_utc => epoch_to_utc(&text).or_else(|| {
                        tracing::warn!(table, value = %text, "a TIMESTAMP cursor's largest value is not seconds since the epoch: the cursor is not kept");
                        None
                    }),
                    Some(Ok(text)) => Some(text),
                    Some(Err(_)) => {
                        self.notes.push(
                            "tables_without_cursor_column",
                            table,
                            "its cursor_column's values are not text (a binary column): \
                             the cursor is not kept for it; choose a numeric or time column",
                        );
                        None
                    }
                    None => None,
                }
            }
            None => None,
        };
        let (above, after) = match cursor.as_ref().and_then(|c| c.condition.as_ref()) {
            Some((condition, after)) => {
                (format!("{condition} AND "), Some(My::from(after.as_str())))
            }
            None => (String::new(), None),
        };
        // The primary key's order, or the cursor's and then the key's (an InnoDB index on the
        // cursor column holds the key too, so that order needs no sort).
        let order_keys: Vec<KeysetKey> = cursor
            .as_ref()
            .and_then(|c| c.leading.clone())
            .into_iter()
            .chain(key_order)
            .collect();
        let order: Vec<String> = order_keys.iter().map(|k| quote_ident(&k.name)).collect();
        let order = order.join(", ");
        let first = format!(
            "SELECT * FROM {from} {} ORDER BY {order} LIMIT {}",
            if above.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", above.trim_end_matches(" AND "))
            },
            self.settings.fetch_size
        );
        // A key the session compares in local time cannot say where the last page ended
        // (see `KeysetKey::local_time`): such a table's pages go by position in the same
        // snapshot, as Python's `LIMIT … OFFSET` pages do. Each page then walks the rows
        // before it in the key's index: slower for big tables, never a skipped row.
        let by_position = order_keys.iter().any(|k| k.local_time);
        let next = if by_position {
            format!("{first} OFFSET ?")
        } else {
            format!(
                "SELECT * FROM {from} WHERE {above}({}) ORDER BY {order} LIMIT {}",
                keyset_condition(&order_keys),
                self.settings.fetch_size
            )
        };
        let tables = [table.to_string()];
        let mut last: Option<Vec<My>> = None;
        let mut rows_read = 0u64;
        loop {
            let mut result = match &last {
                None => conn
                    .exec_iter(first.as_str(), after.iter().cloned().collect::<Vec<My>>())
                    .await
                    .map_err(failed)?,
                Some(_) if by_position => {
                    let mut params: Vec<My> = after.iter().cloned().collect();
                    params.push(My::UInt(rows_read));
                    conn.exec_iter(next.as_str(), params)
                        .await
                        .map_err(failed)?
                }
                Some(values) => conn
                    .exec_iter(next.as_str(), keyset_params(after.as_ref(), values))
                    .await
                    .map_err(failed)?,
            };
            let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
            let names = ColumnKeys::new(columns.iter().map(|c| c.name_str()));
            // The keys' names are the table's own spelling (from its catalogue). The pages
            // go in `order_keys`' order; a document's id is its primary key's values in the
            // table's column order (`keys`), whatever the pages'.
            let find = |name: &str| names.iter().rposition(|n| n.as_str() == name);
            let positions: Option<Vec<usize>> = order_keys.iter().map(|k| find(&k.name)).collect();
            let key_positions: Option<Vec<usize>> = keys.iter().map(|k| find(k)).collect();
            let (Some(positions), Some(key_positions)) = (positions, key_positions) else {
                // An INVISIBLE key column: `SELECT *` does not carry it, so neither the
                // pages nor the documents' ids can be made. The table's record says so, and
                // keeps a full sync from deleting its documents.
                drop(result);
                conn.query_drop("COMMIT").await.map_err(failed)?;
                return Ok(Read::Unreadable(format!(
                    "the rows read from table {table} lack a column of their order ({order})"
                )));
            };
            let mut page = 0u64;
            let mut last_row: Option<Row> = None;
            while let Some(row) = result.next().await.map_err(failed)? {
                let doc = self.document(
                    &names,
                    &columns,
                    &row,
                    &key_positions,
                    &tables,
                    Value::from(table),
                    &timestamp,
                );
                out.send(SourceItem::Upsert(doc)).await?;
                page += 1;
                last_row = Some(row);
            }
            drop(result);
            rows_read += page;
            self.notes
                .table(table, "reading", rows_read, started.elapsed(), None);
            if page < self.settings.fetch_size {
                break;
            }
            let Some(row) = last_row else { break };
            last = Some(
                positions
                    .iter()
                    .filter_map(|p| row.as_ref(*p).cloned())
                    .collect(),
            );
        }
        conn.query_drop("COMMIT").await.map_err(failed)?;
        if let Some(cursors) = &self.cursors {
            cursors.read(table, largest);
        }
        Ok(Read::Rows(rows_read))
    }

    /// Whether an incremental read of `table` pages in the order of its cursor column
    /// (`column`, as the table spells it), then the key's (`key_order`, the primary key's
    /// index order), instead of the key's alone. That order reads only the rows the condition
    /// keeps, through an index that yields them in (cursor, key) order: an ascending
    /// whole-column B-tree index, in InnoDB (whose secondary indexes end with the primary
    /// key's columns they lack), that the optimizer may use, of the cursor column alone or
    /// followed by the key's first columns in the key's order (`(updated, id)`, the index
    /// DBAs add for such reads; see [`serves_cursor_order`]). With any other (none, a prefix,
    /// one with other columns, a descending one, another engine's, one set IGNORED or
    /// INVISIBLE), each page would sort every row the condition keeps, so the key's order
    /// stays; so it does for:
    /// - a TIMESTAMP column: its index is in UTC order, the comparisons in the session's time
    ///   zone, whose local times repeat when clocks go back; the keyset would skip rows;
    /// - an INVISIBLE column, which the rows read (`SELECT *`) do not carry.
    async fn pages_in_cursor_order(
        &self,
        conn: &mut Conn,
        table: &str,
        column: &str,
        data_type: &str,
        extra: &str,
        key_order: &[KeysetKey],
    ) -> Result<bool, SourceError> {
        if data_type.eq_ignore_ascii_case("timestamp")
            || extra.to_ascii_uppercase().contains("INVISIBLE")
        {
            return Ok(false);
        }
        let db = self.settings.database.as_str();
        // An index the optimizer is told to ignore serves nothing: MariaDB (10.6+) says so in
        // `IGNORED`, MySQL (8.0) in `IS_VISIBLE`; older servers have neither column (nor such
        // indexes). The first clause the server knows is the one.
        const USABLE: [&str; 3] = ["AND s.IGNORED = 'NO'", "AND s.IS_VISIBLE = 'YES'", ""];
        for usable in USABLE {
            // Every column of every usable secondary B-tree index that starts with the cursor
            // column, in order. Every table is named by constants: the server then opens
            // this table's definition only, not the catalogue of every database.
            let probe = conn
                .exec::<(String, Option<String>, i64, Option<String>), _, _>(
                    format!(
                        "SELECT s.INDEX_NAME, s.COLUMN_NAME, s.SUB_PART IS NULL, s.COLLATION \
                         FROM INFORMATION_SCHEMA.STATISTICS s \
                         WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? \
                           AND s.INDEX_TYPE = 'BTREE' AND s.INDEX_NAME <> 'PRIMARY' {usable} \
                           AND EXISTS (SELECT 1 FROM INFORMATION_SCHEMA.STATISTICS f \
                             WHERE f.TABLE_SCHEMA = ? AND f.TABLE_NAME = ? \
                               AND f.INDEX_NAME = s.INDEX_NAME AND f.SEQ_IN_INDEX = 1 \
                               AND f.COLUMN_NAME = ?) \
                           AND EXISTS (SELECT 1 FROM INFORMATION_SCHEMA.TABLES t \
                             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ? \
                               AND t.ENGINE = 'InnoDB') \
                         ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX"
                    ),
                    (db, table, db, table, column, db, table),
                )
                .await;
            match probe {
                Ok(rows) => {
                    let keys: Vec<&str> = key_order.iter().map(|k| k.name.as_str()).collect();
                    let mut indexes: Vec<(String, Vec<IndexColumn>)> = Vec::new();
                    for (index, name, whole, collation) in rows {
                        // A functional key part (MySQL 8.0.13+, `(LOWER(title))`) has no
                        // column name: an expression, never a whole column.
                        let part = IndexColumn {
                            whole: whole != 0 && name.is_some(),
                            name: name.unwrap_or_default(),
                            ascending: collation.as_deref() == Some("A"),
                        };
                        match indexes.last_mut() {
                            Some((last, parts)) if *last == index => parts.push(part),
                            _ => indexes.push((index, vec![part])),
                        }
                    }
                    return Ok(indexes
                        .iter()
                        .any(|(_, parts)| serves_cursor_order(parts, column, &keys)));
                }
                // ER_BAD_FIELD_ERROR: not this server's column; the next clause.
                Err(mysql_async::Error::Server(e)) if e.code == 1054 && !usable.is_empty() => {}
                // Only the pages' order depends on it: a server whose catalogue answers
                // otherwise reads in the key's order, and says so.
                Err(e @ mysql_async::Error::Server(_)) => {
                    tracing::warn!(
                        table,
                        error = %my_error(&e),
                        "cannot tell whether the cursor column has an index: paging on the key"
                    );
                    return Ok(false);
                }
                Err(e) => return Err(SourceError::Failed(my_error(&e))),
            }
        }
        Ok(false)
    }

    /// With `cursor_column`: the condition on it in an incremental sync with a saved value
    /// (the saved text cast to the column's type, so it compares as the server orders that
    /// type), and the SQL of the largest value read. A table that lacks the column, or whose
    /// column has no order to resume from, is read whole by every sync, with a note.
    async fn cursor_sql(
        &self,
        conn: &mut Conn,
        table: &str,
        from: &str,
        key_order: &[KeysetKey],
    ) -> Result<Result<Option<CursorSql>, Read>, SourceError> {
        let Some(cursors) = &self.cursors else {
            return Ok(Ok(None));
        };
        let read = cursors.read_for(table);
        let Some(column) = read.column().map(str::to_string) else {
            return Ok(Ok(None));
        };
        let column = column.as_str();
        // Also the column's own spelling (names match without case, the rows' columns carry
        // the table's) and whether `SELECT *` shows it (an INVISIBLE column is not).
        let row: Option<(String, String, Option<u64>, String, String)> = conn
            .exec_first(
                "SELECT DATA_TYPE, COLUMN_TYPE, NUMERIC_SCALE, COLUMN_NAME, EXTRA \
                 FROM INFORMATION_SCHEMA.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                (&self.settings.database, table, column),
            )
            .await
            .map_err(|e| SourceError::Failed(my_error(&e)))?;
        // Only a type with an order to resume from, compared exactly: integers, decimals,
        // dates and times, text (not floats, not binary or bit values, not JSON).
        let ordered = |data_type: &str| {
            matches!(
                data_type.to_ascii_lowercase().as_str(),
                "tinyint"
                    | "smallint"
                    | "mediumint"
                    | "int"
                    | "integer"
                    | "bigint"
                    | "decimal"
                    | "numeric"
                    | "datetime"
                    | "timestamp"
                    | "date"
                    | "time"
                    | "year"
                    | "char"
                    | "varchar"
                    | "tinytext"
                    | "text"
                    | "mediumtext"
                    | "longtext"
            )
        };
        let problem = match &row {
            None => Some(super::no_cursor_column(table, column)),
            Some((data_type, column_type, ..)) => (!ordered(data_type))
                .then(|| super::unordered_cursor_column(table, column, column_type)),
        };
        let (Some((data_type, column_type, scale, spelled, extra)), None) = (row, problem.as_ref())
        else {
            let message = problem.unwrap_or_default();
            // Read whole, in an incremental sync too: its rows cannot be told new from old,
            // and an incremental sync deletes nothing, so upserting them all is right.
            self.notes
                .push("tables_without_cursor_column", table, &message);
            return Ok(Ok(None));
        };
        let quoted = quote_ident(column);
        if data_type.eq_ignore_ascii_case("timestamp") {
            return Ok(Ok(Some(timestamp_cursor(&quoted, from, &read))));
        }
        // UTC text is what a TIMESTAMP column's cursor saves (see `timestamp_cursor`). On a
        // column altered to DATETIME it would compare as local time, hours off: read whole
        // once, and save the column's own value.
        let read = match read {
            CursorRead::After { column, after }
                if matches!(data_type.to_ascii_lowercase().as_str(), "datetime" | "date")
                    && utc_to_epoch(&after).is_some() =>
            {
                tracing::info!(
                    table,
                    "the saved cursor is a TIMESTAMP's UTC text: reading the table whole"
                );
                CursorRead::All { column }
            }
            read => read,
        };
        let bound = cursor_bound(&data_type, &column_type, scale);
        let largest = format!("SELECT CAST(MAX({quoted}) AS CHAR) FROM {from}");
        Ok(Ok(Some(match read {
            CursorRead::After { after, .. } => {
                // `>=`, not `>`: a row written after the last read in the same second (or
                // with the same value) as the saved one is read; the boundary rows are sent
                // again, harmless for an upsert.
                let condition = format!("{quoted} >= {bound}");
                let leading = if self
                    .pages_in_cursor_order(conn, table, &spelled, &data_type, &extra, key_order)
                    .await?
                {
                    // Never TIMESTAMP (see `pages_in_cursor_order`).
                    Some(KeysetKey {
                        name: spelled,
                        placeholder: bound,
                        local_time: false,
                    })
                } else {
                    None
                };
                CursorSql {
                    largest: format!("{largest} WHERE {condition}"),
                    condition: Some((condition, after)),
                    in_utc: false,
                    leading,
                }
            }
            _ => CursorSql {
                condition: None,
                largest,
                in_utc: false,
                leading: None,
            },
        })))
    }

    async fn sync_query(
        &self,
        conn: &mut Conn,
        rule: &AdvancedRule,
        out: &ItemSender,
    ) -> Result<(), SourceError> {
        let label = rule.tables.join(", ");
        let started = Instant::now();
        let mut keys = Vec::new();
        for table in &rule.tables {
            keys.extend(self.primary_key(conn, table).await?);
        }
        keys.sort();
        if let Some(columns) = &rule.id_columns {
            keys = columns.clone();
        }
        if keys.is_empty() {
            let message = format!(
                "Skipping tables {label} from database {} since no primary key is associated with them. Assign primary key to the tables to index it in the next sync interval.",
                self.settings.database
            );
            tracing::warn!("{message}");
            self.notes.push("skipped_tables", &label, &message);
            return Ok(());
        }
        let mut times = Vec::new();
        for table in &rule.tables {
            if let Some(t) = self.last_update_time(conn, table).await? {
                times.push(t);
            }
        }
        let timestamp = times.into_iter().max().unwrap_or_else(iso_utc_now);
        let failed = |e: mysql_async::Error| SourceError::Failed(my_error(&e));
        let query = rule
            .query
            .trim()
            .trim_end_matches(';')
            .trim_end()
            .to_string();
        Self::begin_snapshot(conn).await?;
        let mut result = conn.exec_iter(query.as_str(), ()).await.map_err(failed)?;
        let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        let names = ColumnKeys::new(columns.iter().map(|c| c.name_str()));
        if keys.iter().any(|k| !names.iter().any(|n| n == k)) {
            drop(result);
            let _ = conn.query_drop("COMMIT").await;
            let message = format!(
                "Skipping query {} for tables {label} as primary key column name/id_column is not present in query.",
                rule.query
            );
            tracing::warn!("{message}");
            self.notes.push("skipped_tables", &label, &message);
            return Ok(());
        }
        let positions: Vec<usize> = keys
            .iter()
            .filter_map(|k| names.iter().rposition(|n| n == k))
            .collect();
        let table_value = Value::from(rule.tables.clone());
        let mut rows_read = 0u64;
        while let Some(row) = result.next().await.map_err(failed)? {
            let doc = self.document(
                &names,
                &columns,
                &row,
                &positions,
                &rule.tables,
                table_value.clone(),
                &timestamp,
            );
            out.send(SourceItem::Upsert(doc)).await?;
            rows_read += 1;
            if rows_read.is_multiple_of(10_000) {
                self.notes.table(
                    &label,
                    "reading",
                    rows_read,
                    started.elapsed(),
                    Some("advanced rule"),
                );
            }
        }
        drop(result);
        conn.query_drop("COMMIT").await.map_err(failed)?;
        self.notes.table(
            &label,
            "done",
            rows_read,
            started.elapsed(),
            Some("advanced rule"),
        );
        Ok(())
    }

    /// `row2doc`: the columns by their own names, `_id`, `_timestamp` and `Table`.
    #[allow(clippy::too_many_arguments)]
    fn document(
        &self,
        names: &ColumnKeys,
        columns: &[Column],
        row: &Row,
        key_positions: &[usize],
        tables: &[String],
        table_value: Value,
        timestamp: &str,
    ) -> Document {
        let mut fields = Fields::with_capacity(names.len() + 1);
        for (i, name) in names.iter().enumerate() {
            // Python's `row2doc` overwrites a column named `_id` with the document's id, which
            // the framework then takes out of the source; Elasticsearch refuses `_id` in one.
            if name == "_id" {
                continue;
            }
            let value = row
                .as_ref(i)
                .map_or(Value::Null, |v| to_json(&columns[i], v));
            names.set(&mut fields, i, value);
        }
        let keys = key_positions
            .iter()
            .map(|&p| row.as_ref(p).and_then(|v| to_id_text(&columns[p], v)));
        let id = fit_id(key_id(tables, keys));
        fields.insert("Table", table_value);
        Document {
            id,
            timestamp: Some(timestamp.to_string()),
            fields,
            content: None,
        }
    }
}

/// `(k1 > ?) OR (k1 = ? AND k2 > ?) OR …`: the rows after the last one, in the keys' order,
/// in a form every MySQL and MariaDB version can use an index on the keys for.
fn keyset_condition(keys: &[KeysetKey]) -> String {
    let mut alternatives = Vec::with_capacity(keys.len());
    for (i, last) in keys.iter().enumerate() {
        let mut parts: Vec<String> = keys[..i]
            .iter()
            .map(|k| format!("{} = {}", quote_ident(&k.name), k.placeholder))
            .collect();
        parts.push(format!(
            "{} > {}",
            quote_ident(&last.name),
            last.placeholder
        ));
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    alternatives.join(" OR ")
}

/// The saved cursor text as a value of the column's type (`?` is the text): integers and
/// decimals exactly (a string compared with a number is compared as a double), times as
/// times; other types (text, floats) as they are.
fn cursor_bound(data_type: &str, column_type: &str, scale: Option<u64>) -> String {
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            if column_type.to_ascii_lowercase().contains("unsigned") {
                "CAST(? AS UNSIGNED)".into()
            } else {
                "CAST(? AS SIGNED)".into()
            }
        }
        // The column's own scale: up to 30 on MySQL, 38 on MariaDB. A smaller one rounds the
        // value (1e-38 to 0 at 30), and a keyset page would come back forever.
        "decimal" | "numeric" => format!("CAST(? AS DECIMAL(65, {}))", scale.unwrap_or(0).min(38)),
        "datetime" | "timestamp" => "CAST(? AS DATETIME(6))".into(),
        "date" => "CAST(? AS DATE)".into(),
        "time" => "CAST(? AS TIME(6))".into(),
        _ => "?".into(),
    }
}

/// The cursor of a TIMESTAMP column, kept in UTC. The session reads and compares such a
/// column in its time zone's local time, where an hour repeats when clocks go back: with a
/// saved `01:50` of the first such hour, a row written 30 minutes later, at `01:20` of the
/// second, compared below it, and the next incremental sync did not read it (seen on
/// MariaDB 10.11 in America/New_York). So the saved value is UTC text
/// (`2024-11-03T05:50:00.000000Z`) and the condition compares seconds since the epoch.
/// - The largest value: `UNIX_TIMESTAMP` of the column itself, of the last row in stored
///   (UTC) order. Of anything but a plain column (`MAX(col)`), MySQL converts the local
///   time back, and a local time of the repeated hour has two answers.
/// - The condition: the exact test no index serves, behind a range that one can, four
///   hours wide of the saved instant, as the range compares in local time: clock steps
///   back reach 2 hours today (Antarctica/Troll) and reached 3 until 2023
///   (Antarctica/Casey). The saved instant is the last sync's, so older, larger steps
///   (Vostok's 7 in 1994) do not matter. The rows in the range but below the saved instant
///   are index entries the exact test drops: every page reads them again, so the slack is
///   no wider than it needs to be.
/// - A value saved by an earlier version (local text) is compared once with the same
///   slack in local time (the rows sent again are harmless upserts), then replaced.
fn timestamp_cursor(quoted: &str, from: &str, read: &CursorRead) -> CursorSql {
    let largest = format!(
        "SELECT CAST(UNIX_TIMESTAMP({quoted}) AS CHAR) FROM {from} \
         WHERE {quoted} IS NOT NULL ORDER BY {quoted} DESC LIMIT 1"
    );
    let condition = match read {
        CursorRead::After { after, .. } => Some(match utc_to_epoch(after) {
            Some((seconds, micros)) => (
                // Two numbers of our own making: written into the SQL, never the saved text.
                format!(
                    "{quoted} >= FROM_UNIXTIME({}) AND UNIX_TIMESTAMP({quoted}) >= CAST(? AS DECIMAL(20, 6))",
                    (seconds - TIMESTAMP_SLACK_SECONDS).max(0)
                ),
                format!("{seconds}.{micros:06}"),
            ),
            None => (
                format!(
                    "{quoted} >= CAST(? AS DATETIME(6)) - INTERVAL {TIMESTAMP_SLACK_SECONDS} SECOND"
                ),
                after.clone(),
            ),
        }),
        _ => None,
    };
    CursorSql {
        condition,
        largest,
        in_utc: true,
        leading: None,
    }
}

/// The slack of a TIMESTAMP cursor's range (see [`timestamp_cursor`]): four hours.
const TIMESTAMP_SLACK_SECONDS: i64 = 4 * 3600;

/// `1730610600` or `1730610600.250000` (what `UNIX_TIMESTAMP` answers) as UTC text with
/// microseconds, `2024-11-03T05:10:00.000000Z`.
fn epoch_to_utc(text: &str) -> Option<String> {
    let (seconds, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let seconds: i64 = seconds.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    let at = chrono::DateTime::from_timestamp(seconds, nanos)?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// UTC text saved by [`epoch_to_utc`] as seconds since the epoch and microseconds; `None`
/// for anything else (a local value saved by an earlier version).
fn utc_to_epoch(text: &str) -> Option<(i64, u32)> {
    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    if !text.ends_with('Z') {
        return None;
    }
    // A leap second's text (`:60.5`) gives 1,000,000 µs or more: the second's last one.
    Some((at.timestamp(), at.timestamp_subsec_micros().min(999_999)))
}

/// The parameters of [`keyset_condition`] for the last row's key values, after the cursor's
/// value when there is one.
fn keyset_params(after: Option<&My>, last: &[My]) -> mysql_async::Params {
    let mut params: Vec<My> = after.into_iter().cloned().collect();
    for i in 0..last.len() {
        params.extend(last[..=i].iter().cloned());
    }
    mysql_async::Params::Positional(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_cursor_condition_has_one_parameter_and_a_literal_range() {
        let after = |value: &str| CursorRead::After {
            column: "ts".into(),
            after: value.into(),
        };
        let utc = timestamp_cursor("`ts`", "`d`.`t`", &after("2024-11-03T05:50:00.250000Z"));
        let (condition, value) = utc.condition.unwrap();
        assert_eq!(
            condition,
            "`ts` >= FROM_UNIXTIME(1730598600) AND UNIX_TIMESTAMP(`ts`) >= CAST(? AS DECIMAL(20, 6))"
        );
        assert_eq!(value, "1730613000.250000");
        // Near the epoch the range starts at it.
        let early = timestamp_cursor("`ts`", "`d`.`t`", &after("1970-01-01T00:10:00.000000Z"));
        assert!(
            early
                .condition
                .unwrap()
                .0
                .starts_with("`ts` >= FROM_UNIXTIME(0) AND")
        );
        // Local text saved before: one parameter, four hours of slack.
        let legacy = timestamp_cursor("`ts`", "`d`.`t`", &after("2024-11-03 01:50:00"));
        let (condition, value) = legacy.condition.unwrap();
        assert_eq!(
            condition,
            "`ts` >= CAST(? AS DATETIME(6)) - INTERVAL 14400 SECOND"
        );
        assert_eq!(value, "2024-11-03 01:50:00");
        // The largest value takes no parameter; a full read has no condition.
        let full = timestamp_cursor(
            "`ts`",
            "`d`.`t`",
            &CursorRead::All {
                column: "ts".into(),
            },
        );
        assert!(full.condition.is_none() && !full.largest.contains('?'));
        assert!(utc.largest.contains("ORDER BY `ts` DESC LIMIT 1"));
    }

    #[test]
    fn a_timestamp_cursor_is_utc_text_and_compares_as_epoch_seconds() {
        for (epoch, utc) in [
            ("1730613000", "2024-11-03T05:50:00.000000Z"),
            ("1730613000.250000", "2024-11-03T05:50:00.250000Z"),
            ("1730613000.000001", "2024-11-03T05:50:00.000001Z"),
            ("0", "1970-01-01T00:00:00.000000Z"),
        ] {
            assert_eq!(epoch_to_utc(epoch).as_deref(), Some(utc), "{epoch}");
            let (seconds, micros) = utc_to_epoch(utc).unwrap();
            let back = format!("{seconds}.{micros:06}");
            assert_eq!(epoch_to_utc(&back).as_deref(), Some(utc), "{utc}");
        }
        assert_eq!(
            utc_to_epoch("2024-11-03T05:50:00.250000Z"),
            Some((1730613000, 250000))
        );
        for bad in ["", "x", "1.2.3", "1.-5", "12a", "1.1234567890"] {
            assert_eq!(epoch_to_utc(bad), None, "{bad}");
        }
        // Local text an earlier version saved, and an offset that is not UTC's.
        for legacy in ["2024-11-03 01:50:00", "2024-11-03T01:50:00-04:00", "5.00"] {
            assert_eq!(utc_to_epoch(legacy), None, "{legacy}");
        }
    }

    #[test]
    fn an_index_serves_the_cursor_order_when_the_key_follows_the_cursor() {
        let index = |cols: &[(&str, bool, bool)]| -> Vec<IndexColumn> {
            cols.iter()
                .map(|&(name, whole, ascending)| IndexColumn {
                    name: name.to_string(),
                    whole,
                    ascending,
                })
                .collect()
        };
        let ok = |name| (name, true, true);
        // The cursor alone, or followed by the key's first columns in the key's order.
        for columns in [
            vec![ok("updated")],
            vec![ok("Updated")],
            vec![ok("updated"), ok("a")],
            vec![ok("updated"), ok("A"), ok("b")],
        ] {
            assert!(
                serves_cursor_order(&index(&columns), "updated", &["a", "b"]),
                "{columns:?}"
            );
        }
        for columns in [
            vec![],
            vec![ok("title")],
            vec![ok("title"), ok("updated")],
            vec![ok("updated"), ok("b")],
            vec![ok("updated"), ok("title")],
            vec![ok("updated"), ok("a"), ok("b"), ok("title")],
            vec![("updated", false, true)],
            vec![("updated", true, false)],
            vec![ok("updated"), ("a", true, false)],
            vec![ok("updated"), ("a", false, true)],
            // A functional key part, as the probe reads it (no name, not whole).
            vec![ok("updated"), ("", false, true)],
        ] {
            assert!(
                !serves_cursor_order(&index(&columns), "updated", &["a", "b"]),
                "{columns:?}"
            );
        }
    }

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
                "user",
                "password",
                "database",
                "tables",
                "ssl_enabled",
                "ssl_ca",
                "fetch_size",
                "retry_count"
            ]
        );
        let f = &config.0;
        assert_eq!(f["user"].label, "Username");
        assert_eq!(f["ssl_enabled"].label, "Enable SSL");
        assert_eq!(f["fetch_size"].default_value, Value::from(5000));
        assert!(f["tables"].tooltip.is_none());
    }

    #[test]
    fn keyset_condition_expands_composite_keys() {
        assert_eq!(
            keyset_condition(&[KeysetKey::plain("a"), KeysetKey::plain("b")]),
            "(`a` > ?) OR (`a` = ? AND `b` > ?)"
        );
        // The cursor first, its values cast as the saved one is.
        let cursor = KeysetKey {
            name: "v".into(),
            placeholder: "CAST(? AS SIGNED)".into(),
            local_time: false,
        };
        assert_eq!(
            keyset_condition(&[cursor, KeysetKey::plain("id")]),
            "(`v` > CAST(? AS SIGNED)) OR (`v` = CAST(? AS SIGNED) AND `id` > ?)"
        );
        let params = keyset_params(None, &[My::Int(1), My::Int(2)]);
        assert_eq!(
            params,
            mysql_async::Params::Positional(vec![My::Int(1), My::Int(1), My::Int(2)])
        );
        let after = My::from("9");
        let params = keyset_params(Some(&after), &[My::Int(1)]);
        assert_eq!(
            params,
            mysql_async::Params::Positional(vec![My::from("9"), My::Int(1)])
        );
    }

    #[test]
    fn cursor_values_are_cast_to_the_columns_type() {
        assert_eq!(
            cursor_bound("bigint", "bigint(20)", Some(0)),
            "CAST(? AS SIGNED)"
        );
        assert_eq!(
            cursor_bound("int", "int(10) unsigned", Some(0)),
            "CAST(? AS UNSIGNED)"
        );
        assert_eq!(
            cursor_bound("decimal", "decimal(10,2)", Some(2)),
            "CAST(? AS DECIMAL(65, 2))"
        );
        assert_eq!(
            cursor_bound("timestamp", "timestamp(6)", None),
            "CAST(? AS DATETIME(6))"
        );
        assert_eq!(cursor_bound("varchar", "varchar(20)", None), "?");
    }
}
