//! Repairs after the passes, for the findings that carry a [`Fix`]: which
//! are made ([`decide`]) and in which order ([`apply`]). A repair that
//! changes what the passes see (a record removed, a window emptied) shows
//! its consequences on the next round's check, which lib.rs runs.

use crate::check::Finding;
use crate::fix::Fix;
use crate::problems;
use anyhow::{Context, Result};
use ocfs2_format::alloc;
use ocfs2_format::Volume;

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

/// The distinct fixes `findings` carry, in the order they were found.
fn distinct(findings: &[Finding]) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    for f in findings.iter().filter_map(|f| f.fix) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Ask for each distinct fix the findings carry (`approve(class, question)`,
/// the class being the least safe among the findings it repairs) and drop
/// the declined ones. Returns whether any fix is left.
pub fn decide(
    findings: &mut [Finding],
    approve: &mut dyn FnMut(problems::Repair, &str) -> bool,
) -> bool {
    let mut any = false;
    for fix in distinct(findings) {
        let class = findings
            .iter()
            .filter(|f| f.fix == Some(fix))
            .map(|f| problems::lookup(f.code).map_or(problems::Repair::No, |p| p.repair))
            .min()
            .unwrap_or(problems::Repair::No);
        if approve(class, &fix.question()) {
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
///
/// Order, so that a crash between two writes leaves a volume the next run
/// explains: clusters in use are marked first (nothing in use can then be
/// handed out twice); then the one-block fixes (each block is old or new);
/// then clusters nothing uses are freed and allocator counts recomputed
/// from the bitmaps; then link counts; the superblock last.
/// `dirs_whole` says whether the check read every directory block (link
/// counts are set only then).
pub fn apply(
    vol: &Volume,
    findings: &mut [Finding],
    bitmap_diff: &[(u64, bool)],
    dirs_whole: bool,
    verify: &dyn Fn() -> Result<()>,
) -> Result<Vec<String>> {
    let mut left = Vec::new();
    // Freeing clusters and setting link counts are safe only when the passes
    // read every owner and every directory: a finding left unrepaired may
    // hide one.
    // An improvement declined (not damage) hides nothing.
    let complete = findings
        .iter()
        .all(|f| f.fixed || f.fix.is_some() || !f.damage);
    let mut fixes = distinct(findings);
    // A superblock count or the global bitmap's chains being repaired are
    // a round of their own: the other repairs were computed from them, and
    // the next round reads the new ones.
    let alone = fixes.iter().copied().find(Fix::alone);
    if alone.is_some() || fixes.iter().any(|f| !f.last()) {
        // What comes last waits for a round without other fixes.
        fixes.retain(|f| alone.map_or(!f.last(), |a| *f == a));
        for f in findings.iter_mut() {
            if f.fix.is_some_and(|x| !fixes.contains(&x)) {
                f.fix = None;
            }
        }
    }
    let mark = |findings: &mut [Finding], fix: Fix| {
        for f in findings.iter_mut().filter(|f| f.fix == Some(fix)) {
            f.fixed = true;
        }
    };
    // A global bitmap that cannot be written here (its chains are being
    // repaired in this round) is left to the next round.
    let mut bitmap = fixes.contains(&Fix::GlobalBitmap);
    if bitmap {
        verify()?;
        let claim = runs(bitmap_diff.iter().filter(|d| d.1).map(|d| d.0));
        if let Err(e) = alloc::claim_clusters(vol, &claim) {
            left.push(format!("marking clusters in use in the global bitmap: {e}"));
            bitmap = false;
        }
    }
    let one_block = |f: &Fix| {
        !f.allocates()
            && !f.needs_lost_found()
            && !matches!(
                f,
                Fix::GlobalBitmap | Fix::Recount(_) | Fix::Links(..) | Fix::SuperClusters(_)
            )
    };
    // A removed record moves the ones after it up: the removals in one
    // list come after that block's other fixes, from its last record to
    // its first, so that each index still names the record it was found
    // at.
    let drop_at = |f: &Fix| match *f {
        Fix::DropExtent {
            blkno, list, index, ..
        } => Some((blkno, list, index)),
        Fix::DropChain { blkno, index } => Some((blkno, 0, index)),
        Fix::DropRefcount { blkno, index } => Some((blkno, 0, index)),
        // Insertions too move the records after them: the same order (by
        // position, then the later record first at one index).
        Fix::InsertRefcount { blkno, index, .. } => Some((blkno, 0, index)),
        _ => None,
    };
    let mut drops: Vec<&Fix> = fixes.iter().filter(|f| drop_at(f).is_some()).collect();
    drops.sort_by_key(|f| {
        let (b, l, i) = drop_at(f).expect("a removal");
        let cpos = match f {
            Fix::InsertRefcount { cpos, .. } => *cpos,
            _ => 0,
        };
        (b, l, std::cmp::Reverse(i), std::cmp::Reverse(cpos))
    });
    let ordered = fixes
        .iter()
        .filter(|f| one_block(f) && drop_at(f).is_none())
        .chain(drops);
    for fix in ordered {
        verify()?;
        match fix.write(vol) {
            Ok(()) => mark(findings, *fix),
            Err(e) => left.push(format!("{e:#}")),
        }
    }
    // New directories (a root, lost+found) take their inode and cluster
    // after the one-block fixes, never a cluster the passes found in use;
    // then what goes into lost+found.
    let in_use: std::collections::HashSet<u64> =
        bitmap_diff.iter().filter(|d| d.1).map(|d| d.0).collect();
    let late = fixes.iter().filter(|f| f.allocates());
    for fix in late.chain(fixes.iter().filter(|f| f.needs_lost_found())) {
        verify()?;
        let done = if fix.allocates() {
            fix.allocate(vol, &|c| !in_use.contains(&c))
        } else {
            fix.write(vol)
        };
        match done {
            Ok(()) => mark(findings, *fix),
            Err(e) => left.push(format!("{e:#}")),
        }
    }
    if bitmap {
        let free = runs(bitmap_diff.iter().filter(|d| !d.1).map(|d| d.0));
        let mut freed = true;
        if complete {
            verify()?;
            if let Err(e) = alloc::free_clusters(vol, &free) {
                left.push(format!("freeing unused clusters in the global bitmap: {e}"));
                freed = false;
            }
        } else if !free.is_empty() {
            left.push(format!(
                "{} cluster(s) marked in use that nothing uses are left marked: other damage may hide their owner",
                free.iter().map(|r| r.1).sum::<u64>()
            ));
        }
        if freed && (complete || free.is_empty()) {
            mark(findings, Fix::GlobalBitmap);
        }
    }
    // The global bitmap's counts moved with the bits above; recount it too
    // when its own counts were reported.
    for fix in fixes.iter().filter(|f| matches!(f, Fix::Recount(_))) {
        let Fix::Recount(a) = *fix else { continue };
        verify()?;
        match alloc::recount(vol, a) {
            Ok(_) => mark(findings, *fix),
            Err(e) => left.push(format!("allocator inode {a}: counts not recomputed: {e}")),
        }
    }
    let links: Vec<Fix> = fixes
        .iter()
        .copied()
        .filter(|f| matches!(f, Fix::Links(..)))
        .collect();
    if !links.is_empty() && !complete {
        left.push(format!(
            "{} link count(s) left as they are: other damage may hide entries that name them",
            links.len()
        ));
    } else if !links.is_empty() && !dirs_whole {
        left.push(format!(
            "{} link count(s) left for the next round: some directory blocks could not be read whole",
            links.len()
        ));
    } else {
        for fix in links {
            let Fix::Links(i, n) = fix else { continue };
            verify()?;
            set_links(vol, i, n).with_context(|| format!("setting the link count of inode {i}"))?;
            mark(findings, fix);
        }
    }
    for fix in fixes.iter().filter(|f| matches!(f, Fix::SuperClusters(_))) {
        verify()?;
        match fix.write(vol) {
            Ok(()) => mark(findings, *fix),
            Err(e) => left.push(format!("{e:#}")),
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

/// Rounds of repair at most: a repair can uncover damage it hid (a removed
/// record leaves clusters nobody owns, an emptied window leaves bits to
/// free), which the next round repairs.
const ROUNDS: usize = 5;

/// Whether two findings are the same problem (code and block).
fn same(a: &Finding, b: &Finding) -> bool {
    a.code == b.code && a.blkno == b.blkno
}

/// Decide, apply, check again, up to [`ROUNDS`] times, on the findings of
/// the first check (`report`, whose `bitmap_diff` is `diff`; `dirs_whole`
/// when it read every directory block whole). Each round
/// opens the volume afresh, so a repaired superblock is the one checked.
/// A finding counts as fixed when the last check no longer has it; one
/// found only after a repair is added to the report. Returns what was left
/// and why.
#[allow(clippy::too_many_arguments)]
pub fn rounds(
    dev: &std::sync::Arc<dyn ocfs2_format::BlockIo>,
    report: &mut Vec<Finding>,
    diff: Vec<(u64, bool)>,
    dirs_whole: bool,
    recovered: &std::collections::HashSet<u16>,
    approve: &mut dyn FnMut(problems::Repair, &str) -> bool,
    verify: &dyn Fn() -> Result<()>,
    stop: &dyn Fn() -> bool,
    show: bool,
) -> Result<Vec<String>> {
    let (mut current, mut diff, mut dirs_whole) = (report.clone(), diff, dirs_whole);
    let mut declined: Vec<Fix> = Vec::new();
    let mut wrote = false;
    let mut left = Vec::new();
    for round in 1..=ROUNDS {
        for f in current.iter_mut() {
            if f.fix.is_some_and(|x| declined.contains(&x)) {
                f.fix = None;
            }
        }
        let asked = distinct(&current);
        if asked.is_empty() || stop() {
            break;
        }
        decide(&mut current, approve);
        let kept = distinct(&current);
        declined.extend(asked.into_iter().filter(|x| !kept.contains(x)));
        if kept.is_empty() {
            break;
        }
        if show {
            eprintln!("Repairing (round {round})");
        }
        let vol = Volume::open_for_check(Box::new(dev.clone()))
            .context("opening the volume to repair it")?;
        left = apply(&vol, &mut current, &diff, dirs_whole, verify)?;
        wrote = true;
        let vol = Volume::open_for_check(Box::new(dev.clone()))
            .context("opening the volume to check the repairs")?;
        let mut again = crate::check::Checker::new(&vol);
        again.recovered = recovered.clone();
        again.run(&mut crate::check::Quiet, stop);
        current = std::mem::take(&mut again.findings);
        diff = std::mem::take(&mut again.bitmap_diff);
        dirs_whole = !again.dirs_incomplete;
        for g in &current {
            if !report.iter().any(|f| same(f, g)) {
                let mut g = g.clone();
                g.fix = None;
                report.push(g);
            }
        }
    }
    for f in report.iter_mut() {
        f.fixed = wrote && !current.iter().any(|g| same(f, g));
    }
    // What an earlier round left for later is moot once nothing is left.
    if current.is_empty() {
        left.clear();
    }
    Ok(left)
}
