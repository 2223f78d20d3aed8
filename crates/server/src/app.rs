//! The server: the accept loop (limits, byte counting, TLS), the HTTP routes (the chat
//! page, health, metrics, the API) with Socket.IO mounted in front of them, and the
//! graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use iolite::SocketIo;
use iolite_redis::{
    AdapterOptions, RedisClient, ShardedClient, ShardedOptions, StreamsClient, StreamsOptions,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, ApiState};
use crate::auth::Verifier;
use crate::chat::Chat;
use crate::config::{AdapterKind, Config};
use crate::limits::{ConnectionLimiter, OriginPattern, OriginPolicy, Refusal};
use crate::metrics::{self, HandshakeTransport, MeteredStream, Metrics};

/// Refused connections being answered at once; past this they are dropped unanswered, so
/// a flood of refused connections costs no more than this many tasks.
const MAX_REFUSING: usize = 256;
/// How long a refused connection has to send its request and read the 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the server with this configuration until `shutdown` completes, then drains
/// (see [`Server::serve`]).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::bind(config).await?.serve(shutdown).await
}

/// What request handlers share.
#[derive(Clone)]
struct Shared {
    io: SocketIo,
    metrics: Arc<Metrics>,
    limiter: Arc<ConnectionLimiter>,
    origins: Arc<OriginPolicy>,
    ready: Arc<AtomicBool>,
    /// The link to the other nodes, with `cluster.adapter = "redis"`.
    redis: Option<RedisClient>,
    /// The link to the other nodes, with `cluster.adapter = "redis-streams"`.
    streams: Option<StreamsClient>,
    /// The link to the other nodes, with `cluster.adapter = "redis-sharded"`.
    sharded: Option<ShardedClient>,
    /// `cluster.ready_requires_redis`.
    ready_requires_redis: bool,
}

impl Shared {
    /// The counters of the Redis link, whichever Redis adapter runs.
    fn redis_stats(&self) -> Option<&iolite_redis::RedisStats> {
        match (&self.redis, &self.streams, &self.sharded) {
            (Some(r), _, _) => Some(r.stats()),
            (None, Some(s), _) => Some(s.stats()),
            (None, None, Some(s)) => Some(s.stats()),
            (None, None, None) => None,
        }
    }
}

/// A bound server, not yet accepting.
pub struct Server {
    config: Config,
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Shared,
    router: Router,
}

