//! The volume builder: lays a [`Plan`] out the way `mkfs.ocfs2` 1.8.7 does
//! (docs/mkfs-layout.md §3), in memory, then writes it.
//!
//! Memory stays small on huge volumes: a cluster group's bitmap exists in
//! memory only once something other than its descriptor is allocated in it.
//! Data areas (journals, the heartbeat, allocator groups) are recorded as
//! zero ranges and written by the device layer, which skips holes that
//! already read as zeros.

use crate::plan::Plan;
use crate::quota::{self, QuotaType};
use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::features::{incompat, ro_compat};
use ocfs2_format::journal::{fresh_superblock, JournalFeatures, JBD2_FEATURE_INCOMPAT_64BIT};
use ocfs2_format::ondisk::*;
use ocfs2_format::zerocopy::FromBytes;
use ocfs2_format::BlockIo;
use std::collections::BTreeMap;

/// Errors while laying out or writing a volume.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no room: cannot allocate {what} ({clusters} clusters) on this volume: it is too small for this configuration")]
    NoSpace { what: String, clusters: u64 },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Format(#[from] ocfs2_format::Error),
}

type Result<T> = std::result::Result<T, BuildError>;

/// Identity of the new volume.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub uuid: [u8; 16],
    pub generation: u32,
    pub dx_seed: [u32; 3],
    /// Format time, seconds since the epoch.
    pub time: u64,
}

/// Progress of the long steps (journals), for a terminal.
pub trait Progress {
    fn step(&mut self, _what: &str) {}
    fn journal(&mut self, _slot: u16, _of: u16) {}
}

/// No progress output.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One cluster group of the global bitmap.
#[derive(Clone)]
struct CGroup {
    blkno: u64,
    start: u64,
    bits: u32,
    free: u32,
    /// `None`: only bit 0 (the descriptor) is set.
    bitmap: Option<Vec<u8>>,
}

fn test_bit(b: &[u8], i: u32) -> bool {
    b[(i / 8) as usize] & (1 << (i % 8)) != 0
}
fn set_bit(b: &mut [u8], i: u32) {
    b[(i / 8) as usize] |= 1 << (i % 8);
}

impl CGroup {
    fn materialize(&mut self) -> &mut Vec<u8> {
        let bits = self.bits;
        self.bitmap.get_or_insert_with(|| {
            let mut v = vec![0u8; bits.div_ceil(8) as usize];
            set_bit(&mut v, 0);
            v
        })
    }
    fn is_set(&self, i: u32) -> bool {
        match &self.bitmap {
            Some(b) => test_bit(b, i),
            None => i == 0,
        }
    }
    /// Free runs `(start, len)` in bit order.
    fn runs(&self) -> Vec<(u32, u32)> {
        let Some(b) = &self.bitmap else {
            return if self.bits > 1 {
                vec![(1, self.bits - 1)]
            } else {
                Vec::new()
            };
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.bits {
            if test_bit(b, i) {
                i += 1;
                continue;
            }
            let s = i;
            while i < self.bits && !test_bit(b, i) {
                i += 1;
            }
            out.push((s, i - s));
        }
        out
    }
    fn take(&mut self, start: u32, n: u32) {
        let bm = self.materialize();
        for i in start..start + n {
            set_bit(bm, i);
        }
        self.free -= n;
    }
}

/// A system file's record while the layout is built.
#[derive(Clone, Default)]
struct Rec {
    name: String,
    blkno: u64,
    suballoc_bit: u16,
    mode: u16,
    flags: u32,
    links: u16,
    size: u64,
    clusters: u32,
    /// Leaf extents `(cpos, clusters, blkno)`.
    extents: Vec<(u32, u32, u64)>,
    dyn_features: u16,
    /// Inline data (`id2.i_data`), for inline directories.
    inline: Option<Vec<u8>>,
    /// Chain allocator: (cpg, bpc, chain recs (free, total, blkno), used, total).
    chain: Option<ChainInfo>,
    suballoc_slot: u16,
    suballoc_loc: u64,
    atime: u64,
    /// Directory index (indexed-dirs without inline-data).
    dx: Option<Dx>,
}

/// A directory's index root, kept inline (`OCFS2_DX_FLAG_INLINE`).
#[derive(Clone, Default)]
struct Dx {
    blkno: u64,
    bit: u16,
    group: u64,
    /// (major hash, minor hash, block holding the entry)
    entries: Vec<(u32, u32, u64)>,
    free_blk: u64,
    /// Per directory block: (db_free_rec_len, db_free_next).
    trailers: Vec<(u16, u64)>,
}

#[derive(Clone, Default)]
struct ChainInfo {
    cpg: u16,
    bpc: u16,
    recs: Vec<(u32, u32, u64)>,
    used: u32,
    total: u32,
}

/// A directory being filled the way mkfs.ocfs2's `add_entry_to_directory`
/// does: blocks of `bs` bytes, entries packed, the last one spanning to the
/// block end (or to the trailer).
struct DirBuf {
    buf: Vec<u8>,
    last_off: usize,
    bs: usize,
    trailer: bool,
    links: u16,
}

impl DirBuf {
    fn new(bs: usize, trailer: bool) -> Self {
        DirBuf {
            buf: Vec::new(),
            last_off: 0,
            bs,
            trailer,
            links: 0,
        }
    }

    fn hdr(&self, off: usize) -> DirEntryHeader {
        DirEntryHeader::read_from_prefix(&self.buf[off..])
            .expect("12 bytes")
            .0
    }

    fn add(&mut self, name: &str, inode: u64, ftype: u8) {
        let new_len = dir_rec_len(name.len());
        let mut off = None;
        if !self.buf.is_empty() {
            let de = self.hdr(self.last_off);
            let rec_len = usize::from(de.rec_len.get());
            let real = dir_rec_len(usize::from(de.name_len));
            if de.inode.get() == 0 && rec_len >= new_len {
                off = Some(self.last_off);
            } else if rec_len >= real + new_len {
                let at = self.last_off + real;
                self.put_rec_len(self.last_off, real);
                self.put_hdr(at, 0, rec_len - real);
                off = Some(at);
            }
        }
        let off = off.unwrap_or_else(|| {
            let at = self.buf.len();
            self.buf.resize(at + self.bs, 0);
            let rl = if self.trailer {
                self.bs - 0x40
            } else {
                self.bs
            };
            self.put_hdr(at, 0, rl);
            at
        });
        let rec_len = usize::from(self.hdr(off).rec_len.get());
        self.put_hdr(off, inode, rec_len);
        self.buf[off + 10] = name.len() as u8;
        self.buf[off + 11] = ftype;
        self.buf[off + 12..off + 12 + name.len()].copy_from_slice(name.as_bytes());
        self.last_off = off;
        if ftype == file_type::DIR {
            self.links += 1;
        }
    }

