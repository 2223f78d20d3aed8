//! The write side: a [`Packet`] as notepack would write the same packet object.

use bytes::Bytes;
use serde_json::{Map, Number, Value};

use crate::parser::binary::placeholder_index;
use crate::parser::packet::{Packet, PacketType};

/// 2^64 as a double: integral doubles below it (and ≥ 0) are written as `uint`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
/// −2^63 as a double: integral doubles from it up to −1 are written as `int`.
const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;

/// Encodes `packet` as one Engine.IO binary message, byte for byte what
/// socket.io-msgpack-parser's `Encoder` writes for the packet object Node's `socket.emit`
/// would build (see the [module docs](super) for the format).
///
/// Placeholders in [`Packet::data`] that name one of [`Packet::attachments`] are written as
/// `bin` values in their place; BINARY_EVENT / BINARY_ACK are written as type 2 / 3, the
/// msgpack parser having no binary types. Placeholders out of range are written as the
/// objects they are, and attachments no placeholder names are left out.
///
/// ```
/// use bytes::Bytes;
/// use iolite::parser::{binary::Attachments, msgpack, Namespace, Packet, ParserLimits};
/// use serde_json::json;
///
/// let mut att = Attachments::new();
/// let data = json!(["file", att.push(Bytes::from_static(&[1, 2, 3]))]);
/// let packet = Packet::event(Namespace::ROOT, data).with_attachments(att.into_vec());
/// let bytes = msgpack::encode(&packet);
/// assert_eq!(
///     &bytes[..],
///     b"\x83\xa4type\x02\xa4data\x92\xa4file\xc4\x03\x01\x02\x03\xa3nsp\xa1/"
/// );
/// assert_eq!(msgpack::decode(&bytes, &ParserLimits::default()), Ok(packet));
/// ```
///
/// # Panics
///
/// If a string or an attachment is 4 GiB or more, or an array or an object has 2^32
/// entries or more: msgpack cannot say such a length (notepack throws too).
pub fn encode(packet: &Packet) -> Bytes {
    let mut buf = Vec::with_capacity(32 + packet.attachments.iter().map(Bytes::len).sum::<usize>());
    encode_into(packet, &mut buf);
    Bytes::from(buf)
}

/// Like [`encode`], appending to `buf`.
///
/// # Panics
///
/// As [`encode`].
pub fn encode_into(packet: &Packet, buf: &mut Vec<u8>) {
    let has_data = !packet.data.is_null();
    let entries = 2 + usize::from(has_data) + usize::from(packet.id.is_some());
    write_map_len(buf, entries);
    write_str(buf, "type");
    write_uint(buf, u64::from(wire_type(packet.kind)));
    if has_data {
        write_str(buf, "data");
        write_value(buf, &packet.data, &packet.attachments);
    }
    if let Some(id) = packet.id {
        write_str(buf, "id");
        write_uint(buf, id);
    }
    write_str(buf, "nsp");
    write_str(buf, &packet.nsp);
}

/// The msgpack parser's type number: there are no binary types.
fn wire_type(kind: PacketType) -> u8 {
    match kind {
        PacketType::BinaryEvent => PacketType::Event as u8,
        PacketType::BinaryAck => PacketType::Ack as u8,
        other => other as u8,
    }
}

fn write_value(buf: &mut Vec<u8>, value: &Value, attachments: &[Bytes]) {
    match value {
        Value::Null => buf.push(0xc0),
        Value::Bool(b) => buf.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => write_number(buf, n),
        Value::String(s) => write_str(buf, s),
        Value::Array(items) => {
            write_array_len(buf, items.len());
            for item in items {
                write_value(buf, item, attachments);
            }
        }
        Value::Object(map) => {
            if !attachments.is_empty() {
                if let Some(bin) = placeholder_index(value).and_then(|n| attachments.get(n)) {
                    write_bin(buf, bin);
                    return;
                }
            }
            write_map(buf, map, attachments);
        }
    }
}

fn write_map(buf: &mut Vec<u8>, map: &Map<String, Value>, attachments: &[Bytes]) {
    write_map_len(buf, map.len());
    for (k, v) in map {
        write_str(buf, k);
        write_value(buf, v, attachments);
    }
}

fn write_number(buf: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_uint(buf, u);
    } else if let Some(i) = n.as_i64() {
        write_int(buf, i);
    } else if let Some(f) = n.as_f64() {
        write_f64(buf, f);
    }
}

/// A double as notepack writes a JavaScript number: integral values as integers.
fn write_f64(buf: &mut Vec<u8>, f: f64) {
    if f.is_finite() && f.fract() == 0.0 {
        // `-0.0 >= 0.0`: notepack writes -0 as the fixint 0 too.
        if (0.0..TWO_POW_64).contains(&f) {
            // Exact: integral and in range.
            write_uint(buf, f as u64);
            return;
        }
        if (MINUS_TWO_POW_63..0.0).contains(&f) {
            write_int(buf, f as i64);
            return;
        }
        // Beyond 64 bits notepack writes the value modulo 2^64; a float keeps it.
    }
    buf.push(0xcb);
    buf.extend_from_slice(&f.to_be_bytes());
}

