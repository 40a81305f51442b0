//! Pass 5: suballocator groups that fell off their chains.
//!
//! A chain of an inode allocator that points outside the volume, or at a
//! block that is no descriptor, hides the groups past it. fsck.ocfs2 cuts
//! the chain there, and the inodes of those groups are lost with every
//! entry that names them. Their inodes still say where their group is
//! (`i_suballoc_loc`, or their block less `i_suballoc_bit`): an entry that
//! names a valid inode whose group is a descriptor of its allocator that
//! no chain reaches is kept, the group's blocks are claimed (pass 7 does
//! not free them), and the group goes back on its chain (GROUP_OFF_CHAIN):
//! before the chain group its own links lead to, or after its chain's last
//! group. One group per chain per round; the next round follows the links
//! of what came back.
//!
//! A chain that reaches a block holding no descriptor where such inodes
//! say their group is gets the descriptor rebuilt there as one run (see
//! relink_lost_groups for discontiguous groups): its bit count from the
//! chain list, a bit for each block holding a valid inode of that bit, no
//! next group (what followed comes back as above). The entries naming its
//! inodes stay either way.

use super::*;
use core::mem::offset_of;

impl Checker<'_> {
    /// When block `b` holds a valid inode whose group is a descriptor of
    /// its allocator that no chain reached, that group (recorded for
    /// [`Checker::relink_lost_groups`]).
    pub(super) fn lost_group_of(&mut self, b: u64) -> Option<u64> {
        let di = self.vol.valid_inode_at(b)?;
        let bit = di.i_suballoc_bit.get();
        let g = match di.i_suballoc_loc.get() {
            0 => b.checked_sub(u64::from(bit))?,
            loc => loc,
        };
        if self.seen_groups.contains(&g) {
            return None;
        }
        let alloc = match di.i_suballoc_slot.get() {
            0xFFFF => self.vol.system_inode("global_inode_alloc").ok()?,
            s => self
                .vol
                .system_inode(&slot_file_name("inode_alloc", s))
                .ok()?,
        };
        let Some((chain, bits)) = self.descriptor_of(g, alloc) else {
            // A block the allocator's chain reaches that holds no
            // descriptor, which its inodes say is their group: rebuilt.
            let &(a, _, _) = self.wiped_links.get(&g)?;
            if a != alloc {
                return None;
            }
            let inside = b > g && self.inode_group_bits(alloc).is_some_and(|n| b - g < n);
            *self.wiped_groups.entry(g).or_insert(true) &= inside;
            return Some(g);
        };
        if bit == 0 || bit >= bits {
            return None;
        }
        self.lost_groups.entry(g).or_insert((alloc, chain, bits));
        Some(g)
    }

    /// The blocks a group of inode allocator `alloc` spans: its chain
    /// list's clusters per group times blocks per cluster.
    fn inode_group_bits(&self, alloc: u64) -> Option<u64> {
        let bits = self.vol.chain_group_bits(alloc).ok()?;
        (bits > 1 && bits <= u64::from(u16::MAX)).then_some(bits)
    }

    /// `g`'s chain and bit count when it holds a group descriptor of
    /// allocator `alloc` that names itself and the volume's generation.
    fn descriptor_of(&self, g: u64, alloc: u64) -> Option<(u16, u16)> {
        if g == 0 || g >= self.blocks() {
            return None;
        }
        let buf = self.vol.read_block(g).ok()?;
        let (gd, _) = GroupDesc::read_from_prefix(&buf).ok()?;
        (buf.starts_with(GROUP_DESC_SIGNATURE)
            && gd.bg_blkno.get() == g
            && gd.bg_parent_dinode.get() == alloc
            && gd.bg_generation.get() == self.generation)
            .then(|| (gd.bg_chain.get(), gd.bg_bits.get()))
    }

    /// After pass 5's entries: the root and the system directory when no
    /// chain reached them either, then each lost group claimed and put
    /// back on its chain.
    pub(super) fn relink_lost_groups(&mut self) {
        for b in [self.vol.root_blkno(), self.vol.system_dir_blkno()] {
            if !self.inodes.contains_key(&b) {
                self.lost_group_of(b);
            }
        }
        for (g, inside) in self.wiped_groups.clone() {
            let (alloc, chain, finding) = self.wiped_links[&g];
            // A discontiguous group's runs are written only in its
            // descriptor: one is rebuilt only as a single run, when every
            // inode that names it lies there and the global bitmap marks
            // the run's clusters in use. Otherwise the entries stay and
            // the group is reported (exit 4).
            let bits = self.inode_group_bits(alloc).filter(|&n| {
                let discontig = self.vol.features().has_incompat(incompat::DISCONTIG_BG);
                inside
                    && (!discontig
                        || (g / self.bpc..(g + n).div_ceil(self.bpc))
                            .all(|c| self.bitmap_used.get(c)))
            });
            if let Some(bits) = bits {
                self.claim(g, bits, alloc);
                self.findings[finding].fix = Some(Fix::RebuildInodeGroup {
                    alloc,
                    group: g,
                    chain,
                });
            }
        }
        let lost: Vec<(u64, (u64, u16, u16))> =
            self.lost_groups.iter().map(|(&g, &v)| (g, v)).collect();
        let mut relinked = HashSet::new();
        for (g, (alloc, chain, bits)) in lost {
            self.claim(g, u64::from(bits), alloc);
            let fix = if relinked.insert((alloc, chain)) {
                self.relink_fix(alloc, g, usize::from(chain))
            } else {
                None
            };
            let f = Finding::new(
                "GROUP_OFF_CHAIN",
                Some(g),
                Some(alloc),
                format!("group {g} of allocator inode {alloc} is on none of its chains, and the directories name inodes it holds"),
            );
            self.findings.push(Finding { fix, ..f });
        }
    }

    /// Where lost group `g` of `alloc` goes back: the groups its links lead
    /// to that are lost too come with it; the segment goes before the chain
    /// group its last link names, else after the last group of chain
    /// `chain`.
    fn relink_fix(&self, alloc: u64, g: u64, chain: usize) -> Option<Fix> {
        let chains = self.chain_groups.get(&alloc)?;
        let on_chain = |x: u64| {
            chains
                .iter()
                .enumerate()
                .find_map(|(ci, c)| c.iter().position(|&y| y == x).map(|k| (ci, k)))
        };
        let mut seen = HashSet::new();
        let mut x = g;
        let end = loop {
            if !seen.insert(x) {
                return None;
            }
            let buf = self.vol.read_block(x).ok()?;
            let (gd, _) = GroupDesc::read_from_prefix(&buf).ok()?;
            let next = gd.bg_next_group.get();
            if next == 0 || on_chain(next).is_some() || self.descriptor_of(next, alloc).is_none() {
                break next;
            }
            x = next;
        };
        let next_field = |p: u64| {
            super::pass2::group_field(
                p,
                offset_of!(GroupDesc, bg_next_group),
                8,
                g,
                "bg_next_group",
            )
        };
        if let Some((ci, k)) = on_chain(end).filter(|_| end != 0) {
            return Some(if k == 0 {
                super::pass2::chain_head_field(alloc, ci, g)
            } else {
                next_field(chains[ci][k - 1])
            });
        }
        Some(match chains.get(chain)?.last() {
            None => super::pass2::chain_head_field(alloc, chain, g),
            Some(&last) => next_field(last),
        })
    }
}
