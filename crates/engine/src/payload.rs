//! HTTP long-polling payloads: several packets in one body, separated by 0x1e.
//!
//! `4hello\x1e2\x1e4world` is a message, a ping and a message; a binary message is `b`
//! and its base64 (`4hello\x1ebAQIDBA==`). The client POSTs payloads to the server and
//! the server answers each GET with one. Decoding follows engine.io-parser 5.x
//! `decodePayload`: packets are decoded in order and decoding stops at the first that does
//! not parse, after handing out those before it, as Node does before it closes the
//! session with reason [`crate::PARSE_ERROR`].

use std::iter::FusedIterator;

use bytes::Bytes;

use crate::error::DecodeError;
use crate::packet::{self, Packet};

/// The record separator between the packets of a payload.
pub const SEPARATOR: u8 = 0x1e;

/// The `Content-Type` Node answers a GET with: the payload is always text in v4.
pub const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// The body Node answers an accepted POST with (`Content-Type: text/html`, to keep old
/// browsers from offering a download).
pub const POST_RESPONSE_BODY: &str = "ok";

/// The `Content-Type` of [`POST_RESPONSE_BODY`].
pub const POST_RESPONSE_CONTENT_TYPE: &str = "text/html";

/// Limits on the payloads a client POSTs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Largest POST body, in bytes, before any decoding. Default 1,000,000: Node's
    /// `maxHttpBufferSize` (1e6), which is also the `maxPayload` the handshake announces
    /// ([`crate::OpenPacket::max_payload`]; keep the two equal), so a conforming client
    /// never crosses it. Check it as the body arrives ([`PayloadLimits::check_len`]) so
    /// nothing past it is buffered. A body of exactly this size passes. Past it:
    /// [`DecodeError::PayloadTooLarge`], answered with 413 as Node does.
    pub max_payload_bytes: usize,
    /// Most packets in one POST body. Default 4096. Node has no such limit: a body of
    /// `max_payload_bytes` can hold 500,000 one-byte packets, each of which the server
    /// dispatches. The client packs everything queued while the previous POST was in
    /// flight into one body, limited only by bytes, so the default leaves room for a busy
    /// client's burst rather than the 256 or so a typical one sends. Past it:
    /// [`DecodeError::TooManyPackets`] (413), before any packet is handed out.
    pub max_packets: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1_000_000,
            max_packets: 1 << 12,
        }
    }
}

impl PayloadLimits {
    /// Sets [`PayloadLimits::max_payload_bytes`].
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    /// Sets [`PayloadLimits::max_packets`].
    pub fn max_packets(mut self, n: usize) -> Self {
        self.max_packets = n;
        self
    }

    /// Checks a body length (or the length received so far) against
    /// [`PayloadLimits::max_payload_bytes`].
    pub fn check_len(&self, len: usize) -> Result<(), DecodeError> {
        if len > self.max_payload_bytes {
            Err(DecodeError::PayloadTooLarge {
                len,
                max: self.max_payload_bytes,
            })
        } else {
            Ok(())
        }
    }
}

/// Decodes a POST body.
///
/// Checks the limits first: a body over either fails here and nothing is decoded.
/// Then yields the packets in order, each slicing `body` (text is not copied; binary is
/// base64-decoded into a new buffer); the first packet that does not parse is yielded as
/// its error and ends the iteration. An empty body is one empty packet, an error, as in
/// Node.
///
/// ```
/// use bytes::Bytes;
/// use iolite_engine::{decode_payload, DecodeError, Packet, PayloadLimits};
///
/// let body = Bytes::from_static(b"4hello\x1ebAQIDBA==\x1eabc\x1e4never");
/// let packets: Vec<_> = decode_payload(body, &PayloadLimits::default())?.collect();
/// assert_eq!(
///     packets,
///     [
///         Ok(Packet::text("hello")),
///         Ok(Packet::binary(vec![1, 2, 3, 4])),
///         Err(DecodeError::UnknownType(b'a')),
///     ]
/// );
/// # Ok::<(), DecodeError>(())
/// ```
pub fn decode_payload(body: Bytes, limits: &PayloadLimits) -> Result<PayloadDecoder, DecodeError> {
    limits.check_len(body.len())?;
    let packets = body.iter().filter(|&&b| b == SEPARATOR).count() + 1;
    if packets > limits.max_packets {
        return Err(DecodeError::TooManyPackets {
            max: limits.max_packets,
        });
    }
    Ok(PayloadDecoder {
        rest: Some(body),
        remaining: packets,
    })
}

