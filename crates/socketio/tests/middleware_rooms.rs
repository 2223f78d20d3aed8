//! A connect middleware can put the socket in rooms (Node: `socket.join` in `io.use`), and
//! a refused socket leaves no room behind.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::Duration;

use iolite::{ConnectError, SocketIo, SocketRef};
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

/// Serves `io` on a free port; the Engine.IO WebSocket URL.
async fn serve(io: &SocketIo) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io = io.clone();
    tokio::spawn(async move { io.serve(listener).await });
    format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
}

/// A WebSocket to `url` past the Engine.IO open packet.
async fn open(url: &str) -> Ws {
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    recv_text(&mut ws).await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_joined_in_a_middleware_hold_after_connect() {
    let io = SocketIo::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ns = io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket);
        }
    });
    ns.use_middleware(|s: SocketRef| async move {
        s.join("from-middleware");
        assert!(s.rooms().iter().any(|r| &**r == "from-middleware"));
        if s.handshake().auth().get("refuse").is_some() {
            return Err(ConnectError::new("no"));
        }
        Ok(())
    });
    let url = serve(&io).await;

    // Refused: the room it joined in the middleware does not exist afterwards.
    let mut ws = open(&url).await;
    ws.send(Message::text(r#"40{"refuse":true}"#)).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("44"));
    assert!(ns.rooms().iter().all(|r| &**r != "from-middleware"));

    let mut ws = open(&url).await;
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("40"));
    let socket = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(socket.rooms().iter().any(|r| &**r == "from-middleware"));
    io.to("from-middleware").emit("hi", &1).unwrap();
    assert_eq!(recv_text(&mut ws).await, r#"42["hi",1]"#);
}

/// A client may send an event as soon as it has the CONNECT reply, while the connect
/// handler, which registers the event handlers, still runs on another thread (here: a
/// middleware that awaits moves the connect to a task, and the handler takes 300 ms before
/// registering). The event waits for the handler, as in Node, instead of being lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_right_after_connect_reaches_the_handlers_the_connect_handler_registers() {
    let io = SocketIo::new();
    let ns = io.ns("/", |socket: SocketRef| async move {
        std::thread::sleep(Duration::from_millis(300));
        socket.on("ping", |ack: iolite::AckSender| async move {
            ack.send("pong").unwrap();
        });
    });
    ns.use_middleware(|_s: SocketRef| async move {
        tokio::task::yield_now().await;
        Ok(())
    });
    let url = serve(&io).await;

    for _ in 0..3 {
        let mut ws = open(&url).await;
        ws.send(Message::text("40")).unwrap();
        assert!(recv_text(&mut ws).await.starts_with("40"));
        ws.send(Message::text(r#"421["ping"]"#)).unwrap();
        assert_eq!(recv_text(&mut ws).await, r#"431["pong"]"#);
    }
}

/// Packets held for a connect handler that has not run yet are bounded: a client that
/// floods that window is cut off, and the next client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_before_the_connect_handler_ran_closes_that_connection_only() {
    let io = SocketIo::new();
    let ns = io.ns("/", |socket: SocketRef| async move {
        // A handler slow to register its handlers. `block_in_place` hands this worker's
        // other tasks to another thread; a bare sleep could also stall the session's reading
        // task when tokio had queued it on this worker (its not-stealable LIFO slot), and
        // the flood would only be read after the window.
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(500)));
        socket.on("ping", |ack: iolite::AckSender| async move {
            ack.send("pong").unwrap();
        });
    });
    ns.use_middleware(|_s: SocketRef| async move {
        tokio::task::yield_now().await;
        Ok(())
    });
    let url = serve(&io).await;

    let mut ws = open(&url).await;
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("40"));
    for _ in 0..1100 {
        ws.send(Message::text(r#"42["ping"]"#)).unwrap();
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.recv().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the flooding connection is closed");

    let mut ws = open(&url).await;
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("40"));
    ws.send(Message::text(r#"421["ping"]"#)).unwrap();
    assert_eq!(recv_text(&mut ws).await, r#"431["pong"]"#);
}

/// The sockets of one connection in two namespaces see the opening request's headers, held
/// once for the connection (not copied per socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_headers_are_shared_by_the_sockets_of_a_connection() {
    let io = SocketIo::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for name in ["/", "/admin"] {
        let tx = tx.clone();
        io.ns(name, move |socket: SocketRef| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(socket);
            }
        });
    }
    let url = format!("{}&x=1", serve(&io).await);
    let (mut ws, _) = ClientBuilder::new(url)
        .header("x-app", "chat")
        .connect()
        .await
        .unwrap();
    recv_text(&mut ws).await;
    ws.send(Message::text("40")).unwrap();
    ws.send(Message::text("40/admin,")).unwrap();
    let mut sockets = Vec::new();
    for _ in 0..2 {
        sockets.push(
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (a, b) = (sockets[0].handshake(), sockets[1].handshake());
    assert_eq!(a.headers()["x-app"], "chat");
    assert_eq!(a.headers(), b.headers());
    assert!(
        std::ptr::eq(&**a.headers(), &**b.headers()),
        "copied per socket"
    );
    assert!(a.url().ends_with("&x=1"), "{}", a.url());
    assert!(a.address().is_some_and(|addr| addr.ip().is_loopback()));
}

/// A second handler for an event replaces the first; other events keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_registered_again_replaces_the_earlier_one() {
    let io = SocketIo::new();
    io.ns("/", |socket: SocketRef| async move {
        socket.on("a", |s: SocketRef| async move {
            s.emit("got", &"first a").unwrap();
        });
        socket.on("b", |s: SocketRef| async move {
            s.emit("got", &"b").unwrap();
        });
        socket.on("a", |s: SocketRef| async move {
            s.emit("got", &"second a").unwrap();
        });
    });
    let url = serve(&io).await;
    let mut ws = open(&url).await;
    ws.send(Message::text("40")).unwrap();
    assert!(recv_text(&mut ws).await.starts_with("40"));
    ws.send(Message::text(r#"42["a"]"#)).unwrap();
    assert_eq!(recv_text(&mut ws).await, r#"42["got","second a"]"#);
    ws.send(Message::text(r#"42["b"]"#)).unwrap();
    assert_eq!(recv_text(&mut ws).await, r#"42["got","b"]"#);
}
