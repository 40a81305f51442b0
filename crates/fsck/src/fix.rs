//! What a repair does to the volume, one [`Fix`] per kind. The passes attach
//! a fix to a finding where they know the repair; repair.rs decides and
//! orders them. Every fix here rewrites one block (read, change, recompute
//! its metaecc check, write), so a crash leaves each block either old or
//! new, and the next run finds whatever is still wrong.

use anyhow::{bail, Context, Result};
use ocfs2_format::blockcheck::CheckAt;
use ocfs2_format::fs::slot_file_name;
use ocfs2_format::link;
use ocfs2_format::ondisk::*;
use ocfs2_format::zerocopy::{FromBytes, IntoBytes};
use ocfs2_format::Volume;

/// A field of a metadata block set to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set {
    pub blkno: u64,
    /// Byte offset of the field in the block.
    pub off: u16,
    /// 1, 2, 4 or 8 bytes, little-endian.
    pub width: u8,
    pub value: u64,
    pub at: CheckAt,
    /// The field's on-disk name, for the question.
    pub field: &'static str,
}

/// A repair the passes prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Recompute a chain allocator's counts from its bitmaps (its inode).
    Recount(u64),
    /// Make the global bitmap agree with the clusters in use
    /// (`Checker::bitmap_diff`).
    GlobalBitmap,
    /// Set an inode's link count (inode, the entries that name it).
    Links(u64, u32),
    /// Set one field.
    Set(Set),
    /// Remove record `index` of the extent list whose header is at byte
    /// `list` of block `blkno`; the records after it move up. A list left
    /// empty gets depth 0 (an empty tree).
    DropExtent {
        blkno: u64,
        list: u16,
        index: u16,
        at: CheckAt,
    },
    /// Remove chain record `index` of the chain allocator inode `blkno`;
    /// the chains after it move up (their groups' `bg_chain` follows on the
    /// next round).
    DropChain { blkno: u64, index: u16 },
    /// Remove record `index` of refcount block `blkno`'s record list.
    DropRefcount { blkno: u64, index: u16 },
    /// Empty a local alloc (its inode): the window's clusters go back to
    /// the global bitmap through [`Fix::GlobalBitmap`] on the next round.
    EmptyLocalAlloc(u64),
    /// Empty a truncate log (its inode), with `tl_count` set right; its
    /// clusters are freed through [`Fix::GlobalBitmap`] on the next round.
    EmptyTruncateLog(u64),
    /// Clear bit `bit` of group descriptor `group` (an inode allocator bit
    /// that names no valid inode).
    FreeBit { group: u64, bit: u16 },
    /// Set the superblock's `i_clusters`: the backups first, the primary
    /// last.
    SuperClusters(u32),
    /// Set the superblock's `s_system_dir_blkno` (`sysdir`) or
    /// `s_root_blkno` to `blkno`: the backups first, the primary last.
    SuperBlkno { sysdir: bool, blkno: u64 },
    /// Put every group of the global bitmap (its inode) back on its chains
    /// (`alloc::relink_global_groups`).
    RelinkGlobal(u64),
    /// Mend the directory entry at byte `entry` of the entry area that
    /// starts at byte `area` of block `blkno` and is `len` bytes long, the
    /// way fsck.ocfs2 mends one whose lengths cannot be trusted
    /// ([`salvage_dirent`]).
    SalvageDirent {
        blkno: u64,
        area: u16,
        len: u16,
        entry: u16,
        at: CheckAt,
    },
    /// Shrink the '.' entry at byte `entry` of block `blkno` to its own
    /// length; the entry after it moves up and takes the excess over (a
    /// free entry takes it when there is none).
    SplitDot { blkno: u64, entry: u16, at: CheckAt },
    /// Wipe an orphan as the kernel's recovery does: the inode loses its
    /// valid flag (and gets a dtime), its orphan directory entry is cleared,
    /// its allocator bit freed; its clusters are freed on the next round.
    /// In that order, so that a crash leaves an entry naming an invalid
    /// inode and a bit naming no valid inode, which the next run repairs.
    WipeOrphan {
        inode: u64,
        entry_blkno: u64,
        entry_off: u16,
        entry_at: CheckAt,
        group: u64,
        bit: u16,
    },
    /// Name `inode` `#<inode>` in the root's lost+found (looked up when
    /// written: it may be made earlier in the same round); a directory's
    /// '..' then points at lost+found (`link::reconnect`).
    Reconnect { inode: u64, ftype: u8 },
    /// Give extent record `index` of the list at byte `list` of block
    /// `blkno` copies of its `clusters` clusters (from block `from`), which
    /// another owner claims too: new consecutive clusters are taken, the
    /// data copied, then the record pointed at them (in that order: a
    /// crash leaves clusters marked that nothing uses, which the next run
    /// frees).
    CloneExtent {
        blkno: u64,
        list: u16,
        index: u16,
        at: CheckAt,
        from: u64,
        clusters: u32,
    },
    /// Make refcount tree root `blkno`, whose extent list of leaves is
    /// empty, a root that holds its records itself: the tree flag off and
    /// an empty record list.
    UntreeRefcount(u64),
    /// Insert a refcount record (`cpos`, `clusters`, `count`) at `index` of
    /// refcount block `blkno`'s list; the records from there move down one.
    InsertRefcount {
        blkno: u64,
        index: u16,
        cpos: u64,
        clusters: u32,
        count: u32,
    },
    /// Recompute block `blkno`'s metaecc check (written as it is).
    Recheck { blkno: u64, at: CheckAt },
    /// Set bit `bit` of group `group` of inode allocator `alloc` (a valid
    /// inode whose bit was clear), its counts with it (`alloc::take_bit`).
    TakeBit { alloc: u64, group: u64, bit: u16 },
    /// Take directory `.0`'s index away (`dxtree::drop`: the inode first,
    /// then what of the index can be read is freed).
    DropIndex(u64),
    /// Build directory `.0`'s index again (`dxtree::drop`, then
    /// `dxtree::build`: leaves, root, then the inode), from clusters the
    /// passes found free.
    RebuildIndex(u64),
    /// Mend the extended attribute storage of `len` bytes at byte `off` of
    /// block `blkno` (of the bucket starting there, for a bucket) as
    /// `xattr::mend_header` mends it: bad entries removed, counts, hashes
    /// and a bucket's free-space fields set. Every finding of one storage
    /// shares this fix.
    MendXattr {
        blkno: u64,
        off: u16,
        len: u16,
        at: CheckAt,
        storage: ocfs2_format::xattr::Storage,
    },
    /// Write group `index` of the global bitmap (inode `bitmap`) afresh at
    /// its block, which holds no descriptor, its bitmap from the clusters
    /// the passes found in use (`alloc::rebuild_global_group`); the groups
    /// are relinked and counted on the next rounds.
    RebuildGlobalGroup { bitmap: u64, index: u64 },
    /// Write every backup superblock as a copy of the primary (its own
    /// i_blkno and block check), then the primary as it is.
    RefreshBackups,
    /// Rebuild the quota files of a type (`quota::rebuild`): limits kept,
    /// usage counted afresh from the inodes, local files emptied. Applied
    /// in a round with no other fix: the usage is read from the inodes as
    /// the other repairs leave them.
    RebuildQuota(ocfs2_format::quota::QuotaType),
    /// Rebuild refcount tree `.0` from the refcounted extents of the
    /// inodes that name it (`refcount::rebuild`): for records its leaves
    /// have no room for. Applied in a round with no other fix.
    RebuildRefcount(u64),
    /// Finish an interrupted resize (`alloc::finish_resize`).
    FinishResize,
    /// Finish an interrupted removal of node slots down to the
    /// superblock's count (`unslot::finish`), then clear the aborted-tunefs
    /// mark in every superblock copy.
    FinishRemoveSlots,
    /// Clear the inline-data flag of inode `.0` on a volume without the
    /// feature (its id2 is read as an extent list from then on): a round
    /// of its own.
    ClearInlineFlag(u64),
    /// Format journal inode `inode` afresh (`Volume::format_journal`'s
    /// order), with `features`: those of the slots' valid journals, as
    /// fsck.ocfs2 regenerates a journal whose superblock is unusable.
    ResetJournal {
        inode: u64,
        features: ocfs2_format::journal::JournalFeatures,
    },
    /// Finish an interrupted slot map rewrite: every superblock copy gets
    /// the format the map holds (extended or not) and loses the
    /// aborted-tunefs flag and its s_tunefs_flag bit (backups first, the
    /// primary last).
    FinishSlotMap(bool),
    /// MMP on with the old slot map: the map rewritten empty in the
    /// extended format (`format::inprog::convert_slot_map`). fsck makes it
    /// before it takes the volume (lib.rs); here for `-n`'s report.
    ExtendSlotMap,
    /// The slot map's `i_size` short of its slots: sized as libocfs2 sizes
    /// it (`sysfile::size_slot_map`).
    SizeSlotMap,
    /// Name system inode `inode` in the system directory again, as
    /// per-slot file `base` of slot `slot` (pass 6 found it unnamed, of the
    /// one missing file's type).
    LinkSystemFile {
        inode: u64,
        base: &'static str,
        slot: u16,
    },
    /// Make every per-slot system file the system directory does not name,
    /// as tunefs's -N makes a new slot's (`sysfile::add_slot_files`), the
    /// journals sized like the first one's.
    MakeSlotFiles,
    /// Write a new descriptor for the inode allocator group at `group`
    /// (chain `chain` of allocator inode `alloc`), whose block holds none:
    /// its bits from the chain list, bit 0 and each block's bit that holds
    /// a valid inode of that bit set, the end of its chain.
    RebuildInodeGroup { alloc: u64, group: u64, chain: u16 },
    /// Make slot map entry `slot` free (what the kernel's recovery leaves
    /// for a dead node's slot), written alone past the page cache.
    FreeSlot(u16),
    /// Clear inode `inode` (fsck.ocfs2's "clear the inode"): it loses its
    /// valid flag and gets a dtime, then its allocator bit (`bit` of
    /// `group`) is freed; the next round clears the entries that name it
    /// and frees its clusters. A crash in between leaves a bit naming an
    /// invalid inode, which the next run frees.
    ClearInode { inode: u64, group: u64, bit: u16 },
    /// Write a NUL at byte `off` of block `blkno`, ending a symlink's
    /// target: the inode's block (`inode`, its check recomputed) or a data
    /// block (no check).
    EndTarget { blkno: u64, off: u16, inode: bool },
    /// Rewrite the trailer of directory block `blkno` (of directory
    /// `parent`): signature, its length, the block and the directory; the
    /// index's free-space fields stay.
    DirTrailer { blkno: u64, parent: u64 },
    /// Point directory `dir`'s '..' at `parent`, the directory that names
    /// it.
    DotDot { dir: u64, parent: u64 },
    /// Make lost+found: a new empty directory from slot 0's inode
    /// allocator, named in the root (`link::make_subdir`'s order).
    MakeLostFound { root: u64 },
    /// Give directory `blkno`, which has no blocks, '.' and '..' (->
    /// `parent`) back (`link::refill_dir`); the entry that names it, its
    /// mode and owner stay.
    InitDir { blkno: u64, parent: u64 },
    /// Write an empty root directory into inode block `blkno`, whose
    /// allocator bit (`slot`, `bit` of `group`) is set, with a new
    /// lost+found in it: what the old root named is reconnected there.
    InitRoot {
        blkno: u64,
        slot: u16,
        bit: u16,
        group: u64,
    },
}

