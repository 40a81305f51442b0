//! Repairs after the passes, for the findings that carry a [`Fix`]. Every
//! repair only makes on-disk counts and bitmaps agree with what the passes
//! found, so all of them are safe for preen (`-p`).
//!
//! Order, so that a crash at any point leaves a volume the next run
//! explains and repairs: clusters in use are marked in the global bitmap
//! first (after that nothing in use can be handed out twice), then clusters
//! nothing uses are freed, then each allocator's counts are recomputed from
//! its bitmaps. Each step is idempotent; a crash between two steps leaves
//! counts that disagree with bitmaps, which the next run repairs.

use crate::check::{Finding, Fix};
use crate::problems;
use anyhow::{Context, Result};
use ocfs2_format::alloc;
use ocfs2_format::Volume;
use std::collections::BTreeSet;

/// Runs of consecutive clusters: (start, count).
pub(crate) fn runs(clusters: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for c in clusters {
        match out.last_mut() {
            Some((s, n)) if *s + *n == c => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

/// Ask for each distinct fix the findings carry (`approve(class, question)`)
/// and drop the declined ones. Returns whether any fix is left.
pub fn decide(
    findings: &mut [Finding],
    approve: &mut dyn FnMut(problems::Repair, &str) -> bool,
) -> bool {
    let fixes: BTreeSet<(u8, u64, u32)> = findings
        .iter()
        .filter_map(|f| match f.fix {
            Some(Fix::GlobalBitmap) => Some((0, 0, 0)),
            Some(Fix::Recount(a)) => Some((1, a, 0)),
            Some(Fix::Links(i, n)) => Some((2, i, n)),
            None => None,
        })
        .collect();
    let mut any = false;
    for (kind, a, n) in fixes {
        let (fix, question) = match kind {
            0 => (
                Fix::GlobalBitmap,
                "the global bitmap disagrees with the clusters in use: make it agree".to_string(),
            ),
            1 => (
                Fix::Recount(a),
                format!(
                    "the counts of allocator inode {a} disagree with its bitmaps: recompute them"
                ),
            ),
            _ => (
                Fix::Links(a, n),
                format!("inode {a}: set its link count to the {n} entries that name it"),
            ),
        };
        let class = findings
            .iter()
            .filter(|f| f.fix == Some(fix))
            .map(|f| problems::lookup(f.code).map_or(problems::Repair::No, |p| p.repair))
            .min_by_key(|r| *r == problems::Repair::Safe)
            .unwrap_or(problems::Repair::No);
        if approve(class, &question) {
            any = true;
        } else {
            for f in findings.iter_mut().filter(|f| f.fix == Some(fix)) {
                f.fix = None;
            }
        }
    }
    any
}

/// Apply the fixes of `findings`, marking each one repaired. `verify` runs
/// before each write (the MMP guard's check). Returns what was left and why,
/// one line each.
pub fn apply(
    vol: &Volume,
    findings: &mut [Finding],
    bitmap_diff: &[(u64, bool)],
    verify: &dyn Fn() -> Result<()>,
) -> Result<Vec<String>> {
    let mut left = Vec::new();
    // Freeing clusters and setting link counts are safe only when the passes
    // read every owner and every directory: any finding this release cannot
    // repair may hide one.
    let complete = findings
        .iter()
        .all(|f| f.fixed || problems::repairable(f.code));
    if findings.iter().any(|f| f.fix == Some(Fix::GlobalBitmap)) {
        let may_free = complete;
        verify()?;
        let claim = runs(bitmap_diff.iter().filter(|d| d.1).map(|d| d.0));
        alloc::claim_clusters(vol, &claim)
            .context("marking clusters in use in the global bitmap")?;
        let free = runs(bitmap_diff.iter().filter(|d| !d.1).map(|d| d.0));
        if may_free {
            verify()?;
            alloc::free_clusters(vol, &free)
                .context("freeing unused clusters in the global bitmap")?;
        } else if !free.is_empty() {
            left.push(format!(
                "{} cluster(s) marked in use that nothing uses are left marked: other damage may hide their owner",
                free.iter().map(|r| r.1).sum::<u64>()
            ));
        }
        for f in findings
            .iter_mut()
            .filter(|f| f.fix == Some(Fix::GlobalBitmap))
        {
            f.fixed = may_free || free.is_empty();
        }
    }
    let allocs: BTreeSet<u64> = findings
        .iter()
        .filter_map(|f| match f.fix {
            Some(Fix::Recount(a)) => Some(a),
            _ => None,
        })
        .collect();
    // The global bitmap's counts moved with the bits above; recount it too
    // when its own counts were reported.
    for a in allocs {
        verify()?;
        match alloc::recount(vol, a) {
            Ok(_) => {
                for f in findings
                    .iter_mut()
                    .filter(|f| f.fix == Some(Fix::Recount(a)))
                {
                    f.fixed = true;
                }
            }
            Err(e) => left.push(format!("allocator inode {a}: counts not recomputed: {e}")),
        }
    }
    let links: Vec<(u64, u32)> = findings
        .iter()
        .filter_map(|f| match f.fix {
            Some(Fix::Links(i, n)) => Some((i, n)),
            _ => None,
        })
        .collect();
    if !links.is_empty() && !complete {
        left.push(format!(
            "{} link count(s) left as they are: other damage may hide entries that name them",
            links.len()
        ));
    } else {
        for (i, n) in links {
            verify()?;
            set_links(vol, i, n).with_context(|| format!("setting the link count of inode {i}"))?;
            for f in findings
                .iter_mut()
                .filter(|f| f.fix == Some(Fix::Links(i, n)))
            {
                f.fixed = true;
            }
        }
    }
    vol.device().flush()?;
    Ok(left)
}

/// `i_links_count` and `i_links_count_hi` of inode `blkno` to `n`.
fn set_links(vol: &Volume, blkno: u64, n: u32) -> Result<()> {
    let mut ino = vol.read_inode(blkno)?;
    let di = ino.di_mut();
    di.i_links_count.set(n as u16);
    di.i_links_count_hi.set((n >> 16) as u16);
    vol.write_meta(
        blkno,
        &mut ino.buf,
        ocfs2_format::blockcheck::CheckAt::Inode,
    )?;
    Ok(())
}
