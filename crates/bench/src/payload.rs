//! The payload every scenario sends, and the parsing of what comes back.
//!
//! A payload is ASCII text: a header `<kind><src>:<seq>:<ts>:` and then `x` up to the
//! requested size. `kind` is `e` (echo), `m` (chat or fanout message) or `t` (typing);
//! `src` the sending connection or publisher; `seq` its sequence number, from 0; `ts` the
//! send time in nanoseconds on the generator's clock ([`now_ns`]; in open loop, the time
//! the send was scheduled, so a late send counts against the server, not for it). The
//! text needs no escaping inside a JSON string, so Socket.IO frames are built by
//! concatenation and parsed by prefix.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

/// Kind of an echo payload.
pub const ECHO: u8 = b'e';
/// Kind of a message (fanout, burst, chat).
pub const MESSAGE: u8 = b'm';
/// Kind of a chat typing event.
pub const TYPING: u8 = b't';

/// The header of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// [`ECHO`], [`MESSAGE`] or [`TYPING`].
    pub kind: u8,
    /// The connection or publisher that sent it.
    pub src: u32,
    /// Its sequence number at that sender, from 0.
    pub seq: u64,
    /// When it was (meant to be) sent, [`now_ns`].
    pub ts_ns: u64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the generator's clock started (monotonic, one clock per process:
/// sender and receiver are both in this process).
pub fn now_ns() -> u64 {
    ns_at(Instant::now())
}

