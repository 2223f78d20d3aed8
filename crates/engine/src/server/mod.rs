//! The Engine.IO server: sessions over HTTP long-polling and WebSocket, the upgrade
//! between them, heartbeats, and Node's answers to bad requests.
//!
//! [`Engine::handle`] serves one HTTP request (hyper, or any tower stack through the
//! `iolite` crate's layer). The application sees sessions through a [`Handler`]: a session
//! opens, messages arrive in order, it closes once with a [`CloseReason`].

mod config;
mod cors;
mod head;
mod polling;
mod serve;
mod sessions;
mod socket;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

pub use config::{AllowFuture, AllowRequest, Cookie, EngineConfig};
pub use cors::{AllowOrigin, Cors};
pub use head::RequestHead;
pub use serve::serve_http1;
pub use socket::{SendError, SharedMessage, Socket};

use crate::error::RequestError;
use crate::packet::Data;
use crate::query::{ProtocolVersion, Query, Transport};
use crate::sid::Sid;
use sessions::Sessions;
use socket::Core;

/// The error type request bodies must convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the engine gives.
pub type Body = Full<Bytes>;

/// Why a session closed, named as Node's `engine.io` names it (Socket.IO passes these on
/// as disconnect reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed the transport (a WebSocket close, a polling `close` packet).
    TransportClose,
    /// The transport failed: a network error, overlapping polls, a WebSocket protocol
    /// error or a message over the size limit, a slow client over its queue budget.
    TransportError,
    /// The client did not answer a ping in time.
    PingTimeout,
    /// The client sent a packet that does not decode.
    ParseError,
    /// The server closed the session ([`Socket::close`]).
    ForcedClose,
    /// The server is shutting down ([`Engine::close_all`]).
    ServerShuttingDown,
}

impl CloseReason {
    /// The reason as Node writes it (`"transport close"`, `"ping timeout"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShuttingDown => "server shutting down",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the application does with sessions. Calls for one session come in order:
/// `on_open`, then `on_message` for each message as the client sent them, then `on_close`
/// exactly once. They run on the task that read the message, so they must not block;
/// spawn work that waits.
pub trait Handler: Send + Sync + 'static {
    /// Per-session state the application keeps in the [`Socket`].
    type Data: Default + Send + Sync + 'static;
    /// A session opened.
    fn on_open(&self, socket: &Arc<Socket<Self::Data>>);
    /// A message arrived.
    fn on_message(&self, socket: &Arc<Socket<Self::Data>>, data: Data);
    /// The session closed.
    fn on_close(&self, socket: &Arc<Socket<Self::Data>>, reason: CloseReason);
    /// The deadline set with [`Socket::set_deadline`] passed (it is cleared first). Runs on
    /// the session's own heartbeat task, so a deadline costs no task or timer of its own.
    fn on_deadline(&self, socket: &Arc<Socket<Self::Data>>) {
        let _ = socket;
    }
}

/// An Engine.IO server. Cheap to clone.
pub struct Engine<H: Handler> {
    inner: Arc<Inner<H>>,
}

impl<H: Handler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<H: Handler> {
    pub(crate) handler: H,
    pub(crate) config: EngineConfig,
    pub(crate) ws_config: Arc<iolite_ws::Config>,
    pub(crate) sessions: Sessions<H::Data>,
    queue_overflows: std::sync::atomic::AtomicU64,
}

