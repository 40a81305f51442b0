//! Raw on-disk structures of OCFS2, little-endian, byte-exact.
//!
//! Field names follow `ocfs2_fs.h` (ocfs2-tools `include/ocfs2-kernel/ocfs2_fs.h`
//! and the kernel's `fs/ocfs2/ocfs2_fs.h`) so they can be grepped across C and Rust.
//! Every struct's size and the offsets commented `/*xx*/` in the C header are
//! asserted at compile time below; `tests/offsets.rs` checks the same numbers
//! against ocfs2-tools' `sizetest/sizes.txt`.
//!
//! Viewing bytes as one of these structs never fails on content: validation is a
//! separate step (see [`crate::fs`]).

use core::mem::{offset_of, size_of};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Superblock lives at this block number, in units of the file system block size.
pub const SUPER_BLOCK_BLKNO: u64 = 2;
pub const MIN_BLOCKSIZE: u32 = 512;
pub const MAX_BLOCKSIZE: u32 = 4096;
pub const MIN_CLUSTERSIZE: u32 = 4096;
pub const MAX_CLUSTERSIZE: u32 = 1_048_576;
/// Byte offset of the first backup superblock; the next ones are at 4x steps.
pub const BACKUP_SB_START: u64 = 1 << 30;
pub const MAX_BACKUP_SUPERBLOCKS: usize = 6;
pub const MAX_SLOTS: u16 = 255;
pub const MAX_FILENAME_LEN: usize = 255;
pub const MAX_VOL_LABEL_LEN: usize = 64;
pub const VOL_UUID_LEN: usize = 16;

pub const SUPER_BLOCK_SIGNATURE: &[u8] = b"OCFSV2";
pub const INODE_SIGNATURE: &[u8] = b"INODE01";
pub const EXTENT_BLOCK_SIGNATURE: &[u8] = b"EXBLK01";
pub const GROUP_DESC_SIGNATURE: &[u8] = b"GROUP01";
pub const XATTR_BLOCK_SIGNATURE: &[u8] = b"XATTR01";
pub const DIR_TRAILER_SIGNATURE: &[u8] = b"DIRTRL1";
pub const DX_ROOT_SIGNATURE: &[u8] = b"DXDIR01";
pub const DX_LEAF_SIGNATURE: &[u8] = b"DXLEAF1";
pub const REFCOUNT_BLOCK_SIGNATURE: &[u8] = b"REFCNT1";

/// `ocfs2_dinode.i_flags`
pub mod inode_flags {
    pub const VALID: u32 = 0x0000_0001;
    pub const ORPHANED: u32 = 0x0000_0004;
    pub const SYSTEM: u32 = 0x0000_0010;
    pub const SUPER_BLOCK: u32 = 0x0000_0020;
    pub const LOCAL_ALLOC: u32 = 0x0000_0040;
    pub const BITMAP: u32 = 0x0000_0080;
    pub const JOURNAL: u32 = 0x0000_0100;
    pub const HEARTBEAT: u32 = 0x0000_0200;
    pub const CHAIN: u32 = 0x0000_0400;
    pub const DEALLOC: u32 = 0x0000_0800;
    pub const QUOTA: u32 = 0x0000_1000;
    pub const DIO_ORPHANED: u32 = 0x0000_2000;

    /// Names in the order and spelling `debugfs.ocfs2` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (VALID, "Valid"),
        (0x2, "Unused2"),
        (ORPHANED, "Orphan"),
        (0x8, "Unused3"),
        (SYSTEM, "System"),
        (SUPER_BLOCK, "Superblock"),
        (LOCAL_ALLOC, "Localalloc"),
        (BITMAP, "Allocbitmap"),
        (JOURNAL, "Journal"),
        (HEARTBEAT, "Heartbeat"),
        (CHAIN, "Chain"),
        (DEALLOC, "Dealloc"),
        (QUOTA, "Quota"),
        (DIO_ORPHANED, "DioOrphan"),
    ];
}

/// `ocfs2_dinode.i_dyn_features`
pub mod dyn_features {
    pub const INLINE_DATA: u16 = 0x0001;
    pub const HAS_XATTR: u16 = 0x0002;
    pub const INLINE_XATTR: u16 = 0x0004;
    pub const INDEXED_DIR: u16 = 0x0008;
    pub const HAS_REFCOUNT: u16 = 0x0010;

