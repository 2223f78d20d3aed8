//! Server side of the opening handshake.

use base64::Engine as _;
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Version};

use super::{accept_key, find_head_end, has_token, header_map};
use crate::deflate::{DeflateConfig, DeflateParams};
use crate::error::HandshakeError;
use crate::limits::HandshakeLimits;

/// Reads an HTTP/1.1 request head from bytes as they arrive, within [`HandshakeLimits`].
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: HandshakeLimits,
    scanned: usize,
}

impl RequestParser {
    /// A parser with the given limits.
    pub fn new(limits: HandshakeLimits) -> Self {
        Self { limits, scanned: 0 }
    }

    /// Parses the request head at the front of `buf` (the whole buffer read so far).
    /// Returns `Ok(None)` when more bytes are needed, or the request and the number of
    /// bytes it took (bytes after it already belong to the WebSocket stream).
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Request<()>, usize)>, HandshakeError> {
        let Some(end) = find_head_end(buf, &mut self.scanned, self.limits.max_header_bytes)? else {
            return Ok(None);
        };
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HandshakeError::MalformedHttp),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::TooManyHeaders {
                    max: self.limits.max_headers,
                })
            }
            Err(_) => return Err(HandshakeError::MalformedHttp),
        }
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| HandshakeError::MalformedHttp)?;
        let version = match req.version {
            Some(1) => Version::HTTP_11,
            _ => Version::HTTP_10,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(req.path.unwrap_or("/"))
            .version(version);
        if let Some(h) = builder.headers_mut() {
            *h = header_map(req.headers)?;
        }
        let request = builder
            .body(())
            .map_err(|_| HandshakeError::MalformedHttp)?;
        Ok(Some((request, end)))
    }
}

/// A validated upgrade request: what the client offered.
#[derive(Clone, Debug)]
pub struct Offer {
    key: HeaderValue,
    protocols: Vec<String>,
    extensions: Vec<String>,
}

impl Offer {
    /// Checks an upgrade request per RFC 6455 §4.2.1. Works on any `http::Request`, so
    /// the same rules apply to raw sockets and to requests routed by hyper or axum.
    pub fn from_request<B>(req: &Request<B>) -> Result<Self, HandshakeError> {
        Self::from_parts(req.method(), req.version(), req.headers())
    }

    /// As [`Offer::from_request`], from the request's parts.
    pub fn from_parts(
        method: &Method,
        version: Version,
        headers: &HeaderMap,
    ) -> Result<Self, HandshakeError> {
        if method != Method::GET {
            return Err(HandshakeError::MethodNotGet);
        }
        if version < Version::HTTP_11 {
            return Err(HandshakeError::HttpVersion);
        }
        if !headers.contains_key(HOST) {
            return Err(HandshakeError::BadHeader("Host"));
        }
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(HandshakeError::BadHeader("Upgrade"));
        }
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(HandshakeError::BadHeader("Connection"));
        }
        match headers.get(SEC_WEBSOCKET_VERSION) {
            None => return Err(HandshakeError::BadHeader("Sec-WebSocket-Version")),
            Some(v) if v.as_bytes().trim_ascii() != b"13" => {
                return Err(HandshakeError::UnsupportedVersion)
            }
            Some(_) => {}
        }
        let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) => k.clone(),
            _ => return Err(HandshakeError::BadHeader("Sec-WebSocket-Key")),
        };
        // RFC 6455 §4.1: the key is 16 random bytes, base64-encoded (24 characters).
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key.as_bytes().trim_ascii())
            .map_err(|_| HandshakeError::BadHeader("Sec-WebSocket-Key"))?;
        if decoded.len() != 16 {
            return Err(HandshakeError::BadHeader("Sec-WebSocket-Key"));
        }
        let list = |name| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Self {
            key,
            protocols: list(SEC_WEBSOCKET_PROTOCOL),
            extensions: headers
                .get_all(SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
        })
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Accepts the upgrade: selects `protocol` (which must be one the client offered) and
    /// negotiates permessage-deflate if `deflate` is given (the server's policy).
    pub fn accept(&self, protocol: Option<&str>, deflate: Option<&DeflateConfig>) -> Accept {
        let protocol = protocol
            .filter(|p| self.protocols.iter().any(|o| o == p))
            .map(str::to_owned);
        let negotiated =
            deflate.and_then(|cfg| cfg.accept_offer(self.extensions.iter().map(String::as_str)));
        let (extensions, deflate) = match negotiated {
            Some((header, params)) => (Some(header), Some(params)),
            None => (None, None),
        };
        Accept {
            accept_key: accept_key(self.key.as_bytes().trim_ascii()),
            protocol,
            extensions,
            deflate,
        }
    }
}

