//! `sync --events FILE`: the per-document stream of one sync as NDJSON, one line per final
//! outcome of a document (`indexed`, `updated`, `deleted`, `dead_lettered`, `skipped`) with its
//! id, bytes, bulk latency and masked reason. Retries are not outcomes: they are counted in
//! the progress counters, and the document's line comes when its fate is settled.
//!
//! The engine hands outcomes to an [`EventSink`] (a bounded channel, one message per bulk
//! answer) and a writer thread of its own puts them through a buffered file writer, so file
//! I/O never runs on the engine's tasks. Nothing is dropped: when the disk cannot keep up and
//! the channel is full, the sender waits for room (back-pressure, as the sink's own queue
//! does), so the sync slows to the disk's pace rather than losing lines or growing memory.
//! A write error stops the writing, not the sync; the writer keeps draining the channel so the
//! engine never waits on a dead file, and [`EventLog::finish`] reports the error and how many
//! lines were written.

use super::progress::{DocOutcome, Outcome};
use crate::secret::mask::masked;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::sync::mpsc;

/// Messages (bulk answers' worth of outcomes) the channel holds before a sender waits.
const CHANNEL_BATCHES: usize = 64;

/// The writer's buffer: one `write` per this many bytes of lines.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Why the events file is incomplete.
#[derive(Debug, Error)]
pub enum EventsError {
    #[error("cannot create the events file '{}': {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "writing the events file '{}' failed after {written} line(s): {source}; the sync went on, \
         the file is incomplete",
        path.display()
    )]
    Write {
        path: PathBuf,
        written: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("the events writer for '{}' stopped unexpectedly: {reason}", path.display())]
    Writer { path: PathBuf, reason: String },
}

/// Where the engine sends outcomes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Vec<DocOutcome>>,
}

impl EventSink {
    /// Sends the final outcomes among `outcomes` (retries are left out), reasons masked.
    /// Waits while the writer is a full channel behind. Returns how many were not delivered
    /// because the writer is gone (it only goes when its file is finished).
    pub async fn send(&self, outcomes: &[DocOutcome]) -> u64 {
        let lines: Vec<DocOutcome> = outcomes
            .iter()
            .filter(|o| o.outcome != Outcome::Retried)
            .map(|o| DocOutcome {
                reason: o.reason.as_deref().map(masked),
                ..o.clone()
            })
            .collect();
        if lines.is_empty() {
            return 0;
        }
        let n = lines.len() as u64;
        match self.tx.send(lines).await {
            Ok(()) => 0,
            Err(_) => n,
        }
    }
}

/// Opens `path` for writing, truncated, created with mode 0600; an existing regular file
/// other users could read is narrowed to 0600 too (a device such as `/dev/null` is left as
/// it is).
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// An open events file and its writer thread.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    sink: EventSink,
    writer: std::thread::JoinHandle<Result<u64, (u64, std::io::Error)>>,
}

