//! Limits on what one peer's packets may make the decoder hold.

/// `Number.MAX_SAFE_INTEGER`, 2^53 − 1: the largest integer a JavaScript peer holds exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Limits applied by the [`Decoder`](crate::parser::Decoder).
///
/// There is no namespace or payload size limit here: a packet is one Engine.IO message,
/// already bounded by the Engine.IO `maxPayload`, and JSON nesting is bounded by the JSON
/// parser (127 levels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Most binary attachments a BINARY_EVENT / BINARY_ACK header may announce.
    /// Default 10, as Node's socket.io-parser (`maxAttachments`). Checked on the header, so
    /// nothing is buffered for a packet over it. Past it:
    /// [`DecodeError::TooManyAttachments`](crate::parser::DecodeError::TooManyAttachments).
    pub max_attachments: usize,
    /// Largest ack id accepted. Default [`MAX_SAFE_INTEGER`] (2^53 − 1): a JavaScript peer
    /// cannot hold a larger id exactly, so acking it would answer the wrong id; Node accepts
    /// it and rounds. Digit strings are checked as they are read, so a long run of digits
    /// cannot overflow. Past it:
    /// [`DecodeError::AckIdTooLarge`](crate::parser::DecodeError::AckIdTooLarge).
    pub max_ack_id: u64,
}

impl Default for ParserLimits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
            max_ack_id: MAX_SAFE_INTEGER,
        }
    }
}

impl ParserLimits {
    /// Sets [`ParserLimits::max_attachments`].
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }
    /// Sets [`ParserLimits::max_ack_id`].
    pub fn max_ack_id(mut self, n: u64) -> Self {
        self.max_ack_id = n;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_nodes() {
        let l = ParserLimits::default();
        assert_eq!(l.max_attachments, 10);
        assert_eq!(l.max_ack_id, 9_007_199_254_740_991);
        let l = l.max_attachments(2).max_ack_id(99);
        assert_eq!((l.max_attachments, l.max_ack_id), (2, 99));
    }
}
