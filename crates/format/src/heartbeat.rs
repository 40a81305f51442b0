//! The o2hb disk heartbeat: one block per node (O2NM_MAX_NODES = 255) at the
//! start of the `heartbeat` system file, each `block_bytes` long (the
//! device's logical sector size, 512 on image files). A live node rewrites
//! its block every 2 s with a new `hb_seq` (seconds since the epoch).
//! Layout of `struct o2hb_disk_heartbeat_block` (kernel
//! `fs/ocfs2/cluster/ocfs2_heartbeat.h`): `hb_seq` le64 at 0, `hb_node` u8 at
//! 8, 3 pad bytes, `hb_cksum` le32 at 12, `hb_generation` le64 at 16,
//! `hb_dead_ms` le32 at 24. The checksum is the kernel's `crc32_le(0, block,
//! block_bytes)` with `hb_cksum` zeroed.

use serde::Serialize;

/// Nodes an o2cb cluster can have (`O2NM_MAX_NODES`).
pub const MAX_NODES: usize = 255;

/// One node's heartbeat block, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HbBlock {
    /// Index of the block in the region (the node number it belongs to).
    pub index: u16,
    pub seq: u64,
    pub node: u8,
    pub cksum: u32,
    pub generation: u64,
    pub dead_ms: u32,
    /// The block is all zero: the node never heartbeated on this volume.
    pub never: bool,
    /// The stored checksum matches.
    pub cksum_ok: bool,
    /// The checksum computed over the block (with `hb_cksum` zeroed).
    pub computed: u32,
}

/// Why a heartbeat block cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HbError {
    #[error("heartbeat block {index}: {len} bytes, shorter than the 28-byte o2hb header")]
    Short { index: u16, len: usize },
    #[error("heartbeat block {index}: checksum {stored:#010x} stored, {computed:#010x} computed (a torn or damaged write)")]
    Checksum {
        index: u16,
        stored: u32,
        computed: u32,
    },
    #[error(
        "heartbeat block {index}: names node {node}, but block {index} belongs to node {index}"
    )]
    WrongNode { index: u16, node: u8 },
}

impl HbBlock {
    /// Why the block cannot be trusted, if it cannot (an all-zero block is
    /// a node that never heartbeated, not damage).
    pub fn damage(&self) -> Option<HbError> {
        if self.never {
            return None;
        }
        if !self.cksum_ok {
            return Some(HbError::Checksum {
                index: self.index,
                stored: self.cksum,
                computed: self.computed,
            });
        }
        if u16::from(self.node) != self.index {
            return Some(HbError::WrongNode {
                index: self.index,
                node: self.node,
            });
        }
        None
    }
}

/// Decode one block and refuse it when it is damaged.
pub fn decode_checked(index: u16, block: &[u8]) -> Result<HbBlock, HbError> {
    let b = decode(index, block).ok_or(HbError::Short {
        index,
        len: block.len(),
    })?;
    match b.damage() {
        Some(e) => Err(e),
        None => Ok(b),
    }
}

