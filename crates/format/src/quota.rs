//! Global quota files (`aquota.user`, `aquota.group`) and their per-slot
//! local files, as the kernel's fs/ocfs2/quota_global.c and quota_local.c
//! and ocfs2-tools' libocfs2/quota.c lay them out, and their rebuild.
//!
//! A global file is block 0 (the 8-byte `ocfs2_disk_dqheader`, then the
//! `ocfs2_global_disk_dqinfo`), block 1 the root of a radix tree of
//! [`tree_depth`] levels of `(bs - 8) / 4` le32 references, whose last
//! level points at data blocks: a 16-byte `qt_disk_dqdbheader`, then
//! 88-byte `ocfs2_global_disk_dqblk` entries. Every block ends in an 8-byte
//! trailer that holds its block check under metaecc.
//!
//! [`rebuild`] is what fsck.ocfs2's pass 5 does on every read-write run
//! (here only when the file is damaged): the limits of every id are kept
//! from the data blocks that still check, the usage is counted afresh from
//! the inodes, the file is written anew in the order libocfs2 inserts
//! dquots, and the local files are emptied (their deltas are in the new
//! usage already).

use crate::blockcheck::{self, CheckAt, CheckResult};
use crate::bytes::{le32, le64, put16, put32, put64};
use crate::error::{Error, Result};
use crate::fs::{slot_file_name, Volume};
use crate::ondisk::*;
use std::collections::BTreeMap;
use zerocopy::FromBytes;

/// Bytes of the trailer at the end of every quota block
/// (`OCFS2_QBLK_RESERVED_SPACE`).
pub const RESERVED_SPACE: usize = 8;
/// `QT_TREEOFF`: the tree's root block.
pub const TREE_OFF: u32 = 1;
/// Offset of the info after the header (`OCFS2_GLOBAL_INFO_OFF`).
pub const INFO_OFF: usize = 8;
/// `sizeof(struct qt_disk_dqdbheader)`.
pub const DQDBHEADER_SIZE: usize = 16;
/// `sizeof(struct ocfs2_global_disk_dqblk)`.
pub const DQBLK_SIZE: usize = 88;
/// Blocks a global quota file is created with (`OCFS2_GLOBAL_QF_INIT_BLOCKS`).
pub const GLOBAL_INIT_BLOCKS: u32 = 2;
/// Blocks of a local quota file (`OCFS2_LOCAL_QF_INIT_BLOCKS`).
pub const LOCAL_BLOCKS: u32 = 2;
/// `OCFS2_DEF_BLOCK_GRACE`, `OCFS2_DEF_INODE_GRACE` (s) and
/// `OCFS2_DEF_QUOTA_SYNC` (ms).
pub const DEFAULT_INFO: Info = Info {
    bgrace: 604_800,
    igrace: 604_800,
    syncms: 10_000,
};
/// `OLQF_CLEAN`
const OLQF_CLEAN: u32 = 1;

// Offsets in `ocfs2_global_disk_dqblk`.
const DQB_USE_COUNT: usize = 0x04;
const DQB_ISOFTLIMIT: usize = 0x10;
const DQB_CURINODES: usize = 0x18;
const DQB_BSOFTLIMIT: usize = 0x28;
const DQB_CURSPACE: usize = 0x30;
const DQB_BTIME: usize = 0x38;
const DQB_ITIME: usize = 0x40;
const DQB_PAD: usize = 0x48;

/// Which quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    User,
    Group,
}

impl QuotaType {
    /// In the order ocfs2-tools handles them (user, then group).
    pub const ALL: [QuotaType; 2] = [QuotaType::User, QuotaType::Group];

