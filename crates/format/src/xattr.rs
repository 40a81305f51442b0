//! Extended attributes, as the kernel's fs/ocfs2/xattr.c lays them out
//! (`struct ocfs2_xattr_header`, `ocfs2_xattr_entry`,
//! `ocfs2_xattr_value_root`, `ocfs2_xattr_block` in ocfs2_fs.h).
//!
//! Attributes live in up to three kinds of storage, each starting with a
//! header and its entries, names and values packed from the far end:
//! - the inode's last `i_xattr_inline_size` bytes (`OCFS2_INLINE_XATTR_FL`);
//! - an attribute block (`i_xattr_loc`, signature `XATTR01`), whose header
//!   follows the block's own 0x30 bytes;
//! - when that block is indexed (`OCFS2_XATTR_INDEXED`), 4096-byte buckets
//!   in clusters an extent tree in the block maps by name hash.
//!
//! A value longer than [`INLINE_SIZE`] lives in clusters of its own, mapped
//! by a value root (an extent list) stored where the value would be.
//!
//! [`mend_header`] checks one storage's header and entries as fsck.ocfs2's
//! xattr.c does, mending a copy as its repairs would; fsck reports what it
//! returns and writes what it mends.

/// `OCFS2_XATTR_INLINE_SIZE`: the longest value kept beside its name.
pub const INLINE_SIZE: u64 = 80;
/// The longest value the kernel sets (`XATTR_SIZE_MAX`).
pub const MAX_VALUE: u64 = 65536;
/// `OCFS2_XATTR_BUCKET_SIZE`, whatever the block size.
pub const BUCKET_SIZE: usize = 4096;
/// `struct ocfs2_xattr_header` without its entries.
pub const HEADER_SIZE: usize = 16;
/// `struct ocfs2_xattr_entry`.
pub const ENTRY_SIZE: usize = 16;
/// The smallest name and value an entry can have (fsck.ocfs2's MIN_VALUE),
/// which bounds how many entries a storage holds.
const MIN_VALUE: usize = 4;
/// `sizeof(struct ocfs2_xattr_value_root)` with one extent record
/// (libocfs2's OCFS2_XATTR_ROOT_SIZE): what a value kept outside takes.
pub const ROOT_SIZE: usize = 16 + 16 + 16;
/// `OCFS2_XATTR_ENTRY_LOCAL` in `xe_type`.
pub const ENTRY_LOCAL: u8 = 0x80;
/// `OCFS2_XATTR_INDEXED` in `xb_flags`.
pub const INDEXED: u16 = 0x1;

/// Offsets in an attribute block.
pub mod block {
    /// `xb_check`.
    pub const CHECK: usize = 0x18;
    /// `xb_flags`.
    pub const FLAGS: usize = 0x20;
    /// `xb_attrs`: the header, or the index tree root.
    pub const ATTRS: usize = 0x30;
    /// `xb_attrs.xb_root.xt_list`: the index tree's extent list.
    pub const TREE_LIST: usize = ATTRS + 16;
}

/// Offsets in a header.
pub mod header {
    pub const COUNT: usize = 0;
    pub const FREE_START: usize = 2;
    pub const NAME_VALUE_LEN: usize = 4;
    pub const NUM_BUCKETS: usize = 6;
}

/// Offset of the extent list in a value root.
pub const VALUE_ROOT_LIST: usize = 16;

/// `OCFS2_XATTR_SIZE`: a name or value's size rounded up to 4 bytes.
pub fn padded(n: u64) -> u64 {
    (n + 3) & !3
}

/// What an entry's name and value take in its storage (libocfs2's
/// `ocfs2_xattr_value_real_size`).
pub fn stored_size(name_len: u8, value_size: u64) -> u64 {
    let name = padded(u64::from(name_len));
    if value_size <= INLINE_SIZE {
        name + padded(value_size)
    } else {
        name + ROOT_SIZE as u64
    }
}

/// The name hash of an entry (`ocfs2_xattr_name_hash`), seeded with the
/// superblock's `s_uuid_hash`. The name is the stored one (without its
/// prefix); its bytes are C `char`s, signed on the kernel's architectures.
pub fn name_hash(uuid_hash: u32, name: &[u8]) -> u32 {
    name.iter().fold(uuid_hash, |h, &c| {
        (h << 5) ^ (h >> 27) ^ (c as i8 as i32 as u32)
    })
}

