//! A message of a million 1-byte fragments: each costs the sender 7 bytes and the server a
//! frame's worth of work, so the count is bounded by `max_fragments` (default 131,072).
//! Past it: 1009. With the limit raised, the same message completes.

use std::time::{Duration, Instant};

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, close_code_for, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{Config, Limits, ProtocolError};

const FRAGMENTS: usize = 1_000_000;

/// The message's bytes, built once: a binary start and continuations, the last one final,
/// each carrying one byte of a counting pattern.
fn million_fragments() -> Vec<u8> {
    let first = FrameSpec::client(0x2, [0u8]).fin(false).encode();
    let cont = FrameSpec::client(0x0, [0u8]).fin(false).encode();
    let last = FrameSpec::client(0x0, [0u8]).encode();
    let frame_len = cont.len();
    let mask = [cont[2], cont[3], cont[4], cont[5]];
    let mut bytes = Vec::with_capacity(frame_len * FRAGMENTS);
    for i in 0..FRAGMENTS {
        let mut f = match i {
            0 => first.clone(),
            _ if i + 1 == FRAGMENTS => last.clone(),
            _ => cont.clone(),
        };
        // The one payload byte is the 0th of the mask cycle.
        f[frame_len - 1] = (i % 251) as u8 ^ mask[0];
        bytes.extend_from_slice(&f);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_closes_with_1009_once_the_count_passes_it() {
    assert_eq!(Limits::default().max_fragments, 131_072);
    let mut server = Server::echo(Config::default()).await;
    let bytes = million_fragments();
    let started = Instant::now();
    assert_eq!(close_code_for(server.addr(), &bytes).await, Some(1009));
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(
        end.protocol_error(),
        Some(ProtocolError::TooManyFragments { max: 131_072 })
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_echo(server.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raised_limit_lets_the_message_complete() {
    let limits = Limits::default().max_fragments(FRAGMENTS);
    let server = Server::echo(Config::default().limits(limits)).await;
    let bytes = million_fragments();
    let mut raw = RawClient::handshake(server.addr()).await.unwrap();
    let started = Instant::now();
    raw.send(&bytes).await.unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => {
            assert_eq!((f.opcode, f.payload.len()), (0x2, FRAGMENTS));
            assert!(f
                .payload
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8));
        }
        other => panic!("expected the reassembled message, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