    /// `dqh_magic` of the global file (`OCFS2_GLOBAL_QMAGICS`).
    pub fn global_magic(self) -> u32 {
        match self {
            QuotaType::User => 0x0CF5_2470,
            QuotaType::Group => 0x0CF5_2471,
        }
    }
    /// `dqh_magic` of the local files (`OCFS2_LOCAL_QMAGICS`).
    pub fn local_magic(self) -> u32 {
        match self {
            QuotaType::User => 0x0CF5_24C0,
            QuotaType::Group => 0x0CF5_24C1,
        }
    }
    /// Name of the global file in the system directory.
    pub fn global_name(self) -> &'static str {
        match self {
            QuotaType::User => "aquota.user",
            QuotaType::Group => "aquota.group",
        }
    }
    /// Name of the local file of `slot` in the system directory.
    pub fn local_name(self, slot: u16) -> String {
        slot_file_name(self.global_name(), slot)
    }
    /// The superblock's ro_compat bit that turns the type on.
    pub fn feature(self) -> u32 {
        match self {
            QuotaType::User => crate::features::ro_compat::USRQUOTA,
            QuotaType::Group => crate::features::ro_compat::GRPQUOTA,
        }
    }
    /// The owner an inode is charged to.
    fn owner(self, di: &Dinode) -> u32 {
        match self {
            QuotaType::User => di.i_uid.get(),
            QuotaType::Group => di.i_gid.get(),
        }
    }
}

/// The grace times and sync interval of a global file's info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub bgrace: u32,
    pub igrace: u32,
    pub syncms: u32,
}

/// Dquot entries by id (88 bytes each, as on disk).
pub type Dquots = BTreeMap<u32, [u8; DQBLK_SIZE]>;

/// What one id is charged: inodes, and bytes (`i_clusters × cs` each).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub inodes: u64,
    pub bytes: u64,
}

/// Levels of the tree for 2^32 ids (`ocfs2_qtree_depth`): 5 for 512-byte
/// and 1K blocks, 4 for 2K and 4K.
pub fn tree_depth(block_size: u32) -> u32 {
    let epb = u64::from((block_size - RESERVED_SPACE as u32) >> 2);
    let (mut entries, mut depth) = (epb, 1);
    while entries < 1 << 32 {
        entries *= epb;
        depth += 1;
    }
    depth
}

/// Entry of the reference to `id` in its tree block at `depth`
/// (`ocfs2_qtree_index`).
fn tree_index(block_size: u32, id: u32, depth: u32) -> usize {
    let epb = (block_size as usize - RESERVED_SPACE) / 4;
    let mut id = id as usize;
    for _ in 0..tree_depth(block_size) - depth - 1 {
        id /= epb;
    }
    id % epb
}

/// Dquot entries in a data block (`ocfs2_global_dqstr_in_blk`).
fn entries_per_block(block_size: u32) -> usize {
    (block_size as usize - RESERVED_SPACE - DQDBHEADER_SIZE) / DQBLK_SIZE
}

