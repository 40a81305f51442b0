//! Node slots taken away (`tunefs -N` to fewer slots), as tunefs.ocfs2's
//! remove_slots does it, from the highest slot down: each chain of the
//! slot's extent and inode allocators goes, group by group from its tail,
//! to the same allocator of slot `chain % slots` (the blocks allocated in
//! the group get that slot as their suballocator slot first, then the
//! group descriptor names its new allocator and chain, then that allocator
//! takes the group at the head of a chain, then the group is cut from the
//! old chain); the emptied allocator gets zero counts; the journal is
//! zeroed and truncated; the orphan directory and local quota files are
//! truncated; then every system file of the slot loses its allocator bit,
//! its valid flag and its entry in the system directory.
//!
//! Crash order: before the first write every superblock copy is marked
//! with the aborted-tunefs flag (`TUNEFS_INPROG`, which the kernel and
//! ocfs2-tools refuse) with `REMOVE_SLOT` in `s_tunefs_flag`, and already
//! holds the new `s_max_slots`; the slots to remove are those whose system
//! files the system directory still names. [`finish`] reads where the work
//! stopped from the blocks themselves (a group whose descriptor names
//! another allocator was moved, or half moved: the head of one of that
//! allocator's chains, or not yet) and goes on from there, so tunefs and
//! `fsck.ocfs2-mmp` (code TUNEFS_INPROG) call the same function; each step
//! is one block written or a step already done. The caller clears the flag
//! last.

use crate::alloc;
use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::fs::slot_file_name;
use crate::ondisk::*;
use crate::Volume;
use zerocopy::{FromBytes, IntoBytes};

/// `OCFS2_TUNEFS_INPROG_REMOVE_SLOT` in `s_tunefs_flag`.
pub const TUNEFS_FLAG_REMOVE_SLOT: u16 = 0x0001;

/// The two per-slot chain allocators, in tunefs.ocfs2's order.
const ALLOCATORS: [&str; 2] = ["extent_alloc", "inode_alloc"];

/// `ocfs2_group_desc.bg_bitmap`.
const BG_BITMAP: usize = 0x40;

/// Where the suballocator slot (`__le16`) lives in a block the allocator
/// of `base` hands out, by the block's signature, with its block check.
fn slot_field(base: &str, buf: &[u8]) -> Option<(usize, CheckAt)> {
    let by_sig: &[(&[u8], usize, CheckAt)] = if base == "inode_alloc" {
        &[(INODE_SIGNATURE, 0x0C, CheckAt::Inode)]
    } else {
        &[
            (EXTENT_BLOCK_SIGNATURE, 0x10, CheckAt::ExtentBlock),
            (XATTR_BLOCK_SIGNATURE, 0x08, CheckAt::XattrBlock),
            (REFCOUNT_BLOCK_SIGNATURE, 0x08, CheckAt::RefcountBlock),
            (DX_ROOT_SIGNATURE, 0x10, CheckAt::DxBlock),
        ]
    };
    by_sig
        .iter()
        .find(|(sig, _, _)| buf.starts_with(sig))
        .map(|&(_, off, at)| (off, at))
}

/// Why slots `to..` cannot be removed now, or None: an orphan directory
/// with entries, a local alloc with a window, a truncate log with records
/// (tunefs.ocfs2's three checks), and what this release does not handle
/// (a file with an extent tree, a chain whose groups name another
/// allocator).
pub fn refusal(vol: &Volume, to: u16) -> Result<Option<String>> {
    for s in to..vol.max_slots() {
        let name = slot_file_name("orphan_dir", s);
        let dir = vol.read_inode(vol.system_inode(&name)?)?;
        let held = vol
            .dir_entries(&dir)?
            .iter()
            .filter(|e| e.name != b"." && e.name != b"..")
            .count();
        if held > 0 {
            return Ok(Some(format!(
                "{name} holds {held} file(s) waiting to be freed: mount and unmount the volume with that slot, or run fsck.ocfs2-mmp"
            )));
        }
        let name = slot_file_name("local_alloc", s);
        if vol
            .read_inode(vol.system_inode(&name)?)?
            .di()
            .bitmap_total()
            > 0
        {
            return Ok(Some(format!(
                "{name} holds a window of clusters: mount and unmount the volume with that slot, or run fsck.ocfs2-mmp"
            )));
        }
        let name = slot_file_name("truncate_log", s);
        let tl = vol.read_inode(vol.system_inode(&name)?)?;
        let used = tl
            .id2()
            .get(2..4)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        if used > 0 {
            return Ok(Some(format!(
                "{name} holds {used} record(s): mount and unmount the volume with that slot, or run fsck.ocfs2-mmp"
            )));
        }
        for (base, _, _) in crate::sysfile::slot_files(vol) {
            let name = slot_file_name(base, s);
            let Ok(b) = vol.system_inode(&name) else {
                continue;
            };
            let ino = vol.read_inode(b)?;
            if ALLOCATORS.contains(&base) {
                for g in vol.chain_groups(&ino)? {
                    if g.desc.bg_parent_dinode.get() != b {
                        return Ok(Some(format!(
                            "{name}: group {} names allocator {} (run fsck.ocfs2-mmp first)",
                            g.blkno,
                            g.desc.bg_parent_dinode.get()
                        )));
                    }
                }
            } else if ino.has_extent_list() {
                let (el, _) = ino.extent_list()?;
                if el.l_tree_depth.get() != 0 {
                    return Ok(Some(format!(
                        "{name} has an extent tree: truncating it is not done by this release"
                    )));
                }
            }
        }
    }
    Ok(None)
}

