//! Arbitrary bytes as an Engine.IO long-polling POST body, under default and small limits,
//! and as a WebSocket text or binary frame.
//!
//! Checks: no panic; a body over a limit is refused before any packet, with 413; otherwise
//! packets come out until the first malformed one, whose error is a parse error (400,
//! "parse error") and ends the payload; each packet decodes the same from its slice of the
//! body as from a WebSocket text frame; whatever decoded, encoded again as a payload,
//! decodes to the same packets without error, and encoding is canonical (a second round
//! trip gives the same bytes); a packet from a WebSocket frame survives `to_ws_message`,
//! and `encode_ws_into` writes the same bytes.
#![no_main]

use bytes::Bytes;
use iolite_engine::{
    decode_payload, encode_payload, DecodeError, Packet, PayloadEncoder, PayloadLimits, SEPARATOR,
};
use iolite_fuzz::seed_and_payload;
use iolite_ws_proto::{Message, OpCode, Utf8Bytes};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer crosses every limit within a few dozen bytes.
fn limits(variant: u16) -> PayloadLimits {
    match variant & 3 {
        0 => PayloadLimits::default(),
        1 => PayloadLimits::default()
            .max_payload_bytes(64)
            .max_packets(4),
        2 => PayloadLimits::default()
            .max_payload_bytes(1 << 10)
            .max_packets(16),
        _ => PayloadLimits::default().max_payload_bytes(0).max_packets(1),
    }
}

fn unlimited() -> PayloadLimits {
    PayloadLimits::default()
        .max_payload_bytes(usize::MAX)
        .max_packets(usize::MAX)
}

/// Everything a decoder said about a body: its packets, then how it stopped.
#[derive(Debug, PartialEq)]
struct Outcome {
    packets: Vec<Packet>,
    error: Option<DecodeError>,
}

fn decode(body: &[u8], limits: &PayloadLimits) -> Outcome {
    let count = body.iter().filter(|&&b| b == SEPARATOR).count() + 1;
    let decoder = match decode_payload(Bytes::copy_from_slice(body), limits) {
        Ok(decoder) => decoder,
        Err(e) => {
            assert!(!e.is_parse_error(), "{e:?}");
            assert_eq!(e.status(), 413);
            assert_eq!(e.close_reason(), None);
            match e {
                DecodeError::PayloadTooLarge { len, max } => {
                    assert_eq!(len, body.len());
                    assert_eq!(max, limits.max_payload_bytes);
                    assert!(len > max);
                }
                DecodeError::TooManyPackets { max } => {
                    assert!(body.len() <= limits.max_payload_bytes);
                    assert_eq!(max, limits.max_packets);
                    assert!(count > max);
                }
                other => panic!("limit error expected, got {other:?}"),
            }
            return Outcome {
                packets: Vec::new(),
                error: Some(e),
            };
        }
    };
    assert!(body.len() <= limits.max_payload_bytes);
    assert!(count <= limits.max_packets);
    let mut out = Outcome {
        packets: Vec::new(),
        error: None,
    };
    let segments = body.split(|&b| b == SEPARATOR);
    let mut decoder = decoder.fuse();
    for segment in segments {
        let Some(result) = decoder.next() else {
            // Only an error ends the packets before the segments.
            assert!(out.error.is_some());
            break;
        };
        assert!(out.error.is_none(), "a packet after an error");
        // The same bytes as a WebSocket text frame decode the same.
        if let Ok(text) = Utf8Bytes::try_from(Bytes::copy_from_slice(segment)) {
            assert_eq!(Packet::decode_text(text), result);
        } else {
            assert!(
                matches!(
                    result,
                    Err(DecodeError::InvalidUtf8
                        | DecodeError::InvalidBase64
                        | DecodeError::UnknownType(_))
                ),
                "{result:?}"
            );
        }
        match result {
            Ok(packet) => out.packets.push(packet),
            Err(e) => {
                assert!(e.is_parse_error(), "{e:?}");
                assert_eq!(e.status(), 400);
                assert_eq!(e.close_reason(), Some("parse error"));
                out.error = Some(e);
            }
        }
    }
    assert_eq!(decoder.next(), None);
    assert!(out.packets.len() <= limits.max_packets);
    out
}

/// Encoding what decoded gives a body that decodes to the same packets, and encoding is
/// canonical.
fn check_payload_roundtrip(packets: &[Packet]) {
    if packets.is_empty() {
        return;
    }
    let body = encode_payload(packets);
    let again = decode(&body, &unlimited());
    assert_eq!(again.error, None, "{body:x?}");
    assert_eq!(again.packets, packets);
    assert_eq!(encode_payload(&again.packets), body);
    // A text packet's WebSocket encoding is the same bytes in a payload.
    let mut shared = PayloadEncoder::new();
    for p in packets {
        match p.to_ws_message() {
            Message::Text(t) => shared.push_ws_text(&t),
            Message::Binary(b) => shared.push_binary(&b),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(shared.finish(), body);
}

/// A packet from a WebSocket frame goes back out as a frame that decodes to itself.
fn check_ws_roundtrip(packet: &Packet) {
    let msg = packet.to_ws_message();
    let mut written = Vec::new();
    let opcode = packet.encode_ws_into(&mut written);
    let back = match msg {
        Message::Text(t) => {
            assert_eq!(opcode, OpCode::Text);
            assert_eq!(written, t.as_bytes());
            Packet::decode_text(t)
        }
        Message::Binary(b) => {
            assert_eq!(opcode, OpCode::Binary);
            assert_eq!(written, b);
            Ok(Packet::decode_binary(b))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(back.as_ref(), Ok(packet));
}

fuzz_target!(|input: &[u8]| {
    let (seed, body) = seed_and_payload(input);
    let limits = limits(seed);

    let whole = decode(body, &limits);
    check_payload_roundtrip(&whole.packets);
    // The limits only ever refuse a body whole: without them, the same packets come out.
    if whole.error.as_ref().is_none_or(DecodeError::is_parse_error) {
        assert_eq!(decode(body, &unlimited()), whole);
    }

    // The same bytes as one WebSocket frame.
    if let Ok(text) = Utf8Bytes::try_from(Bytes::copy_from_slice(body)) {
        match Packet::decode_text(text) {
            Ok(packet) => check_ws_roundtrip(&packet),
            Err(e) => assert!(e.is_parse_error(), "{e:?}"),
        }
    }
    let binary = Packet::decode_binary(Bytes::copy_from_slice(body));
    check_ws_roundtrip(&binary);
    check_payload_roundtrip(std::slice::from_ref(&binary));
});
