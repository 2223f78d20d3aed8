//! `msgpack::decode` on hostile input: truncations, bit flips, random bytes and length
//! fields that lie. It must never panic, never overflow the stack and never reserve memory
//! for what a length field claims before the bytes are there; and whatever it accepts, our
//! encoder must write back as a message it accepts again (a fixed point after one trip).
//!
//! Deterministic: inputs come from the Node-generated fixture and a xorshift generator with
//! fixed seeds (no dependencies).

use bytes::Bytes;
use iolite::parser::msgpack::{self, MsgpackError, MAX_DEPTH};
use iolite::parser::{Packet, ParserLimits};
use serde_json::Value;

const FIXTURE: &str = include_str!("../testdata/msgpack-parity.json");

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

/// Every message of the fixture, valid ones first.
fn corpus() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let messages = |section: &str| -> Vec<Vec<u8>> {
        fixture[section]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| unhex(c["hex"].as_str().expect("hex")))
            .collect()
    };
    (messages("valid"), messages("invalid"))
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Decodes `msg`; if accepted, checks that our encoding of the packet is accepted too and
/// is a fixed point from there on.
fn decode_checked(msg: &[u8], limits: &ParserLimits) -> Result<Packet, MsgpackError> {
    let result = msgpack::decode(msg, limits);
    if let Ok(p) = &result {
        let once = msgpack::decode(&msgpack::encode(p), limits)
            .unwrap_or_else(|e| panic!("{p:?} from {msg:02x?} does not re-decode: {e:?}"));
        let twice = msgpack::decode(&msgpack::encode(&once), limits)
            .unwrap_or_else(|e| panic!("{once:?} does not re-decode: {e:?}"));
        assert_eq!(once, twice, "from {msg:02x?}");
        let shared = Bytes::copy_from_slice(msg);
        assert_eq!(
            msgpack::decode_bytes(&shared, limits).as_ref(),
            Ok(p),
            "decode_bytes on {msg:02x?}"
        );
    }
    result
}

#[test]
fn every_strict_prefix_of_a_valid_message_is_truncated() {
    let (valid, _) = corpus();
    let limits = ParserLimits::default();
    let mut checked = 0;
    for msg in &valid {
        assert!(msgpack::decode(msg, &limits).is_ok());
        // All prefixes of the small messages; a sample of the large ones.
        let step = (msg.len() / 2000).max(1);
        for end in (0..msg.len()).step_by(step) {
            assert_eq!(
                msgpack::decode(&msg[..end], &limits),
                Err(MsgpackError::Truncated),
                "{msg:02x?} cut at {end}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn bit_flips_and_byte_changes_never_panic() {
    let (valid, invalid) = corpus();
    let limits = ParserLimits::default();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut total) = (0, 0);
    for msg in valid.iter().chain(&invalid).filter(|m| m.len() <= 4096) {
        for _ in 0..200 {
            let mut m = msg.clone();
            if m.is_empty() {
                break;
            }
            for _ in 0..=rng.below(3) {
                let at = rng.below(m.len());
                match rng.below(4) {
                    0 => m[at] ^= 1 << rng.below(8),
                    1 => m[at] = rng.byte(),
                    // Interesting markers: lengths, ext, 0xc1, undefined.
                    2 => {
                        m[at] = [0xc1, 0xc4, 0xc7, 0xd4, 0xd7, 0xdb, 0xdd, 0xdf, 0xff, 0x00]
                            [rng.below(10)]
                    }
                    _ => m[at] = 0xff,
                }
            }
            total += 1;
            if decode_checked(&m, &limits).is_ok() {
                accepted += 1;
            }
        }
    }
    assert!(total > 30_000, "{total}");
    // Enough of the mutants still decode for the re-encoding check to mean something.
    assert!(accepted > 1_000, "{accepted} of {total}");
}

#[test]
fn random_bytes_never_panic() {
    let limits = ParserLimits::default();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for i in 0..50_000 {
        let len = rng.below(48);
        let mut m: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        // Half of them start as a packet map, so that decoding gets past the first byte.
        if i % 2 == 0 && !m.is_empty() {
            m[0] = 0x80 | (m[0] & 0x0f);
        }
        let _ = decode_checked(&m, &limits);
    }
}

#[test]
fn lying_lengths_fail_fast_without_reserving_memory() {
    let limits = ParserLimits::default();
    let heads: [&[u8]; 9] = [
        &[0xdf, 0xff, 0xff, 0xff, 0xff],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        &[0xdb, 0xff, 0xff, 0xff, 0xff],
        &[0xc6, 0xff, 0xff, 0xff, 0xff],
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x00],
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x05],
        &[0xde, 0xff, 0xff],
        &[0xdc, 0xff, 0xff],
        &[0xda, 0xff, 0xff],
    ];
    for head in heads {
        // A 10-byte message claiming up to 2^32 - 1 entries or bytes.
        let mut m = head.to_vec();
        m.resize(10, 0);
        assert_eq!(
            msgpack::decode(&m, &limits),
            Err(MsgpackError::Truncated),
            "{m:02x?}"
        );
        // The same inside a packet's data, after the packet map's header.
        let mut m = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91".to_vec();
        m.extend_from_slice(head);
        m.extend_from_slice(&[0; 4]);
        assert_eq!(
            msgpack::decode(&m, &limits),
            Err(MsgpackError::Truncated),
            "{m:02x?}"
        );
    }
    // Arrays nested to the depth limit, each claiming far more items than the rest of a
    // 1 MiB message: reserving per level what the length claims (or what is left) would
    // take gigabytes.
    let mut m = vec![0x81, 0xa4, b'd', b'a', b't', b'a'];
    for _ in 0..MAX_DEPTH - 1 {
        m.extend_from_slice(&[0xdd, 0x00, 0x10, 0x00, 0x00]);
    }
    m.resize(1 << 20, 0xc0);
    assert_eq!(msgpack::decode(&m, &limits), Err(MsgpackError::Truncated));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let limits = ParserLimits::default();
    for open in [0x91u8, 0x81, 0xdc] {
        let mut m = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data".to_vec();
        for _ in 0..100_000 {
            match open {
                0x81 => m.extend_from_slice(&[0x81, 0xa0]),
                0xdc => m.extend_from_slice(&[0xdc, 0x00, 0x01]),
                _ => m.push(open),
            }
        }
        m.push(0xc0);
        assert_eq!(
            msgpack::decode(&m, &limits),
            Err(MsgpackError::TooDeep { max: MAX_DEPTH })
        );
    }
}
