//! Byte-level checks against what the real Node encoders wrote (tests/redis/gen-fixtures.mjs):
//! notepack.io values, and every message @socket.io/redis-adapter 8.3.0 publishes, captured
//! from a socket.io 4.8.4 server.

#![allow(clippy::unwrap_used)] // test code: a failure is the test failing

use std::time::Duration;

use bytes::Bytes;
use iolite::adapter::{BroadcastFlags, BroadcastOptions};
use iolite::parser::{Namespace, Packet, PacketType};
use iolite::Room;
use iolite_redis::msgpack;
use iolite_redis::wire::{
    self, BroadcastMessage, Channels, Request, RequestKind, RequestType, Response, Target,
};
use serde_json::{json, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn values() -> Vec<Value> {
    serde_json::from_str(include_str!("fixtures/notepack-values.json")).unwrap()
}

fn wire_fixtures() -> Vec<Value> {
    serde_json::from_str(include_str!("fixtures/node-wire.json")).unwrap()
}

/// The bytes, expected JSON view and attachments of a value fixture.
fn expand(f: &Value) -> (Vec<u8>, Value, Vec<Bytes>) {
    if let Some(gen) = f.get("gen") {
        let n = gen["n"].as_u64().unwrap() as usize;
        let mut bytes = hex(f["head"].as_str().unwrap());
        return match gen["kind"].as_str().unwrap() {
            "str" => {
                let s = "a".repeat(n);
                bytes.extend_from_slice(s.as_bytes());
                (bytes, Value::String(s), Vec::new())
            }
            _ => {
                let b: Vec<u8> = (0..n).map(|i| ((i * 7 + 3) & 0xff) as u8).collect();
                bytes.extend_from_slice(&b);
                (
                    bytes,
                    json!({"_placeholder": true, "num": 0}),
                    vec![Bytes::from(b)],
                )
            }
        };
    }
    let atts = f["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Bytes::from(hex(h.as_str().unwrap())))
        .collect();
    (hex(f["hex"].as_str().unwrap()), f["json"].clone(), atts)
}

/// serde_json tells 1 (integer) from 1.0 (float); JavaScript does not.
fn same_number_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_number_values(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same_number_values(a, b))
        }
        _ => a == b,
    }
}

#[test]
fn notepack_values_decode_to_their_json_view() {
    let fixtures = values();
    assert!(fixtures.len() > 60);
    for f in &fixtures {
        let name = f["name"].as_str().unwrap();
        let (bytes, want, atts) = expand(f);
        let got = msgpack::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            same_number_values(&got.value, &want),
            "{name}: got {} want {}",
            got.value,
            want
        );
        assert_eq!(got.attachments, atts, "{name}");
    }
}

#[test]
fn notepack_values_encode_to_the_same_bytes() {
    let mut checked = 0;
    for f in &values() {
        if f["roundtrip"] != json!(true) {
            continue;
        }
        let name = f["name"].as_str().unwrap();
        let (bytes, value, atts) = expand(f);
        assert_eq!(msgpack::to_vec(&value, &atts), bytes, "{name}");
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
}

fn find<'a>(all: &'a [Value], name: &str) -> Vec<&'a Value> {
    let v: Vec<&Value> = all.iter().filter(|w| w["name"] == name).collect();
    assert!(!v.is_empty(), "no fixture {name}");
    v
}

fn bytes_of(w: &Value) -> Vec<u8> {
    match w["encoding"].as_str().unwrap() {
        "json" => w["text"].as_str().unwrap().as_bytes().to_vec(),
        _ => hex(w["hex"].as_str().unwrap()),
    }
}

fn rooms(list: &[&str]) -> Vec<Room> {
    list.iter().map(|r| Room::from(*r)).collect()
}

