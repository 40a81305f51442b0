//! Pass 5: directory entries (counts references in `inodes`).

use super::*;
use core::mem::offset_of;

impl Checker<'_> {
    pub(super) fn pass5(&mut self) {
        self.pass5_root_mode();
        let mut dirs: Vec<u64> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.mode & 0o170000 == 0o040000)
            .map(|(&b, _)| b)
            .collect();
        dirs.sort_unstable();
        for d in dirs {
            let Some(ino) = self.read_inode(d) else {
                continue;
            };
            // Directory blocks end in a trailer on metaecc volumes and in
            // indexed directories; entries fill the bytes before it.
            let (trailers, limit) = self.dir_block_limit(&ino);
            let before_dir = self.findings.len();
            let mut entries = Vec::new();
            // A '.' grown over '..' (dot_shrinks), whose repair also gives
            // the directory its '..' back.
            let mut dot_fix: Option<Fix> = None;
            if ino.is_inline() {
                // The entries fill i_size bytes of the inline area; a wrong
                // id_count or i_size is pass 3's (INLINE_DATA_COUNT_INVALID,
                // INODE_INLINE_SIZE), and the entries are read within the
                // block all the same, so that what they name is counted.
                let area = &ino.id2()[core::mem::size_of::<InlineData>()..];
                let data = &area[..(ino.size().min(area.len() as u64)) as usize];
                if let Err(e) = ocfs2_format::fs::parse_dir_block(d, data, &mut entries) {
                    let area = DINODE_ID2 + core::mem::size_of::<InlineData>();
                    let fix = length_fix(data, d, area, CheckAt::Inode);
                    self.dirs_incomplete = true;
                    let f = Finding::new("DIRENT_LENGTH", Some(d), None, e.to_string());
                    self.findings.push(Finding { fix, ..f });
                    dot_fix = fix.filter(|f| matches!(f, Fix::Set(_)));
                }
            } else {
                let ext = match self.vol.extents(&ino) {
                    Ok(x) => x,
                    Err(_) => {
                        // reported in pass 3
                        self.dirs_incomplete = true;
                        continue;
                    }
                };
                let nblocks = ino.size().div_ceil(self.bs);
                if nblocks == 0 {
                    // A directory holds '.' and '..' at least: pass 6
                    // writes them back (DIR_ZERO).
                    if let Some(t) = self.inodes.get_mut(&d) {
                        t.zero_length = true;
                    }
                }
                let mut next = 0u64;
                while next < nblocks {
                    let l = next;
                    next += 1;
                    let Some(p) = self.vol.map_block(&ext, l) else {
                        // One finding per hole, skipped whole: a damaged
                        // i_size may lie far beyond the extents.
                        next = ext
                            .iter()
                            .map(|e| u64::from(e.cpos) * self.bpc)
                            .filter(|&s| s > l)
                            .min()
                            .unwrap_or(nblocks)
                            .min(nblocks);
                        self.dirs_incomplete = true;
                        // Pass 3's repair of this directory's records
                        // (NO_HOLES) or of its i_size past them
                        // (INODE_SIZE) closes the hole.
                        let fix = self
                            .findings
                            .iter()
                            .find(|f| {
                                f.blkno == Some(d) && matches!(f.code, "NO_HOLES" | "INODE_SIZE")
                            })
                            .and_then(|f| f.fix);
                        let f = Finding::new(
                            "DIR_HOLE",
                            Some(d),
                            None,
                            format!("directory {d} has no block {l}..{}", next - 1),
                        );
                        self.findings.push(Finding { fix, ..f });
                        continue;
                    };
                    let at = CheckAt::DirTrailer;
                    let Some(buf) = (if self.vol.meta_ecc() {
                        self.meta(p, at, Some(d))
                    } else {
                        self.vol.read_block(p).ok()
                    }) else {
                        self.dirs_incomplete = true;
                        continue;
                    };
                    let bad_trailer = trailers && {
                        let t = DirBlockTrailer::read_from_prefix(&buf[limit..])
                            .expect("64 bytes")
                            .0;
                        // fsck.ocfs2's DIR_TRAILER_* checks: the parts that
                        // look like an empty entry too.
                        &t.db_signature[..7] != b"DIRTRL1"
                            || t.db_blkno.get() != p
                            || t.db_parent_dinode.get() != d
                            || t.db_compat_inode.get() != 0
                            || usize::from(t.db_compat_rec_len.get())
                                != ocfs2_format::link::DIR_TRAILER_LEN
                            || t.db_compat_name_len != 0
                    };
                    if let Err(e) =
                        ocfs2_format::fs::parse_dir_block(p, &buf[..limit], &mut entries)
                    {
                        let fix = length_fix(&buf[..limit], p, 0, CheckAt::DirTrailer);
                        self.dirs_incomplete = true;
                        let f = Finding::new("DIRENT_LENGTH", Some(p), Some(d), e.to_string());
                        self.findings.push(Finding { fix, ..f });
                        dot_fix = dot_fix.or(fix.filter(|f| matches!(f, Fix::Set(_))));
                    }
                    if bad_trailer {
                        // Rewritten when the entries end where the trailer
                        // begins (they parse within the block's first
                        // bytes): its place holds nothing else then.
                        let whole =
                            ocfs2_format::fs::parse_dir_block(p, &buf[..limit], &mut Vec::new())
                                .is_ok();
                        let f = Finding::new(
                            "DIR_TRAILER",
                            Some(p),
                            Some(d),
                            format!("directory {d} block {p}: trailer missing or wrong"),
                        );
                        let fix = whole.then_some(Fix::DirTrailer {
                            blkno: p,
                            parent: d,
                        });
                        self.findings.push(Finding { fix, ..f });
                    }
                }
                // Rebuilt, or built, only from blocks read whole and found
                // sound.
                let sound = self.findings.len() == before_dir;
                if ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
                    self.check_index(&ino, sound);
                } else if nblocks > 0 && sound {
                    self.offer_index(&ino);
                }
            }
            if entries.len() < 2 && !entries.is_empty() {
                let f = Finding::new(
                    "DIRENT_DOTDOT",
                    Some(d),
                    None,
                    format!("directory {d} has no '..' entry"),
                );
                self.findings.push(Finding { fix: dot_fix, ..f });
            }
            // Each name met, with the inode its first entry names.
            let mut names: HashMap<Vec<u8>, u64> = HashMap::new();
            // A name in an indexed directory is also a hash in its index:
            // it is not changed in place (the entry would no longer be
            // found through the index).
            let indexed = ino.dyn_features() & dyn_features::INDEXED_DIR != 0;
            for (k, e) in entries.iter().enumerate() {
                let name = e.name_lossy();
                // A field of this entry, where it lives: the directory block
                // (checked by its trailer), or the inode's inline area.
                let (at_blk, at_off, at_check) = entry_location(&ino, e);
                let entry = |off: usize, width: u8, value: u64, field: &'static str| {
                    Set::fix(at_blk, at_off + off, width, value, at_check, field)
                };
                // Entries after '.' and '..' that cannot stay are cleared
                // (inode 0: a free entry, as unlink leaves one).
                let clear = (k >= 2)
                    .then(|| entry(offset_of!(DirEntryHeader, inode), 8, 0, "the entry's inode"));
                if let Some(bad) = e.name.iter().position(|&c| c == b'/' || c == 0) {
                    self.add_fix(
                        "DIRENT_NAME_CHARS",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: name {:?} holds a '/' or a NUL",
                            name.escape_debug().to_string()
                        ),
                        entry(
                            DIR_MEMBER_LEN + bad,
                            1,
                            u64::from(b'.'),
                            "a character of the name ('.')",
                        ),
                    );
                    if indexed {
                        if let Some(f) = self.findings.last_mut() {
                            f.fix = None;
                        }
                    }
                }
                if let Some(&first) = names.get(&e.name) {
                    let f = Finding::new(
                        "DIRENT_DUPLICATE",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: name {name:?} appears twice"),
                    );
                    if first == e.inode && k >= 2 {
                        // The same name for the same inode (entries moved
                        // to a new block by a run that stopped before it
                        // cleared the old ones): the second goes, as
                        // e2fsck's rehash drops an exact duplicate; it
                        // counts as no link.
                        self.findings.push(Finding { fix: clear, ..f });
                        continue;
                    }
                    // Renamed in place, as e2fsck renames a duplicate: its
                    // last character becomes one that makes the name new
                    // in this directory (nothing is unlinked).
                    let last = e.name.len() - 1;
                    let rename = RENAME_CHARS.iter().find_map(|&c| {
                        let mut n = e.name.clone();
                        n[last] = c;
                        (!names.contains_key(&n)).then(|| {
                            names.insert(n, e.inode);
                            entry(
                                DIR_MEMBER_LEN + last,
                                1,
                                u64::from(c),
                                "the last character of the name",
                            )
                        })
                    });
                    self.findings.push(Finding {
                        fix: rename.filter(|_| k >= 2 && !indexed),
                        ..f
                    });
                } else {
                    names.insert(e.name.clone(), e.inode);
                }
                if k == 0 && (e.name != b"." || e.inode != d) {
                    let f = Finding::new(
                        "DIRENT_DOT_INODE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: first entry is {name:?} -> {}, not '.' -> itself",
                            e.inode
                        ),
                    );
                    // '.' naming another inode points back; a first entry
                    // naming this directory under another name is its '.'
                    // renamed: name_len, file_type and the name's first two
                    // bytes (the second is padding after '.').
                    let fix = if e.name == b"." {
                        Some(entry(offset_of!(DirEntryHeader, inode), 8, d, "'.'"))
                    } else {
                        (e.inode == d).then(|| {
                            let second = u64::from(e.name.get(1).copied().unwrap_or(0));
                            let value = 1
                                | u64::from(file_type::DIR) << 8
                                | u64::from(b'.') << 16
                                | second << 24;
                            entry(
                                offset_of!(DirEntryHeader, name_len),
                                4,
                                value,
                                "the entry's name ('.')",
                            )
                        })
                    };
                    self.findings.push(Finding { fix, ..f });
                }
                // '.' takes its own length only (fsck.ocfs2 splits the
                // excess off into a free entry).
                if k == 0
                    && e.name == b"."
                    && usize::from(e.rec_len) >= dir_rec_len(1) + DIR_MEMBER_LEN
                {
                    let fix = Some(Fix::SplitDot {
                        blkno: at_blk,
                        entry: at_off as u16,
                        at: at_check,
                    });
                    let f = Finding::new(
                        "DIRENT_DOT_EXCESS",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: '.' has rec_len {}, it needs {}",
                            e.rec_len,
                            dir_rec_len(1)
                        ),
                    );
                    self.findings.push(Finding { fix, ..f });
                }
                if k == 1 && e.name != b".." {
                    self.add(
                        "DIRENT_DOTDOT",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: second entry is {name:?}, not '..'"),
                    );
                }
                if k == 1 && e.name == b".." {
                    if let Some(t) = self.inodes.get_mut(&d) {
                        t.dotdot = Some(e.inode);
                    }
                }
                if e.inode >= self.blocks() {
                    let f = Finding::new(
                        "DIRENT_INODE_RANGE",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: {name:?} -> {}, outside the volume", e.inode),
                    );
                    self.findings.push(Finding { fix: clear, ..f });
                    continue;
                }
                let Some(target) = self.inodes.get_mut(&e.inode) else {
                    if k == 1 && e.name == b".." {
                        if let Some(t) = self.inodes.get_mut(&d) {
                            t.dotdot_finding = Some(self.findings.len());
                        }
                    }
                    if self.restored.contains(&e.inode) {
                        // Its bit is set this round (INODE_ALLOC_BITS);
                        // the entry stays, and is judged in the next.
                        continue;
                    }
                    if let Some(g) = self.lost_group_of(e.inode) {
                        // Its group comes back on its chain
                        // (GROUP_OFF_CHAIN); the entry stays.
                        self.add(
                            "DIRENT_INODE_FREE",
                            Some(e.blkno),
                            Some(d),
                            format!("directory {d}: {name:?} -> {}, an inode of group {g}, which no chain reaches", e.inode),
                        );
                        continue;
                    }
                    let f = Finding::new(
                        "DIRENT_INODE_FREE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: {name:?} -> {}, not an allocated, valid inode",
                            e.inode
                        ),
                    );
                    self.findings.push(Finding { fix: clear, ..f });
                    continue;
                };
                target.refs += 1;
                let tmode = target.mode;
                if e.name != b"." && e.name != b".." {
                    let t = self.inodes.get_mut(&e.inode).expect("present");
                    if t.parent.is_none() {
                        t.parent = Some(d);
                        t.parent_entry = (e.blkno, clear);
                    } else if tmode & 0o170000 == 0o040000 {
                        // A directory has one parent: pass 6 keeps the one
                        // its '..' names and clears the others' entries.
                        t.more_parents.push((d, e.blkno, clear));
                    }
                }
                if e.file_type != ft_of_mode(tmode) {
                    // A mode without a file type is the inode's damage
                    // (INODE_MODE): the inode takes the type of the first
                    // entry that names it with one (its permissions kept),
                    // and the entry is left. fsck.ocfs2 clears such an
                    // inode.
                    let fix = if ft_of_mode(tmode) == file_type::UNKNOWN {
                        let mode = mode_of_ft(e.file_type).map(|m| m | (tmode & 0o7777));
                        let fix = mode.map(|m| {
                            Set::fix(
                                e.inode,
                                offset_of!(Dinode, i_mode),
                                2,
                                u64::from(m),
                                CheckAt::Inode,
                                "i_mode (the type its entry names)",
                            )
                        });
                        if let (Some(m), Some(fix)) = (mode, fix) {
                            for f in self.findings.iter_mut() {
                                if f.code == "INODE_MODE"
                                    && f.blkno == Some(e.inode)
                                    && f.fix.is_none()
                                {
                                    f.fix = Some(fix);
                                }
                            }
                            if let Some(t) = self.inodes.get_mut(&e.inode) {
                                t.mode = m;
                            }
                        }
                        fix
                    } else {
                        Some(entry(
                            offset_of!(DirEntryHeader, file_type),
                            1,
                            u64::from(ft_of_mode(tmode)),
                            "the entry's file type",
                        ))
                    };
                    let f = Finding::new(
                        "DIRENT_TYPE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: {name:?} has type {}, inode {} mode {tmode:o}",
                            e.file_type, e.inode
                        ),
                    );
                    self.findings.push(Finding { fix, ..f });
                }
            }
        }
        self.relink_lost_groups();
        self.pass5_root();
    }

    /// The root directory and its lost+found (`lost_found`).
    fn pass5_root(&mut self) {
        let root = self.vol.root_blkno();
        let is_dir = |i: &InodeInfo| i.mode & 0o170000 == 0o040000;
        if self.inodes.get(&root).is_some_and(is_dir) {
            let Some(r) = self.read_inode(root) else {
                return;
            };
            match self.vol.lookup(&r, b"lost+found") {
                Ok(Some(lf)) => {
                    self.lost_found = self.inodes.get(&lf).is_some_and(is_dir).then_some(lf);
                }
                Ok(None) => {
                    let f = Finding::new(
                        "LOSTFOUND_MISSING",
                        Some(root),
                        None,
                        "lost+found is missing from the root directory".into(),
                    );
                    self.lost_found_coming = true;
                    self.findings.push(Finding {
                        fix: Some(Fix::MakeLostFound { root }),
                        ..f
                    });
                }
                Err(_) => {} // its damage is reported above
            }
            return;
        }
        // A root that lost only its mode is pass5_root_mode's. Otherwise the
        // inode is rewritten as an empty root (its bit in the global inode
        // allocator is set), and what it named goes to lost+found.
        let fix = self
            .alloc_inodes
            .get(&root)
            .map(|&(slot, bit, group)| Fix::InitRoot {
                blkno: root,
                slot,
                bit,
                group,
            });
        self.lost_found_coming = fix.is_some();
        // The root's allocator bit stays: the new root takes it, and
        // repairs what pass 3 found in its block.
        if fix.is_some() {
            for f in self.findings.iter_mut().filter(|f| f.blkno == Some(root)) {
                if matches!(f.fix, Some(Fix::FreeBit { .. })) || f.code == "BLOCK_CHECK" {
                    f.fix = fix;
                }
            }
        }
        let f = Finding::new(
            "ROOT_DIR_MISSING",
            Some(root),
            None,
            format!("root directory {root} is missing or not a directory"),
        );
        self.findings.push(Finding { fix, ..f });
    }

    /// A valid root inode whose entries are a root's ('.' and '..' naming
    /// itself) lost only its mode: ROOT_DIR_MISSING, repaired by setting the
    /// mode back, and the passes go on as if it were (its entries name
    /// what they name; nothing goes to lost+found).
    fn pass5_root_mode(&mut self) {
        let root = self.vol.root_blkno();
        let Some(mode) = self.inodes.get(&root).map(|i| i.mode) else {
            return;
        };
        if mode & 0o170000 == 0o040000 {
            return;
        }
        let Some(ino) = self.read_inode(root) else {
            return;
        };
        if !self.holds_root_entries(&ino) {
            return;
        }
        let perm = if mode & 0o7777 == 0 {
            0o755
        } else {
            mode & 0o7777
        };
        let fixed = 0o040000 | perm;
        let fix = Set::fix(
            root,
            offset_of!(Dinode, i_mode),
            2,
            u64::from(fixed),
            CheckAt::Inode,
            "i_mode (a directory)",
        );
        for f in self.findings.iter_mut() {
            if f.code == "INODE_MODE" && f.blkno == Some(root) {
                f.fix = Some(fix);
            }
        }
        self.add_fix(
            "ROOT_DIR_MISSING",
            Some(root),
            None,
            format!("root directory {root} has mode {mode:o}, but holds a root's entries"),
            fix,
        );
        if let Some(i) = self.inodes.get_mut(&root) {
            i.mode = fixed;
        }
    }

    /// Whether inode `ino` (whatever its mode) holds directory entries
    /// whose '.' and '..' both name it: a root directory's.
    fn holds_root_entries(&self, ino: &Inode) -> bool {
        let b = ino.blkno;
        let mut entries = Vec::new();
        let parsed = if ino.is_inline() {
            ino.inline_data()
                .ok()
                .and_then(|d| ocfs2_format::fs::parse_dir_block(b, d, &mut entries).ok())
        } else {
            let (_, limit) = self.dir_block_limit(ino);
            self.vol
                .extents(ino)
                .ok()
                .and_then(|x| self.vol.map_block(&x, 0))
                .and_then(|p| self.vol.read_block(p).ok())
                .and_then(|buf| {
                    ocfs2_format::fs::parse_dir_block(b, &buf[..limit], &mut entries).ok()
                })
        };
        parsed.is_some()
            && entries.len() >= 2
            && entries[0].name == b"."
            && entries[0].inode == b
            && entries[1].name == b".."
            && entries[1].inode == b
    }
}

