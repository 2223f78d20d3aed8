//! Arbitrary bytes, split into arbitrary reads, through server- and client-role decoders,
//! with and without permessage-deflate, under small limits.
//!
//! Checks: no panic; every message respects the limits and RFC 6455 (text is UTF-8,
//! control payloads fit in 125 bytes, close codes are legal on the wire); the outcome does
//! not depend on how the stream was split; an uncompressed message re-encoded by the
//! peer's encoder decodes to itself.
#![no_main]

use bytes::{Bytes, BytesMut};
use iolite_fuzz::{chunks, seed_and_payload};
use iolite_ws_proto::{
    Decoder, DeflateParams, Encoder, Limits, Message, ProtocolError, Role, MAX_REASON_LEN,
};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer crosses every limit within a few hundred bytes.
fn limits(variant: u16) -> Limits {
    match variant & 3 {
        0 => Limits::default(),
        1 => Limits::default()
            .max_frame_payload(64)
            .max_message_size(200)
            .max_inflated_size(300)
            .max_fragments(4),
        2 => Limits::default()
            .max_frame_payload(1 << 10)
            .max_message_size(1 << 10)
            .max_inflated_size(100)
            .max_fragments(16),
        _ => Limits::default()
            .max_frame_payload(0)
            .max_message_size(0)
            .max_inflated_size(0)
            .max_fragments(1),
    }
}

fn deflate(no_context_takeover: bool) -> DeflateParams {
    DeflateParams {
        compress_window: Some(15),
        compress_no_context_takeover: no_context_takeover,
        decompress_no_context_takeover: no_context_takeover,
        compress_threshold: 0,
        level: 1,
    }
}

/// Everything a decoder said about a stream: its messages, then how it stopped.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<ProtocolError>,
    pong: Option<Bytes>,
}

fn run<'a>(
    role: Role,
    limits: &Limits,
    deflate: Option<&DeflateParams>,
    reads: impl Iterator<Item = &'a [u8]>,
) -> Outcome {
    let mut decoder = Decoder::new(role, limits.clone(), deflate);
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        messages: Vec::new(),
        error: None,
        pong: None,
    };
    'reads: for read in reads {
        buf.extend_from_slice(read);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    check_message(&msg, limits, deflate.is_some());
                    out.messages.push(msg);
                }
                Ok(None) => break,
                Err(e) => {
                    // Every error must map to a close code we may send.
                    assert!(e.close_code().is_valid_on_wire(), "{e:?}");
                    out.error = Some(e);
                    break 'reads;
                }
            }
        }
    }
    out.pong = decoder.take_pending_pong();
    out
}

fn check_message(msg: &Message, limits: &Limits, deflate: bool) {
    let max_data = if deflate {
        limits.max_message_size.max(limits.max_inflated_size)
    } else {
        limits.max_message_size
    };
    match msg {
        Message::Text(t) => {
            assert!(
                std::str::from_utf8(t.as_bytes()).is_ok(),
                "invalid UTF-8 text"
            );
            assert!(t.len() <= max_data, "text of {} bytes", t.len());
        }
        Message::Binary(b) => assert!(b.len() <= max_data, "binary of {} bytes", b.len()),
        // RFC 6455 §5.5: control frames carry at most 125 bytes.
        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
        Message::Close(Some(c)) => {
            assert!(c.code.is_valid_on_wire(), "close code {}", c.code);
            assert!(c.reason.len() <= MAX_REASON_LEN);
            assert!(std::str::from_utf8(c.reason.as_bytes()).is_ok());
        }
        Message::Close(None) => {}
    }
}

/// The peer frames `msg` again (one frame, no compression); our decoder must read it back.
fn check_roundtrip(role: Role, msg: &Message) {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut encoder = Encoder::new(peer, None, 0x9e37_79b9_7f4a_7c15);
    let frame = encoder.encode_message(msg.clone());
    let mut decoder = Decoder::new(role, Limits::default(), None);
    let mut buf = BytesMut::from(&frame.to_bytes()[..]);
    assert_eq!(decoder.decode(&mut buf).as_ref(), Ok(&Some(msg.clone())));
    assert!(buf.is_empty());
}

fuzz_target!(|input: &[u8]| {
    let (seed, stream) = seed_and_payload(input);
    let limits = limits(seed >> 3);
    let nct = seed & 0x20 != 0;
    for role in [Role::Server, Role::Client] {
        for params in [None, Some(deflate(nct))] {
            let whole = run(role, &limits, params.as_ref(), std::iter::once(stream));
            let split = run(role, &limits, params.as_ref(), chunks(seed, stream));
            assert_eq!(whole, split, "{role:?} deflate={}", params.is_some());
            if params.is_none() {
                for msg in &whole.messages {
                    check_roundtrip(role, msg);
                }
            }
        }
    }
});
