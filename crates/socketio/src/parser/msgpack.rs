//! The msgpack packet codec, compatible with npm's `socket.io-msgpack-parser` 3.0.2 (which
//! serializes with `notepack.io` 2.2).
//!
//! With that parser every packet is **one** Engine.IO binary message: the packet object
//! itself, msgpack-encoded, binary values in place (there are no attachment messages and no
//! BINARY_EVENT / BINARY_ACK types on the wire).
//!
//! ```text
//! 84                       map, 4 entries
//!   a4 "type"  02          EVENT
//!   a4 "data"  92          array, 2 items
//!                a3 "foo"
//!                c4 03 010203     bin 8, 3 bytes
//!   a2 "id"    0c          ack id 12
//!   a3 "nsp"   a6 "/admin"
//! ```
//!
//! - [`decode`] (or [`decode_bytes`], which shares the input buffer instead of copying the
//!   binary values) reads one message into a [`Packet`]; [`encode`] / [`encode_into`] write
//!   one.
//! - So that the rest of the stack need not care which parser a connection uses, a decoded
//!   packet has the shape the JSON [`Decoder`](super::Decoder) gives: every binary value is
//!   pulled out into [`Packet::attachments`] and replaced in [`Packet::data`] by a placeholder
//!   `{"_placeholder":true,"num":N}`, numbered in wire order; and [`Packet::kind`] follows the
//!   attachments as [`Packet::wire_kind`] does: an EVENT / ACK holding binary is reported as
//!   [`PacketType::BinaryEvent`] / [`PacketType::BinaryAck`], exactly as the JSON decoder
//!   reports the same packet. (Node's msgpack decoder leaves the type at EVENT / ACK; the
//!   wire never carries 5 or 6.) A CONNECT or CONNECT_ERROR may carry binary too (a
//!   `Buffer` in the `auth` object): it keeps its type and gets attachments.
//! - [`encode`] does the reverse: placeholders that name one of the packet's attachments
//!   become msgpack `bin` values in place, and BINARY_EVENT / BINARY_ACK go out as type 2 / 3.
//!   So `decode(encode(p)) == p` whenever `p`'s placeholders name its attachments once each,
//!   in order (as [`decode`] and [`Attachments`](super::binary::Attachments) number them);
//!   otherwise the packet comes back renumbered in wire order, unused attachments gone.
//!
//! # Encoding (what notepack writes, byte for byte)
//!
//! The packet is a map whose keys come in the order Node's `socket.emit()` builds them:
//! `type`, `data` (left out when [`Packet::data`] is `Null`, the "no payload" of a CONNECT or
//! DISCONNECT), `id` (only when there is one), `nsp` (always, `/` included). The events
//! socket.io's server writes through `socket.emit` (with or without an ack id) and its
//! DISCONNECT come out byte for byte as Node sends them, and so does any packet Node builds
//! in that key order without `undefined` inside (the parity test checks 60-odd). Elsewhere
//! Node differs in ways no decoder cares about: its ACK and `emitWithAck` broadcasts order
//! their keys `id, type, data, nsp` and `type, data, nsp, id`, its CONNECT reply carries
//! `pid: undefined` when connection state recovery is off, and a middleware CONNECT_ERROR
//! `data: undefined` when the error has no data (written `d4 00 00`; a [`Value`] has no
//! `undefined`, and we leave such keys out).
//!
//! Values are written as notepack writes them, always in the smallest of *its* formats:
//!
//! | value | format |
//! | --- | --- |
//! | `null`, `false`, `true` | `c0`, `c2`, `c3` |
//! | integer ≥ 0 | positive fixint < 2^7, then `uint 8/16/32/64` (`cc`–`cf`) |
//! | integer < 0 | negative fixint ≥ −32, then `int 8/16/32/64` (`d0`–`d3`) |
//! | other number | `float 64` (`cb`); notepack never writes `float 32` |
//! | string | fixstr < 32 bytes, then `str 8/16/32` (`d9`–`db`) |
//! | array | fixarray < 16 items, then `array 16/32` (`dc`, `dd`) |
//! | object | fixmap < 16 entries, then `map 16/32` (`de`, `df`); keys in insertion order |
//! | attachment | `bin 8/16/32` (`c4`–`c6`), as notepack writes a Node `Buffer` |
//!
//! A JavaScript number is a double, so notepack decides "integer" by value: a `serde_json`
//! float with an integral value (`1.0`, `-0.0`, `2^60` as a double) is written as an integer
//! (`01`, `00`, `cf ...`), so that it comes out as Node would write the number it reads.
//! One divergence: an integral double outside the 64-bit range (`1e20`, `-1e19`, `1e300`) is
//! written as `float 64` here; notepack writes it as a `uint 64` / `int 64` of the value
//! modulo 2^64 (a notepack bug that corrupts the number), which we do not copy.
//!
//! # Decoding and validation
//!
//! The message must be exactly one msgpack value (notepack throws on truncation, `0xc1` and
//! trailing bytes; so do we). Then socket.io-msgpack-parser's `checkPacket`, in its order:
//!
//! 1. `type` must be an integer 0-4 (a float with an integral value, such as `2.0`, passes,
//!    as `Number.isInteger` lets it): 5 and 6 are not msgpack packet types.
//! 2. `nsp` must be a string.
//! 3. `data`, by type: CONNECT an object or absent; DISCONNECT absent; CONNECT_ERROR a string
//!    or an object; EVENT and ACK an array. "Absent" is a missing key or an explicit
//!    `undefined` (notepack's `d4 00 00`, which socket.io-client sends as the `data` of a
//!    CONNECT without `auth`); `nil` is present, and invalid for every type. So is binary
//!    or a `Date` (Node's `isObject` is `[object Object]` only), though here they would
//!    become a placeholder object and a string.
//! 4. `id` must be absent (or `undefined`) or an integer.
//!
//! Every other key is read (it must be valid msgpack) and ignored: socket.io-client adds
//! `options: {compress: true}` to the events it sends. Duplicate keys: the last one wins,
//! as in JavaScript. A text (non-binary) Engine.IO message is never a packet under this
//! parser (Node's decoder throws on every one); the caller should not pass it here.
//!
//! Stricter than Node, each a typed [`MsgpackError`] (Node's parser accepts these):
//!
//! - the namespace must be one [`Namespace`](super::Namespace) can hold: starting with `/`,
//!   without a comma ([`MsgpackError::UnsupportedNamespace`]). Node would answer a CONNECT
//!   to such a namespace with a CONNECT_ERROR, and drop any other packet for it.
//! - the payload rules of the JSON parser ([`RESERVED_EVENTS`](super::RESERVED_EVENTS) and
//!   all) apply on top of the above, so that both parsers let the same events through: an
//!   EVENT array must start with a string that is not a reserved name, or a number
//!   ([`MsgpackError::InvalidPayload`]). Node's msgpack parser checks `Array.isArray` only.
//! - the ack id must be a non-negative integer (Node accepts `-1`:
//!   [`MsgpackError::NegativeAckId`]) no larger than
//!   [`ParserLimits::max_ack_id`](super::ParserLimits::max_ack_id) (Node accepts any and
//!   rounds past 2^53).
//! - at most [`ParserLimits::max_attachments`](super::ParserLimits::max_attachments) binary
//!   values in the whole message ([`MsgpackError::TooManyAttachments`]); Node has no limit.
//! - at most [`MAX_DEPTH`] nested arrays and maps, the packet map included, so that `data`
//!   nests no deeper than the JSON parser allows (127 levels); notepack recurses until V8's
//!   stack runs out.
//! - a map key must be a string, a number, `nil`, a boolean or `undefined` (converted to a
//!   string as JavaScript does: `1` → `"1"`, `nil` → `"null"`); notepack also turns arrays,
//!   maps, binary and dates into property names (`"[object Object]"`, the buffer's bytes as
//!   UTF-8, a locale-dependent date string), which we refuse
//!   ([`MsgpackError::UnsupportedMapKey`]).
//! - an object that is a literal placeholder (`_placeholder: true`) is refused
//!   ([`MsgpackError::LiteralPlaceholder`]): in the decoded packet it could not be told from
//!   the placeholders standing for the binary values, and the stack would swap a buffer in.
//! - a top-level `__proto__` entry is ignored; Node makes it the packet's prototype, so that
//!   `{__proto__: {type: 2, ...}}` passes its checks.
//!
//! None of this allocates ahead of the bytes: a length is checked against what is left of
//! the message before anything is reserved for it, so a `map 32` header claiming 2^32 − 1
//! entries in a 10-byte message fails at once ([`MsgpackError::Truncated`]).
//!
//! # From msgpack values to JSON values
//!
//! [`Packet::data`] is a [`serde_json::Value`]; msgpack values that JSON has no room for are
//! mapped as a Node server relaying the packet through the JSON parser would write them
//! (`JSON.stringify`), so both parsers hand the application the same data:
//!
//! - integers keep all 64 bits (Node rounds past 2^53 to a double, like the JSON codec);
//!   `float 32` becomes the double it widens to, as in Node.
//! - NaN, Infinity and −Infinity become `null`.
//! - `undefined` (`d4 00 00`) becomes `null` in an array and removes the key in a map.
//! - invalid UTF-8 in a string becomes U+FFFD per bad sequence (Node's `Buffer.toString`
//!   does the same).
//! - a `__proto__` key is dropped from maps: notepack assigns it, which sets the object's
//!   prototype instead of adding a property, so Node never shows it either.
//! - duplicate keys: the last value wins, in the place of the first (as in JavaScript).
//! - ext types, as notepack decodes them: type 0 of `ext 8/16/32` is an `ArrayBuffer`
//!   (what notepack writes for a `Uint8Array` that is not a `Buffer`) and becomes an
//!   attachment like `bin`; `fixext 1` type 0 is `undefined`; `fixext 8` type 0 is a `Date`
//!   (milliseconds since 1970 as an `int 64`) and becomes its ISO string
//!   (`"1970-01-01T00:00:00.000Z"`, or `null` when out of the `Date` range), what
//!   `Date.prototype.toJSON` gives; any other ext (including the msgpack timestamp, type −1)
//!   is the array `[type, <data>]` with its data as an attachment, as notepack returns it.
//!
//! Decoding never panics and never recurses deeper than [`MAX_DEPTH`].
//!
//! [`Value`]: serde_json::Value
//! [`Packet`]: super::Packet
//! [`Packet::attachments`]: super::Packet::attachments
//! [`Packet::data`]: super::Packet::data
//! [`Packet::kind`]: super::Packet::kind
//! [`Packet::wire_kind`]: super::Packet::wire_kind
//! [`PacketType::BinaryEvent`]: super::PacketType::BinaryEvent
//! [`PacketType::BinaryAck`]: super::PacketType::BinaryAck

