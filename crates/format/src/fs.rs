//! An opened OCFS2 volume: the superblock probe, inodes, extent trees,
//! directories, system files, chain allocators and the slot map.
//!
//! Every number read from disk is checked before it is used as an offset,
//! a length or a block number: damage gives an [`Error`], never a panic.

use crate::blockcheck::{self, CheckAt, CheckResult};
use crate::error::{Error, Result};
use crate::features::{incompat, FeatureSet};
use crate::io::BlockIo;
use crate::ondisk::*;
use crate::slotmap::{Format, SlotMap};
use std::collections::HashSet;
use zerocopy::{FromBytes, IntoBytes};

/// Deepest extent tree we follow; the kernel never builds one deeper than a
/// handful of levels, so anything past this is damage (or a loop).
const MAX_TREE_DEPTH: u16 = 16;

/// An inode block.
#[derive(Clone)]
pub struct Inode {
    pub blkno: u64,
    pub buf: Vec<u8>,
}

impl Inode {
    pub fn di(&self) -> &Dinode {
        Dinode::ref_from_prefix(&self.buf)
            .expect("inode buffers are at least one block")
            .0
    }
    pub fn di_mut(&mut self) -> &mut Dinode {
        Dinode::mut_from_prefix(&mut self.buf)
            .expect("inode buffers are at least one block")
            .0
    }
    /// The `id2` union bytes (to the end of the block).
    pub fn id2(&self) -> &[u8] {
        &self.buf[DINODE_ID2..]
    }
    pub fn mode(&self) -> u16 {
        self.di().i_mode.get()
    }
    pub fn is_dir(&self) -> bool {
        self.mode() & 0o170000 == 0o040000
    }
    pub fn flags(&self) -> u32 {
        self.di().i_flags.get()
    }
    pub fn dyn_features(&self) -> u16 {
        self.di().i_dyn_features.get()
    }
    pub fn is_inline(&self) -> bool {
        self.dyn_features() & dyn_features::INLINE_DATA != 0
    }
    pub fn size(&self) -> u64 {
        self.di().i_size.get()
    }
    /// Whether `id2` holds an extent list (as opposed to a chain list, local
    /// alloc, truncate log, inline data, a fast symlink or the superblock).
    pub fn has_extent_list(&self) -> bool {
        let f = self.flags();
        let fast_symlink = self.mode() & 0o170000 == 0o120000 && self.di().i_clusters.get() == 0;
        f & (inode_flags::SUPER_BLOCK
            | inode_flags::LOCAL_ALLOC
            | inode_flags::CHAIN
            | inode_flags::DEALLOC)
            == 0
            && !self.is_inline()
            && !fast_symlink
    }

    /// The extent list in `id2`, bounds-checked against the block.
    pub fn extent_list(&self) -> Result<(ExtentList, Vec<ExtentRec>)> {
        parse_extent_list(self.blkno, self.id2(), "inode")
    }

    /// The chain list in `id2` of a chain allocator inode.
    pub fn chain_list(&self) -> Result<(ChainList, Vec<ChainRec>)> {
        let id2 = self.id2();
        let (cl, rest) = ChainList::read_from_prefix(id2)
            .map_err(|_| Error::corrupt(self.blkno, "chain list header truncated"))?;
        let room = rest.len() / size_of_val_chain();
        let count = usize::from(cl.cl_count.get());
        let used = usize::from(cl.cl_next_free_rec.get());
        if count > room {
            return Err(Error::corrupt(
                self.blkno,
                format!(
                    "chain list cl_count {count} exceeds the {room} records that fit in the block"
                ),
            ));
        }
        if used > count {
            return Err(Error::corrupt(
                self.blkno,
                format!("chain list cl_next_free_rec {used} exceeds cl_count {count}"),
            ));
        }
        let recs = (0..used)
            .map(|i| ChainRec::read_from_bytes(&rest[i * 16..i * 16 + 16]).expect("16 bytes"))
            .collect();
        Ok((cl, recs))
    }

    /// Inline data bytes (`id_data[..i_size]`), bounds-checked.
    pub fn inline_data(&self) -> Result<&[u8]> {
        let id2 = self.id2();
        let (hdr, data) = InlineData::ref_from_prefix(id2)
            .map_err(|_| Error::corrupt(self.blkno, "inline data header truncated"))?;
        let count = usize::from(hdr.id_count.get());
        if count > data.len() {
            return Err(Error::corrupt(
                self.blkno,
                format!(
                    "inline data id_count {count} exceeds the {} bytes in the block",
                    data.len()
                ),
            ));
        }
        let size = self.size();
        if size > count as u64 {
            return Err(Error::corrupt(
                self.blkno,
                format!("inline i_size {size} exceeds id_count {count}"),
            ));
        }
        Ok(&data[..size as usize])
    }
}

const fn size_of_val_chain() -> usize {
    core::mem::size_of::<ChainRec>()
}

/// Parse an extent list header and its used records from `bytes`.
pub fn parse_extent_list(
    blkno: u64,
    bytes: &[u8],
    what: &str,
) -> Result<(ExtentList, Vec<ExtentRec>)> {
    let (el, rest) = ExtentList::read_from_prefix(bytes)
        .map_err(|_| Error::corrupt(blkno, format!("{what} extent list truncated")))?;
    let room = rest.len() / 16;
    let count = usize::from(el.l_count.get());
    let used = usize::from(el.l_next_free_rec.get());
    if count > room {
        return Err(Error::corrupt(
            blkno,
            format!("{what} extent list l_count {count} exceeds the {room} records that fit"),
        ));
    }
    if used > count {
        return Err(Error::corrupt(
            blkno,
            format!("{what} extent list l_next_free_rec {used} exceeds l_count {count}"),
        ));
    }
    let recs = (0..used)
        .map(|i| ExtentRec::read_from_bytes(&rest[i * 16..i * 16 + 16]).expect("16 bytes"))
        .collect();
    Ok((el, recs))
}

/// A leaf extent: `clusters` clusters from logical cluster `cpos`, stored
/// from block `blkno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub cpos: u32,
    pub clusters: u32,
    pub blkno: u64,
    pub flags: u8,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub inode: u64,
    pub name: Vec<u8>,
    pub file_type: u8,
    pub rec_len: u16,
    /// Block holding the entry (the inode itself for inline directories).
    pub blkno: u64,
    /// Byte offset of the entry in what was parsed (the block, or the
    /// inline data area).
    pub offset: usize,
}

impl DirEntry {
    /// The name as text safe to print ([`crate::bytes::printable`]).
    pub fn name_lossy(&self) -> String {
        crate::bytes::printable(&self.name)
    }
}

