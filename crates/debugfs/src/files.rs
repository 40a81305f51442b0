//! Requests that copy a file's data out (`cat`, `dump [-p]`) and that name
//! inodes by path (`findpath`, `ncheck`), as debugfs.ocfs2 offers them.
//! They only read the volume: they work whatever the MMP state.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use ocfs2_format::ondisk::EXT_UNWRITTEN;
use ocfs2_format::{Inode, Volume};
use ocfs2_toolkit::exit;
use serde_json::json;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::os::unix::fs::FileExt;

/// Bytes read from the device at a time.
const CHUNK: u64 = 1 << 20;
/// The largest file `cat` shows (it holds the file in memory).
const CAT_MAX: u64 = 1 << 30;
/// The longest symbolic link target (`PATH_MAX`).
const LINK_MAX: u64 = 4096;

/// Call `put(offset, bytes)` with every run of file `ino` that holds data
/// within its size: its inline data, or what its written extents map.
/// Holes and unwritten extents are left out: they read as zeros.
fn each_run(
    vol: &Volume,
    ino: &Inode,
    put: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let size = ino.size();
    if ino.is_inline() {
        let d = ino.inline_data()?;
        return put(0, &d[..d.len().min(size as usize)]);
    }
    // A fast symbolic link keeps its target in the inode (no clusters).
    if ino.mode() & 0o170000 == 0o120000 && ino.di().i_clusters.get() == 0 {
        let id2 = ino.id2();
        let n = id2.len().min(size as usize);
        return put(0, &id2[..n]);
    }
    let cs = u64::from(vol.cluster_size());
    let bs = u64::from(vol.block_size());
    for e in vol.extents(ino)? {
        if e.flags & EXT_UNWRITTEN != 0 {
            continue;
        }
        let start = u64::from(e.cpos) * cs;
        if start >= size {
            continue;
        }
        let len = (u64::from(e.clusters) * cs).min(size - start);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            let mut buf = vec![0u8; n as usize];
            let at = (e.blkno + done / bs) * bs;
            vol.device().read_at(at, &mut buf).with_context(|| {
                format!(
                    "reading block {} of inode {}",
                    e.blkno + done / bs,
                    ino.blkno
                )
            })?;
            put(start + done, &buf)?;
            done += n;
        }
    }
    Ok(())
}

/// Write `bytes` at `off` in `f`, leaving out every 4 KiB piece that is all
/// zeros (the file is sized afterwards, so those read as zeros: holes, as
/// `cp --sparse` leaves them). Returns the bytes written.
fn write_sparse(f: &std::fs::File, off: u64, bytes: &[u8]) -> std::io::Result<u64> {
    const PIECE: usize = 4096;
    let mut written = 0;
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        if piece.iter().any(|&b| b != 0) {
            f.write_all_at(piece, off + (i * PIECE) as u64)?;
            written += piece.len() as u64;
        }
    }
    Ok(written)
}

/// The inode at `path` (debugfs.ocfs2's paths: `/`, `//`, `<BLKNO>`), a
/// file whose data can be read: regular or a symbolic link.
fn data_inode(vol: &Volume, path: &str) -> Result<Inode> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let ino = vol.read_inode(blkno)?;
    match ino.mode() & 0o170000 {
        0o100000 | 0o120000 => Ok(ino),
        0o040000 => bail!("{path} (inode {blkno}) is a directory"),
        m => bail!("{path} (inode {blkno}) holds no data (mode {m:o})"),
    }
}

/// `cat PATH`: the file's bytes (holes as zeros); with `--json`, its size
/// and its bytes in hex.
pub fn cat(vol: &Volume, path: &str, json: bool) -> Result<Outcome> {
    let ino = data_inode(vol, path)?;
    // Held in memory: a size read from a damaged inode must not exhaust it.
    if ino.size() > CAT_MAX {
        bail!(
            "{path} (inode {}) is {} bytes: cat shows at most {CAT_MAX}; copy it out with dump",
            ino.blkno,
            ino.size()
        );
    }
    let size = ino.size() as usize;
    let mut data = vec![0u8; size];
    each_run(vol, &ino, &mut |off, bytes| {
        let o = off as usize;
        data[o..o + bytes.len()].copy_from_slice(bytes);
        Ok(())
    })?;
    let j = if json {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        json!({ "path": path, "inode": ino.blkno, "size": size, "hex": hex })
    } else {
        serde_json::Value::Null
    };
    Ok(Outcome {
        text: String::new(),
        raw: data,
        warnings: Vec::new(),
        json: j,
        exit: exit::OK,
    })
}

