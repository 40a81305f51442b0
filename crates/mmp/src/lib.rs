//! The OCFS2 multiple mount protection protocol on the tool side: the
//! kernel's check (steps 2-4 of the protocol notes), the wait formula, the
//! same-kind rule of `ocfs2_find_slot`, and verdicts with the slot and value
//! that decided them. No printing, no command line: callers observe the
//! check through [`Observer`] and sleep through [`Clock`].

pub mod engine;
pub mod guard;
pub mod liveness;
pub mod shield;

use engine::SlotIo;
use liveness::{HbOptions, HbReport, NodeState, Tracker};
use std::collections::BTreeMap;

use ocfs2_format::slotmap::{value, MmpState, SlotMap};
use serde::Serialize;
use std::time::Duration;

/// The kernel's minimum check interval (`OCFS2_MMP_MIN_CHECK_INTERVAL`).
pub const MIN_CHECK_INTERVAL: u32 = 5;
/// Largest update interval the tools accept.
pub const MAX_UPDATE_INTERVAL: u16 = 300;
/// Update interval the tools write by default.
pub const DEFAULT_UPDATE_INTERVAL: u16 = 5;

/// Parse an MMP update interval given on a command line: 1 ..= 300
/// seconds; `0` means "the default" where `zero_is_default` (mkfs, as the
/// protocol notes have it) and is refused otherwise (tunefs: the kernel
/// would busy-loop on a stored 0).
pub fn parse_update_interval(s: &str, zero_is_default: bool) -> Result<u16, String> {
    let n: i64 = s.trim().parse().map_err(|_| {
        format!("MMP update interval '{s}' is not a number: use 1 to {MAX_UPDATE_INTERVAL} seconds")
    })?;
    match n {
        0 if zero_is_default => Ok(DEFAULT_UPDATE_INTERVAL),
        1..=300 => Ok(n as u16),
        _ => Err(format!(
            "MMP update interval {n} is out of range: use 1 to {MAX_UPDATE_INTERVAL} seconds{}",
            if zero_is_default {
                " (0: the default, 5)"
            } else {
                ""
            }
        )),
    }
}

/// A verdict's description (or a tool's own, in the same form: "in use:
/// ...", "cannot tell: ...") as the reason a tool refuses the volume, each
/// thing said once.
pub fn refusal_line(text: &str) -> String {
    match text.strip_prefix("in use: ") {
        Some(rest) => format!("the volume is in use: {rest}"),
        None => format!("the volume cannot be used: {text}"),
    }
}

/// Check interval = max(update interval, 5 s).
pub fn check_interval(update_interval: u16) -> u32 {
    u32::from(update_interval).max(MIN_CHECK_INTERVAL)
}

/// Wait time = min(2 x check + 1, check + 60) seconds.
pub fn wait_time(update_interval: u16) -> u32 {
    let ci = check_interval(update_interval);
    (2 * ci + 1).min(ci + 60)
}

/// Time, injectable for tests.
pub trait Clock {
    fn sleep(&mut self, d: Duration);
    /// Monotonic time since some fixed point.
    fn now(&mut self) -> Duration;
}

/// The real clock.
pub struct SystemClock;
impl Clock for SystemClock {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    fn now(&mut self) -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// Call `each(at)` about once a second, `at` being the whole seconds
/// passed, until `secs` seconds have passed on `clock` (the last sleep is
/// cut short: never later). `each` stops the watch early with
/// `ControlFlow::Break`, whose value is returned.
pub fn each_second<B, E>(
    secs: u32,
    clock: &mut dyn Clock,
    mut each: impl FnMut(u32) -> Result<std::ops::ControlFlow<B>, E>,
) -> Result<Option<B>, E> {
    let start = clock.now();
    let deadline = start + Duration::from_secs(u64::from(secs));
    loop {
        let now = clock.now();
        if now >= deadline {
            return Ok(None);
        }
        clock.sleep((deadline - now).min(Duration::from_secs(1)));
        let at = ((clock.now() - start).as_secs_f64().round() as u32).min(secs);
        if let std::ops::ControlFlow::Break(b) = each(at)? {
            return Ok(Some(b));
        }
    }
}

/// What the check tells its caller as it goes.
pub trait Observer {
    /// About to wait `secs` seconds, for the reason given.
    fn waiting(&mut self, _secs: u32, _why: &str) {}
    /// One second of the wait has passed; `left` seconds remain.
    fn tick(&mut self, _left: u32) {}
    /// A signal that asks the wait to stop (SIGINT, SIGTERM, SIGHUP).
    fn interrupted(&mut self) -> Option<i32> {
        None
    }
}

/// An observer that says nothing.
pub struct Silent;
impl Observer for Silent {}

/// Why the volume is not safe to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// No slot in use: every slot is `0` or `SEQ_CLEAN`.
    Clean,
    /// Slots held sequences that did not move during a full wait, or
    /// clustered values of nodes whose heartbeat stayed silent for the whole
    /// window (`nodes`): the mounts that wrote them are dead. Safe to mount
    /// (after journal recovery).
    Stale { slots: Vec<u16>, nodes: Vec<u16> },
    /// A slot changed during the wait: a live mount (or one starting).
    Active { slot: u16, before: u32, after: u32 },
    /// o2hb heartbeat blocks moved during the watch: those nodes are alive
    /// and have the volume mounted (or are mounting or unmounting it),
    /// whatever the slot map says. `slots` are the slots that name them.
    Heartbeating { nodes: Vec<u16>, slots: Vec<u16> },
    /// `SEQ_FSCK`: fsck is running (or a killed fsck left it).
    FsckRunning { slot: u16 },
    /// A value outside the protocol: not safe.
    UnknownValue { slot: u16, value: u32 },
    /// Slot values without liveness (`VALID_CLUSTER`, `VALID_NOCLUSTER`):
    /// the slot map cannot tell a live holder from a dead one.
    NoLiveness { slot: u16, value: u32 },
    /// `SEQ_CLEAN`: on the seed's kernel a clean unmount leaves `0`, and
    /// `SEQ_CLEAN` stays on disk only for as long as a read-only mount lasts
    /// (or after one crashed). The kernel lets a read-write mount in at once;
    /// the tools do not: a live reader may be there.
    ReadOnlyMount { slot: u16 },
    /// Sequences seen, but the caller asked not to wait.
    NotWatched { slot: u16, value: u32 },
    /// The MMP bit on a volume with the old slot map, whose one-byte
    /// entries hold no sequence: the kernel refuses such an MMP mount, and
    /// no tool may write an MMP value there.
    OldSlotMap,
    /// The volume does not have the MMP feature.
    FeatureOff,
    /// A signal stopped the wait before it could decide.
    Interrupted { signal: i32 },
}

