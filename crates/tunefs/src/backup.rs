//! Backup superblocks (`--backup-super`, `--fs-features=[no]backup-super`),
//! as tunefs.ocfs2 turns them on and off: at 1, 4, 16, 64, 256 GiB and 1 TiB,
//! each in a cluster of its own, marked in use in the global bitmap.
//!
//! On: every backup position inside the volume must be a free cluster
//! (refused otherwise, nothing written). Write order: the clusters are
//! marked in use first, then zeroed, then each backup written (a copy of the
//! new primary), then the primary with the feature. A crash before the
//! primary leaves marked clusters no structure uses (fsck frees them) and
//! copies no superblock names.
//!
//! Off: the primary first, without the feature (the copies stay, unnamed,
//! as tunefs.ocfs2 leaves them), then the clusters are freed. A crash in
//! between leaves marked clusters nothing uses, which fsck frees.

use anyhow::{Context, Result};
use ocfs2_format::alloc;
use ocfs2_format::ondisk::SuperBlock;
use ocfs2_format::Volume;

/// The backup positions inside the volume (not past its clusters).
pub fn positions(vol: &Volume) -> Vec<u64> {
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let end = u64::from(vol.clusters()) * bpc;
    vol.backup_super_blknos()
        .into_iter()
        .filter(|&b| b < end)
        .collect()
}

fn cluster(vol: &Volume, b: u64) -> u64 {
    b / u64::from(vol.cluster_size() / vol.block_size())
}

/// Why backups cannot be turned on, or None.
pub fn refusal(vol: &Volume) -> Result<Option<String>> {
    let at = positions(vol);
    if at.is_empty() {
        return Ok(Some(
            "the volume is smaller than 1 GiB: it has no room for a backup superblock (the first is at 1 GiB)"
                .into(),
        ));
    }
    for b in at {
        let c = cluster(vol, b);
        if alloc::cluster_in_use(vol, c).context("reading the global bitmap")? {
            return Ok(Some(format!(
                "cluster {c}, where the backup superblock at block {b} goes, is in use (tunefs.ocfs2 refuses too): \
                 the backup superblocks need their clusters free"
            )));
        }
    }
    Ok(None)
}

/// Turn backups on: clusters marked, zeroed, copies of `sb` (which has the
/// feature) written, then the primary.
pub fn enable(vol: &Volume, sb: &SuperBlock, verify: &dyn Fn() -> Result<()>) -> Result<Vec<u64>> {
    let at = positions(vol);
    let runs: Vec<(u64, u64)> = at.iter().map(|&b| (cluster(vol, b), 1)).collect();
    verify()?;
    alloc::claim_clusters(vol, &runs).context("marking the backup clusters in use")?;
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let zero = vec![0u8; vol.block_size() as usize];
    verify()?;
    for &(c, _) in &runs {
        for k in 0..bpc {
            vol.write_block(c * bpc + k, &zero)?;
        }
    }
    verify()?;
    vol.write_super_copies(sb, &at)
        .context("writing the backup superblocks")?;
    Ok(at)
}

/// Turn backups off: the primary without the feature (`sb`), then the
/// clusters freed.
pub fn disable(vol: &Volume, sb: &SuperBlock, verify: &dyn Fn() -> Result<()>) -> Result<()> {
    let runs: Vec<(u64, u64)> = positions(vol)
        .iter()
        .map(|&b| (cluster(vol, b), 1))
        .collect();
    verify()?;
    vol.write_super_copies(sb, &[])
        .context("writing the superblock")?;
    verify()?;
    alloc::free_clusters(vol, &runs).context("freeing the backup clusters")?;
    Ok(())
}
