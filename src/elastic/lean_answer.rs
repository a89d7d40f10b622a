//! The common `_bulk` answer, read without a JSON parser. With syncdeck's `filter_path`
//! (see [`super::documents::BULK_FILTER_PATH`]) an answer in which every item went through is
//! a fixed shape, `{"errors":false,"took":5,"items":[{"index":{"result":"created","status":201}},…]}`,
//! and reading it with serde cost ~1,400 instructions an item: a sixth of a whole sync's work
//! per document. This module matches that exact compact shape (the top-level fields in any
//! order, each item an op holding `result` then `status`, a documented result word) and gives
//! up on anything else (a space, an `_id`, an `error`, an unknown word, `ingest_took`), leaving
//! the answer to serde. What it returns is what serde would: tests change lean answers byte by
//! byte and hold the two to the same reading on every change this module accepts.

use crate::model::{BulkItem, BulkOp, BulkResponse};
use std::borrow::Cow;

/// The answer when it has exactly the lean shape; `None` for anything else.
pub(crate) fn parse(bytes: &[u8], expected: usize) -> Option<BulkResponse> {
    let mut at = Cursor { bytes, at: 0 };
    at.literal(b"{")?;
    let (mut took, mut errors) = (None, None);
    loop {
        // A field twice is an error to serde: left to it.
        if at.literal(b"\"took\":").is_some() {
            if took.replace(at.number()?).is_some() {
                return None;
            }
        } else if at.literal(b"\"errors\":").is_some() {
            if errors.replace(at.boolean()?).is_some() {
                return None;
            }
        } else if at.literal(b"\"items\":[").is_some() {
            break;
        } else {
            return None;
        }
        at.literal(b",")?;
    }
    // An item with a three-digit status is at least 41 bytes; the capacity is only a hint
    // (bounded by the answer's length), a longer list grows as usual.
    let mut items = Vec::with_capacity(expected.min(bytes.len() / 41));
    if at.literal(b"]").is_none() {
        loop {
            items.push(at.item()?);
            if at.literal(b",").is_none() {
                break;
            }
        }
        at.literal(b"]")?;
    }
    at.literal(b"}")?;
    if !super::lean_json::only_whitespace(bytes.get(at.at..)?) {
        return None;
    }
    Some(BulkResponse {
        took: took.unwrap_or(0),
        errors: errors.unwrap_or(false),
        items,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

const OPS: [(&[u8], BulkOp); 4] = [
    (b"{\"index\":{\"result\":\"", BulkOp::Index),
    (b"{\"create\":{\"result\":\"", BulkOp::Create),
    (b"{\"update\":{\"result\":\"", BulkOp::Update),
    (b"{\"delete\":{\"result\":\"", BulkOp::Delete),
];

const RESULTS: [(&[u8], &str); 5] = [
    (b"created\",\"status\":", "created"),
    (b"updated\",\"status\":", "updated"),
    (b"deleted\",\"status\":", "deleted"),
    (b"not_found\",\"status\":", "not_found"),
    (b"noop\",\"status\":", "noop"),
];

impl Cursor<'_> {
    /// Steps over `text` when the answer continues with it.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        super::lean_json::step_over(self.bytes, &mut self.at, text)
    }

    /// A JSON integer with no sign, fraction or exponent, fitting a `u64` (what serde reads
    /// into `took`). Anything else is left to serde.
    fn number(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.at..)?;
        let digits = super::lean_json::integer_digits(rest)?;
        // 19 digits always fit a u64.
        if digits > 19 {
            return None;
        }
        let value = rest
            .get(..digits)?
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        self.at += digits;
        Some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"false").is_some() {
            Some(false)
        } else {
            self.literal(b"true").map(|()| true)
        }
    }

    /// `{"<op>":{"result":"<word>","status":<status>}}`.
    fn item(&mut self) -> Option<BulkItem> {
        let op = OPS
            .iter()
            .find_map(|(text, op)| self.literal(text).map(|()| *op))?;
        let result = RESULTS
            .iter()
            .find_map(|(text, word)| self.literal(text).map(|()| *word))?;
        let status = u16::try_from(self.number()?).ok()?;
        self.literal(b"}}")?;
        Some(BulkItem {
            op,
            id: String::new(),
            status,
            result: Some(Cow::Borrowed(result)),
            error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elastic::documents::parse_bulk_response_with_serde;
    use crate::elastic::one_byte_changes::{mutated, one_byte_changes};
    use proptest::prelude::*;

    fn both(text: &str) -> (Option<BulkResponse>, Option<BulkResponse>) {
        (
            parse(text.as_bytes(), 3),
            parse_bulk_response_with_serde(text.as_bytes(), 3).ok(),
        )
    }

    #[test]
    fn the_lean_answers_elasticsearch_writes_are_read_as_serde_reads_them() {
        for text in [
            r#"{"errors":false,"took":7,"items":[{"index":{"result":"created","status":201}},{"index":{"result":"updated","status":200}}]}"#,
            r#"{"took":7,"errors":false,"items":[{"delete":{"result":"not_found","status":404}},{"update":{"result":"noop","status":200}},{"create":{"result":"created","status":201}},{"delete":{"result":"deleted","status":200}}]}"#,
            r#"{"errors":false,"items":[]}"#,
            "{\"took\":0,\"errors\":false,\"items\":[{\"index\":{\"result\":\"created\",\"status\":201}}]}\n",
        ] {
            let (lean, serde) = both(text);
            assert!(lean.is_some(), "not read: {text}");
            assert_eq!(lean, serde, "{text}");
        }
    }

    #[test]
    fn anything_off_the_lean_shape_is_left_to_serde() {
        for text in [
            // An item that failed.
            r#"{"errors":true,"took":1,"items":[{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"x"}}}]}"#,
            // Ids, spaces, an unknown word, a big status, ingest_took, a repeated field.
            r#"{"errors":false,"took":1,"items":[{"index":{"_id":"a","result":"created","status":201}}]}"#,
            r#"{"errors": false,"took":1,"items":[]}"#,
            r#"{"errors":false,"took":1,"items":[{"index":{"result":"made","status":201}}]}"#,
            r#"{"errors":false,"took":1,"items":[{"index":{"result":"created","status":70000}}]}"#,
            r#"{"errors":false,"took":1,"ingest_took":0,"items":[]}"#,
            r#"{"errors":false,"errors":true,"items":[]}"#,
            r#"{"errors":false,"took":1.5,"items":[]}"#,
            r#"{"errors":false,"took":01,"items":[]}"#,
            // Cut off, or more after the end.
            r#"{"errors":false,"took":1,"items":[{"index":{"result":"created","status":201}}"#,
            r#"{"errors":false,"took":1,"items":[]}x"#,
            r#"{"errors":false,"took":1,"items":[],"more":1}"#,
        ] {
            assert_eq!(parse(text.as_bytes(), 1), None, "{text}");
        }
    }

    /// A lean answer of these items (`(op, word, status)` indices into the documented
    /// lists), with the top-level fields in either order.
    fn lean_answer(took: u32, errors_first: bool, items: &[(usize, usize, u16)]) -> String {
        let ops = ["index", "create", "update", "delete"];
        let words = ["created", "updated", "deleted", "not_found", "noop"];
        let list: Vec<String> = items
            .iter()
            .map(|(op, word, status)| {
                format!(
                    r#"{{"{}":{{"result":"{}","status":{status}}}}}"#,
                    ops[*op], words[*word]
                )
            })
            .collect();
        let head = if errors_first {
            format!(r#""errors":false,"took":{took}"#)
        } else {
            format!(r#""took":{took},"errors":false"#)
        };
        format!(r#"{{{head},"items":[{}]}}"#, list.join(","))
    }

    const MUTATIONS: &[u8] = b",\":}]{[09-.et \nx";

    #[test]
    fn every_one_byte_change_of_a_lean_answer_is_read_as_serde_reads_it_or_left_to_serde() {
        let base = lean_answer(12, true, &[(0, 0, 201), (3, 3, 404), (2, 4, 200)]).into_bytes();
        let mut accepted = 0;
        for text in one_byte_changes(&base, MUTATIONS) {
            if let Some(lean) = parse(&text, 3) {
                accepted += 1;
                assert_eq!(
                    Some(lean),
                    parse_bulk_response_with_serde(&text, 3).ok(),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // Digits changed, a trailing space: the comparison above did run.
        assert!(accepted > 20, "only {accepted} changed answers were read");
    }

    fn items() -> impl Strategy<Value = Vec<(usize, usize, u16)>> {
        prop::collection::vec((0usize..4, 0usize..5, 0u16..1000), 0..6)
    }

    proptest! {
        // A lean answer with one byte deleted, replaced or inserted anywhere: whatever the
        // lean reading accepts, serde reads the same.
        #[test]
        fn a_lean_reading_of_a_mutated_answer_is_what_serde_reads(
            took in any::<u32>(),
            errors_first in any::<bool>(),
            items in items(),
            at in any::<prop::sample::Index>(),
            how in 0usize..3,
            byte in prop::sample::select(MUTATIONS.to_vec()),
        ) {
            let base = lean_answer(took, errors_first, &items).into_bytes();
            // An insert may land after the last byte too.
            let at = at.index(base.len() + usize::from(how == 2));
            let text = mutated(&base, at, how, byte);
            if let Some(lean) = parse(&text, items.len()) {
                prop_assert_eq!(
                    Some(lean),
                    parse_bulk_response_with_serde(&text, items.len()).ok(),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }

        #[test]
        fn every_lean_answer_is_read(
            took in any::<u32>(),
            errors_first in any::<bool>(),
            items in prop::collection::vec((0usize..4, 0usize..5, 100u16..600), 0..50),
        ) {
            let text = lean_answer(took, errors_first, &items);
            let lean = parse(text.as_bytes(), items.len());
            prop_assert!(lean.is_some(), "{}", text);
            prop_assert_eq!(lean, parse_bulk_response_with_serde(text.as_bytes(), items.len()).ok());
        }
    }
}
