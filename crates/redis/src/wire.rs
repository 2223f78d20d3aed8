//! The messages of `@socket.io/redis-adapter` 8.x (the classic pub/sub adapter), byte for
//! byte.
//!
//! # Channels ([`Channels`])
//!
//! With the key `socket.io` (the default) and namespace `/chat`:
//!
//! | channel | carries |
//! |---|---|
//! | `socket.io#/chat#` | broadcasts (every node `PSUBSCRIBE`s `socket.io#/chat#*`) |
//! | `socket.io#/chat#room#` | a broadcast to exactly one room |
//! | `socket.io-request#/chat#` | requests; `PUBSUB NUMSUB` of it is the node count |
//! | `socket.io-response#/chat#` | responses (every node reads them, keeps its own) |
//! | `socket.io-response#/chat#<uid>#` | responses to node `<uid>` only, when the answering node has `publishOnSpecificResponseChannel` |
//!
//! # Messages
//!
//! A broadcast is the msgpack array `[uid, packet, opts]` ([`BroadcastMessage`]): `packet`
//! the Socket.IO packet object `{type, data, nsp}` as socket.io-parser's encoder takes it
//! (binary values in place in `data`, type 2 even when it holds binary), `opts`
//! `{rooms: [...], except: [...], flags: {...}}`.
//!
//! Requests ([`Request`]) and responses are JSON (`JSON.stringify`), except the two that
//! carry a packet or a client's answer: the `BROADCAST` request (type 7) and the
//! `BROADCAST_ACK` response (type 9) are msgpack. A reader tells them apart by the first
//! byte: `{` is JSON (a msgpack map never starts with `0x7b`).
//!
//! | type | request | response |
//! |---|---|---|
//! | 0 `SOCKETS` (legacy) | `{uid, requestId, type, rooms}` | `{requestId, sockets: [id, ...]}` |
//! | 1 `ALL_ROOMS` | `{uid, requestId, type}` | `{requestId, rooms}` |
//! | 2 `REMOTE_JOIN` | `{uid, type, opts: {rooms, except}, rooms}` | none |
//! | 3 `REMOTE_LEAVE` | `{uid, type, opts: {rooms, except}, rooms}` | none |
//! | 4 `REMOTE_DISCONNECT` | `{uid, type, opts: {rooms, except}, close}` | none |
//! | 5 `REMOTE_FETCH` | `{uid, requestId, type, opts: {rooms, except}}` | `{requestId, sockets: [{id, handshake, rooms, data}]}` |
//! | 6 `SERVER_SIDE_EMIT` | `{uid, [requestId,] type, data: [event, ...args]}` | `{type: 6, requestId, data}` |
//! | 7 `BROADCAST` (msgpack) | `{uid, requestId, type, packet, opts: {rooms, except, flags}}` | 8 then 9 |
//! | 8 `BROADCAST_CLIENT_COUNT` | | `{type: 8, requestId, clientCount}` |
//! | 9 `BROADCAST_ACK` (msgpack) | | `{type: 9, requestId, packet: <the client's first ack argument>}` |
//!
//! The legacy forms of 2-4 that name one socket (`{uid, requestId, type, sid, room}` /
//! `{..., sid, close}`, answered with `{requestId}`) are read too; 8.x no longer sends them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use iolite::adapter::{BroadcastFlags, BroadcastOptions, SocketInfo};
use iolite::parser::{Namespace, Packet, PacketType};
use iolite::{Handshake, Room, Sid};
use serde_json::{json, Map, Value};

use crate::msgpack::{self, Decoded, MsgpackError};

/// The request types (`RequestType` in the Node adapter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RequestType {
    /// 0: the ids of the sockets in some rooms (legacy `allSockets`).
    Sockets = 0,
    /// 1: every room.
    AllRooms = 1,
    /// 2: sockets join rooms.
    RemoteJoin = 2,
    /// 3: sockets leave rooms.
    RemoteLeave = 3,
    /// 4: sockets are disconnected.
    RemoteDisconnect = 4,
    /// 5: the sockets, described.
    RemoteFetch = 5,
    /// 6: a server-side event.
    ServerSideEmit = 6,
    /// 7: a broadcast whose recipients' acks are wanted.
    Broadcast = 7,
    /// 8: how many clients a node asked for an ack.
    BroadcastClientCount = 8,
    /// 9: one client's ack.
    BroadcastAck = 9,
}

