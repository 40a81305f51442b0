//! The jbd2 log inside an OCFS2 journal file: block headers, descriptor
//! tags, revoke and commit blocks, their checksums, and the walk the
//! kernel's recovery (fs/jbd2/recovery.c) makes over them.
//!
//! Every jbd2 integer is big-endian. Journal blocks are numbered inside the
//! journal file (block 0 holds the journal superblock); the caller maps them
//! to device blocks and reads them through the closure it passes in, so this
//! module reads no device and never panics on a damaged log: every problem
//! becomes a [`Damage`] and the walk ends at the last transaction that is
//! committed and valid. See docs/jbd2-replay-facts.md for the sources.

use crate::journal::{JournalSuperblock, JBD2_MAGIC, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2};
use std::collections::{BTreeMap, HashMap};
use zerocopy::FromBytes;

/// `h_blocktype` values.
pub mod blocktype {
    pub const DESCRIPTOR: u32 = 1;
    pub const COMMIT: u32 = 2;
    pub const REVOKE: u32 = 5;
}

/// Feature bits of a v2 journal superblock.
pub mod feature {
    pub const COMPAT_CHECKSUM: u32 = 0x1;
    pub const INCOMPAT_REVOKE: u32 = 0x1;
    pub const INCOMPAT_64BIT: u32 = 0x2;
    pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
    pub const INCOMPAT_CSUM_V2: u32 = 0x8;
    pub const INCOMPAT_CSUM_V3: u32 = 0x10;
    pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
    /// What this walk understands. Fast commits are ext4's alone: an OCFS2
    /// journal carrying them is refused, not half replayed.
    pub const KNOWN_INCOMPAT: u32 = INCOMPAT_REVOKE
        | INCOMPAT_64BIT
        | INCOMPAT_ASYNC_COMMIT
        | INCOMPAT_CSUM_V2
        | INCOMPAT_CSUM_V3;
}

/// Descriptor tag flags.
pub mod tag_flag {
    pub const ESCAPE: u16 = 0x1;
    pub const SAME_UUID: u16 = 0x2;
    pub const LAST_TAG: u16 = 0x8;
}

/// `s_checksum_type` for CRC32C, the only one v2/v3 checksums use.
const CSUM_TYPE_CRC32C: u8 = 4;
/// Commit block `h_chksum_type` for the v1 (CRC32) checksum.
const COMMIT_CSUM_CRC32: u8 = 1;
/// Size of `struct commit_header`: the "partial" v2/v3 commit check runs
/// over these bytes only, the rest of the block zeroed.
const COMMIT_HEADER_BYTES: usize = 60;
/// Byte offset of `h_chksum[0]` in a commit block.
const COMMIT_CSUM_AT: usize = 16;
/// A revoke block's header: the common header and `r_count`.
const REVOKE_HEADER: usize = 16;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// `tid_gt`: transaction ids compare modulo 2^32.
pub fn tid_gt(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) > 0
}

// ---------------------------------------------------------------- checksums

const fn crc_tables() -> ([u32; 256], [u32; 256]) {
    let mut c = [0u32; 256];
    let mut be = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        // CRC32C (Castagnoli), reflected.
        let mut r = i as u32;
        let mut k = 0;
        while k < 8 {
            r = if r & 1 != 0 {
                (r >> 1) ^ 0x82F6_3B78
            } else {
                r >> 1
            };
            k += 1;
        }
        c[i] = r;
        // CRC-32 (IEEE), not reflected: the kernel's crc32_be.
        let mut r = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            k += 1;
        }
        be[i] = r;
        i += 1;
    }
    (c, be)
}
const TABLES: ([u32; 256], [u32; 256]) = crc_tables();

/// The kernel's `crc32c(seed, data)`: no inversion before or after.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &b| {
        TABLES.0[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// The kernel's `crc32_be(seed, data)` (jbd2's v1 transaction checksum).
pub fn crc32_be_raw(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &b| {
        TABLES.1[(((crc >> 24) ^ u32::from(b)) & 0xFF) as usize] ^ (crc << 8)
    })
}

// ------------------------------------------------------------- the journal

