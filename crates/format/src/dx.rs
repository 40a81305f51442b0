//! Directory indexes (indexed-dirs): the name hash (`ocfs2_dx_dir_name_hash`,
//! ext3's TEA hash with the volume's seed) and an index root kept inline
//! (`OCFS2_DX_FLAG_INLINE`), as the kernel and mkfs.ocfs2 write them; and
//! an index taken away (`tunefs --fs-features=noindexed-dirs`).

use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::ondisk::{dyn_features, DxRootBlock, SuperBlock, DX_ROOT_SIGNATURE};
use crate::Volume;
use zerocopy::FromBytes;

/// `OCFS2_DX_FLAG_INLINE`: the root holds the entries itself.
pub const FLAG_INLINE: u8 = 1;
/// Byte offset of the inline entry list in a root block (after its 0xC0
/// header): `de_reserved` (4), `de_count` (2), `de_num_used` (2), entries.
pub const ENTRY_LIST: usize = 0xC0;
/// Bytes of one index entry: major hash, minor hash, block.
pub const ENTRY_LEN: usize = 16;

/// The hash seed of a volume: `s_dx_seed` and `s_uuid_hash`.
pub fn seed(sb: &SuperBlock) -> [u32; 4] {
    [
        sb.s_dx_seed[0].get(),
        sb.s_dx_seed[1].get(),
        sb.s_dx_seed[2].get(),
        sb.s_uuid_hash.get(),
    ]
}

/// Entries an inline root of a `bs`-byte block holds.
pub const fn inline_capacity(bs: usize) -> usize {
    (bs - ENTRY_LIST - 8) / ENTRY_LEN
}

/// ext3's `str2hashbuf`, as OCFS2 uses it for directory index hashes.
fn str2hashbuf(msg: &[u8], num: usize) -> [u32; 4] {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; 4];
    let mut val = pad;
    let mut n = 0;
    let take = msg.len().min(num * 4);
    for (i, &c) in msg[..take].iter().enumerate() {
        if i % 4 == 0 {
            val = pad;
        }
        // The kernel reads the name as (signed) char.
        val = (c as i8 as i32 as u32).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[n] = val;
            n += 1;
            val = pad;
        }
    }
    if n < num {
        out[n] = val;
    }
    out
}

