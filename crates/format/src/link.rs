//! Names and directories added to an unmounted volume: an entry put into a
//! directory, a directory's '..' pointed elsewhere, a directory made (its
//! inode taken from an inode allocator). fsck's repairs use them to make
//! lost+found, to reconnect what no directory names and to rebuild a root.
//!
//! Write order, so that a crash at any point leaves what the next fsck
//! explains: allocator bits before the blocks that use them (a crash
//! leaves a bit nothing uses, which fsck frees), a directory's blocks
//! before its inode, an inode before the entry that names it (a crash
//! leaves an inode nothing names, which fsck reconnects), a new directory
//! block before the `i_size` that covers it. Each write is one whole block
//! with its metaecc check recomputed.
//!
//! An indexed directory gets an index entry with each name when its index
//! is kept inline in its root (a root with leaf blocks is refused), and a
//! new directory an index when the volume has indexed directories and no
//! inline data, as the kernel gives it one.

use crate::alloc;
use crate::blockcheck::CheckAt;
use crate::dx;
use crate::error::{Error, Result};
use crate::features::incompat;
use crate::fs::{slot_file_name, Inode};
use crate::ondisk::*;
use crate::Volume;
use zerocopy::FromBytes;

/// Bytes of a directory trailer at the end of a block.
pub const DIR_TRAILER_LEN: usize = core::mem::size_of::<DirBlockTrailer>();

/// Where directory entry `e` of directory `dir` lives: its block, the
/// entry's byte offset there, and the block's check (the inode's for an
/// inline directory, the trailer's for a directory block).
pub fn entry_location(dir: &Inode, e: &crate::fs::DirEntry) -> (u64, usize, CheckAt) {
    if dir.is_inline() && e.blkno == dir.blkno {
        (
            dir.blkno,
            DINODE_ID2 + core::mem::size_of::<InlineData>() + e.offset,
            CheckAt::Inode,
        )
    } else {
        (e.blkno, e.offset, CheckAt::DirTrailer)
    }
}

/// Fill the trailer at the end of directory block `blk` (number `blkno`,
/// of directory `parent`): `free` is the index's (free rec_len, next
/// block with free space), (0, 0) for a directory without an index.
pub fn write_dir_trailer(blk: &mut [u8], blkno: u64, parent: u64, free: (u16, u64)) {
    let off = blk.len() - DIR_TRAILER_LEN;
    // Zeroed first, as libocfs2's ocfs2_init_dir_trailer does: what an
    // entry left there must not show through its empty-entry fields.
    blk[off..].fill(0);
    let (t, _) = DirBlockTrailer::mut_from_prefix(&mut blk[off..]).expect("64 bytes");
    t.db_free_rec_len.set(free.0);
    t.db_free_next.set(free.1);
    t.db_compat_inode.set(0);
    t.db_compat_rec_len.set(DIR_TRAILER_LEN as u16);
    t.db_signature.copy_from_slice(b"DIRTRL1\0");
    t.db_blkno.set(blkno);
    t.db_parent_dinode.set(parent);
}

/// Put an entry into the entry area `area` (a directory block without its
/// trailer, or an inode's inline data): into a free entry big enough, or
/// into the slack after a live entry, which is split. Returns false when
/// there is no room. Entries whose lengths do not add up stop the search.
pub fn place_entry(area: &mut [u8], name: &[u8], inode: u64, ftype: u8) -> bool {
    let need = dir_rec_len(name.len());
    let mut off = 0;
    while off + DIR_MEMBER_LEN <= area.len() {
        let rec_len = usize::from(u16::from_le_bytes([area[off + 8], area[off + 9]]));
        if rec_len < DIR_MEMBER_LEN || off + rec_len > area.len() {
            return false;
        }
        let live = u64::from_le_bytes(area[off..off + 8].try_into().expect("8 bytes")) != 0;
        let own = if live {
            dir_rec_len(usize::from(area[off + 10]))
        } else {
            0
        };
        if rec_len >= own + need {
            let at = off + own;
            if live {
                area[off + 8..off + 10].copy_from_slice(&(own as u16).to_le_bytes());
            }
            let len = rec_len - own;
            area[at..at + 8].copy_from_slice(&inode.to_le_bytes());
            area[at + 8..at + 10].copy_from_slice(&(len as u16).to_le_bytes());
            area[at + 10] = name.len() as u8;
            area[at + 11] = ftype;
            area[at + DIR_MEMBER_LEN..at + DIR_MEMBER_LEN + name.len()].copy_from_slice(name);
            return true;
        }
        off += rec_len;
    }
    false
}

