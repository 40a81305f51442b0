//! Undo files (`fsck -z FILE`, e2fsck's option; `e2undo`'s job): every
//! 4 KiB chunk of the device is saved to the file, durably, before the first
//! write over it; a finished run seals the file with a checksum of what it
//! left in each chunk. Putting the chunks back is refused when the device no
//! longer holds what the run left (something wrote since) or the file was not
//! sealed (the run was stopped), unless forced.
//!
//! Writes made with `write_direct` are not recorded: they are the slot map's
//! MMP writes (the guard, slot recovery), live protocol state that an undo
//! must not put back.
//!
//! File layout (little-endian): a 32-byte header (magic, chunk size, device
//! size), then records, each an 8-byte tag, an 8-byte
//! device offset and, for a saved chunk (tag 1), its old contents; a seal
//! (tag 2) carries the CRC32 of the chunk's contents at the end of the run.

use crate::error::{Error, Result};
use crate::io::BlockIo;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &[u8; 16] = b"OCFS2-MMP-UNDO1\0";
pub const CHUNK: u64 = 4096;
const TAG_SAVED: u64 = 1;
const TAG_SEAL: u64 = 2;

fn undo_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Io {
        what: format!("undo file {}: {what}", path.display()),
        source: e,
    }
}

/// A device whose overwritten chunks are saved first.
pub struct UndoDevice {
    inner: Box<dyn BlockIo>,
    path: PathBuf,
    state: Mutex<(File, BTreeSet<u64>)>,
}

impl UndoDevice {
    /// Create `path` (it must not exist).
    pub fn create(inner: Box<dyn BlockIo>, path: &Path) -> Result<UndoDevice> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| undo_err(path, "cannot create it (it must not exist yet)", e))?;
        let mut head = Vec::with_capacity(32);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&CHUNK.to_le_bytes());
        head.extend_from_slice(&inner.size().to_le_bytes());
        f.write_all(&head)
            .and_then(|()| f.sync_all())
            .map_err(|e| undo_err(path, "write", e))?;
        Ok(UndoDevice {
            inner,
            path: path.to_path_buf(),
            state: Mutex::new((f, BTreeSet::new())),
        })
    }

    /// Save every chunk `[offset, offset + len)` touches that is not saved yet.
    fn save(&self, offset: u64, len: usize) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, saved) = &mut *st;
        let first = offset / CHUNK;
        let last = (offset + len as u64).div_ceil(CHUNK);
        let mut wrote = false;
        for c in first..last {
            if saved.contains(&c) {
                continue;
            }
            let at = c * CHUNK;
            let have = self.inner.size().saturating_sub(at).min(CHUNK) as usize;
            let mut old = vec![0u8; CHUNK as usize];
            self.inner.read_at(at, &mut old[..have])?;
            let mut rec = Vec::with_capacity(16 + old.len());
            rec.extend_from_slice(&TAG_SAVED.to_le_bytes());
            rec.extend_from_slice(&at.to_le_bytes());
            rec.extend_from_slice(&old);
            file.write_all(&rec)
                .map_err(|e| undo_err(&self.path, "write", e))?;
            saved.insert(c);
            wrote = true;
        }
        if wrote {
            // Durable before the device is overwritten.
            file.sync_data()
                .map_err(|e| undo_err(&self.path, "sync", e))?;
        }
        Ok(())
    }

    /// Seal the file: the CRC32 of what each saved chunk holds now, the
    /// byte ranges `keep` (the slot map's live MMP state) left out.
    pub fn seal(&self, keep: &[(u64, u64)]) -> Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (file, saved) = &mut *st;
        for &c in saved.iter() {
            let now = masked(chunk(self.inner.as_ref(), c * CHUNK)?, c * CHUNK, keep);
            let mut rec = Vec::with_capacity(24);
            rec.extend_from_slice(&TAG_SEAL.to_le_bytes());
            rec.extend_from_slice(&(c * CHUNK).to_le_bytes());
            rec.extend_from_slice(&u64::from(crc32fast::hash(&now)).to_le_bytes());
            file.write_all(&rec)
                .map_err(|e| undo_err(&self.path, "write", e))?;
        }
        file.sync_all()
            .map_err(|e| undo_err(&self.path, "sync", e))?;
        Ok(saved.len())
    }
}

/// A chunk at device offset `at` with the byte ranges `keep` zeroed.
fn masked(mut b: Vec<u8>, at: u64, keep: &[(u64, u64)]) -> Vec<u8> {
    for &(s, n) in keep {
        let lo = s.max(at);
        let hi = (s + n).min(at + b.len() as u64);
        if lo < hi {
            b[(lo - at) as usize..(hi - at) as usize].fill(0);
        }
    }
    b
}

fn chunk(dev: &dyn BlockIo, at: u64) -> Result<Vec<u8>> {
    let have = dev.size().saturating_sub(at).min(CHUNK) as usize;
    let mut b = vec![0u8; CHUNK as usize];
    dev.read_at(at, &mut b[..have])?;
    Ok(b)
}

impl BlockIo for UndoDevice {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.save(offset, buf.len())?;
        self.inner.write_at(offset, buf)
    }
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_direct(offset, buf)
    }
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.inner.write_direct(offset, buf)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        crate::io::write_zeros(self, offset, len)
    }
    fn direct_warning(&self) -> Option<String> {
        self.inner.direct_warning()
    }
}

