//! A ping flood from a client that never reads: every ping is owed a pong, but once the
//! server's writes block, at most one pong waits (RFC 6455 §5.5.3 lets a pong answer only
//! the latest ping). The server keeps reading, its memory stays flat, other clients are
//! served, and the flooder can go away without harm.
//!
//! One test in this file: it measures the process's memory, so nothing else may run in
//! this test binary at the same time.

use std::time::Duration;

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, rss_bytes, socket_held, End, Server, PATIENCE};
use iolite_test_support::raw::RawClient;
use iolite_ws::Config;

const PINGS: usize = 200_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_from_a_client_that_never_reads_is_bounded() {
    let mut server = Server::echo(Config::default()).await;
    // 125-byte pings: 26 MB on the wire and 25 MB of pongs owed, so a queue that kept
    // every pong would show up plainly.
    let ping = FrameSpec::client(0x9, vec![b'p'; 125]).encode();
    let flood = ping.repeat(PINGS);
    let mut flooder = RawClient::handshake(server.addr()).await.unwrap();
    let flooder_addr = flooder.local_addr().unwrap();
    let before = rss_bytes();

    // The server must keep reading even though none of its pongs can be delivered.
    tokio::time::timeout(Duration::from_secs(20), flooder.send(&flood))
        .await
        .expect("the server stopped reading the flood")
        .unwrap();
    // Other clients are served while the flooder is still connected.
    assert_echo(server.addr()).await;
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 16 << 20, "RSS grew by {} MiB", grown >> 20);

    // The flooder goes away without reading: the server lets go of the connection.
    assert!(
        socket_held(server.addr(), flooder_addr),
        "server still holds it"
    );
    drop(flooder);
    match server.next_end(PATIENCE).await {
        Some(End::Closed(_)) => {}
        other => panic!("the flooder's connection did not end: {other:?}"),
    }
    for _ in 0..100 {
        if !socket_held(server.addr(), flooder_addr) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!socket_held(server.addr(), flooder_addr));
    assert_echo(server.addr()).await;
}
