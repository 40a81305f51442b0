//! The guard a tool holds a volume with while it writes (tunefs, fsck,
//! mkfs over an existing volume), in the manner of e2fsprogs' `mmp.c`:
//!
//! 1. the kernel's check, with its wait;
//! 2. a fresh random sequence in slot 0, a value only this process wrote,
//!    then one more wait and a re-read: of several tools (or a tool and a
//!    mount) that started together, only the last writer finds its own
//!    value, and every other one backs off without writing again;
//! 3. `SEQ_FSCK` over that sequence: every mount now fails;
//! 4. while the work runs ([`Guard::hold`]), a keep-alive re-reads slot 0
//!    once per update interval and moves its node field, so that a watcher
//!    (`--clear-mmp`) can tell a live holder from a killed one; a marker
//!    found gone is recorded, and [`Guard::verify`], called before each
//!    batch of writes, then stops the tool without writing;
//! 5. release: slot 0 gets back what the volume needs, if it still holds the
//!    marker as this guard last left it.

use crate::engine::{new_seq, EngineError, Interrupt, SlotIo, TOOL_SLOT};
use crate::liveness::HbOptions;
use crate::{check, wait_time, CheckOptions, Clock, Observer, Verdict};
use ocfs2_format::slotmap::{value, MmpState, SlotMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What the keep-alive and the writers share.
#[derive(Debug, Clone)]
struct Beat {
    /// The node field this guard last wrote beside its marker.
    node: u32,
    /// Why the hold is over, once it is.
    lost: Option<Lost>,
}

/// Why a guard no longer holds the volume.
#[derive(Debug, Clone)]
enum Lost {
    /// Slot 0 was found holding `(value, node)`, not the marker as left.
    Taken { found: u32, node: u32 },
    /// The keep-alive could not read or write slot 0: the hold can no
    /// longer be shown to a watcher, who may soon call it dead.
    Unreachable(String),
}

impl Lost {
    fn error(&self) -> EngineError {
        match self {
            Lost::Taken { found, node } => EngineError::MarkerLost {
                found: *found,
                node: *node,
            },
            Lost::Unreachable(e) => EngineError::KeepAlive(e.clone()),
        }
    }
}

/// A volume held for a tool; see the module notes.
pub struct Guard<'a> {
    io: &'a (dyn SlotIo + Sync),
    marker: u32,
    /// Slot 0's node field before the guard, put back on release.
    node: u32,
    /// Slot 0's value before the guard.
    original: u32,
    interval: u16,
    beat: Mutex<Beat>,
    released: bool,
    /// Seconds waited in total while acquiring.
    pub waited: u32,
}

