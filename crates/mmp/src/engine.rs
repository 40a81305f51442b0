//! The writing half of the protocol: a guard that holds a volume for a tool
//! (marker in slot 0, a wait to prove nobody races, a safe value put back at
//! the end), and a heartbeat that behaves like the kernel's `kmmpd`.
//!
//! Every write goes through [`SlotIo`], whose implementation for a volume
//! bypasses the page cache; before every write the slot is re-read to prove
//! it still holds what this process last wrote, so another node's value is
//! never overwritten.

use crate::liveness::HbOptions;
use crate::{check, wait_time, CheckOptions, Clock, Observer, Verdict};
use ocfs2_format::features::incompat;
use ocfs2_format::fs::SlotMapRuns;
use ocfs2_format::heartbeat::HbBlock;
use ocfs2_format::slotmap::Format;
use ocfs2_format::slotmap::{value, SlotMap};
use ocfs2_format::Volume;
use std::time::{Duration, Instant};

/// Slot-map access, uncached.
pub trait SlotIo {
    fn read(&self) -> ocfs2_format::Result<SlotMap>;
    fn write(&self, slot: u16, raw: u32, node: u32) -> ocfs2_format::Result<()>;

    /// The o2hb heartbeat blocks, uncached (none where no node heartbeats).
    fn heartbeat(&self) -> ocfs2_format::Result<Vec<HbBlock>> {
        Ok(Vec::new())
    }

    /// Write `raw` into `slot` only if a fresh read shows it still holds
    /// `expected` (what this process wrote or saw last): another node's
    /// value is never overwritten.
    fn write_if(&self, slot: u16, expected: u32, raw: u32, node: u32) -> Result<(), EngineError> {
        let found = self
            .read()?
            .slots
            .get(usize::from(slot))
            .map_or(0, |s| s.raw);
        if found != expected {
            return Err(EngineError::ForeignWrite {
                slot,
                expected,
                found,
            });
        }
        self.write(slot, raw, node)?;
        Ok(())
    }
}

/// The slot map of an opened volume, through `O_DIRECT`.
pub struct VolumeSlots<'a> {
    vol: &'a Volume,
    runs: SlotMapRuns,
}

impl<'a> VolumeSlots<'a> {
    pub fn new(vol: &'a Volume) -> ocfs2_format::Result<Self> {
        let (_, runs) = vol.slot_map_layout()?;
        Ok(VolumeSlots { vol, runs })
    }
}

impl SlotIo for VolumeSlots<'_> {
    fn read(&self) -> ocfs2_format::Result<SlotMap> {
        self.vol.read_slot_map_runs(&self.runs)
    }
    fn write(&self, slot: u16, raw: u32, node: u32) -> ocfs2_format::Result<()> {
        self.vol.write_slot(&self.runs, slot, raw, node)
    }
    fn heartbeat(&self) -> ocfs2_format::Result<Vec<HbBlock>> {
        self.vol.heartbeat_area()
    }
}

/// How a check should watch a volume's heartbeat: not at all on a local
/// volume (`-M local`: no node heartbeats), for the nodes the slots name on
/// an MMP volume with the extended slot map, and for every node where the
/// slot values cannot be trusted (MMP off, old slot map).
pub fn hb_options(vol: &Volume, window: Option<u32>) -> Option<HbOptions> {
    let f = vol.features();
    if f.has_incompat(incompat::LOCAL_MOUNT) {
        return None;
    }
    let trusted = f.has_incompat(incompat::MMP) && vol.slot_map_format() == Format::Extended;
    Some(HbOptions {
        window,
        all_nodes: !trusted,
    })
}

/// On a cluster-capable volume without MMP, the slot map says little (a
/// stock kernel's flag, a patched `nocluster` mount's constant): watch every
/// node's o2hb heartbeat instead. `None` on a local volume, or when no node
/// ever heartbeated on this one (then there is nothing to wait for); else
/// the check's report, whose verdict is `Heartbeating` or `Active` when a
/// node is live, `FeatureOff` otherwise.
pub fn watch_without_mmp(
    vol: &Volume,
    window: Option<u32>,
    clock: &mut dyn Clock,
    obs: &mut dyn Observer,
) -> ocfs2_format::Result<Option<crate::CheckReport>> {
    let Some(hb) = hb_options(vol, window) else {
        return Ok(None);
    };
    let io = VolumeSlots::new(vol)?;
    let report = check(
        vol.sb().s_mmp_update_interval.get(),
        CheckOptions {
            wait: true,
            feature_on: false,
            hb: Some(hb),
        },
        &io,
        clock,
        obs,
    )?;
    Ok(Some(report))
}