/// Why a journal superblock cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperblockProblem {
    #[error("no jbd2 superblock (magic {0:#010x}, expected 0xc03b3998 with block type 3 or 4)")]
    Magic(u32),
    #[error("jbd2 block size {found} is not the volume's {expected}")]
    BlockSize { found: u32, expected: u32 },
    #[error("s_maxlen {maxlen} is larger than the journal file ({blocks} blocks)")]
    TooShort { maxlen: u32, blocks: u64 },
    #[error("s_first {first} is outside the log (1..{len})")]
    First { first: u32, len: u32 },
    #[error("s_start {start} is outside the log ({first}..{len})")]
    Start { start: u32, first: u32, len: u32 },
    #[error("unsupported journal features (incompat {incompat:#x}, ro_compat {ro_compat:#x})")]
    Features { incompat: u32, ro_compat: u32 },
    #[error("contradictory checksum features (compat {compat:#x}, incompat {incompat:#x})")]
    Checksums { compat: u32, incompat: u32 },
    #[error("checksum type {0} (v2/v3 checksums need 4, CRC32C)")]
    ChecksumType(u8),
    #[error("superblock checksum {stored:#010x}, computed {computed:#010x}")]
    SuperblockChecksum { stored: u32, computed: u32 },
}

/// What the walk needs of a journal superblock, validated the way the
/// kernel's `journal_get_superblock` and `load_superblock` validate it.
#[derive(Debug, Clone)]
pub struct Journal {
    pub block_size: usize,
    /// The log is `[first, last)` in journal blocks.
    pub first: u32,
    pub last: u32,
    /// Where the log starts (0: nothing to replay) and its first tid.
    pub start: u32,
    pub sequence: u32,
    pub compat: u32,
    pub incompat: u32,
    /// `crc32c(~0, s_uuid)`, with v2/v3 checksums.
    pub csum_seed: Option<u32>,
    pub errno: i32,
}

impl Journal {
    /// Validate the superblock in `block` (journal block 0). `file_blocks`
    /// is the journal file's length in blocks (`i_size >> bits`).
    pub fn from_superblock(
        block: &[u8],
        fs_block_size: u32,
        file_blocks: u64,
    ) -> Result<Journal, SuperblockProblem> {
        let Ok((sb, _)) = JournalSuperblock::read_from_prefix(block) else {
            return Err(SuperblockProblem::Magic(0));
        };
        if !sb.is_valid() {
            return Err(SuperblockProblem::Magic(sb.h_magic.get()));
        }
        let bs = sb.s_blocksize.get();
        if bs != fs_block_size || block.len() < 1024 {
            return Err(SuperblockProblem::BlockSize {
                found: bs,
                expected: fs_block_size,
            });
        }
        let maxlen = sb.s_maxlen.get();
        if u64::from(maxlen) > file_blocks {
            return Err(SuperblockProblem::TooShort {
                maxlen,
                blocks: file_blocks,
            });
        }
        let first = sb.s_first.get();
        if first == 0 || first >= maxlen {
            return Err(SuperblockProblem::First { first, len: maxlen });
        }
        let (compat, incompat, ro_compat) = if sb.h_blocktype.get() == JBD2_SUPERBLOCK_V2 {
            (
                sb.s_feature_compat.get(),
                sb.s_feature_incompat.get(),
                sb.s_feature_ro_compat.get(),
            )
        } else {
            debug_assert_eq!(sb.h_blocktype.get(), JBD2_SUPERBLOCK_V1);
            (0, 0, 0)
        };
        if ro_compat != 0 || incompat & !feature::KNOWN_INCOMPAT != 0 {
            return Err(SuperblockProblem::Features {
                incompat,
                ro_compat,
            });
        }
        let v2 = incompat & feature::INCOMPAT_CSUM_V2 != 0;
        let v3 = incompat & feature::INCOMPAT_CSUM_V3 != 0;
        if (v2 && v3) || ((v2 || v3) && compat & feature::COMPAT_CHECKSUM != 0) {
            return Err(SuperblockProblem::Checksums { compat, incompat });
        }
        let csum_seed = if v2 || v3 {
            if sb.s_checksum_type != CSUM_TYPE_CRC32C {
                return Err(SuperblockProblem::ChecksumType(sb.s_checksum_type));
            }
            let stored = sb.s_checksum.get();
            let computed = superblock_checksum(block);
            if stored != computed {
                return Err(SuperblockProblem::SuperblockChecksum { stored, computed });
            }
            Some(crc32c_raw(!0, &sb.s_uuid))
        } else {
            None
        };
        let start = sb.s_start.get();
        if start != 0 && (start < first || start >= maxlen) {
            return Err(SuperblockProblem::Start {
                start,
                first,
                len: maxlen,
            });
        }
        Ok(Journal {
            block_size: bs as usize,
            first,
            last: maxlen,
            start,
            sequence: sb.s_sequence.get(),
            compat,
            incompat,
            csum_seed,
            errno: sb.s_errno.get() as i32,
        })
    }