/// A group descriptor of a chain allocator, as found on its chain.
#[derive(Debug, Clone)]
pub struct Group {
    pub chain: usize,
    pub blkno: u64,
    pub desc: GroupDesc,
}

/// Where the slot map's bytes live: `(file offset, device offset, length)`
/// runs, one per file system block.
pub type SlotMapRuns = Vec<(u64, u64, usize)>;

/// An opened volume.
pub struct Volume {
    dev: Box<dyn BlockIo>,
    block_size: u32,
    /// The superblock's block number (2, or a backup's).
    super_blkno: u64,
    super_buf: Vec<u8>,
    /// Whether the superblock's block check was corrected on read.
    pub super_corrected: bool,
}

impl Volume {
    /// Find the superblock the way libocfs2 does: block 2 at each block size
    /// from 512 to 4096 bytes.
    pub fn open(dev: Box<dyn BlockIo>) -> Result<Volume> {
        Self::open_sized(dev, true)
    }

    /// [`Volume::open`] for a checker: a superblock whose `i_clusters` runs
    /// past the device is accepted when the global bitmap's inode describes
    /// a volume that fits; the superblock's count is then the damage (see
    /// [`Volume::fitting_clusters`]).
    pub fn open_for_check(dev: Box<dyn BlockIo>) -> Result<Volume> {
        let vol = Self::open_sized(dev, false)?;
        let sb = vol.clusters();
        if u64::from(sb) << vol.sb().s_clustersize_bits.get() > vol.dev.size()
            && vol.fitting_clusters() == sb
        {
            return Err(Error::Truncated {
                volume_bytes: u64::from(sb) << vol.sb().s_clustersize_bits.get(),
                clusters: sb,
                cluster_size: vol.cluster_size(),
                device_bytes: vol.dev.size(),
            });
        }
        Ok(vol)
    }

    /// The volume's clusters as a checker believes them: the superblock's
    /// and the global bitmap inode's `i_clusters` when they agree; else the
    /// larger of those that fit the device (a count cut short hides
    /// clusters, and one past the device cannot be); else the superblock's.
    pub fn fitting_clusters(&self) -> u32 {
        let sb = self.clusters();
        let bitmap = self
            .system_inode("global_bitmap")
            .and_then(|b| self.read_inode(b))
            .map(|i| i.di().i_clusters.get())
            .unwrap_or(sb);
        let fits =
            |n: u32| n > 0 && u64::from(n) << self.sb().s_clustersize_bits.get() <= self.dev.size();
        [sb, bitmap]
            .into_iter()
            .filter(|&n| fits(n))
            .max()
            .unwrap_or(sb)
    }

