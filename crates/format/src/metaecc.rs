//! Turning metaecc on (`tunefs --fs-features=metaecc`): every directory
//! gets trailers (`dxtree::install_trailers`), then every metadata block the
//! kernel validates under metaecc gets its block check, then the
//! superblock the feature bit. tunefs.ocfs2 checks inodes, extent blocks,
//! group descriptors and directory blocks; [`blocks`] also lists the
//! blocks of directory indexes, extended attributes (blocks and buckets),
//! refcount trees and quota files, which the kernel reads as checked too.
//! Until the bit is on the checks are passed over, so a crash at any point
//! leaves a volume without the feature, which a second run finishes.

use crate::blockcheck::{self, CheckAt};
use crate::error::Result;
use crate::fs::slot_file_name;
use crate::ondisk::{dyn_features, EXTENT_BLOCK_SIGNATURE};
use crate::quota::QuotaType;
use crate::xattr;
use crate::Volume;

/// One block (or bucket) to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub blkno: u64,
    pub at: CheckAt,
}

/// The chain allocators: their inodes' groups hold descriptors.
fn allocators(vol: &Volume) -> Vec<String> {
    let mut names = vec![
        "global_bitmap".to_string(),
        "global_inode_alloc".to_string(),
    ];
    for s in 0..vol.max_slots() {
        names.push(slot_file_name("inode_alloc", s));
        names.push(slot_file_name("extent_alloc", s));
    }
    names
}

/// Every metadata block of the volume that carries a block check, each
/// once: group descriptors, valid inodes, their extent blocks, directory
/// blocks, index roots and leaves, attribute blocks, buckets and the
/// extent blocks of their trees, refcount blocks, quota file blocks.
pub fn blocks(vol: &Volume) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut add = |blkno: u64, at: CheckAt| out.push(Block { blkno, at });
    for name in allocators(vol) {
        let Ok(a) = vol.system_inode(&name) else {
            continue;
        };
        let ino = vol.read_inode(a)?;
        for g in vol.chain_groups(&ino)? {
            add(g.blkno, CheckAt::GroupDesc);
        }
    }
    let bs = vol.block_size() as usize;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let mut quota_inodes = Vec::new();
    for t in [QuotaType::User, QuotaType::Group] {
        if vol.features().ro_compat & t.feature() == 0 {
            continue;
        }
        quota_inodes.extend(vol.system_inode(t.global_name()).ok());
        for s in 0..vol.max_slots() {
            quota_inodes.extend(vol.system_inode(&t.local_name(s)).ok());
        }
    }
    for (b, _) in vol.valid_inodes()? {
        add(b, CheckAt::Inode);
        let ino = vol.read_inode(b)?;
        let (leaves, ebs) = vol.extent_tree(&ino)?;
        for e in ebs {
            add(e, CheckAt::ExtentBlock);
        }
        if quota_inodes.contains(&b) {
            let n = ino.size().div_ceil(bs as u64);
            for l in 0..n {
                if let Some(p) = vol.map_block(&leaves, l) {
                    add(p, CheckAt::QuotaBlock);
                }
            }
        }
        if ino.is_dir() && !ino.is_inline() {
            for (p, _) in vol.dir_blocks(&ino)? {
                add(p, CheckAt::DirTrailer);
            }
        }
        if ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
            let read = crate::dxtree::entries(vol, &ino)?;
            add(read.root, CheckAt::DxBlock);
            for r in &read.runs {
                for k in 0..u64::from(r.clusters) * bpc {
                    add(r.blkno + k, CheckAt::DxBlock);
                }
            }
        }
        let di = ino.di();
        if di.i_dyn_features.get() & dyn_features::HAS_REFCOUNT != 0 {
            let root = di.i_refcount_loc.get();
            add(root, CheckAt::RefcountBlock);
            for rb in crate::refcount::tree_blocks(vol, root)? {
                let buf = vol.read_block(rb)?;
                let at = if buf.starts_with(EXTENT_BLOCK_SIGNATURE) {
                    CheckAt::ExtentBlock
                } else {
                    CheckAt::RefcountBlock
                };
                add(rb, at);
            }
        }
        if di.i_dyn_features.get() & dyn_features::HAS_XATTR != 0 {
            attribute_blocks(vol, &ino, &mut add)?;
        }
    }
    // Each block once, in block order (a block met twice keeps its first
    // kind).
    let mut seen = std::collections::HashSet::new();
    out.retain(|b| seen.insert(b.blkno));
    out.sort_by_key(|b| b.blkno);
    Ok(out)
}

/// The blocks of an inode's extended attributes: its attribute block, the
/// buckets of its index and the index tree's extent blocks, and the
/// extent blocks of values kept in clusters.
fn attribute_blocks(
    vol: &Volume,
    ino: &crate::Inode,
    add: &mut dyn FnMut(u64, CheckAt),
) -> Result<()> {
    let bs = vol.block_size() as usize;
    let mut storages: Vec<(u64, Vec<u8>)> = Vec::new();
    let di = ino.di();
    if di.i_dyn_features.get() & dyn_features::INLINE_XATTR != 0 {
        let size = usize::from(di.i_xattr_inline_size.get()).min(bs);
        storages.push((ino.blkno, ino.buf[bs - size..].to_vec()));
    }
    let loc = di.i_xattr_loc.get();
    if loc != 0 {
        add(loc, CheckAt::XattrBlock);
        let xb = vol.read_block(loc)?;
        let flags = u16::from_le_bytes([xb[xattr::block::FLAGS], xb[xattr::block::FLAGS + 1]]);
        if flags & xattr::INDEXED == 0 {
            storages.push((loc, xb[xattr::block::ATTRS..].to_vec()));
        } else {
            let (_, ebs) = vol.list_tree(loc, &xb[xattr::block::TREE_LIST..])?;
            for e in ebs {
                add(e, CheckAt::ExtentBlock);
            }
            let listing = xattr::read_all(vol, ino);
            let bpb = vol.blocks_per_bucket();
            for (start, _, counts) in &listing.runs {
                for i in 0..counts.len() as u64 {
                    let b = start + i * bpb;
                    add(b, CheckAt::XattrBucket);
                    storages.push((b, vol.read_blocks(b, bpb)?));
                }
            }
        }
    }
    for (b, area) in storages {
        for root in xattr::value_roots(&area) {
            let list = &area[root + xattr::VALUE_ROOT_LIST..];
            let (_, ebs) = vol.list_tree(b, list)?;
            for e in ebs {
                add(e, CheckAt::ExtentBlock);
            }
        }
    }
    Ok(())
}

/// Give every block of `list` its block check (read, computed, written;
/// a bucket whole). `verify` runs before each write.
pub fn write_checks(vol: &Volume, list: &[Block], verify: &dyn Fn() -> Result<()>) -> Result<()> {
    for b in list {
        verify()?;
        let mut buf = if b.at == CheckAt::XattrBucket {
            vol.read_blocks(b.blkno, vol.blocks_per_bucket())?
        } else {
            vol.read_block(b.blkno)?
        };
        blockcheck::update(&mut buf, b.at);
        vol.write_blocks(b.blkno, &buf)?;
    }
    vol.device().flush()
}
