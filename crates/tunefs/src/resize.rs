//! Volume size: `-S [BLOCKS]` grows the volume to the device's size or to
//! BLOCKS, as tunefs.ocfs2 does offline: the global bitmap's last group
//! fills up, new cluster groups follow, then the size goes into the
//! superblocks. Unlike tunefs.ocfs2 1.8.7, the clusters of the backup
//! superblocks that the new size takes in are marked in use (it writes
//! those backups over clusters its bitmap calls free).
//!
//! Crash order (tunefs.ocfs2's): every superblock copy is marked
//! `RESIZE_INPROG` (aborted-resize, which the kernel and ocfs2-tools refuse)
//! first; then the groups and the global bitmap inode
//! (`alloc::grow_global_bitmap`'s order); then every copy gets the new size
//! with the flag gone, the new backups written. `fsck.ocfs2-mmp` finishes a
//! run that stopped: forward when the bitmap inode holds the new size, else
//! back to the size the superblock holds (code RESIZE_INPROG).

use anyhow::{Context, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::journal::JBD2_FEATURE_INCOMPAT_64BIT;
use ocfs2_format::Volume;

/// The size asked for, in clusters, and why it cannot be had (None: it
/// can). `blocks`: None for the whole device.
pub fn target(vol: &Volume, blocks: Option<u64>) -> Result<(u64, Option<String>)> {
    let bs = u64::from(vol.block_size());
    let bpc = u64::from(vol.cluster_size()) / bs;
    let device = vol.device_blocks() / bpc;
    let want = match blocks {
        Some(b) => b.div_ceil(bpc),
        None => device,
    };
    let now = u64::from(vol.clusters());
    let why = if want < now {
        Some(format!(
            "{want} clusters is smaller than the volume's {now}: shrinking is not supported"
        ))
    } else if want > device {
        Some(format!(
            "the device holds only {device} clusters ({} blocks)",
            device * bpc
        ))
    } else if want > u64::from(u32::MAX) {
        Some(format!(
            "{want} clusters: an OCFS2 volume has at most {}",
            u32::MAX
        ))
    } else if want * bpc > u64::from(u32::MAX) && !journals_64bit(vol)? {
        Some(format!(
            "{} blocks need 64-bit journal block numbers, which the journals lack (mkfs -J block64)",
            want * bpc
        ))
    } else {
        None
    };
    Ok((want, why))
}

fn journals_64bit(vol: &Volume) -> Result<bool> {
    let j = vol.system_inode("journal:0000")?;
    Ok(vol
        .journal_superblock(j)?
        .is_some_and(|j| j.s_feature_incompat.get() & JBD2_FEATURE_INCOMPAT_64BIT != 0))
}

/// Mark the superblocks, then grow the global bitmap to `to` clusters
/// (the caller writes the superblocks last).
pub fn grow(vol: &Volume, to: u64, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let from = u64::from(vol.clusters());
    let reserved: Vec<u64> = vol
        .backups_within(to)
        .into_iter()
        .map(|b| b / bpc)
        .filter(|&c| c >= from)
        .collect();
    let mut marked = *vol.sb();
    marked
        .s_feature_incompat
        .set(marked.s_feature_incompat.get() | incompat::RESIZE_INPROG);
    verify()?;
    vol.write_super_everywhere(&marked)
        .context("marking the superblocks: resize in progress")?;
    ocfs2_format::alloc::grow_global_bitmap(
        vol,
        to as u32,
        &reserved,
        &crate::format_verify(verify),
    )
    .context("growing the global bitmap")?;
    Ok(())
}