impl Verdict {
    /// Exit status in the manner of e2mmpstatus: 0 safe to mount, 1 in use
    /// (or fsck running, or unknown marker), 2 could not tell.
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Clean | Verdict::Stale { .. } => 0,
            Verdict::Active { .. }
            | Verdict::Heartbeating { .. }
            | Verdict::FsckRunning { .. }
            | Verdict::UnknownValue { .. } => 1,
            Verdict::NoLiveness { .. }
            | Verdict::ReadOnlyMount { .. }
            | Verdict::NotWatched { .. }
            | Verdict::OldSlotMap
            | Verdict::FeatureOff
            | Verdict::Interrupted { .. } => 2,
        }
    }

    pub fn is_safe(&self) -> bool {
        self.exit_code() == 0
    }

    /// One sentence for people.
    /// Why a tool will not use the volume, as one phrase: "the volume is in
    /// use: slot 0 moved ...", "the volume cannot be used: cannot tell: ...".
    pub fn refusal(&self) -> String {
        refusal_line(&self.describe())
    }

    pub fn describe(&self) -> String {
        match self {
            Verdict::Clean => "safe to mount: no slot is in use".into(),
            Verdict::Stale { slots, nodes } if nodes.is_empty() => format!(
                "safe to mount: slot(s) {} held a sequence that did not move for a full wait (a mount that died; its journal needs recovery)",
                join(slots)
            ),
            Verdict::Stale { slots, nodes } => format!(
                "safe to mount: slot(s) {} belong to mounts that died: node(s) {} stayed silent for the whole heartbeat window \
                 (their journals need recovery by the next mount)",
                join(slots),
                join(nodes)
            ),
            Verdict::Active { slot, before, after } => format!(
                "in use: slot {slot} moved from {before:#010x} to {after:#010x} during the wait (a live mount on some node)"
            ),
            Verdict::Heartbeating { nodes, slots } => format!(
                "in use: node(s) {} heartbeat on this volume (their o2hb blocks moved during the watch){}",
                join(nodes),
                if slots.is_empty() {
                    "; they hold no slot yet (mounting, or a heartbeat region left up)".to_string()
                } else {
                    format!("; they hold slot(s) {}", join(slots))
                }
            ),
            Verdict::FsckRunning { slot } => format!(
                "in use: slot {slot} holds SEQ_FSCK (fsck is running, or a killed fsck left it: tunefs.ocfs2-mmp --clear-mmp resets a stale one)"
            ),
            Verdict::UnknownValue { slot, value } => {
                format!("not safe: slot {slot} holds {value:#010x}, a value outside the MMP protocol")
            }
            Verdict::NoLiveness { slot, value } => format!(
                "cannot tell: slot {slot} holds {} ({value:#010x}), which no node updates; a live holder and a crashed one look the same",
                MmpState::decode(*value).name()
            ),
            Verdict::ReadOnlyMount { slot } => format!(
                "cannot tell: slot {slot} holds SEQ_CLEAN, which this kernel leaves only while a read-only mount lasts \
                 (or after one crashed; a clean unmount leaves 0); if no node has the volume mounted, clear it with \
                 tunefs.ocfs2-mmp --clear-mmp"
            ),
            Verdict::NotWatched { slot, value } => format!(
                "cannot tell without waiting: slot {slot} holds {} {value:#010x}; run without -i to watch whether it (or its node's heartbeat) moves",
                MmpState::decode(*value).name()
            ),
            Verdict::OldSlotMap => "cannot tell: the MMP bit is set but the volume has the old slot map, which holds no \
                MMP sequence (the kernel refuses to mount it with MMP; fsck.ocfs2-mmp -y rewrites it in the extended format)"
                .into(),
            Verdict::FeatureOff => "MMP feature not enabled on this volume".into(),
            Verdict::Interrupted { signal } => format!("cannot tell: interrupted by signal {signal} during the wait"),
        }
    }
}

fn join(v: &[u16]) -> String {
    v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

/// The kind of mount that last held the volume, as the slot map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    None,
    Clustered,
    NonClustered,
}

/// What the patched kernel's `ocfs2_find_slot` will do with the next mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SameKindRule {
    pub last_mount: MountKind,
    /// First slot the kernel counts as used (`__ocfs2_find_used_slot`).
    pub first_used_slot: Option<u16>,
    pub local_mount_allowed: bool,
    pub cluster_mount_allowed: bool,
    pub explanation: String,
}

/// `__ocfs2_find_used_slot`: the first slot holding a value the kernel
/// counts as in use (a sequence, FSCK, VALID_CLUSTER, VALID_NOCLUSTER).
fn kernel_first_used(map: &SlotMap) -> Option<u16> {
    map.slots.iter().find_map(|s| {
        let v = kernel_valid(map, s.raw);
        let used = v != 0
            && v != value::SEQ_CLEAN
            && (v <= value::SEQ_MAX
                || v == value::SEQ_FSCK
                || v == value::VALID_CLUSTER
                || v == value::VALID_NOCLUSTER);
        used.then_some(s.index)
    })
}

