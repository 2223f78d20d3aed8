//! Engine.IO packets, and their encoding in WebSocket frames.
//!
//! A packet is a type digit followed by its data (`4hello`, `2probe`, `3`). Over
//! WebSocket, each packet is one frame: a text frame holds the text form, and a binary
//! message is the raw bytes of a binary frame. Decoding follows engine.io-parser 5.x
//! `decodePacket`: a text frame starting with `b` is a base64 binary message too, and any
//! data after the digit of a packet type that carries none (`1`, `5`, `6`) is ignored.

use bytes::Bytes;
use iolite_ws_proto::{Message, OpCode, Utf8Bytes};

use crate::error::DecodeError;

/// The payload of a `probe` ping or pong, exchanged while upgrading to WebSocket.
pub const PROBE: &str = "probe";

/// The type of a packet: the digit it starts with on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: the server's handshake, with the session parameters as JSON.
    Open,
    /// `1`: the sender closes the transport (and the session).
    Close,
    /// `2`: heartbeat request (server to client in v4), or the client's `probe`.
    Ping,
    /// `3`: heartbeat answer (client to server in v4), or the server's `probe` answer.
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: the client completes the upgrade to WebSocket.
    Upgrade,
    /// `6`: does nothing; ends a pending poll during an upgrade.
    Noop,
}

impl PacketType {
    /// The type for a wire byte `0`-`6`.
    pub const fn from_digit(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }

    /// The wire byte: `b'0'` to `b'6'`.
    pub const fn digit(self) -> u8 {
        match self {
            Self::Open => b'0',
            Self::Close => b'1',
            Self::Ping => b'2',
            Self::Pong => b'3',
            Self::Message => b'4',
            Self::Upgrade => b'5',
            Self::Noop => b'6',
        }
    }

    /// The one-character packet with no data, without allocating.
    const fn bare(self) -> &'static str {
        match self {
            Self::Open => "0",
            Self::Close => "1",
            Self::Ping => "2",
            Self::Pong => "3",
            Self::Message => "4",
            Self::Upgrade => "5",
            Self::Noop => "6",
        }
    }

    /// The name Node uses (`"open"`, `"message"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Close => "close",
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::Message => "message",
            Self::Upgrade => "upgrade",
            Self::Noop => "noop",
        }
    }
}

/// The data of a message packet: text or binary.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Data {
    /// Text (valid UTF-8).
    Text(Utf8Bytes),
    /// Binary: a binary WebSocket frame, or `b` + base64 in a polling payload.
    Binary(Bytes),
}

impl Data {
    /// Length of the data in bytes (decoded, for binary).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Utf8Bytes> for Data {
    fn from(t: Utf8Bytes) -> Self {
        Self::Text(t)
    }
}

impl From<String> for Data {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<Bytes> for Data {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

impl From<Vec<u8>> for Data {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}

/// An Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Packet {
    /// The handshake, with its JSON (see [`crate::OpenPacket`]). Decodes from `0` alone as
    /// empty.
    Open(Utf8Bytes),
    /// Close the session.
    Close,
    /// A ping, with optional data (`probe` during an upgrade). `2` decodes to `None`;
    /// `Some` of an empty string encodes as `2` as well.
    Ping(Option<Utf8Bytes>),
    /// A pong, with optional data (`probe` answers a `probe` ping).
    Pong(Option<Utf8Bytes>),
    /// Application data. `4` alone decodes to empty text (Node emits `undefined`).
    Message(Data),
    /// Complete an upgrade.
    Upgrade,
    /// Nothing.
    Noop,
}

impl Packet {
    /// A text message.
    pub fn text(t: impl Into<Utf8Bytes>) -> Self {
        Self::Message(Data::Text(t.into()))
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Message(Data::Binary(b.into()))
    }

    /// The server's answer to a `probe` ping: `3probe`.
    pub const fn probe_pong() -> Self {
        Self::Pong(Some(Utf8Bytes::from_static(PROBE)))
    }

    /// Whether this is the client's `2probe`, which starts an upgrade to WebSocket.
    pub fn is_probe_ping(&self) -> bool {
        matches!(self, Self::Ping(Some(d)) if d.as_str() == PROBE)
    }

    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }

