//! Support code shared by the integration tests. The test binary (`tests/it`), the `standin`
//! example and the `sync` bench include it with `#[path] mod support;` and use only part of it,
//! hence the `allow`s.
//!
//! `standin` is the in-process stand-in Elasticsearch cluster + Kibana (see its module docs).
#![allow(dead_code, unused_imports)]

pub mod forwarding;
pub mod mock_api;
pub mod own_process;
pub mod standin;

pub use standin::{
    Faults, KIBANA_NODE, NodeDownMode, RequestRecord, StandIn, StandInAuth, StandInOptions,
};