impl Set {
    /// The fix that sets this field.
    pub fn fix(
        blkno: u64,
        off: usize,
        width: u8,
        value: u64,
        at: CheckAt,
        field: &'static str,
    ) -> Fix {
        Fix::Set(Set {
            blkno,
            off: off as u16,
            width,
            value,
            at,
            field,
        })
    }
}

impl Fix {
    /// A fix applied in a round of its own: what the other fixes of its
    /// round were computed from changes under them.
    pub fn alone(&self) -> bool {
        matches!(
            self,
            Fix::SuperClusters(_)
                | Fix::SuperBlkno { .. }
                | Fix::RelinkGlobal(_)
                | Fix::FinishSlotMap(_)
                | Fix::ExtendSlotMap
                | Fix::SizeSlotMap
                | Fix::RefreshBackups
                | Fix::ClearInlineFlag(_)
                | Fix::FinishResize
                | Fix::FinishRemoveSlots
        )
    }

    /// A fix left until no other fix is pending.
    pub fn last(&self) -> bool {
        matches!(
            self,
            Fix::RebuildQuota(_) | Fix::RebuildRefcount(_) | Fix::MakeSlotFiles
        )
    }

    /// A fix that takes a new inode or cluster: applied after the one-block
    /// fixes, from the clusters the passes found free (repair.rs).
    pub fn allocates(&self) -> bool {
        matches!(
            self,
            Fix::MakeLostFound { .. }
                | Fix::RebuildGlobalGroup { .. }
                | Fix::InitRoot { .. }
                | Fix::InitDir { .. }
                | Fix::CloneExtent { .. }
                | Fix::RebuildIndex(_)
        )
    }

