//! The client against a scripted Engine.IO server (a bare WebSocket server speaking the
//! protocol by hand), for what a well-behaved server never does: stop pinging, send
//! malformed or oversized packets, stop reading.

// Helpers outside #[test] fns too: a panic there is a test failure.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iolite_client::{
    ConnectError, DisconnectReason, EmitError, Lifecycle, Manager, ManagerBuilder, Socket,
    Transport,
};
use iolite_ws::{accept, Config, Message, WebSocket};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

type Ws = WebSocket<TcpStream>;

/// Serves every WebSocket connection with `script` (given the connection number, from 0).
async fn serve<F, Fut>(script: F) -> String
where
    F: Fn(Ws, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(script);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (script, n) = (script.clone(), count.fetch_add(1, Ordering::SeqCst));
            tokio::spawn(async move {
                if let Ok((ws, _)) =
                    accept(tcp, Arc::new(Config::default().ping_interval(None))).await
                {
                    script(ws, n).await;
                }
            });
        }
    });
    url
}

async fn recv_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.recv().await? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Binary(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// The handshake (`0{...}`) with the given heartbeat, then the answer to the client's
/// CONNECT to `/`.
async fn open(ws: &mut Ws, n: usize, ping_interval: u64, ping_timeout: u64) {
    let hs = json!({"sid": format!("sid{n}"), "upgrades": [], "pingInterval": ping_interval,
                    "pingTimeout": ping_timeout, "maxPayload": 1000000});
    ws.send(Message::text(format!("0{hs}"))).unwrap();
    assert_eq!(recv_text(ws).await.as_deref(), Some("40"));
    ws.send(Message::text(format!(r#"40{{"sid":"s{n}"}}"#)))
        .unwrap();
}

fn builder(url: &str) -> ManagerBuilder {
    Manager::builder(url)
        .transports([Transport::WebSocket])
        .reconnection_delay(Duration::from_millis(20))
        .reconnection_delay_max(Duration::from_millis(50))
        .randomization_factor(0.0)
}

async fn connect(b: ManagerBuilder) -> Socket {
    let s = within(b.build().unwrap().socket("/").connect())
        .await
        .unwrap();
    assert_eq!(
        within(s.next_lifecycle()).await,
        Lifecycle::Connect { recovered: false }
    );
    s
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_their_absence_is_a_ping_timeout() {
    let pongs = Arc::new(AtomicUsize::new(0));
    let p = pongs.clone();
    let url = serve(move |mut ws, n| {
        let pongs = p.clone();
        async move {
            open(&mut ws, n, 100, 100).await;
            if n == 0 {
                // Five pings, each answered with a pong; then silence.
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    ws.send(Message::text("2")).unwrap();
                    assert_eq!(recv_text(&mut ws).await.as_deref(), Some("3"));
                    pongs.fetch_add(1, Ordering::SeqCst);
                }
            }
            while recv_text(&mut ws).await.is_some() {}
        }
    })
    .await;
    let s = connect(builder(&url)).await;
    let start = Instant::now();
    assert_eq!(
        within(s.next_lifecycle()).await,
        Lifecycle::Disconnect(DisconnectReason::PingTimeout)
    );
    // Five pings 50 ms apart kept it alive, then pingInterval + pingTimeout = 200 ms.
    assert_eq!(pongs.load(Ordering::SeqCst), 5);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    // A ping timeout reconnects.
    assert_eq!(
        within(s.next_lifecycle()).await,
        Lifecycle::Connect { recovered: false }
    );
    assert_eq!(s.id().as_deref(), Some("s1"));
}

/// A server that sends `bad` after the connection, and reason the client should give.
async fn expect_close(
    bad: Vec<Message>,
    reason: DisconnectReason,
    b: impl FnOnce(ManagerBuilder) -> ManagerBuilder,
) {
    let bad = Arc::new(bad);
    let url = serve(move |mut ws, n| {
        let bad = bad.clone();
        async move {
            open(&mut ws, n, 10_000, 10_000).await;
            if n == 0 {
                for m in bad.iter() {
                    ws.send(m.clone()).unwrap();
                }
            }
            while recv_text(&mut ws).await.is_some() {}
        }
    })
    .await;
    let s = connect(b(builder(&url))).await;
    assert_eq!(
        within(s.next_lifecycle()).await,
        Lifecycle::Disconnect(reason),
        "{reason}"
    );
    // The client reconnects: a broken connection is not the end.
    assert_eq!(
        within(s.next_lifecycle()).await,
        Lifecycle::Connect { recovered: false }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_socket_io_packets_are_parse_errors() {
    use DisconnectReason::ParseError;
    expect_close(vec![Message::text("42garbage")], ParseError, |b| b).await;
    expect_close(vec![Message::text("49[]")], ParseError, |b| b).await;
    // An event name the protocol reserves.
    expect_close(vec![Message::text(r#"42["connect"]"#)], ParseError, |b| b).await;
    // An attachment nobody announced.
    expect_close(vec![Message::binary(vec![1, 2])], ParseError, |b| b).await;
    // More attachments than allowed: refused on the header, before any is buffered.
    expect_close(
        vec![Message::text(r#"453-["a",{"_placeholder":true,"num":0}]"#)],
        ParseError,
        |b| b.max_attachments(2),
    )
    .await;
    // A placeholder for an attachment that is not there.
    expect_close(
        vec![
            Message::text(r#"451-["a",{"_placeholder":true,"num":3}]"#),
            Message::binary(vec![1]),
        ],
        ParseError,
        |b| b,
    )
    .await;
    // A text packet where an attachment was expected.
    expect_close(
        vec![
            Message::text(r#"451-["a",{"_placeholder":true,"num":0}]"#),
            Message::text(r#"42["b"]"#),
        ],
        ParseError,
        |b| b,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_oversized_engine_packets_are_transport_errors() {
    use DisconnectReason::TransportError;
    expect_close(vec![Message::text("x1")], TransportError, |b| b).await;
    expect_close(vec![Message::text("")], TransportError, |b| b).await;
    expect_close(vec![Message::text("b!!")], TransportError, |b| b).await;
    // Over the client's max_payload.
    expect_close(
        vec![Message::text(format!(
            r#"42["big","{}"]"#,
            "x".repeat(2000)
        ))],
        TransportError,
        |b| b.max_payload(1000),
    )
    .await;
    // The server's `close` packet is a transport close.
    expect_close(
        vec![Message::text("1")],
        DisconnectReason::TransportClose,
        |b| b,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_odd_but_valid_input() {
    let url = serve(|mut ws, n| async move {
        open(&mut ws, n, 10_000, 10_000).await;
        // A numeric event name, an event for a namespace we are not in, a binary event,
        // and an ack nobody asked for.
        ws.send(Message::text("42[7,\"seven\"]")).unwrap();
        ws.send(Message::text("42/other,[\"x\"]")).unwrap();
        ws.send(Message::text("43999[\"unexpected\"]")).unwrap();
        ws.send(Message::text(
            r#"451-["bin",{"_placeholder":true,"num":0}]"#,
        ))
        .unwrap();
        ws.send(Message::binary(vec![5, 6])).unwrap();
        ws.send(Message::text("42[\"last\"]")).unwrap();
        while recv_text(&mut ws).await.is_some() {}
    })
    .await;
    let s = connect(builder(&url)).await;
    let ev = within(s.next_event()).await.unwrap();
    assert_eq!(
        (ev.name.as_str(), ev.args.arg::<String>(0).unwrap().as_str()),
        ("7", "seven")
    );
    let ev = within(s.next_event()).await.unwrap();
    assert_eq!(ev.name, "bin");
    assert_eq!(ev.args.binary(0).map(|b| b.to_vec()), Some(vec![5, 6]));
    let ev = within(s.next_event()).await.unwrap();
    assert_eq!(ev.name, "last");
    assert!(s.connected());
    assert_eq!(s.try_next_lifecycle(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_as_servers_send_them() {
    let url = serve(|mut ws, _| async move {
        ws.send(Message::text(
            r#"0{"sid":"x","upgrades":[],"pingInterval":10000,"pingTimeout":10000}"#,
        ))
        .unwrap();
        while let Some(t) = recv_text(&mut ws).await {
            let reply = match t.as_str() {
                "40/old," => r#"44/old,"Unauthorized""#.to_owned(),
                "40/v2," => "40/v2,".to_owned(),
                "40/obj," => r#"44/obj,{"message":"no","data":[1,{"a":null}]}"#.to_owned(),
                _ => continue,
            };
            ws.send(Message::text(reply)).unwrap();
        }
    })
    .await;
    let m = builder(&url).build().unwrap();
    assert_eq!(
        within(m.socket("/old").connect()).await.unwrap_err(),
        ConnectError::Refused {
            message: "Unauthorized".into(),
            data: None
        }
    );
    assert_eq!(
        within(m.socket("/obj").connect()).await.unwrap_err(),
        ConnectError::Refused {
            message: "no".into(),
            data: Some(json!([1, {"a": null}]))
        }
    );
    // A CONNECT answer without sid: a Socket.IO v2 server.
    match within(m.socket("/v2").connect()).await.unwrap_err() {
        ConnectError::Refused { message, .. } => assert!(message.contains("v2.x"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_handshake_fails_the_connection() {
    for first in ["0{not json", "0{}", r#"42["x"]"#] {
        let url = serve(move |mut ws, _| async move {
            ws.send(Message::text(first)).unwrap();
            while recv_text(&mut ws).await.is_some() {}
        })
        .await;
        let err = within(
            builder(&url)
                .reconnection(false)
                .build()
                .unwrap()
                .socket("/")
                .connect(),
        )
        .await;
        assert!(
            matches!(err, Err(ConnectError::Transport(_))),
            "{first}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_fills_the_websocket_queue() {
    let url = serve(|mut ws, n| async move {
        open(&mut ws, n, 10_000, 10_000).await;
        // Never read again (keep the connection).
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    })
    .await;
    let s = connect(builder(&url).max_queued_bytes(1 << 20)).await;
    let chunk = "x".repeat(100_000);
    let (mut ok, mut full) = (0, 0);
    for _ in 0..400 {
        match s.emit("data", &(&chunk,)) {
            Ok(()) => ok += 1,
            Err(EmitError::Full) => full += 1,
            Err(e) => panic!("{e}"),
        }
        tokio::task::yield_now().await;
    }
    // The kernel buffers take a few MB, the queue 1 MiB more; then emits are refused
    // rather than queued without bound, and the socket stays connected.
    assert!(full > 0, "{ok} sent, {full} refused");
    assert!(ok > 10, "{ok} sent, {full} refused");
    assert!(s.connected());
    assert!(matches!(s.emit("data", &(&chunk,)), Err(EmitError::Full)));
}
