//! Pass 2, continued: a discontiguous block group (`discontig-bg`) keeps the
//! clusters it spans in an extent list after its bitmap (`bg_list` at
//! 0x140). The checks follow fsck.ocfs2's order: depth, count, then each
//! record against the volume and the allocator's clusters per group, then
//! the records in use, then the group's total.

use super::*;
use core::mem::{offset_of, size_of};

/// Where `bg_list` starts in a group descriptor.
const BG_LIST: usize = size_of::<GroupDesc>() + MAX_BG_BITMAP_SIZE;

/// Records a group descriptor of `bs` bytes holds.
fn recs_per_gd(bs: usize) -> usize {
    (bs - BG_LIST - size_of::<ExtentList>()) / size_of::<ExtentRec>()
}

/// Whether the group in `buf` is discontiguous (its bitmap ends where
/// `bg_list` begins and the list has records), as the kernel decides.
pub(super) fn is_discontig(buf: &[u8]) -> bool {
    let Ok((gd, _)) = GroupDesc::read_from_prefix(buf) else {
        return false;
    };
    size_of::<GroupDesc>() + usize::from(gd.bg_size.get()) == BG_LIST
        && buf
            .get(BG_LIST..)
            .and_then(|l| ExtentList::read_from_prefix(l).ok())
            .is_some_and(|(el, _)| el.l_next_free_rec.get() != 0)
}

impl Checker<'_> {
    /// Check discontiguous group `g` (its block in `buf`) of an allocator
    /// with `cpg` clusters per group. Returns the block runs it spans, or
    /// None when the group cannot be trusted: `unlink` then takes it off
    /// its chain (the repair fsck.ocfs2 calls dropping the group).
    pub(super) fn discontig_group(
        &mut self,
        g: u64,
        buf: &[u8],
        cpg: u64,
        owner: u64,
        unlink: Option<Fix>,
    ) -> Option<Vec<(u64, u64)>> {
        let bs = self.bs as usize;
        let list = |off: usize, width: u8, value: u64, field: &'static str| {
            Set::fix(g, BG_LIST + off, width, value, CheckAt::GroupDesc, field)
        };
        let (el, recs) = ExtentList::read_from_prefix(&buf[BG_LIST..]).ok()?;
        if el.l_tree_depth.get() != 0 {
            self.add_fix(
                "DISCONTIG_BG_DEPTH",
                Some(g),
                Some(owner),
                format!(
                    "discontiguous group {g}: tree depth {}",
                    el.l_tree_depth.get()
                ),
                list(offset_of!(ExtentList, l_tree_depth), 2, 0, "l_tree_depth"),
            );
        }
        let max = recs_per_gd(bs);
        let count = usize::from(el.l_count.get());
        if count > max {
            self.add_fix(
                "DISCONTIG_BG_COUNT",
                Some(g),
                Some(owner),
                format!("discontiguous group {g}: l_count {count}, a group holds {max}"),
                list(offset_of!(ExtentList, l_count), 2, max as u64, "l_count"),
            );
        }
        let next = usize::from(el.l_next_free_rec.get()).min(count.min(max));
        let drop = |me: &mut Self, code: &'static str, msg: String| {
            let f = Finding::new(code, Some(g), Some(owner), msg);
            me.findings.push(Finding { fix: unlink, ..f });
            None
        };
        if let Some(runs) = self.discontig_by_cpos(g, owner, recs, next, cpg) {
            return Some(runs);
        }
        let mut total = 0u64;
        // A record larger than a group: (index, clusters, first block).
        let mut fix_pos: Option<(usize, u64, u64)> = None;
        let mut runs = Vec::new();
        let mut filled = next;
        for i in 0..next {
            let (r, _) = ExtentRec::read_from_prefix(&recs[i * size_of::<ExtentRec>()..]).ok()?;
            let (blk, n) = (r.e_blkno.get(), u64::from(r.leaf_clusters()));
            if blk == 0 && n == 0 {
                filled = i;
                break;
            }
            let end = blk.checked_add((n * self.bpc).max(1) - 1);
            if blk < SUPER_BLOCK_BLKNO || end.is_none_or(|e| e >= self.blocks()) {
                return drop(self, "DISCONTIG_BG_REC_RANGE", format!("discontiguous group {g}: record {i} ({blk}+{n} clusters) lies outside the volume"));
            }
            if n > cpg {
                if let Some((p, pn, _)) = fix_pos {
                    return drop(self, "DISCONTIG_BG_CORRUPT_LEAVES", format!("discontiguous group {g}: records {p} ({pn} clusters) and {i} ({n}) are both larger than a group ({cpg})"));
                }
                fix_pos = Some((i, n, blk));
                continue;
            }
            if total + n > cpg {
                if total == cpg {
                    if fix_pos.is_some() {
                        return drop(self, "DISCONTIG_BG_LIST_CORRUPT", format!("discontiguous group {g}: l_next_free_rec {} and its records are both wrong", el.l_next_free_rec.get()));
                    }
                    filled = i;
                    break;
                }
                return drop(
                    self,
                    "DISCONTIG_BG_CLUSTERS",
                    format!(
                        "discontiguous group {g}: its records hold {} clusters, a group {cpg}",
                        total + n
                    ),
                );
            }
            total += n;
            runs.push((blk, n * self.bpc));
        }
        if usize::from(el.l_next_free_rec.get()) != filled {
            self.add_fix(
                "DISCONTIG_BG_NEXT_FREE_REC",
                Some(g),
                Some(owner),
                format!(
                    "discontiguous group {g}: l_next_free_rec {}, {filled} records filled in",
                    el.l_next_free_rec.get()
                ),
                list(
                    offset_of!(ExtentList, l_next_free_rec),
                    2,
                    filled as u64,
                    "l_next_free_rec",
                ),
            );
        }
        match fix_pos {
            None if total < cpg => drop(self, "DISCONTIG_BG_LESS_CLUSTERS", format!("discontiguous group {g}: its records hold {total} clusters, a group {cpg}")),
            None => Some(runs),
            Some((p, pn, _)) if total == cpg => drop(self, "DISCONTIG_BG_REC_CORRUPT", format!("discontiguous group {g}: record {p} claims {pn} clusters, the others fill the group already")),
            Some((p, pn, blk)) => {
                let rec = size_of::<ExtentList>() + p * size_of::<ExtentRec>();
                self.add_fix(
                    "DISCONTIG_BG_LEAF_CLUSTERS",
                    Some(g),
                    Some(owner),
                    format!("discontiguous group {g}: record {p} claims {pn} clusters, the group has room for {}", cpg - total),
                    list(rec + offset_of!(ExtentRec, e_int_clusters), 2, cpg - total, "e_leaf_clusters"),
                );
                // The group as the repair leaves it.
                runs.push((blk, (cpg - total) * self.bpc));
                Some(runs)
            }
        }
    }
}

