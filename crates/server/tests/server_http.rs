//! The HTTP side of the real binary: the embedded page, health and readiness, metrics,
//! the Origin allow-list in front of Socket.IO, and the connection limits.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod server_common;

use std::time::Duration;

use iolite_client::Transport;
use serde_json::json;
use server_common::{call, sample, within, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_page_and_its_files_are_served_with_types_and_etags() {
    let server = Server::start(&[]);
    for (path, file, ty) in [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "style.css", "text/css; charset=utf-8"),
        ("/iolite.js", "iolite.js", "text/javascript; charset=utf-8"),
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        let on_disk =
            std::fs::read(format!("{}/../../web/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(r.body, on_disk, "{path} is not web/{file}");
        let etag = r.header("etag").expect("etag").to_owned();
        assert_eq!(r.header("cache-control"), Some("no-cache"));

        let again = server
            .request("GET", path, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        let stale = server
            .request(
                "GET",
                path,
                &[("if-none-match", "\"something-else\"")],
                None,
            )
            .await;
        assert_eq!(stale.status, 200, "{path}");
    }
    let page = server.get("/").await;
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let head = server.request("HEAD", "/iolite.js", &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let missing = server.get("/nope.js").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn health_and_readiness() {
    let server = Server::start(&[]);
    let h = server.get("/healthz").await;
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    let r = server.get("/readyz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn handshake_path(transport: &str) -> String {
    format!("/socket.io/?EIO=4&transport={transport}")
}

/// A WebSocket upgrade request on a raw connection; returns the status line's code.
async fn upgrade_status(server: &Server, origin: Option<&str>) -> u16 {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n",
        handshake_path("websocket"),
        server.addr
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = within(tcp.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"))
}

#[tokio::test]
async fn other_origins_get_403_before_any_handshake() {
    let server = Server::start(&[
        "--allowed-origins",
        "https://*.example.com,https://app.other.net",
    ]);
    let path = handshake_path("polling");
    for evil in [
        "https://evil.example.org".to_owned(),
        "https://example.com".to_owned(),
        "http://app.other.net".to_owned(),
        "null".to_owned(),
        format!("http://127.0.0.1:{}", server.port() + 1),
        format!("https://127.0.0.1:{}", server.port()),
    ] {
        let r = server
            .request("GET", &path, &[("origin", &evil)], None)
            .await;
        assert_eq!(r.status, 403, "{evil}");
        assert_eq!(r.json()["code"], 4, "{evil}");
        assert!(
            !r.text().contains("\"sid\""),
            "{evil}: a session was opened"
        );
        assert_eq!(upgrade_status(&server, Some(&evil)).await, 403, "{evil}");
    }
    // A POST to an existing-looking session is refused the same way, before the engine.
    let r = server
        .request(
            "POST",
            &format!("{path}&sid=AAAAAAAAAAAAAAAAAAAA"),
            &[("origin", "https://evil.net")],
            Some(b"40"),
        )
        .await;
    assert_eq!(r.status, 403);

    // The server's own origin in all its local spellings, and the configured ones.
    for ok in [
        format!("http://127.0.0.1:{}", server.port()),
        format!("http://localhost:{}", server.port()),
        format!("http://[::1]:{}", server.port()),
        "https://chat.example.com".to_owned(),
        "https://a.b.example.com".to_owned(),
        "https://app.other.net".to_owned(),
    ] {
        let r = server.request("GET", &path, &[("origin", &ok)], None).await;
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
        assert!(r.text().starts_with("0{\"sid\""), "{ok}: {}", r.text());
        assert_eq!(upgrade_status(&server, Some(&ok)).await, 101, "{ok}");
    }
    // No Origin: not a browser; allowed.
    assert_eq!(upgrade_status(&server, None).await, 101);

    let metrics = server.get("/metrics").await.text();
    assert!(
        sample(&metrics, "iolite_refusals_total{reason=\"origin\"}").unwrap() >= 13.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn an_allowed_origin_connects_a_real_client_on_both_transports() {
    let server = Server::start(&[]);
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket][..]] {
        let manager = iolite_client::Manager::builder(&server.url)
            .transports(transports.iter().copied())
            .reconnection(false)
            .header("Origin", format!("http://localhost:{}", server.port()))
            .build()
            .unwrap();
        let socket = within(manager.socket("/").auth(json!({"name": "ada"})).connect())
            .await
            .unwrap();
        assert!(socket.connected());
        let rooms = call(&socket, "rooms:list", json!({})).await;
        assert_eq!(rooms["ok"], true, "{rooms}");
        socket.disconnect();

        let evil = iolite_client::Manager::builder(&server.url)
            .transports(transports.iter().copied())
            .reconnection(false)
            .header("Origin", "https://evil.example")
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let refused = within(evil.socket("/").auth(json!({"name": "eve"})).connect()).await;
        assert!(refused.is_err(), "{transports:?}: {refused:?}");
    }
}

#[tokio::test]
async fn metrics_have_every_family_after_traffic() {
    let server = Server::start(&[]);
    let ws = server.guest("ada", &[Transport::WebSocket]).await;
    let polling = server.guest("bob", &[Transport::Polling]).await;
    assert_eq!(
        call(&ws, "room:join", json!({"room": "general"})).await["ok"],
        true
    );
    assert_eq!(
        call(&polling, "room:join", json!({"room": "general"})).await["ok"],
        true
    );
    let sent = call(
        &ws,
        "message:send",
        json!({"room": "general", "text": "hello", "clientId": "m1"}),
    )
    .await;
    assert_eq!(sent["ok"], true, "{sent}");
    server_common::next_named(&polling, "message").await;
    let r = server.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = r.text();
    for family in [
        "iolite_connections",
        "iolite_engine_sessions",
        "iolite_tcp_connections",
        "iolite_tcp_connections_accepted_total",
        "iolite_handshakes_total",
        "iolite_refusals_total",
        "iolite_events_received_total",
        "iolite_events_sent_total",
        "iolite_broadcast_recipients",
        "iolite_delivery_latency_seconds",
        "iolite_received_bytes_total",
        "iolite_sent_bytes_total",
        "iolite_queue_overflows_total",
        "iolite_errors_total",
        "iolite_ready",
    ] {
        assert!(
            m.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{m}"
        );
    }
    assert_eq!(
        sample(&m, "iolite_connections{transport=\"websocket\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "iolite_connections{transport=\"polling\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(sample(&m, "iolite_handshakes_total{transport=\"websocket\"}").unwrap() >= 1.0);
    assert!(sample(&m, "iolite_handshakes_total{transport=\"polling\"}").unwrap() >= 1.0);
    assert!(sample(&m, "iolite_received_bytes_total").unwrap() > 100.0);
    assert!(sample(&m, "iolite_sent_bytes_total").unwrap() > 100.0);
    assert!(
        sample(&m, "iolite_events_received_total{event=\"message:send\"}").unwrap() >= 1.0,
        "{m}"
    );
    assert!(
        sample(&m, "iolite_events_sent_total{event=\"message\"}").unwrap() >= 2.0,
        "{m}"
    );
    assert!(
        sample(&m, "iolite_delivery_latency_seconds_count").unwrap() >= 1.0,
        "{m}"
    );
    assert_eq!(sample(&m, "iolite_ready"), Some(1.0));
    assert!(sample(&m, "iolite_tcp_connections").unwrap() >= 2.0);
}

/// Reads an HTTP answer on a raw connection until the server closes it.
async fn read_all(tcp: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let _ = within(tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_past_the_per_address_limit_get_503() {
    let server = Server::start(&["--connections-per-ip", "2"]);
    let mut a = server.http().await;
    let mut b = server.http().await;
    assert_eq!(
        a.request("GET", "/healthz", &[], None)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        b.request("GET", "/healthz", &[], None)
            .await
            .unwrap()
            .status,
        200
    );

    // The third: 503 with a JSON reason, then closed.
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 5"),
        "{answer}"
    );

    // A WebSocket client past the limit is refused too.
    let refused = iolite_ws::ClientBuilder::new(format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr
    ))
    .connect()
    .await;
    assert!(refused.is_err());

    // Closing one frees its place.
    drop(a);
    let mut ok = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut h = server.http().await;
        match h.request("GET", "/healthz", &[], None).await {
            Ok(r) if r.status == 200 => {
                ok = Some(h);
                break;
            }
            _ => continue,
        }
    }
    assert!(
        ok.is_some(),
        "the closed connection's place was not given back"
    );
    let m = b
        .request("GET", "/metrics", &[], None)
        .await
        .unwrap()
        .text();
    assert!(
        sample(&m, "iolite_refusals_total{reason=\"limit_ip\"}").unwrap() >= 2.0,
        "{m}"
    );
}

#[tokio::test]
async fn connections_past_the_total_limit_get_503() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut a = server.http().await;
    assert_eq!(
        a.request("GET", "/readyz", &[], None).await.unwrap().status,
        200
    );
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    c.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    let m = a
        .request("GET", "/metrics", &[], None)
        .await
        .unwrap()
        .text();
    assert_eq!(
        sample(&m, "iolite_refusals_total{reason=\"limit_total\"}"),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout-seconds", "1"]);
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Half a request head, then nothing.
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the connection was still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(800));
}
