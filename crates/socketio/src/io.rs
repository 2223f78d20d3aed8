//! The server: namespaces, configuration, shared state.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use iolite_engine::{AllowFuture, Cors, Engine};

use crate::adapter::{Adapter, AdapterError, AdapterFactory, LocalNamespace};
use crate::client::IoHandler;
use crate::config::{Config, ParserKind, Recovery};
use crate::error::{ConnectError, EmitError};
use crate::handler::{ConnectBox, ConnectFn, ConnectHandler};
use crate::ns::{Middleware, Namespace, NsInner};
use crate::operators::BroadcastOperators;
use crate::parser::Namespace as NspName;
use crate::room::Room;
use crate::socket::SocketRef;
use crate::sync::{read, write};

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct DynamicNs {
    matcher: Matcher,
    connect: ConnectFn,
    middlewares: Arc<RwLock<Vec<Middleware>>>,
}

pub(crate) struct IoInner {
    pub(crate) config: Config,
    pub(crate) engine: Engine<IoHandler>,
    pub(crate) state: Arc<http::Extensions>,
    nsps: RwLock<HashMap<String, Arc<NsInner>>>,
    dynamic: RwLock<Vec<DynamicNs>>,
    adapter: Option<AdapterFactory>,
}

impl IoInner {
    /// The namespace a CONNECT names: a static one, or a child of a dynamic one created
    /// on first use (Node's `parentNsps`).
    pub(crate) fn namespace_for(self: &Arc<Self>, name: &str) -> Option<Arc<NsInner>> {
        if let Some(ns) = read(&self.nsps).get(name) {
            return Some(ns.clone());
        }
        let dynamic = read(&self.dynamic);
        let d = dynamic.iter().find(|d| (d.matcher)(name))?;
        let nsp = NspName::new(name).ok()?;
        let ns = NsInner::new(
            nsp,
            Arc::downgrade(self),
            self.config.recovery.clone(),
            self.config.parser,
            self.adapter.as_ref(),
        );
        *write(&ns.connect) = Some(d.connect.clone());
        *write(&ns.middlewares) = read(&d.middlewares).clone();
        let mut nsps = write(&self.nsps);
        Some(nsps.entry(name.to_owned()).or_insert(ns).clone())
    }
}

/// A Socket.IO server. Cheap to clone; mount it with [`SocketIo::layer`] (axum, tower,
/// hyper) or run it alone with [`SocketIo::serve`].
#[derive(Clone)]
pub struct SocketIo(pub(crate) Arc<IoInner>);

/// Builds a [`SocketIo`].
#[derive(Default)]
pub struct Builder {
    config: Config,
    state: http::Extensions,
    adapter: Option<AdapterFactory>,
}

impl Builder {
    /// A builder with Node's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Engine.IO ping interval (default 25 s).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.engine.ping_interval = d;
        self
    }

    /// Engine.IO ping timeout (default 20 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.engine.ping_timeout = d;
        self
    }

    /// Largest message or POST body (Node's `maxHttpBufferSize`, default 1e6).
    pub fn max_payload(mut self, n: usize) -> Self {
        self.config.engine.max_payload = n;
        self
    }

    /// Time a connection has to join a namespace (default 45 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Turns on connection state recovery.
    pub fn recovery(mut self, r: Recovery) -> Self {
        self.config.recovery = Some(r);
        self
    }

    /// Chooses the parser.
    pub fn parser(mut self, p: ParserKind) -> Self {
        self.config.parser = p;
        self
    }

    /// CORS for polling.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.engine.cors = Some(cors);
        self
    }

    /// The path to serve (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// A hook that accepts or refuses every handshake (Node's `allowRequest`).
    pub fn allow_request<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.config.engine.allow_request =
            Some(Arc::new(move |p| -> AllowFuture { Box::pin(f(p)) }));
        self
    }

    /// Registers shared state for the [`State`](crate::State) extractor.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// The adapter each namespace gets (Node's `adapter` option): `f` builds one from the
    /// namespace's [`LocalNamespace`]. The in-memory adapter when not set.
    pub fn adapter<F>(mut self, f: F) -> Self
    where
        F: Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static,
    {
        self.adapter = Some(Arc::new(f));
        self
    }

    /// Builds the server.
    pub fn build(self) -> SocketIo {
        let config = self.config;
        let state = Arc::new(self.state);
        SocketIo(Arc::new_cyclic(|weak| IoInner {
            engine: Engine::new(config.engine.clone(), IoHandler { io: weak.clone() }),
            config,
            state,
            nsps: RwLock::default(),
            dynamic: RwLock::default(),
            adapter: self.adapter,
        }))
    }
}

