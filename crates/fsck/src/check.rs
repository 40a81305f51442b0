//! The passes. Each reads through the format crate, never trusts a number
//! from disk before checking it, and turns every problem into a [`Finding`]
//! (never a panic, never an early exit unless nothing further can be read).

use crate::problems;
use ocfs2_format::blockcheck::{self, CheckAt, CheckResult};
use ocfs2_format::features::{compat, incompat};
use ocfs2_format::fs::{parse_extent_list, slot_file_name, Inode};
use ocfs2_format::journal::JournalSuperblock;
use ocfs2_format::ondisk::*;
use ocfs2_format::slotmap::{Format, MmpState};
use ocfs2_format::zerocopy::FromBytes;
use ocfs2_format::Volume;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

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
    /// Whether this run repaired it (`-y`, or `-p` for what is safe).
    pub fixed: bool,
    /// How `-y` and `-p` repair it, when this release can.
    #[serde(skip)]
    pub fix: Option<Fix>,
}

/// A repair the passes prepared (see repair.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Recompute a chain allocator's counts from its bitmaps (its inode).
    Recount(u64),
    /// Make the global bitmap agree with the clusters in use
    /// ([`Checker::bitmap_diff`]).
    GlobalBitmap,
}

impl Finding {
    pub fn new(code: &'static str, blkno: Option<u64>, inode: Option<u64>, message: String) -> Self {
        Finding {
            code,
            pass: problems::lookup(code).map_or("?", |p| p.pass),
            blkno,
            inode,
            message,
            fixed: false,
            fix: match code {
                "GROUP_FREE_BITS" => inode.map(Fix::Recount),
                "CHAIN_BITS" | "CHAIN_GROUP_BITS" => blkno.map(Fix::Recount),
                "CLUSTER_ALLOC_BIT" => Some(Fix::GlobalBitmap),
                _ => None,
            },
        }
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
    /// Directory that names it (first seen), for directories.
    parent: Option<u64>,
    dotdot: Option<u64>,
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
    /// Clusters every structure claims.
    used: Bits,
    /// Inode blocks marked allocated in some inode allocator: blkno -> (slot, bit).
    alloc_inodes: HashMap<u64, (u16, u16)>,
    inodes: HashMap<u64, InodeInfo>,
    seen_groups: HashSet<u64>,
    /// Clusters of the global bitmap, as its groups say (bit set = used).
    bitmap_used: Bits,
    limit_reports: usize,
    dup_reports: usize,
    /// Slots whose journal the replay recovered (or, with -n, would): their
    /// slot map entries are given up with the recovery, not held.
    pub recovered: HashSet<u16>,
    /// Filled by pass 7: every cluster whose global bitmap bit is wrong,
    /// with whether it is in use.
    pub bitmap_diff: Vec<(u64, bool)>,
}

fn ft_of_mode(mode: u16) -> u8 {
    match mode & 0o170000 {
        0o100000 => file_type::REG_FILE,
        0o040000 => file_type::DIR,
        0o020000 => file_type::CHRDEV,
        0o060000 => file_type::BLKDEV,
        0o010000 => file_type::FIFO,
        0o140000 => file_type::SOCK,
        0o120000 => file_type::SYMLINK,
        _ => file_type::UNKNOWN,
    }
}

impl<'a> Checker<'a> {
    pub fn new(vol: &'a Volume) -> Self {
        let clusters = u64::from(vol.clusters());
        Checker {
            vol,
            findings: Vec::new(),
            bs: u64::from(vol.block_size()),
            cs_bits: vol.sb().s_clustersize_bits.get(),
            bpc: u64::from(vol.cluster_size() / vol.block_size()),
            clusters,
            generation: vol.super_inode().di().i_fs_generation.get(),
            used: Bits::new(clusters),
            alloc_inodes: HashMap::new(),
            inodes: HashMap::new(),
            seen_groups: HashSet::new(),
            bitmap_used: Bits::new(clusters),
            limit_reports: 0,
            dup_reports: 0,
            recovered: HashSet::new(),
            bitmap_diff: Vec::new(),
        }
    }

    fn add(&mut self, code: &'static str, blkno: Option<u64>, inode: Option<u64>, message: String) {
        self.findings.push(Finding::new(code, blkno, inode, message));
    }

    fn blocks(&self) -> u64 {
        self.vol.device_blocks()
    }