/// One `struct ocfs2_xattr_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub name_hash: u32,
    pub name_offset: u16,
    pub name_len: u8,
    pub xe_type: u8,
    pub value_size: u64,
}

impl Entry {
    pub fn parse(b: &[u8]) -> Entry {
        Entry {
            name_hash: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            name_offset: u16::from_le_bytes([b[4], b[5]]),
            name_len: b[6],
            xe_type: b[7],
            value_size: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }

    /// Whether the value is kept beside the name.
    pub fn local(&self) -> bool {
        self.xe_type & ENTRY_LOCAL != 0
    }

    /// Where the value (or its value root) starts, from the header.
    pub fn value_offset(&self) -> usize {
        usize::from(self.name_offset) + padded(u64::from(self.name_len)) as usize
    }
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn set16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// Where a header lives: its messages name the kind, and buckets keep
/// their entries sorted by hash and their free-space fields right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Inode,
    Block,
    Bucket,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Inode => "inode",
            Storage::Block => "block",
            Storage::Bucket => "bucket",
        }
    }
}

/// A problem [`mend_header`] found, by fsck.ocfs2's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw {
    pub code: &'static str,
    pub message: String,
}

/// The entries of the header at the start of `area` (its `xh_count`, as far
/// as they fit).
pub fn entries(area: &[u8]) -> Vec<Entry> {
    if area.len() < HEADER_SIZE {
        return Vec::new();
    }
    let count = usize::from(le16(area, header::COUNT));
    (0..count)
        .map(|i| HEADER_SIZE + i * ENTRY_SIZE)
        .take_while(|&o| o + ENTRY_SIZE <= area.len())
        .map(|o| Entry::parse(&area[o..o + ENTRY_SIZE]))
        .collect()
}

/// The offsets (from the header) of the value roots of the entries whose
/// values live outside, for entries whose root fits in `area`.
pub fn value_roots(area: &[u8]) -> Vec<usize> {
    entries(area)
        .iter()
        .filter(|e| !e.local())
        .map(|e| e.value_offset())
        .filter(|&o| o + ROOT_SIZE <= area.len())
        .collect()
}