impl RequestType {
    /// The type of a wire number.
    pub fn from_number(n: u64) -> Option<Self> {
        Some(match n {
            0 => Self::Sockets,
            1 => Self::AllRooms,
            2 => Self::RemoteJoin,
            3 => Self::RemoteLeave,
            4 => Self::RemoteDisconnect,
            5 => Self::RemoteFetch,
            6 => Self::ServerSideEmit,
            7 => Self::Broadcast,
            8 => Self::BroadcastClientCount,
            9 => Self::BroadcastAck,
            _ => return None,
        })
    }
}

/// Why a message from Redis was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not msgpack this codec reads.
    #[error(transparent)]
    Msgpack(#[from] MsgpackError),
    /// Starts with `{` but is not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid msgpack or JSON, but not the message it should be.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// The channels of one namespace (and one node, for its own response channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels {
    /// `{key}#{nsp}#`: broadcasts.
    pub broadcast: String,
    /// `{key}-request#{nsp}#`.
    pub request: String,
    /// `{key}-response#{nsp}#`.
    pub response: String,
    /// `{key}-response#{nsp}#{uid}#`.
    pub specific_response: String,
}

impl Channels {
    /// The channels of namespace `nsp` under `key`, for the node `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let response = format!("{key}-response#{nsp}#");
        Self {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            specific_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// Where a broadcast with these options is published: the room's own channel when it
    /// targets exactly one room.
    pub fn for_broadcast(&self, opts: &BroadcastOptions) -> String {
        match opts.rooms.as_slice() {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// The pattern that matches every broadcast channel of the namespace, its glob
    /// characters escaped (Node does not escape them: its pattern can also match other
    /// namespaces' channels, which it then ignores, as we would).
    pub fn broadcast_pattern(&self) -> String {
        let mut p = String::with_capacity(self.broadcast.len() + 1);
        for c in self.broadcast.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('*');
        p
    }

    /// Where the answer to a request from node `uid` goes.
    pub fn response_to(&self, uid: &str, specific: bool) -> String {
        if specific {
            format!("{}{uid}#", self.response)
        } else {
            self.response.clone()
        }
    }
}

/// Reads a request or response: JSON when it starts with `{`, msgpack otherwise.
pub fn decode_any(bytes: &[u8]) -> Result<Decoded, WireError> {
    if bytes.first() == Some(&b'{') {
        let value = serde_json::from_slice(bytes).map_err(|e| WireError::Json(e.to_string()))?;
        Ok(Decoded {
            value,
            attachments: Vec::new(),
        })
    } else {
        Ok(msgpack::decode(bytes)?)
    }
}

/// `JSON.stringify(value)`.
pub fn to_json(value: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    // A Value always serializes.
    let _ = iolite::parser::write_json(&mut buf, value);
    buf
}

// ---------------------------------------------------------------------------------------
// Options, packets, sockets

/// A room as Node's `Set` of rooms may hold it: a string, or a number it was given as.
fn room_of(v: &Value) -> Option<Room> {
    match v {
        Value::String(s) => Some(Room::from(s.as_str())),
        Value::Number(n) => Some(Room::from(
            String::from_utf8_lossy(&to_json(&Value::Number(n.clone()))).as_ref(),
        )),
        _ => None,
    }
}

fn rooms_of(v: Option<&Value>) -> Vec<Room> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(room_of).collect(),
        _ => Vec::new(),
    }
}

fn rooms_json(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::String(r.to_string())).collect())
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// `{rooms, except}` of a request (requests carry no flags).
pub fn opts_json(opts: &BroadcastOptions) -> Value {
    json!({"rooms": rooms_json(&opts.rooms), "except": rooms_json(&opts.except)})
}