/// Where a directory's entries live: the inode's inline area (its byte
/// range in the inode block), or the usable bytes of each block.
fn inline_area(vol: &Volume, dir: &Inode) -> Result<core::ops::Range<usize>> {
    let start = DINODE_ID2 + core::mem::size_of::<InlineData>();
    let count = usize::from(u16::from_le_bytes([
        dir.buf[DINODE_ID2],
        dir.buf[DINODE_ID2 + 1],
    ]));
    if start + count > vol.block_size() as usize {
        return Err(Error::corrupt(
            dir.blkno,
            format!("inline id_count {count} runs past the block"),
        ));
    }
    Ok(start..start + count)
}

/// Bytes of a directory block that hold entries: all but the trailer when
/// the directory has one (metaecc volumes, indexed directories: the
/// kernel's `ocfs2_supports_dir_trailer`).
fn entry_limit(vol: &Volume, trailer: bool) -> usize {
    let bs = vol.block_size() as usize;
    if trailer {
        bs - DIR_TRAILER_LEN
    } else {
        bs
    }
}

fn is_indexed(dir: &Inode) -> bool {
    dir.dyn_features() & dyn_features::INDEXED_DIR != 0
}

/// Whether a directory's blocks end in a trailer.
fn has_trailer(vol: &Volume, dir: &Inode) -> bool {
    vol.meta_ecc() || is_indexed(dir)
}

/// The largest room for a new entry in an entry area: a free entry's
/// length or the slack after a live one (a trailer's `db_free_rec_len`).
pub(crate) fn largest_hole(area: &[u8]) -> usize {
    let mut off = 0;
    let mut best = 0;
    while off + DIR_MEMBER_LEN <= area.len() {
        let rec_len = usize::from(u16::from_le_bytes([area[off + 8], area[off + 9]]));
        if rec_len < DIR_MEMBER_LEN || off + rec_len > area.len() {
            break;
        }
        let live = u64::from_le_bytes(area[off..off + 8].try_into().expect("8 bytes")) != 0;
        let own = if live {
            dir_rec_len(usize::from(area[off + 10]))
        } else {
            0
        };
        best = best.max(rec_len.saturating_sub(own));
        off += rec_len;
    }
    best
}

/// An inline index root, read and checked for one more entry.
fn dx_root_with_room(vol: &Volume, dir: &Inode) -> Result<(u64, Vec<u8>)> {
    let dx = dir.di().i_dx_root.get();
    let buf = vol.read_meta(dx, CheckAt::DxBlock)?;
    let (h, _) = DxRootBlock::read_from_prefix(&buf)
        .map_err(|_| Error::corrupt(dx, "index root truncated"))?;
    if !buf.starts_with(DX_ROOT_SIGNATURE) || h.dr_dir_blkno.get() != dir.blkno {
        return Err(Error::corrupt(
            dx,
            format!("not the index root of directory {}", dir.blkno),
        ));
    }
    if h.dr_flags & dx::FLAG_INLINE == 0 {
        return Err(Error::Unsupported(format!(
            "directory {}'s index has leaf blocks: a name added there needs a leaf entry",
            dir.blkno
        )));
    }
    let l = dx::ENTRY_LIST;
    let count = usize::from(u16::from_le_bytes([buf[l + 4], buf[l + 5]]));
    let used = usize::from(u16::from_le_bytes([buf[l + 6], buf[l + 7]]));
    if used >= count.min(dx::inline_capacity(buf.len())) {
        return Err(Error::Invalid(format!(
            "directory {}'s inline index is full",
            dir.blkno
        )));
    }
    Ok((dx, buf))
}

/// Append `(hash of name, block)` to an inline index root read by
/// [`dx_root_with_room`], and write it.
fn dx_append(vol: &Volume, dx: u64, mut buf: Vec<u8>, name: &[u8], block: u64) -> Result<()> {
    let (ma, mi) = dx::name_hash(dx::seed(vol.sb()), name);
    let l = dx::ENTRY_LIST;
    let used = usize::from(u16::from_le_bytes([buf[l + 6], buf[l + 7]]));
    let o = l + 8 + used * dx::ENTRY_LEN;
    buf[o..o + 4].copy_from_slice(&ma.to_le_bytes());
    buf[o + 4..o + 8].copy_from_slice(&mi.to_le_bytes());
    buf[o + 8..o + 16].copy_from_slice(&block.to_le_bytes());
    buf[l + 6..l + 8].copy_from_slice(&((used + 1) as u16).to_le_bytes());
    let (h, _) = DxRootBlock::mut_from_prefix(&mut buf).expect("checked");
    h.dr_num_entries.set(h.dr_num_entries.get() + 1);
    vol.write_meta(dx, &mut buf, CheckAt::DxBlock)
}