/// The kernel's raw `crc32_le(seed, data)`: reflected IEEE polynomial, no
/// final inversion.
pub fn crc32_le(seed: u32, data: &[u8]) -> u32 {
    let mut crc = seed;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Decode one block (`block.len()` is the region's block size, >= 28).
pub fn decode(index: u16, block: &[u8]) -> Option<HbBlock> {
    if block.len() < 28 {
        return None;
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([block[o], block[o + 1], block[o + 2], block[o + 3]]);
    let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
    let cksum = u32_at(12);
    let mut tmp = block.to_vec();
    tmp[12..16].fill(0);
    let computed = crc32_le(0, &tmp);
    Some(HbBlock {
        index,
        seq: u64_at(0),
        node: block[8],
        cksum,
        generation: u64_at(16),
        dead_ms: u32_at(24),
        never: block.iter().all(|&b| b == 0),
        cksum_ok: computed == cksum,
        computed,
    })
}

/// Encode a block as o2hb writes it (for tests and simulations).
pub fn encode(block_bytes: usize, seq: u64, node: u8, generation: u64, dead_ms: u32) -> Vec<u8> {
    let mut b = vec![0u8; block_bytes.max(32)];
    b[0..8].copy_from_slice(&seq.to_le_bytes());
    b[8] = node;
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[24..28].copy_from_slice(&dead_ms.to_le_bytes());
    let c = crc32_le(0, &b);
    b[12..16].copy_from_slice(&c.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_crc_matches_the_standard_one() {
        // The standard CRC-32 is crc32_le(~0, ..) inverted.
        assert_eq!(!crc32_le(!0, b"123456789"), 0xCBF4_3926);
        assert_eq!(!crc32_le(!0, b"abc"), crc32fast::hash(b"abc"));
    }

    /// Nodes 0 and 1 of a two-node o2cb cluster (Debian's stock 6.1 kernel
    /// under the kernel peer's cluster.sh), copied from the volume while both
    /// were mounted: 2 x 512 bytes from the start of //heartbeat.
    const KERNEL_BLOCKS: &[u8] = include_bytes!("../../../tests/fixtures/hb-stock-2nodes.bin");

    #[test]
    fn decodes_blocks_the_kernel_wrote() {
        for (i, b) in KERNEL_BLOCKS.chunks(512).enumerate() {
            let h = decode(i as u16, b).unwrap();
            assert!(h.cksum_ok, "node {i}: the kernel's checksum must verify");
            assert!(!h.never);
            assert_eq!(usize::from(h.node), i);
            assert_eq!(h.dead_ms, 62_000, "default dead threshold 31 x 2 s");
            assert_eq!(
                h.seq >> 24,
                0x6b,
                "hb_seq is seconds since the epoch (November 2026)"
            );
        }
        // Damage is caught.
        let mut bad = KERNEL_BLOCKS[..512].to_vec();
        bad[16] ^= 0x80;
        assert!(!decode(0, &bad).unwrap().cksum_ok);
    }

    /// Nodes 0 and 1 of a two-node o2cb cluster on the seed's MMP-patched
    /// 6.1 kernel (cluster.sh --mmp --hb-dead 7 --mount), both mounted, on a
    /// volume made by mkfs.ocfs2-mmp -N 2 --fs-features=mmp.
    const PATCHED_BLOCKS: &[u8] =
        include_bytes!("../../../tests/fixtures/hb-mmp-hbdead7-2nodes.bin");

    #[test]
    fn decodes_blocks_the_patched_kernel_wrote() {
        let blocks: Vec<HbBlock> = PATCHED_BLOCKS
            .chunks(512)
            .enumerate()
            .map(|(i, b)| decode_checked(i as u16, b).expect("sound kernel block"))
            .collect();
        assert_eq!(blocks.len(), 2);
        for (i, h) in blocks.iter().enumerate() {
            assert_eq!(usize::from(h.node), i);
            assert_eq!(h.dead_ms, 14_000, "dead threshold 7 x 2 s");
        }
        // Both written in the same second; each node has its own generation.
        assert_eq!(blocks[0].seq, 0x6b06_f2d1);
        assert_eq!(blocks[0].seq, blocks[1].seq);
        assert_eq!(blocks[0].generation, 0x1c3a_8ad7_4c38_a30b);
        assert_eq!(blocks[1].generation, 0x77d8_ba38_d60b_ee08);
        // Everything past the 28-byte header is zero, and covered by the
        // checksum: a stray byte there is damage.
        let mut bad = PATCHED_BLOCKS[..512].to_vec();
        assert!(bad[28..].iter().all(|&b| b == 0));
        bad[511] = 1;
        assert!(matches!(
            decode_checked(0, &bad),
            Err(HbError::Checksum { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_damaged_kernel_blocks_with_a_clear_error() {
        let good = &KERNEL_BLOCKS[512..1024];
        let ok = decode_checked(1, good).unwrap();
        assert_eq!(ok.node, 1);
        // A flipped bit in the generation: the checksum no longer matches.
        let mut flipped = good.to_vec();
        flipped[17] ^= 0x04;
        let e = decode_checked(1, &flipped).unwrap_err();
        assert!(
            matches!(e, HbError::Checksum { index: 1, stored, computed } if stored == ok.cksum && computed != stored)
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("heartbeat block 1: checksum 0x") && msg.contains("computed"),
            "{msg}"
        );
        // A torn write: the second half of the sector is zero.
        let mut torn = good.to_vec();
        torn[256..].fill(0);
        torn[0] ^= 1;
        assert!(matches!(
            decode_checked(1, &torn),
            Err(HbError::Checksum { .. })
        ));
        // A block read at the wrong place: node 1's block in slot 0 of the area.
        let e = decode_checked(0, good).unwrap_err();
        assert_eq!(e, HbError::WrongNode { index: 0, node: 1 });
        assert_eq!(
            e.to_string(),
            "heartbeat block 0: names node 1, but block 0 belongs to node 0"
        );
        // Too short to hold the header.
        assert_eq!(
            decode_checked(1, &good[..20]).unwrap_err().to_string(),
            "heartbeat block 1: 20 bytes, shorter than the 28-byte o2hb header"
        );
        // An all-zero block is a node that never heartbeated, not damage.
        let never = decode_checked(5, &[0u8; 512]).unwrap();
        assert!(never.never);
    }

    #[test]
    fn round_trip_and_damage() {
        let b = encode(512, 0x6b06_cb1b, 3, 0x1122_3344_5566_7788, 62_000);
        let h = decode(3, &b).unwrap();
        assert!(h.cksum_ok && !h.never);
        assert_eq!(
            (h.seq, h.node, h.generation, h.dead_ms),
            (0x6b06_cb1b, 3, 0x1122_3344_5566_7788, 62_000)
        );
        let mut bad = b.clone();
        bad[100] ^= 1;
        assert!(!decode(3, &bad).unwrap().cksum_ok);
        let zero = decode(0, &[0u8; 512]).unwrap();
        assert!(zero.never);
        assert!(decode(0, &[0u8; 20]).is_none());
    }
}
