//! `NodePool`: the nodes a transport talks to and their health, modelled on
//! elastic-transport-python's `NodePool`. Round-robin over live nodes; a failing node is dead
//! for `min(base × 2^(failures−1), max)`; a dead node whose time is up counts as alive again
//! (lazy resurrection); when none is alive the one due soonest is forced back. Pure state:
//! the clock is passed in, nothing here does I/O or sleeps.

use std::time::{Duration, Instant};
use url::Url;

/// A node's health as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub url: String,
    pub alive: bool,
    /// Consecutive failures; reset by a success.
    pub failures: u32,
    /// When a dead node may be tried again (`None` when alive).
    pub dead_until: Option<Instant>,
}

impl NodeState {
    /// How long until a dead node is tried again, measured from `now`.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.dead_until.map(|t| t.saturating_duration_since(now))
    }
}

#[derive(Debug, Clone)]
struct Node {
    url: Url,
    failures: u32,
    dead_until: Option<Instant>,
}

impl Node {
    fn new(url: Url) -> Self {
        Self {
            url,
            failures: 0,
            dead_until: None,
        }
    }

    fn is_alive(&self, now: Instant) -> bool {
        self.dead_until.is_none_or(|until| until <= now)
    }
}

#[derive(Debug)]
pub struct NodePool {
    nodes: Vec<Node>,
    next: usize,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl NodePool {
    pub fn new(urls: Vec<Url>, backoff_base: Duration, backoff_max: Duration) -> Self {
        let mut pool = Self {
            nodes: Vec::new(),
            next: 0,
            backoff_base,
            backoff_max,
        };
        pool.replace(urls);
        pool
    }

    /// The next node to use: round-robin over live nodes, else the dead node due soonest
    /// (forced back to life). `None` only for an empty pool.
    pub fn select(&mut self, now: Instant) -> Option<Url> {
        let n = self.nodes.len();
        for offset in 0..n {
            let idx = (self.next + offset) % n;
            if self.nodes[idx].is_alive(now) {
                self.next = (idx + 1) % n;
                return Some(self.nodes[idx].url.clone());
            }
        }
        let soonest = self
            .nodes
            .iter()
            .enumerate()
            .min_by_key(|(_, node)| node.dead_until)?
            .0;
        let node = &mut self.nodes[soonest];
        tracing::debug!(node = %node.url, "no live Elasticsearch node; forcing one back");
        node.dead_until = None;
        self.next = (soonest + 1) % n;
        Some(node.url.clone())
    }

    /// How long until some node may be tried again when every node is dead; `None` when one
    /// is alive (or the pool is empty): a retry waits this long rather than forcing a dead
    /// node back at once.
    pub fn wait_for_live(&self, now: Instant) -> Option<Duration> {
        if self.nodes.is_empty() || self.nodes.iter().any(|node| node.is_alive(now)) {
            return None;
        }
        self.nodes
            .iter()
            .filter_map(|node| node.dead_until)
            .min()
            .map(|until| until.saturating_duration_since(now))
    }

    /// Records a failure and returns how long the node is now dead for.
    pub fn mark_dead(&mut self, url: &Url, now: Instant) -> Option<Duration> {
        let (base, max) = (self.backoff_base, self.backoff_max);
        let node = self.nodes.iter_mut().find(|node| &node.url == url)?;
        node.failures = node.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(node.failures - 1);
        let backoff = base.saturating_mul(factor).min(max);
        // A clock near its end cannot overflow: the node then stays dead "forever" (a year).
        node.dead_until = now
            .checked_add(backoff)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)));
        Some(backoff)
    }

    /// Records a success: the node is alive and its failure count is reset.
    pub fn mark_live(&mut self, url: &Url) {
        if let Some(node) = self.nodes.iter_mut().find(|node| &node.url == url) {
            node.failures = 0;
            node.dead_until = None;
        }
    }

    /// Replaces the node list (after sniffing), keeping the state of nodes already known so
    /// a sniff does not revive a node that is still failing. Duplicates are dropped.
    pub fn replace(&mut self, urls: Vec<Url>) {
        let mut nodes: Vec<Node> = Vec::with_capacity(urls.len());
        for url in urls {
            if nodes.iter().any(|node| node.url == url) {
                continue;
            }
            let known = self.nodes.iter().find(|node| node.url == url).cloned();
            nodes.push(known.unwrap_or_else(|| Node::new(url)));
        }
        self.nodes = nodes;
        self.next = 0;
    }

    /// Every node, live ones first: the order in which a sniff tries them.
    pub fn sniff_order(&self, now: Instant) -> Vec<Url> {
        let (live, dead): (Vec<&Node>, Vec<&Node>) =
            self.nodes.iter().partition(|node| node.is_alive(now));
        live.into_iter()
            .chain(dead)
            .map(|node| node.url.clone())
            .collect()
    }

    pub fn snapshot(&self, now: Instant) -> Vec<NodeState> {
        self.nodes
            .iter()
            .map(|node| {
                let alive = node.is_alive(now);
                NodeState {
                    url: display_url(&node.url),
                    alive,
                    failures: node.failures,
                    dead_until: if alive { None } else { node.dead_until },
                }
            })
            .collect()
    }
}

