//! Pass 5, per directory with `OCFS2_INDEXED_DIR_FL`: its index, as
//! fsck.ocfs2 checks it (IV_DX_TREE, DX_TREE_CORRUPT, DX_LOOKUP_FAILED) and
//! more: the root, the leaf clusters (claimed, pass 3's walker, keyed by
//! hash), every leaf, the root's entry count, and that the kernel's lookup
//! of every name leads to an index entry for its block, and every index
//! entry to a name. What is wrong is repaired by building the index again
//! (`dxtree::drop`, then `dxtree::build`), as fsck.ocfs2 rebuilds it.

use super::pass3::ListAt;
use super::*;
use ocfs2_format::dx as dxf;
use ocfs2_format::dxtree;

impl Checker<'_> {
    /// A block directory without an index on a volume with indexed-dirs:
    /// valid (the kernel searches it linearly), but fsck.ocfs2 reports it
    /// (DX_TREE_MISSING) and `-y` builds the index, as fsck.ocfs2 does, so
    /// that after `-y` both checkers agree. Offered only for a directory
    /// the check found nothing wrong with.
    pub(super) fn offer_index(&mut self, ino: &Inode) {
        let d = ino.blkno;
        if !self.vol.features().has_incompat(incompat::INDEXED_DIRS)
            || self
                .findings
                .iter()
                .any(|f| f.blkno == Some(d) || f.inode == Some(d))
        {
            return;
        }
        self.add_fix(
            "DX_TREE_MISSING",
            Some(d),
            None,
            format!("directory {d} has no index"),
            Fix::RebuildIndex(d),
        );
    }

    /// `sound`: the directory's blocks were read whole and found sound in
    /// this round, so that an index can be built from them.
    pub(super) fn check_index(&mut self, ino: &Inode, sound: bool) {
        let d = ino.blkno;
        if !self.vol.features().has_incompat(incompat::INDEXED_DIRS) {
            self.add_fix(
                "IV_DX_TREE",
                Some(d),
                None,
                format!("directory {d} has an index, but the volume has no indexed-dirs feature"),
                Fix::DropIndex(d),
            );
            return;
        }
        let rebuild = sound.then_some(Fix::RebuildIndex(d));
        let dx = ino.di().i_dx_root.get();
        let root = if dx < self.blocks() {
            self.meta(dx, CheckAt::DxBlock, Some(d))
        } else {
            None
        };
        let hdr = root
            .as_ref()
            .filter(|b| b.starts_with(DX_ROOT_SIGNATURE))
            .and_then(|b| {
                DxRootBlock::read_from_prefix(b)
                    .ok()
                    .map(|(h, _)| h)
                    .filter(|h| h.dr_dir_blkno.get() == d && h.dr_blkno.get() == dx)
            });
        let before = self.findings.len();
        // The root lives inside an extent allocator group, whose clusters
        // pass 2 claimed already; an index that outgrew the root keeps its
        // leaves in clusters of its own.
        match (hdr, root) {
            (Some(h), Some(b)) if h.dr_flags & dxf::FLAG_INLINE == 0 => {
                match parse_extent_list(dx, &b[dxf::ENTRY_LIST..], "dx root") {
                    Ok((el, recs)) => {
                        let (mut total, mut max_end) = (0u64, 0u64);
                        let mut seen = HashSet::new();
                        let list = ListAt {
                            blkno: dx,
                            off: dxf::ENTRY_LIST,
                            at: CheckAt::DxBlock,
                        };
                        let saved = (self.no_holes, self.hash_keyed);
                        (self.no_holes, self.hash_keyed) = (false, true);
                        self.walk(
                            d,
                            list,
                            el.l_tree_depth.get(),
                            &recs,
                            &mut total,
                            &mut max_end,
                            &mut seen,
                            0,
                        );
                        (self.no_holes, self.hash_keyed) = saved;
                        if total != u64::from(h.dr_clusters.get()) {
                            self.add(
                                "DX_ROOT",
                                Some(dx),
                                Some(d),
                                format!(
                                    "directory {d}: index root says {} clusters, its extents hold {total}",
                                    h.dr_clusters.get()
                                ),
                            );
                        }
                    }
                    Err(e) => self.add("DX_ROOT", Some(dx), Some(d), e.to_string()),
                }
            }
            (Some(_), _) => {}
            _ => self.add(
                "DX_ROOT",
                Some(dx),
                Some(d),
                format!("directory {d}: i_dx_root {dx} is not its index root"),
            ),
        }
        let root_bad = self.findings.len() > before;
        if !root_bad {
            match dxtree::entries(self.vol, ino) {
                Ok(read) => {
                    for p in &read.problems {
                        self.add("DX_TREE_CORRUPT", Some(dx), Some(d), p.clone());
                    }
                    if read.num_entries as usize != read.entries.len() {
                        self.add(
                            "DX_TREE_CORRUPT",
                            Some(dx),
                            Some(d),
                            format!(
                                "directory {d}: index root counts {} entries, its lists hold {}",
                                read.num_entries,
                                read.entries.len()
                            ),
                        );
                    }
                    // A block that cannot be read is pass 5's finding.
                    if let Ok(misses) = dxtree::misses(self.vol, ino, &read) {
                        for m in misses.iter().take(10) {
                            self.add("DX_LOOKUP_FAILED", Some(dx), Some(d), m.clone());
                        }
                        if misses.len() > 10 {
                            self.add(
                                "DX_LOOKUP_FAILED",
                                Some(dx),
                                Some(d),
                                format!("directory {d}: {} index misses in all", misses.len()),
                            );
                        }
                    }
                }
                Err(e) => self.add("DX_TREE_CORRUPT", Some(dx), Some(d), e.to_string()),
            }
        }
        for f in &mut self.findings[before..] {
            if f.fix.is_none() {
                f.fix = rebuild;
            }
        }
    }
}
