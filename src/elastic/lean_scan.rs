//! An id-scan page, read without a JSON parser. With the scan's `filter_path` (see
//! [`super::documents::SCAN_FILTER_PATH`]) a page is a fixed shape,
//! `{"pit_id":"…","hits":{"hits":[{"_id":"a","_source":{"id":"a","_timestamp":"…"},"sort":[7]},…]}}`,
//! and a re-sync reads one hit per document of its index: reading them with serde, a
//! `String` per id, cost ~1,900 instructions a hit by callgrind, this reading ~430.
//!
//! This module matches that exact compact shape (the fields of each object in any order,
//! each once; `_id`, `pit_id` and the `_source` fields strings; `sort` a list of integers)
//! and gives up on anything else (a space, another field, a number as `id`, a fraction in
//! `sort`), leaving the page to serde. A string with escapes is unescaped by serde itself.
//! What it returns is what serde would: tests change pages byte by byte and hold the two to
//! the same reading on every change this module accepts.

use super::documents::ScanPage;
use crate::model::IdPage;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The page when it has exactly the lean shape; `None` for anything else. `expected` (the
/// page size asked for) is only a capacity hint.
pub(crate) fn parse(bytes: &[u8], expected: usize) -> Option<ScanPage> {
    // Checked once for the whole page (cheaper than string by string): every string read
    // below is then a slice of valid UTF-8. serde refuses a page with invalid UTF-8 in a
    // string, and outside strings it is no JSON; either way the page is left to it.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut at = Cursor { text, bytes, at: 0 };
    at.literal(b"{")?;
    let mut pit = None;
    let mut hits = None;
    if at.literal(b"}").is_none() {
        loop {
            // A field twice is an error to serde: left to it.
            if at.literal(b"\"pit_id\":").is_some() {
                if pit.replace(at.string()?).is_some() {
                    return None;
                }
            } else if at.literal(b"\"hits\":").is_some() {
                if hits.is_some() {
                    return None;
                }
                hits = Some(at.hits(expected)?);
            } else {
                return None;
            }
            if at.literal(b",").is_none() {
                break;
            }
        }
        at.literal(b"}")?;
    }
    if !super::lean_json::only_whitespace(bytes.get(at.at..)?) {
        return None;
    }
    let (docs, last_sort) = hits.unwrap_or_default();
    Some(ScanPage {
        pit: pit.map(Cow::into_owned),
        docs,
        last_sort,
    })
}

struct Cursor<'a> {
    /// The page, and the same as bytes.
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// One hit's fields, borrowed where they have no escapes.
#[derive(Default)]
struct Hit<'a> {
    id: Option<Cow<'a, str>>,
    body_id: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    source: bool,
    /// `start..end` of the `sort` list in the page.
    sort: Option<(usize, usize)>,
}

