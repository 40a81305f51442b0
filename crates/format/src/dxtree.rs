//! A directory's whole index, as the kernel's fs/ocfs2/dir.c reads it: the
//! root (`ocfs2_dx_root_block`) holds the entries itself while they fit,
//! else an extent list of leaf clusters keyed by major hash, each cluster a
//! run of leaf blocks (`ocfs2_dx_leaf`, `DXLEAF1`) chosen by the minor
//! hash's low bits. [`lookup`] finds the leaf a name's hashes lead to, as
//! `ocfs2_dx_dir_lookup` does; [`entries`] reads every index entry and
//! what is wrong with the structure; [`build`] writes an index for a block
//! directory that has none (libocfs2's `ocfs2_dx_dir_build`, with trailers
//! installed first as tunefs.ocfs2's `tunefs_install_dir_trailer` installs
//! them); [`drop`] takes one away, damaged or not.

use crate::blockcheck::CheckAt;
use crate::dx::{self, ENTRY_LEN, ENTRY_LIST, FLAG_INLINE};
use crate::error::{Error, Result};
use crate::fs::Inode;
use crate::link::{write_dir_trailer, DIR_TRAILER_LEN};
use crate::ondisk::*;
use crate::Volume;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Byte offset of a leaf's entry list (`dl_list`, after the signature,
/// the check, `dl_blkno`, `dl_fs_generation` and two reserved fields).
pub const LEAF_LIST: usize = 0x28;
/// `DXLEAF1` and its NUL.
const LEAF_SIGNATURE: &[u8; 8] = b"DXLEAF1\0";

/// Entries one leaf holds (`ocfs2_dx_entries_per_leaf`).
pub const fn leaf_capacity(bs: usize) -> usize {
    (bs - LEAF_LIST - 8) / ENTRY_LEN
}

/// Extent records the root's list holds (`ocfs2_extent_recs_per_dx_root`).
pub const fn root_records(bs: usize) -> usize {
    (bs - ENTRY_LIST - 16) / 16
}

/// One index entry: major hash, minor hash, the directory block holding
/// the name.
pub type Entry = (u32, u32, u64);

/// A leaf cluster of an index: its first hash, first block, clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub cpos: u32,
    pub blkno: u64,
    pub clusters: u32,
}

/// The leaf block the kernel searches for hashes (`major`, `minor`) in an
/// index whose runs are `runs` (in tree order): the run with the largest
/// first hash not above `major`, the cluster `major` falls on (its last
/// past its end), the block the minor hash's low bits pick.
pub fn lookup(runs: &[Run], bpc: u64, major: u32, minor: u32) -> Option<u64> {
    let r = runs.iter().rev().find(|r| r.cpos <= major)?;
    if r.clusters == 0 {
        return None;
    }
    let end = u64::from(r.cpos) + u64::from(r.clusters);
    let cluster = if u64::from(major) >= end {
        u64::from(r.clusters) - 1
    } else {
        u64::from(major - r.cpos)
    };
    let mask = bpc.max(1) - 1;
    Some(r.blkno + cluster * bpc + (u64::from(minor) & mask))
}

/// A directory's index as read: its entries (where each was found), its
/// runs, and what is wrong with it (one line each).
#[derive(Debug, Default)]
pub struct Read {
    pub root: u64,
    /// (entry, the leaf holding it; the root for an inline index).
    pub entries: Vec<(Entry, u64)>,
    pub runs: Vec<Run>,
    pub num_entries: u32,
    pub problems: Vec<String>,
}