/// Asks whether the process was told to stop (SIGINT, SIGTERM, SIGHUP).
pub trait Interrupt {
    /// The signal number, once one has arrived.
    fn pending(&self) -> Option<i32>;
}

impl<F: Fn() -> Option<i32>> Interrupt for F {
    fn pending(&self) -> Option<i32> {
        self()
    }
}

/// Never interrupted.
pub struct NoInterrupt;
impl Interrupt for NoInterrupt {
    fn pending(&self) -> Option<i32> {
        None
    }
}

/// Why the engine stopped or refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the volume is in use: {}", .0.describe())]
    InUse(Verdict),
    #[error("slot {slot} changed to {found:#010x} while this tool waited (expected {expected:#010x}): another node is racing for the volume")]
    Raced {
        slot: u16,
        expected: u32,
        found: u32,
    },
    #[error("slot {slot} holds {found:#010x}, not {expected:#010x} that this tool wrote: another node wrote it; not overwriting")]
    ForeignWrite {
        slot: u16,
        expected: u32,
        found: u32,
    },
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    #[error(transparent)]
    Io(#[from] ocfs2_format::Error),
}

/// Sleep `secs` seconds in small steps, giving up when interrupted.
fn sleep_checked(
    secs: u32,
    clock: &mut dyn Clock,
    obs: &mut dyn Observer,
    intr: &dyn Interrupt,
) -> Result<(), EngineError> {
    for left in (0..secs).rev() {
        clock.sleep(Duration::from_secs(1));
        if let Some(sig) = intr.pending() {
            return Err(EngineError::Interrupted(sig));
        }
        obs.tick(left);
    }
    Ok(())
}

/// The slot the tools use: the kernel's local and `nocluster` mounts always
/// take slot 0, so a marker there is what a mount meets first.
pub const TOOL_SLOT: u16 = 0;

/// A volume held for a tool: `marker` (normally `SEQ_FSCK`) sits in slot 0,
/// so every mount fails while the guard lives. Dropping the guard, or
/// [`Guard::release`], puts back `0` (what a clean unmount leaves), but only
/// if slot 0 still holds the marker.
pub struct Guard<'a> {
    io: &'a dyn SlotIo,
    marker: u32,
    node: u32,
    /// Slot 0's value before the marker went in.
    original: u32,
    released: bool,
    /// Seconds waited in total while acquiring.
    pub waited: u32,
}

