//! RFC 6455 §7.1: the server starts the close handshake with a code and reason, the client
//! answers, and the server closes TCP first. A client that never answers is cut off
//! after `close_timeout`.

use std::time::{Duration, Instant};

use iolite_test_support::frames::close_frame;
use iolite_test_support::harness::{pair, PATIENCE};
use iolite_test_support::raw::Event;
use iolite_ws::{CloseCode, CloseFrame, Config, Error, Message, SendError};

#[tokio::test]
async fn close_1000_bye_is_answered_and_the_server_closes_tcp() {
    let (ws, mut raw) = pair(Config::default()).await;
    let (sender, mut receiver) = ws.split();
    let server_reads = tokio::spawn(async move {
        let mut seen = vec![];
        while let Some(m) = receiver.recv().await {
            seen.push(m.map_err(|e| e.to_string()));
        }
        seen
    });

    sender.close(CloseCode::NORMAL, "bye").unwrap();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => {
            assert_eq!(f.opcode, 0x8);
            assert_eq!(f.close_code(), Some(1000));
            assert_eq!(f.close_reason(), Some("bye"));
        }
        other => panic!("expected the close frame, got {other:?}"),
    }
    // Nothing may be sent after a close.
    assert!(matches!(
        sender.send(Message::text("late")),
        Err(SendError::Closed(_))
    ));
    raw.send(&close_frame(1000, b"")).await.unwrap();
    assert!(raw.expect_eof(PATIENCE).await.unwrap(), "server closes TCP");
    let seen = tokio::time::timeout(PATIENCE, server_reads)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen,
        [Ok(Message::Close(Some(CloseFrame::new(
            CloseCode::NORMAL,
            ""
        ))))]
    );
}

#[tokio::test]
async fn messages_queued_before_the_close_are_delivered_first() {
    let (ws, mut raw) = pair(Config::default()).await;
    ws.send(Message::text("one")).unwrap();
    ws.send(Message::binary(vec![2; 3])).unwrap();
    ws.sender().close(CloseCode::GOING_AWAY, "restart").unwrap();
    let mut got = vec![];
    for _ in 0..3 {
        match raw.next_event(PATIENCE).await.unwrap() {
            Event::Frame(f) => got.push((f.opcode, f.payload)),
            other => panic!("{other:?}"),
        }
    }
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"restart");
    assert_eq!(
        got,
        [(0x1, b"one".to_vec()), (0x2, vec![2; 3]), (0x8, close)]
    );
    drop(ws);
}

#[tokio::test]
async fn client_that_never_answers_is_cut_after_close_timeout() {
    let close_timeout = Duration::from_millis(200);
    let (ws, mut raw) = pair(Config::default().close_timeout(close_timeout)).await;
    let (sender, mut receiver) = ws.split();
    let server_reads = tokio::spawn(async move { receiver.recv().await });
    sender.close(CloseCode::NORMAL, "bye").unwrap();
    let sent = Instant::now();
    match raw.next_event(PATIENCE).await.unwrap() {
        Event::Frame(f) => assert_eq!(f.close_code(), Some(1000)),
        other => panic!("expected the close frame, got {other:?}"),
    }
    // The client says nothing and keeps the socket open.
    assert!(raw.expect_eof(PATIENCE).await.unwrap());
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(1),
        "TCP closed {waited:?} after the close frame; close_timeout is 200 ms"
    );
    let got = tokio::time::timeout(PATIENCE, server_reads)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(got, Some(Err(Error::AbnormalClosure)) | None),
        "{got:?}"
    );
}
