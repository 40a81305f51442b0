//! Per-slot system files made on a live volume (tunefs `-N` adding node
//! slots), as libocfs2's `ocfs2_new_system_inode`, `ocfs2_init_dir`,
//! `ocfs2_link` and tunefs.ocfs2's `add_slots` make them: an inode from
//! the global inode allocator, its body (an empty directory, chain
//! allocator, local alloc, truncate log, or an empty file), then its name
//! in the system directory. Journals and local quota files get their
//! clusters afterwards ([`crate::extend`]).

use crate::alloc;
use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::features::ro_compat;
use crate::fs::{slot_file_name, Volume};
use crate::link;
use crate::ondisk::*;
use zerocopy::FromBytes;

/// A per-slot system file: its name's base, mode and `i_flags` (beside
/// `VALID | SYSTEM`), and the ro_compat feature it needs (0: none), in
/// the order of the kernel's `ocfs2_system_inodes` table, which is the
/// order tunefs.ocfs2 creates them in.
pub const SLOT_FILES: [(&str, u16, u32, u32); 8] = [
    ("orphan_dir", 0o040755, 0, 0),
    (
        "extent_alloc",
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
        0,
    ),
    (
        "inode_alloc",
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
        0,
    ),
    ("journal", 0o100644, inode_flags::JOURNAL, 0),
    (
        "local_alloc",
        0o100644,
        inode_flags::BITMAP | inode_flags::LOCAL_ALLOC,
        0,
    ),
    ("truncate_log", 0o100644, inode_flags::DEALLOC, 0),
    (
        "aquota.user",
        0o100644,
        inode_flags::QUOTA,
        ro_compat::USRQUOTA,
    ),
    (
        "aquota.group",
        0o100644,
        inode_flags::QUOTA,
        ro_compat::GRPQUOTA,
    ),
];

/// The per-slot files a volume has (its quota features decide the last
/// two).
pub fn slot_files(vol: &Volume) -> Vec<(&'static str, u16, u32)> {
    let rc = vol.features().ro_compat;
    SLOT_FILES
        .iter()
        .filter(|f| f.3 == 0 || rc & f.3 != 0)
        .map(|&(n, m, f, _)| (n, m, f))
        .collect()
}

/// `ocfs2_clusters_per_group`: the `cl_cpg` of a new chain allocator.
pub fn suballoc_cpg(block_size: u32, cluster_size: u32) -> u16 {
    let mb: u32 = match block_size {
        4096 | 2048 => 4,
        1024 => 2,
        _ => 1,
    };
    ((mb << 20) / cluster_size).max(1) as u16
}

