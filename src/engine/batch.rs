//! The batcher's data: documents serialised once, straight into NDJSON bulk bodies, and cut
//! into [`Batch`]es by document count and bytes (the pipeline adds the linger time). Each
//! item remembers where its lines sit in the body, so retries and dead letters reuse the
//! serialised bytes instead of encoding the document again.

use crate::backend::BulkOp;
use crate::model::Pipeline;
use crate::sources::Fields;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Elasticsearch refuses `_id`s over 512 bytes; longer ids are hashed, as the framework does.
pub const MAX_ID_BYTES: usize = 512;

/// One action of a batch and where its lines are in the body.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The document id as the source gave it (the `_id` sent may be its hash).
    pub id: String,
    pub op: BulkOp,
    /// Start of the action line.
    pub start: usize,
    /// Start of the source line (== `end` for deletes).
    pub source_start: usize,
    /// End of the item's lines, after the last newline.
    pub end: usize,
    /// How many times this item was sent before.
    pub attempts: u32,
    /// When the cluster first refused this item with 429 (back-pressure): its retries are
    /// bounded by a time budget from then, not by `attempts`.
    pub throttled_since: Option<Instant>,
}

impl BatchItem {
    pub fn source_len(&self) -> usize {
        self.end.saturating_sub(self.source_start)
    }
}

/// A bulk body and its items.
#[derive(Debug, Clone)]
pub struct Batch {
    pub seq: u64,
    pub body: Bytes,
    pub items: Vec<BatchItem>,
    pub created: Instant,
}

/// The batch being built.
struct Building {
    body: Vec<u8>,
    items: Vec<BatchItem>,
    created: Instant,
}

impl Building {
    fn new(capacity: usize, items: usize) -> Self {
        Self::with_body(Vec::with_capacity(capacity), items)
    }

    fn with_body(body: Vec<u8>, items: usize) -> Self {
        Self {
            body,
            items: Vec::with_capacity(items),
            created: Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The JSON source of an item (without its newline), for the dead-letter queue.
    pub fn source_of(&self, item: &BatchItem) -> &[u8] {
        let end = item.end.saturating_sub(1).max(item.source_start);
        self.body.get(item.source_start..end).unwrap_or_default()
    }

    /// A new batch holding only some items of this one (retries), reusing their bytes.
    pub fn subset(&self, seq: u64, items: &[BatchItem]) -> Batch {
        let size: usize = items.iter().map(|i| i.end - i.start).sum();
        let mut out = Building::new(size, items.len());
        for item in items {
            let start = out.body.len();
            out.body
                .extend_from_slice(self.body.get(item.start..item.end).unwrap_or_default());
            let shift = |pos: usize| pos - item.start + start;
            out.items.push(BatchItem {
                id: item.id.clone(),
                op: item.op,
                start,
                source_start: shift(item.source_start),
                end: shift(item.end),
                attempts: item.attempts.saturating_add(1),
                throttled_since: item.throttled_since,
            });
        }
        Batch {
            seq,
            body: Bytes::from(out.body),
            items: out.items,
            created: Instant::now(),
        }
    }
}

/// The first body's capacity; later bodies reserve the size of the previous one and an eighth
/// more, so a body rarely grows and never reserves megabytes it will not use (reserved pages
/// that a later allocation happens to touch made the RSS creep up over long syncs).
const FIRST_BODY_CAPACITY: usize = 256 * 1024;
const MAX_BODY_CAPACITY: usize = 8 * 1024 * 1024;

/// Limits of one bulk body.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_docs: usize,
    pub max_bytes: usize,
}

/// Serialises documents into batches.
pub struct BatchBuilder {
    limits: BatchLimits,
    /// `,"_extract_binary_content":true,...` rendered once.
    pipeline_fields: Vec<u8>,
    current: Building,
    next_seq: u64,
    bodies: Arc<BodyPool>,
}

/// Bodies of batches whose every reference is gone (request answered, items settled), kept
/// for the next batches. A new megabyte body cost page faults and zeroed pages on each
/// batch: the allocator hands blocks that large back to the system when they are freed.
#[derive(Default)]
struct BodyPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// At most this many bodies wait in the pool; more are freed. A freed body is soon taken by
/// the next batch, so a few are enough, and memory stays bounded by a few batches.
const POOLED_BODIES: usize = 4;

impl BodyPool {
    fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some(mut body) => {
                body.clear();
                body.reserve(capacity);
                body
            }
            None => Vec::with_capacity(capacity),
        }
    }

    fn put(&self, body: Vec<u8>) {
        if let Ok(mut free) = self.free.lock()
            && free.len() < POOLED_BODIES
        {
            free.push(body);
        }
    }
}

