//! msgpack as `notepack.io` 3.0 (the encoder of `@socket.io/redis-adapter` 8.x) writes and
//! reads it, to and from JSON values whose binary parts are attachments.
//!
//! Values are [`serde_json::Value`]s, as everywhere in iolite; a binary value is a
//! placeholder `{"_placeholder":true,"num":N}` standing for `attachments[N]`, the shape of
//! [`iolite::parser::Packet`] data. So a packet's data and its attachments go in and come out
//! as they are.
//!
//! # Encoding ([`encode`])
//!
//! Each value in the smallest of notepack's formats: `nil`, `true`/`false`; integers as
//! positive fixint / `uint 8..64` when ≥ 0 and negative fixint / `int 8..64` when < 0; other
//! numbers as `float 64` (notepack never writes `float 32`); strings as fixstr / `str 8..32`;
//! arrays and maps by length (fixarray / `array 16/32`, fixmap / `map 16/32`), map keys in
//! their order; a placeholder naming one of the attachments as `bin 8/16/32`. As in
//! JavaScript, where every number is a double, a float with an integral value (`1.0`, `-0.0`)
//! is written as the integer. One divergence: an integral double outside the 64-bit range
//! (`1e20`) is written as `float 64`; notepack writes it as a 64-bit integer of the value
//! modulo 2^64, which corrupts it.
//!
//! # Decoding ([`decode`])
//!
//! Exactly one value (trailing bytes, a truncated value and the unused marker `0xc1` are
//! errors, as in notepack), then mapped the way `JSON.stringify` would write what notepack
//! returns:
//!
//! - `bin` and ext type 0 of `ext 8/16/32` (notepack's `ArrayBuffer`) become attachments;
//! - `float 32` widens to the double; NaN and ±Infinity become `null`;
//! - `fixext 1` type 0 is `undefined`: `null` in an array, the key left out in a map;
//! - dates (the msgpack timestamp, ext type −1 as `fixext 4/8` or `ext 8`, and notepack's
//!   old `fixext 8` type 0) become their ISO string (`Date.prototype.toJSON`), `null` when
//!   out of the `Date` range;
//! - any other ext is `[type, <bin>]`, as notepack returns it;
//! - invalid UTF-8 in a string becomes U+FFFD;
//! - a map key that is a number, `nil`, a boolean or `undefined` becomes its JavaScript
//!   string (`1` → `"1"`); other keys (arrays, maps, binary) are refused; a `__proto__` key is
//!   dropped (JavaScript sets the prototype instead); a duplicate key keeps its first place
//!   and takes the last value;
//! - a map that is itself a placeholder (`_placeholder: true`) is refused: it could not be
//!   told from the binary values.
//!
//! Nothing is reserved ahead of the bytes (a `map 32` header claiming 2^32 − 1 entries in a
//! short message fails as truncated), and nesting is limited to [`MAX_DEPTH`].

use bytes::Bytes;
use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and maps [`decode`] accepts.
pub const MAX_DEPTH: usize = 128;

/// Why bytes are not a msgpack value this codec reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    /// The value ends before its announced length.
    #[error("truncated msgpack value")]
    Truncated,
    /// Bytes follow the value.
    #[error("{0} trailing bytes after the msgpack value")]
    TrailingBytes(usize),
    /// The marker `0xc1`, which msgpack never uses.
    #[error("invalid msgpack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("msgpack value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A map key that JavaScript would turn into a meaningless property name.
    #[error("unsupported msgpack map key ({0})")]
    UnsupportedMapKey(&'static str),
    /// A map with `_placeholder: true`, which would pass for a binary value.
    #[error("a literal binary placeholder object")]
    LiteralPlaceholder,
}

/// A decoded value and the binary values its placeholders stand for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The value, binary values replaced by placeholders numbered in wire order.
    pub value: Value,
    /// The binary values, `attachments[N]` for placeholder `N`.
    pub attachments: Vec<Bytes>,
}

