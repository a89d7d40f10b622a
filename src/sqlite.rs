//! Opening syncdeck's local SQLite databases (the embedded store, the dead-letter queue): the
//! file, created private (mode 0600, with its directory) since both hold secrets or documents;
//! the pragmas (WAL, busy timeout, the `synchronous` level the database asks for); and the
//! schema, brought up to date by `rusqlite_migration` from `PRAGMA user_version`, so a file
//! written by an older syncdeck opens and migrates in place. One helper, so the two databases
//! cannot drift apart. Knows nothing of what the tables hold.

use rusqlite::{Connection, TransactionBehavior};
use rusqlite_migration::{M, MigrationDefinitionError, Migrations};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// How long a write waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Safe against a crash of the process; a power cut may lose the last commits.
    Normal,
    /// Syncs the WAL at every commit: a committed row survives a power cut.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// A database's schema: one SQL step per version, in order. Version N of a file (its
/// `user_version`) means the first N steps have run; never edit a released step, add one.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// What the database is, for messages ("embedded database", "dead-letter queue").
    pub what: &'static str,
    pub steps: &'static [&'static str],
    pub synchronous: Synchronous,
}

impl Schema {
    /// The version a file has once opened.
    pub fn version(&self) -> i64 {
        self.steps.len() as i64
    }

    fn migrations(&self) -> Migrations<'static> {
        Migrations::new(self.steps.iter().map(|step| M::up(step)).collect())
    }
}

/// Why a database could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The file or its directory could not be created.
    #[error("cannot {action} the {what} '{}': {source}", path.display())]
    Io {
        what: &'static str,
        /// "create", "create the directory of".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed while opening or configuring the file.
    #[error("{what} '{}': {source}", path.display())]
    Sqlite {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer syncdeck.
    #[error(
        "the {what} '{}' was written by a newer syncdeck (schema version {found}; this build \
         knows up to {known}): upgrade syncdeck or use another data dir",
        path.display()
    )]
    NewerSchema {
        what: &'static str,
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// A migration step failed; the file is left at its old version (each run is one
    /// transaction).
    #[error("{what} '{}': migrating the schema to version {known} failed: {source}", path.display())]
    Migration {
        what: &'static str,
        path: PathBuf,
        known: i64,
        #[source]
        source: Box<rusqlite_migration::Error>,
    },
}