    /// Decodes a WebSocket text frame: `4hello`, `2probe`, `3`, or `b` + base64 for a
    /// binary message (as engine.io-parser does, over WebSocket too). The data is a slice
    /// of `text`, not a copy.
    pub fn decode_text(text: Utf8Bytes) -> Result<Self, DecodeError> {
        decode_parts(text.as_bytes().first().copied(), Ok(text))
    }

    /// Decodes a WebSocket binary frame: always a binary message, whatever its bytes.
    pub fn decode_binary(data: Bytes) -> Self {
        Self::Message(Data::Binary(data))
    }

    /// The data of the text form: empty for packets without data (and binary messages,
    /// which have no text form).
    fn text_data(&self) -> &str {
        match self {
            Self::Open(d) | Self::Ping(Some(d)) | Self::Pong(Some(d)) => d.as_str(),
            Self::Message(Data::Text(d)) => d.as_str(),
            _ => "",
        }
    }

    /// The WebSocket message for this packet: a text frame with the type digit and the
    /// data, or a binary frame with the raw bytes of a binary message.
    ///
    /// Cheap: a binary message shares its bytes, a packet without data is a static
    /// string, and other text takes one allocation of the exact size. Encode a broadcast
    /// once and share the result (e.g. through `iolite_ws_proto::PreparedMessage`).
    pub fn to_ws_message(&self) -> Message {
        if let Self::Message(Data::Binary(b)) = self {
            return Message::Binary(b.clone());
        }
        let ty = self.packet_type();
        let data = self.text_data();
        if data.is_empty() {
            return Message::Text(Utf8Bytes::from_static(ty.bare()));
        }
        let mut s = String::with_capacity(1 + data.len());
        s.push(char::from(ty.digit()));
        s.push_str(data);
        Message::Text(Utf8Bytes::from(s))
    }

    /// Appends this packet's WebSocket frame payload to `out` and returns the frame's
    /// opcode (text or binary), for callers that frame into one buffer, e.g. with
    /// `iolite_ws_proto::Encoder::encode_into`.
    pub fn encode_ws_into(&self, out: &mut Vec<u8>) -> OpCode {
        if let Self::Message(Data::Binary(b)) = self {
            out.extend_from_slice(b);
            return OpCode::Binary;
        }
        let data = self.text_data();
        out.reserve(1 + data.len());
        out.push(self.packet_type().digit());
        out.extend_from_slice(data.as_bytes());
        OpCode::Text
    }

    /// Length of this packet in a polling payload (without a separator).
    pub(crate) fn polling_len(&self) -> usize {
        match self {
            Self::Message(Data::Binary(b)) => 1 + base64_len(b.len()),
            _ => 1 + self.text_data().len(),
        }
    }

    /// Appends this packet's polling form to `out`: its text form, or `b` + base64
    /// (standard alphabet, padded, as Node's `Buffer.toString("base64")`) for a binary
    /// message. Use [`crate::encode_payload`] or [`crate::PayloadEncoder`] for whole
    /// payloads.
    pub fn encode_polling_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Message(Data::Binary(b)) => encode_base64_packet(b, out),
            _ => {
                self.encode_ws_into(out);
            }
        }
    }
}

/// The base64 engine for `b` packets. Encodes as Node does (standard alphabet, padded).
/// Decodes a little more leniently than strict RFC 4648, towards Node's
/// `Buffer.from(s, "base64")`: padding may be left out and non-zero trailing bits are
/// ignored. Node goes further and skips any character outside the alphabet; here
/// whitespace, the URL-safe `-` and `_`, or `=` before the end are an error.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Length of the padded base64 of `n` bytes.
pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Appends `b` and the base64 of `data` to `out`.
pub(crate) fn encode_base64_packet(data: &[u8], out: &mut Vec<u8>) {
    use base64::Engine as _;
    out.push(b'b');
    let start = out.len();
    out.resize(start + base64_len(data.len()), 0);
    // The slice is exactly the encoded length, so this cannot fail; if it somehow did,
    // drop the partial output rather than send zeros.
    match BASE64.encode_slice(data, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => out.truncate(start),
    }
}

