//! Conformance: the decoder and encoder give what Node's socket.io-parser 4.2.7 gives, for
//! the 451 connections in `testdata/node-parity.jsonl` (the protocol document's examples,
//! socket.io-parser's own test inputs, the JavaScript `Number()` quirks of the header, and
//! fuzz corpus inputs of every outcome). The expected results were produced by Node itself
//! with `testdata/node-parity.js`; cases where iolite knowingly differs (see the `parser`
//! module docs) are unit-tested instead.

use bytes::Bytes;
use iolite::parser::{binary, write_json, Decoder, Packet, PacketType};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../testdata/node-parity.jsonl");

fn hex(s: &str) -> Bytes {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in the fixture"))
        .collect();
    Bytes::from(bytes)
}

/// Node hands out each attachment where its placeholder was; written back as a placeholder
/// that is `{"_placeholder":true,"num":N}`, whatever else the received one held.
fn normalize(v: &Value) -> Value {
    if binary::is_placeholder(v) {
        return binary::placeholder(binary::placeholder_index(v).expect("checked by the decoder"));
    }
    match v {
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// A decoded packet as the fixture describes Node's.
fn describe(p: &Packet) -> Value {
    // Node's decoder turns BINARY_EVENT / BINARY_ACK back into EVENT / ACK.
    let kind = match p.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        k => k,
    };
    let mut normal = p.clone();
    if p.kind.is_binary() {
        normal.data = normalize(&p.data);
    }
    let data = if normal.data.is_null() {
        Value::Null
    } else {
        let mut buf = Vec::new();
        write_json(&mut buf, &normal.data).expect("a Value serializes");
        Value::String(String::from_utf8(buf).expect("JSON is UTF-8"))
    };
    json!({
        "type": kind as u8,
        "nsp": p.nsp.as_str(),
        "id": p.id.map(|id| id.to_string()),
        "data": data,
        "enc": normal.encode(),
    })
}

#[test]
fn decoder_and_encoder_agree_with_node_socket_io_parser() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in FIXTURE.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        let mut decoder = Decoder::default();
        let mut got = Vec::new();
        for msg in case["msgs"].as_array().unwrap() {
            let result = match msg.get("t").and_then(Value::as_str) {
                Some(text) => decoder.decode_text(text),
                None => decoder.decode_binary(hex(msg["b"].as_str().unwrap())),
            };
            match result {
                Ok(Some(p)) => got.push(describe(&p)),
                Ok(None) => {}
                Err(e) => {
                    got.push(json!({ "error": e.node_message() }));
                    break;
                }
            }
        }
        let want = case["node"].as_array().unwrap();
        let agree = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| match (g.get("error"), w.get("error")) {
                    // Node's messages may add detail ("unknown packet type 9").
                    (Some(g), Some(w)) => w.as_str().unwrap().starts_with(g.as_str().unwrap()),
                    (None, None) => g == w,
                    _ => false,
                });
        if !agree {
            failures.push(format!(
                "line {}: {}\n  node:   {}\n  iolite: {}",
                n + 1,
                case["msgs"],
                Value::Array(want.clone()),
                Value::Array(got)
            ));
        }
        cases += 1;
    }
    assert!(cases > 400, "fixture has {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
