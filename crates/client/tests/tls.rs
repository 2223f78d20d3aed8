//! https:// long-polling and wss:// WebSocket, against small scripted servers behind
//! rustls with a self-signed certificate the client is told to trust.

// Helpers outside #[test] fns too: a panic there is a test failure.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "tls")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use iolite_client::{Manager, Transport};
use iolite_ws::{accept, Config, Message};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server certificate for `localhost`, and a client configuration trusting only it.
fn tls_pair() -> (TlsAcceptor, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (TlsAcceptor::from(Arc::new(server)), Arc::new(client))
}

/// Answers the packets of a POST the way a Socket.IO server would for this test: CONNECT
/// to `/` is accepted, an EVENT with ack id N is acked with its arguments.
fn answer(packet: &str) -> Option<String> {
    if packet == "40" {
        return Some(r#"40{"sid":"tls-socket"}"#.into());
    }
    let rest = packet.strip_prefix("42")?;
    let at = rest.find('[')?;
    let args: Vec<Value> = serde_json::from_str(&rest[at..]).ok()?;
    Some(format!(
        "43{}{}",
        &rest[..at],
        Value::from(args[1..].to_vec())
    ))
}

#[derive(Default)]
struct Polling {
    outbox: Mutex<Vec<String>>,
    ready: Notify,
    requests: Mutex<usize>,
}

async fn polling(
    req: Request<Incoming>,
    st: Arc<Polling>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    *st.requests.lock().unwrap() += 1;
    let ok = |s: String| Ok(Response::new(Full::new(Bytes::from(s))));
    let has_sid = req.uri().query().unwrap_or("").contains("sid=");
    if req.method() == Method::POST {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        for p in body.split('\u{1e}') {
            if let Some(a) = answer(p) {
                st.outbox.lock().unwrap().push(a);
            }
        }
        st.ready.notify_one();
        return ok("ok".into());
    }
    if !has_sid {
        let hs = json!({"sid": "tls-engine", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000});
        return ok(format!("0{hs}"));
    }
    loop {
        let ready = st.ready.notified();
        {
            let mut out = st.outbox.lock().unwrap();
            if !out.is_empty() {
                return ok(out.drain(..).collect::<Vec<_>>().join("\u{1e}"));
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), ready)
            .await
            .is_err()
        {
            return ok("6".into());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_long_polling() {
    let (acceptor, client_tls) = tls_pair();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Polling::default());
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, st) = (acceptor.clone(), st.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| polling(req, st.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    let m = Manager::builder(format!("https://localhost:{port}"))
        .transports([Transport::Polling])
        .tls(client_tls)
        .build()
        .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), m.socket("/").connect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.id().as_deref(), Some("tls-socket"));
    assert_eq!(m.engine_id().as_deref(), Some("tls-engine"));
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        s.emit_with_ack("echo", &("over", "tls")).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(answer.values(), [json!("over"), json!("tls")]);
    assert!(*state.requests.lock().unwrap() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_websocket() {
    let (acceptor, client_tls) = tls_pair();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok((mut ws, req)) = accept(tls, Arc::new(Config::default())).await else {
                    return;
                };
                assert!(req.uri().query().unwrap().contains("transport=websocket"));
                ws.send(Message::text(r#"0{"sid":"wss","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)).unwrap();
                while let Some(Ok(Message::Text(t))) = ws.recv().await {
                    if let Some(reply) = answer(&t) {
                        ws.send(Message::text(reply)).unwrap();
                    }
                }
            });
        }
    });
    // The client refuses a certificate it does not trust...
    let untrusted = Manager::builder(format!("wss://localhost:{port}"))
        .transports([Transport::WebSocket])
        .reconnection(false)
        .build()
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), untrusted.socket("/").connect())
        .await
        .unwrap();
    assert!(
        matches!(err, Err(iolite_client::ConnectError::Transport(ref e)) if e.contains("certificate")),
        "{err:?}"
    );
    // ...and works with one it does.
    let m = Manager::builder(format!("wss://localhost:{port}"))
        .transports([Transport::WebSocket])
        .tls(client_tls)
        .build()
        .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), m.socket("/").connect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.transport(), Some(Transport::WebSocket));
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        s.emit_with_ack("echo", &(1, [2, 3])).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(answer.values(), [json!(1), json!([2, 3])]);
}