/// A batch's body inside its `Bytes`: back to the pool when the last slice of it is dropped.
struct PooledBody {
    bytes: Vec<u8>,
    pool: Arc<BodyPool>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.bytes));
    }
}

impl BatchBuilder {
    pub fn new(limits: BatchLimits, pipeline: Option<&Pipeline>) -> Self {
        let pipeline_fields = match pipeline {
            Some(p) => format!(
                ",\"_extract_binary_content\":{},\"_reduce_whitespace\":{},\"_run_ml_inference\":{}",
                p.extract_binary_content, p.reduce_whitespace, p.run_ml_inference
            )
            .into_bytes(),
            None => Vec::new(),
        };
        let capacity = limits.max_bytes.min(FIRST_BODY_CAPACITY);
        Self {
            limits,
            pipeline_fields,
            current: Building::new(capacity, 0),
            bodies: Arc::new(BodyPool::default()),
            next_seq: 1,
        }
    }

    /// Bytes in the batch being built.
    pub fn pending_bytes(&self) -> usize {
        self.current.body.len()
    }

    pub fn pending_docs(&self) -> usize {
        self.current.items.len()
    }

    /// When the batch being built was started, if it holds anything.
    pub fn pending_since(&self) -> Option<Instant> {
        (!self.current.is_empty()).then_some(self.current.created)
    }

    /// Adds an `index` action with the whole document. Returns a full batch when the limits
    /// were reached (the document is then in the next batch).
    pub fn push_index(
        &mut self,
        id: String,
        timestamp: Option<&str>,
        fields: &mut Fields,
    ) -> Option<Batch> {
        let mark = self.current.body.len();
        let item_start = mark;
        write_action(&mut self.current.body, "index", &id);
        let source_start = self.current.body.len();
        // The body carries `id` and `_timestamp` first, then the pipeline flags, then the
        // source's fields (minus any of ours it also set, skipped while writing: removing
        // them from the fields would cost two lookups a document).
        let body = &mut self.current.body;
        body.extend_from_slice(b"{\"id\":");
        write_json_str(body, &id);
        if let Some(ts) = timestamp {
            body.extend_from_slice(b",\"_timestamp\":");
            write_json_str(body, ts);
        }
        body.extend_from_slice(&self.pipeline_fields);
        // A `_timestamp` field gives way to the document's stamp; without a stamp it is the
        // document's own and is kept.
        let ours: &[&str] = if timestamp.is_some() {
            &["id", "_timestamp"]
        } else {
            &["id"]
        };
        append_fields(body, fields, ours);
        body.push(b'\n');
        self.finish_item(id, BulkOp::Index, item_start, source_start)
    }

    /// Adds an `index` action whose source is already serialised (a dead letter being
    /// retried: its stored document is sent as it was).
    pub fn push_raw_index(&mut self, id: String, source: &[u8]) -> Option<Batch> {
        let item_start = self.current.body.len();
        write_action(&mut self.current.body, "index", &id);
        let source_start = self.current.body.len();
        self.current.body.extend_from_slice(source);
        self.current.body.push(b'\n');
        self.finish_item(id, BulkOp::Index, item_start, source_start)
    }

    /// Adds an `update` with `doc_as_upsert`.
    pub fn push_update(&mut self, id: String, fields: &Fields) -> Option<Batch> {
        let item_start = self.current.body.len();
        write_action(&mut self.current.body, "update", &id);
        let source_start = self.current.body.len();
        let body = &mut self.current.body;
        body.extend_from_slice(b"{\"doc\":");
        // Serialising fields into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *body, fields);
        body.extend_from_slice(b",\"doc_as_upsert\":true}\n");
        self.finish_item(id, BulkOp::Update, item_start, source_start)
    }

    /// Adds a `delete`.
    pub fn push_delete(&mut self, id: String) -> Option<Batch> {
        let item_start = self.current.body.len();
        write_action(&mut self.current.body, "delete", &id);
        let end = self.current.body.len();
        self.finish_item(id, BulkOp::Delete, item_start, end)
    }

