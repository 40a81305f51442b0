//! Quota files (`usrquota`, `grpquota`) of a fresh volume, as `mkfs.ocfs2`
//! 1.8.7 writes them (docs/mkfs-layout.md §3.8.5; ocfs2-tools libocfs2/quota.c,
//! mkfs.c:format_quota_files), but with zeros where 1.8.7 leaves heap garbage
//! and with the correct global info block.
//!
//! Pure functions: they return the blocks of each file and the size rules of
//! its inode; the caller allocates the clusters, fills in the inode and
//! writes the blocks.
//!
//! # Files
//!
//! - **Global** (`aquota.user`, `aquota.group`): block 0 holds the header and
//!   the info, blocks `1..=depth` the radix tree that leads id 0 to its dquot
//!   (every level uses entry 0), and block `depth + 1` the data block with
//!   the one dquot: id 0 (the root directory's uid and gid, always 0 with
//!   mkfs.ocfs2), `curinodes = 1`, `curspace = root_bytes`.
//! - **Local** (`aquota.user:NNNN`, `aquota.group:NNNN`, one per slot, all
//!   identical): block 0 holds the header and the info (`OLQF_CLEAN`, one
//!   chunk, two blocks), block 1 an all-zero chunk header.
//!
//! Every block ends in the 8-byte `ocfs2_disk_dqtrailer` (at `bs - 8`). With
//! `metaecc` it holds the block check of the block (CRC32 and Hamming code
//! over the whole block with these 8 bytes zeroed); without, it is zero.
//!
//! # Inodes (the caller's part)
//!
//! `i_flags` = [`INODE_FLAGS`] (VALID | SYSTEM | QUOTA), mode `0100644`,
//! uid/gid 0, one link. `i_size` and `i_clusters` follow
//! [`global_allocation`] and [`local_allocation`]:
//! `i_size = blocks × bs` (exactly the blocks returned here, never rounded up
//! to the cluster) and `i_clusters = ceil(i_size / cs)`.
//!
//! 1.8.7 allocates the first `ceil(2 × bs / cs)` clusters of a global file
//! when it creates it and the rest one cluster at a time when it inserts the
//! dquot, after the local files of both types have been made. On a fresh
//! volume that gives a global file two extents (`initial_clusters`, then the
//! rest) when `i_clusters > initial_clusters`, else one; a local file always
//! has one. 1.8.7 writes nothing to the allocated blocks past `i_size`
//! (stale device contents stay there): zero them.

use ocfs2_format::blockcheck::{crc32_le_seed_ones, hamming_encode};
use ocfs2_format::quota::{entry, Usage, DEFAULT_INFO};
pub use ocfs2_format::quota::{local_file, tree_depth, QuotaType, LOCAL_BLOCKS, RESERVED_SPACE};

/// `i_flags` of every quota inode: `OCFS2_VALID_FL | OCFS2_SYSTEM_FL |
/// `OCFS2_QUOTA_FL`.
pub const INODE_FLAGS: u32 = 0x1011;

use ocfs2_format::quota::GLOBAL_INIT_BLOCKS;

/// Size of a quota inode: what goes in `i_size` and `i_clusters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Blocks of the file (as many as the functions below return).
    pub blocks: u32,
    /// `i_size = blocks × bs`.
    pub i_size: u64,
    /// `i_clusters = ceil(i_size / cs)`.
    pub i_clusters: u32,
    /// Clusters 1.8.7 allocates when it creates the file, `ceil(2 × bs / cs)`;
    /// the other `i_clusters - initial_clusters` come later (a second
    /// extent on a fresh volume).
    pub initial_clusters: u32,
}

fn check_block_size(block_size: u32) -> usize {
    assert!(
        matches!(block_size, 512 | 1024 | 2048 | 4096),
        "quota: block size {block_size} is not 512, 1K, 2K or 4K"
    );
    block_size as usize
}

fn allocation(blocks: u32, block_size: u32, cluster_size: u32) -> Allocation {
    check_block_size(block_size);
    assert!(
        cluster_size.is_power_of_two() && cluster_size >= block_size,
        "quota: bad cluster size {cluster_size}"
    );
    let clusters = |blocks: u32| {
        u32::try_from((u64::from(blocks) * u64::from(block_size)).div_ceil(u64::from(cluster_size)))
            .expect("a few clusters")
    };
    Allocation {
        blocks,
        i_size: u64::from(blocks) * u64::from(block_size),
        i_clusters: clusters(blocks),
        initial_clusters: clusters(GLOBAL_INIT_BLOCKS.min(blocks)),
    }
}

