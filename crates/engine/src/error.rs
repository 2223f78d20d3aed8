//! Typed errors: why a request is refused (Node's `Server.errors`, with the HTTP status and
//! body Node sends) and why a packet or payload could not be decoded.

/// The reason Node's engine.io server closes a session whose peer sent a packet that does
/// not parse (`socket.onClose("parse error")` on an `error` packet from the parser).
pub const PARSE_ERROR: &str = "parse error";

/// Why an Engine.IO HTTP request or WebSocket upgrade was refused: Node's `Server.errors`,
/// with the same numeric codes and `Server.errorMessages`.
///
/// Node checks a request in this order, and answers with the first failure:
/// `transport` ([`RequestError::UnknownTransport`]), the `Origin` header
/// ([`RequestError::BadRequest`]), then with a `sid`: the session lookup
/// ([`RequestError::UnknownSid`]) and a transport change without an upgrade
/// ([`RequestError::BadRequest`]); without one (a handshake): the method
/// ([`RequestError::BadHandshakeMethod`]), `transport=websocket` without an upgrade
/// ([`RequestError::BadRequest`]), the `allowRequest` hook ([`RequestError::Forbidden`]),
/// and last the `EIO` version ([`RequestError::UnsupportedProtocolVersion`]).
/// [`crate::Query`] follows the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RequestError {
    /// Code 0: the `transport` query parameter is missing or names no enabled transport.
    #[error("Transport unknown")]
    UnknownTransport,
    /// Code 1: the `sid` query parameter names no live session.
    #[error("Session ID unknown")]
    UnknownSid,
    /// Code 2: a handshake (a request without `sid`) that is not a `GET`.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: anything else wrong with the request (an invalid `Origin` header, a transport
    /// that does not match the session's, a WebSocket handshake without an upgrade, a
    /// failed middleware or session-id generation).
    #[error("Bad request")]
    BadRequest,
    /// Code 4: the application's `allowRequest` hook refused the handshake. The only error
    /// Node answers with 403; the hook may replace the message
    /// ([`RequestError::json_body_with_message`]).
    #[error("Forbidden")]
    Forbidden,
    /// Code 5: a handshake whose `EIO` parameter is not `4`. Node reads any other value,
    /// or none, as protocol v3, which it refuses unless `allowEIO3` is set; iolite never
    /// speaks v3.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl RequestError {
    /// Every error, in code order.
    pub const ALL: [Self; 6] = [
        Self::UnknownTransport,
        Self::UnknownSid,
        Self::BadHandshakeMethod,
        Self::BadRequest,
        Self::Forbidden,
        Self::UnsupportedProtocolVersion,
    ];

    /// Node's numeric code (`Server.errors`), sent in the JSON body.
    pub const fn code(self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// The error for a numeric code, if it is one of Node's.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::UnknownTransport),
            1 => Some(Self::UnknownSid),
            2 => Some(Self::BadHandshakeMethod),
            3 => Some(Self::BadRequest),
            4 => Some(Self::Forbidden),
            5 => Some(Self::UnsupportedProtocolVersion),
            _ => None,
        }
    }

    /// Node's message for the code (`Server.errorMessages`).
    pub const fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status of the answer to a polling request: 403 for
    /// [`RequestError::Forbidden`], 400 for everything else (Node's `abortRequest`). A
    /// refused WebSocket upgrade is always 400 ([`RequestError::upgrade_response`]).
    pub const fn status(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            _ => 400,
        }
    }

    /// The `Content-Type` of [`RequestError::json_body`].
    pub const CONTENT_TYPE: &'static str = "application/json";

    /// The body Node answers a refused polling request with, byte for byte:
    /// `{"code":3,"message":"Bad request"}`.
    pub fn json_body(self) -> String {
        self.json_body_with_message("")
    }

    /// [`RequestError::json_body`] with the message replaced, as Node does with the message
    /// an `allowRequest` hook refuses a handshake with. An empty message keeps the default
    /// (Node tests the message for truthiness).
    pub fn json_body_with_message(self, message: &str) -> String {
        let message = if message.is_empty() {
            self.message()
        } else {
            message
        };
        // serde_json escapes strings exactly as JSON.stringify does for well-formed UTF-16:
        // `"` and `\`, \b \f \n \r \t by name, other controls as lowercase \u00XX, and
        // nothing else (not `/`, not U+2028). Serializing a &str cannot fail.
        let quoted = serde_json::to_string(message).unwrap_or_default();
        format!("{{\"code\":{},\"message\":{quoted}}}", self.code())
    }

    /// The raw HTTP response Node writes before destroying the socket of a refused
    /// WebSocket upgrade (`abortUpgrade`): always `400 Bad Request`, even for
    /// [`RequestError::Forbidden`], with the bare message as a `text/html` body.
    pub fn upgrade_response(self) -> Vec<u8> {
        self.upgrade_response_with_message("")
    }

    /// [`RequestError::upgrade_response`] with the message replaced; empty keeps the default.
    pub fn upgrade_response_with_message(self, message: &str) -> Vec<u8> {
        let message = if message.is_empty() {
            self.message()
        } else {
            message
        };
        format!(
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n\
             Content-Length: {}\r\n\r\n{message}",
            message.len()
        )
        .into_bytes()
    }
}

impl From<RequestError> for u16 {
    /// The HTTP status ([`RequestError::status`]).
    fn from(e: RequestError) -> Self {
        e.status()
    }
}