#[test]
fn node_broadcasts_read_and_written_byte_for_byte() {
    let all = wire_fixtures();
    let root = Channels::new("socket.io", "/", "x");

    let w = find(&all, "broadcast")[0];
    let bytes = bytes_of(w);
    let m = BroadcastMessage::decode(&bytes).unwrap();
    assert_eq!(m.uid, "nodeA1");
    assert_eq!(
        m.packet,
        Packet::event(Namespace::ROOT, json!(["hello", 1, "two", {"three": 3}]))
    );
    assert_eq!(m.opts, BroadcastOptions::default());
    assert_eq!(w["channel"], root.for_broadcast(&m.opts));
    assert_eq!(m.encode(), bytes);

    // Binary values become attachments; type 2 on the wire, BINARY_EVENT here.
    let w = find(&all, "broadcast to one room, except, binary")[0];
    let bytes = bytes_of(w);
    let m = BroadcastMessage::decode(&bytes).unwrap();
    assert_eq!(m.packet.kind, PacketType::BinaryEvent);
    assert_eq!(
        m.packet.data,
        json!(["bin", {"_placeholder": true, "num": 0}, {"nested": {"_placeholder": true, "num": 1}}])
    );
    assert_eq!(
        m.packet.attachments,
        vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])]
    );
    assert_eq!(m.opts.rooms, rooms(&["room1"]));
    assert_eq!(m.opts.except, rooms(&["room2"]));
    assert_eq!(w["channel"], "socket.io#/#room1#");
    assert_eq!(w["channel"], root.for_broadcast(&m.opts));
    assert_eq!(m.encode(), bytes);

    let w = find(&all, "broadcast to two rooms, volatile, compress false")[0];
    let bytes = bytes_of(w);
    let m = BroadcastMessage::decode(&bytes).unwrap();
    assert_eq!(m.opts.rooms, rooms(&["a", "b"]));
    assert_eq!(
        m.opts.flags,
        BroadcastFlags {
            volatile: true,
            compress: Some(false),
            ..Default::default()
        }
    );
    assert_eq!(w["channel"], root.for_broadcast(&m.opts));
    assert_eq!(m.encode(), bytes);

    let w = find(&all, "broadcast on /admin")[0];
    let bytes = bytes_of(w);
    let m = BroadcastMessage::decode(&bytes).unwrap();
    assert_eq!(m.uid, "nodeA2");
    assert_eq!(m.packet.nsp.as_str(), "/admin");
    assert_eq!(m.packet.data, json!(["adm", null]));
    assert_eq!(
        w["channel"],
        Channels::new("socket.io", "/admin", "x").for_broadcast(&m.opts)
    );
    assert_eq!(m.encode(), bytes);
}

#[test]
fn node_requests_read_and_written_byte_for_byte() {
    let all = wire_fixtures();
    let request_channel = Channels::new("socket.io", "/", "x").request;
    let check = |name: &str| -> Request {
        let w = find(&all, name)[0];
        assert_eq!(w["channel"], request_channel.as_str(), "{name}");
        let bytes = bytes_of(w);
        let r = Request::decode(&bytes).unwrap().unwrap();
        assert_eq!(r.uid, "nodeA1", "{name}");
        assert_eq!(r.encode(), bytes, "{name}");
        r
    };

    let r = check("broadcast with ack (BROADCAST request)");
    assert_eq!(r.request_type(), RequestType::Broadcast);
    assert_eq!(r.request_id.as_ref().unwrap().len(), 6);
    let RequestKind::Broadcast { packet, opts } = r.kind else {
        panic!("{r:?}")
    };
    assert_eq!(packet, Packet::event(Namespace::ROOT, json!(["q", 42])));
    assert_eq!(opts.flags.timeout, Some(Duration::from_millis(200)));

    let r = check("fetchSockets (REMOTE_FETCH request)");
    assert_eq!(
        r.kind,
        RequestKind::RemoteFetch {
            opts: BroadcastOptions {
                rooms: rooms(&["team"]),
                except: rooms(&["x"]),
                ..Default::default()
            }
        }
    );
    let r = check("socketsJoin (REMOTE_JOIN request)");
    assert_eq!(r.request_id, None);
    assert_eq!(
        r.kind,
        RequestKind::RemoteJoin {
            target: Target::Sockets(BroadcastOptions {
                rooms: rooms(&["r"]),
                ..Default::default()
            }),
            rooms: rooms(&["x", "y"]),
        }
    );
    let r = check("socketsLeave (REMOTE_LEAVE request)");
    assert_eq!(
        r.kind,
        RequestKind::RemoteLeave {
            target: Target::Sockets(BroadcastOptions::default()),
            rooms: rooms(&["x"]),
        }
    );
    let r = check("disconnectSockets (REMOTE_DISCONNECT request)");
    assert!(matches!(
        r.kind,
        RequestKind::RemoteDisconnect { close: true, .. }
    ));
    let r = check("serverSideEmit (SERVER_SIDE_EMIT request)");
    assert_eq!(r.request_id, None);
    assert_eq!(
        r.kind,
        RequestKind::ServerSideEmit {
            data: vec![json!("sse"), json!(1), json!({"a": 2})]
        }
    );
    let r = check("serverSideEmit with ack (SERVER_SIDE_EMIT request)");
    assert!(r.request_id.is_some());
    let r = check("allRooms (ALL_ROOMS request)");
    assert_eq!(r.kind, RequestKind::AllRooms);
}