fn dir_inode(vol: &Volume, blkno: u64) -> Result<Inode> {
    let dir = vol.read_inode(blkno)?;
    if !dir.is_dir() {
        return Err(Error::Invalid(format!("inode {blkno} is not a directory")));
    }
    Ok(dir)
}

/// Add `name` -> `inode` (of type `ftype`) to directory `dir_blkno`. Room is
/// taken in the inline area, in an existing block, or in a new block of the
/// directory's last cluster (written first, then the directory's `i_size`);
/// a directory that would need a new cluster is an error, nothing written.
/// The directory's link count is the caller's.
pub fn insert_entry(
    vol: &Volume,
    dir_blkno: u64,
    name: &[u8],
    inode: u64,
    ftype: u8,
) -> Result<()> {
    if name.is_empty() || name.len() > MAX_FILENAME_LEN {
        return Err(Error::Invalid(format!("name of {} bytes", name.len())));
    }
    let mut dir = dir_inode(vol, dir_blkno)?;
    if dir.is_inline() {
        let r = inline_area(vol, &dir)?;
        if place_entry(&mut dir.buf[r], name, inode, ftype) {
            return vol.write_meta(dir_blkno, &mut dir.buf, CheckAt::Inode);
        }
        uninline(vol, dir_blkno)?;
        dir = dir_inode(vol, dir_blkno)?;
    }
    let extents = vol.extents(&dir)?;
    let bs = u64::from(vol.block_size());
    let trailer = has_trailer(vol, &dir);
    let limit = entry_limit(vol, trailer);
    let nblocks = dir.size().div_ceil(bs);
    // An indexed directory also gets an index entry (its root after the
    // block: a crash in between leaves a name the index does not find,
    // which lookups through the index miss and readdir shows). An index
    // with leaves, or an inline one that is full, is built again instead
    // once the name is in (`dxtree`).
    let dx = if is_indexed(&dir) {
        dx_root_with_room(vol, &dir).ok()
    } else {
        None
    };
    let rebuild = is_indexed(&dir) && dx.is_none();
    let reindex = || -> Result<()> {
        crate::dxtree::drop(vol, dir_blkno)?;
        crate::dxtree::build(vol, dir_blkno, dx::seed(vol.sb()), &|_| true)
    };
    for lblk in 0..nblocks {
        let Some(p) = vol.map_block(&extents, lblk) else {
            continue;
        };
        let mut buf = if trailer {
            vol.read_meta(p, CheckAt::DirTrailer)?
        } else {
            vol.read_block(p)?
        };
        if place_entry(&mut buf[..limit], name, inode, ftype) {
            if let Some((dx, root)) = dx {
                // The trailer's free space follows (the index's free list
                // is walked by it).
                let hole = largest_hole(&buf[..limit]) as u16;
                let off = buf.len() - DIR_TRAILER_LEN;
                let (t, _) = DirBlockTrailer::mut_from_prefix(&mut buf[off..]).expect("64 bytes");
                t.db_free_rec_len.set(hole);
                vol.write_meta(p, &mut buf, CheckAt::DirTrailer)?;
                return dx_append(vol, dx, root, name, p);
            }
            vol.write_meta(p, &mut buf, CheckAt::DirTrailer)?;
            return if rebuild { reindex() } else { Ok(()) };
        }
    }
    let dx_inline = dx.is_some();
    // A new block, inside the clusters the directory has, or in one more
    // cluster (taken and mapped first: a crash leaves a directory with a
    // cluster past its size, which it may have).
    let cs = u64::from(vol.cluster_size());
    let inside = |dir: &Inode, extents: &[crate::fs::Extent]| {
        vol.map_block(extents, nblocks)
            .filter(|_| (nblocks + 1) * bs <= u64::from(dir.di().i_clusters.get()) * cs)
    };
    let p = match inside(&dir, &extents) {
        Some(p) => p,
        None => {
            crate::extend::extend(vol, dir_blkno, 1, false)?;
            dir = dir_inode(vol, dir_blkno)?;
            let extents = vol.extents(&dir)?;
            inside(&dir, &extents).ok_or_else(|| {
                Error::Invalid(format!(
                    "directory {dir_blkno}: block {nblocks} is not mapped after it grew"
                ))
            })?
        }
    };
    let mut buf = vec![0u8; bs as usize];
    buf[8..10].copy_from_slice(&(limit as u16).to_le_bytes());
    place_entry(&mut buf[..limit], name, inode, ftype);
    if trailer {
        write_dir_trailer(&mut buf, p, dir_blkno, (0, 0));
    }
    vol.write_meta(p, &mut buf, CheckAt::DirTrailer)?;
    dir.di_mut().i_size.set((nblocks + 1) * bs);
    vol.write_meta(dir_blkno, &mut dir.buf, CheckAt::Inode)?;
    // An indexed directory's new block: its index built again (the free
    // list and the new name with it).
    if dx_inline || rebuild {
        reindex()?;
    }
    Ok(())
}