/// A global file's blocks for `dquots` (id -> its 88-byte entry, usage
/// and limits in place), as libocfs2 builds it: the header and info, the
/// root, then the blocks in the order inserting the ids one by one (in id
/// order) appends them: each id's missing tree blocks from the top, then a
/// data block when the one with free entries is full. Times past a soft
/// limit that is not exceeded are cleared, as fsck.ocfs2 clears them.
pub fn global_file(
    t: QuotaType,
    block_size: u32,
    meta_ecc: bool,
    info: Info,
    dquots: &Dquots,
) -> Vec<Vec<u8>> {
    let bs = block_size as usize;
    let depth = tree_depth(block_size);
    let per_block = entries_per_block(block_size);
    let mut blocks = vec![vec![0u8; bs]; 2];
    let mut free_entry = 0u32;
    let new_block = |blocks: &mut Vec<Vec<u8>>| {
        blocks.push(vec![0u8; bs]);
        (blocks.len() - 1) as u32
    };
    for (&id, entry) in dquots {
        let mut tree = TREE_OFF;
        for level in 0..depth - 1 {
            let at = 4 * tree_index(block_size, id, level);
            let mut next = le32(&blocks[tree as usize], at);
            if next == 0 {
                next = new_block(&mut blocks);
                put32(&mut blocks[tree as usize], at, next);
            }
            tree = next;
        }
        // The data block: the head of the free-entry list, or a new one.
        let data = if free_entry != 0 {
            free_entry
        } else {
            let b = new_block(&mut blocks);
            free_entry = b;
            b
        };
        let d = data as usize;
        let entries = usize::from(u16::from_le_bytes([blocks[d][8], blocks[d][9]]));
        if entries + 1 >= per_block {
            // Full after this one: off the free-entry list (it heads it).
            let next = le32(&blocks[d], 0);
            if next != 0 {
                put32(&mut blocks[next as usize], 4, 0);
            }
            free_entry = next;
            put32(&mut blocks[d], 0, 0);
            put32(&mut blocks[d], 4, 0);
        }
        put16(&mut blocks[d], 8, (entries + 1) as u16);
        let slot = (0..per_block)
            .find(|&i| {
                let o = DQDBHEADER_SIZE + i * DQBLK_SIZE;
                blocks[d][o..o + DQBLK_SIZE].iter().all(|&c| c == 0)
            })
            .expect("a block on the free-entry list has a free entry");
        let o = DQDBHEADER_SIZE + slot * DQBLK_SIZE;
        let mut e = *entry;
        put32(&mut e, 0, id);
        put32(&mut e, DQB_USE_COUNT, 0);
        e[DQB_PAD..].fill(0);
        let (isoft, cur_i) = (le64(&e, DQB_ISOFTLIMIT), le64(&e, DQB_CURINODES));
        if isoft == 0 || cur_i < isoft {
            put64(&mut e, DQB_ITIME, 0);
        }
        let (bsoft, cur_b) = (le64(&e, DQB_BSOFTLIMIT), le64(&e, DQB_CURSPACE));
        if bsoft == 0 || cur_b < bsoft {
            put64(&mut e, DQB_BTIME, 0);
        }
        if e.iter().all(|&c| c == 0) {
            // An all-zero entry reads as free: the kernel marks it so.
            put64(&mut e, DQB_ITIME, 1);
        }
        blocks[d][o..o + DQBLK_SIZE].copy_from_slice(&e);
        let at = 4 * tree_index(block_size, id, depth - 1);
        put32(&mut blocks[tree as usize], at, data);
    }
    let nblocks = blocks.len() as u32;
    let b0 = &mut blocks[0];
    put32(b0, 0, t.global_magic());
    put32(b0, 4, 0); // dqh_version
    put32(b0, INFO_OFF, info.bgrace);
    put32(b0, INFO_OFF + 4, info.igrace);
    put32(b0, INFO_OFF + 8, info.syncms);
    put32(b0, INFO_OFF + 12, nblocks); // dqi_blocks
    put32(b0, INFO_OFF + 16, 0); // dqi_free_blk
    put32(b0, INFO_OFF + 20, free_entry);
    if meta_ecc {
        blocks
            .iter_mut()
            .for_each(|b| blockcheck::update(b, CheckAt::DirTrailer));
    }
    blocks
}

/// An entry for `id` with `usage` and no limits.
pub fn entry(id: u32, usage: Usage) -> [u8; DQBLK_SIZE] {
    let mut e = [0u8; DQBLK_SIZE];
    put32(&mut e, 0, id);
    put64(&mut e, DQB_CURINODES, usage.inodes);
    put64(&mut e, DQB_CURSPACE, usage.bytes);
    e
}

/// A local file's blocks (`aquota.user:NNNN`): the header and info
/// (`OLQF_CLEAN`, one chunk, two blocks), then an empty chunk header.
pub fn local_file(t: QuotaType, block_size: u32, meta_ecc: bool) -> Vec<Vec<u8>> {
    let mut blocks = vec![vec![0u8; block_size as usize]; LOCAL_BLOCKS as usize];
    let b0 = &mut blocks[0];
    put32(b0, 0, t.local_magic());
    put32(b0, 4, 0); // dqh_version
    put32(b0, INFO_OFF, OLQF_CLEAN); // dqi_flags
    put32(b0, INFO_OFF + 4, 1); // dqi_chunks
    put32(b0, INFO_OFF + 8, LOCAL_BLOCKS); // dqi_blocks
    if meta_ecc {
        blocks
            .iter_mut()
            .for_each(|b| blockcheck::update(b, CheckAt::DirTrailer));
    }
    blocks
}

