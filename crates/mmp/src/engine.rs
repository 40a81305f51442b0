//! The writing half of the protocol: a guard that holds a volume for a tool
//! (marker in slot 0, a wait to prove nobody races, a safe value put back at
//! the end), and a heartbeat that behaves like the kernel's `kmmpd`.
//!
//! Every write goes through [`SlotIo`], whose implementation for a volume
//! bypasses the page cache; before every write the slot is re-read to prove
//! it still holds what this process last wrote, so another node's value is
//! never overwritten.

use crate::liveness::HbOptions;
use crate::{check, CheckOptions, Clock, Observer, Verdict};
use ocfs2_format::features::incompat;
use ocfs2_format::fs::SlotMapRuns;
use ocfs2_format::heartbeat::HbBlock;
use ocfs2_format::slotmap::Format;
use ocfs2_format::slotmap::{value, SlotMap};
use ocfs2_format::Volume;
use std::time::{Duration, Instant};

pub use crate::guard::{hook, Guard};

/// Slot-map access, uncached.
pub trait SlotIo {
    fn read(&self) -> ocfs2_format::Result<SlotMap>;
    fn write(&self, slot: u16, raw: u32, node: u32) -> ocfs2_format::Result<()>;

    /// The o2hb heartbeat blocks, uncached (none where no node heartbeats).
    fn heartbeat(&self) -> ocfs2_format::Result<Vec<HbBlock>> {
        Ok(Vec::new())
    }

    /// Whether `slot`'s journal is marked dirty (a mount that is live or
    /// died; its log waits for replay), read uncached.
    fn journal_dirty(&self, _slot: u16) -> ocfs2_format::Result<bool> {
        Ok(false)
    }

    /// Write `raw`/`node` into `slot` only if a fresh read shows the whole
    /// entry, value and node field, as `expected` (a holder of `SEQ_FSCK`
    /// shows it is alive by its node field alone).
    fn write_if_entry(
        &self,
        slot: u16,
        expected: (u32, u32),
        raw: u32,
        node: u32,
    ) -> Result<(), EngineError> {
        let found = entry(self, slot)?;
        if found != expected {
            return Err(EngineError::ForeignWrite {
                slot,
                expected: expected.0,
                found: found.0,
            });
        }
        self.write(slot, raw, node)?;
        Ok(())
    }