impl Server {
    /// Validates the configuration, loads TLS, binds the listener, builds Socket.IO, the
    /// chat and the routes.
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(crate::tls::load(cert, key)?)),
            _ => None,
        };
        let host = config.listen.host.as_str();
        let listener = TcpListener::bind((host, config.listen.port))
            .await
            .with_context(|| format!("cannot listen on {host}:{}", config.listen.port))?;
        let local = listener.local_addr()?;

        let mut patterns = OriginPolicy::own_origins(host, local.port(), tls.is_some());
        if let Some(url) = &config.listen.public_url {
            patterns.push(OriginPattern::parse_url(url).map_err(anyhow::Error::msg)?);
        }
        for o in &config.listen.allowed_origins {
            patterns.push(OriginPattern::parse(o).map_err(anyhow::Error::msg)?);
        }
        let origins = Arc::new(OriginPolicy::new(patterns));

        let metrics = Metrics::new();
        let ready = Arc::new(AtomicBool::new(true));
        let cluster = Cluster::connect(&config)?;
        let io = build_io(&config, &metrics, &ready, &origins, &cluster);
        let chat = install_chat(&io, &config, &metrics).await?;
        let shared = Shared {
            io: io.clone(),
            metrics: metrics.clone(),
            limiter: ConnectionLimiter::new(
                config.limits.max_connections,
                config.limits.connections_per_ip,
            ),
            origins,
            ready,
            redis: cluster.redis,
            streams: cluster.streams,
            sharded: cluster.sharded,
            ready_requires_redis: config.cluster.ready_requires_redis,
        };
        let api = ApiState {
            io: io.clone(),
            metrics,
            key: config.api.key.as_deref().map(Arc::from),
            chat: Some(chat),
        };
        let router = routes(shared.clone(), api, config.limits.max_payload);
        Ok(Self {
            config,
            listener,
            local,
            tls,
            shared,
            router,
        })
    }

    /// The address the server listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The Socket.IO server.
    pub fn io(&self) -> &SocketIo {
        &self.shared.io
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    fn log_startup(&self) {
        let c = &self.config;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(
            tls = self.tls.is_some(),
            "listening on {scheme}://{}",
            self.local
        );
        if self.tls.is_some() {
            tracing::info!("TLS on: the page and Socket.IO are served over HTTPS and WSS");
        } else {
            tracing::info!("TLS off: plain HTTP and WS (set tls.cert and tls.key for HTTPS)");
        }
        let origins: Vec<String> = self
            .shared
            .origins
            .patterns()
            .iter()
            .map(OriginPattern::display)
            .collect();
        tracing::info!("browsers may connect from {}", origins.join(", "));
        if c.listens_everywhere()
            && c.listen.public_url.is_none()
            && c.listen.allowed_origins.is_empty()
        {
            tracing::warn!(
                "listening on every interface but only local origins are allowed: set \
                 listen.public_url (IOLITE_PUBLIC_URL) to the address people open"
            );
        }
        let local_only = c
            .listen
            .host
            .parse::<std::net::IpAddr>()
            .map_or(c.listen.host.eq_ignore_ascii_case("localhost"), |ip| {
                ip.is_loopback()
            });
        if !c.auth.enabled() {
            let msg = "guest mode: no auth configured, so anyone who can reach this server can \
                       connect with any nickname (set auth.secret, auth.public_key or auth.jwks \
                       to require tokens)";
            if local_only {
                tracing::info!("{msg}");
            } else {
                tracing::warn!("{msg}");
            }
        } else {
            tracing::info!("auth on: connections need a valid JWT");
        }
        if c.api.key.is_some() {
            tracing::info!("HTTP API on at /api (API key required)");
        } else {
            tracing::info!("HTTP API off (set api.key to turn it on)");
        }
        tracing::info!(
            kind = c.store.kind.as_str(),
            at = %c.store.describe(),
            "chat history store"
        );
        match c.cluster.adapter {
            AdapterKind::Memory => {
                tracing::info!("cluster: none (in-memory adapter; this process alone)")
            }
            AdapterKind::Redis => {
                tracing::info!(
                    redis = %crate::store::redact_url(c.cluster.redis_url.as_deref().unwrap_or("")),
                    key = %c.cluster.key,
                    "cluster: Redis pub/sub adapter"
                );
            }
            AdapterKind::RedisStreams => {
                tracing::info!(
                    redis = %crate::store::redact_url(c.cluster.redis_url.as_deref().unwrap_or("")),
                    stream = %c.cluster.key,
                    max_len = c.cluster.stream_max_len,
                    "cluster: Redis streams adapter (connection state recovery across nodes)"
                );
                if c.socketio.recovery_seconds == 0 {
                    tracing::warn!(
                        "cluster.adapter = \"redis-streams\" with socketio.recovery_seconds = 0: \
                         no session is kept, so clients do not recover on another node"
                    );
                }
            }
            AdapterKind::RedisSharded => {
                tracing::info!(
                    redis = %crate::store::redact_url(c.cluster.redis_url.as_deref().unwrap_or("")),
                    channel_prefix = %c.cluster.key,
                    subscription_mode = %c.cluster.subscription_mode,
                    "cluster: Redis sharded pub/sub adapter (Redis 7 SSUBSCRIBE)"
                );
            }
        }
        if c.cluster.adapter != AdapterKind::Memory
            && c.store.kind == crate::store::StoreKind::Sqlite
        {
            tracing::warn!(
                "cluster on Redis with a SQLite history: each node keeps its own \
                 history (set store.kind = \"postgres\" so every node shows the same)"
            );
        }
    }

    /// Accepts connections until `shutdown` completes, then drains: /readyz answers 503,
    /// the listener closes, every Socket.IO connection is closed (WebSockets with 1001
    /// after what is queued for them, polling sessions with a `close` packet on their
    /// next GET), then idle HTTP connections; whatever is still open when
    /// `shutdown.drain_seconds` have passed is dropped.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.log_startup();
        let Self {
            config,
            listener,
            tls,
            shared,
            router,
            ..
        } = self;
        let conn = Arc::new(ConnSettings {
            tls,
            shared: shared.clone(),
            router,
            handshake_timeout: Duration::from_secs(config.limits.handshake_timeout_seconds),
            refusing: AtomicUsize::new(0),
        });
        let (close_http, closing) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => accept(&conn, tcp, peer, closing.clone()),
                    // Out of file descriptors and the like: keep serving the connections
                    // we have and try again shortly.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }

        let drain = config.shutdown.drain();
        let deadline = Instant::now() + drain;
        shared.ready.store(false, Ordering::Release);
        drop(listener);
        tracing::info!(
            sessions = shared.io.connections(),
            connections = shared.limiter.open(),
            "shutting down: no new connections; closing every client (at most {}s)",
            drain.as_secs()
        );
        let io = &shared.io;
        io.close();
        let mut last_close = Instant::now();
        while io.connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            // A handshake that was under way when the drain began may have opened a
            // session since; close those too.
            if last_close.elapsed() >= Duration::from_millis(250) {
                io.close();
                last_close = Instant::now();
            }
        }
        let _ = close_http.send(true);
        while shared.limiter.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (sessions, open) = (io.connections(), shared.limiter.open());
        if sessions > 0 || open > 0 {
            tracing::warn!(
                sessions,
                connections = open,
                "drain deadline passed; exiting with connections still open"
            );
        } else {
            tracing::info!("every connection closed; bye");
        }
        // Leave the cluster: the other nodes stop counting this one at once.
        if let Some(redis) = &shared.redis {
            redis.close();
        }
        if let Some(sharded) = &shared.sharded {
            sharded.close();
        }
        if let Some(streams) = &shared.streams {
            // The sessions of the sockets just closed go to Redis before the process exits,
            // or no other node could recover them.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            if tokio::time::timeout(left, streams.flush()).await.is_err() {
                tracing::warn!("Redis did not take every queued write before exit");
            }
            streams.close();
        }
        Ok(())
    }
}

