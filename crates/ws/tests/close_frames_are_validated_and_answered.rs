//! RFC 6455 §5.5.1 and §7.4: a close frame's code must be one allowed on the wire and its
//! reason valid UTF-8; a valid close is answered with the same code, then the server
//! closes the TCP connection.

use iolite_test_support::frames::{client_frame, close_frame};
use iolite_test_support::harness::{assert_echo, close_code_for, End, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{Config, ProtocolError};

#[tokio::test]
async fn codes_not_allowed_on_the_wire_are_closed_with_1002() {
    // 0-999 unused, 1004-1006 and 1015 reserved, 1016-2999 unassigned, 5000+ invalid.
    let mut server = Server::echo(Config::default()).await;
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 0xffff] {
        let bytes = close_frame(code, b"");
        assert_eq!(
            close_code_for(server.addr(), &bytes).await,
            Some(1002),
            "code {code}"
        );
        let end = server.next_end(PATIENCE).await.expect("connection ended");
        assert_eq!(
            end.protocol_error(),
            Some(ProtocolError::InvalidCloseCode(code))
        );
    }
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn one_byte_close_payload_is_closed_with_1002() {
    // The code is two bytes; one byte is neither "no code" nor a code.
    let mut server = Server::echo(Config::default()).await;
    let bytes = client_frame(0x8, true, &[0x03]);
    assert_eq!(close_code_for(server.addr(), &bytes).await, Some(1002));
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(
        end.protocol_error(),
        Some(ProtocolError::InvalidClosePayload)
    );
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn close_reason_with_invalid_utf8_is_closed_with_1007() {
    let mut server = Server::echo(Config::default()).await;
    let bytes = close_frame(1000, b"bye \xff");
    assert_eq!(close_code_for(server.addr(), &bytes).await, Some(1007));
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(end.protocol_error(), Some(ProtocolError::InvalidUtf8));
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn valid_codes_are_echoed_and_then_tcp_is_closed() {
    let mut server = Server::echo(Config::default()).await;
    for code in [1000, 1001, 1003, 1011, 3000, 4999] {
        // close_code_for also requires the TCP close that follows.
        let bytes = close_frame(code, "done ✓".as_bytes());
        assert_eq!(close_code_for(server.addr(), &bytes).await, Some(code));
        assert!(matches!(
            server.next_end(PATIENCE).await,
            Some(End::Closed(None))
        ));
    }
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn empty_close_is_answered_and_tcp_is_closed() {
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    raw.send(&client_frame(0x8, true, b"")).await.unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        // RFC 6455 §5.5.1 lets the answer carry a code or none.
        Event::Frame(f) => assert!(f.opcode == 0x8 && f.payload.len() != 1, "{f:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(raw.expect_eof(PATIENCE).await.unwrap());
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn nothing_after_the_close_frame_is_processed() {
    // RFC 6455 §5.5.1: after a close frame, no more data frames. A message sent after it
    // must not be echoed.
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let mut bytes = close_frame(1000, b"");
    bytes.extend(client_frame(0x1, true, b"too late"));
    raw.send(&bytes).await.unwrap();
    let mut frames = vec![];
    loop {
        match raw.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) => frames.push(f.opcode),
            Event::Eof => break,
            Event::Timeout => panic!("server kept the connection open"),
        }
    }
    assert_eq!(frames, [0x8]);
}