/// The `sl_valid` the seed's kernel gives a slot: the extended map's
/// value as it is; on the old map, 0 for an empty slot (0xFFFF) and
/// `OCFS2_SLOT_INFO_OLD_VALID` (1) for a node number
/// (`ocfs2_update_slot_info_old`).
fn kernel_valid(map: &SlotMap, raw: u32) -> u32 {
    match map.format {
        ocfs2_format::slotmap::Format::Extended => raw,
        ocfs2_format::slotmap::Format::Old if raw as u16 == u16::MAX => 0,
        ocfs2_format::slotmap::Format::Old => 1,
    }
}

/// Apply the kernel's same-kind rule to a slot map.
pub fn same_kind_rule(map: &SlotMap) -> SameKindRule {
    let first = kernel_first_used(map);
    let slot0 = map.slots.first().map_or(0, |s| kernel_valid(map, s.raw));
    // The kernel tests `sl_valid < OCFS2_MMP_SEQ_MAX` (strictly less).
    let noclustered =
        first == Some(0) && (slot0 == value::VALID_NOCLUSTER || slot0 < value::SEQ_MAX);
    let (last, local, cluster, text) = match (first, noclustered) {
        (None, _) => (
            MountKind::None,
            true,
            true,
            "no slot is in use: the next mount may be of either kind".to_string(),
        ),
        (Some(_), true) => (
            MountKind::NonClustered,
            true,
            false,
            "slot 0 holds a non-clustered mount's value: the next mount must be local/nocluster \
             (a clustered mount fails with EINVAL, \"Found non-clustered mount info!\")"
                .to_string(),
        ),
        (Some(s), false) => (
            MountKind::Clustered,
            false,
            true,
            format!(
                "slot {s} holds a clustered mount's value{}: the next mount must be clustered \
                 (a local/nocluster mount fails with EINVAL, \"Found clustered mount info!\")",
                if map
                    .slots
                    .get(usize::from(s))
                    .is_some_and(|x| x.raw == value::SEQ_FSCK)
                {
                    " (SEQ_FSCK, which the kernel's rule reads this way)"
                } else {
                    ""
                }
            ),
        ),
    };
    SameKindRule {
        last_mount: last,
        first_used_slot: first,
        local_mount_allowed: local,
        cluster_mount_allowed: cluster,
        explanation: text,
    }
}

/// The full record of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub update_interval: u16,
    pub check_interval: u32,
    pub wait_time: u32,
    /// Seconds actually waited.
    pub waited: u32,
    pub verdict: Verdict,
    /// The slot map as first read.
    #[serde(skip)]
    pub first: Option<SlotMap>,
    /// The slot map as last read (after the wait, if any).
    #[serde(skip)]
    pub last: Option<SlotMap>,
    /// The heartbeat watch, when the check ran one.
    pub heartbeat: Option<HbReport>,
}

/// Who holds the volume, from one check: for status output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodesSummary {
    /// Nodes whose heartbeat moved and that a slot names.
    pub mounted: Vec<u16>,
    /// Nodes whose heartbeat moved but that no slot names.
    pub live_without_slot: Vec<u16>,
    /// Nodes whose heartbeat stayed still for the whole window.
    pub silent: Vec<u16>,
    /// Slots held by mounts that died.
    pub stale_slots: Vec<u16>,
    /// Who will recover the stale slots, in one sentence.
    pub recovery: Option<String>,
}

impl CheckReport {
    /// Mounted, silent and stale, as far as this check could see.
    pub fn nodes(&self) -> NodesSummary {
        let mut out = NodesSummary::default();
        if let Some(h) = &self.heartbeat {
            for n in &h.nodes {
                match (n.state, n.slots.is_empty()) {
                    (NodeState::Live, false) => out.mounted.push(n.node),
                    (NodeState::Live, true) => out.live_without_slot.push(n.node),
                    (NodeState::Silent, _) => out.silent.push(n.node),
                    (NodeState::Never, _) => {}
                }
            }
        }
        let mut stale = match &self.verdict {
            Verdict::Stale { slots, .. } => slots.clone(),
            _ => Vec::new(),
        };
        let mut clustered_stale = false;
        if let (Some(h), Some(map)) = (&self.heartbeat, &self.last) {
            for s in &map.slots {
                let silent = u16::try_from(s.node)
                    .ok()
                    .and_then(|n| h.node(n))
                    .is_some_and(|n| n.state == NodeState::Silent);
                if clustered_value(s.raw) && silent {
                    clustered_stale = true;
                    if !stale.contains(&s.index) {
                        stale.push(s.index);
                    }
                }
            }
        }
        stale.sort_unstable();
        if !stale.is_empty() {
            out.recovery = Some(if !out.mounted.is_empty() && clustered_stale {
                format!(
                    "live node(s) {} replay the journal of slot(s) {} and clear them once o2hb declares the silent node(s) dead",
                    join(&out.mounted),
                    join(&stale)
                )
            } else if clustered_stale {
                format!(
                    "the next clustered mount replays the journal(s) of slot(s) {} and frees those it does not take itself (local and nocluster mounts are refused until then)",
                    join(&stale)
                )
            } else {
                format!(
                    "the next mount replays the journal(s) of slot(s) {}",
                    join(&stale)
                )
            });
        }
        out.stale_slots = stale;
        out
    }
}

/// Options of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Watch sequences for one wait time (the kernel's step 4). Without it,
    /// sequences give [`Verdict::NotWatched`].
    pub wait: bool,
    /// Check even when the feature bit is off (the slot map is read anyway).
    pub feature_on: bool,
    /// Watch the o2hb heartbeat (cluster-capable volumes); `None` for local
    /// volumes, which no node heartbeats on.
    pub hb: Option<HbOptions>,
}