mod decode;
mod encode;

pub use decode::{decode, decode_bytes, MAX_DEPTH};
pub use encode::{encode, encode_into};

use super::error::{DecodeError, NamespaceError};

/// Why a msgpack message was rejected.
///
/// As with the JSON parser, any error means the peer broke the protocol, and the
/// connection should be closed. [`MsgpackError::node_message`] tells the error Node's
/// socket.io-msgpack-parser throws for the same input, or that it accepts it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    /// The message ends inside a msgpack value (including a length that runs past its end).
    #[error("message ends inside a msgpack value")]
    Truncated,
    /// Bytes follow the packet's msgpack value.
    #[error("{0} bytes after the msgpack value")]
    TrailingBytes(usize),
    /// `0xc1`, the one byte that starts no msgpack value.
    #[error("0xc1 is not a msgpack type")]
    InvalidMarker,
    /// Arrays and maps nested deeper than [`MAX_DEPTH`]. Stricter than Node.
    #[error("msgpack nested deeper than {max} levels")]
    TooDeep {
        /// [`MAX_DEPTH`].
        max: usize,
    },
    /// More binary values than
    /// [`ParserLimits::max_attachments`](crate::parser::ParserLimits::max_attachments).
    /// Stricter than Node.
    #[error("more than {max} binary values")]
    TooManyAttachments {
        /// The configured limit.
        max: usize,
    },
    /// A map key that is an array, a map, binary or an ext value. Stricter than Node, which
    /// converts it to a string.
    #[error("map key must be a string, a number, a boolean or nil")]
    UnsupportedMapKey,
    /// An object with `_placeholder: true` in the msgpack itself. Stricter than Node.
    #[error("msgpack data holds a literal binary placeholder object")]
    LiteralPlaceholder,
    /// The message is not a msgpack map.
    #[error("packet is not a msgpack map")]
    NotAMap,
    /// `type` is missing or not an integer from 0 to 4.
    #[error("invalid packet type")]
    InvalidPacketType,
    /// `nsp` is missing or not a string.
    #[error("invalid namespace")]
    InvalidNamespace,
    /// `nsp` is a string that does not start with `/` or holds a comma. Stricter than Node.
    #[error("unsupported namespace: {0}")]
    UnsupportedNamespace(NamespaceError),
    /// `data` does not suit the packet type. The variants shared with the JSON parser say
    /// how (an absent payload is checked as `Null`); those beyond Node's msgpack checks are
    /// [`DecodeError::MissingEventName`], [`DecodeError::InvalidEventName`] and
    /// [`DecodeError::ReservedEventName`].
    #[error("invalid payload: {0}")]
    InvalidPayload(DecodeError),
    /// `id` is present and not an integer.
    #[error("invalid packet id")]
    InvalidAckId,
    /// `id` is a negative integer. Stricter than Node, which accepts it.
    #[error("negative ack id")]
    NegativeAckId,
    /// `id` is over
    /// [`ParserLimits::max_ack_id`](crate::parser::ParserLimits::max_ack_id).
    /// Stricter than Node.
    #[error("ack id larger than {max}")]
    AckIdTooLarge {
        /// The configured limit.
        max: u64,
    },
}

