//! The `directory` source: one document per regular file under a root directory, filtered by
//! include/exclude globs. File text is extracted lazily (through `Document.content`), so the
//! engine pays for reading a file only when it decides to index it. Incremental syncs yield
//! only files modified after the saved cursor (`{"mtime": "<ISO-8601>"}`). Symbolic links are
//! followed only to files inside the root. Extraction itself lives in `extract`.
//!
//! A folder or entry that exists but cannot be read (permissions, a symlink loop, a path too
//! long for the system) is yielded as `SourceItem::Invalid` (id `unreadable:<path>`), never
//! only logged: its documents are unknown, so a full sync must not delete them. One that
//! vanished between listing and reading (or a link whose target is gone) is simply gone.

use super::extract::{self, ExtractError, ExtractLimits};
use super::fields::{bool_setting, configuration, field, str_setting};
use super::{
    DataSource, Document, Fields, ItemSender, LazyContent, SourceError, SourceFactory, SourceItem,
    SyncMode,
};
use crate::model::{Configuration, Timestamp};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Builds `directory` sources.
pub struct DirectoryFactory;

impl SourceFactory for DirectoryFactory {
    fn service_type(&self) -> &'static str {
        "directory"
    }

    fn display_name(&self) -> &'static str {
        "Local directory"
    }

    fn default_configuration(&self) -> Configuration {
        configuration([
            field("path", "Directory").text("").tooltip("The directory to index, recursively."),
            field("include", "Include globs")
                .text("**/*")
                .tooltip("Comma-separated globs over paths relative to the directory; '*' stays within one folder, '**' crosses folders."),
            field("exclude", "Exclude globs")
                .text("")
                .optional()
                .tooltip("Comma-separated globs; a file matching any of them is skipped."),
            field("extract_content", "Extract text")
                .toggle(true)
                .tooltip("Index the text of txt, md, html, json, csv, pdf, docx, xlsx and pptx files as 'body'."),
        ])
    }

    fn supports_incremental(&self) -> bool {
        true
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        let settings = DirectorySettings::from_config(config)?;
        check_directory(&settings.root).map_err(|reason| SourceError::Config {
            field: "path".into(),
            reason,
        })
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        super::register_sensitive(config);
        Ok(Box::new(DirectorySource {
            settings: DirectorySettings::from_config(config)?,
        }))
    }
}

fn check_directory(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("'{}' is not a directory", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("'{}' does not exist", path.display()))
        }
        Err(e) => Err(format!("cannot read '{}': {e}", path.display())),
    }
}

struct DirectorySettings {
    root: PathBuf,
    include: GlobSet,
    exclude: GlobSet,
    extract_content: bool,
    limits: ExtractLimits,
}

impl DirectorySettings {
    fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        let root = str_setting(config, "path", "");
        if root.is_empty() {
            return Err(SourceError::Config {
                field: "path".into(),
                reason: "a directory is required".into(),
            });
        }
        let include = str_setting(config, "include", "**/*");
        let include = if include.is_empty() {
            "**/*".to_string()
        } else {
            include
        };
        Ok(Self {
            root: PathBuf::from(root),
            include: glob_set("include", &include)?,
            exclude: glob_set("exclude", &str_setting(config, "exclude", ""))?,
            extract_content: bool_setting(config, "extract_content", true)?,
            limits: ExtractLimits::default(),
        })
    }

    fn wants(&self, relative: &str) -> bool {
        self.include.is_match(relative) && !self.exclude.is_match(relative)
    }
}

fn glob_set(key: &str, list: &str) -> Result<GlobSet, SourceError> {
    let bad = |reason: String| SourceError::Config {
        field: key.to_string(),
        reason,
    };
    let mut builder = GlobSetBuilder::new();
    for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| bad(format!("'{pattern}' is not a valid glob: {}", e.kind())))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| bad(e.to_string()))
}

/// A running `directory` source.
struct DirectorySource {
    settings: DirectorySettings,
}

#[async_trait]
impl DataSource for DirectorySource {
    async fn ping(&mut self) -> Result<(), SourceError> {
        let root = &self.settings.root;
        let unavailable = |e: std::io::Error| {
            SourceError::Unavailable(format!("cannot read '{}': {e}", root.display()))
        };
        let metadata = tokio::fs::metadata(root).await.map_err(unavailable)?;
        if !metadata.is_dir() {
            return Err(SourceError::Unavailable(format!(
                "'{}' is not a directory",
                root.display()
            )));
        }
        // Listing one entry proves the folder is readable, not only visible.
        let mut entries = tokio::fs::read_dir(root).await.map_err(unavailable)?;
        entries.next_entry().await.map_err(unavailable)?;
        Ok(())
    }

