//! Server configuration, with Node's `engine.io` defaults.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::handshake::{DEFAULT_MAX_PAYLOAD, DEFAULT_PING_INTERVAL_MS, DEFAULT_PING_TIMEOUT_MS};
use crate::server::cors::Cors;

/// The future an [`AllowRequest`] hook returns: `Err(message)` refuses the handshake with
/// code 4 (`Forbidden`); an empty message keeps Node's `"Forbidden"`.
pub type AllowFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A hook that sees every handshake request (polling and WebSocket alike) before a session
/// exists, as Node's `allowRequest`: check the `Origin`, a token, a rate limit. It gets the
/// request head, so anything a tower layer put in the extensions is there too.
pub type AllowRequest = Arc<dyn Fn(&http::request::Parts) -> AllowFuture + Send + Sync>;

/// The `io` cookie Node's `cookie` option sets on the handshake response, for load balancers
/// with sticky sessions: `io=<sid>; Path=/; HttpOnly; SameSite=Lax` by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    /// Cookie name. Default `io`.
    pub name: String,
    /// `Path` attribute. Default `/`.
    pub path: Option<String>,
    /// `HttpOnly` attribute. Default on.
    pub http_only: bool,
    /// `SameSite` attribute. Default `Lax`.
    pub same_site: Option<String>,
    /// `Secure` attribute. Default off.
    pub secure: bool,
}

impl Default for Cookie {
    fn default() -> Self {
        Self {
            name: "io".into(),
            path: Some("/".into()),
            http_only: true,
            same_site: Some("Lax".into()),
            secure: false,
        }
    }
}

impl Cookie {
    /// The `Set-Cookie` value for a session id.
    pub fn header_value(&self, sid: &str) -> String {
        let mut s = format!("{}={sid}", self.name);
        if let Some(p) = &self.path {
            s.push_str("; Path=");
            s.push_str(p);
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if let Some(v) = &self.same_site {
            s.push_str("; SameSite=");
            s.push_str(v);
        }
        s
    }
}

/// Configuration of an [`Engine`](crate::Engine). Defaults are Node's.
#[derive(Clone)]
pub struct EngineConfig {
    /// How often the server pings. Default 25 s.
    pub ping_interval: Duration,
    /// How long the server waits for the pong before closing with `ping timeout`. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a started upgrade may take before the WebSocket is dropped. Default 10 s.
    pub upgrade_timeout: Duration,
    /// How long a polling session that is closing waits for a GET to deliver its last
    /// packets and the `close` packet. Default 30 s, Node's `closeTimeout`.
    pub close_timeout: Duration,
    /// The largest message and the largest POST body, on both transports (Node's
    /// `maxHttpBufferSize`). Default 1e6 bytes.
    pub max_payload: usize,
    /// The most packets one POST may carry. Default 4096.
    pub max_packets_per_post: usize,
    /// Bytes that may wait for a polling client's next GET (the same budget as a
    /// WebSocket's send queue, [`iolite_ws::Config::max_queued_bytes`]).
    pub max_queued_bytes: usize,
    /// Accept the polling transport. Default on.
    pub polling: bool,
    /// Accept the WebSocket transport. Default on.
    pub websocket: bool,
    /// Let polling sessions upgrade to WebSocket. Default on.
    pub allow_upgrades: bool,
    /// CORS for polling requests. Default `None`: no CORS headers, so browsers only reach
    /// the server from its own origin.
    pub cors: Option<Cors>,
    /// The sticky-session cookie. Default `None`, as in Node.
    pub cookie: Option<Cookie>,
    /// Checks every handshake before a session is created. Default none.
    pub allow_request: Option<AllowRequest>,
    /// The WebSocket settings (compression, queue budget, slow-consumer policy). Its
    /// message limits and keepalive are set from this configuration: Engine.IO has its
    /// own heartbeat.
    pub ws: iolite_ws::Config,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(DEFAULT_PING_INTERVAL_MS),
            ping_timeout: Duration::from_millis(DEFAULT_PING_TIMEOUT_MS),
            upgrade_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_packets_per_post: 4096,
            max_queued_bytes: iolite_ws::Config::default().max_queued_bytes,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            cors: None,
            cookie: None,
            allow_request: None,
            ws: iolite_ws::Config::default(),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// The WebSocket configuration the engine actually uses: [`EngineConfig::ws`] with the
    /// message limit at [`EngineConfig::max_payload`] and keepalive off.
    pub(crate) fn ws_config(&self) -> iolite_ws::Config {
        let mut ws = self.ws.clone();
        let limits = std::sync::Arc::make_mut(&mut ws.limits);
        limits.max_message_size = self.max_payload;
        limits.max_inflated_size = self.max_payload;
        limits.max_frame_payload = limits.max_frame_payload.min(self.max_payload);
        ws.ping_interval = None;
        ws
    }
}