    fn open_sized(dev: Box<dyn BlockIo>, strict: bool) -> Result<Volume> {
        for bits in 9..=12u32 {
            let bs = 1u32 << bits;
            match Self::open_at(dev.as_ref(), SUPER_BLOCK_BLKNO, bs, strict) {
                Ok((buf, corrected)) => {
                    return Ok(Volume {
                        dev,
                        block_size: bs,
                        super_blkno: SUPER_BLOCK_BLKNO,
                        super_buf: buf,
                        super_corrected: corrected,
                    })
                }
                Err(Error::NoSuperblock) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoSuperblock)
    }

    /// Open from the superblock at `blkno` (a backup), with a known block size.
    pub fn open_backup(dev: Box<dyn BlockIo>, blkno: u64, block_size: u32) -> Result<Volume> {
        let (buf, corrected) = Self::open_at(dev.as_ref(), blkno, block_size, true)?;
        Ok(Volume {
            dev,
            block_size,
            super_blkno: blkno,
            super_buf: buf,
            super_corrected: corrected,
        })
    }

    fn open_at(dev: &dyn BlockIo, blkno: u64, bs: u32, strict: bool) -> Result<(Vec<u8>, bool)> {
        let offset = blkno
            .checked_mul(u64::from(bs))
            .ok_or(Error::NoSuperblock)?;
        if offset + u64::from(bs) > dev.size() {
            return Err(Error::NoSuperblock);
        }
        // Uncached: the MMP bit and interval decide how the tools wait.
        let mut buf = vec![0u8; bs as usize];
        dev.read_direct(offset, &mut buf)?;
        if !buf.starts_with(SUPER_BLOCK_SIGNATURE) {
            return Err(Error::NoSuperblock);
        }
        let sb = SuperBlock::read_from_prefix(&buf[DINODE_ID2..])
            .expect("superblock fits in 512 bytes")
            .0;
        let bits = sb.s_blocksize_bits.get();
        if bits != bs.trailing_zeros() {
            // A stale signature from an earlier format with another block size.
            return Err(Error::NoSuperblock);
        }
        let mut corrected = false;
        if sb.s_feature_incompat.get() & incompat::META_ECC != 0 {
            match blockcheck::validate(&mut buf, CheckAt::Inode) {
                CheckResult::Ok => {}
                CheckResult::Corrected(_) => corrected = true,
                CheckResult::Bad {
                    stored_crc,
                    computed_crc,
                } => {
                    return Err(Error::BadCheck {
                        blkno,
                        stored: stored_crc,
                        computed: computed_crc,
                    })
                }
            }
        }
        let csb = sb.s_clustersize_bits.get();
        if !(12..=20).contains(&csb) {
            return Err(Error::corrupt(
                blkno,
                format!("superblock s_clustersize_bits {csb} is outside 12..=20"),
            ));
        }
        if sb.s_max_slots.get() == 0 || sb.s_max_slots.get() > MAX_SLOTS {
            return Err(Error::corrupt(
                blkno,
                format!(
                    "superblock s_max_slots {} is outside 1..={MAX_SLOTS}",
                    sb.s_max_slots.get()
                ),
            ));
        }
        // The volume must fit the device: a cut image is damage, not a volume.
        let clusters = Dinode::read_from_prefix(&buf)
            .expect("block >= 0xC0 bytes")
            .0
            .i_clusters
            .get();
        let volume_bytes = u64::from(clusters) << csb;
        if strict && volume_bytes > dev.size() {
            return Err(Error::Truncated {
                volume_bytes,
                clusters,
                cluster_size: 1 << csb,
                device_bytes: dev.size(),
            });
        }
        Ok((buf, corrected))
    }

    pub fn device(&self) -> &dyn BlockIo {
        self.dev.as_ref()
    }
    pub fn block_size(&self) -> u32 {
        self.block_size
    }
    pub fn cluster_size(&self) -> u32 {
        1 << self.sb().s_clustersize_bits.get()
    }
    /// Blocks on the device.
    pub fn device_blocks(&self) -> u64 {
        self.dev.size() / u64::from(self.block_size)
    }
    pub fn super_blkno(&self) -> u64 {
        self.super_blkno
    }
    /// The superblock inode (block 2).
    pub fn super_inode(&self) -> Inode {
        Inode {
            blkno: self.super_blkno,
            buf: self.super_buf.clone(),
        }
    }
    pub fn sb(&self) -> &SuperBlock {
        SuperBlock::ref_from_prefix(&self.super_buf[DINODE_ID2..])
            .expect("superblock fits")
            .0
    }
    pub fn features(&self) -> FeatureSet {
        let sb = self.sb();
        FeatureSet {
            compat: sb.s_feature_compat.get(),
            incompat: sb.s_feature_incompat.get(),
            ro_compat: sb.s_feature_ro_compat.get(),
        }
    }
    pub fn meta_ecc(&self) -> bool {
        self.features().has_incompat(incompat::META_ECC)
    }
    pub fn max_slots(&self) -> u16 {
        self.sb().s_max_slots.get()
    }
    /// Clusters in the volume, as the superblock inode's `i_clusters` says.
    pub fn clusters(&self) -> u32 {
        self.super_inode().di().i_clusters.get()
    }
    pub fn label(&self) -> Vec<u8> {
        let l = &self.sb().s_label;
        let n = l.iter().position(|&b| b == 0).unwrap_or(l.len());
        l[..n].to_vec()
    }
    /// UUID as 32 uppercase hex digits, as `debugfs.ocfs2` prints it.
    pub fn uuid_hex(&self) -> String {
        self.sb()
            .s_uuid
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// The bytes a slot map of `slots` entries takes in this volume's
    /// format.
    pub fn slot_map_bytes(&self, slots: u16) -> u64 {
        u64::from(slots) * self.slot_map_format().entry_size() as u64
    }

    pub fn slot_map_format(&self) -> Format {
        if self.features().has_incompat(incompat::EXTENDED_SLOT_MAP) {
            Format::Extended
        } else {
            Format::Old
        }
    }

    /// Block numbers of the backup superblocks this volume has room for
    /// (only meaningful when `backup-super` is on).
    pub fn backup_super_blknos(&self) -> Vec<u64> {
        // Inside the volume: a device that grew past it holds no backups
        // of it there yet.
        self.backup_positions(u64::from(self.clusters()))
    }

    /// The backup superblocks a volume of `clusters` keeps: their blocks
    /// inside it when `backup-super` is on, none when it is off (a volume
    /// about to grow to that size).
    pub fn backups_within(&self, clusters: u64) -> Vec<u64> {
        if self.features().compat & crate::features::compat::BACKUP_SB == 0 {
            return Vec::new();
        }
        self.backup_positions(clusters)
    }

    /// The backup superblock positions inside `clusters` that the device
    /// holds.
    fn backup_positions(&self, clusters: u64) -> Vec<u64> {
        let bpc = u64::from(self.cluster_size() / self.block_size);
        let blocks = self.device_blocks().min(clusters * bpc);
        (0..MAX_BACKUP_SUPERBLOCKS)
            .map(|i| backup_super_blkno(self.block_size, i))
            .take_while(|&b| b < blocks)
            .collect()
    }

    pub fn block_offset(&self, blkno: u64) -> Result<u64> {
        let blocks = self.device_blocks();
        if blkno >= blocks {
            return Err(Error::PastEnd {
                blkno,
                blocks,
                block_size: self.block_size,
            });
        }
        Ok(blkno * u64::from(self.block_size))
    }

    /// Read one block, unchecked.
    pub fn read_block(&self, blkno: u64) -> Result<Vec<u8>> {
        let off = self.block_offset(blkno)?;
        let mut buf = vec![0u8; self.block_size as usize];
        self.dev.read_at(off, &mut buf)?;
        Ok(buf)
    }

    /// Read `n` consecutive blocks from `blkno` (an attribute bucket).
    pub fn read_blocks(&self, blkno: u64, n: u64) -> Result<Vec<u8>> {
        let off = self.block_offset(blkno)?;
        self.block_offset(blkno.saturating_add(n.max(1) - 1))?;
        let mut buf = vec![0u8; (u64::from(self.block_size) * n) as usize];
        self.dev.read_at(off, &mut buf)?;
        Ok(buf)
    }

    /// Blocks an attribute bucket spans (`OCFS2_XATTR_BUCKET_SIZE` is 4096
    /// bytes whatever the block size).
    pub fn blocks_per_bucket(&self) -> u64 {
        (crate::xattr::BUCKET_SIZE as u64 / u64::from(self.block_size)).max(1)
    }

    /// Write one block as is (no block check update).
    pub fn write_block(&self, blkno: u64, buf: &[u8]) -> Result<()> {
        let off = self.block_offset(blkno)?;
        if buf.len() != self.block_size as usize {
            return Err(Error::Invalid(format!(
                "write of {} bytes to block {blkno}: not one block",
                buf.len()
            )));
        }
        self.dev.write_at(off, buf)
    }

    /// Write a metadata block, its block check recomputed first under
    /// `metaecc` (every metadata write goes through here).
    pub fn write_meta(&self, blkno: u64, buf: &mut [u8], at: CheckAt) -> Result<()> {
        if self.meta_ecc() {
            blockcheck::update(buf, at);
        }
        if at == CheckAt::XattrBucket {
            // A bucket: one write of its blocks.
            return self.write_blocks(blkno, buf);
        }
        self.write_block(blkno, buf)
    }

    /// Write whole blocks from `blkno` in one write (an attribute bucket),
    /// as they are.
    pub fn write_blocks(&self, blkno: u64, buf: &[u8]) -> Result<()> {
        let bs = u64::from(self.block_size);
        let n = buf.len() as u64 / bs;
        if n == 0 || buf.len() as u64 % bs != 0 {
            return Err(Error::Invalid(format!(
                "write of {} bytes to block {blkno}: not whole blocks",
                buf.len()
            )));
        }
        self.block_offset(blkno.saturating_add(n - 1))?;
        self.dev.write_at(self.block_offset(blkno)?, buf)
    }

    /// Read a metadata block and, under `metaecc`, validate (and correct one
    /// bit of) its block check.
    pub fn read_meta(&self, blkno: u64, at: CheckAt) -> Result<Vec<u8>> {
        let mut buf = self.read_block(blkno)?;
        if self.meta_ecc() {
            if let CheckResult::Bad {
                stored_crc,
                computed_crc,
            } = blockcheck::validate(&mut buf, at)
            {
                return Err(Error::BadCheck {
                    blkno,
                    stored: stored_crc,
                    computed: computed_crc,
                });
            }
        }
        Ok(buf)
    }

    /// Read an inode; checks its signature and, under metaecc, its block check.
    pub fn read_inode(&self, blkno: u64) -> Result<Inode> {
        let buf = self.read_block(blkno)?;
        self.inode_from_buf(blkno, buf)
    }

    /// Check an inode block read by the caller: signature and block check.
    fn inode_from_buf(&self, blkno: u64, buf: Vec<u8>) -> Result<Inode> {
        let is_super = blkno == self.super_blkno && buf.starts_with(SUPER_BLOCK_SIGNATURE);
        if !buf.starts_with(INODE_SIGNATURE) && !is_super {
            return Err(Error::corrupt(
                blkno,
                format!("not an inode: signature {:?}", sig_str(&buf[..8])),
            ));
        }
        let buf = self.read_meta_checked(blkno, buf, CheckAt::Inode)?;
        Ok(Inode { blkno, buf })
    }

    fn read_meta_checked(&self, blkno: u64, mut buf: Vec<u8>, at: CheckAt) -> Result<Vec<u8>> {
        if self.meta_ecc() {
            if let CheckResult::Bad {
                stored_crc,
                computed_crc,
            } = blockcheck::validate(&mut buf, at)
            {
                return Err(Error::BadCheck {
                    blkno,
                    stored: stored_crc,
                    computed: computed_crc,
                });
            }
        }
        Ok(buf)
    }

    /// The leaf extents of an inode's extent tree, in tree order.
    pub fn extents(&self, inode: &Inode) -> Result<Vec<Extent>> {
        Ok(self.extent_tree(inode)?.0)
    }

    /// An inode's extent tree: its leaf extents in tree order, and the
    /// extent blocks above them (the tree's own metadata), in block order.
    pub fn extent_tree(&self, inode: &Inode) -> Result<(Vec<Extent>, Vec<u64>)> {
        if !inode.has_extent_list() {
            return Ok((Vec::new(), Vec::new()));
        }
        let (el, recs) = inode.extent_list()?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.walk_list(
            inode.blkno,
            el.l_tree_depth.get(),
            &recs,
            &mut out,
            &mut seen,
        )?;
        let mut blocks: Vec<u64> = seen.into_iter().collect();
        blocks.sort_unstable();
        Ok((out, blocks))
    }

    /// The leaf extents of the extent list at the start of `list` (an
    /// attribute value root's or index's, in a block of `owner`), in tree
    /// order.
    pub fn list_extents(&self, owner: u64, list: &[u8]) -> Result<Vec<Extent>> {
        Ok(self.list_tree(owner, list)?.0)
    }

    /// [`Volume::list_extents`], with the extent blocks of the tree.
    pub fn list_tree(&self, owner: u64, list: &[u8]) -> Result<(Vec<Extent>, Vec<u64>)> {
        let (el, recs) = parse_extent_list(owner, list, "attribute")?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.walk_list(owner, el.l_tree_depth.get(), &recs, &mut out, &mut seen)?;
        let mut blocks: Vec<u64> = seen.into_iter().collect();
        blocks.sort_unstable();
        Ok((out, blocks))
    }

    fn walk_list(
        &self,
        owner: u64,
        depth: u16,
        recs: &[ExtentRec],
        out: &mut Vec<Extent>,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::corrupt(
                owner,
                format!("extent tree depth {depth} exceeds {MAX_TREE_DEPTH}"),
            ));
        }
        for rec in recs {
            if depth == 0 {
                if rec.leaf_clusters() == 0 {
                    continue;
                }
                out.push(Extent {
                    cpos: rec.e_cpos.get(),
                    clusters: u32::from(rec.leaf_clusters()),
                    blkno: rec.e_blkno.get(),
                    flags: rec.flags(),
                });
                continue;
            }
            let eb_blkno = rec.e_blkno.get();
            if eb_blkno == 0 {
                continue;
            }
            if !seen.insert(eb_blkno) {
                return Err(Error::corrupt(
                    owner,
                    format!("extent tree loops back to block {eb_blkno}"),
                ));
            }
            let eb = self.read_extent_block(eb_blkno)?;
            let hdr = ExtentBlock::ref_from_prefix(&eb)
                .expect("block >= 64 bytes")
                .0;
            let child_depth = hdr.h_list.l_tree_depth.get();
            // Widened: a damaged child depth of 0xFFFF must not overflow.
            if u32::from(child_depth) + 1 != u32::from(depth) {
                return Err(Error::corrupt(
                    eb_blkno,
                    format!("extent block depth {child_depth} under a list of depth {depth}"),
                ));
            }
            let (_, child) = parse_extent_list(eb_blkno, &eb[0x30..], "extent block")?;
            self.walk_list(eb_blkno, child_depth, &child, out, seen)?;
        }
        Ok(())
    }

