//! Refcount trees (`refcount` volumes), as the kernel's
//! fs/ocfs2/refcounttree.c and libocfs2/refcount.c lay them out, and their
//! rebuild.
//!
//! The root (a `REFCNT1` block named by the inodes' `i_refcount_loc`)
//! holds 16-byte records (`r_cpos` le64, `r_clusters` le32, `r_refcount`
//! le32: how many refcounted extents share each physical cluster of the
//! run) after a 16-byte list header at 0x80; or, with
//! `OCFS2_REFCOUNT_TREE_FL`, an extent list there whose records name leaf
//! refcount blocks (`OCFS2_REFCOUNT_LEAF_FL`) by the lowest cluster they
//! hold (`e_cpos` = the leaf's `rf_cpos`, one "cluster" each, the root's
//! `rf_clusters` counting them): a lookup takes the last leaf whose
//! `e_cpos` is at or below the cluster.

use crate::alloc;
use crate::blockcheck::CheckAt;
use crate::bytes::{le32, put16, put32, put64};
use crate::error::{Error, Result};
use crate::fs::{parse_extent_list, slot_file_name, Volume};
use crate::ondisk::refcount_block::{
    BLKNO, CLUSTERS, FLAGS, FS_GENERATION, LIST, PARENT, RL_COUNT, RL_USED, TREE_FL,
};
use crate::ondisk::*;
use std::collections::BTreeMap;
use zerocopy::FromBytes;

/// `OCFS2_REFCOUNT_BLOCK_SIGNATURE`
pub const SIGNATURE: &[u8] = b"REFCNT1";
/// `OCFS2_REFCOUNT_LEAF_FL`
pub const LEAF_FL: u32 = 0x1;
/// Bytes of a refcount record, and of the list header before them.
const REC: usize = 16;
// Offsets in `ocfs2_refcount_block` this module writes.
const SUBALLOC_SLOT: usize = 0x08;
const SUBALLOC_BIT: usize = 0x0A;
const CPOS: usize = 0x3C;
const GENERATION: usize = 0x40;
const SUBALLOC_LOC: usize = 0x48;

/// A refcount record: `clusters` physical clusters from `cpos`, shared by
/// `count` refcounted extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub cpos: u64,
    pub clusters: u32,
    pub count: u32,
}

/// Records (or leaf references) a refcount block holds (`rl_count`, and
/// `l_count` of the root's extent list: the same 16-byte entries).
pub fn recs_per_block(block_size: u32) -> usize {
    (block_size as usize - LIST - REC) / REC
}