    fn put_hdr(&mut self, off: usize, inode: u64, rec_len: usize) {
        self.buf[off..off + 8].copy_from_slice(&inode.to_le_bytes());
        self.put_rec_len(off, rec_len);
    }
    fn put_rec_len(&mut self, off: usize, rec_len: usize) {
        self.buf[off + 8..off + 10].copy_from_slice(&(rec_len as u16).to_le_bytes());
    }

    /// The entries as inline data of `id_count` bytes.
    fn inline(&self, id_count: usize) -> Option<Vec<u8>> {
        let de = self.hdr(self.last_off);
        let end = self.last_off + dir_rec_len(usize::from(de.name_len));
        if end > id_count || self.buf.len() != self.bs {
            return None;
        }
        let mut out = self.buf[..id_count].to_vec();
        let rl = usize::from(de.rec_len.get()) - (self.bs - id_count);
        out[self.last_off + 8..self.last_off + 10].copy_from_slice(&(rl as u16).to_le_bytes());
        Some(out)
    }
}

/// The whole layout in memory, ready to write.
pub struct Layout {
    plan: Plan,
    id: Identity,
    groups: Vec<CGroup>,
    recs_per_inode: usize,
    fcg: u64,
    recs: Vec<Rec>,
    /// Blocks to write as they are (excluding inodes and the superblock).
    blocks: BTreeMap<u64, Vec<u8>>,
    /// Byte ranges to zero, written before the metadata blocks.
    zero: Vec<(u64, u64)>,
    /// Journal data to zero, per slot.
    journal_zero: Vec<(u16, u64, u64)>,
    backups: Vec<u64>,
    pub lost_found_blkno: u64,
}

impl Layout {
    fn bs(&self) -> u32 {
        self.plan.block_size
    }
    fn bpc(&self) -> u64 {
        u64::from(self.plan.bpc())
    }
    fn cluster_bytes(&self, clusters: u64) -> u64 {
        clusters << self.plan.cluster_bits
    }
    fn rec(&self, name: &str) -> usize {
        self.recs
            .iter()
            .position(|r| r.name == name)
            .expect("system file exists")
    }

    /// mkfs.ocfs2's own allocator (phase A): chains in order, first group
    /// whose free count suffices, first run of clear bits from bit 0.
    fn alloc_phase_a(&mut self, n: u32, what: &str) -> Result<u64> {
        let ngroups = self.groups.len();
        let chains = ngroups.min(self.recs_per_inode);
        for chain in 0..chains {
            let mut idx = chain;
            while idx < ngroups {
                if self.groups[idx].free >= n {
                    let g = &self.groups[idx];
                    let start = g
                        .runs()
                        .into_iter()
                        .find(|&(_, len)| len >= n)
                        .map(|(s, _)| s);
                    let Some(s) = start else {
                        return Err(BuildError::NoSpace {
                            what: what.into(),
                            clusters: u64::from(n),
                        });
                    };
                    self.groups[idx].take(s, n);
                    return Ok(self.groups[idx].start + u64::from(s));
                }
                idx += self.recs_per_inode;
            }
        }
        Err(BuildError::NoSpace {
            what: what.into(),
            clusters: u64::from(n),
        })
    }

    /// libocfs2's `ocfs2_new_clusters(min, want)` (phase B): groups in
    /// cluster order; the first run of `want`, else the longest run >= `min`.
    fn new_clusters(&mut self, min: u32, want: u32, what: &str) -> Result<(u64, u32)> {
        for idx in 0..self.groups.len() {
            if self.groups[idx].free < min {
                continue;
            }
            let runs = self.groups[idx].runs();
            let pick = runs
                .iter()
                .find(|&&(_, l)| l >= want)
                .map(|&(s, _)| (s, want))
                .or_else(|| {
                    let mut best: Option<(u32, u32)> = None;
                    for &(s, l) in &runs {
                        if best.is_none_or(|(_, bl)| l > bl) {
                            best = Some((s, l));
                        }
                    }
                    best.filter(|&(_, l)| l >= min)
                });
            if let Some((s, n)) = pick {
                self.groups[idx].take(s, n);
                return Ok((self.groups[idx].start + u64::from(s), n));
            }
        }
        Err(BuildError::NoSpace {
            what: what.into(),
            clusters: u64::from(want),
        })
    }

    /// Extend a file by `clusters`, one extent per piece, merging contiguous
    /// pieces (`extend_allocation` with `min = 1`).
    fn extend(&mut self, rec: usize, clusters: u32) -> Result<()> {
        let mut left = clusters;
        let bpc = self.bpc();
        while left > 0 {
            let what = format!("{} ({clusters} clusters)", self.recs[rec].name);
            let (start, n) = self.new_clusters(1, left, &what)?;
            let blkno = start * bpc;
            let r = &mut self.recs[rec];
            let cpos = r.clusters;
            match r.extents.last_mut() {
                Some(last)
                    if last.2 + u64::from(last.1) * bpc == blkno
                        && last.0 + last.1 == cpos
                        && last.1 + n <= 0xFFFF =>
                {
                    last.1 += n;
                }
                _ => r.extents.push((cpos, n, blkno)),
            }
            r.clusters += n;
            left -= n;
        }
        let max = extent_recs_per_inode(self.bs() as usize);
        if self.recs[rec].extents.len() > max {
            return Err(BuildError::Unsupported(format!(
                "{} needs {} extents, more than the {max} an inode holds",
                self.recs[rec].name,
                self.recs[rec].extents.len()
            )));
        }
        Ok(())
    }

    /// Add a suballocator group to a chain allocator (`ocfs2_chain_add_group`).
    fn add_suballoc_group(&mut self, rec: usize, owner_slot: Option<u16>) -> Result<u64> {
        let cpg = self.plan.suballoc_cpg();
        let what = format!("a group for {}", self.recs[rec].name);
        let (start, n) = self.new_clusters(cpg, cpg, &what)?;
        debug_assert_eq!(n, cpg);
        let _ = owner_slot;
        let bpc = self.bpc();
        let blkno = start * bpc;
        let bits = cpg * bpc as u32;
        let bs = self.bs() as usize;
        let discontig = self.plan.features.has_incompat(incompat::DISCONTIG_BG);
        let parent = self.recs[rec].blkno;
        let groups_before = self.recs[rec].clusters / cpg;
        let ci = self.recs[rec].chain.as_mut().expect("chain allocator");
        // The chain ocfs2_chain_add_group picks; the new group becomes its head.
        let count = chain_recs_per_inode(bs);
        let chain = usize::from(ocfs2_format::alloc::chain_for_new_group(
            ci.recs.len() as u16,
            count as u16,
            groups_before,
        ));
        let old_head = ci.recs.get(chain).map_or(0, |r| r.2);
        let gd = ocfs2_format::alloc::new_suballoc_desc(
            bs,
            discontig,
            blkno,
            bits as u16,
            chain as u16,
            old_head,
            parent,
            self.id.generation,
        );
        match ci.recs.get_mut(chain) {
            Some(r) => {
                r.0 += bits - 1;
                r.1 += bits;
                r.2 = blkno;
            }
            None => ci.recs.push((bits - 1, bits, blkno)),
        }
        ci.used += 1;
        ci.total += bits;
        let r = &mut self.recs[rec];
        r.clusters += cpg;
        r.size = u64::from(r.clusters) << self.plan.cluster_bits;
        self.zero
            .push((blkno * bs as u64, self.cluster_bytes(u64::from(cpg))));
        self.blocks.insert(blkno, gd);
        Ok(blkno)
    }
}

impl Layout {
    /// Put a file's blocks where its extents map them; the rest of its
    /// clusters read as zeros.
    fn place_file_blocks(&mut self, rec: usize, blocks: &[Vec<u8>]) {
        let bs = u64::from(self.plan.block_size);
        let bpc = self.bpc();
        let extents = self.recs[rec].extents.clone();
        for &(_, c, b) in &extents {
            self.zero.push((b * bs, u64::from(c) * bpc * bs));
        }
        for (lblk, data) in blocks.iter().enumerate() {
            let lblk = lblk as u64;
            let phys = extents.iter().find_map(|&(cpos, c, b)| {
                let start = u64::from(cpos) * bpc;
                (lblk >= start && lblk < start + u64::from(c) * bpc).then(|| b + (lblk - start))
            });
            if let Some(p) = phys {
                self.blocks.insert(p, data.clone());
            }
        }
    }

