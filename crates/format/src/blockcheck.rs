//! OCFS2 metadata block checks (`metaecc`): the kernel's `crc32_le` (IEEE
//! polynomial, reflected, seed `~0`, no final inversion) over the block with
//! the check field zeroed, plus a Hamming code over the same bits that can
//! correct one flipped bit. Mirrors `fs/ocfs2/blockcheck.c`.

use crate::ondisk::BlockCheck;
use zerocopy::FromBytes;

/// The kernel's `crc32_le(~0, data, len)`. The standard CRC-32 that
/// `crc32fast` computes is this value inverted.
pub fn crc32_le_seed_ones(data: &[u8]) -> u32 {
    !crc32fast::hash(data)
}

/// Code bit number (1-based, parity positions skipped) of data bit `i`
/// (0-based). `p` carries the count of parity bits passed so far, for
/// ascending calls.
fn code_bit(i: u32, p: &mut u32) -> u32 {
    let mut b = i + 1 + *p;
    while (1u32 << *p) < b + 1 {
        *p += 1;
        b += 1;
    }
    b
}

/// Hamming parity of a whole block (16 bits suffice up to 4 KiB blocks).
pub fn hamming_encode(data: &[u8]) -> u32 {
    let mut parity = 0u32;
    let mut p = 0u32;
    for (byte_idx, &byte) in data.iter().enumerate() {
        if byte == 0 {
            continue;
        }
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let i = (byte_idx * 8 + bit) as u32;
                parity ^= code_bit(i, &mut p);
            }
        }
    }
    parity
}

/// Flip the data bit whose code bit is `fix`; parity-bit errors and syndromes
/// past the data are left alone. Returns the byte offset fixed.
pub fn hamming_fix(data: &mut [u8], fix: u32) -> Option<usize> {
    if fix == 0 || fix.count_ones() == 1 {
        return None;
    }
    // Parity bits sit at powers of two; below `fix` there are floor(log2)+1.
    let parity_before = 32 - fix.leading_zeros();
    let i = (fix - 1 - parity_before) as usize;
    if i >= data.len() * 8 {
        return None;
    }
    data[i / 8] ^= 1 << (i % 8);
    Some(i / 8)
}

/// Where the `ocfs2_block_check` of a block lives, by block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAt {
    /// Inodes (`i_check` at 0x80)
    Inode,
    /// Extent blocks (`h_check` at 0x08)
    ExtentBlock,
    /// Group descriptors (`bg_check` at 0x30)
    GroupDesc,
    /// Directory blocks with a trailer (`db_check` at block end - 8)
    DirTrailer,
    /// Indexed-dir root and leaves (`dr_check`/`dl_check` at 0x08)
    DxBlock,
    /// Refcount blocks (`rf_check` at 0x20)
    RefcountBlock,
    /// Extended attribute blocks (`xb_check` at 0x18)
    XattrBlock,
    /// Quota file blocks (`dq_check` of the `ocfs2_disk_dqtrailer` in the
    /// block's last 8 bytes)
    QuotaBlock,
    /// Extended attribute buckets (`xh_check` at 0x08 of the bucket's
    /// header): one check over the whole 4096-byte bucket, whatever the
    /// block size (the kernel's `ocfs2_block_check_compute_bhs`).
    XattrBucket,
}

impl CheckAt {
    pub fn offset(self, blocksize: usize) -> usize {
        match self {
            CheckAt::Inode => 0x80,
            CheckAt::ExtentBlock | CheckAt::DxBlock | CheckAt::XattrBucket => 0x08,
            CheckAt::GroupDesc => 0x30,
            CheckAt::RefcountBlock => 0x20,
            CheckAt::XattrBlock => 0x18,
            CheckAt::DirTrailer | CheckAt::QuotaBlock => blocksize - 8,
        }
    }
}

/// Outcome of validating a block check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// The CRC matched.
    Ok,
    /// One bit was wrong and has been corrected in the buffer (byte offset).
    Corrected(usize),
    /// The CRC does not match and the Hamming code could not fix it.
    Bad { stored_crc: u32, computed_crc: u32 },
}