impl<H: Handler> Core<H::Data> for Inner<H> {
    fn ping_interval(&self) -> Duration {
        self.config.ping_interval
    }
    fn ping_timeout(&self) -> Duration {
        self.config.ping_timeout
    }
    fn close_timeout(&self) -> Duration {
        self.config.close_timeout
    }
    fn max_queued_bytes(&self) -> usize {
        self.config.max_queued_bytes
    }
    fn slow_consumer(&self) -> iolite_ws::SlowConsumer {
        self.config.ws.slow_consumer
    }
    fn queue_overflow(&self) {
        self.queue_overflows
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn on_message(&self, socket: &Arc<Socket<H::Data>>, data: Data) {
        self.handler.on_message(socket, data);
    }
    fn on_deadline(&self, socket: &Arc<Socket<H::Data>>) {
        self.handler.on_deadline(socket);
    }
    fn on_close(&self, socket: &Arc<Socket<H::Data>>, reason: CloseReason) {
        self.handler.on_close(socket, reason);
    }
    fn remove(&self, sid: &Sid) {
        self.sessions.remove(sid);
    }
}

impl<H: Handler> Engine<H> {
    /// An engine with this configuration and handler.
    pub fn new(config: EngineConfig, handler: H) -> Self {
        Self {
            inner: Arc::new(Inner {
                ws_config: Arc::new(config.ws_config()),
                handler,
                config,
                sessions: Sessions::new(),
                queue_overflows: Default::default(),
            }),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session with this id, if it is open.
    pub fn get(&self, sid: &Sid) -> Option<Arc<Socket<H::Data>>> {
        self.inner.sessions.get(sid)
    }

    /// Sends refused because a client's queue was full, since the engine started.
    pub fn queue_overflows(&self) -> u64 {
        self.inner
            .queue_overflows
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Closes every session with [`CloseReason::ServerShuttingDown`], delivering what is
    /// queued first.
    pub fn close_all(&self) {
        for s in self.inner.sessions.all() {
            s.shutdown(CloseReason::ServerShuttingDown, true);
        }
    }

    /// Serves Engine.IO alone on a listener (every path is the engine's), HTTP/1.1 with
    /// WebSocket upgrades; see [`serve_http1`].
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let engine = self.clone();
        serve_http1(listener, move |req| {
            let engine = engine.clone();
            async move { Ok::<_, std::convert::Infallible>(engine.handle(req).await) }
        })
        .await
    }

    /// Serves one Engine.IO request (the router already matched the path, `/engine.io/`
    /// or `/socket.io/`). WebSocket upgrades must come from a hyper connection with
    /// upgrades enabled.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let is_upgrade = iolite_ws::is_upgrade_request(&req) && req.method() == Method::GET;
        let mut resp = match self.route(req, is_upgrade).await {
            Ok(resp) => resp,
            Err((err, message, headers)) => {
                if is_upgrade {
                    upgrade_error(err, &message)
                } else {
                    let mut r = json_error(err, &message);
                    if let Some(cors) = &self.inner.config.cors {
                        cors.apply(&headers, r.headers_mut());
                    }
                    r
                }
            }
        };
        if !is_upgrade {
            resp.headers_mut()
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
        }
        resp
    }

    async fn route<B>(
        &self,
        req: Request<B>,
        is_upgrade: bool,
    ) -> Result<Response<Body>, (RequestError, String, http::HeaderMap)>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let config = &self.inner.config;
        let fail = |e: RequestError, req: &Request<B>| (e, String::new(), req.headers().clone());
        if !is_upgrade && req.method() == Method::OPTIONS {
            if let Some(cors) = &config.cors {
                let mut r = Response::new(Body::default());
                *r.status_mut() = StatusCode::NO_CONTENT;
                cors.apply_preflight(req.headers(), r.headers_mut());
                return Ok(r);
            }
        }
        let query_str = req.uri().query().unwrap_or("").to_owned();
        let query = Query::parse(&query_str).map_err(|e| fail(e, &req))?;
        let enabled = match query.transport {
            Transport::Polling => config.polling,
            Transport::WebSocket => config.websocket,
        };
        if !enabled {
            return Err(fail(RequestError::UnknownTransport, &req));
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            // Node refuses header values with characters outside latin-1 text.
            if origin
                .as_bytes()
                .iter()
                .any(|&b| b < 0x20 && b != b'\t' || b == 0x7f)
            {
                return Err(fail(RequestError::BadRequest, &req));
            }
        }
        if let Some(sid) = query.sid.as_deref() {
            let socket = Sid::parse(sid)
                .ok()
                .and_then(|sid| self.inner.sessions.get(&sid))
                .ok_or_else(|| fail(RequestError::UnknownSid, &req))?;
            let current = socket.transport();
            if !is_upgrade && current != query.transport {
                return Err(fail(RequestError::BadRequest, &req));
            }
            if query.protocol != ProtocolVersion::V4 {
                return Err(fail(RequestError::BadRequest, &req));
            }
            if is_upgrade {
                if query.transport != Transport::WebSocket {
                    return Err(fail(RequestError::BadRequest, &req));
                }
                return Ok(websocket::upgrade(&self.inner, socket, req));
            }
            let cors_headers = req.headers().clone();
            let mut resp = match *req.method() {
                Method::GET => polling::get(&self.inner, socket).await,
                Method::POST => polling::post(&self.inner, socket, req).await,
                // Node's polling transport answers other methods with a bare 500.
                _ => {
                    let mut r = Response::new(Body::default());
                    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    r
                }
            };
            if let Some(cors) = &config.cors {
                cors.apply(&cors_headers, resp.headers_mut());
            }
            return Ok(resp);
        }
        query
            .check_handshake(req.method().as_str(), is_upgrade)
            .map_err(|e| fail(e, &req))?;
        let (parts, body) = req.into_parts();
        if let Some(allow) = &config.allow_request {
            if let Err(message) = allow(&parts).await {
                return Err((RequestError::Forbidden, message, parts.headers.clone()));
            }
        }
        let req = Request::from_parts(parts, body);
        query.check_protocol().map_err(|e| fail(e, &req))?;
        let sid = Sid::generate().map_err(|e| fail(e.into(), &req))?;
        if is_upgrade {
            return Ok(websocket::handshake(&self.inner, sid, req));
        }
        let cors_headers = req.headers().clone();
        let (parts, _) = req.into_parts();
        let mut resp = polling::handshake(&self.inner, sid, parts).await;
        if let Some(cors) = &config.cors {
            cors.apply(&cors_headers, resp.headers_mut());
        }
        Ok(resp)
    }
}

/// Node's answer to a refused polling request: JSON with the code and message.
fn json_error(err: RequestError, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(err.json_body_with_message(message)));
    *r.status_mut() = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RequestError::CONTENT_TYPE),
    );
    r
}

