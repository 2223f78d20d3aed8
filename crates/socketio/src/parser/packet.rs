//! The Socket.IO packet: type, namespace, ack id, JSON data and binary attachments.

use bytes::Bytes;
use serde_json::Value;

use super::namespace::Namespace;

/// The packet type, the first character of every packet on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: connect to a namespace (client), or accept the connection (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event, `["name", ...args]`.
    Event = 2,
    /// `3`: the answer to an event that carried an ack id, `[...args]`.
    Ack = 3,
    /// `4`: the server refused a CONNECT.
    ConnectError = 4,
    /// `5`: an event followed by binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack followed by binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for a wire digit `0`-`6`.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII character this type is written as (`b'0'`-`b'6'`).
    pub fn as_ascii(self) -> u8 {
        b'0' + self as u8
    }

    /// Whether attachments follow packets of this type (BINARY_EVENT, BINARY_ACK).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// One Socket.IO packet.
///
/// `data` is the JSON payload; [`Value::Null`] means "no payload", as in Node, whose
/// encoder leaves out `null` and `undefined` alike (and whose decoder never yields a
/// `null` payload: it is invalid for every packet type). Binary values stay in `data` as
/// placeholders `{"_placeholder":true,"num":N}` and the buffers are in `attachments`,
/// `attachments[N]` for placeholder `N`: see [`binary`](crate::parser::binary).
///
/// A decoded BINARY_EVENT / BINARY_ACK keeps its binary type (Node turns it back into
/// EVENT / ACK once it has swapped the buffers in). Placeholders in a packet of any other
/// type are plain JSON objects, as in Node.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace; `/` unless the packet names another.
    pub nsp: Namespace,
    /// The ack id: the sender of an EVENT asks for an ACK with the same id.
    pub id: Option<u64>,
    /// The JSON payload, with binary placeholders; `Null` when there is none.
    pub data: Value,
    /// The binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

impl Packet {
    /// A packet of any type, without ack id or attachments.
    pub fn new(kind: PacketType, nsp: Namespace, data: Value) -> Self {
        Self {
            kind,
            nsp,
            id: None,
            data,
            attachments: Vec::new(),
        }
    }

    /// CONNECT, with an object payload (`auth` from a client, `{"sid":...}` from the
    /// server) or `Null` for none.
    pub fn connect(nsp: Namespace, data: Value) -> Self {
        Self::new(PacketType::Connect, nsp, data)
    }

    /// DISCONNECT.
    pub fn disconnect(nsp: Namespace) -> Self {
        Self::new(PacketType::Disconnect, nsp, Value::Null)
    }

    /// CONNECT_ERROR, with a string or an object payload (`{"message":...}`).
    pub fn connect_error(nsp: Namespace, data: Value) -> Self {
        Self::new(PacketType::ConnectError, nsp, data)
    }

    /// EVENT; `data` is the array `["name", ...args]`.
    pub fn event(nsp: Namespace, data: Value) -> Self {
        Self::new(PacketType::Event, nsp, data)
    }

    /// ACK for ack id `id`; `data` is the array of answer arguments.
    pub fn ack(nsp: Namespace, id: u64, data: Value) -> Self {
        Self::new(PacketType::Ack, nsp, data).with_id(id)
    }

    /// Sets the ack id.
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the attachments that `data`'s placeholders refer to. An EVENT / ACK with
    /// attachments becomes a BINARY_EVENT / BINARY_ACK, and back when there are none.
    pub fn with_attachments(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self.kind = self.wire_kind();
        self
    }

    /// The type this packet goes on the wire as: as Node's encoder, which sends an EVENT
    /// or ACK as BINARY_EVENT / BINARY_ACK exactly when its data holds binary, the event
    /// and ack types follow `attachments`. Other types are sent as they are (they cannot
    /// carry attachments, which the encoder leaves out).
    pub fn wire_kind(&self) -> PacketType {
        let binary = !self.attachments.is_empty();
        match self.kind {
            PacketType::Event | PacketType::BinaryEvent if binary => PacketType::BinaryEvent,
            PacketType::Event | PacketType::BinaryEvent => PacketType::Event,
            PacketType::Ack | PacketType::BinaryAck if binary => PacketType::BinaryAck,
            PacketType::Ack | PacketType::BinaryAck => PacketType::Ack,
            other => other,
        }
    }

    /// For an EVENT / BINARY_EVENT whose data starts with a string, the event name.
    pub fn event_name(&self) -> Option<&str> {
        match self.kind {
            PacketType::Event | PacketType::BinaryEvent => self.data.get(0)?.as_str(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn type_digits() {
        for d in 0..=6 {
            let t = PacketType::from_digit(d).unwrap();
            assert_eq!(t as u8, d);
            assert_eq!(t.as_ascii(), b'0' + d);
            assert_eq!(t.is_binary(), d >= 5);
        }
        assert_eq!(PacketType::from_digit(7), None);
    }

    #[test]
    fn event_and_ack_types_follow_the_attachments() {
        let bin = vec![Bytes::from_static(b"x")];
        let p = Packet::event(Namespace::ROOT, json!(["a"])).with_attachments(bin.clone());
        assert_eq!(p.kind, PacketType::BinaryEvent);
        let p = p.with_attachments(Vec::new());
        assert_eq!(p.kind, PacketType::Event);
        let p = Packet::ack(Namespace::ROOT, 3, json!([])).with_attachments(bin.clone());
        assert_eq!((p.kind, p.id), (PacketType::BinaryAck, Some(3)));
        let mut p = Packet::connect(Namespace::ROOT, Value::Null);
        p.attachments = bin;
        assert_eq!(p.wire_kind(), PacketType::Connect);
    }

    #[test]
    fn event_name() {
        let p = Packet::event(Namespace::ROOT, json!(["hello", 1]));
        assert_eq!(p.event_name(), Some("hello"));
        assert_eq!(
            Packet::event(Namespace::ROOT, json!([1])).event_name(),
            None
        );
        assert_eq!(
            Packet::ack(Namespace::ROOT, 1, json!(["x"])).event_name(),
            None
        );
    }
}
