//! Packets out: encoded once with the configured parser, then sent to one socket or
//! shared by every recipient of a broadcast.

use std::sync::Arc;

use bytes::Bytes;
use iolite_engine::{SendError, SharedMessage};
use iolite_ws_proto::Utf8Bytes;

use crate::client::Conn;
use crate::config::ParserKind;
use crate::parser::{msgpack, Framing, Packet};

/// A packet in its wire form.
pub(crate) enum Encoded {
    /// Text (Engine.IO prefix included) and the binary attachments that follow it.
    Json(Utf8Bytes, Vec<Bytes>),
    /// One binary message.
    Msgpack(Bytes),
}

pub(crate) fn encode(parser: ParserKind, packet: &Packet) -> Encoded {
    match parser {
        ParserKind::Json => {
            let mut buf = Vec::with_capacity(64);
            packet.encode_into(&mut buf, Framing::EngineMessage);
            // The encoder writes only UTF-8 (an ASCII header and serde_json output).
            let text = String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            Encoded::Json(Utf8Bytes::from(text), packet.attachments.clone())
        }
        ParserKind::Msgpack => Encoded::Msgpack(msgpack::encode(packet)),
    }
}

impl Encoded {
    pub(crate) fn send(&self, conn: &Arc<Conn>) -> Result<(), SendError> {
        match self {
            Self::Json(text, att) if att.is_empty() => conn.send_ws_text(text.clone()),
            Self::Json(text, att) => conn.send_with_attachments(text.clone(), att),
            Self::Msgpack(b) => conn.send_binary(b.clone()),
        }
    }

    /// The messages a broadcast shares between its recipients (framed once).
    pub(crate) fn shared(&self) -> Vec<SharedMessage> {
        match self {
            Self::Json(text, att) => std::iter::once(SharedMessage::ws_text(text.clone()))
                .chain(att.iter().map(|b| SharedMessage::binary(b.clone())))
                .collect(),
            Self::Msgpack(b) => vec![SharedMessage::binary(b.clone())],
        }
    }
}