/// notepack's choice for a non-negative integer.
fn write_uint(buf: &mut Vec<u8>, u: u64) {
    if u < 0x80 {
        buf.push(u as u8);
    } else if let Ok(b) = u8::try_from(u) {
        buf.extend_from_slice(&[0xcc, b]);
    } else if let Ok(h) = u16::try_from(u) {
        buf.push(0xcd);
        buf.extend_from_slice(&h.to_be_bytes());
    } else if let Ok(w) = u32::try_from(u) {
        buf.push(0xce);
        buf.extend_from_slice(&w.to_be_bytes());
    } else {
        buf.push(0xcf);
        buf.extend_from_slice(&u.to_be_bytes());
    }
}

/// notepack's choice for an integer; negative ones get the signed formats.
fn write_int(buf: &mut Vec<u8>, i: i64) {
    if let Ok(u) = u64::try_from(i) {
        write_uint(buf, u);
    } else if i >= -32 {
        // Negative fixint: the two's complement byte, 0xe0-0xff.
        buf.push(i as u8);
    } else if let Ok(b) = i8::try_from(i) {
        buf.push(0xd0);
        buf.extend_from_slice(&b.to_be_bytes());
    } else if let Ok(h) = i16::try_from(i) {
        buf.push(0xd1);
        buf.extend_from_slice(&h.to_be_bytes());
    } else if let Ok(w) = i32::try_from(i) {
        buf.push(0xd2);
        buf.extend_from_slice(&w.to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&i.to_be_bytes());
    }
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 0x20 {
        buf.push(0xa0 | len as u8);
    } else {
        write_len(buf, len, [Some(0xd9), Some(0xda), Some(0xdb)], "string");
    }
    buf.extend_from_slice(s.as_bytes());
}

fn write_bin(buf: &mut Vec<u8>, bin: &[u8]) {
    write_len(
        buf,
        bin.len(),
        [Some(0xc4), Some(0xc5), Some(0xc6)],
        "binary value",
    );
    buf.extend_from_slice(bin);
}

fn write_array_len(buf: &mut Vec<u8>, len: usize) {
    if len < 0x10 {
        buf.push(0x90 | len as u8);
    } else {
        write_len(buf, len, [None, Some(0xdc), Some(0xdd)], "array");
    }
}

fn write_map_len(buf: &mut Vec<u8>, len: usize) {
    if len < 0x10 {
        buf.push(0x80 | len as u8);
    } else {
        write_len(buf, len, [None, Some(0xde), Some(0xdf)], "object");
    }
}

