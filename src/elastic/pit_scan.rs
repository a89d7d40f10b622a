//! The id scan of a full sync: a point in time (PIT) read page by page with `search_after`,
//! sorted by `_shard_doc`, optionally in slices read at once. Owns the page request's JSON and
//! the PIT's life (open, newest id, close); reading a page's answer is `documents`, and what
//! the ids are for is the engine's.
//!
//! Slices: every slice of one PIT holds a disjoint share of its documents (ES slices a PIT by
//! Lucene document id, elastic/elasticsearch#75162, 7.15+), each paged by its own
//! `search_after`. All of them name the same PIT, by the newest id an answer gave (an answer
//! naming the id its request named brings nothing new). While one
//! slice's page is read by the caller, the others' requests are already on the wire, so the
//! cluster and the engine work at once instead of taking turns. The requests are futures
//! polled inside [`PitScan::next`] (this layer spawns no tasks): a caller that loops on
//! `next` keeps them moving.

use super::documents::{BARE_SCAN_FILTER_PATH, SCAN_FILTER_PATH, ScanPage, read_scan_page};
use super::error::Result;
use super::transport::{Body, Method, Transport, path};
use crate::model::IdPage;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How long a PIT stays open between two pages of an id scan.
pub const PIT_KEEP_ALIVE: &str = "2m";

#[derive(Deserialize)]
struct PitAnswer {
    id: String,
}

/// The body of a scan page's `_search`, serialised straight from borrowed parts (no `Value`
/// tree a page): `size`, `_source`, `sort`, `pit`, `track_total_hits`, then `slice` and
/// `search_after`.
#[derive(Serialize)]
struct PageRequest<'a> {
    size: usize,
    #[serde(rename = "_source")]
    source: SourceFilter,
    sort: [ShardDocAsc; 1],
    pit: PitRef<'a>,
    track_total_hits: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    slice: Option<SliceRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search_after: Option<&'a RawValue>,
}

