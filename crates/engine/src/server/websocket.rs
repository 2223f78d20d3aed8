//! The WebSocket transport: sessions opened on it, upgrades from polling, and the task
//! that reads a session's frames and keeps its heartbeat.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use iolite_ws::{Connection, Error as WsError, Message};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::RequestError;
use crate::packet::Packet;
use crate::query::Transport;
use crate::server::socket::{Conn, Core, Socket, Tick};
use crate::server::{open_packet, set_cookie, upgrade_error, Body, CloseReason, Handler, Inner};
use crate::sid::Sid;

fn switching(resp: Response<http_body_util::Empty<Bytes>>) -> Response<Body> {
    resp.map(|_| Body::default())
}

fn handshake_failed(e: iolite_ws_proto::HandshakeError) -> Response<Body> {
    let mut r = upgrade_error(RequestError::BadRequest, "");
    *r.status_mut() = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

/// A session opened directly on WebSocket.
pub(crate) fn handshake<H: Handler, B>(
    inner: &Arc<Inner<H>>,
    sid: Sid,
    mut req: Request<B>,
) -> Response<Body> {
    let (resp, pending) = match iolite_ws::upgrade(&mut req, inner.ws_config.clone(), None) {
        Ok(x) => x,
        Err(e) => return handshake_failed(e),
    };
    let (parts, _) = req.into_parts();
    let inner2 = inner.clone();
    tokio::spawn(async move {
        let Ok(rx) = pending.finish_connection().await else {
            return;
        };
        let tx = rx.sender();
        let core: Arc<dyn Core<H::Data>> = inner2.clone();
        let socket = Arc::new(Socket::new(
            sid,
            parts,
            Conn::WebSocket(tx.clone()),
            core,
            H::Data::default(),
        ));
        let _ = tx.send(Message::text(open_packet(
            &inner2,
            sid,
            Transport::WebSocket,
        )));
        inner2.sessions.insert(sid, socket.clone());
        inner2.handler.on_open(&socket);
        // Its own task: this one's state (the request head, the upgrade) is freed now
        // instead of being carried for the whole session.
        tokio::spawn(drive(socket, rx));
    });
    let mut r = switching(resp);
    set_cookie(inner, &sid, r.headers_mut());
    r
}

/// The upgrade of a polling session: `2probe` / `3probe`, then `5`.
pub(crate) fn upgrade<H: Handler, B>(
    inner: &Arc<Inner<H>>,
    socket: Arc<Socket<H::Data>>,
    mut req: Request<B>,
) -> Response<Body> {
    {
        let mut st = socket.lock();
        if st.upgrading || matches!(st.conn, Conn::WebSocket(_)) {
            // Node accepts the WebSocket and closes it at once; either way the client's
            // second attempt fails and its session goes on.
            return upgrade_error(RequestError::BadRequest, "");
        }
        st.upgrading = true;
    }
    let (resp, pending) = match iolite_ws::upgrade(&mut req, inner.ws_config.clone(), None) {
        Ok(x) => x,
        Err(e) => {
            socket.lock().upgrading = false;
            return handshake_failed(e);
        }
    };
    let timeout = inner.config.upgrade_timeout;
    tokio::spawn(async move {
        let Ok(mut rx) = pending.finish_connection().await else {
            socket.lock().upgrading = false;
            return;
        };
        let tx = rx.sender();
        let probe = async {
            loop {
                let Some(Ok(msg)) = rx.recv().await else {
                    return false;
                };
                let Message::Text(t) = msg else {
                    return false;
                };
                match Packet::decode_text(t) {
                    Ok(p) if p.is_probe_ping() => {
                        let _ = tx.send(Message::text("3probe"));
                        socket.release_get();
                    }
                    Ok(Packet::Upgrade) => return socket.complete_upgrade(tx.clone()),
                    _ => return false,
                }
            }
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(true) => {
                tokio::spawn(drive(socket, rx));
            }
            _ => {
                socket.lock().upgrading = false;
                let _ = tx.close(iolite_ws::CloseCode::NORMAL, "");
            }
        }
    });
    switching(resp)
}

/// Reads the session's frames in order and keeps its heartbeat, until it closes.
///
/// The connection is a one-task [`Connection`]: this loop also writes what is queued for
/// the session, so a session has one task, and a reply goes out without waking another.
///
/// A plain `fn` returning an `async move` block: an `async fn` would keep a second copy of
/// its arguments (the connection is several hundred bytes) in its state for the life of
/// the session.
#[allow(clippy::manual_async_fn)]
pub(crate) fn drive<D, S>(
    socket: Arc<Socket<D>>,
    mut rx: Connection<S>,
) -> impl std::future::Future<Output = ()> + Send
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move {
        let first = match socket.tick(true) {
            Tick::Wait(t) => t,
            Tick::Stop => return,
        };
        let sleep = tokio::time::sleep_until(first);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(Ok(Message::Text(t))) => match Packet::decode_text(t) {
                        Ok(p) => socket.on_packet(p),
                        Err(_) => {
                            socket.shutdown(CloseReason::ParseError, false);
                            return;
                        }
                    },
                    Some(Ok(Message::Binary(b))) => socket.on_packet(Packet::decode_binary(b)),
                    Some(Ok(Message::Close(_))) | None => {
                        socket.shutdown(CloseReason::TransportClose, false);
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(WsError::AbnormalClosure | WsError::Io(_))) => {
                        socket.shutdown(CloseReason::TransportClose, false);
                        return;
                    }
                    Some(Err(_)) => {
                        socket.shutdown(CloseReason::TransportError, false);
                        return;
                    }
                },
                _ = &mut sleep => match socket.tick(true) {
                    Tick::Wait(t) => sleep.as_mut().reset(t),
                    Tick::Stop => return,
                },
                _ = socket.driver_wake.notified() => match socket.tick(true) {
                    Tick::Wait(t) => sleep.as_mut().reset(t),
                    Tick::Stop => return,
                },
            }
        }
    }
}
