//! The query parameters of an Engine.IO request: `EIO`, `transport` and `sid`.
//!
//! Parsed as Node does (`new URL(req.url).searchParams`, then `Object.fromEntries`):
//! `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte, a `%`
//! without two hex digits is kept, invalid UTF-8 becomes U+FFFD), and the last of repeated
//! keys wins. Other parameters (`t`, the client's cache buster; `j`, `b64`) are ignored.

use std::borrow::Cow;

use crate::error::RequestError;

/// A transport a client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// HTTP long-polling: `transport=polling`.
    Polling,
    /// WebSocket: `transport=websocket`.
    WebSocket,
}

impl Transport {
    /// The name on the wire: `polling` or `websocket`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }

    /// The transport a query value names; case-sensitive, as Node's. `webtransport` is
    /// not one: Node refuses it over HTTP as well.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "polling" => Some(Self::Polling),
            "websocket" => Some(Self::WebSocket),
            _ => None,
        }
    }
}

/// The protocol revision a request asks for with `EIO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// Anything but `EIO=4`, including no `EIO` at all: Node takes it for v3 (Socket.IO
    /// v2), which iolite does not speak.
    V3,
    /// `EIO=4`, exactly.
    V4,
}

/// The Engine.IO query parameters of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// The `transport` parameter.
    pub transport: Transport,
    /// The `sid` parameter, decoded: `None` for a handshake. An empty `sid=` counts as
    /// none, as in Node. Look the session up with [`crate::Sid::parse`]; a string that
    /// does not parse names no session ([`RequestError::UnknownSid`]).
    pub sid: Option<Cow<'a, str>>,
    /// The `EIO` parameter. Only checked on a handshake ([`Query::check_protocol`]);
    /// Node ignores it on requests of an established session.
    pub protocol: ProtocolVersion,
}

impl<'a> Query<'a> {
    /// Parses the query component of a request target, without the `?` (what
    /// `http::Uri::query` returns). Borrows from `query` unless a value is percent- or
    /// `+`-encoded.
    ///
    /// Fails only with [`RequestError::UnknownTransport`], Node's first check, when
    /// `transport` is missing or names neither `polling` nor `websocket`. A server that
    /// enables only one transport must refuse the other with the same error.
    pub fn parse(query: &'a str) -> Result<Self, RequestError> {
        let mut transport = None;
        let mut sid = None;
        let mut eio = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match &*form_decode(key) {
                "transport" => &mut transport,
                "sid" => &mut sid,
                "EIO" => &mut eio,
                _ => continue,
            };
            // Object.fromEntries: the last value of a repeated key wins.
            *slot = Some(value);
        }
        let transport = transport
            .map(form_decode)
            .and_then(|t| Transport::from_name(&t))
            .ok_or(RequestError::UnknownTransport)?;
        let sid = sid.map(form_decode).filter(|s| !s.is_empty());
        let protocol = match eio.map(form_decode).as_deref() {
            Some("4") => ProtocolVersion::V4,
            _ => ProtocolVersion::V3,
        };
        Ok(Self {
            transport,
            sid,
            protocol,
        })
    }

    /// Whether this request opens a session (it has no `sid`).
    pub fn is_handshake(&self) -> bool {
        self.sid.is_none()
    }

    /// Node's checks of a handshake request (no `sid`) that need nothing but the request:
    /// a handshake is a `GET` ([`RequestError::BadHandshakeMethod`]), and asks for
    /// `websocket` only in a WebSocket upgrade ([`RequestError::BadRequest`]). Requests with
    /// a `sid` pass; the server checks those against the session.
    ///
    /// Node then runs its `allowRequest` hook, and last [`Query::check_protocol`].
    pub fn check_handshake(&self, method: &str, is_upgrade: bool) -> Result<(), RequestError> {
        if !self.is_handshake() {
            return Ok(());
        }
        if method != "GET" {
            return Err(RequestError::BadHandshakeMethod);
        }
        if self.transport == Transport::WebSocket && !is_upgrade {
            return Err(RequestError::BadRequest);
        }
        Ok(())
    }

    /// The last check of a handshake: `EIO=4`
    /// ([`RequestError::UnsupportedProtocolVersion`]). Requests with a `sid` pass, as
    /// Node never reads `EIO` on them.
    pub fn check_protocol(&self) -> Result<(), RequestError> {
        if self.is_handshake() && self.protocol != ProtocolVersion::V4 {
            Err(RequestError::UnsupportedProtocolVersion)
        } else {
            Ok(())
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one key or value (WHATWG URL
/// §5.1): `+` is a space, `%XX` with two hex digits is that byte, any other `%` stays, and
/// the bytes are read as UTF-8 with U+FFFD for invalid sequences.
/// The value of one parameter of a query string (without the `?`), decoded as
/// `URLSearchParams` does; the last of repeated keys wins, as in Node's `handshake.query`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(key) == name {
            found = Some(value);
        }
    }
    found.map(form_decode)
}

fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|&c| char::from(c).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    // Two hex digits: at most 0xff.
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Query<'_>, RequestError> {
        Query::parse(q)
    }

    #[test]
    fn parses_the_protocol_examples() {
        let q = parse("EIO=4&transport=polling").unwrap();
        assert_eq!(
            q,
            Query {
                transport: Transport::Polling,
                sid: None,
                protocol: ProtocolVersion::V4
            }
        );
        assert!(q.is_handshake());
        let q = parse("EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC").unwrap();
        assert_eq!(q.transport, Transport::WebSocket);
        assert_eq!(q.sid.as_deref(), Some("lv_VI97HAXpY6yYWAAAC"));
        assert!(matches!(q.sid, Some(Cow::Borrowed(_))));
        // The client's cache buster and unknown parameters are ignored.
        let q = parse("EIO=4&transport=polling&t=OxYz1_a&j=0&b64=1&foo").unwrap();
        assert_eq!(q.protocol, ProtocolVersion::V4);
        assert_eq!(q.sid, None);
    }

    #[test]
    fn transport_is_checked_first() {
        // The test suite's "fails with an invalid 'transport' query parameter".
        assert_eq!(parse("EIO=4"), Err(RequestError::UnknownTransport));
        assert_eq!(
            parse("EIO=4&transport=abc"),
            Err(RequestError::UnknownTransport)
        );
        assert_eq!(parse(""), Err(RequestError::UnknownTransport));
        assert_eq!(parse("transport="), Err(RequestError::UnknownTransport));
        assert_eq!(parse("transport"), Err(RequestError::UnknownTransport));
        assert_eq!(
            parse("transport=Polling"),
            Err(RequestError::UnknownTransport)
        );
        assert_eq!(
            parse("EIO=4&transport=webtransport"),
            Err(RequestError::UnknownTransport)
        );
        // Transport before version: Node reports the transport.
        assert_eq!(
            parse("EIO=abc&transport=abc"),
            Err(RequestError::UnknownTransport)
        );
    }

    #[test]
    fn eio_other_than_4_is_unsupported_on_a_handshake() {
        // The test suite's "fails with an invalid 'EIO' query parameter".
        for q in [
            "transport=polling",
            "EIO=abc&transport=polling",
            "EIO=3&transport=polling",
            "EIO=04&transport=polling",
            "EIO=&transport=polling",
            "eio=4&transport=polling",
        ] {
            let q = parse(q).unwrap();
            assert_eq!(q.protocol, ProtocolVersion::V3);
            assert_eq!(
                q.check_protocol(),
                Err(RequestError::UnsupportedProtocolVersion)
            );
        }
        assert_eq!(
            parse("EIO=4&transport=polling").unwrap().check_protocol(),
            Ok(())
        );
        // With a sid, Node never looks at EIO.
        assert_eq!(
            parse("EIO=3&transport=polling&sid=x")
                .unwrap()
                .check_protocol(),
            Ok(())
        );
    }

    #[test]
    fn handshake_method_and_upgrade_checks() {
        let polling = parse("EIO=4&transport=polling").unwrap();
        assert_eq!(polling.check_handshake("GET", false), Ok(()));
        // The test suite's "fails with an invalid request method": POST and PUT.
        assert_eq!(
            polling.check_handshake("POST", false),
            Err(RequestError::BadHandshakeMethod)
        );
        assert_eq!(
            polling.check_handshake("PUT", false),
            Err(RequestError::BadHandshakeMethod)
        );
        // Method before version, as in Node: a POST without EIO is code 2, not 5.
        assert_eq!(
            parse("transport=polling")
                .unwrap()
                .check_handshake("POST", false),
            Err(RequestError::BadHandshakeMethod)
        );
        let ws = parse("EIO=4&transport=websocket").unwrap();
        assert_eq!(ws.check_handshake("GET", true), Ok(()));
        assert_eq!(
            ws.check_handshake("GET", false),
            Err(RequestError::BadRequest)
        );
        // Requests of an established session are the server's to check.
        let with_sid = parse("EIO=4&transport=polling&sid=abc").unwrap();
        assert_eq!(with_sid.check_handshake("POST", false), Ok(()));
    }

    #[test]
    fn empty_sid_is_a_handshake() {
        let q = parse("EIO=4&transport=polling&sid=").unwrap();
        assert_eq!(q.sid, None);
        assert!(q.is_handshake());
    }

    #[test]
    fn the_last_repeated_key_wins() {
        let q = parse("transport=abc&EIO=4&transport=polling&sid=a&sid=b").unwrap();
        assert_eq!(q.transport, Transport::Polling);
        assert_eq!(q.sid.as_deref(), Some("b"));
        assert_eq!(
            parse("transport=polling&transport=abc"),
            Err(RequestError::UnknownTransport)
        );
        // An empty last value still wins.
        let q = parse("EIO=4&transport=polling&sid=a&sid=").unwrap();
        assert_eq!(q.sid, None);
        let q = parse("EIO=4&EIO=3&transport=polling").unwrap();
        assert_eq!(q.protocol, ProtocolVersion::V3);
    }

    #[test]
    fn keys_and_values_are_form_decoded() {
        let q = parse("E%49O=%34&transport=poll%69ng&sid=a+b%2Bc%zz%4").unwrap();
        assert_eq!(q.protocol, ProtocolVersion::V4);
        assert_eq!(q.transport, Transport::Polling);
        assert_eq!(q.sid.as_deref(), Some("a b+c%zz%4"));
        let q = parse("transport=polling&sid=%ff%C3%A9%e2%82").unwrap();
        assert_eq!(q.sid.as_deref(), Some("\u{fffd}é\u{fffd}"));
        // `&&` and a pair without `=` are skipped or empty, as URLSearchParams does.
        let q = parse("&&transport=websocket&&sid&").unwrap();
        assert_eq!(q.transport, Transport::WebSocket);
        assert_eq!(q.sid, None);
        // The value keeps any further `=`.
        let q = parse("transport=polling&sid=a=b").unwrap();
        assert_eq!(q.sid.as_deref(), Some("a=b"));
    }

    #[test]
    fn query_param_decodes_and_takes_the_last() {
        assert_eq!(query_param("a=1&b=x+y&a=%32", "a").as_deref(), Some("2"));
        assert_eq!(query_param("a=1&b=x+y", "b").as_deref(), Some("x y"));
        assert_eq!(query_param("a=1", "c"), None);
        assert_eq!(query_param("flag&a=1", "flag").as_deref(), Some(""));
    }

    #[test]
    fn form_decode_matches_urlsearchparams() {
        assert_eq!(form_decode("plain"), "plain");
        assert!(matches!(form_decode("plain"), Cow::Borrowed(_)));
        assert_eq!(form_decode("a+b"), "a b");
        assert_eq!(form_decode("%41%6a"), "Aj");
        assert_eq!(form_decode("%"), "%");
        assert_eq!(form_decode("%4"), "%4");
        assert_eq!(form_decode("%g1"), "%g1");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%00"), "\0");
        assert_eq!(form_decode("%E2%82%AC"), "€");
        assert_eq!(form_decode("€+"), "€ ");
    }

    #[test]
    fn transport_names_and_serde() {
        for t in [Transport::Polling, Transport::WebSocket] {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(Transport::from_name("WebSocket"), None);
    }
}