/// Check the header at the start of `area` (the storage, `area.len()` its
/// size) as fsck.ocfs2 does, and mend `area` as its answers of yes would:
///
/// 1. `xh_count` larger than the entries found (they end at a zero word,
///    at the room the storage has, or in a bucket where the hashes stop
///    rising): the count is lowered (XATTR_COUNT_INVALID);
/// 2. each entry: inside another's name or value (XATTR_ENTRY_INVALID),
///    a name offset past the storage (XATTR_NAME_OFFSET_INVALID), kept
///    beside its name or not against its size (XATTR_LOCATION_INVALID),
///    a name and value that overlap another or run past the storage
///    (XATTR_VALUE_INVALID): the entry is removed (the entries after it
///    move up; names and values stay where they are); a wrong name hash is
///    set (XATTR_HASH_INVALID);
/// 3. in a bucket, `xh_free_start` and `xh_name_value_len` are set from
///    the entries (XATTR_FREE_START_INVALID, XATTR_VALUE_LEN_INVALID).
///
/// Returns the flaws, in that order; `area` is unchanged when there are none.
pub fn mend_header(area: &mut [u8], storage: Storage, uuid_hash: u32) -> Vec<Flaw> {
    let mut flaws = Vec::new();
    let max = area.len();
    if max < HEADER_SIZE {
        return flaws;
    }
    let kind = storage.name();
    let mut flaw = |code: &'static str, message: String| flaws.push(Flaw { code, message });

    // 1. The count.
    let count = usize::from(le16(area, header::COUNT));
    let max_count = (max - HEADER_SIZE) / (ENTRY_SIZE + MIN_VALUE);
    let mut found = 0usize;
    let mut prev_hash = 0u32;
    while found < max_count {
        let o = HEADER_SIZE + found * ENTRY_SIZE;
        let hash = u32::from_le_bytes(area[o..o + 4].try_into().expect("4 bytes"));
        if hash == 0 || (storage == Storage::Bucket && hash < prev_hash) {
            break;
        }
        prev_hash = hash;
        found += 1;
    }
    if count > found {
        flaw(
            "XATTR_COUNT_INVALID",
            format!(
                "attribute {kind} claims {count} entries, {found} are there: count set to {found}"
            ),
        );
        set16(area, header::COUNT, found as u16);
        if found == 0 && storage == Storage::Bucket {
            set16(area, header::FREE_START, BUCKET_SIZE as u16);
            set16(area, header::NAME_VALUE_LEN, 0);
        }
    }

    // 2. The entries, against a map of the bytes used so far.
    let count = usize::from(le16(area, header::COUNT));
    let mut used: Vec<(usize, usize)> = vec![(0, HEADER_SIZE)];
    let fits = |used: &[(usize, usize)], off: usize, len: usize| {
        off + len <= max && used.iter().all(|&(o, l)| off + len <= o || o + l <= off)
    };
    let mut kept: Vec<[u8; ENTRY_SIZE]> = Vec::with_capacity(count);
    for i in 0..count {
        let o = HEADER_SIZE + i * ENTRY_SIZE;
        if !fits(&used, o, ENTRY_SIZE) {
            flaw(
                "XATTR_ENTRY_INVALID",
                format!("attribute {kind}: entry {i} at byte {o} lies in a name or value: removed"),
            );
            continue;
        }
        let mut raw: [u8; ENTRY_SIZE] = area[o..o + ENTRY_SIZE].try_into().expect("16 bytes");
        let e = Entry::parse(&raw);
        if usize::from(e.name_offset) >= max {
            flaw(
                "XATTR_NAME_OFFSET_INVALID",
                format!(
                    "attribute {kind}: entry {i}'s name offset {} is past the storage ({max} bytes): removed",
                    e.name_offset
                ),
            );
            continue;
        }
        if e.local() == (e.value_size > INLINE_SIZE) {
            let (said, kept_where) = if e.local() {
                ("beside its name", "too long for that")
            } else {
                ("outside", "short enough to be kept beside its name")
            };
            flaw(
                "XATTR_LOCATION_INVALID",
                format!(
                    "attribute {kind}: entry {i}'s value is marked {said}, but its {} bytes are {kept_where}: removed",
                    e.value_size
                ),
            );
            continue;
        }
        let len = stored_size(e.name_len, e.value_size) as usize;
        let off = usize::from(e.name_offset);
        if !fits(&used, off, len) {
            flaw(
                "XATTR_VALUE_INVALID",
                format!(
                    "attribute {kind}: entry {i}'s name and value (bytes {off}..{}) overlap others or run past the storage: removed",
                    off + len
                ),
            );
            continue;
        }
        used.push((o, ENTRY_SIZE));
        used.push((off, len));
        let name = &area[off..off + usize::from(e.name_len)];
        let hash = name_hash(uuid_hash, name);
        if hash != e.name_hash {
            flaw(
                "XATTR_HASH_INVALID",
                format!(
                    "attribute {kind}: entry {i}'s name hash is {:#010x}, its name hashes to {hash:#010x}: set",
                    e.name_hash
                ),
            );
            raw[0..4].copy_from_slice(&hash.to_le_bytes());
        }
        kept.push(raw);
    }
    if kept.len() != count {
        // The entries kept move up (as fsck.ocfs2 moves them, the slots
        // after the new count are left as they were: they may lie in a
        // name or value).
        for (i, raw) in kept.iter().enumerate() {
            let o = HEADER_SIZE + i * ENTRY_SIZE;
            area[o..o + ENTRY_SIZE].copy_from_slice(raw);
        }
        set16(area, header::COUNT, kept.len() as u16);
    } else {
        for (i, raw) in kept.iter().enumerate() {
            let o = HEADER_SIZE + i * ENTRY_SIZE;
            area[o..o + 4].copy_from_slice(&raw[0..4]);
        }
    }

    // 3. A bucket's free-space fields.
    if storage == Storage::Bucket {
        let es = entries(area);
        let min = es
            .iter()
            .map(|e| usize::from(e.name_offset))
            .fold(max, usize::min);
        let free = usize::from(le16(area, header::FREE_START));
        if free != min {
            flaw(
                "XATTR_FREE_START_INVALID",
                format!("attribute bucket: free space said to start at {free}, the names and values start at {min}: set"),
            );
            set16(area, header::FREE_START, min as u16);
        }
        let total = es
            .iter()
            .map(|e| stored_size(e.name_len, e.value_size))
            .sum::<u64>() as u16;
        let said = le16(area, header::NAME_VALUE_LEN);
        if said != total {
            flaw(
                "XATTR_VALUE_LEN_INVALID",
                format!("attribute bucket: names and values said to take {said} bytes, they take {total}: set"),
            );
            set16(area, header::NAME_VALUE_LEN, total);
        }
    }
    flaws
}