/// Decodes one packet from its text form as split out of a polling payload (its UTF-8 is
/// not validated yet).
pub(crate) fn decode(bytes: Bytes) -> Result<Packet, DecodeError> {
    decode_parts(bytes.first().copied(), Err(bytes))
}

/// Decodes a packet whose first byte is `first`, from text already validated (a WebSocket
/// text frame: sliced without checking again) or from raw bytes (checked here).
fn decode_parts(first: Option<u8>, text: Result<Utf8Bytes, Bytes>) -> Result<Packet, DecodeError> {
    let Some(first) = first else {
        return Err(DecodeError::EmptyPacket);
    };
    if first == b'b' {
        use base64::Engine as _;
        let raw = match &text {
            Ok(t) => t.as_bytes(),
            Err(b) => &b[..],
        };
        let data = BASE64
            .decode(&raw[1..])
            .map_err(|_| DecodeError::InvalidBase64)?;
        return Ok(Packet::Message(Data::Binary(data.into())));
    }
    let ty = PacketType::from_digit(first).ok_or(DecodeError::UnknownType(first))?;
    // engine.io-parser keeps the data of every type; the server ignores it where the type
    // carries none, so the data of `1`, `5` and `6` is dropped here (it is still validated,
    // as Node decodes the whole text before looking at the type).
    let data = match text {
        // The first byte is an ASCII digit, so byte 1 is a character boundary.
        Ok(t) => t.slice(1..t.len()).ok_or(DecodeError::InvalidUtf8)?,
        Err(b) => Utf8Bytes::try_from(b.slice(1..)).map_err(|_| DecodeError::InvalidUtf8)?,
    };
    let optional = |d: Utf8Bytes| (!d.is_empty()).then_some(d);
    Ok(match ty {
        PacketType::Open => Packet::Open(data),
        PacketType::Close => Packet::Close,
        PacketType::Ping => Packet::Ping(optional(data)),
        PacketType::Pong => Packet::Pong(optional(data)),
        PacketType::Message => Packet::Message(Data::Text(data)),
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Result<Packet, DecodeError> {
        Packet::decode_text(Utf8Bytes::from_static(s))
    }

    fn ws_bytes(p: &Packet) -> (OpCode, Vec<u8>) {
        let mut out = Vec::new();
        let op = p.encode_ws_into(&mut out);
        (op, out)
    }

    #[test]
    fn type_digits_match_the_protocol_table() {
        let table = [
            (PacketType::Open, b'0', "open"),
            (PacketType::Close, b'1', "close"),
            (PacketType::Ping, b'2', "ping"),
            (PacketType::Pong, b'3', "pong"),
            (PacketType::Message, b'4', "message"),
            (PacketType::Upgrade, b'5', "upgrade"),
            (PacketType::Noop, b'6', "noop"),
        ];
        for (ty, digit, name) in table {
            assert_eq!(ty.digit(), digit);
            assert_eq!(ty.as_str(), name);
            assert_eq!(PacketType::from_digit(digit), Some(ty));
            assert_eq!(ty.bare().as_bytes(), [digit]);
        }
        for b in (0..=u8::MAX).filter(|b| !(b'0'..=b'6').contains(b)) {
            assert_eq!(PacketType::from_digit(b), None, "{b:#x}");
        }
    }

    #[test]
    fn decodes_the_protocol_examples() {
        assert_eq!(text("4hello"), Ok(Packet::text("hello")));
        assert_eq!(text("2probe"), Ok(Packet::Ping(Some("probe".into()))));
        assert!(text("2probe").unwrap().is_probe_ping());
        assert_eq!(text("3probe"), Ok(Packet::probe_pong()));
        assert_eq!(text("2"), Ok(Packet::Ping(None)));
        assert_eq!(text("3"), Ok(Packet::Pong(None)));
        assert_eq!(text("5"), Ok(Packet::Upgrade));
        assert_eq!(text("6"), Ok(Packet::Noop));
        assert_eq!(text("1"), Ok(Packet::Close));
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(&[1, 2, 3, 4])),
            Packet::binary(vec![1, 2, 3, 4])
        );
    }

    #[test]
    fn decodes_like_engine_io_parser_at_the_edges() {
        // A text frame starting with `b` is a base64 binary message, over WebSocket too.
        assert_eq!(text("bAQIDBA=="), Ok(Packet::binary(vec![1, 2, 3, 4])));
        assert_eq!(text("b"), Ok(Packet::binary(Bytes::new())));
        // Message without data: Node emits `undefined`; it is empty text here.
        assert_eq!(text("4"), Ok(Packet::text("")));
        // Data on types that carry none is ignored.
        assert_eq!(text("1abc"), Ok(Packet::Close));
        assert_eq!(text("5x"), Ok(Packet::Upgrade));
        assert_eq!(text("6probe"), Ok(Packet::Noop));
        assert_eq!(text("0"), Ok(Packet::Open(Utf8Bytes::from_static(""))));
        assert_eq!(
            text(r#"0{"sid":"x"}"#),
            Ok(Packet::Open(r#"{"sid":"x"}"#.into()))
        );
        // Non-ASCII text survives untouched.
        assert_eq!(text("4€\u{1f600}"), Ok(Packet::text("€\u{1f600}")));
        // A binary frame is a message whatever it holds, even a type digit.
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(b"2probe")),
            Packet::binary(&b"2probe"[..])
        );
        assert_eq!(
            Packet::decode_binary(Bytes::new()),
            Packet::binary(Bytes::new())
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        // The two cases of engine.io-parser's "should fail to decode a malformed packet".
        assert_eq!(text(""), Err(DecodeError::EmptyPacket));
        assert_eq!(text("a123"), Err(DecodeError::UnknownType(b'a')));
        // The test suite's "closes the session upon invalid packet format".
        assert_eq!(text("abc"), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(text("7"), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(text("9x"), Err(DecodeError::UnknownType(b'9')));
        assert_eq!(text("B"), Err(DecodeError::UnknownType(b'B')));
        assert_eq!(text("€"), Err(DecodeError::UnknownType(0xe2)));
        assert_eq!(text("bAQID!"), Err(DecodeError::InvalidBase64));
        assert_eq!(text("b A=="), Err(DecodeError::InvalidBase64));
        assert_eq!(text("bA"), Err(DecodeError::InvalidBase64));
        assert_eq!(text("bAQ==="), Err(DecodeError::InvalidBase64));
        assert_eq!(text("b-_8="), Err(DecodeError::InvalidBase64));
    }

    #[test]
    fn base64_padding_is_optional_and_trailing_bits_ignored() {
        assert_eq!(text("bAQIDBA"), Ok(Packet::binary(vec![1, 2, 3, 4])));
        assert_eq!(text("bAQIDBA=="), text("bAQIDBA"));
        // "AR==" has a non-zero trailing bit; Node's decoder ignores it too.
        assert_eq!(text("bAR=="), Ok(Packet::binary(vec![1])));
        assert_eq!(text("b+/8="), Ok(Packet::binary(vec![0xfb, 0xff])));
    }

    #[test]
    fn invalid_utf8_after_the_type_is_an_error() {
        assert_eq!(
            decode(Bytes::from_static(b"4\xff")),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode(Bytes::from_static(b"1\xc0\xaf")),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode(Bytes::from_static(b"2pro\xed\xa0\x80")),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn decoding_slices_the_frame() {
        let frame = Utf8Bytes::from(String::from("4hello world"));
        let start = frame.as_bytes().as_ptr() as usize;
        let Ok(Packet::Message(Data::Text(data))) = Packet::decode_text(frame) else {
            panic!("not a text message");
        };
        assert_eq!(data.as_bytes().as_ptr() as usize, start + 1);
    }

    #[test]
    fn encodes_for_websocket() {
        let cases = [
            (Packet::text("hello"), "4hello"),
            (Packet::text(""), "4"),
            (Packet::Ping(None), "2"),
            (Packet::Ping(Some("probe".into())), "2probe"),
            (Packet::Ping(Some("".into())), "2"),
            (Packet::probe_pong(), "3probe"),
            (Packet::Pong(None), "3"),
            (Packet::Close, "1"),
            (Packet::Upgrade, "5"),
            (Packet::Noop, "6"),
            (Packet::Open(r#"{"sid":"a"}"#.into()), r#"0{"sid":"a"}"#),
            (Packet::text("€"), "4€"),
        ];
        for (packet, wire) in cases {
            assert_eq!(packet.to_ws_message(), Message::text(wire), "{packet:?}");
            assert_eq!(ws_bytes(&packet), (OpCode::Text, wire.as_bytes().to_vec()));
        }
        let binary = Packet::binary(vec![1, 2, 3, 4]);
        assert_eq!(binary.to_ws_message(), Message::binary(vec![1, 2, 3, 4]));
        assert_eq!(ws_bytes(&binary), (OpCode::Binary, vec![1, 2, 3, 4]));
    }

    #[test]
    fn websocket_encoding_is_cheap() {
        // Bare packets are static strings; binary shares the message's buffer.
        let Message::Text(t) = Packet::Ping(None).to_ws_message() else {
            panic!()
        };
        assert_eq!(t.as_bytes().as_ptr(), PacketType::Ping.bare().as_ptr());
        let data = Bytes::from(vec![9u8; 64]);
        let Message::Binary(b) = Packet::binary(data.clone()).to_ws_message() else {
            panic!()
        };
        assert_eq!(b.as_ptr(), data.as_ptr());
        // Writing into a caller's buffer appends.
        let mut out = b"prefix".to_vec();
        Packet::text("hi").encode_ws_into(&mut out);
        assert_eq!(out, b"prefix4hi");
    }

    #[test]
    fn websocket_round_trip() {
        let packets = [
            Packet::text("hello"),
            Packet::text(""),
            Packet::text("with\u{1e}separator"),
            Packet::binary(vec![0, 255]),
            Packet::binary(Bytes::new()),
            Packet::Ping(None),
            Packet::Ping(Some("probe".into())),
            Packet::Pong(Some("x".into())),
            Packet::Close,
            Packet::Upgrade,
            Packet::Noop,
            Packet::Open(r#"{"sid":"a"}"#.into()),
        ];
        for p in packets {
            let back = match p.to_ws_message() {
                Message::Text(t) => Packet::decode_text(t).unwrap(),
                Message::Binary(b) => Packet::decode_binary(b),
                other => panic!("{other:?}"),
            };
            assert_eq!(back, p);
        }
    }

    #[test]
    fn encodes_for_polling() {
        let mut out = Vec::new();
        Packet::binary(vec![1, 2, 3, 4]).encode_polling_into(&mut out);
        assert_eq!(out, b"bAQIDBA==");
        for (bytes, wire) in [
            (&[][..], "b"),
            (&[1][..], "bAQ=="),
            (&[1, 2][..], "bAQI="),
            (&[1, 2, 3][..], "bAQID"),
            (&[0xfb, 0xff][..], "b+/8="),
        ] {
            let p = Packet::binary(bytes.to_vec());
            let mut out = Vec::new();
            p.encode_polling_into(&mut out);
            assert_eq!(out, wire.as_bytes());
            assert_eq!(p.polling_len(), wire.len());
        }
        let mut out = Vec::new();
        Packet::text("hello").encode_polling_into(&mut out);
        assert_eq!(out, b"4hello");
        assert_eq!(Packet::text("hello").polling_len(), 6);
        assert_eq!(Packet::Noop.polling_len(), 1);
    }

    #[test]
    fn data_lengths_and_conversions() {
        assert_eq!(Data::from("héllo").len(), 6);
        assert_eq!(Data::from(String::from("x")), Data::Text("x".into()));
        assert_eq!(Data::from(vec![1u8, 2]).len(), 2);
        assert!(Data::from(Bytes::new()).is_empty());
        assert_eq!(
            Data::from(Utf8Bytes::from_static("a")),
            Data::Text("a".into())
        );
        assert_eq!(Packet::text("x").packet_type(), PacketType::Message);
        assert_eq!(Packet::Upgrade.packet_type(), PacketType::Upgrade);
        assert!(!Packet::Ping(Some("prob".into())).is_probe_ping());
        assert!(!Packet::probe_pong().is_probe_ping());
    }
}
