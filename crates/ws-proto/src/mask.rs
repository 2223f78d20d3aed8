//! Payload masking (RFC 6455 §5.3).

/// Below this many bytes the aligned loop's byte-at-a-time head and tail cost more than
/// aligning saves: a 16-byte payload after a 6-byte client header spends 8 of its 16
/// bytes in them. The two loops cross over at about 300 bytes on x86-64 (see
/// docs/benchmarks.md); control frames and small messages take the short path.
const SHORT: usize = 256;

/// XORs `buf` in place with the 4-byte `mask`, starting at mask position `offset % 4`.
///
/// The offset lets a payload be unmasked in pieces as bytes arrive. The bulk of the
/// buffer is processed a machine word at a time; the compiler vectorises the loop.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = rotate(mask, offset);
    if buf.len() < SHORT {
        return apply_mask_short(buf, mask);
    }
    let (head, body, tail) = split_aligned(buf);
    let mut m = mask;
    for b in head.iter_mut() {
        *b ^= m[0];
        m = [m[1], m[2], m[3], m[0]];
    }
    // Both halves are the same 4 bytes, so the word reads the same in either endianness.
    let m32 = u32::from_ne_bytes(m);
    let m64 = (u64::from(m32) << 32) | u64::from(m32);
    for chunk in body.chunks_exact_mut(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(w) ^ m64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= m[i & 3];
    }
}

/// Unaligned 8-byte words from the start, then at most 7 single bytes. Words keep the
/// mask phase (8 is a multiple of 4), so no rotation is needed between them.
#[inline]
fn apply_mask_short(buf: &mut [u8], mask: [u8; 4]) {
    let m32 = u32::from_ne_bytes(mask);
    let m64 = (u64::from(m32) << 32) | u64::from(m32);
    let mut words = buf.chunks_exact_mut(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ m64).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Splits `buf` into a head shorter than 8 bytes, a body whose length is a multiple of 8
/// and a tail shorter than 8 bytes, so that the body starts on an 8-byte boundary.
#[inline]
fn split_aligned(buf: &mut [u8]) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let misalign = buf.as_ptr() as usize & 7;
    let head_len = if misalign == 0 {
        0
    } else {
        (8 - misalign).min(buf.len())
    };
    let (head, rest) = buf.split_at_mut(head_len);
    let body_len = rest.len() & !7;
    let (body, tail) = rest.split_at_mut(body_len);
    (head, body, tail)
}

#[inline]
fn rotate(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let o = offset & 3;
    [
        mask[o],
        mask[(o + 1) & 3],
        mask[(o + 2) & 3],
        mask[(o + 3) & 3],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[(i + offset) & 3];
        }
    }

    #[test]
    fn matches_naive_for_all_alignments_lengths_and_offsets() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let src: Vec<u8> = (0..400u16).map(|i| (i * 7) as u8).collect();
        for start in 0..8 {
            // Both sides of SHORT, so the short and the aligned paths are both checked.
            for len in (0..100).chain(SHORT - 20..SHORT + 40) {
                for offset in 0..4 {
                    let mut a = src.clone();
                    let mut b = src.clone();
                    apply_mask(&mut a[start..start + len], mask, offset);
                    naive(&mut b[start..start + len], mask, offset);
                    assert_eq!(a, b, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn masking_twice_is_identity() {
        let mask = [0xde, 0xad, 0xbe, 0xef];
        let orig: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut buf = orig.clone();
        apply_mask(&mut buf, mask, 0);
        assert_ne!(buf, orig);
        apply_mask(&mut buf[..333], mask, 0);
        apply_mask(&mut buf[333..], mask, 333);
        assert_eq!(buf, orig);
    }
}