/// Slots whose value says "in use", by the node they name. On the old slot
/// map the value is the node number itself.
pub fn slot_holders(map: &SlotMap) -> BTreeMap<u16, Vec<u16>> {
    let mut out: BTreeMap<u16, Vec<u16>> = BTreeMap::new();
    for s in &map.slots {
        let used = match map.format {
            ocfs2_format::slotmap::Format::Old => s.legacy_in_use(map.format),
            ocfs2_format::slotmap::Format::Extended => !MmpState::decode(s.raw).is_unused(),
        };
        if used {
            let node = match map.format {
                ocfs2_format::slotmap::Format::Old => s.raw,
                ocfs2_format::slotmap::Format::Extended => s.node,
            };
            out.entry(u16::try_from(node).unwrap_or(u16::MAX))
                .or_default()
                .push(s.index);
        }
    }
    out
}

/// The first slot from `skip` on whose value differs between two reads of
/// the slot map: `(slot, before, after)`.
pub(crate) fn first_change(
    before: &SlotMap,
    after: &SlotMap,
    skip: usize,
) -> Option<(u16, u32, u32)> {
    before
        .slots
        .iter()
        .zip(&after.slots)
        .skip(skip)
        .find(|(b, a)| b.raw != a.raw)
        .map(|(b, a)| (b.index, b.raw, a.raw))
}

/// A clustered mount's value: `VALID_CLUSTER`, or a stock kernel's `1`.
fn clustered_value(raw: u32) -> bool {
    raw == value::VALID_CLUSTER || raw == value::LEGACY_VALID
}

/// Run the kernel's check on a volume's slot map (re-read, uncached, each
/// time), and on a cluster-capable volume watch the o2hb heartbeat of the
/// nodes the slots name. The wait is announced once, with its length, and
/// never runs past it.
pub fn check(
    update_interval: u16,
    opts: CheckOptions,
    io: &dyn SlotIo,
    clock: &mut dyn Clock,
    obs: &mut dyn Observer,
) -> ocfs2_format::Result<CheckReport> {
    let wt = wait_time(update_interval);
    let mut report = CheckReport {
        update_interval,
        check_interval: check_interval(update_interval),
        wait_time: wt,
        waited: 0,
        verdict: Verdict::Clean,
        first: None,
        last: None,
        heartbeat: None,
    };
    let map = io.read()?;
    report.first = Some(map.clone());
    report.last = Some(map.clone());
    let hb_all = opts.hb.is_some_and(|h| h.all_nodes);
    if !opts.feature_on && !hb_all {
        report.verdict = Verdict::FeatureOff;
        return Ok(report);
    }
    if opts.feature_on && map.format == ocfs2_format::slotmap::Format::Old {
        report.verdict = Verdict::OldSlotMap;
        return Ok(report);
    }
    if opts.feature_on {
        if let Some(v) = static_verdict(&map) {
            report.verdict = v;
            return Ok(report);
        }
    }
    let seqs: Vec<(u16, u32)> = if opts.feature_on {
        map.slots
            .iter()
            .filter(|s| matches!(MmpState::decode(s.raw), MmpState::Sequence(_)))
            .map(|s| (s.index, s.raw))
            .collect()
    } else {
        Vec::new()
    };
    let unwatched: Option<&ocfs2_format::slotmap::Slot> = map
        .slots
        .iter()
        .find(|s| clustered_value(s.raw) || s.raw == value::VALID_NOCLUSTER);
    let watch_hb = opts.hb.is_some() && (hb_all || unwatched.is_some());
    if !opts.wait {
        let first = seqs
            .first()
            .copied()
            .or_else(|| unwatched.filter(|_| watch_hb).map(|s| (s.index, s.raw)));
        if let (Some((slot, value)), true) = (first, opts.feature_on) {
            report.verdict = Verdict::NotWatched { slot, value };
            return Ok(report);
        }
        if !opts.feature_on {
            report.verdict = Verdict::FeatureOff;
            return Ok(report);
        }
    }
    let holders = slot_holders(&map);
    let mut tracker = None;
    let mut window = 0;
    if watch_hb && opts.wait {
        let t = Tracker::new(io.heartbeat()?);
        // No node ever heartbeated here (a fresh volume, global heartbeat,
        // a userspace stack): watching cannot make the verdict safe, so
        // none is announced; the nodes are reported as "never".
        if !t.nothing_ever() {
            window = liveness::window_for(opts.hb.as_ref().expect("watch_hb"), &t);
        }
        tracker = Some(t);
    }
    let seq_wait = if seqs.is_empty() || !opts.wait { 0 } else { wt };
    let total = seq_wait.max(window);
    if total > 0 {
        let mut why = Vec::new();
        if let Some(&(slot, v)) = seqs.first() {
            why.push(format!(
                "slot {slot} holds sequence {v:#010x}: watching {wt} s (the kernel's wait) whether a live mount updates it"
            ));
        }
        if tracker.is_some() {
            let named = if holders.is_empty() {
                String::new()
            } else {
                format!(
                    "; slots name node(s) {}",
                    join(&holders.keys().copied().collect::<Vec<_>>())
                )
            };
            let dead = tracker.as_ref().map_or(0, Tracker::advertised_dead_s);
            let source = if opts.hb.is_some_and(|h| h.window.is_some()) {
                if window < dead {
                    format!(
                        "the window asked for, shorter than the nodes' dead threshold of {dead} s: a node stalled \
                         longer than the window is called dead though o2hb would still wait for it"
                    )
                } else {
                    "the window asked for".to_string()
                }
            } else {
                "one dead threshold".to_string()
            };
            why.push(format!(
                "watching the o2hb heartbeat of every node for up to {window} s ({source}{named}; stops early once every node is seen live)"
            ));
        }
        obs.waiting(total, &why.join("; "));
        let early = each_second(total, clock, |at| {
            use std::ops::ControlFlow::{Break, Continue};
            report.waited = at;
            if let Some(signal) = obs.interrupted() {
                return Ok(Break(Some(Verdict::Interrupted { signal })));
            }
            let now_map = io.read()?;
            let moved =
                first_change(&map, &now_map, 0).map(|(slot, before, after)| Verdict::Active {
                    slot,
                    before,
                    after,
                });
            report.last = Some(now_map);
            if moved.is_some() {
                return Ok(Break(moved));
            }
            if let Some(t) = tracker.as_mut() {
                t.sample(at, io.heartbeat()?);
            }
            obs.tick(total.saturating_sub(at));
            // Everyone seen live: nothing left to prove by waiting (the
            // verdict is decided below).
            if at >= seq_wait && tracker.as_ref().is_some_and(|t| t.all_live(&holders)) {
                return Ok(Break(None));
            }
            Ok(Continue(()))
        })?;
        if let Some(Some(v)) = early {
            report.verdict = v;
            report.heartbeat = tracker.map(|t| t.report(window, report.waited, &holders));
            return Ok(report);
        }
    }
    let hb = tracker.map(|t| t.report(window, report.waited, &holders));
    report.verdict = decide(&map, opts, &seqs, hb.as_ref());
    report.heartbeat = hb;
    Ok(report)
}