/// The clients of the configured cluster adapter (none with `memory`).
#[derive(Default)]
struct Cluster {
    redis: Option<RedisClient>,
    streams: Option<StreamsClient>,
    sharded: Option<ShardedClient>,
}

impl Cluster {
    /// Makes the client `cluster.adapter` asks for; it connects in the background, so a
    /// node starts (and serves its own clients) while Redis is down.
    fn connect(config: &Config) -> anyhow::Result<Self> {
        let c = &config.cluster;
        let url = c.redis_url.as_deref();
        let context = "invalid Redis URL (cluster.redis_url, IOLITE_REDIS_URL)";
        Ok(match (c.adapter, url) {
            (AdapterKind::Redis, Some(url)) => Self {
                redis: Some(RedisClient::new(url).context(context)?),
                ..Self::default()
            },
            (AdapterKind::RedisSharded, Some(url)) => Self {
                sharded: Some(ShardedClient::new(url).context(context)?),
                ..Self::default()
            },
            (AdapterKind::RedisStreams, Some(url)) => {
                let options = StreamsOptions {
                    stream_name: c.key.clone(),
                    max_len: usize::try_from(c.stream_max_len).unwrap_or(usize::MAX),
                    requests_timeout: Duration::from_millis(c.requests_timeout_ms),
                    ..StreamsOptions::default()
                };
                Self {
                    streams: Some(StreamsClient::with_options(url, options).context(context)?),
                    ..Self::default()
                }
            }
            _ => Self::default(),
        })
    }
}

