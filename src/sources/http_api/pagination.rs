//! The pagination styles of the `http_api` source: which URL comes first and which comes
//! next, from the response's body, its `Link` header (RFC 8288) or counters. Every style stops
//! on an empty page or a missing next. Pure functions over URLs and JSON; no requests here.

use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

/// How the API pages its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pagination {
    /// One request.
    None,
    /// A URL (absolute or relative) at a JSON pointer in the body.
    NextLinkBody { path: String },
    /// `Link: <…>; rel="next"`.
    LinkHeader,
    /// An opaque cursor at a JSON pointer in the body, sent back as a query parameter.
    Cursor { path: String, param: String },
    /// `?page=N&per_page=M`, N counting up from `start`.
    PageNumber {
        param: String,
        size_param: Option<String>,
        size: u64,
        start: u64,
    },
    /// `?offset=N&limit=M`, N advancing by the items received.
    OffsetLimit {
        offset_param: String,
        limit_param: String,
        limit: u64,
    },
}

/// Counters of the counting styles.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PageState {
    page: u64,
    offset: u64,
}

/// What the pager needs from one response.
pub(crate) struct PageView<'a> {
    pub url: &'a Url,
    pub headers: &'a HeaderMap,
    pub body: &'a Value,
    pub items: usize,
}

/// Why there is no usable next page although the API announced one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLink {
    pub link: String,
    pub reason: String,
}

impl Pagination {
    /// The first page: `base` (which carries the incremental filter) plus the counters.
    pub fn first(&self, base: &Url) -> (Url, PageState) {
        match self {
            Pagination::PageNumber { start, .. } => {
                let state = PageState {
                    page: *start,
                    offset: 0,
                };
                (self.counted(base, state), state)
            }
            Pagination::OffsetLimit { .. } => {
                let state = PageState::default();
                (self.counted(base, state), state)
            }
            _ => (base.clone(), PageState::default()),
        }
    }

    /// The page after `page`, or `None` when this was the last.
    pub fn next(
        &self,
        base: &Url,
        state: &mut PageState,
        page: &PageView<'_>,
    ) -> Result<Option<Url>, BadLink> {
        if page.items == 0 {
            return Ok(None);
        }
        match self {
            Pagination::None => Ok(None),
            Pagination::NextLinkBody { path } => {
                match page.body.pointer(path).and_then(link_text) {
                    Some(link) => resolve(page.url, &link).map(Some),
                    None => Ok(None),
                }
            }
            Pagination::LinkHeader => {
                let values = page
                    .headers
                    .get_all(LINK)
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                match next_link(values) {
                    Some(link) => resolve(page.url, &link).map(Some),
                    None => Ok(None),
                }
            }
            Pagination::Cursor { path, param } => Ok(page
                .body
                .pointer(path)
                .and_then(link_text)
                .map(|cursor| with_param(base, param, &cursor))),
            Pagination::PageNumber { .. } => {
                state.page = state.page.saturating_add(1);
                Ok(Some(self.counted(base, *state)))
            }
            Pagination::OffsetLimit { .. } => {
                state.offset = state.offset.saturating_add(page.items as u64);
                Ok(Some(self.counted(base, *state)))
            }
        }
    }

    fn counted(&self, base: &Url, state: PageState) -> Url {
        match self {
            Pagination::PageNumber {
                param,
                size_param,
                size,
                ..
            } => {
                let url = with_param(base, param, &state.page.to_string());
                match size_param {
                    Some(p) => with_param(&url, p, &size.to_string()),
                    None => url,
                }
            }
            Pagination::OffsetLimit {
                offset_param,
                limit_param,
                limit,
            } => {
                let url = with_param(base, offset_param, &state.offset.to_string());
                with_param(&url, limit_param, &limit.to_string())
            }
            _ => base.clone(),
        }
    }
}

/// A next link or cursor: non-empty text, or a number. `null`, `false` and `""` mean the end.
fn link_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn resolve(current: &Url, link: &str) -> Result<Url, BadLink> {
    current.join(link).map_err(|e| BadLink {
        link: link.to_string(),
        reason: format!("is not a URL: {e}"),
    })
}

/// `url` with the query parameter `name` set to `value` (replacing any it had).
pub(crate) fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut out = without_param(url, name);
    out.query_pairs_mut().append_pair(name, value);
    out
}

