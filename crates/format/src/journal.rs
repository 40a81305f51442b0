//! The jbd2 journal superblock (big-endian, first block of each
//! `journal:NNNN` system file), as `include/linux/jbd2.h` lays it out.

use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

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

/// jbd2's 64-bit block numbers in tags (`JBD2_FEATURE_INCOMPAT_64BIT`).
pub const JBD2_FEATURE_INCOMPAT_64BIT: u32 = 0x2;

/// The three feature words of a journal superblock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JournalFeatures {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

impl JournalFeatures {
    pub fn of(sb: &JournalSuperblock) -> Self {
        JournalFeatures {
            compat: sb.s_feature_compat.get(),
            incompat: sb.s_feature_incompat.get(),
            ro_compat: sb.s_feature_ro_compat.get(),
        }
    }
    /// Every feature of either.
    pub fn union(self, o: JournalFeatures) -> Self {
        JournalFeatures {
            compat: self.compat | o.compat,
            incompat: self.incompat | o.incompat,
            ro_compat: self.ro_compat | o.ro_compat,
        }
    }
}

/// An empty journal's superblock, as ocfs2-tools writes one for a new or
/// reformatted journal of `maxlen` blocks: version 2, the log starting at
/// block 1 (2 for 512-byte blocks, where the superblock takes two blocks),
/// sequence 1, one user, the volume's UUID. Returns the bytes that start
/// the journal: 1024, or one block when blocks are larger.
pub fn fresh_superblock(
    block_size: u32,
    maxlen: u32,
    features: JournalFeatures,
    uuid: [u8; 16],
) -> Vec<u8> {
    let mut jsb = JournalSuperblock::new_zeroed();
    jsb.h_magic.set(JBD2_MAGIC);
    jsb.h_blocktype.set(JBD2_SUPERBLOCK_V2);
    jsb.s_blocksize.set(block_size);
    jsb.s_maxlen.set(maxlen);
    jsb.s_first.set(if block_size == 512 { 2 } else { 1 });
    jsb.s_sequence.set(1);
    jsb.s_start.set(1);
    jsb.s_feature_compat.set(features.compat);
    jsb.s_feature_incompat.set(features.incompat);
    jsb.s_feature_ro_compat.set(features.ro_compat);
    jsb.s_uuid = uuid;
    jsb.s_nr_users.set(1);
    let mut b = vec![0u8; 1024.max(block_size as usize)];
    b[..core::mem::size_of::<JournalSuperblock>()].copy_from_slice(jsb.as_bytes());
    b
}