    /// Read an extent block, checking its signature and block check.
    pub fn read_extent_block(&self, blkno: u64) -> Result<Vec<u8>> {
        let buf = self.read_block(blkno)?;
        if !buf.starts_with(EXTENT_BLOCK_SIGNATURE) {
            return Err(Error::corrupt(
                blkno,
                format!("not an extent block: signature {:?}", sig_str(&buf[..8])),
            ));
        }
        self.read_meta_checked(blkno, buf, CheckAt::ExtentBlock)
    }

    /// Physical block holding logical block `lblk` of the file, if mapped.
    pub fn map_block(&self, extents: &[Extent], lblk: u64) -> Option<u64> {
        let bpc = u64::from(self.cluster_size() / self.block_size);
        let cpos = lblk / bpc;
        extents.iter().find_map(|e| {
            let start = u64::from(e.cpos);
            (cpos >= start && cpos < start + u64::from(e.clusters))
                // Saturating: a damaged e_blkno near u64::MAX maps past the
                // end of the device (an error on read), not to an overflow.
                .then(|| e.blkno.saturating_add(lblk - start * bpc))
        })
    }

    /// The file's bytes, up to `limit` bytes (holes and unwritten extents
    /// read as zeros).
    pub fn read_file(&self, inode: &Inode, limit: u64) -> Result<Vec<u8>> {
        if inode.is_inline() {
            let d = inode.inline_data()?;
            return Ok(d[..d.len().min(limit as usize)].to_vec());
        }
        let size = inode.size().min(limit);
        self.read_extents(&self.extents(inode)?, size)
    }

