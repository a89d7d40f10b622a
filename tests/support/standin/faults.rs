//! Runtime fault injection for the Elasticsearch nodes: the cheap `Faults` handle tests hold, the
//! `FaultState` it edits, and the per-request `Plan` a node draws from that state. Kibana is never
//! faulted. Every decision is deterministic (counters, queues), never random, so tests can count.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::{Shared, lock};

/// How a node that is "down" behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeDownMode {
    /// The port stops listening: connections are refused. `node_up` binds the same port again.
    Refuse,
    /// The port accepts connections, reads a little, then closes them without answering.
    Drop,
}

#[derive(Default)]
pub(crate) struct FaultState {
    item_429_ratio: f64,
    item_429_acc: f64,
    fail_any: VecDeque<u16>,
    fail_node: HashMap<usize, VecDeque<u16>>,
    latency: Duration,
    truncate_next: usize,
    malformed_next: usize,
    read_fault_ratio: f64,
    read_fault_acc: f64,
    read_faults: u64,
    hang_bulk: bool,
    hang_search: bool,
    pub reject_field: Option<String>,
    race_guarded_updates: usize,
    fail_pit_search: Option<u16>,
    /// (every, answers since the last new id)
    rotate_pit_ids: Option<(usize, usize)>,
}

/// What happens to one request, decided when it arrives.
pub(crate) struct Plan {
    pub latency: Duration,
    /// Answer with this status and an ES error body; the request is not executed.
    pub fail: Option<u16>,
    /// Execute, then cut the response body short.
    pub truncate: bool,
    /// Do not execute; answer 200 with a body that is not JSON.
    pub malformed: bool,
    /// Execute, then send only the first half of the answer, with a `Content-Length` that
    /// matches it: a complete HTTP answer whose JSON ends early (a proxy's cut buffer).
    pub cut_json: bool,
}

impl FaultState {
    /// Whether `_bulk` requests are held without an answer (see [`Faults::hang_bulk`]).
    pub fn bulk_hangs(&self) -> bool {
        self.hang_bulk
    }

    /// Whether `_search` requests are held without an answer (see [`Faults::hang_search`]).
    pub fn search_hangs(&self) -> bool {
        self.hang_search
    }

    /// The status point-in-time searches answer with (see [`Faults::fail_pit_search`]).
    pub fn pit_search_fails(&self) -> Option<u16> {
        self.fail_pit_search
    }

    /// Whether this point-in-time search's answer gives its PIT a new id (see
    /// [`Faults::rotate_pit_ids_every`]); counts the answer.
    pub fn rotates_pit_id(&mut self) -> bool {
        let Some((every, since)) = &mut self.rotate_pit_ids else {
            return false;
        };
        *since += 1;
        if *since >= *every {
            *since = 0;
            return true;
        }
        false
    }
}

impl FaultState {
    /// The plan for one request; `read` says whether it only reads (GET, HEAD, `_search`,
    /// `_count`, PIT open and close), which the read-fault ratio applies to.
    pub fn plan(&mut self, node: usize, read: bool) -> Plan {
        let fail = self
            .fail_node
            .get_mut(&node)
            .and_then(VecDeque::pop_front)
            .or_else(|| self.fail_any.pop_front());
        let mut malformed = fail.is_none() && take_one(&mut self.malformed_next);
        let truncate = fail.is_none() && !malformed && take_one(&mut self.truncate_next);
        let mut cut_json = false;
        if fail.is_none() && !malformed && !truncate && read && self.read_fault() {
            // Alternate the two ways an answer arrives unreadable.
            self.read_faults += 1;
            if self.read_faults % 2 == 1 {
                cut_json = true;
            } else {
                malformed = true;
            }
        }
        Plan {
            latency: self.latency,
            fail,
            truncate,
            malformed,
            cut_json,
        }
    }