    /// A fix that needs lost+found: applied after the fixes that make it.
    pub fn needs_lost_found(&self) -> bool {
        matches!(self, Fix::Reconnect { .. })
    }

    /// The question put to a person (without its question mark).
    pub fn question(&self) -> String {
        match *self {
            Fix::GlobalBitmap => {
                "the global bitmap disagrees with the clusters in use: make it agree".into()
            }
            Fix::Recount(a) => {
                format!("the counts of allocator inode {a} disagree with its bitmaps: recompute them")
            }
            Fix::Links(a, n) => format!("inode {a}: set its link count to the {n} entries that name it"),
            Fix::Set(s) if s.field.ends_with("signature") => {
                let bytes = s.value.to_le_bytes();
                let text = String::from_utf8_lossy(&bytes[..usize::from(s.width)]);
                format!("block {}: write back the signature {}", s.blkno, text.trim_end_matches('\0'))
            }
            Fix::Set(s) => format!("block {}: set {} to {}", s.blkno, s.field, s.value),
            Fix::DropExtent { blkno, index, .. } => {
                format!("block {blkno}: remove extent record {index} (the data it maps is lost)")
            }
            Fix::DropChain { blkno, index } => {
                format!("allocator inode {blkno}: remove empty chain {index}")
            }
            Fix::DropRefcount { blkno, index } => {
                format!("refcount block {blkno}: remove record {index}")
            }
            Fix::EmptyLocalAlloc(b) => {
                format!("local alloc inode {b}: empty it (its unused clusters go back to the global bitmap)")
            }
            Fix::EmptyTruncateLog(b) => {
                format!("truncate log inode {b}: empty it (the clusters it held are freed)")
            }
            Fix::FreeBit { group, bit } => {
                format!("group {group}: clear allocation bit {bit}, which names no valid inode")
            }
            Fix::SuperClusters(n) => format!("superblock: set i_clusters to the global bitmap's {n}"),
            Fix::SuperBlkno { sysdir, blkno } => format!(
                "superblock: set {} to {blkno}, where the {} was found",
                if sysdir { "s_system_dir_blkno" } else { "s_root_blkno" },
                if sysdir { "system directory" } else { "root directory" }
            ),
            Fix::RelinkGlobal(b) => {
                format!("global bitmap inode {b}: put every group back on its chains")
            }
            Fix::SalvageDirent { blkno, entry, .. } => format!(
                "block {blkno}: mend the directory entry at byte {entry} whose lengths are wrong (an entry that cannot be read is cleared)"
            ),
            Fix::SplitDot { blkno, entry, .. } => format!(
                "block {blkno}: shrink the '.' entry at byte {entry} and move the next entry up into its excess"
            ),
            Fix::WipeOrphan { inode, .. } => {
                format!("orphan inode {inode}: free it, as the kernel's recovery would")
            }
            Fix::Reconnect { inode, .. } => format!("inode {inode}: name it #{inode} in lost+found"),
            Fix::DirTrailer { blkno, parent } => {
                format!("directory {parent} block {blkno}: rewrite its trailer")
            }
            Fix::CloneExtent {
                blkno, index, clusters, ..
            } => format!(
                "block {blkno}: give extent record {index} its own copy of its {clusters} cluster(s), which another owner claims too"
            ),
            Fix::Recheck { blkno, .. } => {
                format!("block {blkno}: recompute its block check")
            }
            Fix::DropIndex(d) => format!("directory {d}: take its index away"),
            Fix::TakeBit { group, bit, .. } => {
                format!("group {group}: set bit {bit}, the valid inode's")
            }
            Fix::RebuildIndex(d) => format!("directory {d}: build its index"),
            Fix::MendXattr { blkno, storage, .. } => format!(
                "block {blkno}: mend the extended attributes of this {} (bad entries removed, counts and hashes set)",
                storage.name()
            ),
            Fix::UntreeRefcount(b) => format!(
                "refcount tree {b}: it has no leaves left: keep its records in its root"
            ),
            Fix::InsertRefcount {
                blkno,
                cpos,
                clusters,
                count,
                ..
            } => format!(
                "refcount block {blkno}: add a record of refcount {count} for clusters {cpos}+{clusters}"
            ),
            Fix::RebuildGlobalGroup { index, .. } => {
                format!("global bitmap: write the descriptor of group {index} afresh")
            }
            Fix::RebuildRefcount(b) => format!(
                "refcount tree {b}: rebuild it from the extents that share its clusters"
            ),
            Fix::RebuildQuota(t) => format!(
                "{}: rebuild it (limits kept, usage counted from the inodes, local files emptied)",
                t.global_name()
            ),
            Fix::FinishResize => {
                "finish the interrupted resize (forward when the global bitmap has the new size, else back)".into()
            }
            Fix::FinishRemoveSlots => {
                "finish removing the node slots past the superblock's count".into()
            }
            Fix::ClearInlineFlag(b) => format!("inode {b}: clear its inline-data flag"),
            Fix::ResetJournal { inode, .. } => {
                format!("journal inode {inode}: format its log afresh (what it held is lost)")
            }
            Fix::RefreshBackups => {
                "superblock: copy the primary into every backup superblock".into()
            }
            Fix::FinishSlotMap(extended) => format!(
                "superblock: finish the slot map rewrite ({} format) and clear the aborted-tunefs flag",
                if extended { "extended" } else { "old" }
            ),
            Fix::ExtendSlotMap => {
                "slot map: rewrite it empty in the extended format, which MMP needs".into()
            }
            Fix::SizeSlotMap => {
                "slot map: grow it to hold every slot (the new entries empty)".into()
            }
            Fix::FreeSlot(slot) => format!("slot map: make slot {slot} free"),
            Fix::RebuildInodeGroup { alloc, group, .. } => format!(
                "block {group}: write a new group descriptor of allocator inode {alloc}, from the inodes it holds"
            ),
            Fix::LinkSystemFile { inode, base, slot } => format!(
                "system directory: name inode {inode} {} again",
                slot_file_name(base, slot)
            ),
            Fix::MakeSlotFiles => "system directory: make the per-slot system files it lacks".into(),
            Fix::ClearInode { inode, .. } => format!(
                "inode {inode}: clear it (the entries that name it are cleared and its clusters freed next)"
            ),
            Fix::EndTarget { blkno, off, .. } => {
                format!("block {blkno}: end the symlink's target at byte {off} (its i_size)")
            }
            Fix::DotDot { dir, parent } => {
                format!("directory {dir}: point its '..' at {parent}, the directory that names it")
            }
            Fix::MakeLostFound { root } => {
                format!("make lost+found in the root directory (inode {root})")
            }
            Fix::InitDir { blkno, parent, .. } => {
                format!("directory {blkno}: write '.' and '..' (-> {parent}) back into it")
            }
            Fix::InitRoot { blkno, .. } => format!(
                "inode {blkno}: make it an empty root directory (what no directory names then goes to lost+found)"
            ),
        }
    }