/// Make system file `name` (mode, flags): a bit of the global inode
/// allocator (grown by a group when it is full), the entry in the system directory, the inode (and, for a
/// directory, its first block or inline body first), then, for a
/// directory, the system directory's link count. Returns its block.
pub fn create(vol: &Volume, name: &str, mode: u16, flags: u32) -> Result<u64> {
    let bs = vol.block_size() as usize;
    let gia = vol.system_inode("global_inode_alloc")?;
    let free = |g: u64, bit: u16| {
        bit != 0
            && vol.read_block(g + u64::from(bit)).is_ok_and(|b| {
                Dinode::read_from_prefix(&b).is_ok_and(|(d, _)| {
                    !b.starts_with(INODE_SIGNATURE) || d.i_flags.get() & inode_flags::VALID == 0
                })
            })
    };
    // Full: one more group, as libocfs2 adds one when it runs out.
    let found = match alloc::find_free_bit(vol, gia, &free)? {
        Some(f) => Some(f),
        None => {
            alloc::add_group(vol, gia)?;
            alloc::find_free_bit(vol, gia, &free)?
        }
    };
    let Some((group, bit)) = found else {
        return Err(Error::Invalid(
            "the global inode allocator has no free inode left after it grew".into(),
        ));
    };
    alloc::take_bit(vol, gia, group, bit)?;
    let blkno = group + u64::from(bit);
    let sb = vol.super_inode();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut b = vec![0u8; bs];
    let is_dir = mode & 0o170000 == 0o040000;
    {
        let (di, rest) = Dinode::mut_from_prefix(&mut b).expect("block");
        di.i_signature.copy_from_slice(b"INODE01\0");
        di.i_generation.set(sb.di().i_generation.get());
        di.i_fs_generation.set(sb.di().i_fs_generation.get());
        di.i_suballoc_slot.set(0xFFFF);
        di.i_suballoc_bit.set(bit);
        // libocfs2 records the group whatever the features.
        di.i_suballoc_loc.set(group);
        di.i_blkno.set(blkno);
        di.i_mode.set(mode);
        di.i_links_count.set(if is_dir { 2 } else { 1 });
        di.i_flags
            .set(flags | inode_flags::VALID | inode_flags::SYSTEM);
        di.i_atime.set(now);
        di.i_ctime.set(now);
        di.i_mtime.set(now);
        if flags & inode_flags::LOCAL_ALLOC != 0 {
            let (la, _) = LocalAlloc::mut_from_prefix(rest).expect("fits");
            la.la_size.set(local_alloc_size(bs) as u16);
        } else if flags & inode_flags::CHAIN != 0 {
            let (cl, _) = ChainList::mut_from_prefix(rest).expect("fits");
            cl.cl_count.set(chain_recs_per_inode(bs) as u16);
            cl.cl_cpg
                .set(suballoc_cpg(vol.block_size(), vol.cluster_size()));
            cl.cl_bpc
                .set((vol.cluster_size() / vol.block_size()) as u16);
        } else if flags & inode_flags::DEALLOC != 0 {
            let (tl, _) = TruncateLog::mut_from_prefix(rest).expect("fits");
            tl.tl_count.set(((bs - DINODE_ID2 - 8) / 8) as u16);
        } else if !is_dir {
            let (el, _) = ExtentList::mut_from_prefix(rest).expect("fits");
            el.l_count.set(extent_recs_per_inode(bs) as u16);
        }
    }
    // The entry comes before the inode: a crash between leaves an entry
    // naming a block that holds no inode, which fsck removes (and the bit,
    // which it frees), never an inode no directory names.
    let sysdir = vol.system_dir_blkno();
    let ftype = if is_dir {
        file_type::DIR
    } else {
        file_type::REG_FILE
    };
    link::insert_entry(vol, sysdir, name.as_bytes(), blkno, ftype)?;
    vol.device().flush()?;
    if is_dir {
        link::dir_body(vol, &mut b, blkno, sysdir, &|_| true)?;
    }
    vol.write_meta(blkno, &mut b, CheckAt::Inode)?;
    vol.device().flush()?;
    if is_dir {
        link::add_links(vol, sysdir, 1)?;
        vol.device().flush()?;
    }
    Ok(blkno)
}

/// Make the per-slot files of slots `from..to` that the system directory
/// does not name yet, type by type as tunefs.ocfs2 does (a rerun after a
/// crash goes on where it stopped); a local quota file gets its two blocks
/// right after its entry, as libocfs2 initializes it. `verify` runs before
/// each file. Returns the journals made, to be sized by the caller.
pub fn add_slot_files(
    vol: &Volume,
    from: u16,
    to: u16,
    verify: &dyn Fn() -> Result<()>,
) -> Result<Vec<u64>> {
    let mut journals = Vec::new();
    for (base, mode, flags) in slot_files(vol) {
        for slot in from..to {
            let name = slot_file_name(base, slot);
            if let Ok(b) = vol.system_inode(&name) {
                if base == "journal" {
                    journals.push(b);
                }
                continue;
            }
            verify()?;
            let b = create(vol, &name, mode, flags)?;
            match base {
                "journal" => journals.push(b),
                "aquota.user" | "aquota.group" => {
                    let t = if base == "aquota.user" {
                        crate::quota::QuotaType::User
                    } else {
                        crate::quota::QuotaType::Group
                    };
                    init_local_quota(vol, b, t)?;
                }
                _ => {}
            }
        }
    }
    Ok(journals)
}