impl<'a> Guard<'a> {
    /// The kernel's check (with its wait), then the marker, then one more
    /// wait to prove that no other node raced for the volume.
    pub fn acquire(
        io: &'a dyn SlotIo,
        update_interval: u16,
        hb: Option<HbOptions>,
        marker: u32,
        clock: &mut dyn Clock,
        obs: &mut dyn Observer,
        intr: &dyn Interrupt,
    ) -> Result<Guard<'a>, EngineError> {
        let report = check(
            update_interval,
            CheckOptions {
                wait: true,
                feature_on: true,
                hb,
            },
            io,
            clock,
            obs,
        )?;
        if let Some(sig) = intr.pending() {
            return Err(EngineError::Interrupted(sig));
        }
        if let Verdict::Interrupted { signal } = report.verdict {
            return Err(EngineError::Interrupted(signal));
        }
        if !report.verdict.is_safe() {
            return Err(EngineError::InUse(report.verdict));
        }
        let before = io.read()?;
        let last = report.last.as_ref().unwrap_or(&before);
        if let Some((b, a)) = last
            .slots
            .iter()
            .zip(&before.slots)
            .find(|(b, a)| b.raw != a.raw)
        {
            return Err(EngineError::Raced {
                slot: b.index,
                expected: b.raw,
                found: a.raw,
            });
        }
        let node = before.slots.first().map_or(0, |s| s.node);
        let original = before.slots.first().map_or(0, |s| s.raw);
        io.write(TOOL_SLOT, marker, node)?;
        let mut guard = Guard {
            original,
            io,
            marker,
            node,
            released: false,
            waited: report.waited,
        };
        let wt = wait_time(update_interval);
        obs.waiting(wt, &format!("wrote {marker:#010x} into slot {TOOL_SLOT}: watching for {wt} s that no other node races for the volume"));
        sleep_checked(wt, clock, obs, intr)?;
        guard.waited += wt;
        let after = io.read()?;
        let found = after.slots.first().map_or(0, |s| s.raw);
        if found != marker {
            // Someone overwrote our marker: it is theirs now; leave it.
            guard.released = true;
            return Err(EngineError::Raced {
                slot: TOOL_SLOT,
                expected: marker,
                found,
            });
        }
        if let Some((b, a)) = before
            .slots
            .iter()
            .zip(&after.slots)
            .skip(1)
            .find(|(b, a)| b.raw != a.raw)
        {
            return Err(EngineError::Raced {
                slot: b.index,
                expected: b.raw,
                found: a.raw,
            });
        }
        Ok(guard)
    }

    /// The marker this guard holds.
    pub fn marker(&self) -> u32 {
        self.marker
    }

    /// Re-read slot 0 and confirm it still holds the marker.
    pub fn verify(&self) -> Result<(), EngineError> {
        let now = self.io.read()?;
        let found = now.slots.first().map_or(0, |s| s.raw);
        if found != self.marker {
            return Err(EngineError::ForeignWrite {
                slot: TOOL_SLOT,
                expected: self.marker,
                found,
            });
        }
        Ok(())
    }

    /// Slot 0's value before the guard wrote its marker (0, `SEQ_CLEAN`,
    /// or the sequence of a mount that died).
    pub fn original(&self) -> u32 {
        self.original
    }

    /// Put back what a clean unmount leaves, `0`, in slot 0 if it still
    /// holds the marker; but a dead clustered node's `VALID_CLUSTER` goes
    /// back as it was: its journal still waits for a clustered mount to
    /// replay it, and the kernel replays only the journals of held slots.
    pub fn release(self) -> Result<(), EngineError> {
        let back = if self.original == value::VALID_CLUSTER {
            value::VALID_CLUSTER
        } else {
            value::EMPTY
        };
        self.release_to(back)
    }

    /// Put `raw` into slot 0 if it still holds the marker.
    pub fn release_to(mut self, raw: u32) -> Result<(), EngineError> {
        self.released = true;
        self.io.write_if(TOOL_SLOT, self.marker, raw, self.node)
    }

    /// Give up the guard without touching the slot map (the marker stays),
    /// for callers that must leave it, e.g. after an unexplained failure.
    pub fn leak(mut self) {
        self.released = true;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.released {
            if let Ok(now) = self.io.read() {
                if now.slots.first().is_some_and(|s| s.raw == self.marker) {
                    // On an error or a signal, put back what was there: a
                    // dead mount's sequence keeps meaning "recover me".
                    let back = match ocfs2_format::slotmap::MmpState::decode(self.original) {
                        ocfs2_format::slotmap::MmpState::Sequence(s) => s,
                        ocfs2_format::slotmap::MmpState::Cluster => value::VALID_CLUSTER,
                        _ => value::EMPTY,
                    };
                    let _ = self.io.write(TOOL_SLOT, back, self.node);
                }
            }
        }
    }
}

/// How a heartbeat ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatEnd {
    /// Updates written after the first sequence.
    pub updates: u64,
    pub last_seq: u32,
    /// The signal that stopped it, if any.
    pub signal: Option<i32>,
}

/// Something that observes heartbeat updates.
pub trait BeatObserver: Observer {
    fn beat(&mut self, _seq: u32) {}
}

/// A new random sequence in `1..=SEQ_MAX` (`mmp_new_seq`).
pub fn new_seq() -> u32 {
    loop {
        let s: u32 = rand::random();
        if (1..=value::SEQ_MAX).contains(&s) {
            return s;
        }
    }
}