/// Read the check stored at `at`.
pub fn stored(block: &[u8], at: CheckAt) -> BlockCheck {
    let off = at.offset(block.len());
    BlockCheck::read_from_bytes(&block[off..off + 8]).unwrap_or_default()
}

/// Compute (crc, ecc) of `block` as if its check field at `at` were zero.
pub fn compute(block: &[u8], at: CheckAt) -> (u32, u16) {
    let off = at.offset(block.len());
    let mut tmp = block.to_vec();
    tmp[off..off + 8].fill(0);
    let crc = crc32_le_seed_ones(&tmp);
    let ecc = hamming_encode(&tmp) as u16;
    (crc, ecc)
}

/// Compute and store the check of `block` at `at`.
pub fn update(block: &mut [u8], at: CheckAt) {
    let off = at.offset(block.len());
    block[off..off + 8].fill(0);
    let crc = crc32_le_seed_ones(block);
    let ecc = hamming_encode(block) as u16;
    block[off..off + 4].copy_from_slice(&crc.to_le_bytes());
    block[off + 4..off + 6].copy_from_slice(&ecc.to_le_bytes());
}

/// Validate `block`, correcting a single flipped bit in place as the kernel
/// does (`ocfs2_block_check_validate`). The check field itself is restored.
pub fn validate(block: &mut [u8], at: CheckAt) -> CheckResult {
    let off = at.offset(block.len());
    let saved: [u8; 8] = block[off..off + 8].try_into().expect("8 bytes");
    let check = BlockCheck::read_from_bytes(&saved).unwrap_or_default();
    let stored_crc = check.bc_crc32e.get();
    let stored_ecc = u32::from(check.bc_ecc.get());
    block[off..off + 8].fill(0);
    let crc = crc32_le_seed_ones(block);
    let result = if crc == stored_crc {
        CheckResult::Ok
    } else {
        let ecc = hamming_encode(block);
        let mut tmp = block.to_vec();
        match hamming_fix(&mut tmp, ecc ^ stored_ecc) {
            Some(pos) if crc32_le_seed_ones(&tmp) == stored_crc => {
                block.copy_from_slice(&tmp);
                CheckResult::Corrected(pos)
            }
            _ => CheckResult::Bad {
                stored_crc,
                computed_crc: crc,
            },
        }
    };
    block[off..off + 8].copy_from_slice(&saved);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: the original (uncached) `calc_code_bit` of blockcheck.c.
    fn code_bit_orig(i: u32) -> u32 {
        let mut b = i + 1;
        let mut p = 0;
        while (1u32 << p) < b + 1 {
            b += 1;
            p += 1;
        }
        b
    }

    #[test]
    fn code_bits_match_reference() {
        let mut p = 0;
        for i in 0..(4096 * 8) {
            assert_eq!(code_bit(i, &mut p), code_bit_orig(i));
        }
    }

    #[test]
    fn crc_of_known_string() {
        // crc32_le(~0, "123456789") = ~0xCBF43926
        assert_eq!(crc32_le_seed_ones(b"123456789"), !0xCBF4_3926);
    }

    #[test]
    fn every_single_bit_flip_is_corrected() {
        let mut block = vec![0u8; 512];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        update(&mut block, CheckAt::Inode);
        assert_eq!(
            validate(&mut block.clone(), CheckAt::Inode),
            CheckResult::Ok
        );
        for bit in (0..512 * 8).step_by(13) {
            let byte = bit / 8;
            if (0x80..0x88).contains(&byte) {
                continue;
            }
            let mut bad = block.clone();
            bad[byte] ^= 1 << (bit % 8);
            assert_eq!(
                validate(&mut bad, CheckAt::Inode),
                CheckResult::Corrected(byte)
            );
            assert_eq!(bad, block);
        }
    }

    #[test]
    fn two_flips_are_reported() {
        let mut block = vec![0x5Au8; 1024];
        update(&mut block, CheckAt::GroupDesc);
        block[3] ^= 1;
        block[700] ^= 0x10;
        assert!(matches!(
            validate(&mut block, CheckAt::GroupDesc),
            CheckResult::Bad { .. }
        ));
    }
}
