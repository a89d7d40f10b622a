//! `CliError`: a failure of a command, with the exit code it maps to. Exit codes are part of
//! the interface: 0 ok, 1 operation failed, 2 usage or configuration error, 3 cluster
//! unreachable (4 is reserved for `sync`: completed with dead-lettered documents).

use crate::backend::BackendError;
use std::fmt;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_DEAD_LETTERS: u8 = 4;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Adds what was being done in front of the message.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<BackendError> for CliError {
    fn from(e: BackendError) -> Self {
        let code = match e {
            BackendError::Unreachable(_) => EXIT_UNREACHABLE,
            _ => EXIT_FAILED,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<crate::context::ContextError> for CliError {
    fn from(e: crate::context::ContextError) -> Self {
        let code = if e.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_FAILED
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::failed(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
