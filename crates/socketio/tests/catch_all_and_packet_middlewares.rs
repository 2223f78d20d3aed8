//! Per-packet middlewares (Node's `socket.use`) see every incoming event first and can drop
//! it; catch-all handlers (`socket.onAny`) then see what passed; `onAnyOutgoing` listeners
//! see every emit. A socket that registers none of them works as before.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::Duration;

use iolite::{Args, Data, Event, SocketIo, SocketRef};
use iolite_ws::{ClientBuilder, Message, WebSocket};
use serde_json::Value;
use tokio::sync::mpsc;

type Ws = WebSocket<iolite_ws::MaybeTlsStream>;

async fn recv_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    loop {
        match tokio::time::timeout(wait, ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.as_str().to_owned()),
            Ok(Some(Ok(_))) => continue,
            Err(_) => return None,
            other => panic!("no text message: {other:?}"),
        }
    }
}

/// The next thing a hook reported, within 5 s.
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the hook was not called within 5 s")
        .unwrap()
}

/// A socket connected to `/` on `io`, past the CONNECT reply.
async fn connect(io: &SocketIo) -> Ws {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io = io.clone();
    tokio::spawn(async move { io.serve(listener).await });
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    let open = recv_text(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert!(open.starts_with('0'), "{open}");
    ws.send(Message::text("40")).unwrap();
    let connected = recv_text(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert!(connected.starts_with("40{"), "{connected}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_drop_events_before_catch_alls_and_outgoing_listeners_see_emits() {
    let io = SocketIo::new();
    let (seen_any, mut any_rx) = mpsc::unbounded_channel::<(String, Vec<Value>)>();
    let (seen_out, mut out_rx) = mpsc::unbounded_channel::<(String, Vec<Value>)>();
    let (seen_mw, mut mw_rx) = mpsc::unbounded_channel::<String>();
    io.ns("/", move |socket: SocketRef| {
        let (seen_any, seen_out, seen_mw) = (seen_any.clone(), seen_out.clone(), seen_mw.clone());
        async move {
            socket.use_packet(move |_, event, _| {
                let _ = seen_mw.send(event.to_owned());
                if event == "forbidden" {
                    Err("not allowed".into())
                } else {
                    Ok(())
                }
            });
            socket.on_any(move |Event(event): Event, Args(args): Args| {
                let seen_any = seen_any.clone();
                async move {
                    let _ = seen_any.send((event, args));
                }
            });
            socket.on_any_outgoing(move |event, args| {
                let _ = seen_out.send((event.to_owned(), args.to_vec()));
            });
            socket.on("echo", |s: SocketRef, Data(v): Data<Value>| async move {
                s.emit("echoed", &v).unwrap();
            });
            socket.on("forbidden", |s: SocketRef| async move {
                s.emit("should-not-happen", &()).unwrap();
            });
        }
    });
    let mut ws = connect(&io).await;

    ws.send(Message::text(r#"42["forbidden",1]"#)).unwrap();
    ws.send(Message::text(r#"42["echo","x"]"#)).unwrap();
    // Only the echo's reply comes back: the refused event reached no handler.
    assert_eq!(
        recv_text(&mut ws, Duration::from_secs(5)).await.unwrap(),
        r#"42["echoed","x"]"#
    );
    assert_eq!(recv_text(&mut ws, Duration::from_millis(200)).await, None);

    // The middleware saw both, in order; the catch-all only what it let through.
    assert_eq!(next(&mut mw_rx).await, "forbidden");
    assert_eq!(next(&mut mw_rx).await, "echo");
    assert_eq!(
        next(&mut any_rx).await,
        ("echo".to_owned(), vec![Value::from("x")])
    );
    assert!(
        any_rx.try_recv().is_err(),
        "the refused event reached onAny"
    );
    // The outgoing listener saw the one emit, with its arguments.
    assert_eq!(
        next(&mut out_rx).await,
        ("echoed".to_owned(), vec![Value::from("x")])
    );
    assert!(out_rx.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_without_hooks_handles_events() {
    let io = SocketIo::new();
    io.ns("/", |socket: SocketRef| async move {
        socket.on("echo", |s: SocketRef, Data(v): Data<Value>| async move {
            s.emit("echoed", &v).unwrap();
        });
    });
    let mut ws = connect(&io).await;
    ws.send(Message::text(r#"42["echo",{"n":1}]"#)).unwrap();
    assert_eq!(
        recv_text(&mut ws, Duration::from_secs(5)).await.unwrap(),
        r#"42["echoed",{"n":1}]"#
    );
}
