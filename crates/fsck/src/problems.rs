//! The findings fsck.ocfs2-mmp reports: a stable code (fsck.ocfs2's name
//! where the same problem exists there), the pass, a sentence, and whether
//! and when it is repaired. Each finding names the block (and inode) it
//! concerns.

/// When a problem is repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Repair {
    /// Not repaired by this release: reported, exit 4.
    No,
    /// Repaired by `-y`, or when a person answers yes; `-p` leaves it
    /// (exit 4): the repair gives something up (a record, an entry) or
    /// trusts a value a person should confirm.
    Yes,
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
    /// Whether the volume is damaged while this stands. A problem that is
    /// not damage (e2fsck's PR_NO_OK) is an improvement offered: reported,
    /// made by `-y`, and left without changing the exit code.
    pub damage: bool,
}

/// A problem that `-y` repairs, and a person when asked; not `-p`.
const fn yes(code: &'static str, pass: &'static str, what: &'static str) -> Problem {
    Problem {
        code,
        pass,
        what,
        repair: Repair::Yes,
        damage: true,
    }
}

/// A problem that `-y` and `-p` repair.
const fn safe(code: &'static str, pass: &'static str, what: &'static str) -> Problem {
    Problem {
        code,
        pass,
        what,
        repair: Repair::Safe,
        damage: true,
    }
}

/// Not damage: made by `-y`, or when a person answers yes; `-p` and `-n`
/// leave it and the exit code does not count it.
const fn offer(code: &'static str, pass: &'static str, what: &'static str) -> Problem {
    Problem {
        code,
        pass,
        what,
        repair: Repair::Yes,
        damage: false,
    }
}

