//! Mounting in hyper (and so axum or any tower stack): a hyper 1 HTTP/1 server answers
//! ordinary requests itself and hands upgrade requests to `iolite_ws::upgrade`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{echo, PATIENCE};
use iolite_test_support::raw::{status, upgrade_request, RawClient};
use iolite_ws::{is_upgrade_request, upgrade, ClientBuilder, Config, Message};
use tokio::net::TcpListener;

async fn handle(
    mut req: Request<Incoming>,
    config: Arc<Config>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    if !is_upgrade_request(&req) {
        return Ok(Response::new(Empty::new()));
    }
    match upgrade(&mut req, config, None) {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                if let Ok(ws) = pending.finish().await {
                    echo(ws).await;
                }
            });
            Ok(response)
        }
        Err(e) => {
            let mut response = Response::new(Empty::new());
            *response.status_mut() =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Ok(response)
        }
    }
}

/// A hyper server on 127.0.0.1:0.
async fn hyper_server(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("listener address");
    let config = Arc::new(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let config = config.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, config.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn client_builder_echoes_through_a_hyper_upgrade() {
    let addr = hyper_server(Config::default()).await;
    let (mut ws, accepted) = ClientBuilder::new(format!("ws://{addr}/chat"))
        .connect()
        .await
        .unwrap();
    assert!(accepted.deflate.is_none());
    let sent = [
        Message::text("through hyper"),
        Message::binary(vec![0x5a; 200 << 10]),
    ];
    for m in &sent {
        ws.send(m.clone()).unwrap();
    }
    for want in sent {
        let got = tokio::time::timeout(PATIENCE, ws.recv()).await.unwrap();
        assert_eq!(got.unwrap().unwrap(), want);
    }
}

#[tokio::test]
async fn ordinary_requests_are_answered_by_hyper() {
    let addr = hyper_server(Config::default()).await;
    let head = RawClient::http_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(status(&head), Some(200), "{head}");
}

#[tokio::test]
async fn bad_upgrade_gets_its_status_through_hyper() {
    let addr = hyper_server(Config::default()).await;
    let req = upgrade_request(&addr.to_string(), "/").replace("Version: 13", "Version: 8");
    let head = RawClient::http_exchange(addr, req.as_bytes())
        .await
        .unwrap();
    assert_eq!(status(&head), Some(426), "{head}");
}

#[tokio::test]
async fn protocol_violation_through_hyper_is_closed_with_1002() {
    // The same rules apply on an upgraded connection, and hyper keeps serving.
    let addr = hyper_server(Config::default()).await;
    let mut raw = RawClient::handshake(addr).await.unwrap();
    raw.send_frame(&FrameSpec::client(0x1, "naked").unmasked())
        .await
        .unwrap();
    assert_eq!(raw.expect_close(PATIENCE).await.unwrap(), Some(1002));
    iolite_test_support::harness::assert_echo(addr).await;
}

#[tokio::test]
async fn frames_pipelined_after_the_request_are_not_lost() {
    // A client may send its first frame right behind the upgrade request; hyper has read
    // it already and must pass it on with the upgraded connection.
    let addr = hyper_server(Config::default()).await;
    let early = [FrameSpec::client(0x1, "early")];
    let (mut raw, head) = RawClient::upgrade_with_frames(addr, &early, PATIENCE)
        .await
        .unwrap();
    assert_eq!(status(&head), Some(101), "{head}");
    match raw.next_event(PATIENCE).await.unwrap() {
        iolite_test_support::raw::Event::Frame(f) => assert_eq!(f.payload, b"early"),
        other => panic!("{other:?}"),
    }
}