/// Node's answer to a refused WebSocket upgrade: always 400, the bare message as text/html.
fn upgrade_error(err: RequestError, message: &str) -> Response<Body> {
    let message = if message.is_empty() {
        err.message()
    } else {
        message
    };
    let mut r = Response::new(Body::from(message.to_owned()));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// The handshake's `Set-Cookie`, when configured.
pub(crate) fn set_cookie<H: Handler>(inner: &Inner<H>, sid: &Sid, headers: &mut http::HeaderMap) {
    if let Some(c) = &inner.config.cookie {
        if let Ok(v) = HeaderValue::from_str(&c.header_value(sid.as_str())) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// The open packet of a new session on `transport`.
pub(crate) fn open_packet<H: Handler>(inner: &Inner<H>, sid: Sid, transport: Transport) -> String {
    let c = &inner.config;
    let upgrades = if transport == Transport::Polling && c.allow_upgrades && c.websocket {
        vec![Transport::WebSocket]
    } else {
        Vec::new()
    };
    let open = crate::OpenPacket::new(sid, transport)
        .upgrades(upgrades)
        .ping_interval(c.ping_interval.as_millis() as u64)
        .ping_timeout(c.ping_timeout.as_millis() as u64)
        .max_payload(c.max_payload);
    // One buffer sized for the longest open packet (about 130 bytes) and written in place:
    // one allocation per handshake, where `"0"` and `to_json` appended took three.
    let mut s = Vec::with_capacity(160);
    s.push(b'0');
    // Ids of the sid alphabet, transport names and integers: writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut s, &open);
    String::from_utf8(s).unwrap_or_default()
}