impl<'a> Guard<'a> {
    /// Take the volume: the check, a sequence of our own proved by a wait,
    /// then `marker` (normally `SEQ_FSCK`).
    pub fn acquire(
        io: &'a (dyn SlotIo + Sync),
        update_interval: u16,
        hb: Option<HbOptions>,
        marker: u32,
        clock: &mut dyn Clock,
        obs: &mut dyn Observer,
        intr: &dyn Interrupt,
    ) -> Result<Guard<'a>, EngineError> {
        let (own, waited) = take_with_own_sequence(io, update_interval, hb, clock, obs, intr)?;
        // The sequence is ours and proved: the marker replaces it, with a
        // node field of our own (never inherited: a stalled holder of an
        // earlier marker must not find this one matching its own).
        let start: u32 = rand::random();
        io.write_if(TOOL_SLOT, own.seq, marker, start)?;
        hook::acquired();
        Ok(Guard {
            io,
            marker,
            node: own.node,
            original: own.original,
            interval: update_interval,
            beat: Mutex::new(Beat {
                node: start,
                lost: None,
            }),
            released: false,
            waited,
        })
    }

    /// The marker this guard holds.
    pub fn marker(&self) -> u32 {
        self.marker
    }

    /// Slot 0's value before the guard (0, `SEQ_CLEAN`, a dead mount's
    /// sequence, a dead clustered node's `VALID_CLUSTER`).
    pub fn original(&self) -> u32 {
        self.original
    }

    fn lock(&self) -> MutexGuard<'_, Beat> {
        self.beat.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compare slot 0 with what this guard last left there; record a loss.
    fn still_ours(&self, b: &mut Beat) -> Result<(), EngineError> {
        if let Some(l) = &b.lost {
            return Err(l.error());
        }
        let now = self.io.read()?;
        let (found, node) = now.slots.first().map_or((0, 0), |s| (s.raw, s.node));
        if (found, node) != (self.marker, b.node) {
            b.lost = Some(Lost::Taken { found, node });
            hook::lost();
            return Err(EngineError::MarkerLost { found, node });
        }
        Ok(())
    }

    /// Re-read slot 0 and confirm it holds the marker as this guard left
    /// it. Call before each batch of writes: an error means another node or
    /// tool took the volume, and nothing more may be written.
    pub fn verify(&self) -> Result<(), EngineError> {
        self.still_ours(&mut self.lock())
    }

    /// Run `f` while the keep-alive cannot write slot 0: for a writer whose
    /// blocks share a page with slot 0's entry (a direct write of slot 0
    /// beside a cached write of its page fails the kernel's invalidation,
    /// and a read-modify-write of the page could put back an old node field).
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let _b = self.lock();
        f()
    }

    /// The node field this guard last wrote beside its marker.
    pub fn node_field(&self) -> u32 {
        self.lock().node
    }

    /// Why the hold is over, once the keep-alive (or a [`Guard::verify`])
    /// found the marker gone or could not show it alive.
    pub fn lost(&self) -> Option<EngineError> {
        self.lock().lost.as_ref().map(Lost::error)
    }

    /// One keep-alive step: re-read slot 0 and, if the marker is still ours,
    /// move its node field by one. A read or write that fails ends the
    /// hold too: a marker that stops moving will be called dead.
    pub fn keep_alive(&self) -> Result<(), EngineError> {
        let mut b = self.lock();
        let step = self.still_ours(&mut b).and_then(|()| {
            let next = b.node.wrapping_add(1);
            self.io.write(TOOL_SLOT, self.marker, next)?;
            Ok(next)
        });
        match step {
            Ok(next) => {
                b.node = next;
                Ok(())
            }
            Err(EngineError::Io(e)) => {
                let l = Lost::Unreachable(e.to_string());
                let err = l.error();
                b.lost = Some(l);
                hook::lost();
                Err(err)
            }
            Err(e) => Err(e),
        }
    }

    /// Run `work` while a thread keeps the marker alive: every update
    /// interval, and at least every 5 s (the kernel's check interval floor),
    /// so a watcher of one wait time sees it move at least twice. The thread
    /// stops at the first loss, which [`Guard::verify`] then reports.
    pub fn hold<R>(&self, work: impl FnOnce() -> R) -> R {
        let period = Duration::from_secs(u64::from(self.interval.clamp(1, 5)));
        let stop = (Mutex::new(false), Condvar::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let (g, _) = stop
                        .1
                        .wait_timeout(stopped, period)
                        .unwrap_or_else(|p| p.into_inner());
                    stopped = g;
                    if *stopped || self.keep_alive().is_err() {
                        return;
                    }
                }
            });
            // Stop the keep-alive however `work` ends (a panic included),
            // or the scope would wait for it forever.
            struct StopOnDrop<'s>(&'s (Mutex<bool>, Condvar));
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    self.0 .1.notify_all();
                }
            }
            let _stop = StopOnDrop(&stop);
            hook::hold_for();
            work()
        })
    }

    /// What slot 0 should hold once the tool is done: a dead mount's
    /// sequence stays while slot 0's journal is dirty (the next mount waits
    /// for it, keeps the same-kind rule and replays the journal; a journal
    /// that cannot be read counts as dirty), a dead clustered node's
    /// `VALID_CLUSTER` stays (only a clustered mount replays it), anything
    /// else becomes `0`, what a clean unmount leaves. A sequence over a
    /// clean journal is no mount's to keep: a killed tool's, or the own
    /// value of a tool that lost a race.
    pub fn restore_value(&self) -> u32 {
        match MmpState::decode(self.original) {
            MmpState::Sequence(s) if self.io.journal_dirty(TOOL_SLOT).unwrap_or(true) => s,
            MmpState::Cluster => value::VALID_CLUSTER,
            _ => value::EMPTY,
        }
    }

    /// Put back [`Guard::restore_value`].
    pub fn release(self) -> Result<(), EngineError> {
        let back = self.restore_value();
        self.release_to(back)
    }

    /// Put `raw` (and slot 0's original node) into slot 0, only if it still
    /// holds the marker as this guard left it.
    pub fn release_to(mut self, raw: u32) -> Result<(), EngineError> {
        self.released = true;
        self.put_back(raw)
    }

    fn put_back(&self, raw: u32) -> Result<(), EngineError> {
        let mut b = self.lock();
        self.still_ours(&mut b)?;
        hook::releasing();
        self.io.write(TOOL_SLOT, raw, self.node)?;
        Ok(())
    }

    /// Give up the guard without touching the slot map (the marker stays).
    pub fn leak(mut self) {
        self.released = true;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.released {
            // An error or a signal: put back what the volume needs.
            let _ = self.put_back(self.restore_value());
        }
    }
}

