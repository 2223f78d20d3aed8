//! One client connection, in any of the three protocols.
//!
//! - Raw WebSocket and Socket.IO over WebSocket are lean clients on [`iolite_ws`]: the
//!   connection's task reads and parses frames itself (the only other task is
//!   `iolite-ws`'s writer), Engine.IO pings are answered inline, and Socket.IO frames are
//!   built and parsed as text without a JSON value in between.
//! - Socket.IO over long-polling uses [`iolite_client`] with polling only and no
//!   reconnection; its event handlers pass stamps to the connection through a channel.

use std::collections::VecDeque;
use std::time::Duration;

use iolite_client::{AckFuture, EmitError, Lifecycle, Manager, Socket, Transport};
use iolite_ws::{
    ClientBuilder, CloseCode, Config, MaybeTlsStream, Message, Receiver, SendError, Sender,
    SlowConsumer,
};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::ReadHalf;
use tokio::sync::mpsc;

use crate::options::{ConfigError, Protocol};
use crate::payload::{parse_sio, parse_stamp, SioFrame, Stamp};

/// Where the server is and how to speak to it.
#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    /// The protocol.
    pub protocol: Protocol,
    /// `wss://` / `https://`.
    pub tls: bool,
    /// `host:port`.
    pub authority: String,
    /// Raw WebSocket: a prefix for `/echo` and `/broadcast` (empty for none). Socket.IO:
    /// the Engine.IO path, `/socket.io/` unless the URL gave one.
    pub path: String,
}

impl Endpoint {
    /// Parses `--url` for `protocol`.
    pub fn parse(url: &str, protocol: Protocol) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid(format!("--url {url}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected ws://HOST:PORT or http://HOST:PORT"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return Err(bad("the scheme must be ws, wss, http or https")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(bad("no usable host"));
        }
        let port = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|(_, after)| after.strip_prefix(':')),
            None => Some(authority.rsplit_once(':').map(|(_, p)| p)),
        };
        match port {
            None => return Err(bad("unclosed [ in the host")),
            Some(Some(p)) if p.parse::<u16>().is_err() => {
                return Err(bad("the port is not a number from 0 to 65535"))
            }
            _ => {}
        }
        if path.contains('?') || path.contains('#') {
            return Err(bad("no query or fragment: the generator adds its own"));
        }
        let path = match protocol {
            Protocol::Ws => path.trim_end_matches('/').to_owned(),
            Protocol::Sio | Protocol::SioPolling => {
                let p = path.trim_matches('/');
                if p.is_empty() {
                    "/socket.io/".to_owned()
                } else {
                    format!("/{p}/")
                }
            }
        };
        Ok(Self {
            protocol,
            tls,
            authority: authority.to_owned(),
            path,
        })
    }

    fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path_and_query}", self.authority)
    }

    fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// What a raw WebSocket connection is for (Socket.IO ignores it: rooms are joined).
#[derive(Clone, Copy, Debug)]
pub enum Route<'a> {
    /// `/echo`.
    Echo,
    /// `/broadcast?room=NAME`.
    Room(&'a str),
}

/// Per-connection settings.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Deadline for connecting (TCP, handshake, Socket.IO CONNECT).
    pub timeout: Duration,
    /// Raw WebSocket: send a ping this often.
    pub heartbeat: Option<Duration>,
}

/// Why a connection failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Connecting failed (the OS or the handshake said no).
    #[error("connect failed: {0}")]
    Connect(String),
    /// Connecting took longer than --timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The server refused the Socket.IO namespace.
    #[error("namespace refused: {0}")]
    Refused(String),
    /// The server broke the expected protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The connection ended.
    #[error("closed: {0}")]
    Closed(String),
}

impl ConnError {
    /// A short, stable description for counting errors by kind.
    pub fn kind(&self) -> String {
        self.to_string()
    }
}

/// Something that arrived.
#[derive(Debug)]
pub enum Incoming {
    /// A payload (echo reply on raw WebSocket, event on Socket.IO).
    Stamp(Stamp),
    /// A Socket.IO ack: id as returned by the send, and the stamp of its first argument.
    Ack {
        /// The id the send returned.
        id: u64,
        /// The first argument's stamp (echo acks).
        stamp: Option<Stamp>,
    },
    /// Something without a stamp.
    Other,
}

type WsRx = Receiver<ReadHalf<MaybeTlsStream>>;

/// A client connection.
pub enum Conn {
    /// Raw WebSocket.
    Ws(WsConn),
    /// Socket.IO over WebSocket.
    Sio(SioConn),
    /// Socket.IO over long-polling.
    Polling(PollConn),
}

/// Raw WebSocket.
pub struct WsConn {
    tx: Sender,
    rx: WsRx,
}

