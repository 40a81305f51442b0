//! Journal size: `-J size=SIZE` gives every slot's journal that size
//! (rounded up to whole clusters), as tunefs.ocfs2 does: each journal that
//! changes grows from, or gives back to, the global bitmap and is formatted
//! afresh (log zeroed, a new jbd2 superblock with its own features). Every
//! journal must be clean: a dirty log would be lost.
//!
//! Crash order, per journal (every prefix is a volume fsck.ocfs2-mmp
//! explains): to grow, the clusters are marked in use, then the inode
//! takes them, then the journal is formatted (a crash before leaves a log
//! shorter than its file, which jbd2 accepts); to shrink, the journal is
//! formatted at its new length first, then the inode lets the clusters go,
//! then they are freed (a crash between leaves them marked, which fsck
//! frees).

use anyhow::{Context, Result};
use ocfs2_format::fs::slot_file_name;
use ocfs2_format::journal::JournalFeatures;
use ocfs2_format::Volume;

/// One journal whose size changes, in clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize {
    pub slot: u16,
    pub inode: u64,
    pub from: u64,
    pub to: u64,
}

/// The journals `bytes` changes (rounded up to clusters).
pub fn plan(vol: &Volume, bytes: u64) -> Result<Vec<Resize>> {
    let cs = u64::from(vol.cluster_size());
    let to = bytes.div_ceil(cs);
    let mut out = Vec::new();
    for slot in 0..vol.max_slots() {
        let name = slot_file_name("journal", slot);
        let inode = vol
            .system_inode(&name)
            .with_context(|| format!("looking up {name}"))?;
        let from = u64::from(vol.read_inode(inode)?.di().i_clusters.get());
        if from != to {
            out.push(Resize {
                slot,
                inode,
                from,
                to,
            });
        }
    }
    Ok(out)
}

/// Why the journals cannot be resized now, or None.
pub fn refusal(vol: &Volume, plan: &[Resize]) -> Result<Option<String>> {
    let bs = u64::from(vol.block_size());
    let bpc = u64::from(vol.cluster_size()) / bs;
    for r in plan {
        if vol.journal_dirty(r.slot)? {
            return Ok(Some(format!(
                "journal:{:04} is dirty: run fsck.ocfs2-mmp (it replays it) before resizing the journals",
                r.slot
            )));
        }
        if r.to * bpc > u64::from(u32::MAX) {
            return Ok(Some(format!(
                "a journal of {} blocks is more than jbd2 addresses",
                r.to * bpc
            )));
        }
    }
    let need: u64 = plan.iter().map(|r| r.to.saturating_sub(r.from)).sum();
    let free = vol.free_cluster_count()?;
    if need > free {
        return Ok(Some(format!(
            "the journals need {need} more clusters, the volume has {free} free"
        )));
    }
    Ok(None)
}

/// The features journal `inode` keeps: its own when its superblock is
/// valid, else none (a clean journal's features are free to choose).
fn features(vol: &Volume, inode: u64) -> Result<JournalFeatures> {
    Ok(vol
        .journal_superblock(inode)?
        .map(|j| JournalFeatures::of(&j))
        .unwrap_or_default())
}

/// Resize one journal (the module's order).
pub fn apply(vol: &Volume, r: &Resize, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    let what = || format!("resizing journal:{:04}", r.slot);
    let f = features(vol, r.inode).with_context(what)?;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    verify()?;
    if r.to > r.from {
        ocfs2_format::extend::extend(vol, r.inode, r.to - r.from, true).with_context(what)?;
        verify()?;
        vol.format_journal(r.inode, f, None).with_context(what)?;
    } else {
        vol.format_journal(r.inode, f, Some(r.to * bpc))
            .with_context(what)?;
        verify()?;
        ocfs2_format::extend::truncate(vol, r.inode, r.to, true).with_context(what)?;
    }
    Ok(())
}
