//! Before pass 0: replay the journal of every slot marked dirty, then
//! recover what the kernel recovers for a dead slot (its local alloc and
//! truncate log go back to the global bitmap), then clear the dirty flag.
//!
//! The same code runs for `-y` (writes go to the device) and for `-n` (the
//! volume is opened over an [`ocfs2_format::overlay::Overlay`], so the
//! writes land in memory and the passes check the volume as the replay
//! would leave it).
//!
//! Write order per slot, so that a crash at any point leaves a volume the
//! next run explains and finishes:
//! 1. the replayed blocks (replaying them again is harmless: the log is
//!    unchanged until step 2);
//! 2. the journal superblock, `s_start = 0` (the log is spent);
//! 3. the local alloc's unused window, then the truncate log's ranges, back
//!    to the global bitmap, each structure emptied after its bits are freed
//!    (freeing is idempotent: a rerun frees nothing twice);
//! 4. last, the journal inode without `OCFS2_JOURNAL_DIRTY_FL`. Until then
//!    the slot still reads as needing recovery, and a rerun redoes 3.

use crate::check::Finding;
use anyhow::{Context, Result};
use ocfs2_format::blockcheck::CheckAt;
use ocfs2_format::fs::{slot_file_name, Inode};
use ocfs2_format::jbd2::{self, Damage, Journal};
use ocfs2_format::journal::JBD2_MAGIC;
use ocfs2_format::ondisk::{LocalAlloc, TruncateLog, TruncateRec, DINODE_ID2, JOURNAL_DIRTY_FL};
use ocfs2_format::zerocopy::{FromBytes, IntoBytes};
use ocfs2_format::Volume;
use std::collections::HashSet;

/// Journal superblock offsets written after a replay (big-endian).
const JSB_SEQUENCE: usize = 0x18;
const JSB_START: usize = 0x1C;
const JSB_ERRNO: usize = 0x20;
const JSB_CHECKSUM: usize = 0xFC;

/// What the replay did, for the report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    /// Slots whose journal was replayed (or found with an empty log) and
    /// marked clean.
    pub recovered: Vec<u16>,
    /// Whether the superblock was among the replayed blocks (the kernel
    /// does not journal it; the caller says the passes read the old one).
    pub superblock_replayed: bool,
}

/// Replay and recover every dirty slot. `verify` runs before each batch of
/// writes (the MMP guard's check that slot 0 still holds our marker);
/// `applied` says whether the writes reach the device (`-y`) or an overlay.
pub fn run(
    vol: &Volume,
    verify: &dyn Fn() -> Result<()>,
    applied: bool,
    approve: &mut dyn FnMut(&str) -> bool,
) -> Result<Outcome> {
    let mut r = Replay {
        vol,
        verify,
        applied,
        out: Outcome::default(),
        slot_map: slot_map_blocks(vol),
    };
    for slot in 0..vol.max_slots() {
        // A journal that is missing or unreadable is pass 1's and pass 4's
        // to report; there is nothing here to replay from.
        let Ok(blkno) = vol.system_inode(&slot_file_name("journal", slot)) else {
            continue;
        };
        let Ok(inode) = vol.read_inode(blkno) else {
            continue;
        };
        if inode.di().journal_flags() & JOURNAL_DIRTY_FL != 0
            && approve(&format!(
                "journal:{slot:04} is dirty (a node died with it mounted): replay it"
            ))
        {
            r.slot(slot, inode)
                .with_context(|| format!("replaying journal:{slot:04}"))?;
        }
    }
    Ok(r.out)
}

/// Runs a write while the guard's keep-alive waits.
pub type Exclusive<'a> = dyn Fn(&mut dyn FnMut() -> Result<()>) -> Result<()> + 'a;

/// Give up the slot map entries of the slots recovered here (slot 0 excepted:
/// on a volume with MMP it holds the guard's marker, which the guard puts
/// back), as the kernel's `ocfs2_clear_slot` does after recovering a dead
/// slot. `exclusive` serializes the writes with the guard's keep-alive (slot
/// 0 shares their sector).
pub fn clear_slots(vol: &Volume, recovered: &[u16], exclusive: &Exclusive) -> Result<()> {
    let Ok((_, runs)) = vol.slot_map_layout() else {
        return Ok(());
    };
    let map = vol.read_slot_map_runs(&runs)?;
    let empty = ocfs2_format::slotmap::empty_value(map.format);
    for &slot in recovered.iter().filter(|&&s| s != 0) {
        let Some(entry) = map.slots.get(usize::from(slot)) else {
            continue;
        };
        if entry.legacy_in_use(map.format) {
            exclusive(&mut || {
                vol.write_slot(&runs, slot, empty, 0)
                    .with_context(|| format!("giving up slot {slot} after its recovery"))
            })?;
        }
    }
    Ok(())
}