/// The lean Socket.IO client over a WebSocket.
pub struct SioConn {
    tx: Sender,
    rx: WsRx,
    next_id: u64,
    frame: String,
}

/// Socket.IO over long-polling ([`iolite_client`]).
pub struct PollConn {
    manager: Manager,
    socket: Socket,
    events: mpsc::UnboundedReceiver<Stamp>,
    acks: VecDeque<(u64, AckFuture)>,
    next_id: u64,
}

fn ws_config(cfg: &ConnConfig) -> Config {
    Config::default()
        .ping_interval(cfg.heartbeat)
        // The generator waits for room in its own queue (backpressure) instead of
        // having its connection closed.
        .max_queued_bytes(8 << 20)
        .slow_consumer(SlowConsumer::Reject)
        .handshake_timeout(cfg.timeout)
}

fn ws_err(e: iolite_ws::Error) -> ConnError {
    match e {
        iolite_ws::Error::Io(io) => ConnError::Connect(io.to_string()),
        iolite_ws::Error::HandshakeTimeout => ConnError::ConnectTimeout,
        other => ConnError::Connect(other.to_string()),
    }
}

async fn ws_connect(url: String, cfg: &ConnConfig) -> Result<(Sender, WsRx), ConnError> {
    let fut = ClientBuilder::new(url).config(ws_config(cfg)).connect();
    let (ws, _) = tokio::time::timeout(cfg.timeout, fut)
        .await
        .map_err(|_| ConnError::ConnectTimeout)?
        .map_err(ws_err)?;
    Ok(ws.split())
}

/// Queues a text frame; when the queue is full, waits for it to drain (the generator's
/// own backpressure: it must never drop what it means to send).
async fn send_text(tx: &Sender, text: String) -> Result<(), ConnError> {
    let mut msg = Message::text(text);
    loop {
        match tx.send(msg) {
            Ok(()) => return Ok(()),
            Err(SendError::QueueFull(m)) => {
                msg = m;
                tx.drained().await;
            }
            Err(SendError::Closed(_)) => return Err(ConnError::Closed("while sending".into())),
        }
    }
}

/// The next text frame, answering nothing (iolite-ws answers WebSocket pings itself).
async fn next_text(rx: &mut WsRx) -> Result<iolite_ws::Utf8Bytes, ConnError> {
    loop {
        match rx.recv().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(f))) => {
                let why =
                    f.map_or_else(|| "close frame".to_owned(), |f| format!("close {}", f.code));
                return Err(ConnError::Closed(why));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ConnError::Closed(e.to_string())),
            None => return Err(ConnError::Closed("by the server".into())),
        }
    }
}

impl Conn {
    /// Connects (and for Socket.IO, enters the root namespace).
    pub async fn connect(
        ep: &Endpoint,
        route: Route<'_>,
        cfg: &ConnConfig,
    ) -> Result<Self, ConnError> {
        match ep.protocol {
            Protocol::Ws => {
                let path = match route {
                    Route::Echo => format!("{}/echo", ep.path),
                    Route::Room(r) => format!("{}/broadcast?room={r}", ep.path),
                };
                let (tx, rx) = ws_connect(ep.ws_url(&path), cfg).await?;
                Ok(Self::Ws(WsConn { tx, rx }))
            }
            Protocol::Sio => SioConn::connect(ep, cfg).await.map(Self::Sio),
            Protocol::SioPolling => PollConn::connect(ep, cfg).await.map(Self::Polling),
        }
    }

    /// The next payload or ack. Cancel safe.
    pub async fn next(&mut self) -> Result<Incoming, ConnError> {
        match self {
            Self::Ws(c) => {
                let t = next_text(&mut c.rx).await?;
                Ok(parse_stamp(&t).map_or(Incoming::Other, Incoming::Stamp))
            }
            Self::Sio(c) => c.next().await,
            Self::Polling(c) => c.next().await,
        }
    }

    /// Sends an echo request (Socket.IO: `echo` with an ack). Returns the ack id, if any.
    pub async fn echo(&mut self, payload: &str) -> Result<Option<u64>, ConnError> {
        match self {
            Self::Ws(c) => send_text(&c.tx, payload.to_owned()).await.map(|_| None),
            Self::Sio(c) => {
                let id = c.take_id();
                c.frame.clear();
                c.frame.push_str("42");
                c.frame.push_str(&id.to_string());
                c.frame.push_str("[\"echo\",\"");
                c.frame.push_str(payload);
                c.frame.push_str("\"]");
                send_text(&c.tx, c.frame.clone()).await.map(|_| Some(id))
            }
            Self::Polling(c) => {
                let fut = c.retry(|s| s.emit_with_ack("echo", &(payload,))).await?;
                Ok(Some(c.push_ack(fut)))
            }
        }
    }