/// What [`take_with_own_sequence`] leaves: our sequence in slot 0.
pub(crate) struct Own {
    pub seq: u32,
    pub node: u32,
    pub original: u32,
}

/// Steps 1 and 2 of the module notes, shared with the heartbeat: the check,
/// then a sequence only this process wrote, proved by a wait and a re-read.
/// On a race nothing of the other writer's is touched; on a signal during
/// the wait slot 0 gets back what it held.
pub(crate) fn take_with_own_sequence(
    io: &dyn SlotIo,
    update_interval: u16,
    hb: Option<HbOptions>,
    clock: &mut dyn Clock,
    obs: &mut dyn Observer,
    intr: &dyn Interrupt,
) -> Result<(Own, u32), EngineError> {
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
    if let Some(e) = report
        .last
        .as_ref()
        .and_then(|last| raced(last, &before, 0))
    {
        return Err(e);
    }
    let (original, node) = before.slots.first().map_or((0, 0), |s| (s.raw, s.node));
    let seq = new_seq();
    // Another tool may have written since the check's last read.
    io.write_if(TOOL_SLOT, original, seq, node)
        .map_err(|e| match e {
            EngineError::ForeignWrite {
                slot,
                expected,
                found,
            } => EngineError::Raced {
                slot,
                expected,
                found,
            },
            other => other,
        })?;
    let wt = wait_time(update_interval);
    let every = bump_every(update_interval, wt);
    obs.waiting(
        wt,
        &format!(
            "wrote a sequence of its own into slot {TOOL_SLOT}: watching for {wt} s that no other node or tool \
             writes there (moving it every {every} s meanwhile, as a live holder does)"
        ),
    );
    // Ours still there: put back what was. Theirs: leave it.
    let give_back = |seq: u32| {
        let _ = io.write_if(TOOL_SLOT, seq, original, node);
    };
    let mut seq = seq;
    for at in 1..=wt {
        clock.sleep(Duration::from_secs(1));
        if let Some(sig) = intr.pending() {
            give_back(seq);
            return Err(EngineError::Interrupted(sig));
        }
        obs.tick(wt - at);
        // Every update interval, and at the end: still ours, nothing else
        // changed? Then (before the end) one more, so that a watcher sees
        // a live holder from the start, as it would see kmmpd.
        let bump = at % every == 0 && at < wt;
        if !bump && at < wt {
            continue;
        }
        let now = io.read().inspect_err(|_| give_back(seq))?;
        let found = now.slots.first().map_or(0, |s| s.raw);
        if found != seq {
            return Err(EngineError::Raced {
                slot: TOOL_SLOT,
                expected: seq,
                found,
            });
        }
        if let Some(e) = raced(&before, &now, 1) {
            give_back(seq);
            return Err(e);
        }
        if bump {
            let next = crate::engine::next_seq(seq);
            io.write(TOOL_SLOT, next, node)
                .inspect_err(|_| give_back(seq))?;
            seq = next;
        }
    }
    Ok((
        Own {
            seq,
            node,
            original,
        },
        report.waited + wt,
    ))
}