    /// Write `raw` into `slot` only if a fresh read shows it still holds
    /// `expected` (what this process wrote or saw last): another node's
    /// value is never overwritten.
    fn write_if(&self, slot: u16, expected: u32, raw: u32, node: u32) -> Result<(), EngineError> {
        let (found, _) = entry(self, slot)?;
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

/// `slot`'s `(value, node)` from a fresh read (`(0, 0)` past the map).
fn entry<S: SlotIo + ?Sized>(io: &S, slot: u16) -> ocfs2_format::Result<(u32, u32)> {
    Ok(io
        .read()?
        .slots
        .get(usize::from(slot))
        .map_or((0, 0), |s| (s.raw, s.node)))
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

    /// Device byte offset and length of `slot`'s entry.
    pub fn entry_offset(&self, slot: u16) -> Option<(u64, usize)> {
        let len = self.vol.slot_map_format().entry_size();
        let off = u64::from(slot) * len as u64;
        self.runs
            .iter()
            .find(|&&(foff, _, n)| off >= foff && off + len as u64 <= foff + n as u64)
            .map(|&(foff, dev_off, _)| (dev_off + (off - foff), len))
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
    fn journal_dirty(&self, slot: u16) -> ocfs2_format::Result<bool> {
        self.vol.journal_dirty(slot)
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
    #[error("{}", .0.refusal())]
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
    #[error("slot 0 no longer holds this tool's marker (it holds {found:#010x}, node {node}): another node or tool wrote slot 0; nothing more is written")]
    MarkerLost { found: u32, node: u32 },
    #[error("the keep-alive could not re-read or write slot 0 ({0}): this tool's hold can no longer be shown to other nodes; stopping without writing")]
    KeepAlive(String),
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    #[error(transparent)]
    Io(#[from] ocfs2_format::Error),
}

/// The slot the tools use: the kernel's local and `nocluster` mounts always
/// take slot 0, so a marker there is what a mount meets first.
pub const TOOL_SLOT: u16 = 0;

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
    let own = match crate::guard::take_with_own_sequence(io, update_interval, hb, clock, obs, intr)
    {
        Ok((own, _)) => own,
        // Stopped while proving its sequence: slot 0 is given back; a clean
        // stop, as after the wait.
        Err(EngineError::Interrupted(sig)) => {
            return Ok(HeartbeatEnd {
                updates: 0,
                last_seq: 0,
                signal: Some(sig),
            })
        }
        Err(e) => return Err(e),
    };
    let node = own.node;
    let end_of = |seq: u32, updates: u64, signal| HeartbeatEnd {
        updates,
        last_seq: seq,
        signal,
    };
    let stop_clean = |seq: u32| {
        crate::guard::hook::releasing();
        io.write_if(TOOL_SLOT, seq, value::EMPTY, node)
    };
    // Like kmmpd right after the mount's wait: the first update at once,
    // so a watcher sees the sequence move from the start.
    let mut seq = next_seq(own.seq);
    io.write_if(TOOL_SLOT, own.seq, seq, node)?;
    crate::guard::hook::acquired();
    obs.beat(seq);
    let start = Instant::now();
    let step = Duration::from_millis(100);
    let interval = Duration::from_secs(u64::from(update_interval.max(1)));
    let mut updates = 1u64;
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
        let next = next_seq(seq);
        if let Err(e) = io.write_if(TOOL_SLOT, seq, next, node) {
            if matches!(e, EngineError::ForeignWrite { .. }) {
                crate::guard::hook::lost();
            }
            return Err(e);
        }
        seq = next;
        updates += 1;
        obs.beat(seq);
    }
}

/// kmmpd's next sequence: one more, wrapping from `SEQ_MAX` to 1.
pub(crate) fn next_seq(seq: u32) -> u32 {
    if seq >= value::SEQ_MAX {
        1
    } else {
        seq + 1
    }
}

/// An in-memory slot map and a clock that lets a test act as another node
/// at a given tick, shared by the engine's and the guard's unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use ocfs2_format::slotmap::{Format, Slot};
    use std::sync::Mutex;

    pub struct Fake {
        pub slots: Mutex<Vec<(u32, u32)>>,
        pub format: Format,
        pub dirty: bool,
        /// Every read fails while set (a path failing over, a dying disk).
        pub broken: std::sync::atomic::AtomicBool,
    }
    impl Fake {
        pub fn new(values: &[u32]) -> Self {
            Fake {
                slots: Mutex::new(values.iter().map(|&v| (v, 0)).collect()),
                format: Format::Extended,
                dirty: false,
                broken: std::sync::atomic::AtomicBool::new(false),
            }
        }
        pub fn get(&self, slot: usize) -> (u32, u32) {
            self.slots.lock().unwrap()[slot]
        }
        pub fn set(&self, slot: usize, raw: u32, node: u32) {
            self.slots.lock().unwrap()[slot] = (raw, node);
        }
    }
    impl SlotIo for Fake {
        fn read(&self) -> ocfs2_format::Result<SlotMap> {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(ocfs2_format::Error::Read {
                    offset: 0,
                    len: 8,
                    source: std::io::Error::other("broken"),
                });
            }
            Ok(SlotMap {
                format: self.format,
                slots: self
                    .slots
                    .lock()
                    .unwrap()
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
        fn write(&self, slot: u16, raw: u32, node: u32) -> ocfs2_format::Result<()> {
            self.set(usize::from(slot), raw, node);
            Ok(())
        }
        fn journal_dirty(&self, _slot: u16) -> ocfs2_format::Result<bool> {
            Ok(self.dirty)
        }
    }

    /// A clock whose every sleep is one tick; at tick `at` it runs `act`.
    pub struct Tick<'a> {
        pub n: u32,
        pub at: u32,
        pub act: Option<Box<dyn FnMut() + 'a>>,
    }
    impl<'a> Tick<'a> {
        pub fn plain() -> Self {
            Tick {
                n: 0,
                at: 0,
                act: None,
            }
        }
        pub fn at(at: u32, act: impl FnMut() + 'a) -> Self {
            Tick {
                n: 0,
                at,
                act: Some(Box::new(act)),
            }
        }
    }
    impl Clock for Tick<'_> {
        fn now(&mut self) -> Duration {
            Duration::from_secs(u64::from(self.n))
        }
        fn sleep(&mut self, _d: Duration) {
            self.n += 1;
            if self.n == self.at {
                if let Some(a) = self.act.as_mut() {
                    a();
                }
            }
        }
    }

    pub struct Quiet;
    impl Observer for Quiet {}
    impl BeatObserver for Quiet {}
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;

    #[test]
    fn heartbeat_moves_at_once_and_stops_clean() {
        let fake = Fake::new(&[0]);
        let seen = std::cell::Cell::new(0);
        // Tick 3 of the 11 s proof wait: its own sequence, not moved yet.
        let mut clock = Tick::at(3, || seen.set(fake.get(0).0));
        // run_for = 0: it stops at the first chance after the wait.
        let end = heartbeat(
            &fake,
            5,
            None,
            Some(Duration::ZERO),
            &mut clock,
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        assert_eq!(end.updates, 1, "one update right after the wait");
        // Moved at 5 and 10 s of the proof wait, then once right after it.
        assert_eq!(end.last_seq, seen.get() + 3);
        assert_eq!(fake.get(0).0, 0, "a clean stop leaves 0");
    }

    #[test]
    fn heartbeat_detects_a_foreign_write() {
        let fake = Fake::new(&[0]);
        // After the 11 one-second ticks of the wait, the 5th 100 ms step writes.
        let mut clock = Tick::at(16, || fake.set(0, 0x77, 0));
        let r = heartbeat(&fake, 1, None, None, &mut clock, &mut Quiet, &NoInterrupt);
        assert!(
            matches!(r, Err(EngineError::ForeignWrite { found: 0x77, .. })),
            "{r:?}"
        );
        assert_eq!(fake.get(0).0, 0x77);
    }

    #[test]
    fn heartbeat_loses_a_race_for_its_own_sequence() {
        let fake = Fake::new(&[0]);
        let mut clock = Tick::at(5, || fake.set(0, 0x1234, 0));
        let r = heartbeat(&fake, 5, None, None, &mut clock, &mut Quiet, &NoInterrupt);
        assert!(
            matches!(r, Err(EngineError::Raced { found: 0x1234, .. })),
            "{r:?}"
        );
        assert_eq!(fake.get(0).0, 0x1234, "the other writer's value stays");
    }
}
