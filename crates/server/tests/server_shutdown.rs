//! Graceful shutdown of the real binary on SIGTERM: WebSockets get what was queued for
//! them and then close code 1001, polling sessions get their `close` packet, /readyz
//! answers 503 while draining, new connections and handshakes are refused, and the drain
//! deadline is kept.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod server_common;

use std::time::{Duration, Instant};

use iolite_client::Transport;
use iolite_ws::{CloseCode, Message};
use serde_json::{json, Value};
use server_common::{next_disconnect, within, Http, Server};

const KEY: &str = "shutdown-test-key-0123456789";

/// A raw Engine.IO WebSocket connected to the chat as `name`; returns it and the socket id.
async fn raw_ws_guest(
    server: &Server,
    name: &str,
) -> (iolite_ws::WebSocket<iolite_ws::MaybeTlsStream>, String) {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = within(iolite_ws::ClientBuilder::new(url).connect())
        .await
        .unwrap();
    let open = text(within(ws.recv()).await.unwrap().unwrap());
    assert!(open.starts_with("0{"), "{open}");
    ws.send(Message::text(format!("40{}", json!({ "name": name }))))
        .unwrap();
    loop {
        let m = text(within(ws.recv()).await.unwrap().unwrap());
        if let Some(ack) = m.strip_prefix("40") {
            let v: Value = serde_json::from_str(ack).unwrap();
            let sid = v["sid"].as_str().unwrap().to_owned();
            return (ws, sid);
        }
        assert!(!m.starts_with("44"), "connect refused: {m}");
    }
}

fn text(m: Message) -> String {
    match m {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_flushes_queued_messages_then_closes_websockets_with_1001() {
    let mut server = Server::start_with(&["--drain-seconds", "10"], &[("IOLITE_API_KEY", KEY)]);
    let (mut ws, sid) = raw_ws_guest(&server, "ada").await;
    // A Socket.IO client on each transport too.
    let ws_client = server.guest("bob", &[Transport::WebSocket]).await;
    let polling_client = server.guest("cy", &[Transport::Polling]).await;

    // Queue messages for the raw socket right before the signal.
    let mut http = server.http().await;
    let bearer = format!("Bearer {KEY}");
    for i in 0..50 {
        let body = json!({"event": "seq", "data": i}).to_string();
        let r = http
            .request(
                "POST",
                &format!("/api/sockets/{sid}/events"),
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    drop(http);
    let signalled = Instant::now();
    server.term();

    let mut seq = Vec::new();
    let close = within(async {
        loop {
            match ws.recv().await {
                Some(Ok(Message::Text(t))) => {
                    if let Some(ev) = t.strip_prefix("42") {
                        let v: Value = serde_json::from_str(ev).unwrap();
                        if v[0] == "seq" {
                            seq.push(v[1].as_i64().unwrap());
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("error before the close frame: {e}"),
                None => panic!("closed without a close frame"),
            }
        }
    })
    .await;
    assert_eq!(
        seq,
        (0..50).collect::<Vec<_>>(),
        "queued messages lost or reordered"
    );
    let code = close.map(|f| f.code);
    assert_eq!(code, Some(CloseCode::GOING_AWAY), "close code {code:?}");

    // The Socket.IO clients see their connection end, on both transports.
    next_disconnect(&ws_client).await;
    next_disconnect(&polling_client).await;

    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("no exit");
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "{:?}",
        signalled.elapsed()
    );
    let log = server.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("every connection closed"), "{log}");
}

/// The Engine.IO packets of a polling response body.
fn packets(body: &str) -> Vec<&str> {
    body.split('\u{1e}').collect()
}

#[tokio::test]
async fn while_draining_readyz_is_503_new_work_is_refused_and_polling_gets_close() {
    let mut server = Server::start(&["--drain-seconds", "20"]);
    let mut conn = server.http().await;
    let open = conn
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], None)
        .await
        .unwrap();
    assert_eq!(open.status, 200);
    let v: Value = serde_json::from_str(open.text().trim_start_matches('0')).unwrap();
    let sid = v["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        conn.request("GET", "/readyz", &[], None)
            .await
            .unwrap()
            .status,
        200
    );

    server.term();
    // The same keep-alive connection keeps being served during the drain.
    let draining = within(async {
        loop {
            let r = conn.request("GET", "/readyz", &[], None).await.unwrap();
            if r.status == 503 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(draining.text(), "draining\n");
    // No new handshake...
    let r = conn
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    // ...and no new connection.
    let refused = within(async {
        loop {
            match tokio::net::TcpStream::connect(server.addr).await {
                Err(_) => return true,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert!(refused);
    let m = conn
        .request("GET", "/metrics", &[], None)
        .await
        .unwrap()
        .text();
    assert_eq!(server_common::sample(&m, "iolite_ready"), Some(0.0), "{m}");

    // The polling session gets its close packet on its next GET.
    let r = conn
        .request(
            "GET",
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert_eq!(packets(&body).last(), Some(&"1"), "{body:?}");

    // With every session closed the process exits well before the 20 s deadline.
    let status = server
        .wait_exit(Duration::from_secs(8))
        .await
        .expect("no exit");
    assert!(status.success(), "{status:?}");
    assert!(conn.request("GET", "/healthz", &[], None).await.is_err() || conn.is_closed());
}

#[tokio::test]
async fn the_drain_deadline_is_kept_when_a_client_does_not_go() {
    let mut server = Server::start(&["--drain-seconds", "2"]);
    // A polling session that never comes back for its close packet.
    let mut conn: Http = server.http().await;
    let open = conn
        .request("GET", "/socket.io/?EIO=4&transport=polling", &[], None)
        .await
        .unwrap();
    assert_eq!(open.status, 200);
    let t = Instant::now();
    server.term();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("no exit");
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_millis(1800), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        server.log().contains("drain deadline passed"),
        "{}",
        server.log()
    );
}