/// `{rooms, except, flags}` of a broadcast, flags written as Node's `BroadcastFlags`
/// object holds them (only those set; `timeout` in milliseconds).
pub fn broadcast_opts_json(opts: &BroadcastOptions) -> Value {
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".into(), Value::Bool(true));
    }
    if opts.flags.local {
        flags.insert("local".into(), Value::Bool(true));
    }
    if let Some(c) = opts.flags.compress {
        flags.insert("compress".into(), Value::Bool(c));
    }
    if let Some(t) = opts.flags.timeout {
        flags.insert(
            "timeout".into(),
            Value::from(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    json!({
        "rooms": rooms_json(&opts.rooms),
        "except": rooms_json(&opts.except),
        "flags": Value::Object(flags),
    })
}

/// The options of a received broadcast or request. `local` is dropped: a node delivers
/// what it receives.
pub fn opts_from_json(v: Option<&Value>) -> BroadcastOptions {
    let Some(v) = v else {
        return BroadcastOptions::default();
    };
    let flags = v.get("flags");
    let flag = |name: &str| flags.and_then(|f| f.get(name));
    BroadcastOptions {
        rooms: rooms_of(v.get("rooms")),
        except: rooms_of(v.get("except")),
        flags: BroadcastFlags {
            volatile: truthy(flag("volatile")),
            local: false,
            compress: flag("compress").and_then(Value::as_bool),
            timeout: flag("timeout")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| Duration::from_millis(t.min(u64::MAX as f64) as u64)),
        },
    }
}

/// A packet as the Node adapter publishes it: `{type, data, id?, nsp}`, binary events and
/// acks as types 2 and 3 (socket.io-parser picks the binary type when it encodes).
pub fn packet_json(packet: &Packet) -> Value {
    let kind = match packet.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        k => k,
    };
    let mut m = Map::new();
    m.insert("type".into(), Value::from(kind as u8));
    if !packet.data.is_null() {
        m.insert("data".into(), packet.data.clone());
    }
    if let Some(id) = packet.id {
        m.insert("id".into(), Value::from(id));
    }
    m.insert("nsp".into(), Value::String(packet.nsp.as_str().to_owned()));
    Value::Object(m)
}

/// The packet of a received message; `attachments` are those of the whole message, of
/// which it keeps the ones its data names, renumbered. `nsp` defaults to `/`, as in Node.
pub fn packet_from_json(v: &Value, attachments: &[Bytes]) -> Result<Packet, WireError> {
    let obj = v
        .as_object()
        .ok_or(WireError::Malformed("packet is not an object"))?;
    let kind = obj
        .get("type")
        .and_then(Value::as_u64)
        .and_then(|t| u8::try_from(t).ok())
        .and_then(PacketType::from_digit)
        .ok_or(WireError::Malformed("packet type"))?;
    let nsp = match obj.get("nsp") {
        None | Some(Value::Null) => Namespace::ROOT,
        Some(Value::String(s)) => {
            Namespace::new(s).map_err(|_| WireError::Malformed("packet namespace"))?
        }
        Some(_) => return Err(WireError::Malformed("packet namespace")),
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or(WireError::Malformed("packet id"))?),
    };
    let mut data = obj.get("data").cloned().unwrap_or(Value::Null);
    let mut own = Vec::new();
    renumber(&mut data, attachments, &mut own);
    let mut packet = Packet::new(kind, nsp, data).with_attachments(own);
    packet.id = id;
    Ok(packet)
}

/// Moves the attachments `v` names into `out`, in order, renumbering its placeholders.
pub fn renumber(v: &mut Value, attachments: &[Bytes], out: &mut Vec<Bytes>) {
    if let Some(bin) = iolite::parser::binary::attachment(v, attachments) {
        out.push(bin.clone());
        *v = iolite::parser::binary::placeholder(out.len() - 1);
        return;
    }
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| renumber(i, attachments, out)),
        Value::Object(map) => map.values_mut().for_each(|i| renumber(i, attachments, out)),
        _ => {}
    }
}

/// A socket as Node's `REMOTE_FETCH` answer describes it: `{id, handshake, rooms, data}`.
pub fn socket_json(s: &SocketInfo) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(s.id.to_string()));
    m.insert("handshake".into(), handshake_json(&s.handshake));
    m.insert("rooms".into(), rooms_json(&s.rooms));
    if !s.data.is_null() {
        m.insert("data".into(), s.data.clone());
    }
    Value::Object(m)
}

