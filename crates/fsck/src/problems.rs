//! The findings fsck.ocfs2-mmp reports: a stable code (fsck.ocfs2's name
//! where the same problem exists there), the pass, a sentence, and whether
//! and when it is repaired. Each finding names the block (and inode) it
//! concerns.

/// When a problem is repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Not repaired by this release: reported, exit 4.
    No,
    /// Repaired by `-y` and by `-p` (safe without a person: the repair
    /// only makes counts and bitmaps agree with what the passes found, or
    /// replays what the kernel committed).
    Safe,
}

/// One kind of problem.
#[derive(Debug, Clone, Copy)]
pub struct Problem {
    pub code: &'static str,
    pub pass: &'static str,
    pub what: &'static str,
    pub repair: Repair,
}

const fn p(code: &'static str, pass: &'static str, what: &'static str) -> Problem {
    Problem {
        code,
        pass,
        what,
        repair: Repair::No,
    }
}

/// A problem that `-y` and `-p` repair.
const fn safe(code: &'static str, pass: &'static str, what: &'static str) -> Problem {
    Problem {
        code,
        pass,
        what,
        repair: Repair::Safe,
    }
}

/// Every code, in pass order. `man/fsck.ocfs2-mmp.8` documents each one; a
/// test fails when one is missing there.
pub const PROBLEMS: &[Problem] = &[
    safe("JOURNAL_NEEDS_RECOVERY", "J", "a journal is marked dirty: a node died with transactions to replay (replayed, then its local alloc and truncate log recovered)"),
    p("JOURNAL_DAMAGED", "J", "a dirty journal's log is damaged (a descriptor, revoke or commit block fails its checks, points past the volume, or the log loops): what is committed and valid before it is replayed"),
    p("JOURNAL_BLOCK_CHECKSUM", "J", "a logged block fails its v2/v3 checksum and is not replayed"),
    p("SUPERBLOCK_FIELD", "0", "a superblock field is out of range (slots, root or system directory, first cluster group, revision)"),
    p("SUPERBLOCK_CLUSTERS", "0", "the superblock's cluster count does not match the global bitmap's"),
    p("SUPERBLOCK_BACKUP", "0", "a backup superblock differs from the primary (beyond i_blkno and its block check)"),
    p("BLOCK_CHECK", "any", "a metadata block fails its metaecc block check (CRC32 and Hamming code) beyond one-bit correction"),
    p("MMP_INTERVAL", "0", "MMP is on and s_mmp_update_interval is outside 1..300 (0 makes kmmpd busy-loop)"),
    p("MMP_SLOTMAP_FORMAT", "0", "MMP is on but the slot map is in the old format: the kernel refuses to mount"),
    p("SLOTMAP_SIZE", "0", "the slot map file is smaller than its slots need"),
    p("SLOTMAP_VALUE", "0", "a slot holds a value outside the MMP protocol, or an MMP value on a volume without MMP"),
    p("SLOTMAP_HELD", "0", "a slot is held (a mount that died, or a live one seen with -n on a volume without MMP)"),
    p("SYSTEM_FILE_MISSING", "1", "a system file is missing from the system directory"),
    p("SYSTEM_FILE_FLAGS", "1", "a system file's inode lacks its system, valid or type flags"),
    p("CHAIN_COUNT", "2", "a chain allocator's cl_count is not the number of chain records an inode holds"),
    p("CHAIN_NEXT_FREE", "2", "a chain allocator's cl_next_free_rec is larger than cl_count"),
    p("CHAIN_CPG", "2", "a chain allocator's clusters per group are wrong for its groups"),
    p("CHAIN_LINK_RANGE", "2", "a chain or group points outside the volume"),
    p("CHAIN_LINK_MAGIC", "2", "a chain points at a block that is not a group descriptor"),
    p("GROUP_BLKNO", "2", "a group descriptor's bg_blkno is not its own block"),
    p("GROUP_PARENT", "2", "a group descriptor's bg_parent_dinode is not its allocator"),
    p("GROUP_GEN", "2", "a group descriptor's generation is not the volume's"),
    p("GROUP_CHAIN", "2", "a group descriptor's bg_chain is not the chain it is on"),
    safe("GROUP_FREE_BITS", "2", "a group descriptor's free bit count does not match its bitmap"),
    p("GROUP_BITS", "2", "a group descriptor's bit count does not fit its bitmap or its group"),
    p("GROUP_CHAIN_LOOP", "2", "a chain of groups loops"),
    p("GROUP_DUPLICATE", "2", "a group descriptor is on more than one chain"),
    safe("CHAIN_BITS", "2", "a chain record's c_total or c_free does not match its groups"),
    safe("CHAIN_GROUP_BITS", "2", "a chain allocator's i_total or i_used does not match its groups"),
    p("CHAIN_I_CLUSTERS", "2", "a suballocator's i_clusters does not match its groups"),
    p("CHAIN_I_SIZE", "2", "a suballocator's i_size does not match its clusters"),
    p("INODE_NOT_INODE", "3", "an allocated inode bit points at a block without an inode signature"),
    p("INODE_ALLOC_REPAIR", "3", "an allocated inode bit points at an inode that is not valid"),
    p("INODE_BLKNO", "3", "an inode's i_blkno is not its own block"),
    p("INODE_GEN", "3", "an inode's fs generation is not the volume's"),
    p("INODE_SUBALLOC", "3", "an inode's suballocator bit or slot does not match where it is allocated"),
    p("INODE_MODE", "3", "an inode's mode has no valid file type"),
    p("INODE_NZ_DTIME", "3", "an in-use inode has a deletion time"),
    p("INODE_CLUSTERS", "3", "an inode's i_clusters does not match its extents"),
    p("INODE_SIZE", "3", "an inode's i_size is larger than its clusters hold"),
    p("INODE_INLINE_SIZE", "3", "an inline inode's size is larger than its inline area"),
    p("INODE_INLINE_CLUSTERS", "3", "an inline inode owns clusters"),
    p("EXTENT_LIST_COUNT", "3", "an extent list's l_count is wrong for where it lives"),
    p("EXTENT_LIST_FREE", "3", "an extent list's l_next_free_rec is larger than l_count"),
    p("EXTENT_LIST_DEPTH", "3", "an extent block's depth does not fit its parent"),
    p("EXTENT_BLKNO_RANGE", "3", "an extent points outside the volume"),
    p("EXTENT_BLKNO_UNALIGNED", "3", "an extent does not start on a cluster boundary"),
    p("EXTENT_OVERLAP", "3", "extent records overlap or are out of order"),
    p("EXTENT_EB_INVALID", "3", "an extent record points at a block that is not an extent block"),
    p("EB_BLKNO", "3", "an extent block's h_blkno is not its own block"),
    p("EB_GEN", "3", "an extent block's fs generation is not the volume's"),
    p("EXTENT_MARKED_UNWRITTEN", "3", "an extent is marked unwritten on a volume without the unwritten feature"),
    p("EXTENT_MARKED_REFCOUNTED", "3", "an extent is marked refcounted on a volume without the refcount feature"),
    p("LINK_NULLTERM", "3", "a symlink's target is not NUL-terminated"),
    p("LINK_SIZE", "3", "a symlink's i_size is not the length of its target"),
    p("LINK_BLOCKS", "3", "a slow symlink has fewer blocks than its target needs"),
    p("DUP_CLUSTERS", "3", "a cluster is claimed by more than one owner"),
    p("LALLOC_SIZE", "4", "a local alloc's la_size is larger than its inode holds"),
    p("LALLOC_NZ_USED", "4", "a local alloc without a window has used bits"),
    p("LALLOC_NZ_BM", "4", "a local alloc without a window has a window offset"),
    p("LALLOC_BM_SIZE", "4", "a local alloc's window is larger than its bitmap"),
    p("LALLOC_USED_OVERRUN", "4", "a local alloc's i_used exceeds its window"),
    p("LALLOC_USED", "4", "a local alloc's i_used is not the number of bits set in its bitmap"),
    p("LALLOC_BM_OVERRUN", "4", "a local alloc's window runs past the end of the volume"),
    p("DEALLOC_COUNT", "4", "a truncate log's tl_count is wrong for the block size"),
    p("DEALLOC_USED", "4", "a truncate log's tl_used is larger than tl_count"),
    p("TRUNCATE_REC_RANGE", "4", "a truncate log record lies outside the volume"),
    p("JOURNAL_SUPERBLOCK", "4", "a journal's first block is not a jbd2 superblock that fits its file"),
    p("DIRENT_LENGTH", "5", "a directory entry's rec_len or name_len is invalid"),
    p("DIRENT_NAME_CHARS", "5", "a directory entry's name holds a '/' or a NUL"),
    p("DIRENT_INODE_RANGE", "5", "a directory entry points outside the volume"),
    p("DIRENT_INODE_FREE", "5", "a directory entry points at an inode that is not allocated or not valid"),
    p("DIRENT_TYPE", "5", "a directory entry's file type does not match the inode's mode"),
    p("DIRENT_DOT_INODE", "5", "a directory's '.' does not point at itself, or is missing"),
    p("DIRENT_DOTDOT", "5", "a directory's '..' is missing or does not point at its parent"),
    p("DIRENT_DUPLICATE", "5", "a name appears twice in one directory"),
    p("DIR_TRAILER", "5", "a directory block's trailer is missing or damaged"),
    p("DIR_HOLE", "5", "a directory has a hole in its blocks"),
    p("DX_ROOT", "5", "a directory's index root is not a valid index root for it"),
    p("ROOT_DIR_MISSING", "5", "the root directory is missing or not a directory"),
    p("LOSTFOUND_MISSING", "5", "lost+found is missing from the root directory"),
    p("DIR_NOT_CONNECTED", "6", "a directory or file is not reachable from the root or the system directory"),
    safe("INODE_COUNT", "6", "an inode's link count does not match the entries that point at it"),
    p("ORPHAN_DIR_ENTRIES", "6", "an orphan directory holds inodes waiting to be freed"),
    safe("CLUSTER_ALLOC_BIT", "7", "the global bitmap disagrees with the clusters in use (used but free, or set but unused)"),
    p("INODE_ALLOC_BITS", "7", "an inode allocator's bitmap disagrees with the inodes found"),
];

/// Whether `code` is repaired by `-y` and `-p`.
pub fn repairable(code: &str) -> bool {
    lookup(code).is_some_and(|p| p.repair == Repair::Safe)
}

pub fn lookup(code: &str) -> Option<&'static Problem> {
    PROBLEMS.iter().find(|p| p.code == code)
}