/// Another writer changed a slot (from `skip` on) between two reads.
fn raced(before: &SlotMap, after: &SlotMap, skip: usize) -> Option<EngineError> {
    crate::first_change(before, after, skip).map(|(slot, expected, found)| EngineError::Raced {
        slot,
        expected,
        found,
    })
}

/// Seconds between a holder's moves of its own sequence during its proof
/// wait: its update interval, within the wait.
fn bump_every(update_interval: u16, wt: u32) -> u32 {
    u32::from(update_interval).clamp(1, wt.max(1))
}

/// Test hook, in the spirit of the write failpoint: with
/// `OCFS2_MMP_HOLD_HOOK=FILE[:SECONDS]`, a holder appends
/// `acquire PID NANOS` to FILE once it holds the volume (wall clock,
/// nanoseconds since the epoch), holds it SECONDS longer than its work
/// needs, and appends `release PID NANOS` just before it gives slot 0 back
/// (`lost PID NANOS` when it finds slot 0 taken by another instead).
/// Race tests read the intervals from there, not from exit codes.
pub mod hook {
    use std::io::Write;

    fn spec() -> Option<(String, u64)> {
        let v = std::env::var("OCFS2_MMP_HOLD_HOOK").ok()?;
        Some(match v.rsplit_once(':') {
            Some((f, s)) if s.parse::<u64>().is_ok() => (f.to_string(), s.parse().unwrap_or(0)),
            _ => (v, 0),
        })
    }

