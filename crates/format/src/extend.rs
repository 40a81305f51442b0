//! Clusters added to and taken from the end of a file whose extent list
//! lives in its inode (tree depth 0): the journals and the other system
//! files tunefs sizes; the clusters of regular files past their size given
//! back and their holes filled when sparse files are turned on or off.
//! Files with an extent tree are refused.

use crate::alloc;
use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::fs::Volume;
use crate::ondisk::*;
use zerocopy::{FromBytes, IntoBytes};

const REC: usize = 16;
/// `e_leaf_clusters` is 16 bits.
const MAX_LEAF: u64 = u16::MAX as u64;

fn list(blkno: u64, buf: &[u8]) -> Result<(ExtentList, Vec<ExtentRec>)> {
    let (el, recs) = crate::fs::parse_extent_list(blkno, &buf[DINODE_ID2..], "inode")?;
    if el.l_tree_depth.get() != 0 {
        return Err(Error::Invalid(format!(
            "inode {blkno} has an extent tree of depth {}: not resized by this release",
            el.l_tree_depth.get()
        )));
    }
    Ok((el, recs))
}

fn put_list(buf: &mut [u8], el: &ExtentList, recs: &[ExtentRec]) {
    let mut el = *el;
    el.l_next_free_rec.set(recs.len() as u16);
    let hdr = core::mem::size_of::<ExtentList>();
    buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(el.as_bytes());
    let first = DINODE_ID2 + hdr;
    let end = (first + usize::from(el.l_count.get()) * REC).min(buf.len());
    buf[first..end].fill(0);
    for (i, r) in recs.iter().enumerate() {
        buf[first + i * REC..first + (i + 1) * REC].copy_from_slice(r.as_bytes());
    }
}

fn set_sizes(buf: &mut [u8], clusters: u64, cs: u64, set_size: bool) {
    let di = Dinode::mut_from_prefix(buf).expect("an inode block").0;
    di.i_clusters.set(clusters as u32);
    if set_size {
        di.i_size.set(clusters * cs);
    }
}