/// `dump [-p] PATH HOSTFILE`: the file copied to HOSTFILE, holes,
/// unwritten extents and zero-filled blocks left as holes; with `-p` its mode, owner and times
/// too (the owner only where the caller may give it).
pub fn dump(vol: &Volume, path: &str, host: &str, preserve: bool) -> Result<Outcome> {
    let ino = data_inode(vol, path)?;
    let out = std::fs::File::create(host).with_context(|| format!("creating {host}"))?;
    let mut written = 0u64;
    each_run(vol, &ino, &mut |off, bytes| {
        written += write_sparse(&out, off, bytes).with_context(|| format!("writing {host}"))?;
        Ok(())
    })?;
    out.set_len(ino.size())
        .with_context(|| format!("sizing {host}"))?;
    let mut notes = Vec::new();
    if preserve {
        notes = keep_attributes(&out, &ino, host)?;
    }
    let mut text = String::new();
    for n in &notes {
        let _ = writeln!(text, "{n}");
    }
    Ok(Outcome {
        text,
        raw: Vec::new(),
        warnings: Vec::new(),
        json: json!({
            "path": path, "inode": ino.blkno, "host_file": host,
            "size": ino.size(), "data_bytes": written, "preserved": preserve, "notes": notes,
        }),
        exit: exit::OK,
    })
}

/// Mode, owner and times of `ino` onto `f`. An owner the caller may not
/// give is left, and said.
fn keep_attributes(f: &std::fs::File, ino: &Inode, host: &str) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};
    let di = ino.di();
    let mut notes = Vec::new();
    if let Err(e) = std::os::unix::fs::fchown(f, Some(di.i_uid.get()), Some(di.i_gid.get())) {
        notes.push(format!(
            "{host}: owner {}:{} not given ({e})",
            di.i_uid.get(),
            di.i_gid.get()
        ));
    }
    f.set_permissions(std::fs::Permissions::from_mode(
        u32::from(ino.mode()) & 0o7777,
    ))
    .with_context(|| format!("setting the mode of {host}"))?;
    let at = |s: u64, ns: u32| UNIX_EPOCH + Duration::new(s, ns.min(999_999_999));
    let times = std::fs::FileTimes::new()
        .set_accessed(at(di.i_atime.get(), di.i_atime_nsec.get()))
        .set_modified(at(di.i_mtime.get(), di.i_mtime_nsec.get()));
    f.set_times(times)
        .with_context(|| format!("setting the times of {host}"))?;
    Ok(notes)
}

/// The walk debugfs.ocfs2's findpath and ncheck make: the root and the
/// system directory themselves, then the system directory's tree, then the
/// root's, depth first in entry order; a directory's path ends in `/`.
struct Walk<'a> {
    vol: &'a Volume,
    wanted: &'a HashSet<u64>,
    /// Stop once this many matches are found (findpath).
    enough: Option<usize>,
    found: Vec<(u64, String)>,
    unreadable: Vec<String>,
    seen: HashSet<u64>,
}

impl Walk<'_> {
    fn done(&self) -> bool {
        self.enough.is_some_and(|n| self.found.len() >= n)
    }

    fn dir(&mut self, dir: u64, path: &str, depth: usize) {
        if depth > 4096 || !self.seen.insert(dir) {
            return;
        }
        let entries = match self
            .vol
            .read_inode(dir)
            .and_then(|d| self.vol.dir_entries(&d))
        {
            Ok(e) => e,
            Err(e) => {
                self.unreadable.push(format!("{path}: {e}"));
                return;
            }
        };
        for e in entries {
            if self.done() {
                return;
            }
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let is_dir = e.file_type == ocfs2_format::ondisk::file_type::DIR;
            let p = format!(
                "{path}{}{}",
                ocfs2_toolkit::text(&e.name),
                if is_dir { "/" } else { "" }
            );
            if self.wanted.contains(&e.inode) {
                self.found.push((e.inode, p.clone()));
            }
            if is_dir {
                self.dir(e.inode, &p, depth + 1);
            }
        }
    }
}

