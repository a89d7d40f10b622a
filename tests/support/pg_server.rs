//! A throw-away PostgreSQL cluster for the `postgresql` source's tests: `initdb` in a temp
//! dir, a server on an ephemeral 127.0.0.1 port with TLS (a CA and a server certificate made
//! here) and password (scram) authentication over TCP. `initdb` and `pg_ctl` refuse to run as
//! root, so as root they run as the `postgres` user. A watcher process stops the server and
//! removes its directory when the test binary exits, however it exits. The plumbing is
//! `db_server.rs`'s, shared with the MariaDB server; this file holds what is PostgreSQL's.
//! Included with `#[path = "../support/pg_server.rs"] mod pg_server;` (beside `db_server`).
#![allow(dead_code)]

use super::db_server::{self, DbServer};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use db_server::certificates;

/// The superuser's password (scram over TCP; the tests' own users have their own).
pub const SUPER_PASSWORD: &str = "pg-super-secret-4711";

/// A running cluster.
pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    /// The CA that signed the server's certificate (PEM), for `ssl_ca`.
    pub ca_pem: String,
    bin: PathBuf,
    as_postgres: bool,
}

/// Where the PostgreSQL programs are, if installed.
fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::var("PG_BIN") {
        candidates.push(PathBuf::from(dir));
    }
    for v in ["17", "16", "15", "14", "13"] {
        candidates.push(PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")));
    }
    candidates.push(PathBuf::from("/usr/local/bin"));
    candidates.push(PathBuf::from("/usr/bin"));
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The shared server of this test binary, started on first use; `None` (with the reason
/// printed) when PostgreSQL is not installed.
pub fn shared() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    db_server::shared(&SERVER)
}

impl DbServer for PgServer {
    const PRODUCT: &'static str = "PostgreSQL";

    fn start_shared() -> Result<Self, String> {
        PgServer::start(true)
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn fresh_database(&self, name: &str, setup: &str) -> Result<(), String> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // Separate `-c`s: DROP/CREATE DATABASE cannot run inside one transaction.
        self.psql("postgres")
            .arg("-c")
            .arg(format!("DROP DATABASE IF EXISTS {quoted}"))
            .arg("-c")
            .arg(format!("CREATE DATABASE {quoted}"))
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| psql_result(&out))?;
        if setup.trim().is_empty() {
            return Ok(());
        }
        self.psql(name)
            .arg("-c")
            .arg(setup)
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| psql_result(&out))
    }

    fn connector_values(&self, database: &str) -> Map<String, Value> {
        let values = json!({
            "host": "127.0.0.1",
            "port": self.port,
            "username": "postgres",
            "password": SUPER_PASSWORD,
            "database": database,
            "schema": "public",
            "tables": "*",
            "retry_count": 1,
        });
        values.as_object().cloned().unwrap_or_default()
    }
}

fn psql_result(out: &std::process::Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgServer {
    /// Starts a new cluster; `commit_timestamps` sets `track_commit_timestamp`.
    pub fn start(commit_timestamps: bool) -> Result<Self, String> {
        let bin = find_bin().ok_or("initdb/pg_ctl not found (install postgresql)")?;
        let as_postgres = is_root();
        let dir = db_server::kept_temp_dir("syncdeck-pg-")?;
        let server = Self {
            dir: dir.clone(),
            port: db_server::free_port()?,
            ca_pem: String::new(),
            bin,
            as_postgres,
        };
        std::fs::write(dir.join("pwfile"), SUPER_PASSWORD).map_err(|e| e.to_string())?;
        let ca_pem = db_server::write_tls(&dir, ["ca.crt", "server.crt", "server.key"])?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        run(Command::new("chmod").arg("700").arg(&dir))?;
        run(Command::new("chmod").arg("600").arg(dir.join("server.key")))?;
        let data = dir.join("data");
        run(&mut server.pg_command(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--pwfile",
                path(&dir.join("pwfile")),
            ],
        ))?;
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n\
             track_commit_timestamp = {}\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 60\nshared_buffers = 32MB\n",
            server.port,
            dir.display(),
            dir.join("server.crt").display(),
            dir.join("server.key").display(),
            if commit_timestamps { "on" } else { "off" },
        );
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).map_err(|e| e.to_string())?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| e.to_string())?;
        run(&mut server.pg_command(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&dir.join("log")),
                "-w",
                "-t",
                "60",
                "start",
            ],
        ))
        .map_err(|e| {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            format!("{e}\n{log}")
        })?;
        server.watch_parent();
        Ok(Self { ca_pem, ..server })
    }

    fn pg_command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args);
        cmd
    }

    /// `psql` as the superuser over TCP into `database`, stopping at the first error.
    fn psql(&self, database: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(database)
        .env("PGPASSWORD", SUPER_PASSWORD)
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null());
        cmd
    }

    /// A detached watcher: once this process is gone, stop the server (bounded) and remove
    /// its directory.
    fn watch_parent(&self) {
        let stop = self.pg_command(
            "pg_ctl",
            &[
                "-D",
                path(&self.dir.join("data")),
                "-m",
                "immediate",
                "-t",
                "20",
                "stop",
            ],
        );
        let stop_line = format!(
            "{} {}",
            stop.get_program().to_string_lossy(),
            stop.get_args()
                .map(|a| format!("'{}'", a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        db_server::watch_parent(&self.dir, &format!("{stop_line} >/dev/null 2>&1"));
    }

    /// Stops this server now (for a server of one test), bounded.
    pub fn stop(&self) {
        let _ = self
            .pg_command(
                "pg_ctl",
                &[
                    "-D",
                    path(&self.dir.join("data")),
                    "-m",
                    "immediate",
                    "-t",
                    "20",
                    "stop",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL as the superuser through `psql`-less means: the tests' own client does that;
    /// this gives its connection string.
    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password={SUPER_PASSWORD} dbname={database} sslmode=disable",
            self.port
        )
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn run(cmd: &mut Command) -> Result<(), String> {
    db_server::run(cmd)
}
