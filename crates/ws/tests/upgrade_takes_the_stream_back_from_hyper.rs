//! `PendingUpgrade::finish_connection_as`: when hyper served a `TokioIo<TcpStream>`, the
//! connection gets the `TcpStream` back (no boxed `Upgraded` in between), with the bytes
//! hyper had read past the request; any other stream stays on hyper's `Upgraded`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use iolite_test_support::frames::FrameSpec;
use iolite_test_support::harness::{assert_echo, echo_connection, PATIENCE};
use iolite_test_support::raw::{status, RawClient};
use iolite_ws::{upgrade, Config, UpgradedConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A stream of another type than the one asked for.
struct Wrapped(TcpStream);

impl AsyncRead for Wrapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wrapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn handle(
    mut req: Request<Incoming>,
    seen: mpsc::UnboundedSender<&'static str>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let (response, pending) =
        upgrade(&mut req, Arc::new(Config::default()), None).expect("an upgrade request");
    tokio::spawn(async move {
        match pending.finish_connection_as::<TcpStream>().await {
            Ok(UpgradedConnection::Direct(conn)) => {
                let _ = seen.send("direct");
                echo_connection(conn).await;
            }
            Ok(UpgradedConnection::Boxed(conn)) => {
                let _ = seen.send("boxed");
                echo_connection(conn).await;
            }
            Err(_) => {
                let _ = seen.send("error");
            }
        }
    });
    Ok(response)
}

/// A hyper server whose connections are `TokioIo<TcpStream>`, or `TokioIo<Wrapped>`.
async fn server(wrap: bool) -> (SocketAddr, mpsc::UnboundedReceiver<&'static str>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("listener address");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let seen = tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, seen.clone()));
                let builder = http1::Builder::new();
                let _ = if wrap {
                    builder
                        .serve_connection(TokioIo::new(Wrapped(tcp)), service)
                        .with_upgrades()
                        .await
                } else {
                    builder
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await
                };
            });
        }
    });
    (addr, rx)
}

async fn next(seen: &mut mpsc::UnboundedReceiver<&'static str>) -> &'static str {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .expect("the upgrade finished")
        .expect("the server is running")
}

#[tokio::test]
async fn a_tcp_stream_is_taken_back_and_echoes() {
    let (addr, mut seen) = server(false).await;
    assert_echo(addr).await;
    assert_eq!(next(&mut seen).await, "direct");
}

#[tokio::test]
async fn bytes_hyper_read_past_the_request_go_with_the_stream() {
    let (addr, mut seen) = server(false).await;
    let early = [FrameSpec::client(0x1, "early")];
    let (mut raw, head) = RawClient::upgrade_with_frames(addr, &early, PATIENCE)
        .await
        .unwrap();
    assert_eq!(status(&head), Some(101), "{head}");
    match raw.next_event(PATIENCE).await.unwrap() {
        iolite_test_support::raw::Event::Frame(f) => assert_eq!(f.payload, b"early"),
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&mut seen).await, "direct");
}

#[tokio::test]
async fn another_stream_type_stays_on_hyper_and_echoes() {
    let (addr, mut seen) = server(true).await;
    assert_echo(addr).await;
    assert_eq!(next(&mut seen).await, "boxed");
}
