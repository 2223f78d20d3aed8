//! Arbitrary sequences of Engine.IO message payloads, text and binary, through the
//! Socket.IO `Decoder`, under the default `ParserLimits` or small ones.
//!
//! Input: the first two bytes pick the limits; the rest is split on 0x1E (the Engine.IO
//! polling separator) into messages, a message starting with 0xFF being binary (the rest of
//! it) and any other text (invalid UTF-8 replaced, as a WebSocket layer would refuse it).
//!
//! Checks: no panic; after an error the decoder is idle; every packet respects the limits
//! (attachment count, ack id, namespace starts with '/' and has no comma, binary type iff
//! attachments); every packet re-encodes, decodes again to the same type, namespace, id and
//! attachments, and re-encodes to the same bytes (JSON numbers are compared as JavaScript
//! writes them, where `1.0` and `1` are one value); the EVENT fast path writes the same
//! bytes as the packet encoder.
#![no_main]

use bytes::Bytes;
use iolite::parser::{
    encode_event_into, Decoder, Framing, Packet, PacketType, ParserLimits,
};
use iolite_fuzz::seed_and_payload;
use libfuzzer_sys::fuzz_target;

fn limits(seed: u16) -> ParserLimits {
    match seed & 3 {
        0 | 1 => ParserLimits::default(),
        2 => ParserLimits::default().max_attachments(2).max_ack_id(1000),
        _ => ParserLimits::default().max_attachments(0).max_ack_id(0),
    }
}

fn check_packet(p: &Packet, limits: &ParserLimits) {
    assert!(p.attachments.len() <= limits.max_attachments);
    assert!(p.id.is_none_or(|id| id <= limits.max_ack_id));
    assert!(p.nsp.starts_with('/') && !p.nsp.contains(','), "{:?}", p.nsp);
    assert_eq!(p.kind.is_binary(), !p.attachments.is_empty(), "{p:?}");
    assert_eq!(p.wire_kind(), p.kind);
}

fn decode_all(decoder: &mut Decoder, text: &str, attachments: &[Bytes]) -> Packet {
    let mut got = decoder.decode_text(text).expect("re-encoded packet decodes");
    for a in attachments {
        assert!(got.is_none(), "packet before its attachments");
        got = decoder.decode_binary(a.clone()).expect("attachment accepted");
    }
    got.expect("packet complete after its attachments")
}

fn check_roundtrip(p: &Packet) {
    let text = p.encode();
    let message = p.encode_message();
    assert_eq!(message.strip_prefix('4'), Some(text.as_str()));

    // Default limits: the packet came through limits at most as loose, except for ack ids
    // raised past the default, which no limits set here does.
    let mut decoder = Decoder::default();
    let again = decode_all(&mut decoder, &text, &p.attachments);
    assert_eq!(again.kind, p.kind);
    assert_eq!(again.nsp, p.nsp);
    assert_eq!(again.id, p.id);
    assert_eq!(again.attachments, p.attachments);
    assert_eq!(again.encode(), text, "re-encoding changed the bytes");
    // From here on the JSON is in its normal form: the packet is a fixed point.
    assert_eq!(decode_all(&mut decoder, &text, &again.attachments), again);

    if p.kind == PacketType::Event {
        if let Some((name, args)) = p
            .data
            .as_array()
            .and_then(|a| a.split_first())
            .and_then(|(n, rest)| Some((n.as_str()?, rest)))
        {
            let mut fast = Vec::new();
            encode_event_into(&mut fast, Framing::EngineMessage, &p.nsp, p.id, name, args)
                .expect("a Value always serializes");
            assert_eq!(fast, message.as_bytes());
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let (seed, stream) = seed_and_payload(input);
    let limits = limits(seed);
    let mut decoder = Decoder::new(limits.clone());
    for msg in stream.split(|b| *b == 0x1E) {
        let result = match msg.split_first() {
            Some((0xFF, bin)) => decoder.decode_binary(Bytes::copy_from_slice(bin)),
            _ => decoder.decode_text(&String::from_utf8_lossy(msg)),
        };
        match result {
            Ok(Some(p)) => {
                assert_eq!(decoder.pending_attachments(), 0);
                check_packet(&p, &limits);
                check_roundtrip(&p);
            }
            Ok(None) => {
                let pending = decoder.pending_attachments();
                assert!(pending >= 1 && pending <= limits.max_attachments);
            }
            Err(e) => {
                assert_eq!(decoder.pending_attachments(), 0, "{e:?}");
                assert!(!e.node_message().is_empty());
            }
        }
    }
});