fn walk(
    vol: &Volume,
    wanted: &HashSet<u64>,
    enough: Option<usize>,
) -> (Vec<(u64, String)>, Vec<String>) {
    let mut w = Walk {
        vol,
        wanted,
        enough,
        found: Vec::new(),
        unreadable: Vec::new(),
        seen: HashSet::new(),
    };
    for (b, p) in [(vol.root_blkno(), "/"), (vol.system_dir_blkno(), "//")] {
        if wanted.contains(&b) {
            w.found.push((b, p.into()));
        }
    }
    if !w.done() {
        w.dir(vol.system_dir_blkno(), "//", 0);
    }
    if !w.done() {
        w.dir(vol.root_blkno(), "/", 0);
    }
    (w.found, w.unreadable)
}

/// `findpath INODE`: the first path that names the inode.
pub fn findpath(vol: &Volume, inode: u64) -> Result<Outcome> {
    let (found, unreadable) = walk(vol, &HashSet::from([inode]), Some(1));
    let Some((_, p)) = found.first() else {
        let why = if unreadable.is_empty() {
            String::new()
        } else {
            format!(" (unreadable: {})", unreadable.join("; "))
        };
        bail!("inode {inode}: no path names it{why}");
    };
    Ok(Outcome {
        text: format!("\t{inode}\t{p}\n"),
        raw: Vec::new(),
        warnings: Vec::new(),
        json: json!({ "inode": inode, "path": p }),
        exit: exit::OK,
    })
}

/// `ncheck INODE...`: every path that names one of the inodes, in the
/// walk's order; directories that cannot be read are named on standard
/// error (exit 4), the walk goes on.
pub fn ncheck(vol: &Volume, inodes: &[u64]) -> Result<Outcome> {
    let wanted: HashSet<u64> = inodes.iter().copied().collect();
    let (found, unreadable) = walk(vol, &wanted, None);
    let mut text = String::new();
    for (i, p) in &found {
        let _ = writeln!(text, "\t{i}\t{p}");
    }
    let named: HashSet<u64> = found.iter().map(|f| f.0).collect();
    let missing: Vec<u64> = inodes
        .iter()
        .copied()
        .filter(|i| !named.contains(i))
        .collect();
    if found.is_empty() {
        bail!("no path names inode(s) {missing:?}");
    }
    let json = json!({
        "paths": found.iter().map(|(i, p)| json!({ "inode": i, "path": p })).collect::<Vec<_>>(),
        "not_found": missing,
        "unreadable": unreadable,
    });
    Ok(Outcome::passing_over(text, json, &unreadable))
}

/// What `rdump` copied, and what it could not.
#[derive(Default)]
struct Copied {
    files: u64,
    dirs: u64,
    symlinks: u64,
    hard_links: u64,
    /// Inode -> the host path of its first copy (hard links).
    first: std::collections::HashMap<u64, std::path::PathBuf>,
    seen_dirs: HashSet<u64>,
    failed: Vec<String>,
}

/// `rdump PATH HOSTDIR`: the tree at PATH copied under HOSTDIR (as
/// HOSTDIR/NAME; the root's entries straight into HOSTDIR): directories
/// made, regular files as `dump` copies them (holes kept), symbolic links
/// made, a file with several names copied once and linked, each with its
/// mode, times and (where the caller may give it) owner. What cannot be read
/// is listed and the copy goes on (exit 4).
pub fn rdump(vol: &Volume, path: &str, host_dir: &str) -> Result<Outcome> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let base = std::path::Path::new(host_dir);
    if !base.is_dir() {
        bail!("{host_dir}: not a directory");
    }
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let target = if name.is_empty() || path.starts_with('<') {
        base.to_path_buf()
    } else {
        base.join(name)
    };
    let mut c = Copied::default();
    copy_tree(vol, blkno, &target, path, &mut c, 0);
    let mut text = format!(
        "{path} -> {}: {} file(s), {} directorie(s), {} symbolic link(s), {} hard link(s)\n",
        target.display(),
        c.files,
        c.dirs,
        c.symlinks,
        c.hard_links
    );
    for f in &c.failed {
        let _ = writeln!(text, "not copied: {f}");
    }
    Ok(Outcome {
        text,
        raw: Vec::new(),
        warnings: Vec::new(),
        json: json!({
            "path": path, "host_dir": target.display().to_string(), "files": c.files,
            "directories": c.dirs, "symlinks": c.symlinks, "hard_links": c.hard_links,
            "not_copied": c.failed,
        }),
        exit: if c.failed.is_empty() {
            exit::OK
        } else {
            exit::REQUEST_FAILED
        },
    })
}

