//! Maps between positions in the configuration text and field paths, so every error can name
//! a line and a field: byte offsets (from `toml`'s error spans) → line and field, and field
//! paths (from validation) → line. Built on `toml`'s spanned document tree; text only, no I/O.

use super::error::{ConfigError, FieldPath, Segment};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Deeper than any field of the format; bounds the walk on hostile input.
const MAX_DEPTH: usize = 32;

/// The spanned tree of one configuration text.
pub struct SourceMap<'a> {
    text: &'a str,
    root: Spanned<DeTable<'a>>,
}

impl<'a> SourceMap<'a> {
    /// Parses `text` leniently: a syntax error leaves a partial tree that still locates the
    /// fields before (and often at) the error.
    pub fn new(text: &'a str) -> Self {
        let (root, _errors) = DeTable::parse_recoverable(text);
        Self { text, root }
    }

    /// The 1-based line of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        let bytes = self.text.as_bytes();
        let end = offset.min(bytes.len());
        1 + bytes[..end].iter().filter(|b| **b == b'\n').count()
    }

    /// The line where `path` is written, or where its nearest written ancestor is (for a
    /// missing field, the line of its table).
    pub fn line_of(&self, path: &FieldPath) -> Option<usize> {
        let mut table: Option<&DeTable<'a>> = Some(self.root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'a>>]> = None;
        let mut found: Option<usize> = None;
        for segment in &path.0 {
            let (start, value) = match segment {
                Segment::Key(key) => {
                    let Some((k, v)) =
                        table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == key))
                    else {
                        break;
                    };
                    (k.span().start, v)
                }
                Segment::Index(index) => {
                    let Some(v) = array.and_then(|a| a.get(*index)) else {
                        break;
                    };
                    (v.span().start, v)
                }
            };
            found = Some(start);
            table = value.get_ref().as_table();
            array = value.get_ref().as_array().map(|a| &a[..]);
        }
        found.map(|offset| self.line_at(offset))
    }

    /// The field at `offset`: the key written there if any (an unknown field is reported at
    /// its key), else the deepest field whose value covers it.
    pub fn path_at(&self, offset: usize) -> Option<FieldPath> {
        let mut hits = Hits {
            offset,
            key: None,
            value: None,
        };
        walk_table(self.root.get_ref(), &FieldPath::root(), 0, &mut hits);
        hits.key.or(hits.value)
    }

    /// Converts a `toml` error (syntax or type) into a `ConfigError` for `file`.
    pub fn toml_error(&self, file: &Path, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        ConfigError {
            file: Some(file.to_path_buf()),
            line: span.as_ref().map(|s| self.line_at(s.start)),
            field: span
                .and_then(|s| self.path_at(s.start))
                .map(|p| p.to_string()),
            reason: tidy_message(error.message()),
        }
    }
}

fn covers(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// The deepest fields found so far whose key, or whose value, covers `offset`.
struct Hits {
    offset: usize,
    key: Option<FieldPath>,
    value: Option<FieldPath>,
}

impl Hits {
    fn keep(slot: &mut Option<FieldPath>, candidate: &FieldPath) {
        if slot.as_ref().is_none_or(|b| candidate.0.len() > b.0.len()) {
            *slot = Some(candidate.clone());
        }
    }
}

fn walk_table(table: &DeTable<'_>, path: &FieldPath, depth: usize, hits: &mut Hits) {
    if depth > MAX_DEPTH {
        return;
    }
    for (key, value) in table.iter() {
        let child = path.key(key.get_ref());
        if covers(key.span(), hits.offset) {
            Hits::keep(&mut hits.key, &child);
        }
        if covers(value.span(), hits.offset) {
            Hits::keep(&mut hits.value, &child);
        }
        walk_value(value, &child, depth + 1, hits);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, path: &FieldPath, depth: usize, hits: &mut Hits) {
    match value.get_ref() {
        // Header tables are spread over the file: always look inside.
        DeValue::Table(table) => walk_table(table, path, depth, hits),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child = path.index(i);
                if covers(item.span(), hits.offset) {
                    Hits::keep(&mut hits.value, &child);
                }
                walk_value(item, &child, depth + 1, hits);
            }
        }
        _ => {}
    }
}

/// `toml`/serde messages quote with backticks; the house style is single quotes.
fn tidy_message(message: &str) -> String {
    message.trim().replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "default_profile = 'prod'\n\
                        [profiles.prod]\n\
                        read_only = true\n\
                        [profiles.prod.elasticsearch]\n\
                        nodes = [\n  'https://a:9200',\n  'https://b:9200',\n]\n\
                        request_timeout = '30s'\n";

    fn path(keys: &[&str]) -> FieldPath {
        keys.iter().fold(FieldPath::root(), |p, k| p.key(k))
    }

    #[test]
    fn lines_of_paths() {
        let map = SourceMap::new(TEXT);
        assert_eq!(map.line_of(&path(&["default_profile"])), Some(1));
        assert_eq!(map.line_of(&path(&["profiles", "prod"])), Some(2));
        assert_eq!(
            map.line_of(&path(&["profiles", "prod", "read_only"])),
            Some(3)
        );
        let nodes = path(&["profiles", "prod", "elasticsearch", "nodes"]);
        assert_eq!(map.line_of(&nodes), Some(5));
        assert_eq!(map.line_of(&nodes.index(1)), Some(7));
        // A missing field is reported at its table.
        assert_eq!(
            map.line_of(&path(&["profiles", "prod", "elasticsearch", "gzip"])),
            Some(4)
        );
        assert_eq!(map.line_of(&path(&["ui"])), None);
    }

    #[test]
    fn paths_at_offsets() {
        let map = SourceMap::new(TEXT);
        let at = |needle: &str| {
            map.path_at(TEXT.find(needle).unwrap())
                .map(|p| p.to_string())
        };
        assert_eq!(
            at("'30s'").as_deref(),
            Some("profiles.prod.elasticsearch.request_timeout")
        );
        assert_eq!(
            at("'https://b").as_deref(),
            Some("profiles.prod.elasticsearch.nodes[1]")
        );
        assert_eq!(at("read_only").as_deref(), Some("profiles.prod.read_only"));
        assert_eq!(at("'prod'").as_deref(), Some("default_profile"));
    }

    #[test]
    fn a_key_wins_over_the_header_it_sits_in() {
        let text = "[profile.prod]\n";
        let map = SourceMap::new(text);
        assert_eq!(
            map.path_at(1).map(|p| p.to_string()).as_deref(),
            Some("profile")
        );
        // The opening bracket is no key: the deepest table the header defines.
        assert_eq!(
            map.path_at(0).map(|p| p.to_string()).as_deref(),
            Some("profile.prod")
        );
    }

    #[test]
    fn syntax_errors_still_locate_the_field() {
        let text = "[profiles.prod.elasticsearch]\nrequest_timeout = 30s\n";
        let map = SourceMap::new(text);
        let err = toml::from_str::<toml::Table>(text).unwrap_err();
        let config_err = map.toml_error(Path::new("/c.toml"), &err);
        assert_eq!(config_err.line, Some(2));
        assert_eq!(
            config_err.field.as_deref(),
            Some("profiles.prod.elasticsearch.request_timeout")
        );
    }
}