    async fn run(&mut self, mode: SyncMode, out: ItemSender) -> Result<Option<Value>, SourceError> {
        let since = match &mode {
            SyncMode::Incremental {
                cursor: Some(cursor),
            } => cursor_mtime(cursor),
            _ => None,
        };
        let root = tokio::fs::canonicalize(&self.settings.root)
            .await
            .map_err(|e| {
                SourceError::Unavailable(format!(
                    "cannot read '{}': {e}",
                    self.settings.root.display()
                ))
            })?;
        let mut walk = Walk {
            settings: &self.settings,
            root,
            since,
            newest: since,
            out: &out,
        };
        walk.run().await?;
        Ok(walk
            .newest
            .map(|t| json!({ "mtime": t.to_rfc3339_opts(SecondsFormat::AutoSi, true) })))
    }
}

// A cursor this source did not write is ignored (with a warning): a full listing is safe.
fn cursor_mtime(cursor: &Value) -> Option<DateTime<Utc>> {
    let parsed = cursor
        .get("mtime")
        .and_then(Value::as_str)
        .and_then(Timestamp::parse)
        .map(|t| t.0);
    if parsed.is_none() {
        tracing::warn!(%cursor, "directory source: unreadable sync cursor; listing every file");
    }
    parsed
}

/// One traversal: depth first, in path order (a folder's entries sorted by name, each
/// subfolder walked where it sorts).
struct Walk<'a> {
    settings: &'a DirectorySettings,
    root: PathBuf,
    since: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
    out: &'a ItemSender,
}