/// Blocks of a global file after mkfs: info, `depth` tree blocks, one data
/// block (6 at 2K/4K, 7 at 512/1K).
pub fn global_blocks(block_size: u32) -> u32 {
    tree_depth(block_size) + 2
}

/// `i_size` and `i_clusters` of a global quota inode.
pub fn global_allocation(block_size: u32, cluster_size: u32) -> Allocation {
    allocation(global_blocks(block_size), block_size, cluster_size)
}

/// `i_size` and `i_clusters` of a local quota inode.
pub fn local_allocation(block_size: u32, cluster_size: u32) -> Allocation {
    allocation(LOCAL_BLOCKS, block_size, cluster_size)
}

/// The block check of a quota block, from its trailer at `len - 8`: crc32
/// and Hamming code of the block with the trailer's 8 bytes zeroed (what
/// `ocfs2_compute_meta_ecc` computes into `dq_check`).
pub fn trailer_check(block: &[u8]) -> (u32, u16) {
    let off = block.len() - RESERVED_SPACE;
    let mut tmp = block.to_vec();
    tmp[off..].fill(0);
    // The Hamming code of a block of up to 4 KiB fits 16 bits; the kernel
    // keeps the low 16.
    (crc32_le_seed_ones(&tmp), hamming_encode(&tmp) as u16)
}

/// Compute and store the block check in the trailer of a quota block:
/// `bc_crc32e` (le32) at `len - 8`, `bc_ecc` (le16) at `len - 4`, zero
/// `bc_reserved1` at `len - 2`.
pub fn set_trailer_check(block: &mut [u8]) {
    let off = block.len() - RESERVED_SPACE;
    block[off..].fill(0);
    let crc = crc32_le_seed_ones(block);
    let ecc = hamming_encode(block) as u16;
    block[off..off + 4].copy_from_slice(&crc.to_le_bytes());
    block[off + 4..off + 6].copy_from_slice(&ecc.to_le_bytes());
}