/// A parsed undo file.
#[derive(Debug)]
pub struct UndoFile {
    pub device_size: u64,
    /// Device offset -> the chunk's old contents.
    pub saved: BTreeMap<u64, Vec<u8>>,
    /// Device offset -> CRC32 of what the run left; empty when not sealed.
    pub sealed: BTreeMap<u64, u32>,
}

impl UndoFile {
    pub fn read(path: &Path) -> Result<UndoFile> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| undo_err(path, "cannot read it", e))?;
        let bad = |what: &str| Error::Invalid(format!("undo file {}: {what}", path.display()));
        if bytes.len() < 32 || &bytes[..16] != MAGIC {
            return Err(bad("not an undo file of fsck.ocfs2-mmp"));
        }
        let u64_at =
            |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if u64_at(&bytes, 16) != CHUNK {
            return Err(bad("unknown chunk size"));
        }
        let mut out = UndoFile {
            device_size: u64_at(&bytes, 24),
            saved: BTreeMap::new(),
            sealed: BTreeMap::new(),
        };
        let mut at = 32;
        while at < bytes.len() {
            if at + 16 > bytes.len() {
                return Err(bad("truncated record"));
            }
            let (tag, off) = (u64_at(&bytes, at), u64_at(&bytes, at + 8));
            at += 16;
            match tag {
                TAG_SAVED => {
                    let end = at + CHUNK as usize;
                    // A record cut short by a crash before its sync never
                    // preceded a write: the device chunk is unchanged.
                    if end > bytes.len() {
                        break;
                    }
                    out.saved
                        .entry(off)
                        .or_insert_with(|| bytes[at..end].to_vec());
                    at = end;
                }
                TAG_SEAL if at + 8 <= bytes.len() => {
                    out.sealed.insert(off, u64_at(&bytes, at) as u32);
                    at += 8;
                }
                _ => return Err(bad(&format!("unknown record at byte {}", at - 16))),
            }
        }
        Ok(out)
    }

    /// The chunks whose contents on `dev` (the ranges `keep` left out, as
    /// when sealed) differ from what the run left (all of them if the file
    /// is not sealed).
    pub fn changed_since(&self, dev: &dyn BlockIo, keep: &[(u64, u64)]) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for &off in self.saved.keys() {
            let now = crc32fast::hash(&masked(chunk(dev, off)?, off, keep));
            if self.sealed.get(&off) != Some(&now) {
                out.push(off);
            }
        }
        Ok(out)
    }

    /// Put every saved chunk back (only the bytes inside the device),
    /// except the byte ranges `keep` (start, length): the slot map, whose
    /// MMP state is live and not the undo's to change.
    pub fn restore(&self, dev: &dyn BlockIo, keep: &[(u64, u64)]) -> Result<usize> {
        for (&off, old) in &self.saved {
            let end = off + dev.size().saturating_sub(off).min(CHUNK);
            let mut pos = off;
            while pos < end {
                // The next kept range that starts at or after pos, or covers it.
                let cut = keep
                    .iter()
                    .filter(|&&(s, n)| s + n > pos && s < end)
                    .min_by_key(|&&(s, _)| s);
                let (stop, skip_to) = match cut {
                    Some(&(s, n)) if s <= pos => (pos, (s + n).min(end)),
                    Some(&(s, n)) => (s, (s + n).min(end)),
                    None => (end, end),
                };
                if stop > pos {
                    let a = (pos - off) as usize;
                    let b = (stop - off) as usize;
                    dev.write_at(pos, &old[a..b])?;
                }
                pos = skip_to.max(stop);
            }
        }
        dev.flush()?;
        Ok(self.saved.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDevice;
    use std::sync::Arc;

    #[test]
    fn saves_before_writing_and_puts_back() {
        let dir = std::env::temp_dir().join(format!("undo-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let orig: Vec<u8> = (0..5 * CHUNK as usize + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        let mem = Arc::new(MemDevice::new(orig.clone()));
        let u = UndoDevice::create(Box::new(mem.clone()), &dir).unwrap();
        u.write_at(4000, &[0xEE; 200]).unwrap(); // two chunks
        u.write_at(4010, &[0xDD; 10]).unwrap(); // saved already
        u.write_at(5 * CHUNK + 10, &[0xCC; 50]).unwrap(); // the short last chunk
        u.write_direct(3 * CHUNK, &[0xBB; 8]).unwrap(); // not recorded
        assert_eq!(u.seal(&[(4090, 6)]).unwrap(), 3);
        let f = UndoFile::read(&dir).unwrap();
        assert_eq!(f.saved.len(), 3);
        assert!(f.changed_since(&mem, &[(4090, 6)]).unwrap().is_empty());
        // Bytes 4090..4095 are kept (as a slot map would be).
        mem.write_at(4090, &[0xAA; 6]).unwrap();
        assert_eq!(f.restore(&mem, &[(4090, 6)]).unwrap(), 3);
        let mut now = vec![0u8; orig.len()];
        mem.read_at(0, &mut now).unwrap();
        let mut want = orig.clone();
        want[3 * CHUNK as usize..3 * CHUNK as usize + 8].fill(0xBB);
        want[4090..4096].fill(0xAA);
        assert!(now == want);
        // Changed since: refused by the caller.
        mem.write_at(4000, &[1]).unwrap();
        assert!(f.changed_since(&mem, &[(4090, 6)]).unwrap().contains(&0));
        let _ = std::fs::remove_file(&dir);
    }
}
