//! Support code shared by the integration tests. Each test binary includes it with `mod support;`
//! and uses only part of it, hence the `allow`s.
//!
//! `standin` is the in-process stand-in Elasticsearch cluster + Kibana (see its module docs).
#![allow(dead_code, unused_imports)]

pub mod mock_api;
pub mod standin;

pub use standin::{
    Faults, KIBANA_NODE, NodeDownMode, RequestRecord, StandIn, StandInAuth, StandInOptions,
};
