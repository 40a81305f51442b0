//! Pass 6: connectivity and link counts.

use super::*;

impl Checker<'_> {
    pub(super) fn pass6(&mut self, sys: &HashMap<String, u64>) {
        let root = self.vol.root_blkno();
        let sysdir = self.vol.system_dir_blkno();
        // Orphans waiting to be freed.
        for slot in 0..self.vol.max_slots() {
            if let Some(&b) = sys.get(&slot_file_name("orphan_dir", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok(es) = self.vol.dir_entries(&ino) {
                        let n = es
                            .iter()
                            .filter(|e| e.name != b"." && e.name != b"..")
                            .count();
                        if n > 0 {
                            self.add(
                                "ORPHAN_DIR_ENTRIES",
                                Some(b),
                                None,
                                format!("orphan_dir:{slot:04} holds {n} inode(s) to free"),
                            );
                        }
                    }
                }
            }
        }
        let mut blks: Vec<u64> = self.inodes.keys().copied().collect();
        blks.sort_unstable();
        for b in blks {
            let info = self.inodes[&b].clone();
            let is_dir = info.mode & 0o170000 == 0o040000;
            // A directory's own '.' and its children's '..' count in refs:
            // only an entry elsewhere (parent) connects it.
            if b != root && b != sysdir && info.parent.is_none() {
                self.add(
                    "DIR_NOT_CONNECTED",
                    Some(b),
                    None,
                    format!("inode {b} is not named by any directory"),
                );
                continue;
            }
            if is_dir && b != root && b != sysdir {
                if let (Some(p), Some(dd)) = (info.parent, info.dotdot) {
                    if p != dd {
                        self.add(
                            "DIRENT_DOTDOT",
                            Some(b),
                            None,
                            format!("directory {b}: '..' is {dd}, its parent is {p}"),
                        );
                    }
                }
            }
            // A directory counts '.', '..' of each subdirectory and its entry
            // in its parent; the refs counted in pass 5 are exactly those.
            if info.refs != info.links {
                let mut f = Finding::new(
                    "INODE_COUNT",
                    Some(b),
                    None,
                    format!(
                        "inode {b}: i_links_count {} but {} entries point at it",
                        info.links, info.refs
                    ),
                );
                // Zero would free a file something still names: that is
                // not a count to write.
                if info.refs > 0 {
                    f.fix = Some(Fix::Links(b, info.refs));
                }
                self.findings.push(f);
            }
        }
    }
}
