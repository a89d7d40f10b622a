//! Errors of the `http_api` source and the scrubbing that keeps secrets out of them: URLs are
//! shown with the API key parameter and any password in them masked, and text quoted from a
//! response has every known credential replaced by the mask. Nothing here sends requests.

use crate::secret::{MASK, Secret};
use crate::sources::SourceError;
use reqwest::{Method, StatusCode};
use thiserror::Error;
use url::Url;

#[derive(Debug, Error)]
pub(crate) enum HttpApiError {
    #[error("configuration field '{field}': {reason}")]
    Config { field: String, reason: String },
    /// The API answered with a status that ends the sync.
    #[error("{method} {url} answered {status}{detail}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{method} {url} failed: {reason}")]
    Transport {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: the response is not JSON ({reason})")]
    NotJson {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: the response has nothing at 'items_path' '{path}'")]
    ItemsMissing {
        method: Method,
        url: String,
        path: String,
    },
    #[error("{method} {url}: 'items_path' '{path}' holds {found}, not an array of items")]
    ItemsNotArray {
        method: Method,
        url: String,
        path: String,
        found: &'static str,
    },
    #[error(
        "{method} {url}: the response is larger than max_response_bytes = {limit}; it was not \
         read further"
    )]
    TooLarge {
        method: Method,
        url: String,
        limit: usize,
    },
    #[error("the OAuth2 token endpoint {url} {reason}")]
    Token { url: String, reason: String },
    #[error(
        "the API still had a next page after {max_pages} pages (the last was {url}); raise \
         'max_pages' if it really has more"
    )]
    TooManyPages { max_pages: u64, url: String },
    #[error("the next page link '{link}' from {url} {reason}")]
    BadLink {
        link: String,
        url: String,
        reason: String,
    },
}

impl From<HttpApiError> for SourceError {
    fn from(e: HttpApiError) -> Self {
        match e {
            HttpApiError::Config { field, reason } => SourceError::Config { field, reason },
            other => SourceError::Failed(other.to_string()),
        }
    }
}

// Plain ASCII, so URL serialisation leaves it alone; swapped for the mask afterwards.
const PLACEHOLDER: &str = "SYNCDECKMASKEDVALUE";

/// `url` as it may be shown: the values of the `secret_params` query parameters and any
/// password replaced by the mask.
pub(crate) fn masked_url(url: &Url, secret_params: &[&str]) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some(PLACEHOLDER));
    }
    let has_secret = shown
        .query_pairs()
        .any(|(k, _)| secret_params.contains(&k.as_ref()));
    if has_secret {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_params.contains(&k.as_ref()) {
                    PLACEHOLDER.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string().replace(PLACEHOLDER, MASK)
}

/// `text` with every secret (as is, and as it would appear in a URL) replaced by the mask.
pub(crate) fn secret_free(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        let plain = secret.expose();
        // Very short values would mask ordinary words; no real credential is that short.
        if plain.len() < 4 {
            continue;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(plain.as_bytes()).collect();
        out = out.replace(plain, MASK).replace(&encoded, MASK);
    }
    out
}

/// At most 200 characters of a response body, on one line, for an error message.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// A reqwest error without its URL (which may hold a key), followed by its causes: reqwest's
/// own words are generic ("error sending request"), the causes say why.
pub(crate) fn transport_reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        "the request timed out".to_string()
    } else {
        e.to_string()
    };
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_with_their_secrets_masked() {
        let url =
            Url::parse("https://ann:pa55word@api.example.com/v1/items?q=a+b&key=k%2B1&page=2")
                .unwrap();
        let shown = masked_url(&url, &["key"]);
        assert_eq!(
            shown,
            format!("https://ann:{MASK}@api.example.com/v1/items?q=a+b&key={MASK}&page=2")
        );
        let plain = Url::parse("https://api.example.com/items?q=1").unwrap();
        assert_eq!(
            masked_url(&plain, &["key"]),
            "https://api.example.com/items?q=1"
        );
    }

    #[test]
    fn texts_are_scrubbed_of_secrets_as_written_and_as_url_encoded() {
        let secret = Secret::new("s3cr3t+/=key");
        let text = "bad key s3cr3t+/=key in ?api_key=s3cr3t%2B%2F%3Dkey";
        assert_eq!(
            secret_free(text, &[&secret]),
            format!("bad key {MASK} in ?api_key={MASK}")
        );
        // Too short to be a credential: ordinary words stay.
        assert_eq!(secret_free("a b c", &[&Secret::new("a")]), "a b c");
    }

    #[test]
    fn snippets_are_one_line_and_bounded() {
        assert_eq!(
            snippet(b"{\n  \"error\": \"nope\"\n}"),
            "{ \"error\": \"nope\" }"
        );
        let long = "é".repeat(300);
        let cut = snippet(long.as_bytes());
        assert_eq!(cut.chars().count(), 201);
        assert!(cut.ends_with('…'));
    }
}