    fn has64(&self) -> bool {
        self.incompat & feature::INCOMPAT_64BIT != 0
    }
    fn v3(&self) -> bool {
        self.incompat & feature::INCOMPAT_CSUM_V3 != 0
    }
    /// Bytes at the end of descriptor and revoke blocks taken by the v2/v3 tail.
    fn tail(&self) -> usize {
        if self.csum_seed.is_some() {
            4
        } else {
            0
        }
    }
    /// `journal_tag_bytes`.
    pub fn tag_bytes(&self) -> usize {
        if self.v3() {
            return 16;
        }
        let base = if self.csum_seed.is_some() { 10 } else { 8 };
        if self.has64() {
            base + 4
        } else {
            base
        }
    }
    fn next(&self, blk: u32) -> u32 {
        let n = blk + 1;
        if n >= self.last {
            n - (self.last - self.first)
        } else {
            n
        }
    }
    /// The v2/v3 tail of a descriptor or revoke block holds the right sum.
    fn tail_ok(&self, block: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else {
            return true;
        };
        let at = block.len() - 4;
        let mut copy = block.to_vec();
        copy[at..].fill(0);
        crc32c_raw(seed, &copy) == be32(block, at)
    }
    fn commit_ok(&self, block: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else {
            return true;
        };
        let stored = be32(block, COMMIT_CSUM_AT);
        let mut copy = block.to_vec();
        copy[COMMIT_CSUM_AT..COMMIT_CSUM_AT + 4].fill(0);
        if crc32c_raw(seed, &copy) == stored {
            return true;
        }
        // The kernel also accepts a commit block whose sum covers only the
        // commit header (an "incomplete commit block").
        copy[COMMIT_HEADER_BYTES..].fill(0);
        crc32c_raw(seed, &copy) == stored
    }
    fn data_ok(&self, tag: &Tag, tid: u32, data: &[u8]) -> bool {
        let Some(seed) = self.csum_seed else {
            return true;
        };
        let c = crc32c_raw(crc32c_raw(seed, &tid.to_be_bytes()), data);
        if self.v3() {
            c == tag.checksum
        } else {
            (c & 0xFFFF) == tag.checksum
        }
    }

    /// The tags of a descriptor block.
    pub fn tags(&self, block: &[u8]) -> Vec<Tag> {
        let tb = self.tag_bytes();
        let limit = block.len().saturating_sub(self.tail());
        let mut out = Vec::new();
        let mut at = 12;
        while at + tb <= limit {
            let flags = be16(block, at + 6);
            let mut target = u64::from(be32(block, at));
            if self.has64() {
                target |= u64::from(be32(block, at + 8)) << 32;
            }
            let checksum = if self.v3() {
                be32(block, at + 12)
            } else if self.csum_seed.is_some() {
                u32::from(be16(block, at + 4))
            } else {
                0
            };
            out.push(Tag {
                target,
                flags,
                checksum,
            });
            at += tb;
            if flags & tag_flag::SAME_UUID == 0 {
                at += 16;
            }
            if flags & tag_flag::LAST_TAG != 0 {
                break;
            }
        }
        out
    }

