//! The passes. Each reads through the format crate, never trusts a number
//! from disk before checking it, and turns every problem into a [`Finding`]
//! (never a panic, never an early exit unless nothing further can be read).
//! One file per pass; this one holds the state they share, each field
//! documented with the pass that fills it.

use crate::problems;
use ocfs2_format::blockcheck::{self, CheckAt, CheckResult};
use ocfs2_format::features::{compat, incompat, ro_compat};
use ocfs2_format::fs::{parse_extent_list, slot_file_name, Inode};
use ocfs2_format::journal::{JournalFeatures, JournalSuperblock, JBD2_FEATURE_INCOMPAT_64BIT};
use ocfs2_format::link::entry_location;
use ocfs2_format::ondisk::*;
use ocfs2_format::slotmap::{Format, MmpState, TUNEFS_FLAG_SLOTMAP};
use ocfs2_format::zerocopy::FromBytes;
use ocfs2_format::Volume;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

mod discontig;
mod dx;
mod lost_groups;
mod pass0;
mod pass1;
mod pass2;
mod pass3;
mod pass4;
mod pass5;
mod pass6;
mod pass7;
mod quota;
mod refcount;
mod xattr;

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub pass: &'static str,
    /// The block the finding concerns.
    pub blkno: Option<u64>,
    /// The inode (block number) it belongs to, when it differs from `blkno`.
    pub inode: Option<u64>,
    pub message: String,
    /// Whether it is damage; `false` for an improvement offered
    /// (`problems::Problem::damage`), which the exit code does not count.
    pub damage: bool,
    /// Whether this run repaired it (`-y`, or `-p` for what is safe).
    pub fixed: bool,
    /// How `-y` and `-p` repair it, when this release can: in JSON, the
    /// repair in words (`repair`), null when there is none.
    #[serde(rename = "repair", serialize_with = "repair_in_words")]
    pub fix: Option<Fix>,
}

pub use crate::fix::{Fix, Set};

impl Finding {
    pub fn new(
        code: &'static str,
        blkno: Option<u64>,
        inode: Option<u64>,
        message: String,
    ) -> Self {
        Finding {
            code,
            pass: problems::lookup(code).map_or("?", |p| p.pass),
            blkno,
            inode,
            message,
            damage: problems::is_damage(code),
            fixed: false,
            fix: match code {
                "GROUP_FREE_BITS" => inode.map(Fix::Recount),
                "CHAIN_BITS" | "CHAIN_GROUP_BITS" => blkno.map(Fix::Recount),
                "CLUSTER_ALLOC_BIT" => Some(Fix::GlobalBitmap),
                // Pass 4 files these under the local alloc or truncate
                // log inode.
                c if c.starts_with("LALLOC_") => blkno.map(Fix::EmptyLocalAlloc),
                "DEALLOC_COUNT" | "DEALLOC_USED" | "TRUNCATE_REC_RANGE" => {
                    blkno.map(Fix::EmptyTruncateLog)
                }
                _ => None,
            },
        }
    }
}

fn repair_in_words<S: serde::Serializer>(fix: &Option<Fix>, s: S) -> Result<S::Ok, S::Error> {
    match fix {
        Some(f) => s.serialize_some(&f.question()),
        None => s.serialize_none(),
    }
}

/// Progress per pass.
pub trait Progress {
    fn pass(&mut self, _n: &str, _name: &str) {}
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {}

/// A bitset over clusters, one bit per cluster, LSB first (as on disk).
struct Bits(Vec<u8>);
impl Bits {
    fn new(n: u64) -> Self {
        Bits(vec![0; n.div_ceil(8) as usize])
    }
    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 8) as usize)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Set; returns whether it was set already.
    fn set(&mut self, i: u64) -> bool {
        match self.0.get_mut((i / 8) as usize) {
            Some(b) => {
                let was = *b & (1 << (i % 8)) != 0;
                *b |= 1 << (i % 8);
                was
            }
            None => false,
        }
    }
    /// OR `nbits` bits of an on-disk bitmap in at bit `start`.
    fn or_bits(&mut self, start: u64, src: &[u8], nbits: u64) {
        if start % 8 == 0 {
            let whole = (nbits / 8) as usize;
            let at = (start / 8) as usize;
            if let Some(dst) = self.0.get_mut(at..at + whole) {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d |= *s;
                }
                for i in (whole as u64 * 8)..nbits {
                    if src[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                        self.set(start + i);
                    }
                }
                return;
            }
        }
        for i in 0..nbits {
            if src[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                self.set(start + i);
            }
        }
    }
}

