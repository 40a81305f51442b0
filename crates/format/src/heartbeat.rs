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
    Some(HbBlock {
        index,
        seq: u64_at(0),
        node: block[8],
        cksum,
        generation: u64_at(16),
        dead_ms: u32_at(24),
        never: block.iter().all(|&b| b == 0),
        cksum_ok: crc32_le(0, &tmp) == cksum,
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
