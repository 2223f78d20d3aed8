//! One frame waiting in a connection's send queue.

use std::sync::Arc;

use bytes::Bytes;
use iolite_ws_proto::Frame;

/// A queued frame, two words: a broadcast queued for many slow readers costs 16 bytes per
/// delivery (a `Frame` is 48), and the frame's bytes are shared.
pub(crate) enum Entry {
    /// A complete frame every recipient of a broadcast shares.
    Shared(Arc<Bytes>),
    /// A frame of this connection's own: its header and payload.
    Own(Box<Frame>),
}

impl Entry {
    /// Total bytes on the wire.
    #[inline]
    pub(crate) fn wire_len(&self) -> usize {
        match self {
            Self::Shared(b) => b.len(),
            Self::Own(f) => f.wire_len(),
        }
    }

    /// The bytes to write, in order (either may be empty).
    #[inline]
    pub(crate) fn parts(&self) -> [&[u8]; 2] {
        match self {
            Self::Shared(b) => [&b[..], &[]],
            Self::Own(f) => [f.head(), &f.payload()[..]],
        }
    }

    /// The frame's first byte (FIN, RSV and opcode).
    pub(crate) fn first_byte(&self) -> u8 {
        let [a, b] = self.parts();
        a.first().or(b.first()).copied().unwrap_or(0)
    }
}

impl From<Frame> for Entry {
    fn from(f: Frame) -> Self {
        Self::Own(Box::new(f))
    }
}
