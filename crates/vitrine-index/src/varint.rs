//! LEB128 varints (7 bits a byte, low bits first): the one coding of small unsigned numbers in
//! the index's binary files (keyword postings, a root's removed rows as gaps), so a row number
//! near the last one costs a byte instead of four.

/// Appends `v`.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the varint at `*at`, moving `*at` past it; `None` if the bytes end first or it does
/// not fit a u32.
pub(crate) fn get(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut v: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(v).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_in_as_few_bytes_as_their_bits_need() {
        let mut out = Vec::new();
        let values = [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX];
        values.iter().for_each(|&v| put(&mut out, v));
        assert_eq!(out.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 5);
        let mut at = 0;
        for &v in &values {
            assert_eq!(get(&out, &mut at), Some(v));
        }
        assert_eq!((at, get(&out, &mut at)), (out.len(), None));
        // A sixth byte, or a value past u32, is refused.
        assert_eq!(get(&[0xff; 6], &mut 0), None);
        assert_eq!(get(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut 0), None);
    }
}