    pub const NAMES: &[(u16, &str)] = &[
        (INLINE_DATA, "InlineData"),
        (HAS_XATTR, "HasXattr"),
        (INLINE_XATTR, "InlineXattr"),
        (INDEXED_DIR, "IndexedDir"),
        (HAS_REFCOUNT, "Refcounted"),
    ];
}

/// Journal flag in `id1.journal1.ij_flags`: the journal needs recovery.
pub const JOURNAL_DIRTY_FL: u32 = 0x0000_0001;

/// Extent record flags (`e_flags`).
pub const EXT_UNWRITTEN: u8 = 0x01;
pub const EXT_REFCOUNTED: u8 = 0x02;

/// Directory entry file types.
pub mod file_type {
    pub const UNKNOWN: u8 = 0;
    pub const REG_FILE: u8 = 1;
    pub const DIR: u8 = 2;
    pub const CHRDEV: u8 = 3;
    pub const BLKDEV: u8 = 4;
    pub const FIFO: u8 = 5;
    pub const SOCK: u8 = 6;
    pub const SYMLINK: u8 = 7;
}

/// `struct ocfs2_block_check`: CRC32 (kernel `crc32_le`, seed ~0, no final xor)
/// plus a Hamming code over the whole block, with this field zeroed.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BlockCheck {
    /*00*/ pub bc_crc32e: U32,
    pub bc_ecc: U16,
    pub bc_reserved1: U16,
    /*08*/
}

/// `struct ocfs2_extent_rec`. `e_int_clusters` is a union with
/// `{ e_leaf_clusters: le16, e_reserved1: u8, e_flags: u8 }` for leaves.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentRec {
    /*00*/ pub e_cpos: U32,
    pub e_int_clusters: U32,
    pub e_blkno: U64,
    /*10*/
}

impl ExtentRec {
    /// Clusters covered by a leaf record (`e_leaf_clusters`).
    pub fn leaf_clusters(&self) -> u16 {
        (self.e_int_clusters.get() & 0xFFFF) as u16
    }
    /// Flags of a leaf record (`e_flags`).
    pub fn flags(&self) -> u8 {
        (self.e_int_clusters.get() >> 24) as u8
    }
    /// Clusters covered: `e_int_clusters` in a branch, `e_leaf_clusters` in a leaf.
    pub fn clusters(&self, depth: u16) -> u32 {
        if depth == 0 {
            u32::from(self.leaf_clusters())
        } else {
            self.e_int_clusters.get()
        }
    }
}

/// `struct ocfs2_extent_list` header; `l_recs` follow.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentList {
    /*00*/ pub l_tree_depth: U16,
    pub l_count: U16,
    pub l_next_free_rec: U16,
    pub l_reserved1: U16,
    pub l_reserved2: U64,
    /*10*/
}

/// `struct ocfs2_chain_rec`
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ChainRec {
    /*00*/ pub c_free: U32,
    pub c_total: U32,
    pub c_blkno: U64,
    /*10*/
}

/// `struct ocfs2_chain_list` header; `cl_recs` follow.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ChainList {
    /*00*/ pub cl_cpg: U16,
    pub cl_bpc: U16,
    pub cl_count: U16,
    pub cl_next_free_rec: U16,
    pub cl_reserved1: U64,
    /*10*/
}

/// `struct ocfs2_truncate_log` header; `tl_recs` (8 bytes each) follow.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TruncateLog {
    /*00*/ pub tl_count: U16,
    pub tl_used: U16,
    pub tl_reserved1: U32,
    /*08*/
}

/// `struct ocfs2_truncate_rec`
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TruncateRec {
    pub t_start: U32,
    pub t_clusters: U32,
}

/// `struct ocfs2_extent_block` header (the list header is `h_list`).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentBlock {
    /*00*/ pub h_signature: [u8; 8],
    pub h_check: BlockCheck,
    /*10*/ pub h_suballoc_slot: U16,
    pub h_suballoc_bit: U16,
    pub h_fs_generation: U32,
    pub h_blkno: U64,
    /*20*/ pub h_suballoc_loc: U64,
    pub h_next_leaf_blk: U64,
    /*30*/ pub h_list: ExtentList,
    /*40*/
}

