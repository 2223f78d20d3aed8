//! The read side: Engine.IO message payloads in, packets out.

use bytes::Bytes;
use serde_json::Value;

use super::binary::check_placeholders;
use super::error::DecodeError;
use super::js::{char_number, is_js_whitespace, string_to_number};
use super::json;
use super::limits::ParserLimits;
use super::namespace::Namespace;
use super::packet::{Packet, PacketType};
use super::payload;

/// Turns the Engine.IO message payloads of one connection into packets.
///
/// Feed it every message payload in order: text with [`Decoder::decode_text`], binary with
/// [`Decoder::decode_binary`]. A BINARY_EVENT / BINARY_ACK header announcing N attachments
/// is held until exactly N binary payloads have followed; then its placeholders are checked
/// and the packet is returned, attachments included.
///
/// Any error means the peer broke the protocol: Node's socket.io closes the Engine.IO
/// connection ("parse error"), and so should the caller. The decoder itself is left idle,
/// with no partial packet.
///
/// ## Header grammar
///
/// socket.io-parser's `decodeString`, character for character, including what it inherits
/// from JavaScript's `Number()`:
///
/// ```text
/// <type>[<attachments>-][/<namespace>,][<ack id>][<JSON>]
/// ```
///
/// - type: `Number(str.charAt(0))`, so an empty packet or one starting with whitespace is
///   a CONNECT (`Number("") === Number(" ") === 0`).
/// - attachments (binary types only): everything up to the first `-`, read with `Number()`,
///   which must give an integer from 1 to [`ParserLimits::max_attachments`].
/// - namespace: only if the next character is `/`; it runs to the first `,` (consumed) or
///   to the end of the packet.
/// - ack id: if the next character is a digit *or whitespace*, the run of digits and
///   whitespace that follows, read with `Number()` (so `2 ["a"]` has ack id 0).
/// - JSON: whatever is left, if anything. It must parse as a whole (trailing garbage is
///   invalid JSON) and suit the packet type; a packet without it is accepted whatever its
///   type, as in Node: `2` is an EVENT with no data (a [`Value::Null`] `data`), which the
///   server layer must handle.
///
/// ## Example
///
/// ```
/// use bytes::Bytes;
/// use iolite::parser::{Decoder, PacketType};
/// use serde_json::json;
///
/// let mut decoder = Decoder::default();
/// let p = decoder.decode_text(r#"2/admin,12["hello",1]"#).unwrap().unwrap();
/// assert_eq!((p.kind, &*p.nsp, p.id), (PacketType::Event, "/admin", Some(12)));
/// assert_eq!(p.data, json!(["hello", 1]));
///
/// assert_eq!(decoder.decode_text(r#"51-["file",{"_placeholder":true,"num":0}]"#), Ok(None));
/// let p = decoder.decode_binary(Bytes::from_static(&[1, 2, 3])).unwrap().unwrap();
/// assert_eq!((p.kind, p.attachments.len()), (PacketType::BinaryEvent, 1));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    limits: ParserLimits,
    state: DecodeState,
}

/// A decoder's state without its limits: what a session keeps between messages, with the
/// limits passed in from the server's configuration (24 bytes less in every session).
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    /// Boxed: most connections never send binary, and every connection holds a decoder.
    pending: Option<Box<Pending>>,
}