    /// Whether the next read gets an unreadable answer, spread evenly like `reject_429`.
    fn read_fault(&mut self) -> bool {
        if self.read_fault_ratio <= 0.0 {
            return false;
        }
        self.read_fault_acc += self.read_fault_ratio;
        if self.read_fault_acc >= 1.0 - 1e-9 {
            self.read_fault_acc -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the next `_bulk` item gets a 429. An accumulator spreads the rejections evenly
    /// (ratio 0.25 rejects every 4th item), so the outcome depends only on the item count.
    pub fn reject_429(&mut self) -> bool {
        if self.item_429_ratio <= 0.0 {
            return false;
        }
        self.item_429_acc += self.item_429_ratio;
        if self.item_429_acc >= 1.0 - 1e-9 {
            self.item_429_acc -= 1.0;
            true
        } else {
            false
        }
    }
}

impl FaultState {
    /// Whether this guarded (`if_seq_no`) update loses a race to another writer.
    pub fn race_guarded_update(&mut self) -> bool {
        take_one(&mut self.race_guarded_updates)
    }
}

fn take_one(n: &mut usize) -> bool {
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

/// A handle on the running stand-in's faults. Cheap to clone; every call takes effect for the
/// requests that arrive after it returns.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Takes node `i` down. Returns once the listener is closed (Refuse) or switched (Drop), and
    /// every open connection to that node has been cut.
    pub fn node_down(&self, i: usize, mode: NodeDownMode) {
        self.shared.node_command(i, Some(mode));
    }

    /// Brings node `i` back on the same port.
    pub fn node_up(&self, i: usize) {
        self.shared.node_command(i, None);
    }

    /// The fraction of `_bulk` items (0.0..=1.0) that get a per-item 429
    /// `es_rejected_execution_exception`. 0.0 turns it off.
    pub fn item_429_ratio(&self, ratio: f64) {
        let mut f = lock(&self.shared.faults);
        f.item_429_ratio = ratio.clamp(0.0, 1.0);
        f.item_429_acc = 0.0;
    }

    /// The next requests to `node` (or to any node when `None`) answer with these statuses, in
    /// order, with an ES error body. Replaces any queue already set for that target.
    pub fn fail_requests(&self, node: Option<usize>, statuses: Vec<u16>) {
        let mut f = lock(&self.shared.faults);
        match node {
            Some(n) => {
                f.fail_node.insert(n, statuses.into());
            }
            None => f.fail_any = statuses.into(),
        }
    }

    /// Delay added before every Elasticsearch response.
    pub fn latency(&self, d: Duration) {
        lock(&self.shared.faults).latency = d;
    }

    /// The next `n` responses are executed but their body is cut short (the connection closes
    /// before `Content-Length` bytes were sent).
    pub fn truncate_next(&self, n: usize) {
        lock(&self.shared.faults).truncate_next = n;
    }

    /// The next `n` requests are not executed and get a 200 whose body is not JSON.
    pub fn malformed_next(&self, n: usize) {
        lock(&self.shared.faults).malformed_next = n;
    }

    /// The fraction of reads (0.0..=1.0: GET, HEAD, `_search`, `_count`, PIT open and close)
    /// whose 200 answer arrives unreadable: alternately cut in half (a complete HTTP answer
    /// whose JSON ends early) and an HTML page instead of JSON. Writes are never touched.
    /// 0.0 turns it off.
    pub fn read_fault_ratio(&self, ratio: f64) {
        let mut f = lock(&self.shared.faults);
        f.read_fault_ratio = ratio.clamp(0.0, 1.0);
        f.read_fault_acc = 0.0;
    }

    /// While on, `_bulk` requests get no answer at all: the node holds them (as an overloaded
    /// or wedged node does) until this is turned off again or ten minutes pass. Every other
    /// request is served as usual.
    pub fn hang_bulk(&self, on: bool) {
        lock(&self.shared.faults).hang_bulk = on;
    }

    /// Like [`Faults::hang_bulk`], for `_search` requests (id scan pages among them).
    pub fn hang_search(&self, on: bool) {
        lock(&self.shared.faults).hang_search = on;
    }

    /// While `Some`, every point-in-time search (`POST /_search`, which names no index: the
    /// pages of an id scan) answers this status with an ES error body, as a cluster whose
    /// shards fail does, however often it is retried. Other searches are served as usual.
    pub fn fail_pit_search(&self, status: Option<u16>) {
        lock(&self.shared.faults).fail_pit_search = status;
    }

    /// Every `n`th point-in-time search answer gives its PIT a new id, as ES may (its docs:
    /// always use the most recently received id). Old ids stay valid; every other answer
    /// names the id its request named. `None` turns it off.
    pub fn rotate_pit_ids_every(&self, n: Option<usize>) {
        lock(&self.shared.faults).rotate_pit_ids = n.map(|n| (n.max(1), 0));
    }

    /// How many reads got an unreadable answer so far.
    pub fn read_faults(&self) -> u64 {
        lock(&self.shared.faults).read_faults
    }

    /// Documents (in `_bulk` and the index/update APIs) with this top-level field get a 400
    /// `document_parsing_exception`, like a mapping conflict.
    pub fn reject_field(&self, name: Option<String>) {
        lock(&self.shared.faults).reject_field = name;
    }

    /// The next `n` document updates guarded by `if_seq_no` lose a race: another writer
    /// changes the document just before each is applied, so it gets the 409
    /// `version_conflict_engine_exception` a real concurrent write would cause.
    pub fn race_guarded_updates(&self, n: usize) {
        lock(&self.shared.faults).race_guarded_updates = n;
    }

    /// All faults off, all nodes up.
    pub fn clear(&self) {
        *lock(&self.shared.faults) = FaultState::default();
        for i in 0..self.shared.nodes.len() {
            self.node_up(i);
        }
    }
}