/// A socket of a `REMOTE_FETCH` answer; `None` when its id is not a socket id.
pub fn socket_from_json(v: &Value) -> Option<SocketInfo> {
    let id = Sid::parse(v.get("id")?.as_str()?).ok()?;
    Some(SocketInfo {
        id,
        rooms: rooms_of(v.get("rooms")),
        data: v.get("data").cloned().unwrap_or(Value::Null),
        handshake: handshake_from_json(v.get("handshake").unwrap_or(&Value::Null)),
    })
}

/// Node's handshake object: `{headers, time, address, xdomain, secure, issued, url, query,
/// auth}`. `secure` is always `false`: a `Handshake` does not say whether TLS was used.
pub fn handshake_json(h: &Handshake) -> Value {
    let mut headers = Map::new();
    for name in h.headers().keys() {
        let values: Vec<Value> = h
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        // Node joins repeated headers with ", " except set-cookie, which is an array.
        let v = if name == http::header::SET_COOKIE {
            Value::Array(values)
        } else {
            let joined: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            Value::String(joined.join(", "))
        };
        headers.insert(name.as_str().to_owned(), v);
    }
    let issued = h
        .issued()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let query = h
        .url()
        .split_once('?')
        .map(|(_, q)| query_json(q))
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut m = Map::new();
    m.insert("headers".into(), Value::Object(headers));
    m.insert("time".into(), Value::String(js_date_string(h.issued())));
    if let Some(a) = h.address() {
        m.insert("address".into(), Value::String(a.ip().to_string()));
    }
    m.insert(
        "xdomain".into(),
        Value::Bool(h.headers().contains_key(http::header::ORIGIN)),
    );
    m.insert("secure".into(), Value::Bool(false));
    m.insert(
        "issued".into(),
        Value::from(u64::try_from(issued).unwrap_or(u64::MAX)),
    );
    m.insert("url".into(), Value::String(h.url().to_owned()));
    m.insert("query".into(), query);
    m.insert("auth".into(), h.auth().clone());
    Value::Object(m)
}

/// A handshake from Node's object; what it lacks is left empty.
pub fn handshake_from_json(v: &Value) -> Handshake {
    let mut headers = http::HeaderMap::new();
    if let Some(Value::Object(h)) = v.get("headers") {
        for (k, v) in h {
            let Ok(name) = http::HeaderName::from_bytes(k.as_bytes()) else {
                continue;
            };
            let values: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for s in values {
                if let Ok(value) = http::HeaderValue::from_str(s) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    let issued = v
        .get("issued")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms as u64))
        .unwrap_or(UNIX_EPOCH);
    let address = v
        .get("address")
        .and_then(Value::as_str)
        .and_then(|a| {
            a.trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .ok()
        })
        .map(|ip| SocketAddr::new(ip, 0));
    Handshake::new(
        v.get("auth")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        headers,
        v.get("url").and_then(Value::as_str).unwrap_or_default(),
        address,
        issued,
    )
}

/// `querystring.parse(q)` as Node's `url.parse(url, true).query`: `+` is a space, a
/// repeated key becomes an array.
fn query_json(q: &str) -> Value {
    let mut m = Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match m.get_mut(&k) {
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                m.insert(k, Value::String(v));
            }
        }
    }
    Value::Object(m)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `new Date() + ""` in UTC: `Mon Nov 23 2026 23:02:22 GMT+0000 (Coordinated Universal Time)`.
fn js_date_string(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The ISO string, YYYY-MM-DDTHH:MM:SS.sssZ, cut into Node's pieces.
    let Value::String(iso) = msgpack::iso_date(secs as f64 * 1e3) else {
        return String::new();
    };
    let (Some(y), Some(m), Some(d), Some(time)) = (
        iso.get(0..4),
        iso.get(5..7),
        iso.get(8..10),
        iso.get(11..19),
    ) else {
        return String::new();
    };
    let m: usize = m.parse().unwrap_or(1);
    format!(
        "{} {} {d} {y} {time} GMT+0000 (Coordinated Universal Time)",
        DAYS[((secs / 86_400) % 7) as usize],
        MONTHS[m.clamp(1, 12) - 1],
    )
}

// ---------------------------------------------------------------------------------------
// Broadcasts

/// A broadcast as published: `[uid, packet, opts]`, msgpack.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastMessage {
    /// The publishing node.
    pub uid: String,
    /// The packet.
    pub packet: Packet,
    /// Who gets it.
    pub opts: BroadcastOptions,
}