#[derive(Debug)]
struct Pending {
    packet: Packet,
    expected: usize,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: ParserLimits) -> Self {
        Self {
            limits,
            state: DecodeState::default(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &ParserLimits {
        &self.limits
    }

    /// Decodes a text message payload (without the Engine.IO `4` prefix). Returns the
    /// packet, or `None` for a binary packet header, which waits for its attachments.
    pub fn decode_text(&mut self, text: &str) -> Result<Option<Packet>, DecodeError> {
        self.state.decode_text(text, &self.limits)
    }

    /// Decodes a binary message payload: the next attachment of the waiting binary packet.
    /// Returns the packet once its last attachment has arrived and its placeholders check
    /// out, `None` while more are expected.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        self.state.decode_binary(data)
    }

    /// How many attachments the waiting binary packet still expects; 0 when idle.
    pub fn pending_attachments(&self) -> usize {
        self.state
            .pending
            .as_ref()
            .map_or(0, |p| p.expected.saturating_sub(p.packet.attachments.len()))
    }

    /// Drops a partly received binary packet (Node's `destroy()`).
    pub fn reset(&mut self) {
        self.state.pending = None;
    }
}

impl DecodeState {
    /// [`Decoder::decode_text`] with `limits`.
    pub(crate) fn decode_text(
        &mut self,
        text: &str,
        limits: &ParserLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        if let Some(p) = self.pending.take() {
            return Err(DecodeError::UnexpectedText {
                pending: p.expected.saturating_sub(p.packet.attachments.len()),
            });
        }
        let (mut packet, expected) = decode_packet(text, limits)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        // `expected` is at most `max_attachments`.
        packet.attachments = Vec::with_capacity(expected);
        self.pending = Some(Box::new(Pending { packet, expected }));
        Ok(None)
    }

    /// [`Decoder::decode_binary`].
    pub(crate) fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some(mut p) = self.pending.take() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        p.packet.attachments.push(data);
        if p.packet.attachments.len() < p.expected {
            self.pending = Some(p);
            return Ok(None);
        }
        check_placeholders(&p.packet.data, p.expected)?;
        Ok(Some(p.packet))
    }
}

/// Decodes one text packet: the packet (without attachments) and how many must follow.
fn decode_packet(text: &str, limits: &ParserLimits) -> Result<(Packet, usize), DecodeError> {
    let mut chars = text.chars();
    let (kind, mut rest) = match chars.next() {
        // Number("") === 0
        None => (PacketType::Connect, ""),
        Some(c) => {
            let kind = char_number(c)
                .and_then(PacketType::from_digit)
                .ok_or(DecodeError::UnknownPacketType(c))?;
            (kind, chars.as_str())
        }
    };

    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest
            .split_once('-')
            .ok_or(DecodeError::IllegalAttachments)?;
        attachments = attachment_count(count, limits)?;
        rest = after;
    }

    let nsp = if rest.starts_with('/') {
        let (name, after) = rest.split_once(',').unwrap_or((rest, ""));
        rest = after;
        Namespace::from_wire(name)
    } else {
        Namespace::ROOT
    };

    let mut id = Ok(None);
    if rest.chars().next().and_then(char_number).is_some() {
        let end = rest
            .find(|c| char_number(c).is_none())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at_checked(end).unwrap_or((rest, ""));
        id = ack_id(digits, limits).map(Some);
        rest = after;
    }

    let data = if rest.is_empty() {
        Value::Null
    } else {
        let data = json::parse(rest)?;
        payload::validate(kind, &data)?;
        data
    };
    // Node only fails on the payload, and goes on with an unusable id (NaN, or rounded
    // past 2^53); checking the id last keeps its error for an invalid payload as well.
    let id = id?;

    let packet = Packet {
        kind,
        nsp,
        id,
        data,
        attachments: Vec::new(),
    };
    Ok((packet, attachments))
}

/// The attachment count: `Number(count)` must be an integer, at least 1.
fn attachment_count(count: &str, limits: &ParserLimits) -> Result<usize, DecodeError> {
    let n = string_to_number(count);
    // NaN and infinities fail the integer test too.
    if n.fract() != 0.0 || n < 1.0 {
        return Err(DecodeError::IllegalAttachments);
    }
    if n > limits.max_attachments as f64 {
        return Err(DecodeError::TooManyAttachments {
            max: limits.max_attachments,
        });
    }
    // 1 <= n <= max_attachments, an integer: exact.
    Ok(n as usize)
}

