//! The write side: packets out, byte for byte as socket.io-parser's `Encoder` writes them.

use serde::Serialize;

use super::json::{format_u64, write_json};
use super::namespace::Namespace;
use super::packet::{Packet, PacketType};

/// What the encoded text starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The Socket.IO packet alone: `2["hello"]`.
    Packet,
    /// The packet behind Engine.IO's message type `4`: `42["hello"]`, a complete
    /// WebSocket text message or long-polling packet.
    EngineMessage,
}

/// The Engine.IO packet type that carries Socket.IO packets ("message").
const ENGINE_MESSAGE: u8 = b'4';

impl Packet {
    /// Appends the encoded packet to `buf`:
    /// `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, the namespace left out
    /// when it is `/` and the JSON when `data` is `null` (Node: `null != obj.data`).
    ///
    /// No intermediate string is built. With [`Framing::EngineMessage`] the buffer is the
    /// whole WebSocket text message (`42["hello"]`), so a broadcast encodes once and
    /// shares the bytes (`Bytes::from(vec)` takes the buffer without copying).
    ///
    /// The attachments are not written: send them after the text, in order, each as one
    /// binary message.
    ///
    /// An EVENT / ACK goes out as BINARY_EVENT / BINARY_ACK when it has attachments, and
    /// the other way round ([`Packet::wire_kind`]).
    pub fn encode_into(&self, buf: &mut Vec<u8>, framing: Framing) {
        let kind = self.wire_kind();
        debug_assert!(
            kind.is_binary() || self.attachments.is_empty(),
            "attachments on a {kind:?} packet are not sent"
        );
        let attachments = if kind.is_binary() {
            self.attachments.len()
        } else {
            0
        };
        write_header(buf, framing, kind, attachments, &self.nsp, self.id);
        if !self.data.is_null() {
            // Serializing a Value into a Vec cannot fail: no I/O, and keys are strings.
            let _ = write_json(buf, &self.data);
        }
    }

    /// The encoded packet as a string, e.g. `2/admin,1["hello"]`.
    pub fn encode(&self) -> String {
        self.encode_string(Framing::Packet)
    }

    /// The encoded packet behind the Engine.IO message type, e.g. `42/admin,1["hello"]`.
    pub fn encode_message(&self) -> String {
        self.encode_string(Framing::EngineMessage)
    }