/// Appends `value` as notepack writes it; placeholders that name one of `attachments` are
/// written as those bytes. See the [module docs](self).
pub fn encode(value: &Value, attachments: &[Bytes], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail; the results only carry the marker written.
    match value {
        Value::Null => {
            let _ = rmp::encode::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = rmp::encode::write_bool(out, *b);
        }
        Value::Number(n) => encode_number(n, out),
        Value::String(s) => {
            let _ = rmp::encode::write_str(out, s);
        }
        Value::Array(items) => {
            let _ = rmp::encode::write_array_len(out, len32(items.len()));
            for v in items {
                encode(v, attachments, out);
            }
        }
        Value::Object(map) => {
            if let Some(bin) = iolite::parser::binary::attachment(value, attachments) {
                let _ = rmp::encode::write_bin(out, bin);
                return;
            }
            let _ = rmp::encode::write_map_len(out, len32(map.len()));
            for (k, v) in map {
                let _ = rmp::encode::write_str(out, k);
                encode(v, attachments, out);
            }
        }
    }
}

/// [`encode`] into a new buffer.
pub fn to_vec(value: &Value, attachments: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, attachments, &mut out);
    out
}

fn len32(n: usize) -> u32 {
    // No JSON value held in memory has 2^32 items; notepack throws past that.
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64() {
        let _ = rmp::encode::write_uint(out, u);
    } else if let Some(i) = n.as_i64() {
        let _ = rmp::encode::write_sint(out, i);
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        // 2^63 and 2^64 are exact doubles: the casts below are in range.
        if f.is_finite()
            && f.fract() == 0.0
            && (-9.223_372_036_854_776e18..1.844_674_407_370_955_2e19).contains(&f)
        {
            if f < 0.0 {
                let _ = rmp::encode::write_sint(out, f as i64);
            } else {
                let _ = rmp::encode::write_uint(out, f as u64);
            }
        } else {
            let _ = rmp::encode::write_f64(out, f);
        }
    }
}