/// Hold the volume like a live non-clustered MMP mount: the kernel's check,
/// a new random sequence, the wait, then sequence + 1 every
/// `update_interval` seconds, re-reading before each write to detect a
/// foreign one. Stops after `run_for` or on a signal, and then writes `0`
/// (what a clean unmount leaves) if the slot is still ours.
pub fn heartbeat(
    io: &dyn SlotIo,
    update_interval: u16,
    hb: Option<HbOptions>,
    run_for: Option<Duration>,
    clock: &mut dyn Clock,
    obs: &mut dyn BeatObserver,
    intr: &dyn Interrupt,
) -> Result<HeartbeatEnd, EngineError> {
    let report = check(
        update_interval,
        CheckOptions {
            wait: true,
            feature_on: true,
            hb,
        },
        io,
        clock,
        obs,
    )?;
    if let Verdict::Interrupted { signal } = report.verdict {
        return Err(EngineError::Interrupted(signal));
    }
    if !report.verdict.is_safe() {
        return Err(EngineError::InUse(report.verdict));
    }
    // The slot map must still be what the check decided on.
    let before = io.read()?;
    if let Some(last) = &report.last {
        if let Some((b, a)) = last
            .slots
            .iter()
            .zip(&before.slots)
            .find(|(b, a)| b.raw != a.raw)
        {
            return Err(EngineError::Raced {
                slot: b.index,
                expected: b.raw,
                found: a.raw,
            });
        }
    }
    let node = before.slots.first().map_or(0, |s| s.node);
    let mut seq = new_seq();
    io.write(TOOL_SLOT, seq, node)?;
    obs.beat(seq);
    let wt = wait_time(update_interval);
    obs.waiting(wt, &format!("wrote sequence {seq:#010x} into slot {TOOL_SLOT}: watching for {wt} s that no other node races"));
    let end_of = |seq: u32, updates: u64, signal| HeartbeatEnd {
        updates,
        last_seq: seq,
        signal,
    };
    let stop_clean = |seq: u32| io.write_if(TOOL_SLOT, seq, value::EMPTY, node);
    if let Err(e) = sleep_checked(wt, clock, obs, intr) {
        if let EngineError::Interrupted(sig) = e {
            stop_clean(seq)?;
            return Ok(end_of(seq, 0, Some(sig)));
        }
        return Err(e);
    }
    let found = io.read()?.slots.first().map_or(0, |s| s.raw);
    if found != seq {
        return Err(EngineError::Raced {
            slot: TOOL_SLOT,
            expected: seq,
            found,
        });
    }
    let start = Instant::now();
    let step = Duration::from_millis(100);
    let interval = Duration::from_secs(u64::from(update_interval.max(1)));
    let mut updates = 0u64;
    loop {
        // Sleep one interval in small steps, watching for signals and the end.
        let mut slept = Duration::ZERO;
        while slept < interval {
            if let Some(sig) = intr.pending() {
                stop_clean(seq)?;
                return Ok(end_of(seq, updates, Some(sig)));
            }
            if run_for.is_some_and(|d| start.elapsed() >= d) {
                stop_clean(seq)?;
                return Ok(end_of(seq, updates, None));
            }
            clock.sleep(step);
            slept += step;
        }
        let next = if seq >= value::SEQ_MAX { 1 } else { seq + 1 };
        io.write_if(TOOL_SLOT, seq, next, node)?;
        seq = next;
        updates += 1;
        obs.beat(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocfs2_format::slotmap::{Format, Slot};
    use std::cell::RefCell;

    /// An in-memory slot map; `on_sleep` lets a test act as another node.
    struct Fake {
        slots: RefCell<Vec<u32>>,
    }
    impl SlotIo for Fake {
        fn read(&self) -> ocfs2_format::Result<SlotMap> {
            Ok(SlotMap {
                format: Format::Extended,
                slots: self
                    .slots
                    .borrow()
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Slot {
                        index: i as u16,
                        raw: v,
                        node: 0,
                    })
                    .collect(),
            })
        }
        fn write(&self, slot: u16, raw: u32, _node: u32) -> ocfs2_format::Result<()> {
            self.slots.borrow_mut()[usize::from(slot)] = raw;
            Ok(())
        }
    }

    struct Tick<'a> {
        fake: &'a Fake,
        n: u32,
        at: u32,
        write: Option<(usize, u32)>,
    }
    impl Clock for Tick<'_> {
        fn now(&mut self) -> Duration {
            Duration::from_secs(u64::from(self.n))
        }
        fn sleep(&mut self, _d: Duration) {
            self.n += 1;
            if self.n == self.at {
                if let Some((s, v)) = self.write {
                    self.fake.slots.borrow_mut()[s] = v;
                }
            }
        }
    }

    struct Quiet;
    impl Observer for Quiet {}
    impl BeatObserver for Quiet {}

    #[test]
    fn guard_marks_and_restores() {
        let fake = Fake {
            slots: RefCell::new(vec![0, 0, 0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 0,
            write: None,
        };
        let g = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        assert_eq!(g.waited, 11, "always waits after writing its marker");
        assert_eq!(fake.slots.borrow()[0], value::SEQ_FSCK);
        g.release().unwrap();
        assert_eq!(fake.slots.borrow()[0], 0);
    }

    #[test]
    fn guard_puts_back_a_dead_clustered_nodes_value() {
        let fake = Fake {
            slots: RefCell::new(vec![value::VALID_CLUSTER, 0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 0,
            write: None,
        };
        // No heartbeat options: the test only exercises the release; a
        // VALID_CLUSTER slot is then "cannot tell", so stage it after.
        let g = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        );
        assert!(matches!(
            g,
            Err(EngineError::InUse(Verdict::NoLiveness { .. }))
        ));
        *fake.slots.borrow_mut() = vec![0, 0];
        let g = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        // Stage "slot 0 held VALID_CLUSTER before the marker" (the
        // original guard, shadowed, finds slot 0 no longer its marker when
        // it drops, and leaves it).
        let g = Guard {
            original: value::VALID_CLUSTER,
            ..g
        };
        g.release().unwrap();
        assert_eq!(fake.slots.borrow()[0], value::VALID_CLUSTER);
    }

    #[test]
    fn guard_restores_on_drop() {
        let fake = Fake {
            slots: RefCell::new(vec![0, 0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 0,
            write: None,
        };
        {
            let _g = Guard::acquire(
                &fake,
                5,
                None,
                value::SEQ_FSCK,
                &mut clock,
                &mut Quiet,
                &NoInterrupt,
            )
            .unwrap();
            assert_eq!(fake.slots.borrow()[0], value::SEQ_FSCK);
        }
        assert_eq!(fake.slots.borrow()[0], 0);
    }

    #[test]
    fn guard_refuses_fsck_and_races() {
        let fake = Fake {
            slots: RefCell::new(vec![value::SEQ_FSCK, 0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 0,
            write: None,
        };
        assert!(matches!(
            Guard::acquire(
                &fake,
                5,
                None,
                value::SEQ_FSCK,
                &mut clock,
                &mut Quiet,
                &NoInterrupt
            ),
            Err(EngineError::InUse(Verdict::FsckRunning { slot: 0 }))
        ));
        // Another node writes slot 0 during our wait: we must not restore over it.
        let fake = Fake {
            slots: RefCell::new(vec![0, 0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 3,
            write: Some((0, 1234)),
        };
        let r = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        );
        assert!(matches!(
            r,
            Err(EngineError::Raced {
                slot: 0,
                found: 1234,
                ..
            })
        ));
        assert_eq!(fake.slots.borrow()[0], 1234, "the other node's value stays");
    }

    #[test]
    fn heartbeat_moves_and_stops_clean() {
        let fake = Fake {
            slots: RefCell::new(vec![0]),
        };
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 0,
            write: None,
        };
        // run_for = 0: it stops at the first chance after the wait.
        let end = heartbeat(
            &fake,
            1,
            None,
            Some(Duration::ZERO),
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        assert_eq!(end.updates, 0);
        assert_eq!(fake.slots.borrow()[0], 0, "a clean stop leaves 0");
    }

    #[test]
    fn heartbeat_detects_a_foreign_write() {
        let fake = Fake {
            slots: RefCell::new(vec![0]),
        };
        // After the 11 one-second ticks of the wait, the 5th 100 ms step writes.
        let mut clock = Tick {
            fake: &fake,
            n: 0,
            at: 16,
            write: Some((0, 0x77)),
        };
        let r = heartbeat(&fake, 1, None, None, &mut clock, &mut Quiet, &NoInterrupt);
        assert!(
            matches!(r, Err(EngineError::ForeignWrite { found: 0x77, .. })),
            "{r:?}"
        );
        assert_eq!(fake.slots.borrow()[0], 0x77);
    }
}