/// Every id's usage of type `t`, counted as libocfs2 counts it: each block
/// of the inode allocators' groups that holds a valid inode of this volume
/// (its signature and generation), not a system file but the root, charges
/// its owner one inode and its clusters.
pub fn usage(vol: &Volume, t: QuotaType) -> Result<BTreeMap<u32, Usage>> {
    let mut out: BTreeMap<u32, Usage> = BTreeMap::new();
    let generation = vol.super_inode().di().i_fs_generation.get();
    let root = vol.root_blkno();
    let cs = u64::from(vol.cluster_size());
    vol.each_inode(&mut |blkno, buf| {
        let Ok((di, _)) = Dinode::read_from_prefix(buf) else {
            return;
        };
        let flags = di.i_flags.get();
        if di.i_fs_generation.get() != generation
            || flags & inode_flags::VALID == 0
            || (flags & inode_flags::SYSTEM != 0 && blkno != root)
        {
            return;
        }
        let u = out.entry(t.owner(&di)).or_default();
        u.inodes += 1;
        u.bytes += u64::from(di.i_clusters.get()) * cs;
    })?;
    Ok(out)
}

/// The limits kept from a global file: each id found in a data block that
/// checks and that the id's own path through the tree leads to (an entry
/// met by another path is a block read as what it is not), with the info's
/// grace times when its header checks.
pub fn read_limits(vol: &Volume, t: QuotaType) -> Result<(Option<Info>, Dquots)> {
    let ino = vol.read_inode(vol.system_inode(t.global_name())?)?;
    let ext = vol.extents(&ino)?;
    let bs = vol.block_size();
    let nblocks = (ino.size() / u64::from(bs)).min(u64::from(u32::MAX)) as u32;
    let read = |i: u32| -> Option<Vec<u8>> {
        let mut buf = vol.read_block(vol.map_block(&ext, u64::from(i))?).ok()?;
        let ok = !vol.meta_ecc()
            || !matches!(
                blockcheck::validate(&mut buf, CheckAt::DirTrailer),
                CheckResult::Bad { .. }
            );
        ok.then_some(buf)
    };
    let info = read(0)
        .filter(|b| le32(b, 0) == t.global_magic() && le32(b, 4) == 0)
        .map(|b| Info {
            bgrace: le32(&b, INFO_OFF),
            igrace: le32(&b, INFO_OFF + 4),
            syncms: le32(&b, INFO_OFF + 8),
        });
    let depth = tree_depth(bs);
    let per_block = entries_per_block(bs);
    let refs = (bs as usize - RESERVED_SPACE) / 4;
    // The tree's blocks that check, by block, and the data blocks it
    // reaches (a block is read once, whatever the paths to it).
    let mut tree: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut data: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut todo = vec![(TREE_OFF, 0u32)];
    while let Some((blk, level)) = todo.pop() {
        if blk < TREE_OFF
            || blk >= nblocks
            || tree.contains_key(&blk)
            || data.contains_key(&blk)
            || tree.len() + data.len() > 1 << 16
        {
            continue;
        }
        let Some(buf) = read(blk) else {
            continue;
        };
        if level == depth {
            data.insert(blk, buf);
            continue;
        }
        for i in 0..refs {
            let r = le32(&buf, 4 * i);
            if r != 0 {
                todo.push((r, level + 1));
            }
        }
        tree.insert(blk, buf);
    }
    // Where the tree leads `id`.
    let lookup = |id: u32| -> Option<u32> {
        let mut blk = TREE_OFF;
        for d in 0..depth {
            blk = le32(tree.get(&blk)?, 4 * tree_index(bs, id, d));
        }
        Some(blk)
    };
    let mut out = BTreeMap::new();
    for (&blk, buf) in &data {
        for i in 0..per_block {
            let o = DQDBHEADER_SIZE + i * DQBLK_SIZE;
            let e: [u8; DQBLK_SIZE] = buf[o..o + DQBLK_SIZE].try_into().expect("88 bytes");
            if e.iter().all(|&c| c == 0) {
                continue;
            }
            let id = le32(&e, 0);
            if lookup(id) == Some(blk) {
                out.entry(id).or_insert(e);
            }
        }
    }
    Ok((info, out))
}