/// The verdict once the slot map held still for the whole wait.
fn decide(
    map: &SlotMap,
    opts: CheckOptions,
    seqs: &[(u16, u32)],
    hb: Option<&HbReport>,
) -> Verdict {
    if let Some(hb) = hb {
        let live = hb.live();
        if !live.is_empty() {
            let mut slots: Vec<u16> = hb
                .nodes
                .iter()
                .filter(|n| n.state == NodeState::Live)
                .flat_map(|n| n.slots.iter().copied())
                .collect();
            slots.sort_unstable();
            return Verdict::Heartbeating { nodes: live, slots };
        }
    }
    if !opts.feature_on {
        return Verdict::FeatureOff;
    }
    let mut stale: Vec<u16> = seqs.iter().map(|s| s.0).collect();
    let mut dead_nodes = Vec::new();
    for s in &map.slots {
        if s.raw == value::VALID_NOCLUSTER {
            return Verdict::NoLiveness {
                slot: s.index,
                value: s.raw,
            };
        }
        if !clustered_value(s.raw) {
            continue;
        }
        let state = hb.and_then(|h| {
            u16::try_from(s.node)
                .ok()
                .and_then(|n| h.node(n))
                .map(|n| n.state)
        });
        match state {
            Some(NodeState::Silent) => {
                if !stale.contains(&s.index) {
                    stale.push(s.index);
                }
                let n = s.node as u16;
                if !dead_nodes.contains(&n) {
                    dead_nodes.push(n);
                }
            }
            // `1` on a volume no node heartbeats on is an MMP sequence:
            // its wait decided.
            None if s.raw == value::LEGACY_VALID && opts.hb.is_none() => {}
            _ => {
                return Verdict::NoLiveness {
                    slot: s.index,
                    value: s.raw,
                }
            }
        }
    }
    stale.sort_unstable();
    if stale.is_empty() {
        Verdict::Clean
    } else {
        Verdict::Stale {
            slots: stale,
            nodes: dead_nodes,
        }
    }
}