    /// The block numbers a revoke block revokes, or `None` when its count
    /// does not fit the block.
    pub fn revokes(&self, block: &[u8]) -> Option<Vec<u64>> {
        let count = be32(block, 12) as usize;
        if count < REVOKE_HEADER || count > block.len() - self.tail() {
            return None;
        }
        let size = if self.has64() { 8 } else { 4 };
        let mut out = Vec::new();
        let mut at = REVOKE_HEADER;
        while at + size <= count {
            out.push(if size == 8 {
                u64::from(be32(block, at)) << 32 | u64::from(be32(block, at + 4))
            } else {
                u64::from(be32(block, at))
            });
            at += size;
        }
        Some(out)
    }
}

/// The checksum a v2/v3 journal superblock stores in `s_checksum`.
pub fn superblock_checksum(block: &[u8]) -> u32 {
    let mut sb = block[..1024].to_vec();
    sb[0xFC..0x100].fill(0);
    crc32c_raw(!0, &sb)
}

/// One descriptor tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The device block the logged copy belongs to.
    pub target: u64,
    pub flags: u16,
    /// `t_checksum` (16 bits with v2, 32 with v3; 0 without).
    pub checksum: u32,
}

/// One logged block of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Logged {
    /// Journal block holding the copy.
    pub log_block: u32,
    pub target: u64,
    /// The copy's first four bytes were the jbd2 magic: put it back.
    pub escaped: bool,
    /// False when its v2/v3 checksum fails (the kernel skips such a block).
    pub valid: bool,
}

/// A committed transaction, as the log holds it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Transaction {
    pub tid: u32,
    /// Journal block of its first descriptor or revoke block.
    pub start: u32,
    pub blocks: Vec<Logged>,
    pub revokes: Vec<u64>,
}

/// What is wrong with a log; each ends the walk before the transaction it
/// names (that transaction and every later one are not replayed), except
/// [`Damage::DataChecksum`], which skips one block as the kernel does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum Damage {
    #[error("journal block {block} cannot be read: {why}")]
    Read { block: u32, why: String },
    #[error("transaction {tid}: descriptor at journal block {block} fails its checksum")]
    DescriptorChecksum { tid: u32, block: u32 },
    #[error("transaction {tid}: descriptor at journal block {block} sends a block to {target}, past the end of the volume ({blocks} blocks)")]
    TagPastVolume {
        tid: u32,
        block: u32,
        target: u64,
        blocks: u64,
    },
    #[error(
        "transaction {tid}: revoke block at journal block {block} is damaged (r_count or checksum)"
    )]
    Revoke { tid: u32, block: u32 },
    #[error("transaction {tid}: commit block at journal block {block} fails its checksum")]
    CommitChecksum { tid: u32, block: u32 },
    #[error("transaction {tid}: the logged copy of block {target} at journal block {block} fails its checksum and is skipped")]
    DataChecksum { tid: u32, block: u32, target: u64 },
    #[error("the log runs on past its own length from journal block {block}: it loops")]
    Loops { block: u32 },
}

/// The walk's outcome.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Scan {
    /// Committed transactions, oldest first.
    pub transactions: Vec<Transaction>,
    /// The first tid not replayed: the log ends (or is damaged) there.
    pub end_tid: u32,
    /// A transaction the log holds blocks of but no valid commit for (a
    /// crash during its commit): not replayed, which is what jbd2 wants.
    pub uncommitted: Option<u32>,
    pub damage: Vec<Damage>,
}

impl Scan {
    /// The blocks to write home, last copy wins, revokes honoured: target
    /// device block -> the logged copy to write there.
    pub fn replay_plan(&self) -> BTreeMap<u64, Logged> {
        let mut revoked: HashMap<u64, u32> = HashMap::new();
        for t in &self.transactions {
            for &b in &t.revokes {
                revoked
                    .entry(b)
                    .and_modify(|r| {
                        if tid_gt(t.tid, *r) {
                            *r = t.tid
                        }
                    })
                    .or_insert(t.tid);
            }
        }
        let mut plan = BTreeMap::new();
        for t in &self.transactions {
            for l in &t.blocks {
                // Revoked in transaction R: not replayed from any T <= R.
                let gone = revoked.get(&l.target).is_some_and(|&r| !tid_gt(t.tid, r));
                if l.valid && !gone {
                    plan.insert(l.target, *l);
                }
            }
        }
        plan
    }
}