/// Read directory `dir`'s index (its inode's `i_dx_root`). A root that is
/// not one is an error; damage below it is listed in `problems`.
pub fn entries(vol: &Volume, dir: &Inode) -> Result<Read> {
    let bs = vol.block_size() as usize;
    let root = dir.di().i_dx_root.get();
    let buf = vol.read_meta(root, CheckAt::DxBlock)?;
    let (h, _) = DxRootBlock::read_from_prefix(&buf)
        .map_err(|_| Error::corrupt(root, "index root truncated"))?;
    if !buf.starts_with(DX_ROOT_SIGNATURE)
        || h.dr_dir_blkno.get() != dir.blkno
        || h.dr_blkno.get() != root
    {
        return Err(Error::corrupt(
            root,
            format!("not the index root of directory {}", dir.blkno),
        ));
    }
    let mut out = Read {
        root,
        num_entries: h.dr_num_entries.get(),
        ..Read::default()
    };
    let list = |b: &[u8], at: usize, cap: usize, blk: u64, out: &mut Read| {
        let count = usize::from(u16::from_le_bytes([b[at + 4], b[at + 5]]));
        let used = usize::from(u16::from_le_bytes([b[at + 6], b[at + 7]]));
        if count != cap {
            out.problems.push(format!(
                "block {blk}: index entry list holds {count}, not {cap}"
            ));
        }
        if used > cap {
            out.problems.push(format!(
                "block {blk}: {used} index entries in a list of {cap}"
            ));
        }
        for k in 0..used.min(cap) {
            let o = at + 8 + k * ENTRY_LEN;
            let e = &b[o..o + ENTRY_LEN];
            let ma = u32::from_le_bytes(e[0..4].try_into().expect("4"));
            let mi = u32::from_le_bytes(e[4..8].try_into().expect("4"));
            let blk_of = u64::from_le_bytes(e[8..16].try_into().expect("8"));
            out.entries.push(((ma, mi, blk_of), blk));
        }
    };
    if h.dr_flags & FLAG_INLINE != 0 {
        list(&buf, ENTRY_LIST, dx::inline_capacity(bs), root, &mut out);
        return Ok(out);
    }
    out.runs = vol
        .list_extents(root, &buf[ENTRY_LIST..])?
        .into_iter()
        .map(|e| Run {
            cpos: e.cpos,
            blkno: e.blkno,
            clusters: e.clusters,
        })
        .collect();
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let generation = vol.super_inode().di().i_fs_generation.get();
    for r in out.runs.clone() {
        for k in 0..u64::from(r.clusters) * bpc {
            let b = r.blkno + k;
            let leaf = match vol.read_meta(b, CheckAt::DxBlock) {
                Ok(l) => l,
                Err(e) => {
                    out.problems.push(e.to_string());
                    continue;
                }
            };
            let blkno = u64::from_le_bytes(leaf[0x10..0x18].try_into().expect("8"));
            let gen = u32::from_le_bytes(leaf[0x18..0x1C].try_into().expect("4"));
            if !leaf.starts_with(DX_LEAF_SIGNATURE) || blkno != b || gen != generation {
                out.problems.push(format!(
                    "block {b}: not a leaf of directory {}'s index",
                    dir.blkno
                ));
                continue;
            }
            list(&leaf, LEAF_LIST, leaf_capacity(bs), b, &mut out);
        }
    }
    Ok(out)
}

/// The live entries of a block directory: (the block's number, the
/// entry's name), in directory order (its blocks have trailers).
fn named(vol: &Volume, dir: &Inode) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for (p, buf) in vol.dir_blocks(dir)? {
        let mut es = Vec::new();
        crate::fs::parse_dir_block(p, &buf[..buf.len() - DIR_TRAILER_LEN], &mut es)?;
        out.extend(es.into_iter().map(|e| (p, e.name)));
    }
    Ok(out)
}

/// Every name of block directory `dir` that its index does not lead to
/// (the kernel's lookup would miss it), and every index entry that names
/// no such name in its block: one line each.
pub fn misses(vol: &Volume, dir: &Inode, read: &Read) -> Result<Vec<String>> {
    let seed = dx::seed(vol.sb());
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let inline = read.runs.is_empty();
    let mut left: Vec<(Entry, u64)> = read.entries.clone();
    let mut out = Vec::new();
    for (p, name) in named(vol, dir)? {
        let (ma, mi) = dx::name_hash(seed, &name);
        let leaf = if inline {
            Some(read.root)
        } else {
            lookup(&read.runs, bpc, ma, mi)
        };
        match left
            .iter()
            .position(|&(e, at)| e == (ma, mi, p) && Some(at) == leaf)
        {
            Some(i) => {
                left.swap_remove(i);
            }
            None => out.push(format!(
                "directory {}: the index does not lead to \"{}\" in block {p}",
                dir.blkno,
                crate::bytes::printable(&name)
            )),
        }
    }
    for ((ma, mi, p), at) in left {
        out.push(format!(
            "directory {}: index entry {ma:#010x}/{mi:#010x} in block {at} names block {p}, which holds no such name",
            dir.blkno
        ));
    }
    Ok(out)
}