/// A node URL as shown to people: no trailing slash.
pub fn display_url(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: u16) -> Vec<Url> {
        (0..n)
            .map(|i| Url::parse(&format!("http://127.0.0.1:{}", 9200 + i)).unwrap())
            .collect()
    }

    fn pool(n: u16) -> NodePool {
        NodePool::new(urls(n), Duration::from_secs(1), Duration::from_secs(30))
    }

    #[test]
    fn round_robin_skips_dead_nodes() {
        let now = Instant::now();
        let mut p = pool(3);
        let all = urls(3);
        let picked: Vec<_> = (0..6).map(|_| p.select(now).unwrap()).collect();
        assert_eq!(picked, [&all[..], &all[..]].concat());
        p.mark_dead(&all[1], now);
        let picked: Vec<_> = (0..4).map(|_| p.select(now).unwrap()).collect();
        assert!(!picked.contains(&all[1]));
        assert_eq!(picked.len(), 4);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let now = Instant::now();
        let mut p = pool(1);
        let u = urls(1).remove(0);
        let backoffs: Vec<_> = (0..7)
            .map(|_| p.mark_dead(&u, now).unwrap().as_secs())
            .collect();
        assert_eq!(backoffs, [1, 2, 4, 8, 16, 30, 30]);
        for _ in 0..100 {
            p.mark_dead(&u, now);
        }
        assert_eq!(p.snapshot(now)[0].failures, 107);
        p.mark_live(&u);
        let state = &p.snapshot(now)[0];
        assert!(state.alive);
        assert_eq!(state.failures, 0);
    }

    #[test]
    fn dead_node_returns_when_its_time_is_up() {
        let now = Instant::now();
        let mut p = pool(2);
        let all = urls(2);
        p.mark_dead(&all[0], now);
        assert!(!p.snapshot(now)[0].alive);
        assert_eq!(
            p.snapshot(now)[0].retry_in(now),
            Some(Duration::from_secs(1))
        );
        let later = now + Duration::from_millis(1500);
        assert!(p.snapshot(later)[0].alive);
        let picked: Vec<_> = (0..2).map(|_| p.select(later).unwrap()).collect();
        assert!(picked.contains(&all[0]));
    }

    #[test]
    fn forces_the_soonest_dead_node_back_when_none_is_alive() {
        let now = Instant::now();
        let mut p = pool(3);
        let all = urls(3);
        p.mark_dead(&all[0], now);
        p.mark_dead(&all[0], now); // dead for 2 s
        p.mark_dead(&all[1], now); // dead for 1 s: the soonest
        p.mark_dead(&all[2], now);
        p.mark_dead(&all[2], now);
        assert_eq!(p.select(now), Some(all[1].clone()));
        assert_eq!(
            p.snapshot(now)[1].failures,
            1,
            "forcing keeps the failure count"
        );
    }

    #[test]
    fn replace_keeps_known_state_and_drops_duplicates() {
        let now = Instant::now();
        let mut p = pool(2);
        let all = urls(3);
        p.mark_dead(&all[1], now);
        p.replace(vec![all[1].clone(), all[2].clone(), all[2].clone()]);
        let snap = p.snapshot(now);
        assert_eq!(snap.len(), 2);
        assert!(!snap[0].alive);
        assert!(snap[1].alive);
        assert_eq!(p.sniff_order(now), vec![all[2].clone(), all[1].clone()]);
    }

    #[test]
    fn a_retry_waits_for_the_soonest_dead_node() {
        let now = Instant::now();
        let mut p = pool(2);
        let all = urls(2);
        assert_eq!(p.wait_for_live(now), None);
        p.mark_dead(&all[0], now);
        assert_eq!(p.wait_for_live(now), None, "one node is still alive");
        p.mark_dead(&all[1], now);
        p.mark_dead(&all[1], now);
        assert_eq!(p.wait_for_live(now), Some(Duration::from_secs(1)));
        let later = now + Duration::from_millis(400);
        assert_eq!(p.wait_for_live(later), Some(Duration::from_millis(600)));
        assert_eq!(p.wait_for_live(now + Duration::from_secs(1)), None);
        assert_eq!(pool(0).wait_for_live(now), None);
    }

    #[test]
    fn empty_pool_selects_nothing() {
        let mut p = pool(0);
        assert!(p.snapshot(Instant::now()).is_empty());
        assert_eq!(p.select(Instant::now()), None);
    }
}
