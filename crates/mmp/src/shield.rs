//! A device for a tool that rewrites a whole volume while a [`Guard`]
//! holds the old one (mkfs over an existing MMP volume).
//!
//! Writes skip a few protected byte ranges, the old primary superblock and
//! the old slot 0 entry: until the tool is done, every other tool and every
//! mount still finds the old volume, its MMP bit and the guard's marker, and
//! refuses. What the writes meant for those ranges is kept, for the tool to
//! write once the new primary superblock (and its own marker in the new slot
//! map) is in place.
//!
//! [`Guard`]: crate::guard::Guard

use ocfs2_format::{BlockIo, Result};
use std::sync::Mutex;

struct Range {
    off: u64,
    /// The bytes the writes meant for the range (starting as they were).
    want: Vec<u8>,
    touched: bool,
}

impl Range {
    fn end(&self) -> u64 {
        self.off + self.want.len() as u64
    }
}

/// See the module notes.
pub struct Shield<'a> {
    inner: &'a dyn BlockIo,
    ranges: Mutex<Vec<Range>>,
    /// The guard whose keep-alive writes a protected range: writes near it
    /// wait for the keep-alive (see [`Guard::exclusive`]).
    ///
    /// [`Guard::exclusive`]: crate::guard::Guard::exclusive
    guard: Option<&'a crate::guard::Guard<'a>>,
    /// Asked before every write: a signal stops the writes.
    intr: &'a (dyn crate::engine::Interrupt + Sync),
}

/// Writes within this distance of a protected range share a page with it.
const NEAR: u64 = 4096;

/// Why a write through the shield was not made.
fn stopped(why: String) -> ocfs2_format::Error {
    ocfs2_format::Error::Io {
        what: why,
        source: std::io::Error::from(std::io::ErrorKind::Interrupted),
    }
}

/// A write's parts: `(offset, start, end)` of the buffer outside every
/// protected range, and the parts inside (kept).
fn split(off: u64, len: usize, ranges: &[Range]) -> Vec<(u64, usize, usize)> {
    let end = off + len as u64;
    let mut cuts: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|r| r.off < end && r.end() > off)
        .map(|r| (r.off.max(off), r.end().min(end)))
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = off;
    for (a, b) in cuts {
        if a > at {
            out.push((at, (at - off) as usize, (a - off) as usize));
        }
        at = at.max(b);
    }
    if at < end {
        out.push((at, (at - off) as usize, len));
    }
    out
}

