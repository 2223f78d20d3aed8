//! The handshake: the `open` packet the server starts every session with.
//!
//! Its data is the JSON Node's `Socket.onOpen` writes with `JSON.stringify`, keys in this
//! order and no whitespace:
//! `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`.

use bytes::Bytes;
use iolite_ws_proto::Utf8Bytes;

use crate::packet::Packet;
use crate::query::Transport;
use crate::sid::Sid;

/// Default [`OpenPacket::ping_interval`]: 25 s, Node's `pingInterval`.
pub const DEFAULT_PING_INTERVAL_MS: u64 = 25_000;
/// Default [`OpenPacket::ping_timeout`]: 20 s, Node's `pingTimeout`.
pub const DEFAULT_PING_TIMEOUT_MS: u64 = 20_000;
/// Default [`OpenPacket::max_payload`]: 1,000,000 bytes, Node's `maxHttpBufferSize` (1e6).
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// The data of the `open` packet. Serializes (serde, camelCase) to exactly Node's JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// The new session's id.
    pub sid: Sid,
    /// Transports the client may upgrade to: `["websocket"]` on polling when upgrades are
    /// allowed, `[]` on WebSocket (and when they are not).
    pub upgrades: Vec<Transport>,
    /// Milliseconds between the server's pings. Default [`DEFAULT_PING_INTERVAL_MS`].
    pub ping_interval: u64,
    /// Milliseconds the client has to answer a ping with a pong before the server drops
    /// the session; a client drops it after `ping_interval + ping_timeout` without a
    /// ping. Default [`DEFAULT_PING_TIMEOUT_MS`].
    pub ping_timeout: u64,
    /// The largest polling payload the server accepts, in bytes: the client packs its
    /// POST bodies up to it. Must equal the server's
    /// [`crate::PayloadLimits::max_payload_bytes`]. Default [`DEFAULT_MAX_PAYLOAD`].
    pub max_payload: usize,
}

impl OpenPacket {
    /// The handshake of a session opened on `transport`, with Node's defaults: on polling
    /// the client may upgrade to WebSocket; on WebSocket there is nothing to upgrade to.
    pub fn new(sid: Sid, transport: Transport) -> Self {
        let upgrades = match transport {
            Transport::Polling => vec![Transport::WebSocket],
            Transport::WebSocket => Vec::new(),
        };
        Self {
            sid,
            upgrades,
            ping_interval: DEFAULT_PING_INTERVAL_MS,
            ping_timeout: DEFAULT_PING_TIMEOUT_MS,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Sets [`OpenPacket::upgrades`] (empty to disallow upgrades, as Node's
    /// `allowUpgrades: false`).
    pub fn upgrades(mut self, upgrades: Vec<Transport>) -> Self {
        self.upgrades = upgrades;
        self
    }

    /// Sets [`OpenPacket::ping_interval`], in milliseconds.
    pub fn ping_interval(mut self, ms: u64) -> Self {
        self.ping_interval = ms;
        self
    }

    /// Sets [`OpenPacket::ping_timeout`], in milliseconds.
    pub fn ping_timeout(mut self, ms: u64) -> Self {
        self.ping_timeout = ms;
        self
    }

    /// Sets [`OpenPacket::max_payload`], in bytes.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The JSON, as Node's `JSON.stringify` writes it.
    pub fn to_json(&self) -> String {
        // Strings of the sid alphabet, transport names and integers: serializing into a
        // String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The `open` packet: `0` followed by [`OpenPacket::to_json`].
    pub fn to_packet(&self) -> Packet {
        Packet::Open(Utf8Bytes::from(self.to_json()))
    }

    /// Parses the JSON of an `open` packet (a client's side of the handshake).
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl From<&OpenPacket> for Packet {
    fn from(open: &OpenPacket) -> Self {
        open.to_packet()
    }
}

impl From<&OpenPacket> for Bytes {
    /// The JSON as bytes.
    fn from(open: &OpenPacket) -> Self {
        Bytes::from(open.to_json())
    }
}

#[cfg(test)]
mod tests {
    use iolite_ws_proto::Message;

    use super::*;

    fn doc_sid() -> Sid {
        Sid::parse("lv_VI97HAXpY6yYWAAAC").unwrap()
    }

    #[test]
    fn json_is_nodes_byte_for_byte() {
        let open = OpenPacket::new(doc_sid(), Transport::Polling);
        assert_eq!(
            open.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(
            open.to_packet().to_ws_message(),
            Message::text(format!("0{}", open.to_json()))
        );
        assert_eq!(Bytes::from(&open), open.to_json().into_bytes());
    }

    #[test]
    fn websocket_sessions_offer_no_upgrades() {
        let open = OpenPacket::new(doc_sid(), Transport::WebSocket);
        assert_eq!(
            open.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn settings_and_the_test_suite_values() {
        // The protocol test suite runs the server with pingInterval 300, pingTimeout 200.
        let open = OpenPacket::new(doc_sid(), Transport::Polling)
            .ping_interval(300)
            .ping_timeout(200)
            .max_payload(1_000_000)
            .upgrades(Vec::new());
        assert_eq!(
            open.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
        let Packet::Open(json) = Packet::from(&open) else {
            panic!("not an open packet")
        };
        assert_eq!(OpenPacket::from_json(json.as_bytes()).unwrap(), open);
    }

    #[test]
    fn parses_the_protocol_document_example() {
        let doc = r#"{
  "sid": "lv_VI97HAXpY6yYWAAAC",
  "upgrades": ["websocket"],
  "pingInterval": 25000,
  "pingTimeout": 20000,
  "maxPayload": 1000000
}"#;
        assert_eq!(
            OpenPacket::from_json(doc.as_bytes()).unwrap(),
            OpenPacket::new(doc_sid(), Transport::Polling)
        );
        assert!(OpenPacket::from_json(br#"{"sid":"bad"}"#).is_err());
    }
}
