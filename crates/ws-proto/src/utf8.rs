//! Incremental UTF-8 validation across frames and partial reads.
//!
//! RFC 6455 §8.1 lets an endpoint fail a connection as soon as text stops being valid
//! UTF-8; this validator sees payload bytes as they arrive so that happens mid-message.

/// Streaming UTF-8 validator. Carries at most 3 bytes of an unfinished code point.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The input is not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub const fn new() -> Self {
        Self {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Forgets any carried state.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Validates the next chunk. Fails as soon as a byte makes the stream invalid, even if
    /// the chunk ends in the middle of a code point.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let need = sequence_len(self.pending[0]).saturating_sub(have);
            let take = need.min(input.len());
            self.pending[have..have + take].copy_from_slice(&input[..take]);
            let total = have + take;
            match simdutf8::compat::from_utf8(&self.pending[..total]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still incomplete: the chunk was shorter than the code point.
                    self.pending_len = total as u8;
                    return Ok(());
                }
            }
            input = &input[take..];
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8);
                }
                // A truncated but so-far valid code point at the end: keep it (1-3 bytes).
                let rest = &input[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the stream ends on a code point boundary; call at the end of a message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split_everywhere(bytes: &[u8]) {
        let expected = std::str::from_utf8(bytes).is_ok();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..i]).is_ok()
                    && v.feed(&bytes[i..j]).is_ok()
                    && v.feed(&bytes[j..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, expected, "{bytes:x?} split at {i},{j}");
            }
        }
    }

    #[test]
    fn agrees_with_std_for_every_split() {
        check_split_everywhere("κόσμε".as_bytes());
        check_split_everywhere("a€𝄞b".as_bytes());
        check_split_everywhere(&[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            0x65,
        ]);
        check_split_everywhere(&[0xf4, 0x90, 0x80, 0x80]);
        check_split_everywhere(&[0xc0, 0xaf]);
        check_split_everywhere(&[0xe0, 0x80, 0xaf]);
        check_split_everywhere(&[0xf0, 0x9f, 0x98]);
    }

    #[test]
    fn fails_fast_before_the_message_ends() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"hello").is_ok());
        // 0xed 0xa0 is the start of a UTF-16 surrogate: invalid as soon as 0xa0 arrives.
        assert!(v.feed(&[0xed]).is_ok());
        assert_eq!(v.feed(&[0xa0]), Err(InvalidUtf8));
    }
}
