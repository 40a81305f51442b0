//! Editing a volume the way the kernel would leave it, for tests that need
//! files, directories and damage the tools themselves never make: inodes
//! from `inode_alloc:0000`, clusters from the global bitmap, directory
//! entries, every count kept in step, block checks redone under metaecc.

use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::ondisk::*;
use ocfs2_format::zerocopy::FromBytes;
use ocfs2_format::{FileDevice, OpenMode, Volume};
use std::path::Path;

// ------------------------------------------------------------------ volume editing

pub fn open_rw(p: &Path) -> Volume {
    let dev = FileDevice::open(
        p,
        OpenMode {
            write: true,
            exclusive: false,
        },
    )
    .unwrap_or_else(|e| panic!("open {} read-write: {e}", p.display()));
    Volume::open(Box::new(dev)).unwrap_or_else(|e| panic!("open volume {}: {e}", p.display()))
}

pub fn open_ro(p: &Path) -> Volume {
    let dev = FileDevice::open(
        p,
        OpenMode {
            write: false,
            exclusive: false,
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    Volume::open(Box::new(dev)).unwrap_or_else(|e| panic!("open volume {}: {e}", p.display()))
}

pub fn slot0(p: &Path) -> u32 {
    open_ro(p).read_slot_map().expect("read slot map").slots[0].raw
}

pub fn dino(b: &mut [u8]) -> &mut Dinode {
    Dinode::mut_from_prefix(b).expect("block >= 0xC0 bytes").0
}
pub fn sbm(b: &mut [u8]) -> &mut SuperBlock {
    SuperBlock::mut_from_prefix(&mut b[DINODE_ID2..])
        .expect("superblock fits")
        .0
}
pub fn gdm(b: &mut [u8]) -> &mut GroupDesc {
    GroupDesc::mut_from_prefix(b)
        .expect("block >= 0x40 bytes")
        .0
}
pub fn get16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
pub fn get32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
pub fn get64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
pub fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

// Offsets inside an inode block.
/// `id1.bitmap1.i_used` / `id1.journal1.ij_flags`.
pub const I_USED: usize = 0xB8;
/// `id1.bitmap1.i_total`.
pub const I_TOTAL: usize = 0xBC;
/// `id2.i_chain` / `id2.i_list` headers: count at +2 (extent) or +4 (chain).
pub const CL_COUNT: usize = DINODE_ID2 + 4;
pub const CL_NEXT_FREE: usize = DINODE_ID2 + 6;
pub const L_DEPTH: usize = DINODE_ID2;
pub const L_COUNT: usize = DINODE_ID2 + 2;
pub const L_NEXT_FREE: usize = DINODE_ID2 + 4;
/// Chain record `k` (c_free +0, c_total +4, c_blkno +8).
pub const fn chain_rec(k: usize) -> usize {
    DINODE_ID2 + 16 + 16 * k
}
/// Extent record `k` in an inode (e_cpos +0, e_leaf_clusters +4, e_blkno +8).
pub const fn ext_rec(k: usize) -> usize {
    DINODE_ID2 + 16 + 16 * k
}
/// Group descriptor bitmap.
pub const GD_BITMAP: usize = 0x40;
/// Extent block: list header at 0x30, records at 0x40.
pub const EB_LIST: usize = 0x30;

/// Read a block, change it, recompute its block check under metaecc, write it.
pub fn edit(v: &Volume, blkno: u64, at: CheckAt, f: impl FnOnce(&mut [u8])) {
    let mut b = v.read_block(blkno).expect("read block");
    f(&mut b);
    if v.meta_ecc() {
        blockcheck::update(&mut b, at);
    }
    v.write_block(blkno, &b).expect("write block");
}

/// Change a block and leave its block check alone.
pub fn edit_raw(v: &Volume, blkno: u64, f: impl FnOnce(&mut [u8])) {
    let mut b = v.read_block(blkno).expect("read block");
    f(&mut b);
    v.write_block(blkno, &b).expect("write block");
}

pub fn edit_inode(v: &Volume, blkno: u64, f: impl FnOnce(&mut [u8])) {
    edit(v, blkno, CheckAt::Inode, f)
}

pub fn sys(v: &Volume, name: &str) -> u64 {
    v.system_inode(name)
        .unwrap_or_else(|e| panic!("system file {name}: {e}"))
}

pub fn path(v: &Volume, p: &str) -> u64 {
    v.resolve_path(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn bpc(v: &Volume) -> u64 {
    u64::from(v.cluster_size() / v.block_size())
}

/// First cluster covered by a global bitmap group.
pub fn first_cluster(v: &Volume, g: u64) -> u64 {
    if g == v.sb().s_first_cluster_group.get() {
        0
    } else {
        g / bpc(v)
    }
}

pub fn groups(v: &Volume, alloc: &str) -> Vec<ocfs2_format::fs::Group> {
    let ino = v.read_inode(sys(v, alloc)).expect("allocator inode");
    v.chain_groups(&ino).expect("chain groups")
}

pub fn bit(b: &[u8], i: u32) -> bool {
    b[GD_BITMAP + (i / 8) as usize] & (1 << (i % 8)) != 0
}

/// Take `n` free bits in a row from a chain allocator, keeping every count
/// (group, chain record, `i_used`) in step. Returns (group, first bit).
pub fn take_bits(v: &Volume, alloc: &str, n: u32) -> (u64, u32) {
    let ab = sys(v, alloc);
    for g in groups(v, alloc) {
        let buf = v.read_block(g.blkno).expect("group");
        let bits = u32::from(g.desc.bg_bits.get());
        // Bit 0 is the group's own descriptor (or cluster 0).
        let mut start = 1;
        while start + n <= bits {
            if let Some(k) = (start..start + n).find(|&i| bit(&buf, i)) {
                start = k + 1;
                continue;
            }
            set_bits(v, ab, g.blkno, g.chain, start, n, true);
            return (g.blkno, start);
        }
    }
    panic!("{alloc}: no {n} free bits in a row");
}

/// Give an empty suballocator (mkfs leaves `extent_alloc:0000` without
/// groups on small volumes) one group shaped like the first group of
/// `inode_alloc:0000`, at the head of chain 0, as the kernel would.
pub fn grow_suballoc(v: &Volume, alloc: &str) {
    let ab = sys(v, alloc);
    let model = &groups(v, "inode_alloc:0000")[0];
    let abuf = v.read_block(ab).unwrap();
    let cl_bpc = u32::from(get16(&abuf, DINODE_ID2 + 2));
    let bits = u32::from(model.desc.bg_bits.get());
    let cpg = bits / cl_bpc;
    let (gg, first) = take_bits(v, "global_bitmap", cpg);
    let gb = (first_cluster(v, gg) + u64::from(first)) * bpc(v);
    let head = if get16(&abuf, CL_NEXT_FREE) == 0 {
        0
    } else {
        get64(&abuf, chain_rec(0) + 8)
    };
    let gen = v.super_inode().di().i_fs_generation.get();
    let size = model.desc.bg_size.get();
    edit(v, gb, CheckAt::GroupDesc, |b| {
        b.fill(0);
        b[..7].copy_from_slice(b"GROUP01");
        let gd = gdm(b);
        gd.bg_size.set(size);
        gd.bg_bits.set(bits as u16);
        gd.bg_free_bits_count.set(bits as u16 - 1);
        gd.bg_chain.set(0);
        gd.bg_generation.set(gen);
        gd.bg_next_group.set(head);
        gd.bg_parent_dinode.set(ab);
        gd.bg_blkno.set(gb);
        b[GD_BITMAP] = 1;
    });
    let cs = u64::from(v.cluster_size());
    edit_inode(v, ab, |b| {
        put16(b, CL_NEXT_FREE, get16(b, CL_NEXT_FREE).max(1));
        let o = chain_rec(0);
        put32(b, o, get32(b, o) + bits - 1);
        put32(b, o + 4, get32(b, o + 4) + bits);
        put64(b, o + 8, gb);
        put32(b, I_TOTAL, get32(b, I_TOTAL) + bits);
        put32(b, I_USED, get32(b, I_USED) + 1);
        let d = dino(b);
        d.i_clusters.set(d.i_clusters.get() + cpg);
        d.i_size.set(d.i_size.get() + u64::from(cpg) * cs);
    });
}

/// Set or clear bits of a group, with every count kept in step.
pub fn set_bits(v: &Volume, alloc: u64, g: u64, chain: usize, first: u32, n: u32, on: bool) {
    edit(v, g, CheckAt::GroupDesc, |b| {
        for i in first..first + n {
            let (byte, m) = (GD_BITMAP + (i / 8) as usize, 1u8 << (i % 8));
            assert_eq!(b[byte] & m != 0, !on, "bit {i} of group {g} already {on}");
            b[byte] ^= m;
        }
        let gd = gdm(b);
        let free = gd.bg_free_bits_count.get();
        gd.bg_free_bits_count
            .set(if on { free - n as u16 } else { free + n as u16 });
    });
    edit_inode(v, alloc, |b| {
        let o = chain_rec(chain);
        let (free, used) = (get32(b, o), get32(b, I_USED));
        if on {
            put32(b, o, free - n);
            put32(b, I_USED, used + n);
        } else {
            put32(b, o, free + n);
            put32(b, I_USED, used - n);
        }
    });
}

/// Where a global bitmap bit lives: (group, chain, bit) of cluster `c`.
pub fn cluster_bit(v: &Volume, c: u64) -> (u64, usize, u32) {
    for g in groups(v, "global_bitmap") {
        let start = first_cluster(v, g.blkno);
        if c >= start && c < start + u64::from(g.desc.bg_bits.get()) {
            return (g.blkno, g.chain, (c - start) as u32);
        }
    }
    panic!("cluster {c} is in no group");
}

// ------------------------------------------------------------------ directories

/// One directory entry, where it lives.
#[derive(Debug, Clone)]
pub struct Ent {
    pub blk: u64,
    pub off: usize,
    pub at: CheckAt,
    pub inode: u64,
    pub rec_len: usize,
    pub name_len: usize,
    pub name: Vec<u8>,
}

/// (block, start, end, check) of each stretch of entries of a directory.
pub fn dir_regions(v: &Volume, dir: u64) -> Vec<(u64, usize, usize, CheckAt)> {
    let ino = v.read_inode(dir).expect("directory inode");
    assert!(ino.is_dir(), "{dir} is not a directory");
    if ino.is_inline() {
        let start = DINODE_ID2 + 8;
        return vec![(dir, start, start + ino.size() as usize, CheckAt::Inode)];
    }
    let bs = v.block_size() as u64;
    let ext = v.extents(&ino).expect("directory extents");
    let limit = if v.dir_trailers() { bs - 0x40 } else { bs } as usize;
    (0..ino.size() / bs)
        .map(|l| {
            let p = v.map_block(&ext, l).expect("directory block mapped");
            (p, 0, limit, CheckAt::DirTrailer)
        })
        .collect()
}

pub fn entries(v: &Volume, dir: u64) -> Vec<Ent> {
    let mut out = Vec::new();
    for (blk, start, end, at) in dir_regions(v, dir) {
        let b = v.read_block(blk).expect("directory block");
        let mut off = start;
        while off < end {
            let h = DirEntryHeader::read_from_prefix(&b[off..])
                .expect("entry")
                .0;
            let name_len = usize::from(h.name_len);
            out.push(Ent {
                blk,
                off,
                at,
                inode: h.inode.get(),
                rec_len: usize::from(h.rec_len.get()),
                name_len,
                name: b[off + DIR_MEMBER_LEN..off + DIR_MEMBER_LEN + name_len].to_vec(),
            });
            assert!(h.rec_len.get() > 0, "zero rec_len in {dir}");
            off += usize::from(h.rec_len.get());
        }
    }
    out
}

pub fn entry(v: &Volume, dir: u64, name: &str) -> Ent {
    entries(v, dir)
        .into_iter()
        .find(|e| e.inode != 0 && e.name == name.as_bytes())
        .unwrap_or_else(|| panic!("no entry {name:?} in directory {dir}"))
}

/// Change the bytes of an entry (`b` starts at the entry).
pub fn edit_entry(v: &Volume, e: &Ent, f: impl FnOnce(&mut [u8])) {
    edit(v, e.blk, e.at, |b| f(&mut b[e.off..]))
}

pub fn write_entry(b: &mut [u8], inode: u64, rec_len: usize, name: &[u8], ft: u8) {
    put64(b, 0, inode);
    put16(b, 8, rec_len as u16);
    b[10] = name.len() as u8;
    b[11] = ft;
    b[DIR_MEMBER_LEN..DIR_MEMBER_LEN + name.len()].copy_from_slice(name);
}

/// Add an entry where one fits (a free entry, or the slack of a live one).
pub fn add_entry(v: &Volume, dir: u64, name: &[u8], inode: u64, ft: u8) {
    let need = dir_rec_len(name.len());
    for e in entries(v, dir) {
        if e.inode == 0 && e.rec_len >= need {
            edit_entry(v, &e, |b| write_entry(b, inode, e.rec_len, name, ft));
            return;
        }
        let used = dir_rec_len(e.name_len);
        if e.inode != 0 && e.rec_len - used >= need {
            edit_entry(v, &e, |b| {
                put16(b, 8, used as u16);
                write_entry(&mut b[used..], inode, e.rec_len - used, name, ft);
            });
            return;
        }
    }
    panic!("no room for {name:?} in directory {dir}");
}

// ------------------------------------------------------------------ files

pub enum Body {
    /// `clusters` clusters in one extent, `size` bytes.
    Extents(u32, u64),
    /// A depth-1 tree: one extent block holding one extent of `clusters`.
    Deep(u32),
    Inline(Vec<u8>),
    /// An inline directory under `parent`.
    DirInline(u64),
    /// A one-block directory under `parent`.
    DirBlock(u64),
    /// A fast symlink: the target in the inode.
    FastLink(Vec<u8>),
    /// A slow symlink: the target in one cluster.
    SlowLink(Vec<u8>),
}

/// Write a new inode into a free bit of `inode_alloc:0000`, its clusters
/// from the global bitmap, as the kernel would.
pub fn new_inode(v: &Volume, mode: u16, links: u16, body: Body) -> u64 {
    let bs = v.block_size() as usize;
    let bpc = bpc(v);
    let cs = u64::from(v.cluster_size());
    let (g, bitno) = take_bits(v, "inode_alloc:0000", 1);
    let blk = g + u64::from(bitno);
    let tmpl = v
        .read_inode(path(v, "/lost+found"))
        .expect("lost+found")
        .buf;
    let mut b = tmpl.clone();
    b[DINODE_ID2..].fill(0);
    let discontig = dino(&mut b).i_suballoc_loc.get() != 0;
    {
        let d = dino(&mut b);
        d.i_blkno.set(blk);
        d.i_suballoc_slot.set(0);
        d.i_suballoc_bit.set(bitno as u16);
        d.i_suballoc_loc.set(if discontig { g } else { 0 });
        d.i_mode.set(mode);
        d.i_links_count.set(links);
        d.i_links_count_hi.set(0);
        d.i_flags.set(inode_flags::VALID);
        d.i_dyn_features.set(0);
        d.i_xattr_inline_size.set(0);
        d.i_xattr_loc.set(0);
        d.i_dx_root.set(0);
        d.i_refcount_loc.set(0);
        d.i_last_eb_blk.set(0);
        d.i_dtime.set(0);
        d.id1 = [0; 8];
        d.i_clusters.set(0);
        d.i_size.set(0);
    }
    let gen = v.super_inode().di().i_fs_generation.get();
    let extent_list = |b: &mut [u8], depth: u16, blkno: u64, clusters: u32| {
        put16(b, L_DEPTH, depth);
        put16(b, L_COUNT, extent_recs_per_inode(bs) as u16);
        put16(b, L_NEXT_FREE, 1);
        put32(b, ext_rec(0), 0);
        put32(b, ext_rec(0) + 4, clusters);
        put64(b, ext_rec(0) + 8, blkno);
    };
    let data_clusters = |n: u32| -> u64 {
        let (gg, bitno) = take_bits(v, "global_bitmap", n);
        (first_cluster(v, gg) + u64::from(bitno)) * bpc
    };
    match body {
        Body::Extents(n, size) => {
            let p = data_clusters(n);
            extent_list(&mut b, 0, p, n);
            dino(&mut b).i_clusters.set(n);
            dino(&mut b).i_size.set(size);
        }
        Body::Deep(n) => {
            let p = data_clusters(n);
            if groups(v, "extent_alloc:0000").is_empty() {
                grow_suballoc(v, "extent_alloc:0000");
            }
            let (eg, ebit) = take_bits(v, "extent_alloc:0000", 1);
            let eb = eg + u64::from(ebit);
            edit(v, eb, CheckAt::ExtentBlock, |e| {
                e.fill(0);
                e[..7].copy_from_slice(b"EXBLK01");
                put16(e, 0x10, 0);
                put16(e, 0x12, ebit as u16);
                put32(e, 0x14, gen);
                put64(e, 0x18, eb);
                put64(e, 0x20, if discontig { eg } else { 0 });
                put16(e, EB_LIST, 0);
                put16(e, EB_LIST + 2, extent_recs_per_eb(bs) as u16);
                put16(e, EB_LIST + 4, 1);
                put32(e, 0x40, 0);
                put32(e, 0x44, n);
                put64(e, 0x48, p);
            });
            extent_list(&mut b, 1, eb, n);
            let d = dino(&mut b);
            d.i_last_eb_blk.set(eb);
            d.i_clusters.set(n);
            d.i_size.set(u64::from(n) * cs);
        }
        Body::Inline(data) => {
            dino(&mut b)
                .i_dyn_features
                .set(ocfs2_format::ondisk::dyn_features::INLINE_DATA);
            put16(&mut b, DINODE_ID2, max_inline_data(bs) as u16);
            b[DINODE_ID2 + 8..DINODE_ID2 + 8 + data.len()].copy_from_slice(&data);
            dino(&mut b).i_size.set(data.len() as u64);
        }
        Body::DirInline(parent) => {
            let count = max_inline_data(bs);
            dino(&mut b)
                .i_dyn_features
                .set(ocfs2_format::ondisk::dyn_features::INLINE_DATA);
            put16(&mut b, DINODE_ID2, count as u16);
            let d = DINODE_ID2 + 8;
            write_entry(&mut b[d..], blk, 16, b".", file_type::DIR);
            write_entry(&mut b[d + 16..], parent, count - 16, b"..", file_type::DIR);
            dino(&mut b).i_size.set(count as u64);
        }
        Body::DirBlock(parent) => {
            assert!(
                !v.dir_trailers(),
                "block directories with trailers not built here"
            );
            let p = data_clusters(1);
            edit_raw(v, p, |d| {
                d.fill(0);
                write_entry(d, blk, 16, b".", file_type::DIR);
                write_entry(&mut d[16..], parent, bs - 16, b"..", file_type::DIR);
            });
            extent_list(&mut b, 0, p, 1);
            dino(&mut b).i_clusters.set(1);
            dino(&mut b).i_size.set(bs as u64);
        }
        Body::FastLink(target) => {
            b[DINODE_ID2..DINODE_ID2 + target.len()].copy_from_slice(&target);
            dino(&mut b).i_size.set(target.len() as u64);
        }
        Body::SlowLink(target) => {
            let p = data_clusters(1);
            edit_raw(v, p, |d| {
                d.fill(0);
                d[..target.len()].copy_from_slice(&target);
            });
            extent_list(&mut b, 0, p, 1);
            dino(&mut b).i_clusters.set(1);
            dino(&mut b).i_size.set(target.len() as u64);
        }
    }
    if v.meta_ecc() {
        blockcheck::update(&mut b, CheckAt::Inode);
    }
    v.write_block(blk, &b).expect("write inode");
    blk
}

/// Fill a fresh volume: /f1 (2 clusters), /f2 (1 cluster), /f3 (depth-1
/// tree, 3 clusters), /inl (inline, when the volume has inline-data), /d1,
/// /ln1 (a fast symlink) and /ln2 (a slow one).
pub fn populate(img: &Path) {
    let v = open_rw(img);
    let root = v.root_blkno();
    let cs = u64::from(v.cluster_size());
    let inline = v
        .features()
        .has_incompat(ocfs2_format::features::incompat::INLINE_DATA);
    let f1 = new_inode(&v, 0o100644, 1, Body::Extents(2, 2 * cs - 100));
    add_entry(&v, root, b"f1", f1, file_type::REG_FILE);
    let f2 = new_inode(&v, 0o100644, 1, Body::Extents(1, 10));
    add_entry(&v, root, b"f2", f2, file_type::REG_FILE);
    let f3 = new_inode(&v, 0o100600, 1, Body::Deep(3));
    add_entry(&v, root, b"f3", f3, file_type::REG_FILE);
    if inline {
        let inl = new_inode(&v, 0o100644, 1, Body::Inline(b"inline data\n".repeat(8)));
        add_entry(&v, root, b"inl", inl, file_type::REG_FILE);
    }
    let body = if inline {
        Body::DirInline(root)
    } else {
        Body::DirBlock(root)
    };
    let d1 = new_inode(&v, 0o040755, 2, body);
    add_entry(&v, root, b"d1", d1, file_type::DIR);
    let ln1 = new_inode(&v, 0o120777, 1, Body::FastLink(b"f1".to_vec()));
    add_entry(&v, root, b"ln1", ln1, file_type::SYMLINK);
    // Longer than a fast symlink holds (block size - 0xC0 bytes).
    let long = b"d1/".repeat((v.block_size() as usize - 0xC0) / 3 + 1);
    let ln2 = new_inode(&v, 0o120777, 1, Body::SlowLink(long));
    add_entry(&v, root, b"ln2", ln2, file_type::SYMLINK);
    edit_inode(&v, root, |b| {
        let d = dino(b);
        d.i_links_count.set(d.i_links_count.get() + 1);
    });
}
