//! `ConfigError`, the one error of configuration loading, and `FieldPath`, the dotted name of
//! a field (`profiles.prod.elasticsearch.nodes[1]`) every error carries.

use std::fmt;
use std::path::PathBuf;

/// A configuration problem, addressed to the user:
/// `FILE:LINE: FIELD: REASON`, e.g.
/// `/home/u/.config/syncdeck/config.toml:12: profiles.prod.elasticsearch.request_timeout:
/// '30 parsecs' is not a duration (use e.g. 500ms, 30s, 5m)`.
/// Parts that do not apply are left out: an error in an environment variable or a flag has
/// no file and names the variable or flag as its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The configuration file, when the problem is in (or about) it.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`.
    pub line: Option<usize>,
    /// Dotted field path, or the environment variable or flag (`SYNCDECK_ES_URL`, `--profile`).
    pub field: Option<String>,
    /// What is wrong and, where it helps, how to fix it.
    pub reason: String,
}

impl ConfigError {
    /// An error in an environment variable or a flag.
    pub fn outside_file(field: &str, reason: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            field: Some(field.to_string()),
            reason: reason.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(&file.display().to_string());
            if let Some(line) = self.line {
                out.push_str(&format!(":{line}"));
            }
            out.push_str(": ");
        }
        if let Some(field) = &self.field {
            out.push_str(field);
            out.push_str(": ");
        }
        out.push_str(&self.reason);
        out
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// The dotted path of a field, printed the way TOML would address it (keys that are not bare
/// are quoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by `key`.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The last key, if the path ends with one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write_key(f, key)?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(key)
    } else {
        write!(f, "{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_toml_keys() {
        let path = FieldPath::root()
            .key("profiles")
            .key("my prod")
            .key("nodes")
            .index(1);
        assert_eq!(path.to_string(), "profiles.\"my prod\".nodes[1]");
        assert_eq!(FieldPath::root().key("a").key("b_c").to_string(), "a.b_c");
    }

    #[test]
    fn messages_leave_out_what_does_not_apply() {
        let full = ConfigError {
            file: Some(PathBuf::from("/c.toml")),
            line: Some(3),
            field: Some("a.b".into()),
            reason: "bad".into(),
        };
        assert_eq!(full.to_string(), "/c.toml:3: a.b: bad");
        let no_line = ConfigError {
            line: None,
            ..full.clone()
        };
        assert_eq!(no_line.to_string(), "/c.toml: a.b: bad");
        let no_field = ConfigError {
            field: None,
            ..full
        };
        assert_eq!(no_field.to_string(), "/c.toml:3: bad");
        assert_eq!(
            ConfigError::outside_file("--profile", "x").to_string(),
            "--profile: x"
        );
    }
}