    /// Write a one-block fix. The allocator-wide ones ([`Fix::GlobalBitmap`],
    /// [`Fix::Recount`], [`Fix::Links`]) are repair.rs's.
    pub fn write(&self, vol: &Volume) -> Result<()> {
        match *self {
            Fix::Set(s) => edit(vol, s.blkno, s.at, |buf| {
                let end = usize::from(s.off) + usize::from(s.width);
                let Some(field) = buf.get_mut(usize::from(s.off)..end) else {
                    bail!("field {} at byte {} is outside the block", s.field, s.off);
                };
                field.copy_from_slice(&s.value.to_le_bytes()[..usize::from(s.width)]);
                Ok(())
            }),
            Fix::DropExtent {
                blkno,
                list,
                index,
                at,
            } => edit(vol, blkno, at, |buf| {
                drop_record(buf, usize::from(list), Records::Extents, usize::from(index))
            }),
            Fix::DropChain { blkno, index } => edit(vol, blkno, CheckAt::Inode, |buf| {
                drop_record(buf, DINODE_ID2, Records::Chains, usize::from(index))
            }),
            Fix::DropRefcount { blkno, index } => edit(vol, blkno, CheckAt::RefcountBlock, |buf| {
                drop_record(
                    buf,
                    refcount_block::LIST,
                    Records::Refcounts,
                    usize::from(index),
                )
            }),
            Fix::EmptyLocalAlloc(b) => {
                let bs = vol.block_size() as usize;
                edit(vol, b, CheckAt::Inode, |buf| {
                    let room = local_alloc_size(bs);
                    let hdr = core::mem::size_of::<LocalAlloc>();
                    let (mut la, _) = LocalAlloc::read_from_prefix(&buf[DINODE_ID2..])
                        .map_err(|_| anyhow::anyhow!("local alloc header truncated"))?;
                    la.la_bm_off.set(0);
                    la.la_size.set(room as u16);
                    buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(la.as_bytes());
                    buf[DINODE_ID2 + hdr..DINODE_ID2 + hdr + room].fill(0);
                    let di = Dinode::mut_from_prefix(buf)
                        .expect("block holds an inode")
                        .0;
                    di.set_bitmap_used(0);
                    di.set_bitmap_total(0);
                    Ok(())
                })
            }
            Fix::EmptyTruncateLog(b) => {
                let bs = vol.block_size() as usize;
                edit(vol, b, CheckAt::Inode, |buf| {
                    let hdr = core::mem::size_of::<TruncateLog>();
                    let max = (bs - DINODE_ID2 - hdr) / core::mem::size_of::<TruncateRec>();
                    let (mut tl, _) = TruncateLog::read_from_prefix(&buf[DINODE_ID2..])
                        .map_err(|_| anyhow::anyhow!("truncate log header truncated"))?;
                    tl.tl_count.set(max as u16);
                    tl.tl_used.set(0);
                    buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(tl.as_bytes());
                    buf[DINODE_ID2 + hdr..].fill(0);
                    Ok(())
                })
            }
            Fix::FreeBit { group, bit } => edit(vol, group, CheckAt::GroupDesc, |buf| {
                let hdr = core::mem::size_of::<GroupDesc>();
                let byte = hdr + usize::from(bit) / 8;
                match buf.get_mut(byte) {
                    Some(b) => *b &= !(1 << (bit % 8)),
                    None => bail!("bit {bit} is outside the group's bitmap"),
                }
                Ok(())
            }),
            Fix::SuperClusters(n) => edit_supers(vol, |buf| {
                let (di, _) = Dinode::mut_from_prefix(buf).expect("block holds an inode");
                di.i_clusters.set(n);
            }),
            Fix::SuperBlkno { sysdir, blkno } => edit_supers(vol, |buf| {
                let (s, _) =
                    SuperBlock::mut_from_prefix(&mut buf[DINODE_ID2..]).expect("a superblock fits");
                if sysdir {
                    s.s_system_dir_blkno.set(blkno);
                } else {
                    s.s_root_blkno.set(blkno);
                }
            }),
            Fix::RelinkGlobal(b) => Ok(ocfs2_format::alloc::relink_global_groups(vol, b)?),
            Fix::SplitDot { blkno, entry, at } => edit(vol, blkno, at, |buf| {
                let off = usize::from(entry);
                let Some(d) = buf.get_mut(off..off + DIR_MEMBER_LEN) else {
                    bail!("the entry at byte {off} is outside the block");
                };
                let rec_len = usize::from(u16::from_le_bytes([d[8], d[9]]));
                let own = dir_rec_len(1);
                if rec_len < own + DIR_MEMBER_LEN || off + rec_len > buf.len() {
                    bail!("the '.' entry's rec_len {rec_len} leaves no room for another entry");
                }
                buf[off + 8..off + 10].copy_from_slice(&(own as u16).to_le_bytes());
                let excess = rec_len - own;
                // The entry after '.' (normally '..') moves up into the
                // excess and takes it over: fsck.ocfs2 wants '..' right
                // after '.', with no free entry between them.
                let after = off + rec_len;
                let moved = buf
                    .get(after..after + DIR_MEMBER_LEN)
                    .map(|h| {
                        (
                            usize::from(u16::from_le_bytes([h[8], h[9]])),
                            dir_rec_len(usize::from(h[10])),
                        )
                    })
                    .filter(|&(r, need)| r >= need && after + r <= buf.len());
                match moved {
                    Some((r, need)) => {
                        buf.copy_within(after..after + need, off + own);
                        buf[off + own + need..after + need.min(r)].fill(0);
                        let at = off + own + 8;
                        buf[at..at + 2].copy_from_slice(&((r + excess) as u16).to_le_bytes());
                    }
                    None => {
                        let next = &mut buf[off + own..off + own + DIR_MEMBER_LEN];
                        next.fill(0);
                        next[8..10].copy_from_slice(&(excess as u16).to_le_bytes());
                    }
                }
                Ok(())
            }),
            Fix::SalvageDirent {
                blkno,
                area,
                len,
                entry,
                at,
            } => edit(vol, blkno, at, |buf| {
                let (a, n) = (usize::from(area), usize::from(len));
                let Some(entries) = buf.get_mut(a..a + n) else {
                    bail!("the entry area {a}+{n} is outside the block");
                };
                salvage_dirent(entries, usize::from(entry))
            }),
            Fix::WipeOrphan {
                inode,
                entry_blkno,
                entry_off,
                entry_at,
                group,
                bit,
            } => {
                invalidate(vol, inode)?;
                Set::fix(
                    entry_blkno,
                    usize::from(entry_off),
                    8,
                    0,
                    entry_at,
                    "the entry's inode",
                )
                .write(vol)?;
                Fix::FreeBit { group, bit }.write(vol)
            }
            Fix::Recheck { blkno, at } => edit(vol, blkno, at, |_| Ok(())),
            Fix::DropIndex(d) => ocfs2_format::dxtree::drop(vol, d).map_err(anyhow::Error::from),
            Fix::TakeBit { alloc, group, bit } => {
                ocfs2_format::alloc::take_bit(vol, alloc, group, bit).map_err(anyhow::Error::from)
            }
            Fix::MendXattr {
                blkno,
                off,
                len,
                at,
                storage,
            } => edit(vol, blkno, at, |buf| {
                let (off, len) = (usize::from(off), usize::from(len));
                let Some(area) = buf.get_mut(off..off + len) else {
                    bail!("attribute storage at byte {off} ({len} bytes) is outside the block");
                };
                let uuid_hash = vol.sb().s_uuid_hash.get();
                ocfs2_format::xattr::mend_header(area, storage, uuid_hash);
                Ok(())
            }),
            Fix::UntreeRefcount(b) => edit(vol, b, CheckAt::RefcountBlock, |buf| {
                use ocfs2_format::ondisk::refcount_block::{FLAGS, LIST, RL_COUNT, TREE_FL};
                let flags = u32::from_le_bytes(buf[FLAGS..FLAGS + 4].try_into().expect("4"));
                let next = u16::from_le_bytes([buf[LIST + 4], buf[LIST + 5]]);
                if flags & TREE_FL == 0 || next != 0 {
                    bail!("not a refcount tree without leaves");
                }
                let room = (buf.len() - LIST - 16) / 16;
                buf[FLAGS..FLAGS + 4].copy_from_slice(&(flags & !TREE_FL).to_le_bytes());
                buf[LIST..].fill(0);
                buf[RL_COUNT..RL_COUNT + 2].copy_from_slice(&(room as u16).to_le_bytes());
                Ok(())
            }),
            Fix::InsertRefcount {
                blkno,
                index,
                cpos,
                clusters,
                count,
            } => edit(vol, blkno, CheckAt::RefcountBlock, |buf| {
                use ocfs2_format::ondisk::refcount_block::{LIST, RL_COUNT, RL_USED};
                let used = usize::from(u16::from_le_bytes([buf[RL_USED], buf[RL_USED + 1]]));
                let room = usize::from(u16::from_le_bytes([buf[RL_COUNT], buf[RL_COUNT + 1]]));
                let i = usize::from(index);
                let first = LIST + 16;
                if used >= room || i > used || first + (used + 1) * 16 > buf.len() {
                    bail!("no room for record {i} (rl_used {used}, rl_count {room})");
                }
                buf.copy_within(first + i * 16..first + used * 16, first + (i + 1) * 16);
                let r = &mut buf[first + i * 16..first + (i + 1) * 16];
                r[..8].copy_from_slice(&cpos.to_le_bytes());
                r[8..12].copy_from_slice(&clusters.to_le_bytes());
                r[12..16].copy_from_slice(&count.to_le_bytes());
                buf[RL_USED..RL_USED + 2].copy_from_slice(&((used + 1) as u16).to_le_bytes());
                Ok(())
            }),
            Fix::RebuildRefcount(b) => Ok(ocfs2_format::refcount::rebuild(vol, b)?),
            Fix::RebuildQuota(t) => Ok(ocfs2_format::quota::rebuild(vol, t)?),
            Fix::FinishResize => Ok(ocfs2_format::alloc::finish_resize(vol)?),
            Fix::FinishRemoveSlots => {
                use ocfs2_format::features::incompat;
                use ocfs2_format::unslot::TUNEFS_FLAG_REMOVE_SLOT;
                ocfs2_format::unslot::finish(vol, vol.max_slots(), &|| Ok(()))?;
                let mut sb = *vol.sb();
                let flags = sb.s_tunefs_flag.get() & !TUNEFS_FLAG_REMOVE_SLOT;
                sb.s_tunefs_flag.set(flags);
                if flags == 0 {
                    sb.s_feature_incompat
                        .set(sb.s_feature_incompat.get() & !incompat::TUNEFS_INPROG);
                }
                vol.write_super_everywhere(&sb)?;
                Ok(())
            }
            Fix::ClearInlineFlag(b) => edit(vol, b, CheckAt::Inode, |buf| {
                let di = Dinode::mut_from_prefix(buf)
                    .map_err(|_| anyhow::anyhow!("inode block truncated"))?
                    .0;
                let kept = di.i_dyn_features.get() & !dyn_features::INLINE_DATA;
                di.i_dyn_features.set(kept);
                Ok(())
            }),
            Fix::ResetJournal { inode, features } => Ok(vol.format_journal(inode, features, None)?),
            Fix::RefreshBackups => {
                vol.write_super_everywhere(vol.sb())?;
                Ok(())
            }
            Fix::SizeSlotMap => {
                ocfs2_format::sysfile::size_slot_map(vol).map_err(anyhow::Error::from)
            }
            Fix::ExtendSlotMap => ocfs2_format::inprog::convert_slot_map(
                vol,
                ocfs2_format::slotmap::Format::Extended,
                &|| Ok(()),
            )
            .map_err(anyhow::Error::from),
            Fix::FinishSlotMap(extended) => {
                use ocfs2_format::features::incompat;
                let mut sb = *vol.sb();
                let f = sb.s_feature_incompat.get() & !incompat::TUNEFS_INPROG;
                let bit = incompat::EXTENDED_SLOT_MAP;
                sb.s_feature_incompat
                    .set(if extended { f | bit } else { f & !bit });
                sb.s_tunefs_flag
                    .set(sb.s_tunefs_flag.get() & !ocfs2_format::slotmap::TUNEFS_FLAG_SLOTMAP);
                vol.write_super_everywhere(&sb)?;
                Ok(())
            }
            Fix::FreeSlot(slot) => {
                vol.empty_slot_entries(slot, slot + 1)?;
                Ok(())
            }
            Fix::RebuildInodeGroup {
                alloc,
                group,
                chain,
            } => rebuild_inode_group(vol, alloc, group, chain),
            Fix::LinkSystemFile { inode, base, slot } => {
                let ftype = if base == "orphan_dir" {
                    file_type::DIR
                } else {
                    file_type::REG_FILE
                };
                let name = slot_file_name(base, slot);
                ocfs2_format::link::insert_entry(
                    vol,
                    vol.system_dir_blkno(),
                    name.as_bytes(),
                    inode,
                    ftype,
                )?;
                Ok(())
            }
            Fix::MakeSlotFiles => {
                use ocfs2_format::sysfile;
                // Only the journals made here get clusters and a log: the
                // others hold what their slots logged.
                let had: Vec<u64> = (0..vol.max_slots())
                    .filter_map(|s| vol.system_inode(&slot_file_name("journal", s)).ok())
                    .collect();
                let journals = sysfile::add_slot_files(vol, 0, vol.max_slots(), &|| Ok(()))?;
                let made: Vec<u64> = journals.into_iter().filter(|j| !had.contains(j)).collect();
                sysfile::size_journals(vol, &made, &|| Ok(()))?;
                Ok(())
            }
            Fix::ClearInode { inode, group, bit } => {
                invalidate(vol, inode)?;
                Fix::FreeBit { group, bit }.write(vol)
            }
            Fix::Reconnect { inode, ftype } => {
                let root = vol.read_inode(vol.root_blkno())?;
                let Some(lf) = vol.lookup(&root, b"lost+found")? else {
                    bail!("the root directory has no lost+found");
                };
                Ok(link::reconnect(vol, lf, inode, ftype)?)
            }
            Fix::DotDot { dir, parent } => Ok(link::set_dotdot(vol, dir, parent)?),
            Fix::EndTarget { blkno, off, inode } => {
                let mut buf = vol.read_block(blkno)?;
                let Some(b) = buf.get_mut(usize::from(off)) else {
                    bail!("byte {off} is outside the block");
                };
                *b = 0;
                if inode {
                    vol.write_meta(blkno, &mut buf, CheckAt::Inode)?;
                } else {
                    vol.write_block(blkno, &buf)?;
                }
                Ok(())
            }
            Fix::DirTrailer { blkno, parent } => edit(vol, blkno, CheckAt::DirTrailer, |buf| {
                let off = buf.len() - link::DIR_TRAILER_LEN;
                let (t, _) = DirBlockTrailer::read_from_prefix(&buf[off..])
                    .map_err(|_| anyhow::anyhow!("no room for a trailer"))?;
                link::write_dir_trailer(
                    buf,
                    blkno,
                    parent,
                    (t.db_free_rec_len.get(), t.db_free_next.get()),
                );
                Ok(())
            }),
            Fix::GlobalBitmap
            | Fix::Recount(_)
            | Fix::Links(..)
            | Fix::MakeLostFound { .. }
            | Fix::InitRoot { .. }
            | Fix::InitDir { .. }
            | Fix::RebuildGlobalGroup { .. }
            | Fix::RebuildIndex(_)
            | Fix::CloneExtent { .. } => {
                bail!("{self:?} is not a one-block fix")
            }
        }
        .with_context(|| self.question())
    }

