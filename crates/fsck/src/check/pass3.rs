//! Pass 3: every allocated inode and its extent tree (fills `used` and `inodes`).

use super::*;
use core::mem::{offset_of, size_of};

impl Checker<'_> {
    pub(super) fn pass3(&mut self) {
        let mut blknos: Vec<(u64, (u16, u16, u64))> =
            self.alloc_inodes.iter().map(|(&b, &s)| (b, s)).collect();
        blknos.sort_unstable();
        for (b, (slot, bit, group)) in blknos {
            let buf = match self.meta(b, CheckAt::Inode, Some(b)) {
                Some(x) => x,
                None => continue,
            };
            // The allocator bit of this block.
            let free_bit = Fix::FreeBit { group, bit };
            if !buf.starts_with(INODE_SIGNATURE) {
                self.add_fix(
                    "INODE_NOT_INODE",
                    Some(b),
                    None,
                    format!(
                        "inode allocator bit for block {b} is set, but the block holds no inode"
                    ),
                    free_bit,
                );
                continue;
            }
            let ino = Inode { blkno: b, buf };
            let di = *ino.di();
            if di.i_flags.get() & inode_flags::VALID == 0 {
                self.add_fix(
                    "INODE_ALLOC_REPAIR",
                    Some(b),
                    None,
                    format!("inode {b} is allocated but not marked valid"),
                    free_bit,
                );
                continue;
            }
            if di.i_blkno.get() != b {
                self.add_fix(
                    "INODE_BLKNO",
                    Some(b),
                    None,
                    format!("inode at {b} says i_blkno {}", di.i_blkno.get()),
                    inode_field(b, offset_of!(Dinode, i_blkno), 8, b, "i_blkno"),
                );
            }
            if di.i_fs_generation.get() != self.generation {
                self.add_fix(
                    "INODE_GEN",
                    Some(b),
                    None,
                    format!(
                        "inode {b} fs generation {:#x}, volume {:#x}",
                        di.i_fs_generation.get(),
                        self.generation
                    ),
                    inode_field(
                        b,
                        offset_of!(Dinode, i_fs_generation),
                        4,
                        u64::from(self.generation),
                        "i_fs_generation",
                    ),
                );
            }
            if di.i_suballoc_bit.get() != bit || di.i_suballoc_slot.get() != slot {
                // i_suballoc_slot and i_suballoc_bit are adjacent (le16 each).
                const _: () = assert!(
                    offset_of!(Dinode, i_suballoc_bit) == offset_of!(Dinode, i_suballoc_slot) + 2
                );
                self.add_fix(
                    "INODE_SUBALLOC",
                    Some(b),
                    None,
                    format!(
                        "inode {b} says slot {} bit {}, allocated at slot {slot} bit {bit}",
                        di.i_suballoc_slot.get(),
                        di.i_suballoc_bit.get()
                    ),
                    inode_field(
                        b,
                        offset_of!(Dinode, i_suballoc_slot),
                        4,
                        u64::from(slot) | u64::from(bit) << 16,
                        "i_suballoc_slot and i_suballoc_bit",
                    ),
                );
            }
            let mode = di.i_mode.get();
            let is_system = di.i_flags.get() & inode_flags::SYSTEM != 0;
            if ft_of_mode(mode) == file_type::UNKNOWN
                && !(is_system && di.i_flags.get() & inode_flags::SUPER_BLOCK != 0)
            {
                self.add(
                    "INODE_MODE",
                    Some(b),
                    None,
                    format!("inode {b} mode {mode:o} has no file type"),
                );
            }
            if di.i_dtime.get() != 0 {
                self.add_fix(
                    "INODE_NZ_DTIME",
                    Some(b),
                    None,
                    format!("inode {b} is in use but has dtime {}", di.i_dtime.get()),
                    inode_field(b, offset_of!(Dinode, i_dtime), 8, 0, "i_dtime"),
                );
            }
            self.inodes.insert(
                b,
                InodeInfo {
                    mode,
                    links: di.links(),
                    system: is_system,
                    ..Default::default()
                },
            );
            let mut ino = ino;
            if self.strip_invalid_inline(&mut ino) {
                // fsck.ocfs2 clears the flag: on a volume without the
                // feature, id2 is the extent list it always was. The rest
                // of this check reads the inode so already; the repair is
                // a round of its own.
                self.add_fix(
                    "INLINE_DATA_FLAG_INVALID",
                    Some(b),
                    None,
                    format!("inode {b} has the inline-data flag, but the volume has no inline-data feature"),
                    Fix::ClearInlineFlag(b),
                );
            }
            self.walk_refcount_root = (ino.dyn_features() & dyn_features::HAS_REFCOUNT != 0
                && self.vol.features().has_incompat(incompat::REFCOUNT_TREE))
            .then(|| di.i_refcount_loc.get());
            self.check_inode_space(&ino);
            if ino.dyn_features() & dyn_features::HAS_XATTR != 0 {
                self.check_xattrs(&ino);
            }
            self.walk_refcount_root = None;
            self.check_inode_refcount(&ino);
            if mode & 0o170000 == 0o120000 {
                self.check_symlink(&ino);
            }
        }
        self.check_refcount_counts();
        self.check_refcount_records();
        self.find_unmarked_inodes();
    }

    /// Valid inodes in blocks whose allocator bit is clear (a damaged
    /// bitmap: the kernel clears an inode's valid flag before its bit),
    /// as fsck.ocfs2's inode scan finds them: the bit is set again, and the
    /// next round checks the inode and reconnects it if no entry names it.
    fn find_unmarked_inodes(&mut self) {
        let candidates = std::mem::take(&mut self.free_inode_blocks);
        for (b, (slot, bit, group), alloc) in candidates {
            let Ok(buf) = self.vol.read_block(b) else {
                continue;
            };
            let Ok((di, _)) = Dinode::read_from_prefix(&buf) else {
                continue;
            };
            let ours = buf.starts_with(INODE_SIGNATURE)
                && di.i_flags.get() & inode_flags::VALID != 0
                && di.i_fs_generation.get() == self.generation
                && di.i_blkno.get() == b
                && di.i_suballoc_bit.get() == bit
                && di.i_suballoc_slot.get() == slot
                && di.i_dtime.get() == 0;
            if !ours {
                continue;
            }
            self.restored.insert(b);
            self.add_fix(
                "INODE_ALLOC_BITS",
                Some(b),
                None,
                format!(
                    "inode {b} is valid, but its allocator bit (group {group} bit {bit}) is clear"
                ),
                Fix::TakeBit { alloc, group, bit },
            );
        }
    }

    /// A symlink's target: NUL-terminated, `i_size` its length, and (for a
    /// slow symlink) blocks enough to hold it. A fast symlink (`i_clusters`
    /// 0) keeps it in the inode after `id2`'s offset; a slow one in its
    /// first mapped blocks.
    pub(super) fn check_symlink(&mut self, ino: &Inode) {
        // PATH_MAX: a target is never longer; a damaged slow symlink is not
        // read past it.
        const PATH_MAX: usize = 4096;
        let b = ino.blkno;
        let di = *ino.di();
        let bs = self.bs as usize;
        // Where a NUL ends a target of i_size bytes: (block, byte, whether
        // the block is the inode's).
        let size = di.i_size.get();
        let mut end_at: Option<(u64, usize, bool)> = None;
        let (len, nul, blocks) = if di.i_clusters.get() == 0 {
            let area = ino.id2();
            let nul = area.iter().position(|&c| c == 0);
            if size > 0 && size < area.len() as u64 {
                end_at = Some((b, DINODE_ID2 + size as usize, true));
            }
            (nul.unwrap_or(area.len()), nul.is_some(), 0u64)
        } else {
            // A tree that cannot be read is the walk's to report.
            let Ok(ext) = self.vol.extents(ino) else {
                return;
            };
            let blocks: u64 = ext.iter().map(|e| u64::from(e.clusters) * self.bpc).sum();
            let (mut len, mut nul) = (0usize, false);
            for l in 0..blocks.min(PATH_MAX.div_ceil(bs) as u64) {
                let Some(data) = self
                    .vol
                    .map_block(&ext, l)
                    .and_then(|p| self.vol.read_block(p).ok())
                else {
                    break;
                };
                match data.iter().position(|&c| c == 0) {
                    Some(i) => {
                        len += i;
                        nul = true;
                        break;
                    }
                    None => len += bs,
                }
            }
            if size > 0 && size < (blocks * self.bs).min(PATH_MAX as u64) {
                end_at = self
                    .vol
                    .map_block(&ext, size / self.bs)
                    .map(|p| (p, (size % self.bs) as usize, false));
            }
            (len, nul, blocks)
        };
        if !nul {
            // The target is taken to be its i_size bytes and ended there
            // (fsck.ocfs2 clears the inode instead) when that leaves room
            // for the NUL.
            // Otherwise the inode is cleared, as fsck.ocfs2 clears it.
            let clear = self.clear_inode_fix(b);
            let fix = end_at
                .map(|(blkno, off, inode)| Fix::EndTarget {
                    blkno,
                    off: off as u16,
                    inode,
                })
                .or(clear);
            let f = Finding::new(
                "LINK_NULLTERM",
                Some(b),
                None,
                format!("symlink {b}: its target is not NUL-terminated"),
            );
            self.findings.push(Finding { fix, ..f });
            return;
        }
        if di.i_size.get() != len as u64 {
            self.add_fix(
                "LINK_SIZE",
                Some(b),
                None,
                format!(
                    "symlink {b}: its target is {len} bytes, i_size says {}",
                    di.i_size.get()
                ),
                inode_field(b, offset_of!(Dinode, i_size), 8, len as u64, "i_size"),
            );
        }
        let needed = ((len + 1).div_ceil(bs)) as u64;
        if di.i_clusters.get() != 0 && blocks < needed {
            // Cleared, as fsck.ocfs2 clears it.
            let f = Finding::new(
                "LINK_BLOCKS",
                Some(b),
                None,
                format!("symlink {b}: its target needs {needed} block(s), {blocks} are allocated"),
            );
            self.findings.push(Finding {
                fix: self.clear_inode_fix(b),
                ..f
            });
        }
    }

    /// Clearing inode `b` (fsck.ocfs2's "clear the inode"), when its
    /// allocator bit is known.
    fn clear_inode_fix(&self, b: u64) -> Option<Fix> {
        self.alloc_inodes
            .get(&b)
            .map(|&(_, bit, group)| Fix::ClearInode {
                inode: b,
                group,
                bit,
            })
    }

    pub(super) fn check_inode_space(&mut self, ino: &Inode) {
        let b = ino.blkno;
        let di = *ino.di();
        let bs = self.bs as usize;
        if ino.is_inline() {
            let id_count = u16::from_le_bytes([ino.buf[DINODE_ID2], ino.buf[DINODE_ID2 + 1]]);
            // The inline area: what follows id2's 8-byte header, less the
            // inline xattrs at the block's end (the kernel's and
            // fsck.ocfs2's ocfs2_max_inline_data_with_xattr).
            let xattrs = if ino.dyn_features() & dyn_features::INLINE_XATTR != 0 {
                usize::from(di.i_xattr_inline_size.get())
            } else {
                0
            };
            let max = max_inline_data(bs).saturating_sub(xattrs);
            if usize::from(id_count) != max {
                self.add_fix(
                    "INLINE_DATA_COUNT_INVALID",
                    Some(b),
                    None,
                    format!("inline inode {b}: id_count {id_count}, its inline area holds {max}"),
                    inode_field(b, DINODE_ID2, 2, max as u64, "id_count"),
                );
            }
            if di.i_size.get() > max as u64 {
                self.add_fix(
                    "INODE_INLINE_SIZE",
                    Some(b),
                    None,
                    format!(
                        "inline inode {b}: i_size {} is larger than its inline area ({max})",
                        di.i_size.get()
                    ),
                    inode_field(
                        b,
                        offset_of!(Dinode, i_size),
                        8,
                        max as u64,
                        "i_size (the inline area's size)",
                    ),
                );
            }
            if di.i_clusters.get() != 0 {
                self.add_fix(
                    "INODE_INLINE_CLUSTERS",
                    Some(b),
                    None,
                    format!("inline inode {b} owns {} clusters", di.i_clusters.get()),
                    inode_field(b, offset_of!(Dinode, i_clusters), 4, 0, "i_clusters"),
                );
            }
            return;
        }
        if !ino.has_extent_list() {
            return;
        }
        let (el, recs) = match ino.extent_list() {
            Ok(x) => x,
            Err(e) => {
                // extent_list() refuses l_count beyond the block first, then
                // l_next_free_rec beyond l_count.
                let root = ListAt::inode(b);
                let (code, fix) = match ExtentList::read_from_prefix(ino.id2()) {
                    Ok((el, raw)) if usize::from(el.l_count.get()) <= extent_recs_per_inode(bs) => {
                        let filled =
                            super::pass2::filled_records(raw, usize::from(el.l_count.get()));
                        (
                            "EXTENT_LIST_FREE",
                            root.field(
                                offset_of!(ExtentList, l_next_free_rec),
                                filled as u64,
                                "l_next_free_rec",
                            ),
                        )
                    }
                    _ => (
                        "EXTENT_LIST_COUNT",
                        root.field(
                            offset_of!(ExtentList, l_count),
                            extent_recs_per_inode(bs) as u64,
                            "l_count",
                        ),
                    ),
                };
                self.add_fix(code, Some(b), None, format!("inode {b}: {e}"), fix);
                return;
            }
        };
        if usize::from(el.l_count.get()) != extent_recs_per_inode(bs) {
            self.add_fix(
                "EXTENT_LIST_COUNT",
                Some(b),
                None,
                format!(
                    "inode {b}: l_count {} (expected {})",
                    el.l_count.get(),
                    extent_recs_per_inode(bs)
                ),
                ListAt::inode(b).field(
                    offset_of!(ExtentList, l_count),
                    extent_recs_per_inode(bs) as u64,
                    "l_count",
                ),
            );
        }
        let mut total = 0u64;
        let mut max_end = 0u64;
        let mut seen = HashSet::new();
        self.last_eb = (0, 0);
        self.no_holes = ino.is_dir();
        let before = self.findings.len();
        self.walk(
            b,
            ListAt::inode(b),
            el.l_tree_depth.get(),
            &recs,
            &mut total,
            &mut max_end,
            &mut seen,
            0,
        );
        // i_last_eb_blk names the rightmost leaf extent block (0 for a
        // tree of depth 0), as libocfs2 keeps it; only a tree walked
        // without damage tells which that is.
        if self.findings.len() == before && di.i_last_eb_blk.get() != self.last_eb.1 {
            self.add_fix(
                "EXTENT_LAST_EB",
                Some(b),
                None,
                format!(
                    "inode {b}: i_last_eb_blk {}, its rightmost leaf extent block is {}",
                    di.i_last_eb_blk.get(),
                    self.last_eb.1
                ),
                inode_field(
                    b,
                    offset_of!(Dinode, i_last_eb_blk),
                    8,
                    self.last_eb.1,
                    "i_last_eb_blk",
                ),
            );
        }
        if u64::from(di.i_clusters.get()) != total {
            self.add_fix(
                "INODE_CLUSTERS",
                Some(b),
                None,
                format!(
                    "inode {b}: i_clusters {} but its extents hold {total}",
                    di.i_clusters.get()
                ),
                inode_field(b, offset_of!(Dinode, i_clusters), 4, total, "i_clusters"),
            );
        }
        let cap = max_end << self.cs_bits;
        let is_dir = ino.is_dir();
        // fsck.ocfs2's rule on sparse volumes: a file (not a directory or
        // symlink) whose size ends a whole cluster or more before its last
        // mapped cluster.
        let is_link = di.i_mode.get() & 0o170000 == 0o120000;
        if self.vol.features().has_incompat(incompat::SPARSE_ALLOC)
            && !is_dir
            && !is_link
            && max_end > 0
            && di.i_size.get() <= cap - (1u64 << self.cs_bits)
        {
            self.add_fix(
                "INODE_SPARSE_SIZE",
                Some(b),
                None,
                format!(
                    "inode {b}: i_size {} but its extents map up to byte {cap}",
                    di.i_size.get()
                ),
                inode_field(b, offset_of!(Dinode, i_size), 8, cap, "i_size"),
            );
        }
        if !is_dir
            && di.i_size.get() > cap
            && !self.vol.features().has_incompat(incompat::SPARSE_ALLOC)
        {
            self.add_fix(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "inode {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
                inode_field(b, offset_of!(Dinode, i_size), 8, cap, "i_size"),
            );
        }
        if is_dir && di.i_size.get() > cap {
            self.add_fix(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "directory {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
                inode_field(b, offset_of!(Dinode, i_size), 8, cap, "i_size"),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn walk(
        &mut self,
        owner: u64,
        list: ListAt,
        depth: u16,
        recs: &[ExtentRec],
        total: &mut u64,
        max_end: &mut u64,
        seen: &mut HashSet<u64>,
        level: u32,
    ) {
        if level > 16 {
            self.add(
                "EXTENT_LIST_DEPTH",
                Some(owner),
                None,
                "extent tree deeper than 16 levels".into(),
            );
            return;
        }
        for (i, r) in recs.iter().enumerate() {
            let mut cpos = u64::from(r.e_cpos.get());
            let n = u64::from(r.clusters(depth));
            let blk = r.e_blkno.get();
            if depth == 0 && n == 0 {
                continue;
            }
            // The tree is walked in order: `max_end` is where the records
            // before this one end (fsck.ocfs2's running offset). A record
            // starting before it is moved there, as fsck.ocfs2 moves it; so
            // is a directory's record that leaves a hole (directories have
            // none). What follows is judged as the repair leaves it.
            let offset = *max_end;
            if self.no_holes && cpos != offset {
                self.add_fix(
                    "NO_HOLES",
                    Some(owner),
                    None,
                    format!("directory {owner}: record {i} starts at cluster {cpos}, the records before it end at {offset}"),
                    list.rec_field(i, 0, 4, offset, "e_cpos"),
                );
                cpos = offset;
            } else if cpos < offset && !self.hash_keyed {
                self.add_fix(
                    "EXTENT_OVERLAP",
                    Some(owner),
                    None,
                    format!(
                        "record {i} at cpos {cpos} overlaps the records before it, which end at {offset}"
                    ),
                    list.rec_field(i, 0, 4, offset, "e_cpos"),
                );
                cpos = offset;
            }
            if depth == 0 {
                let f = self.vol.features();
                // Flags the volume cannot have are cleared one at a time
                // (one field, one fix per round).
                let clear =
                    |flag: u8| list.rec_field(i, 7, 1, u64::from(r.flags() & !flag), "e_flags");
                if r.flags() & EXT_UNWRITTEN != 0 && f.ro_compat & ro_compat::UNWRITTEN == 0 {
                    self.add_fix(
                        "EXTENT_MARKED_UNWRITTEN",
                        Some(owner),
                        None,
                        format!("record {i} is marked unwritten, but the volume has no unwritten feature"),
                        clear(EXT_UNWRITTEN),
                    );
                } else if r.flags() & EXT_REFCOUNTED != 0
                    && !f.has_incompat(incompat::REFCOUNT_TREE)
                {
                    self.add_fix(
                        "EXTENT_MARKED_REFCOUNTED",
                        Some(owner),
                        None,
                        format!("record {i} is marked refcounted, but the volume has no refcount feature"),
                        clear(EXT_REFCOUNTED),
                    );
                } else if r.flags() & EXT_REFCOUNTED != 0
                    && self.walk_refcount_root.is_none()
                    && list.at != CheckAt::DxBlock
                {
                    // A file without a refcount tree shares nothing: the
                    // flag goes (fsck.ocfs2 clears it too); clusters another
                    // file also claims are then cloned (DUP_CLUSTERS).
                    self.add_fix(
                        "EXTENT_MARKED_REFCOUNTED",
                        Some(owner),
                        None,
                        format!("record {i} is marked refcounted, but inode {owner} has no refcount tree"),
                        clear(EXT_REFCOUNTED),
                    );
                }
                // Moved back to the start of its cluster, as fsck.ocfs2
                // moves it (the record then maps that cluster whole); what
                // follows judges the record as the repair leaves it.
                let blk = if blk % self.bpc != 0 {
                    let start = blk - blk % self.bpc;
                    self.add_fix(
                        "EXTENT_BLKNO_UNALIGNED",
                        Some(owner),
                        None,
                        format!("record {i}: block {blk} is not a cluster start"),
                        list.rec_field(i, offset_of!(ExtentRec, e_blkno), 8, start, "e_blkno"),
                    );
                    start
                } else {
                    blk
                };
                if blk < SUPER_BLOCK_BLKNO
                    || blk
                        .checked_add(n * self.bpc)
                        .is_none_or(|e| e > self.clusters * self.bpc)
                {
                    self.add_fix(
                        "EXTENT_BLKNO_RANGE",
                        Some(owner),
                        None,
                        format!(
                            "record {i}: blocks {blk}+{} run outside the volume",
                            n * self.bpc
                        ),
                        list.drop(i),
                    );
                    continue;
                }
                *total += n;
                *max_end = (*max_end).max(cpos + n);
                let refcounted = r.flags() & EXT_REFCOUNTED != 0
                    && f.has_incompat(incompat::REFCOUNT_TREE)
                    && self.walk_refcount_root.is_some();
                if let (true, Some(root)) = (refcounted, self.walk_refcount_root) {
                    let uses = self.refcount_use.entry(root).or_default();
                    let first = blk / self.bpc;
                    for c in first..first + n {
                        *uses.entry(c).or_default() += 1;
                    }
                }
                if let Some(runs) = &mut self.leaf_runs {
                    runs.push((blk, n));
                }
                let before = self.findings.len();
                let dups = self.claim_as(blk, n * self.bpc, owner, refcounted);
                // The record that claims clusters another owner claimed
                // first gets copies of them (fsck.ocfs2's clone); a system
                // file's record is left (the other owner's would be the
                // one to clone, and its record is not at hand).
                let system = self.inodes.get(&owner).is_none_or(|i| i.system);
                if dups > 0 && !system {
                    let fix = Fix::CloneExtent {
                        blkno: list.blkno,
                        list: list.off as u16,
                        index: i as u16,
                        at: list.at,
                        from: blk,
                        clusters: n as u32,
                    };
                    if self.findings.len() == before {
                        self.add(
                            "DUP_CLUSTERS",
                            Some(blk),
                            Some(owner),
                            format!("record {i}: {dups} of its clusters are claimed already"),
                        );
                    }
                    for f in &mut self.findings[before..] {
                        f.fix = Some(fix);
                    }
                }
                continue;
            }
            if depth == 1 && n != 0 && cpos >= self.last_eb.0 {
                self.last_eb = (cpos, blk);
            }
            if blk == 0 || blk >= self.blocks() {
                self.add_fix(
                    "EXTENT_BLKNO_RANGE",
                    Some(owner),
                    None,
                    format!("record {i}: extent block {blk} is outside the volume"),
                    list.drop(i),
                );
                continue;
            }
            if !seen.insert(blk) {
                self.add_fix(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} appears twice in one tree"),
                    list.drop(i),
                );
                continue;
            }
            let Some(eb) = self.meta(blk, CheckAt::ExtentBlock, Some(owner)) else {
                continue;
            };
            if !eb.starts_with(EXTENT_BLOCK_SIGNATURE) {
                self.add_fix(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("record {i} points at block {blk}, not an extent block"),
                    list.drop(i),
                );
                continue;
            }
            let hdr = ExtentBlock::read_from_prefix(&eb)
                .expect("block >= 64 bytes")
                .0;
            if hdr.h_blkno.get() != blk {
                self.add_fix(
                    "EB_BLKNO",
                    Some(blk),
                    Some(owner),
                    format!("extent block at {blk} says h_blkno {}", hdr.h_blkno.get()),
                    Set::fix(
                        blk,
                        offset_of!(ExtentBlock, h_blkno),
                        8,
                        blk,
                        CheckAt::ExtentBlock,
                        "h_blkno",
                    ),
                );
            }
            if hdr.h_fs_generation.get() != self.generation {
                self.add_fix(
                    "EB_GEN",
                    Some(blk),
                    Some(owner),
                    format!(
                        "extent block {blk} generation {:#x}",
                        hdr.h_fs_generation.get()
                    ),
                    Set::fix(
                        blk,
                        offset_of!(ExtentBlock, h_fs_generation),
                        4,
                        u64::from(self.generation),
                        CheckAt::ExtentBlock,
                        "h_fs_generation",
                    ),
                );
            }
            let cd = hdr.h_list.l_tree_depth.get();
            if u32::from(cd) + 1 != u32::from(depth) {
                self.add_fix(
                    "EXTENT_LIST_DEPTH",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} depth {cd} under depth {depth}"),
                    list.drop(i),
                );
                continue;
            }
            let here = ListAt::extent_block(blk);
            let per_eb = extent_recs_per_eb(self.bs as usize) as u64;
            match parse_extent_list(blk, &eb[here.off..], "extent block") {
                Ok((el, child)) => {
                    if u64::from(el.l_count.get()) != per_eb {
                        self.add_fix(
                            "EXTENT_LIST_COUNT",
                            Some(blk),
                            Some(owner),
                            format!("extent block {blk}: l_count {}", el.l_count.get()),
                            here.field(offset_of!(ExtentList, l_count), per_eb, "l_count"),
                        );
                    }
                    self.walk(owner, here, cd, &child, total, max_end, seen, level + 1);
                }
                Err(e) => {
                    // parse_extent_list() refuses l_count beyond the block
                    // first, then l_next_free_rec beyond l_count.
                    let (code, fix) = match ExtentList::read_from_prefix(&eb[here.off..]) {
                        Ok((el, raw)) if u64::from(el.l_count.get()) <= per_eb => (
                            "EXTENT_LIST_FREE",
                            here.field(
                                offset_of!(ExtentList, l_next_free_rec),
                                super::pass2::filled_records(raw, usize::from(el.l_count.get()))
                                    as u64,
                                "l_next_free_rec",
                            ),
                        ),
                        _ => (
                            "EXTENT_LIST_COUNT",
                            here.field(offset_of!(ExtentList, l_count), per_eb, "l_count"),
                        ),
                    };
                    self.add_fix(code, Some(blk), Some(owner), e.to_string(), fix);
                }
            }
        }
    }
}

