//! CRC-32C (Castagnoli, RFC 3720) and TensorFlow's masked form of it, as stored in TFRecord
//! frames (TensorBoard `data/server/masked_crc.rs`; Python `tbrewrite.events.framing`).
//!
//! The `crc32c` crate uses the SSE 4.2 / ARMv8 CRC instructions when the CPU has them.

/// Added after the rotation (TensorFlow `core/lib/hash/crc32c.h`, `kMaskDelta`).
pub const MASK_DELTA: u32 = 0xA282_EAD8;

/// The plain CRC-32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continue a CRC-32C over `data` (for data read in pieces).
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Mask a plain CRC-32C: rotate right by 15 bits and add [`MASK_DELTA`], modulo 2^32.
#[inline]
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The masked CRC-32C of `data`, as a TFRecord stores it.
#[inline]
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3720 appendix B.4 (iSCSI), the vectors TensorBoard's masked_crc.rs also checks.
    #[test]
    fn rfc3720_vectors() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113f_db5c);
    }

    // FORMATS.md: the masked vector from TensorBoard's masked_crc.rs.
    #[test]
    fn masked_vector() {
        assert_eq!(masked_crc32c(b"\x1a\x11CRC test, one two"), 0x5794_d08a);
    }

    #[test]
    fn append_equals_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 17, 500, 999, 1000] {
            let c = crc32c_append(crc32c(&data[..split]), &data[split..]);
            assert_eq!(c, crc32c(&data));
        }
    }
}