/// How many of `buckets` (the bytes of consecutive buckets) look like
/// buckets in use, from the first (fsck.ocfs2's guess when the first
/// bucket's `xh_num_buckets` cannot be right).
pub fn count_buckets(buckets: &[u8]) -> usize {
    let max_count = (BUCKET_SIZE - HEADER_SIZE) / (ENTRY_SIZE + MIN_VALUE);
    buckets
        .chunks_exact(BUCKET_SIZE)
        .take_while(|b| {
            let count = usize::from(le16(b, header::COUNT));
            let free = usize::from(le16(b, header::FREE_START));
            let nvl = usize::from(le16(b, header::NAME_VALUE_LEN));
            count < max_count
                && free > count * ENTRY_SIZE
                && free <= BUCKET_SIZE
                && nvl <= BUCKET_SIZE - free
        })
        .count()
}

/// The name prefix of an entry's type index (`xe_type & 0x7f`: the
/// kernel's OCFS2_XATTR_INDEX_*).
pub fn prefix(index: u8) -> &'static str {
    match index {
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        5 => "security.",
        _ => "",
    }
}

/// One extended attribute as read from the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The whole name: the type's prefix, then the stored name.
    pub name: Vec<u8>,
    pub storage: Storage,
    /// The inode, attribute block or first block of the bucket holding it.
    pub blkno: u64,
    /// Whether the value is kept beside the name (else in clusters).
    pub local: bool,
    pub value: Vec<u8>,
}

/// What [`read_all`] found: the attributes it could read, and one line per
/// storage or attribute it could not (naming the block).
#[derive(Debug, Default)]
pub struct Listing {
    pub attributes: Vec<Attribute>,
    pub problems: Vec<String>,
    /// The entry count of the inode's inline area, when it has one.
    pub inline_count: Option<u16>,
    /// The attribute block and its entry count, when it is not an index.
    pub block: Option<(u64, u16)>,
    /// The index block, its tree depth and its record count.
    pub index: Option<(u64, u16, u16)>,
    /// The index's runs of buckets, in tree order: first block, clusters,
    /// and the entry count of each bucket in use.
    pub runs: Vec<(u64, u32, Vec<u16>)>,
}

