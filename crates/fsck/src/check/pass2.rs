//! Pass 2: chain allocators and their group descriptors (fills `bitmap_used`, `alloc_inodes`, `seen_groups`).

use super::*;

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
}