/// Blocks of the global quota file (`aquota.user` / `aquota.group`) of a
/// fresh volume whose only charged inode is the root directory:
/// `curinodes = 1`, `curspace = root_bytes` (the root's `i_clusters × cs`,
/// in bytes: 0 when the root is inline).
///
/// Returns [`global_blocks`] blocks of `block_size` bytes, in file order
/// (`ocfs2_format::quota::global_file` with the one dquot): block 0 has
/// zeros from 0x20 to `bs - 9` (1.8.7: heap garbage) and the correct info
/// `dqi_blocks = depth + 2`, `dqi_free_blk = 0`, `dqi_free_entry = depth +
/// 1` (1.8.7 without inline-data and with indexed-dirs: the stale `2, 0,
/// 0`).
pub fn global_file(t: QuotaType, block_size: u32, meta_ecc: bool, root_bytes: u64) -> Vec<Vec<u8>> {
    check_block_size(block_size);
    let root = Usage {
        inodes: 1,
        bytes: root_bytes,
    };
    let dquots = std::collections::BTreeMap::from([(0, entry(0, root))]);
    ocfs2_format::quota::global_file(t, block_size, meta_ecc, DEFAULT_INFO, &dquots)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ------------------------------------------------------------ helpers

    /// Nonzero runs of a block: (offset, hex bytes); zeros elsewhere.
    type Runs = &'static [(usize, &'static str)];

    fn unhex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0, "odd hex {s}");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn expand(bs: usize, runs: Runs) -> Vec<u8> {
        let mut b = vec![0u8; bs];
        for &(off, hex) in runs {
            let bytes = unhex(hex);
            b[off..off + bytes.len()].copy_from_slice(&bytes);
        }
        b
    }

    /// First differing offset of two blocks, for messages.
    fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
        a.iter().zip(b).position(|(x, y)| x != y)
    }

    fn assert_block_eq(got: &[u8], want: &[u8], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        if let Some(i) = first_diff(got, want) {
            let end = (i + 16).min(got.len());
            panic!(
                "{what}: first difference at {i:#x}: ours {:02x?}, mkfs.ocfs2 {:02x?}",
                &got[i..end],
                &want[i..end]
            );
        }
    }

    /// Compare a global file with 1.8.7's, leaving out block 0's garbage
    /// (0x20..bs-8) and, with metaecc, block 0's trailer (a check over
    /// that garbage).
    fn assert_global_eq(got: &[Vec<u8>], want: &[Vec<u8>], ecc: bool, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: block count");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if i == 0 {
                let bs = g.len();
                let (mut g, mut w) = (g.clone(), w.clone());
                let end = if ecc { bs } else { bs - RESERVED_SPACE };
                g[0x20..end].fill(0);
                w[0x20..end].fill(0);
                assert_block_eq(&g, &w, &format!("{what} block 0"));
            } else {
                assert_block_eq(g, w, &format!("{what} block {i}"));
            }
        }
    }

    // ------------------------------------------- constants from mkfs.ocfs2

    struct Case {
        bs: u32,
        ecc: bool,
        /// Block 0 with 0x20..bs-8 zeroed and, with metaecc, its trailer
        /// zeroed too (1.8.7 checks its garbage).
        user_global: &'static [Runs],
        group_global: &'static [Runs],
        user_local: &'static [Runs],
        group_local: &'static [Runs],
    }

    /// Nonzero bytes of the quota files of volumes made by Debian's
    /// mkfs.ocfs2 1.8.7 (`-M local -N 4 -C 4K -b BS`, 2 GiB image), with
    /// `--fs-feature-level=max-features` (metaecc) or
    /// `--fs-features=usrquota,grpquota` (no metaecc). The root is inline
    /// there, so `curspace` is 0. Local files of slot 0 (all slots are
    /// equal).
    const CASES: &[Case] = &[
        // bs 4096, metaecc
        Case {
            bs: 4096,
            ecc: true,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02"), (0xff8, "b6ad528d05")],
                &[(0x0, "03"), (0xff8, "9a048ad706")],
                &[(0x0, "04"), (0xff8, "1f5df08806")],
                &[(0x0, "05"), (0xff8, "33f428d205")],
                &[(0x8, "01"), (0x28, "01"), (0xff8, "737519150201")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02"), (0xff8, "b6ad528d05")],
                &[(0x0, "03"), (0xff8, "9a048ad706")],
                &[(0x0, "04"), (0xff8, "1f5df08806")],
                &[(0x0, "05"), (0xff8, "33f428d205")],
                &[(0x8, "01"), (0x28, "01"), (0xff8, "737519150201")],
            ],
            user_local: &[
                &[
                    (0x0, "c024f50c00000000010000000100000002"),
                    (0xff8, "90aefd31bc"),
                ],
                &[(0xff8, "eeffe338")],
            ],
            group_local: &[
                &[
                    (0x0, "c124f50c00000000010000000100000002"),
                    (0xff8, "bc07256bbf"),
                ],
                &[(0xff8, "eeffe338")],
            ],
        },
        // bs 4096, no metaecc
        Case {
            bs: 4096,
            ecc: false,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            user_local: &[&[(0x0, "c024f50c00000000010000000100000002")], &[]],
            group_local: &[&[(0x0, "c124f50c00000000010000000100000002")], &[]],
        },
        // bs 2048, metaecc
        Case {
            bs: 2048,
            ecc: true,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02"), (0x7f8, "e6370bc405")],
                &[(0x0, "03"), (0x7f8, "858dbd4c06")],
                &[(0x0, "04"), (0x7f8, "2ea65e4106")],
                &[(0x0, "05"), (0x7f8, "4d1ce8c905")],
                &[(0x8, "01"), (0x28, "01"), (0x7f8, "a0e4f35d0201")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02"), (0x7f8, "e6370bc405")],
                &[(0x0, "03"), (0x7f8, "858dbd4c06")],
                &[(0x0, "04"), (0x7f8, "2ea65e4106")],
                &[(0x0, "05"), (0x7f8, "4d1ce8c905")],
                &[(0x8, "01"), (0x28, "01"), (0x7f8, "a0e4f35d0201")],
            ],
            user_local: &[
                &[
                    (0x0, "c024f50c00000000010000000100000002"),
                    (0x7f8, "eac59afcbc"),
                ],
                &[(0x7f8, "6145170e")],
            ],
            group_local: &[
                &[
                    (0x0, "c124f50c00000000010000000100000002"),
                    (0x7f8, "897f2c74bf"),
                ],
                &[(0x7f8, "6145170e")],
            ],
        },
        // bs 2048, no metaecc
        Case {
            bs: 2048,
            ecc: false,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000060000000000000005",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            user_local: &[&[(0x0, "c024f50c00000000010000000100000002")], &[]],
            group_local: &[&[(0x0, "c124f50c00000000010000000100000002")], &[]],
        },
        // bs 1024, metaecc
        Case {
            bs: 1024,
            ecc: true,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02"), (0x3f8, "4eb4183a05")],
                &[(0x0, "03"), (0x3f8, "214589c206")],
                &[(0x0, "04"), (0x3f8, "ef99ef4406")],
                &[(0x0, "05"), (0x3f8, "80687ebc05")],
                &[(0x0, "06"), (0x3f8, "707dbd6e03")],
                &[(0x8, "01"), (0x28, "01"), (0x3f8, "076705360201")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02"), (0x3f8, "4eb4183a05")],
                &[(0x0, "03"), (0x3f8, "214589c206")],
                &[(0x0, "04"), (0x3f8, "ef99ef4406")],
                &[(0x0, "05"), (0x3f8, "80687ebc05")],
                &[(0x0, "06"), (0x3f8, "707dbd6e03")],
                &[(0x8, "01"), (0x28, "01"), (0x3f8, "076705360201")],
            ],
            user_local: &[
                &[
                    (0x0, "c024f50c00000000010000000100000002"),
                    (0x3f8, "1b20a46fbc"),
                ],
                &[(0x3f8, "d1504a10")],
            ],
            group_local: &[
                &[
                    (0x0, "c124f50c00000000010000000100000002"),
                    (0x3f8, "74d13597bf"),
                ],
                &[(0x3f8, "d1504a10")],
            ],
        },
        // bs 1024, no metaecc
        Case {
            bs: 1024,
            ecc: false,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x0, "06")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x0, "06")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            user_local: &[&[(0x0, "c024f50c00000000010000000100000002")], &[]],
            group_local: &[&[(0x0, "c124f50c00000000010000000100000002")], &[]],
        },
        // bs 512, metaecc
        Case {
            bs: 512,
            ecc: true,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02"), (0x1f8, "d73cb06d05")],
                &[(0x0, "03"), (0x1f8, "ffe7c27d06")],
                &[(0x0, "04"), (0x1f8, "27e69e0c06")],
                &[(0x0, "05"), (0x1f8, "0f3dec1c05")],
                &[(0x0, "06"), (0x1f8, "77507b2c03")],
                &[(0x8, "01"), (0x28, "01"), (0x1f8, "d35683df0201")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02"), (0x1f8, "d73cb06d05")],
                &[(0x0, "03"), (0x1f8, "ffe7c27d06")],
                &[(0x0, "04"), (0x1f8, "27e69e0c06")],
                &[(0x0, "05"), (0x1f8, "0f3dec1c05")],
                &[(0x0, "06"), (0x1f8, "77507b2c03")],
                &[(0x8, "01"), (0x28, "01"), (0x1f8, "d35683df0201")],
            ],
            user_local: &[
                &[
                    (0x0, "c024f50c00000000010000000100000002"),
                    (0x1f8, "87544ce5bc"),
                ],
                &[(0x1f8, "878a554d")],
            ],
            group_local: &[
                &[
                    (0x0, "c124f50c00000000010000000100000002"),
                    (0x1f8, "af8f3ef5bf"),
                ],
                &[(0x1f8, "878a554d")],
            ],
        },
        // bs 512, no metaecc
        Case {
            bs: 512,
            ecc: false,
            user_global: &[
                &[(
                    0x0,
                    "7024f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x0, "06")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            group_global: &[
                &[(
                    0x0,
                    "7124f50c00000000803a0900803a090010270000070000000000000006",
                )],
                &[(0x0, "02")],
                &[(0x0, "03")],
                &[(0x0, "04")],
                &[(0x0, "05")],
                &[(0x0, "06")],
                &[(0x8, "01"), (0x28, "01")],
            ],
            user_local: &[&[(0x0, "c024f50c00000000010000000100000002")], &[]],
            group_local: &[&[(0x0, "c124f50c00000000010000000100000002")], &[]],
        },
    ];

    /// 1.8.7's block 0 of `aquota.user` as written, garbage included (a
    /// copy of part of the root inode) with its check over it: bs 4096 and
    /// 512, metaecc.
    const GARBAGE_BLOCK0_4096: Runs = &[
        (0x0, "7024f50c00000000803a0900803a090010270000060000000000000005000000380f000000000000ed410300110000004cd4066b000000004cd4066b000000004cd4066b"),
        (0x50, "05"),
        (0x60, "8a39c0df"),
        (0x76, "01"),
        (0x80, "97aefa566802"),
        (0xc0, "380f0000000000000500000000000000100001022e0000000500000000000000280f02022e2e"),
        (0xff8, "88bef9908d02"),
    ];
    const GARBAGE_BLOCK0_512: Runs = &[
        (0x0, "7024f50c00000000803a0900803a0900102700000700000000000000060000003801000000000000ed41030011000000add3066b00000000add3066b00000000add3066b"),
        (0x50, "11"),
        (0x60, "bde5b6e3"),
        (0x76, "01"),
        (0x80, "169d2e6e6103"),
        (0xc0, "38010000000000001100000000000000100001022e0000001100000000000000280102022e2e"),
        (0x1f8, "d15650bc5d03"),
    ];

    /// The data block of `aquota.user` when the root is not inline
    /// (`--fs-features=usrquota,grpquota,metaecc,indexed-dirs,noinline-data`,
    /// `-C 4K`: the root has one cluster, `curspace` = 4096 at 0x40).
    const DATA_BLOCK_ROOT_4096_BS4096: Runs = &[
        (0x8, "01"),
        (0x28, "01"),
        (0x41, "10"),
        (0xff8, "d52891511503"),
    ];
    const DATA_BLOCK_ROOT_4096_BS512: Runs = &[
        (0x8, "01"),
        (0x28, "01"),
        (0x41, "10"),
        (0x1f8, "360f09c31503"),
    ];

    fn expand_file(bs: u32, runs: &[Runs]) -> Vec<Vec<u8>> {
        runs.iter().map(|r| expand(bs as usize, r)).collect()
    }

    // -------------------------------------------------------------- tests

    #[test]
    fn files_match_mkfs_ocfs2_constants() {
        for c in CASES {
            let what = |f: &str| format!("bs {} ecc {} {f}", c.bs, c.ecc);
            for (t, global, local) in [
                (QuotaType::User, c.user_global, c.user_local),
                (QuotaType::Group, c.group_global, c.group_local),
            ] {
                let got = global_file(t, c.bs, c.ecc, 0);
                assert_global_eq(
                    &got,
                    &expand_file(c.bs, global),
                    c.ecc,
                    &what(t.global_name()),
                );
                let got = local_file(t, c.bs, c.ecc);
                let want = expand_file(c.bs, local);
                assert_eq!(got.len(), want.len());
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_block_eq(g, w, &format!("{} block {i}", what(&t.local_name(0))));
                }
            }
        }
    }

    #[test]
    fn cases_cover_every_block_size_with_and_without_metaecc() {
        for bs in [512, 1024, 2048, 4096] {
            for ecc in [false, true] {
                assert!(
                    CASES.iter().any(|c| c.bs == bs && c.ecc == ecc),
                    "bs {bs} ecc {ecc}"
                );
            }
        }
    }

    #[test]
    fn curspace_is_root_bytes() {
        for (bs, want) in [
            (4096, DATA_BLOCK_ROOT_4096_BS4096),
            (512, DATA_BLOCK_ROOT_4096_BS512),
        ] {
            let f = global_file(QuotaType::User, bs, true, 4096);
            assert_block_eq(
                f.last().unwrap(),
                &expand(bs as usize, want),
                &format!("bs {bs} data"),
            );
            // The tree blocks do not depend on the usage.
            let f0 = global_file(QuotaType::User, bs, true, 0);
            assert_eq!(f[1..f.len() - 1], f0[1..f0.len() - 1]);
        }
        let f = global_file(QuotaType::Group, 4096, false, 0x1234_5678_9ABC);
        let data = f.last().unwrap();
        assert_eq!(
            data[16 + 0x30..16 + 0x38],
            0x1234_5678_9ABCu64.to_le_bytes()
        );
        assert_eq!(data[16 + 0x18..16 + 0x20], 1u64.to_le_bytes());
    }

    #[test]
    fn trailer_check_matches_mkfs_over_its_garbage() {
        // The check of 1.8.7's block 0, computed over its garbage, is what
        // trailer_check computes: the same algorithm as ours on block 0.
        for (bs, runs) in [(4096usize, GARBAGE_BLOCK0_4096), (512, GARBAGE_BLOCK0_512)] {
            let b = expand(bs, runs);
            let crc = u32::from_le_bytes(b[bs - 8..bs - 4].try_into().unwrap());
            let ecc = u16::from_le_bytes(b[bs - 4..bs - 2].try_into().unwrap());
            assert_eq!(trailer_check(&b), (crc, ecc), "bs {bs}");
            let mut again = b.clone();
            set_trailer_check(&mut again);
            assert_eq!(again, b);
        }
    }

    #[test]
    fn every_block_validates_with_metaecc_and_has_zero_trailer_without() {
        for bs in [512u32, 1024, 2048, 4096] {
            for t in QuotaType::ALL {
                let files = [global_file(t, bs, true, 65536), local_file(t, bs, true)];
                for b in files.iter().flatten() {
                    let n = b.len();
                    let crc = u32::from_le_bytes(b[n - 8..n - 4].try_into().unwrap());
                    let ecc = u16::from_le_bytes(b[n - 4..n - 2].try_into().unwrap());
                    assert_eq!(trailer_check(b), (crc, ecc));
                    assert_eq!(b[n - 2..], [0, 0], "bc_reserved1");
                    // The format crate's validator agrees (through a check
                    // field at the same place as a directory trailer's).
                    let mut copy = b.clone();
                    assert_eq!(
                        ocfs2_format::blockcheck::validate(
                            &mut copy,
                            ocfs2_format::blockcheck::CheckAt::DirTrailer
                        ),
                        ocfs2_format::blockcheck::CheckResult::Ok
                    );
                }
                let files = [global_file(t, bs, false, 65536), local_file(t, bs, false)];
                for b in files.iter().flatten() {
                    assert!(b[b.len() - RESERVED_SPACE..].iter().all(|&x| x == 0));
                }
            }
        }
    }

    #[test]
    fn tree_depths() {
        assert_eq!(tree_depth(512), 5);
        assert_eq!(tree_depth(1024), 5);
        assert_eq!(tree_depth(2048), 4);
        assert_eq!(tree_depth(4096), 4);
        for bs in [512, 1024, 2048, 4096] {
            assert_eq!(
                global_file(QuotaType::User, bs, false, 0).len() as u32,
                global_blocks(bs)
            );
            assert_eq!(
                local_file(QuotaType::User, bs, false).len() as u32,
                LOCAL_BLOCKS
            );
        }
    }

    #[test]
    fn info_block_is_the_correct_one() {
        for bs in [512u32, 1024, 2048, 4096] {
            let b0 = &global_file(QuotaType::Group, bs, false, 0)[0];
            let le = |o: usize| u32::from_le_bytes(b0[o..o + 4].try_into().unwrap());
            let depth = tree_depth(bs);
            assert_eq!(
                [le(0), le(4), le(8), le(12), le(16), le(20), le(24), le(28)],
                [
                    0x0CF5_2471,
                    0,
                    604_800,
                    604_800,
                    10_000,
                    depth + 2,
                    0,
                    depth + 1
                ]
            );
            assert!(b0[0x20..].iter().all(|&x| x == 0));
        }
    }

    /// `ocfs2_get_free_dqblk`'s growth, one block at a time, from the
    /// `ceil(2 blocks / cs)` clusters of `ocfs2_init_global_quota_file`.
    fn simulate_1_8_7(bs: u32, cs: u32, blocks: u32) -> (u64, u32, u32) {
        let bpc = cs / bs;
        let initial = (2 * bs).div_ceil(cs);
        let mut clusters = initial;
        let mut dqi_blocks = 2;
        let mut i_size = 2 * u64::from(bs);
        while dqi_blocks < blocks {
            if dqi_blocks == clusters * bpc {
                clusters += 1;
            }
            dqi_blocks += 1;
            i_size = u64::from(dqi_blocks) * u64::from(bs);
        }
        (i_size, clusters, initial)
    }

    #[test]
    fn allocation_rules() {
        // (bs, cs, global i_size, global i_clusters, global initial, local
        // i_size, local i_clusters), as on volumes made by mkfs.ocfs2 1.8.7.
        let seen: &[(u32, u32, u64, u32, u32, u64, u32)] = &[
            (512, 4096, 3584, 1, 1, 1024, 1),
            (512, 65536, 3584, 1, 1, 1024, 1),
            (512, 1 << 20, 3584, 1, 1, 1024, 1),
            (1024, 4096, 7168, 2, 1, 2048, 1),
            (1024, 65536, 7168, 1, 1, 2048, 1),
            (1024, 1 << 20, 7168, 1, 1, 2048, 1),
            (2048, 4096, 12288, 3, 1, 4096, 1),
            (2048, 65536, 12288, 1, 1, 4096, 1),
            (2048, 1 << 20, 12288, 1, 1, 4096, 1),
            (4096, 4096, 24576, 6, 2, 8192, 2),
            (4096, 65536, 24576, 1, 1, 8192, 1),
            (4096, 1 << 20, 24576, 1, 1, 8192, 1),
        ];
        for &(bs, cs, gsize, gcl, ginit, lsize, lcl) in seen {
            let g = global_allocation(bs, cs);
            assert_eq!(
                (g.i_size, g.i_clusters, g.initial_clusters),
                (gsize, gcl, ginit),
                "global bs {bs} cs {cs}"
            );
            assert_eq!(g.blocks, global_blocks(bs));
            let l = local_allocation(bs, cs);
            assert_eq!(
                (l.i_size, l.i_clusters, l.initial_clusters),
                (lsize, lcl, lcl),
                "local bs {bs} cs {cs}"
            );
        }
        let mut cs = 4096;
        while cs <= 1 << 20 {
            for bs in [512u32, 1024, 2048, 4096] {
                let g = global_allocation(bs, cs);
                assert_eq!(
                    simulate_1_8_7(bs, cs, g.blocks),
                    (g.i_size, g.i_clusters, g.initial_clusters)
                );
                let l = local_allocation(bs, cs);
                assert_eq!(
                    simulate_1_8_7(bs, cs, LOCAL_BLOCKS),
                    (l.i_size, l.i_clusters, l.initial_clusters)
                );
            }
            cs *= 2;
        }
    }

    #[test]
    fn names() {
        assert_eq!(QuotaType::User.global_name(), "aquota.user");
        assert_eq!(QuotaType::Group.local_name(3), "aquota.group:0003");
        assert_eq!(QuotaType::User.local_name(254), "aquota.user:0254");
    }

    #[test]
    #[should_panic(expected = "block size")]
    fn bad_block_size_panics() {
        let _ = global_file(QuotaType::User, 8192, false, 0);
    }

    // ------------------------------------------------- against mkfs.ocfs2

    mod oracle {
        use super::*;
        use ocfs2_format::{FileDevice, OpenMode, Volume};
        use std::path::{Path, PathBuf};
        use std::process::Command;

        fn find_tool(name: &str) -> PathBuf {
            let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default();
            dirs.extend(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
            dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
                panic!("{name} not found: install Debian's ocfs2-tools (`make deps`) to run this test")
            })
        }

        /// Removes the image when dropped.
        struct Image(PathBuf);
        impl Drop for Image {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }

        fn mkfs(bs: u32, cs: u32, features: &str) -> Image {
            let path = std::env::temp_dir().join(format!(
                "ocfs2-mkfs-quota-{}-{bs}-{cs}-{}.img",
                std::process::id(),
                features.replace([',', '='], "_")
            ));
            let img = Image(path);
            let f = std::fs::File::create(&img.0).expect("create image");
            f.set_len(2 << 30).expect("size image");
            drop(f);
            let out = Command::new(find_tool("mkfs.ocfs2"))
                .args(["-q", "-F", "-M", "local", "-N", "4"])
                .args(["-b", &bs.to_string(), "-C", &cs.to_string()])
                .arg(features)
                .arg(&img.0)
                .output()
                .expect("run mkfs.ocfs2");
            assert!(
                out.status.success(),
                "mkfs.ocfs2: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            img
        }

        /// A quota inode's (i_flags, i_size, i_clusters, extent lengths).
        type InodeFacts = (u32, u64, u32, Vec<u32>);

        /// The blocks of a system file up to i_size, and its inode's facts.
        fn read_quota_file(vol: &Volume, name: &str) -> (Vec<Vec<u8>>, InodeFacts) {
            let ino = vol
                .read_inode(vol.system_inode(name).expect(name))
                .expect("inode");
            let extents = vol.extents(&ino).expect("extents");
            let bs = u64::from(vol.block_size());
            let blocks = (0..ino.size() / bs)
                .map(|l| {
                    vol.read_block(vol.map_block(&extents, l).expect("mapped"))
                        .expect("read")
                })
                .collect();
            let di = ino.di();
            (
                blocks,
                (
                    di.i_flags.get(),
                    ino.size(),
                    di.i_clusters.get(),
                    extents.iter().map(|e| e.clusters).collect(),
                ),
            )
        }

        fn check_volume(path: &Path, bs: u32, cs: u32, ecc: bool, stale_info: bool) {
            let dev = FileDevice::open(path, OpenMode::default()).expect("open image");
            let vol = Volume::open(Box::new(dev)).expect("open volume");
            assert_eq!(vol.meta_ecc(), ecc);
            let root = vol.read_inode(vol.root_blkno()).expect("root");
            let root_bytes = u64::from(root.di().i_clusters.get()) * u64::from(cs);
            let what = format!("bs {bs} cs {cs} ecc {ecc}");
            let ga = global_allocation(bs, cs);
            let la = local_allocation(bs, cs);
            let extents = |a: Allocation| {
                if a.i_clusters > a.initial_clusters {
                    vec![a.initial_clusters, a.i_clusters - a.initial_clusters]
                } else {
                    vec![a.i_clusters]
                }
            };
            for t in QuotaType::ALL {
                let (mut want, inode) = read_quota_file(&vol, t.global_name());
                assert_eq!(
                    inode,
                    (INODE_FLAGS, ga.i_size, ga.i_clusters, extents(ga)),
                    "{what} {}",
                    t.global_name()
                );
                if ecc {
                    // 1.8.7's check of block 0 covers its garbage: still ours.
                    let b0 = &want[0];
                    let n = b0.len();
                    let stored = (
                        u32::from_le_bytes(b0[n - 8..n - 4].try_into().unwrap()),
                        u16::from_le_bytes(b0[n - 4..n - 2].try_into().unwrap()),
                    );
                    assert_eq!(trailer_check(b0), stored, "{what} block 0 check");
                }
                let got = global_file(t, bs, ecc, root_bytes);
                if stale_info {
                    // 1.8.7 flushes a stale info here (dqi_blocks 2,
                    // dqi_free_entry 0; docs §3.8.5): compare all but
                    // those fields.
                    let stale: Vec<u8> =
                        [2u32, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
                    assert_eq!(want[0][0x14..0x20], stale[..], "{what} stale info");
                    want[0][0x14..0x20].copy_from_slice(&got[0][0x14..0x20]);
                }
                assert_global_eq(&got, &want, ecc, &format!("{what} {}", t.global_name()));
                for slot in 0..4 {
                    let name = t.local_name(slot);
                    let (want, inode) = read_quota_file(&vol, &name);
                    assert_eq!(
                        inode,
                        (INODE_FLAGS, la.i_size, la.i_clusters, extents(la)),
                        "{what} {name}"
                    );
                    let got = local_file(t, bs, ecc);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_block_eq(g, w, &format!("{what} {name} block {i}"));
                    }
                    assert_eq!(got.len(), want.len());
                }
            }
        }

        /// Every block size, cluster sizes 4K, 64K and 1M, with and without
        /// metaecc, and with a non-inline root (curspace > 0).
        #[test]
        #[ignore = "runs Debian's mkfs.ocfs2 (ocfs2-tools 1.8.7): cargo test -p ocfs2-mkfs -- --ignored"]
        fn quota_files_equal_mkfs_ocfs2() {
            for bs in [512u32, 1024, 2048, 4096] {
                for cs in [4096u32, 65536, 1 << 20] {
                    for (features, ecc, stale) in [
                        ("--fs-features=usrquota,grpquota", false, false),
                        ("--fs-features=usrquota,grpquota,metaecc", true, false),
                        ("--fs-feature-level=max-features", true, false),
                        (
                            "--fs-features=usrquota,grpquota,metaecc,indexed-dirs,noinline-data",
                            true,
                            true,
                        ),
                        (
                            "--fs-features=usrquota,grpquota,indexed-dirs,noinline-data",
                            false,
                            true,
                        ),
                    ] {
                        let img = mkfs(bs, cs, features);
                        check_volume(&img.0, bs, cs, ecc, stale);
                    }
                }
            }
        }
    }
}
