//! Pass 6: connectivity and link counts.

use super::*;

/// The `i_flags` that tell one kind of system file from another.
const KIND_FLAGS: u32 = inode_flags::BITMAP
    | inode_flags::CHAIN
    | inode_flags::JOURNAL
    | inode_flags::LOCAL_ALLOC
    | inode_flags::DEALLOC
    | inode_flags::QUOTA
    | inode_flags::HEARTBEAT;

impl Checker<'_> {
    /// The missing per-slot files (indexes into `missing_slot_files`) of
    /// system inode `b`'s kind: its type flags, and a directory for an
    /// orphan directory.
    fn missing_of_type(&self, b: u64, is_dir: bool) -> Vec<usize> {
        let Ok(ino) = self.vol.read_inode(b) else {
            return Vec::new();
        };
        let kind = ino.flags() & KIND_FLAGS;
        self.missing_slot_files
            .iter()
            .enumerate()
            .filter(|(_, m)| m.2 == kind && (kind != 0 || is_dir))
            .map(|(i, _)| i)
            .collect()
    }

    /// Each missing per-slot file that exactly one unnamed system inode
    /// could be, and that inode could be no other, is named again; a
    /// missing file no unnamed inode could be is made anew (after every
    /// other repair). An ambiguous one is left (exit 4): naming the wrong
    /// allocator or journal would be worse than a report.
    fn name_system_files(&mut self, unnamed: &[(u64, Vec<usize>, usize)]) {
        for (i, &(base, slot, _, missing)) in self.missing_slot_files.clone().iter().enumerate() {
            let could: Vec<&(u64, Vec<usize>, usize)> =
                unnamed.iter().filter(|u| u.1.contains(&i)).collect();
            let fix = match could.as_slice() {
                [] => Some(Fix::MakeSlotFiles),
                [(inode, kinds, finding)] if kinds.len() == 1 => {
                    let fix = Fix::LinkSystemFile {
                        inode: *inode,
                        base,
                        slot,
                    };
                    self.findings[*finding].fix = Some(fix);
                    Some(fix)
                }
                _ => None,
            };
            self.findings[missing].fix = fix;
        }
    }

    pub(super) fn pass6(&mut self, sys: &HashMap<String, u64>) {
        let root = self.vol.root_blkno();
        let sysdir = self.vol.system_dir_blkno();
        // Orphans waiting to be freed: each entry of an orphan directory
        // names an inode the kernel would wipe at recovery (links 0, the
        // orphaned flag); fsck wipes it the same way.
        for slot in 0..self.vol.max_slots() {
            if let Some(&b) = sys.get(&slot_file_name("orphan_dir", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok(es) = self.vol.dir_entries(&ino) {
                        for e in es.iter().filter(|e| e.name != b"." && e.name != b"..") {
                            self.orphan(&ino, slot, e);
                        }
                    }
                }
            }
        }
        let mut blks: Vec<u64> = self.inodes.keys().copied().collect();
        blks.sort_unstable();
        // Unnamed system inodes, with the missing per-slot files of their
        // type (indexes into missing_slot_files).
        let mut unnamed_system: Vec<(u64, Vec<usize>, usize)> = Vec::new();
        for b in blks {
            let mut info = self.inodes[&b].clone();
            let is_dir = info.mode & 0o170000 == 0o040000;
            self.one_parent(b, &mut info);
            // A directory's own '.' and its children's '..' count in refs:
            // only an entry elsewhere (parent) connects it.
            if b != root && b != sysdir && info.parent.is_none() {
                // Reconnected to lost+found, as e2fsck and fsck.ocfs2 do;
                // a system file never is (the system directory lost it).
                let ready =
                    (self.lost_found.is_some() || self.lost_found_coming) && !self.dirs_incomplete;
                let fix =
                    (ready && self.lost_found != Some(b) && !info.system).then(|| Fix::Reconnect {
                        inode: b,
                        ftype: ft_of_mode(info.mode),
                    });
                if let Some(k) = info.dotdot_finding {
                    self.findings[k].fix = fix;
                }
                let f = Finding::new(
                    "DIR_NOT_CONNECTED",
                    Some(b),
                    None,
                    format!("inode {b} is not named by any directory"),
                );
                if info.system {
                    let kinds = self.missing_of_type(b, is_dir);
                    unnamed_system.push((b, kinds, self.findings.len()));
                }
                self.findings.push(Finding { fix, ..f });
                continue;
            }
            if info.zero_length && b != root && b != sysdir {
                // Written back as an empty directory under the directory
                // that names it (fsck.ocfs2 clears the inode and the entry
                // instead).
                let fix = info.parent.map(|parent| Fix::InitDir { blkno: b, parent });
                let f = Finding::new(
                    "DIR_ZERO",
                    Some(b),
                    None,
                    format!("directory {b} has no blocks: no '.' and '..'"),
                );
                self.findings.push(Finding { fix, ..f });
            }
            if is_dir && b != root && b != sysdir {
                if let (Some(p), Some(dd)) = (info.parent, info.dotdot) {
                    if p != dd {
                        if let Some(k) = info.dotdot_finding {
                            self.findings[k].fix = Some(Fix::DotDot { dir: b, parent: p });
                        }
                        self.add_fix(
                            "DIRENT_DOTDOT",
                            Some(b),
                            None,
                            format!("directory {b}: '..' is {dd}, its parent is {p}"),
                            Fix::DotDot { dir: b, parent: p },
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
                // A count from directories not read whole is not written
                // (repair.rs waits for the round after their repairs).
                if info.refs > 0 {
                    f.fix = Some(Fix::Links(b, info.refs));
                }
                self.findings.push(f);
            }
        }
        self.name_system_files(&unnamed_system);
    }
}

impl Checker<'_> {
    /// One entry `e` of orphan directory `dir` (of `slot`).
    fn orphan(&mut self, dir: &Inode, slot: u16, e: &ocfs2_format::fs::DirEntry) {
        let d = dir.blkno;
        // Wiped, as fsck.ocfs2 and the kernel wipe it, unless another
        // directory names it (the orphan entry is then the damage) or it is
        // a direct-I/O orphan (whose blocks the kernel only trims).
        let named_elsewhere = self.inodes.get(&e.inode).is_some_and(|i| i.refs > 1);
        let wipe = self.vol.read_inode(e.inode).ok().and_then(|ino| {
            let di = ino.di();
            let flags = di.i_flags.get();
            let (_, bit, group) = *self.alloc_inodes.get(&e.inode)?;
            (flags & inode_flags::VALID != 0
                && flags & inode_flags::DIO_ORPHANED == 0
                && !named_elsewhere)
                .then_some((bit, group))
        });
        let (entry_blkno, entry_off, entry_at) = entry_location(dir, e);
        let f = Finding::new(
            "ORPHAN_DIR_ENTRIES",
            Some(d),
            Some(e.inode),
            format!("orphan_dir:{slot:04} holds inode {}, to be freed", e.inode),
        );
        let fix = wipe.map(|(bit, group)| Fix::WipeOrphan {
            inode: e.inode,
            entry_blkno,
            entry_off: entry_off as u16,
            entry_at,
            group,
            bit,
        });
        self.findings.push(Finding { fix, ..f });
    }
}

impl Checker<'_> {
    /// A directory named by more than one directory (fsck.ocfs2's
    /// DIR_PARENT_DUP): the parent its '..' names is kept (the first met
    /// when '..' names none of them), the other entries are cleared, and
    /// `info` is left as the repair leaves it (its parent, its count).
    fn one_parent(&mut self, b: u64, info: &mut InodeInfo) {
        if info.more_parents.is_empty() {
            return;
        }
        let first = info.parent.expect("more parents follow a first");
        let mut all = vec![(first, Some(info.parent_entry.0), info.parent_entry.1)];
        all.extend(
            info.more_parents
                .iter()
                .map(|&(d, blk, fix)| (d, Some(blk), fix)),
        );
        let keep = all
            .iter()
            .position(|p| Some(p.0) == info.dotdot)
            .unwrap_or(0);
        info.parent = Some(all[keep].0);
        for (k, (d, blk, fix)) in all.into_iter().enumerate() {
            if k == keep {
                continue;
            }
            let f = Finding::new(
                "DIR_PARENT_DUP",
                blk.or(Some(d)),
                Some(d),
                format!(
                    "directory {b} is named in directory {d} too; its parent is {}",
                    info.parent.unwrap_or(0)
                ),
            );
            self.findings.push(Finding { fix, ..f });
            info.refs = info.refs.saturating_sub(1);
        }
    }
}