/// Lay `entries` (in directory order) out in leaf clusters: runs of one
/// cluster, cut between distinct major hashes where a leaf would overflow;
/// the first run starts at hash 0. Each cluster's leaves keep the entries
/// in directory order.
fn plan(entries: &[Entry], bpc: usize, cap: usize) -> Result<Vec<(u32, Vec<Vec<Entry>>)>> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].0, i));
    let mut clusters: Vec<(u32, Vec<usize>)> = vec![(0, Vec::new())];
    let mut i = 0;
    while i < order.len() {
        // All the entries of one major hash go together.
        let major = entries[order[i]].0;
        let mut j = i;
        while j < order.len() && entries[order[j]].0 == major {
            j += 1;
        }
        let fits = |members: &[usize]| {
            let mut n = vec![0usize; bpc];
            members.iter().all(|&k| {
                let slot = entries[k].1 as usize & (bpc - 1);
                n[slot] += 1;
                n[slot] <= cap
            })
        };
        let mut with = clusters.last().expect("one").1.clone();
        with.extend_from_slice(&order[i..j]);
        if fits(&with) {
            clusters.last_mut().expect("one").1 = with;
        } else {
            if !fits(&order[i..j]) {
                return Err(Error::Unsupported(format!(
                    "{} names share the major hash {major:#x}: more than a leaf cluster holds",
                    j - i
                )));
            }
            clusters.push((major, order[i..j].to_vec()));
        }
        i = j;
    }
    Ok(clusters
        .into_iter()
        .map(|(cpos, mut members)| {
            members.sort_unstable();
            let mut leaves = vec![Vec::new(); bpc];
            for k in members {
                leaves[entries[k].1 as usize & (bpc - 1)].push(entries[k]);
            }
            (cpos, leaves)
        })
        .collect())
}

/// Give block directory `dir` trailers where it has none (a volume without
/// metaecc, a directory without an index: those have them), as
/// tunefs.ocfs2 installs them:
/// the live entries that reach into a block's last 64 bytes move, packed,
/// into new blocks at the directory's end (clusters added when needed),
/// then the trailers. Order: the new blocks, then `i_size`, then the old
/// blocks with their trailers (a crash in between leaves names twice,
/// which fsck repairs, never a name lost).
pub fn install_trailers(vol: &Volume, dir: u64) -> Result<()> {
    let ino = vol.read_inode(dir)?;
    if ino.is_inline() || vol.meta_ecc() || ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
        return Ok(());
    }
    let bs = vol.block_size() as usize;
    let toff = bs - DIR_TRAILER_LEN;
    let small = dir_rec_len(1);
    let mut blocks = vol.dir_blocks(&ino)?;
    // Per block: the offset of the last entry kept, and the entries to move.
    let mut moves: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut lasts = Vec::new();
    for (p, buf) in &blocks {
        let (mut off, mut prev, mut last) = (0usize, None, None);
        let mut out = Vec::new();
        while off < bs {
            let rec_len = usize::from(u16::from_le_bytes([buf[off + 8], buf[off + 9]]));
            let name_len = usize::from(buf[off + 10]);
            if off + rec_len > bs || rec_len < 8 || rec_len % 4 != 0 || name_len + 8 > rec_len {
                return Err(Error::corrupt(
                    *p,
                    format!("directory entry at byte {off} is damaged"),
                ));
            }
            let live = buf[off..off + 8] != [0; 8];
            let real = if live { dir_rec_len(name_len) } else { small };
            if off + real > toff {
                last = last.or(prev);
                if live {
                    let mut e = buf[off..off + real].to_vec();
                    e[8..10].copy_from_slice(&(real as u16).to_le_bytes());
                    out.push(e);
                }
            }
            prev = Some(off);
            off += rec_len;
        }
        let Some(last) = last.or(prev) else {
            return Err(Error::corrupt(*p, "directory block without entries"));
        };
        lasts.push(last);
        moves.push(out);
    }
    // The moved entries, packed into new blocks that have trailers too
    // (each block ends in an empty entry of 16 bytes or more, as
    // tunefs.ocfs2 packs them).
    let mut fresh: Vec<Vec<u8>> = Vec::new();
    let mut at = 0; // where the next entry goes in the last fresh block
    for e in moves.iter().flatten() {
        if fresh.is_empty() || e.len() + small > toff - at {
            fresh.push(vec![0u8; bs]);
            at = 0;
        }
        let b = fresh.last_mut().expect("one");
        b[at..at + e.len()].copy_from_slice(e);
        at += e.len();
        b[at..at + 8].fill(0);
        b[at + 8..at + 10].copy_from_slice(&((toff - at) as u16).to_le_bytes());
    }
    let nblocks = blocks.len() as u64;
    if !fresh.is_empty() {
        let bpc = u64::from(vol.cluster_size() / vol.block_size());
        let have = u64::from(ino.di().i_clusters.get()) * bpc;
        let want = nblocks + fresh.len() as u64;
        if want > have {
            crate::extend::extend(vol, dir, (want - have).div_ceil(bpc), false)?;
        }
        let ino = vol.read_inode(dir)?;
        let extents = vol.extents(&ino)?;
        for (k, b) in fresh.iter_mut().enumerate() {
            let p = vol
                .map_block(&extents, nblocks + k as u64)
                .ok_or_else(|| Error::corrupt(dir, "a new directory block is not mapped"))?;
            write_dir_trailer(b, p, dir, (0, 0));
            vol.write_meta(p, b, CheckAt::DirTrailer)?;
        }
        vol.device().flush()?;
        let mut ino = ino;
        ino.di_mut().i_size.set(want * bs as u64);
        vol.write_meta(dir, &mut ino.buf, CheckAt::Inode)?;
        vol.device().flush()?;
    }
    for ((p, buf), last) in blocks.iter_mut().zip(lasts) {
        buf[last + 8..last + 10].copy_from_slice(&((toff - last) as u16).to_le_bytes());
        write_dir_trailer(buf, *p, dir, (0, 0));
        vol.write_meta(*p, buf, CheckAt::DirTrailer)?;
    }
    vol.device().flush()
}

