//! The read side: one msgpack message in, one [`Packet`] out.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::MsgpackError;
use crate::parser::binary::placeholder;
use crate::parser::error::DecodeError;
use crate::parser::json::write_json;
use crate::parser::limits::ParserLimits;
use crate::parser::namespace::Namespace;
use crate::parser::packet::{Packet, PacketType};
use crate::parser::payload;

/// The deepest nesting of arrays and maps a message may have, the packet map included, so
/// that [`Packet::data`] nests no deeper than the JSON parser allows (127 levels). An ext
/// value that decodes to `[type, <data>]` counts as an array.
pub const MAX_DEPTH: usize = 128;

/// Items reserved ahead for an array: a length field is only trusted as far as the bytes
/// that follow are there, and not even then for more than this (nested arrays each
/// claiming the rest of the message must not reserve it once per level).
const PREALLOC_ITEMS: usize = 64;

/// The largest time value of a JavaScript `Date`, in ms: 10^8 days either side of 1970.
const MAX_DATE_MS: i64 = 8_640_000_000_000_000;

type Result<T> = std::result::Result<T, MsgpackError>;

/// Decodes one msgpack message (one Engine.IO binary message) into a packet, validated as
/// socket.io-msgpack-parser validates it, and more (see the [module docs](super)).
///
/// Binary values are copied out into [`Packet::attachments`]; [`decode_bytes`] shares the
/// message's buffer instead.
///
/// ```
/// use iolite::parser::{msgpack, PacketType, ParserLimits};
/// use serde_json::json;
///
/// // {type: 2, data: ["hi", <Buffer 01>], id: 7, nsp: "/chat"}
/// let msg = b"\x84\xa4type\x02\xa4data\x92\xa2hi\xc4\x01\x01\xa2id\x07\xa3nsp\xa5/chat";
/// let p = msgpack::decode(msg, &ParserLimits::default()).unwrap();
/// assert_eq!((p.kind, &*p.nsp, p.id), (PacketType::BinaryEvent, "/chat", Some(7)));
/// assert_eq!(p.data, json!(["hi", {"_placeholder": true, "num": 0}]));
/// assert_eq!(p.attachments, [&[1u8][..]]);
/// ```
pub fn decode(message: &[u8], limits: &ParserLimits) -> std::result::Result<Packet, MsgpackError> {
    Reader::new(message, None, limits).packet(limits)
}

/// Like [`decode`], with [`Packet::attachments`] slices of `message` rather than copies.
pub fn decode_bytes(
    message: &Bytes,
    limits: &ParserLimits,
) -> std::result::Result<Packet, MsgpackError> {
    Reader::new(message, Some(message), limits).packet(limits)
}

/// A number as msgpack carries it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Uint(u64),
    Int(i64),
    Float(f64),
}

impl Num {
    fn into_value(self) -> Value {
        match self {
            Self::Uint(u) => Value::from(u),
            Self::Int(i) => Value::from(i),
            // NaN and the infinities become null, as JSON.stringify writes them.
            Self::Float(f) => Value::from(f),
        }
    }

