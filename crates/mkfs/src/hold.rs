//! mkfs over an existing volume with MMP, held with the MMP guard from the
//! check to the last write.
//!
//! Order of the writes, and what a crash after each leaves:
//! 1. the guard's own sequence, then `SEQ_FSCK` in the old slot 0: the old
//!    volume, held (a crash leaves a marker `--clear-mmp` proves dead);
//! 2. every block of the new volume but its primary superblock, through a
//!    [`Shield`] that leaves the old primary superblock and the old slot 0
//!    entry alone; the new slot map starts with `SEQ_FSCK` in slot 0: until
//!    step 3 every tool and mount still finds the old superblock and the
//!    marker, and refuses (a crash leaves that, over a half-written volume:
//!    `--clear-mmp`, then mkfs again);
//! 3. the new primary superblock: the new volume, held by its own marker;
//! 4. what the new volume wants where the old superblock and the old slot 0
//!    entry were (when they are not the new ones' places);
//! 5. slot 0 of the new volume back to `0`, if it still holds the marker.

use crate::build::{Layout, Progress};
use anyhow::{anyhow, bail, Context, Result};
use ocfs2_format::slotmap::value::SEQ_FSCK;
use ocfs2_format::{BlockIo, FileDevice, OpenMode, Volume};
use ocfs2_mmp::engine::{EngineError, Guard, VolumeSlots};
use ocfs2_mmp::shield::Shield;

/// Write `layout` over the existing MMP volume on `dev`, held throughout.
pub(crate) fn format_held(
    dev: &FileDevice,
    layout: &mut Layout,
    progress: &mut dyn Progress,
    hb_window: Option<u32>,
    announce: &dyn Fn(),
) -> Result<()> {
    // A signal during the waits gives slot 0 back; during the writes it
    // stops them (the old volume stays held, as after a crash).
    ocfs2_toolkit::signals::install();
    // A second handle on the old volume, for the guard (the first holds
    // the exclusive claim).
    let old_dev = FileDevice::open(
        dev.path(),
        OpenMode {
            write: true,
            exclusive: false,
        },
    )?;
    let old = Volume::open(Box::new(old_dev)).context("existing volume")?;
    let slots = VolumeSlots::new(&old).context("existing volume: locating the slot map")?;
    let (slot0, slot0_len) = slots
        .entry_offset(0)
        .ok_or_else(|| anyhow!("existing volume: slot 0 lies outside the slot map's extents"))?;
    let old_super = (2 * u64::from(old.block_size()), old.block_size() as usize);
    let mut say =
        ocfs2_toolkit::WaitReporter::new(crate::PROG, false).with_prefix("existing volume: ");
    let guard = Guard::acquire(
        &slots,
        old.sb().s_mmp_update_interval.get(),
        ocfs2_mmp::engine::hb_options(&old, hb_window),
        SEQ_FSCK,
        &mut ocfs2_mmp::SystemClock,
        &mut say,
        &ocfs2_toolkit::signals::pending,
    )
    .map_err(|e| match e {
        EngineError::InUse(v) => anyhow!(
            "the existing OCFS2 volume is {}; refusing even with -F",
            v.describe()
        ),
        EngineError::Io(e) => anyhow!(
            "the existing OCFS2 volume has MMP on but its slot map or heartbeat cannot be read ({e}): cannot \
             tell whether a node uses it; refusing even with -F"
        ),
        other => anyhow::Error::new(other).context("existing volume"),
    })?;
    announce();
    // The new volume is held from its first moment.
    const NEW_NODE: u32 = 0;
    let new_slot0 = layout
        .set_slot0(SEQ_FSCK, NEW_NODE)
        .then(|| layout.slot0_offset())
        .flatten();
    let intr = ocfs2_toolkit::signals::pending;
    let shield = Shield::new(dev, &[old_super, (slot0, slot0_len)], Some(&guard), &intr)?;
    guard.verify()?;
    // From the first write of the new volume on, a failure leaves the old
    // one held: its superblock still reads, over blocks partly rewritten.
    let body = guard.hold(|| layout.write_body(&shield, progress));
    // The switch to the new volume: only while the old one is still ours.
    let switched = body
        .map_err(anyhow::Error::new)
        .and_then(|()| Ok(guard.verify()?))
        .and_then(|()| Ok(layout.write_primary(dev)?));
    if let Err(e) = switched {
        guard.leak();
        return Err(e.context(
            "the format stopped part-way: the old volume is left held (SEQ_FSCK in slot 0) over partly \
             rewritten blocks; run mkfs again (after tunefs.ocfs2-mmp --clear-mmp if nothing else holds it)",
        ));
    }
    let kept = shield.finish();
    for (off, bytes) in kept {
        let superseded = off == layout.primary_offset() || Some(off) == new_slot0;
        if !superseded {
            dev.write_at(off, &bytes)?;
        }
    }
    dev.flush()?;
    // Where the new slot 0 lies where the old one did, the marker there is
    // the guard's, its node field moved by the keep-alive.
    let node_there = if new_slot0 == Some(slot0) {
        guard.node_field()
    } else {
        NEW_NODE
    };
    // The old slot map is gone: nothing of the guard's is left to put back.
    guard.leak();
    if let Some(off) = new_slot0 {
        let mut entry = [0u8; 8];
        dev.read_direct(off, &mut entry)?;
        let (raw, node) = (
            u32::from_le_bytes(entry[..4].try_into().expect("4 bytes")),
            u32::from_le_bytes(entry[4..].try_into().expect("4 bytes")),
        );
        if (raw, node) != (SEQ_FSCK, node_there) {
            bail!(
                "the new volume is written, but its slot 0 holds {raw:#010x} (node {node}), not this tool's marker: \
                 another node wrote slot 0; check it with debugfs-mmp -R \"mmp status\""
            );
        }
        ocfs2_mmp::engine::hook::releasing();
        dev.write_direct(off, &[0u8; 8])?;
    }
    Ok(())
}
