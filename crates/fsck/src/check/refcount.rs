//! Pass 3, continued: refcount trees (`refcount` volumes). An inode with
//! `OCFS2_HAS_REFCOUNT_FL` names the root of its tree in `i_refcount_loc`;
//! the root (a `REFCNT1` block) holds refcount records, or, with
//! `OCFS2_REFCOUNT_TREE_FL`, an extent list of leaf refcount blocks that
//! hold them. Records are sorted, disjoint, and inside the volume. Refcount
//! blocks come from the extent allocators, whose groups pass 2 claimed.
//! The checks and their order follow fsck.ocfs2's refcount.c.

use super::*;
use core::mem::offset_of;

use ocfs2_format::ondisk::refcount_block::{
    BLKNO as RF_BLKNO, CLUSTERS as RF_CLUSTERS, COUNT as RF_COUNT, FLAGS as RF_FLAGS,
    FS_GENERATION as RF_FS_GENERATION, LIST as RF_LIST, PARENT as RF_PARENT, RL_COUNT, RL_USED,
    TREE_FL as REFCOUNT_TREE_FL,
};

/// Bytes of a refcount record (`ocfs2_refcount_rec`).
const REC: usize = 16;

impl Checker<'_> {
    /// The refcount fields of inode `b` (pass 3).
    pub(super) fn check_inode_refcount(&mut self, ino: &Inode) {
        let b = ino.blkno;
        let has = ino.dyn_features() & dyn_features::HAS_REFCOUNT != 0;
        let loc = ino.di().i_refcount_loc.get();
        let field = |off: usize, width: u8, value: u64, name: &'static str| {
            Set::fix(b, off, width, value, CheckAt::Inode, name)
        };
        if !self.vol.features().has_incompat(incompat::REFCOUNT_TREE) {
            if has {
                self.add_fix(
                    "REFCOUNT_FLAG_INVALID",
                    Some(b),
                    None,
                    format!(
                        "inode {b} has the refcount flag, but the volume has no refcount feature"
                    ),
                    field(
                        offset_of!(Dinode, i_dyn_features),
                        2,
                        u64::from(ino.dyn_features() & !dyn_features::HAS_REFCOUNT),
                        "i_dyn_features",
                    ),
                );
            }
            return;
        }
        if !has {
            if loc != 0 {
                self.add_fix(
                    "REFCOUNT_LOC_INVALID",
                    Some(b),
                    None,
                    format!("inode {b} has no refcount flag, but i_refcount_loc {loc}"),
                    field(offset_of!(Dinode, i_refcount_loc), 8, 0, "i_refcount_loc"),
                );
            }
            return;
        }
        let valid = match self.refcount_trees.get(&loc) {
            Some(t) => t.valid,
            None => {
                let mut end = 0u64;
                let valid = self.check_rb(loc, loc, &mut end, 0);
                self.refcount_trees
                    .insert(loc, RefcountTree { valid, files: 0 });
                valid
            }
        };
        if !valid {
            // Both fields in one repair: the flag (i_dyn_features at 0x8A)
            // would be cleared first by fsck.ocfs2 too.
            // The inode loses the refcount flag, as fsck.ocfs2 clears it;
            // i_refcount_loc and the extents' flags follow on the next
            // round (REFCOUNT_LOC_INVALID, EXTENT_MARKED_REFCOUNTED).
            self.add_fix(
                "REFCOUNT_ROOT_BLOCK_INVALID",
                Some(loc.min(self.blocks())),
                Some(b),
                format!("inode {b}: its refcount tree at {loc} is not a refcount block"),
                field(
                    offset_of!(Dinode, i_dyn_features),
                    2,
                    u64::from(ino.dyn_features() & !dyn_features::HAS_REFCOUNT),
                    "i_dyn_features",
                ),
            );
            return;
        }
        if let Some(t) = self.refcount_trees.get_mut(&loc) {
            t.files += 1;
        }
    }

    /// After pass 3: each tree's `rf_count` is the inodes that share it.
    pub(super) fn check_refcount_counts(&mut self) {
        let mut trees: Vec<(u64, u32)> = self
            .refcount_trees
            .iter()
            .filter(|(_, t)| t.valid)
            .map(|(&b, t)| (b, t.files))
            .collect();
        trees.sort_unstable();
        for (root, files) in trees {
            let Ok(buf) = self.vol.read_block(root) else {
                continue;
            };
            let count = le32(&buf, RF_COUNT);
            if count != files {
                self.add_fix(
                    "REFCOUNT_COUNT",
                    Some(root),
                    None,
                    format!("refcount tree {root}: rf_count {count}, {files} inode(s) share it"),
                    Set::fix(
                        root,
                        RF_COUNT,
                        4,
                        u64::from(files),
                        CheckAt::RefcountBlock,
                        "rf_count",
                    ),
                );
            }
        }
    }

    /// After pass 3: each record's r_refcount against the refcounted
    /// extents that cover its clusters (fsck.ocfs2's REFCOUNT_COUNT_INVALID):
    /// a record whose clusters are all covered as often gets that count
    /// (none: the record goes, and its clusters are freed next round);
    /// clusters refcounted extents cover with no record get one, in their
    /// leaf while it has room. A record whose clusters are covered
    /// unevenly would need splitting: its tree is rebuilt.
    pub(super) fn check_refcount_records(&mut self) {
        let mut roots: Vec<u64> = self
            .refcount_trees
            .iter()
            .filter(|(_, t)| t.valid)
            .map(|(&b, _)| b)
            .collect();
        roots.sort_unstable();
        for root in roots {
            let uses = self.refcount_use.remove(&root).unwrap_or_default();
            let Some((recs, leaves)) = self.refcount_records(root) else {
                continue;
            };
            let mut covered = HashSet::new();
            for &(blkno, i, cpos, n, count) in &recs {
                let counts: HashSet<u32> = (cpos..cpos + n)
                    .map(|c| uses.get(&c).copied().unwrap_or(0))
                    .collect();
                covered.extend(cpos..cpos + n);
                if counts.len() == 1 && !counts.contains(&count) {
                    let want = *counts.iter().next().expect("one");
                    let fix = if want == 0 {
                        Fix::DropRefcount {
                            blkno,
                            index: i as u16,
                        }
                    } else {
                        Set::fix(
                            blkno,
                            RF_LIST + 16 + i * REC + 12,
                            4,
                            u64::from(want),
                            CheckAt::RefcountBlock,
                            "r_refcount",
                        )
                    };
                    self.add_fix(
                        "REFCOUNT_COUNT_INVALID",
                        Some(blkno),
                        Some(root),
                        format!("refcount tree {root}: clusters {cpos}+{n} have refcount {count}, {want} extent(s) point at them"),
                        fix,
                    );
                } else if counts.len() > 1 {
                    // The record would need splitting: the tree is rebuilt
                    // from what the inodes share, after every other repair.
                    self.add_fix(
                        "REFCOUNT_COUNT_INVALID",
                        Some(blkno),
                        Some(root),
                        format!("refcount tree {root}: clusters {cpos}+{n} have refcount {count}, but not every one is shared as often"),
                        Fix::RebuildRefcount(root),
                    );
                }
            }
            // Runs of clusters with the same count and no record.
            let mut runs: Vec<(u64, u64, u32)> = Vec::new();
            for (&c, &k) in uses.iter().filter(|(c, _)| !covered.contains(*c)) {
                match runs.last_mut() {
                    Some((s, n, kk)) if *s + *n == c && *kk == k => *n += 1,
                    _ => runs.push((c, 1, k)),
                }
            }
            // Records go in as long as their leaf has room, not into a leaf
            // a record removal of this round changes (the next round does).
            let mut added: HashMap<u64, usize> = HashMap::new();
            let dropping: HashSet<u64> = self
                .findings
                .iter()
                .filter_map(|f| match f.fix {
                    Some(Fix::DropRefcount { blkno, .. }) => Some(blkno),
                    _ => None,
                })
                .collect();
            // A tree whose leaves are all gone holds its records in its
            // root again first (the next round puts them there).
            let untree = leaves.is_empty().then_some(Fix::UntreeRefcount(root));
            for (cpos, n, k) in runs {
                let fix = self
                    .refcount_leaf_for(cpos, &leaves, &recs)
                    .filter(|&(blkno, _)| {
                        let &(_, _, used, count) =
                            leaves.iter().find(|l| l.0 == blkno).expect("a leaf");
                        let a = added.entry(blkno).or_default();
                        let ok = !dropping.contains(&blkno) && used + *a < count;
                        *a += usize::from(ok);
                        ok
                    })
                    .map(|(blkno, index)| Fix::InsertRefcount {
                        blkno,
                        index: index as u16,
                        cpos,
                        clusters: n as u32,
                        count: k,
                    })
                    .or(untree)
                    // No leaf has room: the tree is rebuilt, with new
                    // leaves as it needs them.
                    .or(Some(Fix::RebuildRefcount(root)));
                let f = Finding::new(
                    "REFCOUNT_COUNT_INVALID",
                    Some(root),
                    Some(root),
                    format!("refcount tree {root}: clusters {cpos}+{n} have no refcount record, {k} extent(s) point at them"),
                );
                self.findings.push(Finding { fix, ..f });
            }
        }
    }

    /// The records of tree `root` (block, index, cpos, clusters, count) and
    /// its leaves (block, first cpos, rl_used, rl_count); the root is its
    /// own leaf when it holds records. None when a block cannot be read.
    #[allow(clippy::type_complexity)]
    fn refcount_records(
        &self,
        root: u64,
    ) -> Option<(
        Vec<(u64, usize, u64, u64, u32)>,
        Vec<(u64, u64, usize, usize)>,
    )> {
        let buf = self.vol.read_block(root).ok()?;
        let mut leaves = Vec::new();
        if le32(&buf, RF_FLAGS) & REFCOUNT_TREE_FL != 0 {
            let (el, recs) = parse_extent_list(root, &buf[RF_LIST..], "refcount tree").ok()?;
            let mut level: Vec<(u16, Vec<ExtentRec>)> = vec![(el.l_tree_depth.get(), recs)];
            while let Some((depth, recs)) = level.pop() {
                for r in recs {
                    if depth == 0 {
                        leaves.push((r.e_blkno.get(), u64::from(r.e_cpos.get())));
                        continue;
                    }
                    let b = self.vol.read_block(r.e_blkno.get()).ok()?;
                    let off = super::pass3::ListAt::extent_block(0).off;
                    let (sub, sub_recs) =
                        parse_extent_list(r.e_blkno.get(), &b[off..], "refcount tree").ok()?;
                    if sub.l_tree_depth.get() + 1 != depth || leaves.len() > 100_000 {
                        return None;
                    }
                    level.push((depth - 1, sub_recs));
                }
            }
            leaves.sort_by_key(|l| l.1);
        } else {
            leaves.push((root, 0));
        }
        let mut out = Vec::new();
        let mut shape = Vec::new();
        for (blkno, first) in leaves {
            let b = self.vol.read_block(blkno).ok()?;
            let used = usize::from(le16(&b, RL_USED));
            let count = usize::from(le16(&b, RL_COUNT));
            if used > count || RF_LIST + 16 + used * REC > b.len() {
                return None;
            }
            for i in 0..used {
                let r = &b[RF_LIST + 16 + i * REC..][..REC];
                out.push((blkno, i, le64(r, 0), u64::from(le32(r, 8)), le32(r, 12)));
            }
            shape.push((blkno, first, used, count));
        }
        Some((out, shape))
    }

    /// Where a record for `cpos` goes: the leaf whose range starts at or
    /// before it (the last such), and the index that keeps its records
    /// sorted (the caller checks its room).
    fn refcount_leaf_for(
        &self,
        cpos: u64,
        leaves: &[(u64, u64, usize, usize)],
        recs: &[(u64, usize, u64, u64, u32)],
    ) -> Option<(u64, usize)> {
        let &(blkno, ..) = leaves
            .iter()
            .filter(|l| l.1 <= cpos)
            .max_by_key(|l| l.1)
            .or(leaves.first())?;
        let index = recs.iter().filter(|r| r.0 == blkno && r.2 < cpos).count();
        Some((blkno, index))
    }

    /// The records of a tree's extent list (`list`, of depth `depth`): at
    /// depth 0 each names a leaf refcount block, above it an extent block
    /// whose list is one level lower. Adds the clusters the leaves cover.
    #[allow(clippy::too_many_arguments)]
    fn refcount_list(
        &mut self,
        root: u64,
        list: super::pass3::ListAt,
        depth: u16,
        recs: &[ExtentRec],
        end: &mut u64,
        level: u32,
        clusters: &mut u64,
    ) {
        for (i, r) in recs.iter().enumerate() {
            let n = u64::from(r.clusters(depth));
            let blk = r.e_blkno.get();
            if depth > 0 {
                let sub = (level < 8 && blk < self.blocks())
                    .then(|| self.meta(blk, CheckAt::ExtentBlock, Some(root)))
                    .flatten()
                    .filter(|b| b.starts_with(EXTENT_BLOCK_SIGNATURE));
                let here = super::pass3::ListAt::extent_block(blk);
                match sub.and_then(|b| parse_extent_list(blk, &b[here.off..], "refcount tree").ok()) {
                    Some((el, sub_recs)) if el.l_tree_depth.get() + 1 == depth => {
                        self.refcount_list(root, here, depth - 1, &sub_recs, end, level + 1, clusters);
                    }
                    _ => self.add_fix(
                        "REFCOUNT_BLOCK_INVALID",
                        Some(blk),
                        Some(root),
                        format!("refcount tree {root}: record {i} of block {} points at {blk}, not an extent block of depth {}", list.blkno, depth - 1),
                        list.drop(i),
                    ),
                }
                continue;
            }
            if !self.check_rb(blk, root, end, level + 1) {
                self.add_fix(
                    "REFCOUNT_BLOCK_INVALID",
                    Some(blk),
                    Some(root),
                    format!("refcount tree {root}: record {i} of block {} points at {blk}, not a refcount block", list.blkno),
                    list.drop(i),
                );
                continue;
            }
            // An empty leaf comes off the tree (fsck.ocfs2's repair);
            // the clusters it covered leave rf_clusters with it.
            if let Some(f) = self
                .findings
                .last_mut()
                .filter(|f| f.code == "REFCOUNT_LIST_EMPTY" && f.blkno == Some(blk))
            {
                f.fix = Some(list.drop(i));
                continue;
            }
            *clusters += n;
        }
    }

    /// Check refcount block `blkno` of the tree rooted at `root`; `end` is
    /// where the records before it end (in clusters). Returns whether the
    /// block is a refcount block at all.
    fn check_rb(&mut self, blkno: u64, root: u64, end: &mut u64, level: u32) -> bool {
        if blkno < SUPER_BLOCK_BLKNO || blkno >= self.blocks() || level > 8 {
            return false;
        }
        let Some(buf) = self.meta(blkno, CheckAt::RefcountBlock, Some(root)) else {
            return false;
        };
        if !buf.starts_with(REFCOUNT_BLOCK_SIGNATURE) {
            return false;
        }
        let set = |off: usize, width: u8, value: u64, name: &'static str| {
            Set::fix(blkno, off, width, value, CheckAt::RefcountBlock, name)
        };
        if le64(&buf, RF_BLKNO) != blkno {
            self.add_fix(
                "RB_BLKNO",
                Some(blkno),
                Some(root),
                format!(
                    "refcount block at {blkno} (tree {root}) says rf_blkno {}",
                    le64(&buf, RF_BLKNO)
                ),
                set(RF_BLKNO, 8, blkno, "rf_blkno"),
            );
        }
        if le32(&buf, RF_FS_GENERATION) != self.generation {
            self.add_fix(
                "RB_GEN",
                Some(blkno),
                Some(root),
                format!(
                    "refcount block {blkno} (tree {root}): generation {:#x}, volume {:#x}",
                    le32(&buf, RF_FS_GENERATION),
                    self.generation
                ),
                set(
                    RF_FS_GENERATION,
                    4,
                    u64::from(self.generation),
                    "rf_fs_generation",
                ),
            );
        }
        if le64(&buf, RF_BLKNO) != root && blkno != root && le64(&buf, RF_PARENT) != root {
            self.add_fix(
                "RB_PARENT",
                Some(blkno),
                Some(root),
                format!(
                    "refcount block {blkno} says tree {}, found in tree {root}",
                    le64(&buf, RF_PARENT)
                ),
                set(RF_PARENT, 8, root, "rf_parent"),
            );
        }
        let bs = self.bs as usize;
        let max = (bs - RF_LIST - 16) / REC;
        if le32(&buf, RF_FLAGS) & REFCOUNT_TREE_FL != 0 {
            // An extent list of leaf refcount blocks.
            let Ok((el, recs)) = parse_extent_list(blkno, &buf[RF_LIST..], "refcount tree") else {
                self.add(
                    "REFCOUNT_LIST_COUNT",
                    Some(blkno),
                    Some(root),
                    format!(
                        "refcount tree {root}: block {blkno}'s extent list does not fit its block"
                    ),
                );
                return true;
            };
            let list = super::pass3::ListAt {
                blkno,
                off: RF_LIST,
                at: CheckAt::RefcountBlock,
            };
            let mut clusters = 0u64;
            self.refcount_list(
                root,
                list,
                el.l_tree_depth.get(),
                &recs,
                end,
                level,
                &mut clusters,
            );
            if clusters != u64::from(le32(&buf, RF_CLUSTERS)) {
                self.add_fix(
                    "REFCOUNT_CLUSTERS",
                    Some(blkno),
                    Some(root),
                    format!(
                        "refcount tree {root}: rf_clusters {}, its leaves cover {clusters}",
                        le32(&buf, RF_CLUSTERS)
                    ),
                    set(RF_CLUSTERS, 4, clusters, "rf_clusters"),
                );
            }
            return true;
        }
        let count = usize::from(le16(&buf, RL_COUNT));
        if count > max {
            self.add_fix(
                "REFCOUNT_LIST_COUNT",
                Some(blkno),
                Some(root),
                format!("refcount tree {root}: block {blkno} says rl_count {count}, a block holds {max}"),
                set(RL_COUNT, 2, max as u64, "rl_count"),
            );
        }
        let limit = count.min(max);
        let used = usize::from(le16(&buf, RL_USED));
        if used > limit {
            self.add_fix(
                "REFCOUNT_LIST_USED",
                Some(blkno),
                Some(root),
                format!("refcount tree {root}: block {blkno} says rl_used {used}, at most {limit}"),
                set(RL_USED, 2, limit as u64, "rl_used"),
            );
            // Records past the count are not trusted.
            return true;
        }
        let recs = &buf[RF_LIST + 16..];
        for i in 0..used {
            let r = &recs[i * REC..(i + 1) * REC];
            let (cpos, n) = (le64(r, 0), u64::from(le32(r, 8)));
            let last = cpos.saturating_add(n).saturating_sub(1);
            let drop = Fix::DropRefcount {
                blkno,
                index: i as u16,
            };
            if last.saturating_mul(self.bpc) >= self.blocks() {
                self.add_fix(
                    "REFCOUNT_CLUSTER_RANGE",
                    Some(blkno),
                    Some(root),
                    format!("refcount tree {root}: record {i} of block {blkno} ({cpos}+{n}) lies outside the volume"),
                    drop,
                );
                continue;
            }
            if cpos < *end {
                self.add_fix(
                    "REFCOUNT_CLUSTER_COLLISION",
                    Some(blkno),
                    Some(root),
                    format!("refcount tree {root}: record {i} of block {blkno} starts at {cpos}, before the previous one ends ({})", *end),
                    drop,
                );
                continue;
            }
            *end = cpos + n;
        }
        if blkno != root && used == 0 {
            self.add(
                "REFCOUNT_LIST_EMPTY",
                Some(blkno),
                Some(root),
                format!("refcount tree {root}: leaf block {blkno} holds no record"),
            );
        }
        true
    }
}

/// One refcount tree met in pass 3.
#[derive(Debug, Clone, Copy)]
pub(super) struct RefcountTree {
    pub valid: bool,
    /// Inodes that name it.
    pub files: u32,
}
