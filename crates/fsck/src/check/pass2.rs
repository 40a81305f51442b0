//! Pass 2: chain allocators and their group descriptors (fills `bitmap_used`, `alloc_inodes`, `seen_groups`).

use super::*;
use core::mem::{offset_of, size_of};

impl Checker<'_> {
    pub(super) fn pass2(&mut self, sys: &HashMap<String, u64>) {
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

    pub(super) fn check_chain(&mut self, name: &str, blkno: u64, slot: Option<u16>) {
        let Some(ino) = self.read_inode(blkno) else {
            return;
        };
        let global = name == "global_bitmap";
        let discontig = self.vol.features().has_incompat(incompat::DISCONTIG_BG);
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
                let fix = match ChainList::read_from_prefix(ino.id2()) {
                    Ok((cl, raw)) if code == "CHAIN_NEXT_FREE" => {
                        let filled = filled_records(raw, usize::from(cl.cl_count.get()));
                        chain_field(
                            blkno,
                            offset_of!(ChainList, cl_next_free_rec),
                            2,
                            filled as u64,
                            "cl_next_free_rec",
                        )
                    }
                    _ => chain_field(
                        blkno,
                        offset_of!(ChainList, cl_count),
                        2,
                        chain_recs_per_inode(bs) as u64,
                        "cl_count",
                    ),
                };
                self.add_fix(code, Some(blkno), None, format!("{name}: {e}"), fix);
                return;
            }
        };
        if usize::from(cl.cl_count.get()) != chain_recs_per_inode(bs) {
            self.add_fix(
                "CHAIN_COUNT",
                Some(blkno),
                None,
                format!(
                    "{name}: cl_count {} (expected {})",
                    cl.cl_count.get(),
                    chain_recs_per_inode(bs)
                ),
                chain_field(
                    blkno,
                    offset_of!(ChainList, cl_count),
                    2,
                    chain_recs_per_inode(bs) as u64,
                    "cl_count",
                ),
            );
        }
        let bpc = u64::from(cl.cl_bpc.get()).max(1);
        let (mut total, mut used, mut clusters) = (0u64, 0u64, 0u64);
        // Findings of links that lead nowhere, with the cut that ends the
        // chain before them (made only on the global bitmap, see below).
        let mut bad_links: Vec<(usize, Option<Fix>)> = Vec::new();
        let first_finding = self.findings.len();
        self.chain_groups
            .entry(blkno)
            .or_default()
            .resize_with(recs.len(), Vec::new);
        for (ci, rec) in recs.iter().enumerate() {
            if rec.c_blkno.get() == 0 {
                self.add_fix(
                    "CHAIN_EMPTY",
                    Some(blkno),
                    None,
                    format!("{name}: chain {ci} is empty"),
                    Fix::DropChain {
                        blkno,
                        index: ci as u16,
                    },
                );
            }
            let (mut ctot, mut cfree) = (0u64, 0u64);
            let mut g = rec.c_blkno.get();
            let mut seen_here = HashSet::new();
            // The group before `g` on this chain (None: the chain record).
            let mut prev: Option<u64> = None;
            // Cutting a chain of the global bitmap would leave clusters no
            // group covers: only suballocator chains are cut.
            // Point the link before a group (`prev`'s, or the chain
            // record's) at `to`.
            let link = |prev: Option<u64>, to: u64| match prev {
                Some(p) => Some(group_field(
                    p,
                    offset_of!(GroupDesc, bg_next_group),
                    8,
                    to,
                    "bg_next_group",
                )),
                None => Some(chain_head_field(blkno, ci, to)),
            };
            while g != 0 {
                if g >= self.blocks() {
                    bad_links.push((self.findings.len(), link(prev, 0)));
                    self.add(
                        "CHAIN_LINK_RANGE",
                        Some(blkno),
                        None,
                        format!("{name}: chain {ci} points at block {g}, outside the volume"),
                    );
                    break;
                }
                if !seen_here.insert(g) {
                    // Cut where it loops back: every group was met once.
                    self.add_fix(
                        "GROUP_CHAIN_LOOP",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} loops back to group {g}"),
                        group_field(
                            prev.unwrap_or(g),
                            offset_of!(GroupDesc, bg_next_group),
                            8,
                            0,
                            "bg_next_group",
                        ),
                    );
                    break;
                }
                if self.seen_groups.contains(&g) {
                    // The chain that met it first also holds every group
                    // its links lead to: this one ends before it, and no
                    // group is lost.
                    self.add_fix(
                        "GROUP_DUPLICATE",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} is on more than one chain"),
                        link(prev, 0).expect("a link always exists"),
                    );
                    break;
                }
                let Some(buf) = self.meta(g, CheckAt::GroupDesc, Some(blkno)) else {
                    break;
                };
                if !buf.starts_with(GROUP_DESC_SIGNATURE)
                    && self.only_signature_lost(&buf, g, blkno)
                {
                    // Every field that ties the block to this allocator
                    // agrees: only the signature was lost. Cutting the chain
                    // here would lose the group's inodes or blocks (what
                    // fsck.ocfs2 does), so the signature is written back and
                    // the group is checked as any other.
                    self.add_fix(
                        "CHAIN_LINK_MAGIC",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} reaches block {g}, a group descriptor without its signature"),
                        group_field(
                            g,
                            offset_of!(GroupDesc, bg_signature),
                            8,
                            signature_word(),
                            "bg_signature",
                        ),
                    );
                } else if !buf.starts_with(GROUP_DESC_SIGNATURE) {
                    // Cut only on the global bitmap once every group is
                    // found elsewhere (below): on a suballocator the groups
                    // past it may hold inodes, extent blocks or index roots
                    // that files still use.
                    bad_links.push((self.findings.len(), link(prev, 0)));
                    if is_inode_alloc {
                        // Its inodes may still say it is their group
                        // (lost_groups.rs rebuilds it then).
                        self.wiped_links
                            .insert(g, (blkno, ci as u16, self.findings.len()));
                    }
                    self.add(
                        "CHAIN_LINK_MAGIC",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} reaches block {g}, not a group descriptor"),
                    );
                    break;
                }
                self.seen_groups.insert(g);
                // (The allocator's chain lists were made before its chains.)
                self.chain_groups.get_mut(&blkno).expect("made above")[ci].push(g);
                let (gd, bm) = GroupDesc::read_from_prefix(&buf).expect("block >= 64 bytes");
                // A global bitmap group lives where its clusters begin (the
                // first one at s_first_cluster_group): a descriptor anywhere
                // else is not one of its groups, and comes off the chain
                // (its bits counted nowhere). A failed block check there is
                // not recomputed: the block is dropped, not trusted.
                let cpg = u64::from(cl.cl_cpg.get());
                let expected = g == self.vol.sb().s_first_cluster_group.get()
                    || (cpg > 0 && g % (cpg * self.bpc) == 0);
                if global && !expected {
                    let unlink = link(prev, gd.bg_next_group.get());
                    for f in self.findings.iter_mut().filter(|f| f.blkno == Some(g)) {
                        if f.code == "BLOCK_CHECK" {
                            f.fix = unlink;
                        }
                    }
                    let f = Finding::new(
                        "GROUP_UNEXPECTED_DESC",
                        Some(g),
                        Some(blkno),
                        format!("{name}: chain {ci} holds a descriptor at {g}, where no group of the global bitmap begins"),
                    );
                    self.findings.push(Finding { fix: unlink, ..f });
                    // The groups after it stay on the chain once it is cut
                    // out; met here first, they are checked as usual.
                    g = gd.bg_next_group.get();
                    continue;
                }
                if gd.bg_blkno.get() != g {
                    self.add_fix(
                        "GROUP_BLKNO",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group at {g} says bg_blkno {}", gd.bg_blkno.get()),
                        group_field(g, offset_of!(GroupDesc, bg_blkno), 8, g, "bg_blkno"),
                    );
                }
                if gd.bg_parent_dinode.get() != blkno {
                    self.add_fix(
                        "GROUP_PARENT",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} has parent {}", gd.bg_parent_dinode.get()),
                        group_field(
                            g,
                            offset_of!(GroupDesc, bg_parent_dinode),
                            8,
                            blkno,
                            "bg_parent_dinode",
                        ),
                    );
                }
                if gd.bg_generation.get() != self.generation {
                    self.add_fix(
                        "GROUP_GEN",
                        Some(g),
                        Some(blkno),
                        format!(
                            "{name}: group {g} generation {:#x}, volume {:#x}",
                            gd.bg_generation.get(),
                            self.generation
                        ),
                        group_field(
                            g,
                            offset_of!(GroupDesc, bg_generation),
                            4,
                            u64::from(self.generation),
                            "bg_generation",
                        ),
                    );
                }
                if usize::from(gd.bg_chain.get()) != ci {
                    self.add_fix(
                        "GROUP_CHAIN",
                        Some(g),
                        Some(blkno),
                        format!(
                            "{name}: group {g} says chain {}, found on chain {ci}",
                            gd.bg_chain.get()
                        ),
                        group_field(g, offset_of!(GroupDesc, bg_chain), 2, ci as u64, "bg_chain"),
                    );
                }
                let mut bits = u64::from(gd.bg_bits.get());
                let bm_bytes = (usize::from(gd.bg_size.get())).min(bm.len());
                if bits == 0 || bits > (bm_bytes as u64) * 8 {
                    let f = Finding::new(
                        "GROUP_BITS",
                        Some(g),
                        Some(blkno),
                        format!("{name}: group {g} has {bits} bits for a {bm_bytes}-byte bitmap"),
                    );
                    let fix = self.group_size_fix(g, &gd, &buf, &cl, global, discontig);
                    self.findings.push(Finding {
                        fix: fix.map(|(fix, _)| fix),
                        ..f
                    });
                    // With a repair, the group is judged with the count it
                    // gets; without one, it is skipped.
                    match fix {
                        Some((_, want)) => bits = want,
                        None => {
                            prev = Some(g);
                            g = gd.bg_next_group.get();
                            continue;
                        }
                    }
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
                    // A suballocator group: its clusters, and its allocated
                    // bits (one block each, bit 0 the descriptor).
                    let runs = if discontig && discontig::is_discontig(&buf) {
                        let unlink = link(prev, gd.bg_next_group.get());
                        match self.discontig_group(
                            g,
                            &buf,
                            u64::from(cl.cl_cpg.get()),
                            blkno,
                            unlink,
                        ) {
                            Some(r) => r,
                            None => {
                                prev = Some(g);
                                g = gd.bg_next_group.get();
                                continue;
                            }
                        }
                    } else {
                        vec![(g, bits)]
                    };
                    let nclusters = bits / bpc;
                    clusters += nclusters;
                    let mut blocks = Vec::new();
                    for &(start, n) in &runs {
                        self.claim(start, n, blkno);
                        if is_inode_alloc {
                            blocks.extend(
                                (start..start + n)
                                    .take(bits as usize - blocks.len().min(bits as usize)),
                            );
                        }
                    }
                    for (i, &b) in blocks.iter().enumerate().skip(1) {
                        let at = (slot.unwrap_or(0xFFFF), i as u16, g);
                        if bm[i / 8] & (1 << (i % 8)) != 0 {
                            self.alloc_inodes.insert(b, at);
                        } else {
                            self.free_inode_blocks.push((b, at, blkno));
                        }
                    }
                }
                prev = Some(g);
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
        let mut relink = None;
        if global {
            let (all, fix) = self.check_global_groups(blkno, &cl);
            if all {
                // Every group is on some chain: a link past the last one
                // leads nowhere and is cut. Bad links on suballocator chains
                // are left (see above).
                for (i, fix) in bad_links {
                    self.findings[i].fix = fix;
                }
            } else {
                relink = Some(fix);
            }
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
            // The global bitmap's counts are recomputed from its groups only
            // when they cover the whole volume.
            if global && total != u64::from(self.vol.clusters()) {
                if let Some(f) = self.findings.last_mut() {
                    f.fix = None;
                }
            }
        }
        // What the global bitmap's own counts are repaired to: its groups'
        // total, only when that is the superblock's (a chain that lost
        // groups must not shrink the volume).
        let mut believe_groups = !global;
        if global {
            clusters = total;
            let sb = u64::from(self.vol.clusters());
            believe_groups = total == sb;
            if total != sb {
                // The bitmap is believed when its groups cover exactly what
                // its own inode says, that fits the device, and it does not
                // shrink a superblock that fits: a volume is never made
                // smaller by a repair.
                let dev = self.vol.device().size();
                let fits = total == u64::from(di.i_clusters.get())
                    && total << self.cs_bits <= dev
                    && (total > sb || sb << self.cs_bits > dev);
                let f = Finding::new(
                    "SUPERBLOCK_CLUSTERS",
                    Some(self.vol.super_blkno()),
                    Some(blkno),
                    format!("the superblock says {sb} clusters, the global bitmap has {total}"),
                );
                self.findings.push(Finding {
                    fix: fits.then_some(Fix::SuperClusters(total as u32)),
                    ..f
                });
            }
        }
        {
            if u64::from(di.i_clusters.get()) != clusters {
                let f = Finding::new(
                    "CHAIN_I_CLUSTERS",
                    Some(blkno),
                    None,
                    format!(
                        "{name}: i_clusters {}, its groups hold {clusters}",
                        di.i_clusters.get()
                    ),
                );
                let fix = Set::fix(
                    blkno,
                    offset_of!(Dinode, i_clusters),
                    4,
                    clusters,
                    CheckAt::Inode,
                    "i_clusters",
                );
                self.findings.push(Finding {
                    fix: believe_groups.then_some(fix),
                    ..f
                });
            }
            if di.i_size.get() != clusters << self.cs_bits {
                let f = Finding::new(
                    "CHAIN_I_SIZE",
                    Some(blkno),
                    None,
                    format!(
                        "{name}: i_size {}, its clusters hold {}",
                        di.i_size.get(),
                        clusters << self.cs_bits
                    ),
                );
                let fix = Set::fix(
                    blkno,
                    offset_of!(Dinode, i_size),
                    8,
                    clusters << self.cs_bits,
                    CheckAt::Inode,
                    "i_size",
                );
                self.findings.push(Finding {
                    fix: believe_groups.then_some(fix),
                    ..f
                });
            }
        }
        // A global bitmap that lost groups: its counts and chains are all
        // repaired by putting every group back on the chains.
        if let Some(fix) = relink {
            for f in self.findings[first_finding..]
                .iter_mut()
                .filter(|f| f.fix.is_none())
            {
                f.fix = Some(fix);
            }
        }
    }
}

