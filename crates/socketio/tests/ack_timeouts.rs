//! A client that never answers an ack must not make the server hold the request: after the
//! timeout (or when nobody waits any more) the socket has no pending ack left.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::Duration;

use iolite::{AckError, SocketIo, SocketRef};
use iolite_ws::{ClientBuilder, Message, WebSocket};

type Ws = WebSocket<iolite_ws::MaybeTlsStream>;

async fn recv_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text message: {other:?}"),
        }
    }
}

/// A server whose `/` sockets are handed to the test, and a raw client connected to it
/// that never answers anything.
async fn setup() -> (SocketRef, Ws, SocketIo) {
    let io = SocketIo::new();
    // The CONNECT reply goes out before the connect handler runs (as in Node), so the test
    // waits for the handler rather than for the reply.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io2 = io.clone();
    tokio::spawn(async move { io2.serve(listener).await });
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    recv_text(&mut ws).await; // open
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("40"));
    let socket = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    (socket, ws, io)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_ack_is_forgotten() {
    let (socket, mut ws, _io) = setup().await;
    let fut = socket
        .timeout(Duration::from_millis(50))
        .emit_with_ack("question", &1)
        .unwrap();
    assert_eq!(socket.pending_acks(), 1);
    assert!(recv_text(&mut ws).await.starts_with("420[\"question\""));
    assert_eq!(fut.await, Err(AckError::Timeout));
    assert_eq!(socket.pending_acks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_nobody_awaits_is_forgotten() {
    let (socket, _ws, _io) = setup().await;
    let fut = socket.emitter().emit_with_ack("question", &1).unwrap();
    assert_eq!(socket.pending_acks(), 1);
    drop(fut);
    assert_eq!(socket.pending_acks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_ack_timeout_forgets_the_silent_sockets() {
    let (socket, mut ws, io) = setup().await;
    let stream = io
        .broadcast()
        .timeout(Duration::from_millis(50))
        .emit_with_ack("question", &1)
        .unwrap();
    assert_eq!((stream.expected(), socket.pending_acks()), (1, 1));
    recv_text(&mut ws).await;
    let (err, got) = stream.collect().await.unwrap_err();
    assert_eq!((err, got.len()), (AckError::Timeout, 0));
    assert_eq!(socket.pending_acks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_ack_leaves_nothing_behind() {
    let (socket, mut ws, _io) = setup().await;
    let fut = socket
        .timeout(Duration::from_secs(5))
        .emit_with_ack("question", &1)
        .unwrap();
    let q = recv_text(&mut ws).await;
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    ws.send(Message::text(format!("43{id}[\"yes\"]"))).unwrap();
    assert_eq!(fut.await.unwrap().args, vec![serde_json::json!("yes")]);
    assert_eq!(socket.pending_acks(), 0);
}