/// The bytes of [`BroadcastMessage`] `{uid, packet, opts}`.
pub fn encode_broadcast(uid: &str, packet: &Packet, opts: &BroadcastOptions) -> Vec<u8> {
    let v = Value::Array(vec![
        Value::String(uid.to_owned()),
        packet_json(packet),
        broadcast_opts_json(opts),
    ]);
    msgpack::to_vec(&v, &packet.attachments)
}

impl BroadcastMessage {
    /// The message bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode_broadcast(&self.uid, &self.packet, &self.opts)
    }

    /// Reads a message.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let Decoded { value, attachments } = msgpack::decode(bytes)?;
        let Value::Array(items) = value else {
            return Err(WireError::Malformed("broadcast is not an array"));
        };
        let uid = match items.first() {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(WireError::Malformed("broadcast uid")),
        };
        let packet = packet_from_json(
            items
                .get(1)
                .ok_or(WireError::Malformed("broadcast packet"))?,
            &attachments,
        )?;
        Ok(Self {
            uid,
            packet,
            opts: opts_from_json(items.get(2)),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// Which sockets a join, leave or disconnect request names.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The sockets these options select (what 8.x sends).
    Sockets(BroadcastOptions),
    /// One socket by id (legacy; answered with `{requestId}`).
    Socket(String),
}

/// What a request asks.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestKind {
    /// 0: the ids of the sockets in `rooms` (all when empty).
    Sockets {
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// 1: every room.
    AllRooms,
    /// 2: join `rooms`.
    RemoteJoin {
        /// Who.
        target: Target,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// 3: leave `rooms`.
    RemoteLeave {
        /// Who.
        target: Target,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// 4: disconnect.
    RemoteDisconnect {
        /// Who.
        target: Target,
        /// The whole connection, not only the namespace.
        close: bool,
    },
    /// 5: describe the selected sockets.
    RemoteFetch {
        /// Who.
        opts: BroadcastOptions,
    },
    /// 6: a server-side event, `[event, ...args]`.
    ServerSideEmit {
        /// The event and its arguments.
        data: Vec<Value>,
    },
    /// 7: a broadcast wanting the clients' acks.
    Broadcast {
        /// The packet (without ack id: each node sets its own).
        packet: Packet,
        /// Who gets it (`flags.timeout` is how long the sender waits).
        opts: BroadcastOptions,
    },
}

/// A request on the request channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The asking node.
    pub uid: String,
    /// Set when an answer is wanted (and on 7).
    pub request_id: Option<String>,
    /// What is asked.
    pub kind: RequestKind,
}

impl Request {
    /// The wire type.
    pub fn request_type(&self) -> RequestType {
        match self.kind {
            RequestKind::Sockets { .. } => RequestType::Sockets,
            RequestKind::AllRooms => RequestType::AllRooms,
            RequestKind::RemoteJoin { .. } => RequestType::RemoteJoin,
            RequestKind::RemoteLeave { .. } => RequestType::RemoteLeave,
            RequestKind::RemoteDisconnect { .. } => RequestType::RemoteDisconnect,
            RequestKind::RemoteFetch { .. } => RequestType::RemoteFetch,
            RequestKind::ServerSideEmit { .. } => RequestType::ServerSideEmit,
            RequestKind::Broadcast { .. } => RequestType::Broadcast,
        }
    }

    /// The message bytes: msgpack for `BROADCAST`, JSON for the others, keys in the order
    /// the Node adapter writes them.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("uid".into(), Value::String(self.uid.clone()));
        if let Some(id) = &self.request_id {
            m.insert("requestId".into(), Value::String(id.clone()));
        }
        m.insert("type".into(), Value::from(self.request_type() as u8));
        let target = |m: &mut Map<String, Value>, t: &Target| match t {
            Target::Sockets(opts) => {
                m.insert("opts".into(), opts_json(opts));
            }
            Target::Socket(sid) => {
                m.insert("sid".into(), Value::String(sid.clone()));
            }
        };
        match &self.kind {
            RequestKind::Sockets { rooms } => {
                m.insert("rooms".into(), rooms_json(rooms));
            }
            RequestKind::AllRooms => {}
            RequestKind::RemoteJoin { target: t, rooms }
            | RequestKind::RemoteLeave { target: t, rooms } => {
                target(&mut m, t);
                match t {
                    Target::Sockets(_) => {
                        m.insert("rooms".into(), rooms_json(rooms));
                    }
                    Target::Socket(_) => {
                        let room = rooms.first().map(|r| r.to_string()).unwrap_or_default();
                        m.insert("room".into(), Value::String(room));
                    }
                }
            }
            RequestKind::RemoteDisconnect { target: t, close } => {
                target(&mut m, t);
                m.insert("close".into(), Value::Bool(*close));
            }
            RequestKind::RemoteFetch { opts } => {
                m.insert("opts".into(), opts_json(opts));
            }
            RequestKind::ServerSideEmit { data } => {
                m.insert("data".into(), Value::Array(data.clone()));
            }
            RequestKind::Broadcast { packet, opts } => {
                m.insert("packet".into(), packet_json(packet));
                m.insert("opts".into(), broadcast_opts_json(opts));
                return msgpack::to_vec(&Value::Object(m), &packet.attachments);
            }
        }
        to_json(&Value::Object(m))
    }

    /// Reads a request. `Ok(None)` for a well-formed message of a type this node does not
    /// act on (a response type, or a number it does not know), which Node ignores too.
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, WireError> {
        let Decoded { value, attachments } = decode_any(bytes)?;
        let obj = value
            .as_object()
            .ok_or(WireError::Malformed("request is not an object"))?;
        let Some(ty) = obj
            .get("type")
            .and_then(Value::as_u64)
            .and_then(RequestType::from_number)
        else {
            return Ok(None);
        };
        let uid = obj
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let request_id = match obj.get("requestId") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let target = || match obj.get("opts") {
            Some(o) if !o.is_null() => Some(Target::Sockets(opts_from_json(Some(o)))),
            _ => obj
                .get("sid")
                .and_then(Value::as_str)
                .map(|s| Target::Socket(s.to_owned())),
        };
        let rooms = || match (obj.get("opts"), obj.get("room")) {
            (Some(o), _) if !o.is_null() => rooms_of(obj.get("rooms")),
            (_, Some(r)) => room_of(r).into_iter().collect(),
            _ => Vec::new(),
        };
        let kind = match ty {
            RequestType::Sockets => RequestKind::Sockets {
                rooms: rooms_of(obj.get("rooms")),
            },
            RequestType::AllRooms => RequestKind::AllRooms,
            RequestType::RemoteJoin => RequestKind::RemoteJoin {
                target: target().ok_or(WireError::Malformed("join target"))?,
                rooms: rooms(),
            },
            RequestType::RemoteLeave => RequestKind::RemoteLeave {
                target: target().ok_or(WireError::Malformed("leave target"))?,
                rooms: rooms(),
            },
            RequestType::RemoteDisconnect => RequestKind::RemoteDisconnect {
                target: target().ok_or(WireError::Malformed("disconnect target"))?,
                close: truthy(obj.get("close")),
            },
            RequestType::RemoteFetch => RequestKind::RemoteFetch {
                opts: opts_from_json(obj.get("opts")),
            },
            RequestType::ServerSideEmit => match obj.get("data") {
                Some(Value::Array(data)) => RequestKind::ServerSideEmit { data: data.clone() },
                _ => return Err(WireError::Malformed("server-side emit data")),
            },
            RequestType::Broadcast => RequestKind::Broadcast {
                packet: packet_from_json(
                    obj.get("packet")
                        .ok_or(WireError::Malformed("broadcast packet"))?,
                    &attachments,
                )?,
                opts: opts_from_json(obj.get("opts")),
            },
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => return Ok(None),
        };
        Ok(Some(Self {
            uid,
            request_id,
            kind,
        }))
    }
}

// ---------------------------------------------------------------------------------------
// Responses

/// A response on a response channel. Node's responses name their type only for 6, 8 and 9;
/// the others are read by the request they answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The request answered.
    pub request_id: String,
    /// The `type` field, when there is one.
    pub kind: Option<RequestType>,
    /// The whole message.
    pub body: Value,
    /// Its binary values (a `BROADCAST_ACK` may carry some).
    pub attachments: Vec<Bytes>,
}

