//! The OCFS2 on-disk format, as the Linux kernel and ocfs2-tools write it,
//! plus the multiple mount protection (MMP) fields of the seed patch.
//!
//! This crate knows bytes and nothing of the command line.

pub mod alloc;
pub mod blockcheck;
pub mod bytes;
pub mod dx;
pub mod dxtree;
pub mod error;
pub mod extend;
pub mod features;
pub mod fs;
pub mod heartbeat;
pub mod inprog;
pub mod io;
pub mod jbd2;
pub mod journal;
pub mod link;
pub mod metaecc;
pub mod ondisk;
pub mod overlay;
pub mod probe;
pub mod quota;
pub mod refcount;
pub mod resolve;
pub mod slotmap;
pub mod sysfile;
pub mod undo;
pub mod unslot;
pub mod unwritten;
pub mod xattr;

pub use error::{Error, Result};
pub use fs::{DirEntry, Extent, Inode, Volume};
pub use io::{BlockIo, FileDevice, MemDevice, OpenMode};
/// Re-exported so that users of the raw structs share our zerocopy version.
pub use zerocopy;

use std::path::PathBuf;

/// Resolve a device argument (`PATH`, `LABEL=`, `UUID=`) and open the volume.
pub fn open_volume(spec: &str, mode: OpenMode) -> Result<(PathBuf, Volume)> {
    let path = resolve::resolve(spec)?;
    let dev = FileDevice::open(&path, mode)?;
    let vol = Volume::open(Box::new(dev))?;
    Ok((path, vol))
}