    /// A block from extent_alloc:0000 for a directory index root: the lowest
    /// free bit of its groups (a group is added first if it has none).
    fn dx_alloc(&mut self) -> Result<(u64, u16, u64)> {
        let ea = self.rec("extent_alloc:0000");
        if self.recs[ea]
            .chain
            .as_ref()
            .is_none_or(|c| c.recs.iter().all(|r| r.0 == 0))
        {
            self.add_suballoc_group(ea, Some(0))?;
        }
        let ci = self.recs[ea].chain.clone().expect("chain");
        for (k, &(free, _, gblk)) in ci.recs.iter().enumerate() {
            if free == 0 {
                continue;
            }
            let gd = self.blocks.get_mut(&gblk).expect("group block");
            let (desc, bm) = GroupDesc::mut_from_prefix(gd).expect("block");
            let bits = u32::from(desc.bg_bits.get());
            let Some(bit) = (0..bits).find(|&b| !test_bit(bm, b)) else {
                continue;
            };
            set_bit(bm, bit);
            desc.bg_free_bits_count
                .set(desc.bg_free_bits_count.get() - 1);
            let c = self.recs[ea].chain.as_mut().expect("chain");
            c.recs[k].0 -= 1;
            c.used += 1;
            return Ok((gblk + u64::from(bit), bit as u16, gblk));
        }
        Err(BuildError::NoSpace {
            what: "a directory index root".into(),
            clusters: 0,
        })
    }

    /// Index a block directory (`ocfs2_dx_dir_build`): a dx root with every
    /// entry's hash, trailers with the largest hole, the free block list.
    fn dx_build(&mut self, d: &DirBuf, first_blk: u64) -> Result<Dx> {
        let (blkno, bit, group) = self.dx_alloc()?;
        let bs = d.bs;
        let seed = self.dx_seed();
        let mut dx = Dx {
            blkno,
            bit,
            group,
            ..Default::default()
        };
        let nblocks = d.buf.len() / bs;
        let mut holes = Vec::new();
        for k in 0..nblocks {
            let blk = &d.buf[k * bs..k * bs + bs - 0x40];
            let mut off = 0;
            let mut largest = 0usize;
            while off < blk.len() {
                let h = DirEntryHeader::read_from_prefix(&blk[off..])
                    .expect("entry")
                    .0;
                let rec_len = usize::from(h.rec_len.get());
                let hole = if h.inode.get() == 0 {
                    rec_len
                } else {
                    rec_len - dir_rec_len(usize::from(h.name_len))
                };
                largest = largest.max(hole);
                if h.inode.get() != 0 {
                    let name = &blk[off + 12..off + 12 + usize::from(h.name_len)];
                    let (ma, mi) = dx_name_hash(seed, name);
                    dx.entries.push((ma, mi, first_blk + k as u64));
                }
                if rec_len == 0 {
                    break;
                }
                off += rec_len;
            }
            holes.push(if largest >= dir_rec_len(1) {
                largest as u16
            } else {
                0
            });
        }
        for (k, &hole) in holes.iter().enumerate() {
            let mut next = 0;
            if hole != 0 {
                next = dx.free_blk;
                dx.free_blk = first_blk + k as u64;
            }
            dx.trailers.push((hole, next));
        }
        Ok(dx)
    }

    fn dx_seed(&self) -> [u32; 4] {
        [
            self.id.dx_seed[0],
            self.id.dx_seed[1],
            self.id.dx_seed[2],
            uuid_hash(&self.id.uuid),
        ]
    }