impl MsgpackError {
    /// The message Node's socket.io-msgpack-parser 3.0.2 throws for the same input, for
    /// logs and parity tests; the cases it accepts are described as such.
    pub fn node_message(&self) -> &'static str {
        match self {
            Self::Truncated => "(notepack: out of range / could not parse / trailing bytes)",
            Self::TrailingBytes(_) => "(notepack: N trailing bytes)",
            Self::InvalidMarker => "Could not parse",
            Self::NotAMap | Self::InvalidPacketType => "invalid packet type",
            Self::InvalidNamespace => "invalid namespace",
            Self::InvalidPayload(
                DecodeError::MissingEventName
                | DecodeError::InvalidEventName
                | DecodeError::ReservedEventName(_),
            ) => "(accepted by Node: only Array.isArray is checked)",
            Self::InvalidPayload(_) => "invalid payload",
            Self::InvalidAckId => "invalid packet id",
            Self::TooDeep { .. }
            | Self::TooManyAttachments { .. }
            | Self::UnsupportedMapKey
            | Self::LiteralPlaceholder
            | Self::UnsupportedNamespace(_)
            | Self::NegativeAckId
            | Self::AckIdTooLarge { .. } => "(accepted by Node)",
        }
    }

    /// Whether the input is not msgpack at all (as opposed to a msgpack value that is not
    /// a valid packet, or one over a limit).
    pub fn is_malformed_msgpack(&self) -> bool {
        matches!(
            self,
            Self::Truncated | Self::TrailingBytes(_) | Self::InvalidMarker
        )
    }
}