/// `struct ocfs2_extended_slot` as the MMP patch defines it: `es_valid` is a
/// `__le32` (formerly `__u8 es_valid; __u8 es_reserved1[3]`).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtendedSlot {
    /*00*/ pub es_valid: U32,
    pub es_node_num: U32,
    /*08*/
}

/// `struct ocfs2_cluster_info`
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ClusterInfo {
    /*00*/ pub ci_stack: [u8; 4],
    pub ci_stackflags: u8,
    pub ci_reserved1: u8,
    pub ci_reserved2: u8,
    pub ci_reserved3: u8,
    /*08*/ pub ci_cluster: [u8; 16],
    /*18*/
}

/// `struct ocfs2_super_block`, inside the superblock dinode at `id2` (0xC0).
/// Offsets are relative to `id2`.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SuperBlock {
    /*00*/ pub s_major_rev_level: U16,
    pub s_minor_rev_level: U16,
    pub s_mnt_count: U16,
    pub s_max_mnt_count: U16,
    pub s_state: U16,
    pub s_errors: U16,
    pub s_checkinterval: U32,
    /*10*/ pub s_lastcheck: U64,
    pub s_creator_os: U32,
    pub s_feature_compat: U32,
    /*20*/ pub s_feature_incompat: U32,
    pub s_feature_ro_compat: U32,
    pub s_root_blkno: U64,
    /*30*/ pub s_system_dir_blkno: U64,
    pub s_blocksize_bits: U32,
    pub s_clustersize_bits: U32,
    /*40*/ pub s_max_slots: U16,
    pub s_tunefs_flag: U16,
    pub s_uuid_hash: U32,
    pub s_first_cluster_group: U64,
    /*50*/ pub s_label: [u8; 64],
    /*90*/ pub s_uuid: [u8; 16],
    /*A0*/ pub s_cluster_info: ClusterInfo,
    /*B8*/ pub s_xattr_inline_size: U16,
    /// MMP: seconds between kmmpd updates (was `s_reserved0`).
    /*BA*/
    pub s_mmp_update_interval: U16,
    /*BC*/ pub s_dx_seed: [U32; 3],
    /*C8*/ pub s_reserved2: [U64; 15],
    /*140*/
}

/// `struct ocfs2_local_alloc` header, at dinode `id2`.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LocalAlloc {
    /*00*/ pub la_bm_off: U32,
    pub la_size: U16,
    pub la_reserved1: U16,
    pub la_reserved2: U64,
    /*10*/
}

/// `struct ocfs2_inline_data` header, at dinode `id2`.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InlineData {
    /*00*/ pub id_count: U16,
    pub id_reserved0: U16,
    pub id_reserved1: U32,
    /*08*/
}

/// `struct ocfs2_dinode` up to `id2` (0xC0 bytes); `id2` follows and fills
/// the block. `id1` is kept as raw bytes with typed accessors.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Dinode {
    /*00*/ pub i_signature: [u8; 8],
    pub i_generation: U32,
    pub i_suballoc_slot: U16,
    pub i_suballoc_bit: U16,
    /*10*/ pub i_links_count_hi: U16,
    pub i_xattr_inline_size: U16,
    pub i_clusters: U32,
    pub i_uid: U32,
    pub i_gid: U32,
    /*20*/ pub i_size: U64,
    pub i_mode: U16,
    pub i_links_count: U16,
    pub i_flags: U32,
    /*30*/ pub i_atime: U64,
    pub i_ctime: U64,
    /*40*/ pub i_mtime: U64,
    pub i_dtime: U64,
    /*50*/ pub i_blkno: U64,
    pub i_last_eb_blk: U64,
    /*60*/ pub i_fs_generation: U32,
    pub i_atime_nsec: U32,
    pub i_ctime_nsec: U32,
    pub i_mtime_nsec: U32,
    /*70*/ pub i_attr: U32,
    pub i_orphaned_slot: U16,
    pub i_dyn_features: U16,
    pub i_xattr_loc: U64,
    /*80*/ pub i_check: BlockCheck,
    /*88*/ pub i_dx_root: U64,
    /*90*/ pub i_refcount_loc: U64,
    pub i_suballoc_loc: U64,
    /*A0*/ pub i_dio_orphaned_slot: U16,
    pub i_reserved1: [U16; 3],
    pub i_reserved2: [U64; 2],
    /*B8*/ pub id1: [u8; 8],
    /*C0*/
}

