//! Helpers shared by the fuzz targets.
//!
//! Every target splits its input into chunks the way a socket would deliver it. The split
//! is driven by the first two input bytes rather than by a structured `Arbitrary` input,
//! so the rest of the input is the raw protocol stream and libFuzzer's byte mutations
//! (and dictionary-free splicing of seed frames) act on it directly.

/// Splits `data` into chunks whose lengths come from a small generator seeded by `seed`.
///
/// The low 3 bits of the seed pick the largest chunk: 1, 2, 3, 7, 16, 64, 1024 bytes, or
/// everything at once; the rest seeds the lengths below it.
pub fn chunks(seed: u16, data: &[u8]) -> Chunks<'_> {
    const MAX: [usize; 8] = [1, 2, 3, 7, 16, 64, 1024, usize::MAX];
    Chunks {
        data,
        max: MAX[usize::from(seed & 7)],
        rng: u32::from(seed) | 0x1_0000,
    }
}

/// Splits `input` into a chunking seed (first two bytes) and the payload (the rest).
pub fn seed_and_payload(input: &[u8]) -> (u16, &[u8]) {
    match input {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (7, input),
    }
}

/// Iterator returned by [`chunks`]; never yields an empty chunk.
pub struct Chunks<'a> {
    data: &'a [u8],
    max: usize,
    rng: u32,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        // xorshift32: deterministic, so a crash input replays the same split.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let len = if self.max == usize::MAX {
            self.data.len()
        } else {
            1 + (self.rng as usize) % self.max
        };
        let (chunk, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_input_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        for seed in 0..64u16 {
            let joined: Vec<u8> = chunks(seed, &data).flatten().copied().collect();
            assert_eq!(joined, data, "seed {seed}");
        }
        assert_eq!(chunks(7, &data).count(), 1);
        assert_eq!(chunks(0, &data).count(), 256);
    }
}
