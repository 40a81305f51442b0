//! Liveness of clustered nodes through the o2hb disk heartbeat.
//!
//! A clustered mount writes a constant into its slot (`VALID_CLUSTER` on the
//! seed's kernel, `1` on a stock one), so the slot map cannot tell a live
//! node from a dead one. The o2hb heartbeat can: every live node rewrites
//! its block every 2 s (`O2HB_REGION_TIMEOUT_MS`) with a new `hb_seq`, and
//! the cluster declares a node dead after `dead_threshold` (31 by default)
//! samples without change. [`Tracker`] watches the blocks the same way: a
//! block that changes during the window belongs to a live node, one that
//! does not change for the whole window to a dead (or stopped) one, and an
//! all-zero block to a node that never heartbeated on this volume.

use ocfs2_format::heartbeat::HbBlock;
use serde::Serialize;
use std::collections::BTreeMap;

/// o2hb's heartbeat period: one write per live node every 2 s.
pub const HB_PERIOD_S: u32 = 2;
/// o2hb's default dead threshold, in periods.
pub const HB_DEAD_THRESHOLD: u32 = 31;
/// Default window: one dead threshold, 31 x 2 s.
pub const DEFAULT_HB_WINDOW: u32 = HB_DEAD_THRESHOLD * HB_PERIOD_S;
/// Shortest window a tool accepts: two o2hb periods and one sample, so a
/// live node is seen writing at least once whatever the phase of its writes.
pub const MIN_HB_WINDOW: u32 = 2 * HB_PERIOD_S + 1;
/// Longest window a tool accepts (and the cap on a window taken from a
/// node's advertised dead threshold).
pub const MAX_HB_WINDOW: u32 = 600;

/// How a check watches the heartbeat of a cluster-capable volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HbOptions {
    /// Seconds to watch; `None` takes the default: the longest dead
    /// threshold a node advertises (`hb_dead_ms`), at least 62 s.
    pub window: Option<u32>,
    /// Watch even when no slot names a clustered holder: for volumes whose
    /// slot values cannot be trusted (no MMP, old slot map), where any node
    /// that heartbeats may have the volume mounted.
    pub all_nodes: bool,
}

/// What the heartbeat says of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Its block changed during the window: the node heartbeats.
    Live,
    /// Its block did not change for the whole window: dead or stopped.
    Silent,
    /// Its block is all zero: it never heartbeated on this volume.
    Never,
}

impl NodeState {
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Live => "live",
            NodeState::Silent => "silent",
            NodeState::Never => "never",
        }
    }
}

/// One node's record over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub node: u16,
    /// Slots that name this node and hold an in-use value.
    pub slots: Vec<u16>,
    pub state: NodeState,
    pub first_seq: u64,
    pub last_seq: u64,
    pub generation: u64,
    pub dead_ms: u32,
    /// Times the block was seen to change.
    pub changes: u32,
    /// Seconds into the window of the last change seen.
    pub last_change: Option<u32>,
    /// The last copy read had a valid checksum and its own node number.
    pub block_ok: bool,
    /// Why the block is damaged, when it is.
    pub damage: Option<String>,
}

/// The record of one heartbeat watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HbReport {
    /// The window announced.
    pub window: u32,
    /// Seconds actually watched (less than the window when every node was
    /// seen live early).
    pub watched: u32,
    /// Heartbeat blocks read each time.
    pub blocks: usize,
    /// Nodes that ever heartbeated or that a slot names, by node number.
    pub nodes: Vec<NodeReport>,
}

impl HbReport {
    pub fn live(&self) -> Vec<u16> {
        self.with_state(NodeState::Live)
    }
    pub fn silent(&self) -> Vec<u16> {
        self.with_state(NodeState::Silent)
    }
    fn with_state(&self, s: NodeState) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.state == s)
            .map(|n| n.node)
            .collect()
    }
    pub fn node(&self, node: u16) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.node == node)
    }
}

/// Samples of the heartbeat area over a window.
#[derive(Debug, Clone)]
pub struct Tracker {
    first: Vec<HbBlock>,
    last: Vec<HbBlock>,
    changes: Vec<u32>,
    last_change: Vec<Option<u32>>,
}

fn same(a: &HbBlock, b: &HbBlock) -> bool {
    a.seq == b.seq && a.generation == b.generation && a.cksum == b.cksum && a.node == b.node
}

impl Tracker {
    /// Start from a first read of the area.
    pub fn new(first: Vec<HbBlock>) -> Self {
        let n = first.len();
        Tracker {
            last: first.clone(),
            first,
            changes: vec![0; n],
            last_change: vec![None; n],
        }
    }

