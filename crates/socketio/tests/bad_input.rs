//! Malformed and hostile input over a raw WebSocket: each gets what Node's socket.io
//! answers (the connection is closed, or a CONNECT_ERROR), and another client, connected
//! the whole time, keeps being served.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::Duration;

use iolite::{AckSender, Args, SocketIo, SocketRef};
use iolite_test_support::raw::{engine_sid, http_request};
use iolite_ws::{ClientBuilder, Message, WebSocket};

async fn server() -> u16 {
    echo_server(SocketIo::builder().max_payload(10_000).build()).await
}

/// Serves `io` on a free port with an `echo` handler (answered by ack) on `/`.
async fn echo_server(io: SocketIo) -> u16 {
    io.ns("/", |socket: SocketRef| async move {
        socket.on("echo", |Args(args): Args, ack: AckSender| async move {
            let _ = ack.send_args(args);
        });
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { io.serve(listener).await });
    port
}

type Ws = WebSocket<iolite_ws::MaybeTlsStream>;

async fn recv_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no answer within 5 s"),
        }
    }
}

/// A raw Engine.IO WebSocket session, connected to `/`.
async fn connected(port: u16) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    let open = recv_text(&mut ws).await.unwrap();
    assert!(open.starts_with("0{\"sid\""), "{open}");
    ws.send(Message::text("40")).unwrap();
    let ok = recv_text(&mut ws).await.unwrap();
    assert!(ok.starts_with("40{\"sid\""), "{ok}");
    ws
}

/// Whether the server closes the connection (answering nothing else first but pings).
async fn closed(ws: &mut Ws) -> bool {
    loop {
        match recv_text(ws).await {
            None => return true,
            Some(t) if t == "2" => continue,
            Some(other) => panic!("expected the connection to close, got {other:?}"),
        }
    }
}