impl Response {
    /// Reads a response.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let Decoded { value, attachments } = decode_any(bytes)?;
        let request_id = match value.get("requestId") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(WireError::Malformed("response without requestId")),
        };
        let kind = value
            .get("type")
            .and_then(Value::as_u64)
            .and_then(RequestType::from_number);
        Ok(Self {
            request_id,
            kind,
            body: value,
            attachments,
        })
    }

    /// The sockets of a `REMOTE_FETCH` answer (`None` without a `sockets` array).
    pub fn fetched_sockets(&self) -> Option<Vec<SocketInfo>> {
        let list = self.body.get("sockets")?.as_array()?;
        Some(list.iter().filter_map(socket_from_json).collect())
    }

    /// The rooms of an `ALL_ROOMS` answer.
    pub fn rooms(&self) -> Option<Vec<Room>> {
        self.body.get("rooms")?.as_array()?;
        Some(rooms_of(self.body.get("rooms")))
    }

    /// The answer of a `SERVER_SIDE_EMIT` (`null` when the handler answered `undefined`).
    pub fn server_side_data(&self) -> Value {
        self.body.get("data").cloned().unwrap_or(Value::Null)
    }

    /// The count of a `BROADCAST_CLIENT_COUNT`.
    pub fn client_count(&self) -> Option<usize> {
        let n = self.body.get("clientCount")?.as_f64()?;
        (n.is_finite() && n >= 0.0).then_some(n as usize)
    }

    /// The client's answer of a `BROADCAST_ACK` and its binary values; `None` when the
    /// client answered with no argument.
    pub fn ack(&self) -> Option<(Value, Vec<Bytes>)> {
        let mut v = self.body.get("packet")?.clone();
        let mut own = Vec::new();
        renumber(&mut v, &self.attachments, &mut own);
        Some((v, own))
    }
}

