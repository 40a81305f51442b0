//! Errors of the format crate. Each names what it can: the block, the byte
//! offset, the expected and the found value. The device name is added by the
//! caller, who knows it.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: the block device refuses O_DIRECT ({source}): its reads would go through the page cache, which never shows another host's writes; refusing to decide on multiple mount protection from them")]
    NoDirect { path: PathBuf, source: io::Error },
    #[error("{path}: is a directory, not a device or image file")]
    IsDirectory { path: PathBuf },
    #[error("{path}: not a block device or regular file")]
    NotADevice { path: PathBuf },
    #[error("read error at byte {offset} ({len} bytes): {source}")]
    Read {
        offset: u64,
        len: usize,
        source: io::Error,
    },
    #[error("write error at byte {offset} ({len} bytes): {source}")]
    Write {
        offset: u64,
        len: usize,
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error(
        "block {blkno} lies past the end of the device ({blocks} blocks of {block_size} bytes)"
    )]
    PastEnd {
        blkno: u64,
        blocks: u64,
        block_size: u32,
    },
    #[error("no OCFS2 superblock: block 2 holds no \"OCFSV2\" signature at any block size from 512 to 4096 bytes")]
    NoSuperblock,
    #[error("truncated volume: the superblock describes {volume_bytes} bytes ({clusters} clusters of {cluster_size}) but the device holds {device_bytes}")]
    Truncated {
        volume_bytes: u64,
        clusters: u32,
        cluster_size: u32,
        device_bytes: u64,
    },
    #[error("block {blkno}: {msg}")]
    Corrupt { blkno: u64, msg: String },
    #[error("block {blkno}: metaecc block check failed (stored crc {stored:#010x}, computed {computed:#010x}) and one-bit correction did not help")]
    BadCheck {
        blkno: u64,
        stored: u32,
        computed: u32,
    },
    #[error("{0}: not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unsupported feature(s): {0}")]
    Unsupported(String),
}

impl Error {
    pub fn corrupt(blkno: u64, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            blkno,
            msg: msg.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
