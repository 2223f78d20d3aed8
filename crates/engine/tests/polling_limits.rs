//! Polling limits and malformed payloads over raw HTTP: the answer Node gives, and a second
//! session that keeps being served.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::sync::Arc;

use iolite_engine::{CloseReason, Data, Engine, EngineConfig, Handler, Socket};
use iolite_test_support::raw::engine_sid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Echo;

impl Handler for Echo {
    type Data = ();
    fn on_open(&self, _: &Arc<Socket<()>>) {}
    fn on_message(&self, socket: &Arc<Socket<()>>, data: Data) {
        let _ = match data {
            Data::Text(t) => socket.send_text(&t),
            Data::Binary(b) => socket.send_binary(b),
        };
    }
    fn on_close(&self, _: &Arc<Socket<()>>, _: CloseReason) {}
}

async fn server(config: EngineConfig) -> u16 {
    server_engine(config).await.0
}

async fn server_engine(config: EngineConfig) -> (u16, Engine<Echo>) {
    let engine = Engine::new(config, Echo);
    let handle = engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { engine.serve(listener).await });
    (port, handle)
}

/// One request on its own connection; returns (status, body).
async fn request(port: u16, method: &str, query: &str, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "{method} /engine.io/?EIO=4&transport=polling{query} HTTP/1.1\r\nHost: x\r\n\
         Connection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn handshake(port: u16) -> String {
    let (status, body) = request(port, "GET", "", b"").await;
    assert_eq!(status, 200);
    engine_sid(&body).expect("an open packet with a sid")
}

async fn echoes(port: u16, sid: &str, text: &str) {
    let q = format!("&sid={sid}");
    assert_eq!(
        request(port, "POST", &q, format!("4{text}").as_bytes()).await,
        (200, "ok".into())
    );
    assert_eq!(
        request(port, "GET", &q, b"").await,
        (200, format!("4{text}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_packets_in_one_post_is_413_and_the_session_stays() {
    let config = EngineConfig {
        max_packets_per_post: 16,
        ..EngineConfig::default()
    };
    let port = server(config).await;
    let other = handshake(port).await;
    let sid = handshake(port).await;
    let q = format!("&sid={sid}");
    let at_limit = vec!["4a"; 16].join("\x1e");
    assert_eq!(
        request(port, "POST", &q, at_limit.as_bytes()).await,
        (200, "ok".into())
    );
    let (_, body) = request(port, "GET", &q, b"").await;
    assert_eq!(body.split('\x1e').count(), 16);
    let over = vec!["4a"; 17].join("\x1e");
    assert_eq!(request(port, "POST", &q, over.as_bytes()).await.0, 413);
    echoes(port, &sid, "still here").await;
    echoes(port, &other, "me too").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_over_max_payload_is_413_and_the_session_stays() {
    let config = EngineConfig {
        max_payload: 1000,
        ..EngineConfig::default()
    };
    let port = server(config).await;
    let sid = handshake(port).await;
    let q = format!("&sid={sid}");
    let big = format!("4{}", "x".repeat(1000));
    assert_eq!(request(port, "POST", &q, big.as_bytes()).await.0, 413);
    echoes(port, &sid, "small").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_truncated_or_malformed_close_the_session_with_ok() {
    let port = server(EngineConfig::default()).await;
    let other = handshake(port).await;
    // A trailing separator (a packet cut off), an unknown type, bad base64, a lone `b`.
    for bad in ["4hello\x1e", "4a\x1e\x1e4b", "x", "b!!!", "4a\x1e9"] {
        let sid = handshake(port).await;
        let q = format!("&sid={sid}");
        assert_eq!(
            request(port, "POST", &q, bad.as_bytes()).await,
            (200, "ok".into()),
            "{bad:?}"
        );
        let (status, body) = request(port, "GET", &q, b"").await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body, r#"{"code":1,"message":"Session ID unknown"}"#);
    }
    echoes(port, &other, "unaffected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_round_trips_as_base64_over_polling() {
    let port = server(EngineConfig::default()).await;
    let sid = handshake(port).await;
    let q = format!("&sid={sid}");
    assert_eq!(
        request(port, "POST", &q, b"bAQID").await,
        (200, "ok".into())
    );
    assert_eq!(request(port, "GET", &q, b"").await, (200, "bAQID".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_polling_queue_is_counted_and_others_are_served() {
    let config = EngineConfig {
        max_queued_bytes: 64,
        ..EngineConfig::default()
    };
    let (port, engine) = server_engine(config).await;
    let other = handshake(port).await;
    let sid = handshake(port).await;
    assert_eq!(engine.queue_overflows(), 0);
    // Two echoes of 50 bytes with no GET to take them: the second does not fit.
    let a = "a".repeat(50);
    let body = format!("4{a}\x1e4{a}");
    let q = format!("&sid={sid}");
    assert_eq!(
        request(port, "POST", &q, body.as_bytes()).await,
        (200, "ok".into())
    );
    assert!(engine.queue_overflows() >= 1);
    echoes(port, &other, "still here").await;
}
