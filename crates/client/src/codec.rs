//! Socket.IO packets to Engine.IO frames and back, for the chosen [`Parser`].

use bytes::Bytes;
use iolite::parser::{
    self, msgpack, write_header, write_json, Framing, Namespace, PacketType, ParserLimits,
};
use iolite_engine::Data;
use iolite_ws_proto::Utf8Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::payload::collect_binary;

/// The Socket.IO parser both sides use (socket.io-client's `parser` option); the server
/// must use the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// socket.io-parser (the default): JSON text packets, binary values as attachments
    /// in separate binary messages.
    #[default]
    Json,
    /// socket.io-msgpack-parser: each packet is one msgpack binary message, binary values
    /// in place. [`crate::Payload`] looks the same either way (binary values are
    /// attachments behind placeholders).
    Msgpack,
}

/// One Engine.IO packet to send, already encoded: the text form with its type digit
/// (`42["a"]`, `3`), or the bytes of a binary message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Frame {
    pub(crate) const PONG: Frame = Frame::Text(Utf8Bytes::from_static("3"));
    pub(crate) const UPGRADE: Frame = Frame::Text(Utf8Bytes::from_static("5"));
    pub(crate) const CLOSE: Frame = Frame::Text(Utf8Bytes::from_static("1"));

    /// Payload size, for queue accounting.
    pub(crate) fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// Appends the polling form: the text as is, binary as `b` + base64.
    pub(crate) fn encode_polling_into(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Text(t) => out.extend_from_slice(t.as_bytes()),
            Frame::Binary(b) => iolite_engine::Packet::binary(b.clone()).encode_polling_into(out),
        }
    }

    /// Bytes this frame takes in a polling payload (upper bound for binary).
    pub(crate) fn polling_len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => 1 + b.len().div_ceil(3) * 4,
        }
    }

    pub(crate) fn into_ws(self) -> iolite_ws_proto::Message {
        match self {
            Frame::Text(t) => iolite_ws_proto::Message::Text(t),
            Frame::Binary(b) => iolite_ws_proto::Message::Binary(b),
        }
    }
}

fn text(buf: Vec<u8>) -> Frame {
    // Only ASCII headers, serde_json output and `str` namespaces are ever written.
    match String::from_utf8(buf) {
        Ok(s) => Frame::Text(Utf8Bytes::from(s)),
        Err(e) => Frame::Text(Utf8Bytes::from(
            String::from_utf8_lossy(e.as_bytes()).into_owned(),
        )),
    }
}

/// Encodes an EVENT (`id` set: asking for an ack) or an ACK from serializable arguments:
/// a JSON array gives its items as arguments, `null` none, anything else is one argument.
/// [`crate::Binary`] values become attachments.
pub(crate) fn encode_args<T: Serialize + ?Sized>(
    parser: Parser,
    kind: PacketType,
    nsp: &Namespace,
    id: Option<u64>,
    event: Option<&str>,
    args: &T,
) -> Result<Vec<Frame>, serde_json::Error> {
    if parser == Parser::Msgpack {
        let (value, attachments) = collect_binary(|| serde_json::to_value(args));
        let mut data = Vec::new();
        if let Some(event) = event {
            data.push(Value::String(event.to_owned()));
        }
        match value? {
            Value::Null => {}
            Value::Array(items) => data.extend(items),
            one => data.push(one),
        }
        let mut packet = parser::Packet::new(kind, nsp.clone(), Value::Array(data))
            .with_attachments(attachments);
        packet.id = id;
        return Ok(encode_packet(parser, &packet));
    }
    let mut json = Vec::new();
    let (res, attachments) = collect_binary(|| write_json(&mut json, args));
    res?;
    let kind = match (kind, attachments.is_empty()) {
        (PacketType::Event, false) => PacketType::BinaryEvent,
        (PacketType::Ack, false) => PacketType::BinaryAck,
        (k, _) => k,
    };
    let mut out = Vec::with_capacity(json.len() + 16 + event.map_or(0, str::len) + nsp.len());
    write_header(
        &mut out,
        Framing::EngineMessage,
        kind,
        attachments.len(),
        nsp,
        id,
    );
    out.push(b'[');
    let mut first = true;
    if let Some(event) = event {
        write_json(&mut out, event)?;
        first = false;
    }
    match json.as_slice() {
        b"null" => {}
        [b'[', inner @ .., b']'] => {
            if !inner.is_empty() {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(inner);
            }
        }
        one => {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(one);
        }
    }
    out.push(b']');
    let mut frames = Vec::with_capacity(1 + attachments.len());
    frames.push(text(out));
    frames.extend(attachments.into_iter().map(Frame::Binary));
    Ok(frames)
}

/// Encodes a whole packet.
pub(crate) fn encode_packet(parser: Parser, packet: &parser::Packet) -> Vec<Frame> {
    if parser == Parser::Msgpack {
        return vec![Frame::Binary(msgpack::encode(packet))];
    }
    let mut out = Vec::new();
    packet.encode_into(&mut out, Framing::EngineMessage);
    let mut frames = vec![text(out)];
    if packet.wire_kind().is_binary() {
        frames.extend(packet.attachments.iter().cloned().map(Frame::Binary));
    }
    frames
}

/// The read side: Engine.IO message data in, Socket.IO packets out.
#[derive(Debug)]
pub(crate) struct Decoder {
    parser: Parser,
    inner: parser::Decoder,
}

impl Decoder {
    pub(crate) fn new(parser: Parser, max_attachments: usize) -> Self {
        Self {
            parser,
            inner: parser::Decoder::new(ParserLimits::default().max_attachments(max_attachments)),
        }
    }

