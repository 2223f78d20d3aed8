//! RFC 6455 §8.1: text must be valid UTF-8, checked as the bytes arrive. Invalid text
//! fails the connection with 1007, without waiting for the end of the message.

use std::time::Duration;

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, close_code_for, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{Config, ProtocolError};

async fn assert_closed_with_1007(bytes: &[u8]) {
    let mut server = Server::echo(Config::default()).await;
    assert_eq!(close_code_for(server.addr(), bytes).await, Some(1007));
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(end.protocol_error(), Some(ProtocolError::InvalidUtf8));
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame() {
    let frame = FrameSpec::client(0x1, &b"hello \xff world"[..]);
    assert_closed_with_1007(&frame.encode()).await;
}

#[tokio::test]
async fn utf16_surrogate_in_a_text_frame() {
    // U+D800 encoded as if it were a scalar value: well-formed-looking, still invalid.
    let frame = FrameSpec::client(0x1, &b"a\xed\xa0\x80b"[..]);
    assert_closed_with_1007(&frame.encode()).await;
}

#[tokio::test]
async fn invalid_utf8_split_across_fragments() {
    // "€" is E2 82 AC: the first fragment ends inside it (fine so far), the next one
    // continues with a byte that is not a continuation byte.
    let bytes = [
        FrameSpec::client(0x1, &b"price: \xe2\x82"[..]).fin(false),
        FrameSpec::client(0x0, &b"( ok"[..]),
    ]
    .iter()
    .flat_map(FrameSpec::encode)
    .collect::<Vec<u8>>();
    assert_closed_with_1007(&bytes).await;
}

#[tokio::test]
async fn valid_utf8_split_across_fragments_is_echoed() {
    // The counterpart: a character split across frames is valid once complete.
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    raw.send_frame(&FrameSpec::client(0x1, &b"price: \xe2\x82"[..]).fin(false))
        .await
        .unwrap();
    raw.send_frame(&FrameSpec::client(0x0, &b"\xac 5"[..]))
        .await
        .unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!((f.opcode, f.payload), (0x1, "price: € 5".into())),
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[tokio::test]
async fn close_1007_arrives_before_the_final_fragment_is_sent() {
    // Fail fast: the first fragment holds an invalid byte; the rest is never sent, so
    // only a server validating as bytes arrive can answer.
    let first = FrameSpec::client(0x1, &b"ok \xc0\xaf"[..])
        .fin(false)
        .encode();
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    raw.send(&first).await.unwrap();
    let code = raw.expect_close(Duration::from_secs(2)).await.unwrap();
    assert_eq!(code, Some(1007));
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn close_1007_arrives_before_the_frame_is_complete() {
    // Within one frame: a 1000-byte text frame of which only the first 8 payload bytes
    // are sent, the fourth of them invalid.
    let mut payload = b"abc\xffdefg".to_vec();
    payload.resize(1000, b'x');
    let frame = FrameSpec::client(0x1, payload).encode();
    // Header: 2 bytes + 2 of extended length + 4 of mask.
    let partial = &frame[..8 + 8];
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    raw.send(partial).await.unwrap();
    let code = raw.expect_close(Duration::from_secs(2)).await.unwrap();
    assert_eq!(code, Some(1007));
    assert_echo(server.addr()).await;
}