    fn finish_item(
        &mut self,
        id: String,
        op: BulkOp,
        start: usize,
        source_start: usize,
    ) -> Option<Batch> {
        let end = self.current.body.len();
        let item = BatchItem {
            id,
            op,
            start,
            source_start,
            end,
            attempts: 0,
            throttled_since: None,
        };
        let over_bytes = end > self.limits.max_bytes && !self.current.items.is_empty();
        if over_bytes {
            // This document does not fit: cut before it and start the next batch with it.
            let tail = self.current.body.split_off(start);
            let full = self.take_current();
            let base = self.current.body.len();
            self.current.body.extend_from_slice(&tail);
            let shift = |pos: usize| pos - start + base;
            self.current.items.push(BatchItem {
                start: shift(item.start),
                source_start: shift(item.source_start),
                end: shift(item.end),
                ..item
            });
            return Some(full);
        }
        self.current.items.push(item);
        if self.current.items.len() >= self.limits.max_docs
            || self.current.body.len() >= self.limits.max_bytes
        {
            return Some(self.take_current());
        }
        None
    }

    /// The batch being built, if it holds anything (for linger and the end of the source).
    pub fn flush(&mut self) -> Option<Batch> {
        (!self.current.is_empty()).then(|| self.take_current())
    }

    /// A fresh sequence number, for batches built elsewhere (retries).
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn take_current(&mut self) -> Batch {
        let seq = self.next_seq();
        // The next body is likely the size of this one: reserve that and an eighth more.
        let (used, docs) = (self.current.body.len(), self.current.items.len());
        let capacity = (used + used / 8)
            .min(self.limits.max_bytes)
            .min(MAX_BODY_CAPACITY);
        let next = Building::with_body(self.bodies.take(capacity), docs);
        let done = std::mem::replace(&mut self.current, next);
        let body = PooledBody {
            bytes: done.body,
            pool: Arc::clone(&self.bodies),
        };
        Batch {
            seq,
            body: Bytes::from_owner(body),
            items: done.items,
            created: done.created,
        }
    }
}

/// `{"<op>":{"_id":"<id>"}}\n`, hashing ids that are too long.
fn write_action(body: &mut Vec<u8>, op: &str, id: &str) {
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(op.as_bytes());
    body.extend_from_slice(b"\":{\"_id\":");
    write_json_str(body, &bulk_id(id));
    body.extend_from_slice(b"}}\n");
}

/// The `_id` a source id is indexed under: itself, or its hash when over 512 bytes.
pub fn bulk_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.len() > MAX_ID_BYTES {
        std::borrow::Cow::Owned(hash_id(id))
    } else {
        std::borrow::Cow::Borrowed(id)
    }
}

/// The `_id` used for an id over 512 bytes.
pub fn hash_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How `serde_json` escapes each byte of a string: 0 for none, `u` for `\u00XX`, else the
/// letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Eight copies of `byte`, for the word-at-a-time test.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// Whether `b` needs escaping (a control byte, `"` or `\\`), with the per-byte operations
/// baseline x86-64 (SSE2) has: `b ^ 2` maps the control bytes onto themselves and `"` onto
/// `' '`, so "control byte or quote" is `b ^ 2 <= 0x20`, a saturating subtraction that leaves
/// 0; the backslash is `b ^ b'\\' == 0`; the smaller of the two is 0 when either holds.
#[inline(always)]
fn byte_needs_escape(b: u8) -> bool {
    (b ^ 0x02).saturating_sub(0x20).min(b ^ b'\\') == 0
}

/// Whether any byte of a 64-byte block needs escaping. Without early exits this becomes
/// pxor/psubusb/pminub/pcmpeqb on four vectors and one pmovmskb: about 0.6 instructions a byte,
/// where a fold of three compares per byte took twice that.
#[inline(always)]
fn block_needs_escape(block: &[u8; 64]) -> bool {
    block
        .iter()
        .fold(false, |any, &b| any | byte_needs_escape(b))
}

/// The index of the first byte of `word` that needs escaping, or 8. SWAR, the test of
/// [`byte_needs_escape`] on a whole word: subtracting 0x21 from each byte of `word ^ 0x02..`
/// borrows into the high bit of the bytes below 0x21, subtracting 1 from `word ^ 0x5c..` into
/// that of the zero bytes (the backslashes), and `!word` drops bytes whose own high bit is set.
/// A borrow can carry on and flag a byte above a flagged one, never one below it, so the
/// lowest flag is exact.
#[inline(always)]
fn word_escape(word: &[u8; 8]) -> usize {
    let word = u64::from_le_bytes(*word);
    let low = (word ^ splat(0x02)).wrapping_sub(splat(0x21));
    let backslash = (word ^ splat(b'\\')).wrapping_sub(splat(0x01));
    let flags = (low | backslash) & !word & splat(0x80);
    (flags.trailing_zeros() / 8) as usize
}