/// Every code, in pass order. `man/fsck.ocfs2-mmp.8` documents each one; a
/// test fails when one is missing there.
pub const PROBLEMS: &[Problem] = &[
    safe("RESIZE_INPROG", "0", "an interrupted resize (aborted-resize): finished forward when the global bitmap inode holds the new size (the superblocks get it, the new backups written), else the last group goes back to the superblock's size; the flag is cleared, in a round of its own"),
    safe("JOURNAL_NEEDS_RECOVERY", "J", "a journal is marked dirty: a node died with transactions to replay (replayed, then its local alloc and truncate log recovered)"),
    safe("JOURNAL_DAMAGED", "J", "a dirty journal's log is damaged (a descriptor, revoke or commit block fails its checks, points past the volume, or the log loops): what is committed and valid before it is replayed, the rest discarded with the log"),
    safe("JOURNAL_BLOCK_CHECKSUM", "J", "a logged block fails its v2/v3 checksum and is not replayed"),
    safe("TUNEFS_INPROG", "0", "a tunefs.ocfs2-mmp slot map rewrite or removal of node slots did not finish (aborted-tunefs): finished"),
    yes("SUPERBLOCK_FIELD", "0", "a superblock field is out of range (slots, root or system directory, first cluster group, revision)"),
    yes("SUPERBLOCK_CLUSTERS", "0", "the superblock's cluster count does not match the global bitmap's"),
    safe("SUPERBLOCK_BACKUP", "0", "a backup superblock differs from the primary (beyond i_blkno and its block check)"),
    yes("BLOCK_CHECK", "any", "a metadata block fails its metaecc block check (CRC32 and Hamming code) beyond one-bit correction"),
    safe("MMP_INTERVAL", "0", "MMP is on and s_mmp_update_interval is outside 1..300 (0 makes kmmpd busy-loop)"),
    yes("MMP_SLOTMAP_FORMAT", "0", "MMP is on but the slot map is in the old format: the kernel refuses to mount, and no tool can hold the volume (the map is rewritten empty in the extended format before the check)"),
    yes("SLOTMAP_SIZE", "0", "the slot map file is smaller than its slots need"),
    yes("SLOTMAP_VALUE", "0", "a slot holds a value outside the MMP protocol, or an MMP value on a volume without MMP"),
    yes("SLOTMAP_HELD", "0", "a slot is held (a mount that died, or a live one seen with -n on a volume without MMP)"),
    yes("SYSTEM_FILE_MISSING", "1", "a system file is missing from the system directory"),
    safe("SYSTEM_FILE_FLAGS", "1", "a system file's inode lacks its system, valid or type flags"),
    safe("CHAIN_COUNT", "2", "a chain allocator's cl_count is not the number of chain records an inode holds"),
    yes("CHAIN_NEXT_FREE", "2", "a chain allocator's cl_next_free_rec is larger than cl_count"),
    safe("CHAIN_EMPTY", "2", "a chain record in use points at no group"),
    safe("CHAIN_CPG", "2", "a chain allocator's clusters per group are wrong for its groups"),
    safe("CHAIN_LINK_RANGE", "2", "a chain or group points outside the volume"),
    yes("GROUP_UNEXPECTED_DESC", "2", "a global bitmap chain holds a descriptor where no group begins"),
    safe("CHAIN_LINK_MAGIC", "2", "a chain points at a block that is not a group descriptor"),
    safe("GROUP_BLKNO", "2", "a group descriptor's bg_blkno is not its own block"),
    safe("GROUP_PARENT", "2", "a group descriptor's bg_parent_dinode is not its allocator"),
    yes("GROUP_GEN", "2", "a group descriptor's generation is not the volume's"),
    safe("GROUP_CHAIN", "2", "a group descriptor's bg_chain is not the chain it is on"),
    safe("GROUP_FREE_BITS", "2", "a group descriptor's free bit count does not match its bitmap"),
    yes("GROUP_BITS", "2", "a group descriptor's bit count does not fit its bitmap or its group"),
    safe("GROUP_CHAIN_LOOP", "2", "a chain of groups loops"),
    safe("GROUP_DUPLICATE", "2", "a group descriptor is on more than one chain"),
    yes("GROUP_EXPECTED_DESC", "2", "a group of the global bitmap, at the block its clusters put it, is on no chain"),
    safe("DISCONTIG_BG_DEPTH", "2", "a discontiguous group's extent list has a tree depth (it must be 0)"),
    safe("DISCONTIG_BG_COUNT", "2", "a discontiguous group's l_count is more than a group descriptor holds"),
    yes("DISCONTIG_BG_REC_RANGE", "2", "a discontiguous group's extent lies outside the volume (the group is taken off its chain)"),
    yes("DISCONTIG_BG_CORRUPT_LEAVES", "2", "two extents of a discontiguous group are each larger than a group (the group is taken off its chain)"),
    yes("DISCONTIG_BG_CLUSTERS", "2", "a discontiguous group's extents hold more clusters than a group (the group is taken off its chain)"),
    yes("DISCONTIG_BG_LESS_CLUSTERS", "2", "a discontiguous group's extents hold fewer clusters than a group (the group is taken off its chain)"),
    safe("DISCONTIG_BG_NEXT_FREE_REC", "2", "a discontiguous group's l_next_free_rec is not the number of records filled in"),
    yes("DISCONTIG_BG_LIST_CORRUPT", "2", "a discontiguous group's l_next_free_rec and an extent are both wrong (the group is taken off its chain)"),
    yes("DISCONTIG_BG_REC_CORRUPT", "2", "an extent of a discontiguous group claims clusters the group's other extents already fill (the group is taken off its chain)"),
    yes("DISCONTIG_BG_LEAF_CLUSTERS", "2", "an extent of a discontiguous group claims more clusters than the group has room for (set to the room left)"),
    safe("CHAIN_BITS", "2", "a chain record's c_total or c_free does not match its groups"),
    safe("CHAIN_GROUP_BITS", "2", "a chain allocator's i_total or i_used does not match its groups"),
    safe("CHAIN_I_CLUSTERS", "2", "a suballocator's i_clusters does not match its groups"),
    safe("CHAIN_I_SIZE", "2", "a suballocator's i_size does not match its clusters"),
    yes("INODE_NOT_INODE", "3", "an allocated inode bit points at a block without an inode signature"),
    yes("INODE_ALLOC_REPAIR", "3", "an allocated inode bit points at an inode that is not valid"),
    yes("INODE_ALLOC_BITS", "3", "a valid inode's allocator bit is clear (the bit is set, as fsck.ocfs2 sets it)"),
    safe("INODE_BLKNO", "3", "an inode's i_blkno is not its own block"),
    yes("INODE_GEN", "3", "an inode's fs generation is not the volume's"),
    safe("INODE_SUBALLOC", "3", "an inode's suballocator bit or slot does not match where it is allocated"),
    yes("INODE_MODE", "3", "an inode's mode has no valid file type"),
    safe("INODE_NZ_DTIME", "3", "an in-use inode has a deletion time"),
    yes("INODE_CLUSTERS", "3", "an inode's i_clusters does not match its extents"),
    yes("INODE_SIZE", "3", "an inode's i_size is larger than its clusters hold"),
    yes("INODE_SPARSE_SIZE", "3", "on a sparse volume, a file's i_size ends a cluster or more before its last mapped cluster (set to the end of that cluster)"),
    safe("INLINE_DATA_COUNT_INVALID", "3", "an inline inode's id_count is not the size of its inline area"),
    yes("INODE_INLINE_SIZE", "3", "an inline inode's size is larger than its inline area"),
    safe("INODE_INLINE_CLUSTERS", "3", "an inline inode owns clusters"),
    yes("INLINE_DATA_FLAG_INVALID", "3", "an inode has the inline-data flag on a volume without the inline-data feature (the flag is cleared: id2 is read as the extent list it was)"),
    yes("EXTENT_LIST_COUNT", "3", "an extent list's l_count is wrong for where it lives"),
    yes("EXTENT_LIST_FREE", "3", "an extent list's l_next_free_rec is larger than l_count"),
    yes("EXTENT_LIST_DEPTH", "3", "an extent block's depth does not fit its parent"),
    safe("EXTENT_LAST_EB", "3", "an inode's i_last_eb_blk is not its rightmost leaf extent block (0 for a tree of depth 0)"),
    yes("EXTENT_BLKNO_RANGE", "3", "an extent points outside the volume"),
    yes("EXTENT_BLKNO_UNALIGNED", "3", "an extent does not start on a cluster boundary"),
    yes("EXTENT_OVERLAP", "3", "extent records overlap or are out of order"),
    yes("NO_HOLES", "3", "a directory's extent records leave a hole"),
    yes("EXTENT_EB_INVALID", "3", "an extent record points at a block that is not an extent block"),
    safe("EB_BLKNO", "3", "an extent block's h_blkno is not its own block"),
    yes("EB_GEN", "3", "an extent block's fs generation is not the volume's"),
    yes("EXTENT_MARKED_UNWRITTEN", "3", "an extent is marked unwritten on a volume without the unwritten feature"),
    yes("EXTENT_MARKED_REFCOUNTED", "3", "an extent is marked refcounted on a volume without the refcount feature"),
    yes("LINK_NULLTERM", "3", "a symlink's target is not NUL-terminated"),
    safe("LINK_SIZE", "3", "a symlink's i_size is not the length of its target"),
    yes("LINK_BLOCKS", "3", "a slow symlink has fewer blocks than its target needs"),
    yes("DUP_CLUSTERS", "3", "a cluster is claimed by more than one owner"),
    safe("REFCOUNT_FLAG_INVALID", "3", "an inode has the refcount flag on a volume without the refcount feature"),
    safe("REFCOUNT_LOC_INVALID", "3", "an inode without the refcount flag has an i_refcount_loc"),
    yes("REFCOUNT_ROOT_BLOCK_INVALID", "3", "an inode's i_refcount_loc is not a refcount block"),
    yes("REFCOUNT_COUNT_INVALID", "3", "a refcount record's count is not the number of refcounted extents that cover its clusters"),
    safe("REFCOUNT_COUNT", "3", "a refcount tree's rf_count is not the number of inodes that share it"),
    safe("RB_BLKNO", "3", "a refcount block's rf_blkno is not its own block"),
    yes("RB_GEN", "3", "a refcount block's generation is not the volume's"),
    safe("RB_PARENT", "3", "a refcount leaf's rf_parent is not the root of its tree"),
    safe("REFCOUNT_LIST_COUNT", "3", "a refcount block's rl_count is more than a block holds"),
    yes("REFCOUNT_LIST_USED", "3", "a refcount block's rl_used is more than its rl_count"),
    yes("REFCOUNT_CLUSTER_RANGE", "3", "a refcount record covers clusters outside the volume"),
    yes("REFCOUNT_CLUSTER_COLLISION", "3", "a refcount record starts before the previous one ends"),
    yes("REFCOUNT_BLOCK_INVALID", "3", "a refcount tree's extent record points at a block that is not a refcount block"),
    safe("REFCOUNT_CLUSTERS", "3", "a refcount tree's rf_clusters is not what its leaves cover"),
    yes("REFCOUNT_LIST_EMPTY", "3", "a leaf refcount block holds no record"),
    yes("XATTR_BLOCK_INVALID", "3", "an inode's attribute block (i_xattr_loc) is outside the volume or is not an attribute block (the inode forgets it)"),
    yes("XATTR_COUNT_INVALID", "3", "an attribute storage's xh_count is more than the entries it holds"),
    yes("XATTR_ENTRY_INVALID", "3", "an attribute entry lies in another entry's name or value (the entry is removed)"),
    yes("XATTR_NAME_OFFSET_INVALID", "3", "an attribute entry's name offset is past its storage (the entry is removed)"),
    yes("XATTR_LOCATION_INVALID", "3", "an attribute entry's value is marked kept beside its name or outside against its size (the entry is removed)"),
    yes("XATTR_VALUE_INVALID", "3", "an attribute entry's name and value overlap another's or run past the storage (the entry is removed)"),
    yes("XATTR_HASH_INVALID", "3", "an attribute entry's name hash is not its name's"),
    yes("XATTR_BUCKET_COUNT_INVALID", "3", "the first attribute bucket of a run says more buckets are in use than the run holds, or none"),
    yes("XATTR_FREE_START_INVALID", "3", "an attribute bucket's xh_free_start is not where its names and values start"),
    yes("XATTR_VALUE_LEN_INVALID", "3", "an attribute bucket's xh_name_value_len is not what its names and values take"),
    safe("LALLOC_SIZE", "4", "a local alloc's la_size is larger than its inode holds"),
    safe("LALLOC_NZ_USED", "4", "a local alloc without a window has used bits"),
    safe("LALLOC_NZ_BM", "4", "a local alloc without a window has a window offset"),
    safe("LALLOC_BM_SIZE", "4", "a local alloc's window is larger than its bitmap"),
    safe("LALLOC_USED_OVERRUN", "4", "a local alloc's i_used exceeds its window"),
    safe("LALLOC_USED", "4", "a local alloc's i_used is not the number of bits set in its bitmap"),
    safe("LALLOC_BM_OVERRUN", "4", "a local alloc's window runs past the end of the volume"),
    safe("DEALLOC_COUNT", "4", "a truncate log's tl_count is wrong for the block size"),
    safe("DEALLOC_USED", "4", "a truncate log's tl_used is larger than tl_count"),
    safe("TRUNCATE_REC_RANGE", "4", "a truncate log record lies outside the volume"),
    yes("JOURNAL_SUPERBLOCK", "4", "a journal's first block is not a jbd2 superblock that fits its file (the journal is formatted afresh: its log zeroed, a new superblock with the features of the other journals, not dirty)"),
    yes("QMAGIC_INVALID", "4", "a global quota file's header or info block is damaged (magic, version or block check) (the file is rebuilt: limits kept from the blocks that check, usage counted from the inodes, local files emptied)"),
    yes("QTREE_BLK_INVALID", "4", "a global quota file's tree block fails its block check (the file is rebuilt: limits kept from the blocks that check, usage counted from the inodes, local files emptied)"),
    yes("DQBLK_INVALID", "4", "a global quota file's data block (dquots) fails its block check (the file is rebuilt: limits kept from the blocks that check, usage counted from the inodes, local files emptied)"),
    yes("GROUP_OFF_CHAIN", "5", "an inode allocator group that inodes the directories name live in is on none of its allocator's chains"),
    yes("DIRENT_LENGTH", "5", "a directory entry's rec_len or name_len is invalid"),
    yes("DIRENT_NAME_CHARS", "5", "a directory entry's name holds a '/' or a NUL"),
    yes("DIRENT_INODE_RANGE", "5", "a directory entry points outside the volume"),
    yes("DIRENT_INODE_FREE", "5", "a directory entry points at an inode that is not allocated or not valid"),
    safe("DIRENT_TYPE", "5", "a directory entry's file type does not match the inode's mode"),
    yes("DIRENT_DOT_INODE", "5", "a directory's '.' does not point at itself, or is missing"),
    safe("DIRENT_DOT_EXCESS", "5", "a directory's '.' entry is longer than it needs (the excess belongs to a free entry)"),
    yes("DIRENT_DOTDOT", "5", "a directory's '..' is missing or does not point at its parent"),
    yes("DIRENT_DUPLICATE", "5", "a name appears twice in one directory"),
    yes("DIR_TRAILER", "5", "a directory block's trailer is missing or damaged"),
    yes("DIR_HOLE", "5", "a directory has a hole in its blocks"),
    yes("DX_ROOT", "5", "a directory's index root is not a valid index root for it, or its extents do not hold its clusters (the index is built again)"),
    yes("IV_DX_TREE", "5", "a directory has an index on a volume without the indexed-dirs feature (the index is taken away)"),
    yes("DX_TREE_CORRUPT", "5", "a leaf of a directory's index is damaged, or the root's entry count is not what its lists hold (the index is built again)"),
    yes("DX_LOOKUP_FAILED", "5", "the kernel's lookup of a name through the index does not find it, or an index entry names no name in its block (the index is built again)"),
    offer("DX_TREE_MISSING", "5", "a block directory on a volume with indexed-dirs has no index (not damage: the index is built, as fsck.ocfs2 builds it)"),
    yes("ROOT_DIR_MISSING", "5", "the root directory is missing or not a directory"),
    safe("LOSTFOUND_MISSING", "5", "lost+found is missing from the root directory"),
    yes("DIR_NOT_CONNECTED", "6", "a directory or file is not reachable from the root or the system directory"),
    yes("DIR_ZERO", "6", "a directory has no blocks, so no '.' and '..'"),
    yes("DIR_PARENT_DUP", "6", "a directory is named by more than one directory"),
    safe("INODE_COUNT", "6", "an inode's link count does not match the entries that point at it"),
    safe("ORPHAN_DIR_ENTRIES", "6", "an orphan directory holds inodes waiting to be freed"),
    safe("CLUSTER_ALLOC_BIT", "7", "the global bitmap disagrees with the clusters in use (used but free, or set but unused)"),

];

/// Whether `code` is repaired by `-y` (and, when safe, by `-p`).
pub fn repairable(code: &str) -> bool {
    lookup(code).is_some_and(|p| p.repair != Repair::No)
}

/// Whether `code` stands for damage (unknown codes do).
pub fn is_damage(code: &str) -> bool {
    lookup(code).is_none_or(|p| p.damage)
}

pub fn lookup(code: &str) -> Option<&'static Problem> {
    PROBLEMS.iter().find(|p| p.code == code)
}
