//! Pass 0: the superblock, its backups and the slot map.

use super::*;

impl Checker<'_> {
    pub(super) fn pass0(&mut self) {
        let vol = self.vol;
        let sb = *vol.sb();
        let blocks = self.blocks();
        let f = vol.features();
        for (name, b, sysdir) in [
            ("s_root_blkno", sb.s_root_blkno.get(), false),
            ("s_system_dir_blkno", sb.s_system_dir_blkno.get(), true),
        ] {
            if b < 3 || b >= blocks {
                let f = Finding::new(
                    "SUPERBLOCK_FIELD",
                    Some(2),
                    None,
                    format!("{name} {b} is outside the volume (3..{blocks})"),
                );
                let fix = self
                    .find_top_dir(sysdir)
                    .map(|blkno| Fix::SuperBlkno { sysdir, blkno });
                self.findings.push(Finding { fix, ..f });
            }
        }
        let fcg = sb.s_first_cluster_group.get();
        if fcg >= blocks || fcg % self.bpc != 0 {
            self.add(
                "SUPERBLOCK_FIELD",
                Some(2),
                None,
                format!("s_first_cluster_group {fcg} is not a cluster start inside the volume"),
            );
        }
        if f.has_incompat(incompat::MMP) {
            let i = sb.s_mmp_update_interval.get();
            if !(1..=ocfs2_mmp::MAX_UPDATE_INTERVAL).contains(&i) {
                // Set to mkfs's default; the backups follow
                // (SUPERBLOCK_BACKUP) on the next round.
                self.add_fix(
                    "MMP_INTERVAL",
                    Some(2),
                    None,
                    format!(
                        "s_mmp_update_interval is {i}, outside 1 to {} seconds",
                        ocfs2_mmp::MAX_UPDATE_INTERVAL
                    ),
                    Set::fix(
                        vol.super_blkno(),
                        MMP_INTERVAL_OFFSET_IN_BLOCK,
                        2,
                        u64::from(ocfs2_mmp::DEFAULT_UPDATE_INTERVAL),
                        CheckAt::Inode,
                        "s_mmp_update_interval",
                    ),
                );
            }
            if !f.has_incompat(incompat::EXTENDED_SLOT_MAP) {
                self.add_fix(
                    "MMP_SLOTMAP_FORMAT",
                    Some(vol.super_blkno()),
                    None,
                    "MMP is on but the slot map is in the old format".into(),
                    Fix::ExtendSlotMap,
                );
            }
        }
        // Backups.
        if f.compat & compat::BACKUP_SB != 0 {
            let primary = vol.super_inode().buf;
            for b in vol.backup_super_blknos() {
                let Ok(buf) = vol.read_block(b) else { continue };
                if !buf.starts_with(SUPER_BLOCK_SIGNATURE) {
                    // Volumes too small for backups keep none; mkfs and
                    // tunefs write every one that fits.
                    self.add(
                        "SUPERBLOCK_BACKUP",
                        Some(b),
                        None,
                        format!("backup superblock {b} is missing"),
                    );
                    continue;
                }
                let mask = |x: &[u8]| {
                    let mut v = x.to_vec();
                    v[0x50..0x58].fill(0);
                    v[0x80..0x88].fill(0);
                    v
                };
                if mask(&buf) != mask(&primary) {
                    self.add_fix(
                        "SUPERBLOCK_BACKUP",
                        Some(b),
                        None,
                        format!("backup superblock {b} differs from the primary"),
                        Fix::RefreshBackups,
                    );
                }
            }
        }
        // A slot map rewrite tunefs.ocfs2-mmp did not finish: the map's
        // bytes say which format it reached; the slot map is not judged in
        // a format the superblock may not give it yet.
        if f.has_incompat(incompat::TUNEFS_INPROG)
            && sb.s_tunefs_flag.get() & TUNEFS_FLAG_SLOTMAP != 0
        {
            let reached = vol
                .system_inode("slot_map")
                .and_then(|b| vol.read_inode(b))
                .and_then(|ino| {
                    let need = usize::from(vol.max_slots()) * Format::Extended.entry_size();
                    vol.read_file(&ino, need as u64)
                })
                .ok()
                .and_then(|bytes| ocfs2_format::slotmap::empty_format_of(&bytes));
            let f = Finding::new(
                "TUNEFS_INPROG",
                Some(2),
                None,
                format!(
                    "an interrupted tunefs.ocfs2-mmp slot map rewrite (aborted-tunefs, s_tunefs_flag {:#x}); the map holds {}",
                    sb.s_tunefs_flag.get(),
                    reached.map_or("neither format's empty map".to_string(), |x| format!("an empty {} map", x.name()))
                ),
            );
            self.findings.push(Finding {
                fix: reached.map(|x| Fix::FinishSlotMap(x == Format::Extended)),
                ..f
            });
            return;
        }
        // A slot removal tunefs did not finish: the superblocks hold the new
        // count; the slots past it that the system directory still names
        // are removed in a round of their own (unslot::finish).
        if f.has_incompat(incompat::TUNEFS_INPROG)
            && sb.s_tunefs_flag.get() & ocfs2_format::unslot::TUNEFS_FLAG_REMOVE_SLOT != 0
        {
            self.findings.push(Finding {
                fix: Some(Fix::FinishRemoveSlots),
                ..Finding::new(
                    "TUNEFS_INPROG",
                    Some(2),
                    None,
                    format!(
                        "an interrupted removal of node slots (aborted-tunefs, s_tunefs_flag {:#x}): the volume keeps {} slots",
                        sb.s_tunefs_flag.get(),
                        vol.max_slots()
                    ),
                )
            });
            return;
        }
        // A resize tunefs did not finish: finished forward or back in a
        // round of its own (alloc::finish_resize).
        if f.has_incompat(incompat::RESIZE_INPROG) {
            let gb = vol
                .system_inode("global_bitmap")
                .and_then(|b| vol.read_inode(b))
                .map(|i| i.di().i_clusters.get());
            let how = match gb {
                Ok(c) if c > vol.clusters() => format!("its global bitmap holds {c} clusters: the superblocks get them"),
                Ok(_) => format!("its global bitmap holds the superblock's {} clusters: the last group goes back to them", vol.clusters()),
                Err(ref e) => format!("its global bitmap cannot be read ({e})"),
            };
            let f = Finding::new(
                "RESIZE_INPROG",
                Some(2),
                None,
                format!("an interrupted resize (aborted-resize); {how}"),
            );
            self.findings.push(Finding {
                fix: gb.is_ok().then_some(Fix::FinishResize),
                ..f
            });
        }
        // Slot map.
        match vol.slot_map_layout() {
            Err(e) => {
                // A map whose i_size is short of its slots is sized again
                // (`sysfile::size_slot_map`); other errors are reported.
                let need = vol.slot_map_bytes(vol.max_slots());
                let short = vol
                    .system_inode("slot_map")
                    .and_then(|b| vol.read_inode(b))
                    .ok()
                    .filter(|i| !i.is_inline() && i.size() < need);
                let f = Finding::new(
                    "SLOTMAP_SIZE",
                    short.as_ref().map(|i| i.blkno),
                    None,
                    format!("slot map: {e}"),
                );
                self.findings.push(Finding {
                    fix: short.map(|_| Fix::SizeSlotMap),
                    ..f
                });
            }
            Ok((_, runs)) => match vol.read_slot_map_runs(&runs) {
                Err(e) => self.add("SLOTMAP_SIZE", None, None, format!("slot map: {e}")),
                Ok(map) => {
                    let mmp = f.has_incompat(incompat::MMP);
                    for s in &map.slots {
                        if map.format == Format::Old {
                            if s.legacy_in_use(Format::Old) && s.raw as u16 >= MAX_SLOTS {
                                self.add(
                                    "SLOTMAP_VALUE",
                                    None,
                                    None,
                                    format!("slot {} holds node {} (beyond 254)", s.index, s.raw),
                                );
                            }
                            continue;
                        }
                        // A slot is freed only on a local volume without
                        // MMP: no other node can hold it, and a mount here
                        // is refused before any pass. With MMP the slots
                        // are the protocol's: a dead clustered node's
                        // VALID_CLUSTER stays for the clustered mount that
                        // recovers it (the same-kind rule), and the guard
                        // refuses an unknown value. On a clustered volume
                        // without MMP this tool cannot ask the cluster
                        // stack.
                        let free = (!mmp && f.has_incompat(incompat::LOCAL_MOUNT))
                            .then_some(Fix::FreeSlot(s.index));
                        let (code, message) = match MmpState::decode(s.raw) {
                            MmpState::Empty | MmpState::Fsck => continue, // Fsck: our own marker, or refused before we got here
                            MmpState::Clean if mmp => continue,
                            _ if self.recovered.contains(&s.index) => continue,
                            MmpState::Unknown(v) => (
                                "SLOTMAP_VALUE",
                                format!("slot {} holds {v:#010x}, outside the MMP protocol", s.index),
                            ),
                            MmpState::Clean => (
                                "SLOTMAP_VALUE",
                                format!("slot {} holds SEQ_CLEAN on a volume without MMP (older tools read it as held)", s.index),
                            ),
                            st => (
                                "SLOTMAP_HELD",
                                format!("slot {} is held: {} (node {})", s.index, st.describe(), s.node),
                            ),
                        };
                        let f = Finding::new(code, None, None, message);
                        self.findings.push(Finding { fix: free, ..f });
                    }
                }
            },
        }
    }
}

