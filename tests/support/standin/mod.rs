//! An in-process stand-in for an Elasticsearch cluster (N nodes sharing one state) and a Kibana
//! server, for tests and benchmarks. It is an independent oracle: it follows the official API
//! definitions (copied under `tests/fixtures/`) and `PROTOCOL.md`, and never uses the `syncdeck`
//! crate.
//!
//! This module owns the lifecycle: a background thread runs a private multi-thread tokio runtime
//! (so the stand-in keeps serving whatever runtime flavour the test uses, and can be dropped from
//! sync or async code), one accept loop per node, the request log, and the test hooks. The
//! Elasticsearch face is in `es`, Kibana's in `kibana`, faults in `faults`.

mod answer;
mod bulk;
mod connectors;
mod cron;
mod docs;
mod es;
mod faults;
mod filter_path;
mod http;
mod kibana;
mod query;
mod search;
mod state;
mod sync_jobs;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc as tmpsc, oneshot, watch};

pub use faults::{Faults, NodeDownMode};

use faults::FaultState;
use state::{CONNECTORS_INDEX, Cluster, SYNC_JOBS_INDEX};

/// The node index Kibana's requests are logged under.
pub const KIBANA_NODE: usize = usize::MAX;

/// How many requests the log keeps (the oldest are dropped first).
const LOG_CAPACITY: usize = 10_000;

#[derive(Clone, Debug)]
pub struct StandInOptions {
    /// Elasticsearch nodes; all share one cluster state. At least 1.
    pub nodes: usize,
    pub auth: StandInAuth,
    /// Whether to start the Kibana server.
    pub kibana: bool,
    /// The version every node and Kibana report.
    pub version: String,
    /// Whether searches over a point in time take their shortcuts (pages written straight
    /// from the snapshot or its view). Only tests that hold the shortcuts to the general
    /// path's answers turn them off.
    pub fast_paths: bool,
}

impl Default for StandInOptions {
    fn default() -> Self {
        StandInOptions {
            nodes: 1,
            auth: StandInAuth::None,
            kibana: true,
            version: "9.1.0".to_owned(),
            fast_paths: true,
        }
    }
}

/// The credentials every request (ES and Kibana) must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StandInAuth {
    None,
    /// The base64 `id:key` token expected as `Authorization: ApiKey <token>`.
    ApiKey(String),
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

/// One request as received, before any fault, auth or routing decision.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The node index, or `KIBANA_NODE` (`usize::MAX`) for Kibana.
    pub node: usize,
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    /// The body length on the wire (before gunzip).
    pub body_len: usize,
}

impl RequestRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct NodeInfo {
    pub id: String,
    pub name: String,
    pub port: u16,
}

/// Commands to a node's accept loop; the sender answers once the change is in effect.
enum NodeCmd {
    Down(NodeDownMode, mpsc::Sender<Result<(), String>>),
    Up(mpsc::Sender<Result<(), String>>),
}

/// What every connection task sees.
pub(crate) struct Shared {
    pub opts: StandInOptions,
    pub cluster: Mutex<Cluster>,
    pub faults: Mutex<FaultState>,
    log: Mutex<VecDeque<RequestRecord>>,
    pub nodes: Vec<NodeInfo>,
    /// Which nodes are down right now (read by `_nodes` to publish only live nodes).
    pub down: Mutex<Vec<Option<NodeDownMode>>>,
    node_cmds: Vec<tmpsc::UnboundedSender<NodeCmd>>,
    pub cluster_uuid: String,
    pub kibana_uuid: String,
}

/// Locks a mutex, shrugging off poisoning: a panicking handler must not take the stand-in down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn record(&self, rec: RequestRecord) {
        let mut log = lock(&self.log);
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(rec);
    }

    pub fn is_up(&self, node: usize) -> bool {
        lock(&self.down).get(node).is_some_and(Option::is_none)
    }

    fn node_command(&self, i: usize, down: Option<NodeDownMode>) {
        let Some(tx) = self.node_cmds.get(i) else {
            panic!("stand-in has {} nodes, no node {i}", self.nodes.len());
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        let cmd = match down {
            Some(mode) => {
                // Unpublish first, so `_nodes` never advertises a node that is going away.
                lock(&self.down)[i] = down;
                NodeCmd::Down(mode, ack_tx)
            }
            None => NodeCmd::Up(ack_tx),
        };
        if tx.send(cmd).is_err() {
            return; // shutting down
        }
        match ack_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("stand-in node {i}: {e}"),
            Err(_) => panic!("stand-in node {i} did not acknowledge the command"),
        }
        if down.is_none() {
            lock(&self.down)[i] = None;
        }
    }
}