    /// Write a fix that [`allocates`](Fix::allocates); `usable_cluster`
    /// says which clusters the passes found unused (the bitmap may not
    /// show all that are in use yet).
    pub fn allocate(&self, vol: &Volume, usable_cluster: &dyn Fn(u64) -> bool) -> Result<()> {
        match *self {
            Fix::MakeLostFound { root } => {
                link::make_subdir(vol, 0, root, b"lost+found", usable_cluster)?;
                Ok::<(), anyhow::Error>(())
            }
            Fix::InitRoot {
                blkno,
                slot,
                bit,
                group,
            } => {
                let at = link::Suballoc { slot, bit, group };
                link::init_dir(vol, blkno, blkno, at, usable_cluster)?;
                link::make_subdir(vol, 0, blkno, b"lost+found", usable_cluster)?;
                Ok(())
            }
            Fix::RebuildGlobalGroup { bitmap, index } => {
                ocfs2_format::alloc::rebuild_global_group(vol, bitmap, index, &|c| {
                    !usable_cluster(c)
                })
                .map_err(anyhow::Error::from)
            }
            Fix::InitDir { blkno, parent } => {
                link::refill_dir(vol, blkno, parent, usable_cluster).map_err(anyhow::Error::from)
            }
            Fix::RebuildIndex(d) => {
                // A directory without an index (DX_TREE_MISSING) has none
                // to take away.
                if vol.read_inode(d)?.dyn_features() & dyn_features::INDEXED_DIR != 0 {
                    ocfs2_format::dxtree::drop(vol, d)?;
                }
                let seed = ocfs2_format::dx::seed(vol.sb());
                ocfs2_format::dxtree::build(vol, d, seed, usable_cluster)
                    .map_err(anyhow::Error::from)
            }
            Fix::CloneExtent {
                blkno,
                list,
                index,
                at,
                from,
                clusters,
            } => {
                let bpc = u64::from(vol.cluster_size() / vol.block_size());
                let at_rec = usize::from(list)
                    + core::mem::size_of::<ExtentList>()
                    + usize::from(index) * core::mem::size_of::<ExtentRec>()
                    + core::mem::offset_of!(ExtentRec, e_blkno);
                // The record is checked before anything is taken: an
                // earlier fix of this round may have moved it.
                let now = read_for(vol, blkno, at)?;
                if now.get(at_rec..at_rec + 8) != Some(&from.to_le_bytes()[..]) {
                    bail!("record {index} no longer starts at block {from}");
                }
                let to =
                    ocfs2_format::alloc::take_run(vol, u64::from(clusters), usable_cluster)? * bpc;
                for k in 0..u64::from(clusters) * bpc {
                    let data = vol.read_block(from + k)?;
                    vol.write_block(to + k, &data)?;
                }
                vol.device().flush()?;
                edit(vol, blkno, at, |buf| {
                    let Some(field) = buf.get_mut(at_rec..at_rec + 8) else {
                        bail!("record {index} is outside the block");
                    };
                    if u64::from_le_bytes(field.try_into().expect("8 bytes")) != from {
                        bail!("record {index} no longer starts at block {from}");
                    }
                    field.copy_from_slice(&to.to_le_bytes());
                    Ok(())
                })
            }
            _ => bail!("{self:?} takes no inode or cluster"),
        }
        .with_context(|| self.question())
    }
}

