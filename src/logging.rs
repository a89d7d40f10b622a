//! Logging set-up: `tracing` events go to a daily rolling file in the log directory (through a
//! background writer) and to an in-memory [`LogTail`] for the console's Logs view. Nothing is
//! ever written to stdout or stderr: the terminal belongs to the UI and to command output.
//! Called once, from `main`; no other module installs a subscriber. Every line passes
//! through the masker ([`crate::secret::mask`]) on its way to the file and the tail, and
//! [`install_panic_hook`] sends panics there too, masked.

use crate::paths::create_private_dir;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{self, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Environment variable with the log filter when `--log-level` is not given.
pub const ENV_LOG: &str = "SYNCDECK_LOG";
/// The filter when neither `--log-level` nor `SYNCDECK_LOG` gives one.
pub const DEFAULT_FILTER: &str = "info";
/// Lines the in-memory tail keeps.
pub const TAIL_LINES: usize = 1000;
/// Daily log files kept on disk; older ones are deleted.
const KEEP_FILES: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create the log directory '{}': {source}", dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot open a log file in '{}': {source}", dir.display())]
    OpenFile {
        dir: PathBuf,
        source: rolling::InitError,
    },
    #[error(
        "{origin}: '{value}' is not a log filter (use e.g. info, debug or warn,syncdeck=debug): {source}"
    )]
    BadFilter {
        origin: &'static str,
        value: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("logging is already set up in this process")]
    AlreadyInitialised,
}

/// Keeps logging alive: dropping it flushes the file writer. Hold it in `main` until exit.
#[derive(Debug)]
pub struct LogGuard {
    tail: LogTail,
    _worker: WorkerGuard,
}

impl LogGuard {
    /// The in-memory tail of formatted lines, for the Logs view.
    pub fn tail(&self) -> LogTail {
        self.tail.clone()
    }
}

/// Sets up logging into `log_dir` (created with mode 0700) with the filter `level`
/// (`--log-level`), else `SYNCDECK_LOG`, else `info`. Fails if called twice in a process.
pub fn init(log_dir: &Path, level: Option<&str>) -> Result<LogGuard, LoggingError> {
    let filter = build_filter(level, std::env::var(ENV_LOG).ok().as_deref())?;
    create_private_dir(log_dir).map_err(|source| LoggingError::CreateDir {
        dir: log_dir.to_path_buf(),
        source,
    })?;
    let appender = rolling::Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("syncdeck")
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(log_dir)
        .map_err(|source| LoggingError::OpenFile {
            dir: log_dir.to_path_buf(),
            source,
        })?;
    let (file_writer, worker) = tracing_appender::non_blocking(appender);
    let tail = LogTail::new(TAIL_LINES);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(Masking(file_writer))
                .with_ansi(false),
        )
        .with(tail_layer(tail.clone()))
        .try_init()
        .map_err(|_| LoggingError::AlreadyInitialised)?;
    Ok(LogGuard {
        tail,
        _worker: worker,
    })
}

/// The `fmt` layer that feeds a tail.
pub fn tail_layer<S>(tail: LogTail) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer().with_writer(tail).with_ansi(false)
}

/// Sends panics to the log (and a short note to stderr), secrets masked. The default hook
/// would print the message as is, and only to stderr, which a service's supervisor may drop.
/// Installed from `main` after logging is set up; the console chains its own hook to it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let report = panic_report(info);
        tracing::error!(panic = %report, "syncdeck panicked");
        eprintln!(
            "syncdeck: {}",
            crate::text::terminal_safe(&report, crate::text::Keep::Layout)
        );
    }));
}

/// What a panic says, with the thread it happened on, masked.
pub fn panic_report(info: &std::panic::PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    crate::secret::masked(format!("thread '{name}' {info}"))
}

/// A `MakeWriter` whose writers collect one event and write it masked, in one piece.
#[derive(Debug, Clone)]
pub struct Masking<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masking<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter {
            inner: self.0.make_writer(),
            buf: Vec::new(),
        }
    }
}