    /// Claim the clusters of `[blkno, blkno + nblocks)` for `owner`.
    fn claim(&mut self, blkno: u64, nblocks: u64, owner: u64) {
        if nblocks == 0 {
            return;
        }
        let first = blkno / self.bpc;
        let last = (blkno + nblocks - 1) / self.bpc;
        for c in first..=last.min(self.clusters.saturating_sub(1)) {
            if self.used.set(c) && self.dup_reports < 20 {
                self.dup_reports += 1;
                self.add(
                    "DUP_CLUSTERS",
                    Some(c * self.bpc),
                    Some(owner),
                    format!("cluster {c} is claimed again by inode {owner}"),
                );
            }
        }
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
                self.add(
                    "BLOCK_CHECK",
                    Some(blkno),
                    owner,
                    format!("block check fails: stored crc {stored_crc:#010x}, computed {computed_crc:#010x}"),
                );
            }
        }
        Some(buf)
    }

    fn read_inode(&mut self, blkno: u64) -> Option<Inode> {
        let buf = self.meta(blkno, CheckAt::Inode, Some(blkno))?;
        if !buf.starts_with(INODE_SIGNATURE) {
            return None;
        }
        Some(Inode { blkno, buf })
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

    // ------------------------------------------------------------ pass 0
    fn pass0(&mut self) {
        let vol = self.vol;
        let sb = *vol.sb();
        let blocks = self.blocks();
        let f = vol.features();
        for (name, b) in [
            ("s_root_blkno", sb.s_root_blkno.get()),
            ("s_system_dir_blkno", sb.s_system_dir_blkno.get()),
        ] {
            if b < 3 || b >= blocks {
                self.add(
                    "SUPERBLOCK_FIELD",
                    Some(2),
                    None,
                    format!("{name} {b} is outside the volume (3..{blocks})"),
                );
            }
        }
        let fcg = sb.s_first_cluster_group.get();
        if fcg >= blocks || fcg % self.bpc != 0 {
            self.add(
                "SUPERBLOCK_FIELD",
                Some(2),
                None,
                format!("s_first_cluster_group {fcg} is not a cluster start inside the volume"),
            );
        }
        if f.has_incompat(incompat::MMP) {
            let i = sb.s_mmp_update_interval.get();
            if !(1..=300).contains(&i) {
                self.add(
                    "MMP_INTERVAL",
                    Some(2),
                    None,
                    format!("s_mmp_update_interval is {i}, outside 1..300"),
                );
            }
            if !f.has_incompat(incompat::EXTENDED_SLOT_MAP) {
                self.add(
                    "MMP_SLOTMAP_FORMAT",
                    Some(2),
                    None,
                    "MMP is on but the slot map is in the old format".into(),
                );
            }
        }
        // Backups.
        if f.compat & compat::BACKUP_SB != 0 {
            let primary = vol.super_inode().buf;
            for b in vol.backup_super_blknos() {
                let Ok(buf) = vol.read_block(b) else { continue };
                if !buf.starts_with(SUPER_BLOCK_SIGNATURE) {
                    // Volumes too small for backups keep none; mkfs and
                    // tunefs write every one that fits.
                    self.add(
                        "SUPERBLOCK_BACKUP",
                        Some(b),
                        None,
                        format!("backup superblock {b} is missing"),
                    );
                    continue;
                }
                let mask = |x: &[u8]| {
                    let mut v = x.to_vec();
                    v[0x50..0x58].fill(0);
                    v[0x80..0x88].fill(0);
                    v
                };
                if mask(&buf) != mask(&primary) {
                    self.add(
                        "SUPERBLOCK_BACKUP",
                        Some(b),
                        None,
                        format!("backup superblock {b} differs from the primary"),
                    );
                }
            }
        }
        // Slot map.
        match vol.slot_map_layout() {
            Err(e) => self.add("SLOTMAP_SIZE", None, None, format!("slot map: {e}")),
            Ok((_, runs)) => match vol.read_slot_map_runs(&runs) {
                Err(e) => self.add("SLOTMAP_SIZE", None, None, format!("slot map: {e}")),
                Ok(map) => {
                    let mmp = f.has_incompat(incompat::MMP);
                    for s in &map.slots {
                        if map.format == Format::Old {
                            if s.legacy_in_use(Format::Old) && s.raw as u16 >= MAX_SLOTS {
                                self.add(
                                    "SLOTMAP_VALUE",
                                    None,
                                    None,
                                    format!("slot {} holds node {} (beyond 254)", s.index, s.raw),
                                );
                            }
                            continue;
                        }
                        match MmpState::decode(s.raw) {
                            MmpState::Empty => {}
                            MmpState::Unknown(v) => {
                                self.add("SLOTMAP_VALUE", None, None, format!("slot {} holds {v:#010x}, outside the MMP protocol", s.index))
                            }
                            MmpState::Clean if !mmp => self.add(
                                "SLOTMAP_VALUE",
                                None,
                                None,
                                format!("slot {} holds SEQ_CLEAN on a volume without MMP (older tools read it as held)", s.index),
                            ),
                            MmpState::Clean => {}
                            MmpState::Fsck => {} // our own marker, or refused before we got here
                            _ if self.recovered.contains(&s.index) => {}
                            st => self.add(
                                "SLOTMAP_HELD",
                                None,
                                None,
                                format!("slot {} is held: {} (node {})", s.index, st.describe(), s.node),
                            ),
                        }
                    }
                }
            },
        }
    }

    // ------------------------------------------------------------ pass 1
    /// System files by name -> inode block.
    fn pass1(&mut self) -> HashMap<String, u64> {
        let vol = self.vol;
        let mut out = HashMap::new();
        let Some(sysdir) = self.read_inode(vol.system_dir_blkno()) else {
            self.add(
                "SYSTEM_FILE_MISSING",
                Some(vol.system_dir_blkno()),
                None,
                "the system directory is not an inode".into(),
            );
            return out;
        };
        let entries = match vol.dir_entries(&sysdir) {
            Ok(e) => e,
            Err(e) => {
                self.add(
                    "DIRENT_LENGTH",
                    Some(sysdir.blkno),
                    None,
                    format!("system directory: {e}"),
                );
                return out;
            }
        };
        for e in &entries {
            out.insert(e.name_lossy(), e.inode);
        }
        let f = vol.features();
        let mut want: Vec<(String, u32)> = vec![
            (
                "global_inode_alloc".into(),
                inode_flags::BITMAP | inode_flags::CHAIN,
            ),
            ("slot_map".into(), 0),
            ("heartbeat".into(), inode_flags::HEARTBEAT),
            (
                "global_bitmap".into(),
                inode_flags::BITMAP | inode_flags::CHAIN,
            ),
        ];
        for slot in 0..vol.max_slots() {
            for (base, fl) in [
                ("orphan_dir", 0),
                ("extent_alloc", inode_flags::BITMAP | inode_flags::CHAIN),
                ("inode_alloc", inode_flags::BITMAP | inode_flags::CHAIN),
                ("journal", inode_flags::JOURNAL),
                (
                    "local_alloc",
                    inode_flags::BITMAP | inode_flags::LOCAL_ALLOC,
                ),
                ("truncate_log", inode_flags::DEALLOC),
            ] {
                want.push((slot_file_name(base, slot), fl));
            }
            if f.ro_compat & ocfs2_format::features::ro_compat::USRQUOTA != 0 {
                want.push((slot_file_name("aquota.user", slot), inode_flags::QUOTA));
            }
            if f.ro_compat & ocfs2_format::features::ro_compat::GRPQUOTA != 0 {
                want.push((slot_file_name("aquota.group", slot), inode_flags::QUOTA));
            }
        }
        for (name, fl) in want {
            match out.get(&name).copied() {
                None => self.add(
                    "SYSTEM_FILE_MISSING",
                    Some(sysdir.blkno),
                    None,
                    format!("system file {name} is missing"),
                ),
                Some(b) => {
                    if let Some(ino) = self.read_inode(b) {
                        let have = ino.flags();
                        let need = fl | inode_flags::VALID | inode_flags::SYSTEM;
                        if have & need != need {
                            self.add(
                                "SYSTEM_FILE_FLAGS",
                                Some(b),
                                None,
                                format!("{name}: flags {have:#x} lack {:#x}", need & !have),
                            );
                        }
                    } else {
                        self.add(
                            "SYSTEM_FILE_MISSING",
                            Some(b),
                            None,
                            format!("system file {name} at block {b} is not an inode"),
                        );
                    }
                }
            }
        }
        out
    }

    // ------------------------------------------------------------ pass 2
    fn pass2(&mut self, sys: &HashMap<String, u64>) {
        let mut allocs: Vec<(String, u64, Option<u16>)> = Vec::new();
        if let Some(&b) = sys.get("global_bitmap") {
            allocs.push(("global_bitmap".into(), b, None));
        }
        if let Some(&b) = sys.get("global_inode_alloc") {
            allocs.push(("global_inode_alloc".into(), b, Some(0xFFFF)));
        }
        for slot in 0..self.vol.max_slots() {
            for base in ["inode_alloc", "extent_alloc"] {
                if let Some(&b) = sys.get(&slot_file_name(base, slot)) {
                    allocs.push((slot_file_name(base, slot), b, Some(slot)));
                }
            }
        }
        // Blocks 0..=superblock, and the clusters they sit in.
        self.claim(0, 3, 2);
        for b in self.vol.backup_super_blknos() {
            if self.vol.features().compat & compat::BACKUP_SB != 0 {
                self.claim(b, 1, 2);
            }
        }
        for (name, blkno, slot) in allocs {
            self.check_chain(&name, blkno, slot);
        }
    }

    fn check_chain(&mut self, name: &str, blkno: u64, slot: Option<u16>) {
        let Some(ino) = self.read_inode(blkno) else {
            return;
        };
        let global = name == "global_bitmap";
        let is_inode_alloc = name.contains("inode_alloc");
        let bs = self.bs as usize;
        let (cl, recs) = match ino.chain_list() {
            Ok(x) => x,
            Err(e) => {
                // chain_list() refuses cl_count beyond the block first, then
                // cl_next_free_rec beyond cl_count.
                let code = match ChainList::read_from_prefix(ino.id2()) {
                    Ok((cl, _)) if usize::from(cl.cl_count.get()) <= chain_recs_per_inode(bs) => {
                        "CHAIN_NEXT_FREE"
                    }
                    _ => "CHAIN_COUNT",
                };
                self.add(code, Some(blkno), None, format!("{name}: {e}"));
                return;
            }
        };
        if usize::from(cl.cl_count.get()) != chain_recs_per_inode(bs) {
            self.add(
                "CHAIN_COUNT",
                Some(blkno),
                None,
                format!(
                    "{name}: cl_count {} (expected {})",
                    cl.cl_count.get(),
                    chain_recs_per_inode(bs)
                ),
            );
        }
        let bpc = u64::from(cl.cl_bpc.get()).max(1);
        let (mut total, mut used, mut clusters) = (0u64, 0u64, 0u64);
        for (ci, rec) in recs.iter().enumerate() {
            let (mut ctot, mut cfree) = (0u64, 0u64);
            let mut g = rec.c_blkno.get();
            let mut seen_here = HashSet::new();
            while g != 0 {
                if g >= self.blocks() {
                    self.add(
                        "CHAIN_LINK_RANGE",
                        Some(blkno),
                        None,
                        format!("{name}: chain {ci} points at block {g}, outside the volume"),
                    );
                    break;
                }
                if !seen_here.insert(g) {
                    self.add(
                        "GROUP_CHAIN_LOOP",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} loops back to group {g}"),
                    );
                    break;
                }
                if !self.seen_groups.insert(g) {
                    self.add(
                        "GROUP_DUPLICATE",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} is on more than one chain"),
                    );
                    break;
                }
                let Some(buf) = self.meta(g, CheckAt::GroupDesc, Some(blkno)) else {
                    break;
                };
                if !buf.starts_with(GROUP_DESC_SIGNATURE) {
                    self.add(
                        "CHAIN_LINK_MAGIC",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} reaches block {g}, not a group descriptor"),
                    );
                    break;
                }
                let (gd, bm) = GroupDesc::read_from_prefix(&buf).expect("block >= 64 bytes");
                if gd.bg_blkno.get() != g {
                    self.add(
                        "GROUP_BLKNO",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group at {g} says bg_blkno {}", gd.bg_blkno.get()),
                    );
                }
                if gd.bg_parent_dinode.get() != blkno {
                    self.add(
                        "GROUP_PARENT",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} has parent {}", gd.bg_parent_dinode.get()),
                    );
                }
                if gd.bg_generation.get() != self.generation {
                    self.add(
                        "GROUP_GEN",
                        Some(g),
                        Some(blkno),
                        format!(
                            "{name}: group {g} generation {:#x}, volume {:#x}",
                            gd.bg_generation.get(),
                            self.generation
                        ),
                    );
                }
                if usize::from(gd.bg_chain.get()) != ci {
                    self.add(
                        "GROUP_CHAIN",
                        Some(g),
                        Some(blkno),
                        format!(
                            "{name}: group {g} says chain {}, found on chain {ci}",
                            gd.bg_chain.get()
                        ),
                    );
                }
                let bits = u64::from(gd.bg_bits.get());
                let bm_bytes = (usize::from(gd.bg_size.get())).min(bm.len());
                if bits == 0 || bits > (bm_bytes as u64) * 8 {
                    self.add(
                        "GROUP_BITS",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} has {bits} bits for a {bm_bytes}-byte bitmap"),
                    );
                    g = gd.bg_next_group.get();
                    continue;
                }
                let set = count_set(bm, bits);
                let free = u64::from(gd.bg_free_bits_count.get());
                if free != bits - set {
                    self.add(
                        "GROUP_FREE_BITS",
                        Some(g),
                        Some(blkno),
                        format!(
                            "{name}: group {g} says {free} free bits, its bitmap has {}",
                            bits - set
                        ),
                    );
                }
                ctot += bits;
                cfree += bits - set;
                if global {
                    // Group i covers clusters from its first cluster (group 0: cluster 0).
                    let start = if g == self.vol.sb().s_first_cluster_group.get() {
                        0
                    } else {
                        g / self.bpc
                    };
                    if start + bits > self.clusters {
                        self.add(
                            "GROUP_BITS",
                            Some(g),
                            Some(blkno),
                            format!("global bitmap group {g} covers clusters past the end"),
                        );
                    } else {
                        self.bitmap_used.or_bits(start, bm, bits);
                    }
                    // The descriptor's own cluster.
                    self.claim(g, 1, blkno);
                } else {
                    // A suballocator group: its clusters, and its allocated bits.
                    let nclusters = bits / bpc;
                    clusters += nclusters;
                    self.claim(g, bits, blkno);
                    for i in 1..bits {
                        if bm[(i / 8) as usize] & (1 << (i % 8)) != 0 && is_inode_alloc {
                            self.alloc_inodes
                                .insert(g + i, (slot.unwrap_or(0xFFFF), i as u16));
                        }
                    }
                }
                g = gd.bg_next_group.get();
            }
            if u64::from(rec.c_total.get()) != ctot || u64::from(rec.c_free.get()) != cfree {
                self.add(
                    "CHAIN_BITS",
                    Some(blkno),
                    None,
                    format!("{name}: chain {ci} says total {} free {}, its groups have {ctot} and {cfree}", rec.c_total.get(), rec.c_free.get()),
                );
            }
            total += ctot;
            used += ctot - cfree;
        }
        let di = ino.di();
        if u64::from(di.bitmap_total()) != total || u64::from(di.bitmap_used()) != used {
            self.add(
                "CHAIN_GROUP_BITS",
                Some(blkno),
                None,
                format!(
                    "{name}: i_total {} i_used {}, its groups have {total} and {used}",
                    di.bitmap_total(),
                    di.bitmap_used()
                ),
            );
        }
        if global {
            if total != self.clusters {
                self.add(
                    "SUPERBLOCK_CLUSTERS",
                    Some(2),
                    Some(blkno),
                    format!(
                        "the superblock says {} clusters, the global bitmap has {total}",
                        self.clusters
                    ),
                );
            }
        } else {
            if u64::from(di.i_clusters.get()) != clusters {
                self.add(
                    "CHAIN_I_CLUSTERS",
                    Some(blkno),
                    None,
                    format!(
                        "{name}: i_clusters {}, its groups hold {clusters}",
                        di.i_clusters.get()
                    ),
                );
            }
            if di.i_size.get() != clusters << self.cs_bits {
                self.add(
                    "CHAIN_I_SIZE",
                    Some(blkno),
                    None,
                    format!(
                        "{name}: i_size {}, its clusters hold {}",
                        di.i_size.get(),
                        clusters << self.cs_bits
                    ),
                );
            }
        }
    }

    // ------------------------------------------------------------ pass 3
    fn pass3(&mut self) {
        let mut blknos: Vec<(u64, (u16, u16))> =
            self.alloc_inodes.iter().map(|(&b, &s)| (b, s)).collect();
        blknos.sort_unstable();
        for (b, (slot, bit)) in blknos {
            let buf = match self.meta(b, CheckAt::Inode, Some(b)) {
                Some(x) => x,
                None => continue,
            };
            if !buf.starts_with(INODE_SIGNATURE) {
                self.add(
                    "INODE_NOT_INODE",
                    Some(b),
                    None,
                    format!(
                        "inode allocator bit for block {b} is set, but the block holds no inode"
                    ),
                );
                continue;
            }
            let ino = Inode { blkno: b, buf };
            let di = *ino.di();
            if di.i_flags.get() & inode_flags::VALID == 0 {
                self.add(
                    "INODE_ALLOC_REPAIR",
                    Some(b),
                    None,
                    format!("inode {b} is allocated but not marked valid"),
                );
                continue;
            }
            if di.i_blkno.get() != b {
                self.add(
                    "INODE_BLKNO",
                    Some(b),
                    None,
                    format!("inode at {b} says i_blkno {}", di.i_blkno.get()),
                );
            }
            if di.i_fs_generation.get() != self.generation {
                self.add(
                    "INODE_GEN",
                    Some(b),
                    None,
                    format!(
                        "inode {b} fs generation {:#x}, volume {:#x}",
                        di.i_fs_generation.get(),
                        self.generation
                    ),
                );
            }
            if di.i_suballoc_bit.get() != bit || di.i_suballoc_slot.get() != slot {
                self.add(
                    "INODE_SUBALLOC",
                    Some(b),
                    None,
                    format!(
                        "inode {b} says slot {} bit {}, allocated at slot {slot} bit {bit}",
                        di.i_suballoc_slot.get(),
                        di.i_suballoc_bit.get()
                    ),
                );
            }
            let mode = di.i_mode.get();
            let is_system = di.i_flags.get() & inode_flags::SYSTEM != 0;
            if ft_of_mode(mode) == file_type::UNKNOWN
                && !(is_system && di.i_flags.get() & inode_flags::SUPER_BLOCK != 0)
            {
                self.add(
                    "INODE_MODE",
                    Some(b),
                    None,
                    format!("inode {b} mode {mode:o} has no file type"),
                );
            }
            if di.i_dtime.get() != 0 {
                self.add(
                    "INODE_NZ_DTIME",
                    Some(b),
                    None,
                    format!("inode {b} is in use but has dtime {}", di.i_dtime.get()),
                );
            }
            self.inodes.insert(
                b,
                InodeInfo {
                    mode,
                    links: di.links(),
                    ..Default::default()
                },
            );
            self.check_inode_space(&ino);
        }
    }

    fn check_inode_space(&mut self, ino: &Inode) {
        let b = ino.blkno;
        let di = *ino.di();
        let bs = self.bs as usize;
        if ino.is_inline() {
            let id_count = u16::from_le_bytes([ino.buf[DINODE_ID2], ino.buf[DINODE_ID2 + 1]]);
            if usize::from(id_count) > max_inline_data(bs) || di.i_size.get() > u64::from(id_count)
            {
                self.add(
                    "INODE_INLINE_SIZE",
                    Some(b),
                    None,
                    format!(
                        "inline inode {b}: i_size {} id_count {id_count}",
                        di.i_size.get()
                    ),
                );
            }
            if di.i_clusters.get() != 0 {
                self.add(
                    "INODE_INLINE_CLUSTERS",
                    Some(b),
                    None,
                    format!("inline inode {b} owns {} clusters", di.i_clusters.get()),
                );
            }
            return;
        }
        if !ino.has_extent_list() {
            return;
        }
        let (el, recs) = match ino.extent_list() {
            Ok(x) => x,
            Err(e) => {
                // extent_list() refuses l_count beyond the block first, then
                // l_next_free_rec beyond l_count.
                let code = match ExtentList::read_from_prefix(ino.id2()) {
                    Ok((el, _)) if usize::from(el.l_count.get()) <= extent_recs_per_inode(bs) => {
                        "EXTENT_LIST_FREE"
                    }
                    _ => "EXTENT_LIST_COUNT",
                };
                self.add(code, Some(b), None, format!("inode {b}: {e}"));
                return;
            }
        };
        if usize::from(el.l_count.get()) != extent_recs_per_inode(bs) {
            self.add(
                "EXTENT_LIST_COUNT",
                Some(b),
                None,
                format!(
                    "inode {b}: l_count {} (expected {})",
                    el.l_count.get(),
                    extent_recs_per_inode(bs)
                ),
            );
        }
        let mut total = 0u64;
        let mut max_end = 0u64;
        let mut seen = HashSet::new();
        self.walk(
            b,
            el.l_tree_depth.get(),
            &recs,
            &mut total,
            &mut max_end,
            &mut seen,
            0,
        );
        if u64::from(di.i_clusters.get()) != total {
            self.add(
                "INODE_CLUSTERS",
                Some(b),
                None,
                format!(
                    "inode {b}: i_clusters {} but its extents hold {total}",
                    di.i_clusters.get()
                ),
            );
        }
        let cap = max_end << self.cs_bits;
        let is_dir = ino.is_dir();
        if !is_dir
            && di.i_size.get() > cap
            && !self.vol.features().has_incompat(incompat::SPARSE_ALLOC)
        {
            self.add(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "inode {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
            );
        }
        if is_dir && di.i_size.get() > cap {
            self.add(
                "INODE_SIZE",
                Some(b),
                None,
                format!(
                    "directory {b}: i_size {} beyond its {cap} allocated bytes",
                    di.i_size.get()
                ),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        owner: u64,
        depth: u16,
        recs: &[ExtentRec],
        total: &mut u64,
        max_end: &mut u64,
        seen: &mut HashSet<u64>,
        level: u32,
    ) {
        if level > 16 {
            self.add(
                "EXTENT_LIST_DEPTH",
                Some(owner),
                None,
                "extent tree deeper than 16 levels".into(),
            );
            return;
        }
        let mut prev_end = 0u64;
        for (i, r) in recs.iter().enumerate() {
            let cpos = u64::from(r.e_cpos.get());
            let n = u64::from(r.clusters(depth));
            let blk = r.e_blkno.get();
            if depth == 0 && n == 0 {
                continue;
            }
            if i > 0 && cpos < prev_end {
                self.add(
                    "EXTENT_OVERLAP",
                    Some(owner),
                    None,
                    format!(
                        "record {i} at cpos {cpos} overlaps the previous one ending at {prev_end}"
                    ),
                );
            }
            prev_end = cpos + n;
            if depth == 0 {
                if blk % self.bpc != 0 {
                    self.add(
                        "EXTENT_BLKNO_UNALIGNED",
                        Some(owner),
                        None,
                        format!("record {i}: block {blk} is not a cluster start"),
                    );
                }
                if blk
                    .checked_add(n * self.bpc)
                    .is_none_or(|e| e > self.clusters * self.bpc)
                {
                    self.add(
                        "EXTENT_BLKNO_RANGE",
                        Some(owner),
                        None,
                        format!(
                            "record {i}: blocks {blk}+{} run outside the volume",
                            n * self.bpc
                        ),
                    );
                    continue;
                }
                *total += n;
                *max_end = (*max_end).max(cpos + n);
                self.claim(blk, n * self.bpc, owner);
                continue;
            }
            if blk == 0 || blk >= self.blocks() {
                self.add(
                    "EXTENT_BLKNO_RANGE",
                    Some(owner),
                    None,
                    format!("record {i}: extent block {blk} is outside the volume"),
                );
                continue;
            }
            if !seen.insert(blk) {
                self.add(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} appears twice in one tree"),
                );
                continue;
            }
            let Some(eb) = self.meta(blk, CheckAt::ExtentBlock, Some(owner)) else {
                continue;
            };
            if !eb.starts_with(EXTENT_BLOCK_SIGNATURE) {
                self.add(
                    "EXTENT_EB_INVALID",
                    Some(blk),
                    Some(owner),
                    format!("record {i} points at block {blk}, not an extent block"),
                );
                continue;
            }
            let hdr = ExtentBlock::read_from_prefix(&eb)
                .expect("block >= 64 bytes")
                .0;
            if hdr.h_blkno.get() != blk {
                self.add(
                    "EB_BLKNO",
                    Some(blk),
                    Some(owner),
                    format!("extent block at {blk} says h_blkno {}", hdr.h_blkno.get()),
                );
            }
            if hdr.h_fs_generation.get() != self.generation {
                self.add(
                    "EB_GEN",
                    Some(blk),
                    Some(owner),
                    format!(
                        "extent block {blk} generation {:#x}",
                        hdr.h_fs_generation.get()
                    ),
                );
            }
            let cd = hdr.h_list.l_tree_depth.get();
            if u32::from(cd) + 1 != u32::from(depth) {
                self.add(
                    "EXTENT_LIST_DEPTH",
                    Some(blk),
                    Some(owner),
                    format!("extent block {blk} depth {cd} under depth {depth}"),
                );
                continue;
            }
            match parse_extent_list(blk, &eb[0x30..], "extent block") {
                Ok((el, child)) => {
                    if usize::from(el.l_count.get()) != extent_recs_per_eb(self.bs as usize) {
                        self.add(
                            "EXTENT_LIST_COUNT",
                            Some(blk),
                            Some(owner),
                            format!("extent block {blk}: l_count {}", el.l_count.get()),
                        );
                    }
                    self.walk(owner, cd, &child, total, max_end, seen, level + 1);
                }
                Err(e) => self.add("EXTENT_LIST_FREE", Some(blk), Some(owner), e.to_string()),
            }
        }
    }

    // ------------------------------------------------------------ pass 4
    fn pass4(&mut self, sys: &HashMap<String, u64>) {
        let bs = self.bs as usize;
        for slot in 0..self.vol.max_slots() {
            if let Some(&b) = sys.get(&slot_file_name("journal", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    let di = *ino.di();
                    if di.journal_flags() & JOURNAL_DIRTY_FL != 0 {
                        self.add("JOURNAL_NEEDS_RECOVERY", Some(b), None, format!("journal:{slot:04} is dirty: it needs recovery, and this run did not replay it (run with -y or -p)"));
                    }
                    match self.vol.extents(&ino) {
                        Ok(ext) if !ext.is_empty() => {
                            let first = ext[0].blkno;
                            match self.vol.read_block(first) {
                                Ok(blk) => {
                                    let ok = JournalSuperblock::read_from_prefix(&blk)
                                        .ok()
                                        .map(|x| x.0)
                                        .filter(|j| {
                                            j.is_valid()
                                                && j.s_blocksize.get() == self.bs as u32
                                                && u64::from(j.s_maxlen.get())
                                                    <= u64::from(di.i_clusters.get()) * self.bpc
                                        });
                                    if ok.is_none() {
                                        self.add("JOURNAL_SUPERBLOCK", Some(first), Some(b), format!("journal:{slot:04}: block {first} is not a fitting jbd2 superblock"));
                                    }
                                }
                                Err(e) => self.add(
                                    "JOURNAL_SUPERBLOCK",
                                    Some(first),
                                    Some(b),
                                    e.to_string(),
                                ),
                            }
                        }
                        Ok(_) => self.add(
                            "JOURNAL_SUPERBLOCK",
                            Some(b),
                            None,
                            format!("journal:{slot:04} has no blocks"),
                        ),
                        Err(e) => self.add("JOURNAL_SUPERBLOCK", Some(b), None, e.to_string()),
                    }
                }
            }
            if let Some(&b) = sys.get(&slot_file_name("local_alloc", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok((la, _)) = LocalAlloc::read_from_prefix(ino.id2()) {
                        let size = usize::from(la.la_size.get());
                        if size > local_alloc_size(bs) {
                            self.add(
                                "LALLOC_SIZE",
                                Some(b),
                                None,
                                format!(
                                    "local_alloc:{slot:04}: la_size {size} > {}",
                                    local_alloc_size(bs)
                                ),
                            );
                        } else {
                            let total = u64::from(ino.di().bitmap_total());
                            let off = u64::from(la.la_bm_off.get());
                            if total > 0 {
                                if off + total > self.clusters {
                                    self.add("LALLOC_BM_OVERRUN", Some(b), None, format!("local_alloc:{slot:04}: window {off}+{total} past the end"));
                                } else {
                                    // The window is held in the global bitmap.
                                    for c in off..off + total {
                                        self.used.set(c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(&b) = sys.get(&slot_file_name("truncate_log", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok((tl, rest)) = TruncateLog::read_from_prefix(ino.id2()) {
                        let max = (bs - DINODE_ID2 - 8) / 8;
                        if usize::from(tl.tl_count.get()) != max {
                            self.add(
                                "DEALLOC_COUNT",
                                Some(b),
                                None,
                                format!(
                                    "truncate_log:{slot:04}: tl_count {} (expected {max})",
                                    tl.tl_count.get()
                                ),
                            );
                        }
                        let used = usize::from(tl.tl_used.get());
                        if used > usize::from(tl.tl_count.get()) || used > max {
                            self.add(
                                "DEALLOC_USED",
                                Some(b),
                                None,
                                format!("truncate_log:{slot:04}: tl_used {used} > tl_count"),
                            );
                        } else {
                            for k in 0..used {
                                let r = TruncateRec::read_from_prefix(&rest[k * 8..])
                                    .expect("8 bytes")
                                    .0;
                                let (s, n) =
                                    (u64::from(r.t_start.get()), u64::from(r.t_clusters.get()));
                                if s + n > self.clusters {
                                    self.add("TRUNCATE_REC_RANGE", Some(b), None, format!("truncate_log:{slot:04}: record {k} {s}+{n} past the end"));
                                } else {
                                    for c in s..s + n {
                                        self.used.set(c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ pass 5
    fn pass5(&mut self) {
        let mut dirs: Vec<u64> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.mode & 0o170000 == 0o040000)
            .map(|(&b, _)| b)
            .collect();
        dirs.sort_unstable();
        let trailers =
            self.vol.meta_ecc() || self.vol.features().has_incompat(incompat::INDEXED_DIRS);
        for d in dirs {
            let Some(ino) = self.read_inode(d) else {
                continue;
            };
            let mut entries = Vec::new();
            if ino.is_inline() {
                match ino.inline_data() {
                    Ok(data) => {
                        if let Err(e) = ocfs2_format::fs::parse_dir_block(d, data, &mut entries) {
                            self.add("DIRENT_LENGTH", Some(d), None, e.to_string());
                        }
                    }
                    Err(e) => self.add("DIRENT_LENGTH", Some(d), None, e.to_string()),
                }
            } else {
                let ext = match self.vol.extents(&ino) {
                    Ok(x) => x,
                    Err(_) => continue, // reported in pass 3
                };
                let nblocks = ino.size().div_ceil(self.bs);
                let mut next = 0u64;
                while next < nblocks {
                    let l = next;
                    next += 1;
                    let Some(p) = self.vol.map_block(&ext, l) else {
                        // One finding per hole, skipped whole: a damaged
                        // i_size may lie far beyond the extents.
                        next = ext
                            .iter()
                            .map(|e| u64::from(e.cpos) * self.bpc)
                            .filter(|&s| s > l)
                            .min()
                            .unwrap_or(nblocks)
                            .min(nblocks);
                        self.add(
                            "DIR_HOLE",
                            Some(d),
                            None,
                            format!("directory {d} has no block {l}..{}", next - 1),
                        );
                        continue;
                    };
                    let at = CheckAt::DirTrailer;
                    let Some(buf) = (if self.vol.meta_ecc() {
                        self.meta(p, at, Some(d))
                    } else {
                        self.vol.read_block(p).ok()
                    }) else {
                        continue;
                    };
                    let limit = if trailers {
                        self.bs as usize - 0x40
                    } else {
                        self.bs as usize
                    };
                    if trailers {
                        let t = DirBlockTrailer::read_from_prefix(&buf[limit..])
                            .expect("64 bytes")
                            .0;
                        if &t.db_signature[..7] != b"DIRTRL1"
                            || t.db_blkno.get() != p
                            || t.db_parent_dinode.get() != d
                        {
                            self.add(
                                "DIR_TRAILER",
                                Some(p),
                                Some(d),
                                format!("directory {d} block {p}: trailer missing or wrong"),
                            );
                        }
                    }
                    if let Err(e) =
                        ocfs2_format::fs::parse_dir_block(p, &buf[..limit], &mut entries)
                    {
                        self.add("DIRENT_LENGTH", Some(p), Some(d), e.to_string());
                    }
                }
                if ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
                    let dx = ino.di().i_dx_root.get();
                    let root = if dx < self.blocks() {
                        self.meta(dx, CheckAt::DxBlock, Some(d))
                    } else {
                        None
                    };
                    let hdr = root
                        .as_ref()
                        .filter(|b| b.starts_with(DX_ROOT_SIGNATURE))
                        .and_then(|b| {
                            DxRootBlock::read_from_prefix(b)
                                .ok()
                                .map(|(h, _)| h)
                                .filter(|h| h.dr_dir_blkno.get() == d && h.dr_blkno.get() == dx)
                        });
                    // The root itself lives inside an extent allocator group,
                    // whose clusters pass 2 claimed already; an index that
                    // outgrew the root keeps its leaves in clusters of its own.
                    match (hdr, root) {
                        (Some(h), Some(b)) if h.dr_flags & 1 == 0 => {
                            match parse_extent_list(dx, &b[0xC0..], "dx root") {
                                Ok((el, recs)) => {
                                    let (mut total, mut max_end) = (0u64, 0u64);
                                    let mut seen = HashSet::new();
                                    self.walk(
                                        d,
                                        el.l_tree_depth.get(),
                                        &recs,
                                        &mut total,
                                        &mut max_end,
                                        &mut seen,
                                        0,
                                    );
                                    if total != u64::from(h.dr_clusters.get()) {
                                        self.add("DX_ROOT", Some(dx), Some(d), format!("directory {d}: index root says {} clusters, its extents hold {total}", h.dr_clusters.get()));
                                    }
                                }
                                Err(e) => self.add("DX_ROOT", Some(dx), Some(d), e.to_string()),
                            }
                        }
                        (Some(_), _) => {}
                        _ => self.add(
                            "DX_ROOT",
                            Some(dx),
                            Some(d),
                            format!("directory {d}: i_dx_root {dx} is not its index root"),
                        ),
                    }
                }
            }
            let mut names = HashSet::new();
            for (k, e) in entries.iter().enumerate() {
                let name = e.name_lossy();
                if !names.insert(e.name.clone()) {
                    self.add(
                        "DIRENT_DUPLICATE",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: name {name:?} appears twice"),
                    );
                }
                if k == 0 && (e.name != b"." || e.inode != d) {
                    self.add(
                        "DIRENT_DOT_INODE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: first entry is {name:?} -> {}, not '.' -> itself",
                            e.inode
                        ),
                    );
                }
                if k == 1 && e.name != b".." {
                    self.add(
                        "DIRENT_DOTDOT",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: second entry is {name:?}, not '..'"),
                    );
                }
                if e.inode >= self.blocks() {
                    self.add(
                        "DIRENT_INODE_RANGE",
                        Some(e.blkno),
                        Some(d),
                        format!("directory {d}: {name:?} -> {}, outside the volume", e.inode),
                    );
                    continue;
                }
                let Some(target) = self.inodes.get_mut(&e.inode) else {
                    self.add(
                        "DIRENT_INODE_FREE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: {name:?} -> {}, not an allocated, valid inode",
                            e.inode
                        ),
                    );
                    continue;
                };
                target.refs += 1;
                let tmode = target.mode;
                if e.name == b".." {
                    if let Some(t) = self.inodes.get_mut(&d) {
                        t.dotdot = Some(e.inode);
                    }
                } else if e.name != b"." {
                    let t = self.inodes.get_mut(&e.inode).expect("present");
                    if t.parent.is_none() {
                        t.parent = Some(d);
                    }
                }
                if e.file_type != ft_of_mode(tmode) {
                    self.add(
                        "DIRENT_TYPE",
                        Some(e.blkno),
                        Some(d),
                        format!(
                            "directory {d}: {name:?} has type {}, inode {} mode {tmode:o}",
                            e.file_type, e.inode
                        ),
                    );
                }
            }
        }
        let root = self.vol.root_blkno();
        match self.inodes.get(&root) {
            Some(i) if i.mode & 0o170000 == 0o040000 => {
                if let Some(r) = self.read_inode(root) {
                    if !matches!(self.vol.lookup(&r, b"lost+found"), Ok(Some(_))) {
                        self.add(
                            "LOSTFOUND_MISSING",
                            Some(root),
                            None,
                            "lost+found is missing from the root directory".into(),
                        );
                    }
                }
            }
            _ => self.add(
                "ROOT_DIR_MISSING",
                Some(root),
                None,
                format!("root directory {root} is missing or not a directory"),
            ),
        }
    }

    // ------------------------------------------------------------ pass 6
    fn pass6(&mut self, sys: &HashMap<String, u64>) {
        let root = self.vol.root_blkno();
        let sysdir = self.vol.system_dir_blkno();
        // Orphans waiting to be freed.
        for slot in 0..self.vol.max_slots() {
            if let Some(&b) = sys.get(&slot_file_name("orphan_dir", slot)) {
                if let Some(ino) = self.read_inode(b) {
                    if let Ok(es) = self.vol.dir_entries(&ino) {
                        let n = es
                            .iter()
                            .filter(|e| e.name != b"." && e.name != b"..")
                            .count();
                        if n > 0 {
                            self.add(
                                "ORPHAN_DIR_ENTRIES",
                                Some(b),
                                None,
                                format!("orphan_dir:{slot:04} holds {n} inode(s) to free"),
                            );
                        }
                    }
                }
            }
        }
        let mut blks: Vec<u64> = self.inodes.keys().copied().collect();
        blks.sort_unstable();
        for b in blks {
            let info = self.inodes[&b].clone();
            let is_dir = info.mode & 0o170000 == 0o040000;
            // A directory's own '.' and its children's '..' count in refs:
            // only an entry elsewhere (parent) connects it.
            if b != root && b != sysdir && info.parent.is_none() {
                self.add(
                    "DIR_NOT_CONNECTED",
                    Some(b),
                    None,
                    format!("inode {b} is not named by any directory"),
                );
                continue;
            }
            if is_dir && b != root && b != sysdir {
                if let (Some(p), Some(dd)) = (info.parent, info.dotdot) {
                    if p != dd {
                        self.add(
                            "DIRENT_DOTDOT",
                            Some(b),
                            None,
                            format!("directory {b}: '..' is {dd}, its parent is {p}"),
                        );
                    }
                }
            }
            // A directory counts '.', '..' of each subdirectory and its entry
            // in its parent; the refs counted in pass 5 are exactly those.
            if info.refs != info.links {
                self.add(
                    "INODE_COUNT",
                    Some(b),
                    None,
                    format!(
                        "inode {b}: i_links_count {} but {} entries point at it",
                        info.links, info.refs
                    ),
                );
            }
        }
    }

    // ------------------------------------------------------------ pass 7
    fn pass7(&mut self) {
        let mut extra = 0u64;
        let mut missing = 0u64;
        let nbytes = self.used.0.len();
        let mut i = 0usize;
        while i < nbytes {
            // Skip equal stretches eight bytes at a time.
            if i + 8 <= nbytes && self.used.0[i..i + 8] == self.bitmap_used.0[i..i + 8] {
                i += 8;
                continue;
            }
            let diff = self.used.0[i] ^ self.bitmap_used.0[i];
            for bit in 0..8u64 {
                let c = i as u64 * 8 + bit;
                if diff & (1 << bit) == 0 || c >= self.clusters {
                    continue;
                }
                let on_disk = self.bitmap_used.get(c);
                self.bitmap_diff.push((c, !on_disk));
                if on_disk {
                    extra += 1;
                } else {
                    missing += 1;
                }
                if self.limit_reports < 10 {
                    self.limit_reports += 1;
                    let msg = if on_disk {
                        format!("cluster {c} is marked in use in the global bitmap, but nothing uses it")
                    } else {
                        format!("cluster {c} is in use, but the global bitmap says it is free")
                    };
                    self.add("CLUSTER_ALLOC_BIT", Some(c * self.bpc), None, msg);
                }
            }
            i += 1;
        }
        if extra + missing > self.limit_reports as u64 {
            self.add(
                "CLUSTER_ALLOC_BIT",
                None,
                None,
                format!("in all, {extra} cluster(s) marked but unused and {missing} used but free"),
            );
        }
    }
}