    /// Publishes to `room` (raw WebSocket: to the room of the connection).
    pub async fn publish(&mut self, room: &str, payload: &str) -> Result<(), ConnError> {
        match self {
            Self::Ws(c) => send_text(&c.tx, payload.to_owned()).await,
            Self::Sio(c) => {
                let mut f = String::with_capacity(payload.len() + room.len() + 40);
                f.push_str("42[\"publish\",{\"room\":\"");
                f.push_str(room);
                f.push_str("\",\"payload\":\"");
                f.push_str(payload);
                f.push_str("\"}]");
                send_text(&c.tx, f).await
            }
            Self::Polling(c) => {
                let v = json!({ "room": room, "payload": payload });
                c.retry(|s| s.emit("publish", &v)).await
            }
        }
    }

    /// Asks to join (`join`) or leave (`leave`) a room; the ack arrives from
    /// [`Conn::next`] with the returned id. Raw WebSocket has no such request.
    pub async fn room_request(&mut self, event: &str, room: &str) -> Result<u64, ConnError> {
        match self {
            Self::Ws(_) => Err(ConnError::Protocol(
                "raw WebSocket has no join or leave".into(),
            )),
            Self::Sio(c) => {
                let id = c.take_id();
                let f = format!("42{id}[\"{event}\",{{\"room\":\"{room}\"}}]");
                send_text(&c.tx, f).await.map(|_| id)
            }
            Self::Polling(c) => {
                let v = json!({ "room": room });
                let fut = c.retry(|s| s.emit_with_ack(event, &(v.clone(),))).await?;
                Ok(c.push_ack(fut))
            }
        }
    }

