//! The jbd2 journal superblock (big-endian, first block of each
//! `journal:NNNN` system file), as `include/linux/jbd2.h` lays it out.

use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub const JBD2_MAGIC: u32 = 0xC03B_3998;
pub const JBD2_SUPERBLOCK_V1: u32 = 3;
pub const JBD2_SUPERBLOCK_V2: u32 = 4;

/// `journal_superblock_t` up to `s_users` (0x100 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct JournalSuperblock {
    /*00*/ pub h_magic: U32,
    pub h_blocktype: U32,
    pub h_sequence: U32,
    /*0C*/ pub s_blocksize: U32,
    pub s_maxlen: U32,
    pub s_first: U32,
    /*18*/ pub s_sequence: U32,
    pub s_start: U32,
    /*20*/ pub s_errno: U32,
    pub s_feature_compat: U32,
    pub s_feature_incompat: U32,
    pub s_feature_ro_compat: U32,
    /*30*/ pub s_uuid: [u8; 16],
    /*40*/ pub s_nr_users: U32,
    pub s_dynsuper: U32,
    pub s_max_transaction: U32,
    pub s_max_trans_data: U32,
    /*50*/ pub s_checksum_type: u8,
    pub s_padding2: [u8; 3],
    pub s_num_fc_blks: U32,
    pub s_head: U32,
    /*5C*/ pub s_padding: [U32; 40],
    /*FC*/ pub s_checksum: U32,
    /*100*/
}

const _: () = {
    assert!(core::mem::size_of::<JournalSuperblock>() == 0x100);
    assert!(core::mem::offset_of!(JournalSuperblock, s_uuid) == 0x30);
    assert!(core::mem::offset_of!(JournalSuperblock, s_nr_users) == 0x40);
    assert!(core::mem::offset_of!(JournalSuperblock, s_checksum_type) == 0x50);
    assert!(core::mem::offset_of!(JournalSuperblock, s_checksum) == 0xFC);
};

impl JournalSuperblock {
    pub fn is_valid(&self) -> bool {
        self.h_magic.get() == JBD2_MAGIC
            && matches!(
                self.h_blocktype.get(),
                JBD2_SUPERBLOCK_V1 | JBD2_SUPERBLOCK_V2
            )
    }
    /// jbd2's own view: the log has a start block (`s_start != 0`). OCFS2
    /// does not use it to decide recovery (mkfs.ocfs2 writes `s_start = 1`
    /// on a clean journal); the journal inode's `OCFS2_JOURNAL_DIRTY_FL`
    /// decides.
    pub fn log_started(&self) -> bool {
        self.s_start.get() != 0
    }
}