/// Verdicts that need no wait: FSCK and unknown values (not safe),
/// `SEQ_CLEAN` (a read-only mount: cannot tell), or an empty map (safe).
fn static_verdict(map: &SlotMap) -> Option<Verdict> {
    for s in &map.slots {
        match MmpState::decode(s.raw) {
            MmpState::Fsck => return Some(Verdict::FsckRunning { slot: s.index }),
            MmpState::Unknown(v) => {
                return Some(Verdict::UnknownValue {
                    slot: s.index,
                    value: v,
                })
            }
            _ => {}
        }
    }
    if let Some(s) = map
        .slots
        .iter()
        .find(|s| MmpState::decode(s.raw) == MmpState::Clean)
    {
        return Some(Verdict::ReadOnlyMount { slot: s.index });
    }
    map.slots
        .iter()
        .all(|s| s.raw == value::EMPTY)
        .then_some(Verdict::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocfs2_format::heartbeat::HbBlock;
    use ocfs2_format::slotmap::{Format, Slot};
    use std::cell::Cell;
    use std::rc::Rc;

    /// Fake time in milliseconds, shared with the fake volume.
    struct FakeClock(Rc<Cell<u64>>);
    impl Clock for FakeClock {
        fn sleep(&mut self, d: Duration) {
            self.0.set(self.0.get() + d.as_millis() as u64);
        }
        fn now(&mut self) -> Duration {
            Duration::from_millis(self.0.get())
        }
    }

    type SlotsAt = Box<dyn Fn(u64) -> Vec<(u32, u32)>>;
    type HbAt = Box<dyn Fn(u64) -> Vec<Option<(u64, u64)>>>;

    /// A volume whose slot map and heartbeat area are functions of time.
    struct FakeVol {
        ms: Rc<Cell<u64>>,
        slots: SlotsAt,
        hb: HbAt,
        hb_reads: Cell<u32>,
    }
    impl SlotIo for FakeVol {
        fn read(&self) -> ocfs2_format::Result<SlotMap> {
            let v = (self.slots)(self.ms.get());
            Ok(SlotMap {
                format: Format::Extended,
                slots: v
                    .iter()
                    .enumerate()
                    .map(|(i, &(raw, node))| Slot {
                        index: i as u16,
                        raw,
                        node,
                    })
                    .collect(),
            })
        }
        fn write(&self, _: u16, _: u32, _: u32) -> ocfs2_format::Result<()> {
            unreachable!("the check never writes")
        }
        fn heartbeat(&self) -> ocfs2_format::Result<Vec<HbBlock>> {
            self.hb_reads.set(self.hb_reads.get() + 1);
            Ok(liveness::test_area(&(self.hb)(self.ms.get())))
        }
    }

    fn map(vals: &[u32]) -> SlotMap {
        SlotMap {
            format: Format::Extended,
            slots: vals
                .iter()
                .enumerate()
                .map(|(i, &v)| Slot {
                    index: i as u16,
                    raw: v,
                    node: 0,
                })
                .collect(),
        }
    }

    fn run_vol(vol: &FakeVol, opts: CheckOptions) -> (CheckReport, u64) {
        let mut clock = FakeClock(vol.ms.clone());
        let r = check(5, opts, vol, &mut clock, &mut Silent).unwrap();
        (r, vol.ms.get())
    }

    /// First read gives `first`, every later one `second`.
    fn run(first: &[u32], second: &[u32], wait: bool) -> CheckReport {
        let (a, b) = (first.to_vec(), second.to_vec());
        let reads = Cell::new(0u32);
        let vol = FakeVol {
            ms: Rc::new(Cell::new(0)),
            slots: Box::new(move |_| {
                reads.set(reads.get() + 1);
                let v = if reads.get() == 1 { &a } else { &b };
                v.iter().map(|&x| (x, 0)).collect()
            }),
            hb: Box::new(|_| Vec::new()),
            hb_reads: Cell::new(0),
        };
        run_vol(
            &vol,
            CheckOptions {
                wait,
                feature_on: true,
                hb: None,
            },
        )
        .0
    }

    const CLUSTER: HbOptions = HbOptions {
        window: None,
        all_nodes: false,
    };

    /// Node `n` heartbeats every 2 s while `alive(n, ms)`; a block stays
    /// as last written once the node stops; `None` = never heartbeated.
    fn nodes(count: usize, alive: fn(usize, u64) -> Option<bool>) -> HbAt {
        Box::new(move |ms| {
            (0..count)
                .map(|n| {
                    alive(n, ms).map(|live| {
                        let t = if live { ms / 2000 } else { 0 };
                        (1_700_000_000 + t * 2, 0x1000 + n as u64)
                    })
                })
                .collect()
        })
    }

    fn cluster_vol(slots: Vec<(u32, u32)>, hb: HbAt) -> FakeVol {
        FakeVol {
            ms: Rc::new(Cell::new(0)),
            slots: Box::new(move |_| slots.clone()),
            hb,
            hb_reads: Cell::new(0),
        }
    }

    fn watch(hb: HbOptions) -> CheckOptions {
        CheckOptions {
            wait: true,
            feature_on: true,
            hb: Some(hb),
        }
    }

    const VC: u32 = value::VALID_CLUSTER;

    #[test]
    fn two_live_nodes_are_in_use_and_the_watch_stops_early() {
        let vol = cluster_vol(vec![(VC, 0), (VC, 1)], nodes(2, |_, _| Some(true)));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            r.verdict,
            Verdict::Heartbeating {
                nodes: vec![0, 1],
                slots: vec![0, 1]
            }
        );
        assert_eq!(r.verdict.exit_code(), 1);
        assert!(
            ms <= 4_000,
            "both seen live within two periods, took {ms} ms"
        );
        let hb = r.heartbeat.unwrap();
        assert_eq!(hb.window, 62);
        assert_eq!(hb.live(), vec![0, 1]);
    }

    #[test]
    fn one_dead_node_is_silent_after_the_full_window() {
        let vol = cluster_vol(vec![(VC, 0), (VC, 1)], nodes(2, |n, _| Some(n == 1)));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            r.verdict,
            Verdict::Heartbeating {
                nodes: vec![1],
                slots: vec![1]
            }
        );
        assert_eq!(
            ms, 62_000,
            "a silent node needs the whole window, and no more"
        );
        let hb = r.heartbeat.unwrap();
        assert_eq!(hb.silent(), vec![0]);
        assert_eq!(hb.node(0).unwrap().slots, vec![0]);
        assert_eq!(hb.node(1).unwrap().changes, 31);
    }

    #[test]
    fn all_nodes_dead_leaves_stale_clustered_slots() {
        let vol = cluster_vol(
            vec![(VC, 0), (VC, 1), (0, 0)],
            nodes(3, |n, _| (n < 2).then_some(false)),
        );
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            r.verdict,
            Verdict::Stale {
                slots: vec![0, 1],
                nodes: vec![0, 1]
            }
        );
        assert!(r.verdict.describe().contains("node(s) 0, 1 stayed silent"));
        assert_eq!((ms, r.waited), (62_000, 62));
        let rule = same_kind_rule(r.last.as_ref().unwrap());
        assert!(!rule.local_mount_allowed && rule.cluster_mount_allowed);
    }

    #[test]
    fn a_node_that_never_heartbeated_cannot_be_judged() {
        let vol = cluster_vol(vec![(VC, 0)], nodes(2, |_, _| None));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(r.verdict, Verdict::NoLiveness { slot: 0, value: VC });
        assert_eq!(
            r.heartbeat.unwrap().node(0).unwrap().state,
            NodeState::Never
        );
        assert_eq!(ms, 0, "no node ever heartbeated: nothing to wait for");
        // Node 1 heartbeats, node 0 (the holder) never did: watched, and
        // node 1 being live makes it "in use".
        let vol = cluster_vol(vec![(VC, 0)], nodes(2, |n, _| (n == 1).then_some(true)));
        let (r, _) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(r.verdict.exit_code(), 1, "{:?}", r.verdict);
        // ... and silent: still cannot tell for node 0.
        let vol = cluster_vol(vec![(VC, 0)], nodes(2, |n, _| (n == 1).then_some(false)));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            (r.verdict, ms),
            (Verdict::NoLiveness { slot: 0, value: VC }, 62_000)
        );
        // A node number beyond the heartbeat area: never seen either.
        let vol = cluster_vol(vec![(VC, 254)], nodes(2, |_, _| Some(false)));
        let (r, _) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(r.verdict, Verdict::NoLiveness { slot: 0, value: VC });
    }

    #[test]
    fn the_option_sets_the_window_and_the_wait_never_exceeds_it() {
        struct Said(Vec<u32>);
        impl Observer for Said {
            fn waiting(&mut self, secs: u32, _: &str) {
                self.0.push(secs);
            }
        }
        let vol = cluster_vol(vec![(VC, 0)], nodes(1, |_, _| Some(false)));
        let mut said = Said(Vec::new());
        let opts = watch(HbOptions {
            window: Some(16),
            all_nodes: false,
        });
        let r = check(5, opts, &vol, &mut FakeClock(vol.ms.clone()), &mut said).unwrap();
        assert_eq!(said.0, vec![16], "announced once, with its length");
        assert_eq!(vol.ms.get(), 16_000);
        assert_eq!(r.waited, 16);
        assert!(r.verdict.is_safe());
        // With a sequence too, the longer of the two waits is announced.
        let vol = cluster_vol(vec![(4242, 0), (VC, 1)], nodes(2, |_, _| Some(false)));
        let mut said = Said(Vec::new());
        let opts = watch(HbOptions {
            window: Some(3),
            all_nodes: false,
        });
        let r = check(5, opts, &vol, &mut FakeClock(vol.ms.clone()), &mut said).unwrap();
        assert_eq!((said.0.clone(), vol.ms.get()), (vec![11], 11_000));
        assert_eq!(
            r.verdict,
            Verdict::Stale {
                slots: vec![0, 1],
                nodes: vec![1]
            }
        );
    }

    #[test]
    fn a_stock_node_with_its_one_is_watched_by_heartbeat() {
        // MMP volume, slot 0 = 1 from a stock kernel, node 0 heartbeats:
        // the sequence alone would have looked stale.
        let vol = cluster_vol(vec![(1, 0), (0, 0)], nodes(1, |_, _| Some(true)));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(r.verdict.exit_code(), 1, "{:?}", r.verdict);
        assert_eq!(ms, 11_000, "the sequence's wait still runs in full");
        // The same `1` on a local volume is an MMP sequence that died.
        let vol = cluster_vol(vec![(1, 0)], nodes(1, |_, _| Some(true)));
        let (r, _) = run_vol(
            &vol,
            CheckOptions {
                wait: true,
                feature_on: true,
                hb: None,
            },
        );
        assert_eq!(
            r.verdict,
            Verdict::Stale {
                slots: vec![0],
                nodes: vec![]
            }
        );
        assert_eq!(vol.hb_reads.get(), 0);
    }

    #[test]
    fn volumes_without_mmp_watch_every_node() {
        let all = HbOptions {
            window: None,
            all_nodes: true,
        };
        let off = |hb| CheckOptions {
            wait: true,
            feature_on: false,
            hb: Some(hb),
        };
        // Slot map empty, but node 0 heartbeats (a stock kernel mounting).
        let vol = cluster_vol(
            vec![(0, 0), (0, 0)],
            nodes(2, |n, _| (n == 0).then_some(true)),
        );
        let (r, _) = run_vol(&vol, off(all));
        assert_eq!(
            r.verdict,
            Verdict::Heartbeating {
                nodes: vec![0],
                slots: vec![]
            }
        );
        // Nobody heartbeats: MMP is off, so still "cannot tell".
        let vol = cluster_vol(vec![(1, 0)], nodes(2, |n, _| (n == 0).then_some(false)));
        let (r, ms) = run_vol(&vol, off(all));
        assert_eq!((r.verdict.clone(), ms), (Verdict::FeatureOff, 62_000));
        assert_eq!(r.heartbeat.unwrap().silent(), vec![0]);
        // Info mode reads nothing more.
        let (r, _) = run_vol(
            &vol,
            CheckOptions {
                wait: false,
                ..off(all)
            },
        );
        assert_eq!(r.verdict, Verdict::FeatureOff);
    }

    #[test]
    fn a_live_node_without_a_slot_still_means_in_use() {
        // Slot 0: node 0 died; node 1 heartbeats but holds no slot yet.
        let vol = cluster_vol(vec![(VC, 0), (0, 0)], nodes(2, |n, _| Some(n == 1)));
        let (r, _) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            r.verdict,
            Verdict::Heartbeating {
                nodes: vec![1],
                slots: vec![]
            }
        );
        assert!(r.verdict.describe().contains("hold no slot"));
    }

    #[test]
    fn a_node_that_starts_during_the_window_is_live() {
        let vol = cluster_vol(
            vec![(VC, 0)],
            nodes(2, |n, ms| match n {
                0 => Some(false),
                _ => (ms >= 30_000).then_some(true),
            }),
        );
        let (r, _) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(r.verdict.exit_code(), 1, "{:?}", r.verdict);
    }

    #[test]
    fn empty_or_info_mode_reads_no_heartbeat() {
        let vol = cluster_vol(vec![(0, 0), (0, 0)], nodes(2, |_, _| Some(true)));
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!((r.verdict, ms, vol.hb_reads.get()), (Verdict::Clean, 0, 0));
        let vol = cluster_vol(vec![(VC, 0)], nodes(1, |_, _| Some(true)));
        let (r, ms) = run_vol(
            &vol,
            CheckOptions {
                wait: false,
                ..watch(CLUSTER)
            },
        );
        assert_eq!(
            (r.verdict, ms, vol.hb_reads.get()),
            (Verdict::NotWatched { slot: 0, value: VC }, 0, 0)
        );
    }

    #[test]
    fn a_slot_change_stops_the_watch_at_once() {
        let vol = FakeVol {
            ms: Rc::new(Cell::new(0)),
            slots: Box::new(|ms| vec![(VC, 0), (if ms >= 5_000 { 0 } else { VC }, 1)]),
            hb: nodes(2, |_, _| Some(false)),
            hb_reads: Cell::new(0),
        };
        let (r, ms) = run_vol(&vol, watch(CLUSTER));
        assert_eq!(
            r.verdict,
            Verdict::Active {
                slot: 1,
                before: VC,
                after: 0
            }
        );
        assert_eq!(ms, 5_000);
    }

    #[test]
    fn each_second_ends_at_the_deadline_or_a_break() {
        let ms = Rc::new(Cell::new(0));
        let mut seen = Vec::new();
        let r: Result<Option<()>, ()> = each_second(3, &mut FakeClock(ms.clone()), |at| {
            seen.push(at);
            Ok(std::ops::ControlFlow::Continue(()))
        });
        assert_eq!((r, seen, ms.get()), (Ok(None), vec![1, 2, 3], 3_000));
        let r: Result<Option<u32>, ()> = each_second(10, &mut FakeClock(ms.clone()), |at| {
            Ok(if at == 4 {
                std::ops::ControlFlow::Break(at)
            } else {
                std::ops::ControlFlow::Continue(())
            })
        });
        assert_eq!((r, ms.get()), (Ok(Some(4)), 7_000));
    }

    #[test]
    fn update_interval_parsing() {
        assert_eq!(parse_update_interval("7", false), Ok(7));
        assert_eq!(parse_update_interval(" 300 ", false), Ok(300));
        assert_eq!(
            parse_update_interval("0", true),
            Ok(DEFAULT_UPDATE_INTERVAL)
        );
        let e = parse_update_interval("0", false).unwrap_err();
        assert!(
            e.contains("0 is out of range") && e.contains("1 to 300 seconds"),
            "{e}"
        );
        assert!(parse_update_interval("301", true)
            .unwrap_err()
            .contains("(0: the default, 5)"));
        for bad in ["abc", "", "5s", "-", "1e3"] {
            assert!(
                parse_update_interval(bad, true)
                    .unwrap_err()
                    .contains("is not a number"),
                "{bad}"
            );
        }
        assert!(parse_update_interval("65541", false).is_err());
    }

    #[test]
    fn wait_formula() {
        assert_eq!(wait_time(0), 11);
        assert_eq!(wait_time(5), 11);
        assert_eq!(wait_time(10), 21);
        assert_eq!(wait_time(60), 120);
        assert_eq!(wait_time(300), 360);
    }

    #[test]
    fn verdicts() {
        assert_eq!(run(&[0, 0], &[0, 0], true).verdict, Verdict::Clean);
        assert_eq!(
            run(&[value::SEQ_CLEAN, 0], &[0, 0], true).verdict,
            Verdict::ReadOnlyMount { slot: 0 }
        );
        assert_eq!(
            run(&[0, value::SEQ_FSCK], &[0, 0], true).verdict,
            Verdict::FsckRunning { slot: 1 }
        );
        assert_eq!(
            run(&[0xF000_0000], &[0], true).verdict,
            Verdict::UnknownValue {
                slot: 0,
                value: 0xF000_0000
            }
        );
        let r = run(&[42], &[42], true);
        assert_eq!(
            r.verdict,
            Verdict::Stale {
                slots: vec![0],
                nodes: vec![]
            }
        );
        assert_eq!(r.waited, 11);
        assert_eq!(
            run(&[42], &[43], true).verdict,
            Verdict::Active {
                slot: 0,
                before: 42,
                after: 43
            }
        );
        assert_eq!(
            run(&[42], &[42], false).verdict,
            Verdict::NotWatched { slot: 0, value: 42 }
        );
        assert_eq!(
            run(&[value::VALID_CLUSTER], &[value::VALID_CLUSTER], true).verdict,
            Verdict::NoLiveness {
                slot: 0,
                value: value::VALID_CLUSTER
            }
        );
        assert_eq!(run(&[42], &[value::SEQ_CLEAN], true).verdict.exit_code(), 1);
    }

    #[test]
    fn same_kind() {
        assert_eq!(same_kind_rule(&map(&[0, 0])).last_mount, MountKind::None);
        let r = same_kind_rule(&map(&[7, 0]));
        assert_eq!(r.last_mount, MountKind::NonClustered);
        assert!(!r.cluster_mount_allowed && r.local_mount_allowed);
        let r = same_kind_rule(&map(&[value::VALID_CLUSTER, 0]));
        assert_eq!(r.last_mount, MountKind::Clustered);
        assert!(!r.local_mount_allowed);
        // FSCK in slot 0 looks clustered to the kernel's rule.
        assert!(!same_kind_rule(&map(&[value::SEQ_FSCK])).local_mount_allowed);
        // A sequence in slot 1 only: slot 0 is not the first used slot.
        assert!(!same_kind_rule(&map(&[0, 9])).local_mount_allowed);
        // The old map: 0xFFFF is an empty slot (sl_valid 0), a node number
        // is sl_valid 1 (OCFS2_SLOT_INFO_OLD_VALID).
        let old = |raws: &[u32]| SlotMap {
            format: ocfs2_format::slotmap::Format::Old,
            slots: raws
                .iter()
                .enumerate()
                .map(|(i, &raw)| ocfs2_format::slotmap::Slot {
                    index: i as u16,
                    raw,
                    node: raw,
                })
                .collect(),
        };
        assert_eq!(
            same_kind_rule(&old(&[0xFFFF, 0xFFFF])).last_mount,
            MountKind::None
        );
        assert_eq!(
            same_kind_rule(&old(&[0, 0xFFFF])).last_mount,
            MountKind::NonClustered
        );
        assert_eq!(
            same_kind_rule(&old(&[0xFFFF, 3])).last_mount,
            MountKind::Clustered
        );
    }
}
