//! A device seen through writes kept in memory: `fsck -n` replays journals
//! and recovers slots into an overlay, so its passes check the volume as the
//! real run would leave it, while the device itself is never written.

use crate::error::Result;
use crate::io::BlockIo;
use std::collections::HashMap;
use std::sync::RwLock;

/// Writes land in memory, a block at a time; reads see them over the
/// device. Uncached reads (`read_direct`) see the device alone: they serve
/// the MMP decisions, which are about what other hosts wrote.
pub struct Overlay {
    inner: Box<dyn BlockIo>,
    block: u64,
    blocks: RwLock<HashMap<u64, Box<[u8]>>>,
}

impl Overlay {
    pub fn new(inner: Box<dyn BlockIo>, block_size: u32) -> Overlay {
        Overlay {
            inner,
            block: u64::from(block_size),
            blocks: RwLock::new(HashMap::new()),
        }
    }

    /// Blocks written so far.
    pub fn len(&self) -> usize {
        self.blocks.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blocks a range touches, with the part of each it covers:
    /// (block index, offset in block, offset in range, length).
    fn pieces(&self, offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
        let bs = self.block;
        let end = offset + len as u64;
        let first = offset / bs;
        let last = end.div_ceil(bs);
        (first..last).map(move |b| {
            let lo = offset.max(b * bs);
            let hi = end.min((b + 1) * bs);
            (
                b,
                (lo - b * bs) as usize,
                (lo - offset) as usize,
                (hi - lo) as usize,
            )
        })
    }
}

impl BlockIo for Overlay {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)?;
        let map = self.blocks.read().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return Ok(());
        }
        for (b, in_block, in_buf, n) in self.pieces(offset, buf.len()) {
            if let Some(data) = map.get(&b) {
                buf[in_buf..in_buf + n].copy_from_slice(&data[in_block..in_block + n]);
            }
        }
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut map = self.blocks.write().unwrap_or_else(|p| p.into_inner());
        for (b, in_block, in_buf, n) in self.pieces(offset, buf.len()) {
            let data = match map.entry(b) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let mut whole = vec![0u8; self.block as usize];
                    // The device's last block may be shorter than ours: read
                    // what it has (beyond it nothing is ever read back).
                    let at = b * self.block;
                    let have = self.inner.size().saturating_sub(at).min(self.block) as usize;
                    self.inner.read_at(at, &mut whole[..have])?;
                    e.insert(whole.into_boxed_slice())
                }
            };
            data[in_block..in_block + n].copy_from_slice(&buf[in_buf..in_buf + n]);
        }
        Ok(())
    }
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_direct(offset, buf)
    }
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_at(offset, buf)
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        crate::io::write_zeros(self, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDevice;

    #[test]
    fn reads_see_writes_and_the_device_is_untouched() {
        let dev = MemDevice::new((0..4096u32).map(|i| i as u8).collect());
        let o = Overlay::new(Box::new(dev), 512);
        o.write_at(500, &[0xAA; 20]).unwrap();
        let mut buf = vec![0u8; 40];
        o.read_at(490, &mut buf).unwrap();
        assert_eq!(
            &buf[..10],
            &(490..500u32).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
        assert!(buf[10..30].iter().all(|&b| b == 0xAA));
        assert_eq!(buf[30], 520u32 as u8);
        let mut direct = vec![0u8; 20];
        o.read_direct(500, &mut direct).unwrap();
        assert_eq!(direct[0], 500u32 as u8);
        assert_eq!(o.len(), 2);
    }
}