/// Take inode `inode`'s valid flag away and give it a dtime, as unlink's
/// last step does.
fn invalidate(vol: &Volume, inode: u64) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs().max(1));
    edit(vol, inode, CheckAt::Inode, |buf| {
        if !buf.starts_with(INODE_SIGNATURE) {
            bail!("block {inode} holds no inode");
        }
        let di = Dinode::mut_from_prefix(buf)
            .expect("block holds an inode")
            .0;
        di.i_flags.set(di.i_flags.get() & !inode_flags::VALID);
        di.i_dtime.set(now);
        Ok(())
    })
}

/// Read block `blkno`, change it, write it back with its block check (the
/// bucket that starts at `blkno`, for [`CheckAt::XattrBucket`]).
fn edit(
    vol: &Volume,
    blkno: u64,
    at: CheckAt,
    change: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = read_for(vol, blkno, at)?;
    change(&mut buf)?;
    vol.write_meta(blkno, &mut buf, at)?;
    Ok(())
}

/// Block `blkno`, or the attribute bucket that starts there (read and
/// written whole) for [`CheckAt::XattrBucket`].
fn read_for(vol: &Volume, blkno: u64, at: CheckAt) -> Result<Vec<u8>> {
    Ok(if at == CheckAt::XattrBucket {
        vol.read_blocks(blkno, vol.blocks_per_bucket())?
    } else {
        vol.read_block(blkno)?
    })
}