/// [`now_ns`] of an instant (a scheduled tick).
pub fn ns_at(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// Appends a payload of `size` bytes (or just the header, if that is longer) to `out`.
pub fn write_payload(out: &mut String, stamp: &Stamp, size: usize) {
    let start = out.len();
    out.push(char::from(stamp.kind));
    let _ = write!(out, "{}:{}:{}:", stamp.src, stamp.seq, stamp.ts_ns);
    let len = out.len() - start;
    if len < size {
        out.extend(std::iter::repeat_n('x', size - len));
    }
}

/// A payload as a new string.
pub fn payload(stamp: &Stamp, size: usize) -> String {
    let mut s = String::with_capacity(size.max(48));
    write_payload(&mut s, stamp, size);
    s
}

/// Reads the header at the start of `s`; the rest (padding, a closing quote) is ignored.
pub fn parse_stamp(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    let kind = *b.first()?;
    if !matches!(kind, ECHO | MESSAGE | TYPING) {
        return None;
    }
    let mut pos = 1;
    let mut field = || -> Option<u64> {
        let start = pos;
        let mut v: u64 = 0;
        while let Some(&c) = b.get(pos) {
            if c == b':' {
                if pos == start {
                    return None;
                }
                pos += 1;
                return Some(v);
            }
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            pos += 1;
        }
        None
    };
    let src = u32::try_from(field()?).ok()?;
    let seq = field()?;
    let ts_ns = field()?;
    Some(Stamp {
        kind,
        src,
        seq,
        ts_ns,
    })
}

/// An Engine.IO / Socket.IO text frame received over WebSocket, as far as the generator
/// cares.
#[derive(Debug, PartialEq, Eq)]
pub enum SioFrame {
    /// Engine.IO open (`0{...}`).
    Open,
    /// Engine.IO ping (`2`): must be answered with `3`.
    Ping,
    /// Socket.IO CONNECT accepted (`40...`).
    Connected,
    /// Socket.IO CONNECT_ERROR (`44...`), with the server's data.
    ConnectError(String),
    /// The server closed the session (Engine.IO `1`, Socket.IO `41`).
    Closed,
    /// An event (`42`) whose first argument carried a stamp.
    Event(Stamp),
    /// An ack (`43<id>`), with the stamp of its first argument if it has one.
    Ack {
        /// The ack id.
        id: u64,
        /// The first argument's stamp.
        stamp: Option<Stamp>,
    },
    /// Anything else (noop, pong, binary, events without a stamp).
    Other,
}

/// Parses a text frame of the lean Socket.IO client (root namespace, JSON parser).
pub fn parse_sio(text: &str) -> SioFrame {
    let Some(first) = text.as_bytes().first() else {
        return SioFrame::Other;
    };
    match first {
        b'0' => return SioFrame::Open,
        b'1' => return SioFrame::Closed,
        b'2' if text.len() == 1 => return SioFrame::Ping,
        b'4' => {}
        _ => return SioFrame::Other,
    }
    let rest = &text[1..];
    let Some(kind) = rest.as_bytes().first() else {
        return SioFrame::Other;
    };
    let mut body = &rest[1..];
    // A namespace other than "/" is prefixed as "/nsp,"; the generator only uses "/",
    // but a server may still spell it out.
    if body.starts_with('/') {
        match body.find(',') {
            Some(i) => body = &body[i + 1..],
            None => body = "",
        }
    }
    match kind {
        b'0' => SioFrame::Connected,
        b'1' => SioFrame::Closed,
        b'4' => SioFrame::ConnectError(body.to_owned()),
        b'2' => {
            let json = body.trim_start_matches(|c: char| c.is_ascii_digit());
            match first_string_arg(json, true) {
                Some(stamp) => SioFrame::Event(stamp),
                None => SioFrame::Other,
            }
        }
        b'3' => {
            let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let Ok(id) = body[..digits].parse::<u64>() else {
                return SioFrame::Other;
            };
            SioFrame::Ack {
                id,
                stamp: first_string_arg(&body[digits..], false),
            }
        }
        _ => SioFrame::Other,
    }
}

/// The stamp in the first argument of an event (`["name","<payload>",...]`, after the
/// name) or of an ack (`["<payload>",...]`).
fn first_string_arg(json: &str, has_name: bool) -> Option<Stamp> {
    // Fast path: the exact bytes every known server sends. The payload's characters need
    // no escaping, so the header can be read in place.
    let fast = if has_name {
        json.strip_prefix("[\"")
            .and_then(|r| r.find("\",\"").map(|i| &r[i + 3..]))
    } else {
        json.strip_prefix("[\"")
    };
    if let Some(s) = fast.and_then(parse_stamp) {
        return Some(s);
    }
    // Anything else that is still valid JSON (spaces, an object wrapper) takes the slow way.
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let arg = v.as_array()?.get(usize::from(has_name))?;
    match arg {
        serde_json::Value::String(s) => parse_stamp(s),
        serde_json::Value::Object(o) => o
            .get("payload")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_stamp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_size() {
        let st = Stamp {
            kind: MESSAGE,
            src: 7,
            seq: 42,
            ts_ns: 123_456_789,
        };
        let p = payload(&st, 64);
        assert_eq!(p.len(), 64);
        assert!(p.starts_with("m7:42:123456789:x"));
        assert_eq!(parse_stamp(&p), Some(st));
        // Smaller than the header: the header alone.
        let p = payload(&st, 4);
        assert_eq!(p, "m7:42:123456789:");
        assert_eq!(parse_stamp(&p), Some(st));
    }

    #[test]
    fn bad_stamps_are_refused() {
        for s in [
            "",
            "x1:2:3:",
            "m",
            "m1",
            "m1:2:3",
            "m:1:2:",
            "m1:a:2:",
            "m99999999999:1:1:",
            "m1:2:99999999999999999999999:",
        ] {
            assert_eq!(parse_stamp(s), None, "{s}");
        }
    }

    #[test]
    fn sio_frames() {
        assert_eq!(parse_sio("2"), SioFrame::Ping);
        assert_eq!(parse_sio("0{\"sid\":\"a\"}"), SioFrame::Open);
        assert_eq!(parse_sio("40{\"sid\":\"b\"}"), SioFrame::Connected);
        assert_eq!(parse_sio("41"), SioFrame::Closed);
        assert_eq!(
            parse_sio("44{\"message\":\"no\"}"),
            SioFrame::ConnectError("{\"message\":\"no\"}".into())
        );
        let st = Stamp {
            kind: MESSAGE,
            src: 1,
            seq: 2,
            ts_ns: 3,
        };
        assert_eq!(
            parse_sio("42[\"message\",\"m1:2:3:xxxx\"]"),
            SioFrame::Event(st)
        );
        // Spaces: not the fast path, same answer.
        assert_eq!(
            parse_sio("42[ \"message\", \"m1:2:3:xxxx\" ]"),
            SioFrame::Event(st)
        );
        assert_eq!(
            parse_sio("43/,17[\"e1:2:3:\"]"),
            SioFrame::Ack {
                id: 17,
                stamp: Some(Stamp { kind: ECHO, ..st })
            }
        );
        assert_eq!(parse_sio("439[]"), SioFrame::Ack { id: 9, stamp: None });
        assert_eq!(parse_sio("42[\"message\",{}]"), SioFrame::Other);
        assert_eq!(parse_sio("42[\"message\""), SioFrame::Other);
        assert_eq!(parse_sio("43x[]"), SioFrame::Other);
        assert_eq!(parse_sio(""), SioFrame::Other);
        assert_eq!(parse_sio("3"), SioFrame::Other);
    }
}
