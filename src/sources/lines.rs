//! Reading text one line at a time with a bound on each line, for every source that reads
//! lines from outside (an ndjson file, a connector program's stdout and stderr): a line longer
//! than the bound keeps its first bytes and its full length, and the rest is skipped as it
//! streams by, so no line, however long, is ever held whole.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How much one read of a file asks for. tokio reads a file on its blocking pool, one
/// hand-off between threads a read: at its default 8 KiB, a 300 MB ndjson file took 37,000
/// of them, and the switches cost a quarter of the sync's CPU. (A pipe is read through epoll
/// and gives at most its own capacity a read: it keeps the default.)
pub(crate) const FILE_READ_BYTES: usize = 256 * 1024;

/// Reads lines with a bound on each: a longer line keeps its first `max` bytes and its full
/// length. Partial state lives in the reader, so a dropped `read_line` loses nothing.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    pub(crate) buf: Vec<u8>,
    /// Length of the current line, including dropped bytes.
    pub(crate) len: usize,
    /// The current line is complete; the next call starts a new one.
    done: bool,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self::with_read_bytes(inner, max, 8 * 1024)
    }

    /// A reader whose reads ask for `read_bytes` at a time (see [`FILE_READ_BYTES`]).
    pub(crate) fn with_read_bytes(inner: R, max: usize, read_bytes: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(read_bytes, inner),
            buf: Vec::new(),
            len: 0,
            done: false,
            max,
        }
    }

    /// `true` when a line is in `buf` (the last one may lack its newline), `false` at EOF.
    pub(crate) async fn read_line(&mut self) -> std::io::Result<bool> {
        if self.done {
            self.buf.clear();
            self.len = 0;
            self.done = false;
        }
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                self.done = true;
                return Ok(self.len > 0);
            }
            let newline = memchr::memchr(b'\n', chunk);
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&part[..part.len().min(room)]);
            self.len += part.len();
            let used = newline.map_or(chunk.len(), |i| i + 1);
            // No await between reading the chunk and consuming it: cancellation-safe.
            self.inner.consume(used);
            if newline.is_some() {
                self.done = true;
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_their_length_kept() {
        let input: &[u8] = b"short\n0123456789abcdef\nlast";
        let mut reader = LineReader::new(input, 8);
        assert!(reader.read_line().await.unwrap());
        assert_eq!((reader.buf.as_slice(), reader.len), (&b"short"[..], 5));
        assert!(reader.read_line().await.unwrap());
        assert_eq!((reader.buf.as_slice(), reader.len), (&b"01234567"[..], 16));
        assert!(reader.read_line().await.unwrap());
        assert_eq!(reader.buf, b"last");
        assert!(!reader.read_line().await.unwrap());
        assert!(!reader.read_line().await.unwrap());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever the input and the bound, every line kept is within the bound, its
            /// full length is right, and the lines add up to the input.
            #[test]
            fn lines_are_bounded_and_add_up(
                input in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..4096),
                max in 1usize..64,
            ) {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let expected: Vec<&[u8]> = {
                    let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
                    if input.last().is_none_or(|&b| b == b'\n') {
                        parts.pop();
                    }
                    parts
                };
                let got = rt.block_on(async {
                    let mut reader = LineReader::new(input.as_slice(), max);
                    let mut got = Vec::new();
                    while reader.read_line().await.unwrap() {
                        got.push((reader.buf.clone(), reader.len));
                    }
                    got
                });
                prop_assert_eq!(got.len(), expected.len());
                for ((kept, len), line) in got.iter().zip(&expected) {
                    prop_assert!(kept.len() <= max);
                    prop_assert_eq!(*len, line.len());
                    prop_assert_eq!(kept.as_slice(), &line[..line.len().min(max)]);
                }
            }
        }
    }
}
