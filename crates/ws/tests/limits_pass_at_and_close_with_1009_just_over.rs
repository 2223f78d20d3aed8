//! Every frame and message limit, crossed by one byte (or one fragment): exactly at the
//! limit the message is echoed, one past it the connection is closed with 1009. Limits
//! are shrunk so each case is a few KiB.

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, close_code_on, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{Config, DeflateConfig, Limits, ProtocolError};
use iolite_ws_proto::{Deflater, Inflater};

/// Offered on every connection: servers without deflate ignore it.
const DEFLATE: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

/// Sends `frames`, returns the payload of the data message echoed back (inflated if the
/// server compressed it).
async fn echo_of(raw: &mut RawClient, frames: &[FrameSpec]) -> Vec<u8> {
    let bytes: Vec<u8> = frames.iter().flat_map(FrameSpec::encode).collect();
    raw.send(&bytes).await.expect("send frames");
    loop {
        match raw.next_event(PATIENCE).await.expect("read the echo") {
            Event::Frame(f) if f.opcode == 0x1 || f.opcode == 0x2 => {
                assert!(f.fin, "the server sends small messages in one frame");
                if !f.rsv1 {
                    return f.payload;
                }
                let mut out = Vec::new();
                Inflater::new()
                    .inflate(&f.payload, true, &mut out, 16 << 20)
                    .expect("the server's compressed echo inflates");
                return out.to_vec();
            }
            Event::Frame(f) if f.opcode == 0x9 => {}
            other => panic!("expected an echo, got {other:?}"),
        }
    }
}

/// Fragments `payload` into frames of the given sizes (a binary start, continuations).
fn fragments(payload: &[u8], sizes: &[usize]) -> Vec<FrameSpec> {
    let mut rest = payload;
    let mut out = vec![];
    for (i, &n) in sizes.iter().enumerate() {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let opcode = if i == 0 { 0x2 } else { 0x0 };
        out.push(FrameSpec::client(opcode, chunk).fin(i + 1 == sizes.len()));
    }
    assert!(rest.is_empty());
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn assert_1009(server: &mut Server, frames: &[FrameSpec], want: ProtocolError) {
    let (mut raw, _) = RawClient::handshake_with(server.addr(), "/", DEFLATE)
        .await
        .expect("raw handshake");
    let bytes: Vec<u8> = frames.iter().flat_map(FrameSpec::encode).collect();
    assert_eq!(close_code_on(&mut raw, &bytes).await, Some(1009));
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(end.protocol_error(), Some(want));
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn max_frame_payload() {
    let limits = Limits::default().max_frame_payload(1024);
    let mut server = Server::echo(Config::default().limits(limits)).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let at = pattern(1024);
    assert_eq!(
        echo_of(&mut raw, &[FrameSpec::client(0x2, &at[..])]).await,
        at
    );
    let over = FrameSpec::client(0x2, pattern(1025));
    let want = ProtocolError::FrameTooLarge {
        len: 1025,
        max: 1024,
    };
    assert_1009(&mut server, &[over], want).await;
}

#[tokio::test]
async fn max_frame_payload_applies_to_each_fragment() {
    let limits = Limits::default().max_frame_payload(1024);
    let mut server = Server::echo(Config::default().limits(limits)).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let at = pattern(3072);
    assert_eq!(echo_of(&mut raw, &fragments(&at, &[1024; 3])).await, at);
    let over = fragments(&pattern(2049), &[1024, 1025]);
    let want = ProtocolError::FrameTooLarge {
        len: 1025,
        max: 1024,
    };
    assert_1009(&mut server, &over, want).await;
}

#[tokio::test]
async fn max_message_size_across_fragments() {
    let limits = Limits::default().max_message_size(1000);
    let mut server = Server::echo(Config::default().limits(limits)).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let at = pattern(1000);
    assert_eq!(
        echo_of(&mut raw, &fragments(&at, &[400, 400, 200])).await,
        at
    );
    let over = fragments(&pattern(1001), &[400, 400, 201]);
    assert_1009(
        &mut server,
        &over,
        ProtocolError::MessageTooLarge { max: 1000 },
    )
    .await;
}

#[tokio::test]
async fn max_message_size_in_one_frame() {
    let limits = Limits::default().max_message_size(1000);
    let mut server = Server::echo(Config::default().limits(limits)).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let at = pattern(1000);
    assert_eq!(
        echo_of(&mut raw, &[FrameSpec::client(0x2, &at[..])]).await,
        at
    );
    let over = FrameSpec::client(0x2, pattern(1001));
    assert_1009(
        &mut server,
        &[over],
        ProtocolError::MessageTooLarge { max: 1000 },
    )
    .await;
}

#[tokio::test]
async fn max_fragments() {
    let limits = Limits::default().max_fragments(4);
    let mut server = Server::echo(Config::default().limits(limits)).await;
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let at = pattern(40);
    assert_eq!(echo_of(&mut raw, &fragments(&at, &[10; 4])).await, at);
    let over = fragments(&pattern(50), &[10; 5]);
    assert_1009(
        &mut server,
        &over,
        ProtocolError::TooManyFragments { max: 4 },
    )
    .await;
}

#[tokio::test]
async fn max_inflated_size() {
    const LIMIT: usize = 64 << 10;
    let limits = Limits::default().max_inflated_size(LIMIT);
    let config = Config::default()
        .limits(limits)
        .deflate(Some(DeflateConfig::default()));
    let mut server = Server::echo(config).await;
    let (mut raw, head) = RawClient::handshake_with(server.addr(), "/", DEFLATE)
        .await
        .unwrap();
    assert!(head.contains("permessage-deflate"), "{head}");
    // Compressible but not trivially so: the compressed frames are a few KiB.
    let compressed = |len: usize| {
        let data = pattern(len);
        let payload = Deflater::new(15, 6, true).compress(&data);
        assert!(payload.len() < len / 4, "the test data compresses");
        (data, FrameSpec::client(0x2, &payload[..]).rsv(0b100))
    };
    let (at, frame) = compressed(LIMIT);
    assert_eq!(echo_of(&mut raw, &[frame]).await, at);
    let (_, over) = compressed(LIMIT + 1);
    assert_1009(
        &mut server,
        &[over],
        ProtocolError::InflatedTooLarge { max: LIMIT },
    )
    .await;
}

#[tokio::test]
async fn max_inflated_size_across_fragments() {
    // A compressed message split over three frames: only RSV1 on the first (RFC 7692 §6.1).
    const LIMIT: usize = 64 << 10;
    let limits = Limits::default().max_inflated_size(LIMIT);
    let config = Config::default()
        .limits(limits)
        .deflate(Some(DeflateConfig::default()));
    let mut server = Server::echo(config).await;
    let (mut raw, _) = RawClient::handshake_with(server.addr(), "/", DEFLATE)
        .await
        .unwrap();
    let split = |len: usize| {
        let data = pattern(len);
        let payload = Deflater::new(15, 6, true).compress(&data);
        let third = payload.len() / 3;
        let mut frames = fragments(&payload, &[third, third, payload.len() - 2 * third]);
        frames[0] = frames[0].clone().rsv(0b100);
        (data, frames)
    };
    let (at, frames) = split(LIMIT);
    assert_eq!(echo_of(&mut raw, &frames).await, at);
    let (_, over) = split(LIMIT + 1);
    assert_1009(
        &mut server,
        &over,
        ProtocolError::InflatedTooLarge { max: LIMIT },
    )
    .await;
}