/// `{requestId, sockets: [...]}`, the answer to `REMOTE_FETCH`.
pub fn fetch_response(request_id: &str, sockets: &[SocketInfo]) -> Vec<u8> {
    to_json(&json!({
        "requestId": request_id,
        "sockets": sockets.iter().map(socket_json).collect::<Vec<_>>(),
    }))
}

/// `{requestId, sockets: [id, ...]}`, the answer to the legacy `SOCKETS`.
pub fn sockets_response(request_id: &str, ids: &[Sid]) -> Vec<u8> {
    to_json(&json!({
        "requestId": request_id,
        "sockets": ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    }))
}

/// `{requestId, rooms}`, the answer to `ALL_ROOMS`.
pub fn all_rooms_response(request_id: &str, rooms: &[Room]) -> Vec<u8> {
    to_json(&json!({"requestId": request_id, "rooms": rooms_json(rooms)}))
}

/// `{requestId}`, the answer to a legacy single-socket join, leave or disconnect.
pub fn done_response(request_id: &str) -> Vec<u8> {
    to_json(&json!({ "requestId": request_id }))
}

/// `{type: 6, requestId, data}`, a server-side handler's answer (`data` left out for none).
pub fn server_side_emit_response(request_id: &str, data: Option<&Value>) -> Vec<u8> {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        Value::from(RequestType::ServerSideEmit as u8),
    );
    m.insert("requestId".into(), Value::String(request_id.to_owned()));
    if let Some(d) = data {
        m.insert("data".into(), d.clone());
    }
    to_json(&Value::Object(m))
}

/// `{type: 8, requestId, clientCount}`.
pub fn client_count_response(request_id: &str, n: usize) -> Vec<u8> {
    to_json(&json!({
        "type": RequestType::BroadcastClientCount as u8,
        "requestId": request_id,
        "clientCount": n,
    }))
}

