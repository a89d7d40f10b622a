//! The connector program as a child process: spawned in its own process group with a small
//! allow-listed environment, stdout read line by line (bounded lines, no read-ahead beyond one
//! buffer), stderr kept as a ring of its last lines, and the whole group killed when the
//! program is dropped, times out or is cancelled. Knows nothing of the Airbyte protocol.

use crate::secret::{MASK, Secret};
use crate::sources::lines::LineReader;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, ChildStdout, Command};

/// The longest stdout line kept; the rest of a longer line is dropped and the line reported
/// as invalid. Large enough for a record carrying a 10 MiB attachment in base64.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// How many stderr lines are kept for error messages, and how long each may be.
const STDERR_LINES: usize = 20;
const STDERR_LINE_BYTES: usize = 2000;

/// After the program exits, how long a process it left behind may keep stdout open.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Variables of syncdeck's own environment a connector program gets; nothing else leaks
/// (syncdeck's environment may hold its own credentials).
pub const INHERITED_ENV: [&str; 24] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUNBUFFERED",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Replaces secret values by the mask in anything the program writes that reaches a log or
/// an error message.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    /// Values shorter than four characters are not redacted: masking every "a" would make
    /// logs unreadable and hide nothing worth hiding.
    pub(crate) fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut secrets: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| s.expose().chars().count() >= 4)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        Self { secrets }
    }

    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.expose()) {
                out = Cow::Owned(out.replace(secret.expose(), MASK));
            }
        }
        // The process-wide masker knows the derived forms (base64, URL-encoded) too.
        match crate::secret::mask(&out) {
            Cow::Borrowed(_) => out,
            Cow::Owned(masked) => Cow::Owned(masked),
        }
    }
}

/// A connector program: what to run and with which environment.
#[derive(Clone)]
pub(crate) struct Program {
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    /// Extra variables; values may be secrets, so they stay wrapped.
    pub(crate) env: Vec<(String, Secret)>,
    pub(crate) redactor: Redactor,
}

impl Program {
    /// `'command subcommand'` for messages.
    pub(crate) fn describe(&self, subcommand: &str) -> String {
        format!("'{} {subcommand}'", self.command)
    }

    /// Starts `command args… extra…` in a new process group, stdin closed.
    pub(crate) fn spawn(&self, extra: &[String]) -> Result<Running, String> {
        let mut command = Command::new(&self.command);
        command
            .args(&self.args)
            .args(extra)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for name in INHERITED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        for (name, value) in &self.env {
            command.env(name, value.expose());
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run '{}': {e}", self.command))?;
        let group = ProcessGroup {
            pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let Some(stdout) = stdout else {
            return Err(format!("'{}' has no standard output", self.command));
        };
        let tail = StderrTail::start(stderr, self.redactor.clone(), self.command.clone());
        Ok(Running {
            child,
            // A pipe gives at most its capacity (64 KiB) a read.
            lines: LineReader::with_read_bytes(stdout, MAX_LINE_BYTES, 64 * 1024),
            group,
            tail,
            exited: None,
            number: 0,
        })
    }
}

/// Kills a whole process group when dropped (the program and anything it started).
struct ProcessGroup {
    pgid: Option<i32>,
}

impl ProcessGroup {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (nothing left in the group) is the normal case after a clean exit.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One line of the program's stdout.
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub(crate) number: u64,
    /// The line without its newline, cut at [`MAX_LINE_BYTES`].
    pub(crate) bytes: &'a [u8],
    /// The full length of the line, when it was longer than what was kept.
    pub(crate) overflow: Option<usize>,
}

/// A running program. Dropping it kills its process group.
pub(crate) struct Running {
    child: Child,
    lines: LineReader<ChildStdout>,
    group: ProcessGroup,
    tail: StderrTail,
    exited: Option<ExitStatus>,
    number: u64,
}

/// Why reading stopped early.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// No line for this long while the program was running.
    Silent(Duration),
    Io(std::io::Error),
}

impl Running {
    /// The next stdout line, `None` at the end. Waits at most `silence` for it while the
    /// program runs; once the program has exited, a process it left behind holding stdout
    /// open is given [`EXIT_GRACE`] and then ignored. Cancel-safe.
    pub(crate) async fn next_line(
        &mut self,
        silence: Duration,
    ) -> Result<Option<Line<'_>>, ReadError> {
        let got_line = loop {
            let wait = if self.exited.is_some() {
                EXIT_GRACE
            } else {
                silence
            };
            tokio::select! {
                read = self.lines.read_line() => break read.map_err(ReadError::Io)?,
                status = self.child.wait(), if self.exited.is_none() => {
                    self.exited = Some(status.map_err(ReadError::Io)?);
                }
                _ = tokio::time::sleep(wait) => {
                    if self.exited.is_some() {
                        self.group.kill();
                        break false;
                    }
                    return Err(ReadError::Silent(silence));
                }
            }
        };
        if !got_line {
            return Ok(None);
        }
        self.number += 1;
        let overflow = (self.lines.len > self.lines.buf.len()).then_some(self.lines.len);
        Ok(Some(Line {
            number: self.number,
            bytes: &self.lines.buf,
            overflow,
        }))
    }