/// Every extended attribute of `inode`, in the order the kernel lists them:
/// the inode's inline area, then its attribute block or the buckets of its
/// index (in tree order). Damage is passed over and named in `problems`.
pub fn read_all(vol: &crate::Volume, inode: &crate::Inode) -> Listing {
    use crate::blockcheck::{self, CheckAt, CheckResult};
    use crate::ondisk::{dyn_features, DINODE_ID2, XATTR_BLOCK_SIGNATURE};
    let mut out = Listing::default();
    let di = inode.di();
    if di.i_dyn_features.get() & dyn_features::HAS_XATTR == 0 {
        return out;
    }
    let bs = vol.block_size() as usize;
    if di.i_dyn_features.get() & dyn_features::INLINE_XATTR != 0 {
        let size = usize::from(di.i_xattr_inline_size.get());
        if size >= HEADER_SIZE && size <= bs - DINODE_ID2 - 16 {
            let area = &inode.buf[bs - size..];
            out.inline_count = Some(le16(area, header::COUNT));
            read_storage(vol, area, Storage::Inode, inode.blkno, &mut out);
        } else {
            out.problems.push(format!(
                "inode {}: inline attribute size {size} does not fit the block",
                inode.blkno
            ));
        }
    }
    let loc = di.i_xattr_loc.get();
    if loc == 0 {
        return out;
    }
    let xb = match vol.read_meta(loc, CheckAt::XattrBlock) {
        Ok(b) if b.starts_with(XATTR_BLOCK_SIGNATURE) => b,
        Ok(_) => {
            out.problems
                .push(format!("block {loc}: not an attribute block"));
            return out;
        }
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    if le16(&xb, block::FLAGS) & INDEXED == 0 {
        out.block = Some((loc, le16(&xb, block::ATTRS + header::COUNT)));
        read_storage(vol, &xb[block::ATTRS..], Storage::Block, loc, &mut out);
        return out;
    }
    out.index = Some((
        loc,
        le16(&xb, block::TREE_LIST),
        le16(&xb, block::TREE_LIST + 4),
    ));
    let runs = match vol.list_extents(loc, &xb[block::TREE_LIST..]) {
        Ok(r) => r,
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let bpb = vol.blocks_per_bucket();
    let per_cluster = (u64::from(vol.cluster_size() / vol.block_size()) / bpb).max(1);
    for run in runs {
        let mut n = u64::from(run.clusters) * per_cluster;
        let mut counts = Vec::new();
        let mut i = 0;
        while i < n {
            let start = run.blkno + i * bpb;
            let mut bucket = match vol.read_blocks(start, bpb) {
                Ok(b) => b,
                Err(e) => {
                    out.problems.push(e.to_string());
                    break;
                }
            };
            if vol.meta_ecc() {
                if let CheckResult::Bad { .. } =
                    blockcheck::validate(&mut bucket, CheckAt::XattrBucket)
                {
                    out.problems.push(format!(
                        "block {start}: attribute bucket fails its block check"
                    ));
                    i += 1;
                    continue;
                }
            }
            if i == 0 {
                let said = u64::from(le16(&bucket, header::NUM_BUCKETS));
                if said == 0 || said > n {
                    out.problems.push(format!(
                        "block {start}: attribute buckets said in use: {said}, the run holds {n}"
                    ));
                } else {
                    n = said;
                }
            }
            counts.push(le16(&bucket, header::COUNT));
            read_storage(vol, &bucket, Storage::Bucket, start, &mut out);
            i += 1;
        }
        out.runs.push((run.blkno, run.clusters, counts));
    }
    out
}

/// The attributes of one storage (`area`, from its header).
fn read_storage(vol: &crate::Volume, area: &[u8], storage: Storage, blkno: u64, out: &mut Listing) {
    for e in entries(area) {
        let name_at = usize::from(e.name_offset);
        let Some(stored) = area.get(name_at..name_at + usize::from(e.name_len)) else {
            out.problems.push(format!(
                "block {blkno}: attribute name at byte {name_at} runs past its {}",
                storage.name()
            ));
            continue;
        };
        let mut name = prefix(e.xe_type & 0x7f).as_bytes().to_vec();
        name.extend_from_slice(stored);
        let at = e.value_offset();
        let value = if e.value_size > MAX_VALUE {
            Err(format!(
                "block {blkno}: attribute value of {} bytes, more than {MAX_VALUE}",
                e.value_size
            ))
        } else if e.local() {
            let end = at.saturating_add(usize::try_from(e.value_size).unwrap_or(usize::MAX));
            area.get(at..end).map(<[u8]>::to_vec).ok_or_else(|| {
                format!(
                    "block {blkno}: attribute value at byte {at} runs past its {}",
                    storage.name()
                )
            })
        } else {
            area.get(at..at + ROOT_SIZE)
                .ok_or_else(|| {
                    format!(
                        "block {blkno}: attribute value root at byte {at} runs past its {}",
                        storage.name()
                    )
                })
                .and_then(|root| {
                    let extents = vol
                        .list_extents(blkno, &root[VALUE_ROOT_LIST..])
                        .map_err(|e| e.to_string())?;
                    vol.read_extents(&extents, e.value_size)
                        .map_err(|e| e.to_string())
                })
        };
        match value {
            Ok(value) => out.attributes.push(Attribute {
                name,
                storage,
                blkno,
                local: e.local(),
                value,
            }),
            Err(p) => out.problems.push(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with the given entries (name, value), packed from the end
    /// as the kernel packs them.
    fn storage(size: usize, attrs: &[(&[u8], &[u8])], uuid_hash: u32) -> Vec<u8> {
        let mut a = vec![0u8; size];
        let mut end = size;
        for (i, (name, value)) in attrs.iter().enumerate() {
            let len = stored_size(name.len() as u8, value.len() as u64) as usize;
            end -= len;
            a[end..end + name.len()].copy_from_slice(name);
            let v = end + padded(name.len() as u64) as usize;
            a[v..v + value.len()].copy_from_slice(value);
            let o = HEADER_SIZE + i * ENTRY_SIZE;
            a[o..o + 4].copy_from_slice(&name_hash(uuid_hash, name).to_le_bytes());
            a[o + 4..o + 6].copy_from_slice(&(end as u16).to_le_bytes());
            a[o + 6] = name.len() as u8;
            a[o + 7] = ENTRY_LOCAL | 1;
            a[o + 8..o + 16].copy_from_slice(&(value.len() as u64).to_le_bytes());
        }
        set16(&mut a, header::COUNT, attrs.len() as u16);
        a
    }

    #[test]
    fn a_sound_header_is_left_alone() {
        let a = storage(
            256,
            &[(b"one", b"value"), (b"two", b"other value")],
            0x1234_5678,
        );
        let mut b = a.clone();
        assert_eq!(mend_header(&mut b, Storage::Inode, 0x1234_5678), vec![]);
        assert_eq!(a, b);
    }

    #[test]
    fn name_hash_sign_extends_like_c_char() {
        // 0x80 as a signed char is -128: all the upper bits flip.
        assert_eq!(name_hash(0, &[0x80]), 0xffff_ff80);
        assert_eq!(name_hash(0, b"a"), 0x61);
        assert_eq!(name_hash(1, b"a"), (1 << 5) ^ 0x61);
    }

    #[test]
    fn each_flaw_is_mended_as_fsck_ocfs2_mends_it() {
        let h = 7;
        let good = storage(256, &[(b"a", b"1"), (b"b", b"22"), (b"c", b"333")], h);
        // A wrong hash is set.
        let mut a = good.clone();
        a[HEADER_SIZE + ENTRY_SIZE] ^= 1;
        let f = mend_header(&mut a, Storage::Inode, h);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "XATTR_HASH_INVALID");
        assert_eq!(a, good);
        // A count past the entries is lowered.
        let mut a = good.clone();
        set16(&mut a, header::COUNT, 9);
        let f = mend_header(&mut a, Storage::Inode, h);
        assert_eq!(f[0].code, "XATTR_COUNT_INVALID");
        assert_eq!(a, good);
        // A name offset past the storage removes the entry; the next moves up.
        let mut a = good.clone();
        set16(&mut a, HEADER_SIZE + ENTRY_SIZE + 4, 300);
        let f = mend_header(&mut a, Storage::Inode, h);
        assert_eq!(f[0].code, "XATTR_NAME_OFFSET_INVALID");
        let es = entries(&a);
        assert_eq!(es.len(), 2);
        assert_eq!(
            es[1],
            Entry::parse(&good[HEADER_SIZE + 2 * ENTRY_SIZE..][..16])
        );
        // A local value longer than 80 bytes.
        let mut a = good.clone();
        a[HEADER_SIZE + 8] = 200;
        assert_eq!(
            mend_header(&mut a, Storage::Inode, h)[0].code,
            "XATTR_LOCATION_INVALID"
        );
        assert_eq!(entries(&a).len(), 2);
        // Two entries over the same name and value.
        let mut a = good.clone();
        let first: [u8; 2] = a[HEADER_SIZE + 4..HEADER_SIZE + 6].try_into().unwrap();
        a[HEADER_SIZE + ENTRY_SIZE + 4..HEADER_SIZE + ENTRY_SIZE + 6].copy_from_slice(&first);
        let f = mend_header(&mut a, Storage::Inode, h);
        assert_eq!(f[0].code, "XATTR_VALUE_INVALID");
        assert_eq!(entries(&a).len(), 2);
        assert_eq!(mend_header(&mut a, Storage::Inode, h), vec![]);
    }

    #[test]
    fn bucket_counts_and_lengths() {
        let h = 0;
        let mut a = storage(BUCKET_SIZE, &[(b"x", b"1")], h);
        let f = mend_header(&mut a, Storage::Bucket, h);
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            ["XATTR_FREE_START_INVALID", "XATTR_VALUE_LEN_INVALID"]
        );
        assert_eq!(le16(&a, header::FREE_START), (BUCKET_SIZE - 8) as u16);
        assert_eq!(le16(&a, header::NAME_VALUE_LEN), 8);
        assert_eq!(mend_header(&mut a, Storage::Bucket, h), vec![]);
        let two = [a.clone(), vec![0xff; BUCKET_SIZE]].concat();
        assert_eq!(count_buckets(&two), 1);
    }
}