/// Walk the log from `s_start`, as the kernel's scan pass does, reading
/// journal block `n` with `read(n)`. `volume_blocks` bounds the targets.
pub fn scan(
    j: &Journal,
    volume_blocks: u64,
    read: &mut dyn FnMut(u32) -> Result<Vec<u8>, String>,
) -> Scan {
    let mut out = Scan {
        end_tid: j.sequence,
        ..Scan::default()
    };
    if j.start == 0 {
        return out;
    }
    let mut log = Cursor {
        j,
        read,
        blk: j.start,
        visited: 0,
        len: u64::from(j.last - j.first),
    };
    let mut tid = j.sequence;
    let mut cur = Transaction {
        tid,
        start: j.start,
        ..Transaction::default()
    };
    let mut open = false;
    let v1 = j.compat & feature::COMPAT_CHECKSUM != 0;
    let mut v1_sum = !0u32;
    'walk: while let Some((here, block)) = log.next(&mut out.damage) {
        if be32(&block, 0) != JBD2_MAGIC || be32(&block, 8) != tid {
            break;
        }
        if !open {
            cur.start = here;
        }
        match be32(&block, 4) {
            blocktype::DESCRIPTOR => {
                open = true;
                if !j.tail_ok(&block) {
                    out.damage
                        .push(Damage::DescriptorChecksum { tid, block: here });
                    break;
                }
                if v1 {
                    v1_sum = crc32_be_raw(v1_sum, &block);
                }
                for tag in j.tags(&block) {
                    if tag.target >= volume_blocks {
                        out.damage.push(Damage::TagPastVolume {
                            tid,
                            block: here,
                            target: tag.target,
                            blocks: volume_blocks,
                        });
                        break 'walk;
                    }
                    let log_block = log.blk;
                    // Data blocks are read in the scan only when a checksum
                    // needs them; replay reads them again.
                    let mut valid = true;
                    if v1 || j.csum_seed.is_some() {
                        let Some((_, data)) = log.next(&mut out.damage) else {
                            break 'walk;
                        };
                        if v1 {
                            v1_sum = crc32_be_raw(v1_sum, &data);
                        }
                        if !j.data_ok(&tag, tid, &data) {
                            out.damage.push(Damage::DataChecksum {
                                tid,
                                block: log_block,
                                target: tag.target,
                            });
                            valid = false;
                        }
                    } else if !log.skip(&mut out.damage) {
                        break 'walk;
                    }
                    cur.blocks.push(Logged {
                        log_block,
                        target: tag.target,
                        escaped: tag.flags & tag_flag::ESCAPE != 0,
                        valid,
                    });
                }
            }
            blocktype::REVOKE => {
                open = true;
                match j.revokes(&block) {
                    Some(r) if j.tail_ok(&block) => cur.revokes.extend(r),
                    _ => {
                        out.damage.push(Damage::Revoke { tid, block: here });
                        break;
                    }
                }
            }
            blocktype::COMMIT => {
                let ok = if v1 {
                    let kind = block[12];
                    let size = block[13];
                    let stored = be32(&block, COMMIT_CSUM_AT);
                    (kind == COMMIT_CSUM_CRC32 && size == 4 && stored == v1_sum)
                        || (kind == 0 && size == 0 && stored == 0)
                } else {
                    j.commit_ok(&block)
                };
                if !ok {
                    out.damage.push(Damage::CommitChecksum { tid, block: here });
                    break;
                }
                out.transactions.push(std::mem::take(&mut cur));
                tid = tid.wrapping_add(1);
                cur.tid = tid;
                open = false;
                v1_sum = !0;
            }
            _ => break,
        }
    }
    if open && out.damage.is_empty() {
        out.uncommitted = Some(tid);
    }
    out.end_tid = tid;
    out
}

/// Where the walk is in the log, and how far it has gone: a log longer
/// than the journal loops.
struct Cursor<'a, 'r> {
    j: &'a Journal,
    read: &'r mut dyn FnMut(u32) -> Result<Vec<u8>, String>,
    blk: u32,
    visited: u64,
    len: u64,
}

