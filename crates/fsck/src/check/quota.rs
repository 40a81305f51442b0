//! Pass 4, continued: the global quota files (`usrquota`, `grpquota`). Block
//! 0 holds the header (`dqh_magic`, `dqh_version`) and the info
//! (`dqi_blocks`: the blocks in use); block 1 is the root of a radix tree of
//! `depth` levels (`(bs - 8) / 4` little-endian block references each)
//! whose last level points at data blocks of dquots. Every block ends in an
//! 8-byte trailer that holds its block check under `metaecc`. As fsck.ocfs2,
//! a damaged block is reported and the blocks it references are still read;
//! a reference past `dqi_blocks` is passed over.
//! A damaged file is rebuilt (`quota::rebuild`, fsck.ocfs2's pass 5).

use super::*;
use ocfs2_format::quota::{tree_depth, QuotaType, RESERVED_SPACE as RESERVED, TREE_OFF};

impl Checker<'_> {
    pub(super) fn check_quota(&mut self, sys: &HashMap<String, u64>) {
        let features = self.vol.features();
        for t in QuotaType::ALL {
            let (name, magic) = (t.global_name(), t.global_magic());
            if features.ro_compat & t.feature() == 0 {
                continue;
            }
            let rebuild = Fix::RebuildQuota(t);
            let Some(&b) = sys.get(name) else {
                continue; // pass 1: SYSTEM_FILE_MISSING
            };
            let Some(ino) = self.read_inode(b) else {
                continue;
            };
            let Ok(ext) = self.vol.extents(&ino) else {
                continue; // pass 3 reports the tree
            };
            let bs = self.bs as usize;
            let nblocks = (ino.size() / self.bs) as u32;
            // Block `i` of the file, and whether its trailer checks.
            let read = |me: &mut Self, i: u32| -> Option<(Vec<u8>, bool)> {
                let p = me.vol.map_block(&ext, u64::from(i))?;
                let mut buf = me.vol.read_block(p).ok()?;
                let ok = !me.vol.meta_ecc()
                    || !matches!(
                        blockcheck::validate(&mut buf, CheckAt::DirTrailer),
                        CheckResult::Bad { .. }
                    );
                Some((buf, ok))
            };
            let info = read(self, 0);
            let blocks = match &info {
                Some((buf, ok)) if *ok && le32(buf, 0) == magic && le32(buf, 4) == 0 => {
                    // dqi_blocks, dqi_free_blk, dqi_free_entry: the kernel
                    // appends blocks at dqi_blocks, so one short of the
                    // file hands out a block in use (fsck.ocfs2 checks the
                    // same; mkfs.ocfs2 1.8.7 leaves it short on some
                    // feature sets).
                    let (used, free_blk, free_entry) =
                        (le32(buf, 8 + 12), le32(buf, 8 + 16), le32(buf, 8 + 20));
                    let in_file = |r: u32| r == 0 || (TREE_OFF..used).contains(&r);
                    if used != nblocks || !in_file(free_blk) || !in_file(free_entry) {
                        self.add_fix(
                            "QMAGIC_INVALID",
                            Some(b),
                            None,
                            format!("{name}: its info says {used} blocks (free block {free_blk}, free entry {free_entry}); the file has {nblocks}"),
                            rebuild,
                        );
                    }
                    used.min(nblocks)
                }
                _ => {
                    self.add_fix(
                        "QMAGIC_INVALID",
                        Some(b),
                        None,
                        format!("{name}: its header or info block is damaged (magic, version or block check)"),
                        rebuild,
                    );
                    nblocks
                }
            };
            let depth = tree_depth(self.bs as u32);
            let mut seen = HashSet::new();
            // (block, level): level `depth` is a data block.
            let mut todo = vec![(TREE_OFF, 0u32)];
            while let Some((blk, level)) = todo.pop() {
                // References past the blocks in use, and blocks met before,
                // are passed over, as fsck.ocfs2 passes them (mkfs.ocfs2
                // 1.8.7 itself leaves a dqi_blocks short of its tree).
                if blk >= blocks || !seen.insert(blk) || seen.len() > 1 << 16 {
                    continue;
                }
                let Some((buf, ok)) = read(self, blk) else {
                    continue;
                };
                if level == depth {
                    if !ok {
                        self.add_fix(
                            "DQBLK_INVALID",
                            Some(b),
                            None,
                            format!("{name}: quota data block {blk} fails its block check"),
                            rebuild,
                        );
                    }
                    continue;
                }
                if !ok {
                    self.add_fix(
                        "QTREE_BLK_INVALID",
                        Some(b),
                        None,
                        format!("{name}: quota tree block {blk} fails its block check"),
                        rebuild,
                    );
                }
                for r in buf[..bs - RESERVED].chunks_exact(4) {
                    let r = u32::from_le_bytes(r.try_into().expect("4 bytes"));
                    if r != 0 {
                        todo.push((r, level + 1));
                    }
                }
            }
        }
    }
}