/// The two record lists with a 16-byte header and 16-byte records.
#[derive(Clone, Copy)]
enum Records {
    /// `ocfs2_extent_list`: `l_next_free_rec` at 4, `l_tree_depth` at 0.
    Extents,
    /// `ocfs2_chain_list`: `cl_next_free_rec` at 6.
    Chains,
    /// `ocfs2_refcount_list`: `rl_used` at 2.
    Refcounts,
}

/// Remove record `index` from the list whose header is at `list` in `buf`.
fn drop_record(buf: &mut [u8], list: usize, kind: Records, index: usize) -> Result<()> {
    const HDR: usize = core::mem::size_of::<ExtentList>();
    const REC: usize = core::mem::size_of::<ExtentRec>();
    const _: () = assert!(HDR == core::mem::size_of::<ChainList>());
    const _: () = assert!(REC == core::mem::size_of::<ChainRec>());
    let next_at = list
        + match kind {
            Records::Extents => core::mem::offset_of!(ExtentList, l_next_free_rec),
            Records::Chains => core::mem::offset_of!(ChainList, cl_next_free_rec),
            Records::Refcounts => refcount_block::RL_USED - refcount_block::LIST,
        };
    if buf.len() < list + HDR {
        bail!("list header at byte {list} is outside the block");
    }
    let next = usize::from(u16::from_le_bytes([buf[next_at], buf[next_at + 1]]));
    let room = (buf.len() - list - HDR) / REC;
    if index >= next || next > room {
        bail!("record {index} is not among the list's {next} records");
    }
    let first = list + HDR;
    buf.copy_within(
        first + (index + 1) * REC..first + next * REC,
        first + index * REC,
    );
    buf[first + (next - 1) * REC..first + next * REC].fill(0);
    buf[next_at..next_at + 2].copy_from_slice(&((next - 1) as u16).to_le_bytes());
    if next == 1 && matches!(kind, Records::Extents) {
        buf[list..list + 2].fill(0); // l_tree_depth: an empty tree
    }
    Ok(())
}

