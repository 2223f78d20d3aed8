//! A one-task `Connection` writes, pings and closes from inside `recv`, with no writer task:
//! everything a split `WebSocket` does with two tasks must still happen. Sends from other
//! tasks wake the reading task, keepalive and the close handshake run, bad input gets its
//! close code, a slow or flooding client is bounded, and a dropped connection still
//! delivers what was queued.

use std::time::{Duration, Instant};

use iolite_test_support::frames::{close_frame, FrameSpec};
use iolite_test_support::harness::{
    assert_echo, close_code_for, echo_connection, pair_one_task, socket_held, End, Server, PATIENCE,
};
use iolite_test_support::raw::Event;
use iolite_ws::{CloseCode, Config, Error, Limits, Message, SendError, SlowConsumer};

async fn released(server: std::net::SocketAddr, client: std::net::SocketAddr) -> bool {
    for _ in 0..200 {
        if !socket_held(server, client) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn echo_and_bad_input_get_the_same_answers_as_with_a_writer_task() {
    let config = Config::default().limits(Limits {
        max_message_size: 1 << 10,
        max_frame_payload: 1 << 10,
        ..Limits::default()
    });
    let mut server = Server::echo_one_task(config).await;
    assert_echo(server.addr()).await;
    // An unmasked client frame: 1002.
    let unmasked = FrameSpec::client(0x1, "x").unmasked().encode();
    assert_eq!(close_code_for(server.addr(), &unmasked).await, Some(1002));
    // Text that is not UTF-8: 1007.
    let bad_utf8 = FrameSpec::client(0x1, vec![0xff, 0xfe]).encode();
    assert_eq!(close_code_for(server.addr(), &bad_utf8).await, Some(1007));
    // One byte over the message limit: 1009.
    let big = FrameSpec::client(0x2, vec![0; (1 << 10) + 1]).encode();
    assert_eq!(close_code_for(server.addr(), &big).await, Some(1009));
    // The echo's connection ended cleanly, the three others with their errors.
    let mut failed = 0;
    for _ in 0..4 {
        match server.next_end(PATIENCE).await {
            Some(End::Closed(None)) => {}
            Some(End::Closed(Some(_))) => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(failed, 3);
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn sends_from_another_task_go_out_while_the_read_loop_waits() {
    let (conn, mut raw) = pair_one_task(Config::default()).await;
    let sender = conn.sender();
    let server = tokio::spawn(echo_connection(conn));
    // The read loop is parked on a silent socket; only the sender's wake-up can write.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let publisher = tokio::spawn(async move {
        for i in 0..200u32 {
            sender.send(Message::text(format!("m{i}"))).unwrap();
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        sender
    });
    for i in 0..200u32 {
        match raw.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) => assert_eq!((f.opcode, f.payload), (0x1, format!("m{i}").into())),
            other => panic!("message {i}: {other:?}"),
        }
    }
    let sender = publisher.await.unwrap();
    assert_eq!(sender.buffered_bytes(), 0);
    // And the echo of the client's own messages, in order after them.
    raw.send_frame(&FrameSpec::client(0x1, "ping me back"))
        .await
        .unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!(f.payload, b"ping me back"),
        other => panic!("{other:?}"),
    }
    raw.send(&close_frame(1000, b"")).await.unwrap();
    assert_eq!(raw.expect_close(PATIENCE).await.unwrap(), Some(1000));
    assert!(raw.expect_eof(PATIENCE).await.unwrap(), "server closes TCP");
    let end = tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
    assert!(end.is_none(), "clean close, got {end:?}");
}

#[tokio::test]
async fn keepalive_cuts_a_silent_peer_from_inside_recv() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .pong_timeout(Duration::from_millis(100));
    let (mut conn, mut raw) = pair_one_task(config).await;
    let started = Instant::now();
    let server = tokio::spawn(async move {
        let first = conn.recv().await.map(|r| r.map_err(|e| e.to_string()));
        (first, conn.recv().await.is_none())
    });
    let mut pings = 0;
    loop {
        match raw.next_event(Duration::from_secs(2)).await.unwrap() {
            Event::Frame(f) if f.opcode == 0x9 => pings += 1,
            Event::Frame(f) => panic!("unexpected frame {f:?}"),
            Event::Eof => break,
            Event::Timeout => panic!("a silent peer is still connected after 2 s"),
        }
    }
    let elapsed = started.elapsed();
    assert!(pings >= 1);
    assert!(
        elapsed >= Duration::from_millis(140) && elapsed < Duration::from_secs(1),
        "closed after {elapsed:?}, expected about 150 ms"
    );
    let (first, then_none) = server.await.unwrap();
    assert_eq!(first, Some(Err(Error::KeepaliveTimeout.to_string())));
    assert!(then_none);
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(40)))
        .pong_timeout(Duration::from_millis(80));
    let (conn, mut raw) = pair_one_task(config).await;
    let server = tokio::spawn(echo_connection(conn));
    let until = Instant::now() + Duration::from_millis(400);
    let mut pings = 0;
    while Instant::now() < until {
        match raw.next_event(until - Instant::now()).await.unwrap() {
            Event::Frame(f) if f.opcode == 0x9 => {
                pings += 1;
                raw.send_frame(&FrameSpec::client(0xa, f.payload))
                    .await
                    .unwrap();
            }
            Event::Timeout => break,
            other => panic!("the connection of a live peer ended: {other:?}"),
        }
    }
    assert!(pings >= 5, "only {pings} pings in 400 ms");
    assert!(!server.is_finished());
}

