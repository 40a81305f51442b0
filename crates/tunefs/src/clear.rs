//! `--clear-mmp`: watch one wait window (or the o2hb heartbeat), then reset
//! the slot map values nobody updates.

use crate::{confirm, exit, refuse, Cli, Request, PROG};
use anyhow::{Context, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::slotmap::{value, Format, MmpState};
use ocfs2_format::Volume;
use ocfs2_mmp::engine::{EngineError, SlotIo, VolumeSlots};
use ocfs2_mmp::{Observer, SystemClock};
use ocfs2_toolkit::WaitReporter;

/// `--clear-mmp`: watch one wait window, then reset what is stale.
pub(crate) fn clear_mmp(
    cli: &Cli,
    req: &Request,
    vol: &Volume,
    say: &mut WaitReporter,
) -> Result<u8> {
    // What is found and done, on stdout unless -q.
    let tell = |m: String| {
        if !cli.quiet {
            println!("{m}");
        }
    };
    let mmp_on = vol.features().has_incompat(incompat::MMP);
    let slots = VolumeSlots::new(vol).context("locating the slot map")?;
    let before = slots.read()?;
    // Without MMP only SEQ_FSCK is ours to clear: the marker of a tunefs
    // --disable-mmp killed after its superblock write; other values are a
    // stock kernel's.
    let stale: Vec<_> = before
        .slots
        .iter()
        .filter(|s| {
            if mmp_on {
                s.raw != value::EMPTY
            } else {
                before.format == Format::Extended && s.raw == value::SEQ_FSCK
            }
        })
        .copied()
        .collect();
    if !mmp_on && stale.is_empty() {
        return refuse("MMP is not enabled on this volume: there is no MMP marker to clear");
    }
    if stale.is_empty() {
        tell("Nothing to clear: every slot is empty or clean".into());
        return Ok(exit::OK);
    }
    let hb = ocfs2_mmp::engine::hb_options(vol, cli.hb_window);
    // Clustered values have no sequence: only the heartbeat of the node
    // they name can prove it dead.
    let clustered =
        |raw: u32| raw == value::VALID_CLUSTER || (raw == value::LEGACY_VALID && hb.is_some());
    if !req.force {
        // Values nothing updates while their holder lives: VALID_NOCLUSTER,
        // SEQ_CLEAN (a read-only mount), values outside the protocol, and a
        // clustered value no heartbeat covers. (SEQ_FSCK is watched: a live
        // holder moves its node field every update interval.)
        if let Some(s) = stale.iter().find(|s| {
            matches!(
                MmpState::decode(s.raw),
                MmpState::Nocluster | MmpState::Clean | MmpState::Unknown(_)
            ) || (clustered(s.raw) && hb.is_none())
        }) {
            return refuse(format!(
                "slot {} holds {:#010x} ({}), which no node updates and no heartbeat covers: watching cannot prove it \
                 dead; if you are sure no node has the volume mounted, use --clear-mmp --force",
                s.index,
                s.raw,
                MmpState::decode(s.raw).name()
            ));
        }
    }
    // A dead clustered node's journal is replayed by the kernel only while
    // its slot is held: freeing the slot first would leave the log to be
    // replayed later, by whichever node takes the slot, over newer metadata.
    for s in stale.iter().filter(|s| clustered(s.raw)) {
        let dirty = vol
            .journal_dirty(s.index)
            .with_context(|| format!("reading journal:{:04}", s.index))?;
        if dirty && !req.force {
            return refuse(format!(
                "slot {} holds {:#010x} for node {} and journal:{:04} is dirty: a clustered mount must replay it \
                 first (mount the volume clustered on any node: the kernel replays the dead node's journal and \
                 frees its slot); clearing the slot now would leave that log to be replayed later over newer \
                 metadata",
                s.index, s.raw, s.node, s.index
            ));
        }
        if dirty {
            tell(format!(
                "--force: slot {}'s journal is dirty; it will be replayed when a node next takes slot {}",
                s.index, s.index
            ));
        }
    }
    for s in &stale {
        tell(format!(
            "Found slot {}: {:#010x} ({})",
            s.index,
            s.raw,
            MmpState::decode(s.raw).describe()
        ));
    }
    let interval = vol.sb().s_mmp_update_interval.get();
    if req.force {
        tell("--force: not watching whether any node updates these values".into());
    } else {
        let watch_hb = hb.is_some() && stale.iter().any(|s| clustered(s.raw));
        let mut tracker = if watch_hb {
            Some(ocfs2_mmp::liveness::Tracker::new(
                slots.heartbeat().context("reading the heartbeat area")?,
            ))
        } else {
            None
        };
        let window = match (&tracker, &hb) {
            (Some(t), Some(h)) => ocfs2_mmp::liveness::window_for(h, t),
            _ => 0,
        };
        let wt = ocfs2_mmp::wait_time(interval).max(window);
        say.waiting(
            wt,
            &if watch_hb {
                format!("watching the slot map and the o2hb heartbeat of every node for {wt} s (one dead threshold) to prove no node is live")
            } else {
                "watching one full wait window to prove no node updates the slot map".to_string()
            },
        );
        ocfs2_mmp::each_second(wt, &mut SystemClock, |at| -> Result<_> {
            if let Some(sig) = ocfs2_toolkit::signals::pending() {
                return Err(EngineError::Interrupted(sig).into());
            }
            if let Some(t) = tracker.as_mut() {
                t.sample(at, slots.heartbeat().context("reading the heartbeat area")?);
            }
            say.tick(wt.saturating_sub(at));
            Ok(std::ops::ControlFlow::<()>::Continue(()))
        })?;
        let after = slots.read()?;
        for (b, a) in before.slots.iter().zip(&after.slots) {
            if (b.raw, b.node) != (a.raw, a.node) {
                return refuse(format!(
                    "slot {} moved from {:#010x} (node {}) to {:#010x} (node {}) during the watch: {}; not clearing",
                    b.index,
                    b.raw,
                    b.node,
                    a.raw,
                    a.node,
                    if (b.raw, a.raw) == (value::SEQ_FSCK, value::SEQ_FSCK) {
                        "the tool holding it is alive"
                    } else {
                        "a node is live"
                    }
                ));
            }
        }
        if let Some(t) = &tracker {
            let holders = ocfs2_mmp::slot_holders(&before);
            let r = t.report(window, wt, &holders);
            let live = r.live();
            if !live.is_empty() {
                return refuse(format!(
                    "node(s) {} heartbeat on this volume (o2hb blocks moved during the watch): in use; not clearing",
                    live.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            for s in stale.iter().filter(|s| clustered(s.raw)) {
                let state = u16::try_from(s.node)
                    .ok()
                    .and_then(|n| r.node(n))
                    .map(|n| n.state);
                if state != Some(ocfs2_mmp::liveness::NodeState::Silent) {
                    return refuse(format!(
                        "slot {} holds {:#010x} for node {}, which never heartbeated on this volume: its liveness \
                         cannot be seen here (another heartbeat mode?); if you are sure no node has the volume \
                         mounted, use --clear-mmp --force",
                        s.index, s.raw, s.node
                    ));
                }
                tell(format!(
                    "Slot {}: node {} stayed silent for {wt} s: dead (its journal is replayed by the next mount \
                     that takes slot {})",
                    s.index, s.node, s.index
                ));
            }
        }
    }
    if cli.dry_run {
        tell(format!(
            "Would reset {} slot(s) to 0 (dry run, nothing written)",
            stale.len()
        ));
        return Ok(exit::OK);
    }
    if !confirm(
        cli,
        &format!("{}: reset {} slot(s) to 0", cli.device, stale.len()),
    )? {
        eprintln!("{PROG}: cancelled; nothing written");
        return Ok(exit::CANCELLED);
    }
    for s in &stale {
        // As watched, node field included: a holder that finished while the
        // question was asked, and a new one that took its place, differ.
        // A tool's SEQ_FSCK carries a node field of its own making (its
        // keep-alive counter): that goes too. Other values keep their node.
        let node = if s.raw == value::SEQ_FSCK { 0 } else { s.node };
        slots.write_if_entry(s.index, (s.raw, s.node), value::EMPTY, node)?;
        tell(format!(
            "Slot {} reset to 0 (empty) from {:#010x} ({})",
            s.index,
            s.raw,
            MmpState::decode(s.raw).name()
        ));
    }
    Ok(exit::OK)
}
