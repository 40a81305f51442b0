//! What a device already holds: file system signatures (as blkid would find
//! them) and whether the kernel has it mounted. Used by the writing tools to
//! refuse before they write a byte.

use crate::io::BlockIo;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A signature at a byte offset.
struct Sig {
    name: &'static str,
    offset: u64,
    magic: &'static [u8],
}

const SIGS: &[Sig] = &[
    Sig {
        name: "xfs",
        offset: 0,
        magic: b"XFSB",
    },
    Sig {
        name: "ext2/ext3/ext4",
        offset: 1024 + 0x38,
        magic: &[0x53, 0xEF],
    },
    Sig {
        name: "btrfs",
        offset: 0x1_0040,
        magic: b"_BHRfS_M",
    },
    Sig {
        name: "LUKS",
        offset: 0,
        magic: b"LUKS\xba\xbe",
    },
    Sig {
        name: "swap",
        offset: 4096 - 10,
        magic: b"SWAPSPACE2",
    },
    Sig {
        name: "swap",
        offset: 4096 - 10,
        magic: b"SWAP-SPACE",
    },
    Sig {
        name: "vfat",
        offset: 0x52,
        magic: b"FAT32   ",
    },
    Sig {
        name: "vfat",
        offset: 0x36,
        magic: b"FAT16   ",
    },
    Sig {
        name: "vfat",
        offset: 0x36,
        magic: b"FAT12   ",
    },
    Sig {
        name: "ntfs",
        offset: 3,
        magic: b"NTFS    ",
    },
    Sig {
        name: "LVM2 member",
        offset: 0x218,
        magic: b"LVM2 001",
    },
    Sig {
        name: "iso9660",
        offset: 0x8001,
        magic: b"CD001",
    },
    Sig {
        name: "squashfs",
        offset: 0,
        magic: b"hsqs",
    },
    Sig {
        name: "f2fs",
        offset: 0x400,
        magic: &[0x10, 0x20, 0xF5, 0xF2],
    },
    Sig {
        name: "bcachefs",
        offset: 0x1018,
        magic: &[0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca],
    },
];

/// The OCFS2 superblock signature at block 2 for each block size.
fn ocfs2_at(dev: &dyn BlockIo) -> bool {
    (9..=12).any(|bits| {
        let off = 2u64 << bits;
        let mut b = [0u8; 6];
        dev.read_at(off, &mut b).is_ok() && &b == b"OCFSV2"
    })
}

/// Name of the file system (or other format) the device holds, if any.
pub fn existing_signature(dev: &dyn BlockIo) -> Option<&'static str> {
    if ocfs2_at(dev) {
        return Some("ocfs2");
    }
    SIGS.iter().find_map(|s| {
        let mut b = vec![0u8; s.magic.len()];
        (dev.read_at(s.offset, &mut b).is_ok() && b == s.magic).then_some(s.name)
    })
}

/// Undo the octal escapes of /proc/self/mountinfo (`\040` for space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the device is mounted on this host, if it is: a block device by its
/// device number in /proc/self/mountinfo, an image file by the loop devices
/// that back it (/sys/block/loop*/loop/backing_file) and by path.
pub fn mounted_at(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut devs: Vec<(u32, u32)> = Vec::new();
    if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        devs.push((
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        ));
    } else if let Ok(canon) = std::fs::canonicalize(path) {
        // Loop devices backed by this file.
        if let Ok(rd) = std::fs::read_dir("/sys/block") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with("loop") {
                    continue;
                }
                let bf = e.path().join("loop/backing_file");
                if let Ok(b) = std::fs::read_to_string(&bf) {
                    if Path::new(b.trim()) == canon {
                        if let Ok(d) = std::fs::read_to_string(e.path().join("dev")) {
                            if let Some((ma, mi)) = d.trim().split_once(':') {
                                if let (Ok(ma), Ok(mi)) = (ma.parse(), mi.parse()) {
                                    devs.push((ma, mi));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let canon = std::fs::canonicalize(path).ok();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 5 {
            continue;
        }
        let mnt = unescape(f[4]);
        if let Some((ma, mi)) = f[2].split_once(':') {
            if let (Ok(ma), Ok(mi)) = (ma.parse::<u32>(), mi.parse::<u32>()) {
                if devs.contains(&(ma, mi)) {
                    return Some(mnt);
                }
            }
        }
        // The mount source, after the " - " separator: fstype, source.
        if let Some(sep) = f.iter().position(|&x| x == "-") {
            if let (Some(src), Some(c)) = (f.get(sep + 2), canon.as_ref()) {
                if Path::new(&unescape(src)) == c.as_path() {
                    return Some(mnt);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemDevice;

    #[test]
    fn finds_signatures() {
        let mut d = vec![0u8; 1 << 20];
        assert_eq!(existing_signature(&MemDevice::new(d.clone())), None);
        d[1024 + 0x38] = 0x53;
        d[1024 + 0x39] = 0xEF;
        assert_eq!(
            existing_signature(&MemDevice::new(d.clone())),
            Some("ext2/ext3/ext4")
        );
        let mut d = vec![0u8; 1 << 20];
        d[2 * 1024..2 * 1024 + 6].copy_from_slice(b"OCFSV2");
        assert_eq!(existing_signature(&MemDevice::new(d)), Some("ocfs2"));
        let mut d = vec![0u8; 1 << 20];
        d[..4].copy_from_slice(b"XFSB");
        assert_eq!(existing_signature(&MemDevice::new(d)), Some("xfs"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn root_is_mounted() {
        // The root file system's device is mounted at "/" (a block device or
        // an overlay); a fresh temp file is not mounted anywhere.
        let f = std::env::temp_dir().join(format!("probe-test-{}", std::process::id()));
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(mounted_at(&f), None);
        std::fs::remove_file(&f).unwrap();
    }
}