    /// Add a read taken `at` seconds into the window.
    pub fn sample(&mut self, at: u32, blocks: Vec<HbBlock>) {
        for (i, b) in blocks.into_iter().enumerate() {
            let Some(prev) = self.last.get_mut(i) else {
                break;
            };
            if !same(prev, &b) {
                self.changes[i] += 1;
                self.last_change[i] = Some(at);
            }
            *prev = b;
        }
    }

    /// Every block of the area was all zero at the first read.
    pub fn nothing_ever(&self) -> bool {
        self.first.iter().all(|b| b.never)
    }

    /// Longest dead threshold a block advertises, in whole seconds.
    pub fn advertised_dead_s(&self) -> u32 {
        self.last
            .iter()
            .filter(|b| !b.never && b.damage().is_none())
            .map(|b| b.dead_ms.div_ceil(1000))
            .max()
            .unwrap_or(0)
    }

    fn state(&self, i: usize) -> NodeState {
        if self.changes[i] > 0 {
            NodeState::Live
        } else if self.last[i].never {
            NodeState::Never
        } else {
            NodeState::Silent
        }
    }

    /// Every node of interest (`holders` ∪ nodes whose block is not all
    /// zero) has been seen live: nothing is left to prove by waiting.
    pub fn all_live(&self, holders: &BTreeMap<u16, Vec<u16>>) -> bool {
        let mut any = false;
        for i in 0..self.last.len() {
            let wanted =
                holders.contains_key(&(i as u16)) || !self.last[i].never || !self.first[i].never;
            if wanted {
                if self.state(i) != NodeState::Live {
                    return false;
                }
                any = true;
            }
        }
        // A holder beyond the area's end can never be seen.
        any && holders.keys().all(|&n| usize::from(n) < self.last.len())
    }

    /// The report: `holders` maps a node number to the slots naming it.
    pub fn report(&self, window: u32, watched: u32, holders: &BTreeMap<u16, Vec<u16>>) -> HbReport {
        let mut nodes = Vec::new();
        for i in 0..self.last.len() {
            let node = i as u16;
            let slots = holders.get(&node).cloned().unwrap_or_default();
            let state = self.state(i);
            if state == NodeState::Never && slots.is_empty() {
                continue;
            }
            let (f, l) = (&self.first[i], &self.last[i]);
            let damage = if l.never {
                None
            } else {
                l.damage().map(|d| d.to_string())
            };
            nodes.push(NodeReport {
                node,
                slots,
                state,
                first_seq: f.seq,
                last_seq: l.seq,
                generation: l.generation,
                dead_ms: l.dead_ms,
                changes: self.changes[i],
                last_change: self.last_change[i],
                block_ok: damage.is_none(),
                damage,
            });
        }
        // Holders whose node number lies beyond the area: never seen.
        for (&node, slots) in holders.range(self.last.len() as u16..) {
            nodes.push(NodeReport {
                node,
                slots: slots.clone(),
                state: NodeState::Never,
                first_seq: 0,
                last_seq: 0,
                generation: 0,
                dead_ms: 0,
                changes: 0,
                last_change: None,
                block_ok: true,
                damage: None,
            });
        }
        HbReport {
            window,
            watched,
            blocks: self.last.len(),
            nodes,
        }
    }
}

/// The window to watch: the option, or the longest dead threshold a node
/// advertises (at least the default 62 s, at most [`MAX_HB_WINDOW`]).
pub fn window_for(opts: &HbOptions, tracker: &Tracker) -> u32 {
    opts.window.unwrap_or_else(|| {
        tracker
            .advertised_dead_s()
            .clamp(DEFAULT_HB_WINDOW, MAX_HB_WINDOW)
    })
}