/// Little-endian fields of a block the checker reads as bytes.
fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Set bits among the first `nbits` of an on-disk bitmap.
fn count_set(bm: &[u8], nbits: u64) -> u64 {
    let whole = (nbits / 8) as usize;
    let mut n: u64 = bm[..whole].iter().map(|b| u64::from(b.count_ones())).sum();
    for i in (whole as u64 * 8)..nbits {
        if bm[(i / 8) as usize] & (1 << (i % 8)) != 0 {
            n += 1;
        }
    }
    n
}

#[derive(Default, Clone)]
struct InodeInfo {
    mode: u16,
    links: u32,
    refs: u32,
    /// A system file (the system directory names it, never lost+found).
    system: bool,
    /// Directory that names it (first seen).
    parent: Option<u64>,
    /// What a directory's '..' names, valid inode or not.
    dotdot: Option<u64>,
    /// A directory with no blocks (i_size 0): pass 5.
    zero_length: bool,
    /// Where `parent`'s entry lives and the fix that clears it.
    parent_entry: (u64, Option<Fix>),
    /// Further directories that name a directory after `parent`: (the
    /// directory, the entry's block, the fix that clears the entry).
    more_parents: Vec<(u64, u64, Option<Fix>)>,
    /// The finding pass 5 made of a '..' that names no valid inode (an
    /// index in `findings`): pass 6 gives it the repair of '..'.
    dotdot_finding: Option<usize>,
}