#[tokio::test]
async fn server_close_is_answered_then_tcp_closes_or_times_out() {
    // The peer answers: close frame, reply, the server closes TCP first.
    let (mut conn, mut raw) = pair_one_task(Config::default()).await;
    let sender = conn.sender();
    let server = tokio::spawn(async move {
        let mut seen = vec![];
        while let Some(m) = conn.recv().await {
            seen.push(m.map_err(|e| e.to_string()));
        }
        seen
    });
    sender.close(CloseCode::NORMAL, "bye").unwrap();
    let f = match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (f.close_code(), f.close_reason()),
        (Some(1000), Some("bye"))
    );
    assert!(matches!(
        sender.send(Message::text("late")),
        Err(SendError::Closed(_))
    ));
    raw.send(&close_frame(1000, b"")).await.unwrap();
    assert!(raw.expect_eof(PATIENCE).await.unwrap(), "server closes TCP");
    let seen = tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(matches!(seen[0], Ok(Message::Close(_))), "{seen:?}");

    // The peer never answers: TCP closes after close_timeout.
    let (mut conn, mut raw) =
        pair_one_task(Config::default().close_timeout(Duration::from_millis(200))).await;
    let sender = conn.sender();
    let server = tokio::spawn(async move { conn.recv().await.map(|r| r.is_ok()) });
    sender.close(CloseCode::NORMAL, "bye").unwrap();
    let sent = Instant::now();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!(f.close_code(), Some(1000)),
        other => panic!("{other:?}"),
    }
    assert!(raw.expect_eof(PATIENCE).await.unwrap());
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(1),
        "TCP closed {waited:?} after the close frame; close_timeout is 200 ms"
    );
    let got = tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(got, None | Some(false)), "{got:?}");
}

#[tokio::test]
async fn a_dropped_connection_delivers_what_was_queued_then_closes() {
    let (conn, mut raw) = pair_one_task(Config::default().max_queued_bytes(16 << 20)).await;
    conn.send(Message::text("one")).unwrap();
    conn.send(Message::binary(vec![2; 3])).unwrap();
    // Large enough that the socket cannot take it at once: the rest goes out from a task
    // of its own once the client reads.
    assert!(conn.send(Message::binary(vec![3; 8 << 20])).is_ok());
    drop(conn);
    let mut got = vec![];
    for _ in 0..4 {
        match raw.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) => got.push((f.opcode, f.payload.len(), f.payload.first().copied())),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            (0x1, 3, Some(b'o')),
            (0x2, 3, Some(2)),
            (0x2, 8 << 20, Some(3)),
            (0x8, 2, Some(0x03))
        ]
    );
    assert!(raw.expect_eof(PATIENCE).await.unwrap(), "server closes TCP");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1008_and_let_go() {
    let config = Config::default()
        .max_queued_bytes(256 << 10)
        .slow_consumer(SlowConsumer::Close(CloseCode::POLICY))
        .ping_interval(None)
        .close_timeout(Duration::from_millis(200));
    let (mut conn, raw) = pair_one_task(config).await;
    let (server_addr, client_addr) = (raw.stream.peer_addr().unwrap(), raw.local_addr().unwrap());
    let sender = conn.sender();
    let server =
        tokio::spawn(async move { conn.recv().await.map(|r| r.map_err(|e| e.to_string())) });
    let fill = async {
        for i in 0.. {
            match sender.send(Message::binary(vec![i as u8; 64 << 10])) {
                Ok(()) => tokio::task::yield_now().await,
                Err(e) => return (i, e),
            }
        }
        unreachable!()
    };
    let (queued, err) = tokio::time::timeout(PATIENCE, fill).await.unwrap();
    assert!(matches!(err, SendError::QueueFull(_)), "{err:?}");
    assert!(
        queued > 4,
        "the socket buffers took something first ({queued})"
    );
    let got = tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Some(Err(Error::SlowConsumer.to_string())));
    assert!(sender.is_closed());
    // The client never reads: the server still lets go of the socket.
    drop(sender);
    assert!(
        released(server_addr, client_addr).await,
        "socket still held"
    );
    drop(raw);
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_keeps_one_pong() {
    let (conn, mut raw) = pair_one_task(Config::default()).await;
    let sender = conn.sender();
    let server = tokio::spawn(echo_connection(conn));
    let ping = FrameSpec::client(0x9, vec![b'p'; 125]).encode();
    let flood = ping.repeat(100_000);
    tokio::time::timeout(Duration::from_secs(20), raw.send(&flood))
        .await
        .expect("the server stopped reading the flood")
        .unwrap();
    // 12.7 MB of pongs were owed; what waits is what the socket did not take, plus one.
    let queued = sender.buffered_bytes();
    assert!(queued < 64 << 10, "{queued} bytes queued");
    assert!(!server.is_finished());
}