    /// The first `size` bytes that `extents` map from logical byte 0 (holes
    /// and unwritten extents read as zeros, as the kernel reads them).
    pub fn read_extents(&self, extents: &[Extent], size: u64) -> Result<Vec<u8>> {
        let size_usize =
            usize::try_from(size).map_err(|_| Error::Invalid("file too large".into()))?;
        let extents: Vec<Extent> = extents
            .iter()
            .filter(|e| e.flags & EXT_UNWRITTEN == 0)
            .copied()
            .collect();
        let bs = u64::from(self.block_size);
        let mut out = vec![0u8; size_usize];
        let nblocks = size.div_ceil(bs);
        for lblk in 0..nblocks {
            if let Some(p) = self.map_block(&extents, lblk) {
                let data = self.read_block(p)?;
                let start = (lblk * bs) as usize;
                let end = (start + bs as usize).min(size_usize);
                out[start..end].copy_from_slice(&data[..end - start]);
            }
        }
        Ok(out)
    }

    /// Whether directory blocks end in a trailer (volumes with metaecc).
    pub fn dir_trailers(&self) -> bool {
        self.meta_ecc()
    }

    /// The blocks of block directory `dir` up to its size, in logical
    /// order: (physical block, its bytes as read, no check verified).
    pub fn dir_blocks(&self, dir: &Inode) -> Result<Vec<(u64, Vec<u8>)>> {
        let extents = self.extents(dir)?;
        let bs = u64::from(self.block_size);
        (0..dir.size().div_ceil(bs))
            .map(|lblk| {
                let p = self.map_block(&extents, lblk).ok_or_else(|| {
                    Error::corrupt(dir.blkno, format!("directory block {lblk} is a hole"))
                })?;
                Ok((p, self.read_block(p)?))
            })
            .collect()
    }