/// A field of inode `blkno`.
fn inode_field(blkno: u64, off: usize, width: u8, value: u64, field: &'static str) -> Fix {
    Set::fix(blkno, off, width, value, CheckAt::Inode, field)
}

/// Where an extent list lives: its block, the byte its header starts at,
/// and the block's check.
#[derive(Clone, Copy)]
pub(super) struct ListAt {
    pub blkno: u64,
    pub off: usize,
    pub at: CheckAt,
}

impl ListAt {
    pub fn inode(blkno: u64) -> Self {
        ListAt {
            blkno,
            off: DINODE_ID2,
            at: CheckAt::Inode,
        }
    }
    pub fn extent_block(blkno: u64) -> Self {
        ListAt {
            blkno,
            off: offset_of!(ExtentBlock, h_list),
            at: CheckAt::ExtentBlock,
        }
    }
    /// A field of the list header.
    pub(super) fn field(self, off: usize, value: u64, field: &'static str) -> Fix {
        Set::fix(self.blkno, self.off + off, 2, value, self.at, field)
    }
    /// A field of record `i`.
    fn rec_field(self, i: usize, off: usize, width: u8, value: u64, field: &'static str) -> Fix {
        let at = self.off + size_of::<ExtentList>() + i * size_of::<ExtentRec>() + off;
        Set::fix(self.blkno, at, width, value, self.at, field)
    }
    /// Remove record `i`.
    pub(super) fn drop(self, i: usize) -> Fix {
        Fix::DropExtent {
            blkno: self.blkno,
            list: self.off as u16,
            index: i as u16,
            at: self.at,
        }
    }
}
