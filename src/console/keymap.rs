//! Keys as data: the embedded defaults (`keymap.toml`, a table per context of
//! `{ on, run, desc }`) with a user `keymap.toml` from the config dir laid over them. `run`
//! deserialises into a [`Command`], `desc` is the help text, and `?` lists what is actually
//! bound. Parsing only: reading the user file is the runtime's job.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// The embedded defaults.
pub const DEFAULT_KEYMAP: &str = include_str!("keymap.toml");

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Quit,
    Help,
    CommandLine,
    Filter,
    NextView,
    PrevView,
    ViewConnectors,
    ViewJobs,
    ViewLive,
    ViewBreaker,
    ViewDeadLetters,
    ViewKibana,
    ViewLogs,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Copy,
    Refresh,
    StartSync,
    EditConfig,
    NewConnector,
    Delete,
    CancelJob,
    StatusFilter,
    ConnectorFilter,
    Mark,
    MarkAll,
    Retry,
    RetryAll,
    Drop,
    Execute,
    NextField,
    PrevField,
    Save,
    Reveal,
    /// Editor of an `external` connector: run the program's `spec` and add its fields.
    LoadSpec,
    Confirm,
    /// The history of toasts and errors, in full.
    Messages,
    /// Logs: wrap long lines (again: cut them).
    WrapLines,
    /// A connector's sync jobs (drill-down; esc comes back).
    ConnectorJobs,
    /// A job's dead letters (drill-down; esc comes back).
    JobDeadLetters,
    SortId,
    SortName,
    SortType,
    SortIndex,
    SortStatus,
    SortAge,
    SortConnector,
    SortJob,
    SortError,
    SortWorker,
    /// Removes a default binding (user files only).
    Unbind,
}

impl Command {
    /// Whether the command changes something on the cluster, Kibana or the dead-letter
    /// queue: hidden and refused on a read-only profile. Opening the editor is not: a
    /// read-only profile opens it to view.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Self::StartSync
                | Self::NewConnector
                | Self::Delete
                | Self::CancelJob
                | Self::Retry
                | Self::RetryAll
                | Self::Drop
                | Self::Execute
                | Self::Save
                | Self::LoadSpec
        )
    }

    /// The column a sort command sorts by.
    pub fn sort_key(&self) -> Option<super::sort::SortKey> {
        use super::sort::SortKey;
        Some(match self {
            Self::SortId => SortKey::Id,
            Self::SortName => SortKey::Name,
            Self::SortType => SortKey::Type,
            Self::SortIndex => SortKey::Index,
            Self::SortStatus => SortKey::Status,
            Self::SortAge => SortKey::Age,
            Self::SortConnector => SortKey::Connector,
            Self::SortJob => SortKey::Job,
            Self::SortError => SortKey::Error,
            Self::SortWorker => SortKey::Worker,
            _ => return None,
        })
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyContext {
    Global,
    Connectors,
    Jobs,
    Live,
    Breaker,
    DeadLetters,
    Kibana,
    Logs,
    Detail,
    Editor,
    Confirm,
}

impl KeyContext {
    pub fn title(&self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::Connectors => "Connectors",
            Self::Jobs => "Sync jobs",
            Self::Live => "Live sync",
            Self::Breaker => "Circuit breaker",
            Self::DeadLetters => "Dead letters",
            Self::Kibana => "Kibana connectors",
            Self::Logs => "Logs",
            Self::Detail => "Detail",
            Self::Editor => "Editor and forms",
            Self::Confirm => "Confirmation",
        }
    }
}

