//! `BackendError`: what can go wrong talking to a backend, in terms both the Elasticsearch
//! and the embedded implementations map into, and that the CLI turns into exit codes.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackendError {
    /// 404: `resource_not_found_exception` and friends.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a version conflict or a claim that lost the race.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 400 and other rejections, with the server's error type and reason.
    #[error("{kind}: {reason}")]
    Rejected {
        status: u16,
        kind: String,
        reason: String,
    },
    /// 401/403.
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// No node answered (connection refused, timeouts, every node dead).
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// A mutation on a read-only profile.
    #[error("refused: profile '{profile}' is read-only ({action})")]
    ReadOnly { profile: String, action: String },
    /// A malformed answer or a local failure (SQLite, I/O).
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}