/// Collects one event's bytes; on drop, masks them and hands them to the inner writer.
#[derive(Debug)]
pub struct MaskingWriter<W: io::Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: io::Write> io::Write for MaskingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: io::Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let masked = crate::secret::mask(&text);
        // A log write that fails has nowhere to be reported.
        let _ = self.inner.write_all(masked.as_bytes());
        let _ = self.inner.flush();
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The filter from the flag, else the variable, else the default; empty values count as unset.
fn build_filter(flag: Option<&str>, env: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let (origin, value) = match (non_empty(flag), non_empty(env)) {
        (Some(value), _) => ("--log-level", value),
        (None, Some(value)) => (ENV_LOG, value),
        (None, None) => ("default", DEFAULT_FILTER),
    };
    EnvFilter::builder()
        .parse(value)
        .map_err(|source| LoggingError::BadFilter {
            origin,
            value: value.to_string(),
            source,
        })
}

/// A bounded, shared buffer of the last formatted log lines. Cloning shares the buffer.
#[derive(Debug, Clone)]
pub struct LogTail {
    inner: Arc<Mutex<TailBuffer>>,
}

#[derive(Debug)]
struct TailBuffer {
    lines: VecDeque<String>,
    capacity: usize,
    total: u64,
}

impl LogTail {
    /// An empty tail keeping the last `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let buffer = TailBuffer {
            lines: VecDeque::with_capacity(capacity),
            capacity,
            total: 0,
        };
        Self {
            inner: Arc::new(Mutex::new(buffer)),
        }
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Lines appended since creation, including those already dropped: a cheap way for the
    /// console to see whether anything changed since its last frame.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// Appends one line, dropping the oldest when full.
    pub fn push(&self, line: impl Into<String>) {
        let mut buffer = self.lock();
        if buffer.lines.len() == buffer.capacity {
            buffer.lines.pop_front();
        }
        buffer.lines.push_back(line.into());
        buffer.total += 1;
    }

    // A panic while holding the lock leaves the buffer intact (plain data): keep using it.
    fn lock(&self) -> MutexGuard<'_, TailBuffer> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<'a> MakeWriter<'a> for LogTail {
    type Writer = TailWriter;

    fn make_writer(&'a self) -> Self::Writer {
        TailWriter {
            tail: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// Collects one event's formatted bytes and appends them as lines when dropped (the `fmt`
/// layer makes one writer per event).
#[derive(Debug)]
pub struct TailWriter {
    tail: LogTail,
    buf: Vec<u8>,
}

impl io::Write for TailWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TailWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = crate::secret::mask(&text);
        for line in text.lines().filter(|l| !l.is_empty()) {
            self.tail.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn tail_keeps_the_last_lines() {
        let tail = LogTail::new(3);
        for i in 0..5 {
            tail.push(format!("line {i}"));
        }
        assert_eq!(tail.lines(), ["line 2", "line 3", "line 4"]);
        assert_eq!(tail.total(), 5);
        assert_eq!(LogTail::new(0).lines().len(), 0);
    }

    #[test]
    fn writer_splits_lines_on_drop() {
        use std::io::Write;
        let tail = LogTail::new(10);
        {
            let mut writer = tail.make_writer();
            writer.write_all(b"first\nsec").unwrap();
            writer.write_all(b"ond\n").unwrap();
            assert!(
                tail.lines().is_empty(),
                "nothing before the event is complete"
            );
        }
        assert_eq!(tail.lines(), ["first", "second"]);
    }

    #[test]
    fn events_reach_the_tail_through_the_filter() {
        let tail = LogTail::new(10);
        let subscriber = tracing_subscriber::registry()
            .with(build_filter(Some("warn"), None).unwrap())
            .with(tail_layer(tail.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("quiet-info");
            tracing::warn!(connector = "c1", "loud-warning");
        });
        let lines = tail.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("loud-warning"),
            "{lines:?}"
        );
        assert!(lines[0].contains("connector=\"c1\""), "{lines:?}");
    }

    #[test]
    fn filter_precedence_and_errors() {
        let origin = |flag, env| match build_filter(flag, env) {
            Err(LoggingError::BadFilter { origin, .. }) => origin,
            other => panic!("expected a bad filter, got {other:?}"),
        };
        assert_eq!(origin(Some("nope=bad=x"), Some("info")), "--log-level");
        assert_eq!(origin(None, Some("nope=bad=x")), ENV_LOG);
        assert_eq!(origin(Some(" "), Some("nope=bad=x")), ENV_LOG);
        assert!(build_filter(Some("debug"), Some("nope=bad=x")).is_ok());
        assert!(build_filter(None, None).is_ok());
        let message = build_filter(None, Some("x=y=z")).unwrap_err().to_string();
        assert!(
            message.starts_with("SYNCDECK_LOG: 'x=y=z' is not a log filter"),
            "{message}"
        );
    }
}