    fn dx_root_block(&self, dx: &Dx, dir_blkno: u64) -> Vec<u8> {
        let root = ocfs2_format::dx::Root {
            blkno: dx.blkno,
            dir_blkno,
            generation: self.id.generation,
            slot: 0,
            bit: dx.bit,
            group: dx.group,
            free_blk: dx.free_blk,
        };
        let mut b = root.block(self.plan.block_size as usize, &dx.entries);
        if self.plan.meta_ecc() {
            blockcheck::update(&mut b, CheckAt::DxBlock);
        }
        b
    }
}

/// The system files, in mkfs.ocfs2's table order: (name pattern, per slot,
/// mode, flags).
const SYSTEM_FILES: &[(&str, bool, u16, u32)] = &[
    ("bad_blocks", false, 0o100644, 0),
    (
        "global_inode_alloc",
        false,
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
    ),
    ("slot_map", false, 0o100644, 0),
    ("heartbeat", false, 0o100644, inode_flags::HEARTBEAT),
    (
        "global_bitmap",
        false,
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
    ),
    ("aquota.user", false, 0o100644, inode_flags::QUOTA),
    ("aquota.group", false, 0o100644, inode_flags::QUOTA),
    ("orphan_dir", true, 0o040755, 0),
    (
        "extent_alloc",
        true,
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
    ),
    (
        "inode_alloc",
        true,
        0o100644,
        inode_flags::BITMAP | inode_flags::CHAIN,
    ),
    ("journal", true, 0o100644, inode_flags::JOURNAL),
    (
        "local_alloc",
        true,
        0o100644,
        inode_flags::BITMAP | inode_flags::LOCAL_ALLOC,
    ),
    ("truncate_log", true, 0o100644, inode_flags::DEALLOC),
    ("aquota.user", true, 0o100644, inode_flags::QUOTA),
    ("aquota.group", true, 0o100644, inode_flags::QUOTA),
];

/// Lay the volume out in memory.
pub fn layout(plan: &Plan, id: Identity) -> Result<Layout> {
    let p = plan.clone();
    let usrquota = p.features.ro_compat & ro_compat::USRQUOTA != 0;
    let grpquota = p.features.ro_compat & ro_compat::GRPQUOTA != 0;
    let bs = p.block_size as usize;
    let bpc = u64::from(p.bpc());
    let recs_per_inode = chain_recs_per_inode(bs);
    let fcg = 3u64.div_ceil(bpc);

    // The global bitmap's cluster groups (initialize_bitmap).
    let mut groups = Vec::with_capacity(p.cluster_groups as usize);
    for i in 0..u64::from(p.cluster_groups) {
        let bits = if i == u64::from(p.cluster_groups) - 1 {
            p.tail_group_bits
        } else {
            p.global_cpg
        };
        let start = i * u64::from(p.global_cpg);
        let blkno = if i == 0 { fcg * bpc } else { start * bpc };
        groups.push(CGroup {
            blkno,
            start,
            bits,
            free: bits - 1,
            bitmap: None,
        });
    }
    {
        let g0 = &mut groups[0];
        let bm = g0.materialize();
        for i in 1..=fcg as u32 {
            set_bit(bm, i);
        }
        g0.free -= fcg as u32;
    }
    let mut l = Layout {
        plan: p.clone(),
        id,
        groups,
        recs_per_inode,
        fcg,
        recs: Vec::new(),
        blocks: BTreeMap::new(),
        zero: Vec::new(),
        journal_zero: Vec::new(),
        backups: Vec::new(),
        lost_found_blkno: 0,
    };

    // 1. The system inode group (global_inode_alloc).
    let sys_blocks = 6 + 7 + 8 * u64::from(p.slots.max(32));
    let sys_clusters = (sys_blocks * bs as u64).div_ceil(u64::from(p.cluster_size)) as u32;
    let sys_start = l.alloc_phase_a(sys_clusters, "the system inode group")?;
    let sys_gblk = sys_start * bpc;
    let sys_bits = sys_clusters * bpc as u32;
    let mut sys_bitmap = vec![0u8; sys_bits.div_ceil(8) as usize];
    set_bit(&mut sys_bitmap, 0);
    let mut next_bit = 1u32;
    let mut alloc_inode = |sys_bitmap: &mut Vec<u8>| -> Result<(u64, u16)> {
        while next_bit < sys_bits && test_bit(sys_bitmap, next_bit) {
            next_bit += 1;
        }
        if next_bit >= sys_bits {
            return Err(BuildError::NoSpace {
                what: "a system inode".into(),
                clusters: 0,
            });
        }
        set_bit(sys_bitmap, next_bit);
        let b = next_bit;
        next_bit += 1;
        Ok((sys_gblk + u64::from(b), b as u16))
    };

    let inline = p.inline_data();
    let trailers = p.dir_trailers();
    let id_count = max_inline_data(bs);

    // 2. Root directory.
    let mut root = Rec {
        name: "/".into(),
        mode: 0o040755,
        flags: inode_flags::VALID | inode_flags::SYSTEM,
        ..Default::default()
    };
    if !inline {
        let c = l.alloc_phase_a(1, "the root directory")?;
        root.extents.push((0, 1, c * bpc));
        root.clusters = 1;
    }
    let (rb, rbit) = alloc_inode(&mut sys_bitmap)?;
    root.blkno = rb;
    root.suballoc_bit = rbit;
    let mut root_dir = DirBuf::new(bs, trailers && !inline);
    root_dir.add(".", rb, file_type::DIR);
    root_dir.add("..", rb, file_type::DIR);

    // 3. System directory.
    let sysdir_bytes = 52 * (7 + 8 * u64::from(p.slots));
    let sysdir_inline = inline && sysdir_bytes <= id_count as u64;
    let mut sysdir = Rec {
        name: "//".into(),
        mode: 0o040755,
        flags: inode_flags::VALID | inode_flags::SYSTEM,
        ..Default::default()
    };
    if !sysdir_inline {
        let per_block = (bs / 52) as u64;
        let blocks = (7 + 8 * u64::from(p.slots)).div_ceil(per_block);
        let c = ((blocks * bs as u64).div_ceil(u64::from(p.cluster_size))) as u32;
        let start = l.alloc_phase_a(c, "the system directory")?;
        sysdir.extents.push((0, c, start * bpc));
        sysdir.clusters = c;
    }
    let (sb_, sbit) = alloc_inode(&mut sys_bitmap)?;
    sysdir.blkno = sb_;
    sysdir.suballoc_bit = sbit;
    let mut sys_dir = DirBuf::new(bs, trailers && !sysdir_inline);
    sys_dir.add(".", sb_, file_type::DIR);
    sys_dir.add("..", sb_, file_type::DIR);

    // System files, in table order.
    let quota_skip =
        |name: &str| (name == "aquota.user" && !usrquota) || (name == "aquota.group" && !grpquota);
    for &(name, per_slot, mode, flags) in SYSTEM_FILES {
        if quota_skip(name) {
            continue;
        }
        let n = if per_slot { p.slots } else { 1 };
        for slot in 0..n {
            let full = if per_slot {
                format!("{name}:{slot:04}")
            } else {
                name.to_string()
            };
            let (b, bit) = alloc_inode(&mut sys_bitmap)?;
            let ftype = if mode & 0o170000 == 0o040000 {
                file_type::DIR
            } else {
                file_type::REG_FILE
            };
            sys_dir.add(&full, b, ftype);
            l.recs.push(Rec {
                name: full,
                blkno: b,
                suballoc_bit: bit,
                mode,
                flags: inode_flags::VALID | inode_flags::SYSTEM | flags,
                links: if ftype == file_type::DIR { 0 } else { 1 },
                ..Default::default()
            });
        }
    }
    let inodes_used = next_bit - 1;

    // 4. Heartbeat: 256 blocks.
    let hb_bytes = 256 * bs as u64;
    let hb_clusters = hb_bytes.div_ceil(u64::from(p.cluster_size)) as u32;
    let hb_start = l.alloc_phase_a(hb_clusters, "the heartbeat area")?;
    {
        let i = l.rec("heartbeat");
        let r = &mut l.recs[i];
        r.extents.push((0, hb_clusters, hb_start * bpc));
        r.clusters = hb_clusters;
        r.size = hb_bytes;
    }
    l.zero.push((
        hb_start * bpc * bs as u64,
        u64::from(hb_clusters) << p.cluster_bits,
    ));

    // 5. Orphan directories.
    let mut orphan_dirs = Vec::new();
    for slot in 0..p.slots {
        let i = l.rec(&format!("orphan_dir:{slot:04}"));
        if !inline {
            let c = l.alloc_phase_a(1, "an orphan directory")?;
            l.recs[i].extents.push((0, 1, c * bpc));
            l.recs[i].clusters = 1;
        }
        let mut d = DirBuf::new(bs, trailers && !inline);
        d.add(".", l.recs[i].blkno, file_type::DIR);
        d.add("..", sb_, file_type::DIR);
        orphan_dirs.push((i, d));
    }

    // Chain allocators start empty; the suballocators' cpg.
    for r in &mut l.recs {
        if r.flags & inode_flags::CHAIN != 0 {
            r.chain = Some(ChainInfo {
                cpg: p.suballoc_cpg() as u16,
                bpc: p.bpc() as u16,
                ..Default::default()
            });
        }
    }

    // ---- phase B ----
    // Backup superblocks: mark their clusters used.
    if p.backup_super {
        for i in 0..MAX_BACKUP_SUPERBLOCKS {
            let b = backup_super_blkno(p.block_size, i);
            if b >= p.volume_blocks {
                break;
            }
            let cluster = b / bpc;
            let gi = (cluster / u64::from(p.global_cpg)) as usize;
            let bit = (cluster - l.groups[gi].start) as u32;
            if l.groups[gi].is_set(bit) {
                return Err(BuildError::Unsupported(format!(
                    "backup superblock {i} at block {b} falls on a cluster already in use; use --no-backup-super"
                )));
            }
            l.groups[gi].take(bit, 1);
            l.zero
                .push((cluster * bpc * bs as u64, u64::from(p.cluster_size)));
            l.backups.push(b);
        }
    }

    // Journals.
    let jclusters = (p.journal_bytes >> p.cluster_bits) as u32;
    for slot in 0..p.slots {
        let i = l.rec(&format!("journal:{slot:04}"));
        l.extend(i, jclusters)?;
        l.recs[i].size = u64::from(jclusters) << p.cluster_bits;
        for &(_, c, b) in &l.recs[i].extents.clone() {
            l.journal_zero
                .push((slot, b * bs as u64, u64::from(c) << p.cluster_bits));
        }
        let first = l.recs[i].extents[0].2;
        let features = JournalFeatures {
            incompat: if p.journal_block64 {
                JBD2_FEATURE_INCOMPAT_64BIT
            } else {
                0
            },
            ..JournalFeatures::default()
        };
        let b = fresh_superblock(p.block_size, jclusters * p.bpc(), features, id.uuid);
        for (k, chunk) in b.chunks(bs).enumerate() {
            l.blocks.insert(first + k as u64, chunk.to_vec());
        }
    }

    // Extent allocators.
    let cpg = p.suballoc_cpg();
    if p.extent_alloc_clusters > 0 {
        for slot in 0..p.slots {
            let i = l.rec(&format!("extent_alloc:{slot:04}"));
            for _ in 0..p.extent_alloc_clusters.div_ceil(cpg) {
                l.add_suballoc_group(i, Some(slot))?;
            }
        }
    }

    // Slot map.
    {
        let i = l.rec("slot_map");
        let bytes = u64::from(p.slots) * if p.extended_slot_map() { 8 } else { 2 };
        let c = bytes.div_ceil(u64::from(p.cluster_size)) as u32;
        l.extend(i, c)?;
        let r = &mut l.recs[i];
        r.size = u64::from(r.clusters) << p.cluster_bits;
        let fill = if p.extended_slot_map() { 0u8 } else { 0xFF };
        for &(_, c, b) in &r.extents.clone() {
            for k in 0..u64::from(c) * bpc {
                l.blocks.insert(b + k, vec![fill; bs]);
            }
        }
    }

    // Quota files: each global file and its local files get their first
    // clusters; then the global files grow one cluster at a time as the
    // dquot for id 0 (the root) goes into their trees (docs §3.8.5).
    let quota_types: Vec<QuotaType> = [(usrquota, QuotaType::User), (grpquota, QuotaType::Group)]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| t)
        .collect();
    let galloc = quota::global_allocation(p.block_size, p.cluster_size);
    let lalloc = quota::local_allocation(p.block_size, p.cluster_size);
    for &t in &quota_types {
        let g = l.rec(t.global_name());
        l.extend(g, galloc.initial_clusters)?;
        for slot in 0..p.slots {
            let i = l.rec(&t.local_name(slot));
            l.extend(i, lalloc.i_clusters)?;
            l.recs[i].size = lalloc.i_size;
        }
    }
    let root_bytes = u64::from(root.clusters) << p.cluster_bits;
    for &t in &quota_types {
        let g = l.rec(t.global_name());
        for _ in galloc.initial_clusters..galloc.i_clusters {
            l.extend(g, 1)?;
        }
        l.recs[g].size = galloc.i_size;
        let blocks = quota::global_file(t, p.block_size, p.meta_ecc(), root_bytes);
        l.place_file_blocks(g, &blocks);
        let local = quota::local_file(t, p.block_size, p.meta_ecc());
        for slot in 0..p.slots {
            let i = l.rec(&t.local_name(slot));
            l.place_file_blocks(i, &local);
        }
    }