#[test]
fn node_responses_read_and_written() {
    let all = wire_fixtures();
    let response_channel = Channels::new("socket.io", "/", "x").response;

    let w = find(&all, "REMOTE_FETCH response")[0];
    assert_eq!(w["channel"], response_channel.as_str());
    let r = Response::decode(&bytes_of(w)).unwrap();
    assert_eq!(r.request_id, "req001");
    let sockets = r.fetched_sockets().unwrap();
    assert_eq!(sockets.len(), 1);
    let s = &sockets[0];
    let node_socket = &w_json(w)["sockets"][0];
    assert_eq!(s.id.as_str(), node_socket["id"].as_str().unwrap());
    assert_eq!(s.rooms, rooms(&[s.id.as_str(), "team"]));
    assert_eq!(s.data, json!({"user": "bo", "n": 1}));
    assert_eq!(*s.handshake.auth(), json!({"name": "fixture"}));
    assert_eq!(
        s.handshake.url(),
        "/socket.io/?q=1&EIO=4&transport=websocket"
    );
    assert_eq!(s.handshake.query("q").as_deref(), Some("1"));
    assert_eq!(s.handshake.headers()["upgrade"], "websocket");
    assert_eq!(s.handshake.address().unwrap().ip().to_string(), "127.0.0.1");
    // Written back, the handshake has Node's fields and values.
    let back: Value = serde_json::from_slice(&wire::fetch_response("req001", &sockets)).unwrap();
    let (ours, theirs) = (&back["sockets"][0], node_socket);
    for key in ["id", "rooms", "data"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours["handshake"]), keys(&theirs["handshake"]));
    for key in [
        "headers", "time", "address", "xdomain", "issued", "url", "query", "auth",
    ] {
        assert_eq!(ours["handshake"][key], theirs["handshake"][key], "{key}");
    }

    let w = find(&all, "ALL_ROOMS response")[0];
    let r = Response::decode(&bytes_of(w)).unwrap();
    assert_eq!(r.request_id, "req002");
    assert_eq!(r.rooms().unwrap(), rooms(&[s.id.as_str(), "team"]));
    assert_eq!(
        wire::all_rooms_response("req002", &r.rooms().unwrap()),
        bytes_of(w)
    );

    let w = find(&all, "SERVER_SIDE_EMIT response")[0];
    let r = Response::decode(&bytes_of(w)).unwrap();
    assert_eq!(r.kind, Some(RequestType::ServerSideEmit));
    assert_eq!(r.server_side_data(), json!({"got": 7, "from": "node"}));
    assert_eq!(
        wire::server_side_emit_response("req003", Some(&r.server_side_data())),
        bytes_of(w)
    );

    let ws = find(
        &all,
        "BROADCAST responses (client count, then the client's ack)",
    );
    assert_eq!(ws.len(), 2);
    let count = Response::decode(&bytes_of(ws[0])).unwrap();
    assert_eq!(count.kind, Some(RequestType::BroadcastClientCount));
    assert_eq!(count.client_count(), Some(1));
    assert_eq!(wire::client_count_response("req004", 1), bytes_of(ws[0]));
    assert_eq!(ws[1]["encoding"], "msgpack");
    let ack = Response::decode(&bytes_of(ws[1])).unwrap();
    assert_eq!(ack.kind, Some(RequestType::BroadcastAck));
    let (v, atts) = ack.ack().unwrap();
    assert_eq!(
        v,
        json!({"ok": "hi", "bin": {"_placeholder": true, "num": 0}})
    );
    assert_eq!(atts, vec![Bytes::from_static(&[9, 8])]);
    assert_eq!(
        wire::ack_response("req004", Some(&v), &atts),
        bytes_of(ws[1])
    );
}

fn w_json(w: &Value) -> Value {
    serde_json::from_str(w["text"].as_str().unwrap()).unwrap()
}
