//! Who a broadcast reaches: one room, several rooms (each socket once), the namespace, and
//! with exceptions, both few (a sender's own room) and many (a whole room).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::Duration;

use iolite::{SocketIo, SocketRef};
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

/// The events each client got before the `end` marker sent to everyone after the
/// broadcast under test (deliveries to one client keep publish order).
async fn drain(io: &SocketIo, clients: &mut [Ws]) -> Vec<Vec<String>> {
    io.emit("end", &0).unwrap();
    let mut out = Vec::new();
    for ws in clients.iter_mut() {
        let mut got = Vec::new();
        loop {
            let t = recv_text(ws).await;
            if t == r#"42["end",0]"# {
                break;
            }
            if t.starts_with("42") || t.starts_with("41") {
                got.push(t);
            }
        }
        out.push(got);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_each_target_socket_once() {
    let io = SocketIo::new();
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

    // 24 clients: all in "all"; 0..20 in "many" (more than a short list of exceptions);
    // even ones in "a", multiples of 3 in "b".
    const N: usize = 24;
    let mut clients = Vec::new();
    let mut sockets = Vec::new();
    for i in 0..N {
        let (mut ws, _) = ClientBuilder::new(url.clone()).connect().await.unwrap();
        recv_text(&mut ws).await;
        ws.send(Message::text("40")).unwrap();
        assert!(recv_text(&mut ws).await.starts_with("40"));
        let s = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        s.join("all");
        if i < 20 {
            s.join("many");
        }
        if i % 2 == 0 {
            s.join("a");
        }
        if i % 3 == 0 {
            s.join("b");
        }
        clients.push(ws);
        sockets.push(s);
    }
    let got = |events: &[Vec<String>], i: usize| events[i].len();

    // Several rooms: a socket in both gets the event once.
    io.to("a").to("b").emit("ab", &1).unwrap();
    let ev = drain(&io, &mut clients).await;
    for i in 0..N {
        let want = usize::from(i % 2 == 0 || i % 3 == 0);
        assert_eq!(got(&ev, i), want, "client {i}: {:?}", ev[i]);
    }

    // A sender's own room excepted (`socket.to(room)`): everyone else in the room.
    sockets[0].to("all").emit("from0", &1).unwrap();
    let ev = drain(&io, &mut clients).await;
    for i in 0..N {
        assert_eq!(got(&ev, i), usize::from(i != 0), "client {i}: {:?}", ev[i]);
    }

    // A whole room of 20 excepted: only the other 4.
    io.to("all").except("many").emit("few", &1).unwrap();
    let ev = drain(&io, &mut clients).await;
    for i in 0..N {
        assert_eq!(got(&ev, i), usize::from(i >= 20), "client {i}: {:?}", ev[i]);
    }

    // The namespace, except a room and a socket.
    io.except("a")
        .except(sockets[1].id().as_str().to_owned())
        .emit("odd", &1)
        .unwrap();
    let ev = drain(&io, &mut clients).await;
    for i in 0..N {
        let want = usize::from(i % 2 == 1 && i != 1);
        assert_eq!(got(&ev, i), want, "client {i}: {:?}", ev[i]);
    }

    // Several rooms with many exceptions: in "a" or "b", not in "many".
    io.to("a")
        .to("b")
        .except("many")
        .emit("ab-few", &1)
        .unwrap();
    let ev = drain(&io, &mut clients).await;
    for i in 0..N {
        let want = usize::from(i >= 20 && (i % 2 == 0 || i % 3 == 0));
        assert_eq!(got(&ev, i), want, "client {i}: {:?}", ev[i]);
    }

    // A socket that left a room is no longer reached through it; one that disconnected is
    // reached through none.
    sockets[2].leave("a");
    sockets[4].disconnect();
    let mut gone = clients.remove(4);
    assert_eq!(recv_text(&mut gone).await, "41");
    io.to("a").emit("a-again", &1).unwrap();
    let ev = drain(&io, &mut clients).await;
    for (k, i) in (0..N).filter(|&i| i != 4).enumerate() {
        let want = usize::from(i % 2 == 0 && i != 2);
        assert_eq!(ev[k].len(), want, "client {i}: {:?}", ev[k]);
    }
    // Client 4 is gone: indexes past it moved down by one.
    let (clients, sockets) = (&mut clients, &mut sockets);
    sockets.remove(4);

    // A socket's own room: reached by its id, alone or with other rooms, once.
    let id0 = sockets[0].id().as_str().to_owned();
    let id1 = sockets[1].id().as_str().to_owned();
    io.to(id0.clone()).emit("own", &1).unwrap();
    io.to(id1.clone()).to("a").emit("own-or-a", &1).unwrap();
    let ev = drain(&io, clients).await;
    assert_eq!(ev[0].len(), 2, "{:?}", ev[0]); // own + own-or-a (0 is in "a")
    assert_eq!(ev[1].len(), 1, "{:?}", ev[1]);
    assert!(ev[2..].iter().enumerate().all(|(k, e)| {
        let i = k + 2;
        let i = if i >= 4 { i + 1 } else { i }; // the original index
        e.len() == usize::from(i % 2 == 0 && i != 2)
    }));
    // It is one of its rooms, and of the namespace's.
    assert!(sockets[0].rooms().iter().any(|r| **r == *id0));
    assert!(io.of("/").unwrap().rooms().iter().any(|r| **r == *id0));
    // Excepted by id among a room.
    io.to("all").except(id0.clone()).emit("not-0", &1).unwrap();
    let ev = drain(&io, clients).await;
    assert!(ev[0].is_empty(), "{:?}", ev[0]);
    assert!(ev[1..].iter().all(|e| e.len() == 1));
    // Another socket joining a room named like socket 0's id shares it; socket 0 leaving
    // its own room is no longer reached by its id, the other one still is.
    sockets[1].join(id0.clone());
    io.to(id0.clone()).emit("shared", &1).unwrap();
    let ev = drain(&io, clients).await;
    assert_eq!((ev[0].len(), ev[1].len()), (1, 1), "{:?}", &ev[..2]);
    sockets[0].leave(&id0);
    assert!(!sockets[0].rooms().iter().any(|r| **r == *id0));
    io.to(id0.clone()).emit("left", &1).unwrap();
    let ev = drain(&io, clients).await;
    assert_eq!((ev[0].len(), ev[1].len()), (0, 1), "{:?}", &ev[..2]);
}