/// Why [`insert_entry`] could not take every one of `names` into
/// directory `dir_blkno` (checked before anything is written), or None: an
/// inline directory on a volume with indexed directories whose names would
/// not fit one block and its inline index once out of the inode, or an
/// inline index root without room.
pub fn lacks_room(vol: &Volume, dir_blkno: u64, names: &[String]) -> Result<Option<String>> {
    let dir = dir_inode(vol, dir_blkno)?;
    if is_indexed(&dir) {
        let (_, buf) = dx_root_with_room(vol, &dir)?;
        let l = dx::ENTRY_LIST;
        let count = usize::from(u16::from_le_bytes([buf[l + 4], buf[l + 5]]));
        let used = usize::from(u16::from_le_bytes([buf[l + 6], buf[l + 7]]));
        let room = count.min(dx::inline_capacity(buf.len())) - used;
        return Ok((names.len() > room).then(|| {
            format!(
                "directory {dir_blkno}'s index has room for {room} more names, {} are needed (an index with leaf blocks is not done by this release)",
                names.len()
            )
        }));
    }
    if !dir.is_inline() || !vol.features().has_incompat(incompat::INDEXED_DIRS) {
        return Ok(None);
    }
    let r = inline_area(vol, &dir)?;
    let area = &dir.buf[r];
    let need: usize = names.iter().map(|n| dir_rec_len(n.len())).sum();
    let entries = vol.dir_entries(&dir)?;
    let taken: usize = entries.iter().map(|e| dir_rec_len(e.name.len())).sum();
    if need <= area.len().saturating_sub(taken) {
        return Ok(None);
    }
    // It moves to one block with an inline index ([`uninline`]): both
    // must hold every name.
    let bs = vol.block_size() as usize;
    let block = entry_limit(vol, true).saturating_sub(taken);
    let index = dx::inline_capacity(bs).saturating_sub(entries.len());
    Ok((need > block || names.len() > index).then(|| {
        format!(
            "directory {dir_blkno} would need a second block or an index with leaf blocks for {} more names ({block} bytes and {index} index entries free once out of its inode), which this release does not do",
            names.len()
        )
    }))
}