    // Index the root and orphan directories (indexed-dirs without inline-data).
    let index = p.indexed_dirs() && !inline;
    if index {
        root.dx = Some(l.dx_build(&root_dir, root.extents[0].2)?);
        for (i, d) in &orphan_dirs {
            let first = l.recs[*i].extents[0].2;
            let dx = l.dx_build(d, first)?;
            l.recs[*i].dx = Some(dx);
        }
    }

    // lost+found: its inode comes from inode_alloc:0000's first group.
    let ia = l.rec("inode_alloc:0000");
    let g = l.add_suballoc_group(ia, Some(0))?;
    let lf_blkno = g + 1;
    {
        let gd = l.blocks.get_mut(&g).expect("group just added");
        let (desc, bm) = GroupDesc::mut_from_prefix(gd).expect("block");
        set_bit(bm, 1);
        desc.bg_free_bits_count
            .set(desc.bg_free_bits_count.get() - 1);
        let ci = l.recs[ia].chain.as_mut().expect("chain");
        ci.recs[0].0 -= 1;
        ci.used += 1;
    }
    let mut lf = Rec {
        name: "lost+found".into(),
        blkno: lf_blkno,
        suballoc_bit: 1,
        suballoc_slot: 0,
        suballoc_loc: g,
        mode: 0o040755,
        flags: inode_flags::VALID,
        ..Default::default()
    };
    let mut lf_dir = DirBuf::new(bs, trailers && !inline);
    lf_dir.add(".", lf_blkno, file_type::DIR);
    lf_dir.add("..", rb, file_type::DIR);
    if inline {
        lf.inline = lf_dir.inline(id_count);
        lf.dyn_features = dyn_features::INLINE_DATA;
        lf.size = id_count as u64;
    } else {
        let (c, _) = l.new_clusters(1, 1, "lost+found")?;
        lf.extents.push((0, 1, c * bpc));
        lf.clusters = 1;
        // mkfs.ocfs2 1.8.7 sets the usable size, not the block size.
        lf.size = if trailers {
            bs as u64 - 0x40
        } else {
            bs as u64
        };
        let mut blk = lf_dir.buf.clone();
        if index {
            let dx = l.dx_build(&lf_dir, c * bpc)?;
            write_trailer(&mut blk, c * bpc, lf_blkno, dx.trailers[0]);
            lf.dx = Some(dx);
        } else if trailers {
            write_trailer(&mut blk, c * bpc, lf_blkno, (0, 0));
        }
        l.zero
            .push((c * bpc * bs as u64, u64::from(p.cluster_size)));
        l.blocks.insert(c * bpc, blk);
    }
    lf.links = lf_dir.links;
    if let Some(dx) = &lf.dx {
        lf.dyn_features |= dyn_features::INDEXED_DIR;
        l.blocks.insert(dx.blkno, l.dx_root_block(dx, lf_blkno));
    }
    root_dir.add("lost+found", lf_blkno, file_type::DIR);
    if let Some(dx) = root.dx.as_mut() {
        // A later link appends a dx entry; the trailer's hole is not refreshed.
        let (ma, mi) = dx_name_hash(l.dx_seed(), b"lost+found");
        dx.entries
            .push((ma, mi, root.extents[0].2 + (root_dir.last_off / bs) as u64));
    }
    l.lost_found_blkno = lf_blkno;

