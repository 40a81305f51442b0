//! Device layer: image files and block devices, an in-memory device for
//! tests and fuzzing, and cache-bypassing (`O_DIRECT`) access for the slot map.

use crate::error::{Error, Result};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Alignment used for `O_DIRECT` buffers and offsets: the largest logical
/// sector size Linux uses (4 KiB) is a multiple of every smaller one.
pub const DIRECT_ALIGN: usize = 4096;

/// A device that can be read and written at byte offsets.
pub trait BlockIo: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Logical sector size in bytes (512 for image files).
    fn sector_size(&self) -> u32 {
        512
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Read bypassing every cache (`O_DIRECT`). The default is a plain read,
    /// correct for devices that have no cache (memory).
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read_at(offset, buf)
    }
    /// Write durably, bypassing the page cache where the device allows it.
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_at(offset, buf)?;
        self.flush()
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// Make `[offset, offset + len)` read as zeros. The default writes zeros;
    /// devices may do better (skip holes of a sparse file, BLKZEROOUT).
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        write_zeros(self, offset, len)
    }
    /// A warning to show the user when cache-bypassing I/O is not possible.
    fn direct_warning(&self) -> Option<String> {
        None
    }
}

/// A shared device is a device: the undo file's writer is kept by the tool
/// while the volume reads and writes through it.
impl<T: BlockIo + ?Sized> BlockIo for std::sync::Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write_at(offset, buf)
    }
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_direct(offset, buf)
    }
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        (**self).write_direct(offset, buf)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        (**self).zero_range(offset, len)
    }
    fn direct_warning(&self) -> Option<String> {
        (**self).direct_warning()
    }
}

const ZERO_CHUNK: usize = 1 << 20;

/// Test hook: with `OCFS2_MMP_FAILPOINT_WRITE=N` in the environment, the
/// process aborts (as a crash would stop it: no cleanup, no unwinding) just
/// before its Nth write to a device. Crash-safety tests use it to stop a
/// tool at each of its writes.
fn failpoint() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    if let Some(n) = *AT.get_or_init(|| {
        std::env::var("OCFS2_MMP_FAILPOINT_WRITE")
            .ok()
            .and_then(|v| v.parse().ok())
    }) {
        if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == n {
            eprintln!("failpoint: aborting before write {n}");
            std::process::abort();
        }
    }
}

