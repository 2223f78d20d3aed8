//! Typed parser errors, one per way a peer's packet can be malformed.

/// Why a Socket.IO packet received from the peer was rejected.
///
/// Every variant is a case where Node's socket.io-parser throws (except the two marked as
/// stricter than Node) and socket.io then closes the Engine.IO connection: there is no
/// Socket.IO-level error reply to a malformed packet. [`DecodeError::node_message`] gives
/// the message Node throws for the same input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The first character is not a packet type `0`-`6`.
    #[error("unknown packet type {0:?}")]
    UnknownPacketType(char),
    /// A BINARY_EVENT / BINARY_ACK header without a `N-` attachment count, or with a count
    /// that is not an integer of at least 1.
    #[error("illegal attachment count")]
    IllegalAttachments,
    /// A binary header announced more attachments than
    /// [`ParserLimits::max_attachments`](crate::parser::ParserLimits::max_attachments).
    #[error("more than {max} attachments")]
    TooManyAttachments {
        /// The configured limit.
        max: usize,
    },
    /// The ack id is not a number (digits separated by whitespace, such as `1 2`).
    /// Stricter than Node, which carries on with an id of `NaN`.
    #[error("ack id is not a number")]
    InvalidAckId,
    /// The ack id is over
    /// [`ParserLimits::max_ack_id`](crate::parser::ParserLimits::max_ack_id).
    /// Stricter than Node, which carries on with an id rounded to a double.
    #[error("ack id larger than {max}")]
    AckIdTooLarge {
        /// The configured limit.
        max: u64,
    },
    /// What follows the header is not JSON (including trailing garbage after the JSON).
    #[error("payload is not valid JSON")]
    InvalidJson,
    /// A CONNECT payload that is not a JSON object.
    #[error("CONNECT payload must be an object")]
    InvalidConnectPayload,
    /// A DISCONNECT with a payload.
    #[error("DISCONNECT must not carry a payload")]
    UnexpectedDisconnectPayload,
    /// A CONNECT_ERROR payload that is neither a string nor an object.
    #[error("CONNECT_ERROR payload must be a string or an object")]
    InvalidConnectErrorPayload,
    /// An EVENT / BINARY_EVENT payload that is not an array.
    #[error("event payload must be an array")]
    EventPayloadNotArray,
    /// An EVENT / BINARY_EVENT payload that is an empty array.
    #[error("event payload has no event name")]
    MissingEventName,
    /// An event name that is neither a string nor a number.
    #[error("event name must be a string or a number")]
    InvalidEventName,
    /// An event name reserved by Socket.IO (see
    /// [`RESERVED_EVENTS`](crate::parser::RESERVED_EVENTS)).
    #[error("reserved event name {0:?}")]
    ReservedEventName(&'static str),
    /// An ACK / BINARY_ACK payload that is not an array.
    #[error("ack payload must be an array")]
    AckPayloadNotArray,
    /// A text packet arrived while a binary packet still waited for attachments.
    #[error("text packet while {pending} attachment(s) are still expected")]
    UnexpectedText {
        /// Attachments the interrupted packet was still waiting for.
        pending: usize,
    },
    /// A binary message arrived with no binary packet waiting for attachments.
    #[error("binary message without a packet expecting attachments")]
    UnexpectedBinary,
    /// A placeholder (`{"_placeholder":true,...}`) whose `num` is not an integer from 0 to
    /// the attachment count minus one. Node throws too, except for a fractional `num` in
    /// range (`0.5`), which it lets through as `undefined`.
    #[error("placeholder does not reference a received attachment")]
    InvalidPlaceholder,
}

impl DecodeError {
    /// The message Node's socket.io-parser 4.2 throws for the same input, for logs and
    /// parity tests. The two cases Node lets through are described as such.
    pub fn node_message(&self) -> &'static str {
        match self {
            Self::UnknownPacketType(_) => "unknown packet type",
            Self::IllegalAttachments => "Illegal attachments",
            Self::TooManyAttachments { .. } => "too many attachments",
            Self::InvalidAckId => "(accepted by Node with id NaN)",
            Self::AckIdTooLarge { .. } => "(accepted by Node with a rounded id)",
            Self::InvalidJson
            | Self::InvalidConnectPayload
            | Self::UnexpectedDisconnectPayload
            | Self::InvalidConnectErrorPayload
            | Self::EventPayloadNotArray
            | Self::MissingEventName
            | Self::InvalidEventName
            | Self::ReservedEventName(_)
            | Self::AckPayloadNotArray => "invalid payload",
            Self::UnexpectedText { .. } => "got plaintext data when reconstructing a packet",
            Self::UnexpectedBinary => "got binary data when not reconstructing a packet",
            Self::InvalidPlaceholder => "illegal attachments",
        }
    }
}

/// Why a string is not a namespace that the wire format can carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    /// Namespaces start with `/` on the wire; the decoder reads anything else as the
    /// start of the ack id or the JSON.
    #[error("namespace must start with '/'")]
    MissingLeadingSlash,
    /// The comma ends the namespace on the wire and has no escape (Node's encoder throws
    /// "invalid namespace: must not contain a comma").
    #[error("namespace must not contain a comma")]
    ContainsComma,
}