/// A key with its modifiers, normalised (a shifted letter is just the capital letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyChord {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            // Terminals send shift-tab as BackTab, some with SHIFT set.
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            other => other,
        };
        Self { code, mods }
    }

    pub fn plain(code: KeyCode) -> Self {
        Self::new(code, KeyModifiers::NONE)
    }

    pub fn from_event(e: &KeyEvent) -> Self {
        Self::new(e.code, e.modifiers)
    }

    /// Whether the key holds control or alt (such keys also work inside text inputs).
    pub fn is_chord(&self) -> bool {
        self.mods
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }

    /// Parses `j`, `G`, `ctrl-r`, `alt-x`, `shift-tab`, `enter`, `f5`, `space`...
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1
                && let Some(r) = lower.strip_prefix("ctrl-")
            {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if rest.len() > 1
                && let Some(r) = lower.strip_prefix("alt-")
            {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if rest.len() > 1
                && let Some(r) = lower.strip_prefix("shift-")
            {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.starts_with('f') && f.len() > 1 => {
                    let n: u8 = f[1..]
                        .parse()
                        .map_err(|_| format!("'{text}' is not a key"))?;
                    if !(1..=24).contains(&n) {
                        return Err(format!("'{text}' is not a key (f1 to f24)"));
                    }
                    KeyCode::F(n)
                }
                _ => {
                    return Err(format!(
                        "'{text}' is not a key (e.g. j, G, ctrl-r, enter, esc, pgdn, f5)"
                    ));
                }
            },
        };
        Ok(Self::new(code, mods))
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::Insert => f.write_str("ins"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: KeyChord,
    pub command: Command,
    pub desc: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    on: String,
    run: Command,
    #[serde(default)]
    desc: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("keymap '{file}': {reason}")]
    Parse { file: String, reason: String },
    #[error("keymap '{file}' [{context}]: {reason}")]
    Binding {
        file: String,
        context: String,
        reason: String,
    },
}

/// The bindings of every context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    contexts: BTreeMap<KeyContext, Vec<Binding>>,
}

impl Keymap {
    /// The embedded defaults. They are tested; should they ever fail to parse, the console
    /// still runs with no keys but `ctrl-c`.
    pub fn defaults() -> Self {
        Self::parse_defaults().unwrap_or_else(|_| {
            let mut contexts = BTreeMap::new();
            contexts.insert(
                KeyContext::Global,
                vec![Binding {
                    key: KeyChord::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                    command: Command::Quit,
                    desc: "Quit".into(),
                }],
            );
            Self { contexts }
        })
    }

    pub fn parse_defaults() -> Result<Self, KeymapError> {
        let mut map = Self {
            contexts: BTreeMap::new(),
        };
        map.apply("keymap.toml (built in)", DEFAULT_KEYMAP)?;
        Ok(map)
    }

    /// The defaults with a user file laid over them.
    pub fn with_user(file: &str, text: &str) -> Result<Self, KeymapError> {
        let mut map = Self::defaults();
        map.apply(file, text)?;
        Ok(map)
    }

    /// Lays bindings over this keymap: a named key gets the new command (replacing what it
    /// did in that context); `unbind` removes it. Nothing else changes.
    fn apply(&mut self, file: &str, text: &str) -> Result<(), KeymapError> {
        let raw: BTreeMap<KeyContext, Vec<RawBinding>> =
            toml::from_str(text).map_err(|e| KeymapError::Parse {
                file: file.to_string(),
                reason: e.to_string(),
            })?;
        for (context, bindings) in raw {
            let list = self.contexts.entry(context).or_default();
            for b in bindings {
                let key = KeyChord::parse(&b.on).map_err(|reason| KeymapError::Binding {
                    file: file.to_string(),
                    context: format!("{context:?}").to_lowercase(),
                    reason,
                })?;
                let old_desc = list.iter().find(|x| x.key == key).map(|x| x.desc.clone());
                list.retain(|x| x.key != key);
                if b.run == Command::Unbind {
                    continue;
                }
                let desc = b
                    .desc
                    .or(old_desc)
                    .or_else(|| {
                        list.iter()
                            .find(|x| x.command == b.run)
                            .map(|x| x.desc.clone())
                    })
                    .unwrap_or_else(|| format!("{:?}", b.run));
                list.push(Binding {
                    key,
                    command: b.run,
                    desc,
                });
            }
        }
        Ok(())
    }

    /// The command of `key` in `context`, falling back to the global bindings.
    pub fn lookup(&self, context: KeyContext, key: KeyChord) -> Option<Command> {
        self.lookup_in(context, key)
            .or_else(|| self.lookup_in(KeyContext::Global, key))
    }

    /// The command of `key` in exactly this context.
    pub fn lookup_in(&self, context: KeyContext, key: KeyChord) -> Option<Command> {
        self.contexts
            .get(&context)?
            .iter()
            .find(|b| b.key == key)
            .map(|b| b.command)
    }

