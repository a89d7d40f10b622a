//! The `generator` source: deterministic synthetic documents for demos, tests and benchmarks.
//! Document `i` depends only on the seed and `i` (ids `doc-0`, `doc-1`, …), so two syncs with
//! the same settings yield the same documents. It can pace itself (`rate`) and plant
//! documents the target mapping rejects (`poison_every`) to exercise the dead-letter queue.
//! Cheap by design: well under a microsecond per document besides the allocations.

use super::fields::{configuration, field, int_at_least, int_setting};
use super::{
    DataSource, Document, Fields, ItemSender, SourceError, SourceFactory, SourceItem, SyncMode,
};
use crate::model::Configuration;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat};
use serde_json::Value;
use std::time::Duration;

/// The value of `value` in a poisoned document; the demo index maps `value` as `long`.
pub const POISON_VALUE: &str = "not-a-number";

// 2024-01-01T00:00:00Z: document i is stamped i seconds later, the same on every run.
const BASE_EPOCH_SECS: i64 = 1_704_067_200;

const CATEGORIES: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

// 64 words, so six random bits pick one.
const WORDS: [&str; 64] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
    "search",
    "sync",
];

// `{"title":"","body":"","value":,"category":"","_timestamp":""}`: the bytes around the values
// of a document's source as the engine writes it (`_timestamp` comes from `Document::timestamp`).
const JSON_OVERHEAD: usize = 61;

/// Builds `generator` sources.
pub struct GeneratorFactory;

impl SourceFactory for GeneratorFactory {
    fn service_type(&self) -> &'static str {
        "generator"
    }

    fn display_name(&self) -> &'static str {
        "Synthetic documents"
    }

    fn default_configuration(&self) -> Configuration {
        configuration([
            field("count", "Number of documents")
                .int(10_000)
                .greater_than(0)
                .tooltip("How many documents one sync yields."),
            field("doc_bytes", "Document size (bytes)")
                .int(1024)
                .greater_than(63)
                .tooltip("The approximate serialized size of each document; at least 64."),
            field("seed", "Seed").int(42).tooltip("The same seed always yields the same documents."),
            field("rate", "Rate (documents per second)")
                .int(0)
                .greater_than(-1)
                .tooltip("Paces the sync; 0 means as fast as the target takes them."),
            field("poison_every", "Poison every Nth document")
                .int(0)
                .greater_than(-1)
                .tooltip("Every Nth document carries a 'value' the target's mapping rejects; 0 means none."),
            field("api_token", "API token")
                .sensitive()
                .optional()
                .tooltip("Not used by the generator; shows how secrets are masked."),
        ])
    }

    fn validate(&self, config: &Configuration) -> Result<(), SourceError> {
        GeneratorSettings::from_config(config).map(|_| ())
    }

    fn create(&self, config: &Configuration) -> Result<Box<dyn DataSource>, SourceError> {
        super::register_sensitive(config);
        Ok(Box::new(GeneratorSource::new(
            GeneratorSettings::from_config(config)?,
        )))
    }
}

/// The generator's settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorSettings {
    pub count: u64,
    pub doc_bytes: usize,
    pub seed: u64,
    /// Documents per second; 0 = unlimited.
    pub rate: u64,
    /// Every Nth document is poisoned; 0 = none.
    pub poison_every: u64,
}

impl GeneratorSettings {
    pub fn from_config(config: &Configuration) -> Result<Self, SourceError> {
        Ok(Self {
            count: int_at_least(config, "count", 10_000, 1)? as u64,
            doc_bytes: int_at_least(config, "doc_bytes", 1024, 64)? as usize,
            // Any integer is a fine seed; negative ones wrap.
            seed: int_setting(config, "seed", 42)? as u64,
            rate: int_at_least(config, "rate", 0, 0)? as u64,
            poison_every: int_at_least(config, "poison_every", 0, 0)? as u64,
        })
    }
}

/// A running generator.
pub struct GeneratorSource {
    settings: GeneratorSettings,
}

impl GeneratorSource {
    pub fn new(settings: GeneratorSettings) -> Self {
        Self { settings }
    }