impl Dinode {
    /// `id1.bitmap1.i_used`
    pub fn bitmap_used(&self) -> u32 {
        u32::from_le_bytes([self.id1[0], self.id1[1], self.id1[2], self.id1[3]])
    }
    /// `id1.bitmap1.i_total`
    pub fn bitmap_total(&self) -> u32 {
        u32::from_le_bytes([self.id1[4], self.id1[5], self.id1[6], self.id1[7]])
    }
    /// Bits of a chain allocator not in use: `i_total - i_used`.
    pub fn bitmap_free(&self) -> u64 {
        u64::from(self.bitmap_total()).saturating_sub(u64::from(self.bitmap_used()))
    }
    /// Set `id1.bitmap1.i_used` (also `id1.journal1.ij_flags`).
    pub fn set_bitmap_used(&mut self, v: u32) {
        self.id1[..4].copy_from_slice(&v.to_le_bytes());
    }
    /// Set `id1.bitmap1.i_total` (also `id1.journal1.ij_recovery_generation`).
    pub fn set_bitmap_total(&mut self, v: u32) {
        self.id1[4..].copy_from_slice(&v.to_le_bytes());
    }
    /// `id1.journal1.ij_flags`
    pub fn journal_flags(&self) -> u32 {
        self.bitmap_used()
    }
    /// `id1.journal1.ij_recovery_generation`
    pub fn journal_recovery_generation(&self) -> u32 {
        self.bitmap_total()
    }
    /// `id1.dev1.i_rdev`
    pub fn rdev(&self) -> u64 {
        u64::from_le_bytes(self.id1)
    }
    /// Full link count (`i_links_count` plus `i_links_count_hi << 16`).
    pub fn links(&self) -> u32 {
        u32::from(self.i_links_count.get()) | (u32::from(self.i_links_count_hi.get()) << 16)
    }
}

/// Offset of `id2` inside a dinode.
pub const DINODE_ID2: usize = size_of::<Dinode>();

/// `struct ocfs2_dir_entry` header; the name (`name_len` bytes) follows.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirEntryHeader {
    /*00*/ pub inode: U64,
    pub rec_len: U16,
    pub name_len: u8,
    pub file_type: u8,
    /*0C*/
}

pub const DIR_MEMBER_LEN: usize = size_of::<DirEntryHeader>();

/// `OCFS2_DIR_REC_LEN(name_len)`: entry size rounded up to 4 bytes.
pub const fn dir_rec_len(name_len: usize) -> usize {
    (name_len + DIR_MEMBER_LEN + 3) & !3
}

/// `struct ocfs2_dir_block_trailer`, the last 0x40 bytes of a directory block
/// when the volume uses trailers (metaecc).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirBlockTrailer {
    /*00*/ pub db_compat_inode: U64,
    pub db_compat_rec_len: U16,
    pub db_compat_name_len: u8,
    pub db_reserved0: u8,
    pub db_reserved1: U16,
    pub db_free_rec_len: U16,
    /*10*/ pub db_signature: [u8; 8],
    pub db_reserved2: U64,
    pub db_free_next: U64,
    // The C header's /*20*/ and /*30*/ comments are off by 8: the real
    // offsets are 0x28 and 0x38 (sizeof is 0x40 either way).
    pub db_blkno: U64,
    pub db_parent_dinode: U64,
    pub db_check: BlockCheck,
    /*40*/
}

/// `struct ocfs2_group_desc` header; the bitmap starts at 0x40.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GroupDesc {
    /*00*/ pub bg_signature: [u8; 8],
    pub bg_size: U16,
    pub bg_bits: U16,
    pub bg_free_bits_count: U16,
    pub bg_chain: U16,
    /*10*/ pub bg_generation: U32,
    pub bg_contig_free_bits: U16,
    pub bg_reserved1: U16,
    pub bg_next_group: U64,
    /*20*/ pub bg_parent_dinode: U64,
    pub bg_blkno: U64,
    /*30*/ pub bg_check: BlockCheck,
    pub bg_reserved2: U64,
    /*40*/
}