    /// The bindings of one context, in file order.
    pub fn bindings(&self, context: KeyContext) -> &[Binding] {
        self.contexts
            .get(&context)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first key bound to `command` in `context`, else in global.
    pub fn key_for(&self, context: KeyContext, command: Command) -> Option<KeyChord> {
        let find = |c: KeyContext| {
            self.bindings(c)
                .iter()
                .find(|b| b.command == command)
                .map(|b| b.key)
        };
        find(context).or_else(|| {
            if context == KeyContext::Global {
                None
            } else {
                find(KeyContext::Global)
            }
        })
    }

    /// Keys bound twice in one context (a user file cannot create them; tested on defaults).
    pub fn duplicates(&self) -> Vec<(KeyContext, KeyChord)> {
        let mut out = Vec::new();
        for (context, list) in &self.contexts {
            for (i, b) in list.iter().enumerate() {
                if list[..i].iter().any(|x| x.key == b.key) {
                    out.push((*context, b.key));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> KeyChord {
        KeyChord::parse(text).unwrap()
    }

    #[test]
    fn defaults_parse_without_duplicates() {
        let map = Keymap::parse_defaults().unwrap();
        assert!(map.duplicates().is_empty(), "{:?}", map.duplicates());
        assert_eq!(
            map.lookup(KeyContext::DeadLetters, key("ctrl-r")),
            Some(Command::Refresh)
        );
        assert_eq!(
            map.lookup(KeyContext::DeadLetters, key("r")),
            Some(Command::Retry)
        );
        assert_eq!(map.lookup(KeyContext::Jobs, key("j")), Some(Command::Down));
        assert_eq!(map.lookup_in(KeyContext::Editor, key("j")), None);
    }

    #[test]
    fn keys_parse_and_print() {
        assert_eq!(
            key("G"),
            KeyChord::new(KeyCode::Char('G'), KeyModifiers::SHIFT)
        );
        assert_eq!(
            key("ctrl-R"),
            KeyChord::new(KeyCode::Char('r'), KeyModifiers::CONTROL)
        );
        assert_eq!(key("shift-tab"), KeyChord::plain(KeyCode::BackTab));
        assert_eq!(key("space").to_string(), "space");
        assert_eq!(key("ctrl-s").to_string(), "ctrl-s");
        assert_eq!(key("f5"), KeyChord::plain(KeyCode::F(5)));
        assert_eq!(key("-"), KeyChord::plain(KeyCode::Char('-')));
        assert!(KeyChord::parse("hyper-x").is_err());
        assert!(KeyChord::parse("f99").is_err());
    }

    #[test]
    fn a_partial_user_file_changes_only_what_it_names() {
        let defaults = Keymap::defaults();
        let user = "dead_letters = [ { on = \"t\", run = \"retry\" }, { on = \"d\", run = \"unbind\" } ]\n\
                    global = [ { on = \"n\", run = \"down\", desc = \"Next\" } ]\n";
        let map = Keymap::with_user("user.toml", user).unwrap();
        assert_eq!(
            map.lookup(KeyContext::DeadLetters, key("t")),
            Some(Command::Retry)
        );
        assert_eq!(
            map.lookup(KeyContext::DeadLetters, key("r")),
            Some(Command::Retry)
        );
        assert_eq!(map.lookup_in(KeyContext::DeadLetters, key("d")), None);
        assert_eq!(map.lookup(KeyContext::Jobs, key("n")), Some(Command::Down));
        assert_eq!(map.lookup(KeyContext::Jobs, key("j")), Some(Command::Down));
        // Every other context is untouched.
        for context in [
            KeyContext::Connectors,
            KeyContext::Jobs,
            KeyContext::Editor,
            KeyContext::Confirm,
            KeyContext::Kibana,
        ] {
            assert_eq!(
                map.bindings(context),
                defaults.bindings(context),
                "{context:?} changed"
            );
        }
        let kept: Vec<_> = defaults
            .bindings(KeyContext::Global)
            .iter()
            .filter(|b| b.key != key("n"))
            .cloned()
            .collect();
        assert_eq!(
            &map.bindings(KeyContext::Global)[..kept.len()],
            kept.as_slice()
        );
        assert!(map.duplicates().is_empty());
    }

    #[test]
    fn bad_user_files_name_the_problem() {
        let err = Keymap::with_user("k.toml", "jobs = [ { on = \"hyper-q\", run = \"quit\" } ]")
            .unwrap_err();
        assert!(
            err.to_string().contains("'hyper-q'") && err.to_string().contains("k.toml"),
            "{err}"
        );
        let err = Keymap::with_user("k.toml", "jobs = [ { on = \"q\", run = \"explode\" } ]")
            .unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
        assert!(Keymap::with_user("k.toml", "nowhere = []").is_err());
    }
}