/// The checker's state.
pub struct Checker<'a> {
    vol: &'a Volume,
    pub findings: Vec<Finding>,
    bs: u64,
    cs_bits: u32,
    bpc: u64,
    clusters: u64,
    generation: u32,
    /// Clusters every structure claims: filled by [`Checker::claim`] in
    /// pass 2 (group descriptors), pass 3 (extents) and pass 4 (local alloc
    /// windows, truncate logs); compared in pass 7.
    used: Bits,
    /// Clusters claimed by refcounted extents (`refcount` volumes), which
    /// several files share by design: claimed again by another refcounted
    /// extent, they are not duplicates. Filled by pass 3.
    shared: Bits,
    /// Inode blocks marked allocated in some inode allocator: blkno ->
    /// (slot, bit, its group). Filled by pass 2, read by pass 3.
    alloc_inodes: HashMap<u64, (u16, u16, u64)>,
    /// Inode blocks whose allocator bit is clear: (block, (slot, bit,
    /// group), the allocator). Filled by pass 2; pass 3 looks for valid
    /// inodes among them.
    free_inode_blocks: Vec<(u64, (u16, u16, u64), u64)>,
    /// Valid inodes whose allocator bit is clear, whose bit pass 3's
    /// repair sets (fsck.ocfs2's INODE_ALLOC_REPAIR, that direction): pass 5
    /// does not clear the entries that name them.
    restored: HashSet<u64>,
    /// Every valid inode: filled by pass 3; pass 5 counts the directory
    /// entries naming each, pass 6 checks links and connectivity.
    inodes: HashMap<u64, InodeInfo>,
    /// Refcount trees met in pass 3, by root block.
    refcount_trees: HashMap<u64, refcount::RefcountTree>,
    /// Pass 3, per tree root: how many refcounted extents cover each
    /// cluster (compared with the trees' records after pass 3).
    refcount_use: HashMap<u64, std::collections::BTreeMap<u64, u32>>,
    /// Pass 3, per inode walked: the root of its refcount tree, if any.
    walk_refcount_root: Option<u64>,
    /// Group descriptors already met on some chain (pass 2).
    seen_groups: HashSet<u64>,
    /// Pass 2, per chain allocator inode: the groups of each chain, in
    /// chain order, as far as the chain could be followed.
    chain_groups: HashMap<u64, Vec<Vec<u64>>>,
    /// Pass 5: suballocator groups on no chain that valid inodes the
    /// directories name still live in (group -> allocator, bg_chain,
    /// bg_bits); see lost_groups.rs.
    lost_groups: std::collections::BTreeMap<u64, (u64, u16, u16)>,
    /// Pass 2: blocks an inode allocator's chain reaches that hold no
    /// descriptor (block -> allocator, chain, its CHAIN_LINK_MAGIC
    /// finding).
    wiped_links: HashMap<u64, (u64, u16, usize)>,
    /// Pass 5: those of `wiped_links` that valid inodes the directories
    /// name say are their group, with whether every such inode lies in the
    /// run a contiguous group there would span.
    wiped_groups: std::collections::BTreeMap<u64, bool>,
    /// Clusters of the global bitmap, as its groups say (bit set = used):
    /// filled by pass 2, compared in pass 7.
    bitmap_used: Bits,
    limit_reports: usize,
    /// Pass 3, per inode: the rightmost leaf extent block met so far
    /// (its cpos, its block), as libocfs2 finds `i_last_eb_blk`.
    last_eb: (u64, u64),
    dup_reports: usize,
    /// Pass 3, per tree walked: whether it is a directory's, whose records
    /// leave no holes.
    no_holes: bool,
    /// Pass 3, per tree walked: whether it is an attribute index, whose
    /// records are keyed by name hash (in order, but not cluster offsets
    /// that could overlap).
    hash_keyed: bool,
    /// Pass 3, while an attribute tree is walked: its leaf runs (first
    /// block, clusters), for the buckets they hold.
    leaf_runs: Option<Vec<(u64, u64)>>,
    /// Slots whose journal the replay recovered (or, with -n, would): their
    /// slot map entries are given up with the recovery, not held.
    pub recovered: HashSet<u16>,
    /// lost+found, when the root names a directory by that name: filled by
    /// pass 5, where pass 6 reconnects what no directory names.
    lost_found: Option<u64>,
    /// Whether this round's repairs make lost+found (pass 5).
    lost_found_coming: bool,
    /// Whether some directory block could not be read whole (pass 5): an
    /// inode no entry names may then be named by what was not read, and is
    /// not reconnected in this round, and no link count is set.
    pub dirs_incomplete: bool,
    /// Filled by pass 1: each per-slot system file the system directory
    /// does not name (its base name, slot, type flags, and its
    /// SYSTEM_FILE_MISSING finding), for pass 6 to link back an unnamed
    /// system inode of its type or, failing that, to make anew.
    pub missing_slot_files: Vec<(&'static str, u16, u32, usize)>,
    /// Filled by pass 7: every cluster whose global bitmap bit is wrong,
    /// with whether it is in use.
    pub bitmap_diff: Vec<(u64, bool)>,
}

/// The mode's type bits of each directory entry file type.
const MODE_TYPES: [(u16, u8); 7] = [
    (0o100000, file_type::REG_FILE),
    (0o040000, file_type::DIR),
    (0o020000, file_type::CHRDEV),
    (0o060000, file_type::BLKDEV),
    (0o010000, file_type::FIFO),
    (0o140000, file_type::SOCK),
    (0o120000, file_type::SYMLINK),
];

fn ft_of_mode(mode: u16) -> u8 {
    MODE_TYPES
        .iter()
        .find(|&&(m, _)| m == mode & 0o170000)
        .map_or(file_type::UNKNOWN, |&(_, ft)| ft)
}