/// Move an inode's inline data into a cluster, as libocfs2's
/// ocfs2_convert_inline_data_to_extents does (a full inline directory,
/// `tunefs --fs-features=noinline-data`): a cluster taken and zeroed, the
/// data written in its first block, then the inode in one write (the inline
/// flag off, an extent list of that cluster beside any inline xattrs; an
/// empty file gets an empty list and no cluster).
/// A directory's entries fill the block (the last one stretched to the
/// block's end, or to its trailer); on a volume with indexed directories
/// the block gets a trailer and the directory an inline index root (from
/// slot 0's extent allocator, written before the inode), as the kernel
/// indexes a directory it expands, where libocfs2 leaves none (and
/// fsck.ocfs2 then rebuilds it). A crash before the inode leaves a cluster
/// and an index block that nothing uses, which fsck frees.
pub fn uninline(vol: &Volume, blkno: u64) -> Result<()> {
    let ino = vol.read_inode(blkno)?;
    if !ino.is_inline() {
        return Ok(());
    }
    let is_dir = ino.is_dir();
    if !is_dir && ino.mode() & 0o170000 != 0o100000 {
        return Err(Error::Invalid(format!(
            "inode {blkno} has inline data but is neither a file nor a directory"
        )));
    }
    let bs = vol.block_size() as usize;
    let index = is_dir && vol.features().has_incompat(incompat::INDEXED_DIRS);
    let trailer = is_dir && (vol.meta_ecc() || index);
    let limit = entry_limit(vol, trailer);
    let area = inline_area(vol, &ino)?;
    let used = area.len().min(ino.size() as usize);
    let mut blk = vec![0u8; bs];
    blk[..used].copy_from_slice(&ino.buf[area.start..area.start + used]);
    let mut names: Vec<Vec<u8>> = Vec::new();
    if is_dir {
        // The last entry reaches the end of what was used: stretch it.
        let mut off = 0;
        let mut last = None;
        while off + DIR_MEMBER_LEN <= used {
            let rec_len = usize::from(u16::from_le_bytes([blk[off + 8], blk[off + 9]]));
            let name_len = usize::from(blk[off + 10]);
            if rec_len < DIR_MEMBER_LEN
                || off + rec_len > used
                || DIR_MEMBER_LEN + name_len > rec_len
            {
                return Err(Error::corrupt(
                    blkno,
                    format!("inline entry at {off} has rec_len {rec_len}"),
                ));
            }
            if u64::from_le_bytes(blk[off..off + 8].try_into().expect("8 bytes")) != 0 {
                names.push(blk[off + DIR_MEMBER_LEN..off + DIR_MEMBER_LEN + name_len].to_vec());
            }
            last = Some(off);
            off += rec_len;
        }
        let Some(last) = last else {
            return Err(Error::corrupt(blkno, "inline directory without entries"));
        };
        blk[last + 8..last + 10].copy_from_slice(&((limit - last) as u16).to_le_bytes());
        if index && names.len() > dx::inline_capacity(bs) {
            return Err(Error::Unsupported(format!(
                "directory {blkno}: its {} names need an index with leaf blocks, which this release does not build",
                names.len()
            )));
        }
    }
    // An empty file gets an empty list: libocfs2 gives it a cluster past
    // its size, which fsck.ocfs2 then reports (INODE_SPARSE_SIZE).
    let empty = !is_dir && used == 0;
    let p = if empty {
        0
    } else {
        let c = alloc::take_cluster(vol, &|_| true)?;
        let p = c * u64::from(vol.cluster_size() / vol.block_size());
        crate::io::write_zeros(
            vol.device(),
            vol.block_offset(p)?,
            u64::from(vol.cluster_size()),
        )?;
        p
    };
    // (A file's bytes are not entries: no hole to measure.)
    let hole = if is_dir {
        largest_hole(&blk[..limit])
    } else {
        0
    };
    if is_dir {
        if trailer {
            let free = if index { (hole as u16, 0) } else { (0, 0) };
            write_dir_trailer(&mut blk, p, blkno, free);
        }
        vol.write_meta(p, &mut blk, CheckAt::DirTrailer)?;
    } else if used > 0 {
        vol.write_block(p, &blk)?;
    }
    let dx_root = if index {
        // On the free list when a name still fits.
        let free = if hole >= dir_rec_len(1) { p } else { 0 };
        Some(write_dx_root(vol, blkno, p, free, &names)?)
    } else {
        None
    };
    let mut ino = vol.read_inode(blkno)?;
    // The list ends where the inline xattrs begin.
    let xattrs = if ino.dyn_features() & dyn_features::INLINE_XATTR != 0 {
        usize::from(ino.di().i_xattr_inline_size.get())
    } else {
        0
    };
    if DINODE_ID2 + 16 + 16 + xattrs > bs {
        return Err(Error::corrupt(
            blkno,
            format!("inline xattr size {xattrs} leaves no room for an extent list"),
        ));
    }
    {
        let di = ino.di_mut();
        let mut f = di.i_dyn_features.get() & !dyn_features::INLINE_DATA;
        if let Some(dxb) = dx_root {
            f |= dyn_features::INDEXED_DIR;
            di.i_dx_root.set(dxb);
        }
        di.i_dyn_features.set(f);
        di.i_clusters.set(u32::from(!empty));
        if is_dir {
            di.i_size.set(bs as u64);
        }
    }
    let id2 = &mut ino.buf[DINODE_ID2..bs - xattrs];
    id2.fill(0);
    let count = ((bs - xattrs - DINODE_ID2 - 16) / 16) as u16;
    id2[2..4].copy_from_slice(&count.to_le_bytes()); // l_count
    if !empty {
        // l_next_free_rec 1; the record: e_cpos 0, e_int_clusters 1, e_blkno.
        id2[4..6].copy_from_slice(&1u16.to_le_bytes());
        id2[0x10 + 4..0x10 + 8].copy_from_slice(&1u32.to_le_bytes());
        id2[0x10 + 8..0x10 + 16].copy_from_slice(&p.to_le_bytes());
    }
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// An inline index root for directory `dir` whose names all live in its
/// one block `dir_block`: a block taken from slot 0's extent allocator, the
/// names' hashes in it, `free_blk` as its free list. Returns the root.
fn write_dx_root(
    vol: &Volume,
    dir: u64,
    dir_block: u64,
    free_blk: u64,
    names: &[Vec<u8>],
) -> Result<u64> {
    let (dxb, group, bit) = alloc::take_meta_block(vol, 0)?;
    let root = dx::Root {
        blkno: dxb,
        dir_blkno: dir,
        generation: vol.super_inode().di().i_fs_generation.get(),
        slot: 0,
        bit,
        group,
        free_blk,
    };
    let seed = dx::seed(vol.sb());
    let entries: Vec<(u32, u32, u64)> = names
        .iter()
        .map(|n| {
            let (ma, mi) = dx::name_hash(seed, n);
            (ma, mi, dir_block)
        })
        .collect();
    let mut rb = root.block(vol.block_size() as usize, &entries);
    vol.write_meta(dxb, &mut rb, CheckAt::DxBlock)?;
    Ok(dxb)
}

/// Point directory `dir_blkno`'s '..' (its second entry) at `parent`.
pub fn set_dotdot(vol: &Volume, dir_blkno: u64, parent: u64) -> Result<()> {
    let mut dir = vol.read_inode(dir_blkno)?;
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "inode {dir_blkno} is not a directory"
        )));
    }
    let set = |area: &mut [u8]| -> bool {
        if area.len() < DIR_MEMBER_LEN {
            return false;
        }
        let first = usize::from(u16::from_le_bytes([area[8], area[9]]));
        let at = first;
        if first < DIR_MEMBER_LEN || at + DIR_MEMBER_LEN + 2 > area.len() {
            return false;
        }
        if area[at + 10] != 2 || &area[at + DIR_MEMBER_LEN..at + DIR_MEMBER_LEN + 2] != b".." {
            return false;
        }
        area[at..at + 8].copy_from_slice(&parent.to_le_bytes());
        true
    };
    let missing = || Error::corrupt(dir_blkno, "directory has no '..' as its second entry");
    if dir.is_inline() {
        let r = inline_area(vol, &dir)?;
        if !set(&mut dir.buf[r]) {
            return Err(missing());
        }
        return vol.write_meta(dir_blkno, &mut dir.buf, CheckAt::Inode);
    }
    let extents = vol.extents(&dir)?;
    let p = vol.map_block(&extents, 0).ok_or_else(missing)?;
    let trailer = has_trailer(vol, &dir);
    let mut buf = if trailer {
        vol.read_meta(p, CheckAt::DirTrailer)?
    } else {
        vol.read_block(p)?
    };
    let limit = entry_limit(vol, trailer);
    if !set(&mut buf[..limit]) {
        return Err(missing());
    }
    vol.write_meta(p, &mut buf, CheckAt::DirTrailer)
}

