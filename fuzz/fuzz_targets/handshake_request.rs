//! An HTTP upgrade request trickled in arbitrary reads through `RequestParser`, then
//! `Offer::from_request` and `Offer::accept`.
//!
//! Checks: no panic; the parse result does not depend on how the bytes arrived; a head is
//! never accepted past the header limits; an accepted upgrade produces a well-formed 101
//! response whose headers all parse back.
#![no_main]

use iolite_fuzz::{chunks, seed_and_payload};
use iolite_ws_proto::handshake::{Offer, RequestParser};
use iolite_ws_proto::{DeflateConfig, HandshakeError, HandshakeLimits};
use libfuzzer_sys::fuzz_target;

type Parsed = Result<Option<(ParsedRequest, usize)>, HandshakeError>;

/// The parts of an `http::Request<()>`, which is not `PartialEq` itself.
#[derive(Debug, PartialEq)]
struct ParsedRequest {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

fn parse_once(limits: &HandshakeLimits, buf: &[u8]) -> (Parsed, Option<http::Request<()>>) {
    match RequestParser::new(limits.clone()).parse(buf) {
        Ok(Some((req, used))) => (Ok(Some((parts(&req), used))), Some(req)),
        Ok(None) => (Ok(None), None),
        Err(e) => (Err(e), None),
    }
}

fn parts(req: &http::Request<()>) -> ParsedRequest {
    ParsedRequest {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        headers: req.headers().clone(),
    }
}

/// Feeds the growing buffer read by read, as the I/O layer does, until a verdict.
fn parse_trickled(limits: &HandshakeLimits, seed: u16, input: &[u8]) -> Parsed {
    let mut parser = RequestParser::new(limits.clone());
    let mut len = 0;
    for chunk in chunks(seed, input) {
        len += chunk.len();
        match parser.parse(&input[..len]) {
            Ok(None) => {}
            Ok(Some((req, used))) => return Ok(Some((parts(&req), used))),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fuzz_target!(|input: &[u8]| {
    let (seed, bytes) = seed_and_payload(input);
    let limits = if seed & 0x8 != 0 {
        HandshakeLimits::default()
            .max_header_bytes(256)
            .max_headers(8)
    } else {
        HandshakeLimits::default()
    };
    let (whole, request) = parse_once(&limits, bytes);
    let trickled = parse_trickled(&limits, seed, bytes);
    assert_eq!(whole, trickled);

    if let Ok(Some((req, used))) = &whole {
        assert!(*used <= bytes.len());
        assert!(*used <= limits.max_header_bytes, "head of {used} bytes");
        assert!(req.headers.len() <= limits.max_headers);
        assert!(bytes[..*used].ends_with(b"\r\n\r\n"));
    }
    if let Err(e) = &whole {
        assert!(matches!(e.status(), 400 | 405 | 426 | 431), "{e:?}");
    }

    let Some(request) = request else { return };
    let offer = match Offer::from_request(&request) {
        Ok(offer) => offer,
        Err(e) => {
            assert!(matches!(e.status(), 400 | 405 | 426), "{e:?}");
            return;
        }
    };
    let protocol = offer.protocols().first().cloned();
    for deflate in [None, Some(DeflateConfig::default())] {
        let accept = offer.accept(protocol.as_deref(), deflate.as_ref());
        assert_eq!(accept.accept_key.len(), 28, "base64 of a SHA-1 digest");
        assert_eq!(accept.protocol, protocol);
        assert_eq!(accept.extensions.is_some(), accept.deflate.is_some());
        // The 101 must be one well-formed HTTP head: nothing the client sent may inject
        // a header line or end the head early.
        let response = accept.response_bytes();
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&response) {
            Ok(httparse::Status::Complete(n)) => assert_eq!(n, response.len()),
            other => panic!("bad 101 response {other:?}: {response:?}"),
        }
        assert_eq!(parsed.code, Some(101));
        assert!(parsed.headers.len() <= 5);
        let _ = accept.headers();
    }
});