impl Checker<'_> {
    /// The records' e_cpos say where each begins in the group. When they
    /// run from 0, increasing, below `cpg`, while the lengths do not add up
    /// to a group, each record's length is the distance to the next (the
    /// last's, to `cpg`): a length that disagrees is set back
    /// (DISCONTIG_BG_LEAF_CLUSTERS). fsck.ocfs2 trusts the lengths instead
    /// and blames whichever record is too long, which can leave two
    /// records over the same clusters. Returns the group's block runs as
    /// the repair leaves them, or None when the e_cpos do not tell.
    fn discontig_by_cpos(
        &mut self,
        g: u64,
        owner: u64,
        recs: &[u8],
        next: usize,
        cpg: u64,
    ) -> Option<Vec<(u64, u64)>> {
        let mut parsed = Vec::new();
        for i in 0..next {
            let (r, _) =
                ExtentRec::read_from_prefix(recs.get(i * size_of::<ExtentRec>()..)?).ok()?;
            let (blk, n) = (r.e_blkno.get(), u64::from(r.leaf_clusters()));
            if blk == 0 && n == 0 {
                return None; // fewer records than l_next_free_rec: not this
            }
            parsed.push((u64::from(r.e_cpos.get()), n, blk));
        }
        let increasing = parsed.windows(2).all(|w| w[0].0 < w[1].0);
        let sum: u64 = parsed.iter().map(|r| r.1).sum();
        if parsed.first()?.0 != 0 || !increasing || parsed.last()?.0 >= cpg || sum == cpg {
            return None;
        }
        let mut runs = Vec::new();
        let mut fixes = Vec::new();
        for (i, &(cpos, n, blk)) in parsed.iter().enumerate() {
            let want = parsed.get(i + 1).map_or(cpg, |r| r.0) - cpos;
            let end = blk.checked_add(want * self.bpc)?;
            if blk < SUPER_BLOCK_BLKNO || end > self.blocks() {
                return None;
            }
            if n != want {
                fixes.push((i, n, want));
            }
            runs.push((blk, want * self.bpc));
        }
        for (i, n, want) in fixes {
            let at = BG_LIST
                + size_of::<ExtentList>()
                + i * size_of::<ExtentRec>()
                + offset_of!(ExtentRec, e_int_clusters);
            self.add_fix(
                "DISCONTIG_BG_LEAF_CLUSTERS",
                Some(g),
                Some(owner),
                format!("discontiguous group {g}: record {i} claims {n} clusters, its e_cpos and the next record's say {want}"),
                Set::fix(g, at, 2, want, CheckAt::GroupDesc, "e_leaf_clusters"),
            );
        }
        Some(runs)
    }
}