/// The mode's type bits for an entry's file type (None: unknown).
fn mode_of_ft(ft: u8) -> Option<u16> {
    MODE_TYPES.iter().find(|&&(_, t)| t == ft).map(|&(m, _)| m)
}

impl<'a> Checker<'a> {
    pub fn new(vol: &'a Volume) -> Self {
        let clusters = u64::from(vol.fitting_clusters());
        Checker {
            vol,
            findings: Vec::new(),
            bs: u64::from(vol.block_size()),
            cs_bits: vol.sb().s_clustersize_bits.get(),
            bpc: u64::from(vol.cluster_size() / vol.block_size()),
            clusters,
            generation: vol.super_inode().di().i_fs_generation.get(),
            used: Bits::new(clusters),
            shared: Bits::new(clusters),
            alloc_inodes: HashMap::new(),
            free_inode_blocks: Vec::new(),
            restored: HashSet::new(),
            inodes: HashMap::new(),
            seen_groups: HashSet::new(),
            chain_groups: HashMap::new(),
            lost_groups: Default::default(),
            wiped_links: HashMap::new(),
            wiped_groups: Default::default(),
            refcount_trees: HashMap::new(),
            refcount_use: HashMap::new(),
            walk_refcount_root: None,
            bitmap_used: Bits::new(clusters),
            limit_reports: 0,
            last_eb: (0, 0),
            dup_reports: 0,
            no_holes: false,
            recovered: HashSet::new(),
            lost_found: None,
            lost_found_coming: false,
            hash_keyed: false,
            leaf_runs: None,
            dirs_incomplete: false,
            missing_slot_files: Vec::new(),
            bitmap_diff: Vec::new(),
        }
    }

    fn add(&mut self, code: &'static str, blkno: Option<u64>, inode: Option<u64>, message: String) {
        self.findings
            .push(Finding::new(code, blkno, inode, message));
    }

    /// [`Checker::add`], with the repair that fixes it.
    fn add_fix(
        &mut self,
        code: &'static str,
        blkno: Option<u64>,
        inode: Option<u64>,
        message: String,
        fix: Fix,
    ) {
        let mut f = Finding::new(code, blkno, inode, message);
        f.fix = Some(fix);
        self.findings.push(f);
    }

    fn blocks(&self) -> u64 {
        self.vol.device_blocks()
    }

    /// Claim the clusters of `[blkno, blkno + nblocks)` for `owner`.
    fn claim(&mut self, blkno: u64, nblocks: u64, owner: u64) {
        self.claim_as(blkno, nblocks, owner, false);
    }

    /// [`Checker::claim`]; `refcounted` for an extent of a refcount tree,
    /// whose clusters other refcounted extents may claim too. Returns how
    /// many of the clusters were claimed already (reports stop at 20).
    fn claim_as(&mut self, blkno: u64, nblocks: u64, owner: u64, refcounted: bool) -> u64 {
        if nblocks == 0 {
            return 0;
        }
        let mut dups = 0;
        let first = blkno / self.bpc;
        let last = (blkno + nblocks - 1) / self.bpc;
        for c in first..=last.min(self.clusters.saturating_sub(1)) {
            let was_shared = self.shared.get(c);
            if refcounted {
                self.shared.set(c);
            }
            if self.used.set(c) && !(refcounted && was_shared) {
                dups += 1;
                if self.dup_reports >= 20 {
                    continue;
                }
                self.dup_reports += 1;
                self.add(
                    "DUP_CLUSTERS",
                    Some(c * self.bpc),
                    Some(owner),
                    format!("cluster {c} is claimed again by inode {owner}"),
                );
            }
        }
        dups
    }