/// Write zeros over a range, a MiB at a time.
pub fn write_zeros<D: BlockIo + ?Sized>(dev: &D, offset: u64, len: u64) -> Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(ZERO_CHUNK as u64) as usize;
        dev.write_at(offset + done, &zeros[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// How to open a device.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMode {
    pub write: bool,
    /// `O_EXCL` on a block device: fails while the kernel has it mounted
    /// (or another exclusive opener holds it).
    pub exclusive: bool,
}

/// An image file or a block device.
pub struct FileDevice {
    path: PathBuf,
    file: File,
    /// Same file opened with `O_DIRECT`, when the file system allows it.
    direct: Option<File>,
    direct_error: Option<String>,
    size: u64,
    sector_size: u32,
    is_block: bool,
    written: std::sync::atomic::AtomicU64,
}

nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
nix::ioctl_read_bad!(blksszget, 0x1268, libc_int);
nix::ioctl_write_ptr_bad!(blkzeroout, nix::request_code_none!(0x12, 127), [u64; 2]);
#[allow(non_camel_case_types)]
type libc_int = std::ffi::c_int;

impl FileDevice {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(Error::IsDirectory { path: path.into() });
        }
        let is_block = ft.is_block_device();
        if !is_block && !ft.is_file() {
            return Err(Error::NotADevice { path: path.into() });
        }
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(mode.write)
                .custom_flags(flags)
                .open(path)
        };
        // O_EXCL on a block device claims it: a second O_EXCL open (even our
        // own) fails with EBUSY. The claim is the first descriptor's; the
        // direct one is opened without it, after the claim is held.
        let excl = if mode.exclusive && is_block {
            nix::libc::O_EXCL
        } else {
            0
        };
        let file = open(excl).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
        let (direct, direct_error) = match open(nix::libc::O_DIRECT) {
            Ok(f) => (Some(f), None),
            // Another host's writes reach a shared block device below our
            // page cache: without O_DIRECT no read of it can be trusted.
            Err(source) if is_block => {
                return Err(Error::NoDirect {
                    path: path.into(),
                    source,
                })
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let (size, sector_size) = if is_block {
            use std::os::fd::AsRawFd;
            let mut size = 0u64;
            // SAFETY: BLKGETSIZE64 writes one u64 into `size`; the fd is open.
            unsafe { blkgetsize64(file.as_raw_fd(), &mut size) }.map_err(|e| Error::Io {
                what: format!("{}: BLKGETSIZE64", path.display()),
                source: e.into(),
            })?;
            let mut ssz: libc_int = 0;
            // SAFETY: BLKSSZGET writes one int into `ssz`; the fd is open.
            unsafe { blksszget(file.as_raw_fd(), &mut ssz) }.map_err(|e| Error::Io {
                what: format!("{}: BLKSSZGET", path.display()),
                source: e.into(),
            })?;
            (size, u32::try_from(ssz).unwrap_or(512).max(512))
        } else {
            (meta.len(), 512)
        };
        Ok(FileDevice {
            path: path.into(),
            file,
            direct,
            direct_error,
            size,
            sector_size,
            is_block,
            written: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_block_device(&self) -> bool {
        self.is_block
    }

    /// Bytes written through this handle so far.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The data segments of a regular file that intersect a range (holes
    /// read as zeros already). `None` when the file system cannot tell.
    fn data_segments(&self, offset: u64, len: u64) -> Option<Vec<(u64, u64)>> {
        use nix::unistd::{lseek, Whence};
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let end = offset + len;
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end {
            let data = match lseek(fd, pos as i64, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(nix::errno::Errno::ENXIO) => break,
                Err(_) => return None,
            };
            if data >= end {
                break;
            }
            let hole = match lseek(fd, data as i64, Whence::SeekHole) {
                Ok(h) => h as u64,
                Err(_) => return None,
            };
            out.push((data, hole.min(end) - data));
            pos = hole;
        }
        Some(out)
    }

    fn read_cached(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(offset, buf.len())
            .and_then(|()| self.file.read_exact_at(buf, offset))
            .map_err(|source| Error::Read {
                offset,
                len: buf.len(),
                source,
            })
    }

    fn check_range(&self, offset: u64, len: usize) -> io::Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "past the end of the device",
            )),
        }
    }
}

/// A heap buffer aligned for `O_DIRECT`.
struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let layout =
            Layout::from_size_align(len.max(DIRECT_ALIGN), DIRECT_ALIGN).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, layout }
    }
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to layout.size() initialised (zeroed) bytes we own.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// The window `[start, start+len)` aligned to `a` that covers
/// `[offset, offset+n)`.
fn aligned_window(offset: u64, n: usize, a: u64) -> (u64, usize) {
    let start = offset / a * a;
    let end = (offset + n as u64).div_ceil(a) * a;
    (start, (end - start) as usize)
}