fn copy_tree(
    vol: &Volume,
    blkno: u64,
    host: &std::path::Path,
    path: &str,
    c: &mut Copied,
    depth: usize,
) {
    let ino = match vol.read_inode(blkno) {
        Ok(i) => i,
        Err(e) => {
            c.failed.push(format!("{path} (inode {blkno}): {e}"));
            return;
        }
    };
    let fail =
        |c: &mut Copied, what: String| c.failed.push(format!("{path} (inode {blkno}): {what}"));
    match ino.mode() & 0o170000 {
        0o040000 => {
            if depth > 4096 || !c.seen_dirs.insert(blkno) {
                fail(c, "a directory seen before (a loop)".into());
                return;
            }
            if let Err(e) = std::fs::create_dir_all(host) {
                fail(c, format!("creating {}: {e}", host.display()));
                return;
            }
            c.dirs += 1;
            match vol.dir_entries(&ino) {
                Ok(entries) => {
                    for e in entries {
                        if e.name == b"." || e.name == b".." {
                            continue;
                        }
                        if e.name.contains(&b'/') || e.name.contains(&0) {
                            c.failed.push(format!(
                                "{path}/{}: a name the host cannot hold",
                                ocfs2_toolkit::text(&e.name)
                            ));
                            continue;
                        }
                        use std::os::unix::ffi::OsStrExt;
                        let child = host.join(std::ffi::OsStr::from_bytes(&e.name));
                        let cpath = format!(
                            "{}/{}",
                            path.trim_end_matches('/'),
                            ocfs2_toolkit::text(&e.name)
                        );
                        copy_tree(vol, e.inode, &child, &cpath, c, depth + 1);
                    }
                }
                Err(e) => fail(c, format!("its entries: {e}")),
            }
            if let Ok(f) = std::fs::File::open(host) {
                let _ = keep_attributes(&f, &ino, &host.display().to_string());
            }
        }
        0o100000 => {
            if ino.di().i_links_count.get() > 1 {
                if let Some(first) = c.first.get(&blkno) {
                    match std::fs::hard_link(first, host) {
                        Ok(()) => c.hard_links += 1,
                        Err(e) => fail(c, format!("linking {}: {e}", host.display())),
                    }
                    return;
                }
            }
            let r = (|| -> Result<()> {
                let out = std::fs::File::create(host)
                    .with_context(|| format!("creating {}", host.display()))?;
                each_run(vol, &ino, &mut |off, bytes| {
                    write_sparse(&out, off, bytes)
                        .map(|_| ())
                        .with_context(|| format!("writing {}", host.display()))
                })?;
                out.set_len(ino.size())?;
                keep_attributes(&out, &ino, &host.display().to_string())?;
                Ok(())
            })();
            match r {
                Ok(()) => {
                    c.files += 1;
                    c.first.insert(blkno, host.to_path_buf());
                }
                Err(e) => fail(c, format!("{e:#}")),
            }
        }
        0o120000 => {
            if ino.size() > LINK_MAX {
                fail(
                    c,
                    format!(
                        "a symbolic link of {} bytes (at most {LINK_MAX})",
                        ino.size()
                    ),
                );
                return;
            }
            let mut target = vec![0u8; ino.size() as usize];
            let r = each_run(vol, &ino, &mut |off, bytes| {
                let o = off as usize;
                let n = bytes.len().min(target.len().saturating_sub(o));
                target[o..o + n].copy_from_slice(&bytes[..n]);
                Ok(())
            });
            if let Some(z) = target.iter().position(|&b| b == 0) {
                target.truncate(z);
            }
            use std::os::unix::ffi::OsStrExt;
            match r.and_then(|()| {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), host)
                    .with_context(|| format!("making {}", host.display()))
            }) {
                Ok(()) => c.symlinks += 1,
                Err(e) => fail(c, format!("{e:#}")),
            }
        }
        m => fail(c, format!("a special file (mode {m:o}): not copied")),
    }
}
