//! Size and count limits on everything a peer sends.
//!
//! Every limit is checked on *decoded* sizes (after inflate, across fragments) and before
//! any buffer is sized from a peer-declared length.

/// Limits applied while decoding frames and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes. Default 16 MiB. Checked on the
    /// declared length as soon as the header is read, so nothing is buffered for a frame
    /// over it. Past it: close 1009.
    pub max_frame_payload: usize,
    /// Largest message, summed over its frames as they arrive on the wire. Default 64 MiB.
    /// Past it: close 1009.
    pub max_message_size: usize,
    /// Largest message after permessage-deflate inflation. Default 64 MiB. Checked as the
    /// inflater produces output, so a deflate bomb stops at this size. Past it: close 1009.
    pub max_inflated_size: usize,
    /// Most frames one message may be split into. Default 131,072 (Autobahn 9.3.1/9.4.1
    /// send 65,536). Bounds per-fragment work for floods of tiny fragments. Past it: close 1009.
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_payload: 16 << 20,
            max_message_size: 64 << 20,
            max_inflated_size: 64 << 20,
            max_fragments: 1 << 17,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_frame_payload`].
    pub fn max_frame_payload(mut self, n: usize) -> Self {
        self.max_frame_payload = n;
        self
    }
    /// Sets [`Limits::max_message_size`].
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.max_message_size = n;
        self
    }
    /// Sets [`Limits::max_inflated_size`].
    pub fn max_inflated_size(mut self, n: usize) -> Self {
        self.max_inflated_size = n;
        self
    }
    /// Sets [`Limits::max_fragments`].
    pub fn max_fragments(mut self, n: usize) -> Self {
        self.max_fragments = n;
        self
    }
}

/// Limits on the opening handshake's HTTP request or response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Largest header block (request line plus headers), in bytes. Default 16 KiB, as
    /// Node's HTTP server. Past it: HTTP 431.
    pub max_header_bytes: usize,
    /// Most header lines. Default 64. Past it: HTTP 431.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 << 10,
            max_headers: 64,
        }
    }
}

impl HandshakeLimits {
    /// Sets [`HandshakeLimits::max_header_bytes`].
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }
    /// Sets [`HandshakeLimits::max_headers`].
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }
}