/// What the last character of a duplicate name becomes, the first that
/// makes the name new in its directory.
const RENAME_CHARS: &[u8] = b"~0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl Checker<'_> {
    /// Whether directory `dir`'s blocks end in a trailer, as libocfs2's
    /// `ocfs2_dir_has_trailer` decides (metaecc, or an indexed directory on
    /// a volume with the feature: a directory without an index may have
    /// one too, which then reads as an empty entry), and the bytes its
    /// entries fill.
    fn dir_block_limit(&self, dir: &Inode) -> (bool, usize) {
        let trailers = self.vol.meta_ecc()
            || (self.vol.features().has_incompat(incompat::INDEXED_DIRS)
                && dir.dyn_features() & dyn_features::INDEXED_DIR != 0);
        let bs = self.bs as usize;
        (trailers, if trailers { bs - 0x40 } else { bs })
    }
}

/// The repair of entry area `data` (at byte `area` of block `blkno`) whose
/// lengths do not add up: '.' given its length back when it grew over
/// '..', otherwise the first bad entry mended (fsck.ocfs2's way).
fn length_fix(data: &[u8], blkno: u64, area: usize, at: CheckAt) -> Option<Fix> {
    dot_shrinks(data, blkno, area, at).or_else(|| {
        first_bad_dirent(data).map(|off| Fix::SalvageDirent {
            blkno,
            area: area as u16,
            len: data.len() as u16,
            entry: off as u16,
            at,
        })
    })
}

