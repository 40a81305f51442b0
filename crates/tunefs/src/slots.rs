//! Node slots: `-N N` adds slots as tunefs.ocfs2 does: every per-slot
//! system file of the new slots (orphan directory, extent and inode
//! allocators, journal, local alloc, truncate log, local quota files),
//! type by type, each made whole before the next; then the new journals
//! sized like slot 0's and formatted with its features; then the new slots'
//! entries of the slot map made empty; the caller writes `s_max_slots`
//! into every superblock copy last. A crash before that leaves the old
//! number of slots with some system files made ahead, which a rerun takes
//! as they are (tunefs.ocfs2 passes over the files that exist too).
//!
//! `-N` to fewer slots removes the highest slots as tunefs.ocfs2 does, when
//! they are free and clean (its checks: empty orphan directories, local
//! allocs without a window, empty truncate logs, clean journals): every
//! superblock copy is marked (aborted-tunefs, `REMOVE_SLOT`) with the new
//! count first, then `ocfs2_format::unslot::finish` does the work (a crash
//! leaves the mark, and fsck.ocfs2-mmp finishes the removal); the caller's
//! final superblock write clears the mark.

use anyhow::{Context, Result};
use ocfs2_format::fs::slot_file_name;
use ocfs2_format::Volume;

/// The most slots mkfs.ocfs2 and tunefs.ocfs2 make (`OCFS2_MAX_SLOTS`).
pub const MAX_SLOTS: u16 = 255;

/// Why the volume cannot have `to` slots now, or None.
pub fn refusal(vol: &Volume, to: u16) -> Result<Option<String>> {
    let from = vol.max_slots();
    if to == 0 {
        return Ok(Some("0 node slots: a volume keeps at least one".into()));
    }
    if to < from {
        if let Some(why) = crate::slotmap::busy(vol, "node slots are removed")? {
            return Ok(Some(why));
        }
        return Ok(ocfs2_format::unslot::refusal(vol, to)?);
    }
    if to > MAX_SLOTS {
        return Ok(Some(format!("{to} node slots: at most {MAX_SLOTS}")));
    }
    if let Some(why) = crate::slotmap::busy(vol, "node slots are added")? {
        return Ok(Some(why));
    }
    let (ino, _) = vol.slot_map_layout().context("reading the slot map")?;
    let room = u64::from(ino.di().i_clusters.get()) * u64::from(vol.cluster_size());
    let need = vol.slot_map_bytes(to);
    if need > room.max(ino.size()) {
        return Ok(Some(format!(
            "the slot map holds {room} bytes, {to} slots need {need} (growing it is not done by this release)"
        )));
    }
    let names: Vec<String> = (from..to).flat_map(|s| files_of(vol, s)).collect();
    if let Some(why) = ocfs2_format::link::lacks_room(vol, vol.system_dir_blkno(), &names)? {
        return Ok(Some(format!("the system directory: {why}")));
    }
    // The journals like slot 0's, a few clusters per slot for its other
    // files, and the groups the global inode allocator grows by.
    let j0 = vol.read_inode(vol.system_inode("journal:0000")?)?;
    let per_slot = u64::from(j0.di().i_clusters.get()) + 4;
    let gia = vol.read_inode(vol.system_inode("global_inode_alloc")?)?;
    let inodes = gia.di().bitmap_free();
    let files = (ocfs2_format::sysfile::slot_files(vol).len() * usize::from(to - from)) as u64;
    let (cl, _) = gia.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    let per_group = (cpg * u64::from(vol.cluster_size() / vol.block_size())).saturating_sub(1);
    let groups = files.saturating_sub(inodes).div_ceil(per_group.max(1));
    let need = per_slot * u64::from(to - from) + groups * cpg;
    let free = vol.free_cluster_count()?;
    if need > free {
        return Ok(Some(format!(
            "{} new slots need about {need} clusters (their journals like slot 0's), the volume has {free} free",
            to - from
        )));
    }
    Ok(None)
}

/// Slot 0's journal: its clusters and its jbd2 features.
/// Make slots `from..to` (the module's order); `clear_entries` empties the
/// new slots' map entries (it runs beside the guard's keep-alive).
pub fn add(
    vol: &Volume,
    to: u16,
    verify: &dyn Fn() -> Result<()>,
    clear_entries: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let from = vol.max_slots();
    let verify_fmt = || verify().map_err(|e| ocfs2_format::Error::Invalid(format!("{e:#}")));
    let journals = ocfs2_format::sysfile::add_slot_files(vol, from, to, &verify_fmt)
        .context("making the new slots' system files")?;
    // The new slots' journals (a rerun's too, made by the run that
    // stopped): sized like slot 0's and formatted.
    ocfs2_format::sysfile::size_journals(vol, &journals, &verify_fmt)
        .context("giving the new journals their clusters and logs")?;
    verify()?;
    clear_entries()
}

/// Remove slots `to..`: every superblock copy marked (the new count, the
/// aborted-tunefs flag with `REMOVE_SLOT`), then the slots' files and
/// groups moved or freed. The caller writes the final superblock.
pub fn remove(vol: &Volume, to: u16, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    use ocfs2_format::unslot::TUNEFS_FLAG_REMOVE_SLOT;
    crate::slotmap::mark_in_progress(
        vol,
        TUNEFS_FLAG_REMOVE_SLOT,
        |sb| sb.s_max_slots.set(to),
        verify,
    )
    .context("marking the superblocks: slot removal in progress")?;
    ocfs2_format::unslot::finish(vol, to, &|| {
        verify().map_err(|e| ocfs2_format::Error::Invalid(format!("{e:#}")))
    })
    .context("removing the slots")
}

/// The names of the files `add` makes for slot `slot`.
pub fn files_of(vol: &Volume, slot: u16) -> Vec<String> {
    ocfs2_format::sysfile::slot_files(vol)
        .iter()
        .map(|(base, _, _)| slot_file_name(base, slot))
        .collect()
}
