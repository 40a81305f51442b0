//! The slot map's format: `--fs-features=[no]extended-slotmap`, and
//! `--enable-mmp` on a volume with the old map (MMP needs the extended
//! one). As mkfs.ocfs2 and tunefs.ocfs2 lay it out, the map's whole
//! allocation (`i_size`, one cluster in practice) is rewritten empty: all
//! zero (extended) or every le16 0xFFFF (old). Every slot must be free and
//! every journal clean: the map is rewritten, not translated.
//!
//! Crash order (tunefs.ocfs2 writes the map, then the superblock, and a
//! crash between leaves a map its superblock misreads): first every
//! superblock copy gets the aborted-tunefs flag (`TUNEFS_INPROG`, which the
//! kernel and ocfs2-tools refuse to mount or change) with our
//! [`TUNEFS_FLAG_SLOTMAP`] in `s_tunefs_flag`; then the map; then every
//! copy gets the new features with the flag gone. After a crash,
//! `fsck.ocfs2-mmp` finds the flag and finishes from the map's bytes: all
//! zero is the extended format, all 0xFF the old one (code TUNEFS_INPROG).

use anyhow::{Context, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::ondisk::SuperBlock;
use ocfs2_format::slotmap::Format;
use ocfs2_format::Volume;

/// `s_tunefs_flag` bit of an interrupted slot map rewrite (ours; the
/// kernel's are REMOVE_SLOT 0x1 and DIR_TRAILER 0x2).
pub use ocfs2_format::slotmap::TUNEFS_FLAG_SLOTMAP;

/// Why the map cannot be rewritten now, or None.
pub fn refusal(vol: &Volume) -> Result<Option<String>> {
    busy(vol, "the slot map is rewritten empty")
}

/// A slot held or a journal dirty: why `what` cannot be done now, or None.
pub fn busy(vol: &Volume, what: &str) -> Result<Option<String>> {
    let map = vol.read_slot_map().context("reading the slot map")?;
    if let Some(s) = map.slots.iter().find(|s| s.legacy_in_use(map.format)) {
        return Ok(Some(format!(
            "slot {} is held ({:#010x}, node {}): {what}, so every slot must be free \
             (unmount the volume everywhere; after a crash, recover it first)",
            s.index, s.raw, s.node
        )));
    }
    for slot in 0..vol.max_slots() {
        if vol
            .journal_dirty(slot)
            .with_context(|| format!("reading journal:{slot:04}"))?
        {
            return Ok(Some(format!(
                "journal:{slot:04} is dirty: run fsck.ocfs2-mmp (it replays it) before {what}"
            )));
        }
    }
    Ok(None)
}

/// The superblock copies marked as a rewrite in progress, then the map
/// rewritten empty in `target`'s format. The caller then writes the final
/// superblock (features set, the flag gone).
pub fn rewrite(vol: &Volume, target: Format, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    mark_in_progress(vol, TUNEFS_FLAG_SLOTMAP, |_| {}, verify)
        .context("marking the superblocks: slot map rewrite in progress")?;
    verify()?;
    vol.write_empty_slot_map(target)
        .context("rewriting the slot map")?;
    Ok(())
}

/// Every superblock copy marked as an operation in progress: the
/// aborted-tunefs feature (`TUNEFS_INPROG`, which the kernel and
/// ocfs2-tools refuse) with `flag` in `s_tunefs_flag`, and what `change`
/// writes into the copy besides.
pub fn mark_in_progress(
    vol: &Volume,
    flag: u16,
    change: impl FnOnce(&mut SuperBlock),
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let mut marked: SuperBlock = *vol.sb();
    marked
        .s_feature_incompat
        .set(marked.s_feature_incompat.get() | incompat::TUNEFS_INPROG);
    marked.s_tunefs_flag.set(marked.s_tunefs_flag.get() | flag);
    change(&mut marked);
    verify()?;
    vol.write_super_everywhere(&marked)?;
    Ok(())
}
