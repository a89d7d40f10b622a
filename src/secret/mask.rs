//! The masker: the one place that knows every secret of the running process and replaces
//! each of them, in every form it can take on the way out, by [`MASK`](super::MASK).
//!
//! Every [`Secret`](super::Secret) registers itself when it is made, so the masker knows the
//! profile's credentials, a connector's sensitive values, `secret_env`, secret headers and
//! OAuth tokens without any caller having to remember. A secret is rarely echoed as typed:
//! a server quoting the request shows `Authorization: Basic <base64 of user:password>`, a
//! URL shows it percent-encoded, a JSON body escaped. So each secret is registered with its
//! derived forms: URL-encoded (form and percent styles, both hex cases), JSON-escaped, and
//! base64 (standard and URL-safe alphabets, padded or not), including the part of its base64
//! that is the same wherever it sits inside a longer encoded text (`user:password`).
//!
//! [`mask`] is what every string leaving the process goes through: errors, log lines, dead
//! letters, the screen. It never fails and never panics.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Values shorter than this (in characters) are not masked: masking every "a" or "dev" would
/// make logs unreadable and hide nothing worth hiding.
pub const MIN_SECRET_CHARS: usize = 4;

/// The masker forgets its least recently registered secrets past this many (a process that
/// keeps reading new configurations must not grow without bound); far more than one job ever
/// holds.
const MAX_SECRETS: usize = 4096;

/// A base64 fragment shorter than this is not a form of its own: too likely in plain text.
const MIN_FRAGMENT_CHARS: usize = 8;

/// RFC 3986's unreserved characters stay; everything else is escaped (`encodeURIComponent`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One registered secret: its plain text (to recognise it again) and every form it may take.
struct Entry {
    plain: SecretString,
    forms: Vec<SecretString>,
}

struct Registry {
    entries: VecDeque<Entry>,
    /// Every form of every entry, longest first, so a form containing another is masked whole.
    forms: Vec<SecretString>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    entries: VecDeque::new(),
    forms: Vec::new(),
});

// The registry is plain data: a panic elsewhere while holding the lock leaves it usable.
fn read() -> RwLockReadGuard<'static, Registry> {
    REGISTRY.read().unwrap_or_else(|p| p.into_inner())
}

fn write() -> RwLockWriteGuard<'static, Registry> {
    REGISTRY.write().unwrap_or_else(|p| p.into_inner())
}

/// Makes `plain` and its derived forms known to [`mask`]. Called by `Secret::new`; short
/// values are ignored and a value already known is not added twice.
pub fn register(plain: &str) {
    if plain.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    if read().is_recent(plain, MAX_SECRETS) {
        return;
    }
    let forms = derived_forms(plain);
    write().admit(plain, forms, MAX_SECRETS);
}

impl Registry {
    /// Whether `plain` is known and among the newer half: nothing to do (the common case of
    /// a job re-registering its connector's secrets), decided under the read lock.
    fn is_recent(&self, plain: &str, cap: usize) -> bool {
        let newer = self.entries.len().saturating_sub(cap / 2);
        self.entries
            .iter()
            .skip(newer)
            .any(|e| e.plain.expose_secret() == plain)
    }

    /// Adds `plain` (or, when known, moves it to the newest end): the registry forgets the
    /// least recently registered secret first. The secrets of connectors still running, which
    /// every job registers again, are kept as long as fewer than `cap / 2` other secrets
    /// arrive between two of their jobs ([`Registry::is_recent`] leaves an entry of the newer
    /// half where it is).
    fn admit(&mut self, plain: &str, forms: Vec<String>, cap: usize) {
        if let Some(at) = self
            .entries
            .iter()
            .position(|e| e.plain.expose_secret() == plain)
        {
            if let Some(entry) = self.entries.remove(at) {
                self.entries.push_back(entry);
            }
            return;
        }
        if self.entries.len() >= cap {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            plain: SecretString::from(plain.to_string()),
            forms: forms.into_iter().map(SecretString::from).collect(),
        });
        let mut all: Vec<SecretString> = self
            .entries
            .iter()
            .flat_map(|e| e.forms.iter().cloned())
            .collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.expose_secret().len()));
        all.dedup_by(|a, b| a.expose_secret() == b.expose_secret());
        self.forms = all;
    }
}

