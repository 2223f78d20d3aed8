//! TLS with a self-signed certificate made at test time: the page, the API and Socket.IO
//! over HTTPS and WSS, the own origin in https, and refused certificate and key files
//! named in the error.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod server_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iolite_client::{Manager, Transport};
use serde_json::json;
use server_common::{call, next_named, run_to_end, within, Http, Server};

const KEY: &str = "tls-test-key-0123456789";

struct Cert {
    cert: String,
    key: String,
    client: Arc<rustls::ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate for localhost and 127.0.0.1 written to `dir`, and a client configuration
/// that trusts only it.
fn make_cert(dir: &Path) -> Cert {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Cert {
        cert: cert.to_str().unwrap().to_owned(),
        key: key.to_str().unwrap().to_owned(),
        client: Arc::new(client),
    }
}

#[tokio::test]
async fn https_and_wss_serve_the_page_the_api_and_socket_io() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let c = make_cert(dir.path());
    let server = Server::start_in(
        dir.clone(),
        &["--tls-cert", &c.cert, "--tls-key", &c.key],
        &[("IOLITE_API_KEY", KEY)],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(
        server.wait_log("TLS on", Duration::from_secs(5)).await,
        "{}",
        server.log()
    );

    let mut https = Http::connect_tls(server.addr, c.client.clone(), "localhost")
        .await
        .unwrap();
    let page = https.request("GET", "/", &[], None).await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        https
            .request("GET", "/healthz", &[], None)
            .await
            .unwrap()
            .status,
        200
    );

    // The own origin is https now; http on the same port is another origin.
    let path = "/socket.io/?EIO=4&transport=polling";
    let own = format!("https://localhost:{}", server.port());
    let ok = https
        .request("GET", path, &[("origin", &own)], None)
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    let plain = format!("http://localhost:{}", server.port());
    let no = https
        .request("GET", path, &[("origin", &plain)], None)
        .await
        .unwrap();
    assert_eq!(no.status, 403);

    // A Socket.IO client: polling over https, then the upgrade to wss.
    let manager = Manager::builder(&server.url)
        .tls(c.client.clone())
        .reconnection(false)
        .build()
        .unwrap();
    let socket = within(manager.socket("/").auth(json!({"name": "ada"})).connect())
        .await
        .unwrap();
    within(async {
        while manager.transport() != Some(Transport::WebSocket) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        call(&socket, "room:join", json!({"room": "secure"})).await["ok"],
        true
    );

    // The API over https reaches it over wss.
    let bearer = format!("Bearer {KEY}");
    let r = https
        .request(
            "POST",
            "/api/rooms/secure/events",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Some(br#"{"event":"over-tls","data":"hi"}"#),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        next_named(&socket, "over-tls").await.args.values(),
        [json!("hi")]
    );

    // A WebSocket-only client straight to wss://.
    let ws_only = Manager::builder(&server.url)
        .tls(c.client.clone())
        .transports([Transport::WebSocket])
        .reconnection(false)
        .build()
        .unwrap();
    let s2 = within(ws_only.socket("/").auth(json!({"name": "bob"})).connect())
        .await
        .unwrap();
    assert_eq!(ws_only.transport(), Some(Transport::WebSocket));
    assert_eq!(call(&s2, "rooms:list", json!({})).await["ok"], true);

    // Plain HTTP on the TLS port gets no answer.
    let plain_answer = async {
        let mut h = Http::connect(server.addr).await.ok()?;
        h.request("GET", "/healthz", &[], None).await.ok()
    }
    .await;
    assert!(plain_answer.is_none(), "{plain_answer:?}");
    // A client that does not trust the certificate cannot connect.
    let untrusting = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    assert!(
        Http::connect_tls(server.addr, Arc::new(untrusting), "localhost")
            .await
            .is_err()
    );

    let m = https
        .request("GET", "/metrics", &[], None)
        .await
        .unwrap()
        .text();
    assert!(
        server_common::sample(&m, "iolite_errors_total{kind=\"tls_handshake\"}").unwrap() >= 1.0,
        "{m}"
    );
}

/// Starting with these TLS files fails with status 1 and a message holding `needles`.
fn refused(dir: &Path, cert: &str, key: &str, needles: &[&str]) {
    let out = run_to_end(
        dir,
        &["--port", "0", "--tls-cert", cert, "--tls-key", key],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "stderr lacks {n:?}:\n{}",
            out.stderr
        );
    }
    assert!(!out.stdout.contains("listening on"), "{}", out.stdout);
}

#[test]
fn bad_certificate_and_key_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = make_cert(dir.path());
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    refused(dir.path(), missing, &c.key, &["tls.cert", "missing.pem"]);
    refused(dir.path(), &c.cert, missing, &["tls.key", "missing.pem"]);

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    refused(
        dir.path(),
        garbage,
        &c.key,
        &["tls.cert", "garbage.pem", "no CERTIFICATE"],
    );
    // A certificate where the key should be.
    refused(
        dir.path(),
        &c.cert,
        &c.cert,
        &["tls.key", "cert.pem", "no PRIVATE KEY"],
    );
    // A broken PEM section.
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    refused(
        dir.path(),
        broken.to_str().unwrap(),
        &c.key,
        &["tls.cert", "broken.pem"],
    );

    // A key that is not the certificate's.
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = make_cert(&other_dir);
    refused(
        dir.path(),
        &c.cert,
        &other.key,
        &["tls.cert", "tls.key", "cert.pem"],
    );
}
