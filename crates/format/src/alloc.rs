//! Changes to the global bitmap (the cluster allocator) that recovery and
//! repairs make: freeing cluster ranges, group by group.
//!
//! Freeing is idempotent: only bits found set are cleared, and every count
//! moves by exactly the bits flipped, so a run stopped part-way and run
//! again gives the same volume as one uninterrupted run.
//!
//! Write order: each group descriptor (bitmap and its free count) first,
//! then the allocator inode (its chain records' `c_free` and `i_used`). A
//! crash in between leaves counts that disagree with the bitmaps, which
//! fsck's pass 2 reports (`CHAIN_BITS`, `CHAIN_GROUP_BITS`); the bitmaps
//! themselves are right at every step.

use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::ondisk::{ChainList, ChainRec, GroupDesc, DINODE_ID2, GROUP_DESC_SIGNATURE};
use crate::Volume;
use std::collections::BTreeMap;
use zerocopy::{FromBytes, IntoBytes};

/// Offset of a group descriptor's bitmap.
const BG_BITMAP: usize = 0x40;

/// The block of the group descriptor that covers cluster group `g` of the
/// global bitmap (`ocfs2_which_cluster_group`).
pub fn cluster_group_blkno(vol: &Volume, cpg: u64, g: u64) -> u64 {
    if g == 0 {
        vol.sb().s_first_cluster_group.get()
    } else {
        g * cpg * u64::from(vol.cluster_size() / vol.block_size())
    }
}

/// Free the clusters of `ranges` (start, count) in the global bitmap.
/// Returns how many bits were cleared.
pub fn free_clusters(vol: &Volume, ranges: &[(u64, u64)]) -> Result<u64> {
    change_clusters(vol, ranges, false)
}

/// Mark the clusters of `ranges` in use in the global bitmap. Returns how
/// many bits were set.
pub fn claim_clusters(vol: &Volume, ranges: &[(u64, u64)]) -> Result<u64> {
    change_clusters(vol, ranges, true)
}

/// Set (`used`) or clear the bits of `ranges`, moving every count by the
/// bits actually flipped.
fn change_clusters(vol: &Volume, ranges: &[(u64, u64)], used: bool) -> Result<u64> {
    let gb = vol.system_inode("global_bitmap")?;
    let mut inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 {
        return Err(Error::corrupt(gb, "global bitmap cl_cpg is 0"));
    }
    let total = u64::from(vol.clusters());
    // Bits to clear, per group.
    let mut per_group: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(start, len) in ranges {
        let end = start.saturating_add(len);
        if end > total {
            return Err(Error::Invalid(format!(
                "clusters {start}+{len} run past the volume's {total}"
            )));
        }
        for c in start..end {
            per_group.entry(c / cpg).or_default().push(c % cpg);
        }
    }
    let mut freed_per_chain: BTreeMap<usize, u64> = BTreeMap::new();
    let mut freed = 0u64;
    for (g, bits) in per_group {
        let blkno = cluster_group_blkno(vol, cpg, g);
        let mut buf = vol.read_meta(blkno, CheckAt::GroupDesc)?;
        if !buf.starts_with(GROUP_DESC_SIGNATURE) {
            return Err(Error::corrupt(blkno, "not a group descriptor"));
        }
        let (mut desc, _) =
            GroupDesc::read_from_prefix(&buf).expect("a block holds a group descriptor");
        let nbits = u64::from(desc.bg_bits.get());
        let mut n = 0u16;
        for bit in bits {
            if bit >= nbits {
                return Err(Error::corrupt(
                    blkno,
                    format!("bit {bit} past bg_bits {nbits}"),
                ));
            }
            let byte = BG_BITMAP + (bit / 8) as usize;
            let mask = 1u8 << (bit % 8);
            if buf.get(byte).is_some_and(|b| (b & mask != 0) != used) {
                buf[byte] ^= mask;
                n += 1;
            }
        }
        if n == 0 {
            continue;
        }
        let free = desc.bg_free_bits_count.get();
        desc.bg_free_bits_count.set(if used {
            free.saturating_sub(n)
        } else {
            free.saturating_add(n)
        });
        buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(desc.as_bytes());
        vol.write_meta(blkno, &mut buf, CheckAt::GroupDesc)?;
        *freed_per_chain
            .entry(usize::from(desc.bg_chain.get()))
            .or_default() += u64::from(n);
        freed += u64::from(n);
    }
    if freed == 0 {
        return Ok(0);
    }
    let rec_at = DINODE_ID2 + core::mem::size_of::<ChainList>();
    let used_recs = usize::from(cl.cl_next_free_rec.get());
    for (chain, n) in freed_per_chain {
        if chain >= used_recs {
            return Err(Error::corrupt(
                gb,
                format!("a group names chain {chain}, past cl_next_free_rec"),
            ));
        }
        let at = rec_at + chain * core::mem::size_of::<ChainRec>();
        let (mut rec, _) =
            ChainRec::read_from_prefix(&inode.buf[at..]).expect("bounds checked by chain_list");
        let free = rec.c_free.get();
        rec.c_free.set(if used {
            free.saturating_sub(n as u32)
        } else {
            free.saturating_add(n as u32)
        });
        inode.buf[at..at + 16].copy_from_slice(rec.as_bytes());
    }
    let in_use = inode.di().bitmap_used();
    inode.di_mut().set_bitmap_used(if used {
        in_use.saturating_add(freed as u32)
    } else {
        in_use.saturating_sub(freed as u32)
    });
    vol.write_meta(gb, &mut inode.buf, CheckAt::Inode)?;
    Ok(freed)
}

