//! A deflate bomb: a ~1 MiB compressed frame that would inflate to 1 GiB of zeros (deflate
//! tops out near 1032:1, so this is as small as a gigabyte gets). With max_inflated_size
//! 1 MiB the server stops inflating at the limit, closes with 1009, and its memory grows
//! by about the limit, not the gigabyte.
//!
//! One test in this file: it measures the process's memory, so nothing else may run in
//! this test binary at the same time.

use iolite_test_support::frames::{deflate_bomb, FrameSpec};
use iolite_test_support::harness::{assert_echo, close_code_on, rss_bytes, Server, PATIENCE};
use iolite_test_support::raw::RawClient;
use iolite_ws::{Config, DeflateConfig, Limits, ProtocolError};
use iolite_ws_proto::Inflater;

#[tokio::test]
async fn deflate_bomb_is_stopped_at_max_inflated_size() {
    // The hand-built stream is real deflate: a small one inflates to exactly its size.
    let mut out = Vec::new();
    Inflater::new()
        .inflate(&deflate_bomb(100_000), true, &mut out, 1 << 20)
        .unwrap();
    assert_eq!(out.len(), 100_000);
    assert!(out.iter().all(|&b| b == 0));

    let bomb = deflate_bomb(1 << 30);
    assert!(bomb.len() < 1100 << 10, "{} bytes", bomb.len());
    let frame = FrameSpec::client(0x2, bomb).rsv(0b100).encode();

    let limits = Limits::default().max_inflated_size(1 << 20);
    let config = Config::default()
        .limits(limits)
        .deflate(Some(DeflateConfig::default()));
    let mut server = Server::echo(config).await;
    let (mut raw, head) = RawClient::handshake_with(
        server.addr(),
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await
    .unwrap();
    assert!(head.contains("permessage-deflate"), "{head}");

    let before = rss_bytes();
    assert_eq!(close_code_on(&mut raw, &frame).await, Some(1009));
    let grown = rss_bytes().saturating_sub(before);
    let end = server.next_end(PATIENCE).await.expect("connection ended");
    assert_eq!(
        end.protocol_error(),
        Some(ProtocolError::InflatedTooLarge { max: 1 << 20 })
    );
    assert!(grown < 64 << 20, "RSS grew by {} MiB", grown >> 20);
    assert_echo(server.addr()).await;
}
