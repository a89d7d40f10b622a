//! Copy to the clipboard through OSC 52: the terminal (not the host) owns the clipboard, so
//! it works over SSH and inside tmux. Builds the escape sequence only; the runtime writes it.

use base64::Engine as _;

/// Terminals cap OSC 52 payloads (xterm: 100,000 bytes of base64); larger copies are cut.
pub const MAX_BYTES: usize = 74_000;

/// The OSC 52 sequence that puts `text` on the clipboard, and whether it had to be cut.
pub fn osc52(text: &str) -> (String, bool) {
    let mut end = text.len().min(MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[..end]);
    let sequence = format!("\x1b]52;c;{encoded}\x07");
    // Inside tmux the sequence must be wrapped to reach the outer terminal.
    (sequence, end < text.len())
}

/// `sequence` wrapped for tmux's passthrough (`TMUX` set).
pub fn tmux_wrap(sequence: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
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
        assert!(tmux_wrap(&seq).starts_with("\x1bPtmux;\x1b\x1b]52"));
    }
}