/// Make a chain allocator's counts agree with its bitmaps: each group's
/// free count from its bitmap, each chain record's totals from its groups,
/// the inode's `i_total`/`i_used` from the chains. Returns whether anything
/// was written. Groups first, then the inode (one write).
pub fn recount(vol: &Volume, alloc_blkno: u64) -> Result<bool> {
    let mut inode = vol.read_inode(alloc_blkno)?;
    let groups = vol.chain_groups(&inode)?;
    let (_, recs) = inode.chain_list()?;
    let mut totals = vec![(0u64, 0u64); recs.len()];
    let mut wrote = false;
    for g in &groups {
        let mut buf = vol.read_meta(g.blkno, CheckAt::GroupDesc)?;
        let bits = usize::from(g.desc.bg_bits.get());
        let room = (buf.len() - BG_BITMAP) * 8;
        if bits > room {
            return Err(Error::corrupt(
                g.blkno,
                format!("bg_bits {bits} exceeds the {room} bits its block holds"),
            ));
        }
        let set: usize = (0..bits)
            .filter(|&i| buf[BG_BITMAP + i / 8] & (1 << (i % 8)) != 0)
            .count();
        let free = (bits - set) as u16;
        if g.desc.bg_free_bits_count.get() != free {
            let (mut desc, _) =
                GroupDesc::read_from_prefix(&buf).expect("a block holds a group descriptor");
            desc.bg_free_bits_count.set(free);
            buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(desc.as_bytes());
            vol.write_meta(g.blkno, &mut buf, CheckAt::GroupDesc)?;
            wrote = true;
        }
        if let Some(t) = totals.get_mut(g.chain) {
            t.0 += bits as u64;
            t.1 += u64::from(free);
        }
    }
    let rec_at = DINODE_ID2 + core::mem::size_of::<ChainList>();
    let mut changed = false;
    let (mut all, mut all_free) = (0u64, 0u64);
    for (chain, (total, free)) in totals.iter().enumerate() {
        all += total;
        all_free += free;
        let at = rec_at + chain * core::mem::size_of::<ChainRec>();
        let (mut rec, _) =
            ChainRec::read_from_prefix(&inode.buf[at..]).expect("bounds checked by chain_list");
        if u64::from(rec.c_total.get()) != *total || u64::from(rec.c_free.get()) != *free {
            rec.c_total.set(*total as u32);
            rec.c_free.set(*free as u32);
            inode.buf[at..at + 16].copy_from_slice(rec.as_bytes());
            changed = true;
        }
    }
    let used = (all - all_free) as u32;
    if u64::from(inode.di().bitmap_total()) != all || inode.di().bitmap_used() != used {
        inode.di_mut().set_bitmap_total(all as u32);
        inode.di_mut().set_bitmap_used(used);
        changed = true;
    }
    if changed {
        vol.write_meta(alloc_blkno, &mut inode.buf, CheckAt::Inode)?;
    }
    Ok(wrote || changed)
}

/// Clusters per group of the global bitmap for a block size: a group's
/// bitmap fills its block after the 64-byte descriptor (mkfs.ocfs2's and
/// the kernel's layout).
pub fn global_cpg(block_size: u32) -> u64 {
    (u64::from(block_size) - BG_BITMAP as u64) * 8
}