/// The packets of a payload, from [`decode_payload`]. Collect into
/// `Result<Vec<Packet>, DecodeError>` to take all or nothing.
#[derive(Clone, Debug)]
pub struct PayloadDecoder {
    /// What is left to decode; `None` once the last packet or an error was yielded.
    rest: Option<Bytes>,
    /// Packets left, counted by separators.
    remaining: usize,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.as_mut()?;
        let encoded = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(at) => {
                let encoded = rest.split_to(at);
                // Drop the separator, which `position` found at index `at`.
                let _ = rest.split_to(1);
                encoded
            }
            None => {
                let last = std::mem::take(rest);
                self.rest = None;
                last
            }
        };
        self.remaining = self.remaining.saturating_sub(1);
        let decoded = packet::decode(encoded);
        if decoded.is_err() {
            self.rest = None;
            self.remaining = 0;
        }
        Some(decoded)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl FusedIterator for PayloadDecoder {}

/// Builds a GET response body, packet by packet.
///
/// Like Node, it does not escape 0x1e in text: the protocol assumes messages never
/// contain it, and a client would split a message that does.
#[derive(Clone, Debug, Default)]
pub struct PayloadEncoder {
    buf: Vec<u8>,
    packets: usize,
}

impl PayloadEncoder {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty payload writing into `buf` (cleared), to reuse its allocation.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self { buf, packets: 0 }
    }

    fn separate(&mut self, additional: usize) {
        self.buf.reserve(additional + 1);
        if self.packets > 0 {
            self.buf.push(SEPARATOR);
        }
        self.packets += 1;
    }

    /// Appends a packet.
    pub fn push(&mut self, packet: &Packet) {
        self.separate(packet.polling_len());
        packet.encode_polling_into(&mut self.buf);
    }

    /// Appends a packet already encoded as a WebSocket text frame (type digit and data,
    /// e.g. a broadcast's shared [`Packet::to_ws_message`]): a text packet is the same
    /// bytes in a payload.
    pub fn push_ws_text(&mut self, encoded: &str) {
        self.separate(encoded.len());
        self.buf.extend_from_slice(encoded.as_bytes());
    }

    /// Appends a binary message (`b` and base64) from its bytes.
    pub fn push_binary(&mut self, data: &[u8]) {
        self.separate(1 + packet::base64_len(data.len()));
        packet::encode_base64_packet(data, &mut self.buf);
    }

    /// Length of the body so far, in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no packet was pushed.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Number of packets pushed.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// The body.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Encodes packets as one GET response body, as Node's `encodePayload`.