/// Rebuild the quota files of type `t` (fsck.ocfs2's pass 5): limits from
/// [`read_limits`], usage from [`usage`]. Write order, so that a crash
/// anywhere leaves damage the next check finds and rebuilds again: the
/// local files first (emptied; the global file is still damaged), then the
/// global file's header without its magic, its other blocks, its header
/// last. Refused, with nothing written, when the global file's clusters
/// cannot hold the new tree.
pub fn rebuild(vol: &Volume, t: QuotaType) -> Result<()> {
    let bs = vol.block_size();
    let (info, limits) = read_limits(vol, t)?;
    let mut dquots = BTreeMap::new();
    for (id, u) in usage(vol, t)? {
        let mut e = limits.get(&id).copied().unwrap_or([0u8; DQBLK_SIZE]);
        put64(&mut e, DQB_CURINODES, u.inodes);
        put64(&mut e, DQB_CURSPACE, u.bytes);
        dquots.insert(id, e);
    }
    // Ids with limits and nothing charged keep their limits.
    for (id, mut e) in limits {
        dquots.entry(id).or_insert_with(|| {
            put64(&mut e, DQB_CURINODES, 0);
            put64(&mut e, DQB_CURSPACE, 0);
            e
        });
    }
    let blocks = global_file(t, bs, vol.meta_ecc(), info.unwrap_or(DEFAULT_INFO), &dquots);
    let gblk = vol.system_inode(t.global_name())?;
    let mut gino = vol.read_inode(gblk)?;
    let gext = vol.extents(&gino)?;
    let places: Vec<Option<u64>> = (0..blocks.len())
        .map(|i| vol.map_block(&gext, i as u64))
        .collect();
    if places.iter().any(Option::is_none) {
        return Err(Error::Invalid(format!(
            "{}: the rebuilt file needs {} blocks, its clusters hold fewer",
            t.global_name(),
            blocks.len()
        )));
    }
    for slot in 0..vol.max_slots() {
        let Ok(lblk) = vol.system_inode(&t.local_name(slot)) else {
            continue;
        };
        let mut lino = vol.read_inode(lblk)?;
        let lext = vol.extents(&lino)?;
        let local = local_file(t, bs, vol.meta_ecc());
        let at: Option<Vec<u64>> = (0..local.len())
            .map(|i| vol.map_block(&lext, i as u64))
            .collect();
        let Some(at) = at else {
            continue; // too short a file: pass 3's to report
        };
        for (b, data) in at.iter().zip(&local) {
            vol.write_block(*b, data)?;
        }
        let size = u64::from(LOCAL_BLOCKS) * u64::from(bs);
        if lino.size() != size {
            lino.di_mut().i_size.set(size);
            vol.write_meta(lblk, &mut lino.buf, CheckAt::Inode)?;
        }
    }
    vol.device().flush()?;
    let first = places[0].expect("checked");
    let mut torn = blocks[0].clone();
    torn[..4].fill(0);
    if vol.meta_ecc() {
        blockcheck::update(&mut torn, CheckAt::DirTrailer);
    }
    vol.write_block(first, &torn)?;
    vol.device().flush()?;
    for (p, data) in places.iter().zip(&blocks).skip(1) {
        vol.write_block(p.expect("checked"), data)?;
    }
    vol.device().flush()?;
    vol.write_block(first, &blocks[0])?;
    let size = blocks.len() as u64 * u64::from(bs);
    if gino.size() != size {
        gino.di_mut().i_size.set(size);
        vol.write_meta(gblk, &mut gino.buf, CheckAt::Inode)?;
    }
    vol.device().flush()
}
