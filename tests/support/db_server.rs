//! What the tests' throw-away database servers (`pg_server.rs`, `mariadb_server.rs`) share:
//! the [`DbServer`] trait the `postgresql` and `mysql` tests use alike (one shared server per
//! test binary, a fresh database per test, the connector values that reach it), and the
//! plumbing both servers start with: their programs found on disk, a kept temp dir, an
//! ephemeral 127.0.0.1 port, a CA and server certificate made here, and a detached watcher
//! that stops the server and removes its directory once the test binary is gone, however it
//! ends. A server whose programs are missing makes its tests skip, saying why.
//! Included with `#[path = "../support/db_server.rs"] mod db_server;`.
#![allow(dead_code)]

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Runs a database source alone, as the engine would but without it: its ping when `ping`
/// (a test of a table the user cannot read at all skips it: the ping would refuse), then a
/// full sync within `limit`. Every item it sent, in order, and its notes for the job's
/// metadata. Errors are the source's own words, for the tests that expect one.
pub async fn run_source_items(
    factory: &dyn syncdeck::sources::SourceFactory,
    config: &syncdeck::model::Configuration,
    advanced: Option<&Value>,
    ping: bool,
    limit: std::time::Duration,
) -> Result<(Vec<syncdeck::sources::SourceItem>, Map<String, Value>), String> {
    use syncdeck::sources::{ItemSender, SyncMode};
    let mut source = factory
        .create_for_sync(config, advanced)
        .map_err(|e| e.to_string())?;
    if ping {
        source.ping().await.map_err(|e| e.to_string())?;
    }
    let notes = source.notes().ok_or("the source keeps no notes")?;
    let (tx, mut rx) = ItemSender::channel(64);
    let collect = tokio::spawn(async move {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    });
    let run = tokio::time::timeout(limit, source.run(SyncMode::Full, tx))
        .await
        .map_err(|_| "the sync did not end".to_string())?;
    run.map_err(|e| e.to_string())?;
    drop(source);
    let items = collect.await.map_err(|e| e.to_string())?;
    Ok((items, notes.metadata()))
}

/// [`run_source_items`] with the ping, keeping the documents.
pub async fn run_source(
    factory: &dyn syncdeck::sources::SourceFactory,
    config: &syncdeck::model::Configuration,
    advanced: Option<&Value>,
    limit: std::time::Duration,
) -> Result<(Vec<syncdeck::sources::Document>, Map<String, Value>), String> {
    let (items, notes) = run_source_items(factory, config, advanced, true, limit).await?;
    let docs = items
        .into_iter()
        .filter_map(|item| match item {
            syncdeck::sources::SourceItem::Upsert(doc) => Some(doc),
            _ => None,
        })
        .collect();
    Ok((docs, notes))
}

/// The type's default configuration with `values` set (keys it lacks are left out, as the
/// tests pass the values of both databases alike).
pub fn configuration_with(
    factory: &dyn syncdeck::sources::SourceFactory,
    values: &Map<String, Value>,
) -> syncdeck::model::Configuration {
    let mut config = factory.default_configuration();
    for (k, v) in values {
        if let Some(field) = config.0.get_mut(k) {
            field.value = v.clone();
        }
    }
    config
}

/// [`run_source`], each document by id as one object: its fields, `_id` and `_timestamp`.
pub async fn docs_by_id(
    factory: &dyn syncdeck::sources::SourceFactory,
    config: &syncdeck::model::Configuration,
    advanced: Option<&Value>,
    limit: std::time::Duration,
) -> Result<
    (
        std::collections::BTreeMap<String, Value>,
        Map<String, Value>,
    ),
    String,
> {
    let (sent, notes) = run_source(factory, config, advanced, limit).await?;
    let docs = sent
        .into_iter()
        .map(|doc| {
            let mut fields = doc.fields.into_map();
            fields.insert("_id".into(), Value::from(doc.id.clone()));
            fields.insert(
                "_timestamp".into(),
                doc.timestamp.map(Value::from).unwrap_or(Value::Null),
            );
            (doc.id, Value::Object(fields))
        })
        .collect();
    Ok((docs, notes))
}