/// Put every group of the global bitmap back on its chains: group `i` (at
/// [`cluster_group_blkno`]) on chain `i % cl_count`, the groups of a chain
/// in order. Each group's `bg_chain`, `bg_next_group` and parent are set,
/// then the inode's `cl_cpg`, chain records (with their totals from the
/// groups) and `cl_next_free_rec`, and its `i_total`/`i_used`.
///
/// Refuses (writing nothing) unless every expected descriptor is a group
/// descriptor at its own block. Groups first, the inode last: a crash in
/// between leaves groups whose links disagree with the chains, which the
/// next check reports and this rebuild redoes.
pub fn relink_global_groups(vol: &Volume, bitmap: u64) -> Result<()> {
    let cpg = global_cpg(vol.block_size());
    let clusters = u64::from(vol.clusters());
    let ngroups = clusters.div_ceil(cpg);
    let mut inode = vol.read_inode(bitmap)?;
    let (cl, _) = ChainList::read_from_prefix(inode.id2())
        .map_err(|_| Error::corrupt(bitmap, "chain list header truncated"))?;
    let room = (inode.buf.len() - DINODE_ID2 - core::mem::size_of::<ChainList>())
        / core::mem::size_of::<ChainRec>();
    let nchains = (usize::from(cl.cl_count.get()).min(room).max(1) as u64).min(ngroups.max(1));
    let mut groups = Vec::new();
    for i in 0..ngroups {
        let b = cluster_group_blkno(vol, cpg, i);
        let buf = vol.read_meta(b, CheckAt::GroupDesc)?;
        let (gd, _) = GroupDesc::read_from_prefix(&buf).expect("a block holds a descriptor");
        if !buf.starts_with(GROUP_DESC_SIGNATURE) || gd.bg_blkno.get() != b {
            return Err(Error::corrupt(
                b,
                "no group descriptor of the global bitmap here",
            ));
        }
        groups.push((b, buf));
    }
    let mut chains = vec![(0u64, 0u64, 0u64); nchains as usize]; // first, total, free
    for (i, (b, buf)) in groups.iter_mut().enumerate() {
        let c = i as u64 % nchains;
        let next = groups_next(i as u64, nchains, ngroups, |j| {
            cluster_group_blkno(vol, cpg, j)
        });
        let (mut gd, _) = GroupDesc::read_from_prefix(buf.as_slice()).expect("checked above");
        gd.bg_chain.set(c as u16);
        gd.bg_next_group.set(next);
        gd.bg_parent_dinode.set(bitmap);
        buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(gd.as_bytes());
        vol.write_meta(*b, buf, CheckAt::GroupDesc)?;
        let ch = &mut chains[c as usize];
        if ch.0 == 0 {
            ch.0 = *b;
        }
        ch.1 += u64::from(gd.bg_bits.get());
        ch.2 += u64::from(gd.bg_free_bits_count.get());
    }
    let mut head = cl;
    head.cl_cpg.set(cpg as u16);
    head.cl_next_free_rec.set(nchains as u16);
    let hdr = core::mem::size_of::<ChainList>();
    inode.buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(head.as_bytes());
    let (mut all, mut free) = (0u64, 0u64);
    for (c, &(first, total, f)) in chains.iter().enumerate() {
        let at = DINODE_ID2 + hdr + c * core::mem::size_of::<ChainRec>();
        let mut rec = ChainRec::default();
        rec.c_blkno.set(first);
        rec.c_total.set(total as u32);
        rec.c_free.set(f as u32);
        inode.buf[at..at + 16].copy_from_slice(rec.as_bytes());
        all += total;
        free += f;
    }
    let end = DINODE_ID2 + hdr + room * core::mem::size_of::<ChainRec>();
    inode.buf[DINODE_ID2 + hdr + chains.len() * 16..end].fill(0);
    inode.di_mut().set_bitmap_total(all as u32);
    inode.di_mut().set_bitmap_used((all - free) as u32);
    vol.write_meta(bitmap, &mut inode.buf, CheckAt::Inode)?;
    Ok(())
}

/// The group after group `i` on its chain (0 at the end).
fn groups_next(i: u64, nchains: u64, ngroups: u64, at: impl Fn(u64) -> u64) -> u64 {
    let j = i + nchains;
    if j < ngroups {
        at(j)
    } else {
        0
    }
}

/// The first clear bit of chain allocator `alloc_blkno` for which
/// `usable(group, bit)` holds, chain by chain: (group block, bit). Groups
/// of a discontiguous block group are skipped (their bits map through an
/// extent list this helper does not follow).
pub fn find_free_bit(
    vol: &Volume,
    alloc_blkno: u64,
    usable: &dyn Fn(u64, u16) -> bool,
) -> Result<Option<(u64, u16)>> {
    let inode = vol.read_inode(alloc_blkno)?;
    // Only suballocator groups can be discontiguous: a cluster group's
    // bitmap fills its block, over where their extent list would be.
    let global = vol.system_inode("global_bitmap").ok() == Some(alloc_blkno);
    let discontig = !global
        && vol
            .features()
            .has_incompat(crate::features::incompat::DISCONTIG_BG);
    for g in vol.chain_groups(&inode)? {
        if g.desc.bg_free_bits_count.get() == 0 {
            continue;
        }
        let buf = vol.read_meta(g.blkno, CheckAt::GroupDesc)?;
        // bg_list.l_next_free_rec of a discontiguous group (0x140 + 4).
        if discontig && buf.len() >= 0x148 && u16::from_le_bytes([buf[0x144], buf[0x145]]) != 0 {
            continue;
        }
        let bits = usize::from(g.desc.bg_bits.get()).min((buf.len() - BG_BITMAP) * 8);
        for i in 0..bits {
            if buf[BG_BITMAP + i / 8] & (1 << (i % 8)) == 0 && usable(g.blkno, i as u16) {
                return Ok(Some((g.blkno, i as u16)));
            }
        }
    }
    Ok(None)
}

/// Take bit `bit` of group `group` of chain allocator `alloc_blkno`: the
/// group's bitmap and free count first, then its chain record's `c_free`
/// and the inode's `i_used` (the module's write order). A bit already set
/// is an error: nothing is written.
pub fn take_bit(vol: &Volume, alloc_blkno: u64, group: u64, bit: u16) -> Result<()> {
    let mut inode = vol.read_inode(alloc_blkno)?;
    let (cl, _) = inode.chain_list()?;
    let mut buf = vol.read_meta(group, CheckAt::GroupDesc)?;
    if !buf.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(group, "not a group descriptor"));
    }
    let (mut desc, _) =
        GroupDesc::read_from_prefix(&buf).expect("a block holds a group descriptor");
    let byte = BG_BITMAP + usize::from(bit / 8);
    let mask = 1u8 << (bit % 8);
    if bit >= desc.bg_bits.get() || byte >= buf.len() {
        return Err(Error::corrupt(
            group,
            format!("bit {bit} past bg_bits {}", desc.bg_bits.get()),
        ));
    }
    if buf[byte] & mask != 0 {
        return Err(Error::corrupt(group, format!("bit {bit} is taken already")));
    }
    let chain = usize::from(desc.bg_chain.get());
    if chain >= usize::from(cl.cl_next_free_rec.get()) {
        return Err(Error::corrupt(
            group,
            format!("bg_chain {chain} is past the allocator's chains"),
        ));
    }
    buf[byte] |= mask;
    desc.bg_free_bits_count
        .set(desc.bg_free_bits_count.get().saturating_sub(1));
    buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(desc.as_bytes());
    vol.write_meta(group, &mut buf, CheckAt::GroupDesc)?;
    let at =
        DINODE_ID2 + core::mem::size_of::<ChainList>() + chain * core::mem::size_of::<ChainRec>();
    let (mut rec, _) =
        ChainRec::read_from_prefix(&inode.buf[at..]).expect("bounds checked by chain_list");
    rec.c_free.set(rec.c_free.get().saturating_sub(1));
    inode.buf[at..at + 16].copy_from_slice(rec.as_bytes());
    let used = inode.di().bitmap_used();
    inode.di_mut().set_bitmap_used(used.saturating_add(1));
    vol.write_meta(alloc_blkno, &mut inode.buf, CheckAt::Inode)
}