    // Directories into records.
    let finish_dir = |l: &mut Layout, r: &mut Rec, d: &DirBuf, inline_ok: bool| {
        r.links = d.links;
        if inline_ok {
            r.inline = d.inline(id_count);
            r.dyn_features |= dyn_features::INLINE_DATA;
            r.size = id_count as u64;
            return;
        }
        r.size = d.buf.len() as u64;
        let (_, c, start) = r.extents[0];
        l.zero
            .push((start * bs as u64, u64::from(c) << p.cluster_bits));
        for (k, chunk) in d.buf.chunks(bs).enumerate() {
            let mut blk = chunk.to_vec();
            if d.trailer {
                let t =
                    r.dx.as_ref()
                        .and_then(|x| x.trailers.get(k).copied())
                        .unwrap_or((0, 0));
                write_trailer(&mut blk, start + k as u64, r.blkno, t);
            }
            l.blocks.insert(start + k as u64, blk);
        }
        if let Some(dx) = &r.dx {
            r.dyn_features |= dyn_features::INDEXED_DIR;
            l.blocks.insert(dx.blkno, l.dx_root_block(dx, r.blkno));
        }
    };
    finish_dir(&mut l, &mut root, &root_dir, inline);
    finish_dir(&mut l, &mut sysdir, &sys_dir, sysdir_inline);
    for (i, d) in &orphan_dirs {
        let mut r = l.recs[*i].clone();
        finish_dir(&mut l, &mut r, d, inline);
        l.recs[*i] = r;
    }

    // The global inode allocator's group.
    let gia = l.rec("global_inode_alloc");
    {
        let mut gd = vec![0u8; bs];
        let (g, bm) = GroupDesc::mut_from_prefix(&mut gd).expect("block");
        g.bg_signature.copy_from_slice(b"GROUP01\0");
        g.bg_size.set((bs - 64) as u16);
        g.bg_bits.set(sys_bits as u16);
        g.bg_free_bits_count
            .set((sys_bits - 1 - inodes_used) as u16);
        g.bg_chain.set(0);
        g.bg_generation.set(id.generation);
        g.bg_parent_dinode.set(l.recs[gia].blkno);
        g.bg_blkno.set(sys_gblk);
        bm[..sys_bitmap.len()].copy_from_slice(&sys_bitmap);
        l.zero.push((
            sys_gblk * bs as u64,
            u64::from(sys_clusters) << p.cluster_bits,
        ));
        l.blocks.insert(sys_gblk, gd);
        let r = &mut l.recs[gia];
        r.clusters = sys_clusters;
        r.size = u64::from(sys_clusters) << p.cluster_bits;
        r.chain = Some(ChainInfo {
            cpg: sys_clusters as u16,
            bpc: bpc as u16,
            recs: vec![(sys_bits - 1 - inodes_used, sys_bits, sys_gblk)],
            used: 1 + inodes_used,
            total: sys_bits,
        });
    }
    l.recs.insert(0, sysdir);
    l.recs.insert(0, root);
    l.recs.push(lf);
    Ok(l)
}

use ocfs2_format::dx::{name_hash as dx_name_hash, uuid_hash};
use ocfs2_format::link::write_dir_trailer as write_trailer;

impl Layout {
    /// The superblock inode block (block 2, or a backup's copy).
    fn superblock(&self, blkno: u64) -> Vec<u8> {
        let p = &self.plan;
        let bs = p.block_size as usize;
        let mut b = vec![0u8; bs];
        {
            let (di, rest) = Dinode::mut_from_prefix(&mut b).expect("block");
            di.i_signature.copy_from_slice(b"OCFSV2\0\0");
            di.i_generation.set(self.id.generation);
            di.i_fs_generation.set(self.id.generation);
            di.i_suballoc_slot.set(0xFFFF);
            di.i_suballoc_bit.set(0xFFFF);
            di.i_clusters.set(p.clusters);
            di.i_flags
                .set(inode_flags::VALID | inode_flags::SYSTEM | inode_flags::SUPER_BLOCK);
            di.i_ctime.set(self.id.time);
            di.i_mtime.set(self.id.time);
            di.i_blkno.set(blkno);
            let (sb, _) = SuperBlock::mut_from_prefix(rest).expect("superblock fits");
            sb.s_major_rev_level.set(0);
            sb.s_minor_rev_level.set(90);
            sb.s_max_mnt_count.set(20);
            sb.s_lastcheck.set(self.id.time);
            sb.s_feature_compat.set(p.features.compat);
            sb.s_feature_incompat.set(p.features.incompat);
            sb.s_feature_ro_compat.set(p.features.ro_compat);
            sb.s_root_blkno.set(self.recs[0].blkno);
            sb.s_system_dir_blkno.set(self.recs[1].blkno);
            sb.s_blocksize_bits.set(p.block_bits);
            sb.s_clustersize_bits.set(p.cluster_bits);
            sb.s_max_slots.set(p.slots);
            if p.features.incompat & (incompat::XATTR | incompat::INDEXED_DIRS) != 0 {
                sb.s_uuid_hash.set(uuid_hash(&self.id.uuid));
            }
            sb.s_first_cluster_group.set(self.fcg * self.bpc());
            let n = p.label.len().min(63);
            sb.s_label[..n].copy_from_slice(&p.label[..n]);
            sb.s_uuid = self.id.uuid;
            if let (Some(stack), false) = (&p.cluster_stack, p.local) {
                let s = stack.as_bytes();
                let n = s.len().min(4);
                sb.s_cluster_info.ci_stack[..n].copy_from_slice(&s[..n]);
                if let Some(name) = &p.cluster_name {
                    let c = name.as_bytes();
                    let n = c.len().min(16);
                    sb.s_cluster_info.ci_cluster[..n].copy_from_slice(&c[..n]);
                }
                if p.global_heartbeat {
                    sb.s_cluster_info.ci_stackflags = 1;
                }
            }
            if p.features.has_incompat(incompat::XATTR) {
                sb.s_xattr_inline_size.set(256);
            }
            if p.features.has_incompat(incompat::MMP) {
                sb.s_mmp_update_interval.set(p.mmp_interval);
            }
            if p.indexed_dirs() {
                for (d, s) in sb.s_dx_seed.iter_mut().zip(self.id.dx_seed) {
                    d.set(s);
                }
            }
        }
        if p.meta_ecc() {
            blockcheck::update(&mut b, CheckAt::Inode);
        }
        b
    }