/// Give each journal of `journals` that has fewer clusters than the
/// volume's first journal with clusters (slot order) as many, and format
/// its log with that journal's features, as tunefs.ocfs2 does for the
/// journals of new slots. `verify` runs before each journal.
pub fn size_journals(
    vol: &Volume,
    journals: &[u64],
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    if journals.is_empty() {
        return Ok(());
    }
    let mut like = None;
    for slot in 0..vol.max_slots() {
        let Ok(j) = vol.system_inode(&slot_file_name("journal", slot)) else {
            continue;
        };
        let clusters = u64::from(vol.read_inode(j)?.di().i_clusters.get());
        if clusters > 0 {
            let features = vol
                .journal_superblock(j)?
                .map(|s| crate::journal::JournalFeatures::of(&s))
                .unwrap_or_default();
            like = Some((clusters, features));
            break;
        }
    }
    let Some((clusters, features)) = like else {
        return Err(Error::Invalid(
            "no journal with clusters to size the new ones after".into(),
        ));
    };
    for &j in journals {
        let have = u64::from(vol.read_inode(j)?.di().i_clusters.get());
        verify()?;
        if have < clusters {
            crate::extend::extend(vol, j, clusters - have, true)?;
        }
        vol.format_journal(j, features, None)?;
    }
    Ok(())
}

/// Give local quota file `blkno` its two blocks: the clusters, the blocks'
/// contents, then `i_size` (an empty file until then).
pub fn init_local_quota(vol: &Volume, blkno: u64, t: crate::quota::QuotaType) -> Result<()> {
    let bs = u64::from(vol.block_size());
    let blocks = crate::quota::local_file(t, vol.block_size(), vol.meta_ecc());
    let bytes = blocks.len() as u64 * bs;
    let clusters = bytes.div_ceil(u64::from(vol.cluster_size()));
    crate::extend::extend(vol, blkno, clusters, false)?;
    let mut ino = vol.read_inode(blkno)?;
    let ext = vol.extents(&ino)?;
    for (i, data) in blocks.iter().enumerate() {
        let p = vol
            .map_block(&ext, i as u64)
            .ok_or_else(|| Error::corrupt(blkno, format!("block {i} is not mapped")))?;
        vol.write_block(p, data)?;
    }
    vol.device().flush()?;
    ino.di_mut().i_size.set(bytes);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)
}

/// The block of system file `name`, made (mode `0644`, `flags`) when the
/// system directory does not name it yet: a rerun takes what a run that
/// stopped made.
pub fn lookup_or_create(vol: &Volume, name: &str, flags: u32) -> Result<u64> {
    match vol.system_inode(name) {
        Ok(b) => Ok(b),
        Err(_) => create(vol, name, 0o100644, flags),
    }
}