impl OpenError {
    /// The SQLite error underneath, when there is one.
    pub fn sqlite_error(&self) -> Option<&rusqlite::Error> {
        match self {
            Self::Sqlite { source, .. } => Some(source),
            Self::Migration { source, .. } => match source.as_ref() {
                rusqlite_migration::Error::RusqliteError { err, .. } => Some(err),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Opens the database file at `path`, creating it (private) and its directory when missing,
/// and brings its schema up to date.
pub fn open_file(path: &Path, schema: &Schema) -> Result<Connection, OpenError> {
    let io = |action, source| OpenError::Io {
        what: schema.what,
        action,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    create_private_file(path).map_err(|e| io("create", e))?;
    let sqlite = |source| OpenError::Sqlite {
        what: schema.what,
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(sqlite)?;
    configure(&conn, schema, true).map_err(sqlite)?;
    migrate(conn, path, schema)
}

/// A private in-memory database with the schema.
pub fn open_memory(schema: &Schema) -> Result<Connection, OpenError> {
    let path = Path::new(":memory:");
    let sqlite = |source| OpenError::Sqlite {
        what: schema.what,
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_in_memory().map_err(sqlite)?;
    configure(&conn, schema, false).map_err(sqlite)?;
    migrate(conn, path, schema)
}

/// Creates an empty file readable by its owner only. SQLite creates its `-wal` and `-shm`
/// files with the same permissions as the database file.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn configure(conn: &Connection, schema: &Schema, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        // journal_mode answers with the new mode, so it must be read back.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    }
    conn.pragma_update(None, "synchronous", schema.synchronous.pragma())?;
    Ok(())
}

/// Runs the missing steps in one immediate transaction (it takes the write lock at once, so
/// a second process opening the file waits instead of interleaving). The version is read
/// before that lock: two processes opening an old file at once may both try, and the loser's
/// transaction fails and rolls back; it then finds the winner's schema, which is what it
/// wanted.
fn migrate(mut conn: Connection, path: &Path, schema: &Schema) -> Result<Connection, OpenError> {
    let migrations = schema.migrations();
    let found = conn
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(|source| OpenError::Sqlite {
            what: schema.what,
            path: path.to_path_buf(),
            source,
        })?;
    let newer = || OpenError::NewerSchema {
        what: schema.what,
        path: path.to_path_buf(),
        found,
        known: schema.version(),
    };
    if found > schema.version() {
        return Err(newer());
    }
    if found == schema.version() {
        return Ok(conn);
    }
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let migrated = migrations.to_latest(&mut conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    match migrated {
        Ok(()) => Ok(conn),
        Err(rusqlite_migration::Error::MigrationDefinition(
            MigrationDefinitionError::DatabaseTooFarAhead,
        )) => Err(newer()),
        Err(source) => {
            let now: Option<i64> = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .ok();
            if now == Some(schema.version()) {
                return Ok(conn);
            }
            Err(OpenError::Migration {
                what: schema.what,
                path: path.to_path_buf(),
                known: schema.version(),
                source: Box::new(source),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &[
        "CREATE TABLE t (a TEXT NOT NULL); INSERT INTO t (a) VALUES ('kept');",
        "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'new';",
    ];

    const SCHEMA: Schema = Schema {
        what: "test database",
        steps: STEPS,
        synchronous: Synchronous::Full,
    };

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_every_step_and_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/db.sqlite");
        let conn = open_file(&path, &SCHEMA).unwrap();
        assert_eq!(version(&conn), 2);
        let row: (String, String) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, ("kept".to_string(), "new".to_string()));
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_old_file_runs_only_its_missing_steps_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            // Version 1, as a build that knew one step wrote it, with a row of its own.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(STEPS[0]).unwrap();
            conn.execute("INSERT INTO t (a) VALUES ('mine')", [])
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let conn = open_file(&path, &SCHEMA).unwrap();
        assert_eq!(version(&conn), 2);
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT a, b FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Step 1 did not run again (no second 'kept' row); step 2 did.
        assert_eq!(
            rows,
            [("kept".into(), "new".into()), ("mine".into(), "new".into())]
        );
        drop(conn);
        // Opening again changes nothing.
        let conn = open_file(&path, &SCHEMA).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_newer_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(open_file(&path, &SCHEMA).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 3)
            .unwrap();
        let err = open_file(&path, &SCHEMA).unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::NewerSchema {
                    found: 3,
                    known: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("test database"), "{err}");
        assert!(err.to_string().contains("db.sqlite"), "{err}");
        assert_eq!(version(&Connection::open(&path).unwrap()), 3);
    }

    #[test]
    fn a_failing_step_leaves_the_old_version() {
        const BROKEN: Schema = Schema {
            what: "test database",
            steps: &[STEPS[0], "ALTER TABLE missing ADD COLUMN x TEXT;"],
            synchronous: Synchronous::Normal,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let err = open_file(&path, &BROKEN).unwrap_err();
        assert!(matches!(err, OpenError::Migration { .. }), "{err}");
        assert!(err.sqlite_error().is_some());
        assert_eq!(version(&Connection::open(&path).unwrap()), 0);
    }

    #[test]
    fn concurrent_openers_of_a_new_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || open_file(&path, &SCHEMA).map(|c| version(&c)))
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().unwrap().unwrap(), 2);
        }
    }

    #[test]
    fn memory_databases_get_the_schema() {
        let conn = open_memory(&SCHEMA).unwrap();
        assert_eq!(version(&conn), 2);
    }
}