/// The server's answer to an accepted offer.
#[derive(Clone, Debug)]
pub struct Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The selected subprotocol.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` response value.
    pub extensions: Option<String>,
    /// The negotiated compression, for the encoder and decoder.
    pub deflate: Option<DeflateParams>,
}

impl Accept {
    /// The `101 Switching Protocols` response head, for a raw socket.
    pub fn response_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(160);
        s.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        s.push_str(&self.accept_key);
        if let Some(p) = &self.protocol {
            s.push_str("\r\nSec-WebSocket-Protocol: ");
            s.push_str(p);
        }
        if let Some(e) = &self.extensions {
            s.push_str("\r\nSec-WebSocket-Extensions: ");
            s.push_str(e);
        }
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    /// The response headers beyond the status, for an HTTP library's response.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        let pairs = [
            (http::header::SEC_WEBSOCKET_ACCEPT, Some(&self.accept_key)),
            (SEC_WEBSOCKET_PROTOCOL, self.protocol.as_ref()),
            (SEC_WEBSOCKET_EXTENSIONS, self.extensions.as_ref()),
        ];
        for (name, value) in pairs {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        h
    }
}

/// An HTTP response refusing a handshake, with the status the error earns.
pub fn reject_response(err: &HandshakeError) -> Vec<u8> {
    reject_with(err.status(), &err.to_string())
}

/// An HTTP error response with `status` and a plain-text `body`, closing the connection.
pub fn reject_with(status: u16, body: &str) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let extra = if status == 426 {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}Connection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

    fn parse(bytes: &[u8]) -> Result<Offer, HandshakeError> {
        let (req, _) = RequestParser::default()
            .parse(bytes)?
            .ok_or(HandshakeError::MalformedHttp)?;
        Offer::from_request(&req)
    }

    #[test]
    fn accepts_rfc_example_and_negotiates() {
        let mut p = RequestParser::default();
        let mut extra = GOOD.to_vec();
        extra.extend_from_slice(&[0x81, 0x80]);
        let (req, used) = p.parse(&extra).unwrap().unwrap();
        assert_eq!(used, GOOD.len());
        assert_eq!(req.uri().path(), "/chat");
        assert_eq!(req.uri().query(), Some("room=1"));
        assert_eq!(req.headers()["origin"], "http://example.com");
        let offer = Offer::from_request(&req).unwrap();
        assert_eq!(offer.protocols(), ["chat", "superchat"]);
        let acc = offer.accept(Some("chat"), Some(&DeflateConfig::default()));
        let resp = String::from_utf8(acc.response_bytes()).unwrap();
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(resp.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(resp.contains("Sec-WebSocket-Extensions: permessage-deflate"));
        // A protocol the client did not offer is never selected.
        assert_eq!(offer.accept(Some("other"), None).protocol, None);
    }

    #[test]
    fn trickled_bytes_complete_once() {
        let mut p = RequestParser::default();
        for n in 1..GOOD.len() {
            assert!(p.parse(&GOOD[..n]).unwrap().is_none(), "at {n}");
        }
        assert!(p.parse(GOOD).unwrap().is_some());
    }

    #[test]
    fn bad_requests_get_their_status() {
        let s = std::str::from_utf8(GOOD).unwrap();
        let cases = [
            (s.replace("GET", "POST"), 405),
            (s.replace("HTTP/1.1", "HTTP/1.0"), 400),
            (s.replace("Upgrade: websocket", "Upgrade: h2c"), 400),
            (s.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (s.replace("Version: 13", "Version: 8"), 426),
            (
                s.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                400,
            ),
            (s.replace("Host: server.example.com\r\n", ""), 400),
        ];
        for (req, status) in cases {
            assert_eq!(parse(req.as_bytes()).unwrap_err().status(), status, "{req}");
        }
    }

    #[test]
    fn header_limits_give_431() {
        let limits = HandshakeLimits::default()
            .max_header_bytes(256)
            .max_headers(12);
        let mut p = RequestParser::new(limits.clone());
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(p.parse(big.as_bytes()).unwrap_err().status(), 431);
        // Without an end in sight the limit still applies.
        let mut p = RequestParser::new(limits.clone());
        assert_eq!(p.parse(&big.as_bytes()[..280]).unwrap_err().status(), 431);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(13));
        let mut p = RequestParser::new(limits);
        assert_eq!(
            p.parse(many.as_bytes()).unwrap_err(),
            HandshakeError::TooManyHeaders { max: 12 }
        );
        assert!(
            String::from_utf8(reject_response(&HandshakeError::UnsupportedVersion))
                .unwrap()
                .contains("Sec-WebSocket-Version: 13")
        );
    }
}