    /// Entries of a directory (live ones, `inode != 0`).
    pub fn dir_entries(&self, dir: &Inode) -> Result<Vec<DirEntry>> {
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "inode {} is not a directory",
                dir.blkno
            )));
        }
        let mut out = Vec::new();
        if dir.is_inline() {
            let data = dir.inline_data()?;
            parse_dir_block(dir.blkno, data, &mut out)?;
            return Ok(out);
        }
        let extents = self.extents(dir)?;
        let bs = u64::from(self.block_size);
        let nblocks = dir.size().div_ceil(bs);
        let limit = if self.dir_trailers() {
            bs as usize - 0x40
        } else {
            bs as usize
        };
        for lblk in 0..nblocks {
            let Some(p) = self.map_block(&extents, lblk) else {
                return Err(Error::corrupt(
                    dir.blkno,
                    format!("directory block {lblk} is a hole"),
                ));
            };
            let buf = self.read_block(p)?;
            let buf = if self.dir_trailers() {
                self.read_meta_checked(p, buf, CheckAt::DirTrailer)?
            } else {
                buf
            };
            parse_dir_block(p, &buf[..limit], &mut out)?;
        }
        Ok(out)
    }

    /// Look a name up in a directory.
    pub fn lookup(&self, dir: &Inode, name: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .dir_entries(dir)?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.inode))
    }

    pub fn root_blkno(&self) -> u64 {
        self.sb().s_root_blkno.get()
    }
    pub fn system_dir_blkno(&self) -> u64 {
        self.sb().s_system_dir_blkno.get()
    }

    /// Block number of a system file, by its name in the system directory
    /// (`slot_map`, `global_bitmap`, `journal:0000`, ...).
    /// The free clusters the global bitmap's inode counts (its `i_total`
    /// less `i_used`).
    pub fn free_cluster_count(&self) -> Result<u64> {
        Ok(self
            .read_inode(self.system_inode("global_bitmap")?)?
            .di()
            .bitmap_free())
    }

    pub fn system_inode(&self, name: &str) -> Result<u64> {
        let sysdir = self.read_inode(self.system_dir_blkno())?;
        self.lookup(&sysdir, name.as_bytes())?
            .ok_or_else(|| Error::NotFound(format!("system file {name}")))
    }

    /// Resolve a path: `/a/b` from the root directory, `//name` from the
    /// system directory, or `<N>` for inode block N.
    pub fn resolve_path(&self, path: &str) -> Result<u64> {
        if let Some(n) = path.strip_prefix('<').and_then(|p| p.strip_suffix('>')) {
            return n
                .parse()
                .map_err(|_| Error::Invalid(format!("bad inode number {path}")));
        }
        let (mut cur, rest) = if let Some(rest) = path.strip_prefix("//") {
            (self.system_dir_blkno(), rest)
        } else if let Some(rest) = path.strip_prefix('/') {
            (self.root_blkno(), rest)
        } else {
            return Err(Error::Invalid(format!(
                "{path}: paths start with / (root) or // (system directory)"
            )));
        };
        for comp in rest.split('/').filter(|c| !c.is_empty()) {
            let dir = self.read_inode(cur)?;
            cur = self
                .lookup(&dir, comp.as_bytes())?
                .ok_or_else(|| Error::NotFound(path.to_string()))?;
        }
        Ok(cur)
    }

    /// The groups of a chain allocator, chain by chain.
    pub fn chain_groups(&self, alloc: &Inode) -> Result<Vec<Group>> {
        let (_, recs) = alloc.chain_list()?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (chain, rec) in recs.iter().enumerate() {
            let mut blkno = rec.c_blkno.get();
            while blkno != 0 {
                if !seen.insert(blkno) {
                    return Err(Error::corrupt(
                        alloc.blkno,
                        format!("chain {chain} loops back to group {blkno}"),
                    ));
                }
                let buf = self.read_block(blkno)?;
                if !buf.starts_with(GROUP_DESC_SIGNATURE) {
                    return Err(Error::corrupt(
                        blkno,
                        format!("not a group descriptor: signature {:?}", sig_str(&buf[..8])),
                    ));
                }
                let buf = self.read_meta_checked(blkno, buf, CheckAt::GroupDesc)?;
                let desc = GroupDesc::read_from_prefix(&buf)
                    .expect("block >= 64 bytes")
                    .0;
                out.push(Group { chain, blkno, desc });
                blkno = desc.bg_next_group.get();
            }
        }
        Ok(out)
    }

    /// The slot map inode and the physical byte offset of each of its first
    /// `len` bytes' blocks: `(file offset, device offset, length)` runs.
    pub fn slot_map_layout(&self) -> Result<(Inode, SlotMapRuns)> {
        self.slot_map_runs(self.max_slots())
    }

    /// [`Volume::slot_map_layout`] for `slots` entries (a map about to
    /// grow to them).
    pub fn slot_map_runs(&self, slots: u16) -> Result<(Inode, SlotMapRuns)> {
        let blkno = self.system_inode("slot_map")?;
        let inode = self.read_inode(blkno)?;
        let need = self.slot_map_bytes(slots) as usize;
        if inode.size() < need as u64 {
            return Err(Error::corrupt(
                blkno,
                format!(
                    "slot map holds {} bytes, {need} needed for {} slots",
                    inode.size(),
                    self.max_slots()
                ),
            ));
        }
        if inode.is_inline() {
            // Bounds i_size (>= need, checked above) by id_count and id_count
            // by the block: the slot map runs stay inside the inode block.
            inode.inline_data()?;
            let id_off = DINODE_ID2 + core::mem::size_of::<InlineData>();
            let dev_off = blkno * u64::from(self.block_size) + id_off as u64;
            return Ok((inode, vec![(0, dev_off, need)]));
        }
        let extents = self.extents(&inode)?;
        let bs = self.block_size as usize;
        let mut runs = Vec::new();
        let mut done = 0usize;
        while done < need {
            let lblk = (done / bs) as u64;
            let p = self
                .map_block(&extents, lblk)
                .ok_or_else(|| Error::corrupt(blkno, format!("slot map block {lblk} is a hole")))?;
            let dev_off = self.block_offset(p)?;
            let n = (need - done).min(bs);
            runs.push((done as u64, dev_off, n));
            done += n;
        }
        Ok((inode, runs))
    }

    /// Read the slot map bypassing every cache.
    pub fn read_slot_map(&self) -> Result<SlotMap> {
        let (_, runs) = self.slot_map_layout()?;
        self.read_slot_map_runs(&runs)
    }

    /// Read the slot map from a layout found earlier (a re-read in a wait loop).
    pub fn read_slot_map_runs(&self, runs: &[(u64, u64, usize)]) -> Result<SlotMap> {
        let mut bytes = Vec::new();
        for &(_, dev_off, n) in runs {
            let mut b = vec![0u8; n];
            self.dev.read_direct(dev_off, &mut b)?;
            bytes.extend_from_slice(&b);
        }
        SlotMap::decode(&bytes, self.slot_map_format(), self.max_slots())
            .ok_or_else(|| Error::Invalid("slot map shorter than its slots".into()))
    }

    /// Write one slot's entry durably, bypassing the cache.
    pub fn write_slot(
        &self,
        runs: &[(u64, u64, usize)],
        slot: u16,
        raw: u32,
        node: u32,
    ) -> Result<()> {
        if slot >= self.max_slots() {
            return Err(Error::Invalid(format!(
                "slot {slot} out of range (0..{})",
                self.max_slots()
            )));
        }
        let fmt = self.slot_map_format();
        let entry = SlotMap::encode_entry(fmt, raw, node);
        let off = u64::from(slot) * fmt.entry_size() as u64;
        for &(foff, dev_off, n) in runs {
            if off >= foff && off + entry.len() as u64 <= foff + n as u64 {
                return self.dev.write_direct(dev_off + (off - foff), &entry);
            }
        }
        Err(Error::Invalid(format!(
            "slot {slot} entry straddles slot map blocks"
        )))
    }

    /// Make entries `from..to` of the slot map empty where they are not (a
    /// map growing to `to` slots; its `i_size` must hold them already):
    /// each entry written alone, bypassing the page cache.
    pub fn empty_slot_entries(&self, from: u16, to: u16) -> Result<()> {
        let (_, runs) = self.slot_map_runs(to)?;
        let fmt = self.slot_map_format();
        let size = fmt.entry_size();
        let empty = SlotMap::encode_entry(fmt, crate::slotmap::empty_value(fmt), 0);
        for slot in from..to {
            let off = u64::from(slot) * size as u64;
            let Some(&(foff, dev_off, _)) = runs
                .iter()
                .find(|&&(foff, _, n)| off >= foff && off + size as u64 <= foff + n as u64)
            else {
                return Err(Error::Invalid(format!(
                    "slot {slot} entry straddles slot map blocks"
                )));
            };
            let at = dev_off + (off - foff);
            let mut cur = vec![0u8; size];
            self.dev.read_direct(at, &mut cur)?;
            if cur != empty {
                self.dev.write_direct(at, &empty)?;
            }
        }
        Ok(())
    }

    /// Write the superblock buffer back (after a change to its fields),
    /// updating the block check under metaecc.
    pub fn write_super(&mut self, sb: &SuperBlock) -> Result<()> {
        self.super_buf[DINODE_ID2..DINODE_ID2 + core::mem::size_of::<SuperBlock>()]
            .copy_from_slice(sb.as_bytes());
        if self.meta_ecc() {
            blockcheck::update(&mut self.super_buf, CheckAt::Inode);
        }
        let buf = self.super_buf.clone();
        self.write_block(self.super_blkno, &buf)?;
        self.dev.flush()
    }

    /// Rewrite the slot map's whole allocation (`i_size`) as an empty map
    /// of `format`, block by block, then flush. The superblock's format bit
    /// is the caller's.
    pub fn write_empty_slot_map(&self, format: Format) -> Result<()> {
        let inode = self.read_inode(self.system_inode("slot_map")?)?;
        let extents = self.extents(&inode)?;
        let bs = u64::from(self.block_size);
        let fill = vec![crate::slotmap::empty_fill(format); bs as usize];
        for lblk in 0..inode.size().div_ceil(bs) {
            let p = self.map_block(&extents, lblk).ok_or_else(|| {
                Error::corrupt(inode.blkno, format!("slot map block {lblk} is a hole"))
            })?;
            self.write_block(p, &fill)?;
        }
        self.dev.flush()
    }

    /// The o2hb heartbeat blocks of nodes `0..count`, read bypassing the
    /// cache from the start of the `heartbeat` system file, `block_bytes`
    /// each (the device's logical sector size).
    pub fn heartbeat_blocks(
        &self,
        block_bytes: usize,
        count: usize,
    ) -> Result<Vec<crate::heartbeat::HbBlock>> {
        let blkno = self.system_inode("heartbeat")?;
        let inode = self.read_inode(blkno)?;
        let extents = self.extents(&inode)?;
        let first = extents
            .iter()
            .find(|e| e.cpos == 0)
            .ok_or_else(|| Error::corrupt(blkno, "the heartbeat file has no extent at offset 0"))?;
        let area = u64::from(first.clusters) * u64::from(self.cluster_size());
        let count = count
            .min(crate::heartbeat::MAX_NODES)
            .min((area / block_bytes as u64) as usize);
        let start = self.block_offset(first.blkno)?;
        let mut buf = vec![0u8; block_bytes * count];
        self.dev.read_direct(start, &mut buf)?;
        Ok(buf
            .chunks(block_bytes)
            .enumerate()
            .filter_map(|(i, b)| crate::heartbeat::decode(i as u16, b))
            .collect())
    }

    /// Whether slot `slot`'s journal is marked dirty (`OCFS2_JOURNAL_DIRTY_FL`
    /// in the journal inode): the kernel sets it at mount and clears it at a
    /// clean unmount, so a dirty journal belongs to a mount that is live or
    /// died, and its log must be replayed before the slot is given up.
    pub fn journal_dirty(&self, slot: u16) -> Result<bool> {
        let blkno = self.system_inode(&slot_file_name("journal", slot))?;
        // The inode itself is read uncached: the flag is an MMP decision.
        let off = self.block_offset(blkno)?;
        let mut buf = vec![0u8; self.block_size as usize];
        self.dev.read_direct(off, &mut buf)?;
        let ino = self.inode_from_buf(blkno, buf)?;
        Ok(ino.di().journal_flags() & JOURNAL_DIRTY_FL != 0)
    }

    /// Write journal inode `blkno`'s log afresh, as ocfs2-tools formats a
    /// journal: every block of its extents zeroed, then a fresh jbd2
    /// superblock ([`crate::journal::fresh_superblock`], as long as the
    /// clusters it has, `features`) in its first blocks, then, last, the
    /// inode without `OCFS2_JOURNAL_DIRTY_FL` (whatever the old log held is
    /// gone). A crash before the superblock leaves the old superblock over
    /// zeroed log blocks; before the inode, a dirty journal with an empty
    /// log, which a replay passes over. `limit` formats only the first
    /// blocks (a journal about to shrink to them).
    pub fn format_journal(
        &self,
        blkno: u64,
        features: crate::journal::JournalFeatures,
        limit: Option<u64>,
    ) -> Result<()> {
        let mut ino = self.read_inode(blkno)?;
        let extents = self.extents(&ino)?;
        let bs = u64::from(self.block_size);
        let bpc = u64::from(self.cluster_size()) / bs;
        let all: u64 = extents.iter().map(|e| u64::from(e.clusters) * bpc).sum();
        let blocks = limit.map_or(all, |l| l.min(all));
        let maxlen = u32::try_from(blocks).map_err(|_| {
            Error::Invalid(format!(
                "journal inode {blkno}: {blocks} blocks is too long a log"
            ))
        })?;
        let sb_bytes =
            crate::journal::fresh_superblock(self.block_size, maxlen, features, self.sb().s_uuid);
        if blocks * bs < sb_bytes.len() as u64 {
            return Err(Error::Invalid(format!(
                "journal inode {blkno}: {blocks} block(s) cannot hold a journal"
            )));
        }
        let mut left = blocks;
        for e in &extents {
            let n = (u64::from(e.clusters) * bpc).min(left);
            left -= n;
            if n > 0 {
                self.block_offset(e.blkno + n - 1)?;
            }
            crate::io::write_zeros(self.dev.as_ref(), self.block_offset(e.blkno)?, n * bs)?;
        }
        self.dev.flush()?;
        for (k, chunk) in sb_bytes.chunks(bs as usize).enumerate() {
            let at = self.map_block(&extents, k as u64).ok_or_else(|| {
                Error::Invalid(format!("journal inode {blkno}: block {k} is not mapped"))
            })?;
            self.write_block(at, chunk)?;
        }
        self.dev.flush()?;
        let flags = ino.di().journal_flags() & !JOURNAL_DIRTY_FL;
        ino.di_mut().set_bitmap_used(flags);
        self.write_meta(blkno, &mut ino.buf, CheckAt::Inode)?;
        self.dev.flush()
    }

    /// The jbd2 superblock at the start of journal inode `blkno`, when it
    /// is a valid one (its magic and version).
    pub fn journal_superblock(
        &self,
        blkno: u64,
    ) -> Result<Option<crate::journal::JournalSuperblock>> {
        use crate::journal::JournalSuperblock;
        let ino = self.read_inode(blkno)?;
        let Some(first) = self.extents(&ino)?.first().copied() else {
            return Ok(None);
        };
        let blk = self.read_block(first.blkno)?;
        Ok(JournalSuperblock::read_from_prefix(&blk)
            .ok()
            .map(|x| x.0)
            .filter(JournalSuperblock::is_valid))
    }

    /// Call `f` with every block of the inode allocators' groups (global
    /// and per slot) that holds an inode signature, as libocfs2's inode
    /// scan reads them: whatever its allocation bit says (the caller checks
    /// the inode's flags). Unreadable blocks are passed over.
    pub fn each_inode(&self, f: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        let mut allocators = vec!["global_inode_alloc".to_string()];
        allocators.extend((0..self.max_slots()).map(|s| slot_file_name("inode_alloc", s)));
        for name in allocators {
            let Ok(a) = self.system_inode(&name) else {
                continue;
            };
            let alloc = self.read_inode(a)?;
            for g in self.chain_groups(&alloc)? {
                for blkno in self.group_blocks(g.blkno)? {
                    let Ok(buf) = self.read_block(blkno) else {
                        continue;
                    };
                    if buf.starts_with(INODE_SIGNATURE) {
                        f(blkno, &buf);
                    }
                }
            }
        }
        Ok(())
    }

    /// The inodes in use: every inode [`Self::each_inode`] finds that
    /// [`inode_in_use`] accepts, by block.
    pub fn valid_inodes(&self) -> Result<Vec<(u64, Dinode)>> {
        let gen = self.super_inode().di().i_fs_generation.get();
        let mut out = Vec::new();
        self.each_inode(&mut |blkno, buf| {
            if let Some(di) = inode_in_use(buf, blkno, gen) {
                out.push((blkno, di));
            }
        })?;
        Ok(out)
    }

    /// The inode at block `b` when [`inode_in_use`] accepts it (`None`
    /// also when the block cannot be read).
    pub fn valid_inode_at(&self, b: u64) -> Option<Dinode> {
        let gen = self.super_inode().di().i_fs_generation.get();
        inode_in_use(&self.read_block(b).ok()?, b, gen)
    }

    /// The bits of each group of chain allocator `alloc`: its chain list's
    /// clusters per group times bits per cluster.
    pub fn chain_group_bits(&self, alloc: u64) -> Result<u64> {
        let ino = self.read_inode(alloc)?;
        let (cl, _) = ChainList::read_from_prefix(ino.id2())
            .map_err(|_| Error::corrupt(alloc, "the inode holds no chain list"))?;
        Ok(u64::from(cl.cl_cpg.get()) * u64::from(cl.cl_bpc.get()))
    }

    /// The blocks of suballocator group `group`, in bit order (bit 0 is the
    /// group's own block): contiguous, or through the extent list of a
    /// discontiguous group.
    pub fn group_blocks(&self, group: u64) -> Result<Vec<u64>> {
        let buf = self.read_block(group)?;
        let (desc, _) = GroupDesc::read_from_prefix(&buf)
            .map_err(|_| Error::corrupt(group, "group descriptor truncated"))?;
        let bits = u64::from(desc.bg_bits.get());
        const BG_LIST: usize = 0x140;
        let recs =
            if self.features().has_incompat(incompat::DISCONTIG_BG) && buf.len() > BG_LIST + 16 {
                parse_extent_list(group, &buf[BG_LIST..], "group")
                    .map(|(_, r)| r)
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
        if recs.is_empty() {
            return Ok((group..group + bits).collect());
        }
        let bpc = u64::from(self.cluster_size() / self.block_size);
        let mut out = Vec::new();
        for r in recs {
            let n = u64::from(r.leaf_clusters()) * bpc;
            out.extend((0..n).map(|k| r.e_blkno.get() + k));
        }
        out.truncate(bits as usize);
        Ok(out)
    }

    /// Every node's heartbeat block, as o2hb lays them out on this device:
    /// one per node, a logical sector each.
    pub fn heartbeat_area(&self) -> Result<Vec<crate::heartbeat::HbBlock>> {
        self.heartbeat_blocks(self.dev.sector_size() as usize, crate::heartbeat::MAX_NODES)
    }

    /// Backup superblocks present on the device: block numbers that hold an
    /// `OCFSV2` superblock of this volume (same UUID), when `backup-super` is on.
    pub fn present_backups(&self) -> Result<Vec<u64>> {
        if self.features().compat & crate::features::compat::BACKUP_SB == 0 {
            return Ok(Vec::new());
        }
        let uuid = self.sb().s_uuid;
        let mut out = Vec::new();
        for b in self.backup_super_blknos() {
            let buf = self.read_block(b)?;
            if buf.starts_with(SUPER_BLOCK_SIGNATURE) {
                let sb = SuperBlock::read_from_prefix(&buf[DINODE_ID2..])
                    .expect("fits")
                    .0;
                if sb.s_uuid == uuid {
                    out.push(b);
                }
            }
        }
        Ok(out)
    }

    /// Write a changed superblock everywhere: every present backup first
    /// (each a copy of the primary with its own `i_blkno`), the primary last,
    /// so that a crash leaves the primary as before or as after. Block checks
    /// are recomputed under metaecc. The in-memory copy stays as it was read:
    /// open the volume again to see the change.
    pub fn write_super_everywhere(&self, sb: &SuperBlock) -> Result<Vec<u64>> {
        let backups = self.present_backups()?;
        self.write_super_copies(sb, &backups)?;
        Ok(backups)
    }

    /// [`Volume::write_super_everywhere`] to the backup blocks given (none:
    /// the primary only).
    pub fn write_super_copies(&self, sb: &SuperBlock, backups: &[u64]) -> Result<()> {
        self.write_super_sized(sb, None, backups)
    }

    /// [`Volume::write_super_copies`], the superblock's `i_clusters` set
    /// to `clusters` when given (a volume that grew), in the same write.
    pub fn write_super_sized(
        &self,
        sb: &SuperBlock,
        clusters: Option<u32>,
        backups: &[u64],
    ) -> Result<()> {
        let mut buf = self.super_buf.clone();
        buf[DINODE_ID2..DINODE_ID2 + core::mem::size_of::<SuperBlock>()]
            .copy_from_slice(sb.as_bytes());
        if let Some(c) = clusters {
            Dinode::mut_from_prefix(&mut buf)
                .expect("block")
                .0
                .i_clusters
                .set(c);
        }
        // The new feature words decide whether block checks apply.
        let ecc = sb.s_feature_incompat.get() & incompat::META_ECC != 0;
        for &b in backups {
            let mut copy = buf.clone();
            Dinode::mut_from_prefix(&mut copy)
                .expect("block")
                .0
                .i_blkno
                .set(b);
            if ecc {
                blockcheck::update(&mut copy, CheckAt::Inode);
            }
            self.write_block(b, &copy)?;
        }
        self.dev.flush()?;
        if ecc {
            blockcheck::update(&mut buf, CheckAt::Inode);
        }
        self.write_block(self.super_blkno, &buf)?;
        self.dev.flush()
    }
}