impl<'a> Cursor<'a> {
    /// Steps over `text` when the page continues with it.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        super::lean_json::step_over(self.bytes, &mut self.at, text)
    }

    /// A JSON string. One without escapes is borrowed; one with escapes goes to serde, so it
    /// is read exactly as serde reads it. A control character or invalid UTF-8 is left to
    /// serde (which refuses the page).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.literal(b"\"")?;
        let start = self.at;
        let special = |b: &u8| matches!(b, b'"' | b'\\' | 0..=0x1f);
        let plain = self.bytes.get(start..)?.iter().position(special)?;
        self.at = start + plain;
        if self.bytes.get(self.at) == Some(&b'"') {
            self.at += 1;
            // Both ends are ASCII bytes, so char boundaries.
            return self.text.get(start..start + plain).map(Cow::Borrowed);
        }
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                // The escaped byte cannot end the string; serde checks the escape.
                b'\\' => self.at += 2,
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        // With the quotes: the string as JSON, unescaped by serde.
        let quoted = self.text.get(start.checked_sub(1)?..self.at)?;
        serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
    }

    /// A JSON integer: an optional `-`, digits without a leading zero, no fraction or
    /// exponent (those are left to serde).
    fn integer(&mut self) -> Option<()> {
        let _ = self.literal(b"-");
        self.at += super::lean_json::integer_digits(self.bytes.get(self.at..)?)?;
        Some(())
    }

    /// `{"hits":[hit,…]}` or `{}`: the documents and the last hit's `sort` list.
    fn hits(&mut self, expected: usize) -> Option<(IdPage, Option<Box<RawValue>>)> {
        self.literal(b"{")?;
        if self.literal(b"}").is_some() {
            return Some((IdPage::new(), None));
        }
        self.literal(b"\"hits\":[")?;
        // A hit is at least 20 bytes; the page's text is never longer than the page.
        let mut docs = IdPage::with_capacity(
            expected.min(self.bytes.len() / 20),
            self.bytes.len() - self.at,
        );
        let mut last_sort = None;
        if self.literal(b"]").is_none() {
            loop {
                last_sort = match self.bare_hit(&mut docs) {
                    Some(sort) => Some(sort),
                    None => self.any_hit(&mut docs)?,
                };
                if self.literal(b",").is_none() {
                    break;
                }
            }
            self.literal(b"]")?;
        }
        self.literal(b"}")?;
        // The last hit of a page must have `sort` values (they are the next `search_after`);
        // without them the page is left to serde, which refuses it.
        let last_sort = match (docs.is_empty(), last_sort) {
            (true, _) => None,
            (false, Some((start, end))) => {
                Some(RawValue::from_string(self.text.get(start..end)?.to_string()).ok()?)
            }
            (false, None) => return None,
        };
        Some((docs, last_sort))
    }

    /// The hit of a scan of `_id`s, `{"_id":"…","sort":[…]}`, straight into `docs`; where
    /// its `sort` list is. Anything else is left where it was, for [`Cursor::hit`] (which
    /// reads this shape the same way, only slower).
    fn bare_hit(&mut self, docs: &mut IdPage) -> Option<(usize, usize)> {
        let start = self.at;
        match self.bare_hit_parts() {
            Some((id, sort)) => {
                docs.push(&id, None, None);
                Some(sort)
            }
            None => {
                self.at = start;
                None
            }
        }
    }

    fn bare_hit_parts(&mut self) -> Option<(Cow<'a, str>, (usize, usize))> {
        self.literal(b"{\"_id\":")?;
        let id = self.string()?;
        self.literal(b",\"sort\":")?;
        let sort = self.sort()?;
        self.literal(b"}")?;
        Some((id, sort))
    }

    /// Any lean hit (see [`Cursor::hit`]) into `docs`; where its `sort` list is, if it has
    /// one.
    fn any_hit(&mut self, docs: &mut IdPage) -> Option<Option<(usize, usize)>> {
        let hit = self.hit()?;
        let id = hit.id?;
        // The body `id` when it is a string other than `_id` (a hashed long id), as the
        // framework does; the `_id` is kept as the stored id then.
        match hit.body_id {
            Some(body) if body != id => docs.push(&body, Some(&id), hit.timestamp.as_deref()),
            _ => docs.push(&id, None, hit.timestamp.as_deref()),
        }
        Some(hit.sort)
    }

    /// `{"_id":"…","_source":{…},"sort":[…]}`, the fields in any order, `_id` required.
    fn hit(&mut self) -> Option<Hit<'a>> {
        self.literal(b"{")?;
        let mut hit = Hit::default();
        loop {
            if self.literal(b"\"_id\":").is_some() {
                if hit.id.replace(self.string()?).is_some() {
                    return None;
                }
            } else if self.literal(b"\"_source\":").is_some() {
                if hit.source {
                    return None;
                }
                hit.source = true;
                self.source(&mut hit)?;
            } else if self.literal(b"\"sort\":").is_some() {
                if hit.sort.is_some() {
                    return None;
                }
                hit.sort = Some(self.sort()?);
            } else {
                return None;
            }
            if self.literal(b",").is_none() {
                break;
            }
        }
        self.literal(b"}")?;
        Some(hit)
    }

    /// `{"id":"…","_timestamp":"…"}`, either field or none, in any order.
    fn source(&mut self, hit: &mut Hit<'a>) -> Option<()> {
        self.literal(b"{")?;
        if self.literal(b"}").is_some() {
            return Some(());
        }
        loop {
            if self.literal(b"\"id\":").is_some() {
                if hit.body_id.replace(self.string()?).is_some() {
                    return None;
                }
            } else if self.literal(b"\"_timestamp\":").is_some() {
                if hit.timestamp.replace(self.string()?).is_some() {
                    return None;
                }
            } else {
                return None;
            }
            if self.literal(b",").is_none() {
                break;
            }
        }
        self.literal(b"}")
    }

    /// `[7]`, `[7,-2]`: a non-empty list of integers; where it starts and ends.
    fn sort(&mut self) -> Option<(usize, usize)> {
        let start = self.at;
        self.literal(b"[")?;
        loop {
            self.integer()?;
            if self.literal(b",").is_none() {
                break;
            }
        }
        self.literal(b"]")?;
        Some((start, self.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elastic::documents::read_scan_page_with_serde;
    use crate::elastic::one_byte_changes::{mutated, one_byte_changes};
    use crate::model::DocMeta;
    use proptest::prelude::*;

    /// What a reading gives, comparable: PIT id, documents, last `sort` text.
    type Reading = (Option<String>, Vec<DocMeta>, Option<String>);

    fn reading(page: ScanPage) -> Reading {
        (
            page.pit,
            page.docs.to_metas(),
            page.last_sort.map(|raw| raw.get().to_string()),
        )
    }

    fn lean(text: &[u8]) -> Option<Reading> {
        parse(text, 1000).map(reading)
    }

    fn serde(text: &[u8]) -> Option<Reading> {
        read_scan_page_with_serde(text).ok().map(reading)
    }

    #[test]
    fn the_pages_elasticsearch_writes_are_read_as_serde_reads_them() {
        for text in [
            // A bare scan's page, then one with sources; the last page of a scan.
            r#"{"pit_id":"46ToAwMDaWR5BXV1aWQy","hits":{"hits":[{"_id":"doc-1","sort":[0]},{"_id":"doc-2","sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":{"id":"a","_timestamp":"2024-05-01T10:00:00Z"},"sort":[4294967296]},{"_id":"md5","_source":{"_timestamp":"t","id":"the-long-id"},"sort":[4294967297]}]}}"#,
            // No `_source` field (a document without `id` or `_timestamp`), an empty one.
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"x","sort":[9]},{"_id":"y","_source":{},"sort":[10]}]}}"#,
            // Fields in another order (a stand-in writes them sorted).
            r#"{"hits":{"hits":[{"sort":[1,-2],"_source":{"id":"b"},"_id":"a"}]},"pit_id":"p"}"#,
            // Escapes in ids, timestamps and the PIT id: read by serde.
            r#"{"pit_id":"p\/q","hits":{"hits":[{"_id":"a\"b","_source":{"id":"caf\u00e9","_timestamp":"t\\u"},"sort":[1]},{"_id":"\ud83d\ude00\/","sort":[2]}]}}"#,
            // Numbers as strings stay strings; an id equal to `_id` is no stored id.
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"12","_source":{"id":"12"},"sort":[1]},{"_id":"7","_source":{"id":"007"},"sort":[2]}]}}"#,
            // Empty pages: no hits at all once filtered, or empty lists.
            r#"{"pit_id":"p"}"#,
            r#"{"pit_id":"p","hits":{"hits":[]}}"#,
            r#"{"pit_id":"p","hits":{}}"#,
            "{}",
            "{\"pit_id\":\"p\",\"hits\":{\"hits\":[{\"_id\":\"a\",\"sort\":[1]}]}}\n",
        ] {
            let (lean, serde) = (lean(text.as_bytes()), serde(text.as_bytes()));
            assert!(lean.is_some(), "not read: {text}");
            assert_eq!(lean, serde, "{text}");
        }
    }

    #[test]
    fn a_page_keeps_ids_stored_ids_timestamps_and_the_last_sort() {
        let text = br#"{"pit_id":"p2","hits":{"hits":[{"_id":"a","_source":{"_timestamp":"t1"},"sort":[1]},{"_id":"h","_source":{"id":"caf\u00e9 \"long\"","_timestamp":"t2"},"sort":[2,5]},{"_id":"\/c","sort":[3,-7]}]}}"#;
        let (pit, docs, sort) = lean(text).unwrap();
        assert_eq!(pit.as_deref(), Some("p2"));
        assert_eq!(
            docs,
            [
                DocMeta::of("a", Some("t1"), None),
                DocMeta::of("café \"long\"", Some("t2"), Some("h")),
                DocMeta::of("/c", None, None),
            ]
        );
        assert_eq!(sort.as_deref(), Some("[3,-7]"));
        // A hit that starts like a bare one and goes on: read whole, not cut at `sort`.
        let text = br#"{"hits":{"hits":[{"_id":"a","sort":[1]},{"_id":"h","sort":[2],"_source":{"id":"b"}}]}}"#;
        let (_, docs, sort) = lean(text).unwrap();
        assert_eq!(
            docs,
            [
                DocMeta::of("a", None, None),
                DocMeta::of("b", None, Some("h"))
            ]
        );
        assert_eq!(sort.as_deref(), Some("[2]"));
        assert_eq!(serde(text).map(|r| r.1), Some(docs));
    }

    #[test]
    fn anything_off_the_lean_shape_is_left_to_serde() {
        for text in [
            // Spaces; another field; null, number or object where a string goes.
            r#"{"pit_id": "p"}"#,
            r#"{"pit_id":"p","took":1}"#,
            r#"{"pit_id":null}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_index":"i","sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":{"id":7},"sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":{"_timestamp":1700000000},"sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":{"id":"a","title":"x"},"sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":null,"sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":1,"sort":[1]}]}}"#,
            // Sort values that are not integers, or none.
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","sort":[1.5]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","sort":["x"]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","sort":[]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","sort":[01]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a"}]}}"#,
            // A field twice.
            r#"{"pit_id":"p","pit_id":"q"}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_id":"b","sort":[1]}]}}"#,
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","_source":{"id":"a","id":"b"},"sort":[1]}]}}"#,
            // A control character, an invalid escape, invalid UTF-8.
            "{\"pit_id\":\"p\u{1}\"}",
            r#"{"pit_id":"p\x"}"#,
            // Cut off, or more after the end.
            r#"{"pit_id":"p","hits":{"hits":[{"_id":"a","sort":[1]}"#,
            r#"{"pit_id":"p"}x"#,
            r#"{"pit_id":"p\"#,
        ] {
            assert_eq!(lean(text.as_bytes()), None, "{text}");
        }
        assert_eq!(lean(b"{\"pit_id\":\"\xff\"}"), None);
    }

    /// A lean page of these hits: `(_id, body id, timestamp, sort)`, each field's order
    /// chosen by `shuffle`.
    fn lean_page(
        pit: &str,
        hits: &[(String, Option<String>, Option<String>, i64)],
        shuffle: bool,
    ) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let list: Vec<String> = hits
            .iter()
            .map(|(id, body, timestamp, sort)| {
                let mut source = Vec::new();
                if let Some(body) = body {
                    source.push(format!(r#""id":{}"#, quote(body)));
                }
                if let Some(ts) = timestamp {
                    source.push(format!(r#""_timestamp":{}"#, quote(ts)));
                }
                let mut fields = vec![format!(r#""_id":{}"#, quote(id))];
                if !source.is_empty() {
                    if shuffle {
                        source.reverse();
                    }
                    fields.push(format!(r#""_source":{{{}}}"#, source.join(",")));
                }
                fields.push(format!(r#""sort":[{sort}]"#));
                if shuffle {
                    fields.reverse();
                }
                format!("{{{}}}", fields.join(","))
            })
            .collect();
        format!(
            r#"{{"pit_id":{},"hits":{{"hits":[{}]}}}}"#,
            quote(pit),
            list.join(",")
        )
    }

    const MUTATIONS: &[u8] = b",\":}]{[09-.e \\/u\nx";

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn every_one_byte_change_of_a_page_is_read_as_serde_reads_it_or_left_to_serde() {
        let base = lean_page(
            "p1",
            &[
                ("a1".into(), None, some("t1"), 10),
                ("h".into(), some("long\u{e9}"), some("t2"), 11),
                ("c".into(), some("c"), None, 12),
            ],
            false,
        )
        .into_bytes();
        let mut accepted = 0;
        for text in one_byte_changes(&base, MUTATIONS) {
            if let Some(read) = lean(&text) {
                accepted += 1;
                assert_eq!(
                    Some(read),
                    serde(&text),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // Ids and digits changed, a trailing space: the comparison above did run.
        assert!(accepted > 100, "only {accepted} changed pages were read");
    }

    fn text() -> impl Strategy<Value = String> {
        // Plain ids, numbers as strings, quotes, backslashes, slashes, control and non-ASCII
        // characters (serialised with escapes).
        prop::string::string_regex("([a-z0-9\"\\\\/é\u{1}\n-]|\u{1F600}){0,12}").unwrap()
    }

    fn hits() -> impl Strategy<Value = Vec<(String, Option<String>, Option<String>, i64)>> {
        prop::collection::vec(
            (
                text(),
                prop::option::of(text()),
                prop::option::of(text()),
                any::<i64>(),
            ),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn every_lean_page_is_read_as_serde_reads_it(
            pit in text(),
            hits in hits(),
            shuffle in any::<bool>(),
        ) {
            let text = lean_page(&pit, &hits, shuffle);
            let read = lean(text.as_bytes());
            prop_assert!(read.is_some(), "{}", text);
            prop_assert_eq!(read.clone(), serde(text.as_bytes()));
            let (_, docs, sort) = read.unwrap_or_default();
            prop_assert_eq!(docs.len(), hits.len());
            prop_assert_eq!(sort, hits.last().map(|h| format!("[{}]", h.3)));
        }

        // A lean page with one byte deleted, replaced or inserted anywhere: whatever the
        // lean reading accepts, serde reads the same.
        #[test]
        fn a_lean_reading_of_a_mutated_page_is_what_serde_reads(
            pit in text(),
            hits in hits(),
            shuffle in any::<bool>(),
            at in any::<prop::sample::Index>(),
            how in 0usize..3,
            byte in prop::sample::select(MUTATIONS.to_vec()),
        ) {
            let base = lean_page(&pit, &hits, shuffle).into_bytes();
            let at = at.index(base.len() + usize::from(how == 2));
            let text = mutated(&base, at, how, byte);
            if let Some(read) = lean(&text) {
                prop_assert_eq!(Some(read), serde(&text), "{}", String::from_utf8_lossy(&text));
            }
        }
    }
}