///
/// ```
/// use iolite_engine::{encode_payload, Packet};
///
/// let body = encode_payload(&[Packet::text("hello"), Packet::binary(vec![1, 2, 3, 4])]);
/// assert_eq!(body, b"4hello\x1ebAQIDBA==");
/// ```
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> Vec<u8> {
    let mut encoder = PayloadEncoder::new();
    for packet in packets {
        encoder.push(packet);
    }
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use iolite_ws_proto::{Message, Utf8Bytes};

    use super::*;

    fn decode_all(body: &'static [u8]) -> Vec<Result<Packet, DecodeError>> {
        decode_payload(Bytes::from_static(body), &PayloadLimits::default())
            .unwrap()
            .collect()
    }

    fn ok(packets: &[Packet]) -> Vec<Result<Packet, DecodeError>> {
        packets.iter().cloned().map(Ok).collect()
    }

    #[test]
    fn protocol_document_examples() {
        let packets = [
            Packet::text("hello"),
            Packet::Ping(None),
            Packet::text("world"),
        ];
        assert_eq!(decode_all(b"4hello\x1e2\x1e4world"), ok(&packets));
        assert_eq!(encode_payload(&packets), b"4hello\x1e2\x1e4world");

        let packets = [Packet::text("hello"), Packet::binary(vec![1, 2, 3, 4])];
        assert_eq!(decode_all(b"4hello\x1ebAQIDBA=="), ok(&packets));
        assert_eq!(encode_payload(&packets), b"4hello\x1ebAQIDBA==");

        // The brief's example: three bytes, no padding.
        let packets = [Packet::text("hello"), Packet::binary(vec![1, 2, 3])];
        assert_eq!(decode_all(b"4hello\x1ebAQID"), ok(&packets));
        assert_eq!(encode_payload(&packets), b"4hello\x1ebAQID");
    }

    #[test]
    fn test_suite_payloads() {
        assert_eq!(decode_all(b"4hello"), ok(&[Packet::text("hello")]));
        let three = [
            Packet::text("test1"),
            Packet::text("test2"),
            Packet::text("test3"),
        ];
        assert_eq!(decode_all(b"4test1\x1e4test2\x1e4test3"), ok(&three));
        assert_eq!(encode_payload(&three), b"4test1\x1e4test2\x1e4test3");
        assert_eq!(decode_all(b"3"), ok(&[Packet::Pong(None)]));
        assert_eq!(decode_all(b"1"), ok(&[Packet::Close]));
        assert_eq!(encode_payload(&[Packet::Noop]), b"6");
        assert_eq!(encode_payload(&[Packet::Ping(None)]), b"2");
        assert_eq!(encode_payload(&[Packet::Close]), b"1");
        // "closes the session upon invalid packet format"
        let abc = decode_all(b"abc");
        assert_eq!(abc, [Err(DecodeError::UnknownType(b'a'))]);
        assert_eq!(
            abc[0].as_ref().unwrap_err().close_reason(),
            Some("parse error")
        );
    }

    #[test]
    fn engine_io_parser_payload_tests() {
        // "should encode/decode all packet types"
        let packets = [
            Packet::Open(Utf8Bytes::from_static("")),
            Packet::Close,
            Packet::Ping(Some("probe".into())),
            Packet::probe_pong(),
            Packet::text("test"),
        ];
        let body = encode_payload(&packets);
        assert_eq!(body, b"0\x1e1\x1e2probe\x1e3probe\x1e4test");
        assert_eq!(
            decode_payload(Bytes::from(body), &PayloadLimits::default())
                .unwrap()
                .collect::<Vec<_>>(),
            ok(&packets)
        );
        // "should encode/decode a string + Buffer payload"
        let packets = [Packet::text("test"), Packet::binary(vec![1, 2, 3, 4])];
        assert_eq!(encode_payload(&packets), b"4test\x1ebAQIDBA==");
        // "should fail to decode a malformed payload"
        assert_eq!(decode_all(b"{"), [Err(DecodeError::UnknownType(b'{'))]);
        assert_eq!(decode_all(b"{}"), [Err(DecodeError::UnknownType(b'{'))]);
        assert_eq!(
            decode_all(br#"["a123", "a456"]"#),
            [Err(DecodeError::UnknownType(b'['))]
        );
    }

    #[test]
    fn packets_before_the_bad_one_are_handed_out() {
        assert_eq!(
            decode_all(b"4a\x1e2\x1e9\x1e4b"),
            [
                Ok(Packet::text("a")),
                Ok(Packet::Ping(None)),
                Err(DecodeError::UnknownType(b'9')),
            ]
        );
        let mut it =
            decode_payload(Bytes::from_static(b"x\x1e4a"), &PayloadLimits::default()).unwrap();
        assert_eq!(it.next(), Some(Err(DecodeError::UnknownType(b'x'))));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
        // All or nothing.
        let all: Result<Vec<_>, _> =
            decode_payload(Bytes::from_static(b"4a\x1e!"), &PayloadLimits::default())
                .unwrap()
                .collect();
        assert_eq!(all, Err(DecodeError::UnknownType(b'!')));
    }

    #[test]
    fn empty_packets_are_errors() {
        assert_eq!(decode_all(b""), [Err(DecodeError::EmptyPacket)]);
        assert_eq!(decode_all(b"\x1e4a"), [Err(DecodeError::EmptyPacket)]);
        assert_eq!(
            decode_all(b"4a\x1e"),
            [Ok(Packet::text("a")), Err(DecodeError::EmptyPacket)]
        );
        assert_eq!(
            decode_all(b"4a\x1e\x1e4b"),
            [Ok(Packet::text("a")), Err(DecodeError::EmptyPacket)]
        );
    }

    #[test]
    fn invalid_base64_and_utf8_are_errors() {
        assert_eq!(
            decode_all(b"4a\x1ebAQ!D"),
            [Ok(Packet::text("a")), Err(DecodeError::InvalidBase64)]
        );
        assert_eq!(decode_all(b"b\xff"), [Err(DecodeError::InvalidBase64)]);
        assert_eq!(
            decode_all(b"4ok\x1e4\xe2\x82"),
            [Ok(Packet::text("ok")), Err(DecodeError::InvalidUtf8)]
        );
        // A separator never splits a code point: 0x1e is not a UTF-8 continuation byte.
        assert_eq!(
            decode_all("4€\x1e4é".as_bytes()),
            ok(&[Packet::text("€"), Packet::text("é")])
        );
    }

    #[test]
    fn binary_edge_cases() {
        assert_eq!(decode_all(b"b"), ok(&[Packet::binary(Bytes::new())]));
        assert_eq!(
            decode_all(b"bAQIDBA\x1ebAQ"),
            ok(&[Packet::binary(vec![1, 2, 3, 4]), Packet::binary(vec![1])])
        );
        assert_eq!(encode_payload(&[Packet::binary(Bytes::new())]), b"b");
    }

    #[test]
    fn size_limit_just_at_and_just_over() {
        let limits = PayloadLimits::default().max_payload_bytes(6);
        let at = decode_payload(Bytes::from_static(b"4hello"), &limits).unwrap();
        assert_eq!(at.collect::<Vec<_>>(), ok(&[Packet::text("hello")]));
        assert_eq!(
            decode_payload(Bytes::from_static(b"4hello!"), &limits).unwrap_err(),
            DecodeError::PayloadTooLarge { len: 7, max: 6 }
        );
        assert_eq!(limits.check_len(6), Ok(()));
        assert_eq!(
            limits.check_len(7),
            Err(DecodeError::PayloadTooLarge { len: 7, max: 6 })
        );
        // Node's default, exactly.
        let default = PayloadLimits::default();
        assert_eq!(default.max_payload_bytes, 1_000_000);
        let mut body = vec![b'4'];
        body.resize(1_000_000, b'x');
        assert_eq!(
            decode_payload(Bytes::from(body.clone()), &default)
                .unwrap()
                .count(),
            1
        );
        body.push(b'x');
        let err = decode_payload(Bytes::from(body), &default).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PayloadTooLarge {
                len: 1_000_001,
                max: 1_000_000
            }
        );
        assert_eq!(err.status(), 413);
        assert!(!err.is_parse_error());
    }

    #[test]
    fn packet_count_limit_just_at_and_just_over() {
        let limits = PayloadLimits::default().max_packets(3);
        let at = decode_payload(Bytes::from_static(b"2\x1e3\x1e6"), &limits).unwrap();
        assert_eq!(at.size_hint(), (0, Some(3)));
        assert_eq!(
            at.collect::<Vec<_>>(),
            ok(&[Packet::Ping(None), Packet::Pong(None), Packet::Noop])
        );
        // Over the limit: refused before any packet is handed out, even if one is bad.
        assert_eq!(
            decode_payload(Bytes::from_static(b"2\x1e3\x1e6\x1e6"), &limits).unwrap_err(),
            DecodeError::TooManyPackets { max: 3 }
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"\x1e\x1e\x1e"), &limits).unwrap_err(),
            DecodeError::TooManyPackets { max: 3 }
        );
        assert_eq!(PayloadLimits::default().max_packets, 4096);
        let zero = PayloadLimits::default().max_packets(0);
        assert_eq!(
            decode_payload(Bytes::new(), &zero).unwrap_err(),
            DecodeError::TooManyPackets { max: 0 }
        );
        let default = PayloadLimits::default();
        let just_at = vec![b'6'; 4096]
            .into_iter()
            .flat_map(|b| [b, SEPARATOR])
            .take(4096 * 2 - 1)
            .collect::<Vec<_>>();
        assert_eq!(
            decode_payload(Bytes::from(just_at.clone()), &default)
                .unwrap()
                .filter(|p| p == &Ok(Packet::Noop))
                .count(),
            4096
        );
        let mut over = just_at;
        over.extend_from_slice(b"\x1e6");
        assert_eq!(
            decode_payload(Bytes::from(over), &default).unwrap_err(),
            DecodeError::TooManyPackets { max: 4096 }
        );
    }

    #[test]
    fn decoding_slices_the_body() {
        let body = Bytes::from(b"4hello\x1e4world".to_vec());
        let base = body.as_ptr() as usize;
        let texts: Vec<usize> = decode_payload(body, &PayloadLimits::default())
            .unwrap()
            .map(|p| match p {
                Ok(Packet::Message(crate::Data::Text(t))) => t.as_bytes().as_ptr() as usize,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, [base + 1, base + 8]);
    }

    #[test]
    fn encoder_mixes_packets_and_shared_encodings() {
        let shared = Packet::text("broadcast").to_ws_message();
        let Message::Text(shared) = shared else {
            panic!()
        };
        let mut enc = PayloadEncoder::with_buffer(b"stale".to_vec());
        assert!(enc.is_empty());
        enc.push_ws_text(&shared);
        enc.push(&Packet::Ping(None));
        enc.push_binary(&[1, 2, 3, 4]);
        enc.push(&Packet::binary(vec![0xfb, 0xff]));
        assert_eq!(enc.packets(), 4);
        assert_eq!(enc.len(), 28);
        assert!(!enc.is_empty());
        assert_eq!(enc.finish(), b"4broadcast\x1e2\x1ebAQIDBA==\x1eb+/8=");
        assert_eq!(encode_payload(&[]), b"");
    }

    #[test]
    fn round_trip() {
        let packets = [
            Packet::Open(r#"{"sid":"x"}"#.into()),
            Packet::text("héllo"),
            Packet::text(""),
            Packet::binary(vec![0; 5]),
            Packet::binary(Bytes::new()),
            Packet::Ping(Some("probe".into())),
            Packet::Pong(None),
            Packet::Upgrade,
            Packet::Noop,
            Packet::Close,
        ];
        let body = encode_payload(&packets);
        let back: Result<Vec<_>, _> = decode_payload(Bytes::from(body), &PayloadLimits::default())
            .unwrap()
            .collect();
        assert_eq!(back.unwrap(), packets);
    }
}