/// The position of the first byte at or after `from` that needs escaping, or `bytes.len()`.
/// Long runs go 64 bytes a step (most of a document is plain text), the rest eight a step.
#[inline(always)]
fn next_escape(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    let rest = bytes.get(at..).unwrap_or_default();
    if rest.len() >= 72 {
        // Escapes cluster (`\r\n`, quoted words): try the next word before a whole block.
        if let Some(word) = rest.first_chunk::<8>() {
            let i = word_escape(word);
            if i < 8 {
                return at + i;
            }
            at += 8;
        }
        let (blocks, tail) = bytes.get(at..).unwrap_or_default().as_chunks::<64>();
        let mut hit = false;
        for block in blocks {
            if block_needs_escape(block) {
                hit = true;
                break;
            }
            at += 64;
        }
        // The string's last 64 bytes cover the tail in one more test: the bytes before the
        // tail in them were scanned already and need no escaping.
        if !hit
            && (tail.is_empty()
                || bytes
                    .last_chunk::<64>()
                    .is_some_and(|last| !block_needs_escape(last)))
        {
            return bytes.len();
        }
    }
    // To the byte in the block that hit, or through a short string.
    let (words, tail) = bytes.get(at..).unwrap_or_default().as_chunks::<8>();
    for word in words {
        let i = word_escape(word);
        if i < 8 {
            return at + i;
        }
        at += 8;
    }
    if tail.is_empty() {
        return bytes.len();
    }
    // The string's last eight bytes, shifted so the tail is at the bottom: the bytes before it
    // may be escaped ones, whose borrows would flag tail bytes. The zeros shifted in at the
    // top are flagged, so a clean tail gives its length.
    if let Some(last) = bytes.last_chunk::<8>() {
        let shifted = u64::from_le_bytes(*last) >> (8 * (8 - tail.len()));
        return at + word_escape(&shifted.to_le_bytes()).min(tail.len());
    }
    tail.iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map_or(bytes.len(), |i| at + i)
}

/// A JSON string, byte for byte as `serde_json` writes it, copying the runs that need no
/// escaping whole.
#[inline(always)]
fn write_json_str(body: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if bytes.len() > SHORT || !write_short_clean(body, bytes) {
        write_json_str_scanned(body, bytes);
    }
}

/// [`write_json_str`] for long strings and those with escapes. Out of line, so that the short
/// path, inlined where strings are written, does not pay for this one's registers.
#[inline(never)]
fn write_json_str_scanned(body: &mut Vec<u8>, bytes: &[u8]) {
    body.reserve(bytes.len() + 2);
    body.push(b'"');
    let mut copied = 0;
    // Two calls of the inlined scan, not one in a `loop`: the string without escapes then
    // goes straight through, which measured ~10% fewer instructions on short strings.
    let mut at = next_escape(bytes, 0);
    while let Some(&byte) = bytes.get(at) {
        body.extend_from_slice(bytes.get(copied..at).unwrap_or_default());
        match ESCAPE[usize::from(byte)] {
            b'u' => body.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
            escape => body.extend_from_slice(&[b'\\', escape]),
        }
        copied = at + 1;
        at = next_escape(bytes, copied);
    }
    body.extend_from_slice(bytes.get(copied..).unwrap_or_default());
    body.push(b'"');
}

/// Strings up to this long go through [`write_short_clean`] first.
const SHORT: usize = 16;

/// Writes a string of at most [`SHORT`] bytes that needs no escaping (most keys, short ids
/// and short values), as whole words: tested as one or two words, copied as one 16-byte
/// block and cut to length. The general path's reserve, pushes and `memcpy` call cost more
/// than the string itself. `false`, writing nothing, when a byte needs escaping (or the
/// string is longer).
#[inline(always)]
fn write_short_clean(body: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let len = bytes.len();
    // Spaces need no escaping: the padding never flags a word.
    let mut block = [b' '; SHORT];
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        // 8 to 16 bytes: two words that overlap cover them.
        if word_escape(first) < 8 || word_escape(last) < 8 {
            return false;
        }
        let (head, _) = block.split_at_mut(8);
        head.copy_from_slice(first);
        match block.get_mut(len.saturating_sub(8)..len) {
            Some(tail) => tail.copy_from_slice(last),
            None => return false,
        }
    } else {
        // Under 8 bytes: shifted into a word of spaces, byte by byte (a copy loop would
        // become a `memcpy` call).
        let mut word = splat(b' ');
        for (i, &b) in bytes.iter().enumerate() {
            let shift = 8 * i;
            word = (word & !(0xff << shift)) | (u64::from(b) << shift);
        }
        let word = word.to_le_bytes();
        if word_escape(&word) < 8 {
            return false;
        }
        let (head, _) = block.split_at_mut(8);
        head.copy_from_slice(&word);
    }
    let end = body.len() + 1 + len;
    body.reserve(SHORT + 2);
    body.push(b'"');
    body.extend_from_slice(&block);
    body.truncate(end);
    body.push(b'"');
    true
}