/// `["id","_timestamp"]`, or `false` for no `_source` at all.
#[derive(Serialize)]
#[serde(untagged)]
enum SourceFilter {
    Fields([&'static str; 2]),
    Off(bool),
}

#[derive(Serialize)]
struct ShardDocAsc {
    #[serde(rename = "_shard_doc")]
    order: &'static str,
}

#[derive(Serialize)]
struct PitRef<'a> {
    id: &'a str,
    keep_alive: &'static str,
}

/// `{"id": n, "max": m}`: slice `n` of `m`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
struct SliceRef {
    id: usize,
    max: usize,
}

impl<'a> PageRequest<'a> {
    fn new(
        page_size: usize,
        with_source: bool,
        pit: &'a str,
        slice: Option<SliceRef>,
        search_after: Option<&'a RawValue>,
    ) -> Self {
        Self {
            size: page_size,
            source: if with_source {
                SourceFilter::Fields(["id", "_timestamp"])
            } else {
                SourceFilter::Off(false)
            },
            sort: [ShardDocAsc { order: "asc" }],
            pit: PitRef {
                id: pit,
                keep_alive: PIT_KEEP_ALIVE,
            },
            track_total_hits: false,
            slice,
            search_after,
        }
    }
}

/// Where one slice is.
struct SliceCursor {
    /// `None` for an unsliced scan.
    slice: Option<SliceRef>,
    /// The slice's last page's last `sort` values, as the cluster wrote them.
    search_after: Option<Box<RawValue>>,
    /// Whether a request for its next page is on the wire.
    asked: bool,
    done: bool,
}

/// A page request on the wire: which slice asked, the PIT id it named, and the answer.
type PageFuture = Pin<Box<dyn Future<Output = (usize, String, Result<ScanPage>)> + Send>>;

/// An id scan over one index (see the module docs), `_source` limited to `id` and
/// `_timestamp` (or none at all, for a scan of `_id`s). The PIT is closed when every slice
/// has read its last page, or on [`PitScan::close_pit`]; a scan dropped early leaves it to
/// expire after [`PIT_KEEP_ALIVE`]. Pages come in the order they arrive, not in `_shard_doc`
/// order across slices.
pub struct PitScan {
    transport: Arc<Transport>,
    index: String,
    /// The newest PIT id an answer gave (ids may change between answers).
    pit: Option<String>,
    slices: Vec<SliceCursor>,
    in_flight: FuturesUnordered<PageFuture>,
    page_size: usize,
    /// Whether pages read `id` and `_timestamp` from `_source`.
    with_source: bool,
    done: bool,
}

impl std::fmt::Debug for PitScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PitScan")
            .field("index", &self.index)
            .field("slices", &self.slices.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// ES refuses more slices than `index.max_slices_per_scroll` (1024 by default); far fewer
/// make sense for one sync.
const MAX_SLICES: usize = 64;

impl PitScan {
    /// Opens a PIT on `index` (`POST /{index}/_pit`); a missing index scans as empty. `slices`
    /// is clamped to 1..=64; 1 reads without `slice`.
    pub(super) async fn open(
        transport: Arc<Transport>,
        index: &str,
        page_size: usize,
        with_source: bool,
        slices: usize,
    ) -> Result<Self> {
        let url = path(&[index, "_pit"]);
        let params = [("keep_alive", PIT_KEEP_ALIVE.to_string())];
        let opened = transport
            .request::<PitAnswer>(Method::POST, &url, &params, None)
            .await;
        let pit = match opened {
            Ok(answer) => Some(answer.id),
            Err(e) if e.kind() == Some("index_not_found_exception") => None,
            Err(e) => return Err(e),
        };
        let max = slices.clamp(1, MAX_SLICES);
        let slices = (0..max)
            .map(|id| SliceCursor {
                slice: (max > 1).then_some(SliceRef { id, max }),
                search_after: None,
                asked: false,
                done: false,
            })
            .collect();
        Ok(Self {
            transport,
            index: index.to_string(),
            done: pit.is_none(),
            pit,
            slices,
            in_flight: FuturesUnordered::new(),
            page_size: page_size.max(1),
            with_source,
        })
    }

    /// The request for slice `at`'s next page, ready to be polled.
    fn ask(&self, at: usize, pit: &str) -> Result<PageFuture> {
        let cursor = &self.slices[at];
        let request = PageRequest::new(
            self.page_size,
            self.with_source,
            pit,
            cursor.slice,
            cursor.search_after.as_deref(),
        );
        let encoded: Body = Transport::encode("/_search", &request)?;
        let filter = if self.with_source {
            SCAN_FILTER_PATH
        } else {
            BARE_SCAN_FILTER_PATH
        };
        let transport = Arc::clone(&self.transport);
        let page_size = self.page_size;
        let sent = pit.to_string();
        Ok(Box::pin(async move {
            // A page missing a failed shard's hits would end the scan early without a word
            // (the lean answer has no `_shards`): better an error than a partial deletion
            // pass.
            let params = [
                ("filter_path", filter.to_string()),
                ("allow_partial_search_results", "false".to_string()),
            ];
            // Parsed inside the transport's retry loop: a page is an idempotent read, so a
            // garbled or cut answer is asked for again instead of failing the whole scan.
            let page = transport
                .send_with(
                    Method::POST,
                    "/_search",
                    &params,
                    Some(encoded),
                    |response| read_scan_page(&response.body, page_size),
                )
                .await;
            (at, sent, page)
        }))
    }

    /// The next page of ids, or `None` when the scan is done. Puts every unfinished slice's
    /// next request on the wire first. After an error the scan is done; [`Self::close_pit`]
    /// still closes the PIT. Call it again promptly: requests on the wire are read only in
    /// here, and the transport's request timeout runs meanwhile.
    pub async fn next(&mut self) -> Result<Option<IdPage>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(pit) = self.pit.as_deref() else {
                return Ok(None);
            };
            let asks: Vec<(usize, Result<PageFuture>)> = (0..self.slices.len())
                .filter(|&at| !self.slices[at].done && !self.slices[at].asked)
                .map(|at| (at, self.ask(at, pit)))
                .collect();
            for (at, request) in asks {
                match request {
                    Ok(request) => {
                        self.slices[at].asked = true;
                        self.in_flight.push(request);
                    }
                    Err(e) => return Err(self.fail(e)),
                }
            }
            let Some((at, sent, answer)) = self.in_flight.next().await else {
                // Every slice read its last page: every id is in. A PIT that cannot be
                // closed now expires on its keep-alive; that is no reason to fail the scan.
                if let Err(e) = self.close_pit().await {
                    tracing::warn!(index = %self.index, error = %e, "closing the id scan's PIT failed");
                }
                return Ok(None);
            };
            let ScanPage {
                pit: new_pit,
                docs,
                last_sort,
            } = match answer {
                Ok(page) => page,
                Err(e) => return Err(self.fail(e)),
            };
            // An answer names the id its request named unless the cluster gave the PIT a new
            // one. Only a new one is taken: a slice's answer to a request sent before
            // another slice's answer brought a new id would otherwise put the old one back.
            if let Some(new_pit) = new_pit.filter(|id| *id != sent) {
                self.pit = Some(new_pit);
            }
            let cursor = &mut self.slices[at];
            cursor.asked = false;
            if docs.len() < self.page_size {
                cursor.done = true;
            }
            if let Some(sort) = last_sort {
                cursor.search_after = Some(sort);
            }
            if !docs.is_empty() {
                return Ok(Some(docs));
            }
        }
    }

    /// Ends the scan after an error: the other slices' requests are dropped (their answers
    /// would be read by nobody).
    fn fail(&mut self, e: super::Error) -> super::Error {
        self.done = true;
        self.in_flight = FuturesUnordered::new();
        e
    }

    /// Closes the PIT (`DELETE /_pit`); safe to call more than once. A PIT that already
    /// expired is not an error. Requests still on the wire are dropped first.
    pub async fn close_pit(&mut self) -> Result<()> {
        self.done = true;
        self.in_flight = FuturesUnordered::new();
        let Some(pit) = self.pit.take() else {
            return Ok(());
        };
        let body = Transport::encode("/_pit", &json!({ "id": pit }))?;
        match self
            .transport
            .send(Method::DELETE, "/_pit", &[], Some(body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_request_is_the_json_it_always_was() {
        let after = RawValue::from_string("[41,7]".to_string()).unwrap();
        let slice = SliceRef { id: 1, max: 2 };
        for (with_source, source) in [(true, json!(["id", "_timestamp"])), (false, json!(false))] {
            for search_after in [None, Some(after.as_ref())] {
                for sliced in [None, Some(slice)] {
                    let mut expected = json!({
                        "size": 1000,
                        "_source": source,
                        "sort": [{ "_shard_doc": "asc" }],
                        "pit": { "id": "p\"it", "keep_alive": PIT_KEEP_ALIVE },
                        "track_total_hits": false,
                    });
                    if sliced.is_some() {
                        expected["slice"] = json!({ "id": 1, "max": 2 });
                    }
                    if search_after.is_some() {
                        expected["search_after"] = json!([41, 7]);
                    }
                    let request =
                        PageRequest::new(1000, with_source, "p\"it", sliced, search_after);
                    assert_eq!(
                        serde_json::to_string(&request).unwrap(),
                        serde_json::to_string(&expected).unwrap()
                    );
                }
            }
        }
    }
}
