//! RFC 6455 §5 framing violations fail the connection with 1002 (protocol error), each
//! with its own typed error, and the server goes on serving everyone else.

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, close_code_for, Server, PATIENCE};
use iolite_ws::{Config, ProtocolError};

/// Sends `frames` on a fresh connection and expects close 1002 caused by `want`, then
/// an echo round trip for a well-behaved client on the same server.
async fn assert_closed_with_1002(frames: &[FrameSpec], want: ProtocolError) {
    let mut server = Server::echo(Config::default()).await;
    let bytes: Vec<u8> = frames.iter().flat_map(FrameSpec::encode).collect();
    assert_eq!(
        close_code_for(server.addr(), &bytes).await,
        Some(1002),
        "{want:?}"
    );
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(end.protocol_error(), Some(want));
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn unmasked_client_frame() {
    // RFC 6455 §5.1: a server MUST close the connection on an unmasked frame.
    let frame = FrameSpec::client(0x1, "hello").unmasked();
    assert_closed_with_1002(&[frame], ProtocolError::UnmaskedFrame).await;
}

#[tokio::test]
async fn rsv1_without_a_negotiated_extension() {
    // RFC 6455 §5.2: nonzero RSV bits with no extension defining them fail the connection.
    let frame = FrameSpec::client(0x1, "hello").rsv(0b100);
    assert_closed_with_1002(&[frame], ProtocolError::ReservedBits).await;
}

#[tokio::test]
async fn rsv2_without_a_negotiated_extension() {
    let frame = FrameSpec::client(0x2, "hello").rsv(0b010);
    assert_closed_with_1002(&[frame], ProtocolError::ReservedBits).await;
}

#[tokio::test]
async fn rsv3_without_a_negotiated_extension() {
    let frame = FrameSpec::client(0x2, "hello").rsv(0b001);
    assert_closed_with_1002(&[frame], ProtocolError::ReservedBits).await;
}

#[tokio::test]
async fn reserved_opcodes() {
    // RFC 6455 §5.2: 0x3-0x7 are reserved non-control opcodes, 0xB-0xF control ones.
    for opcode in (0x3..=0x7).chain(0xb..=0xf) {
        let frame = FrameSpec::client(opcode, "x");
        assert_closed_with_1002(&[frame], ProtocolError::ReservedOpcode(opcode)).await;
    }
}

#[tokio::test]
async fn fragmented_control_frame() {
    // RFC 6455 §5.5: control frames MUST NOT be fragmented.
    let frame = FrameSpec::client(0x9, "ping").fin(false);
    assert_closed_with_1002(&[frame], ProtocolError::FragmentedControlFrame).await;
}

#[tokio::test]
async fn control_frame_with_126_byte_payload() {
    // RFC 6455 §5.5: control frames carry at most 125 bytes.
    for opcode in [0x8, 0x9, 0xa] {
        let frame = FrameSpec::client(opcode, vec![b'a'; 126]);
        assert_closed_with_1002(&[frame], ProtocolError::ControlFrameTooLong).await;
    }
}

#[tokio::test]
async fn continuation_without_a_message_in_progress() {
    let frame = FrameSpec::client(0x0, "orphan");
    assert_closed_with_1002(&[frame], ProtocolError::UnexpectedContinuation).await;
}

#[tokio::test]
async fn new_data_frame_while_a_fragmented_message_is_in_progress() {
    // RFC 6455 §5.4: fragments of one message must not interleave with another message.
    for second in [0x1, 0x2] {
        let frames = [
            FrameSpec::client(0x1, "first half").fin(false),
            FrameSpec::client(second, "another message"),
        ];
        assert_closed_with_1002(&frames, ProtocolError::ExpectedContinuation).await;
    }
}

#[tokio::test]
async fn control_frames_between_fragments_are_fine() {
    // The counterpart of the case above: a ping in the middle of a fragmented message is
    // legal (RFC 6455 §5.4), so this must not be mistaken for an interleaved message.
    let server = Server::echo(Config::default()).await;
    let mut raw = iolite_test_support::raw::RawClient::handshake(server.addr())
        .await
        .unwrap();
    for f in [
        FrameSpec::client(0x1, "hel").fin(false),
        FrameSpec::client(0x9, "mid"),
        FrameSpec::client(0x0, "lo"),
    ] {
        raw.send_frame(&f).await.unwrap();
    }
    let mut got = vec![];
    while got.len() < 2 {
        match raw.next_event(PATIENCE).await.unwrap() {
            iolite_test_support::raw::Event::Frame(f) => got.push((f.opcode, f.payload)),
            other => panic!("expected pong and echo, got {other:?}"),
        }
    }
    assert_eq!(got, [(0xa, b"mid".to_vec()), (0x1, b"hello".to_vec())]);
}

#[tokio::test]
async fn length_with_the_most_significant_bit_set() {
    // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
    let frame = FrameSpec::client(0x2, vec![]).declared_len(1 << 63);
    assert_closed_with_1002(&[frame], ProtocolError::InvalidLength).await;
}
