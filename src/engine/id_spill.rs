//! The `_id`s of a full sync's index snapshot, spilled to an anonymous file so that memory
//! holds only their 8-byte hashes. Owns the file's format (each id a little-endian `u32` length
//! and its bytes) and its I/O; knows nothing of indices, hashes or deletions (that is
//! `engine::pipeline`).
//!
//! The file lives in syncdeck's data dir (beside the dead-letter queue), not `$TMPDIR`: at
//! 10M documents it holds a few hundred MB, and `/tmp` is often a RAM-backed tmpfs, which
//! would turn the "ids on disk" promise into memory. It is anonymous (unlinked at creation),
//! so it is gone when dropped, even after a crash. Ids gather in a 1 MiB buffer; each full
//! buffer is written (and read back) on tokio's blocking pool, never on a runtime thread.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// What is gathered before the file system sees a write (and what one read asks for).
const CHUNK: usize = 1 << 20;

/// Runs blocking file work on tokio's blocking pool; a lost task is an I/O error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("the spill file's I/O task failed: {e}")))?
}

/// The directory for spill files: `preferred` (the data dir) when it exists, else the
/// system's temporary dir (an embedded or test setup without a data dir on disk). It asks the
/// file system: call it off the runtime threads.
fn spill_dir(preferred: Option<&Path>) -> PathBuf {
    match preferred {
        Some(dir) if dir.is_dir() => dir.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

/// Where a sync whose dead-letter queue is `dlq` spills: beside it, in the data dir.
pub fn preferred_dir(dlq: &crate::engine::dlq::DeadLetterStore) -> Option<PathBuf> {
    dlq.path().parent().map(Path::to_path_buf)
}

/// Ids being written.
pub struct IdSpill {
    file: Option<File>,
    buffer: Vec<u8>,
}

impl IdSpill {
    /// An empty anonymous file in `preferred` (see [`spill_dir`]).
    pub async fn create(preferred: Option<PathBuf>) -> io::Result<Self> {
        let file = blocking(move || tempfile::tempfile_in(spill_dir(preferred.as_deref()))).await?;
        Ok(Self {
            file: Some(file),
            buffer: Vec::with_capacity(CHUNK),
        })
    }

    /// Appends one id; writes the buffer out when it is full.
    pub async fn push(&mut self, id: &str) -> io::Result<()> {
        let len = u32::try_from(id.len())
            .map_err(|_| io::Error::other(format!("an id of {} bytes", id.len())))?;
        self.buffer.extend_from_slice(&len.to_le_bytes());
        self.buffer.extend_from_slice(id.as_bytes());
        if self.buffer.len() >= CHUNK {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn write_out(&mut self) -> io::Result<()> {
        let mut file = self.take_file()?;
        let mut buffer = std::mem::take(&mut self.buffer);
        let (file, mut buffer) = blocking(move || {
            file.write_all(&buffer)?;
            buffer.clear();
            Ok((file, buffer))
        })
        .await?;
        buffer.clear();
        self.file = Some(file);
        self.buffer = buffer;
        Ok(())
    }

    fn take_file(&mut self) -> io::Result<File> {
        // Only an earlier failed write leaves no file; the spill is unusable after that.
        self.file
            .take()
            .ok_or_else(|| io::Error::other("the spill file was lost to an earlier error"))
    }

    /// Writes out what is buffered and rewinds: the ids can now be read back, in order.
    pub async fn into_reader(mut self) -> io::Result<IdSpillReader> {
        self.write_out().await?;
        let mut file = self.take_file()?;
        let file = blocking(move || {
            file.flush()?;
            file.rewind()?;
            Ok(file)
        })
        .await?;
        Ok(IdSpillReader {
            file: Some(file),
            buffer: Vec::with_capacity(CHUNK),
            at: 0,
            eof: false,
        })
    }
}

/// Ids being read back.
pub struct IdSpillReader {
    file: Option<File>,
    buffer: Vec<u8>,
    /// Where the next unread byte of `buffer` is.
    at: usize,
    eof: bool,
}

impl IdSpillReader {
    /// The next id, `None` at the end of the file.
    pub async fn next_id(&mut self) -> io::Result<Option<String>> {
        let Some(len) = self.take(4).await? else {
            return Ok(None);
        };
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(len);
        let len = u32::from_le_bytes(prefix) as usize;
        let Some(bytes) = self.take(len).await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spill file ends inside an id",
            ));
        };
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The next `n` bytes; `None` when the file ended before any of them (a clean end). A
    /// file that ends part-way is an error.
    async fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        while self.buffer.len() - self.at < n && !self.eof {
            self.read_more(n).await?;
        }
        let available = self.buffer.len() - self.at;
        if available == 0 && n > 0 {
            return Ok(None);
        }
        if available < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spill file ends inside an id",
            ));
        }
        let start = self.at;
        self.at += n;
        Ok(self.buffer.get(start..start + n))
    }

    /// Keeps the unread tail and reads at least a chunk (or `wanted` bytes) more after it.
    async fn read_more(&mut self, wanted: usize) -> io::Result<()> {
        self.buffer.drain(..self.at);
        self.at = 0;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("the spill file was lost to an earlier error"))?;
        let mut buffer = std::mem::take(&mut self.buffer);
        let want = wanted.max(CHUNK);
        let (file, buffer, got) = blocking(move || {
            let start = buffer.len();
            buffer.resize(start + want, 0);
            let mut filled = 0;
            // `read` may return less than asked before the end; fill what it can.
            while filled < want {
                match file.read(&mut buffer[start + filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buffer.truncate(start + filled);
            Ok((file, buffer, filled))
        })
        .await?;
        self.file = Some(file);
        self.buffer = buffer;
        if got == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(ids: &[String]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = IdSpill::create(Some(dir.path().to_path_buf()))
            .await
            .unwrap();
        for id in ids {
            spill.push(id).await.unwrap();
        }
        let mut reader = spill.into_reader().await.unwrap();
        let mut out = Vec::new();
        while let Some(id) = reader.next_id().await.unwrap() {
            out.push(id);
        }
        out
    }

    #[tokio::test]
    async fn ids_come_back_in_order_across_chunk_edges() {
        // Enough ids of varied length (some longer than a chunk) that lengths and bodies
        // straddle the 1 MiB buffer edges both ways.
        let mut ids: Vec<String> = (0..120_000).map(|i| format!("doc-{i}-é✓")).collect();
        ids.insert(5, String::new());
        ids.insert(70_000, "x".repeat(CHUNK + 17));
        ids.push("z".repeat(3 * CHUNK));
        assert_eq!(round_trip(&ids).await, ids);
    }

    #[tokio::test]
    async fn an_empty_spill_reads_nothing() {
        assert!(round_trip(&[]).await.is_empty());
    }

    #[tokio::test]
    async fn a_file_cut_inside_an_id_is_an_error_not_a_short_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = IdSpill::create(Some(dir.path().to_path_buf()))
            .await
            .unwrap();
        spill.push("whole").await.unwrap();
        // A length that promises more bytes than follow.
        spill.buffer.extend_from_slice(&10u32.to_le_bytes());
        spill.buffer.extend_from_slice(b"abc");
        let mut reader = spill.into_reader().await.unwrap();
        assert_eq!(reader.next_id().await.unwrap().as_deref(), Some("whole"));
        let err = reader.next_id().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn the_file_is_made_in_the_given_dir_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = IdSpill::create(Some(dir.path().to_path_buf()))
            .await
            .unwrap();
        spill.push("a").await.unwrap();
        // Anonymous: nothing is listed even while it is open.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        drop(spill);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_sync_spills_beside_its_dead_letter_queue() {
        let dir = tempfile::tempdir().unwrap();
        let dlq =
            crate::engine::dlq::DeadLetterStore::open(&dir.path().join("dlq.sqlite3"), 10).unwrap();
        assert_eq!(preferred_dir(&dlq).as_deref(), Some(dir.path()));
        assert_eq!(spill_dir(preferred_dir(&dlq).as_deref()), dir.path());
    }

    #[test]
    fn a_missing_preferred_dir_falls_back_to_the_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(spill_dir(Some(dir.path())), dir.path());
        let gone = dir.path().join("not-there");
        assert_eq!(spill_dir(Some(&gone)), std::env::temp_dir());
        assert_eq!(spill_dir(None), std::env::temp_dir());
    }
}