/// How far [`Checker::find_top_dir`] looks: mkfs.ocfs2 and ours make the
/// root and the system directory from the first group of the global inode
/// allocator, near the volume's start.
const TOP_DIR_SCAN_BYTES: u64 = 64 << 20;

impl Checker<'_> {
    /// Where the system directory (`sysdir`) or the root directory is when
    /// the superblock's pointer to it is lost: the backup superblocks' value
    /// first, else the one block near the volume's start that holds it (a
    /// valid directory, a system one or not, whose '.' and '..' name
    /// itself; only the system directory names global_bitmap). None when none,
    /// or more than one, is found.
    fn find_top_dir(&self, sysdir: bool) -> Option<u64> {
        for b in self.vol.backup_super_blknos() {
            let Ok(buf) = self.vol.read_block(b) else {
                continue;
            };
            if !buf.starts_with(SUPER_BLOCK_SIGNATURE) {
                continue;
            }
            let Ok((s, _)) = SuperBlock::read_from_prefix(&buf[DINODE_ID2..]) else {
                continue;
            };
            let at = if sysdir {
                s.s_system_dir_blkno.get()
            } else {
                s.s_root_blkno.get()
            };
            if self.is_top_dir(at, sysdir) {
                return Some(at);
            }
        }
        let end = self.blocks().min((TOP_DIR_SCAN_BYTES / self.bs).max(16384));
        let mut found = (3..end).filter(|&b| self.is_top_dir(b, sysdir));
        match (found.next(), found.next()) {
            (Some(b), None) => Some(b),
            _ => None,
        }
    }

    fn is_top_dir(&self, b: u64, sysdir: bool) -> bool {
        if b < 3 || b >= self.blocks() {
            return false;
        }
        let Ok(ino) = self.vol.read_inode(b) else {
            return false;
        };
        let di = ino.di();
        if di.i_blkno.get() != b
            || di.i_fs_generation.get() != self.generation
            || ino.flags() & inode_flags::VALID == 0
            || di.i_mode.get() & 0o170000 != 0o040000
        {
            return false;
        }
        let Ok(entries) = self.vol.dir_entries(&ino) else {
            return false;
        };
        let names = |n: &[u8]| entries.iter().any(|e| e.name == n && e.inode == b);
        // Both carry the system flag (mkfs.ocfs2 sets it on the root too):
        // the system directory is the one that names global_bitmap.
        names(b".") && names(b"..") && entries.iter().any(|e| e.name == b"global_bitmap") == sysdir
    }
}