/// `url` without the query parameter `name`.
pub(crate) fn without_param(url: &Url, name: &str) -> Url {
    if !url.query_pairs().any(|(k, _)| k == name) {
        return url.clone();
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.set_query(None);
    if !kept.is_empty() {
        out.query_pairs_mut().extend_pairs(kept);
    }
    out
}

/// The target of the `rel="next"` link among `Link` header values (RFC 8288), as written.
pub(crate) fn next_link<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else { break };
            let target = &after[..close];
            let (params, more) = split_link(&after[close + 1..]);
            if is_rel_next(params) {
                return Some(target.trim().to_string());
            }
            rest = more;
        }
    }
    None
}

// The parameters of one link value and the text after the comma that ends them.
fn split_link(s: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, "")
}

// `rel` may list several relation types: `rel="next last"`.
fn is_rel_next(params: &str) -> bool {
    params.split(';').any(|p| {
        let Some((name, value)) = p.split_once('=') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("rel")
            && value
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn link_headers_are_parsed_as_rfc_8288_writes_them() {
        let github = r#"<https://api.x.com/items?page=1>; rel="prev", <https://api.x.com/items?page=3>; rel="next", <https://api.x.com/items?page=9>; rel="last""#;
        assert_eq!(
            next_link([github]).as_deref(),
            Some("https://api.x.com/items?page=3")
        );
        assert_eq!(
            next_link([r#"</a,b?c=1>; title="x, y"; REL="last next""#]).as_deref(),
            Some("/a,b?c=1")
        );
        assert_eq!(
            next_link(["<https://a/1>; rel=prev", "<https://a/2>; rel=next"]).as_deref(),
            Some("https://a/2")
        );
        assert_eq!(next_link([r#"<https://a/1>; rel="prev""#]), None);
        assert_eq!(next_link(["garbage", "<unclosed; rel=next"]), None);
    }

    #[test]
    fn params_are_replaced_not_repeated() {
        let u = url("http://h/items?page=1&q=a+b&page=2");
        assert_eq!(
            with_param(&u, "page", "3").as_str(),
            "http://h/items?q=a+b&page=3"
        );
        assert_eq!(
            without_param(&url("http://h/i?k=1"), "k").as_str(),
            "http://h/i"
        );
    }

    #[test]
    fn counting_styles_advance_and_every_style_stops_on_an_empty_page() {
        let base = url("http://h/items?since=5");
        let offsets = Pagination::OffsetLimit {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit: 10,
        };
        let (first, mut state) = offsets.first(&base);
        assert_eq!(first.as_str(), "http://h/items?since=5&offset=0&limit=10");
        let headers = HeaderMap::new();
        let body = json!({});
        let view = |items| PageView {
            url: &first,
            headers: &headers,
            body: &body,
            items,
        };
        let next = offsets.next(&base, &mut state, &view(7)).unwrap().unwrap();
        assert_eq!(next.as_str(), "http://h/items?since=5&offset=7&limit=10");
        assert_eq!(offsets.next(&base, &mut state, &view(0)).unwrap(), None);
        let pages = Pagination::PageNumber {
            param: "p".into(),
            size_param: None,
            size: 5,
            start: 0,
        };
        let (first, mut state) = pages.first(&base);
        assert_eq!(first.as_str(), "http://h/items?since=5&p=0");
        let next = pages.next(&base, &mut state, &view(5)).unwrap().unwrap();
        assert_eq!(next.as_str(), "http://h/items?since=5&p=1");
    }

    #[test]
    fn body_links_resolve_against_the_current_page_and_end_on_null() {
        let current = url("http://h/v1/items?page=1");
        let headers = HeaderMap::new();
        let style = Pagination::NextLinkBody {
            path: "/links/next".into(),
        };
        let mut state = PageState::default();
        let body = json!({"links": {"next": "items?page=2"}});
        let view = PageView {
            url: &current,
            headers: &headers,
            body: &body,
            items: 1,
        };
        let next = style.next(&current, &mut state, &view).unwrap().unwrap();
        assert_eq!(next.as_str(), "http://h/v1/items?page=2");
        let body = json!({"links": {"next": null}});
        let view = PageView {
            url: &current,
            headers: &headers,
            body: &body,
            items: 1,
        };
        assert_eq!(style.next(&current, &mut state, &view).unwrap(), None);
    }
}