/// Where a new inode's allocator bit is: its slot (0xFFFF for the global
/// inode allocator), bit and group.
#[derive(Debug, Clone, Copy)]
pub struct Suballoc {
    pub slot: u16,
    pub bit: u16,
    pub group: u64,
}

/// Write an empty directory (`.` and `..` -> `parent`, mode 0755, two
/// links) into inode block `blkno`, whose allocator bit `at` names and is
/// taken already. Inline when the volume has inline data; otherwise one
/// cluster is taken from the global bitmap (`usable_cluster` says which
/// the caller knows to be free) and its first block written before the
/// inode. A volume with indexed directories and no inline data is refused
/// (its directories need an index).
pub fn init_dir(
    vol: &Volume,
    blkno: u64,
    parent: u64,
    at: Suballoc,
    usable_cluster: &dyn Fn(u64) -> bool,
) -> Result<()> {
    let mut b = vec![0u8; vol.block_size() as usize];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let gen = vol.super_inode().di().i_fs_generation.get();
    {
        let (di, _) = Dinode::mut_from_prefix(&mut b).expect("block");
        di.i_signature.copy_from_slice(b"INODE01\0");
        di.i_generation.set(gen);
        di.i_fs_generation.set(gen);
        di.i_suballoc_slot.set(at.slot);
        di.i_suballoc_bit.set(at.bit);
        if vol.features().has_incompat(incompat::DISCONTIG_BG) {
            di.i_suballoc_loc.set(at.group);
        }
        di.i_blkno.set(blkno);
        di.i_mode.set(0o040755);
        di.i_links_count.set(2);
        di.i_flags.set(inode_flags::VALID);
        di.i_atime.set(now);
        di.i_ctime.set(now);
        di.i_mtime.set(now);
    }
    dir_body(vol, &mut b, blkno, parent, usable_cluster)?;
    vol.write_meta(blkno, &mut b, CheckAt::Inode)
}

/// Give directory inode `blkno`, which has no blocks, its '.' and '..'
/// (-> `parent`) back, as [`init_dir`] writes them; its mode, owner, times
/// and link count stay (fsck sets the count).
pub fn refill_dir(
    vol: &Volume,
    blkno: u64,
    parent: u64,
    usable_cluster: &dyn Fn(u64) -> bool,
) -> Result<()> {
    let mut ino = vol.read_inode(blkno)?;
    if !ino.is_dir() {
        return Err(Error::Invalid(format!("inode {blkno} is not a directory")));
    }
    dir_body(vol, &mut ino.buf, blkno, parent, usable_cluster)?;
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)
}