    /// An inode block for a record.
    fn inode_block(&self, r: &Rec) -> Vec<u8> {
        let p = &self.plan;
        let bs = p.block_size as usize;
        let mut b = vec![0u8; bs];
        {
            let (di, rest) = Dinode::mut_from_prefix(&mut b).expect("block");
            di.i_signature.copy_from_slice(b"INODE01\0");
            di.i_generation.set(self.id.generation);
            di.i_fs_generation.set(self.id.generation);
            di.i_suballoc_slot.set(if r.name == "lost+found" {
                r.suballoc_slot
            } else {
                0xFFFF
            });
            di.i_suballoc_bit.set(r.suballoc_bit);
            di.i_suballoc_loc.set(r.suballoc_loc);
            di.i_blkno.set(r.blkno);
            di.i_size.set(r.size);
            di.i_mode.set(r.mode);
            di.i_links_count.set(r.links);
            di.i_flags.set(r.flags);
            let t = if r.atime != 0 { r.atime } else { self.id.time };
            di.i_atime.set(t);
            di.i_ctime.set(t);
            di.i_mtime.set(t);
            di.i_clusters.set(r.clusters);
            di.i_dyn_features.set(r.dyn_features);
            if let Some(dx) = &r.dx {
                di.i_dx_root.set(dx.blkno);
            }
            if let Some(ci) = &r.chain {
                di.id1[..4].copy_from_slice(&ci.used.to_le_bytes());
                di.id1[4..].copy_from_slice(&ci.total.to_le_bytes());
            }
            if r.flags & inode_flags::LOCAL_ALLOC != 0 {
                let (la, _) = LocalAlloc::mut_from_prefix(rest).expect("fits");
                la.la_size.set(local_alloc_size(bs) as u16);
            } else if r.flags & inode_flags::DEALLOC != 0 {
                let (tl, _) = TruncateLog::mut_from_prefix(rest).expect("fits");
                tl.tl_count.set(((bs - DINODE_ID2 - 8) / 8) as u16);
            } else if let Some(ci) = &r.chain {
                let (cl, recs) = ChainList::mut_from_prefix(rest).expect("fits");
                cl.cl_cpg.set(ci.cpg);
                cl.cl_bpc.set(ci.bpc);
                cl.cl_count.set(chain_recs_per_inode(bs) as u16);
                cl.cl_next_free_rec.set(ci.recs.len() as u16);
                for (k, &(free, total, blkno)) in ci.recs.iter().enumerate() {
                    let (cr, _) = ChainRec::mut_from_prefix(&mut recs[k * 16..]).expect("fits");
                    cr.c_free.set(free);
                    cr.c_total.set(total);
                    cr.c_blkno.set(blkno);
                }
            } else if let Some(data) = &r.inline {
                rest[..2].copy_from_slice(&(data.len() as u16).to_le_bytes());
                rest[8..8 + data.len()].copy_from_slice(data);
            } else {
                let (el, recs) = ExtentList::mut_from_prefix(rest).expect("fits");
                el.l_count.set(extent_recs_per_inode(bs) as u16);
                el.l_next_free_rec.set(r.extents.len() as u16);
                for (k, &(cpos, clusters, blkno)) in r.extents.iter().enumerate() {
                    let (er, _) = ExtentRec::mut_from_prefix(&mut recs[k * 16..]).expect("fits");
                    er.e_cpos.set(cpos);
                    er.e_int_clusters.set(clusters & 0xFFFF);
                    er.e_blkno.set(blkno);
                }
            }
        }
        if p.meta_ecc() {
            blockcheck::update(&mut b, CheckAt::Inode);
        }
        b
    }

    /// The descriptor block of global cluster group `i`.
    fn cluster_group_desc(&self, i: usize, parent: u64) -> Vec<u8> {
        let bs = self.plan.block_size as usize;
        let g = &self.groups[i];
        let mut d = vec![0u8; bs];
        {
            let (h, bm) = GroupDesc::mut_from_prefix(&mut d).expect("block");
            h.bg_signature.copy_from_slice(b"GROUP01\0");
            h.bg_size.set((bs - 64) as u16);
            h.bg_bits.set(g.bits as u16);
            h.bg_free_bits_count.set(g.free as u16);
            h.bg_chain.set((i % self.recs_per_inode) as u16);
            h.bg_generation.set(self.id.generation);
            h.bg_next_group.set(
                self.groups
                    .get(i + self.recs_per_inode)
                    .map_or(0, |n| n.blkno),
            );
            h.bg_parent_dinode.set(parent);
            h.bg_blkno.set(g.blkno);
            match &g.bitmap {
                Some(b) => bm[..b.len()].copy_from_slice(b),
                None => set_bit(bm, 0),
            }
        }
        if self.plan.meta_ecc() {
            blockcheck::update(&mut d, CheckAt::GroupDesc);
        }
        d
    }

    /// The global bitmap inode: chain records summed over the groups.
    fn global_bitmap_inode(&self) -> Vec<u8> {
        let p = &self.plan;
        let bs = p.block_size as usize;
        let gb = &self.recs[self.rec("global_bitmap")];
        let chains = self.groups.len().min(self.recs_per_inode);
        let mut recs = vec![(0u32, 0u32, 0u64); chains];
        let mut used = 0u32;
        for (i, g) in self.groups.iter().enumerate() {
            let c = i % self.recs_per_inode;
            if i < chains {
                recs[c].2 = g.blkno;
            }
            recs[c].0 += g.free;
            recs[c].1 += g.bits;
            used += g.bits - g.free;
        }
        let mut r = gb.clone();
        r.size = p.volume_bytes;
        r.clusters = p.clusters;
        r.chain = Some(ChainInfo {
            cpg: global_cpg_field(bs),
            bpc: 1,
            recs,
            used,
            total: p.clusters,
        });
        self.inode_block(&r)
    }

    /// Bytes of metadata and zero ranges this layout writes (for -n and the summary).
    pub fn backups(&self) -> &[u64] {
        &self.backups
    }