impl Default for SocketIo {
    fn default() -> Self {
        Builder::new().build()
    }
}

impl SocketIo {
    /// A server with Node's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Declares a namespace with the handler called for each connected socket
    /// (Node's `io.of(path).on("connection", handler)`).
    pub fn ns<H, A>(&self, path: &str, handler: H) -> Namespace
    where
        H: ConnectHandler<A>,
        A: 'static,
    {
        let nsp = NspName::new(path).unwrap_or(NspName::ROOT);
        let name = nsp.as_str().to_owned();
        let connect: ConnectFn = Arc::new(ConnectBox(handler, PhantomData));
        let mut nsps = write(&self.0.nsps);
        let ns = nsps
            .entry(name)
            .or_insert_with(|| {
                NsInner::new(
                    nsp,
                    Arc::downgrade(&self.0),
                    self.0.config.recovery.clone(),
                    self.0.config.parser,
                    self.0.adapter.as_ref(),
                )
            })
            .clone();
        *write(&ns.connect) = Some(connect);
        Namespace(ns)
    }

    /// Declares dynamic namespaces: any name `matches` accepts is created on first connect
    /// with this handler (Node's `io.of(regex)` / `io.of(fn)`). Returns a handle for
    /// middlewares that apply to every such namespace.
    pub fn dyn_ns<M, H, A>(&self, matches: M, handler: H) -> DynNamespace
    where
        M: Fn(&str) -> bool + Send + Sync + 'static,
        H: ConnectHandler<A>,
        A: 'static,
    {
        let middlewares = Arc::new(RwLock::new(Vec::new()));
        write(&self.0.dynamic).push(DynamicNs {
            matcher: Arc::new(matches),
            connect: Arc::new(ConnectBox(handler, PhantomData)),
            middlewares: middlewares.clone(),
        });
        DynNamespace { middlewares }
    }

    /// A namespace by name, if declared (or already created from a dynamic one).
    pub fn of(&self, path: &str) -> Option<Namespace> {
        read(&self.0.nsps).get(path).cloned().map(Namespace)
    }

    fn root(&self) -> Arc<NsInner> {
        if let Some(ns) = self.of("/") {
            return ns.0;
        }
        self.ns("/", || async {}).0
    }

    /// A broadcast on `/` to a room.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperators {
        BroadcastOperators::new(self.root()).to(room)
    }

    /// A broadcast on `/` to everyone but a room.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperators {
        BroadcastOperators::new(self.root()).except(room)
    }

    /// A broadcast on `/` to everyone.
    pub fn broadcast(&self) -> BroadcastOperators {
        BroadcastOperators::new(self.root())
    }

    /// Emits on `/` to everyone.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.broadcast().emit(event, data)
    }

    /// Sockets of `/` on this node.
    pub fn sockets(&self) -> Vec<SocketRef> {
        Namespace(self.root()).sockets()
    }

    /// The namespace `/`.
    pub fn root_ns(&self) -> Namespace {
        Namespace(self.root())
    }

    /// Emits an event to the other nodes' server-side handlers of `/` (Node's
    /// `io.serverSideEmit`).
    pub fn server_side_emit(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<(), AdapterError> {
        self.root_ns().server_side_emit(event, args)
    }

    /// The selected sockets of `/` on every node (Node's `io.fetchSockets()`).
    pub async fn fetch_sockets(&self) -> Result<Vec<crate::RemoteSocket>, AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Messages refused because a client's send queue was full (slow consumers), since the
    /// server started; for metrics.
    pub fn queue_overflows(&self) -> u64 {
        self.0.engine.queue_overflows()
    }

    /// Number of Engine.IO connections.
    pub fn connections(&self) -> usize {
        self.0.engine.len()
    }

    /// Closes every connection (reason `server shutting down`; WebSockets get close code
    /// 1001), then closes every namespace's adapter (a cluster adapter leaves the cluster).
    pub fn close(&self) {
        self.0.engine.close_all();
        let nsps: Vec<_> = read(&self.0.nsps).values().cloned().collect();
        for ns in nsps {
            ns.adapter.close();
        }
    }

    /// Serves one HTTP request addressed to Socket.IO (whatever the path).
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<iolite_engine::Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<iolite_engine::BoxError>,
    {
        self.0.engine.handle(req).await
    }
}

/// Dynamic namespaces, for middlewares that apply to each of them.
pub struct DynNamespace {
    middlewares: Arc<RwLock<Vec<Middleware>>>,
}

impl DynNamespace {
    /// Adds a connect middleware to every namespace this matches.
    pub fn use_middleware<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let mw: Middleware = Arc::new(move |s| Box::pin(f(s)));
        write(&self.middlewares).push(mw);
        self
    }
}