    /// Joins `room` and waits for the server's ack (payloads arriving meanwhile are
    /// dropped: use this before the measured phase only).
    pub async fn join_and_wait(&mut self, room: &str, timeout: Duration) -> Result<(), ConnError> {
        if let Self::Ws(_) = self {
            return Ok(());
        }
        let id = self.room_request("join", room).await?;
        let wait = async {
            loop {
                if let Incoming::Ack { id: got, .. } = self.next().await? {
                    if got == id {
                        return Ok(());
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ConnError::Protocol(format!("no ack to join within {timeout:?}")))?
    }

    /// Closes politely: a Socket.IO DISCONNECT, a WebSocket close handshake, waiting at
    /// most `timeout` for the server's close.
    pub async fn close(self, timeout: Duration) {
        let (tx, mut rx) = match self {
            Self::Ws(c) => (c.tx, c.rx),
            Self::Sio(c) => {
                let _ = c.tx.send(Message::text("41"));
                (c.tx, c.rx)
            }
            Self::Polling(c) => {
                c.socket.disconnect();
                c.manager.close();
                return;
            }
        };
        let _ = tx.close(CloseCode::NORMAL, "");
        let _ = tokio::time::timeout(timeout, async {
            while let Some(Ok(_)) = rx.recv().await {}
        })
        .await;
    }
}

impl SioConn {
    async fn connect(ep: &Endpoint, cfg: &ConnConfig) -> Result<Self, ConnError> {
        let url = ep.ws_url(&format!("{}?EIO=4&transport=websocket", ep.path));
        let (tx, mut rx) = ws_connect(url, cfg).await?;
        let handshake = async {
            match parse_sio(&next_text(&mut rx).await?) {
                SioFrame::Open => {}
                other => {
                    return Err(ConnError::Protocol(format!(
                        "expected an Engine.IO open packet, got {other:?}"
                    )))
                }
            }
            send_text(&tx, "40".into()).await?;
            loop {
                match parse_sio(&next_text(&mut rx).await?) {
                    SioFrame::Connected => return Ok(()),
                    SioFrame::ConnectError(e) => return Err(ConnError::Refused(e)),
                    SioFrame::Ping => send_text(&tx, "3".into()).await?,
                    SioFrame::Closed => {
                        return Err(ConnError::Closed("during the Socket.IO handshake".into()))
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(cfg.timeout, handshake)
            .await
            .map_err(|_| ConnError::ConnectTimeout)??;
        Ok(Self {
            tx,
            rx,
            next_id: 0,
            frame: String::new(),
        })
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    async fn next(&mut self) -> Result<Incoming, ConnError> {
        loop {
            let text = next_text(&mut self.rx).await?;
            match parse_sio(&text) {
                SioFrame::Ping => {
                    // A pong must not wait behind a full queue; a refused one means the
                    // connection is closing anyway.
                    let _ = self.tx.send(Message::text("3"));
                }
                SioFrame::Event(s) => return Ok(Incoming::Stamp(s)),
                SioFrame::Ack { id, stamp } => return Ok(Incoming::Ack { id, stamp }),
                SioFrame::Closed => return Err(ConnError::Closed("Socket.IO disconnect".into())),
                SioFrame::ConnectError(e) => return Err(ConnError::Refused(e)),
                SioFrame::Open | SioFrame::Connected => {}
                SioFrame::Other => return Ok(Incoming::Other),
            }
        }
    }
}

impl PollConn {
    async fn connect(ep: &Endpoint, cfg: &ConnConfig) -> Result<Self, ConnError> {
        let manager = Manager::builder(ep.http_url())
            .path(ep.path.clone())
            .transports([Transport::Polling])
            .upgrade(false)
            .reconnection(false)
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| ConnError::Connect(e.to_string()))?;
        let (tx, events) = mpsc::unbounded_channel();
        let tx2 = tx.clone();
        let fut = manager
            .socket("/")
            .on("message", move |p, _| forward(&tx, p.get(0)))
            .on("echo", move |p, _| forward(&tx2, p.get(0)))
            .connect();
        let socket = match tokio::time::timeout(cfg.timeout, fut).await {
            Err(_) => {
                manager.close();
                return Err(ConnError::ConnectTimeout);
            }
            Ok(Err(e)) => {
                manager.close();
                return Err(ConnError::Connect(e.to_string()));
            }
            Ok(Ok(s)) => s,
        };
        Ok(Self {
            manager,
            socket,
            events,
            acks: VecDeque::new(),
            next_id: 0,
        })
    }

    fn push_ack(&mut self, fut: AckFuture) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.acks.push_back((id, fut));
        id
    }

    /// Retries an emit while the client's queue is full.
    async fn retry<T>(&self, f: impl Fn(&Socket) -> Result<T, EmitError>) -> Result<T, ConnError> {
        loop {
            match f(&self.socket) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_full() => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => return Err(ConnError::Closed(e.to_string())),
            }
        }
    }

    async fn next(&mut self) -> Result<Incoming, ConnError> {
        let Self {
            socket,
            events,
            acks,
            ..
        } = self;
        // Acks come back in the order asked on one connection, so waiting on the oldest
        // one is enough.
        let front = async {
            match acks.front_mut() {
                Some((_, f)) => f.await,
                None => std::future::pending().await,
            }
        };
        let lifecycle = async {
            loop {
                if let Lifecycle::Disconnect(reason) = socket.next_lifecycle().await {
                    return reason;
                }
            }
        };
        tokio::select! {
            biased;
            s = events.recv() => match s {
                Some(s) => Ok(Incoming::Stamp(s)),
                None => Err(ConnError::Closed("event channel".into())),
            },
            r = front => {
                let id = acks.pop_front().map_or(0, |(id, _)| id);
                match r {
                    Ok(p) => Ok(Incoming::Ack {
                        id,
                        stamp: p.get(0).and_then(Value::as_str).and_then(parse_stamp),
                    }),
                    Err(e) => Err(ConnError::Closed(format!("ack: {e}"))),
                }
            }
            reason = lifecycle => Err(ConnError::Closed(reason.as_str().to_owned())),
        }
    }
}

fn forward(tx: &mpsc::UnboundedSender<Stamp>, arg: Option<&Value>) {
    if let Some(s) = arg.and_then(Value::as_str).and_then(parse_stamp) {
        let _ = tx.send(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("ws://127.0.0.1:3000", Protocol::Ws).unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str(), e.tls),
            ("127.0.0.1:3000", "", false)
        );
        assert_eq!(e.ws_url("/echo"), "ws://127.0.0.1:3000/echo");
        let e = Endpoint::parse("wss://h:1/base/", Protocol::Ws).unwrap();
        assert_eq!((e.path.as_str(), e.tls), ("/base", true));
        let e = Endpoint::parse("http://h:1", Protocol::Sio).unwrap();
        assert_eq!(e.path, "/socket.io/");
        assert_eq!(e.http_url(), "http://h:1");
        let e = Endpoint::parse("ws://h:1/io", Protocol::SioPolling).unwrap();
        assert_eq!(e.path, "/io/");
        let e = Endpoint::parse("ws://[::1]:3000", Protocol::Ws).unwrap();
        assert_eq!(e.authority, "[::1]:3000");
        for bad in [
            "127.0.0.1:3000",
            "ftp://h:1",
            "ws://",
            "ws://h:port",
            "ws://h:1/?x=1",
            "ws://u@h:1",
        ] {
            assert!(Endpoint::parse(bad, Protocol::Ws).is_err(), "{bad}");
        }
    }
}