/// A packet or polling payload that could not be decoded.
///
/// [`DecodeError::is_parse_error`] tells the malformed input (Node closes the session with
/// reason [`PARSE_ERROR`]) from a crossed limit (answered with 413).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A packet with no type character: an empty WebSocket text frame, an empty POST body,
    /// or two separators in a row (or one at either end) in a payload.
    #[error("empty packet")]
    EmptyPacket,
    /// The first byte is neither a packet type digit `0`-`6` nor `b` (base64 binary).
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A `b` packet whose data is not base64 (standard alphabet; padding optional).
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// A text packet in a polling payload that is not valid UTF-8.
    #[error("invalid UTF-8 in a text packet")]
    InvalidUtf8,
    /// A polling payload over [`crate::PayloadLimits::max_payload_bytes`].
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLarge {
        /// Length of the payload (or of what has arrived of it).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A polling payload of more than [`crate::PayloadLimits::max_packets`] packets.
    #[error("payload of more than {max} packets")]
    TooManyPackets {
        /// The configured limit.
        max: usize,
    },
}

impl DecodeError {
    /// Whether the input was malformed, as opposed to over a limit. Node turns a malformed
    /// packet into an `error` packet, and the session closes with reason [`PARSE_ERROR`].
    pub const fn is_parse_error(&self) -> bool {
        !matches!(
            self,
            Self::PayloadTooLarge { .. } | Self::TooManyPackets { .. }
        )
    }

    /// The reason to close the session with: [`PARSE_ERROR`] for malformed input, `None`
    /// for a crossed limit (Node answers an oversized POST with 413 and leaves the session
    /// open; the client gives up on it by itself).
    pub const fn close_reason(&self) -> Option<&'static str> {
        if self.is_parse_error() {
            Some(PARSE_ERROR)
        } else {
            None
        }
    }

    /// The HTTP status of the answer to the POST that carried the payload: 413 for a crossed
    /// limit (as Node for `maxHttpBufferSize`), 400 for malformed input (Node destroys the
    /// request as the session closes; the protocol test suite accepts 400).
    pub const fn status(&self) -> u16 {
        if self.is_parse_error() {
            400
        } else {
            413
        }
    }
}

impl From<DecodeError> for u16 {
    /// The HTTP status ([`DecodeError::status`]).
    fn from(e: DecodeError) -> Self {
        e.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_nodes() {
        let expected = [
            (0, "Transport unknown"),
            (1, "Session ID unknown"),
            (2, "Bad handshake method"),
            (3, "Bad request"),
            (4, "Forbidden"),
            (5, "Unsupported protocol version"),
        ];
        for (e, (code, message)) in RequestError::ALL.into_iter().zip(expected) {
            assert_eq!(e.code(), code);
            assert_eq!(e.message(), message);
            assert_eq!(e.to_string(), message);
            assert_eq!(RequestError::from_code(code), Some(e));
        }
        assert_eq!(RequestError::from_code(6), None);
        assert_eq!(RequestError::from_code(255), None);
    }

    #[test]
    fn only_forbidden_is_403() {
        for e in RequestError::ALL {
            let expected = if e == RequestError::Forbidden {
                403
            } else {
                400
            };
            assert_eq!(e.status(), expected, "{e:?}");
            assert_eq!(u16::from(e), expected);
        }
    }

    #[test]
    fn json_bodies_match_json_stringify() {
        assert_eq!(
            RequestError::UnknownTransport.json_body(),
            r#"{"code":0,"message":"Transport unknown"}"#
        );
        assert_eq!(
            RequestError::UnknownSid.json_body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(
            RequestError::BadHandshakeMethod.json_body(),
            r#"{"code":2,"message":"Bad handshake method"}"#
        );
        assert_eq!(
            RequestError::BadRequest.json_body(),
            r#"{"code":3,"message":"Bad request"}"#
        );
        assert_eq!(
            RequestError::Forbidden.json_body(),
            r#"{"code":4,"message":"Forbidden"}"#
        );
        assert_eq!(
            RequestError::UnsupportedProtocolVersion.json_body(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
    }

    #[test]
    fn custom_messages_are_escaped_like_json_stringify() {
        assert_eq!(
            RequestError::Forbidden.json_body_with_message("no \"bots\"\n\u{1}/é\u{2028}"),
            "{\"code\":4,\"message\":\"no \\\"bots\\\"\\n\\u0001/é\u{2028}\"}"
        );
        assert_eq!(
            RequestError::Forbidden.json_body_with_message(""),
            RequestError::Forbidden.json_body()
        );
    }

    #[test]
    fn upgrade_response_is_always_400_text_html() {
        assert_eq!(
            RequestError::UnknownSid.upgrade_response(),
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n\
              Content-Length: 18\r\n\r\nSession ID unknown"
        );
        let forbidden = RequestError::Forbidden.upgrade_response_with_message("né");
        assert!(forbidden.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        // Content-Length counts bytes, as Buffer.byteLength does.
        assert!(forbidden.ends_with("Content-Length: 3\r\n\r\nné".as_bytes()));
    }

    #[test]
    fn decode_errors_split_into_parse_errors_and_limits() {
        let parse = [
            DecodeError::EmptyPacket,
            DecodeError::UnknownType(b'a'),
            DecodeError::InvalidBase64,
            DecodeError::InvalidUtf8,
        ];
        for e in parse {
            assert!(e.is_parse_error());
            assert_eq!(e.close_reason(), Some("parse error"));
            assert_eq!(e.status(), 400);
        }
        let limits = [
            DecodeError::PayloadTooLarge { len: 2, max: 1 },
            DecodeError::TooManyPackets { max: 1 },
        ];
        for e in limits {
            assert!(!e.is_parse_error());
            assert_eq!(e.close_reason(), None);
            assert_eq!(u16::from(e), 413);
        }
        assert_eq!(
            DecodeError::UnknownType(b'a').to_string(),
            "unknown packet type 0x61"
        );
    }
}