/// A heartbeat area for tests: block `i` holds `(seq, generation)` as
/// node `i` would write it (dead threshold 62 s), or zeros for `None`.
#[cfg(test)]
pub(crate) fn test_area(blocks: &[Option<(u64, u64)>]) -> Vec<HbBlock> {
    use ocfs2_format::heartbeat::{decode, encode};
    blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let bytes = match b {
                Some((seq, gen)) => encode(512, *seq, i as u8, *gen, 62_000),
                None => vec![0; 512],
            };
            decode(i as u16, &bytes).expect("a 512-byte block")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocfs2_format::heartbeat::{decode, encode};

    fn area(blocks: &[Option<(u64, u64)>]) -> Vec<HbBlock> {
        test_area(blocks)
    }

    #[test]
    fn live_silent_never() {
        let mut t = Tracker::new(area(&[Some((100, 7)), Some((90, 8)), None]));
        t.sample(2, area(&[Some((102, 7)), Some((90, 8)), None]));
        t.sample(4, area(&[Some((104, 7)), Some((90, 8)), None]));
        let holders = BTreeMap::from([(0, vec![0]), (1, vec![1]), (2, vec![2])]);
        assert!(!t.all_live(&holders));
        let r = t.report(62, 62, &holders);
        assert_eq!(r.live(), vec![0]);
        assert_eq!(r.silent(), vec![1]);
        let n0 = r.node(0).unwrap();
        assert_eq!(
            (n0.first_seq, n0.last_seq, n0.changes, n0.last_change),
            (100, 104, 2, Some(4))
        );
        assert_eq!(r.node(2).unwrap().state, NodeState::Never);
        // A node that holds no slot and never heartbeated is left out.
        let r = t.report(62, 62, &BTreeMap::new());
        assert_eq!(r.nodes.len(), 2);
    }

    #[test]
    fn a_new_generation_is_a_change() {
        let mut t = Tracker::new(area(&[Some((100, 7))]));
        t.sample(1, area(&[Some((100, 9))]));
        assert!(t.all_live(&BTreeMap::new()));
    }

    #[test]
    fn all_live_needs_every_node_of_interest() {
        let mut t = Tracker::new(area(&[Some((1, 1)), Some((1, 1))]));
        t.sample(2, area(&[Some((3, 1)), Some((1, 1))]));
        assert!(!t.all_live(&BTreeMap::new()));
        t.sample(3, area(&[Some((3, 1)), Some((4, 1))]));
        assert!(t.all_live(&BTreeMap::new()));
        // A holder beyond the area cannot be proven live.
        assert!(!t.all_live(&BTreeMap::from([(300, vec![0])])));
        let r = t.report(10, 3, &BTreeMap::from([(300, vec![0])]));
        assert_eq!(r.node(300).unwrap().state, NodeState::Never);
        // Nothing of interest at all: not "all live".
        assert!(!Tracker::new(area(&[None])).all_live(&BTreeMap::new()));
    }

    #[test]
    fn damaged_silent_block_is_reported() {
        let mut b = encode(512, 100, 0, 7, 62_000);
        b[20] ^= 1;
        let t = Tracker::new(vec![decode(0, &b).unwrap()]);
        let r = t.report(62, 62, &BTreeMap::new());
        let n = &r.nodes[0];
        assert_eq!(n.state, NodeState::Silent);
        assert!(!n.block_ok);
        assert!(n.damage.as_deref().unwrap().contains("checksum"), "{n:?}");
    }

    #[test]
    fn kernel_blocks_drive_the_tracker() {
        // Two samples of the same kernel-written area: nothing moved, so
        // both nodes are silent; their advertised 14 s dead threshold does
        // not shorten the default window below 62 s.
        let raw = include_bytes!("../../../tests/fixtures/hb-mmp-hbdead7-2nodes.bin");
        let area: Vec<HbBlock> = raw
            .chunks(512)
            .enumerate()
            .map(|(i, b)| decode(i as u16, b).unwrap())
            .collect();
        let mut t = Tracker::new(area.clone());
        assert_eq!(t.advertised_dead_s(), 14);
        t.sample(2, area.clone());
        let r = t.report(62, 62, &BTreeMap::from([(0, vec![0]), (1, vec![1])]));
        assert_eq!(r.silent(), vec![0, 1]);
        assert!(r.nodes.iter().all(|n| n.block_ok));
        let opts = HbOptions {
            window: None,
            all_nodes: false,
        };
        assert_eq!(window_for(&opts, &t), DEFAULT_HB_WINDOW);
        // The node's next write (hb_seq + 2 s, re-checksummed) is a change.
        let next = encode(512, area[1].seq + 2, 1, area[1].generation, area[1].dead_ms);
        t.sample(4, vec![area[0], decode(1, &next).unwrap()]);
        let r = t.report(62, 4, &BTreeMap::new());
        assert_eq!((r.live(), r.silent()), (vec![1], vec![0]));
    }

    #[test]
    fn window_defaults_to_the_longest_dead_threshold() {
        let opts = HbOptions {
            window: None,
            all_nodes: false,
        };
        let t = Tracker::new(area(&[Some((1, 1))]));
        assert_eq!(window_for(&opts, &t), 62);
        let long = decode(0, &encode(512, 1, 0, 1, 122_000)).unwrap();
        assert_eq!(window_for(&opts, &Tracker::new(vec![long])), 122);
        let short = decode(0, &encode(512, 1, 0, 1, 14_000)).unwrap();
        assert_eq!(window_for(&opts, &Tracker::new(vec![short])), 62);
        let fixed = HbOptions {
            window: Some(16),
            all_nodes: false,
        };
        assert_eq!(window_for(&fixed, &Tracker::new(vec![long])), 16);
    }
}
