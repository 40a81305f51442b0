//! Feature bits tunefs.ocfs2 turns on or off with a superblock write alone
//! (`--fs-features=`), with its conditions: `append-dio` both ways;
//! `metaecc` off (the blocks keep their checks and trailers, which the
//! kernel then passes over); `indexed-dirs` off (every index taken away
//! first, see [`write`]);
//! `inline-data`, `refcount` and `unwritten` (which needs `sparse`) on;
//! `indexed-dirs` on (the superblock first, then every block directory's
//! trailers and index, `dxtree::build`); `metaecc` on (every directory's
//! trailers, every metadata block's check, `format::metaecc`, then the
//! superblock);
//! `unwritten` off (every unwritten extent of a regular file zeroed, then
//! marked written, see [`write`]); `inline-data` off (every inline file
//! and directory moved to a cluster, `link::uninline`, quota usage
//! recounted);
//! `discontig-bg` on, and off when no suballocator group is
//! discontiguous; `xattr` on (with the 256-byte inline xattr size), and off
//! when no inode has extended attributes; `sparse` on (every regular
//! file's clusters past its size given back first, their tail zeroed, as
//! tunefs.ocfs2's truncate_to_i_size) and off (every hole below a file's
//! size filled with zeroed clusters, then what runs past its size given
//! back). `norefcount`, which copies shared data, is refused by name.
//! One superblock write (backups first, the primary last) is the change.

use anyhow::Result;
use ocfs2_format::dx::uuid_hash;
use ocfs2_format::features::{incompat, ro_compat};
use ocfs2_format::fs::slot_file_name;
use ocfs2_format::ondisk::{dyn_features, SuperBlock, OCFS2_MIN_XATTR_INLINE_SIZE};
use ocfs2_format::quota::QuotaType;
use ocfs2_format::Volume;

/// Which word a bit lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Incompat,
    RoCompat,
}

/// The bits this module turns, by tunefs.ocfs2's name.
const BITS: [(&str, Word, u32); 9] = [
    ("append-dio", Word::Incompat, incompat::APPEND_DIO),
    ("sparse", Word::Incompat, incompat::SPARSE_ALLOC),
    ("inline-data", Word::Incompat, incompat::INLINE_DATA),
    ("refcount", Word::Incompat, incompat::REFCOUNT_TREE),
    ("discontig-bg", Word::Incompat, incompat::DISCONTIG_BG),
    ("xattr", Word::Incompat, incompat::XATTR),
    ("unwritten", Word::RoCompat, ro_compat::UNWRITTEN),
    ("metaecc", Word::Incompat, incompat::META_ECC),
    ("indexed-dirs", Word::Incompat, incompat::INDEXED_DIRS),
];

/// Whether `name` is one of the bits this module turns.
pub fn known(name: &str) -> bool {
    BITS.iter().any(|b| b.0 == name)
}

/// Why `name` cannot be turned `on` (the part tunefs.ocfs2 does by moving
/// data, which this release does not), or None.
pub fn unsupported(name: &str, on: bool) -> Option<&'static str> {
    match (name, on) {
        ("refcount", false) => {
            Some("norefcount: shared clusters would be copied, which this release does not do")
        }
        _ => None,
    }
}

fn is_on(sb: &SuperBlock, w: Word, bit: u32) -> bool {
    match w {
        Word::Incompat => sb.s_feature_incompat.get() & bit != 0,
        Word::RoCompat => sb.s_feature_ro_compat.get() & bit != 0,
    }
}

/// The bits that change: (name, on).
pub fn changes(vol: &Volume, asked: &[(String, bool)]) -> Vec<(&'static str, bool)> {
    BITS.iter()
        .filter_map(|&(name, w, bit)| {
            let want = asked.iter().rev().find(|a| a.0 == name)?.1;
            (is_on(vol.sb(), w, bit) != want).then_some((name, want))
        })
        .collect()
}