/// Build an index for block directory `dir`, which has none, on a volume
/// with indexed directories, as libocfs2's `ocfs2_dx_dir_build` does:
/// trailers first ([`install_trailers`]), each block's free space in its
/// trailer and the blocks with room chained from the root, every name's
/// hashes in the root while they fit, else in leaf clusters taken from the
/// global bitmap where `usable` holds; the hashes from `seed` (the
/// superblock's, `dx::seed`). Order: leaves, root, then the inode
/// (flag and root): a crash before the inode leaves blocks nothing uses.
pub fn build(vol: &Volume, dir: u64, seed: [u32; 4], usable: &dyn Fn(u64) -> bool) -> Result<()> {
    install_trailers(vol, dir)?;
    let bs = vol.block_size() as usize;
    let ino = vol.read_inode(dir)?;
    if !ino.is_dir() || ino.is_inline() {
        return Err(Error::Invalid(format!(
            "inode {dir} is not a block directory"
        )));
    }
    // The free list, in libocfs2's order (each block with room goes in
    // front).
    let mut free_blk = 0u64;
    for (p, mut buf) in vol.dir_blocks(&ino)? {
        let hole = largest_hole(&buf[..bs - DIR_TRAILER_LEN]);
        let next = if hole > 0 { free_blk } else { 0 };
        write_dir_trailer(&mut buf, p, dir, (hole as u16, next));
        vol.write_meta(p, &mut buf, CheckAt::DirTrailer)?;
        if hole > 0 {
            free_blk = p;
        }
    }
    let entries: Vec<Entry> = named(vol, &ino)?
        .into_iter()
        .map(|(p, n)| {
            let (ma, mi) = dx::name_hash(seed, &n);
            (ma, mi, p)
        })
        .collect();
    let generation = vol.super_inode().di().i_fs_generation.get();
    let (rb, group, bit) = crate::alloc::take_meta_block(vol, 0)?;
    let root = dx::Root {
        blkno: rb,
        dir_blkno: dir,
        generation,
        slot: 0,
        bit,
        group,
        free_blk,
    };
    let mut block = if entries.len() <= dx::inline_capacity(bs) {
        root.block(bs, &entries)
    } else {
        let bpc = (vol.cluster_size() / vol.block_size()) as usize;
        let layout = plan(&entries, bpc, leaf_capacity(bs))?;
        if layout.len() > root_records(bs) {
            return Err(Error::Unsupported(format!(
                "directory {dir}: {} names need {} leaf clusters, more than an index root lists ({})",
                entries.len(),
                layout.len(),
                root_records(bs)
            )));
        }
        let mut b = root.block(bs, &[]);
        let mut recs = Vec::new();
        for (cpos, leaves) in &layout {
            let c = crate::alloc::take_cluster(vol, usable)?;
            let first = c * bpc as u64;
            for (k, es) in leaves.iter().enumerate() {
                let lb = first + k as u64;
                let mut leaf = vec![0u8; bs];
                leaf[..8].copy_from_slice(LEAF_SIGNATURE);
                leaf[0x10..0x18].copy_from_slice(&lb.to_le_bytes());
                leaf[0x18..0x1C].copy_from_slice(&generation.to_le_bytes());
                let l = LEAF_LIST;
                leaf[l + 4..l + 6].copy_from_slice(&(leaf_capacity(bs) as u16).to_le_bytes());
                leaf[l + 6..l + 8].copy_from_slice(&(es.len() as u16).to_le_bytes());
                for (i, &(ma, mi, p)) in es.iter().enumerate() {
                    let o = l + 8 + i * ENTRY_LEN;
                    leaf[o..o + 4].copy_from_slice(&ma.to_le_bytes());
                    leaf[o + 4..o + 8].copy_from_slice(&mi.to_le_bytes());
                    leaf[o + 8..o + 16].copy_from_slice(&p.to_le_bytes());
                }
                vol.write_meta(lb, &mut leaf, CheckAt::DxBlock)?;
            }
            recs.push((*cpos, first));
        }
        {
            let (h, _) = DxRootBlock::mut_from_prefix(&mut b).expect("block");
            h.dr_flags = 0;
            h.dr_clusters.set(recs.len() as u32);
            h.dr_num_entries.set(entries.len() as u32);
        }
        // The extent list in place of the inline entries.
        let l = ENTRY_LIST;
        b[l..].fill(0);
        b[l + 2..l + 4].copy_from_slice(&(root_records(bs) as u16).to_le_bytes());
        b[l + 4..l + 6].copy_from_slice(&(recs.len() as u16).to_le_bytes());
        for (i, (cpos, first)) in recs.iter().enumerate() {
            let mut r = ExtentRec::new_zeroed();
            r.e_cpos.set(*cpos);
            r.e_int_clusters.set(1);
            r.e_blkno.set(*first);
            let o = l + 16 + i * 16;
            b[o..o + 16].copy_from_slice(r.as_bytes());
        }
        b
    };
    vol.write_meta(rb, &mut block, CheckAt::DxBlock)?;
    vol.device().flush()?;
    let mut ino = vol.read_inode(dir)?;
    {
        let di = ino.di_mut();
        di.i_dyn_features
            .set(di.i_dyn_features.get() | dyn_features::INDEXED_DIR);
        di.i_dx_root.set(rb);
    }
    vol.write_meta(dir, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// Take directory `dir`'s index away whatever state it is in: the inode
/// first (no flag, no root), then what of the old index can be read is
/// freed (`dx::remove_index`'s order); what cannot stays marked, and fsck
/// frees it.
pub fn drop(vol: &Volume, dir: u64) -> Result<()> {
    if dx::remove_index(vol, dir).is_ok() {
        return Ok(());
    }
    dx::forget_index(vol, dir)
}

/// The largest room for a new entry in an entry area, as libocfs2's
/// `ocfs2_find_max_rec_len` measures it (0 below one 16-byte entry).
fn largest_hole(area: &[u8]) -> usize {
    let best = crate::link::largest_hole(area);
    if best >= dir_rec_len(1) {
        best
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_the_kernel() {
        let runs = [
            Run {
                cpos: 0,
                blkno: 1000,
                clusters: 1,
            },
            Run {
                cpos: 0x8000_0000,
                blkno: 2000,
                clusters: 2,
            },
        ];
        // bpc 4: the minor hash's two low bits pick the leaf.
        assert_eq!(lookup(&runs, 4, 5, 0x13), Some(1003));
        assert_eq!(lookup(&runs, 4, 0x8000_0000, 1), Some(2001));
        assert_eq!(lookup(&runs, 4, 0x8000_0001, 2), Some(2006));
        // Past the run's end: its last cluster.
        assert_eq!(lookup(&runs, 4, 0xffff_0000, 0), Some(2004));
    }

    #[test]
    fn plan_keeps_every_leaf_within_its_capacity() {
        let entries: Vec<Entry> = (0..1000u32)
            .map(|i| {
                (
                    i.wrapping_mul(2_654_435_761),
                    i.wrapping_mul(40_503),
                    u64::from(i / 10),
                )
            })
            .collect();
        let layout = plan(&entries, 4, 20).unwrap();
        assert!(layout.len() >= 1000 / 80);
        assert_eq!(layout[0].0, 0);
        let mut n = 0;
        let runs: Vec<Run> = layout
            .iter()
            .enumerate()
            .map(|(i, (cpos, _))| Run {
                cpos: *cpos,
                blkno: i as u64 * 4,
                clusters: 1,
            })
            .collect();
        for (i, (_, leaves)) in layout.iter().enumerate() {
            for (k, leaf) in leaves.iter().enumerate() {
                assert!(leaf.len() <= 20);
                for &(ma, mi, _) in leaf {
                    // The kernel's lookup leads to the leaf it is in.
                    assert_eq!(lookup(&runs, 4, ma, mi), Some(i as u64 * 4 + k as u64));
                    n += 1;
                }
            }
        }
        assert_eq!(n, 1000);
    }
}
