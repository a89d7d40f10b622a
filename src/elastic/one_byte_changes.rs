//! Test support for the lean readers (`lean_answer`, `lean_scan`): a text changed by one
//! byte, deleted, replaced or inserted, to hold a lean reading to serde's on every change.
//! Compiled for tests only.

/// `base` with the byte at `at` deleted (`how` 0), replaced by `byte` (1), or with `byte`
/// inserted before it (2; `at` may then be `base.len()`).
pub(crate) fn mutated(base: &[u8], at: usize, how: usize, byte: u8) -> Vec<u8> {
    let mut text = base.to_vec();
    match how {
        0 => {
            text.remove(at);
        }
        1 => text[at] = byte,
        _ => text.insert(at, byte),
    }
    text
}

/// Every text one change of [`mutated`] away from `base`, with the given bytes.
pub(crate) fn one_byte_changes<'a>(
    base: &'a [u8],
    bytes: &'a [u8],
) -> impl Iterator<Item = Vec<u8>> + 'a {
    (0..=base.len()).flat_map(move |at| {
        (0..3)
            // Only an insert lands after the last byte.
            .filter(move |&how| at < base.len() || how == 2)
            .flat_map(move |how| bytes.iter().map(move |&byte| mutated(base, at, how, byte)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_position_and_kind_of_change_is_made_once() {
        let changes: Vec<Vec<u8>> = one_byte_changes(b"ab", b"x").collect();
        let want: Vec<&[u8]> = vec![
            b"b", b"xb", b"xab", // at 0: delete, replace, insert
            b"a", b"ax", b"axb", // at 1
            b"abx", // after the last byte: insert only
        ];
        assert_eq!(changes, want);
    }
}