impl FileDevice {
    /// Write through the `O_DIRECT` descriptor, without syncing: the
    /// aligned window around the range, read first (uncached) where the
    /// range does not cover it whole. A window that would run past the end
    /// of an image file goes through the cache instead.
    fn write_uncached(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let Some(direct) = &self.direct else {
            return self.write_cached(offset, buf);
        };
        let unit = self.dio_unit();
        let (start, len) = aligned_window(offset, buf.len(), unit);
        if start + len as u64 > self.size {
            return self.write_cached(offset, buf);
        }
        let mut ab = AlignedBuf::new(len);
        let win = &mut ab.as_mut()[..len];
        let skip = (offset - start) as usize;
        if skip != 0 || buf.len() != len {
            direct
                .read_exact_at(win, start)
                .map_err(|source| Error::Read {
                    offset: start,
                    len,
                    source,
                })?;
        }
        win[skip..skip + buf.len()].copy_from_slice(buf);
        direct
            .write_all_at(win, start)
            .map_err(|source| Error::Write {
                offset: start,
                len,
                source,
            })?;
        self.written
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn write_cached(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check_range(offset, buf.len())
            .and_then(|()| self.file.write_all_at(buf, offset))
            .map_err(|source| Error::Write {
                offset,
                len: buf.len(),
                source,
            })?;
        self.written
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The unit of an `O_DIRECT` transfer: a block device's logical sector
    /// (so a slot write rewrites no more than that sector, as narrow as the
    /// device allows), or 4 KiB on an image file, which every file system
    /// that supports `O_DIRECT` accepts.
    fn dio_unit(&self) -> u64 {
        if self.is_block {
            u64::from(self.sector_size).max(512)
        } else {
            DIRECT_ALIGN as u64
        }
    }
}

impl BlockIo for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        // On a block device every read bypasses the page cache: pages cached
        // there (by us or any other process) never show another host's
        // writes. A direct read first writes back our own dirty pages of
        // the range, so it also sees what this process wrote.
        if self.is_block {
            return self.read_direct(offset, buf);
        }
        self.read_cached(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        failpoint();
        // On a block device nothing goes through the page cache: reads are
        // direct, and a cached write beside a direct one on the same page
        // fails the kernel's invalidation (EIO at the next fsync).
        if self.is_block {
            self.check_range(offset, buf.len())
                .map_err(|source| Error::Write {
                    offset,
                    len: buf.len(),
                    source,
                })?;
            return self.write_uncached(offset, buf);
        }
        self.write_cached(offset, buf)
    }
    fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.check_range(offset, len as usize)
            .map_err(|source| Error::Write {
                offset,
                len: len as usize,
                source,
            })?;
        if self.is_block {
            use std::os::fd::AsRawFd;
            let range = [offset, len];
            // SAFETY: BLKZEROOUT reads two u64 (start, length) from `range`.
            if unsafe { blkzeroout(self.file.as_raw_fd(), &range) }.is_ok() {
                self.written
                    .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            return write_zeros(self, offset, len);
        }
        match self.data_segments(offset, len) {
            Some(segs) => {
                for (o, l) in segs {
                    write_zeros(self, o, l)?;
                }
                Ok(())
            }
            None => write_zeros(self, offset, len),
        }
    }
    fn flush(&self) -> Result<()> {
        self.file.sync_all().map_err(|source| Error::Io {
            what: format!("{}: fsync", self.path.display()),
            source,
        })?;
        if let (true, Some(d)) = (self.is_block, &self.direct) {
            d.sync_all().map_err(|source| Error::Io {
                what: format!("{}: fsync", self.path.display()),
                source,
            })?;
        }
        Ok(())
    }
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let Some(direct) = &self.direct else {
            return self.read_cached(offset, buf);
        };
        let (start, len) = aligned_window(offset, buf.len(), self.dio_unit());
        let mut ab = AlignedBuf::new(len);
        let win = &mut ab.as_mut()[..len];
        let skip = (offset - start) as usize;
        let need = skip + buf.len();
        // O_DIRECT lengths must stay aligned: read the whole window and
        // accept a short read at the end of an image file.
        let mut got = 0;
        let res = self.check_range(offset, buf.len()).and_then(|()| {
            while got < need {
                match direct.read_at(&mut win[got..], start + got as u64) {
                    Ok(0) => {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"))
                    }
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        res.map_err(|source| Error::Read {
            offset,
            len: buf.len(),
            source,
        })?;
        buf.copy_from_slice(&win[skip..need]);
        Ok(())
    }
    fn write_direct(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let Some(direct) = &self.direct else {
            // (write_at counts the failpoint)
            self.write_at(offset, buf)?;
            return self.flush();
        };
        failpoint();
        self.write_uncached(offset, buf)?;
        direct.sync_data().map_err(|source| Error::Io {
            what: format!("{}: fdatasync", self.path.display()),
            source,
        })
    }
    fn direct_warning(&self) -> Option<String> {
        self.direct_error.as_ref().map(|e| {
            format!(
                "{}: O_DIRECT refused ({e}); slot map reads go through the page cache and may miss another host's writes",
                self.path.display()
            )
        })
    }
}

/// A device in memory, for tests and fuzzing.
pub struct MemDevice {
    data: Mutex<Vec<u8>>,
}

impl MemDevice {
    pub fn new(data: Vec<u8>) -> Self {
        MemDevice {
            data: Mutex::new(data),
        }
    }
    pub fn into_inner(self) -> Vec<u8> {
        self.data.into_inner().unwrap_or_else(|p| p.into_inner())
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BlockIo for MemDevice {
    fn size(&self) -> u64 {
        self.lock().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.lock();
        let start = usize::try_from(offset).ok();
        match start.and_then(|s| Some((s, s.checked_add(buf.len())?))) {
            Some((s, e)) if e <= data.len() => {
                buf.copy_from_slice(&data[s..e]);
                Ok(())
            }
            _ => Err(Error::Read {
                offset,
                len: buf.len(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "past the end of the device"),
            }),
        }
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut data = self.lock();
        let start = usize::try_from(offset).ok();
        match start.and_then(|s| Some((s, s.checked_add(buf.len())?))) {
            Some((s, e)) if e <= data.len() => {
                data[s..e].copy_from_slice(buf);
                Ok(())
            }
            _ => Err(Error::Write {
                offset,
                len: buf.len(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "past the end of the device"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(len: usize) -> PathBuf {
        let p = std::env::temp_dir().join(format!("io-test-{}-{len}", std::process::id()));
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn windows_cover_the_range_at_the_unit() {
        assert_eq!(aligned_window(4094, 8, 4096), (0, 8192));
        assert_eq!(aligned_window(4094, 8, 512), (3584, 1024));
        assert_eq!(aligned_window(1024, 512, 512), (1024, 512));
        // One extended slot entry (8 bytes) in a 512-byte sector.
        assert_eq!(aligned_window(1_118_208 + 72, 8, 512), (1_118_208, 512));
    }

    #[test]
    fn direct_reads_and_writes_unaligned_ranges() {
        let p = temp_file(3 * DIRECT_ALIGN + 100);
        let dev = FileDevice::open(
            &p,
            OpenMode {
                write: true,
                exclusive: false,
            },
        )
        .unwrap();
        let mut b = vec![0u8; 20];
        dev.read_direct(4090, &mut b).unwrap();
        let want: Vec<u8> = (4090..4110).map(|i| (i % 251) as u8).collect();
        assert_eq!(b, want);
        dev.write_direct(4094, &[0xAA; 8]).unwrap();
        let mut c = vec![0u8; 8];
        dev.read_at(4094, &mut c).unwrap();
        assert_eq!(c, vec![0xAA; 8]);
        // The tail window runs past the end: falls back to a cached write.
        dev.write_direct(3 * DIRECT_ALIGN as u64 + 90, &[1, 2])
            .unwrap();
        dev.read_direct(3 * DIRECT_ALIGN as u64 + 90, &mut c[..2])
            .unwrap();
        assert_eq!(&c[..2], &[1, 2]);
        assert!(dev
            .read_direct(3 * DIRECT_ALIGN as u64 + 99, &mut c[..2])
            .is_err());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn fallback_when_o_direct_is_refused() {
        let p = temp_file(DIRECT_ALIGN);
        let mut dev = FileDevice::open(
            &p,
            OpenMode {
                write: true,
                exclusive: false,
            },
        )
        .unwrap();
        // As if the file system had refused O_DIRECT (EINVAL on open).
        dev.direct = None;
        dev.direct_error = Some("Invalid argument (os error 22)".into());
        let mut b = [0u8; 4];
        dev.read_direct(10, &mut b).unwrap();
        assert_eq!(b, [10, 11, 12, 13]);
        dev.write_direct(10, &[9, 9]).unwrap();
        dev.read_direct(10, &mut b).unwrap();
        assert_eq!(b, [9, 9, 12, 13]);
        let w = dev.direct_warning().unwrap();
        assert!(
            w.contains("O_DIRECT refused") && w.contains(&p.display().to_string()),
            "{w}"
        );
        std::fs::remove_file(p).unwrap();
    }
}