/// The ack id: `Number(run)` of a run of digits and whitespace.
fn ack_id(run: &str, limits: &ParserLimits) -> Result<u64, DecodeError> {
    let digits = run.trim_matches(is_js_whitespace);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        // Whitespace between digits: Node's id is NaN.
        return Err(DecodeError::InvalidAckId);
    }
    let too_large = DecodeError::AckIdTooLarge {
        max: limits.max_ack_id,
    };
    let mut id: u64 = 0;
    for d in digits.bytes() {
        id = id
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|v| *v <= limits.max_ack_id)
            .ok_or_else(|| too_large.clone())?;
    }
    // An all-whitespace run is Number(" ") === 0.
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parser::binary::placeholder;
    use crate::parser::limits::MAX_SAFE_INTEGER;

    fn decode(text: &str) -> Result<Packet, DecodeError> {
        match Decoder::default().decode_text(text)? {
            Some(p) => Ok(p),
            None => panic!("{text:?} waits for attachments"),
        }
    }

    use crate::parser::test_vectors::packet;

    use PacketType::*;

    /// Every example of the v5 protocol document, "Packet encoding" and "Sample session".
    #[test]
    fn protocol_document_examples() {
        // The "Packet encoding" examples, then those of the "Sample session".
        let mut cases = crate::parser::test_vectors::protocol_document_examples();
        cases.extend([
            (
                r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
                packet(Connect, "/", None, json!({"sid": "wZX3oN0bSVIhsaknAAAI"})),
            ),
            (
                r#"2["hey","Jude"]"#,
                packet(Event, "/", None, json!(["hey", "Jude"])),
            ),
            (r#"2["hello"]"#, packet(Event, "/", None, json!(["hello"]))),
            (r#"2["world"]"#, packet(Event, "/", None, json!(["world"]))),
            ("0/admin,", packet(Connect, "/admin", None, Value::Null)),
            (
                r#"0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#,
                packet(
                    Connect,
                    "/admin",
                    None,
                    json!({"sid": "-G5j-67EZFp-q59rADQM"}),
                ),
            ),
            (
                r#"2/admin,1["tellme"]"#,
                packet(Event, "/admin", Some(1), json!(["tellme"])),
            ),
        ]);
        for (text, want) in cases {
            assert_eq!(decode(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn protocol_document_binary_examples() {
        let mut d = Decoder::default();
        let cases: [(&str, Packet, &[&[u8]]); 4] = [
            (
                r#"51-["baz",{"_placeholder":true,"num":0}]"#,
                packet(BinaryEvent, "/", None, json!(["baz", placeholder(0)])),
                &[&[1, 2, 3, 4]],
            ),
            (
                r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                packet(
                    BinaryEvent,
                    "/admin",
                    None,
                    json!(["baz", placeholder(0), placeholder(1)]),
                ),
                &[&[1, 2], &[3, 4]],
            ),
            (
                r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
                packet(BinaryAck, "/", Some(15), json!(["bar", placeholder(0)])),
                &[&[1, 2, 3, 4]],
            ),
            (
                r#"61-/admin,1[{"_placeholder":true,"num":0}]"#,
                packet(BinaryAck, "/admin", Some(1), json!([placeholder(0)])),
                &[&[9]],
            ),
        ];
        for (text, mut want, bufs) in cases {
            assert_eq!(d.decode_text(text), Ok(None), "{text}");
            assert_eq!(d.pending_attachments(), bufs.len());
            let (last, first) = bufs.split_last().unwrap();
            for b in first {
                assert_eq!(d.decode_binary(Bytes::copy_from_slice(b)), Ok(None));
            }
            want.attachments = bufs.iter().map(|b| Bytes::copy_from_slice(b)).collect();
            assert_eq!(
                d.decode_binary(Bytes::copy_from_slice(last)),
                Ok(Some(want))
            );
            assert_eq!(d.pending_attachments(), 0);
        }
    }

    /// The packets the v5 test suite sends to a server, and what it expects back.
    #[test]
    fn protocol_test_suite_packets() {
        assert_eq!(decode("0"), Ok(packet(Connect, "/", None, Value::Null)));
        assert_eq!(
            decode(r#"0{"token":"123"}"#),
            Ok(packet(Connect, "/", None, json!({"token": "123"})))
        );
        assert_eq!(
            decode("0/custom,"),
            Ok(packet(Connect, "/custom", None, Value::Null))
        );
        assert_eq!(
            decode(r#"0/custom,{"token":"abc"}"#),
            Ok(packet(Connect, "/custom", None, json!({"token": "abc"})))
        );
        // No comma: the namespace runs to the end.
        assert_eq!(
            decode("0/random"),
            Ok(packet(Connect, "/random", None, Value::Null))
        );
        assert_eq!(
            decode("1/custom"),
            Ok(packet(Disconnect, "/custom", None, Value::Null))
        );
        assert_eq!(
            decode(r#"2["message",1,"2",{"3":[true]}]"#),
            Ok(packet(
                Event,
                "/",
                None,
                json!(["message", 1, "2", {"3": [true]}])
            ))
        );
        assert_eq!(
            decode(r#"2456["message-with-ack",1,"2",{"3":[false]}]"#),
            Ok(packet(
                Event,
                "/",
                Some(456),
                json!(["message-with-ack", 1, "2", {"3": [false]}])
            ))
        );
        assert_eq!(
            decode(r#"3456[1,"2",{"3":[false]}]"#),
            Ok(packet(Ack, "/", Some(456), json!([1, "2", {"3": [false]}])))
        );
        let mut d = Decoder::default();
        let header = r#"52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(d.decode_text(header), Ok(None));
        assert_eq!(d.decode_binary(Bytes::from_static(&[1, 2, 3])), Ok(None));
        let p = d
            .decode_binary(Bytes::from_static(&[4, 5, 6]))
            .unwrap()
            .unwrap();
        assert_eq!((p.kind, p.id), (BinaryEvent, Some(789)));
        assert_eq!(p.attachments, [&[1u8, 2, 3][..], &[4, 5, 6][..]]);
        // "should close the connection upon invalid format"
        assert_eq!(decode("abc"), Err(DecodeError::UnknownPacketType('a')));
        assert_eq!(decode("2{}"), Err(DecodeError::EventPayloadNotArray));
        assert_eq!(
            decode(r#"2abc["message-with-ack",1,"2",{"3":[false]}]"#),
            Err(DecodeError::InvalidJson)
        );
    }

    /// socket.io-parser's own test/parser.js: "throw an error upon parsing error".
    #[test]
    fn node_parser_invalid_payloads() {
        let cases = [
            (r#"442["some","data""#, DecodeError::InvalidJson),
            (r#"0/admin,"invalid""#, DecodeError::InvalidConnectPayload),
            ("0[]", DecodeError::InvalidConnectPayload),
            ("1/admin,{}", DecodeError::UnexpectedDisconnectPayload),
            (r#"2/admin,"invalid"#, DecodeError::InvalidJson),
            ("2/admin,{}", DecodeError::EventPayloadNotArray),
            (r#"2[{"toString":"foo"}]"#, DecodeError::InvalidEventName),
            (r#"2[true,"foo"]"#, DecodeError::InvalidEventName),
            (r#"2[null,"bar"]"#, DecodeError::InvalidEventName),
            (r#"2["connect"]"#, DecodeError::ReservedEventName("connect")),
            (
                r#"2["disconnect","123"]"#,
                DecodeError::ReservedEventName("disconnect"),
            ),
            ("5", DecodeError::IllegalAttachments),
            ("51", DecodeError::IllegalAttachments),
            ("50-", DecodeError::IllegalAttachments),
            ("5a-", DecodeError::IllegalAttachments),
            ("51.23-", DecodeError::IllegalAttachments),
            ("999", DecodeError::UnknownPacketType('9')),
        ];
        for (text, want) in cases {
            let got = decode(text);
            assert_eq!(got.as_ref(), Err(&want), "{text}");
            let msg = want.node_message();
            assert!(
                [
                    "invalid payload",
                    "Illegal attachments",
                    "unknown packet type"
                ]
                .contains(&msg),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn every_reserved_event_name_is_refused() {
        for name in payload::RESERVED_EVENTS {
            assert_eq!(
                decode(&format!(r#"2["{name}"]"#)),
                Err(DecodeError::ReservedEventName(name))
            );
            let mut d = Decoder::default();
            assert_eq!(
                d.decode_text(&format!(r#"51-["{name}",{{"_placeholder":true,"num":0}}]"#)),
                Err(DecodeError::ReservedEventName(name))
            );
            assert_eq!(d.pending_attachments(), 0);
        }
        // As an ack argument it is just a string.
        assert_eq!(
            decode(r#"31["connect"]"#),
            Ok(packet(Ack, "/", Some(1), json!(["connect"])))
        );
        // Numbers are valid event names.
        assert_eq!(
            decode("2[1,2]"),
            Ok(packet(Event, "/", None, json!([1, 2])))
        );
        assert_eq!(
            decode("2[-1.5]"),
            Ok(packet(Event, "/", None, json!([-1.5])))
        );
    }

    #[test]
    fn unknown_packet_types() {
        for (text, c) in [
            ("7", '7'),
            ("8[]", '8'),
            ("9", '9'),
            ("x", 'x'),
            ("-", '-'),
            ("😀", '😀'),
        ] {
            assert_eq!(decode(text), Err(DecodeError::UnknownPacketType(c)));
        }
    }

    /// `Number(str.charAt(0))` is 0 for an empty string and for whitespace.
    #[test]
    fn empty_or_whitespace_type_is_connect() {
        assert_eq!(decode(""), Ok(packet(Connect, "/", None, Value::Null)));
        assert_eq!(
            decode(r#" {"a":1}"#),
            Ok(packet(Connect, "/", None, json!({"a": 1})))
        );
        assert_eq!(
            decode("\u{3000}/x,"),
            Ok(packet(Connect, "/x", None, Value::Null))
        );
        assert_eq!(decode("\t"), Ok(packet(Connect, "/", None, Value::Null)));
        assert_eq!(
            decode("\u{85}"),
            Err(DecodeError::UnknownPacketType('\u{85}'))
        );
    }

    #[test]
    fn packets_without_json_pass_whatever_their_type() {
        // Node validates a payload only when there is one.
        assert_eq!(decode("2"), Ok(packet(Event, "/", None, Value::Null)));
        assert_eq!(decode("3"), Ok(packet(Ack, "/", None, Value::Null)));
        assert_eq!(
            decode("4/a,"),
            Ok(packet(ConnectError, "/a", None, Value::Null))
        );
        assert_eq!(decode("27"), Ok(packet(Event, "/", Some(7), Value::Null)));
        // A null payload is a payload, and invalid for every type.
        for text in ["0null", "1null", "2null", "3null", "4null"] {
            assert!(decode(text).is_err(), "{text}");
        }
    }

    #[test]
    fn namespace_only_when_it_starts_with_a_slash() {
        assert_eq!(
            decode("2/,[\"a\"]"),
            Ok(packet(Event, "/", None, json!(["a"])))
        );
        // Runs to the end when there is no comma, JSON and all.
        assert_eq!(
            decode(r#"2/admin["a"]"#),
            Ok(packet(Event, r#"/admin["a"]"#, None, Value::Null))
        );
        // Anything but a comma belongs to the namespace.
        assert_eq!(
            decode(r#"2/é 1/"x",["a"]"#),
            Ok(packet(Event, r#"/é 1/"x""#, None, json!(["a"])))
        );
        // Not starting with '/': no namespace, the rest is id and JSON.
        assert_eq!(decode(r#"2admin,["a"]"#), Err(DecodeError::InvalidJson));
        // Only the first comma ends it.
        assert_eq!(decode(r#"2/a,,["x"]"#), Err(DecodeError::InvalidJson));
        // After the attachment count of a binary packet.
        let mut d = Decoder::default();
        assert_eq!(
            d.decode_text(r#"51-/a,3["x",{"_placeholder":true,"num":0}]"#),
            Ok(None)
        );
        let p = d.decode_binary(Bytes::new()).unwrap().unwrap();
        assert_eq!((&*p.nsp, p.id), ("/a", Some(3)));
    }

    #[test]
    fn ack_ids_read_as_javascript_does() {
        assert_eq!(
            decode(r#"20["a"]"#),
            Ok(packet(Event, "/", Some(0), json!(["a"])))
        );
        assert_eq!(
            decode(r#"2007["a"]"#),
            Ok(packet(Event, "/", Some(7), json!(["a"])))
        );
        // Whitespace counts as part of the id run: Number(" ") === 0.
        assert_eq!(
            decode(r#"2 ["a"]"#),
            Ok(packet(Event, "/", Some(0), json!(["a"])))
        );
        assert_eq!(decode("0 "), Ok(packet(Connect, "/", Some(0), Value::Null)));
        assert_eq!(
            decode("2/a,\t12\u{A0}[\"a\"]"),
            Ok(packet(Event, "/a", Some(12), json!(["a"])))
        );
        // Digits split by whitespace are NaN in Node; we refuse them, after the payload,
        // which is all Node checks.
        assert_eq!(decode(r#"21 2["a"]"#), Err(DecodeError::InvalidAckId));
        assert_eq!(decode(r#"21 2{}"#), Err(DecodeError::EventPayloadNotArray));
        assert_eq!(decode("01 2"), Err(DecodeError::InvalidAckId));
        // The id run stops at the first other character, which starts the JSON.
        assert_eq!(decode(r#"212abc"#), Err(DecodeError::InvalidJson));
        assert_eq!(decode(r#"21.5["a"]"#), Err(DecodeError::InvalidJson));
        assert_eq!(decode(r#"2-1["a"]"#), Err(DecodeError::InvalidJson));
    }

    #[test]
    fn ack_id_limit() {
        let max = MAX_SAFE_INTEGER;
        assert_eq!(
            decode(&format!(r#"2{max}["a"]"#)),
            Ok(packet(Event, "/", Some(max), json!(["a"])))
        );
        let too_large = Err(DecodeError::AckIdTooLarge { max });
        assert_eq!(decode(&format!(r#"2{}["a"]"#, max + 1)), too_large);
        // Past u64 as well, and a very long digit run.
        assert_eq!(decode(r#"218446744073709551616["a"]"#), too_large);
        assert_eq!(
            decode(&format!("2{}[\"a\"]", "9".repeat(10_000))),
            too_large
        );
        assert_eq!(
            decode(&format!("2{}x", "9".repeat(100))),
            Err(DecodeError::InvalidJson)
        );
        // Leading zeros do not count.
        assert_eq!(
            decode(&format!(r#"20000{max}["a"]"#)),
            Ok(packet(Event, "/", Some(max), json!(["a"])))
        );
        let mut d = Decoder::new(ParserLimits::default().max_ack_id(99));
        assert!(d.decode_text(r#"299["a"]"#).is_ok());
        assert_eq!(
            d.decode_text(r#"2100["a"]"#),
            Err(DecodeError::AckIdTooLarge { max: 99 })
        );
        let mut d = Decoder::new(ParserLimits::default().max_ack_id(u64::MAX));
        assert_eq!(
            d.decode_text(&format!(r#"2{}["a"]"#, u64::MAX))
                .unwrap()
                .unwrap()
                .id,
            Some(u64::MAX)
        );
        assert_eq!(
            d.decode_text(r#"218446744073709551616["a"]"#),
            Err(DecodeError::AckIdTooLarge { max: u64::MAX })
        );
    }

    #[test]
    fn attachment_counts_read_as_javascript_does() {
        let header = |count: &str| format!(r#"5{count}-["a",{{"_placeholder":true,"num":0}}]"#);
        for ok in ["1", "01", " 1", "1\t", "1.0", "1e0", "0x1", "+1", "1."] {
            let mut d = Decoder::default();
            assert_eq!(d.decode_text(&header(ok)), Ok(None), "{ok:?}");
            assert_eq!(d.pending_attachments(), 1, "{ok:?}");
        }
        for bad in [
            "", "0", " ", "0.5", "1.5", "a", "1 1", "Infinity", "0x", "1e400",
        ] {
            assert_eq!(
                Decoder::default().decode_text(&header(bad)),
                Err(DecodeError::IllegalAttachments),
                "{bad:?}"
            );
        }
        // Missing dash.
        assert_eq!(decode(r#"51["a"]"#), Err(DecodeError::IllegalAttachments));
        // "-1" cannot be written: the count ends at the first dash.
        assert_eq!(decode("5-1-"), Err(DecodeError::IllegalAttachments));
    }

    #[test]
    fn attachment_limit() {
        let header = |n: usize| {
            let mut data = vec![json!("a")];
            data.extend((0..n).map(placeholder));
            format!("5{n}-{}", Value::Array(data))
        };
        let mut d = Decoder::default();
        assert_eq!(d.decode_text(&header(10)), Ok(None));
        assert_eq!(d.pending_attachments(), 10);
        for i in 0..9 {
            assert_eq!(d.decode_binary(Bytes::from(vec![i])), Ok(None));
        }
        let p = d
            .decode_binary(Bytes::from_static(b"last"))
            .unwrap()
            .unwrap();
        assert_eq!(p.attachments.len(), 10);
        assert_eq!(
            Decoder::default().decode_text(&header(11)),
            Err(DecodeError::TooManyAttachments { max: 10 })
        );
        assert_eq!(
            Decoder::default().decode_text("5100000000000000000000-[\"a\"]"),
            Err(DecodeError::TooManyAttachments { max: 10 })
        );
        // Node's own test, with maxAttachments: 2.
        let mut d = Decoder::new(ParserLimits::default().max_attachments(2));
        assert_eq!(
            d.decode_text(
                r#"53-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#
            ),
            Err(DecodeError::TooManyAttachments { max: 2 })
        );
        assert_eq!(d.pending_attachments(), 0);
    }

    #[test]
    fn trailing_garbage_is_invalid_json() {
        assert_eq!(decode(r#"2["a"]x"#), Err(DecodeError::InvalidJson));
        assert_eq!(decode(r#"2["a"]["b"]"#), Err(DecodeError::InvalidJson));
        assert_eq!(decode("1x"), Err(DecodeError::InvalidJson));
        assert_eq!(decode(r#"0{"a":1}}"#), Err(DecodeError::InvalidJson));
        // Trailing JSON whitespace is part of valid JSON.
        assert_eq!(
            decode("2[\"a\"] \n"),
            Ok(packet(Event, "/", None, json!(["a"])))
        );
    }

    #[test]
    fn lone_surrogate_in_a_string_is_replaced() {
        assert_eq!(
            decode(r#"2["msg","\ud83d"]"#),
            Ok(packet(Event, "/", None, json!(["msg", "\u{FFFD}"])))
        );
    }

    #[test]
    fn binary_payload_without_a_waiting_packet() {
        let mut d = Decoder::default();
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"world")),
            Err(DecodeError::UnexpectedBinary)
        );
        assert_eq!(d.decode_text(r#"2["a"]"#).unwrap().unwrap().kind, Event);
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"world")),
            Err(DecodeError::UnexpectedBinary)
        );
    }

    #[test]
    fn more_binary_messages_than_announced() {
        let mut d = Decoder::default();
        assert_eq!(
            d.decode_text(r#"61-3[{"_placeholder":true,"num":0}]"#),
            Ok(None)
        );
        let p = d
            .decode_binary(Bytes::from_static(b"one"))
            .unwrap()
            .unwrap();
        assert_eq!((p.kind, p.id, p.attachments.len()), (BinaryAck, Some(3), 1));
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"two")),
            Err(DecodeError::UnexpectedBinary)
        );
    }

    #[test]
    fn text_while_attachments_are_expected() {
        // Node: "throws an error when decoding a binary event without attachments".
        let mut d = Decoder::default();
        assert_eq!(
            d.decode_text(
                r#"52-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
            ),
            Ok(None)
        );
        assert_eq!(d.decode_binary(Bytes::from_static(b"one")), Ok(None));
        assert_eq!(
            d.decode_text(r#"2["hello"]"#),
            Err(DecodeError::UnexpectedText { pending: 1 })
        );
        // Left idle: the late attachment has nothing to attach to.
        assert_eq!(d.pending_attachments(), 0);
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"two")),
            Err(DecodeError::UnexpectedBinary)
        );
        assert!(d.decode_text(r#"2["hello"]"#).unwrap().is_some());
    }

    #[test]
    fn placeholders_are_checked_when_the_last_attachment_arrives() {
        // Node's test/buffer.js: invalid `num` (string, out of bounds).
        for header in [
            r#"51-["hello",{"_placeholder":true,"num":"splice"}]"#,
            r#"51-["hello",{"_placeholder":true,"num":1}]"#,
            r#"51-["hello",{"_placeholder":true,"num":-1}]"#,
            r#"51-["hello",{"_placeholder":true,"num":0.5}]"#,
            r#"51-["hello",{"_placeholder":true}]"#,
        ] {
            let mut d = Decoder::default();
            assert_eq!(d.decode_text(header), Ok(None), "{header}");
            assert_eq!(
                d.decode_binary(Bytes::from_static(b"world")),
                Err(DecodeError::InvalidPlaceholder),
                "{header}"
            );
            assert_eq!(d.pending_attachments(), 0);
            assert_eq!(
                DecodeError::InvalidPlaceholder.node_message(),
                "illegal attachments"
            );
        }
        // Duplicate and unused attachments pass, as in Node.
        let mut d = Decoder::default();
        assert_eq!(
            d.decode_text(r#"62-[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#),
            Ok(None)
        );
        assert_eq!(d.decode_binary(Bytes::from_static(b"a")), Ok(None));
        assert!(d.decode_binary(Bytes::from_static(b"b")).unwrap().is_some());
        // No placeholder at all (Node's "51-[\"hello\"]"): fine once the buffer arrives.
        assert_eq!(d.decode_text(r#"51-["hello"]"#), Ok(None));
        assert!(d.decode_binary(Bytes::new()).unwrap().is_some());
    }

    #[test]
    fn reset_drops_a_partial_packet() {
        // Node: "should resume decoding after calling destroy()".
        let mut d = Decoder::default();
        assert_eq!(d.decode_text(r#"51-["hello"]"#), Ok(None));
        d.reset();
        assert_eq!(
            d.decode_text(r#"2["hello"]"#),
            Ok(Some(packet(Event, "/", None, json!(["hello"]))))
        );
    }

    #[test]
    fn placeholders_in_a_plain_event_are_plain_objects() {
        assert_eq!(
            decode(r#"2["a",{"_placeholder":true,"num":5}]"#),
            Ok(packet(Event, "/", None, json!(["a", placeholder(5)])))
        );
    }
}