    fn record(what: &str) {
        let Some((file, _)) = spec() else { return };
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            // One write of one short line: appends do not interleave.
            let _ = f.write_all(format!("{what} {} {ns}\n", std::process::id()).as_bytes());
        }
    }

    /// The volume is held from now on.
    pub fn acquired() {
        record("acquire");
    }

    /// Hold SECONDS longer (inside [`super::Guard::hold`]).
    pub fn hold_for() {
        if let Some((_, secs)) = spec() {
            std::thread::sleep(std::time::Duration::from_secs(secs));
        }
    }

    /// About to give slot 0 back.
    pub fn releasing() {
        record("release");
    }

    /// Found slot 0 taken by another: held no longer.
    pub fn lost() {
        record("lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{Fake, Quiet, Tick};
    use crate::engine::NoInterrupt;

    fn take<'a>(fake: &'a Fake, clock: &mut Tick<'_>) -> Result<Guard<'a>, EngineError> {
        Guard::acquire(
            fake,
            5,
            None,
            value::SEQ_FSCK,
            clock,
            &mut Quiet,
            &NoInterrupt,
        )
    }

    #[test]
    fn takes_with_its_own_sequence_then_the_marker_and_gives_back_0() {
        let fake = Fake::new(&[0, 0, 0]);
        let own = std::cell::Cell::new(0);
        // Mid-wait (an empty map has no check wait): our own sequence.
        let mut clock = Tick::at(5, || own.set(fake.get(0).0));
        let g = take(&fake, &mut clock).unwrap();
        assert!(matches!(MmpState::decode(own.get()), MmpState::Sequence(_)));
        assert_eq!(g.waited, 11, "always waits after writing its own value");
        assert_eq!(fake.get(0).0, value::SEQ_FSCK);
        g.release().unwrap();
        assert_eq!(fake.get(0), (0, 0));
    }

    #[test]
    fn of_two_tools_started_together_only_the_last_writer_holds() {
        let fake = Fake::new(&[0, 0]);
        // Tool B writes its sequence during tool A's wait, as a tool that
        // passed its check at the same instant does.
        let mut clock = Tick::at(3, || fake.set(0, 0x00BB_0001, 0));
        let r = take(&fake, &mut clock);
        assert!(
            matches!(
                r,
                Err(EngineError::Raced {
                    slot: 0,
                    found: 0x00BB_0001,
                    ..
                })
            ),
            "{:?}",
            r.err()
        );
        assert_eq!(fake.get(0).0, 0x00BB_0001, "B's value is left alone");
    }

    /// A clock that records slot 0 at each one-second tick.
    struct Recorder<'a> {
        fake: &'a Fake,
        n: u32,
        seen: Vec<u32>,
    }
    impl Clock for Recorder<'_> {
        fn now(&mut self) -> Duration {
            Duration::from_secs(u64::from(self.n))
        }
        fn sleep(&mut self, _d: Duration) {
            self.n += 1;
            self.seen.push(self.fake.get(0).0);
        }
    }

    #[test]
    fn the_own_sequence_moves_during_the_proof_wait() {
        let fake = Fake::new(&[0]);
        let mut rec = Recorder {
            fake: &fake,
            n: 0,
            seen: Vec::new(),
        };
        let g = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut rec,
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        // seen[i]: slot 0 at second i + 1, before that second's move.
        let s = &rec.seen;
        assert_eq!(s.len(), 11, "{s:x?}");
        assert!(s[..5].iter().all(|&v| v == s[0]), "{s:x?}");
        assert_eq!(s[5], s[0] + 1, "moved at 5 s: {s:x?}");
        assert_eq!(s[10], s[0] + 2, "moved at 10 s: {s:x?}");
        g.release().unwrap();
    }

    #[test]
    fn a_slot_taken_elsewhere_during_the_wait_gives_slot_0_back() {
        let fake = Fake::new(&[0, 0]);
        let mut clock = Tick::at(4, || fake.set(1, value::VALID_CLUSTER, 3));
        let r = take(&fake, &mut clock);
        assert!(matches!(r, Err(EngineError::Raced { slot: 1, .. })));
        assert_eq!(fake.get(0).0, 0, "our sequence is withdrawn");
        assert_eq!(fake.get(1), (value::VALID_CLUSTER, 3));
    }

    #[test]
    fn keep_alive_moves_the_node_field_and_release_restores_it() {
        let fake = Fake::new(&[0, 0]);
        fake.set(0, 0, 7);
        let g = take(&fake, &mut Tick::plain()).unwrap();
        let (marker, start) = fake.get(0);
        assert_eq!(marker, value::SEQ_FSCK);
        assert_eq!(start, g.node_field());
        g.keep_alive().unwrap();
        g.keep_alive().unwrap();
        assert_eq!(fake.get(0), (value::SEQ_FSCK, start.wrapping_add(2)));
        g.verify().unwrap();
        g.release().unwrap();
        assert_eq!(fake.get(0), (0, 7));
    }

    #[test]
    fn a_lost_marker_stops_every_write() {
        let fake = Fake::new(&[0, 0]);
        let g = take(&fake, &mut Tick::plain()).unwrap();
        // --clear-mmp --force, then a mount's sequence.
        fake.set(0, 0x4242, 0);
        assert!(matches!(
            g.keep_alive(),
            Err(EngineError::MarkerLost { found: 0x4242, .. })
        ));
        assert!(matches!(
            g.lost(),
            Some(EngineError::MarkerLost {
                found: 0x4242,
                node: 0
            })
        ));
        // Even if the slot reads like ours again, the loss stands.
        fake.set(0, value::SEQ_FSCK, 0);
        assert!(g.verify().is_err());
        fake.set(0, 0x4242, 0);
        assert!(matches!(g.release(), Err(EngineError::MarkerLost { .. })));
        assert_eq!(fake.get(0).0, 0x4242, "nothing written over it");
    }

    #[test]
    fn a_keep_alive_that_cannot_read_ends_the_hold() {
        use std::sync::atomic::Ordering;
        let fake = Fake::new(&[0]);
        let g = take(&fake, &mut Tick::plain()).unwrap();
        fake.broken.store(true, Ordering::SeqCst);
        assert!(matches!(g.keep_alive(), Err(EngineError::KeepAlive(_))));
        fake.broken.store(false, Ordering::SeqCst);
        // The marker reads as ours again, but the hold was not shown: over.
        assert!(matches!(g.verify(), Err(EngineError::KeepAlive(_))));
        assert!(g.lost().is_some());
        assert!(g.release().is_err());
        assert_eq!(
            fake.get(0).0,
            value::SEQ_FSCK,
            "nothing written after the loss"
        );
    }

    #[test]
    fn another_tools_marker_with_another_node_field_is_not_ours() {
        let fake = Fake::new(&[0]);
        let g = take(&fake, &mut Tick::plain()).unwrap();
        // A second holder's SEQ_FSCK, with its own node field.
        fake.set(0, value::SEQ_FSCK, 55);
        assert!(g.verify().is_err());
        drop(g);
        assert_eq!(fake.get(0), (value::SEQ_FSCK, 55));
    }

    #[test]
    fn release_keeps_what_the_volume_needs() {
        for (before, dirty, after) in [
            (0x1234_5678, true, 0x1234_5678),
            (0x1234_5678, false, 0),
            (value::VALID_CLUSTER, false, value::VALID_CLUSTER),
            (0, true, 0),
        ] {
            let mut fake = Fake::new(&[before, 0]);
            fake.dirty = dirty;
            let mut g = take(&fake, &mut Tick::plain());
            if before == value::VALID_CLUSTER {
                // Without heartbeat options the check cannot judge it:
                // stage "the slot held VALID_CLUSTER before the marker".
                assert!(matches!(
                    g,
                    Err(EngineError::InUse(Verdict::NoLiveness { .. }))
                ));
                fake.set(0, 0, 0);
                g = take(&fake, &mut Tick::plain()).map(|mut g| {
                    g.original = before;
                    g
                });
            }
            let g = g.unwrap();
            g.release().unwrap();
            assert_eq!(fake.get(0).0, after, "{before:#x}");
        }
    }

    #[test]
    fn drop_on_an_error_puts_back_a_dead_sequence() {
        let mut fake = Fake::new(&[0x99, 0]);
        fake.dirty = true;
        {
            let _g = take(&fake, &mut Tick::plain()).unwrap();
            assert_eq!(fake.get(0).0, value::SEQ_FSCK);
        }
        assert_eq!(fake.get(0).0, 0x99);
    }

    #[test]
    fn refuses_fsck_running_and_the_old_slot_map() {
        let fake = Fake::new(&[value::SEQ_FSCK, 0]);
        assert!(matches!(
            take(&fake, &mut Tick::plain()),
            Err(EngineError::InUse(Verdict::FsckRunning { slot: 0 }))
        ));
        let mut fake = Fake::new(&[0, 0]);
        fake.format = ocfs2_format::slotmap::Format::Old;
        assert!(matches!(
            take(&fake, &mut Tick::plain()),
            Err(EngineError::InUse(Verdict::OldSlotMap))
        ));
        assert_eq!(fake.get(0).0, 0);
    }

    #[test]
    fn a_signal_during_the_own_sequence_wait_gives_slot_0_back() {
        let fake = Fake::new(&[0, 0]);
        let hit = std::cell::Cell::new(false);
        let mut clock = Tick::at(2, || hit.set(true));
        let intr = || hit.get().then_some(15);
        let r = Guard::acquire(
            &fake,
            5,
            None,
            value::SEQ_FSCK,
            &mut clock,
            &mut Quiet,
            &intr,
        );
        assert!(matches!(r, Err(EngineError::Interrupted(15))));
        assert_eq!(fake.get(0).0, 0);
    }

    #[test]
    fn hold_keeps_the_marker_alive_while_the_work_runs() {
        let fake = Fake::new(&[0]);
        let g = Guard::acquire(
            &fake,
            1,
            None,
            value::SEQ_FSCK,
            &mut Tick::plain(),
            &mut Quiet,
            &NoInterrupt,
        )
        .unwrap();
        let start = g.node_field();
        let node = g.hold(|| {
            std::thread::sleep(Duration::from_millis(2500));
            fake.get(0).1
        });
        let moved = node.wrapping_sub(start);
        assert!(moved >= 2, "the node field moved every second: {moved}");
        g.release().unwrap();
        assert_eq!(fake.get(0), (0, 0));
    }
}
