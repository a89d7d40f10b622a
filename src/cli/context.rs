//! The CLI's side of [`crate::context`]: the context itself is shared with the console and
//! re-exported here; what is the CLI's own is the exit-code hint for an unreachable cluster.

use super::error::{CliError, EXIT_UNREACHABLE};
use crate::config::ResolvedProfile;

pub use crate::context::{Context, ContextError, open_embedded};

/// Maps a failure to reach the cluster to exit code 3 with a hint.
pub fn unreachable_hint(e: CliError, profile: &ResolvedProfile) -> CliError {
    if e.code != EXIT_UNREACHABLE {
        return e;
    }
    let nodes = profile
        .elasticsearch
        .as_ref()
        .map(|es| {
            es.nodes
                .iter()
                .map(|u| u.as_str().trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    CliError {
        code: EXIT_UNREACHABLE,
        message: format!("{} (profile '{}', nodes: {nodes})", e.message, profile.name),
    }
}
