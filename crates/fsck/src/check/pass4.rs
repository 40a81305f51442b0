//! Pass 4: journals, local allocs and truncate logs (and, in quota.rs, the
//! global quota files).

use super::*;

impl Checker<'_> {
    /// The features of every slot's journal whose superblock is valid, and
    /// the 64-bit tags a volume with more than 2^32 blocks needs: what a
    /// journal formatted afresh gets (fsck.ocfs2 takes the same union).
    fn journal_features(&self, sys: &HashMap<String, u64>) -> JournalFeatures {
        let mut all = JournalFeatures::default();
        if self.blocks() > u64::from(u32::MAX) {
            all.incompat |= JBD2_FEATURE_INCOMPAT_64BIT;
        }
        for slot in 0..self.vol.max_slots() {
            let jsb = sys
                .get(&slot_file_name("journal", slot))
                .and_then(|&b| self.vol.journal_superblock(b).ok().flatten());
            if let Some(j) = jsb {
                all = all.union(JournalFeatures::of(&j));
            }
        }
        all
    }

    pub(super) fn pass4(&mut self, sys: &HashMap<String, u64>) {
        self.check_quota(sys);
        let bs = self.bs as usize;
        let mut journal_features = None;
        for slot in 0..self.vol.max_slots() {
            if let Some(&b) = sys.get(&slot_file_name("journal", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    let di = *ino.di();
                    if di.journal_flags() & JOURNAL_DIRTY_FL != 0 {
                        self.add("JOURNAL_NEEDS_RECOVERY", Some(b), None, format!("journal:{slot:04} is dirty: it needs recovery, and this run did not replay it (run with -y or -p)"));
                    }
                    match self.vol.extents(&ino) {
                        Ok(ext) if !ext.is_empty() => {
                            let first = ext[0].blkno;
                            let fits = self.vol.read_block(first).map(|blk| {
                                JournalSuperblock::read_from_prefix(&blk).ok().is_some_and(
                                    |(j, _)| {
                                        j.is_valid()
                                            && j.s_blocksize.get() == self.bs as u32
                                            && u64::from(j.s_maxlen.get())
                                                <= u64::from(di.i_clusters.get()) * self.bpc
                                    },
                                )
                            });
                            let why = match fits {
                                Ok(true) => None,
                                Ok(false) => Some(format!("journal:{slot:04}: block {first} is not a fitting jbd2 superblock")),
                                Err(e) => Some(format!("journal:{slot:04}: {e}")),
                            };
                            if let Some(why) = why {
                                let features = journal_features
                                    .get_or_insert_with(|| self.journal_features(sys));
                                let fix = Fix::ResetJournal {
                                    inode: b,
                                    features: *features,
                                };
                                self.add_fix("JOURNAL_SUPERBLOCK", Some(first), Some(b), why, fix);
                            }
                        }
                        Ok(_) => self.add(
                            "JOURNAL_SUPERBLOCK",
                            Some(b),
                            None,
                            format!("journal:{slot:04} has no blocks"),
                        ),
                        Err(e) => self.add("JOURNAL_SUPERBLOCK", Some(b), None, e.to_string()),
                    }
                }
            }
            if let Some(&b) = sys.get(&slot_file_name("local_alloc", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok((la, _)) = LocalAlloc::read_from_prefix(ino.id2()) {
                        let size = usize::from(la.la_size.get());
                        if size > local_alloc_size(bs) {
                            self.add(
                                "LALLOC_SIZE",
                                Some(b),
                                None,
                                format!(
                                    "local_alloc:{slot:04}: la_size {size} > {}",
                                    local_alloc_size(bs)
                                ),
                            );
                        } else {
                            let total = u64::from(ino.di().bitmap_total());
                            let used = u64::from(ino.di().bitmap_used());
                            let off = u64::from(la.la_bm_off.get());
                            self.check_local_alloc_bits(b, slot, &ino, size, off, total, used);
                            if total > 0 && total <= size as u64 * 8 {
                                if off + total > self.clusters {
                                    self.add("LALLOC_BM_OVERRUN", Some(b), None, format!("local_alloc:{slot:04}: window {off}+{total} past the end"));
                                } else {
                                    // The window is held in the global bitmap.
                                    for c in off..off + total {
                                        self.used.set(c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(&b) = sys.get(&slot_file_name("truncate_log", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok((tl, rest)) = TruncateLog::read_from_prefix(ino.id2()) {
                        let max = (bs - DINODE_ID2 - 8) / 8;
                        if usize::from(tl.tl_count.get()) != max {
                            self.add(
                                "DEALLOC_COUNT",
                                Some(b),
                                None,
                                format!(
                                    "truncate_log:{slot:04}: tl_count {} (expected {max})",
                                    tl.tl_count.get()
                                ),
                            );
                        }
                        let used = usize::from(tl.tl_used.get());
                        if used > usize::from(tl.tl_count.get()) || used > max {
                            self.add(
                                "DEALLOC_USED",
                                Some(b),
                                None,
                                format!("truncate_log:{slot:04}: tl_used {used} > tl_count"),
                            );
                        } else {
                            for k in 0..used {
                                let r = TruncateRec::read_from_prefix(&rest[k * 8..])
                                    .expect("8 bytes")
                                    .0;
                                let (s, n) =
                                    (u64::from(r.t_start.get()), u64::from(r.t_clusters.get()));
                                if s + n > self.clusters {
                                    self.add("TRUNCATE_REC_RANGE", Some(b), None, format!("truncate_log:{slot:04}: record {k} {s}+{n} past the end"));
                                } else {
                                    for c in s..s + n {
                                        self.used.set(c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A local alloc's counts: an empty window has no used bits and no
    /// offset; a window fits its bitmap, and `i_used` is its set bits.
    #[allow(clippy::too_many_arguments)]
    fn check_local_alloc_bits(
        &mut self,
        b: u64,
        slot: u16,
        ino: &Inode,
        size: usize,
        off: u64,
        total: u64,
        used: u64,
    ) {
        let name = slot_file_name("local_alloc", slot);
        if total == 0 {
            if used != 0 {
                self.add(
                    "LALLOC_NZ_USED",
                    Some(b),
                    None,
                    format!("{name}: no window, but i_used {used}"),
                );
            }
            if off != 0 {
                self.add(
                    "LALLOC_NZ_BM",
                    Some(b),
                    None,
                    format!("{name}: no window, but la_bm_off {off}"),
                );
            }
            return;
        }
        if total > size as u64 * 8 {
            self.add(
                "LALLOC_BM_SIZE",
                Some(b),
                None,
                format!(
                    "{name}: a window of {total} bits, but its bitmap holds {}",
                    size * 8
                ),
            );
            return;
        }
        if used > total {
            self.add(
                "LALLOC_USED_OVERRUN",
                Some(b),
                None,
                format!("{name}: i_used {used} exceeds the {total} bits of its window"),
            );
            return;
        }
        let at = core::mem::size_of::<LocalAlloc>();
        let set = count_set(&ino.id2()[at..at + size], total);
        if set != used {
            self.add(
                "LALLOC_USED",
                Some(b),
                None,
                format!("{name}: i_used {used}, its bitmap has {set} bits set"),
            );
        }
    }
}
