//! Arbitrary compressed payloads, split into arbitrary frames, through `Inflater` with a
//! small output limit; and arbitrary messages through `Deflater` and back.
//!
//! Checks: no panic; the output never grows past the limit (a deflate bomb stops at it);
//! how a message is split into frames does not change a successful result; whatever
//! `Deflater` produces, with or without context takeover, inflates back to the input.
#![no_main]

use iolite_fuzz::{chunks, seed_and_payload};
use iolite_ws_proto::{Deflater, Inflater, ProtocolError};
use libfuzzer_sys::fuzz_target;

/// How far past the limit the output may get before the inflater stops: it asks zlib for
/// at most one byte more than the room left, to tell "exactly at" from "over".
const SLACK: usize = 1;

fn inflate_frames<'a>(
    frames: impl Iterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Vec<u8>, ProtocolError> {
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    let mut frames = frames.peekable();
    let mut result = Ok(());
    if frames.peek().is_none() {
        result = inflater.inflate(&[], true, &mut out, limit);
    }
    while let Some(frame) = frames.next() {
        let last = frames.peek().is_none();
        result = inflater.inflate(frame, last, &mut out, limit);
        assert!(
            out.len() <= limit + SLACK,
            "{} bytes out, limit {limit}",
            out.len()
        );
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            assert!(out.len() <= limit);
            Ok(out)
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    ProtocolError::Inflate | ProtocolError::InflatedTooLarge { .. }
                ),
                "{e:?}"
            );
            Err(e)
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let (seed, data) = seed_and_payload(input);
    let limit = match (seed >> 3) & 3 {
        0 => 0,
        1 => 100,
        2 => 4 << 10,
        _ => 64 << 10,
    };

    // As compressed input: one frame, then the same message in arbitrary frames.
    let whole = inflate_frames(std::iter::once(data), limit);
    let split = inflate_frames(chunks(seed, data), limit);
    if let Ok(expected) = &whole {
        assert_eq!(split.as_ref(), Ok(expected));
    }

    // As plain input: two messages through one compressor, as a sender would send them.
    let window = 9 + ((seed >> 5) % 7) as u8;
    let level = u32::from((seed >> 8) % 10);
    let no_context_takeover = seed & 0x8000 != 0;
    let mut deflater = Deflater::new(window, level, no_context_takeover);
    let mut inflater = Inflater::new();
    let (first, second) = data.split_at(data.len() / 2);
    for message in [first, second] {
        let compressed = deflater.compress(message);
        let mut out = Vec::new();
        inflater
            .inflate(&compressed, true, &mut out, message.len())
            .unwrap_or_else(|e| panic!("own output does not inflate: {e:?}"));
        assert_eq!(&out[..], message);
    }
});