/// `struct ocfs2_refcount_block`: field offsets in the block. The list at
/// [`LIST`](refcount_block::LIST) holds refcount records (`rf_records`), or,
/// with [`TREE_FL`](refcount_block::TREE_FL), an extent list of leaf blocks
/// (`rf_list`).
pub mod refcount_block {
    pub const FS_GENERATION: usize = 0x0C;
    pub const BLKNO: usize = 0x10;
    pub const PARENT: usize = 0x18;
    pub const COUNT: usize = 0x30;
    pub const FLAGS: usize = 0x34;
    pub const CLUSTERS: usize = 0x38;
    pub const LIST: usize = 0x80;
    /// `ocfs2_refcount_list`: `rl_count`, `rl_used`, then 16-byte records
    /// after a 16-byte header.
    pub const RL_COUNT: usize = LIST;
    pub const RL_USED: usize = LIST + 2;
    /// `OCFS2_REFCOUNT_TREE_FL`: the block holds `rf_list`.
    pub const TREE_FL: u32 = 0x2;
}

/// Largest bitmap of a suballocator group descriptor with `discontig-bg`.
pub const MAX_BG_BITMAP_SIZE: usize = 256;

/// `struct ocfs2_dx_root_block` header up to the union at 0xC0.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DxRootBlock {
    /*00*/ pub dr_signature: [u8; 8],
    pub dr_check: BlockCheck,
    /*10*/ pub dr_suballoc_slot: U16,
    pub dr_suballoc_bit: U16,
    pub dr_fs_generation: U32,
    pub dr_blkno: U64,
    /*20*/ pub dr_last_eb_blk: U64,
    pub dr_clusters: U32,
    pub dr_flags: u8,
    pub dr_reserved0: u8,
    pub dr_reserved1: U16,
    /*30*/ pub dr_dir_blkno: U64,
    pub dr_num_entries: U32,
    pub dr_reserved2: U32,
    /*40*/ pub dr_free_blk: U64,
    pub dr_suballoc_loc: U64,
    /*50*/ pub dr_reserved3: [U64; 14],
    /*C0*/
}

