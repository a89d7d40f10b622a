//! Where syncdeck keeps its files: the configuration file, the data directory (embedded store,
//! dead-letter queue) and the state directory (logs). Resolution only: it reads the
//! environment through an injected lookup and never touches the file system, except in
//! [`create_private_dir`], which callers invoke explicitly.

use directories::ProjectDirs;
use std::io;
use std::path::{Path, PathBuf};

/// Environment variable naming the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "SYNCDECK_CONFIG";
/// Environment variable overriding the data directory.
pub const ENV_DATA_DIR: &str = "SYNCDECK_DATA_DIR";
/// Environment variable overriding the state directory.
pub const ENV_STATE_DIR: &str = "SYNCDECK_STATE_DIR";

/// The resolved locations of syncdeck's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The configuration file; it may not exist.
    pub config_file: PathBuf,
    /// True when the file was named by `--config` or `SYNCDECK_CONFIG`: then a missing file is
    /// an error, while a missing default file just means "no file, use the defaults".
    pub config_file_explicit: bool,
    /// The directory of the configuration file (themes and other user files live beside it).
    pub config_dir: PathBuf,
    /// Durable data: the embedded store and the dead-letter queue.
    pub data_dir: PathBuf,
    /// Disposable state: logs.
    pub state_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error(
        "cannot find the home directory to place syncdeck's files; set {ENV_CONFIG}, \
         {ENV_DATA_DIR} and {ENV_STATE_DIR}"
    )]
    NoHome,
}

impl Paths {
    /// Resolves the paths: `explicit_config` (from `--config`) beats `SYNCDECK_CONFIG`, which
    /// beats the platform configuration directory; `SYNCDECK_DATA_DIR` and
    /// `SYNCDECK_STATE_DIR` beat the platform data and state directories. Empty variables
    /// count as unset.
    pub fn resolve(
        explicit_config: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Paths, PathsError> {
        let lookup = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        // The platform directories are only needed for what the environment leaves unset, so
        // a machine without a home directory still works when everything is given.
        let project = ProjectDirs::from("", "", "syncdeck");
        let explicit = explicit_config.or_else(|| lookup(ENV_CONFIG));

        let (config_file, config_file_explicit, config_dir) = match explicit {
            Some(file) => {
                let dir = parent_dir(&file);
                (file, true, dir)
            }
            None => {
                let dir = project.as_ref().ok_or(PathsError::NoHome)?.config_dir();
                (dir.join("config.toml"), false, dir.to_path_buf())
            }
        };
        let data_dir = match lookup(ENV_DATA_DIR) {
            Some(dir) => dir,
            None => project
                .as_ref()
                .ok_or(PathsError::NoHome)?
                .data_dir()
                .to_path_buf(),
        };
        let state_dir = match lookup(ENV_STATE_DIR) {
            Some(dir) => dir,
            // Only Linux has a state directory; elsewhere logs go under the data directory.
            None => {
                let project = project.as_ref().ok_or(PathsError::NoHome)?;
                project
                    .state_dir()
                    .unwrap_or(project.data_dir())
                    .to_path_buf()
            }
        };
        Ok(Paths {
            config_file,
            config_file_explicit,
            config_dir,
            data_dir,
            state_dir,
        })
    }

    /// The directory of the rolling log files.
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// The SQLite file of the embedded backend.
    pub fn embedded_db(&self) -> PathBuf {
        self.data_dir.join("embedded.sqlite3")
    }

    /// The SQLite file of the local dead-letter queue.
    pub fn dlq_db(&self) -> PathBuf {
        self.data_dir.join("dead-letters.sqlite3")
    }
}

/// The directory holding `file`; `.` for a bare file name.
fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (and missing parents) readable only by the owner (mode 0700 on unix), and
/// tightens an existing `dir` to 0700: it holds logs or data other users have no business
/// reading.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        builder.create(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_overrides_every_directory() {
        let env = env_of(&[
            (ENV_CONFIG, "/etc/sd/custom.toml"),
            (ENV_DATA_DIR, "/var/lib/sd"),
            (ENV_STATE_DIR, "/var/state/sd"),
        ]);
        let paths = Paths::resolve(None, &env).unwrap();
        assert_eq!(paths.config_file, PathBuf::from("/etc/sd/custom.toml"));
        assert!(paths.config_file_explicit);
        assert_eq!(paths.config_dir, PathBuf::from("/etc/sd"));
        assert_eq!(
            paths.embedded_db(),
            PathBuf::from("/var/lib/sd/embedded.sqlite3")
        );
        assert_eq!(
            paths.dlq_db(),
            PathBuf::from("/var/lib/sd/dead-letters.sqlite3")
        );
        assert_eq!(paths.log_dir(), PathBuf::from("/var/state/sd/logs"));
    }

    #[test]
    fn flag_beats_environment_and_bare_names_live_in_cwd() {
        let env = env_of(&[(ENV_CONFIG, "/etc/sd/custom.toml"), (ENV_DATA_DIR, "/d")]);
        let env_state = |name: &str| match name {
            ENV_STATE_DIR => Some("/s".to_string()),
            other => env(other),
        };
        let paths = Paths::resolve(Some(PathBuf::from("mine.toml")), &env_state).unwrap();
        assert_eq!(paths.config_file, PathBuf::from("mine.toml"));
        assert_eq!(paths.config_dir, PathBuf::from("."));
        assert!(paths.config_file_explicit);
    }

    #[test]
    fn implicit_config_is_not_explicit_and_empty_variables_are_unset() {
        let env = env_of(&[
            (ENV_CONFIG, ""),
            (ENV_DATA_DIR, "/d"),
            (ENV_STATE_DIR, "/s"),
        ]);
        // Without a home directory (some CI sandboxes) this is the documented error instead.
        match Paths::resolve(None, &env) {
            Ok(paths) => {
                assert!(!paths.config_file_explicit);
                assert!(
                    paths.config_file.ends_with("syncdeck/config.toml")
                        || paths.config_file.ends_with("config.toml")
                );
                assert_eq!(paths.data_dir, PathBuf::from("/d"));
            }
            Err(PathsError::NoHome) => {}
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
