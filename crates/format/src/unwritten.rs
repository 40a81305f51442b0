//! Unwritten extents made written, as tunefs.ocfs2 does before it turns
//! the `unwritten` feature off: each extent's clusters are zeroed on disk,
//! then its record loses the flag. An unwritten extent reads as zeros, so a
//! crash between the two leaves the same bytes either way.
//!
//! Unlike tunefs.ocfs2, which walks only the clusters below `i_size`, every
//! leaf record is cleared, preallocation past the end of a file included:
//! a volume without the feature must hold no unwritten record (fsck's
//! EXTENT_MARKED_UNWRITTEN).

use crate::blockcheck::CheckAt;
use crate::error::{Error, Result};
use crate::fs::{parse_extent_list, Inode, Volume};
use crate::ondisk::{inode_flags, DINODE_ID2, EXT_UNWRITTEN};

/// Offset of an extent block's list (`h_list`).
const EB_LIST: usize = 0x30;
/// Size of an extent list header and of a record.
const HDR: usize = 16;
const REC: usize = 16;
/// Offset of `e_flags` in a record.
const E_FLAGS: usize = 7;
/// Zeros written at a time.
const CHUNK: u64 = 1 << 20;
/// The deepest tree walked (the kernel's limit is 4, with slack).
const MAX_DEPTH: u16 = 8;

/// Regular files, not system files, with their data in extents: the ones
/// tunefs.ocfs2 clears.
pub fn candidate(ino: &Inode) -> bool {
    ino.mode() & 0o170000 == 0o100000
        && ino.flags() & inode_flags::SYSTEM == 0
        && ino.flags() & inode_flags::VALID != 0
        && ino.has_extent_list()
}

/// Make every unwritten extent of file `blkno` written: its clusters
/// zeroed, then the flag cleared in the block that holds the record (the
/// inode or a leaf extent block). `verify` runs before each write (the MMP
/// guard). Returns the extents made written.
pub fn make_written(vol: &Volume, blkno: u64, verify: &dyn Fn() -> Result<()>) -> Result<u64> {
    let ino = vol.read_inode(blkno)?;
    if !ino.has_extent_list() {
        return Ok(0);
    }
    let mut buf = ino.buf.clone();
    walk(
        vol,
        blkno,
        &mut buf,
        DINODE_ID2,
        CheckAt::Inode,
        MAX_DEPTH,
        verify,
    )
}

/// The list at `at` in block `blkno` (already read into `buf`).
fn walk(
    vol: &Volume,
    blkno: u64,
    buf: &mut [u8],
    at: usize,
    check: CheckAt,
    budget: u16,
    verify: &dyn Fn() -> Result<()>,
) -> Result<u64> {
    let (el, recs) = parse_extent_list(blkno, &buf[at..], "extent list")?;
    let depth = el.l_tree_depth.get();
    if depth > 0 {
        if budget == 0 {
            return Err(Error::corrupt(blkno, "extent tree too deep"));
        }
        let mut n = 0;
        for r in recs.iter().filter(|r| r.e_blkno.get() != 0) {
            let child = r.e_blkno.get();
            let mut eb = vol.read_extent_block(child)?;
            n += walk(
                vol,
                child,
                &mut eb,
                EB_LIST,
                CheckAt::ExtentBlock,
                budget - 1,
                verify,
            )?;
        }
        return Ok(n);
    }
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let bs = u64::from(vol.block_size());
    let mut n = 0;
    for (i, r) in recs.iter().enumerate() {
        if r.flags() & EXT_UNWRITTEN == 0 || r.leaf_clusters() == 0 {
            continue;
        }
        let first = r.e_blkno.get();
        let clusters = u64::from(r.leaf_clusters());
        // Zeros go only where the record names clusters of the volume.
        if first % bpc != 0 || first / bpc + clusters > u64::from(vol.clusters()) {
            return Err(Error::corrupt(
                blkno,
                format!(
                    "extent record {i} names blocks {first}+{} outside the volume's clusters",
                    clusters * bpc
                ),
            ));
        }
        let bytes = clusters * bpc * bs;
        let zeros = vec![0u8; CHUNK.min(bytes) as usize];
        let mut done = 0;
        while done < bytes {
            let len = (bytes - done).min(CHUNK) as usize;
            verify()?;
            vol.device().write_at(first * bs + done, &zeros[..len])?;
            done += len as u64;
        }
        vol.device().flush()?;
        buf[at + HDR + i * REC + E_FLAGS] &= !EXT_UNWRITTEN;
        verify()?;
        vol.write_meta(blkno, buf, check)?;
        n += 1;
    }
    Ok(n)
}
