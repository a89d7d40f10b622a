//! Copy to the clipboard through OSC 52: the terminal (not the host) owns the clipboard, so
//! it works over SSH and inside tmux. Builds the escape sequence and writes it to the
//! terminal ([`send`]); the runtime says what happened only after the write.
//!
//! Inside tmux the sequence goes out plain, as to any terminal: tmux (with `set-clipboard
//! on`) takes it and passes it to the outer terminal. The DCS passthrough wrapper
//! (`\ePtmux;…`) needs `allow-passthrough on`, which tmux ≥ 3.3 leaves off, and is then
//! dropped without a trace.

use base64::Engine as _;
use std::io::Write;

/// Terminals cap OSC 52 payloads (xterm: 100,000 bytes of base64); larger copies are cut.
pub const MAX_BYTES: usize = 74_000;

/// The OSC 52 sequence that puts `text` on the clipboard, and whether it had to be cut.
pub fn osc52(text: &str) -> (String, bool) {
    let mut end = text.len().min(MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[..end]);
    (format!("\x1b]52;c;{encoded}\x07"), end < text.len())
}

/// What a copy sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// How the copied text reads in a notice: itself when short, else its size.
    pub what: String,
    /// Only the first [`MAX_BYTES`] bytes went.
    pub cut: bool,
    pub in_tmux: bool,
}

impl Sent {
    /// The notice for the operator: what went to the terminal, and what it takes there.
    pub fn message(&self) -> String {
        let mut text = format!("copied {} to the clipboard", self.what);
        if self.cut {
            text.push_str(&format!(" (only the first {MAX_BYTES} bytes)"));
        }
        if self.in_tmux {
            text.push_str(" (through tmux: needs set-clipboard on)");
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("nothing to copy")]
    Empty,
    #[error("nothing was copied: could not write to the terminal ({0})")]
    Write(#[from] std::io::Error),
}

/// Writes the OSC 52 sequence for `text` to the terminal; `in_tmux` only changes the
/// notice (the sequence is the same).
pub fn send(out: &mut impl Write, text: &str, in_tmux: bool) -> Result<Sent, CopyError> {
    if text.is_empty() {
        return Err(CopyError::Empty);
    }
    let (sequence, cut) = osc52(text);
    out.write_all(sequence.as_bytes())?;
    out.flush()?;
    let shown = crate::console::format::safe(text);
    let what = if text.len() > 60 || shown != text {
        format!("{} bytes", text.len())
    } else {
        format!("'{text}'")
    };
    Ok(Sent { what, cut, in_tmux })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_osc_52() {
        let (seq, cut) = osc52("job-42");
        assert_eq!(seq, "\x1b]52;c;am9iLTQy\x07");
        assert!(!cut);
        let (_, cut) = osc52(&"é".repeat(MAX_BYTES));
        assert!(cut);
    }

    #[test]
    fn inside_tmux_the_sequence_goes_out_plain() {
        let mut out = Vec::new();
        let sent = send(&mut out, "job-42", true).unwrap();
        assert_eq!(out, b"\x1b]52;c;am9iLTQy\x07");
        assert!(sent.message().contains("copied 'job-42'"), "{sent:?}");
        assert!(sent.message().contains("set-clipboard on"));
        let mut plain = Vec::new();
        let sent = send(&mut plain, "job-42", false).unwrap();
        assert_eq!(plain, out, "the same bytes in and out of tmux");
        assert_eq!(sent.message(), "copied 'job-42' to the clipboard");
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn nothing_sent_is_never_called_copied() {
        let err = send(&mut Broken, "job-42", false).unwrap_err();
        assert!(!err.to_string().starts_with("copied"), "{err}");
        assert!(err.to_string().contains("nothing was copied"), "{err}");
        let mut out = Vec::new();
        assert!(matches!(send(&mut out, "", false), Err(CopyError::Empty)));
        assert!(out.is_empty());
        let sent = send(&mut out, &"x".repeat(MAX_BYTES + 1), false).unwrap();
        assert!(sent.cut && sent.message().contains("only the first"));
    }
}