/// The slot map's device blocks: the kernel never journals them (kmmpd and
/// the slot code write them directly), and a replay must never put an old
/// copy over the MMP marker.
fn slot_map_blocks(vol: &Volume) -> HashSet<u64> {
    let bs = u64::from(vol.block_size());
    vol.slot_map_layout()
        .map(|(_, runs)| runs.iter().map(|&(_, dev, _)| dev / bs).collect())
        .unwrap_or_default()
}

struct Replay<'a> {
    vol: &'a Volume,
    verify: &'a dyn Fn() -> Result<()>,
    applied: bool,
    out: Outcome,
    slot_map: HashSet<u64>,
}

impl Replay<'_> {
    fn add(&mut self, code: &'static str, blkno: u64, inode: u64, message: String, fixed: bool) {
        let mut f = Finding::new(code, Some(blkno), Some(inode), message);
        f.fixed = fixed && self.applied;
        self.out.findings.push(f);
    }

    fn slot(&mut self, slot: u16, mut jino: Inode) -> Result<()> {
        let vol = self.vol;
        let name = slot_file_name("journal", slot);
        let jblk = jino.blkno;
        let bs = vol.block_size();
        let extents = match vol.extents(&jino) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!(
                    "{name} is dirty, but its extent tree cannot be read ({e}): not replayed"
                );
                self.add("JOURNAL_SUPERBLOCK", jblk, jblk, msg, false);
                return Ok(());
            }
        };
        let file_blocks = jino.size() / u64::from(bs);
        let map = |n: u32| vol.map_block(&extents, u64::from(n));
        let mut read = |n: u32| -> std::result::Result<Vec<u8>, String> {
            let p = map(n).ok_or_else(|| format!("journal block {n} is not mapped"))?;
            vol.read_block(p).map_err(|e| e.to_string())
        };
        let sb_at = map(0).unwrap_or(jblk);
        let journal = read(0).map_err(|e| e.to_string()).and_then(|b| {
            Journal::from_superblock(&b, bs, file_blocks)
                .map(|j| (j, b))
                .map_err(|e| e.to_string())
        });
        let (journal, mut jsb) = match journal {
            Ok(x) => x,
            Err(e) => {
                let msg = format!(
                    "{name} is dirty, but its jbd2 superblock is unusable ({e}): not replayed"
                );
                self.add("JOURNAL_SUPERBLOCK", sb_at, jblk, msg, false);
                return Ok(());
            }
        };
        let scan = jbd2::scan(&journal, vol.device_blocks(), &mut read);
        for d in &scan.damage {
            let (code, what) = match d {
                Damage::DataChecksum { .. } => ("JOURNAL_BLOCK_CHECKSUM", String::new()),
                _ => (
                    "JOURNAL_DAMAGED",
                    format!("; transactions from {} on are not replayed", scan.end_tid),
                ),
            };
            // Repaired with the replay: the log is consumed up to the
            // damage and the rest discarded with it (the journal is left
            // empty and clean below).
            self.add(code, sb_at, jblk, format!("{name}: {d}{what}"), true);
        }
        let mut plan = scan.replay_plan();
        let slot_map = &self.slot_map;
        plan.retain(|t, _| !slot_map.contains(t));
        self.out.superblock_replayed |= plan.contains_key(&vol.super_blkno());
        if journal.start != 0 {
            (self.verify)()?;
            for (&target, logged) in &plan {
                let src = map(logged.log_block)
                    .with_context(|| format!("journal block {} is not mapped", logged.log_block))?;
                let mut data = vol.read_block(src)?;
                if logged.escaped {
                    data[..4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
                }
                vol.write_block(target, &data)
                    .with_context(|| format!("writing replayed block {target}"))?;
            }
            vol.device().flush()?;
            // The log is spent: the next transaction id follows the last
            // one the walk reached, as jbd2 leaves it after recovery.
            jsb[JSB_SEQUENCE..JSB_SEQUENCE + 4]
                .copy_from_slice(&scan.end_tid.wrapping_add(1).to_be_bytes());
            jsb[JSB_START..JSB_START + 4].fill(0);
            jsb[JSB_ERRNO..JSB_ERRNO + 4].fill(0);
            if journal.csum_seed.is_some() {
                let sum = jbd2::superblock_checksum(&jsb);
                jsb[JSB_CHECKSUM..JSB_CHECKSUM + 4].copy_from_slice(&sum.to_be_bytes());
            }
            (self.verify)()?;
            vol.write_block(sb_at, &jsb)?;
            vol.device().flush()?;
        }
        let la = self.local_alloc(slot)?;
        let tl = self.truncate_log(slot)?;
        // Last: the slot is clean.
        (self.verify)()?;
        let flags = jino.di().journal_flags() & !JOURNAL_DIRTY_FL;
        let generation = jino.di().journal_recovery_generation().wrapping_add(1);
        jino.di_mut().set_bitmap_used(flags);
        jino.di_mut().set_bitmap_total(generation);
        vol.write_meta(jblk, &mut jino.buf, CheckAt::Inode)?;
        vol.device().flush()?;
        self.out.recovered.push(slot);
        let verb = if self.applied {
            "replayed"
        } else {
            "would be replayed (-n: in memory only)"
        };
        let msg = format!(
            "{name} is dirty: a node died with transactions to replay; {} committed transaction(s), \
             {} block(s) {verb}{}; local alloc: {la} cluster(s) back to the global bitmap; \
             truncate log: {tl} cluster(s) freed",
            scan.transactions.len(),
            plan.len(),
            scan.uncommitted
                .map(|t| format!(" (transaction {t} never committed: dropped)"))
                .unwrap_or_default(),
        );
        self.add("JOURNAL_NEEDS_RECOVERY", jblk, jblk, msg, true);
        Ok(())
    }

    /// Empty the slot's local alloc, giving its unused window back.
    fn local_alloc(&mut self, slot: u16) -> Result<u64> {
        let vol = self.vol;
        let Some(mut ino) = self.system_inode("local_alloc", slot) else {
            return Ok(0);
        };
        let (la, _) = LocalAlloc::read_from_prefix(ino.id2()).expect("id2 holds the header");
        let off = u64::from(la.la_bm_off.get());
        let total = u64::from(ino.di().bitmap_total());
        let size = usize::from(la.la_size.get());
        if off == 0 && total == 0 && ino.di().bitmap_used() == 0 {
            return Ok(0);
        }
        let room = ino.id2().len() - core::mem::size_of::<LocalAlloc>();
        if size > room || total > size as u64 * 8 || off + total > u64::from(vol.clusters()) {
            // Pass 3 reports the damage; a window that cannot be trusted
            // is not freed.
            return Ok(0);
        }
        let bm_at = DINODE_ID2 + core::mem::size_of::<LocalAlloc>();
        let bitmap = &ino.buf[bm_at..bm_at + size];
        let ranges = crate::repair::runs(
            (0..total)
                .filter(|i| bitmap[(i / 8) as usize] & (1 << (i % 8)) == 0)
                .map(|i| off + i),
        );
        (self.verify)()?;
        let freed = ocfs2_format::alloc::free_clusters(vol, &ranges)
            .with_context(|| format!("local_alloc:{slot:04}: giving its window back"))?;
        ino.buf[bm_at..bm_at + size].fill(0);
        ino.buf[DINODE_ID2..DINODE_ID2 + 4].fill(0); // la_bm_off
        ino.di_mut().set_bitmap_used(0);
        ino.di_mut().set_bitmap_total(0);
        vol.write_meta(ino.blkno, &mut ino.buf, CheckAt::Inode)?;
        Ok(freed)
    }

    /// Free the clusters the slot's truncate log holds, then empty it.
    fn truncate_log(&mut self, slot: u16) -> Result<u64> {
        let vol = self.vol;
        let Some(mut ino) = self.system_inode("truncate_log", slot) else {
            return Ok(0);
        };
        let (tl, recs) = TruncateLog::read_from_prefix(ino.id2()).expect("id2 holds the header");
        let used = usize::from(tl.tl_used.get());
        if used == 0 {
            return Ok(0);
        }
        let room = recs.len() / core::mem::size_of::<TruncateRec>();
        if used > usize::from(tl.tl_count.get()) || used > room {
            return Ok(0);
        }
        let clusters = u64::from(vol.clusters());
        let mut ranges = Vec::with_capacity(used);
        for i in 0..used {
            let (r, _) = TruncateRec::read_from_prefix(&recs[i * 8..]).expect("bounds checked");
            let (s, n) = (u64::from(r.t_start.get()), u64::from(r.t_clusters.get()));
            if s + n > clusters {
                return Ok(0); // pass 3: TRUNCATE_REC_RANGE
            }
            ranges.push((s, n));
        }
        (self.verify)()?;
        let freed = ocfs2_format::alloc::free_clusters(vol, &ranges)
            .with_context(|| format!("truncate_log:{slot:04}: freeing its clusters"))?;
        let mut head = tl;
        head.tl_used.set(0);
        let hdr = core::mem::size_of::<TruncateLog>();
        ino.buf[DINODE_ID2..DINODE_ID2 + hdr].copy_from_slice(head.as_bytes());
        ino.buf[DINODE_ID2 + hdr..DINODE_ID2 + hdr + used * 8].fill(0);
        vol.write_meta(ino.blkno, &mut ino.buf, CheckAt::Inode)?;
        Ok(freed)
    }

    fn system_inode(&self, base: &str, slot: u16) -> Option<Inode> {
        let b = self.vol.system_inode(&slot_file_name(base, slot)).ok()?;
        self.vol.read_inode(b).ok()
    }
}