/// How often each physical cluster is shared through tree `root`: every
/// refcounted extent of every valid inode of this volume whose
/// `i_refcount_loc` names it counts once per cluster.
pub fn uses(vol: &Volume, root: u64) -> Result<BTreeMap<u64, u32>> {
    let generation = vol.super_inode().di().i_fs_generation.get();
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let mut owners = Vec::new();
    vol.each_inode(&mut |blkno, buf| {
        let Ok((di, _)) = Dinode::read_from_prefix(buf) else {
            return;
        };
        if di.i_fs_generation.get() == generation
            && di.i_flags.get() & inode_flags::VALID != 0
            && di.i_dyn_features.get() & dyn_features::HAS_REFCOUNT != 0
            && di.i_refcount_loc.get() == root
        {
            owners.push(blkno);
        }
    })?;
    let mut out = BTreeMap::new();
    for b in owners {
        let ino = vol.read_inode(b)?;
        for e in vol.extents(&ino)? {
            if e.flags & EXT_REFCOUNTED == 0 {
                continue;
            }
            let first = e.blkno / bpc;
            for c in first..first + u64::from(e.clusters) {
                *out.entry(c).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// Runs of equal counts over consecutive clusters: the records of `uses`.
pub fn records(uses: &BTreeMap<u64, u32>) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    for (&c, &k) in uses {
        match out.last_mut() {
            Some(r)
                if r.cpos + u64::from(r.clusters) == c && r.count == k && r.clusters < u32::MAX =>
            {
                r.clusters += 1
            }
            _ => out.push(Rec {
                cpos: c,
                clusters: 1,
                count: k,
            }),
        }
    }
    out
}

/// Write `recs` as the list of a refcount block (header at 0x80).
fn put_records(buf: &mut [u8], recs: &[Rec], room: usize) {
    buf[LIST..].fill(0);
    put16(buf, RL_COUNT, room as u16);
    put16(buf, RL_USED, recs.len() as u16);
    for (i, r) in recs.iter().enumerate() {
        let o = LIST + REC + i * REC;
        put64(buf, o, r.cpos);
        put32(buf, o + 8, r.clusters);
        put32(buf, o + 12, r.count);
    }
}

/// The blocks of tree `root` below it (leaves and extent blocks), each
/// with its allocator (slot, group, bit): what a rebuild gives back. Blocks
/// that do not say they belong to the tree are left alone.
/// The blocks under refcount tree root `root_blkno` (leaves and extent
/// blocks), as far as they read.
pub fn tree_blocks(vol: &Volume, root_blkno: u64) -> Result<Vec<u64>> {
    let root = vol.read_block(root_blkno)?;
    Ok(old_blocks(vol, &root, root_blkno)
        .into_iter()
        .map(|b| b.0)
        .collect())
}

fn old_blocks(vol: &Volume, root: &[u8], root_blkno: u64) -> Vec<(u64, u16, u64, u16)> {
    let mut out = Vec::new();
    if le32(root, FLAGS) & TREE_FL == 0 {
        return out;
    }
    let Ok((el, recs)) = parse_extent_list(root_blkno, &root[LIST..], "refcount tree") else {
        return out;
    };
    let mut todo: Vec<(u16, u64)> = recs
        .iter()
        .map(|r| (el.l_tree_depth.get(), r.e_blkno.get()))
        .collect();
    while let Some((depth, b)) = todo.pop() {
        if out.len() > 100_000 || out.iter().any(|o| o.0 == b) {
            continue;
        }
        let Ok(buf) = vol.read_block(b) else {
            continue;
        };
        let slot_bit = |buf: &[u8], loc: usize| {
            (
                u16::from_le_bytes([buf[SUBALLOC_SLOT], buf[SUBALLOC_SLOT + 1]]),
                u64::from_le_bytes(buf[loc..loc + 8].try_into().expect("8")),
                u16::from_le_bytes([buf[SUBALLOC_BIT], buf[SUBALLOC_BIT + 1]]),
            )
        };
        if depth == 0 {
            let ours = buf.starts_with(SIGNATURE)
                && u64::from_le_bytes(buf[PARENT..PARENT + 8].try_into().expect("8")) == root_blkno;
            if ours {
                let (slot, group, bit) = slot_bit(&buf, SUBALLOC_LOC);
                out.push((b, slot, group, bit));
            }
            continue;
        }
        if !buf.starts_with(EXTENT_BLOCK_SIGNATURE) {
            continue;
        }
        let Ok((eb, _)) = ExtentBlock::read_from_prefix(&buf) else {
            continue;
        };
        let (slot, bit) = (eb.h_suballoc_slot.get(), eb.h_suballoc_bit.get());
        out.push((b, slot, eb.h_suballoc_loc.get(), bit));
        if let Ok((sub, recs)) = parse_extent_list(
            b,
            &buf[core::mem::offset_of!(ExtentBlock, h_list)..],
            "refcount tree",
        ) {
            if sub.l_tree_depth.get() + 1 == depth {
                todo.extend(recs.iter().map(|r| (depth - 1, r.e_blkno.get())));
            }
        }
    }
    out
}

/// Rebuild tree `root` from what the inodes share ([`uses`], [`records`]):
/// the records in the root when they fit it, else in new leaves from slot
/// 0's extent allocator, as many as they fill, each named in the root's
/// list by its lowest cluster (the first from cluster 0). The tree's old
/// leaves and extent blocks go back to their allocators. Order: new leaves
/// taken and written, then the root (the switch: before it the old tree
/// stands, damaged as it was), then the old blocks freed (a crash before
/// leaves them allocated to nothing). The root keeps its `rf_count`,
/// `rf_generation` and place.
pub fn rebuild(vol: &Volume, root: u64) -> Result<()> {
    let bs = vol.block_size();
    let room = recs_per_block(bs);
    let mut rb = vol.read_meta(root, CheckAt::RefcountBlock)?;
    if !rb.starts_with(SIGNATURE) {
        return Err(Error::corrupt(root, "not a refcount block"));
    }
    let recs = records(&uses(vol, root)?);
    let old = old_blocks(vol, &rb, root);
    let fs_generation = vol.super_inode().di().i_fs_generation.get();
    let generation = le32(&rb, GENERATION);
    let flags = le32(&rb, FLAGS) & !(TREE_FL | LEAF_FL);
    if recs.len() <= room {
        put_records(&mut rb, &recs, room);
        put32(&mut rb, FLAGS, flags);
        put32(&mut rb, CLUSTERS, 0);
    } else {
        let chunks: Vec<&[Rec]> = recs.chunks(room).collect();
        if chunks.len() > room {
            return Err(Error::Invalid(format!(
                "refcount tree {root}: {} records need more leaves than its root lists",
                recs.len()
            )));
        }
        let mut leaves = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let (b, group, bit) = alloc::take_meta_block(vol, 0)?;
            let cpos = if i == 0 { 0 } else { chunk[0].cpos as u32 };
            let mut leaf = vec![0u8; bs as usize];
            leaf[..SIGNATURE.len()].copy_from_slice(SIGNATURE);
            put16(&mut leaf, SUBALLOC_SLOT, 0);
            put16(&mut leaf, SUBALLOC_BIT, bit);
            put32(&mut leaf, FS_GENERATION, fs_generation);
            put64(&mut leaf, BLKNO, b);
            put64(&mut leaf, PARENT, root);
            put32(&mut leaf, FLAGS, LEAF_FL);
            put32(&mut leaf, CPOS, cpos);
            put32(&mut leaf, GENERATION, generation);
            put64(&mut leaf, SUBALLOC_LOC, group);
            put_records(&mut leaf, chunk, room);
            vol.write_meta(b, &mut leaf, CheckAt::RefcountBlock)?;
            leaves.push((cpos, b));
        }
        vol.device().flush()?;
        rb[LIST..].fill(0);
        put16(&mut rb, LIST + 2, room as u16); // l_count; l_tree_depth 0
        put16(&mut rb, LIST + 4, leaves.len() as u16); // l_next_free_rec
        for (i, &(cpos, b)) in leaves.iter().enumerate() {
            let o = LIST + REC + i * REC;
            put32(&mut rb, o, cpos);
            put16(&mut rb, o + 4, 1); // e_leaf_clusters
            put64(&mut rb, o + 8, b);
        }
        put32(&mut rb, FLAGS, flags | TREE_FL);
        put32(&mut rb, CLUSTERS, leaves.len() as u32);
    }
    vol.write_meta(root, &mut rb, CheckAt::RefcountBlock)?;
    vol.device().flush()?;
    for (_, slot, group, bit) in old {
        let Ok(ea) = vol.system_inode(&slot_file_name("extent_alloc", slot)) else {
            continue;
        };
        alloc::free_bit(vol, ea, group, bit)?;
    }
    vol.device().flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_runs_of_equal_counts_over_consecutive_clusters() {
        let uses = BTreeMap::from([(10, 2), (11, 2), (12, 3), (14, 3), (15, 3)]);
        let r = records(&uses);
        let want = [(10, 2, 2), (12, 1, 3), (14, 2, 3)];
        assert_eq!(r.len(), want.len());
        for (got, (cpos, clusters, count)) in r.iter().zip(want) {
            assert_eq!((got.cpos, got.clusters, got.count), (cpos, clusters, count));
        }
    }

    #[test]
    fn a_block_holds_the_records_the_kernel_counts() {
        // ocfs2_refcount_recs_per_rb: (bs - offsetof(rf_records.rl_recs)) / 16.
        assert_eq!(recs_per_block(4096), 247);
        assert_eq!(recs_per_block(512), 23);
    }
}
