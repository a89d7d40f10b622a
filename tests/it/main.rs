//! The integration tests as one test binary (as ripgrep does): every former
//! `tests/<name>.rs` binary is the module `<name>` here, so the support code (the stand-in
//! cluster in `tests/support`, the engine, external-program and console helpers) compiles
//! and links once instead of once per binary. Run one area with
//! `cargo test --test it <module>::`, one test with `-- --exact <module>::<test>`.
//!
//! All tests share this process: a test that installs process-wide state (the global
//! tracing subscriber, the panic hook) runs itself in a child process of this binary
//! (`support::own_process`), and the crash tests drive child processes of their own.

#[path = "../console_fixtures/mod.rs"]
mod console_fixtures;
#[path = "../support/db_server.rs"]
mod db_server;
#[path = "../support/engine_util.rs"]
mod engine_util;
#[path = "../support/external_util.rs"]
mod external_util;
#[path = "../support/mariadb_server.rs"]
mod mariadb_server;
#[path = "../support/pg_server.rs"]
mod pg_server;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod cli_spec;
mod config;
mod console_bench;
mod console_e2e;
mod console_secrets;
mod console_snapshots;
mod console_spec;
mod console_update;
mod dlq;
mod dlq_provenance;
mod elastic_api;
mod elastic_transport;
mod embedded_backend;
mod engine;
mod engine_attachment;
mod engine_crash;
mod engine_faults;
mod engine_filtering_service;
mod external;
mod external_logs;
mod extraction;
mod extractor;
mod golden_python;
mod hostile;
mod http_api;
mod kibana_client;
mod lifecycle;
mod logging;
mod model_examples;
mod mysql;
mod postgresql;
mod service_lifecycle;
mod sources;
mod standin_selftest;
mod table_progress;
mod tls;
mod transform;