/// Take one free cluster of the global bitmap for which `usable` holds
/// (the caller's view of clusters in use that the bitmap may not show).
/// Returns the cluster; written in [`claim_clusters`]' order.
pub fn take_cluster(vol: &Volume, usable: &dyn Fn(u64) -> bool) -> Result<u64> {
    let gb = vol.system_inode("global_bitmap")?;
    let inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 {
        return Err(Error::corrupt(gb, "global bitmap cl_cpg is 0"));
    }
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let first = vol.sb().s_first_cluster_group.get();
    let total = u64::from(vol.clusters());
    let cluster = |group: u64, bit: u16| {
        let g = if group == first { 0 } else { group / bpc / cpg };
        g * cpg + u64::from(bit)
    };
    let found = find_free_bit(vol, gb, &|group, bit| {
        let c = cluster(group, bit);
        c < total && usable(c)
    })?;
    let Some((group, bit)) = found else {
        return Err(Error::Invalid(
            "no free cluster left in the global bitmap".into(),
        ));
    };
    let c = cluster(group, bit);
    claim_clusters(vol, &[(c, 1)])?;
    Ok(c)
}

/// Take `n` free consecutive clusters of one group of the global bitmap
/// for which `usable` holds (the caller's view of clusters in use that the
/// bitmap may not show). Returns the first; written in [`claim_clusters`]'
/// order.
pub fn take_run(vol: &Volume, n: u64, usable: &dyn Fn(u64) -> bool) -> Result<u64> {
    let gb = vol.system_inode("global_bitmap")?;
    let inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 || n == 0 || n > cpg {
        return Err(Error::Invalid(format!(
            "{n} consecutive clusters do not fit in a group of {cpg}"
        )));
    }
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let first = vol.sb().s_first_cluster_group.get();
    let total = u64::from(vol.clusters());
    for g in vol.chain_groups(&inode)? {
        if u64::from(g.desc.bg_free_bits_count.get()) < n {
            continue;
        }
        let base = if g.blkno == first {
            0
        } else {
            g.blkno / bpc / cpg * cpg
        };
        let buf = vol.read_meta(g.blkno, CheckAt::GroupDesc)?;
        let bits = u64::from(g.desc.bg_bits.get()).min(((buf.len() - BG_BITMAP) * 8) as u64);
        let mut run = 0u64;
        for i in 0..bits {
            let c = base + i;
            let free = buf[BG_BITMAP + (i / 8) as usize] & (1 << (i % 8)) == 0;
            run = if free && c < total && usable(c) {
                run + 1
            } else {
                0
            };
            if run == n {
                let start = c + 1 - n;
                claim_clusters(vol, &[(start, n)])?;
                return Ok(start);
            }
        }
    }
    Err(Error::Invalid(format!(
        "no {n} free consecutive clusters left in the global bitmap"
    )))
}

