//! Keepalive: the server pings every `ping_interval`; a peer that has not answered within
//! `pong_timeout` is cut off and `recv` says why. A peer that answers stays connected.

use std::time::{Duration, Instant};

use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, echo, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{Config, Error};

fn keepalive() -> Config {
    Config::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .pong_timeout(Duration::from_millis(100))
}

#[tokio::test]
async fn silent_peer_gets_keepalive_timeout_and_its_tcp_closed() {
    let (server, mut taken) = Server::echo_and_hand_over(keepalive()).await;
    let mut silent = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let mut ws = taken.recv().await.unwrap();
    let started = Instant::now();
    // The server's own view: recv ends with the keepalive error.
    let server_side = tokio::spawn(async move {
        let first = ws.recv().await;
        let keepalive = matches!(first, Some(Err(Error::KeepaliveTimeout)));
        (keepalive, format!("{first:?}"), ws.recv().await.is_none())
    });
    // The peer reads (to see what happens) but never answers a ping.
    let mut pings = 0;
    loop {
        match silent.next_event(Duration::from_secs(2)).await.unwrap() {
            Event::Frame(f) if f.opcode == 0x9 => pings += 1,
            Event::Frame(f) => panic!("unexpected frame {f:?}"),
            Event::Eof => break,
            Event::Timeout => panic!("a silent peer is still connected after 2 s"),
        }
    }
    let elapsed = started.elapsed();
    assert!(pings >= 1, "the server pinged before giving up");
    assert!(
        elapsed >= Duration::from_millis(140) && elapsed < Duration::from_secs(1),
        "closed after {elapsed:?}, expected about ping_interval + pong_timeout = 150 ms"
    );
    let (keepalive, first, then_none) = server_side.await.unwrap();
    assert!(keepalive, "recv returned {first}, not KeepaliveTimeout");
    assert!(then_none, "recv returns None after the error");
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn peer_that_answers_pings_stays_connected() {
    let (server, mut taken) = Server::echo_and_hand_over(keepalive()).await;
    let mut peer = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let ws = taken.recv().await.unwrap();
    let server_side = tokio::spawn(echo(ws));
    // Ten ping intervals, answering each ping with its pong.
    let until = Instant::now() + Duration::from_millis(500);
    let mut pings = 0;
    while Instant::now() < until {
        match peer.next_event(until - Instant::now()).await.unwrap() {
            Event::Frame(f) if f.opcode == 0x9 => {
                pings += 1;
                peer.send_frame(&FrameSpec::client(0xa, f.payload))
                    .await
                    .unwrap();
            }
            Event::Timeout => break,
            other => panic!("connection of a live peer ended: {other:?}"),
        }
    }
    assert!(pings >= 5, "only {pings} pings in 500 ms");
    assert!(!server_side.is_finished(), "server gave up on a live peer");
    peer.send_frame(&FrameSpec::client(0x1, "still here"))
        .await
        .unwrap();
    loop {
        match peer.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) if f.opcode == 0x9 => {}
            Event::Frame(f) => {
                assert_eq!(f.payload, b"still here");
                break;
            }
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_builder_answers_pings_on_its_own() {
    // The library's client answers pings while the application awaits recv.
    let server = Server::echo(keepalive()).await;
    let (mut ws, _) = iolite_ws::ClientBuilder::new(server.url())
        .connect()
        .await
        .unwrap();
    let idle = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match ws.recv().await {
                Some(Ok(iolite_ws::Message::Ping(_))) => {}
                other => return other,
            }
        }
    })
    .await;
    assert!(idle.is_err(), "connection ended while idle: {idle:?}");
    ws.send(iolite_ws::Message::text("hi")).unwrap();
    loop {
        match ws.recv().await {
            Some(Ok(iolite_ws::Message::Ping(_))) => {}
            other => {
                assert_eq!(other.unwrap().unwrap(), iolite_ws::Message::text("hi"));
                break;
            }
        }
    }
}

#[tokio::test]
async fn peer_that_stops_reading_mid_stream_is_cut_by_keepalive() {
    // A peer that vanished (or stopped reading) while the server had data for it: the
    // socket buffers fill and writes block. That is when keepalive matters most, so the
    // pong deadline must still apply; the queue limit is set high so it does not decide.
    let config = keepalive().max_queued_bytes(64 << 20);
    let (server, mut taken) = Server::echo_and_hand_over(config).await;
    let gone = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let gone_addr = gone.local_addr().unwrap();
    let (sender, mut receiver) = taken.recv().await.unwrap().split();
    let fill = async {
        let mut i = 0u8;
        while sender.buffered_bytes() < 1 << 20 {
            sender
                .send(iolite_ws::Message::binary(vec![i; 64 << 10]))
                .unwrap();
            i = i.wrapping_add(1);
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, fill)
        .await
        .expect("the socket buffers filled");
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(2), receiver.recv()).await;
    assert!(
        matches!(got, Ok(Some(Err(Error::KeepaliveTimeout)))),
        "2 s without a pong from a peer that does not read: recv gave {got:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    drop((sender, receiver));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!iolite_test_support::harness::socket_held(
        server.addr(),
        gone_addr
    ));
    assert_echo(server.addr()).await;
    drop(gone);
}