impl Cursor<'_, '_> {
    /// Step past the current block; false when the log would loop.
    fn skip(&mut self, damage: &mut Vec<Damage>) -> bool {
        self.visited += 1;
        if self.visited > self.len {
            damage.push(Damage::Loops { block: self.blk });
            return false;
        }
        self.blk = self.j.next(self.blk);
        true
    }
    /// Read the current block and step past it.
    fn next(&mut self, damage: &mut Vec<Damage>) -> Option<(u32, Vec<u8>)> {
        let here = self.blk;
        if !self.skip(damage) {
            return None;
        }
        let why = match (self.read)(here) {
            Ok(b) if b.len() == self.j.block_size => return Some((here, b)),
            Ok(b) => format!("{} bytes read, not one block", b.len()),
            Err(why) => why,
        };
        damage.push(Damage::Read { block: here, why });
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_conventions() {
        // CRC-32C check value: the finalized form inverts before and after.
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        // CRC-32/MPEG-2 (crc32_be from ~0, no final inversion).
        assert_eq!(crc32_be_raw(!0, b"123456789"), 0x0376_E6E7);
    }

    const BS: usize = 1024;

    /// An in-memory log: journal superblock fields, then blocks from
    /// journal block 1.
    struct Log {
        j: Journal,
        blocks: Vec<Vec<u8>>,
    }

    impl Log {
        fn new(v3: bool) -> Log {
            let (incompat, csum_seed) = if v3 {
                (
                    feature::INCOMPAT_REVOKE | feature::INCOMPAT_64BIT | feature::INCOMPAT_CSUM_V3,
                    Some(crc32c_raw(!0, &[9u8; 16])),
                )
            } else {
                (feature::INCOMPAT_REVOKE, None)
            };
            Log {
                j: Journal {
                    block_size: BS,
                    first: 1,
                    last: 64,
                    start: 1,
                    sequence: u32::MAX,
                    compat: 0,
                    incompat,
                    csum_seed,
                    errno: 0,
                },
                blocks: vec![vec![0; BS]],
            }
        }
        fn header(kind: u32, tid: u32) -> Vec<u8> {
            let mut b = vec![0u8; BS];
            b[..4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
            b[4..8].copy_from_slice(&kind.to_be_bytes());
            b[8..12].copy_from_slice(&tid.to_be_bytes());
            b
        }
        fn tail(&self, b: &mut [u8]) {
            if let Some(seed) = self.j.csum_seed {
                let at = b.len() - 4;
                b[at..].fill(0);
                let c = crc32c_raw(seed, b);
                b[at..].copy_from_slice(&c.to_be_bytes());
            }
        }
        fn descriptor(&mut self, tid: u32, targets: &[u64]) {
            let tb = self.j.tag_bytes();
            let mut d = Self::header(blocktype::DESCRIPTOR, tid);
            let mut at = 12;
            let mut data = Vec::new();
            for (i, &t) in targets.iter().enumerate() {
                let block = vec![(t as u8) ^ (tid as u8); BS];
                let mut flags = if i > 0 { tag_flag::SAME_UUID } else { 0 };
                if i + 1 == targets.len() {
                    flags |= tag_flag::LAST_TAG;
                }
                d[at..at + 4].copy_from_slice(&(t as u32).to_be_bytes());
                d[at + 6..at + 8].copy_from_slice(&flags.to_be_bytes());
                d[at + 8..at + 12].copy_from_slice(&((t >> 32) as u32).to_be_bytes());
                if let Some(seed) = self.j.csum_seed {
                    let c = crc32c_raw(crc32c_raw(seed, &tid.to_be_bytes()), &block);
                    d[at + 12..at + 16].copy_from_slice(&c.to_be_bytes());
                }
                at += tb + if i == 0 { 16 } else { 0 };
                data.push(block);
            }
            self.tail(&mut d);
            self.blocks.push(d);
            self.blocks.extend(data);
        }
        fn revoke(&mut self, tid: u32, targets: &[u64]) {
            let mut r = Self::header(blocktype::REVOKE, tid);
            let mut at = 16;
            for &t in targets {
                r[at..at + 8].copy_from_slice(&t.to_be_bytes());
                at += 8;
            }
            r[12..16].copy_from_slice(&(at as u32).to_be_bytes());
            self.tail(&mut r);
            self.blocks.push(r);
        }
        fn commit(&mut self, tid: u32) {
            let mut c = Self::header(blocktype::COMMIT, tid);
            if let Some(seed) = self.j.csum_seed {
                let sum = crc32c_raw(seed, &c);
                c[COMMIT_CSUM_AT..COMMIT_CSUM_AT + 4].copy_from_slice(&sum.to_be_bytes());
            }
            self.blocks.push(c);
        }
        fn scan(&self) -> Scan {
            let blocks = self.blocks.clone();
            scan(&self.j, 1 << 40, &mut |n| {
                Ok(blocks
                    .get(n as usize)
                    .cloned()
                    .unwrap_or_else(|| vec![0; BS]))
            })
        }
    }

    /// T (tid 2^32-1): 100, 101. T+1 (tid 0, wrapped): revokes 100, logs
    /// 102. T+2: 103, never committed.
    fn three(v3: bool) -> Log {
        let mut l = Log::new(v3);
        l.descriptor(u32::MAX, &[100, 101]);
        l.commit(u32::MAX);
        l.revoke(0, &[100]);
        l.descriptor(0, &[102]);
        l.commit(0);
        l.descriptor(1, &[103]);
        l
    }

    #[test]
    fn walk_revoke_wrap_and_uncommitted() {
        for v3 in [false, true] {
            let s = three(v3).scan();
            assert!(s.damage.is_empty(), "{:?}", s.damage);
            assert_eq!(s.transactions.len(), 2);
            assert_eq!((s.end_tid, s.uncommitted), (1, Some(1)));
            let plan = s.replay_plan();
            assert_eq!(
                plan.keys().copied().collect::<Vec<_>>(),
                [101, 102],
                "v3 {v3}"
            );
            assert_eq!(plan[&101].log_block, 3);
        }
    }

    #[test]
    fn checksums_end_or_skip() {
        // A logged copy that fails its checksum is skipped, the rest stays.
        let mut l = three(true);
        l.blocks[3][7] ^= 1;
        let s = l.scan();
        assert!(
            matches!(s.damage[..], [Damage::DataChecksum { target: 101, .. }]),
            "{:?}",
            s.damage
        );
        assert_eq!(s.replay_plan().keys().copied().collect::<Vec<_>>(), [102]);
        // A commit block that fails ends the log before its transaction:
        // its revoke does not count either.
        let mut l = three(true);
        l.blocks[8][40] ^= 1;
        let s = l.scan();
        assert!(
            matches!(s.damage[..], [Damage::CommitChecksum { tid: 0, .. }]),
            "{:?}",
            s.damage
        );
        assert_eq!(s.end_tid, 0);
        assert_eq!(
            s.replay_plan().keys().copied().collect::<Vec<_>>(),
            [100, 101]
        );
        // A descriptor whose tail fails ends the log there.
        let mut l = three(true);
        l.blocks[6][20] ^= 1;
        let s = l.scan();
        assert!(
            matches!(s.damage[..], [Damage::DescriptorChecksum { tid: 0, .. }]),
            "{:?}",
            s.damage
        );
    }

    #[test]
    fn a_log_that_loops_ends() {
        // Every block a descriptor of the same tid whose tags skip nothing:
        // the walk must stop after the log's length.
        let mut l = Log::new(false);
        l.j.last = 4;
        for _ in 1..4 {
            let mut d = Log::header(blocktype::REVOKE, u32::MAX);
            d[12..16].copy_from_slice(&16u32.to_be_bytes());
            l.blocks.push(d);
        }
        let s = l.scan();
        assert!(
            matches!(s.damage[..], [Damage::Loops { .. }]),
            "{:?}",
            s.damage
        );
        assert!(s.transactions.is_empty());
    }

    #[test]
    fn tid_wraps() {
        assert!(tid_gt(0, u32::MAX));
        assert!(tid_gt(5, 3));
        assert!(!tid_gt(3, 3));
        assert!(!tid_gt(u32::MAX, 1));
    }
}