    /// Decodes one message; `None` while a binary packet waits for attachments. The error
    /// describes what was wrong.
    pub(crate) fn decode(&mut self, data: Data) -> Result<Option<parser::Packet>, String> {
        match (self.parser, data) {
            (Parser::Json, Data::Text(t)) => self
                .inner
                .decode_text(t.as_str())
                .map_err(|e| e.to_string()),
            (Parser::Json, Data::Binary(b)) => {
                self.inner.decode_binary(b).map_err(|e| e.to_string())
            }
            (Parser::Msgpack, Data::Binary(b)) => msgpack::decode_bytes(&b, self.inner.limits())
                .map(Some)
                .map_err(|e| e.to_string()),
            (Parser::Msgpack, Data::Text(_)) => Err("text message under the msgpack parser".into()),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Binary;

    fn enc<T: Serialize>(
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        ev: Option<&str>,
        a: &T,
    ) -> Vec<Frame> {
        encode_args(Parser::Json, kind, &Namespace::new(nsp).unwrap(), id, ev, a).unwrap()
    }

    fn t(s: &'static str) -> Frame {
        Frame::Text(Utf8Bytes::from_static(s))
    }

    #[test]
    fn events_as_socket_io_client_writes_them() {
        assert_eq!(
            enc(PacketType::Event, "/", None, Some("a"), &()),
            [t(r#"42["a"]"#)]
        );
        assert_eq!(
            enc(PacketType::Event, "/", None, Some("a"), &(1, "x")),
            [t(r#"42["a",1,"x"]"#)]
        );
        assert_eq!(
            enc(
                PacketType::Event,
                "/",
                Some(3),
                Some("a"),
                &json!({"k":1.0})
            ),
            [t(r#"423["a",{"k":1}]"#)]
        );
        assert_eq!(
            enc(PacketType::Event, "/admin", Some(0), Some("a"), &[1]),
            [t(r#"42/admin,0["a",1]"#)]
        );
        assert_eq!(enc(PacketType::Ack, "/", Some(7), None, &()), [t("437[]")]);
        assert_eq!(
            enc(PacketType::Ack, "/x", Some(7), None, &("a", 2)),
            [t(r#"43/x,7["a",2]"#)]
        );
        assert_eq!(
            enc(
                PacketType::Event,
                "/",
                None,
                Some("a"),
                &(Vec::<u8>::new(),)
            ),
            [t(r#"42["a",[]]"#)]
        );
    }

    #[test]
    fn binary_arguments_become_attachments() {
        let frames = enc(
            PacketType::Event,
            "/",
            Some(1),
            Some("up"),
            &(Binary::from(vec![1u8, 2]), json!({"n": 1})),
        );
        assert_eq!(
            frames,
            [
                t(r#"451-1["up",{"_placeholder":true,"num":0},{"n":1}]"#),
                Frame::Binary(Bytes::from_static(&[1, 2]))
            ]
        );
        let frames = enc(
            PacketType::Ack,
            "/",
            Some(2),
            None,
            &[Binary::from(vec![9u8])],
        );
        assert_eq!(frames[0], t(r#"461-2[{"_placeholder":true,"num":0}]"#));
    }

    #[test]
    fn msgpack_packets_are_one_binary_message() {
        let nsp = Namespace::new("/n").unwrap();
        let frames = encode_args(
            Parser::Msgpack,
            PacketType::Event,
            &nsp,
            Some(4),
            Some("e"),
            &(Binary::from(vec![5u8]), 2),
        )
        .unwrap();
        assert_eq!(frames.len(), 1);
        let Frame::Binary(b) = &frames[0] else {
            panic!("{frames:?}")
        };
        let mut d = Decoder::new(Parser::Msgpack, 10);
        let p = d.decode(Data::Binary(b.clone())).unwrap().unwrap();
        assert_eq!(
            (p.kind, &*p.nsp, p.id),
            (PacketType::BinaryEvent, "/n", Some(4))
        );
        assert_eq!(p.data, json!(["e", {"_placeholder": true, "num": 0}, 2]));
        assert_eq!(p.attachments, [Bytes::from_static(&[5])]);
        let ack = encode_args(Parser::Msgpack, PacketType::Ack, &nsp, Some(9), None, &()).unwrap();
        let Frame::Binary(b) = &ack[0] else { panic!() };
        let p = d.decode(Data::Binary(b.clone())).unwrap().unwrap();
        assert_eq!(
            (p.kind, p.id, p.data),
            (PacketType::Ack, Some(9), json!([]))
        );
        // Text is never a msgpack packet; garbage is an error, not a panic.
        assert!(d.decode(Data::Text("40".into())).is_err());
        assert!(d.decode(Data::Binary(Bytes::from_static(b"\xc1"))).is_err());
        assert!(d
            .decode(Data::Binary(Bytes::from_static(b"\xdf\xff\xff\xff\xff")))
            .is_err());
    }

    #[test]
    fn decodes_what_it_encodes() {
        let frames = enc(
            PacketType::Event,
            "/n",
            Some(4),
            Some("e"),
            &(Binary::from(vec![5u8]), 2),
        );
        let mut d = Decoder::new(Parser::Json, 10);
        let mut out = None;
        for f in frames {
            let data = match f {
                Frame::Text(t) => Data::Text(t.slice(1..t.len()).unwrap()),
                Frame::Binary(b) => Data::Binary(b),
            };
            out = d.decode(data).unwrap();
        }
        let p = out.unwrap();
        assert_eq!(
            (p.kind, &*p.nsp, p.id, p.attachments.len()),
            (PacketType::BinaryEvent, "/n", Some(4), 1)
        );
    }
}