    /// The property name JavaScript makes of the number (`String(n)`).
    fn js_string(self) -> String {
        let f = match self {
            // JavaScript holds the double nearest the integer (`as` rounds to nearest too).
            Self::Uint(u) => u as f64,
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        };
        if f.is_nan() {
            return "NaN".to_owned();
        }
        if f.is_infinite() {
            return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
        }
        let mut buf = Vec::new();
        // A finite f64 always serializes; its text is ASCII.
        match write_json(&mut buf, &f) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => String::new(),
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message as shared bytes, for zero-copy attachments.
    shared: Option<&'a Bytes>,
    max_attachments: usize,
    /// Binary values read so far, kept or not.
    bins: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], shared: Option<&'a Bytes>, limits: &ParserLimits) -> Self {
        Self {
            buf,
            pos: 0,
            shared,
            max_attachments: limits.max_attachments,
            bins: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(MsgpackError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(MsgpackError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(MsgpackError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array_of<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?
            .try_into()
            .map_err(|_| MsgpackError::Truncated)
    }

    fn u8(&mut self) -> Result<u8> {
        self.byte()
    }

    fn u16(&mut self) -> Result<u16> {
        self.array_of().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32> {
        self.array_of().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.array_of().map(u64::from_be_bytes)
    }

    fn i8(&mut self) -> Result<i8> {
        self.array_of().map(i8::from_be_bytes)
    }

    /// A 32-bit length; one that does not fit a `usize` cannot fit the message either.
    fn len32(&mut self) -> Result<usize> {
        self.u32().map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Fails unless the whole message has been read.
    fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(MsgpackError::TrailingBytes(n)),
        }
    }

    /// The depth inside a new array or map opened at `depth`.
    fn enter(depth: usize) -> Result<usize> {
        let inner = depth + 1;
        if inner > MAX_DEPTH {
            return Err(MsgpackError::TooDeep { max: MAX_DEPTH });
        }
        Ok(inner)
    }

    /// The number a numeric marker starts, if `marker` is one.
    fn number(&mut self, marker: u8) -> Result<Option<Num>> {
        Ok(Some(match marker {
            0x00..=0x7f => Num::Uint(u64::from(marker)),
            0xe0..=0xff => Num::Int(i64::from(i8::from_be_bytes([marker]))),
            0xca => Num::Float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Num::Float(f64::from_bits(self.u64()?)),
            0xcc => Num::Uint(u64::from(self.u8()?)),
            0xcd => Num::Uint(u64::from(self.u16()?)),
            0xce => Num::Uint(u64::from(self.u32()?)),
            0xcf => Num::Uint(self.u64()?),
            0xd0 => Num::Int(i64::from(self.i8()?)),
            0xd1 => Num::Int(i64::from(i16::from_be_bytes(self.array_of()?))),
            0xd2 => Num::Int(i64::from(i32::from_be_bytes(self.array_of()?))),
            0xd3 => Num::Int(i64::from_be_bytes(self.array_of()?)),
            _ => return Ok(None),
        }))
    }

    /// The length a string marker announces, if `marker` is one.
    fn str_len(&mut self, marker: u8) -> Result<Option<usize>> {
        Ok(Some(match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => usize::from(self.u8()?),
            0xda => usize::from(self.u16()?),
            0xdb => self.len32()?,
            _ => return Ok(None),
        }))
    }

    /// A string of `len` bytes; invalid UTF-8 becomes U+FFFD, as `Buffer.toString` does.
    fn str(&mut self, len: usize) -> Result<String> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    /// A binary value of `len` bytes: pushed to `atts`, its placeholder returned.
    fn bin(&mut self, len: usize, atts: &mut Vec<Bytes>) -> Result<Value> {
        let start = self.pos;
        let bytes = self.take(len)?;
        if self.bins >= self.max_attachments {
            return Err(MsgpackError::TooManyAttachments {
                max: self.max_attachments,
            });
        }
        self.bins += 1;
        let bin = match self.shared {
            Some(shared) => shared.slice(start..start + len),
            None => Bytes::copy_from_slice(bytes),
        };
        atts.push(bin);
        Ok(placeholder(atts.len() - 1))
    }

    /// An ext value of type `kind` and `len` bytes, as notepack decodes the types it does
    /// not know: `[type, <Buffer>]`.
    fn ext_pair(
        &mut self,
        kind: i8,
        len: usize,
        depth: usize,
        atts: &mut Vec<Bytes>,
    ) -> Result<Value> {
        Self::enter(depth)?;
        let data = self.bin(len, atts)?;
        Ok(Value::Array(vec![Value::from(kind), data]))
    }

    /// `ext 8/16/32` (the length is read): type 0 is an `ArrayBuffer`, binary like `bin`.
    fn ext(&mut self, len: usize, depth: usize, atts: &mut Vec<Bytes>) -> Result<Value> {
        match self.i8()? {
            0 => self.bin(len, atts),
            kind => self.ext_pair(kind, len, depth, atts),
        }
    }

    /// A value; `None` for `undefined`. `depth` is that of the array or map holding it.
    fn value(&mut self, depth: usize, atts: &mut Vec<Bytes>) -> Result<Option<Value>> {
        let marker = self.byte()?;
        if let Some(n) = self.number(marker)? {
            return Ok(Some(n.into_value()));
        }
        if let Some(len) = self.str_len(marker)? {
            return Ok(Some(Value::String(self.str(len)?)));
        }
        let value = match marker {
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth, atts)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth, atts)?,
            0xc0 => Value::Null,
            0xc1 => return Err(MsgpackError::InvalidMarker),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                self.bin(len, atts)?
            }
            0xc5 => {
                let len = usize::from(self.u16()?);
                self.bin(len, atts)?
            }
            0xc6 => {
                let len = self.len32()?;
                self.bin(len, atts)?
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                self.ext(len, depth, atts)?
            }
            0xc8 => {
                let len = usize::from(self.u16()?);
                self.ext(len, depth, atts)?
            }
            0xc9 => {
                let len = self.len32()?;
                self.ext(len, depth, atts)?
            }
            0xd4 => match self.i8()? {
                0 => {
                    // undefined: notepack skips the data byte.
                    self.take(1)?;
                    return Ok(None);
                }
                kind => self.ext_pair(kind, 1, depth, atts)?,
            },
            0xd5 => {
                let kind = self.i8()?;
                self.ext_pair(kind, 2, depth, atts)?
            }
            0xd6 => {
                let kind = self.i8()?;
                self.ext_pair(kind, 4, depth, atts)?
            }
            0xd7 => match self.i8()? {
                0 => date(i64::from_be_bytes(self.array_of()?)),
                kind => self.ext_pair(kind, 8, depth, atts)?,
            },
            0xd8 => {
                let kind = self.i8()?;
                self.ext_pair(kind, 16, depth, atts)?
            }
            0xdc => {
                let len = usize::from(self.u16()?);
                self.array(len, depth, atts)?
            }
            0xdd => {
                let len = self.len32()?;
                self.array(len, depth, atts)?
            }
            0xde => {
                let len = usize::from(self.u16()?);
                self.map(len, depth, atts)?
            }
            0xdf => {
                let len = self.len32()?;
                self.map(len, depth, atts)?
            }
            // Numbers and strings were handled above.
            _ => return Err(MsgpackError::InvalidMarker),
        };
        Ok(Some(value))
    }

    fn array(&mut self, len: usize, depth: usize, atts: &mut Vec<Bytes>) -> Result<Value> {
        let depth = Self::enter(depth)?;
        // Every item takes at least a byte.
        if len > self.remaining() {
            return Err(MsgpackError::Truncated);
        }
        let mut items = Vec::with_capacity(len.min(PREALLOC_ITEMS));
        for _ in 0..len {
            // undefined in an array: null, as JSON.stringify writes it.
            items.push(self.value(depth, atts)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize, atts: &mut Vec<Bytes>) -> Result<Value> {
        let depth = Self::enter(depth)?;
        // Every entry takes at least two bytes.
        if len > self.remaining() / 2 {
            return Err(MsgpackError::Truncated);
        }
        let mut map = Map::new();
        // Keys whose latest value is undefined: JSON.stringify leaves them out.
        let mut undefined: Option<HashSet<String>> = None;
        for _ in 0..len {
            let key = self.key()?;
            let mark = atts.len();
            let value = self.value(depth, atts)?;
            if key == "__proto__" {
                // notepack's `value[key] = ...` sets the prototype: no property, and any
                // binary inside is not reachable either.
                atts.truncate(mark);
                continue;
            }
            match value {
                Some(v) => {
                    if let Some(set) = &mut undefined {
                        set.remove(&key);
                    }
                    map.insert(key, v);
                }
                None => {
                    undefined
                        .get_or_insert_with(HashSet::new)
                        .insert(key.clone());
                    // Holds the key's place, as the JavaScript property does.
                    map.insert(key, Value::Null);
                }
            }
        }
        if let Some(set) = undefined.filter(|s| !s.is_empty()) {
            map.retain(|k, _| !set.contains(k));
        }
        if map.get("_placeholder") == Some(&Value::Bool(true)) {
            return Err(MsgpackError::LiteralPlaceholder);
        }
        Ok(Value::Object(map))
    }

    /// A map key, converted to a property name as JavaScript converts it.
    fn key(&mut self) -> Result<String> {
        let marker = self.byte()?;
        if let Some(len) = self.str_len(marker)? {
            return self.str(len);
        }
        if let Some(n) = self.number(marker)? {
            return Ok(n.js_string());
        }
        Ok(match marker {
            0xc0 => "null".to_owned(),
            0xc1 => return Err(MsgpackError::InvalidMarker),
            0xc2 => "false".to_owned(),
            0xc3 => "true".to_owned(),
            0xd4 if self.i8()? == 0 => {
                self.take(1)?;
                "undefined".to_owned()
            }
            _ => return Err(MsgpackError::UnsupportedMapKey),
        })
    }

    /// Whether the next value is binary or a `Date`: in Node, an object that is neither
    /// a plain object, an array nor a string, so never a valid payload (while here it
    /// becomes a placeholder object or a string).
    fn at_buffer_or_date(&self) -> bool {
        let at = |i: usize| self.buf.get(self.pos + i).copied();
        match at(0) {
            Some(0xc4..=0xc6) => true,
            // ext 8/16/32 of type 0 (an ArrayBuffer), fixext 8 of type 0 (a Date).
            Some(0xc7) => at(2) == Some(0),
            Some(0xc8) => at(3) == Some(0),
            Some(0xc9) => at(5) == Some(0),
            Some(0xd7) => at(1) == Some(0),
            _ => false,
        }
    }

    /// The whole message as a packet.
    fn packet(mut self, limits: &ParserLimits) -> Result<Packet> {
        let marker = self.byte()?;
        let len = match marker {
            0x80..=0x8f => usize::from(marker & 0x0f),
            0xde => usize::from(self.u16()?),
            0xdf => self.len32()?,
            _ => {
                // Still read it all: Node fails on broken msgpack before it looks at the
                // packet.
                self.pos -= 1;
                self.value(0, &mut Vec::new())?;
                self.finish()?;
                return Err(MsgpackError::NotAMap);
            }
        };
        let depth = Self::enter(0)?;
        if len > self.remaining() / 2 {
            return Err(MsgpackError::Truncated);
        }
        let mut kind = None;
        let mut nsp = None;
        let mut id = None;
        let mut data = None;
        let mut scratch = Vec::new();
        for _ in 0..len {
            let key = self.key()?;
            if key == "data" {
                let opaque = self.at_buffer_or_date();
                // Its own attachment list: a later `data` replaces an earlier one.
                let mut atts = Vec::new();
                data = self.value(depth, &mut atts)?.map(|value| Data {
                    value,
                    atts,
                    opaque,
                });
                continue;
            }
            let value = self.value(depth, &mut scratch)?;
            scratch.clear();
            match key.as_str() {
                "type" => kind = value,
                "nsp" => nsp = value,
                "id" => id = value,
                // `options` from socket.io-client, and anything else.
                _ => {}
            }
        }
        self.finish()?;
        check_packet(kind, nsp, data, id, limits)
    }
}

/// The packet's `data`, when present.
struct Data {
    value: Value,
    atts: Vec<Bytes>,
    /// Binary or a `Date` in Node: valid for no packet type.
    opaque: bool,
}

/// socket.io-msgpack-parser's `checkPacket`, in its order, then the stricter checks.
fn check_packet(
    kind: Option<Value>,
    nsp: Option<Value>,
    data: Option<Data>,
    id: Option<Value>,
    limits: &ParserLimits,
) -> Result<Packet> {
    let kind = kind
        .as_ref()
        .and_then(Value::as_f64)
        .filter(|t| t.fract() == 0.0 && (0.0..=4.0).contains(t))
        // An integer from 0 to 4: exact.
        .and_then(|t| PacketType::from_digit(t as u8))
        .ok_or(MsgpackError::InvalidPacketType)?;

    let nsp = match nsp {
        Some(Value::String(name)) => {
            Namespace::try_from(name).map_err(MsgpackError::UnsupportedNamespace)?
        }
        _ => return Err(MsgpackError::InvalidNamespace),
    };

    let (data, attachments) = match data {
        Some(Data { opaque: true, .. }) => {
            // Every type refuses null, as it refuses a Buffer or a Date.
            let err = payload::validate(kind, &Value::Null).err();
            return Err(MsgpackError::InvalidPayload(
                err.unwrap_or(DecodeError::InvalidJson),
            ));
        }
        Some(Data { value, atts, .. }) => {
            payload::validate(kind, &value).map_err(MsgpackError::InvalidPayload)?;
            (value, atts)
        }
        None => {
            // Absent data is fine for CONNECT and DISCONNECT only; for the others the
            // error is the one for a null payload.
            if !matches!(kind, PacketType::Connect | PacketType::Disconnect) {
                payload::validate(kind, &Value::Null).map_err(MsgpackError::InvalidPayload)?;
            }
            (Value::Null, Vec::new())
        }
    };

    let id = id.map(|id| ack_id(&id, limits)).transpose()?;

    let packet = Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    };
    // BINARY_EVENT / BINARY_ACK when binary was found, as the JSON decoder reports it.
    let kind = packet.wire_kind();
    Ok(Packet { kind, ..packet })
}