/// A running stand-in. Dropping it stops every server and frees the ports.
pub struct StandIn {
    shared: Arc<Shared>,
    kibana_port: Option<u16>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Ready {
    shared: Arc<Shared>,
    kibana_port: Option<u16>,
}

impl StandIn {
    /// Starts the stand-in from async code (its servers run on their own runtime thread).
    pub async fn start(opts: StandInOptions) -> StandIn {
        let (tx, rx) = oneshot::channel();
        let (stop, thread) = launch(
            opts,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let ready = rx.await.expect("stand-in failed to start");
        StandIn::from_ready(ready, stop, thread)
    }

    /// Starts the stand-in from sync code, e.g. a plain `#[test]` that runs the binary.
    pub fn start_blocking(opts: StandInOptions) -> StandIn {
        let (tx, rx) = mpsc::channel();
        let (stop, thread) = launch(
            opts,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let ready = rx.recv().expect("stand-in failed to start");
        StandIn::from_ready(ready, stop, thread)
    }

    fn from_ready(
        ready: Ready,
        stop: oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    ) -> StandIn {
        StandIn {
            shared: ready.shared,
            kibana_port: ready.kibana_port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, one per node, in node order.
    pub fn es_urls(&self) -> Vec<String> {
        self.shared
            .nodes
            .iter()
            .map(|n| format!("http://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Panics when the stand-in was started with `kibana: false`.
    pub fn kibana_url(&self) -> String {
        let port = self
            .kibana_port
            .expect("the stand-in was started with kibana: false");
        format!("http://127.0.0.1:{port}")
    }

    /// The `cluster_uuid` of `GET /`: random per stand-in, so two stand-ins are two clusters.
    pub fn cluster_uuid(&self) -> String {
        self.shared.cluster_uuid.clone()
    }

    /// The `cluster_name` of `GET /`.
    pub fn cluster_name(&self) -> String {
        es::CLUSTER_NAME.to_string()
    }

    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Every PIT id a search or a close named so far, in arrival order, and every new id an
    /// answer gave: `("search" | "close" | "new", id)`.
    pub fn pit_uses(&self) -> Vec<(&'static str, String)> {
        lock(&self.shared.cluster).pit_uses.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// `(_id, _source)` of every document in `index`, in id order; empty when the index is missing.
    pub fn index_docs(&self, index: &str) -> Vec<(String, Value)> {
        let cluster = lock(&self.shared.cluster);
        cluster
            .indices
            .get(index)
            .map(|i| {
                i.docs
                    .iter()
                    .map(|(id, d)| (id.to_string(), d.json()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of documents in `index` (0 when missing), without copying them.
    pub fn doc_count(&self, index: &str) -> usize {
        lock(&self.shared.cluster)
            .indices
            .get(index)
            .map_or(0, |i| i.docs.len())
    }

    /// Names of all indices, hidden ones included.
    pub fn indices(&self) -> Vec<String> {
        lock(&self.shared.cluster).indices.keys().cloned().collect()
    }

    /// Writes a document directly (creating the index if needed), bumping its `_seq_no`.
    pub fn put_doc(&self, index: &str, id: &str, source: Value) {
        lock(&self.shared.cluster).put_json(index, id, &source);
    }

    /// Removes a document directly; returns whether it existed.
    pub fn delete_doc(&self, index: &str, id: &str) -> bool {
        let mut cluster = lock(&self.shared.cluster);
        cluster
            .indices
            .get_mut(index)
            .is_some_and(|i| i.remove(id).result == "deleted")
    }

    /// The stored connector document plus `id`, soft-deleted ones included.
    pub fn connector(&self, id: &str) -> Option<Value> {
        self.doc_with_id(CONNECTORS_INDEX, id)
    }

    /// The stored sync job document plus `id`.
    pub fn sync_job(&self, id: &str) -> Option<Value> {
        self.doc_with_id(SYNC_JOBS_INDEX, id)
    }

    fn doc_with_id(&self, index: &str, id: &str) -> Option<Value> {
        let cluster = lock(&self.shared.cluster);
        let mut m = cluster.doc(index, id)?.object();
        m.insert("id".into(), Value::String(id.to_owned()));
        Some(Value::Object(m))
    }

    /// Flags a Kibana connector (in any space) as missing secrets and/or deprecated. Returns
    /// whether a connector with that id was found.
    pub fn kibana_set_flags(&self, id: &str, missing_secrets: bool, deprecated: bool) -> bool {
        lock(&self.shared.cluster)
            .kibana
            .set_flags(id, missing_secrets, deprecated)
    }

    /// Kibana connectors of a space (`"default"` for the unprefixed API), as the API shows them.
    pub fn kibana_connectors(&self, space: &str) -> Vec<Value> {
        lock(&self.shared.cluster).kibana.list(space)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Notify = Box<dyn FnOnce(Ready) + Send>;

fn launch(
    opts: StandInOptions,
    notify: Notify,
) -> (oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let thread = std::thread::Builder::new()
        .name("standin".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("standin-worker")
                .enable_all()
                .build()
                .expect("stand-in runtime");
            rt.block_on(async move {
                let ready = boot(opts).await;
                notify(ready);
                let _ = stop_rx.await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        })
        .expect("stand-in thread");
    (stop_tx, thread)
}

async fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // SO_REUSEADDR lets `node_up` re-bind the port while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

async fn boot(mut opts: StandInOptions) -> Ready {
    opts.nodes = opts.nodes.max(1);
    let mut listeners = Vec::new();
    let mut nodes = Vec::new();
    let mut cmd_txs = Vec::new();
    let mut cmd_rxs = Vec::new();
    for i in 0..opts.nodes {
        let l = bind(0).await.expect("bind stand-in node");
        let port = l.local_addr().expect("local addr").port();
        nodes.push(NodeInfo {
            id: http::new_id(),
            name: format!("standin-{i}"),
            port,
        });
        listeners.push(l);
        let (tx, rx) = tmpsc::unbounded_channel();
        cmd_txs.push(tx);
        cmd_rxs.push(rx);
    }
    let kibana_listener = if opts.kibana {
        Some(bind(0).await.expect("bind stand-in kibana"))
    } else {
        None
    };
    let kibana_port = kibana_listener
        .as_ref()
        .map(|l| l.local_addr().expect("local addr").port());
    let shared = Arc::new(Shared {
        down: Mutex::new(vec![None; opts.nodes]),
        opts,
        cluster: Mutex::new(Cluster::default()),
        faults: Mutex::new(FaultState::default()),
        log: Mutex::new(VecDeque::new()),
        nodes,
        node_cmds: cmd_txs,
        cluster_uuid: http::new_cluster_uuid(),
        kibana_uuid: http::new_uuid(),
    });
    for (i, (l, rx)) in listeners.into_iter().zip(cmd_rxs).enumerate() {
        tokio::spawn(node_loop(shared.clone(), i, Some(l), rx));
    }
    if let Some(l) = kibana_listener {
        let (tx, rx) = tmpsc::unbounded_channel();
        let shared = shared.clone();
        // Kibana takes no commands; the task keeps the sender so `recv()` just waits.
        tokio::spawn(async move {
            let _keep = tx;
            node_loop(shared, KIBANA_NODE, Some(l), rx).await;
        });
    }
    Ready {
        shared,
        kibana_port,
    }
}

async fn accept(l: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// One node's accept loop. It also obeys up/down commands: `Refuse` drops the listener, `Drop`
/// keeps it but closes what it accepts; both cut every open connection (a `watch` generation
/// bump that each connection task listens to).
async fn node_loop(
    shared: Arc<Shared>,
    node: usize,
    mut listener: Option<TcpListener>,
    mut cmds: tmpsc::UnboundedReceiver<NodeCmd>,
) {
    let port = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(0, |a| a.port());
    let (kill_tx, _) = watch::channel(0u64);
    // Connection tasks are tracked so `node_down` acks only once every open connection is
    // really closed; acking on the signal alone let a pooled request slip through (flaky CI).
    let mut conns = tokio::task::JoinSet::new();
    let mut dropping = false;
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(NodeCmd::Down(mode, ack)) => {
                    kill_tx.send_modify(|g| *g += 1);
                    while conns.join_next().await.is_some() {}
                    match mode {
                        NodeDownMode::Refuse => listener = None,
                        NodeDownMode::Drop => dropping = true,
                    }
                    let _ = ack.send(Ok(()));
                }
                Some(NodeCmd::Up(ack)) => {
                    dropping = false;
                    let mut result = Ok(());
                    if listener.is_none() {
                        match rebind(port).await {
                            Ok(l) => listener = Some(l),
                            Err(e) => result = Err(format!("cannot re-bind port {port}: {e}")),
                        }
                    }
                    let _ = ack.send(result);
                }
            },
            accepted = accept(&listener) => {
                let Ok((stream, _)) = accepted else { continue };
                while conns.try_join_next().is_some() {}
                if dropping {
                    tokio::spawn(drop_connection(stream));
                    continue;
                }
                let mut kill = kill_tx.subscribe();
                let shared = shared.clone();
                conns.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(es::serve(shared, node, req).await) }
                    });
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = kill.changed() => {}
                    }
                });
            }
        }
    }
}

/// Re-binds a node's port for `node_up`, retrying briefly in case the kernel still holds it.
async fn rebind(port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match bind(port).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}

/// `NodeDownMode::Drop`: wait for the request to start arriving, then hang up without a word.
async fn drop_connection(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    drop(stream);
}
