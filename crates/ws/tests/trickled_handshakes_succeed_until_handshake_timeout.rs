//! A request head that arrives one byte at a time is still a valid request; a client that
//! trickles forever is cut off by `handshake_timeout`, with no answer.

use std::time::{Duration, Instant};

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, End, Server, PATIENCE};
use iolite_test_support::raw::{status, upgrade_request, Event, RawClient};
use iolite_ws::{Config, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn request_sent_one_byte_at_a_time_succeeds() {
    let server = Server::echo(Config::default()).await;
    let mut raw = RawClient::connect(server.addr()).await.unwrap();
    for b in upgrade_request(&server.addr().to_string(), "/").bytes() {
        raw.send(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let head = raw.read_http_head(PATIENCE).await.unwrap();
    assert_eq!(status(&head), Some(101), "{head}");
    raw.send_frame(&FrameSpec::client(0x1, "slow but fine"))
        .await
        .unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!(f.payload, b"slow but fine"),
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[tokio::test]
async fn client_trickling_forever_is_cut_by_handshake_timeout() {
    let timeout = Duration::from_millis(200);
    let mut server = Server::echo(Config::default().handshake_timeout(timeout)).await;
    let mut raw = RawClient::connect(server.addr()).await.unwrap();
    let started = Instant::now();
    raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut rd, mut wr) = raw.stream.split();
    let mut answer = vec![];
    let cut = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // One more byte of a header that never ends. A failed write means the
                    // server has gone; the read below will say so.
                    let _ = wr.write_all(b"a").await;
                }
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), cut)
        .await
        .expect("the server must cut a trickling client off");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(150),
        "cut too early: {elapsed:?}"
    );
    assert!(answer.is_empty(), "no answer to a request never finished");
    assert!(matches!(
        server.next_end(PATIENCE).await,
        Some(End::Handshake(Error::HandshakeTimeout))
    ));
    assert_echo(server.addr()).await;
}