    /// Waits for the program to exit after its output ended, then kills what it left
    /// behind. A program that does not exit within `limit` is killed.
    pub(crate) async fn wait(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let status = match self.exited {
            Some(status) => status,
            None => match tokio::time::timeout(limit, self.child.wait()).await {
                Ok(Ok(status)) => status,
                Ok(Err(e)) => return Err(format!("waiting for the program failed: {e}")),
                Err(_) => {
                    self.group.kill();
                    return Err(format!(
                        "the program closed its output but did not exit within {}s",
                        limit.as_secs()
                    ));
                }
            },
        };
        self.group.kill();
        self.tail.settle().await;
        Ok(status)
    }

    /// The last stderr lines (secrets masked), oldest first.
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        self.tail.lines()
    }
}

/// A description of an exit status: `exit status 3`, `killed by signal 9`.
pub(crate) fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "an unknown exit status".to_string(),
    }
}

/// `; last stderr lines: a | b` or nothing.
pub(crate) fn stderr_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!("; last stderr lines:\n{}", lines.join("\n"))
}

/// The last lines of stderr, read by a task of their own so a chatty program never blocks
/// on a full stderr pipe. Each line is also logged at debug level, secrets masked.
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StderrTail {
    fn start(
        stderr: Option<tokio::process::ChildStderr>,
        redactor: Redactor,
        command: String,
    ) -> Self {
        let lines = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        let task = stderr.map(|stderr| {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = LineReader::new(stderr, STDERR_LINE_BYTES);
                while let Ok(true) = reader.read_line().await {
                    let text = String::from_utf8_lossy(&reader.buf);
                    let text = redactor.redact(text.trim_end()).into_owned();
                    tracing::debug!(program = %command, stderr = %text, "external source stderr");
                    let mut ring = lines.lock().unwrap_or_else(|p| p.into_inner());
                    if ring.len() == STDERR_LINES {
                        ring.pop_front();
                    }
                    ring.push_back(text);
                }
            })
        });
        Self { lines, task }
    }

    /// Lets the reader drain what the program wrote before it exited (bounded).
    async fn settle(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    fn lines(&self) -> Vec<String> {
        let ring = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect()
    }
}

impl Drop for StderrTail {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_longest_secrets_first_and_skips_tiny_ones() {
        let r = Redactor::new([
            Secret::new("abc"),
            Secret::new("token-123"),
            Secret::new("token-123-extra"),
        ]);
        assert_eq!(
            r.redact("a token-123-extra and token-123 abc"),
            format!("a {MASK} and {MASK} abc")
        );
    }
}
