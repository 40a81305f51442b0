//! Requests about blocks and extents: `icheck BLOCK...` (which inode owns
//! each block) and `frag PATH` (how many extents a file's clusters take).
//! Both only read. `icheck` answers as debugfs.ocfs2's does wherever that
//! one knows, and names more owners where it says "Unknown": index roots and
//! leaves, xattr and refcount blocks, backup superblocks, the local alloc's
//! window, free bits of suballocator groups.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use ocfs2_format::ondisk::{dyn_features, inode_flags, LocalAlloc};
use ocfs2_format::{Inode, Volume};
use ocfs2_toolkit::exit;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use zerocopy::FromBytes;

/// The superblock's block (`OCFS2_SUPER_BLOCK_BLKNO`).
const SUPER_BLKNO: u64 = 2;
/// Offset of a group descriptor's bitmap.
const BG_BITMAP: usize = 0x40;

/// What `icheck` found for one block.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BlockOwner {
    pub block: u64,
    /// `used` (an inode owns it), `unused` (its allocation bit is clear) or
    /// `unknown` (allocated, and nothing that was read names it).
    pub state: &'static str,
    /// The owning inode (for an unused block in a suballocator group: the
    /// allocator).
    pub inode: Option<u64>,
    /// For file data: the block's logical block in the file.
    pub offset: Option<u64>,
    /// What the block is to its owner.
    pub what: &'static str,
}

/// A suballocator group seen during the scan: its allocator, blocks, bitmap.
struct SubGroup {
    alloc: u64,
    blocks: Vec<u64>,
    bitmap: Vec<u8>,
}

/// The icheck state of the blocks asked about.
struct Search {
    want: Vec<BlockOwner>,
    left: usize,
}

impl Search {
    /// Claim every still-unknown block in `first..first + len` for `inode`;
    /// `offset_of` gives a data block's logical block.
    fn claim(
        &mut self,
        first: u64,
        len: u64,
        inode: u64,
        what: &'static str,
        offset_of: Option<u64>,
    ) {
        for w in self.want.iter_mut().filter(|w| w.state == "unknown") {
            if w.block >= first && w.block - first < len {
                w.state = "used";
                w.inode = Some(inode);
                w.offset = offset_of.map(|o| o + (w.block - first));
                w.what = what;
                self.left -= 1;
            }
        }
    }

    fn done(&self) -> bool {
        self.left == 0
    }
}

/// `icheck BLOCK...`: the inode that owns each block.
pub fn icheck(vol: &Volume, blocks: &[u64]) -> Result<Outcome> {
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let total = u64::from(vol.clusters()) * bpc;
    if let Some(b) = blocks.iter().find(|&&b| b >= total) {
        bail!("block {b} is beyond the end of the volume ({total} blocks)");
    }
    let mut s = Search {
        want: blocks
            .iter()
            .map(|&block| BlockOwner {
                block,
                state: "unknown",
                inode: None,
                offset: None,
                what: "",
            })
            .collect(),
        left: blocks.len(),
    };
    let mut unreadable = Vec::new();
    let gb = vol
        .system_inode("global_bitmap")
        .context("finding the global bitmap")?;
    // The clusters up to the superblock's, and the backup superblocks.
    s.claim(
        0,
        (SUPER_BLKNO / bpc + 1) * bpc,
        SUPER_BLKNO,
        "superblock",
        None,
    );
    for b in vol.backup_super_blknos() {
        s.claim(b, 1, SUPER_BLKNO, "backup superblock", None);
    }
    // The global bitmap's descriptors take their whole cluster.
    let gb_inode = vol.read_inode(gb)?;
    match vol.chain_groups(&gb_inode) {
        Ok(groups) => {
            for g in &groups {
                s.claim(
                    g.blkno / bpc * bpc,
                    bpc,
                    gb,
                    "bitmap group descriptor",
                    None,
                );
            }
            // Clusters whose bit is clear.
            for w in s.want.iter_mut().filter(|w| w.state == "unknown") {
                let c = w.block / bpc;
                if let Ok(false) = ocfs2_format::alloc::cluster_in_use(vol, c) {
                    w.state = "unused";
                    w.what = "free cluster";
                    s.left -= 1;
                }
            }
        }
        Err(e) => unreadable.push(format!("the global bitmap's groups: {e}")),
    }
    let mut groups: Vec<SubGroup> = Vec::new();
    let mut windows: Vec<(u64, u64, u64)> = Vec::new();
    if !s.done() {
        for (blkno, _) in vol.valid_inodes()? {
            if s.done() {
                break;
            }
            let ino = match vol.read_inode(blkno) {
                Ok(i) => i,
                Err(e) => {
                    unreadable.push(format!("inode {blkno}: {e}"));
                    continue;
                }
            };
            s.claim(blkno, 1, blkno, "inode", None);
            if let Err(e) = owned_by(vol, &ino, gb, &mut s, &mut groups, &mut windows) {
                unreadable.push(format!("inode {blkno}: {e}"));
            }
        }
    }
    // What no inode claimed: the local alloc's window, free group bits.
    for w in s.want.iter_mut().filter(|w| w.state == "unknown") {
        if let Some(&(la, _, _)) = windows
            .iter()
            .find(|(_, first, n)| w.block / bpc >= *first && w.block / bpc - first < *n)
        {
            w.state = "used";
            w.inode = Some(la);
            w.what = "local alloc window";
            continue;
        }
        for g in &groups {
            if let Some(bit) = g.blocks.iter().position(|&b| b == w.block) {
                let set = g
                    .bitmap
                    .get(bit / 8)
                    .is_some_and(|byte| byte & (1 << (bit % 8)) != 0);
                if !set {
                    w.state = "unused";
                    w.inode = Some(g.alloc);
                    w.what = "free bit of a suballocator group";
                }
                break;
            }
        }
    }
    let mut text = format!(
        "\t{:<15}   {:<15}   {:<15}   {}\n",
        "Block#", "Inode", "Block Offset", "What"
    );
    for w in &s.want {
        let ino = match (w.state, w.inode) {
            ("used", Some(i)) => i.to_string(),
            ("unused", _) => "Unused".into(),
            _ => "Unknown".into(),
        };
        let off = w.offset.map(|o| o.to_string()).unwrap_or_default();
        let _ = writeln!(
            text,
            "\t{:<15}   {:<15}   {:<15}   {}",
            w.block, ino, off, w.what
        );
    }
    let json = json!({ "blocks": s.want, "unreadable": unreadable });
    Ok(Outcome::passing_over(text, json, &unreadable))
}