/// Mend the entry at `off` of `area` (a directory block's entries, or an
/// inline directory's), fsck.ocfs2's way: a name with no room (rec_len of
/// the fixed part only) is dropped and the rest moves up; a rec_len only
/// mis-rounded is rounded; an entry whose rec_len still leads to the next
/// one is cleared (inode 0, no name); otherwise the trail of entries is
/// lost and the entry is cleared to the end of the area. Space too small
/// for another entry is added to the mended one.
pub fn salvage_dirent(area: &mut [u8], off: usize) -> Result<()> {
    let left = area.len().checked_sub(off).filter(|&l| l >= DIR_MEMBER_LEN);
    let Some(left) = left else {
        bail!("no room for a directory entry at byte {off}");
    };
    let d = &mut area[off..];
    let rec_len = usize::from(u16::from_le_bytes([d[8], d[9]]));
    let name_len = usize::from(d[10]);
    let clear = |d: &mut [u8]| {
        d[0..8].fill(0); // inode
        d[10] = 0; // name_len
        d[11] = 0; // file_type
    };
    let set_rec = |d: &mut [u8], r: usize| d[8..10].copy_from_slice(&(r as u16).to_le_bytes());
    let partial = |r: usize| left > r && left - r < DIR_MEMBER_LEN;
    let mut after = 0;
    if rec_len < DIR_MEMBER_LEN || rec_len > left || name_len > left {
        clear(d);
        set_rec(d, left);
    } else if rec_len == DIR_MEMBER_LEN {
        d.copy_within(DIR_MEMBER_LEN..left, 0);
        d[left - DIR_MEMBER_LEN..left].fill(0);
        return Ok(());
    } else if dir_rec_len(name_len) != rec_len && dir_rec_len(name_len) == dir_rec_len(rec_len) {
        set_rec(d, dir_rec_len(name_len));
        after = left - dir_rec_len(name_len);
    } else if rec_len % 4 == 0 && !partial(rec_len) {
        clear(d);
        after = left - rec_len;
    } else {
        clear(d);
        set_rec(d, left);
    }
    if after > 0 && after < DIR_MEMBER_LEN {
        let r = usize::from(u16::from_le_bytes([d[8], d[9]]));
        set_rec(d, r + after);
    }
    Ok(())
}

/// Change every superblock copy: the backups first, so that a crash before
/// the primary is written leaves backups that differ from it, which the
/// next run reports and repairs the same way.
fn edit_supers(vol: &Volume, change: impl Fn(&mut [u8])) -> Result<()> {
    let mut blocks = Vec::new();
    if vol.features().compat & ocfs2_format::features::compat::BACKUP_SB != 0 {
        blocks.extend(vol.backup_super_blknos());
    }
    blocks.push(vol.super_blkno());
    for b in blocks {
        edit(vol, b, CheckAt::Inode, |buf| {
            if !buf.starts_with(SUPER_BLOCK_SIGNATURE) {
                bail!("no superblock here");
            }
            change(buf);
            Ok(())
        })
        .with_context(|| format!("superblock copy at block {b}"))?;
    }
    Ok(())
}

/// [`Fix::RebuildInodeGroup`].
fn rebuild_inode_group(vol: &Volume, alloc: u64, group: u64, chain: u16) -> Result<()> {
    let bits = u16::try_from(vol.chain_group_bits(alloc)?).context("the group's bit count")?;
    let generation = vol.super_inode().di().i_fs_generation.get();
    let bs = vol.block_size() as usize;
    let mut d =
        ocfs2_format::alloc::new_suballoc_desc(bs, false, group, bits, chain, 0, alloc, generation);
    let (gd, bitmap) = GroupDesc::mut_from_prefix(&mut d).expect("a block holds a descriptor");
    let mut used = 1u16;
    for bit in 1..bits {
        let b = group + u64::from(bit);
        if vol
            .valid_inode_at(b)
            .is_some_and(|di| di.i_suballoc_bit.get() == bit)
        {
            bitmap[usize::from(bit / 8)] |= 1 << (bit % 8);
            used += 1;
        }
    }
    gd.bg_free_bits_count.set(bits - used);
    vol.write_meta(group, &mut d, CheckAt::GroupDesc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_extent_moves_the_rest_up() {
        let mut buf = vec![0u8; 512];
        let list = 0x30;
        let el = &mut buf[list..];
        el[2..4].copy_from_slice(&4u16.to_le_bytes()); // l_count
        el[4..6].copy_from_slice(&3u16.to_le_bytes()); // l_next_free_rec
        for i in 0..3u8 {
            el[16 + usize::from(i) * 16] = 10 + i; // e_cpos
        }
        drop_record(&mut buf, list, Records::Extents, 1).unwrap();
        let el = &buf[list..];
        assert_eq!(u16::from_le_bytes([el[4], el[5]]), 2);
        assert_eq!(el[16], 10);
        assert_eq!(el[32], 12);
        assert!(el[48..64].iter().all(|&b| b == 0));
        assert!(drop_record(&mut buf, list, Records::Extents, 2).is_err());
        el_depth_survives(&mut buf, list);
    }

    /// A list keeps its depth while records remain, and drops to 0 with
    /// its last record.
    fn el_depth_survives(buf: &mut [u8], list: usize) {
        buf[list] = 1;
        drop_record(buf, list, Records::Extents, 0).unwrap();
        assert_eq!(buf[list], 1);
        drop_record(buf, list, Records::Extents, 0).unwrap();
        assert_eq!(buf[list], 0);
    }

    #[test]
    fn salvage_dirent_follows_fsck_ocfs2() {
        // rec_len nonsense: the entry is cleared to the end of the area.
        let mut a = vec![0u8; 64];
        a[0] = 7;
        a[8] = 6;
        a[10] = 3;
        salvage_dirent(&mut a, 0).unwrap();
        assert_eq!((a[0], u16::from_le_bytes([a[8], a[9]]), a[10]), (0, 64, 0));
        // mis-rounded rec_len: rounded, the entry kept.
        let mut a = vec![0u8; 64];
        a[0] = 7;
        a[8] = 14; // dir_rec_len(13) = 28 = dir_rec_len(14)
        a[10] = 13;
        salvage_dirent(&mut a, 0).unwrap();
        assert_eq!((a[0], u16::from_le_bytes([a[8], a[9]])), (7, 28));
        // name too long for a rec_len that leads on: cleared, rec_len kept.
        let mut a = vec![0u8; 64];
        a[0] = 7;
        a[8] = 24;
        a[10] = 40;
        salvage_dirent(&mut a, 0).unwrap();
        assert_eq!((a[0], u16::from_le_bytes([a[8], a[9]]), a[10]), (0, 24, 0));
    }
}