/// A '.' whose rec_len grew over the '..' right after its own 16 bytes
/// (fswreck's DIRENT_DOT_EXCESS: the entries after it no longer add up):
/// the fix gives '.' its own length back. `data` is the entry area, at byte
/// `area` of block `blkno`.
fn dot_shrinks(data: &[u8], blkno: u64, area: usize, at: CheckAt) -> Option<Fix> {
    let dot = dir_rec_len(1);
    let h = data.get(..dot + DIR_MEMBER_LEN + 2)?;
    let rec_len = usize::from(u16::from_le_bytes([h[8], h[9]]));
    let dd = &h[dot..];
    let dd_len = usize::from(u16::from_le_bytes([dd[8], dd[9]]));
    let is_dotdot = dd[10] == 2 && &dd[DIR_MEMBER_LEN..DIR_MEMBER_LEN + 2] == b"..";
    (h[10] == 1
        && h[DIR_MEMBER_LEN] == b'.'
        && rec_len > dot
        && rec_len < dot + dir_rec_len(2)
        && is_dotdot
        && dd_len >= dir_rec_len(2)
        && dot + dd_len <= data.len())
    .then(|| {
        Set::fix(
            blkno,
            area + 8,
            2,
            dot as u64,
            at,
            "the '.' entry's rec_len",
        )
    })
}

/// Byte offset of the first entry of `data` whose lengths cannot be
/// trusted (fsck.ocfs2's test: rec_len at least one entry's, a multiple of
/// 4, inside the area, room for the name, and no sliver too small for an
/// entry left after it).
fn first_bad_dirent(data: &[u8]) -> Option<usize> {
    let mut off = 0;
    while off + DIR_MEMBER_LEN <= data.len() {
        let left = data.len() - off;
        let rec_len = usize::from(u16::from_le_bytes([data[off + 8], data[off + 9]]));
        let name_len = usize::from(data[off + 10]);
        let ok = rec_len >= dir_rec_len(1)
            && rec_len % 4 == 0
            && rec_len <= left
            && dir_rec_len(name_len) <= rec_len
            && !(left > rec_len && left - rec_len < DIR_MEMBER_LEN);
        if !ok {
            return Some(off);
        }
        off += rec_len;
    }
    (off < data.len()).then_some(off)
}