/// Remove every slot at or past `to` whose system files the system
/// directory still names, from the highest down (see the module).
pub fn finish(vol: &Volume, to: u16, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    if to == 0 {
        return Err(Error::Invalid("a volume keeps at least one slot".into()));
    }
    let sysdir = vol.read_inode(vol.system_dir_blkno())?;
    let mut slots: Vec<u16> = vol
        .dir_entries(&sysdir)?
        .iter()
        .filter_map(|e| slot_of(&e.name))
        .filter(|&s| s >= to)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    for &r in slots.iter().rev() {
        for base in ALLOCATORS {
            if let Ok(b) = vol.system_inode(&slot_file_name(base, r)) {
                relink(vol, b, base, to, verify)?;
            }
        }
        release(vol, r, verify)?;
        let tail = format!(":{r:04}");
        unlink(vol, &|n: &[u8]| n.ends_with(tail.as_bytes()), verify)?;
    }
    Ok(())
}

/// The slot a system file's name ends with (`name:NNNN`).
fn slot_of(name: &[u8]) -> Option<u16> {
    let at = name.iter().rposition(|&c| c == b':')?;
    let tail = &name[at + 1..];
    if tail.len() != 4 || !tail.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(tail).ok()?.parse().ok()
}

fn group_desc(vol: &Volume, g: u64) -> Result<(Vec<u8>, GroupDesc)> {
    let buf = vol.read_meta(g, CheckAt::GroupDesc)?;
    if !buf.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(g, "not a group descriptor"));
    }
    let desc = GroupDesc::read_from_prefix(&buf)
        .map_err(|_| Error::corrupt(g, "group descriptor truncated"))?
        .0;
    Ok((buf, desc))
}

fn put_desc(vol: &Volume, g: u64, mut buf: Vec<u8>, desc: &GroupDesc) -> Result<()> {
    buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(desc.as_bytes());
    vol.write_meta(g, &mut buf, CheckAt::GroupDesc)
}

/// Byte offset of chain record `i` in an allocator inode.
fn rec_at(i: usize) -> usize {
    DINODE_ID2 + core::mem::size_of::<ChainList>() + i * core::mem::size_of::<ChainRec>()
}

