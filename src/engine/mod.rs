//! The embedded sync engine: a Rust take on Elastic's connectors service. A job runner claims
//! jobs and drives one sync: source → extractor → byte-bounded queue → batcher → bulk sink,
//! with per-item retries, a circuit breaker, a durable dead-letter queue and live progress.
//! The engine talks to the cluster only through the backend traits, and never waits for a UI:
//! consoles read [`progress`] snapshots at their own pace.

pub mod batch;
pub mod breaker;
pub mod build;
pub mod cleanup;
pub mod dlq;
pub mod events;
pub mod filtering;
pub mod id_spill;
pub mod lease;
pub mod monitor;
pub mod pipeline;
pub mod progress;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod service;
pub mod sink;
pub mod status;
pub mod transform;

pub use build::build;
