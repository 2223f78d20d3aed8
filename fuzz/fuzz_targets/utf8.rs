//! Arbitrary bytes in arbitrary pieces through `Utf8Validator`.
//!
//! Checks: the verdict equals `std::str::from_utf8` of the whole; the validator fails on
//! the first piece after which no continuation could make the text valid (RFC 6455 §8.1
//! fail-fast), and not before.
#![no_main]

use iolite_fuzz::{chunks, seed_and_payload};
use iolite_ws_proto::utf8::Utf8Validator;
use libfuzzer_sys::fuzz_target;

/// Whether `prefix` is already invalid whatever follows it.
fn doomed(prefix: &[u8]) -> bool {
    matches!(std::str::from_utf8(prefix), Err(e) if e.error_len().is_some())
}

fuzz_target!(|input: &[u8]| {
    let (seed, text) = seed_and_payload(input);
    let mut validator = Utf8Validator::new();
    let mut fed = 0;
    let mut ok = true;
    for piece in chunks(seed, text) {
        fed += piece.len();
        let accepted = validator.feed(piece).is_ok();
        assert_eq!(
            accepted,
            !doomed(&text[..fed]),
            "verdict after {fed} of {} bytes",
            text.len()
        );
        if !accepted {
            ok = false;
            break;
        }
    }
    if ok {
        ok = validator.finish().is_ok();
    }
    assert_eq!(ok, std::str::from_utf8(text).is_ok());

    // After reset the validator is as new, whatever it held.
    validator.reset();
    assert_eq!(
        validator.feed(text).is_ok() && validator.finish().is_ok(),
        std::str::from_utf8(text).is_ok()
    );
});
