//! `Socket::set_deadline` and `Handler::on_deadline`: a deadline of the handler's own runs on
//! the session's heartbeat task, on WebSocket and on polling, also when it is set while that
//! task sleeps until a much later heartbeat.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::sync::Arc;
use std::time::Duration;

use iolite_engine::{CloseReason, Data, Engine, EngineConfig, Handler, Socket};
use iolite_test_support::raw::{engine_sid, http_request};
use iolite_ws::{ClientBuilder, Message};
use tokio::time::Instant;

/// Sets a deadline `ms` milliseconds ahead on a message `in <ms>`, clears it on `cancel`,
/// and says `4fired` when it passes.
struct Deadlines;

impl Handler for Deadlines {
    type Data = ();
    fn on_open(&self, _: &Arc<Socket<()>>) {}
    fn on_message(&self, socket: &Arc<Socket<()>>, data: Data) {
        let Data::Text(t) = data else { return };
        if let Some(ms) = t.strip_prefix("in ").and_then(|m| m.parse().ok()) {
            socket.set_deadline(Some(Instant::now() + Duration::from_millis(ms)));
        } else if t.as_str() == "cancel" {
            socket.set_deadline(None);
        }
    }
    fn on_deadline(&self, socket: &Arc<Socket<()>>) {
        let _ = socket.send_text("fired");
    }
    fn on_close(&self, _: &Arc<Socket<()>>, _: CloseReason) {}
}

async fn server() -> u16 {
    // The first heartbeat is 25 s away: a deadline that fires sooner woke the task itself.
    let engine = Engine::new(EngineConfig::default(), Deadlines);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { engine.serve(listener).await });
    port
}

async fn next_text(ws: &mut iolite_ws::WebSocket<iolite_ws::MaybeTlsStream>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), ws.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_owned(),
        other => panic!("expected a text message within 5 s, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_set_on_websocket_fires_once_on_time() {
    let port = server().await;
    let url = format!("ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket");
    let (mut ws, _) = ClientBuilder::new(url).connect().await.unwrap();
    assert!(next_text(&mut ws).await.starts_with('0'));
    let start = std::time::Instant::now();
    ws.send(Message::text("4in 150")).unwrap();
    assert_eq!(next_text(&mut ws).await, "4fired");
    assert!(start.elapsed() >= Duration::from_millis(140));
    // Once: nothing more comes before a cleared deadline would have fired.
    ws.send(Message::text("4in 100")).unwrap();
    ws.send(Message::text("4cancel")).unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(400), ws.recv()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

/// One polling request on its own connection; the response body.
async fn request(port: u16, method: &str, query: &str, body: &str) -> String {
    let target = format!("/engine.io/?EIO=4&transport=polling{query}");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    http_request(addr, method, &target, body, Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_set_on_polling_fires_on_time() {
    let port = server().await;
    let open = request(port, "GET", "", "").await;
    let sid = engine_sid(&open).expect("an open packet with a sid");
    let q = format!("&sid={sid}");
    assert_eq!(request(port, "POST", &q, "4in 150").await, "ok");
    let start = std::time::Instant::now();
    // A long poll, answered when the deadline's message is queued.
    assert_eq!(request(port, "GET", &q, "").await, "4fired");
    assert!(start.elapsed() >= Duration::from_millis(100));
}