/// Builds the Socket.IO server from the configuration: heartbeats, payload and queue
/// limits, recovery, and the handshake hook (refuses other origins and new sessions while
/// draining, counts handshakes).
fn build_io(
    config: &Config,
    metrics: &Arc<Metrics>,
    ready: &Arc<AtomicBool>,
    origins: &Arc<OriginPolicy>,
    cluster: &Cluster,
) -> SocketIo {
    let mut c = iolite::Config::default();
    let s = &config.socketio;
    c.engine.ping_interval = Duration::from_millis(s.ping_interval_ms);
    c.engine.ping_timeout = Duration::from_millis(s.ping_timeout_ms);
    c.engine.max_payload = config.limits.max_payload;
    c.engine.max_queued_bytes = config.limits.max_queued_bytes;
    c.engine.ws.max_queued_bytes = config.limits.max_queued_bytes;
    c.recovery = (s.recovery_seconds > 0).then(|| iolite::Recovery {
        max_disconnection_duration: Duration::from_secs(s.recovery_seconds),
        ..iolite::Recovery::default()
    });
    let metrics = metrics.clone();
    let ready = ready.clone();
    let origins = origins.clone();
    let builder = match (&cluster.redis, &cluster.streams, &cluster.sharded) {
        (Some(redis), _, _) => SocketIo::builder().adapter(redis.adapter_factory(AdapterOptions {
            key: config.cluster.key.clone(),
            requests_timeout: Duration::from_millis(config.cluster.requests_timeout_ms),
            ..AdapterOptions::default()
        })),
        (None, Some(streams), _) => SocketIo::builder().adapter(streams.adapter_factory()),
        (None, None, Some(sharded)) => {
            SocketIo::builder().adapter(sharded.adapter_factory(ShardedOptions {
                channel_prefix: config.cluster.key.clone(),
                // Validated with the configuration.
                subscription_mode: config.cluster.subscription_mode.parse().unwrap_or_default(),
                requests_timeout: Duration::from_millis(config.cluster.requests_timeout_ms),
            }))
        }
        (None, None, None) => SocketIo::builder(),
    };
    builder
        .config(c)
        .allow_request(move |parts| {
            // The accept loop already answered 403 to other origins (the engine's own
            // refusal of an upgrade is a 400); checking here too keeps the engine closed
            // to them however a request reaches it.
            let r = if !origins.allows(parts.headers.get(http::header::ORIGIN)) {
                metrics.refusal("origin");
                Err("Origin not allowed".to_owned())
            } else if ready.load(Ordering::Acquire) {
                let q = parts.uri.query().unwrap_or("");
                let t = match iolite_engine::query_param(q, "transport").as_deref() {
                    Some("websocket") => HandshakeTransport::WebSocket,
                    _ => HandshakeTransport::Polling,
                };
                metrics.handshake(t);
                Ok(())
            } else {
                metrics.refusal("draining");
                Err("server shutting down".to_owned())
            };
            std::future::ready(r)
        })
        .build()
}

/// Installs the chat on `/`: its store, its token verifier (none in guest mode).
async fn install_chat(
    io: &SocketIo,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<Chat>> {
    let verifier = if config.auth.enabled() {
        Some(Arc::new(
            Verifier::from_config(&config.auth).context("invalid auth configuration")?,
        ))
    } else {
        None
    };
    let store = crate::store::connect(&config.store)
        .await
        .with_context(|| {
            format!(
                "cannot open the chat history store {}",
                config.store.describe()
            )
        })?;
    let chat = Chat::new(store, verifier, config.chat.clone(), metrics.clone());
    chat.install(io);
    Ok(chat)
}

struct ConnSettings {
    tls: Option<TlsAcceptor>,
    shared: Shared,
    router: Router,
    handshake_timeout: Duration,
    refusing: AtomicUsize,
}

/// Takes a new TCP connection: counts it against the limits and serves it, or answers
/// 503 and closes it.
fn accept(
    conn: &Arc<ConnSettings>,
    tcp: TcpStream,
    peer: SocketAddr,
    closing: watch::Receiver<bool>,
) {
    let shared = &conn.shared;
    shared.metrics.tcp_accepted();
    let _ = tcp.set_nodelay(true);
    match shared.limiter.try_acquire(peer.ip()) {
        Ok(guard) => {
            let stream = MeteredStream::new(tcp, shared.metrics.clone(), guard);
            let conn = conn.clone();
            tokio::spawn(async move { conn.serve_tls(stream, peer, closing).await });
        }
        Err(refusal) => {
            shared.metrics.refusal(refusal.reason());
            tracing::debug!(%peer, reason = refusal.reason(), "connection refused");
            if conn.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
                conn.refusing.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            let conn = conn.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REFUSAL_TIMEOUT, conn.refuse(tcp, refusal)).await;
                conn.refusing.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

impl ConnSettings {
    async fn serve_tls<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        closing: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match &self.tls {
            None => self.serve_http(stream, peer, closing).await,
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.serve_http(tls, peer, closing).await,
                    Ok(Err(e)) => {
                        self.shared.metrics.error("tls_handshake");
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        self.shared.metrics.error("tls_handshake_timeout");
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                }
            }
        }
    }

    /// HTTP/1.1 with upgrades; on drain, finishes the request in flight and closes.
    async fn serve_http<S>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        mut closing: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let this = self.clone();
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.handshake_timeout)
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.wait_for(|c| *c) => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }

    /// Every request: the peer address goes in the extensions (Socket.IO's handshake and
    /// axum's `ConnectInfo` read it); Socket.IO requests from an origin that is not
    /// allowed get 403, and new handshakes while draining 503, before the engine sees
    /// them.
    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(peer);
        req.extensions_mut().insert(ConnectInfo(peer));
        let shared = &self.shared;
        if req
            .uri()
            .path()
            .starts_with(shared.io.config().path.as_str())
        {
            if !shared.origins.allows(req.headers().get(header::ORIGIN)) {
                shared.metrics.refusal("origin");
                tracing::debug!(%peer, origin = ?req.headers().get(header::ORIGIN), "origin refused");
                return engine_error(StatusCode::FORBIDDEN, "Origin not allowed");
            }
            let new_session = req
                .uri()
                .query()
                .is_none_or(|q| iolite_engine::query_param(q, "sid").is_none());
            if new_session && !shared.ready.load(Ordering::Acquire) {
                shared.metrics.refusal("draining");
                return engine_error(StatusCode::SERVICE_UNAVAILABLE, "server shutting down");
            }
        }
        match tower_service::Service::call(&mut self.router.clone(), req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Answers a refused connection with 503 and closes it.
    async fn refuse(&self, tcp: TcpStream, refusal: Refusal) {
        let svc = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
            let body = serde_json::json!({"error": {"code": "too_many_connections", "message": refusal.message()}});
            let mut r = Response::new(Body::from(body.to_string()));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            std::future::ready(Ok::<_, Infallible>(r))
        });
        let builder = {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.keep_alive(false);
            b
        };
        match &self.tls {
            None => {
                let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
            }
            Some(acceptor) => {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                }
            }
        }
    }
}