/// A length with the first of the 8/16/32-bit `markers` that holds it (arrays and maps
/// have no 8-bit form).
fn write_len(buf: &mut Vec<u8>, len: usize, markers: [Option<u8>; 3], what: &str) {
    let [m8, m16, m32] = markers;
    match (
        m8,
        u8::try_from(len),
        u16::try_from(len),
        u32::try_from(len),
    ) {
        (Some(m), Ok(b), _, _) => buf.extend_from_slice(&[m, b]),
        (_, _, Ok(h), _) => {
            buf.extend(m16);
            buf.extend_from_slice(&h.to_be_bytes());
        }
        (_, _, _, Ok(w)) => {
            buf.extend(m32);
            buf.extend_from_slice(&w.to_be_bytes());
        }
        _ => panic!("msgpack cannot encode a {what} of length {len} (2^32 or more)"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parser::binary::placeholder;
    use crate::parser::Namespace;

    fn value_bytes(v: &Value) -> Vec<u8> {
        let mut buf = Vec::new();
        write_value(&mut buf, v, &[]);
        buf
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn integers_take_notepacks_widths() {
        let cases: &[(Value, &str)] = &[
            (json!(0), "00"),
            (json!(127), "7f"),
            (json!(128), "cc80"),
            (json!(255), "ccff"),
            (json!(256), "cd0100"),
            (json!(65535), "cdffff"),
            (json!(65536), "ce00010000"),
            (json!(4_294_967_295_u64), "ceffffffff"),
            (json!(4_294_967_296_u64), "cf0000000100000000"),
            (json!(u64::MAX), "cfffffffffffffffff"),
            (json!(-1), "ff"),
            (json!(-32), "e0"),
            (json!(-33), "d0df"),
            (json!(-128), "d080"),
            (json!(-129), "d1ff7f"),
            (json!(-32768), "d18000"),
            (json!(-32769), "d2ffff7fff"),
            (json!(-2_147_483_648_i64), "d280000000"),
            (json!(-2_147_483_649_i64), "d3ffffffff7fffffff"),
            (json!(i64::MIN), "d38000000000000000"),
        ];
        for (v, want) in cases {
            assert_eq!(hex(&value_bytes(v)), *want, "{v}");
        }
    }

    #[test]
    fn doubles_are_integers_when_integral() {
        let cases: &[(f64, &str)] = &[
            (1.0, "01"),
            (-0.0, "00"),
            (-1.0, "ff"),
            (300.0, "cd012c"),
            (-40000.0, "d2ffff63c0"),
            (9_007_199_254_740_992.0, "cf0020000000000000"),
            (18_446_744_073_709_549_568.0, "cffffffffffffff800"),
            (-9_223_372_036_854_775_808.0, "d38000000000000000"),
            (0.5, "cb3fe0000000000000"),
            (-1.5, "cbbff8000000000000"),
            (5e-324, "cb0000000000000001"),
            // Out of 64-bit range: a float, where notepack writes the value mod 2^64.
            (TWO_POW_64, "cb43f0000000000000"),
            (1e20, "cb4415af1d78b58c40"),
            (-1e19, "cbc3e158e460913d00"),
        ];
        for (f, want) in cases {
            assert_eq!(hex(&value_bytes(&json!(f))), *want, "{f}");
        }
    }

    #[test]
    fn lengths_take_notepacks_widths() {
        let s = |n: usize| json!("a".repeat(n));
        assert_eq!(&hex(&value_bytes(&s(0))), "a0");
        assert_eq!(&hex(&value_bytes(&s(31)))[..2], "bf");
        assert_eq!(&hex(&value_bytes(&s(32)))[..4], "d920");
        assert_eq!(&hex(&value_bytes(&s(255)))[..4], "d9ff");
        assert_eq!(&hex(&value_bytes(&s(256)))[..6], "da0100");
        assert_eq!(&hex(&value_bytes(&s(65536)))[..10], "db00010000");
        let a = |n: usize| Value::Array(vec![Value::Null; n]);
        assert_eq!(&hex(&value_bytes(&a(0))), "90");
        assert_eq!(&hex(&value_bytes(&a(15)))[..2], "9f");
        assert_eq!(&hex(&value_bytes(&a(16)))[..6], "dc0010");
        assert_eq!(&hex(&value_bytes(&a(65535)))[..6], "dcffff");
        assert_eq!(&hex(&value_bytes(&a(65536)))[..10], "dd00010000");
        let m = |n: usize| Value::Object((0..n).map(|i| (format!("k{i}"), json!(i))).collect());
        assert_eq!(&hex(&value_bytes(&m(0))), "80");
        assert_eq!(&hex(&value_bytes(&m(15)))[..2], "8f");
        assert_eq!(&hex(&value_bytes(&m(16)))[..6], "de0010");
        assert_eq!(&hex(&value_bytes(&m(65536)))[..10], "df00010000");
        let b = |n: usize| {
            let mut buf = Vec::new();
            write_bin(&mut buf, &vec![7; n]);
            hex(&buf[..buf.len() - n])
        };
        assert_eq!(b(0), "c400");
        assert_eq!(b(255), "c4ff");
        assert_eq!(b(256), "c50100");
        assert_eq!(b(65535), "c5ffff");
        assert_eq!(b(65536), "c600010000");
        assert_eq!(
            hex(&value_bytes(&json!([null, true, false, {"a": []}]))),
            "94c0c3c281a16190"
        );
    }

    #[test]
    fn packet_keys_and_types() {
        let root = Namespace::ROOT;
        let admin = Namespace::new("/admin").unwrap();
        let cases = [
            (
                Packet::connect(root.clone(), Value::Null),
                "82a47479706500a36e7370a12f",
            ),
            (
                Packet::disconnect(admin.clone()),
                "82a47479706501a36e7370a62f61646d696e",
            ),
            (
                Packet::event(admin, json!(["a"])).with_id(12),
                "84a47479706502a46461746191a161a269640ca36e7370a62f61646d696e",
            ),
            (
                Packet::ack(root.clone(), 300, json!([])),
                "84a47479706503a46461746190a26964cd012ca36e7370a12f",
            ),
            (
                Packet::connect_error(root, json!("no")),
                "83a47479706504a464617461a26e6fa36e7370a12f",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(hex(&encode(&p)), want, "{p:?}");
        }
    }

    #[test]
    fn placeholders_become_bin_in_place() {
        let bufs = vec![Bytes::from_static(b"\x01\x02"), Bytes::from_static(b"")];
        let data = json!(["x", {"f": placeholder(1)}, [placeholder(0), placeholder(0)]]);
        let p = Packet::event(Namespace::ROOT, data.clone()).with_attachments(bufs);
        let mut want = "83a47479706502a46461746193a17881a166c400".to_owned();
        want += "92c4020102c4020102a36e7370a12f";
        assert_eq!(hex(&encode(&p)), want);
        // Out of range, or no attachments at all: the placeholder object as it is.
        let p = Packet::event(Namespace::ROOT, json!(["x", placeholder(2)]))
            .with_attachments(vec![Bytes::from_static(b"z")]);
        assert!(hex(&encode(&p)).contains("ac5f706c616365686f6c646572c3"));
        let p = Packet::event(Namespace::ROOT, json!(["x", placeholder(0)]));
        assert!(hex(&encode(&p)).contains("ac5f706c616365686f6c646572c3"));
        // encode_into appends.
        let mut buf = vec![0xee];
        encode_into(&p, &mut buf);
        assert_eq!(buf[0], 0xee);
        assert_eq!(&buf[1..], &encode(&p)[..]);
    }
}
