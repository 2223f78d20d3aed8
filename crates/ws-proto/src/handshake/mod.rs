//! The opening handshake (RFC 6455 §4): server and client sides, from bytes.

mod client;
mod server;

pub use client::{ClientAccepted, ClientRequest, ResponseParser};
pub use server::{reject_response, reject_with, Accept, Offer, RequestParser};

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Finds the end of an HTTP head (`\r\n\r\n`) without rescanning bytes already seen, so
/// a head trickled in one byte per read costs linear time. Returns the head's length.
pub(crate) fn find_head_end(
    buf: &[u8],
    scanned: &mut usize,
    max_bytes: usize,
) -> Result<Option<usize>, HandshakeError> {
    let from = scanned.saturating_sub(3);
    let window = &buf[from.min(buf.len())..];
    if let Some(i) = window.windows(4).position(|w| w == b"\r\n\r\n") {
        let end = from + i + 4;
        if end > max_bytes {
            return Err(HandshakeError::HeadersTooLarge { max: max_bytes });
        }
        return Ok(Some(end));
    }
    *scanned = buf.len();
    if buf.len() > max_bytes {
        return Err(HandshakeError::HeadersTooLarge { max: max_bytes });
    }
    Ok(None)
}

/// Whether a comma-separated header (over all its lines) contains `token`, ignoring case.
pub(crate) fn has_token(
    headers: &http::HeaderMap,
    name: http::header::HeaderName,
    token: &str,
) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Converts httparse headers into a `HeaderMap`.
pub(crate) fn header_map(
    headers: &[httparse::Header<'_>],
) -> Result<http::HeaderMap, HandshakeError> {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = http::header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HandshakeError::MalformedHttp)?;
        let value =
            http::HeaderValue::from_bytes(h.value).map_err(|_| HandshakeError::MalformedHttp)?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
