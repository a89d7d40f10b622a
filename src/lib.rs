//! syncdeck: a terminal console and embedded sync engine for Elastic connectors.
//!
//! A tour of the crate:
//! - [`model`]: the domain types (Connector, SyncJob, ConfigField, DeadLetter), defined once.
//! - [`config`]: profiles, secret references, validation with file/line/field errors.
//! - [`elastic`] and [`kibana`]: HTTP clients for Elasticsearch and Kibana.
//! - [`backend`]: the `ControlPlane` and `DocumentStore` traits, over Elasticsearch or the
//!   embedded SQLite store.
//! - [`context`] and [`output`]: what a command or the console runs against (the backends of
//!   the resolved profile) and how the CLI prints; shared by `cli` and `console`.
//! - [`cli`]: the headless commands, thin over the above.
//!
//! The binary (`main.rs`) only installs the allocator (tuned by [`alloc`]), parses arguments,
//! sets up logging and dispatches.

// No unsafe code, except `alloc`, which is the global allocator (over mimalloc's C API) and
// sets the allocator's options.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

#[allow(unsafe_code)]
pub mod alloc;
pub mod backend;
pub mod cli;
pub mod config;
pub mod console;
pub mod context;
pub mod elastic;
pub mod engine;
pub mod kibana;
pub mod logging;
pub mod model;
pub mod output;
pub mod paths;
pub mod secret;
pub mod sources;
pub mod sqlite;
pub mod text;
pub mod tls;

#[cfg(test)]
mod layering;
