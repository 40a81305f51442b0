//! Changes that span several writes, marked in progress in every
//! superblock copy first: the aborted-tunefs feature (`TUNEFS_INPROG`,
//! which the kernel and ocfs2-tools refuse to mount or change) with a bit
//! in `s_tunefs_flag` saying which change. fsck.ocfs2-mmp finishes a
//! marked change from what the blocks hold (code TUNEFS_INPROG); the
//! caller's last write is the superblock without the mark.
//!
//! The slot map rewrite is one such change: tunefs.ocfs2 writes the map,
//! then the superblock, and a crash between leaves a map its superblock
//! misreads. Here the copies are marked with [`TUNEFS_FLAG_SLOTMAP`], then
//! the map is rewritten empty (all zero: extended; every byte 0xFF: old),
//! then the superblock names the new format without the mark.

use crate::error::Result;
use crate::features::incompat;
use crate::ondisk::SuperBlock;
use crate::slotmap::{Format, TUNEFS_FLAG_SLOTMAP};
use crate::Volume;

/// Every superblock copy marked as a change `flag` in progress, with what
/// `change` writes into the copy besides. The caller checks that it still
/// holds the volume right before.
pub fn mark(vol: &Volume, flag: u16, change: impl FnOnce(&mut SuperBlock)) -> Result<()> {
    let mut marked: SuperBlock = *vol.sb();
    marked
        .s_feature_incompat
        .set(marked.s_feature_incompat.get() | incompat::TUNEFS_INPROG);
    marked.s_tunefs_flag.set(marked.s_tunefs_flag.get() | flag);
    change(&mut marked);
    vol.write_super_everywhere(&marked)?;
    Ok(())
}

/// The superblock copies marked as a slot map rewrite, then the map
/// rewritten empty in `target`'s format. The caller then writes the final
/// superblock (`target`'s feature bit, the mark gone), as
/// [`convert_slot_map`] does.
pub fn rewrite_slot_map(
    vol: &Volume,
    target: Format,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    verify()?;
    mark(vol, TUNEFS_FLAG_SLOTMAP, |_| {})?;
    verify()?;
    vol.write_empty_slot_map(target)
}

/// The whole rewrite: [`rewrite_slot_map`], then every superblock copy
/// with `target`'s feature bit (extended-slotmap set or cleared), without
/// the slot map mark (an earlier rewrite's that crashed included; the
/// aborted-tunefs feature goes when no other mark is left), and nothing
/// else changed. The map is rewritten, not translated: what its slots held
/// is gone.
pub fn convert_slot_map(
    vol: &Volume,
    target: Format,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    rewrite_slot_map(vol, target, verify)?;
    let mut sb: SuperBlock = *vol.sb();
    let flags = sb.s_tunefs_flag.get() & !TUNEFS_FLAG_SLOTMAP;
    sb.s_tunefs_flag.set(flags);
    let mut f = sb.s_feature_incompat.get();
    if flags == 0 {
        f &= !incompat::TUNEFS_INPROG;
    }
    sb.s_feature_incompat.set(match target {
        Format::Extended => f | incompat::EXTENDED_SLOT_MAP,
        Format::Old => f & !incompat::EXTENDED_SLOT_MAP,
    });
    verify()?;
    vol.write_super_everywhere(&sb)?;
    Ok(())
}
