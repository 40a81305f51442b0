//! Pass 3: every allocated inode and its extent tree (fills `used` and `inodes`).

use super::*;

impl Checker<'_> {
    pub(super) fn pass3(&mut self) {
        let mut blknos: Vec<(u64, (u16, u16))> =
            self.alloc_inodes.iter().map(|(&b, &s)| (b, s)).collect();
        blknos.sort_unstable();
        for (b, (slot, bit)) in blknos {
            let buf = match self.meta(b, CheckAt::Inode, Some(b)) {
                Some(x) => x,
                None => continue,
            };
            if !buf.starts_with(INODE_SIGNATURE) {
                self.add(
                    "INODE_NOT_INODE",
                    Some(b),
                    None,
                    format!(
                        "inode allocator bit for block {b} is set, but the block holds no inode"
                    ),
                );
                continue;
            }
            let ino = Inode { blkno: b, buf };
            let di = *ino.di();
            if di.i_flags.get() & inode_flags::VALID == 0 {
                self.add(
                    "INODE_ALLOC_REPAIR",
                    Some(b),
                    None,
                    format!("inode {b} is allocated but not marked valid"),
                );
                continue;
            }
            if di.i_blkno.get() != b {
                self.add(
                    "INODE_BLKNO",
                    Some(b),
                    None,
                    format!("inode at {b} says i_blkno {}", di.i_blkno.get()),
                );
            }
            if di.i_fs_generation.get() != self.generation {
                self.add(
                    "INODE_GEN",
                    Some(b),
                    None,
                    format!(
                        "inode {b} fs generation {:#x}, volume {:#x}",
                        di.i_fs_generation.get(),
                        self.generation
                    ),
                );
            }
            if di.i_suballoc_bit.get() != bit || di.i_suballoc_slot.get() != slot {
                self.add(
                    "INODE_SUBALLOC",
                    Some(b),
                    None,
                    format!(
                        "inode {b} says slot {} bit {}, allocated at slot {slot} bit {bit}",
                        di.i_suballoc_slot.get(),
                        di.i_suballoc_bit.get()
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
                self.add(
                    "INODE_NZ_DTIME",
                    Some(b),
                    None,
                    format!("inode {b} is in use but has dtime {}", di.i_dtime.get()),
                );
            }
            self.inodes.insert(
                b,
                InodeInfo {
                    mode,
                    links: di.links(),
                    ..Default::default()
                },
            );
            self.check_inode_space(&ino);
            if mode & 0o170000 == 0o120000 {
                self.check_symlink(&ino);
            }
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
        let (len, nul, blocks) = if di.i_clusters.get() == 0 {
            let area = ino.id2();
            let nul = area.iter().position(|&c| c == 0);
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
            (len, nul, blocks)
        };
        if !nul {
            self.add(
                "LINK_NULLTERM",
                Some(b),
                None,
                format!("symlink {b}: its target is not NUL-terminated"),
            );
            return;
        }
        if di.i_size.get() != len as u64 {
            self.add(
                "LINK_SIZE",
                Some(b),
                None,
                format!(
                    "symlink {b}: its target is {len} bytes, i_size says {}",
                    di.i_size.get()
                ),
            );
        }
        let needed = ((len + 1).div_ceil(bs)) as u64;
        if di.i_clusters.get() != 0 && blocks < needed {
            self.add(
                "LINK_BLOCKS",
                Some(b),
                None,
                format!("symlink {b}: its target needs {needed} block(s), {blocks} are allocated"),
            );
        }
    }

    pub(super) fn check_inode_space(&mut self, ino: &Inode) {
        let b = ino.blkno;
        let di = *ino.di();
        let bs = self.bs as usize;
        if ino.is_inline() {
            let id_count = u16::from_le_bytes([ino.buf[DINODE_ID2], ino.buf[DINODE_ID2 + 1]]);
            if usize::from(id_count) > max_inline_data(bs) || di.i_size.get() > u64::from(id_count)
            {
                self.add(
                    "INODE_INLINE_SIZE",
                    Some(b),
                    None,
                    format!(
                        "inline inode {b}: i_size {} id_count {id_count}",
                        di.i_size.get()
                    ),
                );
            }
            if di.i_clusters.get() != 0 {
                self.add(
                    "INODE_INLINE_CLUSTERS",
                    Some(b),
                    None,
                    format!("inline inode {b} owns {} clusters", di.i_clusters.get()),
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
                let code = match ExtentList::read_from_prefix(ino.id2()) {
                    Ok((el, _)) if usize::from(el.l_count.get()) <= extent_recs_per_inode(bs) => {
                        "EXTENT_LIST_FREE"
                    }
                    _ => "EXTENT_LIST_COUNT",
                };
                self.add(code, Some(b), None, format!("inode {b}: {e}"));
                return;
            }
        };
        if usize::from(el.l_count.get()) != extent_recs_per_inode(bs) {
            self.add(
                "EXTENT_LIST_COUNT",
                Some(b),
                None,
                format!(
                    "inode {b}: l_count {} (expected {})",
                    el.l_count.get(),
                    extent_recs_per_inode(bs)
                ),
            );
        }
        let mut total = 0u64;
        let mut max_end = 0u64;
        let mut seen = HashSet::new();
        self.walk(
            b,
            el.l_tree_depth.get(),
            &recs,
            &mut total,
            &mut max_end,
            &mut seen,
            0,
        );
        if u64::from(di.i_clusters.get()) != total {
            self.add(
                "INODE_CLUSTERS",
                Some(b),
                None,
                format!(
                    "inode {b}: i_clusters {} but its extents hold {total}",
                    di.i_clusters.get()
                ),
            );
        }
        let cap = max_end << self.cs_bits;
        let is_dir = ino.is_dir();
        if !is_dir
            && di.i_size.get() > cap
            && !self.vol.features().has_incompat(incompat::SPARSE_ALLOC)
        {
            self.add(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "inode {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
            );
        }
        if is_dir && di.i_size.get() > cap {
            self.add(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "directory {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn walk(
        &mut self,
        owner: u64,
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
        let mut prev_end = 0u64;
        for (i, r) in recs.iter().enumerate() {
            let cpos = u64::from(r.e_cpos.get());
            let n = u64::from(r.clusters(depth));
            let blk = r.e_blkno.get();
            if depth == 0 && n == 0 {
                continue;
            }
            if i > 0 && cpos < prev_end {
                self.add(
                    "EXTENT_OVERLAP",
                    Some(owner),
                    None,
                    format!(
                        "record {i} at cpos {cpos} overlaps the previous one ending at {prev_end}"
                    ),
                );
            }
            prev_end = cpos + n;
            if depth == 0 {
                let f = self.vol.features();
                if r.flags() & EXT_UNWRITTEN != 0 && f.ro_compat & ro_compat::UNWRITTEN == 0 {
                    self.add(
                        "EXTENT_MARKED_UNWRITTEN",
                        Some(owner),
                        None,
                        format!("record {i} is marked unwritten, but the volume has no unwritten feature"),
                    );
                }
                if r.flags() & EXT_REFCOUNTED != 0 && !f.has_incompat(incompat::REFCOUNT_TREE) {
                    self.add(
                        "EXTENT_MARKED_REFCOUNTED",
                        Some(owner),
                        None,
                        format!("record {i} is marked refcounted, but the volume has no refcount feature"),
                    );
                }
                if blk % self.bpc != 0 {
                    self.add(
                        "EXTENT_BLKNO_UNALIGNED",
                        Some(owner),
                        None,
                        format!("record {i}: block {blk} is not a cluster start"),
                    );
                }
                if blk
                    .checked_add(n * self.bpc)
                    .is_none_or(|e| e > self.clusters * self.bpc)
                {
                    self.add(
                        "EXTENT_BLKNO_RANGE",
                        Some(owner),
                        None,
                        format!(
                            "record {i}: blocks {blk}+{} run outside the volume",
                            n * self.bpc
                        ),
                    );
                    continue;
                }
                *total += n;
                *max_end = (*max_end).max(cpos + n);
                self.claim(blk, n * self.bpc, owner);
                continue;
            }
            if blk == 0 || blk >= self.blocks() {
                self.add(
                    "EXTENT_BLKNO_RANGE",
                    Some(owner),
                    None,
                    format!("record {i}: extent block {blk} is outside the volume"),
                );
                continue;
            }
            if !seen.insert(blk) {
                self.add(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} appears twice in one tree"),
                );
                continue;
            }
            let Some(eb) = self.meta(blk, CheckAt::ExtentBlock, Some(owner)) else {
                continue;
            };
            if !eb.starts_with(EXTENT_BLOCK_SIGNATURE) {
                self.add(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("record {i} points at block {blk}, not an extent block"),
                );
                continue;
            }
            let hdr = ExtentBlock::read_from_prefix(&eb)
                .expect("block >= 64 bytes")
                .0;
            if hdr.h_blkno.get() != blk {
                self.add(
                    "EB_BLKNO",
                    Some(blk),
                    Some(owner),
                    format!("extent block at {blk} says h_blkno {}", hdr.h_blkno.get()),
                );
            }
            if hdr.h_fs_generation.get() != self.generation {
                self.add(
                    "EB_GEN",
                    Some(blk),
                    Some(owner),
                    format!(
                        "extent block {blk} generation {:#x}",
                        hdr.h_fs_generation.get()
                    ),
                );
            }
            let cd = hdr.h_list.l_tree_depth.get();
            if u32::from(cd) + 1 != u32::from(depth) {
                self.add(
                    "EXTENT_LIST_DEPTH",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} depth {cd} under depth {depth}"),
                );
                continue;
            }
            match parse_extent_list(blk, &eb[0x30..], "extent block") {
                Ok((el, child)) => {
                    if usize::from(el.l_count.get()) != extent_recs_per_eb(self.bs as usize) {
                        self.add(
                            "EXTENT_LIST_COUNT",
                            Some(blk),
                            Some(owner),
                            format!("extent block {blk}: l_count {}", el.l_count.get()),
                        );
                    }
                    self.walk(owner, cd, &child, total, max_end, seen, level + 1);
                }
                Err(e) => self.add("EXTENT_LIST_FREE", Some(blk), Some(owner), e.to_string()),
            }
        }
    }
}