    /// Document `index`, the same for the same seed.
    pub fn document(&self, index: u64) -> Document {
        let s = &self.settings;
        let mut rng = Rng::for_document(s.seed, index);
        let poisoned = s.poison_every > 0 && (index + 1).is_multiple_of(s.poison_every);
        let category = CATEGORIES[(rng.next() % CATEGORIES.len() as u64) as usize];
        let number = (rng.next() % 1_000_000) as i64;
        let title = title(&mut rng, index);
        let timestamp = timestamp(index);
        let value = if poisoned {
            Value::from(POISON_VALUE)
        } else {
            Value::from(number)
        };
        let value_len = if poisoned {
            POISON_VALUE.len() + 2
        } else {
            decimal_len(number)
        };
        let used = JSON_OVERHEAD + title.len() + value_len + category.len() + timestamp.len();
        let body = filler(&mut rng, s.doc_bytes.saturating_sub(used));

        // Literal keys and no `_timestamp` field: the engine writes `Document::timestamp` as
        // `_timestamp`, so a copy in the fields would only cost an allocation.
        let mut fields = Fields::with_capacity(4);
        fields.push_new("title", Value::String(title));
        fields.push_new("body", Value::String(body));
        fields.push_new("value", value);
        fields.push_new("category", Value::from(category));
        let mut id = String::with_capacity(24);
        id.push_str("doc-");
        push_decimal(&mut id, index);
        Document {
            id,
            timestamp: Some(timestamp),
            fields,
            content: None,
        }
    }

    // Sleeps until `sent` documents are due at the configured rate. Pausing per batch keeps
    // the timer cost negligible at high rates.
    async fn pace(&self, start: tokio::time::Instant, sent: u64) {
        let rate = self.settings.rate;
        if rate == 0 {
            return;
        }
        let batch = (rate / 20).clamp(1, 1000);
        if !sent.is_multiple_of(batch) {
            return;
        }
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
    }
}

#[async_trait]
impl DataSource for GeneratorSource {
    async fn ping(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn total_hint(&mut self) -> Option<u64> {
        Some(self.settings.count)
    }

    async fn run(
        &mut self,
        _mode: SyncMode,
        out: ItemSender,
    ) -> Result<Option<Value>, SourceError> {
        let start = tokio::time::Instant::now();
        for index in 0..self.settings.count {
            out.send(SourceItem::Upsert(self.document(index))).await?;
            self.pace(start, index + 1).await;
        }
        Ok(None)
    }
}

// `Document {index}: w1 w2 w3`, without the formatting machinery.
fn title(rng: &mut Rng, index: u64) -> String {
    let bits = rng.next();
    let mut title = String::with_capacity(64);
    title.push_str("Document ");
    push_decimal(&mut title, index);
    title.push(':');
    for shift in [0, 6, 12] {
        title.push(' ');
        title.push_str(WORDS[((bits >> shift) & 63) as usize]);
    }
    title
}

fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

// 9999-12-31T23:59:59Z: up to here the timestamp is written by hand (four-digit years).
const FAST_TIMESTAMP_MAX_SECS: i64 = 253_402_300_799;

fn timestamp(index: u64) -> String {
    let secs = BASE_EPOCH_SECS.saturating_add(index.min(i64::MAX as u64) as i64);
    if (0..=FAST_TIMESTAMP_MAX_SECS).contains(&secs) {
        return rfc3339_millis(secs);
    }
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for 0 <= `secs` <= 9999-12-31T23:59:59Z, as chrono writes it
/// (days to civil date: Howard Hinnant's `civil_from_days`).
fn rfc3339_millis(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Written into a fixed buffer, then one copy: pushing char by char cost more than the
    // arithmetic.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let pairs = [
        (0, year / 100),
        (2, year % 100),
        (5, month),
        (8, day),
        (11, rem / 3600),
        (14, rem / 60 % 60),
        (17, rem % 60),
    ];
    for (at, n) in pairs {
        out[at] = b'0' + (n / 10 % 10) as u8;
        out[at + 1] = b'0' + (n % 10) as u8;
    }
    // ASCII digits and separators only: the check cannot fail.
    String::from(std::str::from_utf8(&out).unwrap_or_default())
}

/// The bytes of word text the filler slices documents from: large enough that documents
/// rarely share a body, small enough to stay in cache.
const POOL_BYTES: usize = 64 * 1024;

/// `w1 w2 w3 …`, words drawn by a fixed generator, built once: a document's body is then one
/// slice of it (one copy, no per-word work, no UTF-8 check: the pool is a `String`).
fn word_pool() -> &'static str {
    static POOL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut rng = Rng(0x0f11_1e55);
        let mut pool = String::with_capacity(POOL_BYTES + 16);
        while pool.len() < POOL_BYTES {
            let mut bits = rng.next();
            for _ in 0..10 {
                pool.push_str(WORDS[(bits & 63) as usize]);
                pool.push(' ');
                bits >>= 6;
            }
        }
        pool
    })
}

