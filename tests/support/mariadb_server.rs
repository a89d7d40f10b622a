//! A throw-away MariaDB server for the `mysql` source's tests: `mariadb-install-db` into a
//! temp dir, `mariadbd --user=root` on an ephemeral 127.0.0.1 port and a socket in that dir,
//! with TLS (a CA made here), and a `syncdeck` user with a password for the tests. A watcher
//! process stops the server and removes its directory when the test binary exits. The
//! plumbing is `db_server.rs`'s, shared with the PostgreSQL server.
//! Included with `#[path = "../support/mariadb_server.rs"] mod mariadb_server;` (beside
//! `db_server`).
#![allow(dead_code)]

use super::db_server::{self, DbServer};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test user (all privileges, from 127.0.0.1) and its password.
pub const USER: &str = "syncdeck";
pub const PASSWORD: &str = "maria-secret-8642";

pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
    pub socket: PathBuf,
    pub ca_pem: String,
}

fn find(program: &str) -> Option<PathBuf> {
    db_server::find_program(program)
}

/// The shared server of this test binary; `None` (with the reason printed) when MariaDB is
/// not installed.
pub fn shared() -> Option<&'static MariaDb> {
    static SERVER: OnceLock<Option<MariaDb>> = OnceLock::new();
    db_server::shared(&SERVER)
}

impl DbServer for MariaDb {
    const PRODUCT: &'static str = "MariaDB";

    fn start_shared() -> Result<Self, String> {
        MariaDb::start()
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn fresh_database(&self, name: &str, setup: &str) -> Result<(), String> {
        // Recursive CTEs fill the benchmark tables: allow them deep.
        self.try_sql(&format!(
            "SET SESSION max_recursive_iterations = 100000000; DROP DATABASE IF EXISTS `{name}`; \
             CREATE DATABASE `{name}` CHARACTER SET utf8mb4; USE `{name}`; {setup}"
        ))
    }

    fn connector_values(&self, database: &str) -> Map<String, Value> {
        let values = json!({
            "host": "127.0.0.1",
            "port": self.port,
            "user": USER,
            "password": PASSWORD,
            "database": database,
            "tables": "*",
            "retry_count": 1,
        });
        values.as_object().cloned().unwrap_or_default()
    }
}

impl MariaDb {
    pub fn start() -> Result<Self, String> {
        Self::start_with_zone(None)
    }

    /// A server of its own whose system time zone is `zone` (`TZ`, e.g. `America/New_York`):
    /// its sessions read and compare TIMESTAMP values in that zone's local time.
    pub fn start_in_zone(zone: &str) -> Result<Self, String> {
        Self::start_with_zone(Some(zone))
    }

    fn start_with_zone(zone: Option<&str>) -> Result<Self, String> {
        let server = find("mariadbd").ok_or("mariadbd not found (install mariadb-server)")?;
        let install = find("mariadb-install-db").ok_or("mariadb-install-db not found")?;
        let dir = db_server::kept_temp_dir("syncdeck-maria-")?;
        let data = dir.join("data");
        let socket = dir.join("sock");
        let ca_pem = db_server::write_tls(&dir, ["ca.pem", "server.pem", "key.pem"])?;
        let out = Command::new(install)
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = db_server::free_port()?;
        let pid_file = dir.join("pid");
        let log = std::fs::File::create(dir.join("log")).map_err(|e| e.to_string())?;
        let mut command = Command::new(server);
        if let Some(zone) = zone {
            command.env("TZ", zone);
        }
        command
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--innodb-flush-log-at-trx-commit=0")
            .arg(format!("--ssl-ca={}", dir.join("ca.pem").display()))
            .arg(format!("--ssl-cert={}", dir.join("server.pem").display()))
            .arg(format!("--ssl-key={}", dir.join("key.pem").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let db = Self {
            dir: dir.clone(),
            port,
            socket: socket.clone(),
            ca_pem,
        };
        db.watch_parent(&pid_file);
        // Up once the socket answers.
        let started = Instant::now();
        loop {
            let status = Command::new(find("mariadb").ok_or("the mariadb client is missing")?)
                .arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args([
                    "-uroot",
                    "-e",
                    &format!(
                        "CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                     GRANT ALL ON *.* TO '{USER}'@'%'; FLUSH PRIVILEGES;"
                    ),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("mariadbd did not start within 60s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(db)
    }

    /// Runs SQL as root through the socket (set-up of the tests' tables).
    pub fn sql(&self, sql: &str) {
        if let Err(e) = self.try_sql(sql) {
            panic!("{e}");
        }
    }

    /// What a query run as root prints: its rows, tab-separated, without a header.
    pub fn sql_rows(&self, sql: &str) -> String {
        let client = find("mariadb").unwrap_or_else(|| panic!("the mariadb client is missing"));
        let out = Command::new(client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .unwrap_or_else(|e| panic!("the mariadb client does not run: {e}"));
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`Self::sql`], with the client's error as `Err`.
    pub fn try_sql(&self, sql: &str) -> Result<(), String> {
        let client = find("mariadb").ok_or("the mariadb client is missing")?;
        let out = Command::new(client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "-e", sql])
            .output()
            .map_err(|e| format!("the mariadb client does not run: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    fn watch_parent(&self, pid_file: &Path) {
        // The server's own pid (from its file), stopped politely, then killed if it lingers.
        let stop = format!(
            "p=$(cat '{pidf}' 2>/dev/null); [ -n \"$p\" ] && kill \"$p\"; \
             for i in $(seq 1 40); do [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null || break; sleep 0.5; done; \
             [ -n \"$p\" ] && kill -9 \"$p\" 2>/dev/null",
            pidf = pid_file.display(),
        );
        db_server::watch_parent(&self.dir, &stop);
    }
}
