//! The pieces of JSON the lean readers (`lean_answer` for bulk answers, `lean_scan` for id
//! pages) both read, each exactly as serde_json reads it or not at all. Nothing else here.

/// Moves `at` past `text` when `bytes` continues with it there.
pub(super) fn step_over(bytes: &[u8], at: &mut usize, text: &[u8]) -> Option<()> {
    if bytes.get(*at..)?.starts_with(text) {
        *at += text.len();
        Some(())
    } else {
        None
    }
}

/// Whether `rest`, what follows a lean reading's closing brace, is whitespace only: serde
/// accepts trailing whitespace and nothing else.
pub(super) fn only_whitespace(rest: &[u8]) -> bool {
    rest.iter()
        .all(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
}

/// The number of digits of the JSON integer `rest` starts with (no sign), or `None` when it
/// does not start with one the lean readers take: no digits, a leading zero before another
/// digit (invalid JSON), or a fraction or exponent after them (left to serde).
pub(super) fn integer_digits(rest: &[u8]) -> Option<usize> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest.first() == Some(&b'0')) {
        return None;
    }
    if matches!(rest.get(digits), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_integers_and_trailing_whitespace_as_serde_reads_them() {
        assert_eq!(integer_digits(b"0"), Some(1));
        assert_eq!(integer_digits(b"120]"), Some(3));
        assert_eq!(integer_digits(b"7,"), Some(1));
        for refused in [&b""[..], b"-1", b"01", b"1.5", b"1e3", b"2E1", b"x"] {
            assert_eq!(integer_digits(refused), None, "{refused:?}");
        }
        let mut at = 1;
        assert_eq!(step_over(b"{\"a\":1}", &mut at, b"\"a\":"), Some(()));
        assert_eq!(at, 5);
        assert_eq!(step_over(b"{\"a\":1}", &mut at, b"2"), None);
        assert_eq!(at, 5);
        assert_eq!(step_over(b"{}", &mut 9, b""), None);
        assert!(only_whitespace(b" \n\r\t"));
        assert!(only_whitespace(b""));
        assert!(!only_whitespace(b" x"));
        assert!(!only_whitespace(b"\x0c"));
    }
}