/// Why the changes cannot be made, or None.
pub fn refusal(vol: &Volume, changes: &[(&str, bool)]) -> Result<Option<String>> {
    for &(name, on) in changes {
        if let Some(why) = unsupported(name, on) {
            return Ok(Some(why.to_string()));
        }
        match (name, on) {
            ("unwritten", true) => {
                let sparse = vol.features().has_incompat(incompat::SPARSE_ALLOC);
                if !sparse {
                    return Ok(Some(
                        "unwritten extents need sparse files, which are off on this volume".into(),
                    ));
                }
            }
            ("sparse", false) => {
                if let Some(why) = nosparse_refusal(vol, changes)? {
                    return Ok(Some(why));
                }
            }
            ("sparse", true) => {
                for (b, _) in vol.valid_inodes()? {
                    let ino = vol.read_inode(b)?;
                    if ocfs2_format::extend::past_size(vol, &ino).is_some() {
                        if let Some(why) = ocfs2_format::extend::trim_refusal(&ino) {
                            return Ok(Some(format!(
                                "sparse: inode {b} holds clusters past its size to give back, but {why}"
                            )));
                        }
                    }
                }
            }
            ("discontig-bg", false) => {
                if let Some(g) = discontig_group(vol)? {
                    return Ok(Some(format!(
                        "nodiscontig-bg: group {g} is discontiguous (its blocks are not in one run)"
                    )));
                }
            }
            ("indexed-dirs", false) => {
                for d in ocfs2_format::dx::indexed_dirs(vol)? {
                    if let Err(e) = ocfs2_format::dx::index_of(vol, d) {
                        return Ok(Some(format!("noindexed-dirs: directory {d}: {e}")));
                    }
                }
            }
            ("inline-data", false) => {
                if let Some(why) = inline_refusal(vol)? {
                    return Ok(Some(why));
                }
            }
            ("indexed-dirs", true) => {
                if let Some(why) = index_refusal(vol)? {
                    return Ok(Some(why));
                }
            }
            ("metaecc", true) => {
                if let Some(why) = trailer_refusal(vol)? {
                    return Ok(Some(why));
                }
            }
            ("xattr", false) => {
                if let Some(b) = inode_with_xattrs(vol)? {
                    return Ok(Some(format!(
                        "noxattr: inode {b} has extended attributes (remove them first)"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Why `nosparse` cannot be done, or None: unwritten extents on (and not
/// turned off in the same run), a file whose holes or clusters past its
/// size this release cannot handle, or fewer free clusters than the holes
/// need (tunefs.ocfs2 adds the extent blocks it might need; ours refuses a
/// file whose records do not fit its inode instead).
fn nosparse_refusal(vol: &Volume, changes: &[(&str, bool)]) -> Result<Option<String>> {
    if vol.features().ro_compat & ro_compat::UNWRITTEN != 0
        && !changes.contains(&("unwritten", false))
    {
        return Ok(Some(
            "nosparse: unwritten extents are enabled; sparse files cannot be disabled (turn unwritten off too)"
                .into(),
        ));
    }
    let mut need = 0u64;
    for (b, _) in vol.valid_inodes()? {
        let ino = vol.read_inode(b)?;
        let holes = ocfs2_format::extend::holes(vol, &ino)?;
        if !holes.is_empty() {
            if let Some(why) = ocfs2_format::extend::fill_refusal(&ino, holes.len()) {
                return Ok(Some(format!("nosparse: {why}")));
            }
            need += holes.iter().map(|h| h.1).sum::<u64>();
        }
        if ocfs2_format::extend::past_size(vol, &ino).is_some() {
            if let Some(why) = ocfs2_format::extend::trim_refusal(&ino) {
                return Ok(Some(format!("nosparse: {why}")));
            }
        }
    }
    let free = vol.free_cluster_count()?;
    Ok((need > free)
        .then(|| format!("nosparse: filling the holes takes {need} clusters, {free} are free")))
}

/// A suballocator group whose descriptor holds an extent list of runs.
fn discontig_group(vol: &Volume) -> Result<Option<u64>> {
    let mut names = vec!["global_inode_alloc".to_string()];
    for s in 0..vol.max_slots() {
        names.push(slot_file_name("inode_alloc", s));
        names.push(slot_file_name("extent_alloc", s));
    }
    for n in names {
        let Ok(b) = vol.system_inode(&n) else {
            continue;
        };
        let alloc = vol.read_inode(b)?;
        for g in vol.chain_groups(&alloc)? {
            let buf = vol.read_block(g.blkno)?;
            // bg_list.l_next_free_rec (0x140 + 4).
            if buf.len() >= 0x148 && u16::from_le_bytes([buf[0x144], buf[0x145]]) != 0 {
                return Ok(Some(g.blkno));
            }
        }
    }
    Ok(None)
}

/// The inodes whose data is inline (files and directories).
fn inline_inodes(vol: &Volume) -> Result<Vec<(u64, ocfs2_format::ondisk::Dinode)>> {
    Ok(vol
        .valid_inodes()?
        .into_iter()
        .filter(|(_, di)| di.i_dyn_features.get() & dyn_features::INLINE_DATA != 0)
        .collect())
}

/// Why `noinline-data` cannot move every inline inode out, checked before
/// anything is written: a cluster each (the global bitmap's free count),
/// and on a volume with indexed directories an index block each directory
/// and room in one inline index for its names.
fn inline_refusal(vol: &Volume) -> Result<Option<String>> {
    let inodes = inline_inodes(vol)?;
    let free = vol.free_cluster_count()?;
    if inodes.len() as u64 > free {
        return Ok(Some(format!(
            "noinline-data: {} inline inodes need a cluster each, {free} are free",
            inodes.len()
        )));
    }
    if vol.features().has_incompat(incompat::INDEXED_DIRS) {
        let cap = ocfs2_format::dx::inline_capacity(vol.block_size() as usize);
        for (b, di) in &inodes {
            if di.i_mode.get() & 0o170000 != 0o040000 {
                continue;
            }
            let n = vol.dir_entries(&vol.read_inode(*b)?)?.len();
            if n > cap {
                return Ok(Some(format!(
                    "noinline-data: directory {b} has {n} names, more than an inline index holds ({cap}): an index with leaf blocks is not done by this release"
                )));
            }
        }
    }
    Ok(None)
}

/// The directories that get an index: valid block directories (the
/// system ones too, as tunefs.ocfs2 indexes them; inline ones get theirs
/// when the kernel moves them out).
fn block_dirs(vol: &Volume) -> Result<Vec<u64>> {
    Ok(vol
        .valid_inodes()?
        .into_iter()
        .filter(|(_, di)| {
            di.i_mode.get() & 0o170000 == 0o040000
                && di.i_dyn_features.get() & dyn_features::INLINE_DATA == 0
        })
        .map(|(b, _)| b)
        .collect())
}

/// Why `indexed-dirs` cannot index every block directory, checked before
/// anything is written: a directory that cannot be read, more names than
/// one index root lists leaf clusters for, or fewer free clusters than
/// the indexes and the blocks trailers may push out take (counted
/// generously: leaves for half again as many names, a cluster a
/// directory for its trailers).
fn index_refusal(vol: &Volume) -> Result<Option<String>> {
    use ocfs2_format::dxtree::{leaf_capacity, root_records};
    let bs = vol.block_size() as usize;
    let bpc = (vol.cluster_size() / vol.block_size()) as usize;
    let per_cluster = bpc * leaf_capacity(bs);
    let mut need = 0u64;
    for d in block_dirs(vol)? {
        let n = match vol.read_inode(d).and_then(|i| vol.dir_entries(&i)) {
            Ok(es) => es.len(),
            Err(e) => return Ok(Some(format!("indexed-dirs: directory {d}: {e}"))),
        };
        let leaves = if n <= ocfs2_format::dx::inline_capacity(bs) {
            0
        } else {
            (n + n / 2).div_ceil(per_cluster) + 1
        };
        if leaves > root_records(bs) {
            return Ok(Some(format!(
                "indexed-dirs: directory {d} has {n} names, more than an index without extent blocks holds"
            )));
        }
        need += leaves as u64 + u64::from(!vol.meta_ecc());
    }
    let free = vol.free_cluster_count()?;
    if need > free {
        return Ok(Some(format!(
            "indexed-dirs: the indexes and trailers may need {need} clusters, {free} are free"
        )));
    }
    Ok(None)
}

/// Why `metaecc` cannot give every directory its trailers and every
/// metadata block its check, checked before anything is written: a
/// directory or a structure that cannot be read, or fewer free clusters
/// than the names pushed out of the blocks' last 64 bytes may take
/// (counted generously: 64 bytes and the longest entry a block).
fn trailer_refusal(vol: &Volume) -> Result<Option<String>> {
    let bs = u64::from(vol.block_size());
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let mut need = 0u64;
    for d in block_dirs(vol)? {
        let ino = vol.read_inode(d)?;
        if ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
            continue;
        }
        let nblocks = ino.size().div_ceil(bs);
        let blocks = (nblocks * (64 + 268)).div_ceil(bs - 80);
        need += blocks.div_ceil(bpc);
    }
    if let Err(e) = ocfs2_format::metaecc::blocks(vol) {
        return Ok(Some(format!("metaecc: {e}")));
    }
    let free = vol.free_cluster_count()?;
    if need > free {
        return Ok(Some(format!(
            "metaecc: the directory trailers may need {need} clusters, {free} are free"
        )));
    }
    Ok(None)
}

/// A valid inode with extended attributes (inline or in a block).
fn inode_with_xattrs(vol: &Volume) -> Result<Option<u64>> {
    Ok(vol
        .valid_inodes()?
        .into_iter()
        .find(|(_, di)| {
            di.i_dyn_features.get() & (dyn_features::HAS_XATTR | dyn_features::INLINE_XATTR) != 0
        })
        .map(|(b, _)| b))
}

/// Apply the changes to the superblock that will be written.
pub fn apply(sb: &mut SuperBlock, changes: &[(&str, bool)]) {
    for &(name, on) in changes {
        let Some(&(_, w, bit)) = BITS.iter().find(|b| b.0 == name) else {
            continue;
        };
        let word = match w {
            Word::Incompat => &mut sb.s_feature_incompat,
            Word::RoCompat => &mut sb.s_feature_ro_compat,
        };
        let v = word.get();
        word.set(if on { v | bit } else { v & !bit });
        if name == "xattr" {
            sb.s_xattr_inline_size
                .set(if on { OCFS2_MIN_XATTR_INLINE_SIZE } else { 0 });
            // The UUID hash seeds the attribute name hashes (and the index
            // hashes, which keep it when indexed-dirs stays on).
            if sb.s_feature_incompat.get() & incompat::INDEXED_DIRS == 0 {
                let h = if on { uuid_hash(&sb.s_uuid) } else { 0 };
                sb.s_uuid_hash.set(h);
            }
        }
        // New hash seeds come with the feature (and the UUID hash, which
        // xattrs may have set already), as tunefs.ocfs2 draws them.
        if (name, on) == ("indexed-dirs", true) {
            sb.s_uuid_hash.set(uuid_hash(&sb.s_uuid));
            let mut r = [0u8; 12];
            if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
                use std::io::Read;
                let _ = f.read_exact(&mut r);
            }
            for (k, x) in sb.s_dx_seed.iter_mut().enumerate() {
                x.set(u32::from_le_bytes(
                    r[4 * k..4 * k + 4].try_into().expect("4"),
                ));
            }
        }
        // The hash seeds go with the index (the UUID hash stays for xattrs).
        if (name, on) == ("indexed-dirs", false) {
            if sb.s_feature_incompat.get() & incompat::XATTR == 0 {
                sb.s_uuid_hash.set(0);
            }
            for x in sb.s_dx_seed.iter_mut() {
                x.set(0);
            }
        }
    }
}

/// The writes a change needs before the superblock: `noindexed-dirs`
/// takes every directory's index away first (`dx::remove_index`, inode
/// first), as tunefs.ocfs2 does; a crash leaves directories without an
/// index on a volume that still has the feature, which the kernel reads,
/// and blocks nothing uses, which fsck frees.
pub fn write(
    vol: &Volume,
    sb: &SuperBlock,
    changes: &[(&str, bool)],
    verify: &dyn Fn() -> Result<()>,
) -> Result<()> {
    if changes.contains(&("inline-data", false)) {
        for (b, _) in inline_inodes(vol)? {
            verify()?;
            ocfs2_format::link::uninline(vol, b)
                .map_err(|e| anyhow::anyhow!("inode {b}: moving its inline data out: {e}"))?;
        }
        // Quota usage follows the clusters taken (tunefs.ocfs2 charges
        // each owner a cluster).
        recount_quotas(vol, verify)?;
    }
    if changes.contains(&("sparse", true)) {
        // Clusters past a file's size are given back first (tunefs.ocfs2's
        // truncate_to_i_size); the bit comes last, with the superblock.
        let mut changed = false;
        for (b, _) in vol.valid_inodes()? {
            changed |= trim_past_size(vol, b, verify)?;
        }
        if changed {
            recount_quotas(vol, verify)?;
        }
    }
    if changes.contains(&("unwritten", false)) {
        for (b, _) in vol.valid_inodes()? {
            let ino = vol.read_inode(b)?;
            if ocfs2_format::unwritten::candidate(&ino) {
                ocfs2_format::unwritten::make_written(vol, b, &crate::format_verify(verify))
                    .map_err(|e| {
                        anyhow::anyhow!("inode {b}: making its unwritten extents written: {e}")
                    })?;
            }
        }
    }
    if changes.contains(&("sparse", false)) {
        // After the unwritten extents are written (above): each file's
        // holes filled with zeroed clusters, its clusters past its size
        // given back, as tunefs.ocfs2 does; quota usage follows.
        let mut changed = false;
        for (b, _) in vol.valid_inodes()? {
            let ino = vol.read_inode(b)?;
            if !ocfs2_format::extend::holes(vol, &ino)?.is_empty() {
                verify()?;
                ocfs2_format::extend::fill_holes(vol, b)
                    .map_err(|e| anyhow::anyhow!("inode {b}: filling its holes: {e}"))?;
                changed = true;
            }
            changed |= trim_past_size(vol, b, verify)?;
        }
        if changed {
            recount_quotas(vol, verify)?;
        }
    }
    if changes.contains(&("indexed-dirs", false)) {
        for d in ocfs2_format::dx::indexed_dirs(vol)? {
            verify()?;
            ocfs2_format::dx::remove_index(vol, d)
                .map_err(|e| anyhow::anyhow!("directory {d}: taking its index away: {e}"))?;
        }
    }
    if changes.contains(&("metaecc", true)) {
        // Trailers first, then every block's check, then (the caller's
        // last write) the superblock with the bit: until it is on, the
        // trailers read as empty entries and the checks are passed over.
        for d in block_dirs(vol)? {
            verify()?;
            ocfs2_format::dxtree::install_trailers(vol, d)
                .map_err(|e| anyhow::anyhow!("directory {d}: installing its trailers: {e}"))?;
        }
        let list = ocfs2_format::metaecc::blocks(vol)
            .map_err(|e| anyhow::anyhow!("listing the metadata blocks: {e}"))?;
        ocfs2_format::metaecc::write_checks(vol, &list, &crate::format_verify(verify))
            .map_err(|e| anyhow::anyhow!("writing the block checks: {e}"))?;
    }
    if changes.contains(&("indexed-dirs", true)) {
        // The superblock first (the bit, the hash seeds), as tunefs.ocfs2
        // writes it: a crash then leaves directories without an index,
        // which the kernel searches block by block. Then each directory
        // gets its trailers and its index (an index left from before the
        // feature was on cannot be trusted: taken away and built again).
        verify()?;
        vol.write_super_everywhere(sb)
            .map_err(|e| anyhow::anyhow!("writing the superblock: {e}"))?;
        let seed = ocfs2_format::dx::seed(sb);
        for d in block_dirs(vol)? {
            verify()?;
            let ino = vol.read_inode(d)?;
            if ino.dyn_features() & dyn_features::INDEXED_DIR != 0 {
                ocfs2_format::dxtree::drop(vol, d).map_err(|e| {
                    anyhow::anyhow!("directory {d}: taking its old index away: {e}")
                })?;
            }
            ocfs2_format::dxtree::build(vol, d, seed, &|_| true)
                .map_err(|e| anyhow::anyhow!("directory {d}: building its index: {e}"))?;
        }
    }
    Ok(())
}

/// Give back the clusters of inode `b` past its size, if it holds any
/// (`extend::past_size`); returns whether it did.
fn trim_past_size(vol: &Volume, b: u64, verify: &dyn Fn() -> Result<()>) -> Result<bool> {
    let ino = vol.read_inode(b)?;
    let Some(keep) = ocfs2_format::extend::past_size(vol, &ino) else {
        return Ok(false);
    };
    verify()?;
    ocfs2_format::extend::trim_to_size(vol, b, keep)
        .map_err(|e| anyhow::anyhow!("inode {b}: giving back the clusters past its size: {e}"))?;
    Ok(true)
}

/// Quota usage recounted from the inodes, limits kept (after clusters
/// were taken or given back).
fn recount_quotas(vol: &Volume, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    for t in [QuotaType::User, QuotaType::Group] {
        if vol.features().ro_compat & t.feature() != 0 {
            verify()?;
            ocfs2_format::quota::rebuild(vol, t)
                .map_err(|e| anyhow::anyhow!("recounting the quota usage: {e}"))?;
        }
    }
    Ok(())
}