/// Move every group of allocator `src` (of type `base`) to the allocators
/// of slots `0..to`, then zero its counts.
fn relink(
    vol: &Volume,
    src: u64,
    base: &str,
    to: u16,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    // Each round moves a group or cuts one off: a bound against damage.
    let mut rounds = 0u64;
    loop {
        rounds += 1;
        if rounds > 1 << 24 {
            return Err(Error::corrupt(src, "its chains do not empty"));
        }
        let ino = vol.read_inode(src)?;
        let (_, recs) = ino.chain_list()?;
        let Some(i) = recs.len().checked_sub(1) else {
            break;
        };
        let dst_slot = (i % usize::from(to)) as u16;
        let dst = vol.system_inode(&slot_file_name(base, dst_slot))?;
        // The part of chain i `src` still owns, and the first group past it
        // that names another allocator (moved, or half moved).
        let mut own = Vec::new();
        let mut foreign = None;
        let mut g = recs[i].c_blkno.get();
        while g != 0 {
            if own.len() > 1 << 20 || own.contains(&g) {
                return Err(Error::corrupt(src, format!("chain {i} loops")));
            }
            let (_, desc) = group_desc(vol, g)?;
            if desc.bg_parent_dinode.get() != src {
                foreign = Some(g);
                break;
            }
            own.push(g);
            g = desc.bg_next_group.get();
        }
        let moving = match foreign {
            Some(f) => {
                let (_, dst_recs) = vol.read_inode(dst)?.chain_list()?;
                if dst_recs.iter().any(|r| r.c_blkno.get() == f) {
                    None // moved: only the cut is left
                } else {
                    Some(f)
                }
            }
            None => own.pop(),
        };
        if let Some(g) = moving {
            move_group(vol, g, base, dst, dst_slot, verify)?;
        }
        // Cut the moved group off the chain: its predecessor ends there,
        // or the chain record goes.
        verify()?;
        match own.last() {
            Some(&p) => {
                let (buf, mut desc) = group_desc(vol, p)?;
                desc.bg_next_group.set(0);
                put_desc(vol, p, buf, &desc)?;
            }
            None => {
                let mut ino = vol.read_inode(src)?;
                let at = rec_at(i);
                ino.buf[at..at + 16].fill(0);
                ino.buf[DINODE_ID2 + 6..DINODE_ID2 + 8].copy_from_slice(&(i as u16).to_le_bytes());
                vol.write_meta(src, &mut ino.buf, CheckAt::Inode)?;
            }
        }
    }
    // Empty: no counts, no clusters, no records.
    let mut ino = vol.read_inode(src)?;
    let di = ino.di();
    if di.bitmap_total() != 0
        || di.bitmap_used() != 0
        || di.i_clusters.get() != 0
        || ino.size() != 0
    {
        verify()?;
        let di = ino.di_mut();
        di.set_bitmap_total(0);
        di.set_bitmap_used(0);
        di.i_clusters.set(0);
        di.i_size.set(0);
        vol.write_meta(src, &mut ino.buf, CheckAt::Inode)?;
    }
    vol.device().flush()
}

/// Group `g` to allocator `dst` (of slot `slot`): its allocated blocks
/// get the slot, its descriptor the allocator and the chain it heads,
/// then `dst` takes it in one write. Where the chain goes is tunefs.ocfs2's
/// choice: the next free record, or, all in use, the one the allocator's
/// size picks.
fn move_group(
    vol: &Volume,
    g: u64,
    base: &str,
    dst: u64,
    slot: u16,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let (buf, _) = group_desc(vol, g)?;
    let blocks = vol.group_blocks(g)?;
    for (bit, &b) in blocks.iter().enumerate().skip(1) {
        if buf
            .get(BG_BITMAP + bit / 8)
            .is_none_or(|x| x & (1 << (bit % 8)) == 0)
        {
            continue;
        }
        let mut blk = vol.read_block(b)?;
        let Some((off, at)) = slot_field(base, &blk) else {
            continue;
        };
        if blk[off..off + 2] != slot.to_le_bytes() {
            verify()?;
            blk[off..off + 2].copy_from_slice(&slot.to_le_bytes());
            vol.write_meta(b, &mut blk, at)?;
        }
    }
    let mut d = vol.read_inode(dst)?;
    let (cl, recs) = d.chain_list()?;
    let (count, next) = (cl.cl_count.get(), cl.cl_next_free_rec.get());
    if count == 0 {
        return Err(Error::corrupt(dst, "chain list cl_count is 0"));
    }
    let pos = if next < count {
        next
    } else {
        let per = u32::from(cl.cl_cpg.get()) * u32::from(cl.cl_bpc.get());
        ((d.di().bitmap_total() / per.max(1)) % u32::from(count)) as u16
    };
    let head = recs.get(usize::from(pos)).map_or(0, |r| r.c_blkno.get());
    let (buf, mut desc) = group_desc(vol, g)?;
    desc.bg_chain.set(pos);
    desc.bg_parent_dinode.set(dst);
    desc.bg_next_group.set(head);
    verify()?;
    put_desc(vol, g, buf, &desc)?;
    let (bits, free) = (desc.bg_bits.get(), desc.bg_free_bits_count.get());
    alloc::head_group(&mut d, pos, g, bits, free)?;
    let cpg = u64::from(cl.cl_cpg.get());
    let di = d.di_mut();
    di.i_size
        .set(di.i_size.get() + cpg * u64::from(vol.cluster_size()));
    verify()?;
    vol.write_meta(dst, &mut d.buf, CheckAt::Inode)
}