impl<'a> Shield<'a> {
    /// Protect `(offset, length)` ranges of `inner`, reading what they hold.
    pub fn new(
        inner: &'a dyn BlockIo,
        protect: &[(u64, usize)],
        guard: Option<&'a crate::guard::Guard<'a>>,
        intr: &'a (dyn crate::engine::Interrupt + Sync),
    ) -> Result<Self> {
        let mut ranges = Vec::new();
        for &(off, len) in protect {
            let mut want = vec![0u8; len];
            inner.read_direct(off, &mut want)?;
            ranges.push(Range {
                off,
                want,
                touched: false,
            });
        }
        Ok(Shield {
            inner,
            ranges: Mutex::new(ranges),
            guard,
            intr,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Range>> {
        self.ranges.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuse to write once the guard's hold is over or a signal came: the
    /// volume may be another node's by now.
    fn may_write(&self) -> Result<()> {
        if let Some(e) = self.guard.and_then(crate::guard::Guard::lost) {
            return Err(stopped(e.to_string()));
        }
        if let Some(sig) = self.intr.pending() {
            return Err(stopped(format!("interrupted by signal {sig}")));
        }
        Ok(())
    }

    /// Write the parts `(offset, start, end)` of a buffer with `put`: those
    /// within [`NEAR`] of a protected range while the guard's keep-alive
    /// waits (they share a page with slot 0's entry), the rest freely, so
    /// that a long write never stalls the keep-alive.
    fn write_parts(
        &self,
        parts: Vec<(u64, usize, usize)>,
        put: impl Fn(u64, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let windows: Vec<(u64, u64)> = self
            .lock()
            .iter()
            .map(|r| (r.off.saturating_sub(NEAR), r.end() + NEAR))
            .collect();
        for (at, a, b) in parts {
            // Cut the part at the windows' edges.
            let end = at + (b - a) as u64;
            let mut cuts = vec![at, end];
            for &(w0, w1) in &windows {
                cuts.extend([w0, w1].into_iter().filter(|&c| c > at && c < end));
            }
            cuts.sort_unstable();
            cuts.dedup();
            for pair in cuts.windows(2) {
                let (p0, p1) = (pair[0], pair[1]);
                let (s0, s1) = (a + (p0 - at) as usize, a + (p1 - at) as usize);
                let near = windows.iter().any(|&(w0, w1)| p0 < w1 && p1 > w0);
                match (near, self.guard) {
                    (true, Some(g)) => g.exclusive(|| {
                        put(p0, s0, s1)?;
                        // Durable before the keep-alive reads the page.
                        self.inner.flush()
                    })?,
                    _ => put(p0, s0, s1)?,
                }
            }
        }
        Ok(())
    }

    /// Every write: refused once the hold is over, split around the
    /// protected ranges (each part written by `put`), and what it meant for
    /// those ranges kept (`bytes`, or zeros).
    fn write_through(
        &self,
        offset: u64,
        len: usize,
        bytes: Option<&[u8]>,
        put: impl Fn(u64, usize, usize) -> Result<()>,
    ) -> Result<()> {
        self.may_write()?;
        let parts = split(offset, len, &self.lock());
        self.write_parts(parts, put)?;
        self.keep(offset, bytes, len);
        Ok(())
    }

    /// Keep what `buf` (at `off`) means for the protected ranges.
    fn keep(&self, off: u64, buf: Option<&[u8]>, len: usize) {
        let end = off + len as u64;
        for r in self.lock().iter_mut() {
            let (a, b) = (r.off.max(off), r.end().min(end));
            if a >= b {
                continue;
            }
            let dst = &mut r.want[(a - r.off) as usize..(b - r.off) as usize];
            match buf {
                Some(buf) => dst.copy_from_slice(&buf[(a - off) as usize..(b - off) as usize]),
                None => dst.fill(0),
            }
            r.touched = true;
        }
    }

    /// The protected ranges that writes meant to change, with their bytes.
    pub fn finish(self) -> Vec<(u64, Vec<u8>)> {
        self.ranges
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .filter(|r| r.touched)
            .map(|r| (r.off, r.want))
            .collect()
    }
}

impl BlockIo for Shield<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_direct(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_through(offset, buf.len(), Some(buf), |at, a, b| {
            self.inner.write_at(at, &buf[a..b])
        })
    }
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_through(offset, buf.len(), Some(buf), |at, a, b| {
            self.inner.write_direct(at, &buf[a..b])
        })
    }
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        let n = usize::try_from(len).map_err(|_| {
            ocfs2_format::Error::Invalid(format!("a range of {len} bytes at byte {offset}"))
        })?;
        self.write_through(offset, n, None, |at, a, b| {
            self.inner.zero_range(at, (b - a) as u64)
        })
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn direct_warning(&self) -> Option<String> {
        self.inner.direct_warning()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocfs2_format::MemDevice;

    #[test]
    fn writes_skip_protected_ranges_and_keep_what_they_meant() {
        let dev = MemDevice::new(vec![7u8; 64]);
        let sh = Shield::new(&dev, &[(10, 4), (30, 8)], None, &crate::engine::NoInterrupt).unwrap();
        sh.write_at(0, &[1u8; 20]).unwrap();
        sh.zero_range(28, 20).unwrap();
        sh.write_at(50, &[2u8; 4]).unwrap();
        let kept = sh.finish();
        let data = dev.into_inner();
        assert_eq!(&data[..10], &[1u8; 10]);
        assert_eq!(&data[10..14], &[7u8; 4], "first range untouched on disk");
        assert_eq!(&data[14..20], &[1u8; 6]);
        assert_eq!(&data[28..30], &[0u8; 2]);
        assert_eq!(&data[30..38], &[7u8; 8], "second range untouched on disk");
        assert_eq!(&data[38..48], &[0u8; 10]);
        assert_eq!(kept, vec![(10, vec![1u8; 4]), (30, vec![0u8; 8])]);
    }

    #[test]
    fn no_write_once_the_hold_is_over_or_a_signal_came() {
        use crate::engine::fake::{Fake, Quiet, Tick};
        let fake = Fake::new(&[0]);
        let g = crate::guard::Guard::acquire(
            &fake,
            5,
            None,
            ocfs2_format::slotmap::value::SEQ_FSCK,
            &mut Tick::plain(),
            &mut Quiet,
            &crate::engine::NoInterrupt,
        )
        .unwrap();
        let dev = MemDevice::new(vec![0u8; 64]);
        let sh = Shield::new(&dev, &[(0, 8)], Some(&g), &crate::engine::NoInterrupt).unwrap();
        sh.write_at(16, &[1; 8]).unwrap();
        fake.set(0, 0x1234, 0);
        assert!(g.keep_alive().is_err());
        assert!(sh.write_at(24, &[2; 8]).is_err());
        assert!(sh.zero_range(32, 8).is_err());
        let sig = || Some(2);
        let sh = Shield::new(&dev, &[(0, 8)], None, &sig).unwrap();
        assert!(sh.write_at(40, &[3; 8]).is_err());
        let data = dev.into_inner();
        assert_eq!(&data[16..24], &[1; 8]);
        assert_eq!(
            &data[24..48],
            &[0; 24],
            "nothing written after the loss or the signal"
        );
    }

    #[test]
    fn untouched_ranges_are_not_returned() {
        let dev = MemDevice::new(vec![0u8; 32]);
        let sh = Shield::new(&dev, &[(0, 4), (16, 4)], None, &crate::engine::NoInterrupt).unwrap();
        sh.write_at(17, &[9, 9]).unwrap();
        assert_eq!(sh.finish(), vec![(16, vec![0, 9, 9, 0])]);
    }

    #[test]
    fn split_covers_everything_outside() {
        let r = |off, len| Range {
            off,
            want: vec![0; len],
            touched: false,
        };
        assert_eq!(split(0, 10, &[]), vec![(0, 0, 10)]);
        assert_eq!(split(0, 10, &[r(0, 10)]), vec![]);
        assert_eq!(
            split(5, 10, &[r(0, 7), r(12, 1)]),
            vec![(7, 2, 7), (13, 8, 10)]
        );
    }
}
