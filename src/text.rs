//! Text from outside (an API's error body, a job's `error`, a document id) made safe to put
//! on a terminal: control characters are escaped so that a remote server cannot retitle the
//! window, clear the screen or hide output with `ESC` sequences. One function, used by the
//! CLI's human output and by the console.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Which layout characters a caller keeps as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: every control character is escaped (table cells, one-line values).
    Nothing,
    /// Newlines and tabs (multi-line messages).
    Layout,
}

/// `text` with every control character escaped: C0 (including `ESC`), `DEL` and C1 become
/// `\x1b`, `\x7f`, `\u{9b}`…; newline and tab too unless `keep` is [`Keep::Layout`].
/// Borrowed when nothing needed escaping.
pub fn terminal_safe(text: &str, keep: Keep) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() && !(keep == Keep::Layout && matches!(c, '\n' | '\t'));
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// An error and its causes, one after the other (`a: b: c`), a cause left out when the text
/// so far already says it (many errors repeat their source in their own message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_each_new_cause_once() {
        let inner = std::io::Error::other("refused");
        #[derive(Debug)]
        struct Outer(std::io::Error, &'static str);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.1)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(error_chain(&Outer(inner, "connect")), "connect: refused");
        let inner = std::io::Error::other("refused");
        assert_eq!(
            error_chain(&Outer(inner, "connect: refused")),
            "connect: refused"
        );
    }

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let hostile = "id\u{1b}]0;pwned\u{7}x\u{1b}[2J\u{7f}\u{9b}31m";
        assert_eq!(
            terminal_safe(hostile, Keep::Nothing),
            "id\\x1b]0;pwned\\x07x\\x1b[2J\\x7f\\u{9b}31m"
        );
        assert_eq!(terminal_safe("a\nb\tc\r", Keep::Layout), "a\nb\tc\\x0d");
        assert_eq!(terminal_safe("a\nb", Keep::Nothing), "a\\x0ab");
        assert!(matches!(
            terminal_safe("plain é 日本", Keep::Nothing),
            Cow::Borrowed(_)
        ));
    }
}