/// The data part of a new empty directory, into inode block `b`: inline
/// when the volume has inline data, otherwise one cluster taken from the
/// global bitmap (`usable_cluster` says which the caller knows to be free)
/// and its first block written. Sets i_size, i_clusters, id2 and the
/// inline flag (and drops an index). A volume with indexed directories and
/// no inline data is refused (its directories need an index).
pub(crate) fn dir_body(
    vol: &Volume,
    b: &mut [u8],
    blkno: u64,
    parent: u64,
    usable_cluster: &dyn Fn(u64) -> bool,
) -> Result<()> {
    let bs = vol.block_size() as usize;
    let inline = vol.features().has_incompat(incompat::INLINE_DATA);
    // Without inline data, a volume with indexed directories gives every
    // new directory an index (the kernel's ocfs2_fill_new_dir_dx).
    let index = !inline && vol.features().has_incompat(incompat::INDEXED_DIRS);
    let fill = |area: &mut [u8]| {
        let dot = dir_rec_len(1);
        let whole = area.len() as u16;
        area[8..10].copy_from_slice(&whole.to_le_bytes());
        place_entry(area, b".", blkno, file_type::DIR);
        // '.' takes its own length only; '..' the rest.
        area[8..10].copy_from_slice(&(dot as u16).to_le_bytes());
        let rest = area.len() - dot;
        area[dot + 8..dot + 10].copy_from_slice(&(rest as u16).to_le_bytes());
        place_entry(&mut area[dot..], b"..", parent, file_type::DIR);
    };
    b[DINODE_ID2..].fill(0);
    let (size, clusters) = if inline {
        let count = max_inline_data(bs);
        let start = DINODE_ID2 + core::mem::size_of::<InlineData>();
        fill(&mut b[start..start + count]);
        b[DINODE_ID2..DINODE_ID2 + 2].copy_from_slice(&(count as u16).to_le_bytes());
        (count as u64, 0)
    } else {
        let c = alloc::take_cluster(vol, usable_cluster)?;
        let bpc = u64::from(vol.cluster_size() / vol.block_size());
        let p = c * bpc;
        let mut blk = vec![0u8; bs];
        let trailer = vol.meta_ecc() || index;
        let limit = entry_limit(vol, trailer);
        fill(&mut blk[..limit]);
        if trailer {
            let free = if index {
                (largest_hole(&blk[..limit]) as u16, 0)
            } else {
                (0, 0)
            };
            write_dir_trailer(&mut blk, p, blkno, free);
        }
        vol.write_meta(p, &mut blk, CheckAt::DirTrailer)?;
        if index {
            // The root indexes '.' and '..' in the directory's block, which
            // has room.
            let dxb = write_dx_root(vol, blkno, p, p, &[b".".to_vec(), b"..".to_vec()])?;
            b[core::mem::offset_of!(Dinode, i_dx_root)..][..8].copy_from_slice(&dxb.to_le_bytes());
        }
        let (el, recs) = ExtentList::mut_from_prefix(&mut b[DINODE_ID2..]).expect("fits");
        el.l_count.set(extent_recs_per_inode(bs) as u16);
        el.l_next_free_rec.set(1);
        let (er, _) = ExtentRec::mut_from_prefix(recs).expect("fits");
        er.e_int_clusters.set(1);
        er.e_blkno.set(p);
        (bs as u64, 1)
    };
    let (di, _) = Dinode::mut_from_prefix(b).expect("block");
    di.i_size.set(size);
    di.i_clusters.set(clusters);
    di.i_last_eb_blk.set(0);
    if !index {
        di.i_dx_root.set(0);
    }
    let features =
        di.i_dyn_features.get() & !(dyn_features::INLINE_DATA | dyn_features::INDEXED_DIR);
    di.i_dyn_features.set(if inline {
        features | dyn_features::INLINE_DATA
    } else if index {
        features | dyn_features::INDEXED_DIR
    } else {
        features
    });
    Ok(())
}

