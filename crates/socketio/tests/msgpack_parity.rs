//! Conformance of `iolite::parser::msgpack` with npm's socket.io-msgpack-parser 3.0.2
//! (notepack.io 2.2), on `testdata/msgpack-parity.json`, which Node itself wrote with
//! `testdata/msgpack-gen.mjs` (see there for the format and how to regenerate it):
//!
//! - every valid message decodes to what Node's Decoder makes of it (binary values as
//!   attachments, in wire order), and back through our encoder to the same packet;
//! - where Node's bytes are canonical, our encoder writes the very same bytes, both for the
//!   decoded packet and for one built from Node's view of it;
//! - every message Node's Decoder rejects, we reject, for the same reason when Node's
//!   reason is a packet check; and the messages Node accepts but we knowingly refuse are
//!   refused with the error the fixture names.

use bytes::Bytes;
use iolite::parser::msgpack::{self, MsgpackError};
use iolite::parser::{Namespace, Packet, PacketType, ParserLimits};
use serde_json::Value;

const FIXTURE: &str = include_str!("../testdata/msgpack-parity.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("the fixture is JSON")
}

/// Expands the fixture's runs, `\0<count>*<unit>\0`.
fn expand(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('\0').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else {
            let (count, unit) = part.split_once('*').expect("a run is <count>*<unit>");
            out.push_str(&unit.repeat(count.parse().expect("a run count")));
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    let s = expand(s);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Equality as JavaScript sees it: numbers compare as doubles (Node's view of a 64-bit
/// integer is the nearest double; ours keeps every bit).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A number of Node's view as JavaScript reads it: an integer past 2^53 is printed with its
/// shortest digits (2^63 as `9223372036854776000`) and stands for the nearest double.
fn js_numbers(v: Value) -> Value {
    const SAFE: u64 = 1 << 53;
    match v {
        Value::Number(n) if n.as_u64().is_some_and(|u| u > SAFE) => {
            n.as_f64().map_or(Value::Null, Value::from)
        }
        Value::Number(n) if n.as_i64().is_some_and(|i| i.unsigned_abs() > SAFE) => {
            n.as_f64().map_or(Value::Null, Value::from)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(js_numbers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, js_numbers(v))).collect())
        }
        other => other,
    }
}

/// Node's view of a decoded packet, as a packet.
fn packet_from_view(view: &Value) -> Packet {
    let kind = view["kind"]
        .as_u64()
        .and_then(|k| PacketType::from_digit(u8::try_from(k).ok()?))
        .expect("kind");
    let data = match view["data"].as_str() {
        Some(json) => js_numbers(serde_json::from_str(&expand(json)).expect("JSON data")),
        None => Value::Null,
    };
    Packet {
        kind,
        nsp: Namespace::new(str_field(view, "nsp")).expect("namespace"),
        id: view["id"].as_u64(),
        data,
        attachments: view["attachments"]
            .as_array()
            .expect("attachments")
            .iter()
            .map(|h| Bytes::from(unhex(h.as_str().expect("hex"))))
            .collect(),
    }
}

/// Differences between our packet and Node's view of it; empty when they agree.
fn compare(p: &Packet, view: &Value) -> Vec<String> {
    let want = packet_from_view(view);
    let mut diffs = Vec::new();
    if p.kind != want.kind {
        diffs.push(format!("kind {:?} != {:?}", p.kind, want.kind));
    }
    if p.nsp != want.nsp {
        diffs.push(format!("nsp {} != {}", p.nsp, want.nsp));
    }
    if p.id != want.id {
        diffs.push(format!("id {:?} != {:?}", p.id, want.id));
    }
    if !same(&p.data, &want.data) {
        diffs.push(format!("data {} != {}", p.data, want.data));
    }
    if p.attachments != want.attachments {
        diffs.push(format!(
            "attachments {:?} != {:?}",
            p.attachments.iter().map(|b| hex(b)).collect::<Vec<_>>(),
            want.attachments.iter().map(|b| hex(b)).collect::<Vec<_>>()
        ));
    }
    diffs
}

#[test]
fn valid_messages_decode_as_node_decodes_them() {
    let fixture = fixture();
    let cases = fixture["valid"].as_array().expect("valid cases");
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let limits = ParserLimits::default();
    let mut failures = Vec::new();
    for case in cases {
        let name = str_field(case, "name");
        let bytes = unhex(str_field(case, "hex"));
        let p = match msgpack::decode(&bytes, &limits) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: rejected with {e:?}"));
                continue;
            }
        };
        for d in compare(&p, &case["node"]) {
            failures.push(format!("{name}: {d}"));
        }
        // The zero-copy entry point agrees.
        let shared = Bytes::from(bytes);
        if msgpack::decode_bytes(&shared, &limits).as_ref() != Ok(&p) {
            failures.push(format!("{name}: decode_bytes differs"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decoded_packets_survive_our_encoder() {
    let fixture = fixture();
    let limits = ParserLimits::default();
    let mut failures = Vec::new();
    for case in fixture["valid"].as_array().expect("valid cases") {
        let name = str_field(case, "name");
        let p = msgpack::decode(&unhex(str_field(case, "hex")), &limits).expect("valid");
        match msgpack::decode(&msgpack::encode(&p), &limits) {
            Ok(back) if back == p => {}
            other => failures.push(format!("{name}: {p:?} came back as {other:?}")),
        }
        // Node's own view, encoded by us, reads back as that view too.
        let from_view = packet_from_view(&case["node"]);
        match msgpack::decode(&msgpack::encode(&from_view), &limits) {
            Ok(back) => {
                for d in compare(&back, &case["node"]) {
                    failures.push(format!("{name} (from Node's view): {d}"));
                }
            }
            Err(e) => failures.push(format!("{name} (from Node's view): {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn our_encoder_writes_nodes_bytes() {
    let fixture = fixture();
    let limits = ParserLimits::default();
    let mut failures = Vec::new();
    let mut exact = 0;
    for case in fixture["valid"].as_array().expect("valid cases") {
        if case["exact"] != Value::Bool(true) {
            continue;
        }
        exact += 1;
        let name = str_field(case, "name");
        let node = unhex(str_field(case, "hex"));
        let decoded = msgpack::decode(&node, &limits).expect("valid");
        if msgpack::encode(&decoded)[..] != node[..] {
            failures.push(format!(
                "{name}: decoded and re-encoded\n  ours {}\n  node {}",
                hex(&msgpack::encode(&decoded)),
                hex(&node)
            ));
        }
        let built = packet_from_view(&case["node"]);
        let mut buf = vec![0xff];
        msgpack::encode_into(&built, &mut buf);
        if buf[1..] != node[..] {
            failures.push(format!(
                "{name}: built from Node's view\n  ours {}\n  node {}",
                hex(&buf[1..]),
                hex(&node)
            ));
        }
    }
    assert!(exact >= 60, "only {exact} byte-exact cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The messages of socket.io-msgpack-parser's `checkPacket`.
const PACKET_CHECKS: [&str; 4] = [
    "invalid packet type",
    "invalid namespace",
    "invalid payload",
    "invalid packet id",
];

#[test]
fn invalid_messages_are_rejected_like_node_or_knowingly_stricter() {
    let fixture = fixture();
    let cases = fixture["invalid"].as_array().expect("invalid cases");
    assert!(cases.len() >= 90, "{} cases", cases.len());
    let limits = ParserLimits::default();
    let mut failures = Vec::new();
    let (mut node_rejects, mut stricter) = (0, 0);
    for case in cases {
        let name = str_field(case, "name");
        let bytes = unhex(str_field(case, "hex"));
        let err: MsgpackError = match msgpack::decode(&bytes, &limits) {
            Ok(p) => {
                failures.push(format!("{name}: accepted as {p:?}"));
                continue;
            }
            Err(e) => e,
        };
        let debug = format!("{err:?}");
        match (case["node"]["error"].as_str(), case["ours"].as_str()) {
            (None, Some(ours)) => {
                stricter += 1;
                if !debug.starts_with(ours) {
                    failures.push(format!("{name}: {debug}, expected {ours}..."));
                }
                // (Node finds the packet's fields through the `__proto__` it sets.)
                if !err.node_message().starts_with("(accepted") && ours != "InvalidPacketType" {
                    failures.push(format!("{name}: node_message {:?}", err.node_message()));
                }
            }
            (Some(node), None) => {
                node_rejects += 1;
                let agrees = if PACKET_CHECKS.contains(&node) {
                    err.node_message() == node
                } else if node.starts_with("Cannot read properties of") {
                    // `decoded.type` of null / undefined.
                    err == MsgpackError::NotAMap
                } else {
                    // notepack's own errors: out of range, could not parse, trailing bytes.
                    err.is_malformed_msgpack()
                };
                if !agrees {
                    failures.push(format!("{name}: {debug}, Node: {node}"));
                }
            }
            _ => failures.push(format!("{name}: malformed case {case}")),
        }
    }
    assert!(
        node_rejects >= 60 && stricter >= 20,
        "{node_rejects} / {stricter}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