// ---- layout assertions, mirroring the /*xx*/ comments of ocfs2_fs.h ----
const _: () = {
    assert!(size_of::<BlockCheck>() == 0x08);
    assert!(size_of::<ExtentRec>() == 0x10);
    assert!(size_of::<ExtentList>() == 0x10);
    assert!(size_of::<ChainRec>() == 0x10);
    assert!(size_of::<ChainList>() == 0x10);
    assert!(size_of::<TruncateLog>() == 0x08);
    assert!(size_of::<ExtentBlock>() == 0x40);
    assert!(offset_of!(ExtentBlock, h_suballoc_slot) == 0x10);
    assert!(offset_of!(ExtentBlock, h_suballoc_loc) == 0x20);
    assert!(offset_of!(ExtentBlock, h_list) == 0x30);
    assert!(size_of::<ExtendedSlot>() == 0x08);
    assert!(size_of::<ClusterInfo>() == 0x18);
    assert!(size_of::<SuperBlock>() == 0x140);
    assert!(offset_of!(SuperBlock, s_lastcheck) == 0x10);
    assert!(offset_of!(SuperBlock, s_feature_incompat) == 0x20);
    assert!(offset_of!(SuperBlock, s_system_dir_blkno) == 0x30);
    assert!(offset_of!(SuperBlock, s_max_slots) == 0x40);
    assert!(offset_of!(SuperBlock, s_first_cluster_group) == 0x48);
    assert!(offset_of!(SuperBlock, s_label) == 0x50);
    assert!(offset_of!(SuperBlock, s_uuid) == 0x90);
    assert!(offset_of!(SuperBlock, s_cluster_info) == 0xA0);
    assert!(offset_of!(SuperBlock, s_xattr_inline_size) == 0xB8);
    assert!(offset_of!(SuperBlock, s_mmp_update_interval) == 0xBA);
    assert!(offset_of!(SuperBlock, s_dx_seed) == 0xBC);
    assert!(size_of::<LocalAlloc>() == 0x10);
    assert!(size_of::<InlineData>() == 0x08);
    assert!(size_of::<Dinode>() == 0xC0);
    assert!(offset_of!(Dinode, i_links_count_hi) == 0x10);
    assert!(offset_of!(Dinode, i_size) == 0x20);
    assert!(offset_of!(Dinode, i_atime) == 0x30);
    assert!(offset_of!(Dinode, i_mtime) == 0x40);
    assert!(offset_of!(Dinode, i_blkno) == 0x50);
    assert!(offset_of!(Dinode, i_fs_generation) == 0x60);
    assert!(offset_of!(Dinode, i_attr) == 0x70);
    assert!(offset_of!(Dinode, i_check) == 0x80);
    assert!(offset_of!(Dinode, i_dx_root) == 0x88);
    assert!(offset_of!(Dinode, i_refcount_loc) == 0x90);
    assert!(offset_of!(Dinode, i_dio_orphaned_slot) == 0xA0);
    assert!(offset_of!(Dinode, id1) == 0xB8);
    assert!(size_of::<DirEntryHeader>() == 0x0C);
    assert!(size_of::<DirBlockTrailer>() == 0x40);
    assert!(offset_of!(DirBlockTrailer, db_signature) == 0x10);
    assert!(offset_of!(DirBlockTrailer, db_blkno) == 0x28);
    assert!(offset_of!(DirBlockTrailer, db_check) == 0x38);
    assert!(size_of::<GroupDesc>() == 0x40);
    assert!(offset_of!(GroupDesc, bg_generation) == 0x10);
    assert!(offset_of!(GroupDesc, bg_parent_dinode) == 0x20);
    assert!(offset_of!(GroupDesc, bg_check) == 0x30);
    assert!(size_of::<DxRootBlock>() == 0xC0);
    assert!(offset_of!(DxRootBlock, dr_dir_blkno) == 0x30);
    assert!(offset_of!(DxRootBlock, dr_free_blk) == 0x40);
};

/// Byte offset of the superblock's `s_mmp_update_interval` inside the
/// superblock dinode block (0xC0 + 0xBA = 0x17A).
pub const MMP_INTERVAL_OFFSET_IN_BLOCK: usize =
    DINODE_ID2 + offset_of!(SuperBlock, s_mmp_update_interval);

/// Extent records that fit in an inode's `id2.i_list`.
pub const fn extent_recs_per_inode(blocksize: usize) -> usize {
    (blocksize - DINODE_ID2 - size_of::<ExtentList>()) / size_of::<ExtentRec>()
}
/// Chain records that fit in an inode's `id2.i_chain`.
pub const fn chain_recs_per_inode(blocksize: usize) -> usize {
    (blocksize - DINODE_ID2 - size_of::<ChainList>()) / size_of::<ChainRec>()
}
/// Extent records that fit in an extent block.
pub const fn extent_recs_per_eb(blocksize: usize) -> usize {
    (blocksize - size_of::<ExtentBlock>()) / size_of::<ExtentRec>()
}
/// Bytes of inline data a dinode can hold (without inline xattrs).
pub const fn max_inline_data(blocksize: usize) -> usize {
    blocksize - DINODE_ID2 - size_of::<InlineData>()
}
/// Bytes of a local alloc bitmap in a dinode.
pub const fn local_alloc_size(blocksize: usize) -> usize {
    blocksize - DINODE_ID2 - size_of::<LocalAlloc>()
}
/// Block number of backup superblock `index` (0..6) for this block size.
pub const fn backup_super_blkno(blocksize: u32, index: usize) -> u64 {
    (BACKUP_SB_START << (2 * index)) / blocksize as u64
}

/// `OCFS2_MIN_XATTR_INLINE_SIZE`: the inline xattr area mkfs.ocfs2 and
/// tunefs.ocfs2 give a volume with `xattr`.
pub const OCFS2_MIN_XATTR_INLINE_SIZE: u16 = 256;
