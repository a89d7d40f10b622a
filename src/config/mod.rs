//! Configuration: the TOML file, named profiles (contexts), file discovery through
//! `directories`, secret references (`env:NAME`, `file:PATH`), overrides from flags and the
//! environment, and validation whose every error names the file, the line and the field.
//! The result is a [`LoadedConfig`] holding a [`ResolvedProfile`] of ready settings; nothing
//! else reads the file. Precedence: flags, then environment variables, then the file.
//!
//! Stages: read the file (`load`), parse it with spans (`file`, `source`), check every
//! profile (`check`), select one and lay the overrides over it, dereferencing its secrets
//! (`resolve`).

mod check;
mod error;
pub mod file;
mod overrides;
mod profile;
mod resolve;
mod source;
mod units;
mod values;

pub use error::ConfigError;
pub use overrides::{
    ENV_ES_API_KEY, ENV_ES_PASSWORD, ENV_ES_URL, ENV_ES_USER, ENV_KIBANA_URL, ENV_PROFILE,
    Overrides,
};
pub use profile::{
    Auth, BreakerSettings, EngineSettings, EsSettings, KibanaSettings, ResolvedProfile,
    SniffSettings, TlsSettings,
};
pub use profile::{DEFAULT_ITEM_RETRY_BUDGET, DEFAULT_MAX_RESPONSE_BYTES};
pub use units::{format_duration, saturating_budget};
pub use units::{parse_duration, parse_size};

use crate::paths::Paths;
use check::Ctx;
use source::SourceMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The built-in profile used when nothing names a cluster: the embedded store.
pub const EMBEDDED_PROFILE: &str = "embedded";
/// The ad-hoc profile built from flags and environment variables when the file has none.
pub const ENV_PROFILE_NAME: &str = "env";

/// A configuration file larger than this is refused: it is surely the wrong file.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Everything the binary needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The selected profile, resolved.
    pub profile: ResolvedProfile,
    /// The profiles one can switch to: the file's, then the built-in `embedded`.
    pub profile_names: Vec<String>,
    /// The file read, if any.
    pub source: Option<PathBuf>,
    pub ui: UiSettings,
}

/// Console settings (`[ui]`).
#[derive(Debug, Clone, PartialEq)]
pub struct UiSettings {
    /// How often views poll the backend.
    pub refresh_interval: Duration,
    /// Theme name.
    pub theme: String,
    /// Capture the mouse.
    pub mouse: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(2),
            theme: "default".to_string(),
            mouse: false,
        }
    }
}

/// Loads the configuration: reads `paths.config_file` (a missing implicit file means
/// defaults; a missing explicit one is an error), checks it, selects the profile and applies
/// the overrides. `env` looks up environment variables (injected so tests need not touch the
/// process environment).
pub fn load(
    paths: &Paths,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    match read_file(&paths.config_file, paths.config_file_explicit)? {
        Some((text, mode)) => load_text(&text, &paths.config_file, mode, overrides, env),
        None => load_defaults(&paths.config_file, overrides, env),
    }
}

/// Loads a configuration from text, as if read from `source` (for messages and relative
/// paths), without the file-permission check: for validating a buffer being edited.
pub fn load_str(
    text: &str,
    source: &Path,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    load_text(text, source, None, overrides, env)
}

fn load_text(
    text: &str,
    source: &Path,
    mode: Option<u32>,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let map = SourceMap::new(text);
    let parsed: file::ConfigFile = toml::from_str(text).map_err(|e| map.toml_error(source, &e))?;
    let ctx = Ctx {
        file: Some(source),
        dir: source
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        map: Some(map),
        mode,
        env,
    };
    let checked = check::check_file(&ctx, parsed)?;
    let ui = checked.ui.clone();
    let mut profile_names = check::profile_names(checked.profiles.keys());
    let profile = resolve::resolve(&ctx, checked, overrides, None)?;
    add_ad_hoc_name(&mut profile_names, &profile);
    Ok(LoadedConfig {
        profile,
        profile_names,
        source: Some(source.to_path_buf()),
        ui,
    })
}

/// No file: the embedded default, or what flags and environment variables describe.
fn load_defaults(
    looked_at: &Path,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let ctx = Ctx {
        file: None,
        dir: PathBuf::from("."),
        map: None,
        mode: None,
        env,
    };
    let checked = check::check_file(&ctx, file::ConfigFile::default())?;
    let mut profile_names = check::profile_names(checked.profiles.keys());
    let profile = resolve::resolve(&ctx, checked, overrides, Some(looked_at))?;
    add_ad_hoc_name(&mut profile_names, &profile);
    Ok(LoadedConfig {
        profile,
        profile_names,
        source: None,
        ui: UiSettings::default(),
    })
}

fn add_ad_hoc_name(names: &mut Vec<String>, profile: &ResolvedProfile) {
    if !names.contains(&profile.name) {
        names.push(profile.name.clone());
    }
}

/// Reads the file: `None` when an implicit file does not exist; its text and, on unix, its
/// permission bits otherwise.
fn read_file(path: &Path, explicit: bool) -> Result<Option<(String, Option<u32>)>, ConfigError> {
    let fail = |reason: String| ConfigError {
        file: Some(path.to_path_buf()),
        line: None,
        field: None,
        reason,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail("the configuration file does not exist".to_string()));
        }
        Err(e) => return Err(fail(format!("cannot read the configuration file: {e}"))),
    };
    if !metadata.is_file() {
        return Err(fail("is not a regular file".to_string()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(format!("cannot read the configuration file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(
            "is larger than 1 MiB; is it the right file?".to_string(),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
        ConfigError {
            line: Some(line),
            ..fail("is not valid UTF-8".to_string())
        }
    })?;
    Ok(Some((text, file_mode(&metadata))))
}

#[cfg(unix)]
fn file_mode(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(metadata.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn file_mode(_metadata: &std::fs::Metadata) -> Option<u32> {
    None
}
