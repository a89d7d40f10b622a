//! A throw-away PostgreSQL cluster for the `postgresql` source's tests: `initdb` in a temp
//! dir, a server on an ephemeral 127.0.0.1 port with TLS (a CA and a server certificate made
//! here) and password (scram) authentication over TCP. `initdb` and `pg_ctl` refuse to run as
//! root, so as root they run as the `postgres` user. A watcher process stops the server and
//! removes its directory when the test binary exits, however it exits.
//! Included with `#[path = "support/pg_server.rs"] mod pg_server;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// The shared server of this test binary, started on first use; `None` (with the reason
/// printed) when PostgreSQL is not installed.
pub fn shared() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| match PgServer::start(true) {
            Ok(server) => Some(server),
            Err(why) => {
                eprintln!("SKIPPED: no PostgreSQL server for this test: {why}");
                None
            }
        })
        .as_ref()
}

impl PgServer {
    /// Starts a new cluster; `commit_timestamps` sets `track_commit_timestamp`.
    pub fn start(commit_timestamps: bool) -> Result<Self, String> {
        let bin = find_bin().ok_or("initdb/pg_ctl not found (install postgresql)")?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("syncdeck-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let server = Self {
            dir: dir.clone(),
            port: free_port(),
            ca_pem: String::new(),
            bin,
            as_postgres,
        };
        std::fs::write(dir.join("pwfile"), SUPER_PASSWORD).map_err(|e| e.to_string())?;
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::write(dir.join("server.crt"), &cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("server.key"), &key_pem).map_err(|e| e.to_string())?;
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
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop_line} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display(),
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
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
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A CA, and a certificate for 127.0.0.1/localhost it signed, with the server's key (PEM).
pub fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "syncdeck test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
