//! The WebSocket transport: sessions opened on it, upgrades from polling, and the task
//! that reads a session's frames and keeps its heartbeat.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use iolite_ws::sweep;
use iolite_ws::{Connection, Error as WsError, Message, UpgradedConnection};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::RequestError;
use crate::packet::Packet;
use crate::query::Transport;
use crate::server::head::RequestHead;
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
    // Copied now: the request's own head (its header map alone is over 0.6 KiB) is freed
    // here rather than kept until hyper hands the connection over.
    let head = RequestHead::new(req.into_parts().0);
    let inner2 = inner.clone();
    tokio::spawn(async move {
        match pending.finish_connection_as::<TcpStream>().await {
            Ok(UpgradedConnection::Direct(rx)) => open(&inner2, sid, head, rx),
            Ok(UpgradedConnection::Boxed(rx)) => open(&inner2, sid, head, rx),
            Err(_) => {}
        }
    });
    let mut r = switching(resp);
    set_cookie(inner, &sid, r.headers_mut());
    r
}

/// Opens the session on its new connection and starts the task that drives it.
fn open<H: Handler, S>(inner: &Arc<Inner<H>>, sid: Sid, head: RequestHead, rx: Connection<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tx = rx.sender();
    let core: Arc<dyn Core<H::Data>> = inner.clone();
    let socket = Arc::new(Socket::new(
        sid,
        head,
        Some(tx.clone()),
        core,
        H::Data::default(),
    ));
    let _ = tx.send(Message::text(open_packet(inner, sid, Transport::WebSocket)));
    inner.sessions.insert(sid, socket.clone());
    inner.handler.on_open(&socket);
    // Its own task: the upgrade's state is freed now instead of being carried for the
    // whole session.
    tokio::spawn(drive(socket, rx));
}

/// The upgrade of a polling session: `2probe` / `3probe`, then `5`.
pub(crate) fn upgrade<H: Handler, B>(
    inner: &Arc<Inner<H>>,
    socket: Arc<Socket<H::Data>>,
    mut req: Request<B>,
) -> Response<Body> {
    {
        let mut st = socket.lock();
        if st.upgrading || matches!(st.conn, Conn::WebSocket) {
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
        match pending.finish_connection_as::<TcpStream>().await {
            Ok(UpgradedConnection::Direct(rx)) => probe(socket, rx, timeout).await,
            Ok(UpgradedConnection::Boxed(rx)) => probe(socket, rx, timeout).await,
            Err(_) => socket.lock().upgrading = false,
        }
    });
    switching(resp)
}

/// The probe exchange on the new WebSocket; once the client sends `5`, the session moves
/// onto it and a task drives it.
async fn probe<D, S>(socket: Arc<Socket<D>>, mut rx: Connection<S>, timeout: Duration)
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tx = rx.sender();
    let exchange = async {
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
    match tokio::time::timeout(timeout, exchange).await {
        Ok(true) => {
            tokio::spawn(drive(socket, rx));
        }
        _ => {
            socket.lock().upgrading = false;
            let _ = tx.close(iolite_ws::CloseCode::NORMAL, "");
        }
    }
}

/// Reads the session's frames in order and keeps its heartbeat, until it closes.
///
/// The connection is a one-task [`Connection`]: this also writes what is queued for the
/// session, so a session has one task, and a reply goes out without waking another.
///
/// A hand-written future: every idle session holds this state, and here it is only the
/// session and its connection (an `async` block kept references to them beside them,
/// and a `select!` the futures of its branches). Its heartbeat has no timer: its deadline
/// rides on the connection's own registration with the sweep thread
/// ([`Connection::wake_also_at`], [`iolite_ws::sweep`]), so the task fits in 384 bytes.
pub(crate) struct Drive<D, S>
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    socket: Arc<Socket<D>>,
    rx: Connection<S>,
    /// The heartbeat's (or the handler's) next deadline, also set on `rx` so that the
    /// connection's sweep wakes this task for it.
    at: sweep::Tick,
    stopped: bool,
}

/// The task that drives a session on its WebSocket; see [`Drive`].
pub(crate) fn drive<D, S>(socket: Arc<Socket<D>>, rx: Connection<S>) -> Drive<D, S>
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The heartbeat's deadlines go through the connection's sweep registration.
    sweep::finer(socket.finest_interval());
    let mut drive = Drive {
        socket,
        rx,
        at: 0,
        stopped: false,
    };
    drive.stopped = !drive.wait();
    drive
}

impl<D, S> Drive<D, S>
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Runs the session's timers and publishes its next deadline; `false` when the session
    /// is over.
    fn wait(&mut self) -> bool {
        let (at, go_on) = match self.socket.tick(true) {
            Tick::Wait(t) => (t, true),
            Tick::Stop => (0, false),
        };
        self.at = at;
        self.rx.wake_also_at(at);
        go_on
    }
}

impl<D, S> Future for Drive<D, S>
where
    D: Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.stopped {
            return Poll::Ready(());
        }
        loop {
            // Messages first, in order; then the session's own wake-ups and the heartbeat.
            if let Poll::Ready(msg) = this.rx.poll_recv(cx) {
                if on_message(&this.socket, msg).is_break() {
                    this.stopped = true;
                    return Poll::Ready(());
                }
                continue;
            }
            let woken = this
                .socket
                .ws_wake
                .poll(&this.socket.ws_woken, cx)
                .is_ready();
            let at = this.at;
            if woken || (at != 0 && sweep::passed(at, sweep::now())) {
                if !this.wait() {
                    this.stopped = true;
                    return Poll::Ready(());
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// Hands one message (or the end of the connection) to the session; `Break` when the
/// session is over.
fn on_message<D: Send + Sync + 'static>(
    socket: &Arc<Socket<D>>,
    msg: Option<Result<Message, WsError>>,
) -> ControlFlow<()> {
    let reason = match msg {
        Some(Ok(Message::Text(t))) => match Packet::decode_text(t) {
            Ok(p) => {
                socket.on_packet(p);
                return ControlFlow::Continue(());
            }
            Err(_) => CloseReason::ParseError,
        },
        Some(Ok(Message::Binary(b))) => {
            socket.on_packet(Packet::decode_binary(b));
            return ControlFlow::Continue(());
        }
        Some(Ok(Message::Close(_))) | None => CloseReason::TransportClose,
        Some(Ok(_)) => return ControlFlow::Continue(()),
        Some(Err(WsError::AbnormalClosure | WsError::Io(_))) => CloseReason::TransportClose,
        Some(Err(_)) => CloseReason::TransportError,
    };
    socket.shutdown(reason, false);
    ControlFlow::Break(())
}
