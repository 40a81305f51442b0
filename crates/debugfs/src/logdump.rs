//! `logdump [SLOT]`: the jbd2 log of a slot's journal as a replay reads it
//! (the kernel's recovery walk, `ocfs2_format::jbd2::scan`): its superblock,
//! the committed transactions from `s_start` with the blocks each writes and
//! the blocks it revokes, a transaction logged but never committed, damage,
//! and what a replay would write home (last copy wins, revokes honoured).

use crate::Outcome;
use anyhow::{bail, Context, Result};
use ocfs2_format::fs::slot_file_name;
use ocfs2_format::jbd2::{self, Journal};
use ocfs2_format::ondisk::JOURNAL_DIRTY_FL;
use ocfs2_format::Volume;
use ocfs2_toolkit::exit;
use serde_json::json;
use std::fmt::Write as _;

pub fn logdump(vol: &Volume, slot: u16) -> Result<Outcome> {
    if slot >= vol.max_slots() {
        bail!("slot {slot}: the volume has {} slots", vol.max_slots());
    }
    let name = slot_file_name("journal", slot);
    let jblk = vol
        .system_inode(&name)
        .with_context(|| format!("looking up {name}"))?;
    let jino = vol.read_inode(jblk)?;
    let dirty = jino.di().journal_flags() & JOURNAL_DIRTY_FL != 0;
    let extents = vol
        .extents(&jino)
        .with_context(|| format!("{name} (inode {jblk}): its extent tree"))?;
    let bs = vol.block_size();
    let file_blocks = jino.size() / u64::from(bs);
    let mut read = |n: u32| -> std::result::Result<Vec<u8>, String> {
        let p = vol
            .map_block(&extents, u64::from(n))
            .ok_or_else(|| format!("journal block {n} is not mapped"))?;
        vol.read_block(p).map_err(|e| e.to_string())
    };
    let sb = read(0).map_err(|e| anyhow::anyhow!("{name}: journal block 0: {e}"))?;
    let j = Journal::from_superblock(&sb, bs, file_blocks).map_err(|e| {
        anyhow::anyhow!("{name} (inode {jblk}): its jbd2 superblock is unusable: {e}")
    })?;
    let scan = jbd2::scan(&j, vol.device_blocks(), &mut read);
    let plan = scan.replay_plan();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{name} (inode {jblk}): {}; log blocks {}..{}, s_start {}, s_sequence {}, compat {:#x}, incompat {:#x}",
        if dirty {
            "marked dirty (a replay is due)"
        } else {
            "clean"
        },
        j.first,
        j.last,
        j.start,
        j.sequence,
        j.compat,
        j.incompat
    );
    if j.start == 0 {
        let _ = writeln!(t, "The log is empty (s_start 0): nothing to replay.");
    }
    for tr in &scan.transactions {
        let _ = writeln!(
            t,
            "Transaction {} (from journal block {}): {} block(s), {} revoke(s)",
            tr.tid,
            tr.start,
            tr.blocks.len(),
            tr.revokes.len()
        );
        for l in &tr.blocks {
            let _ = writeln!(
                t,
                "\tjournal block {:<8} -> block {}{}{}",
                l.log_block,
                l.target,
                if l.escaped { " (escaped)" } else { "" },
                if l.valid {
                    ""
                } else {
                    " (fails its checksum: skipped)"
                }
            );
        }
        for r in &tr.revokes {
            let _ = writeln!(t, "\trevokes block {r}");
        }
    }
    if let Some(u) = scan.uncommitted {
        let _ = writeln!(t, "Transaction {u}: logged, never committed: not replayed");
    }
    for d in &scan.damage {
        let _ = writeln!(t, "Damage: {d}");
    }
    if j.start != 0 {
        let targets: Vec<String> = plan.keys().map(u64::to_string).collect();
        let _ = writeln!(
            t,
            "A replay writes {} block(s){}{}",
            plan.len(),
            if targets.is_empty() { "" } else { ": " },
            targets.join(" ")
        );
    }
    let replay: Vec<_> = plan
        .values()
        .map(|l| json!({ "target": l.target, "log_block": l.log_block, "escaped": l.escaped }))
        .collect();
    Ok(Outcome {
        text: t,
        raw: Vec::new(),
        warnings: Vec::new(),
        json: json!({
            "slot": slot,
            "inode": jblk,
            "dirty": dirty,
            "first": j.first,
            "last": j.last,
            "start": j.start,
            "sequence": j.sequence,
            "compat": j.compat,
            "incompat": j.incompat,
            "transactions": scan.transactions,
            "uncommitted": scan.uncommitted,
            "end_tid": scan.end_tid,
            "damage": scan.damage.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "replay": replay,
        }),
        exit: if scan.damage.is_empty() {
            exit::OK
        } else {
            exit::REQUEST_FAILED
        },
    })
}