/// Compact JSON, byte for byte what `serde_json::to_writer` writes, with the string fast path.
fn write_value(body: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => body.extend_from_slice(b"null"),
        Value::Bool(true) => body.extend_from_slice(b"true"),
        Value::Bool(false) => body.extend_from_slice(b"false"),
        Value::Number(n) => write_number(body, n),
        Value::String(s) => write_json_str(body, s),
        Value::Array(items) => {
            body.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                write_value(body, item);
            }
            body.push(b']');
        }
        Value::Object(map) => {
            body.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                write_json_str(body, key);
                body.push(b':');
                write_value(body, item);
            }
            body.push(b'}');
        }
    }
}

/// A number as `serde_json` writes it. Integers straight through `itoa` (what serde_json
/// uses for them too): its serializer around that cost ~95 instructions a number.
fn write_number(body: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        body.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else if let Some(u) = n.as_u64() {
        body.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else {
        // Serialising a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *body, n);
    }
}

/// Appends `,"k":v,...}` (or `}` for no fields) after an already opened, non-empty object,
/// leaving out the keys in `skip`.
fn append_fields(body: &mut Vec<u8>, fields: &Fields, skip: &[&str]) {
    for (key, value) in fields.iter() {
        if skip.contains(&key) {
            continue;
        }
        body.push(b',');
        write_json_str(body, key);
        body.push(b':');
        write_value(body, value);
    }
    body.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        Fields::from(v.as_object().cloned().unwrap())
    }

    fn limits(docs: usize, bytes: usize) -> BatchLimits {
        BatchLimits {
            max_docs: docs,
            max_bytes: bytes,
        }
    }

    fn lines(batch: &Batch) -> Vec<Value> {
        batch
            .body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn index_lines_carry_id_timestamp_and_pipeline_flags() {
        let mut b = BatchBuilder::new(limits(10, 1 << 20), Some(&Pipeline::default()));
        assert!(
            b.push_index(
                "a\"1".into(),
                Some("2024-01-01T00:00:00Z"),
                &mut fields(json!({"x": 1, "id": "dup"}))
            )
            .is_none()
        );
        assert!(b.push_index("b".into(), None, &mut Fields::new()).is_none());
        let batch = b.flush().unwrap();
        let l = lines(&batch);
        assert_eq!(l[0], json!({"index": {"_id": "a\"1"}}));
        assert_eq!(
            l[1],
            json!({"id": "a\"1", "_timestamp": "2024-01-01T00:00:00Z", "_extract_binary_content": true,
                   "_reduce_whitespace": true, "_run_ml_inference": true, "x": 1})
        );
        assert_eq!(l[3]["id"], "b");
        let src: Value = serde_json::from_slice(batch.source_of(&batch.items[0])).unwrap();
        assert_eq!(src["x"], 1);
    }

    #[test]
    fn a_body_is_reused_once_every_slice_of_it_is_gone() {
        let mut b = BatchBuilder::new(limits(1, 1 << 20), None);
        let mut push = |id: &str| {
            b.push_index(id.into(), None, &mut fields(json!({"n": 1})))
                .expect("a batch of one")
        };
        let first = push("a");
        let first_at = first.body.as_ptr();
        let slice = first.body.slice(0..1);
        drop(first);
        // A slice still holds it: the next body is another.
        let second = push("b");
        assert_ne!(second.body.as_ptr(), first_at);
        drop(slice);
        // Gone now: the body after the one being built is the first one again, its bytes new.
        let third = push("c");
        let fourth = push("d");
        assert!([third.body.as_ptr(), fourth.body.as_ptr()].contains(&first_at));
        for (batch, id) in [(&second, "b"), (&third, "c"), (&fourth, "d")] {
            assert_eq!(lines(batch)[0], json!({"index": {"_id": id}}));
            assert_eq!(lines(batch)[1], json!({"id": id, "n": 1}));
        }
    }

    #[test]
    fn a_timestamp_field_gives_way_to_the_stamp_and_is_kept_without_one() {
        let mut b = BatchBuilder::new(limits(10, 1 << 20), None);
        let field = || fields(json!({"_timestamp": "2020-01-01T00:00:00Z", "x": 1}));
        assert!(
            b.push_index("s".into(), Some("2024-01-01T00:00:00Z"), &mut field())
                .is_none()
        );
        assert!(b.push_index("n".into(), None, &mut field()).is_none());
        let batch = b.flush().unwrap();
        let text = String::from_utf8_lossy(&batch.body).into_owned();
        assert_eq!(text.matches("_timestamp").count(), 2, "{text}");
        let l = lines(&batch);
        assert_eq!(
            l[1],
            json!({"id": "s", "_timestamp": "2024-01-01T00:00:00Z", "x": 1})
        );
        assert_eq!(
            l[3],
            json!({"id": "n", "_timestamp": "2020-01-01T00:00:00Z", "x": 1})
        );
    }

    #[test]
    fn cuts_by_count_and_by_bytes_without_losing_a_document() {
        let mut b = BatchBuilder::new(limits(3, 1 << 20), None);
        let mut cut = Vec::new();
        for i in 0..7 {
            cut.extend(b.push_index(format!("d{i}"), None, &mut fields(json!({"n": i}))));
        }
        cut.extend(b.flush());
        assert_eq!(cut.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3, 1]);

        let mut b = BatchBuilder::new(limits(1000, 200), None);
        let mut cut = Vec::new();
        for i in 0..10 {
            cut.extend(b.push_index(
                format!("d{i}"),
                None,
                &mut fields(json!({"pad": "x".repeat(60)})),
            ));
        }
        cut.extend(b.flush());
        let ids: Vec<String> = cut
            .iter()
            .flat_map(|b| b.items.iter().map(|i| i.id.clone()))
            .collect();
        assert_eq!(ids, (0..10).map(|i| format!("d{i}")).collect::<Vec<_>>());
        for batch in &cut {
            assert!(
                batch.body.len() <= 200 || batch.len() == 1,
                "batch of {} bytes",
                batch.body.len()
            );
            for (item, pair) in batch.items.iter().zip(lines(batch).chunks(2)) {
                assert_eq!(pair[0]["index"]["_id"], item.id.as_str());
                assert_eq!(pair[1]["id"], item.id.as_str());
            }
        }
    }

    #[test]
    fn subset_reuses_bytes_and_counts_attempts() {
        let mut b = BatchBuilder::new(limits(10, 1 << 20), None);
        b.push_index("a".into(), None, &mut fields(json!({"v": 1})));
        b.push_delete("b".into());
        b.push_update("c".into(), &fields(json!({"v": 3})));
        let batch = b.flush().unwrap();
        let retry = batch.subset(9, &[batch.items[2].clone(), batch.items[1].clone()]);
        let l = lines(&retry);
        assert_eq!(l[0], json!({"update": {"_id": "c"}}));
        assert_eq!(l[1], json!({"doc": {"v": 3}, "doc_as_upsert": true}));
        assert_eq!(l[2], json!({"delete": {"_id": "b"}}));
        assert_eq!(retry.items[0].attempts, 1);
        assert_eq!(retry.source_of(&retry.items[1]), b"");
    }

    #[test]
    fn long_ids_are_hashed_in_the_action_only() {
        let long = "x".repeat(600);
        let mut b = BatchBuilder::new(limits(10, 1 << 20), None);
        b.push_index(long.clone(), None, &mut Fields::new());
        let batch = b.flush().unwrap();
        let l = lines(&batch);
        assert_eq!(l[0]["index"]["_id"].as_str().unwrap().len(), 64);
        assert_eq!(l[1]["id"], long.as_str());
        assert_eq!(batch.items[0].id, long);
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut samples: Vec<String> = (0u8..=0x7f)
            .map(|b| format!("ab{}cdefghij{}", b as char, b as char))
            .collect();
        samples.extend(
            [
                "",
                "\"",
                "\\",
                "12345678",
                "1234567\"",
                "é ü 日本語 \u{1F600}",
                "\u{7f}\u{80}\u{2028}",
            ]
            .map(String::from),
        );
        samples.push("plain text that is long enough for several eight-byte words".repeat(3));
        // An escape at every position of a string spanning several 32-byte steps.
        let long = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(3);
        for at in 0..long.len() {
            for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é'] {
                let mut s = long.clone();
                s.replace_range(at..at + 1, &c.to_string());
                samples.push(s);
            }
        }
        for s in &samples {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    /// The short path (up to 16 bytes) at every length around its word and block sizes, clean
    /// and with an escape or a multi-byte character at every position, after bytes already
    /// in the body (it cuts the body to length).
    #[test]
    fn short_strings_are_written_as_serde_json_does_after_earlier_bytes() {
        let clean = "abcdefghijklmnopq";
        for len in 0..=clean.len() {
            let base = &clean[..len];
            let mut samples = vec![base.to_string()];
            for at in 0..len {
                for c in ['"', '\\', '\n', '\u{1f}', 'é', ' '] {
                    let mut s = base.to_string();
                    s.replace_range(at..at + 1, &c.to_string());
                    samples.push(s);
                }
            }
            for s in &samples {
                let mut out = b"[1,".to_vec();
                write_json_str(&mut out, s);
                out.push(b']');
                let expected = format!("[1,{}]", serde_json::to_string(s).unwrap());
                assert_eq!(String::from_utf8(out).unwrap(), expected, "{s:?}");
            }
        }
    }

    /// The short path itself takes every clean string up to 16 bytes (a padding byte it
    /// flagged would send them all to the scanning path, with the same output) and refuses
    /// one with an escape anywhere.
    #[test]
    fn the_short_path_takes_clean_strings_and_refuses_escapes() {
        let clean = "abcdefghijklmnop";
        for len in 0..=SHORT {
            let s = &clean[..len];
            let mut out = Vec::new();
            assert!(write_short_clean(&mut out, s.as_bytes()), "{s:?}");
            assert_eq!(out, serde_json::to_vec(s).unwrap());
            for at in 0..len {
                let mut escaped = s.to_string();
                escaped.replace_range(at..at + 1, "\"");
                let mut out = b"x".to_vec();
                assert!(!write_short_clean(&mut out, escaped.as_bytes()));
                assert_eq!(out, b"x", "nothing written for {escaped:?}");
            }
        }
        assert!(!write_short_clean(&mut Vec::new(), b"abcdefghijklmnopq"));
    }

    #[test]
    fn values_are_written_exactly_as_serde_json_does() {
        let v = json!({"n": null, "t": true, "f": false, "i": -12, "u": 18446744073709551615u64, "x": 1.5e-7,
            "s": "a\u{1}b\n", "a": [1, "two", [], {}], "o": {"k\"": {"deep": [null]}}});
        let mut out = Vec::new();
        write_value(&mut out, &v);
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_does(s in ".*", t in "[\\x00-\\x7f]{0,40}") {
            for s in [&s, &t] {
                let mut out = Vec::new();
                write_json_str(&mut out, s);
                proptest::prop_assert_eq!(out, serde_json::to_vec(s).unwrap());
            }
        }
    }
}

/// The string escaping against `serde_json`, byte for byte, across every path of the scan:
/// the byte loop and the overlapping last word of short strings, the words, the 64-byte
/// blocks and the overlapping last block of long ones, and scans that start after an escape.
#[cfg(test)]
mod escape_tests {
    use super::{write_json_str, write_number};
    use proptest::prelude::*;

    fn escaped(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        out
    }

    fn expected(s: &str) -> Vec<u8> {
        serde_json::to_string(s)
            .expect("a string always serialises")
            .into_bytes()
    }

    /// Pieces rich in what the scan must find or pass: control bytes (the escaped and the
    /// `\u00XX` ones), the quote and the backslash, their neighbours, DEL, and one- to
    /// four-byte UTF-8 (lead and continuation bytes >= 0x80 are never escaped).
    const PIECES: &[&str] = &[
        "a",
        "z",
        " ",
        "!",
        "#",
        "\"",
        "\\",
        "[",
        "]",
        "\u{0}",
        "\u{1}",
        "\u{8}",
        "\t",
        "\n",
        "\u{b}",
        "\u{c}",
        "\r",
        "\u{1b}",
        "\u{1f}",
        "\u{7f}",
        "\u{80}",
        "\u{a0}",
        "é",
        "ÿ",
        "\u{2028}",
        "日",
        "\u{fffd}",
        "\u{1F600}",
        "\u{10FFFF}",
        "plain",
    ];

    fn from_pieces(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PIECES), 0..max)
            .prop_map(|pieces| pieces.concat())
    }

    /// `n` as [`write_number`] writes it, and as serde_json does.
    fn written_both_ways(n: &serde_json::Number) -> (Vec<u8>, Vec<u8>) {
        let mut ours = Vec::new();
        write_number(&mut ours, n);
        (ours, serde_json::to_vec(n).expect("a number serialises"))
    }

    /// The edges of each integer branch and floats serde_json writes its own way.
    #[test]
    fn edge_numbers_are_written_as_serde_json_does() {
        let mut numbers: Vec<serde_json::Number> = [0, -1, 1, i64::MIN, i64::MAX]
            .into_iter()
            .map(serde_json::Number::from)
            .collect();
        numbers.extend([i64::MAX as u64 + 1, u64::MAX].map(serde_json::Number::from));
        numbers.extend(
            [0.0, -0.0, 1.0, -1.5, 1e300, 5e-324, f64::MAX]
                .into_iter()
                .filter_map(serde_json::Number::from_f64),
        );
        for n in &numbers {
            let (ours, theirs) = written_both_ways(n);
            assert_eq!(ours, theirs, "{n}");
        }
        assert_eq!(numbers.len(), 14);
    }

    proptest! {
        /// Random integers of either sign and width, and random finite floats (which keep
        /// serde_json's writer).
        #[test]
        fn any_number_is_written_as_serde_json_does(
            i in any::<i64>(),
            u in any::<u64>(),
            f in any::<f64>(),
        ) {
            let numbers = [
                serde_json::Number::from(i),
                serde_json::Number::from(u),
                serde_json::Number::from(i.unsigned_abs()),
            ];
            let float = serde_json::Number::from_f64(f);
            for n in numbers.iter().chain(float.as_ref()) {
                let (ours, theirs) = written_both_ways(n);
                prop_assert_eq!(ours, theirs, "{}", n);
            }
        }

        #[test]
        fn any_string_is_written_as_serde_json_does(s in any::<String>()) {
            prop_assert_eq!(escaped(&s), expected(&s));
        }

        #[test]
        fn strings_of_special_pieces_are_written_as_serde_json_does(s in from_pieces(200)) {
            prop_assert_eq!(escaped(&s), expected(&s));
        }

        /// Escapes, then a plain run of any length 0..200 (so every block and word boundary
        /// falls in it), then a few more pieces: the scans after an escape start mid-word,
        /// with escaped bytes just before them in the words and blocks they overlap.
        #[test]
        fn escapes_around_plain_runs_of_every_length_are_written_as_serde_json_does(
            head in from_pieces(12),
            run in 0usize..200,
            tail in from_pieces(4),
        ) {
            let s = format!("{head}{}{tail}", "x".repeat(run));
            prop_assert_eq!(escaped(&s), expected(&s));
        }
    }

    /// Every ASCII byte at every position of plain strings of the lengths around each path's
    /// edges: the short strings, either side of 72 bytes (where the blocks start) and of two
    /// blocks, and 200 bytes, where the scan after the byte starts at every remaining length.
    #[test]
    fn every_ascii_byte_at_every_position_of_strings_on_every_path() {
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(6);
        let lengths = (1..=20).chain(60..=76).chain(128..=137).chain([200]);
        for len in lengths {
            let base = plain.get(..len).expect("200 plain bytes");
            for at in 0..len {
                for b in 0u8..=0x7f {
                    let mut s = base.to_string();
                    s.replace_range(at..at + 1, char::from(b).encode_utf8(&mut [0; 4]));
                    assert_eq!(escaped(&s), expected(&s), "{s:?}");
                }
            }
        }
    }

    /// Every char alone; the one- and two-byte ones and a sample of the rest (every lead
    /// byte among them, so every byte value) also in short and word-sized strings and before
    /// and after a long run.
    #[test]
    fn every_char_alone_and_inside_short_and_long_plain_text() {
        let long = "x".repeat(80);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let alone = c.to_string();
            assert_eq!(escaped(&alone), expected(&alone), "{alone:?}");
            if c < '\u{800}' || u32::from(c) % 997 == 0 {
                for s in [
                    format!("abc{c}"),
                    format!("abcdefghij{c}"),
                    format!("{c}{long}"),
                    format!("{long}{c}ab"),
                ] {
                    assert_eq!(escaped(&s), expected(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn every_pair_of_ascii_bytes_is_written_as_serde_json_does() {
        for a in 0u8..=0x7f {
            for b in 0u8..=0x7f {
                let pair = [char::from(a), char::from(b)];
                for s in [
                    pair.iter().collect::<String>(),
                    format!("{}{}{}", pair[0], "y".repeat(70), pair[1]),
                    format!("{}{}{}", pair[0], pair[1], "y".repeat(80)),
                ] {
                    assert_eq!(escaped(&s), expected(&s), "{s:?}");
                }
            }
        }
    }
}
