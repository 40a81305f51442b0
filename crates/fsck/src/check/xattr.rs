//! Pass 3, per inode with `OCFS2_HAS_XATTR_FL`: its extended attributes,
//! as fsck.ocfs2's xattr.c checks them. Each storage's header and entries
//! go through `xattr::mend_header` (its findings share one repair: the
//! storage mended as a whole); the clusters of values kept outside and of
//! an indexed block's buckets are walked as extent trees (pass 3's
//! [`Checker::walk`]), so that they are claimed and pass 7 does not take
//! them for free.

use super::pass3::ListAt;
use super::*;
use core::mem::offset_of;
use ocfs2_format::xattr::{self, block, header, Storage};

impl Checker<'_> {
    pub(super) fn check_xattrs(&mut self, ino: &Inode) {
        let b = ino.blkno;
        let bs = self.bs as usize;
        let di = *ino.di();
        if ino.dyn_features() & dyn_features::INLINE_XATTR != 0 {
            let size = usize::from(di.i_xattr_inline_size.get());
            // The inline area sits at the block's end, after id2's header.
            if size >= xattr::HEADER_SIZE && size <= bs - DINODE_ID2 - 16 {
                let off = bs - size;
                self.check_storage(b, b, off, &ino.buf[off..], CheckAt::Inode, Storage::Inode);
            }
        }
        let loc = di.i_xattr_loc.get();
        if loc != 0 {
            self.check_xattr_block(ino, loc);
        }
    }

    /// The attribute block `loc` of inode `ino`.
    fn check_xattr_block(&mut self, ino: &Inode, loc: u64) {
        let b = ino.blkno;
        let bs = self.bs as usize;
        let drop_loc = inode_xattr_loc_fix(b);
        if loc >= self.blocks() || loc <= SUPER_BLOCK_BLKNO {
            self.add_fix(
                "XATTR_BLOCK_INVALID",
                Some(b),
                None,
                format!("inode {b}: attribute block {loc} is outside the volume"),
                drop_loc,
            );
            return;
        }
        let Some(buf) = self.meta(loc, CheckAt::XattrBlock, Some(b)) else {
            return;
        };
        if !buf.starts_with(XATTR_BLOCK_SIGNATURE) {
            self.add_fix(
                "XATTR_BLOCK_INVALID",
                Some(loc),
                Some(b),
                format!("inode {b}: block {loc} is not an attribute block (bad signature)"),
                drop_loc,
            );
            return;
        }
        let flags = u16::from_le_bytes([buf[block::FLAGS], buf[block::FLAGS + 1]]);
        if flags & xattr::INDEXED == 0 {
            self.check_storage(
                b,
                loc,
                block::ATTRS,
                &buf[block::ATTRS..],
                CheckAt::XattrBlock,
                Storage::Block,
            );
            return;
        }
        // An index: its tree maps name hashes to runs of buckets.
        let list = ListAt {
            blkno: loc,
            off: block::TREE_LIST,
            at: CheckAt::XattrBlock,
        };
        let per_xb = (bs - block::TREE_LIST - 16) / 16;
        let (el, recs) = match parse_extent_list(loc, &buf[block::TREE_LIST..], "attribute index") {
            Ok(x) => x,
            Err(e) => {
                self.add_fix(
                    "EXTENT_LIST_COUNT",
                    Some(loc),
                    Some(b),
                    e.to_string(),
                    list.field(2, per_xb as u64, "l_count"),
                );
                return;
            }
        };
        if usize::from(el.l_count.get()) != per_xb {
            self.add_fix(
                "EXTENT_LIST_COUNT",
                Some(loc),
                Some(b),
                format!("attribute index {loc}: l_count {}", el.l_count.get()),
                list.field(2, per_xb as u64, "l_count"),
            );
        }
        let leaves = self.walk_xattr_tree(b, list, el.l_tree_depth.get(), &recs, true);
        for (start, clusters) in leaves {
            self.check_buckets(b, start, clusters);
        }
    }

    /// The buckets of one run (`clusters` clusters from block `start`): the
    /// first says how many are in use.
    fn check_buckets(&mut self, owner: u64, start: u64, clusters: u64) {
        let bpb = self.vol.blocks_per_bucket();
        let per_cluster = (self.bpc / bpb).max(1);
        let most = clusters * per_cluster;
        let read = |c: &mut Self, i: u64| -> Option<Vec<u8>> {
            let at = start + i * bpb;
            let mut buf = c.vol.read_blocks(at, bpb).ok()?;
            if c.vol.meta_ecc() {
                if let CheckResult::Bad {
                    stored_crc,
                    computed_crc,
                } = blockcheck::validate(&mut buf, CheckAt::XattrBucket)
                {
                    // Only a bucket whose header holds together gets its
                    // check recomputed.
                    let sane = xattr::count_buckets(&buf) == 1;
                    let f = Finding::new(
                        "BLOCK_CHECK",
                        Some(at),
                        Some(owner),
                        format!("attribute bucket: block check fails: stored crc {stored_crc:#010x}, computed {computed_crc:#010x}"),
                    );
                    c.findings.push(Finding {
                        fix: sane.then_some(Fix::Recheck {
                            blkno: at,
                            at: CheckAt::XattrBucket,
                        }),
                        ..f
                    });
                }
            }
            Some(buf)
        };
        let Some(mut first) = read(self, 0) else {
            return;
        };
        let said = u64::from(u16::from_le_bytes([
            first[header::NUM_BUCKETS],
            first[header::NUM_BUCKETS + 1],
        ]));
        let n = if said == 0 || said > most {
            let mut all = first.clone();
            for i in 1..most {
                match read(self, i) {
                    Some(x) => all.extend_from_slice(&x),
                    None => break,
                }
            }
            let found = xattr::count_buckets(&all) as u64;
            // fsck.ocfs2 empties a first bucket that does not look like one.
            let value = if found == 0 {
                let nvl = u16::from_le_bytes([
                    first[header::NAME_VALUE_LEN],
                    first[header::NAME_VALUE_LEN + 1],
                ]);
                (xattr::BUCKET_SIZE as u64) << 16 | u64::from(nvl) << 32 | 1 << 48
            } else {
                let mut v = [0u8; 8];
                v.copy_from_slice(&first[..8]);
                u64::from_le_bytes(v) & !(0xffff << 48) | found << 48
            };
            self.add_fix(
                "XATTR_BUCKET_COUNT_INVALID",
                Some(start),
                Some(owner),
                format!(
                    "attribute buckets at block {start}: the first says {said} in use, {} are",
                    found.max(1)
                ),
                Set::fix(
                    start,
                    0,
                    8,
                    value,
                    CheckAt::XattrBucket,
                    "the first bucket's header",
                ),
            );
            if found == 0 {
                return;
            }
            first[..8].copy_from_slice(&value.to_le_bytes());
            found
        } else {
            said
        };
        for i in 0..n {
            let buf = if i == 0 {
                Some(first.clone())
            } else {
                read(self, i)
            };
            let Some(buf) = buf else { break };
            self.check_storage(
                owner,
                start + i * bpb,
                0,
                &buf,
                CheckAt::XattrBucket,
                Storage::Bucket,
            );
        }
    }

    /// One storage: `area` is its bytes, from its header, found at byte
    /// `off` of block `blkno` (of the bucket starting there).
    fn check_storage(
        &mut self,
        owner: u64,
        blkno: u64,
        off: usize,
        area: &[u8],
        at: CheckAt,
        storage: Storage,
    ) {
        let uuid_hash = self.vol.sb().s_uuid_hash.get();
        let mut mended = area.to_vec();
        let fix = Fix::MendXattr {
            blkno,
            off: off as u16,
            len: area.len() as u16,
            at,
            storage,
        };
        let flaws = xattr::mend_header(&mut mended, storage, uuid_hash);
        let mended_whole = flaws.is_empty();
        for flaw in flaws {
            self.add_fix(flaw.code, Some(blkno), Some(owner), flaw.message, fix);
        }
        // The values kept outside, as the repair leaves the entries.
        for root in xattr::value_roots(&mended) {
            let list_off = root + xattr::VALUE_ROOT_LIST;
            let list = ListAt {
                blkno,
                off: off + list_off,
                at,
            };
            // A value root holds one record (the kernel's
            // ocfs2_xattr_value_root sets l_count to 1): room for more would
            // let the kernel write them over the entries that follow. The
            // header goes back to one record, set only once the storage's
            // header is whole (the next round otherwise); the record the
            // root can hold is walked either way, so that its clusters stay
            // claimed.
            let raw = &mended[list_off..];
            let (el, rest) = ExtentList::read_from_prefix(raw).expect("a value root is 48 bytes");
            let (count, used) = (el.l_count.get(), el.l_next_free_rec.get());
            let fix = if count != 1 {
                Some((
                    "EXTENT_LIST_COUNT",
                    list.field(offset_of!(ExtentList, l_count), 1, "l_count"),
                ))
            } else if used > 1 {
                let filled = super::pass2::filled_records(rest, 1);
                Some((
                    "EXTENT_LIST_FREE",
                    list.field(
                        offset_of!(ExtentList, l_next_free_rec),
                        filled as u64,
                        "l_next_free_rec",
                    ),
                ))
            } else {
                None
            };
            if let Some((code, fix)) = fix {
                let f = Finding::new(
                    code,
                    Some(blkno),
                    Some(owner),
                    format!(
                        "attribute value root at byte {}: l_count {count}, l_next_free_rec {used} (it holds one record)",
                        off + root
                    ),
                );
                self.findings.push(Finding {
                    fix: mended_whole.then_some(fix),
                    ..f
                });
            }
            let recs: Vec<ExtentRec> = if used >= 1 {
                ExtentRec::read_from_prefix(rest)
                    .map(|(r, _)| vec![r])
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            self.walk_xattr_tree(owner, list, el.l_tree_depth.get(), &recs, false);
        }
    }

    /// Walk an attribute tree (a value's, or an index's when `index`: its
    /// records are keyed by name hash, not by cluster) and claim its
    /// clusters for `owner`; returns its leaf runs (first block, clusters).
    fn walk_xattr_tree(
        &mut self,
        owner: u64,
        list: ListAt,
        depth: u16,
        recs: &[ExtentRec],
        index: bool,
    ) -> Vec<(u64, u64)> {
        // The inode's own walk keeps these; an attribute tree has its own.
        let saved = (self.last_eb, self.no_holes, self.hash_keyed);
        self.no_holes = false;
        self.hash_keyed = index;
        self.leaf_runs = Some(Vec::new());
        let (mut total, mut max_end, mut seen) = (0, 0, HashSet::new());
        self.walk(
            owner,
            list,
            depth,
            recs,
            &mut total,
            &mut max_end,
            &mut seen,
            0,
        );
        (self.last_eb, self.no_holes, self.hash_keyed) = saved;
        self.leaf_runs.take().unwrap_or_default()
    }
}

/// The repair of an attribute block that cannot be read as one: the inode
/// forgets it (`i_xattr_loc` 0), as fsck.ocfs2 does.
fn inode_xattr_loc_fix(b: u64) -> Fix {
    Set::fix(
        b,
        core::mem::offset_of!(Dinode, i_xattr_loc),
        8,
        0,
        CheckAt::Inode,
        "i_xattr_loc",
    )
}