    /// Write the volume: zero ranges, metadata, backups, and the primary
    /// superblock last, so that a crash before the end leaves no volume.
    pub fn write(&self, dev: &dyn BlockIo, progress: &mut dyn Progress) -> Result<()> {
        self.write_body(dev, progress)?;
        self.write_primary(dev)
    }

    /// Byte offset of the primary superblock.
    pub fn primary_offset(&self) -> u64 {
        2 * u64::from(self.bs())
    }

    /// The primary superblock, written last: until then nothing on the
    /// device looks like the new volume.
    pub fn write_primary(&self, dev: &dyn BlockIo) -> Result<()> {
        dev.write_at(self.primary_offset(), &self.superblock(2))?;
        Ok(dev.flush()?)
    }

    /// Byte offset of slot 0's entry in the new extended slot map (`None`
    /// with the old slot map, which holds no MMP value).
    pub fn slot0_offset(&self) -> Option<u64> {
        if !self.plan.extended_slot_map() {
            return None;
        }
        let r = &self.recs[self.rec("slot_map")];
        let &(_, _, blkno) = r.extents.iter().find(|&&(cpos, _, _)| cpos == 0)?;
        Some(blkno * u64::from(self.bs()))
    }

    /// Start the new slot map with `raw`/`node` in slot 0 (a tool's marker,
    /// so that the new volume is held from its first moment).
    pub fn set_slot0(&mut self, raw: u32, node: u32) -> bool {
        let Some(off) = self.slot0_offset() else {
            return false;
        };
        let blkno = off / u64::from(self.bs());
        match self.blocks.get_mut(&blkno) {
            Some(b) if b.len() >= 8 => {
                b[..4].copy_from_slice(&raw.to_le_bytes());
                b[4..8].copy_from_slice(&node.to_le_bytes());
                true
            }
            _ => false,
        }
    }

    /// Every block but the primary superblock.
    pub fn write_body(&self, dev: &dyn BlockIo, progress: &mut dyn Progress) -> Result<()> {
        let p = &self.plan;
        let bs = u64::from(p.block_size);
        // Clear both ends (stale superblocks of any block size live in the first MiB).
        let mib = 1u64 << 20;
        dev.zero_range(0, mib.min(p.volume_bytes))?;
        dev.zero_range(p.volume_bytes.saturating_sub(mib), mib.min(p.volume_bytes))?;
        // Stale backup superblocks of an earlier volume (same byte offsets
        // at every block size) go first too: until our primary is written
        // last, nothing on the device looks like a volume.
        for i in 0..MAX_BACKUP_SUPERBLOCKS {
            let off = BACKUP_SB_START << (2 * i);
            if off + u64::from(MAX_BLOCKSIZE) <= p.volume_bytes {
                dev.zero_range(off, u64::from(MAX_BLOCKSIZE))?;
            }
        }
        dev.flush()?;
        progress.step("Writing system files");
        for &(off, len) in &self.zero {
            dev.zero_range(off, len)?;
        }
        progress.step("Formatting Journals");
        for &(slot, off, len) in &self.journal_zero {
            dev.zero_range(off, len)?;
            progress.journal(slot + 1, p.slots);
        }
        // Cluster group descriptors, one at a time: each is the first block
        // of a cluster whose rest reads as zeros.
        let gb_blkno = self.recs[self.rec("global_bitmap")].blkno;
        for i in 0..self.groups.len() {
            let blkno = self.groups[i].blkno;
            dev.zero_range(
                blkno * bs,
                u64::from(p.cluster_size).min(p.volume_bytes - blkno * bs),
            )?;
            dev.write_at(blkno * bs, &self.cluster_group_desc(i, gb_blkno))?;
        }
        for (&blkno, data) in &self.blocks {
            let mut d = data.clone();
            if p.meta_ecc() && d.starts_with(b"GROUP01") {
                blockcheck::update(&mut d, CheckAt::GroupDesc);
            } else if p.meta_ecc() && d.len() >= 0x40 && d[d.len() - 0x30..].starts_with(b"DIRTRL1")
            {
                blockcheck::update(&mut d, CheckAt::DirTrailer);
            }
            dev.write_at(blkno * bs, &d)?;
        }
        for r in &self.recs {
            if r.name == "global_bitmap" {
                dev.write_at(r.blkno * bs, &self.global_bitmap_inode())?;
            } else {
                dev.write_at(r.blkno * bs, &self.inode_block(r))?;
            }
        }
        progress.step("Writing superblock");
        // Blocks 0 and 1: the leading space mkfs.ocfs2 writes.
        let mut lead = vec![0x02u8; 2 * bs as usize];
        for off in [0x008usize, 0x088, 0x230, 0x284] {
            let s = b"this is an ocfs2 volume\0";
            lead[off..off + s.len()].copy_from_slice(s);
        }
        dev.write_at(0, &lead)?;
        dev.flush()?;
        for &b in &self.backups {
            dev.write_at(b * bs, &self.superblock(b))?;
        }
        Ok(dev.flush()?)
    }
}

/// `cl_cpg` of the global bitmap: the full group size for the block size.
fn global_cpg_field(bs: usize) -> u16 {
    (8 * (bs - 64)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_hash_matches_debugfs() {
        // debugfs.ocfs2: UUID 92638021BCA14602A2FA0BD3CDF048FF, Hash: 3621586707
        let u = [
            0x92, 0x63, 0x80, 0x21, 0xBC, 0xA1, 0x46, 0x02, 0xA2, 0xFA, 0x0B, 0xD3, 0xCD, 0xF0,
            0x48, 0xFF,
        ];
        assert_eq!(uuid_hash(&u), 3_621_586_707);
    }

    #[test]
    fn dx_hash_matches_mkfs_ocfs2() {
        // A volume made by mkfs.ocfs2 1.8.7 (noinline-data): DX Seeds
        // 0x2317574d 0x05ea2d9e 0x434f7c6e, Hash 0x700cd64c; its root's dx
        // entry for "lost+found" is (0x300c7043, 0x437fab51).
        let seed = [0x2317_574d, 0x05ea_2d9e, 0x434f_7c6e, 0x700c_d64c];
        assert_eq!(
            dx_name_hash(seed, b"lost+found"),
            (0x300c_7043, 0x437f_ab51)
        );
        assert_eq!(dx_name_hash(seed, b"."), (0, 0));
        assert_eq!(dx_name_hash(seed, b".."), (0, 0));
    }

    #[test]
    fn dir_packing_like_mkfs() {
        let mut d = DirBuf::new(512, true);
        d.add(".", 5, file_type::DIR);
        d.add("..", 5, file_type::DIR);
        d.add("lost+found", 9, file_type::DIR);
        let h0 = d.hdr(0);
        assert_eq!(h0.rec_len.get(), 12 + 4);
        assert_eq!(d.hdr(16).rec_len.get(), 16);
        assert_eq!(usize::from(d.hdr(32).rec_len.get()), 512 - 64 - 32);
        assert_eq!(d.links, 3);
    }
}