impl EventLog {
    /// Creates (or truncates) `path`, readable by its owner only (it holds document ids and
    /// error reasons, which can quote field values, like the dead-letter queue), and starts
    /// its writer.
    pub fn create(path: &Path) -> Result<Self, EventsError> {
        let file = create_private(path).map_err(|source| EventsError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let writer = std::thread::Builder::new()
            .name("syncdeck-events".to_string())
            .spawn(move || write_lines(file, rx))
            .map_err(|source| EventsError::Create {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            sink: EventSink { tx },
            writer,
        })
    }

    pub fn sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// Waits until every line sent so far is on disk (once every other sink is dropped) and
    /// returns how many lines the file holds.
    pub async fn finish(self) -> Result<u64, EventsError> {
        let Self { path, sink, writer } = self;
        drop(sink);
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        match joined {
            Ok(Ok(Ok(written))) => Ok(written),
            Ok(Ok(Err((written, source)))) => Err(EventsError::Write {
                path,
                written,
                source,
            }),
            Ok(Err(_)) => Err(EventsError::Writer {
                path,
                reason: "it panicked".to_string(),
            }),
            Err(e) => Err(EventsError::Writer {
                path,
                reason: e.to_string(),
            }),
        }
    }
}

/// The writer thread: lines until every sender is gone. After a write error it keeps
/// receiving (and discarding) so that no sender ever waits on it.
fn write_lines(
    file: File,
    mut rx: mpsc::Receiver<Vec<DocOutcome>>,
) -> Result<u64, (u64, std::io::Error)> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let mut written = 0u64;
    let mut failed: Option<std::io::Error> = None;
    while let Some(batch) = rx.blocking_recv() {
        if failed.is_some() {
            continue;
        }
        for outcome in &batch {
            let line = serde_json::to_writer(&mut out, outcome)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = line {
                failed = Some(e);
                break;
            }
            written += 1;
        }
    }
    if failed.is_none()
        && let Err(e) = out.flush()
    {
        failed = Some(e);
    }
    match failed {
        None => Ok(written),
        Some(e) => Err((written, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, outcome: Outcome, reason: Option<&str>) -> DocOutcome {
        DocOutcome {
            id: id.to_string(),
            outcome,
            bytes: 10,
            latency_ms: 3,
            reason: reason.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn every_final_outcome_is_one_line_and_retries_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let log = EventLog::create(&path).unwrap();
        let sink = log.sink();
        // More messages than the channel holds: senders wait, nothing is lost.
        for i in 0..(CHANNEL_BATCHES * 4) {
            let batch = vec![
                outcome(&format!("r{i}"), Outcome::Retried, Some("429")),
                outcome(&format!("d{i}"), Outcome::Indexed, None),
            ];
            assert_eq!(sink.send(&batch).await, 0);
        }
        assert_eq!(
            sink.send(&[outcome("bad", Outcome::DeadLettered, Some("mapper"))])
                .await,
            0
        );
        drop(sink);
        let written = log.finish().await.unwrap();
        assert_eq!(written, (CHANNEL_BATCHES * 4 + 1) as u64);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<DocOutcome> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, written);
        assert!(lines.iter().all(|l| l.outcome != Outcome::Retried));
        assert_eq!(lines[0].id, "d0");
        let last = lines.last().unwrap();
        assert_eq!(
            (last.id.as_str(), last.outcome, last.reason.as_deref()),
            ("bad", Outcome::DeadLettered, Some("mapper"))
        );
    }

    #[tokio::test]
    async fn reasons_are_masked() {
        let secret = "events-secret-token-8841";
        crate::secret::mask::register(secret);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let log = EventLog::create(&path).unwrap();
        let reason = format!("rejected: token {secret} is not a number");
        log.sink()
            .send(&[outcome("x", Outcome::DeadLettered, Some(&reason))])
            .await;
        log.finish().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("rejected: token"), "{text}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let path = dir.path().join("events.ndjson");
        EventLog::create(&path).unwrap().finish().await.unwrap();
        assert_eq!(mode(&path), 0o600);
        // An existing file others could read is narrowed when it is truncated.
        let old = dir.path().join("old.ndjson");
        std::fs::write(&old, "old\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        EventLog::create(&old).unwrap().finish().await.unwrap();
        assert_eq!(mode(&old), 0o600);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_created_is_an_error_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let err = EventLog::create(&dir.path().join("missing/events.ndjson")).unwrap_err();
        assert!(matches!(err, EventsError::Create { .. }), "{err}");
        assert!(err.to_string().contains("events.ndjson"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_write_error_is_reported_and_never_blocks_the_sender() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let log = EventLog::create(Path::new("/dev/full")).unwrap();
        let sink = log.sink();
        for i in 0..(CHANNEL_BATCHES * 4) {
            let batch: Vec<DocOutcome> = (0..100)
                .map(|j| outcome(&format!("d{i}-{j}"), Outcome::Indexed, None))
                .collect();
            sink.send(&batch).await;
        }
        drop(sink);
        let err = log.finish().await.unwrap_err();
        assert!(matches!(err, EventsError::Write { .. }), "{err}");
        assert!(err.to_string().contains("incomplete"), "{err}");
    }
}
