//! A frame header declaring 2^62 bytes with no body behind it is refused from the header
//! alone: close 1009 at once, and nothing is allocated for the declared size.
//!
//! One test in this file: it measures the process's memory, so nothing else may run in
//! this test binary at the same time.

use std::time::{Duration, Instant};

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, close_code_for, rss_bytes, Server, PATIENCE};
use iolite_ws::{Config, ProtocolError};

#[tokio::test]
async fn huge_declared_length_is_closed_with_1009_without_allocating() {
    let mut server = Server::echo(Config::default()).await;
    let before = rss_bytes();
    for opcode in [0x1, 0x2] {
        let header = FrameSpec::client(opcode, vec![])
            .declared_len(1 << 62)
            .encode();
        assert_eq!(
            header.len(),
            14,
            "2 + 8 bytes of length + 4 of mask, no payload"
        );
        let started = Instant::now();
        assert_eq!(close_code_for(server.addr(), &header).await, Some(1009));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "1009 must not wait for a body: {:?}",
            started.elapsed()
        );
        let end = server.next_end(PATIENCE).await.expect("connection ended");
        assert_eq!(
            end.protocol_error(),
            Some(ProtocolError::FrameTooLarge {
                len: 1 << 62,
                max: 16 << 20
            })
        );
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 4 << 20, "RSS grew by {grown} bytes");
    assert_echo(server.addr()).await;
}
