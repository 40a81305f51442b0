//! `xattr [-v] PATH`: an inode's extended attributes. The summary lines are
//! debugfs.ocfs2's (how many entries each storage holds); `-v` adds each
//! attribute's name, size and value, which debugfs.ocfs2 does not show, and
//! `--json` carries every value whole, in hex.

use crate::Outcome;
use anyhow::{Context, Result};
use ocfs2_format::xattr::{self, Storage};
use ocfs2_format::Volume;
use ocfs2_toolkit::text;
use serde_json::json;
use std::fmt::Write as _;

/// How much of a value `-v` shows before "...".
const SHOWN: usize = 64;

pub fn xattr(vol: &Volume, path: &str, verbose: bool) -> Result<Outcome> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let ino = vol.read_inode(blkno)?;
    let l = xattr::read_all(vol, &ino);
    let mut w = String::new();
    let inline = l.inline_count.unwrap_or(0);
    let _ = writeln!(w, "\tExtended Attributes inline: {inline}");
    if let Some((b, n)) = l.block {
        let _ = writeln!(w, "\tExtended Attributes in block #{b}: {n}");
    }
    let mut in_buckets = 0u64;
    if let Some((b, depth, records)) = l.index {
        let _ = writeln!(
            w,
            "\tExtended Attributes extent tree in index block #{b}  Depth: {depth}  Records: {records}"
        );
        // debugfs.ocfs2 looks the runs up from the highest hash down.
        for (start, clusters, counts) in l.runs.iter().rev() {
            let _ = writeln!(
                w,
                "\tExtended Attributes extent record start at #{start}  Has clusters: {clusters}  Has buckets: {}",
                counts.len()
            );
            for (i, n) in counts.iter().enumerate() {
                let _ = writeln!(w, "\t\tExtended Attributes in bucket #{i}: {n}");
                in_buckets += u64::from(*n);
            }
        }
    }
    let total = u64::from(inline) + u64::from(l.block.map_or(0, |b| b.1)) + in_buckets;
    let _ = writeln!(w, "\n\tExtended attributes in total: {total}");
    if verbose {
        for (i, a) in l.attributes.iter().enumerate() {
            let shown = &a.value[..a.value.len().min(SHOWN)];
            let more = if a.value.len() > SHOWN { "..." } else { "" };
            let _ = writeln!(
                w,
                "\t#{i:<3} {}  {} bytes  {} {}: \"{}\"{more}",
                text(&a.name),
                a.value.len(),
                a.storage.name(),
                a.blkno,
                text(shown)
            );
        }
    }
    let attrs: Vec<_> = l
        .attributes
        .iter()
        .map(|a| {
            json!({
                "name": text(&a.name),
                "size": a.value.len(),
                "storage": a.storage.name(),
                "block": a.blkno,
                "local": a.local,
                "value_hex": a.value.iter().fold(String::new(), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                }),
            })
        })
        .collect();
    let count = |s: Storage| l.attributes.iter().filter(|a| a.storage == s).count();
    let json = json!({
        "inode": blkno,
        "total": total,
        "inline": count(Storage::Inode),
        "in_block": count(Storage::Block),
        "in_buckets": count(Storage::Bucket),
        "attributes": attrs,
        "unreadable": l.problems,
    });
    Ok(Outcome::passing_over(w, json, &l.problems))
}