/// Slot `r`'s clusters back to the global bitmap: the journal zeroed (its
/// old blocks may look like inodes to a later scan) and truncated, the
/// orphan directory and local quota files truncated.
fn release(vol: &Volume, r: u16, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    let bs = u64::from(vol.block_size());
    let bpc = u64::from(vol.cluster_size()) / bs;
    for base in ["journal", "orphan_dir", "aquota.user", "aquota.group"] {
        let Ok(b) = vol.system_inode(&slot_file_name(base, r)) else {
            continue;
        };
        let ino = vol.read_inode(b)?;
        if ino.is_inline() || (ino.di().i_clusters.get() == 0 && ino.size() == 0) {
            continue;
        }
        verify()?;
        if base == "journal" {
            for e in vol.extents(&ino)? {
                let n = u64::from(e.clusters) * bpc;
                crate::io::write_zeros(vol.device(), vol.block_offset(e.blkno)?, n * bs)?;
            }
            vol.device().flush()?;
        }
        crate::extend::truncate(vol, b, 0, true)?;
    }
    Ok(())
}

/// System files gone, those whose names `pick` takes: for each, the inode
/// invalid, its entry cleared, its bit in its inode allocator freed, and
/// for a directory the system directory's link count lowered (the order of
/// the kernel's orphan wipe: a crash leaves an entry naming an invalid
/// inode, or a bit naming none, which fsck repairs). A step found done is
/// passed over, so a rerun finishes what a run that stopped began.
pub fn unlink(
    vol: &Volume,
    pick: &dyn Fn(&[u8]) -> bool,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let sysdir_blkno = vol.system_dir_blkno();
    let sysdir = vol.read_inode(sysdir_blkno)?;
    let mut removed = false;
    for e in vol.dir_entries(&sysdir)? {
        if !pick(&e.name) || e.name == b"." || e.name == b".." {
            continue;
        }
        verify()?;
        let mut was_dir = e.file_type == file_type::DIR;
        let mut freed = None;
        if let Ok(mut ino) = vol.read_inode(e.inode) {
            let di = *ino.di();
            was_dir |= ino.is_dir();
            let bit = di.i_suballoc_bit.get();
            let group = match di.i_suballoc_loc.get() {
                0 => e.inode.checked_sub(u64::from(bit)),
                loc => Some(loc),
            };
            let owner = match di.i_suballoc_slot.get() {
                0xFFFF => vol.system_inode("global_inode_alloc").ok(),
                s => vol.system_inode(&slot_file_name("inode_alloc", s)).ok(),
            };
            if di.i_flags.get() & inode_flags::VALID != 0 {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let d = ino.di_mut();
                d.i_flags
                    .set(d.i_flags.get() & !(inode_flags::VALID | inode_flags::ORPHANED));
                d.i_dtime.set(now);
                vol.write_meta(e.inode, &mut ino.buf, CheckAt::Inode)?;
            }
            freed = group.zip(owner).map(|(g, o)| (o, g, bit));
        }
        let (blkno, off, at) = crate::link::entry_location(&sysdir, &e);
        let mut blk = vol.read_block(blkno)?;
        blk[off..off + 8].fill(0);
        vol.write_meta(blkno, &mut blk, at)?;
        if let Some((owner, group, bit)) = freed {
            alloc::free_bit(vol, owner, group, bit)?;
        }
        if was_dir {
            let mut sd = vol.read_inode(sysdir_blkno)?;
            let links = sd.di().i_links_count.get();
            sd.di_mut().i_links_count.set(links.saturating_sub(1));
            vol.write_meta(sysdir_blkno, &mut sd.buf, CheckAt::Inode)?;
        }
        removed = true;
    }
    // An indexed system directory gets its index built again without the
    // names cleared (until then its index names entries that are gone,
    // which lookups pass over and fsck rebuilds).
    if removed && sysdir.dyn_features() & dyn_features::INDEXED_DIR != 0 {
        verify()?;
        crate::dxtree::drop(vol, sysdir_blkno)?;
        crate::dxtree::build(vol, sysdir_blkno, crate::dx::seed(vol.sb()), &|_| true)?;
    }
    vol.device().flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_suffixes() {
        assert_eq!(slot_of(b"journal:0003"), Some(3));
        assert_eq!(slot_of(b"aquota.user:0012"), Some(12));
        assert_eq!(slot_of(b"global_bitmap"), None);
        assert_eq!(slot_of(b"x:12"), None);
        assert_eq!(slot_of(b"x:12a4"), None);
    }

    #[test]
    fn slot_fields_by_signature() {
        let mut b = vec![0u8; 512];
        b[..7].copy_from_slice(b"INODE01");
        assert_eq!(slot_field("inode_alloc", &b), Some((0x0C, CheckAt::Inode)));
        assert_eq!(slot_field("extent_alloc", &b), None);
        b[..7].copy_from_slice(b"XATTR01");
        assert_eq!(
            slot_field("extent_alloc", &b),
            Some((0x08, CheckAt::XattrBlock))
        );
    }
}