/// The ack id: `Number.isInteger`, and more.
fn ack_id(id: &Value, limits: &ParserLimits) -> Result<u64> {
    let Value::Number(n) = id else {
        // NaN and the infinities were made null: not integers either.
        return Err(MsgpackError::InvalidAckId);
    };
    let id = if let Some(u) = n.as_u64() {
        u
    } else if n.is_i64() {
        return Err(MsgpackError::NegativeAckId);
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if !f.is_finite() || f.fract() != 0.0 {
            return Err(MsgpackError::InvalidAckId);
        }
        if f < 0.0 {
            return Err(MsgpackError::NegativeAckId);
        }
        if f >= 18_446_744_073_709_551_616.0 {
            u64::MAX
        } else {
            // Integral and in range (-0.0 gives 0).
            f as u64
        }
    };
    if id > limits.max_ack_id {
        return Err(MsgpackError::AckIdTooLarge {
            max: limits.max_ack_id,
        });
    }
    Ok(id)
}

/// A `Date` as `JSON.stringify` writes it: `toISOString()`, or null for an invalid date.
fn date(ms: i64) -> Value {
    if !(-MAX_DATE_MS..=MAX_DATE_MS).contains(&ms) {
        return Value::Null;
    }
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year < 0 {
        format!("-{:06}", year.unsigned_abs())
    } else {
        format!("+{year:06}")
    };
    Value::String(format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    ))
}

