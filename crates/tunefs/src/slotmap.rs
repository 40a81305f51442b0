//! The slot map's format: `--fs-features=[no]extended-slotmap`, and
//! `--enable-mmp` on a volume with the old map (MMP needs the extended
//! one). As mkfs.ocfs2 and tunefs.ocfs2 lay it out, the map's whole
//! allocation (`i_size`, one cluster in practice) is rewritten empty: all
//! zero (extended) or every le16 0xFFFF (old). Every slot must be free and
//! every journal clean: the map is rewritten, not translated.
//!
//! Crash order: `format::inprog` (every superblock copy marked with our
//! `slotmap::TUNEFS_FLAG_SLOTMAP`, then the map, then every copy with the new
//! features and the mark gone). After a crash, `fsck.ocfs2-mmp` finds the
//! mark and finishes from the map's bytes: all zero is the extended
//! format, all 0xFF the old one (code TUNEFS_INPROG).

use anyhow::{Context, Result};
use ocfs2_format::ondisk::SuperBlock;
use ocfs2_format::slotmap::Format;
use ocfs2_format::Volume;

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
/// rewritten empty in `target`'s format (`format::inprog`). The caller then
/// writes the final superblock (features set, the flag gone).
pub fn rewrite(vol: &Volume, target: Format, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    ocfs2_format::inprog::rewrite_slot_map(vol, target, &|| {
        verify().map_err(|e| ocfs2_format::Error::Invalid(format!("{e:#}")))
    })
    .context("rewriting the slot map (marked in progress first)")
}

/// Every superblock copy marked as an operation in progress
/// (`format::inprog::mark`), after `verify`.
pub fn mark_in_progress(
    vol: &Volume,
    flag: u16,
    change: impl FnOnce(&mut SuperBlock),
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    verify()?;
    Ok(ocfs2_format::inprog::mark(vol, flag, change)?)
}