/// Parse directory entries from `data` (one block, or the inline area).
pub fn parse_dir_block(blkno: u64, data: &[u8], out: &mut Vec<DirEntry>) -> Result<()> {
    let mut off = 0usize;
    while off < data.len() {
        let Ok((hdr, _)) = DirEntryHeader::read_from_prefix(&data[off..]) else {
            return Err(Error::corrupt(
                blkno,
                format!("directory entry at byte {off} truncated"),
            ));
        };
        let rec_len = usize::from(hdr.rec_len.get());
        let name_len = usize::from(hdr.name_len);
        if rec_len < dir_rec_len(1) || rec_len % 4 != 0 || off + rec_len > data.len() {
            return Err(Error::corrupt(
                blkno,
                format!(
                    "directory entry at byte {off}: bad rec_len {rec_len} (space left {})",
                    data.len() - off
                ),
            ));
        }
        if dir_rec_len(name_len) > rec_len {
            return Err(Error::corrupt(
                blkno,
                format!("directory entry at byte {off}: name_len {name_len} does not fit rec_len {rec_len}"),
            ));
        }
        if hdr.inode.get() != 0 {
            out.push(DirEntry {
                inode: hdr.inode.get(),
                name: data[off + DIR_MEMBER_LEN..off + DIR_MEMBER_LEN + name_len].to_vec(),
                file_type: hdr.file_type,
                rec_len: hdr.rec_len.get(),
                blkno,
                offset: off,
            });
        }
        off += rec_len;
    }
    Ok(())
}

fn sig_str(b: &[u8]) -> String {
    b.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' })
        .collect()
}

/// Name of a per-slot system file, e.g. `journal:0003`.
pub fn slot_file_name(base: &str, slot: u16) -> String {
    format!("{base}:{slot:04}")
}

/// `buf`, read from block `blkno`, holds an inode in use on the file
/// system of generation `generation`: the inode signature, its own block
/// number, `OCFS2_VALID_FL` and that generation.
pub fn inode_in_use(buf: &[u8], blkno: u64, generation: u32) -> Option<Dinode> {
    if !buf.starts_with(INODE_SIGNATURE) {
        return None;
    }
    let (di, _) = Dinode::read_from_prefix(buf).ok()?;
    (di.i_blkno.get() == blkno
        && di.i_flags.get() & inode_flags::VALID != 0
        && di.i_fs_generation.get() == generation)
        .then_some(di)
}