// Words separated by spaces, exactly `target` bytes long (the last word may be cut): the pool
// from a word start the document's generator picks, wrapping round when it runs out.
fn filler(rng: &mut Rng, target: usize) -> String {
    let pool = word_pool();
    let mut body = String::with_capacity(target);
    let mut from = (rng.next() % pool.len() as u64) as usize;
    // Start on a word: just after the next space (words are at most 13 bytes). A plain byte
    // loop: `str::find` cost ~180 instructions a document in its searcher's set-up for a
    // match a few bytes away. A space is ASCII, so the byte after it starts a character.
    from = pool
        .as_bytes()
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b' '))
        .map_or(0, |i| from + i + 1);
    while body.len() < target {
        let rest = pool.get(from..).unwrap_or_default();
        let take = rest.len().min(target - body.len());
        body.push_str(rest.get(..take).unwrap_or_default());
        from = 0;
    }
    body
}

fn decimal_len(n: i64) -> usize {
    n.unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1)
        + usize::from(n < 0)
}

/// SplitMix64: tiny, fast, and stable forever (unlike a library generator whose stream may
/// change between versions, which would change the documents).
struct Rng(u64);

impl Rng {
    fn for_document(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(doc_bytes: usize, poison_every: u64) -> GeneratorSource {
        GeneratorSource::new(GeneratorSettings {
            count: 10,
            doc_bytes,
            seed: 7,
            rate: 0,
            poison_every,
        })
    }

    // The source line's length: the fields and the `,"_timestamp":"…"` the engine adds.
    fn serialized_len(doc: &Document) -> usize {
        let timestamp = doc.timestamp.as_deref().map_or(0, |t| t.len() + 16);
        serde_json::to_vec(&doc.fields).map_or(0, |v| v.len() + timestamp)
    }

    #[test]
    fn the_overhead_constant_matches_serde() {
        for (bytes, poison) in [(200, 0), (1024, 0), (4096, 0), (300, 1)] {
            let s = source(bytes, poison);
            for i in [0, 9, 12_345, 99_999_999] {
                assert_eq!(
                    serialized_len(&s.document(i)),
                    bytes,
                    "doc {i} of {bytes} bytes, poison {poison}"
                );
            }
        }
    }

    #[test]
    fn documents_depend_on_seed_and_index_only() {
        let a = source(256, 0).document(3);
        let b = source(256, 0).document(3);
        assert_eq!(a.fields, b.fields);
        assert_ne!(a.fields, source(256, 0).document(4).fields);
        let other_seed = GeneratorSource::new(GeneratorSettings {
            seed: 8,
            ..source(256, 0).settings
        });
        assert_ne!(a.fields["body"], other_seed.document(3).fields["body"]);
        assert_eq!(a.timestamp.as_deref(), Some("2024-01-01T00:00:03.000Z"));
    }

    #[test]
    fn handwritten_timestamps_match_chrono() {
        let chrono = |secs: i64| {
            DateTime::from_timestamp(secs, 0)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                .unwrap()
        };
        let mut secs: Vec<i64> = (0..200_000).map(|i| i * 7_919 + 13).collect();
        // Leap days and century years (2100 is not a leap year, 2000 and 2400 are).
        for year_start in [951_782_400i64, 4_107_456_000, 4_107_542_400, 13_574_563_200] {
            secs.extend((-3..3).map(|d| year_start + d * 86_400 + 86_399));
        }
        secs.extend([
            0,
            59,
            86_399,
            86_400,
            FAST_TIMESTAMP_MAX_SECS - 1,
            FAST_TIMESTAMP_MAX_SECS,
        ]);
        secs.extend((0..2000).map(|i| (i * 126_701_150_399) % FAST_TIMESTAMP_MAX_SECS));
        for s in secs {
            assert_eq!(rfc3339_millis(s), chrono(s), "{s} seconds");
        }
        // Past year 9999 chrono writes the timestamp.
        let past = FAST_TIMESTAMP_MAX_SECS + 1;
        assert_eq!(timestamp((past - BASE_EPOCH_SECS) as u64), chrono(past));
        assert!(chrono(past).starts_with("+10000-"));
    }

    /// The documents are fixed forever by seed and index (a re-sync of a generator connector
    /// must find its documents unchanged): these digests pin them, fields and all. They
    /// were taken with `str::find` finding the body's first word, before the byte loop.
    #[test]
    fn documents_are_pinned_by_seed_and_index() {
        // SHA-256 in hex of the id, the timestamp and the fields' JSON, one after the other.
        let digest = |doc: &Document| {
            let fields = serde_json::to_string(&doc.fields).expect("fields serialise");
            let timestamp = doc.timestamp.as_deref().unwrap_or_default();
            crate::engine::batch::hash_id(&format!("{}{timestamp}{fields}", doc.id))
        };
        let got: Vec<String> = [(256, 0), (1024, 12_345), (4096, 999_999)]
            .into_iter()
            .map(|(bytes, index)| digest(&source(bytes, 0).document(index)))
            .collect();
        assert_eq!(
            got,
            [
                "6feea0a5a86a75198b5d7dc86f8957bad61e7952acbad4c9cce7f92b592bb19f",
                "df757dda3b580e2266a99b7fd5b0cc6f4a78384ce511ce663cf9984c41daf87f",
                "dd324675468c74ad3131daa6f8a0661735f1da82c82b65c0a55b2e6fcc910e6f",
            ]
        );
    }

    #[test]
    fn titles_and_ids_use_plain_decimal_indices() {
        let s = source(256, 0);
        for i in [0, 7, 10, 12_345, u64::MAX] {
            let doc = s.document(i);
            assert_eq!(doc.id, format!("doc-{i}"));
            let title = doc.fields["title"].as_str().unwrap().to_string();
            assert!(title.starts_with(&format!("Document {i}: ")), "{title}");
            assert_eq!(title.split(' ').count(), 5, "{title}");
        }
    }

    #[test]
    fn filler_is_whole_words_cut_to_size() {
        let words: std::collections::HashSet<&str> = WORDS.into_iter().collect();
        for target in [0, 1, 5, 13, 14, 100, 1000, POOL_BYTES + 100] {
            let body = filler(&mut Rng::for_document(7, 3), target);
            assert_eq!(body.len(), target);
            assert_eq!(body, filler(&mut Rng::for_document(7, 3), target));
            let parts: Vec<&str> = body.split(' ').collect();
            // Every word but the last (which may be cut) is a whole word of the list.
            if let Some((_, whole)) = parts.split_last() {
                for word in whole {
                    assert!(words.contains(word), "{word:?} in {body:?}");
                }
            }
        }
        // Documents get different bodies.
        let a = filler(&mut Rng::for_document(7, 3), 200);
        let b = filler(&mut Rng::for_document(7, 4), 200);
        assert_ne!(a, b);
    }

    #[test]
    fn decimal_lengths() {
        assert_eq!([0, 9, 10, 999_999, -5].map(decimal_len), [1, 1, 2, 6, 2]);
    }

    #[test]
    fn settings_reject_out_of_range_values_naming_the_field() {
        let mut config = GeneratorFactory.default_configuration();
        assert_eq!(
            GeneratorSettings::from_config(&config).unwrap().count,
            10_000
        );
        config.0.get_mut("doc_bytes").unwrap().value = Value::from(10);
        let err = GeneratorFactory.validate(&config).unwrap_err().to_string();
        assert!(err.contains("'doc_bytes'"), "{err}");
    }
}