fn tea_transform(buf: &mut [u32; 4], inp: &[u32; 4]) {
    let mut sum = 0u32;
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let (a, b, c, d) = (inp[0], inp[1], inp[2], inp[3]);
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            ((b1 << 4).wrapping_add(a)) ^ b1.wrapping_add(sum) ^ ((b1 >> 5).wrapping_add(b)),
        );
        b1 = b1.wrapping_add(
            ((b0 << 4).wrapping_add(c)) ^ b0.wrapping_add(sum) ^ ((b0 >> 5).wrapping_add(d)),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

/// `ocfs2_dx_dir_name_hash`: (major, minor) of a name; "." and ".." are (0, 0).
pub fn name_hash(seed: [u32; 4], name: &[u8]) -> (u32, u32) {
    if name == b"." || name == b".." {
        return (0, 0);
    }
    let mut buf = seed;
    let mut p = name;
    while !p.is_empty() {
        let inp = str2hashbuf(p, 4);
        tea_transform(&mut buf, &inp);
        p = &p[p.len().min(16)..];
    }
    (buf[0], buf[1])
}

/// The superblock's `s_uuid_hash` of a volume UUID (the fourth word of
/// the index hash seed).
pub fn uuid_hash(uuid: &[u8; 16]) -> u32 {
    uuid.iter()
        .fold(0u32, |h, &b| (h << 5) ^ (h >> 27) ^ u32::from(b))
}

/// An index root kept inline, as mkfs.ocfs2 and the kernel's
/// `ocfs2_dx_dir_attach_index` write it.
pub struct Root {
    pub blkno: u64,
    pub dir_blkno: u64,
    pub generation: u32,
    /// Its allocator bit: slot, bit, group.
    pub slot: u16,
    pub bit: u16,
    pub group: u64,
    /// First directory block with free space (0: none).
    pub free_blk: u64,
}

impl Root {
    /// The root block holding `entries` (major hash, minor hash, block);
    /// its block check is the writer's.
    pub fn block(&self, bs: usize, entries: &[(u32, u32, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; bs];
        {
            let (h, rest) = DxRootBlock::mut_from_prefix(&mut b).expect("block");
            h.dr_signature.copy_from_slice(b"DXDIR01\0");
            h.dr_suballoc_slot.set(self.slot);
            h.dr_suballoc_bit.set(self.bit);
            h.dr_fs_generation.set(self.generation);
            h.dr_blkno.set(self.blkno);
            h.dr_flags = FLAG_INLINE;
            h.dr_dir_blkno.set(self.dir_blkno);
            h.dr_num_entries.set(entries.len() as u32);
            h.dr_free_blk.set(self.free_blk);
            h.dr_suballoc_loc.set(self.group);
            let count = inline_capacity(bs) as u16;
            rest[4..6].copy_from_slice(&count.to_le_bytes());
            rest[6..8].copy_from_slice(&(entries.len() as u16).to_le_bytes());
            for (k, &(ma, mi, blk)) in entries.iter().enumerate() {
                let o = 8 + k * ENTRY_LEN;
                rest[o..o + 4].copy_from_slice(&ma.to_le_bytes());
                rest[o + 4..o + 8].copy_from_slice(&mi.to_le_bytes());
                rest[o + 8..o + 16].copy_from_slice(&blk.to_le_bytes());
            }
        }
        b
    }
}

/// The directories with an index (valid, `OCFS2_INDEXED_DIR_FL`), by
/// inode block.
pub fn indexed_dirs(vol: &Volume) -> Result<Vec<u64>> {
    Ok(vol
        .valid_inodes()?
        .into_iter()
        .filter(|(_, di)| {
            di.i_mode.get() & 0o170000 == 0o040000
                && di.i_dyn_features.get() & dyn_features::INDEXED_DIR != 0
        })
        .map(|(b, _)| b)
        .collect())
}

/// A directory's index: its root block and header, and the leaf clusters
/// (first, count) its list holds (none for an inline index).
pub struct Index {
    pub root: u64,
    pub header: DxRootBlock,
    pub leaves: Vec<(u64, u64)>,
}

/// Directory `dir`'s index. An index whose list has a tree depth (extent
/// blocks) is an error: not removed by this release.
pub fn index_of(vol: &Volume, dir: u64) -> Result<Index> {
    let ino = vol.read_inode(dir)?;
    let root = ino.di().i_dx_root.get();
    let buf = vol.read_meta(root, CheckAt::DxBlock)?;
    let (h, _) = DxRootBlock::read_from_prefix(&buf)
        .map_err(|_| Error::corrupt(root, "index root truncated"))?;
    if !buf.starts_with(DX_ROOT_SIGNATURE) || h.dr_dir_blkno.get() != dir {
        return Err(Error::corrupt(
            root,
            format!("not the index root of directory {dir}"),
        ));
    }
    if h.dr_flags & FLAG_INLINE != 0 {
        return Ok(Index {
            root,
            header: h,
            leaves: Vec::new(),
        });
    }
    let (el, recs) = crate::fs::parse_extent_list(root, &buf[ENTRY_LIST..], "index root")?;
    if el.l_tree_depth.get() != 0 {
        return Err(Error::Unsupported(format!(
            "directory {dir}'s index has extent blocks (depth {}): not removed by this release",
            el.l_tree_depth.get()
        )));
    }
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let leaves = recs
        .iter()
        .filter(|r| r.leaf_clusters() > 0)
        .map(|r| (r.e_blkno.get() / bpc, u64::from(r.leaf_clusters())))
        .collect();
    Ok(Index {
        root,
        header: h,
        leaves,
    })
}

/// Directory `dir`'s inode without its index: no flag, no root (written
/// and flushed). What the index held is the caller's to free.
pub fn forget_index(vol: &Volume, dir: u64) -> Result<()> {
    let mut ino = vol.read_inode(dir)?;
    {
        let di = ino.di_mut();
        di.i_dyn_features
            .set(di.i_dyn_features.get() & !dyn_features::INDEXED_DIR);
        di.i_dx_root.set(0);
    }
    vol.write_meta(dir, &mut ino.buf, CheckAt::Inode)?;
    vol.device().flush()
}

/// Take directory `dir`'s index away, as libocfs2's ocfs2_dx_dir_truncate
/// does: the inode first (no index flag, no root), then the leaf clusters
/// freed in the global bitmap, then the root's bit in its extent allocator.
/// A crash after the inode leaves blocks nothing uses, which fsck frees.
pub fn remove_index(vol: &Volume, dir: u64) -> Result<()> {
    let Index {
        root,
        header: h,
        leaves,
    } = index_of(vol, dir)?;
    forget_index(vol, dir)?;
    if !leaves.is_empty() {
        crate::alloc::free_clusters(vol, &leaves)?;
    }
    let bit = h.dr_suballoc_bit.get();
    let group = match h.dr_suballoc_loc.get() {
        0 => root.checked_sub(u64::from(bit)),
        loc => Some(loc),
    };
    let owner = vol.system_inode(&crate::fs::slot_file_name(
        "extent_alloc",
        h.dr_suballoc_slot.get(),
    ));
    if let (Some(group), Ok(owner)) = (group, owner) {
        crate::alloc::free_bit(vol, owner, group, bit)?;
    }
    vol.device().flush()
}