    /// Read a metadata block; a failed check becomes a finding.
    fn meta(&mut self, blkno: u64, at: CheckAt, owner: Option<u64>) -> Option<Vec<u8>> {
        let mut buf = match self.vol.read_block(blkno) {
            Ok(b) => b,
            Err(e) => {
                self.add("EXTENT_BLKNO_RANGE", Some(blkno), owner, e.to_string());
                return None;
            }
        };
        if self.vol.meta_ecc() {
            if let CheckResult::Bad {
                stored_crc,
                computed_crc,
            } = blockcheck::validate(&mut buf, at)
            {
                // Recomputed, as fsck.ocfs2 recomputes it, only on a block
                // that holds what it is read as (its signature): the passes
                // check its content; a block that is something else is
                // never written to.
                let sig: &[u8] = match at {
                    CheckAt::Inode => INODE_SIGNATURE,
                    CheckAt::ExtentBlock => EXTENT_BLOCK_SIGNATURE,
                    CheckAt::GroupDesc => GROUP_DESC_SIGNATURE,
                    CheckAt::DxBlock if buf.starts_with(DX_LEAF_SIGNATURE) => DX_LEAF_SIGNATURE,
                    CheckAt::DxBlock => DX_ROOT_SIGNATURE,
                    CheckAt::RefcountBlock => REFCOUNT_BLOCK_SIGNATURE,
                    CheckAt::XattrBlock => XATTR_BLOCK_SIGNATURE,
                    CheckAt::DirTrailer | CheckAt::XattrBucket | CheckAt::QuotaBlock => b"",
                };
                let ours = if at == CheckAt::XattrBucket {
                    false
                } else if sig.is_empty() {
                    buf[buf.len() - 0x40 + 0x10..].starts_with(DIR_TRAILER_SIGNATURE)
                } else {
                    buf.starts_with(sig)
                };
                let f = Finding::new(
                    "BLOCK_CHECK",
                    Some(blkno),
                    owner,
                    format!("block check fails: stored crc {stored_crc:#010x}, computed {computed_crc:#010x}"),
                );
                self.findings.push(Finding {
                    fix: ours.then_some(Fix::Recheck { blkno, at }),
                    ..f
                });
            }
        }
        Some(buf)
    }

    fn read_inode(&mut self, blkno: u64) -> Option<Inode> {
        let buf = self.meta(blkno, CheckAt::Inode, Some(blkno))?;
        if !buf.starts_with(INODE_SIGNATURE) {
            return None;
        }
        let mut ino = Inode { blkno, buf };
        self.strip_invalid_inline(&mut ino);
        Some(ino)
    }

    /// Clear, in memory, an inline-data flag the volume's features do not
    /// allow (pass 3's INLINE_DATA_FLAG_INVALID, repaired by clearing it):
    /// every pass reads id2 as the extent list it is. Returns whether the
    /// flag was there.
    fn strip_invalid_inline(&self, ino: &mut Inode) -> bool {
        if !ino.is_inline() || self.vol.features().has_incompat(incompat::INLINE_DATA) {
            return false;
        }
        let kept = ino.dyn_features() & !dyn_features::INLINE_DATA;
        ino.di_mut().i_dyn_features.set(kept);
        true
    }

    /// Run every pass.
    pub fn run(&mut self, progress: &mut dyn Progress, stop: &dyn Fn() -> bool) {
        progress.pass("0", "Checking the superblock, its backups and the slot map");
        self.pass0();
        if stop() {
            return;
        }
        progress.pass("1", "Checking the system directory and system files");
        let sysfiles = self.pass1();
        if stop() {
            return;
        }
        progress.pass("2", "Checking chain allocators and group descriptors");
        self.pass2(&sysfiles);
        if stop() {
            return;
        }
        progress.pass("3", "Checking inodes and extent trees");
        self.pass3();
        if stop() {
            return;
        }
        progress.pass("4", "Checking journals, local allocs and truncate logs");
        self.pass4(&sysfiles);
        if stop() {
            return;
        }
        progress.pass("5", "Checking directory entries");
        self.pass5();
        if stop() {
            return;
        }
        progress.pass("6", "Checking connectivity and link counts");
        self.pass6(&sysfiles);
        if stop() {
            return;
        }
        progress.pass(
            "7",
            "Checking the global bitmap against the clusters in use",
        );
        self.pass7();
    }
}