/// Turn quota type `t` on as tunefs.ocfs2 does (its create_quota_files):
/// the global file and every slot's local file made (or taken as a run that
/// stopped left them), the local files given their two blocks, the global
/// file sized (libocfs2's first blocks, more for the tree the ids need) and
/// written with the usage counted from the inodes, its header last. The
/// caller then sets the feature bit: until then the files are strays of a
/// volume without the feature, which nothing reads.
pub fn install_quota(
    vol: &Volume,
    t: crate::quota::QuotaType,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let bs = u64::from(vol.block_size());
    let cs = u64::from(vol.cluster_size());
    // libocfs2's order, which decides where the clusters go: the files,
    // the global file's first blocks, the local files' blocks, then the
    // global file's rest.
    verify()?;
    let g = lookup_or_create(vol, t.global_name(), inode_flags::QUOTA)?;
    let mut locals = Vec::new();
    for slot in 0..vol.max_slots() {
        verify()?;
        locals.push(lookup_or_create(
            vol,
            &t.local_name(slot),
            inode_flags::QUOTA,
        )?);
    }
    let first = (u64::from(crate::quota::GLOBAL_INIT_BLOCKS) * bs).div_ceil(cs);
    let have = u64::from(vol.read_inode(g)?.di().i_clusters.get());
    if have < first {
        verify()?;
        crate::extend::extend(vol, g, first - have, false)?;
    }
    for l in locals {
        if vol.read_inode(l)?.size() == 0 {
            verify()?;
            init_local_quota(vol, l, t)?;
        }
    }
    let dquots = crate::quota::usage(vol, t)?
        .into_iter()
        .map(|(id, u)| (id, crate::quota::entry(id, u)))
        .collect();
    let blocks = crate::quota::global_file(
        t,
        vol.block_size(),
        vol.meta_ecc(),
        crate::quota::DEFAULT_INFO,
        &dquots,
    );
    let n = (blocks.len() as u64).max(u64::from(crate::quota::GLOBAL_INIT_BLOCKS));
    let want = (n * bs).div_ceil(cs);
    let have = u64::from(vol.read_inode(g)?.di().i_clusters.get());
    verify()?;
    if have < want {
        crate::extend::extend(vol, g, want - have, false)?;
    }
    let mut ino = vol.read_inode(g)?;
    let ext = vol.extents(&ino)?;
    let at = |i: usize| {
        vol.map_block(&ext, i as u64)
            .ok_or_else(|| Error::corrupt(g, format!("block {i} is not mapped")))
    };
    for (i, data) in blocks.iter().enumerate().skip(1) {
        vol.write_block(at(i)?, data)?;
    }
    vol.device().flush()?;
    vol.write_block(at(0)?, &blocks[0])?;
    vol.device().flush()?;
    ino.di_mut().i_size.set(blocks.len() as u64 * bs);
    vol.write_meta(g, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// Turn quota type `t` off as tunefs.ocfs2 does (its remove_quota_files):
/// every file of the type truncated, then gone (`unslot::unlink`'s steps).
/// The caller clears the feature bit first: a crash leaves strays that a
/// rerun removes.
pub fn remove_quota(
    vol: &Volume,
    t: crate::quota::QuotaType,
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let names = quota_files(vol, t)?;
    for name in &names {
        let b = vol.system_inode(name)?;
        let ino = vol.read_inode(b)?;
        if ino.di().i_flags.get() & inode_flags::VALID != 0
            && (ino.di().i_clusters.get() != 0 || ino.size() != 0)
        {
            verify()?;
            crate::extend::truncate(vol, b, 0, true)?;
        }
    }
    crate::unslot::unlink(
        vol,
        &|n: &[u8]| names.iter().any(|x| x.as_bytes() == n),
        verify,
    )
}

/// The names of type `t`'s quota files the system directory holds.
pub fn quota_files(vol: &Volume, t: crate::quota::QuotaType) -> Result<Vec<String>> {
    let sysdir = vol.read_inode(vol.system_dir_blkno())?;
    let g = t.global_name().as_bytes();
    Ok(vol
        .dir_entries(&sysdir)?
        .into_iter()
        .filter(|e| {
            e.name == g
                || (e.name.len() == g.len() + 5 && e.name.starts_with(g) && e.name[g.len()] == b':')
        })
        .map(|e| e.name_lossy())
        .collect())
}

/// The slot map made to hold `s_max_slots` entries, as libocfs2's
/// `ocfs2_format_slot_map` sizes it: its allocation grown to the clusters
/// the entries need (at least one), the entries from the old `i_size` to
/// the end of the allocation written empty in the map's format, then
/// `i_size` the whole allocation. Order: clusters (marked, then the inode:
/// `extend`), the empty entries, `i_size` last; a crash before it leaves the
/// map too small again, which the next run sizes the same way.
pub fn size_slot_map(vol: &Volume) -> Result<()> {
    let blkno = vol.system_inode("slot_map")?;
    let ino = vol.read_inode(blkno)?;
    if ino.is_inline() {
        return Err(Error::Unsupported(
            "the slot map keeps its entries inline; it is not resized".into(),
        ));
    }
    let fmt = vol.slot_map_format();
    let size = fmt.entry_size() as u64;
    let need = vol.slot_map_bytes(vol.max_slots());
    let cs = u64::from(vol.cluster_size());
    let have = u64::from(ino.di().i_clusters.get());
    let want = need.div_ceil(cs).max(1);
    if want > have {
        crate::extend::extend(vol, blkno, want - have, false)?;
    }
    let mut ino = vol.read_inode(blkno)?;
    let end = u64::from(ino.di().i_clusters.get()) * cs;
    let extents = vol.extents(&ino)?;
    let bs = u64::from(vol.block_size());
    let from = ino.size().min(end) / size * size;
    let fill = crate::slotmap::empty_fill(fmt);
    for lblk in from / bs..end.div_ceil(bs) {
        let p = vol
            .map_block(&extents, lblk)
            .ok_or_else(|| Error::corrupt(blkno, format!("slot map block {lblk} is a hole")))?;
        let mut buf = vol.read_block(p)?;
        let start = (from.max(lblk * bs) - lblk * bs) as usize;
        buf[start..].fill(fill);
        vol.write_block(p, &buf)?;
    }
    vol.device().flush()?;
    ino.di_mut().i_size.set(end);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}