/// A field of a chain allocator's chain list (in the inode's id2).
fn chain_field(blkno: u64, off: usize, width: u8, value: u64, field: &'static str) -> Fix {
    Set::fix(blkno, DINODE_ID2 + off, width, value, CheckAt::Inode, field)
}

/// A field of group descriptor `blkno`.
impl Checker<'_> {
    /// The repair of a group whose bit count does not fit its bitmap, and
    /// the count the group has once repaired: its
    /// bitmap size set to what the kernel gives it
    /// (`ocfs2_group_bitmap_size`), then (next round) its bit count to what
    /// its chain list says a group holds (the global bitmap's last group:
    /// the clusters left). A discontiguous group's count follows from its
    /// extents and is left.
    fn group_size_fix(
        &self,
        g: u64,
        gd: &GroupDesc,
        buf: &[u8],
        cl: &ChainList,
        global: bool,
        discontig: bool,
    ) -> Option<(Fix, u64)> {
        if discontig && discontig::is_discontig(buf) {
            return None;
        }
        let size = ocfs2_format::alloc::group_bitmap_size(self.bs as usize, !global, discontig);
        let cpg = u64::from(cl.cl_cpg.get());
        let want = if global {
            let start = if g == self.vol.sb().s_first_cluster_group.get() {
                0
            } else {
                g / self.bpc
            };
            cpg.min(self.clusters.saturating_sub(start))
        } else {
            cpg * u64::from(cl.cl_bpc.get())
        };
        if want == 0 || want > size as u64 * 8 {
            return None;
        }
        let fix = if usize::from(gd.bg_size.get()) != size {
            group_field(g, offset_of!(GroupDesc, bg_size), 2, size as u64, "bg_size")
        } else {
            group_field(g, offset_of!(GroupDesc, bg_bits), 2, want, "bg_bits")
        };
        Some((fix, want))
    }

    /// Whether `buf`, met on a chain of allocator `parent` at block `g`
    /// without the group signature, is that allocator's group descriptor in
    /// every other field: its own block number, its parent, the volume's
    /// generation, and a bit count its bitmap can hold.
    fn only_signature_lost(&self, buf: &[u8], g: u64, parent: u64) -> bool {
        let Ok((gd, bm)) = GroupDesc::read_from_prefix(buf) else {
            return false;
        };
        let bits = usize::from(gd.bg_bits.get());
        gd.bg_blkno.get() == g
            && gd.bg_parent_dinode.get() == parent
            && gd.bg_generation.get() == self.generation
            && bits > 0
            && bits <= usize::from(gd.bg_size.get()).min(bm.len()) * 8
    }
}

