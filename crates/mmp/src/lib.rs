//! The OCFS2 multiple mount protection protocol on the tool side: the
//! kernel's check (steps 2-4 of the protocol notes), the wait formula, the
//! same-kind rule of `ocfs2_find_slot`, and verdicts with the slot and value
//! that decided them. No printing, no command line: callers observe the
//! check through [`Observer`] and sleep through [`Clock`].

pub mod engine;

use ocfs2_format::slotmap::{value, MmpState, SlotMap};
use serde::Serialize;
use std::time::Duration;

/// The kernel's minimum check interval (`OCFS2_MMP_MIN_CHECK_INTERVAL`).
pub const MIN_CHECK_INTERVAL: u32 = 5;
/// Largest update interval the tools accept.
pub const MAX_UPDATE_INTERVAL: u16 = 300;
/// Update interval the tools write by default.
pub const DEFAULT_UPDATE_INTERVAL: u16 = 5;

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
}

/// The real clock.
pub struct SystemClock;
impl Clock for SystemClock {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
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
    /// Slots held sequences that did not move during a full wait: the mounts
    /// that wrote them are dead. Safe to mount (after journal recovery).
    Stale { slots: Vec<u16> },
    /// A sequence moved during the wait: a live non-clustered mount.
    Active { slot: u16, before: u32, after: u32 },
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
            Verdict::Active { .. } | Verdict::FsckRunning { .. } | Verdict::UnknownValue { .. } => {
                1
            }
            Verdict::NoLiveness { .. }
            | Verdict::ReadOnlyMount { .. }
            | Verdict::NotWatched { .. }
            | Verdict::FeatureOff
            | Verdict::Interrupted { .. } => 2,
        }
    }

    pub fn is_safe(&self) -> bool {
        self.exit_code() == 0
    }

    /// One sentence for people.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Clean => "safe to mount: no slot is in use".into(),
            Verdict::Stale { slots } => format!(
                "safe to mount: slot(s) {} held a sequence that did not move for a full wait (a mount that died; its journal needs recovery)",
                join(slots)
            ),
            Verdict::Active { slot, before, after } => format!(
                "in use: slot {slot} moved from {before:#010x} to {after:#010x} during the wait (a live mount on some node)"
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
                "cannot tell without waiting: slot {slot} holds sequence {value:#010x}; run without -i to watch whether it moves"
            ),
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
        let v = s.raw;
        let used = v != 0
            && v != value::SEQ_CLEAN
            && (v <= value::SEQ_MAX
                || v == value::SEQ_FSCK
                || v == value::VALID_CLUSTER
                || v == value::VALID_NOCLUSTER);
        used.then_some(s.index)
    })
}

/// Apply the kernel's same-kind rule to a slot map.
pub fn same_kind_rule(map: &SlotMap) -> SameKindRule {
    let first = kernel_first_used(map);
    let slot0 = map.slots.first().map_or(0, |s| s.raw);
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
}

/// Options of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Watch sequences for one wait time (the kernel's step 4). Without it,
    /// sequences give [`Verdict::NotWatched`].
    pub wait: bool,
    /// Check even when the feature bit is off (the slot map is read anyway).
    pub feature_on: bool,
}

/// Run the kernel's check over a slot map source: `read` re-reads the slot
/// map bypassing caches each time it is called.
pub fn check<E>(
    update_interval: u16,
    opts: CheckOptions,
    mut read: impl FnMut() -> Result<SlotMap, E>,
    clock: &mut dyn Clock,
    obs: &mut dyn Observer,
) -> Result<CheckReport, E> {
    let wt = wait_time(update_interval);
    let mut report = CheckReport {
        update_interval,
        check_interval: check_interval(update_interval),
        wait_time: wt,
        waited: 0,
        verdict: Verdict::Clean,
        first: None,
        last: None,
    };
    let map = read()?;
    report.first = Some(map.clone());
    report.last = Some(map.clone());
    if !opts.feature_on {
        report.verdict = Verdict::FeatureOff;
        return Ok(report);
    }
    if let Some(v) = static_verdict(&map) {
        report.verdict = v;
        return Ok(report);
    }
    let seqs: Vec<(u16, u32)> = map
        .slots
        .iter()
        .filter(|s| matches!(MmpState::decode(s.raw), MmpState::Sequence(_)))
        .map(|s| (s.index, s.raw))
        .collect();
    if !seqs.is_empty() {
        if !opts.wait {
            report.verdict = Verdict::NotWatched {
                slot: seqs[0].0,
                value: seqs[0].1,
            };
            return Ok(report);
        }
        let why = format!(
            "slot {} holds sequence {:#010x}: watching for {wt} s (the kernel's wait) whether a live mount updates it",
            seqs[0].0, seqs[0].1
        );
        obs.waiting(wt, &why);
        for left in (0..wt).rev() {
            clock.sleep(Duration::from_secs(1));
            report.waited += 1;
            if let Some(signal) = obs.interrupted() {
                report.verdict = Verdict::Interrupted { signal };
                return Ok(report);
            }
            obs.tick(left);
        }
        let after = read()?;
        report.last = Some(after.clone());
        // Any change of any slot during the wait means someone is active.
        for (b, a) in map.slots.iter().zip(&after.slots) {
            if b.raw != a.raw {
                report.verdict = Verdict::Active {
                    slot: b.index,
                    before: b.raw,
                    after: a.raw,
                };
                return Ok(report);
            }
        }
        if let Some(v) = static_verdict(&after) {
            report.verdict = v;
            return Ok(report);
        }
    }
    if let Some(s) = map.slots.iter().find(|s| {
        matches!(
            MmpState::decode(s.raw),
            MmpState::Cluster | MmpState::Nocluster
        )
    }) {
        report.verdict = Verdict::NoLiveness {
            slot: s.index,
            value: s.raw,
        };
        return Ok(report);
    }
    report.verdict = if seqs.is_empty() {
        Verdict::Clean
    } else {
        Verdict::Stale {
            slots: seqs.iter().map(|s| s.0).collect(),
        }
    };
    Ok(report)
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
    use ocfs2_format::slotmap::{Format, Slot};
    use std::cell::RefCell;

    struct FakeClock(u32);
    impl Clock for FakeClock {
        fn sleep(&mut self, d: Duration) {
            self.0 += d.as_secs() as u32;
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

    fn run(first: &[u32], second: &[u32], wait: bool) -> CheckReport {
        let reads = RefCell::new(vec![map(second), map(first)]);
        let mut clock = FakeClock(0);
        check::<()>(
            5,
            CheckOptions {
                wait,
                feature_on: true,
            },
            || Ok(reads.borrow_mut().pop().unwrap_or_else(|| map(second))),
            &mut clock,
            &mut Silent,
        )
        .unwrap()
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
        assert_eq!(r.verdict, Verdict::Stale { slots: vec![0] });
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
    }
}