    fn encode_string(&self, framing: Framing) -> String {
        let mut buf = Vec::new();
        self.encode_into(&mut buf, framing);
        // Only UTF-8 is ever written (ASCII header, serde_json output, a `str` namespace).
        String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Appends a packet header: `[4]<type>[<attachments>-][<namespace>,][<ack id>]`.
///
/// `attachments` is written only for the binary types, and must then be at least 1 for the
/// peer to accept the packet. The JSON, if any, follows with
/// [`write_json`](crate::parser::write_json).
pub fn write_header(
    buf: &mut Vec<u8>,
    framing: Framing,
    kind: PacketType,
    attachments: usize,
    nsp: &Namespace,
    id: Option<u64>,
) {
    if framing == Framing::EngineMessage {
        buf.push(ENGINE_MESSAGE);
    }
    buf.push(kind.as_ascii());
    if kind.is_binary() {
        push_decimal(buf, attachments as u64);
        buf.push(b'-');
    }
    if !nsp.is_root() {
        buf.extend_from_slice(nsp.as_bytes());
        buf.push(b',');
    }
    if let Some(id) = id {
        push_decimal(buf, id);
    }
}

/// Appends an EVENT `["event",arg,...]` straight from serializable arguments, without
/// building a [`Packet`] or a [`serde_json::Value`] first: the fast path for emitting.
///
/// Produces the same bytes as [`Packet::encode_into`] on the equivalent packet. On error
/// (an argument whose `Serialize` impl fails) `buf` is left as it was.
pub fn encode_event_into<'a, T, I>(
    buf: &mut Vec<u8>,
    framing: Framing,
    nsp: &Namespace,
    id: Option<u64>,
    event: &str,
    args: I,
) -> serde_json::Result<()>
where
    T: Serialize + ?Sized + 'a,
    I: IntoIterator<Item = &'a T>,
{
    let start = buf.len();
    write_header(buf, framing, PacketType::Event, 0, nsp, id);
    buf.push(b'[');
    let result = write_json(buf, event).and_then(|()| {
        for arg in args {
            buf.push(b',');
            write_json(buf, arg)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            buf.push(b']');
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// Appends `n` in decimal, as JavaScript's `"" + n` for a safe integer.
fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(format_u64(n, &mut [0; 20]));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::*;
    use crate::parser::binary::{placeholder, Attachments};
    use crate::parser::Decoder;
    use PacketType::*;

    fn ns(name: &str) -> Namespace {
        Namespace::new(name).unwrap()
    }

    use crate::parser::test_vectors::packet;

    /// Every example of the v5 protocol document's "Packet encoding" section, verbatim.
    #[test]
    fn protocol_document_examples() {
        for (want, p) in crate::parser::test_vectors::protocol_document_examples() {
            assert_eq!(p.encode(), want);
            assert_eq!(p.encode_message(), format!("4{want}"));
        }
    }

    #[test]
    fn protocol_document_binary_examples() {
        let one = vec![Bytes::from_static(&[1, 2, 3, 4])];
        let p =
            packet(Event, "/", None, json!(["baz", placeholder(0)])).with_attachments(one.clone());
        assert_eq!(p.encode(), r#"51-["baz",{"_placeholder":true,"num":0}]"#);

        let p = packet(
            Event,
            "/admin",
            None,
            json!(["baz", placeholder(0), placeholder(1)]),
        )
        .with_attachments(vec![
            Bytes::from_static(&[1, 2]),
            Bytes::from_static(&[3, 4]),
        ]);
        assert_eq!(
            p.encode(),
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );

        let p = packet(Ack, "/", Some(15), json!(["bar", placeholder(0)]))
            .with_attachments(one.clone());
        assert_eq!(p.encode(), r#"61-15["bar",{"_placeholder":true,"num":0}]"#);

        // Sample session: `< 461-/admin,1[{"_placeholder":true,"num":0}]`.
        let p = packet(Ack, "/admin", Some(1), json!([placeholder(0)])).with_attachments(one);
        assert_eq!(
            p.encode_message(),
            r#"461-/admin,1[{"_placeholder":true,"num":0}]"#
        );

        // And `42["foo"]` on the wire for `{ type: EVENT, namespace: "/", data: ["foo"] }`.
        assert_eq!(
            packet(Event, "/", None, json!(["foo"])).encode_message(),
            r#"42["foo"]"#
        );
    }

    /// What the v5 test suite expects a server to send.
    #[test]
    fn protocol_test_suite_replies() {
        let cases = [
            (
                packet(Event, "/", None, json!(["auth", {}])),
                r#"42["auth",{}]"#,
            ),
            (
                packet(Event, "/", None, json!(["auth", {"token": "123"}])),
                r#"42["auth",{"token":"123"}]"#,
            ),
            (
                packet(Connect, "/custom", None, json!({"sid": "x"})),
                r#"40/custom,{"sid":"x"}"#,
            ),
            (
                packet(Event, "/custom", None, json!(["auth", {"token": "abc"}])),
                r#"42/custom,["auth",{"token":"abc"}]"#,
            ),
            (
                packet(
                    ConnectError,
                    "/random",
                    None,
                    json!({"message": "Invalid namespace"}),
                ),
                r#"44/random,{"message":"Invalid namespace"}"#,
            ),
            (
                packet(
                    Event,
                    "/",
                    None,
                    json!(["message-back", 1, "2", {"3": [true]}]),
                ),
                r#"42["message-back",1,"2",{"3":[true]}]"#,
            ),
            (
                packet(Ack, "/", Some(456), json!([1, "2", {"3": [false]}])),
                r#"43456[1,"2",{"3":[false]}]"#,
            ),
        ];
        for (p, want) in cases {
            assert_eq!(p.encode_message(), want);
        }
        let two = vec![
            Bytes::from_static(&[1, 2, 3]),
            Bytes::from_static(&[4, 5, 6]),
        ];
        let p = packet(
            Event,
            "/",
            None,
            json!(["message-back", placeholder(0), placeholder(1)]),
        )
        .with_attachments(two.clone());
        assert_eq!(
            p.encode_message(),
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        let p = packet(Ack, "/", Some(789), json!([placeholder(0), placeholder(1)]))
            .with_attachments(two);
        assert_eq!(
            p.encode_message(),
            r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
    }

    /// socket.io-parser's test/parser.js and test/buffer.js encode-then-decode cases.
    #[test]
    fn node_parser_round_trips() {
        let cases = [
            packet(Connect, "/woot", None, json!({"token": "123"})),
            packet(Disconnect, "/woot", None, Value::Null),
            packet(Event, "/", None, json!(["a", 1, {}])),
            packet(Event, "/", None, json!([1, "a", {}])),
            packet(Event, "/test", Some(1), json!(["a", 1, {}])),
            packet(Ack, "/", Some(123), json!(["a", 1, {}])),
            packet(ConnectError, "/", None, json!("Unauthorized")),
            packet(ConnectError, "/", None, json!({"message": "Unauthorized"})),
        ];
        for p in cases {
            let text = p.encode();
            assert_eq!(Decoder::default().decode_text(&text), Ok(Some(p)), "{text}");
        }
        let mut att = Attachments::new();
        let data = json!(["a", {"b": ["c", att.push(Bytes::from_static(b"abc"))]}]);
        let p = Packet::event(ns("/cool"), data)
            .with_id(23)
            .with_attachments(att.into_vec());
        let text = p.encode();
        assert_eq!(
            text,
            r#"51-/cool,23["a",{"b":["c",{"_placeholder":true,"num":0}]}]"#
        );
        let mut d = Decoder::default();
        assert_eq!(d.decode_text(&text), Ok(None));
        assert_eq!(d.decode_binary(Bytes::from_static(b"abc")), Ok(Some(p)));
    }

    #[test]
    fn root_namespace_is_left_out() {
        assert_eq!(
            packet(Event, "/", Some(1), json!(["a"])).encode(),
            r#"21["a"]"#
        );
        assert_eq!(packet(Connect, "/", Some(0), Value::Null).encode(), "00");
        assert_eq!(packet(Event, "/x", None, Value::Null).encode(), "2/x,");
    }

    #[test]
    fn numbers_are_written_as_json_stringify_does() {
        let p = packet(
            Event,
            "/",
            None,
            json!(["n", 1.0, 1e21, -0.0, 0.5, 1e-7, u64::MAX, i64::MIN]),
        );
        assert_eq!(
            p.encode(),
            r#"2["n",1,1e+21,0,0.5,1e-7,18446744073709551615,-9223372036854775808]"#
        );
    }

    /// Fuzz crash: serde_json's default float parsing read `1.5e200` one ulp off, so a
    /// relayed number changed on its second trip. JSON.parse rounds correctly.
    #[test]
    fn regression_float_parse_off_by_one_ulp() {
        let text = include_str!("../../testdata/float-parse-off-by-one-ulp.txt").trim_end();
        let p = Decoder::default().decode_text(text).unwrap().unwrap();
        let once = p.encode();
        assert_eq!(
            once,
            "2/a,12[\"n\",1.5e+200,1.5000000000000001e+200,-4,{\"b\":[null,true,\"\u{FFFD}\\n\"]}]"
        );
        let again = Decoder::default().decode_text(&once).unwrap().unwrap();
        assert_eq!(again, p);
        assert_eq!(again.encode(), once);
    }

    #[test]
    fn ids_are_plain_decimal() {
        for (id, want) in [
            (0, "0"),
            (9, "9"),
            (10, "10"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut buf = Vec::new();
            push_decimal(&mut buf, id);
            assert_eq!(buf, want.as_bytes());
        }
    }

    #[test]
    fn binary_types_follow_the_attachments() {
        // A BINARY_EVENT without attachments goes out as a plain EVENT (Node never sends
        // `50-`, which its decoder refuses).
        let p = packet(BinaryEvent, "/", None, json!(["a"]));
        assert_eq!(p.encode(), r#"2["a"]"#);
        let p = packet(BinaryAck, "/", Some(2), json!([]));
        assert_eq!(p.encode(), "32[]");
        let mut p = packet(Ack, "/", Some(2), json!([placeholder(0)]));
        p.attachments.push(Bytes::new());
        assert_eq!(p.encode(), r#"61-2[{"_placeholder":true,"num":0}]"#);
    }

    #[test]
    fn encodes_into_a_callers_buffer() {
        let mut buf = b"prefix:".to_vec();
        packet(Event, "/a", Some(3), json!(["x"])).encode_into(&mut buf, Framing::EngineMessage);
        assert_eq!(buf, br#"prefix:42/a,3["x"]"#);
    }

    #[test]
    fn event_fast_path_matches_the_packet_encoding() {
        let args = [json!(1), json!({"k": [true, null]}), json!("s")];
        for (nsp, id) in [("/", None), ("/admin", Some(7))] {
            for framing in [Framing::Packet, Framing::EngineMessage] {
                let mut fast = Vec::new();
                encode_event_into(&mut fast, framing, &ns(nsp), id, "ev\"ent", &args).unwrap();
                let mut data = vec![json!("ev\"ent")];
                data.extend(args.iter().cloned());
                let mut slow = Vec::new();
                let mut p = packet(Event, nsp, None, Value::Array(data));
                p.id = id;
                p.encode_into(&mut slow, framing);
                assert_eq!(fast, slow);
            }
        }
        let mut buf = Vec::new();
        let none: [&str; 0] = [];
        encode_event_into(
            &mut buf,
            Framing::Packet,
            &Namespace::ROOT,
            None,
            "ping",
            none,
        )
        .unwrap();
        assert_eq!(buf, br#"2["ping"]"#);
        encode_event_into(
            &mut buf,
            Framing::Packet,
            &Namespace::ROOT,
            None,
            "n",
            [&1.0f64, &2.5],
        )
        .unwrap();
        assert_eq!(buf, br#"2["ping"]2["n",1,2.5]"#);
    }

    #[test]
    fn event_fast_path_leaves_the_buffer_alone_on_error() {
        use std::collections::HashMap;
        // A map with non-string keys cannot be JSON.
        let bad: HashMap<Vec<u8>, u8> = HashMap::from([(vec![1], 1)]);
        let mut buf = b"keep".to_vec();
        assert!(encode_event_into(
            &mut buf,
            Framing::Packet,
            &Namespace::ROOT,
            None,
            "x",
            [&bad]
        )
        .is_err());
        assert_eq!(buf, b"keep");
    }
}