/// Take up to `len` consecutive free clusters, at least `min`, as
/// libocfs2's ocfs2_new_clusters finds them: the global bitmap's groups in
/// cluster order, the first group with `min` free bits answers: its first
/// free run of `len`, else its longest run (the first of that length) when
/// it holds `min`. Returns (first cluster, clusters taken), marked in
/// [`claim_clusters`]' order.
pub fn take_range(vol: &Volume, min: u64, len: u64) -> Result<(u64, u64)> {
    let gb = vol.system_inode("global_bitmap")?;
    let inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 || min == 0 || len < min {
        return Err(Error::Invalid(format!(
            "a run of {min} to {len} clusters in groups of {cpg}"
        )));
    }
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let first = vol.sb().s_first_cluster_group.get();
    let total = u64::from(vol.clusters());
    let mut groups = vol.chain_groups(&inode)?;
    groups.sort_by_key(|g| g.blkno);
    for g in groups {
        if u64::from(g.desc.bg_free_bits_count.get()) < min {
            continue;
        }
        let base = if g.blkno == first {
            0
        } else {
            g.blkno / bpc / cpg * cpg
        };
        let buf = vol.read_meta(g.blkno, CheckAt::GroupDesc)?;
        let bits = u64::from(g.desc.bg_bits.get())
            .min(((buf.len() - BG_BITMAP) * 8) as u64)
            .min(total.saturating_sub(base));
        let set = |i: u64| buf[BG_BITMAP + (i / 8) as usize] & (1 << (i % 8)) != 0;
        let (mut best, mut best_len) = (None, 0u64);
        let mut i = 0;
        while i < bits {
            if set(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bits && !set(i) && i - start < len {
                i += 1;
            }
            let run = i - start;
            if run >= len {
                claim_clusters(vol, &[(base + start, len)])?;
                return Ok((base + start, len));
            }
            if run > best_len {
                (best, best_len) = (Some(start), run);
            }
        }
        if let Some(start) = best.filter(|_| best_len >= min) {
            claim_clusters(vol, &[(base + start, best_len)])?;
            return Ok((base + start, best_len));
        }
    }
    Err(Error::Invalid(format!(
        "no {min} free consecutive clusters left in the global bitmap"
    )))
}

/// Write group descriptor `k` of the global bitmap (inode `bitmap`) afresh
/// at its block, when that block holds no descriptor: signature, sizes,
/// chain `k % cl_count` with no next group (relinking the groups, which
/// needs every descriptor in place, follows), generation, parent, and a
/// bitmap of the clusters `in_use` names plus the descriptor's own. One
/// block; the allocator's counts are recomputed afterwards.
pub fn rebuild_global_group(
    vol: &Volume,
    bitmap: u64,
    k: u64,
    in_use: &dyn Fn(u64) -> bool,
) -> Result<()> {
    let inode = vol.read_inode(bitmap)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = global_cpg(vol.block_size());
    let total = u64::from(vol.clusters());
    if k * cpg >= total || cl.cl_count.get() == 0 {
        return Err(Error::Invalid(format!(
            "the global bitmap has no group {k}"
        )));
    }
    let blkno = cluster_group_blkno(vol, cpg, k);
    if vol.read_block(blkno)?.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::Invalid(format!(
            "block {blkno} holds a group descriptor already"
        )));
    }
    let bs = vol.block_size() as usize;
    let bits = cpg.min(total - k * cpg);
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let own = blkno / bpc;
    let mut d = vec![0u8; bs];
    let mut set = 0u64;
    for i in 0..bits {
        let c = k * cpg + i;
        if c == own || in_use(c) {
            d[BG_BITMAP + (i / 8) as usize] |= 1 << (i % 8);
            set += 1;
        }
    }
    let gen = vol.super_inode().di().i_fs_generation.get();
    let (h, _) = GroupDesc::mut_from_prefix(&mut d).expect("block");
    h.bg_signature.copy_from_slice(b"GROUP01\0");
    h.bg_size.set((bs - BG_BITMAP) as u16);
    h.bg_bits.set(bits as u16);
    h.bg_free_bits_count.set((bits - set) as u16);
    h.bg_chain.set((k % u64::from(cl.cl_count.get())) as u16);
    h.bg_generation.set(gen);
    h.bg_next_group.set(0);
    h.bg_parent_dinode.set(bitmap);
    h.bg_blkno.set(blkno);
    vol.write_meta(blkno, &mut d, CheckAt::GroupDesc)
}

/// Whether cluster `c`'s bit is set in the global bitmap.
pub fn cluster_in_use(vol: &Volume, c: u64) -> Result<bool> {
    let gb = vol.system_inode("global_bitmap")?;
    let inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 || c >= u64::from(vol.clusters()) {
        return Err(Error::Invalid(format!(
            "cluster {c} is outside the global bitmap"
        )));
    }
    let blkno = cluster_group_blkno(vol, cpg, c / cpg);
    let buf = vol.read_meta(blkno, CheckAt::GroupDesc)?;
    if !buf.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(blkno, "not a group descriptor"));
    }
    let bit = c % cpg;
    Ok(buf
        .get(BG_BITMAP + (bit / 8) as usize)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0))
}

/// Take a metadata block from slot `slot`'s extent allocator (bit 0 of a
/// group is its descriptor, never handed out): [`take_bit`]'s order. An
/// allocator without a free block first gets a group ([`add_group`]), as
/// libocfs2's chain allocation grows it. Returns (block, group, bit).
pub fn take_meta_block(vol: &Volume, slot: u16) -> Result<(u64, u64, u16)> {
    let ea = vol.system_inode(&crate::fs::slot_file_name("extent_alloc", slot))?;
    let usable = |g: u64, bit: u16| bit != 0 && g + u64::from(bit) < vol.device_blocks();
    let found = match find_free_bit(vol, ea, &usable)? {
        Some(f) => Some(f),
        None => {
            add_group(vol, ea)?;
            find_free_bit(vol, ea, &usable)?
        }
    };
    let Some((group, bit)) = found else {
        return Err(Error::Invalid(format!(
            "extent allocator of slot {slot} has no free block"
        )));
    };
    take_bit(vol, ea, group, bit)?;
    Ok((group + u64::from(bit), group, bit))
}