/// The group signature as the 8-byte field holds it (NUL-padded).
fn signature_word() -> u64 {
    let mut sig = [0u8; 8];
    sig[..GROUP_DESC_SIGNATURE.len()].copy_from_slice(GROUP_DESC_SIGNATURE);
    u64::from_le_bytes(sig)
}

/// The `c_blkno` of chain `ci` of chain allocator inode `alloc`, set to
/// `to`.
pub(super) fn chain_head_field(alloc: u64, ci: usize, to: u64) -> Fix {
    Set::fix(
        alloc,
        DINODE_ID2
            + size_of::<ChainList>()
            + ci * size_of::<ChainRec>()
            + offset_of!(ChainRec, c_blkno),
        8,
        to,
        CheckAt::Inode,
        "c_blkno",
    )
}

pub(super) fn group_field(
    blkno: u64,
    off: usize,
    width: u8,
    value: u64,
    field: &'static str,
) -> Fix {
    Set::fix(blkno, off, width, value, CheckAt::GroupDesc, field)
}

/// Records filled in among the first `count` 16-byte records of `raw` (a
/// chain or extent list's records): up to the last one with a byte set.
pub(super) fn filled_records(raw: &[u8], count: usize) -> usize {
    raw.chunks_exact(16)
        .take(count)
        .rposition(|r| r.iter().any(|&b| b != 0))
        .map_or(0, |i| i + 1)
}