async fn still_served(ws: &mut Ws, n: u32) {
    ws.send(Message::text(format!("42{n}[\"echo\",{n}]")))
        .unwrap();
    assert_eq!(recv_text(ws).await.unwrap(), format!("43{n}[{n}]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_socketio_packets_close_only_their_connection() {
    let port = server().await;
    let mut bystander = connected(port).await;
    // Each is refused by socket.io-parser; Node then closes the connection.
    let cases: &[(&str, &str)] = &[
        ("unknown packet type", "49"),
        ("invalid JSON", "42[\"echo\""),
        ("event name an object", "42[{\"a\":1},2]"),
        ("EVENT without array", "42{\"a\":1}"),
        ("reserved event name", "42[\"disconnect\"]"),
        ("reserved event connect_error", "42[\"connect_error\",1]"),
        ("ACK with an object", "431{\"a\":1}"),
        ("ack id overflowing 2^53", "429007199254740992[\"echo\"]"),
        ("attachment count over the limit", "4511-[\"echo\"]"),
        ("empty packet: a CONNECT to a joined namespace", "4"),
        ("CONNECT with a non-object", "40\"x\""),
        ("DISCONNECT with a payload", "41[1]"),
        ("CONNECT_ERROR from a client", "44{\"message\":\"x\"}"),
        ("packet for a namespace not joined", "42/other,[\"echo\"]"),
        ("second CONNECT to a joined namespace", "40"),
    ];
    for (i, (name, packet)) in cases.iter().enumerate() {
        let mut ws = connected(port).await;
        ws.send(Message::text(*packet)).unwrap();
        assert!(closed(&mut ws).await, "{name}: not closed");
        still_served(&mut bystander, i as u32).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_as_event_name_is_dispatched_as_its_string() {
    // socket.io-parser accepts numbers as event names; Node's EventEmitter then calls the
    // listener of the number's string.
    let io = SocketIo::new();
    io.ns("/", |socket: SocketRef| async move {
        socket.on("7", |ack: AckSender| async move {
            let _ = ack.send(&"seven");
        });
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { io.serve(listener).await });
    let mut ws = connected(port).await;
    ws.send(Message::text("421[7]")).unwrap();
    assert_eq!(recv_text(&mut ws).await.unwrap(), "431[\"seven\"]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_attachment_that_was_not_announced_closes_the_connection() {
    let port = server().await;
    let mut bystander = connected(port).await;
    let mut ws = connected(port).await;
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert!(closed(&mut ws).await);
    still_served(&mut bystander, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_that_lie_about_their_placeholders_close_the_connection() {
    let port = server().await;
    let mut bystander = connected(port).await;
    let mut ws = connected(port).await;
    // One attachment announced, the placeholder points at the second.
    ws.send(Message::text(
        "451-[\"echo\",{\"_placeholder\":true,\"num\":1}]",
    ))
    .unwrap();
    ws.send(Message::binary(vec![1])).unwrap();
    assert!(closed(&mut ws).await);
    still_served(&mut bystander, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_an_unknown_namespace_gets_connect_error_and_the_connection_stays() {
    let port = server().await;
    let mut ws = connected(port).await;
    ws.send(Message::text("40/nope,")).unwrap();
    assert_eq!(
        recv_text(&mut ws).await.unwrap(),
        "44/nope,{\"message\":\"Invalid namespace\"}"
    );
    // The connection and its `/` socket go on.
    still_served(&mut ws, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_payload_closes_the_connection() {
    let port = server().await;
    let mut bystander = connected(port).await;
    let mut ws = connected(port).await;
    ws.send(Message::text(format!(
        "42[\"echo\",\"{}\"]",
        "x".repeat(20_000)
    )))
    .unwrap();
    assert!(closed(&mut ws).await);
    still_served(&mut bystander, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ping_is_the_wrong_heartbeat_direction() {
    let port = server().await;
    let mut bystander = connected(port).await;
    let mut ws = connected(port).await;
    ws.send(Message::text("2")).unwrap();
    assert!(closed(&mut ws).await);
    still_served(&mut bystander, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_engine_packet_closes_the_session() {
    let port = server().await;
    let mut bystander = connected(port).await;
    for bad in ["", "9", "bnot-base64!"] {
        let mut ws = connected(port).await;
        ws.send(Message::text(bad)).unwrap();
        assert!(closed(&mut ws).await, "{bad:?}");
    }
    still_served(&mut bystander, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connect_within_the_connect_timeout_closes_the_connection() {
    let io = SocketIo::builder()
        .connect_timeout(Duration::from_millis(200))
        .build();
    io.ns("/", |_: SocketRef| async move {});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { io.serve(listener).await });
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    assert!(recv_text(&mut ws).await.unwrap().starts_with('0'));
    let start = std::time::Instant::now();
    assert!(closed(&mut ws).await);
    assert!(start.elapsed() >= Duration::from_millis(150));
}

/// A server whose connect timeout is 200 ms, with the `echo` handler.
async fn short_connect_timeout_server() -> u16 {
    echo_server(
        SocketIo::builder()
            .connect_timeout(Duration::from_millis(200))
            .build(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_connected_in_time_is_kept_past_the_connect_timeout() {
    let port = short_connect_timeout_server().await;
    let mut ws = connected(port).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_served(&mut ws, 1).await;
}

/// One HTTP/1.1 GET on its own connection; the response body.
async fn http_get(port: u16, path: &str) -> String {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    http_request(addr, "GET", path, "", Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_client_that_never_connects_is_closed_at_the_connect_timeout() {
    let port = short_connect_timeout_server().await;
    let open = http_get(port, "/socket.io/?EIO=4&transport=polling").await;
    let sid = engine_sid(&open).expect("an open packet with a sid");
    let start = std::time::Instant::now();
    // A long poll: answered with the close packet once the timeout has closed the session
    // (the first ping would come only after 25 s).
    let body = http_get(
        port,
        &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
    )
    .await;
    assert_eq!(body, "1");
    assert!(start.elapsed() >= Duration::from_millis(100));
}