/// Give bit `bit` of group `group` back to chain allocator `alloc_blkno`:
/// the group's bit cleared, then the allocator's counts recomputed
/// ([`recount`]). A bit already clear is left as it is.
pub fn free_bit(vol: &Volume, alloc_blkno: u64, group: u64, bit: u16) -> Result<()> {
    let mut buf = vol.read_meta(group, CheckAt::GroupDesc)?;
    if !buf.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(group, "not a group descriptor"));
    }
    let byte = BG_BITMAP + usize::from(bit / 8);
    let mask = 1u8 << (bit % 8);
    match buf.get_mut(byte) {
        Some(b) if *b & mask != 0 => *b &= !mask,
        Some(_) => return Ok(()),
        None => {
            return Err(Error::corrupt(
                group,
                format!("bit {bit} is outside the group"),
            ))
        }
    }
    vol.write_meta(group, &mut buf, CheckAt::GroupDesc)?;
    recount(vol, alloc_blkno)?;
    Ok(())
}

/// Grow the global bitmap to `new` clusters, as tunefs.ocfs2 `-S` does: the
/// last group takes the new clusters up to a full group, then new groups
/// (each on the chain after the one before, at the head of its chain), the
/// clusters of `reserved` (backup superblocks) marked in use where they
/// fall. A global bitmap of one group first gets the `cl_cpg` its
/// descriptor's bitmap holds. Order: each new group's first cluster zeroed
/// and its descriptor written (past the volume's end, on no chain yet);
/// then the last group's descriptor grown; then the inode (chains, counts,
/// `i_clusters`, `i_size`) in one write. The caller marks the superblocks
/// `RESIZE_INPROG` before and writes the new size into them after.
pub fn grow_global_bitmap(
    vol: &Volume,
    new: u32,
    reserved: &[u64],
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let gb = vol.system_inode("global_bitmap")?;
    let mut inode = vol.read_inode(gb)?;
    let (mut cl, recs) = inode.chain_list()?;
    let mut recs = recs;
    let old = inode.di().i_clusters.get();
    if new <= old || old == 0 {
        return Err(Error::Invalid(format!(
            "the global bitmap has {old} clusters: not grown to {new}"
        )));
    }
    let bpc = u64::from(cl.cl_bpc.get().max(1));
    let count = usize::from(cl.cl_count.get());
    let last_blkno = cluster_group_blkno(
        vol,
        u64::from(cl.cl_cpg.get()),
        u64::from(old - 1) / u64::from(cl.cl_cpg.get()),
    );
    let mut last = vol.read_meta(last_blkno, CheckAt::GroupDesc)?;
    let (lgd, _) = GroupDesc::read_from_prefix(&last)
        .map_err(|_| Error::corrupt(last_blkno, "group descriptor truncated"))?;
    if !last.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(last_blkno, "not a group descriptor"));
    }
    if cl.cl_next_free_rec.get() == 1 && cl.cl_cpg.get() < 8 * lgd.bg_size.get() {
        cl.cl_cpg.set(8 * lgd.bg_size.get());
    }
    let cpg = u64::from(cl.cl_cpg.get());
    let gen = vol.super_inode().di().i_fs_generation.get();
    let set = |buf: &mut [u8], bit: u64| buf[BG_BITMAP + (bit / 8) as usize] |= 1 << (bit % 8);
    let (mut total, mut used) = (0u64, 0u64);
    // The last group up to a full group.
    let ext = (u64::from(new - old)).min(cpg - u64::from(lgd.bg_bits.get()) / bpc);
    let base = if last_blkno == vol.sb().s_first_cluster_group.get() {
        0
    } else {
        last_blkno / bpc / cpg * cpg
    };
    let mut lgd = lgd;
    if ext > 0 {
        let (from, to) = (u64::from(old), u64::from(old) + ext);
        let inside: Vec<u64> = reserved
            .iter()
            .copied()
            .filter(|c| (from..to).contains(c))
            .collect();
        for &c in &inside {
            set(&mut last, (c - base) * bpc);
        }
        let taken = inside.len() as u64;
        lgd.bg_bits.set(lgd.bg_bits.get() + (ext * bpc) as u16);
        lgd.bg_free_bits_count
            .set(lgd.bg_free_bits_count.get() + ((ext - taken) * bpc) as u16);
        let r = recs
            .get_mut(usize::from(lgd.bg_chain.get()))
            .ok_or_else(|| Error::corrupt(last_blkno, "bg_chain past the chain list"))?;
        r.c_total.set(r.c_total.get() + (ext * bpc) as u32);
        r.c_free.set(r.c_free.get() + ((ext - taken) * bpc) as u32);
        total += ext * bpc;
        used += taken * bpc;
        last[..core::mem::size_of::<GroupDesc>()].copy_from_slice(lgd.as_bytes());
    }
    // New groups.
    let bs = vol.block_size() as usize;
    let mut chain = usize::from(lgd.bg_chain.get());
    let mut first = u64::from(old) + ext;
    let cluster_bytes = u64::from(vol.cluster_size());
    while first < u64::from(new) {
        let chunk = (u64::from(new) - first).min(cpg);
        let blkno = cluster_group_blkno(vol, cpg, first / cpg);
        chain = (chain + 1) % count;
        if chain >= recs.len() {
            recs.push(ChainRec::default());
            cl.cl_next_free_rec.set(recs.len() as u16);
        }
        let r = &mut recs[chain];
        let mut d = vec![0u8; bs];
        let bits = chunk * bpc;
        let mut free = bits - bpc;
        set(&mut d, 0);
        for &c in reserved.iter().filter(|&&c| c > first && c < first + chunk) {
            set(&mut d, (c - first) * bpc);
            free -= bpc;
        }
        {
            let (h, _) = GroupDesc::mut_from_prefix(&mut d).expect("block");
            h.bg_signature.copy_from_slice(b"GROUP01\0");
            h.bg_size.set((bs - BG_BITMAP) as u16);
            h.bg_bits.set(bits as u16);
            h.bg_free_bits_count.set(free as u16);
            h.bg_chain.set(chain as u16);
            h.bg_generation.set(gen);
            h.bg_next_group.set(r.c_blkno.get());
            h.bg_parent_dinode.set(gb);
            h.bg_blkno.set(blkno);
        }
        verify()?;
        crate::io::write_zeros(vol.device(), blkno * bs as u64, cluster_bytes)?;
        vol.write_meta(blkno, &mut d, CheckAt::GroupDesc)?;
        r.c_blkno.set(blkno);
        r.c_total.set(r.c_total.get() + bits as u32);
        r.c_free.set(r.c_free.get() + free as u32);
        total += bits;
        used += bits - free;
        first += chunk;
    }
    vol.device().flush()?;
    if ext > 0 {
        verify()?;
        vol.write_meta(last_blkno, &mut last, CheckAt::GroupDesc)?;
        vol.device().flush()?;
    }
    let di = inode.di_mut();
    di.set_bitmap_total(di.bitmap_total() + total as u32);
    di.set_bitmap_used(di.bitmap_used() + used as u32);
    di.i_clusters.set(new);
    di.i_size
        .set(u64::from(new) * u64::from(vol.cluster_size()));
    let hdr = core::mem::size_of::<ChainList>();
    inode.buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(cl.as_bytes());
    for (i, r) in recs.iter().enumerate() {
        let at = DINODE_ID2 + hdr + i * core::mem::size_of::<ChainRec>();
        inode.buf[at..at + 16].copy_from_slice(r.as_bytes());
    }
    verify()?;
    vol.write_meta(gb, &mut inode.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// Finish a resize that stopped (`RESIZE_INPROG` in the superblock): when
/// the global bitmap inode holds more clusters than the superblock, every
/// superblock copy gets them (and the backups they take in); otherwise the
/// group holding the superblock's last cluster goes back to ending there
/// (bits past it cleared), the allocator's counts are recomputed, and the
/// superblocks keep their size. The flag is cleared in every copy, last.
/// New groups past the end stay on no chain: nothing reads them.
pub fn finish_resize(vol: &Volume) -> Result<()> {
    let gb = vol.system_inode("global_bitmap")?;
    let inode = vol.read_inode(gb)?;
    let (cl, _) = inode.chain_list()?;
    let mut sb = *vol.sb();
    sb.s_feature_incompat
        .set(sb.s_feature_incompat.get() & !crate::features::incompat::RESIZE_INPROG);
    let have = inode.di().i_clusters.get();
    let sized = vol.clusters();
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    if have > sized {
        let backups = vol.backups_within(u64::from(have));
        return vol.write_super_sized(&sb, Some(have), &backups);
    }
    let cpg = u64::from(cl.cl_cpg.get());
    if cpg == 0 || sized == 0 {
        return Err(Error::corrupt(
            gb,
            "global bitmap cl_cpg or the volume's size is 0",
        ));
    }
    let g = (u64::from(sized) - 1) / cpg;
    let blkno = cluster_group_blkno(vol, cpg, g);
    let mut buf = vol.read_meta(blkno, CheckAt::GroupDesc)?;
    if !buf.starts_with(GROUP_DESC_SIGNATURE) {
        return Err(Error::corrupt(blkno, "not a group descriptor"));
    }
    let (mut gd, _) = GroupDesc::read_from_prefix(&buf).expect("a block holds a group descriptor");
    let keep = ((u64::from(sized) - g * cpg) * bpc) as usize;
    let bits = usize::from(gd.bg_bits.get());
    if bits > keep {
        for i in keep..bits.min((buf.len() - BG_BITMAP) * 8) {
            buf[BG_BITMAP + i / 8] &= !(1 << (i % 8));
        }
        gd.bg_bits.set(keep as u16);
        buf[..core::mem::size_of::<GroupDesc>()].copy_from_slice(gd.as_bytes());
        vol.write_meta(blkno, &mut buf, CheckAt::GroupDesc)?;
        vol.device().flush()?;
    }
    recount(vol, gb)?;
    vol.device().flush()?;
    vol.write_super_everywhere(&sb)?;
    Ok(())
}

/// The bytes of a group descriptor's bitmap (`ocfs2_group_bitmap_size`):
/// a suballocator's on a discontig-bg volume leaves room for the extent
/// list of a discontiguous group; every other fills the block's rest.
pub fn group_bitmap_size(block_size: usize, suballocator: bool, discontig: bool) -> usize {
    if suballocator && discontig {
        crate::ondisk::MAX_BG_BITMAP_SIZE
    } else {
        block_size - BG_BITMAP
    }
}

/// A new suballocator group descriptor (`ocfs2_init_group_desc`): `bits`
/// blocks from `blkno`, bit 0 (the descriptor's own block) in use, on chain
/// `chain` before `next`, of allocator `parent`. The bitmap's size is a
/// discontiguous group's on a discontig-bg volume, else the block's rest.
#[allow(clippy::too_many_arguments)]
pub fn new_suballoc_desc(
    block_size: usize,
    discontig: bool,
    blkno: u64,
    bits: u16,
    chain: u16,
    next: u64,
    parent: u64,
    generation: u32,
) -> Vec<u8> {
    let mut gd = vec![0u8; block_size];
    let (g, bm) = GroupDesc::mut_from_prefix(&mut gd).expect("a block holds a descriptor");
    g.bg_signature[..GROUP_DESC_SIGNATURE.len()].copy_from_slice(GROUP_DESC_SIGNATURE);
    g.bg_size
        .set(group_bitmap_size(block_size, true, discontig) as u16);
    g.bg_bits.set(bits);
    g.bg_free_bits_count.set(bits - 1);
    g.bg_chain.set(chain);
    g.bg_generation.set(generation);
    g.bg_next_group.set(next);
    g.bg_parent_dinode.set(parent);
    g.bg_blkno.set(blkno);
    bm[0] |= 1;
    gd
}

/// The chain a new group joins, as `ocfs2_chain_add_group` picks it: the
/// next free record, or, all `count` in use, round robin by the groups so
/// far.
pub fn chain_for_new_group(next_free: u16, count: u16, groups_before: u32) -> u16 {
    if next_free < count {
        next_free
    } else {
        (groups_before % u32::from(count.max(1))) as u16
    }
}

/// Put group `group` (`bits` bits, `free` of them free) at the head of
/// chain `chain` of chain allocator inode `ino` (in memory), as
/// `ocfs2_chain_add_group` and tunefs.ocfs2's move_group do: the record's
/// block and counts, `cl_next_free_rec` when the chain is the next free
/// one, the inode's bitmap counts and `i_clusters` (one group's `cl_cpg`
/// more, returned). The caller sets `i_size` and writes the inode.
pub fn head_group(
    ino: &mut crate::Inode,
    chain: u16,
    group: u64,
    bits: u16,
    free: u16,
) -> Result<u32> {
    let (cl, _) = ino.chain_list()?;
    let at = DINODE_ID2 + core::mem::size_of::<ChainList>() + usize::from(chain) * 16;
    let (mut rec, _) = ChainRec::read_from_prefix(&ino.buf[at..])
        .map_err(|_| Error::corrupt(ino.blkno, "chain record outside the block"))?;
    rec.c_blkno.set(group);
    rec.c_total.set(rec.c_total.get() + u32::from(bits));
    rec.c_free.set(rec.c_free.get() + u32::from(free));
    ino.buf[at..at + 16].copy_from_slice(rec.as_bytes());
    let next = cl.cl_next_free_rec.get();
    if chain == next {
        ino.buf[DINODE_ID2 + 6..DINODE_ID2 + 8].copy_from_slice(&(next + 1).to_le_bytes());
    }
    let clusters = ino.di().i_clusters.get() + u32::from(cl.cl_cpg.get());
    let di = ino.di_mut();
    di.set_bitmap_total(di.bitmap_total() + u32::from(bits));
    di.set_bitmap_used(di.bitmap_used() + u32::from(bits) - u32::from(free));
    di.i_clusters.set(clusters);
    Ok(clusters)
}

/// Give suballocator `alloc_blkno` (an inode or extent allocator) one more
/// group, as `ocfs2_chain_add_group` does: `cl_cpg` consecutive clusters
/// taken from the global bitmap, zeroed, the descriptor written at the head
/// of its chain, then the allocator inode (record, counts, `i_clusters`,
/// `i_size`) in one write. A crash before the inode leaves clusters marked
/// that nothing on a chain uses, which fsck frees. Returns the group.
pub fn add_group(vol: &Volume, alloc_blkno: u64) -> Result<u64> {
    let mut ino = vol.read_inode(alloc_blkno)?;
    let (cl, recs) = ino.chain_list()?;
    let cpg = u64::from(cl.cl_cpg.get());
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let bits = cpg * bpc;
    if cpg == 0 || bits > u64::from(u16::MAX) || bits > u64::from(cl.cl_bpc.get()) * cpg {
        return Err(Error::corrupt(
            alloc_blkno,
            format!(
                "cl_cpg {cpg} or cl_bpc {} cannot make a group",
                cl.cl_bpc.get()
            ),
        ));
    }
    let (next, count) = (cl.cl_next_free_rec.get(), cl.cl_count.get());
    let groups = ino.di().i_clusters.get() / cpg as u32;
    let chain = chain_for_new_group(next, count, groups);
    let (start, _) = take_range(vol, cpg, cpg)?;
    let blkno = start * bpc;
    crate::io::write_zeros(
        vol.device(),
        vol.block_offset(blkno)?,
        bits * u64::from(vol.block_size()),
    )?;
    let head = recs.get(usize::from(chain)).map_or(0, |r| r.c_blkno.get());
    let discontig = vol
        .features()
        .has_incompat(crate::features::incompat::DISCONTIG_BG);
    let mut gd = new_suballoc_desc(
        vol.block_size() as usize,
        discontig,
        blkno,
        bits as u16,
        chain,
        head,
        alloc_blkno,
        vol.super_inode().di().i_fs_generation.get(),
    );
    vol.write_meta(blkno, &mut gd, CheckAt::GroupDesc)?;
    let clusters = head_group(&mut ino, chain, blkno, bits as u16, bits as u16 - 1)?;
    ino.di_mut()
        .i_size
        .set(u64::from(clusters) * u64::from(vol.cluster_size()));
    vol.write_meta(alloc_blkno, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()?;
    Ok(blkno)
}