/// The proleptic Gregorian date of a day number (0 = 1970-01-01); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parser::error::NamespaceError;
    use crate::parser::msgpack::encode;

    /// Hex with spaces allowed.
    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A msgpack string.
    fn s(text: &str) -> String {
        assert!(text.len() < 32);
        let mut h = format!("{:02x}", 0xa0 | text.len());
        for b in text.bytes() {
            h += &format!("{b:02x}");
        }
        h
    }

    /// A packet map of the given hex-encoded fields, in order.
    fn pkt(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut h = format!("{:02x}", 0x80 | fields.len());
        for (k, v) in fields {
            h += &s(k);
            h += v;
        }
        unhex(&h)
    }

    fn dec(bytes: &[u8]) -> std::result::Result<Packet, MsgpackError> {
        decode(bytes, &ParserLimits::default())
    }

    /// An EVENT on `/` with `data` (hex).
    fn event(data: &str) -> std::result::Result<Packet, MsgpackError> {
        dec(&pkt(&[("type", "02"), ("data", data), ("nsp", &s("/"))]))
    }

    #[test]
    fn every_packet_type() {
        let root = s("/");
        let p = dec(&pkt(&[("type", "00"), ("nsp", &root)])).unwrap();
        assert_eq!((p.kind, p.data), (PacketType::Connect, Value::Null));
        // socket.io-client's CONNECT without auth: data is undefined.
        let p = dec(&pkt(&[("type", "00"), ("data", "d40000"), ("nsp", &root)])).unwrap();
        assert_eq!((p.kind, p.data), (PacketType::Connect, Value::Null));
        let p = dec(&pkt(&[
            ("type", "00"),
            ("data", "81a16101"),
            ("nsp", &s("/a")),
        ]))
        .unwrap();
        assert_eq!((p.data, &*p.nsp), (json!({"a": 1}), "/a"));
        let p = dec(&pkt(&[("type", "01"), ("nsp", &root)])).unwrap();
        assert_eq!(p.kind, PacketType::Disconnect);
        let p = dec(&pkt(&[
            ("type", "04"),
            ("data", &s("nope")),
            ("nsp", &root),
        ]))
        .unwrap();
        assert_eq!((p.kind, p.data), (PacketType::ConnectError, json!("nope")));
        let p = dec(&pkt(&[("type", "04"), ("data", "80"), ("nsp", &root)])).unwrap();
        assert_eq!(p.data, json!({}));
        let p = dec(&pkt(&[
            ("type", "03"),
            ("data", "90"),
            ("id", "05"),
            ("nsp", &root),
        ]))
        .unwrap();
        assert_eq!(
            (p.kind, p.id, p.data),
            (PacketType::Ack, Some(5), json!([]))
        );
        // Key order does not matter; other keys are ignored (socket.io-client's options).
        let p = dec(&pkt(&[
            ("nsp", &root),
            ("id", "cd012c"),
            ("options", "81a8636f6d7072657373c3"),
            ("data", "91a178"),
            ("type", "02"),
        ]))
        .unwrap();
        assert_eq!(p, Packet::event(Namespace::ROOT, json!(["x"])).with_id(300));
    }

    #[test]
    fn binary_becomes_attachments() {
        let p = event("93 a178 c40101 82 a162 c5000102 a163 91 c6000000020304").unwrap();
        assert_eq!(p.kind, PacketType::BinaryEvent);
        assert_eq!(
            p.data,
            json!(["x", placeholder(0), {"b": placeholder(1), "c": [placeholder(2)]}])
        );
        assert_eq!(p.attachments, [&[1u8][..], &[2][..], &[3, 4][..]]);
        // Shared rather than copied with decode_bytes.
        let msg = Bytes::from(pkt(&[
            ("type", "03"),
            ("data", "91c40109"),
            ("id", "00"),
            ("nsp", &s("/")),
        ]));
        let p = decode_bytes(&msg, &ParserLimits::default()).unwrap();
        assert_eq!((p.kind, p.id), (PacketType::BinaryAck, Some(0)));
        assert_eq!(p.attachments, [&[9u8][..]]);
        let range = msg.as_ptr_range();
        assert!(range.contains(&p.attachments[0].as_ptr()));
        // CONNECT keeps its type.
        let p = dec(&pkt(&[
            ("type", "00"),
            ("data", "81a174c400"),
            ("nsp", &s("/")),
        ]))
        .unwrap();
        assert_eq!((p.kind, p.attachments.len()), (PacketType::Connect, 1));
        assert_eq!(p.data, json!({"t": placeholder(0)}));
    }

    #[test]
    fn ext_values_as_notepack_reads_them() {
        // ext 8 type 0 (an ArrayBuffer): binary.
        let p = event("92 a178 c7020001ff").unwrap();
        assert_eq!(
            (p.data, p.attachments),
            (
                json!(["x", placeholder(0)]),
                vec![Bytes::from_static(&[1, 0xff])]
            )
        );
        // Other ext types: [type, <data>].
        let p = event("93 a178 d6ff00000001 d50a0102").unwrap();
        assert_eq!(
            p.data,
            json!(["x", [-1, placeholder(0)], [10, placeholder(1)]])
        );
        assert_eq!(p.attachments, [&[0u8, 0, 0, 1][..], &[1, 2][..]]);
        let p = event("92 a178 c80003050a0b0c").unwrap();
        assert_eq!(p.data, json!(["x", [5, placeholder(0)]]));
        // fixext 1 type 0 is undefined: null in arrays, gone from maps.
        let p = event("93 a178 d40000 83 a161 d40000 a162 01 a163 d40000").unwrap();
        assert_eq!(p.data, json!(["x", null, {"b": 1}]));
        // ... unless set again; the key keeps its first place.
        let p = event("92 a178 84 a161 d40000 a162 01 a161 02 a162 d40000").unwrap();
        assert_eq!(p.data, json!(["x", {"a": 2}]));
        // fixext 8 type 0 is a Date: its ISO string.
        let p = event("94 a178 d7000000000000000000 d700fffffffffffffffe d7007fffffffffffffff")
            .unwrap();
        assert_eq!(
            p.data,
            json!([
                "x",
                "1970-01-01T00:00:00.000Z",
                "1969-12-31T23:59:59.998Z",
                null
            ])
        );
    }

    #[test]
    fn dates_match_to_iso_string() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-000001-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
            (MAX_DATE_MS, "+275760-09-13T00:00:00.000Z"),
            (-MAX_DATE_MS, "-271821-04-20T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(date(ms), json!(want), "{ms}");
        }
        assert_eq!(date(MAX_DATE_MS + 1), Value::Null);
        assert_eq!(date(i64::MIN), Value::Null);
    }

    #[test]
    fn numbers() {
        let p = event("9d a178 7f cc80 cdffff ceffffffff cfffffffffffffffff e0 d080 d18000 d280000000 d38000000000000000 ca3fc00000 cb3ff8000000000000").unwrap();
        assert_eq!(
            p.data,
            json!([
                "x",
                127,
                128,
                65535,
                4_294_967_295_u32,
                u64::MAX,
                -32,
                -128,
                -32768,
                -2_147_483_648_i64,
                i64::MIN,
                1.5,
                1.5
            ])
        );
        // NaN and the infinities: null.
        let p = event("94 a178 cb7ff8000000000000 cb7ff0000000000000 cafF800000").unwrap();
        assert_eq!(p.data, json!(["x", null, null, null]));
        // Non-minimal widths are fine.
        let p = event("93 d90178 d10001 dc0000").unwrap();
        assert_eq!(p.data, json!(["x", 1, []]));
    }

    #[test]
    fn strings_and_keys() {
        // Invalid UTF-8: one U+FFFD per bad sequence.
        let p = event("93 a178 a2e282 a3eda080").unwrap();
        assert_eq!(p.data, json!(["x", "\u{fffd}", "\u{fffd}\u{fffd}\u{fffd}"]));
        // Keys as JavaScript names properties.
        let p = event("92 a178 88 01 01 ff 02 cb3ff8000000000000 03 c0 04 c3 05 c2 06 d40000 07 cb7ff8000000000000 08").unwrap();
        assert_eq!(
            p.data,
            json!(["x", {"1": 1, "-1": 2, "1.5": 3, "null": 4, "true": 5, "false": 6, "undefined": 7, "NaN": 8}])
        );
        let p = event("92 a178 82 cf0020000000000001 01 cb7ff0000000000000 02").unwrap();
        assert_eq!(p.data, json!(["x", {"9007199254740992": 1, "Infinity": 2}]));
        for key in ["90", "80", "c400", "d50000", "d7000000000000000000"] {
            assert_eq!(
                event(&format!("92 a178 81 {key} 01")),
                Err(MsgpackError::UnsupportedMapKey),
                "{key}"
            );
        }
        // Duplicates: last value, first place. __proto__: dropped, with its binary.
        let p = event("92 a178 84 a161 01 a162 02 a161 03 a95f5f70726f746f5f5f 91c40101").unwrap();
        assert_eq!(p.data, json!(["x", {"a": 3, "b": 2}]));
        assert_eq!((p.kind, p.attachments.len()), (PacketType::Event, 0));
    }

    #[test]
    fn checks_in_nodes_order() {
        let root = s("/");
        let bad_type = [
            "",
            "05",
            "06",
            "07",
            "ff",
            "cb3ff8000000000000",
            &s("2"),
            "c3",
            "c0",
            "d40000",
        ];
        for t in bad_type {
            let fields: Vec<(&str, &str)> = if t.is_empty() {
                vec![("nsp", &root)]
            } else {
                vec![("type", t), ("nsp", &root)]
            };
            assert_eq!(
                dec(&pkt(&fields)),
                Err(MsgpackError::InvalidPacketType),
                "{t}"
            );
        }
        // 2.0 is an integer.
        let p = dec(&pkt(&[
            ("type", "cb4000000000000000"),
            ("data", "91a178"),
            ("nsp", &root),
        ]));
        assert_eq!(p.unwrap().kind, PacketType::Event);
        for top in ["c0", "90", "a0", "01", "c40100"] {
            assert_eq!(dec(&unhex(top)), Err(MsgpackError::NotAMap), "{top}");
        }
        // Type before namespace, namespace before payload, payload before id.
        assert_eq!(
            dec(&pkt(&[("type", "09"), ("nsp", "01")])),
            Err(MsgpackError::InvalidPacketType)
        );
        assert_eq!(
            dec(&pkt(&[("type", "00")])),
            Err(MsgpackError::InvalidNamespace)
        );
        for nsp in ["01", "c0", "d40000", "91a12f"] {
            assert_eq!(
                dec(&pkt(&[("type", "00"), ("data", "90"), ("nsp", nsp)])),
                Err(MsgpackError::InvalidNamespace)
            );
        }
        assert_eq!(
            dec(&pkt(&[
                ("type", "02"),
                ("data", "80"),
                ("id", "c0"),
                ("nsp", &root)
            ])),
            Err(MsgpackError::InvalidPayload(
                DecodeError::EventPayloadNotArray
            ))
        );
        assert_eq!(
            dec(&pkt(&[
                ("type", "02"),
                ("data", "91a178"),
                ("id", "c0"),
                ("nsp", &root)
            ])),
            Err(MsgpackError::InvalidAckId)
        );
    }

    #[test]
    fn payload_rules() {
        use DecodeError::*;
        let root = s("/");
        let cases: &[(&str, Option<&str>, MsgpackError)] = &[
            (
                "00",
                Some("90"),
                MsgpackError::InvalidPayload(InvalidConnectPayload),
            ),
            (
                "00",
                Some("c0"),
                MsgpackError::InvalidPayload(InvalidConnectPayload),
            ),
            (
                "00",
                Some("a0"),
                MsgpackError::InvalidPayload(InvalidConnectPayload),
            ),
            (
                "00",
                Some("c400"),
                MsgpackError::InvalidPayload(InvalidConnectPayload),
            ),
            (
                "00",
                Some("c7010000"),
                MsgpackError::InvalidPayload(InvalidConnectPayload),
            ),
            (
                "04",
                Some("c5000100"),
                MsgpackError::InvalidPayload(InvalidConnectErrorPayload),
            ),
            (
                "04",
                Some("d7000000000000000000"),
                MsgpackError::InvalidPayload(InvalidConnectErrorPayload),
            ),
            (
                "02",
                Some("c800010000"),
                MsgpackError::InvalidPayload(EventPayloadNotArray),
            ),
            (
                "03",
                Some("c9000000010000"),
                MsgpackError::InvalidPayload(AckPayloadNotArray),
            ),
            (
                "01",
                Some("c400"),
                MsgpackError::InvalidPayload(UnexpectedDisconnectPayload),
            ),
            (
                "01",
                Some("80"),
                MsgpackError::InvalidPayload(UnexpectedDisconnectPayload),
            ),
            (
                "01",
                Some("c0"),
                MsgpackError::InvalidPayload(UnexpectedDisconnectPayload),
            ),
            (
                "04",
                None,
                MsgpackError::InvalidPayload(InvalidConnectErrorPayload),
            ),
            (
                "04",
                Some("90"),
                MsgpackError::InvalidPayload(InvalidConnectErrorPayload),
            ),
            (
                "02",
                None,
                MsgpackError::InvalidPayload(EventPayloadNotArray),
            ),
            (
                "02",
                Some("d40000"),
                MsgpackError::InvalidPayload(EventPayloadNotArray),
            ),
            (
                "02",
                Some("a178"),
                MsgpackError::InvalidPayload(EventPayloadNotArray),
            ),
            ("03", None, MsgpackError::InvalidPayload(AckPayloadNotArray)),
            (
                "03",
                Some("80"),
                MsgpackError::InvalidPayload(AckPayloadNotArray),
            ),
            // Stricter than Node, as the JSON parser.
            (
                "02",
                Some("90"),
                MsgpackError::InvalidPayload(MissingEventName),
            ),
            (
                "02",
                Some("91c3"),
                MsgpackError::InvalidPayload(InvalidEventName),
            ),
            (
                "02",
                Some("91c40100"),
                MsgpackError::InvalidPayload(InvalidEventName),
            ),
            (
                "02",
                Some("91a7636f6e6e656374"),
                MsgpackError::InvalidPayload(ReservedEventName("connect")),
            ),
        ];
        for (t, data, want) in cases {
            let mut fields = vec![("type", *t), ("nsp", root.as_str())];
            if let Some(d) = data {
                fields.insert(1, ("data", d));
            }
            assert_eq!(dec(&pkt(&fields)).as_ref(), Err(want), "{t} {data:?}");
        }
        // A numeric event name passes, as in the JSON parser.
        assert!(event("91 05").is_ok());
    }

    #[test]
    fn namespaces_and_ack_ids() {
        let data = ("data", "91a178");
        for (nsp, err) in [
            ("a561646d696e", NamespaceError::MissingLeadingSlash),
            ("a0", NamespaceError::MissingLeadingSlash),
            ("a32f612c", NamespaceError::ContainsComma),
        ] {
            assert_eq!(
                dec(&pkt(&[("type", "02"), data, ("nsp", nsp)])),
                Err(MsgpackError::UnsupportedNamespace(err))
            );
        }
        let root = s("/");
        let id =
            |h: &str| dec(&pkt(&[("type", "02"), data, ("id", h), ("nsp", &root)])).map(|p| p.id);
        assert_eq!(id("00"), Ok(Some(0)));
        assert_eq!(id("d40000"), Ok(None));
        assert_eq!(id("cb4014000000000000"), Ok(Some(5)));
        assert_eq!(id("cb8000000000000000"), Ok(Some(0)));
        assert_eq!(id("cf001fffffffffffff"), Ok(Some(9_007_199_254_740_991)));
        let too_large = Err(MsgpackError::AckIdTooLarge {
            max: 9_007_199_254_740_991,
        });
        assert_eq!(id("cf0020000000000000"), too_large);
        assert_eq!(id("cb4340000000000000"), too_large);
        assert_eq!(id("cb7fefffffffffffff"), too_large);
        for bad in ["ff", "d3ffffffffffffffff", "cbbff0000000000000"] {
            assert_eq!(id(bad), Err(MsgpackError::NegativeAckId), "{bad}");
        }
        for bad in [
            "c0",
            "c3",
            "a131",
            "cb3ff8000000000000",
            "cb7ff8000000000000",
            "cb7ff0000000000000",
            "90",
        ] {
            assert_eq!(id(bad), Err(MsgpackError::InvalidAckId), "{bad}");
        }
        let limits = ParserLimits::default().max_ack_id(10);
        let msg = pkt(&[("type", "02"), data, ("id", "0b"), ("nsp", &root)]);
        assert_eq!(
            decode(&msg, &limits),
            Err(MsgpackError::AckIdTooLarge { max: 10 })
        );
    }

    #[test]
    fn malformed_msgpack() {
        assert_eq!(dec(&[]), Err(MsgpackError::Truncated));
        assert_eq!(dec(&[0xc1]), Err(MsgpackError::InvalidMarker));
        assert_eq!(event("92 a178 c1"), Err(MsgpackError::InvalidMarker));
        let mut ok = pkt(&[("type", "02"), ("data", "91a178"), ("nsp", &s("/"))]);
        ok.extend([0, 0]);
        assert_eq!(dec(&ok), Err(MsgpackError::TrailingBytes(2)));
        // Not a map, and broken: the msgpack error first.
        assert_eq!(dec(&unhex("92 01")), Err(MsgpackError::Truncated));
        assert_eq!(dec(&unhex("01 02")), Err(MsgpackError::TrailingBytes(1)));
        // Every strict prefix of a message is truncated.
        let full = pkt(&[
            ("type", "02"),
            (
                "data",
                "94a178cb3ff8000000000000c40201028100d7000000000000000000",
            ),
            ("id", "cd0101"),
            ("nsp", &s("/chat")),
        ]);
        assert!(dec(&full).is_ok());
        for end in 0..full.len() {
            assert_eq!(dec(&full[..end]), Err(MsgpackError::Truncated), "{end}");
        }
    }

    #[test]
    fn lengths_are_checked_before_anything_is_reserved() {
        for huge in [
            "dfffffffff",
            "df7fffffff 00",
            "dcffff",
            "ddffffffff c0c0c0c0",
            "dbffffffff 61",
            "c6ffffffff",
            "c9ffffffff00",
            "82 a474797065 02 a464617461 ddffffffff",
            "82 a474797065 02 a464617461 91 dfffffffff a161",
        ] {
            assert_eq!(dec(&unhex(huge)), Err(MsgpackError::Truncated), "{huge}");
        }
        // Nested arrays each claiming the rest of the message.
        let mut h = String::new();
        for _ in 0..100 {
            h += "dd00010000";
        }
        assert_eq!(event(&h), Err(MsgpackError::Truncated));
    }

    #[test]
    fn depth_is_bounded() {
        // data nested 127 deep (the packet map is the 128th level): fine, as in JSON.
        let nest = |n: usize| "91".repeat(n - 1) + "90";
        let p = event(&format!("92a178{}", nest(126))).unwrap();
        assert_eq!(
            p.data.pointer(&format!("/1{}", "/0".repeat(125))),
            Some(&json!([]))
        );
        assert_eq!(
            event(&format!("92a178{}", nest(127))),
            Err(MsgpackError::TooDeep { max: 128 })
        );
        // Maps and ext pairs count too.
        let maps = "81a100".repeat(125) + "80";
        assert!(event(&format!("92a178{maps}")).is_ok());
        let maps = "81a100".repeat(126) + "80";
        assert_eq!(
            event(&format!("92a178{maps}")),
            Err(MsgpackError::TooDeep { max: 128 })
        );
        let ext = "91".repeat(125) + "d50a0000";
        assert!(event(&format!("92a178{ext}")).is_ok());
        let ext = "91".repeat(126) + "d50a0000";
        assert_eq!(
            event(&format!("92a178{ext}")),
            Err(MsgpackError::TooDeep { max: 128 })
        );
        // Deep nesting in an ignored key, or in a message that is not a map.
        let deep = "91".repeat(200) + "90";
        assert_eq!(dec(&unhex(&deep)), Err(MsgpackError::TooDeep { max: 128 }));
        let msg = pkt(&[
            ("x", &deep),
            ("type", "02"),
            ("data", "91a178"),
            ("nsp", &s("/")),
        ]);
        assert_eq!(dec(&msg), Err(MsgpackError::TooDeep { max: 128 }));
    }

    #[test]
    fn attachment_limit_counts_every_binary_value() {
        let ten = "9b a178".to_owned() + &"c40100".repeat(10);
        assert_eq!(event(&ten).unwrap().attachments.len(), 10);
        let eleven = "9c a178".to_owned() + &"c40100".repeat(11);
        assert_eq!(
            event(&eleven),
            Err(MsgpackError::TooManyAttachments { max: 10 })
        );
        // ArrayBuffers and ext data count; so do values in ignored keys.
        let mixed = "9c a178".to_owned() + &"c40100".repeat(5) + &"c7010000".repeat(5) + "d5050000";
        assert_eq!(
            event(&mixed),
            Err(MsgpackError::TooManyAttachments { max: 10 })
        );
        let root = s("/");
        let limits = ParserLimits::default().max_attachments(1);
        let msg = pkt(&[
            ("x", "c400"),
            ("type", "02"),
            ("data", "92a178c400"),
            ("nsp", &root),
        ]);
        assert_eq!(
            decode(&msg, &limits),
            Err(MsgpackError::TooManyAttachments { max: 1 })
        );
        let msg = pkt(&[
            ("x", "c400"),
            ("type", "02"),
            ("data", "91a178"),
            ("nsp", &root),
        ]);
        let p = decode(&msg, &limits).unwrap();
        assert_eq!((p.kind, p.attachments.len()), (PacketType::Event, 0));
        let limits = ParserLimits::default().max_attachments(0);
        assert_eq!(
            decode(
                &pkt(&[("type", "02"), ("data", "92a178c400"), ("nsp", &root)]),
                &limits
            ),
            Err(MsgpackError::TooManyAttachments { max: 0 })
        );
    }

    #[test]
    fn literal_placeholders_are_refused() {
        // {"_placeholder": true, "num": 0}
        let ph = "82 ac5f706c616365686f6c646572 c3 a36e756d 00";
        assert_eq!(
            event(&format!("92a178{ph}")),
            Err(MsgpackError::LiteralPlaceholder)
        );
        // Not a placeholder unless exactly true.
        let p = event("92a178 81 ac5f706c616365686f6c646572 01").unwrap();
        assert_eq!(p.data, json!(["x", {"_placeholder": 1}]));
    }

    #[test]
    fn top_level_duplicates_and_proto() {
        let root = s("/");
        // The last data wins, with its own attachments.
        let msg = pkt(&[
            ("type", "02"),
            ("data", "92a161c40101"),
            ("data", "93a162c40102c40103"),
            ("nsp", &root),
        ]);
        let p = dec(&msg).unwrap();
        assert_eq!(p.data, json!(["b", placeholder(0), placeholder(1)]));
        assert_eq!(p.attachments, [&[2u8][..], &[3][..]]);
        // data set to undefined afterwards: absent.
        let msg = pkt(&[
            ("type", "00"),
            ("data", "80"),
            ("data", "d40000"),
            ("nsp", &root),
        ]);
        assert_eq!(dec(&msg).unwrap().data, Value::Null);
        // A __proto__ packet is not looked into.
        let inner = format!("83 a474797065 02 a464617461 91a178 a36e7370 {root}");
        let msg = unhex(&format!("81 a95f5f70726f746f5f5f {inner}"));
        assert_eq!(dec(&msg), Err(MsgpackError::InvalidPacketType));
    }

    #[test]
    fn round_trips() {
        let admin = Namespace::new("/admin").unwrap();
        let bufs = vec![Bytes::from_static(b"\x00\x01"), Bytes::from(vec![7; 300])];
        let packets = [
            Packet::connect(Namespace::ROOT, Value::Null),
            Packet::connect(admin.clone(), json!({"token": "abc", "n": [1, -1.5, null]})),
            Packet::disconnect(admin.clone()),
            Packet::connect_error(
                Namespace::ROOT,
                json!({"message": "no", "data": {"a": "é😀"}}),
            ),
            Packet::event(
                admin.clone(),
                json!(["e", 1, u64::MAX, i64::MIN, 0.1, {"k": [true, false]}]),
            )
            .with_id(42),
            Packet::event(
                Namespace::ROOT,
                json!(["bin", placeholder(0), {"x": [placeholder(1)]}]),
            )
            .with_attachments(bufs.clone()),
            Packet::ack(admin, 7, json!([placeholder(0), "ok"]))
                .with_attachments(bufs[..1].to_vec()),
            Packet::ack(Namespace::ROOT, 9_007_199_254_740_991, json!([])),
        ];
        for p in packets {
            let bytes = encode(&p);
            assert_eq!(dec(&bytes).as_ref(), Ok(&p), "{p:?}");
            assert_eq!(
                decode_bytes(&bytes, &ParserLimits::default()).as_ref(),
                Ok(&p)
            );
        }
        // Placeholders are numbered in wire order on the way back; unused attachments and
        // repeated placeholders cannot survive the trip (binary is written in place).
        let p = Packet::event(
            Namespace::ROOT,
            json!(["b", placeholder(1), placeholder(0), placeholder(1)]),
        )
        .with_attachments(bufs.clone());
        let back = dec(&encode(&p)).unwrap();
        assert_eq!(
            back.data,
            json!(["b", placeholder(0), placeholder(1), placeholder(2)])
        );
        assert_eq!(
            back.attachments,
            [bufs[1].clone(), bufs[0].clone(), bufs[1].clone()]
        );
        let p = Packet::event(Namespace::ROOT, json!(["b"])).with_attachments(bufs);
        assert_eq!(
            dec(&encode(&p)).unwrap(),
            Packet::event(Namespace::ROOT, json!(["b"]))
        );
    }

    #[test]
    fn node_messages() {
        assert_eq!(MsgpackError::NotAMap.node_message(), "invalid packet type");
        assert_eq!(
            MsgpackError::InvalidPayload(DecodeError::AckPayloadNotArray).node_message(),
            "invalid payload"
        );
        assert!(MsgpackError::InvalidPayload(DecodeError::MissingEventName)
            .node_message()
            .starts_with("(accepted"));
        assert!(MsgpackError::Truncated.is_malformed_msgpack());
        assert!(!MsgpackError::TooDeep { max: 1 }.is_malformed_msgpack());
    }
}