/// Reads one msgpack value as notepack does. See the [module docs](self).
pub fn decode(bytes: &[u8]) -> Result<Decoded, MsgpackError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        attachments: Vec::new(),
    };
    let value = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(MsgpackError::TrailingBytes(bytes.len() - r.pos));
    }
    Ok(Decoded {
        value: value.unwrap_or(Value::Null),
        attachments: r.attachments,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    attachments: Vec<Bytes>,
}

/// A map key as JavaScript turns it into a property name.
enum Key {
    Name(String),
    Refused(&'static str),
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MsgpackError> {
        let end = self.pos.checked_add(n).ok_or(MsgpackError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(MsgpackError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, MsgpackError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize, MsgpackError> {
        Ok(usize::from(self.u8()?))
    }

    fn len16(&mut self) -> Result<usize, MsgpackError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, MsgpackError> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| MsgpackError::Truncated)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bin(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let b = Bytes::copy_from_slice(self.take(n)?);
        self.attachments.push(b);
        Ok(iolite::parser::binary::placeholder(
            self.attachments.len() - 1,
        ))
    }

    fn str(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let b = self.take(n)?;
        Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
    }

    /// `[type, <bin>]`, what notepack returns for an ext it does not know.
    fn ext_pair(&mut self, ty: i8, n: usize) -> Result<Value, MsgpackError> {
        let bin = self.bin(n)?;
        Ok(Value::Array(vec![Value::from(ty), bin]))
    }

    /// One value; `None` for `undefined`.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, MsgpackError> {
        let m = self.u8()?;
        let v = match m {
            0x00..=0x7f => Value::from(m),
            0x80..=0x8f => self.map(usize::from(m & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(m & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(m & 0x1f))?,
            0xe0..=0xff => Value::from(i64::from(m as i8)),
            0xc0 => Value::Null,
            0xc1 => return Err(MsgpackError::InvalidMarker(m)),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.len8()?;
                self.bin(n)?
            }
            0xc5 => {
                let n = self.len16()?;
                self.bin(n)?
            }
            0xc6 => {
                let n = self.len32()?;
                self.bin(n)?
            }
            0xc7..=0xc9 => {
                let n = match m {
                    0xc7 => self.len8()?,
                    0xc8 => self.len16()?,
                    _ => self.len32()?,
                };
                let ty = self.u8()? as i8;
                match ty {
                    // notepack's ArrayBuffer.
                    0 => self.bin(n)?,
                    // Only `ext 8` is read as the 12-byte timestamp, as notepack does.
                    -1 if m == 0xc7 => {
                        let d = self.take(n)?;
                        if d.len() != 12 {
                            return Err(MsgpackError::Truncated);
                        }
                        let ns = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                        let hi = i32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                        let lo = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                        let s = f64::from(hi) * 4_294_967_296.0 + f64::from(lo);
                        iso_date(s * 1e3 + f64::from(ns) / 1e6)
                    }
                    _ => self.ext_pair(ty, n)?,
                }
            }
            0xca => Value::from(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::from(f64::from_be_bytes(self.be()?)),
            0xcc => Value::from(self.u8()?),
            0xcd => Value::from(u16::from_be_bytes(self.be()?)),
            0xce => Value::from(u32::from_be_bytes(self.be()?)),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::from(i8::from_be_bytes(self.be()?)),
            0xd1 => Value::from(i16::from_be_bytes(self.be()?)),
            0xd2 => Value::from(i32::from_be_bytes(self.be()?)),
            0xd3 => Value::from(i64::from_be_bytes(self.be()?)),
            0xd4 => {
                let ty = self.u8()? as i8;
                if ty == 0 {
                    self.take(1)?;
                    return Ok(None);
                }
                self.ext_pair(ty, 1)?
            }
            0xd5 => {
                let ty = self.u8()? as i8;
                self.ext_pair(ty, 2)?
            }
            0xd6 => {
                let ty = self.u8()? as i8;
                if ty == -1 {
                    let s = u32::from_be_bytes(self.be()?);
                    iso_date(f64::from(s) * 1e3)
                } else {
                    self.ext_pair(ty, 4)?
                }
            }
            0xd7 => {
                let ty = self.u8()? as i8;
                match ty {
                    0 => {
                        let hi = i32::from_be_bytes(self.be()?);
                        let lo = u32::from_be_bytes(self.be()?);
                        iso_date(f64::from(hi) * 4_294_967_296.0 + f64::from(lo))
                    }
                    -1 => {
                        let hi = u32::from_be_bytes(self.be()?);
                        let lo = u32::from_be_bytes(self.be()?);
                        let s = f64::from(hi & 0x3) * 4_294_967_296.0 + f64::from(lo);
                        iso_date(s * 1e3 + f64::from(hi >> 2) / 1e6)
                    }
                    _ => self.ext_pair(ty, 8)?,
                }
            }
            0xd8 => {
                let ty = self.u8()? as i8;
                self.ext_pair(ty, 16)?
            }
            0xd9 => {
                let n = self.len8()?;
                self.str(n)?
            }
            0xda => {
                let n = self.len16()?;
                self.str(n)?
            }
            0xdb => {
                let n = self.len32()?;
                self.str(n)?
            }
            0xdc => {
                let n = self.len16()?;
                self.array(n, depth)?
            }
            0xdd => {
                let n = self.len32()?;
                self.array(n, depth)?
            }
            0xde => {
                let n = self.len16()?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.len32()?;
                self.map(n, depth)?
            }
        };
        Ok(Some(v))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if depth >= MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        // Each item takes at least one byte: a longer claim is a truncated message.
        if n > self.remaining() {
            return Err(MsgpackError::Truncated);
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if depth >= MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        if n > self.remaining() / 2 {
            return Err(MsgpackError::Truncated);
        }
        let mut map = Map::new();
        for _ in 0..n {
            let key = self.key(depth)?;
            let value = self.value(depth + 1)?;
            let name = match key {
                Key::Name(name) => name,
                Key::Refused(what) => return Err(MsgpackError::UnsupportedMapKey(what)),
            };
            if name == "__proto__" {
                continue;
            }
            match value {
                Some(v) => {
                    map.insert(name, v);
                }
                // `obj[key] = undefined` keeps the key, but JSON.stringify leaves it out.
                None => {
                    map.remove(&name);
                }
            }
        }
        let value = Value::Object(map);
        if iolite::parser::binary::is_placeholder(&value) {
            return Err(MsgpackError::LiteralPlaceholder);
        }
        Ok(value)
    }

    fn key(&mut self, depth: usize) -> Result<Key, MsgpackError> {
        let start_attachments = self.attachments.len();
        let v = self.value(depth + 1)?;
        if self.attachments.len() != start_attachments {
            self.attachments.truncate(start_attachments);
            return Ok(Key::Refused("binary"));
        }
        Ok(match v {
            None => Key::Name("undefined".to_owned()),
            Some(Value::String(s)) => Key::Name(s),
            Some(Value::Null) => Key::Name("null".to_owned()),
            Some(Value::Bool(b)) => Key::Name(b.to_string()),
            Some(Value::Number(n)) => Key::Name(js_number_string(&n)),
            Some(Value::Array(_)) => Key::Refused("array"),
            Some(Value::Object(_)) => Key::Refused("map"),
        })
    }
}

/// `String(n)` in JavaScript, which for finite numbers is what `JSON.stringify` writes.
fn js_number_string(n: &Number) -> String {
    let mut buf = Vec::new();
    if iolite::parser::write_json(&mut buf, n).is_err() {
        return n.to_string();
    }
    String::from_utf8(buf).unwrap_or_else(|_| n.to_string())
}

/// `new Date(ms).toJSON()`: the ISO string, `null` for an invalid date.
pub(crate) fn iso_date(ms: f64) -> Value {
    // TimeClip: beyond 8.64e15 ms from the epoch the date is invalid.
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return Value::Null;
    }
    let ms = ms.trunc() as i64;
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, mmm) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Value::String(format!(
        "{year}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{mmm:03}Z"
    ))
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn dec(hex: &[u8]) -> Result<Decoded, MsgpackError> {
        decode(hex)
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        assert_eq!(dec(&[]), Err(MsgpackError::Truncated));
        assert_eq!(dec(&[0xc1]), Err(MsgpackError::InvalidMarker(0xc1)));
        assert_eq!(dec(&[0x01, 0x02]), Err(MsgpackError::TrailingBytes(1)));
        // A map 32 claiming 2^32 - 1 entries in a few bytes: no allocation, truncated.
        assert_eq!(
            dec(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            dec(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            dec(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(dec(&[0xa3, b'a']), Err(MsgpackError::Truncated));
        let deep = vec![0x91; MAX_DEPTH + 1];
        assert_eq!(dec(&deep), Err(MsgpackError::TooDeep));
        // A key that is a map or binary.
        assert_eq!(
            dec(&[0x81, 0x80, 0x01]),
            Err(MsgpackError::UnsupportedMapKey("map"))
        );
        assert_eq!(
            dec(&[0x81, 0xc4, 0x01, 0x61, 0x01]),
            Err(MsgpackError::UnsupportedMapKey("binary"))
        );
        // {_placeholder: true, num: 0}
        let lit = to_vec(&json!({"_placeholder": true, "num": 0}), &[]);
        assert_eq!(dec(&lit), Err(MsgpackError::LiteralPlaceholder));
        // Every prefix of a valid message is an error, never a panic.
        let msg = to_vec(
            &json!(["ev", {"a": [1, -300, 1.5, "x"]}, {"_placeholder": true, "num": 0}]),
            &[Bytes::from_static(b"\x01\x02")],
        );
        for n in 0..msg.len() {
            assert!(dec(&msg[..n]).is_err(), "prefix {n}");
        }
        assert!(dec(&msg).is_ok());
    }

    #[test]
    fn keys_as_javascript_names_them() {
        // {1: "a", nil: "b", true: "c", 1.5: "d", __proto__: 1}
        let bytes = [
            0x85, 0x01, 0xa1, b'a', 0xc0, 0xa1, b'b', 0xc3, 0xa1, b'c', 0xcb, 0x3f, 0xf8, 0, 0, 0,
            0, 0, 0, 0xa1, b'd', 0xa9, b'_', b'_', b'p', b'r', b'o', b't', b'o', b'_', b'_', 0x01,
        ];
        assert_eq!(
            dec(&bytes).unwrap().value,
            json!({"1": "a", "null": "b", "true": "c", "1.5": "d"})
        );
        // Duplicate keys: first place, last value; undefined removes.
        let bytes = [0x83, 0xa1, b'a', 0x01, 0xa1, b'b', 0x02, 0xa1, b'a', 0x03];
        assert_eq!(dec(&bytes).unwrap().value, json!({"a": 3, "b": 2}));
        let bytes = [0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0xd4, 0x00, 0x00];
        assert_eq!(dec(&bytes).unwrap().value, json!({}));
    }

    #[test]
    fn invalid_utf8_and_non_finite_floats() {
        assert_eq!(dec(&[0xa2, 0xff, b'a']).unwrap().value, json!("\u{fffd}a"));
        let nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(dec(&nan).unwrap().value, Value::Null);
        let f32_half = [0xca, 0x3f, 0x00, 0x00, 0x00];
        assert_eq!(dec(&f32_half).unwrap().value, json!(0.5));
    }

    #[test]
    fn ext_types() {
        // fixext 2 of type 5: [5, <bin>].
        let d = dec(&[0xd5, 0x05, 0xaa, 0xbb]).unwrap();
        assert_eq!(d.value, json!([5, {"_placeholder": true, "num": 0}]));
        assert_eq!(d.attachments, vec![Bytes::from_static(b"\xaa\xbb")]);
        // ext 8 type 0: an ArrayBuffer.
        let d = dec(&[0xc7, 0x02, 0x00, 0x01, 0x02]).unwrap();
        assert_eq!(d.value, json!({"_placeholder": true, "num": 0}));
        // notepack's old date: fixext 8 type 0, int64 milliseconds.
        let d = dec(&[0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
        assert_eq!(d.value, json!("1970-01-01T00:00:01.000Z"));
        // Out of the Date range.
        let d = dec(&[0xd7, 0x00, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
        assert_eq!(d.value, Value::Null);
    }

    #[test]
    fn dates_far_from_now() {
        assert_eq!(iso_date(0.0), json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(iso_date(-1.0), json!("1969-12-31T23:59:59.999Z"));
        assert_eq!(
            iso_date(951_782_400_000.0),
            json!("2000-02-29T00:00:00.000Z")
        );
        assert_eq!(iso_date(8.64e15), json!("+275760-09-13T00:00:00.000Z"));
        assert_eq!(iso_date(-8.64e15), json!("-271821-04-20T00:00:00.000Z"));
        assert_eq!(
            iso_date(-62_198_755_200_000.0),
            json!("-000001-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn integral_floats_are_integers() {
        assert_eq!(to_vec(&json!(1.0), &[]), vec![0x01]);
        assert_eq!(to_vec(&json!(-0.0), &[]), vec![0x00]);
        assert_eq!(to_vec(&json!(-1.0), &[]), vec![0xff]);
        // Beyond 64 bits: float 64 (notepack would corrupt it).
        let mut want = vec![0xcb];
        want.extend_from_slice(&1e20f64.to_be_bytes());
        assert_eq!(to_vec(&json!(1e20), &[]), want);
        // A placeholder naming no attachment is a plain map.
        let v = json!({"_placeholder": true, "num": 3});
        assert_eq!(to_vec(&v, &[])[0], 0x82);
    }
}