/// An answer in the shape Engine.IO clients read (`{"code", "message"}`, as Node's
/// `Forbidden`).
fn engine_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({"code": 4, "message": message});
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A file of the chat page, embedded at build time.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        // FNV-1a: the ETag only has to change when the file does.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in body {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let etag = HeaderValue::from_str(&format!("\"{h:016x}\""))
            .unwrap_or(HeaderValue::from_static("\"0\""));
        Self {
            body,
            content_type,
            etag,
        }
    }

    fn respond(&self, headers: &HeaderMap) -> Response<Body> {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .map(|t| t.trim().trim_start_matches("W/"))
                    .any(|t| t == "*" || t.as_bytes() == self.etag.as_bytes())
            });
        let mut r = if fresh {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Body::from(self.body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            r
        };
        let h = r.headers_mut();
        h.insert(header::ETAG, self.etag.clone());
        // Revalidate every time: the names do not change between versions, the ETag does.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        r
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../web/index.html"),
        "text/html; charset=utf-8",
    )
});
static APP_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../web/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../web/style.css"),
        "text/css; charset=utf-8",
    )
});
static IOLITE_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../../web/iolite.js"),
        "text/javascript; charset=utf-8",
    )
});

async fn index(headers: HeaderMap) -> Response<Body> {
    let mut r = INDEX.respond(&headers);
    let h = r.headers_mut();
    // Scripts and styles only from this server: a chat message that got into the page as
    // markup still could not run. Never framed by another site (clickjacking).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn app_js(headers: HeaderMap) -> Response<Body> {
    APP_JS.respond(&headers)
}

async fn style_css(headers: HeaderMap) -> Response<Body> {
    STYLE_CSS.respond(&headers)
}

async fn iolite_js(headers: HeaderMap) -> Response<Body> {
    IOLITE_JS.respond(&headers)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn healthz() -> Response<Body> {
    plain(StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<Shared>) -> Response<Body> {
    if !s.ready.load(Ordering::Acquire) {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    if s.ready_requires_redis && s.redis_stats().is_some_and(|r| !r.is_connected()) {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n");
    }
    plain(StatusCode::OK, "ready\n")
}

async fn metrics_text(State(s): State<Shared>) -> Response<Body> {
    let mut text = s.metrics.render();
    metrics::render_gauges(
        &mut text,
        &s.io,
        s.limiter.open(),
        s.ready.load(Ordering::Acquire),
    );
    if let Some(stats) = s.redis_stats() {
        metrics::render_redis(&mut text, stats);
    }
    let mut r = Response::new(Body::from(text));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn not_found() -> impl IntoResponse {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// The routes, with Socket.IO's layer in front of them (it takes `/socket.io/` and passes
/// everything else on).
fn routes(shared: Shared, api: ApiState, max_body: usize) -> Router {
    let io = shared.io.clone();
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/iolite.js", get(iolite_js))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .nest_service("/api", api::router(api, max_body))
        .fallback(not_found)
        .with_state(shared)
        .layer(io.layer())
}
