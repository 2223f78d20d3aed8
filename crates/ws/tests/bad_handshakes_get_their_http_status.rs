//! The opening handshake within its limits and rules (RFC 6455 §4.2): each refusal is the
//! HTTP status the error earns, and the server goes on serving everyone else.

use iolite_test_support::harness::{assert_echo, End, Server, PATIENCE};
use iolite_test_support::raw::{status, upgrade_request, RawClient};
use iolite_ws::{ClientBuilder, Config, Error, HandshakeLimits, Message, Reject};
use iolite_ws_proto::HandshakeError;

/// A valid upgrade request with `extra` header lines before the blank line.
fn request_with(addr: std::net::SocketAddr, extra: &str) -> String {
    let req = upgrade_request(&addr.to_string(), "/");
    format!(
        "{}{extra}\r\n",
        req.strip_suffix("\r\n").expect("ends with a blank line")
    )
}

async fn status_for(server: &Server, request: &[u8]) -> (Option<u16>, String) {
    let head = RawClient::http_exchange(server.addr(), request)
        .await
        .expect("HTTP exchange");
    (status(&head), head)
}

/// The next handshake refusal the server reports, skipping connections that were
/// accepted and ended.
async fn handshake_error(server: &mut Server) -> HandshakeError {
    loop {
        match server.next_end(PATIENCE).await {
            Some(End::Handshake(Error::Handshake(e))) => return e,
            Some(End::Closed(_)) => {}
            other => panic!("expected a handshake error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn header_lines_at_max_headers_pass_and_one_more_gets_431() {
    let limits = HandshakeLimits::default().max_headers(16);
    let mut server = Server::echo(Config::default().handshake_limits(limits)).await;
    // The upgrade request has 5 header lines of its own.
    let filler = |n: usize| {
        (0..n)
            .map(|i| format!("X-Filler-{i}: y\r\n"))
            .collect::<String>()
    };
    let at = request_with(server.addr(), &filler(11));
    assert_eq!(status_for(&server, at.as_bytes()).await.0, Some(101));
    let over = request_with(server.addr(), &filler(12));
    assert_eq!(status_for(&server, over.as_bytes()).await.0, Some(431));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::TooManyHeaders { max: 16 }
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn header_flood_gets_431() {
    // Thousands of tiny header lines, still under the byte limit.
    let limits = HandshakeLimits::default().max_header_bytes(64 << 10);
    let mut server = Server::echo(Config::default().handshake_limits(limits)).await;
    let flood = request_with(server.addr(), &"A: b\r\n".repeat(10_000));
    assert_eq!(status_for(&server, flood.as_bytes()).await.0, Some(431));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::TooManyHeaders { max: 64 }
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn header_block_at_max_header_bytes_passes_and_one_byte_more_gets_431() {
    let limits = HandshakeLimits::default().max_header_bytes(1024);
    let mut server = Server::echo(Config::default().handshake_limits(limits)).await;
    let padded = |total: usize| {
        let base = request_with(server.addr(), "X-Pad: \r\n").len();
        request_with(
            server.addr(),
            &format!("X-Pad: {}\r\n", "p".repeat(total - base)),
        )
    };
    let at = padded(1024);
    assert_eq!(at.len(), 1024);
    assert_eq!(status_for(&server, at.as_bytes()).await.0, Some(101));
    let over = padded(1025);
    assert_eq!(status_for(&server, over.as_bytes()).await.0, Some(431));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::HeadersTooLarge { max: 1024 }
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn header_block_without_an_end_gets_431_at_the_limit() {
    // The server must not wait for a blank line that never comes.
    let limits = HandshakeLimits::default().max_header_bytes(1024);
    let mut server = Server::echo(Config::default().handshake_limits(limits)).await;
    let endless = format!("GET / HTTP/1.1\r\nX-Endless: {}", "e".repeat(2000));
    assert_eq!(status_for(&server, endless.as_bytes()).await.0, Some(431));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::HeadersTooLarge { max: 1024 }
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn unsupported_version_gets_426_listing_13() {
    // RFC 6455 §4.4: the answer names the version the server speaks.
    let mut server = Server::echo(Config::default()).await;
    let req = request_with(server.addr(), "").replace("Version: 13", "Version: 8");
    let (code, head) = status_for(&server, req.as_bytes()).await;
    assert_eq!(code, Some(426));
    assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{head}");
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::UnsupportedVersion
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn post_gets_405() {
    let mut server = Server::echo(Config::default()).await;
    let req = request_with(server.addr(), "").replacen("GET", "POST", 1);
    assert_eq!(status_for(&server, req.as_bytes()).await.0, Some(405));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::MethodNotGet
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn missing_key_gets_400() {
    let mut server = Server::echo(Config::default()).await;
    let req = request_with(server.addr(), "")
        .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert!(!req.contains("Key"));
    assert_eq!(status_for(&server, req.as_bytes()).await.0, Some(400));
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::BadHeader("Sec-WebSocket-Key")
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn malformed_request_line_gets_400() {
    let mut server = Server::echo(Config::default()).await;
    assert_eq!(
        status_for(&server, b"\x16\x03\x01 not http at all\r\n\r\n")
            .await
            .0,
        Some(400)
    );
    assert_eq!(
        handshake_error(&mut server).await,
        HandshakeError::MalformedHttp
    );
    assert_echo(server.addr()).await;
}

const ALLOWED: &str = "https://app.example";

/// Browsers always send `Origin`; a foreign one is refused. Clients that are not browsers
/// send none and are let through.
fn origin_policy(req: &http::Request<()>, _: &iolite_ws::Offer) -> Result<Option<String>, Reject> {
    match req.headers().get(http::header::ORIGIN) {
        Some(o) if o != ALLOWED => Err(Reject::new(403, "origin not allowed")),
        _ => Ok(None),
    }
}

#[tokio::test]
async fn accept_with_refuses_a_foreign_origin_with_403() {
    let mut server = Server::echo_with_policy(Config::default(), origin_policy).await;
    let req = request_with(server.addr(), "Origin: https://evil.example\r\n");
    let (code, head) = status_for(&server, req.as_bytes()).await;
    assert_eq!(code, Some(403));
    assert!(head.ends_with("\r\n\r\n"));
    assert!(matches!(
        server.next_end(PATIENCE).await,
        Some(End::Handshake(Error::Refused(403)))
    ));
    // The allowed origin is served.
    let (mut ws, _) = ClientBuilder::new(server.url())
        .header("Origin", ALLOWED)
        .connect()
        .await
        .unwrap();
    ws.send(Message::text("from the app")).unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("from the app")
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn client_builder_reports_a_refusal_with_its_status() {
    let server = Server::echo_with_policy(Config::default(), origin_policy).await;
    let refused = ClientBuilder::new(server.url())
        .header("Origin", "https://evil.example")
        .connect()
        .await;
    match refused {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus(403))) => {}
        Err(e) => panic!("expected status 403, got {e:?}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
}
