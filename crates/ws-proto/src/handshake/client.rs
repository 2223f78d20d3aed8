//! Client side of the opening handshake.

use base64::Engine as _;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};
use http::HeaderMap;

use super::{accept_key, find_head_end, has_token, header_map};
use crate::deflate::{DeflateConfig, DeflateParams};
use crate::error::HandshakeError;
use crate::limits::HandshakeLimits;

/// What a client asks for in its upgrade request.
#[derive(Clone, Debug, Default)]
pub struct ClientRequest {
    /// The `Host` header value (`host[:port]`).
    pub host: String,
    /// Path and query (`/chat?x=1`).
    pub path: String,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// Compression to offer.
    pub deflate: Option<DeflateConfig>,
    /// Extra headers (`Origin`, `Authorization`, cookies...).
    pub headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// Serialises the request with `key` (16 random bytes from the caller) and returns the
    /// parser that will check the server's response against it.
    pub fn build(&self, key: [u8; 16], limits: HandshakeLimits) -> (Vec<u8>, ResponseParser) {
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let mut s = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            if self.path.is_empty() { "/" } else { &self.path },
            self.host
        );
        if !self.protocols.is_empty() {
            s.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        if let Some(d) = &self.deflate {
            s.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", d.offer()));
        }
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        let parser = ResponseParser {
            expected_accept: accept_key(key.as_bytes()),
            protocols: self.protocols.clone(),
            deflate: self.deflate.clone(),
            limits,
            scanned: 0,
        };
        (s.into_bytes(), parser)
    }
}

/// Reads and checks the server's handshake response.
#[derive(Debug)]
pub struct ResponseParser {
    expected_accept: String,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    limits: HandshakeLimits,
    scanned: usize,
}

/// A successful handshake, from the client's side.
#[derive(Clone, Debug)]
pub struct ClientAccepted {
    /// The subprotocol the server selected.
    pub protocol: Option<String>,
    /// The negotiated compression.
    pub deflate: Option<DeflateParams>,
    /// All response headers (cookies and the like).
    pub headers: HeaderMap,
}

impl ResponseParser {
    /// Parses the response at the front of `buf`: `Ok(None)` if more bytes are needed,
    /// or the outcome and the bytes the head took.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(ClientAccepted, usize)>, HandshakeError> {
        let Some(end) = find_head_end(buf, &mut self.scanned, self.limits.max_header_bytes)? else {
            return Ok(None);
        };
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::TooManyHeaders {
                    max: self.limits.max_headers,
                })
            }
            _ => return Err(HandshakeError::MalformedHttp),
        }
        let code = resp.code.unwrap_or(0);
        if code != 101 {
            return Err(HandshakeError::UnexpectedStatus(code));
        }
        let headers = header_map(resp.headers)?;
        if !has_token(&headers, UPGRADE, "websocket") {
            return Err(HandshakeError::BadHeader("Upgrade"));
        }
        if !has_token(&headers, CONNECTION, "upgrade") {
            return Err(HandshakeError::BadHeader("Connection"));
        }
        match headers.get(SEC_WEBSOCKET_ACCEPT) {
            Some(v) if v.as_bytes() == self.expected_accept.as_bytes() => {}
            _ => return Err(HandshakeError::AcceptMismatch),
        }
        let protocol = match headers.get(SEC_WEBSOCKET_PROTOCOL) {
            None => None,
            Some(v) => {
                let p = v
                    .to_str()
                    .map_err(|_| HandshakeError::NotOffered("subprotocol"))?;
                if !self.protocols.iter().any(|o| o == p) {
                    return Err(HandshakeError::NotOffered("subprotocol"));
                }
                Some(p.to_owned())
            }
        };
        let ext_values: Vec<&str> = headers
            .get_all(SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let deflate = match &self.deflate {
            Some(cfg) => cfg
                .accept_response(ext_values)
                .map_err(HandshakeError::NotOffered)?,
            None if ext_values.is_empty() => None,
            None => return Err(HandshakeError::NotOffered("extension")),
        };
        Ok(Some((
            ClientAccepted {
                protocol,
                deflate,
                headers,
            },
            end,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Offer, RequestParser};

    #[test]
    fn client_and_server_agree() {
        let req = ClientRequest {
            host: "localhost:9001".into(),
            path: "/x".into(),
            protocols: vec!["a".into(), "b".into()],
            deflate: Some(DeflateConfig::default()),
            headers: vec![("Origin".into(), "http://localhost".into())],
        };
        let (bytes, mut parser) = req.build([7; 16], HandshakeLimits::default());
        let (r, _) = RequestParser::default().parse(&bytes).unwrap().unwrap();
        let offer = Offer::from_request(&r).unwrap();
        let acc = offer.accept(Some("b"), Some(&DeflateConfig::default()));
        let resp = acc.response_bytes();
        for n in 0..resp.len() {
            assert!(parser.parse(&resp[..n]).unwrap().is_none());
        }
        let (c, used) = parser.parse(&resp).unwrap().unwrap();
        assert_eq!(used, resp.len());
        assert_eq!(c.protocol.as_deref(), Some("b"));
        let d = c.deflate.unwrap();
        assert!(d.compress_no_context_takeover && d.decompress_no_context_takeover);
    }

    #[test]
    fn wrong_accept_or_status_is_refused() {
        let req = ClientRequest {
            host: "h".into(),
            ..Default::default()
        };
        let (_, mut parser) = req.build([1; 16], HandshakeLimits::default());
        let bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert_eq!(
            parser.parse(bad).unwrap_err(),
            HandshakeError::AcceptMismatch
        );
        let (_, mut parser) = req.build([1; 16], HandshakeLimits::default());
        assert_eq!(
            parser.parse(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err(),
            HandshakeError::UnexpectedStatus(403)
        );
    }
}
