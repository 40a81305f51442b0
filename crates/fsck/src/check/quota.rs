//! Pass 4, continued: the global quota files (`usrquota`, `grpquota`). Block
//! 0 holds the header (`dqh_magic`, `dqh_version`) and the info
//! (`dqi_blocks`: the blocks in use); block 1 is the root of a radix tree of
//! `depth` levels (`(bs - 8) / 4` little-endian block references each)
//! whose last level points at data blocks of dquots. Every block ends in an
//! 8-byte trailer that holds its block check under `metaecc`. As fsck.ocfs2,
//! a damaged block is reported and the blocks it references are still read;
//! a reference past `dqi_blocks` is passed over.
//! Reported only: rebuilding quota files is not in this release.

use super::*;

/// `OCFS2_GLOBAL_QMAGICS` and the files' names, by type.
const TYPES: [(u32, &str, u32); 2] = [
    (ro_compat::USRQUOTA, "aquota.user", 0x0CF5_2470),
    (ro_compat::GRPQUOTA, "aquota.group", 0x0CF5_2471),
];
/// `QT_TREEOFF`: the tree's root block.
const TREE_OFF: u32 = 1;
/// Bytes of the trailer at the end of every quota block.
const RESERVED: usize = 8;

/// Tree levels for 2^32 ids (`ocfs2_qtree_depth`).
fn tree_depth(bs: usize) -> u32 {
    let epb = ((bs - RESERVED) / 4) as u64;
    let (mut entries, mut depth) = (epb, 1);
    while entries < 1 << 32 {
        entries *= epb;
        depth += 1;
    }
    depth
}

impl Checker<'_> {
    pub(super) fn check_quota(&mut self, sys: &HashMap<String, u64>) {
        let features = self.vol.features();
        for (bit, name, magic) in TYPES {
            if features.ro_compat & bit == 0 {
                continue;
            }
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
                    le32(buf, 8 + 12).min(nblocks)
                }
                _ => {
                    self.add(
                        "QMAGIC_INVALID",
                        Some(b),
                        None,
                        format!("{name}: its header or info block is damaged (magic, version or block check)"),
                    );
                    nblocks
                }
            };
            let depth = tree_depth(bs);
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
                        self.add(
                            "DQBLK_INVALID",
                            Some(b),
                            None,
                            format!("{name}: quota data block {blk} fails its block check"),
                        );
                    }
                    continue;
                }
                if !ok {
                    self.add(
                        "QTREE_BLK_INVALID",
                        Some(b),
                        None,
                        format!("{name}: quota tree block {blk} fails its block check"),
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