/// Make an empty directory under `parent` (not yet named there): an inode
/// taken from slot `slot`'s inode allocator (a block `usable_inode` accepts
/// and that holds no valid inode), then [`init_dir`]. Returns its block.
/// The caller names it in `parent` and counts its '..' in `parent`'s links.
pub fn make_dir(
    vol: &Volume,
    slot: u16,
    parent: u64,
    usable_inode: &dyn Fn(u64) -> bool,
    usable_cluster: &dyn Fn(u64) -> bool,
) -> Result<u64> {
    let ia = vol.system_inode(&slot_file_name("inode_alloc", slot))?;
    let free = |group: u64, bit: u16| {
        let b = group + u64::from(bit);
        bit != 0
            && b < vol.device_blocks()
            && usable_inode(b)
            && vol.read_block(b).is_ok_and(|buf| {
                !buf.starts_with(INODE_SIGNATURE)
                    || Dinode::read_from_prefix(&buf)
                        .is_ok_and(|(d, _)| d.i_flags.get() & inode_flags::VALID == 0)
            })
    };
    let Some((group, bit)) = alloc::find_free_bit(vol, ia, &free)? else {
        return Err(Error::Invalid(format!(
            "inode allocator of slot {slot} has no free inode left"
        )));
    };
    alloc::take_bit(vol, ia, group, bit)?;
    let blkno = group + u64::from(bit);
    init_dir(
        vol,
        blkno,
        parent,
        Suballoc { slot, bit, group },
        usable_cluster,
    )?;
    Ok(blkno)
}

/// [`make_dir`], named `name` in `parent` (after the new directory is
/// written), then `parent`'s link count raised by one for the new '..'
/// (last: a crash before it leaves a count one short, which fsck sets).
/// Returns the new directory's block.
pub fn make_subdir(
    vol: &Volume,
    slot: u16,
    parent: u64,
    name: &[u8],
    usable_cluster: &dyn Fn(u64) -> bool,
) -> Result<u64> {
    // Refused before anything is taken: the parent must take the name.
    dir_inode(vol, parent)?;
    let d = make_dir(vol, slot, parent, &|_| true, usable_cluster)?;
    insert_entry(vol, parent, name, d, file_type::DIR)?;
    add_links(vol, parent, 1)?;
    Ok(d)
}

/// Raise inode `blkno`'s link count by `n`.
pub fn add_links(vol: &Volume, blkno: u64, n: u32) -> Result<()> {
    let mut ino = vol.read_inode(blkno)?;
    let links = ino.di().links().saturating_add(n);
    let di = ino.di_mut();
    di.i_links_count.set(links as u16);
    di.i_links_count_hi.set((links >> 16) as u16);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)
}

/// Name `inode` `#<inode>` in `lost_found` (e2fsck's and fsck.ocfs2's
/// name); a directory's '..' then points at lost+found, whose link count
/// rises by one. In that order: a crash leaves a '..' or a count the next
/// fsck sets.
pub fn reconnect(vol: &Volume, lost_found: u64, inode: u64, ftype: u8) -> Result<()> {
    let name = format!("#{inode}");
    insert_entry(vol, lost_found, name.as_bytes(), inode, ftype)?;
    if ftype == file_type::DIR {
        set_dotdot(vol, inode, lost_found)?;
        add_links(vol, lost_found, 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(area: &[u8]) -> Vec<(u64, Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + DIR_MEMBER_LEN <= area.len() {
            let rl = usize::from(u16::from_le_bytes([area[off + 8], area[off + 9]]));
            let ino = u64::from_le_bytes(area[off..off + 8].try_into().unwrap());
            let nl = usize::from(area[off + 10]);
            out.push((ino, area[off + 12..off + 12 + nl].to_vec(), rl));
            off += rl;
        }
        out
    }

    #[test]
    fn place_splits_slack_and_fills_free_entries() {
        let mut a = vec![0u8; 64];
        a[8..10].copy_from_slice(&64u16.to_le_bytes());
        assert!(place_entry(&mut a, b".", 7, 2));
        assert!(place_entry(&mut a, b"..", 5, 2));
        assert!(place_entry(&mut a, b"#12345", 9, 1));
        let e = entries(&a);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], (7, b".".to_vec(), 16));
        assert_eq!(e[1], (5, b"..".to_vec(), 16));
        assert_eq!(e[2], (9, b"#12345".to_vec(), 32));
        // 32 - 20 = 12 bytes of slack: not enough for a 16-byte entry.
        assert!(!place_entry(&mut a, b"x", 10, 1));
        // A cleared entry is reused.
        a[32..40].copy_from_slice(&0u64.to_le_bytes());
        assert!(place_entry(&mut a, b"abcdefghijklmnopqr", 11, 1));
        assert_eq!(entries(&a)[2], (11, b"abcdefghijklmnopqr".to_vec(), 32));
    }

    #[test]
    fn place_refuses_lengths_that_do_not_add_up() {
        let mut a = vec![0u8; 64];
        a[8..10].copy_from_slice(&100u16.to_le_bytes());
        assert!(!place_entry(&mut a, b"x", 1, 1));
        a[8..10].copy_from_slice(&4u16.to_le_bytes());
        assert!(!place_entry(&mut a, b"x", 1, 1));
    }
}