/// `{type: 9, requestId, packet}` (msgpack): one client's first ack argument, `packet`
/// left out when it answered with none.
pub fn ack_response(request_id: &str, arg: Option<&Value>, attachments: &[Bytes]) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(RequestType::BroadcastAck as u8));
    m.insert("requestId".into(), Value::String(request_id.to_owned()));
    if let Some(a) = arg {
        m.insert("packet".into(), a.clone());
    }
    msgpack::to_vec(&Value::Object(m), attachments)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn channel_names() {
        let c = Channels::new("socket.io", "/chat", "abc123");
        assert_eq!(c.broadcast, "socket.io#/chat#");
        assert_eq!(c.request, "socket.io-request#/chat#");
        assert_eq!(c.response, "socket.io-response#/chat#");
        assert_eq!(c.specific_response, "socket.io-response#/chat#abc123#");
        assert_eq!(c.broadcast_pattern(), "socket.io#/chat#*");
        let one = BroadcastOptions {
            rooms: vec![Room::from("r1")],
            ..Default::default()
        };
        assert_eq!(c.for_broadcast(&one), "socket.io#/chat#r1#");
        let two = BroadcastOptions {
            rooms: vec![Room::from("a"), Room::from("b")],
            ..Default::default()
        };
        assert_eq!(c.for_broadcast(&two), "socket.io#/chat#");
        assert_eq!(
            c.for_broadcast(&BroadcastOptions::default()),
            "socket.io#/chat#"
        );
        assert_eq!(c.response_to("zz", true), "socket.io-response#/chat#zz#");
        assert_eq!(c.response_to("zz", false), "socket.io-response#/chat#");
        let odd = Channels::new("k*", "/a?[b]", "u");
        assert_eq!(odd.broadcast_pattern(), r"k\*#/a\?\[b\]#*");
    }

    #[test]
    fn query_strings_as_node_parses_them() {
        assert_eq!(
            query_json("a=1&b=x+y&a=2&c=%41%zz&d"),
            json!({"a": ["1", "2"], "b": "x y", "c": "A%zz", "d": ""})
        );
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }

    #[test]
    fn handshake_round_trip() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", http::HeaderValue::from_static("x"));
        headers.append("set-cookie", http::HeaderValue::from_static("a=1"));
        headers.append("set-cookie", http::HeaderValue::from_static("b=2"));
        let h = Handshake::new(
            json!({"token": "t"}),
            headers,
            "/socket.io/?EIO=4&transport=websocket&x=1",
            Some("127.0.0.1:5000".parse().unwrap()),
            UNIX_EPOCH + Duration::from_millis(1_795_474_942_455),
        );
        let j = handshake_json(&h);
        assert_eq!(
            j["time"],
            "Mon Nov 23 2026 23:02:22 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(j["issued"], 1_795_474_942_455u64);
        assert_eq!(j["address"], "127.0.0.1");
        assert_eq!(
            j["query"],
            json!({"EIO": "4", "transport": "websocket", "x": "1"})
        );
        assert_eq!(j["headers"]["set-cookie"], json!(["a=1", "b=2"]));
        let back = handshake_from_json(&j);
        assert_eq!(back.auth(), h.auth());
        assert_eq!(back.url(), h.url());
        assert_eq!(back.issued(), h.issued());
        assert_eq!(back.headers(), h.headers());
        assert_eq!(back.address().unwrap().ip(), h.address().unwrap().ip());
        // Anything missing or of the wrong type is left empty, never a panic.
        let empty = handshake_from_json(&json!({"headers": 3, "issued": -1, "address": "nope"}));
        assert_eq!(empty.url(), "/", "no url: the root, as hyper has it");
        assert!(empty.address().is_none());
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(matches!(
            BroadcastMessage::decode(b"\xc1"),
            Err(WireError::Msgpack(_))
        ));
        assert!(matches!(
            BroadcastMessage::decode(&msgpack::to_vec(&json!({"a": 1}), &[])),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            BroadcastMessage::decode(&msgpack::to_vec(&json!(["u", {"type": 9}, {}]), &[])),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            Request::decode(b"{not json"),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            Request::decode(b"[1]"),
            Err(WireError::Msgpack(_))
        ));
        assert_eq!(Request::decode(br#"{"type":42}"#), Ok(None));
        assert_eq!(Request::decode(br#"{"uid":"x"}"#), Ok(None));
        assert!(matches!(
            Request::decode(br#"{"type":6,"data":{}}"#),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            Response::decode(br#"{"type":8}"#),
            Err(WireError::Malformed(_))
        ));
        // Packets of another shape: a bad namespace, a negative ack id.
        assert!(packet_from_json(&json!({"type": 2, "nsp": "nope"}), &[]).is_err());
        assert!(packet_from_json(&json!({"type": 2, "nsp": "/", "id": -1}), &[]).is_err());
        assert!(packet_from_json(&json!({"type": 2, "data": ["x"]}), &[]).is_ok());
    }
}