/// The ids of the documents and the unreadable records (id, reason) of a full sync of the
/// source alone (see [`run_source_items`]); panics, naming it, when the sync fails.
pub async fn ids_and_invalid(
    factory: &dyn syncdeck::sources::SourceFactory,
    config: &syncdeck::model::Configuration,
    ping: bool,
    limit: std::time::Duration,
) -> (Vec<String>, Vec<(String, String)>) {
    let (items, _) = run_source_items(factory, config, None, ping, limit)
        .await
        .unwrap_or_else(|e| panic!("sync: {e}"));
    let (mut docs, mut bad) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            syncdeck::sources::SourceItem::Upsert(doc) => docs.push(doc.id),
            syncdeck::sources::SourceItem::Invalid { id, reason, .. } => bad.push((id, reason)),
            _ => {}
        }
    }
    (docs, bad)
}

/// A throw-away database server the source tests run against.
pub trait DbServer: Sized + Send + Sync + 'static {
    /// The product, for the skip message.
    const PRODUCT: &'static str;
    /// Starts the binary's shared server.
    fn start_shared() -> Result<Self, String>;
    /// Its 127.0.0.1 port.
    fn port(&self) -> u16;
    /// The CA that signed its certificate (PEM), for `ssl_ca`.
    fn ca_pem(&self) -> &str;
    /// A fresh, empty database `name` (dropped first if there), then `setup` (SQL, several
    /// statements allowed) run in it as the superuser.
    fn fresh_database(&self, name: &str, setup: &str) -> Result<(), String>;
    /// The connector's configuration values reaching `database` as the test user, with
    /// every table and one connection attempt.
    fn connector_values(&self, database: &str) -> Map<String, Value>;
}

/// The binary's shared server of one kind, started on first use; `None` (the reason printed)
/// when it cannot start, for the test to skip.
pub fn shared<S: DbServer>(cell: &'static OnceLock<Option<S>>) -> Option<&'static S> {
    cell.get_or_init(|| match S::start_shared() {
        Ok(server) => Some(server),
        Err(why) => {
            eprintln!("SKIPPED: no {} server for this test: {why}", S::PRODUCT);
            None
        }
    })
    .as_ref()
}

/// [`DbServer::connector_values`] with `extra` on top.
pub fn values_with<S: DbServer>(server: &S, database: &str, extra: Value) -> Map<String, Value> {
    let mut values = server.connector_values(database);
    if let Value::Object(extra) = extra {
        values.extend(extra);
    }
    values
}

/// The first of `dirs` that holds `program`.
pub fn find_in(dirs: &[PathBuf], program: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(program)).find(|p| p.exists())
}

/// `program` in the usual system directories.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    find_in(&dirs, program)
}

/// A new temp directory that outlives this process (the watcher removes it).
pub fn kept_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map(|d| d.keep())
        .map_err(|e| e.to_string())
}

/// A free 127.0.0.1 port (free when asked; the server binds it a moment later).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no ephemeral port: {e}"))
}

/// Writes a new CA's certificate and a server certificate and key it signed into `dir`
/// under the names given (CA, certificate, key); returns the CA's PEM.
pub fn write_tls(dir: &Path, names: [&str; 3]) -> Result<String, String> {
    let (ca_pem, cert_pem, key_pem) = certificates();
    for (name, text) in names.iter().zip([&ca_pem, &cert_pem, &key_pem]) {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(ca_pem)
}

/// Runs a command to its end; `Err` with its output when it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
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

/// A detached watcher: once this process is gone, `stop` (a shell line that stops the
/// server, bounded) runs and `dir` is removed.
pub fn watch_parent(dir: &Path, stop: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display(),
    );
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
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
