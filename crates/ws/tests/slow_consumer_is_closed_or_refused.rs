//! A client that does not read while the server sends: the send queue is bounded by
//! `max_queued_bytes`, and `slow_consumer` decides what happens past it: close the
//! connection (1008) or refuse the message and hand it back. `Sender::drained` is the
//! backpressure signal for a client that does catch up.

use std::time::Duration;

use iolite_test_support::harness::{assert_echo, socket_held, Server, PATIENCE};
use iolite_test_support::raw::{Event, RawClient};
use iolite_ws::{CloseCode, Config, Error, Message, SendError, Sender, SlowConsumer};

const CHUNK: usize = 64 << 10;

fn config(policy: SlowConsumer) -> Config {
    Config::default()
        .max_queued_bytes(256 << 10)
        .slow_consumer(policy)
        .ping_interval(None)
        .close_timeout(Duration::from_millis(200))
}

fn chunk(i: usize) -> Message {
    Message::binary(vec![(i % 251) as u8; CHUNK])
}

/// Sends 64 KiB messages, letting the writer run between them, until a send fails: the
/// socket buffers fill first, then the queue. Returns how many were queued and the error.
async fn send_until_full(sender: &Sender) -> (usize, SendError) {
    let fill = async {
        for i in 0.. {
            match sender.send(chunk(i)) {
                Ok(()) => tokio::task::yield_now().await,
                Err(e) => return (i, e),
            }
        }
        unreachable!()
    };
    tokio::time::timeout(PATIENCE, fill)
        .await
        .expect("the send queue never filled")
}

/// Reads `n` data frames; checks each is the `i`th chunk.
async fn read_chunks(raw: &mut RawClient, n: usize) {
    for i in 0..n {
        match raw.next_event(PATIENCE).await.expect("read a message") {
            Event::Frame(f) => {
                assert_eq!((f.opcode, f.payload.len()), (0x2, CHUNK), "message {i}");
                assert!(
                    f.payload.iter().all(|&b| b == (i % 251) as u8),
                    "message {i}"
                );
            }
            other => panic!("message {i} of {n}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn close_policy_disconnects_a_client_that_does_not_read() {
    let (server, mut taken) =
        Server::echo_and_hand_over(config(SlowConsumer::Close(CloseCode::POLICY))).await;
    let mut raw = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let (sender, mut receiver) = taken.recv().await.unwrap().split();

    let (queued, err) = send_until_full(&sender).await;
    assert!(matches!(err, SendError::QueueFull(_)), "{err:?}");
    assert!(queued > 4, "the socket buffers took something first");
    let got = tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap();
    assert!(matches!(got, Some(Err(Error::SlowConsumer))), "{got:?}");
    assert!(sender.is_closed());
    assert!(matches!(
        sender.send(Message::text("late")),
        Err(SendError::Closed(_))
    ));

    // Reading at last, the client finds what was already written, then close 1008.
    assert_eq!(raw.expect_close(PATIENCE).await.unwrap(), Some(1008));
    assert!(raw.expect_eof(PATIENCE).await.unwrap());
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn close_policy_lets_go_of_a_client_that_never_reads() {
    // The slow consumer never reads again, so nothing more can be written to it: the
    // server must still let go of the socket (here within close_timeout and a margin)
    // rather than keep a writer blocked on it forever.
    let (server, mut taken) =
        Server::echo_and_hand_over(config(SlowConsumer::Close(CloseCode::POLICY))).await;
    let raw = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let client_addr = raw.local_addr().unwrap();
    let (sender, mut receiver) = taken.recv().await.unwrap().split();
    let (_, err) = send_until_full(&sender).await;
    assert!(matches!(err, SendError::QueueFull(_)), "{err:?}");
    let got = tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .unwrap();
    assert!(matches!(got, Some(Err(Error::SlowConsumer))), "{got:?}");
    assert!(socket_held(server.addr(), client_addr));
    drop((sender, receiver));

    let mut released = false;
    for _ in 0..100 {
        if !socket_held(server.addr(), client_addr) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        released,
        "1 s after closing a slow consumer the server still holds its socket"
    );
    assert_echo(server.addr()).await;
    drop(raw);
}

#[tokio::test]
async fn reject_policy_hands_the_message_back_and_stays_open() {
    let (server, mut taken) = Server::echo_and_hand_over(config(SlowConsumer::Reject)).await;
    let mut raw = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let (sender, mut receiver) = taken.recv().await.unwrap().split();
    let server_reads = tokio::spawn(async move { receiver.recv().await.map(|r| r.is_ok()) });

    let (queued, err) = send_until_full(&sender).await;
    match err {
        SendError::QueueFull(msg) => assert_eq!(msg, chunk(queued), "the refused message"),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    // Refusing again does not close anything either.
    assert!(matches!(
        sender.send(chunk(queued)),
        Err(SendError::QueueFull(_))
    ));
    assert!(!sender.is_closed());
    assert!(sender.buffered_bytes() > 0);

    // The client catches up: every queued message arrives, and sending works again.
    read_chunks(&mut raw, queued).await;
    tokio::time::timeout(PATIENCE, sender.drained())
        .await
        .unwrap();
    sender.send(Message::text("after")).unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!(f.payload, b"after"),
        other => panic!("{other:?}"),
    }
    assert!(!server_reads.is_finished(), "the connection stayed open");
    assert_echo(server.addr()).await;
}

#[tokio::test]
async fn drained_completes_once_a_reading_client_catches_up() {
    let (server, mut taken) = Server::echo_and_hand_over(config(SlowConsumer::Reject)).await;
    let mut raw = RawClient::handshake_path(server.addr(), "/take")
        .await
        .unwrap();
    let (sender, _receiver) = taken.recv().await.unwrap().split();
    let (queued, _) = send_until_full(&sender).await;

    // Nobody reads: drained must not complete.
    let early = tokio::time::timeout(Duration::from_millis(100), sender.drained()).await;
    assert!(
        early.is_err(),
        "drained completed with {} bytes queued",
        sender.buffered_bytes()
    );

    let reader = tokio::spawn(async move {
        read_chunks(&mut raw, queued).await;
        raw
    });
    tokio::time::timeout(PATIENCE, sender.drained())
        .await
        .expect("drained once the client read everything");
    assert_eq!(sender.buffered_bytes(), 0);
    reader.await.unwrap();
}