/// Add `n` clusters to the end of file `blkno`, taken from the global
/// bitmap as libocfs2's extend_allocation takes them (`alloc::take_range`
/// with a minimum of one),
/// each appended to the list (or lengthening its last record when it
/// follows on). `set_size` sets `i_size` to the clusters (a journal's).
/// Order: the clusters are marked in use first (a crash leaves clusters
/// nothing uses, which fsck frees), then the inode in one write.
pub fn extend(vol: &Volume, blkno: u64, n: u64, set_size: bool) -> Result<()> {
    let mut ino = vol.read_inode(blkno)?;
    let (el, mut recs) = list(blkno, &ino.buf)?;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let cs = u64::from(vol.cluster_size());
    let mut clusters = u64::from(ino.di().i_clusters.get());
    let room = usize::from(el.l_count.get());
    let mut left = n;
    while left > 0 {
        let (start, want) = alloc::take_range(vol, 1, left.min(MAX_LEAF))?;
        let pblk = start * bpc;
        match recs.last_mut() {
            Some(last)
                if last.e_blkno.get() + u64::from(last.leaf_clusters()) * bpc == pblk
                    && u64::from(last.leaf_clusters()) + want <= MAX_LEAF
                    && last.e_int_clusters.get() >> 16 == 0 =>
            {
                let c = u64::from(last.leaf_clusters()) + want;
                last.e_int_clusters.set(c as u32);
            }
            _ => {
                if recs.len() == room {
                    return Err(Error::Invalid(format!(
                        "inode {blkno}: its extent list is full ({room} records); clusters {start}+{want} were taken and are left to fsck"
                    )));
                }
                let mut r = ExtentRec::default();
                r.e_cpos.set(clusters as u32);
                r.e_int_clusters.set(want as u32);
                r.e_blkno.set(pblk);
                recs.push(r);
            }
        }
        clusters += want;
        left -= want;
    }
    put_list(&mut ino.buf, &el, &recs);
    set_sizes(&mut ino.buf, clusters, cs, set_size);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// Keep the first `keep` clusters of file `blkno`. Order: the inode first
/// (records dropped or shortened, `i_clusters`, and `i_size` when
/// `set_size`), then the clusters it let go freed in the global bitmap (a
/// crash between leaves them marked, which fsck frees).
pub fn truncate(vol: &Volume, blkno: u64, keep: u64, set_size: bool) -> Result<()> {
    let mut ino = vol.read_inode(blkno)?;
    let (el, recs) = list(blkno, &ino.buf)?;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let cs = u64::from(vol.cluster_size());
    let mut kept = Vec::new();
    let mut freed = Vec::new();
    for mut r in recs {
        let (cpos, n) = (u64::from(r.e_cpos.get()), u64::from(r.leaf_clusters()));
        let first = r.e_blkno.get() / bpc;
        if cpos >= keep {
            freed.push((first, n));
        } else if cpos + n > keep {
            let stay = keep - cpos;
            r.e_int_clusters.set(stay as u32);
            freed.push((first + stay, n - stay));
            kept.push(r);
        } else {
            kept.push(r);
        }
    }
    put_list(&mut ino.buf, &el, &kept);
    let clusters = u64::from(ino.di().i_clusters.get()).min(keep);
    set_sizes(&mut ino.buf, clusters, cs, set_size);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()?;
    alloc::free_clusters(vol, &freed)?;
    vol.device().flush()
}

/// Whether inode `ino` is a file whose clusters run past its size, which a
/// volume turning sparse on gives back (tunefs.ocfs2's
/// `truncate_to_i_size`): a regular file, not a system file, not inline,
/// with more clusters than its `i_size` needs. Returns the clusters it
/// keeps.
pub fn past_size(vol: &Volume, ino: &crate::fs::Inode) -> Option<u64> {
    let di = ino.di();
    let cs = u64::from(vol.cluster_size());
    let keep = ino.size().div_ceil(cs);
    (di.i_mode.get() & 0o170000 == 0o100000
        && ino.flags() & inode_flags::SYSTEM == 0
        && !ino.is_inline()
        && u64::from(di.i_clusters.get()) > keep)
        .then_some(keep)
}

/// What [`trim_to_size`] refuses for inode `ino` (a file whose clusters run
/// past its size), or None: a tree deeper than the inode, or clusters
/// shared through a refcount tree.
pub fn trim_refusal(ino: &crate::fs::Inode) -> Option<String> {
    if ino.dyn_features() & dyn_features::HAS_REFCOUNT != 0 {
        return Some(format!(
            "inode {} shares clusters (a refcount tree): not trimmed by this release",
            ino.blkno
        ));
    }
    list(ino.blkno, &ino.buf).err().map(|e| e.to_string())
}

/// Give back the clusters of file `blkno` past its `i_size` (see
/// [`past_size`]), as tunefs.ocfs2 does when sparse files are turned on:
/// first the bytes from `i_size` to the end of the last cluster kept are
/// zeroed (what a later extension would otherwise read), then
/// [`truncate`] (the inode, then the clusters freed). A crash between
/// leaves zeroes past `i_size` and the clusters still the file's, which a
/// rerun trims.
pub fn trim_to_size(vol: &Volume, blkno: u64, keep: u64) -> Result<()> {
    let ino = vol.read_inode(blkno)?;
    let bs = u64::from(vol.block_size());
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let size = ino.size();
    let ext = vol.extents(&ino)?;
    for l in size / bs..keep * bpc {
        let Some(p) = vol.map_block(&ext, l) else {
            continue;
        };
        let mut b = vol.read_block(p)?;
        let from = if l == size / bs {
            (size % bs) as usize
        } else {
            0
        };
        if b[from..].iter().any(|&x| x != 0) {
            b[from..].fill(0);
            vol.write_block(p, &b)?;
        }
    }
    vol.device().flush()?;
    truncate(vol, blkno, keep, false)
}

/// The holes of a regular file (not a system file, not inline) below its
/// size, as (first cluster, clusters): what turning sparse files off fills
/// (tunefs.ocfs2's find_holes_in_file). Empty for any other inode.
pub fn holes(vol: &Volume, ino: &crate::fs::Inode) -> Result<Vec<(u64, u64)>> {
    let di = ino.di();
    if di.i_mode.get() & 0o170000 != 0o100000
        || ino.flags() & inode_flags::SYSTEM != 0
        || ino.is_inline()
    {
        return Ok(Vec::new());
    }
    let size = ino.size().div_ceil(u64::from(vol.cluster_size()));
    let mut mapped: Vec<(u64, u64)> = vol
        .extents(ino)?
        .iter()
        .map(|e| (u64::from(e.cpos), u64::from(e.clusters)))
        .collect();
    mapped.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0u64;
    for (cpos, n) in mapped.into_iter().chain([(size, 0)]) {
        let end = cpos.min(size);
        if end > at {
            out.push((at, end - at));
        }
        at = at.max(cpos + n);
        if at >= size {
            break;
        }
    }
    Ok(out)
}

/// What [`fill_holes`] refuses for inode `ino` with `holes` holes, or
/// None: an extent tree deeper than the inode, an unwritten extent, or
/// more records than its list holds (one per hole at the least).
pub fn fill_refusal(ino: &crate::fs::Inode, holes: usize) -> Option<String> {
    let (el, recs) = match list(ino.blkno, &ino.buf) {
        Ok(x) => x,
        Err(e) => return Some(e.to_string()),
    };
    if recs.iter().any(|r| r.flags() & EXT_UNWRITTEN != 0) {
        return Some(format!("inode {} has unwritten extents", ino.blkno));
    }
    (recs.len() + holes > usize::from(el.l_count.get())).then(|| {
        format!(
            "inode {}: its holes need more extent records than its inode holds ({})",
            ino.blkno,
            el.l_count.get()
        )
    })
}

/// Fill the holes of file `blkno` (see [`holes`]) with zeroed clusters, as
/// tunefs.ocfs2 fills them when sparse files are turned off: the clusters
/// taken from the global bitmap (libocfs2's ocfs2_new_clusters, a run at a
/// time), zeroed, then the inode written with their records in place and
/// its `i_clusters`. A crash before the inode leaves clusters marked that
/// nothing uses, which fsck frees, and the file as it was. Returns the
/// clusters added.
pub fn fill_holes(vol: &Volume, blkno: u64) -> Result<u64> {
    let mut ino = vol.read_inode(blkno)?;
    let holes = holes(vol, &ino)?;
    if holes.is_empty() {
        return Ok(0);
    }
    let (el, mut recs) = list(blkno, &ino.buf)?;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let bs = u64::from(vol.block_size());
    let cs = u64::from(vol.cluster_size());
    let room = usize::from(el.l_count.get());
    let mut added = 0u64;
    for (start, len) in holes {
        let mut at = start;
        while at < start + len {
            if recs.len() == room {
                return Err(Error::Invalid(format!(
                    "inode {blkno}: its extent list is full ({room} records); the clusters taken are left to fsck"
                )));
            }
            let (first, n) = alloc::take_range(vol, 1, (start + len - at).min(MAX_LEAF))?;
            vol.device().zero_range(first * bpc * bs, n * cs)?;
            let mut r = ExtentRec::default();
            r.e_cpos.set(at as u32);
            r.e_int_clusters.set(n as u32);
            r.e_blkno.set(first * bpc);
            recs.push(r);
            at += n;
            added += n;
        }
    }
    recs.sort_by_key(|r| r.e_cpos.get());
    vol.device().flush()?;
    put_list(&mut ino.buf, &el, &recs);
    let clusters = u64::from(ino.di().i_clusters.get()) + added;
    set_sizes(&mut ino.buf, clusters, cs, false);
    vol.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()?;
    Ok(added)
}
