//! Little-endian fields of raw blocks, by byte offset (the structures the
//! on-disk types do not cover field by field: quota and refcount blocks).

pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Bytes read from a disk (a name, a label) as text safe to print: valid
/// UTF-8 kept, but control characters and bytes that are not UTF-8 written
/// `\xNN`, so a damaged or hostile name cannot move the cursor or hide
/// what it is.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_controls_and_bad_utf8() {
        assert_eq!(super::printable(b"plain name"), "plain name");
        assert_eq!(
            super::printable("d\u{e9}j\u{e0}".as_bytes()),
            "d\u{e9}j\u{e0}"
        );
        assert_eq!(super::printable(b"a\x1b[2Jb\n"), "a\\x1b[2Jb\\x0a");
        assert_eq!(super::printable(b"\xff\xfeok"), "\\xff\\xfeok");
    }
}
