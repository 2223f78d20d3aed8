//! Typed protocol errors, each mapped to the close code or HTTP status it earns.

use crate::close::CloseCode;

/// A violation of RFC 6455 / RFC 7692 by the peer, or a crossed limit, found while
/// decoding. Each maps to the close code the connection must be failed with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// RFC 6455 §5.1: a client must mask every frame it sends.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// RFC 6455 §5.1: a server must not mask frames.
    #[error("server frame is masked")]
    MaskedFrame,
    /// RSV bits set without an extension that defines them (RFC 6455 §5.2).
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// Opcodes 0x3-0x7 and 0xB-0xF are reserved (RFC 6455 §5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RFC 6455 §5.5: control frames carry at most 125 bytes.
    #[error("control frame payload longer than 125 bytes")]
    ControlFrameTooLong,
    /// RFC 6455 §5.5: control frames must not be fragmented.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame arrived with no message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new data frame arrived while a fragmented message was still in progress.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
    #[error("64-bit payload length with the most significant bit set")]
    InvalidLength,
    /// RFC 7692 §6.1: RSV1 is only set on the first frame of a compressed message.
    #[error("RSV1 set on a continuation frame")]
    CompressedContinuation,
    /// RFC 6455 §8.1: text must be valid UTF-8 (also close reasons).
    #[error("invalid UTF-8 in text message or close reason")]
    InvalidUtf8,
    /// A close frame with a one-byte body (RFC 6455 §5.5.1).
    #[error("close frame with a one-byte payload")]
    InvalidClosePayload,
    /// A close code that must not appear on the wire (RFC 6455 §7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// The compressed data could not be inflated (RFC 7692 §8.2.1).
    #[error("invalid compressed data")]
    Inflate,
    /// A frame declared a payload over [`crate::Limits::max_frame_payload`].
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Declared payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message grew over [`crate::Limits::max_message_size`] bytes on the wire.
    #[error("message exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// A compressed message inflated past [`crate::Limits::max_inflated_size`].
    #[error("inflated message exceeds the limit of {max} bytes")]
    InflatedTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// A message was split into more than [`crate::Limits::max_fragments`] frames.
    #[error("message split into more than {max} fragments")]
    TooManyFragments {
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::Inflate => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. }
            | Self::MessageTooLarge { .. }
            | Self::InflatedTooLarge { .. }
            | Self::TooManyFragments { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL,
        }
    }
}

impl From<ProtocolError> for CloseCode {
    fn from(e: ProtocolError) -> Self {
        e.close_code()
    }
}

/// Why an opening handshake was refused or could not be completed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The bytes are not a well-formed HTTP/1.1 message.
    #[error("malformed HTTP message")]
    MalformedHttp,
    /// The request header block exceeded [`crate::HandshakeLimits::max_header_bytes`].
    #[error("header block larger than {max} bytes")]
    HeadersTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// More header lines than [`crate::HandshakeLimits::max_headers`].
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The configured limit.
        max: usize,
    },
    /// RFC 6455 §4.2.1: the method must be GET.
    #[error("method must be GET")]
    MethodNotGet,
    /// RFC 6455 §4.2.1: HTTP/1.1 or later.
    #[error("HTTP version must be 1.1")]
    HttpVersion,
    /// A header the handshake requires is missing or has the wrong value.
    #[error("missing or invalid `{0}` header")]
    BadHeader(&'static str),
    /// RFC 6455 §4.2.2: only version 13 is spoken; the reply lists it.
    #[error("unsupported Sec-WebSocket-Version (only 13)")]
    UnsupportedVersion,
    /// The server answered with a status other than 101.
    #[error("server answered with status {0}")]
    UnexpectedStatus(u16),
    /// The server's Sec-WebSocket-Accept does not match our key.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server selected a subprotocol or extension we did not offer, or bad parameters.
    #[error("server negotiated something that was not offered: {0}")]
    NotOffered(&'static str),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadersTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedVersion => 426,
            Self::MethodNotGet => 405,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_rfc_close_codes() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode(1007));
        assert_eq!(ProtocolError::UnmaskedFrame.close_code(), CloseCode(1002));
        assert_eq!(
            ProtocolError::MessageTooLarge { max: 1 }.close_code(),
            CloseCode(1009)
        );
        assert_eq!(HandshakeError::TooManyHeaders { max: 1 }.status(), 431);
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::BadHeader("Upgrade").status(), 400);
    }
}