/// Claim the blocks inode `ino` owns besides its own: an allocator's group
/// descriptors (and note its groups), an extent tree's blocks and data, an
/// index, an xattr block, a refcount root; note a local alloc's window.
fn owned_by(
    vol: &Volume,
    ino: &Inode,
    gb: u64,
    s: &mut Search,
    groups: &mut Vec<SubGroup>,
    windows: &mut Vec<(u64, u64, u64)>,
) -> Result<()> {
    let di = ino.di();
    let f = di.i_flags.get();
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    if f & inode_flags::CHAIN != 0 {
        if ino.blkno == gb {
            return Ok(());
        }
        for g in vol.chain_groups(ino)? {
            s.claim(g.blkno, 1, ino.blkno, "group descriptor", None);
            let buf = vol.read_block(g.blkno)?;
            let bytes = usize::from(g.desc.bg_bits.get()).div_ceil(8);
            groups.push(SubGroup {
                alloc: ino.blkno,
                blocks: vol.group_blocks(g.blkno)?,
                bitmap: buf
                    .get(BG_BITMAP..BG_BITMAP + bytes)
                    .unwrap_or_default()
                    .to_vec(),
            });
        }
        return Ok(());
    }
    if f & inode_flags::LOCAL_ALLOC != 0 {
        let total = u64::from(di.bitmap_total());
        if let Ok((la, _)) = LocalAlloc::read_from_prefix(ino.id2()) {
            if total > 0 {
                windows.push((ino.blkno, u64::from(la.la_bm_off.get()), total));
            }
        }
        return Ok(());
    }
    let dynf = di.i_dyn_features.get();
    if dynf & dyn_features::HAS_XATTR != 0 && di.i_xattr_loc.get() != 0 {
        s.claim(di.i_xattr_loc.get(), 1, ino.blkno, "xattr block", None);
    }
    if di.i_refcount_loc.get() != 0 {
        s.claim(di.i_refcount_loc.get(), 1, ino.blkno, "refcount root", None);
    }
    if dynf & dyn_features::INDEXED_DIR != 0 && di.i_dx_root.get() != 0 {
        s.claim(di.i_dx_root.get(), 1, ino.blkno, "index root", None);
        let index = ocfs2_format::dx::index_of(vol, ino.blkno)?;
        for (first, n) in index.leaves {
            s.claim(first * bpc, n * bpc, ino.blkno, "index leaf", None);
        }
    }
    let (leaves, tree) = vol.extent_tree(ino)?;
    for b in tree {
        s.claim(b, 1, ino.blkno, "extent block", None);
    }
    for e in leaves {
        s.claim(
            e.blkno,
            u64::from(e.clusters) * bpc,
            ino.blkno,
            "data",
            Some(u64::from(e.cpos) * bpc),
        );
    }
    Ok(())
}

/// `frag PATH`: a file's clusters, the extents they take, and the scores
/// debugfs.ocfs2 prints (extents per cluster in percent, and that per MiB).
pub fn frag(vol: &Volume, path: &str) -> Result<Outcome> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let ino = vol.read_inode(blkno)?;
    let clusters = ino.di().i_clusters.get();
    let extents = vol.extents(&ino)?.len() as u32;
    // As debugfs.ocfs2 computes them, in single precision.
    let level: f32 = if clusters > 1 && extents > 0 {
        100.0 * (extents as f32 / clusters as f32)
    } else {
        0.0
    };
    let per_mib = (1u32 << 20).div_ceil(vol.cluster_size()).max(1);
    let score = level * per_mib as f32;
    Ok(Outcome {
        text: format!(
            "Inode: {blkno}\t% fragmented: {level:.2}\tclusters: {clusters}\textents: {extents}\tscore: {score:.0}\n"
        ),
        raw: Vec::new(),
        warnings: Vec::new(),
        json: json!({ "inode": blkno, "clusters": clusters, "extents": extents,
            "fragmented_percent": level, "score": score }),
        exit: exit::OK,
    })
}