/// Registers HTTP basic credentials: `user:password` as one value, so that its base64 (the
/// `Authorization: Basic …` header) is masked whole, user name included.
pub fn register_basic(user: &str, password: &str) {
    if password.is_empty() {
        return;
    }
    register(password);
    register(&format!("{user}:{password}"));
}

/// `text` with every known secret, in every registered form, replaced by the mask.
pub fn mask(text: &str) -> Cow<'_, str> {
    let registry = read();
    let mut out = Cow::Borrowed(text);
    for form in &registry.forms {
        let form = form.expose_secret();
        if out.contains(form) {
            out = Cow::Owned(out.replace(form, super::MASK));
        }
    }
    out
}

/// [`mask`] into an owned string.
pub fn masked(text: impl AsRef<str>) -> String {
    mask(text.as_ref()).into_owned()
}

/// Masks every string (and object key) inside a JSON value, in place.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(m) = mask(s) {
                *s = m;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::Object(map) => {
            let keys_leak = map.keys().any(|k| matches!(mask(k), Cow::Owned(_)));
            if keys_leak {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(masked(&k), v);
                }
            }
            map.values_mut().for_each(mask_json);
        }
        _ => {}
    }
}

/// JSON text with its secrets masked, still valid JSON when it was: masking the text is
/// enough unless a secret straddles JSON syntax, and then the parsed value is masked.
pub fn mask_json_text(text: &str) -> Cow<'_, str> {
    let out = mask(text);
    if matches!(out, Cow::Borrowed(_))
        || serde_json::from_str::<serde::de::IgnoredAny>(&out).is_ok()
    {
        return out;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            mask_json(&mut value);
            Cow::Owned(value.to_string())
        }
        // It was not JSON before either: the masked text is as good as it gets.
        Err(_) => out,
    }
}

/// How many bytes of a document too large to keep are stored, as a preview.
pub const DOCUMENT_PREVIEW_BYTES: usize = 1024;

/// A dead letter's document as it may be stored: secrets masked, and when it is larger than
/// `max_bytes`, a small JSON object in its place holding its size and a preview of its first
/// [`DOCUMENT_PREVIEW_BYTES`] bytes, so one huge document cannot fill the disk or the
/// operator's screen. The result is always valid JSON when the input was.
pub fn storable_document(text: &str, max_bytes: usize) -> String {
    let masked = mask_json_text(text);
    if masked.len() <= max_bytes {
        return masked.into_owned();
    }
    serde_json::json!({
        "_syncdeck_truncated": true,
        "size_bytes": masked.len(),
        "preview": preview(&masked, DOCUMENT_PREVIEW_BYTES),
    })
    .to_string()
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn preview(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Every form `plain` may take in text that leaves the process, `plain` first.
fn derived_forms(plain: &str) -> Vec<String> {
    let mut forms = vec![plain.to_string()];
    let form_style: String = url::form_urlencoded::byte_serialize(plain.as_bytes()).collect();
    forms.push(form_style);
    for set in [NON_ALPHANUMERIC, COMPONENT] {
        let upper = utf8_percent_encode(plain, set).to_string();
        forms.push(lower_hex(&upper));
        forms.push(upper);
    }
    if let Ok(json) = serde_json::to_string(plain) {
        forms.push(json[1..json.len() - 1].to_string());
    }
    let bytes = plain.as_bytes();
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(bytes));
    }
    forms.push(utf8_percent_encode(&STANDARD.encode(bytes), NON_ALPHANUMERIC).to_string());
    for alignment in 0..3 {
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            if let Some(fragment) = base64_fragment(engine, bytes, alignment) {
                forms.push(fragment);
            }
        }
    }
    forms.retain(|f| f.chars().count() >= MIN_SECRET_CHARS);
    forms.sort();
    forms.dedup();
    forms
}

/// The base64 characters that encode only `bytes` when they follow `alignment` (0–2) other
/// bytes and precede unknown ones: the part of the encoding that is the same wherever the
/// secret sits in a longer encoded text.
fn base64_fragment(
    engine: base64::engine::GeneralPurpose,
    bytes: &[u8],
    alignment: usize,
) -> Option<String> {
    let mut padded = vec![0u8; alignment];
    padded.extend_from_slice(bytes);
    let encoded = engine.encode(&padded);
    // Character i holds bits 6i..6i+6; it is the secret's alone when those bits lie within it.
    let first = (8 * alignment).div_ceil(6);
    let end = (8 * padded.len()) / 6;
    let fragment = encoded.get(first..end)?;
    (fragment.len() >= MIN_FRAGMENT_CHARS).then(|| fragment.to_string())
}

fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[i + escape.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::MASK;
    use super::*;

    // Each test uses its own values: the registry is shared by every test of this binary.

    #[test]
    fn the_registry_forgets_the_least_recently_registered_secret() {
        // A registry of its own: the process-wide one is shared by every test.
        let mut registry = Registry {
            entries: VecDeque::new(),
            forms: Vec::new(),
        };
        let known = |r: &Registry| -> Vec<String> {
            r.entries
                .iter()
                .map(|e| e.plain.expose_secret().to_string())
                .collect()
        };
        for s in ["first-secret", "second-secret", "third-secret"] {
            registry.admit(s, derived_forms(s), 3);
        }
        // A running connector's job registers its secret again: it becomes the newest.
        assert!(!registry.is_recent("first-secret", 3));
        registry.admit("first-secret", derived_forms("first-secret"), 3);
        registry.admit("fourth-secret", derived_forms("fourth-secret"), 3);
        assert_eq!(
            known(&registry),
            ["third-secret", "first-secret", "fourth-secret"]
        );
        assert!(
            registry
                .forms
                .iter()
                .all(|f| !f.expose_secret().contains("second-secret"))
        );
        assert!(registry.is_recent("fourth-secret", 3));
    }

    #[test]
    fn plain_url_encoded_and_json_escaped_forms_are_masked() {
        register("pa ss/wörd+1\"x");
        let text = "a pa ss/wörd+1\"x b pa+ss%2Fw%C3%B6rd%2B1%22x c pa%20ss%2fw%c3%b6rd%2b1%22x \
                    d pa ss/wörd+1\\\"x";
        let out = mask(text);
        assert!(
            !out.contains("ss/w") && !out.contains("ss%2") && !out.contains("ss%2f"),
            "{out}"
        );
        assert_eq!(out.matches(MASK).count(), 4, "{out}");
    }

    #[test]
    fn basic_auth_base64_is_masked_whole_and_in_part() {
        register_basic("bob", "hunter2-basic-pw");
        let header = format!("Basic {}", STANDARD.encode("bob:hunter2-basic-pw"));
        let out = masked(format!("echo: Authorization: {header}"));
        assert_eq!(out, format!("echo: Authorization: Basic {MASK}"));
        // Another user name: the password's own part of the encoding is still masked.
        let other = STANDARD.encode("alice:hunter2-basic-pw");
        let out = masked(&other);
        assert!(out.contains(MASK), "{out}");
        assert!(!out.contains(&other[8..20]), "{out}");
        let url_safe = URL_SAFE_NO_PAD.encode("bob:hunter2-basic-pw");
        assert_eq!(mask(&url_safe), MASK);
    }

    #[test]
    fn bearer_tokens_and_fragments_in_any_alignment() {
        register("tok-3f9a8b7c6d5e");
        assert_eq!(mask("Bearer tok-3f9a8b7c6d5e"), format!("Bearer {MASK}"));
        for prefix in ["", "x", "xy", "xyz"] {
            let encoded = STANDARD.encode(format!("{prefix}tok-3f9a8b7c6d5e!"));
            assert!(masked(&encoded).contains(MASK), "{prefix}: {encoded}");
        }
    }

    #[test]
    fn short_values_and_unknown_text_stay() {
        register("abc");
        assert_eq!(mask("abc abc"), "abc abc");
        assert!(matches!(mask("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_json_when_a_secret_straddles_its_syntax() {
        register("q\",\"k\":\"v");
        let text = r#"{"a":"q\",\"k\":\"v","n":1}"#;
        let out = mask_json_text(text);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["a"], MASK);
    }

    #[test]
    fn large_documents_become_a_preview_with_their_size() {
        let big = serde_json::json!({ "body": "z".repeat(5000) }).to_string();
        let stored = storable_document(&big, 2000);
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v["size_bytes"], big.len());
        assert_eq!(v["preview"].as_str().unwrap().len(), DOCUMENT_PREVIEW_BYTES);
        assert_eq!(storable_document("{\"a\":1}", 2000), "{\"a\":1}");
        assert_eq!(preview("héllo", 2), "h");
    }
}