impl Checker<'_> {
    /// The global bitmap's groups sit at known blocks (one every `cpg`
    /// clusters, the first at `s_first_cluster_group`), and its `cl_cpg`
    /// follows from the block size. A group not met on any chain is
    /// reported; the repair puts every group back on the chains. Returns
    /// whether every group was met, and the repair that brings the others
    /// back (a relink, or first a descriptor written where one is missing).
    fn check_global_groups(&mut self, blkno: u64, cl: &ChainList) -> (bool, Fix) {
        let cpg = ocfs2_format::alloc::global_cpg(self.vol.block_size());
        if u64::from(cl.cl_cpg.get()) != cpg {
            self.add_fix(
                "CHAIN_CPG",
                Some(blkno),
                None,
                format!(
                    "global_bitmap: cl_cpg {} (a group holds {cpg} clusters at this block size)",
                    cl.cl_cpg.get()
                ),
                chain_field(blkno, offset_of!(ChainList, cl_cpg), 2, cpg, "cl_cpg"),
            );
        }
        // The groups no chain reached, and whether their blocks hold a
        // descriptor (each read once; a group met on a chain holds one).
        let unseen: Vec<(u64, u64, bool)> = (0..self.clusters.div_ceil(cpg))
            .map(|i| {
                (
                    i,
                    ocfs2_format::alloc::cluster_group_blkno(self.vol, cpg, i),
                )
            })
            .filter(|(_, g)| !self.seen_groups.contains(g))
            .map(|(i, g)| {
                let holds = self
                    .vol
                    .read_block(g)
                    .is_ok_and(|b| b.starts_with(GROUP_DESC_SIGNATURE));
                (i, g, holds)
            })
            .collect();
        // Relinking needs a descriptor at every group's block: the first
        // block that holds none gets one written first, and the groups are
        // relinked on the next round.
        let missing = unseen
            .iter()
            .find(|u| !u.2)
            .map(|&(index, ..)| Fix::RebuildGlobalGroup {
                bitmap: blkno,
                index,
            });
        let all = unseen.is_empty();
        for (i, g, holds) in unseen {
            let fix = if holds {
                missing.unwrap_or(Fix::RelinkGlobal(blkno))
            } else {
                let rebuild = Fix::RebuildGlobalGroup {
                    bitmap: blkno,
                    index: i,
                };
                for f in self.findings.iter_mut() {
                    if f.blkno == Some(g) && f.code == "CHAIN_LINK_MAGIC" {
                        f.fix = Some(rebuild);
                    }
                }
                rebuild
            };
            self.add_fix(
                "GROUP_EXPECTED_DESC",
                Some(g),
                Some(blkno),
                format!(
                    "global_bitmap: the group of clusters {}.. (block {g}) is on no chain",
                    i * cpg
                ),
                fix,
            );
        }
        (all, missing.unwrap_or(Fix::RelinkGlobal(blkno)))
    }
}