impl Walk<'_> {
    async fn run(&mut self) -> Result<(), SourceError> {
        let root = self.root.clone();
        let top = list_dir(&root).await.map_err(|e| {
            SourceError::Unavailable(format!("cannot read '{}': {e}", root.display()))
        })?;
        // One entry per open folder: the deepest is last.
        let mut open = vec![Folder::new(top)];
        while let Some(folder) = open.last_mut() {
            if folder.ready.is_empty() {
                if folder.listing.is_done() {
                    open.pop();
                    continue;
                }
                let listing = std::mem::take(&mut folder.listing);
                (folder.listing, folder.ready) = stat_next(listing).await?;
            }
            let Some(Entry { path, stat }) = folder.ready.pop_front() else {
                continue;
            };
            if let Visit::Dir = self.visit(&path, stat).await? {
                match list_dir(&path).await {
                    Ok(children) => open.push(Folder::new(children)),
                    Err(e) => self.unreadable(&path, "folder", &e).await?,
                }
            }
        }
        Ok(())
    }

    async fn visit(
        &mut self,
        path: &Path,
        stat: std::io::Result<Stat>,
    ) -> Result<Visit, SourceError> {
        let stat = match stat {
            Ok(stat) => stat,
            Err(e) => {
                self.unreadable(path, "entry", &e).await?;
                return Ok(Visit::Done);
            }
        };
        if stat.kind == Kind::Dir {
            return Ok(Visit::Dir);
        }
        let stat = if stat.kind == Kind::Link {
            match self.link_target(path).await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(Visit::Done),
                Err(e) => {
                    // A link names its document: one the globs leave out is no loss.
                    let wanted = relative_path(&self.root, path)
                        .is_none_or(|relative| self.settings.wants(&relative));
                    if wanted {
                        self.unreadable(path, "link", &e).await?;
                    }
                    return Ok(Visit::Done);
                }
            }
        } else {
            stat
        };
        if stat.kind == Kind::File {
            self.file(path, stat).await?;
        }
        Ok(Visit::Done)
    }

    // Metadata of a link's target when it is a file inside the root. Links to folders are
    // not followed, so a cycle cannot make the walk endless. `Err` when the link cannot be
    // resolved (a loop, say); a link to nothing (its target deleted) is `Ok(None)`.
    async fn link_target(&self, path: &Path) -> std::io::Result<Option<Stat>> {
        let target = tokio::fs::canonicalize(path).await;
        let target = match target {
            Ok(target) => target,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !target.starts_with(&self.root) {
            tracing::debug!(path = %path.display(), "directory source: link leaves the folder; skipped");
            return Ok(None);
        }
        match tokio::fs::metadata(&target).await {
            Ok(metadata) => Ok(metadata.is_file().then(|| Stat::of(&metadata))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A folder or entry that could not be read: its documents are unknown, so it becomes an
    /// `Invalid` item (a dead letter, and a full sync that deletes nothing). One that vanished
    /// since it was listed is gone, not unreadable.
    async fn unreadable(
        &self,
        path: &Path,
        what: &str,
        error: &std::io::Error,
    ) -> Result<(), SourceError> {
        if error.kind() == std::io::ErrorKind::NotFound {
            tracing::debug!(path = %path.display(), "directory source: gone since it was listed");
            return Ok(());
        }
        let relative =
            relative_path(&self.root, path).unwrap_or_else(|| path.display().to_string());
        tracing::warn!(path = %path.display(), %error, "directory source: unreadable {what}");
        self.out
            .send(SourceItem::Invalid {
                id: format!("unreadable:{relative}"),
                reason: format!("cannot read the {what} '{relative}': {error}"),
                raw: json!({ "path": path.to_string_lossy(), "relative": relative, "error": error.to_string() }),
            })
            .await
    }

    async fn file(&mut self, path: &Path, stat: Stat) -> Result<(), SourceError> {
        let Some(relative) = relative_path(&self.root, path) else {
            return Ok(());
        };
        if !self.settings.wants(&relative) {
            return Ok(());
        }
        let mtime = match stat.modified {
            Ok(t) => DateTime::<Utc>::from(t),
            Err(e) => return self.unreadable(path, "file", &e).await,
        };
        self.newest = self.newest.max(Some(mtime));
        if self.since.is_some_and(|since| mtime <= since) {
            return Ok(());
        }
        let doc = file_document(self.settings, path, relative, stat.len, mtime);
        self.out.send(SourceItem::Upsert(doc)).await
    }
}

enum Visit {
    Dir,
    Done,
}

/// A folder being walked: its entries not looked at yet, and the next few with their
/// metadata.
struct Folder {
    listing: Listing,
    ready: VecDeque<Entry>,
}

impl Folder {
    fn new(listing: Listing) -> Self {
        Self {
            listing,
            ready: VecDeque::new(),
        }
    }
}

/// A folder's entry names in sorted order, and how far the walk has come through them.
#[derive(Default)]
struct Listing {
    dir: PathBuf,
    names: Names,
    next: usize,
}

impl Listing {
    fn is_done(&self) -> bool {
        self.next >= self.names.len()
    }

    /// The whole path of the next entry, made only now: a folder of a million entries
    /// holds their names, not a million paths.
    fn next_path(&mut self) -> Option<PathBuf> {
        let name = self.names.get(self.next)?;
        self.next += 1;
        Some(self.dir.join(name))
    }
}

/// Entry names packed into one buffer: a name costs its bytes and 16 more, where a `PathBuf`
/// of the whole path cost its bytes and ~35 more (names of ~20 bytes in a folder of 300,000
/// files: peak RSS 15 MiB lower, see README).
#[cfg(unix)]
#[derive(Default)]
struct Names {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

#[cfg(unix)]
impl Names {
    fn push(&mut self, name: &std::ffi::OsStr) {
        use std::os::unix::ffi::OsStrExt;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name.as_bytes());
        self.spans.push((start, self.bytes.len()));
    }

    /// Byte order, which is the order of `Path`s that differ in their last part only.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let name = |&(start, end): &(usize, usize)| bytes.get(start..end).unwrap_or_default();
        // Names in one folder are distinct: an unstable sort orders them the same.
        self.spans.sort_unstable_by(|a, b| name(a).cmp(name(b)));
        self.bytes.shrink_to_fit();
        self.spans.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, i: usize) -> Option<&std::ffi::OsStr> {
        use std::os::unix::ffi::OsStrExt;
        let &(start, end) = self.spans.get(i)?;
        self.bytes.get(start..end).map(std::ffi::OsStr::from_bytes)
    }
}

/// Elsewhere a name cannot be rebuilt from its bytes without `unsafe`: one string each.
#[cfg(not(unix))]
#[derive(Default)]
struct Names(Vec<std::ffi::OsString>);

#[cfg(not(unix))]
impl Names {
    fn push(&mut self, name: &std::ffi::OsStr) {
        self.0.push(name.to_owned());
    }

    fn sort(&mut self) {
        self.0.sort_unstable();
        self.0.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> Option<&std::ffi::OsStr> {
        self.0.get(i).map(|name| name.as_os_str())
    }
}

/// An entry with what the walk needs of it, not following a link.
struct Entry {
    path: PathBuf,
    stat: std::io::Result<Stat>,
}

/// What the walk reads of an entry's metadata (4 words, where `Metadata` is 22).
struct Stat {
    kind: Kind,
    len: u64,
    modified: std::io::Result<std::time::SystemTime>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link,
    Other,
}

impl Stat {
    fn of(metadata: &std::fs::Metadata) -> Self {
        let t = metadata.file_type();
        let kind = if t.is_symlink() {
            Kind::Link
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Self {
            kind,
            len: metadata.len(),
            modified: metadata.modified(),
        }
    }
}

/// Entries whose metadata one blocking call takes at most. tokio hands every file call to its
/// blocking pool, one thread switch each: a call per entry cost over a third of the CPU of a
/// sync of small files. A batch stays short (and ends after a folder, whose walk comes first)
/// so that what is read of an entry is fresh when its document is made, and a cancelled sync
/// waits for no more than this.
const STAT_BATCH: usize = 64;

/// The metadata of the next entries of `listing` (up to [`STAT_BATCH`], up to and including
/// the first folder), by their whole paths: what the sync reads later goes by the path too, so
/// an entry it cannot reach (a path past PATH_MAX) is unreadable here as well.
async fn stat_next(mut listing: Listing) -> Result<(Listing, VecDeque<Entry>), SourceError> {
    tokio::task::spawn_blocking(move || {
        let mut ready = VecDeque::new();
        while ready.len() < STAT_BATCH {
            let Some(path) = listing.next_path() else {
                break;
            };
            let stat = std::fs::symlink_metadata(&path).map(|m| Stat::of(&m));
            let folder = matches!(&stat, Ok(s) if s.kind == Kind::Dir);
            ready.push_back(Entry { path, stat });
            if folder {
                break;
            }
        }
        (listing, ready)
    })
    .await
    .map_err(|e| SourceError::Failed(format!("reading file metadata: {e}")))
}

/// A folder's entries sorted by name, so syncs list files in a stable order, read in one
/// blocking call (names only: their metadata is read just before they are visited).
async fn list_dir(dir: &Path) -> std::io::Result<Listing> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut names = Names::default();
        for entry in std::fs::read_dir(&dir)? {
            names.push(&entry?.file_name());
        }
        names.sort();
        Ok(Listing {
            dir,
            names,
            next: 0,
        })
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `a/b/c.txt`: forward slashes whatever the platform.
fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<_> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn file_document(
    settings: &DirectorySettings,
    path: &Path,
    relative: String,
    size: u64,
    mtime: DateTime<Utc>,
) -> Document {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let content_type = extract::content_type_for_extension(&extension);
    let stamp = mtime.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut fields = Fields::with_capacity(8);
    fields.push_new("path", Value::String(path.to_string_lossy().into_owned()));
    fields.push_new("name", Value::String(name));
    fields.push_new("extension", Value::String(extension));
    fields.push_new("size", Value::from(size));
    fields.push_new("mtime", Value::String(stamp.clone()));
    fields.push_new("_timestamp", Value::String(stamp.clone()));
    fields.push_new("content_type", Value::from(content_type));

    let mut content = None;
    if settings.extract_content && extract::is_supported(content_type) {
        if size > settings.limits.max_bytes {
            let error = ExtractError::TooLarge {
                size,
                limit: settings.limits.max_bytes,
            };
            fields.push_new("_extraction_error", Value::String(error.to_string()));
        } else {
            content = Some(lazy_text(path.to_path_buf(), content_type, settings.limits));
        }
    }
    Document {
        id: relative,
        timestamp: Some(stamp),
        fields,
        content,
    }
}

/// Reads and extracts the file only when called. A file that became unreadable is an error;
/// a file whose text cannot be extracted is indexed with `_extraction_error` instead.
fn lazy_text(path: PathBuf, content_type: &'static str, limits: ExtractLimits) -> LazyContent {
    Box::new(move || {
        Box::pin(async move {
            // On a blocking thread, within the time limit (binary formats can be slow).
            let extracted = extract::extract_file(path, content_type, limits).await;
            let mut fields = Fields::with_capacity(1);
            match extracted {
                Ok(text) => fields.push_new("body", Value::String(text)),
                Err(e @ ExtractError::Io { .. }) => return Err(SourceError::Failed(e.to_string())),
                Err(e) => fields.push_new("_extraction_error", Value::String(e.to_string())),
            };
            Ok(fields)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata is read a short batch at a time, a batch ending after a folder (whose walk
    /// comes before the entries after it), so what the walk reads of an entry is fresh.
    #[tokio::test]
    async fn metadata_is_read_in_short_batches_that_end_after_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("a{i:02}")), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("b")).unwrap();
        for i in 0..100 {
            std::fs::write(dir.path().join(format!("c{i:03}")), b"yy").unwrap();
        }
        let listing = list_dir(dir.path()).await.unwrap();
        assert_eq!(listing.names.len(), 111);
        let mut folder = Folder::new(listing);
        let mut batches = Vec::new();
        while !folder.listing.is_done() {
            let listing = std::mem::take(&mut folder.listing);
            (folder.listing, folder.ready) = stat_next(listing).await.unwrap();
            batches.push(folder.ready.len());
            let last = folder.ready.back().unwrap();
            let kind = last.stat.as_ref().unwrap().kind;
            assert_eq!(kind == Kind::Dir, last.path.ends_with("b"));
            for entry in folder.ready.drain(..) {
                let stat = entry.stat.unwrap();
                if stat.kind == Kind::File {
                    assert!(stat.modified.is_ok());
                    let name = entry
                        .path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    assert_eq!(stat.len, if name.starts_with('a') { 1 } else { 2 });
                }
            }
        }
        assert_eq!(batches, [11, STAT_BATCH, 100 - STAT_BATCH]);
    }

    /// A listing gives back every name of the folder, whole and in the order of their paths,
    /// whatever their lengths and bytes.
    #[tokio::test]
    async fn a_listing_gives_every_path_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut names: Vec<std::ffi::OsString> = ["b", "a", "ab", "a.b", "Z", "ü", "-", "a b"]
            .into_iter()
            .map(Into::into)
            .chain((0..300).map(|i| format!("{}{i}", "x".repeat(i % 200)).into()))
            .collect();
        // Linux file systems take any bytes; macOS's refuse names that are not UTF-8.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::ffi::OsStringExt;
            names.push(std::ffi::OsString::from_vec(vec![b'n', 0xff, 0xfe]));
        }
        for name in &names {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        names.push("sub".into());
        let mut expected: Vec<PathBuf> = names.iter().map(|n| dir.path().join(n)).collect();
        expected.sort();

        let mut listing = list_dir(dir.path()).await.unwrap();
        let mut got = Vec::new();
        while let Some(path) = listing.next_path() {
            got.push(path);
        }
        assert!(listing.is_done());
        assert_eq!(got, expected);
        assert!(list_dir(&dir.path().join("missing")).await.is_err());
    }

    #[test]
    fn globs_stay_within_folders_unless_doubled() {
        let set = glob_set("include", "*.md, docs/**").unwrap();
        assert!(set.is_match("a.md"));
        assert!(!set.is_match("sub/a.md"));
        assert!(set.is_match("docs/x/y.txt"));
        let all = glob_set("include", "**/*").unwrap();
        assert!(all.is_match("top.txt") && all.is_match("a/b/c.txt"));
        let err = glob_set("exclude", "a[").unwrap_err().to_string();
        assert!(err.contains("'exclude'") && err.contains("'a['"), "{err}");
    }

    #[test]
    fn relative_paths_use_forward_slashes() {
        let root = Path::new("/r");
        assert_eq!(
            relative_path(root, Path::new("/r/a/b.txt")).as_deref(),
            Some("a/b.txt")
        );
        assert_eq!(relative_path(root, Path::new("/r")), None);
        assert_eq!(relative_path(root, Path::new("/elsewhere/x")), None);
    }

    #[test]
    fn validate_names_the_field_and_the_path() {
        let mut config = DirectoryFactory.default_configuration();
        config.0.get_mut("path").unwrap().value = Value::from("/no/such/dir-xyz");
        let err = DirectoryFactory.validate(&config).unwrap_err().to_string();
        assert_eq!(
            err,
            "configuration field 'path': '/no/such/dir-xyz' does not exist"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        config.0.get_mut("path").unwrap().value =
            Value::from(file.path().to_string_lossy().as_ref());
        let err = DirectoryFactory.validate(&config).unwrap_err().to_string();
        assert!(err.ends_with("is not a directory"), "{err}");
    }

    #[test]
    fn unreadable_cursors_mean_a_full_listing() {
        assert!(cursor_mtime(&json!({"mtime": "garbage"})).is_none());
        assert!(cursor_mtime(&json!("x")).is_none());
        let t = cursor_mtime(&json!({"mtime": "2024-05-01T10:00:00.123456789Z"})).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
    }
}
