//! The broadcast room: HTTP routing, WebSocket upgrade, fan-out with prepared messages.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use iolite_ws::{Config, Message, PreparedMessage, Sender};

const PAGE: &str = include_str!("page.html");

type Body = Either<Full<Bytes>, Empty<Bytes>>;

#[derive(Default)]
struct Room {
    peers: RwLock<HashMap<u64, Sender>>,
    next_id: AtomicU64,
}

/// Serves until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let room = Arc::new(Room::default());
    let config = Arc::new(Config::default());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r?,
            _ = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let (room, config) = (room.clone(), config.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (room, config) = (room.clone(), config.clone());
                async move { Ok::<_, std::convert::Infallible>(route(req, room, config)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection error");
            }
        });
    }
}

fn route(mut req: Request<Incoming>, room: Arc<Room>, config: Arc<Config>) -> Response<Body> {
    match req.uri().path() {
        "/" => {
            let mut r = text(StatusCode::OK, String::new());
            *r.body_mut() = Either::Left(Full::new(Bytes::from_static(PAGE.as_bytes())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        "/ws" => match iolite_ws::upgrade(&mut req, config, None) {
            Ok((resp, pending)) => {
                tokio::spawn(async move {
                    match pending.finish().await {
                        Ok(ws) => serve(ws, room).await,
                        Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                    }
                });
                resp.map(Either::Right)
            }
            Err(e) => text(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                e.to_string(),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r
}

async fn serve(ws: iolite_ws::UpgradedWebSocket, room: Arc<Room>) {
    let id = room.next_id.fetch_add(1, Ordering::Relaxed);
    let (sender, mut receiver) = ws.split();
    room.peers
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, sender);
    while let Some(Ok(msg)) = receiver.recv().await {
        let prepared = match msg {
            Message::Text(t) => PreparedMessage::text(t),
            Message::Binary(b) => PreparedMessage::binary(b),
            _ => continue,
        };
        for peer in room
            .peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            // A slow or closed peer is handled by its own queue policy; the rest still get it.
            let _ = peer.send_prepared(&prepared);
        }
    }
    room.peers
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}
