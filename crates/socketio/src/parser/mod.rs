//! The Socket.IO v5 packet codec, byte for byte as Node's `socket.io-parser` 4.2 (the
//! default parser of socket.io 4.8). Pure: it turns Engine.IO message payloads into
//! [`Packet`]s and packets into bytes, and never touches a socket.
//!
//! ```text
//! <type>[<# of attachments>-][<namespace>,][<ack id>][<JSON payload>]   + attachments
//! 0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}      CONNECT to /admin, with a payload
//! 2["foo"]                                    EVENT "foo" on /
//! 2/admin,13["foo"]                           EVENT on /admin asking for ACK 13
//! 51-["baz",{"_placeholder":true,"num":0}]    BINARY_EVENT, one binary message follows
//! ```
//!
//! - [`Decoder`] is the read side, a small state machine fed text and binary payloads in
//!   order; it validates exactly what Node validates (the header grammar is described on
//!   [`Decoder`], the payload rules on [`DecodeError`]'s variants and [`RESERVED_EVENTS`])
//!   and fails with a typed [`DecodeError`].
//! - [`Packet::encode_into`] is the write side, appending to a caller's buffer, with or
//!   without the Engine.IO message prefix `4` ([`Framing`]); [`encode_event_into`] writes
//!   an EVENT straight from serializable arguments.
//! - JSON goes through [`serde_json`] with JavaScript's number format ([`JsFormatter`]) and
//!   key order, so a relayed payload comes out as Node would write it.
//! - Binary values are placeholders in the JSON plus [`Packet::attachments`]; see [`binary`].
//!
//! Where Node's parser is lenient, this one is too (an empty packet is a CONNECT, a space
//! before the JSON is ack id 0, `51.0-` announces one attachment, a packet without JSON
//! passes whatever its type). It is stricter where Node would go on with a value it cannot
//! use, each a typed error: an ack id that is `NaN` ([`DecodeError::InvalidAckId`]) or over
//! 2^53 − 1 ([`DecodeError::AckIdTooLarge`]), a fractional placeholder index
//! ([`DecodeError::InvalidPlaceholder`]), and JSON that V8 reads but serde_json refuses:
//! nesting over 127 levels and numbers beyond the double range such as `1e400`
//! ([`DecodeError::InvalidJson`]).
//!
//! Known differences in relayed JSON: a lone UTF-16 surrogate escape (`"\ud83d"`, a
//! string cut inside an emoji) becomes U+FFFD, as a Rust string cannot hold it; integers
//! beyond 2^53 keep all their digits where Node rounds them to a double (a JavaScript peer
//! reads the same double either way); and integer-like object keys keep their place where
//! V8 moves them first (`{"b":1,"1":2}` comes out as `{"1":2,"b":1}` from Node).

pub mod binary;
mod decode;
mod encode;
mod error;
mod js;
mod json;
mod limits;
pub mod msgpack;
mod namespace;
mod packet;
mod payload;
#[cfg(test)]
mod test_vectors;

pub(crate) use decode::DecodeState;
pub use decode::Decoder;
pub use encode::{encode_event_into, write_header, Framing};
pub use error::{DecodeError, NamespaceError};
pub use json::{write_json, JsFormatter};
pub use limits::{ParserLimits, MAX_SAFE_INTEGER};
pub use namespace::Namespace;
pub use packet::{Packet, PacketType};
pub use payload::RESERVED_EVENTS;
